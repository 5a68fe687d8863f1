/* BLIP against the PyTorch reference (scripts/blip_ref.py): the same
 * weights, inputs and ITM negatives must give the same image tokens,
 * features, ITM logits and the three losses (to 1e-5), and every
 * parameter's gradient of each loss (to 1e-4), errors being
 * max|vlp - torch| / max|torch| per tensor (for gradients, over at least
 * 1e-3). ITC is checked plain and with momentum distillation, and one
 * momentum update too. The golden file defaults to the committed
 * tests/golden/blip.h5; VLP_BLIP_GOLDEN points at a fresh one. Also:
 * finite-difference checks of each loss over a tiny model and of the
 * attention blocks alone, the hard-negative sampler's distribution, and
 * the momentum model's copy and queue. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "autograd/gradcheck.h"
#include "golden_blip.h"
#include "models/blip.h"
#include "testutil.h"
#include "train/weights.h"

/* ---- parity with PyTorch ---------------------------------------------------- */

#define MAXN (1 << 20)
static float want[MAXN];
/* Gradient errors are relative to at least this: every key bias has an
 * exact gradient of 0 (softmax ignores a shift common to all keys), and
 * both sides hold rounding noise near 1e-8 there. */
#define GRAD_FLOOR 1e-3

/* ITC plain and with momentum distillation, each with and without image
 * ids; ITM; LM (the golden file's N_LOSSES); and, for finite differences
 * only, ITC + ITM + LM on one tape, as training sums them over shared
 * image tokens. */
enum loss_kind { LOSS_ITC, LOSS_ITC_GROUPED, LOSS_ITC_M, LOSS_ITC_M_GROUPED, LOSS_ITM, LOSS_LM,
                 LOSS_ALL };
static const char *const loss_names[] = {"itc", "itc_grouped", "itc_m", "itc_m_grouped",
                                         "itm", "lm", "itc + itm + lm"};
#define N_LOSSES 6

typedef struct golden {
    vlp_blip m;
    vlp_blip_momentum mm;
    int B, prompt_length;
    float alpha;
    float images[1 << 14];
    int text[1024], lengths[64], image_ids[64], neg_image[64], neg_text[64];
} golden;

/* The tensors a loss computes on the way, for comparison (NULL if not). */
typedef struct seen {
    vlp_tensor *embeds, *img, *txt, *img_m, *txt_m, *itm_logits;
} seen;

/* One loss from the inputs up, on a reset tape. */
static vlp_tensor *golden_loss(golden *g, vlp_tape *t, enum loss_kind kind, seen *o) {
    int S = g->m.cfg.image_size;
    vlp_tensor *images = vlp_tape_wrap(t, g->images, 4, (int[]){g->B, 3, S, S});
    o->embeds = vlp_blip_encode_image(&g->m, t, images);
    switch (kind) {
    case LOSS_ITC:
    case LOSS_ITC_GROUPED:
        o->img = vlp_blip_image_features(&g->m, t, o->embeds);
        o->txt = vlp_blip_text_features(&g->m, t, g->text, g->lengths, g->B);
        return vlp_blip_itc_loss(&g->m, t, o->img, o->txt, o->img, o->txt, 0,
                                 kind == LOSS_ITC_GROUPED ? g->image_ids : NULL);
    case LOSS_ITC_M:
    case LOSS_ITC_M_GROUPED:
        o->img = vlp_blip_image_features(&g->m, t, o->embeds);
        o->txt = vlp_blip_text_features(&g->m, t, g->text, g->lengths, g->B);
        vlp_blip_momentum_features(&g->mm, t, images, g->text, g->lengths, &o->img_m, &o->txt_m);
        return vlp_blip_itc_loss_momentum(&g->m, &g->mm, t, o->img, o->txt, o->img_m, o->txt_m,
                                          kind == LOSS_ITC_M_GROUPED ? g->image_ids : NULL,
                                          g->alpha);
    case LOSS_ITM:
        return vlp_blip_itm_loss(&g->m, t, o->embeds, g->text, g->lengths, g->neg_image,
                                 g->neg_text, &o->itm_logits);
    case LOSS_LM:
        return vlp_blip_lm_loss(&g->m, t, o->embeds, g->text, g->lengths, g->prompt_length);
    case LOSS_ALL:
        break; /* not in the golden file */
    }
    return NULL;
}

/* Compares `got` with the golden dataset `name`, if got was computed. */
static double compare_output(hid_t f, const char *name, const vlp_tensor *got) {
    if (!got) return 0.0;
    char path[256];
    snprintf(path, sizeof path, "outputs/%s", name);
    long n = read_array(f, path, H5T_NATIVE_FLOAT, want, MAXN);
    ck_assert_int_eq(n, got->n);
    return expect_match(name, got->data, want, n, 1e-5);
}

START_TEST(test_golden) {
    char path[4096];
    const char *env = getenv("VLP_BLIP_GOLDEN");
    snprintf(path, sizeof path, "%s", env ? env : VLP_SOURCE_DIR "/tests/golden/blip.h5");
    printf("golden %s\n", path);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot open %s (run scripts/blip_ref.py golden)", path);
    static golden g;
    g.B = (int)attr_number(f, "batch");
    g.prompt_length = (int)attr_number(f, "prompt_length");
    g.alpha = (float)attr_number(f, "alpha");
    golden_blip(f, path, &g.m, 99);
    int Q = (int)attr_number(f, "queue_size");
    ck_assert_int_eq(vlp_blip_momentum_init(&g.mm, &g.m, Q, 98), VLP_OK);
    int rc = vlp_weights_read(f, path, "/momentum", &g.mm.params, g.mm.params.data);
    ck_assert_msg(rc == VLP_OK, "%s", vlp_error_message());
    read_array(f, "inputs/idx_queue", H5T_NATIVE_INT, g.mm.idx_queue, Q);
    long n = read_array(f, "inputs/images", H5T_NATIVE_FLOAT, g.images, 1 << 14);
    ck_assert_int_eq(n, (long)g.B * 3 * g.m.cfg.image_size * g.m.cfg.image_size);
    read_array(f, "inputs/text", H5T_NATIVE_INT, g.text, 1024);
    read_array(f, "inputs/lengths", H5T_NATIVE_INT, g.lengths, 64);
    read_array(f, "inputs/image_ids", H5T_NATIVE_INT, g.image_ids, 64);
    read_array(f, "inputs/neg_image", H5T_NATIVE_INT, g.neg_image, 64);
    read_array(f, "inputs/neg_text", H5T_NATIVE_INT, g.neg_text, 64);

    vlp_tape t;
    vlp_tape_init(&t);
    double worst_output = 0, worst_grad[N_LOSSES] = {0}, worst_abs[N_LOSSES] = {0};
    for (int kind = 0; kind < N_LOSSES; kind++) {
        vlp_tape_reset(&t);
        vlp_params_zero_grad(&g.m.params);
        seen o = {0};
        vlp_tensor *loss = golden_loss(&g, &t, kind, &o);
        char name[256], what[256];
        if (kind == LOSS_ITC) {
            worst_output = fmax(worst_output, compare_output(f, "image_embeds", o.embeds));
            worst_output = fmax(worst_output, compare_output(f, "image_feat", o.img));
            worst_output = fmax(worst_output, compare_output(f, "text_feat", o.txt));
        }
        worst_output = fmax(worst_output, compare_output(f, "image_feat_m", o.img_m));
        worst_output = fmax(worst_output, compare_output(f, "text_feat_m", o.txt_m));
        worst_output = fmax(worst_output, compare_output(f, "itm_logits", o.itm_logits));
        snprintf(name, sizeof name, "outputs/loss_%s", loss_names[kind]);
        read_array(f, name, H5T_NATIVE_FLOAT, want, 1);
        snprintf(what, sizeof what, "loss %s = %.6f", loss_names[kind], loss->data[0]);
        worst_output = fmax(worst_output, expect_match(what, loss->data, want, 1, 1e-5));

        vlp_tape_backward(&t, loss, NULL);
        for (int i = 0; i < g.m.params.count; i++) {
            const vlp_param *e = &g.m.params.table[i];
            snprintf(name, sizeof name, "grads/%s/%s", loss_names[kind], e->name);
            snprintf(what, sizeof what, "d %s / d %s", loss_names[kind], e->name);
            n = read_array(f, name, H5T_NATIVE_FLOAT, want, MAXN);
            ck_assert_int_eq(n, e->t->n);
            double err = expect_match_floor(what, e->t->grad, want, n, 1e-4, GRAD_FLOOR);
            worst_grad[kind] = fmax(worst_grad[kind], err);
            worst_abs[kind] = fmax(worst_abs[kind], max_abs_error(e->t->grad, want, n));
        }
    }
    /* One momentum update, against BLIP's _momentum_update. */
    vlp_blip_momentum_update(&g.mm, (float)attr_number(f, "momentum"));
    double worst_update = 0;
    for (int i = 0; i < g.mm.params.count; i++) {
        const vlp_param *e = &g.mm.params.table[i];
        if (!g.mm.source[i]) continue; /* a queue */
        char name[256];
        snprintf(name, sizeof name, "momentum_updated/%s", e->name);
        n = read_array(f, name, H5T_NATIVE_FLOAT, want, MAXN);
        ck_assert_int_eq(n, e->t->n);
        worst_update = fmax(worst_update, expect_match(name, e->t->data, want, n, 1e-6));
    }
    printf("BLIP vs PyTorch: outputs and losses max relative error %.2e; momentum update %.2e\n",
           worst_output, worst_update);
    for (int kind = 0; kind < N_LOSSES; kind++)
        printf("  %s: %d parameter gradients, max relative error %.2e, max abs error %.2e\n",
               loss_names[kind], g.m.params.count, worst_grad[kind], worst_abs[kind]);
    vlp_tape_free(&t);
    vlp_blip_momentum_free(&g.mm);
    vlp_blip_free(&g.m);
    H5Fclose(f);
}
END_TEST

/* ---- whole-model finite differences ------------------------------------------ */

enum { TB = 3, TS = 8, TT = 6 }; /* batch, image size, context */

typedef struct tiny {
    vlp_blip m;
    vlp_blip_momentum mm;
    enum loss_kind kind;
    float images[TB * 3 * TS * TS];
    int text[TB * TT], lengths[TB], image_ids[TB], neg_image[TB], neg_text[TB];
} tiny;

static vlp_tensor *tiny_loss(vlp_tape *t, void *ctx) {
    tiny *c = ctx;
    vlp_tensor *images = vlp_tape_wrap(t, c->images, 4, (int[]){TB, 3, TS, TS});
    vlp_tensor *embeds = vlp_blip_encode_image(&c->m, t, images);
    switch (c->kind) {
    case LOSS_ITC:
    case LOSS_ITC_GROUPED: {
        vlp_tensor *img = vlp_blip_image_features(&c->m, t, embeds);
        vlp_tensor *txt = vlp_blip_text_features(&c->m, t, c->text, c->lengths, TB);
        return vlp_blip_itc_loss(&c->m, t, img, txt, img, txt, 0,
                                 c->kind == LOSS_ITC_GROUPED ? c->image_ids : NULL);
    }
    case LOSS_ITC_M:
    case LOSS_ITC_M_GROUPED: {
        vlp_tensor *img = vlp_blip_image_features(&c->m, t, embeds);
        vlp_tensor *txt = vlp_blip_text_features(&c->m, t, c->text, c->lengths, TB);
        vlp_tensor *img_m, *txt_m;
        vlp_blip_momentum_features(&c->mm, t, images, c->text, c->lengths, &img_m, &txt_m);
        const int *ids = c->kind == LOSS_ITC_M_GROUPED ? c->image_ids : NULL;
        return vlp_blip_itc_loss_momentum(&c->m, &c->mm, t, img, txt, img_m, txt_m, ids, 0.4f);
    }
    case LOSS_ITM:
        return vlp_blip_itm_loss(&c->m, t, embeds, c->text, c->lengths, c->neg_image, c->neg_text,
                                 NULL);
    case LOSS_LM:
        return vlp_blip_lm_loss(&c->m, t, embeds, c->text, c->lengths, 2);
    case LOSS_ALL: {
        vlp_tensor *img = vlp_blip_image_features(&c->m, t, embeds);
        vlp_tensor *txt = vlp_blip_text_features(&c->m, t, c->text, c->lengths, TB);
        vlp_tensor *itc = vlp_blip_itc_loss(&c->m, t, img, txt, img, txt, 0, NULL);
        vlp_tensor *itm = vlp_blip_itm_loss(&c->m, t, embeds, c->text, c->lengths, c->neg_image,
                                            c->neg_text, NULL);
        vlp_tensor *lm = vlp_blip_lm_loss(&c->m, t, embeds, c->text, c->lengths, 2);
        return vlp_op_add(t, vlp_op_add(t, itc, itm), lm);
    }
    }
    return NULL;
}

/* Ids: 0 padding, 1-7 words, 8 start, 9 end, 10 [ENC], 11 [DEC]. */
static void tiny_init(tiny *c) {
    vlp_blip_config cfg = {.embed_dim = 6, .image_size = TS, .patch_size = 4, .vision_width = 8,
                           .vision_layers = 1, .vision_heads = 2, .vocab_size = 12,
                           .context_length = TT, .text_width = 8, .text_layers = 2,
                           .text_heads = 2, .mlp_ratio = 2.0f, .enc_token_id = 10,
                           .dec_token_id = 11};
    ck_assert_int_eq(vlp_blip_init(&c->m, &cfg, 5), VLP_OK);
    vlp_rng rng;
    vlp_rng_init(&rng, 11);
    vlp_rng_fill_normal(&rng, c->images, TB * 3 * TS * TS, 0.0f, 1.0f);
    /* Larger weights than the init make every gradient big enough to measure. */
    vlp_rng_fill_normal(&rng, c->m.params.data, (long)c->m.params.n, 0.0f, 0.5f);
    c->m.temp->data[0] = 0.3f;
    int rows[TB][TT] = {{8, 3, 7, 1, 9, 0}, {8, 3, 5, 9, 0, 0}, {8, 3, 2, 6, 4, 9}};
    memcpy(c->text, rows, sizeof rows);
    int lengths[TB] = {5, 4, 6}, ids[TB] = {0, 1, 0}, neg_image[TB] = {1, 2, 1},
        neg_text[TB] = {2, 0, 1};
    memcpy(c->lengths, lengths, sizeof lengths);
    memcpy(c->image_ids, ids, sizeof ids);
    memcpy(c->neg_image, neg_image, sizeof neg_image);
    memcpy(c->neg_text, neg_text, sizeof neg_text);
    /* A momentum model some steps behind, and a queue holding positives. */
    ck_assert_int_eq(vlp_blip_momentum_init(&c->mm, &c->m, 4, 6), VLP_OK);
    for (int i = 0; i < c->mm.params.count; i++) {
        vlp_tensor *x = c->mm.params.table[i].t;
        if (c->mm.source[i])
            for (long k = 0; k < x->n; k++) x->data[k] += 0.1f * vlp_rng_normal(&rng);
    }
    int idx_queue[4] = {0, -100, 1, 0};
    memcpy(c->mm.idx_queue, idx_queue, sizeof idx_queue);
}

static void whole_model_gradcheck(enum loss_kind kind) {
    static tiny c;
    tiny_init(&c);
    c.kind = kind;
    /* The distilled targets depend on temp without gradient (BLIP computes
     * them under no_grad), which finite differences cannot see: temp's
     * gradient there is the golden test's to check. */
    if (kind == LOSS_ITC_M || kind == LOSS_ITC_M_GROUPED)
        ck_assert_int_eq(vlp_params_set_trainable(&c.m.params, "temp", false), 1);
    vlp_gradcheck_opts opts = {.tol = 5e-3, .max_per_tensor = 8, .seed = 3, .step = 1e-2};
    char what[64];
    snprintf(what, sizeof what, "whole BLIP, %s loss", loss_names[kind]);
    vlp_test_gradcheck(&c.m.params, tiny_loss, &c, &opts, what, c.m.params.count - 1);
    vlp_blip_momentum_free(&c.mm);
    vlp_blip_free(&c.m);
}

START_TEST(test_gradcheck_itc) {
    whole_model_gradcheck(LOSS_ITC);
    whole_model_gradcheck(LOSS_ITC_GROUPED);
}
END_TEST
START_TEST(test_gradcheck_itc_momentum) {
    whole_model_gradcheck(LOSS_ITC_M);
    whole_model_gradcheck(LOSS_ITC_M_GROUPED);
}
END_TEST
START_TEST(test_gradcheck_itm) { whole_model_gradcheck(LOSS_ITM); }
END_TEST
START_TEST(test_gradcheck_lm) { whole_model_gradcheck(LOSS_LM); }
END_TEST
START_TEST(test_gradcheck_all_losses) { whole_model_gradcheck(LOSS_ALL); }
END_TEST

/* ---- the attention blocks alone ------------------------------------------------ */

typedef struct block {
    vlp_params params;
    vlp_bert_attention att;
    vlp_tensor *x, *kv; /* kv NULL: self-attention */
    bool causal;
    uint8_t mask[2 * 5];
} block;

static vlp_tensor *block_forward(vlp_tape *t, void *ctx) {
    block *c = ctx;
    bool self = c->kv == NULL;
    return vlp_bert_attention_forward(&c->att, t, c->x, self ? c->x : c->kv, 2, c->causal,
                                      self ? c->mask : NULL);
}

/* Registers the block's weights and, as parameters too, its inputs, so
 * their gradients are checked with the weights'. */
static void block_check(bool cross) {
    block c = {.causal = !cross, .mask = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0}};
    vlp_params_init(&c.params);
    int C = 8, Ckv = cross ? 6 : 8;
    vlp_bert_attention_register(&c.att, &c.params, "attention", C, Ckv);
    c.x = vlp_params_add(&c.params, "x", 3, (int[]){2, 5, C});
    if (cross) c.kv = vlp_params_add(&c.params, "image", 3, (int[]){2, 4, Ckv});
    ck_assert_int_eq(vlp_params_alloc(&c.params), VLP_OK);
    vlp_rng rng;
    vlp_rng_init(&rng, 21);
    vlp_rng_fill_normal(&rng, c.params.data, (long)c.params.n, 0.0f, 0.7f);
    vlp_gradcheck_opts opts = {.tol = 2e-3, .seed = 4};
    vlp_test_gradcheck(&c.params, block_forward, &c, &opts,
                       cross ? "cross-attention block" : "causal self-attention block (key mask)",
                       (long)c.params.n);
    vlp_params_free(&c.params);
}

START_TEST(test_gradcheck_cross_attention) { block_check(true); }
END_TEST
START_TEST(test_gradcheck_decoder_self_attention) { block_check(false); }
END_TEST

/* ---- the hard-negative sampler ----------------------------------------------- */

/* Frequencies of many draws against softmax(sims / temp) with the pairs of
 * the same image at zero, computed here in double. */
START_TEST(test_itm_sampler) {
    static tiny c;
    tiny_init(&c);
    enum { B = 4, D = 3, DRAWS = 20000 };
    float img[B * D] = {1, 0, 0, 0.6f, 0.8f, 0, 0, 1, 0, 0, 0.6f, 0.8f};
    float txt[B * D] = {0.8f, 0.6f, 0, 0, 0, 1, 1, 0, 0, 0.6f, 0, 0.8f};
    int ids[B] = {0, 0, 1, 2};
    c.m.temp->data[0] = 0.5f;
    double want_image[B][B], want_text[B][B];
    for (int b = 0; b < B; b++) {
        double zi = 0, zt = 0;
        for (int j = 0; j < B; j++) {
            double st = 0, si = 0; /* text b . image j, image b . text j */
            for (int d = 0; d < D; d++) {
                st += txt[b * D + d] * img[j * D + d];
                si += img[b * D + d] * txt[j * D + d];
            }
            bool allowed = ids[j] != ids[b];
            zi += want_image[b][j] = allowed ? exp(st / 0.5) : 0.0;
            zt += want_text[b][j] = allowed ? exp(si / 0.5) : 0.0;
        }
        for (int j = 0; j < B; j++) want_image[b][j] /= zi, want_text[b][j] /= zt;
    }
    static int count_image[B][B], count_text[B][B];
    vlp_tape t;
    vlp_tape_init(&t);
    vlp_rng rng;
    vlp_rng_init(&rng, 77);
    for (int s = 0; s < DRAWS; s++) {
        vlp_tape_reset(&t);
        vlp_tensor *ti = vlp_tape_wrap(&t, img, 2, (int[]){B, D});
        vlp_tensor *tt = vlp_tape_wrap(&t, txt, 2, (int[]){B, D});
        int neg_image[B], neg_text[B];
        int rc = vlp_blip_itm_sample_negatives(&c.m, &t, ti, tt, ids, 0.0f, &rng, neg_image, neg_text);
        ck_assert_int_eq(rc, VLP_OK);
        ck_assert_int_eq(t.n_nodes, 0); /* no gradient */
        for (int b = 0; b < B; b++) count_image[b][neg_image[b]]++, count_text[b][neg_text[b]]++;
    }
    double worst = 0;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < B; j++) {
            double p[2] = {want_image[b][j], want_text[b][j]};
            int got[2] = {count_image[b][j], count_text[b][j]};
            for (int k = 0; k < 2; k++) {
                if (p[k] == 0.0) {
                    ck_assert_msg(got[k] == 0, "pair (%d, %d) of one image drawn %d times", b, j,
                                  got[k]);
                    continue;
                }
                double f = (double)got[k] / DRAWS, sigma = sqrt(p[k] * (1 - p[k]) / DRAWS);
                worst = fmax(worst, fabs(f - p[k]) / sigma);
                ck_assert_msg(fabs(f - p[k]) <= 5 * sigma,
                              "%s of row %d: column %d drawn %.4f, want %.4f",
                              k ? "negative text" : "negative image", b, j, f, p[k]);
            }
        }
    printf("ITM sampler: %d draws, worst deviation %.2f sigma\n", DRAWS, worst);

    /* Where every allowed weight underflows (temp 0.001, each row's
     * allowed similarities at least 0.8 below its largest), the draw is
     * the most similar allowed column. */
    float e[B * D] = {1, 0, 0, 0, 1, 0, -1, 0, 0, 0, 0, 1};
    int distinct[B] = {0, 1, 2, 3};
    c.m.temp->data[0] = 0.001f;
    vlp_tape_reset(&t);
    int neg_image[B], neg_text[B];
    ck_assert_int_eq(vlp_blip_itm_sample_negatives(&c.m, &t, vlp_tape_wrap(&t, e, 2, (int[]){B, D}),
                                                   vlp_tape_wrap(&t, e, 2, (int[]){B, D}), distinct,
                                                   0.0f, &rng, neg_image, neg_text),
                     VLP_OK);
    for (int b = 0; b < B; b++) {
        float sim[B], top = -INFINITY;
        int best = -1;
        for (int j = 0; j < B; j++) {
            sim[j] = 0;
            for (int d = 0; d < D; d++) sim[j] += e[b * D + d] * e[j * D + d];
            top = fmaxf(top, sim[j]);
        }
        for (int j = 0; j < B; j++)
            if (j != b) {
                ck_assert_float_ge(top - sim[j], 0.8f); /* exp(-800) underflows */
                if (best < 0 || sim[j] > sim[best]) best = j;
            }
        ck_assert_int_eq(neg_image[b], best);
        ck_assert_int_eq(neg_text[b], best);
    }

    /* [blip] itm_uniform 1: the same similarities, yet every allowed column
     * alike (3 per row here), within 4 standard deviations of 1/3. */
    enum { UNIFORM_DRAWS = 3000 };
    int counts[2][B][B] = {{{0}}};
    for (int k = 0; k < UNIFORM_DRAWS; k++) {
        vlp_tape_reset(&t);
        ck_assert_int_eq(vlp_blip_itm_sample_negatives(&c.m, &t, vlp_tape_wrap(&t, e, 2, (int[]){B, D}),
                                                       vlp_tape_wrap(&t, e, 2, (int[]){B, D}),
                                                       distinct, 1.0f, &rng, neg_image, neg_text),
                         VLP_OK);
        for (int b = 0; b < B; b++) counts[0][b][neg_image[b]]++, counts[1][b][neg_text[b]]++;
    }
    double sd = sqrt(UNIFORM_DRAWS * (1.0 / 3) * (2.0 / 3));
    for (int side = 0; side < 2; side++)
        for (int b = 0; b < B; b++)
            for (int j = 0; j < B; j++) {
                if (j == b) ck_assert_int_eq(counts[side][b][j], 0);
                else ck_assert_double_le(fabs(counts[side][b][j] - UNIFORM_DRAWS / 3.0), 4 * sd);
            }

    /* Every pair of one image: no negative to draw. */
    int same[B] = {3, 3, 3, 3};
    vlp_tape_reset(&t);
    int rc = vlp_blip_itm_sample_negatives(&c.m, &t, vlp_tape_wrap(&t, img, 2, (int[]){B, D}),
                                           vlp_tape_wrap(&t, txt, 2, (int[]){B, D}), same, 0.0f,
                                           &rng, neg_image, neg_text);
    ck_assert_int_eq(rc, VLP_EINVAL);
    printf("  %s\n", vlp_error_message());
    vlp_tape_free(&t);
    vlp_blip_momentum_free(&c.mm);
    vlp_blip_free(&c.m);
}
END_TEST

/* ---- the momentum model's bookkeeping --------------------------------------- */

START_TEST(test_momentum_queue) {
    static tiny c;
    tiny_init(&c);
    vlp_blip_momentum *mm = &c.mm;
    int D = c.m.cfg.embed_dim, Q = mm->queue_size, copies = 0;
    vlp_blip_momentum_free(mm);
    ck_assert_int_eq(vlp_blip_momentum_init(mm, &c.m, Q, 6), VLP_OK);
    /* At init a frozen copy of every tensor of the towers, and only them. */
    for (int i = 0; i < mm->params.count; i++) {
        const vlp_param *e = &mm->params.table[i];
        ck_assert(!e->t->requires_grad);
        if (!mm->source[i]) continue;
        size_t bytes = (size_t)e->t->n * sizeof(float);
        ck_assert_int_eq(memcmp(e->t->data, mm->source[i]->data, bytes), 0);
        copies++;
    }
    int towers = 0;
    const char *prefixes[] = {"visual_encoder.", "text_encoder.", "vision_proj.", "text_proj."};
    for (int i = 0; i < c.m.params.count; i++)
        for (int k = 0; k < 4; k++)
            towers += strncmp(c.m.params.table[i].name, prefixes[k], strlen(prefixes[k])) == 0;
    ck_assert_int_eq(copies, towers);
    ck_assert_int_eq(copies, mm->params.count - 2); /* and the two queues */
    const vlp_param *e = vlp_params_find(&mm->params, "visual_encoder_m.conv1.weight");
    ck_assert(e && mm->source[e - mm->params.table] == c.m.towers.visual_encoder.conv1_weight);
    e = vlp_params_find(&mm->params, "text_proj_m.bias");
    ck_assert(e && mm->source[e - mm->params.table] == c.m.towers.text_proj_b);
    /* Queues of unit rows, no ids. */
    for (int r = 0; r < Q; r++) {
        double n2 = 0;
        const float *row = mm->image_queue->data + r * D;
        for (int d = 0; d < D; d++) n2 += (double)row[d] * row[d];
        ck_assert_double_eq_tol(n2, 1.0, 1e-5);
        ck_assert_int_eq(mm->idx_queue[r], -100);
    }
    /* Three rows twice into a queue of four: rows 0-2, then 3, 0, 1. */
    float img[3 * 6], txt[3 * 6];
    int ids[2][3] = {{7, 8, 9}, {10, 11, 12}};
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < 3 * D; k++) {
            img[k] = (float)(100 * round + k);
            txt[k] = -img[k];
        }
        vlp_blip_momentum_enqueue(mm, img, txt, ids[round], 3);
    }
    ck_assert_int_eq(mm->queue_ptr, 2);
    int want_round[4] = {1, 1, 0, 1}, want_row[4] = {1, 2, 2, 0};
    for (int r = 0; r < Q; r++) {
        ck_assert_int_eq(mm->idx_queue[r], ids[want_round[r]][want_row[r]]);
        for (int d = 0; d < D; d++) {
            float v = (float)(100 * want_round[r] + want_row[r] * D + d);
            ck_assert_float_eq(mm->image_queue->data[r * D + d], v);
            ck_assert_float_eq(mm->text_queue->data[r * D + d], -v);
        }
    }
    vlp_blip_momentum_free(mm);
    vlp_blip_free(&c.m);
}
END_TEST

VLP_SUITE(blip_suite, "blip", test_golden, test_gradcheck_itc, test_gradcheck_itc_momentum, test_gradcheck_itm,
          test_gradcheck_lm, test_gradcheck_all_losses, test_gradcheck_cross_attention,
          test_gradcheck_decoder_self_attention, test_itm_sampler, test_momentum_queue)

VLP_TEST_MAIN(blip_suite)
