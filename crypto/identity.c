/*
 * identity.c: long-term keys from one seed, and the key file format.
 *
 * Constant-time base64 from libsodium; no secret is ever passed to a
 * formatting function or a log call.
 */
#include "crypto/identity.h"

#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int identity_sodium_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

struct identity *identity_from_seed(const uint8_t seed[IDENTITY_SEED_BYTES])
{
	struct identity *id;

	if (identity_sodium_init() != 0)
		return NULL;
	id = sodium_malloc(sizeof(*id));
	if (id == NULL)
		return NULL;
	if (crypto_sign_seed_keypair(id->sign_pk, id->sign_sk, seed) != 0 ||
	    crypto_sign_ed25519_pk_to_curve25519(id->dh_pk, id->sign_pk) != 0 ||
	    crypto_sign_ed25519_sk_to_curve25519(id->dh_sk, id->sign_sk) != 0) {
		sodium_free(id);
		return NULL;
	}
	return id;
}

struct identity *identity_generate(void)
{
	uint8_t seed[IDENTITY_SEED_BYTES];
	struct identity *id;

	if (identity_sodium_init() != 0)
		return NULL;
	randombytes_buf(seed, sizeof(seed));
	id = identity_from_seed(seed);
	sodium_memzero(seed, sizeof(seed));
	return id;
}

void identity_free(struct identity *id)
{
	if (id != NULL)
		sodium_free(id); /* sodium_free wipes before unmapping */
}

/* Strict base64 of exactly 32 bytes: 44 chars, original padded variant. */
static int b64_decode32(uint8_t out[32], const char *text, size_t len)
{
	size_t bin_len = 0;
	const char *end = NULL;

	if (len != IDENTITY_B64_BYTES - 1)
		return -EINVAL;
	if (sodium_base642bin(out, 32, text, len, NULL, &bin_len, &end,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    bin_len != 32 || end != text + len)
		return -EINVAL;
	return 0;
}

int identity_decode_private(struct identity **out, const char *text, size_t len)
{
	uint8_t seed[IDENTITY_SEED_BYTES];
	struct identity *id;

	if (identity_sodium_init() != 0)
		return -ENOMEM;
	/* Accept trailing whitespace (the newline keygen writes), nothing else. */
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ' ||
	                   text[len - 1] == '\t'))
		len--;
	if (b64_decode32(seed, text, len) != 0) {
		sodium_memzero(seed, sizeof(seed));
		return IDENTITY_EFORMAT;
	}
	id = identity_from_seed(seed);
	sodium_memzero(seed, sizeof(seed));
	if (id == NULL)
		return -ENOMEM;
	*out = id;
	return 0;
}

void identity_encode_private(char out[IDENTITY_B64_BYTES], const struct identity *id)
{
	/* The Ed25519 secret key is seed || public key: the seed is its head. */
	sodium_bin2base64(out, IDENTITY_B64_BYTES, id->sign_sk, IDENTITY_SEED_BYTES,
	                  sodium_base64_VARIANT_ORIGINAL);
}

int identity_load_file(struct identity **out, const char *path)
{
	char buf[128];
	struct stat st;
	ssize_t n;
	size_t have = 0;
	int fd, rc;

	/*
	 * A symbolic link is followed (a Kubernetes secret is mounted as one);
	 * what is checked is the file actually opened, through its descriptor,
	 * so swapping the link afterwards changes nothing: a regular file (a
	 * FIFO is refused without blocking), owned by this user or root, that
	 * group and others cannot access.
	 */
	fd = file_open_regular(path, O_RDONLY);
	if (fd == FILE_ENOTREG)
		return IDENTITY_EFORMAT;
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		rc = IDENTITY_EMODE;
		goto out;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		rc = IDENTITY_EOWNER;
		goto out;
	}
	/* A key line is 44 chars; anything past sizeof(buf) is malformed. */
	while (have < sizeof(buf)) {
		n = read(fd, buf + have, sizeof(buf) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	if (have == sizeof(buf)) {
		rc = IDENTITY_EFORMAT;
		goto out;
	}
	rc = identity_decode_private(out, buf, have);
out:
	sodium_memzero(buf, sizeof(buf));
	close(fd);
	return rc;
}

void identity_public_encode(char out[IDENTITY_B64_BYTES], const uint8_t pk[IDENTITY_PUBLIC_BYTES])
{
	sodium_bin2base64(out, IDENTITY_B64_BYTES, pk, IDENTITY_PUBLIC_BYTES,
	                  sodium_base64_VARIANT_ORIGINAL);
}

int identity_public_decode(uint8_t pk[IDENTITY_PUBLIC_BYTES], const char *text)
{
	if (identity_sodium_init() != 0)
		return -ENOMEM;
	return b64_decode32(pk, text, strlen(text));
}

bool identity_public_valid(const uint8_t pk[IDENTITY_PUBLIC_BYTES])
{
	uint8_t dh[32];

	/* Conversion fails for small-order and non-canonical points. */
	return identity_public_to_dh(dh, pk) == 0;
}

int identity_public_to_dh(uint8_t dh_pk[32], const uint8_t pk[IDENTITY_PUBLIC_BYTES])
{
	if (identity_sodium_init() != 0)
		return -ENOMEM;
	if (crypto_sign_ed25519_pk_to_curve25519(dh_pk, pk) != 0)
		return -EINVAL;
	return 0;
}
