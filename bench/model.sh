#!/usr/bin/env bash
# model.sh - base-model speed, slorad against llama.cpp side by side on the
# same GGUF files (bench/model_bench.py has the protocol and knobs).
# Writes bench/results/model.{json,md}.
set -euo pipefail
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
make -s BUILD="$BUILD" "$BUILD/bench_model" oracle
BUILD="$BUILD" SLORA_ORACLE="${SLORA_ORACLE:-$PWD/build/oracle}" "$PYTHON" bench/model_bench.py
cat bench/results/model.md
