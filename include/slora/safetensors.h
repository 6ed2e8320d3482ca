/* safetensors.h - a validating reader and an F32 writer for safetensors files.
 *
 * Layout: bytes 0..7 hold the header length H (little-endian u64); bytes
 * 8..8+H hold a JSON object mapping tensor name -> {"dtype", "shape",
 * "data_offsets": [begin, end]} plus an optional "__metadata__" object; the
 * data buffer follows. Offsets are relative to the data buffer.
 *
 * slora_st_parse checks everything a hostile file can get wrong before any
 * allocation proportional to the data: the header length against the file and
 * a 16 MiB cap, JSON syntax with duplicate keys rejected, dtypes, shapes
 * (products overflow-checked), and that the tensors cover the data buffer
 * exactly (in range, matching shape x dtype, no overlap, no gap, no trailing
 * bytes). The parsed object borrows the caller's buffer for tensor data and
 * owns the names and metadata strings. It is immutable: any thread may read it.
 */
#ifndef SLORA_SAFETENSORS_H
#define SLORA_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SLORA_ST_MAX_HEADER (16u << 20) /* header bytes */
#define SLORA_ST_MAX_DIMS 16

enum slora_st_dtype { SLORA_ST_F32, SLORA_ST_F16, SLORA_ST_BF16 };

struct slora_st_tensor {
    char *name; /* owned by the slora_st */
    enum slora_st_dtype dtype;
    int n_dims;
    int64_t shape[SLORA_ST_MAX_DIMS]; /* (shape[0], ..., shape[n_dims-1]) */
    int64_t n_elems;                  /* product of shape (1 for a scalar) */
    const void *data;                 /* view into the parsed buffer, n_bytes long */
    size_t n_bytes;
    size_t file_offset; /* absolute byte offset of data in the file */
};

struct slora_st_meta {
    char *key;
    char *value; /* NULL when the JSON value is not a string */
};

struct slora_st {
    int n_tensors;
    struct slora_st_tensor *tensors; /* (n_tensors) in header order */
    int n_meta;
    struct slora_st_meta *meta; /* (n_meta) the __metadata__ entries */
    size_t data_offset;         /* absolute offset of the data buffer */
};

/* Parse and validate buf (len bytes). *out borrows buf for tensor data: buf
 * must outlive it. Returns 0, SLORA_EFORMAT (including a dtype other than
 * F32/F16/BF16), SLORA_ELIMIT (header over 16 MiB, rank over
 * SLORA_ST_MAX_DIMS) or SLORA_ENOMEM: a bad file is 422 to an uploader,
 * never 400. diag names the key, tensor or byte offset. */
int slora_st_parse(const void *buf, size_t len, struct slora_st **out, char *diag, size_t diag_len);
void slora_st_free(struct slora_st *st);

/* Tensor by name, or NULL. */
const struct slora_st_tensor *slora_st_find(const struct slora_st *st, const char *name);
/* __metadata__ entry: 0 and *value (NULL when not a JSON string), or
 * SLORA_ENOTFOUND. */
int slora_st_meta_get(const struct slora_st *st, const char *key, const char **value);

/* Convert t's n_elems values to float32 (little-endian F32/F16/BF16). */
void slora_st_to_f32(const struct slora_st_tensor *t, float *out);

/* One tensor to write: F32 data (n_elems floats) borrowed for the call. */
struct slora_st_out {
    const char *name;
    int n_dims;
    int64_t shape[SLORA_ST_MAX_DIMS];
    const float *data;
};

/* Write an F32 safetensors file to f: the header (tensors in the given
 * order, contiguous; metadata as string pairs, may be NULL/0) padded with
 * spaces to 8 bytes, then the data. Returns 0, SLORA_EIO or SLORA_ENOMEM. */
int slora_st_write(FILE *f, const struct slora_st_out *ts, int n, const char *const *meta_kv,
                   int n_meta);

#endif
