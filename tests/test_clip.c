/* CLIP against the PyTorch reference (scripts/clip_ref.py): the same
 * weights and inputs must give the same embeddings, logits and loss (to
 * 1e-5) and the same gradient for every parameter (to 1e-4), errors being
 * max|vlp - torch| / max|torch| over each tensor. Golden files default to
 * the committed tests/golden/clip_<config>.h5; VLP_CLIP_GOLDEN points at a
 * freshly generated one. Also: a whole-model finite-difference check, and
 * OpenCLIP's initialisation statistics. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "autograd/gradcheck.h"
#include "golden.h"
#include "models/clip.h"
#include "testutil.h"
#include "train/weights.h"

/* ---- reading the golden file ------------------------------------------------- */

static void attr_string(hid_t f, const char *name, char *out, size_t size) {
    hid_t a = H5Aopen_by_name(f, "config", name, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_msg(a >= 0, "golden config has no %s", name);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    char *s = NULL;
    ck_assert(H5Aread(a, type, &s) >= 0);
    snprintf(out, size, "%s", s);
    H5free_memory(s);
    H5Tclose(type);
    H5Aclose(a);
}

static vlp_clip_config golden_config(hid_t f, int *batch) {
    char act[32];
    attr_string(f, "act", act, sizeof act);
    *batch = (int)attr_number(f, "batch");
#define I(name) .name = (int)attr_number(f, #name)
    return (vlp_clip_config){
        I(embed_dim), I(image_size), I(patch_size), I(vision_width), I(vision_layers),
        I(vision_heads), I(vocab_size), I(context_length), I(text_width), I(text_layers),
        I(text_heads), .mlp_ratio = (float)attr_number(f, "mlp_ratio"),
        .act = strcmp(act, "gelu") == 0 ? VLP_ACTIVATION_GELU : VLP_ACTIVATION_QUICK_GELU};
#undef I
}

#define MAXN (1 << 20)
static float want[MAXN];

static void check_golden(const char *config) {
    char path[4096];
    const char *env = getenv("VLP_CLIP_GOLDEN_DIR");
    snprintf(path, sizeof path, "%s/clip_%s.h5", env ? env : VLP_SOURCE_DIR "/tests/golden", config);
    printf("golden %s\n", path);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot open %s (run scripts/clip_ref.py golden)", path);
    int B;
    vlp_clip_config cfg = golden_config(f, &B);
    vlp_clip m;
    ck_assert_int_eq(vlp_clip_init(&m, &cfg, 99), VLP_OK);
    int rc = vlp_weights_read(f, path, "/params", &m.params, m.params.data);
    ck_assert_msg(rc == VLP_OK, "%s", vlp_error_message());

    int S = cfg.image_size;
    static int text[4096], groups[256];
    vlp_tape t;
    vlp_tape_init(&t);
    vlp_tensor *images = vlp_tape_tensor(&t, 4, (int[]){B, 3, S, S});
    read_array(f, "inputs/images", H5T_NATIVE_FLOAT, images->data, images->n);
    read_array(f, "inputs/text", H5T_NATIVE_INT, text, 4096);
    read_array(f, "inputs/groups", H5T_NATIVE_INT, groups, 256);

    vlp_tensor *img = vlp_clip_encode_image(&m, &t, images);
    vlp_tensor *txt = vlp_clip_encode_text(&m, &t, text, B);
    vlp_tensor *logits;
    vlp_tensor *loss = vlp_clip_loss(&t, img, txt, img, txt, m.logit_scale, 0, NULL, &logits);
    vlp_params_zero_grad(&m.params);
    vlp_tape_backward(&t, loss, NULL);

    long n = read_array(f, "outputs/image_features", H5T_NATIVE_FLOAT, want, MAXN);
    expect_match("image_features", img->data, want, n, 1e-5);
    n = read_array(f, "outputs/text_features", H5T_NATIVE_FLOAT, want, MAXN);
    expect_match("text_features", txt->data, want, n, 1e-5);
    n = read_array(f, "outputs/logits_per_image", H5T_NATIVE_FLOAT, want, MAXN);
    expect_match("logits_per_image", logits->data, want, n, 1e-5);
    read_array(f, "outputs/loss", H5T_NATIVE_FLOAT, want, 1);
    expect_match("loss", loss->data, want, 1, 1e-5);
    vlp_tensor *grouped = vlp_clip_loss(&t, img, txt, img, txt, m.logit_scale, 0, groups, NULL);
    read_array(f, "outputs/loss_grouped", H5T_NATIVE_FLOAT, want, 1);
    expect_match("loss with shared-id positives", grouped->data, want, 1, 1e-5);

    for (int i = 0; i < m.params.count; i++) {
        const vlp_param *e = &m.params.table[i];
        char name[256], what[256];
        snprintf(name, sizeof name, "grads/%s", e->name);
        snprintf(what, sizeof what, "d loss / d %s", e->name);
        n = read_array(f, name, H5T_NATIVE_FLOAT, want, MAXN);
        ck_assert_int_eq(n, e->t->n);
        expect_match(what, e->t->grad, want, n, 1e-4);
    }
    vlp_tape_free(&t);
    vlp_clip_free(&m);
    H5Fclose(f);
}

/* A state_dict from the reference, converted by scripts/convert_state_dict.py
 * (run by tests/clip_python.sh interop, which sets VLP_CLIP_INTEROP_DIR):
 * load it, match the reference's embeddings, and save it back for the
 * reverse conversion. */
START_TEST(test_interop) {
    const char *dir = getenv("VLP_CLIP_INTEROP_DIR");
    char inputs[4096], model[4096], back[4096];
    snprintf(inputs, sizeof inputs, "%s/inputs.h5", dir);
    snprintf(model, sizeof model, "%s/model.h5", dir);
    snprintf(back, sizeof back, "%s/model_vlp.h5", dir);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(inputs, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot open %s", inputs);
    int B;
    vlp_clip_config cfg = golden_config(f, &B);
    vlp_clip m;
    ck_assert_int_eq(vlp_clip_init(&m, &cfg, 99), VLP_OK);
    int rc = vlp_weights_load(&m.params, model);
    ck_assert_msg(rc == VLP_OK, "%s", vlp_error_message());
    static int text[4096];
    vlp_tape t;
    vlp_tape_init(&t);
    vlp_tensor *images = vlp_tape_tensor(&t, 4, (int[]){B, 3, cfg.image_size, cfg.image_size});
    read_array(f, "inputs/images", H5T_NATIVE_FLOAT, images->data, images->n);
    read_array(f, "inputs/text", H5T_NATIVE_INT, text, 4096);
    long n = read_array(f, "outputs/image_features", H5T_NATIVE_FLOAT, want, MAXN);
    expect_match("image_features", vlp_clip_encode_image(&m, &t, images)->data, want, n, 1e-5);
    n = read_array(f, "outputs/text_features", H5T_NATIVE_FLOAT, want, MAXN);
    expect_match("text_features", vlp_clip_encode_text(&m, &t, text, B)->data, want, n, 1e-5);
    rc = vlp_weights_save(&m.params, back);
    ck_assert_msg(rc == VLP_OK, "%s", vlp_error_message());
    vlp_tape_free(&t);
    vlp_clip_free(&m);
    H5Fclose(f);
}
END_TEST

START_TEST(test_golden_gelu) { check_golden("gelu"); }
END_TEST
START_TEST(test_golden_quickgelu) { check_golden("quickgelu"); }
END_TEST

/* ---- whole-model finite differences ------------------------------------------ */

typedef struct tiny {
    vlp_clip m;
    float images[3 * 3 * 8 * 8];
    int text[3 * 6], groups[3];
    bool grouped;
} tiny;

static vlp_tensor *tiny_loss(vlp_tape *t, void *ctx) {
    tiny *c = ctx;
    vlp_tensor *images = vlp_tape_tensor(t, 4, (int[]){3, 3, 8, 8});
    memcpy(images->data, c->images, sizeof c->images);
    vlp_tensor *img = vlp_clip_encode_image(&c->m, t, images);
    vlp_tensor *txt = vlp_clip_encode_text(&c->m, t, c->text, 3);
    return vlp_clip_loss(t, img, txt, img, txt, c->m.logit_scale, 0, c->grouped ? c->groups : NULL, NULL);
}

START_TEST(test_whole_model_gradcheck) {
    vlp_clip_config cfg = {.embed_dim = 6, .image_size = 8, .patch_size = 4, .vision_width = 8,
                           .vision_layers = 1, .vision_heads = 2, .vocab_size = 20,
                           .context_length = 6, .text_width = 8, .text_layers = 1,
                           .text_heads = 2, .mlp_ratio = 2.0f, .act = VLP_ACTIVATION_GELU};
    static tiny c;
    ck_assert_int_eq(vlp_clip_init(&c.m, &cfg, 5), VLP_OK);
    vlp_rng rng;
    vlp_rng_init(&rng, 11);
    vlp_rng_fill_normal(&rng, c.images, 3 * 3 * 8 * 8, 0.0f, 1.0f);
    /* Larger weights than the init make every gradient big enough to measure. */
    vlp_rng_fill_normal(&rng, c.m.params.data, (long)c.m.params.n, 0.0f, 0.5f);
    c.m.logit_scale->data[0] = 1.0f;
    int rows[3][6] = {{18, 3, 7, 19, 0, 0}, {18, 5, 19, 0, 0, 0}, {18, 1, 2, 3, 4, 19}};
    memcpy(c.text, rows, sizeof rows);
    c.groups[0] = 4, c.groups[1] = 9, c.groups[2] = 4;
    for (int grouped = 0; grouped < 2; grouped++) {
        c.grouped = grouped;
        vlp_gradcheck_opts opts = {.tol = 5e-3, .max_per_tensor = 6, .seed = 3, .step = 1e-2};
        vlp_test_gradcheck(&c.m.params, tiny_loss, &c, &opts,
                           grouped ? "whole CLIP (shared-id positives)" : "whole CLIP", c.m.params.count);
    }
    vlp_clip_free(&c.m);
}
END_TEST

/* ---- initialisation -------------------------------------------------------------- */

static void expect_std(const vlp_clip *m, const char *name, double mean, double std) {
    const vlp_param *e = vlp_params_find(&m->params, name);
    ck_assert_msg(e, "no parameter %s", name);
    double s = 0, s2 = 0;
    long n = e->t->n;
    for (long i = 0; i < n; i++) s += e->t->data[i], s2 += (double)e->t->data[i] * e->t->data[i];
    double mu = s / n, sd = sqrt(fmax(s2 / n - mu * mu, 0));
    printf("  %-50s mean %+.4f std %.4f (want %.4f)\n", name, mu, sd, std);
    ck_assert_msg(fabs(mu - mean) <= 5 * std / sqrt(n) + 1e-7, "%s: mean %g", name, mu);
    ck_assert_msg(fabs(sd - std) <= 0.05 * std + 1e-7, "%s: std %g, want %g", name, sd, std);
}

START_TEST(test_openclip_init) {
    vlp_clip_config cfg = {.embed_dim = 64, .image_size = 32, .patch_size = 4, .vision_width = 128,
                           .vision_layers = 2, .vision_heads = 4, .vocab_size = 1024,
                           .context_length = 32, .text_width = 96, .text_layers = 4,
                           .text_heads = 4, .mlp_ratio = 4.0f, .act = VLP_ACTIVATION_GELU};
    vlp_clip m;
    ck_assert_int_eq(vlp_clip_init(&m, &cfg, 1), VLP_OK);
    ck_assert_float_eq_tol(m.logit_scale->data[0], logf(1.0f / 0.07f), 1e-6f);
    double w = 96, vw = 128, uniform = 1 / sqrt(3.0); /* std of U(-a, a) is a / sqrt(3) */
    expect_std(&m, "token_embedding.weight", 0, 0.02);
    expect_std(&m, "positional_embedding", 0, 0.01);
    expect_std(&m, "transformer.resblocks.1.attn.in_proj_weight", 0, 1 / sqrt(w));
    expect_std(&m, "transformer.resblocks.1.attn.out_proj.weight", 0, 1 / sqrt(w) / sqrt(8.0));
    expect_std(&m, "transformer.resblocks.1.mlp.c_fc.weight", 0, 1 / sqrt(2 * w));
    expect_std(&m, "transformer.resblocks.1.mlp.c_proj.weight", 0, 1 / sqrt(w) / sqrt(8.0));
    expect_std(&m, "text_projection", 0, 1 / sqrt(w));
    expect_std(&m, "visual.class_embedding", 0, 1 / sqrt(vw));
    expect_std(&m, "visual.positional_embedding", 0, 1 / sqrt(vw));
    expect_std(&m, "visual.proj", 0, 1 / sqrt(vw));
    expect_std(&m, "visual.conv1.weight", 0, uniform / sqrt(48.0));
    expect_std(&m, "visual.transformer.resblocks.0.attn.in_proj_weight", 0, sqrt(6.0 / (4 * vw)) * uniform);
    expect_std(&m, "visual.transformer.resblocks.0.mlp.c_proj.weight", 0, uniform / sqrt(4 * vw));
    expect_std(&m, "visual.transformer.resblocks.0.ln_1.weight", 1, 0);
    expect_std(&m, "visual.transformer.resblocks.0.attn.in_proj_bias", 0, 0);
    vlp_clip_free(&m);
}
END_TEST

static Suite *clip_suite(void) {
    Suite *s = suite_create("clip");
    VLP_ADD_CASE(s, golden_gelu);
    VLP_ADD_CASE(s, golden_quickgelu);
    VLP_ADD_CASE(s, whole_model_gradcheck);
    VLP_ADD_CASE(s, openclip_init);
    if (getenv("VLP_CLIP_INTEROP_DIR")) VLP_ADD_CASE(s, interop);
    return s;
}

VLP_TEST_MAIN(clip_suite)
