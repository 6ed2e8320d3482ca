/* engine_util.h - the engine suites' harness (check_engine.c,
 * check_engine_mix.c): stories260K, in-test adapters expanded by a
 * deterministic fake generator, job records with a greedy step callback,
 * the gate that holds the engine thread, and the fixture. Test code only. */
#ifndef SLORA_ENGINE_UTIL_H
#define SLORA_ENGINE_UTIL_H

#include <slora/engine.h>
#include <slora/error.h>

#include "testutil.h"

#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* prompts start with llama2.c's BOS id (a .bin model carries no vocabulary) */
#define BOS 1

#define MODEL_PATH "models/stories260K.bin"
#define MAX_GEN 64

static struct slora_model *model;
static struct slora_cache *cache;
static struct slora_engine *engine;
static int vocab, seq_len;

static inline int fake_gen(const struct slora_adapter *a, float *out, int n_threads, char *diag,
                           size_t diag_len)
{
    (void)n_threads, (void)diag, (void)diag_len;
    for (int64_t i = 0; i < a->total; i++)
        out[i] = a->cfg.alpha * (float)(i % 7 - 3);
    return 0;
}

/* An adapter on wq and wv of every layer. Tests keep theirs static: the
 * cache holds references until teardown frees it. */
struct fake {
    struct slora_adapter a;
    struct slora_target t[2 * 8];
    char id[32];
};

static inline void fake_init(struct fake *f, int i, float alpha)
{
    memset(f, 0, sizeof(*f));
    f->a.refcount = 1;
    f->a.cfg.base = model->cfg.shape;
    f->a.cfg.alpha = alpha;
    snprintf(f->id, sizeof(f->id), "t%d/a", i);
    int n_layers = model->cfg.shape.n_layers;
    ck_assert_int_le(n_layers, 8);
    for (int l = 0; l < n_layers; l++)
        for (int k = 0; k < 2; k++) {
            enum slora_module m = k ? SLORA_MOD_WV : SLORA_MOD_WQ;
            int64_t rows, cols;
            slora_arch_module_dims(&model->cfg.shape, m, &rows, &cols);
            f->t[f->a.n_targets++] = (struct slora_target){l, m, rows, cols, f->a.total};
            f->a.total += rows * cols;
        }
    f->a.targets = f->t;
}

/* One job's record. */
struct run {
    int tokens[MAX_GEN];
    int n;
    int max_tokens;
    float min_margin;
    int cancel_at; /* cancel itself after this many tokens */
    bool block;    /* first step waits for the gate */
    bool all_logits;
    float *rows; /* (rows seen, vocab) when capturing logits instead of sampling */
    int row_pos[MAX_GEN];
    int n_rows;
    uint64_t ticket;
    struct slora_engine_result res;
    bool done;
    int done_order;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool gate_closed, entered;
static int n_done;

/* Calls logged for the batching test: (engine step, base and delta
 * products so far, decode?) */
struct call {
    uint64_t step, base, delta;
    bool decode;
};
static struct call calls[4096];
static int n_calls;
static bool log_calls;

static inline int greedy_step(void *arg, float *logits, int pos, bool *stop)
{
    struct run *r = arg;
    if (r->rows) {
        /* Logits only: -1 at the last prompt position ends the job. */
        memcpy(r->rows + (size_t)r->n_rows * vocab, logits, (size_t)vocab * sizeof(float));
        r->row_pos[r->n_rows++] = pos;
        return -1;
    }
    int best = 0;
    float second = -INFINITY;
    for (int v = 1; v < vocab; v++) {
        if (logits[v] > logits[best]) {
            second = logits[best];
            best = v;
        } else if (logits[v] > second) {
            second = logits[v];
        }
    }
    if (r->n == 0 || logits[best] - second < r->min_margin)
        r->min_margin = logits[best] - second;
    r->tokens[r->n++] = best;
    *stop = r->n >= r->max_tokens;
    if (log_calls) {
        struct slora_engine_stats es;
        slora_engine_stats(engine, &es);
        pthread_mutex_lock(&lock);
        if (n_calls < 4096)
            calls[n_calls++] =
                (struct call){es.steps, es.base_products, es.delta_products, pos >= 2};
        pthread_mutex_unlock(&lock);
    }
    if (r->cancel_at && r->n == r->cancel_at)
        slora_engine_cancel(engine, r->ticket);
    if (r->block && r->n == 1) {
        pthread_mutex_lock(&lock);
        entered = true;
        pthread_cond_broadcast(&cond);
        while (gate_closed)
            pthread_cond_wait(&cond, &lock);
        pthread_mutex_unlock(&lock);
    }
    return best;
}

static inline void on_done(void *arg, const struct slora_engine_result *res)
{
    struct run *r = arg;
    pthread_mutex_lock(&lock);
    r->res = *res;
    r->done = true;
    r->done_order = n_done++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

/* Adapter f (version "1") with weight w in a job's mix. */
static inline struct slora_engine_adapter term(const struct fake *f, float w)
{
    return (struct slora_engine_adapter){f->id, "1", (struct slora_adapter *)&f->a, w};
}

static inline int submit_mix(struct run *r, const char *tenant,
                             const struct slora_engine_adapter *ads, int n_ads, const int *prompt,
                             int n_prompt, slora_engine_step_cb step)
{
    struct slora_engine_job job = {
        .tenant = tenant,
        .adapters = ads,
        .n_adapters = n_ads,
        .prompt = prompt,
        .n_prompt = n_prompt,
        .all_logits = r->all_logits,
        .step = step,
        .done = on_done,
        .arg = r,
    };
    return slora_engine_submit(engine, &job, &r->ticket);
}

static inline int submit(struct run *r, const char *tenant, const struct fake *f, const int *prompt,
                         int n_prompt)
{
    struct slora_engine_adapter ad = f ? term(f, 1.0f) : (struct slora_engine_adapter){0};
    return submit_mix(r, tenant, &ad, f ? 1 : 0, prompt, n_prompt, greedy_step);
}

static inline void wait_done(struct run *r)
{
    pthread_mutex_lock(&lock);
    while (!r->done)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
}

static inline void wait_entered(void)
{
    pthread_mutex_lock(&lock);
    while (!entered)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
}

static inline void set_gate(bool closed)
{
    pthread_mutex_lock(&lock);
    gate_closed = closed;
    entered = false;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

/* Occupy the engine thread with a job blocked in its first step, so that
 * jobs submitted next are all admitted together once set_gate(false). */
static inline void hold(struct run *blocker)
{
    memset(blocker, 0, sizeof(*blocker));
    blocker->max_tokens = 1;
    blocker->block = true;
    set_gate(true);
    ck_assert_int_eq(submit(blocker, "z", NULL, (const int[]){BOS, 5}, 2), 0);
    wait_entered();
}

static inline void start_with(const struct slora_engine_config *ec, slora_cache_gen_fn gen)
{
    struct slora_cache_config cc = {.budget_bytes = SLORA_CACHE_DEFAULT_BYTES, .gen = gen};
    cache = slora_cache_new(model, &cc);
    ck_assert_ptr_nonnull(cache);
    engine = slora_engine_new(model, cache, ec);
    ck_assert_ptr_nonnull(engine);
}

static inline void start(int max_batch, int max_queue, int tenant_max)
{
    struct slora_engine_config ec = {.threads = 1,
                                     .max_batch = max_batch,
                                     .max_queue = max_queue,
                                     .tenant_max_seqs = tenant_max};
    start_with(&ec, fake_gen);
}

static inline void setup(void)
{
    char diag[256];
    ck_assert_msg(!slora_model_load(MODEL_PATH, NULL, &model, diag, sizeof(diag)), "%s", diag);
    vocab = model->cfg.shape.vocab_size;
    seq_len = model->cfg.seq_len;
    n_done = 0;
    n_calls = 0;
    log_calls = false;
    set_gate(false);
}

static inline void teardown(void)
{
    slora_engine_free(engine);
    engine = NULL;
    if (cache) {
        struct slora_cache_stats st;
        slora_cache_stats(cache, &st);
        ck_assert_uint_eq(st.in_use, 0);
    }
    slora_cache_free(cache);
    cache = NULL;
    slora_model_free(model);
    model = NULL;
}

/* Delta products per step with `groups` adapter groups (wq and wv adapted
 * in every layer); every step runs each base matrix once: 7 per layer plus
 * the classifier. */
static inline uint64_t expected_delta(int groups)
{
    return (uint64_t)model->cfg.shape.n_layers * 2 * groups;
}

static inline uint64_t expected_base(void)
{
    return (uint64_t)model->cfg.shape.n_layers * 7 + 1;
}

/* Step callback keeping every step's logits in r->rows, decoding greedily. */
static inline int record_step(void *arg, float *logits, int pos, bool *stop)
{
    struct run *r = arg;
    memcpy(r->rows + (size_t)r->n_rows * vocab, logits, (size_t)vocab * sizeof(float));
    r->row_pos[r->n_rows++] = pos;
    int best = 0;
    for (int v = 1; v < vocab; v++)
        if (logits[v] > logits[best])
            best = v;
    r->tokens[r->n++] = best;
    *stop = r->n >= r->max_tokens;
    return best;
}

#endif
