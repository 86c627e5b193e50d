/*
 * learn_grad_test.c: every backward kernel of learn/layers.h against
 * central finite differences of its forward kernel, and whole models
 * (logreg, MLP, CNN with two input channels) against finite differences
 * of their loss. The objective of a layer check is L = sum(r * y) for a
 * fixed random r, so every output contributes. Inputs are kept away from
 * ReLU kinks and pooling ties, where derivatives do not exist.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "learn/layers.h"
#include "learn/model.h"
#include "util/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define H_STEP 1e-2f

static struct rng R;

static float *rnd(size_t n, float lo, float hi)
{
	float *v = malloc((n + 1) * sizeof(float));
	assert_non_null(v);
	for (size_t i = 0; i < n; i++)
		v[i] = lo + (hi - lo) * rng_uniform_f(&R);
	return v;
}

static double dot(const float *a, const float *b, size_t n)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return s;
}

static void close_enough(double analytic, double numeric, const char *what, size_t i)
{
	double tol = 2e-3 + 1e-2 * fabs(numeric);
	if (!(fabs(analytic - numeric) <= tol))
		fail_msg("%s[%zu]: analytic %.6g, finite difference %.6g", what, i, analytic,
		         numeric);
}

/* A layer as a function y = f(x) for the checker, with its parameters bound. */
struct fn {
	void (*forward)(struct fn *f, float *y, const float *x);
	size_t nx, ny;
	void *ctx;
};

/* Checks dL/dv for every coordinate of v (an input or a parameter the forward reads). */
static void check_coords(struct fn *f, float *v, size_t nv, const float *grad, const float *x,
                         const float *r, const char *what)
{
	float *y = malloc(f->ny * sizeof(float));
	assert_non_null(y);
	for (size_t i = 0; i < nv; i++) {
		float keep = v[i];
		double lp, lm;
		v[i] = keep + H_STEP;
		f->forward(f, y, x);
		lp = dot(y, r, f->ny);
		v[i] = keep - H_STEP;
		f->forward(f, y, x);
		lm = dot(y, r, f->ny);
		v[i] = keep;
		close_enough(grad[i], (lp - lm) / (2.0 * H_STEP), what, i);
	}
	free(y);
}

/* --- dense ---------------------------------------------------------------- */

struct dense_ctx {
	float *w, *b;
	int B, in, out;
};

static void dense_fn(struct fn *f, float *y, const float *x)
{
	struct dense_ctx *c = f->ctx;
	dense_forward(y, x, c->w, c->b, c->B, c->in, c->out);
}

static void test_grad_dense(void **state)
{
	struct dense_ctx c = {NULL, NULL, 3, 5, 4};
	struct fn f = {dense_fn, 15, 12, &c};
	float *x = rnd(15, -1, 1), *r = rnd(12, -1, 1);
	float *dx = rnd(15, 0, 0), *dw = rnd(20, 0, 0), *db = rnd(4, 0, 0);

	(void)state;
	c.w = rnd(20, -1, 1);
	c.b = rnd(4, -1, 1);
	dense_backward(dx, dw, db, r, x, c.w, c.B, c.in, c.out);
	check_coords(&f, x, 15, dx, x, r, "dense dx");
	check_coords(&f, c.w, 20, dw, x, r, "dense dw");
	check_coords(&f, c.b, 4, db, x, r, "dense db");
	free(x), free(r), free(dx), free(dw), free(db), free(c.w), free(c.b);
}

/* --- relu ----------------------------------------------------------------- */

static void relu_fn(struct fn *f, float *y, const float *x)
{
	relu_forward(y, x, f->nx);
}

static void test_grad_relu(void **state)
{
	const size_t n = 37; /* not a multiple of 8: the scalar tail runs too */
	struct fn f = {relu_fn, n, n, NULL};
	float *x = rnd(n, -1, 1), *r = rnd(n, -1, 1), *y = rnd(n, 0, 0), *dx = rnd(n, 0, 0);

	(void)state;
	for (size_t i = 0; i < n; i++) /* away from the kink at 0 */
		x[i] = x[i] < 0 ? x[i] - 0.1f : x[i] + 0.1f;
	relu_forward(y, x, n);
	relu_backward(dx, r, y, n);
	check_coords(&f, x, n, dx, x, r, "relu dx");
	for (size_t i = 0; i < n; i++)
		assert_true(y[i] >= 0.0f && (y[i] == x[i] || x[i] < 0));
	free(x), free(r), free(y), free(dx);
}

/* --- conv ----------------------------------------------------------------- */

struct conv_ctx {
	float *w, *b, *cols;
	int B, C, H, W, OC, K;
};

static void conv_fn(struct fn *f, float *y, const float *x)
{
	struct conv_ctx *c = f->ctx;
	conv_forward(y, c->cols, x, c->w, c->b, c->B, c->C, c->H, c->W, c->OC, c->K);
}

static void test_grad_conv(void **state)
{
	struct conv_ctx c = {NULL, NULL, NULL, 2, 2, 7, 6, 3, 3};
	const size_t nx = 2 * 2 * 7 * 6, nw = 3 * 2 * 9, ny = 3 * 2 * 5 * 4;
	const size_t ncols = conv_scratch_floats(2, 2, 7, 6, 3);
	struct fn f = {conv_fn, nx, ny, &c};
	float *x = rnd(nx, -1, 1), *r = rnd(ny, -1, 1), *y = rnd(ny, 0, 0);
	float *dx = rnd(nx, 0, 0), *dw = rnd(nw, 0, 0), *db = rnd(3, 0, 0);
	float *dcols = rnd(ncols, 0, 0);

	(void)state;
	c.w = rnd(nw, -1, 1);
	c.b = rnd(3, -1, 1);
	c.cols = rnd(ncols, 0, 0);
	conv_forward(y, c.cols, x, c.w, c.b, c.B, c.C, c.H, c.W, c.OC, c.K);
	conv_backward(dx, dw, db, c.cols, dcols, r, x, c.w, c.B, c.C, c.H, c.W, c.OC, c.K);
	check_coords(&f, x, nx, dx, x, r, "conv dx");
	check_coords(&f, c.w, nw, dw, x, r, "conv dw");
	check_coords(&f, c.b, 3, db, x, r, "conv db");
	/* A direct convolution of one output: the im2col layout is right. */
	{
		/* y[o=1][b=1][oh=2][ow=3] */
		double s = c.b[1];
		for (int ch = 0; ch < 2; ch++)
			for (int i = 0; i < 3; i++)
				for (int j = 0; j < 3; j++)
					s += (double)c.w[((1 * 2 + ch) * 3 + i) * 3 + j] *
					     x[((ch * 2 + 1) * 7 + 2 + i) * 6 + 3 + j];
		assert_true(fabs(s - y[((1 * 2 + 1) * 5 + 2) * 4 + 3]) < 1e-5);
	}
	free(x), free(r), free(y), free(dx), free(dw), free(db), free(dcols), free(c.w), free(c.b),
	        free(c.cols);
}

/*
 * A convolution big enough to be split into several im2col chunks (one
 * image per chunk here) against a direct convolution computed in double.
 */
static void test_conv_chunks(void **state)
{
	const int B = 3, C = 16, H = 17, W = 17, OC = 3, K = 5, OH = 13, OW = 13;
	const size_t nx = (size_t)C * B * H * W, nw = (size_t)OC * C * K * K;
	const size_t ny = (size_t)OC * B * OH * OW, ns = conv_scratch_floats(B, C, H, W, K);
	float *x = rnd(nx, -1, 1), *w = rnd(nw, -1, 1), *b = rnd(OC, -1, 1), *dy = rnd(ny, -1, 1);
	float *y = rnd(ny, 0, 0), *dx = rnd(nx, 0, 0), *dw = rnd(nw, 0, 0), *db = rnd(OC, 0, 0);
	float *cols = rnd(ns, 0, 0), *dcols = rnd(ns, 0, 0);
	double *rdx = calloc(nx, sizeof(double)), *rdw = calloc(nw, sizeof(double));

	(void)state;
	assert_true(ns < (size_t)C * K * K * OH * OW * B); /* really chunked */
	conv_forward(y, cols, x, w, b, B, C, H, W, OC, K);
	conv_backward(dx, dw, db, cols, dcols, dy, x, w, B, C, H, W, OC, K);
	for (int o = 0; o < OC; o++) {
		double rdb = 0.0;
		for (int n = 0; n < B; n++)
			for (int i = 0; i < OH; i++)
				for (int j = 0; j < OW; j++) {
					size_t yi = (((size_t)o * B + n) * OH + i) * OW + j;
					double s = b[o];
					for (int c = 0; c < C; c++)
						for (int ki = 0; ki < K; ki++)
							for (int kj = 0; kj < K; kj++) {
								size_t wi =
								        (((size_t)o * C + c) * K +
								         ki) * K +
								        kj;
								size_t xi =
								        (((size_t)c * B + n) * H +
								         i + ki) *
								                W +
								        j + kj;
								s += (double)w[wi] * x[xi];
								rdw[wi] += (double)dy[yi] * x[xi];
								rdx[xi] += (double)dy[yi] * w[wi];
							}
					assert_true(fabs(s - y[yi]) < 1e-3);
					rdb += dy[yi];
				}
		assert_true(fabs(rdb - db[o]) < 1e-3);
	}
	for (size_t i = 0; i < nw; i++)
		assert_true(fabs(rdw[i] - dw[i]) < 1e-3);
	for (size_t i = 0; i < nx; i++)
		assert_true(fabs(rdx[i] - dx[i]) < 1e-3);
	free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db), free(cols),
	        free(dcols), free(rdx), free(rdw);
}

/* --- maxpool ---------------------------------------------------------------- */

struct pool_ctx {
	uint32_t *arg;
	int planes, H, W;
};

static void pool_fn(struct fn *f, float *y, const float *x)
{
	struct pool_ctx *c = f->ctx;
	maxpool_forward(y, c->arg, x, c->planes, c->H, c->W);
}

static void test_grad_maxpool(void **state)
{
	struct pool_ctx c = {NULL, 3, 5, 6}; /* odd height: the last row is dropped */
	const size_t nx = 3 * 5 * 6, ny = 3 * 2 * 3;
	struct fn f = {pool_fn, nx, ny, &c};
	float *x = rnd(nx, 0, 0), *r = rnd(ny, -1, 1), *y = rnd(ny, 0, 0), *dx = rnd(nx, 0, 0);
	uint32_t *perm = malloc(nx * sizeof(uint32_t));

	(void)state;
	/* Distinct values 0.1 apart: no ties within a finite-difference step. */
	for (uint32_t i = 0; i < nx; i++)
		perm[i] = i;
	rng_shuffle_u32(&R, perm, nx);
	for (size_t i = 0; i < nx; i++)
		x[i] = 0.1f * (float)perm[i];
	c.arg = malloc(ny * sizeof(uint32_t));
	maxpool_forward(y, c.arg, x, c.planes, c.H, c.W);
	maxpool_backward(dx, r, c.arg, c.planes, c.H, c.W);
	check_coords(&f, x, nx, dx, x, r, "maxpool dx");
	free(x), free(r), free(y), free(dx), free(perm), free(c.arg);
}

/* --- softmax cross-entropy ----------------------------------------------------- */

static void test_grad_softmax_xent(void **state)
{
	const int B = 4, C = 5;
	float *z = rnd(20, -3, 3), *d = rnd(20, 0, 0);
	uint8_t y[4] = {0, 4, 2, 2};
	int correct = -1;

	(void)state;
	(void)softmax_xent(d, &correct, z, y, B, C);
	assert_true(correct >= 0 && correct <= B);
	for (size_t i = 0; i < 20; i++) {
		float keep = z[i];
		double lp, lm;
		z[i] = keep + H_STEP;
		lp = softmax_xent(NULL, NULL, z, y, B, C);
		z[i] = keep - H_STEP;
		lm = softmax_xent(NULL, NULL, z, y, B, C);
		z[i] = keep;
		close_enough(d[i], (lp - lm) / (2.0 * H_STEP), "xent dlogits", i);
	}
	/* Huge logits stay finite (log-sum-exp). */
	z[0] = 1e30f;
	assert_true(isfinite(softmax_xent(d, NULL, z, y, B, C)));
	free(z), free(d);
}

static void test_transpose(void **state)
{
	float x[2 * 3 * 4], y[2 * 3 * 4], back[2 * 3 * 4];

	(void)state;
	for (int i = 0; i < 24; i++)
		x[i] = (float)i;
	transpose_abs(y, x, 2, 3, 4);
	assert_true(y[(1 * 2 + 1) * 4 + 2] == x[(1 * 3 + 1) * 4 + 2]); /* y[b=1][a=1] */
	assert_true(y[(2 * 2 + 0) * 4 + 3] == x[(0 * 3 + 2) * 4 + 3]); /* y[b=2][a=0] */
	transpose_abs(back, y, 3, 2, 4);
	assert_memory_equal(back, x, sizeof(x));
}

/* --- whole models ------------------------------------------------------------ */

static void check_model(const struct model_spec *s, uint32_t B)
{
	struct model *m = NULL;
	const size_t d = (size_t)s->channels * s->height * s->width;
	float *x = rnd(B * d, 0, 1);
	uint8_t y[8];
	size_t checked = 0;

	assert_int_equal(model_alloc(&m, s, B), 0);
	model_init(m, 7);
	for (uint32_t i = 0; i < B; i++)
		y[i] = (uint8_t)(i % s->classes);
	(void)model_forward(m, x, B);
	(void)model_backward(m, y, NULL);
	/*
	 * Every segment, a few coordinates each (first, last, a middle one).
	 * The step is small: a larger one crosses ReLU kinks and pooling ties.
	 */
	for (size_t sg = 0; sg < m->n_segs; sg++) {
		size_t picks[3] = {0, m->segs[sg].length / 2, m->segs[sg].length - 1};
		for (int k = 0; k < 3; k++) {
			size_t i = m->segs[sg].offset + picks[k];
			float keep = m->params[i];
			double lp, lm;
			m->params[i] = keep + 1e-3f;
			lp = softmax_xent(NULL, NULL, model_forward(m, x, B), y, (int)B,
			                  (int)s->classes);
			m->params[i] = keep - 1e-3f;
			lm = softmax_xent(NULL, NULL, model_forward(m, x, B), y, (int)B,
			                  (int)s->classes);
			m->params[i] = keep;
			close_enough(m->grads[i], (lp - lm) / 2e-3, m->segs[sg].name, picks[k]);
			checked++;
		}
	}
	assert_true(checked == 3 * m->n_segs);
	model_free(m);
	free(x);
}

static void test_grad_models(void **state)
{
	struct model_spec s;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.type = MODEL_LOGREG;
	s.channels = 1;
	s.height = 1;
	s.width = 9;
	s.classes = 4;
	check_model(&s, 5);

	s.type = MODEL_MLP;
	s.n_hidden = 2;
	s.hidden[0] = 7;
	s.hidden[1] = 6;
	check_model(&s, 5);

	memset(&s, 0, sizeof(s));
	s.type = MODEL_CNN;
	s.channels = 2;
	s.height = 17;
	s.width = 16;
	s.classes = 3;
	s.conv[0] = 3;
	s.conv[1] = 4;
	check_model(&s, 3);
}

static int setup(void **state)
{
	(void)state;
	rng_seed(&R, 12345);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_grad_dense),   cmocka_unit_test(test_grad_relu),
	        cmocka_unit_test(test_grad_conv),    cmocka_unit_test(test_conv_chunks),
	        cmocka_unit_test(test_grad_maxpool), cmocka_unit_test(test_grad_softmax_xent),
	        cmocka_unit_test(test_transpose),    cmocka_unit_test(test_grad_models),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
