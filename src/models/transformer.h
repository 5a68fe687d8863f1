/* Pre-LN transformer blocks with OpenCLIP's parameter names: LayerNorm,
 * the residual attention block (ln_1, attn.in_proj_*, attn.out_proj.*, ln_2,
 * mlp.c_fc.*, mlp.c_proj.*) and a stack of them ("<prefix>.resblocks.<i>").
 * Shared by the ViT and the text towers; no tower-specific logic here. */
#ifndef VLP_TRANSFORMER_H
#define VLP_TRANSFORMER_H

#include <stdint.h>

#include "autograd/ops.h"
#include "autograd/params.h"
#include "base/rng.h"

typedef struct vlp_ln {
    vlp_tensor *weight, *bias; /* (C) */
} vlp_ln;

typedef struct vlp_resblock {
    vlp_ln ln_1, ln_2;
    vlp_tensor *in_proj_weight, *in_proj_bias; /* (3C, C), (3C): q, k, v stacked */
    vlp_tensor *out_proj_weight, *out_proj_bias; /* (C, C), (C) */
    vlp_tensor *fc_weight, *fc_bias;             /* (M, C), (M): mlp.c_fc */
    vlp_tensor *proj_weight, *proj_bias;         /* (C, M), (C): mlp.c_proj */
} vlp_resblock;

#define VLP_MAX_LAYERS 48

typedef struct vlp_transformer {
    int width, layers, heads, mlp_width;
    vlp_activation act;
    vlp_resblock blocks[VLP_MAX_LAYERS];
} vlp_transformer;

/* Registers "<prefix>.weight" and "<prefix>.bias". */
void vlp_ln_register(vlp_ln *ln, vlp_params *p, const char *prefix, int C);
/* Ones and zeros, as torch.nn.LayerNorm. */
void vlp_ln_init(vlp_ln *ln);
vlp_tensor *vlp_ln_forward(const vlp_ln *ln, vlp_tape *t, vlp_tensor *x);

/* Registers "<prefix>.resblocks.<i>.*" for every layer. */
void vlp_transformer_register(vlp_transformer *tr, vlp_params *p, const char *prefix, int width,
                              int layers, int heads, int mlp_width, vlp_activation act);

/* The same blocks under other parameter names: OpenCLIP's (above), or
 * timm's as GroupViT's state_dict has them ("<prefix>.blocks.<i>.norm1",
 * attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2; qkv packs q, k, v as
 * in_proj does). */
typedef enum vlp_block_names {
    VLP_BLOCK_NAMES_OPENCLIP,
    VLP_BLOCK_NAMES_TIMM,
} vlp_block_names;
void vlp_transformer_register_named(vlp_transformer *tr, vlp_params *p, const char *prefix,
                                    int width, int layers, int heads, int mlp_width,
                                    vlp_activation act, vlp_block_names names);

/* torch's defaults, as OpenCLIP's vision tower keeps them: in_proj
 * xavier-uniform, attention biases 0, Linear layers U(+-1/sqrt(fan_in)). */
void vlp_transformer_init_default(vlp_transformer *tr, vlp_rng *rng);

/* OpenCLIP's text-tower init: in_proj N(0, width^-1/2), out_proj and c_proj
 * N(0, width^-1/2 (2 layers)^-1/2), c_fc N(0, (2 width)^-1/2); biases as torch. */
void vlp_transformer_init_text(vlp_transformer *tr, vlp_rng *rng);

/* x (B, T, C) through every block; causal mask and key padding mask
 * (B, T, 0 = padding; may be NULL) apply to self-attention. */
vlp_tensor *vlp_transformer_forward(const vlp_transformer *tr, vlp_tape *t, vlp_tensor *x,
                                    bool causal, const uint8_t *key_mask);

#endif
