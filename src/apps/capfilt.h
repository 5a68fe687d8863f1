/* CapFilt (BLIP, Li et al. 2022, section 3.3) on a trained BLIP: for every
 * pair of a noisy dataset, the filter's image-text matching (ITM) head
 * rates the pair's own caption, and the captioner writes a synthetic
 * caption for the image that the filter rates too; the pairs whose match
 * probability reaches a threshold are kept. One model serves as captioner
 * and filter. Also vlpfilter's run, which writes the cleaned manifest and
 * the report. Not the fine-tuning that makes a good filter (vlptrain), nor
 * the command line (src/cli). */
#ifndef VLP_CAPFILT_H
#define VLP_CAPFILT_H

#include <stdbool.h>
#include <stdint.h>

#include "data/dataset.h"
#include "data/tokenizer.h"
#include "models/blip_decode.h"
#include "train/model.h"

typedef struct vlp_capfilt_options {
    bool synthetic;                 /* caption each image (the captioner); false: filter only */
    const char *prompt;             /* the captioner's prompt ("" or NULL: none) */
    vlp_blip_decode_options decode; /* BLIP's CapFilt samples: nucleus */
    uint64_t seed;                  /* nucleus sampling's draws */
    int batch, workers;             /* images per pass, decoding threads */
    bool progress;                  /* a progress line on stderr */
} vlp_capfilt_options;

/* Per sample i of the dataset: read[i] false for an image that could not
 * be read (the loader warns; its other fields are then NaN and NULL).
 * prob[i] is ITM's match probability softmax(logits)[1] of (image i,
 * caption i); synthetic[i] (malloc'd; NULL without options.synthetic) the
 * captioner's caption of image i and synthetic_prob[i] its probability. */
typedef struct vlp_capfilt_result {
    long n;
    bool *read;
    float *prob, *synthetic_prob;
    char **synthetic;
} vlp_capfilt_result;

/* Rates every sample of ds in order (centre crops, no augmentation).
 * Deterministic for a given seed: batches come in dataset order. */
int vlp_capfilt_run(const vlp_model *m, const vlp_tokenizer *tok, const vlp_dataset *ds,
                    const vlp_capfilt_options *o, vlp_capfilt_result *r);
void vlp_capfilt_result_free(vlp_capfilt_result *r);

/* ITM's match probabilities (B) of texts (B strings) with image tokens
 * (B, Ti, vision_width), without gradient: each text encoded as the
 * tokenizer does (cut to the context, the end token last). */
int vlp_capfilt_match(const vlp_model *m, const vlp_tokenizer *tok, vlp_tensor *image_embeds,
                      const char *const *texts, int B, float *prob);

/* What vlpfilter does: CapFilt on a dataset, its decisions written as a
 * cleaned manifest and/or a report. */
typedef struct vlp_capfilt_clean_opts {
    const char *model;   /* a BLIP checkpoint or run folder: the captioner and the filter */
    const char *data;    /* a manifest or folder (a shard: report only) */
    const char *out;     /* the cleaned TSV manifest, or NULL */
    const char *report;  /* the TSV report, one row per pair, or NULL */
    double threshold;    /* a caption is kept when its match probability is >= this */
    bool synthetic;      /* caption each image too (BLIP's union); false: originals only */
    const char *prompt;  /* the captioner's; NULL: the model's [blip] prompt */
    vlp_blip_decode_options decode;
    bool max_length_set; /* false: decode.max_length cut to the model's context */
    uint64_t seed;
    int batch, workers;
} vlp_capfilt_clean_opts;

typedef struct vlp_capfilt_clean_result {
    long n, kept, kept_synthetic, unreadable; /* pairs; kept captions of each kind; unreadable images */
    bool refused; /* with an error: the request does not fit the data (a manifest asked of a shard) */
} vlp_capfilt_clean_result;

/* Rates every pair of o->data (vlp_capfilt_run, with a progress line on
 * stderr), then writes o->report (row, image, caption, match_prob,
 * caption_decision, synthetic, synthetic_prob, synthetic_decision) and
 * o->out (filepath relative to its folder, title, [class_id], [concept_id],
 * source: the kept pairs, then the kept synthetic captions). Errors name
 * the file. */
int vlp_capfilt_clean(const vlp_capfilt_clean_opts *o, vlp_capfilt_clean_result *r);

#endif
