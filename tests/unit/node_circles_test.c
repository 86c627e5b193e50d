/*
 * node_circles_test.c: the partial views of `sotto init --degree` and the
 * simulator (node/circles.c), checked by code of their own: every site in
 * CIRCLES_PER_SITE distinct circles, never twice in one, circle sizes within
 * one of each other and at least D / CIRCLES_PER_SITE + 1, peers = the other members
 * of one's circles (symmetric, no self, no repeat, at most D), circles_shared
 * consistent with membership, the sites connected, the same circles from
 * the same seed; and the refused arguments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "node/circles.h"

static bool member(const struct circles *c, uint32_t k, uint32_t s)
{
	for (uint32_t i = c->start[k]; i < c->start[k + 1]; i++) {
		if (c->members[i] == s)
			return true;
	}
	return false;
}

static uint32_t find(uint32_t *up, uint32_t i)
{
	while (up[i] != i)
		i = up[i] = up[up[i]];
	return i;
}

static void check(uint32_t n, uint32_t d, uint64_t seed)
{
	struct circles c, again;
	uint32_t *peer = calloc(n, sizeof(*peer)), *up = calloc(n, sizeof(*up)), classes = n;
	uint32_t size = d / CIRCLES_PER_SITE + 1;

	assert_non_null(peer);
	assert_non_null(up);
	assert_int_equal(circles_make(&c, n, d, seed), 0);
	assert_int_equal(c.n, n);
	assert_true(c.n_circles > 0);
	for (uint32_t k = 0; k < c.n_circles; k++) {
		uint32_t len = c.start[k + 1] - c.start[k];
		if (len < size || len >= 2 * size)
			fail_msg("n %u d %u: a circle of %u, not %u to %u", n, d, len, size,
			         2 * size - 1);
		if (k > 0)
			assert_true(len + 1 >= c.start[k] - c.start[k - 1] &&
			            len <= c.start[k] - c.start[k - 1] + 1);
		assert_true(len >= 2);
		for (uint32_t i = c.start[k]; i < c.start[k + 1]; i++) {
			assert_true(c.members[i] < n);
			for (uint32_t j = c.start[k]; j < i; j++)
				assert_int_not_equal(c.members[i], c.members[j]);
		}
	}
	assert_int_equal(c.start[c.n_circles], n * CIRCLES_PER_SITE);
	for (uint32_t s = 0; s < n; s++) {
		uint32_t np;

		up[s] = s;
		for (uint32_t j = 0; j < CIRCLES_PER_SITE; j++) {
			assert_true(c.of[s * CIRCLES_PER_SITE + j] < c.n_circles);
			assert_true(member(&c, c.of[s * CIRCLES_PER_SITE + j], s));
			if (j > 0)
				assert_int_not_equal(c.of[s * CIRCLES_PER_SITE + j],
				                     c.of[s * CIRCLES_PER_SITE + j - 1]);
		}
		np = circles_peers(&c, s, peer);
		assert_true(np >= 1 && np <= CIRCLES_PER_SITE * (2 * size - 2));
		for (uint32_t i = 0; i < np; i++) {
			uint32_t bits = circles_shared(&c, s, peer[i]);
			assert_int_not_equal(peer[i], s);
			for (uint32_t j = 0; j < i; j++)
				assert_int_not_equal(peer[i], peer[j]);
			assert_int_not_equal(bits, 0);
			for (uint32_t j = 0; j < CIRCLES_PER_SITE; j++)
				assert_int_equal(
				        (bits >> j) & 1u,
				        member(&c, c.of[s * CIRCLES_PER_SITE + j], peer[i]));
			/* symmetric: the peer shares a circle with s too */
			assert_int_not_equal(circles_shared(&c, peer[i], s), 0);
		}
	}
	for (uint32_t k = 0; k < c.n_circles; k++) {
		for (uint32_t i = c.start[k] + 1; i < c.start[k + 1]; i++) {
			uint32_t a = find(up, c.members[i]), b = find(up, c.members[c.start[k]]);
			if (a != b) {
				up[a] = b;
				classes--;
			}
		}
	}
	assert_int_equal(classes, 1);
	assert_int_equal(circles_make(&again, n, d, seed), 0);
	assert_int_equal(again.n_circles, c.n_circles);
	assert_memory_equal(again.members, c.members, n * CIRCLES_PER_SITE * sizeof(uint32_t));
	circles_free(&again);
	circles_free(&c);
	free(peer);
	free(up);
}

static void test_small(void **state)
{
	(void)state;
	for (uint32_t n = 4; n <= 40; n++) {
		for (uint32_t d = 2; d < n - 1; d++) {
			for (uint64_t seed = 1; seed <= 3; seed++)
				check(n, d, seed);
		}
	}
}

static void test_large(void **state)
{
	(void)state;
	check(1000, 8, 7);
	check(1000, 16, 7);
	check(1000, 32, 7);
	check(10000, 8, 7);
	check(10000, 32, 9);
}

/* Another seed, other circles; degree 0 or >= n - 1 is everyone. */
static void test_seed_and_everyone(void **state)
{
	struct circles a, b;
	uint32_t peer[9];

	(void)state;
	assert_int_equal(circles_make(&a, 200, 8, 1), 0);
	assert_int_equal(circles_make(&b, 200, 8, 2), 0);
	assert_memory_not_equal(a.members, b.members, 400 * sizeof(uint32_t));
	circles_free(&a);
	circles_free(&b);
	for (uint32_t d = 0; d < 12; d += 9) {
		assert_int_equal(circles_make(&a, 10, d, 1), 0);
		assert_int_equal(a.n_circles, 0);
		assert_int_equal(circles_peers(&a, 3, peer), 9);
		assert_int_equal(circles_shared(&a, 3, 4), 0);
		circles_free(&a);
	}
}

static void test_refused(void **state)
{
	struct circles c;

	(void)state;
	assert_int_equal(circles_make(&c, 1, 4, 1), -EINVAL);
	assert_int_equal(circles_make(&c, 100, 1, 1), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_small),
	        cmocka_unit_test(test_large),
	        cmocka_unit_test(test_seed_and_everyone),
	        cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
