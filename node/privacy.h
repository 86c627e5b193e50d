/*
 * privacy.h: a node's differential-privacy budget ([Privacy], learn/dp.h).
 *
 * The plan, made once at start-up from the config and the Dataset's rows:
 * the sampling rate q = BatchSize / rows, the noise multiplier (given, or
 * the least that keeps Epochs of training within Epsilon), and what Epochs
 * would spend. `check` and `run` refuse a plan that cannot hold, naming
 * the numbers.
 *
 * The budget, kept by the trainer (node/trainer.h) while it trains: before
 * steps are taken they are charged to the ledger (DataDir/privacy.ledger,
 * written durably), a block of up to an epoch at a time, so that what a
 * crash loses is steps charged and never taken, never steps taken and not
 * charged. Once the next step would exceed Epsilon, training stops for good
 * and the node goes on averaging. A ledger that cannot be written stops
 * training too (fail closed).
 */
#ifndef SOTTO_NODE_PRIVACY_H
#define SOTTO_NODE_PRIVACY_H

#include "learn/dp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;

struct privacy {
	bool on;
	double q, sigma, clip, delta;
	double epsilon;         /* the budget; 0: none */
	uint64_t planned_steps; /* Epochs x steps per epoch */
	double planned_epsilon; /* what they spend from an empty ledger */
	struct dp_ledger ledger;
	uint64_t reserved; /* charged in the ledger, not yet taken */
	uint64_t block;    /* steps charged at once: an epoch */
	char path[1100];   /* the ledger file; empty: kept in memory only (simulator) */
	bool spent;        /* the budget allows no further step */
	bool failed;       /* the ledger could not be written */
};

/*
 * Makes the plan into *p (off when [Privacy] asks for nothing) for a
 * Dataset of `rows` rows trained in batches of `batch`, steps_per_epoch a
 * epoch. Adds config errors with the numbers and returns -EINVAL when the
 * plan cannot hold; else 0.
 */
int privacy_plan(struct privacy *p, struct config *cfg, uint32_t rows, uint32_t batch,
                 uint64_t steps_per_epoch) __attribute__((warn_unused_result));

/*
 * Reads the ledger at path (none yet: an empty one) and remembers path for
 * the charges to come. 0, or an error (logged) that must stop the start:
 * a damaged ledger is never taken for an empty one.
 */
int privacy_open_ledger(struct privacy *p, const char *path) __attribute__((warn_unused_result));

/*
 * Of n steps about to be taken, how many the budget allows now, charging
 * (and writing) the ledger first as needed. 0 with p->spent or p->failed
 * set when training must stop.
 */
uint64_t privacy_allow(struct privacy *p, uint64_t n);
/* n allowed steps were taken. */
void privacy_taken(struct privacy *p, uint64_t n);
/* Epsilon charged so far (steps reserved included: never less than spent). */
double privacy_spent(const struct privacy *p);

/*
 * The node's DP random source: ChaCha20 keyed from the OS's CSPRNG (libsodium
 * randombytes), rekeyed after each call and reseeded after each MiB.
 */
void privacy_random(void *arg, void *buf, size_t len);

#endif
