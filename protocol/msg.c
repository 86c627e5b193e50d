/*
 * msg.c: strict msgpack encoding and decoding of the protocol messages.
 *
 * Encoding packs with msgpack-c's packer into a caller's buffer (a first
 * pass with a counting writer gives the exact size). Decoding is three
 * steps: a bounded scanner walks the raw bytes (depth, object count, every
 * length within the buffer, one object, no trailing bytes), because
 * msgpack-c would otherwise allocate an array's declared size before
 * reading it (a 5-byte input could ask for gigabytes); then msgpack-c
 * parses into a zone, referencing byte strings in place; then typed
 * getters fill the struct, and msg_validate() applies the semantic rules
 * the encoder also applies. Not here: codec or crypto meaning of the bytes.
 */
#include "protocol/msg.h"

#include "util/bytes.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <string.h>

#define N_COMMON 4 /* version, type, round_id, attempt */

/* --- the bounded scanner -------------------------------------------------- */

/* A big-endian unsigned of n = 0, 1, 2, 4 or 8 bytes (msgpack lengths, uints). */
static uint64_t be_read(const uint8_t *p, size_t n)
{
	switch (n) {
	case 0:
		return 0;
	case 1:
		return p[0];
	case 2:
		return bytes_get_be16(p);
	case 4:
		return bytes_get_be32(p);
	default:
		SOTTO_ASSERT(n == 8);
		return bytes_get_be64(p);
	}
}

enum fmt_kind { FMT_BAD, FMT_SCALAR, FMT_BYTES, FMT_ARRAY, FMT_MAP };

/*
 * The formats 0xc0..0xdf (msgpack spec): the kind, how many bytes encode a
 * length, and how many payload bytes follow besides that length (the ext
 * type byte, or the whole value of fixed-size formats).
 */
static const struct {
	uint8_t kind, lenbytes, fixed;
} formats[32] = {
        [0x00] = {FMT_SCALAR, 0, 0},  /* nil */
        [0x01] = {FMT_BAD, 0, 0},     /* never used */
        [0x02] = {FMT_SCALAR, 0, 0},  /* false */
        [0x03] = {FMT_SCALAR, 0, 0},  /* true */
        [0x04] = {FMT_BYTES, 1, 0},   /* bin8 */
        [0x05] = {FMT_BYTES, 2, 0},   /* bin16 */
        [0x06] = {FMT_BYTES, 4, 0},   /* bin32 */
        [0x07] = {FMT_BYTES, 1, 1},   /* ext8 */
        [0x08] = {FMT_BYTES, 2, 1},   /* ext16 */
        [0x09] = {FMT_BYTES, 4, 1},   /* ext32 */
        [0x0a] = {FMT_SCALAR, 0, 4},  /* float32 */
        [0x0b] = {FMT_SCALAR, 0, 8},  /* float64 */
        [0x0c] = {FMT_SCALAR, 0, 1},  /* uint8 */
        [0x0d] = {FMT_SCALAR, 0, 2},  /* uint16 */
        [0x0e] = {FMT_SCALAR, 0, 4},  /* uint32 */
        [0x0f] = {FMT_SCALAR, 0, 8},  /* uint64 */
        [0x10] = {FMT_SCALAR, 0, 1},  /* int8 */
        [0x11] = {FMT_SCALAR, 0, 2},  /* int16 */
        [0x12] = {FMT_SCALAR, 0, 4},  /* int32 */
        [0x13] = {FMT_SCALAR, 0, 8},  /* int64 */
        [0x14] = {FMT_SCALAR, 0, 2},  /* fixext1 */
        [0x15] = {FMT_SCALAR, 0, 3},  /* fixext2 */
        [0x16] = {FMT_SCALAR, 0, 5},  /* fixext4 */
        [0x17] = {FMT_SCALAR, 0, 9},  /* fixext8 */
        [0x18] = {FMT_SCALAR, 0, 17}, /* fixext16 */
        [0x19] = {FMT_BYTES, 1, 0},   /* str8 */
        [0x1a] = {FMT_BYTES, 2, 0},   /* str16 */
        [0x1b] = {FMT_BYTES, 4, 0},   /* str32 */
        [0x1c] = {FMT_ARRAY, 2, 0},   /* array16 */
        [0x1d] = {FMT_ARRAY, 4, 0},   /* array32 */
        [0x1e] = {FMT_MAP, 2, 0},     /* map16 */
        [0x1f] = {FMT_MAP, 4, 0},     /* map32 */
};

/*
 * Reads the header of one object at buf[*pos]: how many payload bytes
 * follow it and how many child objects it has. MSG_EMALFORMED if the
 * header is cut short or the byte is 0xc1 (never used).
 */
static int scan_header(const uint8_t *buf, size_t len, size_t *pos, uint64_t *payload,
                       uint64_t *children)
{
	uint64_t n;
	uint8_t b;

	if (*pos >= len)
		return MSG_EMALFORMED;
	b = buf[(*pos)++];
	*payload = 0;
	*children = 0;
	if (b <= 0x7f || b >= 0xe0) /* fixints */
		return 0;
	if (b <= 0x8f) { /* fixmap */
		*children = 2u * (b & 0x0fu);
		return 0;
	}
	if (b <= 0x9f) { /* fixarray */
		*children = b & 0x0fu;
		return 0;
	}
	if (b <= 0xbf) { /* fixstr */
		*payload = b & 0x1fu;
		return 0;
	}
	if (formats[b - 0xc0].kind == FMT_BAD || len - *pos < formats[b - 0xc0].lenbytes)
		return MSG_EMALFORMED;
	n = be_read(buf + *pos, formats[b - 0xc0].lenbytes);
	*pos += formats[b - 0xc0].lenbytes;
	switch (formats[b - 0xc0].kind) {
	case FMT_ARRAY:
		*children = n;
		break;
	case FMT_MAP:
		*children = 2 * n;
		break;
	default: /* scalars have no length field: n == 0 */
		*payload = n + formats[b - 0xc0].fixed;
		break;
	}
	return 0;
}

/*
 * Walks exactly one msgpack object spanning all of buf, iteratively, with
 * the nesting bounded by MSG_MAX_DEPTH and the object count by
 * MSG_MAX_OBJECTS. Since every object takes at least one byte, a container
 * that declares more children than bytes remain is refused before anything
 * is allocated for it.
 */
int msg_scan(const uint8_t *buf, size_t len)
{
	uint64_t remaining[MSG_MAX_DEPTH + 1];
	size_t pos = 0, objects = 0;
	int depth = 0;

	remaining[0] = 1;
	for (;;) {
		uint64_t payload, children;
		int rc;
		while (depth > 0 && remaining[depth] == 0)
			depth--;
		if (depth == 0 && remaining[0] == 0)
			break;
		remaining[depth]--;
		if (++objects > MSG_MAX_OBJECTS)
			return MSG_ELIMIT;
		rc = scan_header(buf, len, &pos, &payload, &children);
		if (rc != 0)
			return rc;
		if (payload > len - pos)
			return MSG_EMALFORMED;
		pos += (size_t)payload;
		if (children > 0) {
			if (children > len - pos)
				return MSG_EMALFORMED;
			if (depth + 1 > MSG_MAX_DEPTH)
				return MSG_ELIMIT;
			remaining[++depth] = children;
		}
	}
	return pos == len ? 0 : MSG_EMALFORMED;
}

/* --- typed getters over msgpack-c objects --------------------------------- */

static int get_array(const msgpack_object *o, uint32_t min, uint32_t max,
                     const msgpack_object **items, uint32_t *n)
{
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return MSG_EMALFORMED;
	if (o->via.array.size < min || o->via.array.size > max)
		return min == max ? MSG_EMALFORMED : MSG_ELIMIT;
	*items = o->via.array.ptr;
	*n = o->via.array.size;
	return 0;
}

static int get_uint(const msgpack_object *o, uint64_t max, uint64_t *out)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return MSG_EMALFORMED;
	if (o->via.u64 > max)
		return MSG_ELIMIT;
	*out = o->via.u64;
	return 0;
}

#define GET_UINT(o, max, dst)                                                                      \
	do {                                                                                       \
		uint64_t v_;                                                                       \
		rc = get_uint((o), (max), &v_);                                                    \
		if (rc != 0)                                                                       \
			return rc;                                                                 \
		(dst) = (__typeof__(dst))v_;                                                       \
	} while (0)

static int get_f64(const msgpack_object *o, double *out)
{
	if (o->type != MSGPACK_OBJECT_FLOAT64)
		return MSG_EMALFORMED;
	if (!isfinite(o->via.f64))
		return MSG_EINVALID;
	*out = o->via.f64;
	return 0;
}

static int get_bool(const msgpack_object *o, bool *out)
{
	if (o->type != MSGPACK_OBJECT_BOOLEAN)
		return MSG_EMALFORMED;
	*out = o->via.boolean;
	return 0;
}

static int get_bin(const msgpack_object *o, size_t max, struct msg_bytes *out)
{
	if (o->type != MSGPACK_OBJECT_BIN)
		return MSG_EMALFORMED;
	if (o->via.bin.size > max)
		return MSG_ELIMIT;
	out->ptr = (const uint8_t *)o->via.bin.ptr;
	out->len = o->via.bin.size;
	return 0;
}

static int get_bin_fixed(const msgpack_object *o, uint8_t *dst, size_t n)
{
	if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != n)
		return MSG_EMALFORMED;
	memcpy(dst, o->via.bin.ptr, n);
	return 0;
}

static int get_text(const msgpack_object *o, char dst[MSG_MAX_TEXT_BYTES + 1])
{
	if (o->type != MSGPACK_OBJECT_STR)
		return MSG_EMALFORMED;
	if (o->via.str.size > MSG_MAX_TEXT_BYTES)
		return MSG_ELIMIT;
	if (o->via.str.size > 0) /* an empty str may have a NULL pointer */
		memcpy(dst, o->via.str.ptr, o->via.str.size);
	dst[o->via.str.size] = '\0';
	return 0; /* characters are checked by msg_validate */
}

/* A list of member indices: [u8, ...]. */
static int get_index_list(const msgpack_object *o, uint8_t *dst, uint8_t *n)
{
	const msgpack_object *it;
	uint32_t cnt;
	int rc;

	rc = get_array(o, 0, MSG_MAX_MEMBERS, &it, &cnt);
	if (rc != 0)
		return rc;
	for (uint32_t i = 0; i < cnt; i++)
		GET_UINT(&it[i], MSG_MAX_MEMBERS - 1, dst[i]);
	*n = (uint8_t)cnt;
	return 0;
}

/* --- decoding per type ------------------------------------------------------ */

/* [type, [hidden...], seed] */
static int decode_model(struct msg_model *mm, const msgpack_object *o)
{
	const msgpack_object *it, *h;
	uint32_t n;
	int rc;

	rc = get_array(o, 3, 3, &it, &n);
	if (rc != 0)
		return rc;
	GET_UINT(&it[0], MSG_MAX_MODEL_TYPE, mm->type);
	rc = get_array(&it[1], 0, MSG_MAX_HIDDEN, &h, &n);
	if (rc != 0)
		return rc;
	mm->n_hidden = (uint8_t)n;
	for (uint32_t i = 0; i < n; i++)
		GET_UINT(&h[i], UINT32_MAX, mm->hidden[i]);
	GET_UINT(&it[2], UINT64_MAX, mm->seed);
	return 0;
}

static int decode_codec(struct msg_codec *c, const msgpack_object *o)
{
	const msgpack_object *it, *w, *segs;
	uint32_t n;
	int rc;

	rc = get_array(o, 9, 9, &it, &n);
	if (rc != 0)
		return rc;
	GET_UINT(&it[0], UINT16_MAX, c->id);
	GET_UINT(&it[1], UINT16_MAX, c->version);
	GET_UINT(&it[2], UINT16_MAX, c->k);
	GET_UINT(&it[3], UINT32_MAX, c->flags);
	GET_UINT(&it[4], UINT32_MAX, c->keep_ppm);
	GET_UINT(&it[5], UINT64_MAX, c->sample_seed);
	GET_UINT(&it[6], UINT64_MAX, c->dither_seed);
	rc = get_array(&it[7], 3, 3, &w, &n);
	if (rc != 0)
		return rc;
	GET_UINT(&w[0], UINT8_MAX, c->weight_bits);
	GET_UINT(&w[1], UINT8_MAX, c->weight_width);
	rc = get_f64(&w[2], &c->weight_scale);
	if (rc != 0)
		return rc;
	rc = get_array(&it[8], 0, MSG_MAX_SEGMENTS, &segs, &n);
	if (rc != 0)
		return rc;
	c->n_segments = (uint16_t)n;
	for (uint32_t i = 0; i < n; i++) {
		struct msg_segment *s = &c->segments[i];
		const msgpack_object *f;
		uint32_t nf;
		rc = get_array(&segs[i], 6, 6, &f, &nf);
		if (rc != 0)
			return rc;
		GET_UINT(&f[0], UINT32_MAX, s->length);
		GET_UINT(&f[1], UINT8_MAX, s->bits);
		GET_UINT(&f[2], UINT8_MAX, s->width);
		GET_UINT(&f[3], UINT8_MAX, s->mode);
		rc = get_f64(&f[4], &s->scale);
		if (rc == 0)
			rc = get_f64(&f[5], &s->clip);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* flags, mask_pk, share_pk, seed_commit, sig: five elements from f. */
static int decode_eph_keys(struct msg_eph_keys *k, const msgpack_object *f)
{
	int rc;

	GET_UINT(&f[0], MSG_EPH_F_ALL, k->flags);
	rc = get_bin_fixed(&f[1], k->mask_pk, MSG_KEY_BYTES);
	if (rc == 0)
		rc = get_bin_fixed(&f[2], k->share_pk, MSG_KEY_BYTES);
	if (rc == 0)
		rc = get_bin_fixed(&f[3], k->seed_commit, MSG_COMMIT_BYTES);
	if (rc == 0)
		rc = get_bin_fixed(&f[4], k->sig, MSG_SIG_BYTES);
	return rc;
}

static int decode_split(struct msg_split *v, const msgpack_object *f)
{
	int rc = get_index_list(&f[0], v->alive, &v->n_alive);

	if (rc == 0)
		rc = get_index_list(&f[1], v->dropped, &v->n_dropped);
	return rc;
}

/* [[index u8, sig bin64] x n]: at most MSG_MAX_MEMBERS entries. */
static int decode_split_sigs(struct msg_unmask_req *v, const msgpack_object *o)
{
	const msgpack_object *it;
	uint32_t n;
	int rc;

	rc = get_array(o, 0, MSG_MAX_MEMBERS, &it, &n);
	if (rc != 0)
		return rc;
	v->n_sigs = (uint8_t)n;
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *e;
		uint32_t ne;

		rc = get_array(&it[i], 2, 2, &e, &ne);
		if (rc != 0)
			return rc;
		GET_UINT(&e[0], UINT8_MAX, v->sigs[i].index);
		rc = get_bin_fixed(&e[1], v->sigs[i].sig, MSG_SIG_BYTES);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Array length of each type's body, common fields included. */
static const uint8_t body_len[MSG_TYPE_MAX + 1] = {
        [MSG_INVITE] = N_COMMON + 10,    [MSG_ACCEPT] = N_COMMON + 6,
        [MSG_DECLINE] = N_COMMON + 3,    [MSG_KEYS] = N_COMMON + 1,
        [MSG_SHARES] = N_COMMON + 1,     [MSG_MASKED] = N_COMMON + 4,
        [MSG_UNMASK_REQ] = N_COMMON + 3, [MSG_UNMASK_RESP] = N_COMMON + 2,
        [MSG_RESULT] = N_COMMON + 4,     [MSG_ABORT] = N_COMMON + 2,
        [MSG_PING] = N_COMMON + 2,       [MSG_STATUS] = N_COMMON + 6,
        [MSG_CHECKED] = N_COMMON + 2,    [MSG_COMMIT] = N_COMMON + 2,
        [MSG_SPLIT] = N_COMMON + 2,      [MSG_SPLIT_SIG] = N_COMMON + 2,
        [MSG_PART] = N_COMMON + 5,       [MSG_SEEDS] = N_COMMON + 1,
        [MSG_PART_SUM] = N_COMMON + 5,
};

static int decode_fields(struct msg *m, const msgpack_object *f)
{
	const msgpack_object *it;
	uint32_t n;
	int rc = 0;

	switch (m->type) {
	case MSG_INVITE: {
		struct msg_invite *v = &m->u.invite;
		GET_UINT(&f[0], UINT8_MAX, v->threshold);
		rc = get_array(&f[1], 0, MSG_MAX_MEMBERS, &it, &n);
		if (rc != 0)
			return rc;
		v->n_members = (uint8_t)n;
		for (uint32_t i = 0; i < n; i++) {
			rc = get_bin_fixed(&it[i], v->members[i], MSG_KEY_BYTES);
			if (rc != 0)
				return rc;
		}
		GET_UINT(&f[2], UINT32_MAX, v->phase_timeout_ms);
		GET_UINT(&f[3], UINT64_MAX, v->deadline_unix_ms);
		rc = decode_codec(&v->codec, &f[4]);
		if (rc != 0)
			return rc;
		rc = decode_model(&v->model, &f[5]);
		if (rc != 0)
			return rc;
		GET_UINT(&f[6], UINT8_MAX, v->path);
		GET_UINT(&f[7], UINT8_MAX, v->lr_kind);
		GET_UINT(&f[8], UINT8_MAX, v->lr_rank);
		GET_UINT(&f[9], UINT64_MAX, v->lr_ref);
		return 0;
	}
	case MSG_ACCEPT:
		GET_UINT(&f[0], UINT8_MAX, m->u.accept.index);
		return decode_eph_keys(&m->u.accept.keys, &f[1]);
	case MSG_DECLINE:
	case MSG_ABORT: {
		struct msg_reason_text *v = m->type == MSG_DECLINE ? &m->u.decline : &m->u.abort;
		GET_UINT(&f[0], UINT8_MAX, v->reason);
		if (m->type == MSG_DECLINE)
			GET_UINT(&f[2], MSG_MAX_BUSY_MS, v->busy_ms);
		return get_text(&f[1], v->text);
	}
	case MSG_KEYS: {
		struct msg_keys *v = &m->u.keys;
		rc = get_array(&f[0], 0, MSG_MAX_MEMBERS, &it, &n);
		if (rc != 0)
			return rc;
		v->n = (uint8_t)n;
		for (uint32_t i = 0; i < n; i++) {
			const msgpack_object *e;
			uint32_t ne;
			rc = get_array(&it[i], 6, 6, &e, &ne);
			if (rc != 0)
				return rc;
			GET_UINT(&e[0], UINT8_MAX, v->entries[i].index);
			rc = decode_eph_keys(&v->entries[i].keys, &e[1]);
			if (rc != 0)
				return rc;
		}
		return 0;
	}
	case MSG_SHARES: {
		struct msg_shares *v = &m->u.shares;
		rc = get_array(&f[0], 0, MSG_MAX_MEMBERS, &it, &n);
		if (rc != 0)
			return rc;
		v->n = (uint8_t)n;
		for (uint32_t i = 0; i < n; i++) {
			const msgpack_object *e;
			uint32_t ne;
			rc = get_array(&it[i], 3, 3, &e, &ne);
			if (rc != 0)
				return rc;
			GET_UINT(&e[0], UINT8_MAX, v->entries[i].from);
			GET_UINT(&e[1], UINT8_MAX, v->entries[i].to);
			rc = get_bin(&e[2], MSG_MAX_SHARE_BYTES, &v->entries[i].blob);
			if (rc != 0)
				return rc;
		}
		return 0;
	}
	case MSG_MASKED: {
		struct msg_masked *v = &m->u.masked;
		GET_UINT(&f[0], UINT8_MAX, v->index);
		GET_UINT(&f[1], MSG_MAX_VALUES, v->n_values);
		rc = get_f64(&f[2], &v->weight);
		if (rc == 0)
			rc = get_bin(&f[3], MSG_MAX_VECTOR_BYTES, &v->vector);
		return rc;
	}
	case MSG_SPLIT:
		return decode_split(&m->u.split, f);
	case MSG_SPLIT_SIG:
		GET_UINT(&f[0], UINT8_MAX, m->u.split_sig.index);
		return get_bin_fixed(&f[1], m->u.split_sig.sig, MSG_SIG_BYTES);
	case MSG_UNMASK_REQ:
		rc = decode_split(&m->u.unmask_req.split, f);
		if (rc == 0)
			rc = decode_split_sigs(&m->u.unmask_req, &f[2]);
		return rc;
	case MSG_UNMASK_RESP: {
		struct msg_unmask_resp *v = &m->u.unmask_resp;
		GET_UINT(&f[0], UINT8_MAX, v->index);
		rc = get_array(&f[1], 0, MSG_MAX_MEMBERS, &it, &n);
		if (rc != 0)
			return rc;
		v->n = (uint8_t)n;
		for (uint32_t i = 0; i < n; i++) {
			const msgpack_object *e;
			uint32_t ne;
			rc = get_array(&it[i], 2, 2, &e, &ne);
			if (rc != 0)
				return rc;
			GET_UINT(&e[0], UINT8_MAX, v->entries[i].owner);
			rc = get_bin(&e[1], MSG_MAX_SHARE_BYTES, &v->entries[i].share);
			if (rc != 0)
				return rc;
		}
		return 0;
	}
	case MSG_RESULT: {
		struct msg_result *v = &m->u.result;
		rc = get_index_list(&f[0], v->counted, &v->n_counted);
		if (rc != 0)
			return rc;
		GET_UINT(&f[1], MSG_MAX_VALUES, v->n_values);
		rc = get_f64(&f[2], &v->weight);
		if (rc == 0)
			rc = get_bin(&f[3], MSG_MAX_VECTOR_BYTES, &v->sum);
		return rc;
	}
	case MSG_PING:
		GET_UINT(&f[0], UINT64_MAX, m->u.ping.seq);
		GET_UINT(&f[1], UINT64_MAX, m->u.ping.time_ms);
		return 0;
	case MSG_CHECKED:
	case MSG_COMMIT:
		GET_UINT(&f[0], UINT8_MAX, m->u.ack.index);
		return get_bin_fixed(&f[1], m->u.ack.digest, MSG_KEY_BYTES);
	case MSG_PART:
	case MSG_PART_SUM: {
		struct msg_part *v = &m->u.part;
		GET_UINT(&f[0], UINT8_MAX, v->index);
		GET_UINT(&f[1], UINT8_MAX, v->part);
		GET_UINT(&f[2], MSG_MAX_VALUES, v->first);
		GET_UINT(&f[3], MSG_MAX_VALUES, v->n_values);
		return get_bin(&f[4], MSG_MAX_VECTOR_BYTES, &v->vector);
	}
	case MSG_SEEDS: {
		struct msg_seeds *v = &m->u.seeds;
		rc = get_array(&f[0], 0, MSG_MAX_MEMBERS, &it, &n);
		if (rc != 0)
			return rc;
		v->n = (uint8_t)n;
		for (uint32_t i = 0; i < n; i++) {
			const msgpack_object *e;
			uint32_t ne;
			rc = get_array(&it[i], 3, 3, &e, &ne);
			if (rc != 0)
				return rc;
			GET_UINT(&e[0], UINT8_MAX, v->entries[i].owner);
			GET_UINT(&e[1], UINT8_MAX, v->entries[i].kind);
			rc = get_bin_fixed(&e[2], v->entries[i].key, MSG_KEY_BYTES);
			if (rc != 0)
				return rc;
		}
		return 0;
	}
	case MSG_STATUS: {
		struct msg_status *v = &m->u.status;
		GET_UINT(&f[0], UINT64_MAX, v->seq);
		GET_UINT(&f[1], UINT64_MAX, v->time_ms);
		rc = get_bool(&f[2], &v->busy);
		if (rc != 0)
			return rc;
		GET_UINT(&f[3], UINT64_MAX, v->rounds_ok);
		GET_UINT(&f[4], UINT64_MAX, v->rounds_aborted);
		GET_UINT(&f[5], UINT64_MAX, v->uptime_s);
		return 0;
	}
	}
	return MSG_ETYPE;
}

/*
 * Looks at the version before anything else, so that a peer speaking
 * another version gets a clear refusal even if the rest of its body would
 * not pass this version's scanner.
 */
static int peek_version(const uint8_t *buf, size_t len, uint64_t *version)
{
	size_t pos = 0;
	uint64_t payload, children;

	if (scan_header(buf, len, &pos, &payload, &children) != 0 || buf[0] < 0x90 ||
	    (buf[0] > 0x9f && buf[0] != 0xdc && buf[0] != 0xdd) || children == 0 || pos >= len)
		return MSG_EMALFORMED;
	if (buf[pos] <= 0x7f) {
		*version = buf[pos];
		return 0;
	}
	if (buf[pos] >= 0xcc && buf[pos] <= 0xcf) {
		size_t n = (size_t)1 << (buf[pos] - 0xcc);
		if (len - pos - 1 < n)
			return MSG_EMALFORMED;
		*version = be_read(buf + pos + 1, n);
		return 0;
	}
	return MSG_EMALFORMED;
}

int msg_decode(struct msg *m, const uint8_t *buf, size_t len)
{
	msgpack_unpacked up;
	const msgpack_object *f;
	uint64_t version, type, attempt;
	uint32_t n;
	size_t off = 0;
	int rc;

	memset(m, 0, sizeof(*m));
	if (len > MSG_MAX_BODY_BYTES)
		return MSG_ELIMIT;
	rc = peek_version(buf, len, &version);
	if (rc != 0)
		return rc;
	if (version != MSG_VERSION) {
		log_warnx("message refused: protocol version %" PRIu64
		          " is not supported (this build speaks version %d)",
		          version, MSG_VERSION);
		return MSG_EVERSION;
	}
	rc = msg_scan(buf, len);
	if (rc != 0)
		return rc;
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, (const char *)buf, len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    off != len) {
		rc = MSG_EMALFORMED;
		goto out;
	}
	if (up.data.type != MSGPACK_OBJECT_ARRAY || up.data.via.array.size < N_COMMON) {
		rc = MSG_EMALFORMED;
		goto out;
	}
	f = up.data.via.array.ptr;
	n = up.data.via.array.size;
	rc = get_uint(&f[1], UINT8_MAX, &type);
	if (rc != 0)
		goto out;
	if (type < MSG_TYPE_MIN || type > MSG_TYPE_MAX) {
		rc = MSG_ETYPE;
		goto out;
	}
	if (n != body_len[type]) {
		rc = MSG_EMALFORMED;
		goto out;
	}
	m->type = (enum msg_type)type;
	rc = get_uint(&f[2], UINT64_MAX, &m->round_id);
	if (rc == 0)
		rc = get_uint(&f[3], UINT32_MAX, &attempt);
	if (rc != 0)
		goto out;
	m->attempt = (uint32_t)attempt;
	rc = decode_fields(m, f + N_COMMON);
	if (rc == 0)
		rc = msg_validate(m);
out:
	msgpack_unpacked_destroy(&up);
	return rc;
}

/* --- validation ------------------------------------------------------------- */

static bool text_ok(const char *s)
{
	size_t i;

	for (i = 0; i <= MSG_MAX_TEXT_BYTES && s[i] != '\0'; i++) {
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	}
	return i <= MSG_MAX_TEXT_BYTES;
}

/* Strictly ascending indices below MSG_MAX_MEMBERS (so also no duplicates). */
static bool ascending(const uint8_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i] >= MSG_MAX_MEMBERS || (i > 0 && v[i] <= v[i - 1]))
			return false;
	}
	return true;
}

/* A packed vector holds n values of 1..64 bits each. */
static int vector_ok(uint32_t n_values, const struct msg_bytes *b)
{
	if (n_values > MSG_MAX_VALUES || b->len > MSG_MAX_VECTOR_BYTES)
		return MSG_ELIMIT;
	if (b->len > 0 && b->ptr == NULL)
		return MSG_EINVALID;
	if ((uint64_t)b->len * 8 < n_values || (uint64_t)b->len > (uint64_t)n_values * 8)
		return MSG_EINVALID;
	return 0;
}

static int codec_ok(const struct msg_codec *c)
{
	uint64_t total = 0;

	if (c->n_segments < 1 || c->n_segments > MSG_MAX_SEGMENTS)
		return MSG_ELIMIT;
	if (c->k < 1 || c->k > 255 || c->keep_ppm < 1 || c->keep_ppm > 1000000 ||
	    c->weight_bits > 64 || c->weight_width > 64 || !isfinite(c->weight_scale) ||
	    c->weight_scale < 0)
		return MSG_EINVALID;
	for (size_t i = 0; i < c->n_segments; i++) {
		const struct msg_segment *s = &c->segments[i];
		if (s->length < 1 || s->bits < 1 || s->bits > 64 || s->width < 1 || s->width > 64 ||
		    !isfinite(s->scale) || s->scale <= 0 || !isfinite(s->clip) || s->clip <= 0)
			return MSG_EINVALID;
		total += s->length;
	}
	return total <= MSG_MAX_VALUES ? 0 : MSG_ELIMIT;
}

static int validate_invite(const struct msg_invite *v)
{
	if (v->n_members < MSG_MIN_MEMBERS || v->n_members > MSG_MAX_MEMBERS)
		return MSG_ELIMIT;
	if (v->threshold < v->n_members / 2 + 1 || v->threshold > v->n_members)
		return MSG_EINVALID;
	if (v->phase_timeout_ms < 1 || v->phase_timeout_ms > 3600000)
		return MSG_EINVALID;
	if (v->model.type > MSG_MAX_MODEL_TYPE || v->model.n_hidden > MSG_MAX_HIDDEN ||
	    v->path > MSG_PATH_SCATTER)
		return MSG_EINVALID;
	if (v->lr_kind > MSG_LR_PROJECT)
		return MSG_EINVALID;
	if (v->lr_kind == MSG_LR_NONE ? v->lr_rank != 0 || v->lr_ref != 0
	                              : v->lr_rank < 1 || v->lr_rank > MSG_MAX_LR_RANK)
		return MSG_EINVALID;
	for (size_t i = 0; i < v->n_members; i++) {
		for (size_t j = i + 1; j < v->n_members; j++) {
			if (memcmp(v->members[i], v->members[j], MSG_KEY_BYTES) == 0)
				return MSG_EINVALID;
		}
	}
	return codec_ok(&v->codec);
}

static int validate_split(const struct msg_split *v)
{
	if (v->n_alive < 1 || v->n_alive + v->n_dropped > MSG_MAX_MEMBERS)
		return MSG_ELIMIT;
	if (!ascending(v->alive, v->n_alive) || !ascending(v->dropped, v->n_dropped))
		return MSG_EINVALID;
	for (size_t i = 0; i < v->n_alive; i++) {
		for (size_t j = 0; j < v->n_dropped; j++) {
			if (v->alive[i] == v->dropped[j])
				return MSG_EINVALID;
		}
	}
	return 0;
}

static int validate_shares(const struct msg_shares *v)
{
	bool same_from = true, same_to = true;

	if (v->n < 1 || v->n > MSG_MAX_MEMBERS)
		return MSG_ELIMIT;
	for (size_t i = 0; i < v->n; i++) {
		const struct msg_share *s = &v->entries[i];
		if (s->from >= MSG_MAX_MEMBERS || s->to >= MSG_MAX_MEMBERS || s->from == s->to)
			return MSG_EINVALID;
		if (s->blob.len < 1 || s->blob.len > MSG_MAX_SHARE_BYTES)
			return MSG_ELIMIT;
		if (s->blob.ptr == NULL)
			return MSG_EINVALID;
		same_from = same_from && s->from == v->entries[0].from;
		same_to = same_to && s->to == v->entries[0].to;
		for (size_t j = 0; j < i; j++) {
			if (v->entries[j].from == s->from && v->entries[j].to == s->to)
				return MSG_EINVALID;
		}
	}
	/* One sender's shares to the relay, or the relay's to one holder. */
	return same_from || same_to ? 0 : MSG_EINVALID;
}

int msg_validate(const struct msg *m)
{
	if (m->type < MSG_TYPE_MIN || m->type > MSG_TYPE_MAX)
		return MSG_ETYPE;
	if (MSG_TYPE_IN_ROUND(m->type) && m->round_id == 0)
		return MSG_EINVALID;
	switch (m->type) {
	case MSG_INVITE:
		return validate_invite(&m->u.invite);
	case MSG_ACCEPT:
		return m->u.accept.index < MSG_MAX_MEMBERS &&
		                       (m->u.accept.keys.flags & ~MSG_EPH_F_ALL) == 0
		               ? 0
		               : MSG_EINVALID;
	case MSG_DECLINE:
		if (m->u.decline.busy_ms > MSG_MAX_BUSY_MS)
			return MSG_ELIMIT;
		return text_ok(m->u.decline.text) ? 0 : MSG_EINVALID;
	case MSG_ABORT:
		return text_ok(m->u.abort.text) ? 0 : MSG_EINVALID;
	case MSG_KEYS: {
		const struct msg_keys *v = &m->u.keys;
		if (v->n < MSG_MIN_MEMBERS || v->n > MSG_MAX_MEMBERS)
			return MSG_ELIMIT;
		for (size_t i = 0; i < v->n; i++) {
			if (v->entries[i].index >= MSG_MAX_MEMBERS ||
			    (i > 0 && v->entries[i].index <= v->entries[i - 1].index) ||
			    (v->entries[i].keys.flags & ~MSG_EPH_F_ALL) != 0)
				return MSG_EINVALID;
		}
		return 0;
	}
	case MSG_SHARES:
		return validate_shares(&m->u.shares);
	case MSG_MASKED:
		if (m->u.masked.index >= MSG_MAX_MEMBERS || !isfinite(m->u.masked.weight) ||
		    m->u.masked.weight < 0)
			return MSG_EINVALID;
		return vector_ok(m->u.masked.n_values, &m->u.masked.vector);
	case MSG_SPLIT:
		return validate_split(&m->u.split);
	case MSG_SPLIT_SIG:
		return m->u.split_sig.index < MSG_MAX_MEMBERS ? 0 : MSG_EINVALID;
	case MSG_UNMASK_REQ: {
		const struct msg_unmask_req *v = &m->u.unmask_req;
		int rc = validate_split(&v->split);

		if (rc != 0)
			return rc;
		if (v->n_sigs < 1 || v->n_sigs > MSG_MAX_MEMBERS)
			return MSG_ELIMIT;
		for (size_t i = 0; i < v->n_sigs; i++) {
			if (v->sigs[i].index >= MSG_MAX_MEMBERS ||
			    (i > 0 && v->sigs[i].index <= v->sigs[i - 1].index))
				return MSG_EINVALID;
		}
		return 0;
	}
	case MSG_UNMASK_RESP: {
		const struct msg_unmask_resp *v = &m->u.unmask_resp;
		if (v->index >= MSG_MAX_MEMBERS)
			return MSG_EINVALID;
		if (v->n > MSG_MAX_MEMBERS)
			return MSG_ELIMIT;
		for (size_t i = 0; i < v->n; i++) {
			if (v->entries[i].owner >= MSG_MAX_MEMBERS ||
			    (i > 0 && v->entries[i].owner <= v->entries[i - 1].owner))
				return MSG_EINVALID;
			if (v->entries[i].share.len < 1 ||
			    v->entries[i].share.len > MSG_MAX_SHARE_BYTES)
				return MSG_ELIMIT;
			if (v->entries[i].share.ptr == NULL)
				return MSG_EINVALID;
		}
		return 0;
	}
	case MSG_RESULT: {
		const struct msg_result *v = &m->u.result;
		if (v->n_counted < 1 || v->n_counted > MSG_MAX_MEMBERS)
			return MSG_ELIMIT;
		if (!ascending(v->counted, v->n_counted) || !isfinite(v->weight) || v->weight < 0)
			return MSG_EINVALID;
		return vector_ok(v->n_values, &v->sum);
	}
	case MSG_PING:
	case MSG_STATUS:
		return 0;
	case MSG_CHECKED:
	case MSG_COMMIT:
		return m->u.ack.index < MSG_MAX_MEMBERS ? 0 : MSG_EINVALID;
	case MSG_PART:
	case MSG_PART_SUM: {
		const struct msg_part *v = &m->u.part;
		if (v->index >= MSG_MAX_MEMBERS || v->part >= MSG_MAX_MEMBERS)
			return MSG_EINVALID;
		if (v->first > MSG_MAX_VALUES || v->n_values < 1 ||
		    v->n_values > MSG_MAX_VALUES - v->first)
			return MSG_ELIMIT;
		return vector_ok(v->n_values, &v->vector);
	}
	case MSG_SEEDS: {
		const struct msg_seeds *v = &m->u.seeds;
		if (v->n < 1 || v->n > MSG_MAX_MEMBERS)
			return MSG_ELIMIT;
		for (size_t i = 0; i < v->n; i++) {
			if (v->entries[i].owner >= MSG_MAX_MEMBERS ||
			    (i > 0 && v->entries[i].owner <= v->entries[i - 1].owner) ||
			    v->entries[i].kind > MSG_SEED_PAIR_SK)
				return MSG_EINVALID;
		}
		return 0;
	}
	}
	return MSG_ETYPE;
}

/* --- encoding --------------------------------------------------------------- */

/* Writes into a bounded buffer, or only counts when p is NULL. */
struct wbuf {
	uint8_t *p;
	size_t cap, len;
};

static int wbuf_write(void *data, const char *buf, size_t len)
{
	struct wbuf *w = data;

	if (w->p != NULL) {
		if (len > w->cap - w->len)
			return -1;
		memcpy(w->p + w->len, buf, len);
	}
	w->len += len;
	return 0;
}

/* Every msgpack_pack_* returns the writer's result: 0, or -1 when full. */
#define P(call)                                                                                    \
	do {                                                                                       \
		if ((call) != 0)                                                                   \
			return -1;                                                                 \
	} while (0)

static int pack_bin(msgpack_packer *pk, const void *p, size_t len)
{
	P(msgpack_pack_bin(pk, len));
	if (len > 0)
		P(msgpack_pack_bin_body(pk, p, len));
	return 0;
}

static int pack_eph_keys(msgpack_packer *pk, const struct msg_eph_keys *k)
{
	P(msgpack_pack_uint8(pk, k->flags));
	P(pack_bin(pk, k->mask_pk, MSG_KEY_BYTES));
	P(pack_bin(pk, k->share_pk, MSG_KEY_BYTES));
	P(pack_bin(pk, k->seed_commit, MSG_COMMIT_BYTES));
	P(pack_bin(pk, k->sig, MSG_SIG_BYTES));
	return 0;
}

static int pack_index_list(msgpack_packer *pk, const uint8_t *v, size_t n)
{
	P(msgpack_pack_array(pk, n));
	for (size_t i = 0; i < n; i++)
		P(msgpack_pack_uint8(pk, v[i]));
	return 0;
}

static int pack_split(msgpack_packer *pk, const struct msg_split *v)
{
	P(pack_index_list(pk, v->alive, v->n_alive));
	return pack_index_list(pk, v->dropped, v->n_dropped);
}

static int pack_text(msgpack_packer *pk, const struct msg_reason_text *v)
{
	size_t n = strlen(v->text);

	P(msgpack_pack_uint8(pk, v->reason));
	P(msgpack_pack_str(pk, n));
	if (n > 0)
		P(msgpack_pack_str_body(pk, v->text, n));
	return 0;
}

static int pack_codec(msgpack_packer *pk, const struct msg_codec *c)
{
	P(msgpack_pack_array(pk, 9));
	P(msgpack_pack_uint16(pk, c->id));
	P(msgpack_pack_uint16(pk, c->version));
	P(msgpack_pack_uint16(pk, c->k));
	P(msgpack_pack_uint32(pk, c->flags));
	P(msgpack_pack_uint32(pk, c->keep_ppm));
	P(msgpack_pack_uint64(pk, c->sample_seed));
	P(msgpack_pack_uint64(pk, c->dither_seed));
	P(msgpack_pack_array(pk, 3));
	P(msgpack_pack_uint8(pk, c->weight_bits));
	P(msgpack_pack_uint8(pk, c->weight_width));
	P(msgpack_pack_double(pk, c->weight_scale));
	P(msgpack_pack_array(pk, c->n_segments));
	for (size_t i = 0; i < c->n_segments; i++) {
		const struct msg_segment *s = &c->segments[i];
		P(msgpack_pack_array(pk, 6));
		P(msgpack_pack_uint32(pk, s->length));
		P(msgpack_pack_uint8(pk, s->bits));
		P(msgpack_pack_uint8(pk, s->width));
		P(msgpack_pack_uint8(pk, s->mode));
		P(msgpack_pack_double(pk, s->scale));
		P(msgpack_pack_double(pk, s->clip));
	}
	return 0;
}

static int pack_fields(msgpack_packer *pk, const struct msg *m)
{
	switch (m->type) {
	case MSG_INVITE: {
		const struct msg_invite *v = &m->u.invite;
		P(msgpack_pack_uint8(pk, v->threshold));
		P(msgpack_pack_array(pk, v->n_members));
		for (size_t i = 0; i < v->n_members; i++)
			P(pack_bin(pk, v->members[i], MSG_KEY_BYTES));
		P(msgpack_pack_uint32(pk, v->phase_timeout_ms));
		P(msgpack_pack_uint64(pk, v->deadline_unix_ms));
		P(pack_codec(pk, &v->codec));
		P(msgpack_pack_array(pk, 3));
		P(msgpack_pack_uint8(pk, v->model.type));
		P(msgpack_pack_array(pk, v->model.n_hidden));
		for (size_t i = 0; i < v->model.n_hidden; i++)
			P(msgpack_pack_uint32(pk, v->model.hidden[i]));
		P(msgpack_pack_uint64(pk, v->model.seed));
		P(msgpack_pack_uint8(pk, v->path));
		P(msgpack_pack_uint8(pk, v->lr_kind));
		P(msgpack_pack_uint8(pk, v->lr_rank));
		return msgpack_pack_uint64(pk, v->lr_ref);
	}
	case MSG_ACCEPT:
		P(msgpack_pack_uint8(pk, m->u.accept.index));
		return pack_eph_keys(pk, &m->u.accept.keys);
	case MSG_DECLINE:
		P(pack_text(pk, &m->u.decline));
		return msgpack_pack_uint32(pk, m->u.decline.busy_ms);
	case MSG_ABORT:
		return pack_text(pk, &m->u.abort);
	case MSG_KEYS:
		P(msgpack_pack_array(pk, m->u.keys.n));
		for (size_t i = 0; i < m->u.keys.n; i++) {
			P(msgpack_pack_array(pk, 6));
			P(msgpack_pack_uint8(pk, m->u.keys.entries[i].index));
			P(pack_eph_keys(pk, &m->u.keys.entries[i].keys));
		}
		return 0;
	case MSG_SHARES:
		P(msgpack_pack_array(pk, m->u.shares.n));
		for (size_t i = 0; i < m->u.shares.n; i++) {
			const struct msg_share *s = &m->u.shares.entries[i];
			P(msgpack_pack_array(pk, 3));
			P(msgpack_pack_uint8(pk, s->from));
			P(msgpack_pack_uint8(pk, s->to));
			P(pack_bin(pk, s->blob.ptr, s->blob.len));
		}
		return 0;
	case MSG_MASKED:
		P(msgpack_pack_uint8(pk, m->u.masked.index));
		P(msgpack_pack_uint32(pk, m->u.masked.n_values));
		P(msgpack_pack_double(pk, m->u.masked.weight));
		return pack_bin(pk, m->u.masked.vector.ptr, m->u.masked.vector.len);
	case MSG_SPLIT:
		return pack_split(pk, &m->u.split);
	case MSG_SPLIT_SIG:
		P(msgpack_pack_uint8(pk, m->u.split_sig.index));
		return pack_bin(pk, m->u.split_sig.sig, MSG_SIG_BYTES);
	case MSG_UNMASK_REQ:
		P(pack_split(pk, &m->u.unmask_req.split));
		P(msgpack_pack_array(pk, m->u.unmask_req.n_sigs));
		for (size_t i = 0; i < m->u.unmask_req.n_sigs; i++) {
			P(msgpack_pack_array(pk, 2));
			P(msgpack_pack_uint8(pk, m->u.unmask_req.sigs[i].index));
			P(pack_bin(pk, m->u.unmask_req.sigs[i].sig, MSG_SIG_BYTES));
		}
		return 0;
	case MSG_UNMASK_RESP:
		P(msgpack_pack_uint8(pk, m->u.unmask_resp.index));
		P(msgpack_pack_array(pk, m->u.unmask_resp.n));
		for (size_t i = 0; i < m->u.unmask_resp.n; i++) {
			P(msgpack_pack_array(pk, 2));
			P(msgpack_pack_uint8(pk, m->u.unmask_resp.entries[i].owner));
			P(pack_bin(pk, m->u.unmask_resp.entries[i].share.ptr,
			           m->u.unmask_resp.entries[i].share.len));
		}
		return 0;
	case MSG_RESULT:
		P(pack_index_list(pk, m->u.result.counted, m->u.result.n_counted));
		P(msgpack_pack_uint32(pk, m->u.result.n_values));
		P(msgpack_pack_double(pk, m->u.result.weight));
		return pack_bin(pk, m->u.result.sum.ptr, m->u.result.sum.len);
	case MSG_PING:
		P(msgpack_pack_uint64(pk, m->u.ping.seq));
		return msgpack_pack_uint64(pk, m->u.ping.time_ms);
	case MSG_STATUS:
		P(msgpack_pack_uint64(pk, m->u.status.seq));
		P(msgpack_pack_uint64(pk, m->u.status.time_ms));
		P(m->u.status.busy ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
		P(msgpack_pack_uint64(pk, m->u.status.rounds_ok));
		P(msgpack_pack_uint64(pk, m->u.status.rounds_aborted));
		return msgpack_pack_uint64(pk, m->u.status.uptime_s);
	case MSG_CHECKED:
	case MSG_COMMIT:
		P(msgpack_pack_uint8(pk, m->u.ack.index));
		return pack_bin(pk, m->u.ack.digest, MSG_KEY_BYTES);
	case MSG_PART:
	case MSG_PART_SUM:
		P(msgpack_pack_uint8(pk, m->u.part.index));
		P(msgpack_pack_uint8(pk, m->u.part.part));
		P(msgpack_pack_uint32(pk, m->u.part.first));
		P(msgpack_pack_uint32(pk, m->u.part.n_values));
		return pack_bin(pk, m->u.part.vector.ptr, m->u.part.vector.len);
	case MSG_SEEDS:
		P(msgpack_pack_array(pk, m->u.seeds.n));
		for (size_t i = 0; i < m->u.seeds.n; i++) {
			P(msgpack_pack_array(pk, 3));
			P(msgpack_pack_uint8(pk, m->u.seeds.entries[i].owner));
			P(msgpack_pack_uint8(pk, m->u.seeds.entries[i].kind));
			P(pack_bin(pk, m->u.seeds.entries[i].key, MSG_KEY_BYTES));
		}
		return 0;
	}
	return -1;
}

static int pack_msg(struct wbuf *w, const struct msg *m)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, w, wbuf_write);
	P(msgpack_pack_array(&pk, body_len[m->type]));
	P(msgpack_pack_uint8(&pk, MSG_VERSION));
	P(msgpack_pack_uint8(&pk, (uint8_t)m->type));
	P(msgpack_pack_uint64(&pk, m->round_id));
	P(msgpack_pack_uint32(&pk, m->attempt));
	return pack_fields(&pk, m);
}

size_t msg_encoded_size(const struct msg *m)
{
	struct wbuf w = {0};

	if (msg_validate(m) != 0 || pack_msg(&w, m) != 0)
		return 0;
	return w.len;
}

int msg_encode(uint8_t *out, size_t cap, size_t *len, const struct msg *m)
{
	struct wbuf w = {.p = out, .cap = cap};
	int rc;

	rc = msg_validate(m);
	if (rc != 0)
		return rc;
	if (pack_msg(&w, m) != 0)
		return -ENOBUFS;
	*len = w.len;
	return 0;
}

/* --- names ------------------------------------------------------------------ */

const char *msg_type_name(int type)
{
	static const char *const names[] = {
	        [MSG_INVITE] = "INVITE",
	        [MSG_ACCEPT] = "ACCEPT",
	        [MSG_DECLINE] = "DECLINE",
	        [MSG_KEYS] = "KEYS",
	        [MSG_SHARES] = "SHARES",
	        [MSG_MASKED] = "MASKED",
	        [MSG_UNMASK_REQ] = "UNMASK_REQ",
	        [MSG_UNMASK_RESP] = "UNMASK_RESP",
	        [MSG_RESULT] = "RESULT",
	        [MSG_ABORT] = "ABORT",
	        [MSG_PING] = "PING",
	        [MSG_STATUS] = "STATUS",
	        [MSG_CHECKED] = "CHECKED",
	        [MSG_COMMIT] = "COMMIT",
	        [MSG_SPLIT] = "SPLIT",
	        [MSG_SPLIT_SIG] = "SPLIT_SIG",
	        [MSG_PART] = "PART",
	        [MSG_SEEDS] = "SEEDS",
	        [MSG_PART_SUM] = "PART_SUM",
	};
	if (type < MSG_TYPE_MIN || type > MSG_TYPE_MAX)
		return "unknown";
	return names[type];
}

const char *msg_reason_name(int reason)
{
	static const char *const names[] = {
	        "other",       "busy",    "params",   "unknown-peer", "timeout", "too-few",
	        "bad-message", "refused", "shutdown", "internal",     "wrap",    "privacy",
	};
	if (reason < 0 || (size_t)reason >= ARRAY_LEN(names))
		return "other";
	return names[reason];
}
