/* An embedding index for image search: every image of a dataset embedded
 * by a CLIP model, stored in HDF5 (/features (N, D), /captions, /paths and
 * the dataset it came from), and queried by text or by image. */
#ifndef VLP_SEARCH_H
#define VLP_SEARCH_H

#include "data/dataset.h"
#include "data/tokenizer.h"
#include "models/clip.h"

typedef struct vlp_index {
    long n;
    int dim;
    float *features; /* (n, dim), L2-normalised */
    char **captions, **paths; /* paths[i] is "" for a packed shard's images */
    char *source;             /* the dataset embedded */
} vlp_index;

/* The features (n, dim) and ds's captions and paths (ds holds the n images
 * that were read: vlp_eval_keep_read), and how many of the source's images
 * could not be read (/unreadable), built in memory and written as
 * checkpoints are (vlp_h5_write_image: path.tmp, fsync, rename): a crash or
 * a full disk leaves an earlier index at path whole. */
int vlp_index_save(const char *path, const float *features, long n, int dim, const vlp_dataset *ds,
                   long unreadable);
/* The same layout for texts (one row per text, paths empty): the features
 * vlpembed --texts writes. */
int vlp_index_save_texts(const char *path, const float *features, long n, int dim, const char *const *texts,
                         const char *source);
int vlp_index_load(vlp_index *ix, const char *path);
void vlp_index_free(vlp_index *ix);

/* The k best rows for a query feature (dim), by cosine similarity. */
void vlp_index_top(const vlp_index *ix, const float *query, int k, long *rows, float *scores);

/* An HTML page: the query, then each hit's image (from the dataset the
 * index was built from), caption and score. */
int vlp_index_gallery(const vlp_index *ix, const char *query, const long *rows,
                      const float *scores, int k, const char *path);

#endif
