/*
 * rand.c: deterministic randombytes for the simulator (see rand.h).
 */
#include "sim/rand.h"

#include <sodium.h>
#include <string.h>

static struct rng sim_own;
static struct rng *cur = &sim_own;

static const char *impl_name(void)
{
	return "sotto-sim (deterministic, never for real keys)";
}

static uint32_t impl_random(void)
{
	return (uint32_t)(rng_next(cur) >> 32);
}

static void impl_buf(void *const buf, const size_t size)
{
	uint8_t *p = buf;
	size_t i = 0;

	while (i < size) {
		uint64_t w = rng_next(cur);
		size_t n = size - i < 8 ? size - i : 8;
		memcpy(p + i, &w, n);
		i += n;
	}
}

static struct randombytes_implementation impl = {
        .implementation_name = impl_name,
        .random = impl_random,
        .stir = NULL,
        .uniform = NULL,
        .buf = impl_buf,
        .close = NULL,
};

int sim_rand_install(void)
{
	return randombytes_set_implementation(&impl) == 0 ? 0 : -1;
}

void sim_rand_use(struct rng *r)
{
	cur = r != NULL ? r : &sim_own;
}

void sim_rand_seed(uint64_t seed)
{
	rng_seed(&sim_own, seed);
}
