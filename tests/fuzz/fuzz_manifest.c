/* libFuzzer harness: CSV/TSV manifests. The input is a manifest file's
 * bytes, written to the process's temporary folder and opened as a TSV
 * (OpenCLIP's default columns) and as a CSV with columns chosen by the
 * input's hash; what opens must hold sane samples. Images are not read:
 * a manifest may name any path (a FIFO would block), and decoding has its
 * own harness (fuzz_image.c). */
#include <stdint.h>
#include <string.h>

#include "base/error.h"
#include "data/dataset.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void open_one(const char *path, const vlp_manifest_opts *opts) {
    vlp_dataset ds;
    int rc = vlp_dataset_open_manifest(&ds, path, opts);
    if (rc != VLP_OK) {
        FUZZ_CHECK(rc < 0 && ds.n == 0 && ds.samples == NULL && ds.source == NULL,
                   "failed open left %ld samples", ds.n);
        FUZZ_CHECK(vlp_error_message()[0] != '\0', "failed open without a message");
        return;
    }
    FUZZ_CHECK(ds.n > 0 && ds.samples && ds.source && !strcmp(ds.source, path), "opened with %ld samples", ds.n);
    for (long i = 0; i < ds.n; i++) {
        const vlp_sample *s = &ds.samples[i];
        FUZZ_CHECK(s->path && s->path[0] && s->caption, "sample %ld has no path or caption", i);
        FUZZ_CHECK(s->class_id >= -1 && s->concept_id >= -1, "sample %ld: ids %d, %d", i, s->class_id,
                   s->concept_id);
    }
    vlp_dataset_free(&ds);
    FUZZ_CHECK(ds.n == 0 && ds.samples == NULL, "free left samples");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT) return 0;
    fuzz_dir("manifest");
    char path[1024];
    fuzz_write(path, sizeof path, "manifest.tsv", data, size);
    open_one(path, NULL);
    static const char *const keys[][2] = {{"filepath", "title"}, {"image", "caption"}, {"url", "text"}};
    uint64_t h = fuzz_hash(data, size);
    static const char separators[] = {',', ',', ';', '|'};
    vlp_manifest_opts csv = {.separator = separators[h % 4], .image_key = keys[(h >> 8) % 3][0],
                             .caption_key = keys[(h >> 8) % 3][1]};
    open_one(path, &csv);
    return 0;
}
