/* Text generation with BLIP's decoder: an incremental decoder that keeps each
 * layer's self-attention keys and values (and the image's cross-attention
 * ones) so a step feeds one token per row, and Hugging Face generate()'s
 * strategies on top of it, as BLIP's generate() calls them: greedy, beam
 * search and nucleus sampling. No gradient anywhere. Not tokenisation, nor
 * what a prompt says (the caller's: "a picture of", a VQA question). */
#ifndef VLP_BLIP_DECODE_H
#define VLP_BLIP_DECODE_H

#include <stdint.h>

#include "models/blip.h"

/* ---- the incremental decoder -------------------------------------------------- */

typedef struct vlp_blip_decoder vlp_blip_decoder;

/* A decoder over N = B * repeats rows, row b * repeats + j reading image b
 * of image_embeds (B, Ti, vision_width) (read here only: the decoder keeps
 * its cross-attention keys and values). Sequences reach at most max_length
 * (<= context_length) tokens. */
int vlp_blip_decoder_init(vlp_blip_decoder **out, const vlp_blip *m,
                          const vlp_tensor *image_embeds, int repeats, int max_length);
void vlp_blip_decoder_free(vlp_blip_decoder *d);
int vlp_blip_decoder_rows(const vlp_blip_decoder *d);

/* Feeds ids (N), one token per row, at the next position (0 first, where
 * the decoder's first token [DEC] goes) -> the LM head's logits for the
 * position after it (N, vocab_size), valid until the next step. The same
 * values, to float rounding, as the causal decoder run on the whole
 * sequence at once (vlp_bert_forward): each step attends to the cached
 * keys and values of the earlier ones. */
const float *vlp_blip_decoder_step(vlp_blip_decoder *d, const int *ids);

/* Row r continues the sequence of row src[r] (N), a row of the same image
 * (src[r] / repeats == r / repeats): beam search's reorder. */
void vlp_blip_decoder_reorder(vlp_blip_decoder *d, const int *src);

/* ---- strategies --------------------------------------------------------------- */

#define VLP_BLIP_MAX_BEAMS 16

typedef enum vlp_blip_decode_method {
    VLP_BLIP_DECODE_GREEDY,
    VLP_BLIP_DECODE_BEAM,
    VLP_BLIP_DECODE_NUCLEUS,
} vlp_blip_decode_method;

/* Lengths count the whole sequence, [DEC] and the prompt included, as
 * generate()'s max_length and min_length do (BLIP's COCO captioning: 20
 * and 5 with the prompt "a picture of ", [DEC] + 4 tokens). Hugging Face's
 * rules are those of transformers 4.15, which BLIP pins. */
typedef struct vlp_blip_decode_options {
    vlp_blip_decode_method method;
    int max_length, min_length; /* the end token is barred before min_length */
    int end_token_id;           /* the tokenizer's end token ([SEP]) */
    /* Beam search: num_beams beams, hypotheses ranked by their sum of
     * log-probabilities / length^length_penalty (length without the end
     * token), stopping as generate() does without early_stopping. */
    int num_beams; /* [1, VLP_BLIP_MAX_BEAMS] */
    float length_penalty;
    /* Nucleus sampling: softmax(logits / temperature), cut to the top_k most
     * probable (0: no cut), then to the smallest set of most probable
     * tokens whose mass is >= top_p. */
    float top_p, temperature;
    int top_k;
    /* Hugging Face's (CTRL's): every token already in the sequence, prompt
     * included, has its score divided by the penalty when positive and
     * multiplied by it when negative. 1: none. */
    float repetition_penalty;
} vlp_blip_decode_options;

/* BLIP's settings for method: max 20, min 5 (caption_coco.yaml); beam: 3
 * beams, length penalty 1, no repetition penalty; nucleus: top_p 0.9,
 * temperature 1, repetition penalty 1.1 (blip.py's generate), and top_k 50,
 * generate()'s default that BLIP's call leaves on. */
vlp_blip_decode_options vlp_blip_decode_defaults(vlp_blip_decode_method method, int end_token_id);

/* Captions (or answers) for B images: each sequence starts [DEC], prompt
 * (n_prompt ids, may be 0), and continues until the end token or
 * max_length. Writes row b's generated ids (neither the prompt nor the end
 * token) to ids + b * max_length, their count to lengths[b], and to
 * scores[b] (may be NULL) beam search's ranking score, or for greedy and
 * nucleus the sum of the model's log-probabilities (log_softmax of the
 * logits before any penalty) of the tokens chosen, the end token included.
 * rng: nucleus sampling's draws (unused otherwise; may be NULL then).
 * Errors (VLP_EINVAL): lengths out of range for the model or options. */
int vlp_blip_generate(const vlp_blip *m, const vlp_tensor *image_embeds, const int *prompt,
                      int n_prompt, const vlp_blip_decode_options *o, vlp_rng *rng, int *ids,
                      int *lengths, float *scores);

/* The pieces generation applies to one row of scores (V), for callers and
 * tests. The repetition penalty over the tokens prev (n, repeats counted
 * once), in place. */
void vlp_blip_repetition_penalty(float *scores, int V, const int *prev, int n, float penalty);
/* The nucleus of logits (V) under o's temperature, top_k and top_p: writes
 * its token ids, most probable first (ties: lower id first), and their
 * probabilities renormalised over it; returns its size (>= 1). */
int vlp_blip_nucleus(const float *logits, int V, const vlp_blip_decode_options *o, int *tokens,
                     float *probs);

#endif
