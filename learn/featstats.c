/*
 * featstats.c: per-feature statistics, their moments and their file (see
 * featstats.h). The parser reads a bounded, NUL-terminated copy line by
 * line with strtod/strtoull and checks every field before it keeps it.
 */
#include "learn/featstats.h"

#include "learn/dataset.h"
#include "learn/learn.h"
#include "util/file.h"
#include "util/sbuf.h"
#include "util/util.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLT_MAX_D ((double)FLT_MAX)

static void say(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

int featstats_alloc(struct featstats *fs, uint32_t dims)
{
	memset(fs, 0, sizeof(*fs));
	if (dims < 1 || dims > DATASET_MAX_DIMS)
		return LEARN_EBOUNDS;
	fs->mean = calloc(dims, sizeof(float));
	fs->std = calloc(dims, sizeof(float));
	if (fs->mean == NULL || fs->std == NULL) {
		featstats_free(fs);
		return -ENOMEM;
	}
	fs->dims = dims;
	return 0;
}

void featstats_free(struct featstats *fs)
{
	free(fs->mean);
	free(fs->std);
	memset(fs, 0, sizeof(*fs));
}

void featstats_moments(const struct dataset *ds, double *sum, double *sumsq)
{
	uint32_t d = ds->dims;

	memset(sum, 0, d * sizeof(double));
	memset(sumsq, 0, d * sizeof(double));
	for (size_t r = 0; r < ds->rows; r++)
		for (uint32_t j = 0; j < d; j++) {
			double v = ds->elem == DATASET_U8 ? ds->x_u8[r * d + j] / 255.0
			                                  : (double)ds->x_f32[r * d + j];
			sum[j] += v;
			sumsq[j] += v * v;
		}
}

int featstats_from_moments(struct featstats *fs, uint32_t dims, double n, const double *sum,
                           const double *sumsq)
{
	int rc;

	if (!(n > 0) || !isfinite(n))
		return LEARN_EBOUNDS;
	rc = featstats_alloc(fs, dims);
	if (rc != 0)
		return rc;
	for (uint32_t j = 0; j < dims; j++) {
		double m = sum[j] / n, m2 = sumsq[j] / n, var = m2 - m * m;
		if (!isfinite(m) || !isfinite(m2) || !(m2 >= 0) || fabs(m) > FLT_MAX_D) {
			featstats_free(fs);
			return LEARN_EBOUNDS;
		}
		fs->mean[j] = (float)m;
		fs->std[j] = var > 1e-12 * m2 && var > 0 ? (float)sqrt(var) : 1.0f;
		if (!(fs->std[j] > 0) || !isfinite(fs->std[j]))
			fs->std[j] = 1.0f;
	}
	fs->rows = n >= 1 && n <= 1e18 ? (uint64_t)n : 0;
	return 0;
}

/* --- the file -------------------------------------------------------------- */

/* The next line of [*p, end): NUL-terminated in place, comment cut. NULL at the end. */
static char *next_line(char **p, char *end, size_t *lineno)
{
	while (*p < end) {
		char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));
		char *hash;
		if (nl == NULL)
			nl = end;
		*nl = '\0';
		*p = nl + 1;
		(*lineno)++;
		hash = strchr(s, '#');
		if (hash != NULL)
			*hash = '\0';
		while (*s == ' ' || *s == '\t' || *s == '\r')
			s++;
		for (char *e = s + strlen(s);
		     e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r');)
			*--e = '\0';
		if (*s != '\0')
			return s;
	}
	return NULL;
}

/* "KEY N" with N an integer in [lo, hi]. */
static bool key_uint(const char *s, const char *key, uint64_t lo, uint64_t hi, uint64_t *v)
{
	size_t kl = strlen(key);
	char *e;

	if (strncmp(s, key, kl) != 0 || (s[kl] != ' ' && s[kl] != '\t'))
		return false;
	s += kl;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoull(s, &e, 10);
	return errno == 0 && *e == '\0' && *v >= lo && *v <= hi;
}

/* "I A B": I == want, A and B finite. */
static bool feature_line(const char *s, uint32_t want, double *a, double *b)
{
	char *e;
	unsigned long long i;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	i = strtoull(s, &e, 10);
	if (errno != 0 || i != want || (*e != ' ' && *e != '\t'))
		return false;
	*a = strtod(e, &e);
	if (!isfinite(*a) || (*e != ' ' && *e != '\t'))
		return false;
	*b = strtod(e, &e);
	return isfinite(*b) && *e == '\0';
}

int featstats_parse(struct featstats *fs, const char *text, size_t len, char *why, size_t why_len)
{
	char *buf, *p, *end, *s;
	double *sum = NULL, *sq = NULL;
	uint64_t dims = 0, rows = 0;
	size_t line = 0;
	bool sums;
	int rc = LEARN_EBOUNDS;

	memset(fs, 0, sizeof(*fs));
	if (len > FEATSTATS_MAX_FILE) {
		say(why, why_len, "larger than %u bytes", FEATSTATS_MAX_FILE);
		return LEARN_EBOUNDS;
	}
	buf = malloc(len + 1);
	if (buf == NULL)
		return -ENOMEM;
	memcpy(buf, text, len);
	buf[len] = '\0';
	end = buf + strlen(buf); /* the text ends at its first NUL */
	p = buf;
	s = next_line(&p, end, &line);
	if (s == NULL ||
	    (strcmp(s, "sotto-stats 1 mean-std") != 0 && strcmp(s, "sotto-stats 1 sums") != 0)) {
		say(why, why_len,
		    "line %zu: not a statistics file (the first line must be "
		    "'sotto-stats 1 mean-std' or 'sotto-stats 1 sums')",
		    line);
		rc = s != NULL && strncmp(s, "sotto-stats ", 12) == 0 ? LEARN_EVERSION
		                                                      : LEARN_EMAGIC;
		goto out;
	}
	sums = strcmp(s, "sotto-stats 1 sums") == 0;
	s = next_line(&p, end, &line);
	if (s == NULL || !key_uint(s, "features", 1, DATASET_MAX_DIMS, &dims)) {
		say(why, why_len, "line %zu: expected 'features N' with N in 1..%u", line,
		    DATASET_MAX_DIMS);
		goto out;
	}
	s = next_line(&p, end, &line);
	if (s != NULL && strncmp(s, "rows", 4) == 0) {
		if (!key_uint(s, "rows", 1, (uint64_t)1 << 53, &rows)) {
			say(why, why_len, "line %zu: expected 'rows N' with N >= 1", line);
			goto out;
		}
		s = next_line(&p, end, &line);
	}
	if (sums && rows == 0) {
		say(why, why_len, "line %zu: a sums file needs 'rows N' after 'features'", line);
		goto out;
	}
	/* A feature line takes at least 6 bytes: no more features than the text holds. */
	if (dims > len / 6 + 1) {
		say(why, why_len, "features %llu, but the file is too short for them",
		    (unsigned long long)dims);
		goto out;
	}
	sum = malloc(dims * sizeof(double));
	sq = malloc(dims * sizeof(double));
	if (sum == NULL || sq == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t j = 0; j < dims; j++) {
		if (s == NULL) {
			say(why, why_len, "ends after %u of %llu features", j,
			    (unsigned long long)dims);
			goto out;
		}
		if (!feature_line(s, j, &sum[j], &sq[j])) {
			say(why, why_len, "line %zu: expected '%u %s' (finite numbers)", line, j,
			    sums ? "SUM SUMSQ" : "MEAN STD");
			goto out;
		}
		if (sums ? !(sq[j] >= 0)
		         : (!(sq[j] > 0) || fabs(sum[j]) > FLT_MAX_D || sq[j] > FLT_MAX_D)) {
			say(why, why_len, "line %zu: %s", line,
			    sums ? "SUMSQ must be >= 0"
			         : "STD must be > 0 and MEAN, STD in float range");
			goto out;
		}
		s = next_line(&p, end, &line);
	}
	if (s != NULL) {
		say(why, why_len, "line %zu: more lines than the %llu features", line,
		    (unsigned long long)dims);
		goto out;
	}
	if (sums) {
		for (uint32_t j = 0; j < dims; j++) {
			double m = sum[j] / (double)rows, m2 = sq[j] / (double)rows;
			/* x^2 sums below the square of the mean: not sums of real values */
			if (m2 - m * m < -1e-6 * m2 || m2 > FLT_MAX_D * FLT_MAX_D) {
				say(why, why_len,
				    "feature %u: SUMSQ / rows is below (SUM / rows)^2 or out of "
				    "range: "
				    "not the sums of one set of values",
				    j);
				goto out;
			}
		}
		rc = featstats_from_moments(fs, (uint32_t)dims, (double)rows, sum, sq);
		if (rc == LEARN_EBOUNDS)
			say(why, why_len, "sums out of range");
		goto out;
	}
	rc = featstats_alloc(fs, (uint32_t)dims);
	if (rc != 0)
		goto out;
	for (uint32_t j = 0; j < dims; j++) {
		fs->mean[j] = (float)sum[j];
		fs->std[j] = (float)sq[j];
		if (!(fs->std[j] > 0)) { /* under float range */
			say(why, why_len, "feature %u: STD %g is too small for a float", j, sq[j]);
			featstats_free(fs);
			rc = LEARN_EBOUNDS;
			goto out;
		}
	}
	fs->rows = rows;
out:
	free(sum);
	free(sq);
	free(buf);
	return rc;
}

int featstats_load(struct featstats *fs, const char *path, char *why, size_t why_len)
{
	uint8_t *text = NULL;
	size_t len = 0;
	char inner[200] = "";
	int rc;

	memset(fs, 0, sizeof(*fs));
	rc = file_read_all(path, FEATSTATS_MAX_FILE, &text, &len);
	if (rc != 0) {
		say(why, why_len, "%s: %s", path, rc == -EFBIG ? "too large" : strerror(-rc));
		return rc;
	}
	rc = featstats_parse(fs, (const char *)text, len, inner, sizeof(inner));
	free(text);
	if (rc != 0)
		say(why, why_len, "%s: %s", path, inner[0] != '\0' ? inner : "out of memory");
	return rc;
}

static void sb_comment(struct sbuf *b, const char *comment)
{
	const char *c = comment;

	while (c != NULL && *c != '\0') {
		const char *nl = strchr(c, '\n');
		size_t n = nl != NULL ? (size_t)(nl - c) : strlen(c);
		sb_printf(b, "# %.*s\n", (int)n, c);
		c = nl != NULL ? nl + 1 : NULL;
	}
}

/* Writes the buffer's text to path atomically (0600); the buffer is done. */
static int sb_write(struct sbuf *b, const char *path)
{
	char *text = sb_finish(b);
	int rc = text == NULL ? -ENOMEM : file_write_atomic(path, text, strlen(text), 0600);

	free(text);
	return rc;
}

int featstats_save(const struct featstats *fs, const char *path, const char *comment)
{
	struct sbuf b;

	if (!sb_init(&b))
		return -ENOMEM;
	sb_comment(&b, comment);
	sb_printf(&b, "sotto-stats 1 mean-std\nfeatures %u\n", fs->dims);
	if (fs->rows > 0)
		sb_printf(&b, "rows %llu\n", (unsigned long long)fs->rows);
	for (uint32_t j = 0; j < fs->dims; j++)
		sb_printf(&b, "%u %.9g %.9g\n", j, (double)fs->mean[j], (double)fs->std[j]);
	return sb_write(&b, path);
}

int featstats_save_sums(const char *path, uint32_t dims, uint64_t n, const double *sum,
                        const double *sumsq, const char *comment)
{
	struct sbuf b;

	if (!sb_init(&b))
		return -ENOMEM;
	sb_comment(&b, comment);
	sb_printf(&b, "sotto-stats 1 sums\nfeatures %u\nrows %llu\n", dims, (unsigned long long)n);
	for (uint32_t j = 0; j < dims; j++)
		sb_printf(&b, "%u %.17g %.17g\n", j, sum[j], sumsq[j]);
	return sb_write(&b, path);
}

/* --- applying them ------------------------------------------------------------ */

int featstats_apply(struct dataset *ds, const struct featstats *fs)
{
	size_t n = (size_t)ds->rows * ds->dims;
	float *x, *mean = NULL, *std = NULL;
	uint32_t d = ds->dims;

	if (ds->mean != NULL || fs->dims != d)
		return LEARN_EMISMATCH;
	x = malloc(MAX(n, 1) * sizeof(float));
	mean = malloc(d * sizeof(float));
	std = malloc(d * sizeof(float));
	if (x == NULL || mean == NULL || std == NULL) {
		free(x);
		free(mean);
		free(std);
		return -ENOMEM;
	}
	for (size_t r = 0; r < ds->rows; r++)
		for (uint32_t j = 0; j < d; j++) {
			size_t i = r * d + j;
			float v = ds->elem == DATASET_U8 ? (float)ds->x_u8[i] * (1.0f / 255)
			                                 : ds->x_f32[i];
			x[i] = (v - fs->mean[j]) / fs->std[j];
			if (!isfinite(x[i])) {
				free(x);
				free(mean);
				free(std);
				return LEARN_EBOUNDS;
			}
		}
	memcpy(mean, fs->mean, d * sizeof(float));
	memcpy(std, fs->std, d * sizeof(float));
	free(ds->x_u8);
	free(ds->x_f32);
	ds->x_u8 = NULL;
	ds->x_f32 = x;
	ds->elem = DATASET_F32;
	ds->mean = mean;
	ds->std = std;
	return 0;
}
