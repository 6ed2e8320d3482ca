/* blas.h - the one shim over BLAS (<cblas.h> is included only in blas.c).
 *
 * Row-major everywhere. Calls are counted so tests can prove batching
 * (slora_blas_stats). Thread count applies to the whole process.
 */
#ifndef SLORA_BLAS_H
#define SLORA_BLAS_H

#include <stdint.h>

/* y (rows) = W (rows, cols) x (cols) */
void slora_blas_gemv(const float *w, const float *x, float *y, int rows, int cols);
/* C (m, n) = alpha * A (m, k) op B + beta * C; B is (k, n), or (n, k) when b_trans. */
void slora_blas_gemm(int m, int n, int k, float alpha, const float *a, const float *b, int b_trans,
                     float beta, float *c);
/* The same with leading dimensions: A row i at a + i lda, B row at b + ldb,
 * C row i at c + i ldc (slices of larger matrices). */
void slora_blas_gemm_ld(int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                        int ldb, int b_trans, float beta, float *c, int ldc);
/* Y (n_rows, rows) = X (n_rows, cols) W^T: n_rows input rows through matrix W (rows, cols). */
void slora_blas_matmul_rows(const float *w, const float *x, float *y, int n_rows, int rows,
                            int cols);

void slora_blas_set_threads(int n);
struct slora_blas_stats {
    uint64_t gemv;
    uint64_t gemm;
};
void slora_blas_stats(struct slora_blas_stats *out);
void slora_blas_stats_reset(void);

#endif
