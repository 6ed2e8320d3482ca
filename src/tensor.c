/* tensor.c - element type traits (see tensor.h). Block sizes are ggml's:
 * QK = 32 for the legacy quants, QK_K = 256 for the K-quants. */
#include <slora/tensor.h>

#include <strings.h>

struct traits {
    const char *name;
    int64_t block_elems;
    size_t block_bytes;
    bool weight;
};

static const struct traits traits[SLORA_DTYPE_COUNT] = {
    [SLORA_DTYPE_F32] = {"F32", 1, 4, true},
    [SLORA_DTYPE_F16] = {"F16", 1, 2, true},
    /* f16 d; u8 qs[16] */
    [SLORA_DTYPE_Q4_0] = {"Q4_0", 32, 2 + 16, true},
    /* f16 d, m; u8 qs[16] */
    [SLORA_DTYPE_Q4_1] = {"Q4_1", 32, 4 + 16, true},
    /* f16 d; u8 qh[4]; u8 qs[16] */
    [SLORA_DTYPE_Q5_0] = {"Q5_0", 32, 2 + 4 + 16, true},
    /* f16 d, m; u8 qh[4]; u8 qs[16] */
    [SLORA_DTYPE_Q5_1] = {"Q5_1", 32, 4 + 4 + 16, true},
    /* f16 d; i8 qs[32] */
    [SLORA_DTYPE_Q8_0] = {"Q8_0", 32, 2 + 32, true},
    /* f16 d, s; i8 qs[32] */
    [SLORA_DTYPE_Q8_1] = {"Q8_1", 32, 4 + 32, false},
    /* f16 d, dmin; u8 scales[12]; u8 qs[128] */
    [SLORA_DTYPE_Q4_K] = {"Q4_K", 256, 4 + 12 + 128, true},
    /* f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128] */
    [SLORA_DTYPE_Q5_K] = {"Q5_K", 256, 4 + 12 + 32 + 128, true},
    /* u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d */
    [SLORA_DTYPE_Q6_K] = {"Q6_K", 256, 128 + 64 + 16 + 2, true},
    /* f32 d; i8 qs[256]; i16 bsums[16] */
    [SLORA_DTYPE_Q8_K] = {"Q8_K", 256, 4 + 256 + 32, false},
    [SLORA_DTYPE_BF16] = {"BF16", 1, 2, true},
};

bool slora_dtype_is_known(uint32_t t)
{
    return t < SLORA_DTYPE_COUNT && traits[t].name;
}

bool slora_dtype_is_weight(uint32_t t)
{
    return slora_dtype_is_known(t) && traits[t].weight;
}

const char *slora_dtype_name(uint32_t t)
{
    return slora_dtype_is_known(t) ? traits[t].name : "?";
}

int slora_dtype_parse(const char *name)
{
    for (int t = 0; t < SLORA_DTYPE_COUNT; t++)
        if (traits[t].name && !strcasecmp(traits[t].name, name))
            return t;
    return -1;
}

int64_t slora_dtype_block_elems(uint32_t t)
{
    return slora_dtype_is_known(t) ? traits[t].block_elems : 0;
}

size_t slora_dtype_block_bytes(uint32_t t)
{
    return slora_dtype_is_known(t) ? traits[t].block_bytes : 0;
}

size_t slora_dtype_row_bytes(uint32_t t, int64_t cols)
{
    if (!slora_dtype_is_known(t) || cols < 1 || cols % traits[t].block_elems)
        return 0;
    return (size_t)(cols / traits[t].block_elems) * traits[t].block_bytes;
}

bool slora_tensor_init(struct slora_tensor *v, uint32_t type, const void *data, int64_t rows,
                       int64_t cols)
{
    size_t rb = slora_dtype_row_bytes(type, cols);
    if (!rb || rows < 1)
        return false;
    v->type = (enum slora_dtype)type;
    v->data = data;
    v->rows = rows;
    v->cols = cols;
    v->row_bytes = rb;
    return true;
}
