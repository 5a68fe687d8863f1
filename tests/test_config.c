/* Configuration errors stop before any work and say where: file:line, the
 * section and key, and what would be valid. And docs/config.md is what the
 * key table prints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "testutil.h"
#include "train/config.h"

static char path[] = "/tmp/vlp-test-config-XXXXXX";

static int load_text(vlp_config *c, const char *text, const char *const *sets, int n_sets) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return vlp_config_load(c, path, sets, n_sets);
}

#define GOOD "[data]\ntrain = data/train.tsv\n[log]\ndir = runs/x\n"

static void expect_error(const char *text, const char *const *sets, int n_sets, const char *says) {
    vlp_config c;
    int rc = load_text(&c, text, sets, n_sets);
    printf("-> %s\n", vlp_error_message());
    ck_assert_int_eq(rc, VLP_ECONFIG);
    ck_assert_msg(strstr(vlp_error_message(), says), "message '%s' lacks '%s'", vlp_error_message(), says);
}

START_TEST(test_good_file_and_overrides) {
    vlp_config c;
    const char *sets[] = {"optim.lr=0.01", "train.lock_image=true"};
    int rc = load_text(&c, GOOD "[model]\nactivation = quick_gelu ; OpenAI's\n", sets, 2);
    ck_assert_msg(rc == VLP_OK, "%s", vlp_error_message());
    ck_assert_str_eq(c.data.train, "data/train.tsv");
    ck_assert_int_eq(c.model.activation, 1);
    ck_assert_float_eq(c.optim.lr, 0.01f);
    ck_assert(c.train.lock_image);
    ck_assert_int_eq(c.train.batch_size, 128); /* a default */
    /* The effective text parses back to the same configuration. */
    char *text = vlp_config_to_text(&c);
    vlp_config again;
    rc = vlp_config_parse_text(&again, text, "effective");
    ck_assert_msg(rc == VLP_OK, "%s", vlp_error_message());
    char *text2 = vlp_config_to_text(&again);
    ck_assert_str_eq(text, text2);
    free(text), free(text2);
}
END_TEST

START_TEST(test_presets_and_preprocess) {
    vlp_config c;
    /* a preset sizes the model; a key the file sets wins over it */
    int rc = load_text(&c, GOOD "[model]\npreset = ViT-B-16-quickgelu\nembed_dim = 256\n", NULL, 0);
    ck_assert_msg(rc == VLP_OK, "%s", vlp_error_message());
    ck_assert_int_eq(c.model.patch_size, 16);
    ck_assert_int_eq(c.model.vision_width, 768);
    ck_assert_int_eq(c.model.vision_heads, 12);
    ck_assert_int_eq(c.model.text_heads, 8);
    ck_assert_int_eq(c.model.context_length, 77);
    ck_assert_int_eq(c.model.activation, 1);
    ck_assert_int_eq(c.data.vocab_size, 49408);
    ck_assert_int_eq(c.model.embed_dim, 256);
    char where[256];
    vlp_config_where(&c, "x.ini", "model", "patch_size", where, sizeof where);
    ck_assert_str_eq(where, "x.ini: [model] patch_size (of [model] preset = ViT-B-16-quickgelu)");
    const char *sets[] = {"model.preset=ViT-L-14"};
    rc = load_text(&c, GOOD, sets, 1);
    ck_assert_msg(rc == VLP_OK, "%s", vlp_error_message());
    ck_assert(c.model.vision_layers == 24 && c.model.vision_heads == 16 && c.model.embed_dim == 768 &&
              c.model.activation == 0);
    expect_error(GOOD "[model]\npreset = ViT-H-14\n", NULL, 0,
                 "[model] preset = 'ViT-H-14' is not a known architecture; known: ViT-B-32, ViT-B-16, ViT-L-14");
    /* [preprocess]: three numbers each, std above 0 */
    rc = load_text(&c, GOOD "[preprocess]\nmean = 0.5,0.5,0.5\nstd = 0.5,0.25,1\nalpha = pil\n", NULL, 0);
    ck_assert_msg(rc == VLP_OK, "%s", vlp_error_message());
    ck_assert_int_eq(c.preprocess.alpha, 1);
    expect_error(GOOD "[preprocess]\nmean = 0.5,0.5\n", NULL, 0,
                 "[preprocess] mean = '0.5,0.5' is not three comma-separated numbers (R,G,B)");
    expect_error(GOOD "[preprocess]\nstd = 0.5,0,0.5\n", NULL, 0, "[preprocess] std = '0.5,0,0.5': every value must be > 0");
    /* a run folder's config read for inference needs no [data] train */
    ck_assert_int_eq(vlp_config_parse_text(&c, "[model]\nembed_dim = 64\n", "run/config.ini"), VLP_OK);
}
END_TEST

START_TEST(test_inherit_init_model) {
    vlp_config c, from;
    ck_assert_int_eq(vlp_config_parse_text(&from, "[model]\npreset = ViT-B-32-quickgelu\n[preprocess]\nalpha = pil\n",
                                           "run/config.ini"), VLP_OK);
    ck_assert_int_eq(load_text(&c, GOOD "[model]\ntext_layers = 12\n", NULL, 0), VLP_OK);
    ck_assert_int_eq(vlp_config_inherit(&c, &from, path, "run"), VLP_OK);
    ck_assert(c.model.vision_width == 768 && c.model.patch_size == 32 && c.model.activation == 1 &&
              c.preprocess.alpha == 1);
    ck_assert_int_eq(load_text(&c, GOOD "[model]\nvision_width = 512\n", NULL, 0), VLP_OK);
    ck_assert_int_eq(vlp_config_inherit(&c, &from, path, "run"), VLP_ECONFIG);
    printf("-> %s\n", vlp_error_message());
    ck_assert_ptr_nonnull(strstr(vlp_error_message(), ":6: [model] vision_width = 512 disagrees with 768 of the "
                                 "[train] init model run (leave the key out to take the model's)"));
}
END_TEST

START_TEST(test_errors_name_line_and_key) {
    char where[64];
    snprintf(where, sizeof where, "%s:6:", path);
    expect_error(GOOD "[optim]\nlearning_rate = 1\n", NULL, 0, "unknown key 'learning_rate' in [optim]; valid keys are lr, min_lr");
    expect_error(GOOD "[optim]\nlearning_rate = 1\n", NULL, 0, where);
    expect_error(GOOD "[optim]\nlr = fast\n", NULL, 0, ":6: [optim] lr = 'fast' is not a number");
    expect_error(GOOD "[train]\nbatch_size = 2.5\n", NULL, 0, "[train] batch_size = '2.5' is not a whole number");
    expect_error(GOOD "[train]\nbatch_size = 0\n", NULL, 0, "[train] batch_size = 0 is out of range [1, 1048576]");
    expect_error(GOOD "[model]\nactivation = relu\n", NULL, 0, "valid values are gelu, quick_gelu");
    expect_error(GOOD "[train]\nlock_text = maybe\n", NULL, 0, "valid values are true, false");
    expect_error(GOOD "[optimizer]\nlr = 1\n", NULL, 0, ":6: unknown section [optimizer]; valid sections are model, data, train");
    expect_error("[log]\ndir = x\n", NULL, 0, "[data] train is required");
    expect_error(GOOD "[train]\nseed = 1\nseed = 2\n", NULL, 0, ":7: [train] seed is set twice (first on line 6)");
    expect_error(GOOD "this is not ini\n", NULL, 0, ":5: not an INI line");
    expect_error(GOOD "[model]\nimage_size = 30\n", NULL, 0, "image_size must be a multiple of patch_size");
    expect_error(GOOD "[train]\nmax_bad_steps = 0\n", NULL, 0, "[train] max_bad_steps = 0 is out of range [1, 1000000000]");
    expect_error(GOOD "[checkpoint]\non_error = ignore\n", NULL, 0, "valid values are stop, continue");
    expect_error(GOOD "[model]\nkind = vit\n", NULL, 0, "[model] kind = 'vit': valid values are clip, blip, groupvit");
    expect_error(GOOD "[model]\nkind = blip\n[train]\naccum_freq = 2\n", NULL, 0,
                 "[train] accum_freq > 1 is for kind = clip, not [model] kind = blip");
    expect_error(GOOD "[model]\nkind = groupvit\nactivation = quick_gelu\n", NULL, 0,
                 "[model] activation = quick_gelu is for kind = clip, not [model] kind = groupvit");
    expect_error(GOOD "[model]\nkind = groupvit\n[groupvit]\ndepths = 2,x\n", NULL, 0,
                 "[groupvit] depths = '2,x' is not a comma-separated list of whole numbers >= 1");
    expect_error(GOOD "[model]\nkind = groupvit\n[groupvit]\ndepths = 2,2\n", NULL, 0,
                 "and depths one more (it has 2)");
    expect_error(GOOD "[model]\nkind = groupvit\n[groupvit]\nlabels = nouns\n", NULL, 0,
                 "[groupvit] labels = nouns needs [groupvit] nouns");
    expect_error(GOOD "[blip]\nnegatives = all\n", NULL, 0, "valid values are local, global");
    const char *bad_set[] = {"optim.lrr=1"};
    expect_error(GOOD, bad_set, 1, "--set optim.lrr=1: unknown key");
    const char *bad_value[] = {"optim.lr=-1"};
    expect_error(GOOD, bad_value, 1, "--set optim.lr=-1: [optim] lr = -1 is out of range");
    /* A separator of two characters would use the first (hostile input issue). */
    expect_error(GOOD "[data]\nseparator = ab\n", NULL, 0, ":6: [data] separator = 'ab' is not one character (or \\t for a tab)");
    const char *bad_sep[] = {"data.separator=;;"};
    expect_error(GOOD, bad_sep, 1, "--set data.separator=;;: [data] separator = ';;' is not one character");
    vlp_config c;
    ck_assert_int_eq(load_text(&c, GOOD "[data]\nseparator = \\t\n", NULL, 0), VLP_OK);
    ck_assert_str_eq(c.data.separator, "\\t");
    ck_assert(!c.log.overwrite);
    const char *overwrite[] = {"log.overwrite=true"};
    ck_assert_int_eq(load_text(&c, GOOD, overwrite, 1), VLP_OK);
    ck_assert(c.log.overwrite);
    ck_assert_int_eq(vlp_config_load(&c, "/nonexistent/x.ini", NULL, 0), VLP_ECONFIG);
    ck_assert(strstr(vlp_error_message(), "/nonexistent/x.ini: No such file"));
    ck_assert_int_eq(vlp_config_load(&c, "/tmp", NULL, 0), VLP_ECONFIG);
    ck_assert_str_eq(vlp_error_message(), "/tmp: Is a directory");
}
END_TEST

/* Errors found after parsing (a data path that does not exist) name the
 * line that set the key, or the --set, or say it is the default. */
START_TEST(test_where_keys_were_set) {
    vlp_config c;
    const char *sets[] = {"optim.lr=0.01"};
    ck_assert_int_eq(load_text(&c, GOOD, sets, 1), VLP_OK);
    char where[VLP_PATH_MAX + 64], want[VLP_PATH_MAX + 64];
    vlp_config_where(&c, path, "data", "train", where, sizeof where);
    snprintf(want, sizeof want, "%s:2: [data] train", path);
    ck_assert_str_eq(where, want);
    vlp_config_where(&c, path, "optim", "lr", where, sizeof where);
    ck_assert_str_eq(where, "--set optim.lr");
    vlp_config_where(&c, path, "data", "val", where, sizeof where);
    snprintf(want, sizeof want, "%s: [data] val", path);
    ck_assert_str_eq(where, want);
}
END_TEST

/* Every value vlp accepts must read back the same from the run's
 * config.ini (how a checkpoint resumes); long paths are lines too. */
START_TEST(test_values_that_round_trip) {
    const char *spaced[] = {"data.val= x.tsv"}, *comment[] = {"data.val=a ; b"}, *semi[] = {"data.val=;x"};
    expect_error(GOOD, spaced, 1, "--set data.val= x.tsv: [data] val = ' x.tsv': spaces at either end");
    expect_error(GOOD, comment, 1, "[data] val = 'a ; b': spaces at either end, a line break or a ';' after a space");
    vlp_config c, again;
    ck_assert_int_eq(load_text(&c, GOOD, semi, 1), VLP_OK); /* "val =;x" is not a comment */
    char *text = vlp_config_to_text(&c);
    ck_assert_int_eq(vlp_config_parse_text(&again, text, "effective"), VLP_OK);
    ck_assert_str_eq(again.data.val, ";x");
    free(text);
    /* A 1000-character path is read whole; a longer line than vlp writes is refused by number. */
    char *ini = malloc(4096), *p = ini + sprintf(ini, GOOD "[data]\nval = ");
    memset(p, 'a', 1000), strcpy(p + 1000, "\n");
    ck_assert_msg(load_text(&c, ini, NULL, 0) == VLP_OK, "%s", vlp_error_message());
    ck_assert_int_eq((int)strlen(c.data.val), 1000);
    memset(p, 'a', 1200), strcpy(p + 1200, "\n");
    char where[64];
    snprintf(where, sizeof where, "%s:6: line longer than 1149 characters", path);
    expect_error(ini, NULL, 0, where);
    free(ini);
}
END_TEST

/* docs/config.md must be the table's own output. */
START_TEST(test_docs_current) {
    char *doc = NULL, *gen = NULL;
    size_t dn = 0, gn = 0;
    FILE *g = open_memstream(&gen, &gn);
    vlp_config_help(g, true);
    fclose(g);
    FILE *f = fopen(VLP_SOURCE_DIR "/docs/config.md", "r");
    ck_assert_msg(f, "docs/config.md is missing: vlptrain --help-config --markdown > docs/config.md");
    FILE *d = open_memstream(&doc, &dn);
    int ch;
    while ((ch = fgetc(f)) != EOF) fputc(ch, d);
    fclose(f);
    fclose(d);
    ck_assert_msg(dn == gn && !memcmp(doc, gen, gn),
                  "docs/config.md is stale: vlptrain --help-config --markdown > docs/config.md");
    free(doc), free(gen);
}
END_TEST

VLP_SUITE(config_suite, "config", test_good_file_and_overrides, test_errors_name_line_and_key,
          test_presets_and_preprocess, test_inherit_init_model, test_where_keys_were_set,
          test_values_that_round_trip, test_docs_current)

int main(void) {
    int fd = mkstemp(path);
    if (fd < 0) return 1;
    close(fd);
    int status = vlp_test_run(config_suite());
    unlink(path);
    return status;
}
