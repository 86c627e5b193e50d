/*
 * protocol_codec_test.c: the vector codec. Bit packing round-trips for every
 * width 1..32 and rejects malformed input; stochastic rounding is unbiased
 * (fixed seed, tolerance of many standard deviations); exact segments hold
 * the sum of k members at the clip extremes; weighted averages; shared-seed
 * subsets; modular segments decoded against a reference; centred segments
 * (narrower than the no-overflow rule, checked by the checksum); the params byte
 * form is strict; the rounding residual of error feedback (the same ring
 * as codec_encode, residual = input - level, under one level) and its point:
 * with feedback a group's repeated rounds keep sum(x) + sum(e), so its mean
 * stays within a quantum of where it started, while without it the rounding
 * noise adds up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/codec.h"

static void one_segment(struct codec_params *p, uint16_t k, uint32_t dim, float clip, uint8_t bits)
{
	assert_int_equal(codec_params_init(p, k, &dim, &clip, 1, bits), 0);
}

static void test_pack_roundtrip_all_widths(void **state)
{
	struct rng rng;

	(void)state;
	rng_seed(&rng, 1);
	for (uint8_t w = 1; w <= 32; w++) {
		for (uint32_t len = 1; len <= 67; len += 11) {
			struct codec_params p;
			uint32_t in[80], out[80];
			uint8_t buf[80 * 4 + 1];
			size_t nb;

			/* An exact layout with width w (bits = w, k = 1), or a
			 * modular one for w = 1 (exact needs bits >= 2). */
			memset(&p, 0, sizeof(p));
			p.id = CODEC_ID_FIXED;
			p.version = CODEC_VERSION;
			p.k = 1;
			p.dim = len;
			p.keep_ppm = CODEC_KEEP_ALL;
			p.nseg = 1;
			p.seg[0].length = len;
			p.seg[0].bits = w < 2 ? 2 : (w > 31 ? 31 : w);
			p.seg[0].width = w;
			p.seg[0].mode = w < 2 ? CODEC_SEG_MODULAR : CODEC_SEG_EXACT;
			p.seg[0].quantum = 1.0f;
			assert_int_equal(codec_params_check(&p), 0);
			nb = codec_packed_bytes(&p);
			assert_int_equal(nb, ((size_t)len * w + 7) / 8);
			for (uint32_t i = 0; i < len; i++) {
				uint64_t r = rng_next(&rng);
				in[i] = w == 32 ? (uint32_t)r : (uint32_t)(r & ((1u << w) - 1));
			}
			in[0] = w == 32 ? UINT32_MAX : (1u << w) - 1; /* all ones */
			assert_int_equal(codec_pack(buf, sizeof(buf), &p, in), 0);
			assert_int_equal(codec_unpack(out, &p, buf, nb), 0);
			assert_memory_equal(in, out, len * sizeof(uint32_t));
			/* strict length */
			assert_int_equal(codec_unpack(out, &p, buf, nb + 1), -EINVAL);
			assert_int_equal(codec_unpack(out, &p, buf, nb - 1), -EINVAL);
			/* nonzero padding bits are malformed */
			if ((len * w) % 8 != 0) {
				buf[nb - 1] |= 0x80;
				assert_int_equal(codec_unpack(out, &p, buf, nb), -EINVAL);
			}
			assert_int_equal(codec_pack(buf, nb - 1, &p, in), -ENOBUFS);
			if (w < 32) {
				in[len - 1] = 1u << w; /* does not fit */
				assert_int_equal(codec_pack(buf, sizeof(buf), &p, in), -EINVAL);
			}
		}
	}
}

static void test_pack_mixed_segments(void **state)
{
	uint32_t lens[3] = {5, 1, 9};
	float clips[3] = {1.0f, 0.5f, 2.0f};
	struct codec_params p;
	uint32_t in[16], out[16];
	uint8_t buf[128];

	(void)state;
	assert_int_equal(codec_params_init(&p, 4, lens, clips, 3, 5), 0);
	p.seg[1].width = 13;
	p.seg[2].width = 32;
	assert_int_equal(codec_params_set_weight(&p, 12, 1.0f / 256), 0);
	assert_int_equal(codec_ring_len(&p), 16);
	assert_int_equal(codec_packed_bytes(&p), (5 * 7 + 13 + 9 * 32 + 14 + 7) / 8);
	for (uint32_t i = 0; i < 16; i++)
		in[i] = i * 3u;
	in[6] = 0x5a5a5a5au;
	assert_int_equal(codec_pack(buf, sizeof(buf), &p, in), 0);
	assert_int_equal(codec_unpack(out, &p, buf, codec_packed_bytes(&p)), 0);
	assert_memory_equal(in, out, sizeof(in));
	/*
	 * Every range (the scatter path's parts) packs to the bits of its own
	 * elements and unpacks to them; the whole range is codec_pack's bytes;
	 * a range past the end is refused.
	 */
	for (size_t first = 0; first <= 16; first++) {
		for (size_t n = 0; first + n <= 16; n++) {
			uint8_t rb[128];
			uint32_t rv[16];
			uint64_t bits = 0;
			size_t nb = codec_range_bytes(&p, first, n);

			for (size_t i = first; i < first + n; i++)
				bits += i < 5 ? 7 : i < 6 ? 13 : i < 15 ? 32 : 14;
			assert_int_equal(nb, (bits + 7) / 8);
			assert_int_equal(codec_pack_range(rb, sizeof(rb), &p, first, n, in + first),
			                 0);
			assert_int_equal(codec_unpack_range(rv, &p, first, n, rb, nb), 0);
			if (n > 0)
				assert_memory_equal(rv, in + first, n * sizeof(uint32_t));
			if (nb > 0)
				assert_int_equal(codec_unpack_range(rv, &p, first, n, rb, nb - 1),
				                 -EINVAL);
			if (nb > 0)
				assert_int_equal(
				        codec_pack_range(rb, nb - 1, &p, first, n, in + first),
				        -ENOBUFS);
		}
	}
	{
		uint8_t rb[128];
		assert_int_equal(codec_pack_range(rb, sizeof(rb), &p, 0, 16, in), 0);
		assert_memory_equal(rb, buf, codec_packed_bytes(&p));
		assert_int_equal(codec_range_bytes(&p, 10, 7), 0);
		assert_int_equal(codec_pack_range(rb, sizeof(rb), &p, 10, 7, in), -EINVAL);
		assert_int_equal(codec_unpack_range(out, &p, 17, 0, rb, 0), -EINVAL);
	}
}

/* Mean of stochastic rounding over many draws equals the scaled value. */
static void test_rounding_unbiased(void **state)
{
	const float quantum = 0.01f;
	const float xs[] = {0.0037f, -0.0123f, 0.5f, 0.00999f, -1.23456f, 0.0f};
	enum { N = 4096, TRIALS = 64 };
	struct codec_params p;
	struct rng rng;
	uint32_t *ring = malloc(N * sizeof(uint32_t));
	float *x = malloc(N * sizeof(float));

	(void)state;
	assert_non_null(ring);
	assert_non_null(x);
	one_segment(&p, 4, N, quantum * 127, 8);
	rng_seed(&rng, 42);
	for (size_t v = 0; v < sizeof(xs) / sizeof(xs[0]); v++) {
		double y = (double)xs[v] * (1.0 / (double)p.seg[0].quantum), sum = 0;

		for (size_t i = 0; i < N; i++)
			x[i] = xs[v];
		for (int t = 0; t < TRIALS; t++) {
			assert_int_equal(codec_encode(ring, &p, x, 1.0f, &rng, NULL, NULL), 0);
			for (size_t i = 0; i < N; i++) {
				int64_t q = ring[i] >= (1u << (p.seg[0].width - 1))
				                    ? (int64_t)ring[i] - (1 << p.seg[0].width)
				                    : (int64_t)ring[i];
				/* each draw is floor(y) or floor(y) + 1 */
				assert_true(q == (int64_t)floor(y) || q == (int64_t)floor(y) + 1);
				sum += (double)q;
			}
		}
		/* 262144 Bernoulli draws: std of the mean <= 0.001; allow 0.01. */
		assert_true(fabs(sum / (N * TRIALS) - y) < 0.01);
	}
	free(ring);
	free(x);
}

/* One member: decode(encode(x)) within one quantum; clipped values counted. */
static void test_roundtrip_bound_and_clip(void **state)
{
	enum { N = 1000 };
	uint32_t lens[2] = {600, 400};
	float clips[2] = {1.0f, 0.01f};
	struct codec_params p;
	struct rng rng;
	struct codec_stats st = {0};
	uint32_t ring[N];
	float x[N], y[N];
	uint64_t expect_clipped = 0;

	(void)state;
	assert_int_equal(codec_params_init(&p, 8, lens, clips, 2, 9), 0);
	rng_seed(&rng, 7);
	for (size_t i = 0; i < N; i++) {
		double c = i < 600 ? 1.0 : 0.01;
		x[i] = (float)((rng_uniform(&rng) * 2.4 - 1.2) * c);
		if (fabs(x[i]) > (double)p.seg[i < 600 ? 0 : 1].quantum * 255)
			expect_clipped++;
	}
	assert_int_equal(codec_encode(ring, &p, x, 1.0f, &rng, &st, NULL), 0);
	assert_int_equal(st.clipped, expect_clipped);
	assert_true(expect_clipped > 100);
	assert_int_equal(codec_decode_sum(y, NULL, &p, ring, 1, NULL, &st), 0);
	for (size_t i = 0; i < N; i++) {
		const struct codec_segment *s = &p.seg[i < 600 ? 0 : 1];
		double clip = (double)s->quantum * 255;
		double xc = fmax(fmin((double)x[i], clip), -clip);
		assert_true(fabs((double)y[i] - xc) <= (double)s->quantum * 1.0001);
	}
	/* non-finite input is refused */
	x[17] = NAN;
	assert_int_equal(codec_encode(ring, &p, x, 1.0f, &rng, NULL, NULL), -EINVAL);
	x[17] = INFINITY;
	assert_int_equal(codec_encode(ring, &p, x, 1.0f, &rng, NULL, NULL), -EINVAL);
}

static int64_t to_signed(uint32_t v, unsigned w)
{
	return v >= (1u << (w - 1)) ? (int64_t)v - ((int64_t)1 << w) : (int64_t)v;
}

/* k members at +clip and -clip: the exact ring never overflows. */
static void test_exact_sum_extremes(void **state)
{
	(void)state;
	for (uint16_t k = 1; k <= 16; k++) {
		for (uint8_t bits = 2; bits <= 12; bits += 5) {
			struct codec_params p;
			struct rng rng;
			uint32_t acc[3] = {0}, r[3];
			float x[3] = {100.0f, -100.0f, 0.25f}, y[3];

			one_segment(&p, k, 3, 1.0f, bits);
			assert_int_equal(p.seg[0].width, bits + codec_log2_ceil(k));
			rng_seed(&rng, k);
			for (uint16_t m = 0; m < k; m++) {
				assert_int_equal(codec_encode(r, &p, x, 1.0f, &rng, NULL, NULL), 0);
				codec_ring_add(acc, r, &p);
			}
			assert_int_equal(codec_decode_sum(y, NULL, &p, acc, k, NULL, NULL), 0);
			assert_true(fabsf(y[0] - 1.0f) < 1e-6f);
			assert_true(fabsf(y[1] + 1.0f) < 1e-6f);
			assert_true(fabsf(y[2] - 0.25f) <= p.seg[0].quantum);
			/* A sum of k claimed as fewer members is out of range. */
			if (k > 1)
				assert_int_equal(codec_decode_sum(y, NULL, &p, acc, 1, NULL, NULL),
				                 -ERANGE);
		}
	}
}

/* The decoded sum is exactly the integer sum of the members' levels. */
static void test_exact_sum_random(void **state)
{
	enum { N = 257, K = 7 };
	uint32_t lens[3] = {100, 150, 7};
	float clips[3] = {0.5f, 3.0f, 0.001f};
	struct codec_params p;
	struct rng rng;
	uint32_t acc[N] = {0}, r[N];
	int64_t isum[N] = {0};
	float x[N], y[N];

	(void)state;
	assert_int_equal(codec_params_init(&p, K, lens, clips, 3, 7), 0);
	rng_seed(&rng, 99);
	for (int m = 0; m < K; m++) {
		for (size_t i = 0; i < N; i++)
			x[i] = (float)(rng_uniform(&rng) * 8 - 4);
		assert_int_equal(codec_encode(r, &p, x, 1.0f, &rng, NULL, NULL), 0);
		for (size_t i = 0; i < N; i++) {
			unsigned w = p.seg[i < 100 ? 0 : i < 250 ? 1 : 2].width;
			isum[i] += to_signed(r[i], w);
		}
		codec_ring_add(acc, r, &p);
	}
	assert_int_equal(codec_decode_sum(y, NULL, &p, acc, K, NULL, NULL), 0);
	for (size_t i = 0; i < N; i++) {
		float q = p.seg[i < 100 ? 0 : i < 250 ? 1 : 2].quantum;
		assert_true(y[i] == (float)((double)isum[i] * q / K));
	}
	/* a corrupted sum beyond k * L is refused */
	acc[3] = 1u << (p.seg[0].width - 1);
	assert_int_equal(codec_decode_sum(y, NULL, &p, acc, K, NULL, NULL), -ERANGE);
}

static void test_weighted_average(void **state)
{
	enum { N = 64 };
	struct codec_params p;
	struct rng rng;
	uint32_t acc[N + 1] = {0}, r[N + 1];
	const float rho[3] = {0.5f, 2.0f, 1.25f}, val[3] = {0.1f, -0.2f, 0.4f};
	float x[N], y[N], rsum = 0, used;
	double num = 0, den = 0;

	(void)state;
	one_segment(&p, 3, N, 4.0f, 16);
	assert_int_equal(codec_params_set_weight(&p, 12, 1.0f / 128), 0);
	assert_int_equal(codec_ring_len(&p), N + 1);
	rng_seed(&rng, 5);
	for (int m = 0; m < 3; m++) {
		for (size_t i = 0; i < N; i++)
			x[i] = val[m];
		assert_int_equal(codec_encode(r, &p, x, rho[m], &rng, NULL, &used), 0);
		assert_true(used == rho[m]); /* representable exactly */
		num += (double)rho[m] * val[m];
		den += rho[m];
		codec_ring_add(acc, r, &p);
	}
	assert_int_equal(codec_decode_sum(y, &rsum, &p, acc, 3, NULL, NULL), 0);
	assert_true(rsum == 3.75f);
	for (size_t i = 0; i < N; i++)
		assert_true(fabs((double)y[i] - num / den) < 3 * (double)p.seg[0].quantum);
	/* rho out of range, negative, NaN */
	assert_int_equal(codec_encode(r, &p, x, 1000.0f, &rng, NULL, NULL), -EINVAL);
	assert_int_equal(codec_encode(r, &p, x, -1.0f, &rng, NULL, NULL), -EINVAL);
	assert_int_equal(codec_encode(r, &p, x, NAN, &rng, NULL, NULL), -EINVAL);
	/* zero total weight */
	memset(acc, 0, sizeof(acc));
	assert_int_equal(codec_decode_sum(y, NULL, &p, acc, 3, NULL, NULL), -EDOM);
}

static void test_subsample(void **state)
{
	uint32_t lens[3] = {1000, 10, 1};
	float clips[3] = {1, 1, 1};
	struct codec_params p, q;
	uint32_t idx[2000], idx2[2000];
	size_t nv;

	(void)state;
	assert_int_equal(codec_params_init(&p, 4, lens, clips, 3, 8), 0);
	p.flags |= CODEC_F_SUBSAMPLE;
	p.keep_ppm = 100000; /* 10% */
	p.sample_seed = 1234;
	assert_int_equal(codec_params_check(&p), 0);
	nv = codec_ring_len(&p);
	assert_int_equal(nv, 100 + 1 + 1);
	codec_indices(idx, &p);
	codec_indices(idx2, &p);
	assert_memory_equal(idx, idx2, nv * sizeof(uint32_t));
	for (size_t i = 0; i < nv; i++) {
		if (i > 0)
			assert_true(idx[i] > idx[i - 1]);
	}
	assert_true(idx[99] < 1000 && idx[100] >= 1000 && idx[100] < 1010 && idx[101] == 1010);
	/* another seed, another subset */
	q = p;
	q.sample_seed = 1235;
	codec_indices(idx2, &q);
	assert_true(memcmp(idx, idx2, 100 * sizeof(uint32_t)) != 0);

	/* encode/decode touch exactly the kept coordinates */
	{
		float x[1011], y[1011];
		uint32_t ring[102];
		struct rng rng;
		size_t j = 0;

		rng_seed(&rng, 3);
		for (size_t i = 0; i < 1011; i++) {
			x[i] = 0.5f;
			y[i] = -7.0f;
		}
		assert_int_equal(codec_encode(ring, &p, x, 1.0f, &rng, NULL, NULL), 0);
		assert_int_equal(codec_decode_sum(y, NULL, &p, ring, 1, NULL, NULL), 0);
		for (size_t i = 0; i < 1011; i++) {
			if (j < nv && idx[j] == i) {
				assert_true(fabsf(y[i] - 0.5f) <= p.seg[0].quantum);
				j++;
			} else {
				assert_true(y[i] == -7.0f);
			}
		}
	}
}

/* Modular segments: a narrow ring, decoded against each member's reference. */
static void test_modular_reference(void **state)
{
	enum { N = 500, K = 4 };
	struct codec_params p;
	struct rng rng;
	uint32_t acc[N] = {0}, r[N];
	float base[N], x[N], y[N];
	struct codec_stats st = {0};

	(void)state;
	one_segment(&p, K, N, 1.0f, 12); /* L = 2047, quantum ~ 1/2047 */
	p.seg[0].mode = CODEC_SEG_MODULAR;
	p.seg[0].width = 6; /* sum known mod 64 levels */
	assert_int_equal(codec_params_check(&p), 0);
	rng_seed(&rng, 11);
	for (size_t i = 0; i < N; i++)
		base[i] = (float)(rng_uniform(&rng) * 1.6 - 0.8);
	for (int m = 0; m < K; m++) {
		for (size_t i = 0; i < N; i++) /* members within +-3 quanta of base */
			x[i] = base[i] + (float)((rng_uniform(&rng) - 0.5) * 6 / 2047);
		assert_int_equal(codec_encode(r, &p, x, 1.0f, &rng, NULL, NULL), 0);
		codec_ring_add(acc, r, &p);
	}
	/* reference = base: the decoded average is within a few quanta of it */
	assert_int_equal(codec_decode_sum(y, NULL, &p, acc, K, base, &st), 0);
	for (size_t i = 0; i < N; i++)
		assert_true(fabs((double)y[i] - base[i]) < 3.0 / 2047 + (double)p.seg[0].quantum);
	assert_int_equal(st.near_wrap, 0);
	/* no reference: refused */
	assert_int_equal(codec_decode_sum(y, NULL, &p, acc, K, NULL, NULL), -EINVAL);
	/* a reference 40 quanta off wraps: decoded value is off by 64 levels / K */
	for (size_t i = 0; i < N; i++)
		x[i] = base[i] + 40.0f / 2047 * 1;
	assert_int_equal(codec_decode_sum(y, NULL, &p, acc, K, x, &st), 0);
	assert_true(st.near_wrap > 0);
}

static void test_params_bytes(void **state)
{
	uint32_t lens[3] = {100, 20, 3};
	float clips[3] = {1.0f, 0.1f, 8.0f};
	struct codec_params p, q;
	uint8_t buf[CODEC_PARAMS_MAX_BYTES];
	size_t len;

	(void)state;
	assert_int_equal(codec_params_init(&p, 5, lens, clips, 3, 9), 0);
	assert_int_equal(codec_params_set_weight(&p, 16, 1.0f / 4096), 0);
	p.flags |= CODEC_F_SUBSAMPLE | CODEC_F_SHARED_DITHER;
	p.keep_ppm = 250000;
	p.sample_seed = 0x0102030405060708ull;
	p.dither_seed = 77;
	p.seg[1].mode = CODEC_SEG_MODULAR;
	p.seg[1].width = 4;
	assert_int_equal(codec_params_check(&p), 0);
	assert_int_equal(codec_params_encode(buf, sizeof(buf), &len, &p), 0);
	assert_int_equal(len, CODEC_PARAMS_HEADER_BYTES + 3 * CODEC_PARAMS_SEGMENT_BYTES);
	assert_int_equal(codec_params_decode(&q, buf, len), 0);
	assert_int_equal(q.nseg, 3);
	assert_int_equal(q.sample_seed, p.sample_seed);
	assert_true(q.seg[1].quantum == p.seg[1].quantum);
	assert_int_equal(q.seg[1].width, 4);
	assert_int_equal(q.flags, p.flags);
	assert_int_equal(codec_params_encode(buf, len - 1, &len, &p), -ENOBUFS);
	/* every truncation and every extension is refused */
	for (size_t l = 0; l < len; l++)
		assert_int_equal(codec_params_decode(&q, buf, l), -EINVAL);
	assert_int_equal(codec_params_decode(&q, buf, len + 1), -EINVAL);
	/* single-field corruptions */
	{
		const size_t offs[] = {0,      2,       4,       6,          8,  32,
		                       33,     34,      35,      36 + 3,     40, 44 + 8,
		                       44 + 9, 44 + 10, 44 + 11, 44 + 12 + 3};
		for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
			uint8_t b2[CODEC_PARAMS_MAX_BYTES];
			memcpy(b2, buf, len);
			b2[offs[i]] ^= 0x80;
			assert_int_equal(codec_params_decode(&q, b2, len), -EINVAL);
		}
	}
	/* an exact segment too narrow for k is refused */
	q = p;
	q.seg[0].width = (uint8_t)(q.seg[0].bits + 2); /* k = 5 needs +3 */
	assert_int_equal(codec_params_check(&q), -EINVAL);
	/* segments must tile the vector */
	q = p;
	q.seg[1].offset++;
	assert_int_equal(codec_params_check(&q), -EINVAL);
	q = p;
	q.dim++;
	assert_int_equal(codec_params_check(&q), -EINVAL);
}

/* Shared dither: members with equal x produce equal levels (public noise). */
static void test_shared_dither(void **state)
{
	enum { N = 300 };
	struct codec_params p;
	uint32_t a[N], b[N];
	float x[N];

	(void)state;
	one_segment(&p, 4, N, 1.0f, 8);
	p.flags |= CODEC_F_SHARED_DITHER;
	p.dither_seed = 9;
	for (size_t i = 0; i < N; i++)
		x[i] = (float)i / N - 0.5f;
	assert_int_equal(codec_encode(a, &p, x, 1.0f, NULL, NULL, NULL), 0);
	assert_int_equal(codec_encode(b, &p, x, 1.0f, NULL, NULL, NULL), 0);
	assert_memory_equal(a, b, sizeof(a));
	p.dither_seed = 10;
	assert_int_equal(codec_encode(b, &p, x, 1.0f, NULL, NULL, NULL), 0);
	assert_true(memcmp(a, b, sizeof(a)) != 0);
}

/*
 * The checksum catches a wrap that nothing else can see: a reference 50
 * levels off in a ring of 64 decodes to a plausible value 14 levels the other
 * way (not even "near" the wrap), which only the checksum refutes.
 */
static void test_checksum_catches_wrap(void **state)
{
	enum { N = 300, K = 4 };
	struct codec_params p;
	struct rng rng;
	uint32_t acc[N + 1 + CODEC_CHECK_LEN] = {0}, r[N + 1 + CODEC_CHECK_LEN];
	float base[N], x[N], y[N], far[N];
	uint8_t buf[CODEC_PARAMS_MAX_BYTES];
	struct codec_params back;
	size_t len;

	(void)state;
	one_segment(&p, K, N, 16.0f, 16);
	p.seg[0].mode = CODEC_SEG_MODULAR;
	p.seg[0].width = 6;
	p.seg[0].quantum = 1.0f / 64;
	assert_int_equal(codec_params_set_weight(&p, 12, 1.0f / 256), 0);
	p.flags |= CODEC_F_CHECK;
	p.dither_seed = 5;
	assert_int_equal(codec_params_check(&p), 0);
	/* layout: values, weight, two 32-bit checksum elements */
	assert_int_equal(codec_ring_len(&p), N + 1 + CODEC_CHECK_LEN);
	assert_int_equal(codec_ring_nseg(&p), 3);
	assert_int_equal(codec_packed_bytes(&p), (N * 6 + 14 + 64 + 7) / 8);
	assert_int_equal(codec_params_encode(buf, sizeof(buf), &len, &p), 0);
	assert_int_equal(codec_params_decode(&back, buf, len), 0);
	assert_int_equal(back.flags, p.flags);
	rng_seed(&rng, 3);
	for (size_t i = 0; i < N; i++)
		base[i] = (float)(rng_uniform(&rng) * 4 - 2);
	for (int m = 0; m < K; m++) {
		for (size_t i = 0; i < N; i++)
			x[i] = base[i] + (float)m / 256;
		assert_int_equal(codec_encode(r, &p, x, 1.0f, &rng, NULL, NULL), 0);
		codec_ring_add(acc, r, &p);
	}
	for (int t = 0; t < 2; t++) {
		struct codec_stats st;

		memset(&st, 0, sizeof(st));
		assert_int_equal(codec_decode_sum(y, NULL, &p, acc, K, base, &st), 0);
		assert_int_equal(st.check_failed, 0);
		assert_true(st.max_use[0] < 0.2f);
		assert_true(st.max_dev[0] < 0.02f);
		/* 50 levels of the sum off: K * dev / quantum = 50 */
		for (size_t i = 0; i < N; i++)
			far[i] = base[i] + 50.0f / 64 / K;
		memset(&st, 0, sizeof(st));
		assert_int_equal(codec_decode_sum(y, NULL, &p, acc, K, far, &st), -ERANGE);
		assert_int_equal(st.check_failed, 1);
		assert_int_equal(st.near_wrap, 0);
		/* a corrupt checksum element is caught too */
		acc[N + 1 + t] ^= 1u << 31;
		assert_int_equal(codec_decode_sum(y, NULL, &p, acc, K, base, NULL), -ERANGE);
		acc[N + 1 + t] ^= 1u << 31;
	}
	/* without the checksum the same wrap goes unnoticed */
	p.flags &= (uint16_t)~CODEC_F_CHECK;
	{
		uint32_t acc2[N + 1] = {0};
		rng_seed(&rng, 4);
		for (int m = 0; m < K; m++) {
			for (size_t i = 0; i < N; i++)
				x[i] = base[i] + (float)m / 256;
			assert_int_equal(codec_encode(r, &p, x, 1.0f, &rng, NULL, NULL), 0);
			codec_ring_add(acc2, r, &p);
		}
		assert_int_equal(codec_decode_sum(y, NULL, &p, acc2, K, far, NULL), 0);
	}
}

/*
 * Centred segments (a low-rank sketch): a ring narrower than the no-overflow
 * rule, read like an exact one. Members whose values cancel decode to the
 * same average as in the exact ring, masks included; a sum that leaves the
 * ring is refused; the params need the checksum and at most the rule's width.
 */
static void test_centered(void **state)
{
	enum { N = 400, K = 4, RL = N + CODEC_CHECK_LEN };
	struct codec_params ex, ce, q;
	struct rng rng, r1, r2;
	uint32_t acc_ex[RL] = {0}, acc_ce[RL] = {0}, r[RL], mask[RL];
	float base[N], x[N], y_ex[N], y_ce[N];
	struct codec_stats st = {0};

	(void)state;
	one_segment(&ex, K, N, 1.0f, 8); /* L = 127, width 10 */
	ex.flags |= CODEC_F_CHECK;
	ex.dither_seed = 21;
	ce = ex;
	ce.seg[0].mode = CODEC_SEG_CENTERED;
	ce.seg[0].width = 8;
	assert_int_equal(codec_params_check(&ce), 0);
	/* needs the checksum, and no more than the rule's width */
	q = ce;
	q.flags &= (uint16_t)~CODEC_F_CHECK;
	assert_int_equal(codec_params_check(&q), -EINVAL);
	q = ce;
	q.seg[0].width = 11;
	assert_int_equal(codec_params_check(&q), -EINVAL);
	q.seg[0].width = 10;
	assert_int_equal(codec_params_check(&q), 0);
	q.seg[0].mode = 3;
	assert_int_equal(codec_params_check(&q), -EINVAL);
	assert_int_equal(codec_packed_bytes(&ce), (N * 8 + 64 + 7) / 8);

	/* values up to 0.9 of the clip, with alternating signs: the sum cancels */
	rng_seed(&rng, 5);
	for (size_t i = 0; i < N; i++)
		base[i] = (float)((rng_uniform(&rng) * 2 - 1) * 0.9);
	rng_seed(&r1, 6);
	rng_seed(&r2, 6);
	for (int m = 0; m < K; m++) {
		for (size_t i = 0; i < N; i++)
			x[i] = (m % 2 ? -base[i] : base[i]) +
			       (float)((rng_uniform(&rng) - 0.5) * 0.05);
		assert_int_equal(codec_encode(r, &ex, x, 1.0f, &r1, NULL, NULL), 0);
		codec_ring_add(acc_ex, r, &ex);
		assert_int_equal(codec_encode(r, &ce, x, 1.0f, &r2, NULL, NULL), 0);
		/* a pairwise mask: member 0 adds it, member 1 takes it away */
		if (m < 2) {
			for (size_t i = 0; i < RL; i++) {
				uint32_t w = i < N ? 8 : 32;
				uint32_t mk = w == 32 ? 0xffffffffu : (1u << w) - 1;
				if (m == 0)
					mask[i] = (uint32_t)rng_next(&rng) & mk;
				r[i] = (m == 0 ? r[i] + mask[i] : r[i] - mask[i]) & mk;
			}
		}
		codec_ring_add(acc_ce, r, &ce);
	}
	assert_int_equal(codec_decode_sum(y_ex, NULL, &ex, acc_ex, K, NULL, NULL), 0);
	assert_int_equal(codec_decode_sum(y_ce, NULL, &ce, acc_ce, K, NULL, &st), 0);
	assert_memory_equal(y_ex, y_ce, sizeof(y_ex));
	assert_int_equal(st.check_failed, 0);
	assert_true(st.max_use[0] < 0.5f);

	/* the same signs everywhere: sums of about 4 x 100 levels leave a ring of 256 */
	memset(acc_ce, 0, sizeof(acc_ce));
	memset(&st, 0, sizeof(st));
	for (int m = 0; m < K; m++) {
		for (size_t i = 0; i < N; i++)
			x[i] = 0.8f;
		assert_int_equal(codec_encode(r, &ce, x, 1.0f, &r2, NULL, NULL), 0);
		codec_ring_add(acc_ce, r, &ce);
	}
	assert_int_equal(codec_decode_sum(y_ce, NULL, &ce, acc_ce, K, NULL, &st), -ERANGE);
	assert_int_equal(st.check_failed, 1);
	/* and the exact ring holds them */
	memset(acc_ex, 0, sizeof(acc_ex));
	for (int m = 0; m < K; m++) {
		assert_int_equal(codec_encode(r, &ex, x, 1.0f, &r1, NULL, NULL), 0);
		codec_ring_add(acc_ex, r, &ex);
	}
	assert_int_equal(codec_decode_sum(y_ex, NULL, &ex, acc_ex, K, NULL, NULL), 0);
	assert_true(fabsf(y_ex[0] - 0.8f) < 0.01f);
}

/* codec_encode_residual: the ring of codec_encode, and x - resid is the level. */
static void test_residual_known(void **state)
{
	enum { N = 200 };
	uint32_t lens[2] = {150, 50};
	float clips[2] = {2.0f, 8.0f};
	struct codec_params p;
	struct rng a, b;
	uint32_t r1[N + 3], r2[N + 3];
	float x[N], res[N], y[N], used1, used2;

	(void)state;
	assert_int_equal(codec_params_init(&p, 4, lens, clips, 2, 6), 0);
	assert_int_equal(codec_params_set_weight(&p, 12, 1.0f / 128), 0);
	rng_seed(&a, 77);
	for (size_t i = 0; i < N; i++)
		x[i] = (float)(rng_uniform(&a) * 2.0 - 1.0) * (i < 150 ? 0.9f : 5.0f);
	x[3] = 5.0f; /* clipped: only the rounding part is carried */
	for (size_t i = 0; i < N; i++)
		res[i] = NAN;
	rng_seed(&a, 9);
	rng_seed(&b, 9);
	assert_int_equal(codec_encode(r1, &p, x, 1.5f, &a, NULL, &used1), 0);
	assert_int_equal(codec_encode_residual(r2, res, &p, x, 1.5f, &b, NULL, &used2), 0);
	assert_memory_equal(r1, r2, codec_ring_len(&p) * sizeof(uint32_t));
	assert_true(used1 == used2 && used1 == 1.5f);
	/* one member's sum decodes to its own levels: x - resid */
	assert_int_equal(codec_decode_sum(y, NULL, &p, r1, 1, NULL, NULL), 0);
	for (size_t i = 0; i < N; i++) {
		double q = (double)p.seg[i < 150 ? 0 : 1].quantum / used1;
		assert_true(isfinite(res[i]));
		assert_true(fabs((double)res[i]) < q);
		if (i != 3)
			assert_true(fabs((double)x[i] - res[i] - y[i]) < 1e-5);
	}
	assert_true(fabs((double)y[3] - 2.0 / 1.5) < 1e-6); /* the clip */
	/* known answer: one level of 1/32 at rho 1, x = 0.3 -> 9 or 10 levels */
	{
		float c = 1.0f, one = 0.3f, e = 0;
		uint32_t len = 1, ring[1];
		struct codec_params p1;

		assert_int_equal(codec_params_init(&p1, 1, &len, &c, 1, 6), 0);
		assert_true(p1.seg[0].quantum == 1.0f / 31);
		p1.seg[0].quantum = 1.0f / 32;
		assert_int_equal(codec_encode_residual(ring, &e, &p1, &one, 1.0f, &a, NULL, NULL),
		                 0);
		assert_true(ring[0] == 9 || ring[0] == 10);
		assert_true(fabs((double)e - (0.3 - ring[0] / 32.0)) < 1e-7);
	}
	assert_int_equal(codec_encode_residual(r1, NULL, &p, x, 1.0f, &a, NULL, NULL), -EINVAL);
	x[7] = NAN;
	assert_int_equal(codec_encode_residual(r1, res, &p, x, 1.0f, &a, NULL, NULL), -EINVAL);
}

/*
 * Error feedback: K members average in the ring again and again with a
 * coarse quantum, and between rounds move apart by steps that cancel over
 * the group (local training that leaves the mean alone). With feedback each
 * sends x + e and keeps the residual, so sum(x) + sum(e) is what a round
 * preserves and the group's mean stays within one quantum of its start;
 * without it each round adds unbiased rounding noise to the mean, which
 * walks away (about 0.2 quantum per round per coordinate here: some
 * coordinate of 64 goes far past 2 quanta in 2,000 rounds; fixed seed).
 */
static double drift_after(bool feedback)
{
	enum { K = 4, N = 64, R = 2000 };
	float clip = 1.0f;
	uint32_t len = N;
	struct codec_params p;
	struct rng rng;
	static float x[K][N], e[K][N], in[N], res[N], avg[N];
	double mean0[N], worst = 0;
	uint32_t acc[N], ring[N];

	assert_int_equal(codec_params_init(&p, K, &len, &clip, 1, 5), 0); /* 15 levels */
	rng_seed(&rng, 2026);
	memset(e, 0, sizeof(e));
	for (size_t i = 0; i < N; i++) {
		mean0[i] = 0;
		for (int m = 0; m < K; m++) {
			x[m][i] = (float)(rng_uniform(&rng) - 0.5);
			mean0[i] += x[m][i] / K;
		}
	}
	for (int r = 0; r < R; r++) {
		memset(acc, 0, sizeof(acc));
		for (int m = 0; m < K; m++) {
			for (size_t i = 0; i < N; i++)
				in[i] = x[m][i] + (feedback ? e[m][i] : 0.0f);
			assert_int_equal(
			        codec_encode_residual(ring, res, &p, in, 1.0f, &rng, NULL, NULL),
			        0);
			if (feedback)
				memcpy(e[m], res, sizeof(res));
			codec_ring_add(acc, ring, &p);
		}
		assert_int_equal(codec_decode_sum(avg, NULL, &p, acc, K, NULL, NULL), 0);
		for (int m = 0; m < K; m++)
			memcpy(x[m], avg, sizeof(avg));
		if (r == R - 1)
			break;
		for (size_t i = 0; i < N; i++) {
			for (int m = 0; m < K; m += 2) {
				float d =
				        (float)((rng_uniform(&rng) - 0.5) * 0.6) * p.seg[0].quantum;
				x[m][i] += d;
				x[m + 1][i] -= d;
			}
		}
	}
	for (size_t i = 0; i < N; i++)
		worst = fmax(worst, fabs((double)x[0][i] - mean0[i]) / p.seg[0].quantum);
	return worst;
}

static void test_error_feedback_bounded(void **state)
{
	double with = drift_after(true), without = drift_after(false);

	(void)state;
	print_message("largest drift of the mean after 2000 rounds: %.2f quanta with feedback, "
	              "%.2f without\n",
	              with, without);
	assert_true(with < 1.0 + 1e-3);
	assert_true(without > 2.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_pack_roundtrip_all_widths),
	        cmocka_unit_test(test_pack_mixed_segments),
	        cmocka_unit_test(test_rounding_unbiased),
	        cmocka_unit_test(test_roundtrip_bound_and_clip),
	        cmocka_unit_test(test_exact_sum_extremes),
	        cmocka_unit_test(test_exact_sum_random),
	        cmocka_unit_test(test_weighted_average),
	        cmocka_unit_test(test_subsample),
	        cmocka_unit_test(test_modular_reference),
	        cmocka_unit_test(test_params_bytes),
	        cmocka_unit_test(test_shared_dither),
	        cmocka_unit_test(test_checksum_catches_wrap),
	        cmocka_unit_test(test_centered),
	        cmocka_unit_test(test_residual_known),
	        cmocka_unit_test(test_error_feedback_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
