/* Reading a PyTorch reference's golden HDF5 file (scripts/clip_ref.py, blip_ref.py) in the
 * Check suites: datasets, the config group's attributes, and the relative
 * error vlp's results are held to. Static functions: one copy per suite. */
#ifndef VLP_TESTS_GOLDEN_H
#define VLP_TESTS_GOLDEN_H

#include <hdf5.h>
#include <math.h>
#include <stdio.h>

#include "testutil.h"

static long read_array(hid_t f, const char *name, hid_t type, void *buf, long cap) {
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    ck_assert_msg(ds >= 0, "golden file has no %s", name);
    hid_t space = H5Dget_space(ds);
    long n = (long)H5Sget_simple_extent_npoints(space);
    ck_assert_msg(n <= cap, "%s has %ld elements, room for %ld", name, n, cap);
    ck_assert(H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Sclose(space);
    H5Dclose(ds);
    return n;
}

static double attr_number(hid_t f, const char *name) {
    double v = 0;
    hid_t a = H5Aopen_by_name(f, "config", name, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_msg(a >= 0, "golden config has no %s", name);
    ck_assert(H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0);
    H5Aclose(a);
    return v;
}

static double max_abs_error(const float *got, const float *want, long n) {
    double err = 0;
    for (long i = 0; i < n; i++) err = fmax(err, fabs((double)got[i] - want[i]));
    return err;
}

/* max |got - want| / max(max |want|, floor) */
static double rel_error_floor(const float *got, const float *want, long n, double floor) {
    double scale = floor;
    for (long i = 0; i < n; i++) scale = fmax(scale, fabs((double)want[i]));
    return max_abs_error(got, want, n) / scale;
}

/* Prints and returns the relative error (measured against at least floor:
 * a tensor whose exact value is 0 holds rounding noise only); fails the
 * test above tol. */
static double expect_match_floor(const char *what, const float *got, const float *want, long n,
                                 double tol, double floor) {
    double err = rel_error_floor(got, want, n, floor);
    printf("  %-60s error %.2e (abs %.2e)\n", what, err, max_abs_error(got, want, n));
    ck_assert_msg(err <= tol, "%s differs from PyTorch: relative error %.3g > %.0e", what, err, tol);
    return err;
}

static double expect_match(const char *what, const float *got, const float *want, long n, double tol) {
    return expect_match_floor(what, got, want, n, tol, 1e-30);
}

#endif
