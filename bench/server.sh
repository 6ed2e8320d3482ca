#!/usr/bin/env bash
# server.sh - daemon benchmarks (issue 4): upload-to-servable latency of a
# 100 KB adapter (p50/p99 over 1,000 uploads), 10,000 distinct adapters
# resident (RSS and bytes per adapter beyond the file), and requests/s of
# GET /v1/adapters/{t}/{n} under wrk with 4 connections.
# Writes bench/results/server.{json,md}.
set -euo pipefail
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
command -v wrk >/dev/null || { echo "bench/server.sh: wrk missing (apt-get install wrk)" >&2; exit 1; }
TMP=$(mktemp -d /tmp/slorad-bench.XXXXXX)
trap 'kill -9 $PID 2>/dev/null || true; rm -rf "$TMP"' EXIT
"$BUILD/slorad" serve --listen 127.0.0.1:0 --state-dir "$TMP/state" --model models/stories260K.bin \
    --tokenizer models/tok512.bin --log-level warn 2>"$TMP/log" &
PID=$!
for _ in $(seq 1 200); do grep -q "listening on" "$TMP/log" 2>/dev/null && break; sleep 0.05; done
# warn level hides the listening line: ask the kernel instead
PORT=$("$PYTHON" - "$PID" <<'PY'
import os, sys, time
pid = sys.argv[1]
for _ in range(200):
    inodes = set()
    for fd in os.listdir("/proc/%s/fd" % pid):
        try:
            t = os.readlink("/proc/%s/fd/%s" % (pid, fd))
        except OSError:
            continue
        if t.startswith("socket:["):
            inodes.add(t[8:-1])
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        if f[3] == "0A" and f[9] in inodes:
            print(int(f[1].split(":")[1], 16))
            sys.exit(0)
    time.sleep(0.05)
sys.exit(1)
PY
)
"$PYTHON" bench/server_bench.py "$PORT" "$PID" "$TMP"
kill -TERM "$PID"
wait "$PID"
