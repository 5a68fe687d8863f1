/* Images for training and evaluation: decode (JPEG with libjpeg-turbo as
 * PIL does, other formats with stb_image) into 8-bit RGB, resize with
 * PIL's resampler (resample.c), centre crop as torchvision, random resized
 * crop and flip, colour jitter, and normalisation into the model's
 * (3, S, S) float layout. Not a dataset: see dataset.h. docs/preprocessing.md
 * says what equals PIL + torchvision and how that was checked. */
#ifndef VLP_IMAGE_H
#define VLP_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/rng.h"

typedef struct vlp_image {
    int w, h;
    uint8_t *rgb; /* (h, w, 3), owned: what PIL's convert('RGB') gives at this size */
    /* Decoded with alpha = pil: the mode PIL would hold the image in, which
     * decides how PIL resizes it (VLP_PIL_*; 0 otherwise), and the pixels it
     * resizes when they are not rgb (owned, NULL for RGB and P). An image
     * built by hand must be zeroed first ({.w, .h, .rgb} is), and is moved,
     * never copied: vlp_image_free frees pil_pixels too. */
    int pil;
    void *pil_pixels;
} vlp_image;

enum {
    VLP_PIL_RGB,  /* "RGB" or "L": rgb is resized */
    VLP_PIL_RGBA, /* "RGBA" or "LA": pil_pixels is the (h, w) alpha; resized premultiplied */
    VLP_PIL_P,    /* "P" or "1": resized NEAREST whatever the filter asked */
    VLP_PIL_CMYK, /* CMYK JPEG: pil_pixels (h, w, 4) as PIL holds it; resized, then converted */
    VLP_PIL_I,    /* 16-bit grey PNG: pil_pixels (h, w) int32; resized in double, clipped to 0..255 */
};

/* [preprocess] choices (train/config.h): the resampling filter, how the
 * evaluation transform fits an image to S x S, what transparency becomes. */
enum { VLP_INTERP_BICUBIC, VLP_INTERP_BILINEAR };
enum { VLP_RESIZE_SHORTEST, VLP_RESIZE_SQUASH };
enum { VLP_ALPHA_WHITE, VLP_ALPHA_PIL };

typedef struct vlp_image_opts {
    /* VLP_ALPHA_WHITE: transparent pixels composited over background;
     * VLP_ALPHA_PIL: as PIL's convert('RGB') leaves them. */
    int alpha;
    uint8_t background[3]; /* what transparent pixels become */
    long max_pixels;       /* larger images are refused before decoding; 0: 1 << 26 */
} vlp_image_opts;

/* White background (clip art and emoji are drawn for one), default limit:
 * what a NULL opts means. */
vlp_image_opts vlp_image_opts_default(void);

/* Decodes JPEG (grey, YCbCr, CMYK; libjpeg-turbo's ISLOW DCT and fancy
 * upsampling, PIL's settings), PNG (8/16-bit, palette), BMP, GIF (first
 * frame), PGM/PPM, in grey, grey+alpha, RGB or RGBA. name is for messages
 * (a path). The declared size is checked against max_pixels before any
 * pixel is decoded. Errors: VLP_EFORMAT (not an image, truncated),
 * VLP_EINVAL (too large), VLP_EIO (unreadable file). */
int vlp_image_decode(vlp_image *out, const uint8_t *bytes, size_t n, const char *name,
                     const vlp_image_opts *opts);
int vlp_image_load(vlp_image *out, const char *path, const vlp_image_opts *opts);
void vlp_image_free(vlp_image *img);

/* PIL's img.crop(box).resize((dw, dh), filter) then convert('RGB'):
 * src's box (x, y, w, h) resized to dst (dw, dh), allocated, with
 * interpolation VLP_INTERP_*. The filter's support is clamped at the box's
 * edges (the crop is an image of its own, as torchvision's resized_crop).
 * A box of the output's size is copied. src->pil decides the rest (alpha
 * premultiplied, palettes NEAREST), so the pixels equal PIL's. */
int vlp_image_resize_crop(vlp_image *dst, const vlp_image *src, int x, int y, int w, int h, int dw,
                          int dh, int interpolation);
/* The same with BICUBIC. */
int vlp_image_resize_box(vlp_image *dst, const vlp_image *src, int x, int y, int w, int h, int dw,
                         int dh);

/* torchvision's evaluation transform on a PIL image, to S x S:
 * VLP_RESIZE_SHORTEST: Resize(S) (the short side to S, the long one to
 * int(S * long / short)) then CenterCrop(S) (offsets int(round((d) / 2.0)),
 * half to even); VLP_RESIZE_SQUASH: Resize((S, S)). Only the kept window
 * of the resized image is computed. */
int vlp_image_eval_transform(vlp_image *dst, const vlp_image *src, int S, int interpolation,
                             int resize_mode);
/* CLIP's: BICUBIC, shortest side. */
int vlp_image_center(vlp_image *dst, const vlp_image *src, int S);

/* OpenCLIP's training transform: a random box of area scale in [smin, smax]
 * of the image and aspect ratio in [3/4, 4/3] (log-uniform), cropped then
 * resized to S x S with interpolation (torchvision's resized_crop), then
 * mirrored with probability flip (0 for none). */
int vlp_image_random_resized_crop(vlp_image *dst, const vlp_image *src, int S, float smin,
                                  float smax, float flip, int interpolation, vlp_rng *rng);
/* The same with BICUBIC. */
int vlp_image_random_crop(vlp_image *dst, const vlp_image *src, int S, float smin, float smax,
                          float flip, vlp_rng *rng);

/* torchvision's ColorJitter (brightness, contrast and saturation factors
 * each uniform in [max(0, 1 - s), 1 + s], applied in that order rather
 * than torchvision's random one; s = 0 leaves that property alone), then
 * RandomGrayscale with probability gray, in place. Draws nothing from rng
 * for a zero strength or probability. */
void vlp_image_color_jitter(vlp_image *img, float brightness, float contrast, float saturation,
                            float gray, vlp_rng *rng);

/* A Gaussian blur of standard deviation sigma pixels (> 0), separable,
 * with the edges reflected as torchvision's GaussianBlur; the kernel spans
 * 2 ceil(3 sigma) + 1 taps (torchvision takes its size as an argument).
 * In place. */
int vlp_image_blur(vlp_image *img, float sigma);

/* Keeps the top `bits` (1..8) of every channel, as torchvision's
 * posterize; in place. */
void vlp_image_posterize(vlp_image *img, int bits);

/* CLIP's normalisation constants. */
extern const float VLP_CLIP_MEAN[3], VLP_CLIP_STD[3];

/* (S, S, 3) uint8 -> (3, S, S) float: (x / 255 - mean) / std. */
void vlp_image_normalize(float *out, const uint8_t *rgb, int S, const float mean[3],
                         const float std[3]);

/* PIL's Image.resize kernels (resample.c), outputs first. src is (sh, sw)
 * pixels of nc interleaved channels, rows `stride` elements apart; the
 * resize is to (dh, dw), of which only the window (ox, oy, ow, oh) is
 * computed into dst (oh, ow[, nc]). A dimension that keeps its size is not
 * filtered. Return VLP_OK: a failed allocation aborts (base/mem.h).
 * _u8: 8-bit images (PIL's fixed-point path): filter VLP_INTERP_*. */
int vlp_resample_u8(uint8_t *dst, const uint8_t *src, int sw, int sh, long stride, int nc, int dw,
                    int dh, int ox, int oy, int ow, int oh, int filter);
/* _i32: one channel of 32-bit integers (PIL's "I" mode: double weights). */
int vlp_resample_i32(int32_t *dst, const int32_t *src, int sw, int sh, long stride, int dw, int dh,
                     int ox, int oy, int ow, int oh, int filter);
/* _nearest: PIL's NEAREST (palette images whatever the filter). */
int vlp_resample_nearest(uint8_t *dst, const uint8_t *src, int sw, int sh, long stride, int nc,
                         int dw, int dh, int ox, int oy, int ow, int oh);

/* JPEG through libjpeg-turbo (jpeg.c), as PIL decodes it: grey and YCbCr
 * to RGB; CMYK (Adobe's inverted too) converted as PIL's convert('RGB'),
 * and with keep_cmyk also kept as VLP_PIL_CMYK. Used by vlp_image_decode. */
int vlp_jpeg_decode(vlp_image *out, const uint8_t *bytes, size_t n, const char *name,
                    long max_pixels, bool keep_cmyk);
/* PIL's convert('RGB') of n CMYK pixels: (255 - K) - C (255 - K) / 255. */
void vlp_image_cmyk_to_rgb(uint8_t *rgb, const uint8_t *cmyk, long n);

#endif
