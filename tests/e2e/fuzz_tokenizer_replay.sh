#!/usr/bin/env bash
# fuzz_tokenizer_replay.sh - replay the committed tokenizer fuzz corpus
# (tests/fuzz/corpus/tokenizer) through tests/fuzz/fuzz_tokenizer.c built
# with the ordinary compiler; any abort or sanitizer report fails.
set -euo pipefail
BUILD=${BUILD:-build}
make -s BUILD="$BUILD" "$BUILD/fuzz_tokenizer_replay"
"$BUILD/fuzz_tokenizer_replay" tests/fuzz/corpus/tokenizer
echo "fuzz_tokenizer_replay: ok ($(ls tests/fuzz/corpus/tokenizer | wc -l) inputs)"
