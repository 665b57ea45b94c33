#!/usr/bin/env bash
# Refreshes the README's screenshots (docs/images/chat-alice.png, chat-bob.png): builds the
# server, installs the JS test dependencies if missing, and runs only the browser test with
# CONFAB_SCREENSHOT_DIR pointing at docs/images/. Run it by hand when the chat page changes,
# then review and commit the images; ordinary test runs write their screenshots to a temporary
# directory instead. Needs cargo, Node.js 20+ with npm, and Chromium ($CHROMIUM, by default
# /usr/bin/chromium; Debian: apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

command -v cargo >/dev/null || { echo "Missing: a Rust toolchain (https://rustup.rs), cargo on PATH." >&2; exit 1; }
command -v node >/dev/null && command -v npm >/dev/null \
    || { echo "Missing: Node.js 20 or newer and npm (Debian/Ubuntu: apt-get install nodejs npm)." >&2; exit 1; }
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] || { echo "Missing: Chromium at $CHROMIUM (Debian/Ubuntu: apt-get install chromium, or set CHROMIUM)." >&2; exit 1; }
export CHROMIUM

log "cargo build -p confab-server"
cargo build -p confab-server --locked

if [ ! -d tests/js/node_modules/playwright-core ]; then
    log "npm ci (tests/js)"
    (cd tests/js && npm ci --no-audit --no-fund --silent)
fi

images="$PWD/docs/images"
mkdir -p "$images"
log "browser test, screenshots into docs/images/"
(cd tests/js && CONFAB_BIN="$PWD/../../target/debug/confab" CONFAB_SCREENSHOT_DIR="$images" \
    node --test --test-concurrency=1 browser.test.mjs)

log "wrote"
ls -l "$images"/chat-alice.png "$images"/chat-bob.png
git status --short -- docs/images 2>/dev/null || true
