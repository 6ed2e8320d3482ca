/* matmul.c - typed products (see matmul.h). Portable placeholder for the
 * float types until the quantized kernels land. */
#include <slora/gguf.h>
#include <slora/matmul.h>

#include <string.h>

enum slora_dtype slora_matmul_vec_type(enum slora_dtype wt)
{
    (void)wt;
    return SLORA_DTYPE_F32;
}

size_t slora_matmul_xq_bytes(enum slora_dtype wt, int64_t cols)
{
    return slora_dtype_row_bytes(slora_matmul_vec_type(wt), cols);
}

void slora_matmul_quantize(enum slora_dtype wt, const float *x, int n, int64_t cols, void *xq,
                           size_t xq_stride)
{
    (void)wt;
    for (int i = 0; i < n; i++)
        memcpy((char *)xq + (size_t)i * xq_stride, x + (size_t)i * cols,
               (size_t)cols * sizeof(float));
}

static float elem(enum slora_dtype t, const uint8_t *row, int64_t j)
{
    if (t == SLORA_DTYPE_F32) {
        float f;
        memcpy(&f, row + 4 * j, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, row + 2 * j, 2);
    if (t == SLORA_DTYPE_F16)
        return slora_gguf_f16_to_f32(h);
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void slora_matmul(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n, float *y,
                  size_t ldy, int64_t r0, int64_t r1, bool add)
{
    for (int i = 0; i < n; i++) {
        const float *x = (const float *)(const void *)((const char *)xq + (size_t)i * xq_stride);
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
            float acc[8] = {0};
            int64_t j = 0;
            if (w->type == SLORA_DTYPE_F32) {
                const float *wr = (const float *)(const void *)row;
                for (; j + 8 <= w->cols; j += 8)
                    for (int l = 0; l < 8; l++)
                        acc[l] += wr[j + l] * x[j + l];
            }
            for (; j < w->cols; j++)
                acc[j % 8] += elem(w->type, row, j) * x[j];
            float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
                      ((acc[4] + acc[5]) + (acc[6] + acc[7]));
            float *dst = &y[(size_t)i * ldy + (size_t)r];
            *dst = add ? *dst + s : s;
        }
    }
}

void slora_matmul_get_row(const struct slora_tensor *w, int64_t r, float *out)
{
    const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
    for (int64_t j = 0; j < w->cols; j++)
        out[j] = elem(w->type, row, j);
}
