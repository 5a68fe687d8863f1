/* GroupViT (Xu et al. 2022): an image tower whose layers carry learnable
 * group tokens beside the patch tokens and end in a grouping block that
 * merges the patches into fewer segment tokens; the CLIP text tower; and the
 * multi-label contrastive loss, written like vlp_clip_loss for a rank's
 * local rows against the global batch. Parameter names follow the official
 * state_dict (NVlabs/GroupViT, models/group_vit.py). Not the prompt
 * building, segmentation, data or training: those sit above this file. */
#ifndef VLP_GROUPVIT_H
#define VLP_GROUPVIT_H

#include <stdint.h>

#include "models/mlp.h"
#include "models/text.h"

#define VLP_GROUPVIT_MAX_GROUPINGS 4

typedef struct vlp_groupvit_config {
    int embed_dim;   /* the joint embedding */
    int image_size, patch_size, width, heads;
    float mlp_ratio; /* the blocks' MLP width = mlp_ratio * width */
    /* The image tower has n_groupings + 1 layers; layer i < n_groupings
     * runs depths[i] blocks over [segments; group_tokens[i] group tokens]
     * and groups the segments into output_groups[i]; the last layer runs
     * depths[n_groupings] blocks over the final segments. GroupViT: 2
     * groupings, depths 6, 3, 3, 64 then 8 groups. */
    int n_groupings;
    int depths[VLP_GROUPVIT_MAX_GROUPINGS + 1];
    int group_tokens[VLP_GROUPVIT_MAX_GROUPINGS];
    int output_groups[VLP_GROUPVIT_MAX_GROUPINGS];
    int proj_hidden;    /* img_projector's hidden width (GroupViT: 4096) */
    float gumbel_tau;   /* 1 */
    float assign_eps;   /* a group's assignment is divided by its sum + assign_eps: 1 */
    int vocab_size, context_length, text_width, text_layers, text_heads;
    float multi_label_weight; /* of the prompt term in vlp_groupvit_loss: 1 */
    float group_weight;       /* of the group term (not GroupViT's): 0, off */
} vlp_groupvit_config;

typedef struct vlp_groupvit_linear {
    vlp_tensor *weight, *bias; /* (out, in), (out) */
} vlp_groupvit_linear;

/* timm's Mlp: fc1, GELU, fc2. */
typedef struct vlp_groupvit_mlp {
    vlp_groupvit_linear fc1, fc2;
} vlp_groupvit_mlp;

/* q, k, v and output projections, each with a bias. */
typedef struct vlp_groupvit_attn {
    vlp_groupvit_linear q_proj, k_proj, v_proj, proj;
} vlp_groupvit_attn;

/* The grouping block ("downsample"): group tokens (B, S_in, C) are mapped
 * to S_out queries by an MLP over the token axis, refined by cross-attention
 * to the patches, then every patch is assigned to one query. */
typedef struct vlp_groupvit_grouping {
    int in_groups, out_groups, heads;
    float tau, eps;
    vlp_ln norm_tokens, norm_post_tokens, norm_x, norm_new_x;
    vlp_groupvit_mlp mlp_inter; /* S_in -> C/2 -> S_out, over tokens */
    /* pre_assign_attn: post-norm cross-attention block, queries -> patches */
    vlp_groupvit_attn pre_attn;
    vlp_ln pre_norm2, pre_norm_post;
    vlp_groupvit_mlp pre_mlp;
    vlp_groupvit_attn assign; /* one head */
    vlp_groupvit_mlp mlp_channels; /* C -> 4C -> C */
} vlp_groupvit_grouping;

typedef struct vlp_groupvit_layer {
    int n_group_tokens;
    vlp_tensor *group_token; /* (1, S, C), NULL in the last layer */
    /* group_projector: adds LN + token-axis MLP of the previous layer's
     * group tokens to this layer's (layers after the first) */
    bool has_projector;
    vlp_ln projector_norm;
    vlp_groupvit_mlp projector_mlp;
    vlp_transformer blocks;
    bool has_grouping;
    vlp_groupvit_grouping downsample;
} vlp_groupvit_layer;

typedef struct vlp_groupvit {
    vlp_groupvit_config cfg;
    vlp_params params;
    int grid;                       /* patches per side */
    vlp_groupvit_linear patch_proj; /* conv weight (C, 3, P, P) as a linear map */
    vlp_ln patch_norm;
    vlp_tensor *pos_embed; /* (1, grid^2, C) */
    vlp_groupvit_layer layers[VLP_GROUPVIT_MAX_GROUPINGS + 1];
    vlp_ln norm;
    vlp_mlp img_projector; /* C -> proj_hidden -> embed_dim, ReLU */
    vlp_text text;         /* "text_encoder.*", its text_projection to embed_dim */
    vlp_tensor *logit_scale, *multi_label_logit_scale; /* (1) each */
} vlp_groupvit;

/* Validates cfg (a bad size is VLP_EINVAL with a message naming it),
 * registers every parameter, allocates the store and initialises it as
 * GroupViT does, from seed. */
int vlp_groupvit_init(vlp_groupvit *m, const vlp_groupvit_config *cfg, uint64_t seed);
void vlp_groupvit_free(vlp_groupvit *m);

/* Training's assignment: Gumbel noise, then the straight-through hard
 * one-hot. The noise of grouping i, (B, S_out, L_in) in the layout of the
 * assignment logits, is noise[i] when given (tests, parity with a
 * reference), else drawn from rng, else none. */
typedef struct vlp_groupvit_gumbel {
    vlp_rng *rng;
    const float *noise[VLP_GROUPVIT_MAX_GROUPINGS];
} vlp_groupvit_gumbel;

/* images (B, 3, S, S), normalised -> L2-normalised (B, embed_dim). gumbel
 * NULL is evaluation: the soft assignment, no noise. assign, if not NULL,
 * gets each grouping's soft assignment, (B, S_out, L_in): softmax over the
 * groups of the logits without noise, what segmentation multiplies. */
vlp_tensor *vlp_groupvit_encode_image(const vlp_groupvit *m, vlp_tape *t, vlp_tensor *images,
                                      const vlp_groupvit_gumbel *gumbel, vlp_tensor **assign);
/* encode_image, and in *groups (B, G, embed_dim) each final group through
 * the same projector, L2-normalised: GroupViT's segment embeddings, what
 * segmentation names and the group term trains. */
vlp_tensor *vlp_groupvit_encode_image_groups(const vlp_groupvit *m, vlp_tape *t, vlp_tensor *images,
                                             const vlp_groupvit_gumbel *gumbel, vlp_tensor **assign,
                                             vlp_tensor **groups);
/* The tower before the pooling: the final group tokens after img_encoder's
 * norm, (B, G, C), what encode_image averages and segmentation labels one
 * by one; gumbel and assign as there. */
vlp_tensor *vlp_groupvit_encode_groups(const vlp_groupvit *m, vlp_tape *t, vlp_tensor *images,
                                       const vlp_groupvit_gumbel *gumbel, vlp_tensor **assign);
/* ids (n, context_length) -> L2-normalised (n, embed_dim). */
vlp_tensor *vlp_groupvit_encode_text(const vlp_groupvit *m, vlp_tape *t, const int *ids, int n);

/* Registers a grouping block's parameters under prefix ("...downsample"):
 * C channels, in_groups group tokens in, out_groups out. */
void vlp_groupvit_grouping_register(vlp_groupvit_grouping *g, vlp_params *p, const char *prefix,
                                    int C, int in_groups, int out_groups, int heads, float tau,
                                    float eps);

/* The grouping block: segments x (B, L, C) and group tokens (B, S_in, C)
 * -> (B, S_out, C). train: the Gumbel hard assignment with the given noise
 * (else from rng, else none); otherwise the soft one. soft as above. */
vlp_tensor *vlp_groupvit_grouping_forward(const vlp_groupvit_grouping *g, vlp_tape *t,
                                          vlp_tensor *x, vlp_tensor *groups, bool train,
                                          vlp_rng *rng, const float *noise, vlp_tensor **soft);
/* Its three steps, public so that a test can put a surrogate in the middle:
 * the assignment logits (B, S_out, L) with the normalised patches (*xn) and
 * the queries (*queries) they came from; the assignment, softmax over the
 * group axis; the new segments from an assignment. */
vlp_tensor *vlp_groupvit_grouping_logits(const vlp_groupvit_grouping *g, vlp_tape *t,
                                         vlp_tensor *x, vlp_tensor *groups, vlp_tensor **xn,
                                         vlp_tensor **queries);
vlp_tensor *vlp_groupvit_grouping_assign(const vlp_groupvit_grouping *g, vlp_tape *t,
                                         vlp_tensor *logits, bool train, vlp_rng *rng,
                                         const float *noise, vlp_tensor **soft);
vlp_tensor *vlp_groupvit_grouping_apply(const vlp_groupvit_grouping *g, vlp_tape *t,
                                        vlp_tensor *assign, vlp_tensor *xn, vlp_tensor *queries);

/* What the loss sees of a batch: L2-normalised rows. K prompts per image
 * (nouns or tags of its caption in templates, "a photo of a {}."), image
 * b's at rows b K .. b K + K - 1; prompts NULL turns the term off. */
typedef struct vlp_groupvit_embeddings {
    vlp_tensor *img;     /* (B, D) */
    vlp_tensor *txt;     /* (B, D), the captions */
    vlp_tensor *prompts; /* (B K, D), or NULL */
    vlp_tensor *groups;  /* (B, G, D), local only, for the group term; or NULL */
} vlp_groupvit_embeddings;

/* GroupViT's loss for a rank's B local rows against the N global rows (the
 * local ones at [offset, offset + B); N == B, all == local, on one
 * process): the caption term, vlp_clip_loss with logit_scale, plus
 * multi_label_weight times the multi-label term with its own scale, plus
 * group_weight times the group term (with local->groups and prompts). */
vlp_tensor *vlp_groupvit_loss(const vlp_groupvit *m, vlp_tape *t,
                              const vlp_groupvit_embeddings *local,
                              const vlp_groupvit_embeddings *all, int offset);

/* The multi-label term: with s = exp(logit_scale),
 *   ( CE_soft(s img prompts_all^T, 1/K on image i's K prompts)
 *   + CE(s prompts img_all^T, the prompt's image) ) / 2
 * over B image rows (N K columns) and B K prompt rows (N columns). */
vlp_tensor *vlp_groupvit_multi_label_loss(vlp_tape *t, vlp_tensor *img, vlp_tensor *prompts,
                                          vlp_tensor *img_all, vlp_tensor *prompts_all,
                                          vlp_tensor *logit_scale, int offset);

/* The group term, ours, not GroupViT's: each of its caption's labels
 * should be found in one of the image's own groups. With s =
 * exp(logit_scale) and sim[i, j, g] = groups[i, g] . prompts_all[j], the
 * image's score for prompt j pools its groups by a softmax at s (a soft
 * maximum): score[i, j] = sum_g softmax_g(s sim[i, j, :]) sim[i, j, g];
 * the term is CE_soft(s score, 1/K on image i's K prompts) over B rows. The
 * image-level terms only ask the mean of the groups to carry the labels;
 * segmentation names the groups one by one. groups (B, G, D), prompts_all
 * (N K, D); it shares the multi-label term's scale. */
vlp_tensor *vlp_groupvit_group_loss(vlp_tape *t, vlp_tensor *groups, vlp_tensor *prompts_all, int K,
                                    vlp_tensor *logit_scale, int offset);

/* After each optimizer step: both logit scales into [0, ln 100]. */
void vlp_groupvit_clamp_logit_scales(vlp_groupvit *m);

#endif
