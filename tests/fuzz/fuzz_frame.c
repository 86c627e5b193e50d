/*
 * fuzz_frame.c: libFuzzer harness for what arrives from the network before
 * a message decoder sees it, and for the replay state file.
 *
 * The first input byte picks a mode (the rest is the payload):
 *   0  the payload is a frame for node B (which pins A): header parse and
 *      seal_open must refuse or open it without crashing or over-reading,
 *      and what opens is then decoded as a message. Seeds are real frames
 *      A sealed to B, so the fuzzer starts past authentication.
 *   1  the payload is a plaintext body: A seals it to B and B must open
 *      exactly it (round trip), then decode it.
 *   2  the payload is a replay state file image.
 * Keys are fixed (seeds 0..31 and 32..63, as the known-answer tests).
 */
#include "crypto/identity.h"
#include "crypto/replay.h"
#include "crypto/seal.h"
#include "protocol/msg.h"
#include "util/log.h"
#include "util/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* cb opens the fuzzed frames; cb_rt only the round trips, so that a seed
 * frame's counter cannot make a round trip look like a replay. */
static struct seal_ctx *ca, *cb, *cb_rt;
static uint8_t pk_a[32], pk_b[32];

static void setup(void)
{
	uint8_t seed[32];
	struct identity *a, *b;

	log_set_level(LOG_LEVEL_QUIET);
	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)i;
	a = identity_from_seed(seed);
	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)(32 + i);
	b = identity_from_seed(seed);
	SOTTO_ASSERT(a != NULL && b != NULL);
	SOTTO_ASSERT(seal_ctx_alloc(&ca, a, NULL) == 0 && seal_ctx_alloc(&cb, b, NULL) == 0 &&
	             seal_ctx_alloc(&cb_rt, b, NULL) == 0);
	SOTTO_ASSERT(seal_peer_add(ca, b->sign_pk) == 0 && seal_peer_add(cb, a->sign_pk) == 0 &&
	             seal_peer_add(cb_rt, a->sign_pk) == 0);
	memcpy(pk_a, a->sign_pk, 32);
	memcpy(pk_b, b->sign_pk, 32);
	identity_free(a);
	identity_free(b);
}

static void decode_body(const uint8_t *body, size_t len)
{
	static struct msg m;
	(void)msg_decode(&m, body, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seal_header h;
	uint8_t *f;

	if (ca == NULL)
		setup();
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0: /* an incoming frame */
		f = malloc(size - 1 > 0 ? size - 1 : 1);
		SOTTO_ASSERT(f != NULL);
		memcpy(f, data + 1, size - 1);
		(void)seal_header_parse(&h, f, size - 1);
		if (seal_open(cb, &h, f, size - 1) == 0) {
			SOTTO_ASSERT(memcmp(h.sender, pk_a, 32) == 0);
			decode_body(f + SEAL_HEADER_BYTES, size - 1 - SEAL_OVERHEAD);
		}
		free(f);
		break;
	case 1: { /* seal + open round trip of a body */
		size_t n = size - 1, len = n + SEAL_OVERHEAD;
		f = malloc(len);
		SOTTO_ASSERT(f != NULL);
		memcpy(f + SEAL_HEADER_BYTES, data + 1, n);
		SOTTO_ASSERT(seal_frame(ca, f, len, pk_b, 11, 0) == 0);
		SOTTO_ASSERT(seal_open(cb_rt, &h, f, len) == 0);
		SOTTO_ASSERT(memcmp(f + SEAL_HEADER_BYTES, data + 1, n) == 0);
		decode_body(f + SEAL_HEADER_BYTES, n);
		free(f);
		break;
	}
	default: { /* a replay state file */
		struct replay_state st;
		if (replay_state_decode(&st, data + 1, size - 1) == 0) {
			size_t n = replay_state_size(st.n_peers);
			uint8_t *img = malloc(n);
			SOTTO_ASSERT(img != NULL && n == size - 1);
			replay_state_encode(img, &st);
			SOTTO_ASSERT(memcmp(img, data + 1, n) == 0);
			free(img);
		}
		replay_state_fini(&st);
		break;
	}
	}
	return 0;
}
