/* CLIP: a ViT image tower ("visual.*"), a causal text tower (OpenCLIP's
 * top-level names), a learnable logit_scale, and the symmetric InfoNCE loss
 * written for a rank's local rows against the global batch, so the same
 * code is exact on one process and under MPI. Not the data or the trainer. */
#ifndef VLP_CLIP_H
#define VLP_CLIP_H

#include <stdint.h>

#include "models/text.h"
#include "models/vit.h"

typedef struct vlp_clip_config {
    int embed_dim;
    int image_size, patch_size, vision_width, vision_layers, vision_heads;
    int vocab_size, context_length, text_width, text_layers, text_heads;
    float mlp_ratio;    /* MLP width = mlp_ratio * width, both towers */
    vlp_activation act; /* GELU, or QuickGELU as OpenAI's CLIP */
} vlp_clip_config;

typedef struct vlp_clip {
    vlp_clip_config cfg;
    vlp_params params;
    vlp_vit visual;
    vlp_text text;
    vlp_tensor *logit_scale; /* (1); OpenCLIP's is 0-d */
} vlp_clip;

/* Registers every parameter, allocates the store and initialises it as
 * OpenCLIP does (logit_scale = ln(1/0.07)), from seed. */
int vlp_clip_init(vlp_clip *m, const vlp_clip_config *cfg, uint64_t seed);
void vlp_clip_free(vlp_clip *m);

/* images (B, 3, S, S), normalised -> L2-normalised (B, embed_dim). */
vlp_tensor *vlp_clip_encode_image(const vlp_clip *m, vlp_tape *t, vlp_tensor *images);
/* ids (B, context_length) -> L2-normalised (B, embed_dim). */
vlp_tensor *vlp_clip_encode_text(const vlp_clip *m, vlp_tape *t, const int *ids, int B);

/* The symmetric InfoNCE loss of a rank's B local pairs against all N pairs
 * of the global batch (OpenCLIP's local loss; N == B on one process):
 *   (CE(s I T_all^T, offset + arange) + CE(s T I_all^T, offset + arange)) / 2
 * with s = exp(logit_scale). img, txt: the local rows (B, D); img_all,
 * txt_all: (N, D), the local rows at [offset, offset + B). When groups is
 * not NULL (N ids: a class, or a caption hash) every column sharing row i's
 * id is a positive, with equal soft target weight, instead of a false
 * negative. *logits_per_image, if asked for, gets the (B, N) image logits. */
vlp_tensor *vlp_clip_loss(vlp_tape *t, vlp_tensor *img, vlp_tensor *txt, vlp_tensor *img_all,
                          vlp_tensor *txt_all, vlp_tensor *logit_scale, int offset,
                          const int *groups, vlp_tensor **logits_per_image);

/* The same loss with the logits' multiplier given directly: scale is one
 * element (BLIP's 1 / temp), its gradient flows. */
vlp_tensor *vlp_clip_loss_scaled(vlp_tape *t, vlp_tensor *img, vlp_tensor *txt, vlp_tensor *img_all,
                                 vlp_tensor *txt_all, vlp_tensor *scale, int offset,
                                 const int *groups, vlp_tensor **logits_per_image);

/* After each optimizer step: logit_scale into [0, ln 100]. */
void vlp_clip_clamp_logit_scale(vlp_clip *m);

#endif
