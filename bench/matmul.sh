#!/usr/bin/env bash
# matmul.sh - the typed-product kernels, one thread:
#   1. bench_matmul: GB/s and GFLOP/s per type at (2048, 2048), (8192, 2048),
#      (2048, 8192), n = 1 and 512, next to a plain memory-read loop of the
#      same run (bench/results/matmul.md);
#   2. side by side with llama.cpp on stories110M-shaped models whose
#      matrices are all one type (gen-model + slorad quantize --pure): llama.cpp's own
#      timings (bench/llama_bench.mjs: prompt of 512 tokens, then 32 decode
#      steps) against the time of our
#      products of the same matrices alone, interleaved, median of REPS
#      (bench/results/matmul_llama.md). llama.cpp's figure covers its whole
#      forward (attention, norms, ...), ours only the products, so the
#      ratio is an upper bound of what the kernels allow.
set -euo pipefail
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
REPS=${REPS:-3}
TYPES=${TYPES:-"F32 F16 BF16 Q8_0 Q4_0 Q4_K Q5_K Q6_K"}
export SLORA_ORACLE=${SLORA_ORACLE:-$PWD/build/oracle}
OUT=bench/results
mkdir -p "$OUT"
make -s "$BUILD/bench_matmul" "$BUILD/slorad"
"$BUILD/bench_matmul" --json "$OUT/matmul.json" --md "$OUT/matmul.md"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
SHAPE="--dim 768 --hidden 2048 --layers 12 --heads 12 --kv-heads 12 --vocab 32000 --seq-len 1024"
"$BUILD/slorad" gen-model $SHAPE --seed 1 --shared-classifier -o "$tmp/m.bin" \
    --tokenizer-out "$tmp/tok.bin" > /dev/null
"$BUILD/slorad" convert --model "$tmp/m.bin" --tokenizer "$tmp/tok.bin" -o "$tmp/F32.gguf" > /dev/null
for t in $TYPES; do
    [ "$t" = F32 ] || "$BUILD/slorad" quantize "$tmp/F32.gguf" "$tmp/$t.gguf" --type "$t" --pure > /dev/null
done
: > "$tmp/runs.jsonl"
for rep in $(seq "$REPS"); do
    for t in $TYPES; do
        l=$(node bench/llama_bench.mjs "$tmp/$t.gguf" 1 512 32)
        p=$("$BUILD/bench_matmul" --model "$t" 768,2048,12,32000 512)
        d=$("$BUILD/bench_matmul" --model "$t" 768,2048,12,32000 1)
        echo "{\"type\": \"$t\", \"llama\": $l, \"ours_prefill\": $p, \"ours_decode\": $d}" >> "$tmp/runs.jsonl"
    done
done
"$PYTHON" - "$tmp/runs.jsonl" "$OUT/matmul_llama.json" "$OUT/matmul_llama.md" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
types = list(dict.fromkeys(r["type"] for r in runs))
rows = []
for t in types:
    rs = [r for r in runs if r["type"] == t]
    lp = [r["llama"]["prefill_tps"] for r in rs]
    ld = [r["llama"]["decode_tps"] for r in rs]
    op = [r["ours_prefill"]["tok_s"] for r in rs]
    od = [r["ours_decode"]["tok_s"] for r in rs]
    med = statistics.median
    rows.append(dict(type=t, llama_prefill=med(lp), ours_prefill=med(op), llama_decode=med(ld),
                     ours_decode=med(od), spread=dict(llama_prefill=[min(lp), max(lp)],
                     ours_prefill=[min(op), max(op)], llama_decode=[min(ld), max(ld)],
                     ours_decode=[min(od), max(od)]), reps=len(rs)))
json.dump(rows, open(sys.argv[2], "w"), indent=1)
with open(sys.argv[3], "w") as f:
    f.write("# typed products vs llama.cpp (1 thread, stories110M shape)\n\n"
            "`bench/matmul.sh`: gen-model's stories110M-shaped model (dim 768, FFN 2048,\n"
            "12 layers, vocab 32000, shared classifier) with every matrix in one type\n"
            "(`slorad quantize --pure`). llama.cpp: node-llama-cpp 3.21.1's own timings of a\n"
            "512-token prompt and 32 decode steps (its whole forward). Ours: `bench_matmul\n"
            "--model`, the same matrices' products alone (prompt: n = 512, classifier on\n"
            "the last token; decode: n = 1, weights streamed from DRAM). Tokens/s, median\n"
            f"of {rows[0]['reps']} interleaved runs [min, max].\n\n"
            "| type | llama.cpp prefill | ours prefill (products) | ratio | llama.cpp decode | ours decode (products) | ratio |\n"
            "|---|---|---|---|---|---|---|\n")
    for r in rows:
        s = r["spread"]
        f.write(f"| {r['type']} | {r['llama_prefill']:.0f} [{s['llama_prefill'][0]:.0f}, {s['llama_prefill'][1]:.0f}]"
                f" | {r['ours_prefill']:.0f} [{s['ours_prefill'][0]:.0f}, {s['ours_prefill'][1]:.0f}]"
                f" | {r['ours_prefill'] / r['llama_prefill']:.2f}"
                f" | {r['llama_decode']:.0f} [{s['llama_decode'][0]:.0f}, {s['llama_decode'][1]:.0f}]"
                f" | {r['ours_decode']:.0f} [{s['ours_decode'][0]:.0f}, {s['ours_decode'][1]:.0f}]"
                f" | {r['ours_decode'] / r['llama_decode']:.2f} |\n")
with open(sys.argv[3], "a") as f:
    f.write("\nMachine load average at the end (2 cores): " + open("/proc/loadavg").read())
print(open(sys.argv[3]).read())
EOF
