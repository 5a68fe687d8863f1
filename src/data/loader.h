/* The prefetching loader: worker threads decode and augment the next
 * batches while the step runs. Order is a pure function of (seed, epoch),
 * so a run resumes exactly from (epoch, step); each rank of W takes its
 * own disjoint slice of every global batch. A sample whose image does not
 * decode is skipped with a warning, replaced by the next sample of the
 * epoch's order, and counted. Given a tokenizer, the workers also encode
 * the captions, and count those longer than the context (cut, as CLIP
 * does; the first one is shown). Not the dataset formats: see dataset.h. */
#ifndef VLP_LOADER_H
#define VLP_LOADER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "data/dataset.h"
#include "data/tokenizer.h"

typedef struct vlp_loader_opts {
    int batch_size; /* per rank */
    int image_size;
    int workers;    /* decoding threads, >= 1 */
    int prefetch;   /* batches decoded ahead; 0: 2 per worker */
    uint64_t seed;
    int rank, world;
    bool shuffle, drop_last, augment;
    float crop_min, crop_max, flip; /* augment: RandomResizedCrop scale, flip probability */
    float color_jitter, grayscale;  /* augment: jitter strength, grayscale probability */
    float blur, posterize;          /* augment: probabilities of a Gaussian blur, of 3-bit colour */
    float mean[3], std[3];
    int interpolation, resize_mode; /* VLP_INTERP_*, VLP_RESIZE_* (image.h) */
    vlp_image_opts image;
    /* Optional: batches then carry the captions' ids (context_length >= 2
     * each, vlp_tokenizer_encode). Must outlive the loader. */
    const vlp_tokenizer *tokenizer;
    int context_length;
} vlp_loader_opts;

/* Training defaults: shuffled, drop_last, OpenCLIP's crop scale (0.9, 1),
 * no flip, CLIP's mean and std, one worker, world of 1. */
vlp_loader_opts vlp_loader_defaults(int batch_size, int image_size);

typedef struct vlp_batch {
    long epoch, step;     /* position of this batch */
    int n;                /* samples: batch_size, or fewer in a last partial step */
    float *images;        /* (n, 3, S, S), normalised */
    long *index;          /* dataset index of each sample */
    const char **caption; /* the dataset's captions */
    int *ids;             /* (n, context_length) with a tokenizer, else NULL */
    /* At this batch's positions of the epoch's order: unreadable images
     * passed over (each counted once, where it stands in the order) and
     * captions cut to the context. Per batch, so counts follow the batches
     * a run consumed, and resume with them. */
    int skipped, cut;
    int *class_id, *concept_id;
} vlp_batch;

typedef struct vlp_loader vlp_loader;

/* Starts the workers at (epoch, step). ds must outlive the loader. */
int vlp_loader_open(vlp_loader **out, const vlp_dataset *ds, const vlp_loader_opts *opts,
                    long epoch, long step);
/* The next batch, waiting for it if needed; valid until the next call.
 * Fails only when no sample of the dataset can be read. */
int vlp_loader_next(vlp_loader *l, vlp_batch **batch);
void vlp_loader_close(vlp_loader *l);

long vlp_loader_steps_per_epoch(const vlp_loader *l);

/* The order of an epoch: 0..n-1, shuffled from (seed, epoch) when asked. */
void vlp_epoch_order(long *order, long n, uint64_t seed, long epoch, bool shuffle);
/* Positions in the epoch's order that rank takes at step (a global batch of
 * world * batch_size; in a last partial step, when not drop_last, position
 * k goes to rank k mod world). Returns how many (0 past the epoch's end). */
int vlp_rank_positions(long *pos, long n, int world, int batch_size, int rank, bool drop_last,
                       long step);
long vlp_steps_per_epoch(long n, int world, int batch_size, bool drop_last);

#endif
