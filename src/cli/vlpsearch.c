/* vlpsearch: find images by text or by image in an index from vlpembed.
 *   vlpsearch MODEL INDEX.h5 (--text "QUERY" | --image FILE) [-k K] [--html OUT.html]
 * MODEL: the CLIP, BLIP (its ITC features) or GroupViT that built the index.
 * Prints the top K with their cosine scores; --html writes a gallery page
 * with the images inline. Argument parsing and printing only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/output.h"
#include "base/mem.h"
#include "train/checkpoint.h"
#include "train/model.h"
#include "apps/search.h"
#include "args.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *index_path = NULL, *text = NULL, *image = NULL, *html = NULL;
    int k = 10;
    static const char *const value_options[] = {"--text", "--image", "--html", "-k", NULL};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--text") && i + 1 < argc) text = argv[++i];
        else if (!strcmp(argv[i], "--image") && i + 1 < argc) image = argv[++i];
        else if (!strcmp(argv[i], "--html") && i + 1 < argc) html = argv[++i];
        else if (!strcmp(argv[i], "-k") && i + 1 < argc) {
            if (!vlp_arg_int("vlpsearch", argv[i], argv[i + 1], 1, 1000000, &k)) model_path = NULL, i = argc;
            i++;
        }
        else if (argv[i][0] != '-' && !model_path) model_path = argv[i];
        else if (argv[i][0] != '-' && !index_path) index_path = argv[i];
        else vlp_arg_reject("vlpsearch", argv[i], value_options), model_path = NULL, i = argc;
    }
    if (!model_path || !index_path || !text == !image || k < 1) {
        fputs("usage: vlpsearch MODEL INDEX.h5 (--text \"QUERY\" | --image FILE) [-k K] [--html OUT.html]\n", stderr);
        return 2;
    }
    const char *inputs[] = {model_path, index_path, image};
    if (vlp_output_check("--html", html, inputs, 3)) return fprintf(stderr, "vlpsearch: %s\n", vlp_error_message()), 2;
    double start = now();
    vlp_model m;
    vlp_tokenizer *tok;
    vlp_index ix;
    if (vlp_model_load(model_path, &m, &tok) || vlp_index_load(&ix, index_path)) {
        fprintf(stderr, "vlpsearch: %s\n", vlp_error_message());
        return 1;
    }
    if (vlp_index_check_model(&ix, index_path, &m, model_path)) {
        fprintf(stderr, "vlpsearch: %s\n", vlp_error_message());
        return 1;
    }
    float *q = vlp_malloc(sizeof(float) * m.embed_dim);
    if (vlp_search_query(&m, tok, text, image, q)) {
        fprintf(stderr, "vlpsearch: %s\n", vlp_error_message());
        return 1;
    }
    if (k > ix.n) k = (int)ix.n;
    long *rows = vlp_malloc(sizeof(long) * k);
    float *scores = vlp_malloc(sizeof(float) * k);
    if (vlp_index_top(&ix, q, k, rows, scores)) {
        fprintf(stderr, "vlpsearch: %s: %s\n", text ? text : image, vlp_error_message());
        return 1;
    }
    double took = now() - start;
    printf("top %d of %ld for %s \"%s\" (%.3f s, model and index loading included)\n", k, ix.n,
           text ? "text" : "image", text ? text : image, took);
    for (int j = 0; j < k; j++)
        printf("%3d. %.4f  %s%s%s\n", j + 1, scores[j], ix.captions[rows[j]], ix.paths[rows[j]][0] ? "  <- " : "", ix.paths[rows[j]]);
    int rc = html ? vlp_index_gallery(&ix, text ? text : image, rows, scores, k, html) : VLP_OK;
    if (rc)
        fprintf(stderr, "vlpsearch: %s\n", vlp_error_message());
    else if (html) printf("wrote %s\n", html);
    free(rows), free(scores), free(q);
    vlp_index_free(&ix);
    vlp_tokenizer_free(tok);
    vlp_model_free(&m);
    return rc ? 1 : 0;
}
