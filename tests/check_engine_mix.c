/* check_engine_mix.c - the engine's generation limit (at most so many
 * sequences per tenant waiting for a generation) and per-request mixes
 * (weights, a mixed batch == each alone, one cache entry per adapter, a
 * failing member, generation limits, refused mixes), on stories260K with
 * the harness of engine_util.h (fake adapters, as in check_engine.c).
 */
#include "engine_util.h"

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

Suite *slora_engine_mix_suite(void)
{
    Suite *s = suite_create("engine_mix");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, generation_limit);
    tcase_add_test(tc, mix_weights);
    tcase_add_test(tc, mix_batch);
    tcase_add_test(tc, mix_failure);
    tcase_add_test(tc, mix_generation_limit);
    tcase_add_test(tc, bad_mix_submit);
    suite_add_tcase(s, tc);
    return s;
}
