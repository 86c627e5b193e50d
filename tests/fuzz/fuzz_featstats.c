/*
 * fuzz_featstats.c: libFuzzer harness for the statistics file parser
 * (featstats_parse, [Training] Standardize = FILE and the agreed
 * DataDir/standardize.stats). Any bytes must parse or be refused with a
 * reason, leaving nothing allocated; parsed statistics have finite means
 * and finite deviations > 0, and the mean-std text of them parses back to
 * the same floats, bit for bit.
 */
#include "learn/featstats.h"
#include "util/util.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct featstats fs, back;
	char why[256] = "", *text;
	size_t cap, len = 0;

	if (featstats_parse(&fs, (const char *)data, size, why, sizeof(why)) != 0) {
		SOTTO_ASSERT(fs.mean == NULL && fs.std == NULL && fs.dims == 0);
		return 0;
	}
	SOTTO_ASSERT(fs.dims >= 1 && fs.mean != NULL && fs.std != NULL);
	cap = 64 + (size_t)fs.dims * 48;
	text = malloc(cap);
	SOTTO_ASSERT(text != NULL);
	len += (size_t)snprintf(text, cap, "sotto-stats 1 mean-std\nfeatures %u\n", fs.dims);
	for (uint32_t j = 0; j < fs.dims; j++) {
		SOTTO_ASSERT(isfinite(fs.mean[j]) && isfinite(fs.std[j]) && fs.std[j] > 0);
		len += (size_t)snprintf(text + len, cap - len, "%u %.9g %.9g\n", j,
		                        (double)fs.mean[j], (double)fs.std[j]);
	}
	SOTTO_ASSERT(featstats_parse(&back, text, len, NULL, 0) == 0);
	SOTTO_ASSERT(back.dims == fs.dims);
	SOTTO_ASSERT(memcmp(back.mean, fs.mean, fs.dims * sizeof(float)) == 0);
	SOTTO_ASSERT(memcmp(back.std, fs.std, fs.dims * sizeof(float)) == 0);
	featstats_free(&back);
	featstats_free(&fs);
	free(text);
	return 0;
}
