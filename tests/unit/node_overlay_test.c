/*
 * node_overlay_test.c: the overlay of `sotto init --degree` (node/overlay.c).
 * Each graph is checked here by code of its own (not overlay_summarize):
 * peers in range, no self-link, no repeat, a lists b iff b lists a, the
 * degrees promised in overlay.h, connectivity by union-find, and the same
 * graph again from the same seed. Then overlay_summarize on graphs made by
 * hand with one defect each, and the refused arguments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "node/overlay.h"

static bool has_peer(const struct overlay *o, uint32_t a, uint32_t b)
{
	for (uint32_t k = o->start[a]; k < o->start[a + 1]; k++) {
		if (o->peer[k] == b)
			return true;
	}
	return false;
}

static uint32_t find(uint32_t *up, uint32_t i)
{
	while (up[i] != i) {
		up[i] = up[up[i]];
		i = up[i];
	}
	return i;
}

/* Union-find over every link: one class at the end. */
static void check_connected(const struct overlay *o)
{
	uint32_t *up = malloc((size_t)o->n * sizeof(*up)), classes = o->n;

	assert_non_null(up);
	for (uint32_t i = 0; i < o->n; i++)
		up[i] = i;
	for (uint32_t i = 0; i < o->n; i++) {
		for (uint32_t k = o->start[i]; k < o->start[i + 1]; k++) {
			uint32_t a = find(up, i), b = find(up, o->peer[k]);
			if (a != b) {
				up[a] = b;
				classes--;
			}
		}
	}
	assert_int_equal(classes, 1);
	free(up);
}

/* Simple and symmetric, with a bit per ordered pair (n <= 10000: 12.5 MB). */
static void check_simple(const struct overlay *o)
{
	size_t n = o->n;
	uint64_t *bit = calloc((n * n + 63) / 64, sizeof(*bit));

	assert_non_null(bit);
	assert_int_equal(o->start[0], 0);
	for (uint32_t i = 0; i < n; i++) {
		assert_true(o->start[i + 1] >= o->start[i]);
		for (uint32_t k = o->start[i]; k < o->start[i + 1]; k++) {
			size_t p = o->peer[k], at = i * n + p;
			assert_true(p < n);
			assert_int_not_equal(p, i);
			assert_false((bit[at / 64] >> (at % 64)) & 1); /* a repeat */
			bit[at / 64] |= 1ull << (at % 64);
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		for (uint32_t k = o->start[i]; k < o->start[i + 1]; k++) {
			size_t back = o->peer[k] * n + i;
			assert_true((bit[back / 64] >> (back % 64)) & 1);
		}
	}
	free(bit);
}

/* overlay.h: complete for d == 0 or d >= n - 1; else d, one site d + 1 if n d is odd. */
static void check_degrees(const struct overlay *o, uint32_t n, uint32_t d)
{
	uint32_t want = (d == 0 || d >= n - 1) ? n - 1 : d, above = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t deg = o->start[i + 1] - o->start[i];
		if (deg == want + 1)
			above++;
		else
			assert_int_equal(deg, want);
	}
	assert_int_equal(above, (uint64_t)n * want % 2);
}

static void check_summary(const struct overlay *o, uint32_t n, uint32_t d)
{
	struct overlay_summary s;
	uint32_t want = (d == 0 || d >= n - 1) ? n - 1 : d;

	assert_int_equal(overlay_summarize(&s, o), 0);
	assert_true(s.simple);
	assert_true(s.connected);
	assert_int_equal(s.min_degree, want);
	assert_int_equal(s.max_degree, want + (uint64_t)n * want % 2);
	assert_int_equal(s.links, ((uint64_t)n * want + 1) / 2);
}

/* Every property, and the same graph again from the same arguments. */
static void check_one(uint32_t n, uint32_t d, uint64_t seed)
{
	struct overlay *o, *again;

	assert_int_equal(overlay_alloc(&o, n, d, seed), 0);
	assert_int_equal(o->n, n);
	check_simple(o);
	check_degrees(o, n, d);
	check_connected(o);
	check_summary(o, n, d);
	assert_int_equal(overlay_alloc(&again, n, d, seed), 0);
	assert_memory_equal(again->start, o->start, ((size_t)n + 1) * sizeof(*o->start));
	assert_memory_equal(again->peer, o->peer, (size_t)o->start[n] * sizeof(*o->peer));
	overlay_free(again);
	overlay_free(o);
}

static void test_small_all_degrees(void **state)
{
	(void)state;
	for (uint32_t n = 3; n <= 50; n++) {
		for (uint32_t d = 0; d <= n + 1; d++) {
			if (d == 1)
				continue; /* refused: test_refused */
			for (uint64_t seed = 0; seed < 3; seed++)
				check_one(n, d, seed * 0x9e3779b97f4a7c15ull + n);
		}
	}
}

static void test_tiny(void **state)
{
	(void)state;
	check_one(1, 0, 1);
	check_one(1, 5, 1);
	check_one(2, 0, 1);
	check_one(2, 1, 1);
	check_one(2, 8, 1);
}

static void test_large(void **state)
{
	static const struct {
		uint32_t n, d;
	} cases[] = {{1000, 8},  {1000, 16},  {1000, 32},  {1001, 7},
	             {10000, 8}, {1000, 500}, {1001, 999}, {1001, 997}};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_one(cases[i].n, cases[i].d, 42 + i);
}

/* Common neighbours of linked sites, summed: sum over links of |N(a) & N(b)|. */
static uint64_t triangles3(const struct overlay *o)
{
	uint64_t t = 0;

	for (uint32_t a = 0; a < o->n; a++) {
		for (uint32_t k = o->start[a]; k < o->start[a + 1]; k++) {
			uint32_t b = o->peer[k];
			for (uint32_t j = o->start[b]; j < o->start[b + 1]; j++)
				t += has_peer(o, a, o->peer[j]);
		}
	}
	return t; /* each triangle six times */
}

/*
 * The swaps randomise: a random 8-regular graph on 1000 sites has about
 * 7^3 / 6 = 57 triangles, the circulant start (offsets 1..4) has 6000. And
 * another seed gives another graph.
 */
static void test_random(void **state)
{
	struct overlay *o, *other;

	(void)state;
	assert_int_equal(overlay_alloc(&o, 1000, 8, 1), 0);
	assert_true(triangles3(o) / 6 < 200);
	assert_int_equal(overlay_alloc(&other, 1000, 8, 2), 0);
	assert_memory_not_equal(o->peer, other->peer, (size_t)o->start[1000] * sizeof(*o->peer));
	overlay_free(other);
	overlay_free(o);
	assert_int_equal(overlay_alloc(&o, 12, 4, 1), 0);
	assert_int_equal(overlay_alloc(&other, 12, 4, 2), 0);
	assert_memory_not_equal(o->peer, other->peer, (size_t)o->start[12] * sizeof(*o->peer));
	overlay_free(other);
	overlay_free(o);
}

static void test_refused(void **state)
{
	struct overlay *o = (struct overlay *)&o;

	(void)state;
	assert_int_equal(overlay_alloc(&o, 0, 0, 1), -EINVAL);
	assert_null(o);
	assert_int_equal(overlay_alloc(&o, OVERLAY_MAX_SITES + 1, 8, 1), -EINVAL);
	assert_int_equal(overlay_alloc(&o, 3, 1, 1), -EINVAL);
	assert_int_equal(overlay_alloc(&o, 100, 1, 1), -EINVAL);
	assert_null(o);
	overlay_free(NULL);
}

/* overlay_summarize must see each defect (peer lists: start[] and peer[]). */
static void summary_of(struct overlay_summary *s, uint32_t n, const uint32_t *start,
                       const uint32_t *peer)
{
	struct overlay o = {.n = n, .start = (uint32_t *)start, .peer = (uint32_t *)peer};

	assert_int_equal(overlay_summarize(s, &o), 0);
}

static void test_summary_defects(void **state)
{
	/* Two triangles: simple and regular, not connected. */
	static const uint32_t two_start[] = {0, 2, 4, 6, 8, 10, 12};
	static const uint32_t two_peer[] = {1, 2, 0, 2, 0, 1, 4, 5, 3, 5, 3, 4};
	/* A square, then each with one defect in site 0's list or site 1's. */
	static const uint32_t sq_start[] = {0, 2, 4, 6, 8};
	static const uint32_t sq_peer[] = {1, 3, 0, 2, 1, 3, 0, 2};
	static const uint32_t one_way[] = {1, 2, 0, 2, 1, 3, 0, 2}; /* 0 lists 2, 2 not 0 */
	static const uint32_t self[] = {0, 3, 0, 2, 1, 3, 0, 2};    /* 0 lists itself */
	static const uint32_t twice[] = {1, 1, 0, 2, 1, 3, 0, 2};   /* 0 lists 1 twice */
	static const uint32_t range[] = {1, 3, 0, 9, 1, 3, 0, 2};   /* 1 lists site 9 */
	struct overlay_summary s;

	(void)state;
	summary_of(&s, 6, two_start, two_peer);
	assert_true(s.simple);
	assert_false(s.connected);
	assert_int_equal(s.links, 6);
	summary_of(&s, 4, sq_start, sq_peer);
	assert_true(s.simple);
	assert_true(s.connected);
	assert_int_equal(s.min_degree, 2);
	assert_int_equal(s.max_degree, 2);
	summary_of(&s, 4, sq_start, one_way);
	assert_false(s.simple);
	summary_of(&s, 4, sq_start, self);
	assert_false(s.simple);
	summary_of(&s, 4, sq_start, twice);
	assert_false(s.simple);
	summary_of(&s, 4, sq_start, range);
	assert_false(s.simple);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_small_all_degrees),
	        cmocka_unit_test(test_tiny),
	        cmocka_unit_test(test_large),
	        cmocka_unit_test(test_random),
	        cmocka_unit_test(test_refused),
	        cmocka_unit_test(test_summary_defects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
