#!/usr/bin/env bash
# Runs one confab-bench scenario three times in one go, so that the figures compare (these
# machines are shared and noisy): against one embedded node (SQLite), against one cluster node
# (Redis), and against a three-node cluster on one redis-server with the connections spread over
# the three nodes (so most deliveries cross nodes). Everything listens on loopback, on free ports.
#
#   cargo build --release -p confab-server -p confab-bench
#   scripts/bench-cluster.sh fanout --connections 1000 --channels 100 --rate 1000 --duration 15
#
# The JSON reports go to $OUT (default: a temporary directory, printed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 SCENARIO [confab-bench flags]" >&2; exit 2; }
bin=target/release/confab
bench=target/release/confab-bench
for b in "$bin" "$bench"; do
    [ -x "$b" ] || { echo "missing $b: cargo build --release -p confab-server -p confab-bench" >&2; exit 1; }
done
command -v redis-server >/dev/null || { echo "missing redis-server (apt-get install redis-server)" >&2; exit 1; }

dir="$(mktemp -d)"
out="${OUT:-$dir}"
mkdir -p "$out"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "$out" = "$dir" ] || rm -rf "$dir"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
hex() { python3 -c 'import secrets; print(secrets.token_hex(16))'; }

export CONFAB_ACCOUNT_SID="AC$(hex)" CONFAB_AUTH_TOKEN="$(hex)"
export CONFAB_API_KEY_SID="SK$(hex)" CONFAB_API_KEY_SECRET="$(hex)"
# Load runs lift the per-connection operation limit and the member limit (room scenarios).
export CONFAB_REALTIME_OPS_PER_SEC=1000000 CONFAB_REALTIME_OPS_BURST=1000000
export CONFAB_LIMITS_MEMBERS_PER_CHANNEL=6000 RUST_LOG="${RUST_LOG:-warn}"

# Starts a node with the given flags; prints its base URL.
start_node() {
    local name="$1"; shift
    local port; port="$(free_port)"
    mkdir -p "$dir/$name"
    "$bin" serve --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 --data-dir "$dir/$name" "$@" \
        >"$dir/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do
        grep -q "Confab is serving" "$dir/$name.log" && { echo "http://127.0.0.1:$port"; return; }
        sleep 0.1
    done
    echo "node $name did not start:" >&2; cat "$dir/$name.log" >&2; exit 1
}

redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir" --appendonly yes \
    --appendfsync everysec --save "" >"$dir/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
done

run() {
    local label="$1"; shift
    echo "== $label"
    "$bench" "$@" --json "$out/$label.json" --quiet
}

scenario="$1"; shift
embedded="$(start_node embedded)"
run one-embedded-node "$scenario" --url "$embedded" "$@"

redis1="redis://127.0.0.1:$redis_port/1"
single="$(start_node single --redis-url "$redis1" --node-id single)"
run one-cluster-node "$scenario" --url "$single" "$@"

redis2="redis://127.0.0.1:$redis_port/2"
urls=()
for id in a b c; do
    urls+=(--url "$(start_node "node-$id" --redis-url "$redis2" --node-id "$id")")
done
run three-cluster-nodes "$scenario" "${urls[@]}" "$@"

echo "reports: $out"
python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = []
for label in ["one-embedded-node", "one-cluster-node", "three-cluster-nodes"]:
    r = json.load(open(os.path.join(out, label + ".json")))
    rows.append((label, r))
# Deliveries for the scenarios that deliver, else what was done per second (connects, posts, pages).
key = "delivered_per_sec" if rows[0][1]["delivered_per_sec"] else "sent_per_sec"
unit = "deliveries/s" if key == "delivered_per_sec" else "done/s"
base = rows[0][1][key] or 1
for label, r in rows:
    l = r["latency_ms"]
    print(f"{label:22} {r[key]:>10,.0f} {unit}  ratio {r[key] / base:4.2f}  "
          f"p50 {l['p50']:.1f} ms  p99 {l['p99']:.1f} ms  lost {r['lost']}  dup {r['duplicates']}  "
          f"ooo {r['out_of_order']}  errors {r['errors']}")
PY
