/* vlpfilter: CapFilt (BLIP's captioner and filter) on a noisy dataset.
 *   vlpfilter MODEL DATA [-o CLEAN.tsv] [--report REPORT.tsv] [--threshold P]
 *             [--no-synthetic] [--prompt TEXT] [decoding options] [--seed N] [--batch N] [--workers N]
 * MODEL is a BLIP checkpoint or run folder; DATA a manifest or folder (a
 * shard only with --report alone: a manifest must name image files).
 * Argument parsing and printing only; the work, files written included, is
 * apps/capfilt.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/output.h"
#include "base/mem.h"
#include "apps/capfilt.h"
#include "args.h"
#include "decode_args.h"

static const char *const VALUE_OPTIONS[] = {"-o", "--report", "--prompt", "--threshold", "--seed", "--batch",
                                             "--workers", "--method", "--beams", "--max-length", "--min-length",
                                             "--length-penalty", "--top-p", "--top-k", "--temperature",
                                             "--repetition-penalty", NULL};

static void usage(FILE *f) {
    fprintf(f,
            "usage: vlpfilter MODEL DATA [-o CLEAN.tsv] [--report REPORT.tsv] [--threshold P]\n"
            "                 [--no-synthetic] [--prompt TEXT] [decoding options] [--seed N]\n"
            "                 [--batch N] [--workers N]\n"
            "MODEL: a BLIP checkpoint (.h5) or run folder, the captioner and the filter.\n"
            "DATA: a manifest or folder of image-caption pairs (a shard: --report only).\n"
            "Every pair's caption and a synthetic caption of its image are rated by the\n"
            "ITM head; those whose match probability is >= --threshold (default 0.5, BLIP's)\n"
            "are kept. The ITM trains on one matched pair in three, so at 1/3 its evidence\n"
            "favours neither (likelihood ratio 1; scripts/recipes/capfilt.sh filters there).\n"
            "-o: the cleaned TSV manifest: kept pairs, then kept synthetic captions as extra\n"
            "rows (BLIP's union; --no-synthetic: no captioner, original pairs only); paths\n"
            "relative to its folder. --report: one TSV row per pair: its match probability,\n"
            "the synthetic caption and its probability, what was kept and why not.\n"
            "Decoding options (default nucleus sampling, as BLIP's CapFilt):\n%s",
            VLP_DECODE_ARGS_USAGE);
}

int main(int argc, char **argv) {
    vlp_capfilt_clean_opts o = {.threshold = 0.5, .synthetic = true, .batch = 32, .workers = 1};
    long seed = 0;
    bool *used = vlp_calloc((size_t)argc + 1, sizeof *used);
    /* Nucleus sampling unless --method says otherwise: BLIP's CapFilt samples. */
    if (!vlp_arg_decode("vlpfilter", argc, argv, VLP_BLIP_DECODE_NUCLEUS, &o.decode, used, &o.max_length_set))
        return usage(stderr), 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (used[i]) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 0;
        if (!strcmp(a, "-o") && has) o.out = argv[++i];
        else if (!strcmp(a, "--report") && has) o.report = argv[++i];
        else if (!strcmp(a, "--prompt") && has) o.prompt = argv[++i];
        else if (!strcmp(a, "--no-synthetic")) o.synthetic = false;
        else if (!strcmp(a, "--threshold") && has) {
            if (!vlp_arg_double("vlpfilter", a, argv[++i], 0, 1, &o.threshold)) return usage(stderr), 2;
        } else if (!strcmp(a, "--seed") && has) {
            if (!vlp_arg_long("vlpfilter", a, argv[++i], 0, 1000000000000000, &seed)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--batch") && has) {
            if (!vlp_arg_int("vlpfilter", a, argv[++i], 1, 65536, &o.batch)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--workers") && has) {
            if (!vlp_arg_int("vlpfilter", a, argv[++i], 1, 64, &o.workers)) return usage(stderr), 2;
        }
        else if (a[0] != '-' && !o.model) o.model = a;
        else if (a[0] != '-' && !o.data) o.data = a;
        else return vlp_arg_reject("vlpfilter", a, VALUE_OPTIONS), usage(stderr), 2;
    }
    free(used);
    if (!o.model || !o.data) return usage(stderr), 2;
    if (!o.out && !o.report)
        return fprintf(stderr, "vlpfilter: nothing to write: give -o CLEAN.tsv and/or --report REPORT.tsv\n"), 2;
    if (o.out && o.report && !strcmp(o.out, o.report)) /* as the same file when it exists, by name when not */
        return fprintf(stderr, "vlpfilter: --report %s is also -o %s: give two paths\n", o.report, o.out), 2;
    const char *inputs[] = {o.model, o.data, o.out};
    if (vlp_output_check("-o", o.out, inputs, 2) || vlp_output_check("--report", o.report, inputs, 3))
        return fprintf(stderr, "vlpfilter: %s\n", vlp_error_message()), 2;
    o.seed = (uint64_t)seed;
    vlp_capfilt_clean_result r;
    if (vlp_capfilt_clean(&o, &r)) return fprintf(stderr, "vlpfilter: %s\n", vlp_error_message()), r.refused ? 2 : 1;
    printf("vlpfilter: %ld pairs of %s at threshold %.3f: kept %ld captions, dropped %ld (match below "
           "the threshold) and %ld unreadable images; kept %ld synthetic captions%s\n",
           r.n, o.data, o.threshold, r.kept, r.n - r.unreadable - r.kept, r.unreadable, r.kept_synthetic,
           o.synthetic ? "" : " (--no-synthetic)");
    if (o.out) printf("vlpfilter: wrote %ld pairs to %s\n", r.kept + r.kept_synthetic, o.out);
    return 0;
}
