/* Embedding index and gallery (see search.h). */
#include "apps/search.h"

#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "autograd/kernels.h"
#include "apps/html.h"
#include "data/image.h"
#include "data/loader.h"
#include "train/weights.h"

static hid_t string_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static int write_strings(hid_t f, const char *name, const char **v, hsize_t n) {
    hid_t t = string_type(), s = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(f, name, t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    if (d >= 0) H5Dclose(d);
    H5Sclose(s), H5Tclose(t);
    return ok ? VLP_OK : VLP_EIO;
}

/* The index file: features, then each row's caption and path, and what they came from. */
static int index_write(const char *path, const float *features, long n, int dim, const char *const *caps,
                       const char *const *paths, const char *source, long unreadable, const char *model,
                       const char *model_id) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    /* A NaN row would be every query's answer, or none: never written. */
    for (long i = 0; i < n; i++)
        for (int j = 0; j < dim; j++)
            if (!isfinite(features[i * dim + j]))
                return vlp_error_set(VLP_EFORMAT, "%s not written: the embedding of %s%s%s (row %ld) is not finite "
                                     "(NaN or infinity): the model's output cannot be used", path,
                                     paths[i][0] ? paths[i] : "'", paths[i][0] ? "" : caps[i], paths[i][0] ? "" : "'", i);
    size_t bytes = (size_t)n * dim * sizeof(float) + 4096;
    for (long i = 0; i < n; i++) bytes += strlen(caps[i]) + strlen(paths[i]) + 32;
    hid_t f = vlp_h5_create_in_memory(bytes);
    if (f < 0) return vlp_error_set(VLP_ENOMEM, "%s: cannot create an HDF5 file in memory", path);
    hsize_t dims[2] = {(hsize_t)n, (hsize_t)dim};
    hid_t s = H5Screate_simple(2, dims, NULL);
    hid_t d = H5Dcreate2(f, "features", H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, features) >= 0 ? VLP_OK : VLP_EIO;
    if (d >= 0) H5Dclose(d);
    H5Sclose(s);
    /* images of the source that could not be read, and so are not rows */
    hid_t scalar = H5Screate(H5S_SCALAR);
    hid_t u = rc ? -1 : H5Dcreate2(f, "unreadable", H5T_STD_I64LE, scalar, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (!rc && (u < 0 || H5Dwrite(u, H5T_NATIVE_LONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, &unreadable) < 0)) rc = VLP_EIO;
    if (u >= 0) H5Dclose(u);
    H5Sclose(scalar);
    const char *src[1] = {source};
    if (!rc) rc = write_strings(f, "captions", (const char **)caps, (hsize_t)n) ||
                  write_strings(f, "paths", (const char **)paths, (hsize_t)n) || write_strings(f, "source", src, 1)
                  ? VLP_EIO : VLP_OK;
    /* what made the rows: vlpsearch refuses another model's index */
    const char *made_by[1] = {model}, *id[1] = {model_id};
    if (!rc && model_id)
        rc = write_strings(f, "model", made_by[0] ? made_by : (const char *[]){""}, 1) ||
             write_strings(f, "model_id", id, 1) ? VLP_EIO : VLP_OK;
    if (rc) {
        H5Fclose(f);
        return vlp_error_set(rc, "%s: cannot build the index in memory", path);
    }
    return vlp_h5_write_image(f, path); /* path.tmp, then renamed; closes f */
}

int vlp_index_save(const char *path, const float *features, long n, int dim, const vlp_dataset *ds,
                      long unreadable, const char *model, const char *model_id) {
    const char **caps = vlp_malloc(sizeof(char *) * n), **paths = vlp_malloc(sizeof(char *) * n);
    for (long i = 0; i < n; i++) {
        caps[i] = ds->samples[i].caption;
        paths[i] = ds->samples[i].path ? ds->samples[i].path : "";
    }
    int rc = index_write(path, features, n, dim, caps, paths, ds->source, unreadable, model, model_id);
    free(caps), free(paths);
    return rc;
}

int vlp_index_save_texts(const char *path, const float *features, long n, int dim, const char *const *texts,
                            const char *source, const char *model, const char *model_id) {
    const char **paths = vlp_malloc(sizeof(char *) * n);
    for (long i = 0; i < n; i++) paths[i] = "";
    int rc = index_write(path, features, n, dim, texts, paths, source, 0, model, model_id);
    free(paths);
    return rc;
}

/* The n strings of dataset name, or NULL when it is missing or does not
 * hold exactly n (the whole dataset is read into n slots). */
static char **read_strings(hid_t f, const char *name, long n, long *found) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT), t = string_type(), s = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t count = 0;
    bool ok = s >= 0 && H5Sget_simple_extent_ndims(s) == 1 && H5Sget_simple_extent_dims(s, &count, NULL) >= 0;
    if (found) *found = ok ? (long)count : -1;
    hid_t type = ok ? H5Dget_type(d) : -1;
    ok = ok && count == (hsize_t)n && type >= 0 && H5Tget_class(type) == H5T_STRING;
    if (type >= 0) H5Tclose(type);
    char **raw = ok ? vlp_calloc((size_t)n, sizeof *raw) : NULL, **out = ok ? vlp_calloc((size_t)n, sizeof *out) : NULL;
    ok = ok && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) >= 0;
    for (long i = 0; raw && i < n; i++) {
        if (ok) out[i] = vlp_strdup(raw[i] ? raw[i] : "");
        if (raw[i]) H5free_memory(raw[i]);
    }
    free(raw);
    if (s >= 0) H5Sclose(s);
    if (d >= 0) H5Dclose(d);
    H5Tclose(t);
    if (!ok) free(out), out = NULL;
    return out;
}

int vlp_index_load(vlp_index *ix, const char *path) {
    memset(ix, 0, sizeof *ix);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return vlp_h5_open_error(path, "a vlp index");
    hid_t d = H5Dopen2(f, "features", H5P_DEFAULT), s = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t dims[2] = {0, 0};
    int rc = s >= 0 && H5Sget_simple_extent_ndims(s) == 2 && H5Sget_simple_extent_dims(s, dims, NULL) >= 0
             ? VLP_OK : VLP_EFORMAT;
    bool told = false; /* rc's message already set */
    /* The shape is the file's word: before allocating for it, the floats it
     * claims must be stored in the file (vlp writes them uncompressed), and
     * rows and width must fit the int of vlp_gemm and ix->dim. */
    hsize_t stored = rc ? 0 : H5Dget_storage_size(d);
    if (!rc && (dims[0] > INT_MAX || dims[1] > INT_MAX ||
                (dims[0] && dims[1] > stored / sizeof(float) / dims[0]))) {
        rc = vlp_error_set(VLP_EFORMAT, "%s: /features claims (%llu, %llu) floats but the file stores %llu bytes "
                           "of them: truncated, compressed or not a vlp index", path, (unsigned long long)dims[0],
                           (unsigned long long)dims[1], (unsigned long long)stored);
        told = true;
    }
    if (!rc) {
        ix->n = (long)dims[0], ix->dim = (int)dims[1];
        ix->features = vlp_malloc(sizeof(float) * dims[0] * dims[1]);
        if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, ix->features) < 0) rc = VLP_EFORMAT;
    }
    if (s >= 0) H5Sclose(s);
    if (d >= 0) H5Dclose(d);
    char **one = NULL;
    /* Every row needs its caption and path: 40 features and 5 captions
     * would send a hit past the end of the captions. */
    static const char *const row_lists[] = {"captions", "paths"};
    for (int l = 0; l < 2 && !rc; l++) {
        long found;
        char **v = read_strings(f, row_lists[l], ix->n, &found);
        if (l == 0) ix->captions = v;
        else ix->paths = v;
        if (!v && found >= 0 && found != ix->n) {
            rc = vlp_error_set(VLP_EFORMAT, "%s: /features holds %ld rows but /%s holds %ld string%s: every row "
                               "needs one (a damaged or hand-made index: rebuild it with vlpembed)", path, ix->n,
                               row_lists[l], found, found == 1 ? "" : "s");
            told = true;
        } else if (!v) rc = VLP_EFORMAT;
    }
    if (!rc) {
        if ((one = read_strings(f, "source", 1, NULL))) ix->source = one[0];
        else rc = VLP_EFORMAT;
        free(one);
    }
    if (!rc && H5Lexists(f, "model_id", H5P_DEFAULT) > 0) { /* older indexes lack it */
        char **id = read_strings(f, "model_id", 1, NULL), **by = read_strings(f, "model", 1, NULL);
        if (id && by) ix->model_id = id[0], ix->model = by[0];
        else {
            rc = vlp_error_set(VLP_EFORMAT, "%s: /model_id or /model is not one string", path);
            told = true;
            if (id) free(id[0]);
            if (by) free(by[0]);
        }
        free(id), free(by);
    }
    for (long i = 0; !rc && i < ix->n; i++)
        for (int j = 0; j < ix->dim; j++)
            if (!isfinite(ix->features[i * ix->dim + j])) {
                rc = vlp_error_set(VLP_EFORMAT, "%s: the features of row %ld (%s) are not finite (NaN or "
                                   "infinity): rebuild the index with vlpembed and a model with finite weights",
                                   path, i, ix->paths[i][0] ? ix->paths[i] : ix->captions[i]);
                told = true;
                break;
            }
    H5Fclose(f);
    if (rc) {
        vlp_index_free(ix);
        return told ? rc : vlp_error_set(rc, "%s: not a vlp index (features, captions, paths, source)", path);
    }
    return VLP_OK;
}

void vlp_index_free(vlp_index *ix) {
    for (long i = 0; i < ix->n; i++) {
        if (ix->captions) free(ix->captions[i]);
        if (ix->paths) free(ix->paths[i]);
    }
    free(ix->captions), free(ix->paths), free(ix->features), free(ix->source);
    free(ix->model), free(ix->model_id);
    memset(ix, 0, sizeof *ix);
}

int vlp_index_top(const vlp_index *ix, const float *query, int k, long *rows, float *scores) {
    int rc = VLP_OK;
    for (int j = 0; j < ix->dim && !rc; j++)
        if (!isfinite(query[j]))
            rc = vlp_error_set(VLP_EFORMAT, "the query's features are not finite (NaN or infinity): the model's "
                               "output cannot be used");
    float *sim = vlp_malloc(sizeof(float) * (ix->n + 1));
    vlp_gemm(false, true, 1, (int)ix->n, ix->dim, 1.0f, query, ix->dim, ix->features, ix->dim, 0.0f, sim, (int)ix->n);
    for (int j = 0; j < k; j++) rows[j] = -1, scores[j] = -INFINITY;
    /* NaN compares false both ways: it once kept slots at row -1 (a crash
     * in the caller); a NaN similarity ranks last, as -infinity. */
    for (long i = 0; i < ix->n; i++)
        if (isnan(sim[i])) sim[i] = -INFINITY;
    for (long i = 0; i < ix->n; i++) { /* insertion into the sorted top k */
        if (k == 0 || (rows[k - 1] >= 0 && sim[i] <= scores[k - 1])) continue;
        int j = k - 1;
        while (j > 0 && (rows[j - 1] < 0 || sim[i] > scores[j - 1])) scores[j] = scores[j - 1], rows[j] = rows[j - 1], j--;
        scores[j] = sim[i], rows[j] = i;
    }
    free(sim);
    return rc;
}

int vlp_index_check_model(const vlp_index *ix, const char *index_path, const vlp_model *m,
                          const char *model_path) {
    if (ix->dim != m->embed_dim)
        return vlp_error_set(VLP_EINVAL, "%s holds %d-d features, the model %s makes %d-d ones: search it with "
                             "the model that made it%s%s%s", index_path, ix->dim, model_path, m->embed_dim,
                             ix->model ? " (" : "", ix->model ? ix->model : "", ix->model ? ")" : "");
    char id[VLP_WEIGHTS_ID_SIZE];
    vlp_weights_identity(m->params, id);
    if (!ix->model_id) {
        fprintf(stderr, "vlp: warning: %s records no model (an index from before vlp recorded one): it cannot be "
                "checked to come from %s; rebuild it with vlpembed to have it checked\n", index_path, model_path);
        return VLP_OK;
    }
    if (strcmp(ix->model_id, id) != 0)
        return vlp_error_set(VLP_EINVAL, "%s was made by another model (%s, weights %s), not by %s (weights %s): "
                             "search it with the model that made it, or rebuild it with vlpembed and this one",
                             index_path, ix->model[0] ? ix->model : "?", ix->model_id, model_path, id);
    return VLP_OK;
}

int vlp_index_gallery(const vlp_index *ix, const char *query, const long *rows,
                      const float *scores, int k, const char *path) {
    vlp_dataset ds;
    int rc = vlp_dataset_open(&ds, ix->source, NULL);
    if (rc) return rc;
    FILE *f = fopen(path, "w");
    if (!f) {
        vlp_dataset_free(&ds);
        return vlp_error_set(VLP_EIO, "%s: cannot write", path);
    }
    fputs("<!doctype html><meta charset=\"utf-8\"><title>vlp search</title>\n<style>"
          "body{font-family:sans-serif;margin:2em}figure{display:inline-block;width:160px;margin:8px;"
          "vertical-align:top}figcaption{font-size:12px}b{color:#555}</style>\n<h1>", f);
    vlp_html_text(f, query);
    fprintf(f, "</h1><p>top %d of %ld images in ", k, ix->n);
    vlp_html_text(f, ix->source);
    fputs("</p>\n", f);
    for (int j = 0; j < k && rows[j] >= 0; j++) {
        vlp_image img;
        fputs("<figure>", f);
        if (rows[j] < ds.n && vlp_dataset_image(&ds, rows[j], &img, NULL) == VLP_OK) {
            vlp_html_image(f, &img, 144, ix->captions[rows[j]]);
            vlp_image_free(&img);
        }
        fprintf(f, "<figcaption><b>%d. %.3f</b> ", j + 1, scores[j]);
        vlp_html_text(f, ix->captions[rows[j]]);
        fputs("</figcaption></figure>\n", f);
    }
    rc = fclose(f) == 0 ? VLP_OK : vlp_error_set(VLP_EIO, "%s: write error", path);
    vlp_dataset_free(&ds);
    return rc;
}

int vlp_search_query(const vlp_model *m, const vlp_tokenizer *tok, const char *text, const char *image, float *out) {
    vlp_tape t;
    vlp_tape_init(&t);
    vlp_tape_no_grad_begin(&t);
    vlp_tensor *q = NULL;
    int rc;
    if (text) {
        int *ids = vlp_malloc(sizeof(int) * m->context_length);
        rc = vlp_tokenizer_encode(tok, text, ids, m->context_length, NULL);
        if (!rc) q = vlp_model_encode_text(m, &t, ids, 1);
        free(ids);
    } else {
        vlp_image img, sq;
        int S = m->image_size;
        vlp_loader_opts po = vlp_model_eval_loader(m, 1, 1); /* the model's [preprocess] */
        rc = vlp_image_load(&img, image, &po.image);
        if (!rc) rc = vlp_image_eval_transform(&sq, &img, S, po.interpolation, po.resize_mode), vlp_image_free(&img);
        if (!rc) {
            vlp_tensor *x = vlp_tape_tensor(&t, 4, (int[]){1, 3, S, S});
            vlp_image_normalize(x->data, sq.rgb, S, po.mean, po.std), vlp_image_free(&sq);
            q = vlp_model_encode_image(m, &t, x);
        }
    }
    if (q) memcpy(out, q->data, sizeof(float) * m->embed_dim);
    vlp_tape_no_grad_end(&t);
    vlp_tape_free(&t);
    return rc;
}
