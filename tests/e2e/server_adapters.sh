#!/usr/bin/env bash
# server_adapters.sh - the adapter API end to end against the real daemon:
# upload, list, get, 304, download byte-equal, replace, dry run, If-Match /
# If-None-Match, delete, every bad name form, malformed and truncated
# bodies, oversized bodies refused before they are read.
. "$(dirname "$0")/lib/daemon.sh"

A=$FIXTURES/lokr.safetensors
B=$FIXTURES/lora_wq_wv.safetensors
ver() { sha256sum "$1" | cut -c1-16; }
VA=$(ver "$A")
VB=$(ver "$B")

printf '{"max_body_bytes": 65536}' >"$TMP/conf.json"
start_daemon "$TMP/state" --config "$TMP/conf.json"

check "healthz" 200 "$(status GET "$URL/healthz")"
check "readyz" 200 "$(status GET "$URL/readyz")"
check "empty list" '{"object":"list","data":[]}' "$(curl -s "$URL/v1/adapters")"

# upload (curl -T sends Expect: 100-continue and a raw body)
out=$(curl -s -D "$TMP/h" -T "$A" "$URL/v1/adapters/acme/style")
check "PUT new -> 201 (after 100 Continue)" "100 201" "$(grep -o '^HTTP/1.1 [0-9]*' "$TMP/h" | cut -d' ' -f2 | tr '\n' ' ' | sed 's/ $//')"
check_contains "ETag is the version" "ETag: \"$VA\"" "$(cat "$TMP/h")"
check_contains "response id" '"id":"acme/style"' "$out"
check_contains "response version" "\"version\":\"$VA\"" "$out"
check_contains "response bytes" "\"bytes\":$(stat -c %s "$A")" "$out"
check_contains "response modules" '"modules":["wq","wo","w1"]' "$out"
check_contains "response layers" '"layers":[1,3]' "$out"
check_contains "response created" '"created":' "$out"
check_contains "response dense_bytes" '"dense_bytes":' "$out"
check "file persisted" "$(sha256sum <"$A")" "$(sha256sum <"$TMP/state/adapters/acme/style.safetensors")"

check_contains "list shows it" '"id":"acme/style"' "$(curl -s "$URL/v1/adapters")"
check_contains "models lists it with parent" '"id":"acme/style","object":"model"' "$(curl -s "$URL/v1/models")"
check_contains "models parent" '"parent":"stories260K"' "$(curl -s "$URL/v1/models")"
check "GET metadata" 200 "$(status GET "$URL/v1/adapters/acme/style")"
check "GET If-None-Match current -> 304" 304 "$(status GET "$URL/v1/adapters/acme/style" -H "If-None-Match: \"$VA\"")"
check "GET If-None-Match other -> 200" 200 "$(status GET "$URL/v1/adapters/acme/style" -H 'If-None-Match: "0000000000000000"')"
curl -s -o "$TMP/dl" -D "$TMP/h" "$URL/v1/adapters/acme/style/file"
check "download equals upload" "$(sha256sum <"$A")" "$(sha256sum <"$TMP/dl")"
check_contains "download content type" "Content-Type: application/octet-stream" "$(cat "$TMP/h")"
resp=$(printf 'HEAD /v1/adapters/acme/style/file HTTP/1.1\r\nConnection: close\r\n\r\n' | raw)
check_contains "HEAD: status and length of the GET" "Content-Length: $(stat -c %s "$A")" "$resp"
check "HEAD: no body" "" "$(printf '%s' "$resp" | sed '1,/^\r$/d')"
check "file If-None-Match -> 304" 304 "$(status GET "$URL/v1/adapters/acme/style/file" -H "If-None-Match: \"$VA\"")"

# replace
check "If-Match stale -> 412" 412 "$(status PUT "$URL/v1/adapters/acme/style" -T "$B" -H 'If-Match: "0000000000000000"')"
check "If-None-Match * on existing -> 412" 412 "$(status PUT "$URL/v1/adapters/acme/style" -T "$B" -H 'If-None-Match: *')"
check "PUT replace with If-Match -> 200" 200 "$(status PUT "$URL/v1/adapters/acme/style" -T "$B" -H "If-Match: \"$VA\"")"
check_contains "version changed" "\"version\":\"$VB\"" "$(curl -s "$URL/v1/adapters/acme/style")"
check "old ETag no longer 304" 200 "$(status GET "$URL/v1/adapters/acme/style" -H "If-None-Match: \"$VA\"")"
check "If-None-Match * on new -> 201" 201 "$(status PUT "$URL/v1/adapters/acme/other" -T "$A" -H 'If-None-Match: *')"
check "JSON errors ignore Content-Type" 201 "$(status PUT "$URL/v1/adapters/acme/form" --data-binary "@$A" -H 'Content-Type: application/x-www-form-urlencoded')"

# dry run
out=$(curl -s -T "$A" "$URL/v1/adapters/acme/dry?dry_run=1")
check_contains "dry run answers" '"dry_run":true' "$out"
check "dry run stores nothing" 404 "$(status GET "$URL/v1/adapters/acme/dry")"
test ! -e "$TMP/state/adapters/acme/dry.safetensors" || fail "dry run wrote a file"

# bad names never reach the filesystem
for path in Acme/x acme/X ../x acme/.. acme/. ./x acme/a%2Fb a%2fb/x acme/a%2e%2e "acme/" "/x" \
    acme/-x "acme/$(printf 'a%.0s' $(seq 65))" acme/a%00b; do
    code=$(curl -s --path-as-is -o "$TMP/body" -w "%{http_code}" -X PUT --data-binary "@$A" "$URL/v1/adapters/$path" || true)
    check "bad name '$path' -> 400" 400 "$code"
    check_contains "bad name '$path' is invalid_request_error" invalid_request_error "$(cat "$TMP/body")"
done
resp=$(printf 'PUT /v1/adapters/acme/a b HTTP/1.1\r\nContent-Length: 1\r\n\r\nx' | raw)
check_contains "space in the path -> 400" "HTTP/1.1 400" "$resp"
check "no stray files from bad names" "form.safetensors other.safetensors style.safetensors" \
    "$(ls "$TMP/state/adapters/acme" | tr '\n' ' ' | sed 's/ $//')"
check "only the acme namespace exists" "acme" "$(ls "$TMP/state/adapters" | tr '\n' ' ' | sed 's/ $//')"

# malformed and truncated bodies: 422 with the validator's message
head -c 1000 /dev/urandom >"$TMP/junk"
head -c $(($(stat -c %s "$A") / 2)) "$A" >"$TMP/half"
out=$(curl -s -w ' %{http_code}' -T "$TMP/junk" "$URL/v1/adapters/acme/junk")
check_contains "random bytes -> 422" " 422" "$out"
check_contains "random bytes error type" invalid_request_error "$out"
out=$(curl -s -w ' %{http_code}' -T "$TMP/half" "$URL/v1/adapters/acme/half")
check_contains "truncated file -> 422" " 422" "$out"
check "empty body -> 422" 422 "$(status PUT "$URL/v1/adapters/acme/empty" --data-binary '')"
check "rejected uploads stored nothing" 404 "$(status GET "$URL/v1/adapters/acme/junk")"

# oversized bodies: refused from the headers, before the body is sent
resp=$(printf 'PUT /v1/adapters/acme/big HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n' | RAW_WAIT=2 raw)
check_contains "declared oversize -> 413 at once" "HTTP/1.1 413" "$resp"
check_contains "413 names the limit" "max_body_bytes" "$resp"
check_contains "413 closes" "Connection: close" "$resp"
resp=$( ( printf 'PUT /v1/adapters/acme/big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n';
          for _ in $(seq 1 20); do printf '1000\r\n'; head -c 4096 /dev/zero; printf '\r\n'; done ) | RAW_WAIT=2 raw)
check_contains "chunked oversize -> 413" "HTTP/1.1 413" "$resp"
resp=$(printf 'PUT /v1/adapters/acme/big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10000000\r\n\r\n' | RAW_WAIT=2 raw)
check_contains "100-continue oversize -> final 413, no 100" "HTTP/1.1 413" "$resp"
case "$resp" in *"100 Continue"*) fail "sent 100 Continue for an oversized body" ;; esac

# delete
check "DELETE with stale If-Match -> 412" 412 "$(status DELETE "$URL/v1/adapters/acme/style" -H 'If-Match: "0000000000000000"')"
check "DELETE -> 204" 204 "$(status DELETE "$URL/v1/adapters/acme/style")"
check "GET after delete -> 404" 404 "$(status GET "$URL/v1/adapters/acme/style")"
check "DELETE again -> 404" 404 "$(status DELETE "$URL/v1/adapters/acme/style")"
test ! -e "$TMP/state/adapters/acme/style.safetensors" || fail "deleted file still on disk"
check "unknown path -> 404" 404 "$(status GET "$URL/v2/nothing")"
curl -s -D "$TMP/h" -o /dev/null -X PATCH "$URL/v1/adapters/acme/other"
check_contains "wrong method -> 405" "405" "$(head -1 "$TMP/h")"
check_contains "405 lists Allow" "Allow: GET, HEAD, PUT, DELETE" "$(cat "$TMP/h")"

metrics=$(curl -s "$URL/metrics")
check_contains "metrics: uploads counted" "slorad_adapter_uploads_total" "$metrics"
check_contains "metrics: rejected by reason" 'slorad_adapter_rejected_total{reason=' "$metrics"
check_contains "metrics: requests by route and status" 'slorad_requests_total{route="adapters_put",status="201"}' "$metrics"
check_contains "access log line" "access id=" "$(cat "$DAEMON_LOG")"

stop_daemon
echo "server_adapters: $N_CHECKS checks passed"
