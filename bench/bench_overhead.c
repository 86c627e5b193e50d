/*
 * bench_overhead.c: what the secure round costs on top of a plain group
 * average with the same codec, for the MLP 784-128-10 (101,770 parameters)
 * in a group of k = 4, in one process (no network, one core):
 *
 *   plain   every member encodes and packs its vector, the initiator
 *           unpacks and sums them in the ring, packs the sum, every member
 *           unpacks and decodes it: the same codec, no masks, no keys, no
 *           shares, no confirmation;
 *   secure  the whole round of node/round.c: keys, shares, masks, unmask,
 *           RESULT, CHECKED, COMMIT, every message through msgpack.
 *
 * Bytes are message bytes summed over all members (transport sealing, about
 * 40 bytes per message, excluded from both); time is wall time of all k
 * members' work on one core, best of 5, which is also their CPU time. Prints
 * figures; asserts nothing (timing never decides a test).
 *
 *   build-bench/bench/bench_overhead
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "crypto/identity.h"
#include "learn/model.h"
#include "node/codec_plan.h"
#include "protocol/codec.h"
#include "protocol/msg.h"
#include "secagg/round.h"
#include "util/log.h"
#include "util/util.h"

#define K    4
#define REPS 5

static void check(int rc, const char *what)
{
	if (rc != 0) {
		fprintf(stderr, "bench_overhead: %s failed: %d\n", what, rc);
		exit(1);
	}
}

/* k members' models: the same initialisation plus a small spread. */
static float *xs[K];

static void make_inputs(const struct model *m)
{
	struct rng rng;

	rng_seed(&rng, 7);
	for (int i = 0; i < K; i++) {
		xs[i] = malloc(m->n_params * sizeof(float));
		if (xs[i] == NULL)
			exit(1);
		for (size_t j = 0; j < m->n_params; j++)
			xs[i][j] = m->params[j] + (float)(rng_uniform(&rng) - 0.5) * 0.004f;
	}
}

/* --- plain group average ----------------------------------------------------- */

static double plain(const struct codec_params *p, size_t *bytes)
{
	size_t n = codec_ring_len(p), nb = codec_packed_bytes(p);
	uint32_t *ring = malloc(n * 4), *sum = malloc(n * 4), *tmp = malloc(n * 4);
	uint8_t *packed[K], *sum_packed = malloc(nb);
	float *avg = malloc(p->dim * sizeof(float));
	double best = 1e9;

	if (!ring || !sum || !tmp || !sum_packed || !avg)
		exit(1);
	for (int i = 0; i < K; i++) {
		packed[i] = malloc(nb);
		if (packed[i] == NULL)
			exit(1);
	}
	for (int rep = 0; rep < REPS; rep++) {
		double t0 = util_now();
		struct rng rng;

		rng_seed(&rng, (uint64_t)rep);
		for (int i = 0; i < K; i++) {
			check(codec_encode(ring, p, xs[i], 1.0f, &rng, NULL, NULL), "encode");
			check(codec_pack(packed[i], nb, p, ring), "pack");
		}
		memset(sum, 0, n * 4);
		for (int i = 0; i < K; i++) {
			check(codec_unpack(tmp, p, packed[i], nb), "unpack");
			codec_ring_add(sum, tmp, p);
		}
		check(codec_pack(sum_packed, nb, p, sum), "pack sum");
		for (int i = 0; i < K; i++) {
			memcpy(avg, xs[i], p->dim * sizeof(float));
			check(codec_unpack(tmp, p, sum_packed, nb), "unpack sum");
			check(codec_decode_sum(avg, NULL, p, tmp, K, xs[i], NULL), "decode");
		}
		best = MIN(best, util_now() - t0);
	}
	*bytes = 2 * (K - 1) * nb; /* k-1 inputs to the initiator, k-1 sums back */
	for (int i = 0; i < K; i++)
		free(packed[i]);
	free(ring);
	free(sum);
	free(tmp);
	free(sum_packed);
	free(avg);
	return best;
}

/* --- the secure round ---------------------------------------------------------- */

struct env {
	uint8_t from, to;
	uint8_t *bytes;
	size_t len;
	struct env *next;
};

static double secure(const struct codec_params *p, size_t *bytes, size_t *msgs)
{
	struct identity *id[K];
	uint8_t pk[K][32];
	struct round_outbox ob = {calloc(ROUND_OUTBOX_MIN, sizeof(struct round_out)),
	                          ROUND_OUTBOX_MIN, 0};
	struct msg *m = malloc(sizeof(*m));
	double best = 1e9;

	if (ob.out == NULL || m == NULL)
		exit(1);
	for (int i = 0; i < K; i++) {
		id[i] = identity_generate();
		if (id[i] == NULL)
			exit(1);
		memcpy(pk[i], id[i]->sign_pk, 32);
	}
	for (int rep = 0; rep < REPS; rep++) {
		struct round *r[K] = {NULL};
		struct env *head = NULL, *tail = NULL;
		size_t b = 0, nm = 0;
		double t0 = util_now();
		struct round_plan plan = {0xabcdef00u + (uint64_t)rep,
		                          0,
		                          K,
		                          round_min_threshold(K),
		                          (const uint8_t(*)[32])pk,
		                          p,
		                          10000,
		                          0,
		                          NULL,
		                          MSG_PATH_STAR,
		                          0,
		                          0,
		                          0};
		struct round_input in = {xs[0], 1.0f, 1, false};
		uint8_t from = 0;

		check(round_initiate(&r[0], id[0], &plan, &in, 0, &ob), "initiate");
		for (;;) {
			for (size_t i = 0; i < ob.n; i++) {
				struct env *e = calloc(1, sizeof(*e));
				size_t size = msg_encoded_size(&ob.out[i].msg);

				if (e == NULL || size == 0 || (e->bytes = malloc(size)) == NULL)
					exit(1);
				e->from = from;
				e->to = ob.out[i].to;
				check(msg_encode(e->bytes, size, &e->len, &ob.out[i].msg),
				      "encode");
				b += e->len;
				nm++;
				if (tail)
					tail->next = e;
				else
					head = e;
				tail = e;
			}
			ob.n = 0;
			if (head == NULL)
				break;
			{
				struct env *e = head;

				head = e->next;
				if (head == NULL)
					tail = NULL;
				check(msg_decode(m, e->bytes, e->len), "decode");
				if (r[e->to] == NULL) {
					struct round_input mi = {xs[e->to], 1.0f, 1u + e->to,
					                         false};
					check(round_join(&r[e->to], id[e->to], pk[e->from], m, &mi,
					                 0, &ob),
					      "join");
				} else {
					check(round_on_msg(r[e->to], pk[e->from], m, 0, &ob),
					      "on_msg");
				}
				from = e->to;
				free(e->bytes);
				free(e);
			}
		}
		for (int i = 0; i < K; i++) {
			float *avg = malloc(p->dim * sizeof(float));
			float rho;
			uint32_t members;

			if (avg == NULL || round_status(r[i]) != ROUND_DONE) {
				fprintf(stderr, "bench_overhead: round did not complete\n");
				exit(1);
			}
			memcpy(avg, xs[i], p->dim * sizeof(float));
			check(round_result(r[i], avg, &rho, &members), "result");
			free(avg);
		}
		best = MIN(best, util_now() - t0);
		*bytes = b;
		*msgs = nm;
		for (int i = 0; i < K; i++)
			round_free(r[i]);
	}
	for (int i = 0; i < K; i++)
		identity_free(id[i]);
	free(ob.out);
	free(m);
	return best;
}

static void row(const char *name, const struct config *cfg, const struct model *m,
                const struct codec_plan *pl)
{
	struct codec_params *p = malloc(sizeof(*p));
	size_t pb, sb, nm;
	double pt, st;

	if (p == NULL)
		exit(1);
	check(codec_plan_make(p, pl, m, xs[0], 1.0, K, cfg), "plan");
	pt = plain(p, &pb);
	st = secure(p, &sb, &nm);
	printf("%-28s %9zu %8.2f | %10zu %8.2f | %10zu %3zu %8.2f | %6.2fx %6.2fx\n", name,
	       codec_packed_bytes(p), 8.0 * (double)codec_packed_bytes(p) / (double)p->dim, pb,
	       pt * 1e3, sb, nm, st * 1e3, (double)sb / (double)pb, st / pt);
	free(p);
}

int main(void)
{
	struct model_spec spec = {0};
	struct model *m = NULL;
	struct config *cfg = calloc(1, sizeof(*cfg));
	struct codec_plan pl;

	if (sodium_init() < 0 || cfg == NULL)
		return 1;
	log_set_level(LOG_LEVEL_WARN);
	spec.type = MODEL_MLP;
	spec.channels = 1;
	spec.height = 1;
	spec.width = 784;
	spec.classes = 10;
	spec.n_hidden = 1;
	spec.hidden[0] = 128;
	check(model_alloc(&m, &spec, 1), "model_alloc");
	model_init(m, 42);
	make_inputs(m);
	/* A node that has seen a few rounds: spread estimates as measured. */
	codec_plan_init(&pl);
	pl.n_segs = (uint32_t)m->n_segs;
	pl.observed = 100;
	for (size_t s = 0; s < m->n_segs; s++)
		pl.dev[s] = 0.004f;
	cfg->gossip.bits = 8;
	cfg->gossip.width = 6;
	cfg->gossip.keep = 1.0;
	cfg->gossip.warmup_rounds = 4;
	printf("MLP 784-128-10 (%zu parameters), k = %d, one process, best of %d\n", m->n_params, K,
	       REPS);
	printf("%-28s %9s %8s | %10s %8s | %10s %3s %8s | %7s %7s\n", "codec", "vector B", "bits/p",
	       "plain B", "plain ms", "secure B", "msg", "sec ms", "bytes", "time");
	cfg->gossip.codec = CONFIG_CODEC_FLOAT32;
	row("float32 (32-bit ring)", cfg, m, NULL);
	cfg->gossip.codec = CONFIG_CODEC_FIXED;
	row("fixed 8-bit", cfg, m, NULL);
	cfg->gossip.codec = CONFIG_CODEC_MODULAR;
	cfg->gossip.width = 6;
	row("modular w=6", cfg, m, &pl);
	cfg->gossip.width = 6;
	cfg->gossip.keep = 0.25;
	row("modular w=6, keep 0.25", cfg, m, &pl);
	cfg->gossip.keep = 0.1;
	row("modular w=6, keep 0.1", cfg, m, &pl);
	for (int i = 0; i < K; i++)
		free(xs[i]);
	model_free(m);
	free(cfg);
	return 0;
}
