/* vlpembed: embed every image of a dataset into a search index.
 *   vlpembed MODEL DATA -o INDEX.h5 [--batch N] [--workers N]
 * MODEL is a checkpoint or a run folder. Query it with vlpsearch.
 * Argument parsing only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/error.h"
#include "train/checkpoint.h"
#include "train/eval.h"
#include "train/search.h"

int main(int argc, char **argv) {
    const char *model_path = NULL, *data_path = NULL, *out = NULL;
    int batch = 256, workers = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc) workers = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !model_path) model_path = argv[i];
        else if (argv[i][0] != '-' && !data_path) data_path = argv[i];
        else model_path = NULL, i = argc;
    }
    if (!model_path || !data_path || !out || batch < 1 || workers < 1) {
        fputs("usage: vlpembed MODEL DATA -o INDEX.h5 [--batch N] [--workers N]\n", stderr);
        return 2;
    }
    vlp_dist alone = {.rank = 0, .world = 1};
    vlp_model m;
    vlp_tokenizer *tok;
    vlp_dataset ds;
    if (vlp_model_load(model_path, &m, &tok) || vlp_dataset_open(&ds, data_path, NULL)) {
        fprintf(stderr, "vlpembed: %s\n", vlp_error_message());
        return 1;
    }
    int D = m.embed_dim;
    float *img = malloc(sizeof(float) * ds.n * D), *txt = malloc(sizeof(float) * ds.n * D);
    int rc = vlp_eval_embed(&m, tok, &ds, &alone, batch, workers, img, txt);
    if (!rc) rc = vlp_index_save(out, img, ds.n, D, &ds);
    if (rc) fprintf(stderr, "vlpembed: %s\n", vlp_error_message());
    else printf("vlpembed: %ld images of %s embedded into %s (%d-d)\n", ds.n, data_path, out, D);
    free(img), free(txt);
    vlp_dataset_free(&ds);
    vlp_tokenizer_free(tok);
    vlp_model_free(&m);
    return rc ? 1 : 0;
}
