/* matmul_q8.c - Q8_0 weights against Q8 activation rows
 * (matmul_internal.h) on AVX512-VNNI. Builds without VNNI use the tile of
 * matmul_q.c for Q8_0 at every n (its own order, the same on every path
 * of that build).
 *
 * Canonical order, the same on both paths below, so an output element has
 * the same bits whatever n, the row slice [r0, r1) or the thread split:
 * for weight row r and activation row j, per 32-block b,
 *   I_b = sum_k q_k x_k, exact in int32 (taken as sum (q_k + 128) x_k,
 *         the unsigned operand vpdpbusd needs, minus 128 s_b: s_b is the
 *         activation block sum the Q8 row carries);
 *   p_b = dw_b * dx_b, one float product;
 *   L[b mod 8] = fma(float(I_b), p_b, L[b mod 8]), b increasing, L = +0;
 *   y = ((L0 + L4) + (L2 + L6)) + ((L1 + L5) + (L3 + L7)) (mm_hsum's tree).
 * Because each 32-block has its own scale, the float work per block is
 * what costs; both paths do one convert + multiply + fma for 8 dots.
 *
 * Decode (n = 1): one weight row at a time, in order (one DRAM stream), 8
 * blocks per step: 8 vpdpbusd of 32 bytes, an hadd tree to the 8 blocks'
 * I_b (lane = block), then one convert, multiply and fma into L.
 * Batches (n > 1): panels of 8 weight rows. Per block, the 8 rows' 32
 * quants are transposed into 8 vectors of 4-byte groups (lane = row), so 8
 * vpdpbusd against the activation's broadcast 4-byte groups give the 8
 * rows' I_b at once; the convert, multiply and fma then serve 8 rows. The
 * transpose is paid once per block for up to BATCH activation rows, whose
 * L (BATCH, 8 lanes, 8 rows) stay on the stack; nothing is kept between
 * calls and the weights are read in place.
 */
#include "matmul_internal.h"
#include "matmul_simd.h"

#include <slora/quant.h>

#include <string.h>

#ifdef MM_VNNI

enum {
    QB = sizeof(struct slora_quant_q8_0), /* bytes per block: f16 d, 32 quants */
    PANEL = 8,                            /* weight rows per panel */
    BATCH = 64,                           /* activation rows per panel sweep (L: 16 KB) */
};

static inline uint64_t f16_at(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

/* The f16 scales at p[0..7] as 8 floats (packed in integer registers,
 * one convert). */
static inline __m256 scales8(const uint8_t *const *p)
{
    uint64_t lo = 0, hi = 0;
#pragma GCC unroll 8
    for (int k = 0; k < 4; k++) {
        lo |= f16_at(p[k]) << (16 * k);
        hi |= f16_at(p[k + 4]) << (16 * k);
    }
    return _mm256_cvtph_ps(_mm_set_epi64x((long long)hi, (long long)lo));
}

/* The 32 quants of the block at blk as unsigned bytes q + 128. */
static inline __m256i quants_u8(const uint8_t *blk)
{
    __m256i q = _mm256_loadu_si256((const __m256i *)(blk + 2));
    return _mm256_xor_si256(q, _mm256_set1_epi8((char)0x80));
}

/* Decode step: blocks b0 .. b0 + m - 1 (m <= 8) of row against xr, added
 * into L (lane = b mod 8; lanes >= m untouched). */
static inline __attribute__((always_inline)) __m256
row_step(const uint8_t *row, const struct slora__mm_xrow *xr, int64_t b0, int m, __m256 L)
{
    const int8_t *x = (const int8_t *)xr->x + 32 * b0;
    const uint8_t *blk[8];
    __m256i v[8];
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) {
        int kk = k < m ? k : 0; /* lanes past the row's end repeat block b0 */
        blk[k] = row + (size_t)(b0 + kk) * QB;
        v[k] = _mm256_dpbusd_epi32(_mm256_setzero_si256(), quants_u8(blk[k]),
                                   _mm256_loadu_si256((const __m256i *)(x + 32 * kk)));
    }
    /* 8 vectors of 8 partial sums -> lane k = sum of v[k] */
    __m256i I = mm_hsum8x8_epi32(v);
    __mmask8 live = (__mmask8)((1u << m) - 1);
    I = _mm256_sub_epi32(I, _mm256_slli_epi32(_mm256_maskz_loadu_epi32(live, xr->s + b0), 7));
    __m256 p = _mm256_mul_ps(scales8(blk), _mm256_maskz_loadu_ps(live, xr->d + b0));
    return _mm256_mask3_fmadd_ps(_mm256_cvtepi32_ps(I), p, L, live);
}

/* One weight row (nb blocks) against one activation row. */
static float row_dot(const uint8_t *row, const struct slora__mm_xrow *xr, int64_t nb)
{
    __m256 L = _mm256_setzero_ps();
    int64_t b0 = 0;
    for (; b0 + 8 <= nb; b0 += 8)
        L = row_step(row, xr, b0, 8, L);
    if (b0 < nb)
        L = row_step(row, xr, b0, (int)(nb - b0), L);
    return mm_hsum(L);
}

/* y[j ldy + i] for the mr (<= PANEL) weight rows at w (stride ws) against
 * the nr (<= BATCH) activation rows at xq (stride xs), each cols long. */
static void panel(int mr, int nr, const uint8_t *w, size_t ws, const uint8_t *xq, size_t xs,
                  int64_t cols, float *y, size_t ldy, bool add)
{
    int64_t nb = cols / 32;
    const uint8_t *row[PANEL];
#pragma GCC unroll 8
    for (int i = 0; i < PANEL; i++) /* lanes past mr repeat row 0 */
        row[i] = w + (size_t)(i < mr ? i : 0) * ws;
    struct slora__mm_xrow xr[BATCH];
    for (int j = 0; j < nr; j++)
        xr[j] = slora__mm_xrow(SLORA_DTYPE_Q8_0, xq + (size_t)j * xs, cols);
    __m256 L[BATCH][8];
    for (int j = 0; j < nr; j++)
#pragma GCC unroll 8
        for (int c = 0; c < 8; c++)
            L[j][c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk[PANEL];
        __m256i v[8]; /* row i's 8 groups of 4 quants, then group k of every row */
#pragma GCC unroll 8
        for (int i = 0; i < PANEL; i++) {
            blk[i] = row[i] + (size_t)b * QB;
            v[i] = quants_u8(blk[i]);
        }
        mm_transpose8x32(v);
        __m256 dw = scales8(blk);
        for (int j = 0; j < nr; j++) {
            const int8_t *x = (const int8_t *)xr[j].x + 32 * b;
            __m256i I = _mm256_set1_epi32(-128 * xr[j].s[b]);
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                int32_t g;
                memcpy(&g, x + 4 * k, 4);
                I = _mm256_dpbusd_epi32(I, v[k], _mm256_set1_epi32(g));
            }
            __m256 p = _mm256_mul_ps(dw, _mm256_set1_ps(xr[j].d[b]));
            L[j][b % 8] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(I), p, L[j][b % 8]);
        }
    }
    for (int j = 0; j < nr; j++) {
        const __m256 *l = L[j];
        __m256 t =
            _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(l[0], l[4]), _mm256_add_ps(l[2], l[6])),
                          _mm256_add_ps(_mm256_add_ps(l[1], l[5]), _mm256_add_ps(l[3], l[7])));
        float out[PANEL];
        _mm256_storeu_ps(out, t);
        for (int i = 0; i < mr; i++)
            slora__mm_store(y + (size_t)j * ldy + i, out[i], add);
    }
}

bool slora__mm_q8_0(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n, float *y,
                    size_t ldy, int64_t r0, int64_t r1, bool add)
{
    const uint8_t *wd = w->data, *xd = xq;
    size_t ws = w->row_bytes;
    if (n == 1) {
        struct slora__mm_xrow xr = slora__mm_xrow(SLORA_DTYPE_Q8_0, xq, w->cols);
        for (int64_t r = r0; r < r1; r++)
            slora__mm_store(y + r, row_dot(wd + (size_t)r * ws, &xr, w->cols / 32), add);
        return true;
    }
    for (int i = 0; i < n; i += BATCH) {
        int nr = n - i < BATCH ? n - i : BATCH;
        for (int64_t r = r0; r < r1; r += PANEL) {
            int mr = r1 - r < PANEL ? (int)(r1 - r) : PANEL;
            panel(mr, nr, wd + (size_t)r * ws, ws, xd + (size_t)i * xq_stride, xq_stride, w->cols,
                  y + (size_t)i * ldy + r, ldy, add);
        }
    }
    return true;
}

#else

bool slora__mm_q8_0(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n, float *y,
                    size_t ldy, int64_t r0, int64_t r1, bool add)
{
    (void)w, (void)xq, (void)xq_stride, (void)n, (void)y, (void)ldy, (void)r0, (void)r1, (void)add;
    return false;
}

#endif
