#!/usr/bin/env bash
# security_matrix.sh - tenants acme and beta, the admin and anonymous over
# every endpoint and method: exactly the documented allow/deny (401, 403,
# 404 for another tenant's namespace, 405 + Allow), no response revealing
# another tenant's adapter names, versions or sizes, and another tenant's
# adapter indistinguishable from an absent one (lib/security.py matrix).
. "$(dirname "$0")/lib/daemon.sh"

auth_conf "$TMP/conf.json"
start_daemon "$TMP/state" --config "$TMP/conf.json"
"$PYTHON" "$E2E_LIB/security.py" matrix "$PORT" "$FIXTURES/lokr.safetensors" \
    "$FIXTURES/lora_wq_wv.safetensors" || fail "security matrix"
grep -q -- "-key" "$DAEMON_LOG" && fail "a plaintext key reached the log"
echo "ok - no plaintext key in the log"
stop_daemon
echo "security_matrix: ok"
