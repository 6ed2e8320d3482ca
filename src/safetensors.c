/* safetensors.c - validating safetensors reader and F32 writer.
 *
 * The reader never trusts a count or an offset from the file: the header
 * length is checked against the file and SLORA_ST_MAX_HEADER before jansson
 * sees it, shape products are overflow-checked, and the tensors must tile the
 * data buffer exactly. Allocations are proportional to the header only.
 */
#include "internal.h"

#include <slora/error.h>
#include <slora/quant.h>
#include <slora/safetensors.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static size_t dtype_size(enum slora_st_dtype d)
{
    return d == SLORA_ST_F32 ? 4 : 2;
}

static int parse_dtype(const char *s)
{
    if (!strcmp(s, "F32"))
        return SLORA_ST_F32;
    if (!strcmp(s, "F16"))
        return SLORA_ST_F16;
    if (!strcmp(s, "BF16"))
        return SLORA_ST_BF16;
    return -1;
}

/* A JSON integer in [0, INT64_MAX], or -1. */
static int64_t json_count(const json_t *v)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    return json_integer_value(v);
}

static int parse_metadata(struct slora_st *st, json_t *obj, char *diag, size_t diag_len)
{
    if (!json_is_object(obj))
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "__metadata__ is not a JSON object");
    st->meta = calloc(json_object_size(obj) + 1, sizeof(*st->meta));
    if (!st->meta)
        return slora__diag(diag, diag_len, SLORA_ENOMEM, "out of memory for __metadata__");
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        struct slora_st_meta *m = &st->meta[st->n_meta++];
        m->key = strdup(key);
        m->value = json_is_string(v) ? strdup(json_string_value(v)) : NULL;
        if (!m->key || (json_is_string(v) && !m->value))
            return slora__diag(diag, diag_len, SLORA_ENOMEM, "out of memory for __metadata__");
    }
    return 0;
}

/* Parse one tensor entry; t->data is set later from the data buffer. */
static int parse_tensor(struct slora_st_tensor *t, const char *name, json_t *obj, size_t data_len,
                        size_t data_offset, char *diag, size_t diag_len)
{
    if (!json_is_object(obj))
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "tensor '%s': entry is not a JSON object",
                           name);
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return slora__diag(diag, diag_len, SLORA_EFORMAT, "tensor '%s': unknown key '%s'", name,
                               key);
    }
    json_t *jd = json_object_get(obj, "dtype");
    if (!json_is_string(jd))
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "tensor '%s': missing or non-string dtype", name);
    int dt = parse_dtype(json_string_value(jd));
    if (dt < 0)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "tensor '%s': unsupported dtype '%s' (F32, F16, BF16 accepted)", name,
                           json_string_value(jd));
    t->dtype = dt;

    json_t *js = json_object_get(obj, "shape");
    if (!json_is_array(js))
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "tensor '%s': missing or non-array shape",
                           name);
    if (json_array_size(js) > SLORA_ST_MAX_DIMS)
        return slora__diag(diag, diag_len, SLORA_ELIMIT, "tensor '%s': rank %zu over %d", name,
                           json_array_size(js), SLORA_ST_MAX_DIMS);
    t->n_dims = (int)json_array_size(js);
    t->n_elems = 1;
    for (int i = 0; i < t->n_dims; i++) {
        int64_t d = json_count(json_array_get(js, i));
        if (d < 0)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "tensor '%s': shape[%d] is not a non-negative integer", name, i);
        t->shape[i] = d;
        if (__builtin_mul_overflow(t->n_elems, d, &t->n_elems))
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "tensor '%s': shape product overflows", name);
    }

    json_t *jo = json_object_get(obj, "data_offsets");
    int64_t b = json_array_size(jo) == 2 ? json_count(json_array_get(jo, 0)) : -1;
    int64_t e = json_array_size(jo) == 2 ? json_count(json_array_get(jo, 1)) : -1;
    if (!json_is_array(jo) || b < 0 || e < 0)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "tensor '%s': data_offsets is not [begin, end] of non-negative integers",
                           name);
    if (b > e || (uint64_t)e > data_len)
        return slora__diag(
            diag, diag_len, SLORA_EFORMAT,
            "tensor '%s': data_offsets [%lld, %lld] out of range of the %zu-byte data "
            "buffer at byte offset %zu",
            name, (long long)b, (long long)e, data_len, data_offset);
    int64_t need;
    if (__builtin_mul_overflow(t->n_elems, (int64_t)dtype_size(t->dtype), &need) || need != e - b)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "tensor '%s': data_offsets [%lld, %lld] at byte offset %zu do not match "
                           "shape x dtype (%lld elements of %zu bytes)",
                           name, (long long)b, (long long)e, data_offset + (size_t)b,
                           (long long)t->n_elems, dtype_size(t->dtype));
    t->n_bytes = (size_t)(e - b);
    t->file_offset = data_offset + (size_t)b;
    return 0;
}

static int by_offset(const void *a, const void *b)
{
    const struct slora_st_tensor *x = a, *y = b;
    if (x->file_offset != y->file_offset)
        return x->file_offset < y->file_offset ? -1 : 1;
    return x->n_bytes < y->n_bytes ? -1 : x->n_bytes > y->n_bytes;
}

/* The tensors must tile [data_offset, file_len) exactly. */
static int check_coverage(struct slora_st *st, size_t file_len, char *diag, size_t diag_len)
{
    qsort(st->tensors, (size_t)st->n_tensors, sizeof(*st->tensors), by_offset);
    size_t pos = st->data_offset;
    for (int i = 0; i < st->n_tensors; i++) {
        const struct slora_st_tensor *t = &st->tensors[i];
        if (t->file_offset < pos)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "tensor '%s' at byte offset %zu overlaps tensor '%s'", t->name,
                               t->file_offset, st->tensors[i - 1].name);
        if (t->file_offset > pos)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "gap of %zu bytes at byte offset %zu before tensor '%s'",
                               t->file_offset - pos, pos, t->name);
        pos += t->n_bytes;
    }
    if (pos != file_len)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "%zu trailing bytes at byte offset %zu not covered by any tensor",
                           file_len - pos, pos);
    return 0;
}

int slora_st_parse(const void *buf, size_t len, struct slora_st **out, char *diag, size_t diag_len)
{
    const unsigned char *p = buf;
    *out = NULL;
    if (len < 8)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "file is %zu bytes, shorter than 8 bytes (the header length)", len);
    uint64_t hlen = le64(p);
    if (hlen > SLORA_ST_MAX_HEADER)
        return slora__diag(diag, diag_len, SLORA_ELIMIT,
                           "header length %llu at byte offset 0 is over the 16 MiB limit",
                           (unsigned long long)hlen);
    if (hlen > len - 8)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "header length %llu at byte offset 0 runs beyond the %zu-byte file",
                           (unsigned long long)hlen, len);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "header is not valid JSON at byte offset %d: %s", jerr.position + 8,
                           jerr.text);
    int err;
    if (!json_is_object(root)) {
        err = slora__diag(diag, diag_len, SLORA_EFORMAT, "header is not a JSON object");
        goto err_free_json;
    }
    struct slora_st *st = calloc(1, sizeof(*st));
    if (!st) {
        err = slora__diag(diag, diag_len, SLORA_ENOMEM, "out of memory for the header");
        goto err_free_json;
    }
    st->data_offset = 8 + (size_t)hlen;
    size_t data_len = len - st->data_offset;
    st->tensors = calloc(json_object_size(root) + 1, sizeof(*st->tensors));
    if (!st->tensors) {
        err = slora__diag(diag, diag_len, SLORA_ENOMEM, "out of memory for the header");
        goto err_free_st;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (!strcmp(key, "__metadata__")) {
            err = parse_metadata(st, v, diag, diag_len);
            if (err)
                goto err_free_st;
            continue;
        }
        struct slora_st_tensor *t = &st->tensors[st->n_tensors];
        err = parse_tensor(t, key, v, data_len, st->data_offset, diag, diag_len);
        if (err)
            goto err_free_st;
        t->name = strdup(key);
        if (!t->name) {
            err = slora__diag(diag, diag_len, SLORA_ENOMEM, "out of memory for the header");
            goto err_free_st;
        }
        t->data = p + t->file_offset;
        st->n_tensors++;
    }
    err = check_coverage(st, len, diag, diag_len);
    if (err)
        goto err_free_st;
    json_decref(root);
    *out = st;
    return 0;

err_free_st:
    slora_st_free(st);
err_free_json:
    json_decref(root);
    return err;
}

void slora_st_free(struct slora_st *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->n_tensors; i++)
        free(st->tensors[i].name);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->tensors);
    free(st->meta);
    free(st);
}

const struct slora_st_tensor *slora_st_find(const struct slora_st *st, const char *name)
{
    for (int i = 0; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, name))
            return &st->tensors[i];
    return NULL;
}

int slora_st_meta_get(const struct slora_st *st, const char *key, const char **value)
{
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta[i].key, key)) {
            *value = st->meta[i].value;
            return 0;
        }
    return SLORA_ENOTFOUND;
}

static float bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

void slora_st_to_f32(const struct slora_st_tensor *t, float *out)
{
    const unsigned char *p = t->data;
    for (int64_t i = 0; i < t->n_elems; i++) {
        if (t->dtype == SLORA_ST_F32) {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                         (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
            out[i] = bits_to_f32(u);
        } else {
            uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            out[i] = t->dtype == SLORA_ST_F16 ? slora_quant_f16_to_f32(h) : slora_quant_bf16_to_f32(h);
        }
    }
}

int slora_st_write(FILE *f, const struct slora_st_out *ts, int n, const char *const *meta_kv,
                   int n_meta)
{
    json_t *root = json_object();
    if (!root)
        return SLORA_ENOMEM;
    int err = SLORA_ENOMEM;
    if (n_meta > 0) {
        json_t *meta = json_object();
        if (json_object_set_new(root, "__metadata__", meta))
            goto err_free_json;
        for (int i = 0; i < n_meta; i++)
            if (json_object_set_new(meta, meta_kv[2 * i], json_string(meta_kv[2 * i + 1])))
                goto err_free_json;
    }
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        int64_t elems = 1;
        json_t *shape = json_array();
        for (int d = 0; d < ts[i].n_dims; d++) {
            elems *= ts[i].shape[d];
            json_array_append_new(shape, json_integer(ts[i].shape[d]));
        }
        json_t *t = json_pack("{s:s, s:o, s:[I, I]}", "dtype", "F32", "shape", shape,
                              "data_offsets", (json_int_t)off, (json_int_t)(off + 4 * elems));
        if (!t || json_object_set_new(root, ts[i].name, t))
            goto err_free_json;
        off += 4 * elems;
    }
    char *hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!hdr)
        goto err_free_json;
    size_t hlen = strlen(hdr), padded = (hlen + 7) & ~(size_t)7;
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    err = SLORA_EIO;
    bool ok = fwrite(lenbuf, 1, 8, f) == 8 && fwrite(hdr, 1, hlen, f) == hlen;
    for (size_t i = hlen; ok && i < padded; i++)
        ok = fputc(' ', f) != EOF;
    /* float32 data is written as the host stores it: little-endian hosts only */
    for (int i = 0; ok && i < n; i++) {
        size_t elems = 1;
        for (int d = 0; d < ts[i].n_dims; d++)
            elems *= (size_t)ts[i].shape[d];
        ok = fwrite(ts[i].data, sizeof(float), elems, f) == elems;
    }
    free(hdr);
    if (ok)
        err = 0;
err_free_json:
    json_decref(root);
    return err;
}
