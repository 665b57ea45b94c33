#!/usr/bin/env bash
# Runs every test of Confab on a fresh machine: first brings what is missing (Node.js and npm,
# Debian's Chromium, promtool from Debian's prometheus package, redis-server (each Redis test
# starts its own on a free port), s3s-fs (an S3 server from crates.io, likewise), a Python
# virtual environment with the official Twilio helper library, helm-python-sdk and
# kubernetes-validate), then
# checks formatting and lints, runs the Rust tests (unit, property, store conformance,
# integration with real nodes and kill -9, criterion benches in test mode), a bounded run of each
# fuzz target (cargo-fuzz, installed from crates.io when missing), the JS SDK tests in
# Node and the chat page in Chromium (playwright-core), and the Python suite that drives a real
# node through `twilio`; promtool checks the alert rules, runs their unit tests and lints a live
# node's /metrics; the Helm chart is linted and rendered (Helm's SDK from helm-python-sdk) and
# its objects and deploy/k8s are validated with kubernetes-validate --strict.
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
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    command -v rustup >/dev/null && rustup component add rustfmt clippy \
        || { echo "Missing: rustfmt and clippy (rustup component add rustfmt clippy)." >&2; exit 1; }
fi
command -v python3 >/dev/null || apt_install python3 python3-venv
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || { echo "Missing: Node.js 20 or newer (found $(node --version)); install it from nodejs.org or NodeSource." >&2; exit 1; }
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] || { apt_install chromium; CHROMIUM=/usr/bin/chromium; }
export CHROMIUM
command -v promtool >/dev/null || apt_install prometheus
command -v redis-server >/dev/null || apt_install redis-server

log "Python environment (.venv) with the Twilio helper library and the chart checkers"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check \
    -r tests/python/requirements.txt -r deploy/requirements.txt

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "s3s-fs: the S3 server (crates.io) the S3 media backend is tested against"
# Each test starts its own on a free port; pinned, since 0.15 and later need a newer rustc.
command -v "${S3S_FS:-s3s-fs}" >/dev/null \
    || cargo install s3s-fs --version 0.14.1 --features binary --locked --quiet
export S3S_FS="${S3S_FS:-$(command -v s3s-fs)}"

log "cargo test (unit, property, conformance, integration, benches in test mode)"
cargo build -p confab-server --locked
cargo test --workspace --all-targets --locked

log "Fuzzing: a bounded run of each cargo-fuzz target (libFuzzer, no sanitizer: stable Rust)"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --quiet || true
fi
if command -v cargo-fuzz >/dev/null 2>&1; then
    command -v c++ >/dev/null || apt_install g++
    fuzz_secs="${CONFAB_FUZZ_SECONDS:-30}"
    fuzz_work="$(mktemp -d)"
    trap 'rm -rf "$fuzz_work"' EXIT
    # The fuzz workspace's lock file is committed: a stale one fails here, not silently.
    cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null
    (cd fuzz && cargo fuzz build --sanitizer none)
    for target in $(cd fuzz && cargo fuzz list); do
        # A copy of the seed corpus, so that what the run adds stays out of the repository.
        cp -r "fuzz/corpus/$target" "$fuzz_work/$target"
        mkdir -p "$fuzz_work/$target-artifacts"
        status=0
        (cd fuzz && cargo fuzz run --sanitizer none "$target" "$fuzz_work/$target" -- \
            -max_total_time="$fuzz_secs" -artifact_prefix="$fuzz_work/$target-artifacts/" \
            -print_final_stats=1) >"$fuzz_work/$target.log" 2>&1 || status=$?
        grep -E "^(stat::number_of_executed_units|stat::new_units_added|Done)" "$fuzz_work/$target.log" || true
        if [ "$status" -ne 0 ] || [ -n "$(ls -A "$fuzz_work/$target-artifacts")" ]; then
            tail -50 "$fuzz_work/$target.log" >&2
            echo "fuzz target $target failed (status $status): $(ls "$fuzz_work/$target-artifacts")" >&2
            exit 1
        fi
    done
    rm -rf "$fuzz_work"
    trap - EXIT
else
    echo "cargo-fuzz is not available and could not be installed: fuzzing skipped"
fi

log "JavaScript: the JS SDK and twilio-chat 6.0.0 in Node, the chat page and twilio-chat's browser build in Chromium, against real nodes"
(cd tests/js && npm ci --no-audit --no-fund --silent)
(cd tests/js && CONFAB_BIN="$PWD/../../target/debug/confab" node --test --test-concurrency=1 sdk.test.mjs twilio-chat.test.mjs browser.test.mjs)

log "Prometheus: alert rules, their unit tests, and a live node's /metrics"
promtool check rules deploy/prometheus/confab-rules.yml
(cd deploy/prometheus && promtool test rules confab-rules.test.yml)
# Every alert has a runbook section in docs/operations.md and a unit test.
for alert in $(sed -n 's/^ *- alert: *//p' deploy/prometheus/confab-rules.yml); do
    grep -qx "### $alert" docs/operations.md || { echo "no runbook for $alert in docs/operations.md" >&2; exit 1; }
    grep -q "alertname: $alert\$" deploy/prometheus/confab-rules.test.yml || { echo "no unit test for $alert" >&2; exit 1; }
    grep -q "runbook: \"docs/operations.md#${alert,,}\"" deploy/prometheus/confab-rules.yml || { echo "$alert: runbook annotation" >&2; exit 1; }
done
echo "runbooks and unit tests: $(grep -c '^ *- alert:' deploy/prometheus/confab-rules.yml) alerts"
scripts/check-live-metrics.sh target/debug/confab

log "Helm chart and Kubernetes manifests: helm lint, helm template, kubernetes-validate --strict"
scripts/check-helm.sh

log "Python: the official twilio library against a real node"
CONFAB_BIN="$PWD/target/debug/confab" .venv/bin/python -m pytest -q tests/python
