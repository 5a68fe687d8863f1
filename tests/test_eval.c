/* Evaluation metrics on hand-built embeddings whose answers are known:
 * zero-shot accuracy and confusion, retrieval ranks and recalls (pairs and
 * concepts), and the chance levels against a brute-force count; and
 * GroupViT's multi-label prompts built from captions (train/labels.h).
 * Then careless and hostile input to what evaluation reads: model files
 * with NaN weights, missing, foreign or truncated ones, indexes whose
 * arrays disagree or that another model made, NaN queries. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "train/config.h"
#include "testutil.h"
#include "eval/eval.h"
#include "train/labels.h"
#include "train/weights.h"
#include "apps/search.h"

/* Unit vectors in 2-D at the given angles (degrees), D = 2. */
static void at_angles(float *out, const double *deg, int n) {
    for (int i = 0; i < n; i++) {
        out[2 * i] = (float)cos(deg[i] * M_PI / 180.0);
        out[2 * i + 1] = (float)sin(deg[i] * M_PI / 180.0);
    }
}

START_TEST(test_zeroshot_counts) {
    /* classes at 0, 90, 180 degrees; images near one of them */
    double cls_deg[] = {0, 90, 180}, img_deg[] = {10, -20, 80, 100, 170, 60};
    int labels[] = {0, 0, 1, 1, 2, 0}; /* the last image (60 deg) is nearest class 1 */
    float cls[6], img[12];
    at_angles(cls, cls_deg, 3);
    at_angles(img, img_deg, 6);
    vlp_zeroshot_result r;
    vlp_eval_zeroshot(img, labels, 6, cls, 3, 2, &r);
    ck_assert_double_eq_tol(r.top1, 5.0 / 6.0, 1e-12);
    ck_assert_double_eq_tol(r.top5, 1.0, 1e-12); /* 3 classes: always in the top 5 */
    ck_assert_double_eq_tol(r.per_class[0], 2.0 / 3.0, 1e-12);
    ck_assert_double_eq_tol(r.per_class[1], 1.0, 1e-12);
    ck_assert_int_eq(r.confusion[0 * 3 + 1], 1); /* true 0, predicted 1 */
    ck_assert_int_eq(r.confusion[0 * 3 + 0], 2);
    ck_assert_int_eq(r.confusion[2 * 3 + 2], 1);
    vlp_zeroshot_result_free(&r);
}
END_TEST

START_TEST(test_retrieval_pairs) {
    /* image i and caption i at the same angle, except caption 3, placed
     * next to image 0: image 3's own caption then ranks behind it. */
    double img_deg[] = {0, 90, 180, 270}, txt_deg[] = {5, 90, 180, 2};
    float img[8], txt[8];
    at_angles(img, img_deg, 4);
    at_angles(txt, txt_deg, 4);
    vlp_retrieval_result r;
    vlp_eval_retrieval(img, txt, NULL, 4, 2, &r);
    /* image->text: images 1, 2 rank their captions first; image 0 sees
     * caption 3 (2 deg) before its own (5 deg); image 3 (270 deg) sees
     * caption 2 (cos 90 = 0) before its own (cos 268 < 0). */
    ck_assert_double_eq_tol(r.i2t_r1, 2.0 / 4.0, 1e-12);
    ck_assert_double_eq_tol(r.i2t_r5, 1.0, 1e-12);
    /* text->image: caption 3 (2 deg) finds images 0 and 1 before image 3 */
    ck_assert_double_eq_tol(r.t2i_r1, 3.0 / 4.0, 1e-12);
    ck_assert_double_eq_tol(r.chance_r1, 0.25, 1e-12);
    ck_assert_double_eq_tol(r.chance_r5, 1.0, 1e-12);
}
END_TEST

START_TEST(test_retrieval_concepts) {
    /* caption 1 is far from image 1 but image 1 shares caption 0's concept,
     * and caption 0 sits on image 1: with concepts, image 1's best match
     * ranks first. */
    double img_deg[] = {0, 90, 180}, txt_deg[] = {90, 300, 180};
    int groups[] = {7, 7, 9};
    float img[6], txt[6];
    at_angles(img, img_deg, 3);
    at_angles(txt, txt_deg, 3);
    vlp_retrieval_result pairs, concepts;
    vlp_eval_retrieval(img, txt, NULL, 3, 2, &pairs);
    vlp_eval_retrieval(img, txt, groups, 3, 2, &concepts);
    ck_assert_double_lt(pairs.i2t_r1, 1.0);
    ck_assert_double_eq_tol(concepts.i2t_r1, 1.0, 1e-12);
    ck_assert_double_eq_tol(concepts.i2t_median_rank, 1.0, 1e-12);
}
END_TEST

/* Captions 1 and 2 say the same thing: their embeddings are equal, or
 * differ by float rounding as they do when embedded in other batches.
 * Either way each of images 1, 2 ranks the other's caption as a tie ahead
 * of its own (rank 2), so R@1 does not depend on the batch. */
START_TEST(test_retrieval_ties) {
    double img_deg[] = {0, 88, 96};
    for (int variant = 0; variant < 3; variant++) {
        /* exact copy, then 1e-7 rad either way (well inside 1e-5) */
        double eps = variant == 0 ? 0.0 : (variant == 1 ? 1e-7 : -1e-7) * 180.0 / M_PI;
        double txt_deg[] = {0, 92, 92 + eps};
        float img[6], txt[6];
        at_angles(img, img_deg, 3);
        at_angles(txt, txt_deg, 3);
        vlp_retrieval_result r;
        vlp_eval_retrieval(img, txt, NULL, 3, 2, &r);
        ck_assert_double_eq_tol(r.i2t_r1, 1.0 / 3.0, 1e-12);
        ck_assert_double_eq_tol(r.i2t_median_rank, 2.0, 1e-12);
        /* text->image: images 1 and 2 lie 4 deg either side: a tie too */
        ck_assert_double_eq_tol(r.t2i_r1, 1.0 / 3.0, 1e-12);
    }
    /* 0.5 deg apart (cosines differ by ~3e-4): no tie, each caption ranks
     * by its own angle. */
    double txt_deg[] = {0, 90, 93.5}, img2_deg[] = {0, 89, 94};
    float img[6], txt[6];
    at_angles(img, img2_deg, 3);
    at_angles(txt, txt_deg, 3);
    vlp_retrieval_result r;
    vlp_eval_retrieval(img, txt, NULL, 3, 2, &r);
    ck_assert_double_eq_tol(r.i2t_r1, 1.0, 1e-12);
    ck_assert_double_eq_tol(r.t2i_r1, 1.0, 1e-12);
    /* the rank itself, strided as a column of a matrix */
    float col[] = {0.5f, 9, 0.9f, 9, 0.9f, 9, 0.2f, 9};
    ck_assert_int_eq(vlp_retrieval_rank(col, 2, NULL, 2, 4), 2);           /* item 1 ties */
    ck_assert_int_eq(vlp_retrieval_rank(col, 2, (int[]){0, 1, 1, 2}, 2, 4), 1); /* a match */
    ck_assert_int_eq(vlp_retrieval_rank(col, 2, NULL, 0, 4), 3);
}
END_TEST

/* The chance levels against counting every ranking of a small set. */
START_TEST(test_chance_by_enumeration) {
    int groups[] = {0, 0, 0, 1, 2, 2}; /* n = 6 */
    const int n = 6;
    float img[12] = {0}, txt[12] = {0};
    vlp_retrieval_result r;
    vlp_eval_retrieval(img, txt, groups, n, 2, &r);
    /* P(some match of query i among the first k of a random order) =
     * fraction of k-subsets of the n items containing a match. */
    for (int k = 1; k <= 5; k += 4) {
        double hit = 0.0;
        for (int i = 0; i < n; i++) {
            long subsets = 0, with = 0;
            for (int mask = 0; mask < 1 << n; mask++) {
                if (__builtin_popcount((unsigned)mask) != k) continue;
                subsets++;
                for (int j = 0; j < n; j++)
                    if (mask >> j & 1 && groups[j] == groups[i]) {
                        with++;
                        break;
                    }
            }
            hit += (double)with / (double)subsets;
        }
        ck_assert_double_eq_tol((k == 1 ? r.chance_r1 : r.chance_r5), hit / n, 1e-12);
    }
    ck_assert_double_eq_tol(r.chance_r10, 1.0, 1e-12);
}
END_TEST

/* The two rules, K larger than the labels found, templates cycled, and a
 * caption with no label standing for itself. */
START_TEST(test_prompt_labels) {
    char nouns[] = "/tmp/vlp-test-nouns-XXXXXX", tmpl[] = "/tmp/vlp-test-tmpl-XXXXXX";
    int fn = mkstemp(nouns), ft = mkstemp(tmpl);
    ck_assert(fn >= 0 && ft >= 0);
    ck_assert(write(fn, "Frog\ncat\nhat\n", 14) == 14);
    ck_assert(write(ft, "a photo of a {}.\n{} art\n", 25) == 25);
    close(fn), close(ft);
    char out[3][64];
    vlp_labeler l;
    ck_assert_int_eq(vlp_labeler_open(&l, VLP_LABELS_TAGS, "", tmpl), 0);
    ck_assert_int_eq(vlp_labeler_prompts(&l, "grinning face: face, grin , face,happy", 3, out[0], 64), 3);
    ck_assert_str_eq(out[0], "a photo of a face.");
    ck_assert_str_eq(out[1], "grin art");
    ck_assert_str_eq(out[2], "a photo of a happy.");
    ck_assert_int_eq(vlp_labeler_prompts(&l, "A frog.", 2, out[0], 64), 0);
    ck_assert_str_eq(out[0], "A frog.");
    ck_assert_str_eq(out[1], "A frog.");
    vlp_labeler_close(&l);
    ck_assert_int_eq(vlp_labeler_open(&l, VLP_LABELS_NOUNS, nouns, ""), 0);
    ck_assert_int_eq(vlp_labeler_prompts(&l, "A cat in a hat, and a cat-frog.", 3, out[0], 64), 3);
    ck_assert_str_eq(out[0], "a photo of a cat.");
    ck_assert_str_eq(out[1], "a photo of a hat.");
    ck_assert_str_eq(out[2], "a photo of a frog.");
    ck_assert_int_eq(vlp_labeler_prompts(&l, "Two cats.", 3, out[0], 64), 0); /* whole words only */
    vlp_labeler_close(&l);
    ck_assert_int_eq(vlp_labeler_open(&l, VLP_LABELS_NOUNS, "/nonexistent/nouns.txt", ""), VLP_ECONFIG);
    unlink(nouns), unlink(tmpl);
}
END_TEST


/* A two-tensor "model": enough for the weight file paths. */
static void tiny_params(vlp_params *p) {
    vlp_params_init(p);
    vlp_params_add(p, "visual.proj", 2, (int[]){3, 2});
    vlp_params_add(p, "logit_scale", 1, (int[]){1});
    vlp_params_alloc(p);
    for (size_t i = 0; i < p->n; i++) p->data[i] = 0.25f * (float)i;
}

static bool contains(const char *s, const char *part) { return strstr(s, part) != NULL; }

/* One NaN (or infinity) in a model file is refused on load, naming the
 * tensor; the same file with finite weights loads. */
START_TEST(test_weights_nan_refused) {
    char path[] = "/tmp/vlp-test-nan-XXXXXX";
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    close(fd);
    vlp_params p, q;
    tiny_params(&p), tiny_params(&q);
    ck_assert_int_eq(vlp_weights_save(&p, path), VLP_OK);
    ck_assert_int_eq(vlp_weights_load(&q, path), VLP_OK);
    p.data[4] = NAN;
    ck_assert_int_eq(vlp_weights_save(&p, path), VLP_OK);
    ck_assert_int_eq(vlp_weights_load(&q, path), VLP_EFORMAT);
    ck_assert_msg(contains(vlp_error_message(), "tensor visual.proj holds NaN (element 4 of 6)"), "%s",
                  vlp_error_message());
    p.data[4] = 1.0f, p.data[6] = -INFINITY;
    ck_assert_int_eq(vlp_weights_save(&p, path), VLP_OK);
    ck_assert_int_eq(vlp_weights_load(&q, path), VLP_EFORMAT);
    ck_assert_msg(contains(vlp_error_message(), "tensor logit_scale holds infinity"), "%s", vlp_error_message());
    vlp_params_free(&p), vlp_params_free(&q);
    unlink(path);
}
END_TEST

/* Missing, not HDF5 and truncated say so, as docs/errors.md promises. */
START_TEST(test_weights_open_errors) {
    char path[] = "/tmp/vlp-test-open-XXXXXX";
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    close(fd);
    vlp_params p;
    tiny_params(&p);
    ck_assert_int_eq(vlp_weights_save(&p, path), VLP_OK);
    ck_assert_int_eq(truncate(path, 600), 0);
    ck_assert_int_eq(vlp_weights_load(&p, path), VLP_EFORMAT);
    ck_assert_msg(contains(vlp_error_message(), "an HDF5 file that cannot be read (600 bytes: truncated or damaged?)"),
                  "%s", vlp_error_message());
    FILE *f = fopen(path, "w");
    fputs("not a model\n", f);
    fclose(f);
    ck_assert_int_eq(vlp_weights_load(&p, path), VLP_EFORMAT);
    ck_assert_msg(contains(vlp_error_message(), "not an HDF5 file, so not a vlp model file"), "%s", vlp_error_message());
    unlink(path);
    ck_assert_int_eq(vlp_weights_load(&p, path), VLP_ENOTFOUND);
    ck_assert_msg(contains(vlp_error_message(), "No such file or directory"), "%s", vlp_error_message());
    vlp_params_free(&p);
}
END_TEST

/* The identity an index records: the same for the same weights, another
 * when one weight changes; vlp_index_check_model refuses another model's
 * index naming both, accepts its own, and reads an index without one. */
START_TEST(test_index_identity) {
    char path[] = "/tmp/vlp-test-index-XXXXXX";
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    close(fd);
    vlp_params a, b;
    tiny_params(&a), tiny_params(&b);
    char ida[VLP_WEIGHTS_ID_SIZE], idb[VLP_WEIGHTS_ID_SIZE];
    vlp_weights_identity(&a, ida);
    vlp_weights_identity(&b, idb);
    ck_assert_str_eq(ida, idb);
    b.data[2] += 1e-6f;
    vlp_weights_identity(&b, idb);
    ck_assert_str_ne(ida, idb);
    float feats[4] = {1, 0, 0, 1};
    const char *texts[2] = {"a frog", "a hat"};
    ck_assert_int_eq(vlp_index_save_texts(path, feats, 2, 2, texts, "t.txt", "runA", ida), VLP_OK);
    vlp_index ix;
    ck_assert_int_eq(vlp_index_load(&ix, path), VLP_OK);
    ck_assert_str_eq(ix.model, "runA");
    ck_assert_str_eq(ix.model_id, ida);
    vlp_model ma = {.embed_dim = 2, .params = &a}, mb = {.embed_dim = 2, .params = &b};
    ck_assert_int_eq(vlp_index_check_model(&ix, "ix.h5", &ma, "runA"), VLP_OK);
    ck_assert_int_eq(vlp_index_check_model(&ix, "ix.h5", &mb, "runB"), VLP_EINVAL);
    ck_assert_msg(contains(vlp_error_message(), "ix.h5 was made by another model (runA, weights") &&
                  contains(vlp_error_message(), "not by runB (weights"), "%s", vlp_error_message());
    mb.embed_dim = 3;
    ck_assert_int_eq(vlp_index_check_model(&ix, "ix.h5", &mb, "runB"), VLP_EINVAL);
    ck_assert_msg(contains(vlp_error_message(), "ix.h5 holds 2-d features, the model runB makes 3-d ones"), "%s",
                  vlp_error_message());
    vlp_index_free(&ix);
    ck_assert_int_eq(vlp_index_save_texts(path, feats, 2, 2, texts, "t.txt", NULL, NULL), VLP_OK); /* as before: no identity */
    ck_assert_int_eq(vlp_index_load(&ix, path), VLP_OK);
    ck_assert_ptr_null(ix.model_id);
    ck_assert_int_eq(vlp_index_check_model(&ix, "ix.h5", &ma, "runA"), VLP_OK); /* with a warning */
    vlp_index_free(&ix);
    vlp_params_free(&a), vlp_params_free(&b);
    unlink(path);
}
END_TEST

/* A NaN row is never written; an index whose caption or path lists do not
 * match its rows, or holding NaN, is refused on open, saying which. */
START_TEST(test_index_refuses_bad_arrays) {
    char path[] = "/tmp/vlp-test-index-XXXXXX";
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    close(fd);
    unlink(path);
    float feats[6] = {1, 0, 0, 1, NAN, 0};
    const char *texts[3] = {"a frog", "a hat", "a cat"};
    ck_assert_int_eq(vlp_index_save_texts(path, feats, 3, 2, texts, "t.txt", "run", "00"), VLP_EFORMAT);
    ck_assert_msg(contains(vlp_error_message(), "the embedding of 'a cat' (row 2) is not finite"), "%s",
                  vlp_error_message());
    ck_assert_int_eq(access(path, F_OK), -1);
    feats[4] = 0.6f, feats[5] = 0.8f;
    ck_assert_int_eq(vlp_index_save_texts(path, feats, 3, 2, texts, "t.txt", NULL, NULL), VLP_OK);
    /* 3 rows, 1 caption: the lists disagree */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert(f >= 0);
    ck_assert(H5Ldelete(f, "captions", H5P_DEFAULT) >= 0);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t sp = H5Screate_simple(1, (hsize_t[]){1}, NULL);
    hid_t d = H5Dcreate2(f, "captions", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const char *one[1] = {"only"};
    ck_assert(d >= 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, one) >= 0);
    H5Dclose(d), H5Sclose(sp), H5Tclose(t);
    /* and a NaN feature, found once the counts are right */
    hid_t fd5 = H5Dopen2(f, "features", H5P_DEFAULT);
    float bad[6] = {1, 0, 0, 1, NAN, 0.8f};
    ck_assert(H5Dwrite(fd5, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, bad) >= 0);
    H5Dclose(fd5);
    H5Fclose(f);
    vlp_index ix;
    ck_assert_int_eq(vlp_index_load(&ix, path), VLP_EFORMAT);
    ck_assert_msg(contains(vlp_error_message(), "/features holds 3 rows but /captions holds 1 string:"), "%s",
                  vlp_error_message());
    ck_assert_int_eq(vlp_index_save_texts(path, feats, 3, 2, texts, "t.txt", NULL, NULL), VLP_OK);
    f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    fd5 = H5Dopen2(f, "features", H5P_DEFAULT);
    ck_assert(H5Dwrite(fd5, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, bad) >= 0);
    H5Dclose(fd5), H5Fclose(f);
    ck_assert_int_eq(vlp_index_load(&ix, path), VLP_EFORMAT);
    ck_assert_msg(contains(vlp_error_message(), "the features of row 2 (a cat) are not finite"), "%s",
                  vlp_error_message());
    unlink(path);
    ck_assert_int_eq(vlp_index_load(&ix, path), VLP_ENOTFOUND);
}
END_TEST

/* A NaN query (or row) still gives k rows of the index, each once: NaN
 * compares false both ways, and once left row -1 in the answer. */
START_TEST(test_index_top_nan) {
    float feats[8] = {1, 0, 0, 1, NAN, 0, 0.6f, 0.8f};
    vlp_index ix = {.n = 4, .dim = 2, .features = feats};
    long rows[4];
    float scores[4];
    float queries[2][2] = {{NAN, NAN}, {1, 0}};
    for (int q = 0; q < 2; q++) {
        ck_assert_int_eq(vlp_index_top(&ix, queries[q], 4, rows, scores), q == 0 ? VLP_EFORMAT : VLP_OK);
        bool seen[4] = {0};
        for (int j = 0; j < 4; j++) {
            ck_assert(rows[j] >= 0 && rows[j] < 4);
            ck_assert(!seen[rows[j]]);
            seen[rows[j]] = true;
        }
    }
    ck_assert_int_eq(rows[0], 0); /* the finite query: its best row first, NaN row last */
    ck_assert_int_eq(rows[3], 2);
}
END_TEST

VLP_SUITE(eval_suite, "eval", test_zeroshot_counts, test_retrieval_pairs, test_retrieval_concepts,
          test_retrieval_ties, test_chance_by_enumeration, test_prompt_labels, test_weights_nan_refused,
          test_weights_open_errors, test_index_identity, test_index_refuses_bad_arrays, test_index_top_nan)

VLP_TEST_MAIN(eval_suite)
