/*
 * fuzz_msg.h: the body shared by the fuzz_msg_*.c harnesses. Each harness
 * defines FUZZ_MSG_TYPES (the message types its decoders handle) and
 * includes this file. Input is a message body; inputs whose (well-formed)
 * type is outside the harness's group are skipped, so each harness and its
 * seed corpus explore their own decoders, while malformed prefixes still go
 * through the scanner.
 *
 * Oracle beyond "no crash, no leak, no over-read": whatever decodes must
 * re-encode, the re-encoding must decode, and encoding is then a fixed
 * point (canonical form reached in one step).
 */
#include "protocol/msg.h"
#include "util/log.h"
#include "util/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int fuzz_types[] = {FUZZ_MSG_TYPES};

/* The type of a body that starts like [1, type, ...] with fixints; -1 else. */
static int peek_type(const uint8_t *data, size_t size)
{
	if (size < 3 || data[0] < 0x90 || data[0] > 0x9f || data[1] != MSG_VERSION ||
	    data[2] > 0x7f)
		return -1;
	return data[2];
}

static uint8_t *encode_copy(const struct msg *m, size_t *len)
{
	size_t n = msg_encoded_size(m);
	uint8_t *buf;

	SOTTO_ASSERT(n > 0);
	buf = malloc(n);
	SOTTO_ASSERT(buf != NULL);
	SOTTO_ASSERT(msg_encode(buf, n, len, m) == 0 && *len == n);
	return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct msg m, m2;
	int type = peek_type(data, size);
	uint8_t *a, *b;
	size_t la, lb;
	bool ours = type < 0;

	log_set_level(LOG_LEVEL_QUIET);
	for (size_t i = 0; i < ARRAY_LEN(fuzz_types); i++)
		ours = ours || type == fuzz_types[i];
	if (!ours)
		return 0;
	if (msg_decode(&m, data, size) != 0)
		return 0;
	a = encode_copy(&m, &la);
	SOTTO_ASSERT(msg_decode(&m2, a, la) == 0);
	b = encode_copy(&m2, &lb);
	SOTTO_ASSERT(la == lb && memcmp(a, b, la) == 0);
	free(a);
	free(b);
	return 0;
}
