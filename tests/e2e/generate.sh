#!/usr/bin/env bash
# generate.sh - `slorad generate` end to end on stories260K.
# Expected texts are decoded by tests/ref/tok_ref.py from the upstream
# published greedy tokens (issue 2), not produced by slorad.
set -euo pipefail
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
SHARED=${SHARED:-../shared}
S="$BUILD/slorad"
M=models/stories260K.bin
T=models/tok512.bin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
# run `slorad generate`; stderr in $tmp/err; any failure names the command
gen() { "$S" generate "$@" 2>"$tmp/err" || fail "generate $* exited $?: $(cat "$tmp/err")"; }
pydecode() { "$PYTHON" -c 'import ast,sys; sys.stdout.buffer.write(ast.literal_eval(sys.stdin.read()))' \
    < <("$PYTHON" tests/ref/tok_ref.py "$T" --decode "$1"); }

GREEDY="403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385 328 432 358 394 261 370 432 352 266"
want=$(pydecode "1 $GREEDY")
SENTENCE="Once upon a time, there was a little girl named Lily. She loved to play outside in the park."
case "$want" in "$SENTENCE "*) ;; *) fail "reference decode gave '$want'" ;; esac

got=$(gen --model "$M" --tokenizer "$T" --temperature 0 -n 41 --prompt "")
[ "$got" = "$want" ] || fail "greedy from BOS: got '$got'"
grep -q "generated 41 tokens" "$tmp/err" || fail "stats: $(cat "$tmp/err")"
echo "ok: greedy -n 41 from BOS = upstream tokens ($want)"

# the first 31 of those tokens are exactly the quoted sentence
got=$(gen --model "$M" --tokenizer "$T" --temperature 0 -n 31 --prompt "")
[ "$got" = "$SENTENCE" ] || fail "greedy -n 31: got '$got'"
echo "ok: greedy -n 31 from BOS = '$SENTENCE'"

# the tokenizer next to the model (tok512.bin) is the default
got=$(gen --model "$M" --temperature 0 -n 41 --prompt "")
[ "$got" = "$want" ] || fail "default tokenizer: got '$got'"
echo "ok: default tokenizer tok<vocab>.bin beside the model"

# "Once upon a time" is [1 403 407 261 378]: greedy continues the same story
cont=$(pydecode "378 ${GREEDY#403 407 261 378 }")
got=$(gen --model "$M" --tokenizer "$T" --temperature 0 -n 37 --prompt "Once upon a time")
[ "$got" = "$cont" ] || fail "prompt continuation: got '$got' want '$cont'"
echo "ok: prompt continuation ($cont)"

got=$(gen --model "$M" --tokenizer "$T" --temperature 0 -n 41 --prompt "Once upon a time" \
      --stop "Lily" --stop "zebra")
[ "$got" = ", there was a little girl named " ] || fail "stop string: got '$got'"
grep -q "finish stop" "$tmp/err" || fail "stop finish: $(cat "$tmp/err")"
echo "ok: stop string cuts the text"

gen --model "$M" --tokenizer "$T" --temperature 0 -n 0 --prompt "Once" >"$tmp/out"
printf '\n' | cmp -s - "$tmp/out" || fail "-n 0: got '$(cat "$tmp/out")'"
echo "ok: -n 0 prints an empty line"

got=$(gen --model models/stories260K.gguf --temperature 0 -n 41 --prompt "")
[ "$got" = "$want" ] || fail "our GGUF with its own vocabulary: got '$got'"
a=$(gen --model "$M" --seed 5 -n 200 --prompt "Ben and Mia")
b=$(gen --model models/stories260K.gguf --seed 5 -n 200 --prompt "Ben and Mia")
[ "$a" = "$b" ] || fail "sampled text differs between .bin and our GGUF: '$a' vs '$b'"
echo "ok: slorad convert's GGUF (its vocabulary) gives the same greedy and sampled text"

if [ -f "$SHARED/models/stories260K.gguf" ]; then
    got=$(gen --model "$SHARED/models/stories260K.gguf" --temperature 0 -n 41 --prompt "")
    [ "$got" = "$want" ] || fail "llama.cpp GGUF with its own vocabulary: got '$got'"
    echo "ok: llama.cpp's GGUF (its vocabulary) gives the same greedy text"
else
    fail "$SHARED/models/stories260K.gguf missing"
fi

# sampled runs against tests/ref/generate_ref.py (numpy forward + run.c
# sampling + run.c decode, all independent of slorad): prompt, n, temperature,
# top_p, top_k, seed, stop strings
ref_case() {
    local prompt=$1 n=$2 temp=$3 top_p=$4 top_k=$5 seed=$6; shift 6
    local stops=() s
    for s in "$@"; do stops+=(--stop "$s"); done
    local want got
    want=$("$PYTHON" tests/ref/generate_ref.py "$M" "$T" "$prompt" "$n" "$temp" "$top_p" "$top_k" "$seed" "$@")
    got=$(gen --model "$M" --tokenizer "$T" --prompt "$prompt" -n "$n" --temperature "$temp" \
          --top-p "$top_p" --top-k "$top_k" --seed "$seed" "${stops[@]}")
    [ "$got" = "$want" ] || fail "sampled '$prompt' seed $seed: got '$got' want '$want'"
    echo "ok: sampled '$prompt' (T $temp, top-p $top_p, top-k $top_k, seed $seed) = reference"
}
ref_case "Once upon a time" 60 1.0 1.0 0 42
ref_case "Lily" 60 0.8 0.9 40 7
ref_case "" 80 1.3 0.95 0 123 "." "!"
ref_case "And they were best friends forever." 60 1.0 1.0 0 14
grep -q "generated 31 tokens.*finish stop" "$tmp/err" || fail "BOS/EOS stop: $(cat "$tmp/err")"
ref_case "Lily saw a café 日本" 30 1.0 1.0 0 3

a=$(gen --model "$M" --tokenizer "$T" --seed 42 -n 64 --prompt "Lily")
b=$(gen --model "$M" --tokenizer "$T" --seed 42 -n 64 --prompt "Lily")
c=$(gen --model "$M" --tokenizer "$T" --seed 43 -n 64 --prompt "Lily")
[ "$a" = "$b" ] || fail "same seed differs: '$a' vs '$b'"
[ "$a" != "$c" ] || fail "seeds 42 and 43 gave the same 64 tokens"
a=$(gen --model "$M" --tokenizer "$T" --seed 7 --top-p 0.9 --top-k 20 --temperature 0.8 -n 64 --prompt "Lily")
b=$(gen --model "$M" --tokenizer "$T" --seed 7 --top-p 0.9 --top-k 20 --temperature 0.8 -n 64 --prompt "Lily")
[ "$a" = "$b" ] || fail "same seed with top-p/top-k differs"
gen --model "$M" --tokenizer "$T" -n 4 --prompt "Lily" >/dev/null
grep -Eq "seed [0-9]+" "$tmp/err" || fail "random seed not reported: $(cat "$tmp/err")"
echo "ok: same seed -> same text, different seed -> different text"

expect_rc() {
    local want=$1; shift
    set +e; "$S" generate "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?; set -e
    [ "$rc" = "$want" ] || fail "generate $* exited $rc, want $want ($(cat "$tmp/err"))"
}
expect_rc 2
expect_rc 2 --model "$M"
expect_rc 2 --prompt x
expect_rc 2 --model "$M" --prompt x --bogus
expect_rc 2 --model "$M" --prompt x -n abc
grep -q "invalid value 'abc' for -n" "$tmp/err" || fail "-n abc diag: $(cat "$tmp/err")"
expect_rc 2 --model "$M" --prompt x -n -1
expect_rc 2 --model "$M" --prompt x --temperature -1
expect_rc 2 --model "$M" --prompt x --temperature nan
expect_rc 2 --model "$M" --prompt x --top-p 1.5
grep -q "invalid value '1.5' for --top-p" "$tmp/err" || fail "--top-p diag: $(cat "$tmp/err")"
expect_rc 2 --model "$M" --prompt x --top-p 0
expect_rc 2 --model "$M" --prompt x --top-k -2
expect_rc 2 --model "$M" --prompt x --seed -5
expect_rc 2 --model "$M" --prompt x --stop ""
expect_rc 2 --model "$M" --prompt x extra
expect_rc 2 --model "$M" --prompt
grep -q "usage: slorad generate" "$tmp/err" || fail "usage not printed"
echo "ok: usage errors exit 2"

expect_rc 0 --help
grep -q -- "--tokenizer" "$tmp/out" || fail "--help output"
expect_rc 1 --model /nonexistent/model.bin --prompt x
grep -q "/nonexistent/model.bin" "$tmp/err" || fail "missing model not named: $(cat "$tmp/err")"
head -c 100 "$T" > "$tmp/tok.bin"
expect_rc 1 --model "$M" --tokenizer "$tmp/tok.bin" --prompt x
grep -q "truncated" "$tmp/err" || fail "bad tokenizer diag: $(cat "$tmp/err")"
cp "$M" "$tmp/lonely.bin"
expect_rc 1 --model "$tmp/lonely.bin" --prompt x
grep -q "pass --tokenizer" "$tmp/err" || fail "no-tokenizer diag: $(cat "$tmp/err")"
# a GGUF's own vocabulary wins: the same vocabulary as --tokenizer is fine,
# a different one is refused (by generate and by serve), never used
got=$(gen --model models/stories260K.gguf --tokenizer "$T" --temperature 0 -n 41 --prompt "")
[ "$got" = "$want" ] || fail "GGUF with its own tok512.bin: got '$got'"
"$PYTHON" -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); i = b.index(b"Once"); b[i] = ord("X"); open(sys.argv[2], "wb").write(b)' "$T" "$tmp/other.bin"
expect_rc 1 --model models/stories260K.gguf --tokenizer "$tmp/other.bin" --prompt x
grep -q "tokenizer $tmp/other.bin conflicts with the vocabulary in models/stories260K.gguf" "$tmp/err" \
    || fail "conflicting tokenizer diag: $(cat "$tmp/err")"
set +e
timeout 20 "$S" serve --model models/stories260K.gguf --tokenizer "$tmp/other.bin" \
    --listen 127.0.0.1:0 --state-dir "$tmp/state" >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
[ "$rc" = 1 ] || fail "serve with a conflicting tokenizer exited $rc"
grep -q "conflicts with the vocabulary" "$tmp/err" || fail "serve diag: $(cat "$tmp/err")"
echo "ok: a GGUF's own vocabulary wins; a conflicting tokenizer is refused"
long=$(printf 'Once upon a time %.0s' $(seq 200))
expect_rc 1 --model "$M" --tokenizer "$T" --prompt "$long"
grep -q "context is 512" "$tmp/err" || fail "long prompt diag: $(cat "$tmp/err")"
huge=$(head -c 100000 /dev/zero | tr '\0' 'a')
expect_rc 1 --model "$M" --tokenizer "$T" --prompt "$huge"
grep -q "prompt of 100000 bytes cannot fit the model's context of 512 tokens" "$tmp/err" \
    || fail "huge prompt diag: $(cat "$tmp/err")"
echo "ok: runtime errors exit 1 with a clear message"
