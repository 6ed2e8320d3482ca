/* delta.h - an adapter expanded for one model: the per-matrix deltas the
 * forward pass adds (weights.h), owning their memory.
 *
 * Two representations, chosen per adapter:
 * - factored: when every group is a per-matrix LoRA (groups = "matrix",
 *   K = 1, M = 2, the fold exactly (out, in), no shuffle, no projection,
 *   rank at most SLORA_FWD_MAX_LORA_RANK), each matrix keeps
 *   dW = B A with B = alpha A_0 C (out, r) and A = A_1^T (r, in): a few
 *   bytes per parameter, applied as B (A x);
 * - dense: anything else (cross-layer or fixed-size groups, Kronecker
 *   chains, shuffles, projections) is generated (slora_superlora_generate)
 *   and stored as dW in the configured type (F32, F16 or BF16).
 * Either way every delta is in the model's row order (HF-ordered q/k rows
 * permuted, superlora.h).
 *
 * A set is immutable once built: any thread may read it and the weight
 * sets bound to it; the model and the adapter (a reference is kept) must
 * outlive it.
 */
#ifndef SLORA_DELTA_H
#define SLORA_DELTA_H

#include <slora/adapter.h>
#include <slora/model.h>
#include <slora/tensor.h>
#include <slora/weights.h>

#include <stdbool.h>
#include <stddef.h>

/* Generator of dW_all (N floats): slora_superlora_generate or a test's. */
typedef int (*slora_delta_gen_fn)(const struct slora_adapter *a, float *out, int n_threads,
                                  char *diag, size_t diag_len);

struct slora_delta_opts {
    enum slora_dtype dense_type; /* F32, F16 or BF16 */
    bool factored;               /* use the factored form where the adapter allows it */
    int n_threads;               /* for generation; 0 = 1 */
    slora_delta_gen_fn gen;      /* NULL = slora_superlora_generate */
};

struct slora_delta_set;

/* Would the set of a be factored under o? */
bool slora_delta_is_factored(const struct slora_adapter *a, const struct slora_delta_opts *o);
/* Bytes the set of a holds under o (what a cache budget counts). */
size_t slora_delta_bytes(const struct slora_adapter *a, const struct slora_delta_opts *o);
/* Build. Returns 0, the generator's error (diag says why), SLORA_EMISMATCH
 * (another model's shape), SLORA_EINVAL (options) or SLORA_ENOMEM. */
int slora_delta_set_new(const struct slora_model *m, const struct slora_adapter *a,
                        const struct slora_delta_opts *o, struct slora_delta_set **out,
                        char *diag, size_t diag_len);
void slora_delta_set_free(struct slora_delta_set *s);
/* Point term `term` of ws (initialised on the set's model) at its deltas. */
void slora_delta_set_bind(const struct slora_delta_set *s, struct slora_weights *ws, int term);
/* The dense dW_all of an F32 dense set (N floats), else NULL. */
const float *slora_delta_set_dense_f32(const struct slora_delta_set *s);

#endif
