/* Checkpoints: HDF5 files holding the parameters (/params/<name>), AdamW's
 * moments (/optim/m/<name>, /optim/v/<name>) and, as attributes, what an
 * exact resume needs: steps, the loader's position, the whole config text,
 * the tokenizer's merges and the build's version. Built in memory, written
 * to a temporary file, fsync'd and renamed (then the folder fsync'd), so at
 * every instant the previous checkpoint is intact, and a full disk is an
 * error naming the file and errno (weights.h). h5dump and h5py read them. */
#ifndef VLP_CHECKPOINT_H
#define VLP_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include "autograd/params.h"
#include "data/tokenizer.h"
#include "models/clip.h"
#include "train/config.h"
#include "train/model.h"

#define VLP_CHECKPOINT_FORMAT 1

typedef struct vlp_checkpoint_meta {
    long step;                      /* optimizer steps done */
    long loader_epoch, loader_step; /* where the next batch comes from */
    long epoch_skipped, epoch_cut;  /* that epoch's counts so far, all ranks (0 if absent) */
    long adam_step;
    long seed;
    char *config;    /* INI text */
    char *tokenizer; /* merges file text */
    char *version;   /* of the build that wrote it */
    /* Saving: model state beyond the parameters (vlp_model_state: BLIP's
     * momentum encoders and queue) under /state, and its ints as
     * /state_ints; NULL / 0: none. Not filled by read_meta. */
    const vlp_params *state;
    const int *state_ints;
    int n_state_ints;
} vlp_checkpoint_meta;

/* Writes dir/step_<step>.h5 (creating dir), then deletes all but the newest
 * `keep`. *written gets the path (size VLP_PATH_MAX). */
int vlp_checkpoint_save(const char *dir, const vlp_params *p, const vlp_checkpoint_meta *m,
                        int keep, char *written);

/* Deletes the .tmp files of checkpoint writes a crash or kill cut short. */
void vlp_checkpoint_remove_partial(const char *dir);
/* Whether dir holds a checkpoint file; and removing them all (a run
 * started over with [log] overwrite). */
bool vlp_checkpoint_any(const char *dir);
void vlp_checkpoint_remove_all(const char *dir);

/* The newest readable checkpoint in dir; unreadable newer ones are reported
 * on stderr and passed over. VLP_ENOTFOUND when there is none. */
int vlp_checkpoint_latest(const char *dir, char *path, size_t size);

/* Reads the attributes (strings malloc'd; free with vlp_checkpoint_meta_free). */
int vlp_checkpoint_read_meta(const char *path, vlp_checkpoint_meta *m);
void vlp_checkpoint_meta_free(vlp_checkpoint_meta *m);

/* Reads parameters, and AdamW's moments when with_optim; every tensor
 * checked by name and shape (a checkpoint of another architecture fails
 * naming the first tensor that differs). */
int vlp_checkpoint_load(const char *path, vlp_params *p, bool with_optim);

/* Reads what save wrote from meta.state and meta.state_ints: every tensor
 * of state, by name and shape, and n ints. */
int vlp_checkpoint_load_state(const char *path, vlp_params *state, int *ints, int n);


/* A trained model of any [model] kind for inference, from a checkpoint
 * file, a run folder (its config.ini, tokenizer.bpe and model.h5), or a
 * model file (weights at the root, as model.h5) with the config.ini and
 * tokenizer.bpe beside it; a model file without them is an error saying
 * what to pass. Weights holding NaN or infinity are refused (weights.h). */
int vlp_model_load(const char *path, vlp_model *m, vlp_tokenizer **tok);

/* The same for a CLIP model only (vlpsearch, vlpreport); another kind is
 * an error naming it. */
int vlp_model_open(const char *path, vlp_clip *m, vlp_tokenizer **tok);

#endif
