/*
 * checkpoint.c: checkpoint encoding and strict decoding. The decoder checks
 * magic, version, length and CRC before it parses, then bounds every field
 * before it allocates. Not a general serialisation layer.
 */
#include "learn/checkpoint.h"

#include "learn/learn.h"
#include "learn/train.h"
#include "util/bytes.h"
#include "util/file.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static uint32_t crc(const uint8_t *p, size_t n)
{
	uLong c = crc32(0L, Z_NULL, 0);

	while (n > 0) {
		uInt chunk = (uInt)MIN(n, (size_t)1 << 30);
		c = crc32(c, p, chunk);
		p += chunk;
		n -= chunk;
	}
	return (uint32_t)c;
}

static size_t state_vectors(enum optim_type type)
{
	return type == OPTIM_ADAM ? 3 : 2; /* params, m, [v] */
}

int checkpoint_encode(uint8_t **out, size_t *out_len, const struct train *t, const void *extra,
                      size_t extra_len)
{
	const struct model *m = t->model;
	const struct model_spec *s = &m->spec;
	const struct optim_params *op = &t->optim.p;
	size_t nv = state_vectors(op->type);
	size_t len, n = m->n_params;
	uint8_t *buf, *p;
	const float *vecs[3] = {m->params, t->optim.m, t->optim.v};

	if (extra_len > CHECKPOINT_MAX_EXTRA)
		return -EFBIG;
	len = CHECKPOINT_HEADER_BYTES + nv * n * 4 + extra_len + 4;
	buf = malloc(len);
	if (buf == NULL)
		return -ENOMEM;
	memset(buf, 0, CHECKPOINT_HEADER_BYTES);
	memcpy(buf, CHECKPOINT_MAGIC, 8);
	bytes_put_le32(buf + 8, CHECKPOINT_VERSION);
	p = buf + 12;
	bytes_put_le32(p, (uint32_t)s->type);
	bytes_put_le32(p + 4, s->channels);
	bytes_put_le32(p + 8, s->height);
	bytes_put_le32(p + 12, s->width);
	bytes_put_le32(p + 16, s->classes);
	bytes_put_le32(p + 20, s->n_hidden);
	for (int i = 0; i < MODEL_MAX_HIDDEN; i++)
		bytes_put_le32(p + 24 + 4 * i, s->hidden[i]);
	bytes_put_le32(p + 56, s->conv[0]);
	bytes_put_le32(p + 60, s->conv[1]);
	p = buf + 76;
	bytes_put_le32(p, (uint32_t)op->type);
	bytes_put_le_float(p + 4, op->lr);
	bytes_put_le_float(p + 8, op->momentum);
	bytes_put_le_float(p + 12, op->beta2);
	bytes_put_le_float(p + 16, op->eps);
	bytes_put_le_float(p + 20, op->weight_decay);
	bytes_put_le32(buf + 100, t->batch);
	bytes_put_le32(buf + 104, t->cursor);
	bytes_put_le64(buf + 108, t->data_seed);
	bytes_put_le64(buf + 116, t->epoch);
	bytes_put_le64(buf + 124, t->steps);
	bytes_put_le64(buf + 132, t->optim.t);
	bytes_put_le64(buf + 140, (uint64_t)n);
	bytes_put_le64(buf + 148, (uint64_t)extra_len);
	p = buf + CHECKPOINT_HEADER_BYTES;
	for (size_t v = 0; v < nv; v++)
		for (size_t i = 0; i < n; i++, p += 4)
			bytes_put_le_float(p, vecs[v][i]);
	if (extra_len > 0)
		memcpy(p, extra, extra_len);
	p += extra_len;
	bytes_put_le32(p, crc(buf, len - 4));
	*out = buf;
	*out_len = len;
	return 0;
}

int checkpoint_save(const char *path, const struct train *t, const void *extra, size_t extra_len)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = checkpoint_encode(&buf, &len, t, extra, extra_len);

	if (rc == 0)
		rc = file_write_atomic(path, buf, len, 0600);
	free(buf);
	return rc;
}

int checkpoint_load_mem(const void *data, size_t len, struct train **out, uint8_t **extra,
                        size_t *extra_len)
{
	const uint8_t *buf = data, *p;
	struct model_spec s;
	struct optim_params op;
	struct train *t = NULL;
	uint64_t n, xlen, need;
	uint32_t batch, cursor;
	uint8_t *x = NULL;
	size_t nv;
	int rc;

	*out = NULL;
	if (extra != NULL)
		*extra = NULL;
	if (extra_len != NULL)
		*extra_len = 0;
	if (len < 8 || memcmp(buf, CHECKPOINT_MAGIC, 8) != 0)
		return LEARN_EMAGIC;
	if (len < 12)
		return LEARN_ETRUNC;
	if (bytes_get_le32(buf + 8) != CHECKPOINT_VERSION)
		return LEARN_EVERSION;
	if (len < CHECKPOINT_HEADER_BYTES + 4)
		return LEARN_ETRUNC;

	memset(&s, 0, sizeof(s));
	p = buf + 12;
	if (bytes_get_le32(p) > MODEL_CNN)
		return LEARN_EBOUNDS;
	s.type = (enum model_type)bytes_get_le32(p);
	s.channels = bytes_get_le32(p + 4);
	s.height = bytes_get_le32(p + 8);
	s.width = bytes_get_le32(p + 12);
	s.classes = bytes_get_le32(p + 16);
	s.n_hidden = bytes_get_le32(p + 20);
	for (int i = 0; i < MODEL_MAX_HIDDEN; i++)
		s.hidden[i] = bytes_get_le32(p + 24 + 4 * i);
	s.conv[0] = bytes_get_le32(p + 56);
	s.conv[1] = bytes_get_le32(p + 60);
	p = buf + 76;
	memset(&op, 0, sizeof(op));
	if (bytes_get_le32(p) > OPTIM_ADAM)
		return LEARN_EBOUNDS;
	op.type = (enum optim_type)bytes_get_le32(p);
	op.lr = bytes_get_le_float(p + 4);
	op.momentum = bytes_get_le_float(p + 8);
	op.beta2 = bytes_get_le_float(p + 12);
	op.eps = bytes_get_le_float(p + 16);
	op.weight_decay = bytes_get_le_float(p + 20);
	batch = bytes_get_le32(buf + 100);
	cursor = bytes_get_le32(buf + 104);
	n = bytes_get_le64(buf + 140);
	xlen = bytes_get_le64(buf + 148);

	/* Shape checks first: they bound the sizes that the length check uses. */
	if (model_spec_check(&s) != 0 || optim_params_check(&op) != 0 || batch == 0 ||
	    batch > 65536 || xlen > CHECKPOINT_MAX_EXTRA)
		return LEARN_EBOUNDS;
	if (n != model_spec_n_params(&s))
		return LEARN_EMISMATCH;
	nv = state_vectors(op.type);
	need = CHECKPOINT_HEADER_BYTES + nv * n * 4 + xlen + 4;
	if (len < need)
		return LEARN_ETRUNC;
	if (len > need)
		return LEARN_ECORRUPT;
	if (bytes_get_le32(buf + len - 4) != crc(buf, len - 4))
		return LEARN_ECORRUPT;

	rc = train_alloc(&t, &s, 0, &op, batch, bytes_get_le64(buf + 108));
	if (rc != 0)
		goto out;
	t->cursor = cursor;
	t->epoch = bytes_get_le64(buf + 116);
	t->steps = bytes_get_le64(buf + 124);
	t->optim.t = bytes_get_le64(buf + 132);
	p = buf + CHECKPOINT_HEADER_BYTES;
	{
		float *vecs[3] = {t->model->params, t->optim.m, t->optim.v};
		for (size_t v = 0; v < nv; v++)
			for (size_t i = 0; i < n; i++, p += 4) {
				vecs[v][i] = bytes_get_le_float(p);
				if (!isfinite(vecs[v][i])) {
					rc = LEARN_EBOUNDS;
					goto out;
				}
			}
	}
	if (xlen > 0 && extra != NULL) {
		x = malloc(xlen);
		if (x == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		memcpy(x, p, xlen);
	}
	*out = t;
	t = NULL;
	if (extra != NULL)
		*extra = x;
	else
		free(x);
	x = NULL;
	if (extra_len != NULL)
		*extra_len = (size_t)xlen;
out:
	free(x);
	train_free(t);
	return rc;
}

int checkpoint_load(const char *path, struct train **out, uint8_t **extra, size_t *extra_len)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = file_read_all(path, CHECKPOINT_MAX_FILE, &buf, &len);
	if (rc != 0)
		return rc;
	rc = checkpoint_load_mem(buf, len, out, extra, extra_len);
	free(buf);
	return rc;
}
