/* forward.h - the transformer forward pass over a batch of token rows.
 *
 * One call advances any mix of sequences: each row is (token, position,
 * KV cache, weight set). A prefill is a batch of consecutive positions of one
 * sequence; a decode step is one row per active sequence. Rows are causal
 * within their own sequence (a row sees its sequence's KV at positions
 * <= its own, including rows earlier in the same batch).
 *
 * Matrix products: a matrix shared by all rows (same weight set id, or the
 * module untouched by every adapter) runs as one sgemm over those rows;
 * rows with a different weight set run one sgemm per distinct weight set id.
 * (The implementation groups rows by the matrix pointer their sets map
 * (layer, module) to: equal ids share every matrix, and sets of different
 * ids still share the modules their adapters leave untouched.)
 * Single-row groups use sgemv.
 *
 * The scratch state is allocated once per worker (slora_fwd_new) and never
 * inside slora_fwd_run. A state is used by one thread at a time.
 */
#ifndef SLORA_FORWARD_H
#define SLORA_FORWARD_H

#include <slora/model.h>
#include <slora/weights.h>

/* Per-sequence KV cache: key and value (n_layers, seq_len, kv_dim) each. */
struct slora_kv {
    float *k;
    float *v;
    int n_layers, seq_len, kv_dim;
};

struct slora_kv *slora_kv_new(const struct slora_model *m);
void slora_kv_free(struct slora_kv *kv);

struct slora_fwd_row {
    int token;
    int pos;
    struct slora_kv *kv;
    const struct slora_weights *ws;
    float *logits; /* (vocab) output, or NULL when not needed (prefill rows but the last) */
};

struct slora_fwd;
/* Scratch for up to max_rows rows per call. NULL on ENOMEM. */
struct slora_fwd *slora_fwd_new(const struct slora_model *m, int max_rows);
void slora_fwd_free(struct slora_fwd *f);
int slora_fwd_max_rows(const struct slora_fwd *f);

/* Run n rows (n <= max_rows); returns 0 or SLORA_EINVAL (bad token/pos). */
int slora_fwd_run(struct slora_fwd *f, const struct slora_fwd_row *rows, int n);

#endif
