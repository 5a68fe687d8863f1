/* The ViT image encoder, OpenCLIP's VisionTransformer: patch embedding
 * (conv1 as a linear map, no bias), class token, positional embedding,
 * ln_pre, transformer, ln_post on the class token, projection (no bias).
 * Parameter names are OpenCLIP's under "<prefix>." (CLIP uses "visual"). */
#ifndef VLP_VIT_H
#define VLP_VIT_H

#include "models/transformer.h"

typedef struct vlp_vit_config {
    int image_size, patch_size, width, layers, heads, mlp_width, output_dim;
    vlp_activation act;
} vlp_vit_config;

typedef struct vlp_vit {
    vlp_vit_config cfg;
    int grid;                       /* patches per side */
    vlp_tensor *conv1_weight;       /* (width, 3, P, P) */
    vlp_tensor *class_embedding;    /* (width) */
    vlp_tensor *positional_embedding; /* (grid^2 + 1, width) */
    vlp_tensor *proj;               /* (width, output_dim) */
    vlp_ln ln_pre, ln_post;
    vlp_transformer transformer;
} vlp_vit;

void vlp_vit_register(vlp_vit *vit, vlp_params *p, const char *prefix, const vlp_vit_config *cfg);
/* OpenCLIP: class and positional embeddings and proj N(0, width^-1/2),
 * conv1 U(+-1/sqrt(3 P^2)), blocks with torch's defaults. */
void vlp_vit_init(vlp_vit *vit, vlp_rng *rng);

/* images (B, 3, H, W), normalised -> every token after the transformer,
 * (B, 1 + grid^2, width), class token first. BLIP's cross-attention reads these. */
vlp_tensor *vlp_vit_tokens(const vlp_vit *vit, vlp_tape *t, vlp_tensor *images);
/* images -> (B, output_dim): ln_post of the class token, then proj. */
vlp_tensor *vlp_vit_forward(const vlp_vit *vit, vlp_tape *t, vlp_tensor *images);

#endif
