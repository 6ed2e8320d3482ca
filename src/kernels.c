/* kernels.c - AVX2 and portable inner loops (see kernels.h). The #ifdef
 * __AVX2__ blocks here are the only SIMD selection in the tree. */
#include <slora/kernels.h>
#include <slora/perm.h>

#include <math.h>
#include <string.h>

#ifdef __AVX2__
#include <immintrin.h>
#endif

static inline int64_t gd_of(uint64_t u)
{
    return (int64_t)((u & 0xFFFF) + ((u >> 16) & 0xFFFF) + ((u >> 32) & 0xFFFF) + (u >> 48)) -
           131070;
}

static uint64_t gd_scale_scalar(float *w, size_t count, uint64_t z)
{
    uint64_t sum = 0;
    for (size_t t = 0; t < count; t++, z += SLORA_GAMMA) {
        int64_t g = gd_of(slora_mix64(z));
        sum += (uint64_t)(g * g);
        w[t] *= (float)g;
    }
    return sum;
}

static void outer_row_scalar(float *dst, const float *u, const float *at, size_t ld, size_t n,
                             size_t r, float scale)
{
    for (size_t c = 0; c < n; c++) {
        float acc = u[0] * at[c];
        for (size_t j = 1; j < r; j++)
            acc = fmaf(u[j], at[j * ld + c], acc);
        dst[c] = acc * scale;
    }
}

static inline uint32_t feistel1(uint32_t x, const uint32_t rk[4], int h, uint32_t mask)
{
    uint32_t l = x >> h, r = x & mask;
    for (int i = 0; i < 4; i++) {
        uint32_t t = l ^ (slora_fmix32(r ^ rk[i]) & mask);
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

/* The AVX2 paths check single elements at the ragged ends. */
static inline bool nonfinite1(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof(b));
    return (b & 0x7F800000u) == 0x7F800000u;
}

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

/* One Feistel round on a vector: (L, R) -> (R, L ^ (fmix32(R ^ rk) & mask)). */
static inline void round_vec(__m256i *l, __m256i *r, __m256i rk, __m256i mask)
{
    __m256i t = _mm256_xor_si256(*l, _mm256_and_si256(fmix32_vec(_mm256_xor_si256(*r, rk)), mask));
    *l = *r;
    *r = t;
}

/* Four vectors per step: each round is a chain of ~16 dependent cycles,
 * so four independent chains keep the multipliers busy (the vectors are
 * passed by pointer to inlined locals, so they stay in registers). */
static inline __attribute__((always_inline)) void feistel_vec4(__m256i *x0, __m256i *x1,
                                                               __m256i *x2, __m256i *x3,
                                                               const __m256i rk[4], __m128i sh,
                                                               __m256i mask)
{
    __m256i l0 = _mm256_srl_epi32(*x0, sh), r0 = _mm256_and_si256(*x0, mask);
    __m256i l1 = _mm256_srl_epi32(*x1, sh), r1 = _mm256_and_si256(*x1, mask);
    __m256i l2 = _mm256_srl_epi32(*x2, sh), r2 = _mm256_and_si256(*x2, mask);
    __m256i l3 = _mm256_srl_epi32(*x3, sh), r3 = _mm256_and_si256(*x3, mask);
    for (int i = 0; i < 4; i++) {
        round_vec(&l0, &r0, rk[i], mask);
        round_vec(&l1, &r1, rk[i], mask);
        round_vec(&l2, &r2, rk[i], mask);
        round_vec(&l3, &r3, rk[i], mask);
    }
    *x0 = _mm256_or_si256(_mm256_sll_epi32(l0, sh), r0);
    *x1 = _mm256_or_si256(_mm256_sll_epi32(l1, sh), r1);
    *x2 = _mm256_or_si256(_mm256_sll_epi32(l2, sh), r2);
    *x3 = _mm256_or_si256(_mm256_sll_epi32(l3, sh), r3);
}

/* F on the 32 values at x, in place. */
static inline void feistel_mem32(uint32_t *x, const __m256i rk[4], __m128i sh, __m256i mask)
{
    __m256i x0 = _mm256_loadu_si256((const __m256i *)x);
    __m256i x1 = _mm256_loadu_si256((const __m256i *)(x + 8));
    __m256i x2 = _mm256_loadu_si256((const __m256i *)(x + 16));
    __m256i x3 = _mm256_loadu_si256((const __m256i *)(x + 24));
    feistel_vec4(&x0, &x1, &x2, &x3, rk, sh, mask);
    _mm256_storeu_si256((__m256i *)x, x0);
    _mm256_storeu_si256((__m256i *)(x + 8), x1);
    _mm256_storeu_si256((__m256i *)(x + 16), x2);
    _mm256_storeu_si256((__m256i *)(x + 24), x3);
}

/* Left-packs the lanes of y selected by `over` (bit t = lane t) and their
 * positions vpos to pos[np..], val[np..] (8 lanes stored, popcount kept):
 * no branch on the data. Returns the new count. */
static inline size_t pack_lanes(uint32_t *pos, uint32_t *val, size_t np, __m256i vpos, __m256i y,
                                unsigned over)
{
#ifdef __BMI2__
    uint64_t bytes = _pdep_u64(over, 0x0101010101010101ull) * 0xFF;
    __m256i sel =
        _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)_pext_u64(0x0706050403020100ull, bytes)));
#else
    uint32_t lanes[8] = {0};
    for (unsigned b = 0, k = 0; b < 8; b++)
        if (over >> b & 1)
            lanes[k++] = b;
    __m256i sel = _mm256_loadu_si256((const __m256i *)lanes);
#endif
    _mm256_storeu_si256((__m256i *)(pos + np), _mm256_permutevar8x32_epi32(vpos, sel));
    _mm256_storeu_si256((__m256i *)(val + np), _mm256_permutevar8x32_epi32(y, sel));
    return np + (size_t)__builtin_popcount(over);
}

/* Lanes of y that are >= n (vlast = n - 1), as movemask bits. */
static inline unsigned over_lanes(__m256i y, __m256i vlast)
{
    __m256i in = _mm256_cmpeq_epi32(_mm256_max_epu32(y, vlast), vlast);
    return ~(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(in)) & 0xFFu;
}

#define WALK_BLOCK 1024

/* The values of one block of up to WALK_BLOCK that are >= n, left-packed
 * as they are computed: position in the block and value. */
struct walk_list {
    uint32_t pos[WALK_BLOCK + 8];
    uint32_t val[WALK_BLOCK + 32];
    size_t np;
    __m256i vlast; /* n - 1 in every lane */
};

static inline void walk_add(struct walk_list *w, size_t i, __m256i y)
{
    __m256i vpos =
        _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)i));
    w->np = pack_lanes(w->pos, w->val, w->np, vpos, y, over_lanes(y, w->vlast));
}

/* Cycle walking for the listed values of xb: F runs on the dense list
 * four vectors at a time, results are written back and the lanes still
 * out of range packed again, until none is left. The in-range majority
 * costs one compare, and nothing branches on data. */
static void walk_block(uint32_t *xb, struct walk_list *w, const __m256i vrk[4], __m128i sh,
                       __m256i vmask)
{
    size_t np = w->np;
    uint32_t *pos = w->pos, *val = w->val;
    while (np) {
        memset(val + np, 0, (32 - np % 32) % 32 * sizeof(uint32_t));
        for (size_t k = 0; k < np; k += 32)
            feistel_mem32(val + k, vrk, sh, vmask);
        for (size_t k = 0; k < np; k++)
            xb[pos[k]] = val[k];
        size_t keep = 0;
        for (size_t k = 0; k < np; k += 8) {
            unsigned live = np - k < 8 ? (1u << (np - k)) - 1 : 0xFFu;
            __m256i y = _mm256_loadu_si256((const __m256i *)(val + k));
            keep = pack_lanes(pos, val, keep, _mm256_loadu_si256((const __m256i *)(pos + k)), y,
                              over_lanes(y, w->vlast) & live);
        }
        np = keep;
    }
}

void slora_kernels_feistel(uint32_t *out, uint64_t i0, size_t count, const uint32_t rk[4], int h,
                           uint64_t n)
{
    uint32_t mask = h >= 32 ? 0xFFFFFFFFu : (1u << h) - 1;
    __m256i vrk[4];
    for (int i = 0; i < 4; i++)
        vrk[i] = _mm256_set1_epi32((int)rk[i]);
    __m256i vmask = _mm256_set1_epi32((int)mask);
    __m128i sh = _mm_cvtsi32_si128(h);
    __m256i eight = _mm256_set1_epi32(8);
    bool walk = n < ((uint64_t)1 << (2 * h));
    struct walk_list w = {.vlast = _mm256_set1_epi32((int)(uint32_t)(n - 1))};
    for (size_t b0 = 0; b0 < count; b0 += WALK_BLOCK) {
        uint32_t *xb = out + b0;
        size_t m = count - b0 < WALK_BLOCK ? count - b0 : WALK_BLOCK, i = 0;
        w.np = 0;
        /* the domain indices, counted up in registers (wrapping at 2^32
         * only past n = 2^32, which is never reached) */
        __m256i x0 = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)(i0 + b0)),
                                      _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (; i + 32 <= m; i += 32) {
            __m256i x1 = _mm256_add_epi32(x0, eight), x2 = _mm256_add_epi32(x1, eight);
            __m256i x3 = _mm256_add_epi32(x2, eight), next = _mm256_add_epi32(x3, eight);
            feistel_vec4(&x0, &x1, &x2, &x3, vrk, sh, vmask);
            _mm256_storeu_si256((__m256i *)(xb + i), x0);
            _mm256_storeu_si256((__m256i *)(xb + i + 8), x1);
            _mm256_storeu_si256((__m256i *)(xb + i + 16), x2);
            _mm256_storeu_si256((__m256i *)(xb + i + 24), x3);
            if (walk) {
                walk_add(&w, i, x0);
                walk_add(&w, i + 8, x1);
                walk_add(&w, i + 16, x2);
                walk_add(&w, i + 24, x3);
            }
            x0 = next;
        }
        for (; i + 8 <= m; i += 8) {
            __m256i y = feistel_vec(x0, vrk, h, vmask);
            _mm256_storeu_si256((__m256i *)(xb + i), y);
            if (walk)
                walk_add(&w, i, y);
            x0 = _mm256_add_epi32(x0, eight);
        }
        for (; i < m; i++) {
            uint32_t y = feistel1((uint32_t)(i0 + b0 + i), rk, h, mask);
            xb[i] = y;
            w.pos[w.np] = (uint32_t)i;
            w.val[w.np] = y;
            w.np += walk && y >= n;
        }
        walk_block(xb, &w, vrk, sh, vmask);
    }
}

static inline __m256i mul64_const(__m256i a, __m256i c_lo, __m256i c_hi)
{
    __m256i lo = _mm256_mul_epu32(a, c_lo);
    __m256i mid = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), c_lo),
                                   _mm256_mul_epu32(a, c_hi));
    return _mm256_add_epi64(lo, _mm256_slli_epi64(mid, 32));
}

uint64_t slora_kernels_gd_scale(float *w, size_t count, uint64_t z0)
{
    const __m256i c1l = _mm256_set1_epi64x((long long)(0xBF58476D1CE4E5B9ull & 0xFFFFFFFF));
    const __m256i c1h = _mm256_set1_epi64x((long long)(0xBF58476D1CE4E5B9ull >> 32));
    const __m256i c2l = _mm256_set1_epi64x((long long)(0x94D049BB133111EBull & 0xFFFFFFFF));
    const __m256i c2h = _mm256_set1_epi64x((long long)(0x94D049BB133111EBull >> 32));
    const __m256i flip = _mm256_set1_epi16((short)0x8000), ones16 = _mm256_set1_epi16(1);
    const __m256i two = _mm256_set1_epi32(2);
    const __m256i pack = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    const __m256i step = _mm256_set1_epi64x((long long)(4 * SLORA_GAMMA));
    __m256i z =
        _mm256_setr_epi64x((long long)z0, (long long)(z0 + SLORA_GAMMA),
                           (long long)(z0 + 2 * SLORA_GAMMA), (long long)(z0 + 3 * SLORA_GAMMA));
    __m256i acc = _mm256_setzero_si256();
    size_t t = 0;
    for (; t + 4 <= count; t += 4, z = _mm256_add_epi64(z, step)) {
        __m256i u = _mm256_xor_si256(z, _mm256_srli_epi64(z, 30));
        u = mul64_const(u, c1l, c1h);
        u = _mm256_xor_si256(u, _mm256_srli_epi64(u, 27));
        u = mul64_const(u, c2l, c2h);
        u = _mm256_xor_si256(u, _mm256_srli_epi64(u, 31));
        /* the four 16-bit fields offset to signed (f - 32768), summed in
         * pairs by madd, the pairs added: the low 32 bits of each lane hold
         * sum - 131072 = gd - 2 (upper halves are ignored from here on) */
        __m256i pairs = _mm256_madd_epi16(_mm256_xor_si256(u, flip), ones16);
        __m256i g = _mm256_add_epi32(_mm256_add_epi32(pairs, _mm256_srli_epi64(pairs, 32)), two);
        acc = _mm256_add_epi64(acc, _mm256_mul_epi32(g, g));
        __m128i g32 = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(g, pack));
        _mm_storeu_ps(w + t, _mm_mul_ps(_mm_loadu_ps(w + t), _mm_cvtepi32_ps(g32)));
    }
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, acc);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3] +
           gd_scale_scalar(w + t, count - t, z0 + (uint64_t)t * SLORA_GAMMA);
}

static inline __m256 outer8(const float *u, const float *at, size_t ld, size_t r)
{
    __m256 a = _mm256_mul_ps(_mm256_set1_ps(u[0]), _mm256_loadu_ps(at));
    for (size_t j = 1; j < r; j++)
        a = _mm256_fmadd_ps(_mm256_set1_ps(u[j]), _mm256_loadu_ps(at + j * ld), a);
    return a;
}

/* 32 columns of one row: four independent accumulators hide the FMA
 * latency (named, so they stay in registers). */
struct acc4 {
    __m256 a0, a1, a2, a3;
};

static inline struct acc4 outer32(const float *ui, const float *at, size_t ld, size_t r)
{
    __m256 b = _mm256_set1_ps(ui[0]);
    __m256 a0 = _mm256_mul_ps(b, _mm256_loadu_ps(at));
    __m256 a1 = _mm256_mul_ps(b, _mm256_loadu_ps(at + 8));
    __m256 a2 = _mm256_mul_ps(b, _mm256_loadu_ps(at + 16));
    __m256 a3 = _mm256_mul_ps(b, _mm256_loadu_ps(at + 24));
    for (size_t j = 1; j < r; j++) {
        const float *row = at + j * ld;
        b = _mm256_set1_ps(ui[j]);
        a0 = _mm256_fmadd_ps(b, _mm256_loadu_ps(row), a0);
        a1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(row + 8), a1);
        a2 = _mm256_fmadd_ps(b, _mm256_loadu_ps(row + 16), a2);
        a3 = _mm256_fmadd_ps(b, _mm256_loadu_ps(row + 24), a3);
    }
    return (struct acc4){a0, a1, a2, a3};
}

void slora_kernels_outer(float *dst, const float *u, const float *at, size_t ld, size_t rows,
                         size_t n, size_t r, float scale)
{
    const __m256 vs = _mm256_set1_ps(scale);
    size_t c = 0;
    /* column blocks outermost: the block of at (r x 32) stays in L1 for
     * all rows */
    for (; c + 32 <= n; c += 32) {
        for (size_t i = 0; i < rows; i++) {
            struct acc4 a = outer32(u + i * r, at + c, ld, r);
            float *d = dst + i * n + c;
            _mm256_storeu_ps(d, _mm256_mul_ps(a.a0, vs));
            _mm256_storeu_ps(d + 8, _mm256_mul_ps(a.a1, vs));
            _mm256_storeu_ps(d + 16, _mm256_mul_ps(a.a2, vs));
            _mm256_storeu_ps(d + 24, _mm256_mul_ps(a.a3, vs));
        }
    }
    for (; c + 8 <= n; c += 8)
        for (size_t i = 0; i < rows; i++)
            _mm256_storeu_ps(dst + i * n + c, _mm256_mul_ps(outer8(u + i * r, at + c, ld, r), vs));
    if (c < n)
        for (size_t i = 0; i < rows; i++)
            outer_row_scalar(dst + i * n + c, u + i * r, at + c, ld, n - c, r, scale);
}

static inline __m256i stream_check(float *d, __m256 v, __m256i bad)
{
    const __m256i exp = _mm256_set1_epi32(0x7F800000);
    _mm256_stream_ps(d, v);
    __m256i e = _mm256_and_si256(_mm256_castps_si256(v), exp);
    return _mm256_or_si256(bad, _mm256_cmpeq_epi32(e, exp));
}

/* Scalar columns [c0, c1) of one row, regular stores; true if any is
 * NaN or Inf. */
static bool outer_cols_scalar(float *d, const float *ui, const float *at, size_t ld, size_t c0,
                              size_t c1, size_t r, float scale)
{
    outer_row_scalar(d + c0, ui, at + c0, ld, c1 - c0, r, scale);
    bool bad = false;
    for (size_t c = c0; c < c1; c++)
        bad |= nonfinite1(d[c]);
    return bad;
}

bool slora_kernels_outer_stream(float *dst, const float *u, const float *at, size_t ld, size_t rows,
                                size_t n, size_t r, float scale)
{
    const __m256 vs = _mm256_set1_ps(scale);
    __m256i bad = _mm256_setzero_si256();
    bool bad_scalar = false;
    /* rows outermost: each row's lines fill completely in the write-
     * combining buffers before the next row starts */
    for (size_t i = 0; i < rows; i++) {
        const float *ui = u + i * r;
        float *d = dst + i * n;
        size_t head = ((32 - ((uintptr_t)d & 31)) & 31) / sizeof(float);
        size_t c = head < n ? head : n;
        bad_scalar |= outer_cols_scalar(d, ui, at, ld, 0, c, r, scale);
        for (; c + 32 <= n; c += 32) {
            struct acc4 a = outer32(ui, at + c, ld, r);
            bad = stream_check(d + c, _mm256_mul_ps(a.a0, vs), bad);
            bad = stream_check(d + c + 8, _mm256_mul_ps(a.a1, vs), bad);
            bad = stream_check(d + c + 16, _mm256_mul_ps(a.a2, vs), bad);
            bad = stream_check(d + c + 24, _mm256_mul_ps(a.a3, vs), bad);
        }
        for (; c + 8 <= n; c += 8)
            bad = stream_check(d + c, _mm256_mul_ps(outer8(ui, at + c, ld, r), vs), bad);
        bad_scalar |= outer_cols_scalar(d, ui, at, ld, c, n, r, scale);
    }
    return bad_scalar || !_mm256_testz_si256(bad, bad);
}

size_t slora_kernels_stream(float *dst, const float *src, size_t n, float s)
{
    size_t bad = n, i = 0;
    for (; i < n && ((uintptr_t)(dst + i) & 31); i++) {
        dst[i] = src[i] * s;
        if (bad == n && nonfinite1(dst[i]))
            bad = i;
    }
    const __m256 vs = _mm256_set1_ps(s);
    const __m256i exp = _mm256_set1_epi32(0x7F800000);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(src + i), vs);
        _mm256_stream_ps(dst + i, v);
        __m256i e = _mm256_and_si256(_mm256_castps_si256(v), exp);
        e = _mm256_cmpeq_epi32(e, exp);
        if (bad == n && !_mm256_testz_si256(e, e))
            bad = i + (size_t)__builtin_ctz((unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(e)));
    }
    for (; i < n; i++) {
        dst[i] = src[i] * s;
        if (bad == n && nonfinite1(dst[i]))
            bad = i;
    }
    return bad;
}

void slora_kernels_stream_done(void)
{
    _mm_sfence();
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

bool slora_kernels_outer_stream(float *dst, const float *u, const float *at, size_t ld, size_t rows,
                                size_t n, size_t r, float scale)
{
    slora_kernels_outer(dst, u, at, ld, rows, n, r, scale);
    return slora_kernels_find_nonfinite(dst, rows * n) < rows * n;
}

void slora_kernels_outer(float *dst, const float *u, const float *at, size_t ld, size_t rows,
                         size_t n, size_t r, float scale)
{
    for (size_t i = 0; i < rows; i++)
        outer_row_scalar(dst + i * n, u + i * r, at, ld, n, r, scale);
}

uint64_t slora_kernels_gd_scale(float *w, size_t count, uint64_t z0)
{
    return gd_scale_scalar(w, count, z0);
}

size_t slora_kernels_stream(float *dst, const float *src, size_t n, float s)
{
    size_t bad = n;
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        dst[i] = src[i] * s;
        memcpy(&b, dst + i, sizeof(b));
        if (bad == n && (b & 0x7F800000u) == 0x7F800000u)
            bad = i;
    }
    return bad;
}

void slora_kernels_stream_done(void)
{
}

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

void slora_kernels_feistel(uint32_t *out, uint64_t i0, size_t count, const uint32_t rk[4], int h,
                           uint64_t n)
{
    uint32_t mask = h >= 32 ? 0xFFFFFFFFu : (1u << h) - 1;
    for (size_t i = 0; i < count; i++) {
        uint32_t y = feistel1((uint32_t)(i0 + i), rk, h, mask);
        while (n <= 0xFFFFFFFFu && y >= n)
            y = feistel1(y, rk, h, mask);
        out[i] = y;
    }
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
