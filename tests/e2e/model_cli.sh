#!/usr/bin/env bash
# model_cli.sh - `slorad gen-model`, `convert` and `logits` end to end:
# conversions keep the logits, the converted GGUF carries the vocabulary,
# usage errors exit 2 and runtime errors exit 1 with a message.
# Golden logits are upstream llama2.c's published stories260K values.
set -euo pipefail
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
S="$BUILD/slorad"
M=models/stories260K.bin
T=models/tok512.bin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
run() { "$S" "$@" 2>"$tmp/err" || fail "$* exited $?: $(cat "$tmp/err")"; }
# compare two logits JSON files: same tokens, max|a-b| <= tol * max|b|
cmp_logits() {
    "$PYTHON" - "$1" "$2" "$3" <<'PY'
import json, sys
import numpy as np
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["tokens"] == b["tokens"], (a["tokens"], b["tokens"])
x, y = np.array(a["logits"]), np.array(b["logits"])
assert x.shape == y.shape, (x.shape, y.shape)
d = np.abs(x - y).max() / np.abs(y).max()
assert d <= float(sys.argv[3]), d
print("%.3g" % d)
PY
}

# published logits after BOS (tol 1e-4), from .bin and from our conversion
run logits --model "$M" --tokens 1 > "$tmp/bin.json"
"$PYTHON" - "$tmp/bin.json" <<'PY' || fail "published logits"
import json, sys
import numpy as np
l = np.array(json.load(open(sys.argv[1]))["logits"][0])
want = np.array([-6.22291, 8.40434, -6.22374, -6.22254])
assert np.abs(l[:4] - want).max() <= 1e-4, l[:4]
assert l.argmax() == 403 and abs(l.max() - 17.0235) <= 1e-4, (l.argmax(), l.max())
PY
echo "ok: logits after BOS = upstream [-6.22291, 8.40434, -6.22374, -6.22254], top 403 at 17.0235"

run convert --model "$M" --tokenizer "$T" -o "$tmp/s.gguf"
run convert --model "$M" --tokenizer "$T" -o "$tmp/s16.gguf" --dtype f16
run logits --model "$M" --tokenizer "$T" --prompt "Once upon a time" --positions all > "$tmp/a.json"
grep -q '^{"tokens":\[1,403,407,261,378\],"logits":\[\[' "$tmp/a.json" || fail "prompt tokens: $(head -c 80 "$tmp/a.json")"
# the GGUF's own vocabulary encodes the prompt: no --tokenizer
run logits --model "$tmp/s.gguf" --prompt "Once upon a time" --positions all > "$tmp/b.json"
d=$(cmp_logits "$tmp/b.json" "$tmp/a.json" 1e-6) || fail "our GGUF differs"
echo "ok: convert (F32) keeps the logits at every position (rel diff $d) and the vocabulary"
run logits --model "$tmp/s16.gguf" --prompt "Once upon a time" --positions all > "$tmp/c.json"
d=$(cmp_logits "$tmp/c.json" "$tmp/a.json" 1e-2) || fail "F16 GGUF too far"
echo "ok: convert --dtype f16: rel diff $d (reported; F16 rounding)"
[ "$(stat -c %s "$tmp/s16.gguf")" -lt "$(stat -c %s "$tmp/s.gguf")" ] || fail "F16 file not smaller"

# gen-model: deterministic, GGUF and .bin of the same seed agree
G="--dim 32 --hidden 48 --layers 2 --heads 4 --kv-heads 2 --vocab 300 --seq-len 16 --seed 5"
run gen-model $G -o "$tmp/g.bin" --tokenizer-out "$tmp/tok.bin"
run gen-model $G -o "$tmp/g2.bin"
cmp -s "$tmp/g.bin" "$tmp/g2.bin" || fail "gen-model is not deterministic"
run gen-model $G -o "$tmp/g.gguf" --tokenizer-out "$tmp/tok2.bin"
cmp -s "$tmp/tok.bin" "$tmp/tok2.bin" || fail "synthetic tokenizer differs"
run logits --model "$tmp/g.bin" --tokenizer "$tmp/tok.bin" --prompt "hello world" --positions all > "$tmp/g1.json"
run logits --model "$tmp/g.gguf" --prompt "hello world" --positions all > "$tmp/g2.json"
d=$(cmp_logits "$tmp/g2.json" "$tmp/g1.json" 0) || fail "gen-model bin vs gguf"
run gen-model $G --seed 6 -o "$tmp/g3.bin"
cmp -s "$tmp/g.bin" "$tmp/g3.bin" && fail "different seeds gave the same model"
echo "ok: gen-model is deterministic; .bin and GGUF (with vocabulary) give identical logits"

# usage errors exit 2, runtime errors exit 1
expect() {
    local want=$1; shift
    set +e; "$S" "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?; set -e
    [ "$rc" = "$want" ] || fail "$* exited $rc, want $want"
    [ "$want" = 0 ] || [ -s "$tmp/err" ] || fail "$*: no message"
}
for cmd in gen-model convert logits; do
    expect 0 $cmd --help
    grep -q "usage: slorad $cmd" "$tmp/out" || fail "$cmd --help"
    expect 2 $cmd --bogus
    grep -q "usage: slorad $cmd" "$tmp/err" || fail "$cmd usage on stderr"
done
expect 2 gen-model --dim x -o "$tmp/x.bin"
expect 2 gen-model --dim 32
expect 2 gen-model -o "$tmp/x.bin" --format gguf4
expect 2 gen-model -o "$tmp/x.bin" --dtype f16
expect 2 convert --model "$M"
expect 2 logits --model "$M"
expect 2 logits --model "$M" --tokens 1 --prompt hi
expect 2 logits --model "$M" --tokens 1 --positions some
expect 1 gen-model --dim 30 --heads 4 -o "$tmp/x.bin"
grep -q "dim 30 is not a multiple of n_heads 4" "$tmp/err" || fail "gen-model message: $(cat "$tmp/err")"
expect 1 logits --model "$tmp/missing.bin" --tokens 1
grep -q "missing.bin: cannot open" "$tmp/err" || fail "missing model message"
head -c 1000 "$M" > "$tmp/cut.bin"
expect 1 logits --model "$tmp/cut.bin" --tokens 1
grep -q "cut.bin: truncated: 1000 bytes" "$tmp/err" || fail "truncated message: $(cat "$tmp/err")"
expect 1 logits --model "$M" --tokens 1,512
grep -q "0..511" "$tmp/err" || fail "token range message"
expect 1 logits --model "$M" --prompt hi
grep -q "needs --tokenizer" "$tmp/err" || fail "prompt without tokenizer"
expect 1 convert --model "$M" --tokenizer "$tmp/missing.bin" -o "$tmp/x.gguf"
expect 1 convert --model "$M" --tokenizer "$T" -o /nonexistent/x.gguf
echo "ok: usage errors exit 2, runtime errors exit 1 with a message"
