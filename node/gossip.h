/*
 * gossip.h: a node's decisions, without I/O. One home for a round's life.
 *
 * The core of `sotto run`: which peers to invite and when, whether to join
 * an invitation, the round in flight (secagg/round.h) from its start to the
 * result applied or dropped, the codec plan, what goes into the checkpoint,
 * when to evaluate, and the numbers `sotto status` shows. It owns no socket,
 * thread, clock or file. The shell (node/daemon.c, or the simulator in
 * sim/) feeds it events with an explicit time and carries out the actions
 * it returns:
 *
 *   events   gossip_start, gossip_on_msg (an authenticated message),
 *            gossip_on_timer (time passed), gossip_on_link (a peer's
 *            connection went down), gossip_on_worker (training, applies,
 *            evaluations), gossip_stop
 *   actions  SEND a message, APPLY a result, GRANT training steps,
 *            EVALUATE, FINISH training, install or clear a round's
 *            transport KEYS, STOP the node, and
 *            PHASE (a test kill point, in order with the sends around it)
 *   timer    gossip_next_timer: when to call gossip_on_timer next
 *
 * After every event call the shell runs gossip_actions() in order, before
 * it calls the core again: byte strings of SEND messages point into the
 * core and live until the next call. Two synchronous questions go the other
 * way through struct gossip_ops: a copy of the model as training left it,
 * and whether a peer's connection is up.
 *
 * Everything random comes from libsodium's randombytes (a simulator makes
 * that deterministic); everything timed comes from the `now` arguments. So
 * the same events in the same order give the same actions.
 *
 * Not here: sockets and sealing (node/transport.h), the training thread
 * (node/worker.h), the control socket and metrics (node/control.h,
 * node/metrics.h), the round's cryptography (secagg/round.h).
 */
#ifndef SOTTO_NODE_GOSSIP_H
#define SOTTO_NODE_GOSSIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/seal.h"
#include "node/status.h"
#include "node/testhooks.h"
#include "protocol/msg.h"

struct codec_params;
struct config;
struct gossip;
struct identity;
struct model;

/* Synchronous questions to the shell, and observation points for tests. */
struct gossip_ops {
	/*
	 * Copies the model as the training worker last published it into x
	 * (n_params floats) and its training steps into *steps; returns the
	 * sequence number of the last APPLY it includes (gossip_apply_seq).
	 */
	uint64_t (*snapshot)(void *arg, float *x, uint64_t *steps);
	/* Whether local training is over (its budget is spent, or FINISH). */
	bool (*training_done)(void *arg);
	/* Whether the connection to the peer is up now (may be NULL: assume up). */
	bool (*peer_connected)(void *arg, const uint8_t pk[32]);
	/* Wall clock, for the INVITE's informative deadline (ms since 1970). */
	uint64_t (*wall_ms)(void *arg);

	/* May be NULL. Verification records (the chaos harness, the simulator). */
	void (*record_input)(void *arg, uint64_t rid, uint32_t attempt,
	                     const struct codec_params *cp, const uint32_t *ring);
	void (*record_applied)(void *arg, uint64_t rid, uint32_t attempt,
	                       const struct codec_params *cp, const uint32_t *ring,
	                       const uint8_t (*members)[32], size_t n);
	void (*record_outcome)(void *arg, uint64_t rid, uint32_t attempt, const char *what);
	void *arg;
};

enum gossip_act_type {
	GOSSIP_SEND,       /* peer, msg */
	GOSSIP_APPLY,      /* round_id, avg, snapshot, extra: post to the worker */
	GOSSIP_GRANT,      /* steps, cap: worker_grant */
	GOSSIP_EVALUATE,   /* evaluate on the test set */
	GOSSIP_FINISH,     /* no more training: worker_finish */
	GOSSIP_KEYS_SET,   /* round_id, peer, mine, peer_eph: seal_round_set, then wipe */
	GOSSIP_KEYS_CLEAR, /* round_id: seal_round_clear */
	GOSSIP_STOP,       /* the node is done (Rounds reached): stop it */
	GOSSIP_PHASE,      /* phase: a protocol phase was reached (testhooks.h) */
};

struct gossip_act {
	enum gossip_act_type type;
	uint8_t peer[32];  /* SEND, KEYS_SET: identity key */
	struct msg msg;    /* SEND: byte strings borrow the core until the next call */
	uint64_t round_id; /* APPLY, KEYS_SET, KEYS_CLEAR */
	/* APPLY: owned by the shell from here (free them); extra: copy it */
	float *avg, *snapshot;
	const uint8_t *extra;
	size_t extra_len;
	bool evaluate;
	uint64_t seq;         /* APPLY: the sequence number the worker will report */
	uint64_t steps, cap;  /* GRANT */
	struct seal_eph mine; /* KEYS_SET: our ephemeral pair (secret: wipe it) */
	uint8_t peer_eph[SEAL_KEY_BYTES];
	enum test_phase phase; /* PHASE */
};

/*
 * Makes the core of the node described by cfg (its [Gossip], [Training] and
 * [Peer] sections; borrowed, must outlive the core), with identity id
 * (borrowed) and model m (its layout, for codec plans; borrowed). extra /
 * extra_len: the node's part of the checkpoint it resumed from (NULL, 0:
 * a new node); see gossip_checkpoint_extra. rows: the training set's size
 * (a new node's push-sum weight is rows / 1000); steps_per_epoch: of that
 * set (a grant is LocalEpochs of them). Returns 0, -EINVAL (extra does not
 * belong to this model) or -ENOMEM.
 */
int gossip_alloc(struct gossip **out, const struct config *cfg, const struct identity *id,
                 const struct model *m, const struct gossip_ops *ops, const uint8_t *extra,
                 size_t extra_len, uint64_t rows, uint64_t steps_per_epoch)
        __attribute__((warn_unused_result));
/* Test switch (SOTTO_TEST_SILENT_AFTER=accept): join rounds, then say nothing. */
/* The last result this node applied (n_params floats), or NULL before its first. */
const float *gossip_last_result(const struct gossip *g);
/*
 * Feature statistics (a MODEL_STATS core): whether this site's rows are in
 * the sums (or it gave up adding them).
 */
bool gossip_stats_added(const struct gossip *g);
/*
 * Feature statistics: whether a peer has invited this node into a training
 * round (it has agreed its statistics and moved on).
 */
bool gossip_stats_peer_trains(const struct gossip *g);
void gossip_set_silent(struct gossip *g, bool silent);
void gossip_free(struct gossip *g);

/* The node starts: first training grant, first evaluation, first round planned. */
void gossip_start(struct gossip *g, uint64_t now_ms);
/*
 * The node stops: tells the members of a round in flight, which aborts for
 * everyone. Afterwards take the checkpoint's extra (gossip_checkpoint_extra).
 */
void gossip_stop(struct gossip *g, uint64_t now_ms);

/* An authenticated message from the pinned peer pk. round_sealed: its frame flag. */
void gossip_on_msg(struct gossip *g, uint64_t now_ms, const uint8_t pk[32], const struct msg *m,
                   bool round_sealed);
/* Time passed: whatever was due at now_ms happens. */
void gossip_on_timer(struct gossip *g, uint64_t now_ms);
/* When gossip_on_timer should run next (absolute ms); UINT64_MAX: never. */
uint64_t gossip_next_timer(const struct gossip *g);
/* The connection to a peer went down (the transport noticed). */
void gossip_on_link_lost(struct gossip *g, uint64_t now_ms, const uint8_t pk[32]);

/* "done": every one of the last 5 results within this of the node's input (relative L2). */
#define GOSSIP_CONSENSUS_SPREAD 1e-3

/* What gossip_reload changed. */
struct gossip_reload_stats {
	size_t added, removed, moved, renamed; /* moved: same key, another Endpoint */
	size_t round_members; /* members of the round in flight that went or changed */
};
/* Whether pk is a member of the round in flight (this node's included). */
bool gossip_in_round(const struct gossip *g, const uint8_t pk[32]);
/* A peer a reload moved is reached at its new endpoint now: use it again. */
void gossip_peer_release(struct gossip *g, const uint8_t pk[32]);
/*
 * A reloaded config's peers (next stays alive, and becomes the config the
 * core was given, before the core's next call). Kept peers keep their
 * history; peers gone or re-keyed are neither invited nor joined from now
 * on, and a moved one (same key, another Endpoint) only after
 * gossip_peer_release. A member of the round in flight that is gone,
 * re-keyed or moved stays in that round until it ends by its own rules (all
 * or nothing): the caller keeps such a peer pinned while gossip_in_round()
 * says so. 0 or -ENOMEM (nothing changed).
 */
int gossip_reload(struct gossip *g, uint64_t now_ms, const struct config *next,
                  struct gossip_reload_stats *rs);

/* What the worker reports (node/worker.h's events, as plain values). */
enum gossip_worker_event {
	GOSSIP_WORKER_TRAINED,   /* epochs: trained in total */
	GOSSIP_WORKER_APPLIED,   /* round_id, rc */
	GOSSIP_WORKER_EVALUATED, /* rc, accuracy, loss */
	GOSSIP_WORKER_FAILED,    /* rc */
};
void gossip_on_worker(struct gossip *g, uint64_t now_ms, enum gossip_worker_event type, int rc,
                      uint64_t round_id, double epochs, double accuracy, double loss);

/* The actions of the last call, in order; valid until the next call. */
const struct gossip_act *gossip_actions(const struct gossip *g, size_t *n);

/*
 * The node's part of a checkpoint written now: counters, push-sum weight,
 * what is needed to tell whether its input is known, and the last result
 * it applied. Valid until the next call.
 */
const uint8_t *gossip_checkpoint_extra(struct gossip *g, size_t *len);
/*
 * What a checkpoint's extra (as gossip_checkpoint_extra wrote it, for a
 * model of n_params) says about the node's progress, without a node:
 * rounds completed and epochs trained. 0 or -EINVAL (not such an extra).
 */
int gossip_extra_progress(const uint8_t *extra, size_t len, size_t n_params, uint64_t *rounds,
                          double *epochs) __attribute__((warn_unused_result));

/*
 * The last result a checkpoint's extra holds (n_params floats in host
 * order, unaligned: copy them), into *last; NULL if the node had applied
 * none. 0 or -EINVAL (not such an extra).
 */
int gossip_extra_last(const uint8_t *extra, size_t len, size_t n_params, const uint8_t **last)
        __attribute__((warn_unused_result));

/* Status numbers of the core (transport figures are the shell's to add). */
void gossip_status(struct gossip *g, struct node_status *st);
/* Whether the node is in a round now. */
bool gossip_busy(const struct gossip *g);
/* The round in flight's id, or 0. */
uint64_t gossip_round_id(const struct gossip *g);
/*
 * The training steps of the input that made the last result applied (the
 * node's input is "known" while its snapshot's steps equal them);
 * UINT64_MAX: none recorded.
 */
uint64_t gossip_known_steps(const struct gossip *g);
/* Rounds completed (including before restarts). */
uint64_t gossip_rounds_completed(const struct gossip *g);

#endif
