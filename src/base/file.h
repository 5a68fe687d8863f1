/* File helpers every layer uses: a whole file as text, a file's non-empty
 * lines. No formats: those are data/'s. */
#ifndef VLP_FILE_H
#define VLP_FILE_H

#include <stdio.h>

/* Opens path for reading only if it is a regular file, without ever
 * blocking (a FIFO or a device would hang open() or never end): a file
 * descriptor, or -1 with a message recorded (vlp_error_set, VLP_EIO):
 * "PATH: No such file or directory", "PATH: not a regular file (a FIFO)"
 * (a directory, a device, a socket); errno is then EISDIR for a
 * directory, EINVAL for other non-regular files, open()'s otherwise. */
int vlp_file_open_fd(const char *path);

/* The same as a FILE opened "rb", or NULL (message and errno as above). */
FILE *vlp_file_open(const char *path);

/* A whole file as a NUL-terminated string (malloc'd), or NULL with errno
 * set and a message recorded (vlp_file_open: regular files only). */
char *vlp_read_text(const char *path);

/* The non-empty lines of a text file (trailing spaces and CR dropped),
 * malloc'd, *n of them; NULL when the file cannot be read (as vlp_read_text). */
char **vlp_read_lines(const char *path, int *n);
void vlp_free_lines(char **lines, int n);

/* Writes text to path (replacing it): 0, or -1 with errno set. */
int vlp_write_text(const char *path, const char *text);

/* mkdir -p path (mode 0755): 0, or -1 with errno set (ENAMETOOLONG for a
 * path longer than 4095 bytes). */
int vlp_make_dirs(const char *path);

#endif
