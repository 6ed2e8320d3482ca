#!/bin/bash
# fixtures.sh - the offline adapter tools against the independent numpy
# reference (tests/ref), for every golden fixture in tests/fixtures:
#   1. `slorad delta` agrees with superlora_ref's deltas (spec section 9);
#   2. `slorad logits --adapter` agrees with the reference logits (every
#      position, max|a-b| <= 1e-4 max|b|);
#   3. `slorad merge` writes a llama2.c .bin that model_ref.py (run.c's
#      layout) reads back to the same reference logits;
#   4. greedy `slorad generate` from merged.bin equals `slorad generate
#      --adapter` on the base model;
# and every corrupted adapter of `make_fixtures.py bad` is rejected by
# `slorad inspect --model` with exit 1 and the reference's message fragment.
set -euo pipefail
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
cd "$(dirname "$0")/../.."
SLORAD=$BUILD/slorad
MODEL=models/stories260K.bin
TOK=models/tok512.bin
REF=tests/ref
FIX=tests/fixtures
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

"$PYTHON" $REF/make_fixtures.py expected --model $MODEL --out "$TMP/exp" >/dev/null
names=$("$PYTHON" -c 'import json,sys; print(" ".join(sorted(json.load(open(sys.argv[1])))))' \
    $FIX/manifest.json)
[ -n "$names" ] || fail "no fixtures in $FIX/manifest.json"
count=0
for n in $names; do
    a=$FIX/$n.safetensors
    toks=$("$PYTHON" -c 'import json,sys; print(",".join(map(str, json.load(open(sys.argv[1]))["tokens"])))' \
        "$TMP/exp/$n.logits.json")

    "$SLORAD" inspect --model $MODEL "$a" >"$TMP/inspect.txt" || fail "$n: inspect --model rejected a good fixture"
    want=$("$PYTHON" -c 'import json, struct, sys, math
d = open(sys.argv[1], "rb").read(); h = json.loads(d[8:8 + struct.unpack("<Q", d[:8])[0]])
print(sum(math.prod(v["shape"]) for k, v in h.items() if k != "__metadata__"))' "$a")
    grep -qx "parameters: $want" "$TMP/inspect.txt" || fail "$n: inspect does not report $want parameters"

    "$SLORAD" delta --model $MODEL "$a" -o "$TMP/$n.deltas.safetensors" || fail "$n: delta"
    "$PYTHON" $REF/superlora_ref.py compare "$TMP/$n.deltas.safetensors" \
        "$TMP/exp/$n.deltas.safetensors" >/dev/null || fail "$n: deltas disagree with the reference"

    "$SLORAD" logits --model $MODEL --adapter "$a" --tokens "$toks" --positions all \
        >"$TMP/$n.logits.json" || fail "$n: logits --adapter"
    "$PYTHON" $REF/compare_logits.py "$TMP/$n.logits.json" "$TMP/exp/$n.logits.json" \
        --what "$n logits --adapter" >/dev/null || fail "$n: logits --adapter disagree"

    "$SLORAD" merge --model $MODEL "$a" -o "$TMP/$n.bin" || fail "$n: merge"
    "$PYTHON" $REF/model_ref.py --model "$TMP/$n.bin" --tokens "$toks" >"$TMP/$n.merged.json"
    "$PYTHON" $REF/compare_logits.py "$TMP/$n.merged.json" "$TMP/exp/$n.logits.json" \
        --what "$n merged.bin" >/dev/null || fail "$n: merged.bin logits disagree"

    gen=(--tokenizer $TOK --temperature 0 -n 24 --prompt "Once upon a time")
    g1=$("$SLORAD" generate --model "$TMP/$n.bin" "${gen[@]}" 2>/dev/null)
    g2=$("$SLORAD" generate --model $MODEL --adapter "$a" "${gen[@]}" 2>/dev/null)
    [ -n "$g1" ] && [ "$g1" == "$g2" ] || fail "$n: generate merged.bin '$g1' != --adapter '$g2'"
    count=$((count + 1))
done
echo "fixtures: $count adapters: inspect, delta, logits --adapter, merge (model_ref), generate agree"

rc=0; "$SLORAD" inspect >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "inspect without ADAPTER: exit $rc, want 2"
rc=0; "$SLORAD" delta --model $MODEL $FIX/lokr.safetensors >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "delta without -o: exit $rc, want 2"
rc=0; "$SLORAD" merge --model $MODEL "$TMP/missing.safetensors" -o "$TMP/x.bin" 2>"$TMP/err" || rc=$?
[ $rc -eq 1 ] && grep -q "missing.safetensors: cannot open" "$TMP/err" || fail "merge of a missing file: exit $rc"
"$SLORAD" inspect $FIX/lotr_module.safetensors >"$TMP/inspect.txt" || fail "inspect without --model"
grep -q "^order: module" "$TMP/inspect.txt" && grep -q "^compression ratio: " "$TMP/inspect.txt" ||
    fail "inspect output lacks the order or the compression ratio"
echo "fixtures: usage errors exit 2, runtime errors exit 1, inspect without --model"

"$PYTHON" $REF/make_fixtures.py bad --model $MODEL --out "$TMP/bad" >/dev/null
bad=0
while IFS=$'\t' read -r file frag; do
    rc=0
    "$SLORAD" inspect --model $MODEL "$TMP/bad/$file" >/dev/null 2>"$TMP/err" || rc=$?
    [ $rc -eq 1 ] || fail "bad adapter $file: inspect exit status $rc, want 1"
    grep -qF -- "$frag" "$TMP/err" || fail "bad adapter $file: message '$(cat "$TMP/err")' lacks '$frag'"
    bad=$((bad + 1))
done < <("$PYTHON" -c 'import json,sys
for k, v in sorted(json.load(open(sys.argv[1])).items()): print(k + "\t" + v)' "$TMP/bad/index.json")
[ "$bad" -gt 0 ] || fail "no bad adapters generated"
echo "fixtures: $bad corrupted adapters rejected by inspect --model with the expected message"
