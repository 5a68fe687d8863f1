/* libFuzzer harness: INI configuration parsing and validation. The input
 * is a config file, optionally followed by a NUL and --set overrides, one
 * per line ("section.key=value"). Checked beyond the sanitizers:
 *   - the file read from disk and the same text parsed from memory (a
 *     checkpoint's copy) give the same result and the same message;
 *   - a loaded config written out (vlp_config_to_text, what checkpoints
 *     store) parses back to the same config: a run resumes with the
 *     configuration it saved. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/error.h"
#include "fuzz_util.h"
#include "train/config.h"

#define MAX_OVERRIDES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT) return 0;
    fuzz_dir("config");
    const uint8_t *nul = memchr(data, '\0', size);
    size_t n_text = nul ? (size_t)(nul - data) : size;
    char path[1024];
    fuzz_write(path, sizeof path, "config.ini", data, n_text);

    /* Overrides: the lines after the first NUL. */
    char *rest = nul ? fuzz_strndup(nul + 1, size - n_text - 1) : NULL;
    const char *overrides[MAX_OVERRIDES];
    int n_over = 0;
    for (char *line = rest; line && *line && n_over < MAX_OVERRIDES;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        overrides[n_over++] = line;
        line = nl ? nl + 1 : NULL;
    }

    static vlp_config loaded, parsed, again; /* 13 KB each */
    int rc = vlp_config_load(&loaded, path, overrides, n_over);
    char message[1024];
    snprintf(message, sizeof message, "%s", vlp_error_message());
    if (rc != VLP_OK) FUZZ_CHECK(rc < 0 && message[0], "failed load: rc %d, message '%s'", rc, message);

    if (n_over == 0) {
        char *text = fuzz_strndup(data, n_text);
        int rc2 = vlp_config_parse_text(&parsed, text, path);
        char text_message[1024];
        snprintf(text_message, sizeof text_message, "%s", vlp_error_message());
        /* The text is read as a run folder's, for inference, which needs no
         * [data] train or [log] dir: when the file lacks one, compare the
         * text with the file given both by --set. */
        if (rc != VLP_OK && (strstr(message, ": [data] train is required") || strstr(message, ": [log] dir is required"))) {
            const char *fill[] = {"data.train=x", "log.dir=y"};
            static vlp_config filled;
            rc = vlp_config_load(&filled, path, fill, 2);
            snprintf(message, sizeof message, "%s", vlp_error_message());
            if (rc == VLP_OK) {
                loaded = filled;
                memcpy(parsed.data.train, loaded.data.train, sizeof loaded.data.train);
                memcpy(parsed.log.dir, loaded.log.dir, sizeof loaded.log.dir);
                memcpy(parsed.origin, loaded.origin, sizeof loaded.origin);
            }
        }
        FUZZ_CHECK(rc2 == rc, "file gives %d ('%s'), text gives %d ('%s')", rc, message, rc2, text_message);
        if (rc != VLP_OK)
            FUZZ_CHECK(!strcmp(message, text_message), "file: '%s', text: '%s'", message, text_message);
        else
            FUZZ_CHECK(!memcmp(&loaded, &parsed, sizeof loaded), "file and text give different configs");
        free(text);
    }

    if (rc == VLP_OK) {
        char *saved = vlp_config_to_text(&loaded);
        int rc3 = vlp_config_parse_text(&again, saved, "saved");
        FUZZ_CHECK(rc3 == VLP_OK, "the saved config does not parse: %s\n--- saved:\n%s", vlp_error_message(), saved);
        char *resaved = vlp_config_to_text(&again);
        FUZZ_CHECK(!strcmp(saved, resaved), "the saved config parses differently:\n--- saved:\n%s\n--- parsed back:\n%s",
                   saved, resaved);
        free(resaved);
        free(saved);
        char where[2048];
        vlp_config_where(&loaded, path, "data", "train", where, sizeof where);
        vlp_config_where(&loaded, path, "optim", "lr", where, sizeof where);
        vlp_config_where(&loaded, path, "no", "such", where, sizeof where);
    }
    free(rest);
    return 0;
}
