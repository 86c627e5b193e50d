/*
 * stats_phase.c: the estimate of the statistics phase (see stats_phase.h).
 */
#include "node/stats_phase.h"

#include "learn/dataset.h"
#include "learn/featstats.h"
#include "learn/learn.h"
#include "learn/model.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stats_phase {
	struct model model; /* layout only: n_params, segs */
	uint32_t dims;
	float *local; /* (2 dims) this site's own means, then second moments */
	float *x;     /* (2 dims) the estimate: the last result, or local before one */
	uint64_t seq, applied;
	unsigned calm;
};

int stats_phase_alloc(struct stats_phase **out, const struct dataset *train)
{
	struct stats_phase *sp;
	uint32_t d = train->dims, per;
	double *sum = NULL, *sq = NULL;

	*out = NULL;
	if (d < 1 || train->rows < 1 || train->mean != NULL)
		return LEARN_EBOUNDS;
	sp = calloc(1, sizeof(*sp));
	if (sp == NULL)
		return -ENOMEM;
	sp->dims = d;
	sp->x = malloc(2 * (size_t)d * sizeof(float));
	sp->local = malloc(2 * (size_t)d * sizeof(float));
	sum = malloc(d * sizeof(double));
	sq = malloc(d * sizeof(double));
	if (sp->x == NULL || sp->local == NULL || sum == NULL || sq == NULL) {
		free(sum);
		free(sq);
		stats_phase_free(sp);
		return -ENOMEM;
	}
	featstats_moments(train, sum, sq);
	for (uint32_t j = 0; j < d; j++) {
		sp->x[j] = (float)(sum[j] / train->rows);
		sp->x[d + j] = (float)(sq[j] / train->rows);
	}
	free(sum);
	free(sq);
	for (size_t i = 0; i < 2 * (size_t)d; i++) {
		if (!isfinite(sp->x[i])) {
			stats_phase_free(sp);
			return LEARN_EBOUNDS;
		}
	}
	memcpy(sp->local, sp->x, 2 * (size_t)d * sizeof(float));
	/* Segments of `per` features: at most STATS_MAX_SEG per half. */
	per = (d + STATS_MAX_SEG - 1) / STATS_MAX_SEG;
	sp->model.spec.type = MODEL_STATS;
	sp->model.n_params = 2 * (size_t)d;
	for (int half = 0; half < 2; half++) {
		for (uint32_t j = 0; j < d; j += per) {
			struct model_segment *s = &sp->model.segs[sp->model.n_segs++];
			uint32_t len = MIN(per, d - j);
			snprintf(s->name, sizeof(s->name), "%s.%u", half == 0 ? "mean" : "m2", j);
			s->offset = (size_t)half * d + j;
			s->length = len;
			s->ndim = 1;
			s->shape[0] = len;
		}
	}
	*out = sp;
	return 0;
}

void stats_phase_free(struct stats_phase *sp)
{
	if (sp == NULL)
		return;
	free(sp->x);
	free(sp->local);
	free(sp);
}

const struct model *stats_phase_model(const struct stats_phase *sp)
{
	return &sp->model;
}

bool stats_phase_resume(struct stats_phase *sp, const float *last)
{
	for (uint32_t j = 0; j < sp->dims; j++)
		if (!isfinite(last[j]) || !isfinite(last[sp->dims + j]) ||
		    !(last[sp->dims + j] >= 0))
			return false;
	memcpy(sp->x, last, sp->model.n_params * sizeof(float));
	return true;
}

uint64_t stats_phase_snapshot(const struct stats_phase *sp, float *x, uint64_t *steps)
{
	memcpy(x, sp->local, sp->model.n_params * sizeof(float));
	if (steps != NULL)
		*steps = 1;
	return sp->seq;
}

/* Mean and deviation of feature j in vector v. */
static void moments(const struct stats_phase *sp, const float *v, uint32_t j, double *mean,
                    double *sd)
{
	double m = v[j], m2 = v[sp->dims + j], var = m2 - m * m;

	*mean = m;
	*sd = var > 1e-12 * fabs(m2) && var > 0 ? sqrt(var) : 1.0;
}

double stats_phase_apply(struct stats_phase *sp, const float *avg, const float *snapshot,
                         uint64_t seq)
{
	double move = 0;

	for (uint32_t j = 0; j < sp->dims; j++) {
		double ma, sa, ms, ss;
		moments(sp, avg, j, &ma, &sa);
		moments(sp, snapshot, j, &ms, &ss);
		move = MAX(move, MAX(fabs(ma - ms), fabs(sa - ss)) / sa);
	}
	if (!isfinite(move))
		move = INFINITY;
	memcpy(sp->x, avg, sp->model.n_params * sizeof(float));
	sp->seq = seq;
	sp->applied++;
	sp->calm = move < STATS_CALM_MOVE ? sp->calm + 1 : 0;
	return move;
}

uint64_t stats_phase_applied(const struct stats_phase *sp)
{
	return sp->applied;
}

unsigned stats_phase_calm(const struct stats_phase *sp)
{
	return sp->calm;
}

int stats_phase_result(const struct stats_phase *sp, struct featstats *fs)
{
	double *sum, *sq;
	int rc;

	sum = malloc(sp->dims * sizeof(double));
	sq = malloc(sp->dims * sizeof(double));
	if (sum == NULL || sq == NULL) {
		free(sum);
		free(sq);
		return -ENOMEM;
	}
	for (uint32_t j = 0; j < sp->dims; j++) {
		sum[j] = sp->x[j];
		sq[j] = sp->x[sp->dims + j];
	}
	rc = featstats_from_moments(fs, sp->dims, 1.0, sum, sq);
	free(sum);
	free(sq);
	return rc;
}
