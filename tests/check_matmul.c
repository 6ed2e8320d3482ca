/* check_matmul.c - the typed product (matmul.h) for every weight type:
 *   - the compiled path (AVX-512, AVX2 or portable) against the portable
 *     reference slora__matmul_ref, on edge shapes (one block, many blocks,
 *     odd float widths, row counts off the 4-row tile, n = 1..9, BLAS's n);
 *   - the K-quants' paths for n > 1 (shared weight rows, panels) bit for
 *     bit against n = 1 and every two-slice split, and at the integer
 *     sums' bounds;
 *   - against a double-precision product of the dequantized weights with
 *     the original activations, within the bound the activation format's
 *     rounding allows;
 *   - slices [r0, r1) off the tile grid and add = true give bit-identical
 *     results to the whole product, and so does each activation row alone
 *     (n = 1) against a batch;
 *   - Q8_0 quants at the format's bounds.
 * make check-kernels runs this suite in portable and AVX2-only builds. */
#include "internal.h"
#include "matmul_internal.h"

#include <slora/matmul.h>
#include <slora/quant.h>

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const enum slora_dtype types[] = {
    SLORA_DTYPE_F32,  SLORA_DTYPE_F16,  SLORA_DTYPE_BF16, SLORA_DTYPE_Q8_0,
    SLORA_DTYPE_Q4_0, SLORA_DTYPE_Q4_1, SLORA_DTYPE_Q5_0, SLORA_DTYPE_Q5_1,
    SLORA_DTYPE_Q4_K, SLORA_DTYPE_Q5_K, SLORA_DTYPE_Q6_K,
};
#define N_TYPES (int)(sizeof(types) / sizeof(types[0]))

static uint32_t rng(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Uniform in [-1, 1) with an occasional outlier of 4x, as real rows have. */
static void fill(float *x, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        float v = (float)rng(&seed) / 8388608.0f - 1.0f;
        x[i] = rng(&seed) % 61 == 0 ? 4 * v : v;
    }
}

static void *xalloc(size_t n)
{
    void *p = slora__alloc64(n);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* A random (rows, cols) weight of type t, its dequantized floats, and n
 * activation rows quantized for it. */
struct fixture {
    enum slora_dtype t;
    int64_t rows, cols;
    int n;
    struct slora_tensor w;
    void *wdata;
    float *wf; /* (rows, cols) dequantized */
    float *x;  /* (n, cols) */
    void *xq;  /* (n, stride) */
    size_t stride;
};

static void fixture_init(struct fixture *f, enum slora_dtype t, int64_t rows, int64_t cols, int n,
                         uint32_t seed)
{
    f->t = t;
    f->rows = rows;
    f->cols = cols;
    f->n = n;
    float *src = xalloc((size_t)(rows * cols) * sizeof(float));
    fill(src, (size_t)(rows * cols), seed);
    size_t rb = slora_dtype_row_bytes(t, cols);
    ck_assert_uint_gt(rb, 0);
    f->wdata = xalloc(rb * (size_t)rows);
    f->wf = xalloc((size_t)(rows * cols) * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        ck_assert_int_eq(
            slora_quant_quantize(t, src + r * cols, (uint8_t *)f->wdata + r * rb, cols), 0);
        ck_assert_int_eq(
            slora_quant_dequantize(t, (uint8_t *)f->wdata + r * rb, f->wf + r * cols, cols), 0);
    }
    free(src);
    ck_assert(slora_tensor_init(&f->w, t, f->wdata, rows, cols));
    f->x = xalloc((size_t)n * (size_t)cols * sizeof(float));
    fill(f->x, (size_t)n * (size_t)cols, seed * 7 + 1);
    f->stride = slora_matmul_xq_bytes(t, cols);
    ck_assert_uint_gt(f->stride, 0);
    ck_assert_uint_eq(f->stride % 64, 0);
    f->xq = xalloc(f->stride * (size_t)n);
    slora_matmul_quantize(t, f->x, n, cols, f->xq, f->stride);
}

static void fixture_free(struct fixture *f)
{
    free(f->wdata);
    free(f->wf);
    free(f->x);
    free(f->xq);
}

/* The largest |x| of the activation block holding column j. */
static float block_amax(const struct fixture *f, int i, int64_t j)
{
    int64_t be = slora_dtype_block_elems(slora_matmul_vec_type(f->t));
    const float *x = f->x + (size_t)i * (size_t)f->cols + j / be * be;
    float a = 0;
    for (int64_t k = 0; k < be; k++)
        a = fmaxf(a, fabsf(x[k]));
    return a;
}

/* Bound on |y - W x| for activation row i, weight row r: the activation
 * format's rounding (Q8: half a step of amax / 127 plus the f16 rounding of
 * the step; Q8_1's f16 d sum(q), which Q4_1/Q5_1 scale by the block min:
 * 2^-11 of max|w| sum|x| per block; F32: none) plus float summation, cols
 * terms of relative 2^-22 each, over sum |w x|. */
static double float_bound(const struct fixture *f, int i, int64_t r, double *ref)
{
    enum slora_dtype vt = slora_matmul_vec_type(f->t);
    double s = 0, abs = 0, q = 0;
    for (int64_t j = 0; j < f->cols; j++) {
        double w = f->wf[r * f->cols + j], x = f->x[(size_t)i * (size_t)f->cols + j];
        s += w * x;
        abs += fabs(w * x);
        if (vt != SLORA_DTYPE_F32)
            q += fabs(w) * block_amax(f, i, j) * (1.0 / 254 + 1.0 / 1024);
        if (vt == SLORA_DTYPE_Q8_1) {
            double wmax = 0;
            for (int64_t k = j / 32 * 32; k < j / 32 * 32 + 32; k++)
                wmax = fmax(wmax, fabs(f->wf[r * f->cols + k]));
            q += wmax * 1.01 * fabs(x) / 2048;
        }
    }
    *ref = s;
    return q + abs * (double)(f->cols + 16) / 4194304.0 + 1e-30;
}

static float *run(const struct fixture *f, bool ref, int64_t r0, int64_t r1, bool add, float init)
{
    float *y = xalloc((size_t)f->n * (size_t)f->rows * sizeof(float));
    for (size_t k = 0; k < (size_t)f->n * (size_t)f->rows; k++)
        y[k] = init;
    if (ref)
        slora__matmul_ref(&f->w, f->xq, f->stride, f->n, y, (size_t)f->rows, r0, r1, add);
    else
        slora_matmul(&f->w, f->xq, f->stride, f->n, y, (size_t)f->rows, r0, r1, add);
    return y;
}

/* The product with the activation rows one at a time (n = 1: decode). */
static float *run_single(const struct fixture *f)
{
    float *y = xalloc((size_t)f->n * (size_t)f->rows * sizeof(float));
    for (int i = 0; i < f->n; i++)
        slora_matmul(&f->w, (const uint8_t *)f->xq + (size_t)i * f->stride, f->stride, 1,
                     y + (size_t)i * (size_t)f->rows, (size_t)f->rows, 0, f->rows, false);
    return y;
}

/* Shapes per type: block multiples, plus odd widths for the float types. */
static void shapes(enum slora_dtype t, int64_t *cols, int *ncols)
{
    int64_t be = slora_dtype_block_elems(t);
    if (be == 1) {
        static const int64_t fc[] = {1, 15, 16, 37, 64, 300};
        memcpy(cols, fc, sizeof(fc));
        *ncols = 6;
    } else {
        cols[0] = be;
        cols[1] = be * (be == 32 ? 9 : 3);
        *ncols = 2;
    }
}

/* a (the compiled kernels) against b (the reference) on every element of
 * f, and b against the exact product within the format's bound. */
static void assert_near_ref(const struct fixture *f, const float *a, const float *b)
{
    for (int i = 0; i < f->n; i++)
        for (int64_t r = 0; r < f->rows; r++) {
            double ref, bound = float_bound(f, i, r, &ref);
            float ya = a[(size_t)i * (size_t)f->rows + r];
            float yb = b[(size_t)i * (size_t)f->rows + r];
            /* kernel vs reference: the same integer block sums added in
             * another order; float vs the exact product */
            double abs_terms = 0;
            for (int64_t j = 0; j < f->cols; j++)
                abs_terms +=
                    fabs((double)f->wf[r * f->cols + j] * f->x[(size_t)i * (size_t)f->cols + j]);
            double tol = abs_terms * 1.1 * (double)(f->cols + 16) / 4194304.0 + 1e-30;
            ck_assert_msg(fabs((double)ya - yb) <= tol,
                          "%s (%lld, %lld) n %d [%d, %lld]: kernel %.9g ref %.9g",
                          slora_dtype_name(f->t), (long long)f->rows, (long long)f->cols, f->n, i,
                          (long long)r, ya, yb);
            ck_assert_msg(fabs(yb - ref) <= bound,
                          "%s (%lld, %lld) [%d, %lld]: ref %.9g exact %.9g bound %g",
                          slora_dtype_name(f->t), (long long)f->rows, (long long)f->cols, i,
                          (long long)r, yb, ref, bound);
        }
}

START_TEST(simd_vs_ref)
{
    enum slora_dtype t = types[_i];
    static const int64_t rows[] = {1, 5, 13};
    static const int ns[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 17};
    int64_t cols[8];
    int nc;
    shapes(t, cols, &nc);
    for (int c = 0; c < nc; c++)
        for (size_t ri = 0; ri < sizeof(rows) / sizeof(rows[0]); ri++)
            for (size_t ni = 0; ni < sizeof(ns) / sizeof(ns[0]); ni++) {
                struct fixture f;
                fixture_init(&f, t, rows[ri], cols[c], ns[ni], (uint32_t)(c * 100 + ri * 10 + ni));
                float *a = run(&f, false, 0, f.rows, false, 0);
                float *b = run(&f, true, 0, f.rows, false, 0);
                assert_near_ref(&f, a, b);
                free(a);
                free(b);
                fixture_free(&f);
            }
}
END_TEST

START_TEST(slices_and_add)
{
    enum slora_dtype t = types[_i];
    int64_t cols = slora_dtype_block_elems(t) == 1 ? 40 : slora_dtype_block_elems(t) * 2;
    static const int ns[] = {1, 6, 20};
    for (size_t ni = 0; ni < sizeof(ns) / sizeof(ns[0]); ni++) {
        struct fixture f;
        fixture_init(&f, t, 23, cols, ns[ni], 99u + (uint32_t)ni);
        float *whole = run(&f, false, 0, f.rows, false, 0);
        /* cut points off the 4-row tile and the row blocks */
        static const int64_t cuts[] = {0, 1, 2, 7, 8, 13, 22, 23};
        float *y = run(&f, false, 0, 0, false, -1);
        for (size_t k = 0; k + 1 < sizeof(cuts) / sizeof(cuts[0]); k++)
            slora_matmul(&f.w, f.xq, f.stride, f.n, y, (size_t)f.rows, cuts[k], cuts[k + 1], false);
        ck_assert_mem_eq(y, whole, (size_t)f.n * (size_t)f.rows * sizeof(float));
        /* an empty slice writes nothing */
        slora_matmul(&f.w, f.xq, f.stride, f.n, y, (size_t)f.rows, 5, 5, false);
        ck_assert_mem_eq(y, whole, (size_t)f.n * (size_t)f.rows * sizeof(float));
        free(y);
        /* add: y = 0.25 + dot, the same rounding the test does */
        y = run(&f, false, 3, 17, true, 0.25f);
        for (int i = 0; i < f.n; i++)
            for (int64_t r = 0; r < f.rows; r++) {
                float got = y[(size_t)i * (size_t)f.rows + r];
                float want =
                    r >= 3 && r < 17 ? 0.25f + whole[(size_t)i * (size_t)f.rows + r] : 0.25f;
                ck_assert_msg(got == want, "%s row %lld: %.9g vs %.9g", slora_dtype_name(t),
                              (long long)r, got, want);
            }
        free(y);
        free(whole);
        fixture_free(&f);
    }
}
END_TEST

static const enum slora_dtype ktypes[] = {SLORA_DTYPE_Q4_K, SLORA_DTYPE_Q5_K, SLORA_DTYPE_Q6_K};

/* The K-quant product for n > 1 (a weight row per 4 activation rows below
 * 12, Q6_K 16; weight panels swept by activation rows from there) against
 * the reference, and bit for bit against n = 1 row by row (the decode
 * path) and against every split of the rows in two slices: 37 rows (panels
 * and a tail), 9 super-blocks (several chunks, residues mod 8 past the
 * first), n across both paths, register tiles and activation blocks. */
START_TEST(kquant_panel)
{
    enum slora_dtype t = ktypes[_i];
    static const int ns[] = {2, 5, 7, 17, 40, 130};
    for (size_t ni = 0; ni < sizeof(ns) / sizeof(ns[0]); ni++) {
        struct fixture f;
        fixture_init(&f, t, 37, 256 * 9, ns[ni], 500u + (uint32_t)ni);
        float *a = run(&f, false, 0, f.rows, false, 0);
        float *b = run(&f, true, 0, f.rows, false, 0);
        assert_near_ref(&f, a, b);
        float *one = run_single(&f);
        ck_assert_mem_eq(a, one, (size_t)f.n * (size_t)f.rows * sizeof(float));
        for (int64_t cut = 1; (ns[ni] == 5 || ns[ni] == 17) && cut < f.rows; cut++) {
            float *y = run(&f, false, 0, cut, false, -1);
            slora_matmul(&f.w, f.xq, f.stride, f.n, y, (size_t)f.rows, cut, f.rows, false);
            ck_assert_msg(!memcmp(y, a, (size_t)f.n * (size_t)f.rows * sizeof(float)),
                          "%s cut %lld", slora_dtype_name(t), (long long)cut);
            free(y);
        }
        free(a);
        free(b);
        free(one);
        fixture_free(&f);
    }
}
END_TEST

/* Every element has the same bits whatever n, the row slice and the
 * grouping of rows and activation rows into tiles or panels: n in {2, 5,
 * 17, 40, 70} (Q8_0's panels take 64 activation rows at a time) against each
 * activation row alone (decode's path), and two slices cut at every row
 * (tails of every size off the 4- and 8-row groups); 19 rows, 25 blocks of
 * 32 (three full groups of 8 blocks and a tail for decode's 8-block steps).
 * Also against the reference, within the tolerance of simd_vs_ref. */
START_TEST(batch_invariance)
{
    enum slora_dtype t = types[_i];
    int64_t be = slora_dtype_block_elems(t);
    int64_t cols = be == 1 ? 300 : be == 32 ? 32 * 25 : be * 4;
    static const int ns[] = {2, 5, 17, 40, 70};
    for (size_t ni = 0; ni < sizeof(ns) / sizeof(ns[0]); ni++) {
        struct fixture f;
        fixture_init(&f, t, 19, cols, ns[ni], 300u + (uint32_t)ni);
        size_t ny = (size_t)f.n * (size_t)f.rows;
        float *whole = run(&f, false, 0, f.rows, false, 0);
        float *ref = run(&f, true, 0, f.rows, false, 0);
        assert_near_ref(&f, whole, ref);
        float *y = xalloc(ny * sizeof(float));
        for (int i = 0; i < f.n; i++) {
            slora_matmul(&f.w, (const uint8_t *)f.xq + (size_t)i * f.stride, f.stride, 1,
                         y + (size_t)i * (size_t)f.rows, (size_t)f.rows, 0, f.rows, false);
        }
        ck_assert_mem_eq(y, whole, ny * sizeof(float));
        for (int64_t c = 1; c < f.rows; c++) {
            memset(y, 0xff, ny * sizeof(float));
            slora_matmul(&f.w, f.xq, f.stride, f.n, y, (size_t)f.rows, 0, c, false);
            slora_matmul(&f.w, f.xq, f.stride, f.n, y, (size_t)f.rows, c, f.rows, false);
            ck_assert_msg(!memcmp(y, whole, ny * sizeof(float)), "%s n %d cut %lld",
                          slora_dtype_name(t), f.n, (long long)c);
        }
        free(y);
        free(ref);
        free(whole);
        fixture_free(&f);
    }
}
END_TEST

/* Weight row r as the extreme blocks of its type: r % 3 == 0 the largest
 * quants and scales, 1 the smallest quants (Q6_K: -32) with the largest
 * positive scales (Q4_K/Q5_K: and mins), 2 as quantized. */
static void extreme_row(enum slora_dtype t, int64_t r, uint8_t *row, int64_t nb)
{
    size_t bb = slora_dtype_row_bytes(t, 256);
    for (int64_t b = 0; b < nb && r % 3 != 2; b++) {
        uint8_t *blk = row + (size_t)b * bb;
        uint8_t q = r % 3 ? 0x00 : 0xFF;
        if (t == SLORA_DTYPE_Q6_K) {
            struct slora_quant_q6_k *k = (struct slora_quant_q6_k *)blk;
            memset(k->ql, q, sizeof(k->ql));
            memset(k->qh, q, sizeof(k->qh));
            memset(k->scales, r % 3 ? 0x7F : 0x80, sizeof(k->scales));
            k->d = 0x2E66; /* 0.1 */
        } else {
            memset(blk + 4, 0xFF, 12); /* every scale and min 63 */
            memset(blk + 16, q, bb - 16);
            uint16_t d[2] = {0x2E66, 0x3C00};
            memcpy(blk, d, sizeof(d));
        }
    }
}

/* The integer sums at their bounds: quants 15/31/63 (Q6_K: 31 and -32
 * after the offset) by scales 63 (Q6_K: -128, 127) against activation
 * quants +-127, every super-block; kernel vs reference, n > 1 vs n = 1. */
START_TEST(kquant_extremes)
{
    enum slora_dtype t = ktypes[_i];
    struct fixture f;
    fixture_init(&f, t, 21, 256 * 3, 6, 77);
    for (int64_t r = 0; r < f.rows; r++) {
        uint8_t *row = (uint8_t *)f.wdata + (size_t)r * f.w.row_bytes;
        extreme_row(t, r, row, f.cols / 256);
        ck_assert_int_eq(slora_quant_dequantize(t, row, f.wf + r * f.cols, f.cols), 0);
    }
    for (int64_t j = 0; j < f.cols; j++) { /* rows 0, 1: x = +1 and -1, quants -127 and +127 */
        f.x[j] = 1.0f;
        f.x[f.cols + j] = -1.0f;
    }
    slora_matmul_quantize(t, f.x, f.n, f.cols, f.xq, f.stride);
    float *a = run(&f, false, 0, f.rows, false, 0);
    float *b = run(&f, true, 0, f.rows, false, 0);
    assert_near_ref(&f, a, b);
    float *one = run_single(&f);
    ck_assert_mem_eq(a, one, (size_t)f.n * (size_t)f.rows * sizeof(float));
    free(a);
    free(b);
    free(one);
    fixture_free(&f);
}
END_TEST

/* Q8_0 quants at the bounds of the format (-128, 127; not what the
 * quantizer makes, but what a file may hold) against activation quants of
 * +-127: the block dots are the largest the int32 lanes see; kernel vs
 * reference within tolerance, decode vs panels bitwise. */
START_TEST(q8_0_bounds)
{
    struct fixture f;
    fixture_init(&f, SLORA_DTYPE_Q8_0, 11, 32 * 9, 6, 41);
    struct slora_quant_q8_0 *blk = f.wdata;
    for (int64_t k = 0; k < f.rows * 9; k++)
        for (int j = 0; j < 32; j++)
            blk[k].qs[j] = (int8_t)((k + j / 3) % 3 == 0 ? 127 : -128);
    for (int64_t r = 0; r < f.rows; r++)
        ck_assert_int_eq(
            slora_quant_dequantize(SLORA_DTYPE_Q8_0, blk + 9 * r, f.wf + r * f.cols, f.cols), 0);
    for (int64_t k = 0; k < (int64_t)f.n * f.cols; k++) /* quants +-127 */
        f.x[k] = (k / 5) % 2 ? 3.0f : -3.0f;
    slora_matmul_quantize(f.t, f.x, f.n, f.cols, f.xq, f.stride);
    ck_assert_int_eq(((const int8_t *)f.xq)[0], -127);
    float *a = run(&f, false, 0, f.rows, false, 0);
    float *b = run(&f, true, 0, f.rows, false, 0);
    assert_near_ref(&f, a, b);
    for (int i = 0; i < f.n; i++) {
        float y[11];
        slora_matmul(&f.w, (const uint8_t *)f.xq + (size_t)i * f.stride, f.stride, 1, y, 11, 0,
                     f.rows, false);
        ck_assert_mem_eq(y, a + (size_t)i * 11, sizeof(y));
    }
    free(a);
    free(b);
    fixture_free(&f);
}
END_TEST

START_TEST(formats)
{
    ck_assert_int_eq(slora_matmul_vec_type(SLORA_DTYPE_Q4_0), SLORA_DTYPE_Q8_0);
    ck_assert_int_eq(slora_matmul_vec_type(SLORA_DTYPE_Q5_1), SLORA_DTYPE_Q8_1);
    ck_assert_int_eq(slora_matmul_vec_type(SLORA_DTYPE_Q6_K), SLORA_DTYPE_Q8_K);
    ck_assert_int_eq(slora_matmul_vec_type(SLORA_DTYPE_F16), SLORA_DTYPE_F32);
    ck_assert_int_eq(slora_matmul_vec_type(SLORA_DTYPE_BF16), SLORA_DTYPE_F32);
    /* cols that are not whole blocks, activation-only and unknown types */
    ck_assert_uint_eq(slora_matmul_xq_bytes(SLORA_DTYPE_Q4_K, 128), 0);
    ck_assert_uint_eq(slora_matmul_xq_bytes(SLORA_DTYPE_Q8_0, 48), 0);
    ck_assert_uint_eq(slora_matmul_xq_bytes(SLORA_DTYPE_Q8_K, 256), 0);
    ck_assert_uint_eq(slora_matmul_xq_bytes((enum slora_dtype)5, 256), 0);
    ck_assert_uint_eq(slora_matmul_xq_bytes(SLORA_DTYPE_F32, 3), 64);
    /* the Q8 row (SIMD where the build has it) holds the values of ggml's
     * Q8_1 blocks (Q8_0's qs and d): random blocks; halves (d = 1: roundf
     * takes them away from zero); all zero; NaN; infinite */
    enum { NB = 6 };
    float x[32 * NB];
    fill(x, 32 * NB, 5);
    const float halves[] = {127, 2.5f, -2.5f, 0.5f, -0.5f, 1.5f, -126.5f, 3.4999998f, -0.49999997f};
    memcpy(x + 64, halves, sizeof(halves));
    memset(x + 96, 0, 32 * sizeof(float));
    x[128 + 5] = NAN;
    x[160 + 9] = -INFINITY;
    uint8_t *xq = xalloc(slora_matmul_xq_bytes(SLORA_DTYPE_Q8_0, 32 * NB));
    slora_matmul_quantize(SLORA_DTYPE_Q8_0, x, 1, 32 * NB, xq, 0);
    struct slora_quant_q8_1 blk[NB];
    ck_assert_int_eq(slora_quant_quantize(SLORA_DTYPE_Q8_1, x, blk, 32 * NB), 0);
    struct slora__mm_xrow xr = slora__mm_xrow(SLORA_DTYPE_Q8_0, xq, 32 * NB);
    const int8_t *q2 = (const int8_t *)xr.x + 64;
    ck_assert(q2[1] == 3 && q2[2] == -3 && q2[3] == 1 && q2[4] == -1 && q2[6] == -127);
    ck_assert(q2[7] == 3 && q2[8] == 0);
    for (int b = 0; b < NB; b++) {
        ck_assert_mem_eq((const int8_t *)xr.x + 32 * b, blk[b].qs, 32);
        ck_assert_mem_eq(&xr.d[b], &(float){slora_quant_f16_to_f32(blk[b].d)}, sizeof(float));
        int s = 0;
        for (int k = 0; k < 32; k++)
            s += blk[b].qs[k];
        ck_assert_int_eq(xr.s[b], s);
        ck_assert_mem_eq(&xr.ds[b], &(float){slora_quant_f16_to_f32(blk[b].s)}, sizeof(float));
    }
    free(xq);
}
END_TEST

/* The Q8K row (SIMD where the build has it) holds ggml's Q8_K blocks bit
 * for bit, on random blocks, a tie of +-amax (the first keeps its sign),
 * an all-zero block, NaN and infinite elements. */
START_TEST(q8k_row)
{
    enum { COLS = 6 * 256 };
    float x[COLS];
    fill(x, COLS, 9);
    x[256 + 3] = -5.0f; /* block 1: -5 first, then +5 */
    x[256 + 200] = 5.0f;
    memset(x + 512, 0, 256 * sizeof(float)); /* block 2 */
    x[768 + 10] = NAN;                       /* block 3 */
    x[768 + 11] = 0.25f;
    x[1024 + 7] = INFINITY;       /* block 4 */
    for (int k = 0; k < 256; k++) /* block 5: tiny values */
        x[1280 + k] *= 1e-30f;
    uint8_t *xq = xalloc(slora_matmul_xq_bytes(SLORA_DTYPE_Q4_K, COLS));
    slora_matmul_quantize(SLORA_DTYPE_Q4_K, x, 1, COLS, xq, 0);
    struct slora_quant_q8_k blk[COLS / 256];
    ck_assert_int_eq(slora_quant_quantize(SLORA_DTYPE_Q8_K, x, blk, COLS), 0);
    struct slora__mm_xrow xr = slora__mm_xrow(SLORA_DTYPE_Q4_K, xq, COLS);
    for (int b = 0; b < COLS / 256; b++) {
        ck_assert_mem_eq((const int8_t *)xr.x + 256 * b, blk[b].qs, 256);
        ck_assert_mem_eq(&xr.d[b], &blk[b].d, sizeof(float));
        for (int k = 0; k < 16; k++)
            ck_assert_int_eq(xr.bsums[16 * b + k], blk[b].bsums[k]);
        for (int k = 0; k < 8; k++)
            ck_assert_int_eq(xr.bsum32[8 * b + k], blk[b].bsums[2 * k] + blk[b].bsums[2 * k + 1]);
    }
    ck_assert_int_eq(((const int8_t *)xr.x)[256 + 3], -127);
    ck_assert_int_eq(((const int8_t *)xr.x)[256 + 200], 127);
    free(xq);
}
END_TEST

Suite *slora_matmul_suite(void)
{
    Suite *s = suite_create("matmul");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, simd_vs_ref, 0, N_TYPES);
    tcase_add_loop_test(tc, slices_and_add, 0, N_TYPES);
    tcase_add_loop_test(tc, batch_invariance, 0, N_TYPES);
    tcase_add_test(tc, q8_0_bounds);
    tcase_add_loop_test(tc, kquant_panel, 0, 3);
    tcase_add_loop_test(tc, kquant_extremes, 0, 3);
    tcase_add_test(tc, formats);
    tcase_add_test(tc, q8k_row);
    suite_add_tcase(s, tc);
    return s;
}
