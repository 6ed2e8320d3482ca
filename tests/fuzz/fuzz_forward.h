/* fuzz_forward.h - what the model fuzz targets (fuzz_model.c, fuzz_hf.c) do
 * with a model that loaded: one forward row of its last token at position
 * 0, so every bound weight is read by the kernels of its type. */
#ifndef SLORA_FUZZ_FORWARD_H
#define SLORA_FUZZ_FORWARD_H

#include <slora/forward.h>
#include <slora/model.h>
#include <slora/weights.h>

#include <stdlib.h>

static void fuzz_forward(struct slora_model *m)
{
    struct slora_weights ws;
    struct slora_kv *kv = slora_kv_new(m);
    struct slora_fwd *f = slora_fwd_new(m, 1, 1);
    float *logits = calloc((size_t)m->cfg.shape.vocab_size, sizeof(float));
    if (kv && f && logits && !slora_weights_init(&ws, m, 0)) {
        struct slora_fwd_row row = {m->cfg.shape.vocab_size - 1, 0, kv, &ws, logits};
        slora_fwd_run(f, &row, 1);
        slora_weights_deinit(&ws);
    }
    free(logits);
    slora_fwd_free(f);
    slora_kv_free(kv);
}

#endif
