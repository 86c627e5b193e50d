/*
 * rand.h: libsodium's randombytes made deterministic for the simulator.
 *
 * sim_rand_install() replaces libsodium's generator (before sodium_init) by
 * streams of util/rng.h: each simulated node draws from its own stream, the
 * simulator from another, so a run is a pure function of its seed whatever
 * the order in which nodes happen to be created. Never linked into `sotto`:
 * these keys are predictable by design.
 *
 * Not here: what the simulator does with them (sim.c).
 */
#ifndef SOTTO_SIM_RAND_H
#define SOTTO_SIM_RAND_H

#include "util/rng.h"

/* Makes randombytes_* draw from the current stream. Call before sodium_init(). 0 or -1. */
int sim_rand_install(void);
/* The stream randombytes_* draw from from now on (NULL: the simulator's own). */
void sim_rand_use(struct rng *r);
/* The simulator's own stream (seeded by sim_rand_seed). */
void sim_rand_seed(uint64_t seed);

#endif
