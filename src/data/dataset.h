/* Datasets of image-caption pairs, whatever their form on disk:
 *   - a CSV/TSV manifest (OpenCLIP's: tab-separated, columns filepath and
 *     title; separator and columns configurable; optional class_id and
 *     concept_id columns; paths relative to the manifest's folder);
 *   - a folder of images, each with a same-name .txt beside it whose first
 *     line is the caption;
 *   - a class-per-subfolder folder (caption = class name), for evaluation;
 *   - a packed HDF5 shard (vlp_shard_pack): pre-resized uint8 images,
 *     captions, optional ids, one compressed chunk per image.
 * A dataset lists samples and reads one image on request; batching,
 * shuffling and augmentation belong to the loader. */
#ifndef VLP_DATASET_H
#define VLP_DATASET_H

#include <pthread.h>
#include <stdint.h>

#include "data/image.h"

typedef struct vlp_sample {
    char *path;    /* image file; NULL for shard samples */
    char *caption; /* UTF-8 */
    int class_id, concept_id; /* -1 when unknown */
    long row;                 /* shard samples: the image's row in the shard (a view keeps it) */
} vlp_sample;

typedef struct vlp_shard vlp_shard;

typedef struct vlp_dataset {
    char *source; /* what was opened, for messages */
    vlp_sample *samples;
    long n;
    char **class_names; /* class folders: names by class_id */
    int n_classes;
    vlp_shard *shard; /* packed: images come from here */
} vlp_dataset;

typedef struct vlp_manifest_opts {
    char separator;          /* '\t' by default (0) */
    const char *image_key;   /* "filepath" by default (NULL) */
    const char *caption_key; /* "title" by default (NULL) */
} vlp_manifest_opts;

int vlp_dataset_open_manifest(vlp_dataset *ds, const char *path, const vlp_manifest_opts *opts);
int vlp_dataset_open_caption_folder(vlp_dataset *ds, const char *dir);
int vlp_dataset_open_class_folder(vlp_dataset *ds, const char *dir);
int vlp_dataset_open_shard(vlp_dataset *ds, const char *path);
/* By what path is: .h5 a shard, .csv, .tsv or .txt a manifest (the
 * separator follows the extension unless opts sets it), a folder holding
 * .txt captions a caption folder, any other folder a class folder. */
int vlp_dataset_open(vlp_dataset *ds, const char *path, const vlp_manifest_opts *opts);
void vlp_dataset_free(vlp_dataset *ds);

/* Sample i's image as RGB. Thread-safe. A shard's images are already
 * resized; a file is decoded with opts. */
int vlp_dataset_image(const vlp_dataset *ds, long i, vlp_image *out, const vlp_image_opts *opts);

/* Writes ds into a packed shard at path: every image centre-cropped and
 * resized to size x size, gzip level 4, one chunk per image. Images that do
 * not decode are skipped with a warning on stderr; *skipped counts them. */
int vlp_shard_pack(const vlp_dataset *ds, const char *path, int size, const vlp_image_opts *opts,
                   long *skipped);

/* Side of a shard's images, or 0 when ds is not packed. */
int vlp_dataset_image_size(const vlp_dataset *ds);

#endif
