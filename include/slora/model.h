/* model.h - the frozen base model: a llama2.c legacy .bin or a GGUF (v2/v3,
 * arch "llama", F32/F16) file, mapped read-only.
 *
 * Weight pointers are views into the mmap (F32 files) or into one owned
 * buffer converted once at load (F16). Nothing here is ever written after
 * load, so a model may be shared by any number of threads.
 */
#ifndef SLORA_MODEL_H
#define SLORA_MODEL_H

#include <slora/arch.h>

#include <stdbool.h>
#include <stddef.h>

struct slora_model_config {
    struct slora_shape shape; /* vocab_size is positive here */
    int seq_len;
    bool shared_classifier;   /* llama2.c: vocab_size > 0 in the header */
};

struct slora_layer {
    const float *rms_att; /* (dim) */
    const float *rms_ffn; /* (dim) */
    const float *w[SLORA_MOD_COUNT]; /* each (rows, cols) per slora_arch_module_dims */
};

struct slora_model {
    struct slora_model_config cfg;
    const float *tok_emb;   /* (vocab, dim) */
    const float *rms_final; /* (dim) */
    const float *wcls;      /* (vocab, dim); == tok_emb when shared */
    struct slora_layer *layers; /* (n_layers) */
    struct slora_tokenizer *gguf_vocab; /* vocabulary from a GGUF file, else NULL; owned */
    const char *path;       /* owned copy */
    size_t weight_bytes;    /* bytes of all float weights */
    /* private: mapping and owned buffers */
    void *map;
    size_t map_len;
    float *owned;
};

/* Load a .bin or .gguf (detected by magic). Returns 0 or SLORA_E* with a
 * diagnostic naming the file and the problem in diag. */
int slora_model_load(const char *path, struct slora_model **out, char *diag, size_t diag_len);
void slora_model_free(struct slora_model *m);

/* Base matrix of (layer, module), (rows, cols). */
const float *slora_model_matrix(const struct slora_model *m, int layer, enum slora_module mod);

/* Write llama2.c legacy .bin with the given per-layer matrices substituted
 * (NULL ws = base weights). Used by `slorad merge`. */
struct slora_weights;
int slora_model_write_bin(const struct slora_model *m, const struct slora_weights *ws,
                          const char *path, char *diag, size_t diag_len);

#endif
