/* The model fuzz_checkpoint.c loads checkpoints into, and make_seeds.c
 * writes its seed checkpoint from: a CLIP small enough that a checkpoint
 * of it is a few tens of KB. */
#ifndef VLP_FUZZ_TINY_CLIP_H
#define VLP_FUZZ_TINY_CLIP_H

#include "data/tokenizer.h"
#include "models/clip.h"

static inline vlp_clip_config fuzz_tiny_clip_config(void) {
    return (vlp_clip_config){.embed_dim = 4, .image_size = 4, .patch_size = 2, .vision_width = 4,
                             .vision_layers = 1, .vision_heads = 1,
                             .vocab_size = VLP_TOKENIZER_VOCAB_SIZE(2), .context_length = 4,
                             .text_width = 4, .text_layers = 1, .text_heads = 1, .mlp_ratio = 1.0f,
                             .act = VLP_ACTIVATION_GELU};
}

/* What the seed checkpoint's attributes hold besides the weights. */
#define FUZZ_TINY_CONFIG                                                                           \
    "[model]\nembed_dim = 4\nimage_size = 4\npatch_size = 2\nvision_width = 4\nvision_layers = 1\n" \
    "vision_heads = 1\ncontext_length = 4\ntext_width = 4\ntext_layers = 1\ntext_heads = 1\n"       \
    "mlp_ratio = 1\n[data]\ntrain = pairs.tsv\n[log]\ndir = runs/tiny\n"
#define FUZZ_TINY_MERGES "#version: 0.2\nc a\nca t</w>\n"

#endif
