/* Zero-shot segmentation, baselines, mIoU and overlays (see segment.h). */
#include "eval/segment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "autograd/kernels.h"
#include "models/vit.h"

/* ---- building blocks ---------------------------------------------------------- */

void vlp_segment_assign_product(const float *const *assign, const int *groups, int n_stages, int L,
                                float *out) {
    VLP_ASSERT(n_stages >= 1, "no grouping stage");
    float *prev = vlp_malloc(sizeof(float) * (size_t)groups[0] * L), *next = NULL;
    memcpy(prev, assign[0], sizeof(float) * (size_t)groups[0] * L);
    for (int i = 1; i < n_stages; i++) {
        next = vlp_malloc(sizeof(float) * (size_t)groups[i] * L);
        /* (S_i, S_{i-1}) x (S_{i-1}, L) */
        vlp_gemm(false, false, groups[i], L, groups[i - 1], 1.0f, assign[i], groups[i - 1], prev, L,
                 0.0f, next, L);
        free(prev);
        prev = next;
    }
    memcpy(out, prev, sizeof(float) * (size_t)groups[n_stages - 1] * L);
    free(prev);
}

/* Source coordinate of output pixel i, torch's align_corners=False rule,
 * clamped to the grid: the two neighbours and the weight of the second. */
static void bilinear_tap(int i, int out_n, int in_n, int *lo, int *hi, float *w) {
    float s = ((float)i + 0.5f) * (float)in_n / (float)out_n - 0.5f;
    if (s < 0) s = 0;
    *lo = (int)s;
    if (*lo > in_n - 1) *lo = in_n - 1;
    *hi = *lo + 1 < in_n ? *lo + 1 : in_n - 1;
    *w = s - (float)*lo;
}

void vlp_segment_upsample(const float *maps, int C, int gh, int gw, int H, int W, float *out) {
    for (int y = 0; y < H; y++) {
        int y0, y1, x0, x1;
        float wy, wx;
        bilinear_tap(y, H, gh, &y0, &y1, &wy);
        for (int x = 0; x < W; x++) {
            bilinear_tap(x, W, gw, &x0, &x1, &wx);
            for (int c = 0; c < C; c++) {
                const float *m = maps + (long)c * gh * gw;
                float top = m[y0 * gw + x0] * (1 - wx) + m[y0 * gw + x1] * wx;
                float bottom = m[y1 * gw + x0] * (1 - wx) + m[y1 * gw + x1] * wx;
                out[((long)c * H + y) * W + x] = top * (1 - wy) + bottom * wy;
            }
        }
    }
}

void vlp_segment_argmax(const float *maps, int C, long n, int *idx) {
    for (long p = 0; p < n; p++) {
        int best = 0;
        for (int c = 1; c < C; c++)
            if (maps[(long)c * n + p] > maps[(long)best * n + p]) best = c;
        idx[p] = best;
    }
}

void vlp_segment_nearest_class(const float *emb, int n, const float *classes, int K, int D,
                               float threshold, uint8_t *label, float *best) {
    VLP_ASSERT(K >= 1 && K <= 254, "%d classes (labels are 8-bit)", K);
    float *sim = vlp_malloc(sizeof(float) * (size_t)n * K);
    vlp_gemm(false, true, n, K, D, 1.0f, emb, D, classes, D, 0.0f, sim, K);
    for (int i = 0; i < n; i++) {
        int k = 0;
        for (int c = 1; c < K; c++)
            if (sim[(long)i * K + c] > sim[(long)i * K + k]) k = c;
        float s = sim[(long)i * K + k];
        label[i] = s < threshold ? 0 : (uint8_t)(k + 1);
        if (best) best[i] = s;
    }
    free(sim);
}

void vlp_segment_groupvit_labels(const float *groups, int G, const float *image, const float *classes,
                                 int K, int D, float scale, int topk, float threshold, uint8_t *label) {
    VLP_ASSERT(K >= 1 && K <= 254, "%d classes (labels are 8-bit)", K);
    if (topk > K) topk = K;
    /* rows 0..G-1 the groups' logits, row G the image's */
    float *logit = vlp_malloc(sizeof(float) * (size_t)(G + 1) * K), *prob = vlp_malloc(sizeof(float) * (size_t)G * K);
    bool *top = vlp_calloc((size_t)K, sizeof *top);
    vlp_gemm(false, true, G, K, D, scale, groups, D, classes, D, 0.0f, logit, K);
    vlp_gemm(false, true, 1, K, D, scale, image, D, classes, D, 0.0f, logit + (long)G * K, K);
    const float *img = logit + (long)G * K;
    for (int j = 0; j < topk; j++) {
        int best = -1;
        for (int c = 0; c < K; c++)
            if (!top[c] && (best < 0 || img[c] > img[best])) best = c;
        top[best] = true;
    }
    float most = 0;
    for (int g = 0; g < G; g++) {
        const float *l = logit + (long)g * K;
        float mx = -INFINITY, mx_top = -INFINITY, z = 0, z_top = 0;
        for (int c = 0; c < K; c++) {
            mx = fmaxf(mx, l[c]);
            if (top[c]) mx_top = fmaxf(mx_top, l[c]);
        }
        for (int c = 0; c < K; c++) {
            z += expf(l[c] - mx);
            if (top[c]) z_top += expf(l[c] - mx_top);
        }
        for (int c = 0; c < K; c++) {
            float p = top[c] ? expf(l[c] - mx_top) / z_top * expf(l[c] - mx) / z : 0.0f;
            prob[(long)g * K + c] = p;
            most = fmaxf(most, p);
        }
    }
    if (threshold > most) threshold = most;
    for (int g = 0; g < G; g++) {
        const float *p = prob + (long)g * K;
        int k = 0;
        for (int c = 1; c < K; c++)
            if (p[c] > p[k]) k = c;
        label[g] = p[k] < threshold ? 0 : (uint8_t)(k + 1);
    }
    free(logit);
    free(prob);
    free(top);
}

void vlp_segment_oracle_groups(const int *group, int G, const uint8_t *gt, long n, uint8_t *pred) {
    long *votes = vlp_calloc((size_t)G * 256, sizeof *votes);
    uint8_t *majority = vlp_malloc((size_t)G);
    for (long p = 0; p < n; p++) votes[(long)group[p] * 256 + gt[p]]++;
    for (int g = 0; g < G; g++) {
        int best = 0;
        for (int k = 1; k < 256; k++)
            if (votes[(long)g * 256 + k] > votes[(long)g * 256 + best]) best = k;
        majority[g] = (uint8_t)best;
    }
    for (long p = 0; p < n; p++) pred[p] = majority[group[p]];
    free(votes);
    free(majority);
}

void vlp_segment_oracle(const float *image, const float *classes, int K, int D, const uint8_t *gt,
                        long n, uint8_t *pred) {
    uint8_t label;
    vlp_segment_nearest_class(image, 1, classes, K, D, -INFINITY, &label, NULL);
    for (long p = 0; p < n; p++) pred[p] = gt[p] ? label : 0;
}

void vlp_segment_dense(const float *patches, int gh, int gw, const float *classes, int K, int D,
                       float threshold, int H, int W, uint8_t *pred) {
    int L = gh * gw;
    long n = (long)H * W;
    float *sim = vlp_malloc(sizeof(float) * (size_t)K * L), *up = vlp_malloc(sizeof(float) * (size_t)K * n);
    int *idx = vlp_malloc(sizeof(int) * (size_t)n);
    vlp_gemm(false, true, K, L, D, 1.0f, classes, D, patches, D, 0.0f, sim, L); /* (K, L) */
    vlp_segment_upsample(sim, K, gh, gw, H, W, up);
    vlp_segment_argmax(up, K, n, idx);
    for (long p = 0; p < n; p++) pred[p] = up[(long)idx[p] * n + p] < threshold ? 0 : (uint8_t)(idx[p] + 1);
    free(sim);
    free(up);
    free(idx);
}

/* ---- mIoU --------------------------------------------------------------------------- */

int vlp_miou_init(vlp_miou *m, int n_labels) {
    memset(m, 0, sizeof *m);
    if (n_labels < 1 || n_labels > 256)
        return vlp_error_set(VLP_EINVAL, "mIoU over %d labels: labels are 8-bit", n_labels);
    m->n_labels = n_labels;
    m->confusion = vlp_calloc((size_t)n_labels * n_labels, sizeof *m->confusion);
    return VLP_OK;
}

void vlp_miou_free(vlp_miou *m) {
    free(m->confusion);
    memset(m, 0, sizeof *m);
}

int vlp_miou_add(vlp_miou *m, const uint8_t *truth, const uint8_t *pred, long n) {
    for (long p = 0; p < n; p++)
        if (truth[p] >= m->n_labels || pred[p] >= m->n_labels)
            return vlp_error_set(VLP_EINVAL, "pixel %ld: label %d (truth) or %d (prediction) is not below %d",
                                 p, truth[p], pred[p], m->n_labels);
    for (long p = 0; p < n; p++) m->confusion[(long)truth[p] * m->n_labels + pred[p]]++;
    return VLP_OK;
}

double vlp_miou_compute(const vlp_miou *m, double *iou, double *accuracy) {
    int N = m->n_labels;
    double sum = 0;
    long total = 0, right = 0;
    int present = 0;
    for (int k = 0; k < N; k++) {
        long tp = m->confusion[(long)k * N + k], truth = 0, pred = 0;
        for (int j = 0; j < N; j++) truth += m->confusion[(long)k * N + j], pred += m->confusion[(long)j * N + k];
        total += truth, right += tp;
        iou[k] = truth ? (double)tp / (double)(truth + pred - tp) : NAN;
        if (truth) sum += iou[k], present++;
    }
    if (accuracy) *accuracy = total ? (double)right / (double)total : NAN;
    return present ? sum / present : NAN;
}

/* ---- the models ------------------------------------------------------------------------ */

vlp_tensor *vlp_segment_clip_patches(const vlp_clip *m, vlp_tape *t, vlp_tensor *images) {
    vlp_tensor *x = vlp_vit_tokens(&m->visual, t, images);
    int L = x->shape[1] - 1;
    x = vlp_ln_forward(&m->visual.ln_post, t, vlp_op_slice(t, x, 1, 1, L));
    return vlp_op_l2_normalize(t, vlp_op_matmul(t, x, m->visual.proj, false, false));
}

void vlp_segment_masked_embeddings(const vlp_groupvit *m, const vlp_tensor *x, const int *own, int G,
                                   float *emb) {
    int S = x->shape[2];
    long n = (long)S * S;
    int owners[256], B = 0;
    VLP_ASSERT(G <= 256, "%d groups", G);
    for (int g = 0; g < G; g++) {
        bool owns = false;
        for (long p = 0; p < n && !owns; p++) owns = own[p] == g;
        if (owns) owners[B++] = g;
    }
    if (!B) return;
    vlp_tape t;
    vlp_tape_init(&t);
    vlp_tape_no_grad_begin(&t);
    vlp_tensor *xb = vlp_tape_tensor(&t, 4, (int[]){B, 3, S, S});
    for (int b = 0; b < B; b++)
        for (int c = 0; c < 3; c++)
            for (long p = 0; p < n; p++)
                xb->data[((long)b * 3 + c) * n + p] = own[p] == owners[b] ? x->data[c * n + p] : 0.0f;
    vlp_tensor *e = vlp_groupvit_encode_image(m, &t, xb, NULL, NULL);
    int D = e->shape[1];
    for (int b = 0; b < B; b++) memcpy(emb + (long)owners[b] * D, e->data + (long)b * D, sizeof(float) * D);
    vlp_tape_no_grad_end(&t);
    vlp_tape_free(&t);
}

int vlp_segment_image(const vlp_model *m, const vlp_image *img, const float *classes, int K,
                      const vlp_segment_rule *rule, const uint8_t *gt, uint8_t *pred, int *group,
                      uint8_t *oracle) {
    VLP_ASSERT(m->kind == VLP_MODEL_GROUPVIT || m->kind == VLP_MODEL_CLIP,
               "segmentation takes GroupViT or CLIP");
    int S = m->image_size, H = img->h, W = img->w, D = m->embed_dim;
    long n = (long)H * W;
    vlp_image small;
    /* The whole image squashed to S x S (every pixel gets a label), with
     * the model's interpolation, mean and std. */
    vlp_loader_opts po = vlp_model_eval_loader(m, 1, 1);
    int rc = vlp_image_resize_crop(&small, img, 0, 0, W, H, S, S, po.interpolation);
    if (rc) return rc;
    vlp_tape t;
    vlp_tape_init(&t);
    vlp_tape_no_grad_begin(&t);
    vlp_tensor *x = vlp_tape_tensor(&t, 4, (int[]){1, 3, S, S});
    vlp_image_normalize(x->data, small.rgb, S, po.mean, po.std);
    vlp_image_free(&small);
    if (m->kind == VLP_MODEL_CLIP) {
        vlp_tensor *patches = vlp_segment_clip_patches(&m->clip, &t, x);
        int g = m->clip.visual.grid;
        vlp_segment_dense(patches->data, g, g, classes, K, D, rule->threshold, H, W, pred);
    } else {
        const vlp_groupvit *gv = &m->groupvit;
        int n_stages = gv->cfg.n_groupings, L = gv->grid * gv->grid, G = gv->cfg.output_groups[n_stages - 1];
        vlp_tensor *groups, *image, *assign[VLP_GROUPVIT_MAX_GROUPINGS];
        image = vlp_groupvit_encode_image_groups(gv, &t, x, NULL, assign, &groups); /* soft assignments */
        const float *a[VLP_GROUPVIT_MAX_GROUPINGS];
        for (int i = 0; i < n_stages; i++) a[i] = assign[i]->data;
        long n_in = (long)S * S, n_up = n > n_in ? n : n_in;
        /* n: the image's pixels, bounded when it was decoded (vlp_image_opts.max_pixels) */
        float *final = vlp_malloc(sizeof(float) * (size_t)G * L), *up = vlp_malloc(sizeof(float) * (size_t)G * n_up);
        int *idx = vlp_malloc(sizeof(int) * (size_t)n_up);
        uint8_t glabel[256];
        vlp_segment_assign_product(a, gv->cfg.output_groups, n_stages, L, final);
        if (rule->masked) { /* the groups at the model's input, where the image is masked */
            vlp_segment_upsample(final, G, gv->grid, gv->grid, S, S, up);
            vlp_segment_argmax(up, G, n_in, idx);
            vlp_segment_masked_embeddings(gv, x, idx, G, groups->data);
        }
        vlp_segment_upsample(final, G, gv->grid, gv->grid, H, W, up);
        vlp_segment_argmax(up, G, n, idx);
        float scale = fminf(expf(gv->logit_scale->data[0]), 100.0f); /* GroupViT clamps it so */
        if (rule->topk > 0)
            vlp_segment_groupvit_labels(groups->data, G, image->data, classes, K, D, scale, rule->topk,
                                        rule->threshold, glabel);
        else
            vlp_segment_nearest_class(groups->data, G, classes, K, D, rule->threshold, glabel, NULL);
        for (long p = 0; p < n; p++) pred[p] = glabel[idx[p]];
        if (group) memcpy(group, idx, sizeof(int) * (size_t)n);
        if (gt && oracle) vlp_segment_oracle(image->data, classes, K, D, gt, n, oracle);
        free(final);
        free(up);
        free(idx);
    }
    vlp_tape_no_grad_end(&t);
    vlp_tape_free(&t);
    return rc;
}

/* ---- pictures ------------------------------------------------------------------------------ */
