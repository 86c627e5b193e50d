/*
 * fuzz_csv.c: libFuzzer harness for the CSV importer (import_csv_text), the
 * reader behind `sotto data import-csv` and `sotto predict`. The first byte
 * picks the options (label column: last, first, none; a header line; with
 * or without another file's statistics), the rest is the text. Any bytes
 * must import or be refused with a reason; never crash, leak, or allocate
 * beyond what the rows need. A dataset that imports keeps its promises.
 */
#include "learn/dataset.h"
#include "learn/import.h"
#include "learn/learn.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int labels[4] = {-1, 0, IMPORT_CSV_NO_LABEL, 1};
	struct dataset *ds = NULL, *stats = NULL;
	char why[256] = "";
	char *text;
	int rc;

	if (size < 1 || size > (1u << 20))
		return 0;
	text = malloc(size);
	SOTTO_ASSERT(text != NULL);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (data[0] & 8) {
		/* A 3-feature, 2-class "training set" whose statistics scale the input. */
		SOTTO_ASSERT(dataset_alloc(&stats, 1, 3, 2, DATASET_F32) == 0);
		stats->mean = calloc(3, sizeof(float));
		stats->std = malloc(3 * sizeof(float));
		SOTTO_ASSERT(stats->mean != NULL && stats->std != NULL);
		for (int i = 0; i < 3; i++)
			stats->std[i] = 0.5f;
	}
	rc = import_csv_text(&ds, text, size - 1, "fuzz.csv", labels[data[0] & 3],
	                     (data[0] & 4) != 0, stats, (data[0] & 16) ? 2 : 0, why, sizeof(why));
	SOTTO_ASSERT((rc == 0) == (ds != NULL));
	SOTTO_ASSERT(rc == 0 || why[0] != '\0' || rc == -ENOMEM);
	if (ds != NULL) {
		uint32_t *h = calloc(ds->classes, sizeof(*h));
		SOTTO_ASSERT(h != NULL && ds->rows >= 1 && ds->dims >= 1);
		dataset_histogram(ds, h);
		for (size_t i = 0; i < (size_t)ds->rows * ds->dims; i++)
			SOTTO_ASSERT(isfinite(ds->x_f32[i]));
		free(h);
	}
	dataset_free(ds);
	dataset_free(stats);
	free(text);
	return 0;
}
