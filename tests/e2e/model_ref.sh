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
