/*
 * train.h: a trainer (model + optimizer + data order) that runs a given
 * number of mini-batch steps, and evaluation.
 *
 * The data order is a pure function of (data seed, epoch): epoch e visits
 * the rows in the permutation drawn from rng_seed3(seed, e, 0), in batches
 * of `batch` rows (the last batch of an epoch may be smaller). The trainer
 * only remembers (epoch, cursor), so training can stop after any step (a
 * fractional epoch between two gossip rounds), be checkpointed, and resume
 * exactly where it was. The node runs train_steps() on a worker thread;
 * one trainer must not be used by two threads at once, two trainers share
 * nothing (except OpenBLAS's thread count, see learn.h).
 *
 * Not here: what the steps count means for gossip (node/), checkpoints
 * (checkpoint.h).
 */
#ifndef SOTTO_LEARN_TRAIN_H
#define SOTTO_LEARN_TRAIN_H

#include "learn/model.h"
#include "learn/optim.h"

#include <stdint.h>

struct dataset;

/*
 * The learning rate over the training budget, and what momentum does when
 * a gossip result is merged. Progress is counted in epochs of training
 * taken, e = steps / steps_per_epoch (steps are in the checkpoint, so a
 * resumed run continues the same trajectory). The step taken at progress e
 * uses LearningRate x factor(e):
 *
 *   warm-up  e < W:        0.1 + 0.9 e / W (linear up to the full rate)
 *   constant               1
 *   cosine   W <= e < E:   f + (1 - f) (1 + cos(pi q)) / 2, q = (e-W)/(E-W)
 *   step     W <= e < E:   1 for q < 1/2, sqrt(f) for q < 3/4, f after
 *   cosine, step  e >= E:  f (the floor)
 *
 * W = warmup, E = epochs, f = floor. Momentum at a merge:
 *
 *   keep          the node's own buffer carries on (SGD and Adam)
 *   reset         the optimizer state is zeroed (optim_reset)
 *   quasi-global  SGD: the buffer follows the model's displacement, the
 *                 merge's jump included (optim.h; Lin et al. 2021); Adam
 *                 keeps its state
 */
enum train_decay {
	TRAIN_DECAY_CONSTANT = 0,
	TRAIN_DECAY_COSINE = 1,
	TRAIN_DECAY_STEP = 2,
};

enum train_momentum {
	TRAIN_MOMENTUM_KEEP = 0,
	TRAIN_MOMENTUM_RESET = 1,
	TRAIN_MOMENTUM_QUASI_GLOBAL = 2,
};

struct train_schedule {
	enum train_decay decay;
	double warmup; /* epochs of linear warm-up, 0 <= warmup < epochs (0: none) */
	double epochs; /* the budget E: a decay reaches its floor here (> 0) */
	double floor;  /* lr factor at E, 1e-4..1 */
	enum train_momentum momentum;
	double drift; /* drift correction's gain, 0..1 (0: off; train_merge) */
};

/*
 * DP-SGD (learn/dp.h), off while clip is 0. A step then samples each row
 * with probability q = min(1, batch / rows) instead of taking the next
 * mini-batch, clips each sampled row's gradient to L2 norm `clip` (for
 * logreg and MLP from one batched pass, model_backward_clipped(); for the
 * CNN one pass per row), adds N(0, (sigma clip)^2) to every coordinate of
 * their sum (dp_gauss_add) and divides it by q rows (the expected batch). The random bytes for
 * sampling and noise come from `random` (the node: the OS's CSPRNG; the simulator: its seed). Steps
 * and epochs are counted as without DP (batch rows a step).
 */
struct train_dp {
	double clip;  /* ClipNorm > 0; 0: off */
	double sigma; /* NoiseMultiplier >= 0 */
	void (*random)(void *arg, void *buf, size_t len);
	void *random_arg;
};

struct train {
	struct model *model; /* owned: model->params is the model */
	struct optim optim;
	uint32_t batch;
	uint64_t data_seed;
	uint64_t epoch;              /* current epoch (0-based) */
	uint32_t cursor;             /* rows of the current epoch already visited */
	uint64_t steps;              /* mini-batch steps taken in total */
	struct train_schedule sched; /* not in the checkpoint: set from the config */
	struct train_dp dp;          /* not in the checkpoint: set from the config */
	/* private: */
	float *dp_acc;     /* (n_params) the clipped sum */
	uint8_t *dp_bytes; /* random bytes for one step's noise */
	size_t dp_bytes_len;
	uint32_t *dp_rows; /* (batch) sampled rows of one chunk */
	uint8_t dp_pool[256];
	size_t dp_pool_left;
	float *drift;        /* (n_params) the drift estimate, or NULL (sched.drift 0) */
	double drift_h;      /* effective step sizes summed since the last merge */
	bool drift_primed;   /* a merge since train_alloc opened that window */
	uint32_t *perm;      /* permutation of the current epoch */
	uint32_t perm_rows;  /* rows it was drawn for (0: not drawn) */
	uint64_t perm_epoch; /* epoch it was drawn for */
	float *x;            /* (batch, dims) */
	uint8_t *y;          /* (batch) */
	uint32_t x_dims;
};

struct train_stats {
	double loss;          /* mean training loss over the steps' rows */
	double accuracy;      /* fraction of those rows predicted right (before the step) */
	uint64_t rows;        /* rows visited */
	uint32_t steps;       /* steps taken */
	uint32_t epochs_done; /* epoch boundaries crossed */
};

struct eval_result {
	double loss;     /* mean cross-entropy */
	double accuracy; /* fraction right */
	uint32_t rows;
};

/*
 * Creates a trainer: a model of spec initialised from model_seed, an
 * optimizer, and the data order of data_seed. Returns 0, LEARN_EBOUNDS or
 * -ENOMEM; train_free() it.
 */
int train_alloc(struct train **out, const struct model_spec *spec, uint64_t model_seed,
                const struct optim_params *op, uint32_t batch, uint64_t data_seed)
        __attribute__((warn_unused_result));
void train_free(struct train *t);

/* Constant rate, momentum kept, over epochs: what a new trainer starts with. */
void train_schedule_default(struct train_schedule *s, double epochs);
/* Checks ranges (see struct train_schedule). 0 or LEARN_EBOUNDS. */
int train_schedule_check(const struct train_schedule *s) __attribute__((warn_unused_result));
/* The learning-rate factor at progress e epochs (a pure function; above). */
double train_schedule_factor(const struct train_schedule *s, double e);
/*
 * Sets t's schedule (checked first: LEARN_EBOUNDS changes nothing). Call it
 * after train_alloc or checkpoint_load, before training. 0 or LEARN_EBOUNDS.
 */
int train_set_schedule(struct train *t, const struct train_schedule *s)
        __attribute__((warn_unused_result));

/*
 * Turns DP-SGD on (dp->clip > 0, dp->random set) or off (clip 0). 0,
 * LEARN_EBOUNDS (clip or sigma out of range, no random) or -ENOMEM.
 */
int train_set_dp(struct train *t, const struct train_dp *dp) __attribute__((warn_unused_result));
/* DP-SGD's sampling rate on ds: min(1, batch / rows). */
double train_dp_rate(const struct train *t, const struct dataset *ds);

/* Mini-batch steps in one epoch of ds: ceil(rows / batch). */
uint32_t train_steps_per_epoch(const struct train *t, const struct dataset *ds);

/*
 * Checks that ds fits the model (dims, classes, and an image shape for a
 * CNN). Returns 0 or LEARN_EMISMATCH.
 */
int train_check_data(const struct train *t, const struct dataset *ds)
        __attribute__((warn_unused_result));

/*
 * Runs n mini-batch steps on ds, continuing the data order where the last
 * call stopped (crossing epoch boundaries as needed). stats may be NULL.
 * Blocks for the duration (CPU bound). Returns 0, or LEARN_EMISMATCH if
 * ds does not fit, -EINVAL if ds is empty, -ENOMEM.
 */
int train_steps(struct train *t, const struct dataset *ds, uint64_t n, struct train_stats *stats)
        __attribute__((warn_unused_result));
/*
 * Merges a gossip result into the model: x += avg - snap on every
 * parameter, where snap is what this node contributed and avg the result
 * (equal to snap where the round did not average), so the steps taken while
 * the round ran are kept; then the momentum rule of the schedule. If any
 * merged value would not be finite, nothing changes and -ERANGE is returned
 * (a NaN never enters the model or the optimizer state). 0 or
 * -ERANGE. between, if not NULL, is called once half the parameters are
 * merged (a test hook: a process killed there leaves no checkpoint torn).
 */
int train_merge(struct train *t, const float *avg, const float *snap, void (*between)(void))
        __attribute__((warn_unused_result));

/* Runs the steps left in the current epoch (a whole epoch at a boundary). */
int train_epoch(struct train *t, const struct dataset *ds, struct train_stats *stats)
        __attribute__((warn_unused_result));

/*
 * Evaluates m on every row of ds, in batches of m->max_batch. confusion,
 * if not NULL, gets (classes, classes) counts [true][predicted]. Uses m's
 * scratch (not its grads). Returns 0, LEARN_EMISMATCH or -ENOMEM.
 */
int model_evaluate(struct model *m, const struct dataset *ds, struct eval_result *out,
                   uint32_t *confusion) __attribute__((warn_unused_result));

#endif
