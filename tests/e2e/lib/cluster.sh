# cluster.sh - shared by tests/e2e/scale_out*.sh and bench/scale_out.sh
# (sourced after daemon.sh): a real redis-server, slorad replicas sharing it
# and HAProxy with conf/haproxy.cfg, all on 127.0.0.1 with ephemeral ports
# and state under $TMP. Every process started here is stopped by the exit
# trap, by its pid.
REDIS_PORT=
REDIS_PID=
LB_PID=
LB_PORT=
declare -a R_PID R_PORT R_LOG
CLUSTER_CONF_EXTRA=${CLUSTER_CONF_EXTRA:-}
REPO=$(cd "$E2E_LIB/../../.." && pwd)

cluster_cleanup() {
    local rc=$?
    local p
    for p in "${R_PID[@]}" "$LB_PID" "$REDIS_PID"; do
        [ -n "$p" ] || continue
        kill -CONT "$p" 2>/dev/null || true
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    (exit "$rc")
    cleanup
}
trap cluster_cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    local f
    for f in "${R_LOG[@]}"; do
        [ -f "$f" ] || continue
        echo "--- $f (tail, without access lines)" >&2
        grep -v " access " "$f" | tail -8 >&2
    done
    exit 1
}

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND every 50 ms.
wait_for() {
    local what=$1 secs=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || fail "timed out after ${secs}s waiting for: $what"
        sleep 0.05
    done
}

# start_redis: redis-server with the durability docs/scale-out.md asks for
# (every acknowledged write fsynced to its append-only file).
start_redis() {
    mkdir -p "$TMP/redis"
    [ -n "$REDIS_PORT" ] || REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes \
        --appendfsync always --dir "$TMP/redis" --logfile "$TMP/redis.log" &
    REDIS_PID=$!
    wait_for "redis-server on $REDIS_PORT" 20 redis-cli -p "$REDIS_PORT" ping
}

# stopped PID: the process is in state T (a SIGSTOP has taken effect).
stopped() {
    [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)" = T ]
}

# sigstop PID: stop it and wait until it is stopped.
sigstop() {
    kill -STOP "$1"
    wait_for "pid $1 stopped" 10 stopped "$1"
}

rcli() {
    redis-cli -p "$REDIS_PORT" "$@"
}

# start_replica I: replica I on an ephemeral port, state dir $TMP/state$I,
# config $TMP/r$I.json (the store section plus $CLUSTER_CONF_EXTRA, e.g. tenants).
start_replica() {
    local i=$1
    cat >"$TMP/r$i.json" <<JSON
{"store": {"kind": "redis", "url": "redis://127.0.0.1:$REDIS_PORT/0", "prefix": "e2e:",
           "timeout_ms": ${STORE_TIMEOUT_MS:-1000}, "stream_max_len": ${STREAM_MAX_LEN:-10000}}
 $CLUSTER_CONF_EXTRA}
JSON
    R_LOG[$i]=$TMP/replica$i.$RANDOM.log
    local listen=127.0.0.1:${R_PORT[$i]:-0}
    "$SLORAD" serve --listen "$listen" --state-dir "$TMP/state$i" --model models/stories260K.bin \
        --tokenizer models/tok512.bin --config "$TMP/r$i.json" 2>"${R_LOG[$i]}" &
    R_PID[$i]=$!
    local deadline=$((SECONDS + 60))
    until grep -q "listening on" "${R_LOG[$i]}" 2>/dev/null; do
        kill -0 "${R_PID[$i]}" 2>/dev/null || fail "replica $i exited: $(cat "${R_LOG[$i]}")"
        [ $SECONDS -lt $deadline ] || fail "replica $i did not start listening"
        sleep 0.05
    done
    R_PORT[$i]=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "${R_LOG[$i]}" | head -1)
}

# stop_replica I: SIGTERM, must exit 0.
stop_replica() {
    local i=$1 rc=0
    kill -TERM "${R_PID[$i]}"
    wait "${R_PID[$i]}" || rc=$?
    R_PID[$i]=
    check "replica $i exits 0 on SIGTERM" 0 "$rc"
}

rurl() {
    echo "http://127.0.0.1:${R_PORT[$1]}"
}

# start_lb: haproxy with conf/haproxy.cfg over replicas 1..3.
start_lb() {
    [ -n "$LB_PORT" ] || LB_PORT=$(free_port)
    SLORA_LB_BIND=127.0.0.1:$LB_PORT SLORA_R1=127.0.0.1:${R_PORT[1]} \
        SLORA_R2=127.0.0.1:${R_PORT[2]} SLORA_R3=127.0.0.1:${R_PORT[3]} \
        haproxy -db -f "${LB_CONF:-$REPO/conf/haproxy.cfg}" 2>"$TMP/haproxy.log" &
    LB_PID=$!
    wait_for "haproxy on $LB_PORT" 20 curl -sf "http://127.0.0.1:$LB_PORT/healthz"
}

# metric URL NAME: the value of an unlabelled metric (admin key when auth is on).
metric() {
    curl -s ${METRIC_AUTH:+-H "Authorization: Bearer $METRIC_AUTH"} "$1/metrics" |
        awk -v n="$2" '$1 == n {print $2}'
}

# adapter_list URL: "id version" lines, sorted (admin key when auth is on).
adapter_list() {
    curl -s ${METRIC_AUTH:+-H "Authorization: Bearer $METRIC_AUTH"} "$1/v1/adapters" |
        "$PYTHON" -c 'import json,sys; [print(a["id"], a["version"]) for a in sorted(json.load(sys.stdin)["data"], key=lambda a: a["id"])]'
}

# lists_equal I J...: replicas I, J... list the same adapters and versions.
lists_equal() {
    local first
    first=$(adapter_list "$(rurl "$1")")
    shift
    local i
    for i in "$@"; do
        [ "$(adapter_list "$(rurl "$i")")" = "$first" ] || return 1
    done
}

# has_version I ID VERSION: replica I serves ID at VERSION.
has_version() {
    curl -s ${METRIC_AUTH:+-H "Authorization: Bearer $METRIC_AUTH"} "$(rurl "$1")/v1/adapters/$2" |
        grep -q "\"version\":\"$3\""
}
