#!/usr/bin/python3
"""Writes the texts of the tokenizer parity test into DIR, deterministically.
Not a real dataset: varied captions made from the lists below, and a sweep.
  tokenizer_captions.py DIR
captions.txt: a few hundred captions with punctuation, numbers, accents,
emoji, apostrophes, HTML entities, odd whitespace and invalid UTF-8.
unicode.txt: every code point of planes 0, 1 and 14, in runs and each after
an apostrophe.
"""
import random
import sys

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


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(f"{sys.argv[1]}/captions.txt", "wb") as f:
        f.write(b"".join(line + b"\n" for line in captions(400, 2026)))
    with open(f"{sys.argv[1]}/unicode.txt", "wb") as f:
        f.write(b"".join(line + b"\n" for line in unicode_lines()))


if __name__ == "__main__":
    main()
