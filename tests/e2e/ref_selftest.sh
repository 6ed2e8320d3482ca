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
