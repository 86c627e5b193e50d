/*
 * protocol_lowrank_test.c: low-rank group averaging (protocol/lowrank.h).
 * The orthonormalisation is orthonormal, bit-for-bit repeatable and copes
 * with dependent columns; projection, lift and sketch match known answers;
 * a lift keeps the group's weighted mean exactly where it was and leaves
 * every member with the same projection; projected vectors encoded by the
 * ring codec and masked sum to exactly the unmasked ring sum; and the point
 * of the power step: on a planted low-rank disagreement one masked power
 * step from a random start removes nearly all of it, where a random
 * subspace of the same rank removes about r/n.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/codec.h"
#include "protocol/lowrank.h"
#include "util/rng.h"

static float *randn(struct rng *g, size_t n, double scale)
{
	float *a = malloc(n * sizeof(*a));

	assert_non_null(a);
	for (size_t i = 0; i < n; i++)
		a[i] = (float)(scale * rng_normal(g));
	return a;
}

static void assert_orthonormal(const float *q, uint32_t n, uint32_t r, double tol)
{
	for (uint32_t i = 0; i < r; i++) {
		for (uint32_t j = 0; j < r; j++) {
			double d = 0;
			for (uint32_t k = 0; k < n; k++)
				d += (double)q[(size_t)k * r + i] * q[(size_t)k * r + j];
			assert_true(fabs(d - (i == j)) < tol);
		}
	}
}

static void test_orth_orthonormal_repeatable(void **state)
{
	struct rng g;
	uint32_t n = 784, r = 8;
	float *a, *b, *c;

	(void)state;
	rng_seed(&g, 1);
	a = randn(&g, (size_t)n * r, 1.0);
	b = malloc((size_t)n * r * sizeof(*b));
	c = malloc((size_t)n * r * sizeof(*c));
	assert_non_null(b);
	assert_non_null(c);
	memcpy(b, a, (size_t)n * r * sizeof(*a));
	assert_int_equal(lowrank_orth(a, n, r), 0);
	assert_int_equal(lowrank_orth(b, n, r), 0);
	assert_memory_equal(a, b, (size_t)n * r * sizeof(*a));
	assert_orthonormal(a, n, r, 1e-6);
	/* An orthonormal input stays (nearly) where it is. */
	memcpy(c, a, (size_t)n * r * sizeof(*a));
	assert_int_equal(lowrank_orth(c, n, r), 0);
	for (size_t i = 0; i < (size_t)n * r; i++)
		assert_true(fabsf(c[i] - a[i]) < 1e-6f);
	/* The public random basis: same seed, same bits; another seed differs. */
	assert_int_equal(lowrank_random_q(a, n, r, 42), 0);
	assert_int_equal(lowrank_random_q(b, n, r, 42), 0);
	assert_int_equal(lowrank_random_q(c, n, r, 43), 0);
	assert_memory_equal(a, b, (size_t)n * r * sizeof(*a));
	assert_memory_not_equal(a, c, (size_t)n * r * sizeof(*a));
	assert_orthonormal(a, n, r, 1e-6);
	free(a);
	free(b);
	free(c);
}

static void test_orth_dependent_and_invalid(void **state)
{
	/* 5 x 3: column 1 repeats column 0, column 2 is zero. */
	float q[15] = {1, 1, 0, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	float keep[15];

	(void)state;
	assert_int_equal(lowrank_orth(q, 5, 3), 2);
	assert_orthonormal(q, 5, 3, 1e-6);
	memcpy(keep, q, sizeof(q));
	assert_int_equal(lowrank_orth(q, 5, 0), -EINVAL);
	assert_int_equal(lowrank_orth(q, 2, 3), -EINVAL);
	assert_int_equal(lowrank_random_q(q, 5, LOWRANK_MAX_RANK + 1, 1), -EINVAL);
	q[4] = NAN;
	assert_int_equal(lowrank_orth(q, 5, 3), -EINVAL);
	q[4] = keep[4];
	assert_memory_equal(q, keep, sizeof(q));
}

static void test_known_answers(void **state)
{
	/* W = [[1 2 3], [4 5 6]], Q = [e1 e3] (3 x 2). */
	const float w[6] = {1, 2, 3, 4, 5, 6};
	const float q[6] = {1, 0, 0, 0, 0, 1};
	const float dy[4] = {10, 20, 30, 40};
	float y[4], s[6], w2[6];
	const float y_want[4] = {1, 3, 4, 6};
	/* W^T dy: [[1*10+4*30, 1*20+4*40], [2*10+5*30, ..], [3*10+6*30, ..]] */
	const float s_want[6] = {130, 180, 170, 240, 210, 300};
	const float w_want[6] = {11, 2, 23, 34, 5, 46};

	(void)state;
	lowrank_project(y, w, q, 2, 3, 2);
	assert_memory_equal(y, y_want, sizeof(y));
	lowrank_sketch(s, w, dy, 2, 3, 2);
	assert_memory_equal(s, s_want, sizeof(s));
	memcpy(w2, w, sizeof(w));
	lowrank_lift(w2, dy, q, 2, 3, 2);
	assert_memory_equal(w2, w_want, sizeof(w2));
}

enum { M = 16, N = 40, R = 3, K = 4 };

static void test_lift_keeps_mean_and_agrees(void **state)
{
	struct rng g;
	float *w[K], y[K][M * R], mean_y[M * R], q[N * R];
	const double rho[K] = {0.5, 1.0, 1.5, 1.0};
	double mean_before[M * N], rs = 0;

	(void)state;
	rng_seed(&g, 2);
	for (int i = 0; i < K; i++) {
		w[i] = randn(&g, M * N, 1.0);
		rs += rho[i];
	}
	for (int c = 0; c < M * N; c++) {
		mean_before[c] = 0;
		for (int i = 0; i < K; i++)
			mean_before[c] += rho[i] * w[i][c] / rs;
	}
	assert_int_equal(lowrank_random_q(q, N, R, 7), 0);
	memset(mean_y, 0, sizeof(mean_y));
	for (int i = 0; i < K; i++) {
		lowrank_project(y[i], w[i], q, M, N, R);
		for (int c = 0; c < M * R; c++)
			mean_y[c] += (float)(rho[i] * y[i][c] / rs);
	}
	for (int i = 0; i < K; i++) {
		float dy[M * R], after[M * R];
		for (int c = 0; c < M * R; c++)
			dy[c] = mean_y[c] - y[i][c];
		lowrank_lift(w[i], dy, q, M, N, R);
		lowrank_project(after, w[i], q, M, N, R);
		for (int c = 0; c < M * R; c++)
			assert_true(fabsf(after[c] - mean_y[c]) < 1e-5f);
	}
	for (int c = 0; c < M * N; c++) {
		double m = 0;
		for (int i = 0; i < K; i++)
			m += rho[i] * w[i][c] / rs;
		assert_true(fabs(m - mean_before[c]) < 1e-5);
	}
	for (int i = 0; i < K; i++)
		free(w[i]);
}

static void test_masked_projection_sums_exactly(void **state)
{
	struct codec_params p;
	struct rng g, dither;
	uint32_t len = M * R, ring[K][M * R], plain[M * R], masked[M * R], mask[K][M * R];
	float q[N * R], y[K][M * R], clip = 64.0f, avg[M * R];
	double want;

	(void)state;
	rng_seed(&g, 3);
	rng_seed(&dither, 4);
	assert_int_equal(lowrank_random_q(q, N, R, 9), 0);
	assert_int_equal(codec_params_init(&p, K, &len, &clip, 1, 12), 0);
	memset(plain, 0, sizeof(plain));
	memset(masked, 0, sizeof(masked));
	memset(mask[K - 1], 0, sizeof(mask[K - 1]));
	for (int i = 0; i < K; i++) {
		float *w = randn(&g, M * N, 1.0);
		lowrank_project(y[i], w, q, M, N, R);
		free(w);
		assert_int_equal(codec_encode(ring[i], &p, y[i], 1.0f, &dither, NULL, NULL), 0);
		/* Masks that cancel in the ring: the last is minus the others' sum. */
		for (uint32_t c = 0; c < len; c++) {
			uint32_t wmask = (uint32_t)((1ull << p.seg[0].width) - 1);
			if (i < K - 1) {
				mask[i][c] = (uint32_t)rng_next(&g) & wmask;
				mask[K - 1][c] = (mask[K - 1][c] - mask[i][c]) & wmask;
			}
		}
	}
	for (int i = 0; i < K; i++) {
		uint32_t v[M * R];
		memcpy(v, ring[i], sizeof(v));
		codec_ring_add(v, mask[i], &p);
		codec_ring_add(masked, v, &p);
		codec_ring_add(plain, ring[i], &p);
	}
	assert_memory_equal(masked, plain, sizeof(plain));
	assert_int_equal(codec_decode_sum(avg, NULL, &p, masked, K, NULL, NULL), 0);
	for (uint32_t c = 0; c < len; c++) {
		want = 0;
		for (int i = 0; i < K; i++)
			want += y[i][c] / K;
		assert_true(fabs(avg[c] - want) <= p.seg[0].quantum);
	}
}

/* Sum over members of |W_i - mean W|^2. */
static double disagreement(float *const *w, int k, size_t n)
{
	double d = 0;

	for (size_t c = 0; c < n; c++) {
		double m = 0;
		for (int i = 0; i < k; i++)
			m += w[i][c] / (double)k;
		for (int i = 0; i < k; i++)
			d += (w[i][c] - m) * (w[i][c] - m);
	}
	return d;
}

/* One projection step of a group of K (equal weights) on q. */
static void group_step(float *const *w, const float *q, uint32_t m, uint32_t n, uint32_t r)
{
	float *y = calloc((size_t)K * m * r, sizeof(float)), *mean = calloc((size_t)m * r, 4);

	assert_non_null(y);
	assert_non_null(mean);
	for (int i = 0; i < K; i++) {
		lowrank_project(y + (size_t)i * m * r, w[i], q, m, n, r);
		for (size_t c = 0; c < (size_t)m * r; c++)
			mean[c] += y[(size_t)i * m * r + c] / (float)K;
	}
	for (int i = 0; i < K; i++) {
		for (size_t c = 0; c < (size_t)m * r; c++)
			y[(size_t)i * m * r + c] = mean[c] - y[(size_t)i * m * r + c];
		lowrank_lift(w[i], y + (size_t)i * m * r, q, m, n, r);
	}
	free(y);
	free(mean);
}

static void test_power_step_finds_disagreement(void **state)
{
	enum { PM = 32, PN = 200, PR = 4 };
	struct rng g;
	float *w[K], *v[K], *base, *u, *vt, q[PN * PR], y0[K][PM * PR], mean0[PM * PR], s[PN * PR];
	double d0, dpow, drand;

	(void)state;
	rng_seed(&g, 5);
	base = randn(&g, PM * PN, 1.0);
	vt = randn(&g, 2 * PN, 1.0); /* the disagreement lives in 2 directions */
	for (int i = 0; i < K; i++) {
		u = randn(&g, PM * 2, 1.0);
		w[i] = randn(&g, PM * PN, 0.001);
		for (int a = 0; a < PM; a++)
			for (int b = 0; b < PN; b++)
				w[i][a * PN + b] += base[a * PN + b] + u[a * 2] * vt[b] +
				                    u[a * 2 + 1] * vt[PN + b];
		v[i] = malloc(PM * PN * sizeof(float));
		assert_non_null(v[i]);
		memcpy(v[i], w[i], PM * PN * sizeof(float));
		free(u);
	}
	d0 = disagreement(w, K, PM * PN);
	/* The power step: sum W Q0, then sum W^T (W Q0 - mean), Q = orth(that). */
	assert_int_equal(lowrank_random_q(q, PN, PR, 11), 0);
	memset(mean0, 0, sizeof(mean0));
	for (int i = 0; i < K; i++) {
		lowrank_project(y0[i], w[i], q, PM, PN, PR);
		for (int c = 0; c < PM * PR; c++)
			mean0[c] += y0[i][c] / K;
	}
	memset(q, 0, sizeof(q));
	for (int i = 0; i < K; i++) {
		float si[PN * PR];
		for (int c = 0; c < PM * PR; c++)
			y0[i][c] -= mean0[c];
		lowrank_sketch(si, w[i], y0[i], PM, PN, PR);
		for (int c = 0; c < PN * PR; c++)
			q[c] += si[c];
	}
	assert_true(lowrank_orth(q, PN, PR) >= 0);
	group_step(w, q, PM, PN, PR);
	dpow = disagreement(w, K, PM * PN) / d0;
	/* A random subspace of the same rank. */
	assert_int_equal(lowrank_random_q(s, PN, PR, 12), 0);
	group_step(v, s, PM, PN, PR);
	drand = disagreement(v, K, PM * PN) / d0;
	print_message("disagreement left: power step %.4f, random subspace %.4f (r/n = %.3f)\n",
	              dpow, drand, (double)PR / PN);
	assert_true(dpow < 0.01);
	assert_true(drand > 0.9);
	for (int i = 0; i < K; i++) {
		free(w[i]);
		free(v[i]);
	}
	free(base);
	free(vt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_orth_orthonormal_repeatable),
	        cmocka_unit_test(test_orth_dependent_and_invalid),
	        cmocka_unit_test(test_known_answers),
	        cmocka_unit_test(test_lift_keeps_mean_and_agrees),
	        cmocka_unit_test(test_masked_projection_sums_exactly),
	        cmocka_unit_test(test_power_step_finds_disagreement),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
