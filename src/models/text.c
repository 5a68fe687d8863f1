/* CLIP text transformer (see text.h). */
#include "models/text.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"

void vlp_text_register(vlp_text *tx, vlp_params *p, const char *prefix, const vlp_text_config *cfg) {
    memset(tx, 0, sizeof *tx);
    tx->cfg = *cfg;
    int W = cfg->width;
    char name[VLP_PARAM_NAME_MAX];
    const char *dot = prefix[0] ? "." : "";
#define NAME(suffix) (snprintf(name, sizeof name, "%s%s" suffix, prefix, dot), name)
    tx->token_embedding = vlp_params_add(p, NAME("token_embedding.weight"), 2, (int[]){cfg->vocab_size, W});
    tx->positional_embedding =
        vlp_params_add(p, NAME("positional_embedding"), 2, (int[]){cfg->context_length, W});
    vlp_transformer_register(&tx->transformer, p, NAME("transformer"), W, cfg->layers, cfg->heads,
                             cfg->mlp_width, cfg->act);
    vlp_ln_register(&tx->ln_final, p, NAME("ln_final"), W);
    tx->text_projection = vlp_params_add(p, NAME("text_projection"), 2, (int[]){W, cfg->output_dim});
#undef NAME
}

void vlp_text_init(vlp_text *tx, vlp_rng *rng) {
    vlp_rng_fill_normal(rng, tx->token_embedding->data, tx->token_embedding->n, 0.0f, 0.02f);
    vlp_rng_fill_normal(rng, tx->positional_embedding->data, tx->positional_embedding->n, 0.0f, 0.01f);
    vlp_transformer_init_text(&tx->transformer, rng);
    vlp_ln_init(&tx->ln_final);
    vlp_rng_fill_normal(rng, tx->text_projection->data, tx->text_projection->n, 0.0f,
                        1.0f / sqrtf((float)tx->cfg.width));
}

vlp_tensor *vlp_text_forward(const vlp_text *tx, vlp_tape *t, const int *ids, int B) {
    int T = tx->cfg.context_length, W = tx->cfg.width;
    vlp_tensor *x = vlp_op_embedding(t, tx->token_embedding, ids, (long)B * T);
    x = vlp_op_reshape(t, x, 3, (int[]){B, T, W});
    x = vlp_op_add(t, x, tx->positional_embedding);
    /* Causal attention: padding after EOT cannot reach EOT, so no key mask. */
    x = vlp_transformer_forward(&tx->transformer, t, x, true, NULL);
    x = vlp_ln_forward(&tx->ln_final, t, x);
    /* Pool each row at its EOT: gather rows b*T + argmax(ids[b]). */
    int *rows = vlp_tape_alloc(t, (size_t)B * sizeof *rows);
    for (int b = 0; b < B; b++) {
        int best = 0;
        for (int i = 1; i < T; i++)
            if (ids[b * T + i] > ids[b * T + best]) best = i;
        rows[b] = b * T + best;
    }
    x = vlp_op_embedding(t, vlp_op_reshape(t, x, 2, (int[]){B * T, W}), rows, B);
    return vlp_op_matmul(t, x, tx->text_projection, false, false);
}
