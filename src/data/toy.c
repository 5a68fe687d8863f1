/* Spirals (see toy.h): the classic "can a small MLP bend" problem. */
#include "data/toy.h"

#include <math.h>

void vlp_toy_spirals(float *x, int *y, int per_class, int classes, float noise, vlp_rng *rng) {
    for (int c = 0; c < classes; c++)
        for (int i = 0; i < per_class; i++) {
            int k = c * per_class + i;
            float r = (float)(i + 1) / (float)per_class; /* radius grows along the arm */
            float theta = 2.0f * (float)M_PI * ((float)c / classes + 0.75f * r);
            x[2 * k] = r * cosf(theta) + noise * vlp_rng_normal(rng);
            x[2 * k + 1] = r * sinf(theta) + noise * vlp_rng_normal(rng);
            y[k] = c;
        }
}
