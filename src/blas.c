/* blas.c - the one BLAS shim: OpenBLAS sgemm for products over many rows,
 * and a hand-written AVX2/FMA kernel (OpenBLAS sgemv otherwise) for one row
 * and for up to SMALL_ROWS rows.
 *
 * One row: decode is memory-bound and one core streams the weights at the
 * machine's full read bandwidth: measured on the stories110M shape, the
 * kernel on one thread sweeps 19.3 GB/s against 17.0 GB/s for OpenBLAS
 * sgemv on two (bench/results/model.md), so it runs single-threaded
 * whatever the thread setting, which applies to sgemm.
 *
 * A few rows (a decode step of a few sequences, a short prompt): OpenBLAS
 * sgemm packs the whole weight matrix into its panel format on every call,
 * which for a handful of rows costs as much as the product itself. Measured
 * on this repository's shapes (bench/notes/throughput.md), sgemm reaches
 * 15-19 GFLOP/s at 2 rows and 51-58 at 8, against 50-70 for the kernel at
 * any row count; sgemm wins from about 16 rows. So up to SMALL_ROWS rows go
 * through the kernel, single-threaded like sgemv.
 *
 * Every output element of the kernel is one dot in a fixed order (8-wide
 * FMA chain, horizontal sum, scalar tail), so a row's result does not
 * depend on the other rows of its call, and equals slora_blas_gemv's.
 *
 * The only file including <cblas.h>. Call counters are atomic so any worker
 * thread may call in; the thread count is process-wide (OpenBLAS's own).
 */
#include <slora/blas.h>

#include <cblas.h>
#include <stdatomic.h>
#include <stddef.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define HAVE_AVX2_GEMV 1
#else
#define HAVE_AVX2_GEMV 0
#endif

/* Most input rows a product runs through the row kernel rather than sgemm. */
#define SMALL_ROWS 8

static atomic_uint_fast64_t n_gemv;
static atomic_uint_fast64_t n_gemm;

#if HAVE_AVX2_GEMV
static float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Y[b][a] = W row a . X row b for a < nr (<= 4) rows of W (rows cols
 * apart) and b < nx (<= 2) rows of X; Y rows ldy apart. nr and nx are
 * constants at every call, so the accumulators stay in registers: each W
 * load feeds nx FMA chains and each X load nr. */
static inline __attribute__((always_inline)) void tile(const float *w, const float *x, float *y,
                                                       int cols, int ldy, const int nr,
                                                       const int nx)
{
    __m256 acc[4][2];
#pragma GCC unroll 4
    for (int a = 0; a < nr; a++)
#pragma GCC unroll 2
        for (int b = 0; b < nx; b++)
            acc[a][b] = _mm256_setzero_ps();
    int c = 0;
    for (; c + 8 <= cols; c += 8) {
        __m256 xv[2];
#pragma GCC unroll 2
        for (int b = 0; b < nx; b++)
            xv[b] = _mm256_loadu_ps(x + (size_t)b * cols + c);
#pragma GCC unroll 4
        for (int a = 0; a < nr; a++) {
            __m256 wv = _mm256_loadu_ps(w + (size_t)a * cols + c);
#pragma GCC unroll 2
            for (int b = 0; b < nx; b++)
                acc[a][b] = _mm256_fmadd_ps(wv, xv[b], acc[a][b]);
        }
    }
#pragma GCC unroll 4
    for (int a = 0; a < nr; a++)
#pragma GCC unroll 2
        for (int b = 0; b < nx; b++) {
            float s = hsum(acc[a][b]);
            for (int k = c; k < cols; k++)
                s += w[(size_t)a * cols + k] * x[(size_t)b * cols + k];
            y[(size_t)b * ldy + a] = s;
        }
}

/* nr rows of W (at w) against every pair of X rows, into columns of Y. */
static inline __attribute__((always_inline)) void row_block(const float *w, const float *x,
                                                            float *y, int n, int rows, int cols,
                                                            const int nr)
{
    int i = 0;
    for (; i + 2 <= n; i += 2)
        tile(w, x + (size_t)i * cols, y + (size_t)i * rows, cols, rows, nr, 2);
    if (i < n)
        tile(w, x + (size_t)i * cols, y + (size_t)i * rows, cols, rows, nr, 1);
}

/* Y (n, rows) = X (n, cols) W^T: blocks of four W rows (a few KB, kept in
 * L1) against all of X, so W streams from memory once. */
static void rows_avx2(const float *w, const float *x, float *y, int n, int rows, int cols)
{
    int r = 0;
    for (; r + 4 <= rows; r += 4)
        row_block(w + (size_t)r * cols, x, y + r, n, rows, cols, 4);
    for (; r < rows; r++)
        row_block(w + (size_t)r * cols, x, y + r, n, rows, cols, 1);
}
#endif

void slora_blas_gemv(const float *w, const float *x, float *y, int rows, int cols)
{
    atomic_fetch_add_explicit(&n_gemv, 1, memory_order_relaxed);
#if HAVE_AVX2_GEMV
    rows_avx2(w, x, y, 1, rows, cols);
#else
    cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, w, cols, x, 1, 0.0f, y, 1);
#endif
}

void slora_blas_gemm(int m, int n, int k, float alpha, const float *a, const float *b, int b_trans,
                     float beta, float *c)
{
    atomic_fetch_add_explicit(&n_gemm, 1, memory_order_relaxed);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, b_trans ? CblasTrans : CblasNoTrans, m, n, k, alpha, a,
                k, b, b_trans ? k : n, beta, c, n);
}

void slora_blas_matmul_rows(const float *w, const float *x, float *y, int n_rows, int rows,
                            int cols)
{
    if (n_rows == 1) {
        slora_blas_gemv(w, x, y, rows, cols);
    } else if (n_rows <= SMALL_ROWS) {
        atomic_fetch_add_explicit(&n_gemm, 1, memory_order_relaxed);
#if HAVE_AVX2_GEMV
        rows_avx2(w, x, y, n_rows, rows, cols);
#else
        for (int i = 0; i < n_rows; i++)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, w, cols,
                        x + (size_t)i * cols, 1, 0.0f, y + (size_t)i * rows, 1);
#endif
    } else {
        slora_blas_gemm(n_rows, rows, cols, 1.0f, x, w, 1, 0.0f, y);
    }
}

void slora_blas_set_threads(int n)
{
    openblas_set_num_threads(n < 1 ? 1 : n);
}

void slora_blas_stats(struct slora_blas_stats *out)
{
    out->gemv = atomic_load(&n_gemv);
    out->gemm = atomic_load(&n_gemm);
}

void slora_blas_stats_reset(void)
{
    atomic_store(&n_gemv, 0);
    atomic_store(&n_gemm, 0);
}
