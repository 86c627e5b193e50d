/*
 * shamir.h: t-of-n Shamir secret sharing of 32-byte secrets over GF(2^8),
 * and the encrypted share boxes of a secure-aggregation round.
 *
 * Byte j of the secret is the constant term of a random polynomial of degree
 * t-1 over GF(2^8) (AES field, x^8 + x^4 + x^3 + x + 1); holder i gets the
 * polynomial's values at x = i (1..n). Any t shares give the secret; fewer
 * give no information about it. The field arithmetic is constant time (no
 * tables, no secret-dependent branches or indexes): see docs/security.md for
 * why this is a small own implementation and not libgfshare.
 *
 * Shamir alone does not detect a wrong share: a bad share silently yields a
 * wrong secret. Callers check the result against a commitment (the mask
 * public key for an X25519 secret, mask_seed_commit for a seed);
 * shamir_combine_verified then finds a consistent t-subset if there is one.
 *
 * A share box carries, from member `from` to holder `to`, that holder's
 * shares of from's self-mask seed and pairwise-mask secret key, encrypted
 * with XChaCha20-Poly1305 under a key hashed from the X25519 agreement of
 * their ephemeral share keys, the round, and both public keys; the round and
 * both indexes are associated data. Not here: the masks (mask.h), transport
 * sealing (seal.h).
 */
#ifndef SOTTO_CRYPTO_SHAMIR_H
#define SOTTO_CRYPTO_SHAMIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/mask.h"

#define SHAMIR_SECRET_BYTES 32
#define SHAMIR_MAX_SHARES   255
/* shamir_combine_verified tries at most this many t-subsets. */
#define SHAMIR_MAX_SUBSETS 20000u

struct shamir_share {
	uint8_t x; /* 1..255, public */
	uint8_t y[SHAMIR_SECRET_BYTES];
};

/* GF(2^8) multiplication, constant time (exposed for known-answer tests). */
uint8_t shamir_gf_mul(uint8_t a, uint8_t b);
/* Multiplicative inverse (0 maps to 0), constant time. */
uint8_t shamir_gf_inv(uint8_t a);

/*
 * Splits secret into n shares (x = 1..n) any t of which recover it,
 * 1 <= t <= n <= SHAMIR_MAX_SHARES. Coefficients come from the OS CSPRNG.
 * Returns 0 or -EINVAL.
 */
int shamir_split(struct shamir_share *shares, size_t n, size_t t,
                 const uint8_t secret[SHAMIR_SECRET_BYTES]) __attribute__((warn_unused_result));
/* The same with given coefficients: (t-1) * 32 bytes, coefficient of x^d for
 * byte j at coeffs[(d-1) * 32 + j]. For known-answer tests only. */
int shamir_split_with(struct shamir_share *shares, size_t n, size_t t,
                      const uint8_t secret[SHAMIR_SECRET_BYTES], const uint8_t *coeffs)
        __attribute__((warn_unused_result));

/*
 * Lagrange interpolation at 0 of the m shares given (their x distinct and
 * nonzero). With m >= t shares of one sharing this is the secret; with a
 * wrong share it is some other value. Returns 0 or -EINVAL (bad x).
 */
int shamir_combine(uint8_t secret[SHAMIR_SECRET_BYTES], const struct shamir_share *shares, size_t m)
        __attribute__((warn_unused_result));

/* Accepts a candidate secret (e.g. compares it against a commitment). */
typedef bool (*shamir_verify_cb)(const uint8_t secret[SHAMIR_SECRET_BYTES], void *arg);

/*
 * Recovers a secret that verify accepts from m >= t shares of which some
 * may be wrong: first all m together, then every t-subset (at most
 * SHAMIR_MAX_SUBSETS). Returns 0, -EBADMSG if no subset verifies (too many
 * wrong shares), or -EINVAL.
 */
int shamir_combine_verified(uint8_t secret[SHAMIR_SECRET_BYTES], const struct shamir_share *shares,
                            size_t m, size_t t, shamir_verify_cb verify, void *arg)
        __attribute__((warn_unused_result));

/* --- share boxes ---------------------------------------------------------- */

#define SHAMIR_BOX_PLAIN_BYTES (3 + 2 * SHAMIR_SECRET_BYTES)
#define SHAMIR_BOX_BYTES       (24 + SHAMIR_BOX_PLAIN_BYTES + 16) /* nonce || ciphertext || tag */

/* The two shares one holder gets from one member (both at the holder's x). */
struct shamir_pair {
	struct shamir_share self; /* of the member's self-mask seed */
	struct shamir_share pair; /* of the member's mask secret key */
};

/*
 * Encrypts p from member index `from` to holder index `to`, using the
 * sender's share-key pair and the holder's share public key (X25519, fresh
 * per attempt). out gets SHAMIR_BOX_BYTES. Returns 0 or -EINVAL.
 */
int shamir_box_seal(uint8_t out[SHAMIR_BOX_BYTES], const struct shamir_pair *p, uint8_t from,
                    uint8_t to, const uint8_t sender_sk[32], const uint8_t sender_pk[32],
                    const uint8_t holder_pk[32], const struct mask_round *r)
        __attribute__((warn_unused_result));
/*
 * Opens a box from `from` to us (`to`): verifies the tag over the round and
 * both indexes before releasing anything. Returns 0, or -EBADMSG (forged,
 * tampered, wrong round or wrong pair of indexes) with p wiped.
 */
int shamir_box_open(struct shamir_pair *p, const uint8_t box[SHAMIR_BOX_BYTES], uint8_t from,
                    uint8_t to, const uint8_t holder_sk[32], const uint8_t holder_pk[32],
                    const uint8_t sender_pk[32], const struct mask_round *r)
        __attribute__((warn_unused_result));

/* Commitment to a self-mask seed, published before masking:
 * BLAKE2b-256(label, round, mask public key, seed). */
#define SHAMIR_COMMIT_BYTES 32
int shamir_seed_commit(uint8_t commit[SHAMIR_COMMIT_BYTES], const uint8_t seed[32],
                       const uint8_t mask_pk[32], const struct mask_round *r)
        __attribute__((warn_unused_result));

#endif
