/* safetensors reading and writing (see safetensors.h). The JSON is parsed
 * by cJSON; everything it says about sizes is checked here. */
#include "data/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/file.h"
#include "base/mem.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this file reads it in place"
#endif

static const struct {
    const char *name;
    int size;
} DTYPES[] = {
    [VLP_ST_F32] = {"F32", 4},  [VLP_ST_F16] = {"F16", 2},   [VLP_ST_BF16] = {"BF16", 2},
    [VLP_ST_F64] = {"F64", 8},  [VLP_ST_I64] = {"I64", 8},   [VLP_ST_I32] = {"I32", 4},
    [VLP_ST_I16] = {"I16", 2},  [VLP_ST_I8] = {"I8", 1},     [VLP_ST_U8] = {"U8", 1},
    [VLP_ST_BOOL] = {"BOOL", 1}, [VLP_ST_U16] = {"U16", 2},  [VLP_ST_U32] = {"U32", 4},
    [VLP_ST_U64] = {"U64", 8},  [VLP_ST_F8_E4M3] = {"F8_E4M3", 1}, [VLP_ST_F8_E5M2] = {"F8_E5M2", 1},
};
#define N_DTYPES ((int)(sizeof DTYPES / sizeof DTYPES[0]))

const char *vlp_st_dtype_name(vlp_st_dtype d) {
    return (int)d >= 0 && (int)d < N_DTYPES ? DTYPES[d].name : "?";
}

void vlp_safetensors_close(vlp_safetensors *st) {
    for (int i = 0; i < st->n; i++) free(st->tensors[i].name);
    free(st->tensors);
    free(st->metadata);
    if (st->mapped && st->bytes) munmap((void *)st->bytes, st->size);
    free(st->path);
    memset(st, 0, sizeof *st);
}

/* A JSON number that is a whole number in [0, max]. */
static bool whole(const cJSON *v, double max, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= max) || d != floor(d)) return false;
    *out = (uint64_t)d;
    return true;
}

static int entry_error(const vlp_safetensors *st, const char *name, const char *what) {
    return vlp_error_set(VLP_EFORMAT, "%s: tensor '%s' in the safetensors header: %s", st->path, name, what);
}

/* One {"dtype", "shape", "data_offsets"} entry into t. */
static int parse_entry(vlp_safetensors *st, const cJSON *e, vlp_st_tensor *t) {
    const char *name = e->string;
    if (!cJSON_IsObject(e)) return entry_error(st, name, "not an object");
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offsets))
        return entry_error(st, name, "needs \"dtype\" (a string), \"shape\" and \"data_offsets\" (arrays)");
    int d = 0;
    while (d < N_DTYPES && strcmp(DTYPES[d].name, dtype->valuestring)) d++;
    if (d == N_DTYPES) {
        char what[160];
        snprintf(what, sizeof what, "unknown dtype '%.40s'", dtype->valuestring);
        return entry_error(st, name, what);
    }
    t->dtype = (vlp_st_dtype)d;
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > VLP_ST_MAX_DIMS) return entry_error(st, name, "more than 8 dimensions");
    t->ndim = ndim;
    /* Elements are bounded by the data's size, so the product cannot overflow
     * once each factor is checked against it (a 0 dimension ends the bound). */
    uint64_t n = 1, limit = st->data_size / (uint64_t)DTYPES[d].size;
    bool empty = false;
    for (int i = 0; i < ndim; i++) {
        uint64_t v;
        if (!whole(cJSON_GetArrayItem(shape, i), 9007199254740992.0, &v))
            return entry_error(st, name, "a shape entry is not a whole number >= 0");
        t->shape[i] = (int64_t)v;
        if (v == 0) empty = true;
        if (empty) continue;
        if (v > limit / n) return entry_error(st, name, "its shape holds more elements than the file has bytes");
        n *= v;
    }
    t->n = empty ? 0 : (int64_t)n;
    uint64_t begin, end;
    if (cJSON_GetArraySize(offsets) != 2 || !whole(cJSON_GetArrayItem(offsets, 0), 9007199254740992.0, &begin) ||
        !whole(cJSON_GetArrayItem(offsets, 1), 9007199254740992.0, &end))
        return entry_error(st, name, "data_offsets is not [begin, end] of whole numbers");
    if (begin > end || end > st->data_size) {
        char what[200];
        snprintf(what, sizeof what, "data_offsets [%llu, %llu] lie outside the %zu bytes of data",
                 (unsigned long long)begin, (unsigned long long)end, st->data_size);
        return entry_error(st, name, what);
    }
    if (end - begin != (uint64_t)t->n * (uint64_t)DTYPES[d].size) {
        char what[200];
        snprintf(what, sizeof what, "data_offsets span %llu bytes, its shape and dtype %s need %llu",
                 (unsigned long long)(end - begin), DTYPES[d].name,
                 (unsigned long long)t->n * (unsigned long long)DTYPES[d].size);
        return entry_error(st, name, what);
    }
    t->begin = begin, t->end = end;
    return VLP_OK;
}

static int by_begin(const void *a, const void *b) {
    const vlp_st_tensor *x = *(vlp_st_tensor *const *)a, *y = *(vlp_st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static int by_name(const void *a, const void *b) {
    return strcmp((*(vlp_st_tensor *const *)a)->name, (*(vlp_st_tensor *const *)b)->name);
}

/* No two tensors share a name or a byte. */
static int check_layout(vlp_safetensors *st) {
    if (st->n == 0) return VLP_OK;
    vlp_st_tensor **order = vlp_malloc(sizeof *order * (size_t)st->n);
    for (int i = 0; i < st->n; i++) order[i] = &st->tensors[i];
    int rc = VLP_OK;
    qsort(order, (size_t)st->n, sizeof *order, by_name);
    for (int i = 1; i < st->n && !rc; i++)
        if (!strcmp(order[i]->name, order[i - 1]->name))
            rc = entry_error(st, order[i]->name, "named twice");
    qsort(order, (size_t)st->n, sizeof *order, by_begin);
    const vlp_st_tensor *last = NULL; /* of the non-empty ones so far, the one ending last */
    for (int i = 0; i < st->n && !rc; i++) {
        if (order[i]->begin == order[i]->end) continue; /* no bytes */
        if (last && order[i]->begin < last->end) {
            char what[160];
            snprintf(what, sizeof what, "its bytes overlap those of '%.100s'", last->name);
            rc = entry_error(st, order[i]->name, what);
        }
        if (!last || order[i]->end > last->end) last = order[i];
    }
    free(order);
    return rc;
}

int vlp_safetensors_parse(vlp_safetensors *st, const uint8_t *bytes, size_t size, const char *name) {
    memset(st, 0, sizeof *st);
    st->path = vlp_strdup(name);
    st->bytes = bytes, st->size = size;
    if (size < 8) {
        vlp_safetensors_close(st);
        return vlp_error_set(VLP_EFORMAT, "%s: %zu bytes: too short for a safetensors file (an 8-byte header "
                             "length, a JSON header, the data)", name, size);
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | bytes[i];
    if (n > size - 8 || n > VLP_ST_MAX_HEADER || n < 2) {
        vlp_safetensors_close(st);
        return vlp_error_set(VLP_EFORMAT, "%s: safetensors header length %llu does not fit the file's %zu "
                             "bytes (or exceeds %u): not a safetensors file, or truncated", name,
                             (unsigned long long)n, size, VLP_ST_MAX_HEADER);
    }
    st->data = bytes + 8 + n, st->data_size = size - 8 - n;
    const char *text = (const char *)bytes + 8, *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)n, &end, 0);
    int rc = VLP_OK;
    if (!root || !cJSON_IsObject(root)) {
        rc = vlp_error_set(VLP_EFORMAT, "%s: the safetensors header is not a JSON object%s", name,
                           root ? "" : " (bad JSON)");
        goto done;
    }
    for (const char *p = end; p < text + n; p++)
        if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r' && *p != '\0') {
            rc = vlp_error_set(VLP_EFORMAT, "%s: bytes after the JSON of the safetensors header", name);
            goto done;
        }
    /* At most one entry per few bytes of the header, whose length was checked. */
    int count = cJSON_GetArraySize(root);
    st->tensors = vlp_calloc((size_t)count + 1, sizeof *st->tensors);
    for (const cJSON *e = root->child; e && !rc; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            bool strings = cJSON_IsObject(e);
            for (const cJSON *m = strings ? e->child : NULL; m; m = m->next) strings &= cJSON_IsString(m);
            if (!strings) rc = vlp_error_set(VLP_EFORMAT, "%s: __metadata__ is not an object of strings", name);
            else if (!(st->metadata = cJSON_PrintUnformatted(e))) /* cJSON's malloc, not mem.h's */
                vlp_fatal(__FILE__, __LINE__, "out of memory printing the __metadata__ of %s", name);
            continue;
        }
        vlp_st_tensor *t = &st->tensors[st->n++];
        t->name = vlp_strdup(e->string);
        rc = parse_entry(st, e, t);
    }
    if (!rc) rc = check_layout(st);
done:
    cJSON_Delete(root);
    if (rc) {
        st->bytes = NULL; /* the caller's */
        vlp_safetensors_close(st);
    }
    return rc;
}

int vlp_safetensors_open(vlp_safetensors *st, const char *path) {
    memset(st, 0, sizeof *st);
    int fd = vlp_file_open_fd(path); /* regular files only: a FIFO would hang open() */
    if (fd < 0) return errno == EISDIR ? vlp_error_set(VLP_EIO, "%s: a folder, not a file", path) : VLP_EIO;
    struct stat s;
    if (fstat(fd, &s) != 0) {
        int err = errno;
        close(fd);
        return vlp_error_set(VLP_EIO, "%s: %s", path, strerror(err));
    }
    size_t size = (size_t)s.st_size;
    void *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    int err = errno;
    close(fd);
    if (size && map == MAP_FAILED) return vlp_error_set(VLP_EIO, "%s: cannot map: %s", path, strerror(err));
    int rc = vlp_safetensors_parse(st, map, size, path);
    if (rc) {
        if (map) munmap(map, size);
        return rc;
    }
    st->mapped = map != NULL;
    return VLP_OK;
}

const vlp_st_tensor *vlp_safetensors_find(const vlp_safetensors *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

/* IEEE half to single, exactly (subnormals, infinities and NaN kept). */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | mant << 13;
    } else if (exp != 0) {
        bits = sign | (exp + 112) << 23 | mant << 13;
    } else if (mant == 0) {
        bits = sign;
    } else { /* subnormal: normalise */
        int e = 113;
        while (!(mant & 0x400)) mant <<= 1, e--;
        bits = sign | (uint32_t)e << 23 | (mant & 0x3ff) << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int vlp_safetensors_read(const vlp_safetensors *st, const vlp_st_tensor *t, float *dst) {
    const uint8_t *src = st->data + t->begin;
    switch (t->dtype) {
    case VLP_ST_F32: memcpy(dst, src, (size_t)t->n * 4); return VLP_OK;
    case VLP_ST_F16:
        for (int64_t i = 0; i < t->n; i++) dst[i] = half_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        return VLP_OK;
    case VLP_ST_BF16:
        for (int64_t i = 0; i < t->n; i++) {
            uint32_t bits = (uint32_t)(src[2 * i] | src[2 * i + 1] << 8) << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return VLP_OK;
    case VLP_ST_F64:
        for (int64_t i = 0; i < t->n; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            dst[i] = (float)d;
        }
        return VLP_OK;
    default:
        return vlp_error_set(VLP_EFORMAT, "%s: tensor '%s' has dtype %s; weights must be F32, F16 or BF16",
                             st->path, t->name, vlp_st_dtype_name(t->dtype));
    }
}

int vlp_safetensors_write(const char *path, const vlp_st_entry *e, int n, const char *metadata) {
    cJSON *root = cJSON_CreateObject(), *meta = metadata ? cJSON_Parse(metadata) : NULL;
    if (!root) vlp_fatal(__FILE__, __LINE__, "out of memory for a cJSON object"); /* cJSON's malloc */
    if (metadata && !cJSON_IsObject(meta)) {
        cJSON_Delete(root), cJSON_Delete(meta);
        return vlp_error_set(VLP_EINVAL, "%s: metadata is not a JSON object", path);
    }
    if (!meta) {
        meta = cJSON_CreateObject();
        cJSON_AddStringToObject(meta, "format", "pt");
    }
    cJSON_AddItemToObject(root, "__metadata__", meta);
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        cJSON *t = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *offsets = cJSON_CreateArray();
        uint64_t count = 1;
        for (int d = 0; d < e[i].ndim; d++) {
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e[i].shape[d]));
            count *= (uint64_t)e[i].shape[d];
        }
        cJSON_AddStringToObject(t, "dtype", "F32");
        cJSON_AddItemToObject(t, "shape", shape);
        cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)offset));
        offset += 4 * count;
        cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)offset));
        cJSON_AddItemToObject(t, "data_offsets", offsets);
        cJSON_AddItemToObject(root, e[i].name, t);
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) vlp_fatal(__FILE__, __LINE__, "out of memory printing the safetensors header of %s", path);
    /* Padded with spaces so the data starts 8-byte aligned, as safetensors' writer does. */
    size_t len = strlen(json), padded = (len + 7) / 8 * 8;
    uint8_t head[8];
    for (int i = 0; i < 8; i++) head[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        free(json);
        return vlp_error_set(VLP_EINVAL, "path too long: %s", path);
    }
    FILE *f = fopen(tmp, "wb");
    int rc = VLP_OK;
    if (!f) {
        rc = vlp_error_set(VLP_EIO, "%s: %s", tmp, strerror(errno));
        free(json);
        return rc;
    }
    bool ok = fwrite(head, 1, 8, f) == 8 && fwrite(json, 1, len, f) == len;
    for (size_t i = len; i < padded && ok; i++) ok = fputc(' ', f) != EOF;
    for (int i = 0; i < n && ok; i++) {
        uint64_t count = 1;
        for (int d = 0; d < e[i].ndim; d++) count *= (uint64_t)e[i].shape[d];
        ok = fwrite(e[i].data, 4, count, f) == count;
    }
    int err = errno;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) ok = false, err = errno;
    if (fclose(f) != 0 && ok) ok = false, err = errno;
    free(json);
    if (ok && rename(tmp, path) != 0) ok = false, err = errno;
    if (!ok) {
        remove(tmp);
        rc = vlp_error_set(VLP_EIO, "cannot write %s: %s", path, strerror(err));
    }
    return rc;
}
