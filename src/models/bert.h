/* The BERT-style text tower of BLIP (its models/med.py): word + learned
 * position embeddings then LayerNorm; post-LN layers of self-attention, an
 * optional cross-attention to image tokens, and the GELU FFN; the masked-LM
 * prediction head. Parameter names are Hugging Face's under a prefix
 * ("text_encoder.encoder.layer.0.attention.self.query.weight"). Not the
 * tokenizer, nor BLIP's losses (blip.h). */
#ifndef VLP_BERT_H
#define VLP_BERT_H

#include <stdint.h>

#include "models/transformer.h"

typedef struct vlp_bert_config {
    int vocab_size, context_length, width, layers, heads, mlp_width;
    int encoder_width; /* width of the image tokens cross-attention reads */
} vlp_bert_config;

/* BertAttention: self (query, key, value) and output (dense, LayerNorm).
 * Cross-attention's key and value read encoder_width-wide image tokens. */
typedef struct vlp_bert_attention {
    vlp_tensor *query_w, *query_b;     /* (C, C), (C) */
    vlp_tensor *key_w, *key_b;         /* (C, Ckv), (C) */
    vlp_tensor *value_w, *value_b;     /* (C, Ckv), (C) */
    vlp_tensor *dense_w, *dense_b;     /* (C, C), (C): output.dense */
    vlp_ln ln;                         /* output.LayerNorm */
} vlp_bert_attention;

typedef struct vlp_bert_layer {
    vlp_bert_attention attention, crossattention;
    vlp_tensor *intermediate_w, *intermediate_b; /* (M, C), (M) */
    vlp_tensor *output_w, *output_b;             /* (C, M), (C) */
    vlp_ln output_ln;
} vlp_bert_layer;

typedef struct vlp_bert {
    vlp_bert_config cfg;
    vlp_tensor *word_embeddings;     /* (vocab, C) */
    vlp_tensor *position_embeddings; /* (context, C) */
    vlp_ln embeddings_ln;
    vlp_bert_layer layer[VLP_MAX_LAYERS];
} vlp_bert;

/* BertLMPredictionHead: transform (dense, GELU, LayerNorm), then the
 * decoder to the vocabulary, whose weight is the word embedding table (tied,
 * as BLIP's BertLMHeadModel), plus its own bias. */
typedef struct vlp_bert_lm_head {
    vlp_tensor *dense_w, *dense_b; /* (C, C), (C): transform.dense */
    vlp_ln ln;                     /* transform.LayerNorm */
    vlp_tensor *bias;              /* (vocab) */
} vlp_bert_lm_head;

/* Registers "<prefix>.embeddings.*" and "<prefix>.encoder.layer.<i>.*", every
 * layer with cross-attention (BLIP's fusion_layer 0). */
void vlp_bert_register(vlp_bert *bert, vlp_params *p, const char *prefix,
                       const vlp_bert_config *cfg);
/* A tower sharing every tensor of `shared` but the self-attention (query,
 * key, value and its output dense and LayerNorm), registered anew under
 * "<prefix>.encoder.layer.<i>.attention.*": BLIP's decoder, tied to the
 * encoder by tie_encoder_decoder_weights(..., skip_key="/attention"). */
void vlp_bert_register_tied(vlp_bert *bert, const vlp_bert *shared, vlp_params *p,
                            const char *prefix);
/* BERT's init: weights and embeddings N(0, 0.02), biases 0, LayerNorm 1, 0.
 * A tied tower initialises only its own self-attention. */
void vlp_bert_init(vlp_bert *bert, vlp_rng *rng, bool tied);

/* ids (B, context_length), each row's first lengths[b] tokens real and the
 * rest padding no key attends to. image (B, Ti, encoder_width), or NULL for
 * the text-only mode (no cross-attention); causal for the decoder.
 * -> the last hidden state (B, context_length, C). */
vlp_tensor *vlp_bert_forward(const vlp_bert *bert, vlp_tape *t, const int *ids, const int *lengths,
                             int B, vlp_tensor *image, bool causal);

/* One BertAttention's tensors, "<prefix>.self.{query,key,value}.*" and
 * "<prefix>.output.{dense,LayerNorm}.*"; key and value read Ckv-wide rows. */
void vlp_bert_attention_register(vlp_bert_attention *a, vlp_params *p, const char *prefix, int C,
                                 int Ckv);

/* One BertAttention on x (B, T, C) with keys and values from kv (x itself
 * for self-attention, image tokens for cross-attention):
 * LayerNorm(x + dense(attention(query(x), key(kv), value(kv)))). */
vlp_tensor *vlp_bert_attention_forward(const vlp_bert_attention *a, vlp_tape *t, vlp_tensor *x,
                                       vlp_tensor *kv, int heads, bool causal,
                                       const uint8_t *key_mask);

void vlp_bert_lm_head_register(vlp_bert_lm_head *h, vlp_params *p, const char *prefix, int C,
                               int vocab);
void vlp_bert_lm_head_init(vlp_bert_lm_head *h, vlp_rng *rng);
/* x (..., C) -> logits (..., vocab) through the transform and the tied
 * word_embeddings (vocab, C). */
vlp_tensor *vlp_bert_lm_head_forward(const vlp_bert_lm_head *h, vlp_tape *t, vlp_tensor *x,
                                     vlp_tensor *word_embeddings);

#endif
