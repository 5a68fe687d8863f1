/* BLIP's captioner and filter over a dataset (see capfilt.h). */
#include "apps/capfilt.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "data/loader.h"
#include "apps/caption.h"
#include "train/checkpoint.h"
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
    r->read = vlp_calloc((size_t)n + 1, sizeof *r->read);
    r->prob = vlp_malloc(((size_t)n + 1) * sizeof *r->prob);
    r->synthetic_prob = vlp_malloc(((size_t)n + 1) * sizeof *r->synthetic_prob);
    r->synthetic = vlp_calloc((size_t)n + 1, sizeof *r->synthetic);
    const char **texts = vlp_malloc((size_t)o->batch * sizeof *texts);
    char **generated = vlp_calloc((size_t)o->batch, sizeof *generated);
    float *probs = vlp_malloc((size_t)o->batch * sizeof *probs);
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

/* ---- vlpfilter's run -------------------------------------------------------- */

/* target's path relative to the folder dir (both resolved), allocated, or NULL. */
static char *relative_to(const char *dir, const char *target) {
    char d[PATH_MAX], t[PATH_MAX], D[PATH_MAX + 1];
    if (!realpath(dir, d) || !realpath(target, t)) return NULL;
    snprintf(D, sizeof D, "%s%s", d, strcmp(d, "/") ? "/" : "");
    size_t common = 0; /* the shared leading folders, up to their last '/' */
    for (size_t i = 0; D[i] && D[i] == t[i]; i++)
        if (D[i] == '/') common = i + 1;
    int ups = 0;
    for (const char *p = D + common; *p; p++) ups += *p == '/';
    char *out = vlp_malloc((size_t)ups * 3 + strlen(t + common) + 1), *o = out;
    for (int i = 0; i < ups; i++) memcpy(o, "../", 3), o += 3;
    strcpy(o, t + common);
    return out;
}

static const char *decision(bool read, float p, float threshold) {
    if (!read) return "dropped_unreadable";
    return p >= threshold ? "kept" : "dropped_low_match";
}

static int write_report(const vlp_capfilt_clean_opts *o, const vlp_dataset *ds, const vlp_capfilt_result *r) {
    FILE *f = fopen(o->report, "w");
    if (!f) return vlp_error_set(VLP_EIO, "cannot write %s", o->report);
    fprintf(f, "row\timage\tcaption\tmatch_prob\tcaption_decision\tsynthetic\tsynthetic_prob\tsynthetic_decision\n");
    for (long i = 0; i < ds->n; i++) {
        const vlp_sample *s = &ds->samples[i];
        fprintf(f, "%ld\t", i);
        if (s->path) fprintf(f, "%s\t", s->path);
        else fprintf(f, "%s#%ld\t", ds->source, i);
        fprintf(f, "%s\t%.6f\t%s\t", s->caption, r->prob[i], decision(r->read[i], r->prob[i], (float)o->threshold));
        if (o->synthetic && r->read[i])
            fprintf(f, "%s\t%.6f\t%s\n", r->synthetic[i], r->synthetic_prob[i],
                    decision(true, r->synthetic_prob[i], (float)o->threshold));
        else fprintf(f, "\tnan\tnone\n");
    }
    if (fclose(f)) return vlp_error_set(VLP_EIO, "cannot write %s", o->report);
    return VLP_OK;
}

/* The kept originals, then the kept synthetic captions, paths relative to
 * the manifest's folder. */
static int write_manifest(const vlp_capfilt_clean_opts *o, const vlp_dataset *ds, const vlp_capfilt_result *r) {
    char *dir = vlp_strdup(o->out), *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else strcpy(dir, ".");
    bool concept = true, klass = true;
    for (long i = 0; i < ds->n; i++) concept &= ds->samples[i].concept_id >= 0, klass &= ds->samples[i].class_id >= 0;
    int rc = VLP_OK;
    FILE *f = fopen(o->out, "w");
    if (!f) {
        rc = vlp_error_set(VLP_EIO, "cannot write %s", o->out);
        goto out;
    }
    fprintf(f, "filepath\ttitle%s%s\tsource\n", klass ? "\tclass_id" : "", concept ? "\tconcept_id" : "");
    for (int pass = 0; pass < 2 && !rc; pass++) {
        for (long i = 0; i < ds->n && !rc; i++) {
            const vlp_sample *s = &ds->samples[i];
            const char *text = pass ? r->synthetic[i] : s->caption;
            float p = pass ? r->synthetic_prob[i] : r->prob[i];
            if (!r->read[i] || !text || !(p >= o->threshold)) continue;
            char *path = relative_to(dir, s->path);
            if (!path) {
                rc = vlp_error_set(VLP_EIO, "cannot resolve %s from %s", s->path, dir);
                break;
            }
            fprintf(f, "%s\t%s", path, text);
            if (klass) fprintf(f, "\t%d", s->class_id);
            if (concept) fprintf(f, "\t%d", s->concept_id);
            fprintf(f, "\t%s\n", pass ? "synthetic" : "original");
            free(path);
        }
    }
    if (fclose(f) && !rc) rc = vlp_error_set(VLP_EIO, "cannot write %s", o->out);
out:
    free(dir);
    return rc;
}

int vlp_capfilt_clean(const vlp_capfilt_clean_opts *o, vlp_capfilt_clean_result *r) {
    memset(r, 0, sizeof *r);
    vlp_model m;
    vlp_tokenizer *tok;
    vlp_dataset ds;
    vlp_capfilt_result cr = {0};
    int rc = vlp_model_load(o->model, &m, &tok);
    if (rc) return rc;
    if (m.kind != VLP_MODEL_BLIP) {
        rc = vlp_error_set(VLP_EINVAL, "%s is a %s model: CapFilt needs a BLIP", o->model,
                           vlp_model_kind_name(m.kind));
        goto free_model;
    }
    vlp_capfilt_options co = {.synthetic = o->synthetic, .prompt = o->prompt ? o->prompt : m.cfg.blip.prompt,
                              .decode = o->decode, .seed = o->seed, .batch = o->batch, .workers = o->workers,
                              .progress = true};
    if (!o->max_length_set && co.decode.max_length > m.context_length) co.decode.max_length = m.context_length;
    if ((rc = vlp_dataset_open(&ds, o->data, NULL))) goto free_model;
    if (o->out && ds.shard) {
        r->refused = true;
        rc = vlp_error_set(VLP_EINVAL, "%s is a shard: its images have no files for a manifest to name; "
                                       "filter the manifest it was packed from, or give --report alone", o->data);
        goto out;
    }
    if ((rc = vlp_capfilt_run(&m, tok, &ds, &co, &cr))) goto out;
    r->n = ds.n;
    for (long i = 0; i < ds.n; i++) {
        r->unreadable += !cr.read[i];
        r->kept += cr.read[i] && cr.prob[i] >= o->threshold;
        r->kept_synthetic += cr.read[i] && o->synthetic && cr.synthetic_prob[i] >= o->threshold;
    }
    if (o->report) rc = write_report(o, &ds, &cr);
    if (!rc && o->out) rc = write_manifest(o, &ds, &cr);
    vlp_capfilt_result_free(&cr);
out:
    vlp_dataset_free(&ds);
free_model:
    vlp_tokenizer_free(tok);
    vlp_model_free(&m);
    return rc;
}
