/*
 * train.c: the training loop and evaluation. Reads top to bottom like
 * llm.c's: draw the epoch's order, load a batch, forward, backward, step.
 */
#include "learn/train.h"

#include "learn/dataset.h"
#include "learn/dp.h"
#include "learn/learn.h"
#include "util/rng.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int train_alloc(struct train **out, const struct model_spec *spec, uint64_t model_seed,
                const struct optim_params *op, uint32_t batch, uint64_t data_seed)
{
	struct train *t;
	uint32_t dims;
	int rc;

	*out = NULL;
	if (batch == 0 || batch > 65536)
		return LEARN_EBOUNDS;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	rc = model_alloc(&t->model, spec, batch);
	if (rc != 0)
		goto fail;
	model_init(t->model, model_seed);
	rc = optim_init(&t->optim, op, t->model->n_params);
	if (rc != 0)
		goto fail;
	t->batch = batch;
	t->data_seed = data_seed;
	train_schedule_default(&t->sched, 1.0);
	dims = spec->channels * spec->height * spec->width;
	t->x_dims = dims;
	t->x = malloc((size_t)batch * dims * sizeof(float));
	t->y = malloc(batch);
	if (t->x == NULL || t->y == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	*out = t;
	return 0;
fail:
	train_free(t);
	return rc;
}

void train_free(struct train *t)
{
	if (t == NULL)
		return;
	model_free(t->model);
	optim_fini(&t->optim);
	free(t->dp_acc);
	free(t->drift);
	free(t->dp_bytes);
	free(t->dp_rows);
	free(t->perm);
	free(t->x);
	free(t->y);
	free(t);
}

void train_schedule_default(struct train_schedule *s, double epochs)
{
	memset(s, 0, sizeof(*s));
	s->decay = TRAIN_DECAY_CONSTANT;
	s->warmup = 0.0;
	s->epochs = epochs;
	s->floor = 1.0;
	s->momentum = TRAIN_MOMENTUM_KEEP;
}

int train_schedule_check(const struct train_schedule *s)
{
	if ((s->decay != TRAIN_DECAY_CONSTANT && s->decay != TRAIN_DECAY_COSINE &&
	     s->decay != TRAIN_DECAY_STEP) ||
	    (s->momentum != TRAIN_MOMENTUM_KEEP && s->momentum != TRAIN_MOMENTUM_RESET &&
	     s->momentum != TRAIN_MOMENTUM_QUASI_GLOBAL) ||
	    !(s->epochs > 0.0 && s->epochs <= 1e9) ||
	    !(s->warmup >= 0.0 && s->warmup < s->epochs) ||
	    !(s->floor >= 1e-4 && s->floor <= 1.0) || !(s->drift >= 0.0 && s->drift <= 1.0))
		return LEARN_EBOUNDS;
	return 0;
}

double train_schedule_factor(const struct train_schedule *s, double e)
{
	double q;

	if (s->warmup > 0.0 && e < s->warmup)
		return 0.1 + 0.9 * MAX(e, 0.0) / s->warmup;
	if (s->decay == TRAIN_DECAY_CONSTANT)
		return 1.0;
	if (e >= s->epochs)
		return s->floor;
	q = (e - s->warmup) / (s->epochs - s->warmup);
	if (s->decay == TRAIN_DECAY_COSINE)
		return s->floor + (1.0 - s->floor) * 0.5 * (1.0 + cos(M_PI * q));
	if (q < 0.5)
		return 1.0;
	return q < 0.75 ? sqrt(s->floor) : s->floor;
}

int train_set_schedule(struct train *t, const struct train_schedule *s)
{
	if (train_schedule_check(s) != 0)
		return LEARN_EBOUNDS;
	/* Adam's steps are not lr x gradient: the estimate below would be in
	 * the wrong units. */
	if (s->drift > 0.0 && t->optim.p.type != OPTIM_SGD)
		return LEARN_EBOUNDS;
	if (s->drift > 0.0 && t->drift == NULL) {
		t->drift = calloc(t->model->n_params, sizeof(float));
		if (t->drift == NULL)
			return -ENOMEM;
	} else if (s->drift > 0.0 && !(t->sched.drift > 0.0)) {
		memset(t->drift, 0, t->model->n_params * sizeof(float)); /* re-enabled */
	}
	t->sched = *s;
	t->optim.quasi_global =
	        s->momentum == TRAIN_MOMENTUM_QUASI_GLOBAL && t->optim.p.type == OPTIM_SGD;
	return 0;
}

int train_set_dp(struct train *t, const struct train_dp *dp)
{
	const size_t np = t->model->n_params;

	if (dp->clip == 0.0) {
		memset(&t->dp, 0, sizeof(t->dp));
		return 0;
	}
	if (!(dp->clip > 0.0 && dp->clip <= 1e6) || !(dp->sigma >= 0.0 && dp->sigma <= 1e6) ||
	    dp->random == NULL)
		return LEARN_EBOUNDS;
	if (model_clips_per_row(t->model) && model_clip_scratch(t->model) != 0)
		return -ENOMEM;
	if (t->dp_acc == NULL) {
		t->dp_acc = malloc(np * sizeof(float));
		/* Filled 16 KiB at a time: the bytes are read while still in cache. */
		t->dp_bytes_len = 16384;
		t->dp_bytes = malloc(t->dp_bytes_len);
		t->dp_rows = malloc((size_t)t->batch * sizeof(uint32_t));
		if (t->dp_acc == NULL || t->dp_bytes == NULL || t->dp_rows == NULL) {
			free(t->dp_acc);
			free(t->dp_bytes);
			free(t->dp_rows);
			t->dp_acc = NULL;
			t->dp_bytes = NULL;
			t->dp_rows = NULL;
			return -ENOMEM;
		}
	}
	t->dp = *dp;
	t->dp_pool_left = 0;
	return 0;
}

double train_dp_rate(const struct train *t, const struct dataset *ds)
{
	return ds->rows == 0 ? 1.0 : MIN(1.0, (double)t->batch / (double)ds->rows);
}

/* A uniform double in (0, 1] from the DP random source. */
static double dp_uniform(struct train *t)
{
	uint64_t v = 0;

	if (t->dp_pool_left < 8) {
		t->dp.random(t->dp.random_arg, t->dp_pool, sizeof(t->dp_pool));
		t->dp_pool_left = sizeof(t->dp_pool);
	}
	for (int i = 0; i < 8; i++)
		v = v << 8 | t->dp_pool[sizeof(t->dp_pool) - t->dp_pool_left--];
	return ((double)(v >> 11) + 1.0) * 0x1p-53;
}

/*
 * Clipped sum of the gradients of n rows into t->dp_acc (added): one
 * batched pass for dense models, one pass per row otherwise.
 */
static void dp_clipped(struct train *t, const struct dataset *ds, const uint32_t *rows, uint32_t n,
                       double *loss_sum, uint64_t *correct)
{
	struct model *m = t->model;
	const size_t np = m->n_params;
	int ok = 0;

	if (n == 0)
		return;
	if (m->dys != NULL) { /* model_clip_scratch() */
		dataset_batch(ds, rows, n, t->x, t->y);
		(void)model_forward(m, t->x, n);
		*loss_sum += model_backward_clipped(m, t->y, t->dp.clip, &ok, NULL);
		*correct += (uint64_t)ok;
		for (size_t j = 0; j < np; j++)
			t->dp_acc[j] += m->grads[j];
		return;
	}
	for (uint32_t r = 0; r < n; r++) {
		double norm = 0.0, scale;
		float loss;

		dataset_batch(ds, rows + r, 1, t->x, t->y);
		(void)model_forward(m, t->x, 1);
		loss = model_backward(m, t->y, &ok);
		for (size_t j = 0; j < np; j++)
			norm += (double)m->grads[j] * m->grads[j];
		norm = sqrt(norm);
		scale = norm > t->dp.clip ? t->dp.clip / norm : 1.0;
		for (size_t j = 0; j < np; j++)
			t->dp_acc[j] += (float)scale * m->grads[j];
		*loss_sum += loss;
		*correct += (uint64_t)ok;
	}
}

/*
 * The drift estimate (DriftCorrection). After local steps of effective
 * sizes h_1..h_K (lr / (1 - momentum) each, SGD) from a common start, a
 * member's model is w0 - H g_i and its group's average w0 - H g, H = sum
 * h, so the jump it applies, avg - snap, is H (g_i - g): how far its own
 * gradient points from its group's, SCAFFOLD's control variate c_i - c
 * (Karimireddy et al. 2020) read off the average the round already
 * delivers. The steps subtract d, so a jump shows only the drift that d
 * leaves, and d keeps a running mean of it with gain G: d = (1 - G) d +
 * G jump / H, which settles at about half the drift (less with momentum),
 * a damped correction. The full one (d += G jump / H, which settles at the
 * drift) measured worse: docs/learning.md, "Drift correction". The first
 * merge after train_alloc (start, restart) only opens the window: before
 * it the snapshot may be far older than the steps counted. A merge with
 * no step since leaves d as it is.
 */
static void drift_update(struct train *t, const float *avg, const float *snap)
{
	const bool primed = t->drift_primed;
	const double h = t->drift_h;
	float gain, scale;

	t->drift_h = 0.0;
	t->drift_primed = true;
	if (t->drift == NULL || !(t->sched.drift > 0.0) || !primed || !(h > 0.0))
		return;
	gain = (float)t->sched.drift;
	scale = (float)(t->sched.drift / h);
	for (size_t i = 0; i < t->model->n_params; i++) {
		float e = (1.0f - gain) * t->drift[i] + scale * (avg[i] - snap[i]);
		t->drift[i] = isfinite(e) ? e : 0.0f;
	}
}

/* Subtracts the drift estimate (train_merge) from this step's gradient. */
static void drift_correct(struct train *t)
{
	float *g = t->model->grads;

	if (t->drift == NULL || !(t->sched.drift > 0.0))
		return;
	/* This step's size as a merge will see it (optim_step, SGD). */
	t->drift_h += (double)optim_lr(&t->optim) / (1.0 - (double)t->optim.p.momentum);
	for (size_t i = 0; i < t->model->n_params; i++)
		g[i] -= t->drift[i];
}

/*
 * One DP-SGD step (train_dp): Poisson sampling by geometric gaps (each row
 * in with probability q, independently), the clipped sum of the sampled
 * rows' gradients in chunks of at most BatchSize rows, noise, the step.
 */
static void dp_step(struct train *t, const struct dataset *ds, double *loss_sum, uint64_t *correct,
                    uint64_t *rows)
{
	struct model *m = t->model;
	const size_t np = m->n_params;
	const double q = train_dp_rate(t, ds);
	const double log1mq = q < 1.0 ? log1p(-q) : 0.0;
	const float sd = (float)(t->dp.sigma * t->dp.clip);
	const float inv = (float)(1.0 / (q * (double)ds->rows));
	uint32_t chunk = 0;
	uint64_t i = 0;

	memset(t->dp_acc, 0, np * sizeof(float));
	for (;;) {
		if (q < 1.0)
			i += (uint64_t)floor(log(dp_uniform(t)) / log1mq); /* rows skipped */
		if (i >= ds->rows)
			break;
		t->dp_rows[chunk++] = (uint32_t)i++;
		(*rows)++;
		if (chunk == t->batch) {
			dp_clipped(t, ds, t->dp_rows, chunk, loss_sum, correct);
			chunk = 0;
		}
	}
	dp_clipped(t, ds, t->dp_rows, chunk, loss_sum, correct);
	if (sd > 0.0f)
		dp_gauss_add(t->dp_acc, np, sd, t->dp_bytes, t->dp_bytes_len, t->dp.random,
		             t->dp.random_arg);
	for (size_t j = 0; j < np; j++)
		m->grads[j] = t->dp_acc[j] * inv;
	drift_correct(t);
	optim_step(&t->optim, m->params, m->grads);
	/* The bytes that drew this step's sample and noise are not kept. */
	explicit_bzero(t->dp_bytes, t->dp_bytes_len);
	explicit_bzero(t->dp_pool, sizeof(t->dp_pool));
	t->dp_pool_left = 0;
}

uint32_t train_steps_per_epoch(const struct train *t, const struct dataset *ds)
{
	return (uint32_t)(((uint64_t)ds->rows + t->batch - 1) / t->batch);
}

static int data_fits(const struct model_spec *s, const struct dataset *ds)
{
	if (ds->dims != s->channels * s->height * s->width || ds->classes != s->classes)
		return LEARN_EMISMATCH;
	if (s->type == MODEL_CNN &&
	    (ds->channels != s->channels || ds->height != s->height || ds->width != s->width))
		return LEARN_EMISMATCH;
	return 0;
}

int train_check_data(const struct train *t, const struct dataset *ds)
{
	return data_fits(&t->model->spec, ds);
}

/* Draws the permutation of the current epoch if not drawn yet. */
static int order(struct train *t, const struct dataset *ds)
{
	struct rng r;

	if (t->perm != NULL && t->perm_rows == ds->rows && t->perm_epoch == t->epoch)
		return 0;
	if (t->perm_rows != ds->rows) {
		uint32_t *p = realloc(t->perm, (size_t)ds->rows * sizeof(*p));
		if (p == NULL)
			return -ENOMEM;
		t->perm = p;
	}
	for (uint32_t i = 0; i < ds->rows; i++)
		t->perm[i] = i;
	rng_seed3(&r, t->data_seed, t->epoch, 0);
	rng_shuffle_u32(&r, t->perm, ds->rows);
	t->perm_rows = ds->rows;
	t->perm_epoch = t->epoch;
	return 0;
}

int train_steps(struct train *t, const struct dataset *ds, uint64_t n, struct train_stats *stats)
{
	struct model *m = t->model;
	struct train_stats st;
	double loss_sum = 0.0;
	uint64_t correct = 0;
	int rc;

	memset(&st, 0, sizeof(st));
	rc = train_check_data(t, ds);
	if (rc != 0)
		return rc;
	if (ds->rows == 0)
		return -EINVAL;
	if (t->cursor >= ds->rows) { /* the data changed under a saved cursor */
		t->cursor = 0;
		t->epoch++;
	}
	for (uint64_t s = 0; s < n; s++) {
		const double spe = (double)train_steps_per_epoch(t, ds);
		uint32_t b;
		int ok = 0;
		float loss;
		t->optim.lr_scale = (float)train_schedule_factor(&t->sched, (double)t->steps / spe);
		b = MIN(t->batch, ds->rows - t->cursor);
		if (t->dp.clip > 0.0) {
			dp_step(t, ds, &loss_sum, &correct, &st.rows);
		} else {
			rc = order(t, ds);
			if (rc != 0)
				return rc;
			dataset_batch(ds, t->perm + t->cursor, b, t->x, t->y);
			(void)model_forward(m, t->x, b);
			loss = model_backward(m, t->y, &ok);
			drift_correct(t);
			optim_step(&t->optim, m->params, m->grads);
			loss_sum += (double)loss * b;
			correct += (uint64_t)ok;
			st.rows += b;
		}
		st.steps++;
		t->steps++;
		t->cursor += b;
		if (t->cursor >= ds->rows) {
			t->cursor = 0;
			t->epoch++;
			st.epochs_done++;
		}
	}
	if (stats != NULL) {
		st.loss = st.rows > 0 ? loss_sum / (double)st.rows : 0.0;
		st.accuracy = st.rows > 0 ? (double)correct / (double)st.rows : 0.0;
		*stats = st;
	}
	return 0;
}

int train_epoch(struct train *t, const struct dataset *ds, struct train_stats *stats)
{
	uint64_t left;

	if (ds->rows == 0)
		return -EINVAL;
	if (t->cursor >= ds->rows)
		left = train_steps_per_epoch(t, ds);
	else
		left = ((uint64_t)ds->rows - t->cursor + t->batch - 1) / t->batch;
	return train_steps(t, ds, left, stats);
}

/* Summed cross-entropy of b rows; counts right predictions and fills confusion. */
static double softmax_xent_eval(const float *logits, const uint8_t *y, uint32_t b, uint32_t C,
                                int *correct, uint32_t *confusion)
{
	double sum = 0.0;

	for (uint32_t i = 0; i < b; i++) {
		const float *z = logits + (size_t)i * C;
		uint32_t arg = 0;
		double e = 0.0;
		for (uint32_t j = 1; j < C; j++) {
			if (z[j] > z[arg])
				arg = j;
		}
		for (uint32_t j = 0; j < C; j++)
			e += exp((double)(z[j] - z[arg]));
		sum += (double)z[arg] + log(e) - (double)z[y[i]];
		*correct += arg == y[i];
		if (confusion != NULL)
			confusion[(size_t)y[i] * C + arg]++;
	}
	return sum;
}

int model_evaluate(struct model *m, const struct dataset *ds, struct eval_result *out,
                   uint32_t *confusion)
{
	const uint32_t C = m->spec.classes, B = m->max_batch;
	uint32_t *idx = NULL;
	uint8_t *y = NULL;
	float *x = NULL;
	double loss_sum = 0.0;
	uint64_t correct = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = data_fits(&m->spec, ds);
	if (rc != 0)
		return rc;
	if (confusion != NULL)
		memset(confusion, 0, (size_t)C * C * sizeof(*confusion));
	idx = malloc((size_t)B * sizeof(*idx));
	y = malloc(B);
	x = malloc((size_t)B * ds->dims * sizeof(float));
	if (idx == NULL || y == NULL || x == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t start = 0; start < ds->rows; start += B) {
		uint32_t b = MIN(B, ds->rows - start);
		const float *logits;
		int ok = 0;
		for (uint32_t i = 0; i < b; i++)
			idx[i] = start + i;
		dataset_batch(ds, idx, b, x, y);
		logits = model_forward(m, x, b);
		loss_sum += softmax_xent_eval(logits, y, b, C, &ok, confusion);
		correct += (uint64_t)ok;
	}
	out->rows = ds->rows;
	if (ds->rows > 0) {
		out->loss = loss_sum / ds->rows;
		out->accuracy = (double)correct / ds->rows;
	}
out:
	free(idx);
	free(y);
	free(x);
	return rc;
}

int train_merge(struct train *t, const float *avg, const float *snap, void (*between)(void))
{
	float *x = t->model->params, *m = t->optim.m;
	size_t n = t->model->n_params;
	const bool qg = t->optim.quasi_global;
	/* The jump per unit of the last step's lr, into the buffer (optim.h). */
	const float c = (1.0f - t->optim.p.momentum) / optim_lr(&t->optim);

	for (size_t i = 0; i < n; i++) {
		float d = avg[i] - snap[i];
		if (!isfinite(x[i] + d) || (qg && !isfinite(m[i] - c * d)))
			return -ERANGE;
	}
	for (size_t i = 0; i < n; i++) {
		float d = avg[i] - snap[i];
		x[i] += d;
		if (qg)
			m[i] -= c * d;
		if (i == n / 2 && between != NULL)
			between();
	}
	if (t->sched.momentum == TRAIN_MOMENTUM_RESET)
		optim_reset(&t->optim);
	drift_update(t, avg, snap);
	return 0;
}
