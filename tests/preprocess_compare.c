/* The C side of tests/preprocess_pil.sh: for each case of scripts/pil_ref.py's
 * plan, vlp's uint8 pixels, compared byte for byte with PIL's read from
 * stdin. Prints each differing case (file, size, mode, the first differing
 * pixel) and fails on any, or when no case ran. Not the reference itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "data/image.h"

static int parse_interp(const char *s) { return strcmp(s, "bilinear") ? VLP_INTERP_BICUBIC : VLP_INTERP_BILINEAR; }

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: preprocess_compare CASES < PIL_PIXELS\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) return perror(argv[1]), 2;
    char line[8192], last[4096] = "";
    long cases = 0, differ = 0, files = 0, bytes = 0;
    int last_alpha = -1;
    vlp_image img = {0};
    uint8_t *ref = NULL;
    while (fgets(line, sizeof line, f)) {
        char path[4096], interp[16], resize[16], alpha[16], box[64];
        int S;
        if (sscanf(line, "%4095[^\t]\t%d\t%15s\t%15s\t%15s\t%63s", path, &S, interp, resize, alpha, box) != 6 ||
            S < 1) {
            fprintf(stderr, "%s: bad line: %s", argv[1], line);
            return 2;
        }
        int a = strcmp(alpha, "pil") ? VLP_ALPHA_WHITE : VLP_ALPHA_PIL;
        if (strcmp(path, last) || a != last_alpha) {
            vlp_image_free(&img);
            vlp_image_opts o = vlp_image_opts_default();
            o.alpha = a;
            if (vlp_image_load(&img, path, &o) != VLP_OK) {
                fprintf(stderr, "FAIL %s: %s\n", path, vlp_error_message());
                return 1;
            }
            if (strcmp(path, last)) files++;
            snprintf(last, sizeof last, "%s", path);
            last_alpha = a;
        }
        vlp_image out = {0};
        int rc;
        if (!strcmp(resize, "crop")) {
            int x, y, w, h;
            if (sscanf(box, "%d,%d,%d,%d", &x, &y, &w, &h) != 4) {
                fprintf(stderr, "%s: bad box: %s", argv[1], line);
                return 2;
            }
            rc = vlp_image_resize_crop(&out, &img, x, y, w, h, S, S, parse_interp(interp));
        } else {
            rc = vlp_image_eval_transform(&out, &img, S, parse_interp(interp),
                                          strcmp(resize, "squash") ? VLP_RESIZE_SHORTEST : VLP_RESIZE_SQUASH);
        }
        if (rc != VLP_OK) {
            fprintf(stderr, "FAIL %s: %s\n", path, vlp_error_message());
            return 1;
        }
        size_t n = (size_t)S * S * 3;
        ref = realloc(ref, n);
        if (!ref || fread(ref, 1, n, stdin) != n) {
            fprintf(stderr, "FAIL: PIL's pixels for case %ld (%s) are missing\n", cases + 1, path);
            return 1;
        }
        cases++;
        bytes += (long)n;
        for (size_t i = 0; i < n; i++)
            if (out.rgb[i] != ref[i]) {
                long p = (long)i / 3;
                if (differ++ < 30)
                    printf("DIFFER %s S=%d %s %s alpha=%s box=%s (from %dx%d): first at pixel (x %ld, y %ld) "
                           "channel %ld: vlp %d, PIL %d\n",
                           path, S, interp, resize, alpha, box, img.w, img.h, p % S, p / S, (long)(i % 3),
                           out.rgb[i], ref[i]);
                break;
            }
        vlp_image_free(&out);
    }
    fclose(f);
    vlp_image_free(&img);
    free(ref);
    if (fgetc(stdin) != EOF) {
        fprintf(stderr, "FAIL: PIL wrote more pixels than there are cases\n");
        return 1;
    }
    printf("%ld cases on %ld images (%ld bytes): %ld identical to PIL, %ld differ\n", cases, files, bytes,
           cases - differ, differ);
    if (cases == 0) {
        fprintf(stderr, "FAIL: no image was compared\n");
        return 1;
    }
    return differ ? 1 : 0;
}
