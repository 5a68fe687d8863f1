/* BLIP captioning and VQA from images to text (see caption.h). */
#include "apps/caption.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/error.h"
#include "base/mem.h"
#include "data/loader.h"
#include "data/strtab.h"
#include "eval/caption_metrics.h"
#include "eval/eval.h"
#include "eval/eval_blip.h"
#include "train/checkpoint.h"

/* s as one line of text, allocated: every byte that does not start a valid
 * UTF-8 character replaced by U+FFFD (a byte-level BPE can stop
 * mid-character), control characters (tabs, newlines) by spaces. */
static char *valid_utf8(const char *s, size_t n) {
    char *out = vlp_malloc(3 * n + 1), *o = out;
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k == 1 && ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)) {
            *o++ = ' ', i++;
        } else if (k > 0) {
            memcpy(o, s + i, (size_t)k), o += k, i += (size_t)k;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3), o += 3, i++;
        }
    }
    *o = 0;
    return out;
}

int vlp_caption_generate(const vlp_model *m, const vlp_tokenizer *tok, float *images, int B,
                         const char *prompt, const vlp_blip_decode_options *o, vlp_rng *rng,
                         char **out, float *scores) {
    if (m->kind != VLP_MODEL_BLIP)
        return vlp_error_set(VLP_EINVAL, "captions need a BLIP model, not %s",
                             vlp_model_kind_name(m->kind));
    const vlp_blip *blip = &m->blip;
    int S = blip->cfg.image_size, ctx = blip->cfg.context_length, T = o->max_length;
    int vocab = vlp_tokenizer_vocab_size(tok), n_prompt = 0;
    int *prompt_ids = vlp_malloc((size_t)ctx * sizeof *prompt_ids), *ids = NULL, *lengths = NULL;
    vlp_tape t;
    vlp_tape_init(&t);
    int rc = VLP_OK;
    if (prompt && prompt[0]) {
        rc = vlp_tokenizer_tokens(tok, prompt, prompt_ids, ctx, &n_prompt);
        if (!rc && n_prompt > ctx)
            rc = vlp_error_set(VLP_EINVAL, "the prompt '%s' has %d tokens, more than the context "
                                           "of %d", prompt, n_prompt, ctx);
        if (rc) goto out;
    }
    if (T > ctx) { /* vlp_blip_generate's refusal, before B * T ids are allocated */
        rc = vlp_error_set(VLP_EINVAL, "generate: max_length %d must exceed [DEC] + the prompt's "
                                       "%d tokens and fit the context of %d", T, n_prompt, ctx);
        goto out;
    }
    ids = vlp_malloc((size_t)B * T * sizeof *ids), lengths = vlp_malloc((size_t)B * sizeof *lengths);
    vlp_blip_decode_options od = *o;
    od.end_token_id = vlp_tokenizer_eot(tok);
    vlp_tape_no_grad_begin(&t);
    vlp_tensor *x = vlp_tape_wrap(&t, images, 4, (int[]){B, 3, S, S});
    vlp_tensor *embeds = vlp_blip_encode_image(blip, &t, x);
    vlp_tape_no_grad_end(&t);
    rc = vlp_blip_generate(blip, embeds, prompt_ids, n_prompt, &od, rng, ids, lengths, scores);
    for (int b = 0; b < B && !rc; b++) {
        int *row = ids + (size_t)b * T, n = 0;
        for (int i = 0; i < lengths[b]; i++) /* [ENC], [DEC]: not the tokenizer's */
            if (row[i] < vocab) row[n++] = row[i];
        size_t len = 0;
        char probe[1], *bytes = NULL;
        rc = vlp_tokenizer_decode(tok, row, n, probe, sizeof probe, &len);
        if (!rc) {
            bytes = vlp_malloc(len + 1);
            rc = vlp_tokenizer_decode(tok, row, n, bytes, len + 1, NULL);
        }
        out[b] = rc ? NULL : valid_utf8(bytes, len);
        free(bytes);
    }
out:
    vlp_tape_free(&t);
    free(prompt_ids), free(ids), free(lengths);
    return rc;
}

int vlp_caption_images_group(vlp_caption_images *g, const vlp_dataset *ds) {
    memset(g, 0, sizeof *g);
    long n = ds->n;
    int *image_of = vlp_malloc((size_t)(n + 1) * sizeof *image_of);  /* sample -> image */
    int *path_image = vlp_malloc((size_t)(n + 1) * sizeof *path_image); /* interned path -> image */
    int *count = vlp_calloc((size_t)n + 2, sizeof *count);
    g->view = *ds;
    g->view.samples = vlp_malloc((size_t)(n + 1) * sizeof *g->view.samples);
    g->ref_start = vlp_calloc((size_t)n + 2, sizeof *g->ref_start);
    g->refs = vlp_malloc((size_t)(n + 1) * sizeof *g->refs);
    vlp_strtab paths = {0};
    int rc = VLP_OK, images = 0;
    for (long i = 0; i < n && !rc; i++) {
        const vlp_sample *s = &ds->samples[i];
        int seen = s->path ? vlp_strtab_find(&paths, s->path, strlen(s->path)) : -1;
        if (seen >= 0) {
            image_of[i] = path_image[seen];
        } else {
            int id;
            if (s->path && (rc = vlp_strtab_intern(&paths, s->path, strlen(s->path), &id))) break;
            if (s->path) path_image[id] = images;
            g->view.samples[images] = *s;
            image_of[i] = images++;
        }
        count[image_of[i]]++;
    }
    vlp_strtab_free(&paths);
    if (!rc) {
        g->view.n = images;
        for (int k = 0; k < images; k++) g->ref_start[k + 1] = g->ref_start[k] + count[k];
        memset(count, 0, (size_t)(images + 1) * sizeof *count);
        for (long i = 0; i < n; i++) {
            int k = image_of[i];
            g->refs[g->ref_start[k] + count[k]++] = ds->samples[i].caption;
        }
    }
    free(image_of), free(path_image), free(count);
    if (rc) vlp_caption_images_free(g);
    return rc;
}

void vlp_caption_images_free(vlp_caption_images *g) {
    free(g->view.samples);
    free(g->ref_start);
    free(g->refs);
    memset(g, 0, sizeof *g);
}

int vlp_caption_dataset(const vlp_model *m, const vlp_tokenizer *tok, const vlp_dataset *ds,
                        const char *prompt, const vlp_blip_decode_options *o, uint64_t seed,
                        int batch, int workers, char **captions, float *scores) {
    vlp_loader_opts lo = vlp_model_eval_loader(m, batch, workers);
    vlp_loader *l;
    int rc = vlp_loader_open(&l, ds, &lo, 0, 0);
    if (rc) return rc;
    for (long i = 0; i < ds->n; i++) captions[i] = NULL;
    char **out = vlp_malloc((size_t)batch * sizeof *out);
    float *sc = vlp_malloc((size_t)batch * sizeof *sc);
    vlp_rng root, rng;
    vlp_rng_init(&root, seed);
    rng = vlp_rng_split(&root, VLP_RNG_STREAM_SAMPLE);
    long steps = vlp_loader_steps_per_epoch(l);
    for (long s = 0; s < steps && !rc; s++) {
        vlp_batch *b;
        if ((rc = vlp_loader_next(l, &b)) || b->n == 0) continue;
        rc = vlp_caption_generate(m, tok, b->images, b->n, prompt, o, &rng, out, sc);
        for (int j = 0; j < b->n && !rc; j++) {
            captions[b->index[j]] = out[j];
            if (scores) scores[b->index[j]] = sc[j];
        }
    }
    free(out), free(sc);
    vlp_loader_close(l);
    return rc;
}

int vlp_caption_nearest(const vlp_model *m, const vlp_tokenizer *tok, const vlp_dataset *ds, const char *train_path,
                        int batch, int workers, char **captions, float *scores) {
    vlp_dataset train;
    int rc = vlp_dataset_open(&train, train_path, NULL);
    if (rc) return rc;
    vlp_dist one = {.rank = 0, .world = 1, .mpi = false};
    long n = ds->n;
    int D = m->embed_dim;
    float *img = vlp_malloc(sizeof(float) * (size_t)(n * D + 1)), *txt = vlp_malloc(sizeof(float) * (size_t)(n * D + 1));
    float *timg = vlp_malloc(sizeof(float) * (size_t)(train.n * D + 1));
    float *ttxt = vlp_malloc(sizeof(float) * (size_t)(train.n * D + 1));
    long *best = vlp_malloc(sizeof(long) * (size_t)(n + 1));
    bool *read = vlp_malloc(sizeof(bool) * (size_t)(n + 1)), *tread = vlp_malloc(sizeof(bool) * (size_t)(train.n + 1));
    rc = vlp_eval_embed(m, tok, ds, &one, batch, workers, img, txt, read);
    if (!rc) rc = vlp_eval_embed(m, tok, &train, &one, batch, workers, timg, ttxt, tread);
    if (!rc) {
        /* only training images that were read can lend their caption; an
         * image to caption that was not read gets none (and no score) */
        vlp_dataset seen;
        vlp_eval_keep_read(&seen, &train, tread, timg, ttxt, D);
        if (seen.n) vlp_eval_nearest(img, n, timg, seen.n, D, best);
        for (long i = 0; i < n; i++) {
            if (!read[i] || seen.n == 0) continue;
            captions[i] = vlp_strdup(seen.samples[best[i]].caption);
            scores[i] = 0;
            for (int c = 0; c < D; c++) scores[i] += img[i * D + c] * timg[best[i] * D + c];
        }
        vlp_eval_view_free(&seen);
    }
    free(img), free(txt), free(timg), free(ttxt), free(best), free(read), free(tread);
    vlp_dataset_free(&train);
    return rc;
}

/* ---- vlpcaption's run ------------------------------------------------------ */

/* Image i's name: its file, or the dataset and sample number for a shard. */
static void image_name(const vlp_dataset *view, long i, char *buf, size_t size) {
    if (view->samples[i].path) snprintf(buf, size, "%s", view->samples[i].path);
    else snprintf(buf, size, "%s#%ld", view->source, i);
}

/* The captioned images against their references. */
static int score(const vlp_caption_images *g, char *const *captions, long n_refs, vlp_caption_run_result *r) {
    long n = g->view.n;
    const char **cands = vlp_malloc((size_t)n * sizeof *cands);
    const char **refs = vlp_malloc((size_t)n_refs * sizeof *refs);
    int *start = vlp_malloc((size_t)(n + 1) * sizeof *start), k = 0;
    start[0] = 0;
    for (long i = 0; i < n; i++) {
        if (!captions[i]) continue;
        cands[r->scored] = captions[i];
        for (int j = g->ref_start[i]; j < g->ref_start[i + 1]; j++) refs[k++] = g->refs[j];
        start[++r->scored] = k;
    }
    vlp_caption_corpus c = {r->scored, cands, refs, start};
    int rc = vlp_caption_bleu(&c, r->bleu);
    if (!rc) rc = vlp_caption_cider_d(&c, &r->cider, NULL);
    free(cands), free(refs), free(start);
    return rc;
}

static void write_json(FILE *f, const vlp_caption_run_opts *o, const char *prompt, const vlp_dataset *view,
                       char *const *captions, const float *scores, const vlp_caption_run_result *r) {
    char name[4096];
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", o->model);
    cJSON_AddStringToObject(root, "data", o->data);
    cJSON_AddStringToObject(root, "prompt", prompt);
    if (o->score) {
        cJSON *metrics = cJSON_AddObjectToObject(root, "metrics");
        cJSON_AddNumberToObject(metrics, "images", r->scored);
        static const char *const names[] = {"bleu1", "bleu2", "bleu3", "bleu4"};
        for (int k = 0; k < 4; k++) cJSON_AddNumberToObject(metrics, names[k], r->bleu[k]);
        cJSON_AddNumberToObject(metrics, "cider_d", r->cider);
    }
    cJSON *list = cJSON_AddArrayToObject(root, "captions");
    for (long i = 0; i < view->n; i++) {
        if (!captions[i]) continue;
        cJSON *item = cJSON_CreateObject();
        image_name(view, i, name, sizeof name);
        cJSON_AddStringToObject(item, "image", name);
        cJSON_AddStringToObject(item, "caption", captions[i]);
        cJSON_AddNumberToObject(item, "score", scores[i]);
        cJSON_AddItemToArray(list, item);
    }
    char *text = cJSON_Print(root);
    fprintf(f, "%s\n", text);
    free(text);
    cJSON_Delete(root);
}

static void write_tsv(FILE *f, const vlp_dataset *view, char *const *captions, const float *scores) {
    char name[4096];
    fprintf(f, "image\tcaption\tscore\n");
    for (long i = 0; i < view->n; i++) {
        if (!captions[i]) continue;
        image_name(view, i, name, sizeof name);
        fprintf(f, "%s\t%s\t%.6f\n", name, captions[i], scores[i]);
    }
}

int vlp_caption_run(const vlp_caption_run_opts *o, vlp_caption_run_result *r) {
    memset(r, 0, sizeof *r);
    vlp_model m;
    vlp_tokenizer *tok;
    int rc = vlp_model_load(o->model, &m, &tok);
    if (rc) return rc;
    const char *prompt = o->prompt ? o->prompt : m.cfg.blip.prompt;
    vlp_blip_decode_options decode = o->decode;
    if (!o->max_length_set && decode.max_length > m.context_length) decode.max_length = m.context_length;
    vlp_dataset ds;
    vlp_caption_images g = {0};
    char **captions = NULL;
    float *scores = NULL;
    long n = 0;
    if ((rc = vlp_dataset_open(&ds, o->data, NULL))) goto free_model;
    if ((rc = vlp_caption_images_group(&g, &ds))) goto free_data;
    n = r->images = g.view.n;
    r->references = ds.n;
    captions = vlp_calloc((size_t)n + 1, sizeof *captions);
    scores = vlp_calloc((size_t)n + 1, sizeof *scores);
    if (o->nearest) /* the captions of the nearest training images by ITC */
        rc = vlp_caption_nearest(&m, tok, &g.view, o->nearest, o->batch, o->workers, captions, scores);
    else
        rc = vlp_caption_dataset(&m, tok, &g.view, prompt, &decode, o->seed, o->batch, o->workers, captions,
                                 scores);
    if (!rc && o->score) rc = score(&g, captions, ds.n, r);
    if (rc) goto out;
    FILE *f = strcmp(o->out, "-") ? fopen(o->out, "w") : stdout;
    if (!f) {
        rc = vlp_error_set(VLP_EIO, "cannot write %s", o->out);
        goto out;
    }
    size_t len = strlen(o->out);
    if (len >= 5 && !strcmp(o->out + len - 5, ".json")) write_json(f, o, prompt, &g.view, captions, scores, r);
    else write_tsv(f, &g.view, captions, scores);
    if (f != stdout && fclose(f)) rc = vlp_error_set(VLP_EIO, "cannot write %s", o->out);
out:
    for (long i = 0; i < n; i++) free(captions[i]);
    free(captions), free(scores);
    vlp_caption_images_free(&g);
free_data:
    vlp_dataset_free(&ds);
free_model:
    vlp_tokenizer_free(tok);
    vlp_model_free(&m);
    return rc;
}
