#!/bin/bash
# trainer.sh - the trainer as a package: pip-install client/python into a
# clean venv (--system-site-packages for Debian's torch/numpy; no index,
# --no-build-isolation with Debian's setuptools/wheel), then, from outside
# the repo with PYTHONPATH unset, run its tests from the installed package:
# tests/python/test_superlora.py (torch logits == model_ref, exported
# adapters of every variant == superlora_ref, gradcheck, training, CLI) and
# tests/python/test_inject.py (superlora.inject/export on Llama GGUF/HF and
# Qwen2-style modules == numpy, import-peft == peft_ref); last, against a
# real slorad, superlora.inject's logits == the daemon's with the exported
# file (tests/python/inject_daemon.py, tol 1e-4, both row layouts).
cd "$(dirname "$0")/../.."
. tests/e2e/lib/daemon.sh
ROOT=$PWD
tmp=$TMP

# a copy, so the build leaves nothing in the tree (and parallel runs don't race)
cp -r client/python "$tmp/src"
"$PYTHON" -m venv --system-site-packages "$tmp/venv" || fail "python3 -m venv (python3-venv)"
"$tmp/venv/bin/pip" install --quiet --no-index --no-build-isolation "$tmp/src" \
    || fail "pip install ./client/python (python3-setuptools, python3-wheel)"
rm -rf "$tmp/src"
echo "ok - pip installed superlora into a clean venv: $("$tmp/venv/bin/pip" show superlora | grep -E '^(Version|Location)' | tr '\n' ' ')"

mkdir "$tmp/run"
cd "$tmp/run"
export SLORA_MODEL=$ROOT/models/stories260K.bin SLORA_TOKENIZER=$ROOT/models/tok512.bin
export OMP_NUM_THREADS=1 SLORA_INSTALLED=1 PATH=$tmp/venv/bin:$PATH
for t in test_superlora test_inject; do
    echo "trainer: tests/python/$t.py from the installed package"
    env -u PYTHONPATH "$tmp/venv/bin/python" -W error::ResourceWarning \
        "$ROOT/tests/python/$t.py" >"$tmp/$t.log" 2>&1 || { tail -n 40 "$tmp/$t.log"; fail "$t"; }
    grep -E "^(test_inject: superlora from|Ran |OK)" "$tmp/$t.log"
done

cd "$ROOT"
start_daemon "$tmp/state"
mkdir "$tmp/out"
env -u PYTHONPATH "$tmp/venv/bin/python" "$ROOT/tests/python/inject_daemon.py" \
    --url "$URL" --model "$SLORA_MODEL" --out "$tmp/out" || fail "inject_daemon"
stop_daemon
echo "trainer: ok"
