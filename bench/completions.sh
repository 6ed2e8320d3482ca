#!/usr/bin/env bash
# completions.sh - the daemon over HTTP on stories260K: completions/s with
# max_tokens 1 under wrk (4 connections; base model and one adapter), and
# swap latency (PUT of a new adapter version until a completion served from
# it has returned), median and worst of 20 swaps.
# Writes bench/results/completions.{json,md}.
set -euo pipefail
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
command -v wrk >/dev/null || { echo "completions.sh: wrk is not installed" >&2; exit 1; }
TMP=$(mktemp -d /tmp/slorad-bench.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
"$BUILD/slorad" serve --listen 127.0.0.1:0 --state-dir "$TMP/state" --model models/stories260K.bin \
    --tokenizer models/tok512.bin 2>"$TMP/log" &
PID=$!
for _ in $(seq 1 200); do grep -q "listening on" "$TMP/log" 2>/dev/null && break; sleep 0.05; done
PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/log" | head -1)
URL=http://127.0.0.1:$PORT
for _ in $(seq 1 100); do curl -sf "$URL/readyz" >/dev/null && break; sleep 0.05; done
curl -s -o /dev/null -T tests/fixtures/lokr.safetensors "$URL/v1/adapters/bench/a"

rps() { # MODEL
    cat >"$TMP/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"model":"$1","prompt":"Once upon a time","max_tokens":1}'
LUA
    wrk -t2 -c4 -d"${SECONDS_PER_RUN:-5}"s -s "$TMP/post.lua" "$URL/v1/completions" |
        awk '/Requests\/sec/ {print $2}'
}
base=$(rps stories260K)
adapter=$(rps bench/a)

swaps=$("$PYTHON" - "$URL" <<'PY'
import json, sys, time, urllib.request
url = sys.argv[1]
files = [open("tests/fixtures/lora_wq_wv.safetensors", "rb").read(),
         open("tests/fixtures/lokr.safetensors", "rb").read()]
lat = []
for i in range(20):
    t0 = time.perf_counter()
    req = urllib.request.Request(url + "/v1/adapters/bench/swap", data=files[i % 2], method="PUT")
    version = json.load(urllib.request.urlopen(req))["version"]
    body = json.dumps({"model": "bench/swap", "prompt": "Hi", "max_tokens": 1}).encode()
    out = json.load(urllib.request.urlopen(urllib.request.Request(url + "/v1/completions", data=body)))
    assert out["adapter_version"] == version
    lat.append((time.perf_counter() - t0) * 1e3)
lat.sort()
print("%.2f %.2f" % (lat[len(lat) // 2], lat[-1]))
PY
)
p50=${swaps% *}
worst=${swaps#* }
mkdir -p bench/results
printf '{"completions_per_s": {"base": %s, "adapter": %s}, "swap_ms": {"p50": %s, "max": %s}}\n' \
    "$base" "$adapter" "$p50" "$worst" >bench/results/completions.json
cat >bench/results/completions.md <<MD
## HTTP completions (stories260K)

\`wrk -t2 -c4\`, \`POST /v1/completions\` with \`max_tokens: 1\` (prompt "Once upon a time"); swap = PUT of a new version until a completion served from it returned (20 swaps, the fixture adapters lora_wq_wv/lokr).

| measure | value | reference |
|---|---:|---|
| completions/s, base model | $base | llama.cpp server ~600/s (n_predict 8) |
| completions/s, adapter (warm) | $adapter | |
| swap latency p50 | $p50 ms | |
| swap latency max | $worst ms | |
MD
cat bench/results/completions.md
