#!/usr/bin/env bash
# openai_client.sh - a real client: client/examples/openai.mjs with the
# official `openai` npm package (major version 4) against the daemon with
# auth on, on a tenant's adapter: one completion and one streamed
# completion, both equal to the same request sent with curl.
. "$(dirname "$0")/lib/daemon.sh"

EX=client/examples
command -v node >/dev/null || fail "node is not installed (make deps)"
if [ ! -d "$EX/node_modules/openai" ]; then
    (cd "$EX" && npm ci --no-audit --no-fund >/dev/null 2>&1) || fail "npm ci in $EX failed"
fi
major=$(node -p "require('./$EX/node_modules/openai/package.json').version.split('.')[0]")
check "openai npm package major version" 4 "$major"

h() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
printf '{"tenants": [{"name": "acme", "key_sha256": "%s"}]}' "$(h acme-key)" >"$TMP/conf.json"
start_daemon "$TMP/state" --config "$TMP/conf.json"
check "upload acme/style" 201 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer acme-key' \
    -T "$FIXTURES/lokr.safetensors" "$URL/v1/adapters/acme/style")"
want=$(curl -s -H 'Authorization: Bearer acme-key' "$URL/v1/completions" \
    -d '{"model":"acme/style","prompt":"Once upon a time","max_tokens":8,"temperature":0}' |
    "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"])')
out=$(cd "$EX" && SLORAD_URL=$URL SLORAD_KEY=acme-key SLORAD_MODEL=acme/style timeout 60 node openai.mjs) ||
    fail "openai.mjs failed: $out"
first=$(echo "$out" | sed -n 1p)
second=$(echo "$out" | sed -n 2p)
check "SDK completion text" "$want" "$(echo "$first" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["text"])')"
check_contains "SDK completion usage" '"usage":{"prompt_tokens":5,"completion_tokens":8,"total_tokens":13}' "$first"
check "SDK streamed text" "$want" "$(echo "$second" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["streamed"])')"
check_contains "SDK stream finish_reason" '"finish_reason":"length"' "$second"
out=$(cd "$EX" && SLORAD_URL=$URL SLORAD_KEY=wrong-key timeout 60 node openai.mjs 2>&1) && fail "a wrong key succeeded"
check_contains "SDK surfaces 401" "401" "$out"
stop_daemon
echo "openai_client: $N_CHECKS checks passed"
