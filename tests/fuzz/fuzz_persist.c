/*
 * fuzz_persist.c: libFuzzer harness for the node's part of a checkpoint
 * (the blob gossip_checkpoint_extra writes, persist_decode reads), which
 * is also the whole of DataDir/standardize.partial, the statistics phase's
 * state across restarts. Any bytes must decode or be refused; a decoded
 * one gives finite progress. Layouts of 0, 6 (a statistics phase of 3
 * features) and 2 * 784 floats after the counters.
 */
#include "node/gossip.h"
#include "util/util.h"

#include <math.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t n_params[] = {0, 6, 2 * 784};

	for (size_t i = 0; i < ARRAY_LEN(n_params); i++) {
		uint64_t rounds = 0;
		double epochs = NAN;
		if (gossip_extra_progress(data, size, n_params[i], &rounds, &epochs) == 0)
			SOTTO_ASSERT(isfinite(epochs));
	}
	return 0;
}
