/*
 * seal.c: frame sealing between pinned identities, replay checks, round
 * keys and ephemeral key signatures.
 *
 * All primitives are libsodium's: crypto_scalarmult (X25519),
 * crypto_generichash (BLAKE2b) as the KDF, crypto_aead_xchacha20poly1305_ietf
 * in detached mode so frames are sealed and opened in place (the cipher
 * XORs into c before MACing c when sealing, and MACs c before XORing when
 * opening, so c == m is safe), crypto_sign_ed25519 for ephemeral keys.
 * Secrets live in sodium_malloc'd memory and are wiped when dropped.
 * Not here: message bodies, sockets, deciding when to save the state.
 */
#include "crypto/seal.h"

#include "crypto/identity.h"
#include "crypto/replay.h"
#include "util/bytes.h"
#include "util/err.h"
#include "util/util.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define KDF_SEAL  "sotto-seal-v1"
#define KDF_ROUND "sotto-round-v1"
#define SIG_EPH   "sotto-eph-v2"
#define SIG_SPLIT "sotto-split-v1"

static const uint8_t frame_magic[3] = {'S', 'T', 'O'};

struct seal_peer {
	uint8_t pk[SEAL_KEY_BYTES];
	uint8_t ss[32]; /* X25519 of the two identities, kept for round keys */
	uint8_t tx[32]; /* K(self -> peer) */
	uint8_t rx[32]; /* K(peer -> self) */
	/*
	 * Round keys of the last few rounds with this peer: consecutive rounds
	 * often share members, and a late frame of the previous round must
	 * still open (to be ignored as stale, not counted as forged).
	 */
	struct seal_round_key {
		uint64_t round_id; /* 0: empty slot */
		uint64_t age;      /* when it was set: the oldest slot is reused */
		uint8_t tx[32];
		uint8_t rx[32];
	} rk[SEAL_ROUND_SLOTS];
	struct replay_window win;
};

static struct seal_round_key *round_key_find(struct seal_peer *p, uint64_t round_id)
{
	if (round_id == 0)
		return NULL;
	for (size_t i = 0; i < SEAL_ROUND_SLOTS; i++) {
		if (p->rk[i].round_id == round_id)
			return &p->rk[i];
	}
	return NULL;
}

struct seal_ctx {
	uint8_t self_pk[SEAL_KEY_BYTES];
	uint8_t dh_sk[32];
	struct seal_peer *peers; /* sodium_allocarray(max_peers) */
	uint64_t round_key_age;
	size_t n_peers, max_peers;
	size_t max_frame;
	char *state_path; /* NULL: memory only */
	bool rx_sync;
	uint32_t tx_reserve;
	uint64_t tx_next;     /* next counter to seal with */
	uint64_t tx_reserved; /* counters < this are covered by the state file */
	/* Random per context: nonce = prefix || counter (see seal_frame). */
	uint8_t nonce_prefix[SEAL_NONCE_BYTES - 8];
	/* Receive floors from the state file for peers not added yet. */
	struct replay_peer_record *floors;
	size_t n_floors;
	struct seal_stats stats;
};

static struct seal_peer *peer_find(const struct seal_ctx *ctx, const uint8_t pk[SEAL_KEY_BYTES])
{
	for (size_t i = 0; i < ctx->n_peers; i++) {
		if (memcmp(ctx->peers[i].pk, pk, SEAL_KEY_BYTES) == 0)
			return &ctx->peers[i];
	}
	return NULL;
}

/* K(from -> to) = BLAKE2b-256(key = ss, "sotto-seal-v1" || from || to). */
static void kdf_static(uint8_t out[32], const uint8_t ss[32], const uint8_t *from,
                       const uint8_t *to)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, ss, 32, 32);
	crypto_generichash_update(&st, (const uint8_t *)KDF_SEAL, strlen(KDF_SEAL));
	crypto_generichash_update(&st, from, SEAL_KEY_BYTES);
	crypto_generichash_update(&st, to, SEAL_KEY_BYTES);
	crypto_generichash_final(&st, out, 32);
	sodium_memzero(&st, sizeof(st));
}

static int state_save(struct seal_ctx *ctx, uint64_t tx_reserved)
{
	struct replay_state st = {.tx_reserved = tx_reserved};
	size_t n = 0;
	int rc;

	if (ctx->state_path == NULL)
		return 0;
	st.peers = calloc(ctx->n_peers + ctx->n_floors + 1, sizeof(*st.peers));
	if (st.peers == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < ctx->n_floors; i++)
		st.peers[n++] = ctx->floors[i];
	for (size_t i = 0; i < ctx->n_peers; i++) {
		memcpy(st.peers[n].peer, ctx->peers[i].pk, SEAL_KEY_BYTES);
		st.peers[n].rx_top = ctx->peers[i].win.top;
		n++;
	}
	st.n_peers = n;
	rc = replay_state_save(&st, ctx->state_path);
	replay_state_fini(&st);
	if (rc == 0)
		ctx->stats.state_saves++;
	else
		ctx->stats.state_save_errors++;
	return rc;
}

int seal_ctx_alloc(struct seal_ctx **out, const struct identity *id, const struct seal_options *opt)
{
	struct seal_options defaults = {0};
	struct replay_state st = {0};
	struct seal_ctx *ctx;
	int rc;

	*out = NULL;
	if (opt == NULL)
		opt = &defaults;
	if (sodium_init() < 0)
		return -ENOMEM;
	ctx = sodium_malloc(sizeof(*ctx));
	if (ctx == NULL)
		return -ENOMEM;
	memset(ctx, 0, sizeof(*ctx));
	memcpy(ctx->self_pk, id->sign_pk, SEAL_KEY_BYTES);
	memcpy(ctx->dh_sk, id->dh_sk, 32);
	ctx->max_frame = opt->max_frame != 0 ? opt->max_frame : SEAL_DEFAULT_MAX_FRAME;
	ctx->max_peers = opt->max_peers != 0 ? opt->max_peers : SEAL_DEFAULT_MAX_PEERS;
	ctx->tx_reserve = opt->tx_reserve != 0 ? opt->tx_reserve : SEAL_DEFAULT_TX_RESERVE;
	ctx->rx_sync = opt->rx_sync;
	ctx->tx_next = 1;
	ctx->tx_reserved = UINT64_MAX; /* memory only: nothing to reserve */
	randombytes_buf(ctx->nonce_prefix, sizeof(ctx->nonce_prefix));
	ctx->peers = sodium_allocarray(ctx->max_peers, sizeof(*ctx->peers));
	if (ctx->peers == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (opt->state_path != NULL) {
		ctx->state_path = strdup(opt->state_path);
		if (ctx->state_path == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		rc = replay_state_load(&st, ctx->state_path);
		if (rc != 0 && rc != -ENOENT)
			goto out;
		ctx->floors = st.peers; /* ownership moves to ctx */
		ctx->n_floors = st.n_peers;
		st.peers = NULL;
		if (st.tx_reserved > ctx->tx_next)
			ctx->tx_next = st.tx_reserved;
		if (ctx->tx_next > UINT64_MAX - ctx->tx_reserve) {
			rc = -EOVERFLOW;
			goto out;
		}
		/* Reserve before the first use; a restart skips to here. */
		ctx->tx_reserved = ctx->tx_next + ctx->tx_reserve;
		rc = state_save(ctx, ctx->tx_reserved);
		if (rc != 0)
			goto out;
	}
	rc = 0;
out:
	replay_state_fini(&st);
	if (rc != 0) {
		seal_ctx_free(ctx);
		return rc;
	}
	*out = ctx;
	return 0;
}

void seal_ctx_free(struct seal_ctx *ctx)
{
	if (ctx == NULL)
		return;
	if (ctx->peers != NULL)
		sodium_free(ctx->peers); /* wipes */
	free(ctx->floors);
	free(ctx->state_path);
	sodium_free(ctx);
}

int seal_peer_add(struct seal_ctx *ctx, const uint8_t pk[SEAL_KEY_BYTES])
{
	struct seal_peer *p;
	uint8_t dh[32];
	uint64_t floor = 0;

	if (!identity_public_valid(pk) || memcmp(pk, ctx->self_pk, SEAL_KEY_BYTES) == 0)
		return -EINVAL;
	if (peer_find(ctx, pk) != NULL)
		return -EEXIST;
	if (ctx->n_peers == ctx->max_peers)
		return -ENOSPC;
	p = &ctx->peers[ctx->n_peers];
	memset(p, 0, sizeof(*p));
	if (identity_public_to_dh(dh, pk) != 0 || crypto_scalarmult(p->ss, ctx->dh_sk, dh) != 0) {
		sodium_memzero(p, sizeof(*p));
		return -EINVAL; /* small-order point: all-zero shared secret */
	}
	memcpy(p->pk, pk, SEAL_KEY_BYTES);
	kdf_static(p->tx, p->ss, ctx->self_pk, pk);
	kdf_static(p->rx, p->ss, pk, ctx->self_pk);
	for (size_t i = 0; i < ctx->n_floors; i++) {
		if (memcmp(ctx->floors[i].peer, pk, SEAL_KEY_BYTES) == 0) {
			floor = ctx->floors[i].rx_top;
			/* keeps the others in order, oldest first (seal_peer_remove) */
			memmove(&ctx->floors[i], &ctx->floors[i + 1],
			        (ctx->n_floors - i - 1) * sizeof(*ctx->floors));
			ctx->n_floors--;
			break;
		}
	}
	replay_window_init(&p->win, floor);
	ctx->n_peers++;
	return 0;
}

/* Floors kept for removed peers, at most: the state file holds them and the peers. */
static size_t floors_cap(const struct seal_ctx *ctx)
{
	return REPLAY_STATE_MAX_PEERS > ctx->max_peers ? REPLAY_STATE_MAX_PEERS - ctx->max_peers
	                                               : 0;
}

int seal_peer_remove(struct seal_ctx *ctx, const uint8_t pk[SEAL_KEY_BYTES])
{
	struct seal_peer *p = peer_find(ctx, pk);
	struct replay_peer_record *fl;
	size_t cap = floors_cap(ctx);

	if (p == NULL)
		return -ENOENT;
	/*
	 * Its receive floor stays, as if it came from the state file: pinned
	 * again later, the peer's old frames are still refused as replays.
	 */
	if (cap > 0) {
		while (ctx->n_floors >= cap) {
			/* the oldest floor goes: its peer has been gone longest */
			memmove(&ctx->floors[0], &ctx->floors[1],
			        (ctx->n_floors - 1) * sizeof(*ctx->floors));
			ctx->n_floors--;
		}
		fl = realloc(ctx->floors, (ctx->n_floors + 1) * sizeof(*fl));
		if (fl == NULL)
			return -ENOMEM;
		ctx->floors = fl;
		memcpy(fl[ctx->n_floors].peer, p->pk, SEAL_KEY_BYTES);
		fl[ctx->n_floors].rx_top = p->win.top;
		ctx->n_floors++;
	}
	/* Its keys, round keys included, are wiped; the last peer takes its slot. */
	if (p != &ctx->peers[ctx->n_peers - 1])
		*p = ctx->peers[ctx->n_peers - 1];
	sodium_memzero(&ctx->peers[ctx->n_peers - 1], sizeof(*p));
	ctx->n_peers--;
	return 0;
}

bool seal_peer_known(const struct seal_ctx *ctx, const uint8_t pk[SEAL_KEY_BYTES])
{
	return peer_find(ctx, pk) != NULL;
}

const uint8_t *seal_self(const struct seal_ctx *ctx)
{
	return ctx->self_pk;
}

size_t seal_max_frame(const struct seal_ctx *ctx)
{
	return ctx->max_frame;
}

/* --- frames --------------------------------------------------------------- */

static void header_write(uint8_t *f, uint8_t type, uint8_t flags, const uint8_t *sender,
                         const uint8_t *recipient, uint64_t round_id, uint64_t counter,
                         const uint8_t nonce[SEAL_NONCE_BYTES])
{
	memcpy(f, frame_magic, 3);
	f[3] = SEAL_FRAME_VERSION;
	f[4] = type;
	f[5] = flags;
	f[6] = 0;
	f[7] = 0;
	memcpy(f + 8, sender, SEAL_KEY_BYTES);
	memcpy(f + 40, recipient, SEAL_KEY_BYTES);
	bytes_put_be64(f + 72, round_id);
	bytes_put_be64(f + 80, counter);
	memcpy(f + 88, nonce, SEAL_NONCE_BYTES);
}

int seal_header_parse(struct seal_header *hdr, const uint8_t *f, size_t len)
{
	if (len < SEAL_OVERHEAD || memcmp(f, frame_magic, 3) != 0)
		return SEAL_EMALFORMED;
	if (f[3] != SEAL_FRAME_VERSION)
		return SEAL_EVERSION;
	if ((f[5] & ~SEAL_FLAG_ROUND) != 0 || f[6] != 0 || f[7] != 0)
		return SEAL_EMALFORMED;
	hdr->version = f[3];
	hdr->type = f[4];
	hdr->flags = f[5];
	memcpy(hdr->sender, f + 8, SEAL_KEY_BYTES);
	memcpy(hdr->recipient, f + 40, SEAL_KEY_BYTES);
	hdr->round_id = bytes_get_be64(f + 72);
	hdr->counter = bytes_get_be64(f + 80);
	memcpy(hdr->nonce, f + 88, SEAL_NONCE_BYTES);
	return 0;
}

static int frame_seal(struct seal_ctx *ctx, uint8_t *frame, size_t len,
                      const uint8_t peer_pk[SEAL_KEY_BYTES], uint8_t type, uint64_t round_id,
                      const uint8_t *kat_nonce)
{
	uint8_t nonce[SEAL_NONCE_BYTES];
	struct seal_peer *p;
	const struct seal_round_key *rk;
	const uint8_t *key;
	uint8_t flags = 0;
	size_t body;
	uint64_t counter;
	int rc;

	if (len < SEAL_OVERHEAD || len > ctx->max_frame)
		return -EINVAL;
	p = peer_find(ctx, peer_pk);
	if (p == NULL)
		return SEAL_EUNKNOWN;
	if (ctx->tx_next >= ctx->tx_reserved) {
		uint64_t next;
		if (ctx->tx_next > UINT64_MAX - ctx->tx_reserve)
			return -EOVERFLOW;
		next = ctx->tx_next + ctx->tx_reserve;
		rc = state_save(ctx, next);
		if (rc != 0)
			return rc;
		ctx->tx_reserved = next;
	}
	counter = ctx->tx_next++;
	/*
	 * A fresh random prefix per context and a counter that never repeats
	 * within it: (key, nonce) never repeats, even if a restored backup
	 * made counters repeat across runs, and no syscall per frame.
	 */
	if (kat_nonce != NULL) {
		memcpy(nonce, kat_nonce, SEAL_NONCE_BYTES);
	} else {
		memcpy(nonce, ctx->nonce_prefix, sizeof(ctx->nonce_prefix));
		bytes_put_be64(nonce + sizeof(ctx->nonce_prefix), counter);
	}
	key = p->tx;
	rk = round_key_find(p, round_id);
	if (rk != NULL) {
		key = rk->tx;
		flags = SEAL_FLAG_ROUND;
	}
	header_write(frame, type, flags, ctx->self_pk, peer_pk, round_id, counter, nonce);
	body = len - SEAL_OVERHEAD;
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
	        frame + SEAL_HEADER_BYTES, frame + len - SEAL_TAG_BYTES, NULL,
	        frame + SEAL_HEADER_BYTES, body, frame, SEAL_HEADER_BYTES, NULL, nonce, key);
	ctx->stats.sealed++;
	return 0;
}

int seal_frame(struct seal_ctx *ctx, uint8_t *frame, size_t len, const uint8_t peer[SEAL_KEY_BYTES],
               uint8_t type, uint64_t round_id)
{
	return frame_seal(ctx, frame, len, peer, type, round_id, NULL);
}

int seal_frame_kat(struct seal_ctx *ctx, uint8_t *frame, size_t len,
                   const uint8_t peer[SEAL_KEY_BYTES], uint8_t type, uint64_t round_id,
                   const uint8_t nonce[SEAL_NONCE_BYTES])
{
	return frame_seal(ctx, frame, len, peer, type, round_id, nonce);
}

int seal_open(struct seal_ctx *ctx, struct seal_header *hdr, uint8_t *frame, size_t len)
{
	struct seal_peer *p;
	const uint8_t *key;
	int rc;

	if (len > ctx->max_frame) {
		ctx->stats.oversized++;
		return SEAL_EOVERSIZE;
	}
	rc = seal_header_parse(hdr, frame, len);
	if (rc == SEAL_EVERSION) {
		ctx->stats.bad_version++;
		return rc;
	}
	if (rc != 0) {
		ctx->stats.malformed++;
		return rc;
	}
	if (memcmp(hdr->recipient, ctx->self_pk, SEAL_KEY_BYTES) != 0) {
		ctx->stats.misdirected++;
		return SEAL_EMISDIRECTED;
	}
	p = peer_find(ctx, hdr->sender);
	if (p == NULL) {
		ctx->stats.unknown_sender++;
		return SEAL_EUNKNOWN;
	}
	key = p->rx;
	if (hdr->flags & SEAL_FLAG_ROUND) {
		struct seal_round_key *rk = round_key_find(p, hdr->round_id);
		if (rk == NULL) {
			ctx->stats.no_round_key++;
			return SEAL_ENOROUNDKEY;
		}
		key = rk->rx;
	}
	/* Cheap refusal before the AEAD; the window moves only after it. */
	rc = replay_window_check(&p->win, hdr->counter);
	if (rc == REPLAY_EREPLAYED) {
		ctx->stats.replayed++;
		return SEAL_EREPLAYED;
	}
	if (rc != 0) {
		ctx->stats.too_old++;
		return SEAL_ETOOOLD;
	}
	if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
	            frame + SEAL_HEADER_BYTES, NULL, frame + SEAL_HEADER_BYTES, len - SEAL_OVERHEAD,
	            frame + len - SEAL_TAG_BYTES, frame, SEAL_HEADER_BYTES, hdr->nonce, key) != 0) {
		ctx->stats.forged++;
		return SEAL_EFORGED;
	}
	replay_window_update(&p->win, hdr->counter);
	ctx->stats.opened++;
	if (ctx->rx_sync)
		(void)state_save(ctx, ctx->tx_reserved); /* failures are counted */
	return 0;
}

/* --- ephemeral keys --------------------------------------------------------- */

void seal_eph_generate(struct seal_eph *kp)
{
	SOTTO_ASSERT(sodium_init() >= 0);
	crypto_box_keypair(kp->pk, kp->sk); /* X25519 */
}

#define EPH_MSG_BYTES (sizeof(SIG_EPH) - 1 + 8 + 4 + 1 + 3 * SEAL_KEY_BYTES + SEAL_COMMIT_BYTES)

static size_t put_round(uint8_t *m, const char *label, size_t label_len, uint64_t round_id,
                        uint32_t attempt)
{
	memcpy(m, label, label_len);
	bytes_put_be64(m + label_len, round_id);
	for (int i = 0; i < 4; i++)
		m[label_len + 8 + (size_t)i] = (uint8_t)(attempt >> (24 - 8 * i));
	return label_len + 12;
}

static void eph_message(uint8_t m[EPH_MSG_BYTES], uint64_t round_id, uint32_t attempt,
                        const uint8_t *signer, uint8_t flags, const uint8_t *mask_pk,
                        const uint8_t *share_pk, const uint8_t *commit)
{
	size_t o = put_round(m, SIG_EPH, sizeof(SIG_EPH) - 1, round_id, attempt);

	memcpy(m + o, signer, SEAL_KEY_BYTES);
	m[o + 32] = flags;
	memcpy(m + o + 33, mask_pk, SEAL_KEY_BYTES);
	memcpy(m + o + 65, share_pk, SEAL_KEY_BYTES);
	memcpy(m + o + 97, commit, SEAL_COMMIT_BYTES);
}

void seal_eph_sign(uint8_t sig[SEAL_SIG_BYTES], const struct identity *id, uint64_t round_id,
                   uint32_t attempt, uint8_t flags, const uint8_t mask_pk[SEAL_KEY_BYTES],
                   const uint8_t share_pk[SEAL_KEY_BYTES],
                   const uint8_t seed_commit[SEAL_COMMIT_BYTES])
{
	uint8_t m[EPH_MSG_BYTES];

	eph_message(m, round_id, attempt, id->sign_pk, flags, mask_pk, share_pk, seed_commit);
	crypto_sign_ed25519_detached(sig, NULL, m, sizeof(m), id->sign_sk);
}

bool seal_eph_verify(const uint8_t sig[SEAL_SIG_BYTES], const uint8_t signer[SEAL_KEY_BYTES],
                     uint64_t round_id, uint32_t attempt, uint8_t flags,
                     const uint8_t mask_pk[SEAL_KEY_BYTES], const uint8_t share_pk[SEAL_KEY_BYTES],
                     const uint8_t seed_commit[SEAL_COMMIT_BYTES])
{
	uint8_t m[EPH_MSG_BYTES];

	eph_message(m, round_id, attempt, signer, flags, mask_pk, share_pk, seed_commit);
	return crypto_sign_ed25519_verify_detached(sig, m, sizeof(m), signer) == 0;
}

#define SPLIT_MSG_BYTES (sizeof(SIG_SPLIT) - 1 + 8 + 4 + SEAL_KEY_BYTES + SEAL_DIGEST_BYTES + 8)

static void split_message(uint8_t m[SPLIT_MSG_BYTES], uint64_t round_id, uint32_t attempt,
                          const uint8_t *signer, const uint8_t *transcript, uint32_t alive,
                          uint32_t dropped)
{
	size_t o = put_round(m, SIG_SPLIT, sizeof(SIG_SPLIT) - 1, round_id, attempt);

	memcpy(m + o, signer, SEAL_KEY_BYTES);
	memcpy(m + o + SEAL_KEY_BYTES, transcript, SEAL_DIGEST_BYTES);
	o += SEAL_KEY_BYTES + SEAL_DIGEST_BYTES;
	for (int i = 0; i < 4; i++) {
		m[o + (size_t)i] = (uint8_t)(alive >> (24 - 8 * i));
		m[o + 4 + (size_t)i] = (uint8_t)(dropped >> (24 - 8 * i));
	}
}

void seal_split_sign(uint8_t sig[SEAL_SIG_BYTES], const struct identity *id, uint64_t round_id,
                     uint32_t attempt, const uint8_t transcript[SEAL_DIGEST_BYTES], uint32_t alive,
                     uint32_t dropped)
{
	uint8_t m[SPLIT_MSG_BYTES];

	split_message(m, round_id, attempt, id->sign_pk, transcript, alive, dropped);
	crypto_sign_ed25519_detached(sig, NULL, m, sizeof(m), id->sign_sk);
}

bool seal_split_verify(const uint8_t sig[SEAL_SIG_BYTES], const uint8_t signer[SEAL_KEY_BYTES],
                       uint64_t round_id, uint32_t attempt,
                       const uint8_t transcript[SEAL_DIGEST_BYTES], uint32_t alive,
                       uint32_t dropped)
{
	uint8_t m[SPLIT_MSG_BYTES];

	split_message(m, round_id, attempt, signer, transcript, alive, dropped);
	return crypto_sign_ed25519_verify_detached(sig, m, sizeof(m), signer) == 0;
}

int seal_round_set(struct seal_ctx *ctx, const uint8_t peer[SEAL_KEY_BYTES], uint64_t round_id,
                   const struct seal_eph *mine, const uint8_t peer_eph_pk[SEAL_KEY_BYTES])
{
	crypto_generichash_state st;
	struct seal_round_key *rk;
	struct seal_peer *p;
	uint8_t ikm[64], rid[8];
	int dir;

	if (round_id == 0)
		return -EINVAL;
	p = peer_find(ctx, peer);
	if (p == NULL)
		return SEAL_EUNKNOWN;
	rk = round_key_find(p, round_id);
	if (rk == NULL) { /* an empty slot, else the oldest one */
		rk = &p->rk[0];
		for (size_t i = 1; i < SEAL_ROUND_SLOTS; i++) {
			if (rk->round_id == 0)
				break;
			if (p->rk[i].round_id == 0 || p->rk[i].age < rk->age)
				rk = &p->rk[i];
		}
	}
	memcpy(ikm, p->ss, 32);
	if (crypto_scalarmult(ikm + 32, mine->sk, peer_eph_pk) != 0) {
		sodium_memzero(ikm, sizeof(ikm));
		return -EINVAL;
	}
	bytes_put_be64(rid, round_id);
	for (dir = 0; dir < 2; dir++) {
		/* dir 0: self -> peer (tx); dir 1: peer -> self (rx). */
		const uint8_t *from = dir == 0 ? ctx->self_pk : peer;
		const uint8_t *to = dir == 0 ? peer : ctx->self_pk;
		const uint8_t *efrom = dir == 0 ? mine->pk : peer_eph_pk;
		const uint8_t *eto = dir == 0 ? peer_eph_pk : mine->pk;
		crypto_generichash_init(&st, ikm, sizeof(ikm), 32);
		crypto_generichash_update(&st, (const uint8_t *)KDF_ROUND, strlen(KDF_ROUND));
		crypto_generichash_update(&st, rid, 8);
		crypto_generichash_update(&st, from, SEAL_KEY_BYTES);
		crypto_generichash_update(&st, to, SEAL_KEY_BYTES);
		crypto_generichash_update(&st, efrom, SEAL_KEY_BYTES);
		crypto_generichash_update(&st, eto, SEAL_KEY_BYTES);
		crypto_generichash_final(&st, dir == 0 ? rk->tx : rk->rx, 32);
	}
	rk->round_id = round_id;
	rk->age = ++ctx->round_key_age;
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(ikm, sizeof(ikm));
	return 0;
}

void seal_round_clear(struct seal_ctx *ctx, uint64_t round_id)
{
	for (size_t i = 0; i < ctx->n_peers; i++) {
		for (size_t j = 0; j < SEAL_ROUND_SLOTS; j++) {
			struct seal_round_key *rk = &ctx->peers[i].rk[j];
			if (rk->round_id != 0 && (round_id == 0 || rk->round_id == round_id))
				sodium_memzero(rk, sizeof(*rk));
		}
	}
}

/* --- state and counters ----------------------------------------------------- */

int seal_state_save(struct seal_ctx *ctx)
{
	return state_save(ctx, ctx->tx_reserved);
}

void seal_stats_get(const struct seal_ctx *ctx, struct seal_stats *out)
{
	*out = ctx->stats;
}
