/*
 * learn_dataset_test.c: the dataset format (round trips, plain and gzip),
 * every kind of corruption the reader must refuse without crashing, the
 * CSV and MNIST importers, and the partitions (deterministic, complete,
 * with the promised label skew).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "learn/dataset.h"
#include "learn/import.h"
#include "learn/learn.h"
#include "learn/partition.h"
#include "util/bytes.h"
#include "util/err.h"
#include "util/file.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static char tmpdir[256];

static void path_in(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", tmpdir, name);
}

static struct dataset *small(enum dataset_elem elem, uint32_t rows, uint32_t dims)
{
	struct dataset *ds = NULL;

	assert_int_equal(dataset_alloc(&ds, rows, dims, 3, elem), 0);
	for (uint32_t r = 0; r < rows; r++) {
		ds->labels[r] = (uint8_t)(r % 3);
		for (uint32_t j = 0; j < dims; j++) {
			if (elem == DATASET_U8)
				ds->x_u8[r * dims + j] = (uint8_t)(r * 7 + j);
			else
				ds->x_f32[r * dims + j] = (float)r - 0.5f * (float)j;
		}
	}
	return ds;
}

static void assert_same(const struct dataset *a, const struct dataset *b)
{
	assert_int_equal(a->rows, b->rows);
	assert_int_equal(a->dims, b->dims);
	assert_int_equal(a->classes, b->classes);
	assert_int_equal(a->elem, b->elem);
	assert_int_equal(a->channels, b->channels);
	assert_int_equal(a->height, b->height);
	assert_int_equal(a->width, b->width);
	assert_memory_equal(a->labels, b->labels, a->rows);
	if (a->elem == DATASET_U8)
		assert_memory_equal(a->x_u8, b->x_u8, (size_t)a->rows * a->dims);
	else
		assert_memory_equal(a->x_f32, b->x_f32, (size_t)a->rows * a->dims * 4);
	assert_true((a->mean == NULL) == (b->mean == NULL));
	if (a->mean != NULL) {
		assert_memory_equal(a->mean, b->mean, a->dims * 4);
		assert_memory_equal(a->std, b->std, a->dims * 4);
	}
}

static void test_roundtrip(void **state)
{
	const char *names[] = {"a.sdat", "a.sdat.gz"};

	(void)state;
	for (int e = 0; e < 2; e++)
		for (int n = 0; n < 2; n++) {
			struct dataset *ds = small(e ? DATASET_F32 : DATASET_U8, 10, 12),
			               *back = NULL;
			uint8_t *buf = NULL;
			size_t len = 0;
			char path[512];
			ds->channels = 3;
			ds->height = 2;
			ds->width = 2;
			if (e) {
				ds->mean = calloc(12, 4);
				ds->std = calloc(12, 4);
				for (int j = 0; j < 12; j++)
					ds->std[j] = 1.0f + (float)j;
			}
			path_in(path, sizeof(path), names[n]);
			assert_int_equal(dataset_save(ds, path), 0);
			assert_int_equal(dataset_load(&back, path), 0);
			assert_same(ds, back);
			dataset_free(back);
			/* The same bytes through the memory reader. */
			assert_int_equal(file_read_all(path, 1u << 20, &buf, &len), 0);
			if (n == 1)
				assert_true(buf[0] == 0x1f && buf[1] == 0x8b);
			assert_int_equal(dataset_load_mem(&back, buf, len), 0);
			assert_same(ds, back);
			dataset_free(back);
			free(buf);
			dataset_free(ds);
		}
}

/* A valid plain file in memory, for the corruption cases. */
static uint8_t *valid_bytes(size_t *len)
{
	struct dataset *ds = small(DATASET_F32, 4, 3);
	uint8_t *buf = NULL;
	char path[512];

	path_in(path, sizeof(path), "v.sdat");
	assert_int_equal(dataset_save(ds, path), 0);
	assert_int_equal(file_read_all(path, 1u << 20, &buf, len), 0);
	dataset_free(ds);
	return buf;
}

static void expect(const uint8_t *buf, size_t len, int want)
{
	struct dataset *ds = (struct dataset *)&ds; /* must come back NULL */
	int rc = dataset_load_mem(&ds, buf, len);
	if (rc != want)
		fail_msg("expected %d (%s), got %d (%s)", want, err_str(want), rc, err_str(rc));
	assert_null(ds);
}

static void put8(uint8_t *p, uint8_t v)
{
	*p = v;
}

static void test_corrupt(void **state)
{
	size_t len;
	uint8_t *good = valid_bytes(&len), *b = malloc(len + 16);
	struct dataset *ds = NULL;

	(void)state;
	assert_int_equal(dataset_load_mem(&ds, good, len), 0);
	dataset_free(ds);
	/* Every truncation is refused. */
	for (size_t n = 0; n < len; n++) {
		int rc = dataset_load_mem(&ds, good, n);
		assert_true(rc == LEARN_ETRUNC || (n < 8 && rc == LEARN_EMAGIC));
		assert_null(ds);
	}
#define MUTATE(off, put, val, want)                                                                \
	do {                                                                                       \
		memcpy(b, good, len);                                                              \
		put(b + (off), val);                                                               \
		expect(b, len, want);                                                              \
	} while (0)
	MUTATE(0, bytes_put_le32, 0x58585858u, LEARN_EMAGIC);
	MUTATE(8, bytes_put_le32, 2u, LEARN_EVERSION);
	MUTATE(16, bytes_put_le32, 0u, LEARN_EBOUNDS);                   /* dims 0 */
	MUTATE(16, bytes_put_le32, DATASET_MAX_DIMS + 1, LEARN_EBOUNDS); /* dims */
	MUTATE(20, bytes_put_le32, 1u, LEARN_EBOUNDS);                   /* 1 class */
	MUTATE(20, bytes_put_le32, 257u, LEARN_EBOUNDS);                 /* classes */
	MUTATE(24, bytes_put_le32, 3u, LEARN_EBOUNDS);                   /* element type */
	MUTATE(28, bytes_put_le32, 2u, LEARN_EBOUNDS);                   /* c*h*w != dims */
	MUTATE(40, bytes_put_le32, 4u, LEARN_EBOUNDS);                   /* unknown flag */
	MUTATE(44, bytes_put_le32, 1u, LEARN_EBOUNDS);                   /* reserved */
	MUTATE(48, put8, 3, LEARN_EBOUNDS);                              /* label >= classes */
	MUTATE(49, bytes_put_le_float, NAN, LEARN_EBOUNDS);              /* NaN feature */
	MUTATE(12, bytes_put_le32, DATASET_MAX_ROWS, LEARN_ETRUNC);      /* lying row count */
	MUTATE(12, bytes_put_le32, DATASET_MAX_ROWS + 1, LEARN_EBOUNDS); /* too many rows */
	MUTATE(12, bytes_put_le32, 3u, LEARN_ECORRUPT);                  /* trailing row */
	MUTATE(40, bytes_put_le32, 1u, LEARN_EBOUNDS);                   /* stats: std <= 0 */
#undef MUTATE
	/* Rows * dims * 4 above the byte limit. */
	memcpy(b, good, len);
	bytes_put_le32(b + 12, DATASET_MAX_ROWS);
	bytes_put_le32(b + 16, DATASET_MAX_DIMS);
	expect(b, len, LEARN_EBOUNDS);
	/* A damaged gzip stream. */
	{
		char path[512];
		uint8_t *gz = NULL;
		size_t glen = 0;
		struct dataset *d = small(DATASET_U8, 50, 20);
		path_in(path, sizeof(path), "c.sdat.gz");
		assert_int_equal(dataset_save(d, path), 0);
		assert_int_equal(file_read_all(path, 1u << 20, &gz, &glen), 0);
		gz[glen / 2] ^= 0x55;
		assert_int_not_equal(dataset_load_mem(&ds, gz, glen), 0);
		assert_null(ds);
		assert_int_equal(dataset_load_mem(&ds, gz, glen / 2), LEARN_ETRUNC);
		/* And through the file reader (zlib's gzread). */
		assert_int_equal(file_write_atomic(path, gz, glen, 0600), 0);
		assert_int_not_equal(dataset_load(&ds, path), 0);
		assert_null(ds);
		free(gz);
		dataset_free(d);
	}
	assert_int_equal(dataset_load(&ds, "/nonexistent/x.sdat"), -ENOENT);
	free(b);
	free(good);
}

/*
 * A 48-byte header may claim 2 GiB of rows (within the format's limits) and
 * then end: the reader must say "truncated" having allocated about what
 * arrived, not what was promised. The allocation is checked by running the
 * load in a child whose address space is capped 256 MiB above its current
 * size (skipped under AddressSanitizer, which needs terabytes of it; the
 * fuzz corpus carries the same input for that build).
 */
static void test_lying_header_allocates_little(void **state)
{
	uint8_t h[DATASET_HEADER_BYTES];
	struct dataset *ds = NULL;

	(void)state;
	memset(h, 0, sizeof(h));
	memcpy(h, DATASET_MAGIC, 8);
	bytes_put_le32(h + 8, DATASET_VERSION);
	bytes_put_le32(h + 12, 512);              /* rows */
	bytes_put_le32(h + 16, DATASET_MAX_DIMS); /* 512 x 2^20 x 4 = 2 GiB */
	bytes_put_le32(h + 20, 10);
	bytes_put_le32(h + 24, DATASET_F32);
	assert_int_equal(dataset_load_mem(&ds, h, sizeof(h)), LEARN_ETRUNC);
	assert_null(ds);
#ifndef UNDER_ASAN
	{
		pid_t pid = fork();
		int status = 0;

		assert_true(pid >= 0);
		if (pid == 0) {
			unsigned long pages = 0;
			FILE *f = fopen("/proc/self/statm", "r");
			struct rlimit rl;

			if (f == NULL || fscanf(f, "%lu", &pages) != 1)
				_exit(3);
			fclose(f);
			rl.rlim_cur = rl.rlim_max =
			        (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (256u << 20);
			if (setrlimit(RLIMIT_AS, &rl) != 0)
				_exit(3);
			_exit(dataset_load_mem(&ds, h, sizeof(h)) == LEARN_ETRUNC ? 0 : 1);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
#endif
}

static void test_subset_batch_histogram(void **state)
{
	struct dataset *ds = small(DATASET_U8, 9, 4), *s = NULL;
	uint32_t idx[3] = {8, 0, 4}, h[3];
	float x[12];
	uint8_t y[3];

	(void)state;
	assert_int_equal(dataset_subset(&s, ds, idx, 3), 0);
	assert_int_equal(s->rows, 3);
	assert_int_equal(s->labels[0], 8 % 3);
	assert_int_equal(s->x_u8[4 * 2 + 1], (uint8_t)(4 * 7 + 1));
	dataset_batch(ds, idx, 3, x, y);
	assert_true(fabsf(x[1] - (float)(8 * 7 + 1) / 255.0f) < 1e-7f);
	assert_int_equal(y[2], 4 % 3);
	dataset_histogram(ds, h);
	assert_int_equal(h[0] + h[1] + h[2], 9);
	assert_int_equal(h[1], 3);
	dataset_free(s);
	dataset_free(ds);
}

static void write_text(const char *name, const char *text)
{
	char path[512];
	path_in(path, sizeof(path), name);
	assert_int_equal(file_write_atomic(path, text, strlen(text), 0600), 0);
}

static void test_import_csv(void **state)
{
	struct dataset *tr = NULL, *te = NULL;
	char path[512], why[256];

	(void)state;
	write_text("train.csv", "a,label,b\n1,0,10\n3,1,10\n\n5,2,10\r\n");
	path_in(path, sizeof(path), "train.csv");
	assert_int_equal(import_csv(&tr, path, 1, true, NULL, 0, why, sizeof(why)), 0);
	assert_int_equal(tr->rows, 3);
	assert_int_equal(tr->dims, 2);
	assert_int_equal(tr->classes, 3);
	assert_int_equal(tr->labels[2], 2);
	assert_true(fabsf(tr->mean[0] - 3.0f) < 1e-6f);
	assert_true(fabsf(tr->x_f32[0] + 1.2247449f) < 1e-5f);   /* (1 - 3) / sqrt(8/3) */
	assert_true(tr->std[1] == 1.0f && tr->x_f32[1] == 0.0f); /* constant column */
	/* The test set is scaled with the training statistics. */
	write_text("test.csv", "a,label,b\n3,1,12\n");
	path_in(path, sizeof(path), "test.csv");
	assert_int_equal(import_csv(&te, path, 1, true, tr, 0, why, sizeof(why)), 0);
	assert_int_equal(te->classes, 3);
	assert_true(te->x_f32[0] == 0.0f && te->x_f32[1] == 2.0f);
	dataset_free(te);
	/* Malformed inputs name the line. */
	write_text("bad1.csv", "1,2,0\n1,x,1\n");
	path_in(path, sizeof(path), "bad1.csv");
	assert_int_equal(import_csv(&te, path, -1, false, NULL, 0, why, sizeof(why)),
	                 LEARN_EBOUNDS);
	assert_non_null(strstr(why, ":2:"));
	write_text("bad2.csv", "1,2,0\n1,2\n");
	path_in(path, sizeof(path), "bad2.csv");
	assert_int_equal(import_csv(&te, path, -1, false, NULL, 0, why, sizeof(why)),
	                 LEARN_EBOUNDS);
	write_text("bad3.csv", "1,2,0.5\n");
	path_in(path, sizeof(path), "bad3.csv");
	assert_int_equal(import_csv(&te, path, -1, false, NULL, 0, why, sizeof(why)),
	                 LEARN_EBOUNDS);
	assert_non_null(strstr(why, "label"));
	path_in(path, sizeof(path), "test.csv");
	assert_int_equal(import_csv(&te, path, 5, true, NULL, 0, why, sizeof(why)), LEARN_EBOUNDS);
	assert_int_equal(import_csv(&te, path, 0, true, NULL, 0, why, sizeof(why)), 0);
	dataset_free(te);
	te = NULL;
	write_text("wide.csv", "1,2,3,0\n");
	path_in(path, sizeof(path), "wide.csv");
	assert_int_equal(import_csv(&te, path, -1, false, tr, 0, why, sizeof(why)),
	                 LEARN_EMISMATCH);
	assert_null(te);
	/* An empty last field is refused, not filled from the next line (strtod skips '\n'). */
	write_text("empty.csv", "1,2,\n3,4,5\n");
	path_in(path, sizeof(path), "empty.csv");
	assert_int_equal(import_csv(&te, path, -1, false, NULL, 0, why, sizeof(why)),
	                 LEARN_EBOUNDS);
	assert_non_null(strstr(why, ":1: column 2"));
	assert_int_equal(
	        import_csv(&te, path, IMPORT_CSV_NO_LABEL, false, NULL, 0, why, sizeof(why)),
	        LEARN_EBOUNDS);
	/* Without a label column every column is a feature, scaled by the stats given. */
	write_text("rows.csv", "3,10\n5,12\n");
	path_in(path, sizeof(path), "rows.csv");
	assert_int_equal(import_csv(&te, path, IMPORT_CSV_NO_LABEL, false, tr, 0, why, sizeof(why)),
	                 0);
	assert_int_equal(te->rows, 2);
	assert_int_equal(te->dims, 2);
	assert_int_equal(te->classes, 3);
	assert_true(te->x_f32[0] == 0.0f && te->x_f32[1] == 0.0f && te->labels[1] == 0);
	dataset_free(te);
	dataset_free(tr);
}

static void test_import_mnist(void **state)
{
	char dir[512], name[64], why[256];
	struct dataset *ds = NULL;

	(void)state;
	path_in(dir, sizeof(dir), "digits");
	assert_int_equal(file_mkdirs(dir), 0);
	/* Two images per digit, pixel i of digit d = ((d + i) % 256) / 255 to 3 decimals. */
	for (int d = 0; d < 10; d++) {
		size_t cap = 2 * 784 * 8 + 64, n = 0;
		char *t = malloc(cap);
		n += (size_t)snprintf(t + n, cap - n, "{ \"data\": [");
		for (int i = 0; i < 2 * 784; i++)
			n += (size_t)snprintf(t + n, cap - n, "%s%.3f", i ? "," : "",
			                      (double)((d + i) % 256) / 255.0);
		n += (size_t)snprintf(t + n, cap - n, "] }\n");
		snprintf(name, sizeof(name), "digits/%d.json", d);
		write_text(name, t);
		free(t);
	}
	assert_int_equal(import_mnist_json(&ds, dir, why, sizeof(why)), 0);
	assert_int_equal(ds->rows, 20);
	assert_int_equal(ds->height, 28);
	assert_int_equal(ds->labels[19], 9);
	assert_int_equal(ds->x_u8[784 * 19 + 5], (9 + 784 + 5) % 256); /* exact bytes back */
	dataset_free(ds);
	write_text("digits/3.json", "{ \"data\": [0.5, 2] }");
	assert_int_equal(import_mnist_json(&ds, dir, why, sizeof(why)), LEARN_EBOUNDS);
	assert_non_null(strstr(why, "3.json"));
	write_text("digits/3.json", "{ \"data\": [0.5, 0.25] }");
	assert_int_equal(import_mnist_json(&ds, dir, why, sizeof(why)), LEARN_EBOUNDS);
	write_text("digits/3.json", "{ \"nothing\": 1 }");
	assert_int_equal(import_mnist_json(&ds, dir, why, sizeof(why)), LEARN_EMAGIC);
	write_text("digits/3.json", "{ \"data\": [0.5, 0.25");
	assert_int_not_equal(import_mnist_json(&ds, dir, why, sizeof(why)), 0);
	assert_null(ds);
}

/* --- partitions ----------------------------------------------------------- */

static struct dataset *labelled(uint32_t rows, uint32_t classes)
{
	struct dataset *ds = NULL;
	assert_int_equal(dataset_alloc(&ds, rows, 1, classes, DATASET_U8), 0);
	for (uint32_t r = 0; r < rows; r++)
		ds->labels[r] = (uint8_t)(r * 7 % classes);
	return ds;
}

/* Every row at most once; returns how many rows were assigned. */
static uint32_t check_disjoint(const struct partition *p, const struct dataset *ds)
{
	uint8_t *seen = calloc(ds->rows, 1);
	uint32_t n = p->start[p->n_shards];

	for (uint32_t i = 0; i < n; i++) {
		assert_true(p->idx[i] < ds->rows);
		assert_int_equal(seen[p->idx[i]], 0);
		seen[p->idx[i]] = 1;
	}
	free(seen);
	return n;
}

static void test_partition(void **state)
{
	struct dataset *ds = labelled(1000, 10);
	struct partition a, b;

	(void)state;
	/* IID: everything, sizes within one, same seed same split, other seed not. */
	assert_int_equal(partition_make(&a, ds, PARTITION_IID, 7, 0, 0, 42), 0);
	assert_int_equal(check_disjoint(&a, ds), 1000);
	for (uint32_t s = 0; s < 7; s++) {
		uint32_t n = a.start[s + 1] - a.start[s];
		assert_true(n == 142 || n == 143);
	}
	assert_int_equal(partition_make(&b, ds, PARTITION_IID, 7, 0, 0, 42), 0);
	assert_memory_equal(a.idx, b.idx, 1000 * 4);
	partition_fini(&b);
	assert_int_equal(partition_make(&b, ds, PARTITION_IID, 7, 0, 0, 43), 0);
	assert_memory_not_equal(a.idx, b.idx, 1000 * 4);
	partition_fini(&b);
	partition_fini(&a);

	/* Dirichlet: everything, deterministic, skewed for small alpha. */
	assert_int_equal(partition_make(&a, ds, PARTITION_DIRICHLET, 8, 0.1, 0, 5), 0);
	assert_int_equal(check_disjoint(&a, ds), 1000);
	assert_int_equal(partition_make(&b, ds, PARTITION_DIRICHLET, 8, 0.1, 0, 5), 0);
	assert_memory_equal(a.start, b.start, 9 * 4);
	assert_memory_equal(a.idx, b.idx, 1000 * 4);
	{
		/* With alpha 0.1 a typical shard is dominated by few classes. */
		uint32_t dominated = 0;
		for (uint32_t s = 0; s < 8; s++) {
			uint32_t h[10] = {0}, mx = 0, n = a.start[s + 1] - a.start[s];
			assert_true(n > 0); /* redrawn until no shard is empty */
			for (uint32_t i = a.start[s]; i < a.start[s + 1]; i++)
				h[ds->labels[a.idx[i]]]++;
			for (int c = 0; c < 10; c++)
				mx = h[c] > mx ? h[c] : mx;
			dominated += mx * 2 > n;
		}
		assert_true(dominated >= 4);
	}
	partition_fini(&b);
	partition_fini(&a);

	/* c classes per shard: at most c labels each, every class held. */
	assert_int_equal(partition_make(&a, ds, PARTITION_CLASSES, 5, 0, 2, 9), 0);
	assert_int_equal(check_disjoint(&a, ds), 1000);
	for (uint32_t s = 0; s < 5; s++) {
		uint32_t h[10] = {0}, k = 0;
		for (uint32_t i = a.start[s]; i < a.start[s + 1]; i++)
			h[ds->labels[a.idx[i]]]++;
		for (int c = 0; c < 10; c++)
			k += h[c] > 0;
		assert_int_equal(k, 2);
	}
	partition_fini(&a);
	/* Fewer slots than classes: each shard still has exactly c, the rest is left out. */
	assert_int_equal(partition_make(&a, ds, PARTITION_CLASSES, 3, 0, 2, 9), 0);
	assert_int_equal(check_disjoint(&a, ds), 600);
	for (uint32_t s = 0; s < 3; s++) {
		uint32_t h[10] = {0}, k = 0;
		for (uint32_t i = a.start[s]; i < a.start[s + 1]; i++)
			h[ds->labels[a.idx[i]]]++;
		for (int c = 0; c < 10; c++)
			k += h[c] > 0;
		assert_int_equal(k, 2);
	}
	partition_fini(&a);
	/* More shards than classes: classes are shared, split evenly. */
	assert_int_equal(partition_make(&a, ds, PARTITION_CLASSES, 20, 0, 1, 9), 0);
	assert_int_equal(check_disjoint(&a, ds), 1000);
	for (uint32_t s = 0; s < 20; s++)
		assert_int_equal(a.start[s + 1] - a.start[s], 50);
	partition_fini(&a);

	/* Bad arguments. */
	assert_int_equal(partition_make(&a, ds, PARTITION_IID, 0, 0, 0, 1), -EINVAL);
	assert_int_equal(partition_make(&a, ds, PARTITION_DIRICHLET, 3, 0, 0, 1), -EINVAL);
	assert_int_equal(partition_make(&a, ds, PARTITION_CLASSES, 3, 0, 11, 1), -EINVAL);
	assert_int_equal(partition_kind_parse("dirichlet"), PARTITION_DIRICHLET);
	assert_int_equal(partition_kind_parse("nope"), -1);
	dataset_free(ds);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sotto-learn-data-XXXXXX");
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_roundtrip),
	        cmocka_unit_test(test_corrupt),
	        cmocka_unit_test(test_lying_header_allocates_little),
	        cmocka_unit_test(test_subset_batch_histogram),
	        cmocka_unit_test(test_import_csv),
	        cmocka_unit_test(test_import_mnist),
	        cmocka_unit_test(test_partition),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
