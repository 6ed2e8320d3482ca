/* quant_internal.h - what quant.c and quant_k.c share (not public).
 * Pure functions; any thread may call them. */
#ifndef SLORA_QUANT_INTERNAL_H
#define SLORA_QUANT_INTERNAL_H

#include <slora/quant.h>

#include <math.h>
#include <string.h>

/* Round to the nearest integer, ties to even (the float add rounds),
 * saturating at +-2^22 - 1; NaN gives 0. */
static inline int slora__quant_nearest(float f)
{
    if (!(fabsf(f) <= 4194303.0f))
        f = f > 0 ? 4194303.0f : f < 0 ? -4194303.0f : 0.0f;
    float v = f + 12582912.0f; /* 1.5 * 2^23: the integer lands in the mantissa */
    int32_t i;
    memcpy(&i, &v, sizeof(i));
    return (i & 0x007fffff) - 0x00400000;
}

/* The K-quants of quant_k.c, n a multiple of 256 (checked by the caller). */
void slora__quant_dequant_q4_k(const struct slora_quant_q4_k *b, float *y, int64_t nb);
void slora__quant_dequant_q5_k(const struct slora_quant_q5_k *b, float *y, int64_t nb);
void slora__quant_dequant_q6_k(const struct slora_quant_q6_k *b, float *y, int64_t nb);
void slora__quant_dequant_q8_k(const struct slora_quant_q8_k *b, float *y, int64_t nb);
void slora__quant_q4_k(const float *x, struct slora_quant_q4_k *b, int64_t nb);
void slora__quant_q5_k(const float *x, struct slora_quant_q5_k *b, int64_t nb);
void slora__quant_q6_k(const float *x, struct slora_quant_q6_k *b, int64_t nb);
void slora__quant_q8_k(const float *x, struct slora_quant_q8_k *b, int64_t nb);

/* Sub-block i (< 8) scale and min of a Q4_K/Q5_K scales[12] field. */
static inline void slora__quant_scale_min_k4(const uint8_t *q, int i, int *sc, int *m)
{
    if (i < 4) {
        *sc = q[i] & 63;
        *m = q[i + 4] & 63;
    } else {
        *sc = (q[i + 4] & 15) | (q[i - 4] >> 6) << 4;
        *m = (q[i + 4] >> 4) | (q[i] >> 6) << 4;
    }
}

#endif
