/* gguf.h - a GGUF v2/v3 reader over a caller's buffer, and a writer.
 *
 * File layout (little-endian), as ggml's gguf.h documents it:
 *   magic "GGUF" | u32 version (2, 3) | u64 n_tensors | u64 n_kv
 *   n_kv x { string key | u32 type | value }
 *       string = u64 length | bytes (no NUL); array = u32 type | u64 n | n values
 *   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 type | u64 offset }
 *   padding to general.alignment (u32, power of two, default 32)
 *   tensor data; each offset is relative to the data start, aligned, and
 *   tensors follow each other in order, each padded to the alignment.
 * ne[0] is the innermost dimension: a row-major (rows, cols) matrix has
 * ne = {cols, rows}.
 *
 * The reader validates everything like ggml's gguf reader (counts against
 * the bytes left, string lengths, types, alignment, duplicates, offsets and
 * sizes inside the buffer) and keeps pointers into the buffer, which must
 * outlive it. Reader and writer are single-threaded objects.
 */
#ifndef SLORA_GGUF_H
#define SLORA_GGUF_H

#include <slora/tensor.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum slora_gguf_type {
    SLORA_GGUF_U8 = 0,
    SLORA_GGUF_I8 = 1,
    SLORA_GGUF_U16 = 2,
    SLORA_GGUF_I16 = 3,
    SLORA_GGUF_U32 = 4,
    SLORA_GGUF_I32 = 5,
    SLORA_GGUF_F32 = 6,
    SLORA_GGUF_BOOL = 7,
    SLORA_GGUF_STRING = 8,
    SLORA_GGUF_ARRAY = 9,
    SLORA_GGUF_U64 = 10,
    SLORA_GGUF_I64 = 11,
    SLORA_GGUF_F64 = 12,
    SLORA_GGUF_TYPE_COUNT
};


#define SLORA_GGUF_MAX_DIMS 4
#define SLORA_GGUF_DEFAULT_ALIGNMENT 32

struct slora_gguf_kv {
    const char *key; /* not NUL-terminated */
    size_t key_len;
    uint32_t type;        /* enum slora_gguf_type */
    uint32_t arr_type;    /* element type when type == ARRAY */
    uint64_t n;           /* element count for arrays, else 1 */
    const uint8_t *value; /* first byte of the value (after the array header) */
};

struct slora_gguf_tensor {
    const char *name; /* not NUL-terminated */
    size_t name_len;
    uint32_t n_dims;
    uint64_t ne[SLORA_GGUF_MAX_DIMS]; /* unused dims are 1 */
    uint32_t dtype;                   /* enum slora_dtype (tensor.h); any known type */
    uint64_t offset;                  /* relative to the data section */
    const uint8_t *data;
    size_t nbytes;
};

struct slora_gguf {
    uint32_t version;
    size_t alignment;
    size_t n_kv;
    struct slora_gguf_kv *kv; /* (n_kv), owned */
    size_t n_tensors;
    struct slora_gguf_tensor *tensors; /* (n_tensors), owned */
    size_t data_offset;                /* start of the data section in the buffer */
};

/* Parse buf (len bytes). On error returns SLORA_EFORMAT (or SLORA_EUNSUPPORTED,
 * SLORA_ENOMEM) and says what and at which byte offset in diag. */
int slora_gguf_parse(const uint8_t *buf, size_t len, struct slora_gguf **out, char *diag,
                     size_t diag_len);
void slora_gguf_free(struct slora_gguf *g);

/* Lookups; NULL when absent. */
const struct slora_gguf_kv *slora_gguf_find_kv(const struct slora_gguf *g, const char *key);
const struct slora_gguf_tensor *slora_gguf_find_tensor(const struct slora_gguf *g,
                                                       const char *name);
/* Scalar integer of any integer type; SLORA_ENOTFOUND or SLORA_EFORMAT. */
int slora_gguf_get_int(const struct slora_gguf *g, const char *key, int64_t *out);
/* Number of type F32, F64 or any integer type, finite; SLORA_ENOTFOUND or
 * SLORA_EFORMAT. */
int slora_gguf_get_float(const struct slora_gguf *g, const char *key, double *out);
/* BOOL value; SLORA_ENOTFOUND or SLORA_EFORMAT. */
int slora_gguf_get_bool(const struct slora_gguf *g, const char *key, bool *out);
/* String value (not NUL-terminated); SLORA_ENOTFOUND or SLORA_EFORMAT. */
int slora_gguf_get_str(const struct slora_gguf *g, const char *key, const char **s, size_t *len);
/* Element i of an array of strings already validated by the parser. */
const char *slora_gguf_array_str(const struct slora_gguf_kv *kv, uint64_t i, size_t *len);
/* Element i of an F32 array. */
float slora_gguf_array_f32(const struct slora_gguf_kv *kv, uint64_t i);


/* Writer: collects key/values and tensors, then writes the file at once.
 * Borrowed tensor data must stay valid until slora_gguf_writer_write. */
struct slora_gguf_writer;
struct slora_gguf_writer *slora_gguf_writer_new(uint32_t version, size_t alignment);
void slora_gguf_writer_free(struct slora_gguf_writer *w);
int slora_gguf_writer_add_u32(struct slora_gguf_writer *w, const char *key, uint32_t v);
int slora_gguf_writer_add_f32(struct slora_gguf_writer *w, const char *key, float v);
int slora_gguf_writer_add_bool(struct slora_gguf_writer *w, const char *key, bool v);
int slora_gguf_writer_add_str(struct slora_gguf_writer *w, const char *key, const char *s);
/* Array of n strings (lens[i] bytes each). */
int slora_gguf_writer_add_str_array(struct slora_gguf_writer *w, const char *key,
                                    const char *const *s, const size_t *lens, size_t n);
/* Array of n fixed-size values of type elem (e.g. F32, I32). */
int slora_gguf_writer_add_array(struct slora_gguf_writer *w, const char *key, uint32_t elem,
                                const void *values, size_t n);
/* A (rows, cols) F32 matrix (rows 1 for vectors) stored as dtype. */
int slora_gguf_writer_add_tensor(struct slora_gguf_writer *w, const char *name, const float *data,
                                 int64_t rows, int64_t cols, int n_dims, uint32_t dtype);
/* A typed tensor stored as dtype: its bytes as they are when dtype is its
 * type, else converted row by row through floats (quant.h's reference
 * quantizers for block types; SLORA_EINVAL when dtype's block does not
 * divide the columns). With row_map (borrowed until the write), written
 * row i is t's row row_map[i]. */
int slora_gguf_writer_add_typed(struct slora_gguf_writer *w, const char *name,
                                const struct slora_tensor *t, int n_dims, uint32_t dtype,
                                const int64_t *row_map);
/* Threads converting tensors between types at write time (default 1; the
 * bytes written do not depend on it). */
void slora_gguf_writer_set_threads(struct slora_gguf_writer *w, int n_threads);
/* Copy a key/value pair of a parsed file verbatim (kv from slora_gguf_find_kv
 * or the kv array). */
int slora_gguf_writer_add_kv(struct slora_gguf_writer *w, const struct slora_gguf_kv *kv);
int slora_gguf_writer_write(struct slora_gguf_writer *w, const char *path, char *diag,
                            size_t diag_len);

#endif
