/*
 * codec_plan.c: public codec parameters for a round (see codec_plan.h).
 *
 * Exact codecs (fixed, float32): one exact segment per layer tensor, a clip
 * of twice the initiator's largest |rho x| in the layer rounded up to a
 * power of two (that is all it reveals), [Gossip] Bits of value (float32: as
 * many as a 32-bit ring allows).
 *
 * Modular codec: the same segments in a ring of Width bits. A member
 * decodes the sum S (in levels) as the representative nearest its own
 * prediction P = sum(rho) * x_me / quantum, which is right while
 * |S - P| < 2^(Width-1). |S - P| = sum(rho) |average - x_me| / quantum, so
 * the quantum is set from the spread |average - x_me| this node saw in its
 * last decodes (codec_stats.max_dev), aiming at CODEC_PLAN_USE of half the
 * ring. The quantum is what it reveals beyond the exact codec's clip: a
 * power of two near the spread of groups this node took part in. Value bits
 * are only what the clip needs (they never go on the wire). Every round
 * carries the checksum, so a member whose decode wrapped knows it and the
 * round is not applied by anyone (node/round.c).
 */
#include "node/codec_plan.h"

#include "config/config.h"
#include "learn/model.h"
#include "protocol/codec.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void codec_plan_init(struct codec_plan *pl)
{
	memset(pl, 0, sizeof(*pl));
}

/* Power-of-two clip above twice the largest |rho x| of segment s. */
static float clip_of(const struct model *m, size_t s, const float *x, double rho)
{
	float mx = 0;

	for (size_t i = 0; i < m->segs[s].length; i++)
		mx = MAX(mx, fabsf(x[m->segs[s].offset + i]));
	mx = MAX(mx * (float)rho * 2.0f, 1e-3f);
	return exp2f(ceilf(log2f(mx)));
}

/*
 * Feature statistics (Standardize = federated): every segment exact with as
 * many value bits as a 32-bit ring holds for k, whatever [Gossip] Codec
 * says, and a clip CODEC_PLAN_STATS_MARGIN times wider than a model's, so
 * that members whose moments are larger than the initiator's (other data,
 * more rows) still fit: about 2^-19 of the clip per round of rounding
 * noise, unbiased. All coordinates are kept.
 */
static int stats_plan(struct codec_params *cp, const struct model *m, const float *x, double rho,
                      uint8_t k)
{
	uint32_t lengths[MODEL_MAX_SEGMENTS];
	float clips[MODEL_MAX_SEGMENTS];
	unsigned bits = MIN(31u, 32 - codec_log2_ceil(k));
	int rc;

	float hmax[2] = {0, 0};
	size_t half = m->n_segs / 2; /* segments of the means, then of the second moments */

	for (size_t s = 0; s < m->n_segs; s++) {
		float mx = 0;
		for (size_t i = 0; i < m->segs[s].length; i++)
			mx = MAX(mx, fabsf(x[m->segs[s].offset + i]));
		clips[s] = mx;
		hmax[s >= half] = MAX(hmax[s >= half], mx);
		lengths[s] = (uint32_t)m->segs[s].length;
	}
	for (size_t s = 0; s < m->n_segs; s++) {
		/*
		 * A block that is all zeros here (a pixel this site never sees
		 * lit) says nothing of the others' values there: it gets 2^-10 of
		 * the largest block of its half, not the floor, so that sites that
		 * do see it fit.
		 */
		float base = clips[s] > 0 ? clips[s] : hmax[s >= half] * 0x1p-10f;
		float c = MAX(base * (float)rho * 2.0f, 1e-3f);
		clips[s] = exp2f(ceilf(log2f(c))) * CODEC_PLAN_STATS_MARGIN;
	}
	rc = codec_params_init(cp, k, lengths, clips, m->n_segs, (uint8_t)bits);
	/*
	 * The weight as finely as the ring holds it (2^-22 for groups of 4):
	 * a site adds its rows in parts as small as 1/128 of its weight, and
	 * a weight off by a model's quantum (1/4096) would weigh its rows wrong.
	 */
	if (rc == 0)
		rc = codec_params_set_weight(cp, (uint8_t)bits, ldexpf(128.0f, -(int)(bits - 1)));
	return rc != 0 ? rc : codec_params_check(cp);
}

bool codec_plan_stats_shape(const struct codec_params *cp)
{
	unsigned bits = MIN(31u, 32 - codec_log2_ceil(cp->k));
	int e;

	if (cp->flags != CODEC_F_WEIGHT || cp->weight_bits != bits ||
	    cp->weight_quantum != ldexpf(128.0f, -(int)(bits - 1)))
		return false;
	for (uint32_t s = 0; s < cp->nseg; s++) {
		const struct codec_segment *sg = &cp->seg[s];
		float clip = (float)(ldexp(1.0, (int)bits - 1) - 1) * sg->quantum;
		if (sg->mode != CODEC_SEG_EXACT || sg->bits != bits ||
		    frexpf(clip * (1.0f + 0x1p-20f), &e) > 0.5f + 0x1p-18f)
			return false;
	}
	return true;
}

static bool modular_ready(const struct codec_plan *pl, const struct model *m,
                          const struct config *cfg)
{
	return cfg->gossip.codec == CONFIG_CODEC_MODULAR && pl != NULL && pl->n_segs == m->n_segs &&
	       pl->observed >= (uint64_t)cfg->gossip.warmup_rounds && pl->observed > 0;
}

double codec_plan_keep(const struct config *cfg)
{
	return cfg->gossip.keep > 0 ? MIN(cfg->gossip.keep, 1.0) : 1.0;
}

int codec_plan_make(struct codec_params *cp, const struct codec_plan *pl, const struct model *m,
                    const float *x, double rho, uint8_t k, const struct config *cfg)
{
	uint32_t lengths[MODEL_MAX_SEGMENTS];
	float clips[MODEL_MAX_SEGMENTS];
	unsigned extra = codec_log2_ceil(k);
	double keep = codec_plan_keep(cfg);
	unsigned bits;
	int rc;

	if (m->n_segs > MODEL_MAX_SEGMENTS || m->n_segs < 1 || extra >= 30)
		return -EINVAL;
	bits = cfg->gossip.codec == CONFIG_CODEC_FLOAT32 ? 32 - extra : (unsigned)cfg->gossip.bits;
	bits = MIN(bits, MIN(31u, 32 - extra));
	if (m->spec.type == MODEL_STATS)
		return stats_plan(cp, m, x, rho, k);
	for (size_t s = 0; s < m->n_segs; s++) {
		clips[s] = clip_of(m, s, x, rho);
		lengths[s] = (uint32_t)m->segs[s].length;
	}
	rc = codec_params_init(cp, k, lengths, clips, m->n_segs, (uint8_t)bits);
	if (rc == 0)
		rc = codec_params_set_weight(cp, CODEC_PLAN_RHO_BITS, CODEC_PLAN_RHO_QUANTUM);
	if (rc != 0)
		return rc;
	if (keep < 1.0) {
		cp->flags |= CODEC_F_SUBSAMPLE | CODEC_F_KEEP_SMALL;
		cp->keep_ppm = (uint32_t)MAX(1.0, floor(keep * CODEC_KEEP_ALL + 0.5));
		randombytes_buf(&cp->sample_seed, sizeof(cp->sample_seed));
	}
	if (cfg->gossip.codec == CONFIG_CODEC_MODULAR) {
		cp->flags |= CODEC_F_CHECK;
		randombytes_buf(&cp->dither_seed, sizeof(cp->dither_seed));
	}
	if (modular_ready(pl, m, cfg)) {
		/* The group's total weight is about k times ours (push-sum weights
		 * converge to their mean). */
		double wsum = (double)k * rho;
		double half = ldexp(1.0, cfg->gossip.width - 1);
		double coarse = cfg->gossip.error_feedback ? CODEC_PLAN_MAX_COARSE_EF
		                                           : CODEC_PLAN_MAX_COARSE;

		for (size_t s = 0; s < m->n_segs; s++) {
			struct codec_segment *sg = &cp->seg[s];
			double clip = (double)clips[s];
			double q = (double)pl->dev[s] * wsum / (CODEC_PLAN_USE * half);
			unsigned b = 2;

			/* Never finer than 2^-20 of the clip (bits <= 22), nor than
			 * twice a quantum that wrapped since the last decode (the
			 * spread estimate alone may not widen: 0 doubles to 0, and
			 * an estimate under the 2^-20 floor may double and stay
			 * under it), rounded to a power of two so the plan reveals
			 * little. */
			q = MAX(q, clip * 0x1p-20);
			q = MAX(q, (double)pl->min_q[s]);
			q = exp2(ceil(log2(q)));
			/* The fallback: a layer whose members are too far apart for
			 * the ring at a quantum at most CODEC_PLAN_MAX_COARSE times the
			 * exact codec's (CODEC_PLAN_MAX_COARSE_EF with error feedback)
			 * stays exact this round (no wrap possible, the exact codec's
			 * precision): rounding noise never runs away. */
			if (q > coarse * (double)sg->quantum)
				continue;
			while (b < 31 && ldexp(1.0, (int)b - 1) - 1 < clip / q)
				b++;
			sg->bits = (uint8_t)b;
			sg->quantum = (float)q;
			sg->mode = CODEC_SEG_MODULAR;
			sg->width = (uint8_t)cfg->gossip.width;
		}
	}
	return codec_params_check(cp);
}

void codec_plan_observe(struct codec_plan *pl, const struct codec_params *cp,
                        const struct codec_stats *st, bool wrapped)
{
	if (pl == NULL || cp->nseg > MODEL_MAX_SEGMENTS)
		return;
	if (pl->n_segs != cp->nseg) {
		codec_plan_init(pl);
		pl->n_segs = cp->nseg;
	}
	if (wrapped) {
		/* Somebody's prediction was off by more than half the ring:
		 * assume the spread was twice what we thought, and never plan
		 * that layer's quantum again as fine as the one that wrapped
		 * until a decode measures the spread (the initiator redoes the
		 * round at once, so the redo must differ). A layer that was
		 * exact in that round cannot have wrapped: its floor stays. */
		pl->wraps++;
		for (size_t s = 0; s < pl->n_segs; s++) {
			pl->dev[s] *= 2;
			if (cp->seg[s].mode == CODEC_SEG_MODULAR)
				pl->min_q[s] = MAX(pl->min_q[s], 2 * cp->seg[s].quantum);
		}
		return;
	}
	if (st == NULL)
		return;
	for (size_t s = 0; s < pl->n_segs; s++) {
		float obs = st->max_dev[s];

		/* A measured spread replaces the floor of the last wrap; up at
		 * once, down slowly. */
		pl->min_q[s] = 0;
		if (pl->observed == 0 || obs > pl->dev[s])
			pl->dev[s] = obs;
		else
			pl->dev[s] = 0.8f * pl->dev[s] + 0.2f * obs;
	}
	pl->observed++;
}

int codec_plan_center(struct codec_params *cp, unsigned width)
{
	for (uint32_t s = 0; s < cp->nseg; s++) {
		struct codec_segment *sg = &cp->seg[s];

		if (sg->mode != CODEC_SEG_EXACT)
			return -EINVAL;
		sg->mode = CODEC_SEG_CENTERED;
		sg->width = (uint8_t)MAX(1u, MIN(width, (unsigned)sg->width));
	}
	if ((cp->flags & CODEC_F_CHECK) == 0) {
		cp->flags |= CODEC_F_CHECK;
		randombytes_buf(&cp->dither_seed, sizeof(cp->dither_seed));
	}
	return codec_params_check(cp);
}

bool codec_plan_fits(const struct codec_params *cp, const struct model *m)
{
	if (cp->dim != m->n_params || cp->nseg != m->n_segs)
		return false;
	for (size_t s = 0; s < m->n_segs; s++) {
		if (cp->seg[s].offset != m->segs[s].offset ||
		    cp->seg[s].length != m->segs[s].length)
			return false;
	}
	return true;
}

/* --- error feedback ------------------------------------------------------- */

int codec_ef_input(struct codec_ef *ef, float *x, size_t n, const struct codec_params *cp,
                   float rho, uint64_t seed)
{
	size_t rl = codec_ring_len(cp);
	struct rng rng;
	int rc;

	ef->active = false;
	if (n != cp->dim || n == 0)
		return -EINVAL;
	if (ef->n != n) {
		codec_ef_free(ef);
		ef->e = calloc(n, sizeof(float));
		ef->pending = malloc(n * sizeof(float));
		ef->x = malloc(n * sizeof(float));
		if (ef->e == NULL || ef->pending == NULL || ef->x == NULL) {
			codec_ef_free(ef);
			return -ENOMEM;
		}
		ef->n = n;
	}
	if (ef->ring_cap < rl) {
		uint32_t *r = realloc(ef->ring, rl * sizeof(uint32_t));
		if (r == NULL)
			return -ENOMEM;
		ef->ring = r;
		ef->ring_cap = rl;
	}
	memcpy(ef->x, x, n * sizeof(float));
	memcpy(ef->pending, ef->e, n * sizeof(float)); /* coordinates not averaged keep theirs */
	for (size_t i = 0; i < n; i++)
		x[i] += ef->e[i];
	rng_seed(&rng, seed);
	rc = codec_encode_residual(ef->ring, ef->pending, cp, x, rho, &rng, NULL, NULL);
	sodium_memzero(&rng, sizeof(rng));
	if (rc != 0) {
		memcpy(x, ef->x, n * sizeof(float));
		return rc;
	}
	ef->active = true;
	return 0;
}

void codec_ef_commit(struct codec_ef *ef, const struct codec_params *cp, float *avg, float *snap)
{
	float *t;

	if (!ef->active || cp->dim != ef->n)
		return;
	if (cp->flags & CODEC_F_SUBSAMPLE) {
		/* The kept coordinates, ascending (fewer than the ring's elements). */
		uint32_t *idx = ef->ring;
		size_t p = 0, kept = 0;

		for (size_t s = 0; s < cp->nseg; s++) {
			uint32_t len, width;
			codec_ring_segment(cp, s, &len, &width);
			kept += len;
		}
		codec_indices(idx, cp);
		for (uint32_t i = 0; i < cp->dim; i++) {
			if (p < kept && idx[p] == i)
				p++;
			else
				avg[i] = ef->x[i];
		}
	}
	memcpy(snap, ef->x, ef->n * sizeof(float));
	t = ef->e;
	ef->e = ef->pending;
	ef->pending = t;
	ef->active = false;
}

void codec_ef_drop(struct codec_ef *ef)
{
	ef->active = false;
}

void codec_ef_free(struct codec_ef *ef)
{
	free(ef->e);
	free(ef->pending);
	free(ef->x);
	free(ef->ring);
	memset(ef, 0, sizeof(*ef));
}
