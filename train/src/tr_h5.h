/* tr_h5.h - private helpers shared by the HDF5 files of train/ (datasets, training state). */
#ifndef TR_H5_H
#define TR_H5_H

#include <hdf5.h>

#include "mu_err.h"

/* Switches HDF5's automatic error printing off (we report our own line) and back, and
 * holds train/'s HDF5 lock in between (serial HDF5 is not thread-safe). Every HDF5 call of
 * train/ sits between a begin and its end; they do not nest. */
typedef struct {
    H5E_auto2_t func;
    void *data;
} tr_h5_quiet;
void tr_h5_quiet_begin(tr_h5_quiet *q);
void tr_h5_quiet_end(const tr_h5_quiet *q);

#endif
