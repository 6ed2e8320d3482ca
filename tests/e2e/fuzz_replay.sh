#!/bin/bash
# fuzz_replay.sh - replay every committed fuzz corpus (tests/fuzz/corpus/<t>,
# past findings included) through its target's entry point
# (tests/fuzz/fuzz_<t>.c), built with the ordinary compiler and the current
# BUILD's flags (ASan+UBSan under check-asan). A target without a corpus
# fails: nothing is skipped.
set -euo pipefail
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
for src in tests/fuzz/fuzz_*.c; do
    t=$(basename "$src" .c)
    t=${t#fuzz_}
    make -s BUILD="$BUILD" "$BUILD/fuzz_${t}_replay"
    "$BUILD/fuzz_${t}_replay" "tests/fuzz/corpus/$t"
    echo "ok - fuzz_$t: $(ls "tests/fuzz/corpus/$t" | wc -l) corpus inputs replayed clean"
done
