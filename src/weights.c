/* weights.c - weight sets: the base model's matrices, some of which a
 * caller (the delta cache) replaces with W' = W + dW. Borrowed pointers only. */
#include <slora/error.h>
#include <slora/weights.h>

#include <stdlib.h>

int slora_weights_init(struct slora_weights *ws, const struct slora_model *m)
{
    int n_layers = m->cfg.shape.n_layers;
    ws->model = m;
    ws->id = 0;
    ws->mat = malloc((size_t)n_layers * SLORA_MOD_COUNT * sizeof(*ws->mat));
    if (!ws->mat)
        return SLORA_ENOMEM;
    for (int l = 0; l < n_layers; l++)
        for (int mod = 0; mod < SLORA_MOD_COUNT; mod++)
            slora_weights_set(ws, l, mod, slora_model_matrix(m, l, mod));
    return 0;
}

void slora_weights_deinit(struct slora_weights *ws)
{
    free(ws->mat);
    ws->mat = NULL;
}
