/* Error table, thread-local messages and the fatal-error path. */
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for a message that names two long paths (PATH_MAX is 4096). */
#define VLP_MESSAGE_MAX 12288
static _Thread_local char last_message[VLP_MESSAGE_MAX];

const char *vlp_strerror(int code) {
    switch (code) {
#define VLP_ERROR_CASE(name, value, desc) \
    case value:                           \
        return desc;
        VLP_ERRORS(VLP_ERROR_CASE)
#undef VLP_ERROR_CASE
    }
    return "unknown error";
}

/* Formatted apart first, so that an argument may be the message itself
 * (vlp_error_set(rc, "%s: %s", where, vlp_error_message())); a message cut
 * to fit ends in "...". */
int vlp_error_set(int code, const char *fmt, ...) {
    char text[VLP_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof text) memcpy(text + sizeof text - 4, "...", 4);
    memcpy(last_message, text, sizeof text);
    return code;
}

const char *vlp_error_message(void) { return last_message; }

void vlp_fatal(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "vlp: fatal: %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}
