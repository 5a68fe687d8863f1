/* The toy problem shared by the engine tests: a small MLP that classifies
 * 2-d spirals, trained full-batch through the tape with AdamW. */
#ifndef VLP_TEST_TOY_H
#define VLP_TEST_TOY_H

#include <string.h>

#include "autograd/error.h"
#include "autograd/optim.h"
#include "data/toy.h"
#include "models/mlp.h"

enum { TOY_CLASSES = 3, TOY_PER_CLASS = 40, TOY_N = TOY_CLASSES * TOY_PER_CLASS };

typedef struct toy {
    vlp_params params;
    vlp_mlp mlp;
    vlp_tape tape;
    vlp_adamw opt;
    float x[TOY_N * 2];
    int y[TOY_N];
} toy;

static inline void toy_init(toy *t) {
    vlp_rng rng;
    vlp_rng_init(&rng, 2026);
    vlp_params_init(&t->params);
    vlp_mlp_register(&t->mlp, &t->params, "mlp", 3, (int[]){2, 64, 64, TOY_CLASSES},
                     VLP_ACTIVATION_GELU);
    VLP_ASSERT(vlp_params_alloc(&t->params) == VLP_OK, "toy params");
    vlp_rng init = vlp_rng_split(&rng, VLP_RNG_STREAM_INIT);
    vlp_mlp_init_weights(&t->mlp, &init);
    vlp_rng data = vlp_rng_split(&rng, VLP_RNG_STREAM_DATA);
    vlp_toy_spirals(t->x, t->y, TOY_PER_CLASS, TOY_CLASSES, 0.02f, &data);
    vlp_tape_init(&t->tape);
    vlp_adamw_init(&t->opt);
    t->opt.weight_decay = 0.0f;
}

/* One full-batch step; returns the loss before the update. */
static inline float toy_step(toy *t, float lr) {
    vlp_tape_reset(&t->tape);
    vlp_tensor *x = vlp_tape_tensor(&t->tape, 2, (int[]){TOY_N, 2});
    memcpy(x->data, t->x, sizeof t->x);
    vlp_tensor *logits = vlp_mlp_forward(&t->mlp, &t->tape, x);
    vlp_tensor *loss = vlp_op_cross_entropy(&t->tape, logits, t->y, -100, 0.0f);
    vlp_params_zero_grad(&t->params);
    vlp_tape_backward(&t->tape, loss, NULL);
    vlp_grad_clip(&t->params, 1.0f);
    vlp_adamw_step(&t->opt, &t->params, lr);
    return loss->data[0];
}

static inline void toy_free(toy *t) {
    vlp_tape_free(&t->tape);
    vlp_params_free(&t->params);
}

#endif
