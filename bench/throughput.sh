#!/usr/bin/env bash
# throughput.sh - small-request throughput against connections (issue 11):
# wrk at 1..64 connections, max_tokens 8 on stories260K (bench/throughput.py).
# BASELINE=path/to/another/slorad measures that build alongside, interleaved.
# Writes bench/results/throughput.{json,md}.
set -euo pipefail
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
command -v wrk >/dev/null || { echo "throughput.sh: wrk is not installed" >&2; exit 1; }
mkdir -p bench/results
"$PYTHON" bench/throughput.py --slorad "$BUILD/slorad" ${BASELINE:+--baseline "$BASELINE"} \
    --rounds "${ROUNDS:-3}" --seconds "${SECONDS_PER_RUN:-3}" \
    --json bench/results/throughput.json --md bench/results/throughput.md
