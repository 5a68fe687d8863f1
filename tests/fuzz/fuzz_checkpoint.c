/* libFuzzer harness: checkpoint loading (vlp_checkpoint_read_meta, then
 * vlp_checkpoint_load with AdamW's moments into a tiny CLIP's parameters).
 *
 * Two kinds of input. Recipe: "OPS:" then a little program of edits that
 * this harness applies while it writes the tiny model's checkpoint with the
 * HDF5 API: tensors missing, of another shape or type, a group or a
 * dangling link in a tensor's place, chunked and compressed, extra
 * tensors, groups missing, attributes missing or of another type or shape,
 * and at the end the file truncated or bytes overwritten. Recipes reach
 * vlp's own checks without having to get HDF5's on-disk structures right
 * by chance; for those without damage the outcome is known and checked: a
 * clean checkpoint loads with every value in place, and each error kind
 * must be refused. Raw: the bytes are the file (the seeds are a real
 * checkpoint that vlp_checkpoint_save wrote, and truncated and damaged
 * copies of it).
 * Damage (raw bytes, overwritten bytes) reaches libhdf5's own parser,
 * which does not survive it: Debian 12's 1.10.8 reads past a buffer
 * (H5HG_read, a damaged global heap under a string attribute) within
 * seconds of fuzzing. So damage is fuzzed only with VLP_FUZZ_DAMAGE=1;
 * without it raw inputs are skipped and recipes only truncate (which
 * HDF5 detects at open). The replay of the corpus sets it.
 * After every input no HDF5 object may be left open. */
#include <hdf5.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/error.h"
#include "fuzz_util.h"
#include "tiny_clip.h"
#include "train/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static vlp_clip model; /* made once; loads overwrite its buffers */

static bool damage_allowed(void) {
    static int allowed = -1;
    if (allowed < 0) {
        const char *e = getenv("VLP_FUZZ_DAMAGE");
        allowed = e && *e && strcmp(e, "0") != 0;
    }
    return allowed;
}

/* ---- recipes ------------------------------------------------------------- */

#define MAX_TENSORS 64
enum { G_PARAMS, G_M, G_V, N_GROUPS };
static const char *const GROUPS[N_GROUPS] = {"/params", "/optim/m", "/optim/v"};

enum { T_NORMAL, T_MISSING, T_SHAPE, T_TYPE, T_GROUP, T_DANGLING, T_CHUNKED, T_DOUBLE, T_NAN, N_TMODES };
enum { GR_NORMAL, GR_MISSING, GR_DATASET, GR_EMPTY, N_GRMODES };
enum { A_NORMAL, A_MISSING, A_OTHER_KIND, A_DOUBLE, A_ARRAY2, A_NULLSPACE, A_FIXED_STRING, A_EMPTY, N_AMODES };

#define N_LONG_ATTRS 6
static const char *const ATTRS[] = {"format_version", "step", "loader_epoch", "loader_step", "adam_step",
                                    "seed", "config", "tokenizer", "version"};
#define N_ATTRS ((int)(sizeof ATTRS / sizeof *ATTRS))
static const char *const EXTRA_NAMES[] = {"extra", "visual.transformer.resblocks.1.ln_1.weight",
                                          "logit_scale ", "token_embedding"};

typedef struct recipe {
    unsigned char tmode[N_GROUPS][MAX_TENSORS], targ[N_GROUPS][MAX_TENSORS];
    int extra[N_GROUPS]; /* 1 + index into EXTRA_NAMES, 0 none */
    int gmode[N_GROUPS];
    int amode[N_ATTRS];
    long along[N_LONG_ATTRS];
    char astr[N_ATTRS - N_LONG_ATTRS][256];
    bool truncate;
    unsigned truncate_at; /* of 65536 */
    int n_flips;
    uint32_t flip_at[8];
    uint8_t flip_xor[8];
} recipe;

typedef struct reader {
    const uint8_t *p, *end;
} reader;

static unsigned next(reader *r) { return r->p < r->end ? *r->p++ : 0; }

static void parse_recipe(recipe *rc, const uint8_t *p, size_t n, int count) {
    memset(rc, 0, sizeof *rc);
    rc->along[0] = VLP_CHECKPOINT_FORMAT, rc->along[1] = 7, rc->along[2] = 1, rc->along[3] = 3;
    rc->along[4] = 7, rc->along[5] = 42;
    snprintf(rc->astr[0], sizeof rc->astr[0], "%s", FUZZ_TINY_CONFIG);
    snprintf(rc->astr[1], sizeof rc->astr[1], "%s", FUZZ_TINY_MERGES);
    snprintf(rc->astr[2], sizeof rc->astr[2], "fuzz");
    reader r = {p, p + n};
    while (r.p < r.end) {
        switch (next(&r) % 8) {
        case 0: {
            int g = (int)(next(&r) % N_GROUPS), i = (int)(next(&r) % (unsigned)count);
            rc->tmode[g][i] = (unsigned char)(next(&r) % N_TMODES);
            rc->targ[g][i] = (unsigned char)next(&r);
            break;
        }
        case 1: {
            int g = (int)(next(&r) % N_GROUPS);
            rc->extra[g] = 1 + (int)(next(&r) % (sizeof EXTRA_NAMES / sizeof *EXTRA_NAMES));
            break;
        }
        case 2: {
            int g = (int)(next(&r) % N_GROUPS);
            rc->gmode[g] = (int)(next(&r) % N_GRMODES);
            break;
        }
        case 3: {
            int a = (int)(next(&r) % N_ATTRS);
            rc->amode[a] = (int)(next(&r) % N_AMODES);
            break;
        }
        case 4: {
            int a = (int)(next(&r) % N_LONG_ATTRS);
            uint64_t v = 0;
            for (int k = 0; k < 8; k++) v = v << 8 | next(&r);
            rc->along[a] = (long)v;
            break;
        }
        case 5: {
            int a = (int)(next(&r) % (N_ATTRS - N_LONG_ATTRS));
            size_t len = next(&r), k = 0;
            for (; k < len && k + 1 < sizeof rc->astr[a] && r.p < r.end; k++) rc->astr[a][k] = (char)next(&r);
            rc->astr[a][k] = '\0';
            break;
        }
        case 6:
            rc->truncate = true;
            rc->truncate_at = next(&r) << 8;
            rc->truncate_at |= next(&r);
            break;
        case 7:
            if (rc->n_flips < 8) {
                uint32_t at = 0;
                for (int k = 0; k < 4; k++) at = at << 8 | next(&r);
                rc->flip_at[rc->n_flips] = at;
                rc->flip_xor[rc->n_flips++] = (uint8_t)(next(&r) | 1);
            }
            break;
        }
    }
}

/* The value a recipe writes at element j of parameter i in group g. */
static float pattern(int g, int i, size_t j) { return (float)g + 0.25f * (float)i + 1e-3f * (float)(j % 997); }

/* Shape variant v of the parameter's shape; whether it differs. */
static bool other_shape(const vlp_tensor *t, unsigned v, int *ndim, hsize_t *dims) {
    *ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++) dims[d] = (hsize_t)t->shape[d];
    switch (v % 6) {
    case 0: dims[(*ndim)++] = 1; break;                    /* one more dimension */
    case 1: (*ndim)--; break;                              /* one fewer (maybe 0-d) */
    case 2: dims[0] += 1; break;                           /* longer */
    case 3: dims[*ndim - 1] *= 2; break;                   /* wider */
    case 4: *ndim = 0; break;                              /* a scalar */
    case 5: dims[0] = 0; break;                            /* empty */
    }
    if (*ndim == 0 && t->n == 1) return false; /* OpenCLIP's 0-d logit_scale is accepted */
    if (*ndim != t->ndim) return true;
    for (int d = 0; d < t->ndim; d++)
        if (dims[d] != (hsize_t)t->shape[d]) return true;
    return false;
}

static hid_t other_type(unsigned v) {
    switch (v % 6) {
    case 0: return H5Tcopy(H5T_STD_I32LE);
    case 1: return H5Tcopy(H5T_STD_U8LE);
    case 2: {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 4);
        return t;
    }
    case 3: {
        hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(float));
        H5Tinsert(t, "x", 0, H5T_NATIVE_FLOAT);
        return t;
    }
    case 4: return H5Tcreate(H5T_OPAQUE, 4);
    default: return H5Tvlen_create(H5T_NATIVE_FLOAT);
    }
}

/* Writes one tensor in its recipe's form. Returns whether the model must
 * refuse the file because of it. */
static bool write_tensor(hid_t grp, int g, int i, const recipe *rc, float *scratch) {
    const vlp_param *e = &model.params.table[i];
    int mode = rc->tmode[g][i];
    unsigned arg = rc->targ[g][i];
    if (mode == T_MISSING) return true;
    if (mode == T_GROUP) {
        hid_t x = H5Gcreate2(grp, e->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (x >= 0) H5Gclose(x);
        return true;
    }
    if (mode == T_DANGLING) {
        H5Lcreate_soft("/nowhere", grp, e->name, H5P_DEFAULT, H5P_DEFAULT);
        return true;
    }
    int ndim = e->t->ndim;
    hsize_t dims[VLP_MAX_DIMS + 1];
    for (int d = 0; d < ndim; d++) dims[d] = (hsize_t)e->t->shape[d];
    bool refuse = false;
    if (mode == T_SHAPE) refuse = other_shape(e->t, arg, &ndim, dims);
    hsize_t total = 1;
    for (int d = 0; d < ndim; d++) total *= dims[d];
    for (hsize_t j = 0; j < total; j++) scratch[j] = mode == T_NAN && j % 3 == arg % 3 ? NAN : pattern(g, i, j);
    hid_t space = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t type = mode == T_TYPE ? other_type(arg) : H5Tcopy(mode == T_DOUBLE ? H5T_IEEE_F64LE : H5T_IEEE_F32LE);
    if (mode == T_TYPE) refuse = true;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (mode == T_CHUNKED && ndim > 0 && total > 0) {
        hsize_t chunk[VLP_MAX_DIMS + 1];
        for (int d = 0; d < ndim; d++) chunk[d] = dims[d] > 1 ? (dims[d] + 1) / 2 : 1;
        H5Pset_chunk(dcpl, ndim, chunk);
        if (arg & 1) H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, arg % 10);
    }
    hid_t ds = H5Dcreate2(grp, e->name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    /* Other types get no values: the check is on the type, not on them. */
    if (ds >= 0 && mode != T_TYPE) H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, scratch);
    if (ds >= 0) H5Dclose(ds);
    H5Pclose(dcpl);
    H5Tclose(type);
    H5Sclose(space);
    return refuse;
}

/* What a recipe's edit means for the reader: every attribute or tensor
 * MAY_PASS leaves a file that must load; one MUST_FAIL makes it one that
 * must be refused; UNKNOWN drops the expectation. */
enum { MAY_PASS, MUST_FAIL, UNKNOWN };

/* Writes attribute a in its recipe's form. */
static int write_attr(hid_t f, int a, const recipe *rc) {
    bool is_long = a < N_LONG_ATTRS;
    int mode = rc->amode[a];
    if (mode == A_MISSING) return MUST_FAIL;
    hid_t vstr = H5Tcopy(H5T_C_S1);
    H5Tset_size(vstr, H5T_VARIABLE);
    H5Tset_cset(vstr, H5T_CSET_UTF8);
    long lv[2] = {is_long ? rc->along[a] : 1, 0};
    const char *sv[2] = {is_long ? "1" : rc->astr[a - N_LONG_ATTRS], "two"};
    double dv[2] = {(double)lv[0], 0};
    bool as_long = is_long != (mode == A_OTHER_KIND);
    hid_t space, type, mem;
    const void *buf;
    if (mode == A_ARRAY2 || mode == A_EMPTY) {
        hsize_t n = mode == A_ARRAY2 ? 2 : 0;
        space = H5Screate_simple(1, &n, NULL);
    } else {
        space = H5Screate(mode == A_NULLSPACE ? H5S_NULL : H5S_SCALAR);
    }
    if (mode == A_DOUBLE) {
        type = H5Tcopy(H5T_IEEE_F64LE), mem = H5Tcopy(H5T_NATIVE_DOUBLE), buf = dv;
    } else if (mode == A_FIXED_STRING) {
        type = H5Tcopy(H5T_C_S1);
        H5Tset_size(type, 3);
        mem = H5Tcopy(type), buf = "abc";
    } else if (as_long) {
        type = H5Tcopy(H5T_STD_I64LE), mem = H5Tcopy(H5T_NATIVE_LONG), buf = lv;
    } else {
        type = H5Tcopy(vstr), mem = H5Tcopy(vstr), buf = sv;
    }
    hid_t at = H5Acreate2(f, ATTRS[a], type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (at >= 0 && mode != A_NULLSPACE && mode != A_EMPTY) H5Awrite(at, mem, buf);
    if (at >= 0) H5Aclose(at);
    H5Tclose(mem);
    H5Tclose(type);
    H5Sclose(space);
    H5Tclose(vstr);
    if (mode == A_NORMAL) return a == 0 && rc->along[0] > VLP_CHECKPOINT_FORMAT ? MUST_FAIL : MAY_PASS;
    if (mode == A_DOUBLE) return !is_long || (a == 0 && dv[0] > VLP_CHECKPOINT_FORMAT) ? MUST_FAIL : MAY_PASS;
    if (mode == A_FIXED_STRING) return is_long ? MUST_FAIL : UNKNOWN; /* fixed to variable-length: HDF5's call */
    return MUST_FAIL; /* the other kind, two values, none */
}

typedef struct expect {
    bool meta_fails, load_fails, damaged, meta_unknown;
} expect;

static void write_recipe(const char *path, const recipe *rc, expect *ex) {
    memset(ex, 0, sizeof *ex);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    FUZZ_CHECK(f >= 0, "cannot create %s", path);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    static float scratch[1 << 16];
    for (int g = 0; g < N_GROUPS; g++) {
        if (rc->gmode[g] == GR_MISSING) {
            ex->load_fails = true;
            continue;
        }
        if (rc->gmode[g] == GR_DATASET) {
            hid_t s = H5Screate(H5S_SCALAR);
            hid_t d = H5Dcreate2(f, GROUPS[g], H5T_STD_I32LE, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
            if (d >= 0) H5Dclose(d);
            H5Sclose(s);
            ex->load_fails = true;
            continue;
        }
        hid_t grp = H5Gcreate2(f, GROUPS[g], lcpl, H5P_DEFAULT, H5P_DEFAULT);
        FUZZ_CHECK(grp >= 0, "cannot create %s", GROUPS[g]);
        if (rc->gmode[g] == GR_EMPTY) {
            ex->load_fails = true;
        } else {
            for (int i = 0; i < model.params.count; i++)
                if (write_tensor(grp, g, i, rc, scratch)) ex->load_fails = true;
        }
        if (rc->extra[g]) {
            const char *name = EXTRA_NAMES[rc->extra[g] - 1];
            if (H5Lexists(grp, name, H5P_DEFAULT) <= 0) {
                hsize_t one = 1;
                hid_t s = H5Screate_simple(1, &one, NULL);
                hid_t d = H5Dcreate2(grp, name, H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
                if (d >= 0) H5Dclose(d);
                H5Sclose(s);
                ex->load_fails = true;
            }
        }
        H5Gclose(grp);
    }
    H5Pclose(lcpl);
    for (int a = 0; a < N_ATTRS; a++) {
        int e = write_attr(f, a, rc);
        if (e == MUST_FAIL) ex->meta_fails = true;
        if (e == UNKNOWN) ex->meta_unknown = true;
    }
    FUZZ_CHECK(H5Fclose(f) >= 0, "cannot close %s", path);

    int n_flips = damage_allowed() ? rc->n_flips : 0;
    if (!rc->truncate && !n_flips) return;
    ex->damaged = true;
    FILE *file = fopen(path, "r+b");
    FUZZ_CHECK(file != NULL, "cannot reopen %s", path);
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    for (int k = 0; k < n_flips && size > 0; k++) {
        long at = (long)(rc->flip_at[k] % (uint32_t)size);
        fseek(file, at, SEEK_SET);
        int c = fgetc(file);
        fseek(file, at, SEEK_SET);
        fputc(c ^ rc->flip_xor[k], file);
    }
    fclose(file);
    if (rc->truncate) FUZZ_CHECK(truncate(path, (off_t)((double)size * rc->truncate_at / 65536.0)) == 0, "truncate");
}

/* ---- the harness ------------------------------------------------------------ */

static void init_model(void) {
    vlp_clip_config cfg = fuzz_tiny_clip_config();
    FUZZ_CHECK(vlp_clip_init(&model, &cfg, 1) == VLP_OK, "tiny CLIP: %s", vlp_error_message());
    FUZZ_CHECK(model.params.count <= MAX_TENSORS, "%d tensors", model.params.count);
    for (int i = 0; i < model.params.count; i++)
        FUZZ_CHECK(model.params.table[i].t->n <= (1 << 15), "tensor %s too large", model.params.table[i].name);
}

static recipe current; /* 13 KB: not on the stack */

static size_t open_objects(void) { return (size_t)H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT) return 0;
    if (!model.params.count) init_model();
    fuzz_dir("checkpoint");
    char path[1024];
    snprintf(path, sizeof path, "%s/step_0000000001.h5", fuzz_dir_path);
    bool is_recipe = size >= 4 && !memcmp(data, "OPS:", 4);
    if (!is_recipe && !damage_allowed()) return 0;
    expect ex = {.damaged = true};
    if (is_recipe) {
        parse_recipe(&current, data + 4, size - 4, model.params.count);
        write_recipe(path, &current, &ex);
    } else {
        fuzz_write(path, sizeof path, "step_0000000001.h5", data, size);
    }
    FUZZ_CHECK(open_objects() == 0, "HDF5 objects left open after writing");

    vlp_checkpoint_meta meta;
    int rc = vlp_checkpoint_read_meta(path, &meta);
    FUZZ_CHECK(open_objects() == 0, "read_meta left HDF5 objects open (rc %d)", rc);
    if (rc != VLP_OK) {
        FUZZ_CHECK(rc < 0 && !meta.config && !meta.tokenizer && !meta.version && vlp_error_message()[0],
                   "failed read_meta: rc %d", rc);
    } else {
        FUZZ_CHECK(meta.config && meta.tokenizer && meta.version, "read_meta without strings");
        /* What vlp_model_open does next with them (files in our folder). */
        vlp_config cfg;
        vlp_config_parse_text(&cfg, meta.config, path);
        char merges[1024];
        fuzz_write(merges, sizeof merges, "merges.txt", meta.tokenizer, strlen(meta.tokenizer));
        vlp_tokenizer *tok;
        if (vlp_tokenizer_load(&tok, merges, -1) == VLP_OK) vlp_tokenizer_free(tok);
        vlp_checkpoint_meta_free(&meta);
    }
    if (!ex.damaged && (ex.meta_fails || !ex.meta_unknown))
        FUZZ_CHECK((rc != VLP_OK) == ex.meta_fails, "read_meta gave %d, expected %s: %s", rc,
                   ex.meta_fails ? "an error" : "success", vlp_error_message());

    rc = vlp_checkpoint_load(path, &model.params, true);
    FUZZ_CHECK(open_objects() == 0, "load left HDF5 objects open (rc %d)", rc);
    if (rc != VLP_OK) FUZZ_CHECK(rc < 0 && vlp_error_message()[0], "failed load: rc %d", rc);
    if (!ex.damaged) {
        FUZZ_CHECK((rc != VLP_OK) == ex.load_fails, "load gave %d, expected %s: %s", rc,
                   ex.load_fails ? "an error" : "success", vlp_error_message());
        if (rc == VLP_OK) {
            const float *buf[N_GROUPS] = {model.params.data, model.params.m, model.params.v};
            for (int g = 0; g < N_GROUPS; g++)
                for (int i = 0; i < model.params.count; i++) {
                    const vlp_param *e = &model.params.table[i];
                    for (long j = 0; j < e->t->n; j++) {
                        float got = buf[g][e->offset + (size_t)j], want = pattern(g, i, (size_t)j);
                        if (current.tmode[g][i] == T_NAN && (size_t)j % 3 == current.targ[g][i] % 3u)
                            want = NAN;
                        FUZZ_CHECK(got == want || (isnan(got) && isnan(want)), "%s/%s[%ld] = %g, written %g", GROUPS[g],
                                   e->name, j, got, want);
                    }
                }
        }
    }
    return 0;
}
