/*
 * mask.h: secure-aggregation masks in a ring of segments Z_2^w.
 *
 * Bonawitz et al., "Practical Secure Aggregation for Privacy-Preserving
 * Machine Learning", CCS 2017, section 4. Member u adds to its encoded vector
 *
 *     PRG(b_u)  +  sum over other members v of  sign(u, v) * PRG(s_uv)
 *
 * where b_u is u's fresh self-mask seed and s_uv the key both u and v derive
 * from their X25519 agreement; sign(u, v) = +1 if u's mask public key sorts
 * below v's, else -1, so the pairwise terms cancel in the sum of all
 * members. Every key is hashed with the round id, the attempt number and
 * both public keys, so no mask repeats across rounds or retries even if an
 * ephemeral key were ever reused.
 *
 * PRG: ChaCha20 (libsodium's crypto_stream_chacha20, 64-bit nonce = segment
 * index, 64-bit block counter) keyed by the 32-byte mask key. Segment i of
 * width w reads its own keystream as little-endian 64-bit words, each
 * holding floor(64 / w) values of w bits, lowest first; the bits above the
 * last value of a word are not used (at most 6% of the stream for the
 * codec's usual widths, 31% at w = 22). Each value is w uniform bits, so
 * uniform in Z_2^w. Values that never straddle a word let a member add all
 * its keys' streams lane-wise within words before touching its vector.
 *
 * This module does not know the codec: a vector is an array of uint32_t ring
 * elements and a list of segments (length, width). It is not the share
 * handling (shamir.h) nor transport sealing (seal.h).
 */
#ifndef SOTTO_CRYPTO_MASK_H
#define SOTTO_CRYPTO_MASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MASK_KEY_BYTES    32  /* a PRG key */
#define MASK_SEED_BYTES   32  /* a self-mask seed b_u */
#define MASK_PK_BYTES     32  /* X25519 public key */
#define MASK_SK_BYTES     32  /* X25519 secret key */
#define MASK_ROUND_ID_MAX 64  /* bytes of a round id */
#define MASK_MAX_PEERS    255 /* peer keys one member_apply takes */

/* One ring segment: len elements of Z_2^width, 1 <= width <= 32. */
struct mask_seg {
	uint32_t len;
	uint32_t width;
};

/* What binds a mask to one attempt of one round. */
struct mask_round {
	const uint8_t *id; /* round id bytes */
	size_t id_len;     /* 1..MASK_ROUND_ID_MAX */
	uint32_t attempt;  /* retry number of this round id */
};

/* Elements of a vector with this layout; 0 if a width is out of range. */
size_t mask_vec_len(const struct mask_seg *segs, size_t nseg);

/*
 * v += sign * PRG(key) in the ring (sign is +1 or -1). v has
 * mask_vec_len(segs, nseg) elements, each < 2^width of its segment.
 * Returns 0 or -EINVAL (bad sign or layout).
 */
int mask_apply(uint32_t *v, const struct mask_seg *segs, size_t nseg,
               const uint8_t key[MASK_KEY_BYTES], int sign) __attribute__((warn_unused_result));
/*
 * The same on elements [first, first + len) only: v holds those len
 * elements (v[0] is element first). Equal, element for element, to that
 * range of mask_apply on the whole vector. 0 or -EINVAL (also a range
 * outside the layout).
 */
int mask_apply_range(uint32_t *v, const struct mask_seg *segs, size_t nseg,
                     const uint8_t key[MASK_KEY_BYTES], int sign, size_t first, size_t len)
        __attribute__((warn_unused_result));

/* acc += v (sign +1) or acc -= v (sign -1), element-wise in the ring. */
void mask_ring_add(uint32_t *acc, const uint32_t *v, const struct mask_seg *segs, size_t nseg,
                   int sign);

/*
 * The pairwise key s_uv of our keypair (my_sk, my_pk) and a peer's public key:
 * BLAKE2b-256 over a domain label, the round id, the attempt, both public keys
 * in sorted order and the X25519 shared point. *sign is our sign for it (+1 if
 * my_pk sorts below peer_pk). Returns 0, or -EINVAL if the two keys are
 * equal or the agreement fails (a low-order peer key).
 */
int mask_pair_key(uint8_t key[MASK_KEY_BYTES], int *sign, const uint8_t my_sk[MASK_SK_BYTES],
                  const uint8_t my_pk[MASK_PK_BYTES], const uint8_t peer_pk[MASK_PK_BYTES],
                  const struct mask_round *r) __attribute__((warn_unused_result));

/* The self-mask key of seed b_u: BLAKE2b-256 keyed by the seed, over a label,
 * the round id, the attempt and the member's mask public key. */
int mask_self_key(uint8_t key[MASK_KEY_BYTES], const uint8_t seed[MASK_SEED_BYTES],
                  const uint8_t my_pk[MASK_PK_BYTES], const struct mask_round *r)
        __attribute__((warn_unused_result));

/*
 * Everything member u adds to its own encoded vector v: its self mask and
 * one pairwise mask for each of the npeers (<= MASK_MAX_PEERS) peer public
 * keys (its own key may appear in the list and is skipped). Returns 0 or
 * -EINVAL.
 */
int mask_member_apply(uint32_t *v, const struct mask_seg *segs, size_t nseg,
                      const uint8_t seed[MASK_SEED_BYTES], const uint8_t my_sk[MASK_SK_BYTES],
                      const uint8_t my_pk[MASK_PK_BYTES], const uint8_t (*peer_pks)[MASK_PK_BYTES],
                      size_t npeers, const struct mask_round *r)
        __attribute__((warn_unused_result));

/* X25519 key pair for masks (fresh per attempt). 0 or -EINVAL. */
int mask_keypair(uint8_t pk[MASK_PK_BYTES], uint8_t sk[MASK_SK_BYTES])
        __attribute__((warn_unused_result));
/* Public key of a secret key (to check a reconstructed secret). 0 or -EINVAL. */
int mask_public_of(uint8_t pk[MASK_PK_BYTES], const uint8_t sk[MASK_SK_BYTES])
        __attribute__((warn_unused_result));

#endif
