/*
 * mask.c: pairwise and self masks, expanded with ChaCha20 into Z_2^w per
 * segment (see mask.h). Keystream is produced in fixed-size chunks on the
 * stack, so masking a vector of any length allocates nothing.
 */
#include "crypto/mask.h"

#include <endian.h>
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define CHUNK_BYTES 8192 /* per key; with the matching part of v it stays in cache */

static const uint8_t label_pair[] = "sotto mask pair v1";
static const uint8_t label_self[] = "sotto mask self v1";

static uint32_t width_mask(uint32_t width)
{
	return width >= 32 ? UINT32_MAX : (uint32_t)((1u << width) - 1u);
}

static bool layout_ok(const struct mask_seg *segs, size_t nseg)
{
	for (size_t i = 0; i < nseg; i++) {
		if (segs[i].width < 1 || segs[i].width > 32)
			return false;
	}
	return true;
}

size_t mask_vec_len(const struct mask_seg *segs, size_t nseg)
{
	size_t n = 0;

	if (!layout_ok(segs, nseg))
		return 0;
	for (size_t i = 0; i < nseg; i++)
		n += segs[i].len;
	return n;
}

/* ChaCha20 keystream of one segment, from block `block` on, into buf. */
static void stream_fill(uint8_t *buf, size_t n, const uint8_t *key, uint64_t segment,
                        uint64_t block)
{
	uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];

	for (size_t i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)(segment >> (8 * i));
	memset(buf, 0, n);
	crypto_stream_chacha20_xor_ic(buf, buf, n, nonce, block, key);
}

static inline uint64_t load64_le(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v)); /* one unaligned load */
	return le64toh(v);
}

/*
 * Chunks hold a whole number of values: 32 * w * q bytes are 256 * q values
 * of w bits, and with q even a chunk is whole 64-byte blocks. So value j of
 * a chunk starts at bit j * w of it and every value is read independently
 * (no serial bit reader), which lets the loop pipeline. Several keys are
 * applied chunk by chunk, so that part of v stays in cache while every
 * key's keystream is added (one pass over v instead of one per key).
 */
static void apply_keys(uint32_t *v, const struct mask_seg *segs, size_t nseg,
                       const uint8_t (*keys)[MASK_KEY_BYTES], const int *signs, size_t nkeys)
{
	uint8_t buf[CHUNK_BYTES + 8];
	size_t n = 0;

	memset(buf + CHUNK_BYTES, 0, 8);
	for (size_t i = 0; i < nseg; i++) {
		const uint32_t w = segs[i].width, m = width_mask(w), len = segs[i].len;
		const size_t q = 2 * (CHUNK_BYTES / (64 * w));
		const size_t per_chunk = 256 * q, chunk_bytes = 32 * w * q;
		uint64_t block = 0;

		for (size_t c0 = 0; c0 < len; c0 += per_chunk, block += chunk_bytes / 64) {
			size_t ne = MIN(per_chunk, (size_t)len - c0);
			size_t nbytes = ((ne * w + 7) / 8 + 63) & ~(size_t)63;
			uint32_t *out = v + n + c0;

			for (size_t k = 0; k < nkeys; k++) {
				stream_fill(buf, nbytes, keys[k], i, block);
				if (signs[k] > 0) {
					for (size_t j = 0; j < ne; j++) {
						size_t bit = j * w;
						uint32_t r = (uint32_t)(load64_le(buf + bit / 8) >>
						                        (bit % 8)) &
						             m;
						out[j] = (out[j] + r) & m;
					}
				} else {
					for (size_t j = 0; j < ne; j++) {
						size_t bit = j * w;
						uint32_t r = (uint32_t)(load64_le(buf + bit / 8) >>
						                        (bit % 8)) &
						             m;
						out[j] = (out[j] - r) & m;
					}
				}
			}
		}
		n += len;
	}
	sodium_memzero(buf, sizeof(buf));
}

int mask_apply(uint32_t *v, const struct mask_seg *segs, size_t nseg,
               const uint8_t key[MASK_KEY_BYTES], int sign)
{
	if ((sign != 1 && sign != -1) || !layout_ok(segs, nseg))
		return -EINVAL;
	apply_keys(v, segs, nseg, (const uint8_t(*)[MASK_KEY_BYTES])key, &sign, 1);
	return 0;
}

void mask_ring_add(uint32_t *acc, const uint32_t *v, const struct mask_seg *segs, size_t nseg,
                   int sign)
{
	size_t n = 0;

	SOTTO_ASSERT(sign == 1 || sign == -1);
	for (size_t i = 0; i < nseg; i++) {
		uint32_t m = width_mask(segs[i].width);

		for (uint32_t c = 0; c < segs[i].len; c++, n++)
			acc[n] = (sign > 0 ? acc[n] + v[n] : acc[n] - v[n]) & m;
	}
}

static void hash_round(crypto_generichash_state *st, const struct mask_round *r)
{
	uint8_t b[4];
	uint8_t idlen = (uint8_t)r->id_len;

	crypto_generichash_update(st, &idlen, 1);
	crypto_generichash_update(st, r->id, r->id_len);
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(r->attempt >> (8 * i));
	crypto_generichash_update(st, b, sizeof(b));
}

static bool round_ok(const struct mask_round *r)
{
	return r != NULL && r->id != NULL && r->id_len >= 1 && r->id_len <= MASK_ROUND_ID_MAX;
}

int mask_pair_key(uint8_t key[MASK_KEY_BYTES], int *sign, const uint8_t my_sk[MASK_SK_BYTES],
                  const uint8_t my_pk[MASK_PK_BYTES], const uint8_t peer_pk[MASK_PK_BYTES],
                  const struct mask_round *r)
{
	uint8_t shared[crypto_scalarmult_BYTES];
	crypto_generichash_state st;
	const uint8_t *lo, *hi;
	int cmp, rc = -EINVAL;

	if (sodium_init() < 0 || !round_ok(r))
		goto out;
	/* Public values: an ordinary comparison is fine. */
	cmp = memcmp(my_pk, peer_pk, MASK_PK_BYTES);
	if (cmp == 0)
		goto out;
	if (crypto_scalarmult(shared, my_sk, peer_pk) != 0)
		goto out;
	lo = cmp < 0 ? my_pk : peer_pk;
	hi = cmp < 0 ? peer_pk : my_pk;
	crypto_generichash_init(&st, NULL, 0, MASK_KEY_BYTES);
	crypto_generichash_update(&st, label_pair, sizeof(label_pair));
	hash_round(&st, r);
	crypto_generichash_update(&st, lo, MASK_PK_BYTES);
	crypto_generichash_update(&st, hi, MASK_PK_BYTES);
	crypto_generichash_update(&st, shared, sizeof(shared));
	crypto_generichash_final(&st, key, MASK_KEY_BYTES);
	*sign = cmp < 0 ? 1 : -1;
	rc = 0;
out:
	sodium_memzero(shared, sizeof(shared));
	sodium_memzero(&st, sizeof(st));
	return rc;
}

int mask_self_key(uint8_t key[MASK_KEY_BYTES], const uint8_t seed[MASK_SEED_BYTES],
                  const uint8_t my_pk[MASK_PK_BYTES], const struct mask_round *r)
{
	crypto_generichash_state st;

	if (sodium_init() < 0 || !round_ok(r))
		return -EINVAL;
	crypto_generichash_init(&st, seed, MASK_SEED_BYTES, MASK_KEY_BYTES);
	crypto_generichash_update(&st, label_self, sizeof(label_self));
	hash_round(&st, r);
	crypto_generichash_update(&st, my_pk, MASK_PK_BYTES);
	crypto_generichash_final(&st, key, MASK_KEY_BYTES);
	sodium_memzero(&st, sizeof(st));
	return 0;
}

int mask_member_apply(uint32_t *v, const struct mask_seg *segs, size_t nseg,
                      const uint8_t seed[MASK_SEED_BYTES], const uint8_t my_sk[MASK_SK_BYTES],
                      const uint8_t my_pk[MASK_PK_BYTES], const uint8_t (*peer_pks)[MASK_PK_BYTES],
                      size_t npeers, const struct mask_round *r)
{
	uint8_t(*keys)[MASK_KEY_BYTES] = NULL;
	int *signs = NULL;
	size_t nk = 0;
	int rc = -EINVAL;

	if (!layout_ok(segs, nseg))
		goto out;
	rc = -ENOMEM;
	keys = sodium_malloc((npeers + 1) * MASK_KEY_BYTES);
	signs = calloc(npeers + 1, sizeof(int));
	if (keys == NULL || signs == NULL)
		goto out;
	rc = mask_self_key(keys[nk], seed, my_pk, r);
	if (rc != 0)
		goto out;
	signs[nk++] = 1;
	for (size_t i = 0; i < npeers; i++) {
		if (memcmp(peer_pks[i], my_pk, MASK_PK_BYTES) == 0)
			continue;
		rc = mask_pair_key(keys[nk], &signs[nk], my_sk, my_pk, peer_pks[i], r);
		if (rc != 0)
			goto out;
		nk++;
	}
	apply_keys(v, segs, nseg, (const uint8_t(*)[MASK_KEY_BYTES])keys, signs, nk);
out:
	sodium_free(keys); /* wipes */
	free(signs);
	return rc;
}

int mask_keypair(uint8_t pk[MASK_PK_BYTES], uint8_t sk[MASK_SK_BYTES])
{
	if (sodium_init() < 0)
		return -EINVAL;
	return crypto_box_keypair(pk, sk) == 0 ? 0 : -EINVAL;
}

int mask_public_of(uint8_t pk[MASK_PK_BYTES], const uint8_t sk[MASK_SK_BYTES])
{
	if (sodium_init() < 0)
		return -EINVAL;
	return crypto_scalarmult_base(pk, sk) == 0 ? 0 : -EINVAL;
}
