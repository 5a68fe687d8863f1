/* MLP block (see mlp.h). */
#include "models/mlp.h"

#include <math.h>
#include <stdio.h>

#include "base/error.h"

void vlp_mlp_register(vlp_mlp *m, vlp_params *p, const char *prefix, int n_layers,
                      const int *dims, vlp_activation act) {
    VLP_ASSERT(n_layers >= 1 && n_layers <= VLP_MLP_MAX_LAYERS, "MLP of %d layers", n_layers);
    m->n_layers = n_layers;
    m->act = act;
    char name[VLP_PARAM_NAME_MAX];
    for (int i = 0; i < n_layers; i++) {
        snprintf(name, sizeof name, "%s.%d.weight", prefix, i);
        m->weight[i] = vlp_params_add(p, name, 2, (int[]){dims[i + 1], dims[i]});
        snprintf(name, sizeof name, "%s.%d.bias", prefix, i);
        m->bias[i] = vlp_params_add(p, name, 1, (int[]){dims[i + 1]});
    }
}

void vlp_mlp_init_weights(vlp_mlp *m, vlp_rng *rng) {
    for (int i = 0; i < m->n_layers; i++) {
        float bound = 1.0f / sqrtf((float)m->weight[i]->shape[1]);
        vlp_rng_fill_uniform(rng, m->weight[i]->data, m->weight[i]->n, -bound, bound);
        vlp_rng_fill_uniform(rng, m->bias[i]->data, m->bias[i]->n, -bound, bound);
    }
}

vlp_tensor *vlp_mlp_forward(const vlp_mlp *m, vlp_tape *t, vlp_tensor *x) {
    for (int i = 0; i < m->n_layers; i++) {
        x = vlp_op_linear(t, x, m->weight[i], m->bias[i]);
        if (i + 1 < m->n_layers) x = vlp_op_activation(t, x, m->act);
    }
    return x;
}
