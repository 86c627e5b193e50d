/*
 * crypto_identity_test.c: identity keys. Known answers (RFC 8032 test 1),
 * key-file round trip, malformed key files, and the X25519 derivation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "crypto/identity.h"
#include "util/file.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void hex(uint8_t *out, const char *h, size_t n)
{
	size_t len = 0;
	assert_int_equal(sodium_hex2bin(out, n, h, strlen(h), NULL, &len, NULL), 0);
	assert_int_equal(len, n);
}

/* RFC 8032, section 7.1, TEST 1: secret seed -> Ed25519 public key. */
static void test_known_answer(void **state)
{
	uint8_t seed[32], pk[32], dh[32];
	struct identity *id;
	(void)state;
	hex(seed, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", 32);
	hex(pk, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", 32);
	id = identity_from_seed(seed);
	assert_non_null(id);
	assert_memory_equal(id->sign_pk, pk, 32);
	/* The X25519 pair matches: public = scalarmult_base(secret). */
	assert_int_equal(crypto_scalarmult_base(dh, id->dh_sk), 0);
	assert_memory_equal(dh, id->dh_pk, 32);
	assert_int_equal(identity_public_to_dh(dh, pk), 0);
	assert_memory_equal(dh, id->dh_pk, 32);
	identity_free(id);
}

static void test_round_trip(void **state)
{
	char line[IDENTITY_B64_BYTES], pub[IDENTITY_B64_BYTES];
	uint8_t pk[32];
	struct identity *a, *b = NULL;
	(void)state;
	a = identity_generate();
	assert_non_null(a);
	identity_encode_private(line, a);
	assert_int_equal(strlen(line), 44);
	assert_int_equal(identity_decode_private(&b, line, strlen(line)), 0);
	assert_memory_equal(a->sign_sk, b->sign_sk, 64);
	assert_memory_equal(a->dh_sk, b->dh_sk, 32);
	identity_public_encode(pub, a->sign_pk);
	assert_int_equal(identity_public_decode(pk, pub), 0);
	assert_memory_equal(pk, a->sign_pk, 32);
	assert_true(identity_public_valid(pk));
	/* Two generated identities differ. */
	identity_free(b);
	b = identity_generate();
	assert_memory_not_equal(a->sign_pk, b->sign_pk, 32);
	identity_free(a);
	identity_free(b);
	identity_free(NULL);
}

static void test_malformed(void **state)
{
	struct identity *id = NULL;
	char line[IDENTITY_B64_BYTES + 8];
	static const char *const bad[] = {
	        "",
	        "\n",
	        "AAAA",
	        "not base64 at all, definitely not a key!!!!",
	        "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyufw==",   /* 31 bytes */
	        "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=x",  /* junk after */
	        "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A= x", /* inner space */
	        "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=",   /* url-safe */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(identity_decode_private(&id, bad[i], strlen(bad[i])),
		                 IDENTITY_EFORMAT);
		assert_null(id);
	}
	/* The valid line, with the newline keygen writes, is accepted. */
	snprintf(line, sizeof(line), "%s\n", "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=");
	assert_int_equal(identity_decode_private(&id, line, strlen(line)), 0);
	identity_free(id);
}

static void test_key_files(void **state)
{
	char dir[] = "/tmp/sotto-id-XXXXXX", path[64];
	static const char good[] = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=\n";
	struct identity *id = NULL;
	char big[300];
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/k", dir);
	assert_int_equal(file_write_atomic(path, good, strlen(good), 0600), 0);
	assert_int_equal(identity_load_file(&id, path), 0);
	identity_free(id);
	id = NULL;
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(identity_load_file(&id, path), IDENTITY_EMODE);
	assert_int_equal(chmod(path, 0604), 0);
	assert_int_equal(identity_load_file(&id, path), IDENTITY_EMODE);
	memset(big, 'A', sizeof(big));
	assert_int_equal(file_write_atomic(path, big, sizeof(big), 0600), 0);
	assert_int_equal(identity_load_file(&id, path), IDENTITY_EFORMAT);
	assert_int_equal(file_write_atomic(path, "", 0, 0600), 0);
	assert_int_equal(identity_load_file(&id, path), IDENTITY_EFORMAT);
	assert_int_equal(identity_load_file(&id, dir), IDENTITY_EFORMAT); /* a directory */
	unlink(path);
	assert_true(identity_load_file(&id, path) < 0);
	assert_null(id);
	rmdir(dir);
}

static void test_public_decode_strict(void **state)
{
	uint8_t pk[32], zero[32] = {0};
	char pub[IDENTITY_B64_BYTES];
	(void)state;
	assert_int_not_equal(identity_public_decode(pk, "short"), 0);
	assert_int_not_equal(identity_public_decode(pk, ""), 0);
	/* A small-order point is refused as a peer key. */
	identity_public_encode(pub, zero);
	assert_int_equal(identity_public_decode(pk, pub), 0);
	assert_false(identity_public_valid(pk));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_known_answer),
	        cmocka_unit_test(test_round_trip),
	        cmocka_unit_test(test_malformed),
	        cmocka_unit_test(test_key_files),
	        cmocka_unit_test(test_public_decode_strict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
