/*
 * codec.h: the vector codec of a secure-aggregation round.
 *
 * A float vector becomes a vector of ring elements that members can add,
 * mask and unmask without ever leaving the ring; the exact ring sum decodes
 * back to a (sample-weighted) average. Everything here is public: all members
 * of a round use the same struct codec_params, so their ring vectors have the
 * same layout and masks cancel.
 *
 *   x (dim floats) --subsample--> x[idx] --clip, /quantum, stochastic round-->
 *   q in [-L, L], L = 2^(bits-1) - 1 --mod 2^width--> ring element --pack-->
 *   exactly `width` bits per value on the wire.
 *
 * The vector is cut into segments (e.g. one per layer's weights and biases),
 * each with its own quantum, value bits and ring width, because layers differ
 * in range by orders of magnitude. Two kinds of segment:
 *
 *   CODEC_SEG_EXACT    width >= bits + ceil(log2 k): the sum of k members
 *                      cannot overflow (k * L < 2^(width-1)), so the ring sum
 *                      decodes to the exact integer sum. A decoded sum outside
 *                      [-k L, k L] proves a corrupt sum and is rejected.
 *   CODEC_SEG_MODULAR  any width: the sum is known only modulo 2^width and is
 *                      decoded to the value nearest a reference (the sum a
 *                      member predicts from its own model); see docs/codec.md.
 *   CODEC_SEG_CENTERED width <= bits + ceil(log2 k), with CODEC_F_CHECK: read
 *                      like an exact segment (the value nearest 0), for sums
 *                      known to be far smaller than k L because members'
 *                      values cancel (a low-rank sketch); a sum that left the
 *                      ring fails the checksum (or the range) and is never
 *                      applied.
 *
 * Optional features, all driven by public values in the params:
 *   - shared-seed subsampling: one subset of coordinates for all members,
 *     drawn from a public seed (exactly ceil(len * keep) per segment; with
 *     CODEC_F_KEEP_SMALL, segments under CODEC_SMALL_SEG are kept whole);
 *   - push-sum weight: each member's relative weight rho travels as one more
 *     exact segment; values are sent as rho * x, so the decoded average is
 *     sum(rho x) / sum(rho), i.e. sample-weighted;
 *   - shared dither: the rounding noise comes from a public per-round stream
 *     instead of the member's own RNG (same expectation, correlated errors);
 *   - checksum: CODEC_CHECK_LEN more ring elements of width 32 holding
 *     sum_i a_i q_i mod 2^32 over the member's integer levels q_i, with public
 *     pseudo-random coefficients a_i. Their ring sum is sum_i a_i S_i for the
 *     true integer sums S_i, so a decode that picked a wrong representative
 *     anywhere (a wrap) is caught with probability 1 - 2^-(64 - 2w). It
 *     reveals nothing the sum does not (it is a function of the sum).
 *
 * Not here: masks (crypto/mask.h), the wire messages that carry packed
 * vectors (protocol/msg.h), choosing widths adaptively (the node does that).
 */
#ifndef SOTTO_PROTOCOL_CODEC_H
#define SOTTO_PROTOCOL_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/rng.h"

#define CODEC_ID_FIXED     1 /* fixed point in Z_2^w per segment */
#define CODEC_VERSION      1 /* layout of codec_params_encode and of packing */
#define CODEC_MAX_SEGMENTS 256
#define CODEC_MAX_DIM      (1u << 26) /* 64 Mi coordinates */
#define CODEC_MAX_K        64         /* members whose sum an exact segment must hold */
#define CODEC_MAX_WIDTH    32         /* ring elements are uint32_t */
#define CODEC_MAX_BITS     31         /* value bits, sign included */
#define CODEC_KEEP_ALL     1000000u   /* keep_ppm meaning "no subsampling" */
/* Bytes of codec_params_encode: header + per segment. */
#define CODEC_PARAMS_HEADER_BYTES  44
#define CODEC_PARAMS_SEGMENT_BYTES 16
#define CODEC_PARAMS_MAX_BYTES                                                                     \
	(CODEC_PARAMS_HEADER_BYTES + CODEC_MAX_SEGMENTS * CODEC_PARAMS_SEGMENT_BYTES)

enum codec_seg_mode {
	CODEC_SEG_EXACT = 0,
	CODEC_SEG_MODULAR = 1,
	CODEC_SEG_CENTERED = 2,
};

/* Flags of struct codec_params. Unknown bits are rejected. */
#define CODEC_F_SUBSAMPLE     0x1u  /* keep keep_ppm of each segment, subset from sample_seed */
#define CODEC_F_WEIGHT        0x2u  /* one extra exact segment: the push-sum weight */
#define CODEC_F_SHARED_DITHER 0x4u  /* rounding noise from dither_seed (public) */
#define CODEC_F_CHECK         0x8u  /* CODEC_CHECK_LEN checksum elements: wrap detection */
#define CODEC_F_KEEP_SMALL    0x10u /* subsampling spares segments under CODEC_SMALL_SEG */
#define CODEC_F_ALL                                                                                \
	(CODEC_F_SUBSAMPLE | CODEC_F_WEIGHT | CODEC_F_SHARED_DITHER | CODEC_F_CHECK |              \
	 CODEC_F_KEEP_SMALL)
/* With CODEC_F_KEEP_SMALL, segments shorter than this are always kept whole. */
#define CODEC_SMALL_SEG 4096
/* Ring elements (of width 32) of the checksum segment, last in the ring. */
#define CODEC_CHECK_LEN 2

struct codec_segment {
	uint32_t offset; /* first coordinate in the full vector */
	uint32_t length; /* coordinates, >= 1 */
	uint8_t bits;    /* value bits b in [2, 31]: levels q in [-L, L], L = 2^(b-1) - 1 */
	uint8_t width;   /* ring width w in [1, 32]: wire bits per value */
	uint8_t mode;    /* enum codec_seg_mode */
	float quantum;   /* one level, finite and > 0; clip = L * quantum */
};

struct codec_params {
	uint16_t id;          /* CODEC_ID_FIXED */
	uint16_t version;     /* CODEC_VERSION */
	uint16_t k;           /* group size the exact segments are sized for, 1..CODEC_MAX_K */
	uint16_t flags;       /* CODEC_F_* */
	uint32_t dim;         /* full vector length; segments tile [0, dim) in order */
	uint32_t keep_ppm;    /* with CODEC_F_SUBSAMPLE: kept fraction, parts per million */
	uint64_t sample_seed; /* public seed of the subset */
	uint64_t dither_seed; /* public seed of the shared dither */
	uint8_t weight_bits;  /* CODEC_F_WEIGHT: rho levels 0..2^(bits-1)-1, exact segment */
	uint8_t weight_width; /* >= weight_bits + ceil(log2 k) */
	float weight_quantum; /* one level of rho */
	uint32_t nseg;
	struct codec_segment seg[CODEC_MAX_SEGMENTS];
};

/* What encode/decode saw; counters add up over calls (zero it yourself). */
struct codec_stats {
	uint64_t values;       /* values encoded or decoded */
	uint64_t clipped;      /* encode: |x| beyond the clip, sent as +-clip */
	uint64_t near_wrap;    /* modular decode: |sum - reference| above 3/8 of the ring */
	uint64_t check_failed; /* decode: the checksum disagreed (a wrap or a corrupt sum) */
	/*
	 * Decode with a reference: per segment, the largest |average - reference|
	 * over the kept coordinates (value units) and the largest |sum - predicted
	 * sum| as a fraction of half the ring (>= 1: that value wrapped). Maxima
	 * over calls; written only by a decode that returned 0.
	 */
	float max_dev[CODEC_MAX_SEGMENTS];
	float max_use[CODEC_MAX_SEGMENTS];
};

/* ceil(log2 k) for k >= 1: the extra bits an exact sum of k values needs. */
unsigned codec_log2_ceil(uint32_t k);

/*
 * Fills p with one exact segment per entry of lengths[] (nseg of them), each
 * with the given value bits and the clip of clips[i], for a group of k: the
 * width is bits + ceil(log2 k). No subsampling, no weight: set those after.
 * Returns 0 or -EINVAL (the result would not pass codec_params_check).
 */
int codec_params_init(struct codec_params *p, uint16_t k, const uint32_t *lengths,
                      const float *clips, size_t nseg, uint8_t bits)
        __attribute__((warn_unused_result));
/* Turns on the push-sum weight segment: rho in [0, (2^(bits-1)-1) * quantum]. */
int codec_params_set_weight(struct codec_params *p, uint8_t bits, float quantum)
        __attribute__((warn_unused_result));

/* Whether p is well formed and every exact segment holds a sum of p->k. 0 or -EINVAL. */
int codec_params_check(const struct codec_params *p) __attribute__((warn_unused_result));

/*
 * The ring layout of p (valid params only): ring segment i < p->nseg holds the
 * kept coordinates of p->seg[i]; with CODEC_F_WEIGHT, ring segment p->nseg is
 * the one weight element; with CODEC_F_CHECK, the last ring segment is the
 * CODEC_CHECK_LEN checksum elements (width 32). Masks use exactly this layout.
 */
size_t codec_ring_nseg(const struct codec_params *p);
void codec_ring_segment(const struct codec_params *p, size_t i, uint32_t *len, uint32_t *width);
/* Ring elements of one member's vector (values, then the weight). */
size_t codec_ring_len(const struct codec_params *p);
/* Bytes of a packed ring vector: ceil(sum of len_i * width_i / 8). */
size_t codec_packed_bytes(const struct codec_params *p);

/*
 * The kept coordinates, ascending (codec_ring_len minus the weight element
 * of them), written to idx. Every member computes the same list.
 */
void codec_indices(uint32_t *idx, const struct codec_params *p);

/*
 * Encodes x (p->dim floats) and the push-sum weight rho (ignored without
 * CODEC_F_WEIGHT) into ring (codec_ring_len elements). Stochastic rounding
 * draws from rng (unused with CODEC_F_SHARED_DITHER, may then be NULL).
 * Returns 0, or -EINVAL for invalid params, a non-finite x on a kept
 * coordinate, or rho not finite or outside [0, max]. Clipped values are
 * counted in st (may be NULL). *rho_used (may be NULL) gets the quantized rho
 * that scaled the vector.
 */
int codec_encode(uint32_t *ring, const struct codec_params *p, const float *x, float rho,
                 struct rng *rng, struct codec_stats *st, float *rho_used)
        __attribute__((warn_unused_result));

/*
 * codec_encode, and also the rounding residual of every kept coordinate:
 * resid[i] = x[i] - q_i * quantum / rho_used, what this member's level q_i
 * leaves out (|resid[i]| < quantum / rho_used; the excess of a clipped value
 * is not included). Other coordinates of resid (p->dim floats) are left
 * untouched; all of them are 0 when rho_used is 0. For error feedback: the
 * caller adds resid to its next input. Same rng draws as codec_encode, so
 * with the same seed the ring is the same. Returns as codec_encode (and
 * -EINVAL for a NULL resid).
 */
int codec_encode_residual(uint32_t *ring, float *resid, const struct codec_params *p,
                          const float *x, float rho, struct rng *rng, struct codec_stats *st,
                          float *rho_used) __attribute__((warn_unused_result));

/*
 * Packs ring (codec_ring_len elements, each < 2^width of its segment) into
 * exactly codec_packed_bytes(p) bytes: values LSB-first in one bit stream,
 * zero padding in the last byte. Returns 0, -ENOBUFS (out_len too small) or
 * -EINVAL (an element does not fit its width).
 */
int codec_pack(uint8_t *out, size_t out_len, const struct codec_params *p, const uint32_t *ring)
        __attribute__((warn_unused_result));
/*
 * Strict inverse of codec_pack: in_len must equal codec_packed_bytes(p) and
 * the padding bits must be zero. Returns 0 or -EINVAL; ring is undefined on
 * error.
 */
int codec_unpack(uint32_t *ring, const struct codec_params *p, const uint8_t *in, size_t in_len)
        __attribute__((warn_unused_result));

/*
 * The same for ring elements [first, first + n) only (the scatter path's
 * PART and PART_SUM): vals holds those n elements. codec_range_bytes is
 * their packed size (0 if the range leaves the ring); pack and unpack
 * return -EINVAL for such a range.
 */
size_t codec_range_bytes(const struct codec_params *p, size_t first, size_t n);
int codec_pack_range(uint8_t *out, size_t out_len, const struct codec_params *p, size_t first,
                     size_t n, const uint32_t *vals) __attribute__((warn_unused_result));
int codec_unpack_range(uint32_t *vals, const struct codec_params *p, size_t first, size_t n,
                       const uint8_t *in, size_t in_len) __attribute__((warn_unused_result));

/* acc += v in the ring, segment by segment. */
void codec_ring_add(uint32_t *acc, const uint32_t *v, const struct codec_params *p);

/*
 * Decodes the ring sum of `members` encoded vectors (1 <= members <= p->k)
 * into the average: out[i] for every kept coordinate i (other coordinates are
 * left untouched), out being p->dim floats. With CODEC_F_WEIGHT the average is
 * sum(rho x) / sum(rho) and *rho_sum (may be NULL) is sum(rho); without it,
 * sum(x) / members.
 *
 * reference (p->dim floats, may be NULL if no segment is modular) is what
 * the caller predicts the average to be, normally its own x: a modular
 * segment decodes to the sum nearest members' predicted sum.
 *
 * Returns 0; -EINVAL (bad arguments, or a modular segment without a
 * reference); -ERANGE if a decoded sum is outside what `members` inputs can
 * produce, or (CODEC_F_CHECK) the checksum disagrees with the decoded sums:
 * a wrap or a corrupt sum, never apply it; -EDOM if the weight sum is zero.
 * out is untouched on every error except -ERANGE, where it may be written.
 */
int codec_decode_sum(float *out, float *rho_sum, const struct codec_params *p,
                     const uint32_t *ring_sum, uint32_t members, const float *reference,
                     struct codec_stats *st) __attribute__((warn_unused_result));

/*
 * Portable byte form of the params (little endian, CODEC_PARAMS_HEADER_BYTES
 * + nseg * CODEC_PARAMS_SEGMENT_BYTES), for the round invitation. encode
 * returns 0 and *len, -ENOBUFS, or -EINVAL (invalid params). decode is strict
 * (exact length, known id/version/flags, zero reserved bytes, passes
 * codec_params_check): 0 or -EINVAL.
 */
int codec_params_encode(uint8_t *buf, size_t cap, size_t *len, const struct codec_params *p)
        __attribute__((warn_unused_result));
int codec_params_decode(struct codec_params *p, const uint8_t *buf, size_t len)
        __attribute__((warn_unused_result));

#endif
