/* vlptok: train a BPE merges file on captions, encode text to ids, decode ids
 * to text, one line at a time. Argument parsing and line I/O only; the
 * tokenizer is data/tokenizer.c. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/output.h"
#include "base/mem.h"
#include "data/tokenizer.h"
#include "args.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: vlptok train --vocab-size N CAPTIONS.txt -o MERGES\n"
            "       vlptok encode --merges MERGES [--max-merges M] [--context-length N] < TEXT\n"
            "       vlptok decode --merges MERGES [--max-merges M] < IDS\n"
            "train learns byte-level BPE merges (CLIP's format; vocab = 512 + merges + 2)\n"
            "from one caption per line. encode prints the ids of each input line: SOT,\n"
            "tokens, EOT, or with --context-length exactly N ids (truncated with EOT\n"
            "last, padded with 0). decode prints the text of each line of ids.\n"
            "MERGES may be gzip-compressed (CLIP's bpe_simple_vocab_16e6.txt.gz: use\n"
            "--max-merges %d).\n",
            VLP_TOKENIZER_CLIP_MERGES);
}

/* Next line of f without its '\n', in *line; 1, 0 at end of input, -1 on a
 * read error or a NUL byte (reported). */
static int read_line(FILE *f, const char *name, long lineno, char **line, size_t *cap) {
    errno = 0;
    ssize_t n = getline(line, cap, f);
    if (n < 0) {
        if (ferror(f)) {
            fprintf(stderr, "vlptok: %s: read error: %s\n", name, strerror(errno));
            return -1;
        }
        return 0;
    }
    if (n > 0 && (*line)[n - 1] == '\n') (*line)[--n] = '\0';
    if (memchr(*line, '\0', (size_t)n)) {
        fprintf(stderr, "vlptok: %s:%ld: NUL byte in text\n", name, lineno);
        return -1;
    }
    return 1;
}

static int train(const char *captions, const char *out, int vocab_size) {
    FILE *f = fopen(captions, "r");
    if (!f) {
        fprintf(stderr, "vlptok: %s: cannot open: %s\n", captions, strerror(errno));
        return 1;
    }
    char **texts = NULL, *line = NULL;
    size_t cap = 0, cap_texts = 0;
    int n = 0, status = 1, got;
    vlp_tokenizer *tok = NULL;
    while ((got = read_line(f, captions, n + 1, &line, &cap)) > 0) {
        if (n == INT_MAX) {
            fprintf(stderr, "vlptok: %s: more than %d captions\n", captions, INT_MAX);
            goto done;
        }
        if ((size_t)n == cap_texts) {
            cap_texts = cap_texts ? 2 * cap_texts : 1024;
            texts = vlp_realloc(texts, cap_texts * sizeof *texts);
        }
        texts[n++] = vlp_strdup(line);
    }
    if (got < 0) goto done;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (vlp_tokenizer_train(&tok, (const char *const *)texts, n, vocab_size) ||
        vlp_tokenizer_save(tok, out)) {
        fprintf(stderr, "vlptok: %s\n", vlp_error_message());
        goto done;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("vlptok: %d captions -> %d merges (vocab %d) in %.2f s; wrote %s\n", n, vlp_tokenizer_n_merges(tok),
           vlp_tokenizer_vocab_size(tok), (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
           out);
    status = 0;
done:
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(line);
    fclose(f);
    vlp_tokenizer_free(tok);
    return status;
}

static int encode(const vlp_tokenizer *tok, int context_length) {
    char *line = NULL;
    size_t cap = 0, cap_ids = 0;
    int *ids = NULL, status = 0, got;
    for (long lineno = 1; (got = read_line(stdin, "<stdin>", lineno, &line, &cap)) > 0; lineno++) {
        int n = 0, rc;
        if (context_length > 0) {
            if (!ids) ids = vlp_malloc((size_t)context_length * sizeof *ids);
            rc = vlp_tokenizer_encode(tok, line, ids, context_length, NULL);
            n = context_length;
        } else {
            /* SOT and EOT around the tokens; ask again if the buffer was short. */
            rc = vlp_tokenizer_tokens(tok, line, ids ? ids + 1 : NULL, cap_ids > 2 ? (int)cap_ids - 2 : 0, &n);
            if (!rc && (size_t)n + 2 > cap_ids) {
                free(ids);
                cap_ids = (size_t)n + 64;
                ids = vlp_malloc(cap_ids * sizeof *ids);
                rc = vlp_tokenizer_tokens(tok, line, ids + 1, (int)cap_ids - 2, &n);
            }
            if (!rc) {
                ids[0] = vlp_tokenizer_sot(tok);
                ids[n + 1] = vlp_tokenizer_eot(tok);
                n += 2;
            }
        }
        if (rc) {
            fprintf(stderr, "vlptok: <stdin>:%ld: %s\n", lineno, vlp_error_message());
            status = 1;
            break;
        }
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        putchar('\n');
    }
    if (got < 0) status = 1;
    free(ids);
    free(line);
    return status;
}

static int decode(const vlp_tokenizer *tok) {
    char *line = NULL, *text = NULL;
    size_t cap = 0, cap_text = 0;
    int *ids = NULL, cap_ids = 0, status = 0, got;
    for (long lineno = 1; (got = read_line(stdin, "<stdin>", lineno, &line, &cap)) > 0; lineno++) {
        int n = 0;
        for (char *p = line;;) {
            while (*p == ' ' || *p == '\t' || *p == '\r') p++;
            if (!*p) break;
            char *end;
            errno = 0;
            long v = strtol(p, &end, 10);
            if (end == p || errno || v < INT_MIN || v > INT_MAX || (*end && *end != ' ' && *end != '\t' && *end != '\r')) {
                fprintf(stderr, "vlptok: <stdin>:%ld: '%.*s' is not a token id\n", lineno, (int)strcspn(p, " \t\r"), p);
                status = 1;
                goto done;
            }
            if (n == cap_ids) {
                cap_ids = cap_ids ? 2 * cap_ids : 256;
                ids = vlp_realloc(ids, (size_t)cap_ids * sizeof *ids);
            }
            ids[n++] = (int)v;
            p = end;
        }
        size_t len = 0;
        if (vlp_tokenizer_decode(tok, ids, n, text, cap_text, &len) == VLP_OK && len >= cap_text) {
            free(text);
            cap_text = len + 256;
            text = vlp_malloc(cap_text);
        }
        if (vlp_tokenizer_decode(tok, ids, n, text, cap_text, &len)) {
            fprintf(stderr, "vlptok: <stdin>:%ld: %s\n", lineno, vlp_error_message());
            status = 1;
            goto done;
        }
        fwrite(text, 1, len, stdout);
        putchar('\n');
    }
    if (got < 0) status = 1;
done:
    free(ids);
    free(text);
    free(line);
    return status;
}

/* 0, or 2 after the usage line. */
static int parse_int(const char *opt, const char *v, int min, int max, int *out) {
    if (vlp_arg_int("vlptok", opt, v, min, max, out)) return 0;
    usage(stderr);
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1], *merges = NULL, *out = NULL, *input = NULL;
    int vocab_size = 0, context_length = 0, max_merges = -1;
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        usage(stdout);
        return 0;
    }
    bool is_train = !strcmp(cmd, "train"), is_encode = !strcmp(cmd, "encode"), is_decode = !strcmp(cmd, "decode");
    if (!is_train && !is_encode && !is_decode) {
        fprintf(stderr, "vlptok: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        bool takes_value = (is_train && (!strcmp(a, "--vocab-size") || !strcmp(a, "-o"))) ||
                           (!is_train && (!strcmp(a, "--merges") || !strcmp(a, "--max-merges"))) ||
                           (is_encode && !strcmp(a, "--context-length"));
        if (takes_value && !v) {
            fprintf(stderr, "vlptok: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (is_train && !strcmp(a, "--vocab-size")) {
            bad = parse_int(a, v, VLP_TOKENIZER_VOCAB_SIZE(0), 1 << 20, &vocab_size), i++;
        } else if (is_train && !strcmp(a, "-o") && v) {
            out = v, i++;
        } else if (!is_train && !strcmp(a, "--merges") && v) {
            merges = v, i++;
        } else if (!is_train && !strcmp(a, "--max-merges")) {
            bad = parse_int(a, v, 0, INT_MAX, &max_merges), i++;
        } else if (is_encode && !strcmp(a, "--context-length")) {
            bad = parse_int(a, v, 2, 1 << 20, &context_length), i++;
        } else if (is_train && a[0] != '-' && !input) {
            input = a;
        } else {
            if (a[0] == '-' && a[1]) fprintf(stderr, "vlptok: unknown option '%s' for %s\n", a, cmd);
            else fprintf(stderr, "vlptok: unexpected argument '%s' for %s\n", a, cmd);
            usage(stderr);
            return 2;
        }
        if (bad) return bad;
    }
    if (is_train) {
        if (!vocab_size || !out || !input) {
            fprintf(stderr, "vlptok: train needs --vocab-size N, a caption file and -o MERGES\n");
            return 2;
        }
        const char *inputs[] = {input};
        if (vlp_output_check("-o", out, inputs, 1)) {
            fprintf(stderr, "vlptok: %s\n", vlp_error_message());
            return 2;
        }
        return train(input, out, vocab_size);
    }
    if (!merges) {
        fprintf(stderr, "vlptok: %s needs --merges MERGES\n", cmd);
        return 2;
    }
    vlp_tokenizer *tok = NULL;
    if (vlp_tokenizer_load(&tok, merges, max_merges)) {
        fprintf(stderr, "vlptok: %s\n", vlp_error_message());
        return 1;
    }
    int status = is_encode ? encode(tok, context_length) : decode(tok);
    vlp_tokenizer_free(tok);
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "vlptok: cannot write the output: %s\n", strerror(errno));
        status = 1;
    }
    return status;
}
