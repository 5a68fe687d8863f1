/* vlpdata: look at, pack and time datasets.
 *   vlpdata info DATASET            what it holds, with example captions
 *   vlpdata pack DATASET -o OUT.h5 [--size S]
 *   vlpdata bench DATASET [--image-size S] [--batch B] [--workers N] [--batches K] [--augment]
 *   vlpdata scenes SPEC -o OUT [--root DIR] [--backgrounds DIR] [--seed N] [--size S] ...
 * DATASET is a manifest (.tsv, .csv), a caption or class folder, or a shard
 * (.h5). Argument parsing only; the work is in src/data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/output.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/scenes.h"
#include "args.h"

static void usage(FILE *f) {
    fputs("usage: vlpdata info DATASET [manifest options]\n"
          "       vlpdata pack DATASET -o OUT.h5 [--size S] [manifest options]\n"
          "       vlpdata bench DATASET [--image-size S] [--batch B] [--workers N] [--batches K]\n"
          "                             [--augment] [manifest options]\n"
          "       vlpdata scenes SPEC -o OUT [--root DIR] [--backgrounds DIR] [--seed N] [--size S]\n"
          "                      [--train N] [--val N] [--unseen N] [--max-objects K]\n"
          "                      [--alpha-threshold T]\n"
          "manifest options: --separator C (default tab; ',' for .csv), --image-key NAME\n"
          "                  (default filepath), --caption-key NAME (default title)\n",
          f);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int info(const vlp_dataset *ds) {
    long with_class = 0, with_concept = 0;
    for (long i = 0; i < ds->n; i++) {
        with_class += ds->samples[i].class_id >= 0;
        with_concept += ds->samples[i].concept_id >= 0;
    }
    printf("%s: %ld samples%s", ds->source, ds->n, ds->shard ? " (packed shard" : "");
    if (ds->shard) printf(", %dx%d images)", vlp_dataset_image_size(ds), vlp_dataset_image_size(ds));
    printf("\n  %ld with a class id, %ld with a concept id\n", with_class, with_concept);
    for (int c = 0; c < ds->n_classes; c++) printf("  class %d: %s\n", c, ds->class_names[c]);
    for (long i = 0; i < ds->n && i < 5; i++) {
        long k = i * (ds->n / 5 > 0 ? ds->n / 5 : 1);
        printf("  [%ld] %s%s%s\n", k, ds->samples[k].caption, ds->samples[k].path ? "  <- " : "",
               ds->samples[k].path ? ds->samples[k].path : "");
    }
    return 0;
}

static int bench(const vlp_dataset *ds, int S, int B, int workers, int batches, bool augment) {
    vlp_loader_opts o = vlp_loader_defaults(B, S);
    o.workers = workers;
    o.augment = augment;
    vlp_loader *l;
    double start = now();
    if (vlp_loader_open(&l, ds, &o, 0, 0) != VLP_OK) {
        fprintf(stderr, "vlpdata: %s\n", vlp_error_message());
        return 1;
    }
    /* Timed from the start of the workers: prefetched batches are not free. */
    vlp_batch *b;
    int rc = VLP_OK;
    long images = 0;
    for (int i = 0; i < batches && rc == VLP_OK; i++) {
        rc = vlp_loader_next(l, &b);
        images += rc == VLP_OK ? b->n : 0;
    }
    double secs = now() - start;
    if (rc != VLP_OK) fprintf(stderr, "vlpdata: %s\n", vlp_error_message());
    else printf("%s: %.0f images/s (%d workers, %dx%d, %s, %ld images in %.2f s)\n", ds->source,
                images / secs, workers, S, S, augment ? "random resized crop" : "centre crop",
                images, secs);
    vlp_loader_close(l);
    return rc == VLP_OK ? 0 : 1;
}

/* vlpdata scenes: composite scenes with masks from SPEC's cut-outs (paths
 * under --root, default data) on --backgrounds' photographs and plain colours. */
static int scenes(int argc, char **argv) {
    const char *spec = argv[2], *out = NULL, *root = "data", *backgrounds = NULL;
    vlp_scenes_opts o = vlp_scenes_opts_default();
    long seed = (long)o.seed, size = o.size, max_objects = o.max_objects, threshold = 128;
    long train = o.count[VLP_SCENE_TRAIN], val = o.count[VLP_SCENE_VAL], unseen = o.count[VLP_SCENE_UNSEEN];
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return fprintf(stderr, "vlpdata: %s needs a value\n", a), usage(stderr), 2;
        i++;
        long *num = !strcmp(a, "--seed") ? &seed : !strcmp(a, "--size") ? &size
                  : !strcmp(a, "--train") ? &train : !strcmp(a, "--val") ? &val
                  : !strcmp(a, "--unseen") ? &unseen : !strcmp(a, "--max-objects") ? &max_objects
                  : !strcmp(a, "--alpha-threshold") ? &threshold : NULL;
        if (!strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--root")) root = v;
        else if (!strcmp(a, "--backgrounds")) backgrounds = v;
        else if (!num) return fprintf(stderr, "vlpdata: unknown option '%s'\n", a), usage(stderr), 2;
        if (!num) continue;
        bool alpha = num == &threshold;
        if (!vlp_arg_long("vlpdata", a, v, alpha ? 1 : 0, alpha ? 255 : 1L << 30, num)) return usage(stderr), 2;
    }
    o.seed = (uint64_t)seed, o.size = (int)size, o.max_objects = (int)max_objects;
    o.count[VLP_SCENE_TRAIN] = train, o.count[VLP_SCENE_VAL] = val, o.count[VLP_SCENE_UNSEEN] = unseen;
    if (!out) return usage(stderr), 2;
    const char *inputs[] = {spec, root, backgrounds};
    if (vlp_output_check_dir("-o", out, inputs, 3)) return fprintf(stderr, "vlpdata: %s\n", vlp_error_message()), 2;
    vlp_scene_set s;
    double start = now();
    int rc = vlp_scene_set_load(&s, spec, root, backgrounds, (uint8_t)threshold, 2 * o.size);
    if (!rc) rc = vlp_scenes_write(&s, &o, out, true);
    if (rc) return fprintf(stderr, "vlpdata: %s\n", vlp_error_message()), 1;
    int seen = 0, sources = 0;
    for (int c = 0; c < s.n_classes; c++) seen += !s.classes[c].unseen, sources += s.classes[c].n_sources;
    printf("vlpdata: %ld train, %ld val, %ld unseen scenes of %dx%d in %s: %d classes (%d seen, "
           "%d unseen) from %d cut-outs, %d photographs, seed %llu (%.1f s)\n",
           o.count[0], o.count[1], o.count[2], o.size, o.size, out, s.n_classes, seen,
           s.n_classes - seen, sources, s.n_backgrounds, (unsigned long long)o.seed, now() - start);
    vlp_scene_set_free(&s);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "scenes")) return scenes(argc, argv);
    if (argc < 3) {
        usage(argc < 2 ? stderr : stdout);
        return argc == 2 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    const char *cmd = argv[1], *input = argv[2], *output = NULL;
    int size = 64, S = 32, B = 64, workers = 1, batches = 50;
    bool augment = false;
    vlp_manifest_opts mo = {0};
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int *num = !strcmp(a, "--size") ? &size : !strcmp(a, "--image-size") ? &S
                 : !strcmp(a, "--batch") ? &B : !strcmp(a, "--workers") ? &workers
                 : !strcmp(a, "--batches") ? &batches : NULL;
        if (!strcmp(a, "--augment")) {
            augment = true;
            continue;
        }
        if (!v) {
            if (a[0] == '-' && (num || !strcmp(a, "-o") || !strcmp(a, "--separator") || !strcmp(a, "--image-key") ||
                                !strcmp(a, "--caption-key")))
                fprintf(stderr, "vlpdata: %s needs a value\n", a);
            else fprintf(stderr, "vlpdata: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (num) {
            if (!vlp_arg_int("vlpdata", a, v, 1, 1 << 20, num)) return usage(stderr), 2;
        } else if (!strcmp(a, "-o")) {
            output = v;
        } else if (!strcmp(a, "--separator")) {
            if (strcmp(v, "\\t") && strcmp(v, "\t") && strlen(v) != 1) {
                fprintf(stderr, "vlpdata: --separator '%s' is not one character (or \\t for a tab)\n", v);
                usage(stderr);
                return 2;
            }
            mo.separator = v[0] == '\\' && v[1] ? '\t' : v[0];
        } else if (!strcmp(a, "--image-key")) {
            mo.image_key = v;
        } else if (!strcmp(a, "--caption-key")) {
            mo.caption_key = v;
        } else {
            fprintf(stderr, "vlpdata: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!strcmp(cmd, "pack")) {
        if (!output) return fprintf(stderr, "vlpdata: pack needs -o OUT.h5\n"), usage(stderr), 2;
        const char *inputs[] = {input};
        if (vlp_output_check("-o", output, inputs, 1)) return fprintf(stderr, "vlpdata: %s\n", vlp_error_message()), 2;
        vlp_output_remove_stale_tmp(output); /* the shard is written through OUT.h5.tmp */
    }
    vlp_dataset ds;
    if (vlp_dataset_open(&ds, input, &mo) != VLP_OK) {
        fprintf(stderr, "vlpdata: %s\n", vlp_error_message());
        return 1;
    }
    int rc = 2;
    if (!strcmp(cmd, "info")) {
        rc = info(&ds);
    } else if (!strcmp(cmd, "bench")) {
        rc = bench(&ds, S, B, workers, batches, augment);
    } else if (!strcmp(cmd, "pack") && output) {
        long skipped = 0;
        double start = now();
        rc = vlp_shard_pack(&ds, output, size, NULL, &skipped) == VLP_OK ? 0 : 1;
        if (rc) fprintf(stderr, "vlpdata: %s\n", vlp_error_message());
        else printf("vlpdata: packed %ld of %ld samples of %s into %s (%dx%d, %ld skipped, %.1f s)\n",
                    ds.n - skipped, ds.n, input, output, size, size, skipped, now() - start);
    } else {
        usage(stderr);
    }
    vlp_dataset_free(&ds);
    return rc;
}
