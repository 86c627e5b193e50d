/*
 * round.h: the secure-aggregation round of a gossip group, as a
 * transport-agnostic state machine (Bonawitz et al., CCS 2017, run inside a
 * group of k members whose initiator, index 0, also plays the server).
 *
 * No threads, no sockets, no clock: the caller feeds events (a message from
 * an authenticated peer, a timer tick with an explicit "now" in monotonic
 * milliseconds) and gets the messages to send in a caller-provided outbox.
 * The initiator's own member part runs inside the same struct round, so the
 * rules a member enforces (what it reveals) are the same code for everyone.
 *
 *   INVITE  -> ACCEPT (signed mask key, share key, seed commitment)
 *   KEYS    -> SHARES (t-of-k shares of seed and mask key, boxed per holder)
 *   SHARES  -> MASKED (encode, + self mask, +- pairwise masks, packed)
 *   SPLIT   -> SPLIT_SIG (the member signs who is alive and who dropped,
 *              over a transcript of the round; one split per attempt)
 *   UNMASK  -> UNMASK (under the split it signed, once every alive member
 *              signed it too: self-mask shares of alive members, mask-key
 *              shares of dropped ones)
 *   RESULT  -> CHECKED (the member decoded the sum against its own model
 *              and the codec's range and checksum verified it) or ABORT
 *              (reason "wrap": its decode wrapped)
 *   COMMIT  -> applied by every counted member; ABORT -> nobody applies
 *
 * All or nothing with modular codecs: each member decodes against its own
 * reference, so one member's decode may wrap while the others' do not. The
 * initiator sends COMMIT only once every counted member sent CHECKED (or
 * went silent until the deadline: dead, it applies nothing); one ABORT
 * aborts the round for everyone. So a wrapped decode is applied by nobody,
 * and nobody applies a round that a live counted member refused.
 *
 * Each initiator phase ends when everyone expected answered or at its
 * deadline (phase_timeout_ms); whoever did not answer is dropped, and below
 * t members the round aborts for everyone. Members give every phase twice
 * that time, so a member never times out while the initiator may still
 * finish. The threshold must satisfy t >= max(3, ceil((k + 2) / 2)). Then,
 * against an initiator and members that lie in any way (up to
 * round_max_dishonest(k, t) of them), every honest member reveals under one
 * and the same split, so the coalition learns one sum of at least t inputs
 * of which at least two are not its own (docs/security.md).
 *
 * Not here: encoding messages (protocol/msg.h), sealing (crypto/seal.h),
 * picking peers or retrying with a new attempt (the node does that).
 */
#ifndef SOTTO_SECAGG_ROUND_H
#define SOTTO_SECAGG_ROUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/codec.h"
#include "protocol/msg.h"

struct identity;
struct round;

/* One message to send: to the member at index `to` of the round. */
struct round_out {
	uint8_t to;
	struct msg msg; /* byte strings borrow round storage: see round_outbox */
};

/*
 * Caller-provided outbox. Every call that takes one appends at most
 * ROUND_OUTBOX_MIN messages (cap - n must be at least that: one call can
 * drop late members, broadcast the next phase and, if its own part fails,
 * abort, each to up to k - 1 members; on the scatter path, the unmask
 * answer with k - 1 PARTs, or SEEDS to k - 1 members then our part's sum
 * to k - 1 and CHECKED: at most 3k - 3 = 93 of 96); the caller sends
 * them and resets n to 0. Byte strings inside the messages point into the
 * round and stay valid until the next call on that round or round_free.
 */
#define ROUND_OUTBOX_MIN (3 * MSG_MAX_MEMBERS)
struct round_outbox {
	struct round_out *out;
	size_t cap;
	size_t n;
};

enum round_status {
	ROUND_RUNNING = 0,
	ROUND_DONE = 1,    /* a result is available: apply it */
	ROUND_ABORTED = 2, /* keep your own model */
};

/* What a member contributes. x is copied (the round keeps a snapshot). */
struct round_input {
	const float *x;    /* codec dim floats */
	float rho;         /* push-sum weight relative to the codec's unit (CODEC_F_WEIGHT) */
	uint64_t rng_seed; /* private seed of stochastic rounding (from the OS) */
	/*
	 * x (with rho) is the last result this member applied, unchanged: the
	 * members of that round know it. Said in the signed keys; a member whose
	 * input is not known then refuses sums that would leave it nearly alone
	 * (round_min_fresh).
	 */
	bool known;
};

/* The initiator's choices for a new round. */
struct round_plan {
	uint64_t round_id; /* random, nonzero */
	uint32_t attempt;  /* 0, then +1 for each retry of the same id */
	uint8_t k;         /* members including the initiator, 3..MSG_MAX_MEMBERS */
	uint8_t t;         /* threshold, round_min_threshold(k)..k */
	const uint8_t (*members)[MSG_KEY_BYTES]; /* identity keys; [0] is ours */
	const struct codec_params *codec;        /* its k must equal k */
	uint32_t phase_timeout_ms;               /* 1..3600000 */
	uint64_t deadline_unix_ms;               /* informative, for the INVITE */
	const struct msg_model *model;           /* for the INVITE; NULL: all zero */
	uint8_t path;                            /* MSG_PATH_* */
	uint8_t lr_kind, lr_rank;                /* the INVITE's low-rank fields (msg.h) */
	uint64_t lr_ref;
};

/* Smallest threshold this implementation accepts for k members. */
uint8_t round_min_threshold(uint8_t k);
/*
 * Largest coalition (a dishonest initiator and members, or curious members
 * pooling what they saw) against which a counted sum is all anyone learns
 * of an honest member's input, and that sum holds at least two inputs
 * outside the coalition: min(t - 2, 2t - k - 1) (docs/security.md).
 */
uint8_t round_max_dishonest(uint8_t k, uint8_t t);
/* Fewest fresh (not known) inputs a sum holding any must count: that + 2. */
uint8_t round_min_fresh(uint8_t k, uint8_t t);

/*
 * Starts a round as initiator: sends INVITE to members 1..k-1. The identity
 * is borrowed for the round's life. Returns 0 and *out, or -EINVAL (bad
 * plan or input), -ENOMEM. On error nothing was sent.
 */
int round_initiate(struct round **out, const struct identity *id, const struct round_plan *plan,
                   const struct round_input *in, uint64_t now_ms, struct round_outbox *ob)
        __attribute__((warn_unused_result));

/*
 * Answers an INVITE that came from the peer with identity key from_pk (as
 * authenticated by the transport). If the invitation is acceptable, returns
 * 0 and *out (ACCEPT queued). Otherwise returns -EINVAL (or -ENOMEM) with a
 * DECLINE queued when possible and *out NULL. A busy node should not call
 * this and should send its own DECLINE (round_decline).
 */
int round_join(struct round **out, const struct identity *id, const uint8_t from_pk[MSG_KEY_BYTES],
               const struct msg *invite, const struct round_input *in, uint64_t now_ms,
               struct round_outbox *ob) __attribute__((warn_unused_result));
/*
 * Queues a DECLINE for an INVITE, addressed to index 0. busy_ms: how long
 * this node expects to stay busy (0: unknown), so that the initiator does
 * not invite it again before then.
 */
void round_decline(const struct msg *invite, enum msg_reason reason, uint32_t busy_ms,
                   struct round_outbox *ob);
/* The same with a reason text for the initiator's log (printable ASCII, cut to fit). */
void round_decline_why(const struct msg *invite, enum msg_reason reason, uint32_t busy_ms,
                       const char *text, struct round_outbox *ob);

/*
 * A message of this round from the peer with identity key from_pk. Messages
 * of other rounds or attempts, from non-members, or out of phase are
 * ignored (0); malformed or failing a check they may drop the sender or
 * abort the round, as the protocol says. Returns 0 or -ENOMEM.
 */
int round_on_msg(struct round *r, const uint8_t from_pk[MSG_KEY_BYTES], const struct msg *m,
                 uint64_t now_ms, struct round_outbox *ob) __attribute__((warn_unused_result));

/* Time passes: phase deadlines fire. Returns 0 or -ENOMEM. */
int round_on_tick(struct round *r, uint64_t now_ms, struct round_outbox *ob)
        __attribute__((warn_unused_result));

/*
 * The transport lost its connection to this member (the process died or the
 * network dropped). An initiator stops waiting for it: the current phase
 * ends as soon as everyone else has answered, exactly as at the phase
 * deadline (dropped, or the round aborts below t), except the CHECK phase,
 * which still waits for its deadline; any later message from the member
 * clears the mark. A member whose initiator is lost aborts and sends ABORT,
 * unless it only waits for COMMIT. Returns 0 or -EINVAL.
 */
int round_on_peer_lost(struct round *r, const uint8_t pk[MSG_KEY_BYTES], uint64_t now_ms,
                       struct round_outbox *ob) __attribute__((warn_unused_result));

enum round_status round_status(const struct round *r);
/* Why it aborted (enum msg_reason), meaningful when ROUND_ABORTED. */
int round_abort_reason(const struct round *r);
/* The earliest deadline still pending (for the caller's timer); 0 if none. */
uint64_t round_next_deadline(const struct round *r);
/* Ids of this round. */
uint64_t round_id(const struct round *r);
uint32_t round_attempt(const struct round *r);
bool round_is_initiator(const struct round *r);

/* The codec parameters of the round. */
const struct codec_params *round_codec(const struct round *r);
/*
 * Statistics of this member's decode of the RESULT (spread against its own
 * model, per segment), once it decoded and verified it; NULL before, or if
 * the decode failed.
 */
const struct codec_stats *round_decode_stats(const struct round *r);

/*
 * The result of a ROUND_DONE round, as this member decoded and verified it
 * before it said CHECKED (decoded once): the average into avg (codec dim
 * floats; coordinates the codec does not average hold this member's
 * snapshot), the total weight and the number of counted members. A modular
 * segment decodes against the snapshot this member contributed. Returns 0 or
 * -EAGAIN (not done, or the result was taken).
 */
int round_result(const struct round *r, float *avg, float *rho_sum, uint32_t *members)
        __attribute__((warn_unused_result));
/*
 * The same, without a copy: hands over the malloc'd average and the snapshot
 * this member contributed (the caller frees both; the round no longer has
 * them). 0 or -EAGAIN.
 */
int round_take_result(struct round *r, float **avg, float **snapshot, float *rho_sum,
                      uint32_t *members) __attribute__((warn_unused_result));
/* The snapshot this member contributed (codec dim floats), or NULL once taken. */
const float *round_snapshot(const struct round *r);
/* The ring sum of the counted inputs (codec_ring_len elements), or NULL. */
const uint32_t *round_result_ring(const struct round *r);
/* This member's own encoded input before masking (for tests), or NULL. */
const uint32_t *round_input_ring(const struct round *r);
/* The members counted in the result, ascending indexes; returns how many. */
size_t round_counted(const struct round *r, uint8_t out[MSG_MAX_MEMBERS]);

/*
 * For the transport's round keys (crypto/seal.h seal_round_set): once this
 * member knows the round's roster (from KEYS on, until its part ends), its
 * own ephemeral share key pair into *mine (the caller wipes it after use)
 * and, for every other roster member, its index and signed share public key.
 * Returns how many members were written; 0 before the roster is known.
 */
struct seal_eph;
size_t round_transport_keys(const struct round *r, struct seal_eph *mine,
                            uint8_t idx[MSG_MAX_MEMBERS], uint8_t pks[MSG_MAX_MEMBERS][32]);

/* Wipes the round's secrets and frees it. Accepts NULL. */
void round_free(struct round *r);

#endif
