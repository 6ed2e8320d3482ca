// oracle_probs.mjs - llama.cpp (node-llama-cpp, CPU) next-token
// probabilities at every position of a token sequence, optionally with a
// GGUF LoRA adapter applied through node-llama-cpp's LoRA option.
//
//   SLORA_ORACLE=DIR node oracle_probs.mjs MODEL.gguf TOKENS VOCAB [LORA.gguf SCALE]
//
// TOKENS is comma-separated; prints {"probs": [[VOCAB floats] per position]}.
const [model, tokens, vocab, lora, scale] = process.argv.slice(2);
const {getLlama, LlamaLogLevel} = await import(
    process.env.SLORA_ORACLE + "/node_modules/node-llama-cpp/dist/index.js");
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const m = await llama.loadModel({modelPath: model});
// F32 KV cache: the default F16 one rounds keys and values to ~1e-3
const opts = {contextSize: 64, flashAttention: false, threads: 1,
              experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32"};
if (lora)
    opts.lora = {adapters: [{filePath: lora, scale: Number(scale)}]};
const ctx = await m.createContext(opts);
const toks = tokens.split(",").map(Number);
const out = await ctx.getSequence().controlledEvaluate(
    toks.map((t) => [t, {generateNext: {probabilities: true}}]));
const probs = out.map((o) => {
    const row = new Array(Number(vocab)).fill(0);
    for (const [tok, p] of o.next.probabilities) row[tok] = p;
    return row;
});
console.log(JSON.stringify({probs}));
await ctx.dispose();
await m.dispose();
