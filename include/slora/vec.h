/* vec.h - the forward pass's float vector loops outside the matrix
 * products: dot products and scaled adds (attention), RMSNorm, softmax and
 * SwiGLU with a vectorised exp.
 *
 * Like kernels.c and matmul_*.c this module chooses at compile time
 * between AVX2/FMA intrinsics and portable C. The two paths agree to float
 * rounding, not bit for bit (the SIMD sums run in 8 lanes, the portable
 * ones in order); each is deterministic, so a result never depends on the
 * thread count. exp is the same algorithm on both paths: x = n ln2 + r,
 * |r| <= ln2 / 2, e^r by its Taylor series to r^7 (truncation below 1e-8
 * relative), times 2^n; inputs are clamped to [-87.3, 88.3] (the normal
 * float range), which only matters where the exact value underflows.
 * Pure functions on caller memory; any thread may call them.
 */
#ifndef SLORA_VEC_H
#define SLORA_VEC_H

#include <stddef.h>

/* sum a[i] b[i], i < n. */
float slora_vec_dot(const float *a, const float *b, int n);
/* y[i] += a x[i], i < n. */
void slora_vec_axpy(float *y, float a, const float *x, int n);
/* o[i] = w[i] x[i] / sqrt(mean(x^2) + eps), i < n (o may be x). */
void slora_vec_rmsnorm(float *o, const float *x, const float *w, int n, float eps);
/* In place: x[i] = exp(x[i] - max) / sum_j exp(x[j] - max), i < n (n >= 1). */
void slora_vec_softmax(float *x, int n);
/* SwiGLU in place: h[i] = silu(h[i]) g[i] = h[i] / (1 + exp(-h[i])) g[i]. */
void slora_vec_swiglu(float *h, const float *g, int n);
/* Attention of n_q query heads (q: n_q rows of hd floats) that share one
 * key/value head: position t's key at k + t k_stride, its value at
 * v + t v_stride. Both walk the positions in order in small blocks that
 * every query head reads while they are in L1.
 * scores: att[j att_stride + t] = scale * dot(q_j, key t), t < n_pos. */
void slora_vec_attn_scores(float *att, size_t att_stride, const float *q, int n_q, const float *k,
                           size_t k_stride, int n_pos, int hd, float scale);
/* mix: out_j (hd floats at out + j hd) = sum_t att[j att_stride + t] value t. */
void slora_vec_attn_mix(float *out, const float *att, size_t att_stride, int n_q, const float *v,
                        size_t v_stride, int n_pos, int hd);
/* exp(x) elementwise into y (y may be x): the function the others use. */
void slora_vec_exp(float *y, const float *x, int n);

#endif
