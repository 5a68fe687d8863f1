#!/usr/bin/python3
"""Writes src/data/html_entities.c: the tables vlp's tokenizer needs to unescape
HTML as Python's html.unescape does (CLIP cleans captions with it, twice).
Data only, generated; the matching logic is src/data/tokenizer_text.c.

  /usr/bin/python3 scripts/gen_html_entities.py > src/data/html_entities.c

Two tables:
- Named character references: the HTML standard's list ("Named character
  references", https://html.spec.whatwg.org/multipage/named-characters.html),
  as Python ships it in html.entities.html5: 2231 names, some without their
  ';' (the legacy ones a browser also accepts bare), values of 1 or 2 code
  points.
- Numeric references: what html.unescape gives for "&#N;", observed for every
  N from 0 to 0x10FFFF and kept where it is not chr(N): dropped, replaced by
  U+FFFD, or remapped (0x80-0x9F as Windows-1252). Observed rather than
  transcribed, so the table is what the running Python does; every N above
  0x10FFFF gives U+FFFD, which the C code applies itself (checked below).
Exits non-zero when an assumption the C code makes does not hold.
"""
import html
import html.entities
import sys

MAX_CP = 0x10FFFF


def fail(msg):
    sys.exit(f"gen_html_entities.py: {msg}")


def named():
    rows = []
    for name, value in sorted(html.entities.html5.items()):  # byte order: names are ASCII
        bare = name[:-1] if name.endswith(";") else name
        if not (name.isascii() and bare.isalnum()):
            fail(f"name {name!r} is not ASCII letters and digits (+ ';')")
        if not 1 <= len(value) <= 2:
            fail(f"&{name} has {len(value)} code points; the C table holds 1 or 2")
        # Unescaping in place needs every replacement no longer than its text.
        if len(value) > 1 + len(name):
            fail(f"&{name} is shorter than its {len(value)} code points")
        rows.append((name, [ord(c) for c in value] + [0] * (2 - len(value))))
    # tokenizer_text.c reads at most ENTITY_NAME_MAX = 32 characters before
    # the ';', as html.unescape does; a longer name would need more.
    if max(len(n.rstrip(";")) for n, _ in rows) > 32:
        fail("a name is longer than 32 characters: raise ENTITY_NAME_MAX in tokenizer_text.c")
    return rows


def numeric():
    """Ranges [first, last] of N whose "&#N;" is not chr(N), with what it is:
    -1 for nothing (dropped), else the one code point it becomes."""
    ranges = []
    for n in range(MAX_CP + 1):
        got = html.unescape(f"&#{n};")
        if got == "" or (len(got) == 1 and ord(got) != n):
            v = ord(got) if got else -1
        elif got == chr(n):
            continue
        else:
            fail(f"&#{n}; gives {got!r}: neither one code point nor nothing")
        # Runs of the same result merge; a remap to varying values does not.
        if ranges and ranges[-1][1] == n - 1 and ranges[-1][2] == v and v in (-1, 0xFFFD):
            ranges[-1][1] = n
        else:
            ranges.append([n, n, v])
    for n in (MAX_CP + 1, 0x110000 + 12345, 2**32, 2**64 + 65, 10**40):
        for ref in (f"&#{n};", f"&#x{n:x};", f"&#X{n:X}"):
            if html.unescape(ref) != "\ufffd":
                fail(f"{ref} does not give U+FFFD")
    for n in (0, 65, 0x80, 0x9F, 0xD800, 0xFFFE, 0x1F600):  # hex and decimal agree
        if html.unescape(f"&#x{n:x};") != html.unescape(f"&#{n};"):
            fail(f"&#x{n:x}; and &#{n}; differ")
    return ranges


def main():
    ents, refs = named(), numeric()
    out = [
        "/* HTML5 named character references and the numeric-reference replacements",
        " * of Python's html.unescape, for CLIP's text cleaning. Data only, generated:",
        " * the lookups are in tokenizer_text.c. Do not edit; regenerate with",
        " *   /usr/bin/python3 scripts/gen_html_entities.py > src/data/html_entities.c",
        " * Names: the HTML standard's named character references",
        " * (https://html.spec.whatwg.org/multipage/named-characters.html) as Python",
        f" * {sys.version.split()[0]} ships them in html.entities.html5. Numeric: observed from that",
        " * Python's html.unescape for every code point. */",
        '#include "data/html_entities.h"',
        "",
        f"/* {len(ents)} names in byte order, without the '&'. */",
        "const vlp_html_entity vlp_html_entities[] = {",
    ]
    for name, (a, b) in ents:
        out.append(f'    {{"{name}", {{0x{a:X}, 0x{b:X}}}}},')
    out += ["};", "const size_t vlp_html_n_entities = sizeof vlp_html_entities / sizeof *vlp_html_entities;", ""]
    out.append(f"/* {len(refs)} ranges of N where &#N; is not chr(N); -1: dropped. */")
    out.append("const vlp_html_charref vlp_html_charrefs[] = {")
    for first, last, v in refs:
        out.append(f"    {{0x{first:X}, 0x{last:X}, {'-1' if v < 0 else f'0x{v:X}'}}},")
    out += ["};", "const size_t vlp_html_n_charrefs = sizeof vlp_html_charrefs / sizeof *vlp_html_charrefs;"]
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
