/* The CLIP text transformer: token and positional embeddings, causal
 * blocks, ln_final, pooling at the EOT token (the largest id of each row,
 * as CLIP's argmax), projection (no bias). OpenCLIP's top-level names:
 * token_embedding.weight, positional_embedding, transformer.*, ln_final.*,
 * text_projection. Tokenizing is the data module's job, not this one's. */
#ifndef VLP_TEXT_H
#define VLP_TEXT_H

#include "models/transformer.h"

typedef struct vlp_text_config {
    int vocab_size, context_length, width, layers, heads, mlp_width, output_dim;
    vlp_activation act;
} vlp_text_config;

typedef struct vlp_text {
    vlp_text_config cfg;
    vlp_tensor *token_embedding;      /* (vocab, width) */
    vlp_tensor *positional_embedding; /* (context, width) */
    vlp_tensor *text_projection;      /* (width, output_dim) */
    vlp_ln ln_final;
    vlp_transformer transformer;
} vlp_text;

/* prefix "" gives OpenCLIP's CLIP names; "text" gives "text.token_embedding...". */
void vlp_text_register(vlp_text *tx, vlp_params *p, const char *prefix, const vlp_text_config *cfg);
/* OpenCLIP: token embedding N(0, 0.02), positional N(0, 0.01), blocks as
 * vlp_transformer_init_text, projection N(0, width^-1/2). */
void vlp_text_init(vlp_text *tx, vlp_rng *rng);

/* ids (B, context_length), padded with 0 after EOT -> (B, output_dim). */
vlp_tensor *vlp_text_forward(const vlp_text *tx, vlp_tape *t, const int *ids, int B);

#endif
