/*
 * codec_plan.h: how an initiator chooses the public codec parameters of a
 * round from its own model, what it learnt from earlier rounds, and the
 * [Gossip] settings: per-layer quanta, value bits and ring widths, the
 * shared subset, the push-sum weight and the checksum. Everything chosen
 * here is sent in the INVITE and is public.
 *
 * Codec = fixed and float32: exact segments, one clip per layer (a power of
 * two above twice the largest |rho x|). Codec = modular (docs/codec.md):
 * after WarmupRounds exact rounds, each layer goes into a ring of Width bits
 * decoded against the member's own model, with a quantum that tracks the
 * spread between group members this node saw in earlier decodes, so the
 * sum's distance to every member's prediction stays near a quarter of the
 * ring; a wrap (caught by the checksum) doubles the spread estimate and, until
 * the next decode, keeps each modular layer's quantum at least twice the one
 * that wrapped, so a plan made after a wrap is always wider than the one that
 * wrapped (a spread estimate of 0 doubles to 0). A layer whose spread would
 * need a quantum over CODEC_PLAN_MAX_COARSE times the exact codec's stays
 * exact for that round, so wraps in a row end within a few doublings.
 *
 * Not here: the codec itself (protocol/codec.h), the round (node/round.h).
 */
#ifndef SOTTO_NODE_CODEC_PLAN_H
#define SOTTO_NODE_CODEC_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "learn/model.h"

struct codec_params;
struct codec_stats;
struct config;

#define CODEC_PLAN_RHO_QUANTUM (1.0f / 4096.0f)
#define CODEC_PLAN_RHO_BITS    20 /* rho up to (2^19 - 1) / 4096 = 128 */
/* A modular layer's quantum is at most this times the exact codec's (Bits). */
#define CODEC_PLAN_MAX_COARSE 2.0
/*
 * The same with error feedback, whose rounding noise stays bounded however
 * coarse the quantum: a narrow ring can then take the heavy-tailed spread.
 */
#define CODEC_PLAN_MAX_COARSE_EF 4.0
/* Target of |sum - prediction| as a fraction of half the ring (modular). */
#define CODEC_PLAN_USE 0.5

/* What a node learnt from its decodes, for its next plans (caller's storage). */
/* Feature statistics: the clip's factor beyond a model's (see codec_plan.c). */
#define CODEC_PLAN_STATS_MARGIN 1024.0f

struct codec_plan {
	uint32_t n_segs;
	uint64_t observed;             /* decodes seen */
	uint64_t wraps;                /* wraps reported (rounds not applied) */
	float dev[MODEL_MAX_SEGMENTS]; /* per model segment: spread estimate, value units */
	/*
	 * Per model segment: the smallest quantum the next plans may use (at
	 * least twice the quantum that last wrapped), value units; 0: none. The
	 * next decode (a measured spread) clears it.
	 */
	float min_q[MODEL_MAX_SEGMENTS];
};

/* Starts with no observations (the first rounds are exact warm-up rounds). */
void codec_plan_init(struct codec_plan *pl);

/* The fraction of large layers averaged per round: [Gossip] Keep, in (0, 1]. */
double codec_plan_keep(const struct config *cfg);

/*
 * Fills cp for a round of k members from the initiator's parameters x
 * (m->n_params floats, laid out as m's segments), its push-sum weight rho,
 * what pl learnt (may be NULL: as if nothing yet) and the config.
 * 0 or -EINVAL.
 */
int codec_plan_make(struct codec_params *cp, const struct codec_plan *pl, const struct model *m,
                    const float *x, double rho, uint8_t k, const struct config *cfg)
        __attribute__((warn_unused_result));

/*
 * Records a decode of a round with params cp: st from codec_decode_sum with
 * this node's reference (its max_dev), or wrapped = true when the round was
 * not applied because some member's decode wrapped (st may then be NULL).
 * After a wrap, every modular layer of the next plan has a quantum at least
 * twice cp's for it (or is exact), whatever the spread estimate was.
 */
void codec_plan_observe(struct codec_plan *pl, const struct codec_params *cp,
                        const struct codec_stats *st, bool wrapped);

/*
 * Makes every segment of an exact plan centred (CODEC_SEG_CENTERED) in a
 * ring of at most `width` bits, with the checksum on: for vectors whose
 * members' values cancel in the sum (a low-rank sketch), so the sum needs
 * fewer bits than the no-overflow rule reserves. Same quanta, so the same
 * rounding noise; a sum that leaves the ring aborts the round (wrap).
 * Returns 0 or -EINVAL.
 */
int codec_plan_center(struct codec_params *cp, unsigned width) __attribute__((warn_unused_result));

/*
 * Whether an INVITE's codec describes exactly this node's model (same
 * dimension and segment layout). Members check it before joining.
 */
bool codec_plan_fits(const struct codec_params *cp, const struct model *m);

/*
 * Error feedback ([Gossip] ErrorFeedback, docs/codec.md): a member sends
 * x + e instead of its model x, where e is what the levels of its last
 * applied round left out (the rounding residual, under one level per
 * coordinate), and keeps the new residual once the round is applied. Over
 * the group, sum(x) + sum(e) is then what rounds preserve, so a coarse
 * quantum's rounding noise stays bounded instead of adding up round after
 * round. A round whose input is known to the group (the last result,
 * unchanged) goes without: adding e would let the group read it.
 */
struct codec_ef {
	size_t n;        /* floats of the vectors below; 0 until the first round */
	float *e;        /* the residual carried to the next input */
	float *pending;  /* the residual of the round in progress */
	float *x;        /* the model under that round's input x + e */
	uint32_t *ring;  /* scratch: the re-encoded input */
	size_t ring_cap; /* elements of ring */
	bool active;     /* the round in progress sent x + e */
};

/*
 * Before a round that uses feedback: x (n floats, the snapshot the round
 * will take as input) becomes x + e, and the residual of this input under
 * cp is computed by encoding it exactly as the round will (same rho and
 * rng_seed: codec_encode_residual). Returns 0, or -ENOMEM / -EINVAL with x
 * unchanged and no feedback for this round.
 */
int codec_ef_input(struct codec_ef *ef, float *x, size_t n, const struct codec_params *cp,
                   float rho, uint64_t rng_seed) __attribute__((warn_unused_result));
/*
 * The round is applied: avg and snap (cp->dim floats, as the round handed
 * them over, snap = x + e) become what the model must apply (x += avg - snap)
 * for the model x: snap = x, and coordinates the round did not average get
 * avg = x. The pending residual becomes the carried one. No-op if the round
 * did not use feedback.
 */
void codec_ef_commit(struct codec_ef *ef, const struct codec_params *cp, float *avg, float *snap);
/* The round ends without being applied: the carried residual stays. */
void codec_ef_drop(struct codec_ef *ef);
void codec_ef_free(struct codec_ef *ef);

/*
 * Whether cp has the shape stats_plan gives a statistics round: weight
 * only (no subsample, dither or checksum), every segment exact with the
 * most value bits a 32-bit ring holds for cp->k, a power-of-two clip, the
 * fine weight quantum. A member refuses other shapes for its moments, so
 * that an initiator cannot choose clips that probe them (node/gossip.c).
 */
bool codec_plan_stats_shape(const struct codec_params *cp);

#endif
