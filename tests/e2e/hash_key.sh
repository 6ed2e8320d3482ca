#!/bin/bash
# hash_key.sh - `slorad hash-key` prints the sha256 hex of the key on stdin
# (trailing newline stripped), as Python's hashlib computes it.
set -euo pipefail
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
bin=$BUILD/slorad

for key in 'secret' 'correct horse battery staple' 'k3y/with+symbols=='; do
    want=$("$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())' "$key")
    got=$(printf '%s\n' "$key" | "$bin" hash-key)
    [ "$got" = "$want" ] || { echo "FAIL: hash-key '$key': got $got want $want"; exit 1; }
    got=$(printf '%s' "$key" | "$bin" hash-key)
    [ "$got" = "$want" ] || { echo "FAIL: hash-key without newline: got $got"; exit 1; }
done
echo "ok: hash-key matches hashlib with and without a trailing newline"

if printf '' | "$bin" hash-key 2>/dev/null; then echo "FAIL: empty key accepted"; exit 1; fi
set +e
"$bin" hash-key extra >/dev/null 2>&1; st=$?
set -e
[ "$st" = 2 ] || { echo "FAIL: stray argument exit $st, want 2"; exit 1; }
echo "ok: empty key exits 1, stray argument exits 2"
