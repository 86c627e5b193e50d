/*
 * worker.c: the training thread. See worker.h for the contract.
 *
 * One mutex guards the command queue, the event queue, the pace of
 * training (node/trainer.h) and the published snapshot. The model itself is
 * touched only by this thread (training, applying, evaluating,
 * checkpointing are serialised here), so no step ever sees a half-applied
 * average.
 */
#include "node/worker.h"

#include "node/privacy.h"
#include "node/testhooks.h"
#include "node/trainer.h"

#include "learn/checkpoint.h"
#include "learn/dataset.h"
#include "learn/learn.h"
#include "learn/train.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WORKER_CHUNK_STEPS 16 /* steps between two looks at the command queue */
#define WORKER_MAX_EVENTS  256

enum cmd_type { CMD_APPLY, CMD_EVAL, CMD_CHECKPOINT };

struct cmd {
	struct cmd *next;
	enum cmd_type type;
	uint64_t round_id, seq;
	float *avg, *snap;
	bool evaluate;
	void *extra;
	size_t extra_len;
};

struct worker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;

	struct train *t;
	const struct dataset *train_ds, *test_ds;
	char *ckpt_path;
	int threads;
	struct trainer tr; /* budget, debt, end of training */
	struct cmd *head, *tail;

	float *snapshot; /* published parameters (n_params) */
	float *averaged; /* an applied result's model, evaluated after publishing */
	uint64_t snapshot_applied;
	uint64_t snapshot_steps; /* steps the model had taken when published */
	uint64_t apply_seq;

	struct worker_event events[WORKER_MAX_EVENTS];
	size_t n_events;
	worker_wake_fn wake;
	void *wake_arg;
};

static void cmd_free(struct cmd *c)
{
	if (c == NULL)
		return;
	free(c->avg);
	free(c->snap);
	free(c->extra);
	free(c);
}

/* Locked. Drops the oldest TRAINED events first if the loop falls behind. */
static void event_push(struct worker *w, const struct worker_event *ev)
{
	if (w->n_events == WORKER_MAX_EVENTS) {
		for (size_t i = 0; i < w->n_events; i++) {
			if (w->events[i].type == WORKER_EV_TRAINED) {
				memmove(&w->events[i], &w->events[i + 1],
				        (w->n_events - i - 1) * sizeof(*ev));
				w->n_events--;
				break;
			}
		}
		if (w->n_events == WORKER_MAX_EVENTS)
			return;
	}
	w->events[w->n_events++] = *ev;
}

static void post_cmd(struct worker *w, struct cmd *c)
{
	pthread_mutex_lock(&w->lock);
	c->next = NULL;
	if (w->tail != NULL)
		w->tail->next = c;
	else
		w->head = c;
	w->tail = c;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static int run_checkpoint(struct worker *w, const void *extra, size_t extra_len)
{
	int rc = checkpoint_save(w->ckpt_path, w->t, extra, extra_len);
	if (rc != 0)
		log_warnx("checkpoint %s: %s", w->ckpt_path, err_str(rc));
	return rc;
}

/* Dies half-way through a merge (test hook): the checkpoint file is untouched. */
static void apply_hook(void)
{
	testhook(TEST_PHASE_APPLY);
}

/* Runs one command on the worker thread (unlocked). */
static void run_cmd(struct worker *w, struct cmd *c, struct worker_event *ev)
{
	struct eval_result er;

	memset(ev, 0, sizeof(*ev));
	switch (c->type) {
	case CMD_APPLY:
		/* x += avg - snapshot: keeps the local progress made meanwhile. */
		ev->type = WORKER_EV_APPLIED;
		ev->round_id = c->round_id;
		ev->rc = train_merge(w->t, c->avg, c->snap, apply_hook);
		if (ev->rc == 0)
			ev->rc = run_checkpoint(w, c->extra, c->extra_len);
		break;
	case CMD_EVAL:
		ev->type = WORKER_EV_EVALUATED;
		if (w->test_ds == NULL) {
			ev->rc = -ENOENT;
			break;
		}
		ev->rc = model_evaluate(w->t->model, w->test_ds, &er, NULL);
		ev->loss = er.loss;
		ev->accuracy = er.accuracy;
		break;
	case CMD_CHECKPOINT:
		ev->type = WORKER_EV_CHECKPOINT;
		ev->rc = run_checkpoint(w, c->extra, c->extra_len);
		break;
	}
}

/*
 * Unlocked: evaluates the model with these parameters (its own, or the copy
 * keep_averaged made) and posts the EVALUATED event.
 */
static void evaluate(struct worker *w, float *params)
{
	struct cmd e = {.type = CMD_EVAL};
	struct worker_event ev;
	float *own = w->t->model->params;

	w->t->model->params = params;
	run_cmd(w, &e, &ev);
	w->t->model->params = own;
	pthread_mutex_lock(&w->lock);
	event_push(w, &ev);
	if (w->wake != NULL)
		w->wake(w->wake_arg);
	pthread_mutex_unlock(&w->lock);
}

/*
 * Unlocked: copies the freshly averaged model for evaluate(), which runs
 * after the model is published: the node's next round waits for the
 * publish, not for a pass over the test set (a low-rank chain's next round
 * comes within milliseconds). false without memory for the copy.
 */
static bool keep_averaged(struct worker *w)
{
	size_t n = w->t->model->n_params;

	if (w->averaged == NULL)
		w->averaged = malloc(n * sizeof(float));
	if (w->averaged == NULL)
		return false;
	memcpy(w->averaged, w->t->model->params, n * sizeof(float));
	return true;
}

static void publish(struct worker *w, uint64_t applied)
{
	memcpy(w->snapshot, w->t->model->params, w->t->model->n_params * sizeof(float));
	w->snapshot_applied = applied;
	w->snapshot_steps = w->t->steps;
}

/* Locked. Runs n steps unlocked and publishes a TRAINED (or FAILED) event. */
static void train_unlocked(struct worker *w, uint64_t n, uint64_t applied, bool do_publish)
{
	struct worker_event ev;
	struct train_stats ts;
	int rc;

	pthread_mutex_unlock(&w->lock);
	rc = train_steps(w->t, w->train_ds, n, &ts);
	pthread_mutex_lock(&w->lock);
	if (w->tr.priv != NULL)
		privacy_taken(w->tr.priv, n); /* charged before: taken, or lost with the error */
	memset(&ev, 0, sizeof(ev));
	ev.type = rc == 0 ? WORKER_EV_TRAINED : WORKER_EV_FAILED;
	ev.rc = rc;
	ev.steps = n;
	ev.epochs = (double)w->t->steps / (double)w->tr.steps_per_epoch;
	ev.loss = ts.loss;
	ev.accuracy = ts.accuracy;
	if (rc != 0)
		w->tr.failed = true;
	if (do_publish)
		publish(w, applied);
	event_push(w, &ev);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t applied = 0;

	learn_set_threads(w->threads);
	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct worker_event ev;
		struct cmd *c = w->head;
		uint64_t n;
		bool eval;

		if (c != NULL) {
			w->head = c->next;
			if (w->head == NULL)
				w->tail = NULL;
			pthread_mutex_unlock(&w->lock);
			run_cmd(w, c, &ev);
			if (c->type == CMD_APPLY)
				applied = c->seq;
			eval = c->type == CMD_APPLY && c->evaluate && ev.rc != -ERANGE;
			if (eval && !keep_averaged(w)) {
				evaluate(w, w->t->model->params); /* no memory for a copy: now */
				eval = false;
			}
			pthread_mutex_lock(&w->lock);
			/* One step before the model is published again (trainer.h). */
			if (c->type == CMD_APPLY && ev.rc != -ERANGE && trainer_take_fresh(&w->tr))
				train_unlocked(w, 1, applied, false);
			publish(w, applied);
			event_push(w, &ev);
			cmd_free(c);
			if (w->wake != NULL)
				w->wake(w->wake_arg);
			if (eval) {
				pthread_mutex_unlock(&w->lock);
				evaluate(w, w->averaged);
				pthread_mutex_lock(&w->lock);
			}
			continue;
		}
		if (w->stop)
			break;
		n = trainer_take(&w->tr, WORKER_CHUNK_STEPS);
		if (n == 0) {
			pthread_cond_wait(&w->cond, &w->lock);
			continue;
		}
		train_unlocked(w, n, applied, true);
		if (w->wake != NULL)
			w->wake(w->wake_arg);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int worker_start(struct worker **out, struct train *t, const struct dataset *train_ds,
                 const struct dataset *test_ds, const char *checkpoint_path, int threads,
                 uint64_t max_steps, worker_wake_fn wake, void *wake_arg)
{
	struct worker *w;
	int rc;

	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	w->t = t;
	w->train_ds = train_ds;
	w->test_ds = test_ds;
	w->threads = threads;
	trainer_init(&w->tr, t, train_ds, max_steps);
	w->wake = wake;
	w->wake_arg = wake_arg;
	w->ckpt_path = strdup(checkpoint_path);
	w->snapshot = malloc(t->model->n_params * sizeof(float));
	if (w->ckpt_path == NULL || w->snapshot == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	memcpy(w->snapshot, t->model->params, t->model->n_params * sizeof(float));
	w->snapshot_steps = t->steps;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	rc = -pthread_create(&w->thread, NULL, worker_main, w);
	if (rc != 0) {
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		goto fail;
	}
	*out = w;
	return 0;
fail:
	free(w->ckpt_path);
	free(w->snapshot);
	free(w->averaged);
	free(w);
	return rc;
}

void worker_grant(struct worker *w, uint64_t n, uint64_t cap)
{
	pthread_mutex_lock(&w->lock);
	trainer_grant(&w->tr, n, cap);
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void worker_set_privacy(struct worker *w, struct privacy *p)
{
	pthread_mutex_lock(&w->lock);
	w->tr.priv = p;
	pthread_mutex_unlock(&w->lock);
}

bool worker_privacy(struct worker *w, double *spent, uint64_t *steps)
{
	bool on;

	pthread_mutex_lock(&w->lock);
	on = w->tr.priv != NULL && w->tr.priv->on;
	*spent = on ? privacy_spent(w->tr.priv) : 0.0;
	*steps = on ? w->tr.priv->ledger.steps : 0;
	pthread_mutex_unlock(&w->lock);
	return on;
}

void worker_finish(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	trainer_finish(&w->tr);
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

bool worker_finished(struct worker *w)
{
	bool done;

	pthread_mutex_lock(&w->lock);
	done = trainer_done(&w->tr, w->snapshot_steps);
	pthread_mutex_unlock(&w->lock);
	return done;
}

uint64_t worker_steps_per_epoch(const struct worker *w)
{
	return w->tr.steps_per_epoch;
}

size_t worker_n_params(const struct worker *w)
{
	return w->t->model->n_params;
}

const struct model *worker_model(const struct worker *w)
{
	return w->t->model;
}

uint64_t worker_snapshot(struct worker *w, float *x, uint64_t *steps)
{
	uint64_t applied;

	pthread_mutex_lock(&w->lock);
	memcpy(x, w->snapshot, w->t->model->n_params * sizeof(float));
	applied = w->snapshot_applied;
	if (steps != NULL)
		*steps = w->snapshot_steps;
	pthread_mutex_unlock(&w->lock);
	return applied;
}

static struct cmd *cmd_new(enum cmd_type type, const void *extra, size_t extra_len)
{
	struct cmd *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->type = type;
	if (extra_len > 0) {
		c->extra = malloc(extra_len);
		if (c->extra == NULL) {
			free(c);
			return NULL;
		}
		memcpy(c->extra, extra, extra_len);
		c->extra_len = extra_len;
	}
	return c;
}

uint64_t worker_apply(struct worker *w, uint64_t round_id, float *avg, float *snapshot,
                      const void *extra, size_t extra_len, bool evaluate)
{
	struct cmd *c = cmd_new(CMD_APPLY, extra, extra_len);
	uint64_t seq;

	if (c == NULL) {
		free(avg);
		free(snapshot);
		return 0;
	}
	c->round_id = round_id;
	c->evaluate = evaluate;
	c->avg = avg;
	c->snap = snapshot;
	pthread_mutex_lock(&w->lock);
	seq = c->seq = ++w->apply_seq;
	pthread_mutex_unlock(&w->lock);
	post_cmd(w, c);
	return seq;
}

void worker_evaluate(struct worker *w)
{
	struct cmd *c = cmd_new(CMD_EVAL, NULL, 0);
	if (c != NULL)
		post_cmd(w, c);
}

void worker_checkpoint(struct worker *w, const void *extra, size_t extra_len)
{
	struct cmd *c = cmd_new(CMD_CHECKPOINT, extra, extra_len);
	if (c != NULL)
		post_cmd(w, c);
}

size_t worker_events(struct worker *w, struct worker_event *ev, size_t cap)
{
	size_t n;

	pthread_mutex_lock(&w->lock);
	n = MIN(cap, w->n_events);
	memcpy(ev, w->events, n * sizeof(*ev));
	memmove(w->events, w->events + n, (w->n_events - n) * sizeof(*ev));
	w->n_events -= n;
	pthread_mutex_unlock(&w->lock);
	return n;
}

int worker_stop(struct worker *w, const void *extra, size_t extra_len)
{
	int rc = 0;

	if (w == NULL)
		return 0;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL); /* it drains the queued commands first */
	if (extra != NULL || extra_len > 0)
		rc = run_checkpoint(w, extra, extra_len);
	while (w->head != NULL) {
		struct cmd *c = w->head;
		w->head = c->next;
		cmd_free(c);
	}
	train_free(w->t);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w->snapshot);
	free(w->averaged);
	free(w->ckpt_path);
	free(w);
	return rc;
}
