/* The step's gradient is exact whatever the split of the global batch:
 *   under mpirun -n W: W ranks with B pairs each give the loss and the
 *     parameter gradients of one process with W B (checked on every rank
 *     against its own single-process computation);
 *   --accum K: K micro-batches of B give the gradient of one batch of K B;
 *   --no-grad-gather: the all-gather without its reduce-scatter backward
 *     must differ (so this test can fail), and the program fails if not.
 * Max relative error per tensor (max|a - b| / max|b|) must stay under 1e-5. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "train/trainer.h"

enum { B = 3, S = 8, CTX = 8, D = 8 };

static const vlp_clip_config CFG = {
    .embed_dim = D, .image_size = S, .patch_size = 4, .vision_width = 16, .vision_layers = 1,
    .vision_heads = 2, .vocab_size = 40, .context_length = CTX, .text_width = 16,
    .text_layers = 1, .text_heads = 2, .mlp_ratio = 2.0f, .act = VLP_ACTIVATION_GELU};

/* n pairs of random images and token rows (SOT, tokens, EOT, padding). */
static void make_pairs(int n, float *images, int *ids, int *groups) {
    vlp_rng rng;
    vlp_rng_init(&rng, 77);
    vlp_rng_fill_normal(&rng, images, (long)n * 3 * S * S, 0.0f, 1.0f);
    memset(ids, 0, sizeof(int) * n * CTX);
    for (int i = 0; i < n; i++) {
        int len = 1 + (int)vlp_rng_below(&rng, CTX - 2);
        ids[i * CTX] = 38;
        for (int j = 1; j <= len; j++) ids[i * CTX + j] = 1 + (int)vlp_rng_below(&rng, 36);
        ids[i * CTX + len + 1] = 39;
        groups[i] = (int)vlp_rng_below(&rng, 3); /* shared ids: extra positives */
    }
}

/* Gradient and loss of n pairs split as K micro-batches of B per rank. */
static float gradients(vlp_clip *m, const vlp_dist *d, int K, int b, float *images, int *ids,
                       const int *groups, bool gather_grad) {
    vlp_tape tp;
    vlp_tape_init(&tp);
    float *ci = malloc(sizeof(float) * K * b * D), *ct = malloc(sizeof(float) * K * b * D);
    vlp_step_batch batch = {.K = K, .B = b, .images = images, .ids = ids, .groups = groups,
                            .cache_img = ci, .cache_txt = ct};
    float loss = vlp_clip_gradients(m, &tp, d, &batch, gather_grad);
    free(ci), free(ct);
    vlp_tape_free(&tp);
    return loss;
}

/* Worst max|a - b| / max|b| over the parameter tensors. */
static double worst_error(const vlp_params *got, const vlp_params *want, const char **where) {
    double worst = 0;
    for (int i = 0; i < got->count; i++) {
        const vlp_param *e = &got->table[i];
        double err = 0, scale = 1e-30;
        for (long j = 0; j < e->t->n; j++) {
            err = fmax(err, fabs((double)got->grad[e->offset + j] - want->grad[e->offset + j]));
            scale = fmax(scale, fabs((double)want->grad[e->offset + j]));
        }
        if (err / scale > worst) worst = err / scale, *where = e->name;
    }
    return worst;
}

int main(int argc, char **argv) {
    bool broken = false, positives = false;
    int K = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-grad-gather")) broken = true;
        else if (!strcmp(argv[i], "--positives")) positives = true;
        else if (!strcmp(argv[i], "--accum") && i + 1 < argc) K = atoi(argv[++i]);
        else return fprintf(stderr, "usage: test_step_exact [--accum K] [--positives] [--no-grad-gather]\n"), 2;
    }
    vlp_dist d;
    if (vlp_dist_init(&d, &argc, &argv)) return fprintf(stderr, "%s\n", vlp_error_message()), 1;
    int W = d.world, n = W * K * B;
    float *images = malloc(sizeof(float) * n * 3 * S * S);
    int *ids = malloc(sizeof(int) * n * CTX), *groups = malloc(sizeof(int) * n);
    make_pairs(n, images, ids, groups);

    vlp_clip split, whole;
    if (vlp_clip_init(&split, &CFG, 5) || vlp_clip_init(&whole, &CFG, 5)) return 1;
    /* This rank's rows of the global batch: K micro-batches of B. */
    long first = (long)d.rank * K * B;
    float loss_split = gradients(&split, &d, K, B, images + first * 3 * S * S, ids + first * CTX,
                                 positives ? groups : NULL, !broken);
    vlp_dist alone = {.rank = 0, .world = 1, .mpi = false};
    float loss_whole = gradients(&whole, &alone, 1, n, images, ids, positives ? groups : NULL, true);

    const char *where = "";
    double grad_err = worst_error(&split.params, &whole.params, &where);
    double loss_err = fabs(loss_split - loss_whole) / fabs(loss_whole);
    bool same = grad_err <= 1e-5 && loss_err <= 1e-5;
    if (d.rank == 0 || !same)
        printf("rank %d of %d, %d x %d pairs%s%s: loss %.7f vs %.7f (error %.1e); worst gradient "
               "error %.2e in %s\n", d.rank, W, K, B, positives ? ", shared-id positives" : "",
               broken ? ", gather without gradient" : "", loss_split, loss_whole, loss_err, grad_err, where);
    int status = broken ? (grad_err > 1e-2 ? 0 : 1) : (same ? 0 : 1);
    if (status) fprintf(stderr, "rank %d: %s\n", d.rank, broken ? "the broken gather went unnoticed" : "gradients differ");
    vlp_clip_free(&split);
    vlp_clip_free(&whole);
    free(images), free(ids), free(groups);
    vlp_dist_finalize(&d);
    return status;
}
