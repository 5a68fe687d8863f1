/* vlpeval: what a trained model (CLIP; BLIP's ITC features; GroupViT) does
 * on data it was not trained on.
 *   vlpeval MODEL DATA [--zeroshot CLASSNAMES [TEMPLATES]] [--retrieval [--match concept]]
 *           [--rerank K] [--json OUT] [--batch N] [--workers N]
 * MODEL is a checkpoint or a run folder; DATA a manifest, folder or shard.
 * Zero-shot uses DATA's class ids (or class folders); retrieval matches
 * image i with caption i, or with any caption of its concept; --rerank K
 * (BLIP, one process) also re-ranks ITC's top K with ITM. Runs under
 * mpirun with the data sharded. Argument parsing and printing only. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/error.h"
#include "train/checkpoint.h"
#include "eval/eval.h"
#include "eval/eval_blip.h"
#include "args.h"

static void usage(FILE *f) {
    fputs("usage: vlpeval MODEL DATA [--zeroshot CLASSNAMES [TEMPLATES]] [--retrieval [--match concept]]\n"
          "               [--rerank K] [--json OUT] [--batch N] [--workers N]\n"
          "MODEL: a checkpoint (.h5) or a run folder; DATA: a manifest, folder or packed shard.\n"
          "CLASSNAMES and TEMPLATES: one per line; templates hold {} for the class name\n"
          "(default: \"" VLP_DEFAULT_TEMPLATE "\"). --json - prints the JSON on stdout.\n"
          "--rerank K: a BLIP's retrieval also with ITC's top K re-scored by ITC + ITM.\n",
          f);
}

static void fail(const vlp_dist *d, const char *what) {
    fprintf(stderr, "vlpeval: %s\n", what);
    vlp_dist_abort(d, 1);
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *data_path = NULL, *classes_path = NULL, *templates_path = NULL;
    const char *json_path = NULL, *match = "pair";
    bool retrieval = false;
    int batch = 256, workers = 1, rerank = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 0;
        if (!strcmp(a, "--zeroshot") && has) {
            classes_path = argv[++i];
            if (i + 1 < argc && argv[i + 1][0] != '-') templates_path = argv[++i];
        } else if (!strcmp(a, "--retrieval")) retrieval = true;
        else if (!strcmp(a, "--match") && has) match = argv[++i];
        else if (!strcmp(a, "--rerank") && has) {
            if (!vlp_arg_int("vlpeval", a, argv[++i], 0, 1000000, &rerank)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--json") && has) json_path = argv[++i];
        else if (!strcmp(a, "--batch") && has) {
            if (!vlp_arg_int("vlpeval", a, argv[++i], 1, 65536, &batch)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--workers") && has) {
            if (!vlp_arg_int("vlpeval", a, argv[++i], 1, 64, &workers)) return usage(stderr), 2;
        }
        else if (a[0] != '-' && !model_path) model_path = a;
        else if (a[0] != '-' && !data_path) data_path = a;
        else return fprintf(stderr, "vlpeval: unexpected argument '%s'\n", a), usage(stderr), 2;
    }
    if (!model_path || !data_path || batch < 1 || workers < 1 || (!classes_path && !retrieval) ||
        rerank < 0 || (rerank && !retrieval) ||
        (strcmp(match, "pair") && strcmp(match, "concept")))
        return usage(stderr), 2;

    vlp_dist d;
    if (vlp_dist_init(&d, &argc, &argv)) return fprintf(stderr, "vlpeval: %s\n", vlp_error_message()), 1;
    vlp_model m;
    vlp_tokenizer *tok;
    vlp_dataset ds;
    if (vlp_model_load(model_path, &m, &tok) || vlp_dataset_open(&ds, data_path, NULL))
        fail(&d, vlp_error_message());
    int n_classes = 0, n_templates = 0;
    char **classes = classes_path ? vlp_read_lines(classes_path, &n_classes) : NULL;
    char **templates = templates_path ? vlp_read_lines(templates_path, &n_templates) : NULL;
    if (classes_path && (!classes || n_classes == 0)) fail(&d, "no class names (one per line) in the --zeroshot file");
    if (templates_path && (!templates || n_templates == 0)) fail(&d, "no templates in the templates file");
    vlp_eval_request q = {.classes = (const char *const *)classes, .n_classes = n_classes,
                          .templates = (const char *const *)templates, .n_templates = n_templates,
                          .each_template = true, .details = true, .batch = batch, .workers = workers,
                          .retrieval = !retrieval ? VLP_RETRIEVAL_NONE
                                       : strcmp(match, "concept") ? VLP_RETRIEVAL_PAIR : VLP_RETRIEVAL_CONCEPT};
    cJSON *out;
    vlp_eval_features f;
    if (vlp_eval_dataset(&m, tok, &ds, &d, &q, &out, &f)) fail(&d, vlp_error_message());
    cJSON_AddStringToObject(out, "model", model_path);
    cJSON_AddStringToObject(out, "data", data_path);
    if (d.rank == 0 && f.unreadable)
        printf("%ld of %ld images unreadable: left out of every number below\n", f.unreadable, ds.n);
    cJSON *zs = cJSON_GetObjectItem(out, "zeroshot"), *rt = cJSON_GetObjectItem(out, "retrieval"), *one;
#define NUM(obj, key) cJSON_GetObjectItem(obj, key)->valuedouble
    if (zs && d.rank == 0) {
        printf("zero-shot top-1 %.2f%%, top-5 %.2f%% (%ld images, %d classes, %.0f templates)\n", 100 * NUM(zs, "top1"),
               100 * NUM(zs, "top5"), f.view.n, n_classes, NUM(zs, "templates"));
        cJSON_ArrayForEach(one, cJSON_GetObjectItem(zs, "single_template"))
            printf("  single template %-40s top-1 %.2f%%\n", cJSON_GetObjectItem(one, "template")->valuestring,
                   100 * NUM(one, "top1"));
    }
    if (rt && d.rank == 0)
        printf("retrieval over %ld pairs (match: %s; chance R@1 %.2f%%, R@5 %.2f%%)\n"
               "  image->text R@1 %.2f%%  R@5 %.2f%%  R@10 %.2f%%  median rank %.0f\n"
               "  text->image R@1 %.2f%%  R@5 %.2f%%  R@10 %.2f%%  median rank %.0f\n",
               f.view.n, match, 100 * NUM(rt, "chance_r1"), 100 * NUM(rt, "chance_r5"), 100 * NUM(rt, "i2t_r1"),
               100 * NUM(rt, "i2t_r5"), 100 * NUM(rt, "i2t_r10"), NUM(rt, "i2t_median_rank"), 100 * NUM(rt, "t2i_r1"),
               100 * NUM(rt, "t2i_r5"), 100 * NUM(rt, "t2i_r10"), NUM(rt, "t2i_median_rank"));
#undef NUM
    if (rerank) {
        if (d.world > 1) fail(&d, "--rerank runs in one process");
        vlp_rerank_result rr;
        if (vlp_eval_rerank(&m, tok, &f.view, f.img, f.txt, f.groups, rerank, workers, &rr)) fail(&d, vlp_error_message());
        cJSON *re = cJSON_AddObjectToObject(rt, "rerank");
        cJSON_AddNumberToObject(re, "k", rr.k);
#define ADD(field) cJSON_AddNumberToObject(re, #field, rr.field)
        ADD(i2t_r1), ADD(i2t_r5), ADD(i2t_r10), ADD(t2i_r1), ADD(t2i_r5), ADD(t2i_r10);
#undef ADD
        printf("re-ranked by ITC + ITM (top %d)\n"
               "  image->text R@1 %.2f%%  R@5 %.2f%%  R@10 %.2f%%\n"
               "  text->image R@1 %.2f%%  R@5 %.2f%%  R@10 %.2f%%\n",
               rr.k, 100 * rr.i2t_r1, 100 * rr.i2t_r5, 100 * rr.i2t_r10, 100 * rr.t2i_r1, 100 * rr.t2i_r5,
               100 * rr.t2i_r10);
    }
    if (json_path && d.rank == 0) {
        char *text = cJSON_Print(out);
        FILE *jf = strcmp(json_path, "-") ? fopen(json_path, "w") : stdout;
        if (!jf) fail(&d, "cannot write the --json file");
        fprintf(jf, "%s\n", text);
        if (jf != stdout) fclose(jf);
        free(text);
    }
    cJSON_Delete(out);
    vlp_eval_features_free(&f);
    if (classes) vlp_free_lines(classes, n_classes);
    if (templates) vlp_free_lines(templates, n_templates);
    vlp_dataset_free(&ds);
    vlp_tokenizer_free(tok);
    vlp_model_free(&m);
    vlp_dist_finalize(&d);
    return 0;
}
