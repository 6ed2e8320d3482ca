/* weights.h - a weight set: the base model plus, per (layer, module), the
 * deltas of up to SLORA_WEIGHTS_MAX_TERMS adapters, so the forward pass
 * computes y = W x + sum_k scale_k dW_k x without ever merging.
 *
 * A delta is dense (dW as an F32/F16/BF16 matrix) or factored (a LoRA-
 * shaped dW = B A, applied as B (A x)). One adapter is one term with scale
 * 1; a per-request mix is several terms with the request's weights.
 *
 * A weight set only borrows: the base model and whoever owns the deltas
 * (delta cache entries) must outlive it. Set up by one thread, then only
 * read.
 */
#ifndef SLORA_WEIGHTS_H
#define SLORA_WEIGHTS_H

#include <slora/arch.h>
#include <slora/model.h>
#include <slora/tensor.h>

#include <stdint.h>

#define SLORA_WEIGHTS_MAX_TERMS 8

enum slora_delta_kind {
    SLORA_DELTA_DENSE, /* y += dw x */
    SLORA_DELTA_LORA,  /* y += b (a x) */
};

/* One adapter's change to one matrix of shape (rows, cols). */
struct slora_delta {
    enum slora_delta_kind kind;
    struct slora_tensor dw; /* DENSE: (rows, cols), F32, F16 or BF16 */
    struct slora_tensor a;  /* LORA: (r, cols), F32 */
    struct slora_tensor bt; /* LORA: (r, rows), F32: B transposed, so a thread's slice of
                               B (A x) is a weighted sum of r contiguous rows; alpha folded in */
};

struct slora_weights {
    const struct slora_model *model;
    int n_terms;                      /* 0 = the base model alone */
    float scale[SLORA_WEIGHTS_MAX_TERMS];
    const struct slora_delta **delta; /* (n_terms, n_layers, SLORA_MOD_COUNT); NULL = untouched */
    uint64_t id;                      /* 0 = base; equal ids mean identical sets */
};

/* Initialise with n_terms terms (0..SLORA_WEIGHTS_MAX_TERMS), every delta
 * NULL and every scale 1; returns 0, SLORA_EINVAL or SLORA_ENOMEM. */
int slora_weights_init(struct slora_weights *ws, const struct slora_model *m, int n_terms);
void slora_weights_deinit(struct slora_weights *ws);
/* A weight-set id never returned before in this process (never 0): the
 * delta cache's entries and the engine's per-request mixes take theirs from
 * here, so no two live sets share one. Any thread. */
uint64_t slora_weights_new_id(void);
/* Term `term` of ws becomes term `from_term` of `from` (same model) with
 * the given scale: how a mix points at the deltas of cached adapters. */
void slora_weights_copy_term(struct slora_weights *ws, int term, const struct slora_weights *from,
                             int from_term, float scale);

static inline const struct slora_delta *slora_weights_delta(const struct slora_weights *ws,
                                                            int term, int layer,
                                                            enum slora_module mod)
{
    int n_layers = ws->model->cfg.shape.n_layers;
    return ws->delta[((size_t)term * n_layers + layer) * SLORA_MOD_COUNT + mod];
}

static inline void slora_weights_set(struct slora_weights *ws, int term, int layer,
                                     enum slora_module mod, const struct slora_delta *d)
{
    int n_layers = ws->model->cfg.shape.n_layers;
    ws->delta[((size_t)term * n_layers + layer) * SLORA_MOD_COUNT + mod] = d;
}

#endif
