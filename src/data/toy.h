/* Synthetic toy data for the engine's demo and tests: interleaved 2-d
 * spirals, one arm per class. Not a vision-language dataset. */
#ifndef VLP_TOY_H
#define VLP_TOY_H

#include "base/rng.h"

/* Fills x (classes * per_class, 2) with points in [-1, 1]^2 and y with class
 * ids, grouped by class. noise is the std of Gaussian jitter. */
void vlp_toy_spirals(float *x, int *y, int per_class, int classes, float noise, vlp_rng *rng);

#endif
