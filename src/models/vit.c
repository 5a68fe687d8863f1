/* ViT image encoder (see vit.h). */
#include "models/vit.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"

void vlp_vit_register(vlp_vit *vit, vlp_params *p, const char *prefix, const vlp_vit_config *cfg) {
    VLP_ASSERT(cfg->patch_size > 0 && cfg->image_size % cfg->patch_size == 0,
               "image size %d is not a multiple of patch size %d", cfg->image_size, cfg->patch_size);
    memset(vit, 0, sizeof *vit);
    vit->cfg = *cfg;
    vit->grid = cfg->image_size / cfg->patch_size;
    int W = cfg->width, P = cfg->patch_size;
    char name[VLP_PARAM_NAME_MAX];
#define NAME(suffix) (snprintf(name, sizeof name, "%s." suffix, prefix), name)
    vit->class_embedding = vlp_params_add(p, NAME("class_embedding"), 1, (int[]){W});
    vit->positional_embedding =
        vlp_params_add(p, NAME("positional_embedding"), 2, (int[]){vit->grid * vit->grid + 1, W});
    if (cfg->output_dim > 0) vit->proj = vlp_params_add(p, NAME("proj"), 2, (int[]){W, cfg->output_dim});
    vit->conv1_weight = vlp_params_add(p, NAME("conv1.weight"), 4, (int[]){W, 3, P, P});
    if (!cfg->no_ln_pre) vlp_ln_register(&vit->ln_pre, p, NAME("ln_pre"), W);
    vlp_transformer_register(&vit->transformer, p, NAME("transformer"), W, cfg->layers,
                             cfg->heads, cfg->mlp_width, cfg->act);
    vlp_ln_register(&vit->ln_post, p, NAME("ln_post"), W);
#undef NAME
}

void vlp_vit_init(vlp_vit *vit, vlp_rng *rng) {
    float scale = 1.0f / sqrtf((float)vit->cfg.width);
    vlp_rng_fill_normal(rng, vit->class_embedding->data, vit->class_embedding->n, 0.0f, scale);
    vlp_rng_fill_normal(rng, vit->positional_embedding->data, vit->positional_embedding->n, 0.0f, scale);
    if (vit->proj) vlp_rng_fill_normal(rng, vit->proj->data, vit->proj->n, 0.0f, scale);
    int P = vit->cfg.patch_size;
    float bound = 1.0f / sqrtf(3.0f * P * P);
    vlp_rng_fill_uniform(rng, vit->conv1_weight->data, vit->conv1_weight->n, -bound, bound);
    if (vit->ln_pre.weight) vlp_ln_init(&vit->ln_pre);
    vlp_ln_init(&vit->ln_post);
    vlp_transformer_init_default(&vit->transformer, rng);
}

vlp_tensor *vlp_vit_patchify(vlp_tape *t, const vlp_tensor *images, int P) {
    int B = images->shape[0], S = images->shape[2], G = S / P;
    vlp_tensor *out = vlp_tape_tensor(t, 3, (int[]){B, G * G, 3 * P * P});
    float *o = out->data;
    for (int b = 0; b < B; b++)
        for (int gy = 0; gy < G; gy++)
            for (int gx = 0; gx < G; gx++)
                for (int c = 0; c < 3; c++)
                    for (int py = 0; py < P; py++) {
                        const float *src = images->data + (((long)b * 3 + c) * S + gy * P + py) * S + gx * P;
                        memcpy(o, src, (size_t)P * sizeof *o);
                        o += P;
                    }
    return out;
}

vlp_tensor *vlp_vit_tokens(const vlp_vit *vit, vlp_tape *t, vlp_tensor *images) {
    int S = vit->cfg.image_size, W = vit->cfg.width, P = vit->cfg.patch_size;
    VLP_ASSERT(images->ndim == 4 && images->shape[1] == 3 && images->shape[2] == S &&
                   images->shape[3] == S,
               "ViT expects images (B, 3, %d, %d)", S, S);
    int B = images->shape[0];
    vlp_tensor *w = vlp_op_reshape(t, vit->conv1_weight, 2, (int[]){W, 3 * P * P});
    vlp_tensor *x = vlp_op_linear(t, vlp_vit_patchify(t, images, P), w, NULL); /* (B, G^2, W) */
    /* class_embedding + zeros(B, 1, W), as OpenCLIP builds the class token */
    vlp_tensor *cls = vlp_op_add(t, vlp_tape_zeros(t, 3, (int[]){B, 1, W}), vit->class_embedding);
    x = vlp_op_concat(t, 2, (vlp_tensor *[]){cls, x}, 1);
    x = vlp_op_add(t, x, vit->positional_embedding);
    if (vit->ln_pre.weight) x = vlp_ln_forward(&vit->ln_pre, t, x);
    return vlp_transformer_forward(&vit->transformer, t, x, false, NULL);
}

vlp_tensor *vlp_vit_forward(const vlp_vit *vit, vlp_tape *t, vlp_tensor *images) {
    VLP_ASSERT(vit->proj, "vlp_vit_forward needs output_dim > 0");
    vlp_tensor *x = vlp_vit_tokens(vit, t, images);
    int B = x->shape[0], W = x->shape[2];
    x = vlp_op_reshape(t, vlp_op_slice(t, x, 1, 0, 1), 2, (int[]){B, W}); /* class token */
    x = vlp_ln_forward(&vit->ln_post, t, x);
    return vlp_op_matmul(t, x, vit->proj, false, false);
}
