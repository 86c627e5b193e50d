/*
 * dp.c: the RDP accountant of DP-SGD and its ledger (see dp.h).
 *
 * The series are those of TensorFlow Privacy's rdp_accountant.py
 * (_compute_log_a_int, _compute_log_a_frac), worked in logarithms so that
 * no term overflows: A_alpha = E_{z~mu0}[(mu(z)/mu0(z))^alpha] with
 * mu = (1-q) N(0, sigma^2) + q N(1, sigma^2), and RDP = log(A) / (alpha-1).
 */
#include "learn/dp.h"

#include "learn/learn.h"
#include "util/file.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double dp_order(size_t i)
{
	/* 99 orders 1.1 .. 10.9 in tenths, then the 52 integers 12 .. 63. */
	if (i < 99)
		return 1.0 + (double)(i + 1) / 10.0;
	return (double)(12 + (i - 99));
}

/* log(exp(a) + exp(b)) */
static double log_add(double a, double b)
{
	double lo = MIN(a, b), hi = MAX(a, b);

	if (lo == -INFINITY)
		return hi;
	return log1p(exp(lo - hi)) + hi;
}

/* log(exp(a) - exp(b)), a >= b */
static double log_sub(double a, double b)
{
	if (b == -INFINITY)
		return a;
	if (a <= b)
		return -INFINITY;
	if (a - b > 700.0)
		return a; /* exp(b - a) is below double precision */
	return log(expm1(a - b)) + b;
}

/* log(erfc(x)), also where erfc underflows (x > 26). */
static double log_erfc(double x)
{
	double r = erfc(x);

	if (r > 0.0)
		return log(r);
	/* The asymptotic series of erfc at +inf (TF Privacy's fallback). */
	return -log(M_PI) / 2 - log(x) - x * x - 0.5 * pow(x, -2) + 0.625 * pow(x, -4) -
	       37.0 / 24.0 * pow(x, -6) + 353.0 / 64.0 * pow(x, -8);
}

static double log_a_int(double q, double sigma, int alpha)
{
	double log_a = -INFINITY;

	for (int i = 0; i <= alpha; i++) {
		double log_binom = lgamma(alpha + 1.0) - lgamma(i + 1.0) - lgamma(alpha - i + 1.0);
		double s = log_binom + i * log(q) + (alpha - i) * log1p(-q) +
		           ((double)i * i - i) / (2.0 * sigma * sigma);
		log_a = log_add(log_a, s);
	}
	return log_a;
}

static double log_a_frac(double q, double sigma, double alpha)
{
	double log_a0 = -INFINITY, log_a1 = -INFINITY;
	double z0 = sigma * sigma * log(1.0 / q - 1.0) + 0.5;
	double log_coef = 0.0; /* log |binom(alpha, i)|, by the recurrence */
	bool positive = true;  /* sign of binom(alpha, i) */

	for (int i = 0; i < 100000; i++) {
		double j = alpha - i;
		double log_t0 = log_coef + i * log(q) + j * log1p(-q);
		double log_t1 = log_coef + j * log(q) + i * log1p(-q);
		double log_e0 = log(0.5) + log_erfc((i - z0) / (M_SQRT2 * sigma));
		double log_e1 = log(0.5) + log_erfc((z0 - j) / (M_SQRT2 * sigma));
		double log_s0 = log_t0 + ((double)i * i - i) / (2.0 * sigma * sigma) + log_e0;
		double log_s1 = log_t1 + (j * j - j) / (2.0 * sigma * sigma) + log_e1;

		if (positive) {
			log_a0 = log_add(log_a0, log_s0);
			log_a1 = log_add(log_a1, log_s1);
		} else {
			log_a0 = log_sub(log_a0, log_s0);
			log_a1 = log_sub(log_a1, log_s1);
		}
		if (MAX(log_s0, log_s1) < -30.0)
			break;
		/* binom(alpha, i+1) = binom(alpha, i) (alpha - i) / (i + 1) */
		if (j == 0.0)
			break; /* cannot happen for a fractional alpha */
		log_coef += log(fabs(j)) - log(i + 1.0);
		if (j < 0.0)
			positive = !positive;
	}
	return log_add(log_a0, log_a1);
}

double dp_rdp_step(double q, double sigma, double alpha)
{
	if (q <= 0.0)
		return 0.0;
	if (sigma <= 0.0 || isinf(alpha))
		return INFINITY;
	if (q >= 1.0)
		return alpha / (2.0 * sigma * sigma);
	if (alpha == floor(alpha))
		return log_a_int(q, sigma, (int)alpha) / (alpha - 1.0);
	return log_a_frac(q, sigma, alpha) / (alpha - 1.0);
}

double dp_epsilon(const double rdp[DP_N_ORDERS], double delta, double *order)
{
	double orders[DP_N_ORDERS];

	for (size_t i = 0; i < DP_N_ORDERS; i++)
		orders[i] = dp_order(i);
	return dp_epsilon_orders(orders, rdp, DP_N_ORDERS, delta, order);
}

double dp_epsilon_orders(const double *orders, const double *rdp, size_t n, double delta,
                         double *order)
{
	double best = INFINITY, best_order = 0.0;

	for (size_t i = 0; i < n; i++) {
		double a = orders[i], r = rdp[i], eps;

		if (!(r >= 0.0) || isinf(r) || !(a > 1.01))
			continue;
		if (delta * delta + expm1(-r) >= 0.0)
			eps = 0.0; /* the divergence is too small to matter at this delta */
		else
			eps = r + log1p(-1.0 / a) - log(delta * a) / (a - 1.0);
		if (eps < best) {
			best = eps;
			best_order = a;
		}
	}
	if (order != NULL)
		*order = best_order;
	return MAX(best, 0.0);
}

double dp_epsilon_after(const struct dp_ledger *l, double q, double sigma, uint64_t steps,
                        double delta)
{
	double rdp[DP_N_ORDERS];

	for (size_t i = 0; i < DP_N_ORDERS; i++)
		rdp[i] = (l != NULL ? l->rdp[i] : 0.0) +
		         (steps > 0 ? (double)steps * dp_rdp_step(q, sigma, dp_order(i)) : 0.0);
	return dp_epsilon(rdp, delta, NULL);
}

double dp_sigma_for(double q, uint64_t steps, double delta, double epsilon)
{
	double lo = 0.0, hi = DP_SIGMA_MAX;

	if (steps == 0 || q <= 0.0)
		return 0.0; /* nothing is spent: any noise will do; the caller decides */
	if (dp_epsilon_after(NULL, q, hi, steps, delta) > epsilon)
		return 0.0;
	while (hi - lo > 1e-3 * hi) {
		double mid = 0.5 * (lo + hi);
		if (mid > 0.0 && dp_epsilon_after(NULL, q, mid, steps, delta) <= epsilon)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

uint64_t dp_steps_within(const struct dp_ledger *l, double q, double sigma, double delta,
                         double epsilon, uint64_t cap)
{
	uint64_t lo = 0, hi = cap;

	if (dp_epsilon_after(l, q, sigma, 0, delta) > epsilon)
		return 0;
	if (dp_epsilon_after(l, q, sigma, cap, delta) <= epsilon)
		return cap;
	while (hi - lo > 1) { /* lo fits, hi does not */
		uint64_t mid = lo + (hi - lo) / 2;
		if (dp_epsilon_after(l, q, sigma, mid, delta) <= epsilon)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

void dp_ledger_charge(struct dp_ledger *l, double q, double sigma, uint64_t steps)
{
	if (steps == 0)
		return;
	l->steps += steps;
	for (size_t i = 0; i < DP_N_ORDERS; i++)
		l->rdp[i] += (double)steps * dp_rdp_step(q, sigma, dp_order(i));
}

#define LEDGER_MAGIC "sotto-privacy-ledger"

int dp_ledger_encode(const struct dp_ledger *l, char *buf, size_t cap)
{
	size_t off = 0;
	int n;

	n = snprintf(buf, cap, "%s 1\nsteps %llu\n", LEDGER_MAGIC, (unsigned long long)l->steps);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	off = (size_t)n;
	for (size_t i = 0; i < DP_N_ORDERS; i++) {
		n = snprintf(buf + off, cap - off, "rdp %g %a\n", dp_order(i), l->rdp[i]);
		if (n < 0 || (size_t)n >= cap - off)
			return -ENOSPC;
		off += (size_t)n;
	}
	return (int)off;
}

/* The next line of text[*pos..len) into line (NUL-terminated); false at the end. */
static bool next_line(const char *text, size_t len, size_t *pos, char *line, size_t cap)
{
	size_t i = 0;

	if (*pos >= len)
		return false;
	while (*pos < len && text[*pos] != '\n') {
		if (i + 1 < cap)
			line[i++] = text[*pos];
		else
			i = cap; /* too long: poisoned below */
		(*pos)++;
	}
	if (*pos >= len)
		return false; /* every line ends with a newline: this one was cut */
	(*pos)++;
	if (i >= cap) {
		line[0] = '\0';
		return true; /* an empty line never parses */
	}
	line[i] = '\0';
	return true;
}

int dp_ledger_decode(struct dp_ledger *out, const char *text, size_t len)
{
	struct dp_ledger l;
	char line[128], word[32], tail[2];
	unsigned long long steps;
	unsigned version;
	size_t pos = 0;

	if (len > DP_LEDGER_MAX_BYTES || memchr(text, '\0', len) != NULL)
		return LEARN_ECORRUPT;
	memset(&l, 0, sizeof(l));
	if (!next_line(text, len, &pos, line, sizeof(line)) ||
	    sscanf(line, "%31s %u%1s", word, &version, tail) != 2 ||
	    strcmp(word, LEDGER_MAGIC) != 0)
		return LEARN_EMAGIC;
	if (version != 1)
		return LEARN_EVERSION;
	if (!next_line(text, len, &pos, line, sizeof(line)) ||
	    sscanf(line, "steps %llu%1s", &steps, tail) != 1 || line[6] == '-')
		return LEARN_ECORRUPT;
	l.steps = steps;
	for (size_t i = 0; i < DP_N_ORDERS; i++) {
		double order, v;
		char *end;

		if (!next_line(text, len, &pos, line, sizeof(line)) ||
		    sscanf(line, "rdp %lf %31s%1s", &order, word, tail) != 2 ||
		    fabs(order - dp_order(i)) > 1e-9)
			return LEARN_ECORRUPT;
		v = strtod(word, &end);
		if (*end != '\0' || !isfinite(v) || v < 0.0)
			return LEARN_ECORRUPT;
		l.rdp[i] = v;
	}
	if (pos != len)
		return LEARN_ECORRUPT;
	*out = l;
	return 0;
}

int dp_ledger_load(struct dp_ledger *l, const char *path)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	memset(l, 0, sizeof(*l));
	rc = file_read_all(path, DP_LEDGER_MAX_BYTES, &buf, &len);
	if (rc == -EFBIG)
		return LEARN_ECORRUPT;
	if (rc != 0)
		return rc;
	rc = dp_ledger_decode(l, (const char *)buf, len);
	free(buf);
	return rc;
}

int dp_ledger_save(const struct dp_ledger *l, const char *path)
{
	char buf[DP_LEDGER_MAX_BYTES];
	int n = dp_ledger_encode(l, buf, sizeof(buf));

	if (n < 0)
		return n;
	return file_write_atomic(path, buf, (size_t)n, 0600);
}

/* Ziggurat for the standard normal, 256 layers (Marsaglia and Tsang 2000). */
#define ZIG_R 3.6541528853610088 /* where the tail begins */
#define ZIG_V 4.92867323399e-3   /* area of each layer */

struct zig_bits {
	uint8_t *buf;
	size_t cap;      /* bytes buf holds, a multiple of 8 */
	size_t len, pos; /* bytes filled, bytes used */
	dp_random_fn random;
	void *arg;
};

/* Fills about `want` bytes (a multiple of 8, 64..cap): no more than the samples left need. */
static void zig_fill(struct zig_bits *b, size_t want)
{
	b->len = MIN(b->cap, MAX((size_t)64, (want + 7) / 8 * 8));
	b->random(b->arg, b->buf, b->len);
	b->pos = 0;
}

static uint64_t zig_next(struct zig_bits *b)
{
	uint64_t v;

	if (b->pos + 8 > b->len)
		zig_fill(b, 256); /* the rare wedge or tail that ran out */
	memcpy(&v, b->buf + b->pos, 8);
	b->pos += 8;
	return v;
}

/* A uniform double in (0, 1]. */
static double zig_open(struct zig_bits *b)
{
	return ((double)(int64_t)(zig_next(b) >> 11) + 1.0) * 0x1p-53;
}

struct zig_tables {
	double x[257], f[257], wn[256];
	uint64_t kn[256];
};

static void zig_tables(struct zig_tables *t)
{
	/* Layer i (1..255) spans heights f[i]..f[i+1] and has width x[i]; layer 0 is the base. */
	t->x[1] = ZIG_R;
	t->f[1] = exp(-0.5 * ZIG_R * ZIG_R);
	t->x[0] = ZIG_V / t->f[1];
	t->f[0] = 0.0;
	for (int i = 1; i < 255; i++) {
		t->x[i + 1] = sqrt(-2.0 * log(ZIG_V / t->x[i] + t->f[i]));
		t->f[i + 1] = exp(-0.5 * t->x[i + 1] * t->x[i + 1]);
	}
	t->x[256] = 0.0;
	t->f[256] = 1.0;
	/* The inner-rectangle test in integers: u 2^-53 x[i] < x[i+1] iff u < kn[i]. */
	for (int i = 0; i < 256; i++) {
		t->kn[i] = (uint64_t)(t->x[i + 1] / t->x[i] * 0x1p53);
		t->wn[i] = t->x[i] * 0x1p-53;
	}
}

/*
 * A sample whose first word w fell outside its layer's inner rectangle:
 * the wedge test or the tail, then new words until one is accepted.
 */
static __attribute__((noinline)) double zig_slow(const struct zig_tables *t, struct zig_bits *b,
                                                 uint64_t w)
{
	for (;;) {
		unsigned i = (unsigned)(w & 0xff);
		uint64_t u = w >> 11;
		/* u < 2^53: the signed conversion is exact (and one instruction) */
		double z = (double)(int64_t)u * t->wn[i];
		if (u < t->kn[i])
			return (w & 0x100) != 0 ? -z : z;
		if (i == 0) { /* the tail beyond ZIG_R (Marsaglia 1964) */
			double a, c;
			do {
				a = -log(zig_open(b)) / ZIG_R;
				c = -log(zig_open(b));
			} while (c + c < a * a);
			z = ZIG_R + a;
			return (w & 0x100) != 0 ? -z : z;
		}
		if (t->f[i] + (double)(int64_t)(zig_next(b) >> 11) * 0x1p-53 *
		                      (t->f[i + 1] - t->f[i]) <
		    exp(-0.5 * z * z))
			return (w & 0x100) != 0 ? -z : z;
		w = zig_next(b);
	}
}

void dp_gauss_add(float *acc, size_t n, double sd, uint8_t *buf, size_t len, dp_random_fn random,
                  void *arg)
{
	struct zig_bits bits = {buf, len - len % 8, 0, 0, random, arg};
	struct zig_tables t;
	size_t k = 0;

	SOTTO_ASSERT(len >= 64);
	zig_tables(&t);
	while (k < n) {
		size_t words;
		if (bits.pos + 8 > bits.len)
			zig_fill(&bits,
			         (n - k) * 8 + (n - k) / 4 + 64); /* ~1% rejections draw more */
		words = MIN((bits.len - bits.pos) / 8, n - k);
		/* The fast path (about 99% of samples), one word each. */
		for (size_t j = 0; j < words; j++) {
			uint64_t w, u;
			unsigned i;
			double z;
			memcpy(&w, bits.buf + bits.pos, 8);
			bits.pos += 8;
			i = (unsigned)(w & 0xff);
			u = w >> 11;
			if (u < t.kn[i]) {
				z = (double)(int64_t)u * t.wn[i];
				z = (w & 0x100) != 0 ? -z : z;
			} else {
				z = zig_slow(&t, &bits, w);
				words = MIN(words, j + 1 + (bits.len - bits.pos) / 8);
			}
			acc[k++] += (float)(sd * z);
		}
	}
}
