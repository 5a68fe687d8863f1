/* vlpreport: one self-contained HTML page about a training run.
 *   vlpreport RUN_DIR [-o report.html] [--images N] [--captions K]
 * Curves of every logged metric, validation images with their top retrieved
 * captions, the final metrics and the configuration. Argument parsing only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/output.h"
#include "apps/report.h"
#include "args.h"

int main(int argc, char **argv) {
    const char *run = NULL, *out = NULL;
    vlp_report_opts o = {.images = 24, .captions = 3};
    static const char *const value_options[] = {"-o", "--images", "--captions", NULL};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--images") && i + 1 < argc) {
            if (!vlp_arg_int("vlpreport", argv[i], argv[i + 1], 0, 100000, &o.images)) run = NULL, i = argc;
            i++;
        } else if (!strcmp(argv[i], "--captions") && i + 1 < argc) {
            if (!vlp_arg_int("vlpreport", argv[i], argv[i + 1], 1, 100, &o.captions)) run = NULL, i = argc;
            i++;
        }
        else if (argv[i][0] != '-' && !run) run = argv[i];
        else vlp_arg_reject("vlpreport", argv[i], value_options), run = NULL, i = argc;
    }
    if (!run || o.images < 0 || o.captions < 1) {
        fputs("usage: vlpreport RUN_DIR [-o report.html] [--images N] [--captions K]\n", stderr);
        return 2;
    }
    char path[4096];
    if (!out) snprintf(path, sizeof path, "%s/report.html", run), out = path;
    const char *inputs[] = {run};
    if (vlp_output_check("-o", out, inputs, 1)) {
        fprintf(stderr, "vlpreport: %s\n", vlp_error_message());
        return 2;
    }
    if (vlp_report_write(run, out, &o)) {
        fprintf(stderr, "vlpreport: %s\n", vlp_error_message());
        return 1;
    }
    printf("vlpreport: wrote %s\n", out);
    return 0;
}
