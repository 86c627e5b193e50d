/*
 * bytes.h: little-endian encoding of the integers and floats in learn/'s
 * file formats, so the files mean the same on every machine. Internal to
 * learn/; not a serialisation framework.
 */
#ifndef SOTTO_LEARN_BYTES_H
#define SOTTO_LEARN_BYTES_H

#include <stdint.h>
#include <string.h>

static inline void le_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void le_put64(uint8_t *p, uint64_t v)
{
	le_put32(p, (uint32_t)v);
	le_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t le_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t le_get64(const uint8_t *p)
{
	return (uint64_t)le_get32(p) | (uint64_t)le_get32(p + 4) << 32;
}

static inline void le_putf(uint8_t *p, float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	le_put32(p, u);
}

static inline float le_getf(const uint8_t *p)
{
	uint32_t u = le_get32(p);
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static inline void le_putd(uint8_t *p, double d)
{
	uint64_t u;
	memcpy(&u, &d, 8);
	le_put64(p, u);
}

static inline double le_getd(const uint8_t *p)
{
	uint64_t u = le_get64(p);
	double d;
	memcpy(&d, &u, 8);
	return d;
}

#endif
