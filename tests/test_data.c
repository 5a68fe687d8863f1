/* Images, dataset formats, sharding and the loader. Fixtures are written
 * here: with stb_image_write, or byte by byte where stb cannot (16-bit and
 * palette PNG, GIF, PGM/PPM), plus broken files of every kind. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stb_image_write.h>
#include <zlib.h>

#include "base/error.h"
#include "base/file.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/safetensors.h"
#include "testutil.h"

static char tmpdir[256];

static const char *tmp(const char *name) {
    static char buf[8][512];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void make_dirs(const char *path) {
    char p[512];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') *s = 0, mkdir(p, 0755), *s = '/';
    mkdir(p, 0755);
}

/* ---- a PNG writer for what stb_image_write cannot make ----------------------------- */

static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v; }

static size_t chunk(uint8_t *out, const char *type, const uint8_t *data, uint32_t n) {
    put32(out, n);
    memcpy(out + 4, type, 4);
    if (n) memcpy(out + 8, data, n);
    put32(out + 8 + n, (uint32_t)crc32(0, out + 4, n + 4));
    return 12 + n;
}

/* rows: raw scanlines without filter bytes. */
static void write_png(const char *path, int w, int h, int depth, int color, const uint8_t *rows,
                      size_t row_bytes, const uint8_t *plte, int n_plte) {
    size_t raw_n = (row_bytes + 1) * h;
    uint8_t *raw = calloc(raw_n, 1), *out = malloc(raw_n * 2 + 1024);
    for (int y = 0; y < h; y++) memcpy(raw + y * (row_bytes + 1) + 1, rows + y * row_bytes, row_bytes);
    uLongf zn = compressBound(raw_n);
    uint8_t *z = malloc(zn);
    ck_assert_int_eq(compress(z, &zn, raw, raw_n), Z_OK);
    size_t n = 0;
    memcpy(out, "\x89PNG\r\n\x1a\n", 8), n = 8;
    uint8_t ihdr[13] = {0};
    put32(ihdr, (uint32_t)w), put32(ihdr + 4, (uint32_t)h);
    ihdr[8] = (uint8_t)depth, ihdr[9] = (uint8_t)color;
    n += chunk(out + n, "IHDR", ihdr, 13);
    if (plte) n += chunk(out + n, "PLTE", plte, (uint32_t)(3 * n_plte));
    n += chunk(out + n, "IDAT", z, (uint32_t)zn);
    n += chunk(out + n, "IEND", NULL, 0);
    write_file(path, out, n);
    free(raw), free(out), free(z);
}

/* A 2x2 GIF: palette red, green, blue, white; LZW-coded pixels 0 1 2 3. */
static const uint8_t gif_2x2[] = {
    'G', 'I', 'F', '8', '9', 'a', 2, 0, 2, 0, 0x81, 0, 0,              /* screen, 4-colour table */
    255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255,                   /* palette */
    0x2c, 0, 0, 0, 0, 2, 0, 2, 0, 0,                                   /* image descriptor */
    2, 3, 0x44, 0x34, 0x05, 0, 0x3b};                                  /* min code 2, data, end */

static void expect_pixel(const vlp_image *img, int x, int y, int r, int g, int b, int tol) {
    const uint8_t *p = img->rgb + ((long)y * img->w + x) * 3;
    ck_assert_msg(abs(p[0] - r) <= tol && abs(p[1] - g) <= tol && abs(p[2] - b) <= tol,
                  "pixel (%d, %d) is (%d, %d, %d), want (%d, %d, %d)", x, y, p[0], p[1], p[2], r, g, b);
}

static vlp_image load_ok(const char *path, const vlp_image_opts *o) {
    vlp_image img;
    int rc = vlp_image_load(&img, path, o);
    ck_assert_msg(rc == VLP_OK, "%s: %s", path, vlp_error_message());
    return img;
}

START_TEST(test_decode_every_kind) {
    vlp_image_opts o = {.background = {10, 20, 30}};
    /* 8-bit RGB, RGBA, grey, grey+alpha PNG; BMP; TGA; JPEG from stb */
    uint8_t rgba[4 * 4 * 4];
    for (int i = 0; i < 16; i++) rgba[4 * i] = 200, rgba[4 * i + 1] = 100, rgba[4 * i + 2] = 50, rgba[4 * i + 3] = i == 0 ? 0 : 255;
    ck_assert(stbi_write_png(tmp("rgba.png"), 4, 4, 4, rgba, 16));
    uint8_t rgb[48], grey[16], ga[32];
    for (int i = 0; i < 16; i++) {
        rgb[3 * i] = 200, rgb[3 * i + 1] = 100, rgb[3 * i + 2] = 50;
        grey[i] = 77, ga[2 * i] = 77, ga[2 * i + 1] = i == 0 ? 0 : 255;
    }
    ck_assert(stbi_write_png(tmp("rgb.png"), 4, 4, 3, rgb, 12));
    ck_assert(stbi_write_png(tmp("grey.png"), 4, 4, 1, grey, 4));
    ck_assert(stbi_write_png(tmp("ga.png"), 4, 4, 2, ga, 8));
    ck_assert(stbi_write_bmp(tmp("rgb.bmp"), 4, 4, 3, rgb));
    ck_assert(stbi_write_tga(tmp("rgba.tga"), 4, 4, 4, rgba));
    ck_assert(stbi_write_jpg(tmp("rgb.jpg"), 4, 4, 3, rgb, 95));
    const char *opaque[] = {"rgb.png", "rgb.bmp", "rgb.jpg"};
    for (int i = 0; i < 3; i++) {
        vlp_image img = load_ok(tmp(opaque[i]), &o);
        ck_assert(img.w == 4 && img.h == 4);
        expect_pixel(&img, 2, 2, 200, 100, 50, i == 2 ? 6 : 0);
        vlp_image_free(&img);
    }
    const char *alpha[] = {"rgba.png", "rgba.tga"};
    for (int i = 0; i < 2; i++) {
        vlp_image img = load_ok(tmp(alpha[i]), &o);
        expect_pixel(&img, 0, 0, 10, 20, 30, 0); /* transparent: the background */
        expect_pixel(&img, 1, 0, 200, 100, 50, 0);
        vlp_image_free(&img);
    }
    vlp_image img = load_ok(tmp("grey.png"), &o);
    expect_pixel(&img, 3, 3, 77, 77, 77, 0);
    vlp_image_free(&img);
    img = load_ok(tmp("ga.png"), &o);
    expect_pixel(&img, 0, 0, 10, 20, 30, 0);
    expect_pixel(&img, 1, 1, 77, 77, 77, 0);
    vlp_image_free(&img);

    /* 16-bit RGB PNG: 0xC8xx reduces to 200 */
    uint8_t rgb16[2 * 2 * 6];
    for (int i = 0; i < 4; i++) rgb16[6 * i] = 200, rgb16[6 * i + 1] = 0, rgb16[6 * i + 2] = 100,
                                rgb16[6 * i + 3] = 0, rgb16[6 * i + 4] = 50, rgb16[6 * i + 5] = 0;
    write_png(tmp("rgb16.png"), 2, 2, 16, 2, rgb16, 12, NULL, 0);
    img = load_ok(tmp("rgb16.png"), &o);
    expect_pixel(&img, 1, 1, 200, 100, 50, 1);
    vlp_image_free(&img);
    /* palette PNG */
    uint8_t plte[6] = {255, 0, 0, 0, 0, 255}, idx[4] = {0, 1, 1, 0};
    write_png(tmp("palette.png"), 2, 2, 8, 3, idx, 2, plte, 2);
    img = load_ok(tmp("palette.png"), &o);
    expect_pixel(&img, 0, 0, 255, 0, 0, 0);
    expect_pixel(&img, 1, 0, 0, 0, 255, 0);
    vlp_image_free(&img);
    /* GIF, PGM, PPM */
    write_file(tmp("tiny.gif"), gif_2x2, sizeof gif_2x2);
    img = load_ok(tmp("tiny.gif"), &o);
    ck_assert(img.w == 2 && img.h == 2);
    expect_pixel(&img, 0, 0, 255, 0, 0, 0);
    expect_pixel(&img, 1, 1, 255, 255, 255, 0);
    vlp_image_free(&img);
    const char pgm[] = "P5\n2 1\n255\n\x10\xf0";
    write_file(tmp("grey.pgm"), pgm, sizeof pgm - 1);
    img = load_ok(tmp("grey.pgm"), &o);
    expect_pixel(&img, 1, 0, 0xf0, 0xf0, 0xf0, 0);
    vlp_image_free(&img);
    const char ppm[] = "P6\n1 1\n255\n\x01\x02\x03";
    write_file(tmp("c.ppm"), ppm, sizeof ppm - 1);
    img = load_ok(tmp("c.ppm"), &o);
    expect_pixel(&img, 0, 0, 1, 2, 3, 0);
    vlp_image_free(&img);
}
END_TEST

/* Real package files, where their packages are installed (setup.sh installs them). */
START_TEST(test_decode_package_files) {
    const char *dirs[] = {"/usr/share/tuxpaint/stamps/animals/birds", "/usr/share/tuxpaint/stamps/food"};
    int decoded = 0;
    for (int d = 0; d < 2; d++) {
        DIR *dir = opendir(dirs[d]);
        if (!dir) continue;
        struct dirent *e;
        while ((e = readdir(dir)) && decoded < 40) {
            if (!strstr(e->d_name, ".png")) continue;
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dirs[d], e->d_name);
            vlp_image img = load_ok(path, NULL);
            ck_assert(img.w > 0 && img.h > 0);
            vlp_image_free(&img);
            decoded++;
        }
        closedir(dir);
    }
    printf("decoded %d Tux Paint stamps\n", decoded);
    ck_assert_msg(decoded > 0, "no Tux Paint stamp found: install tuxpaint-stamps-default");
}
END_TEST

START_TEST(test_bad_files) {
    uint8_t rgb[3 * 16 * 16];
    for (int i = 0; i < (int)sizeof rgb; i++) rgb[i] = (uint8_t)i;
    ck_assert(stbi_write_jpg(tmp("whole.jpg"), 16, 16, 3, rgb, 90));
    FILE *f = fopen(tmp("whole.jpg"), "rb");
    uint8_t buf[8192];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_file(tmp("truncated.jpg"), buf, n / 3);
    write_file(tmp("empty.png"), "", 0);
    write_file(tmp("text.png"), "hello, I am not a picture\n", 26);
    /* A PNG header declaring 100000 x 100000 pixels and no data. */
    uint8_t huge[64], ihdr[13] = {0};
    memcpy(huge, "\x89PNG\r\n\x1a\n", 8);
    put32(ihdr, 100000), put32(ihdr + 4, 100000), ihdr[8] = 8, ihdr[9] = 2;
    size_t hn = 8 + chunk(huge + 8, "IHDR", ihdr, 13);
    write_file(tmp("huge.png"), huge, hn);
    struct { const char *name; int code; const char *says; } cases[] = {
        {"truncated.jpg", VLP_EFORMAT, "truncated.jpg"}, {"empty.png", VLP_EFORMAT, "empty"},
        {"text.png", VLP_EFORMAT, "text.png"}, {"missing.png", VLP_EIO, "missing.png"},
        {"huge.png", VLP_EINVAL, "100000x100000"}};
    /* Under stb's own limit but over ours: refused by the declared size. */
    put32(ihdr, 9000), put32(ihdr + 4, 9000);
    hn = 8 + chunk(huge + 8, "IHDR", ihdr, 13);
    write_file(tmp("big.png"), huge, hn);
    vlp_image big;
    vlp_image_opts limit = {.max_pixels = 1000 * 1000};
    ck_assert_int_eq(vlp_image_load(&big, tmp("big.png"), &limit), VLP_EINVAL);
    ck_assert_msg(strstr(vlp_error_message(), "9000x9000 pixels is more than the limit of 1000000"),
                  "%s", vlp_error_message());
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vlp_image img;
        int rc = vlp_image_load(&img, tmp(cases[i].name), NULL);
        printf("%-14s -> %s\n", cases[i].name, vlp_error_message());
        ck_assert_msg(rc == cases[i].code, "%s: code %d, want %d", cases[i].name, rc, cases[i].code);
        ck_assert_msg(strstr(vlp_error_message(), cases[i].says), "message '%s' lacks '%s'",
                      vlp_error_message(), cases[i].says);
        ck_assert_ptr_null(img.rgb);
    }
}
END_TEST

START_TEST(test_transforms) {
    /* 8x4 image: left half black, right half white. */
    vlp_image src = {.w = 8, .h = 4, .rgb = calloc(8 * 4 * 3, 1)};
    for (int y = 0; y < 4; y++)
        for (int x = 4; x < 8; x++) memset(src.rgb + (y * 8 + x) * 3, 255, 3);
    vlp_image c;
    ck_assert_int_eq(vlp_image_center(&c, &src, 4), VLP_OK); /* the centre 4x4: two columns of each */
    expect_pixel(&c, 0, 0, 0, 0, 0, 0);
    expect_pixel(&c, 3, 3, 255, 255, 255, 0);
    vlp_image_free(&c);
    ck_assert_int_eq(vlp_image_resize_box(&c, &src, 0, 0, 4, 4, 9, 9), VLP_OK); /* black stays black */
    for (int i = 0; i < 81 * 3; i++) ck_assert_int_eq(c.rgb[i], 0);
    vlp_image_free(&c);
    /* flip with probability 1 mirrors; the crop stays within the image */
    vlp_rng rng;
    vlp_rng_init(&rng, 1);
    ck_assert_int_eq(vlp_image_random_crop(&c, &src, 4, 1.0f, 1.0f, 1.0f, &rng), VLP_OK);
    ck_assert(c.w == 4 && c.h == 4);
    ck_assert_int_gt(c.rgb[0], 128);              /* white now on the left */
    ck_assert_int_lt(c.rgb[(4 * 4 - 1) * 3], 128); /* black on the right */
    vlp_image_free(&c);
    float out[3 * 4 * 4];
    uint8_t white[4 * 4 * 3];
    memset(white, 255, sizeof white);
    vlp_image_normalize(out, white, 4, VLP_CLIP_MEAN, VLP_CLIP_STD);
    ck_assert_float_eq_tol(out[0], (1.0f - VLP_CLIP_MEAN[0]) / VLP_CLIP_STD[0], 1e-5f);
    ck_assert_float_eq_tol(out[2 * 16 + 5], (1.0f - VLP_CLIP_MEAN[2]) / VLP_CLIP_STD[2], 1e-5f);
    vlp_image_free(&src);
}
END_TEST

/* ColorJitter and RandomGrayscale: strength 0 changes nothing and draws
 * nothing; a grey image stays grey under contrast and saturation; each
 * factor stays within [1 - s, 1 + s]; grayscale 1 gives equal channels
 * at the pixel's luma. */
START_TEST(test_color_jitter) {
    enum { N = 16 };
    uint8_t colours[N * 3];
    for (int i = 0; i < N * 3; i++) colours[i] = (uint8_t)(17 * i + 5);
    vlp_image img = {.w = 4, .h = 4, .rgb = malloc(N * 3)};
    vlp_rng rng, before;
    vlp_rng_init(&rng, 9);
    memcpy(img.rgb, colours, sizeof colours);
    before = rng;
    vlp_image_color_jitter(&img, 0, 0, 0, 0, &rng);
    ck_assert_mem_eq(img.rgb, colours, sizeof colours);
    ck_assert_uint_eq(vlp_rng_u64(&rng), vlp_rng_u64(&before));

    for (int trial = 0; trial < 200; trial++) { /* grey 100: only brightness moves it */
        memset(img.rgb, 100, N * 3);
        vlp_image_color_jitter(&img, 0.4f, 0.4f, 0.4f, 0, &rng);
        for (int i = 0; i < N * 3; i++) {
            ck_assert_int_eq(img.rgb[i], img.rgb[0]);
            ck_assert(img.rgb[i] >= 60 && img.rgb[i] <= 140);
        }
    }
    bool changed = false;
    for (int trial = 0; trial < 20; trial++) { /* saturation alone keeps each pixel's luma */
        memcpy(img.rgb, colours, sizeof colours);
        vlp_image_color_jitter(&img, 0, 0, 0.5f, 0, &rng);
        for (int i = 0; i < N; i++) {
            const uint8_t *a = colours + 3 * i, *b = img.rgb + 3 * i;
            float la = 0.299f * a[0] + 0.587f * a[1] + 0.114f * a[2];
            float lb = 0.299f * b[0] + 0.587f * b[1] + 0.114f * b[2];
            bool clipped = false;
            for (int k = 0; k < 3; k++) clipped |= b[k] == 0 || b[k] == 255;
            if (!clipped) ck_assert_float_eq_tol(la, lb, 1.0f); /* rounding to bytes */
        }
        changed |= memcmp(img.rgb, colours, sizeof colours) != 0;
    }
    ck_assert(changed);
    memcpy(img.rgb, colours, sizeof colours);
    vlp_image_color_jitter(&img, 0, 0, 0, 1.0f, &rng);
    for (int i = 0; i < N; i++) {
        const uint8_t *a = colours + 3 * i, *b = img.rgb + 3 * i;
        ck_assert(b[0] == b[1] && b[1] == b[2]);
        ck_assert_float_eq_tol(b[0], 0.299f * a[0] + 0.587f * a[1] + 0.114f * a[2], 0.51f);
    }
    vlp_image_free(&img);
}
END_TEST

START_TEST(test_blur_posterize) {
    enum { W = 9 };
    vlp_image img = {.w = W, .h = W, .rgb = calloc(W * W * 3, 1)};
    /* an impulse at the centre: the separable kernel's outer product, symmetric, summing to it */
    for (int k = 0; k < 3; k++) img.rgb[(4 * W + 4) * 3 + k] = 255;
    ck_assert_int_eq(vlp_image_blur(&img, 1.0f), VLP_OK);
    double k0 = 1.0 / (1 + 2 * (exp(-0.5) + exp(-2.0) + exp(-4.5))); /* the centre tap, sigma 1 */
    ck_assert_int_eq(img.rgb[(4 * W + 4) * 3], (int)lround(255 * k0 * k0));
    long total = 0;
    for (int y = 0; y < W; y++)
        for (int x = 0; x < W; x++) {
            const uint8_t *p = img.rgb + (y * W + x) * 3;
            ck_assert(p[0] == p[1] && p[1] == p[2]);
            ck_assert_int_eq(p[0], img.rgb[(x * W + y) * 3]);             /* transposed */
            ck_assert_int_eq(p[0], img.rgb[(y * W + (W - 1 - x)) * 3]);   /* mirrored */
            ck_assert_int_le(p[0], img.rgb[(4 * W + 4) * 3]);
            total += p[0];
        }
    ck_assert(labs(total - 255) <= 20); /* 81 pixels, each rounded to a byte */
    /* a constant image stays (reflected edges, a kernel summing to 1), also
     * one pixel wide and with a kernel wider than the image */
    vlp_image thin = {.w = 1, .h = 5, .rgb = malloc(15)};
    memset(thin.rgb, 77, 15);
    ck_assert_int_eq(vlp_image_blur(&thin, 2.0f), VLP_OK);
    for (int i = 0; i < 15; i++) ck_assert_int_eq(thin.rgb[i], 77);
    /* posterize 3: the top 3 bits of every byte */
    for (int i = 0; i < 15; i++) thin.rgb[i] = (uint8_t)(17 * i);
    vlp_image_posterize(&thin, 3);
    for (int i = 0; i < 15; i++) ck_assert_int_eq(thin.rgb[i], (17 * i) & 0xE0);
    vlp_image_free(&thin);
    vlp_image_free(&img);
}
END_TEST

/* ---- dataset formats ------------------------------------------------------------------- */

static void write_text(const char *path, const char *text) { write_file(path, text, strlen(text)); }

/* Images img0..img{n-1}.png of 6x6 pixels filled with value 10 * i. */
static void write_images(const char *dir, int n) {
    make_dirs(dir);
    for (int i = 0; i < n; i++) {
        uint8_t px[6 * 6 * 3];
        memset(px, 10 * i, sizeof px);
        char path[512];
        snprintf(path, sizeof path, "%s/img%d.png", dir, i);
        ck_assert(stbi_write_png(path, 6, 6, 3, px, 18));
    }
}

START_TEST(test_manifests) {
    write_images(tmp("m/images"), 3);
    write_text(tmp("m/train.tsv"),
               "filepath\ttitle\tclass_id\n"
               "images/img0.png\ta cat\t2\n"
               "images/img1.png\t\"a \"\"quoted\"\" dog, with\ttab\"\t0\n"
               "\n"
               "images/img2.png\ta bird\t\n");
    vlp_dataset ds;
    int rc = vlp_dataset_open(&ds, tmp("m/train.tsv"), NULL);
    ck_assert_msg(rc == VLP_OK, "%s", vlp_error_message());
    ck_assert_int_eq(ds.n, 3);
    ck_assert_str_eq(ds.samples[1].caption, "a \"quoted\" dog, with\ttab");
    ck_assert_str_eq(ds.samples[0].path, tmp("m/images/img0.png"));
    ck_assert_int_eq(ds.samples[0].class_id, 2);
    ck_assert_int_eq(ds.samples[2].class_id, -1);
    ck_assert_int_eq(ds.samples[2].concept_id, -1);
    vlp_image img;
    ck_assert_int_eq(vlp_dataset_image(&ds, 2, &img, NULL), VLP_OK);
    expect_pixel(&img, 0, 0, 20, 20, 20, 0);
    vlp_image_free(&img);
    vlp_dataset_free(&ds);

    /* another separator and other column names */
    write_text(tmp("m/pairs.csv"), "caption,image\n\"one, two\",images/img1.png\n");
    vlp_manifest_opts o = {.image_key = "image", .caption_key = "caption"};
    ck_assert_int_eq(vlp_dataset_open(&ds, tmp("m/pairs.csv"), &o), VLP_OK);
    ck_assert_str_eq(ds.samples[0].caption, "one, two");
    vlp_dataset_free(&ds);

    struct { const char *text; const char *says; } bad[] = {
        {"path\ttitle\nx.png\ta\n", ":1: no column 'filepath'"},
        {"filepath\ttitle\nx.png\ta\ty\n", ":2: 3 fields, the header has 2"},
        {"filepath\ttitle\tclass_id\nx.png\ta\tseven\n", ":2: column class_id: 'seven'"},
        {"filepath\ttitle\n", "no samples"},
        {"", "empty file"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(tmp("m/bad.tsv"), bad[i].text);
        ck_assert_int_eq(vlp_dataset_open(&ds, tmp("m/bad.tsv"), NULL), VLP_EFORMAT);
        ck_assert_msg(strstr(vlp_error_message(), bad[i].says) && strstr(vlp_error_message(), "bad.tsv"),
                      "'%s' lacks '%s'", vlp_error_message(), bad[i].says);
    }
    ck_assert_int_eq(vlp_dataset_open(&ds, tmp("m/none.tsv"), NULL), VLP_EIO);
    ck_assert(strstr(vlp_error_message(), "none.tsv"));
}
END_TEST

START_TEST(test_folders) {
    write_images(tmp("caps/a"), 2);
    write_images(tmp("caps/b"), 1);
    write_text(tmp("caps/a/img0.txt"), "\n  a  black \t square \nun carré noir\n");
    write_text(tmp("caps/a/img1.txt"), "grey");
    write_text(tmp("caps/b/img0.txt"), "nested");
    vlp_dataset ds;
    ck_assert_int_eq(vlp_dataset_open(&ds, tmp("caps"), NULL), VLP_OK);
    ck_assert_int_eq(ds.n, 3);
    ck_assert_str_eq(ds.samples[0].caption, "a black square");
    ck_assert_str_eq(ds.samples[2].caption, "nested");
    vlp_dataset_free(&ds);

    write_images(tmp("classes/ankle_boot"), 2);
    write_images(tmp("classes/bag"), 3);
    ck_assert_int_eq(vlp_dataset_open(&ds, tmp("classes"), NULL), VLP_OK);
    ck_assert_int_eq(ds.n, 5);
    ck_assert_int_eq(ds.n_classes, 2);
    ck_assert_str_eq(ds.class_names[0], "ankle boot");
    ck_assert_str_eq(ds.samples[4].caption, "bag");
    ck_assert_int_eq(ds.samples[4].class_id, 1);
    vlp_dataset_free(&ds);
}
END_TEST

START_TEST(test_shard_roundtrip) {
    write_images(tmp("s/images"), 4);
    write_text(tmp("s/images/broken.png"), "not an image");
    write_text(tmp("s/list.tsv"), "filepath\ttitle\tconcept_id\nimages/img0.png\tzero\t5\n"
                                  "images/broken.png\tbroken\t6\nimages/img3.png\tthree é\t7\n");
    vlp_dataset ds, packed;
    ck_assert_int_eq(vlp_dataset_open(&ds, tmp("s/list.tsv"), NULL), VLP_OK);
    long skipped;
    int rc = vlp_shard_pack(&ds, tmp("s/shard.h5"), 4, NULL, &skipped);
    ck_assert_msg(rc == VLP_OK, "%s", vlp_error_message());
    ck_assert_int_eq(skipped, 1);
    ck_assert_int_eq(vlp_dataset_open(&packed, tmp("s/shard.h5"), NULL), VLP_OK);
    ck_assert_int_eq(packed.n, 2);
    ck_assert_int_eq(vlp_dataset_image_size(&packed), 4);
    ck_assert_str_eq(packed.samples[1].caption, "three é");
    ck_assert_int_eq(packed.samples[1].concept_id, 7);
    ck_assert_int_eq(packed.samples[0].class_id, -1);
    vlp_image img;
    ck_assert_int_eq(vlp_dataset_image(&packed, 1, &img, NULL), VLP_OK);
    ck_assert(img.w == 4 && img.h == 4);
    expect_pixel(&img, 3, 3, 30, 30, 30, 0);
    vlp_image_free(&img);
    vlp_dataset_free(&packed);
    vlp_dataset_free(&ds);
    write_text(tmp("s/fake.h5"), "not hdf5");
    ck_assert_int_eq(vlp_dataset_open(&packed, tmp("s/fake.h5"), NULL), VLP_EIO);
    ck_assert(strstr(vlp_error_message(), "fake.h5"));
}
END_TEST

/* ---- sharding and the loader -------------------------------------------------------------- */

START_TEST(test_sharding_covers_every_index_once) {
    long n = 103, order[103], order2[103], pos[64];
    for (int world = 1; world <= 4; world++)
        for (int epoch = 0; epoch < 2; epoch++) {
            vlp_epoch_order(order, n, 42, epoch, true);
            vlp_epoch_order(order2, n, 42, epoch, true);
            ck_assert_mem_eq(order, order2, sizeof order); /* same seed, same order */
            int seen[103] = {0};
            long steps = vlp_steps_per_epoch(n, world, 8, false);
            for (int rank = 0; rank < world; rank++)
                for (long s = 0; s < steps; s++) {
                    int k = vlp_rank_positions(pos, n, world, 8, rank, false, s);
                    for (int j = 0; j < k; j++) seen[order[pos[j]]]++;
                }
            for (long i = 0; i < n; i++)
                ck_assert_msg(seen[i] == 1, "W=%d epoch %d: index %ld seen %d times", world, epoch, i, seen[i]);
        }
    vlp_epoch_order(order2, n, 42, 1, true);
    vlp_epoch_order(order, n, 42, 0, true);
    ck_assert(memcmp(order, order2, sizeof order) != 0); /* epochs differ */
    ck_assert_int_eq(vlp_steps_per_epoch(103, 4, 8, true), 3);
    ck_assert_int_eq(vlp_rank_positions(pos, 103, 4, 8, 3, true, 3), 0);
}
END_TEST

/* Every batch of a run as (index, first pixel) pairs. */
static void run_loader(const vlp_dataset *ds, int workers, long epoch, long step, int batches,
                       long *index, float *pixel) {
    vlp_loader_opts o = vlp_loader_defaults(3, 4);
    o.workers = workers;
    o.seed = 9;
    o.flip = 0.5f;
    vlp_loader *l;
    ck_assert_int_eq(vlp_loader_open(&l, ds, &o, epoch, step), VLP_OK);
    for (int b = 0; b < batches; b++) {
        vlp_batch *batch;
        ck_assert_int_eq(vlp_loader_next(l, &batch), VLP_OK);
        ck_assert_int_eq(batch->n, 3);
        for (int j = 0; j < 3; j++) {
            index[b * 3 + j] = batch->index[j];
            pixel[b * 3 + j] = batch->images[j * 48 + 17];
        }
    }
    vlp_loader_close(l);
}

START_TEST(test_loader_deterministic_and_resumable) {
    write_images(tmp("l/images"), 10);
    char manifest[2048] = "filepath\ttitle\n";
    for (int i = 0; i < 10; i++)
        snprintf(manifest + strlen(manifest), sizeof manifest - strlen(manifest), "images/img%d.png\tc%d\n", i, i);
    write_text(tmp("l/list.tsv"), manifest);
    vlp_dataset ds;
    ck_assert_int_eq(vlp_dataset_open(&ds, tmp("l/list.tsv"), NULL), VLP_OK);
    long a[30], b[30], c[30];
    float pa[30], pb[30], pc[30];
    run_loader(&ds, 1, 0, 0, 10, a, pa); /* 3 steps per epoch: 10 batches cross 3 epochs */
    run_loader(&ds, 2, 0, 0, 10, b, pb);
    ck_assert_mem_eq(a, b, sizeof a); /* the thread count changes nothing */
    ck_assert_mem_eq(pa, pb, sizeof pa);
    run_loader(&ds, 2, 1, 1, 6, c, pc); /* resume at epoch 1, step 1 = batch 4 */
    ck_assert_mem_eq(a + 12, c, sizeof(long) * 18);
    ck_assert_mem_eq(pa + 12, pc, sizeof(float) * 18);
    vlp_dataset_free(&ds);
}
END_TEST

START_TEST(test_loader_skips_bad_images) {
    write_images(tmp("bad/images"), 3);
    write_text(tmp("bad/images/text.png"), "not a png");
    write_file(tmp("bad/images/empty.jpg"), "", 0);
    write_text(tmp("bad/list.tsv"), "filepath\ttitle\nimages/img0.png\ta\nimages/text.png\tb\n"
                                    "images/missing.png\tc\nimages/img1.png\td\nimages/empty.jpg\te\n"
                                    "images/img2.png\tf\n");
    vlp_dataset ds;
    ck_assert_int_eq(vlp_dataset_open(&ds, tmp("bad/list.tsv"), NULL), VLP_OK);
    vlp_loader_opts o = vlp_loader_defaults(2, 4);
    o.workers = 2;
    vlp_loader *l;
    ck_assert_int_eq(vlp_loader_open(&l, &ds, &o, 0, 0), VLP_OK);
    vlp_batch *batch;
    int skipped = 0;
    for (int s = 0; s < 3; s++) { /* the whole first epoch */
        ck_assert_int_eq(vlp_loader_next(l, &batch), VLP_OK);
        for (int j = 0; j < batch->n; j++) {
            const char *cap = batch->caption[j];
            ck_assert_msg(!strcmp(cap, "a") || !strcmp(cap, "d") || !strcmp(cap, "f"), "got %s", cap);
        }
        skipped += batch->skipped;
    }
    ck_assert_int_eq(skipped, 3);
    vlp_loader_close(l);
    vlp_dataset_free(&ds);

    /* Every image broken: a clear error, not a hang. */
    write_text(tmp("bad/all.tsv"), "filepath\ttitle\nimages/text.png\tb\nimages/missing.png\tc\n");
    ck_assert_int_eq(vlp_dataset_open(&ds, tmp("bad/all.tsv"), NULL), VLP_OK);
    o.batch_size = 1;
    ck_assert_int_eq(vlp_loader_open(&l, &ds, &o, 0, 0), VLP_OK);
    ck_assert_int_eq(vlp_loader_next(l, &batch), VLP_EFORMAT);
    ck_assert(strstr(vlp_error_message(), "no image of the dataset can be read"));
    vlp_loader_close(l);
    vlp_dataset_free(&ds);
}
END_TEST

START_TEST(test_loader_tokenizes_and_counts_cut_captions) {
    write_images(tmp("tok/images"), 3);
    const char *captions[] = {"a red fox", "one two three four five six seven eight nine ten", "a fox"};
    write_text(tmp("tok/list.tsv"), "filepath\ttitle\nimages/img0.png\ta red fox\n"
                                    "images/img1.png\tone two three four five six seven eight nine ten\n"
                                    "images/img2.png\ta fox\n");
    vlp_dataset ds;
    ck_assert_int_eq(vlp_dataset_open(&ds, tmp("tok/list.tsv"), NULL), VLP_OK);
    vlp_tokenizer *tok;
    ck_assert_int_eq(vlp_tokenizer_train(&tok, captions, 3, 600), VLP_OK);
    vlp_loader_opts o = vlp_loader_defaults(1, 4);
    o.tokenizer = tok, o.context_length = 6; /* 4 tokens: the second caption is cut, "a red fox" fits */
    vlp_loader *l;
    ck_assert_int_eq(vlp_loader_open(&l, &ds, &o, 0, 0), VLP_OK);
    vlp_batch *batch;
    int cut[2] = {0, 0};
    for (int s = 0; s < 6; s++) { /* two epochs */
        ck_assert_int_eq(vlp_loader_next(l, &batch), VLP_OK);
        int want[6];
        ck_assert_int_eq(vlp_tokenizer_encode(tok, batch->caption[0], want, 6, NULL), VLP_OK);
        ck_assert_mem_eq(batch->ids, want, sizeof want);
        ck_assert_int_eq(batch->cut, strstr(batch->caption[0], "ten") != NULL);
        ck_assert_int_eq(batch->skipped, 0);
        cut[batch->epoch] += batch->cut;
    }
    ck_assert_int_eq(cut[0], 1);
    ck_assert_int_eq(cut[1], 1);
    vlp_loader_close(l);
    o.context_length = 1;
    ck_assert_int_eq(vlp_loader_open(&l, &ds, &o, 0, 0), VLP_EINVAL);
    vlp_tokenizer_free(tok);
    vlp_dataset_free(&ds);
}
END_TEST

/* ---- hostile and careless input ------------------------------------------------------------ */

static void expect_error(int rc, int want, const char *says) {
    ck_assert_msg(rc == want && strstr(vlp_error_message(), says), "rc %d, '%s' lacks '%s'", rc,
                  vlp_error_message(), says);
}

/* A FIFO, a directory or a device where a file belongs: refused at once
 * (a FIFO used to hang open() for ever), and skipped in training. */
START_TEST(test_not_regular_files) {
    make_dirs(tmp("nr/images"));
    write_images(tmp("nr/images"), 2);
    ck_assert_int_eq(mkfifo(tmp("nr/images/fifo.png"), 0600), 0);
    ck_assert_int_eq(mkfifo(tmp("nr/fifo.tsv"), 0600), 0);
    make_dirs(tmp("nr/images/dir.png"));
    vlp_image img;
    expect_error(vlp_image_load(&img, tmp("nr/images/fifo.png"), NULL), VLP_EIO,
                 "fifo.png: not a regular file (a FIFO)");
    expect_error(vlp_image_load(&img, tmp("nr/images/dir.png"), NULL), VLP_EIO,
                 "dir.png: not a regular file (a directory)");
    expect_error(vlp_image_load(&img, "/dev/zero", NULL), VLP_EIO, "/dev/zero: not a regular file (a device)");
    expect_error(vlp_image_load(&img, tmp("nr/images/none.png"), NULL), VLP_EIO,
                 "none.png: No such file or directory");
    vlp_dataset ds;
    expect_error(vlp_dataset_open(&ds, tmp("nr/fifo.tsv"), NULL), VLP_EIO, "fifo.tsv: not a regular file (a FIFO)");
    ck_assert_int_eq(mkfifo(tmp("nr/fifo.h5"), 0600), 0);
    expect_error(vlp_dataset_open(&ds, tmp("nr/fifo.h5"), NULL), VLP_EIO, "fifo.h5: not a regular file (a FIFO)");
    errno = 0;
    ck_assert_ptr_null(vlp_read_text(tmp("nr/fifo.tsv")));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert(strstr(vlp_error_message(), "fifo.tsv: not a regular file (a FIFO)"));
    ck_assert_ptr_null(vlp_read_text("/dev/zero"));
    ck_assert_ptr_null(vlp_read_text(tmp("nr")));
    ck_assert_int_eq(errno, EISDIR);
    vlp_tokenizer *tok;
    expect_error(vlp_tokenizer_load(&tok, tmp("nr/fifo.tsv"), 0), VLP_EIO, "fifo.tsv: not a regular file (a FIFO)");
    expect_error(vlp_tokenizer_load(&tok, "/dev/zero", 0), VLP_EIO, "/dev/zero: not a regular file (a device)");
    vlp_safetensors st;
    expect_error(vlp_safetensors_open(&st, tmp("nr/fifo.tsv")), VLP_EIO, "fifo.tsv: not a regular file (a FIFO)");

    /* In training: skipped and counted, as any unreadable image. */
    write_text(tmp("nr/list.tsv"), "filepath\ttitle\nimages/img0.png\ta\nimages/fifo.png\tb\n"
                                   "images/dir.png\tc\nimages/img1.png\td\n");
    ck_assert_int_eq(vlp_dataset_open(&ds, tmp("nr/list.tsv"), NULL), VLP_OK);
    vlp_loader_opts o = vlp_loader_defaults(1, 4);
    vlp_loader *l;
    ck_assert_int_eq(vlp_loader_open(&l, &ds, &o, 0, 0), VLP_OK);
    vlp_batch *batch;
    int skipped = 0;
    for (int s = 0; s < 4; s++) { /* the whole first epoch */
        ck_assert_int_eq(vlp_loader_next(l, &batch), VLP_OK);
        ck_assert(!strcmp(batch->caption[0], "a") || !strcmp(batch->caption[0], "d"));
        skipped += batch->skipped;
    }
    ck_assert_int_eq(skipped, 2);
    vlp_loader_close(l);
    vlp_dataset_free(&ds);

    /* A caption folder whose .txt is a FIFO: that image is skipped, no hang. */
    write_images(tmp("nr/caps"), 2);
    write_text(tmp("nr/caps/img0.txt"), "a caption");
    ck_assert_int_eq(mkfifo(tmp("nr/caps/img1.txt"), 0600), 0);
    ck_assert_int_eq(vlp_dataset_open(&ds, tmp("nr/caps"), NULL), VLP_OK);
    ck_assert_int_eq(ds.n, 1);
    ck_assert_str_eq(ds.samples[0].caption, "a caption");
    vlp_dataset_free(&ds);
}
END_TEST

/* Quotes: RFC 4180 in TSV and CSV, but a quote that would swallow rows is
 * an error naming its line. */
START_TEST(test_manifest_quotes) {
    write_images(tmp("q/images"), 3);
    vlp_dataset ds;
    /* as Python's csv writes a caption holding quotes; a quote inside a field is text */
    write_text(tmp("q/ok.tsv"), "filepath\ttitle\nimages/img0.png\t\"\"\"Arrow\"\" by Ed\"\n"
                                "images/img1.png\ta 5\" screen\n");
    ck_assert_int_eq(vlp_dataset_open(&ds, tmp("q/ok.tsv"), NULL), VLP_OK);
    ck_assert_int_eq(ds.n, 2);
    ck_assert_str_eq(ds.samples[0].caption, "\"Arrow\" by Ed");
    ck_assert_str_eq(ds.samples[1].caption, "a 5\" screen");
    vlp_dataset_free(&ds);
    struct { const char *name, *text, *says; } bad[] = {
        /* a caption that merely starts with a quote: used to swallow the next row */
        {"q/open.tsv", "filepath\ttitle\nimages/img0.png\t\"Arrow\" by Ed\nimages/img1.png\tb\n",
         "open.tsv:2: a quoted field does not end on its line"},
        {"q/never.tsv", "filepath\ttitle\nimages/img0.png\ta\nimages/img1.png\t\"never\nimages/img2.png\tc\n",
         "never.tsv:3: a quoted field does not end on its line"},
        {"q/eof.tsv", "filepath\ttitle\nimages/img0.png\ta\nimages/img1.png\t\"never",
         "eof.tsv:3: a quoted field does not end on its line"},
        {"q/eof.csv", "filepath,title\nimages/img0.png,a\nimages/img1.png,\"never", "eof.csv:3: a quoted field"},
        {"q/never.csv", "filepath,title\nimages/img0.png,a\n\nimages/img1.png,\"never\nimages/img2.png,c\n",
         "never.csv:4: a quoted field (starting with '\"') is never closed"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(tmp(bad[i].name), bad[i].text);
        expect_error(vlp_dataset_open(&ds, tmp(bad[i].name), NULL), VLP_EFORMAT, bad[i].says);
    }
    /* CSV keeps RFC 4180's line breaks inside quotes */
    write_text(tmp("q/lines.csv"), "filepath,title\nimages/img0.png,\"two\nlines\"\nimages/img1.png,b\n");
    ck_assert_int_eq(vlp_dataset_open(&ds, tmp("q/lines.csv"), NULL), VLP_OK);
    ck_assert_int_eq(ds.n, 2);
    ck_assert_str_eq(ds.samples[0].caption, "two\nlines");
    vlp_dataset_free(&ds);
}
END_TEST

/* A NUL byte would cut a caption or a path silently: refused with the line. */
START_TEST(test_nul_bytes) {
    write_images(tmp("nul/images"), 2);
    vlp_dataset ds;
    static const char cap[] = "filepath\ttitle\nimages/img0.png\ta\nimages/img1.png\ta cat\0 and a dog\n";
    write_file(tmp("nul/cap.tsv"), cap, sizeof cap - 1);
    expect_error(vlp_dataset_open(&ds, tmp("nul/cap.tsv"), NULL), VLP_EFORMAT, "cap.tsv:3: a NUL byte");
    static const char path[] = "filepath,title\nimages/img0.png\0.jpg,a\n";
    write_file(tmp("nul/path.csv"), path, sizeof path - 1);
    expect_error(vlp_dataset_open(&ds, tmp("nul/path.csv"), NULL), VLP_EFORMAT, "path.csv:2: a NUL byte");
    /* a caption file: that image is skipped with a warning naming file and line */
    write_images(tmp("nul/caps"), 2);
    write_text(tmp("nul/caps/img0.txt"), "fine");
    static const char txt[] = "\nhalf\0cut\n";
    write_file(tmp("nul/caps/img1.txt"), txt, sizeof txt - 1);
    ck_assert_int_eq(vlp_dataset_open(&ds, tmp("nul/caps"), NULL), VLP_OK);
    ck_assert_int_eq(ds.n, 1);
    ck_assert_str_eq(ds.samples[0].caption, "fine");
    ck_assert(strstr(vlp_error_message(), "img1.txt:2: a NUL byte in the caption"));
    vlp_dataset_free(&ds);
}
END_TEST

/* A shard as h5py writes it by default (contiguous, no compression) reads
 * like vlp's own; images of another type are refused at open. */
static void write_plain_shard(const char *path, hid_t type, int size) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[4] = {2, (hsize_t)size, (hsize_t)size, 3}, n = 2;
    uint8_t px[2 * 8 * 8 * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i < sizeof px / 2 ? 50 : 200);
    hid_t sp = H5Screate_simple(4, dims, NULL);
    hid_t d = H5Dcreate2(f, "images", type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, px), 0);
    H5Dclose(d), H5Sclose(sp);
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    H5Tset_cset(st, H5T_CSET_UTF8);
    const char *caps[2] = {"dark", "light"};
    sp = H5Screate_simple(1, &n, NULL);
    d = H5Dcreate2(f, "captions", st, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(H5Dwrite(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, caps), 0);
    H5Dclose(d), H5Sclose(sp), H5Tclose(st);
    int version = 1;
    sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "vlp_shard_version", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT, &version);
    H5Aclose(a), H5Sclose(sp), H5Fclose(f);
}

START_TEST(test_shard_layouts) {
    make_dirs(tmp("sl"));
    write_plain_shard(tmp("sl/plain.h5"), H5T_STD_U8LE, 8);
    vlp_dataset ds;
    int rc = vlp_dataset_open(&ds, tmp("sl/plain.h5"), NULL);
    ck_assert_msg(rc == VLP_OK, "%s", vlp_error_message());
    vlp_image img;
    for (int i = 0; i < 2; i++) {
        rc = vlp_dataset_image(&ds, i, &img, NULL);
        ck_assert_msg(rc == VLP_OK, "%s", vlp_error_message());
        ck_assert(img.w == 8 && img.h == 8);
        expect_pixel(&img, 7, 7, i ? 200 : 50, i ? 200 : 50, i ? 200 : 50, 0);
        vlp_image_free(&img);
    }
    /* 8x8 images for a 32x32 model: upsampled, with a warning once */
    char err_path[512];
    snprintf(err_path, sizeof err_path, "%s", tmp("sl/stderr.txt"));
    fflush(stderr);
    int saved = dup(2), fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2), close(fd);
    vlp_loader_opts o = vlp_loader_defaults(1, 32);
    vlp_loader *l;
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(vlp_loader_open(&l, &ds, &o, 0, 0), VLP_OK);
        vlp_loader_close(l);
    }
    fflush(stderr);
    dup2(saved, 2), close(saved);
    char *said = vlp_read_text(err_path);
    ck_assert_ptr_nonnull(said);
    const char *w = strstr(said, "plain.h5: its images are 8x8, smaller than the model's 32x32: they are upsampled");
    ck_assert_msg(w && !strstr(w + 1, "plain.h5: its images"), "warned: '%s'", said);
    free(said);
    vlp_dataset_free(&ds);
    write_plain_shard(tmp("sl/float.h5"), H5T_IEEE_F32LE, 8);
    expect_error(vlp_dataset_open(&ds, tmp("sl/float.h5"), NULL), VLP_EFORMAT,
                 "float.h5: images must be (N, S, S, 3) uint8; they are stored with another type");
}
END_TEST

VLP_SUITE(data_suite, "data", test_decode_every_kind, test_decode_package_files, test_bad_files, test_transforms,
          test_color_jitter, test_blur_posterize, test_manifests, test_folders, test_shard_roundtrip,
          test_sharding_covers_every_index_once, test_loader_deterministic_and_resumable,
          test_loader_skips_bad_images, test_loader_tokenizes_and_counts_cut_captions,
          test_not_regular_files, test_manifest_quotes, test_nul_bytes, test_shard_layouts)

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/vlp-test-data-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    int status = vlp_test_run(data_suite());
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return status;
}
