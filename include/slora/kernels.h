/* kernels.h - the vector inner loops of the delta maths.
 *
 * This file and the typed product's kernel files (src/matmul_*.c) are the
 * places that select between SIMD intrinsics and portable C, at compile
 * time (-march=native defines __AVX2__ on the build hosts).
 * Both paths compute the same values in the same order per element, so a
 * result never depends on which path or how many threads ran it.
 * Pure functions on caller memory; any thread may call them.
 */
#ifndef SLORA_KERNELS_H
#define SLORA_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* In-place unnormalized Walsh-Hadamard transform of v (2^logn floats),
 * butterflies (a, b) -> (a + b, a - b) for strides 1, 2, 4, ... 2^(logn-1). */
void slora_kernels_fwht(float *v, int logn);

/* The butterflies of strides width, 2 width, ... across the rows of buf
 * (2^log_rows rows of `width` floats, width a multiple of 8): row r pairs
 * with row r + 2^s for s = 0..log_rows-1. */
void slora_kernels_fwht_rows(float *buf, int log_rows, size_t width);

/* The Feistel permutation of spec section 6 on consecutive indices:
 * out[t] = F(i0 + t), applied again while >= n (cycle walking), for
 * t < count. h is the half width (2h <= 32), rk the four round keys;
 * needs i0 + count <= n <= 2^(2h). The indices are generated in
 * registers: nothing is read from out. */
void slora_kernels_feistel(uint32_t *out, uint64_t i0, size_t count, const uint32_t rk[4], int h,
                           uint64_t n);

/* Fastfood's Gaussian-like diagonal (spec 5.3) on consecutive j: with
 * u_t = mix64(z0 + t * GAMMA) and gd_t the centred sum of its four 16-bit
 * fields, w[t] *= gd_t for t < count. Returns sum_t gd_t^2 (exact). */
uint64_t slora_kernels_gd_scale(float *w, size_t count, uint64_t z0);

/* A tile of U @ A^T with A held transposed, at (r, ld): for i < rows,
 * c < n: dst[i n + c] = scale * (u[i r] at[c] + u[i r + 1] at[ld + c] + ...
 * + u[i r + r-1] at[(r-1) ld + c]), accumulated in j order with fused
 * multiply-adds. For small r this beats a GEMM call: no packing and no
 * zeroing pass over dst. */
void slora_kernels_outer(float *dst, const float *u, const float *at, size_t ld, size_t rows,
                         size_t n, size_t r, float scale);

/* slora_kernels_outer straight to memory, with streaming stores for the
 * 32-byte aligned part of each row: for a tile nobody reads soon.
 * Returns whether any value written is NaN or Inf. */
bool slora_kernels_outer_stream(float *dst, const float *u, const float *at, size_t ld, size_t rows,
                                size_t n, size_t r, float scale);

/* dst[i] = src[i] * s with streaming (cache-bypassing) stores: for output
 * nobody reads soon, written at memset speed without reading it first.
 * Returns the index of the first non-finite dst[i], or n. */
size_t slora_kernels_stream(float *dst, const float *src, size_t n, float s);
/* Order this thread's streaming stores before anything it does next: call
 * once at the end of a task that used slora_kernels_stream. */
void slora_kernels_stream_done(void);

/* Index of the first NaN or Inf in x, or n when all are finite. */
size_t slora_kernels_find_nonfinite(const float *x, size_t n);

#endif
