/* merged.h - an adapter applied to a model for the offline tools: its
 * deltas dW in one owned F32 buffer and a one-term weight set pointing at
 * them (the forward pass adds dW x; base matrices stay views of the
 * model), plus W' = W + dW for writing a merged model.
 *
 * Used by `slorad merge`, `slorad generate --adapter` and `slorad logits
 * --adapter`. Immutable once built; the model must outlive it.
 */
#ifndef SLORA_MERGED_H
#define SLORA_MERGED_H

#include <slora/adapter.h>
#include <slora/delta.h>
#include <slora/model.h>
#include <slora/weights.h>

#include <stddef.h>

struct slora_merged {
    struct slora_weights ws;    /* the base with every target's delta */
    struct slora_delta_set *set; /* dense F32 deltas; owned */
    const float *dw;            /* (N) dW_all in the model's row order, inside set */
    const struct slora_adapter *adapter; /* own reference */
};

/* Generate a's deltas (n_threads); ws.id is set to id (nonzero: 0 means
 * the base weights). Returns 0 or the generator's SLORA_E* with diag. a's
 * base shape must match m (parse it with the model's shape). */
int slora_merged_new(const struct slora_model *m, const struct slora_adapter *a, int n_threads,
                     unsigned id, struct slora_merged **out, char *diag, size_t diag_len);
/* slora_adapter_load the file at path against m's shape, then
 * slora_merged_new; diag names the file when the adapter is invalid. */
int slora_merged_load(const struct slora_model *m, const char *path, int n_threads, unsigned id,
                      struct slora_merged **out, char *diag, size_t diag_len);
/* W'_j = W_j + dW_j (F32) for every target into a new buffer *buf (N
 * floats, caller frees) and *replace (n_layers * SLORA_MOD_COUNT, caller
 * frees) pointing (layer, module) at them, NULL elsewhere: the input of
 * slora_model_write_bin. SLORA_EUNSUPPORTED when a target's base type is
 * not F32, F16 or BF16; SLORA_ENOMEM. */
int slora_merged_weights(const struct slora_merged *mg, const struct slora_model *m, float **buf,
                         const float ***replace);
void slora_merged_free(struct slora_merged *mg);

#endif
