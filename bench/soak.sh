#!/usr/bin/env bash
# soak.sh - load and soak (issue 7), loopback only, bounded in time:
# SOAK_SECONDS (default 600) of mixed traffic (wrk completions over 32
# adapters under a delta cache that holds 16, hot swaps, churn uploads and
# deletes, downloads, metrics scrapes; RSS, fds and memory counters every
# 10 s), then connection storms (5,000 connections opened and dropped, 500
# slow-loris clients) while a probe keeps being served; the fd count must
# return to its baseline. Writes bench/results/soak.{json,md}.
set -euo pipefail
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
SECONDS_RUN=${SOAK_SECONDS:-600}
command -v wrk >/dev/null || { echo "bench/soak.sh: wrk missing (make bench installs it)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 12000 ] || { echo "bench/soak.sh: RLIMIT_NOFILE $(ulimit -n) < 12000" >&2; exit 1; }
TMP=$(mktemp -d /tmp/slorad-soak.XXXXXX)
PID=
trap '[ -n "$PID" ] && kill -9 $PID 2>/dev/null; rm -rf "$TMP"' EXIT
for i in $(seq 0 7); do
    "$PYTHON" tests/e2e/lib/gen_adapter.py "$TMP/a$i.safetensors" --seed $((40 + i)) --rank $((2 + i % 4))
done
# 16 adapters of the largest rank fit the cache (5 layers x wq,wv: 122,880 B each)
cat >"$TMP/conf.json" <<JSON
{"max_connections": 8000, "header_timeout_ms": 3000, "body_timeout_ms": 10000,
 "delta_cache_bytes": 1966080, "log_level": "warn", "queue_depth": 1024}
JSON
PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BUILD/slorad" serve --config "$TMP/conf.json" --listen "127.0.0.1:$PORT" --state-dir "$TMP/state" \
    --model models/stories260K.bin --tokenizer models/tok512.bin 2>"$TMP/log" &
PID=$!
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.05; done
mkdir -p bench/results
SOAK_HEADER_TIMEOUT_S=3 "$PYTHON" bench/soak.py "$PORT" "$PID" "$TMP" "$SECONDS_RUN" bench/results/soak.json
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=
[ "$rc" = 0 ] || { echo "bench/soak.sh: daemon exited $rc on SIGTERM" >&2; tail -20 "$TMP/log" >&2; exit 1; }
"$PYTHON" bench/soak_report.py bench/results/soak.json "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
    >bench/results/soak.md
cat bench/results/soak.md
