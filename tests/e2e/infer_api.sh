#!/usr/bin/env bash
# infer_api.sh - the inference endpoints end to end against the real daemon:
# /v1/logits of every fixture adapter equals the numpy reference and its
# temperature-0 completion the reference greedy tokens and `slorad generate
# --adapter`; completion format,
# streaming (SSE), echo/logprobs, tokenize/detokenize, validation errors;
# hot swap under load; delta-cache hit/miss/eviction counts for a scripted
# sequence under a tiny budget, pins (?pin=1 survives, 507 when it cannot
# fit), an oversize adapter still served.
. "$(dirname "$0")/lib/daemon.sh"

INFER="$PYTHON $E2E_LIB/infer.py"
post() { curl -s "$URL$1" -d "$2"; }
post_status() { curl -s -o /dev/null -w '%{http_code}' "$URL$1" -d "$2"; }

# ---- exactness against the numpy reference ----------------------------------
"$PYTHON" tests/ref/make_fixtures.py expected --model models/stories260K.bin --out "$TMP/expected" >/dev/null
start_daemon "$TMP/state"
$INFER fixtures "$URL" "$FIXTURES" "$TMP/expected" "$SLORAD" || fail "fixture adapters"

# ---- completions format ------------------------------------------------------
out=$(post /v1/completions '{"model":"stories260K","prompt":"Once upon a time","temperature":0,"max_tokens":8}')
check_contains "object text_completion" '"object":"text_completion"' "$out"
check_contains "base completion text" '"text":", there was a little girl"' "$out"
check_contains "finish_reason length" '"finish_reason":"length"' "$out"
check_contains "usage" '"usage":{"prompt_tokens":5,"completion_tokens":8,"total_tokens":13}' "$out"
case "$out" in *adapter_version*) fail "base completion reports an adapter_version" ;; esac
check_contains "id" '"id":"cmpl-' "$out"
out=$(post /v1/completions '{"model":"acme/lokr","prompt":"Once upon a time","temperature":0,"max_tokens":4}')
check_contains "adapter completion reports its version" "\"adapter_version\":\"$(sha256sum <"$FIXTURES/lokr.safetensors" | cut -c1-16)\"" "$out"
out=$(post /v1/completions '{"model":"stories260K","prompt":"Once upon a time","temperature":0,"max_tokens":50,"stop":[" girl"]}')
check_contains "stop string ends the text" '"text":", there was a little","index":0,"finish_reason":"stop"' "$out"
out=$(post /v1/completions '{"model":"stories260K","prompt":"","temperature":0,"max_tokens":3}')
check_contains "empty prompt is just BOS" '"prompt_tokens":1' "$out"
a=$(post /v1/completions '{"model":"stories260K","prompt":"Once","max_tokens":20,"seed":42}')
b=$(post /v1/completions '{"model":"stories260K","prompt":"Once","max_tokens":20,"seed":42}')
check "same seed, same text" "$(echo "$a" | sed 's/.*"text":"\([^"]*\)".*/\1/')" "$(echo "$b" | sed 's/.*"text":"\([^"]*\)".*/\1/')"
out=$(post /v1/completions '{"model":"stories260K","prompt":"Once upon","temperature":0,"max_tokens":2,"echo":true,"logprobs":1}')
check_contains "echo prepends the prompt" '"text":"Once upon a time"' "$out"
check_contains "echo logprobs cover prompt and completion" '"tokens":["","Once"," upon"," a"," time"]' "$out"
check_contains "text offsets" '"text_offset":[0,0,4,9,11]' "$out"

# ---- streaming ---------------------------------------------------------------
curl -sN -D "$TMP/h" "$URL/v1/completions" -d '{"model":"stories260K","prompt":"Once upon a time","temperature":0,"max_tokens":8,"stream":true}' >"$TMP/sse"
check_contains "stream content type" "Content-Type: text/event-stream" "$(cat "$TMP/h")"
check "stream ends with [DONE]" "data: [DONE]" "$(grep '^data:' "$TMP/sse" | tail -1)"
check "stream pieces concatenate to the text" ", there was a little girl" \
    "$(grep '^data: {' "$TMP/sse" | sed 's/^data: //' | "$PYTHON" -c 'import json,sys; print("".join(json.loads(l)["choices"][0]["text"] for l in sys.stdin))')"
check "a refused stream is a plain error" 404 "$(post_status /v1/completions '{"model":"nope","prompt":"a","stream":true}')"
check_contains "last chunk has finish_reason" '"finish_reason":"length"' "$(grep '^data: {' "$TMP/sse" | tail -1)"

# ---- logits, tokenize, detokenize --------------------------------------------
out=$(post /v1/logits '{"model":"stories260K","prompt":"Once"}')
check_contains "logits tokens" '"tokens":[1,403]' "$out"
check "logits last: one row" 1 "$(echo "$out" | "$PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)["logits"]))')"
check_contains "logits base: null adapter_version" '"adapter_version":null' "$out"
check "logits after BOS = upstream llama2.c [-6.22291, 8.40434] (1e-4)" ok \
    "$(post /v1/logits '{"model":"stories260K","tokens":[1]}' | "$PYTHON" -c '
import json, sys
l = json.load(sys.stdin)["logits"][0]
print("ok" if abs(l[0] + 6.22291) < 1e-4 and abs(l[1] - 8.40434) < 1e-4 else l[:2])')"
check "tokenize" '{"tokens":[1,403,407,261,378]}' "$(post /v1/tokenize '{"prompt":"Once upon a time"}')"
check "tokenize without BOS" '{"tokens":[403]}' "$(post /v1/tokenize '{"prompt":"Once","add_bos":false}')"
check "detokenize" '{"text":"Once upon a time"}' "$(post /v1/detokenize '{"tokens":[1,403,407,261,378]}')"

# ---- validation --------------------------------------------------------------
while IFS='|' read -r path body code fragment; do
    [ -n "$path" ] || continue
    out=$(curl -s -w ' %{http_code}' "$URL$path" -d "$body")
    check "$path $body -> $code" "$code" "${out##* }"
    check_contains "$path $body message" "$fragment" "$out"
done <<'EOF'
/v1/completions|{"model":"nope","prompt":"a"}|404|model 'nope' not found
/v1/completions|{"model":"other/thing","prompt":"a"}|404|not found
/v1/completions|{"prompt":"a"}|400|'model' is required
/v1/completions|{"model":"stories260K","prompt":[]}|400|token array is empty
/v1/completions|{"model":"stories260K","prompt":[1,512]}|400|prompt token 1 must be an integer in [0, 512)
/v1/completions|{"model":"stories260K","prompt":5}|400|'prompt' must be a string or an array
/v1/completions|{"model":"stories260K","prompt":"a","n":2}|400|'n' is not supported
/v1/completions|{"model":"stories260K","prompt":"a","best_of":3}|400|'best_of' is not supported
/v1/completions|{"model":"stories260K","prompt":"a","logit_bias":{"5":1}}|400|'logit_bias' is not supported
/v1/completions|{"model":"stories260K","prompt":"a","suffix":"x"}|400|'suffix' is not supported
/v1/completions|{"model":"stories260K","prompt":"a","presence_penalty":0.5}|400|'presence_penalty' is not supported
/v1/completions|{"model":"stories260K","prompt":"a","max_tokens":"5"}|400|'max_tokens' must be an integer
/v1/completions|{"model":"stories260K","prompt":"a","temperature":-1}|400|'temperature' must be a number
/v1/completions|{"model":"stories260K","prompt":"a","top_p":2}|400|'top_p' must be a number in [0, 1]
/v1/completions|{"model":"stories260K","prompt":"a","logprobs":6}|400|'logprobs' must be an integer in [0, 5]
/v1/completions|{"model":"stories260K","prompt":"a","stream":"yes"}|400|'stream' must be true or false
/v1/completions|{"model":"stories260K","prompt":"a","stop":[""]}|400|'stop' entries must be non-empty strings
/v1/completions|{"model":"stories260K","prompt":"a","stop":7}|400|'stop' must be a string or an array
/v1/completions|{"model":"stories260K","prompt":"a\u0000b"}|400|\\u0000 is not allowed
/v1/completions|{"model":"stories260K","prompt":"a","stop":["\u0000"]}|400|\\u0000 is not allowed
/v1/tokenize|{"prompt":"a\u0000b"}|400|\\u0000 is not allowed
/v1/completions|[1,2]|400|must be a JSON object
/v1/completions|{"model":|400|invalid JSON body
/v1/logits|{"model":"stories260K","prompt":"a","positions":"first"}|400|must be \"last\" or \"all\"
/v1/logits|{"model":"stories260K","prompt":"a","tokens":[1]}|400|either 'prompt' or 'tokens'
/v1/tokenize|{"prompt":3}|400|'prompt' must be a string
/v1/detokenize|{"tokens":[1,-1]}|400|token 1 must be an integer in [0, 512)
EOF
# Text that cannot fit the context is refused before encoding (no encode scratch).
"$PYTHON" -c 'print("{\"model\":\"stories260K\",\"prompt\":\"" + "a" * 200000 + "\"}")' >"$TMP/huge.json"
for path in /v1/completions /v1/logits /v1/tokenize; do
    out=$(curl -s -w ' %{http_code}' "$URL$path" --data-binary @"$TMP/huge.json")
    check "$path: 200000-byte prompt -> 400" 400 "${out##* }"
    check_contains "$path: says the prompt is too long" "'prompt' has 200000 bytes; at most" "$out"
done
long=$("$PYTHON" -c 'print("[" + ",".join(["1"] * 512) + "]")')
check "prompt of seq_len tokens -> 400" 400 "$(post_status /v1/completions "{\"model\":\"stories260K\",\"prompt\":$long}")"
check_contains "unknown fields ignored" '"object":"text_completion"' "$(post /v1/completions '{"model":"stories260K","prompt":"a","max_tokens":1,"user":"x","best_of":1,"n":1,"logit_bias":{}}')"

# ---- hot swap under load -----------------------------------------------------
$INFER storm "$URL" "$FIXTURES/lora_wq_wv.safetensors" "$FIXTURES/lokr.safetensors" 100 8 || fail "hot swap storm"
check "engine idle after the storm" 0 "$(metric slorad_engine_running)"
check "a request on the final version" 200 "$(post_status /v1/completions '{"model":"storm/one","prompt":"a","max_tokens":1}')"
check "replaced versions freed: 22 fixtures + 1 storm version resident" 23 "$(metric slorad_delta_cache_entries)"
check "adapter objects back to baseline (23 registered)" 23 "$(metric slorad_adapter_objects_live)"
check "prompt tokens counted per tenant" 1 "$(curl -s "$URL/metrics" | grep -c '^slorad_tenant_prompt_tokens_total{tenant="storm"} [1-9]')"
stop_daemon

# ---- delta cache under a tiny budget -----------------------------------------
# Each gen_adapter.py adapter (per-matrix LoRA r=4 on wq, wv) is kept
# factored: 5 * 4 * ((64 + 64) + (32 + 64)) * 4 = 17920 bytes; the budget
# holds two. The all-module one (t/big) needs 92480.
for s in 1 2 3; do "$PYTHON" "$E2E_LIB/gen_adapter.py" "$TMP/a$s.st" --seed $s; done
"$PYTHON" "$E2E_LIB/gen_adapter.py" "$TMP/big.st" --seed 9 --modules wq,wk,wv,wo,w1,w2,w3
printf '{"delta_cache_bytes": 40000, "max_tokens": 3, "max_logits_bytes": 4096}' >"$TMP/tiny.json"
start_daemon "$TMP/state2" --config "$TMP/tiny.json"
# max_logits_bytes 4096 with a 512-token vocabulary: all positions of a
# 5-token prompt cannot fit (>= 2 bytes a float), refused before the
# forward pass; the last row passes that bound but its text (~6 KB) not
out=$(post_status /v1/logits '{"model":"stories260K","prompt":"Once upon a time","positions":"all"}')
check "logits of every position over max_logits_bytes -> 400" 400 "$out"
out=$(curl -s "$URL/v1/logits" -d '{"model":"stories260K","prompt":"Once upon a time","positions":"all"}')
check_contains "names the bound before the forward pass" "exceed max_logits_bytes (4096)" "$out"
out=$(curl -s -w ' %{http_code}' "$URL/v1/logits" -d '{"model":"stories260K","prompt":"Once"}')
check "the last row's text over max_logits_bytes -> 400" 400 "${out##* }"
check_contains "names the bound after formatting" "would be over max_logits_bytes (4096 bytes)" "$out"
for s in 1 2 3; do check "PUT t/a$s" 201 "$(status PUT "$URL/v1/adapters/t/a$s" -T "$TMP/a$s.st")"; done
use() { check "completion on $1" 200 "$(post_status /v1/completions "{\"model\":\"$1\",\"prompt\":\"Hi\",\"max_tokens\":1}")"; }
cache_counts() { echo "$(metric slorad_delta_cache_hits_total) $(metric slorad_delta_cache_misses_total) $(metric slorad_delta_cache_evictions_total) $(metric slorad_delta_cache_entries)"; }
use t/a1; use t/a2; use t/a1
check "hits misses evictions entries after a1 a2 a1" "1 2 0 2" "$(cache_counts)"
use t/a3
check "a3 evicts the least recently used (a2)" "1 3 1 2" "$(cache_counts)"
use t/a1
check "a1 still resident" "2 3 1 2" "$(cache_counts)"
use t/a2
check "a2 misses again, evicts a3" "2 4 2 2" "$(cache_counts)"
check "PUT ?pin=1 on a3" 200 "$(status PUT "$URL/v1/adapters/t/a3?pin=1" -T "$TMP/a3.st")"
check "pinned bytes" 17920 "$(metric slorad_delta_cache_pinned_bytes)"
use t/a1; use t/a2; use t/a1; use t/a2
before=$(metric slorad_delta_cache_misses_total)
use t/a3
check "pinned a3 survived the traffic" "$before" "$(metric slorad_delta_cache_misses_total)"
check "PUT ?pin=1 on a1 (two pins fit)" 200 "$(status PUT "$URL/v1/adapters/t/a1?pin=1" -T "$TMP/a1.st")"
out=$(curl -s -w ' %{http_code}' -T "$TMP/a2.st" "$URL/v1/adapters/t/a2?pin=1")
check "a third pin does not fit -> 507" 507 "${out##* }"
check_contains "507 names the budget" "budget" "$out"
check "pinned bytes unchanged" 35840 "$(metric slorad_delta_cache_pinned_bytes)"
# A refused pin changes nothing: a new version of t/a2 is not stored.
"$PYTHON" "$E2E_LIB/gen_adapter.py" "$TMP/a2v2.st" --seed 22
old_a2=$(sha256sum <"$TMP/a2.st" | cut -c1-16)
check "new version of t/a2 with ?pin=1 that cannot fit -> 507" 507 "$(status PUT "$URL/v1/adapters/t/a2?pin=1" -T "$TMP/a2v2.st")"
check "t/a2 still at its previous version" "\"$old_a2\"" "$(curl -s -D - -o /dev/null "$URL/v1/adapters/t/a2" | tr -d '\r' | awk 'tolower($1) == "etag:" {print $2}')"
curl -s -o "$TMP/a2.back" "$URL/v1/adapters/t/a2/file"
check "t/a2 stored file is still the previous upload" ok "$(cmp -s "$TMP/a2.st" "$TMP/a2.back" && echo ok)"
check "t/a2 previous version still serves" 200 "$(post_status /v1/completions '{"model":"t/a2","prompt":"Hi","max_tokens":1}')"
out=$(curl -s -w ' %{http_code}' -T "$TMP/big.st" "$URL/v1/adapters/t/a3")
check "replacing pinned t/a3 by a version whose carried pin cannot fit -> 507" 507 "${out##* }"
check_contains "507 says how to replace it unpinned" "?pin=0" "$out"
check "t/a3 still at its previous version" "\"$(sha256sum <"$TMP/a3.st" | cut -c1-16)\"" "$(curl -s -D - -o /dev/null "$URL/v1/adapters/t/a3" | tr -d '\r' | awk 'tolower($1) == "etag:" {print $2}')"
"$PYTHON" "$E2E_LIB/gen_adapter.py" "$TMP/a3v2.st" --seed 33
misses=$(metric slorad_delta_cache_misses_total)
check "replace pinned t/a3 (no flags)" 200 "$(status PUT "$URL/v1/adapters/t/a3" -T "$TMP/a3v2.st")"
check "the pin moved to the new version at once" "$((misses + 1)) 35840" \
    "$(metric slorad_delta_cache_misses_total) $(metric slorad_delta_cache_pinned_bytes)"
use t/a3
check "new version served from the pinned entry" "$((misses + 1))" "$(metric slorad_delta_cache_misses_total)"
check "PUT ?pin=0 unpins" 200 "$(status PUT "$URL/v1/adapters/t/a1?pin=0" -T "$TMP/a1.st")"
check "pinned bytes after unpin" 17920 "$(metric slorad_delta_cache_pinned_bytes)"
# A dry run reserves its pin to answer, then gives the bytes back: after
# two of them t/a1's pin still fits next to t/a3's.
for i in 1 2; do check "dry run of t/a2 with ?pin=1 ($i)" 200 "$(status PUT "$URL/v1/adapters/t/a2?pin=1&dry_run=1" -T "$TMP/a2v2.st")"; done
check "pinned bytes after the dry runs" 17920 "$(metric slorad_delta_cache_pinned_bytes)"
check "PUT ?pin=1 on a1 after the dry runs" 200 "$(status PUT "$URL/v1/adapters/t/a1?pin=1" -T "$TMP/a1.st")"
check "PUT ?pin=0 on a1 again" 200 "$(status PUT "$URL/v1/adapters/t/a1?pin=0" -T "$TMP/a1.st")"
check_contains "max_tokens clamped to the configured cap" '"completion_tokens":3,' "$(post /v1/completions '{"model":"stories260K","prompt":"Once","max_tokens":100,"temperature":0}')"
check "PUT big" 201 "$(status PUT "$URL/v1/adapters/t/big?warm=1" -T "$TMP/big.st")"
use t/big
check "oversize entry dropped after use" 0 "$(curl -s "$URL/metrics" | awk '$1 == "slorad_delta_cache_bytes" {print ($2 > 250000)}')"
stop_daemon

# ---- tenants: another tenant's adapter is 404, counters by caller ----------
auth_conf "$TMP/auth.json"
start_daemon "$TMP/state3" --config "$TMP/auth.json"
as() { local key=$1; shift; curl -s -w ' %{http_code}' -H "Authorization: Bearer $key" "$@"; }
out=$(as acme-key -T "$FIXTURES/lokr.safetensors" "$URL/v1/adapters/acme/style")
check "acme uploads acme/style" 201 "${out##* }"
out=$(as acme-key "$URL/v1/completions" -d '{"model":"acme/style","prompt":"Hi","max_tokens":2}')
check "acme uses its adapter" 200 "${out##* }"
out=$(as beta-key "$URL/v1/completions" -d '{"model":"acme/style","prompt":"Hi","max_tokens":2}')
check "beta on acme's adapter -> 404" 404 "${out##* }"
check_contains "same answer as a missing model" "model 'acme/style' not found" "$out"
out=$(as beta-key "$URL/v1/logits" -d '{"model":"acme/style","prompt":"Hi"}')
check "beta logits on acme's adapter -> 404" 404 "${out##* }"
out=$(as beta-key "$URL/v1/completions" -d '{"model":"stories260K","prompt":"Hi","max_tokens":2,"temperature":0}')
check "beta uses the base model" 200 "${out##* }"
check "no key -> 401" 401 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/completions" -d '{"model":"stories260K","prompt":"Hi"}')"
m=$(curl -s -H "Authorization: Bearer admin-key" "$URL/metrics")
check_contains "acme's tokens counted" 'slorad_tenant_completion_tokens_total{tenant="acme"} 2' "$m"
check_contains "beta's tokens counted" 'slorad_tenant_prompt_tokens_total{tenant="beta"} 3' "$m"
stop_daemon

echo "infer_api: $N_CHECKS checks passed"
