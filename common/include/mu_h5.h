/* mu_h5.h - HDF5 files built in memory and written crash-safely, so that a full disk is an
 * ordinary error.
 *
 * Why: in HDF5 1.10, an H5Fclose whose final flush fails (ENOSPC, EIO) frees the file's
 * structures but leaves its id registered; HDF5's exit handler (H5_term_library, via atexit)
 * then closes that id again and crashes (SIGSEGV in H5F__close_cb). No public call removes
 * such an id safely, so HDF5 must never meet a failing write. Files made here live in
 * memory (core driver, no backing store): every HDF5 call touches only RAM, and the finished
 * image goes to disk through mu_write_file_atomic (PATH.tmp, fsync, rename, folder fsync),
 * whose write, close and fsync errors are ours to report. Memory: the image, plus one copy
 * of it while it is being written out.
 *
 * Not thread-safe (serial HDF5): callers hold their module's HDF5 lock, if any.
 */
#ifndef MU_H5_H
#define MU_H5_H

#include <hdf5.h>

#include "mu_err.h"

/* Creates an empty in-memory HDF5 file; `latest` != 0 asks for the newest file format
 * (H5F_LIBVER_LATEST both bounds). `name` only identifies it in HDF5's messages (no file of
 * that name is opened or created). Returns the file id, or a negative value on failure. */
hid_t mu_h5_create_mem(const char *name, int latest);

/* Closes the in-memory file `f` and writes its image to `path` crash-safely (see above):
 * afterwards `path` holds the complete new file, or, on failure, whatever it held before and
 * no PATH.tmp is left. `f` is closed on every path. MU_OK, MU_ERR_IO or MU_ERR_NOMEM, with
 * the file and the reason (e.g. "PATH.tmp: write: No space left on device") in diag. */
int mu_h5_commit(hid_t f, const char *path, mu_diag *diag);

#endif
