/* safetensors files (Hugging Face's tensor format, used by OpenCLIP and
 * transformers): an 8-byte little-endian header length, a JSON header
 * {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the
 * data. The header is untrusted input: every length, offset and dtype is
 * checked before a byte of data is read. Reading converts F32, F16 and BF16
 * to float; writing writes F32. Not the model names: see apps/pretrained.h. */
#ifndef VLP_SAFETENSORS_H
#define VLP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define VLP_ST_MAX_DIMS 8
/* The reference implementation refuses headers above 100 MB too. */
#define VLP_ST_MAX_HEADER (100u << 20)

typedef enum {
    VLP_ST_F32, VLP_ST_F16, VLP_ST_BF16, VLP_ST_F64, /* readable as float */
    VLP_ST_I64, VLP_ST_I32, VLP_ST_I16, VLP_ST_I8, VLP_ST_U8, VLP_ST_BOOL, /* known, not read */
    VLP_ST_U16, VLP_ST_U32, VLP_ST_U64, VLP_ST_F8_E4M3, VLP_ST_F8_E5M2,
} vlp_st_dtype;

typedef struct vlp_st_tensor {
    char *name;
    vlp_st_dtype dtype;
    int ndim;
    int64_t shape[VLP_ST_MAX_DIMS];
    int64_t n;          /* elements */
    uint64_t begin, end; /* byte offsets into the data, after the header */
} vlp_st_tensor;

typedef struct vlp_safetensors {
    char *path;           /* for messages */
    const uint8_t *bytes; /* the whole file (mapped, or the caller's buffer) */
    size_t size;
    const uint8_t *data; /* after the header */
    size_t data_size;
    int n; /* tensors, in header order */
    vlp_st_tensor *tensors;
    char *metadata; /* "__metadata__" as JSON text, or NULL */
    int mapped;     /* bytes is an mmap of the file */
} vlp_safetensors;

/* Maps path and checks its header. Errors name path and, where it is one
 * tensor's entry that is wrong, the tensor. */
int vlp_safetensors_open(vlp_safetensors *st, const char *path);

/* The same on bytes in memory (kept by the caller while st is used);
 * name is for messages. */
int vlp_safetensors_parse(vlp_safetensors *st, const uint8_t *bytes, size_t size, const char *name);

void vlp_safetensors_close(vlp_safetensors *st);

/* The tensor called name, or NULL. */
const vlp_st_tensor *vlp_safetensors_find(const vlp_safetensors *st, const char *name);

/* t's elements as float32 into dst (t->n floats). F16 and BF16 widen
 * exactly; F64 rounds. Other dtypes: VLP_EFORMAT naming the tensor. */
int vlp_safetensors_read(const vlp_safetensors *st, const vlp_st_tensor *t, float *dst);

const char *vlp_st_dtype_name(vlp_st_dtype d);

/* One tensor to write: float32 data in row-major order. ndim 0 is a
 * scalar (one element). */
typedef struct vlp_st_entry {
    const char *name;
    int ndim;
    int64_t shape[VLP_ST_MAX_DIMS];
    const float *data;
} vlp_st_entry;

/* Writes the entries as F32 in the given order, with metadata (a JSON
 * object's text, or NULL for {"format": "pt"}), to path.tmp, then renames
 * it to path: path is never half written. */
int vlp_safetensors_write(const char *path, const vlp_st_entry *e, int n, const char *metadata);

#endif
