/* File helpers every layer uses: a whole file as text, a file's non-empty
 * lines. No formats: those are data/'s. */
#ifndef VLP_FILE_H
#define VLP_FILE_H

/* A whole file as a NUL-terminated string (malloc'd), or NULL. */
char *vlp_read_text(const char *path);

/* The non-empty lines of a text file (trailing spaces and CR dropped),
 * malloc'd, *n of them; NULL when the file cannot be read. */
char **vlp_read_lines(const char *path, int *n);
void vlp_free_lines(char **lines, int n);

/* Writes text to path (replacing it): 0, or -1 with errno set. */
int vlp_write_text(const char *path, const char *text);

/* mkdir -p path (mode 0755): 0, or -1 with errno set (ENAMETOOLONG for a
 * path longer than 4095 bytes). */
int vlp_make_dirs(const char *path);

#endif
