/* Parameters in HDF5: one float32 dataset per parameter, named by its
 * OpenCLIP state_dict key, under a group ("/" for a model file, "/params" or
 * "/optim/m" in a checkpoint). h5py reads and writes the same layout, which
 * is what scripts/convert_state_dict.py relies on. Not the checkpoint format
 * itself (step, RNG, loader state): that is checkpoint.c's. */
#ifndef VLP_WEIGHTS_H
#define VLP_WEIGHTS_H

#include <hdf5.h>

#include "autograd/params.h"

/* Writes buf (p->data, p->m or p->v) under group, created if missing. */
int vlp_weights_write(hid_t file, const char *group, const vlp_params *p, const float *buf);

/* Reads every parameter into buf, strictly: a missing tensor, a tensor of
 * another shape or type, a tensor holding NaN or infinity, or a tensor the
 * model does not have is an error naming it (and `path`, for the message). A one-element parameter also
 * reads from a scalar dataset (OpenCLIP's 0-d logit_scale). */
int vlp_weights_read(hid_t file, const char *path, const char *group, const vlp_params *p,
                     float *buf);

/* HDF5 files vlp writes whole (checkpoints, model files) are built in
 * memory by HDF5's core driver and written with plain write(): HDF5 1.10
 * cannot close a file whose write failed (a full disk leaves it open, and
 * the library's exit handler then crashes), and write() tells the errno.
 * The price is a second copy of the file in memory while it is written.
 * size_hint: the expected file size (one allocation when right). */
hid_t vlp_h5_create_in_memory(size_t size_hint);

/* Closes f (from vlp_h5_create_in_memory) and writes its image to path
 * atomically: path.tmp, fsync, rename, fsync of the folder. On error path
 * is untouched, path.tmp is removed, and the message names the file and
 * the system's reason ("No space left on device"). */
int vlp_h5_write_image(hid_t f, const char *path);

/* A model file: the parameters at the root, written as above, so path is
 * never half written. */
int vlp_weights_save(const vlp_params *p, const char *path);
int vlp_weights_load(vlp_params *p, const char *path);

/* Why H5Fopen refused path, in the user's terms, as the error message:
 * missing (the system's reason), a folder, empty, not HDF5 at all ("not
 * WHAT", e.g. "a vlp model file"), or HDF5 that cannot be read (truncated
 * or damaged). Returns the status it set. */
int vlp_h5_open_error(const char *path, const char *what);

/* A model's identity: 16 hex digits hashing every parameter's name, shape
 * and values (FNV-1a 64), what an index records of the model that made it.
 * Two loads of one model file give the same; any changed weight another. */
#define VLP_WEIGHTS_ID_SIZE 17
void vlp_weights_identity(const vlp_params *p, char out[VLP_WEIGHTS_ID_SIZE]);

#endif
