/*
 * lowrank_chain.h: a node's side of low-rank averaging ([Gossip] Rank,
 * docs/codec.md "Low-rank averaging"). A chain is LR_CHAIN_ROUNDS ordinary
 * secure rounds of the same members, started by one initiator back to
 * back: BASIS, then (SKETCH, PROJECT) pairs, each pair one more power step
 * that starts from the last basis:
 *
 *   BASIS    each large matrix W goes as W Q0, Q0 a public random basis
 *            (seed in the INVITE); small layers go whole. Applied:
 *            W += (mean(W Q0) - W Q0) Q0^T, small layers take the mean.
 *   SKETCH   W_b^T (W_b Q0 - mean(W_b Q0)) of the BASIS snapshot W_b: the
 *            sum is C Q0, C the group's disagreement covariance. Not
 *            applied: every member takes Q = orth(C Q0) from it.
 *   PROJECT  as BASIS, on Q: the directions the members differ most in.
 *   SKETCH   as above, from the PROJECT snapshot and Q: a warm power step.
 *   PROJECT  on the better Q.
 *
 * Each round is all or nothing on its own; a chain that breaks (an abort,
 * a member gone, another round in between) just ends, and what its rounds
 * applied stays applied. Between its rounds a member keeps the chain's
 * state (the BASIS snapshot, then Q) and declines other invitations.
 *
 * Not here: the algebra (protocol/lowrank.h), the rounds (node/gossip.c).
 */
#ifndef SOTTO_NODE_LOWRANK_CHAIN_H
#define SOTTO_NODE_LOWRANK_CHAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "learn/model.h"
#include "protocol/msg.h"

struct lr_chain;

/* Rounds of a chain: basis, sketch, project, sketch, project. */
#define LR_CHAIN_ROUNDS 5

/*
 * For a model and rank r: 0 with *out NULL when no layer is large enough
 * for it to pay (low-rank averaging then stays off), -ENOMEM, -EINVAL.
 * A layer is projected when it has 2 or more dimensions (the first is m,
 * the rest n), at least 4,096 values and r (m + n) < m n.
 */
int lr_chain_alloc(struct lr_chain **out, const struct model *m, unsigned rank)
        __attribute__((warn_unused_result));
void lr_chain_free(struct lr_chain *c);
unsigned lr_chain_rank(const struct lr_chain *c);

/* The layout of a kind's round vector, as a model whose segments the codec plans. */
const struct model *lr_chain_view(const struct lr_chain *c, uint8_t kind);

/*
 * Whether this node may take part in round `kind` continuing chain round
 * `ref` with exactly these members (in this order): BASIS always; SKETCH
 * (after a BASIS or PROJECT) and PROJECT (after a SKETCH) only right after
 * that chain's previous round.
 */
bool lr_chain_follows(const struct lr_chain *c, uint8_t kind, uint64_t ref,
                      const uint8_t (*members)[MSG_KEY_BYTES], uint8_t k, uint64_t now);

/* A chain waits for its next round (this node should not join others until then). */
bool lr_chain_waiting(const struct lr_chain *c, uint64_t now);

/* The id of the chain's last round done (0: no chain), and its members in order. */
uint64_t lr_chain_last(const struct lr_chain *c, const uint8_t (**members)[MSG_KEY_BYTES],
                       uint8_t *k);

/*
 * The input of a round of `kind` (BASIS: ref is the basis seed), as a new
 * vector of the kind's view in *out. x is the model snapshot (n_params
 * floats; unused by SKETCH, may be NULL). A BASIS drops any earlier chain.
 * 0, -ENOMEM, or -EINVAL (the chain state does not allow that kind).
 */
int lr_chain_input(struct lr_chain *c, uint8_t kind, uint64_t ref, const float *x, float **out)
        __attribute__((warn_unused_result));

/*
 * Round `id` of the kind this node last gave an input for is done: avg is
 * the group's average and snap this node's input (view vectors). BASIS and
 * PROJECT: *avg_full and *snap_full get new n_params vectors to apply as
 * the model's delta (x += avg_full - snap_full); SKETCH: both NULL, the
 * chain keeps the basis for PROJECT. With `all` (every one of the k
 * members was counted) the chain may go on with them for ttl_ms; else it
 * ends here. 0, -ENOMEM, -EINVAL (-EDOM: a SKETCH sum without a basis in
 * it, the chain ends).
 */
int lr_chain_done(struct lr_chain *c, uint64_t id, const uint8_t (*members)[MSG_KEY_BYTES],
                  uint8_t k, bool all, const float *avg, const float *snap, float **avg_full,
                  float **snap_full, uint64_t now, uint64_t ttl_ms)
        __attribute__((warn_unused_result));

/* Ends the chain (its round aborted, or a round not of it): nothing to continue. */
void lr_chain_drop(struct lr_chain *c);

#endif
