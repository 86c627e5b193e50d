/*
 * round.c: the secure-aggregation round state machine (see round.h).
 *
 * One struct round holds a member's part and, on the initiator, the
 * coordinator's part as well. Messages between the initiator and its own
 * member part go through a small local queue drained before each call
 * returns, so the coordinator treats index 0 like any other member and the
 * member rules (the reveal rule above all) are enforced in one place.
 *
 * Set names follow Bonawitz et al.: U1 accepted (keys advertised), U2 sent
 * their shares, U3 sent their masked input (alive; dropped = U2 \ U3), and
 * R answered the unmask request. Between U3 and the unmask request every
 * alive member signs the split (alive, dropped) over a transcript of the
 * round (the INVITE and the roster's signed keys), and a member reveals
 * shares only under the one split it signed, once every alive member signed
 * that same split (Bonawitz's ConsistencyCheck, strengthened: all of U3, not
 * t of them). Not here: sockets, encoding, retries.
 */
#include "secagg/round.h"

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/identity.h"
#include "crypto/mask.h"
#include "crypto/seal.h"
#include "crypto/shamir.h"
#include "protocol/codec_msg.h"
#include "util/log.h"
#include "util/util.h"

#define MAXM             MSG_MAX_MEMBERS
#define SHARE_WIRE_BYTES (1 + SHAMIR_SECRET_BYTES) /* x || y */
#define LOCAL_QUEUE      8

enum mphase {
	M_WAIT_KEYS,
	M_WAIT_SHARES,
	M_WAIT_SPLIT,
	M_WAIT_UNMASK,
	M_WAIT_RESULT,
	M_WAIT_COMMIT,
	M_END
};
enum iphase { I_ACCEPTS, I_SHARES, I_MASKED, I_SPLIT, I_UNMASK, I_CHECK, I_END };
enum role { TO_MEMBER, TO_INITIATOR };

/* Secrets of the member part, in guarded memory (sodium_malloc). */
struct member_secrets {
	uint8_t mask_sk[MASK_SK_BYTES];
	uint8_t share_sk[32];
	uint8_t seed[MASK_SEED_BYTES];
	struct shamir_pair held[MAXM]; /* the shares I hold of each owner's secrets */
	struct msg_seeds seeds;        /* scatter path: the initiator's SEEDS */
};

struct init_state {
	enum iphase phase;
	uint64_t deadline;
	bool in[MAXM];   /* answered the current phase */
	bool gone[MAXM]; /* declined or aborted: do not wait for it */
	bool lost[MAXM]; /* connection dropped: do not wait, still tell it */
	bool u1[MAXM], u2[MAXM], u3[MAXM];
	struct msg_eph_keys keys[MAXM];
	uint32_t split_alive, split_dropped;         /* the split sent for signing */
	uint8_t transcript[SEAL_DIGEST_BYTES];       /* of the round, for the split */
	uint8_t split_sigs[MAXM][MSG_SIG_BYTES];     /* alive members' signatures */
	uint8_t boxes[MAXM][MAXM][SHAMIR_BOX_BYTES]; /* [from][to] */
	struct shamir_share rev[MAXM][MAXM];         /* [owner][holder], revealed */
	bool rev_have[MAXM][MAXM];
	uint8_t digest[MAXM][crypto_generichash_BYTES]; /* of the sum each CHECKED named */
	uint32_t *sum, *tmp;
	uint8_t *sum_packed;
};

struct local_msg {
	enum role to;
	struct msg m;
};

struct round {
	const struct identity *id;
	uint64_t rid;
	uint32_t attempt;
	uint8_t rid_bytes[8];
	struct mask_round mr;
	uint8_t k, t, me;
	uint8_t members[MAXM][MSG_KEY_BYTES];
	uint8_t invite_digest[SEAL_DIGEST_BYTES]; /* BLAKE2b of the INVITE's encoding */
	struct codec_params cp;
	size_t n, nseg, packed_len;
	struct mask_seg segs[CODEC_MAX_SEGMENTS + 1];
	uint32_t phase_ms;
	uint8_t path; /* MSG_PATH_* */
	enum round_status status;
	int reason;

	/* member part */
	enum mphase mphase;
	uint64_t mdeadline;
	float *snapshot; /* what this member contributed (codec dim floats) */
	float *avg;      /* its verified decode of the RESULT, then the result */
	float rho_sum;   /* the total weight the RESULT decoded to */
	uint8_t mask_pk[MASK_PK_BYTES], share_pk[32], commit[SHAMIR_COMMIT_BYTES];
	uint8_t flags; /* MSG_EPH_F_*: what this member states about its input */
	struct member_secrets *sec;
	struct msg_eph_keys roster[MAXM];
	bool in_u1[MAXM], in_u2[MAXM];
	uint8_t boxes_out[MAXM][SHAMIR_BOX_BYTES];
	uint32_t *input_ring, *masked, *result;
	uint8_t *packed;
	bool signed_split;               /* the one split of this attempt is signed */
	uint32_t sig_alive, sig_dropped; /* that split, as bit sets */
	uint8_t sig[MSG_SIG_BYTES];      /* our signature on it */
	uint8_t transcript[SEAL_DIGEST_BYTES];
	bool answered;
	bool ans_alive[MAXM]; /* the alive set of the request we answered */
	uint8_t resp_shares[MAXM][SHARE_WIRE_BYTES];
	uint8_t counted[MAXM], n_counted;
	struct codec_stats st; /* of this member's decode of the RESULT */
	bool decoded;
	uint8_t digest[crypto_generichash_BYTES]; /* of the packed sum it decoded */

	/*
	 * Scatter path: the alive members of the split this member signed,
	 * ascending; part p (values [part_first[p], + part_len[p])) is summed
	 * by alive[p]; this member is alive[my_part].
	 */
	uint8_t alive[MAXM], n_alive, my_part;
	uint32_t part_first[MAXM], part_len[MAXM];
	uint32_t *agg;         /* the running sum of my part */
	uint8_t *agg_packed;   /* its unmasked sum, packed, for PART_SUM */
	uint8_t *parts_packed; /* my masked parts, packed one after another */
	bool part_in[MAXM];    /* PART received from alive[q] */
	bool sum_in[MAXM];     /* PART_SUM of part p received */
	bool seeds_in, agg_sent;

	struct init_state *init; /* initiator only */

	struct local_msg *lq;
	size_t lq_head, lq_n;
};

/* --- small helpers -------------------------------------------------------- */

uint8_t round_min_threshold(uint8_t k)
{
	/* t >= ceil((k + 2) / 2): two disjoint groups of honest revealers, each
	 * completing t with the initiator's own share, cannot both exist. */
	unsigned t = ((unsigned)k + 3) / 2;

	return (uint8_t)(t < 3 ? 3 : t);
}

/*
 * How many dishonest parties (a lying initiator, members that lie or pool
 * what they see) the rules withstand for (k, t): two splits signed by all
 * of their alive sets need those sets, each of at least t, to share only
 * dishonest members, so 2t <= k + c; and a counted sum must keep at least
 * two inputs outside the coalition, so c <= t - 2 (docs/security.md).
 */
uint8_t round_max_dishonest(uint8_t k, uint8_t t)
{
	int by_split = 2 * (int)t - (int)k - 1, by_sum = (int)t - 2;
	int c = by_split < by_sum ? by_split : by_sum;

	return (uint8_t)(c < 0 ? 0 : c);
}

/*
 * Fewest fresh inputs (not MSG_EPH_F_KNOWN) a counted sum must hold when it
 * holds any: a coalition of c knows its own inputs and every known one, so
 * the rest must be at least two inputs: c + 2.
 */
uint8_t round_min_fresh(uint8_t k, uint8_t t)
{
	return (uint8_t)(round_max_dishonest(k, t) + 2);
}

static uint32_t bits_of(const bool *set, uint8_t k)
{
	uint32_t b = 0;

	for (uint8_t i = 0; i < k; i++)
		b |= (uint32_t)set[i] << i;
	return b;
}

static uint32_t bits_of_list(const uint8_t *v, uint8_t n)
{
	uint32_t b = 0;

	for (uint8_t i = 0; i < n; i++)
		b |= 1u << v[i];
	return b;
}

/* Members of `set` whose signed keys do not say their input is known. */
static size_t count_fresh(const bool *set, const struct msg_eph_keys *keys, uint8_t k)
{
	size_t c = 0;

	for (uint8_t i = 0; i < k; i++)
		c += set[i] && !(keys[i].flags & MSG_EPH_F_KNOWN);
	return c;
}

/* A sum over `set` may hold no fresh input, or enough of them. */
static bool fresh_ok(const struct round *r, const bool *set, const struct msg_eph_keys *keys)
{
	size_t f = count_fresh(set, keys, r->k);

	return f == 0 || f >= round_min_fresh(r->k, r->t);
}

/* BLAKE2b-256 of the INVITE as encoded: identical for every member it reached. */
static int invite_digest(uint8_t out[SEAL_DIGEST_BYTES], const struct msg *invite)
{
	size_t size = msg_encoded_size(invite), len = 0;
	uint8_t *buf;
	int rc = -EINVAL;

	if (size == 0)
		return -EINVAL;
	buf = malloc(size);
	if (buf == NULL)
		return -ENOMEM;
	if (msg_encode(buf, size, &len, invite) == 0) {
		crypto_generichash(out, SEAL_DIGEST_BYTES, buf, len, NULL, 0);
		rc = 0;
	}
	free(buf);
	return rc;
}

/*
 * What a split signature binds besides the split: the INVITE (members,
 * threshold, codec) and the roster, each U1 member's index and signed keys.
 * Two members who sign the same split over the same transcript saw the same
 * round.
 */
static void transcript_of(uint8_t out[SEAL_DIGEST_BYTES], const struct round *r, const bool *u1,
                          const struct msg_eph_keys *keys)
{
	crypto_generichash_state st;
	static const char label[] = "sotto transcript v1";

	crypto_generichash_init(&st, NULL, 0, SEAL_DIGEST_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)label, sizeof(label) - 1);
	crypto_generichash_update(&st, r->invite_digest, sizeof(r->invite_digest));
	for (uint8_t v = 0; v < r->k; v++) {
		if (!u1[v])
			continue;
		crypto_generichash_update(&st, &v, 1);
		crypto_generichash_update(&st, &keys[v].flags, 1);
		crypto_generichash_update(&st, keys[v].mask_pk, sizeof(keys[v].mask_pk));
		crypto_generichash_update(&st, keys[v].share_pk, sizeof(keys[v].share_pk));
		crypto_generichash_update(&st, keys[v].seed_commit, sizeof(keys[v].seed_commit));
	}
	crypto_generichash_final(&st, out, SEAL_DIGEST_BYTES);
}

static uint64_t member_timeout(const struct round *r)
{
	return 2ull * r->phase_ms;
}

static int index_of(const struct round *r, const uint8_t pk[MSG_KEY_BYTES])
{
	for (int i = 0; i < r->k; i++) {
		if (memcmp(r->members[i], pk, MSG_KEY_BYTES) == 0)
			return i;
	}
	return -1;
}

static size_t count(const bool *set, size_t k)
{
	size_t c = 0;

	for (size_t i = 0; i < k; i++)
		c += set[i];
	return c;
}

static void msg_init(struct msg *m, const struct round *r, enum msg_type type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->round_id = r->rid;
	m->attempt = r->attempt;
}

static void out_push(struct round_outbox *ob, uint8_t to, const struct msg *m)
{
	SOTTO_ASSERT(ob->n < ob->cap);
	ob->out[ob->n].to = to;
	ob->out[ob->n].msg = *m;
	ob->n++;
}

static void local_push(struct round *r, enum role to, const struct msg *m)
{
	size_t slot;

	SOTTO_ASSERT(r->lq_n < LOCAL_QUEUE);
	slot = (r->lq_head + r->lq_n) % LOCAL_QUEUE;
	r->lq[slot].to = to;
	r->lq[slot].m = *m;
	r->lq_n++;
}

/* Member part -> initiator. */
static void member_send(struct round *r, struct round_outbox *ob, const struct msg *m)
{
	if (r->init != NULL)
		local_push(r, TO_INITIATOR, m);
	else
		out_push(ob, 0, m);
}

/* Coordinator -> member `to`. */
static void init_send(struct round *r, struct round_outbox *ob, uint8_t to, const struct msg *m)
{
	if (to == r->me)
		local_push(r, TO_MEMBER, m);
	else
		out_push(ob, to, m);
}

static void secrets_wipe(struct round *r)
{
	if (r->sec != NULL) {
		sodium_free(r->sec); /* wipes */
		r->sec = NULL;
	}
}

static void reason_text(struct msg_reason_text *rt, enum msg_reason reason, const char *text)
{
	rt->reason = (uint8_t)reason;
	snprintf(rt->text, sizeof(rt->text), "%s", text);
}

/* --- allocation ----------------------------------------------------------- */

static int round_alloc(struct round **out, const struct identity *id, uint64_t rid,
                       uint32_t attempt, uint8_t k, uint8_t t,
                       const uint8_t (*members)[MSG_KEY_BYTES], const struct codec_params *cp,
                       uint32_t phase_ms, int me, const struct round_input *in)
{
	struct round *r;
	struct rng rng;
	int rc = -ENOMEM;

	*out = NULL;
	if (sodium_init() < 0)
		return -ENOMEM;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->id = id;
	r->rid = rid;
	r->attempt = attempt;
	for (int i = 0; i < 8; i++)
		r->rid_bytes[i] = (uint8_t)(rid >> (8 * i));
	r->mr.id = r->rid_bytes;
	r->mr.id_len = sizeof(r->rid_bytes);
	r->mr.attempt = attempt;
	r->k = k;
	r->t = t;
	r->me = (uint8_t)me;
	memcpy(r->members, members, (size_t)k * MSG_KEY_BYTES);
	r->cp = *cp;
	r->phase_ms = phase_ms;
	r->n = codec_ring_len(cp);
	r->nseg = codec_ring_nseg(cp);
	for (size_t i = 0; i < r->nseg; i++)
		codec_ring_segment(cp, i, &r->segs[i].len, &r->segs[i].width);
	r->packed_len = codec_packed_bytes(cp);
	r->snapshot = malloc((size_t)cp->dim * sizeof(float));
	r->input_ring = malloc(r->n * sizeof(uint32_t));
	r->masked = malloc(r->n * sizeof(uint32_t));
	r->result = malloc(r->n * sizeof(uint32_t));
	r->packed = malloc(r->packed_len ? r->packed_len : 1);
	r->lq = calloc(LOCAL_QUEUE, sizeof(*r->lq));
	r->sec = sodium_malloc(sizeof(*r->sec));
	if (r->snapshot == NULL || r->input_ring == NULL || r->masked == NULL ||
	    r->result == NULL || r->packed == NULL || r->lq == NULL || r->sec == NULL)
		goto out;
	memset(r->sec, 0, sizeof(*r->sec));
	memcpy(r->snapshot, in->x, (size_t)cp->dim * sizeof(float));
	r->flags = in->known ? MSG_EPH_F_KNOWN : 0;
	/* Encode now: a vector the codec refuses is refused before joining. */
	rng_seed(&rng, in->rng_seed);
	rc = codec_encode(r->input_ring, cp, r->snapshot, in->rho, &rng, NULL, NULL);
	sodium_memzero(&rng, sizeof(rng));
	if (rc != 0)
		goto out;
	*out = r;
	return 0;
out:
	round_free(r);
	return rc;
}

void round_free(struct round *r)
{
	if (r == NULL)
		return;
	secrets_wipe(r);
	if (r->init != NULL) {
		free(r->init->sum);
		free(r->init->tmp);
		free(r->init->sum_packed);
		sodium_memzero(r->init, sizeof(*r->init));
		free(r->init);
	}
	if (r->snapshot != NULL)
		sodium_memzero(r->snapshot, (size_t)r->cp.dim * sizeof(float));
	free(r->avg);
	if (r->input_ring != NULL)
		sodium_memzero(r->input_ring, r->n * sizeof(uint32_t));
	free(r->snapshot);
	free(r->input_ring);
	free(r->masked);
	free(r->result);
	free(r->packed);
	free(r->agg);
	free(r->agg_packed);
	free(r->parts_packed);
	if (r->lq != NULL)
		sodium_memzero(r->lq, LOCAL_QUEUE * sizeof(*r->lq)); /* a SEEDS may be there */
	free(r->lq);
	sodium_memzero(r, sizeof(*r));
	free(r);
}

/* --- member part ---------------------------------------------------------- */

static void member_abort(struct round *r, struct round_outbox *ob, enum msg_reason reason,
                         const char *why, bool notify);
static void init_abort(struct round *r, struct round_outbox *ob, enum msg_reason reason,
                       const char *why);
static void member_decode(struct round *r, struct round_outbox *ob, uint64_t now);
static int scatter_setup(struct round *r);
static int scatter_send_parts(struct round *r, struct round_outbox *ob);
static void scatter_try_aggregate(struct round *r, struct round_outbox *ob, uint64_t now);
static int seeds_apply(const struct round *r, uint32_t *v, const struct msg_seeds *sd,
                       const struct msg_eph_keys *keys, uint32_t alive, size_t first, size_t len);

/* Fresh keys and seed for this attempt, signed; ACCEPT to the initiator. */
static int member_start(struct round *r, struct round_outbox *ob, uint64_t now)
{
	struct seal_eph share;
	struct msg m;

	if (mask_keypair(r->mask_pk, r->sec->mask_sk) != 0)
		return -ENOMEM;
	seal_eph_generate(&share);
	memcpy(r->share_pk, share.pk, 32);
	memcpy(r->sec->share_sk, share.sk, 32);
	sodium_memzero(&share, sizeof(share));
	randombytes_buf(r->sec->seed, sizeof(r->sec->seed));
	if (shamir_seed_commit(r->commit, r->sec->seed, r->mask_pk, &r->mr) != 0)
		return -ENOMEM;
	msg_init(&m, r, MSG_ACCEPT);
	m.u.accept.index = r->me;
	m.u.accept.keys.flags = r->flags;
	memcpy(m.u.accept.keys.mask_pk, r->mask_pk, 32);
	memcpy(m.u.accept.keys.share_pk, r->share_pk, 32);
	memcpy(m.u.accept.keys.seed_commit, r->commit, 32);
	seal_eph_sign(m.u.accept.keys.sig, r->id, r->rid, r->attempt, r->flags, r->mask_pk,
	              r->share_pk, r->commit);
	r->mphase = M_WAIT_KEYS;
	r->mdeadline = now + member_timeout(r);
	member_send(r, ob, &m);
	return 0;
}

static bool keys_valid(const struct round *r, uint8_t idx, const struct msg_eph_keys *k)
{
	return seal_eph_verify(k->sig, r->members[idx], r->rid, r->attempt, k->flags, k->mask_pk,
	                       k->share_pk, k->seed_commit);
}

static void member_on_keys(struct round *r, struct round_outbox *ob, const struct msg_keys *mk,
                           uint64_t now)
{
	struct shamir_share self_sh[MAXM], pair_sh[MAXM];
	struct msg m;
	int last = -1;
	bool mine = false;

	if (r->mphase != M_WAIT_KEYS)
		return;
	if (mk->n < r->t || mk->n > r->k)
		goto bad;
	for (uint8_t i = 0; i < mk->n; i++) {
		uint8_t idx = mk->entries[i].index;
		const struct msg_eph_keys *k = &mk->entries[i].keys;

		if ((int)idx <= last || idx >= r->k || !keys_valid(r, idx, k))
			goto bad;
		for (uint8_t j = 0; j < i; j++) {
			if (memcmp(mk->entries[j].keys.mask_pk, k->mask_pk, 32) == 0 ||
			    memcmp(mk->entries[j].keys.share_pk, k->share_pk, 32) == 0)
				goto bad;
		}
		if (idx == r->me) {
			if (k->flags != r->flags || memcmp(k->mask_pk, r->mask_pk, 32) != 0 ||
			    memcmp(k->share_pk, r->share_pk, 32) != 0 ||
			    memcmp(k->seed_commit, r->commit, 32) != 0)
				goto bad;
			mine = true;
		}
		last = idx;
		r->roster[idx] = *k;
		r->in_u1[idx] = true;
	}
	if (!mine)
		goto bad;
	if (!(r->flags & MSG_EPH_F_KNOWN) && !fresh_ok(r, r->in_u1, r->roster)) {
		/* Any sum of these members would leave our input nearly alone. */
		member_abort(r, ob, MSG_REASON_PRIVACY, "too few fresh inputs", true);
		return;
	}
	/* t-of-k shares of the seed and of the mask key; holder i gets x = i + 1. */
	if (shamir_split(self_sh, r->k, r->t, r->sec->seed) != 0 ||
	    shamir_split(pair_sh, r->k, r->t, r->sec->mask_sk) != 0)
		goto fail;
	msg_init(&m, r, MSG_SHARES);
	for (uint8_t v = 0; v < r->k; v++) {
		struct shamir_pair p;

		if (!r->in_u1[v])
			continue;
		p.self = self_sh[v];
		p.pair = pair_sh[v];
		if (v == r->me) {
			r->sec->held[v] = p;
		} else {
			struct msg_share *e = &m.u.shares.entries[m.u.shares.n++];

			if (shamir_box_seal(r->boxes_out[v], &p, r->me, v, r->sec->share_sk,
			                    r->share_pk, r->roster[v].share_pk, &r->mr) != 0) {
				sodium_memzero(&p, sizeof(p));
				goto fail;
			}
			e->from = r->me;
			e->to = v;
			e->blob.ptr = r->boxes_out[v];
			e->blob.len = SHAMIR_BOX_BYTES;
		}
		sodium_memzero(&p, sizeof(p));
	}
	sodium_memzero(self_sh, sizeof(self_sh));
	sodium_memzero(pair_sh, sizeof(pair_sh));
	r->mphase = M_WAIT_SHARES;
	r->mdeadline = now + member_timeout(r);
	member_send(r, ob, &m);
	return;
bad:
	member_abort(r, ob, MSG_REASON_BAD_MESSAGE, "bad KEYS", true);
	return;
fail:
	sodium_memzero(self_sh, sizeof(self_sh));
	sodium_memzero(pair_sh, sizeof(pair_sh));
	member_abort(r, ob, MSG_REASON_INTERNAL, "sharing failed", true);
}

static void member_on_shares(struct round *r, struct round_outbox *ob, const struct msg_shares *ms,
                             uint64_t now)
{
	uint8_t peers[MAXM][MASK_PK_BYTES];
	size_t npeers = 0;
	struct msg m;
	bool seen[MAXM] = {false};

	if (r->mphase != M_WAIT_SHARES)
		return;
	for (uint8_t i = 0; i < ms->n; i++) {
		const struct msg_share *e = &ms->entries[i];
		struct shamir_pair p;

		if (e->to != r->me || e->from >= r->k || e->from == r->me || !r->in_u1[e->from] ||
		    seen[e->from] || e->blob.len != SHAMIR_BOX_BYTES)
			goto bad;
		if (shamir_box_open(&p, e->blob.ptr, e->from, r->me, r->sec->share_sk, r->share_pk,
		                    r->roster[e->from].share_pk, &r->mr) != 0 ||
		    p.self.x != r->me + 1) {
			sodium_memzero(&p, sizeof(p));
			goto bad;
		}
		r->sec->held[e->from] = p;
		sodium_memzero(&p, sizeof(p));
		seen[e->from] = true;
	}
	seen[r->me] = true;
	if (count(seen, r->k) < r->t) {
		member_abort(r, ob, MSG_REASON_TOO_FEW, "too few shares", true);
		return;
	}
	for (uint8_t v = 0; v < r->k; v++) {
		r->in_u2[v] = seen[v];
		if (seen[v])
			memcpy(peers[npeers++], r->roster[v].mask_pk, MASK_PK_BYTES);
	}
	/* The masked input: encoded vector + self mask +- pairwise masks with U2. */
	memcpy(r->masked, r->input_ring, r->n * sizeof(uint32_t));
	if (mask_member_apply(r->masked, r->segs, r->nseg, r->sec->seed, r->sec->mask_sk,
	                      r->mask_pk, (const uint8_t(*)[MASK_PK_BYTES])peers, npeers,
	                      &r->mr) != 0 ||
	    codec_pack(r->packed, r->packed_len, &r->cp, r->masked) != 0) {
		member_abort(r, ob, MSG_REASON_INTERNAL, "masking failed", true);
		return;
	}
	msg_init(&m, r, MSG_MASKED);
	m.u.masked.index = r->me;
	m.u.masked.weight = 0; /* the weight travels inside the masked vector */
	if (r->path == MSG_PATH_STAR) {
		m.u.masked.n_values = (uint32_t)r->n;
		m.u.masked.vector.ptr = r->packed;
		m.u.masked.vector.len = r->packed_len;
	} /* scatter: only "alive"; the vector goes out in parts once the split is signed */
	r->mphase = M_WAIT_SPLIT;
	r->mdeadline = now + member_timeout(r);
	member_send(r, ob, &m);
	return;
bad:
	member_abort(r, ob, MSG_REASON_BAD_MESSAGE, "bad SHARES", true);
}

/*
 * The signing rule (R1). We sign one split per attempt, and only one that
 * splits our U2 exactly into alive and dropped, keeps us alive, leaves at
 * least max(t, 3) alive and, if our input is fresh, enough fresh inputs in
 * the sum. A repeat of the split we signed gets the same signature again.
 */
static void member_on_split(struct round *r, struct round_outbox *ob, const struct msg_split *q,
                            uint64_t now)
{
	bool alive[MAXM] = {false}, dropped[MAXM] = {false};
	uint32_t a, d;
	struct msg m;

	if (r->mphase != M_WAIT_SPLIT && r->mphase != M_WAIT_UNMASK)
		return;
	for (uint8_t i = 0; i < q->n_alive; i++) {
		if (q->alive[i] >= r->k)
			goto refuse;
		alive[q->alive[i]] = true;
	}
	for (uint8_t i = 0; i < q->n_dropped; i++) {
		if (q->dropped[i] >= r->k)
			goto refuse;
		dropped[q->dropped[i]] = true;
	}
	a = bits_of(alive, r->k);
	d = bits_of(dropped, r->k);
	if (r->signed_split) {
		if (a != r->sig_alive || d != r->sig_dropped)
			goto refuse; /* a second, different split in one attempt */
		goto send;
	}
	for (uint8_t u = 0; u < r->k; u++) {
		if ((alive[u] || dropped[u]) != r->in_u2[u])
			goto refuse;
	}
	if (!alive[r->me] || count(alive, r->k) < r->t || count(alive, r->k) < MSG_MIN_MEMBERS)
		goto refuse;
	if (!(r->flags & MSG_EPH_F_KNOWN) && !fresh_ok(r, alive, r->roster)) {
		member_abort(r, ob, MSG_REASON_PRIVACY, "too few fresh inputs in the sum", true);
		return;
	}
	transcript_of(r->transcript, r, r->in_u1, r->roster);
	seal_split_sign(r->sig, r->id, r->rid, r->attempt, r->transcript, a, d);
	r->signed_split = true;
	r->sig_alive = a;
	r->sig_dropped = d;
	if (r->path == MSG_PATH_SCATTER && scatter_setup(r) != 0) {
		member_abort(r, ob, MSG_REASON_INTERNAL, "out of memory", true);
		return;
	}
	r->mphase = M_WAIT_UNMASK;
	r->mdeadline = now + member_timeout(r);
send:
	msg_init(&m, r, MSG_SPLIT_SIG);
	m.u.split_sig.index = r->me;
	memcpy(m.u.split_sig.sig, r->sig, sizeof(r->sig));
	member_send(r, ob, &m);
	return;
refuse:
	log_warnx("round %016llx: refusing to sign a split that could reveal an input",
	          (unsigned long long)r->rid);
	member_abort(r, ob, MSG_REASON_REFUSED, "split refused", true);
}

static void member_send_resp(struct round *r, struct round_outbox *ob)
{
	struct msg m;

	msg_init(&m, r, MSG_UNMASK_RESP);
	m.u.unmask_resp.index = r->me;
	for (uint8_t u = 0; u < r->k; u++) {
		if (!r->in_u2[u])
			continue;
		m.u.unmask_resp.entries[m.u.unmask_resp.n].owner = u;
		m.u.unmask_resp.entries[m.u.unmask_resp.n].share.ptr = r->resp_shares[u];
		m.u.unmask_resp.entries[m.u.unmask_resp.n].share.len = SHARE_WIRE_BYTES;
		m.u.unmask_resp.n++;
	}
	member_send(r, ob, &m);
}

/*
 * The reveal rule (R2, R3). We reveal only under the split we signed, and
 * only once every member it lists as alive signed that same split over the
 * same transcript: self-mask shares of the alive members, mask-key shares
 * of the dropped ones. As all of a split's alive set must sign it, and two
 * such sets of at least t members share no honest member when 2t > k + c,
 * every honest member reveals under the same split, whatever the initiator
 * shows whom (docs/security.md has the argument).
 */
static void member_on_unmask(struct round *r, struct round_outbox *ob,
                             const struct msg_unmask_req *q, uint64_t now)
{
	const struct msg_split *sp = &q->split;
	uint32_t a, d, signers = 0;

	if (r->mphase != M_WAIT_UNMASK && !(r->mphase == M_WAIT_RESULT && r->answered))
		return;
	for (uint8_t i = 0; i < sp->n_alive; i++) {
		if (sp->alive[i] >= r->k)
			goto refuse;
	}
	for (uint8_t i = 0; i < sp->n_dropped; i++) {
		if (sp->dropped[i] >= r->k)
			goto refuse;
	}
	a = bits_of_list(sp->alive, sp->n_alive);
	d = bits_of_list(sp->dropped, sp->n_dropped);
	if (!r->signed_split || a != r->sig_alive || d != r->sig_dropped)
		goto refuse; /* not the split we signed */
	if (r->answered) {
		member_send_resp(r, ob);
		return;
	}
	for (uint8_t i = 0; i < q->n_sigs; i++) {
		uint8_t v = q->sigs[i].index;

		if (v >= r->k || !((a >> v) & 1) ||
		    !seal_split_verify(q->sigs[i].sig, r->members[v], r->rid, r->attempt,
		                       r->transcript, a, d))
			goto refuse;
		signers |= 1u << v;
	}
	if (signers != a)
		goto refuse; /* an alive member did not sign this split */
	for (uint8_t u = 0; u < r->k; u++) {
		const struct shamir_share *s;

		if (!r->in_u2[u])
			continue;
		s = (a >> u) & 1 ? &r->sec->held[u].self : &r->sec->held[u].pair;
		r->resp_shares[u][0] = s->x;
		memcpy(r->resp_shares[u] + 1, s->y, SHAMIR_SECRET_BYTES);
		r->ans_alive[u] = (a >> u) & 1;
	}
	r->answered = true;
	r->mphase = M_WAIT_RESULT;
	r->mdeadline = now + member_timeout(r);
	member_send_resp(r, ob);
	if (r->path == MSG_PATH_SCATTER) {
		/* Every alive member signed this split: its aggregators may see our parts. */
		if (scatter_send_parts(r, ob) != 0) {
			member_abort(r, ob, MSG_REASON_INTERNAL, "packing a part failed", true);
			return;
		}
		scatter_try_aggregate(r, ob, now);
	}
	return;
refuse:
	log_warnx("round %016llx: refusing an unmask request that could reveal an input",
	          (unsigned long long)r->rid);
	member_abort(r, ob, MSG_REASON_REFUSED, "unmask request refused", true);
}

/* --- scatter path ------------------------------------------------------------ */

static uint32_t ring_mask(uint32_t w)
{
	return w >= 32 ? UINT32_MAX : (1u << w) - 1;
}

/* acc[0..len) += v[0..len) in the ring, for the elements [first, first + len). */
static void ring_add_range(const struct round *r, uint32_t *acc, const uint32_t *v, size_t first,
                           size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i < r->nseg && len > 0; i++) {
		size_t end = start + r->segs[i].len;

		if (first < end) {
			uint32_t m = ring_mask(r->segs[i].width);
			size_t c = MIN(end - first, len);

			for (size_t j = 0; j < c; j++)
				acc[j] = (acc[j] + v[j]) & m;
			acc += c;
			v += c;
			first += c;
			len -= c;
		}
		start = end;
	}
}

/*
 * Once this member signed its split: the alive members in index order, and
 * the part each sums. Parts are contiguous, 64-value aligned and as equal as
 * that allows (the last ones may be empty when the vector is short).
 */
static int scatter_setup(struct round *r)
{
	size_t base, first;

	r->n_alive = 0;
	for (uint8_t u = 0; u < r->k; u++) {
		if ((r->sig_alive >> u) & 1) {
			if (u == r->me)
				r->my_part = r->n_alive;
			r->alive[r->n_alive++] = u;
		}
	}
	base = (r->n + r->n_alive - 1) / r->n_alive;
	base = (base + 63) / 64 * 64;
	for (uint8_t p = 0; p < r->n_alive; p++) {
		first = MIN((size_t)p * base, r->n);
		r->part_first[p] = (uint32_t)first;
		r->part_len[p] = (uint32_t)MIN(base, r->n - first);
	}
	first = r->part_first[r->my_part];
	r->agg_sent = r->part_len[r->my_part] == 0; /* nothing to sum */
	r->parts_packed = malloc(r->packed_len + MAXM);
	if (r->parts_packed == NULL)
		return -ENOMEM;
	if (r->agg_sent)
		return 0;
	r->agg = calloc(r->part_len[r->my_part], sizeof(uint32_t));
	r->agg_packed = malloc(codec_range_bytes(&r->cp, first, r->part_len[r->my_part]));
	return r->agg == NULL || r->agg_packed == NULL ? -ENOMEM : 0;
}

/* Our masked vector, part p to alive[p]; our own part straight into the sum. */
static int scatter_send_parts(struct round *r, struct round_outbox *ob)
{
	size_t off = 0;
	struct msg m;

	for (uint8_t p = 0; p < r->n_alive; p++) {
		size_t first = r->part_first[p], len = r->part_len[p], nb;

		if (len == 0)
			continue;
		if (p == r->my_part) {
			ring_add_range(r, r->agg, r->masked + first, first, len);
			r->part_in[p] = true;
			continue;
		}
		nb = codec_range_bytes(&r->cp, first, len);
		if (codec_pack_range(r->parts_packed + off, nb, &r->cp, first, len,
		                     r->masked + first) != 0)
			return -EINVAL;
		msg_init(&m, r, MSG_PART);
		m.u.part.index = r->me;
		m.u.part.part = p;
		m.u.part.first = (uint32_t)first;
		m.u.part.n_values = (uint32_t)len;
		m.u.part.vector.ptr = r->parts_packed + off;
		m.u.part.vector.len = nb;
		out_push(ob, r->alive[p], &m);
		off += nb;
	}
	return 0;
}

static int alive_pos(const struct round *r, uint8_t u)
{
	for (uint8_t q = 0; q < r->n_alive; q++) {
		if (r->alive[q] == u)
			return q;
	}
	return -1;
}

/* Every part of the sum is in: decode it as a RESULT would be. */
static void scatter_try_finish(struct round *r, struct round_outbox *ob, uint64_t now)
{
	for (uint8_t p = 0; p < r->n_alive; p++) {
		if (r->part_len[p] > 0 && !r->sum_in[p])
			return;
	}
	member_decode(r, ob, now);
}

/*
 * Our part of every alive member's masked vector and the initiator's SEEDS
 * are in: unmask our part's sum (the same keys the initiator of a star round
 * applies to the whole sum) and send it to every alive member.
 */
static void scatter_try_aggregate(struct round *r, struct round_outbox *ob, uint64_t now)
{
	size_t first = r->part_first[r->my_part], len = r->part_len[r->my_part], nb;
	struct msg m;
	int rc;

	if (r->agg_sent || !r->seeds_in || r->sec == NULL)
		goto done;
	for (uint8_t q = 0; q < r->n_alive; q++) {
		if (!r->part_in[q])
			return;
	}
	/* the masks of our part only: each aggregator does 1/a of a star initiator's work */
	rc = seeds_apply(r, r->agg, &r->sec->seeds, r->roster, r->sig_alive, first, len);
	nb = codec_range_bytes(&r->cp, first, len);
	if (rc != 0 || codec_pack_range(r->agg_packed, nb, &r->cp, first, len, r->agg) != 0) {
		member_abort(r, ob, MSG_REASON_INTERNAL, "unmasking a part failed", true);
		return;
	}
	msg_init(&m, r, MSG_PART_SUM);
	m.u.part.index = r->me;
	m.u.part.part = r->my_part;
	m.u.part.first = (uint32_t)first;
	m.u.part.n_values = (uint32_t)len;
	m.u.part.vector.ptr = r->agg_packed;
	m.u.part.vector.len = nb;
	for (uint8_t q = 0; q < r->n_alive; q++) {
		if (q != r->my_part)
			out_push(ob, r->alive[q], &m);
	}
	memcpy(r->result + first, r->agg, len * sizeof(uint32_t));
	r->sum_in[r->my_part] = true;
	r->agg_sent = true;
done:
	if (r->agg_sent && r->mphase == M_WAIT_RESULT)
		scatter_try_finish(r, ob, now);
}

/* PART: alive member `from`'s masked values of our part. */
static void scatter_on_part(struct round *r, struct round_outbox *ob, uint8_t from,
                            const struct msg_part *pt, uint64_t now)
{
	size_t first, len;
	uint32_t *tmp;
	int q;

	if (r->path != MSG_PATH_SCATTER || !r->signed_split ||
	    (r->mphase != M_WAIT_UNMASK && r->mphase != M_WAIT_RESULT))
		return;
	q = alive_pos(r, from);
	if (q < 0 || r->part_in[q])
		return; /* not in the sum, or a repeat */
	first = r->part_first[r->my_part];
	len = r->part_len[r->my_part];
	if (pt->index != from || pt->part != r->my_part || pt->first != first ||
	    pt->n_values != len || len == 0 ||
	    pt->vector.len != codec_range_bytes(&r->cp, first, len))
		goto bad;
	tmp = malloc(len * sizeof(uint32_t));
	if (tmp == NULL) {
		member_abort(r, ob, MSG_REASON_INTERNAL, "out of memory", true);
		return;
	}
	if (codec_unpack_range(tmp, &r->cp, first, len, pt->vector.ptr, pt->vector.len) != 0) {
		free(tmp);
		goto bad;
	}
	ring_add_range(r, r->agg, tmp, first, len);
	free(tmp);
	r->part_in[q] = true;
	if (r->mphase == M_WAIT_RESULT)
		scatter_try_aggregate(r, ob, now);
	return;
bad:
	member_abort(r, ob, MSG_REASON_BAD_MESSAGE, "bad PART", true);
}

/*
 * SEEDS: what unmasks the sum, for the split we signed and answered: the
 * self-mask seed of every alive member and the mask key of every dropped
 * one, each checked against the keys it signed (seed commitment, public
 * key), so a wrong one cannot go into a part's sum unnoticed.
 */
static void scatter_on_seeds(struct round *r, struct round_outbox *ob, const struct msg_seeds *sd,
                             uint64_t now)
{
	uint8_t c[SHAMIR_COMMIT_BYTES], pk[MASK_PK_BYTES];
	uint8_t expect = 0;

	if (r->path != MSG_PATH_SCATTER || !r->answered || r->seeds_in ||
	    r->mphase != M_WAIT_RESULT || r->sec == NULL)
		return;
	for (uint8_t u = 0; u < r->k; u++)
		expect += r->in_u2[u];
	if (sd->n != expect)
		goto bad;
	for (uint8_t i = 0; i < sd->n; i++) {
		uint8_t u = sd->entries[i].owner;
		bool alive;

		if (u >= r->k || !r->in_u2[u])
			goto bad;
		alive = (r->sig_alive >> u) & 1;
		if (sd->entries[i].kind != (alive ? MSG_SEED_SELF : MSG_SEED_PAIR_SK))
			goto bad;
		if (alive ? shamir_seed_commit(c, sd->entries[i].key, r->roster[u].mask_pk,
		                               &r->mr) != 0 ||
		                    sodium_memcmp(c, r->roster[u].seed_commit, sizeof(c)) != 0
		          : mask_public_of(pk, sd->entries[i].key) != 0 ||
		                    memcmp(pk, r->roster[u].mask_pk, MASK_PK_BYTES) != 0)
			goto bad;
	}
	r->sec->seeds = *sd;
	r->seeds_in = true;
	r->mdeadline = now + member_timeout(r);
	scatter_try_aggregate(r, ob, now);
	return;
bad:
	member_abort(r, ob, MSG_REASON_BAD_MESSAGE, "bad SEEDS", true);
}

/* PART_SUM: the unmasked sum of part p, from its aggregator. */
static void scatter_on_sum(struct round *r, struct round_outbox *ob, uint8_t from,
                           const struct msg_part *pt, uint64_t now)
{
	size_t first, len;

	if (r->path != MSG_PATH_SCATTER || !r->answered || r->mphase != M_WAIT_RESULT)
		return;
	if (pt->part >= r->n_alive || r->alive[pt->part] != from || r->sum_in[pt->part])
		return; /* not this part's aggregator, or a repeat */
	first = r->part_first[pt->part];
	len = r->part_len[pt->part];
	if (pt->index != from || pt->first != first || pt->n_values != len || len == 0 ||
	    codec_unpack_range(r->result + first, &r->cp, first, len, pt->vector.ptr,
	                       pt->vector.len) != 0) {
		member_abort(r, ob, MSG_REASON_BAD_MESSAGE, "bad PART_SUM", true);
		return;
	}
	r->sum_in[pt->part] = true;
	if (r->agg_sent)
		scatter_try_finish(r, ob, now);
}

static void member_on_result(struct round *r, struct round_outbox *ob, const struct msg_result *res,
                             uint64_t now)
{
	bool counted[MAXM] = {false};

	if (r->mphase != M_WAIT_RESULT || r->path != MSG_PATH_STAR)
		return;
	for (uint8_t i = 0; i < res->n_counted; i++) {
		if (res->counted[i] >= r->k || counted[res->counted[i]])
			goto bad;
		counted[res->counted[i]] = true;
	}
	if (memcmp(counted, r->ans_alive, sizeof(counted)) != 0 || res->n_values != r->n ||
	    res->sum.len != r->packed_len ||
	    codec_unpack(r->result, &r->cp, res->sum.ptr, res->sum.len) != 0)
		goto bad;
	member_decode(r, ob, now);
	return;
bad:
	member_abort(r, ob, MSG_REASON_BAD_MESSAGE, "bad RESULT", true);
}

/*
 * The ring sum of the alive members' inputs is in r->result (from RESULT,
 * or assembled from PART_SUMs): decode it, verify it and say CHECKED with
 * its digest.
 */
static void member_decode(struct round *r, struct round_outbox *ob, uint64_t now)
{
	struct msg m;
	uint8_t *packed;
	int rc;

	r->n_counted = 0;
	for (uint8_t u = 0; u < r->k; u++) {
		if (r->ans_alive[u])
			r->counted[r->n_counted++] = u;
	}
	secrets_wipe(r); /* every share this member will reveal is revealed */
	/*
	 * Decode now, against the snapshot, and verify (range and checksum):
	 * nobody applies until every counted member said its decode is right.
	 */
	r->avg = malloc((size_t)r->cp.dim * sizeof(float));
	if (r->avg == NULL) {
		member_abort(r, ob, MSG_REASON_INTERNAL, "out of memory", true);
		return;
	}
	/* Coordinates the round does not average keep the snapshot: delta 0. */
	memcpy(r->avg, r->snapshot, (size_t)r->cp.dim * sizeof(float));
	memset(&r->st, 0, sizeof(r->st));
	rc = codec_decode_sum(r->avg, &r->rho_sum, &r->cp, r->result, r->n_counted, r->snapshot,
	                      &r->st);
	if (rc == -ERANGE) {
		log_info("round %016llx: member %u cannot decode the sum (wrapped, %llu checksum "
		         "failures): nobody applies it",
		         (unsigned long long)r->rid, r->me, (unsigned long long)r->st.check_failed);
		member_abort(r, ob, MSG_REASON_WRAP, "decode wrapped", true);
		return;
	}
	if (rc != 0) {
		member_abort(r, ob, MSG_REASON_BAD_MESSAGE, "RESULT does not decode", true);
		return;
	}
	packed = malloc(r->packed_len ? r->packed_len : 1);
	if (packed == NULL || codec_pack(packed, r->packed_len, &r->cp, r->result) != 0) {
		free(packed);
		member_abort(r, ob, MSG_REASON_INTERNAL, "packing the sum failed", true);
		return;
	}
	crypto_generichash(r->digest, sizeof(r->digest), packed, r->packed_len, NULL, 0);
	free(packed);
	r->decoded = true;
	msg_init(&m, r, MSG_CHECKED);
	m.u.ack.index = r->me;
	memcpy(m.u.ack.digest, r->digest, sizeof(r->digest));
	r->mphase = M_WAIT_COMMIT;
	r->mdeadline = now + member_timeout(r);
	member_send(r, ob, &m);
}

/* COMMIT names the sum every counted member decoded: ours, or we apply nothing. */
static void member_on_commit(struct round *r, struct round_outbox *ob, const struct msg_ack *c)
{
	if (r->mphase != M_WAIT_COMMIT)
		return;
	if (sodium_memcmp(c->digest, r->digest, sizeof(r->digest)) != 0) {
		member_abort(r, ob, MSG_REASON_BAD_MESSAGE, "COMMIT names another sum", true);
		return;
	}
	r->mphase = M_END;
	r->status = ROUND_DONE;
}

static void member_abort(struct round *r, struct round_outbox *ob, enum msg_reason reason,
                         const char *why, bool notify)
{
	struct msg m;

	if (r->mphase == M_END)
		return;
	log_info("round %016llx: member %u aborts: %s", (unsigned long long)r->rid, r->me, why);
	r->mphase = M_END;
	r->status = ROUND_ABORTED;
	r->reason = (int)reason;
	secrets_wipe(r);
	if (r->init != NULL) {
		/* our own member part cannot go on: the round cannot either */
		init_abort(r, ob, reason, why);
		return;
	}
	if (notify) {
		msg_init(&m, r, MSG_ABORT);
		reason_text(&m.u.abort, reason, why);
		out_push(ob, 0, &m);
	}
}

static void member_dispatch(struct round *r, struct round_outbox *ob, uint8_t from,
                            const struct msg *m, uint64_t now)
{
	switch (m->type) {
	case MSG_PART:
		scatter_on_part(r, ob, from, &m->u.part, now);
		return;
	case MSG_PART_SUM:
		scatter_on_sum(r, ob, from, &m->u.part, now);
		return;
	default:
		break;
	}
	if (from != 0)
		return; /* the rest comes from the initiator only */
	switch (m->type) {
	case MSG_SEEDS:
		scatter_on_seeds(r, ob, &m->u.seeds, now);
		break;
	case MSG_KEYS:
		member_on_keys(r, ob, &m->u.keys, now);
		break;
	case MSG_SHARES:
		member_on_shares(r, ob, &m->u.shares, now);
		break;
	case MSG_SPLIT:
		member_on_split(r, ob, &m->u.split, now);
		break;
	case MSG_UNMASK_REQ:
		member_on_unmask(r, ob, &m->u.unmask_req, now);
		break;
	case MSG_RESULT:
		member_on_result(r, ob, &m->u.result, now);
		break;
	case MSG_COMMIT:
		member_on_commit(r, ob, &m->u.ack);
		break;
	case MSG_ABORT:
		if (r->mphase != M_END && r->init == NULL)
			member_abort(r, ob, (enum msg_reason)m->u.abort.reason, "initiator aborted",
			             false);
		break;
	default:
		break;
	}
}

/* --- initiator part ------------------------------------------------------- */

static void init_abort(struct round *r, struct round_outbox *ob, enum msg_reason reason,
                       const char *why)
{
	struct init_state *s = r->init;
	struct msg m;

	if (s->phase == I_END)
		return;
	log_info("round %016llx: initiator aborts: %s", (unsigned long long)r->rid, why);
	s->phase = I_END;
	msg_init(&m, r, MSG_ABORT);
	reason_text(&m.u.abort, reason, why);
	for (uint8_t v = 1; v < r->k; v++) {
		if (!s->gone[v])
			out_push(ob, v, &m);
	}
	r->mphase = M_END;
	r->status = ROUND_ABORTED;
	r->reason = (int)reason;
	secrets_wipe(r);
}

/* Tells members that are no longer part of the round that it is over for them. */
static void init_exclude(struct round *r, struct round_outbox *ob, const bool *keep,
                         const bool *was)
{
	struct msg m;

	msg_init(&m, r, MSG_ABORT);
	reason_text(&m.u.abort, MSG_REASON_TIMEOUT, "dropped from the round");
	for (uint8_t v = 1; v < r->k; v++) {
		if (was[v] && !keep[v] && !r->init->gone[v]) {
			out_push(ob, v, &m);
			r->init->gone[v] = true;
		}
	}
}

static void init_next_phase(struct round *r, enum iphase phase, uint64_t now)
{
	r->init->phase = phase;
	r->init->deadline = now + r->phase_ms;
	memset(r->init->in, 0, sizeof(r->init->in));
}

static void init_end_accepts(struct round *r, struct round_outbox *ob, uint64_t now)
{
	struct init_state *s = r->init;
	bool invited[MAXM];
	struct msg m;

	memcpy(s->u1, s->in, sizeof(s->u1));
	if (count(s->u1, r->k) < r->t) {
		init_abort(r, ob, MSG_REASON_TOO_FEW, "too few members accepted");
		return;
	}
	if (!fresh_ok(r, s->u1, s->keys)) {
		init_abort(r, ob, MSG_REASON_PRIVACY, "too few fresh inputs for a private sum");
		return;
	}
	for (uint8_t v = 0; v < r->k; v++)
		invited[v] = true;
	init_exclude(r, ob, s->u1, invited);
	msg_init(&m, r, MSG_KEYS);
	for (uint8_t v = 0; v < r->k; v++) {
		if (!s->u1[v])
			continue;
		m.u.keys.entries[m.u.keys.n].index = v;
		m.u.keys.entries[m.u.keys.n].keys = s->keys[v];
		m.u.keys.n++;
	}
	init_next_phase(r, I_SHARES, now);
	for (uint8_t v = 0; v < r->k; v++) {
		if (s->u1[v])
			init_send(r, ob, v, &m);
	}
}

static void init_end_shares(struct round *r, struct round_outbox *ob, uint64_t now)
{
	struct init_state *s = r->init;
	struct msg m;

	memcpy(s->u2, s->in, sizeof(s->u2));
	if (count(s->u2, r->k) < r->t) {
		init_abort(r, ob, MSG_REASON_TOO_FEW, "too few members sent shares");
		return;
	}
	init_exclude(r, ob, s->u2, s->u1);
	memset(s->sum, 0, r->n * sizeof(uint32_t));
	init_next_phase(r, I_MASKED, now);
	for (uint8_t v = 0; v < r->k; v++) {
		if (!s->u2[v])
			continue;
		msg_init(&m, r, MSG_SHARES);
		for (uint8_t u = 0; u < r->k; u++) {
			struct msg_share *e;

			if (!s->u2[u] || u == v)
				continue;
			e = &m.u.shares.entries[m.u.shares.n++];
			e->from = u;
			e->to = v;
			e->blob.ptr = s->boxes[u][v];
			e->blob.len = SHAMIR_BOX_BYTES;
		}
		init_send(r, ob, v, &m);
	}
}

static void init_end_masked(struct round *r, struct round_outbox *ob, uint64_t now)
{
	struct init_state *s = r->init;
	struct msg m;

	memcpy(s->u3, s->in, sizeof(s->u3));
	if (count(s->u3, r->k) < r->t) {
		init_abort(r, ob, MSG_REASON_TOO_FEW, "too few masked inputs");
		return;
	}
	init_exclude(r, ob, s->u3, s->u2);
	msg_init(&m, r, MSG_SPLIT);
	for (uint8_t u = 0; u < r->k; u++) {
		if (s->u3[u])
			m.u.split.alive[m.u.split.n_alive++] = u;
		else if (s->u2[u])
			m.u.split.dropped[m.u.split.n_dropped++] = u;
	}
	s->split_alive = bits_of_list(m.u.split.alive, m.u.split.n_alive);
	s->split_dropped = bits_of_list(m.u.split.dropped, m.u.split.n_dropped);
	transcript_of(s->transcript, r, s->u1, s->keys);
	init_next_phase(r, I_SPLIT, now);
	for (uint8_t v = 0; v < r->k; v++) {
		if (s->u3[v])
			init_send(r, ob, v, &m);
	}
}

/* Every alive member signed the split: ask them to reveal, signatures attached. */
static void init_end_split(struct round *r, struct round_outbox *ob, uint64_t now)
{
	struct init_state *s = r->init;
	struct msg m;

	for (uint8_t u = 0; u < r->k; u++) {
		if (s->u3[u] && !s->in[u]) {
			init_abort(r, ob, MSG_REASON_TOO_FEW,
			           "a counted member did not sign the split");
			return;
		}
	}
	msg_init(&m, r, MSG_UNMASK_REQ);
	for (uint8_t u = 0; u < r->k; u++) {
		if (s->u3[u])
			m.u.unmask_req.split.alive[m.u.unmask_req.split.n_alive++] = u;
		else if (s->u2[u])
			m.u.unmask_req.split.dropped[m.u.unmask_req.split.n_dropped++] = u;
		if (s->u3[u]) {
			struct msg_split_sig *e = &m.u.unmask_req.sigs[m.u.unmask_req.n_sigs++];
			e->index = u;
			memcpy(e->sig, s->split_sigs[u], MSG_SIG_BYTES);
		}
	}
	init_next_phase(r, I_UNMASK, now);
	for (uint8_t v = 0; v < r->k; v++) {
		if (s->u3[v])
			init_send(r, ob, v, &m);
	}
}

struct verify_self {
	const struct round *r;
	uint8_t owner;
};

static bool verify_seed(const uint8_t secret[32], void *arg)
{
	const struct verify_self *v = arg;
	const struct msg_eph_keys *k = &v->r->init->keys[v->owner];
	uint8_t c[SHAMIR_COMMIT_BYTES];
	bool ok;

	ok = shamir_seed_commit(c, secret, k->mask_pk, &v->r->mr) == 0 &&
	     sodium_memcmp(c, k->seed_commit, sizeof(c)) == 0;
	sodium_memzero(c, sizeof(c));
	return ok;
}

static bool verify_mask_sk(const uint8_t secret[32], void *arg)
{
	const struct verify_self *v = arg;
	uint8_t pk[MASK_PK_BYTES];

	return mask_public_of(pk, secret) == 0 &&
	       memcmp(pk, v->r->init->keys[v->owner].mask_pk, MASK_PK_BYTES) == 0;
}

/*
 * Bonawitz round 4, first half: from the revealed shares, the self-mask seed
 * of every alive member and the mask key of every dropped one, each checked
 * against what its owner signed. The caller wipes *sd.
 */
static int init_reconstruct(struct round *r, struct msg_seeds *sd)
{
	struct init_state *s = r->init;
	struct shamir_share sh[MAXM];
	int rc = 0;

	memset(sd, 0, sizeof(*sd));
	for (uint8_t u = 0; u < r->k && rc == 0; u++) {
		struct verify_self v = {r, u};
		size_t m = 0;

		if (!s->u2[u])
			continue;
		for (uint8_t h = 0; h < r->k; h++) {
			if (s->rev_have[u][h])
				sh[m++] = s->rev[u][h];
		}
		if (m < r->t) {
			rc = -EBADMSG;
			break;
		}
		sd->entries[sd->n].owner = u;
		sd->entries[sd->n].kind = s->u3[u] ? MSG_SEED_SELF : MSG_SEED_PAIR_SK;
		rc = shamir_combine_verified(sd->entries[sd->n].key, sh, m, r->t,
		                             s->u3[u] ? verify_seed : verify_mask_sk, &v);
		sd->n++;
	}
	sodium_memzero(sh, sizeof(sh));
	return rc;
}

/*
 * Bonawitz round 4, second half, on elements [first, first + len) of the sum
 * (v holds them: the whole sum, or an aggregator's part): minus each alive
 * member's self mask, plus what each dropped member would have added toward
 * each alive one.
 */
static int seeds_apply(const struct round *r, uint32_t *v, const struct msg_seeds *sd,
                       const struct msg_eph_keys *keys, uint32_t alive, size_t first, size_t len)
{
	uint8_t key[MASK_KEY_BYTES];
	int rc = 0;

	for (uint8_t i = 0; i < sd->n && rc == 0; i++) {
		uint8_t u = sd->entries[i].owner;

		if (sd->entries[i].kind == MSG_SEED_SELF) {
			rc = mask_self_key(key, sd->entries[i].key, keys[u].mask_pk, &r->mr);
			if (rc == 0)
				rc = mask_apply_range(v, r->segs, r->nseg, key, -1, first, len);
			continue;
		}
		for (uint8_t a = 0; a < r->k && rc == 0; a++) {
			int sign;

			if (!((alive >> a) & 1))
				continue;
			rc = mask_pair_key(key, &sign, sd->entries[i].key, keys[u].mask_pk,
			                   keys[a].mask_pk, &r->mr);
			if (rc == 0)
				rc = mask_apply_range(v, r->segs, r->nseg, key, sign, first, len);
		}
	}
	sodium_memzero(key, sizeof(key));
	return rc;
}

/* Removes the masks from the sum of U3's inputs (star path). */
static int init_unmask(struct round *r)
{
	struct msg_seeds *sd = sodium_malloc(sizeof(*sd));
	int rc;

	if (sd == NULL)
		return -ENOMEM;
	rc = init_reconstruct(r, sd);
	if (rc == 0)
		rc = seeds_apply(r, r->init->sum, sd, r->init->keys, bits_of(r->init->u3, r->k), 0,
		                 r->n);
	sodium_free(sd); /* wipes */
	return rc;
}

/* Scatter path: the aggregators unmask; SEEDS gives them what it takes. */
static void init_send_seeds(struct round *r, struct round_outbox *ob, uint64_t now)
{
	struct init_state *s = r->init;
	struct msg *m = sodium_malloc(sizeof(*m));

	if (m == NULL) {
		init_abort(r, ob, MSG_REASON_INTERNAL, "out of memory");
		return;
	}
	msg_init(m, r, MSG_SEEDS);
	if (init_reconstruct(r, &m->u.seeds) != 0) {
		sodium_free(m);
		init_abort(r, ob, MSG_REASON_BAD_MESSAGE, "unmasking failed");
		return;
	}
	init_next_phase(r, I_CHECK, now);
	for (uint8_t v = 0; v < r->k; v++) {
		if (s->u3[v])
			init_send(r, ob, v, m);
	}
	sodium_free(m); /* wipes; the copies in the outbox are the caller's to wipe */
}

static void init_end_unmask(struct round *r, struct round_outbox *ob, uint64_t now)
{
	struct init_state *s = r->init;
	struct msg m;

	if (count(s->in, r->k) < r->t) {
		init_abort(r, ob, MSG_REASON_TOO_FEW, "too few unmask responses");
		return;
	}
	if (r->path == MSG_PATH_SCATTER) {
		/* A member sends its parts with its answer: one missing, a part is too. */
		for (uint8_t u = 0; u < r->k; u++) {
			if (s->u3[u] && !s->in[u]) {
				init_abort(r, ob, MSG_REASON_TOO_FEW,
				           "an alive member did not answer: its parts are missing");
				return;
			}
		}
		init_send_seeds(r, ob, now);
		return;
	}
	if (init_unmask(r) != 0) {
		init_abort(r, ob, MSG_REASON_BAD_MESSAGE, "unmasking failed");
		return;
	}
	if (codec_pack(s->sum_packed, r->packed_len, &r->cp, s->sum) != 0) {
		init_abort(r, ob, MSG_REASON_INTERNAL, "packing the sum failed");
		return;
	}
	msg_init(&m, r, MSG_RESULT);
	for (uint8_t u = 0; u < r->k; u++) {
		if (s->u3[u])
			m.u.result.counted[m.u.result.n_counted++] = u;
	}
	m.u.result.n_values = (uint32_t)r->n;
	m.u.result.weight = 0;
	m.u.result.sum.ptr = s->sum_packed;
	m.u.result.sum.len = r->packed_len;
	init_next_phase(r, I_CHECK, now);
	for (uint8_t v = 0; v < r->k; v++) {
		if (s->u3[v])
			init_send(r, ob, v, &m);
	}
}

/*
 * Every counted member decoded the sum and verified it, or went silent (dead,
 * or its message was lost: it applies nothing either way). A member whose
 * decode wrapped sends ABORT instead, which aborts the round for everyone
 * (init_dispatch), so no wrapped decode is ever applied and the others do not
 * apply without it. COMMIT: apply.
 */
static void init_end_check(struct round *r, struct round_outbox *ob)
{
	struct init_state *s = r->init;
	struct msg m;

	/*
	 * Our own member part decoded too, and every CHECKED names its sum. On
	 * the scatter path a silent member need not be dead: an aggregator may
	 * have starved it of a part's sum. So there every counted member must
	 * have said CHECKED.
	 */
	for (uint8_t u = 0; u < r->k; u++) {
		if (s->u3[u] && !s->in[u] && (u == r->me || r->path == MSG_PATH_SCATTER)) {
			init_abort(r, ob, MSG_REASON_TOO_FEW,
			           "a counted member did not decode the sum");
			return;
		}
	}
	for (uint8_t u = 0; u < r->k; u++) {
		if (s->u3[u] && s->in[u] &&
		    sodium_memcmp(s->digest[u], s->digest[r->me], sizeof(s->digest[u])) != 0) {
			init_abort(r, ob, MSG_REASON_BAD_MESSAGE, "members decoded different sums");
			return;
		}
	}
	msg_init(&m, r, MSG_COMMIT);
	m.u.ack.index = 0;
	memcpy(m.u.ack.digest, s->digest[r->me], sizeof(m.u.ack.digest));
	s->phase = I_END;
	for (uint8_t v = 0; v < r->k; v++) {
		if (s->u3[v])
			init_send(r, ob, v, &m);
	}
}

/* Ends the current phase if everyone still expected has answered. */
static void init_maybe_advance(struct round *r, struct round_outbox *ob, uint64_t now,
                               bool deadline)
{
	struct init_state *s = r->init;
	const bool *expect = NULL;
	bool all = true;
	bool everyone[MAXM];

	switch (s->phase) {
	case I_ACCEPTS:
		for (uint8_t v = 0; v < r->k; v++)
			everyone[v] = true;
		expect = everyone;
		break;
	case I_SHARES:
		expect = s->u1;
		break;
	case I_MASKED:
		expect = s->u2;
		break;
	case I_SPLIT:
	case I_UNMASK:
	case I_CHECK:
		expect = s->u3;
		break;
	case I_END:
		return;
	}
	for (uint8_t v = 0; v < r->k; v++) {
		/* Scatter path: an alive member lost before it answered UNMASK or
		 * CHECK takes its parts, or its part's sum, with it: end the
		 * phase now (it aborts) instead of at its deadline. */
		if (r->path == MSG_PATH_SCATTER && (s->phase == I_UNMASK || s->phase == I_CHECK) &&
		    s->u3[v] && !s->in[v] && s->lost[v])
			deadline = true;
		/* A lost link ends any phase early except CHECK on the star path:
		 * there a counted member may still send ABORT (a wrapped decode)
		 * when its link is back, and then nobody may apply. (On the
		 * scatter path CHECK needs every counted member: lost, it aborts.) */
		if (expect[v] && !s->in[v] && !s->gone[v] &&
		    (!s->lost[v] || (s->phase == I_CHECK && r->path == MSG_PATH_STAR)))
			all = false;
	}
	if (!all && !deadline)
		return;
	switch (s->phase) {
	case I_ACCEPTS:
		init_end_accepts(r, ob, now);
		break;
	case I_SHARES:
		init_end_shares(r, ob, now);
		break;
	case I_MASKED:
		init_end_masked(r, ob, now);
		break;
	case I_SPLIT:
		init_end_split(r, ob, now);
		break;
	case I_UNMASK:
		init_end_unmask(r, ob, now);
		break;
	case I_CHECK:
		init_end_check(r, ob);
		break;
	case I_END:
		break;
	}
}

static void init_on_shares(struct round *r, uint8_t from, const struct msg_shares *ms)
{
	struct init_state *s = r->init;
	bool seen[MAXM] = {false};

	if (s->phase != I_SHARES || !s->u1[from] || s->in[from])
		return;
	if (ms->n != count(s->u1, r->k) - 1)
		return; /* malformed: the sender will be dropped at the deadline */
	for (uint8_t i = 0; i < ms->n; i++) {
		const struct msg_share *e = &ms->entries[i];

		if (e->from != from || e->to >= r->k || !s->u1[e->to] || e->to == from ||
		    seen[e->to] || e->blob.len != SHAMIR_BOX_BYTES)
			return;
		seen[e->to] = true;
	}
	for (uint8_t i = 0; i < ms->n; i++)
		memcpy(s->boxes[from][ms->entries[i].to], ms->entries[i].blob.ptr,
		       SHAMIR_BOX_BYTES);
	s->in[from] = true;
}

static void init_on_masked(struct round *r, uint8_t from, const struct msg_masked *mm)
{
	struct init_state *s = r->init;

	if (s->phase != I_MASKED || !s->u2[from] || s->in[from] || mm->index != from)
		return;
	if (r->path == MSG_PATH_SCATTER) {
		/* alive, its vector goes to the aggregators once the split is signed */
		if (mm->n_values == 0 && mm->vector.len == 0)
			s->in[from] = true;
		return;
	}
	if (mm->n_values != r->n || mm->vector.len != r->packed_len ||
	    codec_unpack(s->tmp, &r->cp, mm->vector.ptr, mm->vector.len) != 0)
		return; /* malformed input: not counted, the member is dropped */
	codec_ring_add(s->sum, s->tmp, &r->cp);
	s->in[from] = true;
}

/* A signature that does not verify is a member that cannot go on: abort. */
static void init_on_split_sig(struct round *r, struct round_outbox *ob, uint8_t from,
                              const struct msg_split_sig *ss)
{
	struct init_state *s = r->init;

	if (s->phase != I_SPLIT || !s->u3[from] || s->in[from])
		return;
	if (ss->index != from ||
	    !seal_split_verify(ss->sig, r->members[from], r->rid, r->attempt, s->transcript,
	                       s->split_alive, s->split_dropped)) {
		init_abort(r, ob, MSG_REASON_BAD_MESSAGE, "a split signature does not verify");
		return;
	}
	memcpy(s->split_sigs[from], ss->sig, MSG_SIG_BYTES);
	s->in[from] = true;
}

static void init_on_unmask_resp(struct round *r, uint8_t from, const struct msg_unmask_resp *mr)
{
	struct init_state *s = r->init;
	uint8_t expect = 0;

	if (s->phase != I_UNMASK || !s->u3[from] || s->in[from] || mr->index != from)
		return;
	for (uint8_t u = 0; u < r->k; u++)
		expect += s->u2[u];
	if (mr->n != expect)
		return;
	for (uint8_t i = 0; i < mr->n; i++) {
		uint8_t u = mr->entries[i].owner;

		if (u >= r->k || !s->u2[u] || (i > 0 && u <= mr->entries[i - 1].owner) ||
		    mr->entries[i].share.len != SHARE_WIRE_BYTES ||
		    mr->entries[i].share.ptr[0] != from + 1)
			return;
	}
	for (uint8_t i = 0; i < mr->n; i++) {
		uint8_t u = mr->entries[i].owner;

		s->rev[u][from].x = mr->entries[i].share.ptr[0];
		memcpy(s->rev[u][from].y, mr->entries[i].share.ptr + 1, SHAMIR_SECRET_BYTES);
		s->rev_have[u][from] = true;
	}
	s->in[from] = true;
}

static void init_dispatch(struct round *r, struct round_outbox *ob, uint8_t from,
                          const struct msg *m, uint64_t now)
{
	struct init_state *s = r->init;

	if (s->phase == I_END)
		return;
	s->lost[from] = false; /* its link is back */
	switch (m->type) {
	case MSG_ACCEPT:
		if (s->phase == I_ACCEPTS && !s->in[from] && !s->gone[from] &&
		    m->u.accept.index == from && keys_valid(r, from, &m->u.accept.keys)) {
			s->keys[from] = m->u.accept.keys;
			s->in[from] = true;
		}
		break;
	case MSG_DECLINE:
		if (s->phase == I_ACCEPTS && !s->in[from])
			s->gone[from] = true;
		break;
	case MSG_SHARES:
		init_on_shares(r, from, &m->u.shares);
		break;
	case MSG_MASKED:
		init_on_masked(r, from, &m->u.masked);
		break;
	case MSG_SPLIT_SIG:
		init_on_split_sig(r, ob, from, &m->u.split_sig);
		if (s->phase == I_END)
			return;
		break;
	case MSG_UNMASK_RESP:
		init_on_unmask_resp(r, from, &m->u.unmask_resp);
		break;
	case MSG_CHECKED:
		if (s->phase == I_CHECK && s->u3[from] && m->u.ack.index == from && !s->in[from]) {
			memcpy(s->digest[from], m->u.ack.digest, sizeof(s->digest[from]));
			s->in[from] = true;
		}
		break;
	case MSG_ABORT:
		/* A counted member that gives up (or whose decode wrapped) would
		 * not apply the result: then nobody may. So too one whose masked
		 * input is already in the sum (it cannot be taken out again).
		 * Earlier, it is just a dropout. */
		if (((s->phase == I_SPLIT || s->phase == I_UNMASK || s->phase == I_CHECK) &&
		     s->u3[from]) ||
		    (s->phase == I_MASKED && s->in[from])) {
			enum msg_reason why =
			        m->u.abort.reason == MSG_REASON_WRAP ||
			                        m->u.abort.reason == MSG_REASON_PRIVACY
			                ? (enum msg_reason)m->u.abort.reason
			                : MSG_REASON_TOO_FEW;
			init_abort(r, ob, why,
			           why == MSG_REASON_WRAP ? "a member's decode wrapped"
			           : why == MSG_REASON_PRIVACY
			                   ? "a member's input would be too exposed"
			                   : "a counted member aborted");
			return;
		}
		s->gone[from] = true;
		break;
	default:
		return;
	}
	init_maybe_advance(r, ob, now, false);
}

/* Drains the local queue between the initiator and its own member part. */
static void pump(struct round *r, struct round_outbox *ob, uint64_t now)
{
	while (r->lq_n > 0) {
		struct local_msg lm = r->lq[r->lq_head];

		sodium_memzero(&r->lq[r->lq_head], sizeof(r->lq[r->lq_head]));
		r->lq_head = (r->lq_head + 1) % LOCAL_QUEUE;
		r->lq_n--;
		if (lm.to == TO_MEMBER)
			member_dispatch(r, ob, 0, &lm.m, now);
		else if (r->init != NULL)
			init_dispatch(r, ob, r->me, &lm.m, now);
		if (lm.m.type == MSG_SEEDS)
			sodium_memzero(&lm, sizeof(lm));
	}
}

/* --- public entry points -------------------------------------------------- */

int round_initiate(struct round **out, const struct identity *id, const struct round_plan *plan,
                   const struct round_input *in, uint64_t now_ms, struct round_outbox *ob)
{
	struct round *r = NULL;
	struct msg m;
	int rc;

	*out = NULL;
	if (plan->k < MSG_MIN_MEMBERS || plan->k > MSG_MAX_MEMBERS ||
	    plan->t < round_min_threshold(plan->k) || plan->t > plan->k || plan->round_id == 0 ||
	    plan->phase_timeout_ms < 1 || plan->phase_timeout_ms > 3600000 ||
	    plan->codec->k != plan->k || ob->cap - ob->n < ROUND_OUTBOX_MIN ||
	    memcmp(plan->members[0], id->sign_pk, MSG_KEY_BYTES) != 0)
		return -EINVAL;
	for (uint8_t i = 0; i < plan->k; i++) {
		for (uint8_t j = 0; j < i; j++) {
			if (memcmp(plan->members[i], plan->members[j], MSG_KEY_BYTES) == 0)
				return -EINVAL;
		}
	}
	memset(&m, 0, sizeof(m));
	m.type = MSG_INVITE;
	m.round_id = plan->round_id;
	m.attempt = plan->attempt;
	if (codec_to_msg(&m.u.invite.codec, plan->codec) != 0)
		return -EINVAL;
	rc = round_alloc(&r, id, plan->round_id, plan->attempt, plan->k, plan->t, plan->members,
	                 plan->codec, plan->phase_timeout_ms, 0, in);
	if (rc != 0)
		return rc;
	r->init = calloc(1, sizeof(*r->init));
	if (r->init == NULL)
		goto nomem;
	r->init->sum = calloc(r->n ? r->n : 1, sizeof(uint32_t));
	r->init->tmp = calloc(r->n ? r->n : 1, sizeof(uint32_t));
	r->init->sum_packed = malloc(r->packed_len ? r->packed_len : 1);
	if (r->init->sum == NULL || r->init->tmp == NULL || r->init->sum_packed == NULL)
		goto nomem;
	m.u.invite.n_members = plan->k;
	m.u.invite.threshold = plan->t;
	memcpy(m.u.invite.members, plan->members, (size_t)plan->k * MSG_KEY_BYTES);
	m.u.invite.phase_timeout_ms = plan->phase_timeout_ms;
	m.u.invite.deadline_unix_ms = plan->deadline_unix_ms;
	if (plan->model != NULL)
		m.u.invite.model = *plan->model;
	m.u.invite.path = plan->path;
	m.u.invite.lr_kind = plan->lr_kind;
	m.u.invite.lr_rank = plan->lr_rank;
	m.u.invite.lr_ref = plan->lr_ref;
	r->path = plan->path;
	rc = invite_digest(r->invite_digest, &m);
	if (rc == -ENOMEM)
		goto nomem;
	if (rc != 0) {
		round_free(r);
		return -EINVAL;
	}
	init_next_phase(r, I_ACCEPTS, now_ms);
	for (uint8_t v = 1; v < plan->k; v++)
		out_push(ob, v, &m);
	if (member_start(r, ob, now_ms) != 0)
		goto nomem;
	pump(r, ob, now_ms);
	*out = r;
	return 0;
nomem:
	round_free(r);
	ob->n = 0; /* nothing was sent */
	return -ENOMEM;
}

void round_decline(const struct msg *invite, enum msg_reason reason, uint32_t busy_ms,
                   struct round_outbox *ob)
{
	round_decline_why(invite, reason, busy_ms, "declined", ob);
}

void round_decline_why(const struct msg *invite, enum msg_reason reason, uint32_t busy_ms,
                       const char *text, struct round_outbox *ob)
{
	struct msg m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_DECLINE;
	m.round_id = invite->round_id;
	m.attempt = invite->attempt;
	reason_text(&m.u.decline, reason, text);
	for (char *c = m.u.decline.text; *c != '\0'; c++) { /* printable ASCII only */
		if (*c < 0x20 || *c > 0x7e)
			*c = '?';
	}
	m.u.decline.busy_ms = busy_ms < MSG_MAX_BUSY_MS ? busy_ms : MSG_MAX_BUSY_MS;
	if (ob->n < ob->cap)
		out_push(ob, 0, &m);
}

int round_join(struct round **out, const struct identity *id, const uint8_t from_pk[MSG_KEY_BYTES],
               const struct msg *invite, const struct round_input *in, uint64_t now_ms,
               struct round_outbox *ob)
{
	const struct msg_invite *iv = &invite->u.invite;
	struct codec_params *cp = NULL;
	struct round *r = NULL;
	int me = -1, rc = -EINVAL;

	*out = NULL;
	if (invite->type != MSG_INVITE || ob->cap - ob->n < ROUND_OUTBOX_MIN)
		return -EINVAL;
	cp = malloc(sizeof(*cp));
	if (cp == NULL)
		return -ENOMEM;
	if (iv->n_members < MSG_MIN_MEMBERS || iv->n_members > MSG_MAX_MEMBERS ||
	    iv->threshold < round_min_threshold(iv->n_members) || iv->threshold > iv->n_members ||
	    invite->round_id == 0 || iv->phase_timeout_ms < 1 || iv->phase_timeout_ms > 3600000 ||
	    memcmp(iv->members[0], from_pk, MSG_KEY_BYTES) != 0)
		goto decline;
	for (uint8_t i = 0; i < iv->n_members; i++) {
		for (uint8_t j = 0; j < i; j++) {
			if (memcmp(iv->members[i], iv->members[j], MSG_KEY_BYTES) == 0)
				goto decline;
		}
		if (memcmp(iv->members[i], id->sign_pk, MSG_KEY_BYTES) == 0)
			me = i;
	}
	if (me < 1 || codec_from_msg(cp, &iv->codec) != 0 || cp->k != iv->n_members ||
	    iv->path > MSG_PATH_SCATTER)
		goto decline;
	rc = round_alloc(&r, id, invite->round_id, invite->attempt, iv->n_members, iv->threshold,
	                 (const uint8_t(*)[MSG_KEY_BYTES])iv->members, cp, iv->phase_timeout_ms, me,
	                 in);
	if (rc != 0)
		goto decline;
	r->path = iv->path;
	rc = invite_digest(r->invite_digest, invite);
	if (rc == 0)
		rc = member_start(r, ob, now_ms);
	if (rc != 0)
		goto decline;
	*out = r;
	free(cp);
	return 0;
decline:
	round_free(r);
	free(cp);
	round_decline(invite, rc == -ENOMEM ? MSG_REASON_INTERNAL : MSG_REASON_PARAMS, 0, ob);
	return rc == 0 ? -EINVAL : rc;
}

int round_on_msg(struct round *r, const uint8_t from_pk[MSG_KEY_BYTES], const struct msg *m,
                 uint64_t now_ms, struct round_outbox *ob)
{
	int from;

	if (ob->cap - ob->n < ROUND_OUTBOX_MIN)
		return -EINVAL;
	if (m->round_id != r->rid || m->attempt != r->attempt)
		return 0;
	from = index_of(r, from_pk);
	if (from < 0 || from == r->me)
		return 0;
	if (from == 0 || m->type == MSG_PART || m->type == MSG_PART_SUM)
		member_dispatch(r, ob, (uint8_t)from, m, now_ms); /* member to member */
	else if (r->init != NULL)
		init_dispatch(r, ob, (uint8_t)from, m, now_ms);
	pump(r, ob, now_ms);
	return 0;
}

int round_on_tick(struct round *r, uint64_t now_ms, struct round_outbox *ob)
{
	if (ob->cap - ob->n < ROUND_OUTBOX_MIN)
		return -EINVAL;
	if (r->init != NULL && r->init->phase != I_END && now_ms >= r->init->deadline)
		init_maybe_advance(r, ob, now_ms, true);
	else if (r->init == NULL && r->mphase != M_END && now_ms >= r->mdeadline)
		member_abort(r, ob, MSG_REASON_TIMEOUT, "phase deadline passed", true);
	pump(r, ob, now_ms);
	return 0;
}

int round_on_peer_lost(struct round *r, const uint8_t pk[MSG_KEY_BYTES], uint64_t now_ms,
                       struct round_outbox *ob)
{
	int v;

	if (ob->cap - ob->n < ROUND_OUTBOX_MIN)
		return -EINVAL;
	v = index_of(r, pk);
	if (v < 0 || v == r->me)
		return 0;
	if (r->init != NULL && r->init->phase != I_END) {
		/* What its phase deadline would decide, without waiting for it. */
		r->init->lost[v] = true;
		init_maybe_advance(r, ob, now_ms, false);
	} else if (r->init == NULL && v == 0 && r->mphase != M_END && r->mphase != M_WAIT_COMMIT) {
		/* The initiator is probably gone. If it is not (only this link
		 * dropped), the ABORT reaches it when the link is back: counted,
		 * this member then aborts the round for everyone, as after its
		 * own deadline. Waiting for COMMIT is left to the deadline: the
		 * initiator may have sent it just before the link dropped. */
		member_abort(r, ob, MSG_REASON_TIMEOUT, "initiator disconnected", true);
	}
	pump(r, ob, now_ms);
	return 0;
}

enum round_status round_status(const struct round *r)
{
	return r->status;
}

int round_abort_reason(const struct round *r)
{
	return r->reason;
}

uint64_t round_next_deadline(const struct round *r)
{
	if (r->init != NULL)
		return r->init->phase == I_END ? 0 : r->init->deadline;
	return r->mphase == M_END ? 0 : r->mdeadline;
}

uint64_t round_id(const struct round *r)
{
	return r->rid;
}

uint32_t round_attempt(const struct round *r)
{
	return r->attempt;
}

bool round_is_initiator(const struct round *r)
{
	return r->init != NULL;
}

const struct codec_params *round_codec(const struct round *r)
{
	return &r->cp;
}

const struct codec_stats *round_decode_stats(const struct round *r)
{
	return r->decoded ? &r->st : NULL;
}

int round_result(const struct round *r, float *avg, float *rho_sum, uint32_t *members)
{
	if (r->status != ROUND_DONE || r->avg == NULL)
		return -EAGAIN;
	if (members != NULL)
		*members = r->n_counted;
	if (rho_sum != NULL)
		*rho_sum = r->rho_sum;
	memcpy(avg, r->avg, (size_t)r->cp.dim * sizeof(float));
	return 0;
}

int round_take_result(struct round *r, float **avg, float **snapshot, float *rho_sum,
                      uint32_t *members)
{
	if (r->status != ROUND_DONE || r->avg == NULL)
		return -EAGAIN;
	*avg = r->avg;
	*snapshot = r->snapshot;
	*rho_sum = r->rho_sum;
	*members = r->n_counted;
	r->avg = NULL;
	r->snapshot = NULL;
	return 0;
}

const float *round_snapshot(const struct round *r)
{
	return r->snapshot;
}

const uint32_t *round_result_ring(const struct round *r)
{
	return r->status == ROUND_DONE ? r->result : NULL;
}

const uint32_t *round_input_ring(const struct round *r)
{
	return r->input_ring;
}

size_t round_counted(const struct round *r, uint8_t out[MSG_MAX_MEMBERS])
{
	if (r->status != ROUND_DONE)
		return 0;
	memcpy(out, r->counted, r->n_counted);
	return r->n_counted;
}

size_t round_transport_keys(const struct round *r, struct seal_eph *mine,
                            uint8_t idx[MSG_MAX_MEMBERS], uint8_t pks[MSG_MAX_MEMBERS][32])
{
	size_t n = 0;

	/* Known from KEYS on; the secret is gone once the member part ended. */
	if (r->sec == NULL || r->mphase == M_WAIT_KEYS || r->mphase == M_END)
		return 0;
	memcpy(mine->pk, r->share_pk, 32);
	memcpy(mine->sk, r->sec->share_sk, 32);
	for (uint8_t i = 0; i < r->k; i++) {
		if (i == r->me || !r->in_u1[i])
			continue;
		idx[n] = i;
		memcpy(pks[n], r->roster[i].share_pk, 32);
		n++;
	}
	return n;
}
