/* Internals shared by tokenizer.c, tokenizer_text.c and tokenizer_train.c:
 * CLIP's byte alphabet, text-to-words splitting, and building a tokenizer
 * from a list of merges. Not part of the public API (see tokenizer.h). */
#ifndef VLP_TOKENIZER_IMPL_H
#define VLP_TOKENIZER_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "data/tokenizer.h"

/* CLIP's bytes_to_unicode(): bytes that print (! to ~, inverted-exclamation to
 * not-sign, registered-sign to y-diaeresis) stand for themselves; the other 68
 * become code points 256, 257, ... in byte order, so every symbol of a merges
 * file is printable text without spaces. */
static inline bool vlp_bpe_byte_prints(int b) {
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

/* The code point standing for byte b. */
static inline int vlp_bpe_byte_char(int b) {
    if (vlp_bpe_byte_prints(b)) return b;
    if (b <= 32) return 256 + b;
    if (b <= 160) return 256 + 33 + (b - 127);
    return 256 + 67; /* 173, the soft hyphen */
}

/* The byte a code point stands for, or -1 if it is not in the alphabet. */
static inline int vlp_bpe_char_byte(int c) {
    if (c < 256) return vlp_bpe_byte_prints(c) ? c : -1;
    if (c <= 256 + 32) return c - 256;
    if (c <= 256 + 66) return c - 256 - 33 + 127;
    return c == 256 + 67 ? 173 : -1;
}

/* Vocabulary id of byte b's symbol, the byte's place in CLIP's list: the
 * printing bytes in order, then the others. Add 256 for the "</w>" form. */
static inline int vlp_bpe_byte_id(int b) {
    if (b >= 33 && b <= 126) return b - 33;
    if (b >= 161 && b <= 172) return 94 + (b - 161);
    if (b >= 174) return 106 + (b - 174);
    return 188 + (vlp_bpe_byte_char(b) - 256);
}

#define VLP_BPE_SOT_TEXT "<|startoftext|>"
#define VLP_BPE_EOT_TEXT "<|endoftext|>"

/* Called with each word of a text in order: its UTF-8 bytes (invalid input
 * bytes included as they were). A nonzero return stops the split and is
 * returned by vlp_bpe_text_words. */
typedef int (*vlp_bpe_word_fn)(const unsigned char *word, size_t n, void *ctx);

/* Cleans text as CLIP does, ftfy aside (HTML character references twice,
 * whitespace, lower case) and calls fn for each word of CLIP's pre-splitting
 * regex. 0 or fn's code. */
int vlp_bpe_text_words(const char *text, vlp_bpe_word_fn fn, void *ctx);

/* Building a tokenizer: merges in rank order, each two symbols in the
 * merges-file form (UTF-8 of alphabet characters); then finish, which adds
 * the specials and the rank table. where names the merge in error messages. */
int vlp_tokenizer_new(vlp_tokenizer **out);
int vlp_tokenizer_add_merge(vlp_tokenizer *tok, const char *a, size_t na, const char *b, size_t nb,
                            const char *where);
int vlp_tokenizer_finish(vlp_tokenizer *tok);

#endif
