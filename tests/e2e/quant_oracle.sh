#!/usr/bin/env bash
# quant_oracle.sh - `slorad quantize` end to end against llama.cpp
# (node-llama-cpp 3.21.1). For every --type, on gen-model llamas with real
# vocabularies:
#   1. every tensor has the type llama-quantize would give it, and
#      general.file_type its number (tests/oracle/quant_types.py: llama.cpp's
#      rules transcribed independently); the Q4_K_M and Q5_K_M files really
#      mix types (8 layers: attn_v and ffn_down in Q6_K on layers 0, 3, 6, 7);
#   2. llama.cpp loads the file, and our forward's logits agree with its
#      own on the same file (tests/oracle/compare.py: max|a-b| <= tol *
#      max|ref| on log-probs, greedy argmax equal wherever llama.cpp's top-2
#      margin exceeds 1% of its range). Tolerances: 1e-2 for the quantized
#      types (measured 4e-7 to 2.5e-3 on these 8-layer models; on 2 layers
#      Q8_0 agrees to 7e-7, so most of it is depth amplifying rounding
#      differences of the activations' quantization), the issue's 3e-2 for
#      the tied Q5_K_M model (measured 9.3e-3), 2e-3 for F16 and BF16
#      (measured 7e-5 and 7e-4);
#   3. columns that do not hold whole blocks take llama.cpp's fallbacks
#      (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16) on a dim 96,
#      FFN 208 model, and the result still agrees with llama.cpp;
#   4. refusals: an unknown --type, an input that is not a model, no --type;
#      none leaves an output file behind.
set -euo pipefail
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
S="$BUILD/slorad"
VOCAB=../shared/models/vocab
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -n "${SLORA_ORACLE:-}" ] && [ -d "$SLORA_ORACLE/node_modules/node-llama-cpp" ] \
    || fail "SLORA_ORACLE must name the node-llama-cpp install (make oracle)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
TOKENS=1,450,4996,17354,29871,13,1576,338,263,1243,29889,306,763,372,29991,2,3,300,1000,31999

gen() {
    local out=$1
    shift
    "$S" gen-model --layers 8 --seq-len 64 --seed 5 --vocab-from $VOCAB/ggml-vocab-llama-spm.gguf \
        "$@" -o "$out" > /dev/null || fail "gen-model $*"
}
# widths that hold whole 256-element blocks; the same tied; widths that do not
gen "$tmp/a.gguf" --dim 256 --hidden 512 --heads 4 --kv-heads 2
gen "$tmp/tied.gguf" --dim 256 --hidden 512 --heads 4 --kv-heads 2 --shared-classifier
gen "$tmp/odd.gguf" --dim 96 --hidden 208 --heads 4 --kv-heads 2

# check SRC TYPE TOL [--pure]: quantize, check the types, agree with llama.cpp
check() {
    local src=$1 type=$2 tol=$3 pure=${4:-}
    local name="$(basename "$src" .gguf) $type${pure:+ $pure}"
    "$S" quantize "$src" "$tmp/q.gguf" --type "$type" $pure > /dev/null 2> "$tmp/err" \
        || fail "$name: slorad quantize: $(head -c 400 "$tmp/err")"
    types=$("$PYTHON" tests/oracle/quant_types.py "$src" "$tmp/q.gguf" "$type" $pure) \
        || fail "$name: $types"
    "$S" logits --model "$tmp/q.gguf" --tokens "$TOKENS" --positions all > "$tmp/ours.json" \
        2> "$tmp/err" || fail "$name: slorad logits: $(head -c 400 "$tmp/err")"
    node tests/oracle/llama.mjs logprobs "$tmp/q.gguf" "$TOKENS" > "$tmp/ref.json" \
        || fail "$name: llama.cpp does not load our file"
    local out
    out=$("$PYTHON" tests/oracle/compare.py "$tmp/ours.json" "$tmp/ref.json" "$tol" 1e-2 8) \
        || fail "$name: $out"
    echo "ok: $name: $types; $out"
}

for t in Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q6_K Q4_K_S Q5_K_S; do
    check "$tmp/a.gguf" "$t" 1e-2
done
check "$tmp/a.gguf" F16 2e-3
check "$tmp/a.gguf" BF16 2e-3
# every matrix in one K type (llama-quantize --pure)
check "$tmp/a.gguf" Q4_K 1e-2 --pure
check "$tmp/a.gguf" Q5_K 1e-2 --pure
# the mixtures: Q6_K beside Q4_K / Q5_K (quant_types.py checks which tensor is which)
check "$tmp/a.gguf" Q4_K_M 1e-2
echo "$types" | grep -q "Q4_K x" && echo "$types" | grep -q "Q6_K x" \
    || fail "the Q4_K_M file does not mix Q4_K and Q6_K: $types"
if "$PYTHON" tests/oracle/quant_types.py "$tmp/a.gguf" "$tmp/q.gguf" Q4_K_S > /dev/null; then
    fail "quant_types.py takes the Q4_K_M file for a Q4_K_S one"
fi
# llama-quantize's Q4_K is Q4_K_M
"$S" quantize "$tmp/a.gguf" "$tmp/q4k.gguf" --type q4_k > /dev/null || fail "quantize --type q4_k"
cmp -s "$tmp/q.gguf" "$tmp/q4k.gguf" || fail "--type q4_k differs from q4_k_m"
check "$tmp/tied.gguf" Q5_K_M 3e-2
echo "$types" | grep -q "Q5_K x" && echo "$types" | grep -q "Q6_K x" \
    || fail "the Q5_K_M file does not mix Q5_K and Q6_K: $types"

# fallbacks: dim 96 (Q4_K -> Q5_0, Q6_K -> Q8_0), FFN 208 (ffn_down -> F16)
check "$tmp/odd.gguf" Q4_K_M 1e-2
echo "$types" | grep -q "Q5_0 x" && echo "$types" | grep -q "F16 x" \
    || fail "dim 96 / FFN 208 Q4_K_M: no Q5_0 or F16 fallback: $types"
check "$tmp/odd.gguf" Q5_K_M 1e-2
echo "$types" | grep -q "Q5_1 x" || fail "dim 96 Q5_K_M: no Q5_1 fallback: $types"
# a 32-element type on FFN 208: F16 (llama.cpp refuses the file)
check "$tmp/odd.gguf" Q8_0 1e-2

# refusals
refuse() {
    local what=$1 frag=$2
    shift 2
    rm -f "$tmp/r.gguf"
    if "$S" quantize "$@" > /dev/null 2> "$tmp/err"; then fail "$what: accepted"; fi
    grep -qF -- "$frag" "$tmp/err" || fail "$what: stderr lacks '$frag': $(head -c 300 "$tmp/err")"
    [ ! -e "$tmp/r.gguf" ] || fail "$what: left $tmp/r.gguf behind"
    echo "ok: refused: $what"
}
refuse "unknown --type" "unknown --type q3_k" "$tmp/a.gguf" "$tmp/r.gguf" --type q3_k
refuse "no --type" "--type is required" "$tmp/a.gguf" "$tmp/r.gguf"
printf 'not a model\n' > "$tmp/text.gguf"
refuse "input that is not a model" "$tmp/text.gguf" "$tmp/text.gguf" "$tmp/r.gguf" --type q8_0
refuse "missing input" "$tmp/none.gguf" "$tmp/none.gguf" "$tmp/r.gguf" --type q8_0
