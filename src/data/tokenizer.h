/* Byte-level BPE tokenizer with OpenAI CLIP's conventions (simple_tokenizer.py):
 * text cleaning, pre-splitting regex, vocabulary layout, merges-file format,
 * plus a deterministic trainer. Not ftfy, not a general regex or Unicode library. */
#ifndef VLP_TOKENIZER_H
#define VLP_TOKENIZER_H

#include <stddef.h>

/* CLIP reads the first 49152 - 256 - 2 merges of its file: vocabulary 49408,
 * start-of-text 49406, end-of-text 49407. */
#define VLP_TOKENIZER_CLIP_MERGES 48894

/* Vocabulary size with n merges: 256 byte symbols, the same 256 ending a word
 * ("</w>"), one token per merge in merge order, then <|startoftext|> and
 * <|endoftext|>, which are therefore the two largest ids. */
#define VLP_TOKENIZER_VOCAB_SIZE(n_merges) (512 + (n_merges) + 2)

/* CLIP's default context length; a caller's choice, not a limit here. */
#define VLP_TOKENIZER_CLIP_CONTEXT 77

/* Text goes through CLIP's cleaning (HTML character references unescaped
 * twice, exactly as Python's html.unescape does; whitespace runs collapsed
 * and stripped; lower case as str.lower) and pre-splitting regex, giving
 * CLIP's ids (see tokenizer_text.c). ftfy's repairs, which CLIP runs first,
 * are out of scope (not in Debian). Bytes that are not UTF-8 are each a
 * symbol of their own: byte-level BPE spells any byte, so nothing is lost
 * and nothing fails (CLIP itself takes only valid text). */
typedef struct vlp_tokenizer vlp_tokenizer;

/* Reads a merges file: a header line containing "#version" (CLIP's reads
 * "\"bpe_simple_vocab_16e6.txt#version: 0.2"), then one merge per line, two
 * symbols separated by one space. Gzip-compressed or plain. Reads at most
 * max_merges merges (all when max_merges < 0; VLP_TOKENIZER_CLIP_MERGES to
 * tokenize as CLIP does with its own file). Errors name the file and line. */
int vlp_tokenizer_load(vlp_tokenizer **out, const char *path, int max_merges);

/* The same from a merges file's text in memory (n bytes; a checkpoint's
 * copy); name stands for the file in messages ("run/tokenizer.bpe"). */
int vlp_tokenizer_parse(vlp_tokenizer **out, const char *text, size_t n, const char *name, int max_merges);

/* Writes the merges file ("#version: 0.2" header), gzip-compressed when path
 * ends in ".gz". The same merges always give the same bytes. */
int vlp_tokenizer_save(const vlp_tokenizer *tok, const char *path);

/* The merges file's text as save writes it (malloc'd, never NULL): what
 * checkpoints store and ranks compare. */
char *vlp_tokenizer_merges_text(const vlp_tokenizer *tok);

/* Learns merges from texts (cleaned and pre-split as encode does): repeatedly
 * merges the most frequent adjacent pair of symbols, counted over all words
 * with their frequencies ("aaaa" holds (a, a) twice: overlaps count); ties go
 * to the pair whose first, then second, symbol is bytewise smallest. Stops at vocab_size = VLP_TOKENIZER_VOCAB_SIZE(merges)
 * (so vocab_size >= 514) or when no pair occurs twice. Deterministic. */
int vlp_tokenizer_train(vlp_tokenizer **out, const char *const *texts, int n, int vocab_size);

void vlp_tokenizer_free(vlp_tokenizer *tok);

int vlp_tokenizer_vocab_size(const vlp_tokenizer *tok);
int vlp_tokenizer_n_merges(const vlp_tokenizer *tok);
int vlp_tokenizer_sot(const vlp_tokenizer *tok); /* vocab_size - 2 */
int vlp_tokenizer_eot(const vlp_tokenizer *tok); /* vocab_size - 1 */

/* The model's input: [SOT, tokens..., EOT] padded with 0 to context_length
 * (>= 2). Longer texts keep their first context_length - 2 tokens and EOT
 * stays last (OpenCLIP's truncate=True). *n_out (may be NULL) receives the
 * count before padding, so EOT is at ids[*n_out - 1]; because EOT is the
 * largest id, argmax(ids) finds it too, as CLIP's text encoder does.
 * text is NUL-terminated.
 * A literal "<|endoftext|>" in text becomes the EOT id, as in CLIP.
 * Safe to call from several threads on one tokenizer. */
int vlp_tokenizer_encode(const vlp_tokenizer *tok, const char *text, int *ids, int context_length, int *n_out);

/* The token ids of text alone, without SOT, EOT or padding. Writes the first
 * min(count, cap) ids; *n_out receives count even when it exceeds cap. */
int vlp_tokenizer_tokens(const vlp_tokenizer *tok, const char *text, int *ids, int cap, int *n_out);

/* Text of ids as CLIP decodes it: token bytes joined, each "</w>" turned into
 * a space, the final space dropped. SOT and EOT are skipped and ids after the
 * last EOT are padding. So decode(encode(x)) is x after cleaning with its
 * words (as pre-split) separated by single spaces: "don't!" -> "don 't !".
 * Invalid UTF-8 comes back byte for byte. Writes at most cap - 1 bytes and a
 * NUL, like snprintf; *len_out (may be NULL) receives the full length. */
int vlp_tokenizer_decode(const vlp_tokenizer *tok, const int *ids, int n, char *out, size_t cap, size_t *len_out);

#endif
