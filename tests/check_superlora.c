/* check_superlora.c - the delta maths against naive formulas from the spec:
 * every factor type, the contraction orders' cost, the Fastfood projection,
 * the shuffle, thread-count invariance and the rejections. (rnd, perm, the
 * gd kernel and the FWHT on their own: check_superlora_kernels.c.)
 *
 * Adapters are built by filling struct slora_adapter directly. Expected
 * values come from independent code paths here (triple loops, a plain
 * FWHT, per-index Kronecker digits, scalar perm) or from the Python
 * one-liner quoted next to its test, never from the code under test.
 */
#include "internal.h"

#include <slora/error.h>
#include <slora/model.h>
#include <slora/superlora.h>
#include <slora/weights.h>

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_T 8
#define MAX_G 4

struct fixture {
    struct slora_adapter a;
    struct slora_target t[MAX_T];
    struct slora_group g[MAX_G];
    struct slora_group_tables tables[MAX_G];
    float *params;
    size_t used, cap;
    uint64_t lcg;
};

static struct fixture *fx_new(size_t cap)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->params = malloc(cap * sizeof(float));
    f->cap = cap;
    f->lcg = 12345;
    f->a.targets = f->t;
    f->a.groups = f->g;
    f->a.cfg.alpha = 1.0f;
    f->a.cfg.base = (struct slora_shape){64, 172, 5, 8, 4, 512};
    return f;
}

static void fx_free(struct fixture *f)
{
    free(f->params);
    free(f);
}

/* Multiples of 1/4 in [-2, 2]: small products and sums stay exact. */
static float *fx_values(struct fixture *f, size_t n)
{
    ck_assert_uint_le(f->used + n, f->cap);
    float *p = f->params + f->used;
    for (size_t i = 0; i < n; i++) {
        f->lcg = f->lcg * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((int)((f->lcg >> 33) % 17) - 8) / 4.0f;
    }
    f->used += n;
    return p;
}

/* Targets (rows, cols) in order; layers 0.., module wq. */
static void fx_targets(struct fixture *f, int n, const int64_t (*shape)[2])
{
    int64_t off = 0;
    for (int j = 0; j < n; j++) {
        f->t[j] = (struct slora_target){.layer = j,
                                        .module = SLORA_MOD_WQ,
                                        .rows = shape[j][0],
                                        .cols = shape[j][1],
                                        .offset = off};
        off += shape[j][0] * shape[j][1];
    }
    f->a.n_targets = n;
    f->a.total = off;
}

/* Group gi of len N_g after the previous groups; factors added next. */
static struct slora_group *fx_group(struct fixture *f, int gi, int64_t len, int order)
{
    slora_group_tables_start(&f->g[gi], &f->tables[gi], gi ? &f->g[gi - 1] : NULL, len, order);
    f->a.n_groups = gi + 1;
    return &f->g[gi];
}

static void fx_factor(struct fixture *f, struct slora_group *g, const int64_t *n, const int64_t *r,
                      bool core)
{
    const float *a[SLORA_MAX_ORDER];
    size_t core_len = 1;
    for (int m = 0; m < g->order; m++) {
        a[m] = fx_values(f, (size_t)(n[m] * r[m]));
        core_len *= (size_t)r[m];
    }
    slora_group_tables_add_factor(g, n, r, a, core ? fx_values(f, core_len) : NULL);
}

/* ---- naive formulas ---- */

static double naive_factor(const struct slora_factor *k, int M, const int64_t *i)
{
    if (!k->core) {
        double s = 0;
        for (int64_t j = 0; j < k->r[0]; j++) {
            double p = 1;
            for (int m = 0; m < M; m++)
                p *= k->a[m][i[m] * k->r[m] + j];
            s += p;
        }
        return s;
    }
    size_t core_len = 1;
    for (int m = 0; m < M; m++)
        core_len *= (size_t)k->r[m];
    double s = 0;
    for (size_t c = 0; c < core_len; c++) {
        size_t rem = c;
        double p = k->core[c];
        for (int m = M - 1; m >= 0; m--) {
            int64_t j = (int64_t)(rem % (size_t)k->r[m]);
            rem /= (size_t)k->r[m];
            p *= k->a[m][i[m] * k->r[m] + j];
        }
        s += p;
    }
    return s;
}

/* t_g[e]: mixed-radix Kronecker digits, factor 0 most significant. */
static double naive_code(const struct slora_group *g, int64_t e)
{
    int M = g->order;
    int64_t i[SLORA_MAX_ORDER];
    for (int m = M - 1; m >= 0; m--) {
        i[m] = e % g->n[m];
        e /= g->n[m];
    }
    double v = 1;
    for (int k = 0; k < g->n_kron; k++) {
        int64_t ik[SLORA_MAX_ORDER];
        for (int m = 0; m < M; m++) {
            int64_t below = 1;
            for (int k2 = k + 1; k2 < g->n_kron; k2++)
                below *= g->k[k2].n[m];
            ik[m] = (i[m] / below) % g->k[k].n[m];
        }
        v *= naive_factor(&g->k[k], M, ik);
    }
    return v;
}

/* In-place H in double, plain stride loop. */
static void naive_fwht(double *v, size_t n)
{
    for (size_t s = 1; s < n; s *= 2)
        for (size_t b = 0; b < n; b += 2 * s)
            for (size_t j = b; j < b + s; j++) {
                double x = v[j], y = v[j + s];
                v[j] = x + y;
                v[j + s] = x - y;
            }
}

/* Spec section 5 step by step in double. */
static void naive_fastfood(uint64_t seed, int64_t g, const double *x, int64_t P, int64_t D,
                           double *out)
{
    size_t L = 1;
    while ((int64_t)L < (P > D ? P : D))
        L *= 2;
    uint64_t sg = slora_rnd(seed, 1, (uint64_t)g);
    double *v = calloc(L, sizeof(double)), *w = calloc(L, sizeof(double));
    for (int64_t j = 0; j < P; j++)
        v[j] = (slora_rnd(sg, 2, (uint64_t)j) >> 63) ? -x[j] : x[j];
    naive_fwht(v, L);
    double norm = 0;
    for (size_t j = 0; j < L; j++) {
        uint64_t u = slora_rnd(sg, 3, j);
        double gd =
            (double)((u & 0xFFFF) + ((u >> 16) & 0xFFFF) + ((u >> 32) & 0xFFFF) + (u >> 48)) -
            131070.0;
        norm += gd * gd;
        w[j] = gd * v[slora_perm(slora_rnd(sg, 5, 0), L, j)];
    }
    naive_fwht(w, L);
    for (int64_t i = 0; i < D; i++)
        out[i] = w[i] / (sqrt(norm) * sqrt((double)D));
    free(v);
    free(w);
}

/* Spec section 9: every entry within 1e-5 * max|ref|. */
static void assert_agree(const float *got, const double *ref, size_t n)
{
    double mx = 0;
    for (size_t i = 0; i < n; i++)
        mx = fabs(ref[i]) > mx ? fabs(ref[i]) : mx;
    ck_assert(mx > 0);
    for (size_t i = 0; i < n; i++)
        if (fabs(got[i] - ref[i]) > 1e-5 * mx)
            ck_abort_msg("entry %zu: got %.9g want %.9g (max %.3g)", i, got[i], ref[i], mx);
}

/* Unshuffled, unprojected reference of the whole adapter. */
static double *naive_delta(const struct slora_adapter *a)
{
    double *d = malloc((size_t)a->total * sizeof(double));
    for (int gi = 0; gi < a->n_groups; gi++) {
        const struct slora_group *g = &a->groups[gi];
        for (int64_t e = 0; e < g->len; e++)
            d[g->offset + e] = a->cfg.alpha * naive_code(g, e);
    }
    return d;
}

static float *generate_ok(const struct slora_adapter *a, int n_threads)
{
    /* 64-byte aligned: the streaming fast paths depend on alignment */
    float *out = slora__alloc64((size_t)a->total * sizeof(float));
    char diag[256] = "";
    int rc = slora_superlora_generate(a, out, n_threads, diag, sizeof(diag));
    ck_assert_msg(rc == 0, "generate: %d %s", rc, diag);
    return out;
}

/* ---- factor types ---- */

START_TEST(lora_equals_b_at)
{
    /* LoRA: per matrix, A_{0,0} = B (o x r), A_{0,1} = A^T (i x r) */
    struct fixture *f = fx_new(4096);
    static const int64_t shapes[2][2] = {{6, 5}, {4, 5}};
    fx_targets(f, 2, shapes);
    for (int j = 0; j < 2; j++) {
        struct slora_group *g = fx_group(f, j, shapes[j][0] * shapes[j][1], 2);
        fx_factor(f, g, (int64_t[]){shapes[j][0], shapes[j][1]}, (int64_t[]){3, 3}, false);
    }
    f->a.cfg.alpha = 0.5f;
    float *out = generate_ok(&f->a, 1);
    for (int j = 0; j < 2; j++) {
        const struct slora_factor *k = &f->g[j].k[0];
        for (int64_t o = 0; o < shapes[j][0]; o++)
            for (int64_t i = 0; i < shapes[j][1]; i++) {
                float s = 0; /* dyadic values: exact in any order */
                for (int r = 0; r < 3; r++)
                    s += k->a[0][o * 3 + r] * k->a[1][i * 3 + r];
                ck_assert_float_eq(out[f->t[j].offset + o * shapes[j][1] + i], 0.5f * s);
            }
    }
    free(out);
    fx_free(f);
}
END_TEST

/* One group per case: (M, K, n per factor, r per factor, core?, N_g). */
struct gen_case {
    const char *name;
    int order;
    int n_kron;
    int64_t n[3][4];
    int64_t r[3][4];
    bool core[3];
    int64_t len;
};

static const struct gen_case gen_cases[] = {
    {"cp2 rows, folded", 2, 1, {{300, 333}}, {{4, 4}}, {false}, 99001},
    {"cp2 long rows (column tiles), folded", 2, 1, {{3, 40000}}, {{2, 2}}, {false}, 100001},
    {"cp2 long rows, folded", 2, 1, {{130, 1500}}, {{3, 3}}, {false}, 130 * 1500 - 777},
    {"cp2 rows of 256 (registers to memory), folded",
     2,
     1,
     {{300, 256}},
     {{5, 5}},
     {false},
     300 * 256 - 100},
    {"cp2 rows of 301 (registers to memory, unaligned rows)",
     2,
     1,
     {{250, 301}},
     {{3, 3}},
     {false},
     250 * 301},
    {"cp2 rank 70 (GEMM, 2-D tiles), folded",
     2,
     1,
     {{100, 1500}},
     {{70, 70}},
     {false},
     100 * 1500 - 33},
    {"cp2 rank 70 (GEMM, whole rows)", 2, 1, {{100, 300}}, {{70, 70}}, {false}, 30000},
    {"tucker3 last rank 65 (GEMM)", 3, 1, {{4, 5, 300}}, {{2, 2, 65}}, {true}, 6000},
    {"cp1", 1, 1, {{50}}, {{3}}, {false}, 50},
    {"cp3", 3, 1, {{5, 6, 7}}, {{3, 3, 3}}, {false}, 200},
    {"cp4", 4, 1, {{3, 4, 2, 5}}, {{2, 2, 2, 2}}, {false}, 120},
    {"tucker1", 1, 1, {{40}}, {{3}}, {true}, 37},
    {"tucker2", 2, 1, {{9, 11}}, {{2, 3}}, {true}, 99},
    {"tucker3 folded", 3, 1, {{3, 4, 5}}, {{2, 3, 2}}, {true}, 55},
    {"tucker4 rank > n", 4, 1, {{2, 3, 4, 3}}, {{3, 2, 5, 4}}, {true}, 72},
    {"lokr", 2, 2, {{4, 4}, {12, 10}}, {{4, 4}, {2, 2}}, {false, false}, 48 * 40},
    {"kron3 mixed, folded",
     3,
     3,
     {{2, 3, 2}, {3, 2, 2}, {2, 2, 3}},
     {{2, 2, 2}, {2, 2, 2}, {2, 2, 2}},
     {true, false, true},
     1700},
    {"kron2 m1", 1, 2, {{5}, {7}}, {{2}, {3}}, {true, false}, 35},
    {"kron2 long runs", 2, 2, {{2, 2}, {3, 20000}}, {{1, 1}, {2, 2}}, {false, true}, 230000},
    /* contraction orders (slora_superlora_cost picks them) */
    {"cp3 split after mode 0 (KR of modes 1, 2), folded",
     3,
     1,
     {{40, 40, 1}},
     {{30, 30, 30}},
     {false},
     1000},
    {"cp4 split in the middle", 4, 1, {{6, 5, 5, 6}}, {{3, 3, 3, 3}}, {false}, 900},
    {"cp2 one-row fold: columns cut to N_g", 2, 1, {{1, 5000}}, {{3, 3}}, {false}, 3000},
    {"cp2 one-row fold, rank 70 (GEMM)", 2, 1, {{1, 5000}}, {{70, 70}}, {false}, 3001},
    {"cp3 one-row fold (KR rows cut to N_g)", 3, 1, {{1, 3, 2000}}, {{2, 2, 2}}, {false}, 5000},
    {"tucker3 mode 0 shrinks first", 3, 1, {{1, 8, 5}}, {{4, 2, 3}}, {true}, 40},
    {"tucker4 modes 2, 0, 1", 4, 1, {{2, 9, 1, 4}}, {{3, 2, 3, 2}}, {true}, 72},
};

static struct fixture *fx_case(const struct gen_case *c)
{
    struct fixture *f = fx_new(1 << 20);
    int64_t shape[1][2] = {{1, c->len}};
    fx_targets(f, 1, (const int64_t(*)[2])shape);
    struct slora_group *g = fx_group(f, 0, c->len, c->order);
    for (int k = 0; k < c->n_kron; k++)
        fx_factor(f, g, c->n[k], c->r[k], c->core[k]);
    return f;
}

START_TEST(generate_matches_naive)
{
    const struct gen_case *c = &gen_cases[_i];
    struct fixture *f = fx_case(c);
    f->a.cfg.alpha = 1.5f;
    ck_assert_msg(f->g[0].code_len >= c->len, "%s: fixture fold too small", c->name);
    float *out = generate_ok(&f->a, 2);
    double *ref = naive_delta(&f->a);
    assert_agree(out, ref, (size_t)f->a.total);
    free(ref);
    free(out);
    fx_free(f);
}
END_TEST

/* Scratch of the cheapest contraction orders, by hand from factor.h's
 * rules and superlora.c's layout (prepare area | 32768-float worker tile). */
START_TEST(cost_follows_cheapest_order)
{
    /* issue 13: CP (276, 276, 1), rank 1800, on w1 (N = 11008). Split after
     * mode 0: U_L = A_0 in place, U_R = A_1 * A_2 rows (276, 1800); the
     * naive order built (76176, 1800) twice. */
    struct fixture *f = fx_new(1000000);
    static const int64_t w1[1][2] = {{172, 64}};
    fx_targets(f, 1, w1);
    struct slora_group *g = fx_group(f, 0, 11008, 3);
    fx_factor(f, g, (int64_t[]){276, 276, 1}, (int64_t[]){1800, 1800, 1800}, false);
    struct slora_superlora_cost cost;
    char diag[256] = "";
    ck_assert_int_eq(slora_superlora_cost(&f->a, 1, &cost, diag, sizeof(diag)), 0);
    ck_assert_uint_eq(cost.scratch_bytes, (276 * 1800 + 32768) * 4);
    /* 40 rows x 276 columns x rank 1800, the Khatri-Rao rows, the output */
    ck_assert_uint_eq(cost.work, 40 * 276 * 1800 + 276 * 1800 + 11008);
    fx_free(f);

    /* Tucker (1, 60000, 4), core (64, 1, 64): mode 0 (64 -> 1) goes first,
     * so the intermediate peaks at (1, 60000, 64), not (64, 60000, 64);
     * two such buffers, then U_R transposed (64, 4) for the rank-64 kernel. */
    f = fx_new(70000);
    static const int64_t row[1][2] = {{1, 240000}};
    fx_targets(f, 1, row);
    g = fx_group(f, 0, 240000, 3);
    fx_factor(f, g, (int64_t[]){1, 60000, 4}, (int64_t[]){64, 1, 64}, true);
    ck_assert_int_eq(slora_superlora_cost(&f->a, 1, &cost, diag, sizeof(diag)), 0);
    ck_assert_uint_eq(cost.scratch_bytes, (2 * 60000 * 64 + 256 + 32768) * 4);
    fx_free(f);
}
END_TEST

/* ---- projection and shuffle ---- */

struct ff_case {
    int64_t n0, n1; /* CP M = 2 code shape: P = n0 * n1 */
    int64_t len;    /* D */
};

static const struct ff_case ff_cases[] = {
    {1, 5, 12},        /* L = 16, P < D */
    {10, 10, 30},      /* P > D */
    {1, 1, 1},         /* L = 1 */
    {100, 100, 70000}, /* L = 2^17: two-pass second transform, Lp = 2^14 */
    {300, 300, 5000},  /* L = 2^17 with P > L / 2 */
};

START_TEST(fastfood_matches_naive)
{
    const struct ff_case *c = &ff_cases[_i];
    struct fixture *f = fx_new(4096);
    int64_t shape[1][2] = {{1, c->len}};
    fx_targets(f, 1, (const int64_t(*)[2])shape);
    struct slora_group *g = fx_group(f, 0, c->len, 2);
    fx_factor(f, g, (int64_t[]){c->n0, c->n1}, (int64_t[]){2, 2}, false);
    f->a.cfg.projection = true;
    f->a.cfg.projection_seed = 11;
    f->a.cfg.alpha = 2.0f;
    float *out = generate_ok(&f->a, 2);
    int64_t P = g->code_len;
    double *x = malloc((size_t)P * sizeof(double)), *ref = malloc((size_t)c->len * sizeof(double));
    for (int64_t e = 0; e < P; e++)
        x[e] = naive_code(g, e);
    naive_fastfood(11, 0, x, P, c->len, ref);
    for (int64_t i = 0; i < c->len; i++)
        ref[i] *= 2.0;
    assert_agree(out, ref, (size_t)c->len);
    free(x);
    free(ref);
    free(out);
    fx_free(f);
}
END_TEST

START_TEST(shuffle_permutes_delta)
{
    struct fixture *f = fx_new(8192);
    static const int64_t shapes[2][2] = {{100, 301}, {200, 201}};
    fx_targets(f, 2, shapes);
    struct slora_group *g = fx_group(f, 0, 50000, 2);
    fx_factor(f, g, (int64_t[]){250, 200}, (int64_t[]){2, 2}, false);
    g = fx_group(f, 1, f->a.total - 50000, 3);
    fx_factor(f, g, (int64_t[]){3, 50, 200}, (int64_t[]){2, 2, 2}, true);
    float *plain = generate_ok(&f->a, 1);
    struct slora_superlora_cost plain_cost, cost;
    char diag[256];
    ck_assert_int_eq(slora_superlora_cost(&f->a, 1, &plain_cost, diag, sizeof(diag)), 0);
    f->a.cfg.shuffle = true;
    f->a.cfg.shuffle_seed = 7;
    /* the shuffled delta is staged in scratch: at least N more floats */
    ck_assert_int_eq(slora_superlora_cost(&f->a, 1, &cost, diag, sizeof(diag)), 0);
    ck_assert_uint_ge(cost.scratch_bytes, plain_cost.scratch_bytes + (size_t)f->a.total * 4);
    float *shuffled = generate_ok(&f->a, 1);
    uint64_t key = slora_rnd(7, 4, 0);
    for (int64_t i = 0; i < f->a.total; i++)
        ck_assert_float_eq(shuffled[i], plain[slora_perm(key, (uint64_t)f->a.total, (uint64_t)i)]);
    free(plain);
    free(shuffled);
    fx_free(f);
}
END_TEST

/* Projected + shuffled Tucker, LoKr and column tasks: 1, 2, 3 threads. */
START_TEST(thread_count_invariant)
{
    struct fixture *f = fx_new(1 << 18);
    static const int64_t shapes[3][2] = {{3, 40000}, {48, 40}, {300, 300}};
    fx_targets(f, 3, shapes);
    struct slora_group *g = fx_group(f, 0, 120000, 2);
    fx_factor(f, g, (int64_t[]){3, 40000}, (int64_t[]){2, 2}, false);
    g = fx_group(f, 1, 1920, 2);
    fx_factor(f, g, (int64_t[]){4, 4}, (int64_t[]){4, 4}, false);
    fx_factor(f, g, (int64_t[]){12, 10}, (int64_t[]){2, 2}, false);
    g = fx_group(f, 2, 90000, 3);
    fx_factor(f, g, (int64_t[]){75, 30, 40}, (int64_t[]){3, 4, 3}, true);
    float *base[2];
    for (int variant = 0; variant < 2; variant++) {
        f->a.cfg.shuffle = variant == 1;
        f->a.cfg.shuffle_seed = 3;
        f->a.cfg.projection = variant == 1;
        f->a.cfg.projection_seed = 5;
        base[variant] = generate_ok(&f->a, 1);
        for (int t = 2; t <= 3; t++) {
            float *o = generate_ok(&f->a, t);
            ck_assert_int_eq(memcmp(o, base[variant], (size_t)f->a.total * sizeof(float)), 0);
            free(o);
        }
    }
    ck_assert_int_ne(memcmp(base[0], base[1], (size_t)f->a.total * sizeof(float)), 0);
    free(base[0]);
    free(base[1]);
    fx_free(f);
}
END_TEST

/* ---- rejections ---- */

struct bad_case {
    const char *name;
    bool shuffle;
    bool projection;
    float alpha;
    int64_t poison; /* factor element set to 1e30 (or -1: none) */
    int want;
    const char *frag;
};

static const struct bad_case bad_cases[] = {
    {"overflow", false, false, 1.0f, 0, SLORA_ENONFINITE, "layers.1.wq at [0, "},
    {"overflow shuffled", true, false, 1.0f, 0, SLORA_ENONFINITE, "non-finite dW in layers."},
    {"overflow projected", false, true, 1.0f, 0, SLORA_ENONFINITE, "non-finite dW in layers.1.wq"},
    {"alpha overflow", false, false, 3e38f, -1, SLORA_ENONFINITE, "layers.0.wq at [0, 1]"},
};

START_TEST(nonfinite_rejected)
{
    const struct bad_case *c = &bad_cases[_i];
    struct fixture *f = fx_new(4096);
    static const int64_t shapes[2][2] = {{4, 5}, {6, 7}};
    fx_targets(f, 2, shapes);
    for (int j = 0; j < 2; j++) {
        struct slora_group *g = fx_group(f, j, shapes[j][0] * shapes[j][1], 2);
        fx_factor(f, g, (int64_t[]){shapes[j][0], shapes[j][1]}, (int64_t[]){2, 2}, false);
    }
    /* g0: dW[0, 0] = 0 and dW[0, 1] = 2 (times alpha) */
    float *a0 = (float *)f->g[0].k[0].a[0], *a1 = (float *)f->g[0].k[0].a[1];
    a0[0] = a0[1] = a1[2] = a1[3] = 1.0f;
    a1[0] = a1[1] = 0.0f;
    if (c->poison >= 0) {
        float *b = (float *)f->g[1].k[0].a[0], *at = (float *)f->g[1].k[0].a[1];
        b[0] = b[1] = 1e30f;
        for (int i = 0; i < 14; i++)
            at[i] = 1e30f;
    }
    f->a.cfg.shuffle = c->shuffle;
    f->a.cfg.shuffle_seed = 1;
    f->a.cfg.projection = c->projection;
    f->a.cfg.projection_seed = 2;
    f->a.cfg.alpha = c->alpha;
    float out[62];
    char diag[256] = "";
    int rc = slora_superlora_generate(&f->a, out, 2, diag, sizeof(diag));
    ck_assert_msg(rc == c->want, "%s: rc %d (%s)", c->name, rc, diag);
    ck_assert_msg(strstr(diag, c->frag), "%s: diag '%s' lacks '%s'", c->name, diag, c->frag);
    fx_free(f);
}
END_TEST

/* Whole rows take the register-to-memory path: its check too. */
START_TEST(nonfinite_in_streamed_rows)
{
    struct fixture *f = fx_new(4096);
    static const int64_t shapes[1][2] = {{600, 256}};
    fx_targets(f, 1, shapes);
    struct slora_group *g = fx_group(f, 0, 600 * 256, 2);
    fx_factor(f, g, (int64_t[]){600, 256}, (int64_t[]){2, 2}, false);
    float *b = (float *)g->k[0].a[0], *at = (float *)g->k[0].a[1];
    b[2 * 530] = b[2 * 530 + 1] = 1e30f; /* row 530: past the first tile of 128 rows */
    for (int i = 0; i < 512; i++)
        at[i] = 1e30f;
    float *out = aligned_alloc(64, 600 * 256 * sizeof(float));
    char diag[256] = "";
    ck_assert_int_eq(slora_superlora_generate(&f->a, out, 2, diag, sizeof(diag)), SLORA_ENONFINITE);
    ck_assert_msg(strstr(diag, "layers.0.wq at [530, 0]"), "%s", diag);
    free(out);
    fx_free(f);
}
END_TEST

START_TEST(fastfood_zero_norm_rejected)
{
    /* The only gd of L = 1 is zero for seed 69283, group 0:
     * /usr/bin/python3 -c "...mix/rnd as in rnd_known_values
     * (check_superlora_kernels.c)...
     * for s in range(3000000):
     *   u=rnd(rnd(s,1,0),3,0)
     *   if (u&0xFFFF)+((u>>16)&0xFFFF)+((u>>32)&0xFFFF)+(u>>48)==131070: print(s); break"
     * -> 69283 */
    struct fixture *f = fx_new(64);
    static const int64_t shapes[1][2] = {{1, 1}};
    fx_targets(f, 1, shapes);
    struct slora_group *g = fx_group(f, 0, 1, 1);
    fx_factor(f, g, (int64_t[]){1}, (int64_t[]){1}, false);
    f->a.cfg.projection = true;
    f->a.cfg.projection_seed = 69283;
    float out[1];
    char diag[256] = "";
    ck_assert_int_eq(slora_superlora_generate(&f->a, out, 1, diag, sizeof(diag)), SLORA_ELIMIT);
    ck_assert_ptr_nonnull(strstr(diag, "norm2(gd) = 0"));
    f->a.cfg.projection_seed = 69284;
    ck_assert_int_eq(slora_superlora_generate(&f->a, out, 1, diag, sizeof(diag)), 0);
    fx_free(f);
}
END_TEST

/* Group tables that would index out of bounds: (what to break, message). */
static const struct {
    int what;
    const char *frag;
} table_cases[] = {
    {0, "group 0: inconsistent group table"},
    {1, "groups cover 19 of N = 20 entries"},
    {2, "group 1: offset 11, expected 10"},
    {3, "group 0: inconsistent group table"},
};

START_TEST(inconsistent_group_rejected)
{
    struct fixture *f = fx_new(4096);
    static const int64_t shapes[1][2] = {{4, 5}};
    fx_targets(f, 1, shapes);
    struct slora_group *g = fx_group(f, 0, 10, 2);
    fx_factor(f, g, (int64_t[]){2, 5}, (int64_t[]){2, 2}, false);
    struct slora_group *g1 = fx_group(f, 1, 10, 2);
    fx_factor(f, g1, (int64_t[]){2, 5}, (int64_t[]){2, 2}, false);
    switch (table_cases[_i].what) {
    case 0:
        g->n[1] = 6; /* shape no longer the product of the factors' */
        break;
    case 1:
        g1->len = 9;
        g1->code_len = 10;
        break;
    case 2:
        g1->offset = 11;
        break;
    case 3:
        g->code_len = 9; /* fold shorter than N_g without projection */
        break;
    }
    float out[20];
    char diag[256] = "";
    ck_assert_int_eq(slora_superlora_generate(&f->a, out, 1, diag, sizeof(diag)), SLORA_EINVAL);
    ck_assert_msg(strstr(diag, table_cases[_i].frag), "diag '%s'", diag);
    fx_free(f);
}
END_TEST

START_TEST(huge_code_rejected)
{
    struct fixture *f = fx_new(1 << 17);
    static const int64_t shapes[1][2] = {{2, 5}};
    fx_targets(f, 1, shapes);
    struct slora_group *g = fx_group(f, 0, 10, 2);
    fx_factor(f, g, (int64_t[]){50000, 50000}, (int64_t[]){1, 1}, false);
    f->a.cfg.projection = true;
    float out[10];
    char diag[256] = "";
    ck_assert_int_eq(slora_superlora_generate(&f->a, out, 1, diag, sizeof(diag)), SLORA_ELIMIT);
    ck_assert_msg(strstr(diag, "group 0: code length 2500000000 over the limit"), "%s", diag);
    fx_free(f);
}
END_TEST

Suite *slora_superlora_suite(void)
{
    Suite *s = suite_create("superlora");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, lora_equals_b_at);
    tcase_add_loop_test(tc, generate_matches_naive, 0,
                        (int)(sizeof(gen_cases) / sizeof(gen_cases[0])));
    tcase_add_loop_test(tc, fastfood_matches_naive, 0,
                        (int)(sizeof(ff_cases) / sizeof(ff_cases[0])));
    tcase_add_test(tc, cost_follows_cheapest_order);
    tcase_add_test(tc, shuffle_permutes_delta);
    tcase_add_test(tc, thread_count_invariant);
    tcase_add_loop_test(tc, nonfinite_rejected, 0, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
    tcase_add_test(tc, nonfinite_in_streamed_rows);
    tcase_add_test(tc, fastfood_zero_norm_rejected);
    tcase_add_loop_test(tc, inconsistent_group_rejected, 0,
                        (int)(sizeof(table_cases) / sizeof(table_cases[0])));
    tcase_add_test(tc, huge_code_rejected);
    suite_add_tcase(s, tc);
    return s;
}
