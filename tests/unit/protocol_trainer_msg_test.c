/*
 * protocol_trainer_msg_test.c: the trainer socket's frames
 * (protocol/trainer_msg.h) and DataDir/external.state (node/external.h):
 * round trips, the layout hash, and malformed input refused with a line
 * that says why and nothing filled in.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "node/external.h"
#include "protocol/msg.h"
#include "protocol/trainer_msg.h"
#include "util/bytes.h"

#include <errno.h>
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

static void hello_fill(struct tmsg_hello *h)
{
	memset(h, 0, sizeof(*h));
	h->version = TMSG_VERSION;
	h->n_tensors = 3;
	snprintf(h->tensors[0].name, sizeof(h->tensors[0].name), "conv1.weight");
	h->tensors[0].ndim = 4;
	h->tensors[0].shape[0] = 8;
	h->tensors[0].shape[1] = 1;
	h->tensors[0].shape[2] = 3;
	h->tensors[0].shape[3] = 3;
	snprintf(h->tensors[1].name, sizeof(h->tensors[1].name), "bn1.running_mean");
	h->tensors[1].ndim = 1;
	h->tensors[1].shape[0] = 8;
	snprintf(h->tensors[2].name, sizeof(h->tensors[2].name), "scale");
	h->tensors[2].ndim = 0; /* a scalar */
	h->rows = 1234;
}

/* A frame's body: the encoder's output without the 4-byte length. */
static const uint8_t *body(const uint8_t *frame, size_t len, size_t *blen)
{
	assert_true(len >= 4);
	assert_int_equal(bytes_get_be32(frame), len - 4);
	*blen = len - 4;
	return frame + 4;
}

static void test_hello_round_trip_and_hash(void **state)
{
	(void)state;
	struct tmsg_hello h, back;
	uint8_t *f;
	size_t len, bl;
	const uint8_t *b;
	char why[256];

	hello_fill(&h);
	assert_int_equal(tmsg_encode_hello(&f, &len, &h), 0);
	b = body(f, len, &bl);
	assert_int_equal(tmsg_decode(b, bl, 0, &back, NULL, why, sizeof(why)), TMSG_HELLO);
	assert_int_equal(back.n_tensors, 3);
	assert_int_equal(back.n_params, 72 + 8 + 1);
	assert_int_equal(back.tensors[2].ndim, 0);
	assert_int_equal(back.tensors[2].numel, 1);
	assert_string_equal(back.tensors[1].name, "bn1.running_mean");
	assert_int_equal(back.rows, 1234);
	assert_true(tmsg_layout_hash(&back) == tmsg_layout_hash(&h));
	/* Any change of a name or a shape changes the hash. */
	back.tensors[0].shape[2] = 9;
	assert_true(tmsg_layout_hash(&back) != tmsg_layout_hash(&h));
	back.tensors[0].shape[2] = 3;
	back.tensors[1].name[0] = 'B';
	assert_true(tmsg_layout_hash(&back) != tmsg_layout_hash(&h));
	/* A hello is refused where the caller has one already (h NULL). */
	assert_true(tmsg_decode(b, bl, 0, NULL, NULL, why, sizeof(why)) < 0);
	assert_non_null(strstr(why, "hello already"));
	free(f);
}

static void test_params_round_trip(void **state)
{
	(void)state;
	float x[81];
	struct tmsg_params p = {0}, back;
	uint8_t *f;
	size_t len, bl;
	const uint8_t *b;
	char why[256];

	for (int i = 0; i < 81; i++)
		x[i] = (float)i * 0.25f - 3.0f;
	p.applied = 7;
	p.epochs = 1.5;
	p.done = true;
	p.has_eval = true;
	p.accuracy = 0.875;
	p.loss = 0.4;
	p.x = (const uint8_t *)x;
	p.x_len = sizeof(x);
	assert_int_equal(tmsg_encode_params(&f, &len, &p), 0);
	b = body(f, len, &bl);
	assert_int_equal(tmsg_decode(b, bl, 81, NULL, &back, why, sizeof(why)), TMSG_PARAMS);
	assert_int_equal(back.applied, 7);
	assert_true(back.done && back.has_eval);
	assert_true(back.epochs == 1.5 && back.accuracy == 0.875 && back.loss == 0.4);
	assert_int_equal(back.x_len, sizeof(x));
	assert_memory_equal(back.x, x, sizeof(x));
	/* The wrong number of values for the layout: refused, and why. */
	assert_int_equal(tmsg_decode(b, bl, 80, NULL, &back, why, sizeof(why)), MSG_EINVALID);
	assert_non_null(strstr(why, "float32 values"));
	/* params before a layout */
	assert_int_equal(tmsg_decode(b, bl, 0, NULL, &back, why, sizeof(why)), MSG_EINVALID);
	free(f);
	/* A NaN never gets in. */
	x[40] = NAN;
	assert_int_equal(tmsg_encode_params(&f, &len, &p), 0);
	b = body(f, len, &bl);
	assert_int_equal(tmsg_decode(b, bl, 81, NULL, &back, why, sizeof(why)), MSG_EINVALID);
	assert_non_null(strstr(why, "x[40]"));
	free(f);
}

/* Encodes a map from (key, packer) pairs by hand, for malformed frames. */
struct hand {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

static void hand_begin(struct hand *h, size_t n)
{
	msgpack_sbuffer_init(&h->sb);
	msgpack_packer_init(&h->pk, &h->sb, msgpack_sbuffer_write);
	msgpack_pack_map(&h->pk, n);
}

static void hand_str(struct hand *h, const char *s)
{
	msgpack_pack_str(&h->pk, strlen(s));
	msgpack_pack_str_body(&h->pk, s, strlen(s));
}

static int hand_decode(struct hand *h, uint64_t n_params, char *why, size_t wl)
{
	struct tmsg_hello *hh = malloc(sizeof(*hh)), before;
	struct tmsg_params p, pb;
	int rc;

	memset(hh, 0x5a, sizeof(*hh));
	memset(&p, 0x5a, sizeof(p));
	before = *hh;
	pb = p;
	rc = tmsg_decode((const uint8_t *)h->sb.data, h->sb.size, n_params, hh, &p, why, wl);
	if (rc < 0) {
		/* refused: nothing of the caller's was touched */
		assert_memory_equal(hh, &before, sizeof(before));
		assert_memory_equal(&p, &pb, sizeof(p));
	}
	free(hh);
	msgpack_sbuffer_destroy(&h->sb);
	return rc;
}

static void hello_layout(struct hand *h, const char *name, int ndim, uint64_t dim)
{
	hand_str(h, "layout");
	msgpack_pack_array(&h->pk, 1);
	msgpack_pack_array(&h->pk, 2);
	hand_str(h, name);
	msgpack_pack_array(&h->pk, (size_t)ndim);
	for (int i = 0; i < ndim; i++)
		msgpack_pack_uint64(&h->pk, dim);
}

/* A hello of version v, dtype, one tensor (name, ndim sizes of dim), rows or not, an extra key or
 * not. */
static int hello_variant(uint64_t v, const char *dtype, const char *name, int ndim, uint64_t dim,
                         bool rows, bool extra, char why[256])
{
	struct hand h;

	hand_begin(&h, 4 + rows + extra);
	hand_str(&h, "t");
	hand_str(&h, "hello");
	hand_str(&h, "v");
	msgpack_pack_uint64(&h.pk, v);
	hello_layout(&h, name, ndim, dim);
	hand_str(&h, "dtype");
	hand_str(&h, dtype);
	if (rows) {
		hand_str(&h, "rows");
		msgpack_pack_uint8(&h.pk, 9);
	}
	if (extra) {
		hand_str(&h, "extra");
		msgpack_pack_nil(&h.pk);
	}
	return hand_decode(&h, 0, why, 256);
}

static void test_malformed_refused(void **state)
{
	(void)state;
	struct hand h;
	char why[256];
	static const uint8_t junk[] = {0xc1};
	static const uint8_t bomb[] = {0xdd, 0xff, 0xff, 0xff, 0xff}; /* an array of 4G */

	/* not msgpack, a huge declared array, not a map */
	assert_true(tmsg_decode(junk, sizeof(junk), 0, NULL, NULL, why, sizeof(why)) < 0);
	assert_true(tmsg_decode(bomb, sizeof(bomb), 0, NULL, NULL, why, sizeof(why)) < 0);
	/* no type */
	hand_begin(&h, 1);
	hand_str(&h, "v");
	msgpack_pack_uint8(&h.pk, 1);
	assert_int_equal(hand_decode(&h, 0, why, sizeof(why)), MSG_EMALFORMED);
	assert_non_null(strstr(why, "type"));
	/* an unknown type */
	hand_begin(&h, 1);
	hand_str(&h, "t");
	hand_str(&h, "result"); /* node -> trainer only */
	assert_int_equal(hand_decode(&h, 0, why, sizeof(why)), MSG_ETYPE);
	/* another protocol version, float64, a zero size, more than a round carries */
	assert_int_equal(hello_variant(2, "float64", "w", 1, 4, true, false, why), MSG_EVERSION);
	assert_int_equal(hello_variant(1, "float64", "w", 1, 4, true, false, why), MSG_EINVALID);
	assert_non_null(strstr(why, "float32"));
	assert_int_equal(hello_variant(1, "float32", "w", 2, 0, true, false, why), MSG_EINVALID);
	assert_int_equal(hello_variant(1, "float32", "w", 3, 1u << 10, true, false, why),
	                 MSG_ELIMIT);
	/* a name with a space; a missing key (rows); an unknown key */
	assert_int_equal(hello_variant(1, "float32", "fc weight", 1, 4, true, false, why),
	                 MSG_EINVALID);
	assert_int_equal(hello_variant(1, "float32", "w", 1, 4, false, false, why), MSG_EMALFORMED);
	assert_non_null(strstr(why, "rows"));
	assert_int_equal(hello_variant(1, "float32", "w", 1, 4, true, true, why), MSG_EMALFORMED);
	/* and the well-formed one decodes */
	assert_int_equal(hello_variant(1, "float32", "w", 1, 4, true, false, why), TMSG_HELLO);
	/* params: x not bin; accuracy without loss; accuracy above 1 */
	hand_begin(&h, 5);
	hand_str(&h, "t");
	hand_str(&h, "params");
	hand_str(&h, "applied");
	msgpack_pack_uint8(&h.pk, 0);
	hand_str(&h, "epochs");
	msgpack_pack_double(&h.pk, 0.5);
	hand_str(&h, "done");
	msgpack_pack_false(&h.pk);
	hand_str(&h, "x");
	hand_str(&h, "abcd");
	assert_int_equal(hand_decode(&h, 1, why, sizeof(why)), MSG_EMALFORMED);
	hand_begin(&h, 6);
	hand_str(&h, "t");
	hand_str(&h, "params");
	hand_str(&h, "applied");
	msgpack_pack_uint8(&h.pk, 0);
	hand_str(&h, "epochs");
	msgpack_pack_double(&h.pk, 0.5);
	hand_str(&h, "done");
	msgpack_pack_false(&h.pk);
	hand_str(&h, "accuracy");
	msgpack_pack_double(&h.pk, 0.5);
	hand_str(&h, "x");
	msgpack_pack_bin(&h.pk, 4);
	msgpack_pack_bin_body(&h.pk, "\0\0\0\0", 4);
	assert_int_equal(hand_decode(&h, 1, why, sizeof(why)), MSG_EMALFORMED);
	hand_begin(&h, 7);
	hand_str(&h, "t");
	hand_str(&h, "params");
	hand_str(&h, "applied");
	msgpack_pack_uint8(&h.pk, 0);
	hand_str(&h, "epochs");
	msgpack_pack_double(&h.pk, 0.5);
	hand_str(&h, "done");
	msgpack_pack_false(&h.pk);
	hand_str(&h, "accuracy");
	msgpack_pack_double(&h.pk, 1.5);
	hand_str(&h, "loss");
	msgpack_pack_double(&h.pk, 0.5);
	hand_str(&h, "x");
	msgpack_pack_bin(&h.pk, 4);
	msgpack_pack_bin_body(&h.pk, "\0\0\0\0", 4);
	assert_int_equal(hand_decode(&h, 1, why, sizeof(why)), MSG_EINVALID);
}

static void test_node_frames(void **state)
{
	(void)state;
	float v[5] = {1, -2, 3.5f, 0, 1e-3f};
	msgpack_unpacked up;
	uint8_t *f;
	size_t len, off = 0;

	assert_int_equal(tmsg_encode_result(&f, &len, 9, 0xabcdef, v, 5), 0);
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, (const char *)f + 4, len - 4, &off),
	                 MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, len - 4);
	assert_int_equal(up.data.type, MSGPACK_OBJECT_MAP);
	assert_int_equal(up.data.via.map.size, 4);
	assert_int_equal(up.data.via.map.ptr[3].val.via.bin.size, 20);
	assert_memory_equal(up.data.via.map.ptr[3].val.via.bin.ptr, v, 20);
	msgpack_unpacked_destroy(&up);
	free(f);
	assert_int_equal(tmsg_encode_welcome(&f, &len, 5, 0x0123456789abcdefull, "a", 3, v), 0);
	assert_int_equal(bytes_get_be32(f), len - 4);
	assert_non_null(memmem(f, len, "0123456789abcdef", 16));
	free(f);
	assert_int_equal(tmsg_encode_error(&f, &len, "why"), 0);
	free(f);
	assert_int_equal(tmsg_encode_finish(&f, &len), 0);
	free(f);
}

static void test_state_file(void **state)
{
	(void)state;
	struct tmsg_hello h, *back = malloc(sizeof(*back));
	static const uint8_t extra[] = {1, 2, 3, 4, 5};
	const uint8_t *e;
	uint8_t *buf;
	size_t len, el;

	hello_fill(&h);
	assert_int_equal(ext_statefile_head(&buf, &len, &h), 0);
	buf = realloc(buf, len + sizeof(extra)); /* the node writes head and extra as two parts */
	memcpy(buf + len, extra, sizeof(extra));
	len += sizeof(extra);
	assert_int_equal(ext_statefile_decode(buf, len, back, &e, &el), 0);
	assert_int_equal(el, sizeof(extra));
	assert_memory_equal(e, extra, sizeof(extra));
	assert_true(tmsg_layout_hash(back) == tmsg_layout_hash(&h));
	/* Cut short anywhere in the header or the layout: refused. */
	for (size_t cut = 0; cut < len - sizeof(extra); cut++)
		assert_int_equal(ext_statefile_decode(buf, cut, back, &e, &el), -EINVAL);
	buf[0] ^= 1;
	assert_int_equal(ext_statefile_decode(buf, len, back, &e, &el), -EINVAL);
	free(buf);
	free(back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_hello_round_trip_and_hash),
	        cmocka_unit_test(test_params_round_trip),
	        cmocka_unit_test(test_malformed_refused),
	        cmocka_unit_test(test_node_frames),
	        cmocka_unit_test(test_state_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
