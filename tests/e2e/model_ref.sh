#!/usr/bin/env bash
# model_ref.sh - slorad's forward pass against the independent numpy
# reference (tests/ref/model_ref.py, float64) on gen-model models with GQA:
# unshared and shared classifier, every position, tol 1e-5 (max|a-b| <= tol * max|b|).
set -euo pipefail
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
S="$BUILD/slorad"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

TOKENS=1,17,250,3,99,42,42,7,311,0,128,64
for shared in "" --shared-classifier; do
    "$S" gen-model --dim 48 --hidden 80 --layers 3 --heads 6 --kv-heads 2 --vocab 320 \
        --seq-len 32 --seed 11 $shared -o "$tmp/m.bin" || fail "gen-model $shared"
    "$S" logits --model "$tmp/m.bin" --tokens $TOKENS --positions all > "$tmp/ours.json" \
        || fail "slorad logits"
    "$PYTHON" tests/ref/model_ref.py --model "$tmp/m.bin" --tokens $TOKENS > "$tmp/ref.json" \
        || fail "model_ref.py"
    d=$("$PYTHON" - "$tmp/ours.json" "$tmp/ref.json" <<'PY'
import json, sys
import numpy as np
ours, ref = (json.load(open(p)) for p in sys.argv[1:3])
a, b = np.array(ours["logits"]), np.array(ref["logits"])
assert a.shape == b.shape == (12, 320), (a.shape, b.shape)
d = np.abs(a - b).max() / np.abs(b).max()
assert d <= 1e-5, d
print("%.3g" % d)
PY
) || fail "logits differ from model_ref.py ($shared)"
    echo "ok: gen-model GQA (6 heads, 2 kv heads) ${shared:-unshared classifier}: 12 positions match model_ref.py (rel diff $d)"
done

# GGUF families against the reference's own GGUF reader: Llama 3 style (GQA,
# theta, eps, rope_freqs), qwen2 (NeoX, biases, tied), BF16 weights; each
# also with a LoRA adapter on q, k, v, o and down (W + dW in the reference).
TOK2=1,17,250,3,99,42,42,7,311,0,128,64,1000,2047
"$S" gen-model --dim 64 --hidden 160 --layers 2 --heads 8 --kv-heads 2 --vocab 2048 \
    --seq-len 64 --rope-theta 500000 --rms-eps 1e-6 --rope-freqs --seed 4 -o "$tmp/l3.gguf" \
    || fail "gen-model llama3"
"$S" gen-model --arch qwen2 --dim 56 --hidden 96 --layers 2 --heads 7 --kv-heads 1 --vocab 2048 \
    --seq-len 64 --rope-theta 1000000 --rms-eps 1e-6 --shared-classifier --seed 6 \
    -o "$tmp/q2.gguf" || fail "gen-model qwen2"
"$S" gen-model --dim 64 --hidden 160 --layers 2 --heads 4 --kv-heads 4 --vocab 2048 \
    --seq-len 64 --rope-scale 4 --dtype bf16 --seed 8 -o "$tmp/b16.gguf" || fail "gen-model bf16"
"$PYTHON" tests/e2e/lib/gen_adapter.py "$tmp/l3.safetensors" --rank 4 --scale 0.2 \
    --modules wq,wk,wv,wo,w2 --base 64,2,8,2,160,2048 || fail "adapter l3"
"$PYTHON" tests/e2e/lib/gen_adapter.py "$tmp/q2.safetensors" --rank 3 --scale 0.2 \
    --modules wq,wk,wv,wo,w2 --base 56,2,7,1,96,2048 || fail "adapter q2"
"$PYTHON" tests/e2e/lib/gen_adapter.py "$tmp/b16.safetensors" --rank 2 --scale 0.2 \
    --modules wq,wk --base 64,2,4,4,160,2048 || fail "adapter b16"
for m in l3 q2 b16; do
    for ad in "" "--adapter $tmp/$m.safetensors"; do
        "$S" logits --model "$tmp/$m.gguf" --tokens $TOK2 --positions all $ad > "$tmp/ours.json" \
            || fail "slorad logits $m $ad"
        "$PYTHON" tests/ref/model_ref.py --model "$tmp/$m.gguf" --tokens $TOK2 $ad > "$tmp/ref.json" \
            || fail "model_ref.py $m $ad"
        [ -z "$ad" ] || "$PYTHON" tests/ref/model_ref.py --model "$tmp/$m.gguf" --tokens $TOK2 \
            > "$tmp/base.json"
        d=$("$PYTHON" - "$tmp/ours.json" "$tmp/ref.json" "${ad:+$tmp/base.json}" <<'PY'
import json, sys
import numpy as np
a, b = (np.array(json.load(open(p))["logits"]) for p in sys.argv[1:3])
assert a.shape == b.shape == (14, 2048), (a.shape, b.shape)
d = np.abs(a - b).max() / np.abs(b).max()
assert d <= 1e-5, d
moved = ""
if sys.argv[3]:
    base = np.array(json.load(open(sys.argv[3]))["logits"])
    m = np.abs(base - b).max()
    assert m > 1e-2, m  # the adapter really changes the logits
    moved = ", adapter moves logits by %.3g" % m
print("%.3g%s" % (d, moved))
PY
) || fail "$m ${ad:+with adapter }differs from model_ref.py"
        echo "ok: $m GGUF ${ad:+with its LoRA adapter }matches model_ref.py (rel diff $d)"
    done
done
