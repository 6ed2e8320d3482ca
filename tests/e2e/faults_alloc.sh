#!/usr/bin/env bash
# faults_alloc.sh - an allocation failure on a worker (SLORA_FAULT_ALLOC=1:
# the first delta-cache allocation fails): that request gets 503 with the
# JSON error shape, the daemon keeps serving (the retry generates the entry
# and answers 200, the base model and other endpoints are unaffected), the
# failure is counted, and the daemon exits 0 with no leak reported.
. "$(dirname "$0")/lib/daemon.sh"

"$PYTHON" "$E2E_LIB/gen_adapter.py" "$TMP/a.safetensors" --seed 5
export SLORA_FAULT_ALLOC=1
start_daemon "$TMP/state"
unset SLORA_FAULT_ALLOC
check "upload (validation allocates outside the cache)" 201 "$(status PUT "$URL/v1/adapters/acme/a" -T "$TMP/a.safetensors")"
req='{"model":"acme/a","prompt":"Once","max_tokens":3,"temperature":0}'
out=$(curl -s -w ' %{http_code}' "$URL/v1/completions" -d "$req")
check "the request hit by the allocation failure gets 503" 503 "${out##* }"
check_contains "503 is a JSON server_error" '"type":"server_error"' "$out"
check_contains "503 says what failed" "allocate" "$out"
check "the retry succeeds" 200 "$(status POST "$URL/v1/completions" -d "$req")"
check "the base model is unaffected" 200 \
    "$(status POST "$URL/v1/completions" -d '{"model":"stories260K","prompt":"a","max_tokens":2}')"
check "management endpoints unaffected" 200 "$(status GET "$URL/v1/adapters/acme/a")"
check_contains "the failure is logged" "generating acme/a@" "$(cat "$DAEMON_LOG")"
stop_daemon
echo "faults_alloc: $N_CHECKS checks passed"
