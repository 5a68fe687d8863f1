/* Captioning and visual question answering with a trained BLIP model (a
 * vlp_model of kind blip): images in, text out, through the decoder's
 * strategies (models/blip_decode.h) and the tokenizer; the images of a
 * dataset grouped with their reference captions for scoring; and the whole
 * of vlpcaption's run. Not the strategies themselves, nor the metrics
 * (caption_metrics.h), nor the command line (src/cli). */
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

/* What vlpcaption does: every image of a dataset captioned (or given its
 * nearest training image's caption), written as TSV or JSON, and scored
 * against the dataset's own captions if asked. */
typedef struct vlp_caption_run_opts {
    const char *model;   /* a BLIP checkpoint or run folder */
    const char *data;    /* a manifest, folder or shard */
    const char *out;     /* "-": TSV on stdout; a name ending in .json: JSON; else TSV */
    const char *prompt;  /* NULL: the model's [blip] prompt */
    const char *nearest; /* a training dataset: vlp_caption_nearest instead of decoding; or NULL */
    vlp_blip_decode_options decode;
    bool max_length_set; /* false: decode.max_length cut to the model's context */
    bool score;          /* BLEU-1..4 and CIDEr-D against each image's references */
    uint64_t seed;
    int batch, workers;
} vlp_caption_run_opts;

typedef struct vlp_caption_run_result {
    long images;           /* the dataset's images, read or not */
    long references;       /* its samples: every caption is a reference */
    int scored;            /* images with a caption (with score) */
    double bleu[4], cider; /* with score */
} vlp_caption_run_result;

/* Writes o->out: TSV rows (image, caption, score) after a header line, or
 * a JSON object {"model", "data", "prompt", ["metrics"], "captions"}; an
 * image that could not be read has no row. Errors name the file. */
int vlp_caption_run(const vlp_caption_run_opts *o, vlp_caption_run_result *r);

#endif
