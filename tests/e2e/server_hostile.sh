#!/usr/bin/env bash
# server_hostile.sh - hostile clients cost the daemon bounded memory (its
# peak RSS growth, /proc/PID/status, stays under 64 MiB), and a slow
# reader still gets every response in order:
#   1. one connection pipelines 13 MiB of `GET /healthz` without reading
#      (the daemon stops reading it at max_queued_reply_bytes /
#      max_queued_replies; then the client reads all ~290k replies);
#   2. four connections send `GET /healthz` with a 64 MiB Content-Length
#      body (413 before the body is read), and one a 64 MiB chunked body
#      (413 at 1 KiB).
# Plus the JSON endpoints' limits: max_json_bytes (declared and chunked),
# max_json_depth (400) and max_json_elements (413), each named in the error.
# Under make check-asan, ASan's quarantine is made small so that freed
# memory does not count as growth; the same bound holds.
. "$(dirname "$0")/lib/daemon.sh"
export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=4:thread_local_quarantine_size_kb=256"
LIMIT_KB=$((64 * 1024))

printf '{"max_json_bytes": 4096, "max_json_depth": 8, "max_json_elements": 100}' >"$TMP/conf.json"
start_daemon "$TMP/state" --config "$TMP/conf.json"
hostile() { "$PYTHON" "$E2E_LIB/hostile.py" "$1" "$PORT" "$DAEMON_PID" "${@:2}"; }
field() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

out=$(hostile pipeline 13)
n=$(field requests "$out")
check "pipelined: every reply arrives" "$n" "$(field replies "$out")"
check "pipelined: replies in request order" 1 "$(field in_order "$out")"
g=$(field growth_kb "$out")
[ "$g" -lt "$LIMIT_KB" ] || fail "pipelined $n requests without reading: RSS grew by $g kB"
echo "ok - pipelined $n requests without reading: RSS grew by $g kB (< $LIMIT_KB)"
check "blocked connection gauge back to 0" "slorad_blocked_connections 0" \
    "$(curl -s "$URL/metrics" | grep '^slorad_blocked_connections ')"

out=$(hostile bodies 4 64)
check "64 MiB bodies on GET /healthz -> 413 unread" "413,413,413,413" "$(field statuses "$out")"
g=$(field growth_kb "$out")
[ "$g" -lt "$LIMIT_KB" ] || fail "4 x 64 MiB bodies: RSS grew by $g kB"
echo "ok - 4 x 64 MiB bodies: RSS grew by $g kB (< $LIMIT_KB)"

out=$(hostile chunked 64)
check "64 MiB chunked body on GET /healthz -> 413" "413" "$(field statuses "$out")"
g=$(field growth_kb "$out")
[ "$g" -lt "$LIMIT_KB" ] || fail "64 MiB chunked body: RSS grew by $g kB"
echo "ok - 64 MiB chunked body: RSS grew by $g kB (< $LIMIT_KB)"

# JSON bodies
tok() { curl -s -w ' %{http_code}' "$URL/v1/tokenize" "$@"; }
big=$("$PYTHON" -c 'print("{\"prompt\": \"" + "a" * 4100 + "\"}")')
out=$(tok -d "$big")
check_contains "JSON body over max_json_bytes -> 413" " 413" "$out"
check_contains "413 names max_json_bytes" "exceeds the limit of 4096 bytes (max_json_bytes)" "$out"
out=$(tok -H 'Transfer-Encoding: chunked' -d "$big")
check_contains "chunked JSON body over max_json_bytes -> 413" " 413" "$out"
check_contains "chunked 413 says the limit" "exceeds the limit of 4096 bytes" "$out"
out=$(tok -d '{"prompt": "a", "x": [[[[[[[[1]]]]]]]]}')
check_contains "JSON nested 9 deep -> 400" " 400" "$out"
check_contains "400 names max_json_depth" "nested deeper than 8 levels (max_json_depth)" "$out"
check "8 deep is fine" " 200" "$(tok -o /dev/null -d '{"prompt": "a", "x": [[[[[[[1]]]]]]]}')"
# object, 2 keys, "a", the array: 5 elements plus the zeros
zeros() { "$PYTHON" -c 'import sys; print("{\"prompt\": \"a\", \"x\": [" + ",".join(["0"] * int(sys.argv[1])) + "]}")' "$1"; }
out=$(tok -d "$(zeros 96)")
check_contains "101 JSON values and keys -> 413" " 413" "$out"
check_contains "413 names max_json_elements" "more than 100 values and keys (max_json_elements)" "$out"
check "100 JSON values and keys are fine" " 200" "$(tok -o /dev/null -d "$(zeros 95)")"

check "still serving" 200 "$(status GET "$URL/healthz")"
stop_daemon
echo "server_hostile: $N_CHECKS checks passed"
