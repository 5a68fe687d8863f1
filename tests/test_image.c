/* Unit tests of the PIL resampler (resample.c) and the transforms built on
 * it, on cases worked out by hand. Byte-for-byte agreement with PIL itself
 * is tests/preprocess_pil.sh's job, not this file's. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "data/image.h"
#include "testutil.h"

/* A constant image stays that constant at any size, either filter, up or
 * down, whatever the window: the weights sum to one (in fixed point too). */
START_TEST(test_constant_stays_constant) {
    const int sizes[] = {1, 2, 3, 7, 16, 33, 64, 97};
    const uint8_t levels[] = {0, 1, 77, 128, 254, 255};
    uint8_t *src = malloc(97 * 97 * 3), *dst = malloc(97 * 97 * 3);
    for (int l = 0; l < 6; l++)
        for (int a = 0; a < 8; a++)
            for (int b = 0; b < 8; b++)
                for (int f = 0; f < 2; f++) {
                    int sw = sizes[a], sh = sizes[(a + 3) % 8], dw = sizes[b], dh = sizes[(b + 5) % 8];
                    memset(src, levels[l], (size_t)sw * sh * 3);
                    int filter = f ? VLP_INTERP_BILINEAR : VLP_INTERP_BICUBIC;
                    ck_assert_int_eq(vlp_resample_u8(dst, src, sw, sh, (long)sw * 3, 3, dw, dh, 0, 0, dw, dh, filter), VLP_OK);
                    for (int i = 0; i < dw * dh * 3; i++)
                        ck_assert_msg(dst[i] == levels[l], "%dx%d -> %dx%d filter %d: byte %d is %d, want %d",
                                      sw, sh, dw, dh, filter, i, dst[i], levels[l]);
                }
    free(src), free(dst);
}
END_TEST

/* A ramp along x, worked out by hand. Bilinear 4 -> 2 (scale 2, so the
 * triangle stretched to support 2): output 0 is centred at 1.0 and takes
 * inputs 0, 1, 2 at distances 0.5, 0.5, 1.5 -> weights 0.75, 0.75, 0.25 of
 * 1.75: (0 * 0.75 + 64 * 0.75 + 128 * 0.25) / 1.75 = 45.71 -> 46; output 1
 * centred at 3.0 takes inputs 1..3 (4 is past the edge): (64 * 0.25 + 128
 * * 0.75 + 192 * 0.75) / 1.75 = 146.3 -> 146. Bilinear 2 -> 4 of [0, 100]
 * (no stretch): centres 0.25, 0.75, 1.25, 1.75 -> 0, 25, 75, 100 (the
 * edges see one input only). Bicubic 2 -> 4 (Keys, a = -0.5): at 0.75 the
 * taps are inputs 0 and 1 at distances 0.25 and 0.75, k = 0.8671875 and
 * 0.2265625: 100 * 0.2265625 / 1.09375 = 20.7 -> 21; at 1.75, inputs 0 and
 * 1 at distances 1.25 and 0.25, k = -0.0703125 and 0.8671875: 100 *
 * 0.8671875 / 0.796875 = 108.8 -> 109 (the cubic overshoots at an edge). */
START_TEST(test_ramp_values) {
    uint8_t ramp[4] = {0, 64, 128, 192}, out[4];
    ck_assert_int_eq(vlp_resample_u8(out, ramp, 4, 1, 4, 1, 2, 1, 0, 0, 2, 1, VLP_INTERP_BILINEAR), VLP_OK);
    ck_assert_int_eq(out[0], 46);
    ck_assert_int_eq(out[1], 146);
    uint8_t two[2] = {0, 100};
    ck_assert_int_eq(vlp_resample_u8(out, two, 2, 1, 2, 1, 4, 1, 0, 0, 4, 1, VLP_INTERP_BILINEAR), VLP_OK);
    ck_assert_int_eq(out[0], 0);
    ck_assert_int_eq(out[1], 25);
    ck_assert_int_eq(out[2], 75);
    ck_assert_int_eq(out[3], 100);
    ck_assert_int_eq(vlp_resample_u8(out, two, 2, 1, 2, 1, 4, 1, 0, 0, 4, 1, VLP_INTERP_BICUBIC), VLP_OK);
    ck_assert_int_eq(out[0], 0);
    ck_assert_int_eq(out[1], 21);
    ck_assert_int_eq(out[2], 79);
    ck_assert_int_eq(out[3], 109);
    /* the same ramp down a column: the y pass gives the same numbers */
    ck_assert_int_eq(vlp_resample_u8(out, ramp, 1, 4, 1, 1, 1, 2, 0, 0, 1, 2, VLP_INTERP_BILINEAR), VLP_OK);
    ck_assert_int_eq(out[0], 46);
    ck_assert_int_eq(out[1], 146);
    /* a window of the output is the same bytes as the whole output's */
    ck_assert_int_eq(vlp_resample_u8(out, two, 2, 1, 2, 1, 4, 1, 2, 0, 1, 1, VLP_INTERP_BICUBIC), VLP_OK);
    ck_assert_int_eq(out[0], 79);
}
END_TEST

/* An unchanged size is a copy; an unchanged dimension is not filtered. */
START_TEST(test_identity) {
    enum { W = 13, H = 9 };
    uint8_t src[H][W][3], dst[H * 2][W][3];
    srand(3);
    for (int i = 0; i < W * H * 3; i++) ((uint8_t *)src)[i] = (uint8_t)rand();
    for (int f = 0; f < 2; f++) {
        ck_assert_int_eq(vlp_resample_u8(&dst[0][0][0], &src[0][0][0], W, H, W * 3, 3, W, H, 0, 0, W, H, f), VLP_OK);
        ck_assert(memcmp(dst, src, sizeof src) == 0);
        /* 13x9 -> 13x1: each column on its own (a column of 9 averaged) */
        ck_assert_int_eq(vlp_resample_u8(&dst[0][0][0], &src[0][0][0], W, H, W * 3, 3, W, 1, 0, 0, W, 1, f), VLP_OK);
        uint8_t col[H], one;
        for (int x = 0; x < W; x++) {
            for (int y = 0; y < H; y++) col[y] = src[y][x][1];
            ck_assert_int_eq(vlp_resample_u8(&one, col, 1, H, 1, 1, 1, 1, 0, 0, 1, 1, f), VLP_OK);
            ck_assert_int_eq(dst[0][x][1], one);
        }
    }
    vlp_image img = {.w = W, .h = H, .rgb = malloc(sizeof src)}, out;
    memcpy(img.rgb, src, sizeof src);
    ck_assert_int_eq(vlp_image_resize_crop(&out, &img, 2, 1, 5, 4, 5, 4, VLP_INTERP_BICUBIC), VLP_OK);
    for (int y = 0; y < 4; y++) ck_assert(memcmp(out.rgb + y * 15, src[1 + y][2], 15) == 0);
    vlp_image_free(&out);
    vlp_image_free(&img);
}
END_TEST

/* torchvision's sizes and offsets: a 10x3 image to S = 2 is resized to
 * int(2 * 10 / 3) = 6 x 2 and cropped at int(round(4 / 2.0)) = 2; 7x4 to 2
 * is resized to 3x2 and cropped at round(0.5) = 0 (half to even). Columns
 * of distinct colours along x and a constant y show which were kept. */
START_TEST(test_eval_sizes) {
    vlp_image img = {.w = 6, .h = 2, .rgb = malloc(6 * 2 * 3)}, out;
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 6; x++) memset(img.rgb + (y * 6 + x) * 3, 40 * x, 3);
    /* 6x2 to S = 2: 6x2 already, no resize: the columns 2 and 3 */
    ck_assert_int_eq(vlp_image_eval_transform(&out, &img, 2, VLP_INTERP_BICUBIC, VLP_RESIZE_SHORTEST), VLP_OK);
    ck_assert(out.w == 2 && out.h == 2);
    ck_assert_int_eq(out.rgb[0], 80);
    ck_assert_int_eq(out.rgb[3], 120);
    vlp_image_free(&out);
    /* squash: 6 columns into 2, each the mean of its three (bilinear, scale 3) */
    ck_assert_int_eq(vlp_image_eval_transform(&out, &img, 2, VLP_INTERP_BILINEAR, VLP_RESIZE_SQUASH), VLP_OK);
    ck_assert(out.rgb[0] < 80 && out.rgb[3] > 120);
    vlp_image_free(&out);
    vlp_image_free(&img);
    /* 3x1 (a ramp) to S = 1: 3x1 -> int(1 * 3 / 1) = 3 x 1, crop round(1.0) = 1: the middle */
    img = (vlp_image){.w = 3, .h = 1, .rgb = malloc(9)};
    for (int x = 0; x < 3; x++) memset(img.rgb + x * 3, 10 + 100 * x, 3);
    ck_assert_int_eq(vlp_image_eval_transform(&out, &img, 1, VLP_INTERP_BICUBIC, VLP_RESIZE_SHORTEST), VLP_OK);
    ck_assert_int_eq(out.rgb[0], 110);
    vlp_image_free(&out);
    vlp_image_free(&img);
    /* 4x1 to 1: crop round(1.5) = 2 (half to even); 6x1: round(2.5) = 2 */
    for (int w = 4; w <= 6; w += 2) {
        img = (vlp_image){.w = w, .h = 1, .rgb = malloc(w * 3)};
        for (int x = 0; x < w; x++) memset(img.rgb + x * 3, 10 * x, 3);
        ck_assert_int_eq(vlp_image_eval_transform(&out, &img, 1, VLP_INTERP_BICUBIC, VLP_RESIZE_SHORTEST), VLP_OK);
        ck_assert_int_eq(out.rgb[0], 20);
        vlp_image_free(&out);
        vlp_image_free(&img);
    }
}
END_TEST

/* PIL's modes: "RGBA" is resized premultiplied, so a transparent pixel's
 * colour does not bleed and a resized transparent area is black; at an
 * unchanged size the stored colour stays. "P" is resized NEAREST. */
START_TEST(test_pil_modes) {
    vlp_image img = {.w = 4, .h = 1, .rgb = malloc(12), .pil = VLP_PIL_RGBA, .pil_pixels = malloc(4)}, out;
    const uint8_t rgb[12] = {255, 0, 0, 255, 0, 0, 0, 0, 200, 0, 0, 200}, alpha[4] = {0, 0, 255, 255};
    memcpy(img.rgb, rgb, 12), memcpy(img.pil_pixels, alpha, 4);
    ck_assert_int_eq(vlp_image_resize_crop(&out, &img, 0, 0, 4, 1, 8, 1, VLP_INTERP_BICUBIC), VLP_OK);
    for (int x = 0; x < 8; x++) ck_assert_msg(out.rgb[3 * x] == 0, "red leaked into pixel %d: %d", x, out.rgb[3 * x]);
    ck_assert_int_eq(out.rgb[2], 0);        /* transparent, resized: black */
    ck_assert_int_eq(out.rgb[7 * 3 + 2], 200); /* opaque: its colour */
    vlp_image_free(&out);
    ck_assert_int_eq(vlp_image_resize_crop(&out, &img, 0, 0, 4, 1, 4, 1, VLP_INTERP_BICUBIC), VLP_OK);
    ck_assert(memcmp(out.rgb, rgb, 12) == 0); /* unchanged size: PIL copies */
    vlp_image_free(&out);
    vlp_image_free(&img);
    /* "P": 3 -> 5 NEAREST: source columns 0 0 1 2 2 (centres 0.3, 0.9, 1.5, 2.1, 2.7) */
    img = (vlp_image){.w = 3, .h = 1, .rgb = malloc(9), .pil = VLP_PIL_P};
    for (int x = 0; x < 3; x++) memset(img.rgb + 3 * x, 100 * x, 3);
    ck_assert_int_eq(vlp_image_resize_crop(&out, &img, 0, 0, 3, 1, 5, 1, VLP_INTERP_BICUBIC), VLP_OK);
    const uint8_t want[5] = {0, 0, 100, 200, 200};
    for (int x = 0; x < 5; x++) ck_assert_int_eq(out.rgb[3 * x], want[x]);
    vlp_image_free(&out);
    vlp_image_free(&img);
}
END_TEST

VLP_SUITE(suite, "image", test_constant_stays_constant, test_ramp_values, test_identity, test_eval_sizes,
          test_pil_modes)

VLP_TEST_MAIN(suite)
