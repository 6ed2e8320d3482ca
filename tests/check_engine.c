/* check_engine.c - continuous batching on stories260K: batching never
 * changes a sequence's tokens (isolation), the BLAS shim sees one GEMM per
 * shared matrix and one per adapter group per step, prefill logits,
 * context limit, cancellation, queue and tenant limits, round-robin
 * admission, per-tenant token counters, KV caches reused across jobs, and
 * per-request mixes (weights, a mixed batch == each alone, one cache entry
 * per adapter, a failing member, generation limits, refused mixes).
 *
 * Adapters are built in-test (wq and wv of every layer) and expanded by a
 * deterministic fake generator (dW[i] = alpha * (i % 7 - 3)): the engine
 * is tested apart from the SuperLoRA maths. Exact-token comparisons use
 * greedy decoding on prompts whose top-2 logit margin exceeds 1e-3 at every
 * step, because batching changes summation order.
 */
#include <slora/blas.h>
#include <slora/engine.h>
#include <slora/error.h>

#include "testutil.h"

#include <check.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
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

static int fake_gen(const struct slora_adapter *a, float *out, int n_threads, char *diag,
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

static void fake_init(struct fake *f, int i, float alpha)
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
    int cancel_at;      /* cancel itself after this many tokens */
    bool block;         /* first step waits for the gate */
    bool all_logits;
    float *rows;        /* (rows seen, vocab) when capturing logits instead of sampling */
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

static int greedy_step(void *arg, float *logits, int pos, bool *stop)
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

static void on_done(void *arg, const struct slora_engine_result *res)
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
static struct slora_engine_adapter term(const struct fake *f, float w)
{
    return (struct slora_engine_adapter){f->id, "1", (struct slora_adapter *)&f->a, w};
}

static int submit_mix(struct run *r, const char *tenant, const struct slora_engine_adapter *ads,
                      int n_ads, const int *prompt, int n_prompt, slora_engine_step_cb step)
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

static int submit(struct run *r, const char *tenant, const struct fake *f, const int *prompt,
                  int n_prompt)
{
    struct slora_engine_adapter ad = f ? term(f, 1.0f) : (struct slora_engine_adapter){0};
    return submit_mix(r, tenant, &ad, f ? 1 : 0, prompt, n_prompt, greedy_step);
}

static void wait_done(struct run *r)
{
    pthread_mutex_lock(&lock);
    while (!r->done)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
}

static void wait_entered(void)
{
    pthread_mutex_lock(&lock);
    while (!entered)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
}

static void set_gate(bool closed)
{
    pthread_mutex_lock(&lock);
    gate_closed = closed;
    entered = false;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

/* Occupy the engine thread with a job blocked in its first step, so that
 * jobs submitted next are all admitted together once set_gate(false). */
static void hold(struct run *blocker)
{
    memset(blocker, 0, sizeof(*blocker));
    blocker->max_tokens = 1;
    blocker->block = true;
    set_gate(true);
    ck_assert_int_eq(submit(blocker, "z", NULL, (const int[]){BOS, 5}, 2), 0);
    wait_entered();
}

static void start_with(const struct slora_engine_config *ec, slora_cache_gen_fn gen)
{
    struct slora_cache_config cc = {.budget_bytes = SLORA_CACHE_DEFAULT_BYTES, .gen = gen};
    cache = slora_cache_new(model, &cc);
    ck_assert_ptr_nonnull(cache);
    engine = slora_engine_new(model, cache, ec);
    ck_assert_ptr_nonnull(engine);
}

static void start(int max_batch, int max_queue, int tenant_max)
{
    struct slora_engine_config ec = {.threads = 1,
                                     .max_batch = max_batch,
                                     .max_queue = max_queue,
                                     .tenant_max_seqs = tenant_max};
    start_with(&ec, fake_gen);
}

static void setup(void)
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

static void teardown(void)
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

/* Run one job alone and wait for it. */
static void run_alone(struct run *r, const struct fake *f, const int *prompt, int n_prompt,
                      int max_tokens)
{
    memset(r, 0, sizeof(*r));
    r->max_tokens = max_tokens;
    ck_assert_int_eq(submit(r, "solo", f, prompt, n_prompt), 0);
    wait_done(r);
    ck_assert_int_eq(r->res.err, 0);
}

#define N_ADAPTERS 8
#define N_BASE 3
#define N_SEQS (N_ADAPTERS + N_BASE)
#define ISO_TOKENS 12

START_TEST(isolation)
{
    start(16, 64, 0);
    static struct fake f[N_ADAPTERS];
    for (int i = 0; i < N_ADAPTERS; i++)
        fake_init(&f[i], i, 0.02f * (float)(i + 1));
    int prompts[N_SEQS][2];
    struct run alone[N_SEQS], base_same, batch[N_SEQS];
    int differ = 0;
    int next = 40;
    for (int s = 0; s < N_SEQS; s++) {
        const struct fake *fs = s < N_ADAPTERS ? &f[s] : NULL;
        /* First candidate prompt whose greedy path is unambiguous. */
        for (int tries = 0;; tries++) {
            ck_assert_int_lt(tries, 40);
            prompts[s][0] = BOS;
            prompts[s][1] = next++;
            run_alone(&alone[s], fs, prompts[s], 2, ISO_TOKENS);
            if (alone[s].min_margin > 1e-3f)
                break;
        }
        ck_assert_int_eq(alone[s].n, ISO_TOKENS);
        if (fs) {
            run_alone(&base_same, NULL, prompts[s], 2, ISO_TOKENS);
            differ += memcmp(base_same.tokens, alone[s].tokens, sizeof(alone[s].tokens)) != 0;
        }
    }
    /* The adapters must matter, or isolation proves nothing. */
    ck_assert_int_ge(differ, N_ADAPTERS / 2);

    /* Hold the engine so every sequence joins one batch, then release it. */
    struct run blocker;
    hold(&blocker);
    struct slora_engine_stats es;
    slora_engine_stats(engine, &es);
    uint64_t steps_before = es.steps;
    for (int s = 0; s < N_SEQS; s++) {
        memset(&batch[s], 0, sizeof(batch[s]));
        batch[s].max_tokens = ISO_TOKENS;
        char tenant[16];
        snprintf(tenant, sizeof(tenant), "t%d", s);
        ck_assert_int_eq(submit(&batch[s], tenant, s < N_ADAPTERS ? &f[s] : NULL, prompts[s], 2),
                         0);
    }
    set_gate(false);
    for (int s = 0; s < N_SEQS; s++) {
        wait_done(&batch[s]);
        ck_assert_int_eq(batch[s].res.err, 0);
        ck_assert_int_eq(batch[s].n, ISO_TOKENS);
        for (int i = 0; i < ISO_TOKENS; i++)
            ck_assert_msg(batch[s].tokens[i] == alone[s].tokens[i],
                          "sequence %d token %d: batched %d, alone %d", s, i, batch[s].tokens[i],
                          alone[s].tokens[i]);
    }
    /* One prefill step for all of them, then one decode step per token. */
    slora_engine_stats(engine, &es);
    ck_assert_uint_eq(es.steps - steps_before, ISO_TOKENS);
}
END_TEST

/* Delta products per step with `groups` adapter groups (wq and wv adapted
 * in every layer); every step runs each base matrix once: 7 per layer plus
 * the classifier. */
static uint64_t expected_delta(int groups)
{
    return (uint64_t)model->cfg.shape.n_layers * 2 * groups;
}

static uint64_t expected_base(void)
{
    return (uint64_t)model->cfg.shape.n_layers * 7 + 1;
}

/* Find two consecutive steps where every one of n sequences decoded and
 * return the products of the second. */
static bool steady_step(int n, uint64_t *base, uint64_t *delta)
{
    for (int i = 0; i + 2 * n <= n_calls; i++) {
        bool ok = true;
        for (int k = 0; k < 2 * n && ok; k++)
            ok = calls[i + k].decode && calls[i + k].step == calls[i].step + (uint64_t)(k / n);
        if (ok && (i + 2 * n == n_calls || calls[i + 2 * n].step != calls[i + n].step)) {
            if (i > 0 && calls[i - 1].step == calls[i].step)
                continue;
            *base = calls[i + n].base - calls[i].base;
            *delta = calls[i + n].delta - calls[i].delta;
            return true;
        }
    }
    return false;
}

START_TEST(batch_groups)
{
    start(16, 64, 0);
    static struct fake fa, fb;
    fake_init(&fa, 0, 0.01f);
    fake_init(&fb, 1, 0.03f);
    char diag[128];
    ck_assert_int_eq(slora_cache_warm(cache, fa.id, "1", &fa.a, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_cache_warm(cache, fb.id, "1", &fb.a, diag, sizeof(diag)), 0);

    /* 4 base + 2 on A + 2 on B: one base product per matrix, two delta groups */
    const struct fake *who[8] = {NULL, NULL, NULL, NULL, &fa, &fa, &fb, &fb};
    struct run r[8];
    int prompts[8][2];
    struct run blocker;
    hold(&blocker);
    log_calls = true;
    for (int s = 0; s < 8; s++) {
        memset(&r[s], 0, sizeof(r[s]));
        r[s].max_tokens = 24;
        prompts[s][0] = BOS;
        prompts[s][1] = 60 + s;
        ck_assert_int_eq(submit(&r[s], "t", who[s], prompts[s], 2), 0);
    }
    set_gate(false);
    for (int s = 0; s < 8; s++)
        wait_done(&r[s]);
    uint64_t base, delta;
    ck_assert_msg(steady_step(8, &base, &delta), "no two steps decoded all 8 sequences");
    ck_assert_uint_eq(base, expected_base());
    ck_assert_uint_eq(delta, expected_delta(2));

    /* Base only: every matrix is one product over the batch, no deltas. */
    log_calls = false;
    hold(&blocker);
    n_calls = 0;
    log_calls = true;
    for (int s = 0; s < 8; s++) {
        memset(&r[s], 0, sizeof(r[s]));
        r[s].max_tokens = 24;
        ck_assert_int_eq(submit(&r[s], "t", NULL, prompts[s], 2), 0);
    }
    set_gate(false);
    for (int s = 0; s < 8; s++)
        wait_done(&r[s]);
    ck_assert_msg(steady_step(8, &base, &delta), "no two steps decoded all 8 sequences");
    ck_assert_uint_eq(base, expected_base());
    ck_assert_uint_eq(delta, 0);
}
END_TEST

START_TEST(prompt_logits)
{
    start(4, 8, 0);
    static struct fake f;
    fake_init(&f, 0, 0.02f);
    const int prompt[6] = {BOS, 100, 200, 300, 400, 50};
    struct run all;
    memset(&all, 0, sizeof(all));
    all.all_logits = true;
    all.rows = malloc(6 * (size_t)vocab * sizeof(float));
    ck_assert_int_eq(submit(&all, "t", &f, prompt, 6), 0);
    wait_done(&all);
    ck_assert_int_eq(all.res.err, 0);
    ck_assert_int_eq(all.n_rows, 6);
    ck_assert_int_eq(all.res.n_prompt, 6);
    ck_assert_int_eq(all.res.n_completion, 0);
    for (int p = 0; p < 6; p++) {
        ck_assert_int_eq(all.row_pos[p], p);
        /* Row p equals the last-position logits of the prefix prompt[0..p]. */
        struct run last;
        memset(&last, 0, sizeof(last));
        last.rows = malloc((size_t)vocab * sizeof(float));
        ck_assert_int_eq(submit(&last, "t", &f, prompt, p + 1), 0);
        wait_done(&last);
        ck_assert_int_eq(last.n_rows, 1);
        ck_assert_int_eq(last.row_pos[0], p);
        const float *want = last.rows;
        const float *got = all.rows + (size_t)p * vocab;
        float scale = 0, diff = 0;
        for (int v = 0; v < vocab; v++) {
            scale = fmaxf(scale, fabsf(want[v]));
            diff = fmaxf(diff, fabsf(got[v] - want[v]));
        }
        ck_assert_msg(diff <= 1e-5f * scale, "position %d: max diff %g", p, diff);
        free(last.rows);
    }
    free(all.rows);
}
END_TEST

START_TEST(context_limit)
{
    start(2, 4, 0);
    int n = seq_len - 2;
    int *prompt = malloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++)
        prompt[i] = i ? 3 + i % (vocab - 3) : BOS;
    struct run r;
    run_alone(&r, NULL, prompt, n, MAX_GEN);
    ck_assert_int_eq(r.res.n_prompt, n);
    ck_assert_int_eq(r.res.n_completion, 2); /* positions seq_len-2 and seq_len-1 */
    ck_assert(r.res.length);
    free(prompt);
}
END_TEST

START_TEST(cancel)
{
    start(4, 8, 0);
    const int prompt[2] = {BOS, 77};
    struct run r;
    memset(&r, 0, sizeof(r));
    r.max_tokens = MAX_GEN;
    r.cancel_at = 3;
    ck_assert_int_eq(submit(&r, "t", NULL, prompt, 2), 0);
    wait_done(&r);
    ck_assert_int_eq(r.res.err, SLORA_ECANCELED);
    ck_assert_int_eq(r.res.n_completion, 3);
    ck_assert_int_eq(r.n, 3);
    ck_assert_ptr_nonnull(strstr(r.res.diag, "canceled"));
    struct slora_engine_stats es;
    slora_engine_stats(engine, &es);
    ck_assert_uint_eq(es.canceled, 1);
    ck_assert_int_eq(es.running, 0);
    slora_engine_cancel(engine, r.ticket); /* finished: ignored */
}
END_TEST

/* Opens the gate once slora_engine_stop raised its flag (so the blocked
 * job is canceled, not resumed). */
static void *open_gate_when_stopping(void *arg)
{
    (void)arg;
    struct slora_engine_stats es;
    for (slora_engine_stats(engine, &es); !es.stopping; slora_engine_stats(engine, &es))
        sched_yield();
    set_gate(false);
    return NULL;
}

/* Shutdown: stop cancels the running and the queued job (done callbacks
 * run before it returns), later submits are refused, stop is idempotent. */
START_TEST(stop_cancels_everything)
{
    start(1, 8, 0);
    const int prompt[2] = {BOS, 42};
    struct run blocker, queued, late;
    memset(&blocker, 0, sizeof(blocker));
    memset(&queued, 0, sizeof(queued));
    memset(&late, 0, sizeof(late));
    blocker.max_tokens = MAX_GEN;
    blocker.block = true;
    queued.max_tokens = 2;
    set_gate(true);
    ck_assert_int_eq(submit(&blocker, "x", NULL, prompt, 2), 0);
    wait_entered();
    ck_assert_int_eq(submit(&queued, "y", NULL, prompt, 2), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, open_gate_when_stopping, NULL), 0);
    slora_engine_stop(engine);
    pthread_join(t, NULL);
    ck_assert(blocker.done && queued.done);
    ck_assert_int_eq(blocker.res.err, SLORA_ECANCELED);
    ck_assert_int_eq(blocker.n, 1);
    ck_assert_int_eq(queued.res.err, SLORA_ECANCELED);
    ck_assert_int_eq(queued.n, 0);
    ck_assert_int_eq(submit(&late, "y", NULL, prompt, 2), SLORA_EBUSY);
    slora_engine_stop(engine);
    ck_assert(!late.done);
}
END_TEST

START_TEST(queue_full)
{
    start(1, 2, 0);
    const int prompt[2] = {BOS, 90};
    struct run blocker, q[3];
    memset(&blocker, 0, sizeof(blocker));
    memset(q, 0, sizeof(q));
    blocker.max_tokens = 2;
    blocker.block = true;
    set_gate(true);
    ck_assert_int_eq(submit(&blocker, "x", NULL, prompt, 2), 0);
    wait_entered();
    for (int i = 0; i < 3; i++)
        q[i].max_tokens = 2;
    ck_assert_int_eq(submit(&q[0], "y", NULL, prompt, 2), 0);
    ck_assert_int_eq(submit(&q[1], "y", NULL, prompt, 2), 0);
    ck_assert_int_eq(submit(&q[2], "y", NULL, prompt, 2), SLORA_EBUSY);
    struct slora_engine_stats es;
    slora_engine_stats(engine, &es);
    ck_assert_int_eq(es.waiting, 2);
    ck_assert_uint_eq(es.rejected_busy, 1);
    slora_engine_cancel(engine, q[1].ticket); /* a queued job can be canceled too */
    set_gate(false);
    wait_done(&blocker);
    wait_done(&q[0]);
    wait_done(&q[1]);
    ck_assert_int_eq(blocker.res.err, 0);
    ck_assert_int_eq(q[0].res.err, 0);
    ck_assert_int_eq(q[0].n, 2);
    ck_assert_int_eq(q[1].res.err, SLORA_ECANCELED);
    ck_assert_int_eq(q[1].res.n_prompt, 0);
    ck_assert_int_eq(q[1].n, 0);
}
END_TEST

struct tenant_count {
    const char *name;
    uint64_t prompt, completion;
    int seqs;
    bool seen;
};

static void count_tenant(void *arg, const struct slora_engine_tenant_stats *t)
{
    struct tenant_count *c = arg;
    if (strcmp(t->tenant, c->name))
        return;
    c->seen = true;
    c->prompt = t->prompt_tokens;
    c->completion = t->completion_tokens;
    c->seqs = t->sequences;
}

START_TEST(tenant_limit)
{
    start(1, 8, 2);
    const int prompt[3] = {BOS, 91, 92};
    struct run r[5];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 5; i++)
        r[i].max_tokens = 4;
    r[0].block = true;
    set_gate(true);
    ck_assert_int_eq(submit(&r[0], "a", NULL, prompt, 3), 0);
    wait_entered();
    ck_assert_int_eq(submit(&r[1], "a", NULL, prompt, 3), 0);
    ck_assert_int_eq(submit(&r[2], "a", NULL, prompt, 3), SLORA_EQUOTA);
    ck_assert_int_eq(submit(&r[3], "b", NULL, prompt, 3), 0);
    struct slora_engine_stats es;
    slora_engine_stats(engine, &es);
    ck_assert_uint_eq(es.rejected_quota, 1);
    set_gate(false);
    wait_done(&r[0]);
    wait_done(&r[1]);
    wait_done(&r[3]);
    /* The limit counts live sequences: "a" may submit again. */
    ck_assert_int_eq(submit(&r[4], "a", NULL, prompt, 3), 0);
    wait_done(&r[4]);
    struct tenant_count c = {.name = "a"};
    slora_engine_tenants(engine, count_tenant, &c);
    ck_assert(c.seen);
    ck_assert_uint_eq(c.prompt, 9);
    ck_assert_uint_eq(c.completion, 12);
    ck_assert_int_eq(c.seqs, 0);
}
END_TEST

START_TEST(round_robin)
{
    start(1, 8, 0);
    const int prompt[2] = {BOS, 93};
    struct run blocker, a[3], b[2];
    memset(&blocker, 0, sizeof(blocker));
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    blocker.max_tokens = 2;
    blocker.block = true;
    set_gate(true);
    ck_assert_int_eq(submit(&blocker, "z", NULL, prompt, 2), 0);
    wait_entered();
    for (int i = 0; i < 3; i++) {
        a[i].max_tokens = 2;
        ck_assert_int_eq(submit(&a[i], "a", NULL, prompt, 2), 0);
    }
    for (int i = 0; i < 2; i++) {
        b[i].max_tokens = 2;
        ck_assert_int_eq(submit(&b[i], "b", NULL, prompt, 2), 0);
    }
    set_gate(false);
    for (int i = 0; i < 3; i++)
        wait_done(&a[i]);
    for (int i = 0; i < 2; i++)
        wait_done(&b[i]);
    /* One slot: jobs run one at a time, alternating tenants while both wait,
     * FIFO within a tenant; a's third job is last. */
    ck_assert_int_eq(blocker.done_order, 0);
    ck_assert_int_eq(a[2].done_order, 5);
    ck_assert_int_lt(a[0].done_order, a[1].done_order);
    ck_assert_int_lt(b[0].done_order, b[1].done_order);
    ck_assert_int_eq(abs(a[0].done_order - b[0].done_order), 1);
    ck_assert_int_eq(abs(a[1].done_order - b[1].done_order), 1);
    ck_assert_int_lt(a[0].done_order, b[1].done_order);
    ck_assert_int_lt(b[0].done_order, a[1].done_order);
}
END_TEST

/* fake_gen once the generation gate opens (set_gate(false)). */
static int gated_gen(const struct slora_adapter *a, float *out, int n_threads, char *diag,
                     size_t diag_len)
{
    pthread_mutex_lock(&lock);
    while (gate_closed)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    return fake_gen(a, out, n_threads, diag, diag_len);
}

/* An engine of max_batch slots whose generations wait for the gate,
 * closed here. */
static void start_gated(int max_batch, int tenant_max_acquiring)
{
    struct slora_engine_config ec = {.threads = 1,
                                     .max_batch = max_batch,
                                     .max_queue = 8,
                                     .tenant_max_acquiring = tenant_max_acquiring};
    start_with(&ec, gated_gen);
    set_gate(true);
}

/* Tenant b's base job runs to completion beside the held generations,
 * which leave these many sequences acquiring, running and waiting. */
static void base_job_passes(const int *prompt, int acquiring, int running, int waiting)
{
    struct run b;
    memset(&b, 0, sizeof(b));
    b.max_tokens = 2;
    ck_assert_int_eq(submit(&b, "b", NULL, prompt, 2), 0);
    wait_done(&b);
    ck_assert_int_eq(b.res.err, 0);
    struct slora_engine_stats es;
    slora_engine_stats(engine, &es);
    ck_assert_int_eq(es.acquiring, acquiring);
    ck_assert_int_eq(es.running, running);
    ck_assert_int_eq(es.waiting, waiting);
}

/* Two slots, at most one sequence per tenant waiting for a generation:
 * tenant a's three misses hold one slot while their generations are held
 * back, the other two wait in a's queue (not refused), and tenant b's job,
 * submitted last, takes the free slot and finishes meanwhile. Without the
 * limit a's misses would hold both slots and b would wait for their
 * generations. */
START_TEST(generation_limit)
{
    start_gated(2, 1);
    const int prompt[2] = {BOS, 94};
    static struct fake f[3];
    struct run a[3];
    memset(a, 0, sizeof(a));
    for (int i = 0; i < 3; i++) {
        fake_init(&f[i], i, 1.0f);
        a[i].max_tokens = 2;
        ck_assert_int_eq(submit(&a[i], "a", &f[i], prompt, 2), 0);
    }
    base_job_passes(prompt, 1, 1, 2);
    for (int i = 0; i < 3; i++)
        ck_assert(!a[i].done);
    set_gate(false);
    for (int i = 0; i < 3; i++) {
        wait_done(&a[i]);
        ck_assert_int_eq(a[i].res.err, 0);
        ck_assert_int_eq(a[i].n, 2);
    }
    struct slora_engine_stats es;
    slora_engine_stats(engine, &es);
    ck_assert_int_eq(es.acquiring, 0);
}
END_TEST

static const struct {
    int n;
    int first;
    int bad_at; /* index given token `bad`, or -1 */
    int bad;
} bad_prompts[] = {
    {0, 1, -1, 0},       /* empty */
    {2, 1, 1, 512},      /* token == vocab */
    {2, 1, 1, -1},       /* negative token */
    {512, 1, -1, 0},     /* n_prompt == seq_len */
};

/* Step callback of kv_reuse: keeps every step's logits, decodes greedily. */
static int record_step(void *arg, float *logits, int pos, bool *stop)
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

static void run_recorded(struct run *r, const int *prompt, int n_prompt, int max_tokens)
{
    memset(r, 0, sizeof(*r));
    r->max_tokens = max_tokens;
    r->rows = malloc((size_t)max_tokens * vocab * sizeof(float));
    ck_assert_ptr_nonnull(r->rows);
    struct slora_engine_job job = {.tenant = "t", .prompt = prompt, .n_prompt = n_prompt,
                                   .step = record_step, .done = on_done, .arg = r};
    ck_assert_int_eq(slora_engine_submit(engine, &job, &r->ticket), 0);
    wait_done(r);
    ck_assert_int_eq(r->res.err, 0);
    ck_assert_int_eq(r->n_rows, max_tokens);
}

/* One batch slot, so each job runs in the KV cache its predecessor left:
 * after a long job filled positions far past a short one's, the short job
 * must see exactly the logits it saw in a fresh (zeroed) cache. */
START_TEST(kv_reuse)
{
    start(1, 4, 0);
    const int prompt[3] = {BOS, 100, 200};
    int long_prompt[40];
    for (int i = 0; i < 40; i++)
        long_prompt[i] = i ? 3 + (i * 37) % (vocab - 3) : BOS;
    struct run fresh, filler, reused;
    run_recorded(&fresh, prompt, 3, 16);
    run_recorded(&filler, long_prompt, 40, MAX_GEN);
    run_recorded(&reused, prompt, 3, 16);
    ck_assert_int_gt(filler.row_pos[MAX_GEN - 1], fresh.row_pos[15]);
    ck_assert_mem_eq(reused.row_pos, fresh.row_pos, sizeof(fresh.row_pos));
    ck_assert_int_eq(memcmp(reused.rows, fresh.rows, 16 * (size_t)vocab * sizeof(float)), 0);
    free(fresh.rows);
    free(filler.rows);
    free(reused.rows);
}
END_TEST

START_TEST(bad_submit)
{
    start(1, 2, 0);
    const int n = bad_prompts[_i].n;
    int *prompt = calloc((size_t)n + 1, sizeof(int));
    for (int k = 0; k < n; k++)
        prompt[k] = bad_prompts[_i].first;
    if (bad_prompts[_i].bad_at >= 0)
        prompt[bad_prompts[_i].bad_at] = bad_prompts[_i].bad;
    struct run r;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(submit(&r, "t", NULL, prompt, n), SLORA_EINVAL);
    free(prompt);
    struct slora_engine_stats es;
    slora_engine_stats(engine, &es);
    ck_assert_uint_eq(es.submitted, 0);
}
END_TEST

/* ---- per-request mixes ------------------------------------------------ */

#define MIX_PROMPT 5

/* Logits of every prompt position under a mix (n_ads 0: the base); a new
 * (MIX_PROMPT, vocab) array. */
static float *mix_logits(const struct slora_engine_adapter *ads, int n_ads)
{
    static const int prompt[MIX_PROMPT] = {BOS, 120, 7, 260, 33};
    struct run r;
    memset(&r, 0, sizeof(r));
    r.all_logits = true;
    r.rows = malloc((size_t)MIX_PROMPT * vocab * sizeof(float));
    ck_assert_ptr_nonnull(r.rows);
    ck_assert_int_eq(submit_mix(&r, "t", ads, n_ads, prompt, MIX_PROMPT, greedy_step), 0);
    wait_done(&r);
    ck_assert_int_eq(r.res.err, 0);
    ck_assert_int_eq(r.n_rows, MIX_PROMPT);
    return r.rows;
}

/* The fake generator is linear in alpha, so a mix of fakes equals the one
 * fake whose alpha is the weighted sum; weight 0 drops an adapter, and a
 * lone adapter of weight 1 is the plain adapter (the same weight set, so
 * bit for bit). */
START_TEST(mix_weights)
{
    start(4, 16, 0);
    static struct fake a, b, ab, neg;
    fake_init(&a, 0, 0.02f);
    fake_init(&b, 1, 0.05f);
    fake_init(&ab, 2, 0.7f * 0.02f + 0.3f * 0.05f);
    fake_init(&neg, 3, -0.5f * 0.02f + 1.5f * 0.05f);
    size_t n = (size_t)MIX_PROMPT * vocab;
    struct slora_engine_adapter mix[2] = {term(&a, 0.7f), term(&b, 0.3f)};
    float *got = mix_logits(mix, 2), *want = mix_logits((struct slora_engine_adapter[]){term(&ab, 1)}, 1);
    float *base = mix_logits(NULL, 0);
    ck_assert_msg(test_rel_diff(got, want, n) <= 1e-5, "0.7 a + 0.3 b: %g", test_rel_diff(got, want, n));
    ck_assert(test_rel_diff(got, base, n) > 1e-3);
    free(got);
    free(want);

    mix[0].weight = -0.5f, mix[1].weight = 1.5f;
    got = mix_logits(mix, 2);
    want = mix_logits((struct slora_engine_adapter[]){term(&neg, 1)}, 1);
    ck_assert_msg(test_rel_diff(got, want, n) <= 1e-5, "-0.5 a + 1.5 b: %g", test_rel_diff(got, want, n));
    free(got);
    free(want);

    mix[0].weight = 0, mix[1].weight = 1;
    got = mix_logits(mix, 2);
    want = mix_logits((struct slora_engine_adapter[]){term(&b, 1)}, 1);
    ck_assert_mem_eq(got, want, n * sizeof(float));
    free(got);
    free(want);

    got = mix_logits((struct slora_engine_adapter[]){term(&a, 1)}, 1);
    struct run plain;
    memset(&plain, 0, sizeof(plain));
    plain.all_logits = true;
    plain.rows = malloc(n * sizeof(float));
    ck_assert_int_eq(submit(&plain, "t", &a, (const int[]){BOS, 120, 7, 260, 33}, MIX_PROMPT), 0);
    wait_done(&plain);
    ck_assert_mem_eq(got, plain.rows, n * sizeof(float));
    free(got);
    free(plain.rows);

    got = mix_logits((struct slora_engine_adapter[]){term(&a, 0)}, 1);
    ck_assert_mem_eq(got, base, n * sizeof(float));
    free(got);
    free(base);
}
END_TEST

#define MIX_SEQS 5
#define MIX_TOKENS 8

/* One batch with rows on a mix, on each of its adapters alone, on the base
 * and on another mix sharing an adapter with another weight: each sequence
 * sees the logits it sees alone, every step runs one delta product per
 * distinct adapter (3) per adapted matrix, and the cache holds one entry
 * per adapter, none per mix. */
START_TEST(mix_batch)
{
    start(16, 64, 0);
    static struct fake a, b, c;
    fake_init(&a, 0, 0.02f);
    fake_init(&b, 1, 0.04f);
    fake_init(&c, 2, -0.03f);
    char diag[128];
    ck_assert_int_eq(slora_cache_warm(cache, a.id, "1", &a.a, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_cache_warm(cache, b.id, "1", &b.a, diag, sizeof(diag)), 0);
    ck_assert_int_eq(slora_cache_warm(cache, c.id, "1", &c.a, diag, sizeof(diag)), 0);
    const struct slora_engine_adapter mixes[MIX_SEQS][2] = {
        {term(&a, 0.7f), term(&b, 0.3f)}, {term(&a, 1)}, {term(&b, 1)}, {{0}},
        {term(&a, 0.2f), term(&c, 0.8f)}};
    const int n_ads[MIX_SEQS] = {2, 1, 1, 0, 2};
    /* one prompt for all, so that only the weights tell them apart */
    const int prompt[2] = {BOS, 140};
    struct run alone[MIX_SEQS], batch[MIX_SEQS];
    for (int i = 0; i < MIX_SEQS; i++) {
        memset(&alone[i], 0, sizeof(alone[i]));
        alone[i].max_tokens = MIX_TOKENS;
        alone[i].rows = malloc((size_t)MIX_TOKENS * vocab * sizeof(float));
        ck_assert_int_eq(
            submit_mix(&alone[i], "t", mixes[i], n_ads[i], prompt, 2, record_step), 0);
        wait_done(&alone[i]);
        ck_assert_int_eq(alone[i].res.err, 0);
    }
    for (int i = 0; i < MIX_SEQS; i++)
        for (int k = 0; k < i; k++)
            ck_assert_msg(test_rel_diff(alone[i].rows, alone[k].rows, (size_t)vocab) > 1e-4,
                          "sequences %d and %d see the same logits", k, i);

    struct run blocker;
    hold(&blocker);
    struct slora_engine_stats es0, es1;
    slora_engine_stats(engine, &es0);
    for (int i = 0; i < MIX_SEQS; i++) {
        memset(&batch[i], 0, sizeof(batch[i]));
        batch[i].max_tokens = MIX_TOKENS;
        batch[i].rows = malloc((size_t)MIX_TOKENS * vocab * sizeof(float));
        ck_assert_int_eq(
            submit_mix(&batch[i], "t", mixes[i], n_ads[i], prompt, 2, record_step), 0);
    }
    set_gate(false);
    for (int i = 0; i < MIX_SEQS; i++) {
        wait_done(&batch[i]);
        ck_assert_int_eq(batch[i].res.err, 0);
        ck_assert_int_eq(batch[i].n_rows, MIX_TOKENS);
        ck_assert_mem_eq(batch[i].tokens, alone[i].tokens, sizeof(alone[i].tokens));
        double d = test_rel_diff(batch[i].rows, alone[i].rows, (size_t)MIX_TOKENS * vocab);
        ck_assert_msg(d <= 1e-5, "sequence %d: batched vs alone %g", i, d);
        free(alone[i].rows);
        free(batch[i].rows);
    }
    slora_engine_stats(engine, &es1);
    uint64_t steps = es1.steps - es0.steps;
    ck_assert_uint_eq(steps, MIX_TOKENS);
    ck_assert_uint_eq(es1.base_products - es0.base_products, steps * expected_base());
    ck_assert_uint_eq(es1.delta_products - es0.delta_products, steps * expected_delta(3));
    struct slora_cache_stats cs;
    slora_cache_stats(cache, &cs);
    ck_assert_uint_eq(cs.entries, 3);
    ck_assert_uint_eq(cs.misses, 3);
    ck_assert_uint_eq(cs.in_use, 0);
}
END_TEST

/* fake_gen, failing for adapters of alpha 13. */
static int failing_gen(const struct slora_adapter *a, float *out, int n_threads, char *diag,
                       size_t diag_len)
{
    if (a->cfg.alpha == 13.0f) {
        snprintf(diag, diag_len, "dW of wq layer 0 has a non-finite entry at 5");
        return SLORA_ENONFINITE;
    }
    return fake_gen(a, out, n_threads, diag, diag_len);
}

/* A mix fails with the message of the adapter that could not be
 * generated; the others' handles are given back (teardown: none in use). */
START_TEST(mix_failure)
{
    struct slora_engine_config ec = {.threads = 1, .max_batch = 4, .max_queue = 8};
    start_with(&ec, failing_gen);
    static struct fake good, bad;
    fake_init(&good, 0, 0.02f);
    fake_init(&bad, 1, 13.0f);
    struct run r;
    memset(&r, 0, sizeof(r));
    r.max_tokens = 2;
    const struct slora_engine_adapter mix[2] = {term(&good, 0.5f), term(&bad, 0.5f)};
    ck_assert_int_eq(submit_mix(&r, "t", mix, 2, (const int[]){BOS, 5}, 2, greedy_step), 0);
    wait_done(&r);
    ck_assert_int_eq(r.res.err, SLORA_ENONFINITE);
    ck_assert_str_eq(r.res.diag, "dW of wq layer 0 has a non-finite entry at 5");
    ck_assert_int_eq(r.n, 0);
    struct slora_cache_stats cs;
    slora_cache_stats(cache, &cs);
    ck_assert_uint_eq(cs.entries, 1);
    ck_assert_uint_eq(cs.gen_failures, 1);
}
END_TEST

/* Tenant a may have 2 generations outstanding: its mix of three cold
 * adapters is admitted (none outstanding), then counts 3, so its next
 * adapter job waits in its queue while tenant b's base job runs. */
START_TEST(mix_generation_limit)
{
    start_gated(4, 2);
    const int prompt[2] = {BOS, 95};
    static struct fake f[4];
    for (int i = 0; i < 4; i++)
        fake_init(&f[i], i, 0.01f * (float)(i + 1));
    struct run mix, single;
    memset(&mix, 0, sizeof(mix));
    memset(&single, 0, sizeof(single));
    mix.max_tokens = single.max_tokens = 2;
    const struct slora_engine_adapter three[3] = {term(&f[0], 0.5f), term(&f[1], 0.25f),
                                                  term(&f[2], 0.25f)};
    ck_assert_int_eq(submit_mix(&mix, "a", three, 3, prompt, 2, greedy_step), 0);
    ck_assert_int_eq(submit(&single, "a", &f[3], prompt, 2), 0);
    base_job_passes(prompt, 1, 1, 1);
    set_gate(false);
    wait_done(&mix);
    wait_done(&single);
    ck_assert_int_eq(mix.res.err, 0);
    ck_assert_int_eq(mix.n, 2);
    ck_assert_int_eq(single.res.err, 0);
    ck_assert_int_eq(single.n, 2);
}
END_TEST

/* Jobs whose adapters the engine refuses (the API answers each with its
 * own message first). */
START_TEST(bad_mix_submit)
{
    start(1, 2, 0);
    static struct fake f[SLORA_WEIGHTS_MAX_TERMS + 1];
    struct slora_engine_adapter ads[SLORA_WEIGHTS_MAX_TERMS + 1];
    for (int i = 0; i <= SLORA_WEIGHTS_MAX_TERMS; i++) {
        fake_init(&f[i], i, 0.01f);
        ads[i] = term(&f[i], 0.1f);
    }
    const int prompt[2] = {BOS, 5};
    struct run r;
    memset(&r, 0, sizeof(r));
    /* too many */
    ck_assert_int_eq(submit_mix(&r, "t", ads, SLORA_WEIGHTS_MAX_TERMS + 1, prompt, 2, greedy_step),
                     SLORA_EINVAL);
    /* an id twice */
    struct slora_engine_adapter dup[2] = {term(&f[0], 0.5f), term(&f[0], 0.5f)};
    ck_assert_int_eq(submit_mix(&r, "t", dup, 2, prompt, 2, greedy_step), SLORA_EINVAL);
    /* weights not finite */
    const float bad_w[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof(bad_w) / sizeof(bad_w[0]); i++) {
        struct slora_engine_adapter one = term(&f[0], bad_w[i]);
        ck_assert_int_eq(submit_mix(&r, "t", &one, 1, prompt, 2, greedy_step), SLORA_EINVAL);
    }
    /* a field missing */
    struct slora_engine_adapter no_version = term(&f[0], 1), no_adapter = term(&f[0], 1);
    no_version.version = NULL;
    no_adapter.adapter = NULL;
    ck_assert_int_eq(submit_mix(&r, "t", &no_version, 1, prompt, 2, greedy_step), SLORA_EINVAL);
    ck_assert_int_eq(submit_mix(&r, "t", &no_adapter, 1, prompt, 2, greedy_step), SLORA_EINVAL);
    ck_assert_int_eq(submit_mix(&r, "t", NULL, 1, prompt, 2, greedy_step), SLORA_EINVAL);
    struct slora_engine_stats es;
    slora_engine_stats(engine, &es);
    ck_assert_uint_eq(es.submitted, 0);
    /* the full 8 are fine */
    r.max_tokens = 1;
    ck_assert_int_eq(submit_mix(&r, "t", ads, SLORA_WEIGHTS_MAX_TERMS, prompt, 2, greedy_step), 0);
    wait_done(&r);
    ck_assert_int_eq(r.res.err, 0);
}
END_TEST

Suite *slora_engine_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, isolation);
    tcase_add_test(tc, batch_groups);
    tcase_add_test(tc, prompt_logits);
    tcase_add_test(tc, context_limit);
    tcase_add_test(tc, cancel);
    tcase_add_test(tc, queue_full);
    tcase_add_test(tc, stop_cancels_everything);
    tcase_add_test(tc, tenant_limit);
    tcase_add_test(tc, round_robin);
    tcase_add_test(tc, kv_reuse);
    tcase_add_test(tc, generation_limit);
    tcase_add_loop_test(tc, bad_submit, 0, sizeof(bad_prompts) / sizeof(bad_prompts[0]));
    tcase_add_test(tc, mix_weights);
    tcase_add_test(tc, mix_batch);
    tcase_add_test(tc, mix_failure);
    tcase_add_test(tc, mix_generation_limit);
    tcase_add_test(tc, bad_mix_submit);
    suite_add_tcase(s, tc);
    return s;
}
