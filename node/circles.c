/*
 * circles.c: partial views built from circles (see circles.h).
 *
 * Every site takes CIRCLES_PER_SITE slots; the slots are shuffled and cut
 * into circles of D / CIRCLES_PER_SITE + 1. A site drawn twice into one
 * circle is swapped with a slot of another circle; the whole draw is
 * repeated until the sites are connected (union-find over the circles).
 */
#include "node/circles.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

#define ATTEMPTS 200

static uint32_t uf_find(uint32_t *up, uint32_t x)
{
	while (up[x] != x) {
		up[x] = up[up[x]];
		x = up[x];
	}
	return x;
}

static bool in_circle(const uint32_t *slot, uint32_t from, uint32_t to, uint32_t site,
                      uint32_t skip)
{
	for (uint32_t i = from; i < to; i++) {
		if (i != skip && slot[i] == site)
			return true;
	}
	return false;
}

/* Moves every second copy of a site in one circle elsewhere; false if stuck. */
static bool untangle(uint32_t *slot, const uint32_t *start, uint32_t n_circles, uint32_t slots,
                     struct rng *r)
{
	for (uint32_t c = 0; c < n_circles; c++) {
		for (uint32_t i = start[c]; i < start[c + 1]; i++) {
			uint32_t tries = 0;

			while (in_circle(slot, start[c], i, slot[i], i)) {
				uint32_t j = rng_below(r, slots), d = 0;

				while (!(start[d] <= j && j < start[d + 1]))
					d++;
				if (d != c &&
				    !in_circle(slot, start[c], start[c + 1], slot[j], i) &&
				    !in_circle(slot, start[d], start[d + 1], slot[i], j)) {
					uint32_t t = slot[i];
					slot[i] = slot[j];
					slot[j] = t;
				}
				if (++tries > 1000)
					return false;
			}
		}
	}
	return true;
}

static bool connected(const uint32_t *slot, const uint32_t *start, uint32_t n_circles, uint32_t n,
                      uint32_t *up)
{
	for (uint32_t s = 0; s < n; s++)
		up[s] = s;
	for (uint32_t c = 0; c < n_circles; c++) {
		for (uint32_t i = start[c] + 1; i < start[c + 1]; i++)
			up[uf_find(up, slot[i])] = uf_find(up, slot[start[c]]);
	}
	for (uint32_t s = 1; s < n; s++) {
		if (uf_find(up, s) != uf_find(up, 0))
			return false;
	}
	return true;
}

int circles_make(struct circles *c, uint32_t n, uint32_t degree, uint64_t seed)
{
	uint32_t m = CIRCLES_PER_SITE, slots, size, n_circles, *slot, *start, *up;
	struct rng r;
	int rc = -EAGAIN;

	memset(c, 0, sizeof(*c));
	c->n = n;
	if (n < 2)
		return -EINVAL;
	if (degree == 0 || degree >= n - 1)
		return 0;
	if (degree < m)
		return -EINVAL;
	slots = m * n;
	size = degree / m + 1;
	n_circles = slots / size; /* >= 4, as degree < n - 1; sizes >= size */
	slot = malloc(slots * sizeof(uint32_t));
	start = malloc((n_circles + 1) * sizeof(uint32_t));
	up = malloc(n * sizeof(uint32_t));
	c->of = malloc(slots * sizeof(uint32_t));
	if (slot == NULL || start == NULL || up == NULL || c->of == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	/* Sizes differ by at most one. */
	for (uint32_t k = 0; k <= n_circles; k++)
		start[k] = (uint32_t)((uint64_t)k * slots / n_circles);
	rng_seed3(&r, seed, 0xc12c1e5, n);
	for (uint32_t a = 0; a < ATTEMPTS && rc != 0; a++) {
		for (uint32_t i = 0; i < slots; i++)
			slot[i] = i / m;
		for (uint32_t i = slots - 1; i > 0; i--) {
			uint32_t j = rng_below(&r, i + 1), t = slot[i];
			slot[i] = slot[j];
			slot[j] = t;
		}
		if (untangle(slot, start, n_circles, slots, &r) &&
		    connected(slot, start, n_circles, n, up))
			rc = 0;
	}
	if (rc != 0)
		goto out;
	for (uint32_t s = 0; s < n; s++)
		up[s] = 0; /* circles filled per site */
	for (uint32_t k = 0; k < n_circles; k++) {
		for (uint32_t i = start[k]; i < start[k + 1]; i++)
			c->of[slot[i] * m + up[slot[i]]++] = k;
	}
	c->n_circles = n_circles;
	c->start = start;
	c->members = slot;
	start = slot = NULL;
out:
	free(slot);
	free(start);
	free(up);
	if (rc != 0) {
		free(c->of);
		c->of = NULL;
	}
	return rc;
}

uint32_t circles_peers(const struct circles *c, uint32_t s, uint32_t *peers)
{
	uint32_t np = 0;

	if (c->n_circles == 0) {
		for (uint32_t p = 0; p < c->n; p++) {
			if (p != s)
				peers[np++] = p;
		}
		return np;
	}
	for (uint32_t j = 0; j < CIRCLES_PER_SITE; j++) {
		uint32_t k = c->of[s * CIRCLES_PER_SITE + j];

		for (uint32_t i = c->start[k]; i < c->start[k + 1]; i++) {
			uint32_t p = c->members[i], q;

			for (q = 0; q < np && peers[q] != p; q++)
				;
			if (p != s && q == np)
				peers[np++] = p;
		}
	}
	return np;
}

uint32_t circles_shared(const struct circles *c, uint32_t a, uint32_t b)
{
	uint32_t bits = 0;

	for (uint32_t j = 0; j < CIRCLES_PER_SITE && c->n_circles > 0; j++) {
		uint32_t k = c->of[a * CIRCLES_PER_SITE + j];

		if (in_circle(c->members, c->start[k], c->start[k + 1], b, UINT32_MAX))
			bits |= 1u << j;
	}
	return bits;
}

void circles_free(struct circles *c)
{
	free(c->of);
	free(c->start);
	free(c->members);
	memset(c, 0, sizeof(*c));
}
