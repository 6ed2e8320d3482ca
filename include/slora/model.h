/* model.h - the frozen base model: a llama2.c legacy .bin or a GGUF (v2/v3)
 * of architecture "llama" (Llama 2/3, TinyLlama, Mistral, SmolLM2, ...) or
 * "qwen2", mapped read-only.
 *
 * Everything the forward pass, generation and stop logic need to know about
 * the model comes from the file into struct slora_model_config: shapes,
 * RoPE (base, style, scaling, per-dimension factors), RMSNorm epsilon,
 * biases, tied output, context length, special tokens. Nothing downstream
 * uses a constant for any of these.
 *
 * Weights are typed views (tensor.h) into the mmap: F32, F16, BF16 and the
 * block-quantized types are used in place, never converted. Only small
 * vectors (norms, biases) stored in a 16-bit type are converted once into
 * an owned float buffer. Nothing here is written after load, so a model
 * may be shared by any number of threads.
 */
#ifndef SLORA_MODEL_H
#define SLORA_MODEL_H

#include <slora/arch.h>
#include <slora/tensor.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct slora_tokenizer;

enum slora_model_arch {
    SLORA_ARCH_LLAMA, /* Meta's interleaved-pair RoPE, no biases */
    SLORA_ARCH_QWEN2, /* NeoX-style RoPE (halves), q/k/v biases */
};

enum slora_rope_style {
    SLORA_ROPE_NORM, /* rotate pairs (2i, 2i + 1) of each head: llama, llama2.c */
    SLORA_ROPE_NEOX, /* rotate pairs (i, i + head_dim / 2): qwen2, HF rotate-half */
};

#define SLORA_MODEL_DEFAULT_CONTEXT 4096

/* The model's hyper-parameters, all from the file. */
struct slora_model_config {
    enum slora_model_arch arch;
    struct slora_shape shape; /* vocab_size is positive here */
    int head_dim;             /* dim / n_heads (other values are refused at load) */
    int seq_len;              /* served context: min(n_ctx_train, max_context) */
    int n_ctx_train;          /* the file's context length */
    bool shared_classifier;   /* tied output: the classifier is token_embd */
    bool qkv_bias;            /* q, k, v projections carry biases */
    /* wq/wk rows in HF's rotate-half order (a llama Hugging Face checkpoint,
     * served with NEOX RoPE): adapter deltas, defined in GGUF row order, are
     * permuted into it (slora_model_native_rows), and writers permute back */
    bool qk_rotate_half;
    enum slora_rope_style rope_style;
    float rope_theta;      /* frequency base */
    float rope_freq_scale; /* linear scaling: positions times this (1 = none) */
    float rms_eps;
    /* special tokens (-1 when the file declares none) */
    int bos_id;
    int eos_id;
    bool add_bos; /* prompts start with BOS */
};

/* Load options. */
struct slora_model_opts {
    int max_context; /* cap on the served context; 0 = SLORA_MODEL_DEFAULT_CONTEXT */
};

struct slora_layer {
    const float *rms_att;            /* (dim) */
    const float *rms_ffn;            /* (dim) */
    const float *bias[3];            /* q (dim), k (kv_dim), v (kv_dim); NULL without biases */
    struct slora_tensor w[SLORA_MOD_COUNT]; /* (rows, cols) per slora_arch_module_dims */
};

struct slora_model {
    struct slora_model_config cfg;
    struct slora_tensor tok_emb;        /* (vocab, dim) */
    const float *rms_final;             /* (dim) */
    struct slora_tensor wcls;           /* (vocab, dim); tok_emb's view when shared */
    const float *rope_freqs;            /* (head_dim / 2) per-dimension divisors, or NULL */
    struct slora_layer *layers;         /* (n_layers) */
    struct slora_tokenizer *gguf_vocab; /* the file's own vocabulary (GGUF, or an HF
                                         * directory's tokenizer.json), else NULL; owned */
    const char *chat_template;          /* tokenizer.chat_template, NUL-terminated, or NULL; owned */
    const char *path;                   /* owned copy */
    size_t weight_bytes;                /* bytes of all weights as stored */
    /* private: mapping and owned buffers */
    void *map;
    size_t map_len;
    void **shards; /* (n_shards) mappings of a sharded checkpoint */
    size_t *shard_lens;
    int n_shards;
    void *owned;
    float *rope_freqs_buf; /* rope_freqs computed at load */
};

/* Load a .bin or .gguf (detected by magic), or a Hugging Face checkpoint
 * directory (config.json, model.safetensors or its sharded form with
 * model.safetensors.index.json, tokenizer.json, tokenizer_config.json);
 * opts NULL = defaults. Returns 0
 * or SLORA_E* with a diagnostic naming the file, the key or tensor and the
 * problem in diag. */
int slora_model_load(const char *path, const struct slora_model_opts *opts,
                     struct slora_model **out, char *diag, size_t diag_len);
void slora_model_free(struct slora_model *m);

/* Base matrix of (layer, module). */
const struct slora_tensor *slora_model_matrix(const struct slora_model *m, int layer,
                                              enum slora_module mod);

/* Every tensor in llama2.c .bin order: token_embd, then per kind over
 * layers (attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm,
 * ffn_gate, ffn_down, ffn_up), output_norm, and output when unshared; then
 * the biases (attn_q/k/v.bias per layer) when the model has them and
 * rope_freqs when present. name is the GGUF name; t.rows is 1 for
 * vectors. Vectors are always F32 views. */
struct slora_model_tensor {
    char name[48];
    struct slora_tensor t;
    int layer;   /* -1 for non-layer tensors */
    int module;  /* enum slora_module, or -1 for embeddings, norms and biases */
    int bias_of; /* the module (wq, wk, wv) a bias belongs to, else -1 */
};
int slora_model_n_tensors(const struct slora_model *m);
void slora_model_tensor(const struct slora_model *m, int i, struct slora_model_tensor *t);
/* Writable float data of tensor i of a model from slora_model_new_blank. */
float *slora_model_blank_data(struct slora_model *m, int i);

/* A model with zeroed F32 weights of this config (for `gen-model`), to be
 * filled through slora_model_blank_data. SLORA_EFORMAT for an invalid
 * config. */
int slora_model_new_blank(const struct slora_model_config *cfg, struct slora_model **out,
                          char *diag, size_t diag_len);
/* Give a blank model a rope_freqs tensor (head_dim / 2 divisors, all 1.0
 * until filled through slora_model_blank_data): Llama 3's RoPE scaling. */
int slora_model_blank_add_rope_freqs(struct slora_model *m);
/* Is any matrix or the embeddings in a block-quantized type? */
bool slora_model_is_quantized(const struct slora_model *m);
/* Row r (GGUF order) of module mod is row slora_model_native_row(m, mod, r)
 * of the loaded matrix: the identity except for wq/wk of a model with
 * qk_rotate_half, where GGUF's interleaved pair (2i, 2i + 1) of a head is
 * HF's (i, i + head_dim / 2). */
int64_t slora_model_native_row(const struct slora_model *m, enum slora_module mod, int64_t r);
/* Reorder the rows of a (rows, cols) float matrix of module mod from GGUF
 * order into the loaded order (a no-op unless qk_rotate_half). row is
 * scratch of rows * cols floats; returns false when rows do not hold whole
 * heads. */
bool slora_model_native_rows(const struct slora_model *m, enum slora_module mod, float *w,
                             int64_t rows, int64_t cols, float *scratch);
/* Check a config as the loaders do (shapes, ranges, RoPE); diag names the
 * field. */
int slora_model_check_config(const char *path, const struct slora_model_config *c, char *diag,
                             size_t diag_len);

#endif
