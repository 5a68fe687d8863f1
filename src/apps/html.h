/* Small pieces for the self-contained HTML pages vlp writes (search
 * galleries, run reports): escaped text and images inlined as base64 PNG,
 * so a page needs no network and no files beside it. */
#ifndef VLP_HTML_H
#define VLP_HTML_H

#include <stdio.h>

#include "data/image.h"

/* text with & < > " escaped. */
void vlp_html_text(FILE *f, const char *text);

/* <img src="data:image/png;base64,..." width=W height=H alt="alt">, the
 * image drawn at display x display pixels (pixelated when enlarged). */
int vlp_html_image(FILE *f, const vlp_image *img, int display, const char *alt);

#endif
