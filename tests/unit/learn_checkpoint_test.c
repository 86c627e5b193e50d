/*
 * learn_checkpoint_test.c: a checkpoint restores everything (training
 * resumed from it continues bit for bit as if never stopped, extra blob
 * included), and every truncated, corrupted or foreign file is refused
 * with the right error and no crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "learn/checkpoint.h"
#include "learn/dataset.h"
#include "learn/learn.h"
#include "learn/train.h"
#include "util/bytes.h"
#include "util/err.h"
#include "util/file.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];
static struct dataset *data;

static struct train *trainer(enum optim_type type, enum model_type mt)
{
	struct model_spec s;
	struct optim_params op;
	struct train *t = NULL;

	memset(&s, 0, sizeof(s));
	s.type = mt;
	s.channels = 1;
	s.height = 16;
	s.width = 16;
	s.classes = 4;
	s.n_hidden = 1;
	s.hidden[0] = 8;
	s.conv[0] = 2;
	s.conv[1] = 3;
	optim_params_default(&op, type);
	assert_int_equal(train_alloc(&t, &s, 11, &op, 7, 3), 0);
	return t;
}

static void test_resume_identical(void **state)
{
	const enum model_type types[] = {MODEL_MLP, MODEL_CNN};
	char path[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/a.ckpt", tmpdir);
	for (int k = 0; k < 2; k++)
		for (int o = 0; o < 2; o++) {
			struct train *a = trainer(o ? OPTIM_ADAM : OPTIM_SGD, types[k]), *b = NULL;
			const char extra[] = "push-sum weight and round counters";
			uint8_t *x = NULL;
			size_t xlen = 0;
			/* 10 steps: 50 rows / batch 7 = 8 steps an epoch, so mid-epoch 2. */
			assert_int_equal(train_steps(a, data, 10, NULL), 0);
			assert_int_equal(checkpoint_save(path, a, extra, sizeof(extra)), 0);
			assert_int_equal(checkpoint_load(path, &b, &x, &xlen), 0);
			assert_int_equal(xlen, sizeof(extra));
			assert_memory_equal(x, extra, sizeof(extra));
			assert_memory_equal(&a->model->spec, &b->model->spec,
			                    sizeof(a->model->spec));
			assert_int_equal(b->epoch, 1);
			assert_int_equal(b->cursor, 14);
			assert_int_equal(b->steps, 10);
			/* Both continue the same way. */
			assert_int_equal(train_steps(a, data, 9, NULL), 0);
			assert_int_equal(train_steps(b, data, 9, NULL), 0);
			assert_memory_equal(a->model->params, b->model->params,
			                    a->model->n_params * sizeof(float));
			assert_memory_equal(a->optim.m, b->optim.m,
			                    a->model->n_params * sizeof(float));
			free(x);
			train_free(a);
			train_free(b);
		}
	/* No extra: NULL back; NULL out-pointers allowed. */
	{
		struct train *a = trainer(OPTIM_SGD, MODEL_LOGREG), *b = NULL;
		uint8_t *x = (uint8_t *)&x;
		size_t xlen = 99;
		assert_int_equal(checkpoint_save(path, a, NULL, 0), 0);
		assert_int_equal(checkpoint_load(path, &b, &x, &xlen), 0);
		assert_null(x);
		assert_int_equal(xlen, 0);
		train_free(b);
		assert_int_equal(checkpoint_load(path, &b, NULL, NULL), 0);
		train_free(b);
		train_free(a);
	}
	/* The atomic write leaves no temporary file behind. */
	{
		DIR *d = opendir(tmpdir);
		struct dirent *e;
		int files = 0;
		while ((e = readdir(d)) != NULL)
			files += e->d_name[0] != '.';
		closedir(d);
		assert_int_equal(files, 1);
	}
}

static void expect(const uint8_t *buf, size_t len, int want)
{
	struct train *t = (struct train *)&t;
	uint8_t *x = (uint8_t *)&x;
	size_t xl = 5;
	int rc = checkpoint_load_mem(buf, len, &t, &x, &xl);
	if (rc != want)
		fail_msg("expected %d (%s), got %d (%s)", want, err_str(want), rc, err_str(rc));
	assert_null(t);
	assert_null(x);
	assert_int_equal(xl, 0);
}

/* Rewrites the CRC so that a mutation reaches the field checks. */
static void reseal(uint8_t *b, size_t len)
{
	/* CRC-32 (zlib's polynomial), computed here independently bit by bit. */
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < len - 4; i++) {
		c ^= b[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	bytes_put_le32(b + len - 4, ~c);
}

static void expect_fail(const uint8_t *buf, size_t len)
{
	struct train *t = (struct train *)&t;
	uint8_t *x = (uint8_t *)&x;
	size_t xl = 5;

	assert_true(checkpoint_load_mem(buf, len, &t, &x, &xl) < 0);
	assert_null(t);
	assert_null(x);
	assert_int_equal(xl, 0);
}

static void test_corrupt(void **state)
{
	struct train *t = trainer(OPTIM_ADAM, MODEL_MLP), *back = NULL;
	char path[512];
	uint8_t *good = NULL, *b;
	size_t len = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/c.ckpt", tmpdir);
	assert_int_equal(train_steps(t, data, 3, NULL), 0);
	assert_int_equal(checkpoint_save(path, t, "xy", 2), 0);
	assert_int_equal(file_read_all(path, 1u << 24, &good, &len), 0);
	b = malloc(len + 8);
	/* Our independent CRC agrees with the writer's: reseal() is faithful. */
	memcpy(b, good, len);
	reseal(b, len);
	assert_memory_equal(b, good, len);
	assert_int_equal(checkpoint_load_mem(good, len, &back, NULL, NULL), 0);
	train_free(back);

	/* Every truncation. */
	for (size_t n = 0; n < len; n++) {
		int rc = checkpoint_load_mem(good, n, &back, NULL, NULL);
		assert_true(rc == LEARN_ETRUNC || (n < 8 && rc == LEARN_EMAGIC));
		assert_null(back);
	}
	/* One flipped bit anywhere (sampled): refused, by the CRC at the latest. */
	for (size_t i = 0; i < len; i += 7) {
		memcpy(b, good, len);
		b[i] ^= 0x10;
		expect_fail(b, len);
	}
	memcpy(b, good, len);
	b[len / 2] ^= 1;
	expect(b, len, LEARN_ECORRUPT);
	/* A byte appended. */
	memcpy(b, good, len);
	b[len] = 0;
	expect(b, len + 1, LEARN_ECORRUPT);
	/* Fields that pass the CRC but not the checks. */
#define MUTATE(off, put, val, want)                                                                \
	do {                                                                                       \
		memcpy(b, good, len);                                                              \
		put(b + (off), val);                                                               \
		reseal(b, len);                                                                    \
		expect(b, len, want);                                                              \
	} while (0)
	MUTATE(12, bytes_put_le32, 7u, LEARN_EBOUNDS);          /* model type */
	MUTATE(12 + 16, bytes_put_le32, 1u, LEARN_EBOUNDS);     /* one class */
	MUTATE(12 + 24, bytes_put_le32, 9u, LEARN_EMISMATCH);   /* hidden width: n_params differ */
	MUTATE(76, bytes_put_le32, 5u, LEARN_EBOUNDS);          /* optimizer type */
	MUTATE(80, bytes_put_le_float, -1.0f, LEARN_EBOUNDS);   /* learning rate */
	MUTATE(100, bytes_put_le32, 0u, LEARN_EBOUNDS);         /* batch */
	MUTATE(100, bytes_put_le32, 1u << 20, LEARN_EBOUNDS);   /* batch */
	MUTATE(140, bytes_put_le64, 5u, LEARN_EMISMATCH);       /* n_params */
	MUTATE(148, bytes_put_le64, 1ull << 40, LEARN_EBOUNDS); /* extra length */
	MUTATE(148, bytes_put_le64, 3u, LEARN_ETRUNC);          /* extra length */
	/* An infinite parameter. */
	MUTATE(CHECKPOINT_HEADER_BYTES, bytes_put_le_float, 1.0f / 0.0f, LEARN_EBOUNDS);
	MUTATE(8, bytes_put_le32, 2u, LEARN_EVERSION);
#undef MUTATE
	/* Foreign files: a dataset, a text file. */
	{
		char dpath[512];
		uint8_t *d = NULL;
		size_t dl = 0;
		snprintf(dpath, sizeof(dpath), "%s/d.sdat", tmpdir);
		assert_int_equal(dataset_save(data, dpath), 0);
		assert_int_equal(file_read_all(dpath, 1u << 24, &d, &dl), 0);
		expect(d, dl, LEARN_EMAGIC);
		expect((const uint8_t *)"hello", 5, LEARN_EMAGIC);
		assert_int_equal(checkpoint_load(dpath, &back, NULL, NULL), LEARN_EMAGIC);
		assert_int_equal(unlink(dpath), 0);
		free(d);
	}
	assert_int_equal(checkpoint_load("/nonexistent/c.ckpt", &back, NULL, NULL), -ENOENT);
	assert_int_equal(checkpoint_save(path, t, "x", CHECKPOINT_MAX_EXTRA + 1), -EFBIG);
	assert_int_equal(unlink(path), 0);
	free(b);
	free(good);
	train_free(t);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sotto-learn-ckpt-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	if (dataset_alloc(&data, 50, 256, 4, DATASET_U8) != 0)
		return -1;
	data->channels = 1;
	data->height = 16;
	data->width = 16;
	for (uint32_t r = 0; r < 50; r++) {
		data->labels[r] = (uint8_t)(r % 4);
		for (uint32_t j = 0; j < 256; j++)
			data->x_u8[r * 256 + j] = (uint8_t)((r * 31 + j * 17) % 251);
	}
	return 0;
}

static int teardown(void **state)
{
	char path[512];
	(void)state;
	dataset_free(data);
	snprintf(path, sizeof(path), "%s/a.ckpt", tmpdir);
	(void)unlink(path);
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_resume_identical),
	        cmocka_unit_test(test_corrupt),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
