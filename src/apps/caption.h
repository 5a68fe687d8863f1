/* Captioning and visual question answering with a trained BLIP model (a
 * vlp_model of kind blip): images in, text out, through the decoder's
 * strategies (models/blip_decode.h) and the tokenizer; and the images of a
 * dataset grouped with their reference captions for scoring. Not the
 * strategies themselves, nor the metrics (caption_metrics.h). */
#ifndef VLP_CAPTION_H
#define VLP_CAPTION_H

#include <stdbool.h>

#include "data/dataset.h"
#include "data/tokenizer.h"
#include "models/blip_decode.h"
#include "train/model.h"

/* Text for B images (B, 3, S, S), normalised: each is [DEC], the prompt's
 * tokens (prompt may be "" or NULL), then what o's strategy generates,
 * decoded (the prompt not included; ids the tokenizer does not know, such
 * as [ENC], dropped; a byte that is not UTF-8 becomes U+FFFD, as a BPE
 * may stop mid-character, and a control character a space). out[b] is malloc'd; scores (B, may be NULL) as
 * vlp_blip_generate's. o->end_token_id is set to the tokenizer's end. */
int vlp_caption_generate(const vlp_model *m, const vlp_tokenizer *tok, float *images, int B,
                         const char *prompt, const vlp_blip_decode_options *o, vlp_rng *rng,
                         char **out, float *scores);

/* The images of ds: samples with the same image file are one image, whose
 * references are all their captions; each sample of a shard is its own. */
typedef struct vlp_caption_images {
    vlp_dataset view;   /* ds's first sample of each image, in order (shares ds's strings) */
    int *ref_start;     /* (view.n + 1): image i's references are refs[ref_start[i]..[i + 1]) */
    const char **refs;  /* (ds->n) ds's captions, grouped by image */
} vlp_caption_images;

int vlp_caption_images_group(vlp_caption_images *g, const vlp_dataset *ds);
void vlp_caption_images_free(vlp_caption_images *g);

/* Captions for every sample of ds (centre crops, batch images at a time,
 * workers decoding threads): captions[i] malloc'd, NULL for an image that
 * could not be read (the loader warns). scores (ds->n, may be NULL). */
int vlp_caption_dataset(const vlp_model *m, const vlp_tokenizer *tok, const vlp_dataset *ds,
                        const char *prompt, const vlp_blip_decode_options *o, uint64_t seed,
                        int batch, int workers, char **captions, float *scores);

/* The nearest-neighbour baseline: for every sample of ds, the caption of
 * the training image (of the dataset at train_path) nearest to it by the
 * model's image features, and their cosine in scores; NULL for an image
 * that could not be read. Unreadable training images lend nothing. */
int vlp_caption_nearest(const vlp_model *m, const vlp_tokenizer *tok, const vlp_dataset *ds, const char *train_path,
                        int batch, int workers, char **captions, float *scores);

/* The decoding options from the command line, shared by vlpcaption and
 * vlpvqa: "--method greedy|beam|nucleus" (its vlp_blip_decode_defaults;
 * beam without it), then "--beams", "--max-length", "--min-length",
 * "--length-penalty", "--top-p", "--top-k", "--temperature",
 * "--repetition-penalty", each with a value, wherever they stand. Marks
 * used[i] for every argument it read (argv[0] excluded). VLP_EINVAL names
 * a bad value. *max_length_set tells whether --max-length was given. */
int vlp_caption_decode_args(int argc, char **argv, vlp_blip_decode_options *o, bool *used,
                            bool *max_length_set);
extern const char VLP_CAPTION_DECODE_USAGE[];

#endif
