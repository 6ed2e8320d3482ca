/* gguf.c - GGUF v2/v3 reader and writer (layout in include/slora/gguf.h).
 *
 * The reader never trusts a count or an offset: every read is checked
 * against the bytes left, every allocation against what the file could hold.
 */
#include <slora/error.h>
#include <slora/fsio.h>
#include <slora/gguf.h>
#include <slora/parallel.h>
#include <slora/quant.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t magic[4] = {'G', 'G', 'U', 'F'};

/* Bytes per scalar value; 0 for STRING and ARRAY (variable size). */
static const size_t type_size[SLORA_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

struct cursor {
    const uint8_t *buf;
    size_t len;
    size_t off;
    char *diag;
    size_t diag_len;
};

__attribute__((format(printf, 3, 4))) static int fail(struct cursor *c, int err, const char *fmt,
                                                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->diag, c->diag_len, fmt, ap);
    va_end(ap);
    return err;
}

static int need(struct cursor *c, size_t n, const char *what)
{
    if (n > c->len - c->off)
        return fail(c, SLORA_EFORMAT, "truncated: %s needs %zu bytes at offset %zu, %zu left", what,
                    n, c->off, c->len - c->off);
    return 0;
}

static int read_u32(struct cursor *c, uint32_t *v, const char *what)
{
    int rc = need(c, 4, what);
    if (rc)
        return rc;
    memcpy(v, c->buf + c->off, 4);
    c->off += 4;
    return 0;
}

static int read_u64(struct cursor *c, uint64_t *v, const char *what)
{
    int rc = need(c, 8, what);
    if (rc)
        return rc;
    memcpy(v, c->buf + c->off, 8);
    c->off += 8;
    return 0;
}

static int read_str(struct cursor *c, const char **s, size_t *len, const char *what)
{
    uint64_t n;
    int rc = read_u64(c, &n, what);
    if (rc)
        return rc;
    if (n > c->len - c->off)
        return fail(c, SLORA_EFORMAT,
                    "%s: string length %llu at offset %zu exceeds the %zu bytes left", what,
                    (unsigned long long)n, c->off - 8, c->len - c->off);
    *s = (const char *)c->buf + c->off;
    *len = n;
    c->off += n;
    return 0;
}

static int parse_value(struct cursor *c, struct slora_gguf_kv *kv)
{
    int key_len = kv->key_len > 200 ? 200 : (int)kv->key_len;
    if (kv->type >= SLORA_GGUF_TYPE_COUNT)
        return fail(c, SLORA_EFORMAT, "key '%.*s' has invalid type %u", key_len, kv->key, kv->type);
    kv->n = 1;
    if (kv->type == SLORA_GGUF_ARRAY) {
        int rc = read_u32(c, &kv->arr_type, "array type");
        if (!rc)
            rc = read_u64(c, &kv->n, "array length");
        if (rc)
            return rc;
        if (kv->arr_type >= SLORA_GGUF_TYPE_COUNT || kv->arr_type == SLORA_GGUF_ARRAY)
            return fail(c, SLORA_EFORMAT, "key '%.*s' has invalid array element type %u", key_len,
                        kv->key, kv->arr_type);
    }
    uint32_t elem = kv->type == SLORA_GGUF_ARRAY ? kv->arr_type : kv->type;
    kv->value = c->buf + c->off;
    if (elem == SLORA_GGUF_STRING) {
        if (kv->n > (c->len - c->off) / 8)
            return fail(c, SLORA_EFORMAT, "key '%.*s': %llu strings cannot fit in %zu bytes",
                        key_len, kv->key, (unsigned long long)kv->n, c->len - c->off);
        for (uint64_t i = 0; i < kv->n; i++) {
            const char *s;
            size_t len;
            int rc = read_str(c, &s, &len, "string value");
            if (rc)
                return rc;
        }
        return 0;
    }
    if (kv->n > (c->len - c->off) / type_size[elem])
        return fail(c, SLORA_EFORMAT,
                    "key '%.*s': %llu values of %zu bytes exceed the %zu bytes left", key_len,
                    kv->key, (unsigned long long)kv->n, type_size[elem], c->len - c->off);
    c->off += kv->n * type_size[elem];
    return 0;
}

static bool name_eq(const char *a, size_t a_len, const char *b, size_t b_len)
{
    return a_len == b_len && !memcmp(a, b, a_len);
}

static int parse_kvs(struct cursor *c, struct slora_gguf *g)
{
    for (size_t i = 0; i < g->n_kv; i++) {
        struct slora_gguf_kv *kv = &g->kv[i];
        int rc = read_str(c, &kv->key, &kv->key_len, "key");
        if (!rc)
            rc = read_u32(c, &kv->type, "value type");
        if (!rc)
            rc = parse_value(c, kv);
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (name_eq(g->kv[j].key, g->kv[j].key_len, kv->key, kv->key_len))
                return fail(c, SLORA_EFORMAT, "duplicate key '%.*s'", (int)kv->key_len, kv->key);
    }
    const struct slora_gguf_kv *al = slora_gguf_find_kv(g, "general.alignment");
    g->alignment = SLORA_GGUF_DEFAULT_ALIGNMENT;
    if (al) {
        uint32_t a;
        if (al->type != SLORA_GGUF_U32)
            return fail(c, SLORA_EFORMAT, "general.alignment has type %u, expected u32", al->type);
        memcpy(&a, al->value, 4);
        if (a == 0 || (a & (a - 1)))
            return fail(c, SLORA_EFORMAT, "general.alignment %u is not a power of two", a);
        g->alignment = a;
    }
    return 0;
}

static int parse_tensor_info(struct cursor *c, struct slora_gguf *g, size_t i)
{
    struct slora_gguf_tensor *t = &g->tensors[i];
    int rc = read_str(c, &t->name, &t->name_len, "tensor name");
    if (!rc)
        rc = read_u32(c, &t->n_dims, "tensor n_dims");
    if (rc)
        return rc;
    int nl = t->name_len > 200 ? 200 : (int)t->name_len;
    if (t->n_dims < 1 || t->n_dims > SLORA_GGUF_MAX_DIMS)
        return fail(c, SLORA_EFORMAT, "tensor '%.*s' has %u dimensions (1..%d allowed)", nl,
                    t->name, t->n_dims, SLORA_GGUF_MAX_DIMS);
    uint64_t elems = 1;
    for (uint32_t d = 0; d < SLORA_GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if (d < t->n_dims && (rc = read_u64(c, &t->ne[d], "tensor dimension")))
            return rc;
        if (t->ne[d] == 0 || t->ne[d] > INT64_MAX / elems)
            return fail(c, SLORA_EFORMAT,
                        "tensor '%.*s' dimension %u is %llu: empty or overflowing", nl, t->name, d,
                        (unsigned long long)t->ne[d]);
        elems *= t->ne[d];
    }
    if ((rc = read_u32(c, &t->dtype, "tensor type")) ||
        (rc = read_u64(c, &t->offset, "tensor offset")))
        return rc;
    if (!slora_dtype_is_known(t->dtype))
        return fail(c, SLORA_EUNSUPPORTED, "tensor '%.*s' has unknown type id %u", nl, t->name,
                    t->dtype);
    size_t row_bytes = slora_dtype_row_bytes(t->dtype, (int64_t)t->ne[0]);
    if (!row_bytes)
        return fail(c, SLORA_EFORMAT,
                    "tensor '%.*s' of type %s has %llu columns, not a multiple of its block of %lld",
                    nl, t->name, slora_dtype_name(t->dtype), (unsigned long long)t->ne[0],
                    (long long)slora_dtype_block_elems(t->dtype));
    uint64_t n_rows = elems / t->ne[0];
    if (n_rows > SIZE_MAX / row_bytes)
        return fail(c, SLORA_EFORMAT, "tensor '%.*s' is too large", nl, t->name);
    t->nbytes = (size_t)n_rows * row_bytes;
    for (size_t j = 0; j < i; j++)
        if (name_eq(g->tensors[j].name, g->tensors[j].name_len, t->name, t->name_len))
            return fail(c, SLORA_EFORMAT, "duplicate tensor name '%.*s'", nl, t->name);
    return 0;
}

/* Offsets must be aligned and consecutive (ggml requires the same), and
 * every tensor must lie inside the buffer. */
static int place_tensors(struct cursor *c, struct slora_gguf *g)
{
    size_t a = g->alignment;
    if (!g->n_tensors) { /* a vocabulary-only file may end right after its keys */
        g->data_offset = c->off;
        return 0;
    }
    if (c->off > SIZE_MAX - a || (c->off + a - 1) / a * a > c->len)
        return fail(c, SLORA_EFORMAT,
                    "truncated: data section would start past the end (%zu bytes)", c->len);
    g->data_offset = (c->off + a - 1) / a * a;
    size_t expect = 0;
    for (size_t i = 0; i < g->n_tensors; i++) {
        struct slora_gguf_tensor *t = &g->tensors[i];
        int nl = t->name_len > 200 ? 200 : (int)t->name_len;
        if (t->offset % a)
            return fail(c, SLORA_EFORMAT,
                        "tensor '%.*s' offset %llu is not a multiple of the alignment %zu", nl,
                        t->name, (unsigned long long)t->offset, a);
        if (t->offset != expect && !i)
            return fail(c, SLORA_EFORMAT, "tensor '%.*s' has offset %llu, expected %zu", nl,
                        t->name, (unsigned long long)t->offset, expect);
        if (t->offset != expect) {
            /* either this offset or the previous tensor's type or shape lies */
            const struct slora_gguf_tensor *p = t - 1;
            return fail(c, SLORA_EFORMAT,
                        "tensor '%.*s' has offset %llu, expected %zu: the end of tensor '%.*s' "
                        "(%s, %llu x %llu elements, %zu bytes) rounded up to the alignment %zu",
                        nl, t->name, (unsigned long long)t->offset, expect,
                        p->name_len > 200 ? 200 : (int)p->name_len, p->name,
                        slora_dtype_name(p->dtype), (unsigned long long)p->ne[0],
                        (unsigned long long)(p->ne[1] * p->ne[2] * p->ne[3]), p->nbytes, a);
        }
        size_t room = c->len - g->data_offset;
        if (t->offset > room || t->nbytes > room - t->offset)
            return fail(c, SLORA_EFORMAT,
                        "truncated: tensor '%.*s' needs bytes [%zu, %zu) but the file has %zu", nl,
                        t->name, g->data_offset + (size_t)t->offset,
                        g->data_offset + (size_t)t->offset + t->nbytes, c->len);
        t->data = c->buf + g->data_offset + t->offset;
        expect = t->offset + (t->nbytes + a - 1) / a * a;
    }
    return 0;
}

int slora_gguf_parse(const uint8_t *buf, size_t len, struct slora_gguf **out, char *diag,
                     size_t diag_len)
{
    struct cursor c = {buf, len, 0, diag, diag_len};
    uint32_t version;
    uint64_t n_tensors, n_kv;
    int rc = need(&c, 4, "magic");
    if (rc)
        return rc;
    if (memcmp(buf, magic, 4))
        return fail(&c, SLORA_EFORMAT, "bad magic (not a GGUF file)");
    c.off = 4;
    if ((rc = read_u32(&c, &version, "version")))
        return rc;
    if (version != 2 && version != 3)
        return fail(&c, SLORA_EUNSUPPORTED, "GGUF version %u is not supported (2 and 3 are)",
                    version);
    if ((rc = read_u64(&c, &n_tensors, "tensor count")) ||
        (rc = read_u64(&c, &n_kv, "key/value count")))
        return rc;
    /* a key/value takes at least 13 bytes, a tensor info at least 32 */
    if (n_kv > (len - c.off) / 13)
        return fail(&c, SLORA_EFORMAT, "key/value count %llu exceeds what %zu bytes can hold",
                    (unsigned long long)n_kv, len - c.off);
    if (n_tensors > (len - c.off) / 32)
        return fail(&c, SLORA_EFORMAT, "tensor count %llu exceeds what %zu bytes can hold",
                    (unsigned long long)n_tensors, len - c.off);
    struct slora_gguf *g = calloc(1, sizeof(*g));
    if (!g)
        return SLORA_ENOMEM;
    g->version = version;
    g->n_kv = n_kv;
    g->n_tensors = n_tensors;
    g->kv = calloc(n_kv ? n_kv : 1, sizeof(*g->kv));
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof(*g->tensors));
    if (!g->kv || !g->tensors) {
        rc = SLORA_ENOMEM;
        goto err_free_gguf;
    }
    if ((rc = parse_kvs(&c, g)))
        goto err_free_gguf;
    for (size_t i = 0; i < g->n_tensors; i++)
        if ((rc = parse_tensor_info(&c, g, i)))
            goto err_free_gguf;
    if ((rc = place_tensors(&c, g)))
        goto err_free_gguf;
    *out = g;
    return 0;

err_free_gguf:
    slora_gguf_free(g);
    return rc;
}

void slora_gguf_free(struct slora_gguf *g)
{
    if (!g)
        return;
    free(g->kv);
    free(g->tensors);
    free(g);
}

const struct slora_gguf_kv *slora_gguf_find_kv(const struct slora_gguf *g, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < g->n_kv; i++)
        if (name_eq(g->kv[i].key, g->kv[i].key_len, key, n))
            return &g->kv[i];
    return NULL;
}

const struct slora_gguf_tensor *slora_gguf_find_tensor(const struct slora_gguf *g, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < g->n_tensors; i++)
        if (name_eq(g->tensors[i].name, g->tensors[i].name_len, name, n))
            return &g->tensors[i];
    return NULL;
}

int slora_gguf_get_float(const struct slora_gguf *g, const char *key, double *out)
{
    const struct slora_gguf_kv *kv = slora_gguf_find_kv(g, key);
    if (!kv)
        return SLORA_ENOTFOUND;
    if (kv->type == SLORA_GGUF_F32) {
        float v;
        memcpy(&v, kv->value, 4);
        *out = v;
    } else if (kv->type == SLORA_GGUF_F64) {
        memcpy(out, kv->value, 8);
    } else {
        int64_t v;
        if (slora_gguf_get_int(g, key, &v))
            return SLORA_EFORMAT;
        *out = (double)v;
    }
    return isfinite(*out) ? 0 : SLORA_EFORMAT;
}

int slora_gguf_get_bool(const struct slora_gguf *g, const char *key, bool *out)
{
    const struct slora_gguf_kv *kv = slora_gguf_find_kv(g, key);
    if (!kv)
        return SLORA_ENOTFOUND;
    if (kv->type != SLORA_GGUF_BOOL || kv->value[0] > 1)
        return SLORA_EFORMAT;
    *out = kv->value[0];
    return 0;
}

int slora_gguf_get_int(const struct slora_gguf *g, const char *key, int64_t *out)
{
    const struct slora_gguf_kv *kv = slora_gguf_find_kv(g, key);
    if (!kv)
        return SLORA_ENOTFOUND;
    const uint8_t *p = kv->value;
    switch (kv->type) {
    case SLORA_GGUF_U8:
        *out = p[0];
        return 0;
    case SLORA_GGUF_I8:
        *out = (int8_t)p[0];
        return 0;
    case SLORA_GGUF_U16: {
        uint16_t v;
        memcpy(&v, p, 2);
        *out = v;
        return 0;
    }
    case SLORA_GGUF_I16: {
        int16_t v;
        memcpy(&v, p, 2);
        *out = v;
        return 0;
    }
    case SLORA_GGUF_U32: {
        uint32_t v;
        memcpy(&v, p, 4);
        *out = v;
        return 0;
    }
    case SLORA_GGUF_I32: {
        int32_t v;
        memcpy(&v, p, 4);
        *out = v;
        return 0;
    }
    case SLORA_GGUF_U64: {
        uint64_t v;
        memcpy(&v, p, 8);
        if (v > INT64_MAX)
            return SLORA_EFORMAT;
        *out = (int64_t)v;
        return 0;
    }
    case SLORA_GGUF_I64:
        memcpy(out, p, 8);
        return 0;
    default:
        return SLORA_EFORMAT;
    }
}

int slora_gguf_get_str(const struct slora_gguf *g, const char *key, const char **s, size_t *len)
{
    const struct slora_gguf_kv *kv = slora_gguf_find_kv(g, key);
    if (!kv)
        return SLORA_ENOTFOUND;
    if (kv->type != SLORA_GGUF_STRING)
        return SLORA_EFORMAT;
    *s = slora_gguf_array_str(kv, 0, len);
    return 0;
}

const char *slora_gguf_array_str(const struct slora_gguf_kv *kv, uint64_t i, size_t *len)
{
    const uint8_t *p = kv->value;
    uint64_t n;
    for (;;) {
        memcpy(&n, p, 8);
        if (!i--)
            break;
        p += 8 + n;
    }
    *len = n;
    return (const char *)p + 8;
}

float slora_gguf_array_f32(const struct slora_gguf_kv *kv, uint64_t i)
{
    float f;
    memcpy(&f, kv->value + 4 * i, 4);
    return f;
}

/* Writer. */

/* Row conversions the writer can make: between any two known types, through
 * floats with quant.h's reference quantizers. */
static bool convertible(uint32_t from, uint32_t to)
{
    return from == to || (slora_dtype_is_known(from) && slora_dtype_is_known(to));
}

/* One row of n elements from src (type from) to dst (type to), through the
 * float scratch row. */
static void convert_row(uint32_t from, const uint8_t *src, float *row, uint32_t to, uint8_t *dst,
                        int64_t n)
{
    slora_quant_dequantize(from, src, row, n);
    slora_quant_quantize(to, row, dst, n);
}

struct wtensor {
    char *name;
    struct slora_tensor src; /* borrowed until the write */
    const int64_t *row_map;  /* written row i is src row row_map[i]; NULL = in order */
    int n_dims;
    uint32_t dtype; /* as written */
};

struct slora_gguf_writer {
    uint32_t version;
    size_t alignment;
    uint8_t *kv; /* serialised key/values */
    size_t kv_len;
    size_t kv_cap;
    uint64_t n_kv;
    struct wtensor *tensors; /* (n_tensors) */
    size_t n_tensors;
    size_t cap_tensors;
    int n_threads; /* for converting tensors between types */
    int err;       /* first error, reported by write */
};

struct slora_gguf_writer *slora_gguf_writer_new(uint32_t version, size_t alignment)
{
    struct slora_gguf_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->version = version;
    w->alignment = alignment;
    w->n_threads = 1;
    if (alignment != SLORA_GGUF_DEFAULT_ALIGNMENT)
        slora_gguf_writer_add_u32(w, "general.alignment", (uint32_t)alignment);
    return w;
}

void slora_gguf_writer_free(struct slora_gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->tensors);
    free(w->kv);
    free(w);
}

static int put(struct slora_gguf_writer *w, const void *p, size_t n)
{
    if (w->err)
        return w->err;
    if (n > w->kv_cap - w->kv_len) {
        size_t cap = w->kv_cap ? w->kv_cap : 256;
        while (cap - w->kv_len < n)
            cap *= 2;
        uint8_t *b = realloc(w->kv, cap);
        if (!b)
            return w->err = SLORA_ENOMEM;
        w->kv = b;
        w->kv_cap = cap;
    }
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
    return 0;
}

static int put_u32(struct slora_gguf_writer *w, uint32_t v)
{
    return put(w, &v, 4);
}

static int put_str(struct slora_gguf_writer *w, const char *s, size_t len)
{
    uint64_t n = len;
    put(w, &n, 8);
    return put(w, s, len);
}

static int put_key_len(struct slora_gguf_writer *w, const char *key, size_t len, uint32_t type)
{
    w->n_kv++;
    put_str(w, key, len);
    return put_u32(w, type);
}

static int put_key(struct slora_gguf_writer *w, const char *key, uint32_t type)
{
    return put_key_len(w, key, strlen(key), type);
}

/* Serialised size of one scalar or string value at p (already validated). */
static size_t value_bytes(uint32_t type, const uint8_t *p)
{
    if (type != SLORA_GGUF_STRING)
        return type_size[type];
    uint64_t n;
    memcpy(&n, p, 8);
    return 8 + (size_t)n;
}

int slora_gguf_writer_add_u32(struct slora_gguf_writer *w, const char *key, uint32_t v)
{
    put_key(w, key, SLORA_GGUF_U32);
    return put_u32(w, v);
}

int slora_gguf_writer_add_bool(struct slora_gguf_writer *w, const char *key, bool v)
{
    uint8_t b = v;
    put_key(w, key, SLORA_GGUF_BOOL);
    return put(w, &b, 1);
}

int slora_gguf_writer_add_f32(struct slora_gguf_writer *w, const char *key, float v)
{
    put_key(w, key, SLORA_GGUF_F32);
    return put(w, &v, 4);
}

int slora_gguf_writer_add_str(struct slora_gguf_writer *w, const char *key, const char *s)
{
    put_key(w, key, SLORA_GGUF_STRING);
    return put_str(w, s, strlen(s));
}

int slora_gguf_writer_add_str_array(struct slora_gguf_writer *w, const char *key,
                                    const char *const *s, const size_t *lens, size_t n)
{
    uint64_t n64 = n;
    put_key(w, key, SLORA_GGUF_ARRAY);
    put_u32(w, SLORA_GGUF_STRING);
    put(w, &n64, 8);
    for (size_t i = 0; i < n; i++)
        put_str(w, s[i], lens[i]);
    return w->err;
}

int slora_gguf_writer_add_array(struct slora_gguf_writer *w, const char *key, uint32_t elem,
                                const void *values, size_t n)
{
    uint64_t n64 = n;
    put_key(w, key, SLORA_GGUF_ARRAY);
    put_u32(w, elem);
    put(w, &n64, 8);
    return put(w, values, n * type_size[elem]);
}

static struct wtensor *add_wtensor(struct slora_gguf_writer *w, const char *name)
{
    if (w->err)
        return NULL;
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        struct wtensor *t = realloc(w->tensors, cap * sizeof(*t));
        if (!t) {
            w->err = SLORA_ENOMEM;
            return NULL;
        }
        w->tensors = t;
        w->cap_tensors = cap;
    }
    struct wtensor *t = &w->tensors[w->n_tensors];
    if (!(t->name = strdup(name))) {
        w->err = SLORA_ENOMEM;
        return NULL;
    }
    w->n_tensors++;
    return t;
}

int slora_gguf_writer_add_tensor(struct slora_gguf_writer *w, const char *name, const float *data,
                                 int64_t rows, int64_t cols, int n_dims, uint32_t dtype)
{
    struct slora_tensor t;
    if (!slora_tensor_init(&t, SLORA_DTYPE_F32, data, rows, cols))
        return w->err = SLORA_EINVAL;
    return slora_gguf_writer_add_typed(w, name, &t, n_dims, dtype, NULL);
}

int slora_gguf_writer_add_typed(struct slora_gguf_writer *w, const char *name,
                                const struct slora_tensor *src, int n_dims, uint32_t dtype,
                                const int64_t *row_map)
{
    if (!slora_dtype_row_bytes(dtype, src->cols) || !convertible(src->type, dtype))
        return w->err = SLORA_EINVAL;
    struct wtensor *t = add_wtensor(w, name);
    if (!t)
        return w->err;
    t->src = *src;
    t->row_map = row_map;
    t->n_dims = n_dims;
    t->dtype = dtype;
    return 0;
}

void slora_gguf_writer_set_threads(struct slora_gguf_writer *w, int n_threads)
{
    w->n_threads = n_threads < 1 ? 1 : n_threads > SLORA_PARALLEL_MAX_THREADS
                                           ? SLORA_PARALLEL_MAX_THREADS
                                           : n_threads;
}

int slora_gguf_writer_add_kv(struct slora_gguf_writer *w, const struct slora_gguf_kv *kv)
{
    put_key_len(w, kv->key, kv->key_len, kv->type);
    if (kv->type != SLORA_GGUF_ARRAY)
        return put(w, kv->value, value_bytes(kv->type, kv->value));
    uint64_t n = kv->n;
    put_u32(w, kv->arr_type);
    put(w, &n, 8);
    const uint8_t *p = kv->value;
    for (uint64_t i = 0; i < n; i++) {
        size_t nb = value_bytes(kv->arr_type, p);
        put(w, p, nb);
        p += nb;
    }
    return w->err;
}

static size_t tensor_bytes(const struct wtensor *t)
{
    return (size_t)t->src.rows * slora_dtype_row_bytes(t->dtype, t->src.cols);
}

static int write_pad(FILE *f, size_t pos, size_t alignment)
{
    static const uint8_t zeros[256];
    size_t pad = (alignment - pos % alignment) % alignment;
    while (pad) {
        size_t n = pad < sizeof(zeros) ? pad : sizeof(zeros);
        if (fwrite(zeros, 1, n, f) != n)
            return -1;
        pad -= n;
    }
    return 0;
}

/* Rows per conversion task; a chunk of CONV_TASKS tasks is converted (in
 * parallel) and then written. */
#define CONV_ROWS 16
#define CONV_TASKS 256

struct conv_job {
    const struct wtensor *t;
    int64_t r0;       /* first row of the chunk */
    uint8_t *out;     /* the chunk's converted rows */
    size_t out_bytes; /* bytes of one converted row */
    float *scratch;   /* (workers, cols) */
};

static void conv_task(void *ctx, size_t task, int worker)
{
    const struct conv_job *j = ctx;
    const struct slora_tensor *src = &j->t->src;
    float *row = j->scratch + (size_t)worker * (size_t)src->cols;
    int64_t r0 = j->r0 + (int64_t)task * CONV_ROWS;
    int64_t r1 = r0 + CONV_ROWS < src->rows ? r0 + CONV_ROWS : src->rows;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *in = (const uint8_t *)src->data +
                            (size_t)(j->t->row_map ? j->t->row_map[r] : r) * src->row_bytes;
        uint8_t *dst = j->out + (size_t)(r - j->r0) * j->out_bytes;
        if (j->t->dtype == src->type)
            memcpy(dst, in, j->out_bytes);
        else
            convert_row(src->type, in, row, j->t->dtype, dst, src->cols);
    }
}

static int write_tensor_data(FILE *f, const struct wtensor *t, int n_threads)
{
    const struct slora_tensor *src = &t->src;
    if (t->dtype == src->type && !t->row_map) {
        size_t nb = tensor_bytes(t);
        return fwrite(src->data, 1, nb, f) == nb ? 0 : -1;
    }
    int64_t chunk = (int64_t)CONV_ROWS * CONV_TASKS;
    int64_t rows = src->rows < chunk ? src->rows : chunk;
    struct conv_job j = {.t = t, .out_bytes = slora_dtype_row_bytes(t->dtype, src->cols)};
    j.out = malloc((size_t)rows * j.out_bytes);
    j.scratch = malloc((size_t)n_threads * (size_t)src->cols * sizeof(float));
    int rc = j.out && j.scratch ? 0 : -1;
    for (j.r0 = 0; !rc && j.r0 < src->rows; j.r0 += rows) {
        int64_t n = src->rows - j.r0 < rows ? src->rows - j.r0 : rows;
        slora_parallel_run(n_threads, (size_t)((n + CONV_ROWS - 1) / CONV_ROWS), conv_task, &j);
        rc = fwrite(j.out, j.out_bytes, (size_t)n, f) == (size_t)n ? 0 : -1;
    }
    free(j.out);
    free(j.scratch);
    return rc;
}

static int write_all(struct slora_gguf_writer *w, FILE *f)
{
    uint64_t counts[2] = {w->n_tensors, w->n_kv};
    if (fwrite(magic, 1, 4, f) != 4 || fwrite(&w->version, 4, 1, f) != 1 ||
        fwrite(counts, 8, 2, f) != 2 || fwrite(w->kv, 1, w->kv_len, f) != w->kv_len)
        return -1;
    size_t pos = 24 + w->kv_len;
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const struct wtensor *t = &w->tensors[i];
        uint64_t name_len = strlen(t->name);
        uint32_t n_dims = (uint32_t)t->n_dims;
        uint64_t ne[2] = {(uint64_t)t->src.cols, (uint64_t)t->src.rows};
        if (fwrite(&name_len, 8, 1, f) != 1 || fwrite(t->name, 1, name_len, f) != name_len ||
            fwrite(&n_dims, 4, 1, f) != 1 || fwrite(ne, 8, n_dims, f) != n_dims ||
            fwrite(&t->dtype, 4, 1, f) != 1 || fwrite(&offset, 8, 1, f) != 1)
            return -1;
        pos += 8 + name_len + 4 + 8 * n_dims + 4 + 8;
        size_t nb = tensor_bytes(t);
        offset += (nb + w->alignment - 1) / w->alignment * w->alignment;
    }
    if (write_pad(f, pos, w->alignment))
        return -1;
    for (size_t i = 0; i < w->n_tensors; i++) {
        size_t nb = tensor_bytes(&w->tensors[i]);
        if (write_tensor_data(f, &w->tensors[i], w->n_threads) || write_pad(f, nb, w->alignment))
            return -1;
    }
    return 0;
}

static int write_cb(FILE *f, void *ctx)
{
    return write_all(ctx, f);
}

int slora_gguf_writer_write(struct slora_gguf_writer *w, const char *path, char *diag,
                            size_t diag_len)
{
    if (w->err) {
        snprintf(diag, diag_len, "%s: %s", path, slora_strerror(w->err));
        return w->err;
    }
    return slora_fsio_write(path, write_cb, w, diag, diag_len);
}
