/*
 * node_worker_test.c: the training worker (node/worker.h) on its own
 * thread. What it pins down: an applied result is published, and its
 * APPLIED event posted, before the evaluation of it runs (a low-rank
 * chain's next round needs the published model within milliseconds, not
 * after a pass over the test set); the evaluation is of the freshly
 * averaged model itself, not of the model after the step that follows an
 * apply; and the published model is never exactly the result.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "learn/dataset.h"
#include "learn/model.h"
#include "learn/optim.h"
#include "learn/train.h"
#include "node/worker.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROWS 256

static struct model_spec spec(void)
{
	struct model_spec s;

	memset(&s, 0, sizeof(s));
	s.type = MODEL_MLP;
	s.channels = 1;
	s.height = 4;
	s.width = 4;
	s.classes = 3;
	s.n_hidden = 1;
	s.hidden[0] = 8;
	return s;
}

/* A learnable task: the class is the brightest of the first three pixels. */
static struct dataset *task(uint64_t seed)
{
	struct dataset *ds = NULL;

	assert_int_equal(dataset_alloc(&ds, ROWS, 16, 3, DATASET_U8), 0);
	for (uint32_t i = 0; i < ROWS; i++) {
		uint8_t *x = ds->x_u8 + (size_t)i * 16;
		for (uint32_t j = 0; j < 16; j++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			x[j] = (uint8_t)(seed >> 56);
		}
		ds->labels[i] = x[0] >= x[1] && x[0] >= x[2] ? 0 : x[1] >= x[2] ? 1 : 2;
	}
	return ds;
}

/* Waits (up to 10 s) for the next event. */
static struct worker_event next_event(struct worker *w)
{
	struct worker_event ev;

	for (int i = 0; i < 10000; i++) {
		if (worker_events(w, &ev, 1) == 1)
			return ev;
		usleep(1000);
	}
	fail_msg("no event from the worker within 10 s");
	return ev;
}

static void test_evaluated_after_publish(void **state)
{
	struct model_spec s = spec();
	struct optim_params op;
	struct train *t = NULL;
	struct model *m = NULL;
	struct dataset *train_ds = task(1), *test_ds = task(2);
	struct worker *w = NULL;
	struct worker_event ev;
	struct eval_result want;
	char path[] = "/tmp/sotto-worker-test-XXXXXX";
	char ckpt[64];
	float *x, *avg, *snap, *pub;
	size_t n;
	uint64_t seq, steps;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	snprintf(ckpt, sizeof(ckpt), "%s.ckpt", path);
	optim_params_default(&op, OPTIM_SGD);
	assert_int_equal(train_alloc(&t, &s, 42, &op, 16, 7), 0);
	assert_int_equal(worker_start(&w, t, train_ds, test_ds, ckpt, 1, 0, NULL, NULL), 0);
	n = worker_n_params(w);
	x = malloc(n * sizeof(float));
	pub = malloc(n * sizeof(float));
	assert_non_null(x);
	assert_non_null(pub);
	assert_int_equal(worker_snapshot(w, x, &steps), 0);
	assert_int_equal(steps, 0);

	/* A result some way from the model, whose accuracy we know. */
	avg = malloc(n * sizeof(float));
	snap = malloc(n * sizeof(float));
	assert_non_null(avg);
	assert_non_null(snap);
	memcpy(snap, x, n * sizeof(float));
	for (size_t i = 0; i < n; i++)
		avg[i] = x[i] + 0.5f * sinf((float)i);
	assert_int_equal(model_alloc(&m, &s, 64), 0);
	for (size_t i = 0; i < n; i++)
		m->params[i] = x[i] + (avg[i] - snap[i]); /* as train_merge computes it */
	assert_int_equal(model_evaluate(m, test_ds, &want, NULL), 0);

	/* No budget granted: the model is x until the apply, then one step (as debt). */
	seq = worker_apply(w, 77, avg, snap, NULL, 0, true);
	/* APPLIED first (after the step's TRAINED): the result is published by then. */
	do
		ev = next_event(w);
	while (ev.type == WORKER_EV_TRAINED);
	assert_int_equal(ev.type, WORKER_EV_APPLIED);
	assert_int_equal(ev.round_id, 77);
	assert_int_equal(ev.rc, 0);
	assert_true(worker_snapshot(w, pub, NULL) >= seq);
	/* Then the evaluation, of the averaged model, not of the stepped one. */
	do
		ev = next_event(w);
	while (ev.type == WORKER_EV_TRAINED);
	assert_int_equal(ev.type, WORKER_EV_EVALUATED);
	assert_int_equal(ev.rc, 0);
	assert_true(fabs(ev.accuracy - want.accuracy) < 1e-12);
	assert_true(fabs(ev.loss - want.loss) < 1e-9);
	/* The published model took its one step: it is not exactly the result. */
	assert_int_equal(worker_snapshot(w, pub, &steps), seq);
	assert_int_equal(steps, 1);
	assert_true(memcmp(pub, m->params, n * sizeof(float)) != 0);
	assert_int_equal(worker_stop(w, NULL, 0), 0);
	model_free(m);
	dataset_free(train_ds);
	dataset_free(test_ds);
	unlink(ckpt);
	free(x);
	free(pub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_evaluated_after_publish),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
