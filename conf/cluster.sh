#!/usr/bin/env bash
# cluster.sh up|down - the local scale-out cluster of `make cluster` /
# `make cluster-down` (docs/scale-out.md): redis-server on 127.0.0.1:6380,
# three slorad replicas on 127.0.0.1:8081-8083 (state in
# $DIR/state{1,2,3}) and haproxy (conf/haproxy.cfg) on 127.0.0.1:8080,
# each a plain process with its log and pid file under $DIR (build/cluster).
# `down` stops exactly the processes whose pid files `up` wrote, checking
# each pid still runs the program it started.
set -euo pipefail
BUILD=${BUILD:-build}
DIR=${CLUSTER_DIR:-$BUILD/cluster}
REDIS_PORT=${CLUSTER_REDIS_PORT:-6380}
SLORAD=$BUILD/slorad
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

# is_ours NAME: the pid in NAME.pid runs the program it was started as.
is_ours() {
    local pidf=$DIR/$1.pid
    [ -f "$pidf" ] || return 1
    local pid exe
    pid=$(cat "$pidf")
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    case "$1" in
    redis) [[ "$exe" == *redis* ]] ;;
    haproxy) [[ "$exe" == *haproxy* ]] ;;
    *) [[ "$exe" == *slorad* ]] ;;
    esac
}

wait_until() { # SECONDS COMMAND...
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || { echo "cluster: timed out: $*" >&2; return 1; }
        sleep 0.1
    done
}

up() {
    mkdir -p "$DIR/redis"
    for n in redis r1 r2 r3 haproxy; do
        if is_ours "$n"; then echo "cluster: $n already running (make cluster-down first)" >&2; exit 1; fi
    done
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes \
        --appendfsync always --dir "$DIR/redis" --logfile "$DIR/redis.log" >/dev/null 2>&1 &
    echo $! >"$DIR/redis.pid"
    wait_until 20 redis-cli -p "$REDIS_PORT" ping
    for i in 1 2 3; do
        cat >"$DIR/r$i.json" <<JSON
{"listen": "127.0.0.1:808$i", "state_dir": "$DIR/state$i",
 "model": "models/stories260K.bin", "tokenizer": "models/tok512.bin",
 "store": {"kind": "redis", "url": "redis://127.0.0.1:$REDIS_PORT/0", "prefix": "slorad:"}}
JSON
        "$SLORAD" serve --config "$DIR/r$i.json" >/dev/null 2>"$DIR/r$i.log" &
        echo $! >"$DIR/r$i.pid"
    done
    for i in 1 2 3; do wait_until 60 curl -sf "http://127.0.0.1:808$i/readyz"; done
    haproxy -db -f conf/haproxy.cfg >/dev/null 2>"$DIR/haproxy.log" &
    echo $! >"$DIR/haproxy.pid"
    wait_until 20 curl -sf http://127.0.0.1:8080/healthz
    echo "cluster: haproxy http://127.0.0.1:8080 -> replicas 8081-8083, redis 127.0.0.1:$REDIS_PORT; logs in $DIR"
}

down() {
    for n in haproxy r1 r2 r3 redis; do
        if is_ours "$n"; then
            local pid
            pid=$(cat "$DIR/$n.pid")
            kill -TERM "$pid"
            for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            echo "cluster: stopped $n ($pid)"
        fi
        rm -f "$DIR/$n.pid"
    done
}

case "${1:-}" in
up) up ;;
down) down ;;
*) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
