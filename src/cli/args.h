/* The programs' one argument helper: a number given on the command line is
 * read whole and checked against its range. A bad one prints
 * "PROG: OPTION: 'TEXT' is not a whole number in [MIN, MAX]" and the
 * caller then prints its usage line and exits 2, as vlptrain does for a
 * bad config. Not an option parser: each program matches its own options. */
#ifndef VLP_CLI_ARGS_H
#define VLP_CLI_ARGS_H

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline bool vlp_arg_long(const char *prog, const char *opt, const char *text, long min, long max, long *out) {
    char *end = NULL;
    errno = 0;
    long v = text ? strtol(text, &end, 10) : 0;
    if (!text || end == text || *end || errno || v < min || v > max) {
        fprintf(stderr, "%s: %s: '%s' is not a whole number in [%ld, %ld]\n", prog, opt, text ? text : "", min, max);
        return false;
    }
    *out = v;
    return true;
}

static inline bool vlp_arg_int(const char *prog, const char *opt, const char *text, int min, int max, int *out) {
    long v;
    if (!vlp_arg_long(prog, opt, text, min, max, &v)) return false;
    *out = (int)v;
    return true;
}

static inline bool vlp_arg_double(const char *prog, const char *opt, const char *text, double min, double max,
                                  double *out) {
    char *end = NULL;
    errno = 0;
    double v = text ? strtod(text, &end) : 0;
    if (!text || end == text || *end || errno || !isfinite(v) || v < min || v > max) {
        fprintf(stderr, "%s: %s: '%s' is not a number in [%g, %g]\n", prog, opt, text ? text : "", min, max);
        return false;
    }
    *out = v;
    return true;
}

static inline bool vlp_arg_float(const char *prog, const char *opt, const char *text, double min, double max,
                                 float *out) {
    double v;
    if (!vlp_arg_double(prog, opt, text, min, max, &v)) return false;
    *out = (float)v;
    return true;
}

/* Why argument a was not taken, before the caller prints its usage line and
 * exits 2: "PROG: --k needs a value" when a is one of value_options (NULL-
 * terminated: the options that take a value) and none followed, else
 * "PROG: unknown option '--x'", or "PROG: unexpected argument 'x'" for a
 * word when the positional arguments are all there. */
static inline void vlp_arg_reject(const char *prog, const char *a, const char *const *value_options) {
    for (int k = 0; value_options && value_options[k]; k++)
        if (!strcmp(a, value_options[k])) {
            fprintf(stderr, "%s: %s needs a value\n", prog, a);
            return;
        }
    if (a[0] == '-' && a[1]) fprintf(stderr, "%s: unknown option '%s'\n", prog, a);
    else fprintf(stderr, "%s: unexpected argument '%s'\n", prog, a);
}

#endif
