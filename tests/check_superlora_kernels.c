/* check_superlora_kernels.c - spec section 6 and the transforms the delta
 * generation builds on: rnd, the keyed Feistel permutation (scalar and the
 * vector block kernel), the gd kernel of the Fastfood projection, and the
 * FWHT (plain and two-pass) against the dense Hadamard matrix.
 *
 * Expected values come from independent code paths here (the dense
 * Hadamard matrix, scalar rnd and perm) or from the Python one-liners
 * quoted next to them, never from the code under test. The delta maths
 * itself is check_superlora.c's.
 */
#include <slora/fastfood.h>
#include <slora/kernels.h>
#include <slora/perm.h>

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double naive_hadamard(const double *x, size_t n, size_t row)
{
    double s = 0;
    for (size_t j = 0; j < n; j++)
        s += __builtin_popcountll(row & j) & 1 ? -x[j] : x[j];
    return s;
}

/* ---- section 6 ---- */

START_TEST(rnd_known_values)
{
    /* /usr/bin/python3 -c "M=(1<<64)-1;G=0x9E3779B97F4A7C15
     * def mix(z):
     *   z=((z^(z>>30))*0xBF58476D1CE4E5B9)&M; z=((z^(z>>27))*0x94D049BB133111EB)&M; return
     * z^(z>>31) def rnd(s,t,j): return mix((mix(s^mix((t+G)&M))+(j+1)*G)&M) print([hex(rnd(s,t,j))
     * for s,t,j in [(0,0,0),(7,4,0),(11,1,3),(2**53-1,6,2),(123456789,3,1000000)]])"
     */
    ck_assert_uint_eq(slora_rnd(0, 0, 0), 0x568a9b0b1a2c05ecull);
    ck_assert_uint_eq(slora_rnd(7, 4, 0), 0xf457f104eeefc174ull);
    ck_assert_uint_eq(slora_rnd(11, 1, 3), 0x5b8b4158effb4738ull);
    ck_assert_uint_eq(slora_rnd((1ull << 53) - 1, 6, 2), 0x3c175fa637b8d1a8ull);
    ck_assert_uint_eq(slora_rnd(123456789, 3, 1000000), 0xa5d4064acc6d411eull);
}
END_TEST

START_TEST(perm_known_values)
{
    /* same rnd/mix as above, plus
     * def fm(h):
     *   h^=h>>16; h=(h*0x85EBCA6B)&0xffffffff; h^=h>>13; h=(h*0xC2B2AE35)&0xffffffff; h^=h>>16;
     * return h def perm(key,n,i): if n==1: return 0 k=0 while (1<<k)<n: k+=1 h=max(1,(k+1)//2);
     * mask=(1<<h)-1; rk=[rnd(key,6,r)&0xffffffff for r in range(4)] def F(x): L=x>>h; R=x&mask for
     * r in range(4): L,R=R,L^(fm(R^rk[r])&mask) return (L<<h)|R y=F(i) while y>=n: y=F(y) return y
     * print([perm(5,10,i) for i in range(10)]); print([perm(rnd(7,4,0),1000,i) for i in (0,1,999)],
     * perm(99,65537,12345))
     * -> [9, 4, 2, 7, 6, 5, 8, 0, 1, 3] / [822, 11, 885] 63155 */
    static const uint64_t want10[10] = {9, 4, 2, 7, 6, 5, 8, 0, 1, 3};
    for (uint64_t i = 0; i < 10; i++)
        ck_assert_uint_eq(slora_perm(5, 10, i), want10[i]);
    uint64_t key = slora_rnd(7, 4, 0);
    ck_assert_uint_eq(slora_perm(key, 1000, 0), 822);
    ck_assert_uint_eq(slora_perm(key, 1000, 1), 11);
    ck_assert_uint_eq(slora_perm(key, 1000, 999), 885);
    ck_assert_uint_eq(slora_perm(99, 65537, 12345), 63155);
}
END_TEST

static const uint64_t perm_sizes[] = {1, 2, 3, 7, 1000, 65537};

START_TEST(perm_bijection)
{
    uint64_t n = perm_sizes[_i];
    struct slora_perm p;
    slora_perm_init(&p, 0xC0FFEE + n, n);
    unsigned char *seen = calloc(n, 1);
    uint32_t *blk = malloc(n * sizeof(uint32_t));
    slora_perm_block(&p, 0, n, blk);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t y = slora_perm_apply(&p, i);
        ck_assert_uint_lt(y, n);
        ck_assert_uint_eq(seen[y], 0);
        ck_assert_uint_eq(blk[i], y);
        seen[y] = 1;
    }
    free(seen);
    free(blk);
}
END_TEST

/* The vector Feistel kernel (slora_perm_block) against the scalar
 * slora_perm_apply on windows that start off the 8- and 32-lane grid and
 * cross its 1024-index walking blocks: (n, i0, count), n covering 1, 2,
 * 3, odd and even k = ceil(log2 n), powers of two with odd k (walking)
 * and even k (none), and the 2^32 edge. */
static const struct {
    uint64_t n, i0;
    size_t count;
} perm_windows[] = {
    {1, 0, 1},
    {2, 0, 2},
    {3, 0, 3},
    {5, 1, 4},
    {8, 0, 8},
    {16, 3, 13},
    {33, 0, 33},
    {100, 7, 93},
    {1023, 0, 1023},
    {1025, 1, 1024},
    {4096, 9, 4087},
    {65536, 30000, 5000},
    {131072, 4091, 3001},
    {1000003, 999000, 1003},
    {(1u << 21) + 5, 17, 2077},
    {(uint64_t)1 << 21, 1000000, 3000},
    {14155776, 14155776 - 2085, 2085},
    {(uint64_t)1 << 24, 5, 2053},
    {0xFFFFFFFBull, 0xFFFFFFFBull - 1100, 1100},
    {(uint64_t)1 << 32, ((uint64_t)1 << 32) - 1061, 1061},
};

START_TEST(perm_block_matches_scalar)
{
    uint64_t n = perm_windows[_i].n, i0 = perm_windows[_i].i0;
    size_t count = perm_windows[_i].count;
    uint32_t *blk = malloc(count * sizeof(uint32_t));
    for (uint64_t key = 1; key < 4; key++) {
        struct slora_perm p;
        slora_perm_init(&p, key * 0x9E3779B97F4A7C15ull + n, n);
        slora_perm_block(&p, i0, count, blk);
        for (size_t t = 0; t < count; t++)
            ck_assert_uint_eq(blk[t], slora_perm_apply(&p, i0 + t));
    }
    free(blk);
}
END_TEST

START_TEST(gd_kernel_matches_rnd)
{
    /* rnd(sg, 3, j) = mix64(mix64(sg ^ mix64(3 + GAMMA)) + (j + 1) * GAMMA) */
    const uint64_t gamma = 0x9E3779B97F4A7C15ull, sg = 0xABCDEF12345ull, j0 = 1000;
    float w[37];
    for (int t = 0; t < 37; t++)
        w[t] = 0.5f;
    uint64_t z0 = slora_mix64(sg ^ slora_mix64(3 + gamma)) + (j0 + 1) * gamma;
    uint64_t sum = slora_kernels_gd_scale(w, 37, z0), want = 0;
    for (int t = 0; t < 37; t++) {
        uint64_t u = slora_rnd(sg, 3, j0 + (uint64_t)t);
        int64_t g =
            (int64_t)((u & 0xFFFF) + ((u >> 16) & 0xFFFF) + ((u >> 32) & 0xFFFF) + (u >> 48)) -
            131070;
        want += (uint64_t)(g * g);
        ck_assert_float_eq(w[t], 0.5f * (float)g);
    }
    ck_assert_uint_eq(sum, want);
}
END_TEST

/* ---- FWHT ---- */

START_TEST(fwht_matches_dense_hadamard)
{
    for (int logn = 0; logn <= 10; logn++) {
        size_t n = (size_t)1 << logn;
        float *v = malloc(n * sizeof(float));
        double *x = malloc(n * sizeof(double));
        for (size_t j = 0; j < n; j++)
            v[j] = (float)(x[j] = (double)((int)((j * 7919 + 13) % 23) - 11));
        slora_kernels_fwht(v, logn);
        for (size_t i = 0; i < n; i++) /* integers: exact */
            ck_assert_msg(v[i] == naive_hadamard(x, n, i), "logn %d row %zu", logn, i);
        free(v);
        free(x);
    }
}
END_TEST

/* The two-pass transform equals the plain one bitwise, at any thread count. */
START_TEST(fwht_blocked_equals_plain)
{
    int logn = 18;
    size_t n = (size_t)1 << logn;
    float *plain = malloc(n * sizeof(float));
    for (size_t j = 0; j < n; j++)
        plain[j] = sinf((float)j * 0.37f) + (float)(j % 5);
    float *blocked[3];
    for (int t = 0; t < 3; t++) {
        blocked[t] = malloc(n * sizeof(float));
        memcpy(blocked[t], plain, n * sizeof(float));
        float *work = malloc(slora_fastfood_scratch_floats(logn, t + 1) * sizeof(float));
        slora_fastfood_fwht(blocked[t], logn, work, t + 1);
        free(work);
    }
    slora_kernels_fwht(plain, logn);
    for (int t = 0; t < 3; t++) {
        ck_assert_int_eq(memcmp(plain, blocked[t], n * sizeof(float)), 0);
        free(blocked[t]);
    }
    free(plain);
}
END_TEST

Suite *slora_superlora_kernels_suite(void)
{
    Suite *s = suite_create("superlora_kernels");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, rnd_known_values);
    tcase_add_test(tc, perm_known_values);
    tcase_add_loop_test(tc, perm_bijection, 0, (int)(sizeof(perm_sizes) / sizeof(perm_sizes[0])));
    tcase_add_loop_test(tc, perm_block_matches_scalar, 0,
                        (int)(sizeof(perm_windows) / sizeof(perm_windows[0])));
    tcase_add_test(tc, gd_kernel_matches_rnd);
    tcase_add_test(tc, fwht_matches_dense_hadamard);
    tcase_add_test(tc, fwht_blocked_equals_plain);
    suite_add_tcase(s, tc);
    return s;
}
