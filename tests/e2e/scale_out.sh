#!/usr/bin/env bash
# scale_out.sh - three replicas sharing a real redis-server, behind HAProxy
# with conf/haproxy.cfg (docs/scale-out.md): an upload through one replica
# is served by the others, propagated by the change stream (metrics); a
# hot swap reaches every replica while an in-flight stream finishes on its
# version; concurrent If-Match PUTs on different replicas: one wins, the
# rest 412; a replica stopped while the stream was trimmed catches up by a
# rescan; a stored pin reaches the other replicas' caches; the tenant x
# endpoint matrix through HAProxy; Redis reached only at the configured
# address; no adapter bytes in any log; Redis losing its data is followed.
. "$(dirname "$0")/lib/daemon.sh"
. "$E2E_LIB/cluster.sh"

AUTH=(-H "Authorization: Bearer admin-key")
METRIC_AUTH=admin-key
export SLORA_KEY=admin-key
auth_conf "$TMP/auth.json"
CLUSTER_CONF_EXTRA=", $(sed -e '1s/^{//' -e '$s/}$//' "$TMP/auth.json")"
STREAM_MAX_LEN=4
for s in 1 2 3 4 5 6 7 8; do "$PYTHON" "$E2E_LIB/gen_adapter.py" "$TMP/a$s.safetensors" --seed "$s"; done

start_redis
for i in 1 2 3; do start_replica "$i"; done
start_lb

put() { # put URL ID FILE -> prints status and the body to $TMP/put.out
    curl -s -o "$TMP/put.out" -w '%{http_code}' "${AUTH[@]}" -T "$3" "$1/v1/adapters/$2"
}
ver() { sed -n 's/.*"version":"\([0-9a-f]*\)".*/\1/p' "$TMP/put.out"; }

# ---- upload on replica 1, complete on 2 and 3, through the stream
loaded2=$(metric "$(rurl 2)" slorad_replica_loaded_total)
rescans2=$(metric "$(rurl 2)" slorad_replica_rescans_total)
check "PUT acme/one through replica 1" 201 "$(put "$(rurl 1)" acme/one "$TMP/a1.safetensors")"
v1=$(ver)
for i in 2 3; do
    wait_for "replica $i serves acme/one" 30 has_version "$i" acme/one "$v1"
    st=$(curl -s -o "$TMP/c.out" -w '%{http_code}' "${AUTH[@]}" "$(rurl "$i")/v1/completions" \
        -d '{"model": "acme/one", "prompt": "Once", "max_tokens": 3, "temperature": 0}')
    check "completion of acme/one on replica $i" 200 "$st"
    check_contains "replica $i ran version $v1" "\"adapter_version\":\"$v1\"" "$(cat "$TMP/c.out")"
done
check "replica 2 loaded it from the stream" $((loaded2 + 1)) "$(metric "$(rurl 2)" slorad_replica_loaded_total)"
check "replica 2 did not rescan for it" "$rescans2" "$(metric "$(rurl 2)" slorad_replica_rescans_total)"
check "replica 1 did not load its own upload again" 0 "$(metric "$(rurl 1)" slorad_replica_loaded_total)"

# ---- hot swap: an in-flight stream on replica 3 keeps its version
"$PYTHON" "$E2E_LIB/cluster.py" hotswap "$(rurl 3)" "$(rurl 2)" acme/one "$TMP/a2.safetensors" "$v1" \
    "$(rurl 1)" "$(rurl 2)" "$(rurl 3)" || fail "hot swap"
v2=$(curl -s "${AUTH[@]}" "$(rurl 1)/v1/adapters/acme/one" | sed -n 's/.*"version":"\([0-9a-f]*\)".*/\1/p')

# ---- concurrent conditional PUTs on the three replicas
"$PYTHON" "$E2E_LIB/cluster.py" condput acme/one "$v2" "$TMP/a3.safetensors" \
    "$(rurl 1)" "$(rurl 2)" "$(rurl 3)" || fail "conditional PUTs"
wait_for "replicas agree after the conditional PUTs" 30 lists_equal 1 2 3
st=$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" -H "If-Match: \"$v2\"" -X DELETE "$(rurl 3)/v1/adapters/acme/one")
check "DELETE with the replaced version's If-Match: 412" 412 "$st"

# ---- catch-up: replica 3 stopped while the stream moved on
gaps3=$(metric "$(rurl 3)" slorad_replica_gaps_total)
loaded3=$(metric "$(rurl 3)" slorad_replica_loaded_total)
sigstop "${R_PID[3]}"
check "PUT acme/two while replica 3 is stopped" 201 "$(put "$(rurl 1)" acme/two "$TMP/a4.safetensors")"
kill -CONT "${R_PID[3]}"
wait_for "replica 3 catches up on acme/two" 30 lists_equal 1 2 3
check "replica 3 caught up from the stream (no rescan)" "$gaps3" "$(metric "$(rurl 3)" slorad_replica_gaps_total)"
check "replica 3 loaded one version" $((loaded3 + 1)) "$(metric "$(rurl 3)" slorad_replica_loaded_total)"
sigstop "${R_PID[3]}"
# more writes than the stream keeps, even if the first was already sent to it
for s in 5 6 7 8 1 2; do
    check "PUT acme/t$s while replica 3 is stopped" 201 "$(put "$(rurl 2)" "acme/t$s" "$TMP/a$s.safetensors")"
done
check "DELETE acme/two while replica 3 is stopped" 204 \
    "$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" -X DELETE "$(rurl 1)/v1/adapters/acme/two")"
check "the stream kept only $STREAM_MAX_LEN entries" "$STREAM_MAX_LEN" "$(rcli XLEN e2e:changes)"
kill -CONT "${R_PID[3]}"
wait_for "replica 3 back in step after the trimmed stream" 30 lists_equal 1 2 3
check "replica 3 saw the gap and rescanned" $((gaps3 + 1)) "$(metric "$(rurl 3)" slorad_replica_gaps_total)"
check "replica 3 no longer has the deleted acme/two" 404 \
    "$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" "$(rurl 3)/v1/adapters/acme/two")"

# ---- a pin is stored with the adapter: the other replicas pin it too
check "PUT acme/pinned?pin=1 through replica 1" 201 \
    "$(put "$(rurl 1)" "acme/pinned?pin=1" "$TMP/a5.safetensors")"
check "the pin flag is stored with it" 1 "$(rcli HGET e2e:a:acme/pinned pinned)"
pinned_on() { [ "$(metric "$(rurl "$1")" slorad_delta_cache_pinned_bytes)" -gt 0 ]; }
wait_for "replica 2 pins acme/pinned in its delta cache" 30 pinned_on 2
check_contains "replica 3 lists it pinned" '"pinned":true' \
    "$(curl -s "${AUTH[@]}" "$(rurl 3)/v1/adapters/acme/pinned")"
check "PUT the same bytes with ?pin=0 through replica 3" 200 \
    "$(put "$(rurl 3)" "acme/pinned?pin=0" "$TMP/a5.safetensors")"
unpinned_on() { [ "$(metric "$(rurl "$1")" slorad_delta_cache_pinned_bytes)" -eq 0 ]; }
wait_for "replica 2 unpins it" 30 unpinned_on 2

# ---- quotas count in Redis across replicas
check "tenant usage counted in redis" 8 "$(rcli HGET e2e:q:acme count)"

# ---- the tenant x endpoint matrix through HAProxy
"$PYTHON" "$E2E_LIB/security.py" matrix "$LB_PORT" "$FIXTURES/lokr.safetensors" \
    "$FIXTURES/lora_wq_wv.safetensors" || fail "security matrix through haproxy"

# ---- each replica talks to Redis at the configured address only
for i in 1 2 3; do
    peers=$(ss -tnH state established "( sport != :${R_PORT[$i]} )" -p 2>/dev/null |
        grep "pid=${R_PID[$i]}," | awk '{print $4}' | sort -u)
    check "replica $i's outgoing connections go to redis only" "127.0.0.1:$REDIS_PORT" "$peers"
done

# ---- no adapter bytes in any log: the safetensors header and the raw floats
needle=$(head -c 64 "$TMP/a1.safetensors" | tail -c 40 | tr -d '\0')
for f in "${R_LOG[@]}" "$TMP/haproxy.log" "$TMP/redis.log"; do
    if grep -qaF -- "$needle" "$f" || grep -qa "__metadata__" "$f"; then
        fail "adapter bytes in $f"
    fi
done
echo "ok - no adapter bytes in the replicas', haproxy's or redis' logs"

# ---- Redis lost its data (FLUSHALL): the replicas follow it, then go on
rcli FLUSHALL >/dev/null
empty() { [ -z "$(adapter_list "$(rurl "$1")")" ]; }
for i in 1 2 3; do wait_for "replica $i drops what redis lost" 30 empty "$i"; done
check "PUT acme/again after the loss" 201 "$(put "$(rurl 1)" acme/again "$TMP/a6.safetensors")"
wait_for "replica 3 serves acme/again" 30 has_version 3 acme/again "$(ver)"
wait_for "replicas in step after the loss" 30 lists_equal 1 2 3

for i in 1 2 3; do stop_replica "$i"; done
check "no sanitizer report from the replicas" "" "$(sanitizer_reports)"
echo "scale_out: ok"
