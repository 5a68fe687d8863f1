/* Whole files as text (see file.h). */
#include "base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/mem.h"

static const char *kind_of(mode_t mode) {
    return S_ISDIR(mode) ? "a directory" : S_ISFIFO(mode) ? "a FIFO" : S_ISCHR(mode) || S_ISBLK(mode) ? "a device"
           : S_ISSOCK(mode) ? "a socket" : "not a file";
}

static int refuse(const char *path, mode_t mode) {
    vlp_error_set(VLP_EIO, "%s: not a regular file (%s)", path, kind_of(mode));
    errno = S_ISDIR(mode) ? EISDIR : EINVAL;
    return -1;
}

static int fail_errno(const char *path) {
    int e = errno;
    vlp_error_set(VLP_EIO, "%s: %s", path, strerror(e));
    errno = e;
    return -1;
}

/* stat first, so that a device is never even opened (opening some has
 * effects); O_NONBLOCK and fstat after, for a file swapped in between. */
int vlp_file_open_fd(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return fail_errno(path);
    if (!S_ISREG(st.st_mode)) return refuse(path, st.st_mode);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return fail_errno(path);
    int flags;
    if (fstat(fd, &st) != 0 || (flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        fail_errno(path);
        int e = errno;
        close(fd);
        return errno = e, -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return refuse(path, st.st_mode);
    }
    return fd;
}

FILE *vlp_file_open(const char *path) {
    int fd = vlp_file_open_fd(path);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        fail_errno(path);
        int e = errno;
        close(fd);
        errno = e;
    }
    return f;
}

char *vlp_read_text(const char *path) {
    FILE *f = vlp_file_open(path);
    if (!f) return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem) vlp_fatal(__FILE__, __LINE__, "out of memory reading %s", path);
    int ch;
    while ((ch = fgetc(f)) != EOF) fputc(ch, mem);
    fclose(mem);
    fclose(f);
    return buf;
}

char **vlp_read_lines(const char *path, int *n) {
    char *text = vlp_read_text(path);
    *n = 0;
    if (!text) return NULL;
    char **lines = vlp_calloc(strlen(text) + 2, sizeof *lines);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' ')) line[--len] = '\0';
        if (len) lines[(*n)++] = vlp_strdup(line);
    }
    free(text);
    return lines;
}

int vlp_write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    bool ok = fputs(text, f) >= 0;
    if (fclose(f) != 0) ok = false;
    return ok ? 0 : -1;
}

void vlp_free_lines(char **lines, int n) {
    for (int i = 0; i < n; i++) free(lines[i]);
    free(lines);
}

int vlp_make_dirs(const char *path) {
    char p[4096];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) return errno = ENAMETOOLONG, -1;
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) return -1;
            *s = '/';
        }
    return mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
}
