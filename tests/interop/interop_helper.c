/*
 * interop_helper.c: sotto's side of the interop check (interop_check.py).
 *
 *   interop_helper seal SEED_A SEED_B OUT   A seals fixed messages to B
 *   interop_helper open SEED_A SEED_B IN    A opens frames from B and prints them
 *
 * Seeds are 64 hex digits. Frame files are a sequence of (4-byte big-endian
 * length, frame). `open` prints one line per frame: "ok type=.. round=..
 * attempt=.. body=HASH" plus type-specific fields, where HASH is BLAKE2b-256
 * of the body re-encoded by msg_encode (equal to the sender's body when
 * both encode canonically), or "refused reason=...". Test-only: not built
 * into sotto.
 */
#include "crypto/identity.h"
#include "crypto/seal.h"
#include "protocol/msg.h"
#include "util/bytes.h"
#include "util/err.h"
#include "util/file.h"
#include "util/log.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE ((size_t)64 << 20)

static struct identity *seed_identity(const char *hex)
{
	uint8_t seed[32];
	size_t len = 0;

	if (sodium_hex2bin(seed, sizeof(seed), hex, strlen(hex), NULL, &len, NULL) != 0 ||
	    len != 32)
		return NULL;
	return identity_from_seed(seed);
}

static void hex_print(const char *label, const uint8_t *p, size_t n)
{
	char h[65];
	uint8_t d[32];

	crypto_generichash(d, sizeof(d), p, n, NULL, 0);
	sodium_bin2hex(h, sizeof(h), d, sizeof(d));
	printf(" %s=%s", label, h);
}

/* The messages the Python side expects, field for field. */
static int seal_fixed(struct seal_ctx *ctx, const uint8_t *to, FILE *out)
{
	static uint8_t vec[1000];
	struct msg m[2];
	int rc = 0;

	memset(m, 0, sizeof(m));
	for (size_t i = 0; i < sizeof(vec); i++)
		vec[i] = (uint8_t)(i * 7);
	m[0].type = MSG_MASKED;
	m[0].round_id = 0x1122334455667788ULL;
	m[0].attempt = 3;
	m[0].u.masked.index = 2;
	m[0].u.masked.n_values = 800;
	m[0].u.masked.weight = 0.75;
	m[0].u.masked.vector = (struct msg_bytes){vec, sizeof(vec)};

	m[1].type = MSG_INVITE;
	m[1].round_id = 0x1122334455667788ULL;
	m[1].attempt = 3;
	m[1].u.invite.n_members = 3;
	m[1].u.invite.threshold = 2;
	for (int i = 0; i < 3; i++)
		memset(m[1].u.invite.members[i], 0xa0 + i, 32);
	m[1].u.invite.phase_timeout_ms = 2500;
	m[1].u.invite.deadline_unix_ms = 1700000000000ULL;
	m[1].u.invite.codec = (struct msg_codec){
	        .id = 1,
	        .version = 1,
	        .k = 3,
	        .flags = 2,
	        .keep_ppm = 1000000,
	        .sample_seed = 99,
	        .dither_seed = 100,
	        .weight_bits = 12,
	        .weight_width = 14,
	        .weight_scale = 0.25,
	        .n_segments = 2,
	};
	m[1].u.invite.codec.segments[0] = (struct msg_segment){784 * 128, 8, 10, 0, 0.01, 1.27};
	m[1].u.invite.codec.segments[1] = (struct msg_segment){128, 8, 10, 1, 0.001, 0.127};
	m[1].u.invite.model = (struct msg_model){.type = 1, .n_hidden = 1, .seed = 42};
	m[1].u.invite.model.hidden[0] = 128;

	for (size_t i = 0; i < 2 && rc == 0; i++) {
		size_t body = msg_encoded_size(&m[i]), len = 0;
		size_t flen = body + SEAL_OVERHEAD;
		uint8_t *f = malloc(flen), be[4];
		if (f == NULL || body == 0)
			return -1;
		rc = msg_encode(f + SEAL_HEADER_BYTES, body, &len, &m[i]);
		if (rc == 0)
			rc = seal_frame(ctx, f, flen, to, (uint8_t)m[i].type, m[i].round_id);
		for (int b = 0; b < 4; b++)
			be[b] = (uint8_t)(flen >> (24 - 8 * b));
		if (rc == 0 && (fwrite(be, 1, 4, out) != 4 || fwrite(f, 1, flen, out) != flen))
			rc = -1;
		free(f);
	}
	return rc;
}

static void print_msg(const struct msg *m, const struct seal_header *h)
{
	size_t n = msg_encoded_size(m), len = 0;
	uint8_t *re = malloc(n > 0 ? n : 1);

	printf("ok type=%d round=%" PRIu64 " attempt=%u counter=%" PRIu64, m->type, m->round_id,
	       m->attempt, h->counter);
	if (re != NULL && msg_encode(re, n, &len, m) == 0)
		hex_print("body", re, len);
	free(re);
	switch (m->type) {
	case MSG_MASKED:
		printf(" index=%u n_values=%u weight=%.17g", m->u.masked.index,
		       m->u.masked.n_values, m->u.masked.weight);
		hex_print("vector", m->u.masked.vector.ptr, m->u.masked.vector.len);
		break;
	case MSG_ACCEPT: {
		const struct msg_eph_keys *k = &m->u.accept.keys;
		printf(" index=%u sig=%s", m->u.accept.index,
		       seal_eph_verify(k->sig, h->sender, m->round_id, m->attempt, k->flags,
		                       k->mask_pk, k->share_pk, k->seed_commit)
		               ? "valid"
		               : "invalid");
		break;
	}
	case MSG_SPLIT_SIG: {
		/* Checked against the split interop_check.py signs: transcript of
		 * 32 bytes 0x5a, alive {0, 1, 3}, dropped {2}. */
		uint8_t transcript[SEAL_DIGEST_BYTES];
		memset(transcript, 0x5a, sizeof(transcript));
		printf(" index=%u sig=%s", m->u.split_sig.index,
		       seal_split_verify(m->u.split_sig.sig, h->sender, m->round_id, m->attempt,
		                         transcript, 0xb, 0x4)
		               ? "valid"
		               : "invalid");
		break;
	}
	case MSG_PING:
		printf(" seq=%" PRIu64 " time_ms=%" PRIu64, m->u.ping.seq, m->u.ping.time_ms);
		break;
	case MSG_ABORT:
		printf(" reason=%u text=%s", m->u.abort.reason, m->u.abort.text);
		break;
	default:
		break;
	}
	printf("\n");
}

static int open_all(struct seal_ctx *ctx, uint8_t *buf, size_t len)
{
	struct msg *m = malloc(sizeof(*m));
	size_t off = 0;

	if (m == NULL)
		return -1;
	while (len - off >= 4) {
		struct seal_header h;
		size_t flen = bytes_get_be32(buf + off);
		int rc;
		off += 4;
		if (flen > len - off) {
			free(m);
			return -1;
		}
		rc = seal_open(ctx, &h, buf + off, flen);
		if (rc == 0)
			rc = msg_decode(m, buf + off + SEAL_HEADER_BYTES, flen - SEAL_OVERHEAD);
		if (rc == 0)
			print_msg(m, &h);
		else
			printf("refused reason=%s\n", err_str(rc));
		off += flen;
	}
	free(m);
	return off == len ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct identity *a = NULL, *b = NULL;
	struct seal_ctx *ctx = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = 1;

	log_set_level(LOG_LEVEL_ERROR);
	if (argc != 5 || (strcmp(argv[1], "seal") != 0 && strcmp(argv[1], "open") != 0)) {
		fprintf(stderr, "usage: interop_helper seal|open SEED_A SEED_B FILE\n");
		return 2;
	}
	a = seed_identity(argv[2]);
	b = seed_identity(argv[3]);
	if (a == NULL || b == NULL || seal_ctx_alloc(&ctx, a, NULL) != 0 ||
	    seal_peer_add(ctx, b->sign_pk) != 0)
		goto out;
	if (strcmp(argv[1], "seal") == 0) {
		FILE *f = fopen(argv[4], "wb");
		if (f == NULL)
			goto out;
		rc = seal_fixed(ctx, b->sign_pk, f) == 0 ? 0 : 1;
		if (fclose(f) != 0)
			rc = 1;
	} else {
		if (file_read_all(argv[4], MAX_FILE, &buf, &len) != 0)
			goto out;
		rc = open_all(ctx, buf, len) == 0 ? 0 : 1;
	}
out:
	free(buf);
	seal_ctx_free(ctx);
	identity_free(a);
	identity_free(b);
	return rc;
}
