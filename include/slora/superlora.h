/* superlora.h - the SuperLoRA delta maths (spec sections 3-6). No I/O.
 *
 * slora_superlora_generate turns an adapter into dW_all (N floats, every
 * target's vec(dW_j) at its offset, alpha applied). Extra memory is one
 * scratch allocation, known in advance (slora_superlora_cost): the
 * factors' intermediates, N floats when shuffled, O(L) when projected; the
 * result is bitwise independent of the thread count.
 * Any thread may call these functions; the adapter is only read.
 */
#ifndef SLORA_SUPERLORA_H
#define SLORA_SUPERLORA_H

#include <slora/adapter.h>
#include <slora/perm.h> /* slora_rnd, slora_perm: spec section 6 */

#include <stddef.h>
#include <stdint.h>

struct slora_model;

/* Generate dW_all into out (adapter->total floats). Returns 0,
 * SLORA_ENONFINITE (a non-finite entry; diag names the matrix and index),
 * SLORA_ELIMIT (norm2(gd) == 0, or a size beyond what the kernels index),
 * SLORA_EINVAL (an inconsistent group table) or SLORA_ENOMEM. */
int slora_superlora_generate(const struct slora_adapter *a, float *out, int n_threads, char *diag,
                             size_t diag_len);

/* Reusable scratch for repeated generation (a worker's, a benchmark's):
 * grows to the largest adapter seen and keeps its pages faulted in. Used
 * by one thread at a time. _free(NULL) is a no-op. */
struct slora_superlora_scratch;
struct slora_superlora_scratch *slora_superlora_scratch_new(void);
void slora_superlora_scratch_free(struct slora_superlora_scratch *s);
/* As slora_superlora_generate, with the scratch taken from s. */
int slora_superlora_generate_with(const struct slora_adapter *a, float *out, int n_threads,
                                  struct slora_superlora_scratch *s, char *diag, size_t diag_len);

/* What generating an adapter's deltas costs beyond the output, computed
 * from its shapes alone (nothing is allocated) with the generator's own
 * contraction order: */
struct slora_superlora_cost {
    size_t scratch_bytes; /* the one scratch allocation generate makes: every intermediate */
    size_t work;          /* multiply-adds and element writes, an estimate (saturating) */
};
/* 0, or what slora_superlora_generate would fail with before allocating
 * (SLORA_EINVAL, SLORA_ELIMIT; diag says why). */
int slora_superlora_cost(const struct slora_adapter *a, int n_threads,
                         struct slora_superlora_cost *out, char *diag, size_t diag_len);

/* dW_all (F32, as generated: every delta in GGUF row order, spec section 1)
 * into the loaded model's row order: the wq/wk targets' rows permuted when
 * the model keeps HF's rotate-half order (qk_rotate_half); else nothing.
 * 0, SLORA_ENOMEM or SLORA_EMISMATCH. */
int slora_superlora_to_native(const struct slora_adapter *a, const struct slora_model *m,
                              float *dw_all);

#endif
