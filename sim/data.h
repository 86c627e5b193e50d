/*
 * data.h: the simulator's datasets (see data.c).
 */
#ifndef SOTTO_SIM_DATA_H
#define SOTTO_SIM_DATA_H

#include <stdbool.h>
#include <stdint.h>

struct dataset;

struct sim_data_spec {
	uint32_t nodes;
	bool synthetic;   /* else the bundled MNIST, Dirichlet(alpha) over sites */
	const char *root; /* repository root, for data/ */
	const char *train_path, *test_path; /* other datasets than MNIST (both, or NULL) */
	double alpha;
	uint64_t seed;                           /* the split's seed, or the synthetic task's */
	uint32_t dims, classes, rows, test_rows; /* synthetic only */
};

struct sim_data_set {
	uint32_t n;
	struct dataset **shards; /* (n) */
	struct dataset *test;
};

/* 0, or an error of util/err.h (the reason on stderr). sim_data_free after. */
int sim_data_make(struct sim_data_set *out, const struct sim_data_spec *sp)
        __attribute__((warn_unused_result));
void sim_data_free(struct sim_data_set *d);

#endif
