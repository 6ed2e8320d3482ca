/* check_engine.c - continuous batching on stories260K: batching never
 * changes a sequence's tokens (isolation), the BLAS shim sees one GEMM per
 * shared matrix and one per adapter group per step, prefill logits,
 * context limit, cancellation, queue and tenant limits, round-robin
 * admission, per-tenant token counters and KV caches reused across jobs.
 * Generation limits and per-request mixes: check_engine_mix.c.
 *
 * Adapters are built in-test (wq and wv of every layer) and expanded by a
 * deterministic fake generator (dW[i] = alpha * (i % 7 - 3)): the engine
 * is tested apart from the SuperLoRA maths (the harness: engine_util.h).
 * Exact-token comparisons use greedy decoding on prompts whose top-2 logit
 * margin exceeds 1e-3 at every step, because batching changes summation
 * order.
 */
#include "engine_util.h"

#include <sched.h>

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
    tcase_add_loop_test(tc, bad_submit, 0, sizeof(bad_prompts) / sizeof(bad_prompts[0]));
    suite_add_tcase(s, tc);
    return s;
}
