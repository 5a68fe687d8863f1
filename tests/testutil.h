/* Helpers shared by the Check suites: a main() that runs one suite and
 * fails the process when any test fails, one-test cases, and a gradient
 * check that prints what it compared and fails the test when it is off. */
#ifndef VLP_TESTUTIL_H
#define VLP_TESTUTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/gradcheck.h"

/* Runs the suite; the exit status fails when a test failed, and when no
 * test ran at all (a CK_RUN_CASE that names no case of the suite: ctest's
 * case list and the suite's disagree), so a typo cannot pass. */
static inline int vlp_test_run(Suite *suite) {
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr), ran = srunner_ntests_run(sr);
    srunner_free(sr);
    if (ran == 0) {
        const char *only = getenv("CK_RUN_CASE");
        fprintf(stderr, "no test ran%s%s%s\n", only ? ": CK_RUN_CASE=" : "", only ? only : "",
                only ? " names no case of this suite" : "");
        return EXIT_FAILURE;
    }
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#define VLP_TEST_MAIN(make_suite)                              \
    int main(void) { return vlp_test_run(make_suite()); }

/* A suite of one case per test, each case named as its test without the
 * "test_" prefix (the name ctest's CK_RUN_CASE gives). */
static inline Suite *vlp_test_suite(const char *name, const TTest *const *tests, size_t n) {
    Suite *s = suite_create(name);
    for (size_t i = 0; i < n; i++) {
        const char *case_name = tests[i]->name;
        if (!strncmp(case_name, "test_", 5)) case_name += 5;
        TCase *tc = tcase_create(case_name);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, tests[i]);
        suite_add_tcase(s, tc);
    }
    return s;
}

/* Defines static Suite *make_suite(void): the suite `name` of the tests
 * listed, each its own case: VLP_SUITE(clip_suite, "clip", test_a, test_b). */
#define VLP_SUITE(make_suite, name, ...)                                                  \
    static Suite *make_suite(void) {                                                      \
        const TTest *const tests_[] = {__VA_ARGS__};                                      \
        return vlp_test_suite(name, tests_, sizeof tests_ / sizeof tests_[0]);            \
    }

/* Adds a test case named `name` holding the single test test_<name>. */
#define VLP_ADD_CASE(suite, name)                              \
    do {                                                       \
        TCase *tc_ = tcase_create(#name);                      \
        tcase_set_timeout(tc_, 120);                           \
        tcase_add_test(tc_, test_##name);                      \
        suite_add_tcase(suite, tc_);                           \
    } while (0)

/* vlp_gradcheck of fn on p's parameters; fails the test when an error
 * exceeds the tolerance or fewer than min_checked elements were compared. */
static inline void vlp_test_gradcheck(vlp_params *p, vlp_gradcheck_fn fn, void *ctx,
                                      const vlp_gradcheck_opts *opts, const char *what,
                                      long min_checked) {
    vlp_gradcheck_report rep;
    bool ok = vlp_gradcheck(p, fn, ctx, opts, &rep);
    double tol = opts->tol > 0 ? opts->tol : 1e-2;
    printf("%s: %ld elements of %d tensors, max error %.2e (tolerance %.0e) at %s[%ld]\n", what,
           rep.checked, p->count, rep.max_error, tol, rep.worst_param, rep.worst_index);
    ck_assert_msg(ok, "%s: gradient of %s[%ld]: analytic %.6g, numeric %.6g, error %.3g > %.3g",
                  what, rep.worst_param, rep.worst_index, rep.analytic, rep.numeric,
                  rep.max_error, tol);
    ck_assert_int_ge(rep.checked, min_checked);
}

#endif
