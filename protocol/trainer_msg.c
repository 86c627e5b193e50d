/*
 * trainer_msg.c: strict msgpack decoding and encoding of the trainer
 * socket's frames (trainer_msg.h). The decoder scans before msgpack-c
 * parses (msg_scan), refers to byte strings in place, and refuses unknown
 * keys, missing keys, wrong types and values out of range with a line that
 * says which.
 */
#include "protocol/trainer_msg.h"

#include "protocol/msg.h"
#include "util/bytes.h"
#include "util/err.h"

#include <errno.h>
#include <math.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- decoding ---------------------------------------------------------------- */

static int refuse(int rc, char *why, size_t len, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int refuse(int rc, char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && len > 0) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static bool key_is(const msgpack_object *k, const char *s)
{
	size_t n = strlen(s);
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       memcmp(k->via.str.ptr, s, n) == 0;
}

static bool str_is(const msgpack_object *o, const char *s)
{
	return key_is(o, s);
}

static bool get_u64(const msgpack_object *o, uint64_t max, uint64_t *out)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
		return false;
	*out = o->via.u64;
	return true;
}

/* A float or an integer, finite. */
static bool get_num(const msgpack_object *o, double *out)
{
	double v;

	if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
		v = o->via.f64;
	else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		v = (double)o->via.u64;
	else
		return false;
	if (!isfinite(v))
		return false;
	*out = v;
	return true;
}

static bool name_ok(const msgpack_object *o)
{
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 ||
	    o->via.str.size > TMSG_MAX_NAME)
		return false;
	for (uint32_t i = 0; i < o->via.str.size; i++)
		if (o->via.str.ptr[i] < 0x21 || o->via.str.ptr[i] > 0x7e)
			return false;
	return true;
}

static int decode_layout(struct tmsg_hello *h, const msgpack_object *o, char *why, size_t wl)
{
	uint64_t total = 0;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0)
		return refuse(MSG_EMALFORMED, why, wl,
		              "layout: a non-empty array of [name, shape]");
	if (o->via.array.size > TMSG_MAX_TENSORS)
		return refuse(MSG_ELIMIT, why, wl, "layout: %u tensors, at most %d",
		              o->via.array.size, TMSG_MAX_TENSORS);
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		const msgpack_object *e = &o->via.array.ptr[i], *shape;
		struct tmsg_tensor *t = &h->tensors[i];
		uint64_t numel = 1;

		if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2)
			return refuse(MSG_EMALFORMED, why, wl, "layout[%u]: not [name, shape]", i);
		if (!name_ok(&e->via.array.ptr[0]))
			return refuse(
			        MSG_EINVALID, why, wl,
			        "layout[%u]: the name must be 1-%d printable ASCII characters "
			        "without spaces",
			        i, TMSG_MAX_NAME);
		shape = &e->via.array.ptr[1];
		if (shape->type != MSGPACK_OBJECT_ARRAY || shape->via.array.size > TMSG_MAX_DIMS)
			return refuse(MSG_EMALFORMED, why, wl,
			              "layout[%u]: the shape must be an array of at most %d sizes",
			              i, TMSG_MAX_DIMS);
		memcpy(t->name, e->via.array.ptr[0].via.str.ptr, e->via.array.ptr[0].via.str.size);
		t->name[e->via.array.ptr[0].via.str.size] = '\0';
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(h->tensors[j].name, t->name) == 0)
				return refuse(MSG_EINVALID, why, wl, "layout: %s twice", t->name);
		t->ndim = shape->via.array.size;
		for (uint32_t d = 0; d < t->ndim; d++) {
			uint64_t v;
			if (!get_u64(&shape->via.array.ptr[d], TMSG_MAX_PARAMS, &v) || v == 0)
				return refuse(MSG_EINVALID, why, wl,
				              "layout: %s: sizes must be integers 1..%u", t->name,
				              TMSG_MAX_PARAMS);
			t->shape[d] = (uint32_t)v;
			numel *= v;
			if (numel > TMSG_MAX_PARAMS)
				break;
		}
		total += numel;
		if (numel > TMSG_MAX_PARAMS || total > TMSG_MAX_PARAMS)
			return refuse(MSG_ELIMIT, why, wl,
			              "layout: more than %u parameters (what one secure round "
			              "carries)",
			              TMSG_MAX_PARAMS);
		t->numel = numel;
	}
	h->n_tensors = o->via.array.size;
	h->n_params = total;
	return 0;
}

static int decode_hello(struct tmsg_hello *h, const msgpack_object *m, char *why, size_t wl)
{
	bool seen_v = false, seen_l = false, seen_d = false, seen_r = false;
	int rc;

	memset(h, 0, sizeof(*h));
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
		uint64_t u;

		if (key_is(k, "t"))
			continue;
		if (key_is(k, "v") && !seen_v) {
			if (!get_u64(v, UINT32_MAX, &u))
				return refuse(MSG_EMALFORMED, why, wl, "hello: v is not a version");
			if (u != TMSG_VERSION)
				return refuse(MSG_EVERSION, why, wl,
				              "hello: trainer protocol %llu, this node speaks %d",
				              (unsigned long long)u, TMSG_VERSION);
			h->version = (uint32_t)u;
			seen_v = true;
		} else if (key_is(k, "layout") && !seen_l) {
			rc = decode_layout(h, v, why, wl);
			if (rc != 0)
				return rc;
			seen_l = true;
		} else if (key_is(k, "dtype") && !seen_d) {
			if (!str_is(v, "float32"))
				return refuse(
				        MSG_EINVALID, why, wl,
				        "hello: dtype must be \"float32\" (convert buffers and "
				        "parameters to float32)");
			seen_d = true;
		} else if (key_is(k, "rows") && !seen_r) {
			if (!get_u64(v, UINT32_MAX, &h->rows) || h->rows == 0)
				return refuse(
				        MSG_EINVALID, why, wl,
				        "hello: rows must be the training set's size, 1..2^32-1");
			seen_r = true;
		} else {
			return refuse(MSG_EMALFORMED, why, wl, "hello: unknown or repeated key");
		}
	}
	if (!seen_v || !seen_l || !seen_d || !seen_r)
		return refuse(MSG_EMALFORMED, why, wl, "hello: needs v, layout, dtype and rows");
	return TMSG_HELLO;
}

static int decode_params(struct tmsg_params *p, const msgpack_object *m, uint64_t n_params,
                         char *why, size_t wl)
{
	bool seen_a = false, seen_e = false, seen_d = false, seen_x = false, seen_acc = false,
	     seen_loss = false;

	memset(p, 0, sizeof(*p));
	if (n_params == 0)
		return refuse(MSG_EINVALID, why, wl, "params before hello");
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;

		if (key_is(k, "t"))
			continue;
		if (key_is(k, "applied") && !seen_a) {
			if (!get_u64(v, UINT64_MAX, &p->applied))
				return refuse(MSG_EMALFORMED, why, wl,
				              "params: applied is not a seq");
			seen_a = true;
		} else if (key_is(k, "epochs") && !seen_e) {
			if (!get_num(v, &p->epochs) || p->epochs < 0 || p->epochs > 1e9)
				return refuse(MSG_EINVALID, why, wl,
				              "params: epochs must be a number 0..1e9");
			seen_e = true;
		} else if (key_is(k, "done") && !seen_d) {
			if (v->type != MSGPACK_OBJECT_BOOLEAN)
				return refuse(MSG_EMALFORMED, why, wl,
				              "params: done is not a boolean");
			p->done = v->via.boolean;
			seen_d = true;
		} else if (key_is(k, "accuracy") && !seen_acc) {
			if (!get_num(v, &p->accuracy) || p->accuracy < 0 || p->accuracy > 1)
				return refuse(MSG_EINVALID, why, wl,
				              "params: accuracy must be 0..1");
			seen_acc = true;
		} else if (key_is(k, "loss") && !seen_loss) {
			if (!get_num(v, &p->loss) || p->loss < 0)
				return refuse(MSG_EINVALID, why, wl,
				              "params: loss must be a finite number >= 0");
			seen_loss = true;
		} else if (key_is(k, "x") && !seen_x) {
			if (v->type != MSGPACK_OBJECT_BIN)
				return refuse(MSG_EMALFORMED, why, wl,
				              "params: x is not a byte string");
			if ((uint64_t)v->via.bin.size != 4 * n_params)
				return refuse(
				        MSG_EINVALID, why, wl,
				        "params: x holds %u bytes; the layout has %llu float32 "
				        "values",
				        v->via.bin.size, (unsigned long long)n_params);
			p->x = (const uint8_t *)v->via.bin.ptr;
			p->x_len = v->via.bin.size;
			seen_x = true;
		} else {
			return refuse(MSG_EMALFORMED, why, wl, "params: unknown or repeated key");
		}
	}
	if (!seen_a || !seen_e || !seen_d || !seen_x)
		return refuse(MSG_EMALFORMED, why, wl, "params: needs applied, epochs, done and x");
	if (seen_acc != seen_loss)
		return refuse(MSG_EMALFORMED, why, wl, "params: accuracy and loss go together");
	p->has_eval = seen_acc;
	/* Every value must be finite: one NaN would reach the whole group. */
	for (size_t i = 0; i < p->x_len; i += 4) {
		float f;
		uint32_t u = bytes_get_le32(p->x + i);
		memcpy(&f, &u, sizeof(f));
		if (!isfinite(f))
			return refuse(
			        MSG_EINVALID, why, wl,
			        "params: x[%zu] is not finite (NaN or Inf); nothing was taken",
			        i / 4);
	}
	return TMSG_PARAMS;
}

int tmsg_decode(const uint8_t *buf, size_t len, uint64_t n_params, struct tmsg_hello *h,
                struct tmsg_params *p, char *why, size_t why_len)
{
	msgpack_unpacked up;
	const msgpack_object *m, *type = NULL;
	struct tmsg_params pp;
	size_t off = 0;
	int rc;

	if (why != NULL && why_len > 0)
		why[0] = '\0';
	if (len > (n_params > 0 ? 4 * n_params + TMSG_FRAME_EXTRA : TMSG_MAX_HELLO))
		return refuse(MSG_ELIMIT, why, why_len, "frame too large");
	rc = msg_scan(buf, len);
	if (rc != 0)
		return refuse(rc, why, why_len, "not one msgpack object within the limits");
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, (const char *)buf, len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    off != len || up.data.type != MSGPACK_OBJECT_MAP) {
		rc = refuse(MSG_EMALFORMED, why, why_len, "not a msgpack map");
		goto out;
	}
	m = &up.data;
	for (uint32_t i = 0; i < m->via.map.size; i++)
		if (key_is(&m->via.map.ptr[i].key, "t")) {
			if (type != NULL) {
				rc = refuse(MSG_EMALFORMED, why, why_len, "t twice");
				goto out;
			}
			type = &m->via.map.ptr[i].val;
		}
	if (type == NULL) {
		rc = refuse(MSG_EMALFORMED, why, why_len, "no message type (key t)");
	} else if (str_is(type, "hello")) {
		struct tmsg_hello *hh = malloc(sizeof(*hh));
		if (hh == NULL) {
			rc = refuse(-ENOMEM, why, why_len, "out of memory");
			goto out;
		}
		rc = decode_hello(hh, m, why, why_len);
		if (rc == TMSG_HELLO && h != NULL)
			memcpy(h, hh, sizeof(*h));
		else if (rc == TMSG_HELLO)
			rc = refuse(MSG_EINVALID, why, why_len,
			            "hello: this trainer said hello already");
		free(hh);
	} else if (str_is(type, "params")) {
		rc = decode_params(&pp, m, n_params, why, why_len);
		if (rc == TMSG_PARAMS && p != NULL)
			*p = pp;
	} else {
		rc = refuse(MSG_ETYPE, why, why_len, "unknown message type (hello or params)");
	}
out:
	msgpack_unpacked_destroy(&up);
	return rc;
}

uint64_t tmsg_layout_hash(const struct tmsg_hello *h)
{
	crypto_generichash_state st;
	uint8_t out[crypto_generichash_BYTES_MIN], b[8];
	static const char tag[] = "sotto trainer layout v1 float32";
	uint64_t v = 0;

	crypto_generichash_init(&st, NULL, 0, sizeof(out));
	crypto_generichash_update(&st, (const uint8_t *)tag, sizeof(tag));
	for (size_t i = 0; i < h->n_tensors; i++) {
		const struct tmsg_tensor *t = &h->tensors[i];
		crypto_generichash_update(&st, (const uint8_t *)t->name, strlen(t->name) + 1);
		bytes_put_be32(b, t->ndim);
		crypto_generichash_update(&st, b, 4);
		for (uint32_t d = 0; d < t->ndim; d++) {
			bytes_put_be32(b, t->shape[d]);
			crypto_generichash_update(&st, b, 4);
		}
	}
	crypto_generichash_final(&st, out, sizeof(out));
	for (size_t i = 0; i < 8; i++)
		v = v << 8 | out[i];
	return v;
}

/* --- encoding ------------------------------------------------------------------ */

/* A frame: the length prefix is filled in by frame_done. */
static int frame_open(msgpack_sbuffer *sb, msgpack_packer *pk, size_t hint)
{
	msgpack_sbuffer_init(sb);
	sb->data = malloc(hint + 64);
	if (sb->data == NULL)
		return -ENOMEM;
	sb->alloc = hint + 64;
	sb->size = 4;
	msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
	return 0;
}

static int frame_done(msgpack_sbuffer *sb, int rc, uint8_t **out, size_t *len)
{
	if (rc != 0 || sb->data == NULL || sb->size - 4 > UINT32_MAX) {
		free(sb->data);
		return -ENOMEM;
	}
	bytes_put_be32((uint8_t *)sb->data, (uint32_t)(sb->size - 4));
	*out = (uint8_t *)sb->data;
	*len = sb->size;
	return 0;
}

static int pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	if (msgpack_pack_str(pk, n) != 0)
		return -1;
	return n > 0 ? msgpack_pack_str_body(pk, s, n) : 0;
}

/* float32 values as little-endian bytes. */
static int pack_floats(msgpack_packer *pk, const float *x, uint64_t n)
{
	if (msgpack_pack_bin(pk, (size_t)(4 * n)) != 0)
		return -1;
	if (n == 0)
		return 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return msgpack_pack_bin_body(pk, x, (size_t)(4 * n));
#else
	for (uint64_t i = 0; i < n; i++) {
		uint8_t b[4];
		uint32_t u;
		memcpy(&u, &x[i], 4);
		bytes_put_le32(b, u);
		if (msgpack_pack_bin_body(pk, b, 4) != 0)
			return -1;
	}
	return 0;
#endif
}

#define P(call)                                                                                    \
	do {                                                                                       \
		if (rc == 0 && (call) != 0)                                                        \
			rc = -1;                                                                   \
	} while (0)

int tmsg_encode_welcome(uint8_t **out, size_t *len, uint64_t n_params, uint64_t layout_hash,
                        const char *node, uint64_t rounds, const float *last)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char hex[17];
	int rc = frame_open(&sb, &pk, 256 + (last != NULL ? 4 * n_params : 0));

	if (rc != 0)
		return rc;
	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)layout_hash);
	P(msgpack_pack_map(&pk, last != NULL ? 7 : 6));
	P(pack_str(&pk, "t"));
	P(pack_str(&pk, "welcome"));
	P(pack_str(&pk, "v"));
	P(msgpack_pack_uint32(&pk, TMSG_VERSION));
	P(pack_str(&pk, "n_params"));
	P(msgpack_pack_uint64(&pk, n_params));
	P(pack_str(&pk, "layout"));
	P(pack_str(&pk, hex));
	P(pack_str(&pk, "node"));
	P(pack_str(&pk, node));
	P(pack_str(&pk, "rounds"));
	P(msgpack_pack_uint64(&pk, rounds));
	if (last != NULL) {
		P(pack_str(&pk, "last"));
		P(pack_floats(&pk, last, n_params));
	}
	return frame_done(&sb, rc, out, len);
}

int tmsg_encode_result(uint8_t **out, size_t *len, uint64_t seq, uint64_t round, const float *delta,
                       uint64_t n_params)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc = frame_open(&sb, &pk, 128 + 4 * n_params);

	if (rc != 0)
		return rc;
	P(msgpack_pack_map(&pk, 4));
	P(pack_str(&pk, "t"));
	P(pack_str(&pk, "result"));
	P(pack_str(&pk, "seq"));
	P(msgpack_pack_uint64(&pk, seq));
	P(pack_str(&pk, "round"));
	P(msgpack_pack_uint64(&pk, round));
	P(pack_str(&pk, "delta"));
	P(pack_floats(&pk, delta, n_params));
	return frame_done(&sb, rc, out, len);
}

int tmsg_encode_finish(uint8_t **out, size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc = frame_open(&sb, &pk, 32);

	if (rc != 0)
		return rc;
	P(msgpack_pack_map(&pk, 1));
	P(pack_str(&pk, "t"));
	P(pack_str(&pk, "finish"));
	return frame_done(&sb, rc, out, len);
}

int tmsg_encode_error(uint8_t **out, size_t *len, const char *msg)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char text[TMSG_MAX_TEXT + 1];
	int rc = frame_open(&sb, &pk, 64 + TMSG_MAX_TEXT);

	if (rc != 0)
		return rc;
	snprintf(text, sizeof(text), "%s", msg);
	P(msgpack_pack_map(&pk, 2));
	P(pack_str(&pk, "t"));
	P(pack_str(&pk, "error"));
	P(pack_str(&pk, "msg"));
	P(pack_str(&pk, text));
	return frame_done(&sb, rc, out, len);
}

int tmsg_encode_hello(uint8_t **out, size_t *len, const struct tmsg_hello *h)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc = frame_open(&sb, &pk, 256 + h->n_tensors * (TMSG_MAX_NAME + 64));

	if (rc != 0)
		return rc;
	P(msgpack_pack_map(&pk, 5));
	P(pack_str(&pk, "t"));
	P(pack_str(&pk, "hello"));
	P(pack_str(&pk, "v"));
	P(msgpack_pack_uint32(&pk, h->version));
	P(pack_str(&pk, "layout"));
	P(msgpack_pack_array(&pk, h->n_tensors));
	for (size_t i = 0; i < h->n_tensors; i++) {
		P(msgpack_pack_array(&pk, 2));
		P(pack_str(&pk, h->tensors[i].name));
		P(msgpack_pack_array(&pk, h->tensors[i].ndim));
		for (uint32_t d = 0; d < h->tensors[i].ndim; d++)
			P(msgpack_pack_uint32(&pk, h->tensors[i].shape[d]));
	}
	P(pack_str(&pk, "dtype"));
	P(pack_str(&pk, "float32"));
	P(pack_str(&pk, "rows"));
	P(msgpack_pack_uint64(&pk, h->rows));
	return frame_done(&sb, rc, out, len);
}

int tmsg_encode_params(uint8_t **out, size_t *len, const struct tmsg_params *p)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc = frame_open(&sb, &pk, 256 + p->x_len);

	if (rc != 0)
		return rc;
	P(msgpack_pack_map(&pk, p->has_eval ? 7 : 5));
	P(pack_str(&pk, "t"));
	P(pack_str(&pk, "params"));
	P(pack_str(&pk, "applied"));
	P(msgpack_pack_uint64(&pk, p->applied));
	P(pack_str(&pk, "epochs"));
	P(msgpack_pack_double(&pk, p->epochs));
	P(pack_str(&pk, "done"));
	P(p->done ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
	if (p->has_eval) {
		P(pack_str(&pk, "accuracy"));
		P(msgpack_pack_double(&pk, p->accuracy));
		P(pack_str(&pk, "loss"));
		P(msgpack_pack_double(&pk, p->loss));
	}
	P(pack_str(&pk, "x"));
	P(msgpack_pack_bin(&pk, p->x_len));
	if (p->x_len > 0)
		P(msgpack_pack_bin_body(&pk, p->x, p->x_len));
	return frame_done(&sb, rc, out, len);
}
