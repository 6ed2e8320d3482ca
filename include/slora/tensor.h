/* tensor.h - typed weight tensors: element types as ggml numbers them, and
 * a (type, data, rows, cols) view that the matmul dispatches on.
 *
 * A block-quantized type stores each row as cols / block_elems blocks of
 * block_bytes bytes (ggml's layouts, documented field by field in quant.h);
 * a row never straddles a block. Type ids equal GGUF's tensor type ids, so
 * a GGUF tensor's type needs no translation.
 * Pure data and lookups; any thread may call them.
 */
#ifndef SLORA_TENSOR_H
#define SLORA_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum slora_dtype {
    SLORA_DTYPE_F32 = 0,
    SLORA_DTYPE_F16 = 1,
    SLORA_DTYPE_Q4_0 = 2,
    SLORA_DTYPE_Q4_1 = 3,
    SLORA_DTYPE_Q5_0 = 6,
    SLORA_DTYPE_Q5_1 = 7,
    SLORA_DTYPE_Q8_0 = 8,
    SLORA_DTYPE_Q8_1 = 9, /* activations only (the Q4_1/Q5_1 dots) */
    SLORA_DTYPE_Q4_K = 12,
    SLORA_DTYPE_Q5_K = 13,
    SLORA_DTYPE_Q6_K = 14,
    SLORA_DTYPE_Q8_K = 15, /* activations only (the K-quant dots) */
    SLORA_DTYPE_BF16 = 30,
    SLORA_DTYPE_COUNT = 31
};

/* A row-major (rows, cols) matrix; row r starts at data + r * row_bytes.
 * Borrowed view: whoever owns data (the model's mmap, a cache entry)
 * outlives it. */
struct slora_tensor {
    enum slora_dtype type;
    const void *data;
    int64_t rows;
    int64_t cols;
    size_t row_bytes; /* slora_dtype_row_bytes(type, cols) */
};

/* Is t a type this project knows (any of the enum's named values)? */
bool slora_dtype_is_known(uint32_t t);
/* May a model weight be stored as t? (Known and not activation-only.) */
bool slora_dtype_is_weight(uint32_t t);
/* "F32", "Q4_K", ...; "?" for unknown ids. */
const char *slora_dtype_name(uint32_t t);
/* Inverse of slora_dtype_name, case-insensitive; -1 when unknown. */
int slora_dtype_parse(const char *name);
/* Elements per block (1 for F32/F16/BF16, 32 or 256 for quantized types)
 * and bytes per block; 0 for unknown ids. */
int64_t slora_dtype_block_elems(uint32_t t);
size_t slora_dtype_block_bytes(uint32_t t);
/* Bytes of one row of cols elements; 0 when t is unknown, cols < 1 or cols
 * is not a multiple of the block size. */
size_t slora_dtype_row_bytes(uint32_t t, int64_t cols);
/* Fill a view; returns false (and leaves *v untouched) when row_bytes would
 * be 0 or rows < 1. */
bool slora_tensor_init(struct slora_tensor *v, uint32_t type, const void *data, int64_t rows,
                       int64_t cols);

#endif
