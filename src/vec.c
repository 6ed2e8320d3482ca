/* vec.c - the forward pass's float vector loops (see vec.h): AVX2/FMA
 * intrinsics when the build has them (the attention blocks in 512-bit
 * vectors when it also has AVX-512), portable C otherwise. */
#include <slora/vec.h>

#include <math.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define VEC_AVX2 1
#endif

/* exp's range reduction and series (vec.h) */
#define EXP_LO -87.3f
#define EXP_HI 88.3f
#define LOG2E 1.44269504f
#define LN2_HI 0.693359375f /* ln 2 = LN2_HI + LN2_LO, LN2_HI exact in 10 bits */
#define LN2_LO -2.12194440e-4f
#define C2 (1.0f / 2)
#define C3 (1.0f / 6)
#define C4 (1.0f / 24)
#define C5 (1.0f / 120)
#define C6 (1.0f / 720)
#define C7 (1.0f / 5040)

#ifdef VEC_AVX2

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The first n (< 8) lanes at p, the rest 0. */
static inline __m256 load_part(const float *p, int n)
{
    static const int32_t ones[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    __m256i mask = _mm256_loadu_si256((const __m256i *)(ones + 8 - n));
    return _mm256_maskload_ps(p, mask);
}

static inline __m256 exp8(__m256 x)
{
    /* max/min return their second operand for a NaN: NaN passes through */
    x = _mm256_min_ps(_mm256_set1_ps(EXP_HI), _mm256_max_ps(_mm256_set1_ps(EXP_LO), x));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    __m256 p = _mm256_set1_ps(C7);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C5));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

float slora_vec_dot(const float *a, const float *b, int n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < n)
        s1 = _mm256_fmadd_ps(load_part(a + i, n - i), load_part(b + i, n - i), s1);
    return hsum8(_mm256_add_ps(s0, s1));
}

void slora_vec_axpy(float *y, float a, const float *x, int n)
{
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i,
                         _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] = fmaf(a, x[i], y[i]);
}

void slora_vec_rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
    float ss = slora_vec_dot(x, x, n) / (float)n + eps;
    __m256 s = _mm256_set1_ps(1.0f / sqrtf(ss));
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(
            o + i, _mm256_mul_ps(_mm256_loadu_ps(w + i), _mm256_mul_ps(s, _mm256_loadu_ps(x + i))));
    for (; i < n; i++)
        o[i] = w[i] * (_mm256_cvtss_f32(s) * x[i]);
}

void slora_vec_exp(float *y, const float *x, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float t[8] = {0};
        for (int k = 0; k < n - i; k++)
            t[k] = x[i + k];
        _mm256_storeu_ps(t, exp8(_mm256_loadu_ps(t)));
        for (int k = 0; k < n - i; k++)
            y[i + k] = t[k];
    }
}

void slora_vec_softmax(float *x, int n)
{
    __m256 vm = _mm256_set1_ps(x[0]);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    float max = x[0];
    float lanes[8];
    _mm256_storeu_ps(lanes, vm);
    for (int k = 0; k < 8; k++)
        max = lanes[k] > max ? lanes[k] : max;
    for (; i < n; i++)
        max = x[i] > max ? x[i] : max;
    __m256 m = _mm256_set1_ps(max), sum = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    float s = hsum8(sum);
    if (i < n) {
        float t[8] = {0};
        for (int k = 0; k < n - i; k++)
            t[k] = x[i + k] - max;
        _mm256_storeu_ps(t, exp8(_mm256_loadu_ps(t)));
        for (int k = 0; k < n - i; k++) {
            x[i + k] = t[k];
            s += t[k];
        }
    }
    __m256 inv = _mm256_set1_ps(1.0f / s);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < n; i++)
        x[i] *= _mm256_cvtss_f32(inv);
}

void slora_vec_swiglu(float *h, const float *g, int n)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(h + i);
        __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), v));
        __m256 silu = _mm256_div_ps(v, _mm256_add_ps(one, e));
        _mm256_storeu_ps(h + i, _mm256_mul_ps(silu, _mm256_loadu_ps(g + i)));
    }
    if (i < n) {
        float e[8];
        for (int k = 0; k < n - i; k++)
            e[k] = -h[i + k];
        slora_vec_exp(e, e, n - i);
        for (int k = 0; k < n - i; k++)
            h[i + k] = h[i + k] / (1.0f + e[k]) * g[i + k];
    }
}

/* Keys per block of the score walk and values per block of the mix walk
 * (a block of all heads' rows stays in L1 while every head reads it).
 * With AVX-512 (full-width on Zen 5: twice the FMAs of 256-bit vectors)
 * a score block is 8 keys and the mix runs 512-bit accumulators. */
#define VALUE_BLOCK 32
#ifdef __AVX512F__
#define KEY_BLOCK 8
#define HD_STEP 16

/* att[t + i] = scale * dot(q, key t + i), i < 8: 8 independent FMA chains
 * sharing each load of q, one transposing reduction. hd % 16 == 0. */
static inline void scores_block(float *att, const float *q, const float *k, size_t k_stride,
                                int hd, __m256 scale)
{
    __m512 a[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        a[i] = _mm512_setzero_ps();
    for (int c = 0; c < hd; c += 16) {
        __m512 qv = _mm512_loadu_ps(q + c);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++)
            a[i] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k + (size_t)i * k_stride + c), a[i]);
    }
    __m256 h[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        h[i] = _mm256_add_ps(_mm512_castps512_ps256(a[i]),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a[i]), 1)));
    /* lanes of h[i] summed into lane i: two hadd levels, then the halves */
    __m256 x0 = _mm256_hadd_ps(_mm256_hadd_ps(h[0], h[1]), _mm256_hadd_ps(h[2], h[3]));
    __m256 x1 = _mm256_hadd_ps(_mm256_hadd_ps(h[4], h[5]), _mm256_hadd_ps(h[6], h[7]));
    __m256 s = _mm256_add_ps(_mm256_permute2f128_ps(x0, x1, 0x20),
                             _mm256_permute2f128_ps(x0, x1, 0x31));
    _mm256_storeu_ps(att, _mm256_mul_ps(s, scale));
}
#else
#define KEY_BLOCK 4
#define HD_STEP 8

/* att[t + i] = scale * dot(q, key t + i), i < 4: 4 independent FMA chains
 * sharing each load of q, one transposing reduction. hd % 8 == 0. */
static inline void scores_block(float *att, const float *q, const float *k, size_t k_stride,
                                int hd, __m128 scale)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int c = 0; c < hd; c += 8) {
        __m256 qv = _mm256_loadu_ps(q + c);
        a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + c), a0);
        a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + k_stride + c), a1);
        a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + 2 * k_stride + c), a2);
        a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + 3 * k_stride + c), a3);
    }
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    _mm_storeu_ps(att, _mm_mul_ps(s, scale));
}
#endif

void slora_vec_attn_scores(float *att, size_t att_stride, const float *q, int n_q, const float *k,
                           size_t k_stride, int n_pos, int hd, float scale)
{
    int t = 0;
    if (hd % HD_STEP == 0) {
#ifdef __AVX512F__
        __m256 vs = _mm256_set1_ps(scale);
#else
        __m128 vs = _mm_set1_ps(scale);
#endif
        for (; t + KEY_BLOCK <= n_pos; t += KEY_BLOCK)
            for (int j = 0; j < n_q; j++)
                scores_block(att + j * att_stride + t, q + (size_t)j * hd,
                             k + (size_t)t * k_stride, k_stride, hd, vs);
    }
    for (; t < n_pos; t++)
        for (int j = 0; j < n_q; j++)
            att[j * att_stride + t] =
                scale * slora_vec_dot(q + (size_t)j * hd, k + (size_t)t * k_stride, hd);
}

/* out[0..64) += sum_{t < n} att[t] v[t stride + 0..64), the accumulators
 * in registers (the unroll pragmas: without them gcc -O2 keeps the arrays
 * on the stack, 2.5x slower). */
static inline void mix64(float *out, const float *att, const float *v, size_t stride, int n)
{
#ifdef __AVX512F__
    /* two sets of 4 accumulators (even and odd t): 8 FMA chains */
    __m512 acc[2][4];
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        acc[0][c] = _mm512_loadu_ps(out + 16 * c);
        acc[1][c] = _mm512_setzero_ps();
    }
    int t = 0;
    for (; t + 2 <= n; t += 2)
#pragma GCC unroll 2
        for (int e = 0; e < 2; e++) {
            __m512 a = _mm512_set1_ps(att[t + e]);
            const float *vt = v + (size_t)(t + e) * stride;
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++)
                acc[e][c] = _mm512_fmadd_ps(a, _mm512_loadu_ps(vt + 16 * c), acc[e][c]);
        }
    if (t < n) {
        __m512 a = _mm512_set1_ps(att[t]);
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++)
            acc[0][c] = _mm512_fmadd_ps(a, _mm512_loadu_ps(v + (size_t)t * stride + 16 * c),
                                        acc[0][c]);
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++)
        _mm512_storeu_ps(out + 16 * c, _mm512_add_ps(acc[0][c], acc[1][c]));
#else
    __m256 acc[8];
#pragma GCC unroll 8
    for (int c = 0; c < 8; c++)
        acc[c] = _mm256_loadu_ps(out + 8 * c);
    for (int t = 0; t < n; t++) {
        __m256 a = _mm256_set1_ps(att[t]);
#pragma GCC unroll 8
        for (int c = 0; c < 8; c++)
            acc[c] = _mm256_fmadd_ps(a, _mm256_loadu_ps(v + (size_t)t * stride + 8 * c), acc[c]);
    }
#pragma GCC unroll 8
    for (int c = 0; c < 8; c++)
        _mm256_storeu_ps(out + 8 * c, acc[c]);
#endif
}

void slora_vec_attn_mix(float *out, const float *att, size_t att_stride, int n_q, const float *v,
                        size_t v_stride, int n_pos, int hd)
{
    for (size_t c = 0; c < (size_t)n_q * hd; c++)
        out[c] = 0.0f;
    for (int t0 = 0; t0 < n_pos; t0 += VALUE_BLOCK) {
        int nt = n_pos - t0 < VALUE_BLOCK ? n_pos - t0 : VALUE_BLOCK;
        for (int j = 0; j < n_q; j++) {
            float *o = out + (size_t)j * hd;
            const float *a = att + j * att_stride + t0;
            const float *vj = v + (size_t)t0 * v_stride;
            int c = 0;
            for (; c + 64 <= hd; c += 64)
                mix64(o + c, a, vj + c, v_stride, nt);
            for (int t = 0; c < hd && t < nt; t++)
                slora_vec_axpy(o + c, a[t], vj + (size_t)t * v_stride + c, hd - c);
        }
    }
}

#else

static float exp1(float x)
{
    if (x != x)
        return x;
    x = x < EXP_LO ? EXP_LO : x > EXP_HI ? EXP_HI : x;
    float n = nearbyintf(x * LOG2E);
    float r = x - n * LN2_HI;
    r = r - n * LN2_LO;
    float p = ((((((C7 * r + C6) * r + C5) * r + C4) * r + C3) * r + C2) * r + 1.0f) * r + 1.0f;
    return ldexpf(p, (int)n);
}

float slora_vec_dot(const float *a, const float *b, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

void slora_vec_axpy(float *y, float a, const float *x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

void slora_vec_rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
    float ss = slora_vec_dot(x, x, n) / (float)n + eps;
    float s = 1.0f / sqrtf(ss);
    for (int i = 0; i < n; i++)
        o[i] = w[i] * (s * x[i]);
}

void slora_vec_exp(float *y, const float *x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] = exp1(x[i]);
}

void slora_vec_softmax(float *x, int n)
{
    float max = x[0];
    for (int i = 1; i < n; i++)
        max = x[i] > max ? x[i] : max;
    float s = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = exp1(x[i] - max);
        s += x[i];
    }
    float inv = 1.0f / s;
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}

void slora_vec_swiglu(float *h, const float *g, int n)
{
    for (int i = 0; i < n; i++)
        h[i] = h[i] / (1.0f + exp1(-h[i])) * g[i];
}

void slora_vec_attn_scores(float *att, size_t att_stride, const float *q, int n_q, const float *k,
                           size_t k_stride, int n_pos, int hd, float scale)
{
    for (int t = 0; t < n_pos; t++)
        for (int j = 0; j < n_q; j++)
            att[j * att_stride + t] =
                scale * slora_vec_dot(q + (size_t)j * hd, k + (size_t)t * k_stride, hd);
}

void slora_vec_attn_mix(float *out, const float *att, size_t att_stride, int n_q, const float *v,
                        size_t v_stride, int n_pos, int hd)
{
    for (size_t c = 0; c < (size_t)n_q * hd; c++)
        out[c] = 0.0f;
    for (int t = 0; t < n_pos; t++)
        for (int j = 0; j < n_q; j++)
            slora_vec_axpy(out + (size_t)j * hd, att[j * att_stride + t], v + (size_t)t * v_stride,
                           hd);
}

#endif
