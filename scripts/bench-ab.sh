#!/usr/bin/env bash
# Two (or more) builds of the node on the same fan-out workload, alternating, in one run: these
# machines are shared and noisy, so compare builds within one run, as ratios. Each round starts
# one embedded node per binary on a fresh data directory and runs confab-bench's `fanout`
# against it (--server-pid: the node's own CPU from the first send to the last delivery).
#
#   cargo build --release -p confab-server -p confab-bench
#   cp target/release/confab /tmp/confab-before     # then build the other version
#   RATE=2000 ROUNDS=2 scripts/bench-ab.sh /tmp/confab-before target/release/confab
#
# Environment: RATE (messages/s, 2000), ROUNDS (2), CONNECTIONS (1000), CHANNELS (100),
# DURATION (15 s), BENCH (target/release/confab-bench). A binary may be a script that sets
# CONFAB_* variables and execs a node (its PID must be the node's: use exec).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 BINARY [BINARY ...]" >&2; exit 2; }
bench="${BENCH:-target/release/confab-bench}"
[ -x "$bench" ] || { echo "missing $bench: cargo build --release -p confab-bench" >&2; exit 1; }
rate="${RATE:-2000}"
dir="$(mktemp -d)"
pid=""
cleanup() { [ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
echo "fanout: ${CONNECTIONS:-1000} connections in ${CHANNELS:-100} rooms, $rate messages/s, ${DURATION:-15} s"
for round in $(seq 1 "${ROUNDS:-2}"); do
    for bin in "$@"; do
        port=$(free_port)
        rm -rf "$dir/data"
        CONFAB_REALTIME_OPS_PER_SEC=1000000 CONFAB_REALTIME_OPS_BURST=1000000 RUST_LOG=warn \
            "$bin" --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 --data-dir "$dir/data" \
            >"$dir/node.log" 2>&1 &
        pid=$!
        for _ in $(seq 1 200); do grep -q "Confab is serving" "$dir/node.log" && break; sleep 0.05; done
        "$bench" fanout --url "http://127.0.0.1:$port" --data-dir "$dir/data" \
            --connections "${CONNECTIONS:-1000}" --channels "${CHANNELS:-100}" --rate "$rate" \
            --duration "${DURATION:-15}" --server-pid "$pid" --quiet --json "$dir/report.json" \
            >"$dir/bench.log" 2>&1 || { cat "$dir/bench.log" >&2; exit 1; }
        python3 - "round $round $bin" "$dir/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
l = r["latency_ms"]
print(f"  {sys.argv[1]:<40} {r['delivered_per_sec']:>9,.0f}/s  p50 {l['p50']:>8.1f} ms  p99 {l['p99']:>8.1f} ms  "
      f"CPU {r['server_cpu_per_100k']:>5.2f} s/100k (kernel {r.get('server_system_cpu_per_100k') or 0:>5.2f})  lost {r['lost']} dup {r['duplicates']} ooo {r['out_of_order']}")
PY
        kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
    done
done
