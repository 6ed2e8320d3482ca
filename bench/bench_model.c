/* bench_model.c - slorad's side of bench/model.sh: prefill N_PROMPT tokens
 * in one forward call, then decode N_GEN tokens greedily one call each,
 * the protocol of bench/llama_bench.mjs (llama.cpp's counters time the
 * prompt and then N_GEN - 1 decode calls, the first token coming from the
 * prompt's logits). Optionally with an adapter (warm in the weight set
 * before timing). Prints one JSON line per repetition.
 *
 *   bench_model --model M --threads T --prompt N --gen N [--reps R]
 *               [--adapter A.safetensors [--delta-dtype bf16|f16|f32] [--dense]]
 */
#include <slora/adapter.h>
#include <slora/blas.h>
#include <slora/cliarg.h>
#include <slora/delta.h>
#include <slora/forward.h>
#include <slora/model.h>
#include <slora/sampler.h>
#include <slora/weights.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* CPU seconds of all the process's threads: on a shared machine, what a
 * phase cost without the time other processes held the cores. */
static double cpu(void)
{
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

static void die(const char *msg)
{
    fprintf(stderr, "bench_model: %s\n", msg);
    exit(1);
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *adapter = NULL, *dtype_name = "auto";
    long long threads = 1, n_prompt = 128, n_gen = 64, reps = 1;
    bool dense = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--dense")) {
            dense = true;
            continue;
        }
        if (!strcmp(a, "--model"))
            model_path = v;
        else if (!strcmp(a, "--adapter"))
            adapter = v;
        else if (!strcmp(a, "--delta-dtype"))
            dtype_name = v;
        else if (!(!strcmp(a, "--threads") && slora_cliarg_int(v, 1, 64, &threads)) &&
                 !(!strcmp(a, "--prompt") && slora_cliarg_int(v, 1, 1 << 16, &n_prompt)) &&
                 !(!strcmp(a, "--gen") && slora_cliarg_int(v, 2, 1 << 16, &n_gen)) &&
                 !(!strcmp(a, "--reps") && slora_cliarg_int(v, 1, 1000, &reps))) {
            fprintf(stderr, "usage: bench_model --model M [--threads T] [--prompt N] [--gen N] "
                            "[--reps R] [--adapter A [--delta-dtype T] [--dense]]\n");
            return 2;
        }
        i++;
    }
    if (!model_path)
        die("--model is required");
    char diag[512];
    struct slora_model *m;
    struct slora_model_opts mo = {.max_context = (int)(n_prompt + n_gen + 1)};
    if (slora_model_load(model_path, &mo, &m, diag, sizeof(diag)))
        die(diag);
    if (n_prompt + n_gen > m->cfg.seq_len)
        die("--prompt + --gen exceed the model's context");
    slora_blas_set_threads(1);
    struct slora_weights ws;
    struct slora_delta_set *set = NULL;
    struct slora_adapter *a = NULL;
    if (slora_weights_init(&ws, m, adapter ? 1 : 0))
        die("out of memory");
    if (adapter) {
        if (slora_adapter_load(adapter, &m->cfg.shape, NULL, 0, &a, diag, sizeof(diag)))
            die(diag);
        int t = slora_dtype_parse(dtype_name);
        struct slora_delta_opts o = {
            .dense_type = t >= 0 ? (enum slora_dtype)t
                          : slora_model_is_quantized(m) ? SLORA_DTYPE_BF16
                                                        : SLORA_DTYPE_F32,
            .factored = !dense,
            .n_threads = (int)threads,
        };
        if (slora_delta_set_new(m, a, &o, &set, diag, sizeof(diag)))
            die(diag);
        slora_delta_set_bind(set, &ws, 0);
        ws.id = 1;
        fprintf(stderr, "adapter: %s, %zu bytes of deltas\n",
                slora_delta_is_factored(a, &o) ? "factored" : slora_dtype_name(o.dense_type),
                slora_delta_bytes(a, &o));
    }
    int vocab = m->cfg.shape.vocab_size;
    struct slora_fwd *f = slora_fwd_new(m, (int)n_prompt, (int)threads);
    struct slora_kv *kv = slora_kv_new(m);
    struct slora_fwd_row *rows = calloc((size_t)n_prompt, sizeof(*rows));
    float *logits = malloc((size_t)vocab * sizeof(float));
    struct slora_sampler_params greedy = {0};
    struct slora_sampler *sampler = slora_sampler_new(vocab, &greedy);
    if (!f || !kv || !rows || !logits || !sampler)
        die("out of memory");
    for (long long r = 0; r < reps; r++) {
        for (int i = 0; i < n_prompt; i++)
            rows[i] = (struct slora_fwd_row){((i * 7919 + 1) % 30000 + 3) % vocab, i, kv, &ws,
                                             i == n_prompt - 1 ? logits : NULL};
        double t0 = now(), c0 = cpu();
        if (slora_fwd_run(f, rows, (int)n_prompt))
            die("forward failed");
        double t1 = now(), c1 = cpu();
        int token = slora_sampler_sample(sampler, logits);
        for (long long g = 1; g < n_gen; g++) {
            struct slora_fwd_row row = {token, (int)(n_prompt + g - 1), kv, &ws, logits};
            slora_fwd_run(f, &row, 1);
            token = slora_sampler_sample(sampler, logits);
        }
        double t2 = now(), c2 = cpu();
        printf("{\"prefill_tps\": %.3f, \"decode_tps\": %.3f, \"n_prompt\": %lld, \"n_decode\": "
               "%lld, \"prefill_cpu_s\": %.4f, \"decode_cpu_s\": %.4f}\n",
               n_prompt / (t1 - t0), (n_gen - 1) / (t2 - t1), n_prompt, n_gen - 1, c1 - c0, c2 - c1);
        fflush(stdout);
    }
    slora_sampler_free(sampler);
    free(logits);
    free(rows);
    slora_kv_free(kv);
    slora_fwd_free(f);
    slora_delta_set_free(set);
    slora_adapter_unref(a);
    slora_weights_deinit(&ws);
    slora_model_free(m);
    return 0;
}
