/*
 * standardize.h: [Training] Standardize, applied where a node loads its data
 * (run, check, train, export, predict), so that every command scales the
 * features the same way.
 *
 *   none       the values as the dataset file holds them (a CSV import
 *              without --raw standardised them with that file's statistics)
 *   local      this site's own mean and deviation (the Dataset's)
 *   FILE       the statistics of a sotto-stats file (learn/featstats.h)
 *   federated  the pooled statistics of every site's Dataset, which `sotto
 *              run` agrees with its peers through secure rounds before it
 *              trains (docs/learning.md, "Federated standardisation") and
 *              keeps in DataDir/standardize.stats
 *
 * All but none need datasets imported unstandardised (`import-csv --raw`,
 * or the bundled u8 images): standardising twice is refused, not done.
 */
#ifndef SOTTO_NODE_STANDARDIZE_H
#define SOTTO_NODE_STANDARDIZE_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct dataset;
struct featstats;

/* DataDir/standardize.stats: where a node keeps the statistics it agreed. */
void standardize_agreed_path(const struct config *cfg, char *out, size_t len);

/*
 * The statistics cfg asks for, for train (not standardised yet). federated
 * reads the agreed file; when it does not exist yet, returns 0 with
 * *pending true and fs empty (pending may be NULL: then that is an error
 * naming the node's first run as the way to get them). Returns 0, or a
 * negative errno / learn.h error with why (a sentence) filled.
 */
int standardize_stats(const struct config *cfg, const struct dataset *train, struct featstats *fs,
                      bool *pending, char *why, size_t len) __attribute__((warn_unused_result));

/*
 * Scales train and test (test may be NULL) with the statistics cfg asks
 * for. Nothing to do for none; with federated still pending, *pending is
 * set and the datasets are left as they are. Returns 0, or an error with
 * why filled; the datasets are unchanged on error.
 */
int standardize_datasets(const struct config *cfg, struct dataset *train, struct dataset *test,
                         bool *pending, char *why, size_t len) __attribute__((warn_unused_result));

/* Both datasets scaled with fs (test may be NULL). 0 or an error with why filled. */
int standardize_apply(const struct featstats *fs, struct dataset *train, struct dataset *test,
                      char *why, size_t len) __attribute__((warn_unused_result));

#endif
