/* kernels.c - AVX2 and portable inner loops (see kernels.h). The #ifdef
 * __AVX2__ blocks here are the only SIMD selection in the tree. */
#include <slora/kernels.h>

#include <string.h>

#ifdef __AVX2__
#include <immintrin.h>
#endif

static inline uint32_t fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

static inline uint32_t feistel1(uint32_t x, const uint32_t rk[4], int h, uint32_t mask)
{
    uint32_t l = x >> h, r = x & mask;
    for (int i = 0; i < 4; i++) {
        uint32_t t = l ^ (fmix32(r ^ rk[i]) & mask);
        l = r;
        r = t;
    }
    return (l << h) | r;
}

/* Butterflies of stride s (s >= 1) over a contiguous block of 2s floats
 * repeated through v[0..n). */
static void stride_scalar(float *v, size_t n, size_t s)
{
    for (size_t b = 0; b < n; b += 2 * s) {
        for (size_t j = b; j < b + s; j++) {
            float x = v[j], y = v[j + s];
            v[j] = x + y;
            v[j + s] = x - y;
        }
    }
}

#ifdef __AVX2__

static inline __m256 bfly_in_vector(__m256 v)
{
    /* strides 1, 2, 4 inside one register: lower lane keeps x + y,
     * upper lane gets x - y where x is the partner's value */
    __m256 s = _mm256_permute_ps(v, 0xB1);
    v = _mm256_blend_ps(_mm256_add_ps(v, s), _mm256_sub_ps(s, v), 0xAA);
    s = _mm256_permute_ps(v, 0x4E);
    v = _mm256_blend_ps(_mm256_add_ps(v, s), _mm256_sub_ps(s, v), 0xCC);
    s = _mm256_permute2f128_ps(v, v, 0x01);
    return _mm256_blend_ps(_mm256_add_ps(v, s), _mm256_sub_ps(s, v), 0xF0);
}

static void stride_vec(float *v, size_t n, size_t s)
{
    for (size_t b = 0; b < n; b += 2 * s) {
        for (size_t j = b; j < b + s; j += 8) {
            __m256 x = _mm256_loadu_ps(v + j), y = _mm256_loadu_ps(v + j + s);
            _mm256_storeu_ps(v + j, _mm256_add_ps(x, y));
            _mm256_storeu_ps(v + j + s, _mm256_sub_ps(x, y));
        }
    }
}

/* Two strides s and 2s in one sweep (radix 4): half the memory passes. */
static void stride2_vec(float *v, size_t n, size_t s)
{
    for (size_t b = 0; b < n; b += 4 * s) {
        for (size_t j = b; j < b + s; j += 8) {
            __m256 a = _mm256_loadu_ps(v + j), c = _mm256_loadu_ps(v + j + s);
            __m256 d = _mm256_loadu_ps(v + j + 2 * s), e = _mm256_loadu_ps(v + j + 3 * s);
            __m256 a1 = _mm256_add_ps(a, c), c1 = _mm256_sub_ps(a, c);
            __m256 d1 = _mm256_add_ps(d, e), e1 = _mm256_sub_ps(d, e);
            _mm256_storeu_ps(v + j, _mm256_add_ps(a1, d1));
            _mm256_storeu_ps(v + j + s, _mm256_add_ps(c1, e1));
            _mm256_storeu_ps(v + j + 2 * s, _mm256_sub_ps(a1, d1));
            _mm256_storeu_ps(v + j + 3 * s, _mm256_sub_ps(c1, e1));
        }
    }
}

#define L1_LOG 12 /* 4096 floats = 16 KiB: sub-blocks transformed within L1 */

static void fwht_strides(float *v, size_t n, size_t s_from)
{
    size_t s = s_from;
    for (; 4 * s <= n; s *= 4)
        stride2_vec(v, n, s);
    if (s < n)
        stride_vec(v, n, s);
}

void slora_kernels_fwht(float *v, int logn)
{
    size_t n = (size_t)1 << logn;
    if (logn < 3) {
        for (size_t s = 1; s < n; s *= 2)
            stride_scalar(v, n, s);
        return;
    }
    size_t sub = n < ((size_t)1 << L1_LOG) ? n : (size_t)1 << L1_LOG;
    for (size_t b = 0; b < n; b += sub) {
        float *w = v + b;
        for (size_t j = 0; j < sub; j += 8)
            _mm256_storeu_ps(w + j, bfly_in_vector(_mm256_loadu_ps(w + j)));
        fwht_strides(w, sub, 8);
    }
    if (sub < n)
        fwht_strides(v, n, sub);
}

void slora_kernels_fwht_rows(float *buf, int log_rows, size_t width)
{
    size_t rows = (size_t)1 << log_rows;
    fwht_strides(buf, rows * width, width);
}

static inline __m256i fmix32_vec(__m256i h)
{
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
    h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0x85EBCA6Bu));
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 13));
    h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0xC2B2AE35u));
    return _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
}

static inline __m256i feistel_vec(__m256i x, const __m256i rk[4], int h, __m256i mask)
{
    __m128i sh = _mm_cvtsi32_si128(h);
    __m256i l = _mm256_srl_epi32(x, sh), r = _mm256_and_si256(x, mask);
    for (int i = 0; i < 4; i++) {
        __m256i f = _mm256_and_si256(fmix32_vec(_mm256_xor_si256(r, rk[i])), mask);
        __m256i t = _mm256_xor_si256(l, f);
        l = r;
        r = t;
    }
    return _mm256_or_si256(_mm256_sll_epi32(l, sh), r);
}

void slora_kernels_feistel(uint32_t *x, size_t count, const uint32_t rk[4], int h, uint64_t n)
{
    uint32_t mask = h >= 32 ? 0xFFFFFFFFu : (1u << h) - 1;
    bool walk = n <= 0xFFFFFFFFu;
    __m256i vrk[4];
    for (int i = 0; i < 4; i++)
        vrk[i] = _mm256_set1_epi32((int)rk[i]);
    __m256i vmask = _mm256_set1_epi32((int)mask);
    __m256i vlast = _mm256_set1_epi32((int)(uint32_t)(n - 1));
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256i y = feistel_vec(_mm256_loadu_si256((const __m256i *)(x + i)), vrk, h, vmask);
        if (walk) {
            /* out of range where y > n - 1 (unsigned): max(y, n-1) != n-1 */
            for (;;) {
                __m256i over = _mm256_xor_si256(_mm256_max_epu32(y, vlast), vlast);
                over = _mm256_cmpeq_epi32(over, _mm256_setzero_si256());
                if (_mm256_movemask_epi8(over) == -1)
                    break;
                __m256i z = feistel_vec(y, vrk, h, vmask);
                y = _mm256_blendv_epi8(z, y, over);
            }
        }
        _mm256_storeu_si256((__m256i *)(x + i), y);
    }
    for (; i < count; i++) {
        uint32_t y = feistel1(x[i], rk, h, mask);
        while (walk && y >= n)
            y = feistel1(y, rk, h, mask);
        x[i] = y;
    }
}

void slora_kernels_scale(float *dst, const float *src, size_t n, float s)
{
    __m256 vs = _mm256_set1_ps(s);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_mul_ps(_mm256_loadu_ps(src + i), vs));
    for (; i < n; i++)
        dst[i] = src[i] * s;
}

size_t slora_kernels_find_nonfinite(const float *x, size_t n)
{
    const __m256i exp = _mm256_set1_epi32(0x7F800000);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i m = _mm256_setzero_si256();
        for (int k = 0; k < 32; k += 8) {
            __m256i b = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(x + i + k)), exp);
            m = _mm256_or_si256(m, _mm256_cmpeq_epi32(b, exp));
        }
        if (!_mm256_testz_si256(m, m))
            break;
    }
    for (; i < n; i++) {
        uint32_t b;
        memcpy(&b, x + i, sizeof(b));
        if ((b & 0x7F800000u) == 0x7F800000u)
            return i;
    }
    return n;
}

#else

void slora_kernels_fwht(float *v, int logn)
{
    size_t n = (size_t)1 << logn;
    for (size_t s = 1; s < n; s *= 2)
        stride_scalar(v, n, s);
}

void slora_kernels_fwht_rows(float *buf, int log_rows, size_t width)
{
    size_t n = ((size_t)1 << log_rows) * width;
    for (size_t s = width; s < n; s *= 2)
        stride_scalar(buf, n, s);
}

void slora_kernels_feistel(uint32_t *x, size_t count, const uint32_t rk[4], int h, uint64_t n)
{
    uint32_t mask = h >= 32 ? 0xFFFFFFFFu : (1u << h) - 1;
    for (size_t i = 0; i < count; i++) {
        uint32_t y = feistel1(x[i], rk, h, mask);
        while (n <= 0xFFFFFFFFu && y >= n)
            y = feistel1(y, rk, h, mask);
        x[i] = y;
    }
}

void slora_kernels_scale(float *dst, const float *src, size_t n, float s)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] * s;
}

size_t slora_kernels_find_nonfinite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, x + i, sizeof(b));
        if ((b & 0x7F800000u) == 0x7F800000u)
            return i;
    }
    return n;
}

#endif
