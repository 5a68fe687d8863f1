/* What every libFuzzer harness of tests/fuzz/ shares: a private temporary
 * folder made once per process (and emptied at exit), files written into it,
 * an input size bound and a check that aborts, which libFuzzer reports as a
 * crash and replay.c as a failed test. Not a test framework. */
#ifndef VLP_FUZZ_UTIL_H
#define VLP_FUZZ_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Inputs above this are skipped: the parsers' own limits (pixels, lines)
 * must be what bounds the work, not the size of what libFuzzer makes. */
#define FUZZ_MAX_INPUT (1 << 20)

#define FUZZ_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz check failed: %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            abort();                                                           \
        }                                                                      \
    } while (0)

static char fuzz_dir_path[512];

static inline void fuzz_dir_remove(void) {
    DIR *d = opendir(fuzz_dir_path);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", fuzz_dir_path, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(fuzz_dir_path);
}

/* The process's own folder, $TMPDIR/vlp-fuzz-<name>-XXXXXX, made on the
 * first call; every file a harness writes goes here. */
static inline const char *fuzz_dir(const char *name) {
    if (!fuzz_dir_path[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/vlp-fuzz-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp",
                 name);
        if (!mkdtemp(fuzz_dir_path)) {
            perror(fuzz_dir_path);
            abort();
        }
        atexit(fuzz_dir_remove);
    }
    return fuzz_dir_path;
}

/* Writes bytes to <fuzz_dir>/file (fuzz_dir called first); its path goes
 * to path. */
static inline void fuzz_write(char *path, size_t path_size, const char *file, const void *bytes, size_t n) {
    snprintf(path, path_size, "%s/%s", fuzz_dir_path, file);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(path);
        abort();
    }
    const char *p = bytes;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            perror(path);
            abort();
        }
        p += w, n -= (size_t)w;
    }
    close(fd);
}

/* A NUL-terminated copy of data[0..n) (malloc'd). */
static inline char *fuzz_strndup(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    FUZZ_CHECK(s != NULL, "out of memory");
    if (n) memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

/* FNV-1a: harness parameters (output sizes, flags) derived from the input
 * itself, so an input file alone replays the same run. */
static inline uint64_t fuzz_hash(const uint8_t *data, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ data[i]) * 1099511628211ull;
    return h;
}

#endif
