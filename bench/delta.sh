#!/bin/bash
# Delta generation benchmark (issue 3): six SuperLoRA variants at N = 14,155,776
# against memset of the same bytes, 1 and 2 threads. Writes
# bench/results/delta.json and bench/results/delta.md.
set -euo pipefail
BUILD=${BUILD:-build}
make -s BUILD="$BUILD" "$BUILD/bench_delta"
mkdir -p bench/results
"$BUILD/bench_delta" --reps "${REPS:-5}" --json bench/results/delta.json --md bench/results/delta.md
# the profile explanation (measured by hand, see the file) follows the table
printf "\n" >> bench/results/delta.md
cat bench/delta_notes.md >> bench/results/delta.md
cat bench/results/delta.md
