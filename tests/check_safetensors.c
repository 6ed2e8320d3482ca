/* check_safetensors.c - the safetensors reader rejects every malformed file
 * with its code and a message naming the tensor or byte offset; F16/BF16
 * convert exactly; the writer's output reads back. */
#include "st_build.h"

#include <slora/error.h>
#include <slora/quant.h>
#include <slora/safetensors.h>

#include <check.h>
#include <math.h>

#define T2 "a=2x3 b=4"

struct bad {
    const char *what;
    const char *spec;
    const char *from, *to; /* header substitution */
    long extra;            /* bytes appended (> 0) or cut (< 0) after the data */
    int want;
    const char *frag;
};

static const struct bad bads[] = {
    {"bad dtype", T2, "\"F32\"", "\"I8\"", 0, SLORA_EFORMAT,
     "tensor 'a': unsupported dtype 'I8'"},
    {"dtype not string", T2, "\"F32\"", "3", 0, SLORA_EFORMAT,
     "tensor 'a': missing or non-string dtype"},
    {"offsets beyond", T2, "[24,40]", "[24,48]", 0, SLORA_EFORMAT,
     "tensor 'b': data_offsets [24, 48] out of range of the 40-byte data buffer"},
    {"offsets reversed", T2, "[24,40]", "[40,24]", 0, SLORA_EFORMAT,
     "tensor 'b': data_offsets [40, 24] out of range"},
    {"offsets not shape", T2, "[2,3]", "[2,4]", 0, SLORA_EFORMAT,
     "tensor 'a': data_offsets [0, 24] at byte offset"},
    {"overlap", "a=2 b=2 c=2", "[8,16]", "[4,12]", 0, SLORA_EFORMAT, "overlaps tensor 'a'"},
    {"gap", "a=2 b=2", "[8,16]", "[12,20]", 4, SLORA_EFORMAT, "gap of 4 bytes at byte offset"},
    {"trailing", T2, NULL, NULL, 3, SLORA_EFORMAT, "3 trailing bytes at byte offset"},
    {"truncated data", T2, NULL, NULL, -4, SLORA_EFORMAT,
     "tensor 'b': data_offsets [24, 40] out of range"},
    {"shape overflow", "a=0", "[0]", "[4294967296,4294967296,4294967296]", 0, SLORA_EFORMAT,
     "tensor 'a': shape product overflows"},
    {"negative dim", T2, "[4]", "[-4]", 0, SLORA_EFORMAT,
     "tensor 'b': shape[0] is not a non-negative"},
    {"rank 17", "a=1", "[1]", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]", 0, SLORA_ELIMIT,
     "tensor 'a': rank 17"},
    {"unknown tensor key", T2, "\"dtype\"", "\"x\":1,\"dtype\"", 0, SLORA_EFORMAT,
     "tensor 'a': unknown key 'x'"},
    {"offsets not pair", T2, "[0,24]", "[0]", 0, SLORA_EFORMAT,
     "tensor 'a': data_offsets is not [begin, end]"},
    {"entry not object", T2, "{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}", "7",
     -24, SLORA_EFORMAT, "tensor 'a': entry is not a JSON object"},
    {"duplicate tensor", "a=1 b=1", "\"b\"", "\"a\"", 0, SLORA_EFORMAT, "duplicate"},
    {"not json", T2, "{\"a\"", "{a", 0, SLORA_EFORMAT, "header is not valid JSON at byte offset"},
    {"not object", "", "{}", "[1]", 0, SLORA_EFORMAT, "header is not a JSON object"},
    {"metadata not object", "a=1", "{\"a\"", "{\"__metadata__\":1,\"a\"", 0, SLORA_EFORMAT,
     "__metadata__ is not a JSON object"},
};

static unsigned char *build_bad(const struct bad *b, size_t *len)
{
    unsigned char *buf = tb_build(NULL, b->spec, b->from, b->to, len);
    if (b->extra > 0) {
        buf = realloc(buf, *len + (size_t)b->extra);
        memset(buf + *len, 0, (size_t)b->extra);
    }
    *len += (size_t)b->extra;
    return buf;
}

START_TEST(rejects)
{
    const struct bad *b = &bads[_i];
    size_t len;
    unsigned char *buf = build_bad(b, &len);
    struct slora_st *st = (void *)1;
    char diag[256] = "";
    int err = slora_st_parse(buf, len, &st, diag, sizeof(diag));
    ck_assert_msg(err == b->want, "%s: got %d (%s), want %d", b->what, err, diag, b->want);
    ck_assert_msg(strstr(diag, b->frag), "%s: diag '%s' lacks '%s'", b->what, diag, b->frag);
    ck_assert_ptr_null(st);
    free(buf);
}
END_TEST

START_TEST(header_length)
{
    char diag[256];
    struct slora_st *st;
    unsigned char small[7] = {0};
    ck_assert_int_eq(slora_st_parse(small, sizeof(small), &st, diag, sizeof(diag)), SLORA_EFORMAT);
    ck_assert_ptr_nonnull(strstr(diag, "file is 7 bytes, shorter than 8 bytes"));

    unsigned char beyond[16] = {9, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    ck_assert_int_eq(slora_st_parse(beyond, 10, &st, diag, sizeof(diag)), SLORA_EFORMAT);
    ck_assert_ptr_nonnull(
        strstr(diag, "header length 9 at byte offset 0 runs beyond the 10-byte file"));

    unsigned char huge[16] = {1, 0, 0, 1, 0, 0, 0, 0}; /* 16 MiB + 1 */
    ck_assert_int_eq(slora_st_parse(huge, sizeof(huge), &st, diag, sizeof(diag)), SLORA_ELIMIT);
    ck_assert_ptr_nonnull(
        strstr(diag, "header length 16777217 at byte offset 0 is over the 16 MiB limit"));

    unsigned char wrap[16] = {0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    ck_assert_int_eq(slora_st_parse(wrap, sizeof(wrap), &st, diag, sizeof(diag)), SLORA_ELIMIT);
}
END_TEST

START_TEST(parses_and_converts)
{
    size_t len;
    unsigned char *buf =
        tb_build("{\"version\":1}", "a=2x3 b=4@F16 c=5@BF16 z=0x3", NULL, NULL, &len);
    struct slora_st *st;
    char diag[256] = "";
    ck_assert_int_eq(slora_st_parse(buf, len, &st, diag, sizeof(diag)), 0);
    ck_assert_int_eq(st->n_tensors, 4);
    const struct slora_st_tensor *b = slora_st_find(st, "b");
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(b->dtype, SLORA_ST_F16);
    ck_assert_int_eq(b->n_elems, 4);
    ck_assert_int_eq(b->n_bytes, 8);
    ck_assert_int_eq(slora_st_find(st, "z")->n_elems, 0);
    const char *v;
    ck_assert_int_eq(slora_st_meta_get(st, "superlora", &v), 0);
    ck_assert_str_eq(v, "{\"version\":1}");
    ck_assert_int_eq(slora_st_meta_get(st, "nope", &v), SLORA_ENOTFOUND);
    float out[6];
    const char *names[] = {"a", "b", "c"};
    for (int t = 0; t < 3; t++) {
        const struct slora_st_tensor *x = slora_st_find(st, names[t]);
        slora_st_to_f32(x, out);
        for (int64_t i = 0; i < x->n_elems; i++)
            ck_assert_float_eq(out[i], tb_value(i, t));
    }
    slora_st_free(st);
    free(buf);
}
END_TEST

START_TEST(half_floats)
{
    ck_assert_float_eq(slora_quant_f16_to_f32(0x3c00), 1.0f);
    ck_assert_float_eq(slora_quant_f16_to_f32(0xc000), -2.0f);
    ck_assert_float_eq(slora_quant_f16_to_f32(0x7bff), 65504.0f);
    ck_assert_float_eq(slora_quant_f16_to_f32(0x0001), 0x1p-24f);
    ck_assert_float_eq(slora_quant_f16_to_f32(0x8400), -0x1p-14f);
    ck_assert_float_eq(slora_quant_f16_to_f32(0x3555), 0.333251953125f);
    ck_assert(isinf(slora_quant_f16_to_f32(0x7c00)));
    ck_assert(isnan(slora_quant_f16_to_f32(0x7e00)));
    ck_assert_float_eq(slora_quant_bf16_to_f32(0x3f80), 1.0f);
    ck_assert_float_eq(slora_quant_bf16_to_f32(0xc040), -3.0f);
    ck_assert(isinf(slora_quant_bf16_to_f32(0xff80)));
}
END_TEST

START_TEST(write_roundtrip)
{
    char *mem = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&mem, &len);
    float a[6] = {1, -2, 3.5f, 0, 1e-30f, 7}, b[2] = {9, 10};
    struct slora_st_out ts[] = {{"layers.0.wq", 2, {2, 3}, a}, {"x", 1, {2}, b}};
    const char *meta[] = {"k", "v\"q"};
    ck_assert_int_eq(slora_st_write(f, ts, 2, meta, 1), 0);
    fclose(f);
    ck_assert_int_eq((len - 8 - 32) % 8, 0); /* header padded to 8 bytes */
    struct slora_st *st;
    char diag[256] = "";
    ck_assert_msg(slora_st_parse(mem, len, &st, diag, sizeof(diag)) == 0, "%s", diag);
    const struct slora_st_tensor *t = slora_st_find(st, "layers.0.wq");
    ck_assert_int_eq(t->n_dims, 2);
    ck_assert_int_eq(t->shape[0], 2);
    ck_assert_int_eq(t->shape[1], 3);
    float out[6];
    slora_st_to_f32(t, out);
    ck_assert_mem_eq(out, a, sizeof(a));
    slora_st_to_f32(slora_st_find(st, "x"), out);
    ck_assert_mem_eq(out, b, sizeof(b));
    const char *v;
    ck_assert_int_eq(slora_st_meta_get(st, "k", &v), 0);
    ck_assert_str_eq(v, "v\"q");
    slora_st_free(st);
    free(mem);
}
END_TEST

Suite *slora_safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, rejects, 0, sizeof(bads) / sizeof(bads[0]));
    tcase_add_test(tc, header_length);
    tcase_add_test(tc, parses_and_converts);
    tcase_add_test(tc, half_floats);
    tcase_add_test(tc, write_roundtrip);
    suite_add_tcase(s, tc);
    return s;
}
