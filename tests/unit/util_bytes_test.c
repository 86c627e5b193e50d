/*
 * util_bytes_test.c: each helper of util/bytes.h against bytes written out
 * by hand (so a swapped order or a lost byte fails), at an odd address, and
 * writing exactly its width. Not here: the formats built on them (their
 * known-answer tests: crypto_seal_test, learn_checkpoint_test, interop).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/bytes.h"

#include <math.h>
#include <string.h>

static const uint8_t seq[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};

/* buf[1..1+w) must equal want and every other byte be untouched (0xee). */
static void expect(const uint8_t *buf, const uint8_t *want, size_t w)
{
	assert_memory_equal(buf + 1, want, w);
	assert_int_equal(buf[0], 0xee);
	for (size_t i = 1 + w; i < 12; i++)
		assert_int_equal(buf[i], 0xee);
}

static void test_little_endian(void **state)
{
	static const uint8_t le16[] = {0x23, 0x01};
	static const uint8_t le32[] = {0x67, 0x45, 0x23, 0x01};
	static const uint8_t le64[] = {0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01};
	uint8_t buf[12];

	(void)state;
	memset(buf, 0xee, sizeof(buf));
	bytes_put_le16(buf + 1, 0x0123);
	expect(buf, le16, 2);
	assert_int_equal(bytes_get_le16(buf + 1), 0x0123);

	memset(buf, 0xee, sizeof(buf));
	bytes_put_le32(buf + 1, 0x01234567u);
	expect(buf, le32, 4);
	assert_int_equal(bytes_get_le32(buf + 1), 0x01234567u);

	memset(buf, 0xee, sizeof(buf));
	bytes_put_le64(buf + 1, 0x0123456789abcdefull);
	expect(buf, le64, 8);
	assert_true(bytes_get_le64(buf + 1) == 0x0123456789abcdefull);

	assert_int_equal(bytes_get_le16(seq), 0x2301);
	assert_int_equal(bytes_get_le32(seq), 0x67452301u);
	assert_true(bytes_get_le64(seq) == 0xefcdab8967452301ull);
}

static void test_big_endian(void **state)
{
	uint8_t buf[12];

	(void)state;
	memset(buf, 0xee, sizeof(buf));
	bytes_put_be16(buf + 1, 0x0123);
	expect(buf, seq, 2);
	assert_int_equal(bytes_get_be16(buf + 1), 0x0123);

	memset(buf, 0xee, sizeof(buf));
	bytes_put_be32(buf + 1, 0x01234567u);
	expect(buf, seq, 4);
	assert_int_equal(bytes_get_be32(buf + 1), 0x01234567u);

	memset(buf, 0xee, sizeof(buf));
	bytes_put_be64(buf + 1, 0x0123456789abcdefull);
	expect(buf, seq, 8);
	assert_true(bytes_get_be64(buf + 1) == 0x0123456789abcdefull);

	/* The high bit of every byte survives (no sign extension). */
	memset(buf, 0xff, 8);
	assert_int_equal(bytes_get_be16(buf), 0xffff);
	assert_int_equal(bytes_get_be32(buf), 0xffffffffu);
	assert_true(bytes_get_be64(buf) == UINT64_MAX);
	assert_int_equal(bytes_get_le16(buf), 0xffff);
	assert_int_equal(bytes_get_le32(buf), 0xffffffffu);
	assert_true(bytes_get_le64(buf) == UINT64_MAX);
}

static void test_float(void **state)
{
	static const uint8_t one[] = {0x00, 0x00, 0x80, 0x3f};      /* 1.0f */
	static const uint8_t minus[] = {0x00, 0x00, 0x20, 0xc1};    /* -10.0f */
	static const uint8_t nan_bits[] = {0x01, 0x00, 0xc0, 0x7f}; /* a NaN payload */
	uint8_t buf[12];
	float f;

	(void)state;
	memset(buf, 0xee, sizeof(buf));
	bytes_put_le_float(buf + 1, 1.0f);
	expect(buf, one, 4);
	assert_true(bytes_get_le_float(buf + 1) == 1.0f);

	memset(buf, 0xee, sizeof(buf));
	bytes_put_le_float(buf + 1, -10.0f);
	expect(buf, minus, 4);
	assert_true(bytes_get_le_float(buf + 1) == -10.0f);

	/* Bits, not values: a NaN comes back with its payload. */
	f = bytes_get_le_float(nan_bits);
	assert_true(isnan(f));
	memset(buf, 0xee, sizeof(buf));
	bytes_put_le_float(buf + 1, f);
	expect(buf, nan_bits, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_little_endian),
	        cmocka_unit_test(test_big_endian),
	        cmocka_unit_test(test_float),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
