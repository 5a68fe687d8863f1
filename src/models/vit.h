/* The ViT image encoder, OpenCLIP's VisionTransformer: patch embedding
 * (conv1 as a linear map, no bias), class token, positional embedding,
 * ln_pre, transformer, ln_post on the class token, projection (no bias).
 * Parameter names are OpenCLIP's under "<prefix>." (CLIP uses "visual"). */
#ifndef VLP_VIT_H
#define VLP_VIT_H

#include "models/transformer.h"

typedef struct vlp_vit_config {
    int image_size, patch_size, width, layers, heads, mlp_width;
    int output_dim;  /* 0: no proj (BLIP projects the tokens itself) */
    vlp_activation act;
    bool no_ln_pre;  /* BLIP's (timm's) ViT has no ln_pre */
} vlp_vit_config;

typedef struct vlp_vit {
    vlp_vit_config cfg;
    int grid;                       /* patches per side */
    vlp_tensor *conv1_weight;       /* (width, 3, P, P) */
    vlp_tensor *class_embedding;    /* (width) */
    vlp_tensor *positional_embedding; /* (grid^2 + 1, width) */
    vlp_tensor *proj;               /* (width, output_dim), or NULL */
    vlp_ln ln_pre, ln_post;         /* ln_pre's tensors NULL with no_ln_pre */
    vlp_transformer transformer;
} vlp_vit;

void vlp_vit_register(vlp_vit *vit, vlp_params *p, const char *prefix, const vlp_vit_config *cfg);
/* OpenCLIP: class and positional embeddings and proj N(0, width^-1/2),
 * conv1 U(+-1/sqrt(3 P^2)), blocks with torch's defaults. */
void vlp_vit_init(vlp_vit *vit, vlp_rng *rng);

/* images (B, 3, S, S) -> patches (B, (S/P)^2, 3 P P), each flattened in
 * conv1.weight's (channel, row, column) order, patches in raster order:
 * a stride-P convolution becomes one linear map. S a multiple of P. */
vlp_tensor *vlp_vit_patchify(vlp_tape *t, const vlp_tensor *images, int P);

/* images (B, 3, H, W), normalised -> every token after the transformer,
 * (B, 1 + grid^2, width), class token first; BLIP applies ln_post to all
 * of them (timm's final norm) for its cross-attention. */
vlp_tensor *vlp_vit_tokens(const vlp_vit *vit, vlp_tape *t, vlp_tensor *images);
/* images -> (B, output_dim): ln_post of the class token, then proj. */
vlp_tensor *vlp_vit_forward(const vlp_vit *vit, vlp_tape *t, vlp_tensor *images);

#endif
