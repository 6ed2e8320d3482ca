/* merged.h - an adapter applied to a model for the offline tools: one owned
 * buffer holding W' = W + dW for every target matrix, and a weight set
 * pointing at it (untouched matrices stay views of the base model).
 *
 * Used by `slorad merge`, `slorad generate --adapter` and `slorad logits
 * --adapter`. Immutable once built; the model must outlive it.
 */
#ifndef SLORA_MERGED_H
#define SLORA_MERGED_H

#include <slora/adapter.h>
#include <slora/model.h>
#include <slora/weights.h>

#include <stddef.h>

struct slora_merged {
    struct slora_weights ws; /* base matrices with every target replaced */
    float *w;                /* (N) every target's W'_j at its dW_all offset; owned */
};

/* Generate a's deltas (n_threads) and merge them into copies of m's
 * matrices; ws.id is set to id (nonzero: 0 means the base weights).
 * Returns 0 or the generator's SLORA_E* with diag. a's base shape must match
 * m (parse it with the model's shape). */
int slora_merged_new(const struct slora_model *m, const struct slora_adapter *a, int n_threads,
                     unsigned id, struct slora_merged **out, char *diag, size_t diag_len);
/* slora_adapter_load the file at path against m's shape, then
 * slora_merged_new; diag names the file when the adapter is invalid. */
int slora_merged_load(const struct slora_model *m, const char *path, int n_threads, unsigned id,
                      struct slora_merged **out, char *diag, size_t diag_len);
void slora_merged_free(struct slora_merged *mg);

#endif
