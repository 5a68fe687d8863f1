/* The BLIP of a PyTorch reference's golden file (scripts/blip_ref.py,
 * blip_decode_ref.py): sized by its config attributes, with its /params.
 * One copy per suite, as golden.h. */
#ifndef VLP_TESTS_GOLDEN_BLIP_H
#define VLP_TESTS_GOLDEN_BLIP_H

#include "golden.h"
#include "models/blip.h"
#include "train/weights.h"

static void golden_blip(hid_t f, const char *path, vlp_blip *m, uint64_t seed) {
#define I(name) .name = (int)attr_number(f, #name)
    vlp_blip_config cfg = {I(embed_dim), I(image_size), I(patch_size), I(vision_width),
                           I(vision_layers), I(vision_heads), I(vocab_size), I(context_length),
                           I(text_width), I(text_layers), I(text_heads),
                           .mlp_ratio = (float)attr_number(f, "mlp_ratio"), I(enc_token_id),
                           I(dec_token_id)};
#undef I
    ck_assert_int_eq(vlp_blip_init(m, &cfg, seed), VLP_OK);
    int rc = vlp_weights_read(f, path, "/params", &m->params, m->params.data);
    ck_assert_msg(rc == VLP_OK, "%s", vlp_error_message());
}

#endif
