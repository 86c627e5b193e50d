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

#define CHUNK_WORDS 1024 /* 8 KiB of keystream per key and chunk: stays in cache */

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

	static const uint8_t zero[CHUNK_WORDS * 8];

	SOTTO_ASSERT(n <= sizeof(zero));
	for (size_t i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)(segment >> (8 * i));
	crypto_stream_chacha20_xor_ic(buf, zero, n, nonce, block, key);
}

/*
 * Lane arithmetic on 64-bit words that hold floor(64 / w) values of w bits
 * (Hacker's Delight 2-18): hi has the top bit of every lane, lo the others.
 * Carries and borrows never leave a lane, and the spare bits above the last
 * lane stay zero.
 */
static inline uint64_t lanes_add(uint64_t a, uint64_t b, uint64_t hi, uint64_t lo)
{
	return ((a & lo) + (b & lo)) ^ ((a ^ b) & hi);
}

static inline uint64_t lanes_sub(uint64_t a, uint64_t b, uint64_t hi, uint64_t lo)
{
	return (((a & (lo | hi)) | hi) - (b & lo)) ^ ((a ^ ~b) & hi);
}

/*
 * out[] += the lanes of nfull words of acc, in Z_2^w. Inlined with a constant
 * w (lanes_out_any) the shifts become immediates and the lanes unroll: this
 * loop, not the keystream, was most of the time with a variable w.
 */
static inline __attribute__((always_inline)) void lanes_out(uint32_t *out, const uint64_t *acc,
                                                            size_t nfull, uint32_t w)
{
	const uint32_t lanes = 64 / w, m = width_mask(w);

	for (size_t j = 0; j < nfull; j++, out += lanes) {
		for (uint32_t l = 0; l < lanes; l++)
			out[l] = (out[l] + (uint32_t)(acc[j] >> (l * w))) & m;
	}
}

/* clang-format off */
static void lanes_out_any(uint32_t *out, const uint64_t *acc, size_t nfull, uint32_t w)
{
	switch (w) {
#define W(x) case x: lanes_out(out, acc, nfull, x); return;
	W(1)  W(2)  W(3)  W(4)  W(5)  W(6)  W(7)  W(8)  W(9)  W(10) W(11)
	W(12) W(13) W(14) W(15) W(16) W(17) W(18) W(19) W(20) W(21) W(22)
	W(23) W(24) W(25) W(26) W(27) W(28) W(29) W(30) W(31) W(32)
#undef W
	default:
		SOTTO_ASSERT(0 && "mask width out of range");
	}
}
/* clang-format on */

/*
 * Every key's keystream for one chunk of a segment is summed, with its sign,
 * lane by lane into acc (one 64-bit word per lanes values); then the sum is
 * added to that part of v once. So v is read and written once per chunk
 * whatever the number of keys, and a key costs its keystream plus a few
 * word operations per lanes values.
 */
static void apply_keys(uint32_t *v, const struct mask_seg *segs, size_t nseg,
                       const uint8_t (*keys)[MASK_KEY_BYTES], const int *signs, size_t nkeys,
                       size_t from, size_t to)
{
	uint64_t acc[CHUNK_WORDS], ks[CHUNK_WORDS];
	size_t n = 0;

	SOTTO_ASSERT(nkeys >= 1);

	/*
	 * Only elements [from, to) of the vector, which v holds from v[0]: chunks
	 * outside are skipped (the keystream seeks by chunk), chunks across an
	 * end are summed whole and written in part.
	 */
	for (size_t i = 0; i < nseg; n += segs[i].len, i++) {
		if (n + segs[i].len <= from || n >= to)
			continue;
		const uint32_t w = segs[i].width, m = width_mask(w), len = segs[i].len;
		const uint32_t lanes = 64 / w;
		const size_t per_chunk = (size_t)CHUNK_WORDS * lanes;
		uint64_t hi = 0, lo = 0;

		for (uint32_t l = 0; l < lanes; l++) {
			hi |= 1ull << (l * w + w - 1);
			lo |= (uint64_t)(m >> 1) << (l * w);
		}
		for (size_t c0 = 0, chunk = 0; c0 < len; c0 += per_chunk, chunk++) {
			size_t ne = MIN(per_chunk, (size_t)len - c0);
			size_t nw = (ne + lanes - 1) / lanes;
			if (n + c0 + ne <= from || n + c0 >= to)
				continue;
			/* the first key's stream is the start of the sum */
			stream_fill((uint8_t *)acc, nw * sizeof(uint64_t), keys[0], i,
			            (uint64_t)chunk * (CHUNK_WORDS / 8));
			for (size_t j = 0; j < nw; j++) {
				acc[j] = signs[0] > 0 ? le64toh(acc[j]) & (hi | lo)
				                      : lanes_sub(0, le64toh(acc[j]), hi, lo);
			}
			for (size_t k = 1; k < nkeys; k++) {
				stream_fill((uint8_t *)ks, nw * sizeof(uint64_t), keys[k], i,
				            (uint64_t)chunk * (CHUNK_WORDS / 8));
				if (signs[k] > 0) {
					for (size_t j = 0; j < nw; j++)
						acc[j] = lanes_add(acc[j], le64toh(ks[j]), hi, lo);
				} else {
					for (size_t j = 0; j < nw; j++)
						acc[j] = lanes_sub(acc[j], le64toh(ks[j]), hi, lo);
				}
			}
			if (n + c0 >= from && n + c0 + ne <= to) {
				uint32_t *out = v + (n + c0 - from);

				lanes_out_any(out, acc, ne / lanes, w);
				for (size_t e = ne / lanes * lanes; e < ne;
				     e++) /* a partial word */
					out[e] = (out[e] +
					          (uint32_t)(acc[e / lanes] >> (e % lanes * w))) &
					         m;
				continue;
			}
			for (size_t e = 0; e < ne; e++) { /* across an end of the range */
				size_t g = n + c0 + e;

				if (g < from || g >= to)
					continue;
				v[g - from] = (v[g - from] +
				               (uint32_t)(acc[e / lanes] >> (e % lanes * w))) &
				              m;
			}
		}
	}
	sodium_memzero(acc, sizeof(acc));
	sodium_memzero(ks, sizeof(ks));
}

int mask_apply(uint32_t *v, const struct mask_seg *segs, size_t nseg,
               const uint8_t key[MASK_KEY_BYTES], int sign)
{
	if ((sign != 1 && sign != -1) || !layout_ok(segs, nseg))
		return -EINVAL;
	apply_keys(v, segs, nseg, (const uint8_t(*)[MASK_KEY_BYTES])key, &sign, 1, 0, SIZE_MAX);
	return 0;
}

int mask_apply_range(uint32_t *v, const struct mask_seg *segs, size_t nseg,
                     const uint8_t key[MASK_KEY_BYTES], int sign, size_t first, size_t len)
{
	if ((sign != 1 && sign != -1) || !layout_ok(segs, nseg) ||
	    first > mask_vec_len(segs, nseg) || len > mask_vec_len(segs, nseg) - first)
		return -EINVAL;
	if (len > 0)
		apply_keys(v, segs, nseg, (const uint8_t(*)[MASK_KEY_BYTES])key, &sign, 1, first,
		           first + len);
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
	/* On the stack and wiped, not sodium_malloc: its guard pages cost more
	 * than masking 10^4 values. */
	uint8_t keys[MASK_MAX_PEERS + 1][MASK_KEY_BYTES];
	int signs[MASK_MAX_PEERS + 1];
	size_t nk = 0;
	int rc = -EINVAL;

	if (!layout_ok(segs, nseg) || npeers > MASK_MAX_PEERS)
		return -EINVAL;
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
	apply_keys(v, segs, nseg, (const uint8_t(*)[MASK_KEY_BYTES])keys, signs, nk, 0, SIZE_MAX);
out:
	sodium_memzero(keys, sizeof(keys));
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
