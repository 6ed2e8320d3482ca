#!/bin/bash
# trainer_daemon.sh - trainer to daemon end to end: train a tiny adapter for a few
# dozen steps with the CLI, export it, upload it to a running slorad with the
# CLI, then require /v1/logits to match the torch model with the adapter
# (tol 1e-4) and a greedy /v1/completions to equal the torch greedy
# completion (tests/python/daemon_check.py); SIGTERM must exit 0.
set -euo pipefail
PYTHON=${PYTHON:-/usr/bin/python3}
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
. tests/e2e/lib/wait.sh
for f in models/stories260K.bin models/tok512.bin "$BUILD/slorad"; do
    [ -f "$f" ] || { echo "trainer_daemon: $f missing" >&2; exit 1; }
done
export PYTHONPATH=client/python OMP_NUM_THREADS=1
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

"$BUILD/slorad" serve --listen 127.0.0.1:0 --model models/stories260K.bin \
    --tokenizer models/tok512.bin --state-dir "$tmp/state" >"$tmp/log" 2>&1 &
pid=$!
listening() {
    kill -0 "$pid" 2>/dev/null || { echo "trainer_daemon: slorad exited:" >&2; cat "$tmp/log" >&2; exit 1; }
    file_has "$tmp/log" "listening on"
}
wait_for "slorad to listen" listening
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$tmp/log" | head -n 1)
url=http://127.0.0.1:$port
echo "trainer_daemon: slorad listening on $url"

for i in $(seq 12); do
    echo '{"text": "Once upon a time, there was a little girl named Zorbo. Zorbo liked to play in the park with her ball."}'
    echo '{"text": "One day, Zorbo went to the store with her mom. Zorbo saw a big red apple and smiled."}'
done >"$tmp/data.jsonl"
"$PYTHON" -m superlora train --model models/stories260K.bin --tokenizer models/tok512.bin \
    --data "$tmp/data.jsonl" --variant lorta3d --rank 3 --project 0.2 --shuffle --seed 5 \
    --modules wq,wv,w2 --steps 40 --lr 0.05 --batch 4 --seq 32 --quiet --out "$tmp/a.safetensors"
reply=$("$PYTHON" -m superlora upload "$tmp/a.safetensors" --url "$url" --name acme/zorbo)
echo "trainer_daemon: upload replied $reply"
"$PYTHON" -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["id"] == "acme/zorbo", r' "$reply"

# a NaN in the last tensor element: the CLI must exit 1 with the daemon's 422 message
"$PYTHON" -c 'import sys; d = bytearray(open(sys.argv[1], "rb").read()); d[-4:] = b"\x00\x00\xc0\x7f"; open(sys.argv[2], "wb").write(d)' \
    "$tmp/a.safetensors" "$tmp/nan.safetensors"
rc=0
"$PYTHON" -m superlora upload "$tmp/nan.safetensors" --url "$url" --name acme/bad 2>"$tmp/err" || rc=$?
if [ "$rc" != 1 ] || ! grep -q "HTTP 422: .*NaN" "$tmp/err"; then
    echo "trainer_daemon: NaN adapter upload: exit $rc, stderr: $(cat "$tmp/err")" >&2
    exit 1
fi
echo "trainer_daemon: NaN adapter rejected: $(cat "$tmp/err")"

"$PYTHON" tests/python/daemon_check.py --url "$url" --name acme/zorbo \
    --adapter "$tmp/a.safetensors" --model models/stories260K.bin --tokenizer models/tok512.bin

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || { echo "trainer_daemon: slorad exited $rc after SIGTERM" >&2; cat "$tmp/log" >&2; exit 1; }
echo "trainer_daemon: SIGTERM -> exit 0; ok"
