/*
 * codec_plan.h: how an initiator chooses the public codec parameters of a
 * round from its own model and the [Gossip] settings: per-layer clips,
 * value bits and ring widths, the push-sum weight segment. Everything
 * chosen here is sent in the INVITE and is public.
 *
 * Not here: the codec itself (protocol/codec.h), the round (node/round.h).
 */
#ifndef SOTTO_NODE_CODEC_PLAN_H
#define SOTTO_NODE_CODEC_PLAN_H

#include <stdbool.h>
#include <stdint.h>

struct codec_params;
struct config;
struct model;

#define CODEC_PLAN_RHO_QUANTUM (1.0f / 4096.0f)
#define CODEC_PLAN_RHO_BITS 20 /* rho up to (2^19 - 1) / 4096 = 128 */

/*
 * Fills cp for a round of k members from the initiator's parameters x
 * (m->n_params floats, laid out as m's segments), its push-sum weight rho
 * and the config. 0 or -EINVAL.
 */
int codec_plan_make(struct codec_params *cp, const struct model *m, const float *x, double rho,
		    uint8_t k, const struct config *cfg) __attribute__((warn_unused_result));

/*
 * Whether an INVITE's codec describes exactly this node's model (same
 * dimension and segment layout). Members check it before joining.
 */
bool codec_plan_fits(const struct codec_params *cp, const struct model *m);

#endif
