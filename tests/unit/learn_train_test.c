/*
 * learn_train_test.c: the trainer's promises to the node. Identical
 * initialisation from a seed on every instance; segments tile the flat
 * vector; steps resume exactly across calls (fractional epochs); two
 * trainers on two threads share nothing; evaluation counts; spec bounds;
 * and a short run on the bundled MNIST learns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "learn/dataset.h"
#include "learn/learn.h"
#include "learn/model.h"
#include "learn/train.h"
#include "util/rng.h"

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
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
