/* JPEG decoding through libjpeg-turbo with PIL's settings (default ISLOW
 * DCT, fancy upsampling), so decoded pixels equal PIL's (stb_image's own
 * decoder differs by a few levels). Not the other formats: image.c. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "base/error.h"
#include "base/mem.h"
#include "data/image.h"

typedef struct decoder {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr err;
    jmp_buf jump;
    bool truncated;
    uint8_t *row;
} decoder;

static void on_error(j_common_ptr c) { longjmp(((decoder *)c->client_data)->jump, 1); }

/* libjpeg carries on past the end of a truncated file with grey rows and a
 * warning; PIL refuses such a file ("image file is truncated"), so do we.
 * Other warnings (extraneous bytes) PIL ignores, and so do we, silently. */
static void on_message(j_common_ptr c, int level) {
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) ((decoder *)c->client_data)->truncated = true;
}

/* PIL's CMYK -> RGB: each channel (255 - K) - C (255 - K) / 255, the
 * product rounded as PIL's MULDIV255. */
static uint8_t cmyk_channel(unsigned c, unsigned k) {
    unsigned nk = 255 - k, t = c * nk + 128;
    int v = (int)nk - (int)(((t >> 8) + t) >> 8);
    return (uint8_t)(v < 0 ? 0 : v);
}

void vlp_image_cmyk_to_rgb(uint8_t *rgb, const uint8_t *cmyk, long n) {
    for (long i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) rgb[3 * i + c] = cmyk_channel(cmyk[4 * i + c], cmyk[4 * i + 3]);
}

static int decode(decoder *d, vlp_image *out, const uint8_t *bytes, size_t n, const char *name,
                  long max_pixels, bool keep_cmyk) {
    struct jpeg_decompress_struct *ci = &d->cinfo;
    jpeg_mem_src(ci, bytes, (unsigned long)n);
    jpeg_read_header(ci, TRUE);
    long w = ci->image_width, h = ci->image_height;
    if (w <= 0 || h <= 0 || w > max_pixels / h)
        return vlp_error_set(VLP_EINVAL, "%s: %ldx%ld pixels is more than the limit of %ld", name, w, h,
                             max_pixels);
    bool cmyk = ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK;
    ci->out_color_space = ci->jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(ci);
    int nc = ci->output_components;
    if ((nc != 1 && nc != 3 && nc != 4) || (nc == 4) != cmyk)
        return vlp_error_set(VLP_EFORMAT, "%s: a JPEG of %d components in colour space %d is not supported",
                             name, nc, (int)ci->jpeg_color_space);
    out->w = (int)w, out->h = (int)h;
    out->rgb = vlp_malloc((size_t)w * h * 3); /* w x h checked against max_pixels above */
    d->row = vlp_malloc((size_t)w * nc);
    uint8_t *kept = cmyk && keep_cmyk ? vlp_malloc((size_t)w * h * 4) : NULL;
    if (kept) out->pil = VLP_PIL_CMYK, out->pil_pixels = kept;
    /* PIL reads Adobe's CMYK as inverted ("CMYK;I"): libjpeg hands over the
     * stored values. */
    bool invert = cmyk && ci->saw_Adobe_marker;
    while (ci->output_scanline < ci->output_height) {
        long y = ci->output_scanline;
        JSAMPROW rows[1] = {d->row};
        jpeg_read_scanlines(ci, rows, 1);
        uint8_t *o = out->rgb + y * w * 3;
        for (long x = 0; x < w; x++) {
            const uint8_t *p = d->row + x * nc;
            if (nc == 1) {
                o[3 * x] = o[3 * x + 1] = o[3 * x + 2] = p[0];
            } else if (nc == 3) {
                memcpy(o + 3 * x, p, 3);
            } else {
                uint8_t v[4];
                for (int c = 0; c < 4; c++) v[c] = invert ? (uint8_t)(255 - p[c]) : p[c];
                for (int c = 0; c < 3; c++) o[3 * x + c] = cmyk_channel(v[c], v[3]);
                if (kept) memcpy(kept + (y * w + x) * 4, v, 4);
            }
        }
    }
    jpeg_finish_decompress(ci);
    if (d->truncated)
        return vlp_error_set(VLP_EFORMAT, "%s: the %ldx%ld JPEG is truncated (%zu bytes)", name, w, h, n);
    return VLP_OK;
}

int vlp_jpeg_decode(vlp_image *out, const uint8_t *bytes, size_t n, const char *name,
                    long max_pixels, bool keep_cmyk) {
    memset(out, 0, sizeof *out);
    decoder *d = vlp_calloc(1, sizeof *d);
    d->cinfo.err = jpeg_std_error(&d->err);
    d->err.error_exit = on_error;
    d->err.emit_message = on_message;
    d->cinfo.client_data = d;
    int rc;
    if (setjmp(d->jump)) {
        char msg[JMSG_LENGTH_MAX];
        d->err.format_message((j_common_ptr)&d->cinfo, msg);
        if (d->truncated) /* libjpeg's own message then is about what it read past the end */
            rc = vlp_error_set(VLP_EFORMAT, "%s: the JPEG is truncated (%zu bytes; libjpeg: %s)", name, n, msg);
        else
            rc = vlp_error_set(VLP_EFORMAT, "%s: not a JPEG libjpeg can decode (%s)", name, msg);
    } else {
        jpeg_create_decompress(&d->cinfo);
        rc = decode(d, out, bytes, n, name, max_pixels, keep_cmyk);
    }
    jpeg_destroy_decompress(&d->cinfo);
    free(d->row);
    if (rc != VLP_OK) vlp_image_free(out);
    free(d);
    return rc;
}
