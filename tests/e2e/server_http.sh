#!/usr/bin/env bash
# server_http.sh - HTTP behaviour of the real daemon: pipelining in order,
# keep-alive and Connection: close, X-Request-Id, chunked uploads, header
# limit (431), slow-loris header/body timeouts and the total body deadline
# (408), an Expect other than 100-continue (417), idle timeout,
# connection limit, and a 2 MiB `Expect: 100-continue` upload answered
# `100 Continue` at once (so curl does not stall).
. "$(dirname "$0")/lib/daemon.sh"

A=$FIXTURES/lokr.safetensors
cat >"$TMP/conf.json" <<'JSON'
{"header_timeout_ms": 700, "body_timeout_ms": 700, "body_deadline_ms": 1500, "idle_timeout_ms": 1500,
 "max_header_bytes": 2048, "max_connections": 4}
JSON
start_daemon "$TMP/state" --config "$TMP/conf.json"

# pipelined requests on one connection, answered in order
resp=$(printf 'GET /healthz HTTP/1.1\r\nX-Request-Id: p1\r\n\r\nGET /nope HTTP/1.1\r\nX-Request-Id: p2\r\n\r\nGET /readyz HTTP/1.1\r\nX-Request-Id: p3\r\nConnection: close\r\n\r\n' | raw)
check "pipelined: three answers in order" "200 p1 404 p2 200 p3" \
    "$(printf '%s' "$resp" | tr -d '\r' | awk '/^HTTP\/1.1/ {s=$2} /^X-Request-Id:/ {printf "%s%s %s", sep, s, $2; sep=" "}')"
check_contains "Connection: close honoured" "Connection: close" "$resp"

# many small pipelined requests in one write: all answered, in order
resp=$("$PYTHON" -c 'import sys; sys.stdout.write("".join("GET /healthz HTTP/1.1\r\nX-Request-Id: q%d\r\n\r\n" % i for i in range(2000)) + "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")' | RAW_WAIT=5 raw)
check "2001 pipelined requests answered" 2001 "$(printf '%s' "$resp" | grep -c '^HTTP/1.1 200')"
check "pipelined answers in request order" "q0 q1 q2 q1999" \
    "$(printf '%s' "$resp" | tr -d '\r' | sed -n 's/^X-Request-Id: \(q[0-9]*\)$/\1/p' | sed -n '1p;2p;3p;$p' | tr '\n' ' ' | sed 's/ $//')"

# a pipelined upload between two GETs
resp=$( (printf 'GET /healthz HTTP/1.1\r\n\r\nPUT /v1/adapters/acme/pipe HTTP/1.1\r\nContent-Length: %d\r\n\r\n' "$(stat -c %s "$A")"; cat "$A"; printf 'GET /v1/adapters/acme/pipe HTTP/1.1\r\nConnection: close\r\n\r\n') | raw)
check "pipelined upload then GET" "200 201 200" "$(printf '%s' "$resp" | grep -ao '^HTTP/1.1 [0-9]*' | cut -d' ' -f2 | tr '\n' ' ' | sed 's/ $//')"

# request ids
check_contains "client X-Request-Id echoed" "X-Request-Id: my-id-1" "$(curl -s -D - -o /dev/null -H 'X-Request-Id: my-id-1' "$URL/healthz")"
check_contains "generated X-Request-Id" "X-Request-Id: " "$(curl -s -D - -o /dev/null "$URL/healthz")"
grep -q "id=my-id-1 " "$DAEMON_LOG" || fail "request id not in the access log"
echo "ok - request id in the access log"

# chunked upload
check "chunked upload -> 201" 201 "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Transfer-Encoding: chunked' --data-binary "@$A" "$URL/v1/adapters/acme/chunked")"
check "chunked upload stored exactly" "$(sha256sum <"$A")" "$(curl -s "$URL/v1/adapters/acme/chunked/file" | sha256sum)"

# an Expect other than 100-continue -> 417 (RFC 9110 10.1.1), body never read
resp=$(printf 'PUT /v1/adapters/acme/x HTTP/1.1\r\nExpect: 200-ok\r\nContent-Length: 3\r\n\r\nabc' | raw)
check_contains "Expect: 200-ok -> 417" "HTTP/1.1 417 Expectation Failed" "$resp"
check_contains "417 is JSON" '"code":"expect"' "$resp"
check "417 stored nothing" 404 "$(status GET "$URL/v1/adapters/acme/x")"

# header limit
big=$(head -c 3000 /dev/zero | tr '\0' a)
resp=$(printf 'GET /healthz HTTP/1.1\r\nX-Big: %s\r\n\r\n' "$big" | raw)
check_contains "header bytes over the limit -> 431" "HTTP/1.1 431" "$resp"
check_contains "431 is JSON" '"code":"hdrtoolarge"' "$resp"

# slow_client WHAT HEAD INTERVAL COUNT FRAGMENT: trickle.py must get a 408
# whose body contains FRAGMENT before it sent all its COUNT bytes.
slow_client() {
    local resp sent
    resp=$("$PYTHON" "$E2E_LIB/trickle.py" "$PORT" "$2" "$3" "$4")
    check_contains "$1 -> 408" "HTTP/1.1 408" "$resp"
    check_contains "$1: 408 says why" "$5" "$resp"
    sent=$(sed -n '1s/^sent \([0-9]*\) of.*/\1/p' <<<"$resp")
    [ "$sent" -lt "$4" ] || fail "$1: the client sent all $4 bytes before the 408"
    echo "ok - $1: dropped after $sent of $4 bytes"
}

# slow-loris: headers never finish (one byte every 100 ms) -> 408 then close
slow_client "slow headers" 'GET /healthz HTTP/1.1\r\n' 0.1 40 "timed out reading the request headers"

# slow body -> 408
resp=$(printf 'PUT /v1/adapters/acme/slow HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc' | RAW_WAIT=3 raw)
check_contains "stalled body -> 408" "HTTP/1.1 408" "$resp"
check "stalled upload stored nothing" 404 "$(status GET "$URL/v1/adapters/acme/slow")"
check "name is not left busy" 201 "$(status PUT "$URL/v1/adapters/acme/slow" -T "$A")"

# a body trickling in faster than the silence timeout still meets the total
# deadline (one byte every 300 ms: 30 s in all, never 700 ms silent)
slow_client "trickling body" 'PUT /v1/adapters/acme/trickle HTTP/1.1\r\nContent-Length: 100\r\n\r\n' \
    0.3 100 "did not complete within body_deadline_ms"
check "trickled upload stored nothing" 404 "$(status GET "$URL/v1/adapters/acme/trickle")"

# idle keep-alive connections are closed
resp=$("$PYTHON" - "$PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(5)
t = time.time()
s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
data = b""
while b"\r\n\r\n" not in data or not data.endswith(b"}\n"):
    data += s.recv(65536)
closed = s.recv(1) == b""
print("closed" if closed else "open", "%.1f" % (time.time() - t))
PY
)
check_contains "idle keep-alive connection closed" "closed" "$resp"

# connection limit: the 5th concurrent connection is refused cleanly
resp=$("$PYTHON" - "$PORT" "$E2E_LIB" <<'PY'
import socket, sys, time
sys.path.insert(0, sys.argv[2])
from raw import read_all
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
for h in held:  # answered: the daemon holds all four
    h.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
    got = b""
    while not got.endswith(b"}\n"):
        got += h.recv(65536)
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
out = read_all(s, 3)
for h in held:
    h.close()
sys.stdout.write(out.decode(errors="replace"))
PY
)
check_contains "over max_connections -> 503" "HTTP/1.1 503" "$resp"
check_contains "503 is JSON" '"code":"busy"' "$resp"
served() { [ "$(status GET "$URL/healthz")" = 200 ]; }
wait_for "the daemon to serve again once connections close" served
echo "ok - served again once connections close"

# 2 MiB upload with Expect: 100-continue: no one-second stall
"$PYTHON" "$E2E_LIB/gen_adapter.py" "$TMP/big.safetensors" --rank 92 --modules wq,wk,wv,wo,w1,w2,w3
size=$(stat -c %s "$TMP/big.safetensors")
[ "$size" -gt 2000000 ] || fail "generated adapter is only $size bytes"
out=$(curl -s -v -o /dev/null -w '%{http_code}\n' -H 'Expect: 100-continue' -T "$TMP/big.safetensors" "$URL/v1/adapters/acme/big" 2>&1)
check "2 MiB upload -> 201" 201 "$(tail -1 <<<"$out")"
# curl waits a second for `100 Continue` before it sends the body anyway;
# the daemon sends it at once (the stall is a bench figure, not a test).
check_contains "100 Continue sent before the body" "< HTTP/1.1 100 Continue" "$out"
check "2 MiB adapter stored exactly" "$(sha256sum <"$TMP/big.safetensors")" "$(curl -s "$URL/v1/adapters/acme/big/file" | sha256sum)"

stop_daemon
echo "server_http: $N_CHECKS checks passed"
