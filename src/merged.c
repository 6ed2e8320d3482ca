/* merged.c - W' = W + dW for every target of an adapter, in one buffer.
 *
 * The deltas are generated into a temporary buffer and merged by
 * slora_superlora_apply, which also points the weight set at the result.
 */
#include <slora/error.h>
#include <slora/merged.h>
#include <slora/superlora.h>

#include <stdio.h>
#include <stdlib.h>

int slora_merged_new(const struct slora_model *m, const struct slora_adapter *a, int n_threads,
                     unsigned id, struct slora_merged **out, char *diag, size_t diag_len)
{
    *out = NULL;
    size_t n = (size_t)(a->total ? a->total : 1);
    struct slora_merged *mg = calloc(1, sizeof(*mg));
    float *dw = malloc(sizeof(float) * n);
    int err = SLORA_ENOMEM;
    if (!mg || !dw || !(mg->w = malloc(sizeof(float) * n)) || slora_weights_init(&mg->ws, m)) {
        snprintf(diag, diag_len, "out of memory for %lld merged weights", (long long)a->total);
        goto err_free_merged;
    }
    err = slora_superlora_generate(a, dw, n_threads, diag, diag_len);
    if (err)
        goto err_free_merged;
    err = slora_superlora_apply(a, m, dw, mg->w, &mg->ws);
    if (err) {
        snprintf(diag, diag_len, "the adapter's base shape does not match the model");
        goto err_free_merged;
    }
    free(dw);
    mg->ws.id = id;
    *out = mg;
    return 0;

err_free_merged:
    free(dw);
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

void slora_merged_free(struct slora_merged *mg)
{
    if (!mg)
        return;
    slora_weights_deinit(&mg->ws);
    free(mg->w);
    free(mg);
}
