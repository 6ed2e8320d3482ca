#!/usr/bin/env bash
# engine.sh - batching engine and delta cache benchmark (issue 5) on the
# stories110M-shaped synthetic model shared with model.sh: decode tok/s base
# vs a warm Q,V Tucker-3D adapter, aggregate tok/s at 1/4/16 streams, 16
# streams over 1/16/256 adapters with a cache of 8, cache-miss latency.
# Writes bench/results/engine.{json,md}.
set -euo pipefail
BUILD=${BUILD:-build}
M="$BUILD/bench-stories110M.bin"
make -s BUILD="$BUILD" "$M" "$BUILD/bench_engine"
mkdir -p bench/results
"$BUILD/bench_engine" --model "$M" --tokens "${TOKENS:-32}" --threads "${THREADS:-1}" \
    --json bench/results/engine.json --md bench/results/engine.md
cat bench/results/engine.md
