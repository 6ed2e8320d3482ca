/* runner.c - one libcheck runner for every tests/check_<m>.c suite.
 * CK_RUN_SUITE=<m> (libcheck's own variable) runs one suite. */
#include <check.h>
#include <stdlib.h>

#define X(m) Suite *slora_##m##_suite(void);
#include "suites.h"
#undef X

int main(void)
{
    SRunner *sr = srunner_create(NULL);
#define X(m) srunner_add_suite(sr, slora_##m##_suite());
#include "suites.h"
#undef X
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
