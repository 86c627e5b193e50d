/*
 * crypto_mask_test.c: secure-aggregation masks.
 *
 * Known answers: the ChaCha20 keystream (the published all-zero key vectors,
 * nonce 0 and nonce 1) read as w-bit lanes of 64-bit words, a mixed layout
 * and a segment longer than one keystream chunk (tests/vectors/mask/
 * make_kat.py, a ChaCha20 written from RFC 7539), the pairwise and self key
 * derivations (hashlib's BLAKE2b, PyNaCl's X25519).
 * Properties: masks cancel exactly for random k in 3..16, random layouts and
 * inputs, and random dropout sets once the dropped members' pairwise masks
 * are recomputed from their secret keys; keys differ across round ids and
 * attempts; malformed inputs are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/mask.h"

static const uint8_t rid[] = "round-0001";
static const struct mask_round round2 = {rid, sizeof(rid) - 1, 2};

static void hex(uint8_t *out, const char *h, size_t n)
{
	assert_int_equal(sodium_hex2bin(out, n, h, strlen(h), NULL, NULL, NULL), 0);
}

static void test_kat_zero_key(void **state)
{
	uint8_t key[32] = {0};
	struct mask_seg s32[2] = {{4, 32}, {2, 32}};
	struct mask_seg s8[1] = {{4, 8}};
	struct mask_seg s12[1] = {{7, 12}};
	uint32_t v[7] = {0};

	(void)state;
	assert_int_equal(mask_apply(v, s32, 2, key, 1), 0);
	/* keystream 76b8e0ad a0f13d90 405d6ae5 5386bd28 (nonce 0), ef3fdfd6 c61578fb (nonce 1) */
	assert_int_equal(v[0], 0xade0b876u);
	assert_int_equal(v[1], 0x903df1a0u);
	assert_int_equal(v[2], 0xe56a5d40u);
	assert_int_equal(v[3], 0x28bd8653u);
	assert_int_equal(v[4], 0xd6df3fefu);
	assert_int_equal(v[5], 0xfb7815c6u);
	memset(v, 0, sizeof(v));
	assert_int_equal(mask_apply(v, s8, 1, key, 1), 0);
	assert_int_equal(v[0], 0x76);
	assert_int_equal(v[1], 0xb8);
	assert_int_equal(v[2], 0xe0);
	assert_int_equal(v[3], 0xad);
	memset(v, 0, sizeof(v));
	assert_int_equal(mask_apply(v, s12, 1, key, 1), 0);
	/* five 12-bit values per 64-bit word; its top 4 bits are not used */
	assert_int_equal(v[0], 0x876);
	assert_int_equal(v[1], 0xe0b);
	assert_int_equal(v[2], 0x0ad);
	assert_int_equal(v[3], 0xf1a);
	assert_int_equal(v[4], 0x03d);
	assert_int_equal(v[5], 0xd40);
	assert_int_equal(v[6], 0x6a5);
	/* subtracting the same mask gives zero back */
	assert_int_equal(mask_apply(v, s12, 1, key, -1), 0);
	for (int i = 0; i < 7; i++)
		assert_int_equal(v[i], 0);
}

static void test_kat_layout(void **state)
{
	static const uint32_t expect[19] = {0x7d2bfd39u, 0x6a19c5d9u, 0x7703bd8du, 0x494adcb8u,
	                                    0x6fd8358au, 0x0000042fu, 0x00000f1au, 0x00000002u,
	                                    0x00000805u, 0x0000098eu, 0x000002a2u, 0x00000315u,
	                                    0x00000000u, 0x00000000u, 0x00000001u, 0x00000069u,
	                                    0x000000bdu, 0x00000010u, 0x0000011fu};
	static const uint32_t expect_long[6] = {0x0751dcbdu, 0x04337840u, 0x1f6ca4e0u,
	                                        0x1adae3ddu, 0x0a2a4239u, 0x08f3fe27u};
	struct mask_seg segs[4] = {{5, 32}, {7, 12}, {3, 1}, {4, 9}};
	struct mask_seg lseg[1] = {{5000, 29}}; /* 2500 words: crosses two chunks */
	uint8_t key[32];
	uint32_t v[19] = {0}, *w = calloc(5000, sizeof(uint32_t)), sum = 0;

	(void)state;
	assert_non_null(w);
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	assert_int_equal(mask_vec_len(segs, 4), 19);
	assert_int_equal(mask_apply(v, segs, 4, key, 1), 0);
	assert_memory_equal(v, expect, sizeof(expect));
	assert_int_equal(mask_apply(w, lseg, 1, key, 1), 0);
	assert_memory_equal(w + 4410, expect_long, sizeof(expect_long));
	for (int i = 0; i < 5000; i++)
		sum += w[i];
	assert_int_equal(sum, 4110225862u);
	free(w);
}

static void test_kat_keys(void **state)
{
	uint8_t ska[32], skb[32], pka[32], pkb[32], key[32], key2[32], expect[32], seed[32];
	int sign, sign2;

	(void)state;
	for (int i = 0; i < 32; i++) {
		ska[i] = (uint8_t)(i + 1);
		skb[i] = (uint8_t)(i + 33);
	}
	assert_int_equal(mask_public_of(pka, ska), 0);
	assert_int_equal(mask_public_of(pkb, skb), 0);
	hex(expect, "07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c", 32);
	assert_memory_equal(pka, expect, 32);
	assert_int_equal(mask_pair_key(key, &sign, ska, pka, pkb, &round2), 0);
	hex(expect, "796472cceee7494fc3d7ddbd300ef0f83e93db1e9ce181ce9259a1dbc5013d67", 32);
	assert_memory_equal(key, expect, 32);
	assert_int_equal(sign, 1);
	/* the peer derives the same key with the opposite sign */
	assert_int_equal(mask_pair_key(key2, &sign2, skb, pkb, pka, &round2), 0);
	assert_memory_equal(key2, expect, 32);
	assert_int_equal(sign2, -1);
	memset(seed, 0xab, sizeof(seed));
	assert_int_equal(mask_self_key(key, seed, pka, &round2), 0);
	hex(expect, "1b89f771b810e08573c143c464d7c0ca418bab4a3b748cbdca479bf38c7315f3", 32);
	assert_memory_equal(key, expect, 32);
}

/* No reuse: another attempt or another round id gives unrelated keys. */
static void test_keys_bound_to_round(void **state)
{
	uint8_t pka[32], ska[32], pkb[32], skb[32], seed[32], k0[32], k1[32];
	const uint8_t rid2[] = "round-0002";
	struct mask_round r1 = round2, r2 = {rid2, sizeof(rid2) - 1, 2};
	int sign;

	(void)state;
	assert_int_equal(mask_keypair(pka, ska), 0);
	assert_int_equal(mask_keypair(pkb, skb), 0);
	randombytes_buf(seed, sizeof(seed));
	assert_int_equal(mask_pair_key(k0, &sign, ska, pka, pkb, &r1), 0);
	r1.attempt = 3;
	assert_int_equal(mask_pair_key(k1, &sign, ska, pka, pkb, &r1), 0);
	assert_true(memcmp(k0, k1, 32) != 0);
	assert_int_equal(mask_pair_key(k1, &sign, ska, pka, pkb, &r2), 0);
	assert_true(memcmp(k0, k1, 32) != 0);
	assert_int_equal(mask_self_key(k0, seed, pka, &round2), 0);
	assert_int_equal(mask_self_key(k1, seed, pka, &r1), 0);
	assert_true(memcmp(k0, k1, 32) != 0);
	assert_int_equal(mask_self_key(k1, seed, pka, &r2), 0);
	assert_true(memcmp(k0, k1, 32) != 0);
}

static void test_refusals(void **state)
{
	uint8_t pk[32], sk[32], zero[32] = {0}, key[32] = {0};
	struct mask_seg bad[1] = {{3, 33}}, bad0[1] = {{3, 0}}, ok[1] = {{3, 8}};
	struct mask_round r = round2;
	uint32_t v[3] = {0};
	int sign;

	(void)state;
	assert_int_equal(mask_keypair(pk, sk), 0);
	/* low-order (all-zero) peer key: the agreement is refused */
	assert_int_equal(mask_pair_key(key, &sign, sk, pk, zero, &r), -EINVAL);
	/* our own key as peer */
	assert_int_equal(mask_pair_key(key, &sign, sk, pk, pk, &r), -EINVAL);
	r.id_len = 0;
	assert_int_equal(mask_self_key(key, sk, pk, &r), -EINVAL);
	r.id_len = MASK_ROUND_ID_MAX + 1;
	assert_int_equal(mask_self_key(key, sk, pk, &r), -EINVAL);
	assert_int_equal(mask_apply(v, bad, 1, key, 1), -EINVAL);
	assert_int_equal(mask_apply(v, bad0, 1, key, 1), -EINVAL);
	assert_int_equal(mask_apply(v, ok, 1, key, 0), -EINVAL);
	assert_int_equal(mask_vec_len(bad, 1), 0);
}

/*
 * k members mask random inputs; a random set drops out (never sends). The
 * aggregate of the alive members, minus their self masks, plus the dropped
 * members' pairwise masks toward the alive ones (what recovery computes from
 * reconstructed secret keys), equals the plain ring sum of the alive inputs.
 */
static void run_cancel(uint32_t seed, size_t k, const struct mask_seg *segs, size_t nseg,
                       bool dropouts)
{
	size_t n = mask_vec_len(segs, nseg);
	uint8_t(*pk)[32] = malloc(k * 32), (*sk)[32] = malloc(k * 32), (*bs)[32] = malloc(k * 32);
	uint32_t *x = malloc(n * sizeof(uint32_t)), *y = malloc(n * sizeof(uint32_t));
	uint32_t *agg = calloc(n ? n : 1, sizeof(uint32_t)), *plain = calloc(n ? n : 1, 4);
	bool *alive = malloc(k);
	uint8_t rseed[randombytes_SEEDBYTES] = {0};
	uint8_t key[32];

	assert_true(pk && sk && bs && x && y && agg && plain && alive);
	memcpy(rseed, &seed, sizeof(seed));
	for (size_t i = 0; i < k; i++) {
		assert_int_equal(mask_keypair(pk[i], sk[i]), 0);
		randombytes_buf_deterministic(bs[i], 32, rseed);
		rseed[4]++;
		alive[i] = !dropouts || ((seed >> (i % 32)) & 3) != 0;
	}
	for (size_t i = 0; i < k; i++) {
		size_t off = 0;

		randombytes_buf_deterministic(x, n * sizeof(uint32_t), rseed);
		rseed[5]++;
		for (size_t s = 0; s < nseg; s++) { /* reduce into the ring */
			for (uint32_t c = 0; c < segs[s].len; c++, off++)
				x[off] &= segs[s].width == 32 ? UINT32_MAX
				                              : (1u << segs[s].width) - 1;
		}
		memcpy(y, x, n * sizeof(uint32_t));
		assert_int_equal(mask_member_apply(y, segs, nseg, bs[i], sk[i], pk[i],
		                                   (const uint8_t(*)[32])pk, k, &round2),
		                 0);
		if (!alive[i])
			continue;
		mask_ring_add(agg, y, segs, nseg, 1);
		mask_ring_add(plain, x, segs, nseg, 1);
	}
	/* remove the alive members' self masks */
	for (size_t i = 0; i < k; i++) {
		if (!alive[i])
			continue;
		assert_int_equal(mask_self_key(key, bs[i], pk[i], &round2), 0);
		assert_int_equal(mask_apply(agg, segs, nseg, key, -1), 0);
	}
	/* add what each dropped member would have added toward alive members */
	for (size_t d = 0; d < k; d++) {
		if (alive[d])
			continue;
		for (size_t i = 0; i < k; i++) {
			int sign;

			if (!alive[i])
				continue;
			assert_int_equal(mask_pair_key(key, &sign, sk[d], pk[d], pk[i], &round2),
			                 0);
			assert_int_equal(mask_apply(agg, segs, nseg, key, sign), 0);
		}
	}
	if (n > 0)
		assert_memory_equal(agg, plain, n * sizeof(uint32_t));
	free(pk);
	free(sk);
	free(bs);
	free(x);
	free(y);
	free(agg);
	free(plain);
	free(alive);
}

/*
 * mask_member_apply sums every key's lanes before touching v: for every
 * width, it must equal applying the self key and each pairwise key one by
 * one with mask_apply (what recovery does for a dropped member).
 */
static void test_member_equals_single_keys(void **state)
{
	uint8_t pk[5][32], sk[5][32], seed[32], key[32];
	uint32_t *a = malloc(3000 * sizeof(uint32_t)), *b = malloc(3000 * sizeof(uint32_t));

	(void)state;
	assert_true(a && b);
	for (int i = 0; i < 5; i++)
		assert_int_equal(mask_keypair(pk[i], sk[i]), 0);
	randombytes_buf(seed, sizeof(seed));
	for (uint32_t w = 1; w <= 32; w++) {
		struct mask_seg segs[2] = {{2111, w}, {889, 33 - w}};
		int sign;

		randombytes_buf(a, 3000 * sizeof(uint32_t));
		for (uint32_t i = 0; i < 3000; i++) {
			uint32_t ww = i < 2111 ? w : 33 - w;
			a[i] &= ww == 32 ? UINT32_MAX : (1u << ww) - 1;
		}
		memcpy(b, a, 3000 * sizeof(uint32_t));
		assert_int_equal(mask_member_apply(a, segs, 2, seed, sk[2], pk[2],
		                                   (const uint8_t(*)[32])pk, 5, &round2),
		                 0);
		assert_int_equal(mask_self_key(key, seed, pk[2], &round2), 0);
		assert_int_equal(mask_apply(b, segs, 2, key, 1), 0);
		for (int p = 0; p < 5; p++) {
			if (p == 2)
				continue;
			assert_int_equal(mask_pair_key(key, &sign, sk[2], pk[2], pk[p], &round2),
			                 0);
			assert_int_equal(mask_apply(b, segs, 2, key, sign), 0);
		}
		assert_memory_equal(a, b, 3000 * sizeof(uint32_t));
	}
	free(a);
	free(b);
}

/*
 * mask_apply_range (an aggregator's part on the scatter path) equals that
 * range of mask_apply on the whole vector: ranges inside, across and at the
 * ends of segments and keystream chunks, of every width; out-of-layout
 * ranges refused.
 */
static void test_apply_range(void **state)
{
	enum { N = 70000 };
	uint32_t *whole = calloc(N, sizeof(uint32_t)), *part = malloc(N * sizeof(uint32_t));
	uint32_t r = 99;
	uint8_t key[32];

	(void)state;
	assert_true(whole && part);
	randombytes_buf(key, sizeof(key));
	for (uint32_t w = 1; w <= 32; w += 3) {
		struct mask_seg segs[3] = {{40000, w}, {13, 33 - w}, {29987, 1 + w % 7}};
		int sign = w % 2 ? 1 : -1;

		memset(whole, 0, N * sizeof(uint32_t));
		assert_int_equal(mask_apply(whole, segs, 3, key, sign), 0);
		for (int t = 0; t < 40; t++) {
			size_t first, len;

			r = r * 1103515245u + 12345u;
			first = (r >> 8) % N;
			r = r * 1103515245u + 12345u;
			len = t % 5 == 0 ? N - first : (r >> 8) % (N - first + 1);
			if (t == 1) {
				first = 39990; /* across the first segment's end */
				len = 40;
			}
			memset(part, 0, N * sizeof(uint32_t));
			assert_int_equal(mask_apply_range(part, segs, 3, key, sign, first, len), 0);
			if (len > 0)
				assert_memory_equal(part, whole + first, len * sizeof(uint32_t));
		}
		assert_int_equal(mask_apply_range(part, segs, 3, key, sign, N, 1), -EINVAL);
		assert_int_equal(mask_apply_range(part, segs, 3, key, sign, 1, N), -EINVAL);
		assert_int_equal(mask_apply_range(part, segs, 3, key, 2, 0, 1), -EINVAL);
	}
	free(whole);
	free(part);
}

static void test_property_cancel(void **state)
{
	uint32_t r = 12345;

	(void)state;
	for (int trial = 0; trial < 60; trial++) {
		struct mask_seg segs[5];
		size_t nseg = 1 + (size_t)(r % 5), k = 3 + (size_t)((r >> 8) % 14);

		for (size_t s = 0; s < nseg; s++) {
			r = r * 1103515245u + 12345u;
			segs[s].len = (r >> 4) % 300; /* empty segments too */
			segs[s].width = 1 + (r >> 20) % 32;
		}
		run_cancel(r, k, segs, nseg, trial % 3 != 0);
		r = r * 1103515245u + 12345u;
	}
}

static void test_property_cancel_large(void **state)
{
	struct mask_seg segs[3] = {{1000000, 11}, {1, 32}, {77777, 3}};

	(void)state;
	run_cancel(777, 3, segs, 3, false);
	run_cancel(778, 4, segs, 3, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_kat_zero_key),
	        cmocka_unit_test(test_kat_layout),
	        cmocka_unit_test(test_kat_keys),
	        cmocka_unit_test(test_keys_bound_to_round),
	        cmocka_unit_test(test_refusals),
	        cmocka_unit_test(test_member_equals_single_keys),
	        cmocka_unit_test(test_apply_range),
	        cmocka_unit_test(test_property_cancel),
	        cmocka_unit_test(test_property_cancel_large),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
