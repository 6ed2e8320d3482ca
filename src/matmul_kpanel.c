/* matmul_kpanel.c - the K-quant product (Q4_K, Q5_K, Q6_K) from 12
 * activation rows up (16 for Q6_K; fewer go to matmul_k.c's row kernel): panels of weight rows unpacked on the fly into a small
 * stack scratch, then swept by every activation row of a block.
 *
 * A panel is PR consecutive weight rows (16 with AVX512-VNNI, one int32
 * lane of a 512-bit vector each; 8 with AVX2). Per chunk of KC super-blocks
 * it is unpacked once into struct panel:
 *   q   the quants as bytes 0..63, group k / 4 of each super-block in one
 *       vector: 4 consecutive quants of each of the PR rows (row r in
 *       bytes 4r..4r+3, the order of the activation quants)
 *   sc  the sub-block scales as int32 lanes (8 sub-blocks of 32 for
 *       Q4_K/Q5_K, 16 of 16 for Q6_K)
 *   mp  int16 pairs per lane: the mins (m_2p, m_2p+1) of Q4_K/Q5_K, the
 *       scales (sc_2p, sc_2p+1) of Q6_K
 *   d, dmin  the super-block scales as floats
 * Each activation row then meets each group vector in one u8 x s8 dot
 * (vpdpbusd) against a broadcast of its 4 quants, summed per sub-block
 * into S (int32, exact: <= 32 * 63 * 127), and I = sum_s sc_s S_s
 * (vpmulld) plus the mins' M = sum_s m_s bsum32_s (Q6_K: the offset
 * -32 sum_t sc_t bsum_t) by vpdpwssd: the exact integers of matmul_k.c's
 * canonical order, whose float steps follow it lane by lane. A block of
 * up to XB activation rows shares each unpacking (with 128, a 128-token
 * 1B Q4_K_M prefill spends ~20 % of the panel time unpacking, the rest in
 * the sweeps); the next chunk's weight lines are prefetched meanwhile. No
 * copy of the weights outlives the call; the scratch (struct panel, the
 * partial sums, XB activation rows' arrays) is ~95 KB of stack.
 */
#include "matmul_internal.h"
#include "matmul_simd.h"

#include <slora/quant.h>

#include <string.h>

#ifdef MM_SIMD

#define KC 4   /* super-blocks per chunk: the panel's scratch stays in L1 */
#define XB 128 /* activation rows per block: their partial sums (XB, 8, PR) */

#ifdef MM_VNNI
#define PR 16 /* weight rows per panel */
#define NR 8  /* activation rows per register tile */
typedef __m512i ivec;
typedef __m512 fvec;
#define izero() _mm512_setzero_si512()
#define iload(p) _mm512_load_si512((const void *)(p))
#define iadd(a, b) _mm512_add_epi32(a, b)
#define isub(a, b) _mm512_sub_epi32(a, b)
#define imul(a, b) _mm512_mullo_epi32(a, b)
#define ishl5(a) _mm512_slli_epi32(a, 5)
#define fload(p) _mm512_load_ps(p)
#define fstore(p, v) _mm512_store_ps(p, v)
#define fstoreu(p, v) _mm512_storeu_ps(p, v)
#define fset1(x) _mm512_set1_ps(x)
#define fcvt(a) _mm512_cvtepi32_ps(a)
#define fmul(a, b) _mm512_mul_ps(a, b)
#define fadd(a, b) _mm512_add_ps(a, b)
#define ffma(a, b, c) _mm512_fmadd_ps(a, b, c)
#define ffnma(a, b, c) _mm512_fnmadd_ps(a, b, c)

/* acc + the dot of each lane's 4 bytes of w (u8) with x[0..3] (s8). */
static inline ivec dot4(ivec acc, ivec w, const int8_t *x)
{
    int32_t v;
    memcpy(&v, x, 4);
    return _mm512_dpbusd_epi32(acc, w, _mm512_set1_epi32(v));
}

/* acc + the dot of each lane's int16 pair of a with x[0..1]. */
static inline ivec dot2(ivec acc, ivec a, const int16_t *x)
{
    int32_t v;
    memcpy(&v, x, 4);
    return _mm512_dpwssd_epi32(acc, a, _mm512_set1_epi32(v));
}
#else
#define PR 8
#define NR 3 /* 16 registers */
typedef __m256i ivec;
typedef __m256 fvec;
#define izero() _mm256_setzero_si256()
#define iload(p) _mm256_load_si256((const __m256i *)(p))
#define iadd(a, b) _mm256_add_epi32(a, b)
#define isub(a, b) _mm256_sub_epi32(a, b)
#define imul(a, b) _mm256_mullo_epi32(a, b)
#define ishl5(a) _mm256_slli_epi32(a, 5)
#define fload(p) _mm256_load_ps(p)
#define fstore(p, v) _mm256_store_ps(p, v)
#define fstoreu(p, v) _mm256_storeu_ps(p, v)
#define fset1(x) _mm256_set1_ps(x)
#define fcvt(a) _mm256_cvtepi32_ps(a)
#define fmul(a, b) _mm256_mul_ps(a, b)
#define fadd(a, b) _mm256_add_ps(a, b)
#define ffma(a, b, c) _mm256_fmadd_ps(a, b, c)
#define ffnma(a, b, c) _mm256_fnmadd_ps(a, b, c)

static inline ivec dot4(ivec acc, ivec w, const int8_t *x)
{
    int32_t v;
    memcpy(&v, x, 4);
    return mm_dot_u8s8(acc, w, _mm256_set1_epi32(v)); /* w <= 63: no saturation */
}

static inline ivec dot2(ivec acc, ivec a, const int16_t *x)
{
    int32_t v;
    memcpy(&v, x, 4);
    return mm_dot_i16(acc, a, _mm256_set1_epi32(v));
}
#endif

/* One chunk of a panel, unpacked (see the header). */
struct panel {
    _Alignas(64) uint8_t q[KC][64][PR][4];
    _Alignas(64) int32_t sc[KC][16][PR];
    _Alignas(64) int32_t mp[KC][8][PR];
    _Alignas(64) float d[KC][PR];
    _Alignas(64) float dmin[KC][PR];
};

/* The 32 bytes at blk[i] + at for each of 8 rows (0 past nv), transposed. */
static inline void load8(const uint8_t *const blk[8], int nv, size_t at, __m256i v[8])
{
    for (int i = 0; i < 8; i++)
        v[i] = i < nv ? _mm256_loadu_si256((const __m256i *)(blk[i] + at)) : _mm256_setzero_si256();
    mm_transpose8x32(v);
}

/* Rows i < nv of v (8 lanes each, int32) to dst[0..7][8 rows]: lanes
 * transposed so dst[s] holds value s of each row. */
static inline void store_lanes8(__m256i v[8], int32_t (*dst)[PR], int at)
{
    mm_transpose8x32(v);
    for (int s = 0; s < 8; s++)
        _mm256_storeu_si256((__m256i *)(dst[s] + at), v[s]);
}

/* Super-block b of rows blk[0..nv) (8 of the panel, from lane `at`) of
 * Q4_K or Q5_K into chunk slot c. */
static void unpack_k4(bool fifth, const uint8_t *const blk[8], int nv, struct panel *pn, int c,
                      int at)
{
    const __m256i low4 = _mm256_set1_epi8(15), bit4 = _mm256_set1_epi8(0x10);
    const size_t qs_at = fifth ? 48 : 16;
    __m256i v[8], h[8];
    if (fifth)
        load8(blk, nv, 16, h);
    for (int cc = 0; cc < 4; cc++) { /* 32 bytes: sub-blocks 2cc (low nibbles), 2cc + 1 */
        load8(blk, nv, qs_at + 32 * (size_t)cc, v);
        for (int g = 0; g < 8; g++) {
            __m256i lo = _mm256_and_si256(v[g], low4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v[g], 4), low4);
            if (fifth) { /* bit s of qh as bit 4, s = 2cc, 2cc + 1 */
                int s = 2 * cc;
                __m256i h0 =
                    s < 4 ? _mm256_slli_epi16(h[g], 4 - s) : _mm256_srli_epi16(h[g], s - 4);
                __m256i h1 =
                    s < 3 ? _mm256_slli_epi16(h[g], 3 - s) : _mm256_srli_epi16(h[g], s - 3);
                lo = _mm256_or_si256(lo, _mm256_and_si256(h0, bit4));
                hi = _mm256_or_si256(hi, _mm256_and_si256(h1, bit4));
            }
            _mm256_storeu_si256((__m256i *)pn->q[c][16 * cc + g][at], lo);
            _mm256_storeu_si256((__m256i *)pn->q[c][16 * cc + 8 + g][at], hi);
        }
    }
    __m256i sc[8], mp[8];
    for (int i = 0; i < 8; i++) {
        __m128i s = i < nv ? mm_scales_k4(blk[i] + 4) : _mm_setzero_si128();
        sc[i] = _mm256_cvtepu8_epi32(s);
        mp[i] = _mm256_zextsi128_si256(_mm_cvtepu8_epi16(_mm_srli_si128(s, 8)));
        uint16_t d, dm;
        memcpy(&d, blk[i], 2);
        memcpy(&dm, blk[i] + 2, 2);
        pn->d[c][at + i] = i < nv ? mm_h2f(d) : 0;
        pn->dmin[c][at + i] = i < nv ? mm_h2f(dm) : 0;
    }
    store_lanes8(sc, pn->sc[c], at);
    store_lanes8(mp, pn->mp[c], at);
}

/* Q6_K's super-block of rows blk[0..nv) into chunk slot c, lanes from at. */
static void unpack_q6(const uint8_t *const blk[8], int nv, struct panel *pn, int c, int at)
{
    const __m256i low4 = _mm256_set1_epi8(15), hi2 = _mm256_set1_epi8(0x30);
    for (int h = 0; h < 2; h++) { /* elements 128h + 32u + l: ql, ql + 32, qh of half h */
        __m256i a[8], b[8], q[8];
        load8(blk, nv, 64 * (size_t)h, a);
        load8(blk, nv, 64 * (size_t)h + 32, b);
        load8(blk, nv, 128 + 32 * (size_t)h, q);
        for (int g = 0; g < 8; g++) {
            __m256i u[4];
            u[0] = _mm256_or_si256(_mm256_and_si256(a[g], low4),
                                   _mm256_and_si256(_mm256_slli_epi16(q[g], 4), hi2));
            u[1] = _mm256_or_si256(_mm256_and_si256(b[g], low4),
                                   _mm256_and_si256(_mm256_slli_epi16(q[g], 2), hi2));
            u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a[g], 4), low4),
                                   _mm256_and_si256(q[g], hi2));
            u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b[g], 4), low4),
                                   _mm256_and_si256(_mm256_srli_epi16(q[g], 2), hi2));
            for (int k = 0; k < 4; k++)
                _mm256_storeu_si256((__m256i *)pn->q[c][32 * h + 8 * k + g][at], u[k]);
        }
    }
    __m256i lo[8], hi[8], mp[8];
    for (int i = 0; i < 8; i++) {
        const struct slora_quant_q6_k *q6 = (const struct slora_quant_q6_k *)blk[i];
        __m128i s = i < nv ? _mm_loadu_si128((const __m128i *)q6->scales) : _mm_setzero_si128();
        lo[i] = _mm256_cvtepi8_epi32(s);
        hi[i] = _mm256_cvtepi8_epi32(_mm_srli_si128(s, 8));
        mp[i] = _mm256_cvtepi8_epi16(s);
        pn->d[c][at + i] = i < nv ? mm_h2f(q6->d) : 0;
    }
    store_lanes8(lo, pn->sc[c], at);
    store_lanes8(hi, pn->sc[c] + 8, at);
    store_lanes8(mp, pn->mp[c], at);
}

/* A chunk: super-blocks b0 .. b0 + kb - 1 of weight rows w + r ws, r < nv. */
struct chunk {
    const uint8_t *w;
    int nv;
    int64_t b0;
    int kb;
};

/* Chunk cur into pn, asking for the lines of chunk next (nv 0: none) into
 * L2 on the way: the rows of a panel are 16 streams the hardware does not
 * follow, and the activation rows' sweep of cur hides next's DRAM latency.
 * (__builtin_prefetch: gcc 12 dropped _mm_prefetch here as dead code.) */
static void unpack(enum slora_dtype t, size_t ws, const struct chunk *cur, const struct chunk *next,
                   struct panel *pn)
{
    const size_t bb = t == SLORA_DTYPE_Q4_K   ? sizeof(struct slora_quant_q4_k)
                      : t == SLORA_DTYPE_Q5_K ? sizeof(struct slora_quant_q5_k)
                                              : sizeof(struct slora_quant_q6_k);
    for (int c = 0; c < cur->kb; c++)
        for (int at = 0; at < PR; at += 8) {
            for (int i = at; i < at + 8 && i < next->nv && c < next->kb; i++) {
                const uint8_t *a = next->w + (size_t)i * ws + (size_t)(next->b0 + c) * bb;
                for (const uint8_t *l = a - ((uintptr_t)a & 63); l < a + bb; l += 64)
                    __builtin_prefetch(l, 0, 2);
            }
            const uint8_t *blk[8];
            for (int i = 0; i < 8; i++)
                blk[i] = cur->w + (size_t)(at + i < cur->nv ? at + i : 0) * ws +
                         (size_t)(cur->b0 + c) * bb;
            int left = cur->nv - at < 0 ? 0 : cur->nv - at;
            if (t == SLORA_DTYPE_Q6_K)
                unpack_q6(blk, left, pn, c, at);
            else
                unpack_k4(t == SLORA_DTYPE_Q5_K, blk, left, pn, c, at);
        }
}

/* Activation rows xr[0..nr) against super-blocks b0 .. b0 + kb - 1 in pn:
 * p[j][b % 8] (PR lanes, one per weight row) += the canonical float steps. */
static inline __attribute__((always_inline)) void sweep(enum slora_dtype t, int nr,
                                                        const struct panel *pn, int64_t b0, int kb,
                                                        const struct slora__mm_xrow *xr,
                                                        float (*p)[8][PR])
{
    const bool q6 = t == SLORA_DTYPE_Q6_K;
    for (int c = 0; c < kb; c++) {
        const int64_t b = b0 + c;
        ivec isum[NR], s[NR];
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++)
            isum[j] = izero();
        /* sub-blocks of 16 (Q6_K) or 32 quants: 4 or 8 groups of 4 */
        const int ng = q6 ? 4 : 8;
        for (int u = 0; u < (q6 ? 16 : 8); u++) {
#pragma GCC unroll 8
            for (int j = 0; j < nr; j++)
                s[j] = izero();
#pragma GCC unroll 8
            for (int g = 0; g < ng; g++) {
                ivec wv = iload(pn->q[c][ng * u + g]);
#pragma GCC unroll 8
                for (int j = 0; j < nr; j++)
                    s[j] = dot4(s[j], wv, (const int8_t *)xr[j].x + 256 * b + 4 * (ng * u + g));
            }
            ivec scv = iload(pn->sc[c][u]);
#pragma GCC unroll 8
            for (int j = 0; j < nr; j++)
                isum[j] = iadd(isum[j], imul(s[j], scv));
        }
        /* Q4_K/Q5_K: M = sum_s m_s bsum32_s; Q6_K: I -= 32 sum_t sc_t bsum_t */
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++)
            s[j] = izero();
        const int npair = q6 ? 8 : 4;
#pragma GCC unroll 8
        for (int k = 0; k < npair; k++) {
            ivec m = iload(pn->mp[c][k]);
#pragma GCC unroll 8
            for (int j = 0; j < nr; j++)
                s[j] = dot2(s[j], m, (q6 ? xr[j].bsums + 16 * b : xr[j].bsum32 + 8 * b) + 2 * k);
        }
        fvec dw = fload(pn->d[c]), dm = fload(pn->dmin[c]);
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++) {
            fvec dx = fset1(xr[j].d[b]);
            float *acc = p[j][b % 8];
            if (q6) {
                fstore(acc, ffma(fcvt(isub(isum[j], ishl5(s[j]))), fmul(dw, dx), fload(acc)));
            } else {
                fvec a = ffma(fcvt(isum[j]), fmul(dw, dx), fload(acc));
                fstore(acc, ffnma(fcvt(s[j]), fmul(dm, dx), a));
            }
        }
    }
}

/* sweep with nr a compile-time constant: NR, 4, 2 or 1 rows at a time. */
#define SWEEPS(name, T)                                                                            \
    static int name(int left, const struct panel *pn, int64_t b0, int kb,                          \
                    const struct slora__mm_xrow *xr, float(*p)[8][PR])                             \
    {                                                                                              \
        if (left >= NR) {                                                                          \
            sweep(T, NR, pn, b0, kb, xr, p);                                                       \
            return NR;                                                                             \
        }                                                                                          \
        if (NR > 4 && left >= 4) {                                                                 \
            sweep(T, NR > 4 ? 4 : 1, pn, b0, kb, xr, p);                                           \
            return NR > 4 ? 4 : 1;                                                                 \
        }                                                                                          \
        if (left >= 2) {                                                                           \
            sweep(T, 2, pn, b0, kb, xr, p);                                                        \
            return 2;                                                                              \
        }                                                                                          \
        sweep(T, 1, pn, b0, kb, xr, p);                                                            \
        return 1;                                                                                  \
    }
SWEEPS(sweep_q4_k, SLORA_DTYPE_Q4_K)
SWEEPS(sweep_q5_k, SLORA_DTYPE_Q5_K)
SWEEPS(sweep_q6_k, SLORA_DTYPE_Q6_K)

/* The rows' partial sums p[j][0..7] summed as mm_hsum sums 8 lanes, into
 * y[j ldy + r] for r < nv. */
static void store_panel(int ni, int nv, float (*p)[8][PR], float *y, size_t ldy, bool add)
{
    for (int j = 0; j < ni; j++) {
        fvec v =
            fadd(fadd(fadd(fload(p[j][0]), fload(p[j][4])), fadd(fload(p[j][2]), fload(p[j][6]))),
                 fadd(fadd(fload(p[j][1]), fload(p[j][5])), fadd(fload(p[j][3]), fload(p[j][7]))));
        float *yj = y + (size_t)j * ldy;
        if (nv == PR && !add) {
            fstoreu(yj, v);
            continue;
        }
        _Alignas(64) float out[PR];
        fstore(out, v);
        for (int r = 0; r < nv; r++)
            slora__mm_store(yj + r, out[r], add);
    }
}

void slora__mm_kpanel(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n,
                      float *y, size_t ldy, int64_t r0, int64_t r1, bool add)
{
    int (*fn)(int, const struct panel *, int64_t, int, const struct slora__mm_xrow *,
              float(*)[8][PR]) = w->type == SLORA_DTYPE_Q4_K   ? sweep_q4_k
                                 : w->type == SLORA_DTYPE_Q5_K ? sweep_q5_k
                                                               : sweep_q6_k;
    struct panel pn;
    _Alignas(64) float p[XB][8][PR];
    struct slora__mm_xrow xr[XB];
    const int64_t nb = w->cols / 256;
    const size_t ws = w->row_bytes;
    const uint8_t *wd = w->data;
    for (int i0 = 0; i0 < n; i0 += XB) {
        int ni = n - i0 < XB ? n - i0 : XB;
        for (int j = 0; j < ni; j++)
            xr[j] = slora__mm_xrow(w->type, (const uint8_t *)xq + (size_t)(i0 + j) * xq_stride,
                                   w->cols);
        for (int64_t p0 = r0; p0 < r1; p0 += PR) {
            int nv = r1 - p0 < PR ? (int)(r1 - p0) : PR;
            memset(p, 0, (size_t)ni * sizeof(p[0]));
            for (int64_t b0 = 0; b0 < nb; b0 += KC) {
                struct chunk cur = {wd + (size_t)p0 * ws, nv, b0,
                                    nb - b0 < KC ? (int)(nb - b0) : KC};
                /* the chunk after: the panel's next, the next panel's
                 * first, or the first of the next activation block */
                int64_t np0 = b0 + KC < nb ? p0 : p0 + PR < r1 ? p0 + PR : r0;
                int64_t nb0 = b0 + KC < nb ? b0 + KC : 0;
                struct chunk next = {wd + (size_t)np0 * ws, 0, nb0,
                                     nb - nb0 < KC ? (int)(nb - nb0) : KC};
                if (b0 + KC < nb || p0 + PR < r1 || i0 + XB < n)
                    next.nv = r1 - np0 < PR ? (int)(r1 - np0) : PR;
                unpack(w->type, ws, &cur, &next, &pn);
                for (int j = 0; j < ni;)
                    j += fn(ni - j, &pn, b0, cur.kb, xr + j, p + j);
            }
            store_panel(ni, nv, p, y + (size_t)i0 * ldy + p0, ldy, add);
        }
    }
}

#endif
