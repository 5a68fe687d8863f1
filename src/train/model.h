/* The models vlptrain trains behind one interface: CLIP, BLIP or GroupViT
 * built from a configuration, their parameter store, a step's loss for a
 * rank's batch against the global batch (the all-gathers carry gradient, so
 * W ranks compute what one process does), what follows an optimizer step,
 * and the image and text embeddings evaluation compares. A switch on the
 * kind, not a table of function pointers: three kinds read plainer that way.
 * Not the data, the optimizer or the checkpoint files. */
#ifndef VLP_MODEL_H
#define VLP_MODEL_H

#include <stdbool.h>

#include "base/rng.h"
#include "data/loader.h"
#include "models/blip.h"
#include "models/clip.h"
#include "models/groupvit.h"
#include "train/config.h"
#include "train/dist.h"

typedef struct vlp_model {
    int kind; /* VLP_MODEL_* */
    vlp_config cfg;
    int embed_dim, image_size, context_length;
    int eot;            /* the tokenizer's end token: a row's length ends with it */
    vlp_params *params; /* the trained store, of whichever model below */
    vlp_clip clip;
    vlp_blip blip;
    bool momentum; /* BLIP with [blip] momentum */
    vlp_blip_momentum blip_m;
    vlp_groupvit groupvit;
    /* BLIP with momentum: the step's momentum features of the global batch
     * (world B, D) and image ids, enqueued once the step is taken. */
    float *pending_img, *pending_txt;
    int *pending_ids;
    int pending;
    /* BLIP: the last step's ITC, ITM and LM losses, unweighted, means over
     * the global batch, for logs; NaN for a term whose weight is 0. */
    float terms[3];
} vlp_model;

/* One step's pairs on this rank: K micro-batches of B. */
typedef struct vlp_step_batch {
    int K, B;
    float *images;                /* (K B, 3, S, S), normalised */
    const int *ids;               /* (K B, context_length) */
    const int *groups;            /* (world K B) ids of extra positives, or NULL */
    float *cache_img, *cache_txt; /* (K B, embed_dim) scratch, used when K > 1 */
    /* BLIP: the captioning rows, [SOT] prompt caption [EOT] (B, context_length),
     * and the tokens before the caption's first ([SOT] and the prompt); NULL:
     * ids, no prompt. */
    const int *lm_ids;
    int prompt_length;
    /* GroupViT: K prompts per image, image b's at rows b K .. b K + K - 1
     * ((B K, context_length)), or NULL for no multi-label term. */
    const int *prompt_ids;
    /* This step's random draws (ITM negatives, Gumbel noise): the same on
     * every rank; draws are tied to a pair's place in the global batch. */
    vlp_rng rng;
} vlp_step_batch;

const char *vlp_model_kind_name(int kind);

/* [preprocess] and the image size of c into o. */
void vlp_config_preprocess(const vlp_config *c, vlp_loader_opts *o);

/* The loader that evaluates m: its image size and [preprocess], every
 * sample once in order (no shuffle, no augmentation, a partial last batch),
 * rank 0 of 1. */
vlp_loader_opts vlp_model_eval_loader(const vlp_model *m, int batch, int workers);

/* The CLIP architecture a configuration describes, with the tokenizer's
 * vocabulary. */
vlp_clip_config vlp_config_clip(const vlp_config *c, int vocab_size);

/* The [model] kind c names, sized by c, with the tokenizer's vocabulary
 * (BLIP adds its [ENC] and [DEC] tokens after it), initialised from seed. */
int vlp_model_init(vlp_model *m, const vlp_config *c, int vocab_size, uint64_t seed);
void vlp_model_free(vlp_model *m);

/* The gradient of the global batch's loss, all-reduced (mean) into the
 * model's flat gradient buffer; *loss gets the loss (mean over ranks).
 * CLIP: vlp_clip_gradients. The others: K == 1, vlp_model_loss. */
int vlp_model_gradients(vlp_model *m, vlp_tape *tp, const vlp_dist *d, const vlp_step_batch *b,
                        float *loss);

/* This rank's part of BLIP's or GroupViT's loss, on the tape (K == 1):
 * every term is a mean over rows or tokens weighted so that the mean over
 * ranks is the global batch's. BLIP: itc_weight ITC + itm_weight ITM +
 * lm_weight LM; GroupViT: vlp_groupvit_loss. NULL with an error set when
 * ITM finds no negative. */
vlp_tensor *vlp_model_loss(vlp_model *m, vlp_tape *tp, const vlp_dist *d, const vlp_step_batch *b);

/* After each optimizer step: the learnable temperatures clamped; BLIP's
 * queue takes the step's momentum features and the momentum encoders move. */
void vlp_model_after_step(vlp_model *m);

/* What multiplies the contrastive logits, for logs: exp(logit_scale), or
 * BLIP's 1 / temp. */
double vlp_model_logit_scale(const vlp_model *m);

/* Evaluation's features, L2-normalised (B, embed_dim): CLIP's embeddings,
 * BLIP's ITC features (unimodal encoders), GroupViT's with the soft
 * assignment. ids (B, context_length) as the tokenizer writes them. */
vlp_tensor *vlp_model_encode_image(const vlp_model *m, vlp_tape *t, vlp_tensor *images);
vlp_tensor *vlp_model_encode_text(const vlp_model *m, vlp_tape *t, const int *ids, int B);

/* State beyond the parameters that a checkpoint keeps: BLIP's momentum
 * encoders and queues (tensors), and the queue's image ids and next row
 * (ints: queue_size + 1). NULL / 0 when there is none. */
vlp_params *vlp_model_state(vlp_model *m);
int vlp_model_state_ints(const vlp_model *m);
void vlp_model_state_get(const vlp_model *m, int *ints);
void vlp_model_state_set(vlp_model *m, const int *ints);

/* The CLIP step (vlp_model_gradients for CLIP): with K > 1, OpenCLIP's
 * accumulation: every micro-batch's features without gradient first, then
 * each micro-batch again with gradient among the cached features, so K
 * micro-batches of B give the gradient of one batch of K B. gather_grad
 * false is the broken gather the exactness test needs. Returns the loss. */
float vlp_clip_gradients(vlp_clip *m, vlp_tape *tp, const vlp_dist *d, const vlp_step_batch *b,
                         bool gather_grad);

#endif
