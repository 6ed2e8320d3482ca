#!/usr/bin/env bash
# server_drain.sh - SIGTERM drains: no new connections, an upload whose body
# is still arriving completes (201, Connection: close) and the daemon exits
# 0; a request that never completes is cut at drain_timeout_ms and the
# daemon still exits 0; so is a long streamed completion (engine job).
. "$(dirname "$0")/lib/daemon.sh"

A=$FIXTURES/lokr.safetensors
printf '{"drain_timeout_ms": 5000, "body_timeout_ms": 20000}' >"$TMP/conf.json"
start_daemon "$TMP/state" --config "$TMP/conf.json"

# half an upload, SIGTERM, then the rest
"$PYTHON" - "$PORT" "$A" "$TMP" "$E2E_LIB" >"$TMP/upload.out" <<'PY' &
import os, socket, sys, time
port, path, tmp, lib = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
sys.path.insert(0, lib)
from raw import read_all
body = open(path, "rb").read()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"PUT /v1/adapters/acme/drain HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body))
s.sendall(body[: len(body) // 2])
open(tmp + "/half", "w").close()
while not os.path.exists(tmp + "/go"):
    time.sleep(0.02)
s.sendall(body[len(body) // 2:])
sys.stdout.write(read_all(s, 5).decode(errors="replace"))
PY
client=$!
wait_for "half the upload sent" test -e "$TMP/half"
# the upload's call and this scrape's own
wait_for "the upload in flight" metric_is slorad_requests_in_flight 2
kill -TERM "$DAEMON_PID"
wait_for "the drain to start" log_has "received SIGTERM: draining"
kill -0 "$DAEMON_PID" 2>/dev/null || fail "daemon exited with an upload in flight"
echo "ok - still draining with an upload in flight"
if curl -s -m 2 -o /dev/null "$URL/healthz"; then fail "new connection accepted while draining"; fi
echo "ok - new connections refused while draining"
touch "$TMP/go"
wait "$client"
check_contains "in-flight upload completes" "HTTP/1.1 201" "$(cat "$TMP/upload.out")"
check_contains "answered with Connection: close" "Connection: close" "$(cat "$TMP/upload.out")"
stop_rc=0
wait "$DAEMON_PID" || stop_rc=$?
DAEMON_PID=
check "daemon exits 0 after the drain" 0 "$stop_rc"
test -f "$TMP/state/adapters/acme/drain.safetensors" || fail "drained upload not stored"
echo "ok - drained upload stored"

# a request that never completes is cut at the drain timeout
printf '{"drain_timeout_ms": 300, "body_timeout_ms": 20000}' >"$TMP/conf.json"
start_daemon "$TMP/state" --config "$TMP/conf.json"
"$PYTHON" - "$PORT" "$TMP" >/dev/null <<'PY' &
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"PUT /v1/adapters/acme/never HTTP/1.1\r\nContent-Length: 1000\r\n\r\nabc")
s.recv(1)  # never sends the rest: holds the request until the daemon closes it
PY
client=$!
wait_for "the stuck upload in flight" metric_is slorad_requests_in_flight 2
stop_daemon
check_contains "the drain timeout cut the stuck request" \
    "drain timeout: closing 1 connection(s) with requests in flight" "$(cat "$DAEMON_LOG")"
kill "$client" 2>/dev/null || true
wait "$client" 2>/dev/null || true
# SIGTERM with a long streamed completion in flight: the drain timeout cuts
# it, the engine job is canceled and waited for before the loop closes;
# exit 0 and (under `make check-asan`) no sanitizer report.
"$SLORAD" gen-model -o "$TMP/slow.bin" --dim 256 --hidden 688 --layers 4 --heads 8 --kv-heads 8 \
    --seq-len 1024 --tokenizer-out "$TMP/slow_tok.bin" >/dev/null
printf '{"drain_timeout_ms": 100, "max_tokens": 1000}' >"$TMP/conf.json"
start_daemon "$TMP/state" --config "$TMP/conf.json" --model "$TMP/slow.bin" --tokenizer "$TMP/slow_tok.bin"
curl -sN "$URL/v1/completions" -d '{"model":"slow","prompt":[1],"max_tokens":1000,"temperature":0,"stream":true}' \
    >"$TMP/sse" 2>/dev/null &
client=$!
wait_for "the stream to start" file_has "$TMP/sse" '^data: \{'
echo "ok - stream started"
stop_daemon
wait "$client" 2>/dev/null || true
if grep -q '^data: \[DONE\]' "$TMP/sse"; then fail "the stream finished before the drain timeout: nothing was in flight"; fi
echo "ok - the stream was still running when the drain timeout cut it"
if grep -E "AddressSanitizer|LeakSanitizer|runtime error|never completed" "$DAEMON_LOG"; then
    fail "shutdown with a stream in flight left a report"
fi
echo "ok - no sanitizer report, every call completed before the loop closed"
echo "server_drain: $N_CHECKS checks passed"
