/* Text to words, as OpenAI CLIP's simple_tokenizer does before BPE: clean,
 * lower-case, split by its regex (matched by hand, Unicode facts from
 * libutf8proc, HTML tables in html_entities.c). Not ftfy, not a regex engine. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/error.h"
#include "base/mem.h"
#include "data/html_entities.h"
#include "data/tokenizer_impl.h"

/* CLIP's steps (simple_tokenizer.py, which imports the `regex` module as re):
 *   ftfy.fix_text, html.unescape twice, strip(), re.sub(r'\s+', ' '), strip(),
 *   lower(), then findall of
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * with IGNORECASE. All but ftfy are matched here, to the code point, as
 * Python 3.11 with python3-regex does them; scripts/bpe_ref.py does them with
 * those very functions and tests/tokenizer_parity.sh, tokenizer_real.sh
 * compare the ids. ftfy (not in Debian) repairs mojibake, uncurls quotes,
 * NFC-normalises and more; without it "o\u2019clock" keeps its curly
 * apostrophe (CLIP: "o'clock") and a decomposed "e" + U+0301 splits the word
 * at the accent where CLIP would see one letter. Known differences left:
 * final sigma after a character new in Unicode 15 (utf8proc 2.8) that Python
 * 3.11's str.lower (Unicode 14) takes for unassigned. */

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

/* Python's html.unescape, observed (scripts/gen_html_entities.py has the
 * tables): after '&' it takes, in this order of preference,
 *   #DIGITS;?  or  #xHEX;? / #XHEX;?   a numeric reference, digits ASCII only;
 *   NAME;?                             up to 32 characters that are not
 *                                      tab, LF, FF, space, '<', '&', '#', ';'.
 * A NAME (with its ';' when one follows) that is a name of the table becomes
 * its code points. Otherwise the longest proper prefix of it (2 characters
 * at least) that is a name becomes its code points and the rest stays text;
 * only names without ';' can match so: "&notit;" is U+00AC "it;", as a
 * browser reads legacy names. Nothing matching leaves the text unchanged.
 * A decimal reference of more than 4300 digits makes Python 3.11's int()
 * raise (its digit limit), so CLIP fails on that text; here it is the number
 * it spells, as html.unescape gives without the limit. */
#define ENTITY_NAME_MAX 32

static int hex_value(int32_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The table entry named exactly name[0..n), or NULL. */
static const vlp_html_entity *entity_find(const char *name, size_t n) {
    size_t lo = 0, hi = vlp_html_n_entities;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *e = vlp_html_entities[mid].name;
        int cmp = strncmp(e, name, n);
        if (cmp == 0) cmp = e[n] != '\0'; /* e is longer: it sorts after */
        if (cmp == 0) return &vlp_html_entities[mid];
        if (cmp < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* What &#v; becomes: 0 code points (dropped) or 1, in *out. v saturates
 * above 0x10FFFF, where every value gives U+FFFD. */
static int charref(int64_t v, int32_t *out) {
    *out = 0xFFFD;
    if (v > 0x10FFFF) return 1;
    size_t lo = 0, hi = vlp_html_n_charrefs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const vlp_html_charref *r = &vlp_html_charrefs[mid];
        if (v < r->first) hi = mid;
        else if (v > r->last) lo = mid + 1;
        else {
            *out = r->to;
            return r->to >= 0;
        }
    }
    *out = (int32_t)v;
    return 1;
}

static bool name_char(int32_t c) {
    return c != '\t' && c != '\n' && c != '\f' && c != ' ' && c != '<' && c != '&' && c != '#' && c != ';';
}

/* The reference at s[0] == '&': returns how many code points of s it
 * replaces (0: none, the '&' is text) and puts its replacement, 0 to 2 code
 * points, in out[0..*n_out). */
static size_t entity_at(const int32_t *s, size_t n, int32_t out[2], int *n_out) {
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
        *n_out = charref(v, out);
        return i;
    }
    /* The name as ASCII; any other code point (it cannot be in a name) as
     * 0x01, which no name holds either. */
    char name[ENTITY_NAME_MAX + 2];
    size_t k = 0;
    while (k < ENTITY_NAME_MAX && 1 + k < n && name_char(s[1 + k])) {
        int32_t c = s[1 + k];
        name[k++] = c > 0 && c < 0x80 ? (char)c : '\x01';
    }
    if (k == 0) return 0;
    if (1 + k < n && s[1 + k] == ';') name[k++] = ';';
    const vlp_html_entity *e = entity_find(name, k);
    for (size_t len = k - 1; !e && len >= 2; len--)
        if ((e = entity_find(name, len))) k = len;
    if (!e) return 0;
    out[0] = e->cp[0], out[1] = e->cp[1];
    *n_out = e->cp[1] ? 2 : 1;
    return 1 + k;
}

/* One left-to-right pass, in place (no reference is shorter than its
 * replacement: the generator checks), replacements not rescanned:
 * html.unescape's semantics. */
static size_t unescape(int32_t *s, size_t n) {
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        int32_t c[2];
        int nc = 0;
        size_t used = s[i] == '&' ? entity_at(s + i, n - i, c, &nc) : 0;
        if (!used) {
            s[m++] = s[i++];
            continue;
        }
        for (int j = 0; j < nc; j++) s[m++] = c[j];
        i += used;
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

/* CLIP's \s: its `re` is the regex module, whose \s is Unicode White_Space:
 * the same set less the four information separators U+001C..U+001F (the
 * standard library's re would take them: its \s is str.isspace()). strip()
 * removes them at the ends but \s+ does not collapse them, so inside a text
 * they are symbols. */
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

/* Unicode's Cased: Lu, Ll, Lt, a case mapping, or Other_Lowercase /
 * Other_Uppercase, which utf8proc does not carry; of those, the ones without
 * a mapping that are not Lm (case-ignorable, so never asked) are listed: the
 * ordinal indicators and the squared and negative circled or squared Latin
 * capitals. Only final sigma asks. */
static bool is_cased(int32_t c) {
    int k = category(c);
    if (c == 0xAA || c == 0xBA || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
        (c >= 0x1F170 && c <= 0x1F189))
        return true;
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
    int32_t *cps = vlp_malloc((3 * n + 1) * sizeof *cps);
    unsigned char *word = vlp_malloc(8 * n + 1);
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
