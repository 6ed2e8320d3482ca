#!/usr/bin/env bash
# oracle_logits.sh - slorad's forward pass against llama.cpp itself
# (node-llama-cpp 3.21.1 from $SLORA_ORACLE; F32 KV cache, flash attention
# off) on the same GGUF files: gen-model models of each family with real
# vocabularies from ../shared/models/vocab, and llama.cpp's own
# stories260K.gguf. Every position's log-probabilities (tests/oracle/compare.py):
# tol 1e-4 for F32 weights, 2e-3 for F16; BF16 at 3x llama.cpp's own
# BF16-vs-F32 spread on the same weights, measured here.
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

# 24 positions of ids valid in every vocabulary used here
TOKENS=1,450,4996,17354,29871,13,1576,338,263,1243,29889,306,763,372,29991,2,3,4,5,300,301,1000,2000,31999

# check NAME FILE TOL [TOKENS]: our logits vs llama.cpp's log-probs
check() {
    local name=$1 file=$2 tol=$3 toks=${4:-$TOKENS}
    "$S" logits --model "$file" --tokens "$toks" --positions all > "$tmp/ours.json" 2>/dev/null \
        || fail "$name: slorad logits"
    node tests/oracle/llama.mjs logprobs "$file" "$toks" > "$tmp/ref.json" \
        || fail "$name: llama.cpp"
    local out
    out=$("$PYTHON" tests/oracle/compare.py "$tmp/ours.json" "$tmp/ref.json" "$tol" 1e-2 8) \
        || fail "$name: $out"
    echo "ok: $name: $out"
}

gen() { "$S" gen-model --layers 2 --seq-len 256 --seed 5 "$@" || fail "gen-model $*"; }

# Llama 3 shape in miniature: GQA 8/2, theta 500000, eps 1e-6, rope_freqs, unshared classifier
gen --dim 64 --hidden 160 --heads 8 --kv-heads 2 --rope-theta 500000 --rms-eps 1e-6 \
    --rope-freqs --vocab-from $VOCAB/ggml-vocab-llama-spm.gguf -o "$tmp/llama3.gguf"
check "llama GQA theta 5e5 eps 1e-6 rope_freqs F32" "$tmp/llama3.gguf" 1e-4
# Mistral/TinyLlama-like: GQA 4/1, linear RoPE scaling 2, tied output, biases on a llama
gen --dim 64 --hidden 96 --heads 4 --kv-heads 1 --rope-scale 2 --bias --shared-classifier \
    --vocab-from $VOCAB/ggml-vocab-llama-spm.gguf -o "$tmp/llama_lin.gguf"
check "llama GQA 4/1 linear RoPE x2, q/k/v biases, tied" "$tmp/llama_lin.gguf" 1e-4
# Qwen2: NeoX RoPE, biases, theta 1e6, tied, BPE vocabulary
gen --arch qwen2 --dim 56 --hidden 112 --heads 7 --kv-heads 1 --rope-theta 1000000 \
    --rms-eps 1e-6 --shared-classifier --vocab-from $VOCAB/ggml-vocab-gpt-2.gguf -o "$tmp/qwen2.gguf"
check "qwen2 7/1 heads, biases, theta 1e6, tied" "$tmp/qwen2.gguf" 1e-4
# F16 weights
gen --dim 64 --hidden 160 --heads 8 --kv-heads 2 --rope-theta 500000 --dtype f16 \
    --vocab-from $VOCAB/ggml-vocab-llama-spm.gguf -o "$tmp/llama_f16.gguf"
check "llama F16" "$tmp/llama_f16.gguf" 2e-3
gen --arch qwen2 --dim 64 --hidden 128 --heads 4 --kv-heads 2 --dtype f16 --shared-classifier \
    --vocab-from $VOCAB/ggml-vocab-gpt-2.gguf -o "$tmp/qwen2_f16.gguf"
check "qwen2 F16" "$tmp/qwen2_f16.gguf" 2e-3
# llama.cpp's own conversion of stories260K
check "stories260K.gguf (llama.cpp's)" ../shared/models/stories260K.gguf 1e-4 \
    1,403,407,261,378,432,383,286,261,376,298,315,421,423,380,284,267,430,282,290,376,298,329,3

# BF16: llama.cpp's spread between the BF16 file and the same weights in F32
gen --dim 64 --hidden 160 --heads 8 --kv-heads 2 --dtype bf16 \
    --vocab-from $VOCAB/ggml-vocab-llama-spm.gguf -o "$tmp/bf16.gguf"
"$S" convert --model "$tmp/bf16.gguf" --dtype f32 -o "$tmp/bf16_as_f32.gguf" \
    || fail "convert bf16 -> f32"
node tests/oracle/llama.mjs logprobs "$tmp/bf16.gguf" "$TOKENS" > "$tmp/b16.json"
node tests/oracle/llama.mjs logprobs "$tmp/bf16_as_f32.gguf" "$TOKENS" > "$tmp/b32.json"
spread=$("$PYTHON" - "$tmp/b16.json" "$tmp/b32.json" <<'PY'
import json, sys
import numpy as np
a, b = (np.array(json.load(open(p))["logprobs"]) for p in sys.argv[1:3])
f = b > -1e29
print("%.6g" % (np.abs(np.where(f, a - b, 0)).max() / np.abs(np.where(f, b, 0)).max()))
PY
)
tol=$("$PYTHON" -c "print('%.6g' % max(3 * $spread, 1e-5))")
echo "llama.cpp BF16 vs F32 spread on the same weights: $spread; tolerance 3x = $tol"
check "llama BF16 (tol 3x llama.cpp's own spread)" "$tmp/bf16.gguf" "$tol"
check "the same weights as F32 (convert)" "$tmp/bf16_as_f32.gguf" 1e-4
