/*
 * codec_msg.c: the public codec parameters (protocol/codec.h) as they travel
 * in an INVITE (protocol/msg.h), both ways. Every member must compute the
 * same parameters from the message, so from_msg refuses anything the codec
 * would round differently: a quantum that is not exactly a float, a clip
 * other than the one the value bits imply.
 *
 * Not here: choosing the parameters (node/codec_plan.c), the codec itself.
 */
#include "protocol/codec_msg.h"

#include <errno.h>
#include <math.h>
#include <string.h>

int codec_to_msg(struct msg_codec *m, const struct codec_params *p)
{
	if (codec_params_check(p) != 0 || p->nseg > MSG_MAX_SEGMENTS)
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	m->id = p->id;
	m->version = p->version;
	m->k = p->k;
	m->flags = p->flags;
	m->keep_ppm = p->keep_ppm;
	m->sample_seed = p->sample_seed;
	m->dither_seed = p->dither_seed;
	m->weight_bits = p->weight_bits;
	m->weight_width = p->weight_width;
	m->weight_scale = p->weight_quantum;
	m->n_segments = (uint16_t)p->nseg;
	for (uint32_t i = 0; i < p->nseg; i++) {
		const struct codec_segment *s = &p->seg[i];
		double lmax = (double)((1u << (s->bits - 1)) - 1u);

		m->segments[i].length = s->length;
		m->segments[i].bits = s->bits;
		m->segments[i].width = s->width;
		m->segments[i].mode = s->mode;
		m->segments[i].scale = s->quantum;
		m->segments[i].clip = lmax * s->quantum;
	}
	return 0;
}

int codec_from_msg(struct codec_params *p, const struct msg_codec *m)
{
	uint64_t off = 0;

	memset(p, 0, sizeof(*p));
	if (m->n_segments < 1 || m->n_segments > CODEC_MAX_SEGMENTS || m->flags > UINT16_MAX)
		return -EINVAL;
	if ((double)(float)m->weight_scale != m->weight_scale)
		return -EINVAL;
	p->id = m->id;
	p->version = m->version;
	p->k = m->k;
	p->flags = (uint16_t)m->flags;
	p->keep_ppm = m->keep_ppm;
	p->sample_seed = m->sample_seed;
	p->dither_seed = m->dither_seed;
	p->weight_bits = m->weight_bits;
	p->weight_width = m->weight_width;
	p->weight_quantum = (float)m->weight_scale;
	p->nseg = m->n_segments;
	for (uint32_t i = 0; i < p->nseg; i++) {
		const struct msg_segment *ms = &m->segments[i];
		struct codec_segment *s = &p->seg[i];
		double lmax;

		/* The quantum must be a float exactly, and the clip must be the
		 * one the codec implies, so every member computes the same. */
		if (ms->bits < 2 || ms->bits > CODEC_MAX_BITS || ms->width > CODEC_MAX_WIDTH ||
		    !isfinite(ms->scale) || (double)(float)ms->scale != ms->scale ||
		    off + ms->length > CODEC_MAX_DIM)
			return -EINVAL;
		lmax = (double)((1u << (ms->bits - 1)) - 1u);
		if (!(fabs(ms->clip - lmax * ms->scale) <= 1e-6 * fabs(ms->clip)))
			return -EINVAL;
		s->offset = (uint32_t)off;
		s->length = ms->length;
		s->bits = ms->bits;
		s->width = ms->width;
		s->mode = ms->mode;
		s->quantum = (float)ms->scale;
		off += ms->length;
	}
	p->dim = (uint32_t)off;
	return codec_params_check(p);
}
