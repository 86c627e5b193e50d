/*
 * bytes.h: fixed-width integers (and float32) to and from bytes in a stated
 * byte order, so that files and wire formats mean the same on every host.
 * Little-endian is sotto's own formats (datasets, checkpoints, replay
 * state, codec parameters); big-endian is what others fixed (the sealed
 * frame header, msgpack).
 *
 * p need not be aligned; the caller has checked that the bytes exist.
 * Compilers turn each of these into one load or store (and a byte swap on
 * the other order). Not here: bounds checks, variable-length encodings, bulk
 * conversion of vectors (crypto/mask.c uses le64toh on whole lanes).
 */
#ifndef SOTTO_UTIL_BYTES_H
#define SOTTO_UTIL_BYTES_H

#include <stdint.h>
#include <string.h>

/* --- little-endian -------------------------------------------------------- */

static inline void bytes_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline uint16_t bytes_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline void bytes_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t bytes_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void bytes_put_le64(uint8_t *p, uint64_t v)
{
	bytes_put_le32(p, (uint32_t)v);
	bytes_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t bytes_get_le64(const uint8_t *p)
{
	return (uint64_t)bytes_get_le32(p) | (uint64_t)bytes_get_le32(p + 4) << 32;
}

/* An IEEE 754 binary32 as the little-endian u32 of its bits (NaNs kept). */
static inline void bytes_put_le_float(uint8_t *p, float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	bytes_put_le32(p, u);
}

static inline float bytes_get_le_float(const uint8_t *p)
{
	uint32_t u = bytes_get_le32(p);
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

/* --- big-endian ----------------------------------------------------------- */

static inline void bytes_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint16_t bytes_get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void bytes_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t bytes_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline void bytes_put_be64(uint8_t *p, uint64_t v)
{
	bytes_put_be32(p, (uint32_t)(v >> 32));
	bytes_put_be32(p + 4, (uint32_t)v);
}

static inline uint64_t bytes_get_be64(const uint8_t *p)
{
	return (uint64_t)bytes_get_be32(p) << 32 | (uint64_t)bytes_get_be32(p + 4);
}

#endif
