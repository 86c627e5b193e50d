/*
 * circles.h: partial views for large deployments (`sotto init --degree D`,
 * the simulator's --degree).
 *
 * A round's members must all know each other: each one checks every other
 * member's key against its own [Peer] list, or an initiator could invent
 * members (security.md). A random D-regular graph has almost no groups of
 * four sites that all know each other, so the partial views are built from
 * circles instead: every site is in CIRCLES_PER_SITE circles of at least
 * D / CIRCLES_PER_SITE + 1 sites (sizes differ by at most one), and its
 * peers are the other members of its circles (about D of them). A round is drawn inside one circle
 * ([Peer] Circles), and models mix across the network through the sites
 * that every circle shares with others. The circles are a random
 * assignment, redrawn until the sites are connected.
 *
 * No I/O; deterministic from the seed.
 */
#ifndef SOTTO_NODE_CIRCLES_H
#define SOTTO_NODE_CIRCLES_H

#include <stdint.h>

#define CIRCLES_PER_SITE 2

struct circles {
	uint32_t n;         /* sites */
	uint32_t n_circles; /* circles; 0 when the degree means everyone */
	uint32_t *of;       /* of[s * CIRCLES_PER_SITE + j]: site s's circles */
	uint32_t *start;    /* circle c's sites: members[start[c] .. start[c + 1]) */
	uint32_t *members;
};

/*
 * Builds circles for n sites with about `degree` peers each; degree 0 or
 * degree >= n - 1 means everyone knows everyone (n_circles 0). Returns 0,
 * -EINVAL (n < 2, or degree < CIRCLES_PER_SITE), -ENOMEM, or -EAGAIN if no
 * connected assignment was found (tiny n with a small degree).
 */
int circles_make(struct circles *c, uint32_t n, uint32_t degree, uint64_t seed)
        __attribute__((warn_unused_result));
/* Site s's peers (distinct, without s) into peers[] (room for n); returns their count. */
uint32_t circles_peers(const struct circles *c, uint32_t s, uint32_t *peers);
/* Bit j set: sites a and b share a's j-th circle (c->of[a * CIRCLES_PER_SITE + j]). */
uint32_t circles_shared(const struct circles *c, uint32_t a, uint32_t b);
void circles_free(struct circles *c);

#endif
