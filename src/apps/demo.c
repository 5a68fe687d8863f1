/* Spirals demo (see demo.h). */
#include "apps/demo.h"

#include <stdlib.h>
#include <string.h>
#include <stb_image_write.h>

#include "base/error.h"
#include "base/mem.h"
#include "data/toy.h"

int vlp_demo_init(vlp_demo *d, int classes, int per_class, uint64_t seed) {
    memset(d, 0, sizeof *d);
    d->classes = classes;
    d->n = classes * per_class;
    d->x = vlp_malloc((size_t)d->n * 2 * sizeof *d->x);
    d->y = vlp_malloc((size_t)d->n * sizeof *d->y);
    vlp_params_init(&d->params);
    vlp_tape_init(&d->tape);
    vlp_mlp_register(&d->mlp, &d->params, "mlp", 3, (int[]){2, 64, 64, classes},
                     VLP_ACTIVATION_GELU);
    int rc = vlp_params_alloc(&d->params);
    if (rc != VLP_OK) {
        vlp_demo_free(d);
        return rc;
    }
    vlp_rng rng;
    vlp_rng_init(&rng, seed);
    vlp_rng init = vlp_rng_split(&rng, VLP_RNG_STREAM_INIT);
    vlp_rng data = vlp_rng_split(&rng, VLP_RNG_STREAM_DATA);
    vlp_mlp_init_weights(&d->mlp, &init);
    vlp_toy_spirals(d->x, d->y, per_class, classes, 0.02f, &data);
    vlp_adamw_init(&d->opt);
    d->opt.weight_decay = 0.0f;
    return VLP_OK;
}

void vlp_demo_free(vlp_demo *d) {
    vlp_tape_free(&d->tape);
    vlp_params_free(&d->params);
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}

/* Logits (rows, classes) of points; lives until the next tape reset. */
static vlp_tensor *logits_of(vlp_demo *d, const float *points, int rows) {
    vlp_tensor *x = vlp_tape_tensor(&d->tape, 2, (int[]){rows, 2});
    memcpy(x->data, points, (size_t)rows * 2 * sizeof *points);
    return vlp_mlp_forward(&d->mlp, &d->tape, x);
}

float vlp_demo_step(vlp_demo *d, float lr) {
    vlp_tape_reset(&d->tape);
    vlp_tensor *loss = vlp_op_cross_entropy(&d->tape, logits_of(d, d->x, d->n), d->y, -1, 0.0f);
    vlp_params_zero_grad(&d->params);
    vlp_tape_backward(&d->tape, loss, NULL);
    vlp_grad_clip(&d->params, 1.0f);
    vlp_adamw_step(&d->opt, &d->params, lr);
    return loss->data[0];
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

float vlp_demo_accuracy(vlp_demo *d) {
    vlp_tape_reset(&d->tape);
    vlp_tape_no_grad_begin(&d->tape);
    vlp_tensor *logits = logits_of(d, d->x, d->n);
    int correct = 0;
    for (int i = 0; i < d->n; i++) correct += argmax(logits->data + i * d->classes, d->classes) == d->y[i];
    vlp_tape_no_grad_end(&d->tape);
    return (float)correct / (float)d->n;
}

int vlp_demo_plot(vlp_demo *d, const char *path, int size) {
    static const unsigned char palette[][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},
                                               {214, 39, 40}, {148, 103, 189}, {140, 86, 75}};
    const int n_colors = (int)(sizeof palette / sizeof palette[0]);
    const float extent = 1.2f;
    unsigned char *img = vlp_malloc((size_t)size * size * 3);
    float *row = vlp_malloc((size_t)size * 2 * sizeof *row);
    for (int py = 0; py < size; py++) { /* one image row per forward */
        vlp_tape_reset(&d->tape);
        vlp_tape_no_grad_begin(&d->tape);
        for (int px = 0; px < size; px++) {
            row[2 * px] = extent * (2.0f * (px + 0.5f) / size - 1.0f);
            row[2 * px + 1] = extent * (1.0f - 2.0f * (py + 0.5f) / size);
        }
        vlp_tensor *logits = logits_of(d, row, size);
        for (int px = 0; px < size; px++) {
            const unsigned char *c = palette[argmax(logits->data + px * d->classes, d->classes) % n_colors];
            for (int k = 0; k < 3; k++) img[((size_t)py * size + px) * 3 + k] = (unsigned char)(c[k] / 3 + 170);
        }
        vlp_tape_no_grad_end(&d->tape);
    }
    for (int i = 0; i < d->n; i++) { /* 3x3 dots */
        int cx = (int)((d->x[2 * i] / extent + 1.0f) * 0.5f * size);
        int cy = (int)((1.0f - d->x[2 * i + 1] / extent) * 0.5f * size);
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                int x = cx + dx, y = cy + dy;
                if (x < 0 || y < 0 || x >= size || y >= size) continue;
                for (int k = 0; k < 3; k++)
                    img[((size_t)y * size + x) * 3 + k] = (unsigned char)(palette[d->y[i] % n_colors][k] * 2 / 3);
            }
    }
    int ok = stbi_write_png(path, size, size, 3, img, size * 3);
    free(img);
    free(row);
    return ok ? VLP_OK : vlp_error_set(VLP_EIO, "%s: cannot write the PNG", path);
}
