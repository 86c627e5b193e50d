/*
 * npz.h: named float32 tensors written as a NumPy .npz archive, the format
 * numpy.load() reads (and through it PyTorch, with torch.from_numpy): a zip
 * archive of stored (uncompressed) members NAME.npy, each a .npy file of
 * format version 1.0 (a 6-byte magic "\x93NUMPY", the version 1 0, a
 * little-endian u16 header length, an ASCII header dict {'descr': '<f4',
 * 'fortran_order': False, 'shape': (...), } padded with spaces to a
 * multiple of 64 bytes and ended by a newline, then the values in C order).
 * The zip is the plain PKWARE layout: a local header and the data per
 * member, then the central directory and its end record; no compression,
 * no data descriptors, no zip64 (so every member and the whole archive
 * must stay below 4 GiB), times 1980-01-01. References: NEP 1
 * (numpy.lib.format) and PKWARE's APPNOTE.TXT 6.3.
 */
#ifndef SOTTO_LEARN_NPZ_H
#define SOTTO_LEARN_NPZ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NPZ_MAX_NAME    96
#define NPZ_MAX_ENTRIES 256
#define NPZ_MAX_DIMS    8

struct npz_entry {
	const char *name; /* [A-Za-z0-9_.-], 1..NPZ_MAX_NAME bytes; stored as NAME.npy */
	uint32_t ndim;    /* 0 (a scalar) ..NPZ_MAX_DIMS */
	uint32_t shape[NPZ_MAX_DIMS]; /* its product is the number of values */
	const float *data;            /* borrowed: written straight from here, never copied */
};

/*
 * Writes the n entries to path atomically (file_write_atomic_parts) with
 * the given mode. Returns 0, -EINVAL (a bad or repeated name, a bad shape
 * or count, or more than 4 GiB) or -errno.
 */
int npz_write(const char *path, const struct npz_entry *e, size_t n, mode_t mode)
        __attribute__((warn_unused_result));

#endif
