#!/usr/bin/env bash
# Media upload/download on a release node: time, server CPU (from /proc) and peak RSS while
# 20 clients download one 32 MiB file at once through its temporary URL.
set -euo pipefail
BIN="${CONFAB_BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/release/confab}"
dir=$(mktemp -d)
export CONFAB_ACCOUNT_SID=AC$(printf 'ab%.0s' {1..16}) CONFAB_AUTH_TOKEN=benchtoken \
       CONFAB_API_KEY_SID=SK$(printf 'cd%.0s' {1..16}) CONFAB_API_KEY_SECRET=benchsecret RUST_LOG=warn
$BIN serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --data-dir "$dir/data" > "$dir/out" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q 'serving' "$dir/out" && break; sleep 0.1; done
url=$(sed -n 's/.*at \(http:[^ ]*\)\/v2.*/\1/p' "$dir/out")
auth="$CONFAB_ACCOUNT_SID:$CONFAB_AUTH_TOKEN"
svc=$(curl -s -u "$auth" -d FriendlyName=bench "$url/v2/Services" | python3 -c 'import json,sys;print(json.load(sys.stdin)["sid"])')
head -c $((32*1024*1024 - 1)) /dev/urandom > "$dir/file.bin"
rss() { awk '/VmRSS/{print $2}' /proc/$pid/status; }
cpu() { awk '{print ($14+$15)/100}' /proc/$pid/stat; }
echo "idle RSS: $(rss) KiB"
c0=$(cpu); t0=$(date +%s.%N)
for i in $(seq 8); do
  curl -s -u "$auth" -H 'Content-Type: application/octet-stream' --data-binary @"$dir/file.bin" "$url/v1/Services/$svc/Media?Filename=f$i.bin" > "$dir/up$i.json"
done
t1=$(date +%s.%N); c1=$(cpu)
echo "8 uploads of 32 MiB: $(echo "$t1 - $t0" | bc) s wall, $(echo "$c1 - $c0" | bc) CPU-s server, RSS after $(rss) KiB"
temp=$(python3 -c 'import json;print(json.load(open("'"$dir"'/up1.json"))["links"]["content_direct_temporary"])')
peak=0
( while kill -0 $pid 2>/dev/null; do r=$(rss); [ "$r" -gt "$(cat $dir/peak 2>/dev/null || echo 0)" ] && echo $r > $dir/peak; sleep 0.02; done ) &
sampler=$!
c0=$(cpu); t0=$(date +%s.%N)
for i in $(seq 20); do curl -s -o "$dir/down$i" "$temp" & done
wait $(jobs -p | grep -v "^$sampler$" | grep -v "^$pid$") 2>/dev/null || true
t1=$(date +%s.%N); c1=$(cpu)
ok=0; for i in $(seq 20); do cmp -s "$dir/down$i" "$dir/file.bin" && ok=$((ok+1)); done
echo "20 concurrent downloads of 32 MiB: $(echo "$t1 - $t0" | bc) s wall, $(echo "$c1 - $c0" | bc) CPU-s server, $ok/20 byte-identical, peak RSS $(cat $dir/peak) KiB"
kill $sampler 2>/dev/null || true
kill $pid; wait $pid 2>/dev/null || true
rm -rf "$dir"
