/* weights.h - a weight set: (layer, module) -> effective matrix.
 *
 * The forward pass reads every adaptable matrix through a weight set so an
 * adapter can substitute W' = W + dW without touching the base. A weight set
 * only borrows its matrices: the base model and whoever owns the merged
 * copies (the delta cache) must outlive it.
 */
#ifndef SLORA_WEIGHTS_H
#define SLORA_WEIGHTS_H

#include <slora/arch.h>
#include <slora/model.h>

struct slora_weights {
    const struct slora_model *model;
    const float **mat; /* (n_layers * SLORA_MOD_COUNT), index layer * SLORA_MOD_COUNT + module */
    unsigned id;       /* 0 = base; equal ids mean identical matrices (batching key) */
};

/* Initialise to the base model's matrices; returns 0 or SLORA_ENOMEM. */
int slora_weights_init(struct slora_weights *ws, const struct slora_model *m);
void slora_weights_deinit(struct slora_weights *ws);

static inline const float *slora_weights_get(const struct slora_weights *ws, int layer,
                                             enum slora_module mod)
{
    return ws->mat[layer * SLORA_MOD_COUNT + mod];
}

static inline void slora_weights_set(struct slora_weights *ws, int layer, enum slora_module mod,
                                     const float *w)
{
    ws->mat[layer * SLORA_MOD_COUNT + mod] = w;
}

#endif
