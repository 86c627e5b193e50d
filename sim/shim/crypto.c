/*
 * crypto.c: memoised public-key operations for the simulator.
 *
 * X25519 and Ed25519 verification are pure functions, and in a simulation
 * the same ones are computed many times over: every member verifies every
 * other member's signature, and both ends of a pair compute the same
 * Diffie-Hellman value X25519(a, B) = X25519(b, A). The simulator binary
 * defines these libsodium symbols itself, computes each distinct value once
 * with the real libsodium (found with dlsym(RTLD_NEXT)) and remembers it in
 * a bounded direct-mapped table, keyed by the whole input (or its BLAKE2b
 * hash). Results are bit for bit those of libsodium; only wall time
 * changes. The simulated CPU cost of each call (sim.c's COST_ASYM) is
 * charged as before. The daemon never links this file.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS (1u << 16)

typedef int (*mult_fn)(unsigned char *, const unsigned char *, const unsigned char *);
typedef int (*base_fn)(unsigned char *, const unsigned char *);
typedef int (*keypair_fn)(unsigned char *, unsigned char *);
typedef int (*verify_fn)(const unsigned char *, const unsigned char *, unsigned long long,
                         const unsigned char *);

static mult_fn real_mult;
static base_fn real_base;
static keypair_fn real_keypair;
static verify_fn real_verify;

struct pub_slot { /* secret key -> its public key (hash of the secret) */
	uint8_t h[32], pk[32];
	bool used;
};
struct dh_slot { /* the unordered pair of public keys (hash) -> the shared point */
	uint8_t h[32], q[32];
	int rc;
	bool used;
};
struct ver_slot { /* hash of (pk, sig, message) -> verified? */
	uint8_t h[32];
	int rc;
	bool used;
};

static struct pub_slot *pubs;
static struct dh_slot *dhs;
static struct ver_slot *vers;

static void init(void)
{
	if (real_mult != NULL)
		return;
	real_mult = (mult_fn)dlsym(RTLD_NEXT, "crypto_scalarmult");
	real_base = (base_fn)dlsym(RTLD_NEXT, "crypto_scalarmult_base");
	real_keypair = (keypair_fn)dlsym(RTLD_NEXT, "crypto_box_keypair");
	real_verify = (verify_fn)dlsym(RTLD_NEXT, "crypto_sign_ed25519_verify_detached");
	pubs = calloc(SLOTS, sizeof(*pubs));
	dhs = calloc(SLOTS, sizeof(*dhs));
	vers = calloc(SLOTS, sizeof(*vers));
	if (real_mult == NULL || real_base == NULL || real_keypair == NULL || real_verify == NULL ||
	    pubs == NULL || dhs == NULL || vers == NULL)
		abort();
}

static uint32_t slot_of(const uint8_t h[32])
{
	uint32_t s;

	memcpy(&s, h, sizeof(s));
	return s & (SLOTS - 1);
}

static void hash2(uint8_t h[32], const void *a, size_t la, const void *b, size_t lb)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, a, la);
	crypto_generichash_update(&st, b, lb);
	crypto_generichash_final(&st, h, 32);
}

static void pub_remember(const uint8_t *sk, const uint8_t *pk)
{
	uint8_t h[32];
	struct pub_slot *e;

	crypto_generichash(h, 32, sk, 32, NULL, 0);
	e = &pubs[slot_of(h)];
	memcpy(e->h, h, 32);
	memcpy(e->pk, pk, 32);
	e->used = true;
}

static const uint8_t *pub_of(const uint8_t *sk)
{
	uint8_t h[32];
	struct pub_slot *e;

	crypto_generichash(h, 32, sk, 32, NULL, 0);
	e = &pubs[slot_of(h)];
	return e->used && memcmp(e->h, h, 32) == 0 ? e->pk : NULL;
}

int crypto_box_keypair(unsigned char *pk, unsigned char *sk)
{
	int rc;

	init();
	rc = real_keypair(pk, sk);
	if (rc == 0)
		pub_remember(sk, pk);
	return rc;
}

int crypto_scalarmult_base(unsigned char *q, const unsigned char *n)
{
	int rc;

	init();
	rc = real_base(q, n);
	if (rc == 0)
		pub_remember(n, q);
	return rc;
}

int crypto_scalarmult(unsigned char *q, const unsigned char *n, const unsigned char *p)
{
	const uint8_t *mine;
	uint8_t h[32];
	struct dh_slot *e;

	init();
	mine = pub_of(n);
	if (mine == NULL)
		return real_mult(q, n, p); /* a key this process never saw made: no pair */
	if (memcmp(mine, p, 32) < 0)
		hash2(h, mine, 32, p, 32);
	else
		hash2(h, p, 32, mine, 32);
	e = &dhs[slot_of(h)];
	if (!e->used || memcmp(e->h, h, 32) != 0) {
		e->rc = real_mult(e->q, n, p);
		memcpy(e->h, h, 32);
		e->used = true;
	}
	memcpy(q, e->q, 32);
	return e->rc;
}

int crypto_sign_ed25519_verify_detached(const unsigned char *sig, const unsigned char *m,
                                        unsigned long long mlen, const unsigned char *pk)
{
	crypto_generichash_state st;
	uint8_t h[32];
	struct ver_slot *e;

	init();
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, pk, 32);
	crypto_generichash_update(&st, sig, 64);
	crypto_generichash_update(&st, m, mlen);
	crypto_generichash_final(&st, h, 32);
	e = &vers[slot_of(h)];
	if (!e->used || memcmp(e->h, h, 32) != 0) {
		e->rc = real_verify(sig, m, mlen, pk);
		memcpy(e->h, h, 32);
		e->used = true;
	}
	return e->rc;
}
