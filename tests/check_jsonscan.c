/* check_jsonscan.c - the pre-parse scan: depth and element counts of small
 * documents (counted by hand: every container, string and scalar is one
 * element, keys included), each accepted at exactly its own limits and
 * refused one below; brackets inside strings and escaped quotes do not
 * count; then the loader's errors. */
#include <slora/error.h>
#include <slora/jsonscan.h>

#include <check.h>
#include <jansson.h>
#include <string.h>

struct scan_case {
    const char *text;
    int64_t depth, elements;
};

static const struct scan_case cases[] = {
    {"[]", 1, 1},
    {"[1,2,3]", 1, 4},
    {"{\"a\":1,\"b\":[true,null]}", 2, 7},
    {"[\"x,[{]\"]", 1, 2},
    {"{\"k\\\"[\":\"v\\\\\"}", 1, 3},
    {" [ -1.5e3 ,\n\tfalse ] ", 1, 3},
    {"[[[[]]]]", 4, 4},
    {"{\"a\":{\"b\":{\"c\":\"d\"}}}", 3, 7},
    {"{\"prompt\":[[1,2],[3]],\"max_tokens\":8}", 3, 10},
};

#define BIG INT64_MAX

START_TEST(scan_exact_limits)
{
    const struct scan_case *t = &cases[_i];
    size_t n = strlen(t->text);
    char diag[128];
    struct slora_jsonscan_limits at = {t->depth, t->elements};
    ck_assert_msg(slora_jsonscan_check(t->text, n, &at, diag, sizeof(diag)) == 0, "%s: %s",
                  t->text, diag);
    struct slora_jsonscan_limits few = {BIG, t->elements - 1};
    ck_assert_int_eq(slora_jsonscan_check(t->text, n, &few, diag, sizeof(diag)), SLORA_ETOOLARGE);
    ck_assert_ptr_nonnull(strstr(diag, "max_json_elements"));
    if (t->depth > 0) {
        struct slora_jsonscan_limits shallow = {t->depth - 1, BIG};
        ck_assert_int_eq(slora_jsonscan_check(t->text, n, &shallow, diag, sizeof(diag)),
                         SLORA_EINVAL);
        ck_assert_ptr_nonnull(strstr(diag, "max_json_depth"));
    }
    /* The scan agrees with the parser: every case is valid JSON. */
    json_t *root;
    ck_assert_int_eq(slora_jsonscan_load(t->text, n, &at, &root, diag, sizeof(diag)), 0);
    json_decref(root);
}
END_TEST

START_TEST(load_errors)
{
    struct slora_jsonscan_limits lim = {8, 64};
    char diag[256];
    json_t *root;
    const char *bad = "{\"a\": 1,}";
    ck_assert_int_eq(slora_jsonscan_load(bad, strlen(bad), &lim, &root, diag, sizeof(diag)),
                     SLORA_EINVAL);
    ck_assert_ptr_null(root);
    ck_assert_ptr_nonnull(strstr(diag, "invalid JSON body"));
    const char *dup = "{\"a\": 1, \"a\": 2}";
    ck_assert_int_eq(slora_jsonscan_load(dup, strlen(dup), &lim, &root, diag, sizeof(diag)),
                     SLORA_EINVAL);
    ck_assert_int_eq(slora_jsonscan_load(NULL, 0, &lim, &root, diag, sizeof(diag)), SLORA_EINVAL);
    /* A deep document is refused by the scan, before the parser. */
    char deep[64];
    memset(deep, '[', sizeof(deep));
    ck_assert_int_eq(slora_jsonscan_load(deep, sizeof(deep), &lim, &root, diag, sizeof(diag)),
                     SLORA_EINVAL);
    ck_assert_ptr_nonnull(strstr(diag, "deeper than 8 levels"));
    ck_assert_ptr_null(root);
}
END_TEST

Suite *slora_jsonscan_suite(void)
{
    Suite *s = suite_create("jsonscan");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, scan_exact_limits, 0, (int)(sizeof(cases) / sizeof(cases[0])));
    tcase_add_test(tc, load_errors);
    suite_add_tcase(s, tc);
    return s;
}
