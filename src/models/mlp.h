/* A multi-layer perceptron block: linear layers with an activation between
 * them (none after the last). Used by the demo and tests today, and by
 * GroupViT's projector later. Parameters are "<prefix>.<i>.weight|bias". */
#ifndef VLP_MLP_H
#define VLP_MLP_H

#include "autograd/ops.h"
#include "autograd/params.h"
#include "base/rng.h"

#define VLP_MLP_MAX_LAYERS 8

typedef struct vlp_mlp {
    int n_layers;
    vlp_activation act;
    vlp_tensor *weight[VLP_MLP_MAX_LAYERS], *bias[VLP_MLP_MAX_LAYERS];
} vlp_mlp;

/* dims has n_layers + 1 sizes: input, hidden..., output. */
void vlp_mlp_register(vlp_mlp *m, vlp_params *p, const char *prefix, int n_layers,
                      const int *dims, vlp_activation act);
/* torch.nn.Linear's default: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias. */
void vlp_mlp_init_weights(vlp_mlp *m, vlp_rng *rng);
vlp_tensor *vlp_mlp_forward(const vlp_mlp *m, vlp_tape *t, vlp_tensor *x);

#endif
