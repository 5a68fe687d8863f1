/* The pieces of eval/eval_blip.h that need no model, on hand-built inputs
 * whose answers are known: recall from re-ranked top-k lists (by index and
 * by group, with ITC's ranks past k) and the nearest-neighbour lookup. The
 * re-ranking on a trained BLIP is tests/blip_results_cli.sh's. */
#include <check.h>
#include <stdlib.h>

#include "testutil.h"
#include "eval/eval_blip.h"

START_TEST(test_rerank_recall_pairs) {
    /* 4 queries, top 2 each; query q matches candidate q */
    int top[] = {0, 3,  /* q0: first */
                 2, 1,  /* q1: second */
                 0, 3,  /* q2: not in the top 2; ITC ranks it 4th */
                 1, 2}; /* q3: not in the top 2; ITC ranks it 12th */
    float score[] = {2, 1, 2, 1, 2, 1, 2, 1};
    long itc_rank[] = {1, 1, 4, 12};
    double r1, r5, r10;
    vlp_eval_rerank_recall(top, score, 2, itc_rank, NULL, 4, &r1, &r5, &r10);
    ck_assert_double_eq_tol(r1, 0.25, 1e-12);
    ck_assert_double_eq_tol(r5, 0.75, 1e-12);  /* q0, q1 in the top 2; q2 at ITC's 4 */
    ck_assert_double_eq_tol(r10, 0.75, 1e-12); /* q3 is past 10 */
}
END_TEST

START_TEST(test_rerank_recall_groups) {
    /* groups {0, 0, 1}: query 0 is matched by candidate 1 too */
    int groups[] = {0, 0, 1};
    int top[] = {1, 2, /* q0: candidate 1 shares its group: first */
                 2, 0, /* q1: candidate 0 at second */
                 0, 1}; /* q2: never in the top 2, ITC's 3rd */
    float score[] = {2, 1, 2, 1, 2, 1};
    long itc_rank[] = {1, 1, 3};
    double r1, r5, r10;
    vlp_eval_rerank_recall(top, score, 2, itc_rank, groups, 3, &r1, &r5, &r10);
    /* q0's second candidate (wrong) ties its first (a match): rank 2 */
    float tied[] = {2, 2, 2, 1, 2, 1};
    vlp_eval_rerank_recall(top, tied, 2, itc_rank, groups, 3, &r1, &r5, &r10);
    ck_assert_double_eq_tol(r1, 0.0, 1e-12);
    vlp_eval_rerank_recall(top, score, 2, itc_rank, groups, 3, &r1, &r5, &r10);
    ck_assert_double_eq_tol(r1, 1.0 / 3, 1e-12);
    ck_assert_double_eq_tol(r5, 1.0, 1e-12);
    /* No match in any top 3: R@5 and R@10 are ITC's ranks 7, 4, 20. */
    int miss[3 * 3] = {2, 2, 2, 2, 2, 2, 0, 1, 0};
    float miss_score[3 * 3] = {3, 2, 1, 3, 2, 1, 3, 2, 1};
    vlp_eval_rerank_recall(miss, miss_score, 3, (long[]){7, 4, 20}, groups, 3, &r1, &r5, &r10);
    ck_assert_double_eq_tol(r1, 0.0, 1e-12);
    ck_assert_double_eq_tol(r5, 1.0 / 3, 1e-12);
    ck_assert_double_eq_tol(r10, 2.0 / 3, 1e-12);
}
END_TEST

START_TEST(test_nearest) {
    float keys[] = {1, 0, 0, 1, -1, 0, 0.6f, 0.8f}; /* 4 keys, D = 2 */
    float q[] = {0.9f, 0.1f, 0.1f, 0.9f, -1, 0.2f, 0.5f, 0.5f};
    long best[4];
    vlp_eval_nearest(q, 4, keys, 4, 2, best);
    ck_assert_int_eq(best[0], 0);
    ck_assert_int_eq(best[1], 1);
    ck_assert_int_eq(best[2], 2);
    ck_assert_int_eq(best[3], 3); /* 0.7 beats 0.5 and 0.5 */
    float tie[] = {1, 0, 1, 0};
    vlp_eval_nearest(q, 1, tie, 2, 2, best);
    ck_assert_int_eq(best[0], 0); /* ties: the lower index */
}
END_TEST

VLP_SUITE(eval_blip_suite, "eval_blip", test_rerank_recall_pairs, test_rerank_recall_groups, test_nearest)

VLP_TEST_MAIN(eval_blip_suite)
