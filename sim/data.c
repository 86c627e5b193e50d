/*
 * data.c: the simulator's datasets: the bundled MNIST split across the
 * sites as bench/cluster.sh splits it, or a synthetic task large enough
 * that a thousand sites each get their own rows.
 *
 * The synthetic task (docs/simulation.md): `classes` classes in `dims`
 * dimensions, each class a mixture of SYNTH_MODES Gaussian clusters whose
 * centres are drawn once from the seed (N(0, 1) per coordinate, scaled so
 * that classes overlap), rows drawn around a random centre of their class
 * with unit noise. A site's class mix is Dirichlet(alpha), as the MNIST
 * split; the test set is balanced and shared. An MLP with one hidden layer
 * learns it to about 95% (16 sites, Dirichlet 0.5, 120 s of the bench
 * schedule), a linear model noticeably less.
 *
 * Not here: the simulation (sim.c).
 */
#include "sim/data.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "learn/dataset.h"
#include "learn/learn.h"
#include "learn/partition.h"
#include "util/err.h"
#include "util/rng.h"
#include "util/util.h"

#define SYNTH_MODES  3
#define SYNTH_SPREAD 0.3 /* centre scale: smaller means more overlap */

struct synth {
	uint32_t dims, classes;
	float *centres; /* (classes, SYNTH_MODES, dims) */
};

static int synth_make(struct synth *s, uint32_t dims, uint32_t classes, uint64_t seed)
{
	struct rng r;
	size_t n = (size_t)classes * SYNTH_MODES * dims;

	s->dims = dims;
	s->classes = classes;
	s->centres = malloc(n * sizeof(float));
	if (s->centres == NULL)
		return -ENOMEM;
	rng_seed3(&r, seed, 0x5e7, 1);
	for (size_t i = 0; i < n; i++)
		s->centres[i] = (float)(rng_normal(&r) * SYNTH_SPREAD * 2.0);
	return 0;
}

/* One row of class c into x (dims floats). */
static void synth_row(const struct synth *s, struct rng *r, uint32_t c, float *x)
{
	uint32_t mode = rng_below(r, SYNTH_MODES);
	const float *mu = s->centres + ((size_t)c * SYNTH_MODES + mode) * s->dims;

	for (uint32_t d = 0; d < s->dims; d++)
		x[d] = mu[d] + (float)rng_normal(r);
}

static int synth_dataset(struct dataset **out, const struct synth *s, struct rng *r, uint32_t rows,
                         const double *mix)
{
	struct dataset *ds;
	int rc = dataset_alloc(&ds, rows, s->dims, s->classes, DATASET_F32);

	if (rc != 0)
		return rc;
	for (uint32_t i = 0; i < rows; i++) {
		uint32_t c;

		if (mix == NULL) {
			c = i % s->classes;
		} else {
			double u = rng_uniform(r), acc = 0;
			for (c = 0; c + 1 < s->classes; c++) {
				acc += mix[c];
				if (u < acc)
					break;
			}
		}
		ds->labels[i] = (uint8_t)c;
		synth_row(s, r, c, ds->x_f32 + (size_t)i * s->dims);
	}
	*out = ds;
	return 0;
}

int sim_data_make(struct sim_data_set *out, const struct sim_data_spec *sp)
{
	struct partition part;
	struct dataset *all = NULL;
	char path[4096];
	int rc;

	memset(out, 0, sizeof(*out));
	out->n = sp->nodes;
	out->shards = calloc(sp->nodes, sizeof(*out->shards));
	if (out->shards == NULL)
		return -ENOMEM;
	if (sp->synthetic) {
		struct synth s;
		double *mix = malloc(sp->classes * sizeof(double));
		struct rng r;

		if (mix == NULL)
			return -ENOMEM;
		rc = synth_make(&s, sp->dims, sp->classes, sp->seed);
		if (rc != 0) {
			free(mix);
			return rc;
		}
		rng_seed3(&r, sp->seed, 0x7e57, 0);
		rc = synth_dataset(&out->test, &s, &r, sp->test_rows, NULL);
		for (uint32_t i = 0; rc == 0 && i < sp->nodes; i++) {
			double sum = 0;

			rng_seed3(&r, sp->seed, 0x517e, i);
			for (uint32_t c = 0; c < sp->classes; c++) {
				mix[c] = rng_gamma(&r, sp->alpha);
				sum += mix[c];
			}
			for (uint32_t c = 0; c < sp->classes; c++)
				mix[c] = sum > 0 ? mix[c] / sum : 1.0 / sp->classes;
			rc = synth_dataset(&out->shards[i], &s, &r, sp->rows, mix);
		}
		free(mix);
		free(s.centres);
		return rc;
	}
	if (sp->train_path != NULL)
		snprintf(path, sizeof(path), "%s", sp->train_path);
	else
		snprintf(path, sizeof(path), "%s/data/mnist-train.sdat.gz", sp->root);
	rc = dataset_load(&all, path);
	if (rc != 0) {
		fprintf(stderr, "sotto-sim: %s: %s\n", path, err_str(rc));
		return rc;
	}
	if (sp->test_path != NULL)
		snprintf(path, sizeof(path), "%s", sp->test_path);
	else
		snprintf(path, sizeof(path), "%s/data/mnist-test.sdat.gz", sp->root);
	rc = dataset_load(&out->test, path);
	if (rc != 0) {
		fprintf(stderr, "sotto-sim: %s: %s\n", path, err_str(rc));
		dataset_free(all);
		return rc;
	}
	if (all->dims == out->test->dims && all->classes == out->test->classes &&
	    !dataset_same_scaling(all, out->test)) {
		fprintf(stderr,
		        "sotto-sim: the test set is scaled unlike the training set (import it "
		        "with `sotto data import-csv TEST.csv OUT --stats TRAIN`)\n");
		dataset_free(all);
		return LEARN_EMISMATCH;
	}
	if (all->dims != out->test->dims || all->classes != out->test->classes) {
		fprintf(stderr,
		        "sotto-sim: the test set has %u features and %u classes, the training set "
		        "%u and %u\n",
		        out->test->dims, out->test->classes, all->dims, all->classes);
		dataset_free(all);
		return LEARN_EMISMATCH;
	}
	/* The same split as `sotto data split --mode dirichlet` (bench/cluster.sh). */
	rc = partition_make(&part, all, PARTITION_DIRICHLET, sp->nodes, sp->alpha, 1, sp->seed);
	for (uint32_t i = 0; rc == 0 && i < sp->nodes; i++)
		rc = dataset_subset(&out->shards[i], all, part.idx + part.start[i],
		                    part.start[i + 1] - part.start[i]);
	if (rc == 0)
		partition_fini(&part);
	dataset_free(all);
	return rc;
}

void sim_data_free(struct sim_data_set *d)
{
	if (d->shards != NULL) {
		for (uint32_t i = 0; i < d->n; i++)
			dataset_free(d->shards[i]);
	}
	free(d->shards);
	dataset_free(d->test);
	memset(d, 0, sizeof(*d));
}
