/*
 * fuzz_checkpoint.c: libFuzzer harness for the checkpoint reader
 * (checkpoint_load_mem). Any bytes must load or be refused; a loaded
 * checkpoint must be usable (one forward pass). Never crash or leak.
 */
#include "learn/checkpoint.h"
#include "learn/model.h"
#include "learn/train.h"
#include "util/util.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct train *t = NULL;
	uint8_t *extra = NULL;
	size_t extra_len = 0;
	int rc = checkpoint_load_mem(data, size, &t, &extra, &extra_len);

	SOTTO_ASSERT((rc == 0) == (t != NULL));
	if (t != NULL) {
		const struct model_spec *s = &t->model->spec;
		size_t d = (size_t)s->channels * s->height * s->width;
		float *x = calloc(d, sizeof(float));
		SOTTO_ASSERT(x != NULL);
		(void)model_forward(t->model, x, 1);
		free(x);
	}
	free(extra);
	train_free(t);
	return 0;
}
