/*
 * gossip.c: the node's decisions (see gossip.h).
 *
 * A round's life, from this node's side, lives here and reads top to bottom:
 *
 *   plan_next -> initiate: pick k-1 peers, snapshot, codec plan, round_initiate
 *   on_invite: decline (busy, unknown member, codec, timeout) or round_join
 *   step(): every event that touches the round goes through it: call the
 *           round, record the input once, turn its outbox into SEND and KEYS
 *           actions, then finish() if the round ended
 *   finish(): DONE -> APPLY (x += avg - snapshot) with the checkpoint extra;
 *             ABORTED -> nothing changes (a wrap plans wider and redoes it at
 *             once, WRAP_REDOS times in a row at most; a privacy refusal may
 *             settle())
 *
 * As in OpenBSD ntpd, the loop is elsewhere (node/daemon.c, sim/); this file
 * is the per-node machine. Not here: I/O of any kind.
 */
#include "node/gossip.h"

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "crypto/identity.h"
#include "learn/checkpoint.h"
#include "learn/model.h"
#include "node/codec_plan.h"
#include "node/lowrank_chain.h"
#include "protocol/codec.h"
#include "protocol/codec_msg.h"
#include "secagg/round.h"
#include "util/bytes.h"
#include "util/err.h"
#include "util/log.h"
#include "util/rng.h"
#include "util/util.h"

#define PERSIST_MAGIC     0x534e5031u /* "SNP1": the node's part of a checkpoint */
#define PERSIST_BYTES     72
#define PERSIST_V1        64   /* before known_steps and flags: still read */
#define PERSIST_F_SETTLED 0x1u /* training ended early: see settle() */
#define KEY_SLOTS         64   /* rounds whose transport keys wait to be wiped */
/*
 * Rounds refused in a row because this node's input would be too exposed
 * before it settles (stops training and goes back to its last result).
 */
#define SETTLE_AFTER_ABORTS 3
/*
 * The same for feature statistics (Standardize = federated): tries before
 * a site that never averaged takes the others' statistics without adding
 * its own (stats_settle).
 */
#define STATS_SETTLE_AFTER_ABORTS 12
/*
 * Rounds an initiator redoes at once after a wrap, in a row; after that the
 * next attempt waits for the schedule. The codec plan widens after every
 * wrap, so honest wraps end by themselves; this bounds what a member that
 * claims wraps (any counted member may) can make the initiator spend.
 */
#define WRAP_REDOS 3
/*
 * "Done": training is over and each of the last CONSENSUS_ROUNDS results
 * this node applied was within GOSSIP_CONSENSUS_SPREAD of what it put in
 * (relative L2 distance): the group agrees, up to the codec's rounding.
 */
#define CONSENSUS_ROUNDS 5

/* What the node keeps across restarts, inside the checkpoint. */
struct persist {
	double rho; /* push-sum weight */
	uint64_t rounds_completed, rounds_aborted, rounds_initiated, restarts;
	double epochs; /* feature statistics: 1 once our rows are in (or we gave up adding them) */
	/*
	 * Training steps in the snapshot this node contributed to the last
	 * round it applied. While the model has taken no step since, it is that
	 * round's result, which its members know: the round input says so
	 * (round_input.known). 0 at the start: the shared initial model.
	 */
	uint64_t known_steps;
	uint64_t flags; /* PERSIST_F_* */
};

struct peer {
	const struct config_peer *cfg;
	uint64_t backoff_until; /* ms: do not invite before */
	uint64_t busy_until;    /* ms: it said it is in a round until about then */
	uint64_t free_at;       /* ms: it said it was free (unsolicited STATUS) */
	uint64_t busy_at;       /* ms: we last knew it to be in a round */
	bool last_group;        /* it was in our last round */
	uint32_t failures;      /* consecutive declines / timeouts */
	/*
	 * The link as this node's own exchanges with the peer measured it (see
	 * link_request): a request sent, its answer received. Small answers
	 * give the round-trip time, bulk ones (a vector) the rate at which that
	 * vector drained once the round trip is taken off.
	 */
	double rtt_ms;     /* smoothed; 0: no sample yet */
	double rate_Bps;   /* smoothed bytes/s of vectors; 0: no sample yet */
	uint64_t sent_at;  /* ms: the request awaiting an answer */
	size_t sent_bytes; /* its frame bytes */
	uint8_t sent_type; /* its type; 0: none */
	/*
	 * Moved by a reload: the transport still reaches it at its old
	 * endpoint until the daemon pins it at the new one
	 * (gossip_peer_release); until then it is neither invited nor joined.
	 */
	bool held;
	uint64_t mismatch_log; /* ms: the next "settings differ" line about it may go out */
	/* Feature statistics: we declined one of its rounds as our moments exceed its clip. */
	bool stats_clip_declined;
};

/* The round in flight. */
struct cur {
	struct round *r;
	bool input_recorded; /* record_input done */
	bool keys_installed; /* KEYS_SET went out for this round */
	bool initiator;
	bool known;   /* our input was the last result, unchanged */
	bool adds;    /* feature statistics: our input adds our rows (our first round) */
	uint8_t path; /* initiator: MSG_PATH_* of the round */
	uint8_t k;
	uint8_t members[MSG_MAX_MEMBERS][MSG_KEY_BYTES];
	uint64_t snap_steps; /* training steps in our snapshot */
	uint64_t id;
	uint64_t started;
	uint8_t lr_kind;             /* MSG_LR_*: a round of a low-rank chain */
	bool heard[MSG_MAX_MEMBERS]; /* initiator: the member answered in this round */
	bool unreached_checked;      /* initiator: unreached_check() has run */
};

struct gossip {
	const struct config *cfg;
	const struct identity *id;
	const struct model *model;
	size_t n_params;
	struct gossip_ops ops;
	uint64_t steps_per_epoch;
	bool silent_after_accept; /* test: join rounds, then say nothing */

	struct peer *peers;
	size_t n_peers;
	struct status_peer *st_peers;
	struct node_status st;
	struct persist ps;

	struct cur cur;
	struct round *retired; /* the last round: SEND actions may still point into it */
	struct codec_plan plan;
	struct codec_ef ef;  /* error feedback: the residual this node carries */
	struct lr_chain *lr; /* [Gossip] Rank: low-rank chains; NULL: off */
	/* What low-rank rounds' decodes taught, by kind: [0] basis rounds
	 * (a random Q0), [1] project rounds (Q on the disagreement, whose
	 * spread is larger). Sketches plan nothing: a fixed quantum, sent
	 * centred (LR_SKETCH_WIDTH). */
	struct codec_plan plan_lr[2];
	/* The chain round our chain's project round follows, due once the
	 * worker has applied the round before it (chain_next); 0: none waits. */
	uint64_t lr_due;
	bool resumed;           /* started from a checkpoint (its extra) */
	uint64_t apply_seq;     /* of the last APPLY posted */
	uint64_t eval_at_round; /* rounds_completed when we last evaluated */
	uint64_t last_peer_seen, last_eval, last_alone_log; /* ms */
	double eval_epochs;
	uint64_t next_initiate; /* ms; UINT64_MAX: not planned */
	uint64_t next_grant;    /* ms: the training clock (every Interval) */
	/*
	 * Link pacing: a schedule tick that finds the node in a round sets
	 * want_round, and the round starts when that one ends (initiate_at,
	 * after a short jitter); a round that finds too few free peers is
	 * retried when the first of them says it will be free.
	 */
	bool want_round;
	uint64_t initiate_at; /* ms; UINT64_MAX: none */
	double round_ms;      /* smoothed duration of this node's completed rounds; 0: none */
	double stats_weight;  /* feature statistics: the weight of all our rows */
	size_t vec_bytes;     /* packed bytes of the last round's vector; 0: none yet */
	uint64_t now;         /* of the event being handled */
	bool started, stopping;
	float *last_result;              /* the last result applied (all coordinates), or NULL */
	unsigned privacy_aborts;         /* rounds in a row refused as too exposing for our input */
	bool peer_trains;                /* statistics: a peer invited us into a training round */
	unsigned scatter_fails;          /* our scatter rounds in a row lost after all accepted */
	unsigned star_rounds_left;       /* DataPath auto: star rounds before scatter again */
	unsigned star_fallbacks;         /* how often it fell back (each doubles the next) */
	double spread[CONSENSUS_ROUNDS]; /* the last results' distance from our input */
	unsigned n_spread;               /* results counted in spread (capped) */
	bool said_trained, said_done;    /* the log lines that mark the phases */
	unsigned wrap_redos;             /* rounds redone at once after a wrap, in a row */

	struct {
		uint64_t rid; /* 0: empty */
		uint64_t at;  /* ms: wipe its transport keys */
	} keys[KEY_SLOTS];
	size_t keys_head;

	struct rng rng;
	struct round_out *outbuf;
	size_t outcap;

	struct gossip_act *acts;
	size_t n_acts, cap_acts;
	uint8_t *extra; /* gossip_checkpoint_extra's buffer */
	size_t extra_cap;
	uint8_t *apply_extra; /* the APPLY's extra (one APPLY per call at most) */
	size_t apply_extra_cap;
};

/* --- persistence --------------------------------------------------------- */

static void persist_encode(uint8_t out[PERSIST_BYTES], const struct persist *ps)
{
	uint64_t bits;

	memset(out, 0, PERSIST_BYTES);
	bytes_put_le64(out, PERSIST_MAGIC);
	memcpy(&bits, &ps->rho, 8);
	bytes_put_le64(out + 8, bits);
	bytes_put_le64(out + 16, ps->rounds_completed);
	bytes_put_le64(out + 24, ps->rounds_aborted);
	bytes_put_le64(out + 32, ps->rounds_initiated);
	bytes_put_le64(out + 40, ps->restarts);
	memcpy(&bits, &ps->epochs, 8);
	bytes_put_le64(out + 48, bits);
	bytes_put_le64(out + 56, ps->known_steps);
	bytes_put_le64(out + 64, ps->flags);
}

/*
 * The node's part of a checkpoint: PERSIST_BYTES of counters, then the last
 * result it applied (n_params floats, host order like the checkpoint's) if
 * it had one. Version-1 blobs (64 bytes) still load. *last is set to the
 * result inside `in`, or NULL.
 */
static int persist_decode(struct persist *ps, const uint8_t **last, const uint8_t *in, size_t len,
                          size_t n_params)
{
	uint64_t bits;

	*last = NULL;
	memset(ps, 0, sizeof(*ps));
	if ((len != PERSIST_V1 && len != PERSIST_BYTES &&
	     len != PERSIST_BYTES + n_params * sizeof(float)) ||
	    bytes_get_le64(in) != PERSIST_MAGIC)
		return -EINVAL;
	bits = bytes_get_le64(in + 8);
	memcpy(&ps->rho, &bits, 8);
	ps->rounds_completed = bytes_get_le64(in + 16);
	ps->rounds_aborted = bytes_get_le64(in + 24);
	ps->rounds_initiated = bytes_get_le64(in + 32);
	ps->restarts = bytes_get_le64(in + 40);
	bits = bytes_get_le64(in + 48);
	memcpy(&ps->epochs, &bits, 8);
	ps->known_steps = UINT64_MAX; /* not recorded: assume fresh */
	if (len >= PERSIST_BYTES) {
		ps->known_steps = bytes_get_le64(in + 56);
		ps->flags = bytes_get_le64(in + 64);
		if (len > PERSIST_BYTES)
			*last = in + PERSIST_BYTES;
	}
	if (!isfinite(ps->rho) || ps->rho <= 0 || ps->rho > 128 || !isfinite(ps->epochs))
		return -EINVAL;
	return 0;
}

/* Into g->extra (grown as needed); *len 0 only if out of memory. */
static const uint8_t *extra_build(struct gossip *g, uint8_t **buf, size_t *cap, size_t *len)
{
	size_t bytes = g->n_params * sizeof(float);
	size_t want = PERSIST_BYTES;

	/*
	 * A built-in checkpoint caps its extra (learn/checkpoint.h); an external
	 * model's state file (node/external.h) has no such cap and needs the
	 * last result to resume and export.
	 */
	if (g->last_result != NULL && (PERSIST_BYTES + bytes <= CHECKPOINT_MAX_EXTRA ||
	                               g->model->spec.type == MODEL_EXTERNAL))
		want += bytes;
	if (*cap < want) {
		uint8_t *p = realloc(*buf, want);
		if (p == NULL && want > PERSIST_BYTES)
			want = PERSIST_BYTES, p = realloc(*buf, want);
		if (p == NULL) {
			*len = 0;
			return NULL;
		}
		*buf = p;
		*cap = want;
	}
	persist_encode(*buf, &g->ps);
	if (want > PERSIST_BYTES)
		memcpy(*buf + PERSIST_BYTES, g->last_result, bytes);
	*len = want;
	return *buf;
}

int gossip_extra_progress(const uint8_t *extra, size_t len, size_t n_params, uint64_t *rounds,
                          double *epochs)
{
	struct persist ps;
	const uint8_t *last;

	if (extra == NULL || persist_decode(&ps, &last, extra, len, n_params) != 0)
		return -EINVAL;
	*rounds = ps.rounds_completed;
	*epochs = ps.epochs;
	return 0;
}

int gossip_extra_last(const uint8_t *extra, size_t len, size_t n_params, const uint8_t **last)
{
	struct persist ps;

	if (extra == NULL || persist_decode(&ps, last, extra, len, n_params) != 0)
		return -EINVAL;
	return 0;
}

const uint8_t *gossip_checkpoint_extra(struct gossip *g, size_t *len)
{
	return extra_build(g, &g->extra, &g->extra_cap, len);
}

/* --- actions ------------------------------------------------------------- */

static struct gossip_act *act_push(struct gossip *g, enum gossip_act_type type)
{
	struct gossip_act *a;

	if (g->n_acts == g->cap_acts) {
		size_t cap = g->cap_acts ? 2 * g->cap_acts : 64;
		struct gossip_act *p = malloc(cap * sizeof(*p));
		SOTTO_ASSERT(p != NULL); /* a few KB; the node cannot go on without it */
		if (g->n_acts > 0) {     /* not realloc: the old block may hold SEEDS, wipe it */
			memcpy(p, g->acts, g->n_acts * sizeof(*p));
			sodium_memzero(g->acts, g->cap_acts * sizeof(*p));
		}
		free(g->acts);
		g->acts = p;
		g->cap_acts = cap;
	}
	a = &g->acts[g->n_acts++];
	memset(a, 0, sizeof(*a));
	a->type = type;
	return a;
}

/* Each event call starts with an empty action list. */
static void acts_reset(struct gossip *g)
{
	for (size_t i = 0; i < g->n_acts; i++) {
		sodium_memzero(&g->acts[i].mine, sizeof(g->acts[i].mine));
		if (g->acts[i].type == GOSSIP_SEND && g->acts[i].msg.type == MSG_SEEDS)
			sodium_memzero(&g->acts[i].msg.u.seeds, sizeof(g->acts[i].msg.u.seeds));
	}
	g->n_acts = 0;
	round_free(g->retired);
	g->retired = NULL;
}

const struct gossip_act *gossip_actions(const struct gossip *g, size_t *n)
{
	*n = g->n_acts;
	return g->acts;
}

static void link_request(struct gossip *g, const uint8_t pk[32], const struct msg *m);

static void send_msg(struct gossip *g, const uint8_t pk[32], const struct msg *m)
{
	struct gossip_act *a = act_push(g, GOSSIP_SEND);

	memcpy(a->peer, pk, 32);
	a->msg = *m;
	link_request(g, pk, m);
}

/* A test kill point, in order with the actions around it. */
static void phase(struct gossip *g, enum test_phase p)
{
	act_push(g, GOSSIP_PHASE)->phase = p;
}

/* --- peers --------------------------------------------------------------- */

static struct peer *peer_find(struct gossip *g, const uint8_t pk[32])
{
	for (size_t i = 0; i < g->n_peers; i++) {
		if (sodium_memcmp(g->peers[i].cfg->public_key_bin, pk, 32) == 0)
			return &g->peers[i];
	}
	return NULL;
}

static const char *peer_name(struct gossip *g, const uint8_t pk[32])
{
	struct peer *p = peer_find(g, pk);

	return p != NULL ? p->cfg->name : "?";
}

/* --- links ---------------------------------------------------------------- */

/* A message of at least this many frame bytes is a vector: it samples the rate. */
#define LINK_BULK_BYTES 4096
#define LINK_GAIN       0.25 /* weight of a new sample in the smoothed figures */

static double ewma(double old, double sample)
{
	return old > 0 ? old + LINK_GAIN * (sample - old) : sample;
}

static size_t frame_bytes(const struct msg *m)
{
	return msg_encoded_size(m) + SEAL_OVERHEAD;
}

/* The answer that closes a request (what the other side sends next). */
static bool link_answers(uint8_t req, uint8_t ans)
{
	switch (req) {
	case MSG_INVITE:
		return ans == MSG_ACCEPT || ans == MSG_DECLINE;
	case MSG_PING:
		return ans == MSG_STATUS;
	case MSG_SHARES: /* the initiator forwarded a member's shares: its vector comes */
		return ans == MSG_MASKED;
	case MSG_RESULT:
		return ans == MSG_CHECKED || ans == MSG_ABORT;
	case MSG_UNMASK_RESP: /* a member's last message before the sum */
		return ans == MSG_RESULT;
	case MSG_UNMASK_REQ: /* scatter path: the member's part for our part of the sum */
		return ans == MSG_PART;
	default:
		return false;
	}
}

/* A message to the peer may be a request whose answer times the link. */
static void link_request(struct gossip *g, const uint8_t pk[32], const struct msg *m)
{
	struct peer *p;

	if (m->type != MSG_INVITE && m->type != MSG_PING && m->type != MSG_SHARES &&
	    m->type != MSG_RESULT && m->type != MSG_UNMASK_RESP && m->type != MSG_UNMASK_REQ)
		return;
	if ((p = peer_find(g, pk)) == NULL)
		return;
	p->sent_at = g->now;
	p->sent_type = (uint8_t)m->type;
	p->sent_bytes = m->type == MSG_RESULT ? frame_bytes(m) : 0;
}

/*
 * The peer's message answers our last request: a small exchange is a
 * round-trip sample; one that moved a vector (either way) a rate sample,
 * its bytes over the time beyond one round trip. Both include what the
 * rounds really see (the other members' vectors on the same link, the
 * peer's own work): the figure that predicts how long a round will take.
 */
static void link_response(struct gossip *g, const uint8_t pk[32], const struct msg *m)
{
	struct peer *p = peer_find(g, pk);
	size_t bulk;
	double dt;

	if (p == NULL || p->sent_type == 0 || !link_answers(p->sent_type, (uint8_t)m->type))
		return;
	dt = (double)(g->now - p->sent_at);
	bulk = p->sent_bytes;
	if (m->type == MSG_MASKED || m->type == MSG_RESULT || m->type == MSG_PART)
		bulk = frame_bytes(m);
	p->sent_type = 0;
	if (m->type == MSG_MASKED && m->u.masked.vector.len == 0)
		return; /* scatter path: no vector, and the member's masking in the time */
	if (bulk < LINK_BULK_BYTES) {
		p->rtt_ms = ewma(p->rtt_ms, MAX(dt, 0.1));
	} else if (p->rtt_ms > 0) {
		double t = MAX(dt - p->rtt_ms, 1.0); /* ms */
		p->rate_Bps = ewma(p->rate_Bps, (double)bulk * 1000.0 / t);
	}
	g->st_peers[p - g->peers].rtt_ms = p->rtt_ms;
	g->st_peers[p - g->peers].rate_Bps = p->rate_Bps;
}

/*
 * How long this node expects a round with the peer to take, from the
 * measured link: the vector both ways plus the round trips of the small
 * phases (0: not measured yet).
 */
static double link_round_ms(const struct peer *p, size_t vector_bytes)
{
	if (p->rtt_ms <= 0 || p->rate_Bps <= 0)
		return 0;
	return 6.0 * p->rtt_ms + 2.0 * (double)vector_bytes * 1000.0 / p->rate_Bps;
}

/*
 * DataPath = auto: the scatter path when moving vectors is what a round
 * waits for, i.e. when some member's measured link takes AUTO_SCATTER_MS or
 * more per vector (3 Mbit/s: about 200 ms for the default codec's 76 kB);
 * the star path otherwise. On fast links the star's fewer messages and the
 * initiator's single unmasking win (docs/benchmarks.md (b)). A member whose
 * link is not measured yet counts as fast as this node's fastest measured
 * link: no link of ours is faster than our own, so a node whose every
 * measured link is slow (a site on a 100 kbit/s radio, which measures a few
 * of its peers per round) takes the scatter path with unmeasured members
 * too, and a node with nothing measured takes the star.
 */
#define AUTO_SCATTER_MS 100.0

static uint8_t pick_path(struct gossip *g, const uint8_t (*members)[32], uint8_t k)
{
	double fastest = 0;

	if (g->cfg->gossip.data_path != CONFIG_PATH_AUTO)
		return (uint8_t)g->cfg->gossip.data_path;
	if (g->star_rounds_left > 0) {
		g->star_rounds_left--;
		return MSG_PATH_STAR;
	}
	for (size_t i = 0; i < g->n_peers; i++)
		fastest = MAX(fastest, g->peers[i].rate_Bps);
	for (uint8_t j = 1; j < k && g->vec_bytes > 0; j++) {
		const struct peer *p = peer_find(g, members[j]);
		double rate = p != NULL && p->rate_Bps > 0 ? p->rate_Bps : fastest;
		if (rate > 0 && (double)g->vec_bytes * 1000.0 / rate >= AUTO_SCATTER_MS)
			return MSG_PATH_SCATTER;
	}
	return MSG_PATH_STAR;
}

static bool connected(struct gossip *g, const uint8_t pk[32])
{
	return g->ops.peer_connected == NULL || g->ops.peer_connected(g->ops.arg, pk);
}

static void peer_seen(struct gossip *g, uint64_t now, const uint8_t pk[32])
{
	struct peer *p = peer_find(g, pk);

	if (p == NULL)
		return;
	g->st_peers[p - g->peers].last_seen = (double)g->ops.wall_ms(g->ops.arg) / 1000.0;
	g->last_peer_seen = now;
}

static void peer_penalise(struct gossip *g, uint64_t now, const uint8_t pk[32])
{
	struct peer *p = peer_find(g, pk);
	double base = g->cfg->gossip.interval * 1000.0;

	if (p == NULL)
		return;
	if (p->failures < 6)
		p->failures++;
	/* Exponential backoff with jitter, so busy peers are not hammered. */
	p->backoff_until = now + (uint64_t)(base * (double)(1u << (p->failures - 1)) *
	                                    (0.5 + rng_uniform(&g->rng)));
}

/* --- the round in flight ------------------------------------------------- */

/*
 * Forward secrecy for model data: from the roster on, frames of the round
 * are sealed with keys that mix the members' signed ephemeral keys
 * (crypto/seal.h), wiped a grace period after the round.
 */
static void keys_install(struct gossip *g)
{
	uint8_t idx[MSG_MAX_MEMBERS], pks[MSG_MAX_MEMBERS][32];
	struct seal_eph mine;
	size_t m;

	if (g->cur.r == NULL || g->cur.keys_installed)
		return;
	m = round_transport_keys(g->cur.r, &mine, idx, pks);
	for (size_t i = 0; i < m; i++) {
		struct gossip_act *a;

		if (idx[i] >= g->cur.k)
			continue;
		a = act_push(g, GOSSIP_KEYS_SET);
		a->round_id = g->cur.id;
		memcpy(a->peer, g->cur.members[idx[i]], 32);
		a->mine = mine;
		memcpy(a->peer_eph, pks[i], 32);
	}
	sodium_memzero(&mine, sizeof(mine));
	g->cur.keys_installed = m > 0;
}

/* Record this node's plaintext input once it exists (verification). */
static void record_input(struct gossip *g)
{
	const uint32_t *in;

	if (g->ops.record_input == NULL || g->cur.r == NULL || g->cur.input_recorded)
		return;
	in = round_input_ring(g->cur.r);
	if (in == NULL)
		return;
	g->ops.record_input(g->ops.arg, g->cur.id, round_attempt(g->cur.r), round_codec(g->cur.r),
	                    in);
	g->cur.input_recorded = true;
}

/* The round's outbox becomes SEND actions; keys go in once the roster is known. */
static void flush(struct gossip *g, struct round_outbox *ob)
{
	bool sent[MSG_TYPE_MAX + 1] = {false};

	/* A member's frames after KEYS go round-sealed; the initiator's KEYS must not. */
	if (g->cur.r != NULL && !g->cur.initiator)
		keys_install(g);
	for (size_t i = 0; i < ob->n; i++) {
		const struct round_out *o = &ob->out[i];

		if (o->to >= g->cur.k ||
		    sodium_memcmp(g->cur.members[o->to], g->id->sign_pk, 32) == 0)
			continue;
		if (g->silent_after_accept && !g->cur.initiator && o->msg.type != MSG_ACCEPT &&
		    o->msg.type != MSG_DECLINE)
			continue;
		send_msg(g, g->cur.members[o->to], &o->msg);
		sent[o->msg.type] = true;
	}
	for (size_t i = 0; i < ob->n; i++) {
		if (ob->out[i].msg.type == MSG_SEEDS) /* unmasking secrets: sealed and sent */
			sodium_memzero(&ob->out[i].msg.u.seeds, sizeof(ob->out[i].msg.u.seeds));
	}
	ob->n = 0;
	keys_install(g);
	/* Test-only kill points right after a phase's messages went out. */
	if (sent[MSG_INVITE])
		phase(g, TEST_PHASE_INITIATED);
	if (sent[MSG_SHARES])
		phase(g, TEST_PHASE_SHARES);
	if (sent[MSG_MASKED])
		phase(g, TEST_PHASE_MASKED);
	if (sent[MSG_SPLIT])
		phase(g, TEST_PHASE_SPLITTING);
	if (sent[MSG_UNMASK_REQ])
		phase(g, TEST_PHASE_COLLECT);
	if (sent[MSG_RESULT])
		phase(g, TEST_PHASE_RESULT);
	if (sent[MSG_PART])
		phase(g, TEST_PHASE_PARTS);
	if (sent[MSG_PART_SUM])
		phase(g, TEST_PHASE_PARTSUM);
}

static void outbox_init(struct gossip *g, struct round_outbox *ob)
{
	ob->out = g->outbuf;
	ob->cap = g->outcap;
	ob->n = 0;
}

/*
 * A wanted round starts shortly: after a jitter of up to a tenth of a
 * round (at least 50 ms), so that the members of a round that just ended do
 * not all invite at once, and the first to invite finds the others free.
 */
static void initiate_soon(struct gossip *g, uint64_t now)
{
	double j = MAX(50.0, 0.1 * g->round_ms) * rng_uniform(&g->rng);

	g->initiate_at = MIN(g->initiate_at, now + (uint64_t)j);
}

/*
 * Tells peers (up to ANNOUNCE_MAX of them, from a random one on) that this
 * node is free: an unsolicited STATUS, a hundred bytes each. Initiators
 * invite free peers first, so fewer invitations meet a busy node.
 */
#define ANNOUNCE_MAX 32
static void announce_free(struct gossip *g)
{
	size_t n = MIN(g->n_peers, (size_t)ANNOUNCE_MAX), start;
	struct msg s;

	if (g->n_peers == 0)
		return;
	memset(&s, 0, sizeof(s));
	s.type = MSG_STATUS;
	s.u.status.rounds_ok = g->ps.rounds_completed;
	s.u.status.rounds_aborted = g->ps.rounds_aborted;
	start = (size_t)(rng_next(&g->rng) % g->n_peers);
	for (size_t i = 0; i < n; i++) {
		const struct peer *p = &g->peers[(start + i) % g->n_peers];
		if (connected(g, p->cfg->public_key_bin))
			send_msg(g, p->cfg->public_key_bin, &s);
	}
}

static void round_clear(struct gossip *g, uint64_t now)
{
	if (g->cur.keys_installed) {
		/*
		 * Late frames of this round still open for a while; then the keys
		 * go. A slot still holding a round (a burst of short rounds) has
		 * that round's keys wiped now, a little early, never left behind.
		 */
		if (g->keys[g->keys_head].rid != 0)
			act_push(g, GOSSIP_KEYS_CLEAR)->round_id = g->keys[g->keys_head].rid;
		g->keys[g->keys_head].rid = g->cur.id;
		g->keys[g->keys_head].at =
		        now + (uint64_t)(2000.0 * g->cfg->gossip.round_timeout) + 5000;
		g->keys_head = (g->keys_head + 1) % KEY_SLOTS;
	}
	round_free(g->retired);
	g->retired = g->cur.r; /* SEND actions of this call may point into it */
	memset(&g->cur, 0, sizeof(g->cur));
	g->st.state = g->stopping ? "stopping" : "idle";
	g->st.round_phase = "-";
	g->st.round_id = 0;
	log_set_round(0);
	codec_ef_drop(&g->ef); /* a round applied took its residual before this */
	if (!g->stopping) {
		/* Not between the rounds of a low-rank chain: it is not free then
		 * (it declines other rounds), and four of a chain's five rounds
		 * would each cost a STATUS to every peer. */
		if (g->lr == NULL || !lr_chain_waiting(g->lr, now))
			announce_free(g);
		if (g->want_round)
			initiate_soon(g, now);
	}
}

static void initiate(struct gossip *g, uint64_t now);

/* The least push-sum weight a node has (rows / 1000, at least this). */
#define RHO_MIN 0.01

/* The initial model of [Model] Seed: public, the same at every site. */
static int initial_model(const struct gossip *g, float *out)
{
	struct model *m = NULL;
	int rc = model_alloc(&m, &g->model->spec, 1);

	if (rc != 0)
		return rc;
	if (m->n_params != g->n_params) {
		model_free(m);
		return -EINVAL;
	}
	model_init(m, g->cfg->model.seed);
	memcpy(out, m->params, g->n_params * sizeof(float));
	model_free(m);
	return 0;
}

/*
 * No group can average this node's input without leaving it nearly alone
 * among inputs its members know (the others have stopped training): the
 * rounds it tries abort with reason "privacy". Once its own training is over
 * too, or after a few such rounds in a row, it stops training and goes back
 * to the last result it applied, which its group-mates know already (or,
 * never having applied one, to the public initial model with the least
 * weight), so it rejoins the averaging. What it trained since that result never leaves the
 * site (docs/security.md, "What a small group leaks").
 */
static void settle(struct gossip *g)
{
	struct gossip_act *a;
	uint64_t steps = 0;
	float *x, *avg;
	size_t len;

	x = malloc(g->n_params * sizeof(float));
	avg = malloc(g->n_params * sizeof(float));
	if (x == NULL || avg == NULL || g->ops.snapshot(g->ops.arg, x, &steps) != g->apply_seq ||
	    (g->last_result == NULL && initial_model(g, avg) != 0)) {
		free(x);
		free(avg);
		return;
	}
	act_push(g, GOSSIP_FINISH);
	if (g->last_result != NULL) {
		memcpy(avg, g->last_result, g->n_params * sizeof(float));
		log_info("training stops at %.2f epochs: no group can average what this node "
		         "learnt alone without exposing it; back to the last group result",
		         g->ps.epochs);
	} else {
		/*
		 * Never averaged (it joined, or came back, after the others had
		 * finished training): back to the initial model, which every site
		 * derives from [Model] Seed, with the least weight, so that its
		 * rounds hand it the group's model while adding next to nothing.
		 * It starts none itself until then (see initiate()).
		 */
		g->ps.rho = RHO_MIN;
		log_info("training stops at %.2f epochs: no group can average what this node "
		         "learnt alone without exposing it, and it has no group result yet; back "
		         "to the initial model (weight %.2f), to receive the group's",
		         g->ps.epochs, RHO_MIN);
	}
	g->ps.known_steps = steps;
	g->ps.flags |= PERSIST_F_SETTLED;
	g->privacy_aborts = 0;
	a = act_push(g, GOSSIP_APPLY);
	a->avg = avg;
	a->snapshot = x;
	a->extra = extra_build(g, &g->apply_extra, &g->apply_extra_cap, &len);
	a->extra_len = len;
	a->seq = ++g->apply_seq;
}

static bool is_stats(const struct gossip *g)
{
	return g->model->spec.type == MODEL_STATS;
}

/* Feature statistics: whether this site's rows are in (or it gave up adding them). */
static bool stats_added(const struct gossip *g)
{
	return g->ps.epochs >= 1.0;
}

/*
 * Feature statistics: this round's input, from x (this site's own moments,
 * as the snapshot gives them). A site adds its rows once, in the first
 * round it completes: until then its input is its own moments with weight
 * rows / 1000, fresh, so the fresh-input rule protects it like a model's
 * first input (a sum holding it holds two other fresh inputs at least),
 * and it enters exactly one sum. Its later inputs are its last result,
 * known: nothing of its own is in them. A site that gave up adding
 * (stats_settle) puts in zero weight until its first result: zeros in the
 * ring, whatever its vector.
 */
static void stats_input(struct gossip *g, float *x, double *rho, bool *known, bool *adds)
{
	*adds = !stats_added(g);
	if (*adds) {
		*rho = g->stats_weight;
		*known = false;
	} else if (g->last_result != NULL) {
		memcpy(x, g->last_result, g->n_params * sizeof(float));
		*rho = g->ps.rho;
		*known = true;
	} else {
		*rho = 0;
		*known = true;
	}
}

/*
 * Feature statistics: whether this input (x sent as rho x) fits every clip
 * of the invitation's codec. A member whose moments would be clipped (a
 * site with far more rows than the initiator) declines rather than let the
 * group sum wrong statistics.
 */
static bool stats_fits(const struct msg_invite *iv, const float *x, double rho)
{
	struct codec_params *cp = malloc(sizeof(*cp));
	bool ok = cp != NULL && codec_from_msg(cp, &iv->codec) == 0;

	for (uint32_t s = 0; ok && s < cp->nseg; s++) {
		const struct codec_segment *sg = &cp->seg[s];
		double clip = (ldexp(1.0, sg->bits - 1) - 1) * (double)sg->quantum;
		for (uint32_t i = 0; ok && i < sg->length; i++)
			ok = fabs(rho * (double)x[sg->offset + i]) <= clip;
	}
	free(cp);
	return ok;
}

/*
 * Feature statistics: a site whose moments no group could sum with enough
 * other fresh inputs (the others have added theirs: their inputs are
 * known) cannot add them without exposing them. It gives up adding them:
 * until its first result it puts in zero weight (zeros in the ring,
 * whatever its vector) and starts no rounds (its plan would show its own
 * moments' magnitude), so a round it joins hands it the others' pooled
 * statistics. Push-sum stays exact for the rows added; its own are left
 * out, which the log says.
 */
static void stats_settle(struct gossip *g)
{
	g->ps.epochs = 1.0;
	g->ps.rho = 0;
	g->privacy_aborts = 0;
	log_warnx("feature statistics: no group had enough sites still adding their rows to add "
	          "this site's privately (%d tries): it takes the others' pooled statistics "
	          "without adding its own rows",
	          STATS_SETTLE_AFTER_ABORTS);
}

/*
 * DataPath = auto falls back to the star for STAR_FALLBACK_ROUNDS after
 * SCATTER_FAILS_MAX scatter rounds in a row were lost once every member had
 * accepted: what members that reach the initiator but not each other cause.
 * Each fallback doubles the next (up to 64 times): a network where scatter
 * never works loses 3 rounds of 16, then of 32, ... then of about 1,000.
 */
#define SCATTER_FAILS_MAX    3
#define STAR_FALLBACK_ROUNDS 16

static bool scatter_lost(const struct cur *c, int reason)
{
	if (reason != MSG_REASON_TOO_FEW && reason != MSG_REASON_TIMEOUT)
		return false;
	for (uint8_t i = 1; i < c->k; i++) {
		if (!c->heard[i])
			return false; /* a member never answered: not the data path's doing */
	}
	return true;
}

/*
 * The plan a round of this kind is planned with and teaches: the full
 * rounds' own, one for low-rank basis rounds and one for project rounds
 * (their spreads differ several-fold; with one plan for both, 4-5% of the
 * basis rounds wrapped on the bench, 2% with two), none for sketches
 * (exact).
 */
static struct codec_plan *plan_for(struct gossip *g, uint8_t lr_kind)
{
	switch (lr_kind) {
	case MSG_LR_NONE:
		return &g->plan;
	case MSG_LR_BASIS:
		return &g->plan_lr[0];
	case MSG_LR_PROJECT:
		return &g->plan_lr[1];
	default:
		return NULL;
	}
}

/* One more aborted round; unformed if it ended before KEYS fixed its group. */
static void count_aborted(struct gossip *g)
{
	g->ps.rounds_aborted++;
	g->st.rounds_unformed += !g->cur.keys_installed; /* matchmaking: no vector moved */
}

static void finish_aborted(struct gossip *g, uint64_t now)
{
	struct cur *c = &g->cur;
	int reason = round_abort_reason(c->r);

	if (g->ops.record_outcome != NULL) {
		char why[64];
		snprintf(why, sizeof(why), "aborted %s", msg_reason_name(reason));
		g->ops.record_outcome(g->ops.arg, c->id, round_attempt(c->r), why);
	}
	count_aborted(g);
	if (c->lr_kind != MSG_LR_NONE)
		lr_chain_drop(g->lr); /* what the chain applied stays; it goes no further */
	if (reason != MSG_REASON_WRAP)
		g->wrap_redos = 0;
	if (c->initiator && c->path == MSG_PATH_SCATTER && scatter_lost(c, reason) &&
	    ++g->scatter_fails >= SCATTER_FAILS_MAX &&
	    g->cfg->gossip.data_path == CONFIG_PATH_AUTO) {
		/* members that reach us but maybe not each other: the star carries on */
		g->star_rounds_left = STAR_FALLBACK_ROUNDS << MIN(g->star_fallbacks, 6u);
		g->star_fallbacks++;
		log_warnx("%u scatter rounds in a row aborted after every member accepted (members "
		          "that cannot reach each other?): the next %u rounds take the star path",
		          g->scatter_fails, g->star_rounds_left);
		g->scatter_fails = 0;
	}
	log_info("round aborted (%s) after %.2fs; model unchanged", msg_reason_name(reason),
	         (double)(now - c->started) / 1000.0);
	if (c->initiator && reason == MSG_REASON_TOO_FEW) {
		/* Peers that never answered get a rest before we invite them again
		 * (the ones that said they were busy wait as long as they said). */
		for (uint8_t i = 1; i < c->k; i++) {
			if (!c->heard[i])
				peer_penalise(g, now, c->members[i]);
		}
	}
	if (reason == MSG_REASON_PRIVACY && !c->known && g->model->spec.type == MODEL_STATS) {
		if (++g->privacy_aborts >= STATS_SETTLE_AFTER_ABORTS)
			stats_settle(g);
	} else if (reason == MSG_REASON_PRIVACY && !c->known &&
	           ++g->privacy_aborts >= (g->ops.training_done(g->ops.arg)
	                                           ? 1u
	                                           : (unsigned)SETTLE_AFTER_ABORTS)) {
		round_clear(g, now);
		settle(g);
		return;
	}
	if (reason == MSG_REASON_WRAP) {
		/* Plan wider from now on; an initiator redoes the round at once,
		 * up to WRAP_REDOS times in a row, then waits for the schedule. */
		bool redo = c->initiator && !g->stopping && g->wrap_redos < WRAP_REDOS;
		codec_plan_observe(plan_for(g, c->lr_kind), round_codec(c->r), NULL, true);
		if (c->initiator)
			g->wrap_redos = redo ? g->wrap_redos + 1 : 0;
		round_clear(g, now);
		if (redo)
			initiate(g, now);
		return;
	}
	round_clear(g, now);
}

/* The relative L2 distance of a result from this node's input, into spread[]. */
static void spread_note(struct gossip *g, const float *avg, const float *snap)
{
	double d = 0, x = 0;

	for (size_t i = 0; i < g->n_params; i++) {
		double e = (double)avg[i] - (double)snap[i];
		d += e * e;
		x += (double)snap[i] * (double)snap[i];
	}
	memmove(&g->spread[1], &g->spread[0], (CONSENSUS_ROUNDS - 1) * sizeof(g->spread[0]));
	g->spread[0] = sqrt(d) / MAX(sqrt(x), 1e-12);
	g->n_spread = MIN(g->n_spread + 1, (unsigned)CONSENSUS_ROUNDS);
}

/* The largest of the last results' spreads; < 0 before the first. */
static double spread_max(const struct gossip *g)
{
	double m = g->n_spread > 0 ? 0 : -1;

	for (unsigned i = 0; i < g->n_spread; i++)
		m = MAX(m, g->spread[i]);
	return m;
}

/*
 * The node's phase (status), and the log lines that mark it: training over,
 * then the group agreeing. Returns whether the node is done.
 */
static bool phase_check(struct gossip *g)
{
	bool trained = g->ops.training_done(g->ops.arg);

	if (g->model->spec.type == MODEL_STATS) {
		/* No training: the daemon decides when the statistics are agreed. */
		g->st.phase = "standardising";
		return false;
	}
	bool done = trained && g->n_spread == CONSENSUS_ROUNDS &&
	            spread_max(g) < GOSSIP_CONSENSUS_SPREAD;

	if (trained && !g->said_trained) {
		g->said_trained = true;
		log_info(
		        "training over after %.2f epochs (Epochs = %d): averaging only from now on",
		        g->ps.epochs, g->cfg->training.epochs);
	}
	if (done && !g->said_done) {
		g->said_done = true;
		log_info("done: the group agrees (the last %d results moved this node's model by "
		         "at most %.2g of its norm) after %llu rounds",
		         CONSENSUS_ROUNDS, spread_max(g),
		         (unsigned long long)g->ps.rounds_completed);
	}
	g->st.phase = !trained ? "training" : done ? "done" : "averaging";
	return done;
}

static void chain_next(struct gossip *g, uint64_t now, uint8_t kind, uint64_t ref,
                       const uint8_t (*members)[32], uint8_t k);
static const char *lr_kind_name(uint8_t kind);

static void finish_done(struct gossip *g, uint64_t now)
{
	struct cur *c = &g->cur;
	uint8_t counted[MSG_MAX_MEMBERS];
	uint8_t chain[MSG_MAX_MEMBERS][32], chain_k = c->k, lr_next = MSG_LR_NONE;
	uint64_t chain_id = c->id;
	struct gossip_act *a;
	float *avg = NULL, *snap = NULL;
	float rho_sum = 0;
	uint32_t members = 0;
	bool evaluate;
	size_t nc, len;

	if (c->initiator && c->path == MSG_PATH_SCATTER)
		g->scatter_fails = g->star_fallbacks = 0; /* it works here after all */

	codec_plan_observe(plan_for(g, c->lr_kind), round_codec(c->r), round_decode_stats(c->r),
	                   false);
	g->wrap_redos = 0;
	nc = round_counted(c->r, counted);
	if (g->ops.record_applied != NULL && round_result_ring(c->r) != NULL) {
		uint8_t keys[MSG_MAX_MEMBERS][32];
		for (size_t i = 0; i < nc; i++)
			memcpy(keys[i], c->members[counted[i]], 32);
		g->ops.record_applied(g->ops.arg, c->id, round_attempt(c->r), round_codec(c->r),
		                      round_result_ring(c->r), (const uint8_t(*)[32])keys, nc);
	}
	if (g->ops.record_outcome != NULL)
		g->ops.record_outcome(g->ops.arg, c->id, round_attempt(c->r), "done");
	if (round_take_result(c->r, &avg, &snap, &rho_sum, &members) != 0 || members == 0 ||
	    !(rho_sum > 0)) {
		log_warnx("round result cannot be used (weight %g): not applied", (double)rho_sum);
		free(avg);
		free(snap);
		if (c->lr_kind != MSG_LR_NONE)
			lr_chain_drop(g->lr);
		count_aborted(g);
		round_clear(g, now);
		return;
	}
	for (size_t i = 0; i < nc; i++) {
		struct peer *p = peer_find(g, c->members[counted[i]]);
		if (p != NULL) {
			g->st_peers[p - g->peers].rounds++;
			p->failures = 0;
		}
	}
	g->round_ms = ewma(g->round_ms, (double)(now - c->started));
	if (c->lr_kind != MSG_LR_NONE) {
		float *fa = NULL, *fs = NULL;
		bool all = nc == c->k;
		int rc;

		memcpy(chain, c->members, (size_t)c->k * 32);
		rc = lr_chain_done(g->lr, c->id, (const uint8_t(*)[32])c->members, c->k, all, avg,
		                   snap, &fa, &fs, now,
		                   (uint64_t)(1000.0 * g->cfg->gossip.round_timeout));
		free(avg);
		free(snap);
		avg = fa;
		snap = fs;
		if (rc != 0) {
			log_warnx("low-rank %s round: %s: not applied", lr_kind_name(c->lr_kind),
			          err_str(rc));
			count_aborted(g);
			round_clear(g, now);
			return;
		}
		if (all && c->initiator && lr_chain_waiting(g->lr, now))
			lr_next = c->lr_kind == MSG_LR_SKETCH ? MSG_LR_PROJECT : MSG_LR_SKETCH;
		if (c->lr_kind == MSG_LR_SKETCH) {
			/* Nothing to apply: the chain now holds the group's basis. */
			g->ps.rounds_completed++;
			log_info("low-rank sketch done in %.2fs: %zu members",
			         (double)(now - c->started) / 1000.0, nc);
			round_clear(g, now);
			if (lr_next != MSG_LR_NONE && !g->stopping)
				chain_next(g, now, lr_next, chain_id, (const uint8_t(*)[32])chain,
				           chain_k);
			return;
		}
	}
	spread_note(g, avg, snap);
	codec_ef_commit(&g->ef, round_codec(c->r), avg, snap);
	/* Push-sum: every counted member leaves with the group's mean weight. */
	g->ps.rho = MIN((double)rho_sum / members, 127.0);
	/* After a low-rank round only the projections are the group's: not known. */
	g->ps.known_steps = c->lr_kind == MSG_LR_NONE ? c->snap_steps : UINT64_MAX;
	if (is_stats(g) && c->adds)
		g->ps.epochs = 1.0; /* our rows are in */
	g->ps.rounds_completed++;
	g->privacy_aborts = 0;
	if (g->last_result == NULL)
		g->last_result = malloc(g->n_params * sizeof(float));
	if (g->last_result != NULL)
		memcpy(g->last_result, avg, g->n_params * sizeof(float));
	/* Evaluate the freshly averaged model every EvalEvery rounds. */
	evaluate = g->cfg->training.test_set[0] != '\0' &&
	           g->ps.rounds_completed >= g->eval_at_round + (uint64_t)g->cfg->gossip.eval_every;
	if (evaluate)
		g->eval_at_round = g->ps.rounds_completed;
	a = act_push(g, GOSSIP_APPLY);
	a->round_id = c->id;
	a->avg = avg;
	a->snapshot = snap;
	a->extra = extra_build(g, &g->apply_extra, &g->apply_extra_cap, &len);
	a->extra_len = len;
	a->evaluate = evaluate;
	a->seq = ++g->apply_seq;
	log_info("round done in %.2fs: %u members, weight %.3f",
	         (double)(now - c->started) / 1000.0, members, (double)rho_sum);
	round_clear(g, now);
	if (phase_check(g) && g->cfg->gossip.when_done == 1 && !g->stopping) {
		log_info("done (WhenDone = stop): stopping");
		act_push(g, GOSSIP_STOP);
		return;
	}
	if (g->cfg->gossip.rounds > 0 &&
	    g->ps.rounds_completed >= (uint64_t)g->cfg->gossip.rounds) {
		log_info("completed %llu rounds (Rounds = %d): stopping",
		         (unsigned long long)g->ps.rounds_completed, g->cfg->gossip.rounds);
		act_push(g, GOSSIP_STOP);
		return;
	}
	if (lr_next != MSG_LR_NONE && !g->stopping)
		chain_next(g, now, lr_next, chain_id, (const uint8_t(*)[32])chain, chain_k);
}

/*
 * The one tail of every event that touches the round: record the input,
 * send what the round queued, finish it if it ended.
 */
static void step_tail(struct gossip *g, struct round_outbox *ob, uint64_t now)
{
	record_input(g);
	flush(g, ob);
	if (g->cur.r == NULL)
		return;
	switch (round_status(g->cur.r)) {
	case ROUND_RUNNING:
		break;
	case ROUND_DONE:
		finish_done(g, now);
		break;
	case ROUND_ABORTED:
		finish_aborted(g, now);
		break;
	}
}

static void round_begin(struct gossip *g, struct round *r, const uint8_t (*members)[32], uint8_t k,
                        uint64_t snap_steps, bool initiator, uint64_t now)
{
	g->cur.r = r;
	g->cur.k = k;
	memcpy(g->cur.members, members, (size_t)k * 32);
	g->cur.snap_steps = snap_steps;
	g->cur.known = snap_steps == g->ps.known_steps;
	g->cur.id = round_id(r);
	g->cur.started = now;
	g->cur.initiator = initiator;
	for (size_t i = 0; i < g->n_peers; i++)
		g->peers[i].last_group = false;
	for (uint8_t i = 0; i < k; i++) {
		struct peer *p = peer_find(g, members[i]);
		if (p != NULL) {
			p->busy_at = now;
			p->last_group = true;
		}
	}
	g->st.state = initiator ? "initiator" : "member";
	g->st.round_phase = "keys";
	g->st.round_id = g->cur.id;
	log_set_round(g->cur.id);
}

/* A copy of the model and its training steps, or NULL if an apply is still pending. */
static float *snapshot_take(struct gossip *g, uint64_t *steps)
{
	float *x = malloc(g->n_params * sizeof(float));

	if (x == NULL)
		return NULL;
	if (g->ops.snapshot(g->ops.arg, x, steps) != g->apply_seq) {
		free(x); /* the last result is not in the model yet */
		return NULL;
	}
	return x;
}

/*
 * Partial views: keeps only the candidates of one circle (sites that all
 * know each other), drawn uniformly among the circles with enough of them.
 * Returns how many candidates remain (0 if no circle has `need`).
 */
static size_t circle_pick(struct gossip *g, size_t *cand, size_t nc, size_t need)
{
	uint32_t ok[CONFIG_MAX_CIRCLES];
	size_t n_ok = 0, m = 0;
	uint32_t c;

	for (c = 0; c < g->cfg->n_circles; c++) {
		size_t have = 0;
		for (size_t i = 0; i < nc; i++)
			have += (g->peers[cand[i]].cfg->circles >> c) & 1u;
		if (have >= need)
			ok[n_ok++] = c;
	}
	if (n_ok == 0)
		return 0;
	c = ok[rng_next(&g->rng) % n_ok];
	for (size_t i = 0; i < nc; i++) {
		if ((g->peers[cand[i]].cfg->circles >> c) & 1u)
			cand[m++] = cand[i];
	}
	return m;
}

/*
 * Too few peers are free: try again when the first of the busy ones said it
 * would be done (if that comes before the next scheduled round).
 */
static void retry_when_free(struct gossip *g, uint64_t now)
{
	uint64_t soon = UINT64_MAX;

	for (size_t i = 0; i < g->n_peers; i++) {
		const struct peer *p = &g->peers[i];
		if (p->busy_until > now && p->backoff_until <= p->busy_until)
			soon = MIN(soon, p->busy_until);
	}
	if (soon < g->next_initiate) {
		g->want_round = true;
		g->initiate_at =
		        MIN(g->initiate_at, soon + (uint64_t)(50.0 * rng_uniform(&g->rng)));
	}
}

/*
 * Each phase's deadline: four times what its vector and round trip take
 * on the slowest measured link of the group, at least 2 s, never more than
 * RoundTimeout (which it is while any link is unmeasured).
 */
static uint32_t phase_timeout(struct gossip *g, const uint8_t (*members)[32], uint8_t k)
{
	double cap = g->cfg->gossip.round_timeout * 1000.0, worst = 0;

	for (uint8_t j = 1; j < k; j++) {
		const struct peer *p = peer_find(g, members[j]);
		double t = p != NULL ? link_round_ms(p, g->vec_bytes) : 0;
		if (t <= 0)
			return (uint32_t)cap;
		worst = MAX(worst, t);
	}
	/* link_round_ms counts the vector twice and six round trips: one phase is half. */
	return (uint32_t)MIN(cap, MAX(2000.0, 4.0 * worst / 2.0));
}

/* 0: said it is free since we last knew it busy; 1: unknown; 2: was in our last round. */
static int peer_tier(const struct peer *p)
{
	if (p->last_group)
		return 2;
	return p->free_at > p->busy_at ? 0 : 1;
}

/*
 * Error feedback: the input becomes x + the residual of the last applied
 * round, unless the input is the last result unchanged (known to the group,
 * which could then read the residual). Without memory: no feedback.
 */
static void feedback_input(struct gossip *g, float *x, const struct codec_params *cp,
                           const struct round_input *in)
{
	int rc;

	if (!g->cfg->gossip.error_feedback || in->known || is_stats(g))
		return;
	rc = codec_ef_input(&g->ef, x, g->n_params, cp, in->rho, in->rng_seed);
	if (rc != 0)
		log_warnx("no error feedback this round: %s", err_str(rc));
}

/*
 * Value bits of a low-rank sketch (exact codec): Q is orthonormalised from
 * it, so it only has to point the way, but every member's own rounding
 * adds up in the sum. In sotto-sim (16 nodes, Rank 16) 4 and 6 bits ended
 * 0.3-1 point lower than 8 (docs/benchmarks.md).
 */
#define LR_SKETCH_BITS 8

/*
 * Ring bits of a sketch value. The members' sketches largely cancel in the
 * sum (each holds the group mean's part, which sums to zero), so the sum
 * stays far inside the LR_SKETCH_BITS levels the exact codec reserves
 * ceil(log2 k) more bits for: the sketch goes centred in a ring of this
 * width (CODEC_SEG_CENTERED), the same quantum, and a sum that leaves it
 * is caught by the checksum and aborts the round (reason "wrap").
 */
#define LR_SKETCH_WIDTH 8

/*
 * [Gossip] Rank: whether this node's next round starts a low-rank chain.
 * A node that starts from the public initial model does so from its first
 * round: every member starts from the same model, so full rounds would
 * have nothing to align, and the chain's projections plan their own
 * codec (plan_for, exact for their first WarmupRounds). A node resumed from
 * a checkpoint first takes WarmupRounds full rounds: it was away while the
 * others trained, and a full round catches it up at once where a chain
 * aligns 2 r directions of a layer. (Real processes, table (a), Rank 16:
 * 5.3 MB per node over the run instead of 6.9-7.7 MB, the same accuracy.)
 */
static bool lr_on(const struct gossip *g)
{
	return g->lr != NULL && !is_stats(g) &&
	       (!g->resumed || g->plan.observed >= (uint64_t)MAX(g->cfg->gossip.warmup_rounds, 1));
}

/*
 * The settings a low-rank round's codec is planned with: no subsets, no
 * error feedback, and the sketch exact at LR_SKETCH_BITS.
 */
static struct config *lr_config(const struct gossip *g, uint8_t kind)
{
	struct config *c = malloc(sizeof(*c));

	if (c == NULL)
		return NULL;
	*c = *g->cfg;
	c->gossip.keep = 1;
	c->gossip.error_feedback = 0;
	if (kind == MSG_LR_SKETCH) {
		c->gossip.codec = CONFIG_CODEC_FIXED;
		c->gossip.bits = LR_SKETCH_BITS;
	}
	return c;
}

/* This node's [Model] settings, as an INVITE carries them. */
static void model_settings(const struct gossip *g, struct msg_model *mm)
{
	const struct config *c = g->cfg;

	memset(mm, 0, sizeof(*mm));
	if (g->model->spec.type == MODEL_STATS) {
		/* Feature statistics: the same features, nothing else, must match. */
		mm->type = MSG_MODEL_TYPE_STATS;
		mm->seed = g->n_params / 2;
		return;
	}
	if (g->model->spec.type == MODEL_EXTERNAL) {
		/* An external trainer's model: its declared layout, by hash. */
		mm->type = CONFIG_MODEL_EXTERNAL;
		mm->seed = g->model->spec.layout;
		return;
	}
	mm->type = (uint8_t)c->model.type;
	mm->n_hidden = (uint8_t)MIN(c->model.n_hidden, MSG_MAX_HIDDEN);
	for (uint8_t i = 0; i < mm->n_hidden; i++)
		mm->hidden[i] = (uint32_t)c->model.hidden[i];
	mm->seed = c->model.seed;
}

/*
 * The plan of a round this node starts with these members and codec: a
 * fresh id, the threshold, the data path and phase timeout for their
 * links, our [Model] settings (into mm, which the plan points to).
 */
static void plan_fill(struct gossip *g, struct round_plan *plan, const uint8_t (*members)[32],
                      uint8_t k, const struct codec_params *cp, struct msg_model *mm)
{
	memset(plan, 0, sizeof(*plan));
	do
		randombytes_buf(&plan->round_id, sizeof(plan->round_id));
	while (plan->round_id == 0);
	plan->k = k;
	plan->t = (uint8_t)MAX(g->cfg->gossip.threshold, round_min_threshold(k));
	plan->members = members;
	plan->codec = cp;
	plan->path = pick_path(g, members, k);
	plan->phase_timeout_ms = phase_timeout(g, members, k);
	plan->deadline_unix_ms = g->ops.wall_ms(g->ops.arg) + 6ull * plan->phase_timeout_ms;
	model_settings(g, mm);
	plan->model = mm;
}

static void initiate(struct gossip *g, uint64_t now)
{
	uint8_t members[MSG_MAX_MEMBERS][32];
	size_t *cand = NULL;
	struct codec_params *cp = NULL;
	struct round_outbox ob;
	struct round_plan plan;
	struct msg_model mm;
	struct round_input in;
	struct round *r = NULL;
	struct config *lcfg = NULL;
	uint8_t k = (uint8_t)g->cfg->gossip.group_size;
	double rt_s = g->cfg->gossip.round_timeout;
	uint64_t steps = 0, lr_ref = 0;
	uint8_t lr_kind = MSG_LR_NONE;
	size_t nc = 0;
	float *x = NULL;
	double rho;
	bool known, adds = false;
	int rc;

	g->want_round = false;
	if (g->lr != NULL && lr_chain_waiting(g->lr, now)) {
		log_debug("in another node's low-rank chain: not starting a round");
		return;
	}
	cand = malloc((g->n_peers ? g->n_peers : 1) * sizeof(*cand));
	if (cand == NULL)
		return;
	/* Peers out of backoff and not busy in another round, connected ones
	 * only if there are enough of those (an unconnected peer may be down:
	 * its invitation would wait), then, if there are enough of those, only
	 * peers whose measured link finishes a round within half RoundTimeout. */
	for (int pass = 2; pass >= 0 && nc < (size_t)(k - 1); pass--) {
		nc = 0;
		for (size_t i = 0; i < g->n_peers; i++) {
			const struct peer *p = &g->peers[i];
			if (p->held || p->backoff_until > now || p->busy_until > now)
				continue;
			if (pass >= 1 && !connected(g, p->cfg->public_key_bin))
				continue;
			if (pass == 2 && link_round_ms(p, g->vec_bytes) > 500.0 * rt_s)
				continue;
			cand[nc++] = i;
		}
	}
	if (g->cfg->n_circles > 0)
		nc = circle_pick(g, cand, nc, (size_t)(k - 1));
	if (nc < (size_t)(k - 1)) {
		retry_when_free(g, now);
		log_debug("only %zu peers available for a group of %u: not starting a round", nc,
		          k);
		goto out;
	}
	x = snapshot_take(g, &steps);
	cp = malloc(sizeof(*cp));
	if (x == NULL || cp == NULL)
		goto out;
	memcpy(members[0], g->id->sign_pk, 32);
	/* Peers known to be free first, then the rest, our last group last;
	 * uniformly at random within each tier. */
	for (size_t i = 0; i + 1 < nc; i++) { /* Fisher-Yates */
		size_t pick = i + (size_t)(rng_next(&g->rng) % (nc - i));
		size_t tmp = cand[i];
		cand[i] = cand[pick];
		cand[pick] = tmp;
	}
	for (size_t i = 1; i < nc; i++) { /* stable insertion sort by tier */
		size_t c = cand[i], j = i;
		while (j > 0 && peer_tier(&g->peers[cand[j - 1]]) > peer_tier(&g->peers[c])) {
			cand[j] = cand[j - 1];
			j--;
		}
		cand[j] = c;
	}
	for (uint8_t j = 1; j < k; j++)
		memcpy(members[j], g->peers[cand[j - 1]].cfg->public_key_bin, 32);
	/*
	 * Settled on the initial model at the least weight (settle()): its plan
	 * would size the clips for weight RHO_MIN and clip every other member's
	 * input. It only joins until a round hands it the group's model.
	 */
	if (g->last_result == NULL && (g->ps.flags & PERSIST_F_SETTLED))
		goto out;
	rho = g->ps.rho;
	known = steps == g->ps.known_steps;
	if (is_stats(g)) {
		stats_input(g, x, &rho, &known, &adds);
		if (!(rho > 0))
			goto out; /* it adds nothing (gave up): it only joins */
	}
	if (lr_on(g)) {
		float *xv = NULL;
		do
			randombytes_buf(&lr_ref, sizeof(lr_ref));
		while (lr_ref == 0);
		lcfg = lr_config(g, MSG_LR_BASIS);
		if (lcfg == NULL || lr_chain_input(g->lr, MSG_LR_BASIS, lr_ref, x, &xv) != 0)
			goto out;
		free(x);
		x = xv;
		lr_kind = MSG_LR_BASIS;
		rc = codec_plan_make(cp, plan_for(g, lr_kind), lr_chain_view(g->lr, lr_kind), x,
		                     rho, k, lcfg);
	} else {
		rc = codec_plan_make(cp, &g->plan, g->model, x, rho, k, g->cfg);
	}
	if (rc != 0) {
		log_warnx("cannot plan codec parameters: %s", err_str(rc));
		if (lr_kind != MSG_LR_NONE)
			lr_chain_drop(g->lr);
		goto out;
	}
	g->vec_bytes = codec_packed_bytes(cp);
	plan_fill(g, &plan, (const uint8_t(*)[32])members, k, cp, &mm);
	plan.lr_kind = lr_kind;
	plan.lr_rank = lr_kind != MSG_LR_NONE ? (uint8_t)lr_chain_rank(g->lr) : 0;
	plan.lr_ref = lr_ref;
	memset(&in, 0, sizeof(in));
	in.x = x;
	in.rho = (float)rho;
	in.known = known;
	randombytes_buf(&in.rng_seed, sizeof(in.rng_seed));
	if (lr_kind == MSG_LR_NONE)
		feedback_input(g, x, cp, &in);
	outbox_init(g, &ob);
	rc = round_initiate(&r, g->id, &plan, &in, now, &ob);
	if (rc != 0) {
		codec_ef_drop(&g->ef);
		if (lr_kind != MSG_LR_NONE)
			lr_chain_drop(g->lr);
		log_warnx("cannot start a round: %s", err_str(rc));
		goto out;
	}
	g->ps.rounds_initiated++;
	g->st.rounds_scatter += plan.path == MSG_PATH_SCATTER;
	round_begin(g, r, (const uint8_t(*)[32])members, k, steps, true, now);
	g->cur.path = plan.path;
	g->cur.known = known;
	g->cur.adds = adds;
	g->cur.lr_kind = lr_kind;
	{
		char names[256];
		size_t o = 0;
		for (uint8_t j = 1; j < k && o < sizeof(names); j++) {
			int w = snprintf(names + o, sizeof(names) - o, "%s%s", j > 1 ? "," : "",
			                 peer_name(g, members[j]));
			if (w > 0)
				o += (size_t)w;
		}
		log_info("round started as initiator with %s", names);
	}
	step_tail(g, &ob, now);
out:
	free(cand);
	free(cp);
	free(lcfg);
	free(x);
}

static const char *lr_kind_name(uint8_t kind)
{
	switch (kind) {
	case MSG_LR_BASIS:
		return "basis";
	case MSG_LR_SKETCH:
		return "sketch";
	case MSG_LR_PROJECT:
		return "project";
	default:
		return "full";
	}
}

/*
 * The next round of our low-rank chain: round `ref` just ended with every
 * member counted, and the same members go on at once (lowrank_chain.h),
 * but for a project round whose input, our model after the last round,
 * the worker has not applied yet: that one starts on APPLIED (lr_due).
 * Anything else in the way ends the chain; what it applied stays.
 */
static void chain_next(struct gossip *g, uint64_t now, uint8_t kind, uint64_t ref,
                       const uint8_t (*members)[32], uint8_t k)
{
	struct codec_params *cp = malloc(sizeof(*cp));
	struct config *lcfg = lr_config(g, kind);
	struct round_outbox ob;
	struct round_plan plan;
	struct round_input in;
	struct msg_model mm;
	struct round *r = NULL;
	uint64_t steps = 0;
	float *x = NULL, *xv = NULL;
	int rc = -ENOMEM;

	g->lr_due = 0;
	if (cp == NULL || lcfg == NULL)
		goto out;
	if (kind == MSG_LR_PROJECT && (x = snapshot_take(g, &steps)) == NULL) {
		/*
		 * The worker has not applied the last result yet (it was busy
		 * with a step): the round starts when it posts APPLIED
		 * (gossip_on_worker), while the chain waits. Members whose own
		 * worker still lags then decline, and the chain ends there.
		 */
		if (lr_chain_waiting(g->lr, now)) {
			g->lr_due = ref;
			log_debug("low-rank chain: the %s round waits for the last result to be "
			          "applied",
			          lr_kind_name(kind));
			rc = 0;
		}
		goto out;
	}
	rc = lr_chain_input(g->lr, kind, ref, x, &xv);
	if (rc == 0)
		rc = codec_plan_make(cp, plan_for(g, kind), lr_chain_view(g->lr, kind), xv,
		                     g->ps.rho, k, lcfg);
	if (rc == 0 && kind == MSG_LR_SKETCH)
		rc = codec_plan_center(cp, LR_SKETCH_WIDTH);
	if (rc != 0)
		goto out;
	plan_fill(g, &plan, members, k, cp, &mm);
	plan.lr_kind = kind;
	plan.lr_rank = (uint8_t)lr_chain_rank(g->lr);
	plan.lr_ref = ref;
	memset(&in, 0, sizeof(in));
	in.x = xv;
	in.rho = (float)g->ps.rho;
	randombytes_buf(&in.rng_seed, sizeof(in.rng_seed));
	outbox_init(g, &ob);
	rc = round_initiate(&r, g->id, &plan, &in, now, &ob);
	if (rc != 0)
		goto out;
	g->ps.rounds_initiated++;
	g->st.rounds_scatter += plan.path == MSG_PATH_SCATTER;
	round_begin(g, r, members, k, steps, true, now);
	g->cur.path = plan.path;
	g->cur.known = false;
	g->cur.lr_kind = kind;
	log_info("low-rank chain: %s round started", lr_kind_name(kind));
	step_tail(g, &ob, now);
out:
	if (rc != 0) {
		lr_chain_drop(g->lr);
		log_info("low-rank chain ends before its %s round: %s", lr_kind_name(kind),
		         x == NULL && kind == MSG_LR_PROJECT ? "the last result is not applied yet"
		                                             : err_str(rc));
	}
	free(cp);
	free(lcfg);
	free(x);
	free(xv);
}

/* The member keys of an INVITE must all be pinned peers (or this node). */
static bool invite_members_known(struct gossip *g, const struct msg_invite *iv)
{
	for (uint8_t i = 0; i < iv->n_members; i++) {
		const struct peer *p = peer_find(g, iv->members[i]);
		if (sodium_memcmp(iv->members[i], g->id->sign_pk, 32) != 0 &&
		    (p == NULL || p->held))
			return false;
	}
	return true;
}

/* At most one "settings differ" warning per this long (ms): peers retry. */
#define MISMATCH_LOG_MS 60000

/* "128,64" */
static void hidden_format(char *out, size_t len, const uint32_t *h, uint8_t n)
{
	size_t o = 0;

	out[0] = '\0';
	for (uint8_t i = 0; i < n && o < len; i++) {
		int w = snprintf(out + o, len - o, "%s%u", i > 0 ? "," : "", (unsigned)h[i]);
		o = w < 0 ? len : o + (size_t)w;
	}
}

static const char *wire_type_name(uint8_t t)
{
	if (t == MSG_MODEL_TYPE_STATS)
		return "stats";
	return config_model_type_name((enum config_model_type)t);
}

/*
 * The invitation's [Model] settings and its codec must describe exactly this
 * node's model. If not, why names the setting that differs, with both
 * values (for both logs: the initiator's gets it in the DECLINE).
 */
static bool invite_codec_fits(struct gossip *g, const struct msg_invite *iv, char *why, size_t len)
{
	const struct msg_model *them = &iv->model;
	struct codec_params *cp;
	struct msg_model us;
	bool ok;

	model_settings(g, &us);
	if (them->type != us.type) {
		/* "stats": a node agreeing feature statistics (Standardize = federated) */
		if (us.type == MSG_MODEL_TYPE_STATS)
			g->peer_trains = true; /* it has moved on: gossip_stats_peer_trains() */
		snprintf(why, len, "[Model] Type differs: %s in the invitation, %s here%s",
		         wire_type_name(them->type), wire_type_name(us.type),
		         them->type == MSG_MODEL_TYPE_STATS || us.type == MSG_MODEL_TYPE_STATS
		                 ? " (stats: Standardize = federated, before training)"
		                 : "");
		return false;
	}
	if (us.type == MSG_MODEL_TYPE_STATS && them->seed != us.seed) {
		snprintf(why, len,
		         "feature statistics of %llu features in the invitation, %llu here",
		         (unsigned long long)them->seed, (unsigned long long)us.seed);
		return false;
	}
	if (us.type == CONFIG_MODEL_MLP &&
	    (them->n_hidden != us.n_hidden ||
	     memcmp(them->hidden, us.hidden, us.n_hidden * sizeof(us.hidden[0])) != 0)) {
		char a[64], b[64];
		hidden_format(a, sizeof(a), them->hidden, them->n_hidden);
		hidden_format(b, sizeof(b), us.hidden, us.n_hidden);
		snprintf(why, len, "[Model] Hidden differs: %.32s in the invitation, %.32s here", a,
		         b);
		return false;
	}
	if (us.type == CONFIG_MODEL_EXTERNAL && them->seed != us.seed) {
		g->st.declined_layout++;
		snprintf(why, len,
		         "the external trainer's parameter layout differs: %016llx in the "
		         "invitation, %016llx here",
		         (unsigned long long)them->seed, (unsigned long long)us.seed);
		return false;
	}
	if (them->seed != us.seed) {
		snprintf(why, len, "[Model] Seed differs: %llu in the invitation, %llu here",
		         (unsigned long long)them->seed, (unsigned long long)us.seed);
		return false;
	}
	cp = malloc(sizeof(*cp));
	if (cp == NULL)
		return false;
	if (codec_from_msg(cp, &iv->codec) != 0) {
		snprintf(why, len, "codec parameters refused");
		free(cp);
		return false;
	}
	if (iv->lr_kind != MSG_LR_NONE &&
	    (g->lr == NULL || is_stats(g) || iv->lr_rank != lr_chain_rank(g->lr))) {
		snprintf(why, len, "[Gossip] Rank differs: %u in the invitation, %u here",
		         iv->lr_rank, g->lr != NULL && !is_stats(g) ? lr_chain_rank(g->lr) : 0);
		free(cp);
		return false;
	}
	ok = codec_plan_fits(cp, iv->lr_kind != MSG_LR_NONE ? lr_chain_view(g->lr, iv->lr_kind)
	                                                    : g->model);
	if (ok && is_stats(g) && !codec_plan_stats_shape(cp)) {
		snprintf(why, len,
		         "the codec is not that of a statistics round (exact, full bits, "
		         "power-of-two clips)");
		free(cp);
		return false;
	}
	if (!ok)
		snprintf(why, len,
		         "[Model] differs (the datasets' shapes?): the invitation's has %zu "
		         "parameters in %zu layers, this node's %zu in %zu",
		         (size_t)cp->dim, (size_t)cp->nseg, g->model->n_params, g->model->n_segs);
	free(cp);
	return ok;
}

static void on_invite(struct gossip *g, uint64_t now, const uint8_t from[32], const struct msg *m)
{
	const struct msg_invite *iv = &m->u.invite;
	struct round_outbox ob;
	struct round_input in;
	struct round *r = NULL;
	enum msg_reason why = MSG_REASON_OTHER;
	char text[MSG_MAX_TEXT_BYTES + 1] = "declined";
	uint64_t steps = 0;
	float *x = NULL;
	bool adds = false, sknown = false;
	double srho = 0;
	int rc;

	outbox_init(g, &ob);
	phase(g, TEST_PHASE_INVITED);
	if (g->cur.r != NULL || g->stopping)
		why = g->stopping ? MSG_REASON_SHUTDOWN : MSG_REASON_BUSY;
	else if (g->lr != NULL && lr_chain_waiting(g->lr, now) &&
	         (iv->lr_kind == MSG_LR_NONE || iv->lr_kind == MSG_LR_BASIS))
		why = MSG_REASON_BUSY; /* our chain's next round is due */
	else if (!invite_members_known(g, iv))
		why = MSG_REASON_UNKNOWN_PEER;
	else if (!invite_codec_fits(g, iv, text, sizeof(text))) {
		struct peer *p = peer_find(g, from);
		why = MSG_REASON_PARAMS;
		if (p != NULL && now >= p->mismatch_log) {
			p->mismatch_log = now + MISMATCH_LOG_MS;
			log_warnx("declined an invitation from %s: %s", peer_name(g, from), text);
		}
	} else if (iv->phase_timeout_ms > (uint32_t)(g->cfg->gossip.round_timeout * 1000.0)) {
		/* A member waits twice a phase: never longer than its own RoundTimeout allows. */
		why = MSG_REASON_PARAMS;
		snprintf(text, sizeof(text),
		         "phase timeout %.1fs is above this node's RoundTimeout %.1fs",
		         iv->phase_timeout_ms / 1000.0, g->cfg->gossip.round_timeout);
		log_info("declined an invitation from %s: %s", peer_name(g, from), text);
	} else if (iv->lr_kind != MSG_LR_NONE &&
	           !lr_chain_follows(g->lr, iv->lr_kind, iv->lr_ref,
	                             (const uint8_t(*)[MSG_KEY_BYTES])iv->members, iv->n_members,
	                             now)) {
		why = MSG_REASON_PARAMS;
		snprintf(text, sizeof(text),
		         "a low-rank %s round of a chain this node is not in (or no longer)",
		         lr_kind_name(iv->lr_kind));
		log_info("declined an invitation from %s: %s", peer_name(g, from), text);
	} else if (iv->lr_kind != MSG_LR_NONE) {
		float *xv = NULL;
		if (iv->lr_kind != MSG_LR_SKETCH && (x = snapshot_take(g, &steps)) == NULL) {
			why = MSG_REASON_BUSY; /* the last result is still being applied */
		} else if (lr_chain_input(g->lr, iv->lr_kind, iv->lr_ref, x, &xv) != 0) {
			snprintf(text, sizeof(text), "cannot prepare a low-rank %s input",
			         lr_kind_name(iv->lr_kind));
			log_warnx("declined an invitation from %s: %s", peer_name(g, from), text);
		}
		if (xv == NULL)
			lr_chain_drop(g->lr);
		free(x);
		x = xv;
	} else if ((x = snapshot_take(g, &steps)) == NULL) {
		why = MSG_REASON_BUSY; /* the last result is still being applied */
	} else if (is_stats(g)) {
		struct peer *p = peer_find(g, from);
		stats_input(g, x, &srho, &sknown, &adds);
		/*
		 * A decline on the clip tells the initiator that our moments exceed
		 * it: one bit, and only once per peer (later ones are declined
		 * unseen), so that no initiator can search out their magnitude.
		 */
		if (p != NULL && (p->stats_clip_declined || !stats_fits(iv, x, srho))) {
			why = MSG_REASON_PARAMS;
			snprintf(
			        text, sizeof(text), "%s",
			        p->stats_clip_declined
			                ? "declined: an earlier statistics invitation of yours did "
			                  "not fit this site's moments"
			                : "this site's statistics exceed the invitation's clip "
			                  "(far "
			                  "more rows than the initiator's?): declined rather than "
			                  "clipped");
			if (!p->stats_clip_declined)
				log_info("declined an invitation from %s: %s", peer_name(g, from),
				         text);
			p->stats_clip_declined = true;
			free(x);
			x = NULL;
		}
	}
	if (x == NULL) {
		uint32_t busy_ms = 0;
		if (why == MSG_REASON_BUSY && g->cur.r != NULL && g->round_ms > 0) {
			/* What is left of our round, as long as ours usually take. */
			double left = g->round_ms - (double)(now - g->cur.started);
			busy_ms = (uint32_t)MIN(MAX(left, 0.25 * g->round_ms), 3.0 * g->round_ms);
		}
		round_decline_why(m, why, busy_ms, text, &ob);
		if (why == MSG_REASON_BUSY)
			g->st.invites_declined++;
		log_debug("declined an invitation from %s: %s", peer_name(g, from),
		          msg_reason_name(why));
		for (size_t i = 0; i < ob.n; i++)
			send_msg(g, from, &ob.out[i].msg);
		return;
	}
	memset(&in, 0, sizeof(in));
	in.x = x;
	in.rho = (float)g->ps.rho;
	in.known = steps == g->ps.known_steps;
	if (is_stats(g)) {
		in.rho = (float)srho;
		in.known = sknown;
	}
	if (iv->lr_kind == MSG_LR_SKETCH || iv->lr_kind == MSG_LR_PROJECT)
		in.known = false; /* not a result anyone has: our model after our chain's lift */
	randombytes_buf(&in.rng_seed, sizeof(in.rng_seed));
	if (g->cfg->gossip.error_feedback && iv->lr_kind == MSG_LR_NONE) {
		struct codec_params *cp = malloc(sizeof(*cp));
		if (cp != NULL && codec_from_msg(cp, &iv->codec) == 0)
			feedback_input(g, x, cp, &in);
		free(cp);
	}
	rc = round_join(&r, g->id, from, m, &in, now, &ob);
	free(x); /* the round keeps its own copy */
	if (rc != 0) {
		codec_ef_drop(&g->ef);
		if (iv->lr_kind != MSG_LR_NONE)
			lr_chain_drop(g->lr);
		log_info("refused an invitation from %s: %s", peer_name(g, from), err_str(rc));
		for (size_t i = 0; i < ob.n; i++)
			send_msg(g, from, &ob.out[i].msg);
		return;
	}
	round_begin(g, r, (const uint8_t(*)[32])iv->members, iv->n_members, steps, false, now);
	g->cur.known = in.known;
	g->cur.adds = adds;
	g->cur.lr_kind = iv->lr_kind;
	log_info("joined a round of %u started by %s", iv->n_members, peer_name(g, from));
	step_tail(g, &ob, now);
}

static const char *phase_of(enum msg_type t)
{
	switch (t) {
	case MSG_ACCEPT:
	case MSG_KEYS:
		return "keys";
	case MSG_SHARES:
		return "shares";
	case MSG_MASKED:
		return "masked";
	case MSG_SPLIT:
	case MSG_SPLIT_SIG:
		return "split";
	case MSG_UNMASK_REQ:
	case MSG_UNMASK_RESP:
		return "unmask";
	case MSG_RESULT:
		return "result";
	default:
		return NULL;
	}
}

/* --- events -------------------------------------------------------------- */

void gossip_on_msg(struct gossip *g, uint64_t now, const uint8_t pk[32], const struct msg *m,
                   bool round_sealed)
{
	struct round_outbox ob;

	acts_reset(g);
	g->now = now;
	peer_seen(g, now, pk);
	link_response(g, pk, m);
	if (round_sealed)
		g->st.msgs_round_sealed++;
	switch (m->type) {
	case MSG_INVITE:
		on_invite(g, now, pk, m);
		return;
	case MSG_PING: {
		struct msg s;
		memset(&s, 0, sizeof(s));
		s.type = MSG_STATUS;
		s.round_id = g->cur.id;
		s.u.status.seq = m->u.ping.seq;
		s.u.status.time_ms = m->u.ping.time_ms;
		s.u.status.busy = g->cur.r != NULL;
		s.u.status.rounds_ok = g->ps.rounds_completed;
		s.u.status.rounds_aborted = g->ps.rounds_aborted;
		s.u.status.uptime_s = (uint64_t)MAX(
		        (double)g->ops.wall_ms(g->ops.arg) / 1000.0 - g->st.started, 0.0);
		send_msg(g, pk, &s);
		return;
	}
	case MSG_STATUS: {
		/* Unsolicited and not busy: the peer's round ended, it is free now. */
		struct peer *p = peer_find(g, pk);
		if (p != NULL && m->u.status.seq == 0 && !m->u.status.busy) {
			p->free_at = now;
			p->busy_until = 0;
		}
		return;
	}
	default:
		break;
	}
	if (m->type == MSG_DECLINE && m->u.decline.reason == MSG_REASON_PARAMS) {
		/*
		 * A setting that must match does not: say whose and which, once a
		 * minute per peer, even when the DECLINE comes after the round gave
		 * up (the member's own line went out when it declined).
		 */
		struct peer *p = peer_find(g, pk);
		if (p != NULL && now >= p->mismatch_log) {
			p->mismatch_log = now + MISMATCH_LOG_MS;
			log_warnx("%s declined this node's round: %s", peer_name(g, pk),
			          m->u.decline.text);
		}
	}
	if (m->type == MSG_DECLINE) {
		struct peer *p = peer_find(g, pk);
		if (p != NULL && m->u.decline.reason == MSG_REASON_BUSY)
			p->busy_at = now;
		if (p != NULL && m->u.decline.reason == MSG_REASON_BUSY && m->u.decline.busy_ms > 0)
			p->busy_until = now + m->u.decline.busy_ms; /* not a failure: a schedule */
		else
			peer_penalise(g, now, pk);
	}
	if (g->cur.r == NULL || m->round_id != g->cur.id) {
		g->st.msgs_stale++;
		return;
	}
	for (uint8_t i = 1; i < g->cur.k && g->cur.initiator; i++) {
		if (sodium_memcmp(g->cur.members[i], pk, 32) == 0 && m->type != MSG_DECLINE)
			g->cur.heard[i] = true;
	}
	if (!g->cur.initiator && m->type == MSG_KEYS)
		phase(g, TEST_PHASE_KEYS);
	if (!g->cur.initiator && m->type == MSG_SPLIT)
		phase(g, TEST_PHASE_SPLIT);
	if (!g->cur.initiator && m->type == MSG_UNMASK_REQ)
		phase(g, TEST_PHASE_UNMASK);
	outbox_init(g, &ob);
	if (round_on_msg(g->cur.r, pk, m, now, &ob) != 0)
		log_warnx("out of memory in a round");
	if (phase_of(m->type) != NULL)
		g->st.round_phase = phase_of(m->type);
	step_tail(g, &ob, now);
}

/*
 * The connection to a peer went away. If it is in our round, the round stops
 * waiting for it now instead of at the phase deadline: a killed member costs
 * a round milliseconds rather than RoundTimeout. A peer that merely
 * reconnects loses at most its part in this round.
 */
void gossip_on_link_lost(struct gossip *g, uint64_t now, const uint8_t pk[32])
{
	struct round_outbox ob;
	bool member = false;

	acts_reset(g);
	g->now = now;
	if (g->cur.r == NULL)
		return;
	for (uint8_t i = 0; i < g->cur.k; i++)
		member = member || sodium_memcmp(g->cur.members[i], pk, 32) == 0;
	if (!member)
		return;
	peer_penalise(g, now, pk);
	log_info("lost the connection to %s, a member of this round: not waiting for it",
	         peer_name(g, pk));
	outbox_init(g, &ob);
	if (round_on_peer_lost(g->cur.r, pk, now, &ob) != 0)
		log_warnx("out of memory in a round");
	step_tail(g, &ob, now);
}

/* The peer of cfg with this key and endpoint, or NULL (gone, re-keyed or moved). */
static const struct config_peer *cfg_peer_same(const struct config *cfg, const struct peer *p)
{
	for (size_t i = 0; i < cfg->n_peers; i++) {
		const struct config_peer *c = &cfg->peers[i];
		if (sodium_memcmp(c->public_key_bin, p->cfg->public_key_bin, 32) == 0)
			return strcmp(c->endpoint, p->cfg->endpoint) == 0 ? c : NULL;
	}
	return NULL;
}

int gossip_reload(struct gossip *g, uint64_t now, const struct config *next,
                  struct gossip_reload_stats *rs)
{
	size_t n = next->n_peers;
	struct peer *peers = calloc(n ? n : 1, sizeof(*peers));
	struct status_peer *st_peers = calloc(n ? n : 1, sizeof(*st_peers));
	acts_reset(g);
	g->now = now;
	memset(rs, 0, sizeof(*rs));
	if (peers == NULL || st_peers == NULL) {
		free(peers);
		free(st_peers);
		return -ENOMEM;
	}
	/*
	 * A member of the round in flight that is gone, re-keyed or moved stays
	 * in that round: cutting it off mid-round could leave it out of a
	 * result that counts its input (or this node out of one that counts
	 * ours), which all-or-nothing forbids. The round ends by its own rules;
	 * the caller unpins the peer then (gossip_in_round). From now on it is
	 * neither invited nor joined.
	 */
	for (uint8_t i = 0; g->cur.r != NULL && i < g->cur.k; i++) {
		struct peer *p = peer_find(g, g->cur.members[i]);
		if (p == NULL || cfg_peer_same(next, p) != NULL)
			continue;
		log_info("reload: %s, a member of this round, goes when the round ends",
		         p->cfg->name);
		rs->round_members++;
	}
	for (size_t i = 0; i < n; i++) {
		const struct config_peer *c = &next->peers[i];
		struct peer *old = NULL;
		size_t oi = 0;

		for (oi = 0; oi < g->n_peers; oi++) {
			if (sodium_memcmp(g->peers[oi].cfg->public_key_bin, c->public_key_bin,
			                  32) == 0) {
				old = &g->peers[oi];
				break;
			}
		}
		if (old != NULL && strcmp(old->cfg->endpoint, c->endpoint) == 0) {
			/* The same peer: its history stays. */
			peers[i] = *old;
			st_peers[i] = g->st_peers[oi];
			if (strcmp(old->cfg->name, c->name) != 0)
				rs->renamed++;
		} else {
			rs->added += old == NULL;
			rs->moved += old != NULL;
			/* moved: used again once the transport reaches it there */
			peers[i].held = old != NULL;
		}
		peers[i].cfg = c;
		snprintf(st_peers[i].name, sizeof(st_peers[i].name), "%s", c->name);
	}
	for (size_t oi = 0; oi < g->n_peers; oi++) {
		bool kept = false;
		for (size_t i = 0; i < n && !kept; i++)
			kept = sodium_memcmp(g->peers[oi].cfg->public_key_bin,
			                     next->peers[i].public_key_bin, 32) == 0;
		rs->removed += !kept;
	}
	free(g->peers);
	free(g->st_peers);
	g->peers = peers;
	g->st_peers = st_peers;
	g->n_peers = n;
	g->st.peers = st_peers;
	g->st.n_peers = n;
	return 0;
}

static uint64_t local_steps(const struct gossip *g)
{
	uint64_t s = (uint64_t)ceil(g->cfg->training.local_epochs * (double)g->steps_per_epoch);
	return MAX(s, 1);
}

/*
 * The next round this node starts, uniform in [0.5, 1.5] x the pace: nodes
 * drift apart, never in lockstep. The pace is Interval, or GroupSize times
 * what this node's rounds take if that is longer: a node is a member of
 * about GroupSize - 1 rounds for each it starts, so on a link that cannot
 * carry a round per Interval it starts no more rounds than the links can
 * hold, instead of invitations meeting busy peers.
 */
static void plan_next(struct gossip *g, uint64_t now)
{
	double pace = MAX(g->cfg->gossip.interval,
	                  (double)g->cfg->gossip.group_size / 2.0 * g->round_ms / 1000.0);
	double d = pace * (0.5 + rng_uniform(&g->rng));
	g->next_initiate = now + (uint64_t)(d * 1000.0);
}

/* LocalEpochs of training steps, at most twice that banked. */
static void grant(struct gossip *g)
{
	struct gossip_act *a = act_push(g, GOSSIP_GRANT);

	a->steps = local_steps(g);
	a->cap = 2 * a->steps;
}

/* The training clock: LocalEpochs of training per Interval, whatever the links do. */
static void on_grant(struct gossip *g, uint64_t now)
{
	double interval_ms = g->cfg->gossip.interval * 1000.0;

	grant(g);
	/* Without rounds (no reachable peers) still evaluate now and then. */
	if (g->cfg->training.test_set[0] != '\0' && g->ps.epochs > g->eval_epochs &&
	    (double)(now - g->last_eval) > 4.0 * g->cfg->gossip.eval_every * interval_ms) {
		g->last_eval = now;
		g->eval_epochs = g->ps.epochs;
		act_push(g, GOSSIP_EVALUATE);
	}
	if ((double)(now - g->last_peer_seen) > 6 * interval_ms + 30000.0 &&
	    now - g->last_alone_log > 60000) {
		log_warnx("no peer has been heard from in %.0fs: training locally until one is "
		          "reachable",
		          (double)(now - g->last_peer_seen) / 1000.0);
		g->last_alone_log = now;
	}
	g->next_grant = now + (uint64_t)(interval_ms * (0.5 + rng_uniform(&g->rng)));
}

/* The round clock: start a round now, or as soon as the one in flight ends. */
static void on_schedule(struct gossip *g, uint64_t now)
{
	if (g->cur.r == NULL)
		initiate(g, now);
	else
		g->want_round = true; /* once this round ends: the link is the clock */
	plan_next(g, now);
}

/*
 * An initiator that invited a peer it had no connection to (there were not
 * enough connected ones) does not wait RoundTimeout for it: a member still
 * silent and unconnected UNREACHED_MS after the invitation counts as lost,
 * as its phase deadline would decide later. UNREACHED_MS exceeds the
 * transport's longest redial backoff, so a peer that is back has been
 * dialled by then.
 */
#define UNREACHED_MS 6000

static void unreached_check(struct gossip *g, uint64_t now)
{
	struct round_outbox ob;
	uint64_t rid = g->cur.id;

	if (g->cur.r == NULL || !g->cur.initiator || g->cur.unreached_checked ||
	    now < g->cur.started + UNREACHED_MS)
		return;
	g->cur.unreached_checked = true;
	for (uint8_t i = 1; i < g->cur.k && g->cur.r != NULL && g->cur.id == rid; i++) {
		if (g->cur.heard[i] || connected(g, g->cur.members[i]))
			continue;
		log_info("%s has not been reachable since the invitation %.1fs ago: not waiting "
		         "for it",
		         peer_name(g, g->cur.members[i]), (double)(now - g->cur.started) / 1000.0);
		outbox_init(g, &ob);
		if (round_on_peer_lost(g->cur.r, g->cur.members[i], now, &ob) != 0)
			log_warnx("out of memory in a round");
		step_tail(g, &ob, now);
	}
}

void gossip_on_timer(struct gossip *g, uint64_t now)
{
	struct round_outbox ob;

	acts_reset(g);
	g->now = now;
	for (size_t i = 0; i < KEY_SLOTS; i++) {
		if (g->keys[i].rid != 0 && g->keys[i].at <= now) {
			act_push(g, GOSSIP_KEYS_CLEAR)->round_id = g->keys[i].rid;
			g->keys[i].rid = 0;
		}
	}
	if (g->cur.r != NULL && round_next_deadline(g->cur.r) != 0 &&
	    round_next_deadline(g->cur.r) <= now) {
		outbox_init(g, &ob);
		if (round_on_tick(g->cur.r, now, &ob) != 0)
			log_warnx("out of memory in a round");
		step_tail(g, &ob, now);
	}
	unreached_check(g, now);
	if (g->started && !g->stopping && now >= g->next_grant)
		on_grant(g, now);
	if (g->started && !g->stopping && now >= g->next_initiate)
		on_schedule(g, now);
	if (now >= g->initiate_at) {
		/* In a round again (it joined one): the end of that round re-arms it. */
		g->initiate_at = UINT64_MAX;
		if (g->started && !g->stopping && g->cur.r == NULL && g->want_round)
			initiate(g, now);
	}
}

uint64_t gossip_next_timer(const struct gossip *g)
{
	uint64_t t = g->started && !g->stopping
	                     ? MIN(MIN(g->next_initiate, g->initiate_at), g->next_grant)
	                     : UINT64_MAX;

	if (g->cur.r != NULL && round_next_deadline(g->cur.r) != 0)
		t = MIN(t, round_next_deadline(g->cur.r));
	if (g->cur.r != NULL && g->cur.initiator && !g->cur.unreached_checked)
		t = MIN(t, g->cur.started + UNREACHED_MS);
	for (size_t i = 0; i < KEY_SLOTS; i++) {
		if (g->keys[i].rid != 0)
			t = MIN(t, g->keys[i].at);
	}
	return t;
}

void gossip_on_worker(struct gossip *g, uint64_t now, enum gossip_worker_event type, int rc,
                      uint64_t round_id, double epochs, double accuracy, double loss)
{
	acts_reset(g);
	g->now = now;
	switch (type) {
	case GOSSIP_WORKER_TRAINED:
		g->ps.epochs = epochs;
		(void)phase_check(g);
		break;
	case GOSSIP_WORKER_APPLIED:
		if (rc != 0)
			log_warnx("result of round %016llx applied but not checkpointed: %s",
			          (unsigned long long)round_id, strerror(rc < 0 ? -rc : rc));
		if (g->lr_due != 0) {
			/* our chain's project round waited for this (chain_next) */
			const uint8_t(*members)[32];
			uint8_t k;
			uint64_t ref = g->lr_due;

			g->lr_due = 0;
			if (g->cur.r == NULL && !g->stopping && lr_chain_waiting(g->lr, now) &&
			    lr_chain_last(g->lr, &members, &k) == ref)
				chain_next(g, now, MSG_LR_PROJECT, ref, members, k);
			else
				log_info(
				        "low-rank chain ends before its project round: it expired, "
				        "or the node is stopping, while the last result was "
				        "applied");
		}
		break;
	case GOSSIP_WORKER_EVALUATED:
		g->last_eval = now;
		if (rc == 0) {
			g->st.accuracy = accuracy;
			g->st.loss = loss;
			g->st.evals++;
			log_info("eval: accuracy %.4f loss %.4f after %llu rounds, %.2f epochs",
			         accuracy, loss, (unsigned long long)g->ps.rounds_completed,
			         g->ps.epochs);
		}
		break;
	case GOSSIP_WORKER_FAILED:
		log_errorx("training failed (%d)", rc);
		break;
	}
}

void gossip_start(struct gossip *g, uint64_t now)
{
	acts_reset(g);
	g->now = now;
	g->started = true;
	g->last_peer_seen = now;
	g->last_eval = now;
	if (g->ps.flags & PERSIST_F_SETTLED) {
		act_push(g, GOSSIP_FINISH);
		log_info("training ended earlier (settled on the last group result): averaging "
		         "only");
	}
	/* Start training at once; the first round comes after a jittered interval. */
	grant(g);
	if (g->cfg->training.test_set[0] != '\0')
		act_push(g, GOSSIP_EVALUATE);
	plan_next(g, now);
	g->next_grant = g->next_initiate; /* both clocks tick first together */
}

void gossip_stop(struct gossip *g, uint64_t now)
{
	acts_reset(g);
	g->now = now;
	g->stopping = true;
	g->st.state = "stopping";
	if (g->cur.r != NULL) {
		/* Tell the others; nobody applies anything from this round. */
		struct msg m;
		memset(&m, 0, sizeof(m));
		m.type = MSG_ABORT;
		m.round_id = g->cur.id;
		m.attempt = round_attempt(g->cur.r);
		m.u.abort.reason = MSG_REASON_SHUTDOWN;
		snprintf(m.u.abort.text, sizeof(m.u.abort.text), "node stopping");
		for (uint8_t i = 0; i < g->cur.k; i++) {
			if (sodium_memcmp(g->cur.members[i], g->id->sign_pk, 32) != 0)
				send_msg(g, g->cur.members[i], &m);
		}
		count_aborted(g);
		round_clear(g, now);
	}
	act_push(g, GOSSIP_KEYS_CLEAR)->round_id = 0;
}

/* --- set-up, status -------------------------------------------------------- */

int gossip_alloc(struct gossip **out, const struct config *cfg, const struct identity *id,
                 const struct model *m, const struct gossip_ops *ops, const uint8_t *extra,
                 size_t extra_len, uint64_t rows, uint64_t steps_per_epoch)
{
	struct gossip *g;
	const uint8_t *last = NULL;
	uint64_t seed;

	*out = NULL;
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return -ENOMEM;
	g->cfg = cfg;
	g->id = id;
	g->model = m;
	g->n_params = m->n_params;
	g->ops = *ops;
	g->steps_per_epoch = MAX(steps_per_epoch, 1);
	g->n_peers = cfg->n_peers;
	g->peers = calloc(g->n_peers ? g->n_peers : 1, sizeof(*g->peers));
	g->st_peers = calloc(g->n_peers ? g->n_peers : 1, sizeof(*g->st_peers));
	g->outcap = 2 * ROUND_OUTBOX_MIN;
	g->outbuf = calloc(g->outcap, sizeof(*g->outbuf));
	if (g->peers == NULL || g->st_peers == NULL || g->outbuf == NULL)
		goto nomem;
	for (size_t i = 0; i < g->n_peers; i++) {
		g->peers[i].cfg = &cfg->peers[i];
		snprintf(g->st_peers[i].name, sizeof(g->st_peers[i].name), "%s",
		         cfg->peers[i].name);
	}
	if (extra != NULL) {
		if (persist_decode(&g->ps, &last, extra, extra_len, g->n_params) != 0) {
			gossip_free(g);
			return -EINVAL;
		}
		if (last != NULL) {
			g->last_result = malloc(g->n_params * sizeof(float));
			if (g->last_result == NULL)
				goto nomem;
			memcpy(g->last_result, last, g->n_params * sizeof(float));
		}
		g->ps.restarts++;
		g->resumed = true;
		if (m->spec.type == MODEL_STATS && g->ps.epochs != 0.0 && g->ps.epochs != 1.0) {
			gossip_free(g); /* a statistics phase's "epochs" is 0 or 1 */
			return -EINVAL;
		}
	} else {
		/* Sample-weighted push-sum: the weight starts at this node's rows / 1000. */
		g->ps.rho = MIN(MAX((double)rows / 1000.0, RHO_MIN), 64.0);
		if (m->spec.type == MODEL_STATS) {
			g->ps.rho = 0; /* no estimate yet: the parts of our rows come in rounds */
			g->ps.epochs = 0;
		}
	}
	g->stats_weight = MIN(MAX((double)rows / 1000.0, RHO_MIN), 64.0);
	codec_plan_init(&g->plan);
	codec_plan_init(&g->plan_lr[0]);
	codec_plan_init(&g->plan_lr[1]);
	if (cfg->gossip.rank > 0 && m->spec.type != MODEL_STATS) {
		int rc = lr_chain_alloc(&g->lr, m, (unsigned)cfg->gossip.rank);
		if (rc != 0) {
			gossip_free(g);
			return rc;
		}
		if (g->lr == NULL)
			log_warnx("[Gossip] Rank = %d: no layer is large enough for it to pay; "
			          "every round averages the whole model",
			          cfg->gossip.rank);
	}
	randombytes_buf(&seed, sizeof(seed));
	rng_seed(&g->rng, seed);
	g->next_initiate = UINT64_MAX;
	g->initiate_at = UINT64_MAX;
	g->st.state = "idle";
	g->st.round_phase = "-";
	g->st.started = (double)ops->wall_ms(ops->arg) / 1000.0;
	snprintf(g->st.name, sizeof(g->st.name), "%s", cfg->node.name);
	g->st.peers = g->st_peers;
	g->st.n_peers = g->n_peers;
	*out = g;
	return 0;
nomem:
	gossip_free(g);
	return -ENOMEM;
}

const float *gossip_last_result(const struct gossip *g)
{
	return g->last_result;
}

bool gossip_stats_peer_trains(const struct gossip *g)
{
	return g->peer_trains;
}

bool gossip_stats_added(const struct gossip *g)
{
	return stats_added(g);
}

void gossip_set_silent(struct gossip *g, bool silent)
{
	g->silent_after_accept = silent;
}

void gossip_free(struct gossip *g)
{
	if (g == NULL)
		return;
	acts_reset(g);
	round_free(g->cur.r);
	free(g->acts);
	free(g->peers);
	free(g->st_peers);
	free(g->outbuf);
	free(g->last_result);
	codec_ef_free(&g->ef);
	lr_chain_free(g->lr);
	free(g->extra);
	free(g->apply_extra);
	sodium_memzero(g, sizeof(*g));
	free(g);
}

void gossip_status(struct gossip *g, struct node_status *st)
{
	g->st.rounds_completed = g->ps.rounds_completed;
	g->st.rounds_aborted = g->ps.rounds_aborted;
	g->st.rounds_initiated = g->ps.rounds_initiated;
	g->st.restarts = g->ps.restarts;
	g->st.epochs_trained = is_stats(g) ? 0.0 : g->ps.epochs;
	g->st.training_done = g->ops.training_done(g->ops.arg);
	(void)phase_check(g);
	g->st.spread = spread_max(g);
	g->st.epochs_target = g->cfg->training.epochs;
	g->st.weight = g->ps.rho;
	for (size_t i = 0; i < g->n_peers; i++)
		g->st_peers[i].connected = connected(g, g->peers[i].cfg->public_key_bin);
	*st = g->st;
}

void gossip_peer_release(struct gossip *g, const uint8_t pk[32])
{
	struct peer *p = peer_find(g, pk);

	if (p != NULL)
		p->held = false;
}

bool gossip_in_round(const struct gossip *g, const uint8_t pk[32])
{
	for (uint8_t i = 0; g->cur.r != NULL && i < g->cur.k; i++) {
		if (sodium_memcmp(g->cur.members[i], pk, 32) == 0)
			return true;
	}
	return false;
}

bool gossip_busy(const struct gossip *g)
{
	return g->cur.r != NULL;
}

uint64_t gossip_round_id(const struct gossip *g)
{
	return g->cur.id;
}

uint64_t gossip_known_steps(const struct gossip *g)
{
	return g->ps.known_steps;
}

uint64_t gossip_rounds_completed(const struct gossip *g)
{
	return g->ps.rounds_completed;
}
