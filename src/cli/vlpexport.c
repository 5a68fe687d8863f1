/* vlpexport: a vlp CLIP (run folder or checkpoint) as an OpenCLIP hub
 * folder or a Hugging Face CLIP folder, for the PyTorch ecosystem.
 * Argument parsing and printing only: the work is vlp_pretrained_export. */
#include <stdio.h>
#include <string.h>

#include "apps/pretrained.h"
#include "base/error.h"
#include "base/output.h"
#include "args.h"

static int usage(void) {
    fputs("usage: vlpexport RUN -o DIR --format open_clip|hf\n"
          "  RUN: a run folder or a checkpoint of a CLIP\n"
          "  open_clip: open_clip_config.json + open_clip_model.safetensors (+ merges.txt)\n"
          "  hf: config.json + model.safetensors + merges.txt + vocab.json + preprocessor_config.json\n",
          stderr);
    return 2;
}

int main(int argc, char **argv) {
    const char *run = NULL, *out = NULL, *format = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--format") && i + 1 < argc) format = argv[++i];
        else if (argv[i][0] != '-' && !run) run = argv[i];
        else return vlp_arg_reject("vlpexport", argv[i], (const char *const[]){"-o", "--format", NULL}), usage();
    }
    if (format && strcmp(format, "open_clip") && strcmp(format, "hf"))
        return fprintf(stderr, "vlpexport: --format %s: open_clip or hf\n", format), usage();
    if (!run || !out || !format) return usage();
    const char *inputs[] = {run};
    if (vlp_output_check_dir("-o", out, inputs, 1)) return fprintf(stderr, "vlpexport: %s\n", vlp_error_message()), 2;
    static const char *const written[] = {"open_clip_model.safetensors", "model.safetensors"};
    for (size_t k = 0; k < sizeof written / sizeof written[0]; k++) { /* written through NAME.tmp */
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", out, written[k]);
        vlp_output_remove_stale_tmp(path);
    }
    vlp_pretrained_format f = strcmp(format, "hf") ? VLP_PRETRAINED_OPEN_CLIP : VLP_PRETRAINED_HF;
    if (vlp_pretrained_export(run, out, f)) {
        fprintf(stderr, "vlpexport: %s\n", vlp_error_message());
        return 1;
    }
    printf("vlpexport: %s written as %s into %s\n", run, f == VLP_PRETRAINED_HF ? "a Hugging Face folder"
           : "an OpenCLIP folder", out);
    return 0;
}
