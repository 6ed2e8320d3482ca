#!/usr/bin/env bash
# tok.sh - tokenizer and sampling cost at vocab 512 (tok512.bin) and 32000
# (a synthetic llama-sized tok*.bin from gen-model, generated once into
# $BUILD), and the encoding speed of real vocabularies side by side with
# llama.cpp (the oracle's libllama, $SLORA_ORACLE, default $BUILD/oracle)
# on the same files and the same >= 1 MiB of mixed text (bench/tok_text.py).
# Writes bench/results/tok.{json,md} and tok_speed.{json,md}.
set -euo pipefail
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
SHARED=${SHARED:-../shared}
ORACLE=${SLORA_ORACLE:-$BUILD/oracle}
V="$SHARED/models/vocab"
T32K="$BUILD/bench-tok32000.bin"
if [ ! -f "$T32K" ]; then
    "$BUILD/slorad" gen-model --dim 8 --hidden 8 --layers 1 --heads 1 --kv-heads 1 \
        --vocab 32000 --seq-len 8 --seed 1 -o "$BUILD/bench-tok-model.bin" --tokenizer-out "$T32K.tmp"
    mv "$T32K.tmp" "$T32K"
fi
TEXT="$BUILD/bench-tok-text.txt"
"$PYTHON" bench/tok_text.py "$TEXT"
# pre-tokenizers without a shared file: the gpt-2 vocabulary renamed
for pre in llama-bpe qwen2; do
    "$PYTHON" tests/tok_oracle.py pre "$V/ggml-vocab-gpt-2.gguf" "$pre" "$BUILD/bench-vocab-$pre.gguf"
done
VOCABS=("llama-spm (SPM)=$V/ggml-vocab-llama-spm.gguf"
        "gpt-2=$V/ggml-vocab-gpt-2.gguf"
        "llama-bpe (Llama-3 splits)=$BUILD/bench-vocab-llama-bpe.gguf"
        "qwen2=$BUILD/bench-vocab-qwen2.gguf"
        "deepseek-llm (generic regexes)=$V/ggml-vocab-deepseek-llm.gguf"
        "starcoder=$V/ggml-vocab-starcoder.gguf")
args=()
for v in "${VOCABS[@]}"; do args+=(--gguf "$v"); done
mkdir -p bench/results
"$BUILD/bench_tok" --tok models/tok512.bin --vocab 512 --tok "$T32K" --vocab 32000 \
    --json bench/results/tok.json --md bench/results/tok.md \
    --text "$TEXT" "${args[@]}" --speed-json "$BUILD/tok_speed_slorad.json"
cat bench/results/tok.md

if [ -d "$ORACLE/node_modules/@node-llama-cpp" ]; then
    SLORA_ORACLE="$ORACLE" "$PYTHON" tests/tok_oracle.py bench "$TEXT" "${VOCABS[@]}" \
        > "$BUILD/tok_speed_llamacpp.json"
else
    echo "tok.sh: no oracle in $ORACLE (make oracle, or set SLORA_ORACLE): llama.cpp column empty" >&2
    echo '{"rows": []}' > "$BUILD/tok_speed_llamacpp.json"
fi
"$PYTHON" - "$BUILD/tok_speed_slorad.json" "$BUILD/tok_speed_llamacpp.json" <<'EOF'
import json, sys
ours, theirs = (json.load(open(p)) for p in sys.argv[1:3])
ref = {r["label"]: r for r in theirs["rows"]}
rows, md = [], ["## Tokenizer speed vs llama.cpp (%d bytes of mixed text, thread CPU time, best of 3)" % ours["bytes"], "",
                "| vocabulary | tokens | slorad tok/s | llama.cpp tok/s | ratio |", "|---|---|---|---|---|"]
for r in ours["rows"]:
    o = ref.get(r["label"])
    row = {"label": r["label"], "tokens": r["tokens"], "slorad_tok_s": r["tok_s"]}
    if o:
        if o["tokens"] != r["tokens"]:
            sys.exit("tok.sh: %s: slorad gives %d tokens, llama.cpp %d" % (r["label"], r["tokens"], o["tokens"]))
        row.update(llamacpp_tok_s=o["tok_s"], ratio=r["tok_s"] / o["tok_s"])
    rows.append(row)
    md.append("| %s | %d | %.0f | %s | %s |" % (r["label"], r["tokens"], r["tok_s"],
              "%.0f" % row["llamacpp_tok_s"] if o else "n/a", "%.2fx" % row["ratio"] if o else "n/a"))
json.dump({"bytes": ours["bytes"], "rows": rows}, open("bench/results/tok_speed.json", "w"), indent=1)
open("bench/results/tok_speed.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
EOF
