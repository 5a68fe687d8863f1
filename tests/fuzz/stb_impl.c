/* The fuzz build's own copy of stb_image and stb_image_resize, compiled
 * from Debian's headers with the sanitizers and libFuzzer's coverage, so
 * that the image harness sees (and is guided by) the decoders' insides.
 * The executable's definitions take precedence over libstb's; the code is
 * the same version as the libstb0 every other build uses. Not in the
 * ordinary build. */
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb_image.h>
#include <stb_image_resize.h>
