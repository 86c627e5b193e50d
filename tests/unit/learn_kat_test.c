/*
 * learn_kat_test.c: learn/ against numbers from an independent
 * implementation. tests/vectors/learn/gen_vectors.py computes, in float64
 * numpy (cross-checked with PyTorch when installed), the logits, loss,
 * gradient and two optimizer steps of small logreg, MLP and CNN models;
 * here the float32 C code must match them within a tolerance. A tamper
 * case checks that the comparison does fail on a wrong gradient.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "learn/model.h"
#include "learn/optim.h"
#include "util/file.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 16

struct field {
	char name[16];
	size_t n;
	double *v;
};

struct kat_case {
	char name[16];
	struct field f[MAX_FIELDS];
	size_t nf;
};

static struct kat_case cases[8];
static size_t n_cases;

static const struct field *get(const struct kat_case *c, const char *name)
{
	for (size_t i = 0; i < c->nf; i++) {
		if (strcmp(c->f[i].name, name) == 0)
			return &c->f[i];
	}
	fail_msg("case %s: no field %s", c->name, name);
	return NULL;
}

static int load_vectors(void **state)
{
	uint8_t *text = NULL;
	size_t len = 0;
	char *save = NULL, *line;

	(void)state;
	if (file_read_all(SOTTO_SOURCE_DIR "/tests/vectors/learn/learn_kat.txt", 1u << 24, &text,
	                  &len) != 0)
		return -1;
	for (line = strtok_r((char *)text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[16];
		int off = 0;
		unsigned long n;
		char *p;
		if (line[0] == '#')
			continue;
		if (sscanf(line, "%15s %lu %n", name, &n, &off) != 2)
			return -1;
		if (strcmp(name, "case") == 0) {
			if (n_cases == 8)
				return -1;
			snprintf(cases[n_cases].name, sizeof(cases[n_cases].name), "%s",
			         line + off);
			n_cases++;
			continue;
		}
		if (n_cases == 0 || cases[n_cases - 1].nf == MAX_FIELDS)
			return -1;
		{
			struct kat_case *c = &cases[n_cases - 1];
			struct field *f = &c->f[c->nf++];
			snprintf(f->name, sizeof(f->name), "%s", name);
			f->n = n;
			f->v = calloc(n + 1, sizeof(double));
			if (f->v == NULL)
				return -1;
			p = line + off;
			for (size_t i = 0; i < n; i++) {
				char *end;
				f->v[i] = strtod(p, &end);
				if (end == p)
					return -1;
				p = end;
			}
		}
	}
	free(text);
	return n_cases == 3 ? 0 : -1;
}

static int free_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < n_cases; i++)
		for (size_t j = 0; j < cases[i].nf; j++)
			free(cases[i].f[j].v);
	return 0;
}

/* Largest violation of |a - b| <= atol + rtol * |b|, as a ratio (<= 1 passes). */
static double worst(const float *a, const double *b, size_t n, double atol, double rtol)
{
	double w = 0.0;

	for (size_t i = 0; i < n; i++) {
		double r = fabs((double)a[i] - b[i]) / (atol + rtol * fabs(b[i]));
		if (!(r <= w)) /* NaN counts as worst */
			w = isnan(r) ? INFINITY : r;
	}
	return w;
}

static struct model *build(const struct kat_case *c)
{
	struct model_spec s;
	struct model *m = NULL;
	const struct field *shape = get(c, "shape"), *hid = get(c, "hidden");
	const struct field *prm = get(c, "params");

	memset(&s, 0, sizeof(s));
	s.type = (enum model_type)get(c, "type")->v[0];
	s.channels = (uint32_t)shape->v[0];
	s.height = (uint32_t)shape->v[1];
	s.width = (uint32_t)shape->v[2];
	s.classes = (uint32_t)get(c, "classes")->v[0];
	s.n_hidden = (uint32_t)hid->n;
	for (size_t i = 0; i < hid->n; i++)
		s.hidden[i] = (uint32_t)hid->v[i];
	s.conv[0] = (uint32_t)get(c, "conv")->v[0];
	s.conv[1] = (uint32_t)get(c, "conv")->v[1];
	assert_int_equal(model_alloc(&m, &s, (uint32_t)get(c, "batch")->v[0]), 0);
	assert_int_equal(m->n_params, prm->n);
	for (size_t i = 0; i < prm->n; i++)
		m->params[i] = (float)prm->v[i];
	return m;
}

static void batch(const struct kat_case *c, float **x, uint8_t **y, uint32_t *B)
{
	const struct field *fx = get(c, "x"), *fy = get(c, "labels");

	*B = (uint32_t)get(c, "batch")->v[0];
	*x = malloc(fx->n * sizeof(float));
	*y = malloc(fy->n);
	assert_non_null(*x);
	assert_non_null(*y);
	for (size_t i = 0; i < fx->n; i++)
		(*x)[i] = (float)fx->v[i];
	for (size_t i = 0; i < fy->n; i++)
		(*y)[i] = (uint8_t)fy->v[i];
}

static void check_forward_backward(const struct kat_case *c)
{
	struct model *m = build(c);
	const struct field *lg = get(c, "logits"), *gr = get(c, "grad");
	const float *logits;
	float *x, loss;
	uint8_t *y;
	uint32_t B;

	batch(c, &x, &y, &B);
	logits = model_forward(m, x, B);
	assert_true(worst(logits, lg->v, lg->n, 1e-5, 1e-4) <= 1.0);
	loss = model_backward(m, y, NULL);
	assert_true(fabs((double)loss - get(c, "loss")->v[0]) < 1e-5);
	if (!(worst(m->grads, gr->v, gr->n, 1e-6, 1e-3) <= 1.0))
		fail_msg("case %s: gradient off by %g tolerances", c->name,
		         worst(m->grads, gr->v, gr->n, 1e-6, 1e-3));
	/* Tamper: one wrong coordinate must be detected. */
	m->grads[gr->n / 2] += 1e-2f;
	assert_true(worst(m->grads, gr->v, gr->n, 1e-6, 1e-3) > 1.0);
	model_free(m);
	free(x);
	free(y);
}

static void check_optimizer(const struct kat_case *c, enum optim_type type, const char *field)
{
	struct model *m = build(c);
	const struct field *want = get(c, field);
	struct optim_params op;
	struct optim o;
	float *x;
	uint8_t *y;
	uint32_t B;

	batch(c, &x, &y, &B);
	optim_params_default(&op, type);
	op.lr = type == OPTIM_SGD ? 0.1f : 0.01f;
	op.momentum = 0.9f;
	op.weight_decay = 0.01f;
	assert_int_equal(optim_init(&o, &op, m->n_params), 0);
	for (int step = 0; step < 2; step++) {
		(void)model_forward(m, x, B);
		(void)model_backward(m, y, NULL);
		optim_step(&o, m->params, m->grads);
	}
	if (!(worst(m->params, want->v, want->n, 1e-5, 1e-4) <= 1.0))
		fail_msg("case %s: %s params off by %g tolerances", c->name, field,
		         worst(m->params, want->v, want->n, 1e-5, 1e-4));
	optim_fini(&o);
	model_free(m);
	free(x);
	free(y);
}

static void test_kat_forward_backward(void **state)
{
	(void)state;
	for (size_t i = 0; i < n_cases; i++)
		check_forward_backward(&cases[i]);
}

static void test_kat_sgd(void **state)
{
	(void)state;
	for (size_t i = 0; i < n_cases; i++)
		check_optimizer(&cases[i], OPTIM_SGD, "sgd2");
}

static void test_kat_adam(void **state)
{
	(void)state;
	for (size_t i = 0; i < n_cases; i++)
		check_optimizer(&cases[i], OPTIM_ADAM, "adam2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_kat_forward_backward),
	        cmocka_unit_test(test_kat_sgd),
	        cmocka_unit_test(test_kat_adam),
	};
	return cmocka_run_group_tests(tests, load_vectors, free_vectors);
}
