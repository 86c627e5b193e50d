/*
 * dataset.c: the dataset file reader and writer.
 *
 * One reader for files and memory: a small source abstraction feeds the
 * same parse, which checks the header before allocating and grows its
 * arrays only as rows actually arrive. Not a general container format:
 * one table of labelled rows, nothing else.
 */
#include "learn/dataset.h"

#include "learn/learn.h"
#include "util/bytes.h"
#include "util/file.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/*
 * Rows allocated before the data proves more: at most GROW_ROWS and at most
 * GROW_BYTES of features (but one row at least). So a 48-byte header that
 * claims 2 GiB costs at most one row of the widest kind (4 MiB), the row
 * buffer and the standardisation stats (16 MiB), not 2 GiB.
 */
#define GROW_ROWS  4096u
#define GROW_BYTES (1u << 20)

static size_t elem_size(enum dataset_elem e)
{
	return e == DATASET_F32 ? 4 : 1;
}

static int shape_check(uint32_t rows, uint32_t dims, uint32_t classes, uint32_t elem)
{
	if (rows > DATASET_MAX_ROWS || dims == 0 || dims > DATASET_MAX_DIMS || classes < 2 ||
	    classes > DATASET_MAX_CLASSES || (elem != DATASET_U8 && elem != DATASET_F32))
		return LEARN_EBOUNDS;
	if ((uint64_t)rows * dims * elem_size((enum dataset_elem)elem) > DATASET_MAX_FEATURE_BYTES)
		return LEARN_EBOUNDS;
	return 0;
}

static int dataset_alloc_cap(struct dataset **out, uint32_t rows, uint32_t cap, uint32_t dims,
                             uint32_t classes, enum dataset_elem elem)
{
	struct dataset *ds;
	size_t n = cap > 0 ? cap : 1;

	*out = NULL;
	ds = calloc(1, sizeof(*ds));
	if (ds == NULL)
		return -ENOMEM;
	ds->rows = rows;
	ds->dims = dims;
	ds->classes = classes;
	ds->elem = elem;
	ds->labels = calloc(n, 1);
	if (elem == DATASET_U8)
		ds->x_u8 = calloc(n * dims, 1);
	else
		ds->x_f32 = calloc(n * dims, sizeof(float));
	if (ds->labels == NULL || (ds->x_u8 == NULL && ds->x_f32 == NULL)) {
		dataset_free(ds);
		return -ENOMEM;
	}
	*out = ds;
	return 0;
}

int dataset_alloc(struct dataset **out, uint32_t rows, uint32_t dims, uint32_t classes,
                  enum dataset_elem elem)
{
	int rc = shape_check(rows, dims, classes, elem);

	*out = NULL;
	if (rc != 0)
		return rc;
	return dataset_alloc_cap(out, rows, rows, dims, classes, elem);
}

void dataset_free(struct dataset *ds)
{
	if (ds == NULL)
		return;
	free(ds->labels);
	free(ds->x_u8);
	free(ds->x_f32);
	free(ds->mean);
	free(ds->std);
	free(ds);
}

/* --- reading ------------------------------------------------------------- */

/* A byte source: returns bytes read (< n only at the end), or -errno. */
struct source {
	long (*read)(struct source *src, uint8_t *buf, size_t n);
	gzFile gz;
	const uint8_t *mem;
	size_t mem_len, mem_pos;
	z_stream zs;
	bool inflating, zs_done;
};

static long gz_source_read(struct source *src, uint8_t *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		size_t chunk = MIN(n - got, (size_t)1 << 30);
		int r = gzread(src->gz, buf + got, (unsigned)chunk);
		if (r < 0) {
			int zerr = 0;
			(void)gzerror(src->gz, &zerr);
			return zerr == Z_ERRNO ? -errno : LEARN_ECORRUPT;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (long)got;
}

static long mem_source_read(struct source *src, uint8_t *buf, size_t n)
{
	size_t got = 0;

	if (!src->inflating) {
		got = MIN(n, src->mem_len - src->mem_pos);
		memcpy(buf, src->mem + src->mem_pos, got);
		src->mem_pos += got;
		return (long)got;
	}
	while (got < n && !src->zs_done) {
		int r;
		src->zs.next_out = buf + got;
		src->zs.avail_out = (uInt)MIN(n - got, (size_t)1 << 30);
		r = inflate(&src->zs, Z_NO_FLUSH);
		got = (size_t)(src->zs.next_out - buf);
		if (r == Z_STREAM_END) {
			/* Like gzread: a following gzip member continues the data. */
			if (src->zs.avail_in >= 2 && src->zs.next_in[0] == 0x1f &&
			    src->zs.next_in[1] == 0x8b) {
				if (inflateReset(&src->zs) != Z_OK)
					return LEARN_ECORRUPT;
			} else {
				src->zs_done = true;
			}
		} else if (r == Z_BUF_ERROR && src->zs.avail_in == 0) {
			return LEARN_ETRUNC;
		} else if (r != Z_OK) {
			return r == Z_MEM_ERROR ? -ENOMEM : LEARN_ECORRUPT;
		}
	}
	return (long)got;
}

static int read_exact(struct source *src, uint8_t *buf, size_t n)
{
	long r = src->read(src, buf, n);

	if (r < 0)
		return (int)r;
	return (size_t)r == n ? 0 : LEARN_ETRUNC;
}

static bool finite_all(const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(x[i]))
			return false;
	}
	return true;
}

static int grow(struct dataset *ds, uint32_t *cap, uint32_t need)
{
	uint32_t ncap = *cap;
	size_t es = elem_size(ds->elem);
	void *p;

	while (ncap < need)
		ncap = ncap > DATASET_MAX_ROWS / 2 ? DATASET_MAX_ROWS : ncap * 2;
	if (ncap > ds->rows)
		ncap = ds->rows;
	p = realloc(ds->labels, ncap);
	if (p == NULL)
		return -ENOMEM;
	ds->labels = p;
	if (ds->elem == DATASET_U8) {
		p = realloc(ds->x_u8, (size_t)ncap * ds->dims * es);
		if (p == NULL)
			return -ENOMEM;
		ds->x_u8 = p;
	} else {
		p = realloc(ds->x_f32, (size_t)ncap * ds->dims * es);
		if (p == NULL)
			return -ENOMEM;
		ds->x_f32 = p;
	}
	*cap = ncap;
	return 0;
}

static int parse(struct dataset **out, struct source *src)
{
	uint8_t h[DATASET_HEADER_BYTES];
	struct dataset *ds = NULL;
	uint32_t version, rows, dims, classes, elem, c, hh, w, flags, cap;
	uint8_t *rowbuf = NULL;
	size_t es, rowlen;
	uint8_t extra;
	int rc;

	*out = NULL;
	rc = read_exact(src, h, sizeof(h));
	if (rc == LEARN_ETRUNC && memcmp(h, DATASET_MAGIC, 8) != 0)
		rc = LEARN_EMAGIC; /* a short file that is not ours */
	if (rc != 0)
		goto out;
	if (memcmp(h, DATASET_MAGIC, 8) != 0) {
		rc = LEARN_EMAGIC;
		goto out;
	}
	version = bytes_get_le32(h + 8);
	if (version != DATASET_VERSION) {
		rc = LEARN_EVERSION;
		goto out;
	}
	rows = bytes_get_le32(h + 12);
	dims = bytes_get_le32(h + 16);
	classes = bytes_get_le32(h + 20);
	elem = bytes_get_le32(h + 24);
	c = bytes_get_le32(h + 28);
	hh = bytes_get_le32(h + 32);
	w = bytes_get_le32(h + 36);
	flags = bytes_get_le32(h + 40);
	rc = shape_check(rows, dims, classes, elem);
	if (rc != 0)
		goto out;
	if ((flags & ~1u) != 0 || bytes_get_le32(h + 44) != 0) {
		rc = LEARN_EBOUNDS;
		goto out;
	}
	if (!((c == 0 && hh == 0 && w == 0) ||
	      (c > 0 && hh > 0 && w > 0 && (uint64_t)c * hh * w == dims))) {
		rc = LEARN_EBOUNDS;
		goto out;
	}
	cap = MIN(rows, GROW_ROWS);
	cap = MIN(cap, MAX(1u, GROW_BYTES / (uint32_t)(dims * elem_size((enum dataset_elem)elem))));
	rc = dataset_alloc_cap(&ds, rows, cap, dims, classes, (enum dataset_elem)elem);
	if (rc != 0)
		goto out;
	ds->channels = c;
	ds->height = hh;
	ds->width = w;
	if (flags & 1u) {
		uint8_t *buf = malloc((size_t)dims * 8);
		ds->mean = malloc((size_t)dims * sizeof(float));
		ds->std = malloc((size_t)dims * sizeof(float));
		if (buf == NULL || ds->mean == NULL || ds->std == NULL) {
			free(buf);
			rc = -ENOMEM;
			goto out;
		}
		rc = read_exact(src, buf, (size_t)dims * 8);
		for (uint32_t i = 0; rc == 0 && i < dims; i++) {
			ds->mean[i] = bytes_get_le_float(buf + 4 * i);
			ds->std[i] = bytes_get_le_float(buf + 4 * ((size_t)dims + i));
			if (!isfinite(ds->mean[i]) || !isfinite(ds->std[i]) || !(ds->std[i] > 0))
				rc = LEARN_EBOUNDS;
		}
		free(buf);
		if (rc != 0)
			goto out;
	}
	es = elem_size(ds->elem);
	rowlen = 1 + (size_t)dims * es;
	rowbuf = malloc(rowlen);
	if (rowbuf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t r = 0; r < rows; r++) {
		if (r >= cap) {
			rc = grow(ds, &cap, r + 1);
			if (rc != 0)
				goto out;
		}
		rc = read_exact(src, rowbuf, rowlen);
		if (rc != 0)
			goto out;
		if (rowbuf[0] >= classes) {
			rc = LEARN_EBOUNDS;
			goto out;
		}
		ds->labels[r] = rowbuf[0];
		if (ds->elem == DATASET_U8) {
			memcpy(ds->x_u8 + (size_t)r * dims, rowbuf + 1, dims);
		} else {
			float *x = ds->x_f32 + (size_t)r * dims;
			for (uint32_t i = 0; i < dims; i++)
				x[i] = bytes_get_le_float(rowbuf + 1 + 4 * (size_t)i);
			if (!finite_all(x, dims)) {
				rc = LEARN_EBOUNDS;
				goto out;
			}
		}
	}
	/* Nothing may follow the last row. */
	{
		long r = src->read(src, &extra, 1);
		if (r < 0) {
			rc = (int)r;
			goto out;
		}
		if (r > 0) {
			rc = LEARN_ECORRUPT;
			goto out;
		}
	}
	*out = ds;
	ds = NULL;
out:
	free(rowbuf);
	dataset_free(ds);
	return rc;
}

int dataset_load(struct dataset **out, const char *path)
{
	struct source src;
	int rc, fd;

	*out = NULL;
	memset(&src, 0, sizeof(src));
	src.read = gz_source_read;
	/* Not gzopen(path): a FIFO given by mistake would block it forever. */
	fd = file_open_regular(path, O_RDONLY);
	if (fd < 0)
		return fd;
	src.gz = gzdopen(fd, "rb");
	if (src.gz == NULL) {
		close(fd);
		return -ENOMEM;
	}
	(void)gzbuffer(src.gz, 1u << 16);
	rc = parse(out, &src);
	gzclose(src.gz);
	return rc;
}

int dataset_load_mem(struct dataset **out, const void *buf, size_t len)
{
	struct source src;
	int rc;

	*out = NULL;
	memset(&src, 0, sizeof(src));
	src.read = mem_source_read;
	src.mem = buf;
	src.mem_len = len;
	if (len >= 2 && src.mem[0] == 0x1f && src.mem[1] == 0x8b) {
		if (len > UINT32_MAX)
			return LEARN_EBOUNDS;
		if (inflateInit2(&src.zs, 15 + 16) != Z_OK)
			return -ENOMEM;
		src.inflating = true;
		src.zs.next_in = (Bytef *)(uintptr_t)buf;
		src.zs.avail_in = (uInt)len;
	}
	rc = parse(out, &src);
	if (src.inflating)
		inflateEnd(&src.zs);
	return rc;
}

/* --- writing --------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int gzip_buf(uint8_t **out, size_t *out_len, const uint8_t *in, size_t len)
{
	z_stream zs;
	uLong bound;
	uint8_t *buf;
	int r;

	memset(&zs, 0, sizeof(zs));
	if (len > UINT32_MAX / 2)
		return -EFBIG;
	if (deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	bound = deflateBound(&zs, (uLong)len);
	buf = malloc(bound);
	if (buf == NULL) {
		deflateEnd(&zs);
		return -ENOMEM;
	}
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)len;
	zs.next_out = buf;
	zs.avail_out = (uInt)bound;
	r = deflate(&zs, Z_FINISH);
	*out_len = zs.total_out;
	deflateEnd(&zs);
	if (r != Z_STREAM_END) {
		free(buf);
		return -EIO;
	}
	*out = buf;
	return 0;
}

int dataset_save(const struct dataset *ds, const char *path)
{
	size_t es = elem_size(ds->elem);
	size_t stats = ds->mean != NULL ? (size_t)ds->dims * 8 : 0;
	size_t rowlen = 1 + (size_t)ds->dims * es;
	size_t len = DATASET_HEADER_BYTES + stats + (size_t)ds->rows * rowlen;
	uint8_t *buf = NULL, *gz = NULL, *p;
	size_t gz_len = 0;
	int rc;

	rc = shape_check(ds->rows, ds->dims, ds->classes, ds->elem);
	if (rc != 0)
		return rc;
	buf = malloc(len);
	if (buf == NULL)
		return -ENOMEM;
	memcpy(buf, DATASET_MAGIC, 8);
	bytes_put_le32(buf + 8, DATASET_VERSION);
	bytes_put_le32(buf + 12, ds->rows);
	bytes_put_le32(buf + 16, ds->dims);
	bytes_put_le32(buf + 20, ds->classes);
	bytes_put_le32(buf + 24, (uint32_t)ds->elem);
	bytes_put_le32(buf + 28, ds->channels);
	bytes_put_le32(buf + 32, ds->height);
	bytes_put_le32(buf + 36, ds->width);
	bytes_put_le32(buf + 40, ds->mean != NULL ? 1u : 0u);
	bytes_put_le32(buf + 44, 0);
	p = buf + DATASET_HEADER_BYTES;
	if (ds->mean != NULL) {
		for (uint32_t i = 0; i < ds->dims; i++) {
			bytes_put_le_float(p + 4 * (size_t)i, ds->mean[i]);
			bytes_put_le_float(p + 4 * ((size_t)ds->dims + i), ds->std[i]);
		}
		p += stats;
	}
	for (uint32_t r = 0; r < ds->rows; r++, p += rowlen) {
		p[0] = ds->labels[r];
		if (ds->elem == DATASET_U8) {
			memcpy(p + 1, ds->x_u8 + (size_t)r * ds->dims, ds->dims);
		} else {
			const float *x = ds->x_f32 + (size_t)r * ds->dims;
			for (uint32_t i = 0; i < ds->dims; i++)
				bytes_put_le_float(p + 1 + 4 * (size_t)i, x[i]);
		}
	}
	if (ends_with(path, ".gz")) {
		rc = gzip_buf(&gz, &gz_len, buf, len);
		if (rc == 0)
			rc = file_write_atomic(path, gz, gz_len, 0600);
	} else {
		rc = file_write_atomic(path, buf, len, 0600);
	}
	free(gz);
	free(buf);
	return rc;
}

/* --- helpers --------------------------------------------------------------- */

int dataset_subset(struct dataset **out, const struct dataset *ds, const uint32_t *idx, size_t n)
{
	struct dataset *s = NULL;
	size_t es = elem_size(ds->elem);
	int rc;

	*out = NULL;
	if (n > DATASET_MAX_ROWS)
		return LEARN_EBOUNDS;
	rc = dataset_alloc(&s, (uint32_t)n, ds->dims, ds->classes, ds->elem);
	if (rc != 0)
		return rc;
	s->channels = ds->channels;
	s->height = ds->height;
	s->width = ds->width;
	if (ds->mean != NULL) {
		s->mean = malloc((size_t)ds->dims * sizeof(float));
		s->std = malloc((size_t)ds->dims * sizeof(float));
		if (s->mean == NULL || s->std == NULL) {
			dataset_free(s);
			return -ENOMEM;
		}
		memcpy(s->mean, ds->mean, (size_t)ds->dims * sizeof(float));
		memcpy(s->std, ds->std, (size_t)ds->dims * sizeof(float));
	}
	for (size_t i = 0; i < n; i++) {
		SOTTO_ASSERT(idx[i] < ds->rows);
		s->labels[i] = ds->labels[idx[i]];
		if (ds->elem == DATASET_U8)
			memcpy(s->x_u8 + i * ds->dims, ds->x_u8 + (size_t)idx[i] * ds->dims,
			       ds->dims * es);
		else
			memcpy(s->x_f32 + i * ds->dims, ds->x_f32 + (size_t)idx[i] * ds->dims,
			       ds->dims * es);
	}
	*out = s;
	return 0;
}

/* y = x / 255, with vector extensions (GCC 12's -O2 leaves this loop scalar) */
static void u8_to_float(float *y, const uint8_t *x, size_t n)
{
	typedef uint8_t u8x4 __attribute__((vector_size(4)));
	typedef int32_t i32x4 __attribute__((vector_size(16)));
	typedef float f32x4 __attribute__((vector_size(16)));
	const f32x4 scale = {1.0f / 255, 1.0f / 255, 1.0f / 255, 1.0f / 255};
	size_t i = 0;

	for (; i + 4 <= n; i += 4) {
		u8x4 b;
		f32x4 f;
		memcpy(&b, x + i, sizeof(b));
		f = __builtin_convertvector(__builtin_convertvector(b, i32x4), f32x4) * scale;
		memcpy(y + i, &f, sizeof(f));
	}
	for (; i < n; i++)
		y[i] = (float)x[i] * (1.0f / 255);
}

void dataset_batch(const struct dataset *ds, const uint32_t *idx, size_t n, float *x, uint8_t *y)
{
	const size_t d = ds->dims;

	for (size_t i = 0; i < n; i++) {
		size_t r = idx[i];
		SOTTO_ASSERT(r < ds->rows);
		y[i] = ds->labels[r];
		if (i + 1 < n) { /* rows are drawn at random: fetch the next one early */
			const char *next =
			        ds->elem == DATASET_U8
			                ? (const char *)(ds->x_u8 + (size_t)idx[i + 1] * d)
			                : (const char *)(ds->x_f32 + (size_t)idx[i + 1] * d);
			size_t bytes = d * (ds->elem == DATASET_U8 ? 1 : 4);
			for (size_t off = 0; off < bytes; off += 64)
				__builtin_prefetch(next + off);
		}
		if (ds->elem == DATASET_U8) {
			u8_to_float(x + i * d, ds->x_u8 + r * d, d);
		} else {
			memcpy(x + i * d, ds->x_f32 + r * d, d * sizeof(float));
		}
	}
}

bool dataset_same_scaling(const struct dataset *a, const struct dataset *b)
{
	SOTTO_ASSERT(a->dims == b->dims);
	if (a->mean == NULL || b->mean == NULL)
		return a->mean == NULL && b->mean == NULL;
	return memcmp(a->mean, b->mean, a->dims * sizeof(float)) == 0 &&
	       memcmp(a->std, b->std, a->dims * sizeof(float)) == 0;
}

void dataset_histogram(const struct dataset *ds, uint32_t *counts)
{
	memset(counts, 0, ds->classes * sizeof(*counts));
	for (uint32_t r = 0; r < ds->rows; r++)
		counts[ds->labels[r]]++;
}
