/* matmul.c - the typed product of matmul.h: activation formats, their
 * quantization, and the dispatch to the kernels (matmul_float.c,
 * matmul_q.c, matmul_q8.c, matmul_k.c; portable reference in matmul_ref.c).
 *
 * F32 weights use the own tile kernel at every n: measured on one thread
 * (bench/results/matmul.md, "F32 crossover") it matches or beats OpenBLAS
 * sgemm from n = 2 to n = 512, and unlike sgemm its results do not depend
 * on how the rows are sliced (OpenBLAS's edge kernels round differently).
 */
#include "matmul_internal.h"

#include <slora/quant.h>

#include <string.h>

enum slora_dtype slora_matmul_vec_type(enum slora_dtype wt)
{
    switch (wt) {
    case SLORA_DTYPE_Q4_0:
    case SLORA_DTYPE_Q5_0:
    case SLORA_DTYPE_Q8_0:
        return SLORA_DTYPE_Q8_0;
    case SLORA_DTYPE_Q4_1:
    case SLORA_DTYPE_Q5_1:
        return SLORA_DTYPE_Q8_1;
    case SLORA_DTYPE_Q4_K:
    case SLORA_DTYPE_Q5_K:
    case SLORA_DTYPE_Q6_K:
        return SLORA_DTYPE_Q8_K;
    default:
        return SLORA_DTYPE_F32;
    }
}

size_t slora_matmul_xq_bytes(enum slora_dtype wt, int64_t cols)
{
    if (!slora_dtype_is_weight(wt) || !slora_dtype_row_bytes(wt, cols))
        return 0;
    size_t c = (size_t)cols;
    size_t (*r)(size_t) = slora__mm_round64;
    switch (slora_matmul_vec_type(wt)) {
    case SLORA_DTYPE_F32:
        return r(4 * c);
    case SLORA_DTYPE_Q8_K:
        return r(c) + r(4 * (c / 256)) + r(32 * (c / 256)) + r(16 * (c / 256));
    default: /* Q8_0, Q8_1 */
        return r(c) + 3 * r(4 * (c / 32));
    }
}

/* One row: ggml's Q8_0 (Q8_K) blocks, unpacked into the arrays. */
static void quantize_row(enum slora_dtype wt, const float *x, int64_t cols, uint8_t *row)
{
    struct slora__mm_xrow xr = slora__mm_xrow(wt, row, cols);
    int8_t *qs = (int8_t *)row;
    float *d = (float *)xr.d;
    switch (slora_matmul_vec_type(wt)) {
    case SLORA_DTYPE_F32:
        memcpy(row, x, (size_t)cols * sizeof(float));
        break;
    case SLORA_DTYPE_Q8_K: {
        int16_t *bs = (int16_t *)xr.bsums, *bs32 = (int16_t *)xr.bsum32;
        if (slora__mm_quant_q8k(x, cols, qs, d, bs, bs32))
            break;
        for (int64_t b = 0; b < cols / 256; b++) {
            struct slora_quant_q8_k blk;
            slora_quant_quantize(SLORA_DTYPE_Q8_K, x + 256 * b, &blk, 256);
            memcpy(qs + 256 * b, blk.qs, 256);
            d[b] = blk.d;
            for (int k = 0; k < 16; k++)
                bs[16 * b + k] = blk.bsums[k];
            for (int k = 0; k < 8; k++)
                bs32[8 * b + k] = (int16_t)(blk.bsums[2 * k] + blk.bsums[2 * k + 1]);
        }
        break;
    }
    default: {
        /* Q8_1 blocks: Q8_0's qs and d plus ggml's s = f16(d sum(qs)) */
        int32_t *s = (int32_t *)xr.s;
        float *ds = (float *)xr.ds;
        if (slora__mm_quant_q8(x, cols, qs, d, s, ds))
            break;
        for (int64_t b = 0; b < cols / 32; b++) {
            struct slora_quant_q8_1 blk;
            slora_quant_quantize(SLORA_DTYPE_Q8_1, x + 32 * b, &blk, 32);
            memcpy(qs + 32 * b, blk.qs, 32);
            int sum = 0;
            for (int k = 0; k < 32; k++)
                sum += blk.qs[k];
            d[b] = slora_quant_f16_to_f32(blk.d);
            s[b] = sum;
            ds[b] = slora_quant_f16_to_f32(blk.s);
        }
        break;
    }
    }
}

void slora_matmul_quantize(enum slora_dtype wt, const float *x, int n, int64_t cols, void *xq,
                           size_t xq_stride)
{
    for (int i = 0; i < n; i++)
        quantize_row(wt, x + (size_t)i * (size_t)cols, cols, (uint8_t *)xq + (size_t)i * xq_stride);
}

void slora__mm_drive(const struct slora_tensor *w, slora__mm_tile_fn fn, int mr_max, int nr_max,
                     int x_block, const void *xq, size_t xq_stride, int n, float *y, size_t ldy,
                     int64_t r0, int64_t r1, bool add)
{
    enum { ROW_BLOCK = 64 };
    const uint8_t *wd = w->data, *xd = xq;
    size_t ws = w->row_bytes;
    for (int i0 = 0; i0 < n; i0 += x_block) {
        int i1 = n - i0 < x_block ? n : i0 + x_block;
        for (int64_t b0 = r0; b0 < r1; b0 += ROW_BLOCK) {
            int64_t b1 = r1 - b0 < ROW_BLOCK ? r1 : b0 + ROW_BLOCK;
            for (int64_t r = b0; r < b1;) {
                /* one activation row (decode): weight rows one at a time,
                 * in order, so the weights are one stream from memory (4
                 * interleaved rows read no faster: 40 against 42 GB/s for
                 * a plain loop over 4 GB of F32 rows) */
                int mr = n > 1 && b1 - r >= mr_max ? mr_max : 1;
                for (int i = i0; i < i1;) {
                    int nr = i1 - i < nr_max ? i1 - i : nr_max;
                    fn(mr, nr, wd + (size_t)r * ws, ws, xd + (size_t)i * xq_stride, xq_stride,
                       w->cols, y + (size_t)i * ldy + r, ldy, add);
                    i += nr;
                }
                r += mr;
            }
        }
    }
}

void slora_matmul(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n, float *y,
                  size_t ldy, int64_t r0, int64_t r1, bool add)
{
    if (n < 1 || r0 >= r1)
        return;
    switch (w->type) {
    case SLORA_DTYPE_F32:
    case SLORA_DTYPE_F16:
    case SLORA_DTYPE_BF16:
        if (slora__mm_float(w, xq, xq_stride, n, y, ldy, r0, r1, add))
            return;
        break;
    case SLORA_DTYPE_Q4_K:
    case SLORA_DTYPE_Q5_K:
    case SLORA_DTYPE_Q6_K:
        if (slora__mm_k(w, xq, xq_stride, n, y, ldy, r0, r1, add))
            return;
        break;
    default:
        if (slora__mm_q(w, xq, xq_stride, n, y, ldy, r0, r1, add))
            return;
        break;
    }
    slora__matmul_ref(w, xq, xq_stride, n, y, ldy, r0, r1, add);
}

void slora_matmul_get_row(const struct slora_tensor *w, int64_t r, float *out)
{
    slora_quant_dequantize(w->type, (const uint8_t *)w->data + (size_t)r * w->row_bytes, out,
                           w->cols);
}
