#!/bin/bash
# fuzz_model_replay.sh - replay the committed model-loader fuzz corpus
# (GGUF parser and .bin/GGUF model loads, tests/fuzz/corpus/model) through
# the fuzz entry point with the current BUILD's flags (ASan+UBSan under
# check-asan). `make fuzz` grows the corpus with libFuzzer.
set -euo pipefail
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
make -s BUILD="$BUILD" "$BUILD/fuzz_model_replay"
"$BUILD/fuzz_model_replay" tests/fuzz/corpus/model
echo "ok: fuzz_model_replay: $(ls tests/fuzz/corpus/model | wc -l) corpus inputs load or fail cleanly"
