#!/usr/bin/env bash
# security_inputs.sh - hostile names and bodies, each a clean 4xx with the
# JSON error shape and nothing stored: `..`, %2f, %00, overlong UTF-8, very
# long names, CR/LF injection in paths and headers, oversized numbers, deeply
# nested JSON, duplicate keys (lib/security.py inputs); the daemon keeps
# serving and exits 0 with an empty sanitizer log.
. "$(dirname "$0")/lib/daemon.sh"

auth_conf "$TMP/conf.json"
start_daemon "$TMP/state" --config "$TMP/conf.json"
"$PYTHON" "$E2E_LIB/security.py" inputs "$PORT" "$FIXTURES/lokr.safetensors" || fail "hostile inputs"
check "nothing reached the state directory" 0 "$(find "$TMP/state" -type f | wc -l)"
stop_daemon
echo "security_inputs: ok"
