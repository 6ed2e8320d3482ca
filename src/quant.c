/* quant.c - F16/BF16 scalars, the legacy 32-element block types, the
 * (de)quantize dispatch and the loader checks (see quant.h). The K-quants
 * live in quant_k.c. */
#include "internal.h"
#include "quant_internal.h"

#include <slora/error.h>

#include <string.h>

_Static_assert(sizeof(struct slora_quant_q8_0) == 34, "Q8_0 block");
_Static_assert(sizeof(struct slora_quant_q4_0) == 18, "Q4_0 block");
_Static_assert(sizeof(struct slora_quant_q4_1) == 20, "Q4_1 block");
_Static_assert(sizeof(struct slora_quant_q5_0) == 22, "Q5_0 block");
_Static_assert(sizeof(struct slora_quant_q5_1) == 24, "Q5_1 block");
_Static_assert(sizeof(struct slora_quant_q8_1) == 36, "Q8_1 block");
_Static_assert(sizeof(struct slora_quant_q4_k) == 144, "Q4_K block");
_Static_assert(sizeof(struct slora_quant_q5_k) == 176, "Q5_K block");
_Static_assert(sizeof(struct slora_quant_q6_k) == 210, "Q6_K block");
_Static_assert(sizeof(struct slora_quant_q8_k) == 292, "Q8_K block");

float slora_quant_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man) {
        /* subnormal half: normalise into a float */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    } else {
        bits = sign;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t slora_quant_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (x >> 16) & 0x8000;
    uint32_t abs = x & 0x7fffffffu;
    if (abs > 0x7f800000u)
        return sign | 0x7e00;
    if (abs >= 0x477ff000u) /* rounds to >= 65520: infinity */
        return sign | 0x7c00;
    if (abs < 0x38800000u) {
        /* subnormal half: scale by 2^24 and round to nearest even */
        float a;
        memcpy(&a, &abs, 4);
        return sign | (uint16_t)nearbyintf(a * 16777216.0f);
    }
    uint32_t mant = abs & 0x7fffff;
    uint32_t h = ((abs >> 23) - 112) << 10 | (mant >> 13);
    uint32_t rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++;
    return sign | (uint16_t)h;
}

float slora_quant_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t slora_quant_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)(x >> 16 | 0x40); /* NaN stays NaN (quiet) */
    /* round to nearest even; the carry runs into the exponent, so the
     * largest finite values round up to infinity */
    return (uint16_t)((x + 0x7fffu + (x >> 16 & 1)) >> 16);
}

static inline float h2f(uint16_t h)
{
    return slora_quant_f16_to_f32(h);
}

/* (int)v for v in [0, hi], saturating (NaN gives 0): ggml's truncating
 * casts in the Q4/Q5 quantizers, defined for any input. */
static inline int trunc_sat(float v, int hi)
{
    if (!(v > 0))
        return 0;
    return v >= (float)hi ? hi : (int)v;
}

/* roundf(v) (ties away from zero) into [-127, 127]; NaN gives 0. */
static inline int round_i8(float v)
{
    if (!(fabsf(v) <= 127.0f))
        return v > 0 ? 127 : v < 0 ? -127 : 0;
    return (int)roundf(v);
}

/* The element of largest magnitude (its sign kept; the first of ties). */
static float signed_amax(const float *x, int n)
{
    float amax = 0, max = 0;
    for (int j = 0; j < n; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    return max;
}

static void min_max(const float *x, int n, float *mn, float *mx)
{
    *mn = INFINITY;
    *mx = -INFINITY;
    for (int j = 0; j < n; j++) {
        if (x[j] < *mn)
            *mn = x[j];
        if (x[j] > *mx)
            *mx = x[j];
    }
}

static void quant_q8_0(const float *x, struct slora_quant_q8_0 *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float d = fabsf(signed_amax(x, 32)) / 127, id = d ? 1 / d : 0;
        b[i].d = slora_quant_f32_to_f16(d);
        for (int j = 0; j < 32; j++)
            b[i].qs[j] = (int8_t)round_i8(x[j] * id);
    }
}

static void quant_q8_1(const float *x, struct slora_quant_q8_1 *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float d = fabsf(signed_amax(x, 32)) / 127, id = d ? 1 / d : 0;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            b[i].qs[j] = (int8_t)round_i8(x[j] * id);
            sum += b[i].qs[j];
        }
        b[i].d = slora_quant_f32_to_f16(d);
        b[i].s = slora_quant_f32_to_f16(d * (float)sum);
    }
}

/* Q4_0 and Q5_0: d = extreme / -(levels / 2), q = trunc(x / d + levels/2 + 0.5). */
static float quant_sym(const float *x, uint8_t *q, int levels)
{
    float d = signed_amax(x, 32) / (float)-(levels / 2), id = d ? 1 / d : 0;
    for (int j = 0; j < 32; j++)
        q[j] = (uint8_t)trunc_sat(x[j] * id + (float)(levels / 2) + 0.5f, levels - 1);
    return d;
}

/* Q4_1 and Q5_1: d = (max - min) / (levels - 1), q = trunc((x - min) / d + 0.5). */
static float quant_asym(const float *x, uint8_t *q, int levels, float *m)
{
    float mn, mx;
    min_max(x, 32, &mn, &mx);
    float d = (mx - mn) / (float)(levels - 1), id = d ? 1 / d : 0;
    for (int j = 0; j < 32; j++)
        q[j] = (uint8_t)trunc_sat((x[j] - mn) * id + 0.5f, levels - 1);
    *m = mn;
    return d;
}

static void pack_nibbles(const uint8_t *q, uint8_t *qs)
{
    for (int j = 0; j < 16; j++)
        qs[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
}

static void pack_high(const uint8_t *q, uint8_t *qh)
{
    uint32_t h = 0;
    for (int j = 0; j < 32; j++)
        h |= (uint32_t)(q[j] >> 4 & 1) << j;
    for (int k = 0; k < 4; k++)
        qh[k] = (uint8_t)(h >> 8 * k);
}

static void quant_legacy(uint32_t t, const float *x, void *dst, int64_t nb)
{
    uint8_t q[32];
    float m;
    for (int64_t i = 0; i < nb; i++, x += 32) {
        switch (t) {
        case SLORA_DTYPE_Q4_0: {
            struct slora_quant_q4_0 *b = (struct slora_quant_q4_0 *)dst + i;
            b->d = slora_quant_f32_to_f16(quant_sym(x, q, 16));
            pack_nibbles(q, b->qs);
            break;
        }
        case SLORA_DTYPE_Q5_0: {
            struct slora_quant_q5_0 *b = (struct slora_quant_q5_0 *)dst + i;
            b->d = slora_quant_f32_to_f16(quant_sym(x, q, 32));
            pack_nibbles(q, b->qs);
            pack_high(q, b->qh);
            break;
        }
        case SLORA_DTYPE_Q4_1: {
            struct slora_quant_q4_1 *b = (struct slora_quant_q4_1 *)dst + i;
            b->d = slora_quant_f32_to_f16(quant_asym(x, q, 16, &m));
            b->m = slora_quant_f32_to_f16(m);
            pack_nibbles(q, b->qs);
            break;
        }
        default: { /* Q5_1 */
            struct slora_quant_q5_1 *b = (struct slora_quant_q5_1 *)dst + i;
            b->d = slora_quant_f32_to_f16(quant_asym(x, q, 32, &m));
            b->m = slora_quant_f32_to_f16(m);
            pack_nibbles(q, b->qs);
            pack_high(q, b->qh);
            break;
        }
        }
    }
}

/* The 32 quants of a Q4/Q5 block, fifth bits from h (0 for Q4). */
static void unpack_q(const uint8_t *qs, uint32_t h, int *q)
{
    for (int j = 0; j < 16; j++) {
        q[j] = (qs[j] & 15) | (int)(h >> j & 1) << 4;
        q[j + 16] = (qs[j] >> 4) | (int)(h >> (j + 16) & 1) << 4;
    }
}

static uint32_t read_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void dequant_legacy(uint32_t t, const void *src, float *y, int64_t nb)
{
    int q[32];
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d, m = 0;
        int off = 0;
        switch (t) {
        case SLORA_DTYPE_Q4_0: {
            const struct slora_quant_q4_0 *b = (const struct slora_quant_q4_0 *)src + i;
            d = h2f(b->d);
            off = 8;
            unpack_q(b->qs, 0, q);
            break;
        }
        case SLORA_DTYPE_Q4_1: {
            const struct slora_quant_q4_1 *b = (const struct slora_quant_q4_1 *)src + i;
            d = h2f(b->d);
            m = h2f(b->m);
            unpack_q(b->qs, 0, q);
            break;
        }
        case SLORA_DTYPE_Q5_0: {
            const struct slora_quant_q5_0 *b = (const struct slora_quant_q5_0 *)src + i;
            d = h2f(b->d);
            off = 16;
            unpack_q(b->qs, read_u32(b->qh), q);
            break;
        }
        case SLORA_DTYPE_Q5_1: {
            const struct slora_quant_q5_1 *b = (const struct slora_quant_q5_1 *)src + i;
            d = h2f(b->d);
            m = h2f(b->m);
            unpack_q(b->qs, read_u32(b->qh), q);
            break;
        }
        case SLORA_DTYPE_Q8_0: {
            const struct slora_quant_q8_0 *b = (const struct slora_quant_q8_0 *)src + i;
            d = h2f(b->d);
            for (int j = 0; j < 32; j++)
                q[j] = b->qs[j];
            break;
        }
        default: { /* Q8_1 */
            const struct slora_quant_q8_1 *b = (const struct slora_quant_q8_1 *)src + i;
            d = h2f(b->d);
            for (int j = 0; j < 32; j++)
                q[j] = b->qs[j];
            break;
        }
        }
        for (int j = 0; j < 32; j++)
            y[j] = d * (float)(q[j] - off) + m;
    }
}

bool slora_quant_is_supported(uint32_t t)
{
    return slora_dtype_is_known(t);
}

int slora_quant_dequantize(uint32_t t, const void *src, float *dst, int64_t n)
{
    if (!slora_dtype_row_bytes(t, n))
        return SLORA_EINVAL;
    int64_t nb = n / slora_dtype_block_elems(t);
    switch (t) {
    case SLORA_DTYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        break;
    case SLORA_DTYPE_F16:
    case SLORA_DTYPE_BF16: {
        const uint8_t *p = src;
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = t == SLORA_DTYPE_F16 ? h2f(h) : slora_quant_bf16_to_f32(h);
        }
        break;
    }
    case SLORA_DTYPE_Q4_K:
        slora__quant_dequant_q4_k(src, dst, nb);
        break;
    case SLORA_DTYPE_Q5_K:
        slora__quant_dequant_q5_k(src, dst, nb);
        break;
    case SLORA_DTYPE_Q6_K:
        slora__quant_dequant_q6_k(src, dst, nb);
        break;
    case SLORA_DTYPE_Q8_K:
        slora__quant_dequant_q8_k(src, dst, nb);
        break;
    default:
        dequant_legacy(t, src, dst, nb);
        break;
    }
    return 0;
}

int slora_quant_quantize(uint32_t t, const float *src, void *dst, int64_t n)
{
    if (!slora_dtype_row_bytes(t, n))
        return SLORA_EINVAL;
    int64_t nb = n / slora_dtype_block_elems(t);
    switch (t) {
    case SLORA_DTYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        break;
    case SLORA_DTYPE_F16:
    case SLORA_DTYPE_BF16: {
        uint8_t *p = dst;
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = t == SLORA_DTYPE_F16 ? slora_quant_f32_to_f16(src[i])
                                              : slora_quant_f32_to_bf16(src[i]);
            memcpy(p + 2 * i, &h, 2);
        }
        break;
    }
    case SLORA_DTYPE_Q8_0:
        quant_q8_0(src, dst, nb);
        break;
    case SLORA_DTYPE_Q8_1:
        quant_q8_1(src, dst, nb);
        break;
    case SLORA_DTYPE_Q4_K:
        slora__quant_q4_k(src, dst, nb);
        break;
    case SLORA_DTYPE_Q5_K:
        slora__quant_q5_k(src, dst, nb);
        break;
    case SLORA_DTYPE_Q6_K:
        slora__quant_q6_k(src, dst, nb);
        break;
    case SLORA_DTYPE_Q8_K:
        slora__quant_q8_k(src, dst, nb);
        break;
    default:
        quant_legacy(t, src, dst, nb);
        break;
    }
    return 0;
}

int slora_quant_check_shape(const char *name, uint32_t t, int64_t rows, int64_t cols,
                            uint64_t nbytes, char *diag, size_t diag_len)
{
    if (!slora_dtype_is_known(t))
        return slora__diag(diag, diag_len, SLORA_EUNSUPPORTED, "tensor '%s' has unknown type id %u",
                           name, t);
    if (!slora_dtype_is_weight(t))
        return slora__diag(diag, diag_len, SLORA_EUNSUPPORTED,
                           "tensor '%s' has type %s, which is not a weight type", name,
                           slora_dtype_name(t));
    int64_t be = slora_dtype_block_elems(t);
    if (rows < 1 || cols < 1 || cols % be)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "tensor '%s' (%s) has shape (%lld, %lld): rows need a whole number of "
                           "%lld-element blocks",
                           name, slora_dtype_name(t), (long long)rows, (long long)cols,
                           (long long)be);
    uint64_t rb = (uint64_t)(cols / be) * slora_dtype_block_bytes(t);
    if ((uint64_t)rows > UINT64_MAX / rb || (uint64_t)rows * rb != nbytes)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "tensor '%s' (%s, shape (%lld, %lld)) holds %llu bytes, its shape needs "
                           "%lld x %llu",
                           name, slora_dtype_name(t), (long long)rows, (long long)cols,
                           (unsigned long long)nbytes, (long long)rows, (unsigned long long)rb);
    return 0;
}

/* The scans below test all-ones exponents (Inf or NaN) a chunk of
 * SCAN_CHUNK values at a time with no early exit and a constant trip count,
 * which gcc vectorises even at -O2; only a chunk that holds a bad value is
 * scanned again for its first one. A model's weights are read once at load
 * this way at memory speed (a 1B F16 model's 2.4 GB in about 0.2 s). Loads
 * go through memcpy: a GGUF's alignment may leave data unaligned for its
 * element type. */
#define SCAN_CHUNK 2048

static uint32_t load32(const uint8_t *p)
{
    uint32_t u;
    memcpy(&u, p, 4);
    return u;
}

static uint16_t load16(const uint8_t *p)
{
    uint16_t u;
    memcpy(&u, p, 2);
    return u;
}

static bool bad32(const uint8_t *p)
{
    return (load32(p) & 0x7f800000u) == 0x7f800000u;
}

static bool bad16(const uint8_t *p, uint16_t mask)
{
    return (load16(p) & mask) == mask;
}

/* Does a chunk of SCAN_CHUNK values of size bytes (4: F32; 2: halves with
 * exponent bits mask) hold a bad one? */
static bool chunk_bad(const uint8_t *p, size_t size, uint16_t mask)
{
    unsigned bad = 0;
    if (size == 4)
        for (size_t j = 0; j < SCAN_CHUNK; j++)
            bad |= bad32(p + 4 * j);
    else
        for (size_t j = 0; j < SCAN_CHUNK; j++)
            bad |= bad16(p + 2 * j, mask);
    return bad;
}

/* Byte offset of the first bad value among the n values of size bytes at
 * p, or SIZE_MAX. */
static size_t scan_values(const uint8_t *p, size_t n, size_t size, uint16_t mask)
{
    size_t i = 0;
    while (i < n) {
        if (n - i >= SCAN_CHUNK && !chunk_bad(p + size * i, size, mask)) {
            i += SCAN_CHUNK;
            continue;
        }
        /* a chunk with a bad value, or the tail: one by one */
        size_t e = n - i < SCAN_CHUNK ? n : i + SCAN_CHUNK;
        for (; i < e; i++)
            if (size == 4 ? bad32(p + 4 * i) : bad16(p + 2 * i, mask))
                return size * i;
    }
    return SIZE_MAX;
}

int slora_quant_check_data(const char *name, uint32_t t, const void *data, size_t nbytes,
                           char *diag, size_t diag_len)
{
    const uint8_t *p = data;
    size_t bb = slora_dtype_block_bytes(t), bad = SIZE_MAX;
    if (!bb || nbytes % bb)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "tensor '%s' (%s) is %zu bytes, not whole blocks", name,
                           slora_dtype_name(t), nbytes);
    /* byte offsets, inside each block, of its f16 scales */
    size_t f16_at[2] = {0, 0};
    int n16 = 1;
    switch (t) {
    case SLORA_DTYPE_F32:
        bad = scan_values(p, nbytes / 4, 4, 0);
        n16 = 0;
        break;
    case SLORA_DTYPE_F16:
    case SLORA_DTYPE_BF16:
        bad = scan_values(p, nbytes / 2, 2, t == SLORA_DTYPE_F16 ? 0x7c00 : 0x7f80);
        n16 = 0;
        break;
    case SLORA_DTYPE_Q8_K:
        for (size_t i = 0; i < nbytes && bad == SIZE_MAX; i += bb)
            if (bad32(p + i))
                bad = i;
        n16 = 0;
        break;
    case SLORA_DTYPE_Q4_1:
    case SLORA_DTYPE_Q5_1:
    case SLORA_DTYPE_Q8_1:
    case SLORA_DTYPE_Q4_K:
    case SLORA_DTYPE_Q5_K:
        f16_at[1] = 2;
        n16 = 2;
        break;
    case SLORA_DTYPE_Q6_K:
        f16_at[0] = 208;
        break;
    default: /* the one-scale legacy blocks: d first */
        break;
    }
    for (size_t i = 0; i < nbytes && bad == SIZE_MAX; i += bb)
        for (int k = 0; k < n16; k++)
            if (bad16(p + i + f16_at[k], 0x7c00)) {
                bad = i + f16_at[k];
                break;
            }
    if (bad != SIZE_MAX)
        return slora__diag(diag, diag_len, SLORA_ENONFINITE,
                           "tensor '%s' (%s) has a NaN or infinite %s at byte %zu of its data",
                           name, slora_dtype_name(t), bb > 4 ? "block scale" : "value", bad);
    return 0;
}
