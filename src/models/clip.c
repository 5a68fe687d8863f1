/* CLIP model and loss (see clip.h). */
#include "models/clip.h"

#include <math.h>
#include <string.h>

#include "base/error.h"

int vlp_clip_init(vlp_clip *m, const vlp_clip_config *cfg, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    vlp_params_init(&m->params);
    vlp_vit_config vc = {.image_size = cfg->image_size, .patch_size = cfg->patch_size,
                         .width = cfg->vision_width, .layers = cfg->vision_layers,
                         .heads = cfg->vision_heads,
                         .mlp_width = (int)(cfg->mlp_ratio * cfg->vision_width),
                         .output_dim = cfg->embed_dim, .act = cfg->act};
    vlp_text_config tc = {.vocab_size = cfg->vocab_size, .context_length = cfg->context_length,
                          .width = cfg->text_width, .layers = cfg->text_layers,
                          .heads = cfg->text_heads,
                          .mlp_width = (int)(cfg->mlp_ratio * cfg->text_width),
                          .output_dim = cfg->embed_dim, .act = cfg->act};
    vlp_vit_register(&m->visual, &m->params, "visual", &vc);
    vlp_text_register(&m->text, &m->params, "", &tc);
    m->logit_scale = vlp_params_add(&m->params, "logit_scale", 1, (int[]){1});
    int rc = vlp_params_alloc(&m->params);
    if (rc != VLP_OK) {
        vlp_clip_free(m);
        return rc;
    }
    vlp_rng root, init;
    vlp_rng_init(&root, seed);
    init = vlp_rng_split(&root, VLP_RNG_STREAM_INIT);
    vlp_rng vis = vlp_rng_split(&init, 1), txt = vlp_rng_split(&init, 2);
    vlp_vit_init(&m->visual, &vis);
    vlp_text_init(&m->text, &txt);
    m->logit_scale->data[0] = logf(1.0f / 0.07f);
    return VLP_OK;
}

void vlp_clip_free(vlp_clip *m) { vlp_params_free(&m->params); }

vlp_tensor *vlp_clip_encode_image(const vlp_clip *m, vlp_tape *t, vlp_tensor *images) {
    return vlp_op_l2_normalize(t, vlp_vit_forward(&m->visual, t, images));
}

vlp_tensor *vlp_clip_encode_text(const vlp_clip *m, vlp_tape *t, const int *ids, int B) {
    return vlp_op_l2_normalize(t, vlp_text_forward(&m->text, t, ids, B));
}

/* Soft targets (B, N): row i spreads its mass over the columns that share
 * its group id (itself included). */
static vlp_tensor *group_targets(vlp_tape *t, const int *groups, int B, int N, int offset) {
    vlp_tensor *q = vlp_tape_zeros(t, 2, (int[]){B, N});
    for (int i = 0; i < B; i++) {
        int g = groups[offset + i], count = 0;
        for (int j = 0; j < N; j++) count += groups[j] == g;
        for (int j = 0; j < N; j++)
            if (groups[j] == g) q->data[(long)i * N + j] = 1.0f / (float)count;
    }
    return q;
}

vlp_tensor *vlp_clip_loss(vlp_tape *t, vlp_tensor *img, vlp_tensor *txt, vlp_tensor *img_all,
                          vlp_tensor *txt_all, vlp_tensor *logit_scale, int offset,
                          const int *groups, vlp_tensor **logits_per_image) {
    return vlp_clip_loss_scaled(t, img, txt, img_all, txt_all, vlp_op_exp(t, logit_scale), offset,
                                groups, logits_per_image);
}

vlp_tensor *vlp_clip_loss_scaled(vlp_tape *t, vlp_tensor *img, vlp_tensor *txt, vlp_tensor *img_all,
                                 vlp_tensor *txt_all, vlp_tensor *scale, int offset,
                                 const int *groups, vlp_tensor **logits_per_image) {
    int B = img->shape[0], N = img_all->shape[0];
    VLP_ASSERT(vlp_tensor_same_shape(img, txt) && vlp_tensor_same_shape(img_all, txt_all) &&
                   img->shape[1] == img_all->shape[1] && offset >= 0 && offset + B <= N,
               "clip loss: local (%d rows) at offset %d of a global batch of %d", B, offset, N);
    vlp_tensor *li = vlp_op_scale(t, vlp_op_matmul(t, img, txt_all, false, true), scale);
    vlp_tensor *lt = vlp_op_scale(t, vlp_op_matmul(t, txt, img_all, false, true), scale);
    if (logits_per_image) *logits_per_image = li;
    vlp_tensor *loss_i, *loss_t;
    if (groups) {
        vlp_tensor *q = group_targets(t, groups, B, N, offset);
        loss_i = vlp_op_cross_entropy_soft(t, li, q);
        loss_t = vlp_op_cross_entropy_soft(t, lt, q);
    } else {
        int *labels = vlp_tape_alloc(t, (size_t)B * sizeof *labels);
        for (int i = 0; i < B; i++) labels[i] = offset + i;
        loss_i = vlp_op_cross_entropy(t, li, labels, -1, 0.0f);
        loss_t = vlp_op_cross_entropy(t, lt, labels, -1, 0.0f);
    }
    return vlp_op_mul_const(t, vlp_op_add(t, loss_i, loss_t), 0.5f);
}

void vlp_clip_clamp_logit_scale(vlp_clip *m) {
    float *s = m->logit_scale->data;
    s[0] = fminf(fmaxf(s[0], 0.0f), logf(100.0f));
}
