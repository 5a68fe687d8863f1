/* Pretrained CLIPs in and out: an OpenCLIP hub folder, a Hugging Face
 * transformers CLIP folder or a bare .safetensors file becomes a vlp run
 * folder (config.ini, tokenizer.bpe, model.h5) that every vlp program and
 * [train] init take; a vlp CLIP goes back out as either folder. Not the
 * safetensors format itself (data/safetensors.h) nor downloading. */
#ifndef VLP_PRETRAINED_H
#define VLP_PRETRAINED_H

#include <stdio.h>

typedef enum { VLP_PRETRAINED_OPEN_CLIP, VLP_PRETRAINED_HF } vlp_pretrained_format;

typedef struct vlp_import_opts {
    /* CLIP's merges file (bpe_simple_vocab_16e6.txt.gz, or a merges.txt),
     * cut to the merges the model's vocabulary implies; NULL: the folder's
     * merges.txt. */
    const char *vocab;
    /* A .safetensors file's architecture, as [model] preset names it
     * (ViT-B-32, ...); NULL: inferred from the tensors' shapes. */
    const char *arch;
    /* With neither arch nor a config file: the activation, which weights do
     * not tell (0 GELU, 1 QuickGELU as OpenAI's build_model assumes). */
    int quick_gelu;
    FILE *log; /* what was read and inferred; NULL: silent */
} vlp_import_opts;

/* Reads src and writes the run folder out (created; refused if it already
 * holds a model.h5). Every tensor of the model must be found with its
 * shape, and every tensor of src used: errors name the file and tensor. */
int vlp_pretrained_import(const char *src, const char *out, const vlp_import_opts *o);

/* Writes the CLIP of run folder (or checkpoint) run as an OpenCLIP hub
 * folder (open_clip_config.json, open_clip_model.safetensors, merges.txt)
 * or a Hugging Face folder (config.json, model.safetensors, merges.txt,
 * vocab.json, preprocessor_config.json, tokenizer_config.json,
 * special_tokens_map.json), F32. */
int vlp_pretrained_export(const char *run, const char *out, vlp_pretrained_format format);

#endif
