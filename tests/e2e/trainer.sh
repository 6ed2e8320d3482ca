#!/bin/bash
# trainer.sh - tests of the user-side trainer client/python/superlora against
# the independent numpy reference (tests/ref): torch logits == model_ref,
# exported adapters of every variant == superlora_ref deltas (spec section 9),
# gradcheck per variant, auto-fold, zero init, verify, training, CLI upload.
set -euo pipefail
PYTHON=${PYTHON:-/usr/bin/python3}
cd "$(dirname "$0")/../.."
for f in models/stories260K.bin models/tok512.bin; do
    [ -f "$f" ] || { echo "trainer: $f missing (run make model)" >&2; exit 1; }
done
echo "trainer: tests/python/test_superlora.py with $PYTHON"
PYTHONPATH=client/python:tests/ref SLORA_MODEL=models/stories260K.bin \
    SLORA_TOKENIZER=models/tok512.bin OMP_NUM_THREADS=1 \
    "$PYTHON" -W error::ResourceWarning tests/python/test_superlora.py 2>&1 | tail -n 25
exit "${PIPESTATUS[0]}"
