/*
 * lowrank_chain.c: the state of a node's low-rank chain (lowrank_chain.h).
 */
#include "node/lowrank_chain.h"

#include "protocol/codec.h"
#include "protocol/lowrank.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct lr_seg {
	bool proj;
	uint32_t m, n;
	size_t q_off; /* of its basis in q (n * rank floats) */
	size_t v_off; /* of its block in the BASIS/PROJECT view vector */
};

struct lr_chain {
	const struct model *model;
	unsigned rank;
	struct lr_seg seg[MODEL_MAX_SEGMENTS];
	struct model proj, sketch; /* the views: layouts only */
	float *q;                  /* every projected layer's basis */
	size_t q_len;
	/* The round in progress: its kind and, for BASIS/PROJECT, our snapshot. */
	uint8_t kind; /* MSG_LR_NONE: no round of ours in progress */
	float *x;     /* n_params */
	/* The chain: the last round done and what the next one needs. */
	uint8_t step;  /* the kind of the chain's last round done; NONE: no chain */
	unsigned done; /* rounds of the chain done */
	uint64_t id, expires;
	uint8_t k;
	uint8_t members[MSG_MAX_MEMBERS][MSG_KEY_BYTES];
	float *wb; /* BASIS done: its snapshot (n_params) */
	float *dy; /* BASIS done: our W Q0 minus the group's (proj view) */
};

static void view_seg(struct model *v, const struct model_segment *src, size_t offset, size_t length)
{
	struct model_segment *d = &v->segs[v->n_segs++];

	*d = *src;
	d->offset = offset;
	d->length = length;
	if (length != src->length) {
		d->ndim = 2;
		d->shape[1] = (uint32_t)(length / d->shape[0]);
		d->shape[2] = d->shape[3] = 0;
	}
	v->n_params = offset + length;
}

int lr_chain_alloc(struct lr_chain **out, const struct model *m, unsigned rank)
{
	struct lr_chain *c;
	size_t po = 0, so = 0, qo = 0;
	bool any = false;

	*out = NULL;
	if (rank < 1 || rank > LOWRANK_MAX_RANK || m->n_segs > MODEL_MAX_SEGMENTS)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->model = m;
	c->rank = rank;
	c->proj.spec = c->sketch.spec = m->spec;
	for (size_t s = 0; s < m->n_segs; s++) {
		const struct model_segment *ms = &m->segs[s];
		struct lr_seg *ls = &c->seg[s];
		uint64_t rows = ms->ndim >= 2 ? ms->shape[0] : 0;
		uint64_t cols = rows > 0 ? ms->length / rows : 0;

		ls->v_off = po;
		if (rows > 0 && ms->length >= CODEC_SMALL_SEG && cols > rank &&
		    (uint64_t)rank * (rows + cols) < ms->length) {
			ls->proj = true;
			ls->m = (uint32_t)rows;
			ls->n = (uint32_t)cols;
			ls->q_off = qo;
			qo += (size_t)ls->n * rank;
			view_seg(&c->proj, ms, po, (size_t)ls->m * rank);
			po += (size_t)ls->m * rank;
			view_seg(&c->sketch, ms, so, (size_t)ls->n * rank);
			so += (size_t)ls->n * rank;
			any = true;
		} else {
			view_seg(&c->proj, ms, po, ms->length);
			po += ms->length;
		}
	}
	if (!any) {
		free(c);
		return 0;
	}
	c->q_len = qo;
	c->q = malloc(qo * sizeof(float));
	c->x = malloc(m->n_params * sizeof(float));
	c->wb = malloc(m->n_params * sizeof(float));
	c->dy = malloc(po * sizeof(float));
	if (c->q == NULL || c->x == NULL || c->wb == NULL || c->dy == NULL) {
		lr_chain_free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

void lr_chain_free(struct lr_chain *c)
{
	if (c == NULL)
		return;
	free(c->q);
	free(c->x);
	free(c->wb);
	free(c->dy);
	free(c);
}

unsigned lr_chain_rank(const struct lr_chain *c)
{
	return c->rank;
}

const struct model *lr_chain_view(const struct lr_chain *c, uint8_t kind)
{
	return kind == MSG_LR_SKETCH ? &c->sketch : &c->proj;
}

void lr_chain_drop(struct lr_chain *c)
{
	c->step = MSG_LR_NONE;
	c->kind = MSG_LR_NONE;
	c->done = 0;
	c->id = 0;
}

bool lr_chain_waiting(const struct lr_chain *c, uint64_t now)
{
	return c->step != MSG_LR_NONE && now < c->expires;
}

uint64_t lr_chain_last(const struct lr_chain *c, const uint8_t (**members)[MSG_KEY_BYTES],
                       uint8_t *k)
{
	*members = (const uint8_t(*)[MSG_KEY_BYTES])c->members;
	*k = c->k;
	return c->step != MSG_LR_NONE ? c->id : 0;
}

/* A sketch follows a basis or a project round, a project round a sketch. */
static bool lr_chain_next_ok(uint8_t step, uint8_t kind)
{
	if (kind == MSG_LR_SKETCH)
		return step == MSG_LR_BASIS || step == MSG_LR_PROJECT;
	return kind == MSG_LR_PROJECT && step == MSG_LR_SKETCH;
}

bool lr_chain_follows(const struct lr_chain *c, uint8_t kind, uint64_t ref,
                      const uint8_t (*members)[MSG_KEY_BYTES], uint8_t k, uint64_t now)
{
	if (kind == MSG_LR_BASIS)
		return true;
	if (!lr_chain_next_ok(c->step, kind))
		return false;
	return now < c->expires && ref == c->id && k == c->k &&
	       memcmp(members, c->members, (size_t)k * MSG_KEY_BYTES) == 0;
}

/* The BASIS/PROJECT view of x on the bases in c->q. */
static void project(const struct lr_chain *c, const float *x, float *v)
{
	const struct model *m = c->model;

	for (size_t s = 0; s < m->n_segs; s++) {
		const struct lr_seg *ls = &c->seg[s];
		const float *w = x + m->segs[s].offset;
		if (ls->proj)
			lowrank_project(v + ls->v_off, w, c->q + ls->q_off, ls->m, ls->n, c->rank);
		else
			memcpy(v + ls->v_off, w, m->segs[s].length * sizeof(float));
	}
}

int lr_chain_input(struct lr_chain *c, uint8_t kind, uint64_t ref, const float *x, float **out)
{
	const struct model *m = c->model;
	float *v;

	*out = NULL;
	if (kind == MSG_LR_BASIS) {
		lr_chain_drop(c);
		for (size_t s = 0; s < m->n_segs; s++) {
			const struct lr_seg *ls = &c->seg[s];
			/* One public basis per layer, all from the INVITE's seed. */
			if (ls->proj &&
			    lowrank_random_q(c->q + ls->q_off, ls->n, c->rank,
			                     ref ^ (0x9e3779b97f4a7c15ull * (s + 1))) != 0)
				return -EINVAL;
		}
	} else if (!lr_chain_next_ok(c->step, kind)) {
		return -EINVAL;
	}
	if (kind != MSG_LR_SKETCH && x == NULL)
		return -EINVAL;
	v = malloc(lr_chain_view(c, kind)->n_params * sizeof(float));
	if (v == NULL)
		return -ENOMEM;
	if (kind == MSG_LR_SKETCH) {
		for (size_t s = 0; s < m->n_segs; s++) {
			const struct lr_seg *ls = &c->seg[s];
			if (ls->proj)
				lowrank_sketch(v + (ls->q_off), c->wb + m->segs[s].offset,
				               c->dy + ls->v_off, ls->m, ls->n, c->rank);
		}
	} else {
		memcpy(c->x, x, m->n_params * sizeof(float));
		project(c, x, v);
	}
	c->kind = kind;
	*out = v;
	return 0;
}

/* avg_full = x with the projected layers lifted by avg - snap and the rest = avg. */
static int lift(struct lr_chain *c, const float *avg, const float *snap, float **avg_full,
                float **snap_full)
{
	const struct model *m = c->model;
	float *a = malloc(m->n_params * sizeof(float)), *x = malloc(m->n_params * sizeof(float));

	if (a == NULL || x == NULL) {
		free(a);
		free(x);
		return -ENOMEM;
	}
	memcpy(x, c->x, m->n_params * sizeof(float));
	memcpy(a, c->x, m->n_params * sizeof(float));
	for (size_t s = 0; s < m->n_segs; s++) {
		const struct lr_seg *ls = &c->seg[s];
		float *dst = a + m->segs[s].offset;
		if (!ls->proj) {
			memcpy(dst, avg + ls->v_off, m->segs[s].length * sizeof(float));
			continue;
		}
		/* dy = avg - snap, in c->dy (our W Q minus the group's, negated below). */
		for (size_t i = 0; i < (size_t)ls->m * c->rank; i++)
			c->dy[ls->v_off + i] = avg[ls->v_off + i] - snap[ls->v_off + i];
		lowrank_lift(dst, c->dy + ls->v_off, c->q + ls->q_off, ls->m, ls->n, c->rank);
		for (size_t i = 0; i < (size_t)ls->m * c->rank; i++)
			c->dy[ls->v_off + i] = -c->dy[ls->v_off + i];
	}
	*avg_full = a;
	*snap_full = x;
	return 0;
}

int lr_chain_done(struct lr_chain *c, uint64_t id, const uint8_t (*members)[MSG_KEY_BYTES],
                  uint8_t k, bool all, const float *avg, const float *snap, float **avg_full,
                  float **snap_full, uint64_t now, uint64_t ttl_ms)
{
	const struct model *m = c->model;
	uint8_t kind = c->kind;
	int rc = 0;

	*avg_full = *snap_full = NULL;
	c->kind = MSG_LR_NONE;
	if (kind == MSG_LR_NONE || k > MSG_MAX_MEMBERS) {
		lr_chain_drop(c);
		return -EINVAL;
	}
	if (kind == MSG_LR_SKETCH) {
		/* Q = orth(C Q0), layer by layer, the same bits at every member. */
		for (size_t s = 0; s < m->n_segs && rc == 0; s++) {
			const struct lr_seg *ls = &c->seg[s];
			if (!ls->proj)
				continue;
			memcpy(c->q + ls->q_off, avg + ls->q_off,
			       (size_t)ls->n * c->rank * sizeof(float));
			rc = lowrank_orth(c->q + ls->q_off, ls->n, c->rank);
			if (rc == (int)c->rank)
				rc = -EDOM; /* all of it replaced: nothing in the sum */
			else if (rc > 0)
				rc = 0;
		}
	} else {
		rc = lift(c, avg, snap, avg_full, snap_full);
		if (rc == 0)
			memcpy(c->wb, c->x, m->n_params * sizeof(float));
	}
	if (rc != 0 || !all || c->done + 1 >= LR_CHAIN_ROUNDS) {
		lr_chain_drop(c);
		return rc;
	}
	c->done++;
	c->step = kind;
	c->id = id;
	c->k = k;
	memcpy(c->members, members, (size_t)k * MSG_KEY_BYTES);
	c->expires = now + ttl_ms;
	return 0;
}
