/* Text to words, as OpenAI CLIP's simple_tokenizer does before BPE: clean,
 * lower-case, split by its regex (matched by hand, Unicode facts from
 * libutf8proc). Not ftfy, and not a regex engine. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "autograd/error.h"
#include "data/tokenizer_impl.h"

/* CLIP's steps: html.unescape twice, strip, \s+ -> " ", strip, lower, then
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * with Python's `regex` module and IGNORECASE. CLIP runs ftfy.fix_text first
 * (mojibake repair, NFC and more); we do not, so a decomposed "e" + U+0301
 * splits the word at the accent here where CLIP would see one letter.
 * scripts/bpe_ref.py does the same in Python; tokenizer_parity.sh compares
 * the two on every code point of planes 0, 1 and 14. Known differences left:
 * final sigma after the few cased characters without a case mapping
 * (ordinal indicators, squared Latin letters) and after characters new in
 * Unicode 15 (utf8proc) that Python 3.11's str.lower (Unicode 14) lacks. */

/* Invalid UTF-8 bytes travel as lone surrogates U+DC80..U+DCFF, as Python's
 * "surrogateescape" does. Valid UTF-8 never decodes to a surrogate, so they
 * cannot be confused with text; they are neither space, letter nor number, so
 * they land in the regex's last class like any other symbol; and they turn
 * back into their byte, so BPE (which can spell any byte) keeps them. */
#define ESCAPE_BASE 0xDC00
static bool is_escape(int32_t c) { return c >= 0xDC80 && c <= 0xDCFF; }

static size_t utf8_decode(const unsigned char *s, size_t n, int32_t *out) {
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &c);
        /* Escaping only the first byte and resuming after it gives what
         * surrogateescape gives: the rest of a bad sequence is continuation
         * bytes, which cannot start a character either. */
        if (k <= 0) out[m++] = ESCAPE_BASE + s[i++];
        else out[m++] = c, i += (size_t)k;
    }
    return m;
}

/* --- HTML entities ------------------------------------------------------ */

/* The entities captions really carry, plus numeric references, which is a
 * subset of Python's html.unescape: it also knows the other HTML5 names, names
 * without ';' ("&amp" alone) and remaps &#128;..&#159; to cp1252 and drops
 * some control characters. scripts/bpe_ref.py implements this same subset. */
static const struct {
    const char *name; /* with its ';' */
    int32_t c;
} named_entities[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}, {"nbsp;", 0xA0}};

static int hex_value(int32_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Length of the entity at s[0] == '&' (0 if none) and its character. */
static size_t entity_at(const int32_t *s, size_t n, int32_t *out) {
    if (n >= 3 && s[1] == '#') {
        size_t i = 2;
        int base = 10;
        if ((s[2] == 'x' || s[2] == 'X') && n >= 4 && hex_value(s[3]) >= 0) base = 16, i = 3;
        if (hex_value(s[i]) < 0 || (base == 10 && hex_value(s[i]) > 9)) return 0;
        int64_t v = 0;
        for (; i < n; i++) {
            int d = hex_value(s[i]);
            if (d < 0 || d >= base) break;
            v = v * base + d;
            if (v > 0x110000) v = 0x110000; /* saturate: already out of range */
        }
        if (i < n && s[i] == ';') i++;
        /* html.unescape's rule for code points that cannot be characters. */
        *out = (v == 0 || (v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF) ? 0xFFFD : (int32_t)v;
        return i;
    }
    for (size_t e = 0; e < sizeof named_entities / sizeof *named_entities; e++) {
        const char *name = named_entities[e].name;
        size_t k = 0;
        while (name[k] && 1 + k < n && s[1 + k] == (unsigned char)name[k]) k++;
        if (!name[k]) {
            *out = named_entities[e].c;
            return 1 + k;
        }
    }
    return 0;
}

/* One left-to-right pass, in place (an entity is never shorter than its
 * character), replacements not rescanned: html.unescape's semantics. */
static size_t unescape(int32_t *s, size_t n) {
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        int32_t c;
        size_t used = s[i] == '&' ? entity_at(s + i, n - i, &c) : 0;
        if (used) s[m++] = c, i += used;
        else s[m++] = s[i++];
    }
    return m;
}

/* --- whitespace ---------------------------------------------------------- */

/* Python's str.isspace(), used by CLIP's strip(): category Zs or bidi class
 * WS, B or S. */
static bool py_isspace(int32_t c) {
    if (is_escape(c)) return false;
    const utf8proc_property_t *p = utf8proc_get_property(c);
    return p->category == UTF8PROC_CATEGORY_ZS || p->bidi_class == UTF8PROC_BIDI_CLASS_WS ||
           p->bidi_class == UTF8PROC_BIDI_CLASS_B || p->bidi_class == UTF8PROC_BIDI_CLASS_S;
}

/* The regex module's \s, Unicode White_Space: the same set less the four
 * information separators U+001C..U+001F, which strip() removes at the ends
 * but \s+ does not collapse (so inside a text they are symbols). */
static bool re_space(int32_t c) { return py_isspace(c) && !(c >= 0x1C && c <= 0x1F); }

static size_t strip(int32_t *s, size_t n) {
    size_t a = 0;
    while (a < n && py_isspace(s[a])) a++;
    while (n > a && py_isspace(s[n - 1])) n--;
    memmove(s, s + a, (n - a) * sizeof *s);
    return n - a;
}

static size_t collapse_spaces(int32_t *s, size_t n) {
    size_t m = 0;
    bool in_run = false;
    for (size_t i = 0; i < n; i++) {
        bool space = re_space(s[i]);
        if (!space) s[m++] = s[i];
        else if (!in_run) s[m++] = ' ';
        in_run = space;
    }
    return m;
}

/* --- lower case ---------------------------------------------------------- */

static int category(int32_t c) { return is_escape(c) ? UTF8PROC_CATEGORY_CS : utf8proc_category(c); }

/* Unicode's Cased (Lu, Ll, Lt or changes under case mapping). Misses the few
 * Other_Lowercase/Other_Uppercase characters without a mapping (ordinal
 * indicators, squared Latin letters); only final sigma asks. */
static bool is_cased(int32_t c) {
    int k = category(c);
    return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT ||
           (!is_escape(c) && (utf8proc_tolower(c) != c || utf8proc_toupper(c) != c));
}

/* Unicode's Case_Ignorable: categories Mn, Me, Cf, Lm, Sk and the Word_Break
 * classes MidLetter, MidNumLet and Single_Quote (UAX #29), listed here
 * because utf8proc does not carry Word_Break. */
static bool is_case_ignorable(int32_t c) {
    static const int32_t mid[] = {0x27,   0x2E,   0x3A,   0xB7,   0x387,  0x55F,  0x5F4,  0x2018, 0x2019,
                                  0x2024, 0x2027, 0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A};
    int k = category(c);
    if (k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
        k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK)
        return true;
    for (size_t i = 0; i < sizeof mid / sizeof *mid; i++)
        if (c == mid[i]) return true;
    return false;
}

/* Capital sigma at s[i] lowers to final sigma when a cased letter precedes it
 * and none follows, case-ignorable characters skipped (Unicode's Final_Sigma,
 * as Python's str.lower() applies it). */
static bool final_sigma(const int32_t *s, size_t n, size_t i) {
    size_t j = i;
    while (j > 0 && is_case_ignorable(s[j - 1])) j--;
    if (j == 0 || !is_cased(s[j - 1])) return false;
    for (j = i + 1; j < n && is_case_ignorable(s[j]); j++) {
    }
    return j == n || !is_cased(s[j]);
}

/* Python's str.lower(): utf8proc's simple mapping, plus the two places where
 * the full mapping differs: U+0130 (capital I with dot) becomes "i" + U+0307,
 * and final sigma. out holds 2n. */
static size_t lower(const int32_t *s, size_t n, int32_t *out) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t c = s[i];
        if (is_escape(c)) out[m++] = c;
        else if (c == 0x130) out[m++] = 'i', out[m++] = 0x307;
        else if (c == 0x3A3) out[m++] = final_sigma(s, n, i) ? 0x3C2 : 0x3C3;
        else out[m++] = utf8proc_tolower(c);
    }
    return m;
}

/* --- the pre-splitting regex -------------------------------------------- */

static bool is_letter(int32_t c) {
    int k = category(c);
    return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}

static bool is_number(int32_t c) {
    int k = category(c);
    return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
}

/* Under IGNORECASE, regex matches a character against a literal or a class
 * through its case folding: "'\u017f" (long s) matches 's, and U+0345 (a
 * combining mark folding to iota) is in neither [\p{L}] nor its negation, so
 * it matches no alternative at all and findall skips it. */
static bool folds_to(int32_t c, char want) {
    if (c == want) return true;
    if (c < 0x80 || is_escape(c)) return c >= 'A' && c <= 'Z' && c + 32 == want;
    utf8proc_int32_t f[8];
    int boundclass = 0;
    utf8proc_ssize_t k = utf8proc_decompose_char(c, f, 8, UTF8PROC_CASEFOLD, &boundclass);
    return k == 1 && f[0] == want;
}

static bool folds_to_letter_or_number(int32_t c) {
    if (c < 0x80 || is_escape(c)) return false;
    utf8proc_int32_t f[8];
    int boundclass = 0;
    utf8proc_ssize_t k = utf8proc_decompose_char(c, f, 8, UTF8PROC_CASEFOLD, &boundclass);
    for (utf8proc_ssize_t i = 0; i < k && i < 8; i++)
        if (is_letter(f[i]) || is_number(f[i])) return true;
    return false;
}

static bool is_other(int32_t c) {
    return !re_space(c) && !is_letter(c) && !is_number(c) && !folds_to_letter_or_number(c);
}

/* Length of s[0..n) matching the ASCII literal lit case-insensitively, or 0. */
static size_t match_literal(const int32_t *s, size_t n, const char *lit) {
    size_t k = 0;
    for (; lit[k]; k++)
        if (k >= n || !folds_to(s[k], lit[k])) return 0;
    return k;
}

/* Length of the regex's match at s[0] (alternatives tried in order, as a
 * backtracking engine does), or 0 where findall would skip a character. */
static size_t match_word(const int32_t *s, size_t n) {
    static const char *const literals[] = {VLP_BPE_SOT_TEXT, VLP_BPE_EOT_TEXT, "'s", "'t", "'re", "'ve",
                                           "'m",             "'ll",            "'d"};
    for (size_t i = 0; i < sizeof literals / sizeof *literals; i++) {
        size_t k = match_literal(s, n, literals[i]);
        if (k) return k;
    }
    size_t k = 0;
    if (is_letter(s[0])) {
        while (k < n && is_letter(s[k])) k++;
    } else if (is_number(s[0])) {
        k = 1;
    } else if (is_other(s[0])) {
        while (k < n && is_other(s[k])) k++;
    }
    return k;
}

static size_t utf8_encode(const int32_t *s, size_t n, unsigned char *out) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_escape(s[i])) out[m++] = (unsigned char)(s[i] - ESCAPE_BASE);
        else m += (size_t)utf8proc_encode_char(s[i], out + m);
    }
    return m;
}

int vlp_bpe_text_words(const char *text, vlp_bpe_word_fn fn, void *ctx) {
    size_t n = strlen(text);
    /* cps: the decoded text; low: lower-cased (at most 2 code points per
     * input one); word: one word's UTF-8 (at most 4 bytes per code point). */
    int32_t *cps = malloc((3 * n + 1) * sizeof *cps);
    unsigned char *word = malloc(8 * n + 1);
    if (!cps || !word) {
        free(cps);
        free(word);
        return vlp_error_set(VLP_ENOMEM, "tokenizer: out of memory for a text of %zu bytes", n);
    }
    int32_t *low = cps + n;
    n = utf8_decode((const unsigned char *)text, n, cps);
    n = unescape(cps, n);
    n = unescape(cps, n); /* CLIP unescapes twice: "&amp;lt;" is "<" */
    n = strip(cps, n);
    n = collapse_spaces(cps, n);
    n = strip(cps, n);
    n = lower(cps, n, low);
    int rc = VLP_OK;
    for (size_t i = 0; i < n && rc == VLP_OK;) {
        size_t k = match_word(low + i, n - i);
        if (!k) {
            i++;
            continue;
        }
        size_t bytes = utf8_encode(low + i, k, word);
        rc = fn(word, bytes, ctx);
        i += k;
    }
    free(cps);
    free(word);
    return rc;
}
