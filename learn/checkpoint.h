/*
 * checkpoint.h: one file holding everything a node needs to resume: the
 * model spec, the parameters, the optimizer state, the data order position
 * and an opaque blob of the caller's (the node keeps its push-sum weight,
 * counters and round bookkeeping there, so all of it changes atomically).
 *
 * Layout (little-endian), version 1:
 *
 *     0   8  magic "SOTTOCKP"
 *     8   4  version
 *    12  64  model spec: type, channels, height, width, classes, n_hidden,
 *            hidden[8], conv[2] (u32 each)
 *    76  24  optimizer: type u32, lr, momentum, beta2, eps, weight_decay f32
 *   100   8  batch u32, cursor u32
 *   108  32  data_seed, epoch, steps, optimizer t (u64 each)
 *   140  16  n_params u64, extra_len u64
 *   156      params f32[n], m f32[n], [Adam: v f32[n]], extra bytes
 *   end-4 4  CRC-32 (zlib) of every byte before it
 *
 * Written with file_write_atomic (temp + fsync + rename + fsync dir): a
 * crash leaves the old checkpoint or the new one. A truncated, corrupted
 * or foreign file is refused with an error of learn.h, never trusted: the
 * spec is checked and n_params must match it before anything is used.
 * The CRC detects accidents, not attacks: the data dir is trusted.
 */
#ifndef SOTTO_LEARN_CHECKPOINT_H
#define SOTTO_LEARN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

struct train;

#define CHECKPOINT_MAGIC        "SOTTOCKP"
#define CHECKPOINT_VERSION      1
#define CHECKPOINT_HEADER_BYTES 156
#define CHECKPOINT_MAX_EXTRA    (16u << 20)
#define CHECKPOINT_MAX_FILE     (3ull * 4 * (1u << 27) + CHECKPOINT_MAX_EXTRA + 4096)

/* The checkpoint of t and extra as bytes: *out malloc'd (free it). 0, -EFBIG or -ENOMEM. */
int checkpoint_encode(uint8_t **out, size_t *out_len, const struct train *t, const void *extra,
                      size_t extra_len) __attribute__((warn_unused_result));
/* Saves t and extra (extra_len bytes, may be 0) to path atomically. 0 or -errno. */
int checkpoint_save(const char *path, const struct train *t, const void *extra, size_t extra_len)
        __attribute__((warn_unused_result));

/*
 * Loads a checkpoint into a new trainer (*out, train_free() it) and a copy
 * of the extra blob (*extra, malloc'd, free() it; NULL when extra_len is
 * 0). extra and extra_len may be NULL if the caller has none. Returns 0 or
 * an error of learn.h (err_str()); nothing is returned on error.
 */
int checkpoint_load(const char *path, struct train **out, uint8_t **extra, size_t *extra_len)
        __attribute__((warn_unused_result));
/* The same from memory (fuzzing and tests). */
int checkpoint_load_mem(const void *buf, size_t len, struct train **out, uint8_t **extra,
                        size_t *extra_len) __attribute__((warn_unused_result));

#endif
