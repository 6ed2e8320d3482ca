/* weights.c - weight sets (see weights.h). Borrowed pointers only. */
#include <slora/error.h>
#include <slora/weights.h>

#include <stdatomic.h>
#include <stdlib.h>

int slora_weights_init(struct slora_weights *ws, const struct slora_model *m, int n_terms)
{
    ws->model = m;
    ws->id = 0;
    ws->n_terms = n_terms;
    ws->delta = NULL;
    if (n_terms < 0 || n_terms > SLORA_WEIGHTS_MAX_TERMS)
        return SLORA_EINVAL;
    for (int k = 0; k < SLORA_WEIGHTS_MAX_TERMS; k++)
        ws->scale[k] = 1.0f;
    size_t n = (size_t)n_terms * m->cfg.shape.n_layers * SLORA_MOD_COUNT;
    if (n && !(ws->delta = calloc(n, sizeof(*ws->delta))))
        return SLORA_ENOMEM;
    return 0;
}

void slora_weights_deinit(struct slora_weights *ws)
{
    free(ws->delta);
    ws->delta = NULL;
}

uint64_t slora_weights_new_id(void)
{
    static atomic_uint_fast64_t last;
    return (uint64_t)atomic_fetch_add(&last, 1) + 1;
}

void slora_weights_copy_term(struct slora_weights *ws, int term, const struct slora_weights *from,
                             int from_term, float scale)
{
    int n_layers = ws->model->cfg.shape.n_layers;
    for (int l = 0; l < n_layers; l++)
        for (int mod = 0; mod < SLORA_MOD_COUNT; mod++)
            slora_weights_set(ws, term, l, mod, slora_weights_delta(from, from_term, l, mod));
    ws->scale[term] = scale;
}
