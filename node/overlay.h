/*
 * overlay.h: who lists whom as a peer. `sotto init --degree D` gives each
 * site D random peers instead of every other site: a random D-regular
 * graph on the sites that is undirected (a lists b iff b lists a), simple
 * (no site lists itself, none lists a peer twice) and connected (an update
 * made anywhere can reach every site). The same (n, d, seed) gives the same
 * graph on every machine.
 *
 * Not here: names, keys and files (node/cmd_init.c), what the daemon does
 * with its peers (node/gossip.c). No I/O.
 */
#ifndef SOTTO_NODE_OVERLAY_H
#define SOTTO_NODE_OVERLAY_H

#include <stdbool.h>
#include <stdint.h>

/* Bound on n: the builder keeps an n * (n - 1) / 2 bit edge map (16 MiB). */
#define OVERLAY_MAX_SITES 16384

/* Sites are numbered 0..n-1. Heap storage: overlay_alloc, overlay_free. */
struct overlay {
	uint32_t n;
	uint32_t *start; /* (n + 1): site i's peers are peer[start[i] .. start[i + 1]) */
	uint32_t *peer;  /* (start[n]): each site's peers, in increasing order */
};

/*
 * Makes the overlay of n sites (1..OVERLAY_MAX_SITES) with degree d:
 *
 *   d == 0 or d >= n - 1   the complete graph: every site lists all others;
 *   2 <= d <= n - 2        every site has d peers; when n * d is odd (no
 *                          d-regular graph exists) one site has d + 1, so
 *                          that no site has fewer than d;
 *   d == 1, n >= 3         -EINVAL: one peer each is a matching, never
 *                          connected.
 *
 * The graph is a random ring (a random order of the sites, which makes it
 * connected) plus a random (d - 2)-regular rest: a deterministic start
 * randomised by degree-preserving edge swaps that never touch the ring nor
 * create a loop or a repeated link. Time O(n * d): 10 swaps are tried per
 * link (n = 1024, d = 512: 0.1 s; n = 10000, d = 8: 0.1 s; n = 10000,
 * d = 5000: a minute). Memory: the result, plus the edge map and two words
 * per link while it runs.
 *
 * On success *out is the caller's (overlay_free) and 0 is returned; on
 * failure *out is NULL and -EINVAL or -ENOMEM is returned.
 */
int overlay_alloc(struct overlay **out, uint32_t n, uint32_t d, uint64_t seed)
        __attribute__((warn_unused_result));
/* Frees o; NULL is fine. */
void overlay_free(struct overlay *o);

static inline uint32_t overlay_degree(const struct overlay *o, uint32_t i)
{
	return o->start[i + 1] - o->start[i];
}

static inline const uint32_t *overlay_peers(const struct overlay *o, uint32_t i)
{
	return o->peer + o->start[i];
}

/* What overlay_summarize finds in any overlay (made here or by hand). */
struct overlay_summary {
	uint32_t min_degree, max_degree;
	uint64_t links; /* undirected: half the sum of the degrees */
	bool simple;    /* no self-link, no repeat, a lists b iff b lists a */
	bool connected; /* every site reaches every other */
};

/*
 * Checks o (peer lists must be sorted, as overlay_alloc makes them; an
 * unsorted list counts as not simple) and fills *out. Returns 0, or -ENOMEM
 * (the search for connectivity needs n words).
 */
int overlay_summarize(struct overlay_summary *out, const struct overlay *o)
        __attribute__((warn_unused_result));

#endif
