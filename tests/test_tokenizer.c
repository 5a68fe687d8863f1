/* The BPE tokenizer against hand-made merges files, CLIP's merges and
 * hand-worked results, fixtures in a fresh temporary directory per test, no
 * network. Parity with Python itself is tokenizer_parity.sh's job, not this one's. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "base/error.h"
#include "data/html_entities.h"
#include "data/tokenizer.h"
#include "testutil.h"

static char tmpdir[64];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/vlp-test-tok-XXXXXX");
    ck_assert_msg(mkdtemp(tmpdir), "mkdtemp failed");
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tmpdir(void) { nftw(tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS); }

static const char *tmp(const char *name) {
    static char buf[8][128];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

static char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    buf[size] = '\0';
    fclose(f);
    *n = (size_t)size;
    return buf;
}

static vlp_tokenizer *load_text(const char *name, const char *merges) {
    write_file(tmp(name), merges);
    vlp_tokenizer *tok = NULL;
    int rc = vlp_tokenizer_load(&tok, tmp(name), -1);
    ck_assert_msg(rc == VLP_OK, "load %s: %s", name, vlp_error_message());
    return tok;
}

/* Token ids of text, without SOT/EOT; *n receives the count. */
static int *tokens(const vlp_tokenizer *tok, const char *text, int *n) {
    ck_assert_int_eq(vlp_tokenizer_tokens(tok, text, NULL, 0, n), VLP_OK);
    int *ids = malloc(((size_t)*n + 1) * sizeof *ids);
    int again = -1;
    ck_assert_int_eq(vlp_tokenizer_tokens(tok, text, ids, *n, &again), VLP_OK);
    ck_assert_int_eq(again, *n);
    return ids;
}

static void expect_tokens(const vlp_tokenizer *tok, const char *text, const int *want, int n_want) {
    int n;
    int *ids = tokens(tok, text, &n);
    ck_assert_msg(n == n_want, "'%s': %d tokens, want %d", text, n, n_want);
    for (int i = 0; i < n; i++) ck_assert_msg(ids[i] == want[i], "'%s' token %d: %d, want %d", text, i, ids[i], want[i]);
    free(ids);
}

static char *decode(const vlp_tokenizer *tok, const int *ids, int n) {
    size_t len = 0;
    ck_assert_int_eq(vlp_tokenizer_decode(tok, ids, n, NULL, 0, &len), VLP_OK);
    char *out = malloc(len + 1);
    size_t again = 0;
    ck_assert_int_eq(vlp_tokenizer_decode(tok, ids, n, out, len + 1, &again), VLP_OK);
    ck_assert_uint_eq(again, len);
    ck_assert_uint_eq(strlen(out), len);
    return out;
}

/* Captions to train on: repeated words so that merges happen. */
static const char *const corpus[] = {
    "A dog runs on the beach.",
    "A dog and a cat sit on the mat.",
    "The cat's toy is red & blue &amp; green &lt;3",
    "Crème brûlée at the café 😀 😀",
    "東京タワー and 東京 station, 2020",
    "two dogs don't like the rain",
    "three cats can't see the dog",
    "a red car next to a blue car",
    "a photo of a dog",
    "a photo of a cat",
    "a photo of the beach at sunset",
    "ΟΔΟΣ ΣΑΣ σοφός",
    "👩‍👩‍👧‍👦 at the beach 👍🏽👍🏽",
    "the the the the",
    "an ankle boot and a sneaker",
    "a T-shirt/top, a trouser, a pullover",
};
#define N_CORPUS ((int)(sizeof corpus / sizeof *corpus))

static vlp_tokenizer *train(int vocab_size) {
    vlp_tokenizer *tok = NULL;
    int rc = vlp_tokenizer_train(&tok, corpus, N_CORPUS, vocab_size);
    ck_assert_msg(rc == VLP_OK, "train: %s", vlp_error_message());
    return tok;
}

START_TEST(test_vocab_layout) {
    vlp_tokenizer *tok = load_text("empty.bpe", "#version: 0.2\n");
    ck_assert_int_eq(vlp_tokenizer_n_merges(tok), 0);
    ck_assert_int_eq(vlp_tokenizer_vocab_size(tok), 514);
    ck_assert_int_eq(vlp_tokenizer_sot(tok), 512);
    ck_assert_int_eq(vlp_tokenizer_eot(tok), 513);
    /* CLIP's ids: '!' is 0 (first printing byte), 'a' 64, "a</w>" 320 (as in
     * CLIP's vocabulary), a control byte after the 188 printing ones. */
    expect_tokens(tok, "!!", (int[]){0, 256}, 2);
    expect_tokens(tok, "a", (int[]){320}, 1);
    expect_tokens(tok, "ab", (int[]){64, 321}, 2);
    expect_tokens(tok, "\x01", (int[]){256 + 188 + 1}, 1);
    /* ÿ (U+00FF) is the bytes C3 BF, both in the third printing range. */
    expect_tokens(tok, "\xc3\xbf", (int[]){106 + (0xc3 - 174), 256 + 106 + (0xbf - 174)}, 2);
    vlp_tokenizer_free(tok);

    tok = load_text("cat.bpe", "#version: 0.2\nc a\nca t</w>\n");
    ck_assert_int_eq(vlp_tokenizer_vocab_size(tok), VLP_TOKENIZER_VOCAB_SIZE(2));
    ck_assert_int_eq(vlp_tokenizer_sot(tok), 514);
    ck_assert_int_eq(vlp_tokenizer_eot(tok), 515);
    expect_tokens(tok, "cat", (int[]){513}, 1);
    expect_tokens(tok, "a cat", (int[]){320, 513}, 2);
    expect_tokens(tok, "cats", (int[]){512, 83, 256 + 82}, 3); /* "t" is no longer last: no merge 2 */
    vlp_tokenizer_free(tok);
}
END_TEST

START_TEST(test_merge_order) {
    /* Lowest rank first: (a, t</w>) outranks (c, a), so "cat" is c + at</w>. */
    vlp_tokenizer *tok = load_text("rank.bpe", "#version: 0.2\na t</w>\nc a\n");
    expect_tokens(tok, "cat", (int[]){66, 512}, 2);
    vlp_tokenizer_free(tok);
    tok = load_text("rank2.bpe", "#version: 0.2\nc a\na t</w>\n");
    expect_tokens(tok, "cat", (int[]){512, 339}, 2);
    vlp_tokenizer_free(tok);
    /* Every occurrence, left to right, no overlaps: aaaa -> aa a a</w>. */
    tok = load_text("aa.bpe", "#version: 0.2\na a\n");
    expect_tokens(tok, "aaaa", (int[]){512, 64, 320}, 3);
    expect_tokens(tok, "aaa", (int[]){512, 320}, 2);
    vlp_tokenizer_free(tok);
    /* Two merges spelling "abc</w>": the later id wins, as in CLIP's dict. */
    tok = load_text("dup.bpe", "#version: 0.2\na b\nab c</w>\nb c</w>\na bc</w>\n");
    expect_tokens(tok, "abc", (int[]){515}, 1);
    expect_tokens(tok, "xbc", (int[]){87, 514}, 2);
    vlp_tokenizer_free(tok);
}
END_TEST

/* decode(encode(text)) is the cleaned text with its words space-separated. */
static const struct {
    const char *text, *want;
} round_trips[] = {
    {"A photo of a CAT.", "a photo of a cat ."},
    {"Crème Brûlée at the Café", "crème brûlée at the café"},
    {"東京タワー 北京的猫 서울", "東京タワー 北京的猫 서울"},
    {"東京2020", "東京 2 0 2 0"},
    {"👩‍👩‍👧‍👦 👍🏽 🏳️‍🌈 🇫🇷", "👩‍👩‍👧‍👦 👍🏽 🏳️‍🌈 🇫🇷"},
    {"don't STOP, it's ok!", "don 't stop , it 's ok !"},
    {"", ""},
    {" \t\n \r\n ", ""},
    {"  lots   of\tspace\u00a0\u3000here  ", "lots of space here"},
    {"Tom &amp; Jerry &lt;3 &#39;hi&#39; &#x1F600; &amp;lt;", "tom & jerry < 3 ' hi ' 😀 <"},
    {"&#0; &#xD800; &#99999999999; &copy;", "\xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd \xc2\xa9"},
    {"Baden-W&amp;uuml;rttemberg", "baden - w\xc3\xbcrttemberg"},
    {"&notit; &notin; &amp;amp; &ampx", "\xc2\xac it ; \xe2\x88\x89 & & x"},
    {"&amp;amp;amp;", "& amp ;"}, /* only twice */
    {"&AMP;&Amp;", "&& amp ;"},   /* names are case-sensitive: there is no "Amp" */
    {"a \x1c b\x1c", "a \x1c b"}, /* CLIP's \s (the regex module's) is not str.isspace() */
    {"ΟΔΟΣ ΣΑΣ. Σ", "οδος σας . σ"},
    {"İstanbul", "i \xcc\x87 stanbul"}, /* "i" + U+0307, a mark: not a letter */
    {"rock'n'roll", "rock ' n ' roll"},
    {"x</w>y", "x </ w > y"},
};

START_TEST(test_round_trips) {
    vlp_tokenizer *toks[2] = {load_text("bytes.bpe", "#version: 0.2\n"), train(1000)};
    ck_assert_int_ge(vlp_tokenizer_n_merges(toks[1]), 40);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < sizeof round_trips / sizeof *round_trips; i++) {
            int n;
            int *ids = tokens(toks[k], round_trips[i].text, &n);
            char *got = decode(toks[k], ids, n);
            ck_assert_msg(!strcmp(got, round_trips[i].want), "tokenizer %d: '%s' -> '%s', want '%s'", k,
                          round_trips[i].text, got, round_trips[i].want);
            free(got);
            free(ids);
        }
    vlp_tokenizer_free(toks[0]);
    vlp_tokenizer_free(toks[1]);
}
END_TEST

START_TEST(test_invalid_utf8) {
    vlp_tokenizer *tok = train(800);
    /* Lone bytes, a truncated sequence, an encoded surrogate: each invalid
     * byte is a symbol of its own and comes back unchanged. */
    const char *text = "\xff\xfe" "abc \xc3 caf\xe9 \xed\xa0\x80 \xf0\x9f\x98";
    int n;
    int *ids = tokens(tok, text, &n);
    char *got = decode(tok, ids, n);
    ck_assert_str_eq(got, "\xff\xfe abc \xc3 caf \xe9 \xed\xa0\x80 \xf0\x9f\x98");
    free(got);
    free(ids);
    /* Every byte alone: whitespace vanishes, letters lower, the rest stays. */
    for (int b = 1; b < 256; b++) {
        char in[2] = {(char)b, 0}, want[2] = {(char)(b >= 'A' && b <= 'Z' ? b + 32 : b), 0};
        if ((b >= 9 && b <= 13) || b == ' ' || (b >= 0x1c && b <= 0x1f)) want[0] = 0;
        ids = tokens(tok, in, &n);
        got = decode(tok, ids, n);
        ck_assert_msg(!strcmp(got, want), "byte 0x%02x decodes to '%s'", b, got);
        free(got);
        free(ids);
    }
    vlp_tokenizer_free(tok);
}
END_TEST

START_TEST(test_truncation_and_padding) {
    vlp_tokenizer *tok = train(700);
    int sot = vlp_tokenizer_sot(tok), eot = vlp_tokenizer_eot(tok);
    char text[4096] = "";
    for (int i = 0; i < 60; i++) strcat(text, i % 2 ? "dog! " : "cat, ");
    int n_tok;
    int *all = tokens(tok, text, &n_tok);
    ck_assert_int_gt(n_tok, 100);
    int ids[77], n_out = -1;
    ck_assert_int_eq(vlp_tokenizer_encode(tok, text, ids, 77, &n_out), VLP_OK);
    ck_assert_int_eq(n_out, 77);
    ck_assert_int_eq(ids[0], sot);
    ck_assert_int_eq(ids[76], eot);
    for (int i = 1; i < 76; i++) ck_assert_int_eq(ids[i], all[i - 1]);
    free(all);
    ck_assert_int_eq(vlp_tokenizer_encode(tok, text, ids, 2, &n_out), VLP_OK);
    ck_assert_int_eq(n_out, 2);
    ck_assert_int_eq(ids[0], sot);
    ck_assert_int_eq(ids[1], eot);
    ck_assert_int_eq(vlp_tokenizer_encode(tok, text, ids, 1, &n_out), VLP_EINVAL);

    /* Short: EOT right after the tokens, zeros after, argmax finds EOT. */
    all = tokens(tok, "a photo of a dog", &n_tok);
    for (int i = 0; i < 77; i++) ids[i] = -7;
    ck_assert_int_eq(vlp_tokenizer_encode(tok, "a photo of a dog", ids, 77, &n_out), VLP_OK);
    ck_assert_int_eq(n_out, n_tok + 2);
    ck_assert_int_eq(ids[0], sot);
    for (int i = 0; i < n_tok; i++) ck_assert_int_eq(ids[1 + i], all[i]);
    ck_assert_int_eq(ids[n_tok + 1], eot);
    int argmax = 0;
    for (int i = 0; i < 77; i++) {
        if (i >= n_out) ck_assert_int_eq(ids[i], 0);
        if (ids[i] > ids[argmax]) argmax = i;
    }
    ck_assert_int_eq(argmax, n_out - 1);
    /* Exactly full: nothing dropped. */
    ck_assert_int_eq(vlp_tokenizer_encode(tok, "a photo of a dog", ids, n_tok + 2, &n_out), VLP_OK);
    ck_assert_int_eq(n_out, n_tok + 2);
    ck_assert_int_eq(ids[n_tok], all[n_tok - 1]);
    ck_assert_int_eq(ids[n_tok + 1], eot);
    free(all);
    vlp_tokenizer_free(tok);
}
END_TEST

START_TEST(test_specials) {
    vlp_tokenizer *tok = train(700);
    int v = vlp_tokenizer_vocab_size(tok), sot = vlp_tokenizer_sot(tok), eot = vlp_tokenizer_eot(tok);
    ck_assert_int_eq(sot, v - 2);
    ck_assert_int_eq(eot, v - 1);
    /* As in CLIP: the literal texts are the special ids (after lower-casing)... */
    expect_tokens(tok, "a <|endoftext|>", (int[]){320, eot}, 2);
    expect_tokens(tok, "<|STARTOFTEXT|>", (int[]){sot}, 1);
    /* ...which decode skips, and ids after the last EOT are padding. */
    int ids[8] = {sot, 320, eot, 0, 0, 0, 0, 0};
    char *got = decode(tok, ids, 8);
    ck_assert_str_eq(got, "a");
    free(got);
    ids[1] = v;
    ck_assert_int_eq(vlp_tokenizer_decode(tok, ids, 8, NULL, 0, NULL), VLP_EINVAL);
    ck_assert_ptr_nonnull(strstr(vlp_error_message(), "ids[1]"));
    /* Without EOT nothing is padding: 0 is the token "!". */
    got = decode(tok, (int[]){320, 0}, 2);
    ck_assert_str_eq(got, "a !");
    free(got);
    vlp_tokenizer_free(tok);
}
END_TEST

START_TEST(test_decode_truncates_like_snprintf) {
    vlp_tokenizer *tok = load_text("bytes.bpe", "#version: 0.2\n");
    int n;
    int *ids = tokens(tok, "hello world", &n);
    char out[6];
    size_t len = 0;
    ck_assert_int_eq(vlp_tokenizer_decode(tok, ids, n, out, sizeof out, &len), VLP_OK);
    ck_assert_uint_eq(len, 11);
    ck_assert_str_eq(out, "hello");
    free(ids);
    vlp_tokenizer_free(tok);
}
END_TEST

static char *train_to_file(const char *const *texts, int n, int vocab_size, const char *name) {
    vlp_tokenizer *tok = NULL;
    int rc = vlp_tokenizer_train(&tok, texts, n, vocab_size);
    ck_assert_msg(rc == VLP_OK, "train: %s", vlp_error_message());
    rc = vlp_tokenizer_save(tok, tmp(name));
    ck_assert_msg(rc == VLP_OK, "save: %s", vlp_error_message());
    vlp_tokenizer_free(tok);
    size_t size;
    return read_file(tmp(name), &size);
}

START_TEST(test_train_by_hand) {
    char *got;
    /* (a, b</w>) occurs 3 times, (a, b) and (b, c</w>) once: one merge. */
    got = train_to_file((const char *[]){"ab ab ab", "abc"}, 2, 1000, "m1.bpe");
    ck_assert_str_eq(got, "#version: 0.2\na b</w>\n");
    free(got);
    /* A tie goes to the bytewise smaller pair. */
    got = train_to_file((const char *[]){"xy xy AB ab"}, 1, 1000, "m2.bpe");
    ck_assert_str_eq(got, "#version: 0.2\na b</w>\nx y</w>\n");
    free(got);
    /* The vocabulary size stops it: 515 = 512 + 1 merge + 2. */
    got = train_to_file((const char *[]){"xy xy ab ab"}, 1, 515, "m3.bpe");
    ck_assert_str_eq(got, "#version: 0.2\na b</w>\n");
    free(got);
    /* Overlapping pairs count: "aaaa" holds (a, a) twice. */
    got = train_to_file((const char *[]){"aaaa"}, 1, 1000, "m4.bpe");
    ck_assert_str_eq(got, "#version: 0.2\na a\n");
    free(got);
    got = train_to_file((const char *[]){"aaa"}, 1, 1000, "m5.bpe");
    ck_assert_str_eq(got, "#version: 0.2\n");
    free(got);
    /* Specials are never split into merges; bytes are in CLIP's form. */
    got = train_to_file((const char *[]){"<|endoftext|> <|endoftext|>", "é é"}, 2, 1000, "m6.bpe");
    ck_assert_str_eq(got, "#version: 0.2\n\xc3\x83 \xc2\xa9</w>\n");
    free(got);
    vlp_tokenizer *tok = NULL;
    ck_assert_int_eq(vlp_tokenizer_train(&tok, corpus, N_CORPUS, 513), VLP_EINVAL);
    ck_assert_ptr_null(tok);
}
END_TEST

START_TEST(test_train_deterministic) {
    /* Until no pair occurs twice (the corpus has fewer than 10000 merges). */
    char *a = train_to_file(corpus, N_CORPUS, 10000, "a.bpe");
    char *b = train_to_file(corpus, N_CORPUS, 10000, "b.bpe");
    ck_assert_str_eq(a, b);
    int lines = 0;
    for (char *p = a; *p; p++) lines += *p == '\n';
    ck_assert_int_gt(lines, 1 + 30);
    /* Stopped by the size: exactly 30 merges, the first 30 of the full run. */
    char *c = train_to_file(corpus, N_CORPUS, VLP_TOKENIZER_VOCAB_SIZE(30), "c.bpe");
    int c_lines = 0;
    for (char *p = c; *p; p++) c_lines += *p == '\n';
    ck_assert_int_eq(c_lines, 1 + 30);
    ck_assert(!strncmp(a, c, strlen(c)));
    free(a);
    free(b);
    free(c);
}
END_TEST

/* CLIP's cleaning, case by case: each text must give the ids of the text
 * Python's html.unescape (twice), whitespace collapsing and str.lower make
 * of it, with CLIP's own merges (tokenizer_parity.sh compares with Python
 * itself; these are the cases worked by hand). */
static const struct {
    const char *text, *same_as, *why;
} cleaned[] = {
    {"Baden-W&amp;uuml;rttemberg", "baden-w\xc3\xbcrttemberg", "&amp; then &uuml;: unescaped twice"},
    {"&amp;amp;", "&", "twice, and only twice"},
    {"&amp;lt;b&amp;gt;", "<b>", "escaped markup"},
    {"&notit;", "\xc2\xac" "it;", "the longest legacy name without ';' is a prefix"},
    {"&notin;", "\xe2\x88\x89", "a whole name wins over its prefix"},
    {"&not &ampx &AMP &copy2020", "\xc2\xac &x & \xc2\xa9" "2020", "legacy names need no ';'"},
    {"&notin &nbspx", "\xc2\xac" "in x", "'notin' has a ';': only 'not' matches bare"},
    {"&uuml &Uuml;", "\xc3\xbc \xc3\xbc", "a bare legacy name; upper case lowered after"},
    {"&eacutex; &eacute", "\xc3\xa9x; \xc3\xa9", "prefix in a longer name"},
    {"a&ThickSpace;b", "a b", "two code points (U+205F U+200A), both spaces: one run"},
    {"&acE;", "\xe2\x88\xbe\xcc\xb3", "two code points, the second a mark"},
    {"&nvlt;", "<\xe2\x83\x92", "two code points"},
    {"&CounterClockwiseContourIntegral;", "\xe2\x88\xb3", "the longest name"},
    {"&#x80;&#128;&#X80", "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", "0x80..0x9F read as Windows-1252"},
    {"&#x81;&#x9F;", "\xc2\x81\xc5\xb8", "0x81 has no Windows-1252 character: itself"},
    {"a&#133;b", "a\xe2\x80\xa6" "b", "&#133; is the ellipsis, not NEL (no space)"},
    {"&#0;", "\xef\xbf\xbd", "NUL gives U+FFFD"},
    {"&#xD800;&#xdfff;", "\xef\xbf\xbd\xef\xbf\xbd", "surrogates give U+FFFD"},
    {"&#x110000;&#99999999999999999999;&#x10FFFF;", "\xef\xbf\xbd\xef\xbf\xbd",
     "beyond Unicode U+FFFD; noncharacter dropped"},
    {"x&#1;&#x7f;&#xFFFE;&#xFDD0;&#11;y", "xy", "controls and noncharacters dropped"},
    {"&#65x &#x41g &#0065;", "ax ag a", "numeric without ';' ends at the first non-digit"},
    {"&#; &#x; &# &#xg", "&#; &#x; &# &#xg", "no digits: text"},
    {"&#38;amp; &#38;#65;", "& a", "a numeric '&' starts a name on the second pass"},
    {"a&#13;&#10;b&#9;c", "a b c", "numeric whitespace collapses"},
    {"\xc2\xa0 a\xc2\xa0\xe3\x80\x80" "b\xe3\x80\x80", "a b", "NBSP and U+3000 are \\s"},
    {"a&nbsp;&#x3000;&#x2028;\xe1\x9a\x80" "b", "a b", "...also from references; U+1680"},
    {"\x1c\x1d a\x1e\x1f", "a", "strip() takes U+001C..U+001F at the ends"},
    {"\xc4\xb0stanbul", "i\xcc\x87stanbul", "U+0130 lowers to i + U+0307"},
    {"\xce\x91\xce\xa3\xc2\xaa \xce\x91\xce\xa3", "\xce\xb1\xcf\x83\xc2\xaa \xce\xb1\xcf\x82",
     "sigma before a cased ordinal indicator is not final"},
};

static vlp_tokenizer *load_clip(void) {
    vlp_tokenizer *tok = NULL;
    const char *path = VLP_SOURCE_DIR "/tests/data/clip/bpe_simple_vocab_16e6.txt.gz";
    int rc = vlp_tokenizer_load(&tok, path, VLP_TOKENIZER_CLIP_MERGES);
    ck_assert_msg(rc == VLP_OK, "load %s: %s", path, vlp_error_message());
    return tok;
}

static bool same_tokens(const vlp_tokenizer *tok, const char *a, const char *b) {
    int na, nb;
    int *x = tokens(tok, a, &na), *y = tokens(tok, b, &nb);
    bool same = na == nb && !memcmp(x, y, sizeof *x * (size_t)na);
    free(x);
    free(y);
    return same;
}

START_TEST(test_clip_cleaning) {
    vlp_tokenizer *tok = load_clip();
    for (size_t i = 0; i < sizeof cleaned / sizeof *cleaned; i++)
        ck_assert_msg(same_tokens(tok, cleaned[i].text, cleaned[i].same_as), "'%s' is not '%s' (%s)", cleaned[i].text,
                      cleaned[i].same_as, cleaned[i].why);
    /* Decimal references longer than Python's int() digit limit (4300,
     * leading zeros included) are the number they spell: 65, then one too
     * large for Unicode. */
    char big[5200] = "&#";
    memset(big + 2, '0', 5000);
    strcpy(big + 5002, "65;&#");
    memset(big + 5007, '9', 150);
    strcpy(big + 5157, ";");
    ck_assert(same_tokens(tok, big, "a\xef\xbf\xbd"));
    /* Equal ids would also hide both texts being cleaned the same wrong
     * way: decoding shows the words themselves. */
    int n;
    int *ids = tokens(tok, "Baden-W&amp;uuml;rttemberg", &n);
    char *text = decode(tok, ids, n);
    ck_assert_str_eq(text, "baden - w\xc3\xbcrttemberg");
    free(text);
    free(ids);
    vlp_tokenizer_free(tok);
}
END_TEST

START_TEST(test_html_tables) {
    /* Binary search needs the names in strcmp order; the HTML standard has
     * 2231 of them, 106 also without ';'. */
    ck_assert_uint_eq(vlp_html_n_entities, 2231);
    size_t bare = 0;
    for (size_t i = 0; i < vlp_html_n_entities; i++) {
        const vlp_html_entity *e = &vlp_html_entities[i];
        if (i) ck_assert_msg(strcmp(vlp_html_entities[i - 1].name, e->name) < 0, "%s out of order", e->name);
        ck_assert(e->cp[0] > 0 && e->cp[0] <= 0x10FFFF && e->cp[1] >= 0);
        bare += e->name[strlen(e->name) - 1] != ';';
    }
    ck_assert_uint_eq(bare, 106);
    for (size_t i = 0; i < vlp_html_n_charrefs; i++) {
        const vlp_html_charref *r = &vlp_html_charrefs[i];
        ck_assert(r->first <= r->last && r->last <= 0x10FFFF && r->to >= -1);
        if (i) ck_assert(vlp_html_charrefs[i - 1].last < r->first);
    }
}
END_TEST

static const char *const probes[] = {
    "a photo of a dog", "A DOG AND A CAT", "crème brûlée 😀", "東京タワー", "don't", "", "unseen words zxq", "\xff",
};

static void expect_same_encodings(const vlp_tokenizer *x, const vlp_tokenizer *y) {
    ck_assert_int_eq(vlp_tokenizer_vocab_size(x), vlp_tokenizer_vocab_size(y));
    for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
        int a[77], b[77], na, nb;
        ck_assert_int_eq(vlp_tokenizer_encode(x, probes[i], a, 77, &na), VLP_OK);
        ck_assert_int_eq(vlp_tokenizer_encode(y, probes[i], b, 77, &nb), VLP_OK);
        ck_assert_int_eq(na, nb);
        for (int k = 0; k < 77; k++) ck_assert_msg(a[k] == b[k], "'%s' id %d: %d vs %d", probes[i], k, a[k], b[k]);
    }
}

START_TEST(test_save_load) {
    vlp_tokenizer *tok = train(800), *plain = NULL, *gz = NULL, *part = NULL;
    ck_assert_int_eq(vlp_tokenizer_save(tok, tmp("tok.bpe")), VLP_OK);
    ck_assert_int_eq(vlp_tokenizer_save(tok, tmp("tok.bpe.gz")), VLP_OK);
    size_t n_plain, n_gz;
    char *text = read_file(tmp("tok.bpe"), &n_plain), *packed = read_file(tmp("tok.bpe.gz"), &n_gz);
    ck_assert(n_gz > 2 && (unsigned char)packed[0] == 0x1f && (unsigned char)packed[1] == 0x8b);
    ck_assert(!memcmp(text, "#version: 0.2\n", 14));
    ck_assert_int_eq(vlp_tokenizer_load(&plain, tmp("tok.bpe"), -1), VLP_OK);
    ck_assert_int_eq(vlp_tokenizer_load(&gz, tmp("tok.bpe.gz"), -1), VLP_OK);
    expect_same_encodings(tok, plain);
    expect_same_encodings(tok, gz);
    /* Saving what was loaded gives the same bytes. */
    ck_assert_int_eq(vlp_tokenizer_save(gz, tmp("again.bpe")), VLP_OK);
    size_t n_again;
    char *again = read_file(tmp("again.bpe"), &n_again);
    ck_assert_uint_eq(n_again, n_plain);
    ck_assert(!memcmp(again, text, n_plain));
    /* max_merges keeps the first merges, as CLIP keeps its first 48894. */
    ck_assert_int_eq(vlp_tokenizer_load(&part, tmp("tok.bpe.gz"), 10), VLP_OK);
    ck_assert_int_eq(vlp_tokenizer_n_merges(part), 10);
    ck_assert_int_eq(vlp_tokenizer_vocab_size(part), 524);
    ck_assert_int_eq(vlp_tokenizer_eot(part), 523);
    free(text);
    free(packed);
    free(again);
    vlp_tokenizer_free(tok);
    vlp_tokenizer_free(plain);
    vlp_tokenizer_free(gz);
    vlp_tokenizer_free(part);
}
END_TEST

START_TEST(test_clip_style_file) {
    /* CLIP's header, gzip-compressed, CRLF tolerated, lines past max_merges
     * never read (CLIP's file holds 262144 merges and uses 48894). */
    const char *merges = "\"bpe_simple_vocab_16e6.txt#version: 0.2\ni n\r\nt h\nth e</w>\nĠ Ġ\nnot a merge line\n";
    gzFile f = gzopen(tmp("clip.txt.gz"), "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(gzputs(f, merges), (int)strlen(merges));
    ck_assert_int_eq(gzclose(f), Z_OK);
    vlp_tokenizer *tok = NULL;
    ck_assert_int_eq(vlp_tokenizer_load(&tok, tmp("clip.txt.gz"), 4), VLP_OK);
    ck_assert_int_eq(vlp_tokenizer_vocab_size(tok), 518);
    expect_tokens(tok, "the thing", (int[]){514, 513, 512, 256 + 70}, 4);
    vlp_tokenizer_free(tok);
    ck_assert_int_eq(vlp_tokenizer_load(&tok, tmp("clip.txt.gz"), -1), VLP_EFORMAT);
    ck_assert_ptr_nonnull(strstr(vlp_error_message(), "clip.txt.gz:6:"));
}
END_TEST

static void expect_load_error(const char *name, const char *content, int code, const char *where) {
    if (content) write_file(tmp(name), content);
    vlp_tokenizer *tok = (vlp_tokenizer *)1;
    int rc = vlp_tokenizer_load(&tok, tmp(name), -1);
    ck_assert_msg(rc == code, "%s: rc %d, want %d (%s)", name, rc, code, vlp_error_message());
    ck_assert_ptr_null(tok);
    char want[256];
    snprintf(want, sizeof want, "%s%s", tmp(name), where);
    ck_assert_msg(strstr(vlp_error_message(), want), "%s: message '%s' does not name '%s'", name,
                  vlp_error_message(), want);
}

START_TEST(test_bad_files) {
    expect_load_error("three.bpe", "#version: 0.2\na b\nbad line here\n", VLP_EFORMAT, ":3:");
    expect_load_error("blank.bpe", "#version: 0.2\na b\n\nc d\n", VLP_EFORMAT, ":3:");
    expect_load_error("twospace.bpe", "#version: 0.2\na  b\n", VLP_EFORMAT, ":2:");
    expect_load_error("lonely.bpe", "#version: 0.2\nab\n", VLP_EFORMAT, ":2:");
    expect_load_error("tab.bpe", "#version: 0.2\na b\nc\td e\n", VLP_EFORMAT, ":3:");
    expect_load_error("latin1.bpe", "#version: 0.2\n\xe9 b\n", VLP_EFORMAT, ":2:");
    expect_load_error("header.bpe", "a b\nc d\n", VLP_EFORMAT, ":1:");
    expect_load_error("empty.bpe", "", VLP_EFORMAT, ":1:");
    expect_load_error("missing.bpe", NULL, VLP_EIO, ": cannot open");
    /* A gzip file cut short is a read error, not a shorter vocabulary. */
    gzFile f = gzopen(tmp("cut.gz"), "wb");
    gzputs(f, "#version: 0.2\n");
    for (int i = 0; i < 2000; i++) gzprintf(f, "a%d b\n", i % 10);
    gzclose(f);
    size_t n;
    char *data = read_file(tmp("cut.gz"), &n);
    FILE *out = fopen(tmp("cut.gz"), "wb");
    fwrite(data, 1, n / 2, out);
    fclose(out);
    free(data);
    expect_load_error("cut.gz", NULL, VLP_EIO, ": cannot read");
}
END_TEST

START_TEST(test_cache_flood) {
    /* More distinct words than the cache holds: results must not change as
     * it empties and refills. */
    vlp_tokenizer *tok = train(800);
    int first[77], later[77], n1, n2;
    ck_assert_int_eq(vlp_tokenizer_encode(tok, probes[0], first, 77, &n1), VLP_OK);
    char word[16];
    for (int i = 0; i < 40000; i++) {
        int ids[8], n;
        snprintf(word, sizeof word, "%c%c%c%c", 'a' + i % 26, 'a' + i / 26 % 26, 'a' + i / 676 % 26, 'a' + i / 17576);
        ck_assert_int_eq(vlp_tokenizer_encode(tok, word, ids, 8, &n), VLP_OK);
    }
    ck_assert_int_eq(vlp_tokenizer_encode(tok, probes[0], later, 77, &n2), VLP_OK);
    ck_assert_int_eq(n1, n2);
    for (int k = 0; k < 77; k++) ck_assert_int_eq(first[k], later[k]);
    vlp_tokenizer_free(tok);
}
END_TEST

typedef struct {
    const vlp_tokenizer *tok;
    int ids[N_CORPUS][77];
} thread_job;

static void *encode_corpus(void *arg) {
    thread_job *job = arg;
    for (int rep = 0; rep < 50; rep++)
        for (int i = 0; i < N_CORPUS; i++)
            if (vlp_tokenizer_encode(job->tok, corpus[i], job->ids[i], 77, NULL)) return arg;
    return NULL;
}

START_TEST(test_threads_share_a_tokenizer) {
    vlp_tokenizer *tok = train(800);
    static thread_job jobs[3];
    pthread_t threads[2];
    for (int t = 0; t < 3; t++) jobs[t].tok = tok;
    encode_corpus(&jobs[2]); /* alone first: the reference */
    for (int t = 0; t < 2; t++) ck_assert_int_eq(pthread_create(&threads[t], NULL, encode_corpus, &jobs[t]), 0);
    for (int t = 0; t < 2; t++) {
        void *failed;
        pthread_join(threads[t], &failed);
        ck_assert_ptr_null(failed);
        ck_assert(!memcmp(jobs[t].ids, jobs[2].ids, sizeof jobs[2].ids));
    }
    vlp_tokenizer_free(tok);
}
END_TEST

static Suite *tokenizer_suite(void) {
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, test_vocab_layout);
    tcase_add_test(tc, test_merge_order);
    tcase_add_test(tc, test_round_trips);
    tcase_add_test(tc, test_clip_cleaning);
    tcase_add_test(tc, test_html_tables);
    tcase_add_test(tc, test_invalid_utf8);
    tcase_add_test(tc, test_truncation_and_padding);
    tcase_add_test(tc, test_specials);
    tcase_add_test(tc, test_decode_truncates_like_snprintf);
    tcase_add_test(tc, test_train_by_hand);
    tcase_add_test(tc, test_train_deterministic);
    tcase_add_test(tc, test_save_load);
    tcase_add_test(tc, test_clip_style_file);
    tcase_add_test(tc, test_bad_files);
    tcase_add_test(tc, test_cache_flood);
    tcase_add_test(tc, test_threads_share_a_tokenizer);
    suite_add_tcase(s, tc);
    return s;
}

VLP_TEST_MAIN(tokenizer_suite)
