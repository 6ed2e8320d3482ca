/* model_internal.h - what model.c shares with the GGUF loader (model_gguf.c)
 * and the writers (model_write.c). Not part of the public API. */
#ifndef SLORA_MODEL_INTERNAL_H
#define SLORA_MODEL_INTERNAL_H

#include <slora/model.h>

#include <stddef.h>
#include <stdint.h>

/* Where tensor i (slora_model_tensor's order) lives in the struct: exactly
 * one of mat (a matrix or the embeddings) and vec (a float vector) is set. */
struct slora__model_slot {
    char name[48];
    int64_t rows; /* 1 for vectors */
    int64_t cols;
    int layer;  /* -1 for non-layer tensors */
    int module;  /* enum slora_module or -1 */
    int bias_of; /* the module a bias vector belongs to, else -1 */
    struct slora_tensor *mat;
    const float **vec;
};
struct slora__model_slot slora__model_slot(struct slora_model *m, int i);

/* A model with this config and no tensors bound yet; NULL on ENOMEM. */
struct slora_model *slora__model_alloc(const char *path, const struct slora_model_config *cfg);
/* Every float-typed tensor finite (quantized blocks are left to their
 * validator); SLORA_ENONFINITE naming the tensor and element. */
int slora__model_check_finite(const struct slora_model *m, char *diag, size_t diag_len);
/* model_gguf.c: parse buf (the mapped file) into *out; tensors are views
 * into buf. */
int slora__model_load_gguf(struct slora_model **out, const char *path, const uint8_t *buf,
                           size_t len, int max_context, char *diag, size_t diag_len);

/* Map path read-only (a regular file); *map NULL for an empty file. */
int slora__model_map(const char *path, void **map, size_t *len, char *diag, size_t diag_len);
/* model_hf.c: a Hugging Face checkpoint directory into *out; tensors are
 * views into the mapped shards (m->shards). */
int slora__model_load_hf(struct slora_model **out, const char *dir, int max_context, char *diag,
                         size_t diag_len);

#endif
