/*
 * learn_featstats_test.c: per-feature statistics for [Training]
 * Standardize: moments and statistics against hand-computed answers, the
 * statistics file (round trips, both kinds, every malformation the parser
 * must refuse), the raw CSV import, applying statistics (u8 and f32, and
 * what it refuses), and the statistics phase's estimate (the push-sum
 * average of per-site moments is the pooled statistics; calm counting).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "learn/dataset.h"
#include "learn/featstats.h"
#include "learn/import.h"
#include "learn/learn.h"
#include "learn/model.h"
#include "node/stats_phase.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct dataset *f32_rows(uint32_t rows, uint32_t dims, const float *x)
{
	struct dataset *ds = NULL;

	assert_int_equal(dataset_alloc(&ds, rows, dims, 2, DATASET_F32), 0);
	memcpy(ds->x_f32, x, (size_t)rows * dims * sizeof(float));
	return ds;
}

static void test_moments_and_stats(void **state)
{
	/* feature 0: 1 2 3 4 (mean 2.5, population sd sqrt(1.25)); feature 1: constant 7 */
	const float x[] = {1, 7, 2, 7, 3, 7, 4, 7};
	struct dataset *ds = f32_rows(4, 2, x);
	double sum[2], sq[2];
	struct featstats fs;

	(void)state;
	featstats_moments(ds, sum, sq);
	assert_true(sum[0] == 10 && sq[0] == 30 && sum[1] == 28 && sq[1] == 196);
	assert_int_equal(featstats_from_moments(&fs, 2, 4, sum, sq), 0);
	assert_true(fabsf(fs.mean[0] - 2.5f) < 1e-6f);
	assert_true(fabsf(fs.std[0] - sqrtf(1.25f)) < 1e-6f);
	assert_true(fs.mean[1] == 7.0f && fs.std[1] == 1.0f); /* constant: only centred */
	assert_int_equal(fs.rows, 4);
	featstats_free(&fs);
	assert_int_equal(featstats_from_moments(&fs, 2, 0, sum, sq), LEARN_EBOUNDS);
	sq[0] = NAN;
	assert_int_equal(featstats_from_moments(&fs, 2, 4, sum, sq), LEARN_EBOUNDS);
	dataset_free(ds);
}

static void test_apply(void **state)
{
	const float x[] = {1, 10, 3, 30};
	struct dataset *ds = f32_rows(2, 2, x), *u8 = NULL;
	struct featstats fs;

	(void)state;
	assert_int_equal(featstats_alloc(&fs, 2), 0);
	fs.mean[0] = 2, fs.std[0] = 1, fs.mean[1] = 20, fs.std[1] = 10;
	assert_int_equal(featstats_apply(ds, &fs), 0);
	assert_true(ds->x_f32[0] == -1 && ds->x_f32[1] == -1 && ds->x_f32[2] == 1 &&
	            ds->x_f32[3] == 1);
	assert_non_null(ds->mean);
	assert_true(ds->mean[1] == 20 && ds->std[1] == 10);
	/* Twice is refused, and changes nothing. */
	assert_int_equal(featstats_apply(ds, &fs), LEARN_EMISMATCH);
	assert_true(ds->x_f32[0] == -1);

	/* u8 rows become floats, byte / 255 then scaled. */
	assert_int_equal(dataset_alloc(&u8, 1, 2, 2, DATASET_U8), 0);
	u8->x_u8[0] = 255, u8->x_u8[1] = 0;
	fs.mean[0] = 0.5f, fs.std[0] = 0.25f, fs.mean[1] = 0, fs.std[1] = 1;
	assert_int_equal(featstats_apply(u8, &fs), 0);
	assert_int_equal(u8->elem, DATASET_F32);
	assert_null(u8->x_u8);
	assert_true(fabsf(u8->x_f32[0] - 2.0f) < 1e-6f && u8->x_f32[1] == 0);
	dataset_free(u8);

	/* Other dims: refused. */
	fs.dims = 3;
	u8 = f32_rows(2, 2, x);
	assert_int_equal(featstats_apply(u8, &fs), LEARN_EMISMATCH);
	fs.dims = 2;
	/* Out of float range: refused, dataset unchanged. */
	fs.std[0] = 1e-38f;
	u8->x_f32[0] = 3e38f;
	assert_int_equal(featstats_apply(u8, &fs), LEARN_EBOUNDS);
	assert_null(u8->mean);
	assert_true(u8->x_f32[0] == 3e38f);
	dataset_free(u8);
	featstats_free(&fs);
	dataset_free(ds);
}

static int parse(struct featstats *fs, const char *text)
{
	char why[256] = "";
	int rc = featstats_parse(fs, text, strlen(text), why, sizeof(why));
	if (rc != 0)
		assert_true(why[0] != '\0'); /* every refusal says why */
	return rc;
}

static void test_parse(void **state)
{
	struct featstats fs;

	(void)state;
	assert_int_equal(parse(&fs, "# agreed\nsotto-stats 1 mean-std\nfeatures 2\n\n0 1.5 2 # x\n"
	                            "1 -3 0.5\n"),
	                 0);
	assert_int_equal(fs.dims, 2);
	assert_int_equal(fs.rows, 0);
	assert_true(fs.mean[0] == 1.5f && fs.std[0] == 2 && fs.mean[1] == -3 && fs.std[1] == 0.5f);
	featstats_free(&fs);
	/* sums: mean 2.5, sd sqrt(1.25) from n 4, sum 10, sumsq 30 */
	assert_int_equal(parse(&fs, "sotto-stats 1 sums\nfeatures 1\nrows 4\n0 10 30\n"), 0);
	assert_true(fabsf(fs.mean[0] - 2.5f) < 1e-6f && fabsf(fs.std[0] - sqrtf(1.25f)) < 1e-6f);
	assert_int_equal(fs.rows, 4);
	featstats_free(&fs);

	assert_int_equal(parse(&fs, ""), LEARN_EMAGIC);
	assert_int_equal(parse(&fs, "SOTTODAT\n"), LEARN_EMAGIC);
	assert_int_equal(parse(&fs, "sotto-stats 2 mean-std\nfeatures 1\n0 1 1\n"), LEARN_EVERSION);
	assert_int_equal(parse(&fs, "sotto-stats 1 mean-std\nfeatures 0\n"), LEARN_EBOUNDS);
	assert_int_equal(parse(&fs, "sotto-stats 1 mean-std\nfeatures 99999999999\n0 1 1\n"),
	                 LEARN_EBOUNDS);
	assert_int_equal(parse(&fs, "sotto-stats 1 mean-std\nfeatures 1000000\n0 1 1\n"),
	                 LEARN_EBOUNDS); /* more features than the text can hold */
	assert_int_equal(parse(&fs, "sotto-stats 1 mean-std\nfeatures 2\n0 1 1\n"), LEARN_EBOUNDS);
	assert_int_equal(parse(&fs, "sotto-stats 1 mean-std\nfeatures 2\n1 1 1\n0 1 1\n"),
	                 LEARN_EBOUNDS);
	assert_int_equal(parse(&fs, "sotto-stats 1 mean-std\nfeatures 1\n0 1 0\n"), LEARN_EBOUNDS);
	assert_int_equal(parse(&fs, "sotto-stats 1 mean-std\nfeatures 1\n0 1 -1\n"), LEARN_EBOUNDS);
	assert_int_equal(parse(&fs, "sotto-stats 1 mean-std\nfeatures 1\n0 nan 1\n"),
	                 LEARN_EBOUNDS);
	assert_int_equal(parse(&fs, "sotto-stats 1 mean-std\nfeatures 1\n0 1 inf\n"),
	                 LEARN_EBOUNDS);
	assert_int_equal(parse(&fs, "sotto-stats 1 mean-std\nfeatures 1\n0 1e39 1\n"),
	                 LEARN_EBOUNDS);
	assert_int_equal(parse(&fs, "sotto-stats 1 mean-std\nfeatures 1\n0 1 1e-50\n"),
	                 LEARN_EBOUNDS);
	assert_int_equal(parse(&fs, "sotto-stats 1 mean-std\nfeatures 1\n0 1 1 1\n"),
	                 LEARN_EBOUNDS);
	assert_int_equal(parse(&fs, "sotto-stats 1 mean-std\nfeatures 1\n0 1\n"), LEARN_EBOUNDS);
	assert_int_equal(parse(&fs, "sotto-stats 1 mean-std\nfeatures 1\n0 1 1\n1 1 1\n"),
	                 LEARN_EBOUNDS);
	assert_int_equal(parse(&fs, "sotto-stats 1 mean-std\nfeatures 1\n-0 1 1\n"), LEARN_EBOUNDS);
	assert_int_equal(parse(&fs, "sotto-stats 1 sums\nfeatures 1\n0 10 30\n"), LEARN_EBOUNDS);
	assert_int_equal(parse(&fs, "sotto-stats 1 sums\nfeatures 1\nrows 0\n0 10 30\n"),
	                 LEARN_EBOUNDS);
	assert_int_equal(parse(&fs, "sotto-stats 1 sums\nfeatures 1\nrows 4\n0 10 -1\n"),
	                 LEARN_EBOUNDS);
	/* sum of squares 20 < 10^2 / 4: no real values have these sums */
	assert_int_equal(parse(&fs, "sotto-stats 1 sums\nfeatures 1\nrows 4\n0 10 20\n"),
	                 LEARN_EBOUNDS);
	assert_int_equal(parse(&fs, "sotto-stats 1 mean-std\nfeatures 1\nrows x\n0 1 1\n"),
	                 LEARN_EBOUNDS);
	/* The text ends at its first NUL. */
	assert_int_equal(featstats_parse(&fs, "sotto-stats 1 mean-std\nfeatures 1\n\0000 1 1\n", 40,
	                                 NULL, 0),
	                 LEARN_EBOUNDS);
	assert_null(fs.mean);
}

static void test_file_round_trip(void **state)
{
	char dir[] = "/tmp/sotto-featstats-XXXXXX", path[64], why[256];
	struct featstats fs, back;
	const double sum[2] = {10, -1}, sq[2] = {30, 0.5};

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a.stats", dir);
	assert_int_equal(featstats_alloc(&fs, 2), 0);
	fs.mean[0] = 0.1f, fs.std[0] = 3.3333333f, fs.mean[1] = -1e30f, fs.std[1] = 1e-30f;
	fs.rows = 12;
	assert_int_equal(featstats_save(&fs, path, "two lines\nof comment"), 0);
	assert_int_equal(featstats_load(&back, path, why, sizeof(why)), 0);
	assert_int_equal(back.dims, 2);
	assert_int_equal(back.rows, 12);
	assert_memory_equal(back.mean, fs.mean, 2 * sizeof(float)); /* bit for bit */
	assert_memory_equal(back.std, fs.std, 2 * sizeof(float));
	featstats_free(&back);
	featstats_free(&fs);

	assert_int_equal(featstats_save_sums(path, 2, 4, sum, sq, NULL), 0);
	assert_int_equal(featstats_load(&back, path, why, sizeof(why)), 0);
	assert_true(fabsf(back.mean[0] - 2.5f) < 1e-6f && back.std[1] > 0);
	featstats_free(&back);
	assert_int_equal(unlink(path), 0);
	assert_true(featstats_load(&back, path, why, sizeof(why)) < 0);
	assert_non_null(strstr(why, path));
	assert_int_equal(rmdir(dir), 0);
}

static void test_import_raw(void **state)
{
	const char *csv = "1,10,0\n3,30,1\n";
	struct dataset *ds = NULL, *other = NULL;
	char why[256];

	(void)state;
	assert_int_equal(import_csv_text_flags(&ds, csv, strlen(csv), "t.csv", -1, false, NULL, 0,
	                                       IMPORT_CSV_RAW, why, sizeof(why)),
	                 0);
	assert_null(ds->mean); /* not standardised */
	assert_true(ds->x_f32[0] == 1 && ds->x_f32[1] == 10 && ds->x_f32[3] == 30);
	assert_int_equal(ds->classes, 2);
	/* Raw with training statistics makes no sense; unknown flags neither. */
	assert_int_equal(import_csv_text_flags(&other, csv, strlen(csv), "t.csv", -1, false, ds, 0,
	                                       IMPORT_CSV_RAW, why, sizeof(why)),
	                 -EINVAL);
	assert_null(other);
	dataset_free(ds);
	assert_int_equal(import_csv_text_flags(&ds, csv, strlen(csv), "t.csv", -1, false, NULL, 0,
	                                       0x80, why, sizeof(why)),
	                 -EINVAL);
	assert_null(ds);
}

/*
 * Three sites of 1, 2 and 3 rows: the rows-weighted average of their
 * (mean, mean of squares), which push-sum computes, gives exactly the
 * statistics of the six rows pooled.
 */
static void test_phase_pools(void **state)
{
	const float a[] = {1}, b[] = {2, 4}, c[] = {0, 6, 8};
	struct dataset *ds[3] = {f32_rows(1, 1, a), f32_rows(2, 1, b), f32_rows(3, 1, c)};
	struct stats_phase *sp[3];
	float x[3][2], avg[2] = {0, 0};
	uint64_t steps = 0;
	struct featstats fs;
	double w = 0;

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(stats_phase_alloc(&sp[i], ds[i]), 0);
		assert_int_equal(stats_phase_snapshot(sp[i], x[i], &steps), 0);
		assert_int_equal(steps, 1); /* not the known initial model */
		for (int j = 0; j < 2; j++)
			avg[j] += (float)ds[i]->rows * x[i][j];
		w += ds[i]->rows;
	}
	assert_int_equal(stats_phase_model(sp[0])->spec.type, MODEL_STATS);
	assert_int_equal(stats_phase_model(sp[0])->n_params, 2);
	assert_int_equal(stats_phase_model(sp[0])->n_segs, 2);
	avg[0] /= (float)w, avg[1] /= (float)w;
	/* pooled: 1 2 4 0 6 8 -> mean 3.5, mean of squares 121 / 6 */
	assert_true(fabsf(avg[0] - 3.5f) < 1e-6f && fabsf(avg[1] - 121.0f / 6) < 1e-5f);
	assert_true(stats_phase_apply(sp[2], avg, x[2], 7) > STATS_CALM_MOVE);
	assert_int_equal(stats_phase_calm(sp[2]), 0);
	assert_int_equal(stats_phase_snapshot(sp[2], x[2], NULL), 7);
	for (int r = 0; r < STATS_CALM_ROUNDS; r++)
		assert_true(stats_phase_apply(sp[2], avg, avg, 8 + (uint64_t)r) == 0);
	assert_int_equal(stats_phase_calm(sp[2]), STATS_CALM_ROUNDS);
	assert_int_equal(stats_phase_applied(sp[2]), STATS_CALM_ROUNDS + 1);
	assert_int_equal(stats_phase_result(sp[2], &fs), 0);
	assert_true(fabsf(fs.mean[0] - 3.5f) < 1e-5f);
	assert_true(fabsf(fs.std[0] - sqrtf(121.0f / 6 - 12.25f)) < 1e-4f);
	featstats_free(&fs);
	for (int i = 0; i < 3; i++) {
		stats_phase_free(sp[i]);
		dataset_free(ds[i]);
	}
}

/* Many features: segments of ceil(F / 127) features, tiling both halves. */
static void test_phase_segments(void **state)
{
	struct dataset *ds = NULL;
	struct stats_phase *sp;
	const struct model *m;
	size_t at = 0;

	(void)state;
	assert_int_equal(dataset_alloc(&ds, 1, 784, 2, DATASET_U8), 0);
	assert_int_equal(stats_phase_alloc(&sp, ds), 0);
	m = stats_phase_model(sp);
	assert_true(m->n_segs <= 2 * STATS_MAX_SEG && m->n_segs <= MODEL_MAX_SEGMENTS);
	for (size_t s = 0; s < m->n_segs; s++) {
		assert_int_equal(m->segs[s].offset, at);
		assert_true(m->segs[s].length <= 7);
		at += m->segs[s].length;
	}
	assert_int_equal(at, 2 * 784);
	stats_phase_free(sp);
	/* A standardised dataset has no raw moments to give. */
	ds->mean = calloc(784, sizeof(float));
	assert_int_equal(stats_phase_alloc(&sp, ds), LEARN_EBOUNDS);
	dataset_free(ds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_moments_and_stats),
	        cmocka_unit_test(test_apply),
	        cmocka_unit_test(test_parse),
	        cmocka_unit_test(test_file_round_trip),
	        cmocka_unit_test(test_import_raw),
	        cmocka_unit_test(test_phase_pools),
	        cmocka_unit_test(test_phase_segments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
