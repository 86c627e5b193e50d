/*
 * identity.h: a site's long-term identity.
 *
 * One 32-byte secret seed is the whole private key. From it libsodium derives
 * an Ed25519 signing keypair (crypto_sign_seed_keypair), and from that the
 * X25519 key-agreement keypair (crypto_sign_ed25519_{pk,sk}_to_curve25519).
 * The public key a site hands to its peers is the 32-byte Ed25519 public
 * key in base64; a peer derives the X25519 public key from it. So one line
 * pins a peer for both signatures and key agreement.
 *
 * The key file holds the seed as one base64 line (44 characters), mode 0600.
 * Secrets live in sodium_malloc'd memory (guard pages, wiped on free) and
 * never leave this module except as the base64 line written by keygen.
 * Not here: per-round ephemeral keys and sealing (see seal.h).
 */
#ifndef SOTTO_CRYPTO_IDENTITY_H
#define SOTTO_CRYPTO_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define IDENTITY_SEED_BYTES   32
#define IDENTITY_PUBLIC_BYTES 32
/* base64 (original variant, padded) of 32 bytes: 44 chars + NUL. */
#define IDENTITY_B64_BYTES 45

struct identity {
	uint8_t sign_pk[32]; /* Ed25519 public key: the site's public identity */
	uint8_t sign_sk[64]; /* Ed25519 secret key (seed || public key) */
	uint8_t dh_pk[32];   /* X25519 public key, derived from sign_pk */
	uint8_t dh_sk[32];   /* X25519 secret key, derived from sign_sk */
};

/*
 * Errors specific to loading a key file, beyond -errno values (values and
 * messages in util/err.h):
 *   IDENTITY_EMODE    group or others can access the file
 *   IDENTITY_EFORMAT  not exactly one base64 key line
 */

/* Makes a fresh identity from the system CSPRNG. NULL on allocation failure. */
struct identity *identity_generate(void) __attribute__((warn_unused_result));
/* Derives the identity of a 32-byte seed. NULL on allocation failure. */
struct identity *identity_from_seed(const uint8_t seed[IDENTITY_SEED_BYTES])
        __attribute__((warn_unused_result));
/* Wipes and frees; accepts NULL. */
void identity_free(struct identity *id);

/*
 * Parses a private key line (base64 seed, optional trailing newline and
 * spaces). Returns 0 and *out, or IDENTITY_EFORMAT. Never logs the input.
 */
int identity_decode_private(struct identity **out, const char *text, size_t len)
        __attribute__((warn_unused_result));
/* Writes the base64 seed line (no newline) into out. */
void identity_encode_private(char out[IDENTITY_B64_BYTES], const struct identity *id);

/*
 * Loads a key file: it must be a regular file that only its owner can
 * access (mode & 077 == 0), else IDENTITY_EMODE, owned by the effective
 * user or root, else IDENTITY_EOWNER; a FIFO or device is IDENTITY_EFORMAT
 * (refused without blocking); unreadable gives -errno. A symbolic link is
 * followed and the file it leads to is checked.
 */
int identity_load_file(struct identity **out, const char *path) __attribute__((warn_unused_result));

/* Public keys: base64 of the 32-byte Ed25519 public key. */
void identity_public_encode(char out[IDENTITY_B64_BYTES], const uint8_t pk[IDENTITY_PUBLIC_BYTES]);
/* Strict: exactly 44 base64 characters decoding to 32 bytes. 0 or -EINVAL. */
int identity_public_decode(uint8_t pk[IDENTITY_PUBLIC_BYTES], const char *text)
        __attribute__((warn_unused_result));
/* Whether pk is a valid Ed25519 point usable as a peer key. */
bool identity_public_valid(const uint8_t pk[IDENTITY_PUBLIC_BYTES]);
/* X25519 public key of a peer's Ed25519 public key. 0 or -EINVAL. */
int identity_public_to_dh(uint8_t dh_pk[32], const uint8_t pk[IDENTITY_PUBLIC_BYTES])
        __attribute__((warn_unused_result));

#endif
