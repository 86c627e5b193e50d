/*
 * dataset.h: labelled examples in sotto's binary dataset format, read with
 * every field bounded, and written atomically.
 *
 * File layout (all integers little-endian; the file may be gzip'ed):
 *
 *   0  8  magic "SOTTODAT"
 *   8  4  version (1)
 *  12  4  rows                       0..DATASET_MAX_ROWS
 *  16  4  dims (features per row)    1..DATASET_MAX_DIMS
 *  20  4  classes                    2..DATASET_MAX_CLASSES
 *  24  4  element type               1: u8 (value = byte / 255), 2: f32
 *  28 12  channels, height, width    image shape (c*h*w == dims), or 0 0 0
 *  40  4  flags                      bit 0: standardisation stats follow
 *  44  4  reserved (0)
 *  48     [flags bit 0] mean f32[dims], std f32[dims]
 *         rows x (label u8 < classes, features dims x element)
 *
 * The stats are those the CSV importer applied (training-set mean and
 * standard deviation per column); importing a test set reuses them.
 *
 * Not here: partitioning (partition.h), batching order (train.h).
 */
#ifndef SOTTO_LEARN_DATASET_H
#define SOTTO_LEARN_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DATASET_MAGIC             "SOTTODAT"
#define DATASET_VERSION           1
#define DATASET_HEADER_BYTES      48
#define DATASET_MAX_ROWS          (1u << 24)
#define DATASET_MAX_DIMS          (1u << 20)
#define DATASET_MAX_CLASSES       256
#define DATASET_MAX_FEATURE_BYTES (1ull << 31) /* rows * dims * element size */

enum dataset_elem {
	DATASET_U8 = 1,
	DATASET_F32 = 2,
};

struct dataset {
	uint32_t rows, dims, classes;
	enum dataset_elem elem;
	uint32_t channels, height, width; /* image shape, or all 0 */
	uint8_t *labels;                  /* (rows) each < classes */
	uint8_t *x_u8;                    /* (rows, dims) when elem == DATASET_U8 */
	float *x_f32;                     /* (rows, dims) when elem == DATASET_F32 */
	float *mean, *std;                /* (dims) standardisation applied, or NULL */
};

/*
 * Allocates an empty dataset of the given shape (zeroed rows). Returns 0,
 * -ENOMEM, or LEARN_EBOUNDS for a shape outside the limits above. The
 * caller frees it with dataset_free().
 */
int dataset_alloc(struct dataset **out, uint32_t rows, uint32_t dims, uint32_t classes,
                  enum dataset_elem elem) __attribute__((warn_unused_result));
void dataset_free(struct dataset *ds);

/*
 * Reads a dataset file, gzip'ed or plain (zlib's gzread reads both). Every
 * header field is checked before anything is allocated, and memory grows
 * only with data actually read, so a lying header cannot make us allocate
 * much. Returns 0 and a new dataset in *out, or an error of learn.h
 * (err_str() says which); *out is NULL then.
 */
int dataset_load(struct dataset **out, const char *path) __attribute__((warn_unused_result));
/* The same from memory (gzip or plain), for fuzzing and tests. */
int dataset_load_mem(struct dataset **out, const void *buf, size_t len)
        __attribute__((warn_unused_result));

/*
 * Writes ds to path atomically (util/file.h), gzip'ed if path ends in
 * ".gz", mode 0600 whatever the umask (it is patient data: only the node
 * user reads it). Returns 0 or a negative errno.
 */
int dataset_save(const struct dataset *ds, const char *path) __attribute__((warn_unused_result));

/* A new dataset with rows idx[0..n) of ds (n may be 0: an empty shard). */
int dataset_subset(struct dataset **out, const struct dataset *ds, const uint32_t *idx, size_t n)
        __attribute__((warn_unused_result));

/*
 * Copies rows idx[0..n) into x (n, dims) as floats (u8 scaled by 1/255)
 * and their labels into y (n). The batch loader of training and evaluation.
 */
void dataset_batch(const struct dataset *ds, const uint32_t *idx, size_t n, float *x, uint8_t *y);

/* counts[c] = rows of class c; counts has ds->classes entries. */
/*
 * True if a and b (of the same dims) are scaled alike: both unstandardised,
 * or standardised with the same mean and deviation, bit for bit.
 */
bool dataset_same_scaling(const struct dataset *a, const struct dataset *b);
void dataset_histogram(const struct dataset *ds, uint32_t *counts);

#endif
