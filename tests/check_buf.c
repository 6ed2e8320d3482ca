/* check_buf.c - util/buf: appends keep the bytes NUL-terminated, printf
 * formats in place when the text fits and grows the buffer when it does
 * not, JSON strings are escaped exactly as jansson writes them. Expected
 * strings are written out literally or come from jansson, not from buf. */
#include "util/buf.h"

#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

START_TEST(buf_add_and_printf)
{
    struct slora__buf b = {0};
    ck_assert_int_eq(slora__buf_add(&b, "ab", 2), 0);
    ck_assert_str_eq(b.p, "ab");
    /* fits in the spare room of the first allocation */
    ck_assert_int_eq(slora__buf_printf(&b, ",%d,%.9g", 42, 0.5), 0);
    ck_assert_str_eq(b.p, "ab,42,0.5");
    ck_assert_uint_eq(b.len, 9);
    /* longer than the spare room: grows and formats again */
    size_t cap = b.cap;
    char big[301];
    memset(big, 'x', 300);
    big[300] = '\0';
    ck_assert_int_eq(slora__buf_printf(&b, "[%s]", big), 0);
    ck_assert_uint_gt(b.cap, cap);
    ck_assert_uint_eq(b.len, 9 + 302);
    ck_assert_int_eq(memcmp(b.p, "ab,42,0.5[xxx", 13), 0);
    ck_assert_int_eq(b.p[b.len - 1], ']');
    ck_assert_int_eq(b.p[b.len], '\0');
    ck_assert_uint_eq(strlen(b.p), b.len);
    free(b.p);
}
END_TEST

START_TEST(buf_printf_exact_fit)
{
    struct slora__buf b = {0};
    ck_assert_int_eq(slora__buf_add(&b, "a", 1), 0);
    /* fill the spare room to exactly one byte short of the terminator */
    size_t room = b.cap - b.len;
    char *s = malloc(room + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, 'y', room);
    s[room] = '\0';
    size_t cap = b.cap;
    ck_assert_int_eq(slora__buf_printf(&b, "%s", s), 0);
    ck_assert_uint_gt(b.cap, cap); /* room bytes plus the NUL need room + 1 */
    ck_assert_uint_eq(b.len, 1 + room);
    ck_assert_int_eq(b.p[0], 'a');
    ck_assert_int_eq(b.p[room], 'y');
    ck_assert_int_eq(b.p[b.len], '\0');
    free(s);
    free(b.p);
}
END_TEST

/* Every control byte, the two escaped printables, '/', DEL and multi-byte
 * UTF-8 (including a NUL inside), against jansson's json_dumps. */
START_TEST(buf_json_string)
{
    char controls[32];
    for (int i = 0; i < 32; i++)
        controls[i] = (char)i;
#define CASE(lit) {lit, sizeof(lit) - 1}
    static const struct {
        const char *s;
        size_t n;
    } cases[] = {
        CASE(""),
        CASE("plain text"),
        CASE("a \"quoted\" back\\slash / and \x7f"),
        CASE("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
        CASE("nul\0inside"),
        CASE("\n"),
    };
#undef CASE
    struct slora__buf b = {0};
    ck_assert_int_eq(slora__buf_add(&b, "x", 1), 0);
    for (size_t k = 0; k <= sizeof(cases) / sizeof(cases[0]); k++) {
        const char *s = k < sizeof(cases) / sizeof(cases[0]) ? cases[k].s : controls;
        size_t n = k < sizeof(cases) / sizeof(cases[0]) ? cases[k].n : sizeof(controls);
        json_t *v = json_stringn(s, n);
        ck_assert_ptr_nonnull(v);
        char *want = json_dumps(v, JSON_ENCODE_ANY);
        json_decref(v);
        b.len = 1;
        ck_assert_int_eq(slora__buf_add_json_string(&b, s, n), 0);
        ck_assert_str_eq(b.p + 1, want);
        ck_assert_uint_eq(b.len, 1 + strlen(want));
        free(want);
    }
    ck_assert_int_eq(b.p[0], 'x');
    b.len = 0;
    ck_assert_int_eq(slora__buf_add_json_string(&b, controls + 8, 6), 0);
    ck_assert_str_eq(b.p, "\"\\b\\t\\n\\u000B\\f\\r\"");
    free(b.p);
}
END_TEST

Suite *slora_buf_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, buf_add_and_printf);
    tcase_add_test(tc, buf_printf_exact_fit);
    tcase_add_test(tc, buf_json_string);
    suite_add_tcase(s, tc);
    return s;
}
