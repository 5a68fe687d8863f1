/* libFuzzer harness: image decoding and the loader's preprocessing. The
 * input is an image file's bytes; it is decoded from memory, then cropped,
 * resized and normalised as vlp_loader does for training (random resized
 * crop and flip) or evaluation (centre crop), with the output side and the
 * choices drawn from a hash of the input. Not a check of pixel values. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/error.h"
#include "base/rng.h"
#include "data/image.h"
#include "fuzz_util.h"

/* 4 Mpx: the decoded RGBA is 16 MB. The default limit (64 Mpx) is what a
 * run uses; here it would make a single compressed PNG take seconds, and
 * the check that matters, refusal before decoding, is the same code. */
#define FUZZ_MAX_PIXELS (1L << 22)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT) return 0;
    uint64_t h = fuzz_hash(data, size);
    vlp_image_opts opts = vlp_image_opts_default();
    opts.max_pixels = FUZZ_MAX_PIXELS;
    opts.background[0] = (uint8_t)h, opts.background[1] = (uint8_t)(h >> 8), opts.background[2] = (uint8_t)(h >> 16);
    vlp_image img;
    int rc = vlp_image_decode(&img, data, size, "fuzz-input", &opts);
    if (rc != VLP_OK) {
        FUZZ_CHECK(rc < 0 && img.rgb == NULL, "failed decode left rc %d, rgb %p", rc, (void *)img.rgb);
        FUZZ_CHECK(vlp_error_message()[0] != '\0', "failed decode without a message");
        return 0;
    }
    FUZZ_CHECK(img.rgb && img.w > 0 && img.h > 0 && (long)img.w * img.h <= FUZZ_MAX_PIXELS,
               "decoded %dx%d", img.w, img.h);

    /* The loader's transforms (loader.c load_one): S from 1 to 96. */
    int S = 1 + (int)((h >> 24) % 96);
    vlp_image out = {0};
    int mode = (int)((h >> 40) % 3);
    if (mode == 0) {
        vlp_rng rng;
        vlp_rng_init(&rng, h);
        float smin = 0.05f + 0.95f * (float)((h >> 48) & 0xff) / 255.0f;
        rc = vlp_image_random_crop(&out, &img, S, smin, 1.0f, (h >> 56) & 1 ? 0.5f : 0.0f, &rng);
    } else if (mode == 1 && img.w == S && img.h == S) {
        out = img, img.rgb = NULL;
    } else {
        rc = vlp_image_center(&out, &img, S);
    }
    vlp_image_free(&img);
    FUZZ_CHECK(rc == VLP_OK, "transform of a decoded image failed: %s", vlp_error_message());
    FUZZ_CHECK(out.w == S && out.h == S, "transform gave %dx%d, not %dx%d", out.w, out.h, S, S);
    float *x = malloc(sizeof(float) * 3 * (size_t)S * (size_t)S);
    FUZZ_CHECK(x != NULL, "out of memory");
    vlp_image_normalize(x, out.rgb, S, VLP_CLIP_MEAN, VLP_CLIP_STD);
    for (long i = 0; i < 3L * S * S; i++) FUZZ_CHECK(isfinite(x[i]) && fabsf(x[i]) < 3.0f, "x[%ld] = %g", i, x[i]);
    free(x);
    vlp_image_free(&out);
    return 0;
}
