// llama_load.mjs - llama.cpp's side of bench/load.sh: its own model load
// time (the "load time" of llama_perf_context_print, llama.cpp's t_load_ms:
// llama_model_load, mmap on, no value checks), and this process's resident
// memory split into file-backed and anonymous pages before the load, after
// it, and after a greedy generation of N_GEN tokens (1 thread).
//
//   node llama_load.mjs MODEL N_GEN
// prints {"load_ms": .., "rss_start": {"anon_mib", "file_mib"}, "rss_loaded": .., "rss_generated": ..}
import {readFileSync} from "node:fs";

const root = process.env.SLORA_ORACLE;
if (!root) {
    console.error("llama_load.mjs: set SLORA_ORACLE (make oracle)");
    process.exit(2);
}
const {getLlama, LlamaLogLevel} = await import(root + "/node_modules/node-llama-cpp/dist/index.js");
const [modelPath, genArg] = process.argv.slice(2);
const nGen = Number(genArg);

function rss() {
    const s = readFileSync("/proc/self/status", "utf8");
    const kb = (k) => Number(s.match(new RegExp("^" + k + ":\\s+(\\d+) kB", "m"))[1]);
    return {anon_mib: kb("RssAnon") / 1024, file_mib: kb("RssFile") / 1024};
}

const lines = [];
const llama = await getLlama({
    gpu: false, build: "never", logLevel: LlamaLogLevel.info,
    logger: (level, msg) => lines.push(msg),
});
const rssStart = rss();
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const ctx = await model.createContext({
    contextSize: 64, batchSize: 32, flashAttention: false, threads: 1, performanceTracking: true,
});
const rssLoaded = rss();
const seq = ctx.getSequence();
let n = 0;
for await (const t of seq.evaluate([1], {temperature: 0})) {
    void t;
    if (++n >= nGen) break;
}
const rssGenerated = rss();
lines.length = 0;
await ctx.printTimings();
let loadMs = NaN;
for (const l of lines) {
    const m = l.match(/load time =\s+([\d.]+) ms/);
    if (m) loadMs = Number(m[1]);
}
process.stdout.write(JSON.stringify({load_ms: loadMs, rss_start: rssStart, rss_loaded: rssLoaded,
                                     rss_generated: rssGenerated}) + "\n");
await ctx.dispose();
await model.dispose();
await llama.dispose();
