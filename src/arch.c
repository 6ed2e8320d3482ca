/* arch.c - module names and shapes of the llama2.c architecture. */
#include <slora/arch.h>

#include <string.h>

static const char *const names[SLORA_MOD_COUNT] = {"wq", "wk", "wv", "wo", "w1", "w2", "w3"};
static const char *const hf_names[SLORA_MOD_COUNT] = {"q_proj", "k_proj",    "v_proj", "o_proj",
                                                      "gate_proj", "down_proj", "up_proj"};

const char *slora_arch_module_name(enum slora_module m)
{
    return (unsigned)m < SLORA_MOD_COUNT ? names[m] : "?";
}

int slora_arch_module_parse(const char *name)
{
    for (int m = 0; m < SLORA_MOD_COUNT; m++)
        if (!strcmp(name, names[m]) || !strcmp(name, hf_names[m]))
            return m;
    return -1;
}

int slora_arch_kv_dim(const struct slora_shape *s)
{
    return s->dim / s->n_heads * s->n_kv_heads;
}

void slora_arch_module_dims(const struct slora_shape *s, enum slora_module m, int64_t *rows,
                            int64_t *cols)
{
    int64_t dim = s->dim, kv = slora_arch_kv_dim(s), hid = s->hidden_dim;
    switch (m) {
    case SLORA_MOD_WK:
    case SLORA_MOD_WV:
        *rows = kv, *cols = dim;
        break;
    case SLORA_MOD_W1:
    case SLORA_MOD_W3:
        *rows = hid, *cols = dim;
        break;
    case SLORA_MOD_W2:
        *rows = dim, *cols = hid;
        break;
    default:
        *rows = dim, *cols = dim;
        break;
    }
}

bool slora_arch_shape_equal(const struct slora_shape *a, const struct slora_shape *b)
{
    return a->dim == b->dim && a->hidden_dim == b->hidden_dim && a->n_layers == b->n_layers &&
           a->n_heads == b->n_heads && a->n_kv_heads == b->n_kv_heads &&
           a->vocab_size == b->vocab_size;
}
