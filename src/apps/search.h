/* An embedding index for image search: every image of a dataset embedded
 * by a CLIP model, stored in HDF5 (/features (N, D), /captions, /paths and
 * the dataset it came from), and queried by text or by image. */
#ifndef VLP_SEARCH_H
#define VLP_SEARCH_H

#include "data/dataset.h"
#include "data/tokenizer.h"
#include "models/clip.h"
#include "train/model.h"
#include "train/weights.h"

typedef struct vlp_index {
    long n;
    int dim;
    float *features; /* (n, dim), L2-normalised */
    char **captions, **paths; /* paths[i] is "" for a packed shard's images */
    char *source;             /* the dataset embedded */
    char *model, *model_id;   /* what made it (path as given, vlp_weights_identity); NULL in older indexes */
} vlp_index;

/* The features (n, dim) and ds's captions and paths (ds holds the n images
 * that were read: vlp_eval_keep_read), and how many of the source's images
 * could not be read (/unreadable), built in memory and written as
 * checkpoints are (vlp_h5_write_image: path.tmp, fsync, rename): a crash or
 * a full disk leaves an earlier index at path whole. */
int vlp_index_save(const char *path, const float *features, long n, int dim, const vlp_dataset *ds,
                   long unreadable, const char *model, const char *model_id);
/* The same layout for texts (one row per text, paths empty): the features
 * vlpembed --texts writes. Both record the model that made the rows: model
 * (its path as given, for messages) and model_id (vlp_weights_identity of
 * its parameters), which vlp_index_check_model compares; NULL model_id
 * records none (as indexes before 2026-12-08). A row that is not finite
 * (NaN or infinity) is refused before anything is written, naming its
 * image or text. */
int vlp_index_save_texts(const char *path, const float *features, long n, int dim, const char *const *texts,
                         const char *source, const char *model, const char *model_id);
/* Reads an index, checking what must agree: as many captions and paths as
 * feature rows, the features stored in full and finite. */
int vlp_index_load(vlp_index *ix, const char *path);

/* Whether m (loaded from model_path) made ix (read from index_path): the
 * width, then the recorded identity. An index of another model is an error
 * naming both; an index that records none (made before vlp recorded one)
 * is searched after a warning on stderr. */
int vlp_index_check_model(const vlp_index *ix, const char *index_path, const vlp_model *m,
                          const char *model_path);
void vlp_index_free(vlp_index *ix);

/* The k best rows (k <= ix->n) for a query feature (dim), by cosine
 * similarity; every one of the k is a row of ix, also when the query or a
 * row holds NaN (ranked last, with score -infinity). A query that is not
 * finite is also an error (VLP_EFORMAT, rows and scores filled all the
 * same): no ranking means anything then. */
int vlp_index_top(const vlp_index *ix, const float *query, int k, long *rows, float *scores);

/* An HTML page: the query, then each hit's image (from the dataset the
 * index was built from), caption and score. */
int vlp_index_gallery(const vlp_index *ix, const char *query, const long *rows,
                      const float *scores, int k, const char *path);

/* A query's features (m->embed_dim floats into out): a text as the
 * model's tokenizer reads it, or an image file preprocessed as the model's
 * [preprocess] says; the same features vlpembed indexes. */
int vlp_search_query(const vlp_model *m, const vlp_tokenizer *tok, const char *text, const char *image, float *out);

#endif
