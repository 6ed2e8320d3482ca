/* merged.c - an adapter's deltas for the offline tools (see merged.h). */
#include <slora/error.h>
#include <slora/matmul.h>
#include <slora/merged.h>

#include <stdio.h>
#include <stdlib.h>

int slora_merged_new(const struct slora_model *m, const struct slora_adapter *a, int n_threads,
                     unsigned id, struct slora_merged **out, char *diag, size_t diag_len)
{
    *out = NULL;
    struct slora_merged *mg = calloc(1, sizeof(*mg));
    int err = SLORA_ENOMEM;
    if (!mg || slora_weights_init(&mg->ws, m, 1)) {
        snprintf(diag, diag_len, "out of memory");
        goto err_free_merged;
    }
    const struct slora_delta_opts o = {.dense_type = SLORA_DTYPE_F32, .n_threads = n_threads};
    if ((err = slora_delta_set_new(m, a, &o, &mg->set, diag, diag_len)))
        goto err_free_merged;
    slora_delta_set_bind(mg->set, &mg->ws, 0);
    mg->dw = slora_delta_set_dense_f32(mg->set);
    mg->ws.id = id;
    mg->adapter = slora_adapter_ref((struct slora_adapter *)a);
    *out = mg;
    return 0;

err_free_merged:
    slora_merged_free(mg);
    return err;
}

int slora_merged_load(const struct slora_model *m, const char *path, int n_threads, unsigned id,
                      struct slora_merged **out, char *diag, size_t diag_len)
{
    *out = NULL;
    char why[512];
    struct slora_adapter *a;
    int err = slora_adapter_load(path, &m->cfg.shape, NULL, 0, &a, why, sizeof(why));
    if (!err) {
        err = slora_merged_new(m, a, n_threads, id, out, why, sizeof(why));
        slora_adapter_unref(a);
    }
    if (err)
        snprintf(diag, diag_len, "%s: invalid adapter (%s): %s", path, slora_err_name(err), why);
    return err;
}

int slora_merged_weights(const struct slora_merged *mg, const struct slora_model *m, float **buf,
                         const float ***replace)
{
    const struct slora_adapter *a = mg->adapter;
    size_t n_mats = (size_t)m->cfg.shape.n_layers * SLORA_MOD_COUNT;
    for (int j = 0; j < a->n_targets; j++) {
        enum slora_dtype t = slora_model_matrix(m, a->targets[j].layer, a->targets[j].module)->type;
        if (t != SLORA_DTYPE_F32 && t != SLORA_DTYPE_F16 && t != SLORA_DTYPE_BF16)
            return SLORA_EUNSUPPORTED;
    }
    float *w = malloc(sizeof(float) * (size_t)(a->total ? a->total : 1));
    const float **rep = calloc(n_mats, sizeof(*rep));
    if (!w || !rep) {
        free(w);
        free(rep);
        return SLORA_ENOMEM;
    }
    for (int j = 0; j < a->n_targets; j++) {
        const struct slora_target *t = &a->targets[j];
        const struct slora_tensor *base = slora_model_matrix(m, t->layer, t->module);
        float *dst = w + t->offset;
        for (int64_t r = 0; r < t->rows; r++) {
            float *row = dst + r * t->cols;
            const float *d = mg->dw + t->offset + r * t->cols;
            slora_matmul_get_row(base, r, row);
            for (int64_t c = 0; c < t->cols; c++)
                row[c] += d[c];
        }
        rep[(size_t)t->layer * SLORA_MOD_COUNT + t->module] = dst;
    }
    *buf = w;
    *replace = rep;
    return 0;
}

void slora_merged_free(struct slora_merged *mg)
{
    if (!mg)
        return;
    slora_weights_deinit(&mg->ws);
    slora_adapter_unref((struct slora_adapter *)mg->adapter);
    slora_delta_set_free(mg->set);
    free(mg);
}
