/* matmul_k.c - SIMD kernels for the K-quants (Q4_K, Q5_K, Q6_K) against
 * Q8K activation rows (matmul_internal.h): one activation row (decode)
 * here, n > 1 by panels in matmul_kpanel.c, and the Q8K quantization.
 *
 * Canonical order. Both paths give every output element y (weight row w,
 * activation row x, super-blocks b < nb) the same float operations:
 *   exact integers per super-block (int32, never near overflow),
 *     Q4_K/Q5_K: I_b = sum_s sc_s (q_s . x_s),  M_b = sum_s m_s bsum32_s
 *                (8 sub-blocks s of 32, quants q 0..15 or 0..31)
 *     Q6_K:      I_b = sum_t sc_t ((q_t - 32) . x_t)  (16 sub-blocks of 16)
 *   eight float partials p[0..7] = +0, super-block b into p[b % 8]:
 *     p = fma((float)I_b, dw_b * dx_b, p)
 *     p = fnmadd((float)M_b, dmin_b * dx_b, p)   (Q4_K/Q5_K)
 *   y = ((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7))  (mm_hsum's tree),
 *   stored as slora__mm_store does.
 * So results do not depend on n, the tile, the slice or the thread split.
 *
 * Decode streams one weight row at a time: per super-block the row's
 * 32-quant vectors (bytes 0..63, unsigned) meet the activation quants in
 * vpmaddubsw (int16 pair sums, never saturating: 2 * 63 * 127 < 2^15) and
 * vpdpwssd (or vpmaddwd + add) multiplies those by the sub-block scales
 * into 8 int32 lanes; 8 super-blocks' lanes are summed together
 * (transposed, hsum8x8) into one vector of I_b, so the float steps run on
 * 8 super-blocks at once, lane b % 8.
 */
#include "matmul_internal.h"
#include "matmul_simd.h"

#include <slora/quant.h>

#include <math.h>
#include <string.h>

#ifdef MM_SIMD

/* Q4_K/Q5_K's 12 scale bytes as sc[0..7] (bytes 0-7) and m[0..7] (8-15):
 * sc[0..3] = b[0..3] & 63, m[0..3] = b[4..7] & 63, sc[4..7] = b[8..11] &
 * 15 | (b[0..3] >> 6) << 4, m[4..7] = b[8..11] >> 4 | (b[4..7] >> 6) << 4,
 * four bytes at a time. */
static inline void scales_k4(const uint8_t *b, uint32_t out[4])
{
    uint32_t u0, u1, u2;
    memcpy(&u0, b, 4);
    memcpy(&u1, b + 4, 4);
    memcpy(&u2, b + 8, 4);
    out[0] = u0 & 0x3f3f3f3fu;
    out[1] = (u2 & 0x0f0f0f0fu) | (u0 >> 6 & 0x03030303u) << 4;
    out[2] = u1 & 0x3f3f3f3fu;
    out[3] = (u2 >> 4 & 0x0f0f0f0fu) | (u1 >> 6 & 0x03030303u) << 4;
}

/* vpshufb patterns: word s of each 128-bit half in all its words. */
static const uint8_t word_pat[8][32] = {
#define W8(s) 2 * (s), 2 * (s) + 1, 2 * (s), 2 * (s) + 1, 2 * (s), 2 * (s) + 1, 2 * (s), 2 * (s) + 1
#define P(s) {W8(s), W8(s), W8(s), W8(s)}
    P(0), P(1), P(2), P(3), P(4), P(5), P(6), P(7),
#undef P
};
/* Q6_K: word 2g in the low half, word 2g + 1 in the high half. */
static const uint8_t pair_pat[4][32] = {
#define P(g) {W8(2 * g), W8(2 * g), W8(2 * g + 1), W8(2 * g + 1)}
    P(0), P(1), P(2), P(3),
#undef P
#undef W8
};

static inline __m256i pat(const uint8_t *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

static inline float h2f(uint16_t h)
{
    return _cvtsh_ss(h);
}

/* Q4_K/Q5_K (fifth = true) super-block blk against the activation quants
 * x (256) and sums of 32 bs (8): *is and *ms get 8 int32 lanes summing to
 * I_b and M_b; *d and *dmin the block's scales. */
static inline __attribute__((always_inline)) void
superblock_k4(bool fifth, const uint8_t *blk, const int8_t *x, const int16_t *bs, __m256i *is,
              __m256i *ms, float *d, float *dmin)
{
    const size_t qs_at = fifth ? 48 : 16;
    const __m256i low4 = _mm256_set1_epi8(15), bit4 = _mm256_set1_epi8(0x10);
    uint16_t d16, dm16;
    memcpy(&d16, blk, 2);
    memcpy(&dm16, blk + 2, 2);
    *d = h2f(d16);
    *dmin = h2f(dm16);
    uint32_t u[4];
    scales_k4(blk + 4, u);
    __m128i v = _mm_loadu_si128((const __m128i *)u);
    __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(v));
    __m128i m16 = _mm_cvtepu8_epi16(_mm_srli_si128(v, 8));
    __m256i hv = fifth ? _mm256_loadu_si256((const __m256i *)(blk + 16)) : _mm256_setzero_si256();
    __m256i acc = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int s = 0; s < 8; s++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(blk + qs_at + 32 * (s / 2)));
        q = _mm256_and_si256(s & 1 ? _mm256_srli_epi16(q, 4) : q, low4);
        if (fifth) {
            __m256i h = s <= 4 ? _mm256_slli_epi16(hv, 4 - s) : _mm256_srli_epi16(hv, s - 4);
            q = _mm256_or_si256(q, _mm256_and_si256(h, bit4));
        }
        __m256i xv = _mm256_loadu_si256((const __m256i *)(x + 32 * s));
        acc = mm_dot_i16(acc, _mm256_maddubs_epi16(q, xv),
                         _mm256_shuffle_epi8(sc16, pat(word_pat[s])));
    }
    *is = acc;
    *ms = _mm256_zextsi128_si256(_mm_madd_epi16(m16, _mm_loadu_si128((const __m128i *)bs)));
}

/* Q6_K super-block blk against x (256) and the sums of 16 bs (16): *is
 * gets 8 int32 lanes summing to I_b, *d the block's scale. */
static inline __attribute__((always_inline)) void
superblock_q6(const struct slora_quant_q6_k *blk, const int8_t *x, const int16_t *bs, __m256i *is,
              float *d)
{
    const __m256i low4 = _mm256_set1_epi8(15), hi2 = _mm256_set1_epi8(0x30);
    *d = h2f(blk->d);
    __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)blk->scales));
    /* start from -32 sum_t sc_t bsum_t: removes the quants' offset */
    __m256i acc = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)bs));
    acc = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(acc, 5));
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        __m256i lo = _mm256_loadu_si256((const __m256i *)(blk->ql + 64 * h));
        __m256i hi = _mm256_loadu_si256((const __m256i *)(blk->ql + 64 * h + 32));
        __m256i qh = _mm256_loadu_si256((const __m256i *)(blk->qh + 32 * h));
        __m256i sch = h ? _mm256_permute2x128_si256(sc16, sc16, 0x11)
                        : _mm256_permute2x128_si256(sc16, sc16, 0x00);
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) {
            /* group g: low nibbles of ql[0..31] (g 0) or ql[32..63] (g 1),
             * high nibbles for g 2, 3; bits 2g, 2g+1 of qh as bits 4, 5 */
            __m256i l = g & 1 ? hi : lo;
            __m256i n = _mm256_and_si256(g >= 2 ? _mm256_srli_epi16(l, 4) : l, low4);
            __m256i t = g == 0   ? _mm256_slli_epi16(qh, 4)
                        : g == 1 ? _mm256_slli_epi16(qh, 2)
                        : g == 2 ? qh
                                 : _mm256_srli_epi16(qh, 2);
            __m256i q = _mm256_or_si256(n, _mm256_and_si256(t, hi2));
            __m256i xv = _mm256_loadu_si256((const __m256i *)(x + 128 * h + 32 * g));
            acc = mm_dot_i16(acc, _mm256_maddubs_epi16(q, xv),
                             _mm256_shuffle_epi8(sch, pat(pair_pat[g])));
        }
    }
    *is = acc;
}

/* The sums of the 8 int32 lanes of each of v[0..7], in order. */
static inline __m256i hsum8x8(const __m256i v[8])
{
    __m256i a = _mm256_hadd_epi32(v[0], v[1]), b = _mm256_hadd_epi32(v[2], v[3]);
    __m256i c = _mm256_hadd_epi32(v[4], v[5]), e = _mm256_hadd_epi32(v[6], v[7]);
    a = _mm256_hadd_epi32(a, b);
    c = _mm256_hadd_epi32(c, e);
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, c, 0x20),
                            _mm256_permute2x128_si256(a, c, 0x31));
}

/* One weight row w of type t against one activation row xq (cols): y. */
static inline __attribute__((always_inline)) void row(enum slora_dtype t, const uint8_t *w,
                                                      const uint8_t *xq, int64_t cols, float *y,
                                                      bool add)
{
    const struct slora__mm_xrow xr = slora__mm_xrow(t, xq, cols);
    const size_t bb = t == SLORA_DTYPE_Q4_K   ? sizeof(struct slora_quant_q4_k)
                      : t == SLORA_DTYPE_Q5_K ? sizeof(struct slora_quant_q5_k)
                                              : sizeof(struct slora_quant_q6_k);
    const int64_t nb = cols / 256;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b0 = 0; b0 < nb; b0 += 8) {
        /* super-blocks b0 + k in lane k; lanes past nb add fma(0, 0, p) */
        __m256i is[8], ms[8];
        _Alignas(32) float dd[8] = {0}, dm[8] = {0};
        for (int k = 0; k < 8; k++) {
            int64_t b = b0 + k;
            is[k] = ms[k] = _mm256_setzero_si256();
            if (b >= nb)
                continue;
            const uint8_t *blk = w + (size_t)b * bb;
            for (size_t off = 0; off < bb; off += 64)
                mm_prefetch(blk + off);
            const int8_t *x = (const int8_t *)xr.x + 256 * b;
            float d, dmin = 0;
            if (t == SLORA_DTYPE_Q6_K)
                superblock_q6((const struct slora_quant_q6_k *)blk, x, xr.bsums + 16 * b, &is[k],
                              &d);
            else
                superblock_k4(t == SLORA_DTYPE_Q5_K, blk, x, xr.bsum32 + 8 * b, &is[k], &ms[k],
                              &d, &dmin);
            dd[k] = d * xr.d[b];
            dm[k] = dmin * xr.d[b];
        }
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hsum8x8(is)), _mm256_load_ps(dd), acc);
        if (t != SLORA_DTYPE_Q6_K)
            acc = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(hsum8x8(ms)), _mm256_load_ps(dm), acc);
    }
    slora__mm_store(y, mm_hsum(acc), add);
}

/* slora__mm_tile_fn for one row of each type (slora__mm_drive with 1 x 1). */
#define ROW_FN(name, T)                                                                            \
    static void name(int mr, int nr, const uint8_t *w, size_t ws, const uint8_t *xq, size_t xs,   \
                     int64_t cols, float *y, size_t ldy, bool add)                                 \
    {                                                                                              \
        (void)mr, (void)nr, (void)ws, (void)xs, (void)ldy;                                         \
        row(T, w, xq, cols, y, add);                                                               \
    }
ROW_FN(row_q4_k, SLORA_DTYPE_Q4_K)
ROW_FN(row_q5_k, SLORA_DTYPE_Q5_K)
ROW_FN(row_q6_k, SLORA_DTYPE_Q6_K)

bool slora__mm_quant_q8k(const float *x, int64_t cols, int8_t *qs, float *d, int16_t *bsums,
                         int16_t *bsum32)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), lo = _mm256_set1_ps(-127), hi = _mm256_set1_ps(127);
    for (int64_t b = 0; b < cols / 256; b++, x += 256, qs += 256) {
        /* amax over the block; max_ps returns its second operand for a NaN */
        __m256 am = _mm256_setzero_ps();
        for (int k = 0; k < 256; k += 8)
            am = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)), am);
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(am), _mm256_extractf128_ps(am, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        float amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
        if (!amax) {
            memset(qs, 0, 256);
            d[b] = 0;
            memset(bsums + 16 * b, 0, 16 * sizeof(*bsums));
            memset(bsum32 + 8 * b, 0, 8 * sizeof(*bsum32));
            continue;
        }
        int at = 0; /* the first element of largest magnitude keeps its sign */
        while (!(fabsf(x[at]) == amax))
            at++;
        float iscale = -127 / x[at];
        __m256 vs = _mm256_set1_ps(iscale);
        __m256i sum16[16];
        for (int g = 0; g < 8; g++) { /* 32 elements: two sums of 16 */
            __m256i q[4];
            for (int k = 0; k < 4; k++) {
                __m256 v = _mm256_mul_ps(vs, _mm256_loadu_ps(x + 32 * g + 8 * k));
                v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q)); /* NaN: 0 */
                v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
                q[k] = _mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT |
                                                                 _MM_FROUND_NO_EXC));
            }
            sum16[2 * g] = _mm256_add_epi32(q[0], q[1]);
            sum16[2 * g + 1] = _mm256_add_epi32(q[2], q[3]);
            /* packs interleave 128-bit lanes: 0 2 4 6 1 3 5 7 in dwords */
            __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]),
                                           _mm256_packs_epi32(q[2], q[3]));
            p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(qs + 32 * g), p);
        }
        int32_t s[16];
        _mm256_storeu_si256((__m256i *)s, hsum8x8(sum16));
        _mm256_storeu_si256((__m256i *)(s + 8), hsum8x8(sum16 + 8));
        for (int k = 0; k < 16; k++)
            bsums[16 * b + k] = (int16_t)s[k];
        for (int k = 0; k < 8; k++)
            bsum32[8 * b + k] = (int16_t)(s[2 * k] + s[2 * k + 1]);
        d[b] = 1 / iscale;
    }
    return true;
}

bool slora__mm_k(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n, float *y,
                 size_t ldy, int64_t r0, int64_t r1, bool add)
{
    if (n > 1) {
        slora__mm_kpanel(w, xq, xq_stride, n, y, ldy, r0, r1, add);
        return true;
    }
    slora__mm_tile_fn fn = w->type == SLORA_DTYPE_Q4_K   ? row_q4_k
                           : w->type == SLORA_DTYPE_Q5_K ? row_q5_k
                                                         : row_q6_k;
    slora__mm_drive(w, fn, 1, 1, xq, xq_stride, n, y, ldy, r0, r1, add);
    return true;
}

#else

bool slora__mm_quant_q8k(const float *x, int64_t cols, int8_t *qs, float *d, int16_t *bsums,
                         int16_t *bsum32)
{
    (void)x, (void)cols, (void)qs, (void)d, (void)bsums, (void)bsum32;
    return false;
}

bool slora__mm_k(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n, float *y,
                 size_t ldy, int64_t r0, int64_t r1, bool add)
{
    (void)w, (void)xq, (void)xq_stride, (void)n, (void)y, (void)ldy, (void)r0, (void)r1, (void)add;
    return false;
}

#endif
