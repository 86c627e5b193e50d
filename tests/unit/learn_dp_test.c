/*
 * learn_dp_test.c: DP-SGD and its accountant (learn/dp.h).
 *
 * The accountant against the numbers the reference implementations'
 * own tests assert (TensorFlow Privacy's rdp_accountant_test.py at
 * a749ce4 and compute_dp_sgd_privacy_test.py; Opacus's accountants_test.py
 * and get_noise_multiplier test), to their stated precision, at least 2
 * significant digits; the ledger's text form and its refusals; the noise
 * statistically; Poisson sampling's rate; clipping per example.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "learn/dataset.h"
#include "learn/dp.h"
#include "learn/learn.h"
#include "learn/model.h"
#include "learn/train.h"
#include "util/rng.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void assert_rel(double got, double want, double rtol)
{
	if (!(fabs(got - want) <= rtol * fabs(want))) {
		print_error("got %.10g, want %.10g (rtol %g)\n", got, want, rtol);
		fail();
	}
}

static void test_rdp_reference(void **state)
{
	static const double orders[] = {1.5, 2.5, 5, 50, 100};
	static const double want[] = {6.5007e-04, 1.0854e-03, 2.1808e-03, 2.3846e-02, 1.6742e+02};
	(void)state;

	/* TFP test_compute_rdp_no_data / _no_sampling / _scalar */
	assert_true(dp_rdp_step(0, 10, 20) == 0.0);
	assert_rel(dp_rdp_step(1, 10, 20), 0.1, 1e-12);
	assert_true(fabs(10 * dp_rdp_step(0.1, 2, 5) - 0.07737) < 5e-6);
	/* TFP test_compute_rdp_sequence: q 0.01, sigma 2.5, 50 steps (fractional orders too) */
	for (size_t i = 0; i < 5; i++)
		assert_rel(50 * dp_rdp_step(0.01, 2.5, orders[i]), want[i], 1e-4);
	assert_true(isinf(dp_rdp_step(0.01, 2.5, INFINITY)));
	assert_true(isinf(dp_rdp_step(0.01, 0, 2)));
}

static void test_epsilon_reference(void **state)
{
	double orders[128], rdp[128], order, eps;
	size_t n = 0;
	(void)state;

	/* TFP test_get_privacy_spent_check_target_delta (improved conversion). */
	for (int a = 2; a <= 32; a++) {
		orders[n] = a;
		rdp[n++] = 1.1;
	}
	eps = dp_epsilon_orders(orders, rdp, n, 1e-5, &order);
	assert_rel(eps, 1.32783806176, 1e-9);
	assert_true(order == 32);

	/* Opacus test_rdp_accountant: sigma 1.5, q 0.04, 2250 steps, default orders. */
	assert_rel(dp_epsilon_after(NULL, 0.04, 1.5, 2250, 1e-5), 7.32911117143, 1e-6);

	/* TFP compute_dp_sgd_privacy_test Test0 / Test1 (its orders, improved). */
	{
		static const double head[] = {1.25, 1.5, 1.75, 2., 2.25, 2.5, 3., 3.5, 4., 4.5};
		struct {
			double n, batch, sigma, epochs, delta, eps, order;
		} c[] = {{60000, 150, 1.3, 15, 1e-5, 0.7242234026109595, 19},
		         {100000, 100, 1.0, 30, 1e-7, 1.4154988495444845, 13}};
		for (size_t k = 0; k < 2; k++) {
			double q = c[k].batch / c[k].n;
			double steps = ceil(c[k].epochs * c[k].n / c[k].batch);
			n = 0;
			for (size_t i = 0; i < 10; i++)
				orders[n++] = head[i];
			for (int a = 5; a < 64; a++)
				orders[n++] = a;
			for (size_t i = 0; i < n; i++)
				rdp[i] = steps * dp_rdp_step(q, c[k].sigma, orders[i]);
			eps = dp_epsilon_orders(orders, rdp, n, c[k].delta, &order);
			assert_rel(eps, c[k].eps, 1e-6);
			assert_true(order == c[k].order);
		}
	}

	/* Opacus get_noise_multiplier: epsilon 8, delta 1e-5, q 0.04, 90 epochs: 1.416. */
	assert_rel(dp_sigma_for(0.04, 2250, 1e-5, 8.0), 1.416, 2e-3);
	assert_true(dp_epsilon_after(NULL, 0.04, dp_sigma_for(0.04, 2250, 1e-5, 8.0), 2250, 1e-5) <=
	            8.0);
	/* No noise can make that: none is returned. */
	assert_true(dp_sigma_for(1.0, 1000000000ull, 1e-5, 1e-6) == 0.0);
}

static void test_ledger(void **state)
{
	struct dp_ledger l, back;
	char buf[DP_LEDGER_MAX_BYTES], bad[DP_LEDGER_MAX_BYTES];
	int n;
	(void)state;

	memset(&l, 0, sizeof(l));
	dp_ledger_charge(&l, 0.04, 1.5, 1000);
	dp_ledger_charge(&l, 0.04, 1.5, 1250);
	assert_int_equal(l.steps, 2250);
	assert_rel(dp_epsilon(l.rdp, 1e-5, NULL), 7.32911117143, 1e-6);
	/* Steps left in a budget: exactly the most that fit. */
	{
		struct dp_ledger z;
		uint64_t k;
		memset(&z, 0, sizeof(z));
		k = dp_steps_within(&z, 0.04, 1.5, 1e-5, 7.32911117143 + 1e-9, 100000);
		assert_true(k >= 2250 && k < 2260);
		assert_true(dp_epsilon_after(&z, 0.04, 1.5, k, 1e-5) <= 7.32911117143 + 1e-9);
		assert_true(dp_epsilon_after(&z, 0.04, 1.5, k + 1, 1e-5) > 7.32911117143 + 1e-9);
		assert_int_equal(dp_steps_within(&l, 0.04, 1.5, 1e-5, 1.0, 100), 0);
	}
	n = dp_ledger_encode(&l, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(dp_ledger_decode(&back, buf, (size_t)n), 0);
	assert_memory_equal(&back, &l, sizeof(l)); /* bit for bit */

	/* Refusals, and nothing changes on them. */
	memcpy(&back, &l, sizeof(l));
	assert_int_equal(dp_ledger_decode(&back, "hello\n", 6), LEARN_EMAGIC);
	assert_int_equal(dp_ledger_decode(&back, "sotto-privacy-ledger 2\n", 23), LEARN_EVERSION);
	assert_int_equal(dp_ledger_decode(&back, buf, (size_t)n - 1), LEARN_ECORRUPT); /* no NL */
	assert_int_equal(dp_ledger_decode(&back, buf, (size_t)n / 2), LEARN_ECORRUPT);
	memcpy(bad, buf, (size_t)n);
	bad[n] = 'x';
	assert_int_equal(dp_ledger_decode(&back, bad, (size_t)n + 1), LEARN_ECORRUPT);
	{
		char *p;
		memcpy(bad, buf, (size_t)n);
		bad[n] = '\0';
		p = strstr(bad, "rdp 1.2 ");
		assert_non_null(p);
		p[4] = '7'; /* an order out of place */
		assert_int_equal(dp_ledger_decode(&back, bad, (size_t)n), LEARN_ECORRUPT);
		memcpy(bad, buf, (size_t)n);
		p = strstr(bad, "steps ");
		p[6] = '-';
		assert_int_equal(dp_ledger_decode(&back, bad, (size_t)n), LEARN_ECORRUPT);
	}
	{
		/* A negative or non-finite value. */
		const char *p;
		size_t off;
		int m;
		memcpy(bad, buf, (size_t)n);
		p = strstr(buf, "rdp 63 ");
		off = (size_t)(p - buf);
		m = snprintf(bad + off, sizeof(bad) - off, "rdp 63 -0x1p+0\n");
		assert_int_equal(dp_ledger_decode(&back, bad, off + (size_t)m), LEARN_ECORRUPT);
		m = snprintf(bad + off, sizeof(bad) - off, "rdp 63 inf\n");
		assert_int_equal(dp_ledger_decode(&back, bad, off + (size_t)m), LEARN_ECORRUPT);
	}
	assert_memory_equal(&back, &l, sizeof(l));

	/* On disk: absent, then saved 0600 and read back. */
	{
		char dir[] = "/tmp/sotto-dp-XXXXXX", path[64];
		assert_non_null(mkdtemp(dir));
		snprintf(path, sizeof(path), "%s/privacy.ledger", dir);
		assert_int_equal(dp_ledger_load(&back, path), -ENOENT);
		assert_int_equal(back.steps, 0);
		assert_int_equal(dp_ledger_save(&l, path), 0);
		assert_int_equal(dp_ledger_load(&back, path), 0);
		assert_memory_equal(&back, &l, sizeof(l));
		unlink(path);
		rmdir(dir);
	}
}

static void test_gauss(void **state)
{
	struct rng r;
	double sum = 0, sq = 0, quart = 0, tail = 0;
	const int n = 400000;
	(void)state;

	rng_seed(&r, 7);
	for (int i = 0; i < n / 2; i++) {
		uint8_t b[16];
		double z[2];
		uint64_t a = rng_next(&r), c = rng_next(&r);
		memcpy(b, &a, 8);
		memcpy(b + 8, &c, 8);
		dp_gauss2(b, &z[0], &z[1]);
		for (int k = 0; k < 2; k++) {
			sum += z[k];
			sq += z[k] * z[k];
			quart += z[k] * z[k] * z[k] * z[k];
			tail += fabs(z[k]) > 1.959964 ? 1 : 0;
		}
	}
	/* Mean 0 (5 standard errors), variance 1, kurtosis 3, 5% beyond 1.96. */
	assert_true(fabs(sum / n) < 5.0 / sqrt(n));
	assert_true(fabs(sq / n - 1.0) < 5.0 * sqrt(2.0 / n));
	assert_true(fabs(quart / n - 3.0) < 5.0 * sqrt(96.0 / n));
	assert_true(fabs(tail / n - 0.05) < 5.0 * sqrt(0.05 * 0.95 / n));
}

/* A logreg on rows of 4 features; row 0 is huge, so its gradient is too. */
static struct dataset *tiny_data(uint32_t rows)
{
	struct dataset *ds;

	assert_int_equal(dataset_alloc(&ds, rows, 4, 2, DATASET_F32), 0);
	ds->channels = ds->height = ds->width = 0;
	for (uint32_t i = 0; i < rows; i++) {
		for (uint32_t j = 0; j < 4; j++)
			ds->x_f32[i * 4 + j] = (float)((i * 7 + j * 3) % 5) - 2.0f;
		ds->labels[i] = (uint8_t)(i % 2);
	}
	for (uint32_t j = 0; j < 4; j++)
		ds->x_f32[j] *= 1000.0f;
	return ds;
}

static struct train *tiny_train(uint32_t batch)
{
	struct model_spec s;
	struct optim_params op;
	struct train *t;

	memset(&s, 0, sizeof(s));
	s.type = MODEL_LOGREG;
	s.channels = 1;
	s.height = 1;
	s.width = 4;
	s.classes = 2;
	optim_params_default(&op, OPTIM_SGD);
	op.lr = 0.1f;
	op.momentum = 0.0f;
	assert_int_equal(train_alloc(&t, &s, 3, &op, batch, 5), 0);
	return t;
}

static void test_clip_per_example(void **state)
{
	struct dataset *ds = tiny_data(8);
	struct train *t = tiny_train(8); /* q = 1: every row, every step */
	struct train *ref = tiny_train(8);
	struct rng r;
	struct train_dp dp = {.clip = 0.5, .sigma = 0.0, .random = rng_fill, .random_arg = &r};
	size_t np = t->model->n_params;
	float *want = calloc(np, sizeof(float));
	(void)state;

	rng_seed(&r, 1);
	assert_int_equal(train_set_dp(t, &dp), 0);
	/* By hand: each row's gradient, clipped to 0.5, summed, over 8 rows. */
	for (uint32_t i = 0; i < 8; i++) {
		double norm = 0;
		dataset_batch(ds, &i, 1, ref->x, ref->y);
		(void)model_forward(ref->model, ref->x, 1);
		(void)model_backward(ref->model, ref->y, NULL);
		for (size_t j = 0; j < np; j++)
			norm += (double)ref->model->grads[j] * ref->model->grads[j];
		norm = sqrt(norm);
		if (i == 0)
			assert_true(norm > 10 * 0.5); /* the huge row is clipped */
		for (size_t j = 0; j < np; j++)
			want[j] += (float)(norm > 0.5 ? 0.5 / norm : 1.0) * ref->model->grads[j] /
			           8.0f;
	}
	for (size_t j = 0; j < np; j++)
		want[j] = ref->model->params[j] - 0.1f * want[j];
	assert_int_equal(train_steps(t, ds, 1, NULL), 0);
	for (size_t j = 0; j < np; j++)
		assert_true(fabsf(t->model->params[j] - want[j]) < 1e-5f);
	/* Bad settings are refused and change nothing. */
	dp.random = NULL;
	assert_int_equal(train_set_dp(t, &dp), LEARN_EBOUNDS);
	dp.random = rng_fill;
	dp.clip = -1;
	assert_int_equal(train_set_dp(t, &dp), LEARN_EBOUNDS);
	assert_true(t->dp.clip == 0.5);
	free(want);
	train_free(t);
	train_free(ref);
	dataset_free(ds);
}

/* Noise: with sigma and no signal (clip tiny), the step is N(0, (sigma clip / q rows)^2). */
static void test_noise_scale(void **state)
{
	struct dataset *ds = tiny_data(100);
	struct train *t = tiny_train(10); /* q = 0.1 */
	struct rng r;
	struct train_dp dp = {.clip = 1e-5, .sigma = 2e5, .random = rng_fill, .random_arg = &r};
	size_t np = t->model->n_params;
	double sq = 0;
	int n = 0;
	(void)state;

	rng_seed(&r, 2);
	assert_int_equal(train_set_dp(t, &dp), 0);
	for (int s = 0; s < 400; s++) {
		float *before = malloc(np * sizeof(float));
		memcpy(before, t->model->params, np * sizeof(float));
		assert_int_equal(train_steps(t, ds, 1, NULL), 0);
		for (size_t j = 0; j < np; j++) {
			double d = (before[j] - t->model->params[j]) / 0.1; /* lr 0.1 */
			sq += d * d;
			n++;
		}
		free(before);
	}
	/* sd = sigma clip / (q rows) = 2 / 10 = 0.2; the clipped signal is 1e-5 a row. */
	assert_true(fabs(sqrt(sq / n) - 0.2) < 0.2 * 5.0 * sqrt(0.5 / n));
	train_free(t);
	dataset_free(ds);
}

/* Poisson sampling: rows per step are Binomial(rows, q). */
static void test_poisson_rate(void **state)
{
	struct dataset *ds = tiny_data(200);
	struct train *t = tiny_train(20); /* q = 0.1 */
	struct rng r;
	struct train_dp dp = {.clip = 1.0, .sigma = 1.0, .random = rng_fill, .random_arg = &r};
	struct train_stats st;
	double sum = 0, sq = 0;
	const int steps = 2000;
	(void)state;

	rng_seed(&r, 3);
	assert_int_equal(train_set_dp(t, &dp), 0);
	assert_true(fabs(train_dp_rate(t, ds) - 0.1) < 1e-12);
	for (int s = 0; s < steps; s++) {
		assert_int_equal(train_steps(t, ds, 1, &st), 0);
		sum += (double)st.rows;
		sq += (double)st.rows * (double)st.rows;
	}
	/* mean 20, variance 200 * 0.1 * 0.9 = 18 */
	assert_true(fabs(sum / steps - 20.0) < 5.0 * sqrt(18.0 / steps));
	assert_true(fabs((sq / steps - (sum / steps) * (sum / steps)) - 18.0) < 3.0);
	assert_int_equal(t->steps, (uint64_t)steps);
	train_free(t);
	dataset_free(ds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_rdp_reference),    cmocka_unit_test(test_epsilon_reference),
	        cmocka_unit_test(test_ledger),           cmocka_unit_test(test_gauss),
	        cmocka_unit_test(test_clip_per_example), cmocka_unit_test(test_noise_scale),
	        cmocka_unit_test(test_poisson_rate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
