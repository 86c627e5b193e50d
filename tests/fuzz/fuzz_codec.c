/*
 * fuzz_codec.c: libFuzzer harness for the codec's decode path, i.e. what a
 * member does with bytes from the network: parse the round's codec params
 * (codec_params_decode), unpack a vector (codec_unpack) and decode it as a
 * ring sum (codec_decode_sum). Input: 2 bytes little-endian params length,
 * the params, then the packed vector. Must never crash, hang, read out of
 * bounds or accept a vector that does not re-pack to the same bytes.
 */
#include "protocol/codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Keep allocations small: the harness refuses large dimensions up front. */
#define FUZZ_MAX_DIM (1u << 16)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct codec_params *p = NULL;
	uint32_t *ring = NULL;
	float *out = NULL, *ref = NULL;
	uint8_t *again = NULL;
	size_t plen, n, nb;

	if (size < 2)
		return 0;
	plen = bytes_get_le16(data);
	if (plen > size - 2)
		return 0;
	p = malloc(sizeof(*p));
	if (p == NULL)
		goto out;
	if (codec_params_decode(p, data + 2, plen) != 0 || p->dim > FUZZ_MAX_DIM)
		goto out;
	n = codec_ring_len(p);
	nb = codec_packed_bytes(p);
	ring = calloc(n, sizeof(uint32_t));
	out = calloc(p->dim, sizeof(float));
	ref = calloc(p->dim, sizeof(float));
	again = malloc(nb + 1);
	if (ring == NULL || out == NULL || ref == NULL || again == NULL)
		goto out;
	if (codec_unpack(ring, p, data + 2 + plen, size - 2 - plen) != 0)
		goto out;
	/* strict unpack: the vector re-packs to exactly the input bytes */
	SOTTO_ASSERT(codec_pack(again, nb, p, ring) == 0);
	SOTTO_ASSERT(memcmp(again, data + 2 + plen, nb) == 0);
	for (uint32_t m = 1; m <= p->k; m = m * 2 + 1) {
		struct codec_stats st = {0};
		float rho;

		(void)codec_decode_sum(out, &rho, p, ring, m, ref, &st);
	}
out:
	free(again);
	free(ref);
	free(out);
	free(ring);
	free(p);
	return 0;
}
