// llama.mjs - llama.cpp (node-llama-cpp 3.21.1, CPU) as a test oracle.
//
//   node llama.mjs logprobs MODEL.gguf 1,2,3 [threads]
//       {"logprobs": [[vocab floats] per position]}: log-softmax of llama.cpp's
//       logits at every position (node-llama-cpp exposes probabilities only),
//       F32 KV cache, flash attention off.
//   node llama.mjs greedy MODEL.gguf 1,2,3 N
//       {"tokens": [N greedy tokens]} continuing the prompt.
//   node llama.mjs tokenize MODEL.gguf TEXT [special]
//       {"tokens": [...]} llama.cpp's tokenization (special tokens parsed
//       when the third argument is "special").
//   node llama.mjs batch MODEL.gguf < jobs.json
//       one model load for a JSON array of jobs, answered in order:
//       {"tokenize": TEXT, "special": bool} -> {"tokens": [...]}
//       {"greedy": [ids], "n": N, "eog": bool} -> {"tokens": [...], "eog": bool}:
//           up to N greedy tokens; with "eog" it stops before the first
//           end-of-generation token (llama.cpp's isEogToken) and says so
//       {"detokenize": [ids], "special": bool, "last": [ids]} -> {"text": ...}:
//           the text of ids (control tokens as text with "special"), as
//           they continue "last" (node-llama-cpp's lastTokens)
// The module comes from $SLORA_ORACLE (an npm prefix holding node-llama-cpp).
const root = process.env.SLORA_ORACLE;
if (!root) {
    console.error("llama.mjs: set SLORA_ORACLE to the folder holding node_modules/node-llama-cpp");
    process.exit(2);
}
const {getLlama, LlamaLogLevel} = await import(root + "/node_modules/node-llama-cpp/dist/index.js");

const [cmd, modelPath, arg, extra] = process.argv.slice(2);
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath, gpuLayers: 0});

function ids(s) {
    return s.split(",").filter((t) => t !== "").map(Number);
}

async function context(n, threads) {
    return model.createContext({
        contextSize: Math.max(64, n + 8),
        batchSize: Math.max(64, n + 8),
        flashAttention: false,
        threads: threads || 1,
        experimentalKvCacheKeyType: "F32",
        experimentalKvCacheValueType: "F32",
    });
}

// Up to n greedy tokens after toks (ties: the lowest id); with eog, stop
// before the first end-of-generation token.
async function greedy(toks, n, eog) {
    const ctx = await context(toks.length + n, 1);
    const seq = ctx.getSequence();
    const out = [];
    const res = await seq.controlledEvaluate(toks.map((t, i) => (i === toks.length - 1 ? [t, {generateNext: {probabilities: true}}] : t)));
    const argmax = (p) => {
        let best = -1, bv = -1;
        for (const [t, v] of p) if (v > bv || (v === bv && t < best)) { bv = v; best = t; }
        return best;
    };
    let next = argmax(res[res.length - 1].next.probabilities);
    let stopped = false;
    for (let i = 0; i < n; i++) {
        if (eog && model.isEogToken(next)) {
            stopped = true;
            break;
        }
        out.push(next);
        if (i === n - 1) break;
        const r = await seq.controlledEvaluate([[next, {generateNext: {probabilities: true}}]]);
        next = argmax(r[0].next.probabilities);
    }
    await ctx.dispose();
    return eog ? {tokens: out, eog: stopped} : {tokens: out};
}

if (cmd === "logprobs") {
    const toks = ids(arg);
    const ctx = await context(toks.length, Number(extra) || 1);
    const seq = ctx.getSequence();
    const res = await seq.controlledEvaluate(toks.map((t) => [t, {generateNext: {probabilities: true}}]));
    // the map holds every vocabulary entry; a zero probability becomes -1e30
    const out = res.map((r) => {
        const p = r.next.probabilities;
        const row = new Array(p.size).fill(-1e30);
        for (const [t, v] of p) if (v > 0) row[t] = Math.log(v);
        return row;
    });
    process.stdout.write(JSON.stringify({logprobs: out}));
} else if (cmd === "greedy") {
    process.stdout.write(JSON.stringify(await greedy(ids(arg), Number(extra), false)));
} else if (cmd === "batch") {
    const chunks = [];
    for await (const c of process.stdin) chunks.push(c);
    const out = [];
    for (const job of JSON.parse(Buffer.concat(chunks).toString())) {
        if (job.tokenize !== undefined)
            out.push({tokens: Array.from(model.tokenize(job.tokenize, !!job.special))});
        else if (job.greedy !== undefined)
            out.push(await greedy(job.greedy, job.n, !!job.eog));
        else if (job.detokenize !== undefined)
            out.push({text: model.detokenize(job.detokenize, !!job.special, job.last)});
        else
            throw new Error("llama.mjs batch: unknown job " + JSON.stringify(job));
    }
    process.stdout.write(JSON.stringify(out));
} else if (cmd === "tokenize") {
    const toks = model.tokenize(arg, extra === "special");
    process.stdout.write(JSON.stringify({tokens: Array.from(toks)}));
} else {
    console.error("llama.mjs: unknown command " + cmd);
    process.exit(2);
}
await model.dispose();
await llama.dispose();
