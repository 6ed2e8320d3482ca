// llama_bench.mjs - llama.cpp's side of bench/model.sh: the same protocol
// as bench_model (prefill N_PROMPT tokens in one batch, then decode N_GEN
// tokens greedily), timed by llama.cpp's own performance counters
// (llama_perf_context_print through node-llama-cpp), not a JS loop.
//
//   node llama_bench.mjs MODEL THREADS N_PROMPT N_GEN
// prints {"prefill_tps": .., "decode_tps": .., "n_prompt": .., "n_decode": ..,
//         "prefill_cpu_s": .., "decode_cpu_s": ..}
const root = process.env.SLORA_ORACLE;
if (!root) {
    console.error("llama_bench.mjs: set SLORA_ORACLE (make oracle)");
    process.exit(2);
}
const {getLlama, LlamaLogLevel} = await import(root + "/node_modules/node-llama-cpp/dist/index.js");
const [modelPath, threadsArg, promptArg, genArg] = process.argv.slice(2);
const threads = Number(threadsArg), nPrompt = Number(promptArg), nGen = Number(genArg);
const lines = [];
const llama = await getLlama({
    gpu: false, build: "never", logLevel: LlamaLogLevel.info,
    logger: (level, msg) => lines.push(msg),
});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const ctx = await model.createContext({
    contextSize: nPrompt + nGen + 16, batchSize: Math.max(nPrompt, 32), flashAttention: false,
    threads, performanceTracking: true,
    experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
});
const seq = ctx.getSequence();
// the prompt bench_model uses: ids spread over the first 30003 tokens
const prompt = Array.from({length: nPrompt}, (_, i) => ((i * 7919 + 1) % 30000) + 3);
// process CPU seconds (all threads) at the first token (the prompt's
// evaluation) and at the last (nGen - 1 decode steps): the cost without the
// time other processes held the cores, as bench_model reports it
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
let n = 0;
const c0 = cpu();
let c1 = c0, c2 = c0;
for await (const t of seq.evaluate(prompt, {temperature: 0})) {
    void t;
    if (++n === 1) c1 = cpu();
    if (n >= nGen) { c2 = cpu(); break; }
}
lines.length = 0;
await ctx.printTimings();
const grab = (re) => {
    for (const l of lines) {
        const m = l.match(re);
        if (m) return [Number(m[1]), Number(m[2])];
    }
    return [NaN, NaN];
};
const [pTok, pTps] = grab(/prompt eval time =.*\/\s+(\d+) tokens.*?([\d.]+) tokens per second/);
const [dRuns, dTps] = grab(/\beval time =.*\/\s+(\d+) runs.*?([\d.]+) tokens per second/);
process.stdout.write(JSON.stringify({prefill_tps: pTps, decode_tps: dTps, n_prompt: pTok, n_decode: dRuns,
                                     prefill_cpu_s: c1 - c0, decode_cpu_s: c2 - c1}) + "\n");
await ctx.dispose();
await model.dispose();
await llama.dispose();
