#!/usr/bin/env bash
# hostile.sh - normal traffic beside hostile clients (issue 13): 15 s of
# normal requests alone, then HOSTILE_SECONDS (default 60) of the same
# beside pipelining clients that never read, a slow reader and 64 MiB
# bodies on GET /healthz (bench/hostile_bench.py). Reports the normal
# requests' p50/p99 unloaded and under attack (goal: p99 under 3x), lost
# requests (goal: none) and the daemon's peak RSS growth.
# Writes bench/results/hostile.{json,md}.
set -euo pipefail
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
SECONDS_RUN=${HOSTILE_SECONDS:-60}
. tests/e2e/lib/wait.sh
TMP=$(mktemp -d /tmp/slorad-hostile.XXXXXX)
PID=
trap '[ -n "$PID" ] && kill -9 $PID 2>/dev/null; rm -rf "$TMP"' EXIT
printf '{"log_level": "warn", "idle_timeout_ms": 5000}' >"$TMP/conf.json"
PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BUILD/slorad" serve --config "$TMP/conf.json" --listen "127.0.0.1:$PORT" --state-dir "$TMP/state" \
    --model models/stories260K.bin --tokenizer models/tok512.bin 2>"$TMP/log" &
PID=$!
ready() { curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; }
wait_for "the daemon to be ready" ready
curl -sf -o /dev/null -T tests/fixtures/lokr.safetensors "http://127.0.0.1:$PORT/v1/adapters/bench/style"
mkdir -p bench/results
"$PYTHON" bench/hostile_bench.py "$PORT" "$PID" "$SECONDS_RUN" bench/results/hostile.json >/dev/null
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=
[ "$rc" = 0 ] || { echo "bench/hostile.sh: daemon exited $rc on SIGTERM" >&2; tail -20 "$TMP/log" >&2; exit 1; }
"$PYTHON" - bench/results/hostile.json "$(nproc)" >bench/results/hostile.md <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
u, a, at = r["unloaded"], r["under_attack"], r["attacks"]
s = at["slow_reader"]
print("## Hostile clients beside normal traffic (bench/hostile.sh)\n")
print("%s s under attack on %s CPUs (daemon, attackers and clients share them): 2 clients in a closed "
      "loop (8-token completions on the base model and an adapter, /v1/models, /healthz) beside 2 "
      "connections pipelining 13 MiB of GET /healthz without reading, 1 slow reader and 4 "
      "connections sending 64 MiB bodies to GET /healthz.\n" % (r["seconds"], sys.argv[2]))
print("| normal requests | n | lost | p50 ms | p99 ms |")
print("|---|---|---|---|---|")
print("| alone | %d | %d | %.3f | %.3f |" % (u["requests"], u["lost"], u["p50_ms"], u["p99_ms"]))
print("| under attack | %d | %d | %.3f | %.3f |" % (a["requests"], a["lost"], a["p50_ms"], a["p99_ms"]))
print("\np99 under attack / alone: **%.2fx** (goal < 3x); lost: **%d** (goal 0)." % (r["p99_ratio"], a["lost"]))
print("Daemon RSS %d kB before, peak growth **%d kB**." % (r["rss_before_kb"], r["rss_peak_growth_kb"]))
print("Attackers: %d never-reading connections (each blocked, then closed after idle_timeout_ms "
      "without progress); the slow reader read %d of %d replies, in order: %s; 64 MiB bodies "
      "answered %s." % (at["pipeline_connections"], s["replies_read"], s["sent"], s["in_order"],
                        ", ".join("%s x%d" % kv for kv in sorted(at["body_statuses"].items()))))
PY
cat bench/results/hostile.md
