/* Helpers shared by the Check suites: random fills and a main() that runs
 * one suite and fails the process when any test fails. */
#ifndef VLP_TESTUTIL_H
#define VLP_TESTUTIL_H

#include <check.h>
#include <stdlib.h>

#define VLP_TEST_MAIN(make_suite)                              \
    int main(void) {                                           \
        SRunner *sr = srunner_create(make_suite());            \
        srunner_run_all(sr, CK_NORMAL);                        \
        int failed = srunner_ntests_failed(sr);                \
        srunner_free(sr);                                      \
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;           \
    }

/* Adds a test case named `name` holding the single test test_<name>. */
#define VLP_ADD_CASE(suite, name)                              \
    do {                                                       \
        TCase *tc_ = tcase_create(#name);                      \
        tcase_set_timeout(tc_, 120);                           \
        tcase_add_test(tc_, test_##name);                      \
        suite_add_tcase(suite, tc_);                           \
    } while (0)

#endif
