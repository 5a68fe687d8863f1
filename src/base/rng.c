/* xoshiro256** (Blackman & Vigna, 2018) with splitmix64 seeding. */
#include "base/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void vlp_rng_init(vlp_rng *r, uint64_t seed) {
    uint64_t x = seed;
    r->seed = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

vlp_rng vlp_rng_split(const vlp_rng *parent, uint64_t stream) {
    /* Two rounds of mixing so that nearby (seed, stream) pairs diverge. */
    uint64_t x = parent->seed ^ 0x5851f42d4c957f2dull;
    uint64_t a = splitmix64(&x);
    x = a ^ (stream * 0xd1342543de82ef95ull);
    vlp_rng child;
    vlp_rng_init(&child, splitmix64(&x));
    return child;
}

uint64_t vlp_rng_u64(vlp_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t vlp_rng_below(vlp_rng *r, uint64_t n) {
    /* Rejection from the largest multiple of n below 2^64. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = vlp_rng_u64(r);
    while (x >= limit);
    return x % n;
}

float vlp_rng_uniform(vlp_rng *r) { return (float)(vlp_rng_u64(r) >> 40) * 0x1.0p-24f; }

float vlp_rng_normal(vlp_rng *r) {
    double u1 = ((double)(vlp_rng_u64(r) >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
    double u2 = (double)(vlp_rng_u64(r) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

void vlp_rng_fill_uniform(vlp_rng *r, float *x, long n, float lo, float hi) {
    for (long i = 0; i < n; i++) x[i] = lo + (hi - lo) * vlp_rng_uniform(r);
}

void vlp_rng_fill_normal(vlp_rng *r, float *x, long n, float mean, float std) {
    for (long i = 0; i < n; i++) x[i] = mean + std * vlp_rng_normal(r);
}
