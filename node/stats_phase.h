/*
 * stats_phase.h: the statistics phase of [Training] Standardize =
 * federated, before a node trains.
 *
 * The node averages the vector (mean x_j, mean x_j^2) of its own Dataset,
 * feature by feature, through the same secure rounds as a model
 * (node/gossip.c with a MODEL_STATS layout, its own push-sum weight: rows
 * / 1000), with peers in the same phase. The push-sum average of the
 * per-site means, weighted by rows, is the pooled mean of every site's
 * rows, so each node's estimate converges to the statistics of all the
 * data put together, while each site only ever gives out its vector inside
 * masked sums (docs/learning.md, "Federated standardisation").
 *
 * Vector layout: x[0..F) the means, x[F..2F) the second moments; codec
 * segments of ceil(F / 127) features each, so the clip of a small feature
 * does not follow a large one's (per feature up to 127 features).
 *
 * A site's rows enter one sum: its first input is its own moments, fresh,
 * protected by the fresh-input rule; later inputs are results its group
 * knows (node/gossip.c, stats_input).
 *
 * The phase is over for a node once STATS_CALM_ROUNDS results in a row
 * moved every feature's mean and deviation by less than STATS_CALM_MOVE of
 * the deviation; or, with at least one such result, once no round has
 * completed for a while (its peers have moved on to training). The daemon
 * drives it (node/daemon.c) and writes the result to DataDir/
 * standardize.stats.
 */
#ifndef SOTTO_NODE_STATS_PHASE_H
#define SOTTO_NODE_STATS_PHASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dataset;
struct featstats;
struct model;

#define STATS_CALM_ROUNDS 5
#define STATS_CALM_MOVE   1e-3
#define STATS_MAX_SEG     127 /* features per codec segment at most this many segments */

struct stats_phase;

/* The phase for train's features (not standardised). 0, -ENOMEM or LEARN_EBOUNDS. */
int stats_phase_alloc(struct stats_phase **out, const struct dataset *train)
        __attribute__((warn_unused_result));
void stats_phase_free(struct stats_phase *sp);

/* The vector's layout, for the gossip core (borrowed for sp's life). */
const struct model *stats_phase_model(const struct stats_phase *sp);

/*
 * Resuming: the last result applied before a restart becomes the estimate.
 * False (and nothing changes) if it cannot be one: not finite, or a
 * negative second moment.
 */
bool stats_phase_resume(struct stats_phase *sp, const float *last);

/*
 * gossip_ops.snapshot: this site's own moments into x and 1 into *steps;
 * returns the sequence number of the last result applied. The core puts
 * them in its first round only (node/gossip.c, stats_input).
 */
uint64_t stats_phase_snapshot(const struct stats_phase *sp, float *x, uint64_t *steps);

/*
 * A round's result: the estimate becomes avg, seq is remembered. Returns
 * how far it moved the statistics (largest change of a mean or a
 * deviation, in deviations), and counts calm results.
 */
double stats_phase_apply(struct stats_phase *sp, const float *avg, const float *snapshot,
                         uint64_t seq);

/* Results applied, and calm ones in a row. */
uint64_t stats_phase_applied(const struct stats_phase *sp);
unsigned stats_phase_calm(const struct stats_phase *sp);

/* The statistics of the current estimate. 0, -ENOMEM or LEARN_EBOUNDS. */
int stats_phase_result(const struct stats_phase *sp, struct featstats *fs)
        __attribute__((warn_unused_result));

#endif
