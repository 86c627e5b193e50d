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

/* The ziggurat: moments, the 5% two-sided quantile, the tail beyond 3.65 and a histogram. */
static void test_gauss(void **state)
{
	struct rng r;
	double sum = 0, sq = 0, quart = 0, tail = 0, far = 0;
	const size_t count = 1000000;
	const double n = (double)count;
	float *z = calloc(count, sizeof(float));
	uint8_t buf[4096];
	double bins[16] = {0};
	double chi2 = 0;
	(void)state;

	rng_seed(&r, 7);
	dp_gauss_add(z, count, 1.0, buf, sizeof(buf), rng_fill, &r);
	for (size_t i = 0; i < count; i++) {
		double v = z[i];
		int k = (int)floor((v + 4.0) * 2.0);
		sum += v;
		sq += v * v;
		quart += v * v * v * v;
		tail += fabs(v) > 1.959964 ? 1 : 0;
		far += fabs(v) > 3.6541528853610088 ? 1 : 0;
		bins[k < 0 ? 0 : k > 15 ? 15 : k]++;
	}
	/* Mean 0 (5 standard errors), variance 1, kurtosis 3, 5% beyond 1.96. */
	assert_true(fabs(sum / n) < 5.0 / sqrt(n));
	assert_true(fabs(sq / n - 1.0) < 5.0 * sqrt(2.0 / n));
	assert_true(fabs(quart / n - 3.0) < 5.0 * sqrt(96.0 / n));
	assert_true(fabs(tail / n - 0.05) < 5.0 * sqrt(0.05 * 0.95 / n));
	/* The tail, drawn by its own rule: P(|z| > R) = erfc(R / sqrt 2) = 2.58e-4. */
	{
		double p = erfc(3.6541528853610088 / sqrt(2.0));
		assert_true(fabs(far / n - p) < 5.0 * sqrt(p / n));
	}
	/* Half-unit bins from -4 to 4 (the ends open): chi-square with 15 degrees, p < 1e-6 fails.
	 */
	for (int k = 0; k < 16; k++) {
		double lo = k == 0 ? -INFINITY : -4.0 + k * 0.5;
		double hi = k == 15 ? INFINITY : -4.0 + (k + 1) * 0.5;
		double p = 0.5 * (erfc(-hi / sqrt(2.0)) - erfc(-lo / sqrt(2.0)));
		chi2 += (bins[k] - n * p) * (bins[k] - n * p) / (n * p);
	}
	assert_true(chi2 < 50.0);
	/* It adds sd times the samples; the same seed gives the same noise. */
	{
		float a[5] = {1, 1, 1, 1, 1}, b2[5] = {0};
		rng_seed(&r, 9);
		dp_gauss_add(a, 5, 3.0, buf, 64, rng_fill, &r);
		rng_seed(&r, 9);
		dp_gauss_add(b2, 5, 1.0, buf, 64, rng_fill, &r);
		for (int i = 0; i < 5; i++)
			assert_true(fabsf(a[i] - (1.0f + 3.0f * b2[i])) < 1e-5f);
	}
	free(z);
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

/*
 * One DP-SGD step with q = 1 and no noise, by hand on ref: each row's own
 * gradient, clipped to clip, averaged over the rows, one SGD step of lr.
 * Returns the parameters after it (free them); norms (rows) gets each
 * row's gradient norm before clipping.
 */
static float *clipped_step_by_hand(struct train *ref, const struct dataset *ds, double clip,
                                   float lr, double *norms)
{
	size_t np = ref->model->n_params;
	float *want = calloc(np, sizeof(float));

	assert_non_null(want);
	for (uint32_t i = 0; i < ds->rows; i++) {
		double norm = 0;
		dataset_batch(ds, &i, 1, ref->x, ref->y);
		(void)model_forward(ref->model, ref->x, 1);
		(void)model_backward(ref->model, ref->y, NULL);
		for (size_t j = 0; j < np; j++)
			norm += (double)ref->model->grads[j] * ref->model->grads[j];
		norm = sqrt(norm);
		norms[i] = norm;
		for (size_t j = 0; j < np; j++)
			want[j] += (float)(norm > clip ? clip / norm : 1.0) * ref->model->grads[j] /
			           (float)ds->rows;
	}
	for (size_t j = 0; j < np; j++)
		want[j] = ref->model->params[j] - lr * want[j];
	return want;
}

static void test_clip_per_example(void **state)
{
	struct dataset *ds = tiny_data(8);
	struct train *t = tiny_train(8); /* q = 1: every row, every step */
	struct train *ref = tiny_train(8);
	struct rng r;
	struct train_dp dp = {.clip = 0.5, .sigma = 0.0, .random = rng_fill, .random_arg = &r};
	size_t np = t->model->n_params;
	double norms[8];
	float *want;
	(void)state;

	rng_seed(&r, 1);
	assert_int_equal(train_set_dp(t, &dp), 0);
	/* By hand: each row's gradient, clipped to 0.5, averaged over 8 rows. */
	want = clipped_step_by_hand(ref, ds, 0.5, 0.1f, norms);
	assert_true(norms[0] > 10 * 0.5); /* the huge row is clipped */
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

/* The batched clipped sum of an MLP equals clipping each row's own gradient. */
static void test_clip_batched_mlp(void **state)
{
	struct model_spec spec;
	struct model *m, *one;
	struct rng r;
	const uint32_t B = 9, D = 12;
	float x[9 * 12];
	uint8_t y[9];
	double norms[9];
	float *want;
	(void)state;

	memset(&spec, 0, sizeof(spec));
	spec.type = MODEL_MLP;
	spec.channels = spec.height = 1;
	spec.width = D;
	spec.classes = 3;
	spec.n_hidden = 2;
	spec.hidden[0] = 7;
	spec.hidden[1] = 5;
	assert_int_equal(model_alloc(&m, &spec, B), 0);
	assert_int_equal(model_alloc(&one, &spec, 1), 0);
	assert_true(model_clips_per_row(m));
	assert_int_equal(model_clip_scratch(m), 0);
	model_init(m, 4);
	memcpy(one->params, m->params, m->n_params * sizeof(float));
	rng_seed(&r, 3);
	for (uint32_t i = 0; i < B * D; i++)
		x[i] = (float)(rng_uniform_f(&r) * 4.0 - 2.0) * (i < D ? 50.0f : 1.0f);
	for (uint32_t i = 0; i < B; i++)
		y[i] = (uint8_t)(i % 3);
	want = calloc(m->n_params, sizeof(float));
	for (uint32_t i = 0; i < B; i++) {
		double norm = 0;
		(void)model_forward(one, x + i * D, 1);
		(void)model_backward(one, y + i, NULL);
		for (size_t j = 0; j < one->n_params; j++)
			norm += (double)one->grads[j] * one->grads[j];
		norm = sqrt(norm);
		(void)model_forward(m, x, B);
		for (size_t j = 0; j < one->n_params; j++)
			want[j] += (float)(norm > 0.3 ? 0.3 / norm : 1.0) * one->grads[j];
		(void)model_backward_clipped(m, y, 0.3, NULL, norms);
		assert_true(fabs(norms[i] - norm) < 1e-4 * (1.0 + norm));
		if (i == 0)
			assert_true(norm > 0.3);
	}
	(void)model_forward(m, x, B);
	(void)model_backward_clipped(m, y, 0.3, NULL, NULL);
	for (size_t j = 0; j < m->n_params; j++)
		assert_true(fabsf(m->grads[j] - want[j]) < 1e-5f);
	free(want);
	model_free(m);
	model_free(one);
}

/* The CNN clips each row's own gradient, one pass per row: the step equals doing it by hand. */
static void test_clip_cnn_per_row(void **state)
{
	struct model_spec spec;
	struct optim_params op;
	struct dataset *ds;
	struct train *t, *ref;
	struct rng r;
	struct train_dp dp = {.clip = 0.05, .sigma = 0.0, .random = rng_fill, .random_arg = &r};
	const uint32_t rows = 5, side = 16, d = 2 * 16 * 16;
	double norms[5];
	size_t np;
	float *want;
	(void)state;

	memset(&spec, 0, sizeof(spec));
	spec.type = MODEL_CNN;
	spec.channels = 2;
	spec.height = spec.width = side;
	spec.classes = 3;
	spec.conv[0] = 3;
	spec.conv[1] = 4;
	optim_params_default(&op, OPTIM_SGD);
	op.lr = 0.1f;
	op.momentum = 0.0f;
	assert_int_equal(dataset_alloc(&ds, rows, d, 3, DATASET_F32), 0);
	ds->channels = 2;
	ds->height = ds->width = side;
	rng_seed(&r, 11);
	for (uint32_t i = 0; i < rows * d; i++)
		ds->x_f32[i] = (float)(rng_uniform_f(&r) * 2.0 - 1.0);
	for (uint32_t i = 0; i < rows; i++)
		ds->labels[i] = (uint8_t)(i % 3);
	assert_int_equal(train_alloc(&t, &spec, 3, &op, rows, 5), 0); /* q = 1 */
	assert_int_equal(train_alloc(&ref, &spec, 3, &op, rows, 5), 0);
	assert_false(model_clips_per_row(t->model));
	np = t->model->n_params;
	want = clipped_step_by_hand(ref, ds, 0.05, 0.1f, norms);
	for (uint32_t i = 0; i < rows; i++)
		assert_true(norms[i] > 0.05); /* every row is clipped */
	rng_seed(&r, 1);
	assert_int_equal(train_set_dp(t, &dp), 0);
	assert_int_equal(train_steps(t, ds, 1, NULL), 0);
	for (size_t j = 0; j < np; j++)
		assert_true(fabsf(t->model->params[j] - want[j]) < 1e-6f);
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
	        cmocka_unit_test(test_clip_per_example), cmocka_unit_test(test_clip_batched_mlp),
	        cmocka_unit_test(test_clip_cnn_per_row), cmocka_unit_test(test_noise_scale),
	        cmocka_unit_test(test_poisson_rate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
