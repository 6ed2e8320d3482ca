/* matmul.h - products of typed weight matrices with float activations:
 * Y (n, rows) = X (n, cols) W^T for W in any weight type of tensor.h.
 *
 * Two steps, so that threads can share the first:
 *   1. slora_matmul_quantize: each activation row x (cols floats) becomes
 *      the vector format W's dot consumes (slora_matmul_vec_type: Q8_0 for
 *      Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for the K-quants, F32 for
 *      F32/F16/BF16 weights), slora_matmul_xq_bytes bytes per row. The
 *      values are ggml's (so products agree with llama.cpp's); the bytes
 *      are an internal layout, not ggml's blocks: quants, scales and block
 *      sums in separate arrays, so kernels load 32 quants at a time and
 *      never convert a scale in their inner loop. F32 rows are plain
 *      floats (any stride, any alignment), multiplied exactly (F16/BF16
 *      weights are widened, not the activations rounded);
 *   2. slora_matmul: any slice [r0, r1) of W's rows against all n quantized
 *      rows; threads take disjoint slices of one product.
 * A slice's result does not depend on how the rows were sliced or on the
 * thread count (every output element is one dot in a fixed order).
 *
 * Kernels are chosen at compile time (AVX-512 with VNNI, AVX2/FMA/
 * F16C, portable C; src/matmul_*.c), all computing the same values up to
 * float rounding (the integer block sums are exact; only their float
 * accumulation order differs); the portable path is the reference the
 * others are tested against. One thread streams about 8 (Q4_K) to 30
 * (F32) GB/s of weights in decode and 95-330 GFLOP/s in prefill
 * (bench/results/matmul.md).
 * Pure functions on caller memory; any thread may call them.
 */
#ifndef SLORA_MATMUL_H
#define SLORA_MATMUL_H

#include <slora/tensor.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The activation format W of type wt consumes. */
enum slora_dtype slora_matmul_vec_type(enum slora_dtype wt);
/* Bytes of one quantized activation row of cols elements for weights of
 * type wt (0 when cols is not a multiple of wt's block). */
size_t slora_matmul_xq_bytes(enum slora_dtype wt, int64_t cols);
/* Quantize n rows of x (n, cols) for weights of type wt into xq, row i at
 * xq + i * xq_stride, xq_stride >= slora_matmul_xq_bytes (a multiple of
 * 64). Any alignment works; rows 64-byte aligned load fastest. */
void slora_matmul_quantize(enum slora_dtype wt, const float *x, int n, int64_t cols, void *xq,
                           size_t xq_stride);
/* For i < n and r0 <= r < r1:
 *     y[i * ldy + r] = (add ? y[i * ldy + r] : 0) + dot(W row r, xq row i)
 * with xq from slora_matmul_quantize(w->type, ...). */
void slora_matmul(const struct slora_tensor *w, const void *xq, size_t xq_stride, int n, float *y,
                  size_t ldy, int64_t r0, int64_t r1, bool add);

/* Row r of w as floats (w->cols of them): embedding lookups. */
void slora_matmul_get_row(const struct slora_tensor *w, int64_t r, float *out);

#endif
