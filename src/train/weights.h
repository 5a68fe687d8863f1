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
 * another shape or type, or a tensor the model does not have is an error
 * naming it (and `path`, for the message). A one-element parameter also
 * reads from a scalar dataset (OpenCLIP's 0-d logit_scale). */
int vlp_weights_read(hid_t file, const char *path, const char *group, const vlp_params *p,
                     float *buf);

/* A model file: the parameters at the root. Saving writes path.tmp and
 * renames it over path, so path is never half written. */
int vlp_weights_save(const vlp_params *p, const char *path);
int vlp_weights_load(vlp_params *p, const char *path);

#endif
