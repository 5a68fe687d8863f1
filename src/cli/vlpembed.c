/* vlpembed: embed every image of a dataset, or every line of a text file,
 * into a search index (HDF5: /features (N, D), /captions, /paths).
 *   vlpembed MODEL DATA -o INDEX.h5 [--batch N] [--workers N]
 *   vlpembed MODEL --texts FILE -o TEXTS.h5 [--batch N]
 * MODEL is a checkpoint or a run folder (an imported one too). Query an
 * image index with vlpsearch. Argument parsing only. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/output.h"
#include "base/error.h"
#include "base/mem.h"
#include "train/checkpoint.h"
#include "eval/eval.h"
#include "apps/search.h"
#include "train/weights.h"
#include "args.h"

static const char *const VALUE_OPTIONS[] = {"-o", "--texts", "--batch", "--workers", NULL};

static int usage(void) {
    fputs("usage: vlpembed MODEL DATA -o INDEX.h5 [--batch N] [--workers N]\n"
          "       vlpembed MODEL --texts FILE -o TEXTS.h5 [--batch N]   (one embedding per non-empty line)\n",
          stderr);
    return 2;
}

/* What made an index: the model's path as given and its weights' identity. */
typedef struct maker {
    const char *path;
    char id[VLP_WEIGHTS_ID_SIZE];
} maker;

static int embed_texts(const vlp_model *m, const vlp_tokenizer *tok, const maker *by, const char *file,
                       const char *out, int batch) {
    int n;
    char **lines = vlp_read_lines(file, &n);
    if (!lines) return VLP_EIO; /* its message names the file */
    if (n == 0) {
        vlp_free_lines(lines, n);
        return vlp_error_set(VLP_EFORMAT, "%s: no text (every line is empty)", file);
    }
    float *features = vlp_malloc(sizeof(float) * (size_t)n * m->embed_dim);
    int rc = vlp_eval_embed_texts(m, tok, (const char *const *)lines, n, batch, features);
    if (!rc) rc = vlp_index_save_texts(out, features, n, m->embed_dim, (const char *const *)lines, file, by->path,
                                        by->id);
    if (!rc) printf("vlpembed: %d texts of %s embedded into %s (%d-d)\n", n, file, out, m->embed_dim);
    free(features);
    vlp_free_lines(lines, n);
    return rc;
}

static int embed_images(const vlp_model *m, const vlp_tokenizer *tok, const maker *by, const char *data,
                        const char *out, int batch, int workers) {
    vlp_dist alone = {.rank = 0, .world = 1};
    vlp_dataset ds;
    int rc = vlp_dataset_open(&ds, data, NULL);
    if (rc) return rc;
    int D = m->embed_dim;
    float *img = vlp_malloc(sizeof(float) * ds.n * D), *txt = vlp_malloc(sizeof(float) * ds.n * D);
    bool *read = vlp_malloc(sizeof(bool) * (size_t)ds.n);
    rc = vlp_eval_embed(m, tok, &ds, &alone, batch, workers, img, txt, read);
    if (!rc) {
        vlp_dataset view; /* the images that were read: no row for the others */
        long unreadable = vlp_eval_keep_read(&view, &ds, read, img, txt, D);
        rc = vlp_index_save(out, img, view.n, D, &view, unreadable, by->path, by->id);
        if (!rc) printf("vlpembed: %ld images of %s embedded into %s (%d-d), %ld unreadable skipped\n", view.n, data,
                        out, D, unreadable);
        vlp_eval_view_free(&view);
    }
    free(img), free(txt), free(read);
    vlp_dataset_free(&ds);
    return rc;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *data_path = NULL, *texts = NULL, *out = NULL;
    int batch = 256, workers = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "-o") && has) out = argv[++i];
        else if (!strcmp(a, "--texts") && has) texts = argv[++i];
        else if (!strcmp(a, "--batch") && has) {
            if (!vlp_arg_int("vlpembed", a, argv[++i], 1, 65536, &batch)) return usage();
        } else if (!strcmp(a, "--workers") && has) {
            if (!vlp_arg_int("vlpembed", a, argv[++i], 1, 64, &workers)) return usage();
        } else if (a[0] != '-' && !model_path) model_path = a;
        else if (a[0] != '-' && !data_path) data_path = a;
        else return vlp_arg_reject("vlpembed", a, VALUE_OPTIONS), usage();
    }
    if (!model_path || !out || !data_path == !texts) return usage();
    const char *inputs[] = {model_path, data_path, texts};
    if (vlp_output_check("-o", out, inputs, 3)) return fprintf(stderr, "vlpembed: %s\n", vlp_error_message()), 2;
    vlp_output_remove_stale_tmp(out); /* the index is written through OUT.tmp */
    vlp_model m;
    vlp_tokenizer *tok;
    if (vlp_model_load(model_path, &m, &tok)) {
        fprintf(stderr, "vlpembed: %s\n", vlp_error_message());
        return 1;
    }
    maker by = {.path = model_path};
    vlp_weights_identity(m.params, by.id);
    int rc = texts ? embed_texts(&m, tok, &by, texts, out, batch)
                   : embed_images(&m, tok, &by, data_path, out, batch, workers);
    if (rc) fprintf(stderr, "vlpembed: %s\n", vlp_error_message());
    vlp_tokenizer_free(tok);
    vlp_model_free(&m);
    return rc ? 1 : 0;
}
