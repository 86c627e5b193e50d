/*
 * standardize.c: [Training] Standardize where a node loads its data (see
 * standardize.h).
 */
#include "node/standardize.h"

#include "config/config.h"
#include "learn/dataset.h"
#include "learn/featstats.h"
#include "learn/learn.h"
#include "util/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void standardize_agreed_path(const struct config *cfg, char *out, size_t len)
{
	snprintf(out, len, "%s/standardize.stats", cfg->node.data_dir);
}

int standardize_stats(const struct config *cfg, const struct dataset *train, struct featstats *fs,
                      bool *pending, char *why, size_t len)
{
	char path[CONFIG_PATH_MAX + 32];
	double *sum, *sq;
	int rc;

	memset(fs, 0, sizeof(*fs));
	if (pending != NULL)
		*pending = false;
	if (train->mean != NULL) {
		snprintf(why, len,
		         "[Training] Standardize = %s, but Dataset %s was standardised when it "
		         "was imported: import it with `sotto data import-csv --raw`, or set "
		         "Standardize = none",
		         cfg->training.standardize == CONFIG_STD_FILE    ? "FILE"
		         : cfg->training.standardize == CONFIG_STD_LOCAL ? "local"
		                                                         : "federated",
		         cfg->training.dataset);
		return LEARN_EMISMATCH;
	}
	switch (cfg->training.standardize) {
	case CONFIG_STD_NONE:
		return 0;
	case CONFIG_STD_LOCAL:
		sum = malloc(train->dims * sizeof(double));
		sq = malloc(train->dims * sizeof(double));
		rc = sum == NULL || sq == NULL ? -ENOMEM : 0;
		if (rc == 0) {
			featstats_moments(train, sum, sq);
			rc = featstats_from_moments(fs, train->dims, (double)train->rows, sum, sq);
		}
		free(sum);
		free(sq);
		if (rc != 0)
			snprintf(why, len, "the statistics of Dataset %s: %s",
			         cfg->training.dataset, err_str(rc));
		return rc;
	case CONFIG_STD_FILE:
		snprintf(path, sizeof(path), "%s", cfg->training.standardize_file);
		break;
	case CONFIG_STD_FEDERATED:
		if (cfg->node.data_dir[0] == '\0') {
			snprintf(why, len,
			         "Standardize = federated: `sotto run` agrees the statistics with "
			         "its "
			         "peers and keeps them in [Node] DataDir, which this config lacks");
			return -ENOENT;
		}
		standardize_agreed_path(cfg, path, sizeof(path));
		break;
	}
	rc = featstats_load(fs, path, why, len);
	if (rc == -ENOENT && cfg->training.standardize == CONFIG_STD_FEDERATED) {
		if (pending != NULL) {
			*pending = true;
			return 0;
		}
		snprintf(why, len,
		         "%s does not exist yet: with Standardize = federated, `sotto run` agrees "
		         "the statistics with its peers first and writes them there",
		         path);
		return rc;
	}
	if (rc == 0 && fs->dims != train->dims) {
		snprintf(why, len, "%s has statistics of %u features, Dataset %s has %u", path,
		         fs->dims, cfg->training.dataset, train->dims);
		featstats_free(fs);
		rc = LEARN_EMISMATCH;
	}
	return rc;
}

int standardize_apply(const struct featstats *fs, struct dataset *train, struct dataset *test,
                      char *why, size_t len)
{
	int rc;

	if (test != NULL && test->mean != NULL) {
		snprintf(why, len,
		         "TestSet was standardised when it was imported, Dataset was not: import "
		         "it with `sotto data import-csv --raw` too");
		return LEARN_EMISMATCH;
	}
	if (test != NULL && test->dims != fs->dims) {
		snprintf(why, len, "TestSet has %u features, the statistics %u", test->dims,
		         fs->dims);
		return LEARN_EMISMATCH;
	}
	/* The test set first: if the training set then fails, neither changed... */
	if (test != NULL && (rc = featstats_apply(test, fs)) != 0) {
		snprintf(why, len, "cannot standardise TestSet: %s", err_str(rc));
		return rc;
	}
	rc = featstats_apply(train, fs);
	if (rc != 0)
		/* ...but for the test set, which the caller then throws away with it. */
		snprintf(why, len, "cannot standardise Dataset: %s", err_str(rc));
	return rc;
}

int standardize_datasets(const struct config *cfg, struct dataset *train, struct dataset *test,
                         bool *pending, char *why, size_t len)
{
	struct featstats fs;
	bool wait = false;
	int rc;

	if (pending != NULL)
		*pending = false;
	if (cfg->training.standardize == CONFIG_STD_NONE)
		return 0;
	rc = standardize_stats(cfg, train, &fs, pending != NULL ? &wait : NULL, why, len);
	if (rc != 0)
		return rc;
	if (wait) {
		*pending = true;
		return 0;
	}
	rc = standardize_apply(&fs, train, test, why, len);
	featstats_free(&fs);
	return rc;
}
