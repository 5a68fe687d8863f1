/* Image decode and transforms (see image.h): stb_image decodes all but JPEG
 * (jpeg.c); every resize is PIL's (resample.c), in the mode PIL would hold
 * the image in. libstb (Debian) carries stb's implementation. */
#include "data/image.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stb_image.h>

#include "base/error.h"
#include "base/file.h"
#include "base/mem.h"

const float VLP_CLIP_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
const float VLP_CLIP_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

#define DEFAULT_MAX_PIXELS (1L << 26) /* 8192 x 8192 */

vlp_image_opts vlp_image_opts_default(void) {
    return (vlp_image_opts){.background = {255, 255, 255}, .max_pixels = DEFAULT_MAX_PIXELS};
}

void vlp_image_free(vlp_image *img) {
    free(img->rgb);
    free(img->pil_pixels);
    memset(img, 0, sizeof *img);
}

/* w x h were checked against the pixel limit when they came from a file. */
static void image_alloc(vlp_image *img, int w, int h) {
    memset(img, 0, sizeof *img);
    img->w = w;
    img->h = h;
    img->rgb = vlp_malloc((size_t)w * h * 3);
}

/* stb_image 2.27 (Debian 12's libstb0) builds a JPEG Huffman table from
 * its 16 code counts without checking that they add up to at most 256,
 * then copies that many values into a 256-entry table: a heap overflow
 * written with the file's bytes (found by tests/fuzz/fuzz_image.c; stb
 * 2.28 checks). Walks the JPEG's markers as stb does, entropy-coded data
 * skipped, and says whether every DHT table is within bounds. */
static bool jpeg_tables_fit(const uint8_t *b, size_t n) {
    size_t i = 0;
    while (i < n && b[i] == 0xFF) i++; /* stb takes fill bytes before SOI too */
    if (i == 0 || i >= n || b[i] != 0xD8) return true; /* not a JPEG */
    for (i++; i < n;) {
        if (b[i] != 0xFF) { /* junk or entropy-coded data: to the next marker */
            i++;
            continue;
        }
        while (i < n && b[i] == 0xFF) i++; /* fill bytes */
        if (i >= n) break;
        uint8_t m = b[i++];
        if (m == 0xD9) break;                                                /* EOI */
        if (m == 0x00 || m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7)) continue; /* no length */
        if (i + 2 > n) break;
        size_t len = (size_t)b[i] << 8 | b[i + 1];
        if (len < 2) break; /* stb refuses it */
        for (size_t p = i + 2, left = len - 2; m == 0xC4 && left > 0 && p < n;) {
            size_t count = 0;
            for (size_t k = p + 1; k < p + 17 && k < n; k++) count += b[k];
            if (count > 256) return false;
            if (17 + count >= left) break;
            p += 17 + count, left -= 17 + count;
        }
        i += len;
    }
    return true;
}

/* A PNG's bit depth and colour type from its IHDR (stb does not say). */
static bool png_header(const uint8_t *b, size_t n, int *depth, int *type) {
    if (n < 26 || memcmp(b, "\x89PNG\r\n\x1a\n", 8) != 0 || memcmp(b + 12, "IHDR", 4) != 0) return false;
    *depth = b[24], *type = b[25];
    return true;
}

/* The mode PIL 9.4 opens an image in, as far as resizing goes: what stb
 * decodes into `channels` is mapped to PIL's L/RGB (alpha, tRNS ignored),
 * LA/RGBA, P/1 or I. */
static int pil_mode_of(const uint8_t *b, size_t n, int channels) {
    int depth, type;
    if (png_header(b, n, &depth, &type)) {
        if (type == 0 && depth == 16) return VLP_PIL_I;
        if (type == 3 || (type == 0 && depth == 1)) return VLP_PIL_P;
        return type == 4 || type == 6 ? VLP_PIL_RGBA : VLP_PIL_RGB;
    }
    if (n >= 4 && memcmp(b, "GIF8", 4) == 0) return VLP_PIL_P;
    return channels == 2 || channels == 4 ? VLP_PIL_RGBA : VLP_PIL_RGB;
}

/* A 16-bit grey PNG as PIL holds it ("I", 0..65535), and its
 * convert('RGB'), which clips to 255 rather than scaling. */
static int decode_grey16(vlp_image *out, const uint8_t *bytes, size_t n, const char *name) {
    int w, h, c;
    stbi_us *pix = stbi_load_16_from_memory(bytes, (int)n, &w, &h, &c, 1);
    if (!pix)
        return vlp_error_set(VLP_EFORMAT, "%s: the 16-bit grey image's data cannot be decoded (truncated or corrupt)", name);
    image_alloc(out, w, h);
    int32_t *v = vlp_malloc(sizeof(int32_t) * (size_t)w * h);
    out->pil = VLP_PIL_I, out->pil_pixels = v;
    for (long i = 0; i < (long)w * h; i++) {
        v[i] = pix[i];
        out->rgb[3 * i] = out->rgb[3 * i + 1] = out->rgb[3 * i + 2] = (uint8_t)(pix[i] > 255 ? 255 : pix[i]);
    }
    stbi_image_free(pix);
    return VLP_OK;
}

int vlp_image_decode(vlp_image *out, const uint8_t *bytes, size_t n, const char *name,
                     const vlp_image_opts *opts) {
    memset(out, 0, sizeof *out);
    if (n == 0) return vlp_error_set(VLP_EFORMAT, "%s: empty file", name);
    if (n > INT32_MAX) return vlp_error_set(VLP_EINVAL, "%s: file of %zu bytes is too large", name, n);
    long max = opts && opts->max_pixels > 0 ? opts->max_pixels : DEFAULT_MAX_PIXELS;
    bool pil = opts && opts->alpha == VLP_ALPHA_PIL;
    /* JPEG as PIL decodes it: libjpeg-turbo (its SOI check is these bytes). */
    if (n >= 2 && bytes[0] == 0xFF && bytes[1] == 0xD8) return vlp_jpeg_decode(out, bytes, n, name, max, pil);
    if (!jpeg_tables_fit(bytes, n)) /* stb takes fill bytes before SOI: it may still see a JPEG */
        return vlp_error_set(VLP_EFORMAT, "%s: a JPEG Huffman table with more than 256 codes (corrupt)", name);
    int w, h, channels;
    if (!stbi_info_from_memory(bytes, (int)n, &w, &h, &channels)) {
        /* stb rejects a PNG declaring over 2^30 bytes of pixels but then
         * reports "unknown image type": read the size from IHDR to say why. */
        if (n >= 24 && memcmp(bytes, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(bytes + 12, "IHDR", 4) == 0) {
            long pw = (long)bytes[16] << 24 | bytes[17] << 16 | bytes[18] << 8 | bytes[19];
            long ph = (long)bytes[20] << 24 | bytes[21] << 16 | bytes[22] << 8 | bytes[23];
            if (pw > 0 && ph > 0 && pw > max / ph) /* pw * ph overflows a long for 2^32 - 1 each */
                return vlp_error_set(VLP_EINVAL, "%s: %ldx%ld pixels is more than the limit of %ld",
                                     name, pw, ph, max);
        }
        return vlp_error_set(VLP_EFORMAT, "%s: not an image stb_image can read (%s)", name,
                             stbi_failure_reason());
    }
    if (w <= 0 || h <= 0 || (long)w * h > max)
        return vlp_error_set(VLP_EINVAL, "%s: %dx%d pixels is more than the limit of %ld", name, w,
                             h, max);
    int mode = pil ? pil_mode_of(bytes, n, channels) : VLP_PIL_RGB;
    if (mode == VLP_PIL_I) return decode_grey16(out, bytes, n, name);
    /* Ask for RGBA whatever the file holds: stb expands grey and palettes and
     * reduces 16-bit to 8-bit (the high byte, as PIL); alpha is used below.
     * Except a 16-bit PGM/PPM: stb 2.27 (Debian 12's libstb0) expands its
     * channels as if they were 8-bit, then reads twice that buffer's size (a
     * heap overflow tests/fuzz/fuzz_image.c found); it comes in its own 1 or
     * 3 channels. */
    bool pnm16 = n >= 2 && bytes[0] == 'P' && (bytes[1] == '5' || bytes[1] == '6') &&
                 stbi_is_16_bit_from_memory(bytes, (int)n);
    uint8_t *pix = stbi_load_from_memory(bytes, (int)n, &w, &h, &channels, pnm16 ? 0 : 4);
    int nc = pnm16 ? channels : 4;
    /* stb's failure reason here is often left from probing other formats
     * ("bad png sig" for a JPEG), so it is not repeated. */
    if (!pix)
        return vlp_error_set(VLP_EFORMAT, "%s: the %dx%d image's data cannot be decoded (truncated or corrupt)",
                             name, w, h);
    image_alloc(out, w, h);
    uint8_t *alpha = mode == VLP_PIL_RGBA ? vlp_malloc((size_t)w * h) : NULL;
    static const uint8_t white[3] = {255, 255, 255};
    const uint8_t *bg = opts ? opts->background : white;
    out->pil = mode, out->pil_pixels = alpha;
    for (long i = 0; i < (long)w * h; i++) {
        const uint8_t *p = pix + nc * i;
        unsigned a = nc % 2 == 0 ? p[nc - 1] : 255; /* grey+alpha, RGBA */
        for (int c = 0; c < 3; c++) {
            unsigned v = p[nc < 3 ? 0 : c];
            /* PIL's convert('RGB') drops alpha (and ignores tRNS) */
            out->rgb[3 * i + c] = pil ? (uint8_t)v : (uint8_t)((v * a + bg[c] * (255 - a) + 127) / 255);
        }
        if (alpha) alpha[i] = (uint8_t)a;
    }
    stbi_image_free(pix);
    return VLP_OK;
}

int vlp_image_load(vlp_image *out, const char *path, const vlp_image_opts *opts) {
    memset(out, 0, sizeof *out);
    FILE *f = vlp_file_open(path); /* regular files only: a FIFO would hang */
    if (!f) return VLP_EIO;
    uint8_t *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    int rc = VLP_OK;
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        rc = vlp_error_set(VLP_EIO, "%s: cannot read", path);
    } else if (size > INT32_MAX) { /* vlp_image_decode's limit, before the file is read */
        rc = vlp_error_set(VLP_EINVAL, "%s: file of %ld bytes is too large", path, size);
    } else {
        buf = vlp_malloc((size_t)size);
        if (fread(buf, 1, (size_t)size, f) != (size_t)size)
            rc = vlp_error_set(VLP_EIO, "%s: short read", path);
        else
            rc = vlp_image_decode(out, buf, (size_t)size, path, opts);
    }
    free(buf);
    fclose(f);
    return rc;
}

/* PIL's premultiplication ("RGBA" -> "RGBa"): c * a / 255 rounded. */
static uint8_t muldiv255(unsigned c, unsigned a) {
    unsigned t = c * a + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

/* PIL's img.crop(box).resize((dw, dh), filter).convert('RGB'), of which
 * only the window (ox, oy, ow, oh) is made, into dst (ow x oh). */
static int pil_resize(vlp_image *dst, const vlp_image *src, int x, int y, int bw, int bh, int dw,
                      int dh, int ox, int oy, int ow, int oh, int filter) {
    VLP_ASSERT(x >= 0 && y >= 0 && bw > 0 && bh > 0 && x + bw <= src->w && y + bh <= src->h,
               "box (%d, %d, %d, %d) outside a %dx%d image", x, y, bw, bh, src->w, src->h);
    VLP_ASSERT(ox >= 0 && oy >= 0 && ow > 0 && oh > 0 && ox + ow <= dw && oy + oh <= dh,
               "window (%d, %d, %d, %d) outside %dx%d", ox, oy, ow, oh, dw, dh);
    image_alloc(dst, ow, oh);
    int rc = VLP_OK;
    long W = src->w, origin = (long)y * W + x, n = (long)ow * oh;
    if (bw == dw && bh == dh) { /* PIL copies: the stored RGB, whatever the mode */
        for (int j = 0; j < oh; j++)
            memcpy(dst->rgb + (long)j * ow * 3, src->rgb + (origin + (long)(oy + j) * W + ox) * 3, (size_t)ow * 3);
        return VLP_OK;
    }
    int mode = src->pil_pixels || src->pil == VLP_PIL_P ? src->pil : VLP_PIL_RGB;
    if (mode == VLP_PIL_RGB)
        rc = vlp_resample_u8(dst->rgb, src->rgb + origin * 3, bw, bh, W * 3, 3, dw, dh, ox, oy, ow, oh, filter);
    else if (mode == VLP_PIL_P)
        rc = vlp_resample_nearest(dst->rgb, src->rgb + origin * 3, bw, bh, W * 3, 3, dw, dh, ox, oy, ow, oh);
    if (mode == VLP_PIL_RGB || mode == VLP_PIL_P) {
        if (rc != VLP_OK) vlp_image_free(dst);
        return rc;
    }
    /* The other modes resize 4 bytes or an int32 per pixel, then convert. */
    uint8_t *in = NULL;
    void *res = vlp_malloc((size_t)n * 4);
    if (mode == VLP_PIL_RGBA) { /* PIL resizes "RGBA" as premultiplied "RGBa" */
        const uint8_t *alpha = src->pil_pixels;
        in = vlp_malloc((size_t)bw * bh * 4);
        for (int j = 0; j < bh; j++)
            for (int i = 0; i < bw; i++) {
                long s = origin + (long)j * W + i;
                uint8_t *q = in + ((long)j * bw + i) * 4;
                for (int c = 0; c < 3; c++) q[c] = muldiv255(src->rgb[3 * s + c], alpha[s]);
                q[3] = alpha[s];
            }
        rc = vlp_resample_u8(res, in, bw, bh, (long)bw * 4, 4, dw, dh, ox, oy, ow, oh, filter);
        const uint8_t *r = res;
        for (long i = 0; rc == VLP_OK && i < n; i++) { /* back to "RGBA": 255 c / a, truncated */
            unsigned a = r[4 * i + 3];
            for (int c = 0; c < 3; c++) {
                unsigned v = r[4 * i + c];
                dst->rgb[3 * i + c] = (uint8_t)(a == 0 || a == 255 ? v : 255 * v / a > 255 ? 255 : 255 * v / a);
            }
        }
    } else if (mode == VLP_PIL_CMYK) {
        const uint8_t *cmyk = src->pil_pixels;
        rc = vlp_resample_u8(res, cmyk + origin * 4, bw, bh, W * 4, 4, dw, dh, ox, oy, ow, oh, filter);
        if (rc == VLP_OK) vlp_image_cmyk_to_rgb(dst->rgb, res, n);
    } else { /* VLP_PIL_I */
        const int32_t *grey = src->pil_pixels;
        rc = vlp_resample_i32(res, grey + origin, bw, bh, W, dw, dh, ox, oy, ow, oh, filter);
        const int32_t *r = res;
        for (long i = 0; rc == VLP_OK && i < n; i++) /* PIL's "I" -> "RGB" clips */
            dst->rgb[3 * i] = dst->rgb[3 * i + 1] = dst->rgb[3 * i + 2] =
                (uint8_t)(r[i] < 0 ? 0 : r[i] > 255 ? 255 : r[i]);
    }
    free(in), free(res);
    if (rc != VLP_OK) vlp_image_free(dst);
    return rc;
}

int vlp_image_resize_crop(vlp_image *dst, const vlp_image *src, int x, int y, int w, int h, int dw,
                          int dh, int interpolation) {
    return pil_resize(dst, src, x, y, w, h, dw, dh, 0, 0, dw, dh, interpolation);
}

int vlp_image_resize_box(vlp_image *dst, const vlp_image *src, int x, int y, int w, int h, int dw,
                         int dh) {
    return pil_resize(dst, src, x, y, w, h, dw, dh, 0, 0, dw, dh, VLP_INTERP_BICUBIC);
}

/* torchvision's CenterCrop offset int(round(d / 2.0)): Python rounds a
 * half to even, so 0.5 -> 0, 1.5 -> 2, 2.5 -> 2. */
static int centre_offset(long d) { return (int)(d / 2 + (d % 2 && (d / 2) % 2)); }

int vlp_image_eval_transform(vlp_image *dst, const vlp_image *src, int S, int interpolation,
                             int resize_mode) {
    memset(dst, 0, sizeof *dst);
    long W = src->w, H = src->h, nw = S, nh = S;
    if (resize_mode == VLP_RESIZE_SHORTEST) {
        long shorter = W <= H ? W : H, longer = W <= H ? H : W;
        /* Python's int(S * long / short): an exact product, a correctly
         * rounded division, truncation; the same in double. */
        double l = (double)((long long)S * longer) / (double)shorter;
        if (l > INT32_MAX)
            return vlp_error_set(VLP_EINVAL, "a %ldx%ld image resized to %d on its short side is too long", W, H, S);
        long nl = (long)l;
        if (W <= H) nh = nl;
        else nw = nl;
    }
    return pil_resize(dst, src, 0, 0, src->w, src->h, (int)nw, (int)nh, centre_offset(nw - S),
                      centre_offset(nh - S), S, S, interpolation);
}

int vlp_image_center(vlp_image *dst, const vlp_image *src, int S) {
    return vlp_image_eval_transform(dst, src, S, VLP_INTERP_BICUBIC, VLP_RESIZE_SHORTEST);
}

int vlp_image_random_resized_crop(vlp_image *dst, const vlp_image *src, int S, float smin,
                                  float smax, float flip, int interpolation, vlp_rng *rng) {
    double area = (double)src->w * src->h;
    int x = 0, y = 0, w = src->w, h = src->h;
    bool found = false;
    /* torchvision's RandomResizedCrop: ten tries, then the centre crop of
     * the largest box whose aspect ratio is within range. */
    for (int attempt = 0; attempt < 10 && !found; attempt++) {
        double target = area * (smin + (smax - smin) * vlp_rng_uniform(rng));
        double ratio = exp(log(3.0 / 4.0) + (log(4.0 / 3.0) - log(3.0 / 4.0)) * vlp_rng_uniform(rng));
        int cw = (int)lround(sqrt(target * ratio)), ch = (int)lround(sqrt(target / ratio));
        if (cw > 0 && ch > 0 && cw <= src->w && ch <= src->h) {
            w = cw, h = ch;
            x = (int)vlp_rng_below(rng, (uint64_t)(src->w - w + 1));
            y = (int)vlp_rng_below(rng, (uint64_t)(src->h - h + 1));
            found = true;
        }
    }
    if (!found) {
        double ratio = (double)src->w / src->h;
        if (ratio < 3.0 / 4.0) w = src->w, h = (int)lround(w / (3.0 / 4.0));
        else if (ratio > 4.0 / 3.0) h = src->h, w = (int)lround(h * (4.0 / 3.0));
        if (w > src->w) w = src->w;
        if (h > src->h) h = src->h;
        x = (src->w - w) / 2, y = (src->h - h) / 2;
    }
    /* torchvision's resized_crop: crop, then resize the crop as an image */
    int rc = vlp_image_resize_crop(dst, src, x, y, w, h, S, S, interpolation);
    if (rc == VLP_OK && flip > 0.0f && vlp_rng_uniform(rng) < flip)
        for (int r = 0; r < S; r++)
            for (int c = 0; c < S / 2; c++)
                for (int k = 0; k < 3; k++) {
                    uint8_t *a = dst->rgb + ((long)r * S + c) * 3 + k;
                    uint8_t *b = dst->rgb + ((long)r * S + S - 1 - c) * 3 + k;
                    uint8_t t = *a;
                    *a = *b, *b = t;
                }
    return rc;
}

int vlp_image_random_crop(vlp_image *dst, const vlp_image *src, int S, float smin, float smax,
                          float flip, vlp_rng *rng) {
    return vlp_image_random_resized_crop(dst, src, S, smin, smax, flip, VLP_INTERP_BICUBIC, rng);
}

/* ITU-R 601 luma, torchvision's rgb_to_grayscale. */
static float luma(const uint8_t *p) { return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]; }

static uint8_t clamp_byte(float v) { return (uint8_t)(v <= 0.0f ? 0 : v >= 255.0f ? 255 : v + 0.5f); }

/* A factor uniform in [max(0, 1 - s), 1 + s]. */
static float jitter_factor(float s, vlp_rng *rng) {
    float lo = s < 1.0f ? 1.0f - s : 0.0f;
    return lo + (1.0f + s - lo) * (float)vlp_rng_uniform(rng);
}

void vlp_image_color_jitter(vlp_image *img, float brightness, float contrast, float saturation,
                            float gray, vlp_rng *rng) {
    long n = (long)img->w * img->h;
    uint8_t *px = img->rgb;
    if (brightness > 0.0f) { /* blend with black */
        float f = jitter_factor(brightness, rng);
        for (long i = 0; i < 3 * n; i++) px[i] = clamp_byte(f * px[i]);
    }
    if (contrast > 0.0f) { /* blend with the mean grey level */
        float f = jitter_factor(contrast, rng);
        double sum = 0.0;
        for (long i = 0; i < n; i++) sum += luma(px + 3 * i);
        float mean = n ? (float)(sum / n) : 0.0f;
        for (long i = 0; i < 3 * n; i++) px[i] = clamp_byte(mean + f * (px[i] - mean));
    }
    if (saturation > 0.0f) { /* blend with each pixel's grey */
        float f = jitter_factor(saturation, rng);
        for (long i = 0; i < n; i++) {
            float g = luma(px + 3 * i);
            for (int k = 0; k < 3; k++) px[3 * i + k] = clamp_byte(g + f * (px[3 * i + k] - g));
        }
    }
    if (gray > 0.0f && vlp_rng_uniform(rng) < gray)
        for (long i = 0; i < n; i++) px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = clamp_byte(luma(px + 3 * i));
}

/* Index i reflected into [0, n) without repeating the edge (torch's "reflect"). */
static int reflect(int i, int n) {
    if (n == 1) return 0;
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
}

int vlp_image_blur(vlp_image *img, float sigma) {
    int r = (int)ceilf(3.0f * sigma), taps = 2 * r + 1, w = img->w, h = img->h;
    float *k = vlp_malloc(sizeof(float) * taps), *tmp = vlp_malloc(sizeof(float) * (size_t)w * h * 3);
    float sum = 0.0f;
    for (int i = -r; i <= r; i++) sum += k[i + r] = expf(-0.5f * (float)(i * i) / (sigma * sigma));
    for (int i = 0; i < taps; i++) k[i] /= sum;
    for (int y = 0; y < h; y++) /* rows into tmp */
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                float v = 0.0f;
                for (int i = -r; i <= r; i++) v += k[i + r] * img->rgb[((long)y * w + reflect(x + i, w)) * 3 + c];
                tmp[((long)y * w + x) * 3 + c] = v;
            }
    for (int y = 0; y < h; y++) /* columns back */
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                float v = 0.0f;
                for (int i = -r; i <= r; i++) v += k[i + r] * tmp[((long)reflect(y + i, h) * w + x) * 3 + c];
                img->rgb[((long)y * w + x) * 3 + c] = clamp_byte(v);
            }
    free(k);
    free(tmp);
    return VLP_OK;
}

void vlp_image_posterize(vlp_image *img, int bits) {
    uint8_t mask = (uint8_t)(0xFF << (8 - bits));
    for (long i = 0; i < 3L * img->w * img->h; i++) img->rgb[i] &= mask;
}

void vlp_image_normalize(float *out, const uint8_t *rgb, int S, const float mean[3],
                         const float std[3]) {
    long hw = (long)S * S;
    for (int c = 0; c < 3; c++) {
        float scale = 1.0f / (255.0f * std[c]), shift = mean[c] / std[c];
        for (long i = 0; i < hw; i++) out[c * hw + i] = rgb[3 * i + c] * scale - shift;
    }
}
