/*
 * protocol_msg_test.c: the wire messages. Every type round-trips field for
 * field; every prefix of every encoding is refused; wrong versions, types,
 * shapes, msgpack types, limits, nesting and inconsistent fields are each
 * refused with their own code; a 10 MB vector decodes without a copy. The
 * split and its signatures (SPLIT, SPLIT_SIG, the UNMASK request) and the
 * signed flags of the round keys are covered like the rest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "protocol/msg.h"
#include "util/bytes.h"
#include "util/log.h"

#include <errno.h>
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

static uint8_t blob_a[100], blob_b[200], vec[4096];

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

/* A valid message of each type, with distinctive values. */
static void sample(struct msg *m, enum msg_type type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->round_id = 0x0123456789abcdefULL;
	m->attempt = 2;
	fill(blob_a, sizeof(blob_a), 1);
	fill(blob_b, sizeof(blob_b), 2);
	fill(vec, sizeof(vec), 3);
	switch (type) {
	case MSG_INVITE: {
		struct msg_invite *v = &m->u.invite;
		v->n_members = 4;
		v->threshold = 3;
		for (int i = 0; i < 4; i++)
			memset(v->members[i], 0x10 + i, MSG_KEY_BYTES);
		v->phase_timeout_ms = 5000;
		v->deadline_unix_ms = 1700000000123ULL;
		v->model.type = 1;
		v->model.n_hidden = 2;
		v->model.hidden[0] = 128;
		v->model.hidden[1] = 65536;
		v->model.seed = 0xabcdef0123456789ULL;
		v->path = MSG_PATH_SCATTER;
		v->codec.id = 1;
		v->codec.version = 1;
		v->codec.k = 4;
		v->codec.flags = 0x3;
		v->codec.keep_ppm = 250000;
		v->codec.sample_seed = 0xfeedfacecafebeefULL;
		v->codec.dither_seed = 42;
		v->codec.weight_bits = 16;
		v->codec.weight_width = 18;
		v->codec.weight_scale = 0.5;
		v->codec.n_segments = 2;
		v->codec.segments[0] =
		        (struct msg_segment){100352, 8, 10, 0, 1.0 / 128, 127.0 / 128};
		v->codec.segments[1] = (struct msg_segment){128, 12, 14, 1, 1e-3, 2.047};
		break;
	}
	case MSG_ACCEPT:
		m->u.accept.index = 3;
		m->u.accept.keys.flags = MSG_EPH_F_KNOWN;
		memset(m->u.accept.keys.mask_pk, 0xa1, 32);
		memset(m->u.accept.keys.share_pk, 0xa2, 32);
		memset(m->u.accept.keys.seed_commit, 0xa3, 32);
		memset(m->u.accept.keys.sig, 0xa4, 64);
		break;
	case MSG_DECLINE:
		m->u.decline.reason = MSG_REASON_BUSY;
		snprintf(m->u.decline.text, sizeof(m->u.decline.text), "in round 77");
		m->u.decline.busy_ms = 2750;
		break;
	case MSG_ABORT:
		m->u.abort.reason = MSG_REASON_TOO_FEW;
		snprintf(m->u.abort.text, sizeof(m->u.abort.text), "2 of 4 left, need 3");
		break;
	case MSG_KEYS:
		m->u.keys.n = 3;
		for (int i = 0; i < 3; i++) {
			m->u.keys.entries[i].index = (uint8_t)(i * 2);
			memset(&m->u.keys.entries[i].keys, 0x30 + i, sizeof(struct msg_eph_keys));
			m->u.keys.entries[i].keys.flags = (uint8_t)(i & 1);
		}
		break;
	case MSG_SHARES:
		m->u.shares.n = 2;
		m->u.shares.entries[0] = (struct msg_share){1, 0, {blob_a, sizeof(blob_a)}};
		m->u.shares.entries[1] = (struct msg_share){1, 2, {blob_b, sizeof(blob_b)}};
		break;
	case MSG_MASKED:
		m->u.masked.index = 2;
		m->u.masked.n_values = 3000;
		m->u.masked.weight = 1.25;
		m->u.masked.vector = (struct msg_bytes){vec, 3750}; /* 10 bits each */
		break;
	case MSG_SPLIT:
	case MSG_UNMASK_REQ: {
		struct msg_split *v = type == MSG_SPLIT ? &m->u.split : &m->u.unmask_req.split;
		v->n_alive = 3;
		v->alive[0] = 0;
		v->alive[1] = 1;
		v->alive[2] = 3;
		v->n_dropped = 1;
		v->dropped[0] = 2;
		if (type == MSG_UNMASK_REQ) {
			m->u.unmask_req.n_sigs = 3;
			for (int i = 0; i < 3; i++) {
				m->u.unmask_req.sigs[i].index = v->alive[i];
				memset(m->u.unmask_req.sigs[i].sig, 0x50 + i, MSG_SIG_BYTES);
			}
		}
		break;
	}
	case MSG_SPLIT_SIG:
		m->u.split_sig.index = 3;
		memset(m->u.split_sig.sig, 0x77, MSG_SIG_BYTES);
		break;
	case MSG_UNMASK_RESP:
		m->u.unmask_resp.index = 1;
		m->u.unmask_resp.n = 2;
		m->u.unmask_resp.entries[0].owner = 0;
		m->u.unmask_resp.entries[0].share = (struct msg_bytes){blob_a, 33};
		m->u.unmask_resp.entries[1].owner = 2;
		m->u.unmask_resp.entries[1].share = (struct msg_bytes){blob_b, 33};
		break;
	case MSG_RESULT:
		m->u.result.n_counted = 3;
		m->u.result.counted[0] = 0;
		m->u.result.counted[1] = 1;
		m->u.result.counted[2] = 3;
		m->u.result.n_values = 4096;
		m->u.result.weight = 3.5;
		m->u.result.sum = (struct msg_bytes){vec, 4096};
		break;
	case MSG_PING:
		m->round_id = 0;
		m->u.ping.seq = 9;
		m->u.ping.time_ms = 123456789;
		break;
	case MSG_STATUS:
		m->u.status.seq = 9;
		m->u.status.time_ms = 123456789;
		m->u.status.busy = true;
		m->u.status.rounds_ok = 10;
		m->u.status.rounds_aborted = 1;
		m->u.status.uptime_s = 3600;
		break;
	case MSG_CHECKED:
		m->u.ack.index = 2;
		memset(m->u.ack.digest, 0x5c, MSG_KEY_BYTES);
		break;
	case MSG_COMMIT:
		m->u.ack.index = 0;
		memset(m->u.ack.digest, 0x5d, MSG_KEY_BYTES);
		break;
	case MSG_PART:
	case MSG_PART_SUM:
		m->u.part.index = 3;
		m->u.part.part = 1;
		m->u.part.first = 1024;
		m->u.part.n_values = 1000;
		m->u.part.vector = (struct msg_bytes){vec, 1250}; /* 10 bits each */
		break;
	case MSG_SEEDS:
		m->u.seeds.n = 3;
		for (int i = 0; i < 3; i++) {
			m->u.seeds.entries[i].owner = (uint8_t)(i * 3);
			m->u.seeds.entries[i].kind = i == 1 ? MSG_SEED_PAIR_SK : MSG_SEED_SELF;
			memset(m->u.seeds.entries[i].key, 0x60 + i, MSG_KEY_BYTES);
		}
		break;
	}
}

static uint8_t *encode(const struct msg *m, size_t *len)
{
	size_t n = msg_encoded_size(m);
	uint8_t *buf;

	assert_true(n > 0);
	buf = malloc(n);
	assert_non_null(buf);
	assert_int_equal(msg_encode(buf, n, len, m), 0);
	assert_int_equal(*len, n);
	return buf;
}

static void bytes_equal(const struct msg_bytes *a, const struct msg_bytes *b)
{
	assert_int_equal(a->len, b->len);
	if (a->len > 0)
		assert_memory_equal(a->ptr, b->ptr, a->len);
}

/* Field-by-field comparison (byte strings by content). */
static void msg_equal(const struct msg *a, const struct msg *b)
{
	assert_int_equal(a->type, b->type);
	assert_true(a->round_id == b->round_id);
	assert_int_equal(a->attempt, b->attempt);
	switch (a->type) {
	case MSG_INVITE:
		assert_int_equal(a->u.invite.n_members, b->u.invite.n_members);
		assert_int_equal(a->u.invite.threshold, b->u.invite.threshold);
		assert_memory_equal(a->u.invite.members, b->u.invite.members,
		                    a->u.invite.n_members * MSG_KEY_BYTES);
		assert_int_equal(a->u.invite.phase_timeout_ms, b->u.invite.phase_timeout_ms);
		assert_true(a->u.invite.deadline_unix_ms == b->u.invite.deadline_unix_ms);
		assert_int_equal(a->u.invite.model.type, b->u.invite.model.type);
		assert_int_equal(a->u.invite.model.n_hidden, b->u.invite.model.n_hidden);
		assert_memory_equal(a->u.invite.model.hidden, b->u.invite.model.hidden,
		                    a->u.invite.model.n_hidden * sizeof(uint32_t));
		assert_true(a->u.invite.model.seed == b->u.invite.model.seed);
		assert_int_equal(a->u.invite.path, b->u.invite.path);
		{
			const struct msg_codec *x = &a->u.invite.codec, *y = &b->u.invite.codec;
			assert_int_equal(x->id, y->id);
			assert_int_equal(x->version, y->version);
			assert_int_equal(x->k, y->k);
			assert_int_equal(x->flags, y->flags);
			assert_int_equal(x->keep_ppm, y->keep_ppm);
			assert_true(x->sample_seed == y->sample_seed);
			assert_true(x->dither_seed == y->dither_seed);
			assert_int_equal(x->weight_bits, y->weight_bits);
			assert_int_equal(x->weight_width, y->weight_width);
			assert_true(x->weight_scale == y->weight_scale);
			assert_int_equal(x->n_segments, y->n_segments);
			for (size_t i = 0; i < x->n_segments; i++) {
				assert_int_equal(x->segments[i].length, y->segments[i].length);
				assert_int_equal(x->segments[i].bits, y->segments[i].bits);
				assert_int_equal(x->segments[i].width, y->segments[i].width);
				assert_int_equal(x->segments[i].mode, y->segments[i].mode);
				assert_true(x->segments[i].scale == y->segments[i].scale);
				assert_true(x->segments[i].clip == y->segments[i].clip);
			}
		}
		break;
	case MSG_ACCEPT:
		assert_int_equal(a->u.accept.index, b->u.accept.index);
		assert_memory_equal(&a->u.accept.keys, &b->u.accept.keys, sizeof(a->u.accept.keys));
		break;
	case MSG_DECLINE:
	case MSG_ABORT: {
		const struct msg_reason_text *x =
		        a->type == MSG_ABORT ? &a->u.abort : &a->u.decline;
		const struct msg_reason_text *y =
		        a->type == MSG_ABORT ? &b->u.abort : &b->u.decline;
		assert_int_equal(x->reason, y->reason);
		assert_string_equal(x->text, y->text);
		assert_int_equal(x->busy_ms, y->busy_ms);
		break;
	}
	case MSG_KEYS:
		assert_int_equal(a->u.keys.n, b->u.keys.n);
		for (size_t i = 0; i < a->u.keys.n; i++) {
			assert_int_equal(a->u.keys.entries[i].index, b->u.keys.entries[i].index);
			assert_memory_equal(&a->u.keys.entries[i].keys, &b->u.keys.entries[i].keys,
			                    sizeof(struct msg_eph_keys));
		}
		break;
	case MSG_SHARES:
		assert_int_equal(a->u.shares.n, b->u.shares.n);
		for (size_t i = 0; i < a->u.shares.n; i++) {
			assert_int_equal(a->u.shares.entries[i].from, b->u.shares.entries[i].from);
			assert_int_equal(a->u.shares.entries[i].to, b->u.shares.entries[i].to);
			bytes_equal(&a->u.shares.entries[i].blob, &b->u.shares.entries[i].blob);
		}
		break;
	case MSG_MASKED:
		assert_int_equal(a->u.masked.index, b->u.masked.index);
		assert_int_equal(a->u.masked.n_values, b->u.masked.n_values);
		assert_true(a->u.masked.weight == b->u.masked.weight);
		bytes_equal(&a->u.masked.vector, &b->u.masked.vector);
		break;
	case MSG_SPLIT:
	case MSG_UNMASK_REQ: {
		const struct msg_split *x =
		        a->type == MSG_SPLIT ? &a->u.split : &a->u.unmask_req.split;
		const struct msg_split *y =
		        a->type == MSG_SPLIT ? &b->u.split : &b->u.unmask_req.split;
		assert_int_equal(x->n_alive, y->n_alive);
		assert_int_equal(x->n_dropped, y->n_dropped);
		assert_memory_equal(x->alive, y->alive, x->n_alive);
		if (x->n_dropped > 0)
			assert_memory_equal(x->dropped, y->dropped, x->n_dropped);
		if (a->type == MSG_UNMASK_REQ) {
			assert_int_equal(a->u.unmask_req.n_sigs, b->u.unmask_req.n_sigs);
			assert_memory_equal(a->u.unmask_req.sigs, b->u.unmask_req.sigs,
			                    a->u.unmask_req.n_sigs * sizeof(struct msg_split_sig));
		}
		break;
	}
	case MSG_SPLIT_SIG:
		assert_memory_equal(&a->u.split_sig, &b->u.split_sig, sizeof(a->u.split_sig));
		break;
	case MSG_UNMASK_RESP:
		assert_int_equal(a->u.unmask_resp.index, b->u.unmask_resp.index);
		assert_int_equal(a->u.unmask_resp.n, b->u.unmask_resp.n);
		for (size_t i = 0; i < a->u.unmask_resp.n; i++) {
			assert_int_equal(a->u.unmask_resp.entries[i].owner,
			                 b->u.unmask_resp.entries[i].owner);
			bytes_equal(&a->u.unmask_resp.entries[i].share,
			            &b->u.unmask_resp.entries[i].share);
		}
		break;
	case MSG_RESULT:
		assert_int_equal(a->u.result.n_counted, b->u.result.n_counted);
		assert_memory_equal(a->u.result.counted, b->u.result.counted,
		                    a->u.result.n_counted);
		assert_int_equal(a->u.result.n_values, b->u.result.n_values);
		assert_true(a->u.result.weight == b->u.result.weight);
		bytes_equal(&a->u.result.sum, &b->u.result.sum);
		break;
	case MSG_PING:
		assert_true(a->u.ping.seq == b->u.ping.seq);
		assert_true(a->u.ping.time_ms == b->u.ping.time_ms);
		break;
	case MSG_STATUS:
		assert_memory_equal(&a->u.status, &b->u.status, sizeof(a->u.status));
		break;
	case MSG_CHECKED:
	case MSG_COMMIT:
		assert_int_equal(a->u.ack.index, b->u.ack.index);
		assert_memory_equal(a->u.ack.digest, b->u.ack.digest, MSG_KEY_BYTES);
		break;
	case MSG_PART:
	case MSG_PART_SUM:
		assert_int_equal(a->u.part.index, b->u.part.index);
		assert_int_equal(a->u.part.part, b->u.part.part);
		assert_int_equal(a->u.part.first, b->u.part.first);
		assert_int_equal(a->u.part.n_values, b->u.part.n_values);
		bytes_equal(&a->u.part.vector, &b->u.part.vector);
		break;
	case MSG_SEEDS:
		assert_int_equal(a->u.seeds.n, b->u.seeds.n);
		assert_memory_equal(a->u.seeds.entries, b->u.seeds.entries,
		                    a->u.seeds.n * sizeof(a->u.seeds.entries[0]));
		break;
	}
}

static void test_round_trip_every_type(void **state)
{
	(void)state;
	for (int t = MSG_TYPE_MIN; t <= MSG_TYPE_MAX; t++) {
		struct msg m, d;
		size_t len;
		uint8_t *buf;
		sample(&m, (enum msg_type)t);
		buf = encode(&m, &len);
		assert_int_equal(msg_decode(&d, buf, len), 0);
		msg_equal(&m, &d);
		/* Too small a buffer is -ENOBUFS, never an overflow. */
		assert_int_equal(msg_encode(buf, len - 1, &len, &m), -ENOBUFS);
		free(buf);
		assert_string_not_equal(msg_type_name(t), "unknown");
	}
	/* An empty text: msgpack-c gives it a NULL pointer (once a memcpy from NULL). */
	{
		struct msg m, d;
		size_t len;
		uint8_t *buf;
		sample(&m, MSG_ABORT);
		m.u.abort.text[0] = '\0';
		buf = encode(&m, &len);
		assert_int_equal(msg_decode(&d, buf, len), 0);
		assert_string_equal(d.u.abort.text, "");
		free(buf);
	}
	assert_string_equal(msg_type_name(0), "unknown");
	assert_string_equal(msg_type_name(99), "unknown");
}

/* Every proper prefix and every one-byte extension is refused. */
static void test_truncated_and_trailing(void **state)
{
	(void)state;
	for (int t = MSG_TYPE_MIN; t <= MSG_TYPE_MAX; t++) {
		struct msg m, d;
		size_t len;
		uint8_t *buf, *longer;
		sample(&m, (enum msg_type)t);
		buf = encode(&m, &len);
		for (size_t cut = 0; cut < len; cut++) {
			/* a copy of exactly cut bytes, so ASan sees any over-read */
			uint8_t *p = malloc(cut + 1);
			assert_non_null(p);
			memcpy(p, buf, cut);
			assert_int_not_equal(msg_decode(&d, p, cut), 0);
			free(p);
		}
		longer = malloc(len + 1);
		assert_non_null(longer);
		memcpy(longer, buf, len);
		longer[len] = 0x00;
		assert_int_equal(msg_decode(&d, longer, len + 1), MSG_EMALFORMED);
		free(longer);
		free(buf);
	}
}

/* Packs [version, type, round, attempt, ...] by hand with msgpack-c. */
struct sbuf_pk {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

static void hand_begin(struct sbuf_pk *h, size_t n, uint64_t version, uint64_t type)
{
	msgpack_sbuffer_init(&h->sb);
	msgpack_packer_init(&h->pk, &h->sb, msgpack_sbuffer_write);
	msgpack_pack_array(&h->pk, n);
	msgpack_pack_uint64(&h->pk, version);
	msgpack_pack_uint64(&h->pk, type);
	msgpack_pack_uint64(&h->pk, 77);
	msgpack_pack_uint64(&h->pk, 0);
}

static int hand_decode(struct sbuf_pk *h)
{
	struct msg d;
	int rc = msg_decode(&d, (const uint8_t *)h->sb.data, h->sb.size);
	msgpack_sbuffer_destroy(&h->sb);
	return rc;
}

static void test_version_and_type(void **state)
{
	struct sbuf_pk h;
	struct msg m;
	size_t len;
	uint8_t *buf;
	(void)state;

	/* The next version of a PING: refused as a version, whatever its shape. */
	hand_begin(&h, 6, MSG_VERSION + 1, MSG_PING);
	msgpack_pack_uint64(&h.pk, 1);
	msgpack_pack_uint64(&h.pk, 1);
	assert_int_equal(hand_decode(&h), MSG_EVERSION);
	hand_begin(&h, 9, 200, 99); /* a future message we know nothing about */
	assert_int_equal(hand_decode(&h), MSG_EVERSION);
	hand_begin(&h, 4, 0, MSG_PING);
	assert_int_equal(hand_decode(&h), MSG_EVERSION);
	/* Unknown types. */
	hand_begin(&h, 6, MSG_VERSION, 0);
	msgpack_pack_uint64(&h.pk, 1);
	msgpack_pack_uint64(&h.pk, 1);
	assert_int_equal(hand_decode(&h), MSG_ETYPE);
	hand_begin(&h, 6, MSG_VERSION, MSG_TYPE_MAX + 1);
	msgpack_pack_uint64(&h.pk, 1);
	msgpack_pack_uint64(&h.pk, 1);
	assert_int_equal(hand_decode(&h), MSG_ETYPE);
	/* A valid PING by hand, then with one field too many and too few. */
	hand_begin(&h, 6, MSG_VERSION, MSG_PING);
	msgpack_pack_uint64(&h.pk, 1);
	msgpack_pack_uint64(&h.pk, 1);
	assert_int_equal(hand_decode(&h), 0);
	hand_begin(&h, 7, MSG_VERSION, MSG_PING);
	msgpack_pack_uint64(&h.pk, 1);
	msgpack_pack_uint64(&h.pk, 1);
	msgpack_pack_uint64(&h.pk, 1);
	assert_int_equal(hand_decode(&h), MSG_EMALFORMED);
	hand_begin(&h, 5, MSG_VERSION, MSG_PING);
	msgpack_pack_uint64(&h.pk, 1);
	assert_int_equal(hand_decode(&h), MSG_EMALFORMED);
	/* The type in the body must be a msgpack unsigned integer. */
	msgpack_sbuffer_init(&h.sb);
	msgpack_packer_init(&h.pk, &h.sb, msgpack_sbuffer_write);
	msgpack_pack_array(&h.pk, 6);
	msgpack_pack_uint8(&h.pk, MSG_VERSION);
	msgpack_pack_str_with_body(&h.pk, "P", 1);
	assert_int_equal(hand_decode(&h), MSG_EMALFORMED);
	/* Not an array at all, and a map. */
	{
		struct msg d;
		const uint8_t one[] = {0x01}, map[] = {0x81, 0x01, 0x01};
		assert_int_equal(msg_decode(&d, one, 1), MSG_EMALFORMED);
		assert_int_equal(msg_decode(&d, map, sizeof(map)), MSG_EMALFORMED);
		assert_int_equal(msg_decode(&d, map, 0), MSG_EMALFORMED);
	}
	/* Round messages need a nonzero round id; encoding refuses too. */
	sample(&m, MSG_ABORT);
	m.round_id = 0;
	assert_int_equal(msg_encoded_size(&m), 0);
	buf = malloc(1024);
	assert_non_null(buf);
	assert_int_equal(msg_encode(buf, 1024, &len, &m), MSG_EINVALID);
	free(buf);
}

/* Exact msgpack types: float32 for a float64, str for bin, negatives. */
static void test_wrong_msgpack_types(void **state)
{
	struct sbuf_pk h;
	(void)state;

	hand_begin(&h, 8, MSG_VERSION, MSG_MASKED);
	msgpack_pack_uint8(&h.pk, 1);
	msgpack_pack_uint32(&h.pk, 8);
	msgpack_pack_float(&h.pk, 1.0f); /* float32: refused */
	msgpack_pack_bin_with_body(&h.pk, "12345678", 8);
	assert_int_equal(hand_decode(&h), MSG_EMALFORMED);

	hand_begin(&h, 8, MSG_VERSION, MSG_MASKED);
	msgpack_pack_uint8(&h.pk, 1);
	msgpack_pack_uint32(&h.pk, 8);
	msgpack_pack_double(&h.pk, 1.0);
	msgpack_pack_str_with_body(&h.pk, "12345678", 8); /* str, not bin */
	assert_int_equal(hand_decode(&h), MSG_EMALFORMED);

	hand_begin(&h, 8, MSG_VERSION, MSG_MASKED);
	msgpack_pack_int8(&h.pk, -1); /* negative index */
	msgpack_pack_uint32(&h.pk, 8);
	msgpack_pack_double(&h.pk, 1.0);
	msgpack_pack_bin_with_body(&h.pk, "12345678", 8);
	assert_int_equal(hand_decode(&h), MSG_EMALFORMED);

	hand_begin(&h, 8, MSG_VERSION, MSG_MASKED);
	msgpack_pack_uint8(&h.pk, 1);
	msgpack_pack_uint32(&h.pk, 8);
	msgpack_pack_double(&h.pk, NAN); /* not finite */
	msgpack_pack_bin_with_body(&h.pk, "12345678", 8);
	assert_int_equal(hand_decode(&h), MSG_EINVALID);

	hand_begin(&h, 8, MSG_VERSION, MSG_MASKED);
	msgpack_pack_uint8(&h.pk, 1);
	msgpack_pack_uint32(&h.pk, 8);
	msgpack_pack_double(&h.pk, 1.0);
	msgpack_pack_bin_with_body(&h.pk, "12345678", 8);
	assert_int_equal(hand_decode(&h), 0); /* the control case */

	/* An ACCEPT with a 31-byte key. */
	hand_begin(&h, 10, MSG_VERSION, MSG_ACCEPT);
	msgpack_pack_uint8(&h.pk, 1);
	msgpack_pack_uint8(&h.pk, 0);
	msgpack_pack_bin_with_body(&h.pk, blob_a, 31);
	msgpack_pack_bin_with_body(&h.pk, blob_a, 32);
	msgpack_pack_bin_with_body(&h.pk, blob_a, 32);
	msgpack_pack_bin_with_body(&h.pk, blob_b, 64);
	assert_int_equal(hand_decode(&h), MSG_EMALFORMED);

	/* STATUS busy must be a boolean, not 1. */
	hand_begin(&h, 10, MSG_VERSION, MSG_STATUS);
	msgpack_pack_uint8(&h.pk, 1);
	msgpack_pack_uint8(&h.pk, 1);
	msgpack_pack_uint8(&h.pk, 1);
	msgpack_pack_uint8(&h.pk, 1);
	msgpack_pack_uint8(&h.pk, 1);
	msgpack_pack_uint8(&h.pk, 1);
	assert_int_equal(hand_decode(&h), MSG_EMALFORMED);
}

/* Declared sizes beyond the input, nesting, object counts, byte limits. */
static void test_limits(void **state)
{
	struct msg d, m;
	struct sbuf_pk h;
	(void)state;

	{
		/* [2, 11, 0, 0, <array32 of 2^32-1 elements>] in a few bytes. */
		const uint8_t huge_array[] = {0x95, MSG_VERSION, 0x0b, 0x00, 0x00,
		                              0xdd, 0xff,        0xff, 0xff, 0xff};
		const uint8_t huge_bin[] = {0x95, MSG_VERSION, 0x0b, 0x00, 0x00,
		                            0xc6, 0x7f,        0xff, 0xff, 0xff};
		const uint8_t huge_map[] = {0x95, MSG_VERSION, 0x0b, 0x00, 0x00,
		                            0xdf, 0xff,        0xff, 0xff, 0xff};
		const uint8_t c1[] = {0x95, MSG_VERSION, 0x0b, 0x00, 0x00, 0xc1};
		assert_int_equal(msg_decode(&d, huge_array, sizeof(huge_array)), MSG_EMALFORMED);
		assert_int_equal(msg_decode(&d, huge_bin, sizeof(huge_bin)), MSG_EMALFORMED);
		assert_int_equal(msg_decode(&d, huge_map, sizeof(huge_map)), MSG_EMALFORMED);
		assert_int_equal(msg_decode(&d, c1, sizeof(c1)), MSG_EMALFORMED);
	}
	{
		/* Nesting 5 deep inside a PING's field. */
		uint8_t deep[] = {0x96, MSG_VERSION, 0x0b, 0x00, 0x00, 0x91,
		                  0x91, 0x91,        0x91, 0x00, 0x00};
		assert_int_equal(msg_decode(&d, deep, sizeof(deep)), MSG_ELIMIT);
		deep[8] = 0x00; /* 3 deep: passes the scanner, then the wrong type */
		assert_int_equal(msg_decode(&d, deep, sizeof(deep) - 1), MSG_EMALFORMED);
	}
	{
		/* More objects than MSG_MAX_OBJECTS (fixint elements, 1 byte each). */
		size_t n = MSG_MAX_OBJECTS + 10, len = 0;
		uint8_t *b = malloc(n + 16);
		assert_non_null(b);
		b[len++] = 0xdd; /* array32 */
		bytes_put_be32(b + len, (uint32_t)(n + 4));
		len += 4;
		b[len++] = MSG_VERSION;
		b[len++] = 0x0b;
		b[len++] = 0x00;
		b[len++] = 0x00;
		memset(b + len, 0x01, n);
		len += n;
		assert_int_equal(msg_decode(&d, b, len), MSG_ELIMIT);
		free(b);
	}
	{
		/*
		 * An INVITE's [Model] settings, the field before the data path:
		 * 9 hidden sizes, a type code over the limit, a seed that is
		 * not an integer; then a data path that does not exist; then
		 * the low-rank fields after it: a kind that does not exist, a
		 * rank without a kind, a kind without a rank, a rank over the
		 * limit, and a valid chain round.
		 */
		uint8_t *b = malloc(4096);
		size_t len = 0, base;
		static const uint8_t nine[] = {0x93, 0x01, 0x99, 1, 1, 1, 1, 1, 1,
		                               1,    1,    1,    0, 0, 0, 0, 0};
		static const uint8_t type64[] = {0x93, 0x40, 0x90, 0x00, 0x00, 0, 0, 0};
		static const uint8_t seed_str[] = {0x93, 0x01, 0x90, 0xa1, 'x', 0x00, 0, 0, 0};
		static const uint8_t path2[] = {0x93, 0x01, 0x90, 0x00, 0x02, 0, 0, 0};
		static const uint8_t kind4[] = {0x93, 0x01, 0x90, 0x00, 0x00, 4, 8, 0};
		static const uint8_t rank_alone[] = {0x93, 0x01, 0x90, 0x00, 0x00, 0, 8, 0};
		static const uint8_t ref_alone[] = {0x93, 0x01, 0x90, 0x00, 0x00, 0, 0, 9};
		static const uint8_t no_rank[] = {0x93, 0x01, 0x90, 0x00, 0x00, 1, 0, 9};
		static const uint8_t rank65[] = {0x93, 0x01, 0x90, 0x00, 0x00, 2, 65, 9};
		static const uint8_t ok[] = {0x93, 0x01, 0x92, 0xcc, 0x80, 0x40,
		                             0x05, 0x01, 3,    8,    9};
		assert_non_null(b);
		sample(&m, MSG_INVITE);
		m.u.invite.model.type = 1;
		m.u.invite.model.n_hidden = 0;
		m.u.invite.model.seed = 0;
		m.u.invite.path = MSG_PATH_STAR;
		m.u.invite.lr_kind = MSG_LR_NONE;
		m.u.invite.lr_rank = 0;
		m.u.invite.lr_ref = 0;
		assert_int_equal(msg_encode(b, 4096, &len, &m), 0);
		/* [1, [], 0], 0, 0, 0, 0 */
		assert_memory_equal(b + len - 8, "\x93\x01\x90\x00\x00\x00\x00\x00", 8);
		base = len - 8;
		memcpy(b + base, nine, sizeof(nine));
		assert_int_equal(msg_decode(&d, b, base + sizeof(nine)), MSG_ELIMIT);
		memcpy(b + base, type64, sizeof(type64));
		assert_int_equal(msg_decode(&d, b, base + sizeof(type64)), MSG_ELIMIT);
		memcpy(b + base, seed_str, sizeof(seed_str));
		assert_int_equal(msg_decode(&d, b, base + sizeof(seed_str)), MSG_EMALFORMED);
		memcpy(b + base, path2, sizeof(path2));
		assert_int_equal(msg_decode(&d, b, base + sizeof(path2)), MSG_EINVALID);
		memcpy(b + base, kind4, sizeof(kind4));
		assert_int_equal(msg_decode(&d, b, base + sizeof(kind4)), MSG_EINVALID);
		memcpy(b + base, rank_alone, sizeof(rank_alone));
		assert_int_equal(msg_decode(&d, b, base + sizeof(rank_alone)), MSG_EINVALID);
		memcpy(b + base, ref_alone, sizeof(ref_alone));
		assert_int_equal(msg_decode(&d, b, base + sizeof(ref_alone)), MSG_EINVALID);
		memcpy(b + base, no_rank, sizeof(no_rank));
		assert_int_equal(msg_decode(&d, b, base + sizeof(no_rank)), MSG_EINVALID);
		memcpy(b + base, rank65, sizeof(rank65));
		assert_int_equal(msg_decode(&d, b, base + sizeof(rank65)), MSG_EINVALID);
		memcpy(b + base, ok, sizeof(ok)); /* mlp, Hidden 128,64, Seed 5 */
		assert_int_equal(msg_decode(&d, b, base + sizeof(ok)), 0);
		assert_true(d.u.invite.model.n_hidden == 2 && d.u.invite.model.hidden[0] == 128 &&
		            d.u.invite.model.hidden[1] == 64 && d.u.invite.model.seed == 5 &&
		            d.u.invite.path == MSG_PATH_SCATTER);
		assert_true(d.u.invite.lr_kind == MSG_LR_PROJECT && d.u.invite.lr_rank == 8 &&
		            d.u.invite.lr_ref == 9);
		free(b);
	}
	/* 33 members; a 513-byte share; a text of 129 characters. */
	hand_begin(&h, 14, MSG_VERSION, MSG_INVITE);
	msgpack_pack_uint8(&h.pk, 20);
	msgpack_pack_array(&h.pk, 33);
	for (int i = 0; i < 33; i++)
		msgpack_pack_bin_with_body(&h.pk, blob_b + i, 32);
	msgpack_pack_uint8(&h.pk, 1); /* the rest only needs to be well formed */
	msgpack_pack_uint8(&h.pk, 1);
	msgpack_pack_nil(&h.pk);
	msgpack_pack_nil(&h.pk);
	msgpack_pack_nil(&h.pk);
	msgpack_pack_nil(&h.pk);
	msgpack_pack_nil(&h.pk);
	msgpack_pack_nil(&h.pk);
	assert_int_equal(hand_decode(&h), MSG_ELIMIT);

	hand_begin(&h, 5, MSG_VERSION, MSG_SHARES);
	msgpack_pack_array(&h.pk, 1);
	msgpack_pack_array(&h.pk, 3);
	msgpack_pack_uint8(&h.pk, 0);
	msgpack_pack_uint8(&h.pk, 1);
	msgpack_pack_bin(&h.pk, 513);
	for (int i = 0; i < 513; i++)
		msgpack_pack_bin_body(&h.pk, "x", 1);
	assert_int_equal(hand_decode(&h), MSG_ELIMIT);

	hand_begin(&h, 6, MSG_VERSION, MSG_ABORT);
	msgpack_pack_uint8(&h.pk, 1);
	msgpack_pack_str(&h.pk, 129);
	for (int i = 0; i < 129; i++)
		msgpack_pack_str_body(&h.pk, "x", 1);
	assert_int_equal(hand_decode(&h), MSG_ELIMIT);

	/* n_values beyond MSG_MAX_VALUES. */
	sample(&m, MSG_MASKED);
	m.u.masked.n_values = MSG_MAX_VALUES + 1;
	assert_int_equal(msg_validate(&m), MSG_ELIMIT);
	/* A body longer than MSG_MAX_BODY_BYTES is refused before parsing. */
	assert_int_equal(msg_decode(&d, vec, MSG_MAX_BODY_BYTES + 1), MSG_ELIMIT);
}

/* Well-formed but inconsistent: each rule with its own case. */
static void test_inconsistent(void **state)
{
	struct msg m;
	(void)state;

	sample(&m, MSG_INVITE);
	memcpy(m.u.invite.members[3], m.u.invite.members[1], MSG_KEY_BYTES);
	assert_int_equal(msg_validate(&m), MSG_EINVALID); /* duplicate member */
	sample(&m, MSG_INVITE);
	m.u.invite.threshold = 2; /* not a majority of 4 */
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	m.u.invite.threshold = 5;
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	sample(&m, MSG_INVITE);
	m.u.invite.n_members = 2;
	m.u.invite.threshold = 2;
	assert_int_equal(msg_validate(&m), MSG_ELIMIT); /* k < 3 */
	sample(&m, MSG_INVITE);
	m.u.invite.codec.segments[1].scale = 0;
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	sample(&m, MSG_INVITE);
	m.u.invite.codec.segments[0].width = 65;
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	sample(&m, MSG_INVITE);
	m.u.invite.codec.segments[0].length = MSG_MAX_VALUES;
	assert_int_equal(msg_validate(&m), MSG_ELIMIT); /* total over the limit */
	sample(&m, MSG_INVITE);
	m.u.invite.codec.n_segments = 0;
	assert_int_equal(msg_validate(&m), MSG_ELIMIT);
	sample(&m, MSG_INVITE);
	m.u.invite.phase_timeout_ms = 0;
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	sample(&m, MSG_INVITE);
	m.u.invite.model.n_hidden = MSG_MAX_HIDDEN + 1;
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	sample(&m, MSG_INVITE);
	m.u.invite.model.type = MSG_MAX_MODEL_TYPE + 1;
	assert_int_equal(msg_validate(&m), MSG_EINVALID);

	sample(&m, MSG_SHARES);
	m.u.shares.entries[1].from = 2; /* neither one sender nor one holder */
	m.u.shares.entries[1].to = 3;
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	sample(&m, MSG_SHARES);
	m.u.shares.entries[1].to = 1; /* to itself */
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	sample(&m, MSG_SHARES);
	m.u.shares.entries[1].to = 0; /* the same pair twice */
	assert_int_equal(msg_validate(&m), MSG_EINVALID);

	for (int t = MSG_SPLIT; t >= MSG_UNMASK_REQ; t -= MSG_SPLIT - MSG_UNMASK_REQ) {
		struct msg_split *v = t == MSG_SPLIT ? &m.u.split : &m.u.unmask_req.split;
		sample(&m, (enum msg_type)t);
		v->dropped[0] = 1; /* alive and dropped at once */
		assert_int_equal(msg_validate(&m), MSG_EINVALID);
		sample(&m, (enum msg_type)t);
		v->alive[2] = 1; /* not ascending */
		assert_int_equal(msg_validate(&m), MSG_EINVALID);
		sample(&m, (enum msg_type)t);
		v->n_alive = 0;
		assert_int_equal(msg_validate(&m), MSG_ELIMIT);
		sample(&m, (enum msg_type)t);
		v->alive[2] = MSG_MAX_MEMBERS;
		assert_int_equal(msg_validate(&m), MSG_EINVALID);
	}
	for (int t = MSG_PART; t <= MSG_PART_SUM; t += MSG_PART_SUM - MSG_PART) {
		sample(&m, (enum msg_type)t);
		m.u.part.n_values = 0;
		assert_int_equal(msg_validate(&m), MSG_ELIMIT);
		sample(&m, (enum msg_type)t);
		m.u.part.first = MSG_MAX_VALUES - 10; /* the range leaves the limit */
		assert_int_equal(msg_validate(&m), MSG_ELIMIT);
		sample(&m, (enum msg_type)t);
		m.u.part.part = MSG_MAX_MEMBERS;
		assert_int_equal(msg_validate(&m), MSG_EINVALID);
		sample(&m, (enum msg_type)t);
		m.u.part.vector.len = 124; /* under one bit per value */
		assert_int_equal(msg_validate(&m), MSG_EINVALID);
	}
	sample(&m, MSG_SEEDS);
	m.u.seeds.entries[2].kind = 2;
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	sample(&m, MSG_SEEDS);
	m.u.seeds.entries[2].owner = 3; /* owners not ascending */
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	sample(&m, MSG_SEEDS);
	m.u.seeds.n = 0;
	assert_int_equal(msg_validate(&m), MSG_ELIMIT);
	sample(&m, MSG_INVITE);
	m.u.invite.path = MSG_PATH_SCATTER + 1;
	assert_int_equal(msg_validate(&m), MSG_EINVALID);

	sample(&m, MSG_UNMASK_REQ);
	m.u.unmask_req.sigs[2].index = 1; /* signers not ascending */
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	sample(&m, MSG_UNMASK_REQ);
	m.u.unmask_req.n_sigs = 0;
	assert_int_equal(msg_validate(&m), MSG_ELIMIT);
	sample(&m, MSG_SPLIT_SIG);
	m.u.split_sig.index = MSG_MAX_MEMBERS;
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	sample(&m, MSG_ACCEPT);
	m.u.accept.keys.flags = 0x02; /* an unknown statement */
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	sample(&m, MSG_KEYS);
	m.u.keys.entries[1].keys.flags = 0x80;
	assert_int_equal(msg_validate(&m), MSG_EINVALID);

	sample(&m, MSG_KEYS);
	m.u.keys.entries[2].index = 2; /* repeats entry 1's index */
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	sample(&m, MSG_UNMASK_RESP);
	m.u.unmask_resp.entries[1].owner = 0;
	assert_int_equal(msg_validate(&m), MSG_EINVALID);

	sample(&m, MSG_MASKED);
	m.u.masked.vector.len = 100; /* 3000 values cannot fit in 800 bits */
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	sample(&m, MSG_MASKED);
	m.u.masked.n_values = 10; /* nor 10 values use 3750 bytes */
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	sample(&m, MSG_MASKED);
	m.u.masked.weight = -1;
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	sample(&m, MSG_RESULT);
	m.u.result.counted[1] = 40;
	assert_int_equal(msg_validate(&m), MSG_EINVALID);

	sample(&m, MSG_CHECKED);
	m.u.ack.index = MSG_MAX_MEMBERS;
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	sample(&m, MSG_COMMIT);
	m.round_id = 0; /* a round message */
	assert_int_equal(msg_validate(&m), MSG_EINVALID);

	sample(&m, MSG_ABORT);
	m.u.abort.text[3] = '\n'; /* control characters never reach a log */
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	sample(&m, MSG_DECLINE);
	m.u.decline.text[0] = (char)0xc3;
	assert_int_equal(msg_validate(&m), MSG_EINVALID);
	sample(&m, MSG_DECLINE);
	m.u.decline.busy_ms = MSG_MAX_BUSY_MS + 1; /* busy for longer than an hour */
	assert_int_equal(msg_validate(&m), MSG_ELIMIT);
	m.u.decline.busy_ms = MSG_MAX_BUSY_MS;
	assert_int_equal(msg_validate(&m), 0);
}

/* Encoded bytes are stable: the Python interop check relies on the layout. */
static void test_layout(void **state)
{
	struct msg m = {.type = MSG_PING, .round_id = 5, .attempt = 1};
	const uint8_t want[] = {0x96, MSG_VERSION, 0x0b, 0x05, 0x01, 0x07, 0xcd, 0x01, 0x00};
	uint8_t out[32];
	size_t len = 0;
	(void)state;
	m.u.ping.seq = 7;
	m.u.ping.time_ms = 256;
	assert_int_equal(msg_encode(out, sizeof(out), &len, &m), 0);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
}

/* A 10 MB vector: decoded in place, the struct points into the buffer. */
static void test_large_vector_zero_copy(void **state)
{
	const size_t n = 10u * 1000 * 1000;
	struct msg m, d;
	uint8_t *v, *buf;
	size_t len;
	(void)state;
	v = malloc(n);
	assert_non_null(v);
	for (size_t i = 0; i < n; i++)
		v[i] = (uint8_t)(i * 2654435761u >> 24);
	sample(&m, MSG_MASKED);
	m.u.masked.n_values = (uint32_t)(n / 4); /* 32 bits each */
	m.u.masked.vector = (struct msg_bytes){v, n};
	buf = encode(&m, &len);
	assert_true(len > n && len < n + 64);
	assert_int_equal(msg_decode(&d, buf, len), 0);
	assert_true(d.u.masked.vector.ptr > buf && d.u.masked.vector.ptr < buf + len);
	assert_int_equal(d.u.masked.vector.len, n);
	assert_memory_equal(d.u.masked.vector.ptr, v, n);
	free(buf);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_round_trip_every_type),
	        cmocka_unit_test(test_truncated_and_trailing),
	        cmocka_unit_test(test_version_and_type),
	        cmocka_unit_test(test_wrong_msgpack_types),
	        cmocka_unit_test(test_limits),
	        cmocka_unit_test(test_inconsistent),
	        cmocka_unit_test(test_layout),
	        cmocka_unit_test(test_large_vector_zero_copy),
	};
	log_set_level(LOG_LEVEL_ERROR); /* the version refusals warn */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
