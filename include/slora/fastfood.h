/* fastfood.h - spec section 5: the fixed fastfood projection of a group's
 * code vector x (length P) to delta_g (length D), and the large in-place
 * Walsh-Hadamard transform it is built from.
 *
 * Large transforms run in two memory passes: blocks of 2^15 floats get all
 * their small strides in cache, then strips of columns get the large
 * strides. Work is split into tasks by size only, and every butterfly is
 * the same operation in the same order as the plain stride loop, so the
 * result is bitwise identical at any thread count and equal to
 * slora_kernels_fwht on the whole vector.
 * Any thread may call these functions on its own buffers.
 */
#ifndef SLORA_FASTFOOD_H
#define SLORA_FASTFOOD_H

#include <stddef.h>
#include <stdint.h>

/* L = smallest power of two >= max(P, D); returns log2(L). */
int slora_fastfood_log_len(int64_t P, int64_t D);

/* Floats of scratch a projection of length 2^log_len needs with n_threads
 * workers; its work area (all but the first 2 * 2^log_len floats) also
 * serves slora_fastfood_fwht. */
size_t slora_fastfood_scratch_floats(int log_len, int n_threads);

/* In place v = H v for v of 2^logn floats; work: at least
 * slora_fastfood_scratch_floats(logn, n_threads) - 2^(logn+1) floats. */
void slora_fastfood_fwht(float *v, int logn, float *work, int n_threads);

/* Project x = scratch[0 : P) (the caller writes it there) with seed s for
 * group g: dst[i] = alpha * F_g(x)[i] for i < D. *bad_index is the first
 * i with a non-finite dst[i], or -1. Returns 0, or SLORA_ELIMIT when
 * norm2(gd) = 0 (diag says so). */
int slora_fastfood_project(uint64_t seed, int64_t group, int64_t P, int64_t D, float alpha,
                           float *scratch, float *dst, int n_threads, int64_t *bad_index,
                           char *diag, size_t diag_len);

#endif
