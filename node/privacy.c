/*
 * privacy.c: the plan and the budget of [Privacy] (see privacy.h).
 */
#include "node/privacy.h"

#include "config/config.h"
#include "learn/learn.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

int privacy_plan(struct privacy *p, struct config *cfg, uint32_t rows, uint32_t batch,
                 uint64_t steps_per_epoch)
{
	const double eps = cfg->privacy.epsilon;
	size_t errors = cfg->n_errors;
	char v[32];

	memset(p, 0, sizeof(*p));
	if (eps <= 0.0 && cfg->privacy.noise_multiplier <= 0.0)
		return 0;
	p->on = true;
	p->q = rows > 0 ? MIN(1.0, (double)batch / (double)rows) : 1.0;
	p->clip = cfg->privacy.clip_norm;
	p->delta = cfg->privacy.delta;
	p->epsilon = eps;
	p->planned_steps = (uint64_t)cfg->training.epochs * steps_per_epoch;
	p->block = MAX(steps_per_epoch, 1);
	snprintf(v, sizeof(v), "%g", p->delta);
	if (rows > 0 && p->delta * (double)rows >= 1.0)
		config_error_add(cfg, cfg->privacy.line_delta, v,
		                 "[Privacy] Delta %g is not below 1/rows = 1/%u: at that delta one "
		                 "record could leak outright; use at most %.1g",
		                 p->delta, rows, 0.1 / (double)rows);
	if (cfg->privacy.noise_multiplier > 0.0) {
		p->sigma = cfg->privacy.noise_multiplier;
		p->planned_epsilon =
		        dp_epsilon_after(NULL, p->q, p->sigma, p->planned_steps, p->delta);
		if (eps > 0.0 && p->planned_epsilon > eps) {
			double need = dp_sigma_for(p->q, p->planned_steps, p->delta, eps);
			uint64_t fit = dp_steps_within(NULL, p->q, p->sigma, p->delta, eps,
			                               p->planned_steps);
			snprintf(v, sizeof(v), "%g", p->sigma);
			config_error_add(
			        cfg, cfg->privacy.line_noise_multiplier, v,
			        "[Privacy] Epochs %d at NoiseMultiplier %g would spend epsilon "
			        "%.3g, over the Epsilon %g: raise NoiseMultiplier to %.3g, or "
			        "lower Epochs to %llu",
			        cfg->training.epochs, p->sigma, p->planned_epsilon, eps, need,
			        (unsigned long long)(fit / MAX(steps_per_epoch, 1)));
		}
	} else {
		p->sigma = dp_sigma_for(p->q, p->planned_steps, p->delta, eps);
		snprintf(v, sizeof(v), "%g", eps);
		if (p->sigma == 0.0)
			config_error_add(cfg, cfg->privacy.line_epsilon, v,
			                 "[Privacy] Epsilon %g cannot hold %d Epochs at any "
			                 "NoiseMultiplier up to %g: raise Epsilon or lower Epochs",
			                 eps, cfg->training.epochs, DP_SIGMA_MAX);
		else
			p->planned_epsilon =
			        dp_epsilon_after(NULL, p->q, p->sigma, p->planned_steps, p->delta);
	}
	return cfg->n_errors > errors ? -EINVAL : 0;
}

int privacy_open_ledger(struct privacy *p, const char *path)
{
	int rc;

	if (snprintf(p->path, sizeof(p->path), "%s", path) >= (int)sizeof(p->path))
		return -ENAMETOOLONG;
	rc = dp_ledger_load(&p->ledger, path);
	if (rc == -ENOENT)
		return 0;
	if (rc != 0)
		log_errorx("%s: %s (the privacy ledger is kept: restore it from a backup, or "
		           "move it away only if this site's training starts over with fresh data)",
		           path, err_str(rc));
	return rc;
}

uint64_t privacy_allow(struct privacy *p, uint64_t n)
{
	uint64_t more, fit;
	int rc;

	if (!p->on || n <= p->reserved)
		return n;
	if (p->spent || p->failed)
		return p->reserved;
	more = MAX(n - p->reserved, p->block);
	fit = p->epsilon > 0.0
	              ? dp_steps_within(&p->ledger, p->q, p->sigma, p->delta, p->epsilon, more)
	              : more;
	if (fit > 0) {
		struct dp_ledger next = p->ledger;
		dp_ledger_charge(&next, p->q, p->sigma, fit);
		rc = p->path[0] != '\0' ? dp_ledger_save(&next, p->path) : 0;
		if (rc != 0) {
			log_errorx("privacy ledger %s: %s: training stops (averaging goes on)",
			           p->path, err_str(rc));
			p->failed = true;
			return p->reserved;
		}
		p->ledger = next;
		p->reserved += fit;
	}
	if (fit < more && p->reserved < n) {
		p->spent = true;
		log_info("privacy budget spent: epsilon %.3g of %g at delta %g; training stops, "
		         "averaging goes on",
		         privacy_spent(p), p->epsilon, p->delta);
	}
	return MIN(n, p->reserved);
}

void privacy_taken(struct privacy *p, uint64_t n)
{
	if (p->on)
		p->reserved -= MIN(n, p->reserved);
}

double privacy_spent(const struct privacy *p)
{
	return p->on ? dp_epsilon(p->ledger.rdp, p->delta, NULL) : 0.0;
}

/*
 * The DP random source of this thread: ChaCha20 under a key from the OS,
 * replaced after every call by one more block of its own stream (fast key
 * erasure: bytes already handed out cannot be recomputed from the state),
 * and drawn from the OS again after every MiB. Before, each call drew from
 * the OS (one getrandom() per 256 bytes in libsodium), a third of a
 * private step for the MLP.
 */
static _Thread_local struct {
	uint8_t key[crypto_stream_chacha20_KEYBYTES];
	size_t since_seed;
	bool seeded;
} dp_rng;

void privacy_random(void *arg, void *buf, size_t len)
{
	static const uint8_t out_nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
	static const uint8_t key_nonce[crypto_stream_chacha20_NONCEBYTES] = {1};
	uint8_t next[crypto_stream_chacha20_KEYBYTES];

	(void)arg;
	if (!dp_rng.seeded || dp_rng.since_seed >= (1u << 20)) {
		randombytes_buf(dp_rng.key, sizeof(dp_rng.key));
		dp_rng.since_seed = 0;
		dp_rng.seeded = true;
	}
	crypto_stream_chacha20(buf, len, out_nonce, dp_rng.key);
	crypto_stream_chacha20(next, sizeof(next), key_nonce, dp_rng.key);
	memcpy(dp_rng.key, next, sizeof(next));
	sodium_memzero(next, sizeof(next));
	dp_rng.since_seed += len;
}
