/* check_blas.c - the BLAS shim against a naive double-precision product:
 * shapes with every remainder of the 4-row and 8-column blocks of the
 * sgemv kernel, gemm with and without a transposed B, thread settings, and
 * the call counters. */
#include <slora/blas.h>

#include <check.h>
#include <math.h>
#include <stdlib.h>

static float *random_floats(size_t n, unsigned seed)
{
    float *x = malloc(n * sizeof(float));
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
    return x;
}

/* max|y - ref| <= tol * max|ref| with ref = W x in double */
static void check_product(const float *w, const float *x, const float *y, int rows, int cols)
{
    double d = 0, mref = 0;
    for (int r = 0; r < rows; r++) {
        double ref = 0;
        for (int c = 0; c < cols; c++)
            ref += (double)w[(size_t)r * cols + c] * x[c];
        d = fmax(d, fabs(ref - y[r]));
        mref = fmax(mref, fabs(ref));
    }
    ck_assert_msg(d <= 1e-6 * mref + 1e-30, "(%d, %d): %g vs %g", rows, cols, d, mref);
}

START_TEST(gemv_shapes)
{
    /* rows 1..9 cover every remainder of the 4-row block, cols of the 8-wide one */
    static const int cols[] = {1, 7, 8, 9, 15, 16, 17, 64, 172, 768};
    for (int threads = 1; threads <= 2; threads++) {
        slora_blas_set_threads(threads);
        for (int rows = 1; rows <= 9; rows++)
            for (size_t k = 0; k < sizeof(cols) / sizeof(cols[0]); k++) {
                int c = cols[k];
                float *w = random_floats((size_t)rows * c, 1u + rows), *x = random_floats(c, 7u);
                float y[9];
                slora_blas_gemv(w, x, y, rows, c);
                check_product(w, x, y, rows, c);
                free(w);
                free(x);
            }
    }
}
END_TEST

START_TEST(gemm_and_counters)
{
    enum { M = 5, N = 13, K = 19 };
    float *a = random_floats(M * K, 3u), *b = random_floats(N * K, 4u);
    float c[M * N], bt[K * N];
    slora_blas_stats_reset();
    /* rows of A through W = b (N, K): C = A b^T */
    slora_blas_matmul_rows(b, a, c, M, N, K);
    for (int i = 0; i < M; i++)
        check_product(b, a + i * K, c + i * N, N, K);
    /* the same with B given as (K, N) */
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++)
            bt[k * N + n] = b[n * K + k];
    slora_blas_gemm(M, N, K, 1.0f, a, bt, 0, 0.0f, c);
    for (int i = 0; i < M; i++)
        check_product(b, a + i * K, c + i * N, N, K);
    slora_blas_matmul_rows(b, a, c, 1, N, K);
    check_product(b, a, c, N, K);
    struct slora_blas_stats st;
    slora_blas_stats(&st);
    ck_assert_uint_eq(st.gemm, 2);
    ck_assert_uint_eq(st.gemv, 1);
    slora_blas_stats_reset();
    slora_blas_stats(&st);
    ck_assert_uint_eq(st.gemm + st.gemv, 0);
    free(a);
    free(b);
}
END_TEST

Suite *slora_blas_suite(void)
{
    Suite *s = suite_create("blas");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, gemv_shapes);
    tcase_add_test(tc, gemm_and_counters);
    suite_add_tcase(s, tc);
    return s;
}
