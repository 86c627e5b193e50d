/*
 * npz.c: see npz.h. The archive is assembled as a list of parts (headers
 * built here, tensor data borrowed) and written in one atomic replace.
 */
#include "learn/npz.h"

#include "util/file.h"
#include "util/util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define LOCAL_BYTES   30 /* local file header without the name */
#define CENTRAL_BYTES 46 /* central directory header without the name */
#define END_BYTES     22
#define NPY_HEADER    256    /* room for one .npy header (magic + dict, padded) */
#define DOS_DATE      0x0021 /* 1980-01-01 */

/* The values are written as they are in memory, labelled '<f4'. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npz.c writes float32 in host order as little-endian '<f4': port it for this host"
#endif

struct member {
	char name[NPZ_MAX_NAME + 5]; /* NAME.npy */
	uint8_t local[LOCAL_BYTES + NPZ_MAX_NAME + 4];
	uint8_t npy[NPY_HEADER];
	size_t local_len, npy_len, data_len;
	uint32_t crc, offset;
};

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NPZ_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* The .npy header of e into m->npy; 0 or -EINVAL. */
static int npy_header(struct member *m, const struct npz_entry *e)
{
	char dict[NPY_HEADER];
	int n;
	size_t total;

	if (e->ndim == 1)
		n = snprintf(dict, sizeof(dict),
		             "{'descr': '<f4', 'fortran_order': False, "
		             "'shape': (%u,), }",
		             e->shape[0]);
	else {
		char dims[160] = "";
		size_t used = 0;
		for (uint32_t i = 0; i < e->ndim; i++)
			used += (size_t)snprintf(dims + used, sizeof(dims) - used, "%s%u",
			                         i > 0 ? ", " : "", e->shape[i]);
		n = snprintf(dict, sizeof(dict),
		             "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
	}
	if (n < 0 || (size_t)n + 10 + 1 > sizeof(m->npy))
		return -EINVAL;
	total = ((size_t)n + 10 + 1 + 63) / 64 * 64; /* magic, version, length, dict, '\n' */
	if (total > sizeof(m->npy))
		return -EINVAL;
	memcpy(m->npy, "\x93NUMPY\x01\x00", 8);
	m->npy[8] = (uint8_t)((total - 10) & 0xff);
	m->npy[9] = (uint8_t)((total - 10) >> 8);
	memcpy(m->npy + 10, dict, (size_t)n);
	memset(m->npy + 10 + n, ' ', total - 10 - (size_t)n - 1);
	m->npy[total - 1] = '\n';
	m->npy_len = total;
	return 0;
}

static void le16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int npz_write(const char *path, const struct npz_entry *e, size_t n, mode_t mode)
{
	struct member *m = NULL;
	const void **parts = NULL;
	size_t *lens = NULL, np = 0;
	uint8_t *central = NULL;
	size_t central_len = 0;
	uint64_t offset = 0;
	int rc = -EINVAL;

	if (n == 0 || n > NPZ_MAX_ENTRIES)
		return -EINVAL;
	m = calloc(n, sizeof(*m));
	parts = calloc(3 * n + 1, sizeof(*parts));
	lens = calloc(3 * n + 1, sizeof(*lens));
	central = calloc(n, CENTRAL_BYTES + NPZ_MAX_NAME + 4 + (size_t)END_BYTES);
	if (m == NULL || parts == NULL || lens == NULL || central == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct member *p = &m[i];
		uint64_t count = 1;
		size_t name_len;
		uLong crc;

		if (!name_ok(e[i].name) || e[i].ndim > NPZ_MAX_DIMS || e[i].data == NULL)
			goto out;
		for (uint32_t d = 0; d < e[i].ndim; d++) {
			count *= e[i].shape[d];
			if (count == 0 || count > UINT32_MAX / 4)
				goto out;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(e[i].name, e[j].name) == 0)
				goto out; /* numpy would keep one of the two */
		rc = npy_header(p, &e[i]);
		if (rc != 0)
			goto out;
		rc = -EINVAL;
		snprintf(p->name, sizeof(p->name), "%s.npy", e[i].name);
		name_len = strlen(p->name);
		p->data_len = (size_t)count * 4;
		crc = crc32(0L, Z_NULL, 0);
		crc = crc32(crc, p->npy, (uInt)p->npy_len);
		for (size_t off = 0; off < p->data_len; off += 1u << 30) {
			size_t len = MIN(p->data_len - off, (size_t)1 << 30);
			crc = crc32(crc, (const Bytef *)e[i].data + off, (uInt)len);
		}
		p->crc = (uint32_t)crc;
		if (offset + LOCAL_BYTES + name_len + p->npy_len + p->data_len > UINT32_MAX)
			goto out;
		p->offset = (uint32_t)offset;
		le32(p->local, 0x04034b50);
		le16(p->local + 4, 20); /* version needed: 2.0 */
		le16(p->local + 6, 0);  /* flags */
		le16(p->local + 8, 0);  /* stored */
		le16(p->local + 10, 0); /* time */
		le16(p->local + 12, DOS_DATE);
		le32(p->local + 14, p->crc);
		le32(p->local + 18, (uint32_t)(p->npy_len + p->data_len)); /* compressed */
		le32(p->local + 22, (uint32_t)(p->npy_len + p->data_len)); /* uncompressed */
		le16(p->local + 26, (uint32_t)name_len);
		le16(p->local + 28, 0); /* extra */
		memcpy(p->local + LOCAL_BYTES, p->name, name_len);
		p->local_len = LOCAL_BYTES + name_len;
		parts[np] = p->local;
		lens[np++] = p->local_len;
		parts[np] = p->npy;
		lens[np++] = p->npy_len;
		parts[np] = e[i].data;
		lens[np++] = p->data_len;
		offset += p->local_len + p->npy_len + p->data_len;
	}
	for (size_t i = 0; i < n; i++) {
		const struct member *p = &m[i];
		uint8_t *c = central + central_len;
		size_t name_len = strlen(p->name);
		le32(c, 0x02014b50);
		le16(c + 4, 20); /* made by: 2.0, MS-DOS attributes */
		le16(c + 6, 20);
		le16(c + 8, 0);
		le16(c + 10, 0);
		le16(c + 12, 0);
		le16(c + 14, DOS_DATE);
		le32(c + 16, p->crc);
		le32(c + 20, (uint32_t)(p->npy_len + p->data_len));
		le32(c + 24, (uint32_t)(p->npy_len + p->data_len));
		le16(c + 28, (uint32_t)name_len);
		le16(c + 30, 0); /* extra */
		le16(c + 32, 0); /* comment */
		le16(c + 34, 0); /* disk */
		le16(c + 36, 0); /* internal attributes */
		le32(c + 38, 0); /* external attributes */
		le32(c + 42, p->offset);
		memcpy(c + CENTRAL_BYTES, p->name, name_len);
		central_len += CENTRAL_BYTES + name_len;
	}
	if (offset + central_len + END_BYTES > UINT32_MAX)
		goto out;
	{
		uint8_t *end = central + central_len;
		le32(end, 0x06054b50);
		le16(end + 4, 0);
		le16(end + 6, 0);
		le16(end + 8, (uint32_t)n);
		le16(end + 10, (uint32_t)n);
		le32(end + 12, (uint32_t)central_len);
		le32(end + 16, (uint32_t)offset);
		le16(end + 20, 0);
		central_len += END_BYTES;
	}
	parts[np] = central;
	lens[np++] = central_len;
	rc = file_write_atomic_parts(path, parts, lens, np, mode);
out:
	free(m);
	free(parts);
	free(lens);
	free(central);
	return rc;
}
