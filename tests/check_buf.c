/* check_buf.c - util/buf: appends keep the bytes NUL-terminated, printf
 * formats in place when the text fits and grows the buffer when it does
 * not. Expected strings are written out literally, not produced by buf. */
#include "util/buf.h"

#include <check.h>
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

Suite *slora_buf_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, buf_add_and_printf);
    tcase_add_test(tc, buf_printf_exact_fit);
    suite_add_tcase(s, tc);
    return s;
}
