/*
 * rng.c: xoshiro256** (Blackman and Vigna 2018) seeded by splitmix64.
 * Integer-only except the normal and gamma samplers, so initialisation
 * (uniform) is bit-identical on every node.
 */
#include "util/rng.h"

#include "util/util.h"

#include <math.h>
#include <string.h>

void rng_seed(struct rng *r, uint64_t seed)
{
	uint64_t x = seed;

	for (int i = 0; i < 4; i++)
		r->s[i] = rng_splitmix64(&x);
}

void rng_seed3(struct rng *r, uint64_t seed, uint64_t a, uint64_t b)
{
	uint64_t x = seed;
	uint64_t h = rng_splitmix64(&x);

	x = h ^ a;
	h = rng_splitmix64(&x);
	x = h ^ b;
	rng_seed(r, rng_splitmix64(&x));
}

uint32_t rng_below(struct rng *r, uint32_t n)
{
	/* Lemire's multiply-and-reject: unbiased without a division per draw. */
	uint64_t m;
	uint32_t lo;

	SOTTO_ASSERT(n > 0);
	m = (uint64_t)(uint32_t)(rng_next(r) >> 32) * n;
	lo = (uint32_t)m;
	if (lo < n) {
		uint32_t t = (uint32_t)(-n) % n;
		while (lo < t) {
			m = (uint64_t)(uint32_t)(rng_next(r) >> 32) * n;
			lo = (uint32_t)m;
		}
	}
	return (uint32_t)(m >> 32);
}

double rng_uniform(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

float rng_uniform_f(struct rng *r)
{
	return (float)(rng_next(r) >> 40) * 0x1.0p-24f;
}

double rng_normal(struct rng *r)
{
	double u1 = 1.0 - rng_uniform(r); /* (0, 1]: log() is finite */
	double u2 = rng_uniform(r);

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

double rng_gamma(struct rng *r, double shape)
{
	double d, c;

	SOTTO_ASSERT(shape > 0);
	if (shape < 1.0) {
		/* Gamma(a) = Gamma(a + 1) * U^(1/a) */
		double u = 1.0 - rng_uniform(r);
		return rng_gamma(r, shape + 1.0) * pow(u, 1.0 / shape);
	}
	d = shape - 1.0 / 3.0;
	c = 1.0 / sqrt(9.0 * d);
	for (;;) {
		double x, v, u;
		do {
			x = rng_normal(r);
			v = 1.0 + c * x;
		} while (v <= 0.0);
		v = v * v * v;
		u = 1.0 - rng_uniform(r);
		if (u < 1.0 - 0.0331 * x * x * x * x)
			return d * v;
		if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
			return d * v;
	}
}

void rng_shuffle_u32(struct rng *r, uint32_t *a, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = rng_below(r, (uint32_t)i);
		uint32_t t = a[i - 1];
		a[i - 1] = a[j];
		a[j] = t;
	}
}

void rng_fill(void *arg, void *buf, size_t len)
{
	struct rng *r = arg;
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = rng_next(r);
		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}
