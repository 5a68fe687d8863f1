/* Error codes, messages and assertions shared by every vlp module.
 * Library code returns a negative VLP_E* and sets a message; it never exits.
 * VLP_ASSERT is for programmer mistakes (bad shapes), not for bad input. */
#ifndef VLP_ERROR_H
#define VLP_ERROR_H

/* X(name, value, description): the one table of error codes. */
#define VLP_ERRORS(X)                                         \
    X(VLP_OK, 0, "success")                                   \
    X(VLP_ENOMEM, -1, "out of memory")                        \
    X(VLP_EIO, -2, "input/output error")                      \
    X(VLP_EINVAL, -3, "invalid argument")                     \
    X(VLP_EFORMAT, -4, "malformed input")                     \
    X(VLP_ECONFIG, -5, "invalid configuration")               \
    X(VLP_ESHAPE, -6, "shape mismatch")                       \
    X(VLP_ENOTFOUND, -7, "not found")                         \
    X(VLP_EMPI, -8, "MPI error")                              \
    X(VLP_ENONFINITE, -9, "not finite")

enum vlp_error {
#define VLP_ERROR_ENUM(name, value, desc) name = value,
    VLP_ERRORS(VLP_ERROR_ENUM)
#undef VLP_ERROR_ENUM
};

/* Description of a code ("out of memory"); "unknown error" for others. */
const char *vlp_strerror(int code);

/* Records a message for the calling thread and returns code, so callers
 * write `return vlp_error_set(VLP_EFORMAT, "%s:%d: ...", path, line);`.
 * An argument may be vlp_error_message() itself, to wrap it. Messages keep
 * up to 12 KB; a longer one is cut and ends in "...". */
int vlp_error_set(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The calling thread's last message set by vlp_error_set ("" if none). */
const char *vlp_error_message(void);

/* Prints "file:line: message" and aborts. For broken invariants only. */
_Noreturn void vlp_fatal(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define VLP_ASSERT(cond, ...)                                  \
    do {                                                       \
        if (!(cond)) vlp_fatal(__FILE__, __LINE__, __VA_ARGS__); \
    } while (0)

#endif
