/* Zero-shot semantic segmentation and its evaluation: GroupViT's (each
 * patch's final group from the product of the stage assignments, upsampled
 * to pixels, each group named by GroupViT's rule or by its nearest class
 * text, background below a threshold), two baselines computed the same way
 * (the image-level best class painted over the true foreground; dense CLIP
 * patch-to-text similarity), the oracle groups that bound any naming of
 * the groups, the mIoU evaluator, and the pictures a person looks at.
 * Labels: 0 is background, k + 1 is class k of the list given.
 * Not the data (data/scenes.h) and not training: nothing records a gradient. */
#ifndef VLP_SEGMENT_H
#define VLP_SEGMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "data/image.h"
#include "data/tokenizer.h"
#include "train/model.h"

/* ---- building blocks on plain arrays ---- */

/* Maps each patch to the final groups: assign[i] is stage i's soft
 * assignment (S_i, L_i), softmax over S_i, with L_0 = L patches and L_i =
 * S_{i-1}; out (S_last, L) = A_last ... A_1 A_0. */
void vlp_segment_assign_product(const float *const *assign, const int *groups, int n_stages, int L,
                                float *out);

/* Bilinear upsampling of C maps on a gh x gw grid to H x W pixels, with
 * pixel centres aligned as torch's interpolate(align_corners=False) (what
 * GroupViT does to its attention maps); edges clamp. maps (C, gh, gw) ->
 * out (C, H, W). */
void vlp_segment_upsample(const float *maps, int C, int gh, int gw, int H, int W, float *out);

/* Per pixel, the map with the largest value (the first on ties): maps
 * (C, n) -> idx (n). */
void vlp_segment_argmax(const float *maps, int C, long n, int *idx);

/* Each row of emb (n, D) against the class embeddings (K, D), all
 * L2-normalised: label k + 1 of the most similar class, or 0 when that
 * cosine similarity is below threshold. best (n), if not NULL, gets it. */
void vlp_segment_nearest_class(const float *emb, int n, const float *classes, int K, int D,
                               float threshold, uint8_t *label, float *best);

/* GroupViT's own labelling (its segmentation inference): each group's
 * softmax over the classes at logit scale `scale`, restricted to the topk
 * classes nearest to the image embedding, times its softmax over all K; a
 * group takes the best of those topk classes, or background when that
 * product is below threshold, a threshold capped at the largest product of
 * any group (the best group always stays). groups (G, D), image (D),
 * classes (K, D), all L2-normalised; label (G). */
void vlp_segment_groupvit_labels(const float *groups, int G, const float *image, const float *classes,
                                 int K, int D, float scale, int topk, float threshold, uint8_t *label);

/* How well the groups follow the objects, whatever their labels: each
 * group given the true label of most of its pixels. group (n), each pixel's
 * group in [0, G); gt and pred (n). An upper bound for any labelling of
 * these groups, to tell bad grouping from bad naming. */
void vlp_segment_oracle_groups(const int *group, int G, const uint8_t *gt, long n, uint8_t *pred);

/* Baseline (a), the oracle foreground: the class nearest to the image
 * embedding (D) painted on every pixel where the true mask gt (n) is not
 * background; background elsewhere. */
void vlp_segment_oracle(const float *image, const float *classes, int K, int D, const uint8_t *gt,
                        long n, uint8_t *pred);

/* Baseline (b), dense CLIP: patch embeddings (gh gw, D), L2-normalised,
 * against the classes: the K similarity maps upsampled bilinearly to H x W,
 * each pixel the best class, background below threshold. */
void vlp_segment_dense(const float *patches, int gh, int gw, const float *classes, int K, int D,
                       float threshold, int H, int W, uint8_t *pred);

/* ---- mIoU ---- */

/* A confusion matrix over pixels: n_labels labels (background included),
 * rows the truth, columns the prediction. */
typedef struct vlp_miou {
    int n_labels;
    long *confusion; /* (n_labels, n_labels) */
} vlp_miou;

/* n_labels in [1, 256] (labels are 8-bit), else VLP_EINVAL. */
int vlp_miou_init(vlp_miou *m, int n_labels);
void vlp_miou_free(vlp_miou *m);
/* Counts n pixels; a label >= n_labels is VLP_EINVAL (naming it). */
int vlp_miou_add(vlp_miou *m, const uint8_t *truth, const uint8_t *pred, long n);
/* iou (n_labels): intersection / union per label, NaN for a label absent
 * from the truth; returns their mean over the labels present in the truth
 * (a class predicted but never true costs the true classes' IoU through
 * their unions, not a term of its own). Pixel accuracy in *accuracy. */
double vlp_miou_compute(const vlp_miou *m, double *iou, double *accuracy);

/* ---- the models ---- */

/* A CLIP ViT's patch tokens projected as its class token is (ln_post, then
 * proj, MaskCLIP's reading), L2-normalised: (B, grid^2, embed_dim). */
vlp_tensor *vlp_segment_clip_patches(const vlp_clip *m, vlp_tape *t, vlp_tensor *images);

/* Each group's pixels alone, re-encoded: x (1, 3, S, S) a normalised
 * image, own (S S) each of its pixels' group in [0, G). Row g of emb (G,
 * embed_dim) gets the image embedding of x with every pixel outside group
 * g set to 0, the normalisation mean colour; rows of groups that own no
 * pixel are left as they are. */
void vlp_segment_masked_embeddings(const vlp_groupvit *m, const vlp_tensor *x, const int *own, int G,
                                   float *emb);

/* How GroupViT's groups are named. */
typedef struct vlp_segment_rule {
    float threshold; /* background below it: a probability with topk, else a cosine */
    int topk;        /* GroupViT's rule over the image's topk classes; 0: the nearest of all */
    /* each group named by the embedding of the image with only its pixels
     * (vlp_segment_masked_embeddings), not by its group token's */
    bool masked;
} vlp_segment_rule;

/* One image through a model, resized to its input (the whole image, no
 * crop) and predicted at the image's own H x W. GroupViT: pred (H W)
 * labels, group (H W) each pixel's final group if not NULL, and oracle (H W)
 * when gt is given; its groups named by rule. CLIP: pred by the dense
 * baseline, background below rule->threshold, a cosine (the rest of rule
 * unused). classes (K, D) of that model. */
int vlp_segment_image(const vlp_model *m, const vlp_image *img, const float *classes, int K,
                      const vlp_segment_rule *rule, const uint8_t *gt, uint8_t *pred, int *group,
                      uint8_t *oracle);

#endif
