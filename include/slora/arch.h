/* arch.h - the llama2.c architecture's shape vocabulary, shared by the model
 * loader, the adapter parser and the delta maths. Pure data, no I/O.
 *
 * Matrices are row-major (out, in) so that y = W x.
 */
#ifndef SLORA_ARCH_H
#define SLORA_ARCH_H

#include <stdbool.h>
#include <stdint.h>

enum slora_module {
    SLORA_MOD_WQ, /* (dim, dim) */
    SLORA_MOD_WK, /* (kv_dim, dim) */
    SLORA_MOD_WV, /* (kv_dim, dim) */
    SLORA_MOD_WO, /* (dim, dim) */
    SLORA_MOD_W1, /* (hidden_dim, dim) */
    SLORA_MOD_W2, /* (dim, hidden_dim) */
    SLORA_MOD_W3, /* (hidden_dim, dim) */
    SLORA_MOD_COUNT
};

/* Base model hyper-parameters as the adapter spec compares them. */
struct slora_shape {
    int dim;
    int hidden_dim;
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int vocab_size; /* always positive here */
};

/* llama2.c name of a module ("wq"...). */
const char *slora_arch_module_name(enum slora_module m);
/* Parse "wq" or its HF alias "q_proj"; returns -1 when unknown. */
int slora_arch_module_parse(const char *name);
/* Rows and columns of module m in a model of this shape. */
void slora_arch_module_dims(const struct slora_shape *s, enum slora_module m, int64_t *rows,
                            int64_t *cols);
/* kv_dim = dim / n_heads * n_kv_heads. */
int slora_arch_kv_dim(const struct slora_shape *s);
bool slora_arch_shape_equal(const struct slora_shape *a, const struct slora_shape *b);

#endif
