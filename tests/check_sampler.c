/* check_sampler.c - sampling against tests/ref/sampler_ref.py (independent
 * float32 reimplementation of run.c's sample() plus top-k), tie-breaking,
 * determinism and exact nucleus/top-k membership. */
#include <slora/sampler.h>

#include <check.h>
#include <math.h>
#include <string.h>

#define N_DRAWS 24
static const float logits8[8] = {1.0f, 2.0f, 0.5f, 2.0f, -1.0f, 0.0f, 1.5f, -3.0f};

/* /usr/bin/python3 tests/ref/sampler_ref.py */
static const struct {
    float temperature, top_p;
    int top_k;
    unsigned seed;
    int draws[N_DRAWS];
} ref_cases[] = {
    {0.0f, 1.0f, 0, 1u, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {1.0f, 1.0f, 0, 42u, {1, 5, 5, 6, 3, 6, 1, 2, 1, 3, 2, 1, 6, 1, 0, 3, 1, 1, 6, 1, 2, 3, 1, 1}},
    {1.0f, 1.0f, 0, 0u, {0, 1, 3, 3, 3, 3, 6, 1, 3, 6, 0, 3, 1, 6, 0, 1, 1, 0, 6, 1, 3, 3, 3, 1}},
    {0.7f, 0.9f, 0, 7u, {6, 0, 1, 1, 3, 3, 6, 1, 1, 6, 3, 3, 3, 6, 1, 1, 0, 6, 3, 3, 1, 1, 3, 3}},
    {1.5f, 0.5f, 0, 99u, {1, 6, 6, 6, 3, 3, 1, 6, 6, 1, 1, 3, 1, 3, 6, 3, 3, 1, 3, 3, 3, 1, 3, 6}},
    {1.0f, 1.0f, 2, 3u, {3, 1, 1, 3, 1, 3, 1, 1, 3, 1, 3, 3, 1, 3, 1, 3, 1, 3, 1, 1, 1, 3, 1, 3}},
    {2.0f, 0.6f, 4, 5u, {1, 3, 3, 3, 1, 1, 1, 1, 3, 6, 6, 1, 3, 1, 3, 1, 6, 6, 6, 3, 3, 1, 1, 1}},
    {1.0f, 1.0f, 1, 11u, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
};

/* the 2000-token vocabulary of sampler_ref.py: every logit twice */
#define WIDE 2000
#define N_WIDE_DRAWS 12
static const struct {
    float temperature, top_p;
    int top_k;
    unsigned seed;
    int draws[N_WIDE_DRAWS];
} wide_cases[] = {
    {1.00f, 0.90f, 0, 5u, {667, 1075, 1507, 334, 1173, 1272, 1889, 420, 1853, 1607, 631, 815}},
    {0.70f, 0.50f, 0, 6u, {1198, 642, 704, 1087, 1840, 988, 531, 1889, 1173, 1531, 1531, 272}},
    {1.00f, 0.80f, 100, 7u, {951, 1235, 1963, 284, 1173, 1494, 272, 1926, 173, 1309, 25, 667}},
    {1.50f, 1.00f, 300, 8u, {223, 803, 852, 1927, 1939, 1939, 247, 1889, 841, 235, 1927, 38}},
    {0.20f, 0.99f, 0, 9u, {914, 642, 1136, 1815, 630, 1568, 13, 1284, 605, 778, 667, 494}},
};

START_TEST(reference_draws_wide)
{
    static float logits[WIDE], l[WIDE];
    for (int i = 0; i < WIDE; i++)
        logits[i] = (float)((i * 7919) % 1000) / 100.0f - 5.0f;
    struct slora_sampler_params p = {wide_cases[_i].temperature, wide_cases[_i].top_p,
                                     wide_cases[_i].top_k, wide_cases[_i].seed};
    struct slora_sampler *s = slora_sampler_new(WIDE, &p);
    for (int d = 0; d < N_WIDE_DRAWS; d++) {
        memcpy(l, logits, sizeof(l));
        int tok = slora_sampler_sample(s, l);
        ck_assert_msg(tok == wide_cases[_i].draws[d], "wide case %d draw %d: got %d want %d", _i, d,
                      tok, wide_cases[_i].draws[d]);
    }
    slora_sampler_free(s);
}
END_TEST

START_TEST(reference_draws)
{
    struct slora_sampler_params p = {ref_cases[_i].temperature, ref_cases[_i].top_p,
                                     ref_cases[_i].top_k, ref_cases[_i].seed};
    struct slora_sampler *s = slora_sampler_new(8, &p);
    ck_assert_ptr_nonnull(s);
    for (int d = 0; d < N_DRAWS; d++) {
        float l[8];
        memcpy(l, logits8, sizeof(l));
        int tok = slora_sampler_sample(s, l);
        ck_assert_msg(tok == ref_cases[_i].draws[d], "case %d draw %d: got %d want %d", _i, d, tok,
                      ref_cases[_i].draws[d]);
    }
    slora_sampler_free(s);
}
END_TEST

static int draw(struct slora_sampler *s, const float *logits, int n)
{
    float l[16];
    memcpy(l, logits, (size_t)n * sizeof(*l));
    return slora_sampler_sample(s, l);
}

START_TEST(greedy_ties)
{
    struct slora_sampler_params p = {0.0f, 0.5f, 3, 9};
    struct slora_sampler *s = slora_sampler_new(5, &p);
    const float tie[5] = {-1.0f, 3.0f, 0.0f, 3.0f, 3.0f};
    ck_assert_int_eq(draw(s, tie, 5), 1);
    const float first[5] = {7.0f, 7.0f, 7.0f, 7.0f, 7.0f};
    ck_assert_int_eq(draw(s, first, 5), 0);
    const float last[5] = {-INFINITY, -2.0f, -3.0f, -4.0f, -1.0f};
    ck_assert_int_eq(draw(s, last, 5), 4);
    slora_sampler_free(s);
    /* logits / 1e-40 overflow: the limit of a vanishing temperature is argmax */
    struct slora_sampler_params tiny = {1e-40f, 1.0f, 0, 9};
    s = slora_sampler_new(5, &tiny);
    const float spread[5] = {1.0f, 3.0f, 2.0f, -5.0f, 2.5f};
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(draw(s, spread, 5), 1);
    slora_sampler_free(s);
    slora_sampler_free(NULL);
}
END_TEST

/* probabilities 0.5, 0.3, 0.2: top_p 0.4 keeps only id 0 (0.5 > 0.4);
 * top_p 0.6 keeps ids 0 and 1 (0.8 > 0.6); top_k 2 keeps ids 0 and 1 too. */
START_TEST(nucleus_membership)
{
    const float l[3] = {logf(0.5f), logf(0.3f), logf(0.2f)};
    struct {
        float top_p;
        int top_k;
        int allowed; /* bit mask of ids that may appear; all must appear */
    } cases[] = {{0.4f, 0, 0x1},  {0.6f, 0, 0x3},  {1.0f, 2, 0x3},
                 {0.95f, 0, 0x7}, {0.45f, 2, 0x1}, {1.0f, 0, 0x7}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct slora_sampler_params p = {1.0f, cases[c].top_p, cases[c].top_k, 1234};
        struct slora_sampler *s = slora_sampler_new(3, &p);
        int seen = 0;
        for (int d = 0; d < 400; d++)
            seen |= 1 << draw(s, l, 3);
        ck_assert_msg(seen == cases[c].allowed, "case %zu: seen 0x%x", c, seen);
        slora_sampler_free(s);
    }
}
END_TEST

START_TEST(seeded_determinism)
{
    struct slora_sampler_params a = {0.9f, 0.95f, 0, 777}, b = a, c = a;
    c.seed = 778;
    struct slora_sampler *sa = slora_sampler_new(8, &a), *sb = slora_sampler_new(8, &b),
                         *sc = slora_sampler_new(8, &c);
    int differ = 0;
    for (int d = 0; d < 64; d++) {
        int ta = draw(sa, logits8, 8), tb = draw(sb, logits8, 8), tc = draw(sc, logits8, 8);
        ck_assert_int_eq(ta, tb);
        differ += ta != tc;
    }
    ck_assert_int_gt(differ, 0);
    slora_sampler_free(sa);
    slora_sampler_free(sb);
    slora_sampler_free(sc);
}
END_TEST

Suite *slora_sampler_suite(void)
{
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, reference_draws, 0, (int)(sizeof(ref_cases) / sizeof(ref_cases[0])));
    tcase_add_loop_test(tc, reference_draws_wide, 0,
                        (int)(sizeof(wide_cases) / sizeof(wide_cases[0])));
    tcase_add_test(tc, greedy_ties);
    tcase_add_test(tc, nucleus_membership);
    tcase_add_test(tc, seeded_determinism);
    suite_add_tcase(s, tc);
    return s;
}
