#!/bin/bash
# fuzz_adapter_replay.sh - replay the committed adapter fuzz corpus (and every past
# finding kept in it) through the fuzz entry point, built with the ordinary
# compiler and the current BUILD's flags (ASan+UBSan under check-asan).
set -euo pipefail
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
make -s BUILD="$BUILD" "$BUILD/fuzz_adapter_replay"
"$BUILD/fuzz_adapter_replay" tests/fuzz/corpus/adapter
echo "fuzz_adapter_replay: ok"
