#!/usr/bin/env bash
# model.sh - base-model benchmark: a stories110M-shaped synthetic model
# (generated once into $BUILD), decode and prefill tok/s at 1 and 2 threads
# against the read bandwidth measured in the same run.
# Writes bench/results/model.{json,md}.
set -euo pipefail
BUILD=${BUILD:-build}
M="$BUILD/bench-stories110M.bin"
if [ ! -f "$M" ]; then
    "$BUILD/slorad" gen-model --dim 768 --hidden 2048 --layers 12 --heads 12 --kv-heads 12 \
        --vocab 32000 --seq-len 1024 --seed 1 --shared-classifier -o "$M.tmp"
    mv "$M.tmp" "$M"
fi
mkdir -p bench/results
"$BUILD/bench_model" --model "$M" --decode 256 --prompt 128 --threads 1,2 \
    --json bench/results/model.json --md bench/results/model.md
cat bench/results/model.md
