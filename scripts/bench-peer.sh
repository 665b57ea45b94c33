#!/usr/bin/env bash
# Confab beside a Socket.IO cluster on the same fan-out workload, in one go (these machines are
# shared and noisy: compare figures of one run). For each rate: two Socket.IO 4.8 nodes with
# @socket.io/redis-adapter on one redis-server (benches/socketio, a relay that stores nothing),
# one embedded Confab node, and two Confab cluster nodes on one redis-server. The workload is
# confab-bench's `fanout`: --connections sockets in rooms of connections/channels members, one
# sender per room, open-loop sends at the rate, 100-byte bodies; every delivery is verified.
# Server CPU is the servers' own user and system time (the nodes, and Redis where there is one)
# from the first send to the last delivery, per 100,000 deliveries. Everything is on loopback.
#
#   cargo build --release -p confab-server -p confab-bench
#   scripts/bench-peer.sh                 # rates 1000 2000 3000 4000
#   RATES="2000" CONNECTIONS=1000 CHANNELS=100 DURATION=15 scripts/bench-peer.sh
#
# It is a benchmark, not a test: it asserts nothing. JSON reports go to $OUT (default: a
# temporary directory, printed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/confab
bench=target/release/confab-bench
for b in "$bin" "$bench"; do
    [ -x "$b" ] || { echo "missing $b: cargo build --release -p confab-server -p confab-bench" >&2; exit 1; }
done
command -v redis-server >/dev/null || { echo "missing redis-server (apt-get install redis-server)" >&2; exit 1; }
command -v node >/dev/null || { echo "missing node (Node.js 20 or newer)" >&2; exit 1; }
[ -d benches/socketio/node_modules ] || (cd benches/socketio && npm ci --no-audit --no-fund --silent)

rates="${RATES:-1000 2000 3000 4000}"
connections="${CONNECTIONS:-1000}"
channels="${CHANNELS:-100}"
duration="${DURATION:-15}"
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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; echo "no '$2' in $1" >&2; cat "$1" >&2; exit 1; }
stop_all() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
start_redis() { # name
    local port; port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no >"$dir/$1.log" 2>&1 &
    pids+=($!); redis_pid=$!
    wait_for "$dir/$1.log" "Ready to accept"
    redis_url="redis://127.0.0.1:$port"
}
run_bench() { # log, confab-bench args...
    local log=$1; shift
    "$bench" "$@" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
}
confab_env=(CONFAB_REALTIME_OPS_PER_SEC=1000000 CONFAB_REALTIME_OPS_BURST=1000000 RUST_LOG=warn)
start_confab() { # name, extra args...
    local name=$1; shift
    local port; port=$(free_port)
    env "${confab_env[@]}" "$bin" --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 \
        --data-dir "$dir/$name" "$@" >"$dir/$name.log" 2>&1 &
    pids+=($!); last_pid=$!
    wait_for "$dir/$name.log" "Confab is serving"
    last_url="http://127.0.0.1:$port"
}
summary() { # label, report
    python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
l = r["latency_ms"]
cpu = r.get("server_cpu_per_100k")
cpu = f"{cpu:.2f}" if cpu is not None else "-"
kernel = r.get("server_system_cpu_per_100k")
kernel = f"{kernel:.2f}" if kernel is not None else "-"
print(f"  {sys.argv[1]:<24} {r['delivered_per_sec']:>9,.0f}/s  p50 {l['p50']:>8.1f} ms  p99 {l['p99']:>8.1f} ms  "
      f"CPU {cpu:>6} s/100k (kernel {kernel:>5})  lost {r['lost']} dup {r['duplicates']} ooo {r['out_of_order']} errors {r['errors']}")
PY
}

for rate in $rates; do
    echo "rate $rate messages/s, $connections connections in $channels rooms, ${duration}s:"
    # Socket.IO: two nodes on one Redis.
    start_redis "redis-sio-$rate"
    urls=(); spids=("$redis_pid")
    for n in 1 2; do
        port=$(free_port)
        node benches/socketio/server.mjs --port "$port" --redis "$redis_url" >"$dir/sio$n-$rate.log" 2>&1 &
        pids+=($!); spids+=($!)
        wait_for "$dir/sio$n-$rate.log" "listening"
        urls+=(--url "http://127.0.0.1:$port")
    done
    node benches/socketio/load.mjs "${urls[@]}" --connections "$connections" --channels "$channels" \
        --rate "$rate" --duration "$duration" $(printf -- '--server-pid %s ' "${spids[@]}") \
        >"$out/socketio-$rate.json"
    summary "Socket.IO, 2 nodes" "$out/socketio-$rate.json"
    stop_all

    # Confab: one embedded node.
    start_confab "embedded-$rate"
    run_bench "$dir/bench-embedded-$rate.log" fanout --url "$last_url" --data-dir "$dir/embedded-$rate" \
        --connections "$connections" --channels "$channels" --rate "$rate" --duration "$duration" \
        --quiet --server-pid "$last_pid" --json "$out/confab-embedded-$rate.json"
    summary "Confab embedded" "$out/confab-embedded-$rate.json"
    stop_all

    # Confab: two cluster nodes on one Redis (same credentials, from the first node's files).
    start_redis "redis-cluster-$rate"
    start_confab "c1-$rate" --redis-url "$redis_url" --node-id c1
    c1_url=$last_url; c1_pid=$last_pid
    mkdir -p "$dir/c2-$rate" && cp "$dir/c1-$rate/credentials.json" "$dir/c2-$rate/credentials.json"
    start_confab "c2-$rate" --redis-url "$redis_url" --node-id c2
    run_bench "$dir/bench-cluster-$rate.log" fanout --url "$c1_url" --url "$last_url" \
        --data-dir "$dir/c1-$rate" --connections "$connections" --channels "$channels" \
        --rate "$rate" --duration "$duration" --quiet --server-pid "$c1_pid" \
        --server-pid "$last_pid" --server-pid "$redis_pid" --json "$out/confab-cluster-$rate.json"
    summary "Confab, 2 cluster nodes" "$out/confab-cluster-$rate.json"
    stop_all
done
echo "reports: $out"
