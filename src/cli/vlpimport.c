/* vlpimport: a pretrained CLIP (OpenCLIP hub folder, Hugging Face CLIP
 * folder, or .safetensors file) into a vlp run folder.
 * Argument parsing and printing only: the work is vlp_pretrained_import. */
#include <stdio.h>
#include <string.h>

#include "apps/pretrained.h"
#include "base/error.h"
#include "base/output.h"
#include "args.h"

static int usage(void) {
    fputs("usage: vlpimport SRC -o RUN_DIR [--vocab FILE] [--arch NAME] [--gelu]\n"
          "  SRC: an OpenCLIP folder (open_clip_config.json + open_clip_model.safetensors),\n"
          "       a Hugging Face CLIP folder (config.json + model.safetensors + merges.txt),\n"
          "       or a .safetensors file with OpenCLIP's tensor names\n"
          "  --vocab FILE  CLIP's merges (bpe_simple_vocab_16e6.txt.gz from your CLIP or OpenCLIP\n"
          "                installation); needed when SRC has no merges.txt\n"
          "  --arch NAME   a .safetensors file's architecture: ViT-B-32, ViT-B-16, ViT-L-14,\n"
          "                ViT-L-14-336, each also -quickgelu; default: read off the shapes\n"
          "  --gelu        with shapes read off a file: GELU, not OpenAI's QuickGELU\n"
          "RUN_DIR then works with vlpembed, vlpsearch, vlpeval and [train] init.\n",
          stderr);
    return 2;
}

int main(int argc, char **argv) {
    const char *src = NULL, *out = NULL;
    vlp_import_opts o = {.quick_gelu = 1, .log = stdout};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--vocab") && i + 1 < argc) o.vocab = argv[++i];
        else if (!strcmp(argv[i], "--arch") && i + 1 < argc) o.arch = argv[++i];
        else if (!strcmp(argv[i], "--gelu")) o.quick_gelu = 0;
        else if (argv[i][0] != '-' && !src) src = argv[i];
        else return vlp_arg_reject("vlpimport", argv[i], (const char *const[]){"-o", "--vocab", "--arch", NULL}), usage();
    }
    if (!src || !out) return usage();
    const char *inputs[] = {src, o.vocab};
    if (vlp_output_check_dir("-o", out, inputs, 2)) return fprintf(stderr, "vlpimport: %s\n", vlp_error_message()), 2;
    char model[4200];
    snprintf(model, sizeof model, "%s/model.h5", out);
    vlp_output_remove_stale_tmp(model); /* written through model.h5.tmp */
    if (vlp_pretrained_import(src, out, &o)) {
        fprintf(stderr, "vlpimport: %s\n", vlp_error_message());
        return 1;
    }
    return 0;
}
