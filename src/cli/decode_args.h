/* The decoding options of the BLIP programs (vlpcaption, vlpvqa, vlpfilter),
 * each number read with args.h's checks: a bad one is named and the caller
 * prints its usage line and exits 2. Not the decoding (models/blip_decode.h). */
#ifndef VLP_CLI_DECODE_ARGS_H
#define VLP_CLI_DECODE_ARGS_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "models/blip_decode.h"
#include "args.h"

#define VLP_DECODE_ARGS_USAGE                                                           \
    "  --method greedy|beam|nucleus   decoding (default beam: 3 beams, as BLIP)\n"      \
    "  --beams N  --length-penalty F  beam search: score / length^F\n"                  \
    "  --top-p F  --top-k N  --temperature F   nucleus sampling (0.9, 50, 1; top-k 0: none)\n" \
    "  --repetition-penalty F         1: none (nucleus default 1.1)\n"                  \
    "  --max-length N  --min-length N tokens, [DEC] and the prompt included (20, 5)\n"

/* "--method greedy|beam|nucleus" (its vlp_blip_decode_defaults; `method`
 * without it), then "--beams", "--max-length", "--min-length",
 * "--length-penalty", "--top-p", "--top-k", "--temperature",
 * "--repetition-penalty", each with a value, wherever they stand. Marks
 * used[i] for every argument it read (argv[0] excluded); *max_length_set
 * tells whether --max-length was given. False after printing what was wrong. */
static inline bool vlp_arg_decode(const char *prog, int argc, char **argv, vlp_blip_decode_method method,
                                  vlp_blip_decode_options *o, bool *used, bool *max_length_set) {
    static const char *const methods[] = {"greedy", "beam", "nucleus"};
    *max_length_set = false;
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--method")) continue;
        int m = 0;
        while (m < 3 && strcmp(argv[i + 1], methods[m])) m++;
        if (m == 3) {
            fprintf(stderr, "%s: --method %s: greedy, beam or nucleus\n", prog, argv[i + 1]);
            return false;
        }
        method = (vlp_blip_decode_method)m;
        used[i] = used[i + 1] = true;
    }
    *o = vlp_blip_decode_defaults(method, 0);
    for (int i = 1; i + 1 < argc; i++) {
        const char *flag = argv[i], *value = argv[i + 1];
        bool ok = true;
        if (!strcmp(flag, "--beams")) ok = vlp_arg_int(prog, flag, value, 1, VLP_BLIP_MAX_BEAMS, &o->num_beams);
        else if (!strcmp(flag, "--max-length")) ok = vlp_arg_int(prog, flag, value, 2, 1000000, &o->max_length);
        else if (!strcmp(flag, "--min-length")) ok = vlp_arg_int(prog, flag, value, 0, 1000000, &o->min_length);
        else if (!strcmp(flag, "--length-penalty"))
            ok = vlp_arg_float(prog, flag, value, -100, 100, &o->length_penalty);
        else if (!strcmp(flag, "--top-p")) ok = vlp_arg_float(prog, flag, value, 1e-9, 1, &o->top_p);
        else if (!strcmp(flag, "--top-k")) ok = vlp_arg_int(prog, flag, value, 0, 1000000000, &o->top_k);
        else if (!strcmp(flag, "--temperature")) ok = vlp_arg_float(prog, flag, value, 1e-6, 1e6, &o->temperature);
        else if (!strcmp(flag, "--repetition-penalty"))
            ok = vlp_arg_float(prog, flag, value, 1e-6, 1e6, &o->repetition_penalty);
        else {
            if (!strcmp(flag, "--method")) i++;
            continue;
        }
        if (!ok) return false;
        *max_length_set |= !strcmp(flag, "--max-length");
        used[i] = used[i + 1] = true;
        i++;
    }
    return true;
}

#endif
