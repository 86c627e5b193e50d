/*
 * codec.c: fixed point in Z_2^w per segment, stochastic rounding, shared-seed
 * subsampling, bit packing, and decoding of ring sums (see codec.h).
 *
 * All arithmetic that must agree between members (the subset, the shared
 * dither, the layout) is integer-only and platform independent; only the
 * private rounding uses doubles. Nothing here allocates.
 */
#include "protocol/codec.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "util/bytes.h"
#include "util/util.h"

/* The public stream of segment `i` for a purpose (subset or dither). */
static void codec_rng_public(struct rng *rng, uint64_t seed, uint64_t purpose, size_t i)
{
	uint64_t x = seed ^ (purpose * 0xd6e8feb86659fd93ull);

	x = rng_splitmix64(&x) ^ ((uint64_t)i + 1) * 0x9e3779b97f4a7c15ull;
	rng_seed(rng, x);
}

#define PURPOSE_SUBSET 1u
#define PURPOSE_DITHER 2u
#define PURPOSE_CHECK  3u

/* --- params ------------------------------------------------------------- */

unsigned codec_log2_ceil(uint32_t k)
{
	unsigned b = 0;

	while (b < 32 && ((uint64_t)1 << b) < k)
		b++;
	return b;
}

static uint32_t level_max(uint8_t bits)
{
	return (uint32_t)((1u << (bits - 1)) - 1u);
}

static uint32_t width_mask(uint32_t width)
{
	return width >= 32 ? UINT32_MAX : (uint32_t)((1u << width) - 1u);
}

static bool quantum_ok(float q, uint8_t bits)
{
	return isfinite(q) && q > 0.0f && isfinite((double)q * level_max(bits)) &&
	       (double)q * level_max(bits) < 1e30;
}

int codec_params_check(const struct codec_params *p)
{
	uint64_t next = 0;
	unsigned extra;

	if (p == NULL || p->id != CODEC_ID_FIXED || p->version != CODEC_VERSION)
		return -EINVAL;
	if (p->k < 1 || p->k > CODEC_MAX_K || (p->flags & ~CODEC_F_ALL) != 0)
		return -EINVAL;
	if (p->dim < 1 || p->dim > CODEC_MAX_DIM || p->nseg < 1 || p->nseg > CODEC_MAX_SEGMENTS)
		return -EINVAL;
	if (p->flags & CODEC_F_SUBSAMPLE) {
		if (p->keep_ppm < 1 || p->keep_ppm > CODEC_KEEP_ALL)
			return -EINVAL;
	} else if (p->keep_ppm != CODEC_KEEP_ALL) {
		return -EINVAL;
	}
	extra = codec_log2_ceil(p->k);
	for (uint32_t i = 0; i < p->nseg; i++) {
		const struct codec_segment *s = &p->seg[i];

		if (s->offset != next || s->length < 1 || s->length > p->dim - s->offset)
			return -EINVAL;
		if (s->bits < 2 || s->bits > CODEC_MAX_BITS || s->width < 1 ||
		    s->width > CODEC_MAX_WIDTH || !quantum_ok(s->quantum, s->bits))
			return -EINVAL;
		if (s->mode == CODEC_SEG_EXACT) {
			if ((unsigned)s->width < s->bits + extra)
				return -EINVAL;
		} else if (s->mode == CODEC_SEG_CENTERED) {
			/* Narrower than the rule, so only the checksum catches a wrap. */
			if ((p->flags & CODEC_F_CHECK) == 0 || (unsigned)s->width > s->bits + extra)
				return -EINVAL;
		} else if (s->mode != CODEC_SEG_MODULAR) {
			return -EINVAL;
		}
		next = (uint64_t)s->offset + s->length;
	}
	if (next != p->dim)
		return -EINVAL;
	if (p->flags & CODEC_F_WEIGHT) {
		if (p->weight_bits < 2 || p->weight_bits > CODEC_MAX_BITS ||
		    (unsigned)p->weight_width < p->weight_bits + extra ||
		    p->weight_width > CODEC_MAX_WIDTH ||
		    !quantum_ok(p->weight_quantum, p->weight_bits))
			return -EINVAL;
	} else if (p->weight_bits != 0 || p->weight_width != 0 || p->weight_quantum != 0.0f) {
		return -EINVAL;
	}
	return 0;
}

int codec_params_init(struct codec_params *p, uint16_t k, const uint32_t *lengths,
                      const float *clips, size_t nseg, uint8_t bits)
{
	uint32_t off = 0;

	memset(p, 0, sizeof(*p));
	if (nseg < 1 || nseg > CODEC_MAX_SEGMENTS || bits < 2 || bits > CODEC_MAX_BITS || k < 1 ||
	    k > CODEC_MAX_K)
		return -EINVAL;
	p->id = CODEC_ID_FIXED;
	p->version = CODEC_VERSION;
	p->k = k;
	p->keep_ppm = CODEC_KEEP_ALL;
	p->nseg = (uint32_t)nseg;
	for (size_t i = 0; i < nseg; i++) {
		struct codec_segment *s = &p->seg[i];
		unsigned w = bits + codec_log2_ceil(k);

		if (lengths[i] > CODEC_MAX_DIM - off || w > CODEC_MAX_WIDTH)
			return -EINVAL;
		s->offset = off;
		s->length = lengths[i];
		s->bits = bits;
		s->width = (uint8_t)w;
		s->mode = CODEC_SEG_EXACT;
		s->quantum = (float)((double)clips[i] / level_max(bits));
		off += lengths[i];
	}
	p->dim = off;
	return codec_params_check(p);
}

int codec_params_set_weight(struct codec_params *p, uint8_t bits, float quantum)
{
	unsigned w = bits + codec_log2_ceil(p->k);

	if (bits < 2 || bits > CODEC_MAX_BITS || w > CODEC_MAX_WIDTH)
		return -EINVAL;
	p->flags |= CODEC_F_WEIGHT;
	p->weight_bits = bits;
	p->weight_width = (uint8_t)w;
	p->weight_quantum = quantum;
	return codec_params_check(p);
}

/* --- layout ------------------------------------------------------------- */

static uint32_t seg_kept(const struct codec_params *p, const struct codec_segment *s)
{
	uint64_t m;

	if (!(p->flags & CODEC_F_SUBSAMPLE) ||
	    ((p->flags & CODEC_F_KEEP_SMALL) && s->length < CODEC_SMALL_SEG))
		return s->length;
	m = ((uint64_t)s->length * p->keep_ppm + CODEC_KEEP_ALL - 1) / CODEC_KEEP_ALL;
	return (uint32_t)(m < 1 ? 1 : m);
}

size_t codec_ring_nseg(const struct codec_params *p)
{
	return p->nseg + ((p->flags & CODEC_F_WEIGHT) ? 1u : 0u) +
	       ((p->flags & CODEC_F_CHECK) ? 1u : 0u);
}

void codec_ring_segment(const struct codec_params *p, size_t i, uint32_t *len, uint32_t *width)
{
	SOTTO_ASSERT(i < codec_ring_nseg(p));
	if ((p->flags & CODEC_F_CHECK) && i == codec_ring_nseg(p) - 1) {
		*len = CODEC_CHECK_LEN;
		*width = 32;
	} else if (i == p->nseg) {
		*len = 1;
		*width = p->weight_width;
	} else {
		*len = seg_kept(p, &p->seg[i]);
		*width = p->seg[i].width;
	}
}

size_t codec_ring_len(const struct codec_params *p)
{
	size_t n = 0;

	for (size_t i = 0; i < codec_ring_nseg(p); i++) {
		uint32_t len, width;

		codec_ring_segment(p, i, &len, &width);
		n += len;
	}
	return n;
}

size_t codec_packed_bytes(const struct codec_params *p)
{
	uint64_t bits = 0;

	for (size_t i = 0; i < codec_ring_nseg(p); i++) {
		uint32_t len, width;

		codec_ring_segment(p, i, &len, &width);
		bits += (uint64_t)len * width;
	}
	return (size_t)((bits + 7) / 8);
}

/*
 * The kept coordinates of one segment, ascending: selection sampling (Knuth,
 * TAOCP vol. 2, Algorithm S) keeps exactly m of len with every m-subset
 * equally likely, in one pass and O(1) memory. Integer-only so that all
 * members draw the same subset.
 */
struct subset {
	struct rng rng;
	uint32_t len, m, j, chosen;
	bool all;
};

static void subset_init(struct subset *ss, const struct codec_params *p, size_t i)
{
	ss->len = p->seg[i].length;
	ss->m = seg_kept(p, &p->seg[i]);
	ss->j = 0;
	ss->chosen = 0;
	ss->all = ss->m == ss->len;
	if (!ss->all)
		codec_rng_public(&ss->rng, p->sample_seed, PURPOSE_SUBSET, i);
}

/* Next kept offset within the segment; call exactly m times. */
static uint32_t subset_next(struct subset *ss)
{
	SOTTO_ASSERT(ss->chosen < ss->m);
	if (ss->all) {
		ss->chosen++;
		return ss->j++;
	}
	for (;;) {
		uint64_t remaining = ss->len - ss->j;
		uint64_t r = rng_next(&ss->rng) >> 32;
		uint32_t j = ss->j++;

		/* keep with probability (m - chosen) / remaining */
		if (((r * remaining) >> 32) < (uint64_t)(ss->m - ss->chosen)) {
			ss->chosen++;
			return j;
		}
	}
}

void codec_indices(uint32_t *idx, const struct codec_params *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->nseg; i++) {
		struct subset ss;

		subset_init(&ss, p, i);
		for (uint32_t c = 0; c < ss.m; c++)
			idx[n++] = p->seg[i].offset + subset_next(&ss);
	}
}

/* --- encode ------------------------------------------------------------- */

static uint32_t ring_of(int64_t q, uint32_t width)
{
	return (uint32_t)((uint64_t)q & width_mask(width));
}

static int64_t signed_of(uint32_t v, uint32_t width)
{
	if (width >= 32)
		return (int64_t)(int32_t)v;
	if (v >= (1u << (width - 1)))
		return (int64_t)v - ((int64_t)1 << width);
	return (int64_t)v;
}

/*
 * The checksum: c[t] = sum_i a_t,i q_i mod 2^32 over every kept value
 * coordinate in ring order, q_i the signed integer level, a_t,i the two
 * halves of one public 64-bit draw per coordinate (keyed by both seeds, so
 * each round gets fresh coefficients). Linear, so the ring sum of members'
 * checksums is the checksum of the true integer sums.
 */
struct check {
	struct rng rng;
	uint32_t c[CODEC_CHECK_LEN];
};

static void check_init(struct check *ck, const struct codec_params *p)
{
	codec_rng_public(&ck->rng, p->sample_seed ^ rng_rotl(p->dither_seed, 17), PURPOSE_CHECK, 0);
	memset(ck->c, 0, sizeof(ck->c));
}

static inline void check_add(struct check *ck, int64_t q)
{
	uint64_t a = rng_next(&ck->rng);
	uint32_t v = (uint32_t)(uint64_t)q;

	ck->c[0] += (uint32_t)a * v;
	ck->c[1] += (uint32_t)(a >> 32) * v;
}

static int encode(uint32_t *ring, const struct codec_params *p, const float *x, float rho,
                  struct rng *rng, struct codec_stats *st, float *rho_used, float *resid)
{
	double rho_hat = 1.0;
	int64_t q_rho = 0;
	size_t n = 0;
	uint64_t clipped = 0;
	bool dither = (p->flags & CODEC_F_SHARED_DITHER) != 0;
	bool checked = (p->flags & CODEC_F_CHECK) != 0;
	struct check ck;

	if (codec_params_check(p) != 0 || x == NULL || ring == NULL)
		return -EINVAL;
	if (!dither && rng == NULL)
		return -EINVAL;
	if (p->flags & CODEC_F_WEIGHT) {
		double lw = level_max(p->weight_bits);

		if (!isfinite(rho) || rho < 0.0f || (double)rho / p->weight_quantum > lw + 0.5)
			return -EINVAL;
		/* Rounded to nearest, not stochastically: it scales the vector, so
		 * the weight and the weighted values must use the same rho. */
		q_rho = (int64_t)llround((double)rho / p->weight_quantum);
		if (q_rho > (int64_t)lw)
			q_rho = (int64_t)lw;
		rho_hat = (double)q_rho * p->weight_quantum;
	}
	/* Validate before writing so a bad x leaves no half-encoded vector. */
	for (size_t i = 0; i < p->nseg; i++) {
		struct subset ss;

		subset_init(&ss, p, i);
		for (uint32_t c = 0; c < ss.m; c++) {
			if (!isfinite(x[p->seg[i].offset + subset_next(&ss)]))
				return -EINVAL;
		}
	}
	check_init(&ck, p);
	for (size_t i = 0; i < p->nseg; i++) {
		const struct codec_segment *s = &p->seg[i];
		double lmax = level_max(s->bits);
		double scale = rho_hat / s->quantum;
		struct rng drng;
		struct subset ss;

		subset_init(&ss, p, i);
		if (dither)
			codec_rng_public(&drng, p->dither_seed, PURPOSE_DITHER, i);
		for (uint32_t c = 0; c < ss.m; c++) {
			uint32_t j = subset_next(&ss);
			double y = (double)x[s->offset + j] * scale;
			double f, u;
			int64_t q;

			if (y > lmax) {
				y = lmax;
				clipped++;
			} else if (y < -lmax) {
				y = -lmax;
				clipped++;
			}
			/* Unbiased: q = floor(y) + 1 with probability y - floor(y). */
			f = floor(y);
			u = dither ? rng_uniform(&drng) : rng_uniform(rng);
			q = (int64_t)f + (u < y - f ? 1 : 0);
			if (resid != NULL) {
				/* What this member's level leaves out, at most one level
				 * (a clipped value's excess is not carried). */
				double r = rho_hat > 0 ? (y - (double)q) / scale : 0.0;
				resid[s->offset + j] = (float)r;
			}
			ring[n++] = ring_of(q, s->width);
			if (checked)
				check_add(&ck, q);
		}
	}
	if (p->flags & CODEC_F_WEIGHT)
		ring[n++] = ring_of(q_rho, p->weight_width);
	if (checked) {
		for (size_t t = 0; t < CODEC_CHECK_LEN; t++)
			ring[n++] = ck.c[t];
	}
	if (st != NULL) {
		st->values += n;
		st->clipped += clipped;
	}
	if (rho_used != NULL)
		*rho_used = (float)rho_hat;
	return 0;
}

int codec_encode(uint32_t *ring, const struct codec_params *p, const float *x, float rho,
                 struct rng *rng, struct codec_stats *st, float *rho_used)
{
	return encode(ring, p, x, rho, rng, st, rho_used, NULL);
}

int codec_encode_residual(uint32_t *ring, float *resid, const struct codec_params *p,
                          const float *x, float rho, struct rng *rng, struct codec_stats *st,
                          float *rho_used)
{
	if (resid == NULL)
		return -EINVAL;
	return encode(ring, p, x, rho, rng, st, rho_used, resid);
}

/* --- packing ------------------------------------------------------------ */

/*
 * Walks the ring elements [first, first + n) as runs of one width: each
 * run is the part of one ring segment inside the range.
 */
struct range_walk {
	const struct codec_params *p;
	size_t seg, seg_start; /* the segment holding pos, and its first element */
	size_t pos, end;
};

/* false if the range leaves the ring */
static bool range_start(struct range_walk *w, const struct codec_params *p, size_t first, size_t n)
{
	size_t total = codec_ring_len(p);

	if (first > total || n > total - first)
		return false;
	*w = (struct range_walk){.p = p, .pos = first, .end = first + n};
	return true;
}

static bool range_next(struct range_walk *w, size_t *count, uint32_t *width)
{
	uint32_t len;

	for (; w->pos < w->end && w->seg < codec_ring_nseg(w->p); w->seg++) {
		codec_ring_segment(w->p, w->seg, &len, width);
		if (w->pos < w->seg_start + len) {
			*count = MIN(w->seg_start + len, w->end) - w->pos;
			w->pos += *count;
			return true; /* the next call moves past this segment */
		}
		w->seg_start += len;
	}
	return false;
}

size_t codec_range_bytes(const struct codec_params *p, size_t first, size_t n)
{
	struct range_walk w;
	uint64_t bits = 0;
	size_t c;
	uint32_t width;

	if (!range_start(&w, p, first, n))
		return 0;
	while (range_next(&w, &c, &width))
		bits += (uint64_t)c * width;
	return (size_t)((bits + 7) / 8);
}

int codec_pack_range(uint8_t *out, size_t out_len, const struct codec_params *p, size_t first,
                     size_t n, const uint32_t *vals)
{
	struct range_walk w;
	uint64_t acc = 0;
	unsigned nbits = 0;
	size_t o = 0, k = 0, c;
	uint32_t width;

	if (!range_start(&w, p, first, n))
		return -EINVAL;
	if (out_len < codec_range_bytes(p, first, n))
		return -ENOBUFS;
	while (range_next(&w, &c, &width)) {
		for (size_t e = 0; e < c; e++) {
			uint32_t v = vals[k++];

			if (width < 32 && (v >> width) != 0)
				return -EINVAL;
			acc |= (uint64_t)v << nbits;
			nbits += width;
			while (nbits >= 8) {
				out[o++] = (uint8_t)acc;
				acc >>= 8;
				nbits -= 8;
			}
		}
	}
	if (nbits > 0)
		out[o++] = (uint8_t)acc;
	SOTTO_ASSERT(k == n && o == codec_range_bytes(p, first, n));
	return 0;
}

int codec_unpack_range(uint32_t *vals, const struct codec_params *p, size_t first, size_t n,
                       const uint8_t *in, size_t in_len)
{
	struct range_walk w;
	uint64_t acc = 0;
	unsigned nbits = 0;
	size_t o = 0, k = 0, c;
	uint32_t width;

	if (!range_start(&w, p, first, n) || in_len != codec_range_bytes(p, first, n))
		return -EINVAL;
	while (range_next(&w, &c, &width)) {
		for (size_t e = 0; e < c; e++) {
			while (nbits < width) {
				acc |= (uint64_t)in[o++] << nbits;
				nbits += 8;
			}
			vals[k++] = (uint32_t)(acc & width_mask(width));
			acc = width >= 64 ? 0 : acc >> width;
			nbits -= width;
		}
	}
	/* Whatever is left is the padding of the last byte: it must be zero. */
	if (o != in_len || acc != 0 || k != n)
		return -EINVAL;
	return 0;
}

int codec_pack(uint8_t *out, size_t out_len, const struct codec_params *p, const uint32_t *ring)
{
	return codec_pack_range(out, out_len, p, 0, codec_ring_len(p), ring);
}

int codec_unpack(uint32_t *ring, const struct codec_params *p, const uint8_t *in, size_t in_len)
{
	return codec_unpack_range(ring, p, 0, codec_ring_len(p), in, in_len);
}

void codec_ring_add(uint32_t *acc, const uint32_t *v, const struct codec_params *p)
{
	size_t n = 0;

	for (size_t i = 0; i < codec_ring_nseg(p); i++) {
		uint32_t len, width, m;

		codec_ring_segment(p, i, &len, &width);
		m = width_mask(width);
		for (uint32_t c = 0; c < len; c++, n++)
			acc[n] = (acc[n] + v[n]) & m;
	}
}

/* --- decode ------------------------------------------------------------- */

/* fmax without the call (b NaN: a, as fmax; a is never NaN here). */
static inline double max_d(double a, double b)
{
	return b > a ? b : a;
}

int codec_decode_sum(float *out, float *rho_sum, const struct codec_params *p,
                     const uint32_t *ring_sum, uint32_t members, const float *reference,
                     struct codec_stats *st)
{
	double denom;
	size_t n = 0;
	uint64_t near = 0, values = 0;
	bool checked = (p->flags & CODEC_F_CHECK) != 0;
	float max_dev[CODEC_MAX_SEGMENTS], max_use[CODEC_MAX_SEGMENTS];
	struct check ck;

	if (codec_params_check(p) != 0 || out == NULL || ring_sum == NULL || members < 1 ||
	    members > p->k)
		return -EINVAL;
	if (reference == NULL) {
		for (size_t i = 0; i < p->nseg; i++) {
			if (p->seg[i].mode == CODEC_SEG_MODULAR)
				return -EINVAL;
		}
	}
	if (p->flags & CODEC_F_WEIGHT) {
		size_t wi = codec_ring_len(p) - 1 - (checked ? CODEC_CHECK_LEN : 0);
		int64_t sw = signed_of(ring_sum[wi], p->weight_width);

		if (sw < 0 || sw > (int64_t)members * level_max(p->weight_bits))
			return -ERANGE;
		if (sw == 0)
			return -EDOM;
		denom = (double)sw * p->weight_quantum;
		if (rho_sum != NULL)
			*rho_sum = (float)denom;
	} else {
		denom = members;
	}
	check_init(&ck, p);
	for (size_t i = 0; i < p->nseg; i++) {
		const struct codec_segment *s = &p->seg[i];
		int64_t bound = (int64_t)members * level_max(s->bits);
		double half = ldexp(1.0, s->width - 1);
		double dev = 0, use = 0;
		struct subset ss;

		subset_init(&ss, p, i);
		for (uint32_t c = 0; c < ss.m; c++) {
			uint32_t j = s->offset + subset_next(&ss);
			uint32_t v = ring_sum[n++];
			int64_t sum;

			if (s->mode == CODEC_SEG_EXACT) {
				sum = signed_of(v, s->width);
				if (reference != NULL && isfinite(reference[j])) {
					double pr = (double)reference[j] * denom / s->quantum;

					use = max_d(use, fabs((double)sum - pr) / half);
				}
			} else if (s->mode == CODEC_SEG_CENTERED) {
				/* The value nearest 0; the checksum tells a wrap. */
				sum = signed_of(v, s->width);
				if ((double)(sum < 0 ? -sum : sum) > 0.75 * half)
					near++;
				use = max_d(use, fabs((double)sum) / half);
			} else {
				/* Predicted sum in levels, then the representative of
				 * v mod 2^w nearest to it. */
				double pred = (double)reference[j] * denom / s->quantum;
				int64_t r, d;

				if (!isfinite(pred))
					return -EINVAL;
				pred = pred > (double)bound    ? (double)bound
				       : pred < (double)-bound ? (double)-bound
				                               : pred;
				r = (int64_t)llround(pred);
				d = signed_of(ring_of((int64_t)v - r, s->width), s->width);
				if ((double)(d < 0 ? -d : d) > 0.75 * half)
					near++;
				use = max_d(use, fabs((double)d + (double)r - pred) / half);
				sum = r + d;
			}
			if (sum > bound || sum < -bound)
				return -ERANGE;
			if (checked)
				check_add(&ck, sum);
			out[j] = (float)((double)sum * s->quantum / denom);
			if (reference != NULL)
				dev = max_d(dev, fabs((double)out[j] - (double)reference[j]));
			values++;
		}
		max_dev[i] = (float)dev;
		max_use[i] = (float)use;
	}
	if (checked) {
		const uint32_t *c = ring_sum + codec_ring_len(p) - CODEC_CHECK_LEN;

		for (size_t t = 0; t < CODEC_CHECK_LEN; t++) {
			if (c[t] != ck.c[t]) {
				if (st != NULL)
					st->check_failed++;
				return -ERANGE;
			}
		}
	}
	if (st != NULL) {
		st->values += values;
		st->near_wrap += near;
		for (size_t i = 0; i < p->nseg; i++) {
			st->max_dev[i] = fmaxf(st->max_dev[i], max_dev[i]);
			st->max_use[i] = fmaxf(st->max_use[i], max_use[i]);
		}
	}
	return 0;
}

/* --- params byte form --------------------------------------------------- */

int codec_params_encode(uint8_t *buf, size_t cap, size_t *len, const struct codec_params *p)
{
	size_t need;

	if (codec_params_check(p) != 0)
		return -EINVAL;
	need = CODEC_PARAMS_HEADER_BYTES + (size_t)p->nseg * CODEC_PARAMS_SEGMENT_BYTES;
	if (cap < need)
		return -ENOBUFS;
	memset(buf, 0, need);
	bytes_put_le16(buf + 0, p->id);
	bytes_put_le16(buf + 2, p->version);
	bytes_put_le16(buf + 4, p->k);
	bytes_put_le16(buf + 6, p->flags);
	bytes_put_le32(buf + 8, p->dim);
	bytes_put_le32(buf + 12, p->keep_ppm);
	bytes_put_le64(buf + 16, p->sample_seed);
	bytes_put_le64(buf + 24, p->dither_seed);
	buf[32] = p->weight_bits;
	buf[33] = p->weight_width;
	/* 34..35 reserved, zero */
	bytes_put_le_float(buf + 36, p->weight_quantum);
	bytes_put_le32(buf + 40, p->nseg);
	for (uint32_t i = 0; i < p->nseg; i++) {
		uint8_t *b =
		        buf + CODEC_PARAMS_HEADER_BYTES + (size_t)i * CODEC_PARAMS_SEGMENT_BYTES;
		const struct codec_segment *s = &p->seg[i];

		bytes_put_le32(b + 0, s->offset);
		bytes_put_le32(b + 4, s->length);
		b[8] = s->bits;
		b[9] = s->width;
		b[10] = s->mode;
		/* 11 reserved, zero */
		bytes_put_le_float(b + 12, s->quantum);
	}
	*len = need;
	return 0;
}

int codec_params_decode(struct codec_params *p, const uint8_t *buf, size_t len)
{
	uint32_t nseg;

	memset(p, 0, sizeof(*p));
	if (len < CODEC_PARAMS_HEADER_BYTES)
		return -EINVAL;
	nseg = bytes_get_le32(buf + 40);
	if (nseg < 1 || nseg > CODEC_MAX_SEGMENTS ||
	    len != CODEC_PARAMS_HEADER_BYTES + (size_t)nseg * CODEC_PARAMS_SEGMENT_BYTES)
		return -EINVAL;
	if (buf[34] != 0 || buf[35] != 0)
		return -EINVAL;
	p->id = bytes_get_le16(buf + 0);
	p->version = bytes_get_le16(buf + 2);
	p->k = bytes_get_le16(buf + 4);
	p->flags = bytes_get_le16(buf + 6);
	p->dim = bytes_get_le32(buf + 8);
	p->keep_ppm = bytes_get_le32(buf + 12);
	p->sample_seed = bytes_get_le64(buf + 16);
	p->dither_seed = bytes_get_le64(buf + 24);
	p->weight_bits = buf[32];
	p->weight_width = buf[33];
	p->weight_quantum = bytes_get_le_float(buf + 36);
	p->nseg = nseg;
	for (uint32_t i = 0; i < nseg; i++) {
		const uint8_t *b =
		        buf + CODEC_PARAMS_HEADER_BYTES + (size_t)i * CODEC_PARAMS_SEGMENT_BYTES;
		struct codec_segment *s = &p->seg[i];

		if (b[11] != 0)
			return -EINVAL;
		s->offset = bytes_get_le32(b + 0);
		s->length = bytes_get_le32(b + 4);
		s->bits = b[8];
		s->width = b[9];
		s->mode = b[10];
		s->quantum = bytes_get_le_float(b + 12);
	}
	return codec_params_check(p);
}
