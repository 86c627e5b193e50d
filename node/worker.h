/*
 * worker.h: the training worker thread of a node.
 *
 * The worker owns the model (struct train) and trains it in chunks of a few
 * mini-batches, so the event loop never waits on training, evaluation or a
 * checkpoint write. Between chunks it runs the commands the loop posted
 * (apply a round's average, evaluate, checkpoint, stop) and publishes a
 * snapshot of the parameters that the loop copies when it contributes to a
 * round. Results come back as events, with an ev_async to wake the loop.
 *
 * Training is paced, not free-running: the loop grants a budget of steps
 * (worker_grant), LocalEpochs' worth per gossip interval, so local training
 * and averaging keep their ratio whatever the machine's speed. The one step
 * after each apply counts against that budget (or the next grant).
 *
 * Not here: what a round is (node/round.h) or when rounds happen (daemon.c).
 */
#ifndef SOTTO_NODE_WORKER_H
#define SOTTO_NODE_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dataset;
struct model;
struct privacy;
struct train;
struct worker;

enum worker_event_type {
	WORKER_EV_TRAINED,    /* a chunk of steps was taken */
	WORKER_EV_APPLIED,    /* a round's result was applied (and checkpointed) */
	WORKER_EV_EVALUATED,  /* evaluation finished */
	WORKER_EV_CHECKPOINT, /* a checkpoint write finished (rc says how) */
	WORKER_EV_FAILED,     /* training failed (rc); the worker stopped training */
};

struct worker_event {
	enum worker_event_type type;
	int rc;
	uint64_t round_id;     /* APPLIED */
	uint64_t steps;        /* TRAINED: steps in this chunk */
	double epochs;         /* TRAINED: epochs trained in total */
	double loss, accuracy; /* TRAINED (training batch figures), EVALUATED (test) */
};

/* Called on the worker thread after events were queued: wake the loop. */
typedef void (*worker_wake_fn)(void *arg);

/*
 * Starts the thread. Takes ownership of t; borrows the datasets (test may
 * be NULL). checkpoint_path is where checkpoints go. Training stops for
 * good once the model has taken max_steps steps in total (0: never); the
 * node then only averages. 0 or -errno.
 */
int worker_start(struct worker **out, struct train *t, const struct dataset *train_ds,
                 const struct dataset *test_ds, const char *checkpoint_path, int threads,
                 uint64_t max_steps, worker_wake_fn wake, void *wake_arg)
        __attribute__((warn_unused_result));

/* Adds n mini-batch steps to the budget, capped at cap steps. */
void worker_grant(struct worker *w, uint64_t n, uint64_t cap);
/*
 * Ends training for good at the step the model is at (the node then only
 * averages), as if max_steps had been reached there.
 */
void worker_finish(struct worker *w);
/*
 * Training from now on is charged to p (node/privacy.h; borrowed, used
 * under the worker's lock; NULL: none). Set it before the first grant.
 */
void worker_set_privacy(struct worker *w, struct privacy *p);
/* Whether DP-SGD is on; the epsilon charged so far and the steps charged. */
bool worker_privacy(struct worker *w, double *spent, uint64_t *steps);
/* Whether training is over (max_steps reached, or finished) in the published model. */
bool worker_finished(struct worker *w);
/* Steps per epoch of this node's data. */
uint64_t worker_steps_per_epoch(const struct worker *w);
/* Number of parameters of the model. */
size_t worker_n_params(const struct worker *w);

/*
 * Copies the latest published parameters into x (worker_n_params floats)
 * and, if steps is not NULL, the number of training steps they include.
 * Returns the sequence number of the last applied result they include, so
 * the loop can tell a snapshot that predates an apply it posted. While
 * training goes on, every apply is followed by one step before the model
 * is published again (so the published model is never exactly a result).
 */
uint64_t worker_snapshot(struct worker *w, float *x, uint64_t *steps);

/*
 * Posts: x += avg - snapshot (all coordinates; the caller set avg equal to
 * snapshot where the round did not average), then a checkpoint carrying
 * extra (copied), then, if evaluate, an evaluation of the freshly averaged
 * model: of a copy, after the model is published and the APPLIED event
 * posted, so the node's next round does not wait for it (EVALUATED comes
 * after APPLIED). Takes ownership of avg and snapshot (malloc'd). Returns the apply
 * sequence number (worker_snapshot reports it once applied).
 */
uint64_t worker_apply(struct worker *w, uint64_t round_id, float *avg, float *snapshot,
                      const void *extra, size_t extra_len, bool evaluate);
/* Posts an evaluation on the test set. */
void worker_evaluate(struct worker *w);
/* Posts a checkpoint carrying extra (copied). */
void worker_checkpoint(struct worker *w, const void *extra, size_t extra_len);

/*
 * Moves up to cap queued events into ev; returns how many. Loop thread.
 */
size_t worker_events(struct worker *w, struct worker_event *ev, size_t cap);

/*
 * Stops the thread after it finished the command in progress, writes a
 * last checkpoint with extra (if extra_len > 0 or extra != NULL), joins,
 * and frees everything. Returns the last checkpoint's rc. NULL-safe.
 */
int worker_stop(struct worker *w, const void *extra, size_t extra_len);

/* Model segments (for the codec): the worker's model, read-only, immutable. */
const struct model *worker_model(const struct worker *w);

#endif
