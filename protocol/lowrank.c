/*
 * lowrank.c: projections, lifts, sketches and a deterministic
 * orthonormalisation for low-rank group averaging (see lowrank.h).
 */
#include "protocol/lowrank.h"

#include "util/rng.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

/*
 * Columns whose norm falls below this fraction of what they had before
 * orthogonalisation are taken as dependent (double precision leaves about
 * 1e-16 of a dependent column).
 */
#define DEPENDENT 1e-10

static double col_dot(const double *a, uint32_t i, uint32_t j, uint32_t n, uint32_t r)
{
	double s = 0;

	for (uint32_t k = 0; k < n; k++)
		s += a[(size_t)k * r + i] * a[(size_t)k * r + j];
	return s;
}

/* Removes from column j its components along columns 0..j-1 (orthonormal). */
static void col_project_out(double *a, uint32_t j, uint32_t n, uint32_t r)
{
	for (uint32_t i = 0; i < j; i++) {
		double d = col_dot(a, i, j, n, r);
		for (uint32_t k = 0; k < n; k++)
			a[(size_t)k * r + j] -= d * a[(size_t)k * r + i];
	}
}

/* Orthogonalises column j against the earlier ones, twice; 1 if it is then too small. */
static int col_orth(double *a, uint32_t j, uint32_t n, uint32_t r)
{
	double before = sqrt(col_dot(a, j, j, n, r)), after;

	col_project_out(a, j, n, r);
	col_project_out(a, j, n, r);
	after = sqrt(col_dot(a, j, j, n, r));
	if (!(after > DEPENDENT * before) || !(after > 0))
		return 1;
	for (uint32_t k = 0; k < n; k++)
		a[(size_t)k * r + j] /= after;
	return 0;
}

int lowrank_orth(float *q, uint32_t n, uint32_t r)
{
	double *a;
	uint32_t next_unit = 0;
	int replaced = 0;

	if (r == 0 || r > n || r > LOWRANK_MAX_RANK)
		return -EINVAL;
	for (size_t i = 0; i < (size_t)n * r; i++)
		if (!isfinite(q[i]))
			return -EINVAL;
	a = malloc((size_t)n * r * sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < (size_t)n * r; i++)
		a[i] = q[i];
	for (uint32_t j = 0; j < r; j++) {
		if (col_orth(a, j, n, r) == 0)
			continue;
		replaced++;
		/* r <= n unit vectors cannot all lie in a span of j < r columns. */
		for (;;) {
			for (uint32_t k = 0; k < n; k++)
				a[(size_t)k * r + j] = k == next_unit;
			next_unit++;
			if (col_orth(a, j, n, r) == 0)
				break;
		}
	}
	for (size_t i = 0; i < (size_t)n * r; i++)
		q[i] = (float)a[i];
	free(a);
	return replaced;
}

int lowrank_random_q(float *q, uint32_t n, uint32_t r, uint64_t seed)
{
	struct rng g;
	uint64_t bits = 0;
	int rc;

	if (r == 0 || r > n || r > LOWRANK_MAX_RANK)
		return -EINVAL;
	rng_seed(&g, seed);
	for (size_t i = 0; i < (size_t)n * r; i++) {
		if (i % 64 == 0)
			bits = rng_next(&g);
		q[i] = (bits >> (i % 64)) & 1 ? 1.0f : -1.0f;
	}
	rc = lowrank_orth(q, n, r);
	return rc < 0 ? rc : 0;
}

void lowrank_project(float *y, const float *w, const float *q, uint32_t m, uint32_t n,
                     uint32_t r)
{
	double acc[LOWRANK_MAX_RANK];

	for (uint32_t i = 0; i < m; i++) {
		const float *wi = w + (size_t)i * n;
		for (uint32_t j = 0; j < r; j++)
			acc[j] = 0;
		for (uint32_t k = 0; k < n; k++) {
			const float *qk = q + (size_t)k * r;
			for (uint32_t j = 0; j < r; j++)
				acc[j] += (double)wi[k] * qk[j];
		}
		for (uint32_t j = 0; j < r; j++)
			y[(size_t)i * r + j] = (float)acc[j];
	}
}

void lowrank_lift(float *w, const float *dy, const float *q, uint32_t m, uint32_t n, uint32_t r)
{
	for (uint32_t i = 0; i < m; i++) {
		const float *di = dy + (size_t)i * r;
		float *wi = w + (size_t)i * n;
		for (uint32_t k = 0; k < n; k++) {
			const float *qk = q + (size_t)k * r;
			double s = 0;
			for (uint32_t j = 0; j < r; j++)
				s += (double)di[j] * qk[j];
			wi[k] = (float)(wi[k] + s);
		}
	}
}

void lowrank_sketch(float *s, const float *w, const float *dy, uint32_t m, uint32_t n,
                    uint32_t r)
{
	for (uint32_t k = 0; k < n; k++) {
		double acc[LOWRANK_MAX_RANK];
		for (uint32_t j = 0; j < r; j++)
			acc[j] = 0;
		for (uint32_t i = 0; i < m; i++) {
			double wik = w[(size_t)i * n + k];
			const float *di = dy + (size_t)i * r;
			for (uint32_t j = 0; j < r; j++)
				acc[j] += wik * di[j];
		}
		for (uint32_t j = 0; j < r; j++)
			s[(size_t)k * r + j] = (float)acc[j];
	}
}
