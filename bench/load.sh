#!/usr/bin/env bash
# load.sh - model load time and resident memory, slorad next to llama.cpp
# (node-llama-cpp 3.21.1) on the same files: the Llama-3.2-1B shape (dim
# 2048, 16 layers, 32/8 heads, FFN 8192, vocab 128256, tied embeddings;
# gen-model random weights with GPT-2's BPE vocabulary padded to 128256)
# in F16, and in Q4_K_M by slorad quantize.
#   - load time from a warm page cache: bench_load around slora_model_load
#     (mmap, parse, bind, and the NaN/Inf check of every weight: F32/F16/BF16
#     values, quantized blocks' scales), wall and CPU time; llama.cpp's own
#     "load time" counter (mmap, no value checks);
#   - resident memory after the load and after a greedy generation of GEN
#     tokens (1 thread), split into file-backed pages (the mapped model) and
#     anonymous memory (copies, KV cache, scratch), as growth over the
#     process's own start.
# REPS interleaved runs; medians with [min, max] in
# bench/results/load.{json,md}. The model files (3.2 GB) live in BENCH_TMP
# (default /tmp/slora-bench/load) and are deleted at the end; files there
# already (complete: both commands write a temporary and rename it) are
# used as they are.
set -euo pipefail
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
REPS=${REPS:-5}
GEN=${GEN:-16}
export SLORA_ORACLE=${SLORA_ORACLE:-$PWD/build/oracle}
OUT=bench/results
SHARED=${SHARED:-../shared}
dir=${BENCH_TMP:-/tmp/slora-bench/load}
mkdir -p "$OUT" "$dir"
trap 'rm -rf "$dir"' EXIT
make -s "$BUILD/bench_load" "$BUILD/slorad"
avail=$(df -Pk "$dir" | awk 'NR == 2 {print $4}')
[ "$avail" -ge $((4 * 1024 * 1024)) ] || { echo "load.sh: needs 4 GB free in $dir" >&2; exit 1; }

[ -f "$dir/F16.gguf" ] || "$BUILD/slorad" gen-model --dim 2048 --hidden 8192 --layers 16 \
    --heads 32 --kv-heads 8 --vocab 128256 \
    --vocab-from "$SHARED/models/vocab/ggml-vocab-gpt-2.gguf" \
    --seq-len 2048 --rope-theta 500000 --shared-classifier --dtype f16 --seed 1 \
    -o "$dir/F16.gguf" > /dev/null
[ -f "$dir/Q4_K_M.gguf" ] || "$BUILD/slorad" quantize "$dir/F16.gguf" "$dir/Q4_K_M.gguf" \
    --type q4_k_m --threads 2 > /dev/null

: > "$dir/runs.jsonl"
for rep in $(seq "$REPS"); do
    for t in F16 Q4_K_M; do
        cat "$dir/$t.gguf" > /dev/null # warm page cache
        o=$("$BUILD/bench_load" --model "$dir/$t.gguf" --gen "$GEN")
        l=$(node bench/llama_load.mjs "$dir/$t.gguf" "$GEN")
        s=$(stat -c %s "$dir/$t.gguf")
        echo "{\"type\": \"$t\", \"bytes\": $s, \"ours\": $o, \"llama\": $l}" >> "$dir/runs.jsonl"
    done
done

"$PYTHON" - "$dir/runs.jsonl" "$OUT/load.json" "$OUT/load.md" "$GEN" "$(cat /proc/loadavg)" <<'EOF'
import json, os, statistics, sys, time
runs = [json.loads(l) for l in open(sys.argv[1])]
gen = int(sys.argv[4])
loadavg = " ".join(sys.argv[5].split()[:3])
med = statistics.median


def stat(xs):
    return {"median": med(xs), "min": min(xs), "max": max(xs)}


def growth(r, when):
    return {k: r[when][k] - r["rss_start"][k] for k in ("file_mib", "anon_mib")}


rows = []
for t in dict.fromkeys(r["type"] for r in runs):
    rs = [r for r in runs if r["type"] == t]
    row = {"type": t, "file_mib": rs[0]["bytes"] / 2**20, "reps": len(rs),
           "ours_load_s": stat([r["ours"]["load_s"] for r in rs]),
           "ours_load_cpu_s": stat([r["ours"]["load_cpu_s"] for r in rs]),
           "llama_load_s": stat([r["llama"]["load_ms"] / 1000 for r in rs])}
    for side in ("ours", "llama"):
        for when in ("rss_loaded", "rss_generated"):
            for k in ("file_mib", "anon_mib"):
                row[f"{side}_{when}_{k}"] = med([growth(r[side], when)[k] for r in rs])
    rows.append(row)
day = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
json.dump({"date": day, "gen_tokens": gen, "cpus": os.cpu_count(), "loadavg": loadavg,
           "rows": rows}, open(sys.argv[2], "w"), indent=1)


def s(x):
    return "%.3f [%.3f, %.3f]" % (x["median"], x["min"], x["max"])


with open(sys.argv[3], "w") as f:
    f.write(f"# model load time and resident memory ({day})\n\n"
            "`bench/load.sh`: the Llama-3.2-1B shape (dim 2048, 16 layers, 32/8 heads, FFN 8192,\n"
            "vocab 128256, tied embeddings; random weights) in F16 and in Q4_K_M (`slorad\n"
            "quantize`), page cache warm. slorad: `bench_load`, wall and CPU seconds of\n"
            "`slora_model_load`, which maps the file and reads every weight once to refuse\n"
            "NaN/Inf values (F16) or block scales (quantized). llama.cpp: node-llama-cpp 3.21.1's\n"
            "own load time counter (mmap, values not checked). Seconds, median of "
            f"{rows[0]['reps']} interleaved runs [min, max]; {os.cpu_count()} CPUs, load average\n"
            f"{loadavg} at the end of the runs (other jobs running: the wall times are\n"
            "those of a shared machine, the CPU times what the load costs).\n\n"
            "| model | file MiB | slorad load (wall) | slorad load (CPU) | llama.cpp load |\n"
            "|---|---|---|---|---|\n")
    for r in rows:
        f.write(f"| {r['type']} | {r['file_mib']:.0f} | {s(r['ours_load_s'])} | "
                f"{s(r['ours_load_cpu_s'])} | {s(r['llama_load_s'])} |\n")
    f.write(f"\nResident memory growth over the process's start (MiB, median): file-backed\n"
            f"pages (the mapped model) / anonymous memory (copies, KV cache, scratch), after\n"
            f"the load and after {gen} greedy tokens (1 thread). slorad's anonymous memory\n"
            "holds no dequantized or converted weights: the matrices are used in place in\n"
            "the map.\n\n"
            "| model | slorad loaded | slorad generated | llama.cpp loaded "
            "| llama.cpp generated |\n"
            "|---|---|---|---|---|\n")
    for r in rows:
        cell = lambda side, when: "%.0f / %.0f" % (r[f"{side}_{when}_file_mib"],
                                                   r[f"{side}_{when}_anon_mib"])
        f.write(f"| {r['type']} | {cell('ours', 'rss_loaded')} | {cell('ours', 'rss_generated')} | "
                f"{cell('llama', 'rss_loaded')} | {cell('llama', 'rss_generated')} |\n")
print(open(sys.argv[3]).read())
EOF
