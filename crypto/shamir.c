/*
 * shamir.c: Shamir sharing over GF(2^8) with constant-time field arithmetic,
 * and the XChaCha20-Poly1305 share boxes of a round (see shamir.h).
 *
 * Constant time here means: no lookup tables indexed by secret bytes and no
 * branches on them. x coordinates are public, so the Lagrange weights may be
 * computed plainly, but they multiply secret share bytes, which is why the
 * multiplication itself is the branch-free shift-and-add loop.
 */
#include "crypto/shamir.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "util/util.h"

static const uint8_t label_box[] = "sotto share box v1";
static const uint8_t label_commit[] = "sotto self commit v1";

uint8_t shamir_gf_mul(uint8_t a, uint8_t b)
{
	uint8_t r = 0;

	for (int i = 0; i < 8; i++) {
		uint8_t hi;

		r ^= (uint8_t)(-(b & 1) & a);
		b >>= 1;
		hi = (uint8_t) - (a >> 7);
		a = (uint8_t)((a << 1) ^ (hi & 0x1b));
	}
	return r;
}

uint8_t shamir_gf_inv(uint8_t a)
{
	/* a^254 = a^-1 in GF(2^8)*, and 0^254 = 0; fixed square-multiply chain. */
	uint8_t r = 1, base = a;

	for (int i = 0; i < 8; i++) {
		uint8_t m = shamir_gf_mul(r, base);
		uint8_t bit = (uint8_t) - ((254 >> i) & 1); /* public exponent */

		r = (uint8_t)((m & bit) | (r & ~bit));
		base = shamir_gf_mul(base, base);
	}
	return r;
}

int shamir_split_with(struct shamir_share *shares, size_t n, size_t t,
                      const uint8_t secret[SHAMIR_SECRET_BYTES], const uint8_t *coeffs)
{
	if (t < 1 || n < t || n > SHAMIR_MAX_SHARES || (t > 1 && coeffs == NULL))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		uint8_t x = (uint8_t)(i + 1);

		shares[i].x = x;
		for (size_t j = 0; j < SHAMIR_SECRET_BYTES; j++) {
			/* Horner from the top coefficient down to the secret. */
			uint8_t y = 0;

			for (size_t d = t - 1; d >= 1; d--)
				y = shamir_gf_mul(y, x) ^ coeffs[(d - 1) * SHAMIR_SECRET_BYTES + j];
			shares[i].y[j] = shamir_gf_mul(y, x) ^ secret[j];
		}
	}
	return 0;
}

int shamir_split(struct shamir_share *shares, size_t n, size_t t,
                 const uint8_t secret[SHAMIR_SECRET_BYTES])
{
	uint8_t *coeffs = NULL;
	size_t len;
	int rc = -EINVAL;

	if (sodium_init() < 0 || t < 1 || n < t || n > SHAMIR_MAX_SHARES)
		goto out;
	len = (t - 1) * SHAMIR_SECRET_BYTES;
	rc = -ENOMEM;
	coeffs = sodium_malloc(len > 0 ? len : 1);
	if (coeffs == NULL)
		goto out;
	randombytes_buf(coeffs, len);
	rc = shamir_split_with(shares, n, t, secret, coeffs);
out:
	sodium_free(coeffs); /* wipes */
	return rc;
}

int shamir_combine(uint8_t secret[SHAMIR_SECRET_BYTES], const struct shamir_share *shares, size_t m)
{
	uint8_t acc[SHAMIR_SECRET_BYTES] = {0};

	if (m < 1 || m > SHAMIR_MAX_SHARES)
		return -EINVAL;
	for (size_t i = 0; i < m; i++) {
		if (shares[i].x == 0)
			return -EINVAL;
		for (size_t j = i + 1; j < m; j++) {
			if (shares[i].x == shares[j].x)
				return -EINVAL;
		}
	}
	for (size_t i = 0; i < m; i++) {
		/* Lagrange weight at 0: prod_{j != i} x_j / (x_j - x_i); minus is xor. */
		uint8_t num = 1, den = 1, w;

		for (size_t j = 0; j < m; j++) {
			if (j == i)
				continue;
			num = shamir_gf_mul(num, shares[j].x);
			den = shamir_gf_mul(den, (uint8_t)(shares[j].x ^ shares[i].x));
		}
		w = shamir_gf_mul(num, shamir_gf_inv(den));
		for (size_t b = 0; b < SHAMIR_SECRET_BYTES; b++)
			acc[b] ^= shamir_gf_mul(w, shares[i].y[b]);
	}
	memcpy(secret, acc, sizeof(acc));
	sodium_memzero(acc, sizeof(acc));
	return 0;
}

int shamir_combine_verified(uint8_t secret[SHAMIR_SECRET_BYTES], const struct shamir_share *shares,
                            size_t m, size_t t, shamir_verify_cb verify, void *arg)
{
	struct shamir_share sub[SHAMIR_MAX_SHARES];
	size_t idx[SHAMIR_MAX_SHARES];
	uint8_t cand[SHAMIR_SECRET_BYTES];
	unsigned tries = 0;
	int rc = -EINVAL;

	if (t < 1 || m < t || m > SHAMIR_MAX_SHARES || verify == NULL)
		goto out;
	rc = shamir_combine(cand, shares, m);
	if (rc != 0)
		goto out;
	if (verify(cand, arg))
		goto found;
	rc = -EBADMSG;
	if (m == t)
		goto out;
	/* Every t-subset in lexicographic order of indexes. */
	for (size_t i = 0; i < t; i++)
		idx[i] = i;
	for (;;) {
		size_t i;

		if (++tries > SHAMIR_MAX_SUBSETS)
			goto out;
		for (i = 0; i < t; i++)
			sub[i] = shares[idx[i]];
		if (shamir_combine(cand, sub, t) == 0 && verify(cand, arg))
			goto found;
		/* next combination */
		i = t;
		while (i > 0 && idx[i - 1] == m - t + (i - 1))
			i--;
		if (i == 0)
			goto out;
		idx[i - 1]++;
		for (size_t j = i; j < t; j++)
			idx[j] = idx[j - 1] + 1;
	}
found:
	memcpy(secret, cand, sizeof(cand));
	rc = 0;
out:
	sodium_memzero(cand, sizeof(cand));
	sodium_memzero(sub, sizeof(sub));
	return rc;
}

/* --- boxes ---------------------------------------------------------------- */

static void put_round(uint8_t *ad, size_t *len, const struct mask_round *r)
{
	ad[(*len)++] = (uint8_t)r->id_len;
	memcpy(ad + *len, r->id, r->id_len);
	*len += r->id_len;
	for (int i = 0; i < 4; i++)
		ad[(*len)++] = (uint8_t)(r->attempt >> (8 * i));
}

static bool round_ok(const struct mask_round *r)
{
	return r != NULL && r->id != NULL && r->id_len >= 1 && r->id_len <= MASK_ROUND_ID_MAX;
}

/* Key of the box from (sender pk) to (holder pk): both sides compute it. */
static int box_key(uint8_t key[32], const uint8_t my_sk[32], const uint8_t peer_pk[32],
                   const uint8_t from_pk[32], const uint8_t to_pk[32], const struct mask_round *r)
{
	uint8_t shared[crypto_scalarmult_BYTES];
	uint8_t ad[1 + MASK_ROUND_ID_MAX + 4];
	size_t adlen = 0;
	crypto_generichash_state st;
	int rc = -EINVAL;

	if (crypto_scalarmult(shared, my_sk, peer_pk) != 0)
		goto out;
	put_round(ad, &adlen, r);
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, label_box, sizeof(label_box));
	crypto_generichash_update(&st, ad, adlen);
	crypto_generichash_update(&st, from_pk, 32);
	crypto_generichash_update(&st, to_pk, 32);
	crypto_generichash_update(&st, shared, sizeof(shared));
	crypto_generichash_final(&st, key, 32);
	rc = 0;
out:
	sodium_memzero(shared, sizeof(shared));
	sodium_memzero(&st, sizeof(st));
	return rc;
}

static size_t box_ad(uint8_t *ad, uint8_t from, uint8_t to, const struct mask_round *r)
{
	size_t len = 0;

	memcpy(ad, label_box, sizeof(label_box));
	len = sizeof(label_box);
	put_round(ad, &len, r);
	ad[len++] = from;
	ad[len++] = to;
	return len;
}

int shamir_box_seal(uint8_t out[SHAMIR_BOX_BYTES], const struct shamir_pair *p, uint8_t from,
                    uint8_t to, const uint8_t sender_sk[32], const uint8_t sender_pk[32],
                    const uint8_t holder_pk[32], const struct mask_round *r)
{
	uint8_t key[32], plain[SHAMIR_BOX_PLAIN_BYTES];
	uint8_t ad[sizeof(label_box) + 1 + MASK_ROUND_ID_MAX + 4 + 2];
	size_t adlen;
	unsigned long long clen = 0;
	int rc = -EINVAL;

	if (sodium_init() < 0 || !round_ok(r) || p->self.x != p->pair.x)
		goto out;
	rc = box_key(key, sender_sk, holder_pk, sender_pk, holder_pk, r);
	if (rc != 0)
		goto out;
	plain[0] = from;
	plain[1] = to;
	plain[2] = p->self.x;
	memcpy(plain + 3, p->self.y, SHAMIR_SECRET_BYTES);
	memcpy(plain + 3 + SHAMIR_SECRET_BYTES, p->pair.y, SHAMIR_SECRET_BYTES);
	adlen = box_ad(ad, from, to, r);
	randombytes_buf(out, 24);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 24, &clen, plain, sizeof(plain), ad, adlen,
	                                           NULL, out, key);
	SOTTO_ASSERT(clen == SHAMIR_BOX_BYTES - 24);
	rc = 0;
out:
	sodium_memzero(key, sizeof(key));
	sodium_memzero(plain, sizeof(plain));
	return rc;
}

int shamir_box_open(struct shamir_pair *p, const uint8_t box[SHAMIR_BOX_BYTES], uint8_t from,
                    uint8_t to, const uint8_t holder_sk[32], const uint8_t holder_pk[32],
                    const uint8_t sender_pk[32], const struct mask_round *r)
{
	uint8_t key[32], plain[SHAMIR_BOX_PLAIN_BYTES];
	uint8_t ad[sizeof(label_box) + 1 + MASK_ROUND_ID_MAX + 4 + 2];
	size_t adlen;
	unsigned long long plen = 0;
	int rc = -EBADMSG;

	memset(p, 0, sizeof(*p));
	if (sodium_init() < 0 || !round_ok(r))
		goto out;
	if (box_key(key, holder_sk, sender_pk, sender_pk, holder_pk, r) != 0)
		goto out;
	adlen = box_ad(ad, from, to, r);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
	            plain, &plen, NULL, box + 24, SHAMIR_BOX_BYTES - 24, ad, adlen, box, key) != 0)
		goto out;
	if (plen != sizeof(plain) || plain[0] != from || plain[1] != to || plain[2] == 0)
		goto out;
	p->self.x = p->pair.x = plain[2];
	memcpy(p->self.y, plain + 3, SHAMIR_SECRET_BYTES);
	memcpy(p->pair.y, plain + 3 + SHAMIR_SECRET_BYTES, SHAMIR_SECRET_BYTES);
	rc = 0;
out:
	sodium_memzero(key, sizeof(key));
	sodium_memzero(plain, sizeof(plain));
	if (rc != 0)
		sodium_memzero(p, sizeof(*p));
	return rc;
}

int shamir_seed_commit(uint8_t commit[SHAMIR_COMMIT_BYTES], const uint8_t seed[32],
                       const uint8_t mask_pk[32], const struct mask_round *r)
{
	uint8_t ad[1 + MASK_ROUND_ID_MAX + 4];
	size_t adlen = 0;
	crypto_generichash_state st;

	if (sodium_init() < 0 || !round_ok(r))
		return -EINVAL;
	put_round(ad, &adlen, r);
	crypto_generichash_init(&st, NULL, 0, SHAMIR_COMMIT_BYTES);
	crypto_generichash_update(&st, label_commit, sizeof(label_commit));
	crypto_generichash_update(&st, ad, adlen);
	crypto_generichash_update(&st, mask_pk, 32);
	crypto_generichash_update(&st, seed, 32);
	crypto_generichash_final(&st, commit, SHAMIR_COMMIT_BYTES);
	sodium_memzero(&st, sizeof(st));
	return 0;
}
