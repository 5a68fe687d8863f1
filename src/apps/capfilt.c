/* BLIP's captioner and filter over a dataset (see capfilt.h). */
#include "apps/capfilt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "data/loader.h"
#include "apps/caption.h"
#include "train/progress.h"

int vlp_capfilt_match(const vlp_model *m, const vlp_tokenizer *tok, vlp_tensor *image_embeds,
                      const char *const *texts, int B, float *prob) {
    if (m->kind != VLP_MODEL_BLIP)
        return vlp_error_set(VLP_EINVAL, "CapFilt needs a BLIP model, not %s", vlp_model_kind_name(m->kind));
    int T = m->context_length, rc = VLP_OK;
    vlp_tape t;
    vlp_tape_init(&t);
    vlp_tape_no_grad_begin(&t);
    int *ids = vlp_tape_alloc(&t, (size_t)B * T * sizeof *ids);
    int *lengths = vlp_tape_alloc(&t, (size_t)B * sizeof *lengths);
    for (int b = 0; b < B && !rc; b++)
        rc = vlp_tokenizer_encode(tok, texts[b], ids + (size_t)b * T, T, &lengths[b]);
    if (!rc) {
        vlp_tensor *logits = vlp_blip_itm_logits(&m->blip, &t, image_embeds, ids, lengths);
        for (int b = 0; b < B; b++) /* softmax over (no, yes), as a logistic */
            prob[b] = (float)(1.0 / (1.0 + exp((double)logits->data[2 * b] - logits->data[2 * b + 1])));
    }
    vlp_tape_no_grad_end(&t);
    vlp_tape_free(&t);
    return rc;
}

void vlp_capfilt_result_free(vlp_capfilt_result *r) {
    if (r->synthetic)
        for (long i = 0; i < r->n; i++) free(r->synthetic[i]);
    free(r->read), free(r->prob), free(r->synthetic_prob), free(r->synthetic);
    memset(r, 0, sizeof *r);
}

int vlp_capfilt_run(const vlp_model *m, const vlp_tokenizer *tok, const vlp_dataset *ds,
                    const vlp_capfilt_options *o, vlp_capfilt_result *r) {
    memset(r, 0, sizeof *r);
    if (m->kind != VLP_MODEL_BLIP)
        return vlp_error_set(VLP_EINVAL, "CapFilt needs a BLIP model, not %s", vlp_model_kind_name(m->kind));
    if (o->batch < 1 || o->workers < 1)
        return vlp_error_set(VLP_EINVAL, "CapFilt: batch %d and workers %d must be >= 1", o->batch, o->workers);
    long n = ds->n;
    r->n = n;
    r->read = calloc((size_t)n + 1, sizeof *r->read);
    r->prob = malloc(((size_t)n + 1) * sizeof *r->prob);
    r->synthetic_prob = malloc(((size_t)n + 1) * sizeof *r->synthetic_prob);
    r->synthetic = calloc((size_t)n + 1, sizeof *r->synthetic);
    const char **texts = malloc((size_t)o->batch * sizeof *texts);
    char **generated = calloc((size_t)o->batch, sizeof *generated);
    float *probs = malloc((size_t)o->batch * sizeof *probs);
    if (!r->read || !r->prob || !r->synthetic_prob || !r->synthetic || !texts || !generated || !probs) {
        free(texts), free(generated), free(probs);
        vlp_capfilt_result_free(r);
        return vlp_error_set(VLP_ENOMEM, "CapFilt: out of memory for %ld samples", n);
    }
    for (long i = 0; i < n; i++) r->prob[i] = r->synthetic_prob[i] = NAN;

    vlp_loader_opts lo = vlp_model_eval_loader(m, o->batch, o->workers);
    vlp_loader *l = NULL;
    int rc = vlp_loader_open(&l, ds, &lo, 0, 0);
    vlp_rng root, rng;
    vlp_rng_init(&root, o->seed);
    rng = vlp_rng_split(&root, VLP_RNG_STREAM_SAMPLE);
    long steps = rc ? 0 : vlp_loader_steps_per_epoch(l), done = 0;
    vlp_progress p;
    if (o->progress) vlp_progress_init(&p, stderr, steps, o->batch, "images", 0);
    vlp_tape t;
    vlp_tape_init(&t);
    int S = m->image_size;
    for (long s = 0; s < steps && !rc; s++) {
        vlp_batch *b;
        if ((rc = vlp_loader_next(l, &b)) || b->n == 0) continue;
        vlp_tape_reset(&t);
        vlp_tape_no_grad_begin(&t);
        vlp_tensor *embeds = vlp_blip_encode_image(&m->blip, &t, vlp_tape_wrap(&t, b->images, 4, (int[]){b->n, 3, S, S}));
        vlp_tape_no_grad_end(&t);
        for (int j = 0; j < b->n; j++) texts[j] = ds->samples[b->index[j]].caption;
        rc = vlp_capfilt_match(m, tok, embeds, texts, b->n, probs);
        for (int j = 0; j < b->n && !rc; j++) r->read[b->index[j]] = true, r->prob[b->index[j]] = probs[j];
        if (!rc && o->synthetic) {
            rc = vlp_caption_generate(m, tok, b->images, b->n, o->prompt, &o->decode, &rng, generated, NULL);
            if (!rc) rc = vlp_capfilt_match(m, tok, embeds, (const char *const *)generated, b->n, probs);
            for (int j = 0; j < b->n; j++) { /* the result owns them from here, even on error */
                r->synthetic[b->index[j]] = generated[j], generated[j] = NULL;
                if (!rc) r->synthetic_prob[b->index[j]] = probs[j];
            }
        }
        done += b->n;
        if (o->progress) vlp_progress_update(&p, s + 1, "%ld of %ld pairs", done, n);
    }
    vlp_tape_free(&t);
    if (l) vlp_loader_close(l);
    free(texts), free(generated), free(probs);
    if (rc) vlp_capfilt_result_free(r);
    return rc;
}
