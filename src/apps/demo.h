/* The engine's end-to-end demo until the trainer exists: an MLP learns to
 * classify 2-d spirals through the tape with AdamW, and draws what it
 * learned. The tests train the same task. Not a vision-language model. */
#ifndef VLP_DEMO_H
#define VLP_DEMO_H

#include <stdint.h>

#include "autograd/optim.h"
#include "autograd/params.h"
#include "autograd/tape.h"
#include "models/mlp.h"

typedef struct vlp_demo {
    vlp_params params;
    vlp_mlp mlp;
    vlp_tape tape;
    vlp_adamw opt;
    int n, classes;
    float *x; /* (n, 2) points */
    int *y;   /* (n) classes */
} vlp_demo;

int vlp_demo_init(vlp_demo *d, int classes, int per_class, uint64_t seed);
void vlp_demo_free(vlp_demo *d);

/* One full-batch step; returns the loss before the update. */
float vlp_demo_step(vlp_demo *d, float lr);

/* Fraction of the training points classified right. */
float vlp_demo_accuracy(vlp_demo *d);

/* A size x size PNG of [-1.2, 1.2]^2: the predicted class as a light colour,
 * the training points as dark dots of their true class. */
int vlp_demo_plot(vlp_demo *d, const char *path, int size);

#endif
