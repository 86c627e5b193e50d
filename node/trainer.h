/*
 * trainer.h: the pace of local training between gossip rounds, without
 * threads: the step budget the node grants, the steps owed, the one step
 * after every applied result, and the end of training. The training worker
 * (node/worker.c) runs it under its lock; the simulator (sim/) runs it in
 * virtual time, so both train exactly alike.
 *
 *   budget   steps granted and not yet taken (LocalEpochs per Interval,
 *            banked up to a cap)
 *   debt     steps taken after applies beyond the budget, paid back by
 *            later grants (at most an epoch's worth is remembered)
 *   done     failed, told to finish, or max_steps reached: no more steps
 *
 * Not here: the model math (learn/train.h), when to grant (node/gossip.h).
 */
#ifndef SOTTO_NODE_TRAINER_H
#define SOTTO_NODE_TRAINER_H

#include <stdbool.h>
#include <stdint.h>

struct dataset;
struct privacy;
struct train;
struct train_stats;

struct trainer {
	struct train *t;          /* borrowed */
	const struct dataset *ds; /* borrowed */
	uint64_t steps_per_epoch; /* >= 1 */
	uint64_t max_steps;       /* 0: no limit */
	uint64_t budget, debt;
	bool finished, failed;
	/*
	 * The privacy budget (node/privacy.h), borrowed; NULL: none. Steps are
	 * charged to it before they are taken; once it allows none, training
	 * is finished (failed if its ledger could not be written).
	 */
	struct privacy *priv;
};

/* Starts with no budget. t and ds are borrowed. */
void trainer_init(struct trainer *tr, struct train *t, const struct dataset *ds,
                  uint64_t max_steps);
/* Adds n steps to the budget (first paying back the debt), capped at cap. */
void trainer_grant(struct trainer *tr, uint64_t n, uint64_t cap);
/* No more training, whatever the budget. */
void trainer_finish(struct trainer *tr);
/* Whether training is over (failed, finished, or max_steps reached by steps). */
bool trainer_done(const struct trainer *tr, uint64_t steps);
/*
 * Steps to take now, at most chunk, taken out of the budget; 0 when none
 * are due. The caller then runs trainer_steps() with that many.
 */
uint64_t trainer_take(struct trainer *tr, uint64_t chunk);
/*
 * After a result was applied: whether one step is due now (training not
 * over), accounted from the budget or as debt. Run it before publishing the
 * model, so a node that trains is never exactly a result its group knows.
 */
bool trainer_take_fresh(struct trainer *tr);
/* Runs n steps (train_steps); a failure marks the trainer failed. 0 or its rc. */
int trainer_steps(struct trainer *tr, uint64_t n, struct train_stats *st)
        __attribute__((warn_unused_result));

#endif
