/*
 * node_gossip_test.c: the node's core (node/gossip.c) driven directly.
 *
 * A tiny shell in the test plays daemon.c for up to NMAX cores in one
 * process: a fake clock (ms), a message queue between the cores (every
 * message crosses as bytes: msg_encode, then the strict msg_decode), a fake
 * snapshot op that returns a fixed model per node, and worker events
 * answered at once (an APPLY is merged as x += avg - snapshot and reported
 * APPLIED before the next event). randombytes is a seeded generator, so
 * every test is the same run on every machine.
 *
 * What is checked is what a shell sees: the actions (SEND, APPLY,
 * KEYS_SET/KEYS_CLEAR, FINISH, STOP), gossip_next_timer, gossip_status and
 * the checkpoint extra. After every event of every test the shell also
 * checks that the timer the core asks for is not in the past (and is in
 * the future after a timer event), that no round's transport keys outlive
 * their grace period (2 x RoundTimeout + 5 s after the round ended on that
 * node), and that round keys and sends come in the right order. The
 * transport seals a frame under a round's key as soon as one is set for that
 * round and peer (crypto/seal.c), so a round-sealed frame needs the same
 * keys on its receiver (INVITE, ACCEPT and KEYS thus leave before any are
 * set), and every message of the later phases must leave under them
 * (docs/protocol.md, "How the node uses them").
 *
 * Not here: the round's cryptography and its kill schedules
 * (sa_round_test.c), sealing (crypto_seal_test.c), the daemon's sockets and
 * worker thread (tests/cli, tests/chaos), many nodes for a long time
 * (sotto-sim).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <float.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "crypto/identity.h"
#include "learn/model.h"
#include "node/gossip.h"
#include "protocol/codec.h"
#include "protocol/codec_msg.h"
#include "protocol/msg.h"
#include "util/log.h"
#include "util/rng.h"
#include "util/util.h"

#define NMAX       6
#define T0         100000ull /* ms: the clock when a test starts */
#define WALL0      1800000000000ull
#define MAX_EVENTS 2000000 /* a run that needs more is stuck */

/* --- deterministic randombytes ---------------------------------------------- */

static struct rng test_rng;

static const char *tr_name(void)
{
	return "node_gossip_test (deterministic, never for real keys)";
}

static uint32_t tr_random(void)
{
	return (uint32_t)(rng_next(&test_rng) >> 32);
}

static void tr_buf(void *const buf, const size_t size)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < size; i += 8) {
		uint64_t w = rng_next(&test_rng);
		memcpy(p + i, &w, size - i < 8 ? size - i : 8);
	}
}

static struct randombytes_implementation tr_impl = {
        .implementation_name = tr_name,
        .random = tr_random,
        .buf = tr_buf,
};

/* --- the shell ---------------------------------------------------------------- */

struct net;

/* A message a core sent, as the shell saw it (and its bytes, for replays). */
struct sent {
	uint64_t at;
	uint8_t from, to;
	enum msg_type type;
	uint64_t rid;
	uint8_t reason;                    /* DECLINE, ABORT */
	uint32_t busy_ms;                  /* DECLINE */
	char text[MSG_MAX_TEXT_BYTES + 1]; /* DECLINE */
	bool sealed; /* under the round's keys (a KEYS_SET for this round and peer came first) */
	bool dropped;
	uint8_t *bytes;
	size_t len;
};

struct applied {
	uint64_t rid, seq, at;
	float *avg; /* a copy */
	bool evaluate;
	bool snap_is_input; /* the snapshot it came with was the node's published model */
};

struct keyrec {
	uint64_t rid, set_at, cleared_at;
	uint32_t peers; /* nodes it has this round's keys with */
	bool live;
};

struct ended {
	uint64_t rid, at;
};

struct tnode {
	struct net *net;
	uint8_t idx;
	struct identity *id;
	struct config cfg;
	char *cfg_text;
	const struct model *model;
	struct gossip *g;
	/* the "worker": its published model */
	float *x;
	size_t np;
	uint64_t steps, pub_seq, rows;
	bool done;       /* training_done */
	bool stats;      /* feature statistics: x is the site's moments, never merged into */
	bool hold_apply; /* leave APPLYs unanswered (the worker is slow) */
	bool up;         /* alive: its timers run, messages reach it */
	bool sees[NMAX]; /* peer_connected */
	double rt;       /* its RoundTimeout, s */
	struct {
		uint64_t rid, seq;
		float *avg, *snap;
	} held[8];
	size_t n_held;
	/* what the shell saw */
	struct applied *ap;
	size_t n_ap;
	struct keyrec *keys;
	size_t n_keys;
	struct ended *ends;
	size_t n_ends;
	unsigned finishes, stops, grants, evaluates;
	uint64_t busy_rid; /* before the event in progress */
};

struct env {
	uint64_t at, seq;
	uint8_t from, to;
	bool sealed;
	uint8_t *bytes;
	size_t len;
};

typedef bool (*drop_fn)(struct net *net, uint8_t from, uint8_t to, const struct msg *m);

struct net {
	size_t n;
	struct tnode nd[NMAX];
	struct model *m, *m_other;
	uint64_t now;
	struct env *q; /* in flight */
	size_t nq;
	uint64_t qseq;
	uint64_t latency;   /* ms per message */
	uint64_t us_per_kb; /* and per KiB of it: a link's rate */
	bool dup;           /* every message arrives twice */
	bool cut;           /* every message is lost */
	drop_fn drop;       /* or those it says */
	struct sent *log;   /* everything sent, in order */
	size_t nlog;
	size_t events;
};

struct opts {
	size_t n;
	int k;
	double interval, rt;
	double rt_of[NMAX];      /* 0: rt */
	const char *codec;       /* NULL: float32 */
	uint64_t rows[NMAX];     /* 0: 1000 (push-sum weight 1) */
	uint32_t peers_of[NMAX]; /* bit mask of its [Peer]s; 0: every other node */
	bool other_model[NMAX];
	const char *model_lines[NMAX]; /* its [Model] lines; NULL: "Type = logreg" */
	uint32_t moved;                /* nodes whose Endpoint the configs give as moved */
	bool test_set;                 /* [Training] TestSet: the node evaluates */
	const char *gossip_keys;       /* more [Gossip] lines, or NULL */
	bool stats; /* every node averages feature statistics (MODEL_STATS) instead of a model */
	uint32_t features; /* of the logreg model (0: 6); 400 makes a vector over 4 KiB */
	uint64_t seed;
};

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	assert_non_null(q);
	return q;
}

/* Appends one zeroed element to a growing array. */
/*
 * Appends a zeroed element; the array doubles when n reaches a power of two
 * (growing it by one each time made the key-wipe burst quadratic: minutes
 * under ASan).
 */
static size_t push_cap(size_t n)
{
	size_t c = 1;

	while (c < n + 1)
		c <<= 1;
	return c;
}
#define PUSH(arr, n)                                                                               \
	(((n) & ((n)-1)) == 0 ? ((arr) = xrealloc((arr), push_cap(n) * sizeof(*(arr)))) : (arr),   \
	 memset(&(arr)[(n)], 0, sizeof(*(arr))), &(arr)[(n)++])

static uint64_t grace_ms(const struct tnode *nd)
{
	return (uint64_t)(2000.0 * nd->rt) + 5000;
}

static struct tnode *node_of_pk(struct net *net, const uint8_t pk[32])
{
	for (size_t i = 0; i < net->n; i++) {
		if (memcmp(net->nd[i].id->sign_pk, pk, 32) == 0)
			return &net->nd[i];
	}
	return NULL;
}

static struct keyrec *key_find(struct tnode *nd, uint64_t rid)
{
	for (size_t i = 0; i < nd->n_keys; i++) {
		if (nd->keys[i].rid == rid)
			return &nd->keys[i];
	}
	return NULL;
}

static const struct ended *end_find(const struct tnode *nd, uint64_t rid)
{
	for (size_t i = 0; i < nd->n_ends; i++) {
		if (nd->ends[i].rid == rid)
			return &nd->ends[i];
	}
	return NULL;
}

/* --- ops: the core's questions ------------------------------------------------- */

static uint64_t op_snapshot(void *arg, float *x, uint64_t *steps)
{
	struct tnode *nd = arg;

	memcpy(x, nd->x, nd->np * sizeof(float));
	if (steps != NULL)
		*steps = nd->steps;
	return nd->pub_seq;
}

static bool op_training_done(void *arg)
{
	return ((struct tnode *)arg)->done;
}

static bool op_peer_connected(void *arg, const uint8_t pk[32])
{
	struct tnode *nd = arg;
	struct tnode *p = node_of_pk(nd->net, pk);

	return p != NULL && nd->sees[p->idx];
}

static uint64_t op_wall_ms(void *arg)
{
	return WALL0 + ((struct tnode *)arg)->net->now;
}

static const struct gossip_ops test_ops = {
        .snapshot = op_snapshot,
        .training_done = op_training_done,
        .peer_connected = op_peer_connected,
        .wall_ms = op_wall_ms,
};

/* --- actions ---------------------------------------------------------------------- */

static void net_send(struct net *net, struct tnode *from, const struct gossip_act *a)
{
	struct tnode *to = node_of_pk(net, a->peer);
	size_t size = msg_encoded_size(&a->msg), len = 0;
	struct sent *s;
	uint8_t *bytes;

	assert_non_null(to); /* a core only talks to pinned peers */
	assert_true(to != from);
	assert_true(size > 0);
	bytes = xrealloc(NULL, size);
	assert_int_equal(msg_encode(bytes, size, &len, &a->msg), 0);
	assert_int_equal(len, size);
	s = PUSH(net->log, net->nlog);
	s->at = net->now;
	s->from = from->idx;
	s->to = to->idx;
	s->type = a->msg.type;
	s->rid = a->msg.round_id;
	if (a->msg.type == MSG_DECLINE) {
		s->reason = a->msg.u.decline.reason;
		s->busy_ms = a->msg.u.decline.busy_ms;
		snprintf(s->text, sizeof(s->text), "%s", a->msg.u.decline.text);
	}
	if (a->msg.type == MSG_ABORT)
		s->reason = a->msg.u.abort.reason;
	s->dropped = net->cut || !to->up ||
	             (net->drop != NULL && net->drop(net, from->idx, to->idx, &a->msg));
	s->bytes = bytes;
	s->len = len;
	{
		const struct keyrec *k = key_find(from, a->msg.round_id);
		s->sealed = k != NULL && k->live && ((k->peers >> to->idx) & 1);
	}
	if (s->sealed && to->up && to->g != NULL) {
		/* the receiver opens it only with the same round's keys for the sender */
		const struct keyrec *k = key_find(to, a->msg.round_id);
		if (k == NULL || !k->live || !((k->peers >> from->idx) & 1))
			fail_msg("node %u sends message type %d under round keys that node %u "
			         "does not have",
			         from->idx, (int)a->msg.type, to->idx);
	}
	switch (a->msg.type) {
	case MSG_SHARES:
	case MSG_MASKED:
	case MSG_SPLIT:
	case MSG_SPLIT_SIG:
	case MSG_UNMASK_REQ:
	case MSG_UNMASK_RESP:
	case MSG_RESULT:
	case MSG_CHECKED:
	case MSG_COMMIT:
		if (!s->sealed)
			fail_msg("node %u sends message type %d of round %016llx to node %u "
			         "without its round keys",
			         from->idx, (int)a->msg.type, (unsigned long long)a->msg.round_id,
			         to->idx);
		break;
	default: /* INVITE, ACCEPT and KEYS (before any keys), DECLINE, ABORT, PING, STATUS */
		break;
	}
	if (s->dropped)
		return;
	for (int c = 0; c < (net->dup ? 2 : 1); c++) {
		struct env *e = PUSH(net->q, net->nq);
		e->at = net->now + net->latency + (uint64_t)len * net->us_per_kb / 1024 / 1000;
		e->seq = net->qseq++;
		e->from = from->idx;
		e->to = to->idx;
		e->sealed = s->sealed;
		e->bytes = xrealloc(NULL, len);
		memcpy(e->bytes, bytes, len);
		e->len = len;
	}
}

static void node_merge(struct tnode *nd, uint64_t seq, const float *avg, const float *snap)
{
	for (size_t j = 0; j < nd->np && !nd->stats; j++)
		nd->x[j] += avg[j] - snap[j];
	nd->pub_seq = seq;
}

static void node_end(struct tnode *nd, bool timer);

/*
 * Carries out the actions of the core's last call, in order, as daemon.c
 * does; then answers the worker's part (APPLIED) as a fast worker would.
 */
static void node_actions(struct tnode *nd)
{
	struct net *net = nd->net;
	const struct gossip_act *acts;
	uint64_t applied[8];
	size_t n, n_applied = 0;

	acts = gossip_actions(nd->g, &n);
	for (size_t i = 0; i < n; i++) {
		const struct gossip_act *a = &acts[i];

		switch (a->type) {
		case GOSSIP_SEND:
			net_send(net, nd, a);
			break;
		case GOSSIP_APPLY: {
			struct applied *ap = PUSH(nd->ap, nd->n_ap);
			ap->rid = a->round_id;
			ap->seq = a->seq;
			ap->at = net->now;
			ap->evaluate = a->evaluate;
			ap->avg = xrealloc(NULL, nd->np * sizeof(float));
			memcpy(ap->avg, a->avg, nd->np * sizeof(float));
			ap->snap_is_input = memcmp(a->snapshot, nd->x, nd->np * sizeof(float)) == 0;
			/* the checkpoint's extra: 72 bytes of counters, then the result */
			assert_non_null(a->extra);
			assert_true(a->extra_len == 72 ||
			            a->extra_len == 72 + nd->np * sizeof(float));
			if (nd->hold_apply) {
				assert_true(nd->n_held < ARRAY_LEN(nd->held));
				nd->held[nd->n_held].rid = a->round_id;
				nd->held[nd->n_held].seq = a->seq;
				nd->held[nd->n_held].avg = a->avg;
				nd->held[nd->n_held].snap = a->snapshot;
				nd->n_held++;
				break;
			}
			node_merge(nd, a->seq, a->avg, a->snapshot);
			free(a->avg);
			free(a->snapshot);
			assert_true(n_applied < ARRAY_LEN(applied));
			applied[n_applied++] = a->round_id;
			break;
		}
		case GOSSIP_GRANT:
			assert_true(a->steps >= 1 && a->cap >= a->steps);
			nd->grants++;
			break;
		case GOSSIP_EVALUATE:
			nd->evaluates++;
			break;
		case GOSSIP_FINISH:
			nd->finishes++;
			nd->done = true;
			break;
		case GOSSIP_KEYS_SET: {
			struct keyrec *k = key_find(nd, a->round_id);
			struct tnode *peer = node_of_pk(net, a->peer);
			assert_true(a->round_id != 0);
			assert_non_null(peer);
			assert_true(peer != nd);
			if (k == NULL) {
				k = PUSH(nd->keys, nd->n_keys);
				k->rid = a->round_id;
				k->set_at = net->now;
			}
			assert_true(k->cleared_at == 0); /* no keys for a round already wiped */
			k->live = true;
			k->peers |= 1u << peer->idx;
			break;
		}
		case GOSSIP_KEYS_CLEAR:
			for (size_t j = 0; j < nd->n_keys; j++) {
				if (nd->keys[j].live &&
				    (a->round_id == 0 || nd->keys[j].rid == a->round_id)) {
					nd->keys[j].live = false;
					nd->keys[j].cleared_at = net->now;
				}
			}
			break;
		case GOSSIP_STOP:
			nd->stops++;
			break;
		case GOSSIP_PHASE:
			break;
		}
	}
	for (size_t i = 0; i < n_applied; i++) {
		nd->busy_rid = gossip_busy(nd->g) ? gossip_round_id(nd->g) : 0;
		gossip_on_worker(nd->g, net->now, GOSSIP_WORKER_APPLIED, 0, applied[i], 0, 0, 0);
		node_end(nd, false);
	}
}

static void node_begin(struct tnode *nd)
{
	nd->busy_rid = gossip_busy(nd->g) ? gossip_round_id(nd->g) : 0;
}

/* After every call into a core: what ended, the actions, the timer's sanity. */
static void node_end(struct tnode *nd, bool timer)
{
	uint64_t now = nd->net->now, rid = gossip_busy(nd->g) ? gossip_round_id(nd->g) : 0;
	uint64_t next;

	assert_true(gossip_busy(nd->g) == (gossip_round_id(nd->g) != 0));
	if (nd->busy_rid != 0 && rid != nd->busy_rid) {
		struct ended *e = PUSH(nd->ends, nd->n_ends);
		e->rid = nd->busy_rid;
		e->at = now;
	}
	node_actions(nd);
	next = gossip_next_timer(nd->g);
	if (next < now || (timer && next == now))
		fail_msg("node %u asks for its timer at %llu ms at %llu ms (after a %s)", nd->idx,
		         (unsigned long long)next, (unsigned long long)now,
		         timer ? "timer" : "event");
}

static void node_start(struct tnode *nd)
{
	node_begin(nd);
	gossip_start(nd->g, nd->net->now);
	node_end(nd, false);
}

static void node_stop(struct tnode *nd)
{
	node_begin(nd);
	gossip_stop(nd->g, nd->net->now);
	node_end(nd, false);
}

static void node_timer(struct tnode *nd)
{
	node_begin(nd);
	gossip_on_timer(nd->g, nd->net->now);
	node_end(nd, true);
}

static void node_link_lost(struct tnode *nd, const struct tnode *peer)
{
	nd->sees[peer->idx] = false;
	node_begin(nd);
	gossip_on_link_lost(nd->g, nd->net->now, peer->id->sign_pk);
	node_end(nd, false);
}

static void node_msg_sealed(struct tnode *nd, const struct tnode *from, const struct msg *m,
                            bool sealed)
{
	node_begin(nd);
	gossip_on_msg(nd->g, nd->net->now, from->id->sign_pk, m, sealed);
	node_end(nd, false);
}

static void node_msg(struct tnode *nd, const struct tnode *from, const struct msg *m)
{
	node_msg_sealed(nd, from, m, false);
}

/* The worker finally takes the APPLYs it held. */
static void node_release(struct tnode *nd)
{
	nd->hold_apply = false;
	for (size_t i = 0; i < nd->n_held; i++) {
		node_merge(nd, nd->held[i].seq, nd->held[i].avg, nd->held[i].snap);
		free(nd->held[i].avg);
		free(nd->held[i].snap);
		node_begin(nd);
		gossip_on_worker(nd->g, nd->net->now, GOSSIP_WORKER_APPLIED, 0, nd->held[i].rid, 0,
		                 0, 0);
		node_end(nd, false);
	}
	nd->n_held = 0;
}

static struct node_status status_of(struct tnode *nd)
{
	struct node_status st;

	gossip_status(nd->g, &st);
	return st;
}

/*
 * No live transport key of a round that ended on its node longer than its
 * grace period ago (a reused slot may wipe one earlier, never later).
 */
static void keys_check(struct net *net)
{
	for (size_t i = 0; i < net->n; i++) {
		struct tnode *nd = &net->nd[i];

		if (!nd->up || nd->g == NULL)
			continue;
		for (size_t j = 0; j < nd->n_keys; j++) {
			const struct keyrec *k = &nd->keys[j];
			const struct ended *e;
			uint64_t end;

			if (!k->live || (gossip_busy(nd->g) && gossip_round_id(nd->g) == k->rid))
				continue;
			e = end_find(nd, k->rid);
			/* no end recorded: it ended in the call that set them */
			end = e != NULL ? e->at : k->set_at;
			if (net->now > end + grace_ms(nd))
				fail_msg("node %zu: keys of round %016llx still set at %llu ms, "
				         "round ended at %llu ms",
				         i, (unsigned long long)k->rid,
				         (unsigned long long)net->now, (unsigned long long)end);
		}
	}
}

/* --- the loop ------------------------------------------------------------------------ */

static void deliver(struct net *net, size_t qi)
{
	struct env e = net->q[qi];
	struct tnode *to = &net->nd[e.to];
	struct msg m;

	memmove(&net->q[qi], &net->q[qi + 1], (net->nq - qi - 1) * sizeof(*net->q));
	net->nq--;
	assert_true(e.at >= net->now);
	net->now = e.at;
	if (to->up) {
		assert_int_equal(msg_decode(&m, e.bytes, e.len), 0);
		node_msg_sealed(to, &net->nd[e.from], &m, e.sealed);
	}
	free(e.bytes);
}

/* Runs the next event due at or before `until`; false if there is none. */
static bool net_step(struct net *net, uint64_t until)
{
	uint64_t tm = UINT64_MAX, tt = UINT64_MAX;
	size_t qi = 0, ti = 0;

	for (size_t i = 0; i < net->nq; i++) {
		if (net->q[i].at < tm || (net->q[i].at == tm && net->q[i].seq < net->q[qi].seq)) {
			tm = net->q[i].at;
			qi = i;
		}
	}
	for (size_t i = 0; i < net->n; i++) {
		uint64_t t;

		if (!net->nd[i].up || net->nd[i].g == NULL)
			continue;
		t = gossip_next_timer(net->nd[i].g);
		if (t < tt) {
			tt = t;
			ti = i;
		}
	}
	if (MIN(tm, tt) > until || MIN(tm, tt) == UINT64_MAX)
		return false;
	if (++net->events > MAX_EVENTS)
		fail_msg("more than %d events: the cores do not settle", MAX_EVENTS);
	if (tm <= tt) {
		deliver(net, qi);
	} else {
		assert_true(tt >= net->now); /* the clock never runs backwards */
		net->now = tt;
		node_timer(&net->nd[ti]);
	}
	keys_check(net);
	return true;
}

typedef bool (*until_fn)(struct net *net, uint64_t arg);

/* Runs events until `stop` says so or nothing is due by `until` (then the clock is there). */
static void net_run(struct net *net, uint64_t until, until_fn stop, uint64_t arg)
{
	for (;;) {
		if (stop != NULL && stop(net, arg))
			return;
		if (!net_step(net, until))
			break;
	}
	if (stop != NULL)
		fail_msg("the awaited state did not come by %llu ms", (unsigned long long)until);
	if (until != UINT64_MAX && net->now < until)
		net->now = until;
}

/* Node `arg & 0xff` saw (arg >> 8) rounds end, and no message is in flight. */
static bool stop_ends(struct net *net, uint64_t arg)
{
	return net->nd[arg & 0xff].n_ends >= (arg >> 8) && net->nq == 0;
}

#define ENDS(node, count) (((uint64_t)(count) << 8) | (node))

/* --- set-up ---------------------------------------------------------------------------- */

static char *config_text(const struct net *net, const struct opts *o, size_t i)
{
	char *t = xrealloc(NULL, 16384), b64[IDENTITY_B64_BYTES];
	size_t len = 0;
	double rt = o->rt_of[i] > 0 ? o->rt_of[i] : o->rt;
	int w;

	w = snprintf(t, 16384,
	             "[Node]\nName = n%zu\nPrivateKeyFile = n%zu.key\nListen = ipc:///tmp/gt/%zu\n"
	             "DataDir = /tmp/gt/%zu\n\n[Model]\n%s\n[Training]\n"
	             "Dataset = train.bin\n%sLocalEpochs = 0.5\n\n[Gossip]\nGroupSize = %d\n"
	             "Interval = %g\nRoundTimeout = %g\nCodec = %s\n%s",
	             i, i, i, i, o->model_lines[i] != NULL ? o->model_lines[i] : "Type = logreg\n",
	             o->test_set ? "TestSet = test.bin\n" : "", o->k, o->interval, rt,
	             o->codec != NULL ? o->codec : "float32",
	             o->gossip_keys != NULL ? o->gossip_keys : "");
	assert_true(w > 0 && w < 16384);
	len = (size_t)w;
	for (size_t j = 0; j < o->n; j++) {
		if (j == i || (o->peers_of[i] != 0 && !((o->peers_of[i] >> j) & 1)))
			continue;
		identity_public_encode(b64, net->nd[j].id->sign_pk);
		w = snprintf(
		        t + len, 16384 - len,
		        "\n[Peer]\nName = n%zu\nPublicKey = %s\nEndpoint = ipc:///tmp/gt/%zu%s\n",
		        j, b64, j, (o->moved >> j) & 1 ? "-moved" : "");
		assert_true(w > 0 && (size_t)w < 16384 - len);
		len += (size_t)w;
	}
	return t;
}

static struct model *model_make(uint32_t classes, uint32_t features)
{
	struct model_spec spec;
	struct model *m = NULL;

	memset(&spec, 0, sizeof(spec));
	spec.type = MODEL_LOGREG;
	spec.channels = 1;
	spec.height = 1;
	spec.width = features ? features : 6;
	spec.classes = classes;
	assert_int_equal(model_alloc(&m, &spec, 1), 0);
	return m;
}

/*
 * The layout of a statistics phase over STATS_DIMS features (node/
 * stats_phase.c makes the same): means, then second moments, one segment
 * per feature. Not a model: only its layout is set, which model_free takes.
 */
#define STATS_DIMS 3
static struct model *stats_model_make(void)
{
	struct model *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	m->spec.type = MODEL_STATS;
	m->n_params = 2 * STATS_DIMS;
	for (size_t s = 0; s < m->n_params; s++) {
		snprintf(m->segs[s].name, sizeof(m->segs[s].name), "stat.%u", (unsigned)s);
		m->segs[s].offset = s;
		m->segs[s].length = 1;
		m->segs[s].ndim = 1;
		m->segs[s].shape[0] = 1;
	}
	m->n_segs = m->n_params;
	return m;
}

/* A core for node i from its config (extra: a checkpoint's, or NULL). */
static int node_core(struct tnode *nd, const uint8_t *extra, size_t extra_len)
{
	struct gossip_ops ops = test_ops;

	ops.arg = nd;
	return gossip_alloc(&nd->g, &nd->cfg, nd->id, nd->model, &ops, extra, extra_len, nd->rows,
	                    40);
}

/* The node's model before any round: inputs in [-0.8, 0.8], 0.9 first in every layer. */
static void node_input(struct tnode *nd, float *x)
{
	for (size_t j = 0; j < nd->np; j++)
		x[j] = 0.8f * sinf((float)(nd->idx * 7 + 1) + 0.37f * (float)j);
	for (size_t s = 0; s < nd->model->n_segs; s++)
		x[nd->model->segs[s].offset] = nd->idx == 0 ? 0.9f : -0.5f;
}

static struct net *net_new(const struct opts *o)
{
	struct net *net = calloc(1, sizeof(*net));

	assert_non_null(net);
	assert_true(o->n <= NMAX);
	rng_seed(&test_rng, o->seed ? o->seed : 7);
	net->n = o->n;
	net->now = T0;
	net->m = o->stats ? stats_model_make() : model_make(3, o->features);
	net->m_other = model_make(4, o->features);
	for (size_t i = 0; i < o->n; i++) {
		struct tnode *nd = &net->nd[i];
		uint8_t seed[IDENTITY_SEED_BYTES];

		memset(seed, 0x5a, sizeof(seed));
		seed[0] = (uint8_t)(i + 1);
		nd->id = identity_from_seed(seed);
		assert_non_null(nd->id);
	}
	for (size_t i = 0; i < o->n; i++) {
		struct tnode *nd = &net->nd[i];

		nd->net = net;
		nd->idx = (uint8_t)i;
		nd->up = true;
		for (size_t j = 0; j < NMAX; j++)
			nd->sees[j] = true;
		nd->rt = o->rt_of[i] > 0 ? o->rt_of[i] : o->rt;
		nd->rows = o->rows[i] ? o->rows[i] : 1000;
		nd->model = o->other_model[i] ? net->m_other : net->m;
		nd->np = nd->model->n_params;
		nd->x = xrealloc(NULL, nd->np * sizeof(float));
		node_input(nd, nd->x);
		if (o->stats) {
			/* the site's means, then its second moments (mean^2 + a variance) */
			for (size_t j = 0; j < STATS_DIMS; j++)
				nd->x[STATS_DIMS + j] =
				        nd->x[j] * nd->x[j] + 0.1f * (float)(i + j + 1);
			nd->stats = true;
			nd->done = true;
		}
		nd->cfg_text = config_text(net, o, i);
		if (config_load_virtual(&nd->cfg, "test.conf", nd->cfg_text) != 0) {
			config_errors_print(&nd->cfg, stderr);
			fail_msg("the test's config of node %zu is refused", i);
		}
		assert_int_equal(node_core(nd, NULL, 0), 0);
	}
	return net;
}

static void net_free(struct net *net)
{
	for (size_t i = 0; i < net->n; i++) {
		struct tnode *nd = &net->nd[i];

		gossip_free(nd->g);
		for (size_t j = 0; j < nd->n_held; j++) {
			free(nd->held[j].avg);
			free(nd->held[j].snap);
		}
		for (size_t j = 0; j < nd->n_ap; j++)
			free(nd->ap[j].avg);
		free(nd->ap);
		free(nd->keys);
		free(nd->ends);
		free(nd->x);
		free(nd->cfg_text);
		config_fini(&nd->cfg);
		identity_free(nd->id);
	}
	for (size_t i = 0; i < net->nq; i++)
		free(net->q[i].bytes);
	free(net->q);
	for (size_t i = 0; i < net->nlog; i++)
		free(net->log[i].bytes);
	free(net->log);
	model_free(net->m);
	model_free(net->m_other);
	free(net);
}

static struct opts opts_default(size_t n)
{
	struct opts o;

	memset(&o, 0, sizeof(o));
	o.n = n;
	o.k = 4;
	o.interval = 1;
	o.rt = 10;
	return o;
}

/* Node i sees (peer_connected) exactly the nodes of mask. */
static void node_sees_only(struct tnode *nd, uint32_t mask)
{
	for (size_t j = 0; j < NMAX; j++)
		nd->sees[j] = (mask >> j) & 1;
}

/* --- what the log says ------------------------------------------------------------------ */

/* The first message of `type` from -> to (UINT8_MAX: anyone) of round rid (0: any). */
static const struct sent *sent_find(const struct net *net, uint8_t from, uint8_t to,
                                    enum msg_type type, uint64_t rid)
{
	for (size_t i = 0; i < net->nlog; i++) {
		const struct sent *s = &net->log[i];
		if (s->type == type && (from == UINT8_MAX || s->from == from) &&
		    (to == UINT8_MAX || s->to == to) && (rid == 0 || s->rid == rid))
			return s;
	}
	return NULL;
}

static size_t sent_count(const struct net *net, uint8_t from, enum msg_type type, uint64_t rid)
{
	size_t c = 0;

	for (size_t i = 0; i < net->nlog; i++) {
		const struct sent *s = &net->log[i];
		c += s->from == from && s->type == type && (rid == 0 || s->rid == rid);
	}
	return c;
}

/* The round of node i's first INVITE. */
static uint64_t first_invite(const struct net *net, uint8_t i)
{
	const struct sent *s = sent_find(net, i, UINT8_MAX, MSG_INVITE, 0);

	assert_non_null(s);
	return s->rid;
}

static const struct applied *applied_of(const struct tnode *nd, uint64_t rid)
{
	for (size_t i = 0; i < nd->n_ap; i++) {
		if (nd->ap[i].rid == rid)
			return &nd->ap[i];
	}
	return NULL;
}

static size_t live_keys(const struct tnode *nd)
{
	size_t c = 0;

	for (size_t i = 0; i < nd->n_keys; i++)
		c += nd->keys[i].live;
	return c;
}

/*
 * Every exit path ends with the keys wiped: all messages are lost from now
 * on, the clock runs until every round in flight has ended (a member gives
 * up after twice its RoundTimeout) and for every node's grace period after
 * that, and then no node holds keys of any round.
 */
static void net_drain_keys(struct net *net)
{
	uint64_t wait = 0;

	for (size_t i = 0; i < net->n; i++)
		wait = MAX(wait, (uint64_t)(2000.0 * net->nd[i].rt) + grace_ms(&net->nd[i]));
	net->cut = true;
	for (size_t i = 0; i < net->nq; i++)
		free(net->q[i].bytes);
	net->nq = 0;
	net_run(net, net->now + wait + 1, NULL, 0);
	for (size_t i = 0; i < net->n; i++) {
		if (net->nd[i].up && live_keys(&net->nd[i]) != 0)
			fail_msg("node %zu holds the keys of %zu rounds after every grace period",
			         i, live_keys(&net->nd[i]));
	}
}

/*
 * Checks the APPLY of round rid on every node of `members`: the same
 * average everywhere, and that average is the push-sum weighted mean of the
 * members' inputs (saved in in[]) within what the round's codec can be off
 * by: each member's value is off by less than one quantum (stochastic
 * rounding), so the sum by less than k quanta, and then floats.
 */
static void check_round_mean(struct net *net, uint64_t rid, uint32_t members, float *const *in)
{
	const struct sent *inv = sent_find(net, UINT8_MAX, UINT8_MAX, MSG_INVITE, rid);
	const struct applied *first = NULL;
	struct codec_params *cp = calloc(1, sizeof(*cp));
	struct msg m;
	double rho_sum = 0;
	size_t np = net->m->n_params;

	assert_non_null(cp);
	assert_non_null(inv);
	assert_int_equal(msg_decode(&m, inv->bytes, inv->len), 0);
	assert_int_equal(codec_from_msg(cp, &m.u.invite.codec), 0);
	for (size_t i = 0; i < net->n; i++) {
		if ((members >> i) & 1)
			rho_sum += MIN(MAX((double)net->nd[i].rows / 1000.0, 0.01), 64.0);
	}
	for (size_t i = 0; i < net->n; i++) {
		const struct applied *ap;

		if (!((members >> i) & 1)) {
			assert_null(applied_of(&net->nd[i], rid));
			continue;
		}
		ap = applied_of(&net->nd[i], rid);
		if (ap == NULL)
			fail_msg("node %zu did not apply round %016llx", i,
			         (unsigned long long)rid);
		assert_true(ap->snap_is_input);
		if (first == NULL)
			first = ap;
		else /* one sum, decoded the same way by everyone */
			assert_memory_equal(ap->avg, first->avg, np * sizeof(float));
	}
	assert_non_null(first);
	for (size_t s = 0; s < cp->nseg; s++) {
		double q = (double)cp->seg[s].quantum;
		double tol = (double)cp->k * q / rho_sum;

		for (size_t j = cp->seg[s].offset; j < cp->seg[s].offset + cp->seg[s].length; j++) {
			double mean = 0;
			for (size_t i = 0; i < net->n; i++) {
				if ((members >> i) & 1)
					mean += (double)net->nd[i].rows / 1000.0 * (double)in[i][j];
			}
			mean /= rho_sum;
			if (fabs((double)first->avg[j] - mean) >
			    tol + 4 * FLT_EPSILON * (1 + fabs(mean)))
				fail_msg("coordinate %zu: average %.9g, mean of the inputs %.9g, "
				         "quantum %g",
				         j, (double)first->avg[j], mean, q);
		}
	}
	free(cp);
}

/* Copies of every node's input now (before any merge). */
static void inputs_save(struct net *net, float **in)
{
	for (size_t i = 0; i < net->n; i++) {
		in[i] = xrealloc(NULL, net->nd[i].np * sizeof(float));
		memcpy(in[i], net->nd[i].x, net->nd[i].np * sizeof(float));
	}
}

static void inputs_free(struct net *net, float **in)
{
	for (size_t i = 0; i < net->n; i++)
		free(in[i]);
}

/* ===== 1. a group round ================================================================== */

struct round_case {
	const char *name;
	const char *codec;
	uint64_t rows[4];
	const char *gossip; /* more [Gossip] lines, or NULL */
};

static const struct round_case round_cases[] = {
        {"float32, equal weights: the plain mean", "float32", {1000, 1000, 1000, 1000}, NULL},
        {"float32, push-sum weights 1, 2, 0.5, 1.5", "float32", {1000, 2000, 500, 1500}, NULL},
        {"fixed 8 bits, push-sum weights", "fixed", {1000, 2000, 500, 1500}, NULL},
        {"fixed 8 bits, scatter path", "fixed", {1000, 2000, 500, 1500}, "DataPath = scatter\n"},
};

/*
 * Four nodes, node 0 starts a round with the three others: every member ends
 * with the same APPLY of that round, its average is the weighted mean of
 * the four inputs within the codec's quantum, every member's weight is the
 * group's mean weight (push-sum), and the counters say one round.
 */
static void test_group_round(void **state)
{
	(void)state;
	for (size_t c = 0; c < ARRAY_LEN(round_cases); c++) {
		const struct round_case *rc = &round_cases[c];
		struct opts o = opts_default(4);
		float *in[NMAX];
		struct net *net;
		double rho_mean = 0;
		uint64_t rid;

		print_message("case: %s\n", rc->name);
		o.codec = rc->codec;
		o.gossip_keys = rc->gossip;
		for (size_t i = 0; i < 4; i++) {
			o.rows[i] = rc->rows[i];
			rho_mean += (double)rc->rows[i] / 4000.0;
		}
		net = net_new(&o);
		inputs_save(net, in);
		node_start(&net->nd[0]);
		net_run(net, T0 + 5000, stop_ends, ENDS(0, 1));
		rid = first_invite(net, 0);
		assert_int_equal(sent_count(net, 0, MSG_INVITE, rid), 3);
		check_round_mean(net, rid, 0xf, in);
		for (size_t i = 0; i < 4; i++) {
			struct node_status st = status_of(&net->nd[i]);
			assert_int_equal(net->nd[i].n_ap, 1);
			assert_int_equal(st.rounds_completed, 1);
			assert_int_equal(st.rounds_aborted, 0);
			assert_int_equal(st.rounds_initiated, i == 0 ? 1 : 0);
			/* DataPath auto (the default) on unmeasured links: the star */
			assert_int_equal(st.rounds_scatter, i == 0 && rc->gossip != NULL ? 1 : 0);
			assert_string_equal(st.state, "idle");
			assert_int_equal(st.round_id, 0);
			assert_true(fabs(st.weight - rho_mean) < 1e-6);
			/* the round's frames went under round keys on every member */
			assert_non_null(key_find(&net->nd[i], rid));
			assert_int_equal(key_find(&net->nd[i], rid)->peers, 0xfu & ~(1u << i));
			assert_true(st.msgs_round_sealed > 0);
			assert_true(st.peers[0].rounds + st.peers[1].rounds + st.peers[2].rounds ==
			            3);
		}
		net_drain_keys(net);
		inputs_free(net, in);
		net_free(net);
	}
}

/*
 * [Gossip] Rank (docs/codec.md, "Low-rank averaging"): a new node's first
 * round is a chain of five with the same members: basis, sketch (not
 * applied), project, sketch, project, linked by their INVITEs' refs. After
 * it the models are made to disagree along one direction (as local
 * training would), plus noise, and node 0's next chain keeps the group's mean exactly where it was
 * and removes nearly all of that disagreement (all but 0.4% here: the 8-bit sketch's rounding in
 * Q), where the basis round alone, on a random subspace of rank 2 of
 * 2,000, removes about 0.1% of it. Restarted from its checkpoint, the node
 * first takes WarmupRounds (1) full rounds, then chains again.
 */
static const uint8_t *extra_of(struct tnode *nd, size_t *len);
static int node_restart(struct tnode *nd, const uint8_t *extra, size_t len);

/* The low-rank fields of node 0's INVITEs to node 1 so far, in order (at most max). */
static size_t lr_invites(const struct net *net, size_t max, uint64_t *kinds, uint64_t *refs,
                         uint64_t *rids)
{
	size_t n = 0;

	for (size_t i = 0; i < net->nlog && n < max; i++) {
		struct msg m;
		if (net->log[i].type != MSG_INVITE || net->log[i].from != 0 || net->log[i].to != 1)
			continue;
		assert_int_equal(msg_decode(&m, net->log[i].bytes, net->log[i].len), 0);
		assert_int_equal(m.u.invite.lr_rank, m.u.invite.lr_kind ? 2 : 0);
		kinds[n] = m.u.invite.lr_kind;
		refs[n] = m.u.invite.lr_ref;
		rids[n++] = net->log[i].rid;
	}
	return n;
}

static void test_lowrank_chain(void **state)
{
	struct opts o = opts_default(4);
	struct net *net;
	size_t np, wlen = 3 * 2000, nk = 0, len;
	double mean_before[3 * 2000], d_before = 0, d_after = 0;
	uint64_t kinds[12], refs[12], rids[12];
	float *in[NMAX];
	const uint8_t *e;
	uint8_t *saved;

	(void)state;
	o.features = 2000; /* logreg: a 3 x 2000 weight, projected at rank 2 */
	o.gossip_keys = "Rank = 2\nWarmupRounds = 1\n";
	net = net_new(&o);
	np = net->m->n_params;
	assert_true(np > wlen);
	/* A new node starts with a chain: no full rounds first (the models agree). */
	node_start(&net->nd[0]);
	net_run(net, T0 + 30000, stop_ends, ENDS(0, 5));
	/* Disagreement along one direction per row, and some noise. */
	for (size_t i = 0; i < 4; i++) {
		float *x = net->nd[i].x;
		for (size_t j = 0; j < wlen; j++)
			x[j] += 0.3f * (float)((int)i - 1) * sinf(0.01f * (float)(j % 2000)) *
			                (float)(1 + j / 2000) +
			        0.001f * cosf((float)(i * 31 + j));
	}
	for (size_t j = 0; j < wlen; j++) {
		mean_before[j] = 0;
		for (size_t i = 0; i < 4; i++)
			mean_before[j] += net->nd[i].x[j] / 4.0;
		for (size_t i = 0; i < 4; i++)
			d_before += (net->nd[i].x[j] - mean_before[j]) *
			            (net->nd[i].x[j] - mean_before[j]);
	}
	inputs_save(net, in);
	net_run(net, net->now + 30000, stop_ends, ENDS(0, 10));
	nk = lr_invites(net, 10, kinds, refs, rids);
	assert_int_equal(nk, 10);
	for (size_t c = 0; c < 10; c += 5) {
		assert_int_equal(kinds[c], MSG_LR_BASIS);
		assert_int_equal(kinds[c + 1], MSG_LR_SKETCH);
		assert_int_equal(kinds[c + 2], MSG_LR_PROJECT);
		assert_int_equal(kinds[c + 3], MSG_LR_SKETCH);
		assert_int_equal(kinds[c + 4], MSG_LR_PROJECT);
		assert_true(refs[c] != 0);
		for (size_t r = c + 1; r < c + 5; r++)
			assert_true(refs[r] == rids[r - 1]);
	}
	/* Sketches go centred in an 8-bit ring (the exact rule would ask 10),
	 * with the checksum; the other rounds' codecs are unchanged. */
	for (size_t i = 0; i < net->nlog; i++) {
		struct msg m;
		if (net->log[i].type != MSG_INVITE || net->log[i].from != 0 || net->log[i].to != 1)
			continue;
		assert_int_equal(msg_decode(&m, net->log[i].bytes, net->log[i].len), 0);
		for (uint16_t sg = 0; sg < m.u.invite.codec.n_segments; sg++) {
			const struct msg_segment *ms = &m.u.invite.codec.segments[sg];
			if (m.u.invite.lr_kind == MSG_LR_SKETCH) {
				assert_int_equal(ms->mode, CODEC_SEG_CENTERED);
				assert_int_equal(ms->width, 8);
				assert_true(m.u.invite.codec.flags & CODEC_F_CHECK);
			} else {
				assert_int_not_equal(ms->mode, CODEC_SEG_CENTERED);
			}
		}
	}
	/* "I am free" (an unsolicited STATUS) only when a chain ends, not
	 * between its rounds, when the node declines other rounds: node 1
	 * was in two chains of five rounds. */
	{
		size_t ann = 0;
		for (size_t i = 0; i < net->nlog; i++) {
			struct msg m;
			if (net->log[i].type != MSG_STATUS || net->log[i].from != 1 ||
			    net->log[i].to != 2)
				continue;
			assert_int_equal(msg_decode(&m, net->log[i].bytes, net->log[i].len), 0);
			ann += m.u.status.seq == 0 && !m.u.status.busy;
		}
		assert_int_equal(ann, 2);
	}
	for (size_t i = 0; i < 4; i++) {
		struct node_status st = status_of(&net->nd[i]);
		/* basis and projects applied; the sketches only gave bases */
		for (size_t r = 0; r < 10; r++) {
			if (kinds[r] == MSG_LR_SKETCH)
				assert_null(applied_of(&net->nd[i], rids[r]));
			else
				assert_non_null(applied_of(&net->nd[i], rids[r]));
		}
		assert_int_equal(st.rounds_completed, 10);
		assert_int_equal(st.rounds_aborted, 0);
	}
	for (size_t j = 0; j < wlen; j++) {
		double mean = 0;
		for (size_t i = 0; i < 4; i++)
			mean += net->nd[i].x[j] / 4.0;
		if (fabs(mean - mean_before[j]) > 1e-5)
			fail_msg("coordinate %zu: the mean moved from %.9g to %.9g", j,
			         mean_before[j], mean);
		for (size_t i = 0; i < 4; i++)
			d_after += (net->nd[i].x[j] - mean) * (net->nd[i].x[j] - mean);
	}
	/* The biases are not projected: they took the mean. */
	for (size_t j = wlen; j < np; j++)
		for (size_t i = 1; i < 4; i++)
			assert_true(fabsf(net->nd[i].x[j] - net->nd[0].x[j]) < 1e-6f);
	print_message("disagreement left after the chain: %.4f\n", d_after / d_before);
	assert_true(d_after < 0.02 * d_before);

	/* Resumed from a checkpoint, a node first takes WarmupRounds full rounds. */
	e = extra_of(&net->nd[0], &len);
	saved = xrealloc(NULL, len);
	memcpy(saved, e, len);
	assert_int_equal(node_restart(&net->nd[0], saved, len), 0);
	free(saved);
	node_start(&net->nd[0]);
	net_run(net, net->now + 30000, stop_ends, ENDS(0, 12));
	nk = lr_invites(net, 12, kinds, refs, rids);
	assert_int_equal(nk, 12);
	assert_int_equal(kinds[10], MSG_LR_NONE);
	assert_int_equal(kinds[11], MSG_LR_BASIS);
	net_drain_keys(net);
	inputs_free(net, in);
	net_free(net);
}

/*
 * A chain's project round needs the round before it applied. When the
 * initiator's worker is still busy with that result as the sketch ends,
 * the project round starts once the worker posts APPLIED, and the chain
 * goes on (before, the chain ended there: in sotto-sim with GroupSize 3,
 * four chains in ten).
 */
static void test_lowrank_chain_waits_for_apply(void **state)
{
	struct opts o = opts_default(4);
	struct net *net;
	uint64_t kinds[6], refs[6], rids[6];

	(void)state;
	o.features = 2000;
	o.gossip_keys = "Rank = 2\nWarmupRounds = 1\n";
	net = net_new(&o);
	net->nd[0].hold_apply = true;
	node_start(&net->nd[0]);
	net_run(net, T0 + 30000, stop_ends, ENDS(0, 2));
	/* basis and sketch done, the basis result not applied: no project yet */
	assert_int_equal(net->nd[0].n_held, 1);
	assert_int_equal(lr_invites(net, 6, kinds, refs, rids), 2);
	assert_int_equal(kinds[0], MSG_LR_BASIS);
	assert_int_equal(kinds[1], MSG_LR_SKETCH);
	node_release(&net->nd[0]);
	net_run(net, net->now + 30000, stop_ends, ENDS(0, 5));
	assert_int_equal(lr_invites(net, 6, kinds, refs, rids), 5);
	assert_int_equal(kinds[2], MSG_LR_PROJECT);
	assert_int_equal(kinds[3], MSG_LR_SKETCH);
	assert_int_equal(kinds[4], MSG_LR_PROJECT);
	for (size_t r = 1; r < 5; r++)
		assert_true(refs[r] == rids[r - 1]);
	for (size_t i = 0; i < 4; i++) {
		struct node_status st = status_of(&net->nd[i]);
		assert_int_equal(st.rounds_completed, 5);
		assert_int_equal(st.rounds_aborted, 0);
	}
	net_drain_keys(net);
	net_free(net);
}

/* Rounds = 2: a node says STOP once it completed its second round, not before. */
static void test_rounds_limit_stops(void **state)
{
	struct opts o = opts_default(4);
	struct net *net;

	(void)state;
	o.gossip_keys = "Rounds = 2\n";
	net = net_new(&o);
	node_start(&net->nd[0]);
	net_run(net, T0 + 10000, stop_ends, ENDS(0, 1));
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(net->nd[i].stops, 0);
	net_run(net, T0 + 20000, stop_ends, ENDS(0, 2));
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(gossip_rounds_completed(net->nd[i].g), 2);
		assert_int_equal(net->nd[i].stops, 1);
	}
	net_free(net);
}

/*
 * With a TestSet: one evaluation at start, then the APPLY of every
 * EvalEvery-th completed round asks for one (EvalEvery = 2 here); a node
 * with no TestSet never evaluates. The worker's EVALUATED report is counted
 * in the status.
 */
static void test_evaluate_every(void **state)
{
	struct opts o = opts_default(4);
	struct net *net;

	(void)state;
	o.test_set = true;
	o.gossip_keys = "EvalEvery = 2\n";
	net = net_new(&o);
	node_start(&net->nd[0]);
	assert_int_equal(net->nd[0].evaluates, 1);
	net_run(net, T0 + 30000, stop_ends, ENDS(0, 5));
	for (size_t i = 0; i < 4; i++) {
		struct tnode *nd = &net->nd[i];
		assert_int_equal(nd->n_ap, 5);
		for (size_t r = 0; r < 5; r++)
			assert_int_equal(nd->ap[r].evaluate, r % 2 == 1);
	}
	node_begin(&net->nd[1]);
	gossip_on_worker(net->nd[1].g, net->now, GOSSIP_WORKER_EVALUATED, 0, 0, 0, 0.75, 0.5);
	node_end(&net->nd[1], false);
	assert_int_equal(status_of(&net->nd[1]).evals, 1);
	assert_true(status_of(&net->nd[1]).accuracy == 0.75);
	net_free(net);

	o = opts_default(4);
	net = net_new(&o);
	node_start(&net->nd[0]);
	net_run(net, T0 + 30000, stop_ends, ENDS(0, 2));
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(net->nd[i].evaluates, 0);
		for (size_t r = 0; r < net->nd[i].n_ap; r++)
			assert_false(net->nd[i].ap[r].evaluate);
	}
	net_free(net);
}

/* ===== 2. invitations =================================================================== */

enum setup { S_NONE, S_STOPPING, S_DONE };

struct invite_case {
	const char *name;
	double rt_member; /* node 1's RoundTimeout (node 0's is 10 s) */
	bool unknown_member;
	bool other_model;
	enum setup setup;
	int reason;         /* of node 1's DECLINE; -1: it joins */
	const char *model;  /* node 1's [Model] lines; NULL: "Type = logreg" */
	const char *text;   /* in its DECLINE's text; NULL: not checked */
	const char *others; /* the other nodes' [Model] lines; NULL: "Type = logreg" */
};

static const struct invite_case invite_cases[] = {
        {"joins: its RoundTimeout is longer", 20, false, false, S_NONE, -1, NULL, NULL, NULL},
        {"joins: its RoundTimeout is the phase timeout", 10, false, false, S_NONE, -1, NULL, NULL,
         NULL},
        {"declines: phase timeout above its RoundTimeout", 9.999, false, false, S_NONE,
         MSG_REASON_PARAMS, NULL, NULL, NULL},
        {"declines: a member it has not pinned", 10, true, false, S_NONE, MSG_REASON_UNKNOWN_PEER,
         NULL, NULL, NULL},
        {"declines: a codec for another model", 10, false, true, S_NONE, MSG_REASON_PARAMS, NULL,
         "[Model] differs (the datasets' shapes?): the invitation's has 21 parameters in 2 "
         "layers, this node's 28 in 2",
         NULL},
        {"declines: another [Model] Seed", 10, false, false, S_NONE, MSG_REASON_PARAMS,
         "Type = logreg\nSeed = 9\n", "[Model] Seed differs: 1 in the invitation, 9 here", NULL},
        {"declines: another [Model] Type", 10, false, false, S_NONE, MSG_REASON_PARAMS,
         "Type = mlp\n", "[Model] Type differs: logreg in the invitation, mlp here", NULL},
        {"declines: another [Model] Hidden", 10, false, false, S_NONE, MSG_REASON_PARAMS,
         "Type = mlp\nHidden = 64,32\n",
         "[Model] Hidden differs: 128 in the invitation, 64,32 here", "Type = mlp\n"},
        {"declines: it is stopping", 10, false, false, S_STOPPING, MSG_REASON_SHUTDOWN, NULL, NULL,
         NULL},
        {"joins: its training is done (it only averages)", 10, false, false, S_DONE, -1, NULL, NULL,
         NULL},
};

/*
 * Five nodes; node 0 sees only nodes 1-3 connected, so it invites exactly
 * them. Node 1 is set up per case and answers ACCEPT or a DECLINE with the
 * case's reason; a decliner takes no part (no keys, no APPLY, idle) and
 * the round goes on without it (3 members are enough for t = 3).
 */
static void test_invite_rules(void **state)
{
	(void)state;
	for (size_t c = 0; c < ARRAY_LEN(invite_cases); c++) {
		const struct invite_case *ic = &invite_cases[c];
		struct opts o = opts_default(5);
		struct tnode *n1;
		const struct sent *reply;
		float *in[NMAX];
		struct net *net;
		uint64_t rid;

		print_message("case: %s\n", ic->name);
		o.rt_of[1] = ic->rt_member;
		if (ic->unknown_member)
			o.peers_of[1] = (1u << 0) | (1u << 2) | (1u << 4); /* not node 3 */
		o.other_model[1] = ic->other_model;
		o.model_lines[1] = ic->model;
		for (size_t i = 0; i < o.n; i++)
			if (i != 1)
				o.model_lines[i] = ic->others;
		net = net_new(&o);
		n1 = &net->nd[1];
		inputs_save(net, in);
		node_sees_only(&net->nd[0], 0xe);
		if (ic->setup == S_STOPPING)
			node_stop(n1);
		if (ic->setup == S_DONE)
			n1->done = true;
		node_start(&net->nd[0]);
		net_run(net, T0 + 5000, stop_ends, ENDS(0, 1));
		rid = first_invite(net, 0);
		assert_non_null(sent_find(net, 0, 1, MSG_INVITE, rid));
		reply = sent_find(net, 1, 0, ic->reason < 0 ? MSG_ACCEPT : MSG_DECLINE, rid);
		assert_non_null(reply);
		if (ic->reason < 0) {
			assert_null(sent_find(net, 1, 0, MSG_DECLINE, rid));
			check_round_mean(net, rid, 0xf, in);
			assert_int_equal(n1->finishes, 0);
		} else {
			assert_int_equal(reply->reason, ic->reason);
			/* a model that differs is named: the setting, or both shapes */
			if (ic->text != NULL && strstr(reply->text, ic->text) == NULL)
				fail_msg("DECLINE text '%s', expected '%s'", reply->text, ic->text);
			assert_null(sent_find(net, 1, 0, MSG_ACCEPT, rid));
			assert_int_equal(sent_count(net, 1, MSG_DECLINE, 0), 1);
			assert_null(key_find(n1, rid));
			assert_int_equal(n1->n_ends, 0); /* never in the round */
			assert_string_equal(status_of(n1).state,
			                    ic->setup == S_STOPPING ? "stopping" : "idle");
			assert_int_equal(status_of(n1).invites_declined,
			                 0); /* only "busy" counts */
			check_round_mean(net, rid, 0xd, in);
		}
		inputs_free(net, in);
		net_free(net);
	}
}

/*
 * Busy in another round: nodes 0 and 4 both see only nodes 1-3 and start a
 * round at the same instant; node 0's INVITEs go first, so 1-3 join its
 * round and decline node 4's with "busy" (counted in invites_declined).
 * Node 4's round aborts as soon as the three declines are in, without
 * waiting for its deadline; node 0's completes.
 */
static bool drop_results_of_0(struct net *net, uint8_t from, uint8_t to, const struct msg *m)
{
	(void)net;
	(void)to;
	return from == 0 && m->type == MSG_RESULT;
}

static void test_invite_declined_busy(void **state)
{
	struct opts o = opts_default(5);
	struct net *net;
	uint64_t r0, r4, t;
	size_t mark, busy;
	float *in[NMAX];

	(void)state;
	net = net_new(&o);
	net->latency = 5; /* rounds that take time, so that their length is measured */
	inputs_save(net, in);
	node_sees_only(&net->nd[0], 0xe);
	node_sees_only(&net->nd[4], 0xe);
	node_start(&net->nd[0]);
	node_start(&net->nd[4]);
	t = MAX(gossip_next_timer(net->nd[0].g), gossip_next_timer(net->nd[4].g));
	net->now = t;
	node_timer(&net->nd[0]);
	node_timer(&net->nd[4]);
	r0 = first_invite(net, 0);
	r4 = first_invite(net, 4);
	assert_true(r0 != r4);
	net_run(net, t + 100, NULL, 0); /* what happens within a few messages */
	for (uint8_t i = 1; i <= 3; i++) {
		const struct sent *d = sent_find(net, i, 4, MSG_DECLINE, r4);
		assert_non_null(d);
		assert_int_equal(d->reason, MSG_REASON_BUSY);
		assert_int_equal(d->busy_ms, 0); /* no round measured yet: unknown */
		assert_non_null(sent_find(net, i, 0, MSG_ACCEPT, r0));
		assert_int_equal(status_of(&net->nd[i]).invites_declined, 1);
	}
	assert_false(gossip_busy(net->nd[4].g));
	assert_int_equal(status_of(&net->nd[4]).rounds_aborted, 1);
	assert_int_equal(status_of(&net->nd[4]).rounds_unformed, 1); /* no group: no vector */
	assert_int_equal(status_of(&net->nd[4]).rounds_completed, 0);
	assert_int_equal(net->nd[4].n_ap, 0);
	check_round_mean(net, r0, 0xf, in);
	/* when node 0's round ends, its members announce that they are free */
	for (uint8_t i = 1; i <= 3; i++)
		assert_non_null(sent_find(net, i, 4, MSG_STATUS, 0));

	/*
	 * Two minutes more of nodes 0 and 4 competing for 1-3, with node 0's
	 * RESULTs lost so that its members stay busy until their deadline:
	 * now that 1-3 know how long a round takes them, each busy decline
	 * says how long it expects to stay busy, a quarter to three rounds.
	 */
	mark = net->nlog;
	net->drop = drop_results_of_0;
	net_run(net, net->now + 120000, NULL, 0);
	net->drop = NULL;
	busy = 0;
	for (size_t j = mark; j < net->nlog; j++) {
		const struct sent *d = &net->log[j];
		if (d->type != MSG_DECLINE || d->reason != MSG_REASON_BUSY)
			continue;
		assert_true(d->busy_ms > 0 && d->busy_ms <= 3 * 10000);
		busy++;
	}
	assert_true(busy > 0);
	/* the round trip it measured to each peer: two messages of 5 ms */
	{
		struct node_status st = status_of(&net->nd[4]);
		size_t measured = 0;
		for (size_t j = 0; j < st.n_peers; j++) {
			if (st.peers[j].rounds == 0)
				continue;
			assert_true(st.peers[j].rtt_ms > 9.5 && st.peers[j].rtt_ms < 10.5);
			measured++;
		}
		assert_int_equal(measured, 3);
	}
	inputs_free(net, in);
	net_free(net);
}

/*
 * The phase a node reports: "training" while its epochs go on; once they
 * are over, "averaging"; and "done" once each of the last 5 results it
 * applied was within 0.1% of its own model. Four nodes whose "workers" do
 * not train agree exactly after their first round, so node 0 is done after
 * five more; with WhenDone = stop it then stops.
 */
static void test_phase_done(void **state)
{
	struct opts o = opts_default(4);
	struct node_status st;
	struct net *net;

	(void)state;
	o.gossip_keys = "WhenDone = stop\n";
	net = net_new(&o);
	st = status_of(&net->nd[0]);
	assert_string_equal(st.phase, "training");
	assert_true(st.spread < 0);
	assert_true(st.epochs_target == 20);
	node_start(&net->nd[0]);
	net_run(net, T0 + 30000, stop_ends, ENDS(0, 2));
	st = status_of(&net->nd[0]);
	assert_string_equal(st.phase, "training"); /* agreeing, but still training */
	assert_int_equal(net->nd[0].stops, 0);
	for (size_t i = 0; i < 4; i++)
		net->nd[i].done = true; /* Epochs reached */
	st = status_of(&net->nd[0]);
	assert_string_equal(st.phase, "averaging");
	net_run(net, T0 + 60000, stop_ends, ENDS(0, 6));
	st = status_of(&net->nd[0]);
	assert_int_equal(st.rounds_completed, 6); /* the first result moved it: 5 more */
	assert_string_equal(st.phase, "done");
	assert_true(st.spread >= 0 && st.spread < 1e-6);
	assert_int_equal(net->nd[0].stops, 1);
	for (size_t i = 1; i < 4; i++) /* the others took part in the same rounds: done */
		assert_string_equal(status_of(&net->nd[i]).phase, "done");
	net_drain_keys(net);
	net_free(net);
}

/*
 * A node whose last result is not in its model yet (the worker has not
 * reported the APPLY) declines with "busy"; once the worker took it, the
 * node joins again.
 */
static void test_invite_declined_apply_pending(void **state)
{
	struct opts o = opts_default(4);
	struct tnode *n1;
	struct net *net;
	uint64_t r1, r2;

	(void)state;
	net = net_new(&o);
	n1 = &net->nd[1];
	n1->hold_apply = true;
	node_start(&net->nd[0]);
	net_run(net, T0 + 5000, stop_ends, ENDS(0, 1));
	r1 = first_invite(net, 0);
	assert_int_equal(n1->n_held, 1);
	net_run(net, T0 + 10000, stop_ends, ENDS(0, 2));
	r2 = net->nd[0].ends[1].rid;
	assert_true(r2 != r1);
	assert_non_null(sent_find(net, 1, 0, MSG_DECLINE, r2));
	assert_int_equal(sent_find(net, 1, 0, MSG_DECLINE, r2)->reason, MSG_REASON_BUSY);
	assert_int_equal(status_of(n1).invites_declined, 1);
	assert_non_null(applied_of(&net->nd[2], r2)); /* the others went on without it */
	assert_null(applied_of(n1, r2));
	node_release(n1);
	/* node 0 backs off node 1 for a while after its DECLINE; then it is invited again */
	net_run(net, T0 + 120000, stop_ends, ENDS(0, 3));
	{
		uint64_t r3 = net->nd[0].ends[2].rid;
		assert_non_null(sent_find(net, 1, 0, MSG_ACCEPT, r3));
		assert_non_null(applied_of(n1, r3));
	}
	assert_int_equal(status_of(n1).rounds_completed, 2);
	net_free(net);
}

/* ===== 3. timers ========================================================================= */

/*
 * The schedule: no timer before start; the first round is planned within
 * [0.5, 1.5] x Interval; a timer call before it is due does nothing; when
 * due, INVITEs go to k-1 peers and the timer then comes no later than the
 * round's phase deadline. After stop: ABORT to the members, every key
 * cleared, no more rounds.
 */
static void test_timer_schedule(void **state)
{
	struct opts o = opts_default(4);
	struct tnode *n0;
	struct net *net;
	const struct gossip_act *acts;
	size_t n;
	uint64_t due, rid;

	(void)state;
	net = net_new(&o);
	net->cut = true; /* nobody answers: the core alone */
	n0 = &net->nd[0];
	assert_int_equal(gossip_next_timer(n0->g), UINT64_MAX);
	node_start(n0);
	assert_int_equal(n0->grants, 1);
	assert_int_equal(net->nlog, 0);
	due = gossip_next_timer(n0->g);
	assert_true(due >= T0 + 500 && due <= T0 + 1500);
	/* early: nothing happens, nothing moves */
	net->now = due - 1;
	node_timer(n0);
	(void)gossip_actions(n0->g, &n);
	assert_int_equal(n, 0);
	assert_int_equal(gossip_next_timer(n0->g), due);
	/* due: the round starts */
	net->now = due;
	node_timer(n0);
	rid = first_invite(net, 0);
	assert_int_equal(sent_count(net, 0, MSG_INVITE, rid), 3);
	assert_int_equal(n0->grants, 2);
	assert_true(gossip_busy(n0->g));
	assert_int_equal(gossip_round_id(n0->g), rid);
	assert_true(gossip_next_timer(n0->g) > due);
	assert_true(gossip_next_timer(n0->g) <= due + 10000);
	/* stop before anyone answered: the members hear ABORT, keys go, no new round */
	node_stop(n0);
	assert_false(gossip_busy(n0->g));
	for (uint8_t i = 1; i <= 3; i++) {
		const struct sent *a = sent_find(net, 0, i, MSG_ABORT, rid);
		assert_non_null(a);
		assert_int_equal(a->reason, MSG_REASON_SHUTDOWN);
	}
	acts = gossip_actions(n0->g, &n);
	assert_true(n >= 1 && acts[n - 1].type == GOSSIP_KEYS_CLEAR && acts[n - 1].round_id == 0);
	assert_int_equal(gossip_next_timer(n0->g), UINT64_MAX);
	assert_int_equal(status_of(n0).rounds_aborted, 1);
	assert_string_equal(status_of(n0).state, "stopping");
	net_run(net, net->now + 600000, NULL, 0);
	assert_int_equal(sent_count(net, 0, MSG_INVITE, 0), 3);
	net_free(net);
}

/* Drops every message node 0 sends after its KEYS (it goes silent mid-round). */
static bool drop_init_after_keys(struct net *net, uint8_t from, uint8_t to, const struct msg *m)
{
	(void)net;
	(void)to;
	return from == 0 && m->type != MSG_INVITE && m->type != MSG_KEYS;
}

/*
 * The initiator goes silent after the roster (KEYS): every member has its
 * round keys set and waits for the relayed shares. It gives up at its phase
 * deadline, twice the phase timeout after KEYS (never while the initiator
 * could still finish the phase), tells the initiator ABORT "timeout",
 * applies nothing, is idle again, and its keys are wiped a grace period
 * later.
 */
static void test_member_times_out(void **state)
{
	struct opts o = opts_default(4);
	struct net *net;
	uint64_t rid, t_keys;
	const struct sent *keys;

	(void)state;
	net = net_new(&o);
	net->drop = drop_init_after_keys;
	node_start(&net->nd[0]);
	net_run(net, T0 + 60000, stop_ends, ENDS(1, 1));
	net_run(net, net->now, NULL, 0); /* the others, at the same instant */
	rid = first_invite(net, 0);
	keys = sent_find(net, 0, 1, MSG_KEYS, rid);
	assert_non_null(keys);
	t_keys = keys->at;
	for (uint8_t i = 1; i <= 3; i++) {
		struct tnode *nd = &net->nd[i];
		const struct sent *a = sent_find(net, i, 0, MSG_ABORT, rid);
		struct node_status st = status_of(nd);

		assert_int_equal(nd->n_ends, 1);
		assert_int_equal(nd->ends[0].rid, rid);
		assert_true(nd->ends[0].at > t_keys + 10000);  /* not while node 0 may finish */
		assert_true(nd->ends[0].at <= t_keys + 20000); /* 2 x phase timeout */
		assert_non_null(a);
		assert_int_equal(a->reason, MSG_REASON_TIMEOUT);
		assert_int_equal(nd->n_ap, 0);
		assert_int_equal(st.rounds_aborted, 1);
		assert_int_equal(st.rounds_unformed, 0); /* aborted after KEYS fixed the group */
		assert_string_equal(st.state, "idle");
		assert_non_null(key_find(nd, rid));
		assert_true(key_find(nd, rid)->live);
	}
	/* the keys go a grace period after the abort, not before */
	net_run(net, net->nd[1].ends[0].at + grace_ms(&net->nd[1]) - 1, NULL, 0);
	assert_true(key_find(&net->nd[1], rid)->live);
	net_run(net, net->now + 1, NULL, 0);
	for (uint8_t i = 1; i <= 3; i++)
		assert_false(key_find(&net->nd[i], rid)->live);
	net_drain_keys(net);
	net_free(net);
}

/*
 * Nobody answers node 0 (its peers are down): each round aborts at its
 * deadline ("too few"), and the next INVITE waits for the peers' backoff,
 * [0.5, 1.5] x Interval x 2^(failures-1) after the abort (failures capped at
 * 6), plus at most one scheduling interval. The node never gives up.
 */
static void test_initiator_backoff(void **state)
{
	struct opts o = opts_default(4);
	const double iv = 1000, RT = 2000; /* ms: Interval, RoundTimeout */
	struct net *net;
	uint64_t inv[12];
	size_t n_inv = 0;

	(void)state;
	o.rt = 2;
	net = net_new(&o);
	for (uint8_t i = 1; i <= 3; i++) {
		net->nd[i].up = false;
		net->nd[0].sees[i] = false;
	}
	node_start(&net->nd[0]);
	net_run(net, T0 + 400000, stop_ends, ENDS(0, 9));
	for (size_t i = 0; i < net->nlog && n_inv < ARRAY_LEN(inv); i++) {
		if (net->log[i].type == MSG_INVITE && net->log[i].to == 1)
			inv[n_inv++] = net->log[i].at;
	}
	assert_true(n_inv >= 9);
	for (size_t j = 0; j < 9; j++) {
		const struct ended *e = &net->nd[0].ends[j];
		/* each round aborts at its deadline */
		assert_int_equal(e->at, inv[j] + (uint64_t)RT);
		if (j + 1 < n_inv) {
			double f = (double)(1u << MIN(j, 5u)); /* 2^(failures-1) */
			double gap = (double)(inv[j + 1] - e->at);
			if (gap < 0.5 * iv * f - 1 || gap > 1.5 * iv * f + 1.5 * iv + 1)
				fail_msg("after failure %zu the next invitation came %.0f ms "
				         "later, outside [%.0f, %.0f]",
				         j + 1, gap, 0.5 * iv * f, 1.5 * iv * f + 1.5 * iv);
		}
	}
	assert_int_equal(status_of(&net->nd[0]).rounds_aborted, 9);
	assert_int_equal(status_of(&net->nd[0]).rounds_initiated, 9);
	net_free(net);
}

/*
 * Node 1 answers every RESULT with ABORT "wrap" instead of CHECKED (a lie a
 * counted member can always tell). Its CHECKED is dropped and the ABORT goes
 * in its place, under the same round keys.
 */
static bool lie_wrap_from_1(struct net *net, uint8_t from, uint8_t to, const struct msg *m)
{
	struct msg ab = *m;
	size_t size, len = 0;
	struct env *e;

	if (from != 1 || to != 0 || m->type != MSG_CHECKED)
		return false;
	ab.type = MSG_ABORT;
	memset(&ab.u, 0, sizeof(ab.u));
	ab.u.abort.reason = MSG_REASON_WRAP;
	snprintf(ab.u.abort.text, sizeof(ab.u.abort.text), "decode wrapped");
	size = msg_encoded_size(&ab);
	assert_true(size > 0);
	e = PUSH(net->q, net->nq);
	e->at = net->now + net->latency;
	e->seq = net->qseq++;
	e->from = from;
	e->to = to;
	e->sealed = true;
	e->bytes = xrealloc(NULL, size);
	assert_int_equal(msg_encode(e->bytes, size, &len, &ab), 0);
	e->len = len;
	return true;
}

/* Node 0 saw `arg` rounds end (messages may still be in flight). */
static bool stop_ends_0(struct net *net, uint64_t arg)
{
	return net->nd[0].n_ends >= arg;
}

/*
 * Every round node 0 starts ends with a member's ABORT "wrap". The codec plan
 * widens after each wrap, so honest wraps stop by themselves, but a member
 * that claims them does not: node 0 redoes a wrapped round at once only 3
 * times in a row (WRAP_REDOS), then the next round waits for the schedule,
 * [0.5, 1.5] x Interval later. Nobody applies anything.
 */
static void test_wrap_redo_bound(void **state)
{
	struct opts o = opts_default(4);
	struct net *net;
	uint64_t inv[8];
	size_t n_inv = 0;

	(void)state;
	o.codec = "modular";
	net = net_new(&o);
	net->drop = lie_wrap_from_1;
	node_start(&net->nd[0]);
	/* Not stop_ends: without the bound node 0 never lets the queue empty. */
	net_run(net, T0 + 60000, stop_ends_0, 8);
	for (size_t i = 0; i < net->nlog && n_inv < ARRAY_LEN(inv); i++) {
		if (net->log[i].type == MSG_INVITE && net->log[i].to == 1)
			inv[n_inv++] = net->log[i].at;
	}
	assert_int_equal(n_inv, 8);
	for (size_t j = 0; j < 8; j++) {
		const struct sent *a = sent_find(net, 0, 2, MSG_ABORT, net->nd[0].ends[j].rid);

		assert_non_null(a);
		assert_int_equal(a->reason, MSG_REASON_WRAP);
		assert_int_equal(net->nd[0].ends[j].at, inv[j]); /* no latency: ends at once */
		if (j % 4 != 0 && inv[j] != inv[j - 1])
			fail_msg("round %zu was not redone at once after a wrap", j);
		if (j % 4 == 0 && j > 0 && inv[j] - inv[j - 1] < 500)
			fail_msg("round %zu came %llu ms after 4 wrapped rounds in a row, not "
			         "after the schedule",
			         j, (unsigned long long)(inv[j] - inv[j - 1]));
	}
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(net->nd[i].n_ap, 0);
	assert_int_equal(status_of(&net->nd[0]).rounds_aborted, 8);
	assert_int_equal(status_of(&net->nd[0]).rounds_completed, 0);
	net_drain_keys(net);
	net_free(net);
}

/* ===== 4. key-wipe lifetime ============================================================== */

/*
 * Many short rounds in a row, far more than the core's wipe ring holds
 * within one grace period (RoundTimeout 30 s: 65 s of grace; four nodes
 * starting rounds every 0.1 s on 2 ms links, so rounds also collide and
 * abort). While it runs, no key outlives its grace (keys_check); a reused
 * ring slot wipes its old round at once. At the end every key is gone,
 * every APPLY of a round is the same on every node, and every round a node
 * applied had its keys set.
 */
static void test_key_wipe_burst(void **state)
{
	struct opts o = opts_default(4);
	struct net *net;
	size_t applied = 0;

	(void)state;
	o.interval = 0.1;
	o.rt = 30;
	net = net_new(&o);
	net->latency = 2;
	for (size_t i = 0; i < 4; i++)
		node_start(&net->nd[i]);
	net_run(net, T0 + 25000, NULL, 0);
	for (size_t i = 0; i < 4; i++) {
		struct tnode *nd = &net->nd[i];

		/* the ring wrapped within one grace period */
		if (nd->n_keys <= 64)
			fail_msg("node %zu set keys for only %zu rounds", i, nd->n_keys);
		/*
		 * The run is shorter than one grace period, so every key wiped by
		 * now was wiped early, to free its slot: at most one ring's worth
		 * (and the round in flight) is still set.
		 */
		assert_true(live_keys(nd) < nd->n_keys);
		assert_true(live_keys(nd) <= 64 + 1);
		for (size_t j = 0; j < nd->n_ap; j++) {
			assert_non_null(key_find(nd, nd->ap[j].rid));
			for (size_t p = 0; p < 4; p++) {
				const struct applied *other =
				        applied_of(&net->nd[p], nd->ap[j].rid);
				if (other != NULL)
					assert_memory_equal(other->avg, nd->ap[j].avg,
					                    nd->np * sizeof(float));
			}
		}
		applied += nd->n_ap;
		assert_int_equal(gossip_rounds_completed(nd->g), nd->n_ap);
		print_message("node %zu: keys of %zu rounds (%zu still set), %zu applied, %llu "
		              "aborted\n",
		              i, nd->n_keys, live_keys(nd), nd->n_ap,
		              (unsigned long long)status_of(nd).rounds_aborted);
	}
	assert_true(applied > 4 * 64);
	net_drain_keys(net);
	net_free(net);
}

/* ===== 5. lost links ===================================================================== */

/*
 * A member dies right after the INVITEs went out and the initiator is told
 * its link is gone: the round goes on without it at once (not at the phase
 * deadline) and the three others apply the mean of their three inputs.
 */
static void test_link_lost_member(void **state)
{
	struct opts o = opts_default(4);
	struct net *net;
	float *in[NMAX];
	uint64_t t, rid;

	(void)state;
	net = net_new(&o);
	inputs_save(net, in);
	node_start(&net->nd[0]);
	t = gossip_next_timer(net->nd[0].g);
	net->now = t;
	node_timer(&net->nd[0]);
	rid = first_invite(net, 0);
	net->nd[3].up = false;
	node_link_lost(&net->nd[0], &net->nd[3]);
	net_run(net, t, NULL, 0);
	assert_int_equal(net->nd[0].n_ends, 1);
	assert_int_equal(net->nd[0].ends[0].at, t); /* no deadline waited for */
	check_round_mean(net, rid, 0x7, in);
	assert_int_equal(status_of(&net->nd[0]).rounds_completed, 1);
	net_drain_keys(net);
	inputs_free(net, in);
	net_free(net);
}

/*
 * Too few connected peers for a group, so node 0 invites one it has no
 * connection to (node 3, down). It does not wait RoundTimeout (30 s) for
 * it: 6 s after the invitation the silent, unconnected member counts as
 * lost, and the round goes on with the three others.
 */
static void test_unreached_invitee(void **state)
{
	struct opts o = opts_default(4);
	struct net *net;
	float *in[NMAX];
	uint64_t t, rid;

	(void)state;
	o.rt = 30;
	net = net_new(&o);
	inputs_save(net, in);
	net->nd[3].up = false;
	node_sees_only(&net->nd[0], 0x6);
	node_start(&net->nd[0]);
	t = gossip_next_timer(net->nd[0].g);
	net_run(net, t + 5000, NULL, 0);
	rid = first_invite(net, 0);
	assert_non_null(sent_find(net, 0, 3, MSG_INVITE, rid));
	assert_int_equal(net->nd[0].n_ends, 0); /* still waiting at 5 s */
	net_run(net, t + 6500, NULL, 0);
	assert_true(net->nd[0].n_ends >= 1);
	assert_int_equal(net->nd[0].ends[0].rid, rid);
	assert_true(net->nd[0].ends[0].at <= t + 6000 + 100);
	check_round_mean(net, rid, 0x7, in);
	net_drain_keys(net);
	inputs_free(net, in);
	net_free(net);
}

static bool drop_parts(struct net *net, uint8_t from, uint8_t to, const struct msg *m)
{
	(void)net;
	(void)from;
	(void)to;
	return m->type == MSG_PART || m->type == MSG_PART_SUM;
}

/* Node 0's status, its rounds by data path printed. */
static struct node_status node0_paths(struct net *net)
{
	struct node_status st = status_of(&net->nd[0]);

	print_message("%llu rounds started, %llu on the scatter path, %llu completed\n",
	              (unsigned long long)st.rounds_initiated,
	              (unsigned long long)st.rounds_scatter,
	              (unsigned long long)st.rounds_completed);
	return st;
}

/*
 * DataPath = auto on links that take about 190 ms per vector: the first
 * round (links unmeasured) takes the star and measures them, the next ones
 * the scatter path. Here members cannot reach each other (every PART and
 * PART_SUM is lost): after 3 scatter rounds lost with every member in, the
 * node takes the star path for 16 rounds, then 32 after 3 more, and so on:
 * its rounds complete.
 */
static void test_auto_path_falls_back(void **state)
{
	struct opts o = opts_default(5);
	struct net *net;
	struct node_status st;

	(void)state;
	o.features = 400; /* 1,203 float32 parameters: 4.8 KB vectors */
	o.rt = 10;
	net = net_new(&o);
	net->latency = 5;
	net->us_per_kb = 40000; /* 40 ms per KiB: about 190 ms per vector */
	net->drop = drop_parts;
	node_start(&net->nd[0]);
	net_run(net, T0 + 15000, NULL, 0);
	st = status_of(&net->nd[0]);
	assert_true(st.rounds_completed >= 1); /* the first: the star, measuring */
	assert_true(st.peers[0].rate_Bps > 0 && st.peers[0].rate_Bps < 4800.0 * 1000.0 / 100.0);
	net_run(net, T0 + 240000, NULL, 0);
	st = node0_paths(net);
	/* 3 lost, 16 star, 3 lost, 32 star, 3 lost, 64 star, ...: the star carries on */
	assert_true(st.rounds_scatter >= 6 && st.rounds_scatter % 3 == 0);
	assert_true(st.rounds_scatter * 10 <= st.rounds_initiated);
	assert_true(st.rounds_completed + st.rounds_scatter + 5 >= st.rounds_initiated);
	net_drain_keys(net);
	net_free(net);
}

/*
 * DataPath = auto on slow links: a member whose link is not measured yet
 * counts as fast as the initiator's fastest measured link. Node 0's first
 * round of 3 (nothing measured) takes the star and measures its 2 members;
 * its second goes to 2 of the 3 peers it has not measured (its last group
 * comes last) and takes the scatter path, since every link node 0 measured
 * is slow. Every later group holds a measured slow member. Before the rule
 * the second round took the star too.
 */
static void test_auto_path_unmeasured(void **state)
{
	struct opts o = opts_default(6);
	struct net *net;
	struct node_status st;

	(void)state;
	o.features = 400; /* 4.8 KB vectors */
	o.rt = 10;
	o.k = 3;
	net = net_new(&o);
	net->latency = 5;
	net->us_per_kb = 40000; /* about 190 ms per vector */
	node_start(&net->nd[0]);
	net_run(net, T0 + 60000, NULL, 0);
	st = node0_paths(net);
	assert_true(st.rounds_initiated >= 4);
	assert_int_equal(st.rounds_scatter + 1, st.rounds_initiated);
	assert_int_equal(st.rounds_completed, st.rounds_initiated);
	net_drain_keys(net);
	net_free(net);
}

/* Node `who` re-reads a config whose [Peer]s are those of mask (the daemon's swap). */
static void node_reload(struct net *net, const struct opts *o, size_t who, uint32_t mask,
                        struct gossip_reload_stats *rs)
{
	struct tnode *nd = &net->nd[who];
	struct opts o2 = *o;
	struct config next, old;
	char *text;

	o2.peers_of[who] = mask;
	text = config_text(net, &o2, who);
	if (config_load_virtual(&next, "test.conf", text) != 0) {
		config_errors_print(&next, stderr);
		fail_msg("the reloaded config is refused");
	}
	node_begin(nd);
	assert_int_equal(gossip_reload(nd->g, net->now, &next, rs), 0);
	node_end(nd, false);
	old = nd->cfg;
	nd->cfg = next;
	config_fini(&old);
	free(nd->cfg_text);
	nd->cfg_text = text;
}

/* Starts node 0's next round (its timer until it is in one); returns its id. */
static uint64_t node0_next_round(struct net *net)
{
	while (!gossip_busy(net->nd[0].g)) {
		net->now = MAX(gossip_next_timer(net->nd[0].g), net->now);
		node_timer(&net->nd[0]);
	}
	return gossip_round_id(net->nd[0].g);
}

/*
 * A reload mid-round. Reloading the same peers changes nothing. Removing a
 * live member of the round in flight does not cut it out of that round
 * (that could leave a counted member without the result): the round
 * completes with it, exact, applied by all four; then the member is out of
 * the node's peers and is never invited again. The same from a member's
 * side: node 1 removes its initiator while in its round, and still applies
 * that round's result with the others.
 */
static void test_reload_mid_round(void **state)
{
	struct opts o = opts_default(5);
	struct gossip_reload_stats rs;
	struct node_status st;
	struct net *net;
	float *in[NMAX];
	uint64_t t, rid;
	size_t mark;

	(void)state;
	net = net_new(&o);
	net->latency = 5;
	inputs_save(net, in);
	node_sees_only(&net->nd[0], 0xe);
	node_start(&net->nd[0]);
	rid = node0_next_round(net);
	node_reload(net, &o, 0, 0x1e, &rs); /* the same peers */
	assert_true(rs.added == 0 && rs.removed == 0 && rs.moved == 0 && rs.round_members == 0);
	assert_true(gossip_busy(net->nd[0].g));
	net_run(net, net->now + 1000, stop_ends, ENDS(0, 1));
	check_round_mean(net, rid, 0xf, in);
	inputs_free(net, in);

	/* Node 3 goes while its round with node 0 runs (node 3 stays up). */
	inputs_save(net, in);
	rid = node0_next_round(net);
	t = net->now;
	assert_true(gossip_in_round(net->nd[0].g, net->nd[3].id->sign_pk));
	node_reload(net, &o, 0, 0x16, &rs);
	assert_int_equal(rs.removed, 1);
	assert_int_equal(rs.round_members, 1);
	assert_int_equal(rs.added + rs.moved + rs.renamed, 0);
	assert_true(gossip_in_round(net->nd[0].g, net->nd[3].id->sign_pk)); /* until it ends */
	net_run(net, t + 1000, stop_ends, ENDS(0, 2));
	assert_false(gossip_busy(net->nd[0].g));
	check_round_mean(net, rid, 0xf, in); /* all four applied it */
	assert_false(gossip_in_round(net->nd[0].g, net->nd[3].id->sign_pk));
	st = status_of(&net->nd[0]);
	assert_int_equal(st.n_peers, 3);
	assert_string_equal(st.peers[0].name, "n1");
	assert_string_equal(st.peers[1].name, "n2");
	assert_string_equal(st.peers[2].name, "n4");
	assert_true(st.peers[0].rounds == 2 && st.peers[2].rounds == 0); /* history kept */
	assert_int_equal(st.rounds_completed, 2);
	inputs_free(net, in);
	/* Node 3 is never invited again. */
	mark = net->nlog;
	net_run(net, net->now + 20000, NULL, 0);
	for (size_t j = mark; j < net->nlog; j++)
		assert_false(net->log[j].from == 0 && net->log[j].to == 3 &&
		             net->log[j].type == MSG_INVITE);

	/* Member side: node 1 removes node 0, its initiator, while in its round. */
	rid = node0_next_round(net);
	t = net->now;
	net_run(net, t + 5, NULL, 0); /* the INVITEs arrive: 1 joins */
	assert_true(gossip_in_round(net->nd[1].g, net->nd[0].id->sign_pk));
	node_reload(net, &o, 1, 0x1c, &rs); /* 2, 3, 4 */
	assert_int_equal(rs.round_members, 1);
	net_run(net, t + 1000, stop_ends, ENDS(0, net->nd[0].n_ends + 1));
	assert_non_null(applied_of(&net->nd[1], rid));
	assert_non_null(applied_of(&net->nd[0], rid));
	assert_false(gossip_in_round(net->nd[1].g, net->nd[0].id->sign_pk));
	net_drain_keys(net);
	net_free(net);
}

/*
 * A reload moves node 3 (same key, another Endpoint). Until the daemon has
 * pinned it at the new endpoint (gossip_peer_release), node 0 neither
 * invites it nor joins a round that names it; then it does again.
 */
static void test_reload_moved_peer(void **state)
{
	struct opts o = opts_default(5);
	struct gossip_reload_stats rs;
	struct net *net;
	size_t mark, invites = 0;

	(void)state;
	net = net_new(&o);
	node_start(&net->nd[0]);
	o.moved = 1u << 3;
	node_reload(net, &o, 0, 0x1e, &rs);
	assert_int_equal(rs.moved, 1);
	assert_int_equal(rs.added + rs.removed, 0);
	mark = net->nlog;
	net_run(net, net->now + 30000, NULL, 0);
	for (size_t j = mark; j < net->nlog; j++)
		assert_false(net->log[j].from == 0 && net->log[j].to == 3 &&
		             net->log[j].type == MSG_INVITE);
	assert_true(status_of(&net->nd[0]).rounds_completed > 0); /* with 1, 2, 4 */
	gossip_peer_release(net->nd[0].g, net->nd[3].id->sign_pk);
	mark = net->nlog;
	net_run(net, net->now + 30000, NULL, 0);
	for (size_t j = mark; j < net->nlog; j++)
		invites += net->log[j].from == 0 && net->log[j].to == 3 &&
		           net->log[j].type == MSG_INVITE;
	assert_true(invites > 0);
	net_drain_keys(net);
	net_free(net);
}

/* Holds node 0's relayed SHARES (members then wait for them, keys set). */
static bool drop_relayed_shares(struct net *net, uint8_t from, uint8_t to, const struct msg *m)
{
	(void)net;
	(void)to;
	return from == 0 && m->type == MSG_SHARES;
}

/*
 * A member loses its link to the initiator mid-round (after the roster):
 * it aborts at once, tells the initiator, applies nothing, and its keys go
 * a grace period later. A lost link to a node outside the round changes
 * nothing.
 */
static void test_link_lost_initiator(void **state)
{
	struct opts o = opts_default(5);
	struct net *net;
	struct tnode *n1;
	uint64_t rid, t;
	size_t n;

	(void)state;
	net = net_new(&o);
	n1 = &net->nd[1];
	net->drop = drop_relayed_shares;
	node_sees_only(&net->nd[0], 0xe);
	node_start(&net->nd[0]);
	t = gossip_next_timer(net->nd[0].g);
	net_run(net, t, NULL, 0);
	rid = first_invite(net, 0);
	assert_true(gossip_busy(n1->g));
	assert_true(key_find(n1, rid) != NULL && key_find(n1, rid)->live);
	/* node 4 is not in the round */
	node_link_lost(n1, &net->nd[4]);
	(void)gossip_actions(n1->g, &n);
	assert_int_equal(n, 0);
	assert_true(gossip_busy(n1->g));
	node_link_lost(n1, &net->nd[0]);
	assert_false(gossip_busy(n1->g));
	assert_non_null(sent_find(net, 1, 0, MSG_ABORT, rid));
	assert_int_equal(status_of(n1).rounds_aborted, 1);
	assert_int_equal(n1->n_ap, 0);
	net_drain_keys(net);
	for (uint8_t i = 0; i < 4; i++)
		assert_null(applied_of(&net->nd[i], rid));
	net_free(net);
}

static bool drop_commit_to_1(struct net *net, uint8_t from, uint8_t to, const struct msg *m)
{
	(void)net;
	(void)from;
	return to == 1 && m->type == MSG_COMMIT;
}

/*
 * A member that only waits for COMMIT does not abort when its link to the
 * initiator drops (the COMMIT may be on its way). Here the COMMIT is lost:
 * the others applied, it keeps its model and gives up at its deadline
 * (docs/security.md, "Limits").
 */
static void test_link_lost_waiting_commit(void **state)
{
	struct opts o = opts_default(4);
	struct net *net;
	struct tnode *n1;
	uint64_t rid;

	(void)state;
	net = net_new(&o);
	n1 = &net->nd[1];
	net->drop = drop_commit_to_1;
	node_start(&net->nd[0]);
	net_run(net, T0 + 5000, stop_ends, ENDS(0, 1));
	rid = first_invite(net, 0);
	assert_non_null(sent_find(net, 1, 0, MSG_CHECKED, rid));
	assert_true(gossip_busy(n1->g));
	node_link_lost(n1, &net->nd[0]);
	assert_true(gossip_busy(n1->g));
	assert_null(sent_find(net, 1, 0, MSG_ABORT, rid));
	net_run(net, net->now + 60000, stop_ends, ENDS(1, 1));
	assert_null(applied_of(n1, rid));
	assert_non_null(applied_of(&net->nd[2], rid));
	assert_int_equal(status_of(n1).rounds_aborted, 1);
	net_drain_keys(net);
	net_free(net);
}

/* ===== 6. the checkpoint's extra ========================================================= */

static const uint8_t *extra_of(struct tnode *nd, size_t *len)
{
	const uint8_t *e = gossip_checkpoint_extra(nd->g, len);

	assert_non_null(e);
	return e;
}

/* A new core for nd from a copy of a checkpoint extra (the old core goes). */
static int node_restart(struct tnode *nd, const uint8_t *extra, size_t len)
{
	uint8_t *copy = xrealloc(NULL, len);
	int rc;

	memcpy(copy, extra, len);
	gossip_free(nd->g);
	nd->g = NULL;
	/* the process's transport keys die with it */
	for (size_t i = 0; i < nd->n_keys; i++) {
		if (nd->keys[i].live) {
			nd->keys[i].live = false;
			nd->keys[i].cleared_at = nd->net->now;
		}
	}
	nd->pub_seq = 0; /* a new worker */
	rc = node_core(nd, copy, len);
	free(copy);
	return rc;
}

/*
 * A fresh node's extra is the 72 bytes of counters; after a round it also
 * holds the result applied. A core made from that extra carries the
 * counters, the weight and the round count on (restarts + 1), takes part in
 * the next round, and a second restart counts again. Extras that are not
 * this model's or not a checkpoint's are refused.
 */
static void test_checkpoint_restart(void **state)
{
	struct opts o = opts_default(4);
	struct net *net;
	struct tnode *n1;
	struct node_status before, after;
	uint8_t *saved;
	size_t len;
	const uint8_t *e;

	(void)state;
	o.rows[0] = 2000; /* weights 2, 1, 1, 1: the group's mean 1.25 */
	net = net_new(&o);
	n1 = &net->nd[1];
	e = extra_of(n1, &len);
	assert_int_equal(len, 72);
	node_start(&net->nd[0]);
	net_run(net, T0 + 5000, stop_ends, ENDS(0, 1));
	e = extra_of(n1, &len);
	assert_int_equal(len, 72 + n1->np * sizeof(float));
	saved = xrealloc(NULL, len);
	memcpy(saved, e, len);
	before = status_of(n1);
	assert_int_equal(before.rounds_completed, 1);
	assert_true(fabs(before.weight - 1.25) < 1e-6);

	/* not this model's, not a checkpoint's: refused, nothing made */
	{
		struct gossip *g = NULL;
		struct gossip_ops ops = test_ops;
		uint8_t *bad = xrealloc(NULL, len + 1);
		ops.arg = n1;
		memcpy(bad, saved, len);
		bad[len] = 0;
		assert_int_equal(
		        gossip_alloc(&g, &n1->cfg, n1->id, net->m_other, &ops, bad, len, 1000, 40),
		        -EINVAL);
		assert_null(g);
		assert_int_equal(
		        gossip_alloc(&g, &n1->cfg, n1->id, n1->model, &ops, bad, len + 1, 1000, 40),
		        -EINVAL);
		assert_int_equal(
		        gossip_alloc(&g, &n1->cfg, n1->id, n1->model, &ops, bad, 71, 1000, 40),
		        -EINVAL);
		bad[0] ^= 1; /* not the magic */
		assert_int_equal(
		        gossip_alloc(&g, &n1->cfg, n1->id, n1->model, &ops, bad, len, 1000, 40),
		        -EINVAL);
		assert_null(g);
		free(bad);
	}

	assert_int_equal(node_restart(n1, saved, len), 0);
	after = status_of(n1);
	assert_int_equal(after.rounds_completed, 1);
	assert_int_equal(after.rounds_aborted, 0);
	assert_int_equal(after.restarts, 1);
	assert_true(fabs(after.weight - 1.25) < 1e-6);
	assert_false(gossip_busy(n1->g));
	/* the initiator's count of rounds started carries on as well */
	e = extra_of(&net->nd[0], &len);
	{
		uint8_t *c0 = xrealloc(NULL, len);
		memcpy(c0, e, len);
		assert_int_equal(node_restart(&net->nd[0], c0, len), 0);
		assert_int_equal(status_of(&net->nd[0]).rounds_initiated, 1);
		assert_int_equal(status_of(&net->nd[0]).restarts, 1);
		free(c0);
	}
	/* and the restarted nodes go on: one more round, counted on top */
	node_start(&net->nd[0]);
	net_run(net, net->now + 5000, stop_ends, ENDS(0, 2));
	assert_int_equal(status_of(n1).rounds_completed, 2);
	assert_int_equal(status_of(&net->nd[0]).rounds_completed, 2);
	e = extra_of(n1, &len);
	memcpy(saved, e, len);
	assert_int_equal(node_restart(n1, saved, len), 0);
	assert_int_equal(status_of(n1).restarts, 2);
	assert_int_equal(status_of(n1).rounds_completed, 2);
	/* the version-1 layout (the first 64 bytes) still loads */
	e = extra_of(n1, &len);
	memcpy(saved, e, len);
	assert_int_equal(node_restart(n1, saved, 64), 0);
	assert_int_equal(status_of(n1).rounds_completed, 2);
	assert_int_equal(status_of(n1).restarts, 3);
	free(saved);
	net_free(net);
}

/*
 * Settling (docs/security.md, "What a small group leaks"): all four nodes
 * trained before the first round (4 fresh inputs: it completes, and each
 * input is then known to the group). A node whose training moved its model
 * on while its group-mates' inputs stay that known result cannot have it
 * averaged (1 fresh input of 4: the round aborts "privacy").
 * Still training, it keeps trying for three such rounds in a row; then (or
 * at once when its training is over) it stops training (FINISH) and goes
 * back to its last group result (an APPLY of that result). The settled
 * state is in its checkpoint: a core made from it says FINISH at start;
 * one made from a node that did not settle does not.
 */
static void test_checkpoint_settled(void **state)
{
	(void)state;
	for (int done = 0; done <= 1; done++) {
		struct opts o = opts_default(4);
		struct net *net;
		struct tnode *n1;
		const float *first;
		uint8_t *saved;
		size_t len, want = done ? 1 : 3;
		const uint8_t *e;

		print_message("case: training %s\n", done ? "over" : "going on");
		net = net_new(&o);
		n1 = &net->nd[1];
		for (size_t i = 0; i < 4; i++)
			net->nd[i].steps = 5;
		node_start(&net->nd[0]);
		net_run(net, T0 + 5000, stop_ends, ENDS(0, 1));
		assert_int_equal(n1->n_ap, 1);
		first = n1->ap[0].avg;
		/* node 1 trains on alone; the others' inputs stay the known result */
		n1->steps = 17;
		n1->x[0] += 0.25f;
		n1->done = done;
		for (size_t r = 1; r <= want; r++) {
			uint64_t rid;
			net_run(net, net->now + 20000, stop_ends, ENDS(0, r + 1));
			rid = net->nd[0].ends[r].rid;
			assert_null(applied_of(n1, rid));
			assert_non_null(sent_find(net, 0, 1, MSG_ABORT, rid));
			assert_int_equal(sent_find(net, 0, 1, MSG_ABORT, rid)->reason,
			                 MSG_REASON_PRIVACY);
			assert_int_equal(n1->finishes, r == want ? 1 : 0);
		}
		/* it went back to the first round's result: one APPLY with that average */
		assert_int_equal(n1->n_ap, 2);
		assert_memory_equal(n1->ap[1].avg, first, n1->np * sizeof(float));
		for (size_t j = 0; j < n1->np; j++)
			assert_true(fabsf(n1->x[j] - first[j]) < 1e-6f);
		assert_int_equal(status_of(n1).rounds_completed, 1);
		assert_int_equal(status_of(n1).rounds_aborted, want);
		assert_true(status_of(n1).training_done);
		assert_int_equal(net->nd[2].finishes, 0);
		/* back to a known input, it is averaged again */
		net_run(net, net->now + 20000, stop_ends, ENDS(0, want + 2));
		assert_non_null(applied_of(n1, net->nd[0].ends[want + 1].rid));
		assert_int_equal(status_of(n1).rounds_completed, 2);
		/* settled in the checkpoint */
		e = extra_of(n1, &len);
		saved = xrealloc(NULL, len);
		memcpy(saved, e, len);
		assert_int_equal(node_restart(n1, saved, len), 0);
		n1->finishes = 0;
		node_start(n1);
		assert_int_equal(n1->finishes, 1);
		/* a node that did not settle does not finish at start */
		e = extra_of(&net->nd[2], &len);
		saved = xrealloc(saved, len);
		memcpy(saved, e, len);
		assert_int_equal(node_restart(&net->nd[2], saved, len), 0);
		node_start(&net->nd[2]);
		assert_int_equal(net->nd[2].finishes, 0);
		free(saved);
		net_free(net);
	}
}

/*
 * A node that never applied a group result (it joined, or came back, after
 * the others had finished training) and whose training is over: its fresh
 * input alone among known ones cannot be averaged ("privacy"), and it has
 * no last result to go back to. It goes back to the initial model of
 * [Model] Seed (public, the same at every site) with the least push-sum
 * weight, so that the next round hands it the group's model.
 */
static void test_settle_initial_model(void **state)
{
	struct opts o = opts_default(4);
	struct model *init = NULL;
	struct net *net;
	struct tnode *n1;
	uint64_t rid;

	(void)state;
	net = net_new(&o);
	n1 = &net->nd[1];
	n1->steps = 17; /* trained on its own: fresh; the others are known (untrained) */
	n1->done = true;
	node_start(&net->nd[0]);
	net_run(net, T0 + 20000, stop_ends, ENDS(0, 1));
	rid = net->nd[0].ends[0].rid;
	assert_int_equal(sent_find(net, 0, 1, MSG_ABORT, rid)->reason, MSG_REASON_PRIVACY);
	/* back to the initial model, weight 0.01, training stopped */
	assert_int_equal(n1->finishes, 1);
	assert_int_equal(n1->n_ap, 1);
	assert_int_equal(model_alloc(&init, &net->m->spec, 1), 0);
	model_init(init, n1->cfg.model.seed);
	assert_memory_equal(n1->ap[0].avg, init->params, n1->np * sizeof(float));
	assert_true(fabs(status_of(n1).weight - 0.01) < 1e-9);
	assert_true(status_of(n1).training_done);
	/* now a known input: the next round averages it and hands it the group's model */
	net_run(net, net->now + 20000, stop_ends, ENDS(0, 2));
	rid = net->nd[0].ends[1].rid;
	assert_non_null(applied_of(n1, rid));
	assert_int_equal(status_of(n1).rounds_completed, 1);
	model_free(init);
	net_free(net);
}

/* ===== 6b. feature statistics ============================================================= */

static struct msg msg_of(const struct net *net, enum msg_type type, uint64_t rid);

/* Every node of mask added all parts of its rows and applied at least arg >> 8 results. */
static bool stop_stats_added(struct net *net, uint64_t arg)
{
	for (size_t i = 0; i < net->n; i++) {
		if (!((arg & 0xff) >> i & 1))
			continue;
		if (!gossip_stats_added(net->nd[i].g) || net->nd[i].n_ap < (arg >> 8))
			return false;
	}
	return net->nq == 0;
}

/* The rows-weighted mean of the moments of the nodes in mask: what push-sum must reach. */
static void stats_pool(const struct net *net, uint32_t mask, double *pool)
{
	double w = 0;

	for (size_t j = 0; j < 2 * STATS_DIMS; j++)
		pool[j] = 0;
	for (size_t i = 0; i < net->n; i++) {
		if (!(mask >> i & 1))
			continue;
		w += (double)net->nd[i].rows;
		for (size_t j = 0; j < 2 * STATS_DIMS; j++)
			pool[j] += (double)net->nd[i].rows * net->nd[i].x[j];
	}
	for (size_t j = 0; j < 2 * STATS_DIMS; j++)
		pool[j] /= w;
}

static void assert_pooled(const float *avg, const double *pool)
{
	for (size_t j = 0; j < 2 * STATS_DIMS; j++)
		if (fabs(avg[j] - pool[j]) > 1e-4 * MAX(fabs(pool[j]), 0.1))
			fail_msg("coordinate %zu: %.7g, pooled %.7g", j, (double)avg[j], pool[j]);
}

/*
 * Six sites of different sizes, groups of 4, all fresh at first: each adds
 * its moments in exactly one round, among fresh inputs (a round of 4 needs
 * 3 fresh). Sites left without enough fresh partners give up adding theirs
 * (stats_settle) and receive the others'. At the end every site holds the
 * same result: exactly the rows-weighted pooled moments of some set A of
 * at least 3 sites whose weights sum to the total weight held (nothing
 * counted twice, nothing lost), and A is all six or the rows-less ones are
 * few. The sites' own moments are never changed by a result.
 */
static void test_stats_pool(void **state)
{
	struct opts o = opts_default(6);
	double pool[2 * STATS_DIMS], w = 0;
	const float *ref;
	struct net *net;
	int found = -1;

	(void)state;
	o.stats = true;
	for (size_t i = 0; i < 6; i++)
		o.rows[i] = 500u << i; /* every set of sites has its own total weight */
	net = net_new(&o);
	for (size_t i = 0; i < 6; i++)
		node_start(&net->nd[i]);
	net_run(net, T0 + 600000, stop_stats_added, (6u << 8) | 0x3f);
	net_run(net, net->now + 30000, NULL, 0); /* rounds among known inputs */
	ref = net->nd[0].ap[net->nd[0].n_ap - 1].avg;
	for (size_t i = 0; i < 6; i++) {
		struct tnode *nd = &net->nd[i];
		const float *avg = nd->ap[nd->n_ap - 1].avg;
		float x0[2 * STATS_DIMS];
		for (size_t j = 0; j < 2 * STATS_DIMS; j++)
			assert_true(fabs(avg[j] - ref[j]) < 1e-5);
		memcpy(x0, nd->x, sizeof(x0));
		node_input(nd, x0);
		assert_memory_equal(x0, nd->x, STATS_DIMS * sizeof(float));
		w += status_of(nd).weight;
		assert_true(status_of(nd).epochs_trained == 0);
		assert_string_equal(status_of(nd).phase, "standardising");
	}
	/* Which sites' rows are in: the one set whose weight is the total held. */
	for (uint32_t a = 0; a < 64; a++) {
		double wa = 0;
		for (size_t i = 0; i < 6; i++)
			wa += (a >> i & 1) ? (double)net->nd[i].rows / 1000.0 : 0.0;
		if (fabs(wa - w) < 1e-4) {
			assert_int_equal(found, -1);
			found = (int)a;
		}
	}
	assert_true(found >= 0 && __builtin_popcount((unsigned)found) >= 3);
	print_message("rows of %d of 6 sites in the pool\n", __builtin_popcount((unsigned)found));
	stats_pool(net, (uint32_t)found, pool);
	assert_pooled(ref, pool);
	net_drain_keys(net);
	net_free(net);
}

/*
 * A site that comes when the others have added all their rows finds no
 * fresh inputs to be summed with: its rounds abort (privacy) and it never
 * shows its moments. After 12 such rounds it gives up adding them, puts in
 * zero weight and receives the others' pooled moments; their pool and
 * total weight stay as they were.
 */
static void test_stats_late_site(void **state)
{
	struct opts o = opts_default(5);
	double pool[2 * STATS_DIMS], w = 0;
	struct tnode *late;
	struct net *net;
	size_t aborted;

	(void)state;
	o.stats = true;
	net = net_new(&o);
	late = &net->nd[4];
	late->up = false;
	for (size_t i = 0; i < 5; i++)
		node_sees_only(&net->nd[i], 0xf);
	for (size_t i = 0; i < 4; i++)
		node_start(&net->nd[i]);
	net_run(net, T0 + 600000, stop_stats_added, (6u << 8) | 0xf);
	stats_pool(net, 0xf, pool);
	late->up = true;
	for (size_t i = 0; i < 5; i++)
		node_sees_only(&net->nd[i], 0x1f);
	node_start(late);
	net_run(net, net->now + 120000, NULL, 0);
	aborted = status_of(late).rounds_aborted;
	assert_true(aborted >= 12);
	assert_true(gossip_stats_added(late->g));
	assert_true(late->n_ap >= 1);
	assert_pooled(late->ap[late->n_ap - 1].avg, pool);
	for (size_t i = 0; i < 5; i++)
		w += status_of(&net->nd[i]).weight;
	assert_true(fabs(w - 4.0) < 5e-3); /* four sites of 1000 rows: the late one added none */
	/* no round it was in let its moments out: every such round aborted or summed zeros */
	for (size_t i = 0; i < late->n_ap; i++)
		assert_pooled(late->ap[i].avg, pool);
	net_drain_keys(net);
	net_free(net);
}

/*
 * A site with 6,400 times the initiator's weight (64,000 rows against 10)
 * would be clipped by the initiator's plan: it declines, naming why,
 * rather than let the group sum clipped moments.
 */
static void test_stats_clip_declined(void **state)
{
	struct opts o = opts_default(4);
	const struct sent *d;
	struct net *net;
	uint64_t rid;

	(void)state;
	o.stats = true;
	o.rows[0] = 10;
	o.rows[1] = 64000;
	net = net_new(&o);
	node_start(&net->nd[0]);
	net_run(net, T0 + 5000, stop_ends, ENDS(0, 1));
	rid = first_invite(net, 0);
	d = sent_find(net, 1, 0, MSG_DECLINE, rid);
	assert_non_null(d);
	assert_int_equal(d->reason, MSG_REASON_PARAMS);
	assert_non_null(strstr(d->text, "exceed the invitation's clip"));
	assert_null(sent_find(net, 2, 0, MSG_DECLINE, rid)); /* the others fit */
	/* One bit per peer: its later invitations are declined unseen. */
	net_run(net, net->now + 20000, stop_ends, ENDS(0, 2));
	rid = net->nd[0].ends[1].rid;
	d = sent_find(net, 1, 0, MSG_DECLINE, rid);
	if (d != NULL) /* it may have invited others only */
		assert_non_null(strstr(d->text, "an earlier statistics invitation"));
	net_drain_keys(net);
	net_free(net);
}

/*
 * A statistics invitation whose codec an honest plan would not make (here
 * a clip that is not a power of two, as a probe of the member's moments
 * would need) is declined, naming why, before the member looks at its
 * moments.
 */
static void test_stats_shape_refused(void **state)
{
	struct opts o = opts_default(4);
	const struct sent *d;
	struct net *net;
	struct msg m;
	uint64_t rid;

	(void)state;
	o.stats = true;
	net = net_new(&o);
	net->cut = true; /* node 0's own invitations go nowhere */
	node_start(&net->nd[0]);
	net_run(net, T0 + 5000, NULL, 0);
	rid = first_invite(net, 0);
	m = msg_of(net, MSG_INVITE, rid);
	net->cut = false;
	m.u.invite.codec.segments[0].scale *= 1.5;
	m.u.invite.codec.segments[0].clip *= 1.5;
	node_msg(&net->nd[1], &net->nd[0], &m);
	d = sent_find(net, 1, 0, MSG_DECLINE, rid);
	assert_non_null(d);
	assert_int_equal(d->reason, MSG_REASON_PARAMS);
	assert_non_null(strstr(d->text, "not that of a statistics round"));
	net_free(net);
}

/*
 * A node agreeing statistics that is invited into a training round learns
 * that the peer has moved on (the daemon then takes its estimate), and
 * declines it naming both phases; a statistics invitation of another shape
 * does not say so.
 */
static void test_stats_peer_trains(void **state)
{
	struct opts o = opts_default(4);
	const struct sent *d;
	struct net *net;
	struct msg m;
	uint64_t rid;

	(void)state;
	o.stats = true;
	net = net_new(&o);
	net->cut = true; /* node 0's own invitations go nowhere */
	node_start(&net->nd[0]);
	net_run(net, T0 + 5000, NULL, 0);
	rid = first_invite(net, 0);
	m = msg_of(net, MSG_INVITE, rid);
	net->cut = false;
	m.u.invite.model.seed += 1; /* statistics of another number of features */
	node_msg(&net->nd[1], &net->nd[0], &m);
	assert_non_null(sent_find(net, 1, 0, MSG_DECLINE, rid));
	assert_false(gossip_stats_peer_trains(net->nd[1].g));
	m = msg_of(net, MSG_INVITE, rid);
	m.u.invite.model.type = CONFIG_MODEL_LOGREG;
	node_msg(&net->nd[2], &net->nd[0], &m);
	d = sent_find(net, 2, 0, MSG_DECLINE, rid);
	assert_non_null(d);
	assert_int_equal(d->reason, MSG_REASON_PARAMS);
	assert_non_null(strstr(d->text, "logreg in the invitation, stats here"));
	assert_true(gossip_stats_peer_trains(net->nd[2].g));
	net_free(net);
}

/*
 * A node settled on the initial model at the least weight starts no round
 * before a round hands it the group's model: its plan, sized for weight
 * 0.01, would clip every other member's input (a chaos run with
 * Standardize = federated caught a cluster pulled to 44% that way).
 */
static void test_settled_initial_joins_only(void **state)
{
	struct opts o = opts_default(4);
	struct net *net;
	struct tnode *n1;

	(void)state;
	net = net_new(&o);
	n1 = &net->nd[1];
	n1->steps = 17;
	n1->done = true;
	node_start(&net->nd[0]);
	net_run(net, T0 + 20000, stop_ends, ENDS(0, 1));
	assert_true(fabs(status_of(n1).weight - 0.01) < 1e-9);
	node_stop(&net->nd[0]); /* nobody else starts rounds */
	node_start(n1);
	net_run(net, net->now + 20000, NULL, 0);
	assert_int_equal(sent_count(net, 1, MSG_INVITE, 0), 0);
	net_drain_keys(net);
	net_free(net);
}

/* ===== 7. unexpected messages ============================================================ */

/* Holds node 0's KEYS: the members wait for the roster. */
static bool drop_keys(struct net *net, uint8_t from, uint8_t to, const struct msg *m)
{
	(void)net;
	(void)from;
	(void)to;
	return m->type == MSG_KEYS;
}

/* A copy of the first message of `type` of round rid, decoded (bytes borrowed from the log). */
static struct msg msg_of(const struct net *net, enum msg_type type, uint64_t rid)
{
	const struct sent *s = sent_find(net, UINT8_MAX, UINT8_MAX, type, rid);
	struct msg m;

	assert_non_null(s);
	assert_int_equal(msg_decode(&m, s->bytes, s->len), 0);
	return m;
}

/* Delivers m to nd from `from`: no action may come of it. */
static void expect_nothing(struct tnode *nd, const struct tnode *from, const struct msg *m)
{
	size_t n;
	const struct gossip_act *acts;

	node_msg(nd, from, m);
	acts = gossip_actions(nd->g, &n);
	for (size_t i = 0; i < n; i++)
		fail_msg("message type %d from node %u to node %u: action %d", (int)m->type,
		         from->idx, nd->idx, (int)acts[i].type);
}

/*
 * During a round, messages of another round id or attempt, out of phase,
 * from a node outside the round or from a member that is not the initiator
 * change nothing (no action); the round then completes as usual. After it,
 * every message of the round delivered again is stale: no action, no APPLY,
 * only msgs_stale counts. A PING is answered with STATUS either way.
 */
static void test_unexpected_messages(void **state)
{
	struct opts o = opts_default(5);
	struct net *net;
	struct tnode *n1;
	float *in[NMAX];
	struct msg m;
	uint64_t rid, t, stale;
	size_t nlog;

	(void)state;
	net = net_new(&o);
	n1 = &net->nd[1];
	inputs_save(net, in);
	node_sees_only(&net->nd[0], 0xe);
	net->drop = drop_keys;
	node_start(&net->nd[0]);
	t = gossip_next_timer(net->nd[0].g);
	net_run(net, t, NULL, 0);
	rid = first_invite(net, 0);
	assert_true(gossip_busy(n1->g));
	/* node 1 waits for KEYS */
	m = msg_of(net, MSG_INVITE, rid);
	m.type = MSG_COMMIT; /* out of phase: a COMMIT before anything */
	memset(&m.u, 0, sizeof(m.u));
	expect_nothing(n1, &net->nd[0], &m);
	m.type = MSG_ABORT; /* from a member, not the initiator */
	snprintf(m.u.abort.text, sizeof(m.u.abort.text), "x");
	m.u.abort.reason = MSG_REASON_OTHER;
	expect_nothing(n1, &net->nd[2], &m);
	expect_nothing(n1, &net->nd[4], &m); /* from a node outside the round */
	m.attempt = 1;                       /* another attempt, from the initiator */
	expect_nothing(n1, &net->nd[0], &m);
	m.attempt = 0;
	m.round_id = rid + 1; /* another round */
	stale = status_of(n1).msgs_stale;
	expect_nothing(n1, &net->nd[0], &m);
	assert_int_equal(status_of(n1).msgs_stale, stale + 1);
	assert_true(gossip_busy(n1->g));
	/* a PING gets a STATUS: busy in that round */
	memset(&m, 0, sizeof(m));
	m.type = MSG_PING;
	m.u.ping.seq = 42;
	node_msg(n1, &net->nd[4], &m);
	{
		const struct sent *s = sent_find(net, 1, 4, MSG_STATUS, 0);
		struct msg st;
		assert_non_null(s);
		assert_int_equal(msg_decode(&st, s->bytes, s->len), 0);
		assert_int_equal(st.u.status.seq, 42);
		assert_true(st.u.status.busy);
		assert_int_equal(st.round_id, rid);
	}
	/* let KEYS through again: re-send the held ones, the round completes */
	net->drop = NULL;
	for (size_t i = 0; i < net->nlog; i++) {
		struct sent *s = &net->log[i];
		if (s->type == MSG_KEYS && s->dropped) {
			struct env *e = PUSH(net->q, net->nq);
			e->at = net->now;
			e->seq = net->qseq++;
			e->from = s->from;
			e->to = s->to;
			e->sealed = s->sealed;
			e->bytes = xrealloc(NULL, s->len);
			memcpy(e->bytes, s->bytes, s->len);
			e->len = s->len;
		}
	}
	net_run(net, net->now, NULL, 0);
	assert_int_equal(net->nd[0].n_ends, 1);
	check_round_mean(net, rid, 0xf, in);
	/* every message of the round again (but the INVITEs): nothing happens */
	nlog = net->nlog;
	for (size_t i = 0; i < nlog; i++) {
		const struct sent *s = &net->log[i];
		if (s->rid != rid || s->type == MSG_INVITE || s->type == MSG_STATUS)
			continue;
		assert_int_equal(msg_decode(&m, s->bytes, s->len), 0);
		stale = status_of(&net->nd[s->to]).msgs_stale;
		expect_nothing(&net->nd[s->to], &net->nd[s->from], &m);
		assert_int_equal(status_of(&net->nd[s->to]).msgs_stale, stale + 1);
	}
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(net->nd[i].n_ap, 1);
		assert_int_equal(status_of(&net->nd[i]).rounds_completed, 1);
	}
	net_drain_keys(net);
	inputs_free(net, in);
	net_free(net);
}

/*
 * Every message arrives twice: the round still completes exactly once on
 * every member (one APPLY each, the same mean); the second INVITE finds
 * the member busy in that very round and is declined, which the initiator
 * ignores.
 */
static void test_duplicate_messages(void **state)
{
	struct opts o = opts_default(4);
	struct net *net;
	float *in[NMAX];
	uint64_t rid;

	(void)state;
	net = net_new(&o);
	net->dup = true;
	inputs_save(net, in);
	node_start(&net->nd[0]);
	net_run(net, T0 + 5000, stop_ends, ENDS(0, 1));
	rid = first_invite(net, 0);
	check_round_mean(net, rid, 0xf, in);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(net->nd[i].n_ap, 1);
		assert_int_equal(status_of(&net->nd[i]).rounds_completed, 1);
		assert_int_equal(status_of(&net->nd[i]).rounds_aborted, 0);
	}
	net_drain_keys(net);
	inputs_free(net, in);
	net_free(net);
}

/*
 * A replayed INVITE of a round that is over (the transport refuses
 * replays; this is the core's own line): the member may join it again,
 * but nobody answers, so it gives up at its deadline and applies nothing.
 */
static void test_replayed_invite(void **state)
{
	struct opts o = opts_default(4);
	struct net *net;
	struct tnode *n1;
	struct msg m;
	uint64_t rid;

	(void)state;
	net = net_new(&o);
	n1 = &net->nd[1];
	node_start(&net->nd[0]);
	net_run(net, T0 + 5000, stop_ends, ENDS(0, 1));
	rid = first_invite(net, 0);
	net->cut = true;
	m = msg_of(net, MSG_INVITE, rid);
	node_msg(n1, &net->nd[0], &m);
	net_run(net, net->now + 30000, NULL, 0);
	assert_false(gossip_busy(n1->g));
	assert_int_equal(n1->n_ap, 1);
	assert_int_equal(status_of(n1).rounds_completed, 1);
	net_drain_keys(net);
	net_free(net);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_group_round),
	        cmocka_unit_test(test_lowrank_chain),
	        cmocka_unit_test(test_lowrank_chain_waits_for_apply),
	        cmocka_unit_test(test_stats_pool),
	        cmocka_unit_test(test_stats_late_site),
	        cmocka_unit_test(test_stats_clip_declined),
	        cmocka_unit_test(test_stats_shape_refused),
	        cmocka_unit_test(test_stats_peer_trains),
	        cmocka_unit_test(test_settled_initial_joins_only),
	        cmocka_unit_test(test_reload_mid_round),
	        cmocka_unit_test(test_reload_moved_peer),
	        cmocka_unit_test(test_rounds_limit_stops),
	        cmocka_unit_test(test_evaluate_every),
	        cmocka_unit_test(test_invite_rules),
	        cmocka_unit_test(test_invite_declined_busy),
	        cmocka_unit_test(test_phase_done),
	        cmocka_unit_test(test_invite_declined_apply_pending),
	        cmocka_unit_test(test_timer_schedule),
	        cmocka_unit_test(test_member_times_out),
	        cmocka_unit_test(test_initiator_backoff),
	        cmocka_unit_test(test_wrap_redo_bound),
	        cmocka_unit_test(test_key_wipe_burst),
	        cmocka_unit_test(test_link_lost_member),
	        cmocka_unit_test(test_unreached_invitee),
	        cmocka_unit_test(test_auto_path_falls_back),
	        cmocka_unit_test(test_auto_path_unmeasured),
	        cmocka_unit_test(test_link_lost_initiator),
	        cmocka_unit_test(test_link_lost_waiting_commit),
	        cmocka_unit_test(test_checkpoint_restart),
	        cmocka_unit_test(test_checkpoint_settled),
	        cmocka_unit_test(test_settle_initial_model),
	        cmocka_unit_test(test_unexpected_messages),
	        cmocka_unit_test(test_duplicate_messages),
	        cmocka_unit_test(test_replayed_invite),
	};

	if (randombytes_set_implementation(&tr_impl) != 0 || sodium_init() < 0)
		return 1;
	log_set_level(getenv("SOTTO_TEST_LOG") != NULL ? LOG_LEVEL_DEBUG : LOG_LEVEL_QUIET);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
