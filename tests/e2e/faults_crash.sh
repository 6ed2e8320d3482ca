#!/usr/bin/env bash
# faults_crash.sh - kill -9 under upload and inference load, CRASH_ROUNDS
# (default 20) times in a row on one state directory: after each restart
# every acknowledged adapter is restored intact (its last acknowledged
# version, or the one in flight at the kill), nothing is skipped, no
# temporary file remains, and no request got a 5xx (lib/crashload.py).
. "$(dirname "$0")/lib/daemon.sh"

ROUNDS=${CRASH_ROUNDS:-20}
count_acks() { cat "$TMP/log" 2>/dev/null | grep -c '^ack' || true; }
n_acks_so_far=0
for i in $(seq 1 6); do
    "$PYTHON" "$E2E_LIB/gen_adapter.py" "$TMP/a$i.safetensors" --seed $((100 + i)) --rank $((1 + i))
done
for round in $(seq 1 "$ROUNDS"); do
    start_daemon "$TMP/state"
    if [ "$round" -gt 1 ]; then
        "$PYTHON" "$E2E_LIB/crashload.py" verify "$PORT" "$TMP" "$TMP/log" || fail "round $round: restore"
        check_contains "round $round: restore skipped nothing" " 0 skipped" "$(grep 'restored' "$DAEMON_LOG")"
        check "round $round: no temporary file after restore" 0 "$(find "$TMP/state" -name '.*' -type f | wc -l)"
    fi
    # kill after a random number (3-7) of this round's uploads were acknowledged
    acks=$((n_acks_so_far + 3 + RANDOM % 5))
    "$PYTHON" "$E2E_LIB/crashload.py" load "$PORT" "$TMP" "$TMP/log" &
    load=$!
    wait_for "$acks acknowledged uploads" count_at_least "$acks" count_acks
    kill -9 "$DAEMON_PID"
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=
    wait "$load" || fail "round $round: load generator failed"
    n_acks_so_far=$(count_acks)
done
start_daemon "$TMP/state"
"$PYTHON" "$E2E_LIB/crashload.py" verify "$PORT" "$TMP" "$TMP/log" || fail "final restore"
n_acks=$(grep -c '^ack' "$TMP/log")
[ "$n_acks" -ge "$ROUNDS" ] || fail "only $n_acks uploads acknowledged over $ROUNDS rounds"
echo "ok - $n_acks uploads acknowledged over $ROUNDS kill -9 rounds"
stop_daemon
echo "faults_crash: $N_CHECKS checks passed"
