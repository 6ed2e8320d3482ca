/* forward.h - the transformer forward pass over a batch of token rows.
 *
 * One call advances any mix of sequences: each row is (token, position,
 * KV cache, weight set). A prefill is a batch of consecutive positions of one
 * sequence; a decode step is one row per active sequence. Rows are causal
 * within their own sequence (a row sees its sequence's KV at positions
 * <= its own, including rows earlier in the same batch).
 *
 * The model is the one its config describes (model.h): RMSNorm with the
 * file's epsilon, RoPE in the file's style and base (with linear scaling
 * and per-dimension factors), grouped-query attention, optional q/k/v
 * biases, SwiGLU FFN, tied or separate classifier.
 *
 * Matrix products: each base matrix runs once per call over all rows, in
 * its own type (matmul.h); then each distinct adapter delta among the rows
 * runs once over the rows that use it (gathered), scaled per row by its
 * weight set's term scale and added. So a mixed batch costs one base
 * product per matrix plus one product per (adapter delta) group.
 *
 * Threads: a state owns a team of n_threads (pool.h) that splits every
 * step (matrix rows, attention heads, rows of elementwise work) and meets
 * at barriers; results do not depend on the thread count. The scratch is
 * allocated once (slora_fwd_new) and never inside slora_fwd_run. A state is
 * used by one thread at a time.
 */
#ifndef SLORA_FORWARD_H
#define SLORA_FORWARD_H

#include <slora/model.h>
#include <slora/weights.h>

#include <stdint.h>

/* Per-sequence KV cache: key and value (n_layers, n_kv_heads, seq_len,
 * head_dim) each, so that one head's positions are one stream from memory.
 * Pages are touched as positions are used. */
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

/* Largest rank of a factored (LoRA) delta the forward pass applies. */
#define SLORA_FWD_MAX_LORA_RANK 256

struct slora_fwd;
/* Scratch for up to max_rows rows per call and a team of n_threads (0 =
 * 1). NULL on ENOMEM. */
struct slora_fwd *slora_fwd_new(const struct slora_model *m, int max_rows, int n_threads);
void slora_fwd_free(struct slora_fwd *f);
int slora_fwd_max_rows(const struct slora_fwd *f);
int slora_fwd_threads(const struct slora_fwd *f);

/* What the state has computed (since slora_fwd_new): products of base
 * matrices (the classifier included, once per chunk of 64 logit rows) and
 * of adapter delta groups, and rows. */
struct slora_fwd_stats {
    uint64_t base_products;
    uint64_t delta_products;
    uint64_t rows;
    uint64_t runs;
};
void slora_fwd_stats(const struct slora_fwd *f, struct slora_fwd_stats *out);

/* A call uses as many of the team's threads as its work is worth
 * (slora_pool_team); this sets the operations a thread's share of a phase
 * must hold (slora_pool_set_min_share; 0: every call uses the whole team). */
void slora_fwd_set_min_share(struct slora_fwd *f, double ops);

/* Run n rows (n <= max_rows); returns 0 or SLORA_EINVAL (bad token/pos,
 * a weight set of another model, a LoRA delta of rank above the limit). */
int slora_fwd_run(struct slora_fwd *f, const struct slora_fwd_row *rows, int n);

#endif
