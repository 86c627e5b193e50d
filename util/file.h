/*
 * file.h: crash-safe whole-file writes and bounded whole-file reads.
 *
 * file_write_atomic() is the only way sotto replaces state on disk: write a
 * temporary file in the same directory, fsync it, rename it over the target,
 * fsync the directory. After kill -9 or power loss at any instant the path
 * holds either the old bytes or the new ones, never a torn mix.
 */
#ifndef SOTTO_UTIL_FILE_H
#define SOTTO_UTIL_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Atomically replaces path with the n parts parts[i] of lens[i] bytes,
 * created with the given mode. Returns 0 or -errno; on failure the old
 * file is untouched and no temporary file is left behind.
 */
int file_write_atomic_parts(const char *path, const void *const *parts, const size_t *lens,
                            size_t n, mode_t mode) __attribute__((warn_unused_result));
int file_write_atomic(const char *path, const void *buf, size_t len, mode_t mode)
        __attribute__((warn_unused_result));

/*
 * Opens path with flags (O_RDONLY etc.; O_CLOEXEC is added) only if it is
 * a regular file, without blocking: the open itself is non-blocking, so a
 * FIFO given by mistake is refused with FILE_ENOTREG instead of waiting
 * forever for a writer. Symbolic links are followed; the checks apply to
 * the file opened. Returns the descriptor (blocking mode restored), or
 * -errno / FILE_ENOTREG.
 */
int file_open_regular(const char *path, int flags) __attribute__((warn_unused_result));

/*
 * Reads all of path into a new malloc'd buffer (NUL-terminated for
 * convenience; the NUL is not counted in *len). Fails with -EFBIG when the
 * file is larger than max bytes, so a hostile file cannot make us allocate
 * without bound. The caller frees *out.
 */
int file_read_all(const char *path, size_t max, uint8_t **out, size_t *len)
        __attribute__((warn_unused_result));

/*
 * Test-only: if set, called after the temporary file is written and before
 * it is synced and renamed (the chaos harness kills a node there to prove
 * that a torn write never replaces the old file). NULL in production.
 */
extern void (*file_test_hook)(const char *path);

/*
 * Removes the temporary files that file_write_atomic() leaves when the
 * process dies between creating and renaming them ("NAME.tmp.XXXXXX" in
 * dir). Run it at start-up, before anything writes there. Returns how many
 * were removed.
 */
int file_cleanup_tmp(const char *dir);

/* Creates dir (and missing parents) with mode 0700; 0 if it exists. */
int file_mkdirs(const char *dir) __attribute__((warn_unused_result));

#endif
