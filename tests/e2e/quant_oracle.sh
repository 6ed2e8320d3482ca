#!/usr/bin/env bash
# quant_oracle.sh - quantized weights end to end against llama.cpp: a
# gen-model llama whose widths are multiples of 256, every matrix
# quantized by our reference quantizers (build/gguf_quantize, quant.h) to
# each block type, plus a Q4_K_M-style mix (Q4_K with Q6_K attn_v,
# ffn_down, output). llama.cpp (node-llama-cpp 3.21.1) must load each file
# we wrote, and our forward (the typed kernels) must give its logits:
# Q8_0, Q4_0, Q4_1, Q5_0 within 1e-4 (the same integer block dots, only
# float order differs: measured < 1e-6); Q5_1 and the K-quants within 1e-2
# (measured ~1e-3; llama.cpp's activation path for them rounds somewhere
# differently, not identified), the issue's bound being 3e-2;
# argmax equal where llama.cpp's top-2 margin is decisive (compare.py).
set -euo pipefail
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
S="$BUILD/slorad"
Q="$BUILD/gguf_quantize"
VOCAB=../shared/models/vocab
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -n "${SLORA_ORACLE:-}" ] && [ -d "$SLORA_ORACLE/node_modules/node-llama-cpp" ] \
    || fail "SLORA_ORACLE must name the node-llama-cpp install (make oracle)"
[ -x "$Q" ] || fail "$Q missing (make $Q)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
TOKENS=1,450,4996,17354,29871,13,1576,338,263,1243,29889,306,763,372,29991,2,3,300,1000,31999

"$S" gen-model --dim 256 --hidden 512 --layers 2 --heads 4 --kv-heads 2 --seq-len 64 --seed 5 \
    --vocab-from $VOCAB/ggml-vocab-llama-spm.gguf -o "$tmp/f32.gguf" > /dev/null \
    || fail "gen-model"

check() {
    local name=$1 tol=$2
    shift 2
    "$Q" "$tmp/f32.gguf" "$tmp/q.gguf" "$@" || fail "$name: gguf_quantize"
    "$S" logits --model "$tmp/q.gguf" --tokens "$TOKENS" --positions all > "$tmp/ours.json" \
        2> "$tmp/err" || fail "$name: slorad logits: $(head -c 400 "$tmp/err")"
    node tests/oracle/llama.mjs logprobs "$tmp/q.gguf" "$TOKENS" > "$tmp/ref.json" \
        || fail "$name: llama.cpp does not load our file"
    local out
    out=$("$PYTHON" tests/oracle/compare.py "$tmp/ours.json" "$tmp/ref.json" "$tol" 1e-2 8) \
        || fail "$name: $out"
    echo "ok: $name: $out"
}

for t in Q8_0 Q4_0 Q4_1 Q5_0; do
    check "$t" 1e-4 "$t"
done
for t in Q5_1 Q4_K Q5_K Q6_K; do
    check "$t" 1e-2 "$t"
done
check "Q4_K_M-style mix" 1e-2 Q4_K attn_v=Q6_K ffn_down=Q6_K output=Q6_K
