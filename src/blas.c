/* blas.c - the one BLAS shim: OpenBLAS sgemm, and for single-row products
 * a hand-written AVX2/FMA sgemv where the CPU has it (OpenBLAS sgemv
 * otherwise). Decode is memory-bound and one core streams the weights at
 * the machine's full read bandwidth: measured on the stories110M shape,
 * this kernel on one thread sweeps 19.3 GB/s against 17.0 GB/s for
 * OpenBLAS sgemv on two (bench/results/model.md), so it runs single-threaded
 * whatever the thread setting, which applies to sgemm.
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

/* Four rows at a time: four independent FMA chains sharing each x load,
 * four sequential streams the hardware prefetcher follows. */
static void gemv_avx2(const float *w, const float *x, float *y, int rows, int cols)
{
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *w0 = w + (size_t)r * cols;
        const float *w1 = w0 + cols;
        const float *w2 = w1 + cols;
        const float *w3 = w2 + cols;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        int c = 0;
        for (; c + 8 <= cols; c += 8) {
            __m256 xv = _mm256_loadu_ps(x + c);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c), xv, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + c), xv, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + c), xv, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + c), xv, a3);
        }
        float s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
        for (; c < cols; c++) {
            s0 += w0[c] * x[c];
            s1 += w1[c] * x[c];
            s2 += w2[c] * x[c];
            s3 += w3[c] * x[c];
        }
        y[r] = s0;
        y[r + 1] = s1;
        y[r + 2] = s2;
        y[r + 3] = s3;
    }
    for (; r < rows; r++) {
        const float *wr = w + (size_t)r * cols;
        __m256 a = _mm256_setzero_ps();
        int c = 0;
        for (; c + 8 <= cols; c += 8)
            a = _mm256_fmadd_ps(_mm256_loadu_ps(wr + c), _mm256_loadu_ps(x + c), a);
        float s = hsum(a);
        for (; c < cols; c++)
            s += wr[c] * x[c];
        y[r] = s;
    }
}
#endif

void slora_blas_gemv(const float *w, const float *x, float *y, int rows, int cols)
{
    atomic_fetch_add_explicit(&n_gemv, 1, memory_order_relaxed);
#if HAVE_AVX2_GEMV
    gemv_avx2(w, x, y, rows, cols);
#else
    cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, w, cols, x, 1, 0.0f, y, 1);
#endif
}

void slora_blas_gemm(int m, int n, int k, float alpha, const float *a, const float *b, int b_trans,
                     float beta, float *c)
{
    slora_blas_gemm_ld(m, n, k, alpha, a, k, b, b_trans ? k : n, b_trans, beta, c, n);
}

void slora_blas_gemm_ld(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                        int ldb, int b_trans, float beta, float *c, int ldc)
{
    atomic_fetch_add_explicit(&n_gemm, 1, memory_order_relaxed);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, b_trans ? CblasTrans : CblasNoTrans, m, n, k, alpha, a,
                lda, b, ldb, beta, c, ldc);
}

void slora_blas_matmul_rows(const float *w, const float *x, float *y, int n_rows, int rows,
                            int cols)
{
    if (n_rows == 1)
        slora_blas_gemv(w, x, y, rows, cols);
    else
        slora_blas_gemm(n_rows, rows, cols, 1.0f, x, w, 1, 0.0f, y);
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
