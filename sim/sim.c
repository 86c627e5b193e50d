/*
 * sim.c: the simulator's engine (see sim.h).
 *
 * One priority queue of events in integer nanoseconds, ties broken by
 * insertion order. A node is the real core (node/gossip.h) plus:
 *
 *   loop    a FIFO of items (messages, lost links, timers, worker events);
 *           one at a time, each runs its core call at once and holds the
 *           loop for its modelled cost; its actions take effect when the
 *           cost has elapsed (the sends leave then)
 *   worker  a FIFO of applies and evaluations, then training in chunks of
 *           16 steps while node/trainer.c grants them, each for its cost;
 *           the model is published when a piece of work completes
 *   disk    the last checkpoint, as bytes (learn/checkpoint.h)
 *   links   an uplink and a downlink, each a FIFO at its rate
 *
 * CPU: all loop and worker work shares `cores` processors by processor
 * sharing (every running piece of work progresses at min(1, cores /
 * running)); with cores = 0 each thread has its own.
 *
 * Not here: the datasets (data.c), randomness (rand.c), the command line
 * (main.c).
 */
#include "sim/sim.h"

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include "config/config.h"
#include "crypto/identity.h"
#include "learn/checkpoint.h"
#include "learn/dataset.h"
#include "learn/learn.h"
#include "learn/model.h"
#include "learn/train.h"
#include "node/circles.h"
#include "node/cli.h"
#include "node/gossip.h"
#include "node/privacy.h"
#include "node/trainer.h"
#include "protocol/codec.h"
#include "protocol/msg.h"
#include "secagg/round.h"
#include "sim/data.h"
#include "sim/rand.h"
#include "util/err.h"
#include "util/log.h"
#include "util/rng.h"
#include "util/util.h"

#define NS        1000000000ull
#define MS        1000000ull
#define SEAL_OVER 128  /* header + tag of a sealed frame (crypto/seal.h) */
#define NNG_OVER  8    /* NNG's length prefix */
#define MSS       1448 /* TCP payload per segment */
#define TCPIP     52   /* IPv4 + TCP headers with timestamps */
#define CHUNK     16   /* training steps between two looks at the queue (worker.c) */

/* --- the cost model (CPU seconds on the development machine) ---------------- */

/*
 * Costs are modelled from what a piece of work does, never measured, so a
 * run does not depend on the machine. The constants were fitted on the
 * development machine (docs/simulation.md, "Costs"); cpu_scale scales them.
 */
#define COST_EVENT     20e-6   /* any loop wake-up */
#define COST_BYTE      1.6e-9  /* seal/open + copy, per frame byte */
#define COST_ASYM      55e-6   /* one X25519 or Ed25519 operation */
#define COST_VALUE     35e-9   /* encode/mask/pack or unpack/decode, per ring value */
#define COST_STEP_FLOP 0.12e-9 /* training, per batch row and parameter (x3 for backprop) */
#define COST_EVAL_FLOP 0.08e-9 /* evaluation, per row and parameter */
#define COST_APPLY     0.4e-9  /* merge, per parameter */
#define COST_CKPT      1.5e-3  /* a checkpoint write and fsync */

enum ev_type {
	EV_ARRIVE,  /* a message reaches a node's downlink queue end: into its loop */
	EV_TIMER,   /* the core's timer */
	EV_DONE,    /* a piece of work completes (cores = 0) */
	EV_PS,      /* processor sharing: the next completion */
	EV_PROBE,   /* progress line */
	EV_KILL,    /* kill a node now */
	EV_RESTART, /* restart a killed node */
	EV_PART,    /* a partition starts (or ends) */
	EV_LOST,    /* a peer's connection is reported lost */
};

struct event {
	uint64_t t;
	uint64_t seq;
	uint32_t type;
	uint32_t node;
	uint64_t gen;
	void *p;
};

struct heap {
	struct event *e;
	size_t n, cap;
	uint64_t seq;
};

/* An encoded message in flight; decoded on arrival. */
struct packet {
	uint32_t from, to;
	uint64_t inc_to; /* the receiver incarnation it was sent to */
	size_t len;
	uint8_t *bytes;
	struct msg m;
};

enum item_type { IT_MSG, IT_LOST, IT_TIMER, IT_WORKER, IT_START };

struct item {
	struct item *next;
	enum item_type type;
	struct packet *pkt; /* IT_MSG */
	uint32_t peer;      /* IT_LOST */
	enum gossip_worker_event wev;
	int rc;
	uint64_t rid;
	double epochs, acc, loss;
};

enum wcmd_type { W_APPLY, W_EVAL };

struct wcmd {
	struct wcmd *next;
	enum wcmd_type type;
	float *avg, *snap; /* W_EVAL: avg the parameters to evaluate, or NULL: the model */
	uint8_t *extra;
	size_t extra_len;
	bool evaluate;
	uint64_t rid, seq;
};

/* A piece of CPU work in progress. */
struct work {
	uint32_t node;
	uint64_t inc;  /* the node's incarnation: a killed node's work is void */
	bool worker;   /* else the loop */
	double v_done; /* processor sharing: virtual work clock at completion */
	uint64_t seq;
};

struct snode {
	uint32_t idx;
	char name[16];
	struct identity *id;
	struct config cfg;
	char *cfg_text;
	struct dataset *ds;
	struct train *t;
	struct trainer tr;
	struct gossip *core;
	struct rng rng; /* its randombytes */
	/* [Privacy]: planned at the first boot; the ledger outlives kills, as on disk */
	struct privacy priv;
	bool priv_planned;
	struct rng dp_rng; /* DP-SGD's sampling and noise: seeded, so runs repeat */
	bool alive, stopped, silent;
	uint64_t inc; /* incarnation: bumped by every kill */
	/* the worker's published model */
	float *pub;
	uint64_t pub_steps, pub_seq;
	/* loop */
	struct item *lq, *lq_tail;
	bool loop_busy;
	size_t round_dim;                 /* ring values of the round it last joined or started */
	const struct gossip_act *pending; /* actions waiting for the loop's work */
	size_t n_pending;
	uint64_t timer_gen, timer_at;
	/* worker */
	struct wcmd *wq, *wq_tail;
	bool worker_busy;
	struct wcmd *w_cur; /* the command in progress */
	uint64_t w_steps;   /* or: steps of the chunk in progress */
	bool w_fresh;       /* the chunk is the step after an apply */
	uint64_t w_seq;     /* applies done */
	double epochs;
	/* disk */
	uint8_t *ckpt;
	size_t ckpt_len;
	/* network */
	struct sim_link up, down;
	uint64_t up_free, down_free, up_busy;
	uint32_t *peers;
	uint32_t n_peers;
	int side; /* partition side */
	/* kills at a phase */
	int kill_phase; /* -1: none */
	/* figures */
	double bytes_out, msgs_out;
	double acc;
	uint64_t evals;
	uint64_t round_since; /* ms: the current round started (stuck check) */
	bool nonfinite;       /* a published model held a NaN or Inf */
	uint64_t round_id;
};

/* Verification records (the chaos harness's, in memory). */
/* One input of a round attempt, kept until the round's first application. */
struct vinput {
	uint32_t node;
	uint32_t *ring;
	struct codec_params cp;
};

/* What the verifier knows of one round attempt (rid, attempt). */
struct vround {
	uint64_t rid;
	uint32_t attempt;
	bool used;
	bool applied;      /* some node applied it: hash holds its ring */
	bool init_aborted; /* its initiator aborted it */
	uint32_t init;     /* the node that sent its INVITEs, or UINT32_MAX */
	uint64_t t_last;   /* ns: its newest record */
	uint8_t hash[32];  /* BLAKE2b of the applied ring */
	struct vinput *in;
	size_t n_in, cap_in;
};

struct sim {
	const struct sim_opts *o;
	struct sim_result *res;
	struct heap h;
	uint64_t now;
	struct snode *nodes;
	uint32_t n;
	struct sim_data_set data;
	uint32_t *by_pk; /* node indexes sorted by identity key */
	struct rng rng;  /* faults, overlay, partitions: the simulator's own */
	/* processor sharing */
	struct work *ps; /* heap by v_done */
	size_t ps_n, ps_cap;
	double ps_v;   /* virtual work clock */
	uint64_t ps_t; /* when ps_v was last advanced */
	uint64_t ps_gen;
	uint64_t work_seq;
	/* verification */
	struct circles circles; /* the overlay (n_circles 0: everyone) */
	struct vround *vr;      /* open addressing on (rid, attempt) */
	size_t vr_cap, vr_used;
	bool broken; /* --break did its one corruption */
	uint64_t last_done_t;
	uint64_t completed_total;
	int partitioned;
	size_t eval_rows;
	struct dataset *eval_ds;
};

static struct sim *cur_sim; /* the ops callbacks' context (single-threaded) */

/* --- the event queue ----------------------------------------------------------- */

static bool ev_less(const struct event *a, const struct event *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void heap_push(struct heap *h, uint64_t t, uint32_t type, uint32_t node, uint64_t gen,
                      void *p)
{
	size_t i;

	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 1024;
		struct event *e = realloc(h->e, cap * sizeof(*e));
		SOTTO_ASSERT(e != NULL);
		h->e = e;
		h->cap = cap;
	}
	i = h->n++;
	h->e[i] = (struct event){t, h->seq++, type, node, gen, p};
	while (i > 0 && ev_less(&h->e[i], &h->e[(i - 1) / 2])) {
		struct event tmp = h->e[i];
		h->e[i] = h->e[(i - 1) / 2];
		h->e[(i - 1) / 2] = tmp;
		i = (i - 1) / 2;
	}
}

static bool heap_pop(struct heap *h, struct event *out)
{
	size_t i = 0;

	if (h->n == 0)
		return false;
	*out = h->e[0];
	h->e[0] = h->e[--h->n];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < h->n && ev_less(&h->e[l], &h->e[m]))
			m = l;
		if (r < h->n && ev_less(&h->e[r], &h->e[m]))
			m = r;
		if (m == i)
			break;
		struct event tmp = h->e[i];
		h->e[i] = h->e[m];
		h->e[m] = tmp;
		i = m;
	}
	return true;
}

static uint64_t secs(double s)
{
	return s <= 0 ? 0 : (uint64_t)ceil(s * (double)NS);
}

/* --- verification ---------------------------------------------------------------- */

static void violation(struct sim *s, uint64_t *counter, const char *fmt, ...)
{
	va_list ap;

	(*counter)++;
	s->res->verify.violations++;
	if (s->res->verify.first[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(s->res->verify.first, sizeof(s->res->verify.first), fmt, ap);
		va_end(ap);
	}
}

/* Identity key -> node, by binary search over the keys sorted once. */
static uint32_t node_of_pk(struct sim *s, const uint8_t pk[32])
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = memcmp(s->nodes[s->by_pk[mid]].id->sign_pk, pk, 32);
		if (c == 0)
			return s->by_pk[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return UINT32_MAX;
}

static struct sim *sort_ctx;

static int pk_cmp(const void *a, const void *b)
{
	return memcmp(sort_ctx->nodes[*(const uint32_t *)a].id->sign_pk,
	              sort_ctx->nodes[*(const uint32_t *)b].id->sign_pk, 32);
}

static void vround_drop_inputs(struct vround *r)
{
	for (size_t i = 0; i < r->n_in; i++)
		free(r->in[i].ring);
	free(r->in);
	r->in = NULL;
	r->n_in = r->cap_in = 0;
}

static size_t vround_slot(const struct vround *tab, size_t cap, uint64_t rid, uint32_t attempt)
{
	size_t i = (size_t)((rid ^ ((uint64_t)attempt * 0x9e3779b97f4a7c15ull)) *
	                    0xff51afd7ed558ccdull) &
	           (cap - 1);

	while (tab[i].used && !(tab[i].rid == rid && tab[i].attempt == attempt))
		i = (i + 1) & (cap - 1);
	return i;
}

/* Rebuilds the table with room for twice what survives; drops rounds older than `before`. */
static void vround_rehash(struct sim *s, uint64_t before)
{
	size_t live = 0, cap = 1024;
	struct vround *tab;

	for (size_t i = 0; i < s->vr_cap; i++) {
		if (s->vr[i].used && s->vr[i].t_last >= before)
			live++;
	}
	while (cap < 4 * live)
		cap *= 2;
	tab = calloc(cap, sizeof(*tab));
	SOTTO_ASSERT(tab != NULL);
	for (size_t i = 0; i < s->vr_cap; i++) {
		struct vround *r = &s->vr[i];
		if (!r->used)
			continue;
		if (r->t_last < before)
			vround_drop_inputs(r);
		else
			tab[vround_slot(tab, cap, r->rid, r->attempt)] = *r;
	}
	free(s->vr);
	s->vr = tab;
	s->vr_cap = cap;
	s->vr_used = live;
}

static struct vround *vround_get(struct sim *s, uint64_t rid, uint32_t attempt)
{
	struct vround *r;

	if (2 * (s->vr_used + 1) > s->vr_cap)
		vround_rehash(s, 0);
	r = &s->vr[vround_slot(s->vr, s->vr_cap, rid, attempt)];
	if (!r->used) {
		memset(r, 0, sizeof(*r));
		r->used = true;
		r->rid = rid;
		r->attempt = attempt;
		r->init = UINT32_MAX;
		s->vr_used++;
	}
	r->t_last = s->now;
	return r;
}

/*
 * A round is over a minute after its last record (rounds are bounded by
 * RoundTimeout): forget it, so a long run keeps only the rounds in flight.
 */
static void verify_forget(struct sim *s, uint64_t before)
{
	vround_rehash(s, before);
}

/* --- the core's questions -------------------------------------------------------- */

static struct snode *node_of_arg(void *arg)
{
	return arg;
}

static uint64_t ops_snapshot(void *arg, float *x, uint64_t *steps)
{
	struct snode *nd = node_of_arg(arg);

	memcpy(x, nd->pub, nd->t->model->n_params * sizeof(float));
	if (steps != NULL)
		*steps = nd->pub_steps;
	return nd->pub_seq;
}

static bool ops_training_done(void *arg)
{
	struct snode *nd = node_of_arg(arg);
	return trainer_done(&nd->tr, nd->pub_steps);
}

static bool reachable(struct sim *s, uint32_t a, uint32_t b)
{
	return s->nodes[b].alive && s->nodes[a].side == s->nodes[b].side;
}

static bool ops_peer_connected(void *arg, const uint8_t pk[32])
{
	struct snode *nd = node_of_arg(arg);
	uint32_t b = node_of_pk(cur_sim, pk);

	return b != UINT32_MAX && reachable(cur_sim, nd->idx, b);
}

static uint64_t ops_wall_ms(void *arg)
{
	(void)arg;
	return 1800000000000ull + cur_sim->now / MS; /* a fixed epoch plus virtual time */
}

static void ops_record_outcome(void *arg, uint64_t rid, uint32_t attempt, const char *what);

static void ops_record_input(void *arg, uint64_t rid, uint32_t attempt,
                             const struct codec_params *cp, const uint32_t *ring)
{
	struct snode *nd = node_of_arg(arg);
	struct sim *s = cur_sim;
	struct vround *r = vround_get(s, rid, attempt);
	struct vinput *in;
	size_t n = codec_ring_len(cp);

	if (r->applied || r->init_aborted)
		return; /* nothing left to check it against */
	if (r->n_in == r->cap_in) {
		size_t cap = r->cap_in ? 2 * r->cap_in : 8;
		struct vinput *p = realloc(r->in, cap * sizeof(*p));
		SOTTO_ASSERT(p != NULL);
		r->in = p;
		r->cap_in = cap;
	}
	in = &r->in[r->n_in++];
	in->node = nd->idx;
	in->cp = *cp;
	in->ring = malloc(n * sizeof(uint32_t));
	SOTTO_ASSERT(in->ring != NULL);
	memcpy(in->ring, ring, n * sizeof(uint32_t));
	if (s->o->breakage == SIM_BREAK_SUM && !s->broken && n > 0) {
		in->ring[n / 2] ^= 1;
		s->broken = true;
	}
}

/*
 * Every applied round: its ring is the exact sum of the inputs of the
 * members it counted (checked at its first application, after which its
 * inputs go), every node that applied it applied the same ring (by hash),
 * and its initiator did not abort it.
 */
static void ops_record_applied(void *arg, uint64_t rid, uint32_t attempt,
                               const struct codec_params *cp, const uint32_t *ring,
                               const uint8_t (*members)[32], size_t n)
{
	struct sim *s = cur_sim;
	struct sim_verify *v = &s->res->verify;
	struct vround *r = vround_get(s, rid, attempt);
	size_t len = codec_ring_len(cp), found = 0;
	uint8_t h[32];
	uint32_t *sum;

	(void)arg;
	crypto_generichash(h, sizeof(h), (const uint8_t *)ring, len * sizeof(uint32_t), NULL, 0);
	v->applications++;
	if (r->applied && s->o->breakage == SIM_BREAK_DIFFER && !s->broken) {
		h[0] ^= 1;
		s->broken = true;
	}
	if (r->applied && s->o->breakage == SIM_BREAK_ABORT && !s->broken &&
	    r->init != UINT32_MAX) {
		ops_record_outcome(&s->nodes[r->init], rid, attempt, "aborted (--break)");
		s->broken = true;
	}
	if (r->init_aborted)
		violation(s, &v->applied_aborted,
		          "round %016llx: applied although its initiator aborted it",
		          (unsigned long long)rid);
	if (r->applied) {
		if (memcmp(h, r->hash, sizeof(h)) != 0)
			violation(s, &v->result_differs,
			          "round %016llx: nodes applied different sums",
			          (unsigned long long)rid);
		return;
	}
	r->applied = true;
	memcpy(r->hash, h, sizeof(h));
	v->rounds_applied++;
	sum = calloc(len ? len : 1, sizeof(uint32_t));
	SOTTO_ASSERT(sum != NULL);
	for (size_t m = 0; m < n; m++) {
		uint32_t who = node_of_pk(s, members[m]);
		for (size_t a = 0; a < r->n_in; a++) {
			if (r->in[a].node == who && codec_ring_len(&r->in[a].cp) == len) {
				codec_ring_add(sum, r->in[a].ring, cp);
				found++;
				break;
			}
		}
	}
	if (found != n || memcmp(sum, ring, len * sizeof(uint32_t)) != 0)
		violation(s, &v->sum_mismatch,
		          "round %016llx: applied ring is not the sum of its %zu counted inputs "
		          "(%zu recorded)",
		          (unsigned long long)rid, n, found);
	free(sum);
	vround_drop_inputs(r);
}

static void ops_record_outcome(void *arg, uint64_t rid, uint32_t attempt, const char *what)
{
	struct snode *nd = node_of_arg(arg);
	struct sim *s = cur_sim;
	struct vround *r;

	if (strncmp(what, "aborted", 7) != 0)
		return;
	r = vround_get(s, rid, attempt);
	if (r->init != nd->idx)
		return;
	r->init_aborted = true;
	if (r->applied)
		violation(s, &s->res->verify.applied_aborted,
		          "round %016llx: its initiator aborted it after a node applied it",
		          (unsigned long long)rid);
	vround_drop_inputs(r);
}

/* --- CPU ------------------------------------------------------------------------- */

static void work_done(struct sim *s, const struct work *w);

static bool ps_less(const struct work *a, const struct work *b)
{
	return a->v_done < b->v_done || (a->v_done == b->v_done && a->seq < b->seq);
}

static double ps_rate(const struct sim *s)
{
	double r = (double)s->o->cores / (double)(s->ps_n ? s->ps_n : 1);
	return r < 1.0 ? r : 1.0;
}

static void ps_advance(struct sim *s)
{
	if (s->ps_n > 0)
		s->ps_v += (double)(s->now - s->ps_t) / (double)NS * ps_rate(s);
	s->ps_t = s->now;
}

static void ps_reschedule(struct sim *s)
{
	double dv;

	s->ps_gen++;
	if (s->ps_n == 0)
		return;
	dv = s->ps[0].v_done - s->ps_v;
	heap_push(&s->h, s->now + (dv > 0 ? secs(dv / ps_rate(s)) : 0), EV_PS, 0, s->ps_gen, NULL);
}

static void ps_sift_down(struct sim *s, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < s->ps_n && ps_less(&s->ps[l], &s->ps[m]))
			m = l;
		if (r < s->ps_n && ps_less(&s->ps[r], &s->ps[m]))
			m = r;
		if (m == i)
			return;
		struct work tmp = s->ps[i];
		s->ps[i] = s->ps[m];
		s->ps[m] = tmp;
		i = m;
	}
}

/* Starts cost seconds of work for a node's loop or worker. */
static void work_start(struct sim *s, uint32_t node, bool worker, double cost)
{
	struct work w = {node, s->nodes[node].inc, worker, 0, s->work_seq++};

	cost *= s->o->cpu_scale;
	if (s->o->cores == 0) {
		struct work *p = malloc(sizeof(*p));
		SOTTO_ASSERT(p != NULL);
		*p = w;
		heap_push(&s->h, s->now + secs(cost), EV_DONE, node, 0, p);
		return;
	}
	ps_advance(s);
	w.v_done = s->ps_v + cost;
	if (s->ps_n == s->ps_cap) {
		size_t cap = s->ps_cap ? 2 * s->ps_cap : 256;
		struct work *p = realloc(s->ps, cap * sizeof(*p));
		SOTTO_ASSERT(p != NULL);
		s->ps = p;
		s->ps_cap = cap;
	}
	{
		size_t i = s->ps_n++;
		s->ps[i] = w;
		while (i > 0 && ps_less(&s->ps[i], &s->ps[(i - 1) / 2])) {
			struct work tmp = s->ps[i];
			s->ps[i] = s->ps[(i - 1) / 2];
			s->ps[(i - 1) / 2] = tmp;
			i = (i - 1) / 2;
		}
	}
	ps_reschedule(s);
}

static void ps_event(struct sim *s, uint64_t gen)
{
	if (gen != s->ps_gen)
		return;
	ps_advance(s);
	/* Everything due now completes (1e-12: rounding of the virtual clock). */
	while (s->ps_n > 0 && s->ps[0].v_done <= s->ps_v + 1e-12) {
		struct work w = s->ps[0];
		s->ps[0] = s->ps[--s->ps_n];
		ps_sift_down(s, 0);
		work_done(s, &w);
		ps_advance(s); /* work_done may have started more work at this time */
	}
	ps_reschedule(s);
}

/* --- the network ----------------------------------------------------------------- */

static uint64_t wire_bytes(size_t frame)
{
	size_t segs = (frame + MSS - 1) / MSS;
	return frame + (segs ? segs : 1) * TCPIP;
}

static uint64_t xfer_ns(uint64_t bytes, double rate_bps)
{
	return rate_bps > 0 ? (uint64_t)ceil((double)bytes * 8.0 * (double)NS / rate_bps) : 0;
}

static bool chance(struct sim *s, double p)
{
	return p > 0 && rng_uniform(&s->rng) < p;
}

static void packet_free(struct packet *p)
{
	if (p != NULL)
		free(p->bytes);
	free(p);
}

/* A message leaves node a for node b now: uplink, latency, downlink, faults. */
static void net_send(struct sim *s, uint32_t a, uint32_t b, const struct msg *m)
{
	struct snode *na = &s->nodes[a], *nb = &s->nodes[b];
	size_t size = msg_encoded_size(m), frame;
	uint64_t wire, t, start;
	int copies = 1;
	struct packet *p;

	if (size == 0)
		return;
	frame = size + SEAL_OVER + NNG_OVER;
	wire = wire_bytes(frame);
	na->bytes_out += (double)(size + SEAL_OVER);
	na->msgs_out++;
	s->res->messages++;
	/* The uplink is busy with it whether it arrives or not. */
	t = MAX(s->now, na->up_free);
	start = t;
	na->up_free = t + xfer_ns(wire, na->up.rate_bps);
	na->up_busy += na->up_free - t;
	if (!reachable(s, a, b))
		return; /* a dead or partitioned peer: the frame is lost */
	if (chance(s, na->up.loss) || chance(s, s->o->fault.loss))
		return;
	if (chance(s, na->up.dup) || chance(s, s->o->fault.dup))
		copies = 2;
	for (int c = 0; c < copies; c++) {
		uint64_t lat = secs(na->up.latency_s + nb->down.latency_s);
		uint64_t arrive = na->up_free + lat, done;

		if (chance(s, s->o->fault.delay)) {
			uint64_t d = secs(rng_uniform(&s->rng) * s->o->fault.delay_max_s);
			arrive += d;
			lat += d;
		}
		/*
		 * Cut-through, as packets pipeline: the downlink starts on the
		 * frame when its first bytes arrive (or when it is free) and
		 * cannot finish before the last byte has left the uplink.
		 */
		done = MAX(arrive,
		           MAX(start + lat, nb->down_free) + xfer_ns(wire, nb->down.rate_bps));
		nb->down_free = done;
		p = calloc(1, sizeof(*p));
		SOTTO_ASSERT(p != NULL);
		p->from = a;
		p->to = b;
		p->inc_to = nb->inc;
		p->len = size;
		p->bytes = malloc(size);
		SOTTO_ASSERT(p->bytes != NULL);
		SOTTO_ASSERT(msg_encode(p->bytes, size, &p->len, m) == 0);
		heap_push(&s->h, done, EV_ARRIVE, b, 0, p);
	}
}

/* --- a node's loop ------------------------------------------------------------------- */

static void loop_next(struct sim *s, struct snode *nd);
static void worker_next(struct sim *s, struct snode *nd);
static void node_kill(struct sim *s, struct snode *nd, const char *why);

static void item_push(struct snode *nd, struct item *it)
{
	it->next = NULL;
	if (nd->lq_tail != NULL)
		nd->lq_tail->next = it;
	else
		nd->lq = it;
	nd->lq_tail = it;
}

static struct item *item_new(enum item_type type)
{
	struct item *it = calloc(1, sizeof(*it));
	SOTTO_ASSERT(it != NULL);
	it->type = type;
	return it;
}

static size_t ring_values(const struct msg *m)
{
	switch (m->type) {
	case MSG_MASKED:
		return m->u.masked.n_values;
	case MSG_RESULT:
		return m->u.result.n_values;
	default:
		return 0;
	}
}

/*
 * The ring values of a round with this codec: its segments, times the kept
 * fraction when it subsamples. A low-rank chain's rounds carry a few
 * thousand values where the model has 10^5 (docs/simulation.md, "Costs").
 */
static size_t codec_dim(const struct msg_codec *mc)
{
	double dim = 0;

	for (uint16_t i = 0; i < mc->n_segments && i < MSG_MAX_SEGMENTS; i++)
		dim += (double)mc->segments[i].length;
	if (mc->flags & CODEC_F_SUBSAMPLE)
		dim *= (double)mc->keep_ppm / (double)CODEC_KEEP_ALL;
	return (size_t)dim;
}

/*
 * The modelled cost of one loop item: the wake-up, the bytes sealed and
 * opened, the public-key operations and the ring work its messages imply.
 * The ring work of a round is per value of its vector (nd->round_dim, set
 * from the INVITE the node joins or sends); merging a result touches the
 * whole model.
 */
static double loop_cost(struct snode *nd, const struct item *it, const struct gossip_act *acts,
                        size_t n)
{
	double c = COST_EVENT;
	size_t dim = nd->round_dim;
	size_t n_params = nd->t->model->n_params;

	for (size_t i = 0; i < n; i++) {
		const struct msg *m = &acts[i].msg;
		if (acts[i].type != GOSSIP_SEND)
			continue;
		if (m->type == MSG_INVITE)
			dim = codec_dim(&m->u.invite.codec);
		else if (m->type == MSG_ACCEPT && it != NULL && it->type == IT_MSG &&
		         it->pkt->m.type == MSG_INVITE)
			dim = codec_dim(&it->pkt->m.u.invite.codec);
	}
	nd->round_dim = dim;

	if (it != NULL && it->type == IT_MSG) {
		const struct msg *m = &it->pkt->m;
		c += COST_BYTE * (double)it->pkt->len;
		switch (m->type) {
		case MSG_INVITE: /* join: keys, a signature, encode our input */
			c += 3 * COST_ASYM + COST_VALUE * (double)codec_dim(&m->u.invite.codec);
			break;
		case MSG_ACCEPT:
			c += COST_ASYM;
			break;
		case MSG_KEYS: /* verify the roster, box our shares */
			c += (double)(2 * m->u.keys.n) * COST_ASYM;
			break;
		case MSG_SHARES: /* open boxes, pairwise keys, mask and pack */
			c += (double)(2 * m->u.shares.n) * COST_ASYM +
			     (double)(m->u.shares.n + 2) * COST_VALUE * (double)dim / 4;
			break;
		case MSG_MASKED: /* unpack and add to the sum */
			c += COST_VALUE * (double)ring_values(m) / 2;
			break;
		case MSG_SPLIT:
			c += COST_ASYM / 3;
			break;
		case MSG_SPLIT_SIG:
			c += COST_ASYM;
			break;
		case MSG_UNMASK_REQ:
			c += (double)m->u.unmask_req.n_sigs * COST_ASYM;
			break;
		case MSG_UNMASK_RESP: /* the last one unmasks: keys and mask expansions */
			c += (double)m->u.unmask_resp.n *
			     (COST_ASYM / 4 + COST_VALUE * (double)dim / 8);
			break;
		case MSG_RESULT: /* unpack, decode and verify against our snapshot */
			c += COST_VALUE * (double)ring_values(m);
			break;
		default:
			break;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (acts[i].type == GOSSIP_SEND) {
			const struct msg *m = &acts[i].msg;
			c += COST_BYTE * (double)(ring_values(m) * 6 / 8 + 200);
			if (m->type == MSG_INVITE) /* initiate: snapshot, plan, encode, keys */
				c += 3 * COST_ASYM + 2 * COST_VALUE * (double)dim;
		} else if (acts[i].type == GOSSIP_APPLY) {
			c += COST_APPLY * (double)n_params;
		}
	}
	return c;
}

/* The core's actions of the item whose work just completed take effect. */
static void run_actions(struct sim *s, struct snode *nd)
{
	const struct gossip_act *acts = nd->pending;
	size_t n = nd->n_pending;

	size_t killed_at = n;
	bool kill = false;

	nd->pending = NULL;
	nd->n_pending = 0;
	for (size_t i = 0; i < n && !kill; i++) {
		const struct gossip_act *a = &acts[i];

		killed_at = i + 1;
		switch (a->type) {
		case GOSSIP_SEND: {
			uint32_t b = node_of_pk(s, a->peer);
			if (s->o->verify && a->msg.type == MSG_INVITE)
				vround_get(s, a->msg.round_id, a->msg.attempt)->init = nd->idx;
			if (b != UINT32_MAX)
				net_send(s, nd->idx, b, &a->msg);
			break;
		}
		case GOSSIP_APPLY: {
			struct wcmd *c = calloc(1, sizeof(*c));
			SOTTO_ASSERT(c != NULL);
			c->type = W_APPLY;
			c->avg = a->avg;
			c->snap = a->snapshot;
			c->extra = malloc(a->extra_len ? a->extra_len : 1);
			SOTTO_ASSERT(c->extra != NULL);
			memcpy(c->extra, a->extra, a->extra_len);
			c->extra_len = a->extra_len;
			c->evaluate = a->evaluate;
			c->rid = a->round_id;
			c->seq = a->seq;
			if (nd->wq_tail != NULL)
				nd->wq_tail->next = c;
			else
				nd->wq = c;
			nd->wq_tail = c;
			break;
		}
		case GOSSIP_EVALUATE: {
			struct wcmd *c = calloc(1, sizeof(*c));
			SOTTO_ASSERT(c != NULL);
			c->type = W_EVAL;
			if (nd->wq_tail != NULL)
				nd->wq_tail->next = c;
			else
				nd->wq = c;
			nd->wq_tail = c;
			break;
		}
		case GOSSIP_GRANT:
			trainer_grant(&nd->tr, a->steps, a->cap);
			break;
		case GOSSIP_FINISH:
			trainer_finish(&nd->tr);
			break;
		case GOSSIP_KEYS_SET:
		case GOSSIP_KEYS_CLEAR:
			break; /* no sealing in the simulator */
		case GOSSIP_STOP:
			nd->stopped = true;
			break;
		case GOSSIP_PHASE:
			if (nd->kill_phase == (int)a->phase) {
				nd->kill_phase = -1;
				kill = true; /* after the loop: acts belong to the core */
			}
			break;
		}
	}
	if (kill) {
		/* The APPLYs it did not reach give their buffers back; then the process dies. */
		for (size_t i = killed_at; i < n; i++) {
			if (acts[i].type == GOSSIP_APPLY) {
				free(acts[i].avg);
				free(acts[i].snapshot);
			}
		}
		node_kill(s, nd, "at a phase");
		return;
	}
	worker_next(s, nd);
}

static void timer_arm(struct sim *s, struct snode *nd)
{
	uint64_t at = gossip_next_timer(nd->core);

	if (at == UINT64_MAX || at == nd->timer_at)
		return;
	nd->timer_at = at;
	nd->timer_gen++;
	heap_push(&s->h, MAX(at * MS, s->now), EV_TIMER, nd->idx, nd->timer_gen, NULL);
}

/* Runs the next item of a node's loop, if it is idle. */
static void loop_next(struct sim *s, struct snode *nd)
{
	struct item *it;
	uint64_t now_ms = s->now / MS;
	size_t n;

	if (nd->loop_busy || !nd->alive || nd->lq == NULL)
		return;
	it = nd->lq;
	nd->lq = it->next;
	if (nd->lq == NULL)
		nd->lq_tail = NULL;
	sim_rand_use(&nd->rng);
	log_set_node(nd->name);
	switch (it->type) {
	case IT_START:
		gossip_start(nd->core, now_ms);
		break;
	case IT_MSG:
		/* The encoder made it: the strict decoder must take it. */
		SOTTO_ASSERT(msg_decode(&it->pkt->m, it->pkt->bytes, it->pkt->len) == 0);
		gossip_on_msg(nd->core, now_ms, s->nodes[it->pkt->from].id->sign_pk, &it->pkt->m,
		              true);
		break;
	case IT_LOST:
		gossip_on_link_lost(nd->core, now_ms, s->nodes[it->peer].id->sign_pk);
		break;
	case IT_TIMER:
		gossip_on_timer(nd->core, now_ms);
		break;
	case IT_WORKER:
		gossip_on_worker(nd->core, now_ms, it->wev, it->rc, it->rid, it->epochs, it->acc,
		                 it->loss);
		break;
	}
	sim_rand_use(NULL);
	nd->pending = gossip_actions(nd->core, &n);
	nd->n_pending = n;
	nd->loop_busy = true;
	work_start(s, nd->idx, false, loop_cost(nd, it, nd->pending, n));
	if (it->pkt != NULL)
		packet_free(it->pkt);
	free(it);
}

/* --- a node's worker ------------------------------------------------------------------- */

static void publish(struct snode *nd)
{
	memcpy(nd->pub, nd->t->model->params, nd->t->model->n_params * sizeof(float));
	nd->pub_steps = nd->t->steps;
	nd->pub_seq = nd->w_seq;
	for (size_t k = 0; k < nd->t->model->n_params; k++) {
		if (!isfinite(nd->pub[k])) {
			nd->nonfinite = true;
			break;
		}
	}
}

static void worker_event(struct snode *nd, enum gossip_worker_event wev, int rc, uint64_t rid,
                         double acc, double loss)
{
	struct item *it = item_new(IT_WORKER);

	it->wev = wev;
	it->rc = rc;
	it->rid = rid;
	it->epochs = nd->epochs;
	it->acc = acc;
	it->loss = loss;
	item_push(nd, it);
}

/* Starts the worker's next piece of work, if it is idle. */
static void worker_next(struct sim *s, struct snode *nd)
{
	size_t np = nd->t->model->n_params;
	uint64_t steps;

	if (nd->worker_busy || !nd->alive)
		return;
	if (nd->wq != NULL) {
		struct wcmd *c = nd->wq;
		double cost;

		nd->wq = c->next;
		if (nd->wq == NULL)
			nd->wq_tail = NULL;
		nd->w_cur = c;
		if (c->type == W_APPLY)
			cost = COST_APPLY * (double)np + COST_CKPT;
		else
			cost = COST_EVAL_FLOP * (double)s->eval_rows * (double)np;
		nd->worker_busy = true;
		work_start(s, nd->idx, true, cost);
		return;
	}
	steps = trainer_take(&nd->tr, CHUNK);
	if (steps == 0)
		return;
	nd->w_steps = steps;
	nd->w_fresh = false;
	nd->worker_busy = true;
	work_start(s, nd->idx, true,
	           COST_STEP_FLOP * 3.0 * (double)steps * (double)nd->t->batch * (double)np);
}

static int node_checkpoint(struct snode *nd, const uint8_t *extra, size_t len)
{
	uint8_t *buf = NULL;
	size_t blen = 0;
	int rc;

	if (cur_sim->o->kill_rate <= 0)
		return 0; /* no kill is scheduled: nothing will ever restart from it */
	rc = checkpoint_encode(&buf, &blen, nd->t, extra, len);
	if (rc != 0)
		return rc;
	free(nd->ckpt);
	nd->ckpt = buf;
	nd->ckpt_len = blen;
	return 0;
}

static void evaluate(struct sim *s, struct snode *nd, double *acc, double *loss, int *rc)
{
	struct eval_result er;

	*rc = model_evaluate(nd->t->model, s->eval_ds, &er, NULL);
	*acc = er.accuracy;
	*loss = er.loss;
	if (*rc == 0) {
		nd->acc = er.accuracy;
		nd->evals++;
	}
}

/* Queues the evaluation of a copy of these parameters first in the worker's queue. */
static void eval_queue(struct snode *nd, const float *params, size_t n)
{
	struct wcmd *c = calloc(1, sizeof(*c));

	SOTTO_ASSERT(c != NULL);
	c->type = W_EVAL;
	c->avg = malloc(n * sizeof(float));
	SOTTO_ASSERT(c->avg != NULL);
	memcpy(c->avg, params, n * sizeof(float));
	c->next = nd->wq;
	nd->wq = c;
	if (nd->wq_tail == NULL)
		nd->wq_tail = c;
}

/* The worker's piece of work completed: do it (real training, real merge). */
static void worker_done(struct sim *s, struct snode *nd)
{
	struct train_stats ts;
	double acc = 0, loss = 0;
	int rc;

	nd->worker_busy = false;
	if (nd->w_cur != NULL) {
		struct wcmd *c = nd->w_cur;

		nd->w_cur = NULL;
		if (c->type == W_APPLY) {
			rc = train_merge(nd->t, c->avg, c->snap, NULL);
			if (rc == 0)
				rc = node_checkpoint(nd, c->extra, c->extra_len);
			nd->w_seq = c->seq;
			/* As node/worker.c: the averaged model is evaluated next, as a
			 * job of its own, after the publish and the APPLIED event. */
			if (rc != -ERANGE && c->evaluate)
				eval_queue(nd, nd->t->model->params, nd->t->model->n_params);
			/* The step after an apply, before the model is published (trainer.h). */
			if (rc != -ERANGE && trainer_take_fresh(&nd->tr) &&
			    trainer_steps(&nd->tr, 1, &ts) == 0) {
				nd->epochs = (double)nd->t->steps / (double)nd->tr.steps_per_epoch;
				worker_event(nd, GOSSIP_WORKER_TRAINED, 0, 0, 0, 0);
			}
			publish(nd);
			worker_event(nd, GOSSIP_WORKER_APPLIED, rc, c->rid, 0, 0);
		} else if (c->avg != NULL) {
			float *own = nd->t->model->params;
			nd->t->model->params = c->avg; /* an applied result's model */
			evaluate(s, nd, &acc, &loss, &rc);
			nd->t->model->params = own;
			worker_event(nd, GOSSIP_WORKER_EVALUATED, rc, 0, acc, loss);
		} else {
			evaluate(s, nd, &acc, &loss, &rc);
			worker_event(nd, GOSSIP_WORKER_EVALUATED, rc, 0, acc, loss);
		}
		free(c->avg);
		free(c->snap);
		free(c->extra);
		free(c);
	} else {
		rc = trainer_steps(&nd->tr, nd->w_steps, &ts);
		nd->epochs = (double)nd->t->steps / (double)nd->tr.steps_per_epoch;
		publish(nd);
		worker_event(nd, rc == 0 ? GOSSIP_WORKER_TRAINED : GOSSIP_WORKER_FAILED, rc, 0, 0,
		             0);
	}
	loop_next(s, nd);
	worker_next(s, nd);
}

static void work_done(struct sim *s, const struct work *w)
{
	struct snode *nd = &s->nodes[w->node];

	if (w->inc != nd->inc || !nd->alive)
		return; /* a killed incarnation's work */
	if (w->worker) {
		worker_done(s, nd);
		return;
	}
	nd->loop_busy = false;
	run_actions(s, nd);
	if (!nd->alive)
		return;
	timer_arm(s, nd);
	loop_next(s, nd);
}

/* --- nodes: set-up, kill, restart ------------------------------------------------------ */

static const char *default_model = "Type = mlp\nHidden = 128\nSeed = 42\n";
static const char *default_training =
        "LearningRate = 0.05\nMomentum = 0.9\nBatchSize = 32\nLocalEpochs = 0.25\nEpochs = 20\n";
static const char *default_gossip =
        "GroupSize = 4\nInterval = 1\nRoundTimeout = 5\nEvalEvery = 2\n";

static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	int w;

	for (;;) {
		va_start(ap, fmt);
		w = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
		va_end(ap);
		SOTTO_ASSERT(w >= 0);
		if ((size_t)w < *cap - *len) {
			*len += (size_t)w;
			return;
		}
		*cap = 2 * *cap + (size_t)w;
		*buf = realloc(*buf, *cap);
		SOTTO_ASSERT(*buf != NULL);
	}
}

/* "K = V;K = V" -> lines */
static void append_keys(char **buf, size_t *len, size_t *cap, const char *keys)
{
	for (const char *p = keys; p != NULL && *p != '\0';) {
		const char *e = strchr(p, ';');
		size_t n = e != NULL ? (size_t)(e - p) : strlen(p);

		while (n > 0 && (*p == ' ' || *p == '\n')) {
			p++;
			n--;
		}
		if (n > 0)
			append(buf, len, cap, "%.*s\n", (int)n, p);
		p = e != NULL ? e + 1 : NULL;
	}
}

/* Whether "K = V;.." sets key `name` (case-insensitively, as the config parser). */
static bool key_given(const char *keys, const char *name, size_t n)
{
	for (const char *p = keys; p != NULL && *p != '\0';) {
		while (*p == ' ' || *p == '\n')
			p++;
		if (strncasecmp(p, name, n) == 0 && (p[n] == ' ' || p[n] == '='))
			return true;
		p = strchr(p, ';');
		p = p != NULL ? p + 1 : NULL;
	}
	return false;
}

/* Default lines "K = V\n" the caller's keys do not override, then the caller's keys. */
static void append_merged(char **buf, size_t *len, size_t *cap, const char *defaults,
                          const char *keys)
{
	for (const char *p = defaults; *p != '\0';) {
		const char *e = strchr(p, '\n'), *sp = strchr(p, ' ');
		size_t n = e != NULL ? (size_t)(e - p) : strlen(p);

		if (sp == NULL || sp > p + n || !key_given(keys, p, (size_t)(sp - p)))
			append(buf, len, cap, "%.*s\n", (int)n, p);
		p += n + (e != NULL);
	}
	append_keys(buf, len, cap, keys);
}

/* The peers of every node: everyone, or circles of about D (node/circles.h). */
static int make_overlay(struct sim *s)
{
	uint32_t n = s->n;
	int rc = circles_make(&s->circles, n, s->o->degree, s->o->seed);

	if (rc != 0) {
		fprintf(stderr, "sotto-sim: no overlay of degree %u for %u nodes: %s\n",
		        s->o->degree, n, err_str(rc));
		return rc;
	}
	uint32_t *tmp = malloc(n * sizeof(uint32_t)); /* one scratch list, not n of size n */

	if (tmp == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		uint32_t np = circles_peers(&s->circles, i, tmp);

		s->nodes[i].peers = malloc((np ? np : 1) * sizeof(uint32_t));
		if (s->nodes[i].peers == NULL) {
			rc = -ENOMEM;
			break;
		}
		memcpy(s->nodes[i].peers, tmp, np * sizeof(uint32_t));
		s->nodes[i].n_peers = np;
	}
	free(tmp);
	return rc;
}

static int node_config(struct sim *s, struct snode *nd)
{
	const struct sim_opts *o = s->o;
	size_t len = 0, cap = 4096;
	char *t = malloc(cap);
	char b64[IDENTITY_B64_BYTES];
	int rc;

	SOTTO_ASSERT(t != NULL);
	t[0] = '\0';
	append(&t, &len, &cap,
	       "[Node]\nName = %s\nPrivateKeyFile = sim.key\nListen = ipc:///sim/%u\n"
	       "DataDir = /sim/%u\n\n",
	       nd->name, nd->idx, nd->idx);
	append(&t, &len, &cap, "[Model]\n%s\n[Training]\nDataset = sim\nTestSet = sim\n%s\n",
	       o->model_keys != NULL ? o->model_keys : default_model,
	       o->training_keys != NULL ? o->training_keys : default_training);
	if (o->privacy_keys != NULL)
		append(&t, &len, &cap, "[Privacy]\n%s\n", o->privacy_keys);
	append(&t, &len, &cap, "[Gossip]\n");
	append_merged(&t, &len, &cap, o->config_schedule ? "" : default_gossip, o->gossip_keys);
	for (uint32_t k = 0; k < nd->n_peers; k++) {
		struct snode *p = &s->nodes[nd->peers[k]];
		identity_public_encode(b64, p->id->sign_pk);
		append(&t, &len, &cap,
		       "\n[Peer]\nName = %s\nPublicKey = %s\nEndpoint = ipc:///sim/%u\n", p->name,
		       b64, p->idx);
		if (s->circles.n_circles > 0) {
			uint32_t bits = circles_shared(&s->circles, nd->idx, p->idx);
			const char *sep = "Circles = ";
			for (uint32_t j = 0; j < CIRCLES_PER_SITE; j++) {
				if (bits & (1u << j)) {
					append(&t, &len, &cap, "%sc%u", sep,
					       s->circles.of[nd->idx * CIRCLES_PER_SITE + j]);
					sep = ",";
				}
			}
			append(&t, &len, &cap, "\n");
		}
	}
	rc = config_load_virtual(&nd->cfg, nd->name, t);
	if (rc != 0) {
		fprintf(stderr, "sotto-sim: the generated config of node %s is refused:\n",
		        nd->name);
		config_errors_print(&nd->cfg, stderr);
		free(t);
		return -EINVAL;
	}
	nd->cfg_text = t;
	return 0;
}

static const struct gossip_ops sim_ops = {
        .snapshot = ops_snapshot,
        .training_done = ops_training_done,
        .peer_connected = ops_peer_connected,
        .wall_ms = ops_wall_ms,
};

/* A node's process starts: from its checkpoint if it has one. */
static int node_boot(struct sim *s, struct snode *nd)
{
	struct model_spec spec;
	struct optim_params op;
	struct train_schedule sched;
	struct gossip_ops ops = sim_ops;
	uint8_t *extra = NULL;
	size_t extra_len = 0;
	uint64_t max_steps;
	int rc;

	sim_rand_use(&nd->rng);
	log_set_node(nd->name);
	rc = train_setup_from_config(&spec, &op, &nd->cfg, nd->ds);
	if (rc == 0)
		rc = train_schedule_from_config(&sched, &nd->cfg, (double)nd->cfg.training.epochs);
	if (rc == 0 && nd->ckpt != NULL)
		rc = checkpoint_load_mem(nd->ckpt, nd->ckpt_len, &nd->t, &extra, &extra_len);
	else if (rc == 0)
		rc = train_alloc(&nd->t, &spec, nd->cfg.model.seed, &op,
		                 (uint32_t)nd->cfg.training.batch_size, nd->cfg.training.seed);
	if (rc == 0)
		rc = train_set_schedule(nd->t, &sched);
	if (rc != 0)
		goto out;
	max_steps = (uint64_t)nd->cfg.training.epochs * train_steps_per_epoch(nd->t, nd->ds);
	trainer_init(&nd->tr, nd->t, nd->ds, max_steps);
	if (!nd->priv_planned) {
		rc = privacy_plan(&nd->priv, &nd->cfg, nd->ds->rows, nd->t->batch,
		                  train_steps_per_epoch(nd->t, nd->ds));
		if (rc != 0) {
			config_errors_print(&nd->cfg, stderr);
			goto out;
		}
		nd->priv_planned = true;
		rng_seed3(&nd->dp_rng, s->o->seed, nd->idx, 0xd9);
	}
	nd->priv.reserved = 0; /* charged before a kill, never taken: stays spent */
	if (nd->priv.on) {
		struct train_dp dp = {.clip = nd->priv.clip,
		                      .sigma = nd->priv.sigma,
		                      .random = rng_fill,
		                      .random_arg = &nd->dp_rng};
		rc = train_set_dp(nd->t, &dp);
		if (rc != 0)
			goto out;
		nd->tr.priv = &nd->priv;
	}
	nd->pub = malloc(nd->t->model->n_params * sizeof(float));
	if (nd->pub == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	nd->w_seq = 0;
	publish(nd);
	nd->epochs = (double)nd->t->steps / (double)nd->tr.steps_per_epoch;
	ops.arg = nd;
	if (s->o->verify) {
		ops.record_input = ops_record_input;
		ops.record_applied = ops_record_applied;
		ops.record_outcome = ops_record_outcome;
	}
	rc = gossip_alloc(&nd->core, &nd->cfg, nd->id, nd->t->model, &ops, extra, extra_len,
	                  nd->ds->rows, train_steps_per_epoch(nd->t, nd->ds));
	if (rc != 0)
		goto out;
	gossip_set_silent(nd->core, nd->silent);
	nd->alive = true;
	nd->timer_at = UINT64_MAX;
	nd->timer_gen++;
	item_push(nd, item_new(IT_START));
	loop_next(s, nd);
out:
	free(extra);
	sim_rand_use(NULL);
	return rc;
}

/* Everything a node process holds in memory goes (its checkpoint stays). */
static void node_teardown(struct snode *nd)
{
	nd->alive = false;
	nd->inc++;
	sim_rand_use(&nd->rng);
	gossip_free(nd->core);
	sim_rand_use(NULL);
	nd->core = NULL;
	nd->pending = NULL;
	nd->n_pending = 0;
	while (nd->lq != NULL) {
		struct item *it = nd->lq;
		nd->lq = it->next;
		packet_free(it->pkt);
		free(it);
	}
	nd->lq_tail = NULL;
	while (nd->wq != NULL) {
		struct wcmd *c = nd->wq;
		nd->wq = c->next;
		free(c->avg);
		free(c->snap);
		free(c->extra);
		free(c);
	}
	nd->wq_tail = NULL;
	if (nd->w_cur != NULL) {
		free(nd->w_cur->avg);
		free(nd->w_cur->snap);
		free(nd->w_cur->extra);
		free(nd->w_cur);
		nd->w_cur = NULL;
	}
	nd->loop_busy = nd->worker_busy = false;
	train_free(nd->t);
	nd->t = NULL;
	free(nd->pub);
	nd->pub = NULL;
}

/* kill -9: everything in memory goes; the checkpoint stays; peers notice. */
static void node_kill(struct sim *s, struct snode *nd, const char *why)
{
	(void)why;
	if (!nd->alive)
		return;
	node_teardown(nd);
	s->res->kills++;
	/* Its connections close: every peer that is reachable hears of it. */
	for (uint32_t k = 0; k < nd->n_peers; k++) {
		uint32_t p = nd->peers[k];
		if (s->nodes[p].alive && s->nodes[p].side == nd->side)
			heap_push(&s->h,
			          s->now + secs(nd->up.latency_s + s->nodes[p].down.latency_s),
			          EV_LOST, p, s->nodes[p].inc, (void *)(uintptr_t)nd->idx);
	}
	if (s->o->restart_after_s > 0)
		heap_push(&s->h,
		          s->now + secs(s->o->restart_after_s * (0.5 + rng_uniform(&s->rng))),
		          EV_RESTART, nd->idx, nd->inc, NULL);
}

/* --- faults ------------------------------------------------------------------------------- */

static void schedule_kill(struct sim *s, uint32_t i)
{
	double per_s = s->o->kill_rate / 60.0;

	if (per_s <= 0)
		return;
	heap_push(&s->h, s->now + secs(-log(1.0 - rng_uniform(&s->rng)) / per_s), EV_KILL, i, 0,
	          NULL);
}

static const enum test_phase kill_phases[] = {
        TEST_PHASE_INVITED, TEST_PHASE_KEYS,   TEST_PHASE_SHARES,    TEST_PHASE_MASKED,
        TEST_PHASE_SPLIT,   TEST_PHASE_UNMASK, TEST_PHASE_INITIATED, TEST_PHASE_SPLITTING,
        TEST_PHASE_COLLECT, TEST_PHASE_RESULT,
};

static void on_kill(struct sim *s, uint32_t i)
{
	struct snode *nd = &s->nodes[i];

	schedule_kill(s, i);
	if (!nd->alive)
		return;
	/* Half the kills happen at once, half at the next time a phase comes. */
	if (rng_uniform(&s->rng) < 0.5)
		node_kill(s, nd, "timed");
	else
		nd->kill_phase = (int)kill_phases[rng_below(&s->rng, ARRAY_LEN(kill_phases))];
}

static void on_partition(struct sim *s, bool start)
{
	double per_s = s->o->partition_rate / 60.0;

	if (start) {
		/* Two random halves for a while. */
		for (uint32_t i = 0; i < s->n; i++)
			s->nodes[i].side = rng_below(&s->rng, 2);
		s->res->partitions++;
		s->partitioned = 1;
		heap_push(&s->h, s->now + secs(s->o->partition_s * (0.5 + rng_uniform(&s->rng))),
		          EV_PART, 0, 0, NULL);
		return;
	}
	for (uint32_t i = 0; i < s->n; i++)
		s->nodes[i].side = 0;
	s->partitioned = 0;
	if (per_s > 0)
		heap_push(&s->h, s->now + secs(-log(1.0 - rng_uniform(&s->rng)) / per_s), EV_PART,
		          1, 0, NULL);
}

/* --- progress ------------------------------------------------------------------------------- */

struct probe {
	double t, mean, min, max, bytes, rounds, epochs, aborted;
	uint32_t evaluated;
};

static void probe_take(struct sim *s, struct probe *p)
{
	double sum = 0;

	memset(p, 0, sizeof(*p));
	p->t = (double)s->now / (double)NS;
	p->min = 2;
	p->max = -1;
	for (uint32_t i = 0; i < s->n; i++) {
		struct snode *nd = &s->nodes[i];
		struct node_status st;

		if (nd->core != NULL) {
			gossip_status(nd->core, &st);
			p->rounds += (double)st.rounds_completed;
			p->aborted += (double)st.rounds_aborted;
			p->epochs += st.epochs_trained;
			if (nd->round_id == 0 && gossip_busy(nd->core)) {
				nd->round_id = gossip_round_id(nd->core);
				nd->round_since = s->now / MS;
			} else if (!gossip_busy(nd->core) ||
			           gossip_round_id(nd->core) != nd->round_id) {
				nd->round_id =
				        gossip_busy(nd->core) ? gossip_round_id(nd->core) : 0;
				nd->round_since = s->now / MS;
			} else if (s->now / MS - nd->round_since >
			           (uint64_t)(16000.0 * nd->cfg.gossip.round_timeout) + 5000) {
				violation(s, &s->res->verify.stuck,
				          "node %s in round %016llx for %.0fs", nd->name,
				          (unsigned long long)nd->round_id,
				          (double)(s->now / MS - nd->round_since) / 1000.0);
				nd->round_since = s->now / MS;
			}
			if (s->o->breakage == SIM_BREAK_NAN && !s->broken && nd->pub != NULL &&
			    s->now > 10 * NS) {
				nd->nonfinite = true; /* as if publish() had found a NaN */
				s->broken = true;
			}
			if (nd->nonfinite) { /* publish() checks every model the worker publishes */
				violation(s, &s->res->verify.nonfinite,
				          "node %s: NaN/Inf in its model", nd->name);
				nd->nonfinite = false;
			}
		}
		p->bytes += nd->bytes_out;
		if (nd->evals > 0) {
			sum += nd->acc;
			p->evaluated++;
			p->min = MIN(p->min, nd->acc);
			p->max = MAX(p->max, nd->acc);
		}
	}
	p->mean = p->evaluated ? sum / p->evaluated : 0;
	if (p->evaluated == 0)
		p->min = p->max = 0;
	p->bytes /= s->n;
	p->rounds /= s->n;
	p->epochs /= s->n;
	p->aborted /= s->n;
}

static bool on_probe(struct sim *s)
{
	struct probe p;
	struct sim_result *r = s->res;

	probe_take(s, &p);
	if (s->o->progress != NULL)
		fprintf(s->o->progress, "%.1f %.4f %.4f %.4f %.0f %.2f %.3f %u %.2f\n", p.t, p.mean,
		        p.min, p.max, p.bytes, p.rounds, p.epochs, p.evaluated, p.aborted);
	if (s->o->log != NULL)
		fprintf(s->o->log,
		        "  %6.1fs mean %5.2f%% min %5.2f%% sent %7.2f MB/node rounds %6.1f epochs "
		        "%5.2f\n",
		        p.t, 100 * p.mean, 100 * p.min, p.bytes / 1e6, p.rounds, p.epochs);
	if (r->target_time < 0 && p.evaluated == s->n && p.mean >= s->o->target) {
		r->target_time = p.t;
		r->target_bytes = p.bytes;
		r->target_rounds = p.rounds;
		r->target_epochs = p.epochs;
	}
	/* Agreement: from when on every node's last evaluation is within 0.5 points. */
	if (p.evaluated < s->n || p.max - p.min >= 0.005) {
		r->agree_time = -1;
	} else if (r->agree_time < 0) {
		r->agree_time = p.t;
		r->agree_rounds = p.rounds;
		r->agree_mean = p.mean;
	}
	r->final_time = p.t;
	r->final_mean = p.mean;
	r->final_min = p.min;
	r->final_max = p.max;
	r->final_bytes = p.bytes;
	r->final_rounds = p.rounds;
	r->final_epochs = p.epochs;
	r->final_aborted = p.aborted;
	r->epsilon_max = -1;
	{
		double started = 0, scatter = 0, unformed = 0, nodes = 0;
		for (uint32_t i = 0; i < s->n; i++) {
			struct node_status st;
			if (s->nodes[i].core == NULL)
				continue;
			gossip_status(s->nodes[i].core, &st);
			started += (double)st.rounds_initiated;
			scatter += (double)st.rounds_scatter;
			unformed += (double)st.rounds_unformed;
			nodes++;
		}
		r->scatter_share = started > 0 ? scatter / started : 0;
		r->final_unformed = nodes > 0 ? unformed / nodes : 0;
	}
	for (uint32_t i = 0; i < s->n; i++)
		if (s->nodes[i].priv.on)
			r->epsilon_max = MAX(r->epsilon_max, privacy_spent(&s->nodes[i].priv));
	/*
	 * Rounds whose records are all old enough are over: forget them. A round
	 * lasts at most six phases, and a member waits twice a phase (each at
	 * most RoundTimeout): a minute was too short at 100 kbit/s, where a
	 * RoundTimeout of 120 s let the sum be checked against forgotten inputs.
	 */
	if (s->o->verify) {
		uint64_t keep =
		        (uint64_t)MAX(60.0, 14.0 * s->nodes[0].cfg.gossip.round_timeout) * NS;
		if (s->now > keep)
			verify_forget(s, s->now - keep);
	}
	/*
	 * Progress: rounds must keep completing. A minute without one is a
	 * stall, or three RoundTimeouts where rounds may take that long (a
	 * round of 4 at 100 kbit/s moves about 40 s of vectors).
	 */
	if (p.rounds * s->n > (double)s->completed_total) {
		s->completed_total = (uint64_t)(p.rounds * s->n);
		s->last_done_t = s->now;
	} else if (!s->partitioned) {
		double stall = MAX(60.0, 3.0 * s->nodes[0].cfg.gossip.round_timeout);
		if (s->now - s->last_done_t > (uint64_t)stall * NS) {
			violation(s, &r->verify.no_progress,
			          "no round completed for %.0f s at %.0fs", stall, p.t);
			s->last_done_t = s->now;
		}
	}
	return s->o->stop_at_target && r->target_time >= 0;
}

/* --- the run --------------------------------------------------------------------------------- */

void sim_opts_default(struct sim_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->nodes = 16;
	o->seed = 1;
	o->seconds = 125;
	o->root = ".";
	o->data = SIM_DATA_MNIST;
	o->alpha = 0.5;
	o->split_seed = 7;
	o->synth_dims = 64;
	o->synth_classes = 10;
	o->synth_rows = 500;
	o->synth_test_rows = 2000;
	o->cores = 2;
	o->cpu_scale = 1.0;
	o->probe_every_s = 2.0;
	o->target = 0.93;
	o->log_level = LOG_LEVEL_WARN;
	o->verify = true;
	o->restart_after_s = 5;
	o->partition_s = 10;
}

static void sim_free(struct sim *s)
{
	for (uint32_t i = 0; s->nodes != NULL && i < s->n; i++) {
		struct snode *nd = &s->nodes[i];
		if (nd->core != NULL || nd->t != NULL)
			node_teardown(nd);
		identity_free(nd->id);
		config_fini(&nd->cfg);
		free(nd->cfg_text);
		free(nd->peers);
		free(nd->ckpt);
	}
	free(s->nodes);
	circles_free(&s->circles);
	free(s->by_pk);
	while (s->h.n > 0) {
		struct event e;
		heap_pop(&s->h, &e);
		if (e.type == EV_ARRIVE)
			packet_free(e.p);
		else if (e.type == EV_DONE)
			free(e.p);
	}
	free(s->h.e);
	free(s->ps);
	for (size_t i = 0; i < s->vr_cap; i++) {
		if (s->vr[i].used)
			vround_drop_inputs(&s->vr[i]);
	}
	free(s->vr);
	if (s->eval_ds != s->data.test)
		dataset_free(s->eval_ds);
	sim_data_free(&s->data);
}

int sim_run(const struct sim_opts *o, struct sim_result *res)
{
	struct sim s;
	struct sim_data_spec dsp;
	struct timespec w0, w1;
	struct rusage ru;
	struct event e;
	int rc;

	memset(&s, 0, sizeof(s));
	memset(res, 0, sizeof(*res));
	res->target_time = res->target_bytes = res->target_rounds = res->target_epochs = -1;
	res->agree_time = -1;
	if (o->nodes < 3 || o->nodes > SIM_MAX_NODES)
		return -EINVAL;
	clock_gettime(CLOCK_MONOTONIC, &w0);
	s.o = o;
	s.res = res;
	s.n = o->nodes;
	cur_sim = &s;
	log_set_level((enum log_level)o->log_level);
	/* One simulated thread at a time: OpenBLAS's own threads would only spin. */
	learn_set_threads(1);
	sim_rand_seed(o->seed);
	rng_seed3(&s.rng, o->seed, 0x5173, 0);
	memset(&dsp, 0, sizeof(dsp));
	dsp.nodes = o->nodes;
	dsp.synthetic = o->data == SIM_DATA_SYNTH;
	dsp.root = o->root;
	if (o->data == SIM_DATA_FILES) {
		dsp.train_path = o->train_path;
		dsp.test_path = o->test_path;
	}
	dsp.alpha = o->alpha;
	dsp.seed = o->data == SIM_DATA_SYNTH ? o->seed : o->split_seed;
	dsp.dims = o->synth_dims;
	dsp.classes = o->synth_classes;
	dsp.rows = o->synth_rows;
	dsp.test_rows = o->synth_test_rows;
	rc = sim_data_make(&s.data, &dsp);
	if (rc != 0)
		goto out;
	s.eval_ds = s.data.test;
	s.eval_rows = s.data.test->rows;
	if (o->eval_rows > 0 && o->eval_rows < s.data.test->rows) {
		uint32_t *idx = malloc(o->eval_rows * sizeof(uint32_t));
		rc = -ENOMEM;
		if (idx != NULL) {
			for (uint32_t i = 0; i < o->eval_rows; i++)
				idx[i] = i;
			rc = dataset_subset(&s.eval_ds, s.data.test, idx, o->eval_rows);
			free(idx);
		}
		if (rc != 0)
			goto out;
		s.eval_rows = o->eval_rows;
	}
	s.nodes = calloc(s.n, sizeof(*s.nodes));
	if (s.nodes == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < s.n; i++) {
		struct snode *nd = &s.nodes[i];
		uint8_t seed[IDENTITY_SEED_BYTES];
		struct rng r;

		nd->idx = i;
		snprintf(nd->name, sizeof(nd->name), "%u", i);
		rng_seed3(&r, o->seed, 0x1d, i);
		for (size_t b = 0; b < sizeof(seed); b += 8) {
			uint64_t w = rng_next(&r);
			memcpy(seed + b, &w, 8);
		}
		nd->id = identity_from_seed(seed);
		if (nd->id == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		rng_seed3(&nd->rng, o->seed, 0x7a9d, i);
		nd->ds = s.data.shards[i];
		nd->up = nd->down = i < o->slow_nodes ? o->slow_link : o->link;
		nd->kill_phase = -1;
	}
	/* Exactly round(silent_frac * n) silent nodes, drawn without replacement. */
	for (uint32_t want = (uint32_t)(o->silent_frac * s.n + 0.5), got = 0;
	     got < want && got < s.n;) {
		struct snode *nd = &s.nodes[rng_below(&s.rng, s.n)];
		if (!nd->silent) {
			nd->silent = true;
			got++;
		}
	}
	s.by_pk = malloc(s.n * sizeof(uint32_t));
	if (s.by_pk == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < s.n; i++)
		s.by_pk[i] = i;
	sort_ctx = &s;
	qsort(s.by_pk, s.n, sizeof(uint32_t), pk_cmp);
	rc = make_overlay(&s);
	for (uint32_t i = 0; rc == 0 && i < s.n; i++)
		rc = node_config(&s, &s.nodes[i]);
	for (uint32_t i = 0; rc == 0 && i < s.n; i++) {
		rc = node_boot(&s, &s.nodes[i]);
		if (rc != 0)
			fprintf(stderr, "sotto-sim: node %u: %s\n", i, err_str(rc));
	}
	if (rc != 0)
		goto out;
	for (uint32_t i = 0; i < s.n; i++)
		schedule_kill(&s, i);
	if (o->partition_rate > 0)
		heap_push(&s.h, secs(60.0 / o->partition_rate * rng_uniform(&s.rng)), EV_PART, 1, 0,
		          NULL);
	heap_push(&s.h, secs(o->probe_every_s), EV_PROBE, 0, 0, NULL);

	while (heap_pop(&s.h, &e)) {
		struct snode *nd = &s.nodes[e.node];

		if (e.t > secs(o->seconds)) {
			heap_push(&s.h, e.t, e.type, e.node, e.gen, e.p); /* sim_free frees it */
			break;
		}
		s.now = e.t;
		res->events++;
		switch (e.type) {
		case EV_ARRIVE: {
			struct packet *p = e.p;
			struct snode *to = &s.nodes[p->to];
			struct item *it;

			if (!to->alive || p->inc_to != to->inc || !reachable(&s, p->from, p->to)) {
				packet_free(p);
				break;
			}
			it = item_new(IT_MSG);
			it->pkt = p;
			item_push(to, it);
			loop_next(&s, to);
			break;
		}
		case EV_TIMER:
			if (!nd->alive || e.gen != nd->timer_gen)
				break;
			nd->timer_at = UINT64_MAX;
			item_push(nd, item_new(IT_TIMER));
			loop_next(&s, nd);
			break;
		case EV_DONE:
			work_done(&s, e.p);
			free(e.p);
			break;
		case EV_PS:
			ps_event(&s, e.gen);
			break;
		case EV_PROBE:
			if (on_probe(&s))
				goto done;
			heap_push(&s.h, s.now + secs(o->probe_every_s), EV_PROBE, 0, 0, NULL);
			break;
		case EV_KILL:
			on_kill(&s, e.node);
			break;
		case EV_RESTART:
			if (!nd->alive && !nd->stopped && e.gen == nd->inc) {
				rc = node_boot(&s, nd);
				if (rc != 0) {
					fprintf(stderr, "sotto-sim: restart of node %u: %s\n",
					        e.node, err_str(rc));
					goto out;
				}
				res->restarts++;
			}
			break;
		case EV_PART:
			on_partition(&s, e.node == 1);
			break;
		case EV_LOST:
			if (nd->alive && e.gen == nd->inc) {
				struct item *it = item_new(IT_LOST);
				it->peer = (uint32_t)(uintptr_t)e.p;
				item_push(nd, it);
				loop_next(&s, nd);
			}
			break;
		}
	}
	s.now = secs(o->seconds);
	(void)on_probe(&s);
done : {
	double rmin = 1e18, rmax = 0, bmin = 1e18, bmax = 0, busy = 0;
	for (uint32_t i = 0; i < s.n; i++) {
		struct snode *nd = &s.nodes[i];
		struct node_status st;
		if (nd->core == NULL)
			continue;
		gossip_status(nd->core, &st);
		rmin = MIN(rmin, (double)st.rounds_completed);
		rmax = MAX(rmax, (double)st.rounds_completed);
		bmin = MIN(bmin, nd->bytes_out);
		bmax = MAX(bmax, nd->bytes_out);
		busy += (double)nd->up_busy / (double)MAX(s.now, 1);
	}
	res->rounds_min = rmin;
	res->rounds_max = rmax;
	res->bytes_min = bmin;
	res->bytes_max = bmax;
	res->link_busy = busy / s.n;
}
	rc = 0;
out:
	sim_free(&s);
	cur_sim = NULL;
	clock_gettime(CLOCK_MONOTONIC, &w1);
	res->wall_s = (double)(w1.tv_sec - w0.tv_sec) + (double)(w1.tv_nsec - w0.tv_nsec) * 1e-9;
	getrusage(RUSAGE_SELF, &ru);
	res->rss_kb = (size_t)ru.ru_maxrss;
	return rc;
}

void sim_result_print(FILE *f, const struct sim_opts *o, const struct sim_result *r)
{
	fprintf(f, "nodes %u\n", o->nodes);
	fprintf(f, "gossip %s\n",
	        o->gossip_keys != NULL && o->gossip_keys[0] ? o->gossip_keys : "default");
	if (o->link.rate_bps > 0)
		fprintf(f, "rate %.0fbit\n", o->link.rate_bps);
	else
		fprintf(f, "rate none\n");
	if (r->target_time >= 0)
		fprintf(f,
		        "target_time %.1f\ntarget_bytes %.0f\ntarget_rounds %.2f\ntarget_epochs "
		        "%.3f\n",
		        r->target_time, r->target_bytes, r->target_rounds, r->target_epochs);
	else
		fprintf(f, "target_time -\ntarget_bytes -\ntarget_rounds -\ntarget_epochs -\n");
	fprintf(f,
	        "final_time %.1f\nfinal_mean %.4f\nfinal_min %.4f\nfinal_max %.4f\nfinal_bytes "
	        "%.0f\n"
	        "final_rounds %.2f\nfinal_epochs %.3f\nfinal_aborted %.2f\n",
	        r->final_time, r->final_mean, r->final_min, r->final_max, r->final_bytes,
	        r->final_rounds, r->final_epochs, r->final_aborted);
	if (r->agree_time >= 0)
		fprintf(f, "agree_time %.1f\nagree_rounds %.2f\nagree_mean %.4f\n", r->agree_time,
		        r->agree_rounds, r->agree_mean);
	else
		fprintf(f, "agree_time -\nagree_rounds -\nagree_mean -\n");
	if (r->epsilon_max >= 0)
		fprintf(f, "epsilon_max %.4f\n", r->epsilon_max);
	else
		fprintf(f, "epsilon_max -\n");
	fprintf(f, "rounds_per_node_min %.0f\nrounds_per_node_max %.0f\n", r->rounds_min,
	        r->rounds_max);
	fprintf(f, "bytes_per_node_min %.0f\nbytes_per_node_max %.0f\n", r->bytes_min,
	        r->bytes_max);
	fprintf(f, "uplink_busy %.3f\n", r->link_busy);
	fprintf(f, "scatter_share %.3f\n", r->scatter_share);
	fprintf(f, "final_unformed %.2f\n", r->final_unformed);
	fprintf(f, "events %llu\nmessages %llu\nkills %llu\nrestarts %llu\npartitions %llu\n",
	        (unsigned long long)r->events, (unsigned long long)r->messages,
	        (unsigned long long)r->kills, (unsigned long long)r->restarts,
	        (unsigned long long)r->partitions);
	fprintf(f, "verified_rounds %llu\nverified_applications %llu\nviolations %llu\n",
	        (unsigned long long)r->verify.rounds_applied,
	        (unsigned long long)r->verify.applications,
	        (unsigned long long)r->verify.violations);
	if (r->verify.violations > 0)
		fprintf(f, "first_violation %s\n", r->verify.first);
	fprintf(f, "wall_s %.2f\nrss_kb %zu\n", r->wall_s, r->rss_kb);
}
