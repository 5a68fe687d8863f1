/* A progress line for long work: step/total, the caller's fields (loss, lr),
 * items per second and ETA. On a terminal it rewrites one line in place;
 * otherwise (logs, CI) it prints a plain line every `every` steps, or every
 * ten seconds when every is 0. */
#ifndef VLP_PROGRESS_H
#define VLP_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

typedef struct vlp_progress {
    FILE *out;
    long total;           /* steps */
    long first;           /* steps done before this process began (a resumed run): not in the rate */
    double items_per_step; /* samples per step, for the rate */
    const char *unit;     /* "samples", "images" */
    double start, last_print;
    long every;
    bool tty;
} vlp_progress;

void vlp_progress_init(vlp_progress *p, FILE *out, long total, double items_per_step,
                       const char *unit, long every);

/* After `done` steps; fields is printf-formatted ("loss %.4f"). Prints only
 * when due, always for the last step. */
void vlp_progress_update(vlp_progress *p, long done, const char *fields, ...)
    __attribute__((format(printf, 3, 4)));

/* Seconds since init. */
double vlp_progress_elapsed(const vlp_progress *p);

#endif
