/*
 * daemon.c: `sotto run -c FILE`, the node every site runs.
 *
 * One libev loop on the main thread owns everything but the model: the
 * NNG transport, the secure-aggregation round in flight (at most one: a
 * node in a round declines other invitations), the control socket, the
 * /metrics endpoint and the timers. Training, evaluation and checkpoint
 * writes run on the worker thread (node/worker.h), so the loop never blocks
 * on them.
 *
 * A round, from this node's side:
 *   schedule timer -> pick k-1 random peers -> round_initiate(snapshot)
 *   INVITE from a peer -> round_join(snapshot) or DECLINE when busy
 *   ... round_on_msg / round_on_tick until DONE or ABORTED ...
 *   DONE -> worker_apply(avg, snapshot): x += avg - snapshot, checkpoint
 *   ABORTED -> nothing changes; the model stays as it was
 *
 * Crash safety: the model, the push-sum weight and the counters live in one
 * checkpoint file written by the worker with write-temp + fsync + rename,
 * right after a result is applied and at shutdown. kill -9 at any instant
 * leaves the old or the new checkpoint; a restart resumes from it.
 */
#include "config/config.h"
#include "crypto/identity.h"
#include "crypto/seal.h"
#include "learn/checkpoint.h"
#include "learn/dataset.h"
#include "learn/learn.h"
#include "learn/model.h"
#include "learn/train.h"
#include "node/cli.h"
#include "node/codec_plan.h"
#include "node/control.h"
#include "node/metrics.h"
#include "node/round.h"
#include "node/status.h"
#include "node/testhooks.h"
#include "node/transport.h"
#include "node/worker.h"
#include "protocol/codec.h"
#include "protocol/msg.h"
#include "util/file.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define PERSIST_MAGIC     0x534e5031u /* "SNP1": the node's part of a checkpoint */
#define PERSIST_BYTES     72
#define PERSIST_V1        64   /* before known_steps and flags: still read */
#define PERSIST_F_SETTLED 0x1u /* training ended early: see settle() */
#define ROUND_TICK_S      0.05

/* What the node keeps across restarts, inside the checkpoint. */
struct persist {
	double rho; /* push-sum weight */
	uint64_t rounds_completed, rounds_aborted, rounds_initiated, restarts;
	double epochs;
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
	uint8_t pk[32];
	double backoff_until; /* monotonic: do not invite before */
	uint32_t failures;    /* consecutive declines / timeouts */
};

struct node_round {
	struct round *r;
	bool input_recorded; /* verification mode: in-RID-A written */
	bool silent;         /* SOTTO_TEST_SILENT_AFTER: say nothing more */
	bool keys_installed; /* transport round keys set for this round */
	uint8_t k;
	uint8_t members[MSG_MAX_MEMBERS][MSG_KEY_BYTES];
	float *snapshot;     /* what this node contributed */
	uint64_t snap_steps; /* training steps in it */
	bool known;          /* and it was the last result, unchanged */
	uint64_t id;
	double started;
	bool initiator;
};

struct node {
	struct config cfg;
	struct identity *id;
	struct ev_loop *loop;
	struct seal_ctx *seal;
	struct transport *tp;
	struct control *ctl;
	struct metrics *metrics;
	struct worker *worker;
	struct dataset *train_ds, *test_ds;
	char ckpt_path[CONFIG_PATH_MAX + 32];
	int lock_fd;

	struct peer *peers;
	size_t n_peers;
	struct status_peer *st_peers;
	struct node_status st;
	struct persist ps;

	struct node_round cur;
	float *last_result;      /* the last result applied (all coordinates), or NULL */
	unsigned privacy_aborts; /* rounds in a row refused as too exposing for our input */
	struct codec_plan plan;  /* what this node's decodes taught its codec plans */
	uint64_t apply_posted;   /* seq of the last worker_apply */
	uint64_t eval_at_round;  /* rounds_completed when we last evaluated */
	double last_peer_seen;
	double last_eval;   /* monotonic time of the last evaluation */
	double eval_epochs; /* epochs trained at the last evaluation */
	double last_alone_log;
	bool stopping;
	int exit_code;

	struct {
		uint64_t rid; /* 0: empty */
		double at;    /* monotonic time to wipe its round keys */
	} key_expiry[64];
	size_t key_expiry_head;

	struct round_out *outbuf;
	size_t outcap;
	struct rng rng;

	ev_timer schedule_timer, round_timer, status_timer;
	ev_signal sigterm, sigint;
	ev_async wake;
};

static uint64_t now_ms(void)
{
	return (uint64_t)(util_now() * 1000.0);
}

static double unix_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* --- persistence of the node's bookkeeping ------------------------------ */

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void persist_encode(uint8_t out[PERSIST_BYTES], const struct persist *ps)
{
	uint64_t bits;

	memset(out, 0, PERSIST_BYTES);
	put_u64(out, PERSIST_MAGIC);
	memcpy(&bits, &ps->rho, 8);
	put_u64(out + 8, bits);
	put_u64(out + 16, ps->rounds_completed);
	put_u64(out + 24, ps->rounds_aborted);
	put_u64(out + 32, ps->rounds_initiated);
	put_u64(out + 40, ps->restarts);
	memcpy(&bits, &ps->epochs, 8);
	put_u64(out + 48, bits);
	put_u64(out + 56, ps->known_steps);
	put_u64(out + 64, ps->flags);
}

/*
 * The node's part of a checkpoint: PERSIST_BYTES of counters, then the last
 * result it applied (n_params floats, host order like the checkpoint's) if
 * it was known when the checkpoint was written. Version-1 blobs (64 bytes)
 * still load. *last is set to the result inside `in`, or NULL.
 */
static int persist_decode(struct persist *ps, const uint8_t **last, const uint8_t *in, size_t len,
                          size_t n_params)
{
	uint64_t bits;

	*last = NULL;
	memset(ps, 0, sizeof(*ps));
	if ((len != PERSIST_V1 && len != PERSIST_BYTES &&
	     len != PERSIST_BYTES + n_params * sizeof(float)) ||
	    get_u64(in) != PERSIST_MAGIC)
		return -EINVAL;
	if (len >= PERSIST_BYTES) {
		ps->flags = get_u64(in + 64);
		if (len > PERSIST_BYTES)
			*last = in + PERSIST_BYTES;
	}
	bits = get_u64(in + 8);
	memcpy(&ps->rho, &bits, 8);
	ps->rounds_completed = get_u64(in + 16);
	ps->rounds_aborted = get_u64(in + 24);
	ps->rounds_initiated = get_u64(in + 32);
	ps->restarts = get_u64(in + 40);
	bits = get_u64(in + 48);
	memcpy(&ps->epochs, &bits, 8);
	if (len >= PERSIST_BYTES)
		ps->known_steps = get_u64(in + 56);
	else
		ps->known_steps = UINT64_MAX; /* not recorded: assume fresh */
	if (!isfinite(ps->rho) || ps->rho <= 0 || ps->rho > 128 || !isfinite(ps->epochs))
		return -EINVAL;
	return 0;
}

/* --- peers --------------------------------------------------------------- */

static struct peer *peer_find(struct node *n, const uint8_t pk[32])
{
	for (size_t i = 0; i < n->n_peers; i++) {
		if (sodium_memcmp(n->peers[i].pk, pk, 32) == 0)
			return &n->peers[i];
	}
	return NULL;
}

static void peer_seen(struct node *n, const uint8_t pk[32])
{
	struct peer *p = peer_find(n, pk);

	if (p == NULL)
		return;
	n->st_peers[p - n->peers].last_seen = unix_now();
	n->last_peer_seen = util_now();
}

static void peer_penalise(struct node *n, const uint8_t pk[32])
{
	struct peer *p = peer_find(n, pk);
	double base = n->cfg.gossip.interval;

	if (p == NULL)
		return;
	if (p->failures < 6)
		p->failures++;
	/* Exponential backoff with jitter, so busy peers are not hammered. */
	p->backoff_until = util_now() +
	                   base * (double)(1u << (p->failures - 1)) * (0.5 + rng_uniform(&n->rng));
}

/* --- sending ------------------------------------------------------------- */

static void send_to(struct node *n, const uint8_t pk[32], const struct msg *m)
{
	int rc = transport_send(n->tp, pk, m);
	struct peer *p = peer_find(n, pk);

	if (rc != 0)
		log_debug("send %s to %s: %s", msg_type_name(m->type),
		          p != NULL ? p->cfg->name : "?", msg_strerror(rc));
}

/* Sends what a round call queued; `to` indexes the round's members. */
/*
 * Forward secrecy for model data: from the roster on, frames of the round
 * are sealed with keys that mix the members' signed ephemeral keys
 * (crypto/seal.h), wiped a grace period after the round.
 */
static void install_round_keys(struct node *n)
{
	uint8_t idx[MSG_MAX_MEMBERS], pks[MSG_MAX_MEMBERS][32];
	struct seal_eph mine;
	size_t m;

	if (n->cur.r == NULL || n->cur.keys_installed)
		return;
	m = round_transport_keys(n->cur.r, &mine, idx, pks);
	for (size_t i = 0; i < m; i++) {
		if (idx[i] < n->cur.k &&
		    seal_round_set(n->seal, n->cur.members[idx[i]], n->cur.id, &mine, pks[i]) != 0)
			log_warnx("cannot install the round key of member %u", idx[i]);
	}
	sodium_memzero(&mine, sizeof(mine));
	n->cur.keys_installed = m > 0;
}

static void flush_outbox(struct node *n, struct round_outbox *ob, const uint8_t (*members)[32],
                         uint8_t k)
{
	bool sent[MSG_TYPE_MAX + 1] = {false};

	/* A member's frames after KEYS go round-sealed; the initiator's KEYS must not. */
	if (n->cur.r != NULL && !n->cur.initiator)
		install_round_keys(n);

	for (size_t i = 0; i < ob->n; i++) {
		const struct round_out *o = &ob->out[i];
		if (o->to >= k || sodium_memcmp(members[o->to], n->id->sign_pk, 32) == 0)
			continue;
		if (n->cur.r != NULL && n->cur.silent && o->msg.round_id == n->cur.id)
			continue;
		send_to(n, members[o->to], &o->msg);
		if (o->msg.type >= MSG_TYPE_MIN && o->msg.type <= MSG_TYPE_MAX)
			sent[o->msg.type] = true;
	}
	ob->n = 0;
	install_round_keys(n);
	/* Test-only kill points right after a phase's messages went out. */
	if (sent[MSG_INVITE])
		testhook(TEST_PHASE_INITIATED);
	if (sent[MSG_SHARES])
		testhook(TEST_PHASE_SHARES);
	if (sent[MSG_MASKED])
		testhook(TEST_PHASE_MASKED);
	if (sent[MSG_SPLIT])
		testhook(TEST_PHASE_SPLITTING);
	if (sent[MSG_UNMASK_REQ])
		testhook(TEST_PHASE_COLLECT);
	if (sent[MSG_RESULT])
		testhook(TEST_PHASE_RESULT);
}

/* Verification mode: record this node's plaintext input once it exists. */
static void verify_input(struct node *n)
{
	const uint32_t *in;

	if (!testhooks_verify() || n->cur.r == NULL || n->cur.input_recorded)
		return;
	in = round_input_ring(n->cur.r);
	if (in == NULL)
		return;
	testhooks_record_input(n->cur.id, round_attempt(n->cur.r), round_codec(n->cur.r), in);
	n->cur.input_recorded = true;
}

static void outbox_init(struct node *n, struct round_outbox *ob)
{
	ob->out = n->outbuf;
	ob->cap = n->outcap;
	ob->n = 0;
}

/*
 * What the node adds to a checkpoint: its counters and, if it has one and
 * it fits, the last result it applied (what settle() goes back to after a
 * restart). malloc'd; on allocation failure the counters alone, in *small.
 */
static uint8_t *checkpoint_extra(const struct node *n, uint8_t small[PERSIST_BYTES], size_t *len)
{
	size_t bytes = worker_n_params(n->worker) * sizeof(float);
	uint8_t *out = NULL;

	*len = PERSIST_BYTES;
	if (n->last_result != NULL && PERSIST_BYTES + bytes <= CHECKPOINT_MAX_EXTRA)
		out = malloc(PERSIST_BYTES + bytes);
	if (out == NULL) {
		persist_encode(small, &n->ps);
		return small;
	}
	persist_encode(out, &n->ps);
	memcpy(out + PERSIST_BYTES, n->last_result, bytes);
	*len = PERSIST_BYTES + bytes;
	return out;
}

static void checkpoint_extra_free(uint8_t *extra, const uint8_t small[PERSIST_BYTES])
{
	if (extra != small)
		free(extra);
}

/* --- the round in flight --------------------------------------------------- */

static void round_clear(struct node *n)
{
	if (n->cur.keys_installed) {
		/*
		 * Late frames of this round still open for a while; then the keys
		 * go. A slot still holding a round (a burst of short rounds) has
		 * that round's keys wiped now, a little early, never left behind.
		 */
		if (n->key_expiry[n->key_expiry_head].rid != 0)
			seal_round_clear(n->seal, n->key_expiry[n->key_expiry_head].rid);
		n->key_expiry[n->key_expiry_head].rid = n->cur.id;
		n->key_expiry[n->key_expiry_head].at =
		        util_now() + 2.0 * n->cfg.gossip.round_timeout + 5.0;
		n->key_expiry_head = (n->key_expiry_head + 1) % ARRAY_LEN(n->key_expiry);
	}
	round_free(n->cur.r);
	free(n->cur.snapshot);
	memset(&n->cur, 0, sizeof(n->cur));
	ev_timer_stop(n->loop, &n->round_timer);
	n->st.state = n->stopping ? "stopping" : "idle";
	n->st.round_phase = "-";
	n->st.round_id = 0;
	log_set_round(0);
}

static void initiate(struct node *n);
static float *snapshot_take(struct node *n, uint64_t *steps);

/*
 * No group can average this node's input without leaving it nearly alone
 * among inputs its members know (the others have stopped training): the
 * rounds it tries abort with reason "privacy". Once its own training is over
 * too, or after a few such rounds in a row, it stops training and goes back
 * to the last result it applied, which its group-mates know already, so it
 * rejoins the averaging. What it trained since that result never leaves the
 * site (docs/security.md, "What a small group leaks").
 */
#define SETTLE_AFTER_ABORTS 3

static void settle(struct node *n)
{
	size_t np = worker_n_params(n->worker);
	uint8_t small[PERSIST_BYTES], *extra;
	float *x, *avg;
	uint64_t steps = 0;
	size_t len;

	if (n->last_result == NULL) {
		log_warnx(
		        "this node's training cannot be averaged without exposing it and there is "
		        "no earlier group result to go back to: training on alone");
		return;
	}
	worker_finish(n->worker);
	x = snapshot_take(n, &steps);
	avg = malloc(np * sizeof(float));
	if (x == NULL || avg == NULL) {
		free(x);
		free(avg);
		return;
	}
	memcpy(avg, n->last_result, np * sizeof(float));
	log_info("training stops at %.2f epochs: no group can average what this node learnt "
	         "alone without exposing it; back to the last group result",
	         n->ps.epochs);
	n->ps.known_steps = steps;
	n->ps.flags |= PERSIST_F_SETTLED;
	n->privacy_aborts = 0;
	extra = checkpoint_extra(n, small, &len);
	n->apply_posted = worker_apply(n->worker, 0, avg, x, extra, len, false);
	checkpoint_extra_free(extra, small);
}

static void round_finished(struct node *n)
{
	struct node_round *c = &n->cur;
	enum round_status s = round_status(c->r);
	uint8_t small[PERSIST_BYTES], *extra;
	size_t extra_len;
	uint8_t counted[MSG_MAX_MEMBERS];
	float *avg = NULL;
	float rho_sum = 0;
	uint32_t members = 0;
	bool evaluate;
	size_t nc;
	int rc;

	if (s == ROUND_RUNNING)
		return;
	verify_input(n);
	if (s == ROUND_ABORTED) {
		if (testhooks_verify()) {
			char why[64];
			snprintf(why, sizeof(why), "aborted %s",
			         msg_reason_name(round_abort_reason(c->r)));
			testhooks_record_outcome(c->id, round_attempt(c->r), why);
		}
		n->ps.rounds_aborted++;
		log_info("round aborted (%s) after %.2fs; model unchanged",
		         msg_reason_name(round_abort_reason(c->r)), util_now() - c->started);
		if (round_abort_reason(c->r) == MSG_REASON_PRIVACY && !c->known &&
		    ++n->privacy_aborts >= (worker_finished(n->worker) ? 1 : SETTLE_AFTER_ABORTS)) {
			round_clear(n);
			settle(n);
			return;
		}
		if (round_abort_reason(c->r) == MSG_REASON_WRAP) {
			/* Plan wider from now on; an initiator redoes the round at once. */
			bool redo = c->initiator && !n->stopping;
			codec_plan_observe(&n->plan, round_codec(c->r), NULL, true);
			round_clear(n);
			if (redo)
				initiate(n);
			return;
		}
		round_clear(n);
		return;
	}
	avg = malloc(worker_n_params(n->worker) * sizeof(float));
	if (avg == NULL) {
		n->ps.rounds_aborted++;
		round_clear(n);
		return;
	}
	/* Coordinates the round did not average keep the snapshot: delta 0. */
	memcpy(avg, c->snapshot, worker_n_params(n->worker) * sizeof(float));
	rc = round_result(c->r, avg, &rho_sum, &members);
	if (rc != 0 || members == 0 || !(rho_sum > 0)) {
		log_warnx("round result cannot be decoded (%s): not applied", strerror(-rc));
		free(avg);
		n->ps.rounds_aborted++;
		round_clear(n);
		return;
	}
	codec_plan_observe(&n->plan, round_codec(c->r), round_decode_stats(c->r), false);
	nc = round_counted(c->r, counted);
	if (testhooks_verify() && round_result_ring(c->r) != NULL) {
		uint8_t keys[MSG_MAX_MEMBERS][32];
		for (size_t i = 0; i < nc; i++)
			memcpy(keys[i], c->members[counted[i]], 32);
		testhooks_record_applied(c->id, round_attempt(c->r), round_codec(c->r),
		                         round_result_ring(c->r), (const uint8_t(*)[32])keys, nc);
		testhooks_record_outcome(c->id, round_attempt(c->r), "done");
	}
	for (size_t i = 0; i < nc; i++) {
		struct peer *p = peer_find(n, c->members[counted[i]]);
		if (p != NULL) {
			n->st_peers[p - n->peers].rounds++;
			p->failures = 0;
		}
	}
	/* Push-sum: every counted member leaves with the group's mean weight. */
	n->ps.rho = MIN((double)rho_sum / members, 127.0);
	n->ps.known_steps = c->snap_steps;
	n->ps.rounds_completed++;
	n->privacy_aborts = 0;
	if (n->last_result == NULL)
		n->last_result = malloc(worker_n_params(n->worker) * sizeof(float));
	if (n->last_result != NULL)
		memcpy(n->last_result, avg, worker_n_params(n->worker) * sizeof(float));
	extra = checkpoint_extra(n, small, &extra_len);
	/* Evaluate the freshly averaged model every EvalEvery rounds. */
	evaluate = n->test_ds != NULL &&
	           n->ps.rounds_completed >= n->eval_at_round + (uint64_t)n->cfg.gossip.eval_every;
	if (evaluate)
		n->eval_at_round = n->ps.rounds_completed;
	n->apply_posted =
	        worker_apply(n->worker, c->id, avg, c->snapshot, extra, extra_len, evaluate);
	checkpoint_extra_free(extra, small);
	c->snapshot = NULL; /* the worker owns it now */
	log_info("round done in %.2fs: %u members, weight %.3f", util_now() - c->started, members,
	         (double)rho_sum);
	round_clear(n);
	if (n->cfg.gossip.rounds > 0 && n->ps.rounds_completed >= (uint64_t)n->cfg.gossip.rounds) {
		log_info("completed %llu rounds (Rounds = %d): stopping",
		         (unsigned long long)n->ps.rounds_completed, n->cfg.gossip.rounds);
		n->stopping = true;
		ev_break(n->loop, EVBREAK_ALL);
	}
}

static void round_begin(struct node *n, struct round *r, const uint8_t (*members)[32], uint8_t k,
                        float *snapshot, uint64_t snap_steps, bool initiator)
{
	n->cur.r = r;
	n->cur.k = k;
	memcpy(n->cur.members, members, (size_t)k * 32);
	n->cur.snapshot = snapshot;
	n->cur.snap_steps = snap_steps;
	n->cur.known = snap_steps == n->ps.known_steps;
	n->cur.id = round_id(r);
	n->cur.started = util_now();
	n->cur.initiator = initiator;
	n->st.state = initiator ? "initiator" : "member";
	n->st.round_phase = "keys";
	n->st.round_id = n->cur.id;
	log_set_round(n->cur.id);
	ev_timer_again(n->loop, &n->round_timer);
}

/*
 * A copy of the current parameters and the training steps they hold, or NULL
 * if an apply is still pending.
 */
static float *snapshot_take(struct node *n, uint64_t *steps)
{
	float *x = malloc(worker_n_params(n->worker) * sizeof(float));

	if (x == NULL)
		return NULL;
	if (worker_snapshot(n->worker, x, steps) != n->apply_posted) {
		free(x); /* the last result is not in the model yet */
		return NULL;
	}
	return x;
}

static void initiate(struct node *n)
{
	uint8_t members[MSG_MAX_MEMBERS][32];
	size_t cand[CONFIG_MAX_PEERS];
	struct codec_params *cp = NULL;
	struct round_outbox ob;
	struct round_plan plan;
	struct round_input in;
	struct round *r = NULL;
	uint8_t k = (uint8_t)n->cfg.gossip.group_size;
	size_t nc = 0;
	double now = util_now();
	uint64_t steps = 0;
	float *x;
	int rc;

	/* Peers out of backoff, connected ones only if there are enough of those
	 * (an unconnected peer may be down: its invitation would wait). */
	for (int connected = 1; connected >= 0 && nc < (size_t)(k - 1); connected--) {
		nc = 0;
		for (size_t i = 0; i < n->n_peers; i++) {
			if (n->peers[i].backoff_until <= now &&
			    (!connected || transport_peer_connected(n->tp, n->peers[i].pk)))
				cand[nc++] = i;
		}
	}
	if (nc < (size_t)(k - 1)) {
		log_debug("only %zu peers available for a group of %u: not starting a round", nc,
		          k);
		return;
	}
	x = snapshot_take(n, &steps);
	if (x == NULL)
		return;
	cp = malloc(sizeof(*cp));
	if (cp == NULL) {
		free(x);
		return;
	}
	memcpy(members[0], n->id->sign_pk, 32);
	for (uint8_t j = 1; j < k; j++) { /* partial Fisher-Yates: k-1 distinct peers */
		size_t pick = j - 1 + (size_t)(rng_next(&n->rng) % (nc - (j - 1)));
		size_t tmp = cand[j - 1];
		cand[j - 1] = cand[pick];
		cand[pick] = tmp;
		memcpy(members[j], n->peers[cand[j - 1]].pk, 32);
	}
	rc = codec_plan_make(cp, &n->plan, worker_model(n->worker), x, n->ps.rho, k, &n->cfg);
	if (rc != 0) {
		log_warnx("cannot plan codec parameters: %s", strerror(-rc));
		goto fail;
	}
	memset(&plan, 0, sizeof(plan));
	do
		randombytes_buf(&plan.round_id, sizeof(plan.round_id));
	while (plan.round_id == 0);
	plan.attempt = 0;
	plan.k = k;
	plan.t = (uint8_t)MAX(n->cfg.gossip.threshold, round_min_threshold(k));
	plan.members = (const uint8_t(*)[MSG_KEY_BYTES])members;
	plan.codec = cp;
	plan.phase_timeout_ms = (uint32_t)(n->cfg.gossip.round_timeout * 1000.0);
	plan.deadline_unix_ms = (uint64_t)(unix_now() * 1000.0) + 6ull * plan.phase_timeout_ms;
	in.x = x;
	in.rho = (float)n->ps.rho;
	in.known = steps == n->ps.known_steps;
	randombytes_buf(&in.rng_seed, sizeof(in.rng_seed));
	outbox_init(n, &ob);
	rc = round_initiate(&r, n->id, &plan, &in, now_ms(), &ob);
	if (rc != 0) {
		log_warnx("cannot start a round: %s", strerror(-rc));
		goto fail;
	}
	n->ps.rounds_initiated++;
	n->st.rounds_initiated++;
	free(cp); /* the round keeps its own copy */
	round_begin(n, r, (const uint8_t(*)[32])members, k, x, steps, true);
	{
		char names[256];
		size_t o = 0;
		for (uint8_t j = 1; j < k && o < sizeof(names); j++) {
			struct peer *p = peer_find(n, members[j]);
			int w = snprintf(names + o, sizeof(names) - o, "%s%s", j > 1 ? "," : "",
			                 p != NULL ? p->cfg->name : "?");
			if (w > 0)
				o += (size_t)w;
		}
		log_info("round started as initiator with %s", names);
	}
	flush_outbox(n, &ob, (const uint8_t(*)[32])members, k);
	round_finished(n);
	return;
fail:
	free(cp);
	free(x);
}

/* The member keys of an INVITE must all be pinned peers (or this node). */
static bool invite_members_known(struct node *n, const struct msg_invite *iv)
{
	for (uint8_t i = 0; i < iv->n_members; i++) {
		if (sodium_memcmp(iv->members[i], n->id->sign_pk, 32) != 0 &&
		    peer_find(n, iv->members[i]) == NULL)
			return false;
	}
	return true;
}

/* The codec must describe exactly this node's model. */
static bool invite_codec_fits(struct node *n, const struct msg_invite *iv)
{
	struct codec_params *cp = malloc(sizeof(*cp));
	bool ok;

	if (cp == NULL)
		return false;
	ok = round_codec_from_msg(cp, &iv->codec) == 0 &&
	     codec_plan_fits(cp, worker_model(n->worker));
	free(cp);
	return ok;
}

static void on_invite(struct node *n, const struct transport_rx *rx)
{
	const struct msg_invite *iv = &rx->msg->u.invite;
	uint8_t from[32];
	struct round_outbox ob;
	struct round_input in;
	struct round *r = NULL;
	enum msg_reason why = MSG_REASON_OTHER;
	uint64_t steps = 0;
	float *x = NULL;
	int rc;

	memcpy(from, rx->sender, 32);
	outbox_init(n, &ob);
	testhook(TEST_PHASE_INVITED);
	if (n->cur.r != NULL || n->stopping)
		why = n->stopping ? MSG_REASON_SHUTDOWN : MSG_REASON_BUSY;
	else if (!invite_members_known(n, iv))
		why = MSG_REASON_UNKNOWN_PEER;
	else if (!invite_codec_fits(n, iv))
		why = MSG_REASON_PARAMS;
	else if (iv->phase_timeout_ms > (uint32_t)(n->cfg.gossip.round_timeout * 1000.0)) {
		/* A member waits twice a phase: never longer than its own RoundTimeout allows. */
		why = MSG_REASON_PARAMS;
		log_info("declined an invitation from %s: phase timeout %.1fs is above this "
		         "node's RoundTimeout %.1fs",
		         rx->sender_name, iv->phase_timeout_ms / 1000.0,
		         n->cfg.gossip.round_timeout);
	} else if ((x = snapshot_take(n, &steps)) == NULL)
		why = MSG_REASON_BUSY; /* the last result is still being applied */
	if (x == NULL) {
		round_decline(rx->msg, why, &ob);
		if (why == MSG_REASON_BUSY)
			n->st.invites_declined++;
		log_debug("declined an invitation from %s: %s", rx->sender_name,
		          msg_reason_name(why));
		for (size_t i = 0; i < ob.n; i++)
			send_to(n, from, &ob.out[i].msg);
		return;
	}
	in.x = x;
	in.rho = (float)n->ps.rho;
	in.known = steps == n->ps.known_steps;
	randombytes_buf(&in.rng_seed, sizeof(in.rng_seed));
	rc = round_join(&r, n->id, from, rx->msg, &in, now_ms(), &ob);
	if (rc != 0) {
		log_info("refused an invitation from %s: %s", rx->sender_name, strerror(-rc));
		for (size_t i = 0; i < ob.n; i++)
			send_to(n, from, &ob.out[i].msg);
		free(x);
		return;
	}
	round_begin(n, r, (const uint8_t(*)[32])iv->members, iv->n_members, x, steps, false);
	log_info("joined a round of %u started by %s", iv->n_members, rx->sender_name);
	flush_outbox(n, &ob, (const uint8_t(*)[32])n->cur.members, n->cur.k);
	if (testhooks_silent_after_accept())
		n->cur.silent = true; /* ACCEPT went out; from now on: nothing */
	round_finished(n);
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

static void on_message_cb(void *arg, const struct transport_rx *rx)
{
	struct node *n = arg;
	const struct msg *m = rx->msg;
	struct round_outbox ob;

	peer_seen(n, rx->sender);
	if (rx->hdr->flags & SEAL_FLAG_ROUND)
		n->st.msgs_round_sealed++;
	switch (m->type) {
	case MSG_INVITE:
		on_invite(n, rx);
		return;
	case MSG_PING: {
		struct msg s;
		memset(&s, 0, sizeof(s));
		s.type = MSG_STATUS;
		s.round_id = n->cur.id;
		s.u.status.seq = m->u.ping.seq;
		s.u.status.time_ms = m->u.ping.time_ms;
		s.u.status.busy = n->cur.r != NULL;
		s.u.status.rounds_ok = n->ps.rounds_completed;
		s.u.status.rounds_aborted = n->ps.rounds_aborted;
		s.u.status.uptime_s = (uint64_t)(unix_now() - n->st.started);
		send_to(n, rx->sender, &s);
		return;
	}
	case MSG_STATUS:
		return;
	default:
		break;
	}
	if (n->cur.r == NULL || m->round_id != n->cur.id) {
		if (m->type == MSG_DECLINE)
			peer_penalise(n, rx->sender);
		n->st.msgs_stale++;
		return;
	}
	if (m->type == MSG_DECLINE)
		peer_penalise(n, rx->sender);
	if (!n->cur.initiator && m->type == MSG_KEYS)
		testhook(TEST_PHASE_KEYS);
	if (!n->cur.initiator && m->type == MSG_SPLIT)
		testhook(TEST_PHASE_SPLIT);
	if (!n->cur.initiator && m->type == MSG_UNMASK_REQ)
		testhook(TEST_PHASE_UNMASK);
	outbox_init(n, &ob);
	if (round_on_msg(n->cur.r, rx->sender, m, now_ms(), &ob) != 0)
		log_warnx("out of memory in a round");
	verify_input(n);
	if (phase_of(m->type) != NULL)
		n->st.round_phase = phase_of(m->type);
	flush_outbox(n, &ob, (const uint8_t(*)[32])n->cur.members, n->cur.k);
	round_finished(n);
}

/*
 * The connection to a peer went away. If it is in our round, the round stops
 * waiting for it now instead of at the phase deadline: a killed member costs
 * a round milliseconds rather than RoundTimeout. A peer that merely
 * reconnects loses at most its part in this round.
 */
static void on_peer_lost_cb(void *arg, const uint8_t *pk, const char *name)
{
	struct node *n = arg;
	struct round_outbox ob;
	bool member = false;

	if (n->cur.r == NULL)
		return;
	for (uint8_t i = 0; i < n->cur.k; i++)
		member = member || sodium_memcmp(n->cur.members[i], pk, 32) == 0;
	if (!member)
		return;
	peer_penalise(n, pk);
	log_info("lost the connection to %s, a member of this round: not waiting for it", name);
	outbox_init(n, &ob);
	if (round_on_peer_lost(n->cur.r, pk, now_ms(), &ob) != 0)
		log_warnx("out of memory in a round");
	verify_input(n);
	flush_outbox(n, &ob, (const uint8_t(*)[32])n->cur.members, n->cur.k);
	round_finished(n);
}

static void round_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct node *n = w->data;
	struct round_outbox ob;

	(void)loop;
	(void)revents;
	if (n->cur.r == NULL) {
		ev_timer_stop(n->loop, w);
		return;
	}
	outbox_init(n, &ob);
	if (round_on_tick(n->cur.r, now_ms(), &ob) != 0)
		log_warnx("out of memory in a round");
	verify_input(n);
	flush_outbox(n, &ob, (const uint8_t(*)[32])n->cur.members, n->cur.k);
	if (round_status(n->cur.r) == ROUND_ABORTED && n->cur.initiator &&
	    round_abort_reason(n->cur.r) == MSG_REASON_TOO_FEW) {
		/* Peers that never answered get a rest before we invite them again. */
		for (uint8_t i = 1; i < n->cur.k; i++)
			peer_penalise(n, n->cur.members[i]);
	}
	round_finished(n);
}

/* --- scheduling, status, worker events -------------------------------------- */

static void schedule_next(struct node *n)
{
	/* Uniform in [0.5, 1.5] x Interval: nodes drift apart, never in lockstep. */
	double d = n->cfg.gossip.interval * (0.5 + rng_uniform(&n->rng));
	ev_timer_set(&n->schedule_timer, d, 0.0);
	ev_timer_start(n->loop, &n->schedule_timer);
}

static void schedule_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct node *n = w->data;
	uint64_t steps = (uint64_t)ceil(n->cfg.training.local_epochs *
	                                (double)worker_steps_per_epoch(n->worker));

	(void)loop;
	(void)revents;
	if (n->stopping)
		return;
	/* LocalEpochs of training per interval, whether or not rounds happen. */
	worker_grant(n->worker, MAX(steps, 1), 2 * MAX(steps, 1));
	if (n->cur.r == NULL)
		initiate(n);
	/* Without rounds (no reachable peers) still evaluate now and then. */
	if (n->test_ds != NULL && n->ps.epochs > n->eval_epochs &&
	    util_now() - n->last_eval > 4.0 * n->cfg.gossip.eval_every * n->cfg.gossip.interval) {
		n->last_eval = util_now();
		n->eval_epochs = n->ps.epochs;
		worker_evaluate(n->worker);
	}
	if (util_now() - n->last_peer_seen > 6 * n->cfg.gossip.interval + 30 &&
	    util_now() - n->last_alone_log > 60) {
		log_warnx("no peer has been heard from in %.0fs: training locally until one is "
		          "reachable",
		          util_now() - n->last_peer_seen);
		n->last_alone_log = util_now();
	}
	schedule_next(n);
}

static void status_refresh(struct node *n)
{
	transport_status_fill(n->tp, &n->st);
	n->st.rounds_completed = n->ps.rounds_completed;
	n->st.epochs_trained = n->ps.epochs;
	n->st.training_done = worker_finished(n->worker);
	n->st.rounds_aborted = n->ps.rounds_aborted;
	n->st.rounds_initiated = n->ps.rounds_initiated;
	n->st.restarts = n->ps.restarts;
	n->st.weight = n->ps.rho;
	for (size_t i = 0; i < n->n_peers; i++)
		n->st_peers[i].connected = transport_peer_connected(n->tp, n->peers[i].pk);
}

static void status_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct node *n = w->data;
	char *text;

	(void)loop;
	(void)revents;
	for (size_t i = 0; i < ARRAY_LEN(n->key_expiry); i++) {
		if (n->key_expiry[i].rid != 0 && n->key_expiry[i].at <= util_now()) {
			seal_round_clear(n->seal, n->key_expiry[i].rid);
			n->key_expiry[i].rid = 0;
		}
	}
	status_refresh(n);
	if (n->metrics != NULL) {
		text = status_format_prometheus(&n->st, unix_now());
		metrics_publish(n->metrics, text);
		free(text);
	}
	/* Also keep the replay reservation fresh on disk now and then. */
	if (seal_state_save(n->seal) != 0)
		log_warnx("cannot save the replay state");
}

static char *control_answer_cb(void *arg, const char *cmd)
{
	struct node *n = arg;

	status_refresh(n);
	{
		/* A scan of the published parameters: cheap, and it proves no NaN got in. */
		size_t np = worker_n_params(n->worker);
		float *x = malloc(np * sizeof(float));
		if (x != NULL) {
			(void)worker_snapshot(n->worker, x, NULL);
			n->st.model_nonfinite = 0;
			for (size_t i = 0; i < np; i++)
				n->st.model_nonfinite += !isfinite(x[i]);
			free(x);
		}
	}
	if (strcmp(cmd, "status") == 0)
		return status_format_text(&n->st, unix_now());
	if (strcmp(cmd, "metrics") == 0)
		return status_format_prometheus(&n->st, unix_now());
	return NULL;
}

static void wake_cb(void *arg)
{
	struct node *n = arg;
	ev_async_send(n->loop, &n->wake);
}

static void worker_events_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct node *n = w->data;
	struct worker_event ev[64];
	size_t got;

	(void)loop;
	(void)revents;
	while ((got = worker_events(n->worker, ev, ARRAY_LEN(ev))) > 0) {
		for (size_t i = 0; i < got; i++) {
			switch (ev[i].type) {
			case WORKER_EV_TRAINED:
				n->ps.epochs = ev[i].epochs;
				n->st.epochs_trained = ev[i].epochs;
				break;
			case WORKER_EV_APPLIED:
				if (ev[i].rc != 0)
					log_warnx("result of round %016llx applied but not "
					          "checkpointed: %s",
					          (unsigned long long)ev[i].round_id,
					          learn_strerror(ev[i].rc));
				break;
			case WORKER_EV_EVALUATED:
				n->last_eval = util_now();
				if (ev[i].rc == 0) {
					n->st.accuracy = ev[i].accuracy;
					n->st.loss = ev[i].loss;
					n->st.evals++;
					log_info("eval: accuracy %.4f loss %.4f after %llu rounds, "
					         "%.2f epochs",
					         ev[i].accuracy, ev[i].loss,
					         (unsigned long long)n->ps.rounds_completed,
					         n->ps.epochs);
				}
				break;
			case WORKER_EV_CHECKPOINT:
				break;
			case WORKER_EV_FAILED:
				log_errorx("training failed: %s", learn_strerror(ev[i].rc));
				break;
			}
		}
	}
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct node *n = w->data;

	(void)revents;
	log_info("signal %d: stopping at a safe point", w->signum);
	n->stopping = true;
	ev_break(loop, EVBREAK_ALL);
}

/* --- start and stop ----------------------------------------------------------- */

static int load_model(struct node *n, struct train **t)
{
	struct model_spec spec;
	struct optim_params op;
	uint8_t *extra = NULL;
	size_t extra_len = 0;
	int rc;

	rc = train_setup_from_config(&spec, &op, &n->cfg, n->train_ds);
	if (rc != 0) {
		log_errorx("model: %s", learn_strerror(rc));
		return rc;
	}
	rc = checkpoint_load(n->ckpt_path, t, &extra, &extra_len);
	if (rc == 0) {
		struct model_spec *have = &(*t)->model->spec;
		size_t np = model_spec_n_params(&spec);
		const uint8_t *last = NULL;

		if (have->type != spec.type || model_spec_n_params(have) != np ||
		    persist_decode(&n->ps, &last, extra, extra_len, np) != 0) {
			log_errorx("%s is for another model or node; move it away to start over",
			           n->ckpt_path);
			train_free(*t);
			*t = NULL;
			free(extra);
			return LEARN_EMISMATCH;
		}
		if (last != NULL && (n->last_result = malloc(np * sizeof(float))) != NULL)
			memcpy(n->last_result, last, np * sizeof(float));
		free(extra);
		n->ps.restarts++;
		log_info("resumed from %s: %llu rounds, %.2f epochs, weight %.3f", n->ckpt_path,
		         (unsigned long long)n->ps.rounds_completed, n->ps.epochs, n->ps.rho);
		return 0;
	}
	if (rc != -ENOENT) {
		log_errorx("%s: %s (the file is kept; move it away to start over)", n->ckpt_path,
		           learn_strerror(rc));
		return rc;
	}
	rc = train_alloc(t, &spec, n->cfg.model.seed, &op, (uint32_t)n->cfg.training.batch_size,
	                 n->cfg.training.seed);
	if (rc != 0) {
		log_errorx("model: %s", learn_strerror(rc));
		return rc;
	}
	memset(&n->ps, 0, sizeof(n->ps));
	/* Sample-weighted push-sum: the weight starts at this node's rows / 1000. */
	n->ps.rho = MIN(MAX((double)n->train_ds->rows / 1000.0, 0.01), 64.0);
	log_info("new model: %s, %zu parameters, weight %.3f", model_type_name(spec.type),
	         model_spec_n_params(&spec), n->ps.rho);
	return 0;
}

static int node_open(struct node *n, const char *config_path)
{
	struct transport_options topt;
	struct seal_options sopt;
	char path[CONFIG_PATH_MAX + 32];
	struct train *t = NULL;
	int rc;

	rc = node_config_load(&n->cfg, config_path, &n->id);
	if (rc != 0) {
		config_errors_print(&n->cfg, stderr);
		return 2;
	}
	if (!n->cfg.has_node) {
		fprintf(stderr,
		        "sotto run: %s has no [Node] section (for local training use "
		        "`sotto train`)\n",
		        config_path);
		return 2;
	}
	log_set_node(n->cfg.node.name);
	log_set_level((enum log_level)n->cfg.node.log_level);
	testhooks_log();
	if (file_mkdirs(n->cfg.node.data_dir) != 0) {
		log_error("cannot create DataDir %s", n->cfg.node.data_dir);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/lock", n->cfg.node.data_dir);
	n->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (n->lock_fd < 0 || flock(n->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		log_errorx("another sotto run uses %s (or it cannot be locked)",
		           n->cfg.node.data_dir);
		return 1;
	}
	snprintf(n->ckpt_path, sizeof(n->ckpt_path), "%s/checkpoint", n->cfg.node.data_dir);
	{
		/* Leftovers of writes a kill -9 interrupted: never read, just removed. */
		int removed = file_cleanup_tmp(n->cfg.node.data_dir);
		snprintf(path, sizeof(path), "%s/verify", n->cfg.node.data_dir);
		removed += file_cleanup_tmp(path);
		if (removed > 0)
			log_info("removed %d temporary files of interrupted writes", removed);
	}

	rc = dataset_load(&n->train_ds, n->cfg.training.dataset);
	if (rc != 0) {
		log_errorx("Dataset %s: %s", n->cfg.training.dataset, learn_strerror(rc));
		return 1;
	}
	if (n->cfg.training.test_set[0] != '\0') {
		rc = dataset_load(&n->test_ds, n->cfg.training.test_set);
		if (rc != 0) {
			log_errorx("TestSet %s: %s", n->cfg.training.test_set, learn_strerror(rc));
			return 1;
		}
	}
	if (load_model(n, &t) != 0)
		return 1;
	rc = worker_start(&n->worker, t, n->train_ds, n->test_ds, n->ckpt_path,
	                  n->cfg.training.threads,
	                  (uint64_t)n->cfg.training.epochs * train_steps_per_epoch(t, n->train_ds),
	                  wake_cb, n);
	if (rc != 0) {
		train_free(t);
		log_errorx("cannot start the training thread: %s", strerror(-rc));
		return 1;
	}
	if (n->ps.flags & PERSIST_F_SETTLED) {
		worker_finish(n->worker);
		log_info("training ended earlier (settled on the last group result): averaging "
		         "only");
	}

	memset(&sopt, 0, sizeof(sopt));
	snprintf(path, sizeof(path), "%s/replay.state", n->cfg.node.data_dir);
	sopt.state_path = path;
	/*
	 * The largest frame this model can need: a vector of 32-bit ring
	 * values plus room for the rest. Anything larger is refused before it
	 * is buffered, so a stranger who reaches Listen cannot make NNG hold
	 * more than this per connection.
	 */
	sopt.max_frame = MAX((size_t)1 << 20, 4 * worker_n_params(n->worker) + ((size_t)64 << 10));
	rc = seal_ctx_alloc(&n->seal, n->id, &sopt);
	if (rc != 0) {
		log_errorx("replay state %s: %s", path, seal_strerror(rc));
		return 1;
	}
	util_nofile_raise(); /* before the transport budgets descriptors */
	memset(&topt, 0, sizeof(topt));
	topt.listen_url = n->cfg.node.listen;
	rc = transport_alloc(&n->tp, n->loop, n->seal, &topt, on_message_cb, n);
	if (rc != 0) {
		log_errorx("transport: %s", strerror(-rc));
		return 1;
	}
	transport_set_lost_cb(n->tp, on_peer_lost_cb, n);
	{
		struct transport_fault f;
		if (testhooks_fault(&f) && transport_set_fault(n->tp, &f) != 0) {
			log_errorx("SOTTO_TEST_FAULT: refused by the transport");
			return 1;
		}
	}
	if (testhooks_verify() &&
	    testhooks_verify_start(n->cfg.node.data_dir, n->id->sign_pk) != 0) {
		log_error("verify: cannot create %s/verify", n->cfg.node.data_dir);
		return 1;
	}
	n->n_peers = n->cfg.n_peers;
	n->peers = calloc(n->n_peers, sizeof(*n->peers));
	n->st_peers = calloc(n->n_peers, sizeof(*n->st_peers));
	if (n->peers == NULL || n->st_peers == NULL)
		return 1;
	for (size_t i = 0; i < n->n_peers; i++) {
		n->peers[i].cfg = &n->cfg.peers[i];
		memcpy(n->peers[i].pk, n->cfg.peers[i].public_key_bin, 32);
		snprintf(n->st_peers[i].name, sizeof(n->st_peers[i].name), "%s",
		         n->cfg.peers[i].name);
		rc = transport_peer_add(n->tp, n->peers[i].pk, n->cfg.peers[i].endpoint,
		                        n->cfg.peers[i].name);
		if (rc != 0) {
			log_errorx("peer %s: %s", n->cfg.peers[i].name, strerror(-rc));
			return 1;
		}
	}
	rc = transport_start(n->tp);
	if (rc != 0) {
		log_errorx("cannot listen on %s: %s", n->cfg.node.listen, strerror(-rc));
		return 1;
	}
	rc = control_start(&n->ctl, n->loop, n->cfg.node.control_socket, control_answer_cb, n);
	if (rc != 0) {
		log_errorx("control socket %s: %s", n->cfg.node.control_socket,
		           rc == -EADDRINUSE ? "a node is already running there" : strerror(-rc));
		return 1;
	}
	if (n->cfg.node.metrics_listen[0] != '\0' &&
	    metrics_start(&n->metrics, n->cfg.node.metrics_listen) != 0)
		return 1;
	return 0;
}

/*
 * libnng 1.5.2 (Debian bookworm) can deadlock inside nng_close() while peers
 * connect and disconnect around it (the chaos test caught it: the main
 * thread waits for the socket's pipes, the reaper waits too; cf.
 * nanomsg/nng#1813, fixed in later releases). By then the node has written
 * its checkpoint and replay state, so a watchdog ends the process if closing
 * the sockets takes longer than CLOSE_WATCHDOG_S, instead of hanging until
 * someone sends SIGKILL.
 */
#define CLOSE_WATCHDOG_S 10

struct close_watchdog {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool done, started;
	int exit_code;
};

static void *close_watchdog_main(void *arg)
{
	struct close_watchdog *wd = arg;
	struct timespec until;
	bool done;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += CLOSE_WATCHDOG_S;
	pthread_mutex_lock(&wd->lock);
	while (!wd->done && pthread_cond_timedwait(&wd->cond, &wd->lock, &until) == 0)
		;
	done = wd->done;
	pthread_mutex_unlock(&wd->lock);
	if (!done) {
		log_warnx("the network library did not close its sockets within %d s; "
		          "state is saved, exiting anyway",
		          CLOSE_WATCHDOG_S);
		_exit(wd->exit_code);
	}
	return NULL;
}

static void close_watchdog_start(struct close_watchdog *wd, int exit_code)
{
	pthread_condattr_t ca;

	memset(wd, 0, sizeof(*wd));
	pthread_mutex_init(&wd->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* immune to clock steps */
	pthread_cond_init(&wd->cond, &ca);
	pthread_condattr_destroy(&ca);
	wd->exit_code = exit_code;
	wd->started = pthread_create(&wd->thread, NULL, close_watchdog_main, wd) == 0;
}

static void close_watchdog_stop(struct close_watchdog *wd)
{
	pthread_mutex_lock(&wd->lock);
	wd->done = true;
	pthread_cond_signal(&wd->cond);
	pthread_mutex_unlock(&wd->lock);
	if (wd->started)
		pthread_join(wd->thread, NULL);
	pthread_cond_destroy(&wd->cond);
	pthread_mutex_destroy(&wd->lock);
}

static void node_close(struct node *n)
{
	uint8_t small[PERSIST_BYTES], *extra;
	size_t extra_len;
	struct close_watchdog wd;
	int rc;

	if (n->cur.r != NULL) {
		/* Tell the others; nobody applies anything from this round. */
		struct msg m;
		memset(&m, 0, sizeof(m));
		m.type = MSG_ABORT;
		m.round_id = n->cur.id;
		m.attempt = round_attempt(n->cur.r);
		m.u.abort.reason = MSG_REASON_SHUTDOWN;
		snprintf(m.u.abort.text, sizeof(m.u.abort.text), "node stopping");
		for (uint8_t i = 0; i < n->cur.k; i++) {
			if (sodium_memcmp(n->cur.members[i], n->id->sign_pk, 32) != 0)
				send_to(n, n->cur.members[i], &m);
		}
		n->ps.rounds_aborted++;
		round_clear(n);
		/* Give NNG a moment to hand the ABORTs to the sockets. */
		for (int i = 0; i < 20 && transport_pending(n->tp, NULL) > 0; i++)
			ev_run(n->loop, EVRUN_ONCE | EVRUN_NOWAIT);
	}
	if (n->worker != NULL) {
		extra = checkpoint_extra(n, small, &extra_len);
		rc = worker_stop(n->worker, extra, extra_len);
		checkpoint_extra_free(extra, small);
		if (rc == 0)
			log_info("checkpoint written: %llu rounds, %.2f epochs",
			         (unsigned long long)n->ps.rounds_completed, n->ps.epochs);
		n->worker = NULL;
	}
	/* Everything that must survive is on disk before NNG is touched. */
	if (n->seal != NULL)
		seal_round_clear(n->seal, 0);
	if (n->seal != NULL && seal_state_save(n->seal) != 0)
		log_warnx("cannot save the replay state");
	control_stop(n->ctl);
	close_watchdog_start(&wd, n->exit_code);
	testhook_close_hang();
	metrics_stop(n->metrics);
	transport_free(n->tp);
	close_watchdog_stop(&wd);
	seal_ctx_free(n->seal);
	dataset_free(n->train_ds);
	dataset_free(n->test_ds);
	free(n->peers);
	free(n->st_peers);
	free(n->last_result);
	free(n->outbuf);
	identity_free(n->id);
	config_fini(&n->cfg);
	if (n->lock_fd >= 0)
		close(n->lock_fd);
}

int cmd_run(int argc, char **argv)
{
	const char *path = cli_config_arg(argc, argv);
	struct node *n;
	int rc;

	if (path == NULL || argc != 3) {
		fprintf(stderr, "usage: sotto run -c FILE\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	if (testhooks_init() != 0)
		return 2;
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return 1;
	n->lock_fd = -1;
	n->loop = ev_default_loop(EVFLAG_AUTO);
	n->outcap = 2 * ROUND_OUTBOX_MIN;
	n->outbuf = calloc(n->outcap, sizeof(*n->outbuf));
	{
		uint64_t seed;
		randombytes_buf(&seed, sizeof(seed));
		rng_seed(&n->rng, seed);
	}
	n->st.state = "starting";
	n->st.round_phase = "-";
	n->st.started = unix_now();
	ev_async_init(&n->wake, worker_events_cb);
	n->wake.data = n;
	ev_async_start(n->loop, &n->wake);
	rc = n->outbuf == NULL ? 1 : node_open(n, path);
	if (rc != 0) {
		node_close(n);
		free(n);
		return rc;
	}
	snprintf(n->st.name, sizeof(n->st.name), "%s", n->cfg.node.name);
	n->st.peers = n->st_peers;
	n->st.n_peers = n->n_peers;
	n->st.state = "idle";
	n->last_peer_seen = util_now();

	ev_signal_init(&n->sigterm, signal_cb, SIGTERM);
	ev_signal_init(&n->sigint, signal_cb, SIGINT);
	n->sigterm.data = n->sigint.data = n;
	ev_signal_start(n->loop, &n->sigterm);
	ev_signal_start(n->loop, &n->sigint);
	signal(SIGPIPE, SIG_IGN);
	ev_init(&n->round_timer, round_timer_cb);
	n->round_timer.repeat = ROUND_TICK_S;
	n->round_timer.data = n;
	ev_init(&n->schedule_timer, schedule_cb);
	n->schedule_timer.data = n;
	ev_timer_init(&n->status_timer, status_timer_cb, 1.0, 1.0);
	n->status_timer.data = n;
	ev_timer_start(n->loop, &n->status_timer);

	log_info("listening on %s with %zu peers, groups of %d (t = %d), interval %.1fs",
	         n->cfg.node.listen, n->n_peers, n->cfg.gossip.group_size,
	         MAX(n->cfg.gossip.threshold,
	             round_min_threshold((uint8_t)n->cfg.gossip.group_size)),
	         n->cfg.gossip.interval);
	/* Start training at once; the first round comes after a jittered interval. */
	{
		uint64_t steps = (uint64_t)ceil(n->cfg.training.local_epochs *
		                                (double)worker_steps_per_epoch(n->worker));
		worker_grant(n->worker, MAX(steps, 1), 2 * MAX(steps, 1));
	}
	if (n->test_ds != NULL)
		worker_evaluate(n->worker);
	n->last_eval = util_now();
	schedule_next(n);
	ev_run(n->loop, 0);

	n->st.state = "stopping";
	rc = n->exit_code;
	node_close(n);
	free(n);
	return rc;
}
