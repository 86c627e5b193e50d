/*
 * seal.h: authenticated encryption of every frame between pinned peers,
 * replay protection, and the per-round ephemeral keys.
 *
 * A frame is a fixed 112-byte header, the ciphertext and a 16-byte tag:
 *
 *   off size
 *     0   3  magic "STO"
 *     3   1  frame version (SEAL_FRAME_VERSION)
 *     4   1  message type (opaque here: protocol/msg.h numbers them)
 *     5   1  flags: bit 0 SEAL_FLAG_ROUND (sealed with a round key); others 0
 *     6   2  zero
 *     8  32  sender's identity public key (Ed25519)
 *    40  32  recipient's identity public key (Ed25519)
 *    72   8  round id (big-endian; 0 outside rounds)
 *    80   8  counter (big-endian; per sender, strictly increasing, >= 1)
 *    88  24  nonce (random per-context prefix || counter)
 *   112   n  ciphertext of the message body
 *   +n   16  Poly1305 tag
 *
 * The whole header is the associated data of XChaCha20-Poly1305-IETF, so
 * no header bit can change without the tag failing. Keys: X25519 between
 * the two identities (identity.h derives the X25519 keys from Ed25519), then
 * one key per direction, K(A->B) = BLAKE2b-256(key = shared secret,
 * "sotto-seal-v1" || pk_A || pk_B). A round key additionally mixes the
 * X25519 of both sides' ephemeral round keys, so what is sealed with it is
 * forward secret once seal_round_clear() and the caller wiped the ephemeral
 * secrets. docs/protocol.md has the derivations byte by byte.
 *
 * The nonce is a random 16-byte prefix drawn when the context is created,
 * then the counter: unique within a context because counters are, and
 * across contexts because prefixes are random. So even if state were ever
 * restored from a backup and counters repeated (those frames would be
 * refused as replays), no (key, nonce) pair would repeat. Receivers treat
 * the nonce as opaque.
 *
 * Every refused frame is counted by reason (struct seal_stats). Not here:
 * the message bodies (protocol/), sockets (node/transport.h). A seal_ctx is
 * not thread-safe: use it from one thread (the event loop).
 */
#ifndef SOTTO_CRYPTO_SEAL_H
#define SOTTO_CRYPTO_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct identity;
struct seal_ctx;

#define SEAL_FRAME_VERSION 1
#define SEAL_KEY_BYTES     32 /* identity and ephemeral public keys */
#define SEAL_NONCE_BYTES   24
#define SEAL_TAG_BYTES     16
#define SEAL_HEADER_BYTES  112
#define SEAL_OVERHEAD      (SEAL_HEADER_BYTES + SEAL_TAG_BYTES)
#define SEAL_FLAG_ROUND    0x01u
#define SEAL_ROUND_SLOTS   4 /* round keys kept per peer */
/* Largest frame accepted unless seal_options.max_frame says otherwise. */
#define SEAL_DEFAULT_MAX_FRAME  ((size_t)80 << 20)
#define SEAL_DEFAULT_MAX_PEERS  1024
#define SEAL_DEFAULT_TX_RESERVE 65536u

/*
 * Why seal_open() refused a frame (negative, distinct from -errno; values
 * and messages in util/err.h):
 *   SEAL_EMALFORMED    truncated, bad magic, reserved bits set
 *   SEAL_EVERSION      frame version this build does not speak
 *   SEAL_EOVERSIZE     longer than max_frame
 *   SEAL_EMISDIRECTED  recipient is not this node
 *   SEAL_EUNKNOWN      sender not pinned
 *   SEAL_ENOROUNDKEY   round-sealed, but no key for that round
 *   SEAL_EREPLAYED     counter already accepted
 *   SEAL_ETOOOLD       counter below the replay window
 *   SEAL_EFORGED       authentication failed: tampered or wrong key
 */

struct seal_header {
	uint8_t version;
	uint8_t type;
	uint8_t flags;
	uint8_t sender[SEAL_KEY_BYTES];
	uint8_t recipient[SEAL_KEY_BYTES];
	uint64_t round_id;
	uint64_t counter;
	uint8_t nonce[SEAL_NONCE_BYTES];
};

/* Counters for status and metrics; only ever increase. */
struct seal_stats {
	uint64_t sealed, opened;
	uint64_t malformed, bad_version, oversized, misdirected;
	uint64_t unknown_sender, no_round_key, replayed, too_old, forged;
	uint64_t state_saves, state_save_errors;
};

struct seal_options {
	/*
	 * Replay state file (the node uses DataDir/replay.state). NULL keeps
	 * the state in memory only: counters restart at 1 after a restart,
	 * so only tests and benchmarks should do that.
	 */
	const char *state_path;
	/*
	 * true: save the state after every accepted frame, so that not even
	 * the frames of the last moments before a crash can be replayed
	 * afterwards (costs one fsync per frame). false: the node calls
	 * seal_state_save() when it sees fit (after a round, at shutdown).
	 */
	bool rx_sync;
	size_t max_frame;    /* 0: SEAL_DEFAULT_MAX_FRAME */
	size_t max_peers;    /* 0: SEAL_DEFAULT_MAX_PEERS */
	uint32_t tx_reserve; /* counters reserved per state write; 0: default */
};

/*
 * Creates a context for identity id (its keys are copied into guarded
 * memory; id may be freed afterwards). With a state path, loads it (a
 * missing file is a first start), skips the send counter past the saved
 * reservation and saves a new reservation before returning, so no counter
 * from before a crash is ever reused. Errors: -ENOMEM, -errno of the state
 * file, REPLAY_ECORRUPT (a damaged state file is not silently reset:
 * the operator must look at it). opt may be NULL (defaults, no state file).
 */
int seal_ctx_alloc(struct seal_ctx **out, const struct identity *id, const struct seal_options *opt)
        __attribute__((warn_unused_result));
/* Wipes every key and frees; accepts NULL. Does not save the state. */
void seal_ctx_free(struct seal_ctx *ctx);

/*
 * Pins a peer by its Ed25519 identity key and derives the per-direction
 * keys. Its receive window starts above the floor saved in the state file.
 * -EINVAL (not a valid key, or this node's own), -EEXIST, -ENOSPC.
 */
int seal_peer_add(struct seal_ctx *ctx, const uint8_t pk[SEAL_KEY_BYTES])
        __attribute__((warn_unused_result));
bool seal_peer_known(const struct seal_ctx *ctx, const uint8_t pk[SEAL_KEY_BYTES]);
/*
 * Unpins a peer (a config reload removed it or changed its key): its keys
 * and round keys are wiped and its frames are refused as from an unknown
 * sender from now on. Its receive floor is kept (and saved), so that if it
 * is pinned again its old frames are still replays. -ENOENT, -ENOMEM.
 */
int seal_peer_remove(struct seal_ctx *ctx, const uint8_t pk[SEAL_KEY_BYTES]);
/* This node's identity public key. */
const uint8_t *seal_self(const struct seal_ctx *ctx);
size_t seal_max_frame(const struct seal_ctx *ctx);

/*
 * Seals in place. frame holds len bytes: SEAL_HEADER_BYTES of room, the
 * plaintext body (len - SEAL_OVERHEAD bytes), SEAL_TAG_BYTES of room. The
 * header is written, the body encrypted in place, the tag appended. Uses
 * the round key for (peer, round_id) if seal_round_set() installed one,
 * else the static key. Takes the next send counter (saving a new
 * reservation first when the current one is used up). Errors: -EINVAL
 * (len out of range), SEAL_EUNKNOWN (peer not pinned), -errno of the
 * state file; the frame is then unchanged and no counter was used.
 */
int seal_frame(struct seal_ctx *ctx, uint8_t *frame, size_t len, const uint8_t peer[SEAL_KEY_BYTES],
               uint8_t type, uint64_t round_id) __attribute__((warn_unused_result));
/*
 * seal_frame() with a caller-chosen nonce. ONLY for known-answer tests:
 * a nonce repeated under one key voids confidentiality.
 */
int seal_frame_kat(struct seal_ctx *ctx, uint8_t *frame, size_t len,
                   const uint8_t peer[SEAL_KEY_BYTES], uint8_t type, uint64_t round_id,
                   const uint8_t nonce[SEAL_NONCE_BYTES]) __attribute__((warn_unused_result));

/*
 * Parses the header alone (no keys, no state): SEAL_EMALFORMED,
 * SEAL_EVERSION. Does not check the size limit or count anything.
 */
int seal_header_parse(struct seal_header *hdr, const uint8_t *frame, size_t len)
        __attribute__((warn_unused_result));

/*
 * Opens a frame in place: on success *hdr is the header and the body is
 * the len - SEAL_OVERHEAD bytes at frame + SEAL_HEADER_BYTES. Checks, in
 * this order, size, magic, version, recipient, sender, round key, replay
 * window, tag; only a frame that authenticated moves the window. Every
 * refusal returns one of the SEAL_E* codes above and is counted; the frame
 * bytes are then unspecified. The body was authenticated but not parsed.
 */
int seal_open(struct seal_ctx *ctx, struct seal_header *hdr, uint8_t *frame, size_t len)
        __attribute__((warn_unused_result));

/* --- per-round ephemeral keys ----------------------------------------- */

#define SEAL_SIG_BYTES 64

/* An X25519 key pair for one round. Wipe with sodium_memzero after use. */
struct seal_eph {
	uint8_t pk[SEAL_KEY_BYTES];
	uint8_t sk[SEAL_KEY_BYTES];
};

/* A fresh X25519 key pair from the system CSPRNG. */
void seal_eph_generate(struct seal_eph *kp);

/*
 * Signs a member's round keys with its identity (Bonawitz et al. 2017,
 * round 0, "AdvertiseKeys"): Ed25519 over
 *   "sotto-eph-v2" || round_id (8, big-endian) || attempt (4, big-endian) ||
 *   signer identity key || flags (1) || mask_pk || share_pk || seed_commit
 * where seed_commit is the member's commitment to its self-mask seed (32
 * zero bytes if the round does not use one) and flags are the member's
 * statements about its input (protocol/msg.h MSG_EPH_F_*). Binding the round
 * and the attempt stops keys from being replayed into another round or retry.
 */
#define SEAL_COMMIT_BYTES 32
void seal_eph_sign(uint8_t sig[SEAL_SIG_BYTES], const struct identity *id, uint64_t round_id,
                   uint32_t attempt, uint8_t flags, const uint8_t mask_pk[SEAL_KEY_BYTES],
                   const uint8_t share_pk[SEAL_KEY_BYTES],
                   const uint8_t seed_commit[SEAL_COMMIT_BYTES]);
/* Whether sig is signer's signature of exactly those values. */
bool seal_eph_verify(const uint8_t sig[SEAL_SIG_BYTES], const uint8_t signer[SEAL_KEY_BYTES],
                     uint64_t round_id, uint32_t attempt, uint8_t flags,
                     const uint8_t mask_pk[SEAL_KEY_BYTES], const uint8_t share_pk[SEAL_KEY_BYTES],
                     const uint8_t seed_commit[SEAL_COMMIT_BYTES]);

/*
 * Signs how a round's members split into alive and dropped (Bonawitz et al.
 * 2017, round 3, "ConsistencyCheck"): Ed25519 over
 *   "sotto-split-v1" || round_id (8) || attempt (4) || signer identity key ||
 *   transcript (32) || alive (4) || dropped (4)
 * with alive and dropped as bit sets of member indexes (big-endian u32) and
 * transcript a digest of the round so far (the INVITE and every roster
 * member's signed keys: node/round.c). A member signs one split per attempt
 * and reveals shares only under a split every alive member signed
 * (docs/security.md, "The reveal rule").
 */
#define SEAL_DIGEST_BYTES 32
void seal_split_sign(uint8_t sig[SEAL_SIG_BYTES], const struct identity *id, uint64_t round_id,
                     uint32_t attempt, const uint8_t transcript[SEAL_DIGEST_BYTES], uint32_t alive,
                     uint32_t dropped);
/* Whether sig is signer's signature of exactly that split. */
bool seal_split_verify(const uint8_t sig[SEAL_SIG_BYTES], const uint8_t signer[SEAL_KEY_BYTES],
                       uint64_t round_id, uint32_t attempt,
                       const uint8_t transcript[SEAL_DIGEST_BYTES], uint32_t alive,
                       uint32_t dropped);

/*
 * Installs the round key with peer for round_id: per direction,
 *   BLAKE2b-256(key = X25519(static) || X25519(mine.sk, peer_eph_pk),
 *               "sotto-round-v1" || round_id || pk_from || pk_to ||
 *               eph_from || eph_to).
 * From then on frames to that peer carrying round_id are round-sealed, and
 * round-sealed frames from it for round_id open. Each
 * peer keeps the keys of its last SEAL_ROUND_SLOTS rounds (the oldest is
 * replaced), so late frames of a round that just ended still open.
 * -EINVAL (bad key), SEAL_EUNKNOWN.
 * Install it after KEYS went out (initiator) or came in (member).
 */
int seal_round_set(struct seal_ctx *ctx, const uint8_t peer[SEAL_KEY_BYTES], uint64_t round_id,
                   const struct seal_eph *mine, const uint8_t peer_eph_pk[SEAL_KEY_BYTES])
        __attribute__((warn_unused_result));
/* Wipes the round keys of round_id with every peer (0: of every round). */
void seal_round_clear(struct seal_ctx *ctx, uint64_t round_id);

/* --- state and counters ----------------------------------------------- */

/* Saves the replay state now (0 without a state path). 0 or -errno. */
int seal_state_save(struct seal_ctx *ctx) __attribute__((warn_unused_result));
void seal_stats_get(const struct seal_ctx *ctx, struct seal_stats *out);

#endif
