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
    int D = m.embed_dim;
    float *img = malloc(sizeof(float) * ds.n * D), *txt = malloc(sizeof(float) * ds.n * D);
    if (!img || !txt) fail(&d, "out of memory for the features");
    bool *read = malloc(sizeof(bool) * (size_t)ds.n);
    if (!read) fail(&d, "out of memory for the features");
    if (vlp_eval_embed(&m, tok, &ds, &d, batch, workers, img, txt, read)) fail(&d, vlp_error_message());
    /* from here on only the samples whose image was read: no metric counts the others */
    vlp_dataset all = ds;
    long unreadable = vlp_eval_keep_read(&ds, &all, read, img, txt, D);
    free(read);
    if (d.rank == 0 && unreadable)
        printf("%ld of %ld images unreadable: left out of every number below\n", unreadable, all.n);

    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "model", model_path);
    cJSON_AddStringToObject(out, "data", data_path);
    cJSON_AddNumberToObject(out, "samples", (double)ds.n);
    cJSON_AddNumberToObject(out, "unreadable", (double)unreadable);
    if (classes_path) {
        int n_classes, n_templates;
        char **classes = vlp_read_lines(classes_path, &n_classes);
        char **templates = templates_path ? vlp_read_lines(templates_path, &n_templates) : NULL;
        static const char *fallback[] = {VLP_DEFAULT_TEMPLATE};
        if (!templates_path) n_templates = 1;
        if (!classes || n_classes == 0) fail(&d, "no class names (one per line) in the --zeroshot file");
        if (templates_path && (!templates || n_templates == 0)) fail(&d, "no templates in the templates file");
        int *labels = malloc(sizeof(int) * ds.n);
        for (long i = 0; i < ds.n; i++) {
            labels[i] = ds.samples[i].class_id;
            if (labels[i] < 0 || labels[i] >= n_classes) {
                fprintf(stderr, "vlpeval: %s: sample %ld has class id %d, not one of the %d names in %s\n",
                        data_path, i, labels[i], n_classes, classes_path);
                vlp_dist_abort(&d, 1);
            }
        }
        cJSON *zs = cJSON_AddObjectToObject(out, "zeroshot");
        /* The prompt ensemble, and each template alone. */
        float *cls = malloc(sizeof(float) * n_classes * D);
        const char *const *tmpl = templates ? (const char *const *)templates : fallback;
        cJSON *single = cJSON_CreateArray();
        for (int k = -1; k < n_templates; k++) {
            if (vlp_eval_class_embeddings(&m, tok, (const char *const *)classes, n_classes,
                                          k < 0 ? tmpl : tmpl + k, k < 0 ? n_templates : 1, cls))
                fail(&d, vlp_error_message());
            vlp_zeroshot_result r;
            vlp_eval_zeroshot(img, labels, ds.n, cls, n_classes, D, &r);
            if (k < 0) {
                cJSON_AddNumberToObject(zs, "top1", r.top1);
                cJSON_AddNumberToObject(zs, "top5", r.top5);
                cJSON_AddNumberToObject(zs, "templates", n_templates);
                cJSON *pc = cJSON_AddObjectToObject(zs, "per_class");
                cJSON *conf = cJSON_AddArrayToObject(zs, "confusion");
                for (int c = 0; c < n_classes; c++) {
                    cJSON_AddNumberToObject(pc, classes[c], r.per_class[c]);
                    cJSON *row = cJSON_CreateArray();
                    for (int p = 0; p < n_classes; p++)
                        cJSON_AddItemToArray(row, cJSON_CreateNumber((double)r.confusion[(long)c * n_classes + p]));
                    cJSON_AddItemToArray(conf, row);
                }
                if (d.rank == 0) printf("zero-shot top-1 %.2f%%, top-5 %.2f%% (%ld images, %d classes, %d templates)\n",
                                        100 * r.top1, 100 * r.top5, ds.n, n_classes, n_templates);
            } else {
                cJSON *one = cJSON_CreateObject();
                cJSON_AddStringToObject(one, "template", tmpl[k]);
                cJSON_AddNumberToObject(one, "top1", r.top1);
                cJSON_AddItemToArray(single, one);
                if (d.rank == 0) printf("  single template %-40s top-1 %.2f%%\n", tmpl[k], 100 * r.top1);
            }
            vlp_zeroshot_result_free(&r);
        }
        cJSON_AddItemToObject(zs, "single_template", single);
        free(cls);
        free(labels);
        vlp_free_lines(classes, n_classes);
        if (templates) vlp_free_lines(templates, n_templates);
    }
    if (retrieval) {
        int *groups = NULL;
        if (!strcmp(match, "concept")) {
            groups = malloc(sizeof(int) * ds.n);
            for (long i = 0; i < ds.n; i++) {
                groups[i] = ds.samples[i].concept_id;
                if (groups[i] < 0) fail(&d, "--match concept: a sample of DATA has no concept_id");
            }
        }
        vlp_retrieval_result r;
        vlp_eval_retrieval(img, txt, groups, ds.n, D, &r);
        cJSON *rt = cJSON_AddObjectToObject(out, "retrieval");
        cJSON_AddStringToObject(rt, "match", match);
#define ADD(field) cJSON_AddNumberToObject(rt, #field, r.field)
        ADD(chance_r1), ADD(chance_r5), ADD(chance_r10);
        ADD(i2t_r1), ADD(i2t_r5), ADD(i2t_r10), ADD(i2t_mean_rank), ADD(i2t_median_rank);
        ADD(t2i_r1), ADD(t2i_r5), ADD(t2i_r10), ADD(t2i_mean_rank), ADD(t2i_median_rank);
#undef ADD
        if (d.rank == 0)
            printf("retrieval over %ld pairs (match: %s; chance R@1 %.2f%%, R@5 %.2f%%)\n"
                   "  image->text R@1 %.2f%%  R@5 %.2f%%  R@10 %.2f%%  median rank %.0f\n"
                   "  text->image R@1 %.2f%%  R@5 %.2f%%  R@10 %.2f%%  median rank %.0f\n",
                   ds.n, match, 100 * r.chance_r1, 100 * r.chance_r5, 100 * r.i2t_r1, 100 * r.i2t_r5, 100 * r.i2t_r10,
                   r.i2t_median_rank, 100 * r.t2i_r1, 100 * r.t2i_r5, 100 * r.t2i_r10, r.t2i_median_rank);
        if (rerank) {
            if (d.world > 1) fail(&d, "--rerank runs in one process");
            vlp_rerank_result rr;
            if (vlp_eval_rerank(&m, tok, &ds, img, txt, groups, rerank, workers, &rr)) fail(&d, vlp_error_message());
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
        free(groups);
    }
    if (json_path && d.rank == 0) {
        char *text = cJSON_Print(out);
        FILE *f = strcmp(json_path, "-") ? fopen(json_path, "w") : stdout;
        if (!f) fail(&d, "cannot write the --json file");
        fprintf(f, "%s\n", text);
        if (f != stdout) fclose(f);
        free(text);
    }
    cJSON_Delete(out);
    free(img), free(txt);
    vlp_eval_view_free(&ds);
    vlp_dataset_free(&all);
    vlp_tokenizer_free(tok);
    vlp_model_free(&m);
    vlp_dist_finalize(&d);
    return 0;
}
