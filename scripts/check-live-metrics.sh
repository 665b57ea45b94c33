#!/usr/bin/env bash
# Starts a node (the binary given, on free loopback ports, in a temporary data directory),
# makes it do a little work, and lints its /metrics with `promtool check metrics`.
set -euo pipefail
bin="${1:-target/debug/confab}"
dir="$(mktemp -d)"
out="$dir/out.log"
"$bin" serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --data-dir "$dir/data" >"$out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do
    grep -q "Confab is serving" "$out" && break
    sleep 0.1
done
api="$(grep -o 'at http://[0-9.:]*' "$out" | head -1 | cut -d' ' -f2)"
admin="$(grep -o 'admin: http://[0-9.:]*' "$out" | head -1 | cut -d' ' -f2)"
[ -n "$admin" ] || { echo "the node did not start:"; cat "$out"; exit 1; }
# A request and a channel command, so that labelled series exist.
python3 - "$api" "$dir/data/credentials.json" <<'PY'
import base64, json, sys, urllib.request
api, creds = sys.argv[1], json.load(open(sys.argv[2]))
auth = base64.b64encode(f"{creds['account_sid']}:{creds['auth_token']}".encode()).decode()
def post(path, data):
    req = urllib.request.Request(api + path, data=data.encode(), headers={"Authorization": "Basic " + auth})
    return json.load(urllib.request.urlopen(req))
sid = post("/v2/Services", "FriendlyName=metrics")["sid"]
post(f"/v2/Services/{sid}/Channels", "FriendlyName=general")
PY
python3 -c "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1] + '/metrics').read().decode())" "$admin" >"$dir/metrics.txt"
promtool check metrics <"$dir/metrics.txt"
echo "promtool check metrics: $(grep -c '^# TYPE' "$dir/metrics.txt") metric families, no problems"
