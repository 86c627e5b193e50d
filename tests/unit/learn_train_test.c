/*
 * learn_train_test.c: the trainer's promises to the node. Identical
 * initialisation from a seed on every instance; segments tile the flat
 * vector; steps resume exactly across calls (fractional epochs); two
 * trainers on two threads share nothing; evaluation counts; spec bounds;
 * a short run on the bundled MNIST learns; the learning-rate schedule
 * reaches its floor at Epochs and a resumed run keeps its trajectory; the
 * momentum rules at a merge.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "learn/checkpoint.h"
#include "learn/dataset.h"
#include "learn/learn.h"
#include "learn/model.h"
#include "learn/train.h"
#include "util/rng.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static struct dataset *mnist_train, *mnist_test;

static struct model_spec mlp_spec(void)
{
	struct model_spec s;

	memset(&s, 0, sizeof(s));
	s.type = MODEL_MLP;
	s.channels = 1;
	s.height = 28;
	s.width = 28;
	s.classes = 10;
	s.n_hidden = 1;
	s.hidden[0] = 32;
	return s;
}

static void test_init_identical_and_segments(void **state)
{
	struct model_spec s = mlp_spec();
	struct model *a = NULL, *b = NULL;
	size_t next = 0;

	(void)state;
	assert_int_equal(model_alloc(&a, &s, 4), 0);
	assert_int_equal(model_alloc(&b, &s, 64), 0);
	model_init(a, 42);
	model_init(b, 42);
	assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
	model_init(b, 43);
	assert_memory_not_equal(a->params, b->params, a->n_params * sizeof(float));
	/* The segments tile params in order; PyTorch shapes. */
	assert_int_equal(a->n_segs, 4);
	for (size_t i = 0; i < a->n_segs; i++) {
		size_t prod = 1;
		assert_int_equal(a->segs[i].offset, next);
		for (uint32_t d = 0; d < a->segs[i].ndim; d++)
			prod *= a->segs[i].shape[d];
		assert_int_equal(prod, a->segs[i].length);
		next += a->segs[i].length;
	}
	assert_int_equal(next, a->n_params);
	assert_int_equal(a->n_params, 784 * 32 + 32 + 32 * 10 + 10);
	assert_non_null(model_segment_find(a, "fc2.bias"));
	assert_null(model_segment_find(a, "fc3.bias"));
	/* PyTorch's default bound 1/sqrt(fan_in). */
	for (size_t i = 0; i < a->n_params; i++) {
		float bound = i < 784 * 32 + 32 ? 1.0f / 28.0f : 1.0f / sqrtf(32.0f);
		assert_true(fabsf(a->params[i]) <= bound);
	}
	model_free(a);
	model_free(b);
}

static void test_spec_bounds(void **state)
{
	struct model_spec s = mlp_spec();
	struct model *m = (struct model *)&m;

	(void)state;
	s.n_hidden = 0;
	assert_int_equal(model_spec_check(&s), LEARN_EBOUNDS);
	s.n_hidden = MODEL_MAX_HIDDEN + 1;
	assert_int_equal(model_spec_check(&s), LEARN_EBOUNDS);
	s = mlp_spec();
	s.classes = 1;
	assert_int_equal(model_spec_check(&s), LEARN_EBOUNDS);
	s = mlp_spec();
	s.type = MODEL_CNN;
	s.conv[0] = 16;
	s.conv[1] = 32;
	assert_int_equal(model_spec_check(&s), 0);
	assert_int_equal(model_spec_n_params(&s), 16 * 25 + 16 + 32 * 16 * 25 + 32 + 10 * 512 + 10);
	s.height = 15; /* (15-4)/2 = 5 < 5+1: conv2 + pool leave nothing */
	assert_int_equal(model_spec_check(&s), LEARN_EBOUNDS);
	s.height = 28;
	s.conv[1] = 0;
	assert_int_equal(model_spec_check(&s), LEARN_EBOUNDS);
	/* The scratch bound refuses absurd batches before allocating. */
	s = mlp_spec();
	assert_int_equal(model_alloc(&m, &s, 65536), LEARN_EBOUNDS);
	assert_null(m);
	assert_int_equal(model_alloc(&m, &s, 0), LEARN_EBOUNDS);
}

static struct train *new_trainer(enum optim_type type, uint32_t batch)
{
	struct model_spec s = mlp_spec();
	struct optim_params op;
	struct train *t = NULL;

	optim_params_default(&op, type);
	assert_int_equal(train_alloc(&t, &s, 42, &op, batch, 7), 0);
	return t;
}

static void test_steps_resume(void **state)
{
	struct train *a = new_trainer(OPTIM_SGD, 100), *b = new_trainer(OPTIM_SGD, 100);
	struct train_stats st;
	uint32_t spe;

	(void)state;
	spe = train_steps_per_epoch(a, mnist_train);
	assert_int_equal(spe, 80);
	/* One epoch in one call == 0.3 + 0.7 epochs in two calls. */
	assert_int_equal(train_epoch(a, mnist_train, &st), 0);
	assert_int_equal(st.steps, 80);
	assert_int_equal(st.rows, 8000);
	assert_int_equal(st.epochs_done, 1);
	assert_int_equal(train_steps(b, mnist_train, 24, NULL), 0);
	assert_int_equal(b->epoch, 0);
	assert_int_equal(b->cursor, 2400);
	assert_int_equal(train_epoch(b, mnist_train, &st), 0);
	assert_int_equal(st.steps, 56);
	assert_int_equal(b->epoch, 1);
	assert_int_equal(b->cursor, 0);
	assert_memory_equal(a->model->params, b->model->params, a->model->n_params * 4);
	/* Another data seed, another order, other parameters. */
	b->data_seed = 8;
	assert_int_equal(train_epoch(a, mnist_train, NULL), 0);
	assert_int_equal(train_epoch(b, mnist_train, NULL), 0);
	assert_memory_not_equal(a->model->params, b->model->params, a->model->n_params * 4);
	train_free(a);
	train_free(b);
}

static void test_schedule_factor(void **state)
{
	struct train_schedule s;
	double prev = 2.0;

	(void)state;
	train_schedule_default(&s, 20);
	assert_int_equal(train_schedule_check(&s), 0);
	assert_true(train_schedule_factor(&s, 0) == 1.0 && train_schedule_factor(&s, 25) == 1.0);
	/* Cosine: 1 at the start, the midpoint half-way, the floor at Epochs and after. */
	s.decay = TRAIN_DECAY_COSINE;
	s.floor = 0.01;
	assert_true(fabs(train_schedule_factor(&s, 0) - 1.0) < 1e-12);
	assert_true(fabs(train_schedule_factor(&s, 10) - 0.505) < 1e-12);
	assert_true(fabs(train_schedule_factor(&s, 20 - 1e-6) - 0.01) < 1e-9);
	assert_true(train_schedule_factor(&s, 20) == 0.01 &&
	            train_schedule_factor(&s, 1e6) == 0.01);
	for (double e = 0; e <= 21; e += 0.25) {
		double f = train_schedule_factor(&s, e);
		assert_true(f <= prev && f >= 0.01);
		prev = f;
	}
	/* Warm-up from a tenth, linear, into the decay's start. */
	s.warmup = 2;
	assert_true(fabs(train_schedule_factor(&s, 0) - 0.1) < 1e-12);
	assert_true(fabs(train_schedule_factor(&s, 1) - 0.55) < 1e-12);
	assert_true(fabs(train_schedule_factor(&s, 2) - 1.0) < 1e-12);
	assert_true(fabs(train_schedule_factor(&s, 11) - 0.505) < 1e-12);
	/* Step: 1, sqrt(floor) from half the decay, the floor from three quarters. */
	s.decay = TRAIN_DECAY_STEP;
	assert_true(train_schedule_factor(&s, 10.9) == 1.0);
	assert_true(fabs(train_schedule_factor(&s, 11) - 0.1) < 1e-12);
	assert_true(train_schedule_factor(&s, 15.5) == 0.01);
	assert_true(train_schedule_factor(&s, 20) == 0.01);
	/* Out of range: refused, and a trainer keeps its schedule. */
	{
		struct train *t = new_trainer(OPTIM_SGD, 100);
		struct train_schedule bad = s;
		bad.warmup = 20;
		assert_int_equal(train_set_schedule(t, &bad), LEARN_EBOUNDS);
		bad = s;
		bad.floor = 0;
		assert_int_equal(train_set_schedule(t, &bad), LEARN_EBOUNDS);
		bad = s;
		bad.epochs = NAN;
		assert_int_equal(train_set_schedule(t, &bad), LEARN_EBOUNDS);
		bad = s;
		bad.momentum = (enum train_momentum)7;
		assert_int_equal(train_set_schedule(t, &bad), LEARN_EBOUNDS);
		assert_int_equal(t->sched.decay, TRAIN_DECAY_CONSTANT);
		train_free(t);
	}
}

/* A 2-epoch cosine run with quasi-global momentum and merges. */
static void sched_run(struct train *t, uint64_t from, uint64_t to, const float *jump)
{
	size_t n = t->model->n_params;
	float *snap = malloc(n * sizeof(float)), *avg = malloc(n * sizeof(float));

	assert_non_null(snap);
	assert_non_null(avg);
	for (uint64_t s = from; s < to; s++) {
		assert_int_equal(train_steps(t, mnist_train, 1, NULL), 0);
		if (s % 7 == 3) { /* a "gossip" jump every few steps */
			memcpy(snap, t->model->params, n * sizeof(float));
			for (size_t i = 0; i < n; i++)
				avg[i] = snap[i] + jump[i];
			assert_int_equal(train_merge(t, avg, snap, NULL), 0);
		}
	}
	free(snap);
	free(avg);
}

static void test_schedule_resume(void **state)
{
	struct train *a = new_trainer(OPTIM_SGD, 100), *b = new_trainer(OPTIM_SGD, 100), *c = NULL;
	struct train_schedule s;
	size_t n = a->model->n_params;
	float *jump = malloc(n * sizeof(float));
	uint8_t *buf = NULL;
	size_t len = 0;

	(void)state;
	assert_non_null(jump);
	for (size_t i = 0; i < n; i++)
		jump[i] = (float)((int)(i % 13) - 6) * 1e-5f;
	train_schedule_default(&s, 2);
	s.decay = TRAIN_DECAY_COSINE;
	s.warmup = 0.5;
	s.floor = 0.05;
	s.momentum = TRAIN_MOMENTUM_QUASI_GLOBAL;
	assert_int_equal(train_set_schedule(a, &s), 0);
	assert_int_equal(train_set_schedule(b, &s), 0);
	assert_true(a->optim.quasi_global);
	/* 160 steps (2 epochs of 80) in one go, or 57, a restart, and 103. */
	sched_run(a, 0, 160, jump);
	sched_run(b, 0, 57, jump);
	assert_int_equal(checkpoint_encode(&buf, &len, b, NULL, 0), 0);
	train_free(b);
	assert_int_equal(checkpoint_load_mem(buf, len, &c, NULL, NULL), 0);
	assert_int_equal(train_set_schedule(c, &s), 0);
	sched_run(c, 57, 160, jump);
	assert_memory_equal(a->model->params, c->model->params, n * sizeof(float));
	assert_memory_equal(a->optim.m, c->optim.m, n * sizeof(float));
	/* The last step ran just before Epochs; the next one at the floor. */
	assert_true(a->optim.lr_scale > 0.05f && a->optim.lr_scale < 0.051f);
	assert_int_equal(train_steps(a, mnist_train, 1, NULL), 0);
	assert_true(a->optim.lr_scale == 0.05f);
	assert_true(fabsf(optim_lr(&a->optim) - 0.05f * a->optim.p.lr) < 1e-9f);
	free(buf);
	free(jump);
	train_free(a);
	train_free(c);
}

/*
 * DriftCorrection: the first merge only opens the window; a merge after
 * steps of summed size H sets the estimate to (1 - gain) d + gain x jump /
 * H (from a non-zero estimate too); a merge with no step between
 * adds nothing; the next step's gradient has it subtracted; Adam refuses it.
 */
static void test_drift_correction(void **state)
{
	struct train_schedule s;
	struct train *t = new_trainer(OPTIM_SGD, 100), *u = new_trainer(OPTIM_SGD, 100);
	struct train *adam = new_trainer(OPTIM_ADAM, 100);
	size_t n = t->model->n_params;
	float *snap = malloc(n * sizeof(float)), *avg = malloc(n * sizeof(float));
	float *d0 = malloc(n * sizeof(float));
	float h;

	(void)state;
	assert_true(snap != NULL && avg != NULL && d0 != NULL);
	train_schedule_default(&s, 10);
	s.drift = 1.5;
	assert_int_equal(train_set_schedule(t, &s), LEARN_EBOUNDS);
	s.drift = 0.5;
	assert_int_equal(train_set_schedule(adam, &s), LEARN_EBOUNDS);
	assert_int_equal(train_set_schedule(t, &s), 0);
	assert_non_null(t->drift);
	/* The first merge: no estimate yet, whatever the jump. */
	assert_int_equal(train_steps(t, mnist_train, 3, NULL), 0);
	memcpy(snap, t->model->params, n * sizeof(float));
	for (size_t i = 0; i < n; i++)
		avg[i] = snap[i] + 1e-2f;
	assert_int_equal(train_merge(t, avg, snap, NULL), 0);
	for (size_t i = 0; i < n; i += 101)
		assert_true(t->drift[i] == 0.0f);
	/* Twice 4 steps and a merge: d = 0.5 J1 / H, then 0.5 d + 0.5 J2 / H. */
	h = optim_lr(&t->optim) / (1.0f - t->optim.p.momentum);
	for (int round = 0; round < 2; round++) {
		memcpy(d0, t->drift, n * sizeof(float));
		assert_int_equal(train_steps(t, mnist_train, 4, NULL), 0);
		memcpy(snap, t->model->params, n * sizeof(float));
		for (size_t i = 0; i < n; i++)
			avg[i] = snap[i] + (i % 3 ? 4e-3f : -8e-3f) * (float)(round + 1);
		assert_int_equal(train_merge(t, avg, snap, NULL), 0);
		for (size_t i = 0; i < n; i += 101)
			assert_true(fabsf(t->drift[i] -
			                  (0.5f * d0[i] + 0.5f * (avg[i] - snap[i]) / (4.0f * h))) <
			            1e-6f);
	}
	/* No step since: the estimate keeps its value. */
	memcpy(d0, t->drift, n * sizeof(float));
	memcpy(snap, t->model->params, n * sizeof(float));
	assert_int_equal(train_merge(t, avg, snap, NULL), 0);
	assert_memory_equal(t->drift, d0, n * sizeof(float));
	/*
	 * The step subtracts it: t and u (no correction) hold the same model,
	 * buffer and data position; after one step each, t's velocity differs
	 * from u's by exactly the estimate (SGD: m = mu m + g).
	 */
	assert_int_equal(train_steps(u, mnist_train, 11, NULL), 0);
	memcpy(u->model->params, t->model->params, n * sizeof(float));
	memcpy(u->optim.m, t->optim.m, n * sizeof(float));
	assert_int_equal(train_steps(t, mnist_train, 1, NULL), 0);
	assert_int_equal(train_steps(u, mnist_train, 1, NULL), 0);
	for (size_t i = 0; i < n; i += 101)
		assert_true(fabsf((u->optim.m[i] - t->optim.m[i]) - d0[i]) < 1e-5f);
	free(snap);
	free(avg);
	free(d0);
	train_free(t);
	train_free(u);
	train_free(adam);
}

static void test_momentum_rules(void **state)
{
	struct train_schedule s;
	struct train *t = new_trainer(OPTIM_SGD, 100);
	size_t n = t->model->n_params;
	float *snap = malloc(n * sizeof(float)), *avg = malloc(n * sizeof(float));
	float *m0 = malloc(n * sizeof(float)), *x0 = malloc(n * sizeof(float));
	float lr, c;

	(void)state;
	assert_true(snap != NULL && avg != NULL && m0 != NULL && x0 != NULL);
	train_schedule_default(&s, 10);
	assert_int_equal(train_steps(t, mnist_train, 5, NULL), 0);
	memcpy(snap, t->model->params, n * sizeof(float));
	for (size_t i = 0; i < n; i++)
		avg[i] = snap[i] + (i % 2 ? 1e-3f : -2e-3f);
	/* keep: the buffer is untouched, the model moved by the jump. */
	memcpy(m0, t->optim.m, n * sizeof(float));
	assert_int_equal(train_merge(t, avg, snap, NULL), 0);
	assert_memory_equal(t->optim.m, m0, n * sizeof(float));
	assert_true(t->model->params[0] == avg[0] && t->model->params[1] == avg[1]);
	/* quasi-global: m -= (1 - mu) * jump / lr. */
	s.momentum = TRAIN_MOMENTUM_QUASI_GLOBAL;
	assert_int_equal(train_set_schedule(t, &s), 0);
	memcpy(snap, t->model->params, n * sizeof(float));
	for (size_t i = 0; i < n; i++)
		avg[i] = snap[i] + (i % 2 ? 1e-3f : -2e-3f);
	lr = optim_lr(&t->optim);
	c = (1.0f - t->optim.p.momentum) / lr;
	assert_int_equal(train_merge(t, avg, snap, NULL), 0);
	for (size_t i = 0; i < n; i += 997)
		assert_true(fabsf(t->optim.m[i] - (m0[i] - c * (avg[i] - snap[i]))) < 1e-5f);
	/* A non-finite result changes neither the model nor the buffer. */
	memcpy(m0, t->optim.m, n * sizeof(float));
	memcpy(x0, t->model->params, n * sizeof(float));
	memcpy(snap, x0, n * sizeof(float));
	memcpy(avg, x0, n * sizeof(float));
	avg[n - 1] = INFINITY;
	assert_int_equal(train_merge(t, avg, snap, NULL), -ERANGE);
	assert_memory_equal(t->optim.m, m0, n * sizeof(float));
	assert_memory_equal(t->model->params, x0, n * sizeof(float));
	/* reset: the state is zero after a merge. */
	s.momentum = TRAIN_MOMENTUM_RESET;
	assert_int_equal(train_set_schedule(t, &s), 0);
	assert_false(t->optim.quasi_global);
	avg[n - 1] = snap[n - 1];
	assert_int_equal(train_merge(t, avg, snap, NULL), 0);
	assert_int_equal(t->optim.t, 0);
	for (size_t i = 0; i < n; i++)
		assert_true(t->optim.m[i] == 0.0f);
	free(snap);
	free(avg);
	free(m0);
	free(x0);
	train_free(t);
}

struct job {
	struct train *t;
	int rc;
};

static void *worker(void *arg)
{
	struct job *j = arg;
	j->rc = train_steps(j->t, mnist_train, 60, NULL);
	return NULL;
}

static void test_threads_share_nothing(void **state)
{
	struct train *seq = new_trainer(OPTIM_ADAM, 32);
	struct job jobs[2] = {{new_trainer(OPTIM_ADAM, 32), -1}, {new_trainer(OPTIM_ADAM, 32), -1}};
	pthread_t th[2];

	(void)state;
	learn_set_threads(1);
	assert_int_equal(train_steps(seq, mnist_train, 60, NULL), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, &jobs[i]), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(jobs[i].rc, 0);
		assert_memory_equal(jobs[i].t->model->params, seq->model->params,
		                    seq->model->n_params * 4);
		train_free(jobs[i].t);
	}
	train_free(seq);
}

static void test_learns_and_evaluates(void **state)
{
	struct train *t = new_trainer(OPTIM_SGD, 32);
	struct eval_result before, after;
	uint32_t conf[100], total = 0, diag = 0;

	(void)state;
	assert_int_equal(model_evaluate(t->model, mnist_test, &before, NULL), 0);
	assert_true(before.accuracy < 0.3);
	assert_true(fabs(before.loss - log(10.0)) < 0.5);
	assert_int_equal(train_epoch(t, mnist_train, NULL), 0);
	assert_int_equal(model_evaluate(t->model, mnist_test, &after, conf), 0);
	assert_int_equal(after.rows, 2000);
	assert_true(after.accuracy > 0.88);
	assert_true(after.loss < before.loss);
	for (int i = 0; i < 10; i++)
		for (int j = 0; j < 10; j++) {
			total += conf[i * 10 + j];
			diag += i == j ? conf[i * 10 + j] : 0;
		}
	assert_int_equal(total, 2000);
	assert_true(fabs((double)diag / 2000.0 - after.accuracy) < 1e-12);
	/* A dataset that does not fit the model is refused. */
	{
		struct dataset *other = NULL;
		struct eval_result ev;
		assert_int_equal(dataset_alloc(&other, 3, 10, 10, DATASET_U8), 0);
		assert_int_equal(model_evaluate(t->model, other, &ev, NULL), LEARN_EMISMATCH);
		assert_int_equal(train_steps(t, other, 1, NULL), LEARN_EMISMATCH);
		dataset_free(other);
	}
	/* optim_reset clears the state. */
	optim_reset(&t->optim);
	assert_int_equal(t->optim.t, 0);
	assert_true(t->optim.m[0] == 0.0f && t->optim.m[t->optim.n - 1] == 0.0f);
	train_free(t);
}

static void test_rng(void **state)
{
	struct rng a, b;
	uint32_t counts[3] = {0};
	double g = 0.0;
	uint32_t perm[10];

	(void)state;
	rng_seed(&a, 0);
	rng_seed(&b, 0);
	for (int i = 0; i < 100; i++)
		assert_true(rng_next(&a) == rng_next(&b));
	rng_seed3(&a, 1, 2, 3);
	rng_seed3(&b, 1, 3, 2);
	assert_true(rng_next(&a) != rng_next(&b));
	for (int i = 0; i < 30000; i++)
		counts[rng_below(&a, 3)]++;
	for (int i = 0; i < 3; i++)
		assert_true(counts[i] > 9500 && counts[i] < 10500);
	for (int i = 0; i < 20000; i++)
		g += rng_gamma(&a, 0.5);
	assert_true(fabs(g / 20000 - 0.5) < 0.03); /* mean of Gamma(k, 1) is k */
	for (uint32_t i = 0; i < 10; i++)
		perm[i] = i;
	rng_shuffle_u32(&a, perm, 10);
	{
		uint32_t sum = 0;
		for (int i = 0; i < 10; i++)
			sum += perm[i];
		assert_int_equal(sum, 45);
	}
	for (int i = 0; i < 1000; i++) {
		float u = rng_uniform_f(&a);
		assert_true(u >= 0.0f && u < 1.0f);
	}
}

static int setup(void **state)
{
	(void)state;
	if (dataset_load(&mnist_train, SOTTO_SOURCE_DIR "/data/mnist-train.sdat.gz") != 0)
		return -1;
	return dataset_load(&mnist_test, SOTTO_SOURCE_DIR "/data/mnist-test.sdat.gz") != 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	dataset_free(mnist_train);
	dataset_free(mnist_test);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_init_identical_and_segments),
	        cmocka_unit_test(test_spec_bounds),
	        cmocka_unit_test(test_steps_resume),
	        cmocka_unit_test(test_threads_share_nothing),
	        cmocka_unit_test(test_learns_and_evaluates),
	        cmocka_unit_test(test_rng),
	        cmocka_unit_test(test_schedule_factor),
	        cmocka_unit_test(test_schedule_resume),
	        cmocka_unit_test(test_momentum_rules),
	        cmocka_unit_test(test_drift_correction),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
