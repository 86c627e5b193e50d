/*
 * rng.h: a small, explicit-state pseudo-random generator (xoshiro256**,
 * seeded through splitmix64) for initialisation, data order and
 * partitioning. Every stream is an instance: no hidden global state; the
 * same seed gives the same numbers on every machine.
 *
 * Not cryptographic: never use it for keys, masks or nonces (crypto/ does).
 */
#ifndef SOTTO_LEARN_RNG_H
#define SOTTO_LEARN_RNG_H

#include <stddef.h>
#include <stdint.h>

struct rng {
	uint64_t s[4];
};

/* Seeds the stream; any seed (0 included) is valid. */
void rng_seed(struct rng *r, uint64_t seed);
/* Derives an independent stream from (seed, a, b), e.g. (seed, epoch, 0). */
void rng_seed3(struct rng *r, uint64_t seed, uint64_t a, uint64_t b);
uint64_t rng_next(struct rng *r);
/* Uniform in [0, n), unbiased; n > 0. */
uint32_t rng_below(struct rng *r, uint32_t n);
/* Uniform in [0, 1) with 53 (double) or 24 (float) random bits. */
double rng_uniform(struct rng *r);
float rng_uniform_f(struct rng *r);
/* Standard normal (Box-Muller); uses libm. */
double rng_normal(struct rng *r);
/* Gamma(shape, 1), shape > 0 (Marsaglia and Tsang 2000); uses libm. */
double rng_gamma(struct rng *r, double shape);
/* Fisher-Yates shuffle of a[0..n). */
void rng_shuffle_u32(struct rng *r, uint32_t *a, size_t n);

#endif
