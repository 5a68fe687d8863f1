/* Crash-safe HDF5 checkpoints (see checkpoint.h). */
#include "train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/error.h"
#include "base/mem.h"
#include "train/config.h"
#include "train/weights.h"

static int write_long(hid_t f, const char *name, long v) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, H5T_NATIVE_LONG, &v) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    return ok ? VLP_OK : VLP_EIO;
}

static int write_string(hid_t f, const char *name, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate(H5S_SCALAR);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t a = H5Acreate2(f, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    const char *p = v ? v : "";
    int ok = a >= 0 && H5Awrite(a, t, &p) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
    return ok ? VLP_OK : VLP_EIO;
}

/* H5Aread writes every element of the attribute: one holding two values
 * would overflow the one-value buffers below (found by
 * tests/fuzz/fuzz_checkpoint.c), and one holding none would leave them as
 * they were. */
static bool one_value(hid_t a) {
    hid_t s = H5Aget_space(a);
    bool one = s >= 0 && H5Sget_simple_extent_npoints(s) == 1;
    if (s >= 0) H5Sclose(s);
    return one;
}

static int read_long(hid_t f, const char *name, long *v) {
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    int ok = a >= 0 && one_value(a) && H5Aread(a, H5T_NATIVE_LONG, v) >= 0;
    if (a >= 0) H5Aclose(a);
    return ok ? VLP_OK : VLP_EFORMAT;
}

/* An attribute that older checkpoints lack: 0 then. */
static int read_optional_long(hid_t f, const char *name, long *v) {
    *v = 0;
    return H5Aexists(f, name) > 0 ? read_long(f, name, v) : VLP_OK;
}

static int read_string(hid_t f, const char *name, char **v) {
    hid_t a = H5Aopen(f, name, H5P_DEFAULT), t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    char *s = NULL;
    int ok = a >= 0 && one_value(a) && H5Aread(a, t, &s) >= 0 && s;
    *v = ok ? vlp_strdup(s) : NULL;
    if (s) H5free_memory(s);
    if (a >= 0) H5Aclose(a);
    H5Tclose(t);
    return ok ? VLP_OK : VLP_EFORMAT;
}

static bool has_suffix(const char *name, const char *suffix) {
    size_t n = strlen(name), m = strlen(suffix);
    return strncmp(name, "step_", 5) == 0 && n > m + 5 && strcmp(name + n - m, suffix) == 0;
}

static bool is_checkpoint_name(const char *name) { return has_suffix(name, ".h5"); }

void vlp_checkpoint_remove_partial(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (has_suffix(e->d_name, ".h5.tmp")) {
            char path[VLP_PATH_MAX + 300];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            remove(path);
        }
    closedir(d);
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checkpoint file names in dir, oldest first (zero-padded steps sort). */
static char **list_checkpoints(const char *dir, int *count) {
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **names = NULL;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_checkpoint_name(e->d_name)) continue;
        if (*count == cap) {
            cap = cap ? 2 * cap : 16;
            names = vlp_realloc(names, (size_t)cap * sizeof *names);
        }
        names[(*count)++] = vlp_strdup(e->d_name);
    }
    closedir(d);
    if (*count) qsort(names, (size_t)*count, sizeof *names, cmp_names);
    return names;
}

/* The newest checkpoint in dir, for messages: "the newest checkpoint, X,
 * is intact" is what a user wants to read after a failed write. */
static void newest_checkpoint(const char *dir, char *out, size_t size) {
    int n;
    char **names = list_checkpoints(dir, &n);
    if (n) snprintf(out, size, "the newest checkpoint, %s/%s, is intact", dir, names[n - 1]);
    else snprintf(out, size, "there is no earlier checkpoint");
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static int write_ints(hid_t f, const char *name, const int *v, int n) {
    hid_t s = H5Screate_simple(1, (hsize_t[]){(hsize_t)n}, NULL);
    hid_t d = H5Dcreate2(f, name, H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    if (d >= 0) H5Dclose(d);
    H5Sclose(s);
    return ok ? VLP_OK : vlp_error_set(VLP_EIO, "cannot write %s", name);
}

/* The whole checkpoint as an HDF5 file in memory (see weights.h for why). */
static int build_checkpoint(hid_t f, const vlp_params *p, const vlp_checkpoint_meta *m) {
    int rc = vlp_weights_write(f, "/params", p, p->data);
    if (!rc) rc = vlp_weights_write(f, "/optim/m", p, p->m);
    if (!rc) rc = vlp_weights_write(f, "/optim/v", p, p->v);
    if (!rc && m->state) rc = vlp_weights_write(f, "/state", m->state, m->state->data);
    if (!rc && m->n_state_ints) rc = write_ints(f, "state_ints", m->state_ints, m->n_state_ints);
    if (!rc && (write_long(f, "format_version", VLP_CHECKPOINT_FORMAT) || write_long(f, "step", m->step) ||
                write_long(f, "loader_epoch", m->loader_epoch) || write_long(f, "loader_step", m->loader_step) ||
                write_long(f, "epoch_skipped", m->epoch_skipped) || write_long(f, "epoch_cut", m->epoch_cut) ||
                write_long(f, "adam_step", m->adam_step) || write_long(f, "seed", m->seed) ||
                write_string(f, "config", m->config) || write_string(f, "tokenizer", m->tokenizer) ||
                write_string(f, "version", m->version)))
        rc = vlp_error_set(VLP_EIO, "cannot write the checkpoint's attributes");
    return rc;
}

int vlp_checkpoint_save(const char *dir, const vlp_params *p, const vlp_checkpoint_meta *m,
                        int keep, char *written) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return vlp_error_set(VLP_EIO, "%s: cannot create: %s", dir, strerror(errno));
    char path[VLP_PATH_MAX];
    if (snprintf(path, sizeof path, "%s/step_%010ld.h5", dir, m->step) >= (int)sizeof path)
        return vlp_error_set(VLP_EINVAL, "%s: path too long", dir);
    size_t strings = (m->config ? strlen(m->config) : 0) + (m->tokenizer ? strlen(m->tokenizer) : 0);
    size_t state = m->state ? m->state->n * sizeof(float) + 12288 * (size_t)m->state->count : 0;
    hid_t f = vlp_h5_create_in_memory(3 * p->n * sizeof(float) + strings + 12288 * (size_t)p->count + state +
                                      sizeof(int) * (size_t)m->n_state_ints);
    int rc = f < 0 ? vlp_error_set(VLP_ENOMEM, "cannot create an HDF5 file in memory") : build_checkpoint(f, p, m);
    if (rc && f >= 0) H5Fclose(f);
    if (!rc) rc = vlp_h5_write_image(f, path); /* closes f */
    if (rc) {
        char newest[VLP_PATH_MAX + 64];
        newest_checkpoint(dir, newest, sizeof newest);
        return vlp_error_set(rc, "checkpoint of step %ld not written: %s; %s", m->step, vlp_error_message(), newest);
    }
    if (written) snprintf(written, VLP_PATH_MAX, "%s", path);
    vlp_checkpoint_remove_partial(dir);
    int n;
    char **names = list_checkpoints(dir, &n);
    for (int i = 0; i < n; i++) {
        if (i < n - keep) {
            char old[VLP_PATH_MAX + 300];
            snprintf(old, sizeof old, "%s/%s", dir, names[i]);
            remove(old);
        }
        free(names[i]);
    }
    free(names);
    return VLP_OK;
}

/* Why H5Fopen refused path, in the user's terms: missing, empty, not HDF5
 * at all, or HDF5 that cannot be read (a truncated copy, a damaged disk). */
static int open_error(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return vlp_error_set(VLP_EFORMAT, "%s: a folder, not a checkpoint file "
                             "(--resume latest takes the newest of [log] dir)", path);
    return vlp_h5_open_error(path, "a vlp checkpoint");
}

void vlp_checkpoint_meta_free(vlp_checkpoint_meta *m) {
    free(m->config);
    free(m->tokenizer);
    free(m->version);
    memset(m, 0, sizeof *m);
}

int vlp_checkpoint_read_meta(const char *path, vlp_checkpoint_meta *m) {
    memset(m, 0, sizeof *m);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return open_error(path);
    long format = 0;
    int rc = read_long(f, "format_version", &format);
    if (rc) rc = vlp_error_set(VLP_EFORMAT, "%s: not a vlp checkpoint (no format_version)", path);
    else if (format > VLP_CHECKPOINT_FORMAT)
        rc = vlp_error_set(VLP_EFORMAT, "%s: checkpoint format %ld is newer than this build's %d; "
                           "update vlp", path, format, VLP_CHECKPOINT_FORMAT);
    else if (read_long(f, "step", &m->step) || read_long(f, "loader_epoch", &m->loader_epoch) ||
             read_long(f, "loader_step", &m->loader_step) || read_long(f, "adam_step", &m->adam_step) ||
             read_long(f, "seed", &m->seed) || read_string(f, "config", &m->config) ||
             read_string(f, "tokenizer", &m->tokenizer) || read_string(f, "version", &m->version) ||
             read_optional_long(f, "epoch_skipped", &m->epoch_skipped) ||
             read_optional_long(f, "epoch_cut", &m->epoch_cut))
        rc = vlp_error_set(VLP_EFORMAT, "%s: a checkpoint attribute is missing or unreadable", path);
    H5Fclose(f);
    if (rc) vlp_checkpoint_meta_free(m);
    return rc;
}

int vlp_checkpoint_load(const char *path, vlp_params *p, bool with_optim) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return open_error(path);
    int rc = vlp_weights_read(f, path, "/params", p, p->data);
    if (!rc && with_optim) rc = vlp_weights_read(f, path, "/optim/m", p, p->m);
    if (!rc && with_optim) rc = vlp_weights_read(f, path, "/optim/v", p, p->v);
    H5Fclose(f);
    return rc;
}

int vlp_checkpoint_load_state(const char *path, vlp_params *state, int *ints, int n) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return open_error(path);
    int rc = state ? vlp_weights_read(f, path, "/state", state, state->data) : VLP_OK;
    if (!rc && n) {
        hid_t d = H5Dopen2(f, "state_ints", H5P_DEFAULT);
        hid_t s = d >= 0 ? H5Dget_space(d) : -1;
        bool ok = s >= 0 && H5Sget_simple_extent_npoints(s) == n &&
                  H5Dread(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, ints) >= 0;
        if (s >= 0) H5Sclose(s);
        if (d >= 0) H5Dclose(d);
        if (!ok) rc = vlp_error_set(VLP_EFORMAT, "%s: state_ints missing or not %d ints", path, n);
    }
    H5Fclose(f);
    return rc;
}

bool vlp_checkpoint_any(const char *dir) {
    int n;
    char **names = list_checkpoints(dir, &n);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return n > 0;
}

void vlp_checkpoint_remove_all(const char *dir) {
    int n;
    char **names = list_checkpoints(dir, &n);
    for (int i = 0; i < n; i++) {
        char path[VLP_PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        remove(path);
        free(names[i]);
    }
    free(names);
}

int vlp_checkpoint_latest(const char *dir, char *path, size_t size) {
    int n;
    char **names = list_checkpoints(dir, &n);
    int rc = VLP_ENOTFOUND;
    for (int i = n - 1; i >= 0; i--) {
        snprintf(path, size, "%s/%s", dir, names[i]);
        vlp_checkpoint_meta m;
        if (vlp_checkpoint_read_meta(path, &m) == VLP_OK) {
            vlp_checkpoint_meta_free(&m);
            rc = VLP_OK;
            break;
        }
        fprintf(stderr, "vlp: warning: passing over %s\n", vlp_error_message());
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    if (rc) vlp_error_set(rc, "%s: no readable checkpoint to resume from", dir);
    return rc;
}

/* A model file (weights at the root, as a run's model.h5) rather than a
 * checkpoint: 1 with config and merges set to the config.ini and
 * tokenizer.bpe beside it when both exist, 0 when path is not such a file
 * (a checkpoint, or not readable: the checkpoint path reports that), and
 * an error saying what to pass when the architecture is nowhere. */
static int bare_model_file(const char *path, char *config, char *merges) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return 0;
    /* every kind's store has a temperature at the root: CLIP's and
     * GroupViT's logit_scale, BLIP's temp (an index or a shard has none) */
    bool bare = H5Aexists(f, "format_version") <= 0 && H5Lexists(f, "params", H5P_DEFAULT) <= 0 &&
                (H5Lexists(f, "logit_scale", H5P_DEFAULT) > 0 || H5Lexists(f, "temp", H5P_DEFAULT) > 0);
    H5Fclose(f);
    if (!bare) return 0;
    char copy[VLP_PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    const char *dir = dirname(copy);
    snprintf(config, VLP_PATH_MAX + 32, "%s/config.ini", dir);
    snprintf(merges, VLP_PATH_MAX + 32, "%s/tokenizer.bpe", dir);
    if (access(config, R_OK) == 0 && access(merges, R_OK) == 0) return 1;
    bool has_config = access(config, R_OK) == 0;
    return vlp_error_set(VLP_EFORMAT, "%s: a model file (weights only), not a checkpoint, and its folder %s has "
                         "no %s: pass the run folder that holds model.h5 with its config.ini and tokenizer.bpe, "
                         "or a checkpoint (RUN/checkpoints/step_*.h5)", path, dir,
                         has_config ? "tokenizer.bpe (the vocabulary)" : "config.ini (the architecture)");
}

int vlp_model_load(const char *path, vlp_model *m, vlp_tokenizer **tok) {
    *tok = NULL;
    struct stat st;
    bool folder = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    vlp_checkpoint_meta meta = {0};
    char file[VLP_PATH_MAX + 32], weights[VLP_PATH_MAX + 32], merges[VLP_PATH_MAX + 32];
    int rc;
    if (folder) {
        snprintf(file, sizeof file, "%s/config.ini", path);
        meta.config = vlp_read_text(file);
        snprintf(merges, sizeof merges, "%s/tokenizer.bpe", path);
        meta.tokenizer = vlp_read_text(merges);
        snprintf(weights, sizeof weights, "%s/model.h5", path);
        rc = meta.config && meta.tokenizer ? VLP_OK
             : vlp_error_set(VLP_ENOTFOUND, "%s: not a run folder (config.ini, tokenizer.bpe, model.h5)", path);
    } else if ((rc = bare_model_file(path, file, merges)) > 0) {
        folder = true; /* its folder's config.ini and tokenizer.bpe, as a run folder's */
        snprintf(weights, sizeof weights, "%s", path);
        meta.config = vlp_read_text(file);
        meta.tokenizer = vlp_read_text(merges);
        rc = meta.config && meta.tokenizer
             ? VLP_OK : vlp_error_set(VLP_ENOTFOUND, "%s: cannot read %s", path, meta.config ? merges : file);
    } else if (rc == 0) {
        rc = vlp_checkpoint_read_meta(path, &meta);
    }
    vlp_config cfg;
    if (!rc) rc = vlp_config_parse_text(&cfg, meta.config, folder ? file : path);
    if (!rc) {
        char name[VLP_PATH_MAX + 32];
        snprintf(name, sizeof name, "%s: its tokenizer", path);
        rc = vlp_tokenizer_parse(tok, meta.tokenizer, strlen(meta.tokenizer), folder ? merges : name, -1);
    }
    if (!rc) {
        cfg.blip.momentum = false; /* inference needs no momentum encoders */
        rc = vlp_model_init(m, &cfg, vlp_tokenizer_vocab_size(*tok), 0);
        if (!rc) rc = folder ? vlp_weights_load(m->params, weights) : vlp_checkpoint_load(path, m->params, false);
        if (rc) vlp_model_free(m);
    }
    if (rc && *tok) vlp_tokenizer_free(*tok), *tok = NULL;
    vlp_checkpoint_meta_free(&meta);
    return rc;
}

int vlp_model_open(const char *path, vlp_clip *m, vlp_tokenizer **tok) {
    vlp_model any;
    int rc = vlp_model_load(path, &any, tok);
    if (rc) return rc;
    if (any.kind != VLP_MODEL_CLIP) {
        int kind = any.kind;
        vlp_model_free(&any);
        vlp_tokenizer_free(*tok), *tok = NULL;
        return vlp_error_set(VLP_EINVAL, "%s: a %s model; this program takes CLIP models only", path,
                             vlp_model_kind_name(kind));
    }
    *m = any.clip; /* the store's tensors point into its own buffer, not into `any` */
    return VLP_OK;
}
