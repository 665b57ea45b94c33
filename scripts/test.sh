#!/usr/bin/env bash
# Runs every test of Confab on a fresh machine: first brings what is missing (a Python virtual
# environment with the official Twilio helper library), then checks formatting and lints, runs
# the Rust tests (unit, property, store conformance, integration with real nodes and kill -9,
# criterion benches in test mode) and the Python suite that drives a real node through `twilio`.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

apt_install() {
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
    else
        echo "Missing: $*. Install them (Debian/Ubuntu: apt-get install $*) and run again." >&2
        exit 1
    fi
}

command -v cargo >/dev/null || { echo "Missing: a Rust toolchain (https://rustup.rs), cargo on PATH." >&2; exit 1; }
command -v python3 >/dev/null || apt_install python3 python3-venv
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv

log "Python environment (.venv) with the Twilio helper library"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/python/requirements.txt

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo test (unit, property, conformance, integration, benches in test mode)"
cargo build -p confab-server --locked
cargo test --workspace --all-targets --locked

log "Python: the official twilio library against a real node"
CONFAB_BIN="$PWD/target/debug/confab" .venv/bin/python -m pytest -q tests/python
