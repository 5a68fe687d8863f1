/* HTML helpers (see html.h). PNGs come from stb_image_write. */
#include "apps/html.h"

#include <stdlib.h>
#include <string.h>
#include <stb_image_write.h>

#include "base/error.h"
#include "base/mem.h"

void vlp_html_text(FILE *f, const char *text) {
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*p, f);
        }
    }
}

typedef struct buffer {
    unsigned char *data;
    size_t len, cap;
} buffer;

static void append(void *ctx, void *data, int size) {
    buffer *b = ctx;
    if (b->len + (size_t)size > b->cap) {
        b->cap = 2 * (b->len + (size_t)size);
        b->data = vlp_realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, data, (size_t)size);
    b->len += (size_t)size;
}

int vlp_html_image(FILE *f, const vlp_image *img, int display, const char *alt) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    buffer png = {0};
    if (!stbi_write_png_to_func(append, &png, img->w, img->h, 3, img->rgb, img->w * 3)) {
        free(png.data);
        return vlp_error_set(VLP_EIO, "cannot encode a %dx%d PNG", img->w, img->h);
    }
    int h = img->w ? display * img->h / img->w : display;
    fprintf(f, "<img width=\"%d\" height=\"%d\" style=\"image-rendering:pixelated\" alt=\"", display, h);
    vlp_html_text(f, alt ? alt : "");
    fputs("\" src=\"data:image/png;base64,", f);
    for (size_t i = 0; i < png.len; i += 3) {
        unsigned v = png.data[i] << 16 | (i + 1 < png.len ? png.data[i + 1] << 8 : 0) |
                     (i + 2 < png.len ? png.data[i + 2] : 0);
        fputc(b64[v >> 18 & 63], f);
        fputc(b64[v >> 12 & 63], f);
        fputc(i + 1 < png.len ? b64[v >> 6 & 63] : '=', f);
        fputc(i + 2 < png.len ? b64[v & 63] : '=', f);
    }
    fputs("\">", f);
    free(png.data);
    return VLP_OK;
}
