/* HDF5 parameter I/O (see weights.h). */
#include "train/weights.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/mem.h"

/* HDF5 prints its own error stack by default; vlp reports errors itself. */
static void quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static hid_t open_or_create_group(hid_t file, const char *group) {
    if (strcmp(group, "/") == 0) return H5Gopen2(file, "/", H5P_DEFAULT);
    if (H5Lexists(file, group, H5P_DEFAULT) > 0) return H5Gopen2(file, group, H5P_DEFAULT);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t g = H5Gcreate2(file, group, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    return g;
}

int vlp_weights_write(hid_t file, const char *group, const vlp_params *p, const float *buf) {
    quiet();
    hid_t g = open_or_create_group(file, group);
    if (g < 0) return vlp_error_set(VLP_EIO, "cannot create HDF5 group %s", group);
    int rc = VLP_OK;
    for (int i = 0; i < p->count && rc == VLP_OK; i++) {
        const vlp_param *e = &p->table[i];
        hsize_t dims[VLP_MAX_DIMS];
        for (int d = 0; d < e->t->ndim; d++) dims[d] = (hsize_t)e->t->shape[d];
        hid_t space = H5Screate_simple(e->t->ndim, dims, NULL);
        hid_t ds = H5Dcreate2(g, e->name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf + e->offset) < 0)
            rc = vlp_error_set(VLP_EIO, "cannot write tensor %s under %s", e->name, group);
        if (ds >= 0) H5Dclose(ds);
        H5Sclose(space);
    }
    H5Gclose(g);
    return rc;
}

/* Finds the first link in the group that the model has no parameter for. */
typedef struct extra_search {
    const vlp_params *p;
    char name[VLP_PARAM_NAME_MAX];
} extra_search;

static herr_t find_extra(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g, (void)info;
    extra_search *s = data;
    if (vlp_params_find(s->p, name)) return 0;
    snprintf(s->name, sizeof s->name, "%s", name);
    return 1; /* stop */
}

static void shape_text(char *buf, size_t size, int ndim, const hsize_t *dims) {
    int len = snprintf(buf, size, "(");
    for (int d = 0; d < ndim && len < (int)size; d++)
        len += snprintf(buf + len, size - len, d ? ", %llu" : "%llu", (unsigned long long)dims[d]);
    if (len < (int)size) snprintf(buf + len, size - len, ")");
}

static int read_one(hid_t g, const char *path, const char *group, const vlp_param *e, float *dst) {
    char want[96], got[96];
    vlp_tensor_shape_str(e->t, want, sizeof want);
    if (H5Lexists(g, e->name, H5P_DEFAULT) <= 0)
        return vlp_error_set(VLP_ESHAPE, "%s: tensor %s is missing (the model expects %s)", path,
                             e->name, want);
    hid_t ds = H5Dopen2(g, e->name, H5P_DEFAULT);
    if (ds < 0) return vlp_error_set(VLP_EFORMAT, "%s: %s is not a dataset", path, e->name);
    int rc = VLP_OK;
    hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
    int ndim = H5Sget_simple_extent_ndims(space);
    hsize_t dims[H5S_MAX_RANK];
    if (type < 0 || space < 0 || ndim < 0 || ndim > H5S_MAX_RANK) {
        rc = vlp_error_set(VLP_EFORMAT, "%s: tensor %s is unreadable", path, e->name);
        goto done;
    }
    H5Sget_simple_extent_dims(space, dims, NULL);
    if (H5Tget_class(type) != H5T_FLOAT) {
        rc = vlp_error_set(VLP_EFORMAT, "%s: tensor %s is not floating point", path, e->name);
        goto done;
    }
    bool same = ndim == e->t->ndim || (ndim == 0 && e->t->n == 1);
    for (int d = 0; same && d < ndim; d++) same = dims[d] == (hsize_t)e->t->shape[d];
    if (!same) {
        shape_text(got, sizeof got, ndim, dims);
        rc = vlp_error_set(VLP_ESHAPE, "%s: tensor %s has shape %s, the model expects %s", path,
                           e->name, got, want);
        goto done;
    }
    if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0) {
        rc = vlp_error_set(VLP_EIO, "%s: cannot read tensor %s", path, e->name);
        goto done;
    }
    /* One NaN spreads to every embedding and every score (a NaN model
     * evaluated at R@1 100%, and a resumed run skipped every step): refused
     * here, where every program, [train] init and --resume read weights. */
    for (long i = 0; i < e->t->n; i++)
        if (!isfinite(dst[i])) {
            bool root = !strcmp(group, "/") || !strcmp(group, "/params");
            rc = vlp_error_set(VLP_EFORMAT, "%s: tensor %s%s%s holds %s (element %ld of %ld): a model with "
                               "non-finite weights cannot be used (did the run that wrote it diverge?)",
                               path, e->name, root ? "" : " under ", root ? "" : group,
                               isnan(dst[i]) ? "NaN" : "infinity", i, (long)e->t->n);
            break;
        }
done:
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    H5Dclose(ds);
    return rc;
}

int vlp_weights_read(hid_t file, const char *path, const char *group, const vlp_params *p,
                     float *buf) {
    quiet();
    hid_t g = H5Gopen2(file, group, H5P_DEFAULT);
    if (g < 0) return vlp_error_set(VLP_EFORMAT, "%s: no group %s", path, group);
    int rc = VLP_OK;
    for (int i = 0; i < p->count && rc == VLP_OK; i++)
        rc = read_one(g, path, group, &p->table[i], buf + p->table[i].offset);
    if (rc == VLP_OK) {
        extra_search s = {.p = p};
        if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, find_extra, &s) > 0)
            rc = vlp_error_set(VLP_ESHAPE, "%s: tensor %s is not part of this model", path, s.name);
    }
    H5Gclose(g);
    return rc;
}

hid_t vlp_h5_create_in_memory(size_t size_hint) {
    quiet();
    /* The core driver names files; two open at once must differ. */
    static _Atomic long serial;
    char name[64];
    snprintf(name, sizeof name, "vlp-in-memory-%ld.h5", serial++);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, size_hint < (1 << 20) ? (size_t)1 << 20 : size_hint, false);
    hid_t f = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return f;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

/* fsync of the folder holding path, so a rename in it is on disk. */
static void sync_folder(const char *path) {
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) fsync(fd), close(fd);
}

int vlp_h5_write_image(hid_t f, const char *path) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        H5Fclose(f);
        return vlp_error_set(VLP_EINVAL, "path too long: %s", path);
    }
    /* H5Fget_file_image copies what the driver holds: without the flush,
     * object headers still in the metadata cache would be missing. */
    ssize_t size = H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 ? -1 : H5Fget_file_image(f, NULL, 0);
    char *image = size > 0 ? vlp_malloc((size_t)size) : NULL;
    bool built = image && H5Fget_file_image(f, image, (size_t)size) == size;
    H5Fclose(f);
    if (!built) {
        free(image);
        return vlp_error_set(VLP_ENOMEM, "%s: cannot build the HDF5 image in memory (%zd bytes)", path, size);
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 || write_all(fd, image, (size_t)size) != 0 || fsync(fd) != 0 ? -1 : 0;
    int err = errno;
    if (fd >= 0 && close(fd) != 0 && rc == 0) rc = -1, err = errno;
    free(image);
    if (rc == 0 && rename(tmp, path) != 0) rc = -1, err = errno;
    if (rc != 0) {
        remove(tmp);
        return vlp_error_set(VLP_EIO, "cannot write %s (%zd bytes): %s", tmp, size, strerror(err));
    }
    sync_folder(path);
    return VLP_OK;
}

int vlp_weights_save(const vlp_params *p, const char *path) {
    hid_t f = vlp_h5_create_in_memory(p->n * sizeof(float) + 4096 * (size_t)p->count);
    if (f < 0) return vlp_error_set(VLP_ENOMEM, "%s: cannot create an HDF5 file in memory", path);
    int rc = vlp_weights_write(f, "/", p, p->data);
    if (rc != VLP_OK) {
        H5Fclose(f);
        return rc;
    }
    return vlp_h5_write_image(f, path);
}

int vlp_h5_open_error(const char *path, const char *what) {
    struct stat st;
    if (stat(path, &st) != 0) return vlp_error_set(VLP_ENOTFOUND, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return vlp_error_set(VLP_EFORMAT, "%s: a folder, not %s", path, what);
    if (st.st_size == 0) return vlp_error_set(VLP_EFORMAT, "%s: empty file, not %s", path, what);
    static const char signature[8] = "\x89HDF\r\n\x1a\n";
    char head[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return vlp_error_set(VLP_EIO, "%s: %s", path, strerror(errno));
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    if (n < sizeof head || memcmp(head, signature, sizeof head))
        return vlp_error_set(VLP_EFORMAT, "%s: not an HDF5 file, so not %s", path, what);
    return vlp_error_set(VLP_EFORMAT, "%s: an HDF5 file that cannot be read (%lld bytes: truncated or damaged?)",
                         path, (long long)st.st_size);
}

void vlp_weights_identity(const vlp_params *p, char out[VLP_WEIGHTS_ID_SIZE]) {
    /* FNV-1a, 64 bits, over each tensor's name, shape and float bytes in
     * table order: a fingerprint, not a defence against forgery. */
    uint64_t h = 0xcbf29ce484222325ull;
#define MIX(ptr, len)                                                   \
    for (size_t k_ = 0; k_ < (size_t)(len); k_++)                       \
        h = (h ^ ((const unsigned char *)(ptr))[k_]) * 0x100000001b3ull;
    for (int i = 0; i < p->count; i++) {
        const vlp_param *e = &p->table[i];
        MIX(e->name, strlen(e->name) + 1);
        for (int d = 0; d < e->t->ndim; d++) {
            int64_t dim = e->t->shape[d];
            MIX(&dim, sizeof dim);
        }
        MIX(p->data + e->offset, sizeof(float) * (size_t)e->t->n);
    }
#undef MIX
    snprintf(out, VLP_WEIGHTS_ID_SIZE, "%016llx", (unsigned long long)h);
}

int vlp_weights_load(vlp_params *p, const char *path) {
    quiet();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return vlp_h5_open_error(path, "a vlp model file");
    int rc = vlp_weights_read(f, path, "/", p, p->data);
    H5Fclose(f);
    return rc;
}
