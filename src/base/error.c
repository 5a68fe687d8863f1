/* Error table, thread-local messages and the fatal-error path. */
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static _Thread_local char last_message[1024];

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

int vlp_error_set(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
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
