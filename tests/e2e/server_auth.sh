#!/usr/bin/env bash
# server_auth.sh - tenants and keys end to end: every role x endpoint case,
# namespace isolation (another tenant's adapter is 404, existing or not),
# per-tenant metrics series only for real tenants,
# list filtering, quotas (429 count, 507 bytes), key rotation by SIGHUP
# without dropping connections, a reload's file read off the loop thread and
# SIGHUPs during it coalesced, an invalid config on SIGHUP ignored.
. "$(dirname "$0")/lib/daemon.sh"

A=$FIXTURES/lokr.safetensors
B=$FIXTURES/lora_wq_wv.safetensors
h() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
write_conf() { # $1: acme's keys as a JSON array
    cat >"$TMP/conf.json" <<JSON
{"admin_key_sha256": "$(h admin-key)",
 "tenants": [{"name": "acme", "key_sha256": $1},
             {"name": "beta", "key_sha256": "$(h beta-key)"},
             {"name": "few", "key_sha256": "$(h few-key)", "max_adapters": 2},
             {"name": "small", "key_sha256": "$(h small-key)", "max_bytes": 8000}]}
JSON
}
write_conf "[\"$(h acme-key-1)\", \"$(h acme-key-2)\"]"
start_daemon "$TMP/state" --config "$TMP/conf.json"

# code ROLE METHOD PATH [curl args]
code() {
    local role=$1 m=$2 p=$3
    shift 3
    local auth=()
    case $role in
    none) ;;
    bad) auth=(-H "Authorization: Bearer not-a-key") ;;
    basic) auth=(-H "Authorization: Basic YWRtaW46YWRtaW4=") ;;
    *) auth=(-H "Authorization: Bearer $role") ;;
    esac
    curl -s -o /dev/null -w '%{http_code}' -X "$m" "${auth[@]}" "$@" "$URL$p"
}

# matrix ROLE:EXPECTED ... for one endpoint
matrix() {
    local m=$1 p=$2
    shift 2
    local extra=()
    [ "$m" = PUT ] && extra=(--data-binary "@$A")
    for pair in "$@"; do
        check "$m $p as ${pair%%:*}" "${pair#*:}" "$(code "${pair%%:*}" "$m" "$p" "${extra[@]}")"
    done
}

check "admin uploads beta/seed" 201 "$(code admin-key PUT /v1/adapters/beta/seed --data-binary "@$A")"
matrix GET /healthz none:200 bad:200 acme-key-1:200 admin-key:200
matrix GET /readyz none:200 bad:200 beta-key:200
matrix GET /metrics none:401 bad:401 basic:401 acme-key-1:403 beta-key:403 admin-key:200
matrix GET /v1/models none:401 bad:401 basic:401 acme-key-1:200 admin-key:200
matrix GET /v1/adapters none:401 bad:401 acme-key-2:200 beta-key:200 admin-key:200
matrix PUT /v1/adapters/acme/x none:401 bad:401 basic:401 beta-key:404 acme-key-1:201 acme-key-2:200 admin-key:200
matrix GET /v1/adapters/acme/x none:401 bad:401 beta-key:404 acme-key-1:200 admin-key:200
matrix GET /v1/adapters/acme/x/file none:401 bad:401 beta-key:404 acme-key-2:200 admin-key:200
matrix GET /v1/adapters/beta/seed acme-key-1:404 beta-key:200
matrix GET /v1/adapters/beta/absent acme-key-1:404 beta-key:404
matrix PUT /v1/adapters/beta/seed acme-key-1:404
matrix DELETE /v1/adapters/acme/x none:401 bad:401 beta-key:404 acme-key-1:204
check "admin deletes another tenant's adapter" 204 "$(code admin-key DELETE /v1/adapters/beta/seed)"
check "401 body is authentication_error" authentication_error "$(curl -s "$URL/v1/adapters" | grep -o authentication_error)"

# list filtering
code acme-key-1 PUT /v1/adapters/acme/one --data-binary "@$A" >/dev/null
code beta-key PUT /v1/adapters/beta/two --data-binary "@$A" >/dev/null
check "tenant lists only its own" '"acme/one"' "$(curl -s -H 'Authorization: Bearer acme-key-1' "$URL/v1/adapters" | grep -o '"acme/[a-z]*"' | tr '\n' ' ' | sed 's/ $//')"
case "$(curl -s -H 'Authorization: Bearer acme-key-1' "$URL/v1/adapters")" in *beta/*) fail "acme sees beta's adapters" ;; esac
case "$(curl -s -H 'Authorization: Bearer acme-key-1' "$URL/v1/models")" in *beta/*) fail "acme's model list shows beta" ;; esac
check "admin lists everything" '"acme/one" "beta/two"' "$(curl -s -H 'Authorization: Bearer admin-key' "$URL/v1/adapters" | grep -o '"[a-z]*/[a-z]*"' | grep -v stories | tr '\n' ' ' | sed 's/ $//')"

# quotas
check "few: 1st" 201 "$(code few-key PUT /v1/adapters/few/a --data-binary "@$A")"
check "few: 2nd" 201 "$(code few-key PUT /v1/adapters/few/b --data-binary "@$A")"
out=$(curl -s -w ' %{http_code}' -H 'Authorization: Bearer few-key' -T "$A" "$URL/v1/adapters/few/c")
check_contains "few: 3rd over max_adapters -> 429" " 429" "$out"
check_contains "429 states the quota" "2" "$out"
check "few: replacing within quota still works" 200 "$(code few-key PUT /v1/adapters/few/a --data-binary "@$B")"
check "small: first fits" 201 "$(code small-key PUT /v1/adapters/small/a --data-binary "@$A")"
out=$(curl -s -w ' %{http_code}' -H 'Authorization: Bearer small-key' -T "$A" "$URL/v1/adapters/small/b")
check_contains "small: over max_bytes -> 507" " 507" "$out"
check_contains "507 states the quota" "8000" "$out"

# made-up tenant names in failing requests add no metrics series
for i in $(seq 1 50); do
    code admin-key GET "/v1/adapters/made-up-$i/x" >/dev/null
    code none GET "/v1/adapters/anon-$i/x" >/dev/null
done
metrics=$(curl -s -H 'Authorization: Bearer admin-key' "$URL/metrics")
check "metrics: 100 failing requests for made-up tenants add no series" \
    'acme beta few small' "$(grep -o '^slorad_tenant_requests_total{tenant="[a-z-]*"' <<<"$metrics" | cut -d'"' -f2 | sort | tr '\n' ' ' | sed 's/ $//')"
check_contains "metrics: per-tenant requests" 'slorad_tenant_requests_total{tenant="acme"}' "$metrics"
check_contains "metrics: 401s counted by route" 'slorad_requests_total{route="metrics",status="401"}' "$metrics"
check_contains "metrics: open connections gauge" 'slorad_open_connections 1' "$metrics"

# key rotation with SIGHUP; a keep-alive connection survives it
"$PYTHON" - "$PORT" "$DAEMON_PID" "$TMP" >"$TMP/hup.out" <<'PY' &
import os, socket, sys, time
port, pid, tmp = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
def get():
    s.sendall(b"GET /v1/adapters HTTP/1.1\r\nAuthorization: Bearer acme-key-2\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
    while len(body) < n:
        body += s.recv(65536)
    return head.split(b" ")[1].decode()
first = get()
open(tmp + "/hup.ready", "w").close()
while not os.path.exists(tmp + "/hup.done"):
    time.sleep(0.05)
print(first, get())
PY
helper=$!
wait_for "the keep-alive client" test -e "$TMP/hup.ready"
write_conf "[\"$(h acme-key-2)\", \"$(h acme-key-3)\"]"
kill -HUP "$DAEMON_PID"
wait_for "the reload" log_has "configuration reloaded"
touch "$TMP/hup.done"
wait "$helper"
check "keep-alive connection answered before and after SIGHUP" "200 200" "$(cat "$TMP/hup.out")"
check "after SIGHUP: removed key -> 401" 401 "$(code acme-key-1 GET /v1/adapters)"
check "after SIGHUP: kept key -> 200" 200 "$(code acme-key-2 GET /v1/adapters)"
check "after SIGHUP: new key -> 200" 200 "$(code acme-key-3 GET /v1/adapters)"
check "adapters survive a reload" 200 "$(code acme-key-3 GET /v1/adapters/acme/one)"

# the config is read on a worker: with the file a FIFO nobody writes yet,
# the reload blocks there while the loop keeps answering; SIGHUPs meanwhile
# are coalesced into exactly one more reload
reloads() { grep -c "configuration reloaded" "$DAEMON_LOG"; }
before=$(reloads)
rm "$TMP/conf.json"
mkfifo "$TMP/conf.json"
# The first SIGHUP starts a reload that blocks on the FIFO; the ones sent
# until the log says so arrive during it and are coalesced.
hup_until_coalesced() {
    kill -HUP "$DAEMON_PID"
    log_has "reloading once more"
}
wait_for "a SIGHUP during the reload" hup_until_coalesced
check "loop answers while a reload waits on its file" 200 "$(curl -s -o /dev/null -m 3 -w '%{http_code}' "$URL/healthz")"
check "SIGHUPs during a reload are coalesced" 1 "$(grep -c "reloading once more" "$DAEMON_LOG")"
write_conf "[\"$(h acme-key-5)\"]"
write_conf "[\"$(h acme-key-3)\"]"
wait_for "two reloads" count_at_least $((before + 2)) reloads
check "coalesced SIGHUPs: two reloads in all" $((before + 2)) "$(reloads)"
check "coalesced reload applied the last file" 200 "$(code acme-key-3 GET /v1/adapters)"
check "coalesced reload: the first file's key replaced" 401 "$(code acme-key-5 GET /v1/adapters)"
rm "$TMP/conf.json"

printf '{"tenants": [{"name": "Bad Name", "key_sha256": "zz"}]}' >"$TMP/conf.json"
kill -HUP "$DAEMON_PID"
wait_for "the failed reload" log_has "reload failed"
echo "ok - invalid config on SIGHUP is logged"
# (a third coalesced reload would have been in flight, blocked on the FIFO,
# and this SIGHUP would have been coalesced into it)
check "no third reload after the coalesced ones" 1 "$(grep -c "reloading once more" "$DAEMON_LOG")"
check "invalid config ignored: keys unchanged" 200 "$(code acme-key-3 GET /v1/adapters)"
check "invalid config ignored: still refusing the old key" 401 "$(code acme-key-1 GET /v1/adapters)"
# past the reload limit (1024 configs kept) SIGHUP changes nothing, also
# not the keys the API checks
write_conf "[\"$(h acme-key-3)\"]"
"$PYTHON" - "$DAEMON_PID" "$DAEMON_LOG" <<'PY' || fail "reload limit never reached"
import os, signal, sys, time
pid, log = int(sys.argv[1]), sys.argv[2]
def count(s):
    with open(log, errors="replace") as f:
        return f.read().count(s)
for _ in range(1100):
    if count("too many reloads"):
        sys.exit(0)
    before = count("SIGHUP:")
    os.kill(pid, signal.SIGHUP)
    t = time.time()
    while count("SIGHUP:") == before and time.time() - t < 5:
        time.sleep(0.001)
sys.exit(1)
PY
write_conf "[\"$(h acme-key-4)\"]"
kill -HUP "$DAEMON_PID"
wait_for "the refused reload" count_at_least 2 grep -c "too many reloads" "$DAEMON_LOG"
check "SIGHUP past the reload limit is refused" 2 "$(grep -c "too many reloads" "$DAEMON_LOG")"
check "refused reload: keys unchanged" 200 "$(code acme-key-3 GET /v1/adapters)"
check "refused reload: new key not accepted" 401 "$(code acme-key-4 GET /v1/adapters)"

grep -q "acme-key" "$DAEMON_LOG" && fail "a plaintext key reached the log"
echo "ok - no plaintext key in the log"

stop_daemon
echo "server_auth: $N_CHECKS checks passed"
