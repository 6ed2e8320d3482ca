/* matmul_ref.c - the portable dots of every weight type with its
 * activation format (matmul_internal.h), written straight from the block
 * definitions of quant.h: per block an exact integer sum, scaled and added
 * in block order. The reference the SIMD kernels are tested against, and
 * the path of builds without them. */
#include "matmul_internal.h"
#include "quant_internal.h"

#include <string.h>

static inline float h2f(uint16_t h)
{
    return slora_quant_f16_to_f32(h);
}

static float dot_f32(const float *w, const struct slora__mm_xrow *x, int64_t cols)
{
    const float *xv = x->x;
    float s = 0;
    for (int64_t j = 0; j < cols; j++)
        s += w[j] * xv[j];
    return s;
}

/* F16 or BF16 weights, widened, times the f32 activations. */
static float dot_half(enum slora_dtype t, const uint8_t *w, const struct slora__mm_xrow *x,
                      int64_t cols)
{
    const float *xv = x->x;
    float s = 0;
    for (int64_t j = 0; j < cols; j++) {
        uint16_t h;
        memcpy(&h, w + 2 * j, 2);
        s += (t == SLORA_DTYPE_F16 ? h2f(h) : slora_quant_bf16_to_f32(h)) * xv[j];
    }
    return s;
}

/* The 32 quants of legacy block b (Q4/Q5 fifth bits from qh), offset
 * removed; *d and *m get the block's scale and offset. */
static void legacy_block(enum slora_dtype t, const uint8_t *row, int64_t b, int *q, float *d,
                         float *m)
{
    const uint8_t *qs = NULL, *qh = NULL;
    int off = 0;
    *m = 0;
    switch (t) {
    case SLORA_DTYPE_Q8_0: {
        const struct slora_quant_q8_0 *blk = (const struct slora_quant_q8_0 *)row + b;
        *d = h2f(blk->d);
        for (int j = 0; j < 32; j++)
            q[j] = blk->qs[j];
        return;
    }
    case SLORA_DTYPE_Q4_0: {
        const struct slora_quant_q4_0 *blk = (const struct slora_quant_q4_0 *)row + b;
        *d = h2f(blk->d);
        qs = blk->qs;
        off = 8;
        break;
    }
    case SLORA_DTYPE_Q4_1: {
        const struct slora_quant_q4_1 *blk = (const struct slora_quant_q4_1 *)row + b;
        *d = h2f(blk->d);
        *m = h2f(blk->m);
        qs = blk->qs;
        break;
    }
    case SLORA_DTYPE_Q5_0: {
        const struct slora_quant_q5_0 *blk = (const struct slora_quant_q5_0 *)row + b;
        *d = h2f(blk->d);
        qs = blk->qs;
        qh = blk->qh;
        off = 16;
        break;
    }
    default: { /* Q5_1 */
        const struct slora_quant_q5_1 *blk = (const struct slora_quant_q5_1 *)row + b;
        *d = h2f(blk->d);
        *m = h2f(blk->m);
        qs = blk->qs;
        qh = blk->qh;
        break;
    }
    }
    uint32_t h = qh ? (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 |
                          (uint32_t)qh[3] << 24
                    : 0;
    for (int j = 0; j < 16; j++) {
        q[j] = ((qs[j] & 15) | (int)(h >> j & 1) << 4) - off;
        q[j + 16] = ((qs[j] >> 4) | (int)(h >> (j + 16) & 1) << 4) - off;
    }
}

/* sum_b dw dx isum_b (+ m_b dx s_b for Q4_1/Q5_1) */
static float dot_legacy(enum slora_dtype t, const uint8_t *w, const struct slora__mm_xrow *x,
                        int64_t cols)
{
    const int8_t *xq = x->x;
    float s = 0;
    int q[32];
    bool has_min = t == SLORA_DTYPE_Q4_1 || t == SLORA_DTYPE_Q5_1;
    for (int64_t b = 0; b < cols / 32; b++) {
        float d, m;
        legacy_block(t, w, b, q, &d, &m);
        int isum = 0;
        for (int j = 0; j < 32; j++)
            isum += q[j] * xq[32 * b + j];
        s += d * x->d[b] * (float)isum;
        if (has_min)
            s += m * x->ds[b];
    }
    return s;
}

/* Q4_K/Q5_K: sum over super-blocks of dx (d sum_s sc_s isum_s -
 * dmin sum_s m_s bsum32_s). */
static float dot_k_min(enum slora_dtype t, const uint8_t *w, const struct slora__mm_xrow *x,
                       int64_t cols)
{
    const int8_t *xq = x->x;
    float s = 0;
    for (int64_t b = 0; b < cols / 256; b++) {
        const uint8_t *scales, *qs, *qh = NULL;
        uint16_t d16, dmin16;
        if (t == SLORA_DTYPE_Q4_K) {
            const struct slora_quant_q4_k *blk = (const struct slora_quant_q4_k *)w + b;
            scales = blk->scales;
            qs = blk->qs;
            d16 = blk->d;
            dmin16 = blk->dmin;
        } else {
            const struct slora_quant_q5_k *blk = (const struct slora_quant_q5_k *)w + b;
            scales = blk->scales;
            qs = blk->qs;
            qh = blk->qh;
            d16 = blk->d;
            dmin16 = blk->dmin;
        }
        const int8_t *xb = xq + 256 * b;
        int isum = 0, msum = 0;
        for (int sb = 0; sb < 8; sb++) {
            int sc, m, part = 0;
            slora__quant_scale_min_k4(scales, sb, &sc, &m);
            const uint8_t *q = qs + 32 * (sb / 2);
            for (int l = 0; l < 32; l++) {
                int v = sb & 1 ? q[l] >> 4 : q[l] & 15;
                if (qh)
                    v |= (qh[l] >> sb & 1) << 4;
                part += v * xb[32 * sb + l];
            }
            isum += sc * part;
            msum += m * x->bsum32[8 * b + sb];
        }
        s += x->d[b] * (h2f(d16) * (float)isum - h2f(dmin16) * (float)msum);
    }
    return s;
}

static float dot_q6_k(const uint8_t *w, const struct slora__mm_xrow *x, int64_t cols)
{
    const int8_t *xq = x->x;
    float s = 0;
    for (int64_t b = 0; b < cols / 256; b++) {
        const struct slora_quant_q6_k *blk = (const struct slora_quant_q6_k *)w + b;
        const int8_t *xb = xq + 256 * b;
        int isum = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = blk->ql + 64 * h, *qh = blk->qh + 32 * h;
            const int8_t *sc = blk->scales + 8 * h, *xh = xb + 128 * h;
            int part[8] = {0};
            for (int l = 0; l < 32; l++) {
                int t = l / 16;
                part[t] += (((ql[l] & 15) | (qh[l] & 3) << 4) - 32) * xh[l];
                part[t + 2] += (((ql[l + 32] & 15) | (qh[l] >> 2 & 3) << 4) - 32) * xh[l + 32];
                part[t + 4] += (((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) - 32) * xh[l + 64];
                part[t + 6] += (((ql[l + 32] >> 4) | (qh[l] >> 6) << 4) - 32) * xh[l + 96];
            }
            for (int k = 0; k < 8; k++)
                isum += sc[k] * part[k];
        }
        s += x->d[b] * h2f(blk->d) * (float)isum;
    }
    return s;
}

static float dot(enum slora_dtype t, const uint8_t *w, const struct slora__mm_xrow *x,
                 int64_t cols)
{
    switch (t) {
    case SLORA_DTYPE_F32:
        return dot_f32((const float *)w, x, cols);
    case SLORA_DTYPE_F16:
    case SLORA_DTYPE_BF16:
        return dot_half(t, w, x, cols);
    case SLORA_DTYPE_Q4_K:
    case SLORA_DTYPE_Q5_K:
        return dot_k_min(t, w, x, cols);
    case SLORA_DTYPE_Q6_K:
        return dot_q6_k(w, x, cols);
    default:
        return dot_legacy(t, w, x, cols);
    }
}

void slora__matmul_ref(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n,
                       float *y, size_t ldy, int64_t r0, int64_t r1, bool add)
{
    for (int i = 0; i < n; i++) {
        struct slora__mm_xrow xr =
            slora__mm_xrow(w->type, (const uint8_t *)xq + (size_t)i * xq_stride, w->cols);
        for (int64_t r = r0; r < r1; r++)
            slora__mm_store(y + (size_t)i * ldy + r,
                            dot(w->type, (const uint8_t *)w->data + (size_t)r * w->row_bytes, &xr,
                                w->cols),
                            add);
    }
}
