/* The tables behind CLIP's HTML unescaping (Python's html.unescape): HTML5
 * named character references and the numeric references that are not their
 * code point. Data only (html_entities.c is generated); the matching rules
 * live in tokenizer_text.c. */
#ifndef VLP_HTML_ENTITIES_H
#define VLP_HTML_ENTITIES_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name; /* without the '&', with the ';' when the name has one */
    int32_t cp[2];    /* one or two code points; cp[1] is 0 when there is one */
} vlp_html_entity;

/* In strcmp order, for binary search. */
extern const vlp_html_entity vlp_html_entities[];
extern const size_t vlp_html_n_entities;

typedef struct {
    int32_t first, last; /* code points, inclusive */
    int32_t to;          /* what &#N; becomes for N in [first, last]; -1: nothing */
} vlp_html_charref;

/* Sorted, disjoint. N in no range and at most 0x10FFFF becomes itself; above
 * 0x10FFFF, U+FFFD. */
extern const vlp_html_charref vlp_html_charrefs[];
extern const size_t vlp_html_n_charrefs;

#endif
