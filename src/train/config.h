/* Training configuration: INI files (parsed by libinih) checked against one
 * table of typed, range-checked, documented keys. The same table prints
 * `vlptrain --help-config` and docs/config.md. A bad file stops here, before
 * any work, with file:line, the key and what would be valid. */
#ifndef VLP_CONFIG_H
#define VLP_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define VLP_PATH_MAX 1024

typedef struct vlp_config {
    struct {
        int embed_dim, image_size, patch_size, vision_width, vision_layers, vision_heads;
        int context_length, text_width, text_layers, text_heads;
        float mlp_ratio;
        int activation; /* vlp_activation */
    } model;
    struct {
        char train[VLP_PATH_MAX], val[VLP_PATH_MAX], tokenizer[VLP_PATH_MAX];
        char separator[4], image_key[64], caption_key[64];
        int vocab_size, workers;
        float crop_min, flip;
    } data;
    struct {
        int batch_size, accum_freq, positives; /* positives: VLP_POSITIVES_* */
        long steps, epochs;
        long seed;
        char init[VLP_PATH_MAX];
        bool lock_image, lock_text;
    } train;
    struct {
        float lr, min_lr, weight_decay, beta1, beta2, eps, grad_clip;
        long warmup;
    } optim;
    struct {
        long every;
        int keep;
    } checkpoint;
    struct {
        long every;
        char classnames[VLP_PATH_MAX], templates[VLP_PATH_MAX];
        int retrieval; /* VLP_RETRIEVAL_* */
        int batch_size;
    } eval;
    struct {
        char dir[VLP_PATH_MAX];
        long every;
    } log;
} vlp_config;

enum { VLP_POSITIVES_NONE, VLP_POSITIVES_CLASS, VLP_POSITIVES_CAPTION };
enum { VLP_RETRIEVAL_NONE, VLP_RETRIEVAL_PAIR, VLP_RETRIEVAL_CONCEPT };

/* Defaults for every key; required keys left empty. */
void vlp_config_defaults(vlp_config *c);

/* Reads path over the defaults, then applies overrides ("section.key=value",
 * as --set gives them), then checks required keys. Errors name path:line
 * (or --set) and the key. */
int vlp_config_load(vlp_config *c, const char *path, const char *const *overrides, int n_overrides);

/* Parses INI text (a checkpoint's copy of its config) the same way. */
int vlp_config_parse_text(vlp_config *c, const char *text, const char *name);

/* The effective configuration as INI text, every key in table order: what
 * checkpoints store and what ranks compare. Returns a malloc'd string. */
char *vlp_config_to_text(const vlp_config *c);

/* The documentation of every key: plain text, or a markdown table. */
void vlp_config_help(FILE *out, bool markdown);

#endif
