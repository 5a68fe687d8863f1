/* Seeded, splittable random numbers (xoshiro256** seeded through splitmix64).
 * A generator is split by a stream number (rank, purpose) into an independent
 * child that depends only on the parent's seed, never on how much of the
 * parent was consumed: runs are reproducible whatever the order of use. */
#ifndef VLP_RNG_H
#define VLP_RNG_H

#include <stdint.h>

typedef struct vlp_rng {
    uint64_t s[4];
    uint64_t seed; /* what split() derives children from */
} vlp_rng;

/* Purposes for vlp_rng_split, so two uses never share a stream. */
enum vlp_rng_stream {
    VLP_RNG_STREAM_INIT = 1,    /* parameter initialisation */
    VLP_RNG_STREAM_DATA = 2,    /* shuffling and augmentation */
    VLP_RNG_STREAM_DROPOUT = 3, /* dropout masks */
    VLP_RNG_STREAM_GUMBEL = 4,  /* gumbel noise */
    VLP_RNG_STREAM_SAMPLE = 5,  /* hard negatives, decoding */
};

void vlp_rng_init(vlp_rng *r, uint64_t seed);
/* Child generator for `stream`; split again for nested purposes (rank, then use). */
vlp_rng vlp_rng_split(const vlp_rng *parent, uint64_t stream);

uint64_t vlp_rng_u64(vlp_rng *r);
/* Uniform in [0, n), without modulo bias. n > 0. */
uint64_t vlp_rng_below(vlp_rng *r, uint64_t n);
/* Uniform float in [0, 1) with 24 random bits. */
float vlp_rng_uniform(vlp_rng *r);
/* Standard normal (Box-Muller, computed in double). */
float vlp_rng_normal(vlp_rng *r);

void vlp_rng_fill_uniform(vlp_rng *r, float *x, long n, float lo, float hi);
void vlp_rng_fill_normal(vlp_rng *r, float *x, long n, float mean, float std);

#endif
