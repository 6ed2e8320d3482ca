#!/usr/bin/env bash
# infer_mix.sh - per-request adapter mixes ("adapters": [{"id", "weight"}])
# end to end against the real daemon. Golden logits come from the numpy
# reference (model_ref.py --adapter A --weight w ..., W + sum_i w_i dW_i in
# float64), on stories260K and on GQA llama and qwen2 GGUF models, mixing a
# factored LoRA with dense LoKr / Tucker adapters (1e-5 relative); weight 0,
# negative weights, a one-entry mix of weight 1 == the plain adapter (bit
# for bit); the response's `adapters` list; one cache entry per adapter
# and none per mix; every rejection over HTTP with its message (another
# tenant's id is 404 like an unknown one); a hot swap storm of a mixed
# adapter (in-flight requests finish on their versions, the next one runs
# on the new version).
. "$(dirname "$0")/lib/daemon.sh"

REF=tests/ref
TOKENS=1,403,407,261,378,432,383,286,262
post() { curl -s "$URL$1" -d "$2"; }
# mix_json '{id: w, ...}'-like list "id:w id:w": the adapters array
mix_json() {
    local out="" sep="" a
    for a in "$@"; do
        out="$out$sep{\"id\":\"${a%%:*}\",\"weight\":${a#*:}}"
        sep=,
    done
    echo "[$out]"
}
# logits MODEL-OR-MIX OUT [tokens]: all positions; a mix is "id:w ..." on $BASE
logits() {
    local body
    case "$1" in
    *:*) body="{\"model\":\"$BASE\",\"adapters\":$(mix_json $1)" ;;
    *) body="{\"model\":\"$1\"" ;;
    esac
    post /v1/logits "$body,\"tokens\":[${3:-$TOKENS}],\"positions\":\"all\"}" >"$2"
}
# mix_agree WHAT MIX MODEL FILE:W...: the daemon's mix vs model_ref.py's
mix_agree() {
    local what=$1 mix=$2 model=$3 a args=()
    shift 3
    for a in "$@"; do args+=(--adapter "${a%:*}" --weight "${a##*:}"); done
    logits "$mix" "$TMP/got.json" "${TOK_OVERRIDE:-}"
    "$PYTHON" $REF/model_ref.py --model "$model" --tokens "${TOK_OVERRIDE:-$TOKENS}" "${args[@]}" \
        >"$TMP/want.json"
    N_CHECKS=$((N_CHECKS + 1))
    "$PYTHON" $REF/compare_logits.py "$TMP/got.json" "$TMP/want.json" --tol 1e-5 --what "$what" ||
        fail "$what: daemon logits differ from numpy's W + sum w_i dW_i"
    # the mix must matter: far from the base and from each adapter alone
    for a in base "$@"; do
        if [ "$a" = base ]; then
            "$PYTHON" $REF/model_ref.py --model "$model" --tokens "${TOK_OVERRIDE:-$TOKENS}"
        else
            "$PYTHON" $REF/model_ref.py --model "$model" --tokens "${TOK_OVERRIDE:-$TOKENS}" \
                --adapter "${a%:*}"
        fi >"$TMP/other.json"
        ! "$PYTHON" $REF/compare_logits.py "$TMP/other.json" "$TMP/want.json" --tol 1e-3 \
            >/dev/null || fail "$what: the mix is indistinguishable from ${a%:*}"
    done
}
# same_logits WHAT A B: two requests give identical logits, bit for bit
same_logits() {
    logits "$2" "$TMP/a.json"
    logits "$3" "$TMP/b.json"
    check "$1" "$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["logits"])' "$TMP/b.json")" \
        "$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["logits"])' "$TMP/a.json")"
}
version_of() { sha256sum <"$1" | cut -c1-16; }

# ---- stories260K: factored LoRA, dense LoKr and Tucker 3D, against numpy -----
M=models/stories260K.bin
BASE=stories260K
LORA=$FIXTURES/lora_wq_wv.safetensors     # per-matrix LoRA: factored
LOKR=$FIXTURES/lokr.safetensors           # LoKr (K = 2): dense
TUCK=$FIXTURES/mixed_dtypes_tucker3d.safetensors # Tucker 3D per matrix: dense
auth_conf "$TMP/auth.json"
start_daemon "$TMP/state" --config "$TMP/auth.json"
METRICS_KEY=admin-key
H=(-H "Authorization: Bearer acme-key")
post() { curl -s "${H[@]}" "$URL$1" -d "$2"; }
for a in lora:$LORA lokr:$LOKR tucker:$TUCK; do
    check "PUT acme/${a%%:*}" 201 "$(status PUT "$URL/v1/adapters/acme/${a%%:*}" "${H[@]}" -T "${a#*:}")"
done
mix_agree "0.7 LoRA + 0.3 LoKr (factored + dense)" "acme/lora:0.7 acme/lokr:0.3" $M \
    "$LORA:0.7" "$LOKR:0.3"
mix_agree "1.5 LoRA - 0.5 LoKr + 0.8 Tucker (negative weight)" \
    "acme/lora:1.5 acme/lokr:-0.5 acme/tucker:0.8" $M "$LORA:1.5" "$LOKR:-0.5" "$TUCK:0.8"
same_logits "one-entry mix of weight 1 == the plain adapter" "acme/lokr:1" acme/lokr
same_logits "weight 0 drops an adapter" "acme/lokr:0 acme/lora:1" acme/lora
same_logits "every weight 0 == the base" "acme/lokr:0" $BASE

out=$(post /v1/logits "{\"model\":\"$BASE\",\"adapters\":$(mix_json acme/lora:0.7 acme/lokr:-0.25),\"tokens\":[1]}")
check_contains "logits list the mix" "\"adapter_version\":null,\"adapters\":[{\"id\":\"acme/lora\",\"version\":\"$(version_of "$LORA")\",\"weight\":0.7},{\"id\":\"acme/lokr\",\"version\":\"$(version_of "$LOKR")\",\"weight\":-0.25}]" "$out"
body="{\"model\":\"$BASE\",\"adapters\":$(mix_json acme/lora:0.7 acme/lokr:0.3),\"prompt\":[$TOKENS],\"temperature\":0,\"max_tokens\":10}"
out=$(post /v1/completions "$body")
check_contains "completion lists the mix" "\"model\":\"$BASE\",\"adapters\":[{\"id\":\"acme/lora\",\"version\":\"$(version_of "$LORA")\",\"weight\":0.7},{\"id\":\"acme/lokr\"" "$out"
case "$out" in *adapter_version*) fail "a mix completion reports an adapter_version" ;; esac
"$PYTHON" $REF/model_ref.py --model $M --tokens $TOKENS --greedy 10 --adapter "$LORA" --weight 0.7 \
    --adapter "$LOKR" --weight 0.3 >"$TMP/greedy.json"
# the reference's tokens up to an end of text (BOS or EOS), as text
greedy=$("$PYTHON" -c 'import json, sys
t = json.load(open(sys.argv[1]))["tokens"]
print([x for x in t[:next((i for i, x in enumerate(t) if x in (1, 2)), len(t))]])' "$TMP/greedy.json")
want=$(post /v1/detokenize "{\"tokens\":$greedy}")
check "temperature-0 mix completion == numpy's greedy tokens" "$want" \
    "$("$PYTHON" -c 'import json,sys; print(json.dumps({"text": json.loads(sys.stdin.read())["choices"][0]["text"]}, separators=(",", ":"), ensure_ascii=False))' <<<"$out")"
stream=$(curl -sN "${H[@]}" "$URL/v1/completions" -d "${body%\}},\"stream\":true}")
check_contains "stream chunks list the mix" '"adapters":[{"id":"acme/lora"' "$(grep '^data: {' <<<"$stream" | head -1)"
check "stream text == the non-stream text" \
    "$("$PYTHON" -c 'import json,sys; print(json.loads(sys.stdin.read())["choices"][0]["text"])' <<<"$out")" \
    "$(grep '^data: {' <<<"$stream" | sed 's/^data: //' | "$PYTHON" -c 'import json,sys; print("".join(json.loads(l)["choices"][0]["text"] for l in sys.stdin))')"
check "cache: one entry per adapter, none per mix" "3 3" \
    "$(metric slorad_delta_cache_entries) $(metric slorad_delta_cache_misses_total)"
log_has 'route=completions tenant=acme adapter=acme/lora,acme/lokr version=[0-9a-f]{16},[0-9a-f]{16}' ||
    fail "access log of a mix"
echo "ok - the access log names the mix's adapters and versions"

# ---- rejections --------------------------------------------------------------
check "PUT beta/own" 201 "$(status PUT "$URL/v1/adapters/beta/own" -H "Authorization: Bearer beta-key" -T "$LORA")"
nine=$(mix_json acme/a:1 acme/b:1 acme/c:1 acme/d:1 acme/e:1 acme/f:1 acme/g:1 acme/h:1 acme/i:1)
while IFS='|' read -r key adapters code fragment; do
    [ -n "$key" ] || continue
    [ "$adapters" = NINE ] && adapters=$nine
    for path in /v1/completions /v1/logits; do
        out=$(curl -s -w ' %{http_code}' -H "Authorization: Bearer $key" "$URL$path" \
            -d "{\"model\":\"$BASE\",\"adapters\":$adapters,\"prompt\":\"Hi\",\"max_tokens\":1}")
        check "$key $path $adapters -> $code" "$code" "${out##* }"
        check_contains "$key $path $adapters message" "$fragment" "$out"
    done
done <<'EOF'
beta-key|[{"id":"acme/lora","weight":0.5},{"id":"beta/own","weight":0.5}]|404|"adapter 'acme/lora' not found"
beta-key|[{"id":"beta/own","weight":0.5},{"id":"beta/nope","weight":0.5}]|404|"adapter 'beta/nope' not found"
acme-key|[{"id":"acme/lora","weight":1e39}]|400|adapters[0].weight must be a finite number
acme-key|[{"id":"acme/lora","weight":1e999}]|400|invalid JSON body: real number overflow
acme-key|[{"id":"acme/lora","weight":"0.5"}]|400|adapters[0].weight must be a finite number
acme-key|[{"id":"acme/lora"}]|400|adapters[0].weight must be a finite number
acme-key|NINE|400|'adapters' has 9 entries; a mix takes 1 to 8
acme-key|[]|400|'adapters' has 0 entries; a mix takes 1 to 8
acme-key|[{"id":"acme/lora","weight":0.5},{"id":"acme/lora","weight":0.5}]|400|adapters[1].id 'acme/lora' is listed twice
acme-key|[{"id":"acme/lora","weight":0.5},"acme/lokr"]|400|adapters[1] must be an object
acme-key|[{"id":7,"weight":0.5}]|400|adapters[0].id must be a string
acme-key|{"id":"acme/lora","weight":0.5}|400|'adapters' must be an array
EOF
out=$(post /v1/completions '{"model":"acme/lora","adapters":[{"id":"acme/lokr","weight":1}],"prompt":"Hi"}')
check_contains "an adapter in 'model' with 'adapters' -> 400" "with 'adapters', 'model' must be the base model id ('$BASE'), not 'acme/lora'" "$out"
out=$(curl -s -H "Authorization: Bearer beta-key" "$URL/v1/completions" -d '{"model":"acme/lora","prompt":"Hi"}')
check_contains "single: the same message shape for another tenant's adapter" "model 'acme/lora' not found" "$out"
check "refused mixes generate nothing" 3 "$(metric slorad_delta_cache_misses_total)"
check_contains "null 'adapters' is no mix" '"object":"text_completion"' \
    "$(post /v1/completions "{\"model\":\"$BASE\",\"adapters\":null,\"prompt\":\"Hi\",\"max_tokens\":1}")"

stop_daemon
unset METRICS_KEY
H=()

# ---- hot swap of a mixed adapter under load ----------------------------------
start_daemon "$TMP/state-storm"
"$PYTHON" "$E2E_LIB/infer.py" storm "$URL" "$LORA" "$LOKR" 40 6 "$TUCK" "$BASE" ||
    fail "hot swap storm of mixes"
check "engine idle after the storm" 0 "$(metric slorad_engine_running)"
stop_daemon

# ---- GQA GGUF models (Llama 3 style and qwen2): LoRA + dense Tucker ----------
# dense_adapter MODEL OUT: one group over q/k/v/o/down, a Tucker 3D fold
# (LoRTA-like, never factored), calibrated to 5% of the weights.
dense_adapter() {
    "$PYTHON" - "$1" "$2" <<'PY'
import math, sys
sys.path.insert(0, "tests/ref")
import make_fixtures as mf, model_ref as mr
m = mr.Model(sys.argv[1])
def fold(ng):
    a = math.ceil(ng ** (1 / 3))
    return [a, a, -(-ng // (a * a))]
data = mf.build_fixture(m, "dense_gguf", {"modules": ["wq", "wk", "wv", "wo", "w2"], "groups": 1},
                        mf.per_group(lambda ng: [mf.tucker(fold(ng), [2, 3, 2])]), "F32", {})
open(sys.argv[2], "wb").write(data)
PY
}
TOK_OVERRIDE=1,17,250,3,99,42,42,7,311,0,128,64,1000,2047
mkdir -p "$TMP/l3" "$TMP/q2"
"$SLORAD" gen-model --dim 64 --hidden 160 --layers 2 --heads 8 --kv-heads 2 --vocab 2048 \
    --seq-len 64 --rope-theta 500000 --rms-eps 1e-6 --rope-freqs --seed 4 -o "$TMP/l3/m.gguf" \
    --tokenizer-out "$TMP/l3/tok2048.bin" >/dev/null || fail "gen-model llama"
"$SLORAD" gen-model --arch qwen2 --dim 56 --hidden 96 --layers 2 --heads 7 --kv-heads 1 \
    --vocab 2048 --seq-len 64 --rope-theta 1000000 --rms-eps 1e-6 --shared-classifier --seed 6 \
    -o "$TMP/q2/m.gguf" --tokenizer-out "$TMP/q2/tok2048.bin" >/dev/null || fail "gen-model qwen2"
for m in l3:64,2,8,2,160,2048 q2:56,2,7,1,96,2048; do
    d=$TMP/${m%%:*}
    "$PYTHON" "$E2E_LIB/gen_adapter.py" "$d/lora.st" --rank 4 --scale 0.2 \
        --modules wq,wk,wv,wo,w2 --base "${m#*:}" || fail "LoRA for ${m%%:*}"
    dense_adapter "$d/m.gguf" "$d/dense.st" || fail "dense adapter for ${m%%:*}"
    DAEMON_MODEL="--model $d/m.gguf" start_daemon "$d/state" --model-id base
    BASE=base
    check "PUT ${m%%:*} LoRA" 201 "$(status PUT "$URL/v1/adapters/t/lora" -T "$d/lora.st")"
    check "PUT ${m%%:*} dense" 201 "$(status PUT "$URL/v1/adapters/t/dense" -T "$d/dense.st")"
    mix_agree "${m%%:*} GGUF: 0.7 LoRA + 0.3 Tucker (factored + dense)" "t/lora:0.7 t/dense:0.3" \
        "$d/m.gguf" "$d/lora.st:0.7" "$d/dense.st:0.3"
    mix_agree "${m%%:*} GGUF: -0.6 LoRA + 1.25 Tucker" "t/lora:-0.6 t/dense:1.25" \
        "$d/m.gguf" "$d/lora.st:-0.6" "$d/dense.st:1.25"
    stop_daemon
done

echo "infer_mix: $N_CHECKS checks passed"
