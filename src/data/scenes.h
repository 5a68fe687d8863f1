/* Composite scenes with exact masks, for zero-shot segmentation: 1 to N
 * real RGBA cut-outs (Tux Paint stamps, emoji) at random sizes and places
 * on a real photograph or a plain colour, with a per-pixel class mask and a
 * caption naming the objects ("a heron and an apple"). Deterministic from a
 * seed: scene i of a split depends on the seed, the split and i alone.
 * Not segmentation or its evaluation: see eval/segment.h. */
#ifndef VLP_SCENES_H
#define VLP_SCENES_H

#include <stdbool.h>
#include <stdint.h>

#include "data/image.h"

#define VLP_SCENE_MAX_OBJECTS 3

/* An image with straight (not premultiplied) alpha. */
typedef struct vlp_rgba {
    int w, h;
    uint8_t *px; /* (h, w, 4), owned */
} vlp_rgba;

void vlp_rgba_free(vlp_rgba *img);
/* Decodes any image stb_image reads into RGBA (opaque when it has no alpha). */
int vlp_rgba_load(vlp_rgba *out, const char *path);
/* src resized to (w, h) with alpha-weighted filtering (stb_image_resize's
 * default filters, colours premultiplied while filtering, so transparent
 * pixels' colours do not bleed into the edges). */
int vlp_rgba_resize(vlp_rgba *dst, const vlp_rgba *src, int w, int h);

typedef struct vlp_scene_class {
    char *name;
    bool unseen; /* never in a training scene, so never in a training caption */
    int n_sources;
    char **paths;      /* as found under the data root */
    vlp_rgba *sources; /* each cropped to its alpha's bounding box */
} vlp_scene_class;

/* Everything scenes are drawn from: the classes of a spec file and the
 * background photographs of a folder (sorted by name; every third, from the
 * third, is held out for the val and unseen splits). */
typedef struct vlp_scene_set {
    int n_classes; /* class k is mask value k + 1; 0 is background */
    vlp_scene_class *classes;
    int n_backgrounds;
    char **background_names;
    vlp_image *backgrounds;
    uint8_t alpha_threshold; /* a pixel is the object's where its alpha >= this */
} vlp_scene_set;

/* Spec: one class a line, `name<TAB>seen|unseen<TAB>sources`, sources
 * separated by spaces, each a path under root or `emoji:HEX` (both
 * root/emoji/google/HEX.png and root/emoji/twitter/HEX.png); '#' starts a
 * comment line. A source must be a cut-out: an error names one whose
 * border is not transparent or that has almost nothing opaque.
 * backgrounds_dir may be NULL (plain colours only). max_side > 0 shrinks,
 * once, a cut-out whose longer side or a photograph whose shorter side is
 * larger (twice the scene size keeps every later resize a reduction of at
 * most 2x and makes drawing fast); 0 keeps them as they are. */
int vlp_scene_set_load(vlp_scene_set *s, const char *spec_path, const char *root,
                       const char *backgrounds_dir, uint8_t alpha_threshold, int max_side);
void vlp_scene_set_free(vlp_scene_set *s);

typedef enum vlp_scene_split {
    VLP_SCENE_TRAIN,  /* seen classes, training photographs */
    VLP_SCENE_VAL,    /* seen classes, held-out photographs */
    VLP_SCENE_UNSEEN, /* unseen classes only, held-out photographs */
    VLP_SCENE_SPLITS
} vlp_scene_split;

extern const char *const VLP_SCENE_SPLIT_NAMES[VLP_SCENE_SPLITS]; /* train, val, unseen */

typedef struct vlp_scenes_opts {
    uint64_t seed;
    int size;                     /* scenes are size x size */
    long count[VLP_SCENE_SPLITS]; /* scenes per split */
    int max_objects;              /* 1..VLP_SCENE_MAX_OBJECTS objects, uniform */
    float min_scale, max_scale;   /* an object's longer side, as a fraction of size */
    float plain_fraction;         /* of scenes on a plain colour (all of them without photos) */
} vlp_scenes_opts;

vlp_scenes_opts vlp_scenes_opts_default(void);

typedef struct vlp_scene_object {
    int cls, source;  /* class index (mask value cls + 1), source of that class */
    int x, y, w, h;   /* where the source is drawn, resized to w x h, inside the scene */
} vlp_scene_object;

/* What a scene is, before it is drawn. */
typedef struct vlp_scene {
    int background;    /* index in the set, or -1 for plain */
    uint8_t colour[3]; /* plain */
    int bx, by, bw;    /* the photograph's square crop */
    int n;
    vlp_scene_object obj[VLP_SCENE_MAX_OBJECTS]; /* in drawing order: later ones on top */
} vlp_scene;

/* Scene `index` of `split`: distinct classes; boxes that overlap each other
 * by at most a fifth of the smaller one. */
void vlp_scene_sample(const vlp_scene_set *s, const vlp_scenes_opts *o, vlp_scene_split split,
                      long index, vlp_scene *out);

/* Draws sc: rgb (size, size, 3) the objects alpha-blended over the
 * background in order; mask (size, size) the class + 1 of the last object
 * whose alpha at the pixel is >= the set's threshold, else 0. */
int vlp_scene_render(const vlp_scene_set *s, const vlp_scene *sc, int size, uint8_t *rgb,
                     uint8_t *mask);

/* "a heron", "a heron and an apple", "a heron, an apple and a bee". */
void vlp_scene_caption(const vlp_scene_set *s, const vlp_scene *sc, char *out, size_t n);

/* Writes out_dir/<split>/images/NNNNNN.png, <split>/masks/NNNNNN.png (8-bit
 * grey, the mask), <split>.tsv (filepath, title, mask, background: the
 * photograph's file name or "plain #rrggbb"), classes.txt (line k
 * = mask value k), classes.tsv (id, name, split, sources), templates.txt
 * and backgrounds.tsv (name, split). Progress on stderr when verbose. */
int vlp_scenes_write(const vlp_scene_set *s, const vlp_scenes_opts *o, const char *out_dir,
                     bool verbose);

#endif
