/* The key table and its parser (see config.h). */
#include "train/config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"

typedef enum { KEY_INT, KEY_LONG, KEY_FLOAT, KEY_BOOL, KEY_STRING, KEY_CHOICE } key_kind;

typedef struct key {
    const char *section, *name;
    key_kind kind;
    size_t offset, size; /* size: for strings, the buffer */
    const char *value;   /* default, as text; NULL: required */
    double min, max;     /* numbers */
    const char *choices; /* KEY_CHOICE: "a|b|c", stored as the index */
    const char *help;
} key;

#define F(field) offsetof(vlp_config, field), sizeof(((vlp_config *)0)->field)

static const key KEYS[] = {
    {"model", "kind", KEY_CHOICE, F(model.kind), "clip", 0, 0, "clip|blip|groupvit", "what to train: CLIP, BLIP (contrastive + matching + captioning losses, [blip]) or GroupViT ([groupvit]); the other [model] keys size all three"},
    {"model", "preset", KEY_STRING, F(model.preset), "", 0, 0, 0, "a named architecture as OpenCLIP names it (ViT-B-32, ViT-B-16, ViT-L-14, ViT-L-14-336, each also -quickgelu): its [model] sizes (QuickGELU for -quickgelu) and [data] vocab_size 49408, under any key the file or --set gives ([preprocess] keeps its defaults, which are OpenAI's); empty: none"},
    {"model", "embed_dim", KEY_INT, F(model.embed_dim), "128", 1, 8192, 0, "size of the joint embedding"},
    {"model", "image_size", KEY_INT, F(model.image_size), "32", 8, 1024, 0, "input images are image_size x image_size"},
    {"model", "patch_size", KEY_INT, F(model.patch_size), "4", 1, 64, 0, "ViT patch side; divides image_size"},
    {"model", "vision_width", KEY_INT, F(model.vision_width), "128", 8, 8192, 0, "ViT width"},
    {"model", "vision_layers", KEY_INT, F(model.vision_layers), "4", 1, 48, 0, "ViT blocks (clip, blip; groupvit: [groupvit] depths)"},
    {"model", "vision_heads", KEY_INT, F(model.vision_heads), "4", 1, 128, 0, "ViT attention heads; divide vision_width"},
    {"model", "context_length", KEY_INT, F(model.context_length), "32", 4, 1024, 0, "text tokens per caption, SOT and EOT included"},
    {"model", "text_width", KEY_INT, F(model.text_width), "128", 8, 8192, 0, "text transformer width"},
    {"model", "text_layers", KEY_INT, F(model.text_layers), "4", 1, 48, 0, "text transformer blocks"},
    {"model", "text_heads", KEY_INT, F(model.text_heads), "4", 1, 128, 0, "text attention heads; divide text_width"},
    {"model", "mlp_ratio", KEY_FLOAT, F(model.mlp_ratio), "4", 0.25, 16, 0, "MLP width / model width, both towers"},
    {"model", "activation", KEY_CHOICE, F(model.activation), "gelu", 0, 0, "gelu|quick_gelu", "GELU, or OpenAI CLIP's QuickGELU (clip only)"},
    {"data", "train", KEY_STRING, F(data.train), NULL, 0, 0, 0, "training data: a .tsv/.csv manifest, a caption or class folder, or a packed .h5 shard (relative paths are relative to the config file); required to train, not in a run folder read for inference"},
    {"data", "val", KEY_STRING, F(data.val), "", 0, 0, 0, "validation data for [eval], same forms; empty for none"},
    {"data", "tokenizer", KEY_STRING, F(data.tokenizer), "", 0, 0, 0, "BPE merges file (CLIP's format, .gz allowed); empty: learn one from the training captions"},
    {"data", "vocab_size", KEY_INT, F(data.vocab_size), "1024", 514, 1 << 20, 0, "vocabulary of the learned tokenizer (when tokenizer is empty)"},
    {"data", "separator", KEY_STRING, F(data.separator), "", 0, 0, 0, "manifest separator: one character, or \\t for a tab; empty: tab, or ',' for .csv"},
    {"data", "image_key", KEY_STRING, F(data.image_key), "filepath", 0, 0, 0, "manifest column of image paths"},
    {"data", "caption_key", KEY_STRING, F(data.caption_key), "title", 0, 0, 0, "manifest column of captions"},
    {"data", "workers", KEY_INT, F(data.workers), "1", 1, 64, 0, "image decoding threads per rank"},
    {"data", "crop_min", KEY_FLOAT, F(data.crop_min), "0.9", 0.05, 1, 0, "random resized crop: smallest area fraction"},
    {"data", "flip", KEY_FLOAT, F(data.flip), "0", 0, 1, 0, "probability of a horizontal flip"},
    {"data", "color_jitter", KEY_FLOAT, F(data.color_jitter), "0", 0, 1, 0, "colour jitter strength s: brightness, contrast and saturation each scaled by a factor uniform in [1 - s, 1 + s] (torchvision's ColorJitter(s, s, s))"},
    {"data", "grayscale", KEY_FLOAT, F(data.grayscale), "0", 0, 1, 0, "probability of turning a training image grey (torchvision's RandomGrayscale)"},
    {"data", "blur", KEY_FLOAT, F(data.blur), "0", 0, 1, 0, "probability of a Gaussian blur of a training image, sigma uniform in [0.1, 2] pixels of the crop (torchvision's GaussianBlur as SimCLR uses it)"},
    {"data", "posterize", KEY_FLOAT, F(data.posterize), "0", 0, 1, 0, "probability of keeping 3 bits per colour channel of a training image (torchvision's RandomPosterize(3)): flat colours, no gradients"},
    {"train", "batch_size", KEY_INT, F(train.batch_size), "128", 1, 1 << 20, 0, "pairs per rank per micro-batch; the contrastive batch is batch_size x ranks x accum_freq"},
    {"train", "accum_freq", KEY_INT, F(train.accum_freq), "1", 1, 1024, 0, "micro-batches per step, every negative kept (OpenCLIP's scheme)"},
    {"train", "steps", KEY_LONG, F(train.steps), "0", 0, 1e12, 0, "optimizer steps; 0: epochs x steps per epoch"},
    {"train", "epochs", KEY_LONG, F(train.epochs), "1", 1, 1e9, 0, "passes over the data when steps is 0"},
    {"train", "seed", KEY_LONG, F(train.seed), "0", 0, 1e15, 0, "seeds initialisation, order and augmentation"},
    {"train", "init", KEY_STRING, F(train.init), "", 0, 0, 0, "start from these weights: a run folder, a checkpoint, or a model .h5 (its tokenizer comes along unless [data] tokenizer is set); empty: OpenCLIP's initialisation"},
    {"train", "lock_image", KEY_BOOL, F(train.lock_image), "false", 0, 0, 0, "freeze the image tower"},
    {"train", "lock_text", KEY_BOOL, F(train.lock_text), "false", 0, 0, 0, "freeze the text tower"},
    {"train", "positives", KEY_CHOICE, F(train.positives), "none", 0, 0, "none|class|caption", "extra positives: pairs sharing a class id or an identical caption (soft targets)"},
    {"train", "max_bad_steps", KEY_INT, F(train.max_bad_steps), "10", 1, 1e9, 0, "a step whose loss or gradient norm is not finite (NaN, Inf) is skipped; this many in a row stop the run, with no checkpoint after the first of them"},
    {"optim", "lr", KEY_FLOAT, F(optim.lr), "5e-4", 0, 10, 0, "peak learning rate"},
    {"optim", "min_lr", KEY_FLOAT, F(optim.min_lr), "0", 0, 10, 0, "learning rate at the end of the cosine"},
    {"optim", "warmup", KEY_LONG, F(optim.warmup), "100", 0, 1e12, 0, "steps of linear warmup"},
    {"optim", "weight_decay", KEY_FLOAT, F(optim.weight_decay), "0.2", 0, 10, 0, "AdamW decoupled decay, tensors of 2+ dims only"},
    {"optim", "beta1", KEY_FLOAT, F(optim.beta1), "0.9", 0, 0.99999, 0, "AdamW beta1"},
    {"optim", "beta2", KEY_FLOAT, F(optim.beta2), "0.98", 0, 0.99999, 0, "AdamW beta2"},
    {"optim", "eps", KEY_FLOAT, F(optim.eps), "1e-6", 1e-12, 1, 0, "AdamW epsilon"},
    {"optim", "grad_clip", KEY_FLOAT, F(optim.grad_clip), "0", 0, 1e6, 0, "global gradient norm limit; 0: no clipping"},
    {"checkpoint", "every", KEY_LONG, F(checkpoint.every), "500", 0, 1e12, 0, "steps between checkpoints (and one at the end); 0: only at the end"},
    {"checkpoint", "keep", KEY_INT, F(checkpoint.keep), "3", 1, 1000, 0, "newest checkpoints kept"},
    {"checkpoint", "on_error", KEY_CHOICE, F(checkpoint.on_error), "stop", 0, 0, "stop|continue", "a checkpoint that cannot be written (disk full): stop the run with an error, or warn and keep training (the previous checkpoint stays either way)"},
    {"eval", "every", KEY_LONG, F(eval.every), "0", 0, 1e12, 0, "steps between evaluations on [data] val (and one at the end); 0: only at the end"},
    {"eval", "classnames", KEY_STRING, F(eval.classnames), "", 0, 0, 0, "zero-shot classification of [data] val by its class ids: a file of class names, one per line; empty: none"},
    {"eval", "templates", KEY_STRING, F(eval.templates), "", 0, 0, 0, "prompt templates for zero-shot, one per line with {} for the name; empty: \"" VLP_DEFAULT_TEMPLATE "\""},
    {"eval", "retrieval", KEY_CHOICE, F(eval.retrieval), "none", 0, 0, "none|pair|concept", "image-text retrieval on [data] val: image i matches caption i (pair) or any caption of its concept_id"},
    {"eval", "batch_size", KEY_INT, F(eval.batch_size), "256", 1, 1 << 20, 0, "pairs per rank per evaluation batch"},
    {"log", "dir", KEY_STRING, F(log.dir), NULL, 0, 0, 0, "required to train: run folder: metrics.jsonl, checkpoints, tokenizer (relative to the working directory)"},
    {"log", "every", KEY_LONG, F(log.every), "10", 1, 1e12, 0, "steps between plain progress lines when not on a terminal"},
    {"log", "overwrite", KEY_BOOL, F(log.overwrite), "false", 0, 0, 0, "a fresh run (no --resume) in a dir that holds a run (model.h5, checkpoints or metrics.jsonl) replaces it: its checkpoints and model.h5 are removed first; false: such a start is refused"},
    {"blip", "itc_weight", KEY_FLOAT, F(blip.itc_weight), "1", 0, 1000, 0, "weight of the image-text contrastive loss (ITC)"},
    {"blip", "itm_weight", KEY_FLOAT, F(blip.itm_weight), "1", 0, 1000, 0, "weight of the image-text matching loss on hard negatives (ITM)"},
    {"blip", "lm_weight", KEY_FLOAT, F(blip.lm_weight), "1", 0, 1000, 0, "weight of the captioning loss (LM)"},
    {"blip", "momentum", KEY_BOOL, F(blip.momentum), "false", 0, 0, 0, "ITC with momentum distillation (ALBEF's): momentum encoders, a feature queue and soft targets; the in-batch columns are then the rank's own, as in BLIP's pretraining"},
    {"blip", "momentum_coef", KEY_FLOAT, F(blip.momentum_coef), "0.995", 0, 1, 0, "after each step the momentum encoders move: p_m = m p_m + (1 - m) p"},
    {"blip", "queue_size", KEY_INT, F(blip.queue_size), "4096", 1, 1e7, 0, "momentum features of earlier batches kept as extra ITC columns; at least the global batch"},
    {"blip", "alpha", KEY_FLOAT, F(blip.alpha), "0.4", 0, 1, 0, "weight of the momentum model's soft targets in ITC"},
    {"blip", "prompt", KEY_STRING, F(blip.prompt), "a picture of", 0, 0, 0, "text put before every caption for the captioning loss and not scored (BLIP's prompt); empty: none"},
    {"blip", "negatives", KEY_CHOICE, F(blip.negatives), "local", 0, 0, "local|global", "ITM hard negatives from the rank's own batch (BLIP's pretraining) or from the global batch (BLIP's retrieval fine-tuning; W ranks then compute what one process does)"},
    {"blip", "itm_uniform", KEY_FLOAT, F(blip.itm_uniform), "0", 0, 1, 0, "share of ITM negatives drawn uniformly from the batch instead of by ITC similarity (0: BLIP's hard negatives only); a small model whose ITC is still weak learns ITM from easy negatives first"},
    {"groupvit", "depths", KEY_STRING, F(groupvit.depths), "6,3,3", 0, 0, 0, "transformer blocks of each stage, comma-separated: one more than the grouping stages (the last stage does not group)"},
    {"groupvit", "group_tokens", KEY_STRING, F(groupvit.group_tokens), "64,8", 0, 0, 0, "learnable group tokens of each grouping stage (1 to 4 stages)"},
    {"groupvit", "output_groups", KEY_STRING, F(groupvit.output_groups), "64,8", 0, 0, 0, "segments each grouping stage outputs"},
    {"groupvit", "proj_hidden", KEY_INT, F(groupvit.proj_hidden), "4096", 1, 1 << 16, 0, "hidden width of the image projector MLP"},
    {"groupvit", "prompts", KEY_INT, F(groupvit.prompts), "3", 0, 64, 0, "K multi-label prompts per image (its caption's labels put in templates); 0: the caption term alone"},
    {"groupvit", "multi_label_weight", KEY_FLOAT, F(groupvit.multi_label_weight), "1", 0, 1000, 0, "weight of the multi-label term"},
    {"groupvit", "group_weight", KEY_FLOAT, F(groupvit.group_weight), "0", 0, 1000, 0, "weight of the group term (ours, not GroupViT's): each label of the caption should match one of the image's own final groups; needs prompts > 0; 0: off"},
    {"groupvit", "labels", KEY_CHOICE, F(groupvit.labels), "tags", 0, 0, "tags|nouns", "a caption's labels: tags = the comma-separated tags after its first ':' (emoji captions, \"name: tag, tag\"); nouns = its words found in [groupvit] nouns. Distinct, in caption order, repeated to K prompts; a caption with none gives itself as its K prompts"},
    {"groupvit", "nouns", KEY_STRING, F(groupvit.nouns), "", 0, 0, 0, "file of nouns, one per line, for labels = nouns (relative to the config file)"},
    {"groupvit", "templates", KEY_STRING, F(groupvit.templates), "", 0, 0, 0, "prompt templates, one per line with {} for the label, label k in template k mod their number (relative to the config file); empty: \"" VLP_DEFAULT_TEMPLATE "\""},
    {"preprocess", "mean", KEY_STRING, F(preprocess.mean), "0.48145466,0.4578275,0.40821073", 0, 0, 0, "per-channel mean (R,G,B) subtracted from pixels scaled to [0, 1] (OpenCLIP's preprocess_cfg; CLIP's values)"},
    {"preprocess", "std", KEY_STRING, F(preprocess.std), "0.26862954,0.26130258,0.27577711", 0, 0, 0, "per-channel standard deviation (R,G,B) the pixels are then divided by"},
    {"preprocess", "interpolation", KEY_CHOICE, F(preprocess.interpolation), "bicubic", 0, 0, "bicubic|bilinear", "resampling of every resize, as PIL's 8-bit resize computes it"},
    {"preprocess", "resize_mode", KEY_CHOICE, F(preprocess.resize_mode), "shortest", 0, 0, "shortest|squash", "evaluation: shortest = the short side to image_size, then the centre crop (CLIP's); squash = both sides to image_size, the aspect ratio lost"},
    {"preprocess", "alpha", KEY_CHOICE, F(preprocess.alpha), "white", 0, 0, "white|pil", "transparent pixels: composited over white (clip art, emoji: drawn for a white page), or as PIL's convert('RGB') leaves them (what pretrained CLIPs saw; vlpimport sets it)"},
};
#define N_KEYS (sizeof KEYS / sizeof KEYS[0])
_Static_assert(N_KEYS <= VLP_CONFIG_KEYS_MAX, "vlp_config.origin has too few entries");

static const key *find_key(const char *section, const char *name) {
    for (size_t i = 0; i < N_KEYS; i++)
        if (!strcmp(KEYS[i].section, section) && !strcmp(KEYS[i].name, name)) return &KEYS[i];
    return NULL;
}

static bool known_section(const char *section) {
    for (size_t i = 0; i < N_KEYS; i++)
        if (!strcmp(KEYS[i].section, section)) return true;
    return false;
}

/* "a, b, c" of a section's keys, or of all sections. */
static void list_keys(char *out, size_t size, const char *section) {
    out[0] = '\0';
    for (size_t i = 0; i < N_KEYS; i++) {
        if (section && strcmp(KEYS[i].section, section)) continue;
        if (!section && i && !strcmp(KEYS[i].section, KEYS[i - 1].section)) continue;
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s", len ? ", " : "", section ? KEYS[i].name : KEYS[i].section);
    }
}

/* Whether "name = value" (or "name =value") reads back as value through
 * libinih, which strips spaces at both ends, ends a line at a line break
 * and drops an inline comment (a ';' after a space). A --set value can
 * hold any of them, and a checkpoint's config text would then resume with
 * another value (found by tests/fuzz/fuzz_config.c). */
static bool ini_writable(const char *v) {
    size_t n = strlen(v);
    if (n && (isspace((unsigned char)v[0]) || isspace((unsigned char)v[n - 1]))) return false;
    for (size_t i = 0; i < n; i++)
        if (v[i] == '\n' || v[i] == '\r' || (v[i] == ';' && i && isspace((unsigned char)v[i - 1]))) return false;
    return true;
}

/* Sets one key from text; where is "file:line" or "--set". */
static int set_value(vlp_config *c, const key *k, const char *value, const char *where) {
    char *dst = (char *)c + k->offset, *end = NULL;
    errno = 0;
    switch (k->kind) {
    case KEY_INT:
    case KEY_LONG:
    case KEY_FLOAT: {
        double v = strtod(value, &end);
        if (end == value || *end || errno || !isfinite(v))
            return vlp_error_set(VLP_ECONFIG, "%s: [%s] %s = '%s' is not a number", where, k->section,
                                 k->name, value);
        if (k->kind != KEY_FLOAT && v != floor(v))
            return vlp_error_set(VLP_ECONFIG, "%s: [%s] %s = '%s' is not a whole number", where,
                                 k->section, k->name, value);
        if (v < k->min || v > k->max)
            return vlp_error_set(VLP_ECONFIG, "%s: [%s] %s = %s is out of range [%.15g, %.15g]", where,
                                 k->section, k->name, value, k->min, k->max);
        if (k->kind == KEY_INT) *(int *)dst = (int)v;
        else if (k->kind == KEY_LONG) *(long *)dst = (long)v;
        else *(float *)dst = (float)v;
        return VLP_OK;
    }
    case KEY_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes")) *(bool *)dst = true;
        else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no")) *(bool *)dst = false;
        else
            return vlp_error_set(VLP_ECONFIG, "%s: [%s] %s = '%s': valid values are true, false",
                                 where, k->section, k->name, value);
        return VLP_OK;
    case KEY_STRING:
        if (strlen(value) >= k->size)
            return vlp_error_set(VLP_ECONFIG, "%s: [%s] %s is longer than %zu characters", where,
                                 k->section, k->name, k->size - 1);
        if (!ini_writable(value))
            return vlp_error_set(VLP_ECONFIG,
                                 "%s: [%s] %s = '%s': spaces at either end, a line break or a ';' after "
                                 "a space cannot be kept in an INI file (the run's config.ini)",
                                 where, k->section, k->name, value);
        strcpy(dst, value);
        return VLP_OK;
    case KEY_CHOICE: {
        int index = 0;
        for (const char *p = k->choices; *p; index++) {
            size_t len = strcspn(p, "|");
            if (strlen(value) == len && !strncmp(p, value, len)) {
                *(int *)dst = index;
                return VLP_OK;
            }
            p += len + (p[len] == '|');
        }
        char valid[256];
        size_t len = 0;
        for (const char *p = k->choices; *p && len + 3 < sizeof valid; p++)
            len += (size_t)(*p == '|' ? snprintf(valid + len, sizeof valid - len, ", ")
                                      : snprintf(valid + len, sizeof valid - len, "%c", *p));
        return vlp_error_set(VLP_ECONFIG, "%s: [%s] %s = '%s': valid values are %s", where,
                             k->section, k->name, value, valid);
    }
    }
    return VLP_EINVAL;
}

void vlp_config_defaults(vlp_config *c) {
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < N_KEYS; i++)
        if (KEYS[i].value) {
            int rc = set_value(c, &KEYS[i], KEYS[i].value, "defaults");
            VLP_ASSERT(rc == VLP_OK, "bad default for %s.%s", KEYS[i].section, KEYS[i].name);
        }
}

/* ---- parsing ---------------------------------------------------------------- */

typedef struct parse_state {
    vlp_config *c;
    const char *name; /* file, for messages */
    long line;        /* current line, counted by the reader */
    const char *text; /* parse_text: the remaining text */
    FILE *file;
    bool seen[N_KEYS];
    long seen_line[N_KEYS];
    int error;
} parse_state;

static int on_key(void *user, const char *section, const char *name, const char *value) {
    parse_state *s = user;
    if (s->error) return 0;
    char where[VLP_PATH_MAX + 32];
    snprintf(where, sizeof where, "%s:%ld", s->name, s->line);
    char valid[1024];
    if (!known_section(section)) {
        list_keys(valid, sizeof valid, NULL);
        s->error = vlp_error_set(VLP_ECONFIG, "%s: unknown section [%s]; valid sections are %s",
                                 where, section, valid);
        return 0;
    }
    const key *k = find_key(section, name);
    if (!k) {
        list_keys(valid, sizeof valid, section);
        s->error = vlp_error_set(VLP_ECONFIG, "%s: unknown key '%s' in [%s]; valid keys are %s",
                                 where, name, section, valid);
        return 0;
    }
    size_t i = (size_t)(k - KEYS);
    if (s->seen[i]) {
        s->error = vlp_error_set(VLP_ECONFIG, "%s: [%s] %s is set twice (first on line %ld)", where,
                                 section, name, s->seen_line[i]);
        return 0;
    }
    s->seen[i] = true;
    s->seen_line[i] = s->line;
    s->c->origin[i] = (int)s->line;
    s->error = set_value(s->c, k, value, where);
    return s->error == VLP_OK;
}

/* libinih reads each line into a buffer of ini_max_line bytes, 200 unless
 * set, and parses a longer line as several: a long path was cut short or
 * refused with a wrong line number, and a checkpoint's config text with
 * one did not parse back (found by tests/fuzz/fuzz_config.c). Debian's
 * libinih takes the size at run time (ini.h's ini_max_line): parse() sets
 * it to hold the longest line vlp writes, a key and a VLP_PATH_MAX path,
 * and the readers refuse a line longer still. Not thread-safe, as
 * configurations are read before any thread starts. */
#define LINE_MAX_CHARS (VLP_PATH_MAX + 128)

static int line_too_long(parse_state *s) {
    s->error = vlp_error_set(VLP_ECONFIG, "%s:%ld: line longer than %d characters", s->name, s->line,
                             LINE_MAX_CHARS - 3);
    return 0;
}

/* libinih's readers: one line per call, which is how lines are counted. */
static char *read_file_line(char *buf, int size, void *stream) {
    parse_state *s = stream;
    if (s->error) return NULL;
    char *r = fgets(buf, size, s->file);
    if (!r) return NULL;
    s->line++;
    size_t len = strlen(buf);
    if (len == (size_t)size - 1 && buf[len - 1] != '\n') {
        int c = fgetc(s->file);
        if (c != EOF) return line_too_long(s), NULL;
    }
    return r;
}

static char *read_text_line(char *buf, int size, void *stream) {
    parse_state *s = stream;
    if (!*s->text || s->error) return NULL;
    size_t len = strcspn(s->text, "\n");
    if (s->text[len] == '\n') len++;
    s->line++;
    if (len >= (size_t)size) return line_too_long(s), NULL; /* what fgets would split */
    memcpy(buf, s->text, len);
    buf[len] = '\0';
    s->text += len;
    return buf;
}

static int parse(ini_reader reader, parse_state *s) {
    int saved = ini_max_line;
    ini_max_line = LINE_MAX_CHARS;
    int rc = ini_parse_stream(reader, s, on_key, s);
    ini_max_line = saved;
    return rc;
}

int vlp_config_int_list(const char *text, int *out, int max) {
    int n = 0;
    for (const char *p = text; *p;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 1 || v > 1 << 20 || n == max || (*end && *end != ',')) return -1;
        out[n++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return n;
}

/* What only one [model] kind allows or needs. */
static int check_kind(const vlp_config *c, const char *name) {
    static const char *kinds[] = {"clip", "blip", "groupvit"};
    const char *kind = kinds[c->model.kind], *bad = NULL;
    if (c->model.kind == VLP_MODEL_CLIP) return VLP_OK;
    if (c->model.activation != 0) bad = "[model] activation = quick_gelu";
    else if (c->train.accum_freq > 1) bad = "[train] accum_freq > 1";
    else if (c->train.lock_image || c->train.lock_text) bad = "[train] lock_image and lock_text";
    else if (c->model.kind == VLP_MODEL_GROUPVIT && c->train.positives != VLP_POSITIVES_NONE)
        bad = "[train] positives";
    if (bad) return vlp_error_set(VLP_ECONFIG, "%s: %s is for kind = clip, not [model] kind = %s", name, bad, kind);
    if (c->model.kind != VLP_MODEL_GROUPVIT) return VLP_OK;
    int depths[8], tokens[8], groups[8];
    int nd = vlp_config_int_list(c->groupvit.depths, depths, 8);
    int nt = vlp_config_int_list(c->groupvit.group_tokens, tokens, 8);
    int ng = vlp_config_int_list(c->groupvit.output_groups, groups, 8);
    if (nd < 0 || nt < 0 || ng < 0)
        return vlp_error_set(VLP_ECONFIG, "%s: [groupvit] %s = '%s' is not a comma-separated list of whole "
                             "numbers >= 1", name, nd < 0 ? "depths" : nt < 0 ? "group_tokens" : "output_groups",
                             nd < 0 ? c->groupvit.depths : nt < 0 ? c->groupvit.group_tokens : c->groupvit.output_groups);
    if (nt < 1 || nt > 4 || ng != nt || nd != nt + 1)
        return vlp_error_set(VLP_ECONFIG, "%s: [groupvit] group_tokens and output_groups need one entry per "
                             "grouping stage (1 to 4; they have %d and %d) and depths one more (it has %d)",
                             name, nt, ng, nd);
    if (c->groupvit.group_weight > 0 && !c->groupvit.prompts)
        return vlp_error_set(VLP_ECONFIG, "%s: [groupvit] group_weight needs prompts > 0 (the group term "
                             "matches the caption's labels to the groups)", name);
    if (c->groupvit.prompts && c->groupvit.labels == VLP_LABELS_NOUNS && !c->groupvit.nouns[0])
        return vlp_error_set(VLP_ECONFIG, "%s: [groupvit] labels = nouns needs [groupvit] nouns, a file of nouns",
                             name);
    return VLP_OK;
}

/* OpenCLIP's named architectures (its model_configs) as vlp keys, with
 * the vocabulary and preprocessing of OpenAI's CLIP they were trained with. */
static const struct {
    const char *name, *keys;
} PRESETS[] = {
#define OPENAI_TEXT "context_length=77,text_width=512,text_layers=12,text_heads=8"
#define OPENAI_DATA "vocab_size=49408"
    {"ViT-B-32", "embed_dim=512,image_size=224,patch_size=32,vision_width=768,vision_layers=12,vision_heads=12," OPENAI_TEXT},
    {"ViT-B-16", "embed_dim=512,image_size=224,patch_size=16,vision_width=768,vision_layers=12,vision_heads=12," OPENAI_TEXT},
    {"ViT-L-14", "embed_dim=768,image_size=224,patch_size=14,vision_width=1024,vision_layers=24,vision_heads=16,"
                 "context_length=77,text_width=768,text_layers=12,text_heads=12"},
    {"ViT-L-14-336", "embed_dim=768,image_size=336,patch_size=14,vision_width=1024,vision_layers=24,vision_heads=16,"
                     "context_length=77,text_width=768,text_layers=12,text_heads=12"},
};

/* Sets every [model] key of the preset that the file and --set left at its
 * default (origin 0), and [data] vocab_size, mlp_ratio 4 and the activation
 * the name implies. */
static int apply_preset(vlp_config *c, const char *name) {
    if (!c->model.preset[0]) return VLP_OK;
    char base[sizeof c->model.preset];
    snprintf(base, sizeof base, "%s", c->model.preset);
    size_t n = strlen(base), q = strlen("-quickgelu");
    bool quick = n > q && !strcmp(base + n - q, "-quickgelu");
    if (quick) base[n - q] = '\0';
    const char *keys = NULL;
    char valid[256] = "";
    for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++) {
        if (!strcmp(PRESETS[i].name, base)) keys = PRESETS[i].keys;
        size_t len = strlen(valid);
        snprintf(valid + len, sizeof valid - len, "%s%s", i ? ", " : "", PRESETS[i].name);
    }
    if (!keys)
        return vlp_error_set(VLP_ECONFIG, "%s: [model] preset = '%s' is not a known architecture; known: %s "
                             "(each also with -quickgelu)", name, c->model.preset, valid);
    char all[512];
    snprintf(all, sizeof all, "%s,mlp_ratio=4,activation=%s,data.%s", keys, quick ? "quick_gelu" : "gelu",
             OPENAI_DATA);
    for (char *item = strtok(all, ","); item; item = strtok(NULL, ",")) {
        char *eq = strchr(item, '=');
        *eq = '\0';
        const char *section = "model", *key_name = item;
        if (!strncmp(item, "data.", 5)) section = "data", key_name = item + 5;
        const key *k = find_key(section, key_name);
        VLP_ASSERT(k, "preset key %s", item);
        if (c->origin[k - KEYS] != 0) continue; /* the file or --set said otherwise */
        int rc = set_value(c, k, eq + 1, "preset");
        VLP_ASSERT(rc == VLP_OK, "preset value %s", item);
        c->origin[k - KEYS] = VLP_ORIGIN_PRESET;
    }
    return VLP_OK;
#undef OPENAI_TEXT
#undef OPENAI_DATA
}

int vlp_config_float_list(const char *text, float *out, int max) {
    int n = 0;
    for (const char *p = text; *p;) {
        char *end;
        errno = 0;
        float v = strtof(p, &end);
        if (end == p || errno || !isfinite(v) || n == max || (*end && *end != ',')) return -1;
        out[n++] = v;
        p = *end ? end + 1 : end;
    }
    return n;
}

/* training: the keys only training needs ([data] train, [log] dir) are
 * required too; a run folder read for inference has none of them. */
static int check_required(vlp_config *c, const parse_state *s, bool training) {
    int rc = apply_preset(c, s->name);
    if (rc) return rc;
    for (size_t i = 0; i < N_KEYS; i++) {
        const key *k = &KEYS[i];
        if (k->value || s->seen[i] || !training) continue;
        if (k->kind == KEY_STRING && ((const char *)c + k->offset)[0]) continue; /* set by --set */
        return vlp_error_set(VLP_ECONFIG, "%s: [%s] %s is required (%s)", s->name, k->section,
                             k->name, k->help);
    }
    const char *bad = NULL;
    if (c->model.image_size % c->model.patch_size) bad = "[model] image_size must be a multiple of patch_size";
    else if (c->model.vision_width % c->model.vision_heads) bad = "[model] vision_heads must divide vision_width";
    else if (c->model.text_width % c->model.text_heads) bad = "[model] text_heads must divide text_width";
    else if (c->optim.min_lr > c->optim.lr) bad = "[optim] min_lr must not exceed lr";
    if (bad) return vlp_error_set(VLP_ECONFIG, "%s: %s", s->name, bad);
    const char *sep = c->data.separator;
    if (strlen(sep) > 1 && strcmp(sep, "\\t")) {
        char where[VLP_PATH_MAX + 64];
        vlp_config_where(c, s->name, "data", "separator", where, sizeof where);
        if (!strncmp(where, "--set ", 6)) snprintf(where, sizeof where, "--set data.separator=%s: [data] separator", sep);
        return vlp_error_set(VLP_ECONFIG, "%s = '%s' is not one character (or \\t for a tab)", where, sep);
    }
    float mean[4], std[4];
    bool mean_bad = vlp_config_float_list(c->preprocess.mean, mean, 4) != 3;
    if (mean_bad || vlp_config_float_list(c->preprocess.std, std, 4) != 3)
        return vlp_error_set(VLP_ECONFIG, "%s: [preprocess] %s = '%s' is not three comma-separated numbers (R,G,B)",
                             s->name, mean_bad ? "mean" : "std", mean_bad ? c->preprocess.mean : c->preprocess.std);
    for (int i = 0; i < 3; i++)
        if (!(std[i] > 0))
            return vlp_error_set(VLP_ECONFIG, "%s: [preprocess] std = '%s': every value must be > 0", s->name,
                                 c->preprocess.std);
    return check_kind(c, s->name);
}

static int finish(parse_state *s, int ini_rc) {
    if (s->error) return s->error;
    if (ini_rc > 0)
        return vlp_error_set(VLP_ECONFIG, "%s:%d: not an INI line (expected [section] or key = value)",
                             s->name, ini_rc);
    return VLP_OK;
}

int vlp_config_parse_text(vlp_config *c, const char *text, const char *name) {
    vlp_config_defaults(c);
    parse_state s = {.c = c, .name = name, .text = text};
    int rc = finish(&s, parse(read_text_line, &s));
    return rc ? rc : check_required(c, &s, false);
}

int vlp_config_load(vlp_config *c, const char *path, const char *const *overrides, int n_overrides) {
    vlp_config_defaults(c);
    parse_state s = {.c = c, .name = path};
    s.file = fopen(path, "r");
    if (!s.file) return vlp_error_set(VLP_ECONFIG, "%s: %s", path, strerror(errno));
    errno = 0;
    int rc = finish(&s, parse(read_file_line, &s));
    /* fopen opens a folder; reading it fails (EISDIR), which libinih takes for the end */
    if (rc == VLP_OK && ferror(s.file)) rc = vlp_error_set(VLP_ECONFIG, "%s: %s", path, strerror(errno));
    fclose(s.file);
    for (int i = 0; i < n_overrides && rc == VLP_OK; i++) {
        /* "section.key=value" */
        char buf[2048], where[2100];
        snprintf(buf, sizeof buf, "%s", overrides[i]);
        snprintf(where, sizeof where, "--set %s", overrides[i]);
        char *dot = strchr(buf, '.'), *eq = strchr(buf, '=');
        if (!dot || !eq || dot > eq) {
            rc = vlp_error_set(VLP_ECONFIG, "%s: expected section.key=value", where);
            break;
        }
        *dot = *eq = '\0';
        const key *k = find_key(buf, dot + 1);
        if (!k) {
            char valid[1024];
            list_keys(valid, sizeof valid, known_section(buf) ? buf : NULL);
            rc = vlp_error_set(VLP_ECONFIG, "%s: unknown %s; valid %s are %s", where,
                               known_section(buf) ? "key" : "section",
                               known_section(buf) ? "keys" : "sections", valid);
            break;
        }
        rc = set_value(c, k, eq + 1, where);
        s.seen[k - KEYS] = true;
        c->origin[k - KEYS] = -1;
    }
    return rc ? rc : check_required(c, &s, true);
}

void vlp_config_where(const vlp_config *c, const char *path, const char *section, const char *name,
                      char *out, size_t size) {
    const key *k = find_key(section, name);
    int origin = k ? c->origin[k - KEYS] : 0;
    if (origin > 0) snprintf(out, size, "%s:%d: [%s] %s", path, origin, section, name);
    else if (origin == VLP_ORIGIN_PRESET) snprintf(out, size, "%s: [%s] %s (of [model] preset = %s)", path, section, name,
                                                   c->model.preset);
    else if (origin < 0) snprintf(out, size, "--set %s.%s", section, name);
    else snprintf(out, size, "%s: [%s] %s", path, section, name);
}

/* A key's value as the config file would say it. */
static void format_value(const vlp_config *c, const key *k, char *value, size_t size) {
    const char *p = (const char *)c + k->offset;
    switch (k->kind) {
    case KEY_INT: snprintf(value, size, "%d", *(const int *)p); break;
    case KEY_LONG: snprintf(value, size, "%ld", *(const long *)p); break;
    case KEY_FLOAT: snprintf(value, size, "%.9g", *(const float *)p); break;
    case KEY_BOOL: snprintf(value, size, "%s", *(const bool *)p ? "true" : "false"); break;
    case KEY_STRING: snprintf(value, size, "%s", p); break;
    case KEY_CHOICE: {
        const char *q = k->choices;
        for (int n = *(const int *)p; n > 0; n--) q += strcspn(q, "|") + 1;
        snprintf(value, size, "%.*s", (int)strcspn(q, "|"), q);
        break;
    }
    }
}

char *vlp_config_to_text(const vlp_config *c) {
    size_t cap = 8192, len = 0;
    char *out = vlp_malloc(cap);
    out[0] = '\0';
    for (size_t i = 0; i < N_KEYS; i++) {
        const key *k = &KEYS[i];
        char value[VLP_PATH_MAX + 64];
        format_value(c, k, value, sizeof value);
        char line[VLP_PATH_MAX + 256];
        bool new_section = i == 0 || strcmp(k->section, KEYS[i - 1].section);
        /* "separator = ;" would read back as an inline comment: "separator =;" */
        int n = snprintf(line, sizeof line, "%s%s%s%s%s =%s%s\n", new_section && i ? "\n" : "",
                         new_section ? "[" : "", new_section ? k->section : "",
                         new_section ? "]\n" : "", k->name, value[0] == ';' ? "" : " ", value);
        while (len + (size_t)n + 1 > cap) out = vlp_realloc(out, cap *= 2);
        memcpy(out + len, line, (size_t)n + 1), len += (size_t)n;
    }
    return out;
}

int vlp_config_inherit(vlp_config *c, const vlp_config *from, const char *path, const char *from_name) {
    for (size_t i = 0; i < N_KEYS; i++) {
        const key *k = &KEYS[i];
        if ((strcmp(k->section, "model") && strcmp(k->section, "preprocess")) || !strcmp(k->name, "preset")) continue;
        char mine[VLP_PATH_MAX + 64], theirs[VLP_PATH_MAX + 64];
        format_value(c, k, mine, sizeof mine);
        format_value(from, k, theirs, sizeof theirs);
        if (!strcmp(mine, theirs)) continue;
        if (c->origin[i] == 0) { /* a default: the init model's value */
            int rc = set_value(c, k, theirs, from_name);
            VLP_ASSERT(rc == VLP_OK, "inherited %s.%s = %s", k->section, k->name, theirs);
            continue;
        }
        char where[VLP_PATH_MAX + 64];
        vlp_config_where(c, path, k->section, k->name, where, sizeof where);
        return vlp_error_set(VLP_ECONFIG, "%s = %s disagrees with %s of the [train] init model %s (leave the key out "
                             "to take the model's)", where, mine, theirs, from_name);
    }
    return VLP_OK;
}

void vlp_config_help(FILE *out, bool markdown) {
    if (markdown)
        fputs("# vlptrain configuration\n\n"
              "Generated by `vlptrain --help-config --markdown`; the table in src/train/config.c is\n"
              "the one place these keys are defined. An unknown key, a bad value or a missing\n"
              "required key stops vlptrain before any work, naming the file, line and key.\n",
              out);
    const char *kinds[] = {"integer", "integer", "number", "true/false", "text", "choice"};
    for (size_t i = 0; i < N_KEYS; i++) {
        const key *k = &KEYS[i];
        bool new_section = i == 0 || strcmp(k->section, KEYS[i - 1].section);
        char range[128] = "";
        if (k->kind <= KEY_FLOAT) snprintf(range, sizeof range, "%.15g to %.15g", k->min, k->max);
        else if (k->kind == KEY_CHOICE) snprintf(range, sizeof range, "%s", k->choices);
        const char *def = k->value ? (k->value[0] ? k->value : "(empty)") : "required";
        if (markdown) {
            if (new_section)
                fprintf(out, "\n## [%s]\n\n| key | type | default | range | meaning |\n|---|---|---|---|---|\n", k->section);
            char esc[128];
            size_t j = 0;
            for (const char *p = range; *p && j + 2 < sizeof esc; p++) {
                if (*p == '|') esc[j++] = '\\';
                esc[j++] = *p;
            }
            esc[j] = '\0';
            fprintf(out, "| `%s` | %s | `%s` | %s | %s |\n", k->name, kinds[k->kind], def, esc, k->help);
        } else {
            if (new_section) fprintf(out, "%s[%s]\n", i ? "\n" : "", k->section);
            fprintf(out, "  %-15s %-10s default %-10s %s%s%s%s\n", k->name, kinds[k->kind], def,
                    k->help, range[0] ? " (" : "", range, range[0] ? ")" : "");
        }
    }
}
