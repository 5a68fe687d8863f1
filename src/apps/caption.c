/* BLIP captioning and VQA from images to text (see caption.h). */
#include "apps/caption.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/error.h"
#include "data/loader.h"
#include "data/strtab.h"
#include "eval/eval.h"
#include "eval/eval_blip.h"

/* s as one line of text, malloc'd: every byte that does not start a valid
 * UTF-8 character replaced by U+FFFD (a byte-level BPE can stop
 * mid-character), control characters (tabs, newlines) by spaces. */
static char *valid_utf8(const char *s, size_t n) {
    char *out = malloc(3 * n + 1), *o = out;
    if (!out) return NULL;
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
    int *prompt_ids = malloc((size_t)ctx * sizeof *prompt_ids);
    int *ids = malloc((size_t)B * T * sizeof *ids), *lengths = malloc((size_t)B * sizeof *lengths);
    vlp_tape t;
    vlp_tape_init(&t);
    int rc = VLP_OK;
    if (!prompt_ids || !ids || !lengths) {
        rc = vlp_error_set(VLP_ENOMEM, "captions: out of memory");
        goto out;
    }
    if (prompt && prompt[0]) {
        rc = vlp_tokenizer_tokens(tok, prompt, prompt_ids, ctx, &n_prompt);
        if (!rc && n_prompt > ctx)
            rc = vlp_error_set(VLP_EINVAL, "the prompt '%s' has %d tokens, more than the context "
                                           "of %d", prompt, n_prompt, ctx);
        if (rc) goto out;
    }
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
        if (!rc && !(bytes = malloc(len + 1))) rc = vlp_error_set(VLP_ENOMEM, "captions: out of memory");
        if (!rc) rc = vlp_tokenizer_decode(tok, row, n, bytes, len + 1, NULL);
        out[b] = rc ? NULL : valid_utf8(bytes, len);
        if (!rc && !out[b]) rc = vlp_error_set(VLP_ENOMEM, "captions: out of memory");
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
    int *image_of = malloc((size_t)(n + 1) * sizeof *image_of);  /* sample -> image */
    int *path_image = malloc((size_t)(n + 1) * sizeof *path_image); /* interned path -> image */
    int *count = calloc((size_t)n + 2, sizeof *count);
    g->view = *ds;
    g->view.samples = malloc((size_t)(n + 1) * sizeof *g->view.samples);
    g->ref_start = calloc((size_t)n + 2, sizeof *g->ref_start);
    g->refs = malloc((size_t)(n + 1) * sizeof *g->refs);
    vlp_strtab paths = {0};
    int rc = VLP_OK, images = 0;
    if (!image_of || !path_image || !count || !g->view.samples || !g->ref_start || !g->refs)
        rc = vlp_error_set(VLP_ENOMEM, "captions: out of memory for %ld samples", n);
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
    char **out = malloc((size_t)batch * sizeof *out);
    float *sc = malloc((size_t)batch * sizeof *sc);
    if (!out || !sc) rc = vlp_error_set(VLP_ENOMEM, "captions: out of memory");
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

const char VLP_CAPTION_DECODE_USAGE[] =
    "  --method greedy|beam|nucleus   decoding (default beam: 3 beams, as BLIP)\n"
    "  --beams N  --length-penalty F  beam search: score / length^F\n"
    "  --top-p F  --top-k N  --temperature F   nucleus sampling (0.9, 50, 1; top-k 0: none)\n"
    "  --repetition-penalty F         1: none (nucleus default 1.1)\n"
    "  --max-length N  --min-length N tokens, [DEC] and the prompt included (20, 5)\n";

static int number(const char *flag, const char *value, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    *out = strtod(value, &end);
    if (errno || end == value || *end || !(*out >= lo && *out <= hi))
        return vlp_error_set(VLP_EINVAL, "%s %s: not a number in [%g, %g]", flag, value, lo, hi);
    return VLP_OK;
}

int vlp_caption_decode_args(int argc, char **argv, vlp_blip_decode_options *o, bool *used,
                            bool *max_length_set) {
    static const char *const methods[] = {"greedy", "beam", "nucleus"};
    int method = VLP_BLIP_DECODE_BEAM, rc;
    *max_length_set = false;
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--method")) continue;
        for (method = 0; method < 3 && strcmp(argv[i + 1], methods[method]); method++) {}
        if (method == 3)
            return vlp_error_set(VLP_EINVAL, "--method %s: greedy, beam or nucleus", argv[i + 1]);
        used[i] = used[i + 1] = true;
    }
    *o = vlp_blip_decode_defaults(method, 0);
    for (int i = 1; i + 1 < argc; i++) {
        const char *flag = argv[i], *value = argv[i + 1];
        double x;
#define FLAG(name, lo, hi, field, type)                              \
    if (!strcmp(flag, name)) {                                        \
        if ((rc = number(flag, value, lo, hi, &x))) return rc;        \
        o->field = (type)x;                                           \
        used[i] = used[i + 1] = true;                                 \
        i++;                                                          \
        continue;                                                     \
    }
        FLAG("--beams", 1, VLP_BLIP_MAX_BEAMS, num_beams, int)
        FLAG("--max-length", 2, 1e6, max_length, int)
        FLAG("--min-length", 0, 1e6, min_length, int)
        FLAG("--length-penalty", -100, 100, length_penalty, float)
        FLAG("--top-p", 1e-9, 1, top_p, float)
        FLAG("--top-k", 0, 1e9, top_k, int)
        FLAG("--temperature", 1e-6, 1e6, temperature, float)
        FLAG("--repetition-penalty", 1e-6, 1e6, repetition_penalty, float)
#undef FLAG
        if (!strcmp(flag, "--method")) i++;
    }
    for (int i = 1; i + 1 < argc; i++)
        if (used[i] && !strcmp(argv[i], "--max-length")) *max_length_set = true;
    return VLP_OK;
}

int vlp_caption_nearest(const vlp_model *m, const vlp_tokenizer *tok, const vlp_dataset *ds, const char *train_path,
                        int batch, int workers, char **captions, float *scores) {
    vlp_dataset train;
    int rc = vlp_dataset_open(&train, train_path, NULL);
    if (rc) return rc;
    vlp_dist one = {.rank = 0, .world = 1, .mpi = false};
    long n = ds->n;
    int D = m->embed_dim;
    float *img = malloc(sizeof(float) * (size_t)(n * D + 1)), *txt = malloc(sizeof(float) * (size_t)(n * D + 1));
    float *timg = malloc(sizeof(float) * (size_t)(train.n * D + 1)), *ttxt = malloc(sizeof(float) * (size_t)(train.n * D + 1));
    long *best = malloc(sizeof(long) * (size_t)(n + 1));
    bool *read = malloc(sizeof(bool) * (size_t)(n + 1)), *tread = malloc(sizeof(bool) * (size_t)(train.n + 1));
    if (!img || !txt || !timg || !ttxt || !best || !read || !tread)
        rc = vlp_error_set(VLP_ENOMEM, "out of memory for the features of %ld and %ld images", n, train.n);
    if (!rc) rc = vlp_eval_embed(m, tok, ds, &one, batch, workers, img, txt, read);
    if (!rc) rc = vlp_eval_embed(m, tok, &train, &one, batch, workers, timg, ttxt, tread);
    if (!rc) {
        /* only training images that were read can lend their caption; an
         * image to caption that was not read gets none (and no score) */
        vlp_dataset seen;
        vlp_eval_keep_read(&seen, &train, tread, timg, ttxt, D);
        if (seen.n) vlp_eval_nearest(img, n, timg, seen.n, D, best);
        for (long i = 0; i < n; i++) {
            if (!read[i] || seen.n == 0) continue;
            captions[i] = strdup(seen.samples[best[i]].caption);
            scores[i] = 0;
            for (int c = 0; c < D; c++) scores[i] += img[i * D + c] * timg[best[i] * D + c];
        }
        vlp_eval_view_free(&seen);
    }
    free(img), free(txt), free(timg), free(ttxt), free(best), free(read), free(tread);
    vlp_dataset_free(&train);
    return rc;
}
