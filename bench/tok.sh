#!/usr/bin/env bash
# tok.sh - tokenizer and sampling cost at vocab 512 (tok512.bin) and 32000
# (a synthetic llama-sized tok*.bin from gen-model, generated once into
# $BUILD). Writes bench/results/tok.{json,md}.
set -euo pipefail
BUILD=${BUILD:-build}
T32K="$BUILD/bench-tok32000.bin"
if [ ! -f "$T32K" ]; then
    "$BUILD/slorad" gen-model --dim 8 --hidden 8 --layers 1 --heads 1 --kv-heads 1 \
        --vocab 32000 --seq-len 8 --seed 1 -o "$BUILD/bench-tok-model.bin" --tokenizer-out "$T32K.tmp"
    mv "$T32K.tmp" "$T32K"
fi
mkdir -p bench/results
"$BUILD/bench_tok" --tok models/tok512.bin --vocab 512 --tok "$T32K" --vocab 32000 \
    --json bench/results/tok.json --md bench/results/tok.md
cat bench/results/tok.md
