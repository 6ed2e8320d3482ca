/* matmul_k.c - placeholder until the SIMD kernels land: the portable path runs. */
#include "matmul_internal.h"

bool slora__mm_k(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n, float *y,
                 size_t ldy, int64_t r0, int64_t r1, bool add)
{
    (void)w, (void)xq, (void)xq_stride, (void)n, (void)y, (void)ldy, (void)r0, (void)r1, (void)add;
    return false;
}
