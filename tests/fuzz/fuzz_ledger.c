/*
 * fuzz_ledger.c: libFuzzer harness for the privacy ledger reader
 * (dp_ledger_decode). Any bytes must decode or be refused, changing
 * nothing when refused; a decoded ledger holds finite values >= 0 and
 * encodes back to a text that decodes to the same ledger, bit for bit.
 */
#include "learn/dp.h"
#include "util/util.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dp_ledger l, back, before;
	char buf[DP_LEDGER_MAX_BYTES];
	int n;

	memset(&l, 0x5a, sizeof(l));
	before = l;
	if (dp_ledger_decode(&l, (const char *)data, size) != 0) {
		SOTTO_ASSERT(memcmp(&l, &before, sizeof(l)) == 0);
		return 0;
	}
	for (size_t i = 0; i < DP_N_ORDERS; i++)
		SOTTO_ASSERT(isfinite(l.rdp[i]) && l.rdp[i] >= 0.0);
	n = dp_ledger_encode(&l, buf, sizeof(buf));
	SOTTO_ASSERT(n > 0);
	SOTTO_ASSERT(dp_ledger_decode(&back, buf, (size_t)n) == 0);
	SOTTO_ASSERT(memcmp(&back, &l, sizeof(l)) == 0);
	(void)dp_epsilon(l.rdp, 1e-5, NULL);
	return 0;
}
