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
#define VLP_CONFIG_KEYS_MAX 96
#define VLP_ORIGIN_PRESET (-2)
/* The prompt when no templates are given ([eval], [groupvit], vlpeval,
 * vlpsegment): OpenAI's CLIP's simplest. */
#define VLP_DEFAULT_TEMPLATE "a photo of a {}."

typedef struct vlp_config {
    struct {
        int kind; /* VLP_MODEL_* */
        char preset[32];
        int embed_dim, image_size, patch_size, vision_width, vision_layers, vision_heads;
        int context_length, text_width, text_layers, text_heads;
        float mlp_ratio;
        int activation; /* vlp_activation */
    } model;
    struct {
        float itc_weight, itm_weight, lm_weight;
        bool momentum;
        float momentum_coef, alpha;
        int queue_size;
        char prompt[128];
        int negatives; /* VLP_NEGATIVES_* */
        float itm_uniform;
    } blip;
    struct {
        /* comma-separated lists, checked by vlp_config_int_list */
        char depths[64], group_tokens[64], output_groups[64];
        int proj_hidden, prompts;
        float multi_label_weight;
        float group_weight;
        int labels; /* VLP_LABELS_* */
        char nouns[VLP_PATH_MAX], templates[VLP_PATH_MAX];
    } groupvit;
    struct {
        char train[VLP_PATH_MAX], val[VLP_PATH_MAX], tokenizer[VLP_PATH_MAX];
        char separator[4], image_key[64], caption_key[64];
        int vocab_size, workers;
        float crop_min, flip, color_jitter, grayscale, blur, posterize;
    } data;
    struct {
        char mean[96], std[96];  /* three numbers, checked by vlp_config_float_list */
        int interpolation;       /* VLP_INTERP_* */
        int resize_mode;         /* VLP_RESIZE_* */
        int alpha;               /* VLP_ALPHA_* */
    } preprocess;
    struct {
        int batch_size, accum_freq, positives; /* positives: VLP_POSITIVES_* */
        long steps, epochs;
        long seed;
        char init[VLP_PATH_MAX];
        bool lock_image, lock_text;
        int max_bad_steps; /* non-finite steps in a row that stop the run */
    } train;
    struct {
        float lr, min_lr, weight_decay, beta1, beta2, eps, grad_clip;
        long warmup;
    } optim;
    struct {
        long every;
        int keep;
        int on_error; /* VLP_ON_ERROR_* */
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
        bool overwrite; /* a fresh run may replace the run already in dir */
    } log;
    /* Where each key (by table order) got its value: 0 its default, > 0 a
     * line of the file, -1 --set, VLP_ORIGIN_PRESET [model] preset. For
     * errors found after parsing, such as a data path that does not exist. */
    int origin[VLP_CONFIG_KEYS_MAX];
} vlp_config;

enum { VLP_MODEL_CLIP, VLP_MODEL_BLIP, VLP_MODEL_GROUPVIT };
enum { VLP_NEGATIVES_LOCAL, VLP_NEGATIVES_GLOBAL };
enum { VLP_LABELS_TAGS, VLP_LABELS_NOUNS };
enum { VLP_POSITIVES_NONE, VLP_POSITIVES_CLASS, VLP_POSITIVES_CAPTION };
enum { VLP_RETRIEVAL_NONE, VLP_RETRIEVAL_PAIR, VLP_RETRIEVAL_CONCEPT };
enum { VLP_ON_ERROR_STOP, VLP_ON_ERROR_CONTINUE };

/* Defaults for every key; required keys left empty. */
void vlp_config_defaults(vlp_config *c);

/* Reads path over the defaults, then applies overrides ("section.key=value",
 * as --set gives them), then [model] preset under both, then checks required
 * keys. Errors name path:line (or --set) and the key. */
int vlp_config_load(vlp_config *c, const char *path, const char *const *overrides, int n_overrides);

/* Parses INI text (a checkpoint's or run folder's copy of its config) the
 * same way, for inference: the keys only training needs may be absent. */
int vlp_config_parse_text(vlp_config *c, const char *text, const char *name);

/* Where [section] name was set, for messages: "path:17: [data] train",
 * "--set data.train" or "path: [data] train" (its default). */
void vlp_config_where(const vlp_config *c, const char *path, const char *section, const char *name,
                      char *out, size_t size);

/* The effective configuration as INI text, every key in table order: what
 * checkpoints store and what ranks compare. Returns a malloc'd string. */
char *vlp_config_to_text(const vlp_config *c);

/* [train] init's model: every [model] and [preprocess] key (but preset)
 * that c's file and --set left at its default takes from's value; one set
 * to another value is an error naming path's line and from_name. */
int vlp_config_inherit(vlp_config *c, const vlp_config *from, const char *path, const char *from_name);

/* Parses "6,3,3" into out (at most max numbers, each >= 1); returns how
 * many, or -1 when text is not such a list. */
int vlp_config_int_list(const char *text, int *out, int max);

/* Parses "0.5,0.25,1" into out (at most max finite numbers); returns how
 * many, or -1 when text is not such a list. */
int vlp_config_float_list(const char *text, float *out, int max);

/* The documentation of every key: plain text, or a markdown table. */
void vlp_config_help(FILE *out, bool markdown);

#endif
