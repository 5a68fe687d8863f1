/* vlpfilter: CapFilt (BLIP's captioner and filter) on a noisy dataset.
 *   vlpfilter MODEL DATA [-o CLEAN.tsv] [--report REPORT.tsv] [--threshold P]
 *             [--no-synthetic] [--prompt TEXT] [decoding options] [--seed N] [--batch N] [--workers N]
 * MODEL is a BLIP checkpoint or run folder; DATA a manifest or folder (a
 * shard only with --report alone: a manifest must name image files).
 * Argument parsing and writing only; the work is apps/capfilt.c. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "apps/caption.h"
#include "apps/capfilt.h"
#include "train/checkpoint.h"
#include "args.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: vlpfilter MODEL DATA [-o CLEAN.tsv] [--report REPORT.tsv] [--threshold P]\n"
            "                 [--no-synthetic] [--prompt TEXT] [decoding options] [--seed N]\n"
            "                 [--batch N] [--workers N]\n"
            "MODEL: a BLIP checkpoint (.h5) or run folder, the captioner and the filter.\n"
            "DATA: a manifest or folder of image-caption pairs (a shard: --report only).\n"
            "Every pair's caption and a synthetic caption of its image are rated by the\n"
            "ITM head; those whose match probability is >= --threshold (default 0.5, BLIP's)\n"
            "are kept. The ITM trains on one matched pair in three, so at 1/3 its evidence\n"
            "favours neither (likelihood ratio 1; scripts/recipes/capfilt.sh filters there).\n"
            "-o: the cleaned TSV manifest: kept pairs, then kept synthetic captions as extra\n"
            "rows (BLIP's union; --no-synthetic: no captioner, original pairs only); paths\n"
            "relative to its folder. --report: one TSV row per pair: its match probability,\n"
            "the synthetic caption and its probability, what was kept and why not.\n"
            "Decoding options (default nucleus sampling, as BLIP's CapFilt):\n%s",
            VLP_CAPTION_DECODE_USAGE);
}

/* target's path relative to the folder dir (both resolved), malloc'd, or NULL. */
static char *relative_to(const char *dir, const char *target) {
    char d[PATH_MAX], t[PATH_MAX], D[PATH_MAX + 1];
    if (!realpath(dir, d) || !realpath(target, t)) return NULL;
    snprintf(D, sizeof D, "%s%s", d, strcmp(d, "/") ? "/" : "");
    size_t common = 0; /* the shared leading folders, up to their last '/' */
    for (size_t i = 0; D[i] && D[i] == t[i]; i++)
        if (D[i] == '/') common = i + 1;
    int ups = 0;
    for (const char *p = D + common; *p; p++) ups += *p == '/';
    char *out = malloc((size_t)ups * 3 + strlen(t + common) + 1), *o = out;
    if (!out) return NULL;
    for (int i = 0; i < ups; i++) memcpy(o, "../", 3), o += 3;
    strcpy(o, t + common);
    return out;
}

static const char *decision(bool read, float p, float threshold) {
    if (!read) return "dropped_unreadable";
    return p >= threshold ? "kept" : "dropped_low_match";
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *data_path = NULL, *out_path = NULL, *report_path = NULL;
    const char *prompt = NULL;
    double threshold = 0.5;
    bool synthetic = true, max_length_set, has_method = false;
    int batch = 32, workers = 1;
    long seed = 0;
    /* Nucleus sampling unless --method says otherwise: BLIP's CapFilt samples. */
    for (int i = 1; i < argc; i++) has_method |= !strcmp(argv[i], "--method");
    char **args = malloc(((size_t)argc + 3) * sizeof *args);
    int n_args = 0;
    args[n_args++] = argv[0];
    if (!has_method) args[n_args++] = "--method", args[n_args++] = "nucleus";
    for (int i = 1; i < argc; i++) args[n_args++] = argv[i];
    args[n_args] = NULL;
    bool *used = calloc((size_t)n_args + 1, sizeof *used);
    vlp_blip_decode_options o;
    if (vlp_caption_decode_args(n_args, args, &o, used, &max_length_set))
        return fprintf(stderr, "vlpfilter: %s\n", vlp_error_message()), 2;
    for (int i = 1; i < n_args; i++) {
        const char *a = args[i];
        bool has = i + 1 < n_args;
        if (used[i]) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 0;
        if (!strcmp(a, "-o") && has) out_path = args[++i];
        else if (!strcmp(a, "--report") && has) report_path = args[++i];
        else if (!strcmp(a, "--prompt") && has) prompt = args[++i];
        else if (!strcmp(a, "--no-synthetic")) synthetic = false;
        else if (!strcmp(a, "--threshold") && has) {
            if (!vlp_arg_double("vlpfilter", a, args[++i], 0, 1, &threshold)) return usage(stderr), 2;
        } else if (!strcmp(a, "--seed") && has) {
            if (!vlp_arg_long("vlpfilter", a, args[++i], 0, 1000000000000000, &seed)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--batch") && has) {
            if (!vlp_arg_int("vlpfilter", a, args[++i], 1, 65536, &batch)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--workers") && has) {
            if (!vlp_arg_int("vlpfilter", a, args[++i], 1, 64, &workers)) return usage(stderr), 2;
        }
        else if (a[0] != '-' && !model_path) model_path = a;
        else if (a[0] != '-' && !data_path) data_path = a;
        else return fprintf(stderr, "vlpfilter: unexpected argument '%s'\n", a), usage(stderr), 2;
    }
    free(used);
    if (!model_path || !data_path || batch < 1 || workers < 1) return usage(stderr), 2;
    if (!out_path && !report_path)
        return fprintf(stderr, "vlpfilter: nothing to write: give -o CLEAN.tsv and/or --report REPORT.tsv\n"), 2;

    vlp_model m;
    vlp_tokenizer *tok;
    vlp_dataset ds;
    if (vlp_model_load(model_path, &m, &tok)) return fprintf(stderr, "vlpfilter: %s\n", vlp_error_message()), 1;
    if (m.kind != VLP_MODEL_BLIP)
        return fprintf(stderr, "vlpfilter: %s is a %s model: CapFilt needs a BLIP\n", model_path,
                       vlp_model_kind_name(m.kind)), 1;
    if (!prompt) prompt = m.cfg.blip.prompt;
    if (!max_length_set && o.max_length > m.context_length) o.max_length = m.context_length;
    if (vlp_dataset_open(&ds, data_path, NULL)) return fprintf(stderr, "vlpfilter: %s\n", vlp_error_message()), 1;
    if (out_path && ds.shard)
        return fprintf(stderr, "vlpfilter: %s is a shard: its images have no files for a manifest to name; "
                               "filter the manifest it was packed from, or give --report alone\n", data_path), 2;

    vlp_capfilt_options co = {.synthetic = synthetic, .prompt = prompt, .decode = o, .seed = (uint64_t)seed,
                              .batch = batch, .workers = workers, .progress = true};
    vlp_capfilt_result r;
    if (vlp_capfilt_run(&m, tok, &ds, &co, &r)) return fprintf(stderr, "vlpfilter: %s\n", vlp_error_message()), 1;

    long n = ds.n, unread = 0, kept = 0, kept_syn = 0;
    for (long i = 0; i < n; i++) {
        unread += !r.read[i];
        kept += r.read[i] && r.prob[i] >= threshold;
        kept_syn += r.read[i] && synthetic && r.synthetic_prob[i] >= threshold;
    }
    if (report_path) {
        FILE *f = fopen(report_path, "w");
        if (!f) return fprintf(stderr, "vlpfilter: cannot write %s\n", report_path), 1;
        fprintf(f, "row\timage\tcaption\tmatch_prob\tcaption_decision\tsynthetic\tsynthetic_prob\tsynthetic_decision\n");
        for (long i = 0; i < n; i++) {
            const vlp_sample *s = &ds.samples[i];
            fprintf(f, "%ld\t", i);
            if (s->path) fprintf(f, "%s\t", s->path);
            else fprintf(f, "%s#%ld\t", ds.source, i);
            fprintf(f, "%s\t%.6f\t%s\t", s->caption, r.prob[i], decision(r.read[i], r.prob[i], (float)threshold));
            if (synthetic && r.read[i])
                fprintf(f, "%s\t%.6f\t%s\n", r.synthetic[i], r.synthetic_prob[i],
                        decision(true, r.synthetic_prob[i], (float)threshold));
            else fprintf(f, "\tnan\tnone\n");
        }
        if (fclose(f)) return fprintf(stderr, "vlpfilter: cannot write %s\n", report_path), 1;
    }
    if (out_path) {
        char *dir = strdup(out_path), *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else strcpy(dir, ".");
        bool concept = true, klass = true;
        for (long i = 0; i < n; i++) concept &= ds.samples[i].concept_id >= 0, klass &= ds.samples[i].class_id >= 0;
        FILE *f = fopen(out_path, "w");
        if (!f) return fprintf(stderr, "vlpfilter: cannot write %s\n", out_path), 1;
        fprintf(f, "filepath\ttitle%s%s\tsource\n", klass ? "\tclass_id" : "", concept ? "\tconcept_id" : "");
        for (int pass = 0; pass < 2; pass++) { /* kept originals, then kept synthetic captions */
            for (long i = 0; i < n; i++) {
                const vlp_sample *s = &ds.samples[i];
                const char *text = pass ? r.synthetic[i] : s->caption;
                float p = pass ? r.synthetic_prob[i] : r.prob[i];
                if (!r.read[i] || !text || !(p >= threshold)) continue;
                char *path = relative_to(dir, s->path);
                if (!path) return fprintf(stderr, "vlpfilter: cannot resolve %s from %s\n", s->path, dir), 1;
                fprintf(f, "%s\t%s", path, text);
                if (klass) fprintf(f, "\t%d", s->class_id);
                if (concept) fprintf(f, "\t%d", s->concept_id);
                fprintf(f, "\t%s\n", pass ? "synthetic" : "original");
                free(path);
            }
        }
        if (fclose(f)) return fprintf(stderr, "vlpfilter: cannot write %s\n", out_path), 1;
        free(dir);
    }
    printf("vlpfilter: %ld pairs of %s at threshold %.3f: kept %ld captions, dropped %ld (match below "
           "the threshold) and %ld unreadable images; kept %ld synthetic captions%s\n",
           n, data_path, threshold, kept, n - unread - kept, unread, kept_syn,
           synthetic ? "" : " (--no-synthetic)");
    if (out_path) printf("vlpfilter: wrote %ld pairs to %s\n", kept + kept_syn, out_path);
    vlp_capfilt_result_free(&r);
    vlp_dataset_free(&ds);
    vlp_tokenizer_free(tok);
    vlp_model_free(&m);
    free(args);
    return 0;
}
