/* check_gguf.c - GGUF reader/writer: round trip, F16 conversion against IEEE
 * binary16 values, and corrupted files (generated here) rejected with the
 * right code and message. */
#include <slora/error.h>
#include <slora/gguf.h>

#include "testutil.h"

#include <check.h>
#include <math.h>

static const float t0_data[6] = {1, 2, 3, 4, 5, 6};                   /* (2, 3) */
static const float t1_data[5] = {-1, 0.5f, 0.25f, 8, 9};              /* vector (5) */
static const float t2_data[8] = {1, -2, 0.1f, 65504, 3, 0, 1e-9f, 7}; /* (2, 4) as F16 */

enum variant { V_PLAIN, V_ALIGN3, V_ALIGN_STR, V_DUP_KEY, V_DUP_TENSOR, V_NESTED, V_V2 };

/* A small valid file (or one of the writer-made variants) as bytes. */
static uint8_t *build(enum variant v, size_t *len)
{
    struct slora_gguf_writer *w =
        slora_gguf_writer_new(v == V_V2 ? 2 : 3, v == V_ALIGN3 ? 3 : SLORA_GGUF_DEFAULT_ALIGNMENT);
    ck_assert_ptr_nonnull(w);
    const char *strs[2] = {"a", "bc"};
    size_t lens[2] = {1, 2};
    float f[3] = {1, 2, 3};
    slora_gguf_writer_add_str(w, "general.architecture", "llama");
    if (v == V_ALIGN_STR)
        slora_gguf_writer_add_str(w, "general.alignment", "x");
    slora_gguf_writer_add_u32(w, "u", 7);
    if (v == V_DUP_KEY)
        slora_gguf_writer_add_u32(w, "u", 8);
    slora_gguf_writer_add_str_array(w, "arr", strs, lens, 2);
    slora_gguf_writer_add_array(w, "f", v == V_NESTED ? SLORA_GGUF_ARRAY : SLORA_GGUF_F32, f,
                                v == V_NESTED ? 0 : 3);
    slora_gguf_writer_add_tensor(w, "t0", t0_data, 2, 3, 2, SLORA_DTYPE_F32);
    slora_gguf_writer_add_tensor(w, v == V_DUP_TENSOR ? "t0" : "t1", t1_data, 1, 5, 1,
                                 SLORA_DTYPE_F32);
    slora_gguf_writer_add_tensor(w, "t2", t2_data, 2, 4, 2, SLORA_DTYPE_F16);
    char *path = test_tmp_path("gguf");
    char diag[256];
    ck_assert_int_eq(slora_gguf_writer_write(w, path, diag, sizeof(diag)), 0);
    slora_gguf_writer_free(w);
    uint8_t *buf = test_read_file(path, len);
    unlink(path);
    free(path);
    return buf;
}

START_TEST(round_trip)
{
    for (int v = V_PLAIN; v <= V_V2; v += V_V2) {
        size_t len;
        uint8_t *buf = build(v, &len);
        struct slora_gguf *g;
        char diag[256];
        ck_assert_int_eq(slora_gguf_parse(buf, len, &g, diag, sizeof(diag)), 0);
        ck_assert_uint_eq(g->version, v == V_V2 ? 2 : 3);
        ck_assert_uint_eq(g->alignment, 32);
        ck_assert_uint_eq(g->n_kv, 4);
        ck_assert_uint_eq(g->n_tensors, 3);
        int64_t u;
        ck_assert_int_eq(slora_gguf_get_int(g, "u", &u), 0);
        ck_assert_int_eq(u, 7);
        ck_assert_int_eq(slora_gguf_get_int(g, "nope", &u), SLORA_ENOTFOUND);
        ck_assert_int_eq(slora_gguf_get_int(g, "arr", &u), SLORA_EFORMAT);
        const char *s;
        size_t n;
        ck_assert_int_eq(slora_gguf_get_str(g, "general.architecture", &s, &n), 0);
        ck_assert_int_eq(n, 5);
        ck_assert(!memcmp(s, "llama", 5));
        const struct slora_gguf_kv *arr = slora_gguf_find_kv(g, "arr");
        ck_assert_uint_eq(arr->n, 2);
        s = slora_gguf_array_str(arr, 1, &n);
        ck_assert_int_eq(n, 2);
        ck_assert(!memcmp(s, "bc", 2));
        ck_assert(slora_gguf_array_f32(slora_gguf_find_kv(g, "f"), 2) == 3.0f);
        const struct slora_gguf_tensor *t0 = slora_gguf_find_tensor(g, "t0");
        ck_assert_uint_eq(t0->ne[0], 3);
        ck_assert_uint_eq(t0->ne[1], 2);
        ck_assert_uint_eq(t0->n_dims, 2);
        ck_assert(!memcmp(t0->data, t0_data, sizeof(t0_data)));
        ck_assert_uint_eq(g->data_offset % 32, 0);
        const struct slora_gguf_tensor *t1 = slora_gguf_find_tensor(g, "t1");
        ck_assert_uint_eq(t1->n_dims, 1);
        ck_assert_uint_eq(t1->offset, 32);
        const struct slora_gguf_tensor *t2 = slora_gguf_find_tensor(g, "t2");
        ck_assert_uint_eq(t2->dtype, SLORA_DTYPE_F16);
        ck_assert_uint_eq(t2->nbytes, 16);
        uint16_t h[8];
        memcpy(h, t2->data, 16);
        ck_assert_uint_eq(h[0], 0x3c00);
        ck_assert_uint_eq(h[1], 0xc000);
        ck_assert_uint_eq(h[2], 0x2e66);
        ck_assert_uint_eq(h[3], 0x7bff);
        ck_assert_uint_eq(h[6], 0);
        slora_gguf_free(g);
        free(buf);
    }
}
END_TEST

/* Where a patch lands: absolute, or relative to tensor t0's info record. */
enum where { ABS, T0 };
/* Offsets inside a tensor info record (name "t0"). */
#define T0_NDIMS 10
#define T0_NE0 14
#define T0_TYPE 30
#define T0_OFFSET 34
#define KEY0_TYPE (24 + 8 + 20) /* after "general.architecture" */
#define NONE ((size_t)-1)

static const struct bad_case {
    const char *what;
    enum variant variant;
    enum where where;
    size_t off;
    int width;
    uint64_t value;
    size_t truncate; /* NONE, or keep this many bytes (from the end when > 1000) */
    int err;
    const char *frag;
} bad[] = {
    {"magic", V_PLAIN, ABS, 0, 4, 0x4c4d4747, NONE, SLORA_EFORMAT, "bad magic"},
    {"version 1", V_PLAIN, ABS, 4, 4, 1, NONE, SLORA_EUNSUPPORTED, "version 1 is not supported"},
    {"version 4", V_PLAIN, ABS, 4, 4, 4, NONE, SLORA_EUNSUPPORTED, "version 4"},
    {"tensor count huge", V_PLAIN, ABS, 8, 8, UINT64_MAX, NONE, SLORA_EFORMAT, "tensor count"},
    {"kv count huge", V_PLAIN, ABS, 16, 8, UINT64_MAX / 2, NONE, SLORA_EFORMAT, "key/value count"},
    {"kv count too small", V_PLAIN, ABS, 16, 8, 0, NONE, SLORA_EFORMAT,
     "'general.architecture' has 8 dimensions"},
    {"key length lie", V_PLAIN, ABS, 24, 8, 1u << 30, NONE, SLORA_EFORMAT, "string length"},
    {"value type", V_PLAIN, ABS, KEY0_TYPE, 4, 99, NONE, SLORA_EFORMAT, "invalid type 99"},
    {"nested array", V_NESTED, ABS, 0, 0, 0, NONE, SLORA_EFORMAT, "invalid array element type 9"},
    {"alignment 3", V_ALIGN3, ABS, 0, 0, 0, NONE, SLORA_EFORMAT, "alignment 3 is not a power"},
    {"alignment type", V_ALIGN_STR, ABS, 0, 0, 0, NONE, SLORA_EFORMAT,
     "general.alignment has type 8"},
    {"duplicate key", V_DUP_KEY, ABS, 0, 0, 0, NONE, SLORA_EFORMAT, "duplicate key 'u'"},
    {"duplicate tensor", V_DUP_TENSOR, ABS, 0, 0, 0, NONE, SLORA_EFORMAT,
     "duplicate tensor name 't0'"},
    {"n_dims 5", V_PLAIN, T0, T0_NDIMS, 4, 5, NONE, SLORA_EFORMAT, "'t0' has 5 dimensions"},
    {"n_dims 0", V_PLAIN, T0, T0_NDIMS, 4, 0, NONE, SLORA_EFORMAT, "'t0' has 0 dimensions"},
    {"dim zero", V_PLAIN, T0, T0_NE0, 8, 0, NONE, SLORA_EFORMAT, "empty or overflowing"},
    {"dim overflow", V_PLAIN, T0, T0_NE0, 8, 1ull << 62, NONE, SLORA_EFORMAT,
     "empty or overflowing"},
    {"dim past the end", V_PLAIN, T0, T0_NE0, 8, 1000, NONE, SLORA_EFORMAT,
     "truncated: tensor 't0'"},
    {"tensor type q4_0 on 3 columns", V_PLAIN, T0, T0_TYPE, 4, 2, NONE, SLORA_EFORMAT,
     "tensor 't0' of type Q4_0 has 3 columns, not a multiple of its block of 32"},
    {"tensor type unknown", V_PLAIN, T0, T0_TYPE, 4, 99, NONE, SLORA_EUNSUPPORTED,
     "tensor 't0' has unknown type id 99"},
    {"tensor type 4 (ggml's retired Q4_2)", V_PLAIN, T0, T0_TYPE, 4, 4, NONE, SLORA_EUNSUPPORTED,
     "tensor 't0' has unknown type id 4"},
    {"offset unaligned", V_PLAIN, T0, T0_OFFSET, 8, 4, NONE, SLORA_EFORMAT,
     "not a multiple of the alignment 32"},
    {"offset lie", V_PLAIN, T0, T0_OFFSET, 8, 32, NONE, SLORA_EFORMAT,
     "'t0' has offset 32, expected 0"},
    {"offset past the end", V_PLAIN, T0, T0_OFFSET, 8, 1ull << 40, NONE, SLORA_EFORMAT,
     "has offset"},
    {"truncated empty", V_PLAIN, ABS, 0, 0, 0, 0, SLORA_EFORMAT, "truncated: magic"},
    {"truncated in version", V_PLAIN, ABS, 0, 0, 0, 6, SLORA_EFORMAT, "truncated: version"},
    {"truncated in counts", V_PLAIN, ABS, 0, 0, 0, 10, SLORA_EFORMAT, "truncated: tensor count"},
    {"truncated in key", V_PLAIN, ABS, 0, 0, 0, 30, SLORA_EFORMAT, "key/value count 4 exceeds"},
    {"truncated in string array", V_PLAIN, ABS, 0, 0, 0, 130, SLORA_EFORMAT,
     "string length 2 at offset 122 exceeds the 0 bytes left"},
    {"truncated in tensor info", V_PLAIN, T0, T0_TYPE, 0, 0, 2, SLORA_EFORMAT, "truncated"},
    {"truncated in data", V_PLAIN, ABS, 0, 0, 0, 1000 + 20, SLORA_EFORMAT,
     "truncated: tensor 't2'"},
};

START_TEST(corrupted)
{
    const struct bad_case *b = &bad[_i];
    size_t len;
    uint8_t *buf = build(b->variant, &len);
    size_t base = b->where == T0 ? test_find(buf, len, "\x02\0\0\0\0\0\0\0t0", 10) : 0;
    if (b->width)
        memcpy(buf + base + b->off, &b->value, (size_t)b->width);
    if (b->truncate != NONE)
        len = b->truncate > 1000 ? len - (b->truncate - 1000)
                                 : (b->where == T0 ? base + b->off + b->truncate : b->truncate);
    struct slora_gguf *g = NULL;
    char diag[256] = "";
    int rc = slora_gguf_parse(buf, len, &g, diag, sizeof(diag));
    ck_assert_msg(rc == b->err, "%s: rc %d (%s), want %d", b->what, rc, diag, b->err);
    ck_assert_msg(strstr(diag, b->frag), "%s: diag '%s' lacks '%s'", b->what, diag, b->frag);
    ck_assert_ptr_null(g);
    free(buf);
}
END_TEST

Suite *slora_gguf_suite(void)
{
    Suite *s = suite_create("gguf");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, round_trip);
    tcase_add_loop_test(tc, corrupted, 0, sizeof(bad) / sizeof(bad[0]));
    suite_add_tcase(s, tc);
    return s;
}
