/* Progress line (see progress.h). */
#include "train/progress.h"

#include <stdarg.h>
#include <time.h>
#include <unistd.h>

#define TTY_INTERVAL 0.1  /* seconds between in-place redraws */
#define LOG_INTERVAL 10.0 /* seconds between plain lines */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void vlp_progress_init(vlp_progress *p, FILE *out, long total, double items_per_step,
                       const char *unit, long every) {
    *p = (vlp_progress){.out = out, .total = total, .items_per_step = items_per_step,
                        .unit = unit, .start = now(), .every = every, .tty = isatty(fileno(out))};
    p->last_print = p->start;
}

double vlp_progress_elapsed(const vlp_progress *p) { return now() - p->start; }

static void format_duration(char *buf, size_t size, double seconds) {
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
}

void vlp_progress_update(vlp_progress *p, long done, const char *fields, ...) {
    double t = now();
    bool last = done >= p->total;
    bool due = p->tty ? t - p->last_print >= TTY_INTERVAL
                      : p->every ? done % p->every == 0 : t - p->last_print >= LOG_INTERVAL;
    if (!last && !due) return;
    p->last_print = t;
    double elapsed = t - p->start, rate = elapsed > 0 ? (done - p->first) / elapsed : 0.0;
    char eta[32], took[32];
    format_duration(eta, sizeof eta, rate > 0 ? (p->total - done) / rate : 0.0);
    format_duration(took, sizeof took, elapsed);
    char text[256];
    va_list ap;
    va_start(ap, fields);
    vsnprintf(text, sizeof text, fields, ap);
    va_end(ap);
    fprintf(p->out, "%sstep %*ld/%ld | %s | %.0f %s/s | %s %s", p->tty ? "\r" : "",
            snprintf(NULL, 0, "%ld", p->total), done, p->total, text,
            rate * p->items_per_step, p->unit, last ? "took" : "ETA", last ? took : eta);
    fputs(p->tty ? (last ? "\033[K\n" : "\033[K") : "\n", p->out);
    fflush(p->out);
}
