/* BLIP's and GroupViT's steps through the trainer's model interface
 * (train/model.h) are exact whatever the split of the global batch, as
 * test_step_exact checks for CLIP:
 *   under mpirun -n W: W ranks with B pairs each give the loss and the
 *     parameter gradients of one process with W B, checked on every rank.
 *     BLIP with [blip] negatives = global (ITC, ITM on the global batch's
 *     negatives, LM weighted by each rank's share of the scored tokens);
 *     GroupViT with its multi-label prompts, the group term and Gumbel noise.
 *   --negatives local under mpirun: ITM's negatives then come from each
 *     rank's own pairs, so W ranks must differ from one process (this test
 *     can fail); on one process local and global negatives must agree,
 *     which checks the trainer's global-batch ITM against vlp_blip_itm_loss.
 * Max relative error per tensor (max|a - b| / max|b|, see worst_error) must stay under 1e-5.
 *   usage: test_model_exact blip|groupvit [--negatives local] [--positives] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "train/model.h"

enum { B = 3, S = 8, CTX = 10, VOCAB = 40, SOT = 38, EOT = 39, K = 2, PROMPT = 3 };

static vlp_config config(int kind, int negatives) {
    vlp_config c;
    vlp_config_defaults(&c);
    c.model.kind = kind;
    c.model.embed_dim = 8, c.model.image_size = S, c.model.patch_size = 4;
    c.model.vision_width = 16, c.model.vision_layers = 1, c.model.vision_heads = 2;
    c.model.context_length = CTX, c.model.text_width = 16, c.model.text_layers = 1;
    c.model.text_heads = 2, c.model.mlp_ratio = 2.0f;
    c.blip.negatives = negatives;
    c.blip.itc_weight = 1.0f, c.blip.itm_weight = 0.7f, c.blip.lm_weight = 1.3f;
    if (kind == VLP_MODEL_GROUPVIT) {
        c.model.patch_size = 2; /* 16 patches, grouped into 4 then 2 */
        strcpy(c.groupvit.depths, "1,1,1");
        strcpy(c.groupvit.group_tokens, "4,2");
        strcpy(c.groupvit.output_groups, "4,2");
        c.groupvit.proj_hidden = 16, c.groupvit.prompts = K, c.groupvit.group_weight = 0.6f;
    }
    return c;
}

/* A row: SOT, `before` fixed tokens (a prompt), 1..n random ones, EOT, padding. */
static void token_row(vlp_rng *rng, int *row, int before) {
    memset(row, 0, sizeof(int) * CTX);
    int len = 1 + (int)vlp_rng_below(rng, CTX - 2 - before);
    row[0] = SOT;
    for (int j = 1; j <= before; j++) row[j] = 30 + j;
    for (int j = 1; j <= len; j++) row[before + j] = 1 + (int)vlp_rng_below(rng, 30);
    row[before + len + 1] = EOT;
}

typedef struct pairs {
    float *images;
    int *ids, *lm_ids, *prompt_ids, *groups;
} pairs;

static pairs make_pairs(int n) {
    pairs p = {malloc(sizeof(float) * n * 3 * S * S), malloc(sizeof(int) * n * CTX),
               malloc(sizeof(int) * n * CTX), malloc(sizeof(int) * n * K * CTX), malloc(sizeof(int) * n)};
    vlp_rng rng;
    vlp_rng_init(&rng, 77);
    vlp_rng_fill_normal(&rng, p.images, (long)n * 3 * S * S, 0.0f, 1.0f);
    for (int i = 0; i < n; i++) {
        token_row(&rng, p.ids + i * CTX, 0);
        token_row(&rng, p.lm_ids + i * CTX, PROMPT - 1);
        for (int k = 0; k < K; k++) token_row(&rng, p.prompt_ids + (i * K + k) * CTX, 0);
        p.groups[i] = (int)vlp_rng_below(&rng, n); /* some shared: extra positives */
    }
    return p;
}

/* The loss and gradient of the pairs from row `first` on, b of them here. */
static float gradients(vlp_model *m, const vlp_dist *d, const pairs *p, long first, int b,
                       const int *groups) {
    vlp_tape tp;
    vlp_tape_init(&tp);
    vlp_step_batch batch = {.K = 1, .B = b, .images = p->images + first * 3 * S * S,
                            .ids = p->ids + first * CTX, .groups = groups,
                            .lm_ids = p->lm_ids + first * CTX, .prompt_length = PROMPT,
                            .prompt_ids = p->prompt_ids + first * K * CTX};
    vlp_rng root;
    vlp_rng_init(&root, 9);
    batch.rng = vlp_rng_split(&root, 1);
    float loss = NAN;
    if (vlp_model_gradients(m, &tp, d, &batch, &loss)) fprintf(stderr, "%s\n", vlp_error_message());
    vlp_tape_free(&tp);
    return loss;
}

/* Worst max|a - b| / max|b| over the parameter tensors. Some tensors'
 * gradient is zero in exact arithmetic (a key bias under softmax, a bias
 * that a LayerNorm then removes, as GroupViT's mlp_inter.fc2.bias): theirs
 * is rounding noise, below 1e-5 of the largest gradient, and is compared
 * against that largest gradient instead. */
static double worst_error(const vlp_params *got, const vlp_params *want, const char **where) {
    double worst = 0, largest = 1e-30;
    for (size_t j = 0; j < want->n; j++) largest = fmax(largest, fabs((double)want->grad[j]));
    for (int i = 0; i < got->count; i++) {
        const vlp_param *e = &got->table[i];
        double err = 0, scale = 0;
        for (long j = 0; j < e->t->n; j++) {
            err = fmax(err, fabs((double)got->grad[e->offset + j] - want->grad[e->offset + j]));
            scale = fmax(scale, fabs((double)want->grad[e->offset + j]));
        }
        if (scale < 1e-5 * largest) scale = largest;
        if (err / scale > worst) worst = err / scale, *where = e->name;
    }
    return worst;
}

int main(int argc, char **argv) {
    int kind = -1, negatives = VLP_NEGATIVES_GLOBAL;
    bool positives = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "blip")) kind = VLP_MODEL_BLIP;
        else if (!strcmp(argv[i], "groupvit")) kind = VLP_MODEL_GROUPVIT;
        else if (!strcmp(argv[i], "--negatives") && i + 1 < argc && !strcmp(argv[i + 1], "local"))
            negatives = VLP_NEGATIVES_LOCAL, i++;
        else if (!strcmp(argv[i], "--positives")) positives = true;
        else kind = -1, i = argc;
    }
    if (kind < 0)
        return fprintf(stderr, "usage: test_model_exact blip|groupvit [--negatives local] [--positives]\n"), 2;
    vlp_dist d;
    if (vlp_dist_init(&d, &argc, &argv)) return fprintf(stderr, "%s\n", vlp_error_message()), 1;
    int W = d.world, n = W * B;
    pairs p = make_pairs(n);
    const int *groups = positives ? p.groups : NULL;

    vlp_config c = config(kind, negatives);
    vlp_model split, whole;
    if (vlp_model_init(&split, &c, VOCAB, 5) || vlp_model_init(&whole, &c, VOCAB, 5))
        return fprintf(stderr, "%s\n", vlp_error_message()), 1;
    float loss_split = gradients(&split, &d, &p, (long)d.rank * B, B, groups);
    vlp_dist alone = {.rank = 0, .world = 1, .mpi = false};
    /* On one process, the reference is the other kind of negatives. */
    vlp_config other = config(kind, W == 1 ? !negatives : negatives);
    vlp_model ref;
    if (vlp_model_init(&ref, &other, VOCAB, 5)) return 1;
    float loss_whole = gradients(W == 1 ? &ref : &whole, &alone, &p, 0, n, groups);

    const char *where = "";
    double grad_err = worst_error(split.params, (W == 1 ? &ref : &whole)->params, &where);
    double loss_err = fabs(loss_split - loss_whole) / fabs(loss_whole);
    bool same = grad_err <= 1e-5 && loss_err <= 1e-5 && isfinite(loss_split);
    bool must_differ = kind == VLP_MODEL_BLIP && negatives == VLP_NEGATIVES_LOCAL && W > 1;
    if (d.rank == 0 || same == must_differ)
        printf("%s, rank %d of %d, %d pairs each%s%s: loss %.7f vs %.7f (error %.1e); worst "
               "gradient error %.2e in %s\n", vlp_model_kind_name(kind), d.rank, W, B,
               positives ? ", shared-id positives" : "",
               kind != VLP_MODEL_BLIP ? "" : negatives == VLP_NEGATIVES_LOCAL ? ", local negatives" : ", global negatives",
               loss_split, loss_whole, loss_err, grad_err, where);
    int status = must_differ ? (grad_err > 1e-3 ? 0 : 1) : (same ? 0 : 1);
    if (status)
        fprintf(stderr, "rank %d: %s\n", d.rank, must_differ ? "local negatives went unnoticed" : "gradients differ");
    vlp_model_free(&split), vlp_model_free(&whole), vlp_model_free(&ref);
    free(p.images), free(p.ids), free(p.lm_ids), free(p.prompt_ids), free(p.groups);
    vlp_dist_finalize(&d);
    return status;
}
