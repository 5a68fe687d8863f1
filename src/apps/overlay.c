/* Segmentation overlays (see overlay.h). */
#include "apps/overlay.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/font.h"
#include "base/error.h"
#include "base/mem.h"

void vlp_segment_colour(int label, uint8_t rgb[3]) {
    if (label <= 0) {
        rgb[0] = rgb[1] = rgb[2] = 0;
        return;
    }
    /* hues a golden angle apart, three levels of lightness cycling */
    float h = fmodf((float)(label - 1) * 0.618034f, 1.0f) * 6.0f, v = label % 3 == 0 ? 0.7f : 1.0f;
    float s = label % 3 == 2 ? 0.55f : 0.9f, f = h - floorf(h);
    float p = v * (1 - s), q = v * (1 - s * f), r = v * (1 - s * (1 - f));
    float c[6][3] = {{v, r, p}, {q, v, p}, {p, v, r}, {p, q, v}, {r, p, v}, {v, p, q}};
    for (int i = 0; i < 3; i++) rgb[i] = (uint8_t)(255.0f * c[(int)h % 6][i] + 0.5f);
}

static void fill(vlp_image *o, int x0, int y0, int w, int h, const uint8_t rgb[3]) {
    for (int y = y0; y < y0 + h && y < o->h; y++)
        for (int x = x0; x < x0 + w && x < o->w; x++)
            if (x >= 0 && y >= 0) memcpy(o->rgb + ((long)y * o->w + x) * 3, rgb, 3);
}

static void text(vlp_image *o, int x, int y, const char *s, int scale, const uint8_t rgb[3]) {
    for (; *s; s++, x += (VLP_FONT_W + 1) * scale) {
        const uint8_t *glyph = vlp_font_glyph(*s);
        for (int r = 0; r < VLP_FONT_H; r++)
            for (int c = 0; c < VLP_FONT_W; c++)
                if (glyph[r] & (1 << (VLP_FONT_W - 1 - c))) fill(o, x + c * scale, y + r * scale, scale, scale, rgb);
    }
}

int vlp_segment_overlay(vlp_image *out, const vlp_image *img, const uint8_t *const *labels,
                        const bool *outline, const char *const *titles, int n_panels,
                        const char *const *class_names, int K, int scale) {
    int H = img->h * scale, W = img->w * scale, pad = 4 * scale, line = (VLP_FONT_H + 3) * scale;
    bool shown[256] = {false};
    int n_shown = 0;
    for (int i = 0; i < n_panels; i++)
        for (long p = 0; p < (long)img->w * img->h && !(outline && outline[i]); p++)
            if (labels[i][p] && !shown[labels[i][p]]) shown[labels[i][p]] = true, n_shown++;
    int cols = n_panels, legend_rows = (n_shown + 2 * cols - 1) / (2 * cols);
    memset(out, 0, sizeof *out); /* a plain RGB image: no PIL mode pixels to free */
    out->w = n_panels * (W + pad) + pad;
    out->h = pad + line + H + pad + legend_rows * line + pad;
    out->rgb = vlp_malloc((size_t)out->w * out->h * 3);
    memset(out->rgb, 255, (size_t)out->w * out->h * 3);
    const uint8_t black[3] = {0, 0, 0}, white[3] = {255, 255, 255};
    for (int i = 0; i < n_panels; i++) {
        int x0 = pad + i * (W + pad), y0 = pad + line;
        text(out, x0, pad, titles[i], scale, black);
        const uint8_t *lab = labels[i];
        bool fill_in = !(outline && outline[i]);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int sx = x / scale, sy = y / scale;
                long p = (long)sy * img->w + sx;
                uint8_t c[3], *o = out->rgb + ((long)(y0 + y) * out->w + x0 + x) * 3;
                vlp_segment_colour(lab[p], c);
                bool edge = (sx + 1 < img->w && lab[p + 1] != lab[p]) ||
                            (sy + 1 < img->h && lab[p + img->w] != lab[p]);
                for (int k = 0; k < 3; k++)
                    o[k] = edge ? white[k] : lab[p] && fill_in ? (uint8_t)((img->rgb[p * 3 + k] + c[k] * 2) / 3)
                                                               : img->rgb[p * 3 + k];
            }
    }
    /* the legend: swatch and name, two entries per panel width */
    int entry = (W + pad) / 2, k = 0;
    for (int label = 1; label <= K && label < 256; label++) {
        if (!shown[label]) continue;
        int x = pad + (k % (2 * cols)) * entry, y = pad + line + H + pad + (k / (2 * cols)) * line;
        uint8_t c[3];
        vlp_segment_colour(label, c);
        fill(out, x, y, VLP_FONT_H * scale, VLP_FONT_H * scale, c);
        char name[64];
        int fits = (entry - (VLP_FONT_H + 3) * scale) / ((VLP_FONT_W + 1) * scale);
        snprintf(name, sizeof name, "%.*s", fits > 0 ? fits : 0, class_names[label - 1]);
        text(out, x + (VLP_FONT_H + 2) * scale, y, name, scale, black);
        k++;
    }
    return VLP_OK;
}
