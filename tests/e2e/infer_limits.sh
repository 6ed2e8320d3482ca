#!/usr/bin/env bash
# infer_limits.sh - inference under pressure against the real daemon, on a
# synthetic model large enough (dim 256, 8 layers, seq 1024) that a long
# generation runs for a while: a client that disconnects mid-stream cancels
# its sequence; the per-tenant concurrency limit answers 429 and frees its
# slots again; a full queue answers 503 with Retry-After; the engine returns
# to idle.
. "$(dirname "$0")/lib/daemon.sh"

wait_metric() { # NAME VALUE
    wait_for "$1 to reach $2" metric_is "$1" "$2"
}

M=$TMP/big.bin
"$SLORAD" gen-model --dim 256 --hidden 688 --layers 8 --heads 8 --kv-heads 4 --vocab 512 \
    --seq-len 1024 --seed 3 -o "$M" >/dev/null
printf '{"max_sequences_per_tenant": 2, "max_tokens": 1000}' >"$TMP/conf.json"
# start_daemon passes --model stories260K first; the later flag wins.
start_daemon "$TMP/state" --config "$TMP/conf.json" --model "$M" --model-id big --threads 1
LONG='{"model":"big","prompt":"Hi","max_tokens":1000,"temperature":0,"stream":true}'

# ---- cancellation -------------------------------------------------------------
curl -sN "$URL/v1/completions" -d "$LONG" >"$TMP/s1" &
C1=$!
wait_metric slorad_engine_running 1
wait_for "the stream to start" file_has "$TMP/s1" '^data: \{'
kill "$C1" 2>/dev/null || true
wait "$C1" 2>/dev/null || true
check_contains "the stream had started" 'data: {' "$(head -c 300 "$TMP/s1")"
wait_metric slorad_engine_canceled_total 1
wait_metric slorad_engine_running 0
n=$(curl -s "$URL/metrics" | awk '$1 == "slorad_tenant_completion_tokens_total{tenant=\"-\"}" {print $2}')
[ "$n" -lt 999 ] || fail "canceled sequence ran to the end ($n tokens)"
echo "ok - disconnect canceled the sequence after $n of 1000 tokens"

# ---- tenant concurrency limit -------------------------------------------------
curl -sN "$URL/v1/completions" -d "$LONG" >/dev/null &
C1=$!
curl -sN "$URL/v1/completions" -d "$LONG" >/dev/null &
C2=$!
wait_metric 'slorad_tenant_sequences{tenant="-"}' 2
out=$(curl -s -w ' %{http_code}' "$URL/v1/completions" -d '{"model":"big","prompt":"a","max_tokens":1}')
check "third concurrent sequence of the tenant -> 429" 429 "${out##* }"
check_contains "429 is a rate_limit_error" '"type":"rate_limit_error"' "$out"
check "rejection counted" 1 "$(curl -s "$URL/metrics" | awk '$1 == "slorad_engine_rejected_total{reason=\"tenant_limit\"}" {print $2}')"
kill "$C1" "$C2" 2>/dev/null || true
wait "$C1" "$C2" 2>/dev/null || true
wait_metric slorad_engine_running 0
check "slots free again" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/completions" -d '{"model":"big","prompt":"a","max_tokens":1}')"
check "engine idle" "0 0" "$(metric slorad_engine_waiting) $(metric slorad_engine_running)"
stop_daemon

# ---- queue depth ------------------------------------------------------------
# 16 sequences fill the batch, one more waits, the next finds the queue full.
printf '{"queue_depth": 1, "max_sequences_per_tenant": 100, "max_tokens": 1000}' >"$TMP/queue.json"
start_daemon "$TMP/state2" --config "$TMP/queue.json" --model "$M" --model-id big --threads 1
pids=()
for i in $(seq 1 16); do
    curl -sN "$URL/v1/completions" -d "$LONG" >/dev/null &
    pids+=($!)
    wait_metric slorad_engine_running "$i"
done
curl -sN "$URL/v1/completions" -d "$LONG" >/dev/null &
pids+=($!)
wait_metric slorad_engine_waiting 1
check "batch full" 16 "$(metric slorad_engine_running)"
out=$(curl -s -D "$TMP/h" -w ' %{http_code}' "$URL/v1/completions" -d '{"model":"big","prompt":"a","max_tokens":1}')
check "queue full -> 503" 503 "${out##* }"
check_contains "503 has Retry-After" "Retry-After: 1" "$(cat "$TMP/h")"
check_contains "503 says why" "queue is full" "$out"
kill "${pids[@]}" 2>/dev/null || true
wait "${pids[@]}" 2>/dev/null || true
wait_metric slorad_engine_running 0
check "all 17 disconnects canceled" 17 "$(metric slorad_engine_canceled_total)"
check "queue drained" 0 "$(metric slorad_engine_waiting)"
stop_daemon
echo "infer_limits: $N_CHECKS checks passed"
