/* bench_engine.c - the batching engine and the delta cache, in process (no
 * HTTP), on a stories110M-shaped model.
 *
 *  1. single-stream decode tok/s: base model vs a Q,V Tucker-3D adapter
 *     with a warm cache (the adapter's cost should be only the cache) vs a
 *     per-request mix of two such adapters (0.5 each, both warm);
 *  2. aggregate decode tok/s at 1, 4 and 16 concurrent base streams;
 *  3. 16 streams spread over 1, 16 and 256 distinct adapters with a cache
 *     holding 8 entries (misses, evictions, tok/s);
 *  4. cache-miss latency: generate dW + merge W' for one adapter.
 *
 * Adapters are built in memory: one Tucker-3D group (24 x dim x dim, ranks
 * 8, with core) over wq and wv of every layer, random factors; each
 * adapter id gets its own factors.
 *
 * usage: bench_engine --model M [--tokens N] [--threads T] [--json P] [--md P]
 */
#include <slora/cache.h>
#include <slora/engine.h>
#include <slora/error.h>
#include <slora/model.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- in-memory Tucker-3D Q,V adapters ---------------------------------- */

#define MAX_LAYERS 64

struct bench_adapter {
    struct slora_adapter a;
    struct slora_target t[2 * MAX_LAYERS];
    struct slora_group g;
    struct slora_group_tables tables;
    float *params;
    char id[32];
};

static void adapter_init(struct bench_adapter *b, const struct slora_model *m, int seed)
{
    memset(b, 0, sizeof(*b));
    const struct slora_shape *s = &m->cfg.shape;
    int64_t dim = s->dim, kv = (int64_t)s->dim / s->n_heads * s->n_kv_heads;
    b->a.refcount = 1;
    b->a.cfg.base = *s;
    b->a.cfg.alpha = 1.0f;
    b->a.targets = b->t;
    for (int l = 0; l < s->n_layers; l++)
        for (int k = 0; k < 2; k++) {
            int64_t rows = k ? kv : dim;
            b->t[b->a.n_targets++] = (struct slora_target){
                l, k ? SLORA_MOD_WV : SLORA_MOD_WQ, rows, dim, b->a.total};
            b->a.total += rows * dim;
        }
    /* One group of N floats folded as (N / dim^2) x dim x dim (kv == dim here). */
    int64_t n[3] = {b->a.total / (dim * dim), dim, dim}, r[3] = {8, 8, 8};
    size_t n_params = (size_t)(n[0] + n[1] + n[2]) * 8 + 512;
    b->params = malloc(n_params * sizeof(float));
    uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(seed + 1);
    for (size_t i = 0; i < n_params; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b->params[i] = ((float)(x >> 40) / (float)(1 << 24) - 0.5f) * 0.02f;
    }
    b->a.groups = &b->g;
    b->a.n_groups = 1;
    b->g = (struct slora_group){.offset = 0, .len = b->a.total, .order = 3, .n_kron = 1};
    slora_group_tables_init(&b->g, &b->tables);
    b->g.code_len = n[0] * n[1] * n[2];
    float *p = b->params;
    for (int mode = 0; mode < 3; mode++) {
        b->g.n[mode] = n[mode];
        b->g.k[0].n[mode] = n[mode];
        b->g.k[0].r[mode] = r[mode];
        b->g.k[0].a[mode] = p;
        p += n[mode] * r[mode];
    }
    b->g.k[0].core = p;
    snprintf(b->id, sizeof(b->id), "bench/a%d", seed);
}

/* ---- jobs -------------------------------------------------------------- */

struct run {
    int max_tokens;
    int n;
    double t_first;
    double t_done;
    pthread_mutex_t *lock;
    pthread_cond_t *cond;
    int *remaining;
    int vocab;
};

static int greedy(void *arg, float *logits, int pos, bool *stop)
{
    struct run *r = arg;
    (void)pos;
    if (r->n == 0)
        r->t_first = now_s();
    int best = 0;
    for (int v = 1; v < r->vocab; v++)
        if (logits[v] > logits[best])
            best = v;
    /* Fixed length: never stop on EOS, so every run decodes the same count. */
    *stop = ++r->n >= r->max_tokens;
    return best == 1 || best == 2 ? 3 : best;
}

static void done(void *arg, const struct slora_engine_result *res)
{
    struct run *r = arg;
    if (res->err)
        fprintf(stderr, "bench_engine: job failed: %s\n", res->diag);
    r->t_done = now_s();
    pthread_mutex_lock(r->lock);
    if (--*r->remaining == 0)
        pthread_cond_signal(r->cond);
    pthread_mutex_unlock(r->lock);
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

/* Run n_streams jobs at once (stream i on who[i * mix + k mod n_who] for
 * k < mix, weights 1 / mix; n_who 0 = base) and return aggregate decode
 * tok/s (tokens after the first of each stream over the wall time from the
 * first first-token to the last done). */
static double run_streams(struct slora_engine *e, const struct slora_model *m, int n_streams,
                          struct bench_adapter **who, int n_who, int mix, int tokens,
                          double *single)
{
    struct run *r = calloc((size_t)n_streams, sizeof(*r));
    int remaining = n_streams;
    const int prompt[4] = {1, 403, 407, 261};
    for (int i = 0; i < n_streams; i++) {
        r[i] = (struct run){tokens, 0, 0, 0, &lock, &cond, &remaining, m->cfg.shape.vocab_size};
        struct slora_engine_adapter ads[SLORA_WEIGHTS_MAX_TERMS];
        int n_ads = n_who ? mix : 0;
        for (int k = 0; k < n_ads; k++) {
            struct bench_adapter *b = who[(i * mix + k) % n_who];
            ads[k] = (struct slora_engine_adapter){b->id, "1", &b->a, 1.0f / (float)mix};
        }
        struct slora_engine_job job = {.tenant = "bench",
                                       .adapters = ads,
                                       .n_adapters = n_ads,
                                       .prompt = prompt,
                                       .n_prompt = 4,
                                       .step = greedy,
                                       .done = done,
                                       .arg = &r[i]};
        uint64_t ticket;
        int err = slora_engine_submit(e, &job, &ticket);
        if (err) {
            fprintf(stderr, "bench_engine: submit: %s\n", slora_strerror(err));
            exit(1);
        }
    }
    pthread_mutex_lock(&lock);
    while (remaining)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    double t0 = r[0].t_first, t1 = r[0].t_done;
    for (int i = 0; i < n_streams; i++) {
        t0 = r[i].t_first < t0 ? r[i].t_first : t0;
        t1 = r[i].t_done > t1 ? r[i].t_done : t1;
    }
    if (single)
        *single = (tokens - 1) / (r[0].t_done - r[0].t_first);
    free(r);
    return (double)n_streams * (tokens - 1) / (t1 - t0);
}

/* Best single-stream decode tok/s of base, adapter who[0] and the mix of
 * who[0] and who[1], runs interleaved so that all see the same machine
 * load. */
static void best_single(struct slora_engine *e, const struct slora_model *m,
                        struct bench_adapter **who, int tokens, int reps, double *base,
                        double *adapted, double *mixed)
{
    *base = *adapted = *mixed = 0;
    for (int i = 0; i < reps; i++) {
        double tps;
        run_streams(e, m, 1, NULL, 0, 1, tokens, &tps);
        *base = tps > *base ? tps : *base;
        run_streams(e, m, 1, who, 1, 1, tokens, &tps);
        *adapted = tps > *adapted ? tps : *adapted;
        run_streams(e, m, 1, who, 2, 2, tokens, &tps);
        *mixed = tps > *mixed ? tps : *mixed;
    }
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *json_path = NULL, *md_path = NULL;
    int tokens = 32, threads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model_path = argv[++i];
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc)
            tokens = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json_path = argv[++i];
        else if (!strcmp(argv[i], "--md") && i + 1 < argc)
            md_path = argv[++i];
        else {
            fprintf(stderr, "usage: bench_engine --model M [--tokens N] [--threads T] "
                            "[--json P] [--md P]\n");
            return 2;
        }
    }
    char diag[256];
    struct slora_model *m;
    if (!model_path || slora_model_load(model_path, NULL, &m, diag, sizeof(diag))) {
        fprintf(stderr, "bench_engine: %s\n", model_path ? diag : "--model is required");
        return 1;
    }
    enum { N_ADAPTERS = 256 };
    struct bench_adapter *ad = calloc(N_ADAPTERS, sizeof(*ad));
    struct bench_adapter *who[N_ADAPTERS];
    for (int i = 0; i < N_ADAPTERS; i++) {
        adapter_init(&ad[i], m, i);
        who[i] = &ad[i];
    }
    /* bench adapters are dense: F32 dW of every target */
    size_t entry = slora_delta_bytes(&ad[0].a, &(struct slora_delta_opts){.dense_type = SLORA_DTYPE_F32});
    struct slora_cache_config cc = {.budget_bytes = 8 * entry + entry / 2};
    struct slora_cache *cache = slora_cache_new(m, &cc);
    struct slora_engine_config ec = {.threads = threads, .max_batch = 16, .max_queue = 64};
    struct slora_engine *e = slora_engine_new(m, cache, &ec);
    if (!cache || !e) {
        fprintf(stderr, "bench_engine: out of memory\n");
        return 1;
    }

    /* 4. cache-miss latency (generate + merge), best of 3 fresh keys. */
    double miss_ms = 1e30;
    for (int i = 0; i < 3; i++) {
        struct slora_cache_handle *h;
        char version[8];
        snprintf(version, sizeof(version), "m%d", i);
        double t0 = now_s();
        if (slora_cache_acquire_wait(cache, ad[0].id, version, &ad[0].a, &h, diag,
                                     sizeof(diag))) {
            fprintf(stderr, "bench_engine: %s\n", diag);
            return 1;
        }
        double ms = (now_s() - t0) * 1e3;
        miss_ms = ms < miss_ms ? ms : miss_ms;
        slora_cache_release(cache, h);
    }
    slora_cache_retire(cache, ad[0].id, "1", &ad[0].a);

    /* 1. single stream, base vs warm adapter vs a mix of two warm ones. */
    slora_cache_warm(cache, ad[0].id, "1", &ad[0].a, diag, sizeof(diag));
    slora_cache_warm(cache, ad[1].id, "1", &ad[1].a, diag, sizeof(diag));
    double base_tps, ad_tps, mix_tps;
    best_single(e, m, who, tokens, 5, &base_tps, &ad_tps, &mix_tps);

    /* 2. aggregate at 1, 4, 16 base streams. */
    int streams[3] = {1, 4, 16};
    double agg[3];
    for (int i = 0; i < 3; i++)
        agg[i] = run_streams(e, m, streams[i], NULL, 0, 1, tokens, NULL);

    /* 3. 16 streams over 1, 16, 256 adapters, cache holding 8. */
    int spreads[3] = {1, 16, 256};
    double spread_tps[3];
    uint64_t spread_miss[3], spread_evict[3];
    for (int i = 0; i < 3; i++) {
        struct slora_cache_stats before, after;
        slora_cache_stats(cache, &before);
        /* 256 adapters: 16 rounds of 16 streams, each on a new adapter. */
        double sum = 0;
        int rounds = spreads[i] > 16 ? spreads[i] / 16 : 1;
        for (int k = 0; k < rounds; k++)
            sum += run_streams(e, m, 16, who + 16 * k, spreads[i] > 16 ? 16 : spreads[i], 1,
                               tokens, NULL);
        slora_cache_stats(cache, &after);
        spread_tps[i] = sum / rounds;
        spread_miss[i] = after.misses - before.misses;
        spread_evict[i] = after.evictions - before.evictions;
    }

    const struct slora_shape *s = &m->cfg.shape;
    double overhead = (base_tps - ad_tps) / base_tps * 100;
    FILE *md = md_path ? fopen(md_path, "w") : stdout;
    fprintf(md, "## Engine (in process, %d compute thread%s)\n\n", threads, threads > 1 ? "s" : "");
    fprintf(md, "Model: dim %d, hidden %d, %d layers, vocab %d (stories110M-shaped, f32). "
                "Adapter: Q,V Tucker-3D r=8, %.1f MiB of W'. %d decoded tokens per stream, greedy; "
                "single-stream figures are the best of 5 interleaved base/adapter runs. The machine "
                "(2 cores) is shared with other jobs, so absolute numbers are noisy.\n\n",
            s->dim, s->hidden_dim, s->n_layers, s->vocab_size, entry / 1048576.0, tokens);
    fprintf(md, "| measure | value | goal |\n|---|---:|---|\n");
    fprintf(md, "| single-stream decode, base | %.2f tok/s | |\n", base_tps);
    fprintf(md, "| single-stream decode, adapter (warm cache) | %.2f tok/s | |\n", ad_tps);
    fprintf(md, "| adapter overhead | %.1f %% | <= 3 %% %s |\n", overhead,
            overhead <= 3 ? "met" : "MISSED");
    fprintf(md, "| single-stream decode, mix of 2 adapters (warm) | %.2f tok/s (%.1f %% below "
                "base) | |\n",
            mix_tps, (base_tps - mix_tps) / base_tps * 100);
    for (int i = 0; i < 3; i++)
        fprintf(md, "| aggregate decode, %d base stream%s | %.2f tok/s (%.2fx single) | %s |\n",
                streams[i], streams[i] > 1 ? "s" : "", agg[i], agg[i] / agg[0],
                i == 2 ? (agg[2] >= 3 * agg[0] ? ">= 3x met" : ">= 3x MISSED") : "");
    for (int i = 0; i < 3; i++)
        fprintf(md, "| 16 streams over %d adapter%s (cache holds 8) | %.2f tok/s, %llu misses, "
                    "%llu evictions | |\n",
                spreads[i], spreads[i] > 1 ? "s" : "", spread_tps[i],
                (unsigned long long)spread_miss[i], (unsigned long long)spread_evict[i]);
    fprintf(md, "| cache miss (generate dW + merge W') | %.1f ms | |\n", miss_ms);
    if (md != stdout)
        fclose(md);
    if (json_path) {
        FILE *j = fopen(json_path, "w");
        fprintf(j, "{\"threads\": %d, \"tokens\": %d, \"base_tok_s\": %.3f, \"adapter_tok_s\": %.3f, "
                   "\"mix2_tok_s\": %.3f, "
                   "\"adapter_overhead_pct\": %.2f, \"aggregate_tok_s\": {\"1\": %.3f, \"4\": %.3f, "
                   "\"16\": %.3f}, \"spread_tok_s\": {\"1\": %.3f, \"16\": %.3f, \"256\": %.3f}, "
                   "\"spread_misses\": {\"1\": %llu, \"16\": %llu, \"256\": %llu}, "
                   "\"cache_miss_ms\": %.2f, \"entry_bytes\": %zu}\n",
                threads, tokens, base_tps, ad_tps, mix_tps, overhead, agg[0], agg[1], agg[2], spread_tps[0],
                spread_tps[1], spread_tps[2], (unsigned long long)spread_miss[0],
                (unsigned long long)spread_miss[1], (unsigned long long)spread_miss[2], miss_ms,
                entry);
        fclose(j);
    }
    slora_engine_free(e);
    slora_cache_free(cache);
    for (int i = 0; i < N_ADAPTERS; i++)
        free(ad[i].params);
    free(ad);
    slora_model_free(m);
    return 0;
}
