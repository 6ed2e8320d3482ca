#!/bin/bash
# ref_selftest.sh - self-tests of the independent numpy reference (tests/ref/):
# perm bijection, fastfood vs an explicit dense matrix and column norms,
# Tucker/CP/Kronecker identities, LoRA = alpha B A^T, one crafted adapter
# per spec rejection rule, model_ref vs the upstream stories260K logits and
# greedy tokens, and the committed fixtures regenerate byte for byte.
set -euo pipefail
PYTHON=${PYTHON:-/usr/bin/python3}
cd "$(dirname "$0")/../.."
model=models/stories260K.bin
[ -f "$model" ] || { echo "ref_selftest: $model missing (run make model)" >&2; exit 1; }
echo "ref_selftest: tests/ref/test_ref.py with $PYTHON"
SLORA_MODEL=$model "$PYTHON" tests/ref/test_ref.py

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$PYTHON" tests/ref/make_fixtures.py expected --model "$model" --out "$out"
want=$("$PYTHON" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' tests/fixtures/manifest.json)
got_d=$(ls "$out"/*.deltas.safetensors | wc -l)
got_l=$(ls "$out"/*.logits.json | wc -l)
if [ "$got_d" != "$want" ] || [ "$got_l" != "$want" ]; then
    echo "ref_selftest: expected outputs: $got_d deltas, $got_l logits for $want fixtures" >&2
    exit 1
fi
for f in "$out"/*.deltas.safetensors; do
    "$PYTHON" tests/ref/superlora_ref.py compare "$f" "$f" >/dev/null
done
echo "ref_selftest: make_fixtures.py expected wrote deltas and logits for $want fixtures"
