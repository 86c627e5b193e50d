/*
 * node_codec_plan_test.c: the initiator's choice of codec parameters
 * (node/codec_plan.c): exact codecs, Keep, and the modular codec's warm-up,
 * quantum from the observed spread, and widening after a wrap (also from a
 * spread estimate of 0). Every plan must pass codec_params_check and fit the
 * model. Error feedback's bookkeeping: the input is x + e, an applied round
 * hands the model x back as its snapshot (and x on the coordinates it did
 * not average) and carries the new residual; a dropped round keeps e.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "learn/model.h"
#include "node/codec_plan.h"
#include "protocol/codec.h"

struct fixture {
	struct model *m;
	struct config *cfg;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct model_spec spec = {0};

	if (f == NULL)
		return -1;
	spec.type = MODEL_MLP;
	spec.channels = 1;
	spec.height = 1;
	spec.width = 784;
	spec.classes = 10;
	spec.n_hidden = 1;
	spec.hidden[0] = 128;
	if (model_alloc(&f->m, &spec, 1) != 0)
		return -1;
	model_init(f->m, 42);
	f->cfg = calloc(1, sizeof(*f->cfg));
	if (f->cfg == NULL)
		return -1;
	f->cfg->gossip.bits = 8;
	f->cfg->gossip.width = 6;
	f->cfg->gossip.keep = 1.0;
	f->cfg->gossip.warmup_rounds = 2;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	model_free(f->m);
	free(f->cfg);
	free(f);
	return 0;
}

static void test_exact_codecs(void **state)
{
	struct fixture *f = *state;
	struct codec_params cp;

	f->cfg->gossip.codec = CONFIG_CODEC_FIXED;
	assert_int_equal(codec_plan_make(&cp, NULL, f->m, f->m->params, 0.5, 4, f->cfg), 0);
	assert_true(codec_plan_fits(&cp, f->m));
	assert_int_equal(cp.nseg, f->m->n_segs);
	for (uint32_t s = 0; s < cp.nseg; s++) {
		assert_int_equal(cp.seg[s].mode, CODEC_SEG_EXACT);
		assert_int_equal(cp.seg[s].bits, 8);
		assert_int_equal(cp.seg[s].width, 10);
	}
	assert_true(cp.flags & CODEC_F_WEIGHT);
	assert_false(cp.flags & (CODEC_F_SUBSAMPLE | CODEC_F_CHECK));
	f->cfg->gossip.codec = CONFIG_CODEC_FLOAT32;
	assert_int_equal(codec_plan_make(&cp, NULL, f->m, f->m->params, 0.5, 4, f->cfg), 0);
	assert_int_equal(cp.seg[0].width, 32);
	assert_int_equal(cp.seg[0].bits, 30);
}

static void test_keep(void **state)
{
	struct fixture *f = *state;
	struct codec_params cp, cp2;

	f->cfg->gossip.codec = CONFIG_CODEC_FIXED;
	f->cfg->gossip.keep = 0.25;
	assert_int_equal(codec_plan_make(&cp, NULL, f->m, f->m->params, 0.5, 4, f->cfg), 0);
	assert_int_equal(codec_plan_make(&cp2, NULL, f->m, f->m->params, 0.5, 4, f->cfg), 0);
	assert_true(cp.flags & CODEC_F_SUBSAMPLE);
	assert_true(cp.flags & CODEC_F_KEEP_SMALL);
	assert_int_equal(cp.keep_ppm, 250000);
	assert_true(cp.sample_seed != cp2.sample_seed); /* a fresh subset per round */
	/* the first layer is subsampled, the small ones are whole */
	{
		uint32_t len, width;
		codec_ring_segment(&cp, 0, &len, &width);
		assert_int_equal(len, (100352 + 3) / 4);
		codec_ring_segment(&cp, 2, &len, &width);
		assert_int_equal(len, 1280);
	}
	/* Keep = 1: every coordinate, no subset */
	f->cfg->gossip.keep = 1.0;
	assert_true(codec_plan_keep(f->cfg) == 1.0);
	assert_int_equal(codec_plan_make(&cp, NULL, f->m, f->m->params, 0.5, 4, f->cfg), 0);
	assert_false(cp.flags & CODEC_F_SUBSAMPLE);
}

static void test_modular_warmup_and_quantum(void **state)
{
	struct fixture *f = *state;
	struct codec_params cp;
	struct codec_stats st;
	struct codec_plan pl;

	f->cfg->gossip.codec = CONFIG_CODEC_MODULAR;
	codec_plan_init(&pl);
	for (size_t i = 0; i < f->m->n_params; i++) /* clip 1 in every layer */
		f->m->params[i] = i % 2 ? 0.4f : -0.4f;
	/* no observation yet: exact (warm-up), but with the checksum */
	assert_int_equal(codec_plan_make(&cp, &pl, f->m, f->m->params, 1.0, 4, f->cfg), 0);
	assert_int_equal(cp.seg[0].mode, CODEC_SEG_EXACT);
	assert_true(cp.flags & CODEC_F_CHECK);
	memset(&st, 0, sizeof(st));
	for (size_t s = 0; s < f->m->n_segs; s++)
		st.max_dev[s] = 0.0005f * (float)(s + 1);
	codec_plan_observe(&pl, &cp, &st, false);
	assert_int_equal(pl.observed, 1);
	assert_int_equal(codec_plan_make(&cp, &pl, f->m, f->m->params, 1.0, 4, f->cfg), 0);
	assert_int_equal(cp.seg[0].mode, CODEC_SEG_EXACT); /* WarmupRounds = 2 */
	codec_plan_observe(&pl, &cp, &st, false);
	assert_int_equal(codec_plan_make(&cp, &pl, f->m, f->m->params, 1.0, 4, f->cfg), 0);
	for (uint32_t s = 0; s < cp.nseg; s++) {
		/* k rho dev / quantum <= CODEC_PLAN_USE of half the ring, and the
		 * quantum is the smallest power of two that does it */
		double half = 32, use = 4.0 * st.max_dev[s] / cp.seg[s].quantum / half;

		assert_int_equal(cp.seg[s].mode, CODEC_SEG_MODULAR);
		assert_int_equal(cp.seg[s].width, 6);
		assert_true(use <= CODEC_PLAN_USE + 1e-6);
		assert_true(use > CODEC_PLAN_USE / 2);
		assert_true(exp2(round(log2(cp.seg[s].quantum))) == cp.seg[s].quantum);
		/* enough value bits for the clip */
		assert_true(((1u << (cp.seg[s].bits - 1)) - 1) * (double)cp.seg[s].quantum >=
		            2 * 0.9 * fabs(f->m->params[cp.seg[s].offset]));
	}
	assert_int_equal(codec_params_check(&cp), 0);
	{
		float q0 = cp.seg[0].quantum;

		/* a wrap doubles the spread estimate: the quantum doubles */
		codec_plan_observe(&pl, &cp, NULL, true);
		assert_int_equal(pl.wraps, 1);
		assert_int_equal(codec_plan_make(&cp, &pl, f->m, f->m->params, 1.0, 4, f->cfg), 0);
		assert_true(cp.seg[0].quantum == 2 * q0);
		/* smaller spreads bring it down slowly, larger ones up at once */
		for (size_t s = 0; s < f->m->n_segs; s++)
			st.max_dev[s] = 0.0001f;
		codec_plan_observe(&pl, &cp, &st, false);
		assert_true(pl.dev[0] > 0.00075f);
		st.max_dev[0] = 1.0f;
		codec_plan_observe(&pl, &cp, &st, false);
		assert_true(pl.dev[0] == 1.0f);
		/* too far apart for the ring at twice the exact quantum: exact */
		assert_int_equal(codec_plan_make(&cp, &pl, f->m, f->m->params, 1.0, 4, f->cfg), 0);
		assert_int_equal(cp.seg[0].mode, CODEC_SEG_EXACT);
		assert_int_equal(cp.seg[0].width, 10);
		assert_int_equal(cp.seg[1].mode, CODEC_SEG_MODULAR);
	}
	f->cfg->gossip.codec = CONFIG_CODEC_FIXED;
	model_init(f->m, 42);
}

/*
 * A wrap after a spread estimate of exactly 0 (every member's decode so far
 * on the quantum grid): doubling the estimate leaves it 0, yet the redo must
 * not repeat the plan that wrapped. Every plan after a wrap has each layer
 * either exact or modular at twice (at least) the quantum that wrapped, so
 * wraps in a row end with exact layers (which cannot wrap) within a few
 * doublings; the next decode measures the spread and lifts the floor.
 */
static void test_modular_wrap_from_zero_spread(void **state)
{
	struct fixture *f = *state;
	struct codec_params cp, prev;
	struct codec_stats st;
	struct codec_plan pl;
	unsigned wraps = 0;
	bool modular = true;

	f->cfg->gossip.codec = CONFIG_CODEC_MODULAR;
	codec_plan_init(&pl);
	for (size_t i = 0; i < f->m->n_params; i++) /* clip 1 in every layer */
		f->m->params[i] = i % 2 ? 0.4f : -0.4f;
	memset(&st, 0, sizeof(st));   /* max_dev 0 in every layer */
	for (int r = 0; r < 2; r++) { /* the warm-up rounds */
		assert_int_equal(codec_plan_make(&cp, &pl, f->m, f->m->params, 1.0, 4, f->cfg), 0);
		codec_plan_observe(&pl, &cp, &st, false);
	}
	assert_int_equal(codec_plan_make(&cp, &pl, f->m, f->m->params, 1.0, 4, f->cfg), 0);
	for (uint32_t s = 0; s < cp.nseg; s++) {
		assert_true(pl.dev[s] == 0.0f);
		assert_int_equal(cp.seg[s].mode, CODEC_SEG_MODULAR);
		assert_true(cp.seg[s].quantum == 0x1p-20f); /* the finest allowed */
	}
	while (modular) {
		prev = cp;
		codec_plan_observe(&pl, &prev, NULL, true);
		wraps++;
		assert_int_equal(codec_plan_make(&cp, &pl, f->m, f->m->params, 1.0, 4, f->cfg), 0);
		assert_int_equal(codec_params_check(&cp), 0);
		modular = false;
		for (uint32_t s = 0; s < cp.nseg; s++) {
			assert_true(pl.dev[s] == 0.0f); /* the estimate did not move */
			if (prev.seg[s].mode == CODEC_SEG_EXACT) {
				assert_int_equal(cp.seg[s].mode, CODEC_SEG_EXACT);
				continue;
			}
			if (cp.seg[s].mode == CODEC_SEG_MODULAR) {
				/* strictly wider: never the plan that wrapped */
				if (!(cp.seg[s].quantum >= 2 * prev.seg[s].quantum))
					fail_msg("wrap %u, layer %u: quantum %g after %g", wraps, s,
					         (double)cp.seg[s].quantum,
					         (double)prev.seg[s].quantum);
				modular = true;
			}
		}
		/* 2^-20 doubles to 2^-6 (twice the exact quantum 1/127), then exact */
		assert_true(wraps <= 15);
	}
	assert_int_equal(wraps, 15);
	assert_int_equal(pl.wraps, 15);
	/* a decode measures the spread: the floor goes, the quantum follows the spread */
	for (size_t s = 0; s < f->m->n_segs; s++)
		st.max_dev[s] = 0.0005f;
	codec_plan_observe(&pl, &cp, &st, false);
	assert_int_equal(codec_plan_make(&cp, &pl, f->m, f->m->params, 1.0, 4, f->cfg), 0);
	for (uint32_t s = 0; s < cp.nseg; s++) {
		assert_int_equal(cp.seg[s].mode, CODEC_SEG_MODULAR);
		assert_true(cp.seg[s].quantum == 0x1p-12f); /* 4 x 0.0005 / 16 = 2^-12.97, up */
	}
	/* an estimate under the 2^-20 floor: a wrap still widens the plan */
	for (size_t s = 0; s < f->m->n_segs; s++)
		st.max_dev[s] = 1e-9f;
	codec_plan_init(&pl);
	for (int r = 0; r < 3; r++)
		codec_plan_observe(&pl, &cp, &st, false);
	assert_int_equal(codec_plan_make(&cp, &pl, f->m, f->m->params, 1.0, 4, f->cfg), 0);
	assert_true(cp.seg[0].quantum == 0x1p-20f);
	codec_plan_observe(&pl, &cp, NULL, true);
	assert_true(pl.dev[0] > 0 && pl.dev[0] * 4 / 16 < 0x1p-20f);
	assert_int_equal(codec_plan_make(&cp, &pl, f->m, f->m->params, 1.0, 4, f->cfg), 0);
	assert_true(cp.seg[0].quantum == 0x1p-19f);
	f->cfg->gossip.codec = CONFIG_CODEC_FIXED;
	model_init(f->m, 42);
}

static void test_error_feedback_state(void **state)
{
	struct fixture *f = *state;
	size_t n = f->m->n_params;
	struct codec_ef ef = {0};
	struct codec_params cp;
	float *x = malloc(n * sizeof(float)), *x0 = malloc(n * sizeof(float));
	float *avg = malloc(n * sizeof(float)), *snap = malloc(n * sizeof(float));
	float *e1 = malloc(n * sizeof(float));
	uint32_t *idx = malloc(n * sizeof(uint32_t));
	size_t kept = 0, p = 0;

	assert_non_null(x && x0 && avg && snap && e1 && idx);
	f->cfg->gossip.codec = CONFIG_CODEC_FIXED;
	f->cfg->gossip.keep = 0.25;
	assert_int_equal(codec_plan_make(&cp, NULL, f->m, f->m->params, 1.0, 4, f->cfg), 0);
	assert_true(cp.flags & CODEC_F_SUBSAMPLE);
	memcpy(x0, f->m->params, n * sizeof(float));
	/* first round: e = 0, so the input is x; the round is applied */
	memcpy(x, x0, n * sizeof(float));
	assert_int_equal(codec_ef_input(&ef, x, n, &cp, 1.0f, 11), 0);
	assert_memory_equal(x, x0, n * sizeof(float));
	codec_indices(idx, &cp);
	for (uint32_t s = 0; s < cp.nseg; s++) {
		uint32_t len, w;
		codec_ring_segment(&cp, s, &len, &w);
		kept += len;
	}
	for (size_t i = 0; i < n; i++) {
		avg[i] = x[i]; /* not averaged: the round leaves the snapshot */
		snap[i] = x[i];
	}
	for (size_t j = 0; j < kept; j++)
		avg[idx[j]] = 0.125f;
	codec_ef_commit(&ef, &cp, avg, snap);
	assert_memory_equal(snap, x0, n * sizeof(float));
	for (size_t i = 0; i < n; i++) {
		bool k = p < kept && idx[p] == i;
		double lim = cp.seg[0].quantum;
		for (uint32_t s = 0; s < cp.nseg; s++) {
			if (i >= cp.seg[s].offset && i < cp.seg[s].offset + cp.seg[s].length)
				lim = cp.seg[s].quantum;
		}
		p += k;
		assert_true(avg[i] == (k ? 0.125f : x0[i]));
		assert_true(k ? fabs((double)ef.e[i]) < lim : ef.e[i] == 0.0f);
	}
	memcpy(e1, ef.e, n * sizeof(float));
	/* second round: the input is x + e; dropped, e stays */
	memcpy(x, x0, n * sizeof(float));
	assert_int_equal(codec_ef_input(&ef, x, n, &cp, 1.0f, 12), 0);
	for (size_t i = 0; i < n; i++)
		assert_true(x[i] == x0[i] + e1[i]);
	codec_ef_drop(&ef);
	codec_ef_commit(&ef, &cp, avg, snap); /* no round in progress: nothing */
	assert_memory_equal(ef.e, e1, n * sizeof(float));
	/* a bad input leaves x unchanged and the round without feedback */
	memcpy(x, x0, n * sizeof(float));
	x[idx[0]] = NAN; /* a kept coordinate */
	assert_int_not_equal(codec_ef_input(&ef, x, n, &cp, 1.0f, 13), 0);
	assert_false(ef.active);
	assert_true(isnan(x[idx[0]]) && x[idx[1]] == x0[idx[1]]);
	assert_int_equal(codec_ef_input(&ef, x, n - 1, &cp, 1.0f, 13), -EINVAL);
	codec_ef_free(&ef);
	f->cfg->gossip.keep = 1.0;
	free(x);
	free(x0);
	free(avg);
	free(snap);
	free(e1);
	free(idx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_exact_codecs),
	        cmocka_unit_test(test_keep),
	        cmocka_unit_test(test_modular_warmup_and_quantum),
	        cmocka_unit_test(test_modular_wrap_from_zero_spread),
	        cmocka_unit_test(test_error_feedback_state),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
