#!/bin/bash
# registry.sh - registry benchmark (issue 4, without HTTP): upload-to-servable
# latency of a ~100 KB adapter with durable writes to a state dir under
# $BUILD (the real disk), resident adapters on tmpfs (/dev/shm when present,
# so 10,000 fsyncs do not dominate), lookup rate. Writes
# bench/results/registry.{json,md}.
set -euo pipefail
BUILD=${BUILD:-build}
make -s BUILD="$BUILD" "$BUILD/bench_registry"
mkdir -p bench/results
disk=$(mktemp -d "$BUILD/bench-registry.XXXXXX")
shm=$(mktemp -d "$( [ -d /dev/shm ] && echo /dev/shm || echo "$BUILD" )/bench-registry.XXXXXX")
trap 'rm -rf "$disk" "$shm"' EXIT
"$BUILD/bench_registry" --state "$disk" --resident-state "$shm" --uploads "${UPLOADS:-200}" \
    --resident "${RESIDENT:-10000}" --seconds 2 \
    --json bench/results/registry.json --md bench/results/registry.md
