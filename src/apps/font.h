/* A 5x7 bitmap font for labels on pictures (stb has no text): lower-case
 * letters, digits and a little punctuation; upper case is drawn as lower
 * case, anything else as '?'. Not a text renderer: one glyph at a time. */
#ifndef VLP_FONT_H_INCLUDED
#define VLP_FONT_H_INCLUDED

#include <stdint.h>

#define VLP_FONT_W 5
#define VLP_FONT_H 7

/* The glyph of c: VLP_FONT_H rows, bit VLP_FONT_W - 1 the leftmost pixel. */
const uint8_t *vlp_font_glyph(char c);

#endif
