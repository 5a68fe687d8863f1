/* BLIP (Li et al. 2022): a ViT image encoder ("visual_encoder.*", vlp's
 * ViT without ln_pre, ln_post on every token as timm's final norm), a BERT
 * text encoder that cross-attends to the image tokens ("text_encoder.*"), a
 * decoder sharing all of the encoder's weights but self-attention
 * ("text_decoder.bert.*", causal) with the LM head tied to the word
 * embeddings ("text_decoder.cls.predictions.*"), and the three losses:
 * contrastive (ITC), image-text matching on hard negatives (ITM), and
 * captioning (LM); optionally ITC with momentum distillation (ALBEF's:
 * momentum encoders, a feature queue, soft targets). Names follow
 * Salesforce BLIP's state_dict. Not the trainer's weighting of the losses,
 * decoding (blip_decode.h), retrieval's re-ranking (blip_rerank.h) or
 * CapFilt. */
#ifndef VLP_BLIP_H
#define VLP_BLIP_H

#include <stdint.h>

#include "models/bert.h"
#include "models/vit.h"

typedef struct vlp_blip_config {
    int embed_dim;
    int image_size, patch_size, vision_width, vision_layers, vision_heads;
    int vocab_size, context_length, text_width, text_layers, text_heads;
    float mlp_ratio; /* MLP width = mlp_ratio * width, both towers (GELU) */
    /* The first token of a row (the tokenizer's start token, BERT's [CLS])
     * is replaced by these for the image-grounded encoder and the decoder. */
    int enc_token_id, dec_token_id;
} vlp_blip_config;

/* The unimodal half, of which BLIP keeps a momentum copy: the image and
 * text encoders and their ITC projections. */
typedef struct vlp_blip_towers {
    vlp_vit visual_encoder;
    vlp_bert text_encoder;
    vlp_tensor *vision_proj_w, *vision_proj_b; /* (embed_dim, vision_width), (embed_dim) */
    vlp_tensor *text_proj_w, *text_proj_b;     /* (embed_dim, text_width), (embed_dim) */
} vlp_blip_towers;

typedef struct vlp_blip {
    vlp_blip_config cfg;
    vlp_params params;
    /* "visual_encoder.*", "text_encoder.*", "vision_proj.*", "text_proj.*" */
    vlp_blip_towers towers;
    vlp_bert text_decoder;
    vlp_bert_lm_head lm_head;
    vlp_tensor *itm_head_w, *itm_head_b; /* (2, text_width), (2) */
    vlp_tensor *temp;                    /* (1); BLIP's is 0-d */
} vlp_blip;

/* Registers every parameter, allocates the store and initialises it from
 * seed: the ViT as vlp's, BERT's N(0, 0.02), the projections and ITM head
 * as torch's nn.Linear, temp = 0.07. */
int vlp_blip_init(vlp_blip *m, const vlp_blip_config *cfg, uint64_t seed);
void vlp_blip_free(vlp_blip *m);

/* images (B, 3, S, S), normalised -> image tokens (B, 1 + grid^2, vision_width). */
vlp_tensor *vlp_blip_encode_image(const vlp_blip *m, vlp_tape *t, vlp_tensor *images);
/* image tokens -> L2-normalised vision_proj of the class token, (B, embed_dim). */
vlp_tensor *vlp_blip_image_features(const vlp_blip *m, vlp_tape *t, vlp_tensor *image_embeds);
/* ids (B, context_length) starting with the start token, each row's first
 * lengths[b] real -> L2-normalised text_proj of the text-only encoder's
 * first token, (B, embed_dim). */
vlp_tensor *vlp_blip_text_features(const vlp_blip *m, vlp_tape *t, const int *ids,
                                   const int *lengths, int B);

/* ITC: CLIP's local loss (vlp_clip_loss_scaled) with logits = sims / temp.
 * image_ids (N, or NULL): pairs of one image are all positives. */
vlp_tensor *vlp_blip_itc_loss(const vlp_blip *m, vlp_tape *t, vlp_tensor *img, vlp_tensor *txt,
                              vlp_tensor *img_all, vlp_tensor *txt_all, int offset,
                              const int *image_ids);

/* ITM's hard negatives, drawn without gradient from the local batch: for
 * text b an image neg_image[b] ~ softmax(txt_b . img^T / temp), for image b
 * a text neg_text[b] ~ softmax(img_b . txt^T / temp), the positive and
 * pairs of the same image id (image_ids, B, or NULL) at weight 0. A row
 * whose weights all underflow takes its most similar allowed column. With
 * probability uniform a draw ignores the similarities (every allowed column
 * alike); uniform 0 draws nothing extra from rng. Fails (VLP_EINVAL) when
 * some row has no allowed negative. */
int vlp_blip_itm_sample_negatives(const vlp_blip *m, vlp_tape *t, vlp_tensor *img,
                                  vlp_tensor *txt, const int *image_ids, float uniform,
                                  vlp_rng *rng, int *neg_image, int *neg_text);

/* The ITM head's logits (B, 2; 1 is "match") of pairs (text b, image b):
 * the image-grounded encoder on ids (B, context_length; the start token
 * first, replaced by [ENC]), each row's first lengths[b] real, and image
 * tokens (B, Ti, vision_width). */
vlp_tensor *vlp_blip_itm_logits(const vlp_blip *m, vlp_tape *t, vlp_tensor *image_embeds,
                                const int *ids, const int *lengths);

/* ITM: the image-grounded encoder ([ENC] first) on B positives, B texts
 * with neg_image and B images with neg_text, itm_head on the first token,
 * 2-way cross-entropy (match = 1). *logits, if asked, gets (3B, 2). */
vlp_tensor *vlp_blip_itm_loss(const vlp_blip *m, vlp_tape *t, vlp_tensor *image_embeds,
                              const int *ids, const int *lengths, const int *neg_image,
                              const int *neg_text, vlp_tensor **logits);

/* LM: the decoder ([DEC] first) predicts token i + 1 from tokens <= i;
 * cross-entropy with label smoothing 0.1, averaged over the scored tokens:
 * those before prompt_length (the first token and a prompt such as "a
 * picture of", as BLIP's prompt_length) and padding are not scored. */
vlp_tensor *vlp_blip_lm_loss(const vlp_blip *m, vlp_tape *t, vlp_tensor *image_embeds,
                             const int *ids, const int *lengths, int prompt_length);

/* After each optimizer step: temp into [0.001, 0.5]. */
void vlp_blip_clamp_temp(vlp_blip *m);

/* ---- momentum distillation (BLIP's pretraining; ALBEF, Li et al. 2021) ----
 * A momentum copy of the towers, updated p_m = m p_m + (1 - m) p after each
 * step (m = 0.995), embeds the batch without gradient; its features and a
 * queue of earlier ones are ITC's columns, and the targets are
 * alpha softmax(momentum sims) + (1 - alpha) positives. */
typedef struct vlp_blip_momentum {
    vlp_params params; /* frozen: "visual_encoder_m.*", ..., "image_queue", "text_queue" */
    vlp_blip_towers towers;
    const vlp_tensor **source; /* per entry of params: the model's tensor it follows, or NULL */
    /* Features of earlier batches, unit rows (queue_size, embed_dim): BLIP's
     * (embed_dim, queue_size) buffers transposed. Their image ids (-100:
     * none) and the next row to write are the trainer's to checkpoint. */
    vlp_tensor *image_queue, *text_queue;
    int *idx_queue;
    int queue_size, queue_ptr;
} vlp_blip_momentum;

/* Registers the copy, copies m's towers into it, fills the queues with
 * random unit rows (as BLIP) from seed. */
int vlp_blip_momentum_init(vlp_blip_momentum *mm, const vlp_blip *m, int queue_size, uint64_t seed);
void vlp_blip_momentum_free(vlp_blip_momentum *mm);
/* p_m = momentum p_m + (1 - momentum) p for every tensor of the copy and
 * the model's tensor it follows (the model given to init). */
void vlp_blip_momentum_update(vlp_blip_momentum *mm, float momentum);

/* The momentum towers' features of the batch, without gradient:
 * *img_m, *txt_m (B, embed_dim), L2-normalised. */
void vlp_blip_momentum_features(const vlp_blip_momentum *mm, vlp_tape *t, vlp_tensor *images,
                                const int *ids, const int *lengths, vlp_tensor **img_m,
                                vlp_tensor **txt_m);

/* ITC with momentum distillation: logits img [txt_m; text_queue]^T / temp
 * (and txt [img_m; image_queue]^T / temp), soft targets alpha
 * softmax(same with the momentum features as rows) + (1 - alpha) q, where
 * q is the one-hot diagonal or, with image_ids (B), uniform over the
 * columns of the same image id (the queue's ids included). */
vlp_tensor *vlp_blip_itc_loss_momentum(const vlp_blip *m, const vlp_blip_momentum *mm, vlp_tape *t,
                                       vlp_tensor *img, vlp_tensor *txt, vlp_tensor *img_m,
                                       vlp_tensor *txt_m, const int *image_ids, float alpha);

/* Writes n (<= queue_size) rows of momentum features (the global batch's,
 * gathered by the caller) and their image ids (NULL: none) at the queue's
 * pointer, wrapping, and advances it. */
void vlp_blip_momentum_enqueue(vlp_blip_momentum *mm, const float *img_m, const float *txt_m,
                               const int *image_ids, int n);

#endif
