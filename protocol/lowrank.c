/*
 * lowrank.c: projections, lifts, sketches and a deterministic
 * orthonormalisation for low-rank group averaging (see lowrank.h).
 */
#include "protocol/lowrank.h"

#include "util/rng.h"

#include <cblas.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>

/*
 * Columns whose norm falls below this fraction of what they had before
 * orthogonalisation are taken as dependent (double precision leaves about
 * 1e-16 of a dependent column).
 */
#define DEPENDENT 1e-10

/* Columns are kept contiguous here (a[j * n + k]): column-major, in double. */
/* Four partial sums in a fixed order: as deterministic as one, four times as fast. */
static double col_dot(const double *a, const double *b, uint32_t n)
{
	double s[4] = {0, 0, 0, 0};
	uint32_t k = 0;

	for (; k + 4 <= n; k += 4) {
		s[0] += a[k] * b[k];
		s[1] += a[k + 1] * b[k + 1];
		s[2] += a[k + 2] * b[k + 2];
		s[3] += a[k + 3] * b[k + 3];
	}
	for (; k < n; k++)
		s[0] += a[k] * b[k];
	return (s[0] + s[1]) + (s[2] + s[3]);
}

/* Removes from column j its components along columns 0..j-1 (orthonormal). */
static void col_project_out(double *a, uint32_t j, uint32_t n)
{
	double *cj = a + (size_t)j * n;

	for (uint32_t i = 0; i < j; i++) {
		const double *ci = a + (size_t)i * n;
		double d = col_dot(ci, cj, n);
		for (uint32_t k = 0; k < n; k++)
			cj[k] -= d * ci[k];
	}
}

/* Orthogonalises column j against the earlier ones, twice; 1 if it is then too small. */
static int col_orth(double *a, uint32_t j, uint32_t n)
{
	double *cj = a + (size_t)j * n;
	double before = sqrt(col_dot(cj, cj, n)), after;

	col_project_out(a, j, n);
	col_project_out(a, j, n);
	after = sqrt(col_dot(cj, cj, n));
	if (!(after > DEPENDENT * before) || !(after > 0))
		return 1;
	for (uint32_t k = 0; k < n; k++)
		cj[k] /= after;
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
	for (uint32_t k = 0; k < n; k++)
		for (uint32_t j = 0; j < r; j++)
			a[(size_t)j * n + k] = q[(size_t)k * r + j];
	for (uint32_t j = 0; j < r; j++) {
		double *cj = a + (size_t)j * n;
		if (col_orth(a, j, n) == 0)
			continue;
		replaced++;
		/* r <= n unit vectors cannot all lie in a span of j < r columns. */
		for (;;) {
			for (uint32_t k = 0; k < n; k++)
				cj[k] = k == next_unit;
			next_unit++;
			if (col_orth(a, j, n) == 0)
				break;
		}
	}
	for (uint32_t k = 0; k < n; k++)
		for (uint32_t j = 0; j < r; j++)
			q[(size_t)k * r + j] = (float)a[(size_t)j * n + k];
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

/*
 * Projection, lift and sketch go through BLAS (sgemm): each member applies
 * them to its own model, so they need not give the same bits everywhere
 * (the ring sum is exact whatever the inputs are); only the basis does.
 */
void lowrank_project(float *y, const float *w, const float *q, uint32_t m, uint32_t n, uint32_t r)
{
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)r, (int)n, 1.0f, w,
	            (int)n, q, (int)r, 0.0f, y, (int)r);
}

void lowrank_lift(float *w, const float *dy, const float *q, uint32_t m, uint32_t n, uint32_t r)
{
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)r, 1.0f, dy,
	            (int)r, q, (int)r, 1.0f, w, (int)n);
}

void lowrank_sketch(float *s, const float *w, const float *dy, uint32_t m, uint32_t n, uint32_t r)
{
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)r, (int)m, 1.0f, w,
	            (int)n, dy, (int)r, 0.0f, s, (int)r);
}
