/*
 * overlay.c: a random connected (nearly) regular overlay (see overlay.h).
 *
 * The builder puts the sites on a ring in a random order and starts from
 * the circulant graph of the ring positions: position p linked to p + 1 ..
 * p + d/2, and for odd d a matching of opposite positions. That graph is
 * simple, has the wanted degrees, and contains the ring (offset 1), so it
 * is connected. Then it swaps the ends of random pairs of links off the
 * ring, (a, c) (x, y) -> (a, x) (c, y), refusing any swap that would make a
 * loop or a link that exists: degrees never change, the ring stays, and
 * the rest becomes a random (d - 2)-regular graph (the switch chain of
 * Milo et al. 2003 with the ring held fixed). Each step is bounded, so
 * every (n, d) terminates, however few swaps the graph allows.
 *
 * Not here: I/O of any kind, site names, the daemon.
 */
#include "node/overlay.h"

#include "util/rng.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Swaps tried per movable link: enough to forget the circulant start. */
#define OVERLAY_SWAPS_PER_LINK 10

/* The graph while it is built (all arrays the builder's). */
struct build {
	uint32_t n;
	uint32_t *ring;      /* (n): the sites in ring order */
	uint32_t (*link)[2]; /* (n_links): links off the ring, the ones swaps move */
	size_t n_links;
	uint64_t *map; /* (n (n - 1) / 2 bits): which pairs of sites are linked */
};

/* Index of the unordered pair {a, b}, a != b, in the edge map. */
static uint64_t pair_bit(uint32_t a, uint32_t b)
{
	uint32_t lo = MIN(a, b), hi = MAX(a, b);

	return (uint64_t)hi * (hi - 1) / 2 + lo;
}

static bool linked(const struct build *b, uint32_t x, uint32_t y)
{
	uint64_t i = pair_bit(x, y);

	return (b->map[i / 64] >> (i % 64)) & 1;
}

static void link_mark(struct build *b, uint32_t x, uint32_t y, bool on)
{
	uint64_t i = pair_bit(x, y);

	if (on)
		b->map[i / 64] |= 1ull << (i % 64);
	else
		b->map[i / 64] &= ~(1ull << (i % 64));
}

/* Links the sites at ring positions p and q; off the ring, the link may move. */
static void link_add(struct build *b, uint64_t p, uint64_t q)
{
	uint32_t x = b->ring[p % b->n], y = b->ring[q % b->n];

	SOTTO_ASSERT(x != y && !linked(b, x, y));
	link_mark(b, x, y, true);
	if ((p + 1) % b->n == q % b->n)
		return; /* the ring: implied by b->ring */
	b->link[b->n_links][0] = x;
	b->link[b->n_links][1] = y;
	b->n_links++;
}

/*
 * The circulant start. Offsets 1..d/2 are distinct pair distances because
 * d <= n - 2 keeps d/2 below n/2. Odd d, even n: the n/2 opposite pairs.
 * Odd d, odd n (n * d odd): stepping by m = (n - 1) / 2 (a distance no
 * offset uses, and gcd(m, n) = 1) tours every position; consecutive pairs
 * of the tour are matched, and the position left over is linked to the
 * tour's first, which so gets d + 1 links.
 */
static void build_start(struct build *b, uint32_t d)
{
	uint32_t n = b->n;
	uint64_t m = (n - 1) / 2;

	for (uint32_t s = 1; s <= d / 2; s++) {
		for (uint32_t p = 0; p < n; p++)
			link_add(b, p, (uint64_t)p + s);
	}
	if (d % 2 == 0)
		return;
	if (n % 2 == 0) {
		for (uint32_t p = 0; p < n / 2; p++)
			link_add(b, p, (uint64_t)p + n / 2);
		return;
	}
	for (uint64_t k = 0; k + 1 < n; k += 2)
		link_add(b, k * m % n, (k + 1) * m % n);
	link_add(b, (uint64_t)(n - 1) * m % n, 0);
}

/* Degree-preserving swaps of the links off the ring (see the top). */
static void build_swap(struct build *b, struct rng *r, uint64_t tries)
{
	uint32_t m = (uint32_t)b->n_links;

	if (m < 2)
		return;
	for (uint64_t t = 0; t < tries; t++) {
		uint32_t i = rng_below(r, m), j = rng_below(r, m);
		uint32_t *e = b->link[i], *f = b->link[j];
		bool flip = rng_next(r) >> 63;
		uint32_t a = e[0], c = e[1];
		uint32_t x = flip ? f[1] : f[0], y = flip ? f[0] : f[1];

		/* (a, c) (x, y) -> (a, x) (c, y) */
		if (i == j || a == x || c == y || linked(b, a, x) || linked(b, c, y))
			continue;
		link_mark(b, a, c, false);
		link_mark(b, x, y, false);
		link_mark(b, a, x, true);
		link_mark(b, c, y, true);
		e[1] = x;
		f[0] = c;
		f[1] = y;
	}
}

static int cmp_u32(const void *pa, const void *pb)
{
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;

	return (a > b) - (a < b);
}

/* Both ends of link {x, y} into the lists; next[i]: where site i's next peer goes. */
static void list_add(struct overlay *o, uint32_t *next, uint32_t x, uint32_t y)
{
	o->peer[next[x]++] = y;
	o->peer[next[y]++] = x;
}

/* The peer lists of the built graph, sorted. */
static int build_finish(struct overlay *o, const struct build *b)
{
	uint32_t n = b->n, *next = NULL;
	int rc = -ENOMEM;

	o->start = calloc((size_t)n + 1, sizeof(*o->start));
	next = malloc((size_t)n * sizeof(*next));
	if (o->start == NULL || next == NULL)
		goto out;
	for (uint32_t i = 0; i < n; i++)
		o->start[i + 1] = 2; /* the ring */
	for (size_t k = 0; k < b->n_links; k++) {
		o->start[b->link[k][0] + 1]++;
		o->start[b->link[k][1] + 1]++;
	}
	for (uint32_t i = 0; i < n; i++)
		o->start[i + 1] += o->start[i];
	o->peer = malloc((size_t)o->start[n] * sizeof(*o->peer));
	if (o->peer == NULL)
		goto out;
	memcpy(next, o->start, (size_t)n * sizeof(*next));
	for (uint32_t p = 0; p < n; p++)
		list_add(o, next, b->ring[p], b->ring[(p + 1) % n]);
	for (size_t k = 0; k < b->n_links; k++)
		list_add(o, next, b->link[k][0], b->link[k][1]);
	for (uint32_t i = 0; i < n; i++)
		qsort(o->peer + o->start[i], overlay_degree(o, i), sizeof(*o->peer), cmp_u32);
	rc = 0;
out:
	free(next);
	return rc;
}

/* 2 <= d <= n - 2, so n >= 4. */
static int make_random(struct overlay *o, uint32_t d, uint64_t seed)
{
	struct build b = {.n = o->n};
	struct rng r;
	uint32_t n = o->n;
	size_t movable = (size_t)n * (d / 2 - 1) + (d % 2 == 1 ? (n + 1) / 2 : 0);
	size_t map_words = (size_t)(((uint64_t)n * (n - 1) / 2 + 63) / 64);
	int rc = -ENOMEM;

	b.ring = malloc((size_t)n * sizeof(*b.ring));
	b.link = malloc(MAX(movable, 1) * sizeof(*b.link));
	b.map = calloc(map_words, sizeof(*b.map));
	if (b.ring == NULL || b.link == NULL || b.map == NULL)
		goto out;
	rng_seed3(&r, seed, n, d);
	for (uint32_t i = 0; i < n; i++)
		b.ring[i] = i;
	rng_shuffle_u32(&r, b.ring, n);
	build_start(&b, d);
	SOTTO_ASSERT(b.n_links == movable);
	build_swap(&b, &r, (uint64_t)OVERLAY_SWAPS_PER_LINK * movable);
	rc = build_finish(o, &b);
out:
	free(b.map);
	free(b.link);
	free(b.ring);
	return rc;
}

static int make_complete(struct overlay *o)
{
	uint32_t n = o->n, k = 0;

	o->start = malloc(((size_t)n + 1) * sizeof(*o->start));
	o->peer = malloc(MAX((size_t)n * (n - 1), 1) * sizeof(*o->peer));
	if (o->start == NULL || o->peer == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		o->start[i] = k;
		for (uint32_t j = 0; j < n; j++) {
			if (j != i)
				o->peer[k++] = j;
		}
	}
	o->start[n] = k;
	return 0;
}

int overlay_alloc(struct overlay **out, uint32_t n, uint32_t d, uint64_t seed)
{
	struct overlay *o;
	int rc;

	*out = NULL;
	if (n == 0 || n > OVERLAY_MAX_SITES || (d == 1 && n >= 3))
		return -EINVAL;
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return -ENOMEM;
	o->n = n;
	if (d == 0 || d >= n - 1)
		rc = make_complete(o);
	else
		rc = make_random(o, d, seed);
	if (rc != 0) {
		overlay_free(o);
		return rc;
	}
	*out = o;
	return 0;
}

void overlay_free(struct overlay *o)
{
	if (o == NULL)
		return;
	free(o->peer);
	free(o->start);
	free(o);
}

/* Does a list b? (a's list sorted; b < n.) */
static bool lists(const struct overlay *o, uint32_t a, uint32_t b)
{
	return bsearch(&b, overlay_peers(o, a), overlay_degree(o, a), sizeof(b), cmp_u32) != NULL;
}

static bool simple_list(const struct overlay *o, uint32_t i)
{
	const uint32_t *p = overlay_peers(o, i);

	for (uint32_t k = 0; k < overlay_degree(o, i); k++) {
		if (p[k] >= o->n || p[k] == i || (k > 0 && p[k] <= p[k - 1]))
			return false;
	}
	for (uint32_t k = 0; k < overlay_degree(o, i); k++) {
		if (!lists(o, p[k], i))
			return false;
	}
	return true;
}

/* Breadth-first from site 0 (peers out of range are skipped). */
static int connected(const struct overlay *o, bool *out)
{
	uint32_t *queue = malloc((size_t)o->n * sizeof(*queue));
	bool *seen = calloc(o->n, sizeof(*seen));
	uint32_t head = 0, tail = 0;

	if (queue == NULL || seen == NULL) {
		free(seen);
		free(queue);
		return -ENOMEM;
	}
	seen[0] = true;
	queue[tail++] = 0;
	while (head < tail) {
		uint32_t i = queue[head++];
		for (uint32_t k = 0; k < overlay_degree(o, i); k++) {
			uint32_t p = overlay_peers(o, i)[k];
			if (p < o->n && !seen[p]) {
				seen[p] = true;
				queue[tail++] = p;
			}
		}
	}
	*out = tail == o->n;
	free(seen);
	free(queue);
	return 0;
}

int overlay_summarize(struct overlay_summary *out, const struct overlay *o)
{
	uint64_t sum = 0;

	memset(out, 0, sizeof(*out));
	out->simple = true;
	out->connected = true;
	if (o->n == 0)
		return 0;
	out->min_degree = UINT32_MAX;
	SOTTO_ASSERT(o->start[0] == 0);
	for (uint32_t i = 0; i < o->n; i++) {
		SOTTO_ASSERT(o->start[i + 1] >= o->start[i]);
		out->min_degree = MIN(out->min_degree, overlay_degree(o, i));
		out->max_degree = MAX(out->max_degree, overlay_degree(o, i));
		sum += overlay_degree(o, i);
		if (!simple_list(o, i))
			out->simple = false;
	}
	out->links = sum / 2;
	return connected(o, &out->connected);
}
