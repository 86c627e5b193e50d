/*
 * sa_round_test.c: the secure-aggregation round over a simulated in-process
 * message bus (no sockets, explicit time).
 *
 * Property: for random k in 3..8, random vector lengths and random deaths
 * at every phase (a member or the initiator dies when a given message type
 * reaches it), either the round completes, every surviving counted member
 * holds the same result and that result is, bit for bit, the ring sum of the
 * encoded inputs of the members counted as alive; or it aborts for everyone
 * and nobody holds a result. The outcome is predicted exactly from the kill
 * schedule (done iff the initiator lives and >= t members answer UNMASK).
 *
 * Dishonest initiator: it lists a member as both alive and dropped; it
 * shows different members different alive sets (every split of the group);
 * it asks a member twice; it claims a live member dropped. Members refuse
 * what would reveal both secrets of one member, and the shares the
 * initiator collects never reach t for both secrets of anyone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/identity.h"
#include "crypto/shamir.h"
#include "node/round.h"
#include "protocol/codec.h"
#include "util/log.h"

#define KMAX     8
#define PHASE_MS 1000

/* A message in flight: its encoded bytes and the decoded view of them. */
struct env {
	uint8_t from, to;
	struct msg m;
	uint8_t *bytes;
	struct env *next;
};

struct bus {
	size_t k;
	struct identity *id[KMAX];
	uint8_t pk[KMAX][MSG_KEY_BYTES];
	struct round *r[KMAX];
	bool alive[KMAX];
	int kill_on[KMAX]; /* dies when a message of this type reaches it (0: never) */
	int flap_on[KMAX]; /* its links drop for a moment when this type reaches it */
	int flap_side;     /* who hears of it: 0 both ends, 1 only it, 2 only the others */
	float *x[KMAX];
	struct env *head, *tail;
	struct round_outbox ob;
	uint64_t now;
	bool notify_lost; /* a death drops its connections: survivors are told */
	/* adversary hooks */
	void (*tamper)(struct bus *b, struct env *e, void *arg);
	void *arg;
};

/*
 * Every message crosses the bus as bytes: msg_encode, then a strict
 * msg_decode whose byte strings borrow the envelope's buffer. So the round
 * only ever sends what the wire format accepts.
 */
static void bus_push(struct bus *b, uint8_t from, uint8_t to, const struct msg *m)
{
	struct env *e = calloc(1, sizeof(*e));
	size_t size = msg_encoded_size(m), len = 0;
	int rc;

	assert_non_null(e);
	if (size == 0)
		fail_msg("message type %d does not validate: %s", (int)m->type,
		         msg_strerror(msg_validate(m)));
	e->from = from;
	e->to = to;
	e->bytes = malloc(size);
	assert_non_null(e->bytes);
	assert_int_equal(msg_encode(e->bytes, size, &len, m), 0);
	assert_int_equal(len, size);
	rc = msg_decode(&e->m, e->bytes, len);
	if (rc != 0)
		fail_msg("decode of type %d: %s", (int)m->type, msg_strerror(rc));
	if (b->tail)
		b->tail->next = e;
	else
		b->head = e;
	b->tail = e;
}

static void bus_flush(struct bus *b, uint8_t from)
{
	for (size_t i = 0; i < b->ob.n; i++)
		bus_push(b, from, b->ob.out[i].to, &b->ob.out[i].msg);
	b->ob.n = 0;
}

static void env_free(struct env *e)
{
	free(e->bytes);
	free(e);
}

static struct round_input input_of(struct bus *b, size_t i)
{
	struct round_input in = {b->x[i], 0.5f + 0.25f * (float)i, 1000 + i};
	return in;
}

/* Node `at` hears that its link to node `gone` dropped; its reaction goes out. */
static void tell_lost(struct bus *b, size_t at, size_t gone)
{
	assert_int_equal(round_on_peer_lost(b->r[at], b->pk[gone], b->now, &b->ob), 0);
	bus_flush(b, (uint8_t)at);
}

/* Delivers one message; returns false when the queue is empty. */
static bool bus_step(struct bus *b)
{
	struct env *e = b->head;

	if (e == NULL)
		return false;
	b->head = e->next;
	if (b->head == NULL)
		b->tail = NULL;
	if (b->tamper != NULL)
		b->tamper(b, e, b->arg);
	if (b->alive[e->to] && b->flap_on[e->to] == (int)e->m.type) {
		/* Every link of e->to drops and comes back at once: nothing is
		 * lost, everyone stays alive, and one or both ends are told
		 * (each direction is its own connection). */
		b->flap_on[e->to] = 0;
		for (size_t j = 0; j < b->k; j++) {
			if (j == e->to || !b->alive[j])
				continue;
			if (b->r[j] != NULL && b->flap_side != 1)
				tell_lost(b, j, e->to);
			if (b->r[e->to] != NULL && b->flap_side != 2)
				tell_lost(b, e->to, j);
		}
	}
	if (b->alive[e->to] && b->kill_on[e->to] == (int)e->m.type) {
		b->alive[e->to] = false;
		for (size_t j = 0; b->notify_lost && j < b->k; j++) {
			if (b->alive[j] && b->r[j] != NULL)
				tell_lost(b, j, e->to);
		}
	}
	if (!b->alive[e->to]) {
		env_free(e);
		return true;
	}
	if (b->r[e->to] == NULL) {
		if (e->m.type == MSG_INVITE) {
			struct round_input in = input_of(b, e->to);
			int rc = round_join(&b->r[e->to], b->id[e->to], b->pk[e->from], &e->m, &in,
			                    b->now, &b->ob);
			(void)rc;
		}
	} else {
		assert_int_equal(round_on_msg(b->r[e->to], b->pk[e->from], &e->m, b->now, &b->ob),
		                 0);
	}
	bus_flush(b, e->to);
	env_free(e);
	return true;
}

static bool any_running(struct bus *b)
{
	for (size_t i = 0; i < b->k; i++) {
		if (b->alive[i] && b->r[i] != NULL && round_status(b->r[i]) == ROUND_RUNNING)
			return true;
	}
	return false;
}

/* Runs until the queue is empty and nobody alive is still running. */
static void bus_run(struct bus *b)
{
	for (int guard = 0; guard < 100000; guard++) {
		if (bus_step(b))
			continue;
		if (!any_running(b))
			return;
		b->now += PHASE_MS / 4;
		for (size_t i = 0; i < b->k; i++) {
			if (b->alive[i] && b->r[i] != NULL) {
				assert_int_equal(round_on_tick(b->r[i], b->now, &b->ob), 0);
				bus_flush(b, (uint8_t)i);
			}
		}
	}
	fail_msg("round did not terminate");
}

static void bus_init(struct bus *b, size_t k, uint32_t dim, uint32_t seed)
{
	struct rng rng;

	memset(b, 0, sizeof(*b));
	b->k = k;
	b->ob.cap = ROUND_OUTBOX_MIN;
	b->ob.out = calloc(b->ob.cap, sizeof(struct round_out));
	assert_non_null(b->ob.out);
	rng_seed(&rng, seed);
	for (size_t i = 0; i < k; i++) {
		b->id[i] = identity_generate();
		assert_non_null(b->id[i]);
		memcpy(b->pk[i], b->id[i]->sign_pk, MSG_KEY_BYTES);
		b->alive[i] = true;
		b->x[i] = malloc(dim * sizeof(float));
		assert_non_null(b->x[i]);
		for (uint32_t j = 0; j < dim; j++)
			b->x[i][j] = (float)(rng_uniform(&rng) * 2 - 1) * (j % 3 ? 0.1f : 1.0f);
	}
}

static void bus_fini(struct bus *b)
{
	while (b->head) {
		struct env *e = b->head;
		b->head = e->next;
		env_free(e);
	}
	for (size_t i = 0; i < b->k; i++) {
		round_free(b->r[i]);
		identity_free(b->id[i]);
		free(b->x[i]);
	}
	free(b->ob.out);
}

/* Codec for a round of k: three segments of different ranges, plus weight. */
static void make_codec(struct codec_params *p, uint16_t k, uint32_t dim)
{
	uint32_t lens[3];
	float clips[3] = {1.0f, 0.1f, 0.5f};
	size_t nseg = dim >= 3 ? 3 : 1;

	lens[0] = nseg == 3 ? dim / 2 : dim;
	lens[1] = dim / 3;
	lens[2] = dim - lens[0] - lens[1];
	assert_int_equal(codec_params_init(p, k, lens, clips, nseg, 8), 0);
	assert_int_equal(codec_params_set_weight(p, 12, 1.0f / 256), 0);
}

static void start(struct bus *b, const struct codec_params *cp, uint8_t t, uint64_t rid)
{
	struct round_plan plan = {rid,      0, (uint8_t)b->k, t, (const uint8_t(*)[32])b->pk, cp,
	                          PHASE_MS, 0};
	struct round_input in = input_of(b, 0);

	assert_int_equal(round_initiate(&b->r[0], b->id[0], &plan, &in, b->now, &b->ob), 0);
	bus_flush(b, 0);
}

/* Checks the all-or-nothing outcome; returns whether the round completed. */
static bool check_outcome(struct bus *b, const struct codec_params *cp)
{
	size_t n = codec_ring_len(cp);
	const uint32_t *ref = NULL;
	uint8_t counted[MSG_MAX_MEMBERS];
	size_t nc = 0;
	bool done = false;

	for (size_t i = 0; i < b->k; i++) {
		if (b->r[i] != NULL && round_status(b->r[i]) == ROUND_DONE) {
			uint8_t c2[MSG_MAX_MEMBERS];
			size_t nc2 = round_counted(b->r[i], c2);

			if (!done) {
				ref = round_result_ring(b->r[i]);
				nc = round_counted(b->r[i], counted);
				done = true;
			}
			assert_int_equal(nc, nc2);
			assert_memory_equal(c2, counted, nc);
			assert_memory_equal(round_result_ring(b->r[i]), ref, n * sizeof(uint32_t));
		}
	}
	if (!done) { /* nobody applies: every live participant aborted */
		for (size_t i = 0; i < b->k; i++) {
			if (b->alive[i] && b->r[i] != NULL)
				assert_int_equal(round_status(b->r[i]), ROUND_ABORTED);
		}
		return false;
	}
	/* the result is the exact ring sum of the counted members' inputs */
	{
		uint32_t *sum = calloc(n, sizeof(uint32_t));
		float *avg = malloc(cp->dim * sizeof(float)),
		      *expect = malloc(cp->dim * sizeof(float));
		bool in_sum[KMAX] = {false};
		float rho, rho2;
		uint32_t members;

		assert_true(sum && avg && expect);
		for (size_t c = 0; c < nc; c++) {
			in_sum[counted[c]] = true;
			codec_ring_add(sum, round_input_ring(b->r[counted[c]]), cp);
		}
		assert_memory_equal(sum, ref, n * sizeof(uint32_t));
		assert_int_equal(codec_decode_sum(expect, &rho, cp, sum, (uint32_t)nc, NULL, NULL),
		                 0);
		/* every live counted member has it; live others aborted */
		for (size_t i = 0; i < b->k; i++) {
			if (!b->alive[i] || b->r[i] == NULL)
				continue;
			if (in_sum[i]) {
				assert_int_equal(round_status(b->r[i]), ROUND_DONE);
				assert_int_equal(round_result(b->r[i], avg, &rho2, &members), 0);
				assert_int_equal(members, nc);
				assert_true(rho == rho2);
				assert_memory_equal(avg, expect, cp->dim * sizeof(float));
			} else {
				assert_int_not_equal(round_status(b->r[i]), ROUND_DONE);
			}
		}
		free(sum);
		free(avg);
		free(expect);
	}
	return true;
}

static void test_all_alive(void **state)
{
	struct bus b;
	struct codec_params cp;
	uint8_t counted[MSG_MAX_MEMBERS];

	(void)state;
	for (size_t k = 3; k <= KMAX; k++) {
		bus_init(&b, k, 1000, (uint32_t)k);
		make_codec(&cp, (uint16_t)k, 1000);
		start(&b, &cp, round_min_threshold((uint8_t)k), 0x1000 + k);
		bus_run(&b);
		assert_true(check_outcome(&b, &cp));
		assert_int_equal(round_counted(b.r[0], counted), k);
		assert_int_equal(b.now, 0); /* no deadline was needed */
		bus_fini(&b);
	}
}

static const int member_kill_types[] = {MSG_INVITE, MSG_KEYS, MSG_SHARES, MSG_UNMASK_REQ,
                                        MSG_RESULT};
static const int init_kill_types[] = {MSG_ACCEPT, MSG_SHARES, MSG_MASKED, MSG_UNMASK_RESP};

/*
 * Random deaths at every phase, initiator included. With notify, each death
 * also drops the connections to the dead process, as NNG reports it: the
 * outcomes must be the same as with deadlines alone, and no deadline may be
 * needed unless a counted member died (the CHECK phase still waits for
 * its deadline then).
 */
static void run_kills(bool notify)
{
	uint32_t r = 2024;
	int done = 0, aborted = 0, no_deadline = 0;

	for (int trial = 0; trial < 120; trial++) {
		struct bus b;
		struct codec_params cp;
		size_t k, answered = 0;
		uint32_t dim;
		uint8_t t;
		bool init_dies, expect_done;

		r = r * 1103515245u + 12345u;
		k = 3 + (r >> 8) % (KMAX - 2);
		r = r * 1103515245u + 12345u;
		dim = 1 + (r >> 8) % (trial % 10 == 0 ? 20000 : 500);
		t = round_min_threshold((uint8_t)k);
		if ((r >> 24) % 4 == 0 && t < k)
			t++;
		bus_init(&b, k, dim, r);
		b.notify_lost = notify;
		make_codec(&cp, (uint16_t)k, dim);
		for (size_t i = 1; i < k; i++) {
			r = r * 1103515245u + 12345u;
			if ((r >> 16) % 100 < 35)
				b.kill_on[i] = member_kill_types[(r >> 8) % 5];
			/* a member answers UNMASK unless it dies before */
			if (b.kill_on[i] == 0 || b.kill_on[i] == MSG_RESULT)
				answered++;
		}
		r = r * 1103515245u + 12345u;
		init_dies = (r >> 16) % 100 < 12;
		if (init_dies)
			b.kill_on[0] = init_kill_types[(r >> 8) % 4];
		answered++; /* the initiator's own member part */
		expect_done = !init_dies && answered >= t;
		start(&b, &cp, t, 0x5000 + (uint64_t)trial);
		bus_run(&b);
		assert_int_equal(check_outcome(&b, &cp), expect_done);
		if (notify) {
			bool counted_died = false;
			for (size_t i = 1; i < k; i++)
				counted_died = counted_died || b.kill_on[i] == MSG_UNMASK_REQ ||
				               b.kill_on[i] == MSG_RESULT;
			if (!counted_died || init_dies) {
				assert_int_equal(b.now, 0);
				no_deadline++;
			}
		}
		done += expect_done;
		aborted += !expect_done;
		if (expect_done) { /* counted = those that sent MASKED */
			uint8_t c[MSG_MAX_MEMBERS];
			size_t nc = round_counted(b.r[0], c);
			for (size_t j = 0; j < nc; j++)
				assert_true(b.kill_on[c[j]] == 0 ||
				            b.kill_on[c[j]] == MSG_UNMASK_REQ ||
				            b.kill_on[c[j]] == MSG_RESULT);
		}
		bus_fini(&b);
	}
	print_message("kill schedules%s: %d completed, %d aborted\n",
	              notify ? " (connections dropped)" : "", done, aborted);
	/* both outcomes must be exercised, or the property says little */
	assert_true(done >= 30 && aborted >= 10);
	if (notify) {
		print_message("  %d of them needed no deadline at all\n", no_deadline);
		assert_true(no_deadline >= 40);
	}
}

/*
 * Links that drop for a moment while everyone stays alive (plus random
 * deaths): a round may complete or abort, but always all or nothing, and
 * a completed one is the exact sum of the inputs it counted.
 */
static void test_property_link_flaps(void **state)
{
	static const int types[] = {MSG_INVITE,     MSG_KEYS,        MSG_SHARES,
	                            MSG_UNMASK_REQ, MSG_RESULT,      MSG_ACCEPT,
	                            MSG_MASKED,     MSG_UNMASK_RESP, MSG_CHECKED};
	uint32_t r = 4242;
	int done = 0, aborted = 0;

	(void)state;
	for (int trial = 0; trial < 150; trial++) {
		struct bus b;
		struct codec_params cp;
		size_t k;
		uint32_t dim;

		r = r * 1103515245u + 12345u;
		k = 3 + (r >> 8) % (KMAX - 2);
		r = r * 1103515245u + 12345u;
		dim = 1 + (r >> 8) % 300;
		bus_init(&b, k, dim, r);
		b.notify_lost = true;
		b.flap_side = trial % 3;
		make_codec(&cp, (uint16_t)k, dim);
		for (size_t i = 0; i < k; i++) {
			r = r * 1103515245u + 12345u;
			if ((r >> 16) % 100 < 40)
				b.flap_on[i] = types[(r >> 8) % 9];
			r = r * 1103515245u + 12345u;
			if (i > 0 && (r >> 16) % 100 < 15)
				b.kill_on[i] = member_kill_types[(r >> 8) % 5];
		}
		start(&b, &cp, round_min_threshold((uint8_t)k), 0x9000 + (uint64_t)trial);
		bus_run(&b);
		if (check_outcome(&b, &cp))
			done++;
		else
			aborted++;
		bus_fini(&b);
	}
	print_message("link flaps: %d completed, %d aborted\n", done, aborted);
	assert_true(done >= 30 && aborted >= 10);
}

static void test_property_kills(void **state)
{
	(void)state;
	run_kills(false);
}

static void test_property_kills_connection_lost(void **state)
{
	(void)state;
	run_kills(true);
}

static void test_large_vector(void **state)
{
	struct bus b;
	struct codec_params cp;

	(void)state;
	bus_init(&b, 4, 1000000, 77);
	make_codec(&cp, 4, 1000000);
	b.kill_on[2] = MSG_UNMASK_REQ; /* its input counts, its pairwise masks need no recovery */
	b.kill_on[3] = MSG_SHARES;     /* dropped after sharing: pairwise recovery */
	start(&b, &cp, 3, 0xbeef);
	bus_run(&b);
	/* 4 members, t = 3: only 0 and 1 answer UNMASK, so the round aborts */
	assert_false(check_outcome(&b, &cp));
	bus_fini(&b);

	bus_init(&b, 5, 1000000, 78);
	make_codec(&cp, 5, 1000000);
	b.kill_on[3] = MSG_SHARES; /* pairwise recovery for 3 */
	start(&b, &cp, 4, 0xbeef);
	bus_run(&b);
	assert_true(check_outcome(&b, &cp));
	bus_fini(&b);
}

/* --- dishonest initiator ---------------------------------------------------- */

struct split {
	uint8_t target;        /* the member whose input the initiator wants */
	uint32_t told_dropped; /* bitmask of members told "target dropped" */
	uint32_t self_from;    /* who revealed a self-mask share of target */
	uint32_t pair_from;    /* who revealed a mask-key share of target */
	bool also_both;        /* list target as alive and dropped at once */
	bool ask_twice;        /* send each member the other view too */
	struct msg second[KMAX];
	bool have_second[KMAX];
};

static void rewrite_view(struct msg_unmask_req *q, uint8_t target, bool dropped, bool both)
{
	struct msg_unmask_req o = *q;
	bool is_alive[MSG_MAX_MEMBERS] = {false}, is_drop[MSG_MAX_MEMBERS] = {false};

	for (uint8_t i = 0; i < o.n_alive; i++)
		is_alive[o.alive[i]] = true;
	for (uint8_t i = 0; i < o.n_dropped; i++)
		is_drop[o.dropped[i]] = true;
	if (dropped) {
		is_alive[target] = both;
		is_drop[target] = true;
	} else {
		is_alive[target] = true;
		is_drop[target] = both;
	}
	q->n_alive = q->n_dropped = 0;
	for (uint8_t u = 0; u < MSG_MAX_MEMBERS; u++) {
		if (is_alive[u])
			q->alive[q->n_alive++] = u;
		if (is_drop[u])
			q->dropped[q->n_dropped++] = u;
	}
}

static void tamper_split(struct bus *b, struct env *e, void *arg)
{
	struct split *s = arg;

	if (e->m.type == MSG_UNMASK_REQ && e->from == 0) {
		bool told = (s->told_dropped >> e->to) & 1;

		if (s->ask_twice && !s->have_second[e->to]) {
			s->second[e->to] = e->m;
			rewrite_view(&s->second[e->to].u.unmask_req, s->target, !told, false);
			s->have_second[e->to] = true;
		}
		rewrite_view(&e->m.u.unmask_req, s->target, told, s->also_both);
	}
	if (e->m.type == MSG_UNMASK_RESP && e->to == 0) {
		const struct msg_unmask_resp *resp = &e->m.u.unmask_resp;
		bool told = (s->told_dropped >> e->from) & 1;

		for (uint8_t i = 0; i < resp->n; i++) {
			if (resp->entries[i].owner != s->target)
				continue;
			if (told)
				s->pair_from |= 1u << e->from;
			else
				s->self_from |= 1u << e->from;
		}
		/* ask again with the other view, as if the first got lost */
		if (s->ask_twice && s->have_second[e->from]) {
			bus_push(b, 0, e->from, &s->second[e->from]);
			s->have_second[e->from] = false;
			s->told_dropped ^= 1u << e->from;
		}
	}
}

static void run_split(size_t k, uint8_t t, struct split *s, uint32_t seed)
{
	struct bus b;
	struct codec_params cp;
	unsigned self_n, pair_n;

	bus_init(&b, k, 64, seed);
	make_codec(&cp, (uint16_t)k, 64);
	b.tamper = tamper_split;
	b.arg = s;
	start(&b, &cp, t, 0x7700 + seed);
	bus_run(&b);
	/* The initiator also holds one share of each secret of the target. */
	self_n = (unsigned)__builtin_popcount(s->self_from) + 1;
	pair_n = (unsigned)__builtin_popcount(s->pair_from) + 1;
	assert_false(self_n >= t && pair_n >= t);
	/* the target never reveals its own mask key, nor a share of it */
	assert_false((s->pair_from >> s->target) & 1);
	bus_fini(&b);
}

static void test_dishonest_both_in_one_request(void **state)
{
	struct split s;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.target = 1;
	s.also_both = true;
	run_split(4, 3, &s, 1);
	/* nobody answers a request that lists the target twice */
	assert_int_equal(s.self_from | s.pair_from, 0);
}

static void test_dishonest_split_views(void **state)
{
	(void)state;
	for (size_t k = 3; k <= 6; k++) {
		uint8_t t = round_min_threshold((uint8_t)k);

		/* every way of telling members 1..k-1 "target dropped" or "alive" */
		for (uint32_t mask = 0; mask < (1u << k); mask += 2) {
			struct split s;

			memset(&s, 0, sizeof(s));
			s.target = 1;
			s.told_dropped = mask;
			run_split(k, t, &s, mask + 100 * (uint32_t)k);
		}
	}
}

static void test_dishonest_ask_twice(void **state)
{
	struct split s;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.target = 2;
	s.told_dropped = 0x8; /* member 3 told "2 dropped", then the reverse */
	s.ask_twice = true;
	run_split(5, 4, &s, 9);
	/* members 1, 3, 4 each revealed one kind for member 2, never both */
	assert_int_equal(s.self_from & s.pair_from, 0);
}

/* Claiming a live member dropped, to everyone: its mask key is revealed,
 * its self mask is not, so its input stays hidden. */
static void test_dishonest_claims_dropped(void **state)
{
	struct split s;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.target = 1;
	s.told_dropped = 0xffu;
	run_split(5, 4, &s, 5);
	assert_int_equal(s.self_from, 0); /* no self-mask share of 1 ever left a member */
}

/*
 * Member 1's link to the initiator drops just after its MASKED arrived,
 * while the initiator still waits in the MASKED phase (member 5 died
 * silently). Member 1 aborts and says so; its input is already in the sum
 * and it will not apply, so nobody may: the round aborts for everyone
 * instead of finishing with 4 of 6 unmask responses.
 */
static void tamper_drop_link(struct bus *b, struct env *e, void *arg)
{
	int *n = arg;

	if (e->m.type == MSG_MASKED && e->from == 2 && e->to == 0 && *n == 0) {
		(*n)++;
		tell_lost(b, 1, 0);
	}
}

static void test_abort_after_masked_input(void **state)
{
	struct bus b;
	struct codec_params cp;
	int n = 0;

	(void)state;
	bus_init(&b, 6, 300, 31);
	make_codec(&cp, 6, 300);
	b.kill_on[5] = MSG_SHARES; /* dies before its MASKED: the phase waits */
	b.tamper = tamper_drop_link;
	b.arg = &n;
	start(&b, &cp, round_min_threshold(6), 0xab0);
	bus_run(&b);
	assert_int_equal(n, 1);
	assert_int_equal(round_status(b.r[1]), ROUND_ABORTED);
	assert_false(check_outcome(&b, &cp)); /* all aborted, checked inside */
	bus_fini(&b);
}

/* Replayed and foreign messages do not disturb a round. */
static void tamper_replay(struct bus *b, struct env *e, void *arg)
{
	int *n = arg;

	if (e->m.type == MSG_MASKED && *n == 0) {
		struct msg m = e->m;
		(*n)++;
		bus_push(b, e->from, e->to, &m); /* duplicate */
		m.attempt++;
		bus_push(b, e->from, e->to, &m); /* other attempt */
	}
}

static void test_replays_ignored(void **state)
{
	struct bus b;
	struct codec_params cp;
	int n = 0;

	(void)state;
	bus_init(&b, 4, 100, 3);
	make_codec(&cp, 4, 100);
	b.tamper = tamper_replay;
	b.arg = &n;
	start(&b, &cp, 3, 0x42);
	bus_run(&b);
	assert_true(check_outcome(&b, &cp));
	bus_fini(&b);
}

static void test_invite_refusals(void **state)
{
	struct bus b;
	struct codec_params cp;
	struct round_plan plan;
	struct round_input in;
	struct round *r = NULL;

	(void)state;
	bus_init(&b, 4, 10, 1);
	make_codec(&cp, 4, 10);
	in = input_of(&b, 0);
	plan = (struct round_plan){1, 0, 4, 2, (const uint8_t(*)[32])b.pk, &cp, PHASE_MS, 0};
	assert_int_equal(round_initiate(&r, b.id[0], &plan, &in, 0, &b.ob), -EINVAL); /* t */
	plan.t = 3;
	plan.k = 2;
	assert_int_equal(round_initiate(&r, b.id[0], &plan, &in, 0, &b.ob), -EINVAL); /* k */
	plan.k = 4;
	plan.members = (const uint8_t(*)[32])b.pk[1];
	assert_int_equal(round_initiate(&r, b.id[0], &plan, &in, 0, &b.ob), -EINVAL); /* not us */
	assert_int_equal(b.ob.n, 0);
	assert_int_equal(round_min_threshold(3), 3);
	assert_int_equal(round_min_threshold(4), 3);
	assert_int_equal(round_min_threshold(5), 4);
	assert_int_equal(round_min_threshold(8), 5);
	/* an INVITE from someone who is not members[0] is declined */
	start(&b, &cp, 3, 0x99);
	{
		struct env *e = b.head;
		assert_int_equal(e->m.type, MSG_INVITE);
		in = input_of(&b, e->to);
		assert_int_equal(round_join(&r, b.id[e->to], b.pk[2], &e->m, &in, 0, &b.ob),
		                 -EINVAL);
		assert_null(r);
		assert_int_equal(b.ob.n, 1);
		assert_int_equal(b.ob.out[0].msg.type, MSG_DECLINE);
		b.ob.n = 0;
		/* a threshold below the minimum is declined */
		e->m.u.invite.threshold = 2;
		assert_int_equal(round_join(&r, b.id[e->to], b.pk[0], &e->m, &in, 0, &b.ob),
		                 -EINVAL);
		b.ob.n = 0;
	}
	bus_fini(&b);
}

/*
 * Modular codec, all or nothing: members 0..k-2 hold nearly the same model,
 * member `far` is `off` away. Every member decodes the ring sum against its
 * own model; with width 6 (half ring 32 levels) the others' predictions are
 * 1.25 * off / q levels from the sum and the far member's 2.25 * off / q.
 * off = 0.08, q = 1/256: 25.6 < 32 < 46: only the far member's decode wraps,
 * its checksum fails, and the round must abort for everyone (reason "wrap"):
 * nobody applies, not even the members whose decode was right. off = 0.02:
 * nobody wraps, everyone applies the same average.
 */
static void run_modular(size_t far, float off, bool expect_done)
{
	enum { K = 4, DIM = 600 };
	struct bus b;
	struct codec_params cp;
	uint32_t lens[1] = {DIM};
	float clips[1] = {8.0f};
	float *avg[K];

	bus_init(&b, K, DIM, 77);
	for (size_t i = K; i-- > 0;) { /* member 0's random vector is the base */
		for (uint32_t j = 0; j < DIM; j++)
			b.x[i][j] = b.x[0][j] * 0.5f + (i == far ? off : 0.0f) + 0.001f * (float)i;
	}
	assert_int_equal(codec_params_init(&cp, K, lens, clips, 1, 12), 0);
	assert_int_equal(codec_params_set_weight(&cp, 12, 1.0f / 256), 0);
	cp.seg[0].mode = CODEC_SEG_MODULAR;
	cp.seg[0].width = 6;
	cp.seg[0].quantum = 1.0f / 256;
	cp.seg[0].bits = 16;
	cp.flags |= CODEC_F_CHECK;
	cp.dither_seed = 99;
	assert_int_equal(codec_params_check(&cp), 0);
	start(&b, &cp, 3, 0x5eed + far);
	bus_run(&b);
	for (size_t i = 0; i < K; i++) {
		float rho;
		uint32_t members;

		assert_non_null(b.r[i]);
		avg[i] = malloc(DIM * sizeof(float));
		assert_non_null(avg[i]);
		if (!expect_done) {
			assert_int_equal(round_status(b.r[i]), ROUND_ABORTED);
			assert_int_equal(round_abort_reason(b.r[i]), MSG_REASON_WRAP);
			assert_int_equal(round_result(b.r[i], avg[i], &rho, &members), -EAGAIN);
			continue;
		}
		if (round_status(b.r[i]) != ROUND_DONE)
			fail_msg("member %zu: status %d reason %d", i, round_status(b.r[i]),
			         round_abort_reason(b.r[i]));
		assert_non_null(round_decode_stats(b.r[i]));
		assert_int_equal(round_decode_stats(b.r[i])->check_failed, 0);
		assert_int_equal(round_result(b.r[i], avg[i], &rho, &members), 0);
		assert_int_equal(members, K);
		/* the same average for everyone, near the true one */
		assert_memory_equal(avg[i], avg[0], DIM * sizeof(float));
		for (uint32_t j = 0; j < DIM; j++) {
			double mean = 0, w = 0;
			for (size_t m = 0; m < K; m++) {
				mean += (0.5 + 0.25 * (double)m) * b.x[m][j];
				w += 0.5 + 0.25 * (double)m;
			}
			assert_true(fabs(avg[i][j] - mean / w) < 2.0 / 256);
		}
	}
	for (size_t i = 0; i < K; i++)
		free(avg[i]);
	bus_fini(&b);
}

static void test_modular_wrap_all_or_nothing(void **state)
{
	(void)state;
	run_modular(3, 0.08f, false); /* a member's decode wraps */
	run_modular(0, 0.08f, false); /* the initiator's decode wraps */
	run_modular(2, 0.02f, true);  /* nobody wraps */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_all_alive),
	        cmocka_unit_test(test_property_kills),
	        cmocka_unit_test(test_property_kills_connection_lost),
	        cmocka_unit_test(test_property_link_flaps),
	        cmocka_unit_test(test_large_vector),
	        cmocka_unit_test(test_dishonest_both_in_one_request),
	        cmocka_unit_test(test_dishonest_split_views),
	        cmocka_unit_test(test_dishonest_ask_twice),
	        cmocka_unit_test(test_dishonest_claims_dropped),
	        cmocka_unit_test(test_abort_after_masked_input),
	        cmocka_unit_test(test_replays_ignored),
	        cmocka_unit_test(test_invite_refusals),
	        cmocka_unit_test(test_modular_wrap_all_or_nothing),
	};
	if (sodium_init() < 0)
		return 1;
	log_set_level(LOG_LEVEL_ERROR); /* aborts and refusals are expected here */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
