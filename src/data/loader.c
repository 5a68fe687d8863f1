/* Prefetching loader (see loader.h). Batches are numbered from the start
 * position; batch b goes to slot b % prefetch, so workers fill slots in any
 * order while the consumer takes them in order. */
#include "data/loader.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"

void vlp_epoch_order(long *order, long n, uint64_t seed, long epoch, bool shuffle) {
    for (long i = 0; i < n; i++) order[i] = i;
    if (!shuffle) return;
    vlp_rng root, data, rng;
    vlp_rng_init(&root, seed);
    data = vlp_rng_split(&root, VLP_RNG_STREAM_DATA);
    rng = vlp_rng_split(&data, (uint64_t)epoch);
    for (long i = n - 1; i > 0; i--) { /* Fisher-Yates */
        long j = (long)vlp_rng_below(&rng, (uint64_t)i + 1);
        long t = order[i];
        order[i] = order[j], order[j] = t;
    }
}

long vlp_steps_per_epoch(long n, int world, int batch_size, bool drop_last) {
    long global = (long)world * batch_size;
    return n / global + (!drop_last && n % global ? 1 : 0);
}

int vlp_rank_positions(long *pos, long n, int world, int batch_size, int rank, bool drop_last,
                       long step) {
    long global = (long)world * batch_size, full = n / global;
    if (step < full) {
        for (int j = 0; j < batch_size; j++) pos[j] = step * global + (long)rank * batch_size + j;
        return batch_size;
    }
    if (drop_last || step > full) return 0;
    int count = 0;
    for (long p = full * global + rank; p < n; p += world) pos[count++] = p;
    return count;
}

/* ---- the threaded loader ------------------------------------------------------ */

enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_READY };

typedef struct slot {
    vlp_batch batch;
    long number; /* which batch it holds */
    enum slot_state state;
} slot;

typedef struct epoch_order {
    long epoch; /* -1: empty */
    long *order;
} epoch_order;

struct vlp_loader {
    const vlp_dataset *ds;
    vlp_loader_opts o;
    long start_epoch, start_step, steps; /* steps per epoch */
    slot *slots;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    long next_fill, released; /* batches claimed by workers / given back by the consumer */
    bool holding, stop;
    int error;       /* a worker's fatal error (VLP_OK if none) */
    char message[8192];
    epoch_order orders[2]; /* the epochs in flight: at most two at once */
    bool warned_cut; /* the first cut caption is shown, the rest counted */
    bool *bad; /* per sample: unreadable, not to be decoded or reported again */
    vlp_rng data;
};

long vlp_loader_steps_per_epoch(const vlp_loader *l) { return l->steps; }

/* Under the lock: the order of `epoch`, computing it into the older cache entry. */
static const long *order_of(vlp_loader *l, long epoch) {
    for (int i = 0; i < 2; i++)
        if (l->orders[i].epoch == epoch) return l->orders[i].order;
    epoch_order *e = l->orders[0].epoch < l->orders[1].epoch ? &l->orders[0] : &l->orders[1];
    vlp_epoch_order(e->order, l->ds->n, l->o.seed, epoch, l->o.shuffle);
    e->epoch = epoch;
    return e->order;
}

/* The caption of batch row j into its ids; a caption that fills the
 * context is tokenized again to learn whether it was cut. */
static int encode_caption(vlp_loader *l, vlp_batch *b, int j) {
    int ctx = l->o.context_length, n, all;
    const char *text = b->caption[j];
    int rc = vlp_tokenizer_encode(l->o.tokenizer, text, b->ids + (long)j * ctx, ctx, &n);
    if (rc == VLP_OK && n == ctx) rc = vlp_tokenizer_tokens(l->o.tokenizer, text, NULL, 0, &all);
    if (rc != VLP_OK || n < ctx || all <= ctx - 2) return rc;
    b->cut++;
    pthread_mutex_lock(&l->lock);
    bool warn = !l->warned_cut;
    l->warned_cut = true;
    pthread_mutex_unlock(&l->lock);
    if (warn)
        fprintf(stderr,
                "vlp: warning: %s: the caption of sample %ld has %d tokens, more than the %d a context "
                "of %d holds with SOT and EOT: its first %d are kept (cut captions are counted per epoch)\n",
                l->ds->source, b->index[j], all, ctx - 2, ctx, ctx - 2);
    return VLP_OK;
}

/* Decodes and transforms one image into the batch at row j. */
static int load_one(vlp_loader *l, long index, long epoch, float *dst) {
    vlp_image img, out = {0};
    int rc = vlp_dataset_image(l->ds, index, &img, &l->o.image);
    if (rc != VLP_OK) return rc;
    int S = l->o.image_size;
    if (l->o.augment) {
        /* Augmentation draws depend on (seed, epoch, sample) only. */
        vlp_rng per_epoch = vlp_rng_split(&l->data, (uint64_t)epoch);
        vlp_rng rng = vlp_rng_split(&per_epoch, (uint64_t)index);
        rc = vlp_image_random_resized_crop(&out, &img, S, l->o.crop_min, l->o.crop_max, l->o.flip,
                                           l->o.interpolation, &rng);
        float j = l->o.color_jitter;
        if (rc == VLP_OK) vlp_image_color_jitter(&out, j, j, j, l->o.grayscale, &rng);
        /* each draws nothing when off, so older runs keep their draws */
        if (rc == VLP_OK && l->o.blur > 0.0f && vlp_rng_uniform(&rng) < l->o.blur)
            rc = vlp_image_blur(&out, 0.1f + 1.9f * (float)vlp_rng_uniform(&rng));
        if (rc == VLP_OK && l->o.posterize > 0.0f && vlp_rng_uniform(&rng) < l->o.posterize)
            vlp_image_posterize(&out, 3);
    } else if (img.w == S && img.h == S) { /* torchvision returns it as it is: no copy */
        out.w = out.h = S, out.rgb = img.rgb, img.rgb = NULL;
    } else {
        rc = vlp_image_eval_transform(&out, &img, S, l->o.interpolation, l->o.resize_mode);
    }
    vlp_image_free(&img);
    if (rc != VLP_OK) return vlp_image_free(&out), rc;
    vlp_image_normalize(dst, out.rgb, S, l->o.mean, l->o.std);
    vlp_image_free(&out);
    return VLP_OK;
}

/* Under the lock: a worker's fatal error, which the consumer then returns
 * (the first one, if several workers fail). */
__attribute__((format(printf, 3, 4))) static void fail(vlp_loader *l, int code, const char *fmt, ...) {
    if (l->error) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->message, sizeof l->message, fmt, ap);
    va_end(ap);
    l->error = code;
    pthread_cond_broadcast(&l->changed);
}

static void fill(vlp_loader *l, slot *s, long number) {
    vlp_batch *b = &s->batch;
    long global_step = l->start_step + number;
    b->epoch = l->start_epoch + global_step / l->steps;
    b->step = global_step % l->steps;
    long pos[l->o.batch_size > 0 ? l->o.batch_size : 1];
    b->skipped = b->cut = 0;
    b->n = vlp_rank_positions(pos, l->ds->n, l->o.world, l->o.batch_size, l->o.rank,
                              l->o.drop_last, b->step);
    long image_floats = 3L * l->o.image_size * l->o.image_size;
    for (int j = 0; j < b->n; j++) {
        /* An unreadable image gives way to the next sample of the order. */
        for (long tries = 0; tries < l->ds->n; tries++) {
            long p = (pos[j] + tries) % l->ds->n;
            pthread_mutex_lock(&l->lock);
            long index = order_of(l, b->epoch)[p];
            bool stopping = l->stop || l->error, known_bad = l->bad[index];
            pthread_mutex_unlock(&l->lock);
            if (stopping) return;
            if (!known_bad && load_one(l, index, b->epoch, b->images + j * image_floats) == VLP_OK) {
                const vlp_sample *smp = &l->ds->samples[index];
                b->index[j] = index;
                b->caption[j] = smp->caption;
                b->class_id[j] = smp->class_id;
                b->concept_id[j] = smp->concept_id;
                int rc = l->o.tokenizer ? encode_caption(l, b, j) : VLP_OK;
                if (rc != VLP_OK) {
                    pthread_mutex_lock(&l->lock);
                    fail(l, rc, "%s", vlp_error_message());
                    pthread_mutex_unlock(&l->lock);
                    return;
                }
                break;
            }
            if (!known_bad) fprintf(stderr, "vlp: warning: skipped %s\n", vlp_error_message());
            pthread_mutex_lock(&l->lock);
            l->bad[index] = true;
            /* Each index holds one position of an epoch's order: counting it
             * there (not where it stood in for another) counts it once. */
            if (tries == 0) b->skipped++;
            if (tries + 1 == l->ds->n)
                fail(l, VLP_EFORMAT, "%s: no image of the dataset can be read", l->ds->source);
            pthread_mutex_unlock(&l->lock);
        }
    }
}

static void *worker(void *arg) {
    vlp_loader *l = arg;
    pthread_mutex_lock(&l->lock);
    for (;;) {
        while (!l->stop && !l->error && l->next_fill >= l->released + l->o.prefetch)
            pthread_cond_wait(&l->changed, &l->lock);
        if (l->stop || l->error) break;
        long number = l->next_fill++;
        slot *s = &l->slots[number % l->o.prefetch];
        s->state = SLOT_FILLING;
        s->number = number;
        pthread_mutex_unlock(&l->lock);
        fill(l, s, number);
        pthread_mutex_lock(&l->lock);
        s->state = SLOT_READY;
        pthread_cond_broadcast(&l->changed);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

vlp_loader_opts vlp_loader_defaults(int batch_size, int image_size) {
    vlp_loader_opts o = {.batch_size = batch_size, .image_size = image_size, .workers = 1,
                         .seed = 0, .rank = 0, .world = 1, .shuffle = true, .drop_last = true,
                         .augment = true, .crop_min = 0.9f, .crop_max = 1.0f, .flip = 0.0f,
                         .image = vlp_image_opts_default()};
    memcpy(o.mean, VLP_CLIP_MEAN, sizeof o.mean);
    memcpy(o.std, VLP_CLIP_STD, sizeof o.std);
    return o;
}

/* A shard packed smaller than the model's input is upsampled: allowed (a
 * quick experiment may want it) but never silent. Once per shard and
 * process (evaluation opens a loader each time), from rank 0. */
static void warn_upsampling(const vlp_dataset *ds, int image_size, int rank) {
    static char warned[4][512];
    static int n_warned;
    int S = vlp_dataset_image_size(ds);
    if (!S || S >= image_size || rank != 0) return;
    const char *source = ds->source ? ds->source : "the shard"; /* a view may have none */
    for (int i = 0; i < n_warned; i++)
        if (!strncmp(warned[i], source, sizeof warned[i] - 1)) return;
    if (n_warned < 4) snprintf(warned[n_warned++], sizeof warned[0], "%s", source);
    fprintf(stderr,
            "vlp: warning: %s: its images are %dx%d, smaller than the model's %dx%d: they are upsampled "
            "(pack the shard at %d to train on what the model sees)\n",
            source, S, S, image_size, image_size, image_size);
}

int vlp_loader_open(vlp_loader **out, const vlp_dataset *ds, const vlp_loader_opts *opts,
                    long epoch, long step) {
    *out = NULL;
    vlp_loader_opts o = *opts;
    if (o.batch_size < 1 || o.image_size < 1 || o.workers < 1 || o.world < 1 || o.rank < 0 ||
        o.rank >= o.world)
        return vlp_error_set(VLP_EINVAL, "loader: batch %d, image %d, %d workers, rank %d of %d",
                             o.batch_size, o.image_size, o.workers, o.rank, o.world);
    if (o.tokenizer && o.context_length < 2)
        return vlp_error_set(VLP_EINVAL, "loader: context length %d leaves no room for SOT and EOT",
                             o.context_length);
    if (o.prefetch < 1) o.prefetch = 2 * o.workers;
    long steps = vlp_steps_per_epoch(ds->n, o.world, o.batch_size, o.drop_last);
    if (steps == 0)
        return vlp_error_set(VLP_EINVAL, "%s: %ld samples make no batch of %d x %d ranks",
                             ds->source, ds->n, o.batch_size, o.world);
    warn_upsampling(ds, o.image_size, o.rank);
    vlp_loader *l = vlp_calloc(1, sizeof *l);
    *l = (vlp_loader){.ds = ds, .o = o, .start_epoch = epoch + step / steps,
                      .start_step = step % steps, .steps = steps};
    vlp_rng root;
    vlp_rng_init(&root, o.seed);
    vlp_rng data = vlp_rng_split(&root, VLP_RNG_STREAM_DATA);
    l->data = vlp_rng_split(&data, 0x617567); /* augmentation, apart from shuffling */
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->changed, NULL);
    for (int i = 0; i < 2; i++)
        l->orders[i] = (epoch_order){.epoch = -1 - i, .order = vlp_malloc((size_t)ds->n * sizeof(long))};
    l->bad = vlp_calloc((size_t)ds->n, sizeof *l->bad);
    l->slots = vlp_calloc((size_t)o.prefetch, sizeof *l->slots);
    long B = o.batch_size, image_floats = 3L * o.image_size * o.image_size;
    for (int i = 0; i < o.prefetch; i++) {
        vlp_batch *b = &l->slots[i].batch;
        b->images = vlp_malloc((size_t)(B * image_floats) * sizeof(float));
        b->index = vlp_malloc((size_t)B * sizeof *b->index);
        b->caption = vlp_malloc((size_t)B * sizeof *b->caption);
        b->class_id = vlp_malloc((size_t)B * sizeof *b->class_id);
        b->concept_id = vlp_malloc((size_t)B * sizeof *b->concept_id);
        b->ids = o.tokenizer ? vlp_malloc((size_t)(B * o.context_length) * sizeof *b->ids) : NULL;
    }
    l->threads = vlp_calloc((size_t)o.workers, sizeof *l->threads);
    for (int i = 0; i < o.workers; i++) pthread_create(&l->threads[i], NULL, worker, l);
    *out = l;
    return VLP_OK;
}

int vlp_loader_next(vlp_loader *l, vlp_batch **batch) {
    pthread_mutex_lock(&l->lock);
    if (l->holding) { /* the previous batch's slot is free again */
        l->slots[l->released % l->o.prefetch].state = SLOT_FREE;
        l->released++;
        l->holding = false;
        pthread_cond_broadcast(&l->changed);
    }
    slot *s = &l->slots[l->released % l->o.prefetch];
    while (!l->error && !(s->state == SLOT_READY && s->number == l->released))
        pthread_cond_wait(&l->changed, &l->lock);
    int rc = l->error;
    if (rc == VLP_OK) {
        l->holding = true;
        *batch = &s->batch;
    } else {
        vlp_error_set(rc, "%s", l->message);
    }
    pthread_mutex_unlock(&l->lock);
    return rc;
}

void vlp_loader_close(vlp_loader *l) {
    if (!l) return;
    pthread_mutex_lock(&l->lock);
    l->stop = true;
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->lock);
    for (int i = 0; i < l->o.workers; i++) pthread_join(l->threads[i], NULL);
    for (int i = 0; i < l->o.prefetch; i++) {
        vlp_batch *b = &l->slots[i].batch;
        free(b->images), free(b->index), free(b->caption), free(b->class_id), free(b->concept_id);
        free(b->ids);
    }
    for (int i = 0; i < 2; i++) free(l->orders[i].order);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->changed);
    free(l->slots);
    free(l->threads);
    free(l->bad);
    free(l);
}
