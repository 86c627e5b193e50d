/*
 * import.c: MNIST JSON and CSV importers. Both read the whole input with a
 * size bound (file_read_all) and parse it with strtod-based scanners that
 * never step past the buffer's terminating NUL.
 */
#include "learn/import.h"

#include "learn/dataset.h"
#include "learn/learn.h"
#include "util/err.h"
#include "util/file.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MNIST_SIDE          28
#define MNIST_DIMS          (MNIST_SIDE * MNIST_SIDE)
#define MNIST_MAX_PER_DIGIT 100000u

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

/* Parses one digit file into u8 pixels appended to *px (grown). */
static int mnist_digit(const char *path, uint8_t **px, size_t *n_px, char *why, size_t why_len)
{
	uint8_t *text = NULL;
	size_t len = 0, count = 0, cap = 0;
	uint8_t *vals = NULL;
	const char *p;
	int rc;

	rc = file_read_all(path, 64u << 20, &text, &len);
	if (rc != 0) {
		say(why, why_len, "%s: %s", path, err_str(rc));
		goto out;
	}
	p = strstr((const char *)text, "\"data\"");
	if (p != NULL)
		p = strchr(p, '[');
	if (p == NULL) {
		say(why, why_len, "%s: no \"data\": [ array", path);
		rc = LEARN_EMAGIC;
		goto out;
	}
	p++;
	for (;;) {
		char *end;
		double v;
		while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
			p++;
		if (*p == ']')
			break;
		v = strtod(p, &end);
		if (end == p || !(v >= 0.0 && v <= 1.0)) {
			say(why, why_len, "%s: bad value at byte %zu", path,
			    (size_t)(p - (const char *)text));
			rc = LEARN_EBOUNDS;
			goto out;
		}
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 1u << 20;
			void *np;
			if (ncap > (size_t)MNIST_MAX_PER_DIGIT * MNIST_DIMS) {
				say(why, why_len, "%s: more than %u images", path,
				    MNIST_MAX_PER_DIGIT);
				rc = LEARN_EBOUNDS;
				goto out;
			}
			np = realloc(vals, ncap);
			if (np == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			vals = np;
			cap = ncap;
		}
		/* The package stores byte/255 rounded to 3 decimals: this inverts it. */
		vals[count++] = (uint8_t)lrint(v * 255.0);
		p = end;
		while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
			p++;
		if (*p == ',')
			p++;
		else if (*p != ']') {
			say(why, why_len, "%s: expected ',' or ']' at byte %zu", path,
			    (size_t)(p - (const char *)text));
			rc = LEARN_EBOUNDS;
			goto out;
		}
	}
	if (count == 0 || count % MNIST_DIMS != 0) {
		say(why, why_len, "%s: %zu values, not a multiple of %d", path, count, MNIST_DIMS);
		rc = LEARN_EBOUNDS;
		goto out;
	}
	*px = vals;
	*n_px = count;
	vals = NULL;
out:
	free(vals);
	free(text);
	return rc;
}

int import_mnist_json(struct dataset **out, const char *dir, char *why, size_t why_len)
{
	uint8_t *px[10] = {NULL};
	size_t n_px[10] = {0};
	size_t rows = 0, r = 0;
	struct dataset *ds = NULL;
	char path[4096];
	int rc = 0;

	*out = NULL;
	for (int d = 0; d < 10; d++) {
		if (snprintf(path, sizeof(path), "%s/%d.json", dir, d) >= (int)sizeof(path)) {
			rc = -ENAMETOOLONG;
			say(why, why_len, "%s: path too long", dir);
			goto out;
		}
		rc = mnist_digit(path, &px[d], &n_px[d], why, why_len);
		if (rc != 0)
			goto out;
		rows += n_px[d] / MNIST_DIMS;
	}
	rc = dataset_alloc(&ds, (uint32_t)rows, MNIST_DIMS, 10, DATASET_U8);
	if (rc != 0)
		goto out;
	ds->channels = 1;
	ds->height = MNIST_SIDE;
	ds->width = MNIST_SIDE;
	for (int d = 0; d < 10; d++) {
		memcpy(ds->x_u8 + r * MNIST_DIMS, px[d], n_px[d]);
		for (size_t i = 0; i < n_px[d] / MNIST_DIMS; i++)
			ds->labels[r++] = (uint8_t)d;
	}
	*out = ds;
	ds = NULL;
out:
	for (int d = 0; d < 10; d++)
		free(px[d]);
	dataset_free(ds);
	return rc;
}

/* --- CSV ------------------------------------------------------------------- */

/* Counts the comma-separated fields of the line starting at p. */
static size_t csv_fields(const char *p)
{
	size_t n = 1;

	for (; *p != '\0' && *p != '\n'; p++)
		n += *p == ',';
	return n;
}

static bool blank_line(const char *p)
{
	for (; *p != '\0' && *p != '\n'; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\r')
			return false;
	}
	return true;
}

int import_csv(struct dataset **out, const char *path, int label_col, bool header,
               const struct dataset *stats, uint32_t classes, char *why, size_t why_len)
{
	return import_csv_flags(out, path, label_col, header, stats, classes, 0, why, why_len);
}

int import_csv_flags(struct dataset **out, const char *path, int label_col, bool header,
                     const struct dataset *stats, uint32_t classes, unsigned flags, char *why,
                     size_t why_len)
{
	uint8_t *text = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = file_read_all(path, IMPORT_MAX_FILE, &text, &len);
	if (rc != 0) {
		say(why, why_len, "%s: %s", path, err_str(rc));
		return rc;
	}
	rc = import_csv_text_flags(out, (const char *)text, len, path, label_col, header, stats,
	                           classes, flags, why, why_len);
	free(text);
	return rc;
}

int import_csv_text(struct dataset **out, const char *text, size_t len, const char *path,
                    int label_col, bool header, const struct dataset *stats, uint32_t classes,
                    char *why, size_t why_len)
{
	return import_csv_text_flags(out, text, len, path, label_col, header, stats, classes, 0,
	                             why, why_len);
}

int import_csv_text_flags(struct dataset **out, const char *text, size_t len, const char *path,
                          int label_col, bool header, const struct dataset *stats, uint32_t classes,
                          unsigned flags, char *why, size_t why_len)
{
	size_t ncols = 0, rows = 0, line = 0;
	uint32_t dims, lab_col, max_label = 0;
	struct dataset *ds = NULL;
	double *sum = NULL, *sq = NULL;
	const char *p, *start;
	int rc;

	*out = NULL;
	/* Pass 1: the shape. */
	SOTTO_ASSERT(text[len] == '\0');
	p = text;
	if (header) {
		p = strchr(p, '\n');
		p = p != NULL ? p + 1 : text + len;
		line = 1;
	}
	start = p;
	for (const char *q = p; *q != '\0';) {
		const char *nl = strchr(q, '\n');
		if (!blank_line(q)) {
			size_t f = csv_fields(q);
			if (ncols == 0)
				ncols = f;
			if (f != ncols) {
				say(why, why_len, "%s:%zu: %zu fields, expected %zu", path,
				    line + rows + 1, f, ncols);
				rc = LEARN_EBOUNDS;
				goto out;
			}
			rows++;
		}
		if (nl == NULL)
			break;
		q = nl + 1;
	}
	if (label_col == IMPORT_CSV_NO_LABEL) {
		if (rows == 0 || rows > DATASET_MAX_ROWS || ncols > DATASET_MAX_DIMS) {
			say(why, why_len,
			    "%s: %zu rows of %zu columns: need >= 1 row, 1..%u columns", path, rows,
			    ncols, DATASET_MAX_DIMS);
			rc = LEARN_EBOUNDS;
			goto out;
		}
	} else if (ncols < 2 || rows == 0 || rows > DATASET_MAX_ROWS ||
	           ncols - 1 > DATASET_MAX_DIMS) {
		say(why, why_len, "%s: %zu rows of %zu columns: need >= 1 row, 2..%u columns", path,
		    rows, ncols, DATASET_MAX_DIMS + 1);
		rc = LEARN_EBOUNDS;
		goto out;
	}
	if (label_col >= (int)ncols || (label_col < -1 && label_col != IMPORT_CSV_NO_LABEL)) {
		say(why, why_len, "%s: label column %d, but rows have %zu columns", path, label_col,
		    ncols);
		rc = LEARN_EBOUNDS;
		goto out;
	}
	if (label_col == IMPORT_CSV_NO_LABEL) {
		lab_col = UINT32_MAX; /* every column is a feature; labels stay 0 */
		dims = (uint32_t)ncols;
	} else {
		lab_col = label_col < 0 ? (uint32_t)ncols - 1 : (uint32_t)label_col;
		dims = (uint32_t)ncols - 1;
	}
	if ((flags & ~IMPORT_CSV_RAW) != 0 || ((flags & IMPORT_CSV_RAW) && stats != NULL)) {
		say(why, why_len, "%s: unsupported import flags", path);
		rc = -EINVAL;
		goto out;
	}
	if (stats != NULL && (stats->dims != dims || stats->mean == NULL)) {
		say(why, why_len, "%s: %u features, but the stats file has %u%s", path, dims,
		    stats->dims, stats->mean == NULL ? " and no statistics" : "");
		rc = LEARN_EMISMATCH;
		goto out;
	}
	rc = dataset_alloc(&ds, (uint32_t)rows, dims, DATASET_MAX_CLASSES, DATASET_F32);
	if (rc != 0)
		goto out;
	/* Pass 2: the values. */
	p = start;
	line = header ? 1 : 0;
	for (size_t r = 0; r < rows;) {
		const char *nl = strchr(p, '\n');
		line++;
		if (!blank_line(p)) {
			float *x = ds->x_f32 + r * dims;
			uint32_t j = 0;
			for (uint32_t c = 0; c < ncols; c++) {
				char *end;
				double v = strtod(p, &end);
				while (*end == ' ' || *end == '\t' || *end == '\r')
					end++;
				/*
				 * strtod skips leading white space, newlines included: an
				 * empty last field must not take the next line's first value.
				 */
				if (end == p || !isfinite(v) ||
				    memchr(p, '\n', (size_t)(end - p)) != NULL ||
				    (*end != ',' && *end != '\n' && *end != '\0')) {
					/* 0-based, as --label counts */
					say(why, why_len, "%s:%zu: column %u is not a number%s",
					    path, line, c,
					    line == 1 && !header
					            ? " (looks like a header: pass --header)"
					            : "");
					rc = LEARN_EBOUNDS;
					goto out;
				}
				if (c == lab_col) {
					if (v < 0 || v > 255 || v != floor(v)) {
						say(why, why_len,
						    "%s:%zu: label %g is not an integer in 0..255",
						    path, line, v);
						rc = LEARN_EBOUNDS;
						goto out;
					}
					ds->labels[r] = (uint8_t)v;
					max_label = MAX(max_label, (uint32_t)v);
				} else {
					x[j++] = (float)v;
				}
				p = *end == ',' ? end + 1 : end;
			}
			r++;
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	if (classes == 0)
		classes = stats != NULL ? stats->classes : MAX(max_label + 1, 2u);
	if (max_label >= classes || classes < 2 || classes > DATASET_MAX_CLASSES) {
		say(why, why_len, "%s: label %u does not fit %u classes", path, max_label, classes);
		rc = LEARN_EBOUNDS;
		goto out;
	}
	ds->classes = classes;
	if (flags & IMPORT_CSV_RAW) {
		*out = ds; /* the values as they are: standardised later ([Training] Standardize) */
		ds = NULL;
		goto out;
	}
	/* Standardise with the training set's statistics. */
	ds->mean = malloc(dims * sizeof(float));
	ds->std = malloc(dims * sizeof(float));
	sum = calloc(dims, sizeof(double));
	sq = calloc(dims, sizeof(double));
	if (ds->mean == NULL || ds->std == NULL || sum == NULL || sq == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (stats != NULL) {
		memcpy(ds->mean, stats->mean, dims * sizeof(float));
		memcpy(ds->std, stats->std, dims * sizeof(float));
	} else {
		for (size_t r = 0; r < rows; r++)
			for (uint32_t j = 0; j < dims; j++)
				sum[j] += ds->x_f32[r * dims + j];
		for (uint32_t j = 0; j < dims; j++)
			ds->mean[j] = (float)(sum[j] / (double)rows);
		for (size_t r = 0; r < rows; r++)
			for (uint32_t j = 0; j < dims; j++) {
				double d = ds->x_f32[r * dims + j] - (double)ds->mean[j];
				sq[j] += d * d;
			}
		for (uint32_t j = 0; j < dims; j++) {
			double sd = sqrt(sq[j] / (double)rows);
			ds->std[j] = sd > 1e-12 && isfinite(sd) ? (float)sd : 1.0f;
		}
	}
	for (size_t r = 0; r < rows; r++)
		for (uint32_t j = 0; j < dims; j++) {
			float *v = &ds->x_f32[r * dims + j];
			*v = (*v - ds->mean[j]) / ds->std[j];
			if (!isfinite(*v)) {
				say(why, why_len, "%s: value out of float range in row %zu", path,
				    r + 1);
				rc = LEARN_EBOUNDS;
				goto out;
			}
		}
	*out = ds;
	ds = NULL;
out:
	free(sum);
	free(sq);
	dataset_free(ds);
	return rc;
}
