/*
 * trainer.c: the pace of local training (see trainer.h).
 */
#include "node/trainer.h"

#include "learn/train.h"
#include "node/privacy.h"
#include "util/util.h"

void trainer_init(struct trainer *tr, struct train *t, const struct dataset *ds, uint64_t max_steps)
{
	tr->t = t;
	tr->ds = ds;
	tr->steps_per_epoch = MAX(train_steps_per_epoch(t, ds), 1);
	tr->max_steps = max_steps;
	tr->budget = 0;
	tr->debt = 0;
	tr->finished = false;
	tr->failed = false;
	tr->priv = NULL;
}

/* Of n steps due, those the privacy budget allows; it may end training. */
static uint64_t allowed(struct trainer *tr, uint64_t n)
{
	uint64_t ok;

	if (tr->priv == NULL || n == 0)
		return n;
	ok = privacy_allow(tr->priv, n);
	if (ok < n && tr->priv->failed)
		tr->failed = true;
	else if (ok < n && tr->priv->spent && tr->priv->reserved == 0)
		tr->finished = true;
	return ok;
}

void trainer_grant(struct trainer *tr, uint64_t n, uint64_t cap)
{
	uint64_t pay = MIN(tr->debt, n);

	tr->debt -= pay;
	tr->budget = MIN(tr->budget + (n - pay), cap);
}

void trainer_finish(struct trainer *tr)
{
	tr->finished = true;
	tr->budget = 0;
}

bool trainer_done(const struct trainer *tr, uint64_t steps)
{
	return tr->failed || tr->finished || (tr->max_steps > 0 && steps >= tr->max_steps);
}

uint64_t trainer_take(struct trainer *tr, uint64_t chunk)
{
	uint64_t n;

	if (trainer_done(tr, tr->t->steps)) {
		tr->budget = 0; /* trained enough: only average from now on */
		return 0;
	}
	n = MIN(tr->budget, chunk);
	if (tr->max_steps > 0)
		n = MIN(n, tr->max_steps - tr->t->steps);
	n = allowed(tr, n);
	tr->budget -= n;
	if (trainer_done(tr, tr->t->steps))
		tr->budget = 0;
	return n;
}

bool trainer_take_fresh(struct trainer *tr)
{
	if (trainer_done(tr, tr->t->steps) || allowed(tr, 1) == 0)
		return false;
	if (tr->budget > 0)
		tr->budget--;
	else if (tr->debt < tr->steps_per_epoch)
		tr->debt++;
	return true;
}

int trainer_steps(struct trainer *tr, uint64_t n, struct train_stats *st)
{
	int rc = train_steps(tr->t, tr->ds, n, st);

	if (tr->priv != NULL)
		privacy_taken(tr->priv, n); /* charged before: taken, or lost with the error */
	if (rc != 0)
		tr->failed = true;
	return rc;
}
