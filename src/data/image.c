/* Image decode and transforms on stb_image / stb_image_resize (see image.h).
 * libstb (Debian) carries the implementations; this file only calls them. */
#include "data/image.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stb_image.h>
#include <stb_image_resize.h>

#include "autograd/error.h"

const float VLP_CLIP_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
const float VLP_CLIP_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

#define DEFAULT_MAX_PIXELS (1L << 26) /* 8192 x 8192 */

vlp_image_opts vlp_image_opts_default(void) {
    return (vlp_image_opts){.background = {255, 255, 255}, .max_pixels = DEFAULT_MAX_PIXELS};
}

void vlp_image_free(vlp_image *img) {
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

static int image_alloc(vlp_image *img, int w, int h) {
    img->w = w;
    img->h = h;
    img->rgb = malloc((size_t)w * h * 3);
    return img->rgb ? VLP_OK : vlp_error_set(VLP_ENOMEM, "out of memory for a %dx%d image", w, h);
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

int vlp_image_decode(vlp_image *out, const uint8_t *bytes, size_t n, const char *name,
                     const vlp_image_opts *opts) {
    memset(out, 0, sizeof *out);
    if (n == 0) return vlp_error_set(VLP_EFORMAT, "%s: empty file", name);
    if (n > INT32_MAX) return vlp_error_set(VLP_EINVAL, "%s: file of %zu bytes is too large", name, n);
    if (!jpeg_tables_fit(bytes, n))
        return vlp_error_set(VLP_EFORMAT, "%s: a JPEG Huffman table with more than 256 codes (corrupt)", name);
    int w, h, channels;
    long max = opts && opts->max_pixels > 0 ? opts->max_pixels : DEFAULT_MAX_PIXELS;
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
    /* Ask for RGBA whatever the file holds: stb expands grey and palettes and
     * reduces 16-bit to 8-bit; alpha is composited below. Except a 16-bit
     * PGM/PPM: stb 2.27 (Debian 12's libstb0) expands its channels as if
     * they were 8-bit, then reads twice that buffer's size (a heap overflow
     * tests/fuzz/fuzz_image.c found); it comes in its own 1 or 3 channels. */
    bool pnm16 = n >= 2 && bytes[0] == 'P' && (bytes[1] == '5' || bytes[1] == '6') &&
                 stbi_is_16_bit_from_memory(bytes, (int)n);
    uint8_t *pix = stbi_load_from_memory(bytes, (int)n, &w, &h, &channels, pnm16 ? 0 : 4);
    int nc = pnm16 ? channels : 4;
    /* stb's failure reason here is often left from probing other formats
     * ("bad png sig" for a JPEG), so it is not repeated. */
    if (!pix)
        return vlp_error_set(VLP_EFORMAT, "%s: the %dx%d image's data cannot be decoded (truncated or corrupt)",
                             name, w, h);
    int rc = image_alloc(out, w, h);
    if (rc == VLP_OK) {
        static const uint8_t white[3] = {255, 255, 255};
        const uint8_t *bg = opts ? opts->background : white;
        for (long i = 0; i < (long)w * h; i++) {
            const uint8_t *p = pix + nc * i;
            unsigned a = nc % 2 == 0 ? p[nc - 1] : 255; /* grey+alpha, RGBA */
            for (int c = 0; c < 3; c++)
                out->rgb[3 * i + c] = (uint8_t)((p[nc < 3 ? 0 : c] * a + bg[c] * (255 - a) + 127) / 255);
        }
    }
    stbi_image_free(pix);
    return rc;
}

int vlp_image_load(vlp_image *out, const char *path, const vlp_image_opts *opts) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return vlp_error_set(VLP_EIO, "%s: %s", path, strerror(errno));
    uint8_t *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    int rc = VLP_OK;
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        rc = vlp_error_set(VLP_EIO, "%s: cannot read", path);
    } else if (!(buf = malloc(size ? (size_t)size : 1))) {
        rc = vlp_error_set(VLP_ENOMEM, "%s: out of memory for %ld bytes", path, size);
    } else if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        rc = vlp_error_set(VLP_EIO, "%s: short read", path);
    } else {
        rc = vlp_image_decode(out, buf, (size_t)size, path, opts);
    }
    free(buf);
    fclose(f);
    return rc;
}

int vlp_image_resize_box(vlp_image *dst, const vlp_image *src, int x, int y, int w, int h, int dw,
                         int dh) {
    VLP_ASSERT(x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= src->w && y + h <= src->h,
               "box (%d, %d, %d, %d) outside a %dx%d image", x, y, w, h, src->w, src->h);
    int rc = image_alloc(dst, dw, dh);
    if (rc != VLP_OK) return rc;
    const uint8_t *origin = src->rgb + ((long)y * src->w + x) * 3;
    /* Linear colour space: no sRGB conversion, as PIL and torchvision. */
    if (!stbir_resize_uint8_generic(origin, w, h, src->w * 3, dst->rgb, dw, dh, dw * 3, 3,
                                    STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP,
                                    STBIR_FILTER_CATMULLROM, STBIR_COLORSPACE_LINEAR, NULL)) {
        vlp_image_free(dst);
        return vlp_error_set(VLP_ENOMEM, "cannot resize %dx%d to %dx%d", w, h, dw, dh);
    }
    return VLP_OK;
}

int vlp_image_center(vlp_image *dst, const vlp_image *src, int S) {
    /* Resizing the short side to S then cropping S x S is the same as
     * resizing the centred square box of side min(w, h) to S x S. */
    int side = src->w < src->h ? src->w : src->h;
    return vlp_image_resize_box(dst, src, (src->w - side) / 2, (src->h - side) / 2, side, side, S, S);
}

int vlp_image_random_crop(vlp_image *dst, const vlp_image *src, int S, float smin, float smax,
                          float flip, vlp_rng *rng) {
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
    int rc = vlp_image_resize_box(dst, src, x, y, w, h, S, S);
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
    float *k = malloc(sizeof(float) * taps), *tmp = malloc(sizeof(float) * (size_t)w * h * 3);
    if (!k || !tmp) return free(k), free(tmp), vlp_error_set(VLP_ENOMEM, "out of memory");
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
