/* The one rule for running out of memory (../shared/GUIDE.md): a size that
 * comes from input is validated before allocating and refused with an error
 * naming the input; every allocation goes through these, which abort with
 * the size and the call site when the system has no memory left. */
#ifndef VLP_MEM_H
#define VLP_MEM_H

#include <stddef.h>

void *vlp_malloc_at(size_t size, const char *file, int line);
void *vlp_calloc_at(size_t n, size_t size, const char *file, int line);
void *vlp_realloc_at(void *p, size_t size, const char *file, int line);
char *vlp_strdup_at(const char *s, const char *file, int line);
void *vlp_aligned_alloc_at(size_t align, size_t size, const char *file, int line);

/* Never NULL: a size of 0 gives a valid pointer to free. */
#define vlp_malloc(size) vlp_malloc_at((size), __FILE__, __LINE__)
/* Zeroed; n * size overflowing size_t aborts as out of memory. */
#define vlp_calloc(n, size) vlp_calloc_at((n), (size), __FILE__, __LINE__)
#define vlp_realloc(p, size) vlp_realloc_at((p), (size), __FILE__, __LINE__)
#define vlp_strdup(s) vlp_strdup_at((s), __FILE__, __LINE__)
/* align a power of two multiple of sizeof(void *); free with free(). */
#define vlp_aligned_alloc(align, size) vlp_aligned_alloc_at((align), (size), __FILE__, __LINE__)

#endif
