/*
 * crypto_seal_test.c: frame sealing. Known answers computed independently
 * with PyNaCl (static key, round key, ephemeral signature); tampering of
 * every header field, the nonce, the ciphertext and the tag, each refused
 * with its own reason and counted, and none of them moving the replay
 * window; replays, reordering, too-old frames; unknown senders; truncated
 * and oversized frames; wrong versions; counters and receive floors that
 * survive a restart (no counter is ever sealed twice); round keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "crypto/identity.h"
#include "crypto/replay.h"
#include "crypto/seal.h"
#include "util/err.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void hex(uint8_t *out, const char *h, size_t n)
{
	size_t len = 0;
	assert_int_equal(sodium_hex2bin(out, n, h, strlen(h), NULL, &len, NULL), 0);
	assert_int_equal(len, n);
}

struct pair {
	struct identity *a, *b;
	struct seal_ctx *ca, *cb;
};

static void pair_init(struct pair *p, const struct seal_options *oa, const struct seal_options *ob)
{
	uint8_t seed[32];
	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)i;
	p->a = identity_from_seed(seed);
	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)(32 + i);
	p->b = identity_from_seed(seed);
	assert_non_null(p->a);
	assert_non_null(p->b);
	assert_int_equal(seal_ctx_alloc(&p->ca, p->a, oa), 0);
	assert_int_equal(seal_ctx_alloc(&p->cb, p->b, ob), 0);
	assert_int_equal(seal_peer_add(p->ca, p->b->sign_pk), 0);
	assert_int_equal(seal_peer_add(p->cb, p->a->sign_pk), 0);
}

static void pair_fini(struct pair *p)
{
	seal_ctx_free(p->ca);
	seal_ctx_free(p->cb);
	identity_free(p->a);
	identity_free(p->b);
}

/* A frame of SEAL_OVERHEAD + n bytes with a recognisable body. */
static uint8_t *frame_new(size_t n, uint8_t fillc, size_t *len)
{
	uint8_t *f = malloc(SEAL_OVERHEAD + n);
	assert_non_null(f);
	memset(f + SEAL_HEADER_BYTES, fillc, n);
	*len = SEAL_OVERHEAD + n;
	return f;
}

static const uint8_t kat_body[] = {0x96, 0x01, 0x0b, 0x05, 0x01, 0x07, 0xcd, 0x01, 0x00};

static void test_known_answer_static(void **state)
{
	struct pair p;
	struct seal_header h;
	uint8_t nonce[24], frame[SEAL_OVERHEAD + sizeof(kat_body)], want[sizeof(frame)];
	(void)state;
	pair_init(&p, NULL, NULL);
	for (int i = 0; i < 24; i++)
		nonce[i] = (uint8_t)(0x40 + i);
	hex(want,
	    "53544f010b00000003a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b829acba"
	    "e141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd70000000000000005000000000000"
	    "0001404142434445464748494a4b4c4d4e4f50515253545556573237934da5d593d38314c61653228b6be0"
	    "77e288083df46d1d",
	    sizeof(want));
	memcpy(frame + SEAL_HEADER_BYTES, kat_body, sizeof(kat_body));
	assert_int_equal(seal_frame_kat(p.ca, frame, sizeof(frame), p.b->sign_pk, 11, 5, nonce), 0);
	assert_memory_equal(frame, want, sizeof(want));
	assert_int_equal(seal_open(p.cb, &h, frame, sizeof(frame)), 0);
	assert_memory_equal(frame + SEAL_HEADER_BYTES, kat_body, sizeof(kat_body));
	assert_int_equal(h.type, 11);
	assert_int_equal(h.flags, 0);
	assert_true(h.round_id == 5 && h.counter == 1);
	assert_memory_equal(h.sender, p.a->sign_pk, 32);
	pair_fini(&p);
}

static void test_known_answer_round_and_signature(void **state)
{
	struct pair p;
	struct seal_header h;
	struct seal_eph ea, eb;
	uint8_t nonce[24], frame[SEAL_OVERHEAD + sizeof(kat_body)], tail[25], want_pk[32];
	uint8_t commit[32], sig[64], want_sig[64];
	(void)state;
	pair_init(&p, NULL, NULL);
	memset(ea.sk, 7, 32);
	memset(eb.sk, 9, 32);
	assert_int_equal(crypto_scalarmult_base(ea.pk, ea.sk), 0);
	assert_int_equal(crypto_scalarmult_base(eb.pk, eb.sk), 0);
	hex(want_pk, "13be4feaeaf204c7fd3358fc9c00721881d174278128227ec674f37f7fe97b6d", 32);
	assert_memory_equal(ea.pk, want_pk, 32);
	for (int i = 0; i < 24; i++)
		nonce[i] = (uint8_t)(0x40 + i);
	hex(tail, "be4d37a2c3aadc61b8665284fa3b3d26ea67bf74843979eacb", sizeof(tail));

	assert_int_equal(seal_round_set(p.ca, p.b->sign_pk, 5, &ea, eb.pk), 0);
	memcpy(frame + SEAL_HEADER_BYTES, kat_body, sizeof(kat_body));
	assert_int_equal(seal_frame_kat(p.ca, frame, sizeof(frame), p.b->sign_pk, 11, 5, nonce), 0);
	assert_int_equal(frame[5], SEAL_FLAG_ROUND);
	assert_memory_equal(frame + SEAL_HEADER_BYTES, tail, sizeof(tail));
	/* B has no round key yet: refused, counted, not opened. */
	assert_int_equal(seal_open(p.cb, &h, frame, sizeof(frame)), SEAL_ENOROUNDKEY);
	assert_memory_equal(frame + SEAL_HEADER_BYTES, tail, sizeof(tail));
	assert_int_equal(seal_round_set(p.cb, p.a->sign_pk, 5, &eb, ea.pk), 0);
	assert_int_equal(seal_open(p.cb, &h, frame, sizeof(frame)), 0);
	assert_int_equal(h.flags, SEAL_FLAG_ROUND);
	assert_memory_equal(frame + SEAL_HEADER_BYTES, kat_body, sizeof(kat_body));

	/* The ephemeral key signature, and each input it binds (known answers
	 * computed with PyNaCl from the layout in crypto/seal.h). */
	memset(commit, 0xcc, sizeof(commit));
	hex(want_sig,
	    "fcd0779c80ea3f4eba54651e5522c41fc1690ae87a8057cb705198262b61d95542b0e99f35ed94a1441c82"
	    "de7d09e004b71667c807abb34da88c5d0290051d01",
	    64);
	seal_eph_sign(sig, p.a, 5, 2, 1, ea.pk, eb.pk, commit);
	assert_memory_equal(sig, want_sig, 64);
	assert_true(seal_eph_verify(sig, p.a->sign_pk, 5, 2, 1, ea.pk, eb.pk, commit));
	assert_false(seal_eph_verify(sig, p.b->sign_pk, 5, 2, 1, ea.pk, eb.pk, commit));
	assert_false(seal_eph_verify(sig, p.a->sign_pk, 6, 2, 1, ea.pk, eb.pk, commit));
	assert_false(seal_eph_verify(sig, p.a->sign_pk, 5, 3, 1, ea.pk, eb.pk, commit));
	assert_false(seal_eph_verify(sig, p.a->sign_pk, 5, 2, 0, ea.pk, eb.pk, commit));
	assert_false(seal_eph_verify(sig, p.a->sign_pk, 5, 2, 1, eb.pk, ea.pk, commit));
	commit[31] ^= 1;
	assert_false(seal_eph_verify(sig, p.a->sign_pk, 5, 2, 1, ea.pk, eb.pk, commit));
	commit[31] ^= 1;
	sig[0] ^= 1;
	assert_false(seal_eph_verify(sig, p.a->sign_pk, 5, 2, 1, ea.pk, eb.pk, commit));

	/* The split signature: transcript 100..131, alive {0,1,3}, dropped {2}. */
	for (int i = 0; i < 32; i++)
		commit[i] = (uint8_t)(100 + i);
	hex(want_sig,
	    "0201a27a312cb2663fc1fd9316c1abc756e2dd3505e2c523278c4432829d6ec92af0182e00a1cf8567e208"
	    "df68296c3ea3d8bfa80c24652c90d1fed24a964809",
	    64);
	seal_split_sign(sig, p.a, 5, 2, commit, 0xb, 0x4);
	assert_memory_equal(sig, want_sig, 64);
	assert_true(seal_split_verify(sig, p.a->sign_pk, 5, 2, commit, 0xb, 0x4));
	assert_false(seal_split_verify(sig, p.b->sign_pk, 5, 2, commit, 0xb, 0x4));
	assert_false(seal_split_verify(sig, p.a->sign_pk, 4, 2, commit, 0xb, 0x4));
	assert_false(seal_split_verify(sig, p.a->sign_pk, 5, 1, commit, 0xb, 0x4));
	assert_false(seal_split_verify(sig, p.a->sign_pk, 5, 2, commit, 0xf, 0x0));
	assert_false(seal_split_verify(sig, p.a->sign_pk, 5, 2, commit, 0xb, 0x0));
	commit[0] ^= 1;
	assert_false(seal_split_verify(sig, p.a->sign_pk, 5, 2, commit, 0xb, 0x4));
	commit[0] ^= 1;
	sig[63] ^= 0x10;
	assert_false(seal_split_verify(sig, p.a->sign_pk, 5, 2, commit, 0xb, 0x4));
	pair_fini(&p);
}

/* One tamper case: which byte to flip, and the refusal it must get. */
struct tamper_case {
	const char *what;
	size_t off; /* from the start; SIZE_MAX - k: k bytes from the end */
	uint8_t mask;
	int want;
};

static void test_tamper(void **state)
{
	const struct tamper_case cases[] = {
	        {"magic", 0, 0x01, SEAL_EMALFORMED},
	        {"version", 3, 0x02, SEAL_EVERSION},
	        {"type", 4, 0x01, SEAL_EFORGED},
	        {"round flag", 5, SEAL_FLAG_ROUND, SEAL_ENOROUNDKEY},
	        {"unknown flag", 5, 0x80, SEAL_EMALFORMED},
	        {"reserved", 7, 0x01, SEAL_EMALFORMED},
	        {"sender", 8, 0x01, SEAL_EUNKNOWN},
	        {"recipient", 40 + 31, 0x40, SEAL_EMISDIRECTED},
	        {"round id", 72, 0x80, SEAL_EFORGED},
	        {"counter", 80 + 7, 0x02, SEAL_EFORGED},
	        {"nonce", 88, 0x01, SEAL_EFORGED},
	        {"nonce end", 111, 0x80, SEAL_EFORGED},
	        {"ciphertext", 112, 0x01, SEAL_EFORGED},
	        {"ciphertext end", SIZE_MAX - 17, 0x10, SEAL_EFORGED},
	        {"tag", SIZE_MAX - 16, 0x01, SEAL_EFORGED},
	        {"tag end", SIZE_MAX - 1, 0x80, SEAL_EFORGED},
	};
	struct pair p;
	struct seal_header h;
	struct seal_stats st;
	size_t len;
	uint8_t *f, *copy;
	(void)state;
	pair_init(&p, NULL, NULL);
	f = frame_new(300, 0x5a, &len);
	copy = malloc(len);
	assert_non_null(copy);
	assert_int_equal(seal_frame(p.ca, f, len, p.b->sign_pk, 6, 99), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t off = cases[i].off >= SIZE_MAX - 64 ? len - (SIZE_MAX - cases[i].off)
		                                           : cases[i].off;
		memcpy(copy, f, len);
		copy[off] ^= cases[i].mask;
		print_message("tamper %s\n", cases[i].what);
		assert_int_equal(seal_open(p.cb, &h, copy, len), cases[i].want);
	}
	/* A different pinned sender: its key is known, the tag is not its. */
	{
		uint8_t seed[32];
		struct identity *c;
		memset(seed, 0x77, 32);
		c = identity_from_seed(seed);
		assert_non_null(c);
		assert_int_equal(seal_peer_add(p.cb, c->sign_pk), 0);
		memcpy(copy, f, len);
		memcpy(copy + 8, c->sign_pk, 32);
		assert_int_equal(seal_open(p.cb, &h, copy, len), SEAL_EFORGED);
		identity_free(c);
	}
	/* A forged frame with a huge counter must not have moved the window. */
	memcpy(copy, f, len);
	memset(copy + 80, 0xff, 8);
	assert_int_equal(seal_open(p.cb, &h, copy, len), SEAL_EFORGED);
	assert_int_equal(seal_open(p.cb, &h, f, len), 0);
	for (size_t i = 0; i < 300; i++)
		assert_int_equal(f[SEAL_HEADER_BYTES + i], 0x5a);
	seal_stats_get(p.cb, &st);
	assert_true(st.opened == 1);
	assert_true(st.malformed == 3 && st.bad_version == 1 && st.no_round_key == 1);
	assert_true(st.unknown_sender == 1 && st.misdirected == 1);
	assert_true(st.forged == 11);
	free(copy);
	free(f);
	pair_fini(&p);
}

static void test_replay_reorder_too_old(void **state)
{
	enum { N = 1200 };
	struct pair p;
	struct seal_header h;
	struct seal_stats st;
	uint8_t *frames[N], *copy;
	size_t len;
	const int order[] = {3, 0, 1, 4, 2};
	(void)state;
	pair_init(&p, NULL, NULL);
	for (int i = 0; i < N; i++) {
		frames[i] = frame_new(16, (uint8_t)i, &len);
		assert_int_equal(seal_frame(p.ca, frames[i], len, p.b->sign_pk, 11, 0), 0);
	}
	copy = malloc(len);
	assert_non_null(copy);
	/* Reordered: all accepted once, then each is a replay. */
	for (size_t i = 0; i < 5; i++) {
		memcpy(copy, frames[order[i]], len);
		assert_int_equal(seal_open(p.cb, &h, copy, len), 0);
		assert_int_equal(copy[SEAL_HEADER_BYTES], (uint8_t)order[i]);
	}
	for (size_t i = 0; i < 5; i++) {
		memcpy(copy, frames[i], len);
		assert_int_equal(seal_open(p.cb, &h, copy, len), SEAL_EREPLAYED);
	}
	/* Skip ahead: the last frame opens, frame 5 is now below the window. */
	memcpy(copy, frames[N - 1], len);
	assert_int_equal(seal_open(p.cb, &h, copy, len), 0);
	memcpy(copy, frames[5], len);
	assert_int_equal(seal_open(p.cb, &h, copy, len), SEAL_ETOOOLD);
	/* ...while one inside the window still opens, once. */
	memcpy(copy, frames[N - 100], len);
	assert_int_equal(seal_open(p.cb, &h, copy, len), 0);
	memcpy(copy, frames[N - 100], len);
	assert_int_equal(seal_open(p.cb, &h, copy, len), SEAL_EREPLAYED);
	seal_stats_get(p.cb, &st);
	assert_true(st.opened == 7 && st.replayed == 6 && st.too_old == 1);
	for (int i = 0; i < N; i++)
		free(frames[i]);
	free(copy);
	pair_fini(&p);
}

static void test_unknown_sender_and_peers(void **state)
{
	struct pair p;
	struct seal_header h;
	struct seal_stats st;
	struct identity *c;
	struct seal_ctx *cc;
	uint8_t seed[32], bad[32];
	size_t len;
	uint8_t *f;
	(void)state;
	pair_init(&p, NULL, NULL);
	memset(seed, 0x33, 32);
	c = identity_from_seed(seed);
	assert_non_null(c);
	assert_int_equal(seal_ctx_alloc(&cc, c, NULL), 0);
	assert_int_equal(seal_peer_add(cc, p.b->sign_pk), 0);
	f = frame_new(64, 1, &len);
	/* C pins B, but B does not pin C. */
	assert_int_equal(seal_frame(cc, f, len, p.b->sign_pk, 11, 0), 0);
	assert_int_equal(seal_open(p.cb, &h, f, len), SEAL_EUNKNOWN);
	seal_stats_get(p.cb, &st);
	assert_true(st.unknown_sender == 1 && st.opened == 0);
	/* Sealing to someone not pinned is refused, no counter used. */
	assert_int_equal(seal_frame(p.ca, f, len, c->sign_pk, 11, 0), SEAL_EUNKNOWN);
	/* peer_add: own key, duplicate, not a point, capacity. */
	assert_int_equal(seal_peer_add(p.ca, p.a->sign_pk), -EINVAL);
	assert_int_equal(seal_peer_add(p.ca, p.b->sign_pk), -EEXIST);
	memset(bad, 0, 32);
	assert_int_equal(seal_peer_add(p.ca, bad), -EINVAL);
	assert_true(seal_peer_known(p.ca, p.b->sign_pk));
	assert_false(seal_peer_known(p.ca, c->sign_pk));
	{
		struct seal_options o = {.max_peers = 1};
		struct seal_ctx *small;
		assert_int_equal(seal_ctx_alloc(&small, p.a, &o), 0);
		assert_int_equal(seal_peer_add(small, p.b->sign_pk), 0);
		assert_int_equal(seal_peer_add(small, c->sign_pk), -ENOSPC);
		seal_ctx_free(small);
	}
	seal_ctx_free(cc);
	seal_ctx_free(NULL);
	identity_free(c);
	free(f);
	pair_fini(&p);
}

/*
 * A reload unpins a peer: its frames are refused as unknown at once, its
 * keys are gone, and when it is pinned again (or after a restart, from the
 * saved floor) its old frames are still replays.
 */
static void test_peer_remove(void **state)
{
	char dir[] = "/tmp/sotto-seal-XXXXXX", pb[64];
	struct seal_options ob = {.state_path = pb};
	struct identity *c;
	struct pair p;
	struct seal_header h;
	struct seal_eph ea, eb;
	uint8_t seed[32], *f, *old, *copy;
	size_t len;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(pb, sizeof(pb), "%s/b.state", dir);
	pair_init(&p, NULL, &ob);
	memset(seed, 0x44, 32);
	c = identity_from_seed(seed);
	assert_non_null(c);
	assert_int_equal(seal_peer_add(p.cb, c->sign_pk), 0); /* another peer, moved on removal */
	seal_eph_generate(&ea);
	seal_eph_generate(&eb);
	assert_int_equal(seal_round_set(p.cb, p.a->sign_pk, 7, &eb, ea.pk), 0);
	old = frame_new(16, 2, &len);
	copy = malloc(len);
	assert_non_null(copy);
	assert_int_equal(seal_frame(p.ca, old, len, p.b->sign_pk, 11, 0), 0);
	memcpy(copy, old, len);
	assert_int_equal(seal_open(p.cb, &h, copy, len), 0);

	assert_int_equal(seal_peer_remove(p.cb, p.a->sign_pk), 0);
	assert_int_equal(seal_peer_remove(p.cb, p.a->sign_pk), -ENOENT);
	assert_false(seal_peer_known(p.cb, p.a->sign_pk));
	assert_true(seal_peer_known(p.cb, c->sign_pk));
	f = frame_new(16, 3, &len);
	assert_int_equal(seal_frame(p.ca, f, len, p.b->sign_pk, 11, 0), 0);
	memcpy(copy, f, len);
	assert_int_equal(seal_open(p.cb, &h, copy, len), SEAL_EUNKNOWN);
	assert_int_equal(seal_frame(p.cb, copy, len, p.a->sign_pk, 11, 0), SEAL_EUNKNOWN);

	/* Pinned again: the frame it sent before removal is a replay, a new one opens. */
	assert_int_equal(seal_peer_add(p.cb, p.a->sign_pk), 0);
	memcpy(copy, old, len);
	assert_int_equal(seal_open(p.cb, &h, copy, len), SEAL_EREPLAYED);
	/* Its round key went with it: a frame under round 7 does not open. */
	assert_int_equal(seal_round_set(p.ca, p.b->sign_pk, 7, &ea, eb.pk), 0);
	assert_int_equal(seal_frame(p.ca, f, len, p.b->sign_pk, 11, 7), 0);
	memcpy(copy, f, len);
	assert_int_not_equal(seal_open(p.cb, &h, copy, len), 0);
	assert_int_equal(seal_frame(p.ca, f, len, p.b->sign_pk, 11, 0), 0);
	memcpy(copy, f, len);
	assert_int_equal(seal_open(p.cb, &h, copy, len), 0);

	/* Removed, saved, restarted without it, pinned again: still a replay. */
	assert_int_equal(seal_peer_remove(p.cb, p.a->sign_pk), 0);
	assert_int_equal(seal_state_save(p.cb), 0);
	seal_ctx_free(p.cb);
	assert_int_equal(seal_ctx_alloc(&p.cb, p.b, &ob), 0);
	assert_int_equal(seal_peer_add(p.cb, p.a->sign_pk), 0);
	memcpy(copy, f, len);
	assert_int_equal(seal_open(p.cb, &h, copy, len), SEAL_EREPLAYED);

	sodium_memzero(&ea, sizeof(ea));
	sodium_memzero(&eb, sizeof(eb));
	identity_free(c);
	free(old);
	free(f);
	free(copy);
	pair_fini(&p);
	unlink(pb);
	rmdir(dir);
}

static void test_truncated_oversized_version(void **state)
{
	struct seal_options ob = {.max_frame = SEAL_OVERHEAD + 1000};
	struct pair p;
	struct seal_header h;
	struct seal_stats st;
	size_t len;
	uint8_t *f, *big;
	(void)state;
	pair_init(&p, NULL, &ob);
	f = frame_new(100, 2, &len);
	assert_int_equal(seal_frame(p.ca, f, len, p.b->sign_pk, 11, 0), 0);
	/* Every length below the overhead is malformed; a cut frame is forged. */
	for (size_t cut = 0; cut < SEAL_OVERHEAD; cut++)
		assert_int_equal(seal_open(p.cb, &h, f, cut), SEAL_EMALFORMED);
	assert_int_equal(seal_open(p.cb, &h, f, len - 1), SEAL_EFORGED);
	/* Larger than B's limit: refused before anything else. */
	big = frame_new(1001, 3, &len);
	assert_int_equal(seal_frame(p.ca, big, len, p.b->sign_pk, 11, 0), 0);
	assert_int_equal(seal_open(p.cb, &h, big, len), SEAL_EOVERSIZE);
	/* Sealing beyond the own limit or below the overhead is refused. */
	assert_int_equal(seal_frame(p.cb, big, len, p.a->sign_pk, 11, 0), -EINVAL);
	assert_int_equal(seal_frame(p.ca, f, SEAL_OVERHEAD - 1, p.b->sign_pk, 11, 0), -EINVAL);
	/* An empty body is fine. */
	assert_int_equal(seal_frame(p.ca, f, SEAL_OVERHEAD, p.b->sign_pk, 11, 0), 0);
	assert_int_equal(seal_open(p.cb, &h, f, SEAL_OVERHEAD), 0);
	/* Version 2 and version 0 frames. */
	assert_int_equal(seal_frame(p.ca, f, 200, p.b->sign_pk, 11, 0), 0);
	f[3] = 2;
	assert_int_equal(seal_open(p.cb, &h, f, 200), SEAL_EVERSION);
	f[3] = 0;
	assert_int_equal(seal_open(p.cb, &h, f, 200), SEAL_EVERSION);
	assert_int_equal(seal_header_parse(&h, f, 200), SEAL_EVERSION);
	seal_stats_get(p.cb, &st);
	assert_true(st.malformed == SEAL_OVERHEAD && st.oversized == 1 && st.bad_version == 2);
	assert_string_equal(err_str(SEAL_EVERSION), "unsupported frame version");
	free(f);
	free(big);
	pair_fini(&p);
}

/*
 * Restarts. A is "killed" (freed without saving) after using counters
 * across several reservations; the new A never reuses one, B takes its new
 * frames. B saves and restarts: frames it had accepted are refused.
 */
static void test_restart(void **state)
{
	char dir[] = "/tmp/sotto-seal-XXXXXX", pa[64], pb[64];
	struct seal_options oa = {.state_path = pa, .tx_reserve = 10};
	struct seal_options ob = {.state_path = pb};
	struct pair p;
	struct seal_header h;
	uint8_t *old[25], *f, *copy;
	uint64_t last = 0;
	size_t len;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(pa, sizeof(pa), "%s/a.state", dir);
	snprintf(pb, sizeof(pb), "%s/b.state", dir);
	pair_init(&p, &oa, &ob);
	copy = malloc(SEAL_OVERHEAD + 8);
	assert_non_null(copy);
	for (int i = 0; i < 25; i++) {
		old[i] = frame_new(8, (uint8_t)i, &len);
		assert_int_equal(seal_frame(p.ca, old[i], len, p.b->sign_pk, 11, 0), 0);
		memcpy(copy, old[i], len);
		assert_int_equal(seal_open(p.cb, &h, copy, len), 0);
		assert_true(h.counter > last);
		last = h.counter;
	}
	/* kill -9 of A: no save. The reservation on disk covers every counter used. */
	seal_ctx_free(p.ca);
	assert_int_equal(seal_ctx_alloc(&p.ca, p.a, &oa), 0);
	assert_int_equal(seal_peer_add(p.ca, p.b->sign_pk), 0);
	f = frame_new(8, 0xee, &len);
	assert_int_equal(seal_frame(p.ca, f, len, p.b->sign_pk, 11, 0), 0);
	memcpy(copy, f, len);
	assert_int_equal(seal_open(p.cb, &h, copy, len), 0);
	assert_true(h.counter > last);
	last = h.counter;
	/* B saves and restarts: everything it accepted stays refused. */
	assert_int_equal(seal_state_save(p.cb), 0);
	seal_ctx_free(p.cb);
	assert_int_equal(seal_ctx_alloc(&p.cb, p.b, &ob), 0);
	assert_int_equal(seal_peer_add(p.cb, p.a->sign_pk), 0);
	for (int i = 0; i < 25; i++) {
		int rc;
		memcpy(copy, old[i], len);
		rc = seal_open(p.cb, &h, copy, len);
		assert_true(rc == SEAL_EREPLAYED || rc == SEAL_ETOOOLD);
	}
	memcpy(copy, f, len);
	assert_int_equal(seal_open(p.cb, &h, copy, len), SEAL_EREPLAYED);
	assert_int_equal(seal_frame(p.ca, f, len, p.b->sign_pk, 11, 0), 0);
	assert_int_equal(seal_open(p.cb, &h, f, len), 0);
	assert_true(h.counter > last);
	/* A damaged state file is an error, not a silent reset. */
	seal_ctx_free(p.cb);
	p.cb = NULL;
	{
		FILE *fp = fopen(pb, "r+b");
		int c;
		assert_non_null(fp);
		assert_int_equal(fseek(fp, 10, SEEK_SET), 0);
		c = fgetc(fp);
		assert_int_equal(fseek(fp, 10, SEEK_SET), 0);
		fputc(c ^ 1, fp);
		fclose(fp);
	}
	{
		struct seal_ctx *c2 = NULL;
		assert_int_equal(seal_ctx_alloc(&c2, p.b, &ob), REPLAY_ECORRUPT);
		assert_null(c2);
	}
	for (int i = 0; i < 25; i++)
		free(old[i]);
	free(f);
	free(copy);
	pair_fini(&p);
	unlink(pa);
	unlink(pb);
	rmdir(dir);
}

/* With rx_sync, B's floor is on disk after every frame: kill -9 of B loses nothing. */
static void test_rx_sync(void **state)
{
	char dir[] = "/tmp/sotto-seal-XXXXXX", pb[64];
	struct seal_options ob = {.state_path = pb, .rx_sync = true};
	struct pair p;
	struct seal_header h;
	struct seal_stats st;
	uint8_t *f, *copy;
	size_t len;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(pb, sizeof(pb), "%s/b.state", dir);
	pair_init(&p, NULL, &ob);
	f = frame_new(8, 1, &len);
	copy = malloc(len);
	assert_non_null(copy);
	assert_int_equal(seal_frame(p.ca, f, len, p.b->sign_pk, 11, 0), 0);
	memcpy(copy, f, len);
	assert_int_equal(seal_open(p.cb, &h, copy, len), 0);
	seal_stats_get(p.cb, &st);
	assert_true(st.state_saves == 2); /* the reservation at start, then the frame */
	seal_ctx_free(p.cb);              /* no explicit save */
	assert_int_equal(seal_ctx_alloc(&p.cb, p.b, &ob), 0);
	assert_int_equal(seal_peer_add(p.cb, p.a->sign_pk), 0);
	assert_int_equal(seal_open(p.cb, &h, f, len), SEAL_EREPLAYED);
	free(f);
	free(copy);
	pair_fini(&p);
	unlink(pb);
	rmdir(dir);
}

static void test_round_keys(void **state)
{
	struct pair p;
	struct seal_header h;
	struct seal_eph ea, eb, other;
	uint8_t *f, *copy;
	size_t len;
	(void)state;
	pair_init(&p, NULL, NULL);
	seal_eph_generate(&ea);
	seal_eph_generate(&eb);
	seal_eph_generate(&other);
	assert_int_equal(seal_round_set(p.ca, p.b->sign_pk, 0, &ea, eb.pk), -EINVAL);
	assert_int_equal(seal_round_set(p.ca, p.b->sign_pk, 42, &ea, eb.pk), 0);
	assert_int_equal(seal_round_set(p.cb, p.a->sign_pk, 42, &eb, ea.pk), 0);
	f = frame_new(50, 9, &len);
	copy = malloc(len);
	assert_non_null(copy);
	/* Round 42: round-sealed both ways. Round 0 and other rounds: static. */
	assert_int_equal(seal_frame(p.ca, f, len, p.b->sign_pk, 6, 42), 0);
	assert_int_equal(f[5], SEAL_FLAG_ROUND);
	memcpy(copy, f, len);
	assert_int_equal(seal_open(p.cb, &h, copy, len), 0);
	/* Clearing the round flag makes B try the static key: forged. */
	assert_int_equal(seal_frame(p.ca, f, len, p.b->sign_pk, 6, 42), 0);
	f[5] = 0;
	assert_int_equal(seal_open(p.cb, &h, f, len), SEAL_EFORGED);
	assert_int_equal(seal_frame(p.cb, f, len, p.a->sign_pk, 6, 43), 0);
	assert_int_equal(f[5], 0);
	assert_int_equal(seal_open(p.ca, &h, f, len), 0);
	/* A mismatched ephemeral key on one side: forged. */
	assert_int_equal(seal_round_set(p.cb, p.a->sign_pk, 42, &eb, other.pk), 0);
	assert_int_equal(seal_frame(p.ca, f, len, p.b->sign_pk, 6, 42), 0);
	assert_int_equal(seal_open(p.cb, &h, f, len), SEAL_EFORGED);
	/* After the round, its keys are gone on both sides. */
	assert_int_equal(seal_frame(p.ca, f, len, p.b->sign_pk, 6, 42), 0);
	seal_round_clear(p.cb, 42);
	assert_int_equal(seal_open(p.cb, &h, f, len), SEAL_ENOROUNDKEY);
	seal_round_clear(p.ca, 0);
	assert_int_equal(seal_frame(p.ca, f, len, p.b->sign_pk, 6, 42), 0);
	assert_int_equal(f[5], 0);
	assert_int_equal(seal_open(p.cb, &h, f, len), 0);
	sodium_memzero(&ea, sizeof(ea));
	sodium_memzero(&eb, sizeof(eb));
	free(f);
	free(copy);
	pair_fini(&p);
}

/* Several rounds per peer: the last SEAL_ROUND_SLOTS stay usable, then the oldest goes. */
static void test_round_key_slots(void **state)
{
	struct pair p;
	struct seal_header h;
	struct seal_eph ea, eb;
	uint8_t *f;
	size_t len;
	(void)state;
	pair_init(&p, NULL, NULL);
	seal_eph_generate(&ea);
	seal_eph_generate(&eb);
	f = frame_new(20, 3, &len);
	for (uint64_t rid = 100; rid < 100 + SEAL_ROUND_SLOTS + 1; rid++) {
		assert_int_equal(seal_round_set(p.ca, p.b->sign_pk, rid, &ea, eb.pk), 0);
		assert_int_equal(seal_round_set(p.cb, p.a->sign_pk, rid, &eb, ea.pk), 0);
	}
	/* Round 100 was the oldest: its key was replaced on both sides. */
	assert_int_equal(seal_frame(p.ca, f, len, p.b->sign_pk, 6, 100), 0);
	assert_int_equal(f[5], 0);
	for (uint64_t rid = 101; rid < 100 + SEAL_ROUND_SLOTS + 1; rid++) {
		assert_int_equal(seal_frame(p.ca, f, len, p.b->sign_pk, 6, rid), 0);
		assert_int_equal(f[5], SEAL_FLAG_ROUND);
		assert_int_equal(seal_open(p.cb, &h, f, len), 0);
	}
	/* Clearing one round leaves the others. */
	seal_round_clear(p.cb, 102);
	assert_int_equal(seal_frame(p.ca, f, len, p.b->sign_pk, 6, 102), 0);
	assert_int_equal(seal_open(p.cb, &h, f, len), SEAL_ENOROUNDKEY);
	assert_int_equal(seal_frame(p.ca, f, len, p.b->sign_pk, 6, 103), 0);
	assert_int_equal(seal_open(p.cb, &h, f, len), 0);
	sodium_memzero(&ea, sizeof(ea));
	sodium_memzero(&eb, sizeof(eb));
	free(f);
	pair_fini(&p);
}

/* Nonces: a random prefix per context, then the counter; never repeated. */
static void test_nonces(void **state)
{
	struct pair p;
	struct seal_ctx *again;
	struct seal_header h1, h2, h3;
	uint8_t f1[SEAL_OVERHEAD], f2[SEAL_OVERHEAD], f3[SEAL_OVERHEAD];
	(void)state;
	pair_init(&p, NULL, NULL);
	assert_int_equal(seal_ctx_alloc(&again, p.a, NULL), 0);
	assert_int_equal(seal_peer_add(again, p.b->sign_pk), 0);
	assert_int_equal(seal_frame(p.ca, f1, sizeof(f1), p.b->sign_pk, 11, 0), 0);
	assert_int_equal(seal_frame(p.ca, f2, sizeof(f2), p.b->sign_pk, 11, 0), 0);
	assert_int_equal(seal_frame(again, f3, sizeof(f3), p.b->sign_pk, 11, 0), 0);
	assert_int_equal(seal_header_parse(&h1, f1, sizeof(f1)), 0);
	assert_int_equal(seal_header_parse(&h2, f2, sizeof(f2)), 0);
	assert_int_equal(seal_header_parse(&h3, f3, sizeof(f3)), 0);
	/* Same context: same prefix, the counter at the end. */
	assert_memory_equal(h1.nonce, h2.nonce, 16);
	assert_true(h1.counter == 1 && h2.counter == 2 && h1.nonce[23] == 1 && h2.nonce[23] == 2);
	/* A restarted context with the same counter: a different nonce. */
	assert_true(h3.counter == 1);
	assert_memory_not_equal(h1.nonce, h3.nonce, 16);
	seal_ctx_free(again);
	pair_fini(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_known_answer_static),
	        cmocka_unit_test(test_known_answer_round_and_signature),
	        cmocka_unit_test(test_tamper),
	        cmocka_unit_test(test_replay_reorder_too_old),
	        cmocka_unit_test(test_unknown_sender_and_peers),
	        cmocka_unit_test(test_peer_remove),
	        cmocka_unit_test(test_truncated_oversized_version),
	        cmocka_unit_test(test_restart),
	        cmocka_unit_test(test_rx_sync),
	        cmocka_unit_test(test_round_keys),
	        cmocka_unit_test(test_round_key_slots),
	        cmocka_unit_test(test_nonces),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
