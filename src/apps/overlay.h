/* Segmentation overlays for a person to look at: label maps blended over
 * their image, borders, titles and a legend in a bitmap font. Not the
 * segmentation itself (eval/segment.h). */
#ifndef VLP_OVERLAY_H
#define VLP_OVERLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "data/image.h"

/* Class k + 1's colour (a fixed palette of well-separated hues); 0 black. */
void vlp_segment_colour(int label, uint8_t rgb[3]);

/* A picture for a person: panels side by side, each the image (H, W, 3)
 * with a label map blended over it (no blend for background) and the
 * borders between labels drawn, under a title; then a legend of every
 * label shown, a colour swatch and the class name, in a 5x7 bitmap font.
 * Panels with outline[i] (outline may be NULL) draw only the borders and
 * stay out of the legend: for maps of groups, not classes. out: allocated. */
int vlp_segment_overlay(vlp_image *out, const vlp_image *img, const uint8_t *const *labels,
                        const bool *outline, const char *const *titles, int n_panels,
                        const char *const *class_names, int K, int scale);

#endif
