/* Checked allocation (see mem.h): aborts with size and call site. */
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"

void *vlp_malloc_at(size_t size, const char *file, int line) {
    void *p = malloc(size ? size : 1);
    if (!p) vlp_fatal(file, line, "out of memory for %zu bytes", size);
    return p;
}

void *vlp_calloc_at(size_t n, size_t size, const char *file, int line) {
    if (size && n > (size_t)-1 / size) vlp_fatal(file, line, "out of memory for %zu x %zu bytes", n, size);
    void *p = calloc(n && size ? n : 1, n && size ? size : 1);
    if (!p) vlp_fatal(file, line, "out of memory for %zu x %zu bytes", n, size);
    return p;
}

void *vlp_realloc_at(void *p, size_t size, const char *file, int line) {
    void *q = realloc(p, size ? size : 1);
    if (!q) vlp_fatal(file, line, "out of memory for %zu bytes", size);
    return q;
}

char *vlp_strdup_at(const char *s, const char *file, int line) {
    size_t n = strlen(s) + 1;
    return memcpy(vlp_malloc_at(n, file, line), s, n);
}

void *vlp_aligned_alloc_at(size_t align, size_t size, const char *file, int line) {
    void *p = NULL;
    if (posix_memalign(&p, align, size ? size : 1) != 0)
        vlp_fatal(file, line, "out of memory for %zu bytes aligned to %zu", size, align);
    return p;
}
