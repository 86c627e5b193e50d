/*
 * featstats.h: per-feature statistics for standardisation ([Training]
 * Standardize), their moments, and their small text file.
 *
 * A site standardises feature j as (x - mean[j]) / std[j]. With
 * Standardize = local the statistics are its own data's; with a FILE they
 * are whatever the file says; with federated they are the pooled
 * statistics of every site's data, which the node agrees with its peers
 * through secure rounds over the moments (node/standardize.h): from each
 * site only the group sums of (rows, sum x, sum x^2) ever leave it.
 *
 * The file (UTF-8 text, '#' starts a comment, blank lines ignored):
 *
 *   sotto-stats 1 mean-std        or    sotto-stats 1 sums
 *   features F                          features F
 *   rows N          (optional)          rows N          (required, >= 1)
 *   0 MEAN STD                          0 SUM SUMSQ
 *   ...                                 ...
 *   F-1 MEAN STD                        F-1 SUM SUMSQ
 *
 * one line per feature, in order, numbers as strtod reads them. STD must be
 * > 0; a sums file's column is turned into mean = SUM / N and std =
 * sqrt(SUMSQ / N - mean^2) (a column of zero variance gets std 1: it is
 * only centred, as the CSV importer does). `sotto data import-csv --raw
 * --sums FILE` writes the sums a site would contribute; a node writes the
 * statistics it agreed as mean-std.
 */
#ifndef SOTTO_LEARN_FEATSTATS_H
#define SOTTO_LEARN_FEATSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dataset;

#define FEATSTATS_MAX_FILE (64u << 20) /* bytes of a statistics file */

struct featstats {
	uint32_t dims;
	uint64_t rows;     /* rows they were computed over; 0: not said */
	float *mean, *std; /* (dims) each; std > 0 */
};

/*
 * Per-feature sums over ds's rows (in the values training sees: u8 bytes
 * as byte / 255): sum[j] = sum x_j, sumsq[j] = sum x_j^2, each ds->dims
 * doubles. The dataset must not be standardised already.
 */
void featstats_moments(const struct dataset *ds, double *sum, double *sumsq);

/*
 * Mean and standard deviation from rows n > 0 and the sums of x and x^2
 * (or, with n = 1, from the means of x and x^2): mean = sum / n, variance =
 * sumsq / n - mean^2, std = sqrt(variance), or 1 when that is not above
 * 1e-12 of the second moment (a constant column: only centred). Returns 0,
 * -ENOMEM or LEARN_EBOUNDS (a value not finite). fs->rows is set to n.
 */
int featstats_from_moments(struct featstats *fs, uint32_t dims, double n, const double *sum,
                           const double *sumsq) __attribute__((warn_unused_result));

/* Allocates fs's arrays for dims features (zeroed). 0 or -ENOMEM. */
int featstats_alloc(struct featstats *fs, uint32_t dims) __attribute__((warn_unused_result));
void featstats_free(struct featstats *fs);

/*
 * Parses a statistics file from text (len bytes; text[len] need not be a
 * NUL). On error, why (may be NULL) says what and where ("line 7: ...").
 * Returns 0, -ENOMEM, LEARN_EMAGIC (not a sotto-stats file) or
 * LEARN_EBOUNDS (anything else malformed); fs is left empty on error.
 */
int featstats_parse(struct featstats *fs, const char *text, size_t len, char *why, size_t why_len)
        __attribute__((warn_unused_result));
/* The same from a file (at most FEATSTATS_MAX_FILE bytes); why names it. */
int featstats_load(struct featstats *fs, const char *path, char *why, size_t why_len)
        __attribute__((warn_unused_result));

/*
 * Writes fs as a mean-std file (values with 9 significant digits, which
 * read back to the same floats), atomically, mode 0600; comment (may be
 * NULL) becomes '#' lines at the top. 0 or a negative errno.
 */
int featstats_save(const struct featstats *fs, const char *path, const char *comment)
        __attribute__((warn_unused_result));
/*
 * Writes a sums file of rows n and the sums of x and x^2, atomically, mode
 * 0600 (17 significant digits). 0 or a negative errno.
 */
int featstats_save_sums(const char *path, uint32_t dims, uint64_t n, const double *sum,
                        const double *sumsq, const char *comment)
        __attribute__((warn_unused_result));

/*
 * Standardises ds in place with fs: x = (x - mean) / std per feature. A
 * u8 dataset becomes f32 first. ds keeps copies of the statistics
 * (ds->mean, ds->std), as an imported standardised dataset does. Refuses a
 * dataset already standardised or of other dims (LEARN_EMISMATCH), and a
 * value that leaves float range (LEARN_EBOUNDS); ds is unchanged then.
 * 0, -ENOMEM or those.
 */
int featstats_apply(struct dataset *ds, const struct featstats *fs)
        __attribute__((warn_unused_result));

#endif
