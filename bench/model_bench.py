#!/usr/bin/python3
"""model_bench.py - decode and prefill tok/s, slorad against llama.cpp, side by
side in one run on the same GGUF files and thread counts.

Models (generated once into $BUILD/bench-models by `slorad gen-model` and
`slorad quantize`): a stories110M shape (dim 768, 12 layers, 12 heads,
FFN 2048, vocab 32000 from the shared llama-spm vocabulary) and a
Llama-3.2-1B shape (dim 2048, 16 layers, 32/8 heads, FFN 8192, vocab
128256: the gpt-2 vocabulary padded, theta 500000, tied), in F32, F16, Q8_0
and Q4_K_M. Each (model, threads) pair runs REPS times, the two engines
interleaved (order alternating per repetition); llama.cpp is timed by its
own performance counters (bench/llama_bench.mjs), slorad by bench_model
with the same protocol. Medians and spreads go to bench/results/model.{json,md}.

Adapter overhead (issue 11): decode with a warm LoRA r=16 on q, k, v, o of
every layer (factored) and with a cross-layer Tucker adapter (dense, BF16)
against base decode on the Q4_K_M file of each shape.

APPEND=1 keeps the rows of the existing results file that this run does
not measure (e.g. SHAPES=1b after SHAPES=110m); MERGE="a.json b.json" adds
the rows of other runs' files (SHAPES="" only writes the merged report).

Environment: BUILD, APPEND, OUT_JSON, OUT_MD, BENCH_MODELS (where the generated models go, default
$BUILD/bench-models; the 1B F32 file is ~5 GB), SLORA_ORACLE, SHAPES ("110m 1b"), TYPES ("f32 f16 q8_0
q4_k_m"), THREADS ("1 2"), REPS (5), ADAPTER_REPS (9: runs of each adapter row),
N_PROMPT (512), N_GEN (64).
"""
import json
import os
import statistics
import subprocess
import sys
import time

BUILD = os.environ.get("BUILD", "build")
S = os.path.join(BUILD, "slorad")
ORACLE = os.environ.get("SLORA_ORACLE", os.path.abspath(os.path.join(BUILD, "oracle")))
VOCAB = os.path.join(os.environ.get("SHARED", "../shared"), "models/vocab")
SHAPES = {
    "110m": ["--dim", "768", "--hidden", "2048", "--layers", "12", "--heads", "12",
             "--kv-heads", "12", "--seq-len", "2048",
             "--vocab-from", VOCAB + "/ggml-vocab-llama-spm.gguf"],
    "1b": ["--dim", "2048", "--hidden", "8192", "--layers", "16", "--heads", "32",
           "--kv-heads", "8", "--seq-len", "2048", "--rope-theta", "500000", "--shared-classifier",
           "--vocab", "128256", "--vocab-from", VOCAB + "/ggml-vocab-gpt-2.gguf"],
}
BASE = {"110m": "768,12,12,12,2048,32000", "1b": "2048,16,32,8,8192,128256"}


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


MODELS = os.environ.get("BENCH_MODELS", os.path.join(BUILD, "bench-models"))


def model_file(shape, dtype):
    d = MODELS
    os.makedirs(d, exist_ok=True)
    f32 = os.path.join(d, "%s-f32.gguf" % shape)
    if not os.path.exists(f32):
        run([S, "gen-model", *SHAPES[shape], "--seed", "1", "--format", "gguf3", "-o", f32 + ".tmp"])
        os.rename(f32 + ".tmp", f32)
    out = os.path.join(d, "%s-%s.gguf" % (shape, dtype))
    if not os.path.exists(out):
        if dtype in ("f16", "bf16"):
            run([S, "convert", "--model", f32, "--dtype", dtype, "-o", out + ".tmp"])
        else:
            run([S, "quantize", f32, out + ".tmp", "--type", dtype])
        os.rename(out + ".tmp", out)
    return out


def adapter_files(shape):
    d = MODELS
    lora = os.path.join(d, "%s-lora16-qkvo.safetensors" % shape)
    tucker = os.path.join(d, "%s-tucker-xlayer.safetensors" % shape)
    if not os.path.exists(lora):
        run([sys.executable, "tests/e2e/lib/gen_adapter.py", lora, "--rank", "16",
             "--modules", "wq,wk,wv,wo", "--base", BASE[shape], "--scale", "0.01"])
    if not os.path.exists(tucker):
        run([sys.executable, "bench/gen_tucker.py", tucker, "--base", BASE[shape]])
    return lora, tucker


def slorad(model, threads, extra=()):
    out = run([os.path.join(BUILD, "bench_model"), "--model", model, "--threads", str(threads),
               "--prompt", os.environ.get("N_PROMPT", "512"), "--gen",
               os.environ.get("N_GEN", "64"), *extra])
    return json.loads(out.strip().splitlines()[-1])


def llama(model, threads):
    out = run(["node", "bench/llama_bench.mjs", model, str(threads),
               os.environ.get("N_PROMPT", "512"), os.environ.get("N_GEN", "64")],
              env={**os.environ, "SLORA_ORACLE": ORACLE})
    return json.loads(out.strip().splitlines()[-1])


def summary(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def write_report(results, adapters, reps, load):
    """model.{json,md} (OUT_JSON, OUT_MD) from the rows so far, merged with
    MERGE's (and with APPEND, the existing file's) rows."""
    results, adapters = list(results), list(adapters)
    measured = bool(results or adapters)
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                           if l.startswith("model name")), "?"), "n_cpus": os.cpu_count(),
              "load_before": load, "load_after": open("/proc/loadavg").read().split()[:3],
              "reps": reps, "n_prompt": int(os.environ.get("N_PROMPT", "512")),
              "n_gen": int(os.environ.get("N_GEN", "64")), "results": results,
              "adapters": adapters}
    out_json = os.environ.get("OUT_JSON", "bench/results/model.json")
    merge = os.environ.get("MERGE", "").split()
    if os.environ.get("APPEND") == "1" and os.path.exists(out_json):
        merge.append(out_json)
    for path in merge:
        # keep the rows of earlier runs this run did not measure (one shape at a time)
        old = json.load(open(path))
        key = lambda r: (r["shape"], r.get("type"), r["threads"])  # noqa: E731
        new = {key(r) for r in results}
        results[:0] = [r for r in old.get("results", []) if key(r) not in new]
        new = {key(r) for r in adapters}
        adapters[:0] = [r for r in old.get("adapters", []) if key(r) not in new]
        report["load_before"] = old.get("load_before", load)
        if not measured:  # only re-rendering (SHAPES=""): the run's own conditions
            for k in ("load_after", "n_prompt", "n_gen"):
                report[k] = old.get(k, report[k])
    dates = sorted(r["date"] for r in results if "date" in r)
    if dates:
        report["date"] = dates[0] + (" to " + dates[-1] if dates[-1] != dates[0] else "")
    order = {"110m": 0, "1b": 1, "f32": 0, "f16": 1, "q8_0": 2, "q4_k_m": 3}
    results.sort(key=lambda r: (order.get(r["shape"], 9), order.get(r["type"], 9), r["threads"]))
    os.makedirs("bench/results", exist_ok=True)
    with open(os.environ.get("OUT_JSON", "bench/results/model.json"), "w") as f:
        json.dump(report, f, indent=1)
    md = ["## Base model: slorad vs llama.cpp (same GGUF, same threads, interleaved)", "",
          "%s, %s (%d CPUs, shared with other jobs: load average %s before, %s after). "
          "tok/s, medians of %d interleaved runs (min-max); prefill %d tokens in one batch, "
          "decode %d tokens greedy; llama.cpp (node-llama-cpp 3.21.1, F32 KV cache like "
          "slorad) timed by its own performance counters. The last columns are CPU ms per "
          "token (the process's, all threads; llama.cpp's from node's process.cpuUsage around the same "
          "steps), which the other jobs on the machine disturb less than wall time; at 1 "
          "thread it is the fairest comparison here (at 2 both sides also count spin-waits)." % (
              report["date"], report["cpu"], report["n_cpus"], " ".join(report["load_before"]),
              " ".join(report["load_after"]), reps, report["n_prompt"], report["n_gen"]),
          "", "| shape | type | threads | decode slorad | decode llama.cpp | ratio | "
          "prefill slorad | prefill llama.cpp | ratio | decode CPU ms/tok slorad | llama.cpp | "
          "prefill CPU ms/tok slorad | llama.cpp |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda s: "%.2f (%.2f-%.2f)" % (s["median"], s["min"], s["max"])  # noqa: E731
    for r in results:
        cpu_ours = r["slorad_cpu_ms_per_token"]
        cpu_theirs = r.get("llama_cpp_cpu_ms_per_token")
        md.append("| %s | %s | %d | %s | %s | %.2fx | %s | %s | %.2fx | %s | %s | %s | %s |" % (
            r["shape"], r["type"], r["threads"], fmt(r["slorad"]["decode"]),
            fmt(r["llama_cpp"]["decode"]), r["decode_ratio"], fmt(r["slorad"]["prefill"]),
            fmt(r["llama_cpp"]["prefill"]), r["prefill_ratio"], fmt(cpu_ours["decode"]),
            fmt(cpu_theirs["decode"]) if cpu_theirs else "-", fmt(cpu_ours["prefill"]),
            fmt(cpu_theirs["prefill"]) if cpu_theirs else "-"))
    if adapters:
        md += ["", "### Adapter overhead on Q4_K_M decode (slorad, warm)", "",
               "Decode tok/s, medians of `reps` runs of each (the three in rotating order); "
               "overhead = base / adapted - 1. The CPU columns compare the medians of decode "
               "CPU ms per token (adapted / base - 1), which other jobs on the machine disturb "
               "less than wall time (at 2 threads they include spin-waits).", "",
               "| shape | threads | reps | base tok/s | LoRA r=16 q,k,v,o (factored) | overhead | "
               "CPU | cross-layer Tucker (dense BF16) | overhead | CPU |",
               "|---|---|---|---|---|---|---|---|---|---|"]
        pct = lambda r, k: "%.1f%%" % r[k] if k in r else "-"  # noqa: E731
        for r in adapters:
            md.append("| %s | %d | %s | %s | %s | %.1f%% | %s | %s | %.1f%% | %s |" % (
                r["shape"], r["threads"], r.get("reps", reps), fmt(r["base"]),
                fmt(r["lora16_factored"]), r["lora16_overhead_pct"],
                pct(r, "lora16_cpu_overhead_pct"), fmt(r["tucker_dense_bf16"]),
                r["tucker_overhead_pct"], pct(r, "tucker_cpu_overhead_pct")))
    if os.path.exists("bench/model_notes.md"):
        md += ["", open("bench/model_notes.md").read().rstrip()]
    with open(os.environ.get("OUT_MD", "bench/results/model.md"), "w") as f:
        f.write("\n".join(md) + "\n")



def main():
    shapes = os.environ.get("SHAPES", "110m 1b").split()
    types = os.environ.get("TYPES", "f32 f16 q8_0 q4_k_m").split()
    threads = [int(t) for t in os.environ.get("THREADS", "1 2").split()]
    reps = int(os.environ.get("REPS", "5"))
    adapter_reps = int(os.environ.get("ADAPTER_REPS", "9"))
    load = open("/proc/loadavg").read().split()[:3]
    results = []
    for shape in shapes:
        for dtype in types:
            model = model_file(shape, dtype)
            for t in threads:
                ours, theirs = {"prefill": [], "decode": []}, {"prefill": [], "decode": []}
                # CPU ms per token (process, all threads) of each side
                cpu, cpu_llama = {"prefill": [], "decode": []}, {"prefill": [], "decode": []}
                for r in range(reps):
                    order = [("slorad", slorad), ("llama.cpp", llama)]
                    if r % 2:
                        order.reverse()
                    for name, fn in order:
                        res = fn(model, t)
                        dst = ours if name == "slorad" else theirs
                        dst["prefill"].append(res["prefill_tps"])
                        dst["decode"].append(res["decode_tps"])
                        c = cpu if name == "slorad" else cpu_llama
                        c["decode"].append(1000 * res["decode_cpu_s"] / res["n_decode"])
                        c["prefill"].append(1000 * res["prefill_cpu_s"] / res["n_prompt"])
                row = {"shape": shape, "type": dtype, "threads": t,
                       "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                       "load": open("/proc/loadavg").read().split()[0],
                       "slorad": {k: summary(v) for k, v in ours.items()},
                       "llama_cpp": {k: summary(v) for k, v in theirs.items()},
                       "slorad_cpu_ms_per_token": {k: summary(v) for k, v in cpu.items()},
                       "llama_cpp_cpu_ms_per_token": {k: summary(v) for k, v in cpu_llama.items()}}
                for k in ("prefill", "decode"):
                    row[k + "_ratio"] = row["slorad"][k]["median"] / row["llama_cpp"][k]["median"]
                results.append(row)
                write_report(results, [], reps, load)
                print("%-5s %-7s %d thr: decode %.2f vs %.2f tok/s (%.2fx), prefill %.1f vs %.1f "
                      "(%.2fx)" % (shape, dtype, t, row["slorad"]["decode"]["median"],
                                   row["llama_cpp"]["decode"]["median"], row["decode_ratio"],
                                   row["slorad"]["prefill"]["median"],
                                   row["llama_cpp"]["prefill"]["median"], row["prefill_ratio"]),
                      file=sys.stderr, flush=True)
    adapters = []
    if os.environ.get("ADAPTERS", "1") == "1" and "q4_k_m" in types:
        for shape in shapes:
            model = model_file(shape, "q4_k_m")
            lora, tucker = adapter_files(shape)
            variants = [("base", []), ("lora16_factored", ["--adapter", lora]),
                        ("tucker_dense_bf16", ["--adapter", tucker, "--delta-dtype", "bf16"])]
            for t in threads:
                runs = {name: [] for name, _ in variants}
                cpu = {name: [] for name, _ in variants}  # decode CPU ms per token
                # the three in turn, each rep starting one further along, so
                # none always follows (or precedes) the same one; more reps
                # than the engines' rows: the overheads are differences of
                # medians that each move +-10 % on this VM
                for r in range(adapter_reps):
                    for k in range(len(variants)):
                        name, extra = variants[(r + k) % len(variants)]
                        res = slorad(model, t, extra)
                        runs[name].append(res["decode_tps"])
                        cpu[name].append(1000 * res["decode_cpu_s"] / res["n_decode"])
                row = {"shape": shape, "threads": t, "reps": adapter_reps,
                       **{k: summary(v) for k, v in runs.items()},
                       "cpu_ms_per_token": {k: summary(v) for k, v in cpu.items()}}
                base = row["base"]["median"]
                row["lora16_overhead_pct"] = 100 * (base / row["lora16_factored"]["median"] - 1)
                row["tucker_overhead_pct"] = 100 * (base / row["tucker_dense_bf16"]["median"] - 1)
                c = {k: v["median"] for k, v in row["cpu_ms_per_token"].items()}
                row["lora16_cpu_overhead_pct"] = 100 * (c["lora16_factored"] / c["base"] - 1)
                row["tucker_cpu_overhead_pct"] = 100 * (c["tucker_dense_bf16"] / c["base"] - 1)
                adapters.append(row)
                print("%-5s q4_k_m %d thr adapters: LoRA r=16 +%.1f%% (CPU +%.1f%%), Tucker dense "
                      "BF16 +%.1f%% (CPU +%.1f%%)"
                      % (shape, t, row["lora16_overhead_pct"], row["lora16_cpu_overhead_pct"],
                         row["tucker_overhead_pct"], row["tucker_cpu_overhead_pct"]),
                      file=sys.stderr, flush=True)
    write_report(results, adapters, reps, load)

if __name__ == "__main__":
    main()
