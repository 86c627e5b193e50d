/*
 * fuzz_dataset.c: libFuzzer harness for the dataset reader (plain and
 * gzip, through dataset_load_mem). Any bytes must load or be refused with
 * an error of learn.h; never crash, leak, or allocate beyond the data.
 */
#include "learn/dataset.h"
#include "util/util.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dataset *ds = NULL;
	int rc = dataset_load_mem(&ds, data, size);

	SOTTO_ASSERT((rc == 0) == (ds != NULL));
	if (ds != NULL) {
		/* A loaded dataset keeps its promises. */
		uint32_t *h = calloc(ds->classes, sizeof(*h));
		SOTTO_ASSERT(h != NULL);
		dataset_histogram(ds, h);
		free(h);
	}
	dataset_free(ds);
	return 0;
}
