/* Caption metrics: BLEU-1..4 and CIDEr-D against tests/caption_metrics_ref.py
 * (written from the definitions, Python standard library) on a corpus of
 * 40 captions, and cases checked by hand. The reference's file defaults to
 * the committed tests/golden/caption_metrics.json; VLP_CAPTION_METRICS_GOLDEN
 * points at a fresh one. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "testutil.h"
#include "eval/caption_metrics.h"

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f, "cannot open %s (run tests/caption_metrics_ref.py)", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    ck_assert(s && fread(s, 1, (size_t)n, f) == (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

START_TEST(test_reference) {
    char path[4096];
    const char *env = getenv("VLP_CAPTION_METRICS_GOLDEN");
    snprintf(path, sizeof path, "%s",
             env ? env : VLP_SOURCE_DIR "/tests/golden/caption_metrics.json");
    printf("reference %s\n", path);
    char *text = read_text(path);
    cJSON *root = cJSON_Parse(text);
    ck_assert_msg(root, "%s is not JSON", path);
    cJSON *cands = cJSON_GetObjectItem(root, "candidates"), *refs = cJSON_GetObjectItem(root, "refs");
    int n = cJSON_GetArraySize(cands);
    ck_assert_int_eq(cJSON_GetArraySize(refs), n);
    const char **candidates = malloc((size_t)n * sizeof *candidates);
    int *ref_start = malloc((size_t)(n + 1) * sizeof *ref_start);
    const char **ref_texts = malloc(1000 * sizeof *ref_texts);
    int total = 0;
    for (int i = 0; i < n; i++) {
        candidates[i] = cJSON_GetArrayItem(cands, i)->valuestring;
        ref_start[i] = total;
        cJSON *r = cJSON_GetArrayItem(refs, i);
        for (int j = 0; j < cJSON_GetArraySize(r) && total < 1000; j++)
            ref_texts[total++] = cJSON_GetArrayItem(r, j)->valuestring;
    }
    ref_start[n] = total;
    vlp_caption_corpus c = {n, candidates, ref_texts, ref_start};
    double bleu[4], cider, *per = malloc((size_t)n * sizeof *per);
    ck_assert_int_eq(vlp_caption_bleu(&c, bleu), VLP_OK);
    ck_assert_int_eq(vlp_caption_cider_d(&c, &cider, per), VLP_OK);
    cJSON *want_bleu = cJSON_GetObjectItem(root, "bleu");
    double worst = 0;
    for (int k = 0; k < 4; k++) {
        double want = cJSON_GetArrayItem(want_bleu, k)->valuedouble;
        printf("BLEU-%d %.10f (Python %.10f)\n", k + 1, bleu[k], want);
        worst = fmax(worst, fabs(bleu[k] - want));
    }
    double want_cider = cJSON_GetObjectItem(root, "cider")->valuedouble;
    printf("CIDEr-D %.10f (Python %.10f)\n", cider, want_cider);
    worst = fmax(worst, fabs(cider - want_cider));
    cJSON *want_per = cJSON_GetObjectItem(root, "cider_per_candidate");
    int nonzero = 0;
    for (int i = 0; i < n; i++) {
        worst = fmax(worst, fabs(per[i] - cJSON_GetArrayItem(want_per, i)->valuedouble));
        nonzero += per[i] > 0;
    }
    printf("%d candidates, %d references, %d with CIDEr-D > 0: max abs difference %.2e\n", n,
           total, nonzero, worst);
    ck_assert_msg(worst < 1e-9, "metrics differ from the Python reference by %.3g", worst);
    free(per), free(candidates), free(ref_start), free(ref_texts);
    cJSON_Delete(root);
    free(text);
}
END_TEST

/* Captions equal to their references (but for case and punctuation): BLEU
 * 1, and CIDEr-D 10 (each cosine 1, no length penalty) where every n-gram
 * is rarer than the whole corpus. */
START_TEST(test_identical) {
    const char *cands[] = {"A dog runs on the grass.", "two cats sleep in the sun",
                           "a red car parked near a tree"};
    const char *refs[] = {"a dog runs on the grass", "a dog runs on the grass",
                          "Two cats sleep in the sun!", "a red car, parked near a tree"};
    int start[] = {0, 2, 3, 4};
    vlp_caption_corpus c = {3, cands, refs, start};
    double bleu[4], cider, per[3];
    ck_assert_int_eq(vlp_caption_bleu(&c, bleu), VLP_OK);
    ck_assert_int_eq(vlp_caption_cider_d(&c, &cider, per), VLP_OK);
    for (int k = 0; k < 4; k++) ck_assert_double_eq_tol(bleu[k], 1.0, 1e-9);
    /* "a" and "the" occur in 2 of 3 documents: idf log 3 - log 2 > 0 still. */
    for (int i = 0; i < 3; i++) ck_assert_double_eq_tol(per[i], 10.0, 1e-9);
    ck_assert_double_eq_tol(cider, 10.0, 1e-9);
}
END_TEST

/* No word in common: every precision and cosine is 0. */
START_TEST(test_no_overlap) {
    const char *cands[] = {"blue sky over hills", "old boat"};
    const char *refs[] = {"a dog runs on the grass", "two cats sleep", "a red car"};
    int start[] = {0, 2, 3};
    vlp_caption_corpus c = {2, cands, refs, start};
    double bleu[4], cider, per[2];
    ck_assert_int_eq(vlp_caption_bleu(&c, bleu), VLP_OK);
    ck_assert_int_eq(vlp_caption_cider_d(&c, &cider, per), VLP_OK);
    for (int k = 0; k < 4; k++) ck_assert_double_lt(bleu[k], 1e-6); /* the 1e-15 smoothing */
    ck_assert_double_eq(cider, 0.0);
}
END_TEST

/* By hand. "the cat sat on the mat" against "the cat is on the mat" and
 * "there is a cat on the mat": closest reference length 6 = c, no brevity
 * penalty. Clipped matches: unigrams the 2, cat, on, mat: 5 of 6; bigrams
 * "the cat", "on the", "the mat": 3 of 5; trigrams "on the mat": 1 of 4;
 * 4-grams none of 3. BLEU-1 5/6, BLEU-2 sqrt(1/2), BLEU-3 (1/8)^(1/3) =
 * 1/2, BLEU-4 ~ 0. And "the cat" against "the cat sat on the mat": both
 * precisions 1, c = 2, r = 6: BLEU-2 = exp(1 - 6/2). */
START_TEST(test_by_hand) {
    const char *cands[] = {"the cat sat on the mat"};
    const char *refs[] = {"the cat is on the mat", "there is a cat on the mat"};
    int start[] = {0, 2};
    vlp_caption_corpus c = {1, cands, refs, start};
    double bleu[4];
    ck_assert_int_eq(vlp_caption_bleu(&c, bleu), VLP_OK);
    ck_assert_double_eq_tol(bleu[0], 5.0 / 6.0, 1e-9);
    ck_assert_double_eq_tol(bleu[1], sqrt(0.5), 1e-9);
    ck_assert_double_eq_tol(bleu[2], 0.5, 1e-9);
    ck_assert_double_lt(bleu[3], 1e-3);

    const char *short_cand[] = {"the cat"};
    const char *long_ref[] = {"the cat sat on the mat"};
    int one[] = {0, 1};
    vlp_caption_corpus s = {1, short_cand, long_ref, one};
    ck_assert_int_eq(vlp_caption_bleu(&s, bleu), VLP_OK);
    ck_assert_double_eq_tol(bleu[1], exp(1.0 - 3.0), 1e-9);

    /* CIDEr-D on one document: idf log 1 - log 1 = 0, every weight 0. */
    double cider;
    ck_assert_int_eq(vlp_caption_cider_d(&c, &cider, NULL), VLP_OK);
    ck_assert_double_eq(cider, 0.0);
}
END_TEST

START_TEST(test_errors) {
    const char *cands[] = {"a dog", "a cat"};
    const char *refs[] = {"a dog"};
    int start[] = {0, 1, 1}; /* the second candidate has no reference */
    vlp_caption_corpus c = {2, cands, refs, start};
    double bleu[4], cider;
    ck_assert_int_eq(vlp_caption_bleu(&c, bleu), VLP_EINVAL);
    ck_assert_int_eq(vlp_caption_cider_d(&c, &cider, NULL), VLP_EINVAL);
    printf("%s\n", vlp_error_message());
}
END_TEST

VLP_SUITE(caption_metrics_suite, "caption_metrics", test_reference, test_identical, test_no_overlap, test_by_hand,
          test_errors)

VLP_TEST_MAIN(caption_metrics_suite)
