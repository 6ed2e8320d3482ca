/* matmul_float.c - SIMD kernels for F32, F16
 * and BF16 weights (matmul_internal.h). Weights are widened to f32 as they
 * are loaded (F16C's vcvtph2ps, or a 16-bit shift for BF16) and multiplied
 * into f32 accumulators against the f32 activations, exactly as the
 * portable reference multiplies them.
 *
 * BF16 does not use AVX512-BF16's vdpbf16ps: it needs both operands in
 * bf16, and rounding the activations (as ggml does) moves BF16 models'
 * logits by ~2e-3 relative from the exact product the spec's 1e-5
 * agreement asks for; an exact hi + lo bf16 split of the activations costs
 * more operations per tile than widening the weights with a shift.
 *
 * A tile of MR weight rows x NR activation rows shares each load: MR + NR
 * loads feed MR NR fused multiply-adds. Every output element is the same
 * sequence of operations whatever the tile (the canonical order at tile();
 * a masked or zero-padded tail; one horizontal sum), so slicing and
 * threads never change a result.
 * The #if blocks here choose the instruction set (as kernels.c does).
 */
#include "matmul_internal.h"
#include "matmul_simd.h"

#include <slora/quant.h>

#include <string.h>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>
#define MM_AVX512 1
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define MM_AVX2 1
#endif

#if defined(MM_AVX512) || defined(MM_AVX2)

/* Tiles are MR weight rows x up to NR activation rows: F32 takes 6
 * activation rows (10 loads feed 24 FMAs; 1B F32 prefill tiles
 * 78-90 -> 100-105 GFLOP/s), F16/BF16 keep 4 (their weight widening
 * makes the 4 x 6 tile slower: 150-165 -> 142 GFLOP/s). */
#define MR 4
#ifdef MM_AVX512
#define NR 6
#else
#define NR 4 /* 16 ymm registers */
#endif
#define NR_HALF 4

#ifdef MM_AVX512
#define W 16
typedef __m512 vec;
#define vzero() _mm512_setzero_ps()
#define vfma(a, b, c) _mm512_fmadd_ps(a, b, c)
#define vadd(a, b) _mm512_add_ps(a, b)
#define vsum(a) _mm512_reduce_add_ps(a)

/* Columns [c, c + 16) of a row of type t as floats; only `left` (< 16)
 * of them when left < 16, the rest 0. */
static inline __attribute__((always_inline)) vec load_w(enum slora_dtype t, const uint8_t *row,
                                                        int64_t c, int left)
{
    __mmask16 k = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);
    if (t == SLORA_DTYPE_F32)
        return _mm512_maskz_loadu_ps(k, (const float *)row + c);
    __m256i h = _mm256_maskz_loadu_epi16(k, (const uint16_t *)row + c);
    if (t == SLORA_DTYPE_F16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* Activations are plain floats for every weight type here. */
static inline __attribute__((always_inline)) vec load_x(const uint8_t *row, int64_t c, int left)
{
    return load_w(SLORA_DTYPE_F32, row, c, left);
}
#else
#define W 8
typedef __m256 vec;
#define vzero() _mm256_setzero_ps()
#define vfma(a, b, c) _mm256_fmadd_ps(a, b, c)
#define vadd(a, b) _mm256_add_ps(a, b)

static inline float vsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Columns [c, c + 8) as floats; the tail (left < 8) is copied to a zeroed
 * buffer first. */
static inline __attribute__((always_inline)) vec load_w(enum slora_dtype t, const uint8_t *row,
                                                        int64_t c, int left)
{
    size_t es = t == SLORA_DTYPE_F32 ? 4 : 2;
    const uint8_t *p = row + (size_t)c * es;
    uint8_t tmp[32];
    if (left < 8) {
        memset(tmp, 0, sizeof(tmp));
        memcpy(tmp, p, (size_t)left * es);
        p = tmp;
    }
    if (t == SLORA_DTYPE_F32)
        return _mm256_loadu_ps((const float *)p);
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    if (t == SLORA_DTYPE_F16)
        return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* Activations are plain floats for every weight type here. */
static inline __attribute__((always_inline)) vec load_x(const uint8_t *row, int64_t c, int left)
{
    return load_w(SLORA_DTYPE_F32, row, c, left);
}
#endif

/* Accumulators per (row, act) pair: enough independent FMA chains that
 * one weight row streamed alone (decode) is not held to one FMA latency
 * per vector (bench_matmul n = 1: F16 29-31 -> 34-36 GB/s, F32 34 -> 40;
 * 1B F16 decode 10.2 -> 12.0 tok/s). Prefill tiles pay 10-25 % for it
 * (four passes over each block of columns). */
#define K 4

/* A 16-bit decode row is read this far ahead (non-temporal hint: it is
 * used once): the hardware prefetcher alone leaves the 1B F16 model's
 * weights at 31-33 GB/s against 38 with it. F32 rows are not: there the
 * hardware prefetcher does better alone (1B F32 weights 35-37 GB/s with
 * the prefetch, 38-41 without, in the same interleaved runs; 110m F32
 * decode +3.5 % at 1 thread, though -4 to -7 % at 2). */
#define PREFETCH_BYTES 6144

/* One chunk of W columns at c (only `left` of them when left < W) of
 * every (i, j) pair into acc. */
static inline __attribute__((always_inline)) void chunk(enum slora_dtype t, int mr, int nr,
                                                        const uint8_t *w, size_t ws,
                                                        const uint8_t *x, size_t xs, int64_t c,
                                                        int left, vec acc[MR][NR])
{
    vec wv[MR], xv[NR];
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++) {
        wv[i] = load_w(t, w + i * ws, c, left);
    }
#pragma GCC unroll 6
    for (int j = 0; j < nr; j++)
        xv[j] = load_x(x + j * xs, c, left);
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 6
        for (int j = 0; j < nr; j++)
            acc[i][j] = vfma(wv[i], xv[j], acc[i][j]);
}

/* y[j ldy + i] for the mr x nr tile of weight rows w + i ws and
 * activation rows x + j xs. The canonical order every tile follows: chunk
 * m (columns [m W, m W + W), the last one partial) goes into accumulator
 * m % K of its pair, each accumulator in increasing m; the result is
 * hsum((a0 + a1) + (a2 + a3)). Small tiles keep all K accumulators in
 * registers and read each row once; larger ones (prefill, reading from
 * cache) run the K residues one after the other over each block of
 * columns. */
static inline __attribute__((always_inline)) void tile(enum slora_dtype t, int mr, int nr,
                                                       const uint8_t *w, size_t ws,
                                                       const uint8_t *x, size_t xs, int64_t cols,
                                                       float *y, size_t ldy, bool add)
{
    const int64_t full = cols / W, nc = full + (cols % W != 0);
    const int tail = (int)(cols % W);
    vec part[K][MR][NR];
#pragma GCC unroll 4
    for (int k = 0; k < K; k++)
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++)
#pragma GCC unroll 6
            for (int j = 0; j < nr; j++)
                part[k][i][j] = vzero();
    if (mr * nr * K <= 16) {
        const size_t es = t == SLORA_DTYPE_F32 ? 4 : 2, step = K * W * es;
        int64_t m = 0;
        for (; m + K <= full; m += K) {
            const char *pf = (const char *)w + (size_t)(m * W) * es + PREFETCH_BYTES;
            if (t != SLORA_DTYPE_F32)
                for (size_t o = 0; o < step; o += 64)
                    _mm_prefetch(pf + o, _MM_HINT_NTA);
#pragma GCC unroll 4
            for (int k = 0; k < K; k++)
                chunk(t, mr, nr, w, ws, x, xs, (m + k) * W, W, part[k]);
        }
#pragma GCC unroll 4
        for (int k = 0; k < K; k++) /* the rest: constant k keeps part in registers */
            if (m + k < nc)
                chunk(t, mr, nr, w, ws, x, xs, (m + k) * W, m + k < full ? W : tail, part[k]);
    } else {
        /* blocks of CB chunks: the K residues take turns over each */
        enum { CB = 64 * K };
        for (int64_t c0 = 0; c0 < nc; c0 += CB) {
            int64_t c1 = nc - c0 < CB ? nc : c0 + CB;
            for (int k = 0; k < K; k++) {
                vec acc[MR][NR];
#pragma GCC unroll 4
                for (int i = 0; i < mr; i++)
#pragma GCC unroll 6
                    for (int j = 0; j < nr; j++)
                        acc[i][j] = part[k][i][j];
                int64_t m = c0 + k;
                for (; m < c1 && m < full; m += K)
                    chunk(t, mr, nr, w, ws, x, xs, m * W, W, acc);
                if (m < c1)
                    chunk(t, mr, nr, w, ws, x, xs, m * W, tail, acc);
#pragma GCC unroll 4
                for (int i = 0; i < mr; i++)
#pragma GCC unroll 6
                    for (int j = 0; j < nr; j++)
                        part[k][i][j] = acc[i][j];
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 6
        for (int j = 0; j < nr; j++) {
            vec s = vadd(vadd(part[0][i][j], part[1][i][j]), vadd(part[2][i][j], part[3][i][j]));
            slora__mm_store(y + j * ldy + i, vsum(s), add);
        }
}

#define TILE_F32(mr, nr) tile(SLORA_DTYPE_F32, mr, nr, w, ws, xq, xs, cols, y, ldy, add)
#define TILE_F16(mr, nr) tile(SLORA_DTYPE_F16, mr, nr, w, ws, xq, xs, cols, y, ldy, add)
#define TILE_BF16(mr, nr) tile(SLORA_DTYPE_BF16, mr, nr, w, ws, xq, xs, cols, y, ldy, add)
SLORA__MM_TILES(tiles_f32, MR, NR, TILE_F32)
SLORA__MM_TILES(tiles_f16, MR, NR_HALF, TILE_F16)
SLORA__MM_TILES(tiles_bf16, MR, NR_HALF, TILE_BF16)

/* F32 streams each weight row once per 96 activation rows (3 MB of them
 * for 8192 columns, in L3): at 32 the (2048, 8192) prefill tile re-read its
 * 64 MB matrix 16 times and ran at 77-80 GFLOP/s. The 16-bit types measure
 * best at 32. */
bool slora__mm_float(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n,
                     float *y, size_t ldy, int64_t r0, int64_t r1, bool add)
{
    if (w->type == SLORA_DTYPE_F32)
        slora__mm_drive(w, tiles_f32, MR, NR, 16 * NR, xq, xq_stride, n, y, ldy, r0, r1, add);
    else
        slora__mm_drive(w, w->type == SLORA_DTYPE_F16 ? tiles_f16 : tiles_bf16, MR, NR_HALF,
                        8 * NR_HALF, xq, xq_stride, n, y, ldy, r0, r1, add);
    return true;
}

#else

bool slora__mm_float(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n,
                     float *y, size_t ldy, int64_t r0, int64_t r1, bool add)
{
    (void)w, (void)xq, (void)xq_stride, (void)n, (void)y, (void)ldy, (void)r0, (void)r1, (void)add;
    return false;
}

#endif
