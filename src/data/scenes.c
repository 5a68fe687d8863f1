/* Composite scenes with exact masks (see scenes.h). */
#include "data/scenes.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <stb_image.h>
#include <stb_image_resize.h>
#include <stb_image_write.h>

#include "base/error.h"
#include "base/file.h"
#include "base/mem.h"
#include "base/rng.h"

const char *const VLP_SCENE_SPLIT_NAMES[VLP_SCENE_SPLITS] = {"train", "val", "unseen"};

/* Prompt templates written beside the classes, for vlpsegment and vlpeval:
 * "the" rather than "a", as names are substituted as they are. */
static const char *const TEMPLATES[] = {
    "a photo of the {}.", "a picture of the {}.", "the {}.", "a drawing of the {}.",
    "a cut-out of the {}.", "the {} on a background.", "a cartoon of the {}.",
    "a close-up picture of the {}.",
};

vlp_scenes_opts vlp_scenes_opts_default(void) {
    return (vlp_scenes_opts){.seed = 1, .size = 128, .count = {8000, 1000, 1000},
                             .max_objects = 3, .min_scale = 0.3f, .max_scale = 0.65f,
                             .plain_fraction = 0.3f};
}

/* ---- RGBA images -------------------------------------------------------------- */

void vlp_rgba_free(vlp_rgba *img) {
    free(img->px);
    memset(img, 0, sizeof *img);
}

int vlp_rgba_load(vlp_rgba *out, const char *path) {
    memset(out, 0, sizeof *out);
    int w, h, c;
    FILE *f = vlp_file_open(path); /* regular files only: a FIFO would hang */
    if (!f) return VLP_EIO; /* "PATH: not a regular file (a FIFO)", "PATH: No such file..." */
    int rc = VLP_OK;
    if (!stbi_info_from_file(f, &w, &h, &c))
        rc = vlp_error_set(VLP_EFORMAT, "%s: not an image stb_image can read (%s)", path,
                           stbi_failure_reason());
    else if ((long)w * h > 1L << 26)
        rc = vlp_error_set(VLP_EINVAL, "%s: %dx%d is too large", path, w, h);
    else if (!(out->px = stbi_load_from_file(f, &out->w, &out->h, &c, 4)))
        rc = vlp_error_set(VLP_EFORMAT, "%s: %s", path, stbi_failure_reason());
    fclose(f);
    return rc;
}

int vlp_rgba_resize(vlp_rgba *dst, const vlp_rgba *src, int w, int h) {
    VLP_ASSERT(w > 0 && h > 0, "resize to %dx%d", w, h);
    dst->w = w, dst->h = h;
    dst->px = vlp_malloc((size_t)w * h * 4);
    /* With valid sizes stb fails only when its own malloc does. */
    if (!stbir_resize_uint8_generic(src->px, src->w, src->h, 0, dst->px, w, h, 0, 4, 3, 0,
                                    STBIR_EDGE_CLAMP, STBIR_FILTER_DEFAULT,
                                    STBIR_COLORSPACE_LINEAR, NULL))
        vlp_fatal(__FILE__, __LINE__, "out of memory in stb resizing %dx%d to %dx%d", src->w,
                  src->h, w, h);
    return VLP_OK;
}

/* A source must be a cut-out: at least half its border transparent, and enough
 * of it opaque. Then it is cropped to where its alpha is not zero, so that
 * an object's drawn size is the size of what can be seen. */
static int cutout(vlp_rgba *img, const char *path, uint8_t threshold) {
    int w = img->w, h = img->h, x0 = w, y0 = h, x1 = -1, y1 = -1;
    long border = 0, clear = 0, opaque = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t a = img->px[((long)y * w + x) * 4 + 3];
            if (x == 0 || y == 0 || x == w - 1 || y == h - 1) border++, clear += a < threshold;
            opaque += a >= threshold;
            if (a) {
                if (x < x0) x0 = x;
                if (x > x1) x1 = x;
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
            }
        }
    if (clear < border / 2)
        return vlp_error_set(VLP_EFORMAT, "%s: not a cut-out: %ld of %ld border pixels are opaque",
                             path, border - clear, border);
    if (opaque < (long)w * h / 50 || opaque < 16)
        return vlp_error_set(VLP_EFORMAT, "%s: not a cut-out: %ld of %ld pixels are opaque", path,
                             opaque, (long)w * h);
    int cw = x1 - x0 + 1, ch = y1 - y0 + 1;
    uint8_t *px = vlp_malloc((size_t)cw * ch * 4);
    for (int y = 0; y < ch; y++)
        memcpy(px + (size_t)y * cw * 4, img->px + ((size_t)(y + y0) * w + x0) * 4, (size_t)cw * 4);
    free(img->px);
    img->px = px, img->w = cw, img->h = ch;
    return VLP_OK;
}

/* ---- the set -------------------------------------------------------------------- */

void vlp_scene_set_free(vlp_scene_set *s) {
    for (int c = 0; c < s->n_classes; c++) {
        vlp_scene_class *k = &s->classes[c];
        for (int i = 0; i < k->n_sources; i++) {
            free(k->paths[i]);
            if (k->sources) vlp_rgba_free(&k->sources[i]);
        }
        free(k->name);
        free(k->paths);
        free(k->sources);
    }
    free(s->classes);
    for (int i = 0; i < s->n_backgrounds; i++) {
        free(s->background_names[i]);
        vlp_image_free(&s->backgrounds[i]);
    }
    free(s->background_names);
    free(s->backgrounds);
    memset(s, 0, sizeof *s);
}

static int add_source(vlp_scene_class *k, const char *root, const char *rel, uint8_t threshold,
                      int max_side) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", root, rel) >= (int)sizeof path)
        return vlp_error_set(VLP_EINVAL, "path too long: %s/%s", root, rel);
    k->paths = vlp_realloc(k->paths, sizeof *k->paths * (k->n_sources + 1));
    k->sources = vlp_realloc(k->sources, sizeof *k->sources * (k->n_sources + 1));
    k->paths[k->n_sources] = vlp_strdup(rel);
    vlp_rgba *img = &k->sources[k->n_sources++];
    int rc = vlp_rgba_load(img, path);
    if (!rc) rc = cutout(img, path, threshold);
    int longer = img->w > img->h ? img->w : img->h;
    if (!rc && max_side > 0 && longer > max_side) {
        vlp_rgba small;
        int w = (int)((long)img->w * max_side / longer), h = (int)((long)img->h * max_side / longer);
        rc = vlp_rgba_resize(&small, img, w > 0 ? w : 1, h > 0 ? h : 1);
        if (!rc) vlp_rgba_free(img), *img = small;
    }
    return rc;
}

static int parse_spec(vlp_scene_set *s, const char *spec_path, const char *root, char *text,
                      int max_side) {
    int line_no = 0;
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        line_no++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r') line[--len] = '\0';
        if (!len || line[0] == '#') continue;
        char *name = line, *split = strchr(name, '\t'), *sources = split ? strchr(split + 1, '\t') : NULL;
        if (!sources)
            return vlp_error_set(VLP_EFORMAT, "%s:%d: want name<TAB>seen|unseen<TAB>sources",
                                 spec_path, line_no);
        *split++ = '\0', *sources++ = '\0';
        if (strcmp(split, "seen") && strcmp(split, "unseen"))
            return vlp_error_set(VLP_EFORMAT, "%s:%d: split '%s' is not seen or unseen", spec_path,
                                 line_no, split);
        for (int c = 0; c < s->n_classes; c++)
            if (!strcmp(s->classes[c].name, name))
                return vlp_error_set(VLP_EFORMAT, "%s:%d: class '%s' again", spec_path, line_no, name);
        if (s->n_classes == 254)
            return vlp_error_set(VLP_EFORMAT, "%s:%d: more than 254 classes (masks are 8-bit)",
                                 spec_path, line_no);
        s->classes = vlp_realloc(s->classes, sizeof *s->classes * (s->n_classes + 1));
        vlp_scene_class *k = &s->classes[s->n_classes++];
        *k = (vlp_scene_class){.name = vlp_strdup(name), .unseen = !strcmp(split, "unseen")};
        for (char *tok = strtok(sources, " "); tok; tok = strtok(NULL, " ")) {
            /* emoji:HEX is the emoji in both art styles */
            const char *styles[] = {"google", "twitter"};
            bool emoji = !strncmp(tok, "emoji:", 6);
            for (int i = 0; i < (emoji ? 2 : 1); i++) {
                char rel[512];
                if (emoji) snprintf(rel, sizeof rel, "emoji/%s/%s.png", styles[i], tok + 6);
                else snprintf(rel, sizeof rel, "%s", tok);
                int rc = add_source(k, root, rel, s->alpha_threshold, max_side);
                if (rc) return rc;
            }
        }
        if (k->n_sources == 0)
            return vlp_error_set(VLP_EFORMAT, "%s:%d: class '%s' has no source", spec_path, line_no, name);
    }
    return VLP_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_photo(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

static int load_backgrounds(vlp_scene_set *s, const char *dir, int max_side) {
    DIR *d = opendir(dir);
    if (!d) return vlp_error_set(VLP_EIO, "%s: %s", dir, strerror(errno));
    int rc = VLP_OK, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' || !is_photo(e->d_name)) continue;
        if (s->n_backgrounds == cap) {
            cap = cap ? 2 * cap : 32;
            s->background_names = vlp_realloc(s->background_names, sizeof *s->background_names * cap);
        }
        s->background_names[s->n_backgrounds++] = vlp_strdup(e->d_name);
    }
    closedir(d);
    qsort(s->background_names, (size_t)s->n_backgrounds, sizeof(char *), cmp_str);
    s->backgrounds = vlp_calloc((size_t)s->n_backgrounds + 1, sizeof *s->backgrounds);
    for (int i = 0; i < s->n_backgrounds && !rc; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, s->background_names[i]);
        vlp_image *bg = &s->backgrounds[i];
        rc = vlp_image_load(bg, path, NULL);
        int shorter = bg->w < bg->h ? bg->w : bg->h;
        if (!rc && max_side > 0 && shorter > max_side) {
            vlp_image small;
            rc = vlp_image_resize_box(&small, bg, 0, 0, bg->w, bg->h, (int)((long)bg->w * max_side / shorter),
                                      (int)((long)bg->h * max_side / shorter));
            if (!rc) vlp_image_free(bg), *bg = small;
        }
    }
    return rc;
}

int vlp_scene_set_load(vlp_scene_set *s, const char *spec_path, const char *root,
                       const char *backgrounds_dir, uint8_t alpha_threshold, int max_side) {
    memset(s, 0, sizeof *s);
    s->alpha_threshold = alpha_threshold ? alpha_threshold : 1;
    char *text = NULL;
    FILE *f = vlp_file_open(spec_path); /* regular files only: a FIFO would hang */
    if (!f) return VLP_EIO;
    size_t cap = 0, len = 0;
    for (size_t got = 1; got;) {
        if (len + 4096 + 1 > cap) {
            cap = 2 * cap + 8192;
            text = vlp_realloc(text, cap);
        }
        got = fread(text + len, 1, 4096, f);
        len += got;
    }
    fclose(f);
    text[len] = '\0';
    int rc = parse_spec(s, spec_path, root, text, max_side);
    free(text);
    if (!rc && backgrounds_dir) rc = load_backgrounds(s, backgrounds_dir, max_side);
    if (!rc && s->n_classes == 0) rc = vlp_error_set(VLP_EFORMAT, "%s: no classes", spec_path);
    if (rc) vlp_scene_set_free(s);
    return rc;
}

/* ---- sampling and drawing ---------------------------------------------------------- */

static bool held_out_background(int i) { return i % 3 == 2; }

static long overlap(const vlp_scene_object *a, const vlp_scene_object *b) {
    int w = (a->x + a->w < b->x + b->w ? a->x + a->w : b->x + b->w) - (a->x > b->x ? a->x : b->x);
    int h = (a->y + a->h < b->y + b->h ? a->y + a->h : b->y + b->h) - (a->y > b->y ? a->y : b->y);
    return w > 0 && h > 0 ? (long)w * h : 0;
}

void vlp_scene_sample(const vlp_scene_set *s, const vlp_scenes_opts *o, vlp_scene_split split,
                      long index, vlp_scene *out) {
    vlp_rng root, r;
    vlp_rng_init(&root, o->seed);
    vlp_rng per_split = vlp_rng_split(&root, 1000 + (uint64_t)split);
    r = vlp_rng_split(&per_split, (uint64_t)index);
    memset(out, 0, sizeof *out);

    /* background: the split's photographs, or a plain colour */
    int photos[256], n_photos = 0;
    for (int i = 0; i < s->n_backgrounds && n_photos < 256; i++)
        if (held_out_background(i) == (split != VLP_SCENE_TRAIN)) photos[n_photos++] = i;
    out->background = -1;
    for (int c = 0; c < 3; c++) out->colour[c] = (uint8_t)vlp_rng_below(&r, 256);
    if (n_photos && vlp_rng_uniform(&r) >= o->plain_fraction) {
        const vlp_image *bg = &s->backgrounds[out->background = photos[vlp_rng_below(&r, (uint64_t)n_photos)]];
        int side = bg->w < bg->h ? bg->w : bg->h;
        out->bw = (int)(side * (0.5f + 0.5f * vlp_rng_uniform(&r)));
        if (out->bw < 1) out->bw = 1;
        out->bx = (int)vlp_rng_below(&r, (uint64_t)(bg->w - out->bw + 1));
        out->by = (int)vlp_rng_below(&r, (uint64_t)(bg->h - out->bw + 1));
    }

    /* distinct classes of the split, by a partial shuffle */
    int pool[256], n_pool = 0;
    for (int c = 0; c < s->n_classes; c++)
        if (s->classes[c].unseen == (split == VLP_SCENE_UNSEEN)) pool[n_pool++] = c;
    VLP_ASSERT(n_pool > 0, "no %s classes", split == VLP_SCENE_UNSEEN ? "unseen" : "seen");
    int max = o->max_objects < n_pool ? o->max_objects : n_pool;
    out->n = 1 + (int)vlp_rng_below(&r, (uint64_t)max);
    for (int i = 0; i < out->n; i++) {
        int j = i + (int)vlp_rng_below(&r, (uint64_t)(n_pool - i)), t = pool[i];
        pool[i] = pool[j], pool[j] = t;
    }

    int S = o->size;
    for (int i = 0; i < out->n; i++) {
        vlp_scene_object *ob = &out->obj[i];
        ob->cls = pool[i];
        const vlp_scene_class *k = &s->classes[ob->cls];
        ob->source = (int)vlp_rng_below(&r, (uint64_t)k->n_sources);
        const vlp_rgba *src = &k->sources[ob->source];
        float scale = o->min_scale + (o->max_scale - o->min_scale) * vlp_rng_uniform(&r);
        /* Places until the box overlaps no earlier one by more than a fifth
         * of the smaller; every 50 failures the object shrinks. */
        for (int attempt = 0;; attempt++) {
            if (attempt && attempt % 50 == 0) scale *= 0.85f;
            float longer = scale * S, k_ = longer / (src->w > src->h ? src->w : src->h);
            ob->w = (int)(src->w * k_ + 0.5f), ob->h = (int)(src->h * k_ + 0.5f);
            if (ob->w < 1) ob->w = 1;
            if (ob->h < 1) ob->h = 1;
            if (ob->w > S) ob->w = S;
            if (ob->h > S) ob->h = S;
            ob->x = (int)vlp_rng_below(&r, (uint64_t)(S - ob->w + 1));
            ob->y = (int)vlp_rng_below(&r, (uint64_t)(S - ob->h + 1));
            bool ok = true;
            for (int j = 0; j < i && ok; j++) {
                long a = (long)ob->w * ob->h, b = (long)out->obj[j].w * out->obj[j].h;
                ok = overlap(ob, &out->obj[j]) * 5 <= (a < b ? a : b);
            }
            if (ok || attempt >= 500) break;
        }
    }
}

int vlp_scene_render(const vlp_scene_set *s, const vlp_scene *sc, int size, uint8_t *rgb,
                     uint8_t *mask) {
    long n = (long)size * size;
    memset(mask, 0, (size_t)n);
    if (sc->background < 0) {
        for (long p = 0; p < n; p++) memcpy(rgb + p * 3, sc->colour, 3);
    } else {
        vlp_image bg;
        int rc = vlp_image_resize_box(&bg, &s->backgrounds[sc->background], sc->bx, sc->by, sc->bw,
                                      sc->bw, size, size);
        if (rc) return rc;
        memcpy(rgb, bg.rgb, (size_t)n * 3);
        vlp_image_free(&bg);
    }
    for (int i = 0; i < sc->n; i++) {
        const vlp_scene_object *ob = &sc->obj[i];
        VLP_ASSERT(ob->x >= 0 && ob->y >= 0 && ob->x + ob->w <= size && ob->y + ob->h <= size,
                   "object %d outside the scene", i);
        /* at its own size a source is drawn as it is (stb's filters are not
         * exactly the identity there) */
        const vlp_rgba *src_img = &s->classes[ob->cls].sources[ob->source];
        vlp_rgba o = *src_img;
        bool resized = ob->w != src_img->w || ob->h != src_img->h;
        int rc = resized ? vlp_rgba_resize(&o, src_img, ob->w, ob->h) : VLP_OK;
        if (rc) return rc;
        for (int y = 0; y < ob->h; y++)
            for (int x = 0; x < ob->w; x++) {
                const uint8_t *src = o.px + ((long)y * ob->w + x) * 4;
                long p = (long)(ob->y + y) * size + ob->x + x;
                int a = src[3];
                for (int c = 0; c < 3; c++)
                    rgb[p * 3 + c] = (uint8_t)((src[c] * a + rgb[p * 3 + c] * (255 - a) + 127) / 255);
                if (a >= s->alpha_threshold) mask[p] = (uint8_t)(ob->cls + 1);
            }
        if (resized) vlp_rgba_free(&o);
    }
    return VLP_OK;
}

void vlp_scene_caption(const vlp_scene_set *s, const vlp_scene *sc, char *out, size_t n) {
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < sc->n && len < n; i++) {
        const char *name = s->classes[sc->obj[i].cls].name;
        const char *sep = i == 0 ? "" : i == sc->n - 1 ? " and " : ", ";
        const char *article = strchr("aeiouAEIOU", name[0]) ? "an" : "a";
        int w = snprintf(out + len, n - len, "%s%s %s", sep, article, name);
        if (w < 0) break;
        len += (size_t)w;
    }
}

/* ---- writing ------------------------------------------------------------------------ */

static int make_dir(const char *path) {
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return vlp_error_set(VLP_EIO, "%s: %s", path, strerror(errno));
    return VLP_OK;
}

static FILE *open_out(const char *dir, const char *name, int *rc) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) *rc = vlp_error_set(VLP_EIO, "%s: %s", path, strerror(errno));
    return f;
}

static int close_out(FILE *f, const char *dir, const char *name) {
    if (fclose(f) != 0) return vlp_error_set(VLP_EIO, "%s/%s: %s", dir, name, strerror(errno));
    return VLP_OK;
}

static int write_lists(const vlp_scene_set *s, const char *out_dir) {
    int rc = VLP_OK;
    FILE *f = open_out(out_dir, "classes.txt", &rc);
    if (!f) return rc;
    for (int c = 0; c < s->n_classes; c++) fprintf(f, "%s\n", s->classes[c].name);
    if ((rc = close_out(f, out_dir, "classes.txt"))) return rc;
    if (!(f = open_out(out_dir, "classes.tsv", &rc))) return rc;
    fprintf(f, "id\tname\tsplit\tsources\n");
    for (int c = 0; c < s->n_classes; c++) {
        fprintf(f, "%d\t%s\t%s\t", c + 1, s->classes[c].name, s->classes[c].unseen ? "unseen" : "seen");
        for (int i = 0; i < s->classes[c].n_sources; i++)
            fprintf(f, "%s%s", i ? " " : "", s->classes[c].paths[i]);
        fputc('\n', f);
    }
    if ((rc = close_out(f, out_dir, "classes.tsv"))) return rc;
    if (!(f = open_out(out_dir, "templates.txt", &rc))) return rc;
    for (size_t i = 0; i < sizeof TEMPLATES / sizeof *TEMPLATES; i++) fprintf(f, "%s\n", TEMPLATES[i]);
    if ((rc = close_out(f, out_dir, "templates.txt"))) return rc;
    if (!(f = open_out(out_dir, "backgrounds.tsv", &rc))) return rc;
    fprintf(f, "name\tsplit\n");
    for (int i = 0; i < s->n_backgrounds; i++)
        fprintf(f, "%s\t%s\n", s->background_names[i], held_out_background(i) ? "held-out" : "train");
    return close_out(f, out_dir, "backgrounds.tsv");
}

int vlp_scenes_write(const vlp_scene_set *s, const vlp_scenes_opts *o, const char *out_dir,
                     bool verbose) {
    if (o->size < 8 || o->size > 4096 || o->max_objects < 1 ||
        o->max_objects > VLP_SCENE_MAX_OBJECTS || !(o->min_scale > 0) ||
        !(o->max_scale >= o->min_scale) || o->max_scale > 1)
        return vlp_error_set(VLP_EINVAL, "scenes: size %d, %d objects, scale %g..%g", o->size,
                             o->max_objects, o->min_scale, o->max_scale);
    int rc = make_dir(out_dir);
    if (!rc) rc = write_lists(s, out_dir);
    int S = o->size;
    uint8_t *rgb = vlp_malloc((size_t)S * S * 3), *mask = vlp_malloc((size_t)S * S);
    char dir[4096], path[4096 + 64], name[64], caption[1024];
    for (int split = 0; split < VLP_SCENE_SPLITS && !rc; split++) {
        const char *sn = VLP_SCENE_SPLIT_NAMES[split];
        if (o->count[split] == 0) continue;
        snprintf(dir, sizeof dir, "%s/%s", out_dir, sn);
        if ((rc = make_dir(dir))) break;
        snprintf(path, sizeof path, "%s/images", dir);
        if ((rc = make_dir(path))) break;
        snprintf(path, sizeof path, "%s/masks", dir);
        if ((rc = make_dir(path))) break;
        snprintf(name, sizeof name, "%s.tsv", sn);
        FILE *f = open_out(out_dir, name, &rc);
        if (!f) break;
        fprintf(f, "filepath\ttitle\tmask\tbackground\n");
        for (long i = 0; i < o->count[split] && !rc; i++) {
            vlp_scene sc;
            vlp_scene_sample(s, o, (vlp_scene_split)split, i, &sc);
            if ((rc = vlp_scene_render(s, &sc, S, rgb, mask))) break;
            vlp_scene_caption(s, &sc, caption, sizeof caption);
            snprintf(path, sizeof path, "%s/images/%06ld.png", dir, i);
            bool ok = stbi_write_png(path, S, S, 3, rgb, S * 3);
            snprintf(path + strlen(dir), sizeof path - strlen(dir), "/masks/%06ld.png", i);
            ok = ok && stbi_write_png(path, S, S, 1, mask, S);
            if (!ok) rc = vlp_error_set(VLP_EIO, "%s: cannot write", path);
            fprintf(f, "%s/images/%06ld.png\t%s\t%s/masks/%06ld.png\t", sn, i, caption, sn, i);
            if (sc.background >= 0) fprintf(f, "%s\n", s->background_names[sc.background]);
            else fprintf(f, "plain #%02x%02x%02x\n", sc.colour[0], sc.colour[1], sc.colour[2]);
            if (verbose && (i + 1) % 1000 == 0)
                fprintf(stderr, "scenes: %s %ld/%ld\n", sn, i + 1, o->count[split]);
        }
        int rc2 = close_out(f, out_dir, name);
        if (!rc) rc = rc2;
    }
    free(rgb);
    free(mask);
    return rc;
}
