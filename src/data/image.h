/* Images for training and evaluation: decode any file stb_image reads into
 * 8-bit RGB (alpha composited over a background), bicubic resize, centre
 * crop, random resized crop and flip, and normalisation into the model's
 * (3, S, S) float layout. Not a dataset: see dataset.h. */
#ifndef VLP_IMAGE_H
#define VLP_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autograd/rng.h"

typedef struct vlp_image {
    int w, h;
    uint8_t *rgb; /* (h, w, 3), owned */
} vlp_image;

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

/* Decodes JPEG, PNG (8/16-bit, palette), BMP, GIF (first frame), PGM/PPM,
 * in grey, grey+alpha, RGB or RGBA. name is for messages (a path). The
 * declared size is checked against max_pixels before any pixel is
 * decoded. Errors: VLP_EFORMAT (not an image, truncated), VLP_EINVAL (too
 * large), VLP_EIO (unreadable file). */
int vlp_image_decode(vlp_image *out, const uint8_t *bytes, size_t n, const char *name,
                     const vlp_image_opts *opts);
int vlp_image_load(vlp_image *out, const char *path, const vlp_image_opts *opts);
void vlp_image_free(vlp_image *img);

/* Bicubic (Catmull-Rom, as PIL's BICUBIC) resize of src's box
 * (x, y, w, h) to dst (dw, dh), allocated. */
int vlp_image_resize_box(vlp_image *dst, const vlp_image *src, int x, int y, int w, int h, int dw,
                         int dh);

/* CLIP's evaluation transform: resize the short side to S, centre crop S x S. */
int vlp_image_center(vlp_image *dst, const vlp_image *src, int S);

/* OpenCLIP's training transform: a random box of area scale in [smin, smax]
 * of the image and aspect ratio in [3/4, 4/3] (log-uniform), resized to
 * S x S, then mirrored with probability flip (0 for none). */
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

#endif
