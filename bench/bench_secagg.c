/*
 * bench_secagg.c: what secure aggregation costs one member, and what it
 * sends. Prints figures; asserts nothing (timing never decides a test).
 *
 * For 10^5 and 10^6 parameters at k = 4 and 8 (8-bit values, exact ring):
 *   encode, pack, masks (self + k-1 pairwise), shares (split + k-1 boxes),
 *   seal of the masked vector (XChaCha20-Poly1305, what crypto/seal does),
 *   unpack + decode of a sum, and libsodium's raw ChaCha20 keystream for the
 *   same mask bytes (the bound: masks cannot be cheaper than their stream);
 *   then one whole round of k members in process, every message through
 *   msg_encode/msg_decode (no network).
 * Then bytes per member per round for several codec settings, against
 * float32 (4 bytes per parameter).
 *
 *   build-sa/bench/bench_secagg            # all of it
 *   build-sa/bench/bench_secagg quick      # 10^5 only
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/identity.h"
#include "crypto/mask.h"
#include "crypto/shamir.h"
#include "protocol/codec.h"
#include "protocol/msg.h"
#include "secagg/round.h"
#include "util/log.h"
#include "util/util.h"

static double best_of(double *runs, int n)
{
	double b = runs[0];

	for (int i = 1; i < n; i++)
		b = runs[i] < b ? runs[i] : b;
	return b;
}

#define REPS 5
#define TIME(var, ...)                                                                             \
	do {                                                                                       \
		double runs_[REPS];                                                                \
		for (int r_ = 0; r_ < REPS; r_++) {                                                \
			double t0_ = util_now();                                                   \
			__VA_ARGS__;                                                               \
			runs_[r_] = util_now() - t0_;                                              \
		}                                                                                  \
		var = best_of(runs_, REPS);                                                        \
	} while (0)

static void check(int rc, const char *what)
{
	if (rc != 0) {
		fprintf(stderr, "bench_secagg: %s failed: %d\n", what, rc);
		exit(1);
	}
}

/* Four segments like an MLP 784-128-10: W1, b1, W2, b2 scaled to dim. */
static void make_codec(struct codec_params *p, uint32_t dim, uint16_t k, uint8_t bits)
{
	uint32_t lens[4];
	float clips[4] = {0.5f, 0.5f, 2.0f, 2.0f};

	lens[1] = dim / 800 + 1;
	lens[3] = 10;
	lens[2] = dim / 80;
	lens[0] = dim - lens[1] - lens[2] - lens[3];
	check(codec_params_init(p, k, lens, clips, 4, bits), "codec_params_init");
	check(codec_params_set_weight(p, 16, 1.0f / 4096), "set_weight");
}

static void bench_member(uint32_t dim, uint16_t k)
{
	struct codec_params *p = malloc(sizeof(*p));
	struct mask_seg segs[CODEC_MAX_SEGMENTS + 1];
	uint8_t(*pks)[32] = malloc((size_t)k * 32), sk[32], seed[32], ss[32];
	uint8_t rid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	struct mask_round mr = {rid, sizeof(rid), 0};
	struct shamir_share sh1[64], sh2[64];
	uint8_t box[SHAMIR_BOX_BYTES], key[32], nonce[24];
	struct rng rng;
	size_t n, nseg, nb;
	uint32_t *ring, *sum;
	uint8_t *packed, *sealed, *stream;
	float *x, *avg;
	double t_enc, t_pack, t_mask, t_keys, t_share, t_seal, t_dec, t_stream;
	unsigned long long clen;

	make_codec(p, dim, k, 8);
	n = codec_ring_len(p);
	nseg = codec_ring_nseg(p);
	nb = codec_packed_bytes(p);
	for (size_t i = 0; i < nseg; i++)
		codec_ring_segment(p, i, &segs[i].len, &segs[i].width);
	x = malloc(dim * sizeof(float));
	avg = malloc(dim * sizeof(float));
	ring = malloc(n * sizeof(uint32_t));
	sum = calloc(n, sizeof(uint32_t));
	packed = malloc(nb);
	sealed = malloc(nb + 16);
	stream = malloc(nb);
	if (!p || !pks || !x || !avg || !ring || !sum || !packed || !sealed || !stream)
		exit(1);
	rng_seed(&rng, 1);
	for (uint32_t i = 0; i < dim; i++)
		x[i] = (float)(rng_uniform(&rng) - 0.5) * 0.2f;
	for (uint16_t i = 0; i < k; i++)
		check(mask_keypair(pks[i], sk), "keypair");
	check(mask_keypair(pks[0], sk), "keypair");
	randombytes_buf(seed, sizeof(seed));
	randombytes_buf(key, sizeof(key));
	randombytes_buf(nonce, sizeof(nonce));

	TIME(t_enc, check(codec_encode(ring, p, x, 1.0f, &rng, NULL, NULL), "encode"));
	TIME(t_pack, check(codec_pack(packed, nb, p, ring), "pack"));
	TIME(t_mask, check(mask_member_apply(ring, segs, nseg, seed, sk, pks[0],
	                                     (const uint8_t(*)[32])pks, k, &mr),
	                   "masks"));
	/* The part of "masks" that is not keystream work: k - 1 X25519 agreements
	 * and k BLAKE2b key derivations. */
	TIME(t_keys, {
		int sg;
		check(mask_self_key(key, seed, pks[0], &mr), "self key");
		for (uint16_t v = 1; v < k; v++)
			check(mask_pair_key(key, &sg, sk, pks[0], pks[v], &mr), "pair key");
	});
	randombytes_buf(key, sizeof(key));
	TIME(t_share, {
		check(shamir_split(sh1, k, k / 2 + 1, seed), "split");
		check(shamir_split(sh2, k, k / 2 + 1, sk), "split");
		for (uint16_t v = 1; v < k; v++) {
			struct shamir_pair pr = {sh1[v], sh2[v]};
			check(shamir_box_seal(box, &pr, 0, (uint8_t)v, sk, pks[0], pks[v], &mr),
			      "box");
		}
	});
	TIME(t_seal, crypto_aead_xchacha20poly1305_ietf_encrypt(sealed, &clen, packed, nb, NULL, 0,
	                                                        NULL, nonce, key));
	TIME(t_dec, {
		check(codec_unpack(sum, p, packed, nb), "unpack");
		int drc_ = codec_decode_sum(avg, NULL, p, sum, 1, NULL, NULL);
		(void)drc_;
	});
	/* The bound: k keystreams (self + k-1 pairs) of the packed size each. */
	TIME(t_stream, {
		for (uint16_t i = 0; i < k; i++)
			crypto_stream_chacha20(stream, nb, nonce, key);
	});
	memcpy(ss, stream, sizeof(ss)); /* keep the stream live */
	printf("%8u %2u %9zu | %7.2f %6.2f %7.2f %6.2f %6.2f %6.2f %7.2f | %7.2f  %4.2fx  %4.2fx | "
	       "%7.2f %9.2f\n",
	       dim, k, nb, t_enc * 1e3, t_pack * 1e3, t_mask * 1e3, t_keys * 1e3, t_share * 1e3,
	       t_seal * 1e3, t_dec * 1e3, t_stream * 1e3, t_mask / t_stream,
	       (t_mask - t_keys) / t_stream, (t_enc + t_pack + t_mask + t_share + t_seal) * 1e3,
	       (double)k * (double)nb / t_stream / 1e9);
	free(p);
	free(pks);
	free(x);
	free(avg);
	free(ring);
	free(sum);
	free(packed);
	free(sealed);
	free(stream);
	(void)ss;
}

/* --- one whole round in process -------------------------------------------- */

struct env {
	uint8_t from, to;
	uint8_t *bytes;
	size_t len;
	struct env *next;
};

static size_t bytes_by_type[MSG_TYPE_MAX + 1];

static void push(struct env **head, struct env **tail, uint8_t from, const struct round_out *o)
{
	struct env *e = calloc(1, sizeof(*e));
	size_t size = msg_encoded_size(&o->msg);

	if (e == NULL || size == 0)
		exit(1);
	e->from = from;
	e->to = o->to;
	e->bytes = malloc(size);
	if (e->bytes == NULL)
		exit(1);
	check(msg_encode(e->bytes, size, &e->len, &o->msg), "msg_encode");
	if (from != 0 && o->msg.type >= MSG_TYPE_MIN && o->msg.type <= MSG_TYPE_MAX)
		bytes_by_type[o->msg.type] += e->len; /* sent by members 1..k-1 */
	if (*tail)
		(*tail)->next = e;
	else
		*head = e;
	*tail = e;
}

static void bench_round(uint32_t dim, uint8_t k)
{
	struct identity *id[MSG_MAX_MEMBERS];
	uint8_t pk[MSG_MAX_MEMBERS][32];
	struct round *r[MSG_MAX_MEMBERS] = {NULL};
	struct codec_params *p = malloc(sizeof(*p));
	struct round_outbox ob = {calloc(ROUND_OUTBOX_MIN, sizeof(struct round_out)),
	                          ROUND_OUTBOX_MIN, 0};
	struct msg *m = malloc(sizeof(*m));
	struct env *head = NULL, *tail = NULL;
	float *x = malloc(dim * sizeof(float));
	double t0, t;

	if (!p || !ob.out || !m || !x)
		exit(1);
	memset(bytes_by_type, 0, sizeof(bytes_by_type));
	for (uint32_t i = 0; i < dim; i++)
		x[i] = (float)((i * 2654435761u) % 1000) / 5000.0f - 0.1f;
	for (uint8_t i = 0; i < k; i++) {
		id[i] = identity_generate();
		if (id[i] == NULL)
			exit(1);
		memcpy(pk[i], id[i]->sign_pk, 32);
	}
	make_codec(p, dim, k, 8);
	t0 = util_now();
	{
		struct round_plan plan = {0xabcdef,
		                          0,
		                          k,
		                          round_min_threshold(k),
		                          (const uint8_t(*)[32])pk,
		                          p,
		                          10000,
		                          0,
		                          NULL,
		                          MSG_PATH_STAR,
		                          0,
		                          0,
		                          0};
		struct round_input in = {x, 1.0f, 1, false};

		check(round_initiate(&r[0], id[0], &plan, &in, 0, &ob), "initiate");
		for (size_t i = 0; i < ob.n; i++)
			push(&head, &tail, 0, &ob.out[i]);
		ob.n = 0;
	}
	while (head != NULL) {
		struct env *e = head;

		head = e->next;
		if (head == NULL)
			tail = NULL;
		check(msg_decode(m, e->bytes, e->len), "msg_decode");
		if (r[e->to] == NULL) {
			struct round_input in = {x, 1.0f, 1 + e->to, false};
			check(round_join(&r[e->to], id[e->to], pk[e->from], m, &in, 0, &ob),
			      "join");
		} else {
			check(round_on_msg(r[e->to], pk[e->from], m, 0, &ob), "on_msg");
		}
		for (size_t i = 0; i < ob.n; i++)
			push(&head, &tail, e->to, &ob.out[i]);
		ob.n = 0;
		free(e->bytes);
		free(e);
	}
	t = util_now() - t0;
	for (uint8_t i = 0; i < k; i++) {
		if (round_status(r[i]) != ROUND_DONE) {
			fprintf(stderr, "bench_secagg: round did not complete\n");
			exit(1);
		}
	}
	printf("%8u %2u | %8.1f ms (all %u members on one core) | per member sent: ACCEPT %zu, "
	       "SHARES %zu, MASKED %zu, UNMASK %zu bytes\n",
	       dim, k, t * 1e3, k, bytes_by_type[MSG_ACCEPT] / (k - 1u),
	       bytes_by_type[MSG_SHARES] / (k - 1u), bytes_by_type[MSG_MASKED] / (k - 1u),
	       bytes_by_type[MSG_UNMASK_RESP] / (k - 1u));
	for (uint8_t i = 0; i < k; i++) {
		round_free(r[i]);
		identity_free(id[i]);
	}
	free(p);
	free(ob.out);
	free(m);
	free(x);
}

/* --- bytes per member per round ------------------------------------------- */

static void bytes_table(uint32_t dim, uint16_t k)
{
	static const struct {
		const char *name;
		uint8_t bits, width; /* width 0: exact (bits + ceil(log2 k)) */
		uint32_t keep_ppm;
	} rows[] = {
	        {"exact 16-bit", 16, 0, CODEC_KEEP_ALL}, {"exact 12-bit", 12, 0, CODEC_KEEP_ALL},
	        {"exact 8-bit", 8, 0, CODEC_KEEP_ALL},   {"exact 6-bit", 6, 0, CODEC_KEEP_ALL},
	        {"exact 4-bit", 4, 0, CODEC_KEEP_ALL},   {"modular w=6", 8, 6, CODEC_KEEP_ALL},
	        {"modular w=3", 8, 3, CODEC_KEEP_ALL},   {"exact 8-bit, 10%", 8, 0, 100000},
	};
	struct codec_params *p = malloc(sizeof(*p));
	double f32 = 4.0 * dim;
	/* per member, besides the vector: ACCEPT + SHARES + UNMASK (k=4 shown above) */
	double overhead = 200.0 + (double)(k - 1) * (SHAMIR_BOX_BYTES + 8) + k * 40.0;

	if (p == NULL)
		exit(1);
	printf("\nbytes per member per round, %u parameters, k = %u (float32: %.0f bytes)\n", dim,
	       k, f32);
	printf("%-18s %5s %12s %10s %12s %10s\n", "codec", "wire", "vector B", "x float32",
	       "round B", "x float32");
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		size_t nb;

		make_codec(p, dim, k, rows[i].bits);
		if (rows[i].width != 0) {
			for (uint32_t s = 0; s < p->nseg; s++) {
				p->seg[s].mode = CODEC_SEG_MODULAR;
				p->seg[s].width = rows[i].width;
			}
		}
		if (rows[i].keep_ppm != CODEC_KEEP_ALL) {
			p->flags |= CODEC_F_SUBSAMPLE;
			p->keep_ppm = rows[i].keep_ppm;
		}
		check(codec_params_check(p), "params");
		nb = codec_packed_bytes(p);
		printf("%-18s %4ub %12zu %9.1fx %12.0f %9.1fx\n", rows[i].name, p->seg[0].width, nb,
		       f32 / (double)nb, (double)nb + overhead, f32 / ((double)nb + overhead));
	}
	free(p);
}

int main(int argc, char **argv)
{
	bool quick = argc > 1 && strcmp(argv[1], "quick") == 0;
	const uint32_t dims[2] = {100000, 1000000};
	const uint16_t ks[2] = {4, 8};

	if (sodium_init() < 0)
		return 1;
	log_set_level(LOG_LEVEL_WARN);
	printf("per member, milliseconds (best of %d); 8-bit values, exact ring\n", REPS);
	printf("%8s %2s %9s | %7s %6s %7s %6s %6s %6s %7s | %7s %5s %6s | %7s %9s\n", "params", "k",
	       "packed B", "encode", "pack", "masks", "keys", "shares", "seal", "decode", "stream",
	       "m/s", "(m-k)/s", "total", "GB/s strm");
	printf("(masks: all of mask_member_apply; keys: its X25519 agreements and key "
	       "derivations;\n"
	       " stream: libsodium's raw ChaCha20 for k x packed bytes, the bound)\n");
	for (size_t d = 0; d < (quick ? 1u : 2u); d++) {
		for (size_t i = 0; i < 2; i++)
			bench_member(dims[d], ks[i]);
	}
	printf("\nwhole round, k members in one process (msgpack encode/decode included)\n");
	for (size_t d = 0; d < (quick ? 1u : 2u); d++) {
		bench_round(dims[d], 4);
		bench_round(dims[d], 8);
	}
	bytes_table(101770, 4); /* MLP 784-128-10 */
	return 0;
}
