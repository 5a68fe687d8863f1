/* The trainer of CLIP, BLIP and GroupViT (train/model.h): one process or W
 * MPI ranks, each with its shard of the data; a step gathers every rank's
 * embeddings so the contrastive loss sees the global batch, accumulates
 * CLIP's micro-batches without losing negatives,
 * all-reduces the flat gradient, clips, and takes an AdamW step. It logs
 * to the run folder (metrics.jsonl), checkpoints, and resumes exactly. */
#ifndef VLP_TRAINER_H
#define VLP_TRAINER_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "autograd/optim.h"
#include "data/loader.h"
#include "data/tokenizer.h"
#include "train/config.h"
#include "train/dist.h"
#include "train/labels.h"
#include "train/model.h"

typedef struct vlp_trainer vlp_trainer;

/* What evaluates a run on [data] val (eval/: vlp_eval_during_training),
 * set by the caller after vlp_trainer_open; NULL: no evaluation. The
 * trainer only says when. */
typedef int (*vlp_trainer_eval_fn)(vlp_trainer *t);

/* What the data cost, from the batches consumed: unreadable images skipped
 * and captions cut, in the epoch in progress (epoch; on rank 0 with a
 * resumed run's counts from before it) and in the last epoch that ended
 * (ended_epoch; -1 until a step ends one). */
typedef struct vlp_trainer_data_cost {
    long epoch, skipped, cut;
    long ended_epoch, ended_skipped, ended_cut;
} vlp_trainer_data_cost;

/* The NaN/Inf guard: the last step was skipped (its loss or gradient norm
 * was not finite on some rank); skipped steps in all and in the current
 * streak, and the first step of that streak; the test hook's poisoned steps. */
typedef struct vlp_trainer_guard {
    bool skipped;
    long bad_steps, streak, streak_start;
    long *nan_steps;
    int n_nan_steps;
} vlp_trainer_guard;

/* A step's micro-batches: images, token ids, group ids, cached features;
 * BLIP's captioning rows with [blip] prompt (NULL: none) and the tokens
 * before the caption. Allocated once by vlp_trainer_open. */
typedef struct vlp_trainer_buffers {
    float *images, *cache_img, *cache_txt;
    int *ids, *groups, *groups_all;
    int *lm_ids, prompt_length, *prompt_ids;
} vlp_trainer_buffers;

struct vlp_trainer {
    vlp_config cfg;
    const vlp_dist *dist;
    vlp_model model;
    vlp_tokenizer *tok;
    char *merges; /* the tokenizer's file text, for checkpoints */
    vlp_dataset data, val; /* val.n == 0: no [data] val */
    char **classnames, **templates; /* [eval] zero-shot prompts */
    int n_classnames, n_templates;
    vlp_loader *loader;
    vlp_tape tape;
    vlp_adamw opt;
    long step, total_steps;
    long next_epoch, next_batch; /* the loader's position after this step */
    float lr, grad_norm;         /* of the last step */
    vlp_trainer_data_cost cost;
    vlp_trainer_guard guard;
    char last_checkpoint[VLP_PATH_MAX]; /* newest checkpoint written or resumed (rank 0) */
    long checkpoint_step;               /* its step; -1: none */
    /* The error vlp_trainer_run returned happened on every rank at the
     * same step (non-finite streak, checkpoint not written): the ranks can
     * end together without MPI_Abort. */
    bool error_on_all_ranks;
    FILE *metrics;
    long metrics_lost_from; /* first step whose metrics line failed to write; -1: none */
    /* Set (by a signal handler) to stop after the current step with a
     * checkpoint; `interrupted` tells the caller it happened. */
    volatile sig_atomic_t *stop;
    bool interrupted;
    char run_dir[VLP_PATH_MAX], checkpoint_dir[VLP_PATH_MAX + 16];
    vlp_trainer_buffers buf;
    vlp_labeler labeler;
    vlp_trainer_eval_fn evaluate;
};

/* Sets everything up from cfg (paths relative to config_path's folder):
 * data, tokenizer (loaded, or learned from the captions), model (OpenCLIP
 * init, or [train] init weights), loader. resume: NULL, "latest" or a
 * checkpoint path. Every rank must call it; ranks check they agree. */
int vlp_trainer_open(vlp_trainer *t, const vlp_config *cfg, const char *config_path,
                     const char *resume, const vlp_dist *dist);
void vlp_trainer_close(vlp_trainer *t);

/* One optimizer step; *loss gets the global batch's loss (mean over ranks).
 * If the loss or the gradient norm is not finite on any rank, every rank
 * skips the update (parameters and AdamW state unchanged), sets t->guard.skipped
 * and counts it; the step still consumes its batch.
 * Test hook: the environment variable VLP_TEST_NAN_STEPS="5,6,7", read
 * once by vlp_trainer_open, puts a NaN into the images of those steps
 * (numbered as logged, from 1). */
int vlp_trainer_step(vlp_trainer *t, float *loss);

/* Steps until total_steps with progress, metrics and checkpoints; or
 * until *stop, after a checkpoint (all ranks stop at the same step). After
 * [train] max_bad_steps non-finite steps in a row it returns
 * VLP_ENONFINITE; no checkpoint is written while such a streak lasts, so
 * the newest one predates it. */
int vlp_trainer_run(vlp_trainer *t);

/* Writes a checkpoint now (rank 0 writes; all ranks call and all get its
 * status, so a full disk stops every rank at the same step). */
int vlp_trainer_checkpoint(vlp_trainer *t);

#endif
