/* superlora.h - the SuperLoRA delta maths (spec sections 3-6). No I/O.
 *
 * slora_superlora_generate turns an adapter into dW_all (N floats, every
 * target's vec(dW_j) at its offset, alpha applied). Peak extra memory is
 * O(N + L) from one scratch buffer; the result does not depend on the
 * thread count.
 */
#ifndef SLORA_SUPERLORA_H
#define SLORA_SUPERLORA_H

#include <slora/adapter.h>

#include <stddef.h>
#include <stdint.h>

/* Spec section 6: deterministic randomness. */
uint64_t slora_rnd(uint64_t seed, uint64_t tag, uint64_t j);
/* perm(key, n)(i): a bijection of [0, n). */
uint64_t slora_perm(uint64_t key, uint64_t n, uint64_t i);

/* Generate dW_all into out (adapter->total floats). Returns 0,
 * SLORA_ENONFINITE (a non-finite entry; diag names the matrix and index),
 * SLORA_ELIMIT/SLORA_EFORMAT (e.g. norm2(gd) == 0) or SLORA_ENOMEM. */
int slora_superlora_generate(const struct slora_adapter *a, float *out, int n_threads, char *diag,
                             size_t diag_len);

/* out = base + delta, n floats (the merged matrix W' = W + dW). */
void slora_superlora_merge(const float *base, const float *delta, float *out, size_t n);

#endif
