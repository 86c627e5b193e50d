/*
 * codec_plan.c: public codec parameters for a round.
 *
 * Today: one exact fixed-point segment per layer tensor, [Gossip] Bits of
 * value (Codec = float32: as many bits as a 32-bit ring allows), a clip of
 * twice the initiator's largest |rho x| in the layer rounded up to a power
 * of two (that is all it reveals), and the push-sum weight as one more
 * exact segment.
 */
#include "node/codec_plan.h"

#include "config/config.h"
#include "learn/model.h"
#include "protocol/codec.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>

int codec_plan_make(struct codec_params *cp, const struct model *m, const float *x, double rho,
		    uint8_t k, const struct config *cfg)
{
	uint32_t lengths[MODEL_MAX_SEGMENTS];
	float clips[MODEL_MAX_SEGMENTS];
	unsigned extra = codec_log2_ceil(k);
	unsigned bits;
	int rc;

	if (m->n_segs > MODEL_MAX_SEGMENTS || extra >= 30)
		return -EINVAL;
	bits = cfg->gossip.codec == CONFIG_CODEC_FLOAT32 ? 32 - extra
							 : (unsigned)cfg->gossip.bits;
	bits = MIN(bits, MIN(31u, 32 - extra));
	for (size_t s = 0; s < m->n_segs; s++) {
		float mx = 0;
		for (size_t i = 0; i < m->segs[s].length; i++)
			mx = MAX(mx, fabsf(x[m->segs[s].offset + i]));
		mx = MAX(mx * (float)rho * 2.0f, 1e-3f);
		clips[s] = exp2f(ceilf(log2f(mx)));
		lengths[s] = (uint32_t)m->segs[s].length;
	}
	rc = codec_params_init(cp, k, lengths, clips, m->n_segs, (uint8_t)bits);
	if (rc == 0)
		rc = codec_params_set_weight(cp, CODEC_PLAN_RHO_BITS, CODEC_PLAN_RHO_QUANTUM);
	return rc;
}

bool codec_plan_fits(const struct codec_params *cp, const struct model *m)
{
	if (cp->dim != m->n_params || cp->nseg != m->n_segs)
		return false;
	for (size_t s = 0; s < m->n_segs; s++) {
		if (cp->seg[s].offset != m->segs[s].offset || cp->seg[s].length != m->segs[s].length)
			return false;
	}
	return true;
}
