// llama_timing.mjs - llama.cpp's own timings (performance tracking) for one
// GGUF: prefill of N_PROMPT tokens, then N_GEN decode steps, THREADS threads.
// Prints one JSON line {prompt_ms, prompt_tokens, eval_ms, eval_runs}.
// usage: SLORA_ORACLE=/work/oracle node bench/llama_timing.mjs MODEL N_PROMPT N_GEN THREADS
const {getLlama, LlamaLogLevel} = await import(
    process.env.SLORA_ORACLE + "/node_modules/node-llama-cpp/dist/index.js");
const [modelPath, nPrompt, nGen, threads] = process.argv.slice(2);
const lines = [];
const llama = await getLlama({
    gpu: false, build: "never", logLevel: LlamaLogLevel.info,
    logger: (level, message) => lines.push(String(message)),
});
const model = await llama.loadModel({modelPath});
const ctx = await model.createContext({
    contextSize: 1024, batchSize: 512, flashAttention: false, threads: Number(threads),
    performanceTracking: true,
});
const seq = ctx.getSequence();
const vocab = model.tokenizer ? 32000 : 32000;
const prompt = [];
for (let i = 0; i < Number(nPrompt); i++) prompt.push(3 + (i * 7919) % (vocab - 3));
let got = 0;
for await (const tok of seq.evaluate(prompt, {temperature: 0})) {
    if (++got >= Number(nGen)) break;
}
lines.length = 0;
await ctx.printTimings();
const text = lines.join("\n");
const num = (re) => { const m = text.match(re); return m ? Number(m[1]) : null; };
console.log(JSON.stringify({
    prompt_ms: num(/prompt eval time =\s*([\d.]+) ms/),
    prompt_tokens: num(/prompt eval time =\s*[\d.]+ ms \/\s*(\d+) tokens/),
    eval_ms: num(/\beval time =\s*([\d.]+) ms \/\s*\d+ runs/),
    eval_runs: num(/\beval time =\s*[\d.]+ ms \/\s*(\d+) runs/),
}));
await ctx.dispose();
await model.dispose();
