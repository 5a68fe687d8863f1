/* The training loop (see trainer.h). */
#include "train/trainer.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/output.h"
#include "base/error.h"
#include "base/mem.h"
#include "train/checkpoint.h"
#include "train/progress.h"
#include "train/weights.h"

#ifndef VLP_VERSION
#define VLP_VERSION "unknown"
#endif

/* path relative to the config file's folder, unless absolute or empty. */
static void resolve(char *path, const char *config_path) {
    if (!path[0] || path[0] == '/') return;
    const char *slash = strrchr(config_path, '/');
    if (!slash) return;
    char out[VLP_PATH_MAX];
    int n = snprintf(out, sizeof out, "%.*s/%s", (int)(slash - config_path), config_path, path);
    if (n < (int)sizeof out) strcpy(path, out);
}

/* Prefixes the current error message with where the config key it came
 * from was set: "recipe.ini:17: [data] train: ...". */
static int with_key(int rc, const vlp_config *c, const char *config_path, const char *section,
                    const char *name) {
    char where[VLP_PATH_MAX + 64];
    vlp_config_where(c, config_path, section, name, where, sizeof where);
    return vlp_error_set(rc, "%s: %s", where, vlp_error_message());
}

/* The weights file and tokenizer text of [train] init: a run folder (its
 * model.h5 and tokenizer.bpe), a checkpoint, or a plain model file (no
 * tokenizer: [data] tokenizer must name the one it was trained with). */
static int init_source(const char *init, char *weights, size_t size, char **merges) {
    struct stat st;
    vlp_checkpoint_meta meta;
    *merges = NULL;
    if (stat(init, &st) != 0) return vlp_error_set(VLP_ENOTFOUND, "%s: %s", init, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        char path[VLP_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/tokenizer.bpe", init);
        *merges = vlp_read_text(path);
        snprintf(weights, size, "%s/model.h5", init);
        return *merges ? VLP_OK : vlp_error_set(VLP_ENOTFOUND, "%s: missing", path);
    }
    snprintf(weights, size, "%s", init);
    if (vlp_checkpoint_read_meta(init, &meta) == VLP_OK) {
        *merges = meta.tokenizer, meta.tokenizer = NULL;
        vlp_checkpoint_meta_free(&meta);
    }
    return VLP_OK;
}

/* The architecture and preprocessing of [train] init's model (a run folder
 * or a checkpoint; a plain model file says none) for every key the config
 * left at its default; a key set to another value is an error. */
static int inherit_init(vlp_config *c, const char *config_path) {
    struct stat st;
    if (!c->train.init[0] || stat(c->train.init, &st) != 0) return VLP_OK; /* init_source says why */
    char name[VLP_PATH_MAX + 32], *text = NULL;
    vlp_checkpoint_meta meta = {0};
    if (S_ISDIR(st.st_mode)) {
        snprintf(name, sizeof name, "%s/config.ini", c->train.init);
        if (!(text = vlp_read_text(name))) return VLP_ENOTFOUND; /* its message names the file */
    } else if (vlp_checkpoint_read_meta(c->train.init, &meta) == VLP_OK) {
        snprintf(name, sizeof name, "%s", c->train.init);
        text = meta.config, meta.config = NULL;
        vlp_checkpoint_meta_free(&meta);
    } else {
        return VLP_OK;
    }
    vlp_config from;
    int rc = vlp_config_parse_text(&from, text, name);
    free(text);
    return rc ? rc : vlp_config_inherit(c, &from, config_path, c->train.init);
}

/* The tokenizer of a resumed run, of the init weights, of [data]
 * tokenizer, or learned from the training captions, in that order. */
static int setup_tokenizer(vlp_trainer *t, const vlp_checkpoint_meta *resumed, const char *init_merges,
                           const char *config_path) {
    const vlp_config *c = &t->cfg;
    int rc;
    if (resumed) {
        char name[VLP_PATH_MAX + 32];
        snprintf(name, sizeof name, "%s: its tokenizer", t->last_checkpoint);
        rc = vlp_tokenizer_parse(&t->tok, resumed->tokenizer, strlen(resumed->tokenizer), name, -1);
    } else if (init_merges && !c->data.tokenizer[0]) {
        rc = vlp_tokenizer_parse(&t->tok, init_merges, strlen(init_merges), c->train.init, -1);
    } else if (c->data.tokenizer[0]) {
        rc = vlp_tokenizer_load(&t->tok, c->data.tokenizer, -1);
        if (rc) return with_key(rc, c, config_path, "data", "tokenizer");
    } else {
        /* Learned from the training captions: the same on every rank. */
        const char **texts = vlp_malloc((size_t)t->data.n * sizeof *texts);
        for (long i = 0; i < t->data.n; i++) texts[i] = t->data.samples[i].caption;
        rc = vlp_tokenizer_train(&t->tok, texts, (int)t->data.n, c->data.vocab_size);
        free(texts);
    }
    if (rc) return rc;
    t->merges = vlp_tokenizer_merges_text(t->tok);
    rc = vlp_dist_check_same(t->dist, t->merges, strlen(t->merges), "tokenizer");
    t->error_on_all_ranks = rc != VLP_OK;
    return rc;
}

/* Initial weights from a model file (tensors at the root) or a checkpoint. */
static int load_init(vlp_trainer *t, const char *path) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return vlp_h5_open_error(path, "a vlp model file or checkpoint");
    bool checkpoint = H5Lexists(f, "params", H5P_DEFAULT) > 0;
    int rc = vlp_weights_read(f, path, checkpoint ? "/params" : "/", t->model.params, t->model.params->data);
    H5Fclose(f);
    /* BLIP's momentum encoders start as a copy of the weights */
    if (!rc && t->model.momentum) vlp_blip_momentum_update(&t->model.blip_m, 0.0f);
    return rc;
}

/* A resumed run's parameters, AdamW's moments and the model's own state. */
static int load_resumed_state(vlp_trainer *t, const char *ckpt) {
    int rc = vlp_checkpoint_load(ckpt, t->model.params, true), n = vlp_model_state_ints(&t->model);
    if (rc || !n) return rc;
    int *ints = vlp_malloc(sizeof(int) * (size_t)n);
    rc = vlp_checkpoint_load_state(ckpt, vlp_model_state(&t->model), ints, n);
    if (!rc) vlp_model_state_set(&t->model, ints);
    free(ints);
    return rc;
}

static void freeze(vlp_trainer *t) {
    vlp_params *p = t->model.params;
    if (t->cfg.train.lock_image) vlp_params_set_trainable(p, "visual.", false);
    if (t->cfg.train.lock_text) {
        static const char *text[] = {"token_embedding.", "positional_embedding", "transformer.",
                                     "ln_final.", "text_projection"};
        for (size_t i = 0; i < sizeof text / sizeof text[0]; i++) vlp_params_set_trainable(p, text[i], false);
    }
}

/* The lines of the file [eval] name names; an error if it is missing or
 * holds no line. */
static int read_lines(const vlp_config *c, const char *config_path, const char *name, char ***lines, int *n) {
    const char *path = !strcmp(name, "classnames") ? c->eval.classnames : c->eval.templates;
    *lines = vlp_read_lines(path, n);
    if (*n) return VLP_OK;
    if (*lines) vlp_error_set(VLP_ECONFIG, "%s: no line in it", path); /* else its message names the file */
    return with_key(VLP_ECONFIG, c, config_path, "eval", name);
}

/* What BLIP's and GroupViT's steps need beyond CLIP's: the captioning
 * rows' prompt, the queue's size, the multi-label prompts. */
static int setup_kind(vlp_trainer *t, const char *config_path) {
    const vlp_config *c = &t->cfg;
    int B = c->train.batch_size, ctx = c->model.context_length, rc;
    if (c->model.kind == VLP_MODEL_BLIP && c->blip.momentum && c->blip.queue_size < B * t->dist->world) {
        rc = vlp_error_set(VLP_ECONFIG, "queue_size %d is smaller than the global batch of %d x %d pairs",
                           c->blip.queue_size, B, t->dist->world);
        return with_key(rc, c, config_path, "blip", "queue_size");
    }
    if (c->model.kind == VLP_MODEL_BLIP && c->blip.prompt[0] && c->blip.lm_weight != 0.0f) {
        int n;
        t->buf.lm_ids = vlp_malloc(sizeof(int) * (size_t)B * ctx);
        /* [SOT] and the prompt's tokens: what BLIP's prompt_length counts */
        if ((rc = vlp_tokenizer_encode(t->tok, c->blip.prompt, t->buf.lm_ids, ctx, &n)))
            return with_key(rc, c, config_path, "blip", "prompt");
        t->buf.prompt_length = n - 1;
        if (t->buf.prompt_length + 2 > ctx) {
            rc = vlp_error_set(VLP_ECONFIG, "'%s' leaves no room for a caption in context_length %d", c->blip.prompt, ctx);
            return with_key(rc, c, config_path, "blip", "prompt");
        }
    }
    if (c->model.kind == VLP_MODEL_GROUPVIT && c->groupvit.prompts) {
        rc = vlp_labeler_open(&t->labeler, c->groupvit.labels, c->groupvit.nouns, c->groupvit.templates);
        const char *nouns = c->groupvit.nouns;
        if (rc) return with_key(rc, c, config_path, "groupvit",
                                nouns[0] && !strncmp(vlp_error_message(), nouns, strlen(nouns)) ? "nouns" : "templates");
        t->buf.prompt_ids = vlp_malloc(sizeof(int) * (size_t)B * c->groupvit.prompts * ctx);
    }
    return VLP_OK;
}

static int line_hash(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return (int)h;
}

/* Every rank must train with the same configuration; if one differs, the
 * error names the first key that does, from the effective text (every key
 * on its own line, in the key table's order). */
static int check_same_config(vlp_trainer *t) {
    char *text = vlp_config_to_text(&t->cfg);
    int rc = vlp_dist_check_same(t->dist, text, strlen(text), "configuration");
    int n = 0, world = t->dist->world;
    for (const char *p = text; *p; p++) n += *p == '\n';
    /* Only the same build prints the same lines: compare counts first. */
    int *counts = vlp_malloc(sizeof(int) * (size_t)world);
    if (rc) vlp_dist_allgather_ints(t->dist, &n, 1, counts);
    bool same_lines = true;
    for (int r = 0; rc && r < world; r++) same_lines &= counts[r] == n;
    free(counts);
    if (rc == VLP_OK || !same_lines) {
        free(text);
        return rc;
    }
    int *mine = vlp_malloc(sizeof(int) * (size_t)n), *all = vlp_malloc(sizeof(int) * (size_t)n * world);
    const char **line = vlp_malloc(sizeof *line * (size_t)n);
    const char *p = text;
    for (int i = 0; i < n; i++) {
        size_t len = strcspn(p, "\n");
        line[i] = p, mine[i] = line_hash(p, len);
        p += len + 1;
    }
    vlp_dist_allgather_ints(t->dist, mine, n, all);
    int rank = -1, at = -1;
    for (int r = 1; r < world && rank < 0; r++)
        for (int i = 0; i < n && rank < 0; i++)
            if (all[r * n + i] != all[i]) rank = r, at = i;
    const char *section = "";
    for (int i = 0; i < at; i++)
        if (line[i][0] == '[') section = line[i];
    if (at >= 0)
        rc = vlp_error_set(VLP_EMPI, "rank %d's configuration differs from rank 0's at %.*s %.*s (rank %d has "
                           "'%.*s'): every rank must run the same configuration", rank,
                           (int)strcspn(section, "\n"), section, (int)strcspn(line[at], " "), line[at],
                           t->dist->rank, (int)strcspn(line[at], "\n"), line[at]);
    free(mine), free(all), free(line), free(text);
    return rc;
}

/* The test hook VLP_TEST_NAN_STEPS="5,6,7": the steps whose images get a
 * NaN, so tests can drive the non-finite guard through a real run. */
static int read_nan_steps(vlp_trainer *t) {
    const char *env = getenv("VLP_TEST_NAN_STEPS");
    if (!env || !*env) return VLP_OK;
    for (const char *p = env; *p;) {
        char *end;
        long step = strtol(p, &end, 10);
        if (end == p || step < 1 || (*end && *end != ','))
            return vlp_error_set(VLP_EINVAL, "VLP_TEST_NAN_STEPS = '%s': expected step numbers like 5,6,7", env);
        long *grown = vlp_realloc(t->guard.nan_steps, sizeof *grown * (size_t)(t->guard.n_nan_steps + 1));
        t->guard.nan_steps = grown;
        t->guard.nan_steps[t->guard.n_nan_steps++] = step;
        p = *end ? end + 1 : end;
    }
    return VLP_OK;
}

/* Keeps the metrics of steps up to `step`: a resumed run rewrites the rest. */
static void truncate_metrics(const char *path, long step) {
    char *text = vlp_read_text(path);
    if (!text) return;
    FILE *f = fopen(path, "w");
    for (char *line = strtok(text, "\n"); f && line; line = strtok(NULL, "\n")) {
        long s;
        if (sscanf(line, "{\"step\": %ld", &s) == 1 && s > step) continue;
        fprintf(f, "%s\n", line);
    }
    if (f) fclose(f);
    free(text);
}

/* [data] train and val, and what [eval] and [train] positives need of
 * them: class ids, concept ids, the class names and templates. */
static int open_data(vlp_trainer *t, const char *config_path) {
    const vlp_config *c = &t->cfg;
    char sep = strcmp(c->data.separator, "\\t") ? c->data.separator[0] : '\t';
    vlp_manifest_opts mo = {.separator = sep, .image_key = c->data.image_key,
                            .caption_key = c->data.caption_key};
    int rc;
    if ((rc = vlp_dataset_open(&t->data, c->data.train, &mo))) return with_key(rc, c, config_path, "data", "train");
    if (c->data.val[0] && (rc = vlp_dataset_open(&t->val, c->data.val, &mo)))
        return with_key(rc, c, config_path, "data", "val");
    for (long i = 0; c->train.positives == VLP_POSITIVES_CLASS && i < t->data.n; i++)
        if (t->data.samples[i].class_id < 0) {
            rc = vlp_error_set(VLP_ECONFIG, "%s: sample %ld has no class_id (positives = class needs one for every "
                               "sample)", c->data.train, i);
            return with_key(rc, c, config_path, "train", "positives");
        }
    if ((c->eval.classnames[0] || c->eval.retrieval) && !c->data.val[0])
        return vlp_error_set(VLP_ECONFIG, "%s: [eval] asks for an evaluation but [data] val is empty", config_path);
    if (c->eval.classnames[0]) {
        if ((rc = read_lines(c, config_path, "classnames", &t->classnames, &t->n_classnames))) return rc;
        for (long i = 0; i < t->val.n; i++)
            if (t->val.samples[i].class_id < 0 || t->val.samples[i].class_id >= t->n_classnames)
                return vlp_error_set(VLP_ECONFIG, "%s: sample %ld has class id %d, not one of the %d in %s",
                                     c->data.val, i, t->val.samples[i].class_id, t->n_classnames, c->eval.classnames);
    }
    for (long i = 0; c->eval.retrieval == VLP_RETRIEVAL_CONCEPT && i < t->val.n; i++)
        if (t->val.samples[i].concept_id < 0)
            return vlp_error_set(VLP_ECONFIG, "[eval] retrieval = concept, but sample %ld of %s has no concept_id",
                                 i, c->data.val);
    if (c->eval.templates[0] && (rc = read_lines(c, config_path, "templates", &t->templates, &t->n_templates)))
        return rc;
    return VLP_OK;
}

/* The checkpoint to resume from (resume: "latest" or a path) into ckpt,
 * and its metadata. */
static int find_resumed(vlp_trainer *t, const char *resume, char *ckpt, size_t size, vlp_checkpoint_meta *meta) {
    int rc = VLP_OK;
    if (!strcmp(resume, "latest")) rc = vlp_checkpoint_latest(t->checkpoint_dir, ckpt, size);
    else snprintf(ckpt, size, "%s", resume);
    if (!rc) rc = vlp_checkpoint_read_meta(ckpt, meta);
    if (rc) return rc;
    snprintf(t->last_checkpoint, sizeof t->last_checkpoint, "%s", ckpt);
    t->checkpoint_step = meta->step;
    return VLP_OK;
}

/* Tokenizer and model: from the resumed checkpoint, from [train] init, or
 * new; then the frozen towers. */
static int setup_model(vlp_trainer *t, const vlp_checkpoint_meta *resumed, const char *ckpt,
                       const char *config_path) {
    const vlp_config *c = &t->cfg;
    char init_weights[VLP_PATH_MAX + 32] = "", *init_merges = NULL;
    int rc;
    if (!resumed && c->train.init[0] &&
        (rc = init_source(c->train.init, init_weights, sizeof init_weights, &init_merges)))
        return with_key(rc, c, config_path, "train", "init");
    rc = setup_tokenizer(t, resumed, init_merges, config_path);
    free(init_merges);
    if (rc) return rc;
    if ((rc = vlp_model_init(&t->model, c, vlp_tokenizer_vocab_size(t->tok), (uint64_t)c->train.seed))) return rc;
    if (resumed) rc = load_resumed_state(t, ckpt);
    else if (init_weights[0] && (rc = load_init(t, init_weights))) rc = with_key(rc, c, config_path, "train", "init");
    if (rc) return rc;
    freeze(t);
    return VLP_OK;
}

/* AdamW, the loader at the resumed position (or the start), the step count
 * and the step's buffers. */
static int setup_steps(vlp_trainer *t, const vlp_checkpoint_meta *resumed) {
    const vlp_config *c = &t->cfg;
    vlp_adamw_init(&t->opt);
    t->opt.beta1 = c->optim.beta1, t->opt.beta2 = c->optim.beta2;
    t->opt.eps = c->optim.eps, t->opt.weight_decay = c->optim.weight_decay;
    long epoch = 0, pos = 0;
    if (resumed) {
        t->step = resumed->step;
        t->opt.step = resumed->adam_step;
        epoch = resumed->loader_epoch, pos = resumed->loader_step;
        if (t->dist->rank == 0) t->cost.skipped = resumed->epoch_skipped, t->cost.cut = resumed->epoch_cut;
    }
    t->next_epoch = epoch, t->next_batch = pos;
    t->cost.epoch = epoch, t->cost.ended_epoch = -1;

    vlp_loader_opts lo = vlp_loader_defaults(c->train.batch_size, c->model.image_size);
    vlp_config_preprocess(c, &lo);
    lo.workers = c->data.workers, lo.seed = (uint64_t)c->train.seed;
    lo.rank = t->dist->rank, lo.world = t->dist->world;
    lo.crop_min = c->data.crop_min, lo.flip = c->data.flip;
    lo.color_jitter = c->data.color_jitter, lo.grayscale = c->data.grayscale;
    lo.blur = c->data.blur, lo.posterize = c->data.posterize;
    lo.tokenizer = t->tok, lo.context_length = c->model.context_length;
    int rc = vlp_loader_open(&t->loader, &t->data, &lo, epoch, pos);
    if (rc) return rc;
    long per_epoch = vlp_loader_steps_per_epoch(t->loader) / c->train.accum_freq;
    if (per_epoch == 0)
        return vlp_error_set(VLP_ECONFIG, "%s: %ld samples are fewer than one step's %d x %d x %d", c->data.train,
                             t->data.n, c->train.batch_size, t->dist->world, c->train.accum_freq);
    t->total_steps = c->train.steps ? c->train.steps : c->train.epochs * per_epoch;
    if (resumed && t->step > t->total_steps) { /* every rank computes the same */
        t->error_on_all_ranks = true;
        if (c->train.steps)
            return vlp_error_set(VLP_ECONFIG, "%s: resumed at step %ld, past the run's %ld steps ([train] steps = %ld): "
                                 "resume a checkpoint of this run, or raise [train] steps", t->last_checkpoint,
                                 t->step, t->total_steps, c->train.steps);
        return vlp_error_set(VLP_ECONFIG, "%s: resumed at step %ld, past the run's %ld steps ([train] epochs = %ld of "
                             "%ld steps): resume a checkpoint of this run, or raise [train] epochs",
                             t->last_checkpoint, t->step, t->total_steps, c->train.epochs, per_epoch);
    }

    size_t KB = (size_t)c->train.accum_freq * c->train.batch_size, S = (size_t)c->model.image_size;
    size_t D = (size_t)c->model.embed_dim;
    t->buf.images = vlp_malloc(sizeof(float) * KB * 3 * S * S);
    t->buf.ids = vlp_malloc(sizeof(int) * KB * c->model.context_length);
    t->buf.groups = vlp_malloc(sizeof(int) * KB);
    t->buf.groups_all = vlp_malloc(sizeof(int) * KB * t->dist->world);
    t->buf.cache_img = vlp_malloc(sizeof(float) * KB * D);
    t->buf.cache_txt = vlp_malloc(sizeof(float) * KB * D);
    return VLP_OK;
}

/* Rank 0, a fresh run: a run folder that already holds a run (model.h5, a
 * checkpoint, a metrics.jsonl with lines) is refused unless [log] overwrite,
 * lest --resume latest later continue the other run and metrics.jsonl mix
 * both. */
static int check_run_folder_free(const vlp_trainer *t, bool resumed, const char *config_path) {
    if (resumed || t->cfg.log.overwrite) return VLP_OK;
    char path[VLP_PATH_MAX + 32], found[128] = "";
    struct stat st;
    snprintf(path, sizeof path, "%s/model.h5", t->run_dir);
    if (stat(path, &st) == 0) strcat(found, "model.h5");
    if (vlp_checkpoint_any(t->checkpoint_dir)) strcat(strcat(found, found[0] ? ", " : ""), "checkpoints");
    snprintf(path, sizeof path, "%s/metrics.jsonl", t->run_dir);
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
        strcat(strcat(found, found[0] ? ", " : ""), "metrics.jsonl");
    if (!found[0]) return VLP_OK;
    char where[VLP_PATH_MAX + 64];
    vlp_config_where(&t->cfg, config_path, "log", "dir", where, sizeof where);
    return vlp_error_set(VLP_ECONFIG, "%s: %s already holds a run (%s): continue it with --resume latest, or "
                         "start afresh over it with [log] overwrite = true (--set log.overwrite=true), or give "
                         "another [log] dir", where, t->run_dir, found);
}

/* A path of the run's config.ini: absolute, so that the run folder's
 * config.ini finds its files from any working directory (the paths were
 * resolved against the config file, relative to where training started). */
static void make_absolute(char *path) {
    char cwd[VLP_PATH_MAX], out[VLP_PATH_MAX];
    if (!path[0] || path[0] == '/' || !getcwd(cwd, sizeof cwd)) return;
    const char *p = path;
    while (p[0] == '.' && p[1] == '/') p += 2;
    if (snprintf(out, sizeof out, "%s/%s", cwd, p) < (int)sizeof out) strcpy(path, out);
}

/* Rank 0: the run folder with the tokenizer, the effective config and
 * metrics.jsonl (cut back to the resumed step). */
static int open_run_folder(vlp_trainer *t, bool resumed, const char *config_path) {
    if (t->dist->rank != 0) return VLP_OK;
    int rc = check_run_folder_free(t, resumed, config_path);
    if (rc) return rc;
    if (vlp_make_dirs(t->run_dir) != 0)
        return vlp_error_set(VLP_EIO, "%s: cannot create the run folder: %s", t->run_dir, strerror(errno));
    char path[VLP_PATH_MAX + 32];
    /* Files a killed run left: partial writes, and an overwritten run's. */
    snprintf(path, sizeof path, "%s/model.h5", t->run_dir);
    vlp_output_remove_stale_tmp(path);
    vlp_checkpoint_remove_partial(t->checkpoint_dir);
    if (!resumed && t->cfg.log.overwrite) {
        vlp_checkpoint_remove_all(t->checkpoint_dir);
        if (remove(path) != 0 && errno != ENOENT)
            return vlp_error_set(VLP_EIO, "%s: cannot remove it ([log] overwrite = true): %s", path, strerror(errno));
    }
    snprintf(path, sizeof path, "%s/tokenizer.bpe", t->run_dir);
    if (vlp_write_text(path, t->merges) != 0) return vlp_error_set(VLP_EIO, "cannot write %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/config.ini", t->run_dir);
    vlp_config *kept = vlp_malloc(sizeof *kept);
    *kept = t->cfg;
    char *const paths[] = {kept->data.train,     kept->data.val,       kept->eval.classnames, kept->eval.templates,
                           kept->data.tokenizer, kept->train.init,     kept->groupvit.nouns,  kept->groupvit.templates,
                           kept->log.dir};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) make_absolute(paths[i]);
    kept->log.overwrite = false; /* this run's config, rerun without --resume, must not replace this run */
    char *effective = vlp_config_to_text(kept);
    free(kept);
    int failed = vlp_write_text(path, effective);
    free(effective);
    if (failed) return vlp_error_set(VLP_EIO, "cannot write %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/metrics.jsonl", t->run_dir);
    if (resumed) truncate_metrics(path, t->step);
    t->metrics = fopen(path, resumed ? "a" : "w");
    if (!t->metrics) return vlp_error_set(VLP_EIO, "%s: %s", path, strerror(errno));
    return VLP_OK;
}

/* A contrastive loss over a global batch of one pair has no negatives: its
 * loss is 0 and nothing is learnt. BLIP with only the captioning loss is
 * not contrastive. */
static int check_contrastive_batch(const vlp_config *c, const char *config_path, const vlp_dist *dist) {
    bool contrastive = c->model.kind != VLP_MODEL_BLIP || c->blip.itc_weight > 0 || c->blip.itm_weight > 0;
    long global = (long)c->train.batch_size * dist->world * c->train.accum_freq;
    if (!contrastive || global >= 2) return VLP_OK;
    char where[VLP_PATH_MAX + 64];
    vlp_config_where(c, config_path, "train", "batch_size", where, sizeof where);
    if (!strncmp(where, "--set ", 6)) /* as the --set errors read: "--set train.batch_size=1: [train] ..." */
        snprintf(where, sizeof where, "--set train.batch_size=%d: [train] batch_size", c->train.batch_size);
    return vlp_error_set(VLP_ECONFIG, "%s = %d: a contrastive batch of %d x %d rank%s x accum_freq %d = %ld pair has no "
                         "negatives (its loss is 0): the contrastive loss needs at least 2 pairs; raise "
                         "[train] batch_size", where, c->train.batch_size, c->train.batch_size, dist->world,
                         dist->world > 1 ? "s" : "", c->train.accum_freq, global);
}

int vlp_trainer_open(vlp_trainer *t, const vlp_config *cfg, const char *config_path,
                     const char *resume, const vlp_dist *dist) {
    memset(t, 0, sizeof *t);
    t->checkpoint_step = -1;
    t->metrics_lost_from = -1;
    t->cfg = *cfg;
    t->dist = dist;
    vlp_config *c = &t->cfg;
    char *const paths[] = {c->data.train,       c->data.val,         c->eval.classnames, c->eval.templates,
                           c->data.tokenizer,   c->train.init,       c->groupvit.nouns,  c->groupvit.templates};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) resolve(paths[i], config_path);
    int rc = inherit_init(c, config_path); /* its errors name the key and the init model */
    if (rc) return rc;
    snprintf(t->run_dir, sizeof t->run_dir, "%s", c->log.dir);
    snprintf(t->checkpoint_dir, sizeof t->checkpoint_dir, "%s/checkpoints", t->run_dir);
    vlp_tape_init(&t->tape);

    /* These checks are collective: every rank fails them together. */
    rc = vlp_dist_check_same(dist, VLP_VERSION, strlen(VLP_VERSION), "vlp version");
    if (!rc) rc = check_same_config(t);
    if (!rc) rc = check_contrastive_batch(c, config_path, dist);
    t->error_on_all_ranks = rc != VLP_OK;
    if (rc) return rc;
    if ((rc = read_nan_steps(t)) || (rc = open_data(t, config_path))) return rc;

    vlp_checkpoint_meta meta = {0};
    char ckpt[VLP_PATH_MAX] = "";
    const vlp_checkpoint_meta *resumed = resume ? &meta : NULL;
    if (!(resume && (rc = find_resumed(t, resume, ckpt, sizeof ckpt, &meta))) &&
        !(rc = setup_model(t, resumed, ckpt, config_path)) && !(rc = setup_steps(t, resumed)) &&
        !(rc = setup_kind(t, config_path)))
        rc = open_run_folder(t, resumed != NULL, config_path);
    vlp_checkpoint_meta_free(&meta);
    return rc;
}

void vlp_trainer_close(vlp_trainer *t) {
    vlp_loader_close(t->loader);
    if (t->metrics && fclose(t->metrics) != 0 && t->metrics_lost_from < 0)
        fprintf(stderr, "vlptrain: warning: %s/metrics.jsonl: %s: its last lines may be missing\n", t->run_dir,
                strerror(errno));
    vlp_dataset_free(&t->data);
    vlp_dataset_free(&t->val);
    if (t->classnames) vlp_free_lines(t->classnames, t->n_classnames);
    if (t->templates) vlp_free_lines(t->templates, t->n_templates);
    if (t->tok) vlp_tokenizer_free(t->tok);
    vlp_model_free(&t->model);
    vlp_labeler_close(&t->labeler);
    free(t->buf.lm_ids), free(t->buf.prompt_ids);
    vlp_tape_free(&t->tape);
    free(t->merges), free(t->buf.images), free(t->buf.ids), free(t->buf.groups), free(t->buf.groups_all);
    free(t->buf.cache_img), free(t->buf.cache_txt), free(t->guard.nan_steps);
    memset(t, 0, sizeof *t);
}

static int caption_hash(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return (int)(h & 0x7fffffff);
}

/* BLIP's captioning row and GroupViT's prompts for the pair at row. */
static int kind_rows(vlp_trainer *t, int row, const char *caption) {
    int ctx = t->cfg.model.context_length, K = t->cfg.groupvit.prompts, rc = VLP_OK;
    if (t->buf.lm_ids) {
        char text[2048];
        snprintf(text, sizeof text, "%s %s", t->cfg.blip.prompt, caption);
        rc = vlp_tokenizer_encode(t->tok, text, t->buf.lm_ids + (long)row * ctx, ctx, NULL);
    }
    if (t->buf.prompt_ids) {
        char prompts[64][512];
        vlp_labeler_prompts(&t->labeler, caption, K, prompts[0], sizeof prompts[0]);
        for (int k = 0; k < K && !rc; k++)
            rc = vlp_tokenizer_encode(t->tok, prompts[k], t->buf.prompt_ids + ((long)row * K + k) * ctx, ctx, NULL);
    }
    return rc;
}

/* Reads the step's K micro-batches into the trainer's buffers. */
static int read_batches(vlp_trainer *t) {
    const vlp_config *c = &t->cfg;
    int K = c->train.accum_freq, B = c->train.batch_size, ctx = c->model.context_length;
    long image_floats = 3L * c->model.image_size * c->model.image_size;
    for (int k = 0; k < K; k++) {
        vlp_batch *b;
        int rc = vlp_loader_next(t->loader, &b);
        if (rc) return rc;
        VLP_ASSERT(b->n == B, "a short batch with drop_last");
        memcpy(t->buf.images + k * B * image_floats, b->images, sizeof(float) * B * image_floats);
        for (int j = 0; j < B; j++) {
            int row = k * B + j;
            memcpy(t->buf.ids + (long)row * ctx, b->ids + (long)j * ctx, sizeof(int) * ctx);
            if ((rc = kind_rows(t, row, b->caption[j]))) return rc;
            t->buf.groups[row] = c->train.positives == VLP_POSITIVES_CLASS ? b->class_id[j]
                                                                     : caption_hash(b->caption[j]);
            if (c->train.positives == VLP_POSITIVES_CLASS && b->class_id[j] < 0)
                return vlp_error_set(VLP_ECONFIG, "[train] positives = class, but sample %ld of %s has no class_id",
                                     b->index[j], t->data.source);
        }
        t->next_epoch = b->epoch, t->next_batch = b->step + 1;
        if (b->epoch != t->cost.epoch) { /* at most one epoch ends in a step (per_epoch >= 1) */
            t->cost.ended_epoch = t->cost.epoch, t->cost.ended_skipped = t->cost.skipped, t->cost.ended_cut = t->cost.cut;
            t->cost.epoch = b->epoch, t->cost.skipped = t->cost.cut = 0;
        }
        t->cost.skipped += b->skipped, t->cost.cut += b->cut;
    }
    return VLP_OK;
}

static bool poisoned(const vlp_trainer *t, long step) {
    for (int i = 0; i < t->guard.n_nan_steps; i++)
        if (t->guard.nan_steps[i] == step) return true;
    return false;
}

int vlp_trainer_step(vlp_trainer *t, float *loss_out) {
    const vlp_config *c = &t->cfg;
    int K = c->train.accum_freq, B = c->train.batch_size;
    int rc = read_batches(t);
    if (rc) return rc;
    bool positives = c->train.positives != VLP_POSITIVES_NONE;
    if (positives) vlp_dist_allgather_ints(t->dist, t->buf.groups, K * B, t->buf.groups_all);
    vlp_step_batch b = {.K = K, .B = B, .images = t->buf.images, .ids = t->buf.ids,
                        .groups = positives ? t->buf.groups_all : NULL,
                        .cache_img = t->buf.cache_img, .cache_txt = t->buf.cache_txt,
                        .lm_ids = t->buf.lm_ids, .prompt_length = t->buf.prompt_length,
                        .prompt_ids = t->buf.prompt_ids};
    /* the step's draws: the same on every rank, and again on resume */
    vlp_rng root;
    vlp_rng_init(&root, (uint64_t)c->train.seed);
    root = vlp_rng_split(&root, VLP_RNG_STREAM_SAMPLE);
    b.rng = vlp_rng_split(&root, (uint64_t)t->step + 1);
    if (poisoned(t, t->step + 1)) t->buf.images[0] = NAN;
    if ((rc = vlp_model_gradients(&t->model, &t->tape, t->dist, &b, loss_out))) return rc;
    t->grad_norm = vlp_grad_clip(t->model.params, c->optim.grad_clip);
    t->lr = vlp_lr_schedule(t->step, c->optim.warmup, t->total_steps, c->optim.lr, c->optim.min_lr);
    /* One NaN in AdamW's moments would poison every later step, so a bad
     * step changes nothing. The loss and the all-reduced norm are the same
     * on every rank, but ranks vote so that they cannot diverge. */
    t->guard.skipped = vlp_dist_any(t->dist, !isfinite(*loss_out) || !isfinite(t->grad_norm));
    if (t->guard.skipped) {
        if (t->guard.streak++ == 0) t->guard.streak_start = t->step + 1;
        t->guard.bad_steps++;
    } else {
        t->guard.streak = 0;
        vlp_adamw_step(&t->opt, t->model.params, t->lr);
        vlp_model_after_step(&t->model);
    }
    t->step++;
    return VLP_OK;
}

int vlp_trainer_checkpoint(vlp_trainer *t) {
    int rc = VLP_OK;
    long skipped = vlp_dist_sum(t->dist, t->cost.skipped), cut = vlp_dist_sum(t->dist, t->cost.cut);
    if (t->dist->rank == 0) {
        char *config = vlp_config_to_text(&t->cfg);
        int n_ints = vlp_model_state_ints(&t->model), *ints = vlp_malloc(sizeof(int) * (size_t)(n_ints + 1));
        vlp_model_state_get(&t->model, ints);
        vlp_checkpoint_meta m = {.step = t->step, .loader_epoch = t->next_epoch,
                                 .loader_step = t->next_batch, .epoch_skipped = skipped,
                                 .epoch_cut = cut, .adam_step = t->opt.step,
                                 .seed = t->cfg.train.seed, .config = config,
                                 .tokenizer = t->merges, .version = (char *)VLP_VERSION,
                                 .state = vlp_model_state(&t->model), .state_ints = ints,
                                 .n_state_ints = n_ints};
        rc = vlp_checkpoint_save(t->checkpoint_dir, t->model.params, &m, t->cfg.checkpoint.keep,
                                 t->last_checkpoint);
        free(config), free(ints);
    }
    /* Every rank learns rank 0's outcome: all stop (or go on) together. */
    if (vlp_dist_any(t->dist, rc != VLP_OK) && rc == VLP_OK)
        rc = vlp_error_set(VLP_EIO, "rank 0 could not write the step-%ld checkpoint", t->step);
    if (rc == VLP_OK) t->checkpoint_step = t->step;
    return rc;
}

/* One line of metrics.jsonl; "step" first, which resuming relies on. */
static void log_metrics(vlp_trainer *t, float loss, double samples_per_s, double elapsed) {
    if (!t->metrics) return;
    double scale = vlp_model_logit_scale(&t->model);
    fprintf(t->metrics, "{\"step\": %ld, \"epoch\": %ld, \"loss\": ", t->step, t->next_epoch);
    if (isfinite(loss)) fprintf(t->metrics, "%.9g", loss);
    else fputs("null", t->metrics);
    fprintf(t->metrics, ", \"lr\": %.9g, \"logit_scale\": %.6g, \"grad_norm\": ", t->lr, scale);
    if (isfinite(t->grad_norm)) fprintf(t->metrics, "%.6g", t->grad_norm);
    else fputs("null", t->metrics); /* JSON has no NaN */
    if (t->model.kind == VLP_MODEL_BLIP) {
        static const char *names[3] = {"itc", "itm", "lm"};
        for (int i = 0; i < 3; i++)
            if (isfinite(t->model.terms[i])) fprintf(t->metrics, ", \"%s\": %.6g", names[i], t->model.terms[i]);
    }
    if (t->guard.skipped) fprintf(t->metrics, ", \"skipped\": true, \"bad_steps\": %ld", t->guard.bad_steps);
    fprintf(t->metrics, ", \"samples_per_s\": %.1f, \"elapsed_s\": %.3f}\n", samples_per_s, elapsed);
    /* A full disk must not stop the training (checkpoints say so on their
     * own): say it once, and which steps the curves miss. */
    if ((fflush(t->metrics) != 0 || ferror(t->metrics)) && t->metrics_lost_from < 0) {
        t->metrics_lost_from = t->step;
        fprintf(stderr, "vlptrain: warning: %s/metrics.jsonl: %s; training goes on, but the file misses "
                "steps from %ld\n", t->run_dir, strerror(errno), t->step);
    }
}

/* Rank 0 reports a step the guard skipped. */
static void report_skipped(const vlp_trainer *t, float loss, bool tty) {
    if (t->dist->rank != 0) return;
    if (tty) putchar('\n');
    printf("vlptrain: step %ld: loss %g, gradient norm %g: not finite; update skipped "
           "(%ld in a row, %ld in all)\n", t->step, loss, t->grad_norm, t->guard.streak, t->guard.bad_steps);
    fflush(stdout);
}

/* The error ending a streak of [train] max_bad_steps non-finite steps. */
static int stop_nonfinite(vlp_trainer *t) {
    char newest[VLP_PATH_MAX + 64] = "no checkpoint was written before it";
    if (t->last_checkpoint[0])
        snprintf(newest, sizeof newest, "the newest checkpoint, %s, is from before it", t->last_checkpoint);
    t->error_on_all_ranks = true;
    return vlp_error_set(VLP_ENONFINITE,
                         "step %ld: %ld steps in a row (from step %ld) had a loss or gradient norm that is "
                         "not finite ([train] max_bad_steps = %d); stopping without a checkpoint; %s. "
                         "Lower [optim] lr or set grad_clip, check the data, then --resume latest",
                         t->step, t->guard.streak, t->guard.streak_start, t->cfg.train.max_bad_steps, newest);
}

/* A checkpoint now (*tried = this step), unless a non-finite streak is
 * under way: its state may be what went wrong, and with [checkpoint] keep
 * it would push out the last good checkpoint. A write that fails stops the
 * run, or only warns with [checkpoint] on_error = continue. */
static int save_checkpoint(vlp_trainer *t, long *tried) {
    bool root = t->dist->rank == 0;
    *tried = t->step;
    if (t->guard.streak) {
        if (root) printf("vlptrain: step %ld: no checkpoint while steps are not finite (since step %ld)\n",
                         t->step, t->guard.streak_start);
        return VLP_OK;
    }
    int rc = vlp_trainer_checkpoint(t);
    if (rc && t->cfg.checkpoint.on_error == VLP_ON_ERROR_CONTINUE) {
        if (root) fprintf(stderr, "vlptrain: warning: %s; training goes on ([checkpoint] on_error = continue)\n",
                          vlp_error_message());
        rc = VLP_OK;
    } else if (rc) {
        t->error_on_all_ranks = true;
    }
    return rc;
}

/* After a signal: a checkpoint (when sound), then stop. */
static int stop_on_signal(vlp_trainer *t, long tried) {
    bool root = t->dist->rank == 0;
    if (root) printf("\nvlptrain: stopping at step %ld on a signal\n", t->step);
    int rc = tried != t->step ? save_checkpoint(t, &tried) : VLP_OK;
    if (rc) return rc;
    if (root && t->checkpoint_step == t->step)
        printf("vlptrain: checkpoint written; continue with --resume latest\n");
    else if (root)
        printf("vlptrain: no checkpoint of step %ld; --resume latest continues from %s\n", t->step,
               t->last_checkpoint[0] ? t->last_checkpoint : "(none: start again)");
    t->interrupted = true;
    return VLP_OK;
}

int vlp_trainer_run(vlp_trainer *t) {
    const vlp_config *c = &t->cfg;
    int pairs = c->train.batch_size * c->train.accum_freq * t->dist->world;
    vlp_progress progress;
    vlp_progress_init(&progress, stdout, t->total_steps, pairs, "samples", c->log.every);
    /* Under mpirun a rank's stdout is Open MPI's pseudo-terminal whether or
     * not mpirun's own output is one: plain lines, so a redirected log holds
     * no escape codes. */
    if (t->dist->mpi) progress.tty = false;
    progress.first = t->step; /* a resumed run counts on from its checkpoint's step */
    if (t->dist->rank == 0) {
        printf("vlptrain: %ld pairs from %s; %ld steps of %d pairs (%d ranks x %d x %d); "
               "%zu parameters; run folder %s\n", t->data.n, c->data.train, t->total_steps, pairs,
               t->dist->world, c->train.batch_size, c->train.accum_freq, t->model.params->n, t->run_dir);
        if (t->step) printf("vlptrain: resumed at step %ld of %ld\n", t->step, t->total_steps);
    }
    long first = t->step, tried = t->step; /* the step of the last checkpoint tried */
    double training = 0; /* seconds in steps, not in evaluations or checkpoints */
    while (t->step < t->total_steps) {
        float loss;
        double start = vlp_progress_elapsed(&progress);
        int rc = vlp_trainer_step(t, &loss);
        if (rc) return rc;
        double elapsed = vlp_progress_elapsed(&progress);
        training += elapsed - start;
        if (t->cost.ended_epoch >= 0) { /* an epoch ended: what its data cost */
            long epoch = t->cost.ended_epoch, skipped = vlp_dist_sum(t->dist, t->cost.ended_skipped),
                 cut = vlp_dist_sum(t->dist, t->cost.ended_cut);
            t->cost.ended_epoch = -1;
            if (t->dist->rank == 0) {
                if (progress.tty) putchar('\n');
                printf("epoch %ld done: %ld unreadable images skipped, %ld captions cut to the context\n",
                       epoch, skipped, cut);
                if (t->metrics)
                    fprintf(t->metrics,
                            "{\"step\": %ld, \"epoch_done\": %ld, \"skipped_images\": %ld, \"cut_captions\": %ld}\n",
                            t->step, epoch, skipped, cut);
            }
        }
        log_metrics(t, loss, (t->step - first) * pairs / training, elapsed);
        if (t->guard.skipped) {
            report_skipped(t, loss, progress.tty);
            if (t->guard.streak >= c->train.max_bad_steps) return stop_nonfinite(t);
        }
        if (t->dist->rank == 0)
            vlp_progress_update(&progress, t->step, "epoch %ld | loss %.4f | lr %.2e | scale %.1f",
                                t->next_epoch, loss, t->lr, vlp_model_logit_scale(&t->model));
        if (vlp_dist_any(t->dist, t->stop && *t->stop)) return stop_on_signal(t, tried);
        if (c->checkpoint.every && t->step % c->checkpoint.every == 0 &&
            (rc = save_checkpoint(t, &tried)))
            return rc;
        if (c->eval.every && t->step % c->eval.every == 0 && t->step < t->total_steps) {
            if (t->dist->rank == 0 && progress.tty) putchar('\n');
            if (t->evaluate && (rc = t->evaluate(t))) return rc;
        }
    }
    int rc = t->evaluate ? t->evaluate(t) : VLP_OK;
    if (rc) return rc;
    if (tried != t->step && (rc = save_checkpoint(t, &tried))) return rc;
    if (t->guard.bad_steps && t->dist->rank == 0)
        printf("vlptrain: %ld of %ld steps skipped: their loss or gradient norm was not finite\n",
               t->guard.bad_steps, t->step);
    if (t->dist->rank == 0) {
        char path[VLP_PATH_MAX + 16];
        snprintf(path, sizeof path, "%s/model.h5", t->run_dir);
        rc = vlp_weights_save(t->model.params, path);
        if (rc) return rc;
        if (t->metrics_lost_from < 0) printf("vlptrain: wrote %s and %s/metrics.jsonl\n", path, t->run_dir);
        else printf("vlptrain: wrote %s; %s/metrics.jsonl misses steps from %ld\n", path, t->run_dir,
                    t->metrics_lost_from);
    }
    return VLP_OK;
}
