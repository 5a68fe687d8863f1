/* Dataset readers and the packed shard (see dataset.h). CSV/TSV through
 * libcsv, HDF5 through its C API; nothing here decodes pixels itself. */
#include "data/dataset.h"

#include <csv.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/error.h"
#include "base/file.h"
#include "base/mem.h"

#define SHARD_VERSION 1

struct vlp_shard {
    hid_t file, images;
    int size;
    bool direct; /* vlp's layout: a deflated chunk per image, read raw and inflated here */
    pthread_mutex_t lock; /* HDF5 calls, whether or not the library is thread-safe */
};

/* ---- small helpers -------------------------------------------------------- */

static char *join(const char *dir, const char *name) {
    if (name[0] == '/' || !dir[0]) return vlp_strdup(name);
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = vlp_malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static char *dir_of(const char *path) {
    char *d = vlp_strdup(path);
    char *slash = strrchr(d, '/');
    if (slash) *slash = '\0';
    else d[0] = '\0';
    return d;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static bool is_image_name(const char *name) {
    static const char *ext[] = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".pnm", ".tga"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (ends_with(name, ext[i])) return true;
    return false;
}

static void add_sample(vlp_dataset *ds, long *cap, char *path, char *caption, int class_id,
                       int concept_id) {
    if (ds->n == *cap) {
        *cap = *cap ? 2 * *cap : 1024;
        ds->samples = vlp_realloc(ds->samples, (size_t)*cap * sizeof *ds->samples);
    }
    ds->samples[ds->n++] = (vlp_sample){path, caption, class_id, concept_id, -1};
}

void vlp_dataset_free(vlp_dataset *ds) {
    for (long i = 0; i < ds->n; i++) {
        free(ds->samples[i].path);
        free(ds->samples[i].caption);
    }
    for (int i = 0; i < ds->n_classes; i++) free(ds->class_names[i]);
    free(ds->class_names);
    free(ds->samples);
    free(ds->source);
    if (ds->shard) {
        H5Dclose(ds->shard->images);
        H5Fclose(ds->shard->file);
        pthread_mutex_destroy(&ds->shard->lock);
        free(ds->shard);
    }
    memset(ds, 0, sizeof *ds);
}

/* ---- CSV/TSV manifests ------------------------------------------------------ */

typedef struct manifest {
    vlp_dataset *ds;
    const char *path;
    char *dir;
    const char *image_key, *caption_key;
    long row, cap;
    long line, row_line; /* physical lines: the one being read, where the current row began */
    int col_image, col_caption, col_class, col_concept, n_header;
    char **fields;
    int n_fields, cap_fields;
    int error; /* first error; parsing goes on but adds nothing */
} manifest;

static void on_field(void *s, size_t len, void *data) {
    manifest *m = data;
    if (m->n_fields == m->cap_fields) {
        m->cap_fields = m->cap_fields ? 2 * m->cap_fields : 8;
        m->fields = vlp_realloc(m->fields, (size_t)m->cap_fields * sizeof *m->fields);
    }
    char *f = vlp_malloc(len + 1);
    memcpy(f, s, len);
    f[len] = '\0';
    m->fields[m->n_fields++] = f;
}

static int parse_id(const manifest *m, int col, const char *key, int *out) {
    if (col < 0 || col >= m->n_fields || !m->fields[col][0]) return *out = -1, VLP_OK;
    char *end;
    long v = strtol(m->fields[col], &end, 10);
    if (*end || v < -1 || v > INT32_MAX)
        return vlp_error_set(VLP_EFORMAT, "%s:%ld: column %s: '%s' is not an integer id", m->path,
                             m->row, key, m->fields[col]);
    *out = (int)v;
    return VLP_OK;
}

static int find_column(const manifest *m, const char *key) {
    for (int i = 0; i < m->n_fields; i++)
        if (strcmp(m->fields[i], key) == 0) return i;
    return -1;
}

static void on_row(int term, void *data) {
    (void)term;
    manifest *m = data;
    m->row++;
    if (m->error) goto done;
    if (m->row == 1) {
        m->col_image = find_column(m, m->image_key);
        m->col_caption = find_column(m, m->caption_key);
        m->col_class = find_column(m, "class_id");
        m->col_concept = find_column(m, "concept_id");
        m->n_header = m->n_fields;
        if (m->col_image < 0 || m->col_caption < 0) {
            char cols[512] = "";
            for (int i = 0; i < m->n_fields; i++)
                snprintf(cols + strlen(cols), sizeof cols - strlen(cols), "%s'%s'", i ? ", " : "",
                         m->fields[i]);
            m->error = vlp_error_set(VLP_EFORMAT, "%s:1: no column '%s' (the header has %s)",
                                     m->path, m->col_image < 0 ? m->image_key : m->caption_key, cols);
        }
        goto done;
    }
    if (m->n_fields == 1 && !m->fields[0][0]) goto done; /* blank line */
    if (m->n_fields != m->n_header) {
        m->error = vlp_error_set(VLP_EFORMAT, "%s:%ld: %d fields, the header has %d", m->path,
                                 m->row, m->n_fields, m->n_header);
        goto done;
    }
    int class_id, concept_id;
    if ((m->error = parse_id(m, m->col_class, "class_id", &class_id)) ||
        (m->error = parse_id(m, m->col_concept, "concept_id", &concept_id)))
        goto done;
    if (!m->fields[m->col_image][0]) {
        m->error = vlp_error_set(VLP_EFORMAT, "%s:%ld: empty %s", m->path, m->row, m->image_key);
        goto done;
    }
    add_sample(m->ds, &m->cap, join(m->dir, m->fields[m->col_image]),
               vlp_strdup(m->fields[m->col_caption]), class_id, concept_id);
done:
    for (int i = 0; i < m->n_fields; i++) free(m->fields[i]);
    m->n_fields = 0;
}

/* Quoting is RFC 4180's for TSV and CSV alike: Python's csv and pandas
 * (OpenCLIP's reader) write and read a caption holding '"' quoted, with
 * its quotes doubled, and so does scripts/data/manifest.py. What would
 * swallow rows silently is an error naming its line: in a TSV a quoted
 * field must end on its line (TSV fields hold no line breaks; a caption
 * that merely starts with '"' reopens the quote and runs on); in a CSV,
 * where a quoted field may span lines, a quote never closed names the
 * line where its row began. A NUL byte anywhere is an error naming its
 * line: C strings would cut the caption or path there. The file goes to
 * libcsv a physical line at a time so that each can name the line. */
static int feed_lines(manifest *m, struct csv_parser *p, unsigned char sep, const char *buf, size_t n) {
    for (size_t off = 0, len; off < n && !m->error; off += len) {
        const char *nl = memchr(buf + off, '\n', n - off);
        len = nl ? (size_t)(nl - (buf + off)) + 1 : n - off;
        if (memchr(buf + off, '\0', len))
            return vlp_error_set(VLP_EFORMAT, "%s:%ld: a NUL byte in the row (a binary file, or a corrupt manifest?)",
                                 m->path, m->line);
        if (csv_parse(p, buf + off, len, on_field, on_row, m) != len)
            return vlp_error_set(VLP_EFORMAT, "%s:%ld: %s", m->path, m->row + 1, csv_strerror(csv_error(p)));
        if (nl && p->quoted && sep == '\t') /* the newline went into the field */
            return vlp_error_set(VLP_EFORMAT, "%s:%ld: a quoted field does not end on its line (a field that "
                                 "starts with '\"' is quoted: it must end with '\"', inner quotes doubled)",
                                 m->path, m->line);
        if (nl) {
            m->line++;
            if (!p->quoted) m->row_line = m->line; /* outside a quoted field a newline ends the row */
        }
    }
    return VLP_OK;
}

int vlp_dataset_open_manifest(vlp_dataset *ds, const char *path, const vlp_manifest_opts *opts) {
    memset(ds, 0, sizeof *ds);
    FILE *f = vlp_file_open(path); /* regular files only: a FIFO would hang */
    if (!f) return VLP_EIO;
    manifest m = {.ds = ds, .path = path, .dir = dir_of(path), .line = 1, .row_line = 1,
                  .image_key = opts && opts->image_key ? opts->image_key : "filepath",
                  .caption_key = opts && opts->caption_key ? opts->caption_key : "title"};
    unsigned char sep = opts && opts->separator ? (unsigned char)opts->separator : '\t';
    struct csv_parser p;
    csv_init(&p, CSV_APPEND_NULL);
    csv_set_delim(&p, sep);
    char buf[1 << 16];
    size_t n;
    int rc = VLP_OK;
    char last = '\n';
    while (rc == VLP_OK && !m.error && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        rc = feed_lines(&m, &p, sep, buf, n);
        last = buf[n - 1];
    }
    if (rc == VLP_OK && !m.error && last != '\n') rc = feed_lines(&m, &p, sep, "\n", 1); /* the last line's end */
    if (rc == VLP_OK && ferror(f)) rc = vlp_error_set(VLP_EIO, "%s: read error", path);
    if (rc == VLP_OK && !m.error && p.quoted) /* still inside quotes after the last line's end */
        rc = vlp_error_set(VLP_EFORMAT, "%s:%ld: a quoted field (starting with '\"') is never closed: "
                           "it runs to the end of the file", path, m.row_line);
    if (rc == VLP_OK && csv_fini(&p, on_field, on_row, &m) != 0)
        rc = vlp_error_set(VLP_EFORMAT, "%s:%ld: %s", path, m.row + 1, csv_strerror(csv_error(&p)));
    csv_free(&p);
    fclose(f);
    for (int i = 0; i < m.n_fields; i++) free(m.fields[i]);
    free(m.fields);
    free(m.dir);
    if (rc == VLP_OK) rc = m.error;
    if (rc == VLP_OK && m.row == 0) rc = vlp_error_set(VLP_EFORMAT, "%s: empty file, no header", path);
    if (rc == VLP_OK && ds->n == 0) rc = vlp_error_set(VLP_EFORMAT, "%s: no samples after the header", path);
    if (rc != VLP_OK) {
        vlp_dataset_free(ds);
        return rc;
    }
    ds->source = vlp_strdup(path);
    return VLP_OK;
}

/* ---- folders ------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Entry names of dir, sorted, without "." and ".."; NULL-terminated. */
static char **list_dir(const char *dir, int *count) {
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* also hidden files */
        if (n + 1 >= cap) {
            cap = cap ? 2 * cap : 64;
            names = vlp_realloc(names, (size_t)cap * sizeof *names);
        }
        names[n++] = vlp_strdup(e->d_name);
    }
    closedir(d);
    if (!names) names = vlp_calloc(1, sizeof *names);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    names[n] = NULL;
    *count = n;
    return names;
}

static void free_list(char **names) {
    for (char **p = names; p && *p; p++) free(*p);
    free(names);
}

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The caption beside an image: the first non-blank line of its .txt,
 * whitespace runs as one space (Tux Paint's files add translations below).
 * NULL when there is no .txt (*bad false), or when it is not a regular
 * file or its caption holds a NUL byte (*bad true, message set). */
static char *read_caption(const char *image_path, bool *bad) {
    size_t n = strlen(image_path);
    const char *dot = strrchr(image_path, '.');
    char *txt = vlp_malloc(n + 5);
    size_t stem = dot && !strchr(dot, '/') ? (size_t)(dot - image_path) : n;
    memcpy(txt, image_path, stem);
    strcpy(txt + stem, ".txt");
    *bad = false;
    FILE *f = vlp_file_open(txt); /* regular files only: a FIFO would hang */
    if (!f) {
        *bad = errno != ENOENT;
        free(txt);
        return NULL;
    }
    char *out = NULL;
    size_t len = 0, cap = 0;
    long line = 1;
    int c;
    bool space = false;
    while ((c = fgetc(f)) != EOF) {
        if (c == '\n' && len > 0) break;
        if (c == '\n') line++;
        if (c == '\0') {
            vlp_error_set(VLP_EFORMAT, "%s:%ld: a NUL byte in the caption", txt, line);
            *bad = true;
            free(out);
            fclose(f);
            free(txt);
            return NULL;
        }
        if (isspace(c)) {
            space = len > 0;
            continue;
        }
        if (len + 3 > cap) {
            cap = cap ? 2 * cap : 128;
            out = vlp_realloc(out, cap);
        }
        if (space) out[len++] = ' ', space = false;
        out[len++] = (char)c;
    }
    fclose(f);
    free(txt);
    if (!out) return vlp_strdup("");
    out[len] = '\0';
    return out;
}

enum { MISSING_NAMED = 3 };

static void walk_captions(vlp_dataset *ds, long *cap, const char *dir, long *missing) {
    int n;
    char **names = list_dir(dir, &n);
    for (int i = 0; i < n; i++) {
        char *path = join(dir, names[i]);
        if (is_dir(path)) {
            walk_captions(ds, cap, path, missing);
            free(path);
        } else if (is_image_name(names[i])) {
            bool bad;
            char *caption = read_caption(path, &bad);
            if (caption) {
                add_sample(ds, cap, path, caption, -1, -1);
            } else if (bad) { /* malformed, not missing: always named */
                fprintf(stderr, "vlp: warning: %s; %s skipped\n", vlp_error_message(), path);
                free(path);
            } else {
                /* a few by name, then the count (vlp_dataset_open_caption_folder) */
                if (*missing < MISSING_NAMED)
                    fprintf(stderr, "vlp: warning: %s has no caption file beside it; skipped\n", path);
                (*missing)++;
                free(path);
            }
        } else {
            free(path);
        }
    }
    free_list(names);
}

int vlp_dataset_open_caption_folder(vlp_dataset *ds, const char *dir) {
    memset(ds, 0, sizeof *ds);
    if (!is_dir(dir)) return vlp_error_set(VLP_EIO, "%s: not a folder", dir);
    long cap = 0, missing = 0;
    walk_captions(ds, &cap, dir, &missing);
    if (missing > MISSING_NAMED && ds->n > 0)
        fprintf(stderr, "vlp: warning: %s: %ld images in all have no caption file beside them; skipped\n", dir,
                missing);
    if (ds->n == 0) {
        vlp_dataset_free(ds);
        return vlp_error_set(VLP_EFORMAT, "%s: no image with a .txt caption beside it (%ld without)",
                             dir, missing);
    }
    ds->source = vlp_strdup(dir);
    return VLP_OK;
}

int vlp_dataset_open_class_folder(vlp_dataset *ds, const char *dir) {
    memset(ds, 0, sizeof *ds);
    int n;
    char **names = list_dir(dir, &n);
    if (!names) return vlp_error_set(VLP_EIO, "%s: %s", dir, strerror(errno));
    long cap = 0;
    for (int i = 0; i < n; i++) {
        char *sub = join(dir, names[i]);
        int m;
        char **files = is_dir(sub) ? list_dir(sub, &m) : NULL;
        if (files) {
            int id = ds->n_classes++;
            ds->class_names = vlp_realloc(ds->class_names, (size_t)ds->n_classes * sizeof(char *));
            char *label = vlp_strdup(names[i]); /* "ankle_boot" reads "ankle boot" */
            for (char *c = label; *c; c++)
                if (*c == '_') *c = ' ';
            ds->class_names[id] = label;
            for (int j = 0; j < m; j++)
                if (is_image_name(files[j])) add_sample(ds, &cap, join(sub, files[j]), vlp_strdup(label), id, -1);
            free_list(files);
        }
        free(sub);
    }
    free_list(names);
    if (ds->n == 0) {
        vlp_dataset_free(ds);
        return vlp_error_set(VLP_EFORMAT, "%s: no class subfolder holds an image", dir);
    }
    ds->source = vlp_strdup(dir);
    return VLP_OK;
}

/* ---- packed HDF5 shards ------------------------------------------------------------ */

static hid_t vlen_string_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static int read_ints(hid_t f, const char *name, int *out, long n) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) {
        for (long i = 0; i < n; i++) out[i] = -1;
        return VLP_OK;
    }
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t s = H5Dget_space(d);
    bool ok = d >= 0 && H5Sget_simple_extent_npoints(s) == n &&
              H5Dread(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0;
    H5Sclose(s);
    H5Dclose(d);
    return ok ? VLP_OK : VLP_EFORMAT;
}

int vlp_dataset_open_shard(vlp_dataset *ds, const char *path) {
    memset(ds, 0, sizeof *ds);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int fd = vlp_file_open_fd(path); /* regular files only: HDF5 would hang on a FIFO */
    if (fd < 0) return VLP_EIO;
    close(fd);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return vlp_error_set(VLP_EIO, "%s: cannot open as HDF5", path);
    int rc = VLP_OK, version = 0;
    hid_t images = -1, caps = -1, space = -1, strtype = vlen_string_type();
    char **texts = NULL;
    int *class_id = NULL, *concept_id = NULL;
    hid_t a = H5Aopen(f, "vlp_shard_version", H5P_DEFAULT);
    if (a < 0 || H5Aread(a, H5T_NATIVE_INT, &version) < 0 || version != SHARD_VERSION) {
        rc = vlp_error_set(VLP_EFORMAT, "%s: not a vlp shard of version %d (found %d)", path,
                           SHARD_VERSION, version);
        goto fail;
    }
    images = H5Dopen2(f, "images", H5P_DEFAULT);
    caps = H5Dopen2(f, "captions", H5P_DEFAULT);
    hsize_t dims[4];
    space = images >= 0 ? H5Dget_space(images) : -1;
    if (images < 0 || caps < 0 || space < 0 || H5Sget_simple_extent_ndims(space) != 4 ||
        H5Sget_simple_extent_dims(space, dims, NULL) < 0 || dims[1] != dims[2] || dims[3] != 3) {
        rc = vlp_error_set(VLP_EFORMAT, "%s: images must be (N, S, S, 3) uint8 with captions", path);
        goto fail;
    }
    /* Sizes from the file, checked before they size an allocation: the
     * side as any decoded image's, the count against the captions (which
     * H5Dread fills whole) and the file (a sample stores at least a byte). */
    hsize_t max_pixels = (hsize_t)vlp_image_opts_default().max_pixels, file_bytes = 0;
    if (dims[1] < 1 || dims[1] > max_pixels || dims[1] * dims[1] > max_pixels) {
        rc = vlp_error_set(VLP_EFORMAT, "%s: images of %llux%llu pixels, more than the limit of %llu",
                           path, (unsigned long long)dims[1], (unsigned long long)dims[2],
                           (unsigned long long)max_pixels);
        goto fail;
    }
    /* Stored as vlp writes it (one deflated chunk per image), images are read
     * raw and inflated outside the HDF5 lock; stored any other way (contiguous,
     * other chunks or filters, as h5py writes by default) through H5Dread. */
    hid_t type = H5Dget_type(images), dcpl = H5Dget_create_plist(images);
    bool uint8 = type >= 0 && H5Tget_class(type) == H5T_INTEGER && H5Tget_size(type) == 1;
    hsize_t chunk[4] = {0};
    unsigned flags = 0, cd[8];
    size_t n_cd = 8;
    bool direct = dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, 4, chunk) == 4 &&
                  chunk[0] == 1 && chunk[1] == dims[1] && chunk[2] == dims[2] && chunk[3] == 3 &&
                  H5Pget_nfilters(dcpl) == 1 &&
                  H5Pget_filter2(dcpl, 0, &flags, &n_cd, cd, 0, NULL, NULL) == H5Z_FILTER_DEFLATE;
    if (type >= 0) H5Tclose(type);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (!uint8) {
        rc = vlp_error_set(VLP_EFORMAT, "%s: images must be (N, S, S, 3) uint8; they are stored with another type",
                           path);
        goto fail;
    }
    hid_t caps_space = H5Dget_space(caps);
    hssize_t n_caps = caps_space >= 0 ? H5Sget_simple_extent_npoints(caps_space) : -1;
    if (caps_space >= 0) H5Sclose(caps_space);
    if (n_caps < 0 || (hsize_t)n_caps != dims[0]) {
        rc = vlp_error_set(VLP_EFORMAT, "%s: captions unreadable, or not %llu of them", path,
                           (unsigned long long)dims[0]);
        goto fail;
    }
    if (H5Fget_filesize(f, &file_bytes) < 0 || dims[0] > file_bytes) {
        rc = vlp_error_set(VLP_EFORMAT, "%s: %llu samples declared in a file of %llu bytes", path,
                           (unsigned long long)dims[0], (unsigned long long)file_bytes);
        goto fail;
    }
    long n = (long)dims[0];
    texts = vlp_calloc((size_t)n + 1, sizeof *texts);
    class_id = vlp_malloc(((size_t)n + 1) * sizeof *class_id);
    concept_id = vlp_malloc(((size_t)n + 1) * sizeof *concept_id);
    if (H5Dread(caps, strtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, texts) < 0 ||
        read_ints(f, "class_id", class_id, n) || read_ints(f, "concept_id", concept_id, n)) {
        rc = vlp_error_set(VLP_EFORMAT, "%s: captions or ids unreadable, or not %ld of them", path, n);
        goto fail;
    }
    ds->samples = vlp_calloc((size_t)n + 1, sizeof *ds->samples);
    for (long i = 0; i < n; i++)
        ds->samples[i] = (vlp_sample){NULL, vlp_strdup(texts[i] ? texts[i] : ""), class_id[i],
                                      concept_id[i], i};
    ds->n = n;
    ds->shard = vlp_calloc(1, sizeof *ds->shard);
    *ds->shard = (vlp_shard){.file = f, .images = images, .size = (int)dims[1], .direct = direct};
    pthread_mutex_init(&ds->shard->lock, NULL);
    ds->source = vlp_strdup(path);
    images = -1, f = -1; /* owned by the shard now */
    if (n == 0) rc = vlp_error_set(VLP_EFORMAT, "%s: no samples", path);
fail:
    if (texts) {
        for (long i = 0; texts[i]; i++) H5free_memory(texts[i]);
        free(texts);
    }
    free(class_id);
    free(concept_id);
    if (a >= 0) H5Aclose(a);
    if (space >= 0) H5Sclose(space);
    if (caps >= 0) H5Dclose(caps);
    if (images >= 0) H5Dclose(images);
    if (f >= 0) H5Fclose(f);
    H5Tclose(strtype);
    if (rc != VLP_OK) vlp_dataset_free(ds);
    return rc;
}

int vlp_dataset_image_size(const vlp_dataset *ds) { return ds->shard ? ds->shard->size : 0; }

/* Any other layout: HDF5 reads (and inflates) image i under the lock. */
static int shard_image_read(const vlp_dataset *ds, long i, vlp_image *out) {
    vlp_shard *s = ds->shard;
    hsize_t start[4] = {(hsize_t)i, 0, 0, 0}, count[4] = {1, (hsize_t)s->size, (hsize_t)s->size, 3};
    memset(out, 0, sizeof *out);
    out->rgb = vlp_malloc((size_t)s->size * s->size * 3);
    out->w = out->h = s->size;
    pthread_mutex_lock(&s->lock);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fs = H5Dget_space(s->images), ms = H5Screate_simple(4, count, NULL);
    bool ok = fs >= 0 && ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
              H5Dread(s->images, H5T_NATIVE_UCHAR, ms, fs, H5P_DEFAULT, out->rgb) >= 0;
    if (fs >= 0) H5Sclose(fs);
    if (ms >= 0) H5Sclose(ms);
    pthread_mutex_unlock(&s->lock);
    if (ok) return VLP_OK;
    vlp_image_free(out);
    return vlp_error_set(VLP_EFORMAT, "%s: image %ld unreadable", ds->source, i);
}

/* One chunk holds one image: read its compressed bytes under the lock and
 * inflate them outside it, so loader threads decompress in parallel. */
static int shard_image(const vlp_dataset *ds, long i, vlp_image *out) {
    vlp_shard *s = ds->shard;
    size_t bytes = (size_t)s->size * s->size * 3;
    if (!s->direct) return shard_image_read(ds, i, out);
    hsize_t offset[4] = {(hsize_t)i, 0, 0, 0}, stored = 0;
    uint32_t filters = 0;
    memset(out, 0, sizeof *out);
    uint8_t *raw = NULL;
    int rc = VLP_OK;
    pthread_mutex_lock(&s->lock);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* per thread: loader threads report errors themselves */
    /* The stored size comes from the file: deflate never exceeds compressBound. */
    bool sized = H5Dget_chunk_storage_size(s->images, offset, &stored) >= 0 && stored > 0 &&
                 stored <= compressBound(bytes);
    if (sized) raw = vlp_malloc(stored);
    if (!sized || H5Dread_chunk(s->images, H5P_DEFAULT, offset, &filters, raw) < 0)
        rc = vlp_error_set(VLP_EFORMAT, "%s: image %ld unreadable", ds->source, i);
    pthread_mutex_unlock(&s->lock);
    if (rc == VLP_OK) out->rgb = vlp_malloc(bytes);
    if (rc == VLP_OK) {
        out->w = out->h = s->size;
        uLongf len = bytes;
        if (filters & 1) { /* the optional deflate filter was skipped for this chunk */
            if (stored != bytes) rc = vlp_error_set(VLP_EFORMAT, "%s: image %ld has a bad size", ds->source, i);
            else memcpy(out->rgb, raw, bytes);
        } else if (uncompress(out->rgb, &len, raw, stored) != Z_OK || len != bytes) {
            rc = vlp_error_set(VLP_EFORMAT, "%s: image %ld does not inflate", ds->source, i);
        }
    }
    free(raw);
    if (rc != VLP_OK) vlp_image_free(out);
    return rc;
}

int vlp_dataset_image(const vlp_dataset *ds, long i, vlp_image *out, const vlp_image_opts *opts) {
    VLP_ASSERT(i >= 0 && i < ds->n, "sample %ld of %ld", i, ds->n);
    if (ds->shard) return shard_image(ds, ds->samples[i].row, out);
    return vlp_image_load(out, ds->samples[i].path, opts);
}

static int write_ints(hid_t f, const char *name, const int *v, hsize_t n) {
    hid_t space = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(f, name, H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    if (d >= 0) H5Dclose(d);
    H5Sclose(space);
    return ok ? VLP_OK : VLP_EIO;
}

int vlp_shard_pack(const vlp_dataset *ds, const char *path, int size, const vlp_image_opts *opts,
                   long *skipped) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    *skipped = 0;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return vlp_error_set(VLP_EINVAL, "path too long: %s", path);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return vlp_error_set(VLP_EIO, "%s: cannot create", tmp);
    hsize_t dims[4] = {0, (hsize_t)size, (hsize_t)size, 3}, maxdims[4] = {H5S_UNLIMITED, dims[1], dims[2], 3};
    hsize_t chunk[4] = {1, dims[1], dims[2], 3};
    hid_t space = H5Screate_simple(4, dims, maxdims), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 4, chunk);
    H5Pset_deflate(dcpl, 4);
    hid_t images = H5Dcreate2(f, "images", H5T_STD_U8LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Sclose(space);
    H5Pclose(dcpl);
    const char **texts = vlp_malloc(((size_t)ds->n + 1) * sizeof *texts);
    int *class_id = vlp_malloc(((size_t)ds->n + 1) * sizeof *class_id);
    int *concept_id = vlp_malloc(((size_t)ds->n + 1) * sizeof *concept_id);
    int rc = images < 0 ? vlp_error_set(VLP_EIO, "%s: cannot create the images dataset", tmp) : VLP_OK;
    hsize_t kept = 0;
    for (long i = 0; i < ds->n && rc == VLP_OK; i++) {
        vlp_image img, sq;
        if (vlp_dataset_image(ds, i, &img, opts) != VLP_OK) {
            fprintf(stderr, "vlp: warning: skipped %s\n", vlp_error_message());
            (*skipped)++;
            continue;
        }
        rc = vlp_image_center(&sq, &img, size);
        vlp_image_free(&img);
        if (rc != VLP_OK) break;
        dims[0] = kept + 1;
        hsize_t start[4] = {kept, 0, 0, 0};
        hid_t fspace = -1, mspace = H5Screate_simple(4, chunk, NULL);
        if (H5Dset_extent(images, dims) < 0 || (fspace = H5Dget_space(images)) < 0 ||
            H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, chunk, NULL) < 0 ||
            H5Dwrite(images, H5T_NATIVE_UCHAR, mspace, fspace, H5P_DEFAULT, sq.rgb) < 0)
            rc = vlp_error_set(VLP_EIO, "%s: cannot write image %ld", tmp, i);
        if (fspace >= 0) H5Sclose(fspace);
        H5Sclose(mspace);
        vlp_image_free(&sq);
        texts[kept] = ds->samples[i].caption;
        class_id[kept] = ds->samples[i].class_id;
        concept_id[kept] = ds->samples[i].concept_id;
        kept++;
    }
    if (rc == VLP_OK && kept == 0) rc = vlp_error_set(VLP_EFORMAT, "%s: no image could be read", ds->source);
    if (rc == VLP_OK) {
        hid_t st = vlen_string_type(), sp = H5Screate_simple(1, &kept, NULL);
        hid_t d = H5Dcreate2(f, "captions", st, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (d < 0 || H5Dwrite(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, texts) < 0 ||
            write_ints(f, "class_id", class_id, kept) || write_ints(f, "concept_id", concept_id, kept))
            rc = vlp_error_set(VLP_EIO, "%s: cannot write captions and ids", tmp);
        if (d >= 0) H5Dclose(d);
        H5Sclose(sp);
        H5Tclose(st);
        int version = SHARD_VERSION;
        hid_t as = H5Screate(H5S_SCALAR);
        hid_t a1 = H5Acreate2(f, "vlp_shard_version", H5T_STD_I32LE, as, H5P_DEFAULT, H5P_DEFAULT);
        hid_t a2 = H5Acreate2(f, "image_size", H5T_STD_I32LE, as, H5P_DEFAULT, H5P_DEFAULT);
        if (a1 < 0 || a2 < 0 || H5Awrite(a1, H5T_NATIVE_INT, &version) < 0 ||
            H5Awrite(a2, H5T_NATIVE_INT, &size) < 0)
            rc = vlp_error_set(VLP_EIO, "%s: cannot write attributes", tmp);
        if (a1 >= 0) H5Aclose(a1);
        if (a2 >= 0) H5Aclose(a2);
        H5Sclose(as);
    }
    free(texts);
    free(class_id);
    free(concept_id);
    if (images >= 0) H5Dclose(images);
    if (H5Fclose(f) < 0 && rc == VLP_OK) rc = vlp_error_set(VLP_EIO, "%s: cannot close", tmp);
    if (rc == VLP_OK && rename(tmp, path) != 0) rc = vlp_error_set(VLP_EIO, "%s: %s", path, strerror(errno));
    if (rc != VLP_OK) remove(tmp);
    return rc;
}

/* ---- by path ------------------------------------------------------------------------ */

/* Is there a .txt file anywhere under dir? */
static bool has_captions(const char *dir) {
    int n;
    char **names = list_dir(dir, &n);
    bool found = false;
    for (int i = 0; names && i < n && !found; i++) {
        char *p = join(dir, names[i]);
        found = is_dir(p) ? has_captions(p) : ends_with(names[i], ".txt");
        free(p);
    }
    free_list(names);
    return found;
}

int vlp_dataset_open(vlp_dataset *ds, const char *path, const vlp_manifest_opts *opts) {
    if (ends_with(path, ".h5") || ends_with(path, ".hdf5")) return vlp_dataset_open_shard(ds, path);
    if (is_dir(path))
        return has_captions(path) ? vlp_dataset_open_caption_folder(ds, path)
                                  : vlp_dataset_open_class_folder(ds, path);
    vlp_manifest_opts o = opts ? *opts : (vlp_manifest_opts){0};
    if (!o.separator) o.separator = ends_with(path, ".csv") ? ',' : '\t';
    return vlp_dataset_open_manifest(ds, path, &o);
}
