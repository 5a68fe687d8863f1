/* Output paths checked before any work (see output.h). */
#include "base/output.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"

static const char *kind_of(mode_t m) {
    return S_ISDIR(m) ? "a folder" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device"
           : S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : S_ISLNK(m) ? "a symbolic link"
           : "not a regular file";
}

static bool same(const struct stat *a, const struct stat *b) {
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* The files of a run folder that an output must not replace. */
static const char *const RUN_FILES[] = {"model.h5", "config.ini", "tokenizer.bpe", "metrics.jsonl"};

/* VLP_EINVAL if out (stat'ed) is input, or a run file of the folder input. */
static int against_inputs(const char *option, const char *path, const struct stat *out, bool out_is_dir,
                          const char *const *inputs, int n) {
    for (int i = 0; i < n; i++) {
        const char *in = inputs[i];
        struct stat st;
        if (!in || !in[0] || stat(in, &st) != 0) continue;
        if (same(out, &st) && out_is_dir)
            return vlp_error_set(VLP_EINVAL, "%s %s is the input %s: give another folder to write into", option,
                                 path, in);
        if (same(out, &st))
            return vlp_error_set(VLP_EINVAL, "%s %s is the input %s: writing it would destroy it; give another path",
                                 option, path, in);
        if (!S_ISDIR(st.st_mode) || out_is_dir) continue;
        for (size_t k = 0; k < sizeof RUN_FILES / sizeof RUN_FILES[0]; k++) {
            char file[4200];
            struct stat fs;
            snprintf(file, sizeof file, "%s/%s", in, RUN_FILES[k]);
            if (stat(file, &fs) == 0 && same(out, &fs))
                return vlp_error_set(VLP_EINVAL, "%s %s is the input %s: writing it would destroy it; give another path",
                                     option, path, file);
        }
    }
    return VLP_OK;
}

int vlp_output_check(const char *option, const char *path, const char *const *inputs, int n_inputs) {
    if (!path || !strcmp(path, "-")) return VLP_OK;
    if (!path[0]) return vlp_error_set(VLP_EINVAL, "%s: an empty path; give a file to write", option);
    struct stat st;
    if (stat(path, &st) != 0) return VLP_OK; /* a new file: whether it can be written shows when it is */
    if (!S_ISREG(st.st_mode))
        return vlp_error_set(VLP_EINVAL, "%s %s: %s, not a file it could write", option, path, kind_of(st.st_mode));
    return against_inputs(option, path, &st, false, inputs, n_inputs);
}

int vlp_output_check_dir(const char *option, const char *path, const char *const *inputs, int n_inputs) {
    if (!path) return VLP_OK;
    if (!path[0]) return vlp_error_set(VLP_EINVAL, "%s: an empty path; give a folder to write into", option);
    struct stat st;
    if (stat(path, &st) != 0) return VLP_OK;
    if (!S_ISDIR(st.st_mode))
        return vlp_error_set(VLP_EINVAL, "%s %s: exists and is not a folder", option, path);
    return against_inputs(option, path, &st, true, inputs, n_inputs);
}

void vlp_output_remove_stale_tmp(const char *path) {
    char tmp[4200];
    struct stat st;
    if (!path || snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return;
    if (lstat(tmp, &st) == 0 && S_ISREG(st.st_mode)) unlink(tmp);
}
