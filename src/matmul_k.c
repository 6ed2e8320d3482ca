/* matmul_k.c - SIMD kernels for the K-quants (Q4_K, Q5_K, Q6_K) against
 * Q8K activation rows (matmul_internal.h): a few activation rows (decode,
 * a batch of a few sequences) here, more by panels in matmul_kpanel.c,
 * and the Q8K quantization.
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
 * Here the weight rows stream one at a time, each against up to NX
 * activation rows: per super-block the row's quant vectors (bytes 0..63,
 * unsigned; 64 per 512-bit vector with VNNI, 32 per 256-bit with AVX2)
 * meet the activation quants in vpmaddubsw (int16 pair sums, never
 * saturating: 2 * 63 * 127 < 2^15) and vpdpwssd (or vpmaddwd + add)
 * multiplies those by the sub-block scales into int32 lanes; 8
 * super-blocks' lanes are summed together (transposed, hsum8x8) into one
 * vector of I_b, so the float steps run on 8 super-blocks at once, lane
 * b % 8. No software prefetch: the hardware follows the one stream, and
 * prefetching 768 bytes ahead measured 10-15 % slower.
 */
#include "matmul_internal.h"
#include "matmul_simd.h"

#include <slora/quant.h>

#include <math.h>
#include <stddef.h>
#include <string.h>

#ifdef MM_SIMD

/* Below npanel(t) activation rows each weight row is unpacked once per NX
 * of them (one stream of weight rows, no scratch); from there on by
 * panels (matmul_kpanel.c). 256 x 2048, n = 8/12/16: Q4_K 40/60/79 vs
 * 42/51/56 us, Q6_K 36/55/76 vs 61/71/75 us. */
#define NX 4
#define NPANEL_MAX 16
static inline int npanel(enum slora_dtype t)
{
    return t == SLORA_DTYPE_Q6_K ? 16 : 12;
}

/* The low 16 bits of each 32-bit lane of v, packed. */
static inline __m128i low16(__m256i v)
{
#ifdef MM_VNNI
    return _mm256_cvtepi32_epi16(v);
#else
    v = _mm256_shuffle_epi8(v, _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1,
                                                -1, -1, 0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1,
                                                -1, -1, -1, -1));
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(v, 0x08));
#endif
}

#ifdef MM_VNNI
/* 512-bit vectors (full width on this CPU): 64 quants, two sub-blocks of
 * Q4_K/Q5_K or four of Q6_K, per vpmaddubsw + vpdpwssd. */

/* vpshufb patterns over a 128-bit lane of 8 words: per 128-bit lane k of
 * the vector, word w[k] in all its words. */
#define W8(s) 2 * (s), 2 * (s) + 1, 2 * (s), 2 * (s) + 1, 2 * (s), 2 * (s) + 1, 2 * (s), 2 * (s) + 1
#define P(a, b, c, d)                                                                              \
    {                                                                                              \
        W8(a), W8(a), W8(b), W8(b), W8(c), W8(c), W8(d), W8(d)                                     \
    }
/* Q4_K/Q5_K sub-blocks 2cc (low 256 bits) and 2cc + 1 (high) */
static const uint8_t pair_pat[4][64] = {P(0, 0, 1, 1), P(2, 2, 3, 3), P(4, 4, 5, 5), P(6, 6, 7, 7)};
/* Q6_K sub-blocks 4 p .. 4 p + 3 of a half's 8 (one per 128-bit lane) */
static const uint8_t quad_pat[2][64] = {P(0, 1, 2, 3), P(4, 5, 6, 7)};
#undef P
#undef W8

static inline __m512i pat(const uint8_t *p)
{
    return _mm512_loadu_si512((const void *)p);
}

/* 16-bit shift counts: a in the low 256 bits, b in the high. */
static inline __m512i counts(short a, short b)
{
    return _mm512_inserti64x4(_mm512_set1_epi16(a), _mm256_set1_epi16(b), 1);
}

/* The 16 int32 lanes of v folded into 8 (the sum is unchanged). */
static inline __m256i fold(__m512i v)
{
    return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

/* Q4_K/Q5_K (fifth = true) super-block b of a weight row (at blk) against
 * activation rows xr[0..nr): is[j] and ms[j] get 8 int32 lanes summing to
 * I_b and M_b. */
static inline __attribute__((always_inline)) void superblock_k4(bool fifth, int nr,
                                                                const uint8_t *blk,
                                                                const struct slora__mm_xrow *xr,
                                                                int64_t b, __m256i *is, __m256i *ms)
{
    const size_t qs_at = fifth ? 48 : 16;
    const __m512i low4 = _mm512_set1_epi8(15), bit4 = _mm512_set1_epi8(0x10);
    __m128i v = mm_scales_k4(blk + 4);
    __m512i sc16 = _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(v));
    __m128i m16 = _mm_cvtepu8_epi16(_mm_srli_si128(v, 8));
    __m512i hv = fifth ? _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 16)))
                       : _mm512_setzero_si512();
    __m512i hv4 = _mm512_slli_epi16(hv, 4);
    __m512i acc[NX];
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++)
        acc[j] = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int cc = 0; cc < 4; cc++) {
        /* 32 bytes of qs: sub-block 2cc in the low nibbles, 2cc + 1 high */
        __m512i q =
            _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + qs_at + 32 * cc)));
        q = _mm512_and_si512(_mm512_srlv_epi16(q, counts(0, 4)), low4);
        if (fifth) { /* bit s of qh as bit 4: (qh << 4) >> s, s < 4; qh >> (s - 4) */
            __m512i h =
                cc < 2 ? _mm512_srlv_epi16(hv4, counts((short)(2 * cc), (short)(2 * cc + 1)))
                       : _mm512_srlv_epi16(hv, counts((short)(2 * cc - 4), (short)(2 * cc - 3)));
            q = _mm512_ternarylogic_epi32(q, h, bit4, 0xF8); /* q | (h & bit4) */
        }
        __m512i scs = _mm512_shuffle_epi8(sc16, pat(pair_pat[cc]));
#pragma GCC unroll 4
        for (int j = 0; j < nr; j++) {
            __m512i xv = _mm512_loadu_si512((const int8_t *)xr[j].x + 256 * b + 64 * cc);
            acc[j] = _mm512_dpwssd_epi32(acc[j], _mm512_maddubs_epi16(q, xv), scs);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++) {
        __m128i bs = _mm_loadu_si128((const __m128i *)(xr[j].bsum32 + 8 * b));
        is[j] = fold(acc[j]);
        ms[j] = _mm256_zextsi128_si256(_mm_madd_epi16(m16, bs));
    }
}

/* Q6_K super-block b of a weight row (at blk) against activation rows
 * xr[0..nr): is[j] gets 8 int32 lanes summing to I_b. */
static inline __attribute__((always_inline)) void superblock_q6(int nr,
                                                                const struct slora_quant_q6_k *blk,
                                                                const struct slora__mm_xrow *xr,
                                                                int64_t b, __m256i *is)
{
    const __m512i low4 = _mm512_set1_epi8(15), hi2 = _mm512_set1_epi8(0x30);
    __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)blk->scales));
    __m512i acc[NX];
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++)
        acc[j] = _mm512_setzero_si512();
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        /* elements 128h + 32g + l: ql[64h + l] (g 0, 2), ql[64h + 32 + l]
         * (g 1, 3), low nibbles for g 0, 1, high for 2, 3; bits 2g, 2g+1 of
         * qh[32h + l] as bits 4, 5 */
        __m512i ql = _mm512_loadu_si512((const void *)(blk->ql + 64 * h));
        __m512i qh =
            _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk->qh + 32 * h)));
        __m512i sch = _mm512_broadcast_i32x4(h ? _mm256_extracti128_si256(sc16, 1)
                                               : _mm256_castsi256_si128(sc16));
        __m512i q01 = _mm512_or_si512(_mm512_and_si512(ql, low4),
                                      _mm512_and_si512(_mm512_sllv_epi16(qh, counts(4, 2)), hi2));
        __m512i q23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4),
                                      _mm512_and_si512(_mm512_srlv_epi16(qh, counts(0, 2)), hi2));
        __m512i s01 = _mm512_shuffle_epi8(sch, pat(quad_pat[0]));
        __m512i s23 = _mm512_shuffle_epi8(sch, pat(quad_pat[1]));
#pragma GCC unroll 4
        for (int j = 0; j < nr; j++) {
            const int8_t *x = (const int8_t *)xr[j].x + 256 * b + 128 * h;
            acc[j] =
                _mm512_dpwssd_epi32(acc[j], _mm512_maddubs_epi16(q01, _mm512_loadu_si512(x)), s01);
            acc[j] = _mm512_dpwssd_epi32(
                acc[j], _mm512_maddubs_epi16(q23, _mm512_loadu_si512(x + 64)), s23);
        }
    }
    /* minus 32 sum_t sc_t bsum_t: removes the quants' offset */
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++) {
        __m256i bs = _mm256_loadu_si256((const __m256i *)(xr[j].bsums + 16 * b));
        is[j] = _mm256_sub_epi32(fold(acc[j]), _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5));
    }
}
#else
/* vpshufb patterns: word s of each 128-bit half in all its words. */
static const uint8_t word_pat[8][32] = {
#define W8(s) 2 * (s), 2 * (s) + 1, 2 * (s), 2 * (s) + 1, 2 * (s), 2 * (s) + 1, 2 * (s), 2 * (s) + 1
#define P(s)                                                                                       \
    {                                                                                              \
        W8(s), W8(s), W8(s), W8(s)                                                                 \
    }
    P(0), P(1), P(2), P(3), P(4), P(5), P(6), P(7),
#undef P
};
/* Q6_K: word 2g in the low half, word 2g + 1 in the high half. */
static const uint8_t pair_pat[4][32] = {
#define P(g)                                                                                       \
    {                                                                                              \
        W8(2 * g), W8(2 * g), W8(2 * g + 1), W8(2 * g + 1)                                         \
    }
    P(0),
    P(1),
    P(2),
    P(3),
#undef P
#undef W8
};

static inline __m256i pat(const uint8_t *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

/* Q4_K/Q5_K (fifth = true) super-block b of a weight row (at blk) against
 * activation rows xr[0..nr): is[j] and ms[j] get 8 int32 lanes summing to
 * I_b and M_b. */
static inline __attribute__((always_inline)) void superblock_k4(bool fifth, int nr,
                                                                const uint8_t *blk,
                                                                const struct slora__mm_xrow *xr,
                                                                int64_t b, __m256i *is, __m256i *ms)
{
    const size_t qs_at = fifth ? 48 : 16;
    const __m256i low4 = _mm256_set1_epi8(15), bit4 = _mm256_set1_epi8(0x10);
    __m128i v = mm_scales_k4(blk + 4);
    __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(v));
    __m128i m16 = _mm_cvtepu8_epi16(_mm_srli_si128(v, 8));
    __m256i hv = fifth ? _mm256_loadu_si256((const __m256i *)(blk + 16)) : _mm256_setzero_si256();
    __m256i acc[NX];
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++)
        acc[j] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int s = 0; s < 8; s++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(blk + qs_at + 32 * (s / 2)));
        q = _mm256_and_si256(s & 1 ? _mm256_srli_epi16(q, 4) : q, low4);
        if (fifth) {
            __m256i h = s <= 4 ? _mm256_slli_epi16(hv, 4 - s) : _mm256_srli_epi16(hv, s - 4);
            q = _mm256_or_si256(q, _mm256_and_si256(h, bit4));
        }
        __m256i scs = _mm256_shuffle_epi8(sc16, pat(word_pat[s]));
#pragma GCC unroll 4
        for (int j = 0; j < nr; j++) {
            __m256i xv =
                _mm256_loadu_si256((const __m256i *)((const int8_t *)xr[j].x + 256 * b + 32 * s));
            acc[j] = mm_dot_i16(acc[j], _mm256_maddubs_epi16(q, xv), scs);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++) {
        __m128i bs = _mm_loadu_si128((const __m128i *)(xr[j].bsum32 + 8 * b));
        is[j] = acc[j];
        ms[j] = _mm256_zextsi128_si256(_mm_madd_epi16(m16, bs));
    }
}

/* Q6_K super-block b of a weight row (at blk) against activation rows
 * xr[0..nr): is[j] gets 8 int32 lanes summing to I_b. */
static inline __attribute__((always_inline)) void superblock_q6(int nr,
                                                                const struct slora_quant_q6_k *blk,
                                                                const struct slora__mm_xrow *xr,
                                                                int64_t b, __m256i *is)
{
    const __m256i low4 = _mm256_set1_epi8(15), hi2 = _mm256_set1_epi8(0x30);
    __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)blk->scales));
    /* start from -32 sum_t sc_t bsum_t: removes the quants' offset */
    __m256i acc[NX];
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++) {
        __m256i bs = _mm256_loadu_si256((const __m256i *)(xr[j].bsums + 16 * b));
        acc[j] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                  _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5));
    }
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
            __m256i t = g == 0 ? _mm256_slli_epi16(qh, 4)
                        : g == 1 ? _mm256_slli_epi16(qh, 2)
                        : g == 2 ? qh
                                 : _mm256_srli_epi16(qh, 2);
            __m256i q = _mm256_or_si256(n, _mm256_and_si256(t, hi2));
            __m256i scs = _mm256_shuffle_epi8(sch, pat(pair_pat[g]));
#pragma GCC unroll 4
            for (int j = 0; j < nr; j++) {
                const int8_t *x = (const int8_t *)xr[j].x + 256 * b + 128 * h + 32 * g;
                acc[j] = mm_dot_i16(
                    acc[j], _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)x)), scs);
            }
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++)
        is[j] = acc[j];
}

#endif

/* One weight row w of type t against activation rows xr[0..nr) (cols):
 * y[j ldy]. */
static inline __attribute__((always_inline)) void row(enum slora_dtype t, int nr, const uint8_t *w,
                                                      const struct slora__mm_xrow *xr, int64_t cols,
                                                      float *y, size_t ldy, bool add)
{
    const size_t bb = t == SLORA_DTYPE_Q4_K   ? sizeof(struct slora_quant_q4_k)
                      : t == SLORA_DTYPE_Q5_K ? sizeof(struct slora_quant_q5_k)
                                              : sizeof(struct slora_quant_q6_k);
    const size_t d_at = t == SLORA_DTYPE_Q6_K ? offsetof(struct slora_quant_q6_k, d) : 0;
    const __m256i rot = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0),
                  lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const int64_t nb = cols / 256;
    __m256 acc[NX];
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++)
        acc[j] = _mm256_setzero_ps();
    for (int64_t b0 = 0; b0 < nb; b0 += 8) {
        /* super-blocks b0 + k in lane k; lanes past nb add fma(0, 0, p) */
        __m256i is[NX][8], ms[NX][8], dbits = _mm256_setzero_si256();
        for (int k = 0; k < 8; k++) {
            int64_t b = b0 + k;
            __m256i si[NX], sm[NX];
#pragma GCC unroll 4
            for (int j = 0; j < nr; j++)
                si[j] = sm[j] = _mm256_setzero_si256();
            /* d (and dmin) bits rotate in at lane 7: block b0 + k ends in lane k */
            uint32_t db = 0;
            dbits = _mm256_permutevar8x32_epi32(dbits, rot);
            if (b < nb) {
                const uint8_t *blk = w + (size_t)b * bb;
                memcpy(&db, blk + d_at, t == SLORA_DTYPE_Q6_K ? 2 : 4);
                if (t == SLORA_DTYPE_Q6_K)
                    superblock_q6(nr, (const struct slora_quant_q6_k *)blk, xr, b, si);
                else
                    superblock_k4(t == SLORA_DTYPE_Q5_K, nr, blk, xr, b, si, sm);
            }
            dbits = _mm256_blend_epi32(dbits, _mm256_set1_epi32((int)db), 0x80);
#pragma GCC unroll 4
            for (int j = 0; j < nr; j++) {
                is[j][k] = si[j];
                ms[j][k] = sm[j];
            }
        }
        __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(nb - b0)), lane);
        __m256 dw = _mm256_cvtph_ps(low16(dbits));
        __m256 dmin = _mm256_cvtph_ps(low16(_mm256_srli_epi32(dbits, 16)));
#pragma GCC unroll 4
        for (int j = 0; j < nr; j++) {
            __m256 dx = _mm256_maskload_ps(xr[j].d + b0, live);
            acc[j] =
                _mm256_fmadd_ps(_mm256_cvtepi32_ps(mm_hsum8x8_epi32(is[j])), _mm256_mul_ps(dw, dx), acc[j]);
            if (t != SLORA_DTYPE_Q6_K)
                acc[j] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mm_hsum8x8_epi32(ms[j])),
                                          _mm256_mul_ps(dmin, dx), acc[j]);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++)
        slora__mm_store(y + (size_t)j * ldy, mm_hsum(acc[j]), add);
}

/* Weight rows [r0, r1) of type t against the n (< npanel(t)) activation rows
 * at xq: the rows in order (one stream from memory), each against up to
 * NX activation rows at a time. */
static inline __attribute__((always_inline)) void rows(enum slora_dtype t,
                                                       const struct slora_tensor *w, const void *xq,
                                                       size_t xs, int n, float *y, size_t ldy,
                                                       int64_t r0, int64_t r1, bool add)
{
    struct slora__mm_xrow xr[NPANEL_MAX];
    for (int j = 0; j < n; j++)
        xr[j] = slora__mm_xrow(t, (const uint8_t *)xq + (size_t)j * xs, w->cols);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        for (int j = 0; j < n;) {
            int nr = n - j < NX ? n - j : NX;
            float *yj = y + (size_t)j * ldy + r;
            if (nr == NX)
                row(t, NX, wr, xr + j, w->cols, yj, ldy, add);
            else if (nr == 3)
                row(t, 3, wr, xr + j, w->cols, yj, ldy, add);
            else if (nr == 2)
                row(t, 2, wr, xr + j, w->cols, yj, ldy, add);
            else
                row(t, 1, wr, xr + j, w->cols, yj, ldy, add);
            j += nr;
        }
    }
}

#define ROWS_FN(name, T)                                                                           \
    static void name(const struct slora_tensor *w, const void *xq, size_t xs, int n, float *y,     \
                     size_t ldy, int64_t r0, int64_t r1, bool add)                                 \
    {                                                                                              \
        rows(T, w, xq, xs, n, y, ldy, r0, r1, add);                                                \
    }
ROWS_FN(rows_q4_k, SLORA_DTYPE_Q4_K)
ROWS_FN(rows_q5_k, SLORA_DTYPE_Q5_K)
ROWS_FN(rows_q6_k, SLORA_DTYPE_Q6_K)

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
                q[k] = _mm256_cvtps_epi32(
                    _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            }
            sum16[2 * g] = _mm256_add_epi32(q[0], q[1]);
            sum16[2 * g + 1] = _mm256_add_epi32(q[2], q[3]);
            /* packs interleave 128-bit lanes: 0 2 4 6 1 3 5 7 in dwords */
            __m256i p =
                _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(qs + 32 * g), p);
        }
        int32_t s[16];
        _mm256_storeu_si256((__m256i *)s, mm_hsum8x8_epi32(sum16));
        _mm256_storeu_si256((__m256i *)(s + 8), mm_hsum8x8_epi32(sum16 + 8));
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
    if (n >= npanel(w->type))
        slora__mm_kpanel(w, xq, xq_stride, n, y, ldy, r0, r1, add);
    else if (w->type == SLORA_DTYPE_Q4_K)
        rows_q4_k(w, xq, xq_stride, n, y, ldy, r0, r1, add);
    else if (w->type == SLORA_DTYPE_Q5_K)
        rows_q5_k(w, xq, xq_stride, n, y, ldy, r0, r1, add);
    else
        rows_q6_k(w, xq, xq_stride, n, y, ldy, r0, r1, add);
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
