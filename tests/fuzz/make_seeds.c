/* Writes the binary seeds of the fuzz corpus (tests/fuzz/corpus/): small
 * images of every format and variant stb_image decodes (stb_image_write
 * for the common ones, PNG, GIF, PNM and PSD variants by hand), and a real
 * checkpoint of the tiny CLIP written by vlp_checkpoint_save with truncated
 * and damaged copies, a model file, and checkpoint recipes. The text
 * seeds (manifests, configs, merges files) are plain files in the corpus.
 *   fuzz_make_seeds <corpus folder>
 * Run once when the harnesses change; the output is committed. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <stb_image_write.h>

#include "base/error.h"
#include "tiny_clip.h"
#include "train/checkpoint.h"
#include "train/weights.h"

static const char *root;

static void die(const char *what) {
    fprintf(stderr, "fuzz_make_seeds: %s: %s\n", what, errno ? strerror(errno) : vlp_error_message());
    exit(1);
}

static void put(const char *dir, const char *name, const void *bytes, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", root, dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, n, f) != n || fclose(f) != 0) die(path);
}

/* ---- images ------------------------------------------------------------------ */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void add(buf *b, const void *bytes, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) die("out of memory");
    }
    memcpy(b->p + b->n, bytes, n);
    b->n += n;
}

static void add_be32(buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    add(b, x, 4);
}

static void on_write(void *ctx, void *data, int size) { add(ctx, data, (size_t)size); }

static void png_chunk(buf *b, const char *type, const void *data, uint32_t n) {
    add_be32(b, n);
    size_t at = b->n;
    add(b, type, 4);
    if (n) add(b, data, n);
    add_be32(b, (uint32_t)crc32(0, b->p + at, n + 4));
}

/* A PNG by hand: w x h, the given bit depth and colour type, raw scanlines
 * (filter byte included) compressed as one IDAT; palette and tRNS when
 * given; interlace flag as asked (the scanlines must then be Adam7's). */
static void png(const char *name, uint32_t w, uint32_t h, int depth, int ctype, int interlace, const uint8_t *rows,
                size_t n_rows, const uint8_t *plte, size_t n_plte, const uint8_t *trns, size_t n_trns) {
    buf b = {0};
    add(&b, "\x89PNG\r\n\x1a\n", 8);
    uint8_t ihdr[13] = {(uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w,
                        (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h,
                        (uint8_t)depth,     (uint8_t)ctype,     0,                 0, (uint8_t)interlace};
    png_chunk(&b, "IHDR", ihdr, 13);
    if (plte) png_chunk(&b, "PLTE", plte, (uint32_t)n_plte);
    if (trns) png_chunk(&b, "tRNS", trns, (uint32_t)n_trns);
    uLongf zn = compressBound(n_rows);
    uint8_t *z = malloc(zn);
    if (!z || compress2(z, &zn, rows, n_rows, 9) != Z_OK) die("compress");
    png_chunk(&b, "IDAT", z, (uint32_t)zn);
    png_chunk(&b, "IEND", NULL, 0);
    put("image", name, b.p, b.n);
    free(z);
    free(b.p);
}

/* GIF: 3-bit LZW codes, a clear code before every pixel, so that the code
 * size never grows (simple to write, legal to read). */
static void gif(const char *name, int w, int h, const uint8_t *pixels, int transparent) {
    buf b = {0};
    add(&b, "GIF89a", 6);
    uint8_t lsd[7] = {(uint8_t)w, (uint8_t)(w >> 8), (uint8_t)h, (uint8_t)(h >> 8), 0xF1, 0, 0};
    add(&b, lsd, 7);
    static const uint8_t palette[12] = {0, 0, 0, 255, 0, 0, 0, 255, 0, 255, 255, 255};
    add(&b, palette, 12);
    if (transparent >= 0) {
        uint8_t gce[8] = {0x21, 0xF9, 4, 1, 0, 0, (uint8_t)transparent, 0};
        add(&b, gce, 8);
    }
    uint8_t id[10] = {0x2C, 0, 0, 0, 0, (uint8_t)w, (uint8_t)(w >> 8), (uint8_t)h, (uint8_t)(h >> 8), 0};
    add(&b, id, 10);
    add(&b, "\x02", 1); /* minimum code size: clear = 4, end = 5 */
    uint8_t packed[256] = {0};
    size_t bit = 0;
    for (int i = 0; i <= w * h; i++) {
        int codes[2] = {4, i < w * h ? pixels[i] : 5};
        for (int k = 0; k < 2; k++) {
            if (i == w * h && k == 0) continue;
            for (int j = 0; j < 3; j++, bit++)
                if (codes[k] >> j & 1) packed[bit / 8] |= (uint8_t)(1 << (bit % 8));
        }
    }
    size_t n = (bit + 7) / 8;
    uint8_t len = (uint8_t)n;
    add(&b, &len, 1);
    add(&b, packed, n);
    add(&b, "\x00\x3B", 2);
    put("image", name, b.p, b.n);
    free(b.p);
}

static void images(void) {
    uint8_t px[17 * 9 * 4];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 37 + (i >> 3) * 11);
    static const char *const png_names[] = {"grey.png", "grey_alpha.png", "rgb.png", "rgba.png"};
    for (int c = 1; c <= 4; c++) {
        buf b = {0};
        stbi_write_png_to_func(on_write, &b, 5, 3, c, px, 5 * c);
        put("image", png_names[c - 1], b.p, b.n);
        free(b.p);
    }
    buf b = {0};
    stbi_write_jpg_to_func(on_write, &b, 8, 8, 3, px, 50);
    put("image", "rgb.jpg", b.p, b.n);
    b.n = 0;
    stbi_write_jpg_to_func(on_write, &b, 17, 9, 1, px, 90);
    put("image", "grey.jpg", b.p, b.n);
    b.n = 0;
    stbi_write_bmp_to_func(on_write, &b, 4, 3, 3, px);
    put("image", "rgb.bmp", b.p, b.n);
    b.n = 0;
    stbi_write_bmp_to_func(on_write, &b, 3, 2, 4, px);
    put("image", "rgba.bmp", b.p, b.n);
    b.n = 0;
    stbi_write_tga_to_func(on_write, &b, 4, 3, 4, px);
    put("image", "rle.tga", b.p, b.n);
    b.n = 0;
    stbi_write_tga_with_rle = 0;
    stbi_write_tga_to_func(on_write, &b, 3, 2, 3, px);
    put("image", "raw.tga", b.p, b.n);
    b.n = 0;
    float hdr[3 * 2 * 3];
    for (int i = 0; i < 18; i++) hdr[i] = (float)i * 0.37f;
    stbi_write_hdr_to_func(on_write, &b, 3, 2, 3, hdr);
    put("image", "rgb.hdr", b.p, b.n);
    free(b.p);

    /* PNGs stb_image_write does not make: 16-bit, palette with tRNS,
     * 1-bit grey, Adam7 interlaced, and one declaring 5000 x 5000 (over
     * the harness's pixel limit: refused before decoding). */
    uint8_t rows16[3 * (1 + 2 * 6)];
    for (size_t i = 0; i < sizeof rows16; i++) rows16[i] = i % 13 == 0 ? 0 : (uint8_t)(i * 29);
    png("rgb16.png", 2, 3, 16, 2, 0, rows16, sizeof rows16, NULL, 0, NULL, 0);
    uint8_t rowsp[2 * (1 + 3)] = {0, 0, 1, 2, 1, 2, 1, 0};
    static const uint8_t plte[9] = {255, 0, 0, 0, 255, 0, 0, 0, 255}, trns[2] = {0, 128};
    png("palette.png", 3, 2, 8, 3, 0, rowsp, sizeof rowsp, plte, 9, trns, 2);
    uint8_t rows1[4 * 2] = {0, 0xA5, 0, 0x5A, 0, 0xFF, 0, 0x00};
    png("bit1.png", 8, 4, 1, 0, 0, rows1, sizeof rows1, NULL, 0, NULL, 0);
    uint8_t rowsi[2] = {0, 0x7F}; /* 1 x 1: Adam7's first pass only */
    png("interlaced.png", 1, 1, 8, 0, 1, rowsi, sizeof rowsi, NULL, 0, NULL, 0);
    png("huge.png", 5000, 5000, 8, 0, 0, rowsi, sizeof rowsi, NULL, 0, NULL, 0);

    uint8_t g[6] = {0, 1, 2, 3, 1, 0};
    gif("plain.gif", 3, 2, g, -1);
    gif("transparent.gif", 2, 3, g, 1);

    static const char p5[] = "P5\n3 2\n255\n\x00\x40\x80\xc0\xff\x10";
    put("image", "grey.pgm", p5, sizeof p5 - 1);
    static const char p6[] = "P6 2 1 255 \xff\x00\x00\x00\xff\x00";
    put("image", "rgb.ppm", p6, sizeof p6 - 1);
    static const char p6w[] = "P6\n# a comment\n1 1\n65535\n\xff\xff\x80\x00\x00\x01";
    put("image", "rgb16.ppm", p6w, sizeof p6w - 1);

    /* PSD, RGB 8-bit, raw planes: header, three empty sections, compression 0. */
    buf p = {0};
    add(&p, "8BPS\x00\x01\x00\x00\x00\x00\x00\x00\x00\x03", 14);
    add_be32(&p, 2); /* height */
    add_be32(&p, 2); /* width */
    add(&p, "\x00\x08\x00\x03", 4);
    add_be32(&p, 0);
    add_be32(&p, 0);
    add_be32(&p, 0);
    add(&p, "\x00\x00", 2);
    add(&p, "\xff\x00\x80\x10\x00\xff\x80\x20\x00\x00\xff\x30", 12);
    put("image", "rgb.psd", p.p, p.n);
    free(p.p);
}

/* ---- checkpoints -------------------------------------------------------------- */

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) die(path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)size);
    if (!p || fread(p, 1, (size_t)size, f) != (size_t)size) die(path);
    fclose(f);
    *n = (size_t)size;
    return p;
}

static void checkpoints(void) {
    vlp_clip model;
    vlp_clip_config cfg = fuzz_tiny_clip_config();
    if (vlp_clip_init(&model, &cfg, 7)) die("tiny CLIP");
    for (size_t i = 0; i < model.params.n; i++) model.params.m[i] = 1e-3f * (float)(i % 7), model.params.v[i] = 1e-6f;
    char dir[] = "/tmp/vlp-fuzz-seeds-XXXXXX", written[VLP_PATH_MAX], path[VLP_PATH_MAX + 32];
    if (!mkdtemp(dir)) die("mkdtemp");
    vlp_checkpoint_meta meta = {.step = 7, .loader_epoch = 1, .loader_step = 3, .adam_step = 7, .seed = 42,
                                .config = FUZZ_TINY_CONFIG, .tokenizer = FUZZ_TINY_MERGES, .version = "fuzz"};
    if (vlp_checkpoint_save(dir, &model.params, &meta, 1, written)) die("vlp_checkpoint_save");
    size_t n;
    uint8_t *ck = slurp(written, &n);
    printf("checkpoint of the tiny CLIP: %d tensors, %zu bytes\n", model.params.count, n);
    put("checkpoint", "real.h5", ck, n);
    remove(written);

    /* Truncated: inside the signature, the superblock, the middle, the end. */
    static const double cuts[] = {0.0005, 0.004, 0.5};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        char name[64];
        size_t k = (size_t)(cuts[i] * (double)n);
        snprintf(name, sizeof name, "truncated_%zu.h5", k);
        put("checkpoint", name, ck, k);
    }
    put("checkpoint", "truncated_last_byte.h5", ck, n - 1);
    /* Damaged: a byte changed in the superblock, in the root group's object
     * header area and in the middle (metadata or data, whatever is there). */
    static const size_t at[] = {13, 700};
    for (size_t i = 0; i < sizeof at / sizeof *at && at[i] < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "flipped_%zu.h5", at[i]);
        ck[at[i]] ^= 0x5A;
        put("checkpoint", name, ck, n);
        ck[at[i]] ^= 0x5A;
    }
    size_t mid = n / 2;
    ck[mid] ^= 0xFF;
    put("checkpoint", "flipped_middle.h5", ck, n);
    free(ck);

    /* A model file (weights at the root, no attributes): not a checkpoint. */
    snprintf(path, sizeof path, "%s/model.h5", dir);
    if (vlp_weights_save(&model.params, path)) die("vlp_weights_save");
    uint8_t *w = slurp(path, &n);
    put("checkpoint", "model_file.h5", w, n);
    free(w);
    remove(path);
    rmdir(dir);
    put("checkpoint", "not_hdf5.h5", "[model]\nembed_dim = 4\n", 22);

    /* Recipes (fuzz_checkpoint.c): "OPS:" then edits. */
    static const struct {
        const char *name;
        const char *ops;
        size_t n;
    } recipes[] = {
        {"recipe_clean", "OPS:", 4},
        {"recipe_missing_tensor", "OPS:\x00\x00\x05\x01\x00", 9},
        {"recipe_wrong_shape", "OPS:\x00\x01\x03\x02\x03", 9},
        {"recipe_wrong_type", "OPS:\x00\x02\x07\x03\x00", 9},
        {"recipe_double_chunked", "OPS:\x00\x00\x01\x07\x00\x00\x00\x02\x06\x05", 14},
        {"recipe_group_and_link", "OPS:\x00\x00\x02\x04\x00\x00\x01\x02\x05\x00", 14},
        {"recipe_extra_tensor", "OPS:\x01\x01\x00", 7},
        {"recipe_no_optim_group", "OPS:\x02\x02\x01", 7},
        {"recipe_attr_missing", "OPS:\x03\x01\x01", 7},
        {"recipe_attr_kinds", "OPS:\x03\x06\x02\x03\x02\x03\x03\x07\x06", 13},
        /* Regressions: attributes of two values and of none (checkpoint.c one_value). */
        {"recipe_attr_array_long", "OPS:\x03\x00\x04", 7},
        {"recipe_attr_array_string", "OPS:\x03\x06\x04", 7},
        {"recipe_attr_empty", "OPS:\x03\x01\x07", 7},
        {"recipe_newer_format", "OPS:\x04\x00\x00\x00\x00\x00\x00\x00\x00\x02", 14},
        {"recipe_config_text", "OPS:\x05\x00\x10[model]\nfoo = 1\n", 23},
        {"recipe_truncated", "OPS:\x06\x80\x00", 7},
        {"recipe_flipped", "OPS:\x07\x00\x00\x00\x30\xff\x07\x00\x00\x02\x00\x11", 16},
    };
    for (size_t i = 0; i < sizeof recipes / sizeof *recipes; i++)
        put("checkpoint", recipes[i].name, recipes[i].ops, recipes[i].n);
    vlp_clip_free(&model);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_make_seeds <corpus folder>\n");
        return 2;
    }
    root = argv[1];
    mkdir(root, 0755);
    images();
    checkpoints();
    return 0;
}
