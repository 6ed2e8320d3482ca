/* check_error.c - the error table maps codes to names, statuses and types;
 * the shared diagnostics formatter. */
#include "internal.h"

#include <slora/arch.h>
#include <slora/error.h>

#include <check.h>

START_TEST(error_table)
{
    ck_assert_str_eq(slora_err_name(SLORA_ENOMEM), "nomem");
    ck_assert_int_eq(slora_err_http_status(SLORA_ENOSPC), 507);
    ck_assert_int_eq(slora_err_http_status(SLORA_EHDRTOOLARGE), 431);
    ck_assert_str_eq(slora_err_type(SLORA_EUNAUTH), "authentication_error");
    ck_assert_str_eq(slora_err_type(SLORA_EQUOTA), "rate_limit_error");
    ck_assert_str_eq(slora_strerror(SLORA_ENOTFOUND), "not found");
    ck_assert_str_eq(slora_strerror(0), "unknown error");
    ck_assert_str_eq(slora_err_name(12345), "internal");
    ck_assert_int_eq(slora_err_http_status(-1), 500);
    ck_assert_int_lt(SLORA_EINTERNAL, 0);
}
END_TEST

START_TEST(diag_format)
{
    char diag[16];
    ck_assert_int_eq(slora__diag(diag, sizeof(diag), SLORA_EFORMAT, "tensor %s at %d", "a", 7),
                     SLORA_EFORMAT);
    ck_assert_str_eq(diag, "tensor a at 7");
    ck_assert_int_eq(slora__diag(diag, sizeof(diag), SLORA_ERANGE, "%s", "0123456789abcdefXYZ"),
                     SLORA_ERANGE);
    ck_assert_str_eq(diag, "0123456789abcde");
    /* no buffer: only the code comes back */
    ck_assert_int_eq(slora__diag(NULL, 0, SLORA_EINVAL, "x"), SLORA_EINVAL);
    diag[0] = 'q';
    ck_assert_int_eq(slora__diag(diag, 0, SLORA_EINVAL, "x"), SLORA_EINVAL);
    ck_assert_int_eq(diag[0], 'q');
}
END_TEST

START_TEST(arch_modules)
{
    ck_assert_int_eq(slora_arch_module_parse("wq"), SLORA_MOD_WQ);
    ck_assert_int_eq(slora_arch_module_parse("down_proj"), SLORA_MOD_W2);
    ck_assert_int_eq(slora_arch_module_parse("gate_proj"), SLORA_MOD_W1);
    ck_assert_int_eq(slora_arch_module_parse("up_proj"), SLORA_MOD_W3);
    ck_assert_int_eq(slora_arch_module_parse("wx"), -1);
    struct slora_shape s = {64, 172, 5, 8, 4, 512};
    int64_t r, c;
    slora_arch_module_dims(&s, SLORA_MOD_WK, &r, &c);
    ck_assert_int_eq(r, 32);
    ck_assert_int_eq(c, 64);
    slora_arch_module_dims(&s, SLORA_MOD_W2, &r, &c);
    ck_assert_int_eq(r, 64);
    ck_assert_int_eq(c, 172);
}
END_TEST

Suite *slora_error_suite(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, error_table);
    tcase_add_test(tc, diag_format);
    tcase_add_test(tc, arch_modules);
    suite_add_tcase(s, tc);
    return s;
}
