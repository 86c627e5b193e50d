/*
 * fuzz_trainer_msg.c: libFuzzer harness for the trainer socket's decoder
 * (tmsg_decode) and DataDir/external.state (ext_statefile_decode). The
 * first byte picks the layout size the frame is decoded against (0: before
 * a hello). Any bytes must decode or be refused with a reason, and a
 * decoded hello or params must encode back to a frame that decodes to the
 * same values.
 */
#include "node/external.h"
#include "protocol/trainer_msg.h"
#include "util/util.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tmsg_hello h, back;
	struct tmsg_params p, pb;
	const uint8_t *extra;
	size_t extra_len, len;
	uint8_t *f;
	char why[256];
	uint64_t n_params;
	int rc;

	if (size < 1)
		return 0;
	n_params = data[0] & 0x3f; /* 0..63 */
	data++;
	size--;
	rc = tmsg_decode(data, size, n_params, &h, &p, why, sizeof(why));
	if (rc < 0) {
		SOTTO_ASSERT(why[0] != '\0');
	} else if (rc == TMSG_HELLO) {
		SOTTO_ASSERT(h.n_tensors >= 1 && h.n_tensors <= TMSG_MAX_TENSORS);
		SOTTO_ASSERT(h.n_params >= 1 && h.n_params <= TMSG_MAX_PARAMS);
		SOTTO_ASSERT(tmsg_encode_hello(&f, &len, &h) == 0);
		SOTTO_ASSERT(tmsg_decode(f + 4, len - 4, 0, &back, NULL, why, sizeof(why)) ==
		             TMSG_HELLO);
		SOTTO_ASSERT(tmsg_layout_hash(&back) == tmsg_layout_hash(&h));
		SOTTO_ASSERT(back.n_params == h.n_params && back.rows == h.rows);
		free(f);
	} else {
		SOTTO_ASSERT(rc == TMSG_PARAMS);
		SOTTO_ASSERT(p.x_len == 4 * n_params && isfinite(p.epochs));
		SOTTO_ASSERT(tmsg_encode_params(&f, &len, &p) == 0);
		SOTTO_ASSERT(tmsg_decode(f + 4, len - 4, n_params, NULL, &pb, why, sizeof(why)) ==
		             TMSG_PARAMS);
		SOTTO_ASSERT(pb.applied == p.applied && pb.done == p.done &&
		             pb.has_eval == p.has_eval && pb.x_len == p.x_len &&
		             memcmp(pb.x, p.x, p.x_len) == 0);
		free(f);
	}
	if (ext_statefile_decode(data, size, &h, &extra, &extra_len) == 0)
		SOTTO_ASSERT(extra >= data && extra + extra_len == data + size);
	return 0;
}
