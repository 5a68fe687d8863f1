/* libFuzzer harness: the BPE tokenizer. The input is a merges file, then a
 * NUL, then a text (no NUL: the input is both). The merges file is loaded
 * (as written and gzip-compressed); the text is encoded by that tokenizer,
 * by one trained on the text's own lines, and by a fixed one trained on a
 * few captions. Checked beyond the sanitizers: every id in the vocabulary;
 * encode = [SOT, first context-2 tokens, EOT, 0...]; decode's length and
 * truncation; save then load gives the same merges and the same ids (which
 * also compares a used word cache with a fresh one). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "data/tokenizer.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const CAPTIONS[] = {
    "a photo of a cat", "a photo of a dog sitting on the grass", "A red heart &amp; a blue star!",
    "two dogs, three cats and 42 birds", "the cat's toy isn't there", "caf\xc3\xa9 au lait",
    "\xce\x9f\xce\x94\xce\x3f\xce\xa3 \xce\xa3\xce\xa3", "an ankle boot", "a pullover, a sneaker, a bag",
    "emoji: \xf0\x9f\x98\x80 grinning face", "<|startoftext|>hello<|endoftext|>", "tab\tand  spaces\n",
};

static char fixed_path[1024];

/* A tokenizer with real merges, saved once; each input loads its own copy
 * so that no word cache outlives an input (leak checks stay exact). */
static void make_fixed(void) {
    vlp_tokenizer *tok;
    int rc = vlp_tokenizer_train(&tok, CAPTIONS, (int)(sizeof CAPTIONS / sizeof *CAPTIONS), 700);
    FUZZ_CHECK(rc == VLP_OK, "training the fixed tokenizer: %s", vlp_error_message());
    snprintf(fixed_path, sizeof fixed_path, "%s/fixed.bpe", fuzz_dir("tokenizer"));
    rc = vlp_tokenizer_save(tok, fixed_path);
    FUZZ_CHECK(rc == VLP_OK, "saving the fixed tokenizer: %s", vlp_error_message());
    vlp_tokenizer_free(tok);
}

/* The ids of text, all of them (malloc'd; *n gets the count). */
static int *all_tokens(const vlp_tokenizer *tok, const char *text, int *n) {
    int count = -1;
    int rc = vlp_tokenizer_tokens(tok, text, NULL, 0, &count);
    FUZZ_CHECK(rc == VLP_OK && count >= 0, "tokens: rc %d: %s", rc, vlp_error_message());
    int *ids = malloc(sizeof(int) * ((size_t)count + 1));
    FUZZ_CHECK(ids != NULL, "out of memory");
    int again = -1;
    rc = vlp_tokenizer_tokens(tok, text, ids, count, &again);
    FUZZ_CHECK(rc == VLP_OK && again == count, "tokens twice: %d then %d", count, again);
    *n = count;
    return ids;
}

static void check_encode(const vlp_tokenizer *tok, const char *text) {
    int vocab = vlp_tokenizer_vocab_size(tok), sot = vlp_tokenizer_sot(tok), eot = vlp_tokenizer_eot(tok);
    FUZZ_CHECK(vocab == 512 + vlp_tokenizer_n_merges(tok) + 2 && sot == vocab - 2 && eot == vocab - 1,
               "vocabulary %d with %d merges", vocab, vlp_tokenizer_n_merges(tok));
    int n;
    int *tokens = all_tokens(tok, text, &n);
    for (int i = 0; i < n; i++) FUZZ_CHECK(tokens[i] >= 0 && tokens[i] < vocab, "token %d = %d", i, tokens[i]);

    static const int contexts[] = {2, 3, 8, 77};
    for (size_t c = 0; c < sizeof contexts / sizeof *contexts; c++) {
        int ctx = contexts[c], ids[77], len = -1;
        int rc = vlp_tokenizer_encode(tok, text, ids, ctx, &len);
        FUZZ_CHECK(rc == VLP_OK, "encode: %s", vlp_error_message());
        int keep = n < ctx - 2 ? n : ctx - 2;
        FUZZ_CHECK(len == keep + 2 && ids[0] == sot && ids[len - 1] == eot, "encode gave %d ids", len);
        FUZZ_CHECK(!memcmp(ids + 1, tokens, sizeof(int) * (size_t)keep), "encode differs from tokens");
        for (int i = len; i < ctx; i++) FUZZ_CHECK(ids[i] == 0, "padding ids[%d] = %d", i, ids[i]);
    }
    int bad[1];
    FUZZ_CHECK(vlp_tokenizer_encode(tok, text, bad, 1, NULL) == VLP_EINVAL, "context 1 accepted");

    /* Decode: the full length, then truncated like snprintf. */
    size_t full = 0;
    int rc = vlp_tokenizer_decode(tok, tokens, n, NULL, 0, &full);
    FUZZ_CHECK(rc == VLP_OK, "decode: %s", vlp_error_message());
    char *out = malloc(full + 1);
    FUZZ_CHECK(out != NULL, "out of memory");
    size_t len = 0;
    rc = vlp_tokenizer_decode(tok, tokens, n, out, full + 1, &len);
    FUZZ_CHECK(rc == VLP_OK && len == full && out[len] == '\0', "decode length %zu then %zu", full, len);
    char small[6];
    rc = vlp_tokenizer_decode(tok, tokens, n, small, sizeof small, &len);
    size_t k = full < sizeof small - 1 ? full : sizeof small - 1;
    FUZZ_CHECK(rc == VLP_OK && len == full && !memcmp(small, out, k) && small[k] == '\0', "truncated decode");
    free(out);
    int outside[3] = {sot, vocab, eot};
    FUZZ_CHECK(vlp_tokenizer_decode(tok, outside, 3, small, sizeof small, NULL) == VLP_EINVAL, "id %d decoded", vocab);
    free(tokens);
}

/* Save (plain or gzip) and load again: the same merges, the same ids. */
static void check_save_load(const vlp_tokenizer *tok, const char *text, bool gz) {
    char path[1024];
    snprintf(path, sizeof path, "%s/saved.bpe%s", fuzz_dir_path, gz ? ".gz" : "");
    int rc = vlp_tokenizer_save(tok, path);
    FUZZ_CHECK(rc == VLP_OK, "save: %s", vlp_error_message());
    vlp_tokenizer *back;
    rc = vlp_tokenizer_load(&back, path, -1);
    FUZZ_CHECK(rc == VLP_OK, "a saved tokenizer does not load: %s", vlp_error_message());
    FUZZ_CHECK(vlp_tokenizer_n_merges(back) == vlp_tokenizer_n_merges(tok), "%d merges saved, %d loaded",
               vlp_tokenizer_n_merges(tok), vlp_tokenizer_n_merges(back));
    int n1, n2;
    int *a = all_tokens(tok, text, &n1), *b = all_tokens(back, text, &n2);
    FUZZ_CHECK(n1 == n2 && !memcmp(a, b, sizeof(int) * (size_t)n1), "saved and loaded tokenizers differ");
    free(a);
    free(b);
    vlp_tokenizer_free(back);
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT) return 0;
    if (!fixed_path[0]) make_fixed();
    uint64_t h = fuzz_hash(data, size);
    const uint8_t *nul = memchr(data, '\0', size);
    size_t n_merges = nul ? (size_t)(nul - data) : size;
    char *text = nul ? fuzz_strndup(nul + 1, size - n_merges - 1) : fuzz_strndup(data, size);

    vlp_tokenizer *tok;
    int rc = vlp_tokenizer_load(&tok, fixed_path, -1);
    FUZZ_CHECK(rc == VLP_OK, "the fixed tokenizer: %s", vlp_error_message());
    check_encode(tok, text);
    vlp_tokenizer_free(tok);

    char path[1024];
    fuzz_write(path, sizeof path, "merges.txt", data, n_merges);
    rc = vlp_tokenizer_load(&tok, path, -1);
    if (rc == VLP_OK) {
        check_encode(tok, text);
        /* Each tokenizer costs a 1 MB word cache to make and to free, so
         * the rarer checks run on a share of the inputs (by hash). */
        if (h >> 4 & 1) check_save_load(tok, text, h & 1);
        if ((h >> 5 & 3) == 0) {
            int limit = (int)((h >> 8) % 4);
            vlp_tokenizer *part;
            rc = vlp_tokenizer_load(&part, path, limit);
            FUZZ_CHECK(rc == VLP_OK && vlp_tokenizer_n_merges(part) <= limit, "max_merges %d", limit);
            vlp_tokenizer_free(part);
        }
        vlp_tokenizer_free(tok);
    } else {
        FUZZ_CHECK(rc < 0 && tok == NULL && vlp_error_message()[0], "failed load: rc %d", rc);
    }

    /* Training on the text's lines (at most 64), a few merges. */
    const char *lines[64];
    int n_lines = 0;
    for (char *p = text; *p && n_lines < 64;) {
        lines[n_lines++] = p;
        char *nl = strchr(p, '\n');
        if (!nl) break;
        *nl = '\0', p = nl + 1;
    }
    rc = vlp_tokenizer_train(&tok, lines, n_lines, 514 + (int)((h >> 16) % 48));
    FUZZ_CHECK(rc == VLP_OK, "training: %s", vlp_error_message());
    FUZZ_CHECK(vlp_tokenizer_vocab_size(tok) <= 514 + (int)((h >> 16) % 48), "trained past vocab_size");
    for (int i = 0; i < n_lines; i++) check_encode(tok, lines[i]);
    if (h >> 7 & 1) check_save_load(tok, n_lines ? lines[0] : "", (h >> 2) & 1);
    vlp_tokenizer_free(tok);
    free(text);
    return 0;
}
