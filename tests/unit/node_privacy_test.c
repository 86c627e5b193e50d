/*
 * node_privacy_test.c: the node's privacy budget (node/privacy.h) with the
 * trainer that spends it (node/trainer.h). The plan derives the least
 * noise for Epochs and refuses what cannot hold, with the numbers; steps
 * are charged to the ledger on disk before they are taken; training stops
 * at the budget and never takes a step beyond it; what a crash loses is
 * charged, never uncharged; an unwritable ledger stops training.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config/config.h"
#include "learn/dataset.h"
#include "learn/dp.h"
#include "learn/learn.h"
#include "learn/model.h"
#include "learn/train.h"
#include "node/privacy.h"
#include "node/trainer.h"
#include "util/rng.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int load(struct config *cfg, const char *privacy, int epochs)
{
	char text[1024];

	snprintf(text, sizeof(text),
	         "[Model]\nType = logreg\n[Training]\nDataset = d\nEpochs = %d\nBatchSize = 10\n"
	         "[Privacy]\n%s\n",
	         epochs, privacy);
	return config_load_virtual(cfg, "test.conf", text);
}

static bool has_error(const struct config *cfg, const char *needle)
{
	for (size_t i = 0; i < cfg->n_errors; i++)
		if (strstr(cfg->errors[i].msg, needle) != NULL)
			return true;
	return false;
}

static void test_plan(void **state)
{
	struct config cfg;
	struct privacy p;
	(void)state;

	/* Nothing asked: off. */
	assert_int_equal(load(&cfg, "", 5), 0);
	assert_int_equal(privacy_plan(&p, &cfg, 1000, 10, 100), 0);
	assert_false(p.on);
	config_fini(&cfg);

	/* An Epsilon: the least noise for 5 epochs of q = 0.01. */
	assert_int_equal(load(&cfg, "Epsilon = 1", 5), 0);
	assert_int_equal(privacy_plan(&p, &cfg, 1000, 10, 100), 0);
	assert_true(p.on);
	assert_true(fabs(p.q - 0.01) < 1e-12);
	assert_int_equal(p.planned_steps, 500);
	assert_true(p.planned_epsilon <= 1.0 && p.planned_epsilon > 0.99);
	assert_true(fabs(p.sigma - dp_sigma_for(0.01, 500, 1e-5, 1.0)) < 1e-12);
	config_fini(&cfg);

	/* Too little noise for the budget: refused with what would do. */
	assert_int_equal(load(&cfg, "Epsilon = 1\nNoiseMultiplier = 0.5", 5), 0);
	assert_int_equal(privacy_plan(&p, &cfg, 1000, 10, 100), -EINVAL);
	assert_true(has_error(&cfg, "Epochs 5 at NoiseMultiplier 0.5 would spend epsilon"));
	assert_true(has_error(&cfg, "raise NoiseMultiplier to"));
	config_fini(&cfg);

	/* A Delta of 1/rows or more. */
	assert_int_equal(load(&cfg, "Epsilon = 1\nDelta = 0.001", 5), 0);
	assert_int_equal(privacy_plan(&p, &cfg, 1000, 10, 100), -EINVAL);
	assert_true(has_error(&cfg, "Delta 0.001 is not below 1/rows = 1/1000"));
	config_fini(&cfg);

	/* Noise without a budget: on, spend shown, no limit. */
	assert_int_equal(load(&cfg, "NoiseMultiplier = 1", 5), 0);
	assert_int_equal(privacy_plan(&p, &cfg, 1000, 10, 100), 0);
	assert_true(p.on && p.epsilon == 0.0 && p.sigma == 1.0);
	config_fini(&cfg);

	/* Out of range keys are config errors. */
	assert_int_equal(load(&cfg, "Epsilon = -1", 5), -EINVAL);
	config_fini(&cfg);
}

struct rig {
	struct dataset *ds;
	struct train *t;
	struct trainer tr;
	struct privacy p;
	struct rng r;
	char dir[32], path[64];
};

static void rig_up(struct rig *g, double epsilon, double sigma, int epochs)
{
	struct model_spec s = {
	        .type = MODEL_LOGREG, .channels = 1, .height = 1, .width = 4, .classes = 2};
	struct optim_params op;
	struct config cfg;
	char keys[128];
	struct train_dp dp;

	assert_int_equal(dataset_alloc(&g->ds, 100, 4, 2, DATASET_F32), 0);
	for (uint32_t i = 0; i < 400; i++)
		g->ds->x_f32[i] = (float)(i % 7) - 3.0f;
	for (uint32_t i = 0; i < 100; i++)
		g->ds->labels[i] = (uint8_t)(i % 2);
	optim_params_default(&op, OPTIM_SGD);
	assert_int_equal(train_alloc(&g->t, &s, 1, &op, 10, 1), 0);
	snprintf(keys, sizeof(keys), "Epsilon = %g\nNoiseMultiplier = %g\nDelta = 1e-3", epsilon,
	         sigma);
	assert_int_equal(load(&cfg, keys, epochs), 0);
	assert_int_equal(privacy_plan(&g->p, &cfg, 100, 10, 10), 0);
	config_fini(&cfg);
	strcpy(g->dir, "/tmp/sotto-priv-XXXXXX");
	assert_non_null(mkdtemp(g->dir));
	snprintf(g->path, sizeof(g->path), "%s/privacy.ledger", g->dir);
	assert_int_equal(privacy_open_ledger(&g->p, g->path), 0);
	rng_seed(&g->r, 9);
	dp = (struct train_dp){
	        .clip = g->p.clip, .sigma = g->p.sigma, .random = rng_fill, .random_arg = &g->r};
	assert_int_equal(train_set_dp(g->t, &dp), 0);
	trainer_init(&g->tr, g->t, g->ds, (uint64_t)epochs * 10);
	g->tr.priv = &g->p;
}

static void rig_down(struct rig *g)
{
	unlink(g->path);
	rmdir(g->dir);
	train_free(g->t);
	dataset_free(g->ds);
}

/* Trains what the trainer allows, chunk by chunk, as the worker does. */
static uint64_t run(struct rig *g, uint64_t grant)
{
	uint64_t n, total = 0;

	trainer_grant(&g->tr, grant, grant);
	while ((n = trainer_take(&g->tr, 4)) > 0) {
		assert_int_equal(trainer_steps(&g->tr, n, NULL), 0);
		total += n;
	}
	return total;
}

static void test_budget(void **state)
{
	struct rig g;
	struct dp_ledger disk;
	struct stat sb;
	uint64_t fit;
	(void)state;

	/* sigma 1 at q 0.1 for 100 epochs is far over epsilon 3: the budget stops it. */
	rig_up(&g, 3.0, 0.0, 100); /* derived: fits 100 epochs exactly */
	assert_true(g.p.sigma > 0);
	assert_int_equal(run(&g, 50), 50);
	/* Charged ahead, on disk, 0600, never less than taken. */
	assert_int_equal(dp_ledger_load(&disk, g.path), 0);
	assert_true(disk.steps >= g.t->steps);
	assert_int_equal(stat(g.path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_true(privacy_spent(&g.p) <= 3.0);
	rig_down(&g);

	/* Explicit noise with a budget below what Epochs would need: refused at plan. */
	{
		struct config cfg;
		struct privacy p;
		assert_int_equal(load(&cfg, "Epsilon = 3\nNoiseMultiplier = 1\nDelta = 1e-3", 100),
		                 0);
		assert_int_equal(privacy_plan(&p, &cfg, 100, 10, 10), -EINVAL);
		config_fini(&cfg);
	}

	/* The budget reached: exactly the steps that fit, then training is finished. */
	rig_up(&g, 3.0, 0.0, 100);
	g.p.sigma = 1.0; /* as if the plan had been made for fewer epochs */
	fit = dp_steps_within(NULL, g.p.q, 1.0, g.p.delta, 3.0, 100000);
	assert_true(fit > 10 && fit < 1000);
	assert_int_equal(run(&g, 100000), fit);
	assert_int_equal(g.t->steps, fit);
	assert_true(g.p.spent);
	assert_true(g.tr.finished);
	assert_true(trainer_done(&g.tr, g.t->steps));
	assert_false(trainer_take_fresh(&g.tr));
	assert_true(privacy_spent(&g.p) <= 3.0);
	assert_true(dp_epsilon_after(NULL, g.p.q, 1.0, fit + 1, g.p.delta) > 3.0);

	/* A crash: the ledger on disk stays, and a new start has no more to spend. */
	{
		struct privacy again = g.p;
		memset(&again.ledger, 0, sizeof(again.ledger));
		again.reserved = 0;
		again.spent = false;
		assert_int_equal(privacy_open_ledger(&again, g.path), 0);
		assert_int_equal(again.ledger.steps, fit);
		assert_int_equal(privacy_allow(&again, 1), 0);
		assert_true(again.spent);
	}
	rig_down(&g);

	/* Steps charged and lost to a crash stay charged. */
	rig_up(&g, 3.0, 0.0, 100);
	assert_int_equal(privacy_allow(&g.p, 4), 4); /* charges a block (an epoch) */
	assert_int_equal(g.p.ledger.steps, 10);
	{
		struct privacy again = g.p;
		assert_int_equal(privacy_open_ledger(&again, g.path), 0);
		assert_int_equal(again.ledger.steps, 10); /* none of them taken, all charged */
	}
	rig_down(&g);

	/* A ledger that cannot be written: training stops, fail closed. */
	rig_up(&g, 3.0, 0.0, 100);
	snprintf(g.p.path, sizeof(g.p.path), "%s/no/such/dir/ledger", g.dir);
	assert_int_equal(run(&g, 100), 0);
	assert_true(g.p.failed);
	assert_true(g.tr.failed);
	assert_int_equal(g.t->steps, 0);
	rig_down(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_plan),
	        cmocka_unit_test(test_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
