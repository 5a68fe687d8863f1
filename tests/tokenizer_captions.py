#!/usr/bin/python3
"""Writes the texts of the tokenizer parity test into DIR, deterministically.
Not a real dataset: varied captions made from the lists below, sweeps, and
hostile strings for CLIP's text cleaning.
  tokenizer_captions.py DIR
captions.txt: a few hundred captions with punctuation, numbers, accents,
emoji, apostrophes, HTML entities, odd whitespace and invalid UTF-8.
unicode.txt: every code point of planes 0, 1 and 14, in runs and each after
an apostrophe.
hostile.txt (valid UTF-8): every HTML5 named reference in a sentence (with
and without its ';', glued to letters, escaped twice), numeric references
over the ranges where html.unescape has rules, every whitespace character
in runs and at the ends, combining marks, final sigma, emoji sequences, and
seeded random mixtures of all of these.
hostile_bytes.txt: the same kinds of text with bytes that are not UTF-8,
which CLIP (it takes str) cannot encode at all: compared under the
surrogateescape convention the C and Python sides share.
"""
import html.entities
import random
import sys

sys.set_int_max_str_digits(0)  # BIG below spells numbers of over 4300 digits

SUBJECTS = [
    "a dog", "the cat", "two horses", "an old man", "a little girl", "three red apples", "a Café sign",
    "la crème brûlée", "ein schönes Haus", "el niño", "a jalapeño", "Zoë's bicycle", "an ÜBER-long bus",
    "the ΟΔΟΣ sign", "ΣΟΦΟΣ and σοφός", "İstanbul's skyline", "東京タワー", "北京的猫", "서울 거리",
    "a نخلة tree", "मेरा कुत्ता", "a 🐶", "the 🐱 and the 🐭", "a family 👨‍👩‍👧‍👦", "a thumbs up 👍🏽",
    "a rainbow flag 🏳️‍🌈", "a couple 👩🏾‍❤️‍👨🏻", "a ✈️ over 🇫🇷", "Tux the 🐧", "T-shirt/top",
    "an ankle boot", "a sneaker", "a pullover", "a trouser", "a sandal", "a bag", "a dress", "a coat",
]
VERBS = [
    "sitting on", "running across", "jumping over", "looking at", "eating", "next to", "under",
    "in front of", "behind", "playing with", "isn't near", "can't reach", "won't leave", "doesn't like",
]
OBJECTS = [
    "the mat", "a sofa", "the beach", "a wooden table", "the snow", "a red car", "the 2nd floor",
    "a $20 bill", "100% cotton", "the year 1999", "3.14 pies", "a ½ lemon", "a ٣ sign", "route 66",
    "the Eiffel Tower", "a café au lait", "Mt. Fuji", "New York's subway", "a fjord in Norway",
]
EXTRAS = [
    "", "!", "?!", "...", " :)", " :-(", " #sunset", " @home", " (photo)", " [1/2]", " — nice", " – ok",
    " & friends", " &amp; friends", " &lt;3", " &gt;_&lt;", " &quot;quoted&quot;", " &#39;single&#39;",
    " &#x1F600;", " &#128512;", " &amp;amp; twice", " &amp;lt;b&amp;gt;", " &nbsp;spaced", " &copy; 2020",
    " &#0;", " &#xD800;", " &#99999999999;", " &AMP; upper", " &amp no semicolon", " &#65", " &#x;",
    " I'm", " you're", " we've", " they'll", " he'd", " it's", " It'S", " rock'n'roll", " ' quoted '",
    " O'Neil's", " ’curly’", " don’t", " 'ſ long s", " <|endoftext|> inside", " <|startoftext|>",
    " <|ENDOFTEXT|>", " <|ſtartoftext|>", " combining ͅ mark", " e\u0301 decomposed", " tab\there",
    "   many   spaces  ", " line\u2028sep", " nbsp\u00a0here", " ideographic\u3000space",
    " info\u001cseparator", " zero\u200bwidth", " ﬁ ligature", " ß and ẞ", " ǅ titlecase",
]
FIXED = [
    "", " ", "\t", "   \t  ", "a", "A", "!", "a photo of a cat", "A PHOTO OF A DOG.", "don't", "DON'T",
    "l'été", "ΣΑΣ Σ ΑΣ. ΑΣ'", "3", "1234567890", "3.5mm jack", "12:30pm", "e-mail", "e.g.", "U.S.A.",
    "😀😀😀", "👩‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵🇺🇸", "👍🏻👍🏼👍🏽👍🏾👍🏿", "日本語のテキスト", "中文字符", "한국어",
    "Ελληνικά", "русский текст", "עברית", "العربية", "हिन्दी", "ไทย", "a" * 300, "ab " * 80,
    "!!!!!!!!!!!!!!!!!!!!", "....", "the the the the the", "lowest lower low newest newer new",
    "&amp;&amp;&amp;", "&#38;amp;", "&", "&;", "&#;", "<b>bold</b>", "x</w>y", "</w>", "Ġ",
]
INVALID = [b"\xff", b"caf\xe9", b"\xc3(", b"a\x80b", b"\xed\xa0\x80", b"\xf0\x9f\x98", b"ok \xfe\xfe ok",
           b"\xc0\xaf", b"\xf4\x90\x80\x80", b"tail \xe2\x82"]


def captions(n, seed):
    rng = random.Random(seed)
    out = [t.encode("utf-8") for t in FIXED]
    while len(out) < n:
        text = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(EXTRAS)}"
        if rng.random() < 0.2:
            text = text.upper()
        elif rng.random() < 0.2:
            text = text.capitalize() + "."
        out.append(text.encode("utf-8"))
    out += [b + b" " + rng.choice(SUBJECTS).encode() for b in INVALID]
    return out


def unicode_lines():
    """Runs of 48 code points, then the same code points after an apostrophe
    (the contractions are matched case-insensitively). Without newline and
    surrogates, which cannot be in a line of UTF-8 text."""
    cps = [c for r in (range(1, 0x20000), range(0xE0000, 0xE0200)) for c in r
           if c != 10 and not 0xD800 <= c <= 0xDFFF]
    for i in range(0, len(cps), 48):
        chunk = "".join(map(chr, cps[i:i + 48]))
        yield chunk.encode("utf-8")
        yield " ".join("'" + c for c in chunk).encode("utf-8")


# Characters str.isspace() takes (the regex module's \s less U+001C..U+001F),
# and look-alikes that are not spaces (zero-width space, Mongolian vowel
# separator, byte order mark, word joiner).
SPACES = [chr(c) for c in range(0x110000) if chr(c).isspace() and c != 10]
NOT_SPACES = ["\u200b", "\u180e", "\ufeff", "\u2060", "\u00ad"]
MARKS = ["\u0301", "\u0308", "\u0345", "\u0307", "\u20dd", "\u0e38", "\u093f", "\u302a", "\ufe0f", "\u200d"]
EMOJI = ["\U0001F44D\U0001F3FD", "\U0001F468\u200d\U0001F469\u200d\U0001F467", "\U0001F1EF\U0001F1F5",
         "1\ufe0f\u20e3", "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F",
         "\U0001F3F3\ufe0f\u200d\U0001F308", "\u2764\ufe0f", "\U0001FAE0", "\U0001F9D1\U0001F3FF\u200d\U0001F9B0"]
# Numeric references where html.unescape has rules: NUL, C0 controls, CR,
# DEL, the Windows-1252 block, surrogates, noncharacters, each plane's
# last two, the end of Unicode and beyond.
NUMERIC_RANGES = [range(0, 0x200), range(0xD7F0, 0xE010), range(0xFDC0, 0xFDF8), range(0xFFF0, 0x10010),
                  range(0x10FFF0, 0x110010)] + [range(p * 0x10000 - 3, p * 0x10000 + 2) for p in range(2, 17)]
BIG = [0x7FFFFFFF, 0x80000000, 2**32, 2**32 + 65, 2**63, 2**64 + 65, 10**30, 10**4300, 10**4301 + 65]


def numeric_refs(rng):
    """Decimal and hex references, with and without ';', over the ranges
    above and a sample of all code points, plus odd spellings."""
    ns = [n for r in NUMERIC_RANGES for n in r] + rng.sample(range(0x110000), 3000) + BIG
    refs = []
    for n in ns:
        refs += [f"&#{n};", f"&#x{n:x};", f"&#X{n:X}", f"&#{n}"]
    out = [" ".join(refs[i:i + 16]) for i in range(0, len(refs), 16)]
    out += ["&#0065;&#x0041;&#x00000041;&#" + "0" * 5000 + "65;", "&#65x &#65a &#x41g &#x41;x &#65;5 &#x41f",
            "&#; &#x; &#X; &#xg; &# &#-65; &#+65; &#\u0661\u0662; &# 65; &#x 41;", "&#38;#65; &#38;amp; &#x26;lt;",
            "&amp;#65; &amp;#x41; &amp;amp;amp; &amp;&amp; &#38;#38;#38;", "&#133;&#x85;x&#160;y&#x3000;z&#13;&#10;w",
            "a&#x2028;b&#x1c;c&#x1f;d&#9;&#11;&#12;e", "&#x1F600;&#128512;&#xfe0f;&#x200d;"]
    return out


def named_refs():
    """Every name of the HTML standard's table: alone in a sentence, glued
    to letters on both sides, escaped once more, and (for the legacy names
    that work without ';') followed by more name characters."""
    out = []
    for name in sorted(html.entities.html5):
        bare = name.rstrip(";")
        out.append(f"A &{name} B&{name}c x&{bare}yz; &amp;{name} &{bare.upper()}; &{bare}\u00e9;")
    return out


def space_lines():
    spaces = SPACES + ["\x1c", "\x1d", "\x1e", "\x1f"]
    out = ["".join(spaces) + "a" + "".join(spaces) + "b" + "".join(reversed(spaces))]
    for c in spaces + NOT_SPACES:
        out += [f"{c}x{c}{c}y z{c}", f"{c}", f"a{c}&nbsp;{c}b", f"\u03a3{c}\u03a3 \u0391\u03a3{c}"]
    return out


def mark_lines():
    out = []
    for m in MARKS:
        out += [f"{m}e{m}{m} caf\u00e9 cafe{m} 'S{m} {m}'s A\u03a3{m} \u03a3{m}A", f"\u0130{m}stanbul I{m}"]
    out += ["\u0391\u03a3\u00aa \u0391\u03a3\U0001F130 \u0391\u00aa\u03a3 \u00ba\u03a3 \U0001F170\u03a3 "
            "\u0391\u03a3\u0345",
            "\u0130\u0130\u0130 \u1e9e\u00df \ufb01 \ufb03 \u01c5 \u0149 \u1f88 \u2126 \u212a \u212b",
            "\u039f\u0394\u039f\u03a3' \u03a3\u0391\u03a3. '\u03a3' \u0391\u03a3\u2019\u03a3 \u0391\u03a3\u00ad\u0391"]
    return out


PIECES = ["&", "&amp;", "&amp", "amp", "#", "#x", "x", "X", ";", "0", "1", "6", "9", "f", "F", "g", "not", "in",
          "lt", "Uuml", "uuml", "nbsp", "&#", "&#x", "&#38;", " ", "\t", "\u00a0", "\u3000", "\x1c", "\u2028",
          "\u0301", "\u0345", "'", "'s", "'S", "\u017f", "<|endoftext|>", "\u03a3", "\u0130", "A", "\u00e9",
          "\U0001F600", "\u200d", "\ufe0f", "<", ">", "\r", "\x0b", "\x0c"]


def random_lines(rng, n):
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 24))) for _ in range(n)]


def hostile(seed):
    rng = random.Random(seed)
    lines = named_refs() + numeric_refs(rng) + space_lines() + mark_lines()
    lines += [" ".join(rng.sample(EMOJI, 4)) + " &#x1F44D;&#x1F3FD; " + "".join(EMOJI) for _ in range(20)]
    lines += random_lines(rng, 3000)
    return [line.encode("utf-8") for line in lines]


def hostile_bytes(seed):
    rng = random.Random(seed)
    bad = INVALID + [b"&amp\xff;", b"&#65\xff", b"&\xffamp;", b"&not\xe9it;", b"&#x41\xc3", b"\xc2\xa0\xff\xc2\xa0",
                     b"\xe3\x80\x80\x80", b"'\xe2\x80 s", b"\xce\xa3\xff", b"A\xce\xa3\xcc\xff", b"\xed\xb2\x80"]
    out = list(bad)
    for _ in range(500):
        parts = [rng.choice(PIECES).encode("utf-8") if rng.random() < 0.7 else rng.choice(bad) for _ in range(8)]
        parts.insert(rng.randint(0, 8), rng.choice(INVALID))  # at least one byte that is not UTF-8
        out.append(b"".join(parts))
    return out


def write_lines(path, lines):
    with open(path, "wb") as f:
        f.write(b"".join(line + b"\n" for line in lines))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    write_lines(f"{out}/captions.txt", captions(400, 2026))
    write_lines(f"{out}/unicode.txt", unicode_lines())
    good = hostile(77)
    for line in good:
        line.decode("utf-8")  # valid, and no newline or NUL inside
        assert b"\n" not in line and b"\0" not in line
    write_lines(f"{out}/hostile.txt", good)
    bad = hostile_bytes(78)
    for line in bad:
        assert b"\n" not in line and b"\0" not in line
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            continue
        raise AssertionError(f"{line!r} is valid UTF-8")
    write_lines(f"{out}/hostile_bytes.txt", bad)


if __name__ == "__main__":
    main()
