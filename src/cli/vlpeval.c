/* vlpeval: what a trained model (CLIP; BLIP's ITC features; GroupViT) does
 * on data it was not trained on.
 *   vlpeval MODEL DATA [--zeroshot CLASSNAMES [TEMPLATES]] [--retrieval [--match concept]]
 *           [--rerank K] [--json OUT] [--batch N] [--workers N]
 * MODEL is a checkpoint or a run folder; DATA a manifest, folder or shard.
 * Zero-shot uses DATA's class ids (or class folders); retrieval matches
 * image i with caption i, or with any caption of its concept; --rerank K
 * (BLIP, one process) also re-ranks ITC's top K with ITM. Runs under
 * mpirun with the data sharded. Argument parsing and printing only; the
 * work is apps/evaluation.c. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/output.h"
#include "apps/evaluation.h"
#include "args.h"

static const char *const VALUE_OPTIONS[] = {"--zeroshot", "--match", "--rerank", "--json", "--batch", "--workers",
                                             NULL};

static void usage(FILE *f) {
    fputs("usage: vlpeval MODEL DATA [--zeroshot CLASSNAMES [TEMPLATES]] [--retrieval [--match concept]]\n"
          "               [--rerank K] [--json OUT] [--batch N] [--workers N]\n"
          "MODEL: a checkpoint (.h5), a run folder or its model.h5; DATA: a manifest, folder or packed shard.\n"
          "CLASSNAMES and TEMPLATES: one per line; templates hold {} for the class name\n"
          "(default: \"" VLP_DEFAULT_TEMPLATE "\"). --json - prints the JSON on stdout.\n"
          "--rerank K: a BLIP's retrieval also with ITC's top K re-scored by ITC + ITM.\n",
          f);
}

static void fail(const vlp_dist *d, const char *what) {
    fprintf(stderr, "vlpeval: %s\n", what);
    vlp_dist_abort(d, 1);
}

#define NUM(obj, key) cJSON_GetObjectItem(obj, key)->valuedouble

static void print_scores(const vlp_evaluation *e, const char *match) {
    const vlp_eval_features *f = &e->features;
    if (f->unreadable)
        printf("%ld of %ld images unreadable: left out of every number below\n", f->unreadable, e->data.n);
    cJSON *zs = cJSON_GetObjectItem(e->scores, "zeroshot"), *rt = cJSON_GetObjectItem(e->scores, "retrieval"), *one;
    if (zs) {
        printf("zero-shot top-1 %.2f%%, top-5 %.2f%% (%ld images, %d classes, %.0f templates)\n", 100 * NUM(zs, "top1"),
               100 * NUM(zs, "top5"), f->view.n, e->n_classes, NUM(zs, "templates"));
        cJSON_ArrayForEach(one, cJSON_GetObjectItem(zs, "single_template"))
            printf("  single template %-40s top-1 %.2f%%\n", cJSON_GetObjectItem(one, "template")->valuestring,
                   100 * NUM(one, "top1"));
    }
    if (rt)
        printf("retrieval over %ld pairs (match: %s; chance R@1 %.2f%%, R@5 %.2f%%)\n"
               "  image->text R@1 %.2f%%  R@5 %.2f%%  R@10 %.2f%%  median rank %.0f\n"
               "  text->image R@1 %.2f%%  R@5 %.2f%%  R@10 %.2f%%  median rank %.0f\n",
               f->view.n, match, 100 * NUM(rt, "chance_r1"), 100 * NUM(rt, "chance_r5"), 100 * NUM(rt, "i2t_r1"),
               100 * NUM(rt, "i2t_r5"), 100 * NUM(rt, "i2t_r10"), NUM(rt, "i2t_median_rank"), 100 * NUM(rt, "t2i_r1"),
               100 * NUM(rt, "t2i_r5"), 100 * NUM(rt, "t2i_r10"), NUM(rt, "t2i_median_rank"));
}

static void print_rerank(const vlp_rerank_result *rr) {
    printf("re-ranked by ITC + ITM (top %d)\n"
           "  image->text R@1 %.2f%%  R@5 %.2f%%  R@10 %.2f%%\n"
           "  text->image R@1 %.2f%%  R@5 %.2f%%  R@10 %.2f%%\n",
           rr->k, 100 * rr->i2t_r1, 100 * rr->i2t_r5, 100 * rr->i2t_r10, 100 * rr->t2i_r1, 100 * rr->t2i_r5,
           100 * rr->t2i_r10);
}

int main(int argc, char **argv) {
    vlp_evaluation_opts o = {.batch = 256, .workers = 1};
    const char *json_path = NULL, *match = "pair";
    bool retrieval = false;
    int rerank = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 0;
        if (!strcmp(a, "--zeroshot") && has) {
            o.classes = argv[++i];
            if (i + 1 < argc && argv[i + 1][0] != '-') o.templates = argv[++i];
        } else if (!strcmp(a, "--retrieval")) retrieval = true;
        else if (!strcmp(a, "--match") && has) match = argv[++i];
        else if (!strcmp(a, "--rerank") && has) {
            if (!vlp_arg_int("vlpeval", a, argv[++i], 0, 1000000, &rerank)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--json") && has) json_path = argv[++i];
        else if (!strcmp(a, "--batch") && has) {
            if (!vlp_arg_int("vlpeval", a, argv[++i], 1, 65536, &o.batch)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--workers") && has) {
            if (!vlp_arg_int("vlpeval", a, argv[++i], 1, 64, &o.workers)) return usage(stderr), 2;
        }
        else if (a[0] != '-' && !o.model) o.model = a;
        else if (a[0] != '-' && !o.data) o.data = a;
        else return vlp_arg_reject("vlpeval", a, VALUE_OPTIONS), usage(stderr), 2;
    }
    if (!o.model || !o.data || (!o.classes && !retrieval) || (rerank && !retrieval) ||
        (strcmp(match, "pair") && strcmp(match, "concept")))
        return usage(stderr), 2;
    const char *inputs[] = {o.model, o.data, o.classes, o.templates};
    if (vlp_output_check("--json", json_path, inputs, 4))
        return fprintf(stderr, "vlpeval: %s\n", vlp_error_message()), 2;
    o.retrieval = !retrieval ? VLP_RETRIEVAL_NONE : strcmp(match, "concept") ? VLP_RETRIEVAL_PAIR
                                                                             : VLP_RETRIEVAL_CONCEPT;
    vlp_dist d;
    if (vlp_dist_init(&d, &argc, &argv)) return fprintf(stderr, "vlpeval: %s\n", vlp_error_message()), 1;
    vlp_evaluation e;
    if (vlp_evaluation_run(&o, &d, &e)) fail(&d, vlp_error_message());
    if (d.rank == 0) print_scores(&e, match);
    if (rerank) { /* after the scores: a model that cannot re-rank fails with them printed */
        if (vlp_evaluation_rerank(&e, &d, rerank, o.workers)) fail(&d, vlp_error_message());
        print_rerank(&e.rerank);
    }
    if (json_path && d.rank == 0) {
        char *text = cJSON_Print(e.scores);
        FILE *jf = strcmp(json_path, "-") ? fopen(json_path, "w") : stdout;
        char why[4200];
        snprintf(why, sizeof why, "--json %s: cannot write: %s", json_path, strerror(errno));
        if (!jf) fail(&d, why);
        fprintf(jf, "%s\n", text);
        if (jf != stdout) fclose(jf);
        free(text);
    }
    vlp_evaluation_free(&e);
    vlp_dist_finalize(&d);
    return 0;
}
