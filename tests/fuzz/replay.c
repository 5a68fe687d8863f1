/* A main() for the harnesses in the ordinary build: feeds every file of
 * the folders (or files) named on the command line, in name order, to
 * LLVMFuzzerTestOneInput, so ctest replays the regression corpus
 * (fuzz_replay.<name>) without clang or libFuzzer. A harness check or a
 * crash fails the test; the file being replayed is printed first. Not a
 * fuzzer: it never mutates. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    uint8_t *data = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (n == cap) {
            cap = cap ? 2 * cap : 65536;
            uint8_t *grown = realloc(data, cap);
            if (!grown) {
                fprintf(stderr, "%s: out of memory\n", path);
                free(data);
                fclose(f);
                return 1;
            }
            data = grown;
        }
        got = fread(data + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
    /* An exact-size copy, so that reading past the input is caught by the
     * sanitizer build as it is under libFuzzer. */
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) {
        free(data);
        return 1;
    }
    if (n) memcpy(exact, data, n);
    free(data);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s <corpus folder or file>...\n", argv[0]);
        return 2;
    }
    int failed = 0, count = 0;
    for (int a = 1; a < argc; a++) {
        struct stat st;
        if (stat(argv[a], &st) != 0) {
            perror(argv[a]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            failed |= replay_file(argv[a]);
            count++;
            continue;
        }
        DIR *d = opendir(argv[a]);
        if (!d) {
            perror(argv[a]);
            return 1;
        }
        char **names = NULL;
        size_t n = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            names = realloc(names, (n + 1) * sizeof *names);
            if (!names || !(names[n] = strdup(e->d_name))) return 1;
            n++;
        }
        closedir(d);
        if (n) qsort(names, n, sizeof *names, by_name);
        for (size_t i = 0; i < n; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[a], names[i]);
            failed |= replay_file(path);
            count++;
            free(names[i]);
        }
        free(names);
    }
    if (count == 0) {
        fprintf(stderr, "replay: no input found: a corpus folder is empty\n");
        return 1;
    }
    fprintf(stderr, "replay: %d inputs, %s\n", count, failed ? "some unreadable" : "no failure");
    return failed;
}
