/* matmul_simd.h - the primitives the kernel files (matmul_q.c, matmul_q8.c,
 * matmul_k.c, matmul_float.c) share, per instruction set; like kernels.c, the one kind
 * of file where #if chooses between AVX-512 and AVX2.
 *
 * MM_VNNI: AVX512-VNNI on 256-bit vectors (AVX512VL): vpdpbusd multiplies
 * unsigned by signed bytes into int32 lanes, vpdpwssd int16 pairs. (Zen 4
 * splits a 512-bit op into two 256-bit halves; Zen 5, this project's
 * machine, runs it full width, so the hot K-quant kernels and the panels
 * use 512-bit vectors where they measured faster.) MM_AVX2: the same with
 * vpmaddubsw + vpmaddwd (inputs are kept small enough never to saturate).
 * MM_SIMD is defined when either is.
 */
#ifndef SLORA_MATMUL_SIMD_H
#define SLORA_MATMUL_SIMD_H

#if defined(__AVX512VNNI__) && defined(__AVX512VL__) && defined(__AVX512BW__)
#include <immintrin.h>
#define MM_VNNI 1
#define MM_SIMD 1
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define MM_AVX2 1
#define MM_SIMD 1
#endif

#ifdef MM_SIMD

/* acc + the sums of four u8 x s8 products per int32 lane; with AVX2 the
 * pair sums must fit int16 (u <= 128 with |s| <= 127). */
static inline __m256i mm_dot_u8s8(__m256i acc, __m256i u, __m256i s)
{
#ifdef MM_VNNI
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    __m256i p = _mm256_maddubs_epi16(u, s);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
#endif
}

/* acc + pairwise products of int16 lanes summed into int32. */
static inline __m256i mm_dot_i16(__m256i acc, __m256i a, __m256i b)
{
#ifdef MM_VNNI
    return _mm256_dpwssd_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

static inline float mm_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 16 bytes at p, low nibbles in bytes 0..15, high nibbles in 16..31. */
static inline __m256i mm_nibbles16(const uint8_t *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    __m256i both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
    return _mm256_and_si256(both, _mm256_set1_epi8(15));
}

/* Q4_K/Q5_K's 12 packed scale bytes at b (16 bytes readable) as bytes
 * sc[0..7] then m[0..7]: sc[0..3] = b[0..3] & 63, m[0..3] = b[4..7] & 63,
 * sc[4..7] = b[8..11] & 15 | (b[0..3] >> 6) << 4, m[4..7] = b[8..11] >> 4
 * | (b[4..7] >> 6) << 4, four bytes per 32-bit lane. In registers: built in
 * memory from scalars, the vector load would wait for the stores (no
 * store forwarding), serializing the super-blocks. */
static inline __m128i mm_scales_k4(const uint8_t *b)
{
    __m128i v = _mm_loadu_si128((const __m128i *)b);
    __m128i p = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)); /* b0-3 b8-11 b4-7 b8-11 */
    __m128i q = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)); /* b0-3 b0-3 b4-7 b4-7 */
    p = _mm_and_si128(_mm_srlv_epi32(p, _mm_setr_epi32(0, 0, 0, 4)),
                      _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    q = _mm_and_si128(_mm_srli_epi32(q, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
    return _mm_or_si128(p, q);
}

/* An f16 scale as float (F16C). */
static inline float mm_h2f(uint16_t h)
{
    return _cvtsh_ss(h);
}

/* The sums of the 8 int32 lanes of each of v[0..7], in order (lane k of
 * the result is the sum of v[k]). */
static inline __m256i mm_hsum8x8_epi32(const __m256i v[8])
{
    __m256i a = _mm256_hadd_epi32(v[0], v[1]), b = _mm256_hadd_epi32(v[2], v[3]);
    __m256i c = _mm256_hadd_epi32(v[4], v[5]), e = _mm256_hadd_epi32(v[6], v[7]);
    a = _mm256_hadd_epi32(a, b);
    c = _mm256_hadd_epi32(c, e);
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, c, 0x20),
                            _mm256_permute2x128_si256(a, c, 0x31));
}

/* In place: v[0..7] (8 rows of 8 dwords) transposed, v[g] = dword g of
 * each row. */
static inline void mm_transpose8x32(__m256i v[8])
{
    __m256i a[8], b[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i += 2) {
        a[i] = _mm256_unpacklo_epi32(v[i], v[i + 1]);
        a[i + 1] = _mm256_unpackhi_epi32(v[i], v[i + 1]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i += 4) {
        b[i] = _mm256_unpacklo_epi64(a[i], a[i + 2]);
        b[i + 1] = _mm256_unpackhi_epi64(a[i], a[i + 2]);
        b[i + 2] = _mm256_unpacklo_epi64(a[i + 1], a[i + 3]);
        b[i + 3] = _mm256_unpackhi_epi64(a[i + 1], a[i + 3]);
    }
#pragma GCC unroll 8
    for (int g = 0; g < 4; g++) {
        v[g] = _mm256_permute2x128_si256(b[g], b[g + 4], 0x20);
        v[g + 4] = _mm256_permute2x128_si256(b[g], b[g + 4], 0x31);
    }
}

#endif
#endif
