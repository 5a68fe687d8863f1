/* safetensors and pretrained-model import/export: every hostile header a
 * clear error naming the file and tensor; F16 and BF16 widened exactly;
 * a vlp CLIP exported as an OpenCLIP and a Hugging Face folder and
 * imported back bit for bit; every import error with its message (the
 * ones docs/errors.md quotes). Parity with PyTorch: tests/pretrained.sh. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "apps/pretrained.h"
#include "base/error.h"
#include "data/safetensors.h"
#include "data/tokenizer.h"
#include "testutil.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/model.h"
#include "train/weights.h"

/* A safetensors file's bytes: the header length, header and data. */
static uint8_t *file_bytes(const char *header, const void *data, size_t data_size, size_t *size) {
    size_t n = strlen(header);
    *size = 8 + n + data_size;
    uint8_t *b = malloc(*size + 1);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(b + 8, header, n);
    if (data_size) memcpy(b + 8 + n, data, data_size);
    return b;
}

static void expect_parse_error(const char *header, size_t data_size, const char *fragment) {
    static const uint8_t zeros[64];
    size_t size;
    uint8_t *b = file_bytes(header, zeros, data_size, &size);
    vlp_safetensors st;
    int rc = vlp_safetensors_parse(&st, b, size, "m.safetensors");
    ck_assert_msg(rc == VLP_EFORMAT, "header %s: rc %d, expected an error", header, rc);
    const char *msg = vlp_error_message();
    printf("-> %s\n", msg);
    ck_assert_msg(strstr(msg, fragment) && strstr(msg, "m.safetensors"), "message '%s' lacks '%s'", msg, fragment);
    free(b);
}

START_TEST(test_safetensors_hostile_headers) {
    expect_parse_error("{\"a\":", 8, "not a JSON object (bad JSON)");
    expect_parse_error("[1,2]", 8, "not a JSON object");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "tensor 'a' in the safetensors header: needs");
    expect_parse_error("{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype 'Q7'");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "not a whole number");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "not a whole number");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 8, "outside the 8 bytes");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "outside");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16, "span 8 bytes");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1000000,1000000,1000000,1000000],\"data_offsets\":[0,8]}}",
                       8, "more elements than the file has bytes");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8,
                       "more than 8 dimensions");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 16, "overlap");
    /* an empty tensor between does not hide an overlap */
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                       "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 16, "overlap those of 'a'");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "named twice");
    expect_parse_error("{\"__metadata__\":{\"format\":7}}", 0, "__metadata__");
    expect_parse_error("{}  x", 0, "bytes after the JSON");
    /* the header length beyond the file, and a file too short to hold one */
    uint8_t huge[12] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}', ' ', ' '};
    vlp_safetensors st;
    ck_assert_int_eq(vlp_safetensors_parse(&st, huge, sizeof huge, "m.safetensors"), VLP_EFORMAT);
    ck_assert_ptr_nonnull(strstr(vlp_error_message(), "does not fit the file"));
    ck_assert_int_eq(vlp_safetensors_parse(&st, huge, 5, "m.safetensors"), VLP_EFORMAT);
    ck_assert_ptr_nonnull(strstr(vlp_error_message(), "too short"));
    /* a real file that is not one, and a folder */
    ck_assert_int_eq(vlp_safetensors_open(&st, "/nonexistent.safetensors"), VLP_EIO);
    ck_assert_int_eq(vlp_safetensors_open(&st, "/tmp"), VLP_EIO);
    ck_assert_ptr_nonnull(strstr(vlp_error_message(), "folder"));
}
END_TEST

START_TEST(test_safetensors_dtypes) {
    /* F16: 1, 2^-24 (the smallest subnormal), -2, 65504, inf, a NaN;
     * BF16: 1, -2.5; F64 0.1 rounds to float; I64 is refused by name */
    uint16_t half[6] = {0x3c00, 0x0001, 0xc000, 0x7bff, 0x7c00, 0x7e00};
    uint16_t bf[2] = {0x3f80, 0xc020};
    double d = 0.1;
    int64_t ids[2] = {0, 1};
    uint8_t data[12 + 4 + 8 + 16];
    memcpy(data, half, 12), memcpy(data + 12, bf, 4), memcpy(data + 16, &d, 8), memcpy(data + 24, ids, 16);
    size_t size;
    uint8_t *b = file_bytes("{\"h\":{\"dtype\":\"F16\",\"shape\":[6],\"data_offsets\":[0,12]},"
                            "\"bf\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[12,16]},"
                            "\"d\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[16,24]},"
                            "\"ids\":{\"dtype\":\"I64\",\"shape\":[1,2],\"data_offsets\":[24,40]}}",
                            data, sizeof data, &size);
    vlp_safetensors st;
    ck_assert_int_eq(vlp_safetensors_parse(&st, b, size, "m.safetensors"), VLP_OK);
    ck_assert_int_eq(st.n, 4);
    float h[6], x[2], s;
    ck_assert_int_eq(vlp_safetensors_read(&st, vlp_safetensors_find(&st, "h"), h), VLP_OK);
    ck_assert(h[0] == 1.0f && h[1] == ldexpf(1.0f, -24) && h[2] == -2.0f && h[3] == 65504.0f);
    ck_assert(isinf(h[4]) && h[4] > 0 && isnan(h[5]));
    ck_assert_int_eq(vlp_safetensors_read(&st, vlp_safetensors_find(&st, "bf"), x), VLP_OK);
    ck_assert(x[0] == 1.0f && x[1] == -2.5f);
    const vlp_st_tensor *dt = vlp_safetensors_find(&st, "d");
    ck_assert_int_eq(dt->ndim, 0);
    ck_assert_int_eq(dt->n, 1);
    ck_assert_int_eq(vlp_safetensors_read(&st, dt, &s), VLP_OK);
    ck_assert(s == 0.1f);
    float ignored[2];
    ck_assert_int_eq(vlp_safetensors_read(&st, vlp_safetensors_find(&st, "ids"), ignored), VLP_EFORMAT);
    ck_assert_ptr_nonnull(strstr(vlp_error_message(), "tensor 'ids' has dtype I64"));
    /* every F16 value widens to the float that narrows back to it */
    for (uint32_t v = 0; v < 65536; v++) {
        uint16_t one = (uint16_t)v;
        uint8_t buf[2];
        memcpy(buf, &one, 2);
        vlp_st_tensor t = {.name = "v", .dtype = VLP_ST_F16, .n = 1, .begin = 0, .end = 2};
        vlp_safetensors tiny = {.path = "v", .data = buf, .data_size = 2};
        float f;
        vlp_safetensors_read(&tiny, &t, &f);
        _Float16 back = (_Float16)f;
        uint16_t bits;
        memcpy(&bits, &back, 2);
        if (!isnan(f)) ck_assert_msg(bits == one, "F16 0x%04x widened to %g, which narrows to 0x%04x", v, f, bits);
    }
    vlp_safetensors_close(&st);
    free(b);
}
END_TEST

START_TEST(test_safetensors_write_read) {
    char dir[] = "/tmp/vlp-test-st-XXXXXX", path[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    float a[6] = {1, -2, 3.5f, NAN, INFINITY, -0.0f}, s = 4.6052f;
    vlp_st_entry e[3] = {{.name = "a.weight", .ndim = 2, .shape = {2, 3}, .data = a},
                         {.name = "logit \"scale\"", .ndim = 0, .data = &s},
                         {.name = "empty", .ndim = 1, .shape = {0}, .data = a}};
    ck_assert_int_eq(vlp_safetensors_write(path, e, 3, "{\"format\":\"pt\",\"by\":\"vlp\"}"), VLP_OK);
    vlp_safetensors st;
    ck_assert_int_eq(vlp_safetensors_open(&st, path), VLP_OK);
    ck_assert_int_eq(st.n, 3);
    ck_assert_int_eq((st.data - st.bytes) % 8, 0); /* the data starts 8-byte aligned */
    ck_assert_ptr_nonnull(strstr(st.metadata, "\"by\":\"vlp\""));
    float back[6], sb;
    const vlp_st_tensor *t = vlp_safetensors_find(&st, "a.weight");
    ck_assert(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
    ck_assert_int_eq(vlp_safetensors_read(&st, t, back), VLP_OK);
    ck_assert_int_eq(memcmp(a, back, sizeof a), 0);
    t = vlp_safetensors_find(&st, "logit \"scale\"");
    ck_assert(t && t->ndim == 0 && vlp_safetensors_read(&st, t, &sb) == VLP_OK && sb == s);
    ck_assert_int_eq(vlp_safetensors_find(&st, "empty")->n, 0);
    vlp_safetensors_close(&st);
    unlink(path);
    rmdir(dir);
}
END_TEST

/* ---- import and export ---------------------------------------------------- */

static char tmp_root[64];

/* A path under the test's folder; valid for the next 7 calls. */
static const char *tmp(const char *name) {
    static char buf[8][256];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_root, name);
    return buf[k];
}

static const char *const CAPTIONS[] = {"a photo of a cat", "a photo of a dog", "a red car on a street",
                                       "two birds in a tree", "a cat and a dog", "a small blue boat"};

/* A tiny random CLIP saved as a run folder, as vlptrain leaves one. */
static void make_run(const char *dir, bool quick_gelu) {
    mkdir(dir, 0755);
    vlp_config c;
    const char *text = "[model]\nembed_dim = 16\nimage_size = 16\npatch_size = 4\nvision_width = 32\n"
                       "vision_layers = 2\nvision_heads = 2\ncontext_length = 12\ntext_width = 24\n"
                       "text_layers = 2\ntext_heads = 3\n";
    ck_assert_int_eq(vlp_config_parse_text(&c, text, "test"), VLP_OK);
    c.model.activation = quick_gelu;
    vlp_tokenizer *tok;
    ck_assert_int_eq(vlp_tokenizer_train(&tok, CAPTIONS, 6, 540), VLP_OK);
    vlp_model m;
    ck_assert_int_eq(vlp_model_init(&m, &c, vlp_tokenizer_vocab_size(tok), 7), VLP_OK);
    /* LayerNorm gains and biases away from 1 and 0, so a swap shows */
    for (size_t i = 0; i < m.params->n; i++) m.params->data[i] += 0.01f * (float)((i * 2654435761u) % 97) / 97.0f;
    char path[512];
    snprintf(path, sizeof path, "%s/model.h5", dir);
    ck_assert_int_eq(vlp_weights_save(m.params, path), VLP_OK);
    snprintf(path, sizeof path, "%s/tokenizer.bpe", dir);
    ck_assert_int_eq(vlp_tokenizer_save(tok, path), VLP_OK);
    snprintf(path, sizeof path, "%s/config.ini", dir);
    char *cfg = vlp_config_to_text(&c);
    FILE *f = fopen(path, "w");
    fputs(cfg, f);
    fclose(f);
    free(cfg);
    vlp_model_free(&m);
    vlp_tokenizer_free(tok);
}

/* The parameters of two run folders, bit for bit. */
static void expect_same_weights(const char *a, const char *b) {
    vlp_model ma, mb;
    vlp_tokenizer *ta, *tb;
    ck_assert_msg(vlp_model_load(a, &ma, &ta) == VLP_OK, "%s", vlp_error_message());
    ck_assert_msg(vlp_model_load(b, &mb, &tb) == VLP_OK, "%s", vlp_error_message());
    ck_assert_int_eq(ma.params->n, mb.params->n);
    ck_assert_msg(memcmp(ma.params->data, mb.params->data, sizeof(float) * ma.params->n) == 0,
                  "%s and %s hold other weights", a, b);
    ck_assert_int_eq(vlp_tokenizer_vocab_size(ta), vlp_tokenizer_vocab_size(tb));
    ck_assert_int_eq(ma.cfg.model.activation, mb.cfg.model.activation);
    ck_assert_int_eq(ma.cfg.model.vision_heads, mb.cfg.model.vision_heads);
    vlp_model_free(&ma), vlp_model_free(&mb);
    vlp_tokenizer_free(ta), vlp_tokenizer_free(tb);
}

static void setup(void) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/vlp-test-pretrained-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp_root));
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_root);
    ck_assert_int_eq(system(cmd), 0);
}

static bool same_file(const char *a, const char *b) {
    char *x = vlp_read_text(a), *y = vlp_read_text(b);
    bool same = x && y && !strcmp(x, y);
    free(x), free(y);
    return same;
}

/* dir/model.safetensors as two shards and the index Hugging Face writes. */
static void split_shards(const char *dir) {
    char path[256], shard[2][256];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    vlp_safetensors st;
    ck_assert_int_eq(vlp_safetensors_open(&st, path), VLP_OK);
    vlp_st_entry *e = calloc((size_t)st.n, sizeof *e);
    float *data = malloc(sizeof(float) * st.data_size);
    FILE *index = NULL;
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    index = fopen(path, "w");
    fputs("{\"metadata\": {\"total_size\": 1}, \"weight_map\": {", index);
    float *at = data;
    for (int i = 0; i < st.n; i++) {
        const vlp_st_tensor *t = &st.tensors[i];
        ck_assert_int_eq(vlp_safetensors_read(&st, t, at), VLP_OK);
        e[i] = (vlp_st_entry){.name = t->name, .ndim = t->ndim, .data = at};
        memcpy(e[i].shape, t->shape, sizeof t->shape);
        at += t->n;
        fprintf(index, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "", t->name, 1 + (i >= st.n / 2));
    }
    fputs("}}\n", index);
    fclose(index);
    for (int k = 0; k < 2; k++) snprintf(shard[k], sizeof shard[k], "%s/model-0000%d-of-00002.safetensors", dir, k + 1);
    ck_assert_int_eq(vlp_safetensors_write(shard[0], e, st.n / 2, NULL), VLP_OK);
    ck_assert_int_eq(vlp_safetensors_write(shard[1], e + st.n / 2, st.n - st.n / 2, NULL), VLP_OK);
    vlp_safetensors_close(&st);
    free(e), free(data);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
}

START_TEST(test_export_import_bit_exact) {
    const vlp_import_opts o = {0};
    for (int quick = 0; quick < 2; quick++) {
        make_run(tmp("run"), quick);
        ck_assert_int_eq(vlp_pretrained_export(tmp("run"), tmp("oc"), VLP_PRETRAINED_OPEN_CLIP), VLP_OK);
        ck_assert_int_eq(vlp_pretrained_export(tmp("run"), tmp("hf"), VLP_PRETRAINED_HF), VLP_OK);
        ck_assert_msg(vlp_pretrained_import(tmp("oc"), tmp("oc_in"), &o) == VLP_OK, "%s", vlp_error_message());
        ck_assert_msg(vlp_pretrained_import(tmp("hf"), tmp("hf_in"), &o) == VLP_OK, "%s", vlp_error_message());
        expect_same_weights(tmp("run"), tmp("oc_in"));
        expect_same_weights(tmp("run"), tmp("hf_in"));
        /* export -> import -> export: the same files */
        ck_assert_int_eq(vlp_pretrained_export(tmp("hf_in"), tmp("hf2"), VLP_PRETRAINED_HF), VLP_OK);
        ck_assert(same_file(tmp("hf/model.safetensors"), tmp("hf2/model.safetensors")));
        ck_assert(same_file(tmp("hf/config.json"), tmp("hf2/config.json")));
        ck_assert(same_file(tmp("hf/vocab.json"), tmp("hf2/vocab.json")));
        /* the same weights in two shards named by model.safetensors.index.json */
        split_shards(tmp("hf"));
        ck_assert_msg(vlp_pretrained_import(tmp("hf"), tmp("shards_in"), &o) == VLP_OK, "%s", vlp_error_message());
        expect_same_weights(tmp("run"), tmp("shards_in"));
        teardown(), setup();
    }
}
END_TEST

/* vlpimport of src into a fresh folder fails with a message holding fragment. */
static void expect_import_error(const char *src, const vlp_import_opts *o, const char *fragment) {
    static int k;
    char out[64];
    snprintf(out, sizeof out, "out%d", k++);
    ck_assert_msg(vlp_pretrained_import(src, tmp(out), o) != VLP_OK, "%s imported, expected '%s'", src, fragment);
    printf("-> %s\n", vlp_error_message());
    ck_assert_msg(strstr(vlp_error_message(), fragment), "message '%s' lacks '%s'", vlp_error_message(), fragment);
}

/* Rewrites src's tensors into dst: one dropped, renamed or reshaped. */
static void rewrite(const char *src, const char *dst, const char *drop, const char *add, bool reshape_first) {
    vlp_safetensors st;
    ck_assert_int_eq(vlp_safetensors_open(&st, src), VLP_OK);
    vlp_st_entry *e = calloc((size_t)st.n + 1, sizeof *e);
    float **data = calloc((size_t)st.n + 1, sizeof *data);
    int n = 0;
    for (int i = 0; i < st.n; i++) {
        const vlp_st_tensor *t = &st.tensors[i];
        if (drop && !strcmp(t->name, drop)) continue;
        data[n] = malloc(sizeof(float) * (size_t)(t->n + 1));
        ck_assert_int_eq(vlp_safetensors_read(&st, t, data[n]), VLP_OK);
        e[n] = (vlp_st_entry){.name = t->name, .ndim = t->ndim, .data = data[n]};
        memcpy(e[n].shape, t->shape, sizeof t->shape);
        if (reshape_first && t->ndim == 2 && t->shape[0] != t->shape[1]) { /* the first such, transposed */
            e[n].shape[0] = t->shape[1], e[n].shape[1] = t->shape[0];
            reshape_first = false;
        }
        n++;
    }
    if (add) e[n] = (vlp_st_entry){.name = add, .ndim = 1, .shape = {1}, .data = data[0]}, n++;
    ck_assert_int_eq(vlp_safetensors_write(dst, e, n, NULL), VLP_OK);
    for (int i = 0; i < n; i++) free(data[i]);
    free(data), free(e);
    vlp_safetensors_close(&st);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_import_errors) {
    const vlp_import_opts o = {0};
    make_run(tmp("run"), true);
    ck_assert_int_eq(vlp_pretrained_export(tmp("run"), tmp("oc"), VLP_PRETRAINED_OPEN_CLIP), VLP_OK);
    ck_assert_int_eq(vlp_pretrained_export(tmp("run"), tmp("hf"), VLP_PRETRAINED_HF), VLP_OK);
    expect_import_error(tmp("nothing"), &o, "No such file");
    expect_import_error(tmp("run"), &o, "neither an OpenCLIP folder (open_clip_config.json) nor a Hugging Face");
    char st[256], keep[256], cfg[256], hcfg[256];
    snprintf(st, sizeof st, "%s", tmp("oc/open_clip_model.safetensors"));
    snprintf(keep, sizeof keep, "%s", tmp("keep.safetensors"));
    snprintf(cfg, sizeof cfg, "%s", tmp("oc/open_clip_config.json"));
    snprintf(hcfg, sizeof hcfg, "%s", tmp("hf/config.json"));
    rename(st, keep);
    rewrite(keep, st, "visual.ln_post.bias", NULL, false);
    expect_import_error(tmp("oc"), &o, "tensor visual.ln_post.bias is missing (vlp's visual.ln_post.bias, shape (32))");
    rewrite(keep, st, NULL, "visual.attnpool.weight", false);
    expect_import_error(tmp("oc"), &o, "tensor visual.attnpool.weight is not part of a vlp CLIP");
    rewrite(keep, st, NULL, NULL, true);
    expect_import_error(tmp("oc"), &o, "has shape (");
    rename(keep, st);
    /* merges: none, too few */
    rename(tmp("oc/merges.txt"), tmp("merges.txt"));
    expect_import_error(tmp("oc"), &o, "no merges.txt here: give CLIP's vocabulary with --vocab");
    write_text(tmp("few.txt"), "#version: 0.2\na b\n");
    expect_import_error(tmp("oc"), &(vlp_import_opts){.vocab = tmp("few.txt")}, "1 merges, but the model's vocabulary");
    rename(tmp("merges.txt"), tmp("oc/merges.txt"));
    /* configs: bad JSON, a variant vlp does not run, a missing key */
    rename(cfg, tmp("cfg.json"));
    write_text(cfg, "{\"model_cfg\": ");
    expect_import_error(tmp("oc"), &o, "open_clip_config.json: not a JSON object");
    write_text(cfg, "{\"model_cfg\": {\"embed_dim\": 16, \"vision_cfg\": {\"timm_model_name\": \"convnext\"}, "
                    "\"text_cfg\": {}}}");
    expect_import_error(tmp("oc"), &o, "\"timm_model_name\" is set: that variant of CLIP is not supported");
    write_text(cfg, "{\"model_cfg\": {\"embed_dim\": 16, \"vision_cfg\": {\"image_size\": 16}, \"text_cfg\": {}}}");
    expect_import_error(tmp("oc"), &o, "\"patch_size\" is missing");
    rename(tmp("cfg.json"), cfg);
    /* Hugging Face: another model type, towers of two activations */
    char *text = vlp_read_text(hcfg);
    write_text(hcfg, "{\"model_type\": \"siglip\"}");
    expect_import_error(tmp("hf"), &o, "model_type 'siglip'");
    char *act = strstr(text, "\"quick_gelu\"");
    ck_assert_ptr_nonnull(act);
    memcpy(act, "\"gelu\"      ", 12); /* the text tower's only: vision's comes later */
    write_text(hcfg, text);
    expect_import_error(tmp("hf"), &o, "vlp needs both quick_gelu or both gelu");
    free(text);
    /* a bare file that is no CLIP */
    float x = 1;
    vlp_st_entry one = {.name = "w", .ndim = 1, .shape = {1}, .data = &x};
    ck_assert_int_eq(vlp_safetensors_write(tmp("w.safetensors"), &one, 1, NULL), VLP_OK);
    expect_import_error(tmp("w.safetensors"), &o, "tensor visual.conv1.weight is missing");
    expect_import_error(tmp("w.safetensors"), &(vlp_import_opts){.arch = "ViT-Q-1"}, "not a known architecture");
    /* shapes read off as OpenAI's build_model does need 64-wide heads: this tiny model has 16 */
    expect_import_error(st, &(vlp_import_opts){.vocab = tmp("oc/merges.txt")}, "64-wide heads): give --arch NAME");
    /* an architecture that is not the file's: the first tensor that differs */
    expect_import_error(st, &(vlp_import_opts){.vocab = VLP_SOURCE_DIR "/tests/data/clip/bpe_simple_vocab_16e6.txt.gz",
                                                .arch = "ViT-B-32"}, "has shape (");
    /* a non-finite weight */
    rename(st, keep);
    rewrite(keep, st, NULL, NULL, false);
    FILE *f = fopen(st, "r+b");
    fseek(f, -4, SEEK_END);
    float nan = NAN;
    fwrite(&nan, 4, 1, f);
    fclose(f);
    expect_import_error(tmp("oc"), &o, "holds NaN or infinity");
    rename(keep, st);
    /* an occupied destination */
    ck_assert_int_eq(vlp_pretrained_import(tmp("oc"), tmp("done"), &o), VLP_OK);
    ck_assert_int_ne(vlp_pretrained_import(tmp("oc"), tmp("done"), &o), VLP_OK);
    ck_assert_ptr_nonnull(strstr(vlp_error_message(), "already holds a model.h5"));
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("pretrained");
    VLP_ADD_CASE(s, safetensors_hostile_headers);
    VLP_ADD_CASE(s, safetensors_dtypes);
    VLP_ADD_CASE(s, safetensors_write_read);
    TCase *tc = tcase_create("import_export");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_export_import_bit_exact);
    tcase_add_test(tc, test_import_errors);
    suite_add_tcase(s, tc);
    return s;
}

VLP_TEST_MAIN(suite)
