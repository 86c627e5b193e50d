/*
 * cmd_train.c: `sotto train -c FILE`, local training with no network: the
 * "local only" baseline a site compares gossip against. Reads [Model] and
 * [Training] (a [Node] section is allowed, not needed), trains for Epochs
 * epochs and prints one line per epoch: training loss and accuracy, test
 * loss and accuracy (if TestSet is set), seconds of training.
 *
 * Also the mapping from a config to learn/'s model spec and optimizer,
 * shared with the node (learn/ does not know about configs).
 */
#include "config/config.h"
#include "learn/checkpoint.h"
#include "learn/dataset.h"
#include "learn/learn.h"
#include "learn/model.h"
#include "learn/optim.h"
#include "learn/train.h"
#include "node/cli.h"
#include "node/privacy.h"
#include "node/standardize.h"
#include "util/err.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int train_setup_from_config(struct model_spec *spec, struct optim_params *op,
                            const struct config *cfg, const struct dataset *ds)
{
	memset(spec, 0, sizeof(*spec));
	switch (cfg->model.type) {
	case CONFIG_MODEL_LOGREG:
		spec->type = MODEL_LOGREG;
		break;
	case CONFIG_MODEL_MLP:
		spec->type = MODEL_MLP;
		break;
	case CONFIG_MODEL_CNN:
		spec->type = MODEL_CNN;
		break;
	case CONFIG_MODEL_EXTERNAL:
		return LEARN_EBOUNDS; /* trained by another process: no spec here */
	}
	if (ds->channels != 0) {
		spec->channels = ds->channels;
		spec->height = ds->height;
		spec->width = ds->width;
	} else {
		spec->channels = 1;
		spec->height = 1;
		spec->width = ds->dims;
	}
	spec->classes = ds->classes;
	spec->n_hidden = (uint32_t)cfg->model.n_hidden;
	for (int i = 0; i < cfg->model.n_hidden && i < MODEL_MAX_HIDDEN; i++)
		spec->hidden[i] = (uint32_t)cfg->model.hidden[i];
	spec->conv[0] = MODEL_CNN_C1;
	spec->conv[1] = MODEL_CNN_C2;

	optim_params_default(op,
	                     cfg->training.optimizer == CONFIG_OPT_ADAM ? OPTIM_ADAM : OPTIM_SGD);
	op->lr = (float)cfg->training.learning_rate;
	op->momentum = (float)cfg->training.momentum;
	op->weight_decay = (float)cfg->training.weight_decay;
	if (model_spec_check(spec) != 0)
		return LEARN_EBOUNDS;
	return optim_params_check(op);
}

int train_schedule_from_config(struct train_schedule *s, const struct config *cfg, double epochs)
{
	static const enum train_decay decay[] = {
	        [CONFIG_SCHED_CONSTANT] = TRAIN_DECAY_CONSTANT,
	        [CONFIG_SCHED_COSINE] = TRAIN_DECAY_COSINE,
	        [CONFIG_SCHED_STEP] = TRAIN_DECAY_STEP,
	};
	static const enum train_momentum momentum[] = {
	        [CONFIG_MOM_KEEP] = TRAIN_MOMENTUM_KEEP,
	        [CONFIG_MOM_RESET] = TRAIN_MOMENTUM_RESET,
	        [CONFIG_MOM_QUASI_GLOBAL] = TRAIN_MOMENTUM_QUASI_GLOBAL,
	};

	train_schedule_default(s, epochs);
	s->decay = decay[cfg->training.schedule];
	s->warmup = cfg->training.warmup;
	s->floor = cfg->training.lr_floor;
	s->momentum = momentum[cfg->training.momentum_rule];
	s->drift = cfg->training.drift_correction;
	return train_schedule_check(s);
}

static void print_spec(const struct model *m)
{
	const struct model_spec *s = &m->spec;

	printf("model %s ", model_type_name(s->type));
	if (s->type == MODEL_CNN) {
		printf("%ux%ux%u conv5x5:%u pool conv5x5:%u pool fc:%u", s->channels, s->height,
		       s->width, s->conv[0], s->conv[1], s->classes);
	} else {
		printf("%u", s->channels * s->height * s->width);
		for (uint32_t i = 0; s->type == MODEL_MLP && i < s->n_hidden; i++)
			printf("-%u", s->hidden[i]);
		printf("-%u", s->classes);
	}
	printf(", %zu parameters\n", m->n_params);
}

static void print_confusion(const uint32_t *cm, uint32_t C)
{
	printf("confusion (rows: true class, columns: predicted)\n     ");
	for (uint32_t j = 0; j < C; j++)
		printf(" %5u", j);
	printf("\n");
	for (uint32_t i = 0; i < C; i++) {
		printf("%5u", i);
		for (uint32_t j = 0; j < C; j++)
			printf(" %5u", cm[(size_t)i * C + j]);
		printf("\n");
	}
}

int cmd_train(int argc, char **argv)
{
	const char *path = NULL, *save = NULL, *resume = NULL;
	struct dataset *train_ds = NULL, *test_ds = NULL;
	struct train *t = NULL;
	struct model_spec spec;
	struct optim_params op;
	struct config cfg;
	uint32_t *confusion = NULL;
	bool show_confusion = false, cfg_loaded = false;
	int64_t epochs = 0;
	struct train_schedule sched;
	struct privacy priv;
	double best = -1.0, last = 0.0;
	int best_epoch = 0;
	int rc, status = 1;

	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--epochs") == 0 && i + 1 < argc &&
		         util_parse_i64(&epochs, argv[i + 1], 1, 100000) == 0)
			i++;
		else if (strcmp(argv[i], "--save") == 0 && i + 1 < argc)
			save = argv[++i];
		else if (strcmp(argv[i], "--resume") == 0 && i + 1 < argc)
			resume = argv[++i];
		else if (strcmp(argv[i], "--confusion") == 0)
			show_confusion = true;
		else {
			path = NULL;
			break;
		}
	}
	if (path == NULL) {
		fprintf(stderr,
		        "usage: sotto train -c FILE [--epochs N] [--save CKPT] [--resume CKPT] "
		        "[--confusion]\n"
		        "  trains [Model] on [Training] Dataset locally and prints a line per "
		        "epoch\n");
		return 2;
	}
	rc = config_load(&cfg, path);
	cfg_loaded = true;
	if (rc != 0) {
		config_errors_print(&cfg, stderr);
		status = 2;
		goto out;
	}
	if (cfg.model.type == CONFIG_MODEL_EXTERNAL) {
		fprintf(stderr,
		        "sotto train: %s: [Model] Type = external is trained by its own process, "
		        "attached to `sotto run` (docs/external.md)\n",
		        path);
		status = 2;
		goto out;
	}
	if (epochs == 0)
		epochs = cfg.training.epochs;
	learn_set_threads(cfg.training.threads);
	rc = dataset_load(&train_ds, cfg.training.dataset);
	if (rc != 0) {
		fprintf(stderr, "sotto train: Dataset %s: %s\n", cfg.training.dataset, err_str(rc));
		goto out;
	}
	if (cfg.training.test_set[0] != '\0') {
		rc = dataset_load(&test_ds, cfg.training.test_set);
		if (rc != 0) {
			fprintf(stderr, "sotto train: TestSet %s: %s\n", cfg.training.test_set,
			        err_str(rc));
			goto out;
		}
	}
	if (train_ds->rows == 0) {
		fprintf(stderr, "sotto train: Dataset %s has no rows\n", cfg.training.dataset);
		goto out;
	}
	{
		char why[CONFIG_PATH_MAX * 2 + 256] = "";
		if (standardize_datasets(&cfg, train_ds, test_ds, NULL, why, sizeof(why)) != 0) {
			fprintf(stderr, "sotto train: %s%s\n", why,
			        cfg.training.standardize == CONFIG_STD_FEDERATED
			                ? " (or set Standardize = local to train alone)"
			                : "");
			goto out;
		}
	}
	rc = train_setup_from_config(&spec, &op, &cfg, train_ds);
	if (rc != 0) {
		fprintf(stderr, "sotto train: %s: model or optimizer settings out of range%s\n",
		        path,
		        spec.type == MODEL_CNN && train_ds->channels == 0
		                ? " (Type = cnn needs image data)"
		                : "");
		goto out;
	}
	if (resume != NULL) {
		rc = checkpoint_load(resume, &t, NULL, NULL);
		if (rc == 0 && memcmp(&t->model->spec, &spec, sizeof(spec)) != 0)
			rc = LEARN_EMISMATCH;
		if (rc != 0) {
			fprintf(stderr, "sotto train: --resume %s: %s\n", resume, err_str(rc));
			goto out;
		}
	} else {
		rc = train_alloc(&t, &spec, cfg.model.seed, &op, (uint32_t)cfg.training.batch_size,
		                 cfg.training.seed);
		if (rc != 0) {
			fprintf(stderr, "sotto train: %s\n", err_str(rc));
			goto out;
		}
	}
	/* The budget counts from epoch 0, so a resumed run keeps its trajectory. */
	if (train_schedule_from_config(&sched, &cfg, (double)t->epoch + (double)epochs) != 0 ||
	    train_set_schedule(t, &sched) != 0) {
		fprintf(stderr, "sotto train: %s: schedule settings out of range\n", path);
		goto out;
	}
	if (train_check_data(t, train_ds) != 0 ||
	    (test_ds != NULL && train_check_data(t, test_ds) != 0)) {
		fprintf(stderr, "sotto train: TestSet does not match Dataset (features, classes or "
		                "image shape)\n");
		goto out;
	}
	if (privacy_plan(&priv, &cfg, train_ds->rows, t->batch,
	                 train_steps_per_epoch(t, train_ds)) != 0) {
		config_errors_print(&cfg, stderr);
		goto out;
	}
	if (priv.on) {
		struct train_dp dp = {
		        .clip = priv.clip, .sigma = priv.sigma, .random = privacy_random};
		if (train_set_dp(t, &dp) != 0) {
			fprintf(stderr, "sotto train: [Privacy] settings out of range\n");
			goto out;
		}
	}
	confusion = calloc((size_t)spec.classes * spec.classes, sizeof(*confusion));
	if (confusion == NULL)
		goto out;
	print_spec(t->model);
	printf("optimizer %s lr %g %s %g weight decay %g, batch %u, %u threads\n",
	       op.type == OPTIM_ADAM ? "adam" : "sgd", (double)op.lr,
	       op.type == OPTIM_ADAM ? "beta1" : "momentum", (double)op.momentum,
	       (double)op.weight_decay, t->batch, cfg.training.threads);
	printf("schedule %s, warm-up %g, floor %g over %g epochs, momentum %s\n",
	       cfg.training.schedule == CONFIG_SCHED_COSINE ? "cosine"
	       : cfg.training.schedule == CONFIG_SCHED_STEP ? "step"
	                                                    : "constant",
	       sched.warmup, sched.floor, sched.epochs,
	       cfg.training.momentum_rule == CONFIG_MOM_RESET          ? "reset"
	       : cfg.training.momentum_rule == CONFIG_MOM_QUASI_GLOBAL ? "quasi-global"
	                                                               : "keep");
	if (priv.on)
		printf("privacy DP-SGD: NoiseMultiplier %.4g, ClipNorm %g, sampling rate %.4g, "
		       "delta "
		       "%g (sotto train keeps no ledger: the epsilon below is this run's alone)\n",
		       priv.sigma, priv.clip, priv.q, priv.delta);
	printf("data %u training rows", train_ds->rows);
	if (test_ds != NULL)
		printf(", %u test rows", test_ds->rows);
	printf("\n");
	fflush(stdout);

	for (int64_t e = 1; e <= epochs; e++) {
		struct train_stats st;
		struct eval_result ev;
		double t0 = util_now(), dt;
		rc = train_epoch(t, train_ds, &st);
		dt = util_now() - t0;
		if (rc != 0) {
			fprintf(stderr, "sotto train: %s\n", err_str(rc));
			goto out;
		}
		printf("epoch %3lld/%lld  train loss %.4f acc %6.2f%%", (long long)t->epoch,
		       (long long)(epochs + (int64_t)t->epoch - e), st.loss, 100.0 * st.accuracy);
		if (test_ds != NULL) {
			rc = model_evaluate(t->model, test_ds, &ev, confusion);
			if (rc != 0) {
				fprintf(stderr, "\nsotto train: %s\n", err_str(rc));
				goto out;
			}
			printf("  test loss %.4f acc %6.2f%%", ev.loss, 100.0 * ev.accuracy);
			last = ev.accuracy;
			if (ev.accuracy > best) {
				best = ev.accuracy;
				best_epoch = (int)t->epoch;
			}
		}
		if (priv.on)
			printf("  epsilon %.3g",
			       dp_epsilon_after(NULL, priv.q, priv.sigma, t->steps, priv.delta));
		printf("  %.3f s\n", dt);
		fflush(stdout);
		if (save != NULL) {
			rc = checkpoint_save(save, t, NULL, 0);
			if (rc != 0) {
				fprintf(stderr, "sotto train: --save %s: %s\n", save, err_str(rc));
				goto out;
			}
		}
	}
	if (test_ds != NULL) {
		printf("best test accuracy %.2f%% (epoch %d), final %.2f%%\n", 100.0 * best,
		       best_epoch, 100.0 * last);
		if (show_confusion)
			print_confusion(confusion, spec.classes);
	}
	status = 0;
out:
	free(confusion);
	train_free(t);
	dataset_free(train_ds);
	dataset_free(test_ds);
	if (cfg_loaded)
		config_fini(&cfg);
	return status;
}
