/* check_vec.c - the forward pass's vector loops (vec.h) against
 * straightforward double-precision loops written here:
 *   - dot, axpy, rmsnorm, softmax, swiglu and exp on lengths around the
 *     8-lane and 16-lane steps (0..40) and model widths, within a bound of
 *     a few float roundings of the terms' magnitudes;
 *   - exp over its whole range (relative error), below the clamp (tiny,
 *     never negative or subnormal garbage), NaN passing through;
 *   - attention scores and mix of 1..4 query heads sharing a key/value
 *     head, over head sizes on and off the 8/64-float steps, position
 *     counts around the 4-key and 32-value blocks, strided keys/values;
 *     cells past n_pos of each score row are never written.
 * make check-kernels runs this suite in the portable and AVX2-only builds. */
#include <slora/vec.h>

#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EPS 5.96e-8 /* 2^-24: one float rounding */

static uint32_t rng(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Uniform in [lo, hi). */
static void fill(float *x, size_t n, float lo, float hi, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * (float)rng(&seed) / 16777216.0f;
}

static float *xalloc(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    ck_assert_ptr_nonnull(p);
    return p;
}

static const int lengths[] = {0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 23, 24, 31, 33, 40, 64, 288, 2048};
#define N_LENGTHS (int)(sizeof(lengths) / sizeof(lengths[0]))

START_TEST(dot)
{
    int n = lengths[_i];
    float *a = xalloc(n), *b = xalloc(n);
    fill(a, n, -1, 1, 1 + n);
    fill(b, n, -2, 2, 2 + n);
    double ref = 0, mag = 0;
    for (int i = 0; i < n; i++) {
        ref += (double)a[i] * b[i];
        mag += fabs((double)a[i] * b[i]);
    }
    double got = slora_vec_dot(a, b, n);
    /* in-order or 8-lane sums: at most n roundings of partial sums */
    ck_assert_msg(fabs(got - ref) <= (n + 2) * EPS * mag, "n %d: %.9g vs %.9g", n, got, ref);
    free(a);
    free(b);
}
END_TEST

START_TEST(axpy)
{
    int n = lengths[_i];
    float *x = xalloc(n), *y = xalloc(n + 1), *y0 = xalloc(n);
    fill(x, n, -1, 1, 3 + n);
    fill(y0, n, -3, 3, 4 + n);
    memcpy(y, y0, n * sizeof(float));
    y[n] = 12345.0f;
    float a = -0.7f;
    slora_vec_axpy(y, a, x, n);
    for (int i = 0; i < n; i++) {
        double ref = y0[i] + (double)a * x[i];
        ck_assert_msg(fabs(y[i] - ref) <= 2 * EPS * (fabs(y0[i]) + fabs(a * x[i])), "n %d i %d", n,
                      i);
    }
    ck_assert_float_eq(y[n], 12345.0f);
    free(x);
    free(y);
    free(y0);
}
END_TEST

START_TEST(rmsnorm)
{
    int n = lengths[_i] ? lengths[_i] : 1;
    float *x = xalloc(n), *w = xalloc(n), *o = xalloc(n), *o2 = xalloc(n);
    fill(x, n, -4, 4, 5 + n);
    fill(w, n, 0.5f, 1.5f, 6 + n);
    float eps = 1e-5f;
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    double s = 1.0 / sqrt(ss / n + eps);
    slora_vec_rmsnorm(o, x, w, n, eps);
    for (int i = 0; i < n; i++) {
        double ref = w[i] * x[i] * s;
        ck_assert_msg(fabs(o[i] - ref) <= (n + 8) * EPS * fabs(ref) + 1e-30, "n %d i %d: %g vs %g",
                      n, i, o[i], ref);
    }
    /* in place gives the same floats */
    memcpy(o2, x, n * sizeof(float));
    slora_vec_rmsnorm(o2, o2, w, n, eps);
    ck_assert_int_eq(memcmp(o, o2, n * sizeof(float)), 0);
    free(x);
    free(w);
    free(o);
    free(o2);
}
END_TEST

/* Relative error of exp on a grid over the unclamped range, and at
 * exact points. */
START_TEST(exp_range)
{
    enum { N = 20001 };
    float *x = xalloc(N), *y = xalloc(N);
    for (int i = 0; i < N; i++)
        x[i] = -87.0f + 175.0f * (float)i / (N - 1);
    slora_vec_exp(y, x, N);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        double ref = exp((double)x[i]);
        double rel = fabs(y[i] - ref) / ref;
        worst = rel > worst ? rel : worst;
    }
    ck_assert_msg(worst <= 6 * EPS, "worst relative error %g", worst);
    const float pts[] = {0.0f, 1.0f, -1.0f, 0.5f, 0.34657359f, -0.34657359f, 10.0f, 88.0f};
    const int np = (int)(sizeof(pts) / sizeof(pts[0]));
    float out[8];
    slora_vec_exp(out, pts, np);
    ck_assert_float_eq(out[0], 1.0f);
    for (int i = 0; i < np; i++)
        ck_assert_msg(fabs(out[i] - exp(pts[i])) <= 6 * EPS * exp(pts[i]), "exp(%g) = %.9g", pts[i],
                      out[i]);
    free(x);
    free(y);
}
END_TEST

/* Below the clamp: a value no larger than exp(-87.3) (not 0, not garbage);
 * above it: finite; NaN stays NaN; y may be x; tails of every length. */
START_TEST(exp_edges)
{
    float x[11] = {-88.0f, -100.0f, -1e30f, -INFINITY, 89.0f, INFINITY,
                   NAN,    2.0f,    -2.0f,  3.0f,      0.25f};
    slora_vec_exp(x, x, 11);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(x[i] >= 0 && x[i] <= 1.2193e-38f, "tiny %d: %g", i, x[i]);
    ck_assert(isfinite(x[4]) && x[4] > 2e38f);
    ck_assert(isfinite(x[5]) && x[5] > 2e38f);
    ck_assert(isnan(x[6]));
    ck_assert(fabs(x[7] - exp(2.0)) <= 6 * EPS * exp(2.0));
    ck_assert(fabs(x[10] - exp(0.25)) <= 6 * EPS * exp(0.25));
    for (int n = 1; n <= 17; n++) {
        float in[17], out[18];
        fill(in, n, -5, 5, 40 + n);
        out[n] = -1.0f;
        slora_vec_exp(out, in, n);
        for (int i = 0; i < n; i++)
            ck_assert(fabs(out[i] - exp(in[i])) <= 6 * EPS * exp(in[i]));
        ck_assert_float_eq(out[n], -1.0f);
    }
}
END_TEST

START_TEST(softmax)
{
    int n = lengths[_i] ? lengths[_i] : 1;
    float *x = xalloc(n + 1), *x0 = xalloc(n);
    fill(x0, n, -20, 20, 7 + n);
    if (n > 2)
        x0[n / 2] = -1e30f; /* a masked-out score */
    memcpy(x, x0, n * sizeof(float));
    x[n] = 777.0f;
    slora_vec_softmax(x, n);
    double max = x0[0], sum = 0;
    for (int i = 1; i < n; i++)
        max = x0[i] > max ? x0[i] : max;
    for (int i = 0; i < n; i++)
        sum += exp(x0[i] - max);
    double got_sum = 0;
    for (int i = 0; i < n; i++) {
        double ref = exp(x0[i] - max) / sum;
        /* x - max rounds in float: its error (|x - max| EPS) is a relative one of exp */
        double tol = ((n + 10) + 2 * fabs(x0[i] - max)) * EPS * ref + 1e-37;
        ck_assert_msg(fabs(x[i] - ref) <= tol, "n %d i %d: %g vs %g", n, i, x[i], ref);
        got_sum += x[i];
    }
    ck_assert(fabs(got_sum - 1.0) <= (n + 10) * EPS);
    ck_assert_float_eq(x[n], 777.0f);
    free(x);
    free(x0);
}
END_TEST

START_TEST(swiglu)
{
    int n = lengths[_i];
    float *h = xalloc(n + 1), *h0 = xalloc(n), *g = xalloc(n);
    fill(h0, n, -12, 12, 8 + n);
    fill(g, n, -2, 2, 9 + n);
    if (n > 3) {
        h0[0] = -100.0f; /* exp(100) beyond the clamp */
        h0[1] = 100.0f;
    }
    memcpy(h, h0, n * sizeof(float));
    h[n] = 55.0f;
    slora_vec_swiglu(h, g, n);
    for (int i = 0; i < n; i++) {
        double ref = h0[i] / (1.0 + exp(-(double)h0[i])) * g[i];
        ck_assert_msg(fabs(h[i] - ref) <= 8 * EPS * fabs(h0[i] * g[i]) + 1e-35,
                      "n %d i %d: %g vs %g", n, i, h[i], ref);
    }
    ck_assert_float_eq(h[n], 55.0f);
    free(h);
    free(h0);
    free(g);
}
END_TEST

/* (n_q, hd, n_pos) of the attention cases: head sizes on and off the 8-
 * and 64-float steps, positions around the 4- and 8-key and 32-value blocks. */
static const int attn_cases[][3] = {
    {1, 64, 1},   {1, 64, 3},  {2, 64, 4}, {4, 64, 5},  {4, 64, 33}, {1, 128, 70},
    {4, 128, 31}, {2, 72, 32}, {3, 12, 9}, {1, 8, 100}, {4, 6, 7},   {2, 96, 65},
};

START_TEST(attention)
{
    int n_q = attn_cases[_i][0], hd = attn_cases[_i][1], n_pos = attn_cases[_i][2];
    size_t kvs = (size_t)hd + 5, as = (size_t)n_pos + 3; /* strides off the data widths */
    float *q = xalloc((size_t)n_q * hd), *k = xalloc(n_pos * kvs), *v = xalloc(n_pos * kvs);
    float *att = xalloc(n_q * as), *out = xalloc((size_t)n_q * hd + 1);
    fill(q, (size_t)n_q * hd, -1, 1, 10 + _i);
    fill(k, n_pos * kvs, -1, 1, 11 + _i);
    fill(v, n_pos * kvs, -1, 1, 12 + _i);
    for (size_t i = 0; i < n_q * as; i++)
        att[i] = -3.0f;
    float scale = 1.0f / sqrtf((float)hd);
    slora_vec_attn_scores(att, as, q, n_q, k, kvs, n_pos, hd, scale);
    for (int j = 0; j < n_q; j++) {
        for (int t = 0; t < n_pos; t++) {
            double ref = 0, mag = 0;
            for (int c = 0; c < hd; c++) {
                ref += (double)q[j * hd + c] * k[t * kvs + c];
                mag += fabs((double)q[j * hd + c] * k[t * kvs + c]);
            }
            ck_assert_msg(fabs(att[j * as + t] - scale * ref) <= (hd + 4) * EPS * scale * mag,
                          "case %d head %d pos %d", _i, j, t);
        }
        for (size_t t = n_pos; t < as; t++)
            ck_assert_float_eq(att[j * as + t], -3.0f);
    }
    /* mix with weights of both signs (the product does not assume softmax) */
    fill(att, n_q * as, -1, 1, 13 + _i);
    out[n_q * hd] = 99.0f;
    slora_vec_attn_mix(out, att, as, n_q, v, kvs, n_pos, hd);
    for (int j = 0; j < n_q; j++)
        for (int c = 0; c < hd; c++) {
            double ref = 0, mag = 0;
            for (int t = 0; t < n_pos; t++) {
                ref += (double)att[j * as + t] * v[t * kvs + c];
                mag += fabs((double)att[j * as + t] * v[t * kvs + c]);
            }
            ck_assert_msg(fabs(out[j * hd + c] - ref) <= (n_pos + 2) * EPS * mag,
                          "case %d head %d col %d: %g vs %g", _i, j, c, out[j * hd + c], ref);
        }
    ck_assert_float_eq(out[n_q * hd], 99.0f);
    free(q);
    free(k);
    free(v);
    free(att);
    free(out);
}
END_TEST

Suite *slora_vec_suite(void)
{
    Suite *s = suite_create("vec");
    TCase *tc = tcase_create("core");
    /* milliseconds each; the default 4 s timeout failed a forked ASan run
     * on a machine with load average 10 */
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, dot, 0, N_LENGTHS);
    tcase_add_loop_test(tc, axpy, 0, N_LENGTHS);
    tcase_add_loop_test(tc, rmsnorm, 0, N_LENGTHS);
    tcase_add_test(tc, exp_range);
    tcase_add_test(tc, exp_edges);
    tcase_add_loop_test(tc, softmax, 0, N_LENGTHS);
    tcase_add_loop_test(tc, swiglu, 0, N_LENGTHS);
    tcase_add_loop_test(tc, attention, 0, (int)(sizeof(attn_cases) / sizeof(attn_cases[0])));
    suite_add_tcase(s, tc);
    return s;
}
