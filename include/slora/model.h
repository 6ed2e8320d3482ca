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
#include <stdint.h>

struct slora_tokenizer;

struct slora_model_config {
    struct slora_shape shape; /* vocab_size is positive here */
    int seq_len;
    bool shared_classifier; /* llama2.c: vocab_size > 0 in the header */
};

struct slora_layer {
    const float *rms_att;            /* (dim) */
    const float *rms_ffn;            /* (dim) */
    const float *w[SLORA_MOD_COUNT]; /* each (rows, cols) per slora_arch_module_dims */
};

struct slora_model {
    struct slora_model_config cfg;
    const float *tok_emb;               /* (vocab, dim) */
    const float *rms_final;             /* (dim) */
    const float *wcls;                  /* (vocab, dim); == tok_emb when shared */
    struct slora_layer *layers;         /* (n_layers) */
    struct slora_tokenizer *gguf_vocab; /* vocabulary from a GGUF file, else NULL; owned */
    const char *path;                   /* owned copy */
    size_t weight_bytes;                /* bytes of all float weights */
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

/* Write GGUF (version 2 or 3, arch llama) with matrices stored as dtype
 * (enum slora_gguf_dtype; vectors stay F32) and, when tok is not NULL, its
 * vocabulary (spaces as U+2581). A shared classifier writes no output.weight. */
int slora_model_write_gguf(const struct slora_model *m, const struct slora_tokenizer *tok,
                           const char *path, int version, int dtype, char *diag, size_t diag_len);

/* Every float tensor in llama2.c .bin order: token_embd, then per kind over
 * layers (attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm,
 * ffn_gate, ffn_down, ffn_up), output_norm, and output when unshared.
 * name is the GGUF name; rows is 1 for vectors. */
struct slora_model_tensor {
    char name[48];
    int64_t rows;
    int64_t cols;
    int layer;   /* -1 for non-layer tensors */
    int module;  /* enum slora_module, or -1 for embeddings and norms */
    float *data; /* writable only for a model from slora_model_new_blank */
};
int slora_model_n_tensors(const struct slora_model *m);
void slora_model_tensor(const struct slora_model *m, int i, struct slora_model_tensor *t);

/* A model with zeroed owned weights of this config (for `gen-model`), to be
 * filled through slora_model_tensor. SLORA_EFORMAT for an invalid config. */
int slora_model_new_blank(const struct slora_model_config *cfg, struct slora_model **out,
                          char *diag, size_t diag_len);

#endif
