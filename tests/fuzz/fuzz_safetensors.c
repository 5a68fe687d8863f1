/* libFuzzer harness: the safetensors header parser and reader. The input
 * is a whole file. Checked beyond the sanitizers: a header that parses
 * gives tensors whose bytes lie inside the data and match their shape and
 * dtype, no two overlapping; every float tensor reads (the sanitizers
 * watch the reads); a parse error always sets a message. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "data/safetensors.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT) return 0;
    /* a copy of exactly size bytes, so a read past the end is caught */
    uint8_t *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy != NULL, "out of memory");
    memcpy(copy, data, size);
    vlp_safetensors st;
    int rc = vlp_safetensors_parse(&st, copy, size, "input");
    if (rc != VLP_OK) {
        FUZZ_CHECK(rc < 0 && vlp_error_message()[0], "rc %d without a message", rc);
        free(copy);
        return 0;
    }
    for (int i = 0; i < st.n; i++) {
        const vlp_st_tensor *t = &st.tensors[i];
        FUZZ_CHECK(t->begin <= t->end && t->end <= st.data_size, "%s: [%llu, %llu] outside %zu", t->name,
                   (unsigned long long)t->begin, (unsigned long long)t->end, st.data_size);
        FUZZ_CHECK(vlp_safetensors_find(&st, t->name) == t, "%s: found another tensor by its name", t->name);
        for (int j = 0; j < i; j++) {
            const vlp_st_tensor *u = &st.tensors[j];
            bool overlap = t->begin < u->end && u->begin < t->end && t->n && u->n;
            FUZZ_CHECK(!overlap, "%s and %s overlap", t->name, u->name);
        }
        float *out = malloc(sizeof(float) * ((size_t)t->n + 1));
        FUZZ_CHECK(out != NULL, "out of memory for %lld floats", (long long)t->n);
        int read = vlp_safetensors_read(&st, t, out);
        bool floats = t->dtype == VLP_ST_F32 || t->dtype == VLP_ST_F16 || t->dtype == VLP_ST_BF16 || t->dtype == VLP_ST_F64;
        FUZZ_CHECK((read == VLP_OK) == floats, "%s: dtype %s read gave %d", t->name, vlp_st_dtype_name(t->dtype), read);
        free(out);
    }
    vlp_safetensors_close(&st);
    free(copy);
    return 0;
}
