/*
 * rng.h: a small, explicit-state pseudo-random generator (xoshiro256**,
 * Blackman and Vigna 2018, seeded through splitmix64) for initialisation,
 * data order, partitioning (learn/) and stochastic rounding (protocol/codec).
 * Every stream is an instance: no hidden global state; the same seed gives
 * the same numbers on every machine. rng_next is inline: the codec draws one
 * number per parameter.
 *
 * Not cryptographic: never use it for keys, masks or nonces (crypto/ does).
 */
#ifndef SOTTO_UTIL_RNG_H
#define SOTTO_UTIL_RNG_H

#include <stddef.h>
#include <stdint.h>

struct rng {
	uint64_t s[4];
};

/* Seeds the stream; any seed (0 included) is valid. */
void rng_seed(struct rng *r, uint64_t seed);
/* Derives an independent stream from (seed, a, b), e.g. (seed, epoch, 0). */
void rng_seed3(struct rng *r, uint64_t seed, uint64_t a, uint64_t b);
/* splitmix64 (Steele, Lea and Flood 2014): steps *x and returns a mixed word. */
static inline uint64_t rng_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t rng_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rng_rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rng_rotl(s[3], 45);
	return result;
}

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
/*
 * Fills buf with len bytes of the stream. Its signature is learn/train.h's
 * DP random source, so a seeded stream can stand in for the OS's CSPRNG in
 * the simulator and tests (never in a node).
 */
void rng_fill(void *r, void *buf, size_t len);

#endif
