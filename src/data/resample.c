/* PIL's Image.resize, written anew from how Pillow 9.4 computes it, so vlp's
 * resized pixels equal torchvision-on-PIL's byte for byte (checked by
 * tests/preprocess_pil.sh). Raw kernels on pixel arrays; not the transforms
 * (crops, modes, alpha): see image.c. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "data/image.h"

/* PIL keeps 8-bit coefficients in 32 - 8 - 2 fractional bits: a sum of
 * 255 times coefficients of magnitude up to ~1.3 stays inside an int32. */
#define PRECISION_BITS 22

/* Keys' cubic with a = -0.5 (PIL's BICUBIC), support 2. */
static double bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

/* The triangle (PIL's BILINEAR), support 1. */
static double triangle(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* One axis: for each output index o in [o0, o0 + n) of a resize from
 * `in` samples to `out`, the first input index first[i], the tap count
 * taps[i] and `ksize` weights w[i * ksize ...]. As PIL: the filter is
 * stretched by the downscale factor (antialiasing), evaluated at each
 * input pixel's centre, normalised to sum 1 in double, then rounded to
 * fixed point (half away from zero). With fixed == NULL the double
 * weights are kept (PIL's 32-bit "I" images). */
typedef struct axis {
    int ksize;
    int *first, *taps; /* (n) */
    int32_t *fixed;    /* (n, ksize) or NULL */
    double *weight;    /* (n, ksize) */
} axis;

static void axis_free(axis *a) {
    free(a->first), free(a->taps), free(a->fixed), free(a->weight);
    memset(a, 0, sizeof *a);
}

static void axis_init(axis *a, int in, int out, int o0, int n, int filter, bool want_fixed) {
    memset(a, 0, sizeof *a);
    double (*f)(double) = filter == VLP_INTERP_BILINEAR ? triangle : bicubic;
    double support = filter == VLP_INTERP_BILINEAR ? 1.0 : 2.0;
    double scale = (double)in / out, fscale = scale < 1.0 ? 1.0 : scale;
    support *= fscale;
    a->ksize = (int)ceil(support) * 2 + 1;
    a->first = vlp_malloc(sizeof(int) * (size_t)n);
    a->taps = vlp_malloc(sizeof(int) * (size_t)n);
    a->weight = vlp_malloc(sizeof(double) * (size_t)n * a->ksize);
    a->fixed = want_fixed ? vlp_malloc(sizeof(int32_t) * (size_t)n * a->ksize) : NULL;
    double inv = 1.0 / fscale;
    for (int i = 0; i < n; i++) {
        double centre = ((double)(o0 + i) + 0.5) * scale;
        /* (int) truncates towards zero, as PIL's casts do; both ends clamp */
        int lo = (int)(centre - support + 0.5), hi = (int)(centre + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        int count = hi - lo;
        double *w = a->weight + (long)i * a->ksize, sum = 0.0;
        for (int k = 0; k < count; k++) sum += w[k] = f(((double)(k + lo) - centre + 0.5) * inv);
        for (int k = 0; k < count; k++)
            if (sum != 0.0) w[k] /= sum;
        for (int k = count; k < a->ksize; k++) w[k] = 0.0;
        a->first[i] = lo, a->taps[i] = count;
        if (want_fixed)
            for (int k = 0; k < a->ksize; k++) {
                double v = w[k] * (1 << PRECISION_BITS);
                a->fixed[(long)i * a->ksize + k] = (int32_t)(v < 0.0 ? v - 0.5 : v + 0.5);
            }
    }
}

static inline uint8_t clip8(int32_t v) {
    v >>= PRECISION_BITS; /* arithmetic: negative sums stay negative */
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Rows [r0, r0 + rows) of src, resized along x to the window's columns. */
static void pass_x(uint8_t *dst, const uint8_t *src, long stride, int nc, int r0, int rows,
                   const axis *ax, int n) {
    for (int r = 0; r < rows; r++) {
        const uint8_t *row = src + (long)(r0 + r) * stride;
        uint8_t *o = dst + (long)r * n * nc;
        for (int i = 0; i < n; i++) {
            const int32_t *k = ax->fixed + (long)i * ax->ksize;
            const uint8_t *p = row + (long)ax->first[i] * nc;
            for (int c = 0; c < nc; c++) {
                int32_t s = 1 << (PRECISION_BITS - 1); /* rounds the shift to nearest */
                for (int t = 0; t < ax->taps[i]; t++) s += p[t * nc + c] * k[t];
                o[i * nc + c] = clip8(s);
            }
        }
    }
}

/* Rows of src (first input row r0 at src) resized along y to the window's rows. */
static void pass_y(uint8_t *dst, const uint8_t *src, long stride, int nc, int r0, int cols,
                   const axis *ay, int n) {
    long width = (long)cols * nc;
    for (int j = 0; j < n; j++) {
        const int32_t *k = ay->fixed + (long)j * ay->ksize;
        const uint8_t *base = src + (long)(ay->first[j] - r0) * stride;
        uint8_t *o = dst + (long)j * width;
        for (long x = 0; x < width; x++) {
            int32_t s = 1 << (PRECISION_BITS - 1);
            for (int t = 0; t < ay->taps[j]; t++) s += base[t * stride + x] * k[t];
            o[x] = clip8(s);
        }
    }
}

int vlp_resample_u8(uint8_t *dst, const uint8_t *src, int sw, int sh, long stride, int nc, int dw,
                    int dh, int ox, int oy, int ow, int oh, int filter) {
    VLP_ASSERT(sw > 0 && sh > 0 && dw > 0 && dh > 0 && ox >= 0 && oy >= 0 && ow > 0 && oh > 0 &&
                   ox + ow <= dw && oy + oh <= dh && nc >= 1 && stride >= (long)sw * nc,
               "resample %dx%d to window (%d, %d, %d, %d) of %dx%d", sw, sh, ox, oy, ow, oh, dw, dh);
    bool need_x = dw != sw, need_y = dh != sh;
    axis ax = {0}, ay = {0};
    uint8_t *tmp = NULL;
    if (need_x) axis_init(&ax, sw, dw, ox, ow, filter, true);
    if (need_y) axis_init(&ay, sh, dh, oy, oh, filter, true);
    /* The rows the y pass reads (all of the window's when y is unchanged). */
    int r0 = need_y ? ay.first[0] : oy;
    int r1 = need_y ? ay.first[oh - 1] + ay.taps[oh - 1] : oy + oh;
    for (int j = 0; need_y && j < oh; j++) /* monotonic in PIL, but cheap to be sure */
        if (ay.first[j] < r0) r0 = ay.first[j];
    if (need_x && need_y) {
        tmp = vlp_malloc((size_t)(r1 - r0) * ow * nc);
        pass_x(tmp, src, stride, nc, r0, r1 - r0, &ax, ow);
        pass_y(dst, tmp, (long)ow * nc, nc, r0, ow, &ay, oh);
    } else if (need_x) {
        pass_x(dst, src, stride, nc, oy, oh, &ax, ow);
    } else if (need_y) {
        pass_y(dst, src + (long)ox * nc, stride, nc, 0, ow, &ay, oh);
    } else {
        for (int j = 0; j < oh; j++)
            memcpy(dst + (long)j * ow * nc, src + (long)(oy + j) * stride + (long)ox * nc, (size_t)ow * nc);
    }
    free(tmp);
    axis_free(&ax);
    axis_free(&ay);
    return VLP_OK;
}

/* PIL's rounding of a 32-bit sum: half away from zero, via a float 0.5. */
static int32_t round_i32(double v) { return (int32_t)(v >= 0.0 ? v + 0.5f : v - 0.5f); }

int vlp_resample_i32(int32_t *dst, const int32_t *src, int sw, int sh, long stride, int dw, int dh,
                     int ox, int oy, int ow, int oh, int filter) {
    VLP_ASSERT(sw > 0 && sh > 0 && dw > 0 && dh > 0 && ox >= 0 && oy >= 0 && ow > 0 && oh > 0 &&
                   ox + ow <= dw && oy + oh <= dh && stride >= sw,
               "resample %dx%d to window (%d, %d, %d, %d) of %dx%d", sw, sh, ox, oy, ow, oh, dw, dh);
    bool need_x = dw != sw, need_y = dh != sh;
    axis ax = {0}, ay = {0};
    if (need_x) axis_init(&ax, sw, dw, ox, ow, filter, false);
    if (need_y) axis_init(&ay, sh, dh, oy, oh, filter, false);
    int r0 = need_y ? ay.first[0] : oy, r1 = need_y ? ay.first[oh - 1] + ay.taps[oh - 1] : oy + oh;
    int cols = ow;
    int32_t *tmp = vlp_malloc(sizeof(int32_t) * (size_t)(r1 - r0) * cols);
    /* x pass (or the window's columns copied) into tmp: rows r0..r1 */
    for (int r = r0; r < r1; r++) {
        const int32_t *row = src + (long)r * stride;
        int32_t *o = tmp + (long)(r - r0) * cols;
        for (int i = 0; i < ow; i++) {
            if (!need_x) {
                o[i] = row[ox + i];
                continue;
            }
            const double *k = ax.weight + (long)i * ax.ksize;
            double s = 0.0;
            for (int t = 0; t < ax.taps[i]; t++) s += row[ax.first[i] + t] * k[t];
            o[i] = round_i32(s);
        }
    }
    for (int j = 0; j < oh; j++) {
        int32_t *o = dst + (long)j * ow;
        if (!need_y) {
            memcpy(o, tmp + (long)j * cols, sizeof(int32_t) * (size_t)ow);
            continue;
        }
        const double *k = ay.weight + (long)j * ay.ksize;
        for (int i = 0; i < ow; i++) {
            double s = 0.0;
            for (int t = 0; t < ay.taps[j]; t++) s += tmp[(long)(ay.first[j] - r0 + t) * cols + i] * k[t];
            o[i] = round_i32(s);
        }
    }
    free(tmp);
    axis_free(&ax);
    axis_free(&ay);
    return VLP_OK;
}

int vlp_resample_nearest(uint8_t *dst, const uint8_t *src, int sw, int sh, long stride, int nc,
                         int dw, int dh, int ox, int oy, int ow, int oh) {
    VLP_ASSERT(sw > 0 && sh > 0 && dw > 0 && dh > 0 && ox >= 0 && oy >= 0 && ow > 0 && oh > 0 &&
                   ox + ow <= dw && oy + oh <= dh && stride >= (long)sw * nc,
               "resample %dx%d to window (%d, %d, %d, %d) of %dx%d", sw, sh, ox, oy, ow, oh, dw, dh);
    int *col = vlp_malloc(sizeof(int) * (size_t)ow);
    /* PIL steps the source position by adding the scale once per output
     * pixel from the first one's centre: the sum's rounding decides ties,
     * so it is accumulated the same way rather than multiplied. */
    double step = (double)sw / dw, pos = step * 0.5;
    for (int i = 0; i < ox + ow; i++, pos += step)
        if (i >= ox) col[i - ox] = (int)pos < sw ? (int)pos : sw - 1;
    step = (double)sh / dh, pos = step * 0.5;
    for (int j = 0; j < oy + oh; j++, pos += step) {
        if (j < oy) continue;
        int r = (int)pos < sh ? (int)pos : sh - 1;
        const uint8_t *row = src + (long)r * stride;
        uint8_t *o = dst + (long)(j - oy) * ow * nc;
        for (int i = 0; i < ow; i++) memcpy(o + (long)i * nc, row + (long)col[i] * nc, (size_t)nc);
    }
    free(col);
    return VLP_OK;
}
