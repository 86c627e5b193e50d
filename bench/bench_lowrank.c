/*
 * bench_lowrank.c: what low-rank averaging ([Gossip] Rank, docs/codec.md)
 * costs a member in CPU per round, against one local training step of the
 * same model (issue 14's target: the codec's encode + decode per member per
 * round under one training step). The MLP 784-128-10 of the bench, batch
 * 32, on the bundled MNIST; its first layer (128 x 784) is the projected
 * one. Per rank: a basis/project round's encode (W Q) and decode (the lift
 * W += dy Q^T), a sketch round's encode (W^T dy) and decode (orth), and
 * the mean over a chain's five rounds. Thread CPU time (OpenBLAS on one
 * thread, as a node with [Training] Threads = 1 trains), the median of many
 * repetitions, all in the same run. Prints figures only.
 *
 *   build-bench/bench/bench_lowrank [--reps 200]
 */
#include "learn/dataset.h"
#include "learn/learn.h"
#include "learn/model.h"
#include "learn/optim.h"
#include "learn/train.h"
#include "protocol/lowrank.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double thread_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	enum { M = 128, N = 784 };
	static const unsigned ranks[] = {8, 12, 16, 32};
	struct dataset *tr = NULL;
	struct train *t = NULL;
	struct model_spec s;
	struct optim_params op;
	int reps = 200;
	double *tv, step;
	float *w, *q, *y, *dy, *sk;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			reps = atoi(argv[++i]);
	}
	if (reps < 5)
		reps = 5;
	learn_set_threads(1); /* as a node trains ([Training] Threads = 1): all on this thread */
	tv = calloc((size_t)reps, sizeof(*tv));
	w = malloc(sizeof(float) * M * N);
	q = malloc(sizeof(float) * N * 64);
	y = malloc(sizeof(float) * M * 64);
	dy = malloc(sizeof(float) * M * 64);
	sk = malloc(sizeof(float) * N * 64);
	if (tv == NULL || w == NULL || q == NULL || y == NULL || dy == NULL || sk == NULL ||
	    dataset_load(&tr, SOTTO_SOURCE_DIR "/data/mnist-train.sdat.gz") != 0) {
		fprintf(stderr, "bench_lowrank: cannot set up\n");
		return 1;
	}
	memset(&s, 0, sizeof(s));
	s.type = MODEL_MLP;
	s.channels = 1;
	s.height = 28;
	s.width = 28;
	s.classes = 10;
	s.n_hidden = 1;
	s.hidden[0] = 128;
	optim_params_default(&op, OPTIM_SGD);
	op.lr = 0.05f;
	op.momentum = 0.9f;
	if (train_alloc(&t, &s, 42, &op, 32, 1) != 0) {
		fprintf(stderr, "bench_lowrank: cannot create the MLP\n");
		return 1;
	}
	if (train_steps(t, tr, 20, NULL) != 0) /* warm caches and thread pools */
		return 1;
	for (int i = 0; i < reps; i++) {
		double c0 = thread_cpu();
		if (train_steps(t, tr, 1, NULL) != 0)
			return 1;
		tv[i] = thread_cpu() - c0;
	}
	step = median(tv, reps);
	memcpy(w, t->model->params, sizeof(float) * M * N);
	printf("MLP 784-128-10, batch 32: one local training step %.3f ms (thread CPU, median of "
	       "%d)\n\n",
	       step * 1e3, reps);
	printf("| rank | basis/project: encode + decode | sketch: encode + decode (orth) | mean "
	       "per round of a chain | vs a training step |\n|---|---|---|---|---|\n");
	for (size_t k = 0; k < sizeof(ranks) / sizeof(ranks[0]); k++) {
		unsigned r = ranks[k];
		double proj, sketch, mean, enc, dec;

		if (lowrank_random_q(q, N, r, 1) != 0)
			return 1;
		for (size_t i = 0; i < (size_t)M * r; i++)
			dy[i] = 1e-3f * (float)((int)(i % 7) - 3);
		for (int i = 0; i < reps; i++) {
			double c0 = thread_cpu();
			lowrank_project(y, w, q, M, N, r);
			lowrank_lift(w, dy, q, M, N, r);
			tv[i] = thread_cpu() - c0;
		}
		proj = median(tv, reps);
		for (int i = 0; i < reps; i++) {
			double c0 = thread_cpu();
			lowrank_sketch(sk, w, dy, M, N, r);
			tv[i] = thread_cpu() - c0;
		}
		enc = median(tv, reps);
		for (int i = 0; i < reps; i++) {
			lowrank_sketch(sk, w, dy, M, N, r);
			double c0 = thread_cpu();
			if (lowrank_orth(sk, N, r) < 0)
				return 1;
			tv[i] = thread_cpu() - c0;
		}
		dec = median(tv, reps);
		sketch = enc + dec;
		mean = (3 * proj + 2 * sketch) / 5;
		printf("| %u | %.3f ms | %.3f ms (%.3f ms) | %.3f ms | %.2fx |\n", r, proj * 1e3,
		       sketch * 1e3, dec * 1e3, mean * 1e3, mean / step);
	}
	train_free(t);
	dataset_free(tr);
	free(tv);
	free(w);
	free(q);
	free(y);
	free(dy);
	free(sk);
	return 0;
}
