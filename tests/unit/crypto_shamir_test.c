/*
 * crypto_shamir_test.c: Shamir sharing over GF(2^8) and the share boxes.
 *
 * Known answers: FIPS-197 multiplication examples, the inverse of 0x53, and
 * a 3-of-5 sharing with fixed coefficients whose shares were computed in
 * Python with log/exp tables (a different method from the C code).
 * Properties: any t of n shares recover the secret, for all t <= n <= 16
 * and random subsets; t-1 shares of two different secrets can be the same
 * (no information). Tamper: a wrong share gives a wrong secret that the
 * commitment check rejects and combine_verified routes around; a flipped
 * byte, a wrong round, a wrong index pair or a wrong key makes a box fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "crypto/shamir.h"

static const uint8_t rid[] = "r-42";
static const struct mask_round round0 = {rid, sizeof(rid) - 1, 0};

static void hex(uint8_t *out, const char *h, size_t n)
{
	assert_int_equal(sodium_hex2bin(out, n, h, strlen(h), NULL, NULL, NULL), 0);
}

static void test_gf_kat(void **state)
{
	(void)state;
	assert_int_equal(shamir_gf_mul(0x57, 0x83), 0xc1); /* FIPS-197 4.2 */
	assert_int_equal(shamir_gf_mul(0x57, 0x13), 0xfe); /* FIPS-197 4.2.1 */
	assert_int_equal(shamir_gf_inv(0x53), 0xca);
	assert_int_equal(shamir_gf_inv(0), 0);
	for (unsigned a = 1; a < 256; a++)
		assert_int_equal(shamir_gf_mul((uint8_t)a, shamir_gf_inv((uint8_t)a)), 1);
}

static void test_split_kat(void **state)
{
	static const char *expect[5] = {
	        "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeffc0c1c2c3c4c5c6c7c8c9cacbcccdcecf",
	        "00070e091c1b1215383f363124232a2df0f7fef9ecebe2e5c8cfc6c1d4d3dadd",
	        "f0f7fef9ecebe2e5c8cfc6c1d4d3dadd20272e293c3b3235181f161104030a0d",
	        "c1d4ebfe9580bfaa697c43563d281702bca99683e8fdc2d714013e2b40556a7f",
	        "31241b0e65704f5a998cb3a6cdd8e7f26c794653382d1207c4d1eefb9085baaf"};
	uint8_t secret[32], coeffs[64], y[32], out[32];
	struct shamir_share sh[5], sub[3];

	(void)state;
	for (int j = 0; j < 32; j++) {
		secret[j] = (uint8_t)j;
		coeffs[j] = (uint8_t)(0xa0 + j);
		coeffs[32 + j] = (uint8_t)(0x50 + j);
	}
	assert_int_equal(shamir_split_with(sh, 5, 3, secret, coeffs), 0);
	for (int i = 0; i < 5; i++) {
		hex(y, expect[i], 32);
		assert_int_equal(sh[i].x, i + 1);
		assert_memory_equal(sh[i].y, y, 32);
	}
	sub[0] = sh[4];
	sub[1] = sh[1];
	sub[2] = sh[2];
	assert_int_equal(shamir_combine(out, sub, 3), 0);
	assert_memory_equal(out, secret, 32);
	/* all five shares interpolate the same degree-2 polynomial */
	assert_int_equal(shamir_combine(out, sh, 5), 0);
	assert_memory_equal(out, secret, 32);
}

static void test_any_t_of_n(void **state)
{
	uint32_t r = 99;

	(void)state;
	for (size_t n = 1; n <= 16; n++) {
		for (size_t t = 1; t <= n; t++) {
			struct shamir_share sh[16], sub[16];
			uint8_t secret[32], out[32];
			bool used[16] = {false};

			randombytes_buf(secret, sizeof(secret));
			assert_int_equal(shamir_split(sh, n, t, secret), 0);
			for (size_t i = 0; i < t; i++) { /* a random t-subset, random order */
				size_t j;
				do {
					r = r * 1103515245u + 12345u;
					j = (r >> 16) % n;
				} while (used[j]);
				used[j] = true;
				sub[i] = sh[j];
			}
			assert_int_equal(shamir_combine(out, sub, t), 0);
			assert_memory_equal(out, secret, 32);
			if (t >= 2) { /* t-1 shares interpolate something else */
				assert_int_equal(shamir_combine(out, sub, t - 1), 0);
				assert_memory_not_equal(out, secret, 32);
			}
		}
	}
}

/* t-1 shares say nothing: both secrets explain the same t-1 shares. */
static void test_t_minus_1_hides(void **state)
{
	uint8_t s1[32] = {1}, s2[32] = {2}, c1[32], c2[32];
	struct shamir_share a[3], b[3];

	(void)state;
	/* t = 2: y(x) = s + c x. Choose c2 so that share 1 coincides:
	 * s1 + c1 = s2 + c2 (in GF(2^8), + is xor). */
	randombytes_buf(c1, sizeof(c1));
	for (int j = 0; j < 32; j++)
		c2[j] = (uint8_t)(s1[j] ^ c1[j] ^ s2[j]);
	assert_int_equal(shamir_split_with(a, 3, 2, s1, c1), 0);
	assert_int_equal(shamir_split_with(b, 3, 2, s2, c2), 0);
	assert_memory_equal(a[0].y, b[0].y, 32);
	assert_memory_not_equal(a[1].y, b[1].y, 32);
}

static void test_refusals(void **state)
{
	struct shamir_share sh[4];
	uint8_t s[32] = {0}, out[32];

	(void)state;
	assert_int_equal(shamir_split(sh, 3, 4, s), -EINVAL);
	assert_int_equal(shamir_split(sh, 3, 0, s), -EINVAL);
	assert_int_equal(shamir_split(sh, 256, 2, s), -EINVAL);
	assert_int_equal(shamir_split(sh, 4, 2, s), 0);
	sh[1].x = sh[0].x; /* duplicate x */
	assert_int_equal(shamir_combine(out, sh, 2), -EINVAL);
	sh[1].x = 0;
	assert_int_equal(shamir_combine(out, sh, 2), -EINVAL);
	assert_int_equal(shamir_combine(out, sh, 0), -EINVAL);
}

struct commit_arg {
	uint8_t commit[32];
	uint8_t pk[32];
};

static bool verify_commit(const uint8_t secret[32], void *arg)
{
	struct commit_arg *c = arg;
	uint8_t cm[32];

	if (shamir_seed_commit(cm, secret, c->pk, &round0) != 0)
		return false;
	return sodium_memcmp(cm, c->commit, 32) == 0;
}

/* A wrong share is caught by the commitment and routed around. */
static void test_wrong_share(void **state)
{
	struct shamir_share sh[7];
	struct commit_arg c;
	uint8_t seed[32], out[32];

	(void)state;
	randombytes_buf(seed, sizeof(seed));
	randombytes_buf(c.pk, sizeof(c.pk));
	assert_int_equal(shamir_seed_commit(c.commit, seed, c.pk, &round0), 0);
	assert_int_equal(shamir_split(sh, 7, 4, seed), 0);
	sh[2].y[5] ^= 1; /* one holder lies */
	assert_int_equal(shamir_combine(out, sh, 4), 0);
	assert_false(verify_commit(out, &c));
	assert_int_equal(shamir_combine_verified(out, sh, 7, 4, verify_commit, &c), 0);
	assert_memory_equal(out, seed, 32);
	/* with exactly t shares and one wrong, there is nothing to route around */
	assert_int_equal(shamir_combine_verified(out, sh, 4, 4, verify_commit, &c), -EBADMSG);
	/* too many liars */
	sh[0].y[0] ^= 1;
	sh[1].y[0] ^= 1;
	sh[3].y[0] ^= 1;
	assert_int_equal(shamir_combine_verified(out, sh, 7, 4, verify_commit, &c), -EBADMSG);
}

static void test_box_roundtrip_and_tamper(void **state)
{
	uint8_t apk[32], ask[32], bpk[32], bsk[32], cpk[32], csk[32];
	uint8_t box[SHAMIR_BOX_BYTES], bad[SHAMIR_BOX_BYTES];
	const uint8_t rid2[] = "r-43";
	struct mask_round other = round0;
	struct shamir_pair p, q;

	(void)state;
	assert_int_equal(mask_keypair(apk, ask), 0);
	assert_int_equal(mask_keypair(bpk, bsk), 0);
	assert_int_equal(mask_keypair(cpk, csk), 0);
	p.self.x = p.pair.x = 3;
	randombytes_buf(p.self.y, 32);
	randombytes_buf(p.pair.y, 32);
	assert_int_equal(shamir_box_seal(box, &p, 1, 2, ask, apk, bpk, &round0), 0);
	assert_int_equal(shamir_box_open(&q, box, 1, 2, bsk, bpk, apk, &round0), 0);
	assert_int_equal(q.self.x, 3);
	assert_memory_equal(q.self.y, p.self.y, 32);
	assert_memory_equal(q.pair.y, p.pair.y, 32);
	/* every single flipped byte is rejected */
	for (size_t i = 0; i < SHAMIR_BOX_BYTES; i++) {
		memcpy(bad, box, sizeof(box));
		bad[i] ^= 0x01;
		assert_int_equal(shamir_box_open(&q, bad, 1, 2, bsk, bpk, apk, &round0), -EBADMSG);
	}
	/* wrong indexes, wrong round, wrong attempt, wrong recipient, wrong sender */
	assert_int_equal(shamir_box_open(&q, box, 2, 1, bsk, bpk, apk, &round0), -EBADMSG);
	assert_int_equal(shamir_box_open(&q, box, 1, 3, bsk, bpk, apk, &round0), -EBADMSG);
	other.attempt = 1;
	assert_int_equal(shamir_box_open(&q, box, 1, 2, bsk, bpk, apk, &other), -EBADMSG);
	other.attempt = 0;
	other.id = rid2;
	assert_int_equal(shamir_box_open(&q, box, 1, 2, bsk, bpk, apk, &other), -EBADMSG);
	assert_int_equal(shamir_box_open(&q, box, 1, 2, csk, cpk, apk, &round0), -EBADMSG);
	assert_int_equal(shamir_box_open(&q, box, 1, 2, bsk, bpk, cpk, &round0), -EBADMSG);
	/* a failed open wipes the output */
	for (size_t i = 0; i < 32; i++)
		assert_int_equal(q.self.y[i] | q.pair.y[i], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_gf_kat),
	        cmocka_unit_test(test_split_kat),
	        cmocka_unit_test(test_any_t_of_n),
	        cmocka_unit_test(test_t_minus_1_hides),
	        cmocka_unit_test(test_refusals),
	        cmocka_unit_test(test_wrong_share),
	        cmocka_unit_test(test_box_roundtrip_and_tamper),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
