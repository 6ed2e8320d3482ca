#!/usr/bin/env bash
# scale_out_faults.sh - failures under load through HAProxy (three replicas
# on a real redis-server): kill -9 of a replica fails only requests in
# flight until HAProxy's health checks route around it, and the restarted
# replica rejoins with every adapter; Redis stopped (SIGSTOP) and then
# killed for 10 s each: no inference request on a loaded adapter fails,
# uploads answer 503 with the store's error, /readyz says degraded (200),
# and every replica is back in step (lists and versions) when it returns.
. "$(dirname "$0")/lib/daemon.sh"
. "$E2E_LIB/cluster.sh"

CLIENTS=6
for s in 1 2 3 4 5 6 7; do "$PYTHON" "$E2E_LIB/gen_adapter.py" "$TMP/a$s.safetensors" --seed "$s"; done
start_redis
for i in 1 2 3; do start_replica "$i"; done
start_lb
LB=http://127.0.0.1:$LB_PORT
MODELS=(stories260K)
for s in 1 2 3 4 5 6; do
    check "PUT acme/m$s through haproxy" 201 \
        "$(curl -s -o /dev/null -w '%{http_code}' -T "$TMP/a$s.safetensors" "$LB/v1/adapters/acme/m$s")"
    MODELS+=("acme/m$s")
done
wait_for "every replica has the 6 adapters" 30 lists_equal 1 2 3

n_done() { cat "$1" 2>/dev/null | wc -l; }
done_at_least() { [ "$(n_done "$1")" -ge "$2" ]; }
# start_load NAME: clients through haproxy until $TMP/NAME.stop exists.
start_load() {
    rm -f "$TMP/$1.stop"
    "$PYTHON" "$E2E_LIB/cluster.py" load "$LB" "$TMP/$1.stop" "$CLIENTS" "$TMP/$1.jsonl" "${MODELS[@]}" &
    LOAD_PID=$!
    R_PID[9]=$LOAD_PID # stopped by the exit trap too
    wait_for "load $1 running" 30 done_at_least "$TMP/$1.jsonl" 30
}
stop_load() {
    local n
    n=$(n_done "$TMP/$1.jsonl")
    wait_for "more requests of load $1" 60 done_at_least "$TMP/$1.jsonl" $((n + 30))
    touch "$TMP/$1.stop"
    wait "$LOAD_PID"
    R_PID[9]=
}
ready_status() { curl -s "$(rurl "$1")/readyz"; }
all_degraded() { for i in 1 2 3; do ready_status "$i" | grep -q '"status":"degraded"' || return 1; done; }
all_ready() { for i in 1 2 3; do [ "$(ready_status "$i")" = '{"status":"ready"}' ] || return 1; done; }

# ---- kill -9 of replica 2 under load
start_load kill
t_kill=$(date +%s.%N)
kill -9 "${R_PID[2]}"
wait "${R_PID[2]}" 2>/dev/null || true
R_PID[2]=
# down after fall 2 x inter 1 s; requests sent until then may still fail
wait_for "haproxy marks replica 2 down" 30 grep -q "r2 is DOWN" "$TMP/haproxy.log"
t_down=$(date +%s.%N)
stop_load kill
failed=$("$PYTHON" "$E2E_LIB/cluster.py" failures "$TMP/kill.jsonl" "$t_kill" "$t_down") ||
    fail "requests failed outside the kill's detection window ($failed failures)"
[ "$failed" -le "$CLIENTS" ] || fail "$failed requests failed; at most the $CLIENTS in flight may"
echo "ok - kill -9 under load: $failed failed request(s), all in flight before haproxy routed around it"
check "PUT acme/m7 while replica 2 is down" 201 \
    "$(curl -s -o /dev/null -w '%{http_code}' -T "$TMP/a7.safetensors" "$LB/v1/adapters/acme/m7")"
start_replica 2
wait_for "replica 2 rejoins with every adapter" 30 lists_equal 1 2 3
wait_for "haproxy routes to replica 2 again" 30 grep -q "r2 is UP" "$TMP/haproxy.log"

# ---- redis stopped, then killed, for 10 s each under load
for how in ${REDIS_FAULTS:-stop kill}; do
    start_load "redis-$how"
    if [ "$how" = stop ]; then sigstop "$REDIS_PID"; else kill -9 "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true; fi
    t0=$SECONDS
    st=$(curl -s -o "$TMP/put.out" -w '%{http_code}' -T "$TMP/a1.safetensors" "$(rurl 1)/v1/adapters/acme/new-$how")
    check "redis $how: upload answers 503" 503 "$st"
    check_contains "redis $how: the error names the store" '"code":"unavail"' "$(cat "$TMP/put.out")"
    check "redis $how: delete answers 503" 503 \
        "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$(rurl 2)/v1/adapters/acme/m1")"
    wait_for "redis $how: every replica reports degraded" 30 all_degraded
    check "redis $how: /readyz stays 200" 200 "$(status GET "$(rurl 3)/readyz")"
    sleep $((10 - (SECONDS - t0) > 0 ? 10 - (SECONDS - t0) : 0)) # the outage lasts 10 s
    if [ "$how" = stop ]; then kill -CONT "$REDIS_PID"; else start_redis; fi
    wait_for "redis $how: every replica ready again" 30 all_ready
    stop_load "redis-$how"
    check "redis $how: inference requests failed during the outage" 0 \
        "$("$PYTHON" "$E2E_LIB/cluster.py" failures "$TMP/redis-$how.jsonl")"
    check "redis $how: upload after it returned" 201 \
        "$(curl -s -o /dev/null -w '%{http_code}' -T "$TMP/a2.safetensors" "$(rurl 3)/v1/adapters/acme/after-$how")"
    wait_for "redis $how: replicas in step (lists and versions)" 30 lists_equal 1 2 3
    n_adapters=$((${n_adapters:-7} + 1))
    check "redis $how: every adapter survived" "$n_adapters" "$(adapter_list "$(rurl 1)" | wc -l)"
done

for i in 1 2 3; do stop_replica "$i"; done
check "no sanitizer report from the replicas" "" "$(sanitizer_reports)"
echo "scale_out_faults: ok"
