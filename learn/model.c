/*
 * model.c: layer stacks over the flat parameter vector, their forward and
 * backward passes, and the seeded initialisation.
 *
 * A model is built from its spec as a list of layers (dense, conv, pool,
 * flatten), each knowing its input and output shapes and where its weight
 * and bias live in params. The conv part of a CNN runs in the channel-
 * major layout (C, B, H, W) of layers.h; a flatten layer turns it into the
 * (B, D) rows of the dense part.
 */
#include "learn/model.h"

#include "learn/layers.h"
#include "learn/learn.h"
#include "util/rng.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum layer_kind { LAYER_DENSE, LAYER_CONV, LAYER_POOL, LAYER_FLATTEN };

struct model_layer {
	enum layer_kind kind;
	bool relu;                 /* ReLU fused on the output (dense, conv) */
	uint32_t in_c, in_h, in_w; /* dense: (D, 1, 1) */
	uint32_t out_c, out_h, out_w;
	size_t w_off, b_off; /* into params / grads */
	size_t dy_off;       /* dense models: this layer's slot in dys, per row of the batch */
	uint32_t fan_in;
	float *out;       /* (B, out) or (out_c, B, out_h, out_w) */
	uint32_t *argmax; /* pool: (out size * B) */
};

#define MAX_LAYERS (MODEL_MAX_HIDDEN + 8)

static size_t out_size(const struct model_layer *l)
{
	return (size_t)l->out_c * l->out_h * l->out_w;
}

static size_t in_size(const struct model_layer *l)
{
	return (size_t)l->in_c * l->in_h * l->in_w;
}

const char *model_type_name(enum model_type t)
{
	switch (t) {
	case MODEL_LOGREG:
		return "logreg";
	case MODEL_MLP:
		return "mlp";
	case MODEL_CNN:
		return "cnn";
	case MODEL_STATS:
		return "stats";
	case MODEL_EXTERNAL:
		return "external";
	}
	return "?";
}

/*
 * Lays out the layers of spec (without allocating): fills layers (may be
 * NULL to only count) and returns the number of parameters, or 0 if the
 * spec is invalid.
 */
static size_t plan(const struct model_spec *s, struct model_layer *layers, size_t *n_layers,
                   struct model_segment *segs, size_t *n_segs)
{
	struct model_layer tmp[MAX_LAYERS];
	struct model_layer *L = layers != NULL ? layers : tmp;
	uint64_t n = 0, d;
	size_t nl = 0, ns = 0;
	char name[24];

	if (s->classes < 2 || s->classes > 256 || s->channels == 0 || s->height == 0 ||
	    s->width == 0 || s->channels > MODEL_MAX_WIDTH || s->height > MODEL_MAX_WIDTH ||
	    s->width > MODEL_MAX_WIDTH)
		return 0;
	d = (uint64_t)s->channels * s->height * s->width;
	if (d > MODEL_MAX_PARAMS)
		return 0;

#define ADD_SEG(nm, len, nd, s0, s1, s2, s3)                                                       \
	do {                                                                                       \
		struct model_segment *sg = &segs[ns++];                                            \
		snprintf(sg->name, sizeof(sg->name), "%s", nm);                                    \
		sg->offset = (size_t)n;                                                            \
		sg->length = (size_t)(len);                                                        \
		sg->ndim = nd;                                                                     \
		sg->shape[0] = s0;                                                                 \
		sg->shape[1] = s1;                                                                 \
		sg->shape[2] = s2;                                                                 \
		sg->shape[3] = s3;                                                                 \
		n += (uint64_t)(len);                                                              \
	} while (0)

		/* A dense layer from `in` features to `out`. */
#define ADD_DENSE(nm, in, out, act)                                                                \
	do {                                                                                       \
		struct model_layer *l = &L[nl++];                                                  \
		memset(l, 0, sizeof(*l));                                                          \
		l->kind = LAYER_DENSE;                                                             \
		l->relu = act;                                                                     \
		l->in_c = (uint32_t)(in);                                                          \
		l->in_h = l->in_w = 1;                                                             \
		l->out_c = (uint32_t)(out);                                                        \
		l->out_h = l->out_w = 1;                                                           \
		l->fan_in = (uint32_t)(in);                                                        \
		snprintf(name, sizeof(name), "%s.weight", nm);                                     \
		l->w_off = (size_t)n;                                                              \
		ADD_SEG(name, (uint64_t)(in) * (out), 2, (uint32_t)(out), (uint32_t)(in), 0, 0);   \
		snprintf(name, sizeof(name), "%s.bias", nm);                                       \
		l->b_off = (size_t)n;                                                              \
		ADD_SEG(name, out, 1, (uint32_t)(out), 0, 0, 0);                                   \
	} while (0)

	switch (s->type) {
	case MODEL_LOGREG:
		ADD_DENSE("fc", d, s->classes, false);
		break;
	case MODEL_MLP: {
		uint64_t prev = d;
		if (s->n_hidden < 1 || s->n_hidden > MODEL_MAX_HIDDEN)
			return 0;
		for (uint32_t i = 0; i < s->n_hidden; i++) {
			char nm[16];
			if (s->hidden[i] < 1 || s->hidden[i] > MODEL_MAX_WIDTH)
				return 0;
			snprintf(nm, sizeof(nm), "fc%u", i + 1);
			ADD_DENSE(nm, prev, s->hidden[i], true);
			prev = s->hidden[i];
			if (n > MODEL_MAX_PARAMS)
				return 0;
		}
		{
			char nm[16];
			snprintf(nm, sizeof(nm), "fc%u", s->n_hidden + 1);
			ADD_DENSE(nm, prev, s->classes, false);
		}
		break;
	}
	case MODEL_CNN: {
		const uint32_t K = MODEL_CNN_KERNEL;
		uint32_t c = s->channels, h = s->height, w = s->width;
		for (int i = 0; i < 2; i++) {
			struct model_layer *l;
			uint32_t oc = s->conv[i];
			char nm[24];
			if (oc < 1 || oc > MODEL_MAX_WIDTH || h < K || w < K ||
			    (h - K + 1) / 2 < 1 || (w - K + 1) / 2 < 1)
				return 0;
			l = &L[nl++];
			memset(l, 0, sizeof(*l));
			l->kind = LAYER_CONV;
			/*
			 * ReLU is applied after the pooling: max-pool commutes with
			 * a monotonic function, so relu(pool(x)) = pool(relu(x)) with
			 * the same gradients, on a quarter of the values.
			 */
			l->relu = false;
			l->in_c = c;
			l->in_h = h;
			l->in_w = w;
			l->out_c = oc;
			l->out_h = h - K + 1;
			l->out_w = w - K + 1;
			l->fan_in = c * K * K;
			l->w_off = (size_t)n;
			snprintf(nm, sizeof(nm), "conv%d.weight", i + 1);
			ADD_SEG(nm, (uint64_t)oc * c * K * K, 4, oc, c, K, K);
			l->b_off = (size_t)n;
			snprintf(nm, sizeof(nm), "conv%d.bias", i + 1);
			ADD_SEG(nm, oc, 1, oc, 0, 0, 0);
			if (n > MODEL_MAX_PARAMS)
				return 0;
			l = &L[nl++];
			memset(l, 0, sizeof(*l));
			l->kind = LAYER_POOL;
			l->relu = true;
			l->in_c = oc;
			l->in_h = h - K + 1;
			l->in_w = w - K + 1;
			l->out_c = oc;
			l->out_h = l->in_h / 2;
			l->out_w = l->in_w / 2;
			c = oc;
			h = l->out_h;
			w = l->out_w;
		}
		{
			struct model_layer *l = &L[nl++];
			memset(l, 0, sizeof(*l));
			l->kind = LAYER_FLATTEN;
			l->in_c = c;
			l->in_h = h;
			l->in_w = w;
			l->out_c = c * h * w;
			l->out_h = l->out_w = 1;
		}
		ADD_DENSE("fc", (uint64_t)c * h * w, s->classes, false);
		break;
	}
	default:
		return 0;
	}
#undef ADD_DENSE
#undef ADD_SEG
	if (n == 0 || n > MODEL_MAX_PARAMS)
		return 0;
	if (n_layers != NULL)
		*n_layers = nl;
	if (n_segs != NULL)
		*n_segs = ns;
	return (size_t)n;
}

size_t model_spec_n_params(const struct model_spec *spec)
{
	struct model_segment segs[MODEL_MAX_SEGMENTS];
	return plan(spec, NULL, NULL, segs, NULL);
}

int model_spec_check(const struct model_spec *spec)
{
	return model_spec_n_params(spec) > 0 ? 0 : LEARN_EBOUNDS;
}

int model_alloc(struct model **out, const struct model_spec *spec, uint32_t max_batch)
{
	struct model *m;
	size_t n, act_max, cols_max = 1;
	const uint32_t K = MODEL_CNN_KERNEL;
	int rc = -ENOMEM;

	*out = NULL;
	if (max_batch == 0 || max_batch > 65536)
		return LEARN_EBOUNDS;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	m->layers = calloc(MAX_LAYERS, sizeof(*m->layers));
	if (m->layers == NULL)
		goto fail;
	n = plan(spec, m->layers, &m->n_layers, m->segs, &m->n_segs);
	if (n == 0) {
		rc = LEARN_EBOUNDS;
		goto fail;
	}
	m->spec = *spec;
	m->n_params = n;
	m->max_batch = max_batch;
	m->params = calloc(n, sizeof(float));
	m->grads = calloc(n, sizeof(float));
	if (m->params == NULL || m->grads == NULL)
		goto fail;
	/* Bound the scratch before allocating it (a checkpoint names max_batch). */
	{
		uint64_t total = (uint64_t)in_size(&m->layers[0]) * max_batch * 4;
		for (size_t i = 0; i < m->n_layers; i++) {
			const struct model_layer *l = &m->layers[i];
			total += (uint64_t)out_size(l) * max_batch * 3;
			if (l->kind == LAYER_CONV)
				total += (uint64_t)l->in_c * K * K * l->out_h * l->out_w *
				         max_batch * 2;
		}
		if (total > MODEL_MAX_SCRATCH) {
			rc = LEARN_EBOUNDS;
			goto fail;
		}
	}
	act_max = in_size(&m->layers[0]);
	for (size_t i = 0; i < m->n_layers; i++) {
		struct model_layer *l = &m->layers[i];
		size_t o = out_size(l) * max_batch;
		act_max = MAX(act_max, out_size(l));
		l->out = malloc(o * sizeof(float));
		if (l->out == NULL)
			goto fail;
		if (l->kind == LAYER_CONV)
			cols_max = MAX(cols_max,
			               conv_scratch_floats((int)max_batch, (int)l->in_c,
			                                   (int)l->in_h, (int)l->in_w, (int)K));
		if (l->kind == LAYER_POOL) {
			l->argmax = malloc(o * sizeof(uint32_t));
			if (l->argmax == NULL)
				goto fail;
		}
	}
	act_max *= max_batch;
	m->g1 = malloc(act_max * sizeof(float));
	m->g2 = malloc(act_max * sizeof(float));
	m->cols = malloc(cols_max * sizeof(float));
	m->dcols = malloc(cols_max * sizeof(float));
	if (m->g1 == NULL || m->g2 == NULL || m->cols == NULL || m->dcols == NULL)
		goto fail;
	if (spec->type == MODEL_CNN && spec->channels > 1) {
		m->x_cb = malloc(in_size(&m->layers[0]) * max_batch * sizeof(float));
		if (m->x_cb == NULL)
			goto fail;
	}
	*out = m;
	return 0;
fail:
	model_free(m);
	return rc;
}

void model_free(struct model *m)
{
	if (m == NULL)
		return;
	if (m->layers != NULL) {
		for (size_t i = 0; i < m->n_layers; i++) {
			free(m->layers[i].out);
			free(m->layers[i].argmax);
		}
	}
	free(m->layers);
	free(m->params);
	free(m->grads);
	free(m->g1);
	free(m->g2);
	free(m->cols);
	free(m->dcols);
	free(m->x_cb);
	free(m->dys);
	free(m->row_sq);
	free(m);
}

void model_init(struct model *m, uint64_t seed)
{
	struct rng r;

	rng_seed(&r, seed);
	/* Layer by layer in parameter order: weights, then bias. */
	for (size_t i = 0; i < m->n_layers; i++) {
		const struct model_layer *l = &m->layers[i];
		size_t nw, nb;
		float bound;
		if (l->kind != LAYER_DENSE && l->kind != LAYER_CONV)
			continue;
		nw = l->b_off - l->w_off;
		nb = l->out_c;
		bound = 1.0f / sqrtf((float)l->fan_in);
		for (size_t k = 0; k < nw; k++)
			m->params[l->w_off + k] = (2.0f * rng_uniform_f(&r) - 1.0f) * bound;
		for (size_t k = 0; k < nb; k++)
			m->params[l->b_off + k] = (2.0f * rng_uniform_f(&r) - 1.0f) * bound;
	}
}

const float *model_forward(struct model *m, const float *x, uint32_t B)
{
	const float *in = x;
	const uint32_t K = MODEL_CNN_KERNEL;
	const int b = (int)B;

	SOTTO_ASSERT(B >= 1 && B <= m->max_batch);
	if (m->spec.type == MODEL_CNN && m->spec.channels > 1) {
		/* (B, C, H*W) -> (C, B, H*W); with one channel they are the same. */
		transpose_abs(m->x_cb, x, b, (int)m->spec.channels,
		              (int)(m->spec.height * m->spec.width));
		in = m->x_cb;
	}
	m->in0 = in;
	m->last_b = B;
	for (size_t i = 0; i < m->n_layers; i++) {
		struct model_layer *l = &m->layers[i];
		const float *w = m->params + l->w_off, *bias = m->params + l->b_off;
		switch (l->kind) {
		case LAYER_DENSE:
			dense_forward(l->out, in, w, bias, b, (int)l->in_c, (int)l->out_c);
			break;
		case LAYER_CONV:
			conv_forward(l->out, m->cols, in, w, bias, b, (int)l->in_c, (int)l->in_h,
			             (int)l->in_w, (int)l->out_c, (int)K);
			break;
		case LAYER_POOL:
			maxpool_forward(l->out, l->argmax, in, (int)l->in_c * b, (int)l->in_h,
			                (int)l->in_w);
			break;
		case LAYER_FLATTEN:
			transpose_abs(l->out, in, (int)l->in_c, b, (int)(l->in_h * l->in_w));
			break;
		}
		if (l->relu)
			relu_forward(l->out, l->out, out_size(l) * B);
		in = l->out;
	}
	return in;
}

float model_backward(struct model *m, const uint8_t *labels, int *correct)
{
	const struct model_layer *last = &m->layers[m->n_layers - 1];
	const uint32_t K = MODEL_CNN_KERNEL;
	const int b = (int)m->last_b;
	float *g = m->g1, *gn = m->g2, *t;
	float loss;

	SOTTO_ASSERT(m->in0 != NULL);
	loss = softmax_xent(g, correct, last->out, labels, b, (int)m->spec.classes);
	for (size_t i = m->n_layers; i-- > 0;) {
		const struct model_layer *l = &m->layers[i];
		const float *in = i > 0 ? m->layers[i - 1].out : m->in0;
		float *dx = i > 0 ? gn : NULL;
		const float *w = m->params + l->w_off;
		float *dw = m->grads + l->w_off, *db = m->grads + l->b_off;
		if (l->relu)
			relu_backward(g, g, l->out, out_size(l) * (size_t)b);
		switch (l->kind) {
		case LAYER_DENSE:
			dense_backward(dx, dw, db, g, in, w, b, (int)l->in_c, (int)l->out_c);
			break;
		case LAYER_CONV:
			conv_backward(dx, dw, db, m->cols, m->dcols, g, in, w, b, (int)l->in_c,
			              (int)l->in_h, (int)l->in_w, (int)l->out_c, (int)K);
			break;
		case LAYER_POOL:
			if (dx != NULL)
				maxpool_backward(dx, g, l->argmax, (int)l->in_c * b, (int)l->in_h,
				                 (int)l->in_w);
			break;
		case LAYER_FLATTEN:
			if (dx != NULL)
				transpose_abs(dx, g, b, (int)l->in_c, (int)(l->in_h * l->in_w));
			break;
		}
		t = g;
		g = gn;
		gn = t;
	}
	return loss;
}

bool model_clips_per_row(const struct model *m)
{
	for (size_t i = 0; i < m->n_layers; i++) {
		if (m->layers[i].kind != LAYER_DENSE)
			return false;
	}
	return true;
}

int model_clip_scratch(struct model *m)
{
	size_t slots = 0;

	if (!model_clips_per_row(m))
		return LEARN_EBOUNDS;
	if (m->dys != NULL)
		return 0;
	for (size_t i = 0; i < m->n_layers; i++) {
		m->layers[i].dy_off = slots;
		slots += out_size(&m->layers[i]);
	}
	/* A third more than the activations model_alloc bounded. */
	m->dys = malloc(slots * m->max_batch * sizeof(float));
	m->row_sq = malloc(m->max_batch * sizeof(double));
	if (m->dys == NULL || m->row_sq == NULL) {
		free(m->dys);
		free(m->row_sq);
		m->dys = NULL;
		m->row_sq = NULL;
		return -ENOMEM;
	}
	return 0;
}

static double sq_norm(const float *x, size_t n)
{
	double s = 0.0;

	for (size_t i = 0; i < n; i++)
		s += (double)x[i] * x[i];
	return s;
}

double model_backward_clipped(struct model *m, const uint8_t *labels, double clip, int *correct,
                              double *norms)
{
	const struct model_layer *last = &m->layers[m->n_layers - 1];
	const int b = (int)m->last_b;
	float *g;
	double loss;

	SOTTO_ASSERT(m->in0 != NULL && m->dys != NULL && clip > 0.0);
	/* Each row's gradient of its own loss: the mean's gradient times b. */
	g = m->dys + last->dy_off * (size_t)b;
	loss = (double)softmax_xent(g, correct, last->out, labels, b, (int)m->spec.classes) * b;
	for (size_t k = 0; k < (size_t)b * last->out_c; k++)
		g[k] *= (float)b;
	for (int r = 0; r < b; r++)
		m->row_sq[r] = 0.0;
	/* Backward once, without weight gradients: every layer's dy and the norms. */
	for (size_t i = m->n_layers; i-- > 0;) {
		const struct model_layer *l = &m->layers[i];
		const float *in = i > 0 ? m->layers[i - 1].out : m->in0;
		g = m->dys + l->dy_off * (size_t)b;
		if (l->relu)
			relu_backward(g, g, l->out, out_size(l) * (size_t)b);
		for (int r = 0; r < b; r++) {
			double gy = sq_norm(g + (size_t)r * l->out_c, l->out_c);
			double xx = sq_norm(in + (size_t)r * l->in_c, l->in_c);
			m->row_sq[r] += gy * (xx + 1.0);
		}
		if (i > 0)
			dense_backward(m->dys + m->layers[i - 1].dy_off * (size_t)b, NULL, NULL, g,
			               in, m->params + l->w_off, b, (int)l->in_c, (int)l->out_c);
	}
	/* Scale each row's dy by its clipping factor; the weight gradients are sums. */
	for (int r = 0; r < b; r++) {
		double n = sqrt(m->row_sq[r]);
		m->row_sq[r] = n > clip ? clip / n : 1.0;
		if (norms != NULL)
			norms[r] = n;
	}
	for (size_t i = 0; i < m->n_layers; i++) {
		const struct model_layer *l = &m->layers[i];
		const float *in = i > 0 ? m->layers[i - 1].out : m->in0;
		g = m->dys + l->dy_off * (size_t)b;
		for (int r = 0; r < b; r++) {
			float c = (float)m->row_sq[r];
			float *row = g + (size_t)r * l->out_c;
			if (c != 1.0f) {
				for (uint32_t j = 0; j < l->out_c; j++)
					row[j] *= c;
			}
		}
		dense_backward(NULL, m->grads + l->w_off, m->grads + l->b_off, g, in,
		               m->params + l->w_off, b, (int)l->in_c, (int)l->out_c);
	}
	return loss;
}

const struct model_segment *model_segment_find(const struct model *m, const char *name)
{
	for (size_t i = 0; i < m->n_segs; i++) {
		if (strcmp(m->segs[i].name, name) == 0)
			return &m->segs[i];
	}
	return NULL;
}
