/* Zero-shot segmentation and its data: the mIoU evaluator, the assignment
 * product, upsampling and labelling, and the two baselines on crafted
 * cases computed by hand; GroupViT's tower as segmentation runs it against
 * vlp_groupvit_encode_image; the scene generator's masks against the
 * cut-outs' alpha, its splits and its determinism, on crafted cut-outs and
 * (segment.scenes_real_data, skipped without data/) on the real ones. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stb_image_write.h>

#include "base/file.h"
#include "base/error.h"
#include "data/scenes.h"
#include "testutil.h"
#include "train/checkpoint.h"
#include "eval/segment.h"

/* ---- mIoU ------------------------------------------------------------------------ */

START_TEST(test_miou_hand) {
    /* label 0: truth {0,1,6}, predicted {0,5,6}: 2 / 4
     * label 1: truth {2,3,7}, predicted {1,2,3}: 2 / 4
     * label 2: truth {4,5},   predicted {4,7}:   1 / 3   -> mean 4/9, accuracy 5/8 */
    const uint8_t truth[8] = {0, 0, 1, 1, 2, 2, 0, 1}, pred[8] = {0, 1, 1, 1, 2, 0, 0, 2};
    vlp_miou m;
    ck_assert_int_eq(vlp_miou_init(&m, 3), VLP_OK);
    /* in two parts: the counts accumulate */
    ck_assert_int_eq(vlp_miou_add(&m, truth, pred, 3), VLP_OK);
    ck_assert_int_eq(vlp_miou_add(&m, truth + 3, pred + 3, 5), VLP_OK);
    double iou[3], acc;
    double mean = vlp_miou_compute(&m, iou, &acc);
    ck_assert_double_eq_tol(iou[0], 0.5, 1e-12);
    ck_assert_double_eq_tol(iou[1], 0.5, 1e-12);
    ck_assert_double_eq_tol(iou[2], 1.0 / 3.0, 1e-12);
    ck_assert_double_eq_tol(mean, 4.0 / 9.0, 1e-12);
    ck_assert_double_eq_tol(acc, 5.0 / 8.0, 1e-12);
    vlp_miou_free(&m);

    /* a fourth label predicted once (pixel 7) but never true: no IoU of its
     * own (NaN, not in the mean); label 2 loses that false positive: 1 / 2 */
    const uint8_t pred2[8] = {0, 1, 1, 1, 2, 0, 0, 3};
    ck_assert_int_eq(vlp_miou_init(&m, 4), VLP_OK);
    ck_assert_int_eq(vlp_miou_add(&m, truth, pred2, 8), VLP_OK);
    double iou4[4];
    mean = vlp_miou_compute(&m, iou4, NULL);
    ck_assert(isnan(iou4[3]));
    ck_assert_double_eq_tol(iou4[2], 0.5, 1e-12);
    ck_assert_double_eq_tol(mean, 0.5, 1e-12);
    /* a label out of range is refused and counts nothing */
    const uint8_t bad[2] = {0, 4};
    ck_assert_int_eq(vlp_miou_add(&m, bad, bad, 2), VLP_EINVAL);
    ck_assert_int_eq(m.confusion[0], 2);
    vlp_miou_free(&m);
}
END_TEST

/* ---- building blocks ------------------------------------------------------------------ */

START_TEST(test_assign_product_upsample) {
    /* 2x2 patches, 3 then 2 groups; columns are softmax outputs (sum 1) */
    const float a0[3 * 4] = {1, 0, 0, 0.2f, 0, 1, 0, 0.3f, 0, 0, 1, 0.5f};
    const float a1[2 * 3] = {1, 0, 0.4f, 0, 1, 0.6f};
    /* A1 A0 = [[1, 0, 0.4, 0.2 + 0.4 * 0.5], [0, 1, 0.6, 0.3 + 0.6 * 0.5]] */
    const float want[2 * 4] = {1, 0, 0.4f, 0.4f, 0, 1, 0.6f, 0.6f};
    float final[8];
    vlp_segment_assign_product((const float *[]){a0, a1}, (int[]){3, 2}, 2, 4, final);
    for (int i = 0; i < 8; i++) ck_assert_float_eq_tol(final[i], want[i], 1e-6f);
    int idx[4];
    vlp_segment_argmax(final, 2, 4, idx);
    ck_assert_int_eq(idx[0], 0);
    ck_assert_int_eq(idx[1], 1);
    ck_assert_int_eq(idx[2], 1);
    ck_assert_int_eq(idx[3], 1);
    /* one stage: the product is the matrix */
    float one[12];
    vlp_segment_assign_product((const float *[]){a0}, (int[]){3}, 1, 4, one);
    ck_assert_mem_eq(one, a0, sizeof one);

    /* to 4x4 with half-pixel centres: source coordinate (i + 0.5) / 2 - 0.5,
     * so rows and columns sample the grid at -0.25 (clamped to 0), 0.25,
     * 0.75, 1.25 (clamped to 1). Map 0 is [[1, 0], [0.4, 0.4]]:
     *   (0,0) = 1; (0,1) = 0.75; (1,1) = 0.75 (0.75) + 0.4 (0.25) = 0.6625;
     *   (2,1) = 0.75 (0.25) + 0.4 (0.75) = 0.4875; row 3 = 0.4.
     * (torch's interpolate(bilinear, align_corners=False) gives the same.) */
    float up[2 * 16];
    vlp_segment_upsample(final, 2, 2, 2, 4, 4, up);
    ck_assert_float_eq_tol(up[0], 1.0f, 1e-6f);
    ck_assert_float_eq_tol(up[1], 0.75f, 1e-6f);
    ck_assert_float_eq_tol(up[1 * 4 + 1], 0.6625f, 1e-6f);
    ck_assert_float_eq_tol(up[2 * 4 + 1], 0.4875f, 1e-6f);
    for (int x = 0; x < 4; x++) ck_assert_float_eq_tol(up[3 * 4 + x], 0.4f, 1e-6f);
    for (int p = 0; p < 16; p++) ck_assert_float_eq_tol(up[p] + up[16 + p], 1.0f, 1e-6f);
    /* pixel groups: map 0 wins where its value is above 1/2 */
    int pix[16];
    vlp_segment_argmax(up, 2, 16, pix);
    for (int p = 0; p < 16; p++) ck_assert_int_eq(pix[p], up[p] > 0.5f ? 0 : 1);
    /* the same grid size: the maps unchanged */
    float same[8];
    vlp_segment_upsample(final, 2, 2, 2, 2, 2, same);
    ck_assert_mem_eq(same, final, sizeof same);
}
END_TEST

START_TEST(test_labels_and_baselines) {
    const float classes[2 * 2] = {1, 0, 0, 1};
    /* cosines 0.8 (class 0), 0.8 (class 1), 0.6 (below 0.7: background) */
    const float emb[3 * 2] = {0.8f, 0.6f, 0.6f, 0.8f, 0.6f, -0.8f};
    uint8_t label[3];
    float best[3];
    vlp_segment_nearest_class(emb, 3, classes, 2, 2, 0.7f, label, best);
    ck_assert_int_eq(label[0], 1);
    ck_assert_int_eq(label[1], 2);
    ck_assert_int_eq(label[2], 0);
    ck_assert_float_eq_tol(best[2], 0.6f, 1e-6f);

    /* GroupViT's rule. Three classes on axes, scale 10; the image nearest
     * classes 0 then 1, so with topk 2 class 2 never names a group. */
    const float axes[3 * 3] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, image[3] = {0.8f, 0.6f, 0};
    const float groups[3 * 3] = {0.6f, 0.8f, 0,  /* class 1 */
                                 0, 0.6f, 0.8f,  /* nearest class 2, left out: class 1 */
                                 0.6f, 0, 0.8f}; /* nearest class 2, left out: class 0 */
    uint8_t gl[3];
    vlp_segment_groupvit_labels(groups, 3, image, axes, 3, 3, 10.0f, 2, 0.0f, gl);
    const uint8_t gwant[3] = {2, 2, 1};
    ck_assert_mem_eq(gl, gwant, 3);
    /* the product for group 0, class 1: softmax over {0, 1} of (6, 8) times
     * softmax over all of (6, 8, 0); the largest of all groups */
    double top = 1 / (1 + exp(-2.0)), all = exp(8.0) / (exp(6.0) + exp(8.0) + 1);
    vlp_segment_groupvit_labels(groups, 3, image, axes, 3, 3, 10.0f, 2, (float)(top * all) - 1e-4f, gl);
    const uint8_t only0[3] = {2, 0, 0};
    ck_assert_mem_eq(gl, only0, 3);
    /* a threshold above every product is capped: the best group stays */
    vlp_segment_groupvit_labels(groups, 3, image, axes, 3, 3, 10.0f, 2, 1.5f, gl);
    ck_assert_mem_eq(gl, only0, 3);
    /* topk K: the nearest class, as vlp_segment_nearest_class */
    vlp_segment_groupvit_labels(groups, 3, image, axes, 3, 3, 10.0f, 3, 0.0f, gl);
    const uint8_t nearest[3] = {2, 3, 3};
    ck_assert_mem_eq(gl, nearest, 3);

    /* oracle groups: each group the majority of its truth */
    const int pgroup[6] = {0, 0, 0, 1, 1, 2};
    const uint8_t ptruth[6] = {4, 4, 0, 0, 1, 3};
    uint8_t pmaj[6];
    vlp_segment_oracle_groups(pgroup, 3, ptruth, 6, pmaj);
    const uint8_t mwant[6] = {4, 4, 4, 0, 0, 3}; /* group 1's tie: the lower label */
    ck_assert_mem_eq(pmaj, mwant, 6);

    /* oracle: the image is nearest class 1 (label 2), painted on the truth's foreground */
    const uint8_t gt[6] = {0, 1, 2, 0, 2, 1};
    uint8_t pred[6];
    vlp_segment_oracle(emb + 2, classes, 2, 2, gt, 6, pred);
    const uint8_t want[6] = {0, 2, 2, 0, 2, 2};
    ck_assert_mem_eq(pred, want, 6);

    /* dense: a 1x3 grid of patches at its own size: each patch its label */
    uint8_t dense[3];
    vlp_segment_dense(emb, 1, 3, classes, 2, 2, 0.7f, 1, 3, dense);
    ck_assert_mem_eq(dense, label, 3);
    /* upsampled to 2x6: pixel x samples the grid at (x + 0.5) / 2 - 0.5 =
     * -0.25 (clamped: patch 0), 0.25, 0.75, 1.25, 1.75, 2.25 (clamped: patch
     * 2), the similarity maps blended linearly. Patch sims (0.8, 0.6),
     * (0.6, 0.8), (0.6, -0.8):
     *   x = 1: 0.75 p0 + 0.25 p1 = (0.75, 0.65): class 0
     *   x = 2: 0.25 p0 + 0.75 p1 = (0.65, 0.75): class 1
     *   x = 3: 0.75 p1 + 0.25 p2 = (0.6, 0.4): below 0.7, background
     *   x = 4: 0.25 p1 + 0.75 p2 = (0.6, -0.4): background */
    uint8_t big[12];
    vlp_segment_dense(emb, 1, 3, classes, 2, 2, 0.7f, 2, 6, big);
    const uint8_t want_big[6] = {1, 1, 2, 0, 0, 0};
    ck_assert_mem_eq(big, want_big, 6);
    ck_assert_mem_eq(big + 6, want_big, 6);
}
END_TEST

/* ---- GroupViT ------------------------------------------------------------------------------ */

static const vlp_groupvit_config tiny_config = {
    .embed_dim = 6, .image_size = 8, .patch_size = 2, .width = 8, .heads = 2, .mlp_ratio = 2.0f,
    .n_groupings = 2, .depths = {1, 1, 1}, .group_tokens = {4, 3}, .output_groups = {4, 2},
    .proj_hidden = 6, .gumbel_tau = 1.0f, .assign_eps = 1.0f, .vocab_size = 20,
    .context_length = 6, .text_width = 8, .text_layers = 1, .text_heads = 2,
    .multi_label_weight = 1.0f};

START_TEST(test_groupvit_tower_matches) {
    vlp_groupvit m;
    ck_assert_int_eq(vlp_groupvit_init(&m, &tiny_config, 3), VLP_OK);
    /* random group tokens of the later stage too (GroupViT starts them at 0) */
    vlp_rng rng;
    vlp_rng_init(&rng, 4);
    vlp_rng_fill_normal(&rng, m.layers[1].group_token->data, m.layers[1].group_token->n, 0, 0.5f);
    enum { B = 2, S = 8 };
    float images[B * 3 * S * S];
    vlp_rng_fill_normal(&rng, images, B * 3 * S * S, 0, 1);
    vlp_tape t;
    vlp_tape_init(&t);
    vlp_tape_no_grad_begin(&t);
    vlp_tensor *x = vlp_tape_wrap(&t, images, 4, (int[]){B, 3, S, S});
    vlp_tensor *want_assign[VLP_GROUPVIT_MAX_GROUPINGS], *assign[VLP_GROUPVIT_MAX_GROUPINGS];
    vlp_tensor *want = vlp_groupvit_encode_image(&m, &t, x, NULL, want_assign);
    vlp_tensor *groups, *image;
    image = vlp_groupvit_encode_image_groups(&m, &t, x, NULL, assign, &groups);
    ck_assert_int_eq(image->n, want->n);
    for (long i = 0; i < want->n; i++) ck_assert_float_eq_tol(image->data[i], want->data[i], 1e-6f);
    for (int s = 0; s < 2; s++) {
        ck_assert_int_eq(assign[s]->n, want_assign[s]->n);
        for (long i = 0; i < assign[s]->n; i++)
            ck_assert_float_eq_tol(assign[s]->data[i], want_assign[s]->data[i], 1e-6f);
    }
    ck_assert_int_eq(groups->ndim, 3);
    ck_assert_int_eq(groups->shape[0], B);
    ck_assert_int_eq(groups->shape[1], 2);
    ck_assert_int_eq(groups->shape[2], 6);
    for (int r = 0; r < B * 2; r++) {
        double norm = 0;
        for (int d = 0; d < 6; d++) norm += groups->data[r * 6 + d] * groups->data[r * 6 + d];
        ck_assert_double_eq_tol(norm, 1.0, 1e-5);
    }
    vlp_tape_no_grad_end(&t);
    vlp_tape_free(&t);
    vlp_groupvit_free(&m);
}
END_TEST

/* A whole image through a random tiny GroupViT: every pixel of one group
 * gets that group's label, and the oracle paints one class on the truth. */
START_TEST(test_segment_image) {
    vlp_model m = {.kind = VLP_MODEL_GROUPVIT, .embed_dim = 6, .image_size = 8};
    ck_assert_int_eq(vlp_groupvit_init(&m.groupvit, &tiny_config, 9), VLP_OK);
    vlp_rng rng;
    vlp_rng_init(&rng, 5);
    vlp_rng_fill_normal(&rng, m.groupvit.layers[1].group_token->data, m.groupvit.layers[1].group_token->n, 0, 1);
    enum { H = 12, W = 10, K = 3 };
    vlp_image img = {.w = W, .h = H, .rgb = malloc(H * W * 3)};
    for (int i = 0; i < H * W * 3; i++) img.rgb[i] = (uint8_t)vlp_rng_below(&rng, 256);
    float classes[K * 6];
    vlp_rng_fill_normal(&rng, classes, K * 6, 0, 1);
    for (int k = 0; k < K; k++) {
        float n = 0;
        for (int d = 0; d < 6; d++) n += classes[k * 6 + d] * classes[k * 6 + d];
        for (int d = 0; d < 6; d++) classes[k * 6 + d] /= sqrtf(n);
    }
    uint8_t gt[H * W], pred[H * W], oracle[H * W];
    int group[H * W];
    for (int p = 0; p < H * W; p++) gt[p] = (uint8_t)(p % 7 == 0 ? 0 : 1 + p % 3);
    vlp_segment_rule never_background = {.threshold = -2.0f};
    ck_assert_int_eq(vlp_segment_image(&m, &img, classes, K, &never_background, gt, pred, group, oracle), VLP_OK);
    int label_of[2] = {-1, -1};
    for (int p = 0; p < H * W; p++) {
        ck_assert(group[p] >= 0 && group[p] < 2);
        ck_assert(pred[p] >= 1 && pred[p] <= K); /* threshold -2: never background */
        if (label_of[group[p]] < 0) label_of[group[p]] = pred[p];
        ck_assert_int_eq(pred[p], label_of[group[p]]);
        ck_assert_int_eq(oracle[p] == 0, gt[p] == 0);
        if (gt[p]) ck_assert_int_eq(oracle[p], oracle[1]);
    }
    /* a threshold above every cosine: all background */
    vlp_segment_rule above_all = {.threshold = 1.5f};
    ck_assert_int_eq(vlp_segment_image(&m, &img, classes, K, &above_all, NULL, pred, NULL, NULL), VLP_OK);
    for (int p = 0; p < H * W; p++) ck_assert_int_eq(pred[p], 0);
    /* GroupViT's rule over the image's best class: no threshold, that class everywhere */
    vlp_segment_rule image_class = {.topk = 1};
    ck_assert_int_eq(vlp_segment_image(&m, &img, classes, K, &image_class, gt, pred, group, oracle), VLP_OK);
    for (int p = 0; p < H * W; p++) ck_assert_int_eq(pred[p], oracle[1]);
    /* masked naming keeps one label per group and the same groups */
    int group2[H * W];
    vlp_segment_rule masked = {.threshold = -2.0f, .masked = true};
    ck_assert_int_eq(vlp_segment_image(&m, &img, classes, K, &masked, NULL, pred, group2, NULL), VLP_OK);
    label_of[0] = label_of[1] = -1;
    for (int p = 0; p < H * W; p++) {
        ck_assert_int_eq(group2[p], group[p]);
        ck_assert(pred[p] >= 1 && pred[p] <= K);
        if (label_of[group[p]] < 0) label_of[group[p]] = pred[p];
        ck_assert_int_eq(pred[p], label_of[group[p]]);
    }
    vlp_image_free(&img);
    vlp_groupvit_free(&m.groupvit);
}
END_TEST

/* Masked embeddings: group g's row is the image embedding of the image
 * with every other pixel at 0; a group owning no pixel keeps its row. */
START_TEST(test_segment_masked_embeddings) {
    vlp_groupvit m;
    ck_assert_int_eq(vlp_groupvit_init(&m, &tiny_config, 4), VLP_OK);
    enum { S = 8, G = 3, D = 6 };
    vlp_rng rng;
    vlp_rng_init(&rng, 8);
    float image[3 * S * S], masked[3 * S * S], emb[G * D];
    vlp_rng_fill_normal(&rng, image, 3 * S * S, 0, 1);
    int own[S * S];
    for (int p = 0; p < S * S; p++) own[p] = (p % S) < 3 ? 0 : 1; /* group 2 owns nothing */
    for (int i = 0; i < G * D; i++) emb[i] = 7.0f;
    vlp_tape t;
    vlp_tape_init(&t);
    vlp_tape_no_grad_begin(&t);
    vlp_tensor *x = vlp_tape_wrap(&t, image, 4, (int[]){1, 3, S, S});
    vlp_segment_masked_embeddings(&m, x, own, G, emb);
    for (int g = 0; g < 2; g++) {
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < S * S; p++) masked[c * S * S + p] = own[p] == g ? image[c * S * S + p] : 0.0f;
        vlp_tensor *xm = vlp_tape_wrap(&t, masked, 4, (int[]){1, 3, S, S});
        vlp_tensor *want = vlp_groupvit_encode_image(&m, &t, xm, NULL, NULL);
        for (int d = 0; d < D; d++) ck_assert_float_eq_tol(emb[g * D + d], want->data[d], 1e-5f);
    }
    /* the two halves see different images */
    float diff = 0;
    for (int d = 0; d < D; d++) diff += fabsf(emb[d] - emb[D + d]);
    ck_assert_float_gt(diff, 1e-3f);
    for (int d = 0; d < D; d++) ck_assert_float_eq(emb[2 * D + d], 7.0f);
    vlp_tape_no_grad_end(&t);
    vlp_tape_free(&t);
    vlp_groupvit_free(&m);
}
END_TEST

/* ---- the scene generator ---------------------------------------------------------------------- */

/* A fixture of crafted cut-outs: alpha ramps across the threshold, so a mask
 * off by one level or one pixel shows. */
static void write_cutout(const char *path, int w, int h, int kind, const uint8_t rgb[3]) {
    uint8_t *px = calloc((size_t)w * h * 4, 1);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = px + ((long)y * w + x) * 4;
            memcpy(p, rgb, 3);
            float dx = (x + 0.5f) / w - 0.5f, dy = (y + 0.5f) / h - 0.5f, r = 2 * sqrtf(dx * dx + dy * dy);
            float a = kind == 0 ? 1.0f - r : (r < 0.5f ? r * 2 : r < 1.0f ? 2 - 2 * r : 0); /* disc, ring */
            p[3] = a <= 0 ? 0 : (uint8_t)fminf(255.0f, 400.0f * a);
        }
    ck_assert(stbi_write_png(path, w, h, 4, px, w * 4));
    free(px);
}

static char fixture_dir[64];

static void make_fixture(void) {
    strcpy(fixture_dir, "/tmp/vlp-scenes-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(fixture_dir));
    char path[256];
    snprintf(path, sizeof path, "%s/bg", fixture_dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    const uint8_t red[3] = {230, 20, 20}, green[3] = {20, 200, 40}, blue[3] = {30, 40, 220};
    snprintf(path, sizeof path, "%s/disc.png", fixture_dir);
    write_cutout(path, 40, 24, 0, red);
    snprintf(path, sizeof path, "%s/ring.png", fixture_dir);
    write_cutout(path, 31, 31, 1, green);
    snprintf(path, sizeof path, "%s/blob.png", fixture_dir);
    write_cutout(path, 17, 29, 0, blue);
    for (int i = 0; i < 4; i++) { /* gradients; held out: the third */
        int w = 60 + 10 * i, h = 50;
        uint8_t *rgb = malloc((size_t)w * h * 3);
        for (int p = 0; p < w * h; p++)
            rgb[p * 3] = (uint8_t)(p % w * 4), rgb[p * 3 + 1] = (uint8_t)(p / w * 5), rgb[p * 3 + 2] = (uint8_t)(40 * i);
        snprintf(path, sizeof path, "%s/bg/photo%d.png", fixture_dir, i);
        ck_assert(stbi_write_png(path, w, h, 3, rgb, w * 3));
        free(rgb);
    }
    snprintf(path, sizeof path, "%s/spec.tsv", fixture_dir);
    FILE *f = fopen(path, "w");
    fputs("# crafted\ndisc\tseen\tdisc.png\nring\tseen\tring.png blob.png\nblob\tunseen\tblob.png\n", f);
    fclose(f);
}

/* make_fixture, then its scene set loaded; spec gets the spec's path. */
static void load_fixture(vlp_scene_set *s, char spec[128]) {
    make_fixture();
    char bg[128];
    snprintf(spec, 128, "%s/spec.tsv", fixture_dir);
    snprintf(bg, sizeof bg, "%s/bg", fixture_dir);
    ck_assert_int_eq(vlp_scene_set_load(s, spec, fixture_dir, bg, 128, 0), VLP_OK);
}

static void remove_tree(const char *dir) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* The mask a scene must have: each object's own alpha at its drawn size,
 * painted in order where it is >= the threshold. */
static void expected_mask(const vlp_scene_set *s, const vlp_scene *sc, int S, uint8_t *mask) {
    memset(mask, 0, (size_t)S * S);
    for (int i = 0; i < sc->n; i++) {
        const vlp_scene_object *o = &sc->obj[i];
        ck_assert(o->x >= 0 && o->y >= 0 && o->x + o->w <= S && o->y + o->h <= S);
        vlp_rgba r;
        const vlp_rgba *src = &s->classes[o->cls].sources[o->source];
        if (o->w == src->w && o->h == src->h) r = *src; /* drawn as it is */
        else ck_assert_int_eq(vlp_rgba_resize(&r, src, o->w, o->h), VLP_OK);
        for (int y = 0; y < o->h; y++)
            for (int x = 0; x < o->w; x++)
                if (r.px[((long)y * o->w + x) * 4 + 3] >= s->alpha_threshold)
                    mask[(o->y + y) * S + o->x + x] = (uint8_t)(o->cls + 1);
        if (r.px != src->px) vlp_rgba_free(&r);
    }
}

/* Checks n scenes of every split of s: masks exact, classes of the split,
 * photographs of the split, distinct classes in a scene. */
static void check_scenes(const vlp_scene_set *s, const vlp_scenes_opts *o, int n) {
    int S = o->size;
    uint8_t *rgb = malloc((size_t)S * S * 3), *mask = malloc((size_t)S * S), *want = malloc((size_t)S * S);
    long painted = 0;
    for (int split = 0; split < VLP_SCENE_SPLITS; split++)
        for (int i = 0; i < n; i++) {
            vlp_scene sc;
            vlp_scene_sample(s, o, (vlp_scene_split)split, i, &sc);
            ck_assert(sc.n >= 1 && sc.n <= o->max_objects);
            for (int j = 0; j < sc.n; j++) {
                ck_assert_int_eq(s->classes[sc.obj[j].cls].unseen, split == VLP_SCENE_UNSEEN);
                for (int k = 0; k < j; k++) ck_assert_int_ne(sc.obj[j].cls, sc.obj[k].cls);
            }
            if (sc.background >= 0) ck_assert_int_eq(sc.background % 3 == 2, split != VLP_SCENE_TRAIN);
            ck_assert_int_eq(vlp_scene_render(s, &sc, S, rgb, mask), VLP_OK);
            expected_mask(s, &sc, S, want);
            ck_assert_mem_eq(mask, want, (size_t)S * S);
            for (int p = 0; p < S * S; p++) painted += mask[p] != 0;
        }
    ck_assert_int_gt(painted, 0);
    free(rgb);
    free(mask);
    free(want);
}

START_TEST(test_scenes_masks_exact) {
    char spec[128];
    vlp_scene_set s;
    load_fixture(&s, spec);
    ck_assert_int_eq(s.n_classes, 3);
    ck_assert_int_eq(s.n_backgrounds, 4);
    ck_assert_int_eq(s.classes[1].n_sources, 2);
    vlp_scenes_opts o = vlp_scenes_opts_default();
    o.size = 48, o.max_objects = 2;
    check_scenes(&s, &o, 30);

    /* drawn at its own size, an object's mask is its alpha >= 128 exactly,
     * independent of any resampling; its opaque pixels keep their colour */
    const vlp_rgba *disc = &s.classes[0].sources[0];
    vlp_scene sc = {.background = -1, .colour = {1, 2, 3}, .n = 1,
                    .obj = {{.cls = 0, .source = 0, .x = 5, .y = 7, .w = disc->w, .h = disc->h}}};
    uint8_t rgb[48 * 48 * 3], mask[48 * 48];
    ck_assert_int_eq(vlp_scene_render(&s, &sc, 48, rgb, mask), VLP_OK);
    long inside = 0;
    for (int y = 0; y < 48; y++)
        for (int x = 0; x < 48; x++) {
            int ox = x - 5, oy = y - 7;
            bool in = ox >= 0 && oy >= 0 && ox < disc->w && oy < disc->h;
            uint8_t a = in ? disc->px[(oy * disc->w + ox) * 4 + 3] : 0;
            ck_assert_int_eq(mask[y * 48 + x], a >= 128 ? 1 : 0);
            inside += a >= 128;
            if (a == 255) ck_assert_mem_eq(rgb + (y * 48 + x) * 3, disc->px + (oy * disc->w + ox) * 4, 3);
            if (a == 0) ck_assert_mem_eq(rgb + (y * 48 + x) * 3, sc.colour, 3);
        }
    ck_assert_int_gt(inside, 100);

    char caption[128];
    sc.n = 3;
    sc.obj[1] = sc.obj[0], sc.obj[1].cls = 2;
    sc.obj[2] = sc.obj[0], sc.obj[2].cls = 1;
    vlp_scene_caption(&s, &sc, caption, sizeof caption);
    ck_assert_str_eq(caption, "a disc, a blob and a ring");
    sc.n = 2;
    vlp_scene_caption(&s, &sc, caption, sizeof caption);
    ck_assert_str_eq(caption, "a disc and a blob");
    vlp_scene_set_free(&s);

    /* a source that is not a cut-out (an opaque photograph) is refused */
    FILE *f = fopen(spec, "w");
    fprintf(f, "photo\tseen\tbg/photo0.png\n");
    fclose(f);
    ck_assert_int_eq(vlp_scene_set_load(&s, spec, fixture_dir, NULL, 128, 0), VLP_EFORMAT);
    ck_assert_ptr_nonnull(strstr(vlp_error_message(), "not a cut-out"));
    remove_tree(fixture_dir);
}
END_TEST

/* Every file of dir a the same bytes as in dir b (and as many files). */
static long compare_trees(const char *a, const char *b) {
    DIR *d = opendir(a);
    ck_assert_ptr_nonnull(d);
    long n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char pa[512], pb[512];
        snprintf(pa, sizeof pa, "%s/%s", a, e->d_name);
        snprintf(pb, sizeof pb, "%s/%s", b, e->d_name);
        struct stat st;
        ck_assert_int_eq(stat(pa, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            n += compare_trees(pa, pb);
            continue;
        }
        char *ta = NULL, *tb = NULL;
        size_t la = 0, lb = 0;
        FILE *fa = fopen(pa, "rb"), *fb = fopen(pb, "rb");
        ck_assert_msg(fa && fb, "%s or %s missing", pa, pb);
        ta = malloc(st.st_size + 1), tb = malloc(st.st_size + 1);
        la = fread(ta, 1, st.st_size + 1, fa), lb = fread(tb, 1, st.st_size + 1, fb);
        ck_assert_msg(la == lb && memcmp(ta, tb, la) == 0, "%s and %s differ", pa, pb);
        fclose(fa), fclose(fb), free(ta), free(tb);
        n++;
    }
    closedir(d);
    return n;
}

static void check_deterministic(const vlp_scene_set *s, vlp_scenes_opts o, long want_files) {
    char a[64] = "/tmp/vlp-scenes-a-XXXXXX", b[64] = "/tmp/vlp-scenes-b-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(a));
    ck_assert_ptr_nonnull(mkdtemp(b));
    ck_assert_int_eq(vlp_scenes_write(s, &o, a, false), VLP_OK);
    ck_assert_int_eq(vlp_scenes_write(s, &o, b, false), VLP_OK);
    ck_assert_int_eq(compare_trees(a, b), want_files);
    /* another seed: other scenes */
    o.seed++;
    remove_tree(b);
    ck_assert_int_eq(vlp_scenes_write(s, &o, b, false), VLP_OK);
    char pa[128], pb[128];
    snprintf(pa, sizeof pa, "%s/train.tsv", a);
    snprintf(pb, sizeof pb, "%s/train.tsv", b);
    char *ta = vlp_read_text(pa), *tb = vlp_read_text(pb);
    ck_assert_str_ne(ta, tb);
    free(ta), free(tb);
    remove_tree(a);
    remove_tree(b);
}

START_TEST(test_scenes_deterministic) {
    char spec[128];
    vlp_scene_set s;
    load_fixture(&s, spec);
    vlp_scenes_opts o = vlp_scenes_opts_default();
    o.size = 32, o.count[0] = 12, o.count[1] = 5, o.count[2] = 4;
    /* 2 PNGs per scene, 3 manifests, classes.txt, classes.tsv, templates.txt, backgrounds.tsv */
    check_deterministic(&s, o, 2 * (12 + 5 + 4) + 3 + 4);
    /* a scene depends only on the seed, its split and its index: the first
     * 5 of 12 are the 5 of a shorter run */
    vlp_scene x, y;
    o.count[0] = 5;
    vlp_scene_sample(&s, &o, VLP_SCENE_TRAIN, 4, &x);
    o.count[0] = 12;
    vlp_scene_sample(&s, &o, VLP_SCENE_TRAIN, 4, &y);
    ck_assert_mem_eq(&x, &y, sizeof x);
    vlp_scene_set_free(&s);
    remove_tree(fixture_dir);
}
END_TEST

/* The real cut-outs and photographs, when scripts/data has prepared them:
 * every cut-out of the spec passes, masks are exact, runs repeat. */
START_TEST(test_scenes_real_data) {
    char spec[1024], root[1024];
    snprintf(spec, sizeof spec, "%s/scripts/data/scene_classes.tsv", VLP_SOURCE_DIR);
    snprintf(root, sizeof root, "%s/data", VLP_SOURCE_DIR);
    vlp_scene_set s;
    int rc = vlp_scene_set_load(&s, spec, root, "/usr/share/tuxpaint/templates", 128, 192);
    ck_assert_msg(rc == VLP_OK, "%s", vlp_error_message());
    ck_assert_int_ge(s.n_classes, 30);
    ck_assert_int_ge(s.n_backgrounds, 3);
    vlp_scenes_opts o = vlp_scenes_opts_default();
    o.size = 96;
    check_scenes(&s, &o, 15);
    o.count[0] = 10, o.count[1] = 4, o.count[2] = 4;
    check_deterministic(&s, o, 2 * 18 + 3 + 4);
    vlp_scene_set_free(&s);
}
END_TEST

VLP_SUITE(segment_suite, "segment", test_miou_hand, test_assign_product_upsample, test_labels_and_baselines,
          test_groupvit_tower_matches, test_segment_image, test_segment_masked_embeddings, test_scenes_masks_exact,
          test_scenes_deterministic, test_scenes_real_data)

/* scenes_real_data is skipped (77) when the datasets are not prepared. */
int main(void) {
    const char *only = getenv("CK_RUN_CASE");
    if (only && !strcmp(only, "scenes_real_data")) {
        char path[1024];
        snprintf(path, sizeof path, "%s/data/tuxpaint/.prepared", VLP_SOURCE_DIR);
        struct stat st;
        bool have = stat(path, &st) == 0;
        snprintf(path, sizeof path, "%s/data/emoji/google", VLP_SOURCE_DIR);
        have = have && stat(path, &st) == 0 && stat("/usr/share/tuxpaint/templates", &st) == 0;
        if (!have) {
            puts("segment.scenes_real_data: data/ not prepared (scripts/data/all.sh) or no tuxpaint-data: skipped");
            return 77;
        }
    }
    int status = vlp_test_run(segment_suite());
    return status;
}
