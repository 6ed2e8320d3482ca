/* model_write.h - write a model as a llama2.c legacy .bin or as a GGUF that
 * llama.cpp loads (the offline tools: convert, gen-model, merge, quantize).
 *
 * Single-threaded; the model (and any replacement matrices) are only read.
 */
#ifndef SLORA_MODEL_WRITE_H
#define SLORA_MODEL_WRITE_H

#include <slora/gguf.h>
#include <slora/model.h>

struct slora_tokenizer;

/* Write llama2.c legacy .bin (arch llama without biases or rope_freqs,
 * tensors of type F32, F16 or BF16, written as F32), with the matrices of
 * replace[layer * SLORA_MOD_COUNT + module] substituted where non-NULL
 * (replace NULL = base weights; used by `slorad merge`). */
int slora_model_write_bin(const struct slora_model *m, const float *const *replace,
                          const char *path, char *diag, size_t diag_len);

struct slora_model_write_opts {
    int version; /* GGUF 2 or 3; 0 = 3 */
    int dtype;   /* matrices' and embeddings' type as written (enum slora_dtype), or -1 to keep */
    /* per tensor (slora_model_tensor's numbering) type of each matrix and
     * embedding as written, overriding dtype; NULL = dtype for all. With
     * types, general.file_type (llama.cpp's llama_ftype number) and
     * general.quantization_version are written too. */
    const uint32_t *types;
    int file_type;
    int n_threads; /* converting tensors (0 = 1) */
    const struct slora_tokenizer *tok;   /* llama2.c vocabulary to write, or NULL */
    const struct slora_gguf *vocab_from; /* copy its tokenizer.* keys verbatim, or NULL */
    const char *name;                    /* general.name; NULL = the architecture */
};

/* Write GGUF with every hyper-parameter of m->cfg under llama.cpp's keys
 * (vectors stay F32). At most one of tok and vocab_from. */
int slora_model_write_gguf(const struct slora_model *m, const struct slora_model_write_opts *o,
                           const char *path, char *diag, size_t diag_len);

#endif
