/* matmul_q.c - SIMD kernels for the legacy 32-element types (Q4_0, Q4_1,
 * Q5_0, Q5_1; Q8_0 without VNNI, matmul_q8.c with it) against Q8
 * activation rows (matmul_internal.h).
 *
 * Per block, each weight row is unpacked once into 32 bytes u (the
 * unsigned quants; Q8_0's signed ones take the sign trick) and each
 * activation row's 32 signed quants are loaded once; every pair of the
 * MR x NR tile then takes one u8 x s8 dot into int32 lanes. The offset of
 * the symmetric types (u = q + off: 8 or 16) is removed exactly by
 * starting the dot from -off * sum(x quants), which the activation row
 * carries. The int32 lanes are scaled by dw dx into float accumulators
 * (plus m * dx sum(x) for Q4_1/Q5_1), summed horizontally at the end.
 * Every output element sees the same operations in the same order whatever
 * the tile shape.
 */
#include "matmul_internal.h"
#include "matmul_simd.h"

#include <slora/quant.h>

#include <string.h>

#ifdef MM_SIMD

#define MR 4
#ifdef MM_VNNI
#define NR 4
#else
#define NR 2
#endif

/* The 32 bits of qh at p as 32 bytes of 0x10 (bit set) or 0. */
static inline __m256i fifth_bits(const uint8_t *p)
{
    uint32_t h;
    memcpy(&h, p, 4);
#ifdef MM_VNNI
    return _mm256_maskz_mov_epi8((__mmask32)h, _mm256_set1_epi8(0x10));
#else
    /* byte j takes byte j / 8 of h, then tests its bit j % 8 */
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                            2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h), spread);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
#endif
}

/* Block b of a weight row of type t: the unsigned quants, d, and m. */
static inline __attribute__((always_inline)) __m256i unpack(enum slora_dtype t, const uint8_t *row,
                                                            int64_t b, float *d, float *m)
{
    switch (t) {
    case SLORA_DTYPE_Q4_0: {
        const struct slora_quant_q4_0 *blk = (const struct slora_quant_q4_0 *)row + b;
        *d = mm_h2f(blk->d);
        return mm_nibbles16(blk->qs);
    }
    case SLORA_DTYPE_Q4_1: {
        const struct slora_quant_q4_1 *blk = (const struct slora_quant_q4_1 *)row + b;
        *d = mm_h2f(blk->d);
        *m = mm_h2f(blk->m);
        return mm_nibbles16(blk->qs);
    }
    case SLORA_DTYPE_Q5_0: {
        const struct slora_quant_q5_0 *blk = (const struct slora_quant_q5_0 *)row + b;
        *d = mm_h2f(blk->d);
        return _mm256_or_si256(mm_nibbles16(blk->qs), fifth_bits(blk->qh));
    }
    case SLORA_DTYPE_Q5_1: {
        const struct slora_quant_q5_1 *blk = (const struct slora_quant_q5_1 *)row + b;
        *d = mm_h2f(blk->d);
        *m = mm_h2f(blk->m);
        return _mm256_or_si256(mm_nibbles16(blk->qs), fifth_bits(blk->qh));
    }
    default: { /* Q8_0 */
        const struct slora_quant_q8_0 *blk = (const struct slora_quant_q8_0 *)row + b;
        *d = mm_h2f(blk->d);
        return _mm256_loadu_si256((const __m256i *)blk->qs); /* signed: sign trick */
    }
    }
}

/* The quants' offset, removed through the activation block sums. */
static inline int offset_of(enum slora_dtype t)
{
    return t == SLORA_DTYPE_Q4_0 ? 8 : t == SLORA_DTYPE_Q5_0 ? 16 : 0;
}

static inline __attribute__((always_inline)) void tile(enum slora_dtype t, int mr, int nr,
                                                       const uint8_t *w, size_t ws,
                                                       const uint8_t *xq, size_t xs, int64_t cols,
                                                       float *y, size_t ldy, bool add)
{
    const int off = offset_of(t);
    const bool has_min = t == SLORA_DTYPE_Q4_1 || t == SLORA_DTYPE_Q5_1;
    struct slora__mm_xrow xr[NR];
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++)
        xr[j] = slora__mm_xrow(t, xq + j * xs, cols);
    __m256 acc[MR][NR];
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int j = 0; j < nr; j++)
            acc[i][j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < cols / 32; b++) {
        __m256i q[MR], xv[NR], init[NR];
        __m256 dw[MR], mw[MR], dx[NR], sx[NR];
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++) {
            float d, m = 0;
            q[i] = unpack(t, w + i * ws, b, &d, &m);
            dw[i] = _mm256_set1_ps(d);
            mw[i] = _mm256_set1_ps(m);
        }
#pragma GCC unroll 4
        for (int j = 0; j < nr; j++) {
            xv[j] = _mm256_loadu_si256((const __m256i *)((const int8_t *)xr[j].x + 32 * b));
            dx[j] = _mm256_set1_ps(xr[j].d[b]);
            init[j] = _mm256_setr_epi32(-off * xr[j].s[b], 0, 0, 0, 0, 0, 0, 0);
            sx[j] = _mm256_setr_ps(xr[j].ds[b], 0, 0, 0, 0, 0, 0, 0);
        }
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
            for (int j = 0; j < nr; j++) {
                __m256i isum;
                if (t == SLORA_DTYPE_Q8_0)
                    isum = mm_dot_u8s8(init[j], _mm256_sign_epi8(q[i], q[i]),
                                       _mm256_sign_epi8(xv[j], q[i]));
                else
                    isum = mm_dot_u8s8(init[j], q[i], xv[j]);
                acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw[i], dx[j]),
                                            acc[i][j]);
                if (has_min)
                    acc[i][j] = _mm256_fmadd_ps(mw[i], sx[j], acc[i][j]);
            }
    }
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int j = 0; j < nr; j++)
            slora__mm_store(y + j * ldy + i, mm_hsum(acc[i][j]), add);
}

#define TILE_Q40(mr, nr) tile(SLORA_DTYPE_Q4_0, mr, nr, w, ws, xq, xs, cols, y, ldy, add)
#define TILE_Q41(mr, nr) tile(SLORA_DTYPE_Q4_1, mr, nr, w, ws, xq, xs, cols, y, ldy, add)
#define TILE_Q50(mr, nr) tile(SLORA_DTYPE_Q5_0, mr, nr, w, ws, xq, xs, cols, y, ldy, add)
#define TILE_Q51(mr, nr) tile(SLORA_DTYPE_Q5_1, mr, nr, w, ws, xq, xs, cols, y, ldy, add)
#define TILE_Q80(mr, nr) tile(SLORA_DTYPE_Q8_0, mr, nr, w, ws, xq, xs, cols, y, ldy, add)
SLORA__MM_TILES(tiles_q4_0, MR, NR, TILE_Q40)
SLORA__MM_TILES(tiles_q4_1, MR, NR, TILE_Q41)
SLORA__MM_TILES(tiles_q5_0, MR, NR, TILE_Q50)
SLORA__MM_TILES(tiles_q5_1, MR, NR, TILE_Q51)
#ifndef MM_VNNI
SLORA__MM_TILES(tiles_q8_0, MR, NR, TILE_Q80)
#endif

bool slora__mm_quant_q8(const float *x, int64_t cols, int8_t *qs, float *d, int32_t *s, float *ds)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f);
    const __m256 one = _mm256_set1_ps(1.0f), lim = _mm256_set1_ps(127.0f);
    for (int64_t b = 0; b < cols / 32; b++, x += 32, qs += 32) {
        __m256 v[4], am = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            /* max_ps returns its second operand for a NaN: NaN is skipped */
            am = _mm256_max_ps(_mm256_andnot_ps(sign, v[k]), am);
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(am), _mm256_extractf128_ps(am, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        float dv = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4))) / 127;
        __m256 id = _mm256_set1_ps(dv ? 1 / dv : 0);
        __m256i q[4], sum = _mm256_setzero_si256();
        for (int k = 0; k < 4; k++) {
            __m256 t = _mm256_mul_ps(v[k], id);
            t = _mm256_and_ps(t, _mm256_cmp_ps(t, t, _CMP_ORD_Q)); /* NaN: 0 */
            __m256 sg = _mm256_and_ps(t, sign);
            t = _mm256_min_ps(_mm256_andnot_ps(sign, t), lim); /* |t|, at most 127 */
            /* roundf: halves away from zero (t - trunc(t) is exact) */
            __m256 r = _mm256_round_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            r = _mm256_add_ps(
                r, _mm256_and_ps(one, _mm256_cmp_ps(_mm256_sub_ps(t, r), half, _CMP_GE_OQ)));
            q[k] = _mm256_cvtps_epi32(_mm256_or_ps(r, sg));
            sum = _mm256_add_epi32(sum, q[k]);
        }
        __m256i p =
            _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)qs, p);
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        s[b] = _mm_cvtsi128_si32(s4);
        d[b] = slora_quant_f16_to_f32(slora_quant_f32_to_f16(dv));
        ds[b] = slora_quant_f16_to_f32(slora_quant_f32_to_f16(dv * (float)s[b]));
    }
    return true;
}

bool slora__mm_q(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n, float *y,
                 size_t ldy, int64_t r0, int64_t r1, bool add)
{
    slora__mm_tile_fn fn;
    switch (w->type) {
    case SLORA_DTYPE_Q4_0:
        fn = tiles_q4_0;
        break;
    case SLORA_DTYPE_Q4_1:
        fn = tiles_q4_1;
        break;
    case SLORA_DTYPE_Q5_0:
        fn = tiles_q5_0;
        break;
    case SLORA_DTYPE_Q5_1:
        fn = tiles_q5_1;
        break;
    case SLORA_DTYPE_Q8_0:
#ifdef MM_VNNI
        return slora__mm_q8_0(w, xq, xq_stride, n, y, ldy, r0, r1, add);
#else
        fn = tiles_q8_0;
        break;
#endif
    default:
        return false;
    }
    slora__mm_drive(w, fn, MR, NR, 8 * NR, xq, xq_stride, n, y, ldy, r0, r1, add);
    return true;
}

#else

bool slora__mm_quant_q8(const float *x, int64_t cols, int8_t *qs, float *d, int32_t *s, float *ds)
{
    (void)x, (void)cols, (void)qs, (void)d, (void)s, (void)ds;
    return false;
}

bool slora__mm_q(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n, float *y,
                 size_t ldy, int64_t r0, int64_t r1, bool add)
{
    (void)w, (void)xq, (void)xq_stride, (void)n, (void)y, (void)ldy, (void)r0, (void)r1, (void)add;
    return false;
}

#endif
