/*
 * dp.h: differential privacy of local training, record by record: the
 * Rényi-DP accountant of DP-SGD and its ledger.
 *
 * DP-SGD (Abadi et al. 2016) as learn/train.c runs it: each step samples
 * every row of the dataset independently with probability q (Poisson
 * sampling), clips each sampled row's gradient to L2 norm ClipNorm, adds
 * Gaussian noise of standard deviation sigma x ClipNorm to their sum and
 * divides by the expected batch, q x rows. One such step is the sampled
 * Gaussian mechanism; its Rényi divergence of order alpha is computed as in
 * Mironov, Talwar and Zhang 2019 (integer alpha: the binomial sum; other
 * alpha: the two-sided series), the same numbers as TensorFlow Privacy's
 * and Opacus's RDP accountants. RDP adds up over steps, whatever q and sigma
 * each step used, and converts to (epsilon, delta) with Balle et al. 2020
 * (Proposition 12 / Canonne et al.), minimised over the orders below.
 *
 * The ledger is what a node has spent: the steps charged and the RDP summed
 * per order. It is written before the steps it charges are taken, so a
 * crash can only overstate what was spent, never understate it.
 *
 * Pure functions and a text format: no I/O except dp_ledger_load/_save.
 */
#ifndef SOTTO_LEARN_DP_H
#define SOTTO_LEARN_DP_H

#include <stddef.h>
#include <stdint.h>

/* The orders: 1.1, 1.2, ..., 10.9, then 12, 13, ..., 63 (Opacus's default). */
#define DP_N_ORDERS 151

/* The ledger file's limits: a longer file is refused unread. */
#define DP_LEDGER_MAX_BYTES 16384

struct dp_ledger {
	uint64_t steps;          /* steps charged */
	double rdp[DP_N_ORDERS]; /* summed RDP at dp_order(i) */
};

/* The i-th order (0 <= i < DP_N_ORDERS). */
double dp_order(size_t i);

/*
 * RDP of one step of the sampled Gaussian mechanism with sampling rate q
 * (0..1) and noise multiplier sigma (> 0) at order alpha (> 1). 0 for
 * q = 0; +inf for sigma = 0.
 */
double dp_rdp_step(double q, double sigma, double alpha);

/*
 * The smallest epsilon over the orders for summed RDP values rdp[] at
 * delta (0 < delta < 1); *order (may be NULL) gets the order that gave it.
 */
double dp_epsilon(const double rdp[DP_N_ORDERS], double delta, double *order);

/* The same over any n orders (> 1) and their RDP values. */
double dp_epsilon_orders(const double *orders, const double *rdp, size_t n, double delta,
                         double *order);

/* Epsilon after `steps` steps of (q, sigma) on top of ledger l (NULL: none). */
double dp_epsilon_after(const struct dp_ledger *l, double q, double sigma, uint64_t steps,
                        double delta);

/*
 * The smallest noise multiplier (to 0.1%) whose `steps` steps at q spend
 * at most epsilon at delta; 0 if none up to DP_SIGMA_MAX does.
 */
#define DP_SIGMA_MAX 1000.0
double dp_sigma_for(double q, uint64_t steps, double delta, double epsilon);

/*
 * The most steps (at most cap) of (q, sigma) that ledger l can still take
 * without its epsilon at delta exceeding `epsilon`.
 */
uint64_t dp_steps_within(const struct dp_ledger *l, double q, double sigma, double delta,
                         double epsilon, uint64_t cap);

/* Adds `steps` steps of (q, sigma) to l. */
void dp_ledger_charge(struct dp_ledger *l, double q, double sigma, uint64_t steps);

/*
 * The ledger as text (docs/privacy.md): a first line "sotto-privacy-ledger
 * 1", "steps N", then one "rdp ORDER VALUE" line per order in order, values
 * in C99 hex floats so that they read back bit for bit. dp_ledger_encode
 * writes into buf (cap bytes, DP_LEDGER_MAX_BYTES is enough) and returns
 * the length, or -ENOSPC. dp_ledger_decode accepts exactly that form (no
 * other lines, orders as listed, values finite and >= 0) and returns 0 or
 * LEARN_ECORRUPT / LEARN_EVERSION / LEARN_EMAGIC, changing nothing then.
 */
int dp_ledger_encode(const struct dp_ledger *l, char *buf, size_t cap);
int dp_ledger_decode(struct dp_ledger *l, const char *text, size_t len)
        __attribute__((warn_unused_result));

/*
 * Reads path into *l: 0, -ENOENT when there is none yet (l is then zero),
 * or a decode error / -errno. dp_ledger_save replaces path atomically and
 * durably (written, synced, renamed, directory synced), mode 0600.
 */
int dp_ledger_load(struct dp_ledger *l, const char *path) __attribute__((warn_unused_result));
int dp_ledger_save(const struct dp_ledger *l, const char *path) __attribute__((warn_unused_result));

/* A source of uniformly random bytes: the OS's CSPRNG in a node, seeded in tests. */
typedef void (*dp_random_fn)(void *arg, void *buf, size_t len);

/*
 * acc[i] += sd * z_i for n independent standard normal z_i: the ziggurat
 * method (Marsaglia and Tsang 2000) with 256 layers. Each sample starts
 * from its own 64-bit uniform whose disjoint bits pick the layer (8), the
 * sign (1) and the abscissa (53); the about 1% that fall outside a layer's
 * inner rectangle draw more for the wedge or the tail (exact rejection, no
 * approximation). Random bytes come through buf (len bytes, a multiple of 8
 * and at least 64), filled from random(arg, ...) as they are used up (16
 * KiB, filled about 50 times for 100,000 samples, is faster than one fill:
 * the bytes are read while they are in cache).
 */
void dp_gauss_add(float *acc, size_t n, double sd, uint8_t *buf, size_t len, dp_random_fn random,
                  void *arg);

#endif
