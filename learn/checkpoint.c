/*
 * checkpoint.c: checkpoint encoding and strict decoding. The decoder checks
 * magic, version, length and CRC before it parses, then bounds every field
 * before it allocates. Not a general serialisation layer.
 */
#include "learn/checkpoint.h"

#include "learn/bytes.h"
#include "learn/learn.h"
#include "learn/train.h"
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

int checkpoint_save(const char *path, const struct train *t, const void *extra, size_t extra_len)
{
	const struct model *m = t->model;
	const struct model_spec *s = &m->spec;
	const struct optim_params *op = &t->optim.p;
	size_t nv = state_vectors(op->type);
	size_t len, n = m->n_params;
	uint8_t *buf, *p;
	const float *vecs[3] = {m->params, t->optim.m, t->optim.v};
	int rc;

	if (extra_len > CHECKPOINT_MAX_EXTRA)
		return -EFBIG;
	len = CHECKPOINT_HEADER_BYTES + nv * n * 4 + extra_len + 4;
	buf = malloc(len);
	if (buf == NULL)
		return -ENOMEM;
	memset(buf, 0, CHECKPOINT_HEADER_BYTES);
	memcpy(buf, CHECKPOINT_MAGIC, 8);
	le_put32(buf + 8, CHECKPOINT_VERSION);
	p = buf + 12;
	le_put32(p, (uint32_t)s->type);
	le_put32(p + 4, s->channels);
	le_put32(p + 8, s->height);
	le_put32(p + 12, s->width);
	le_put32(p + 16, s->classes);
	le_put32(p + 20, s->n_hidden);
	for (int i = 0; i < MODEL_MAX_HIDDEN; i++)
		le_put32(p + 24 + 4 * i, s->hidden[i]);
	le_put32(p + 56, s->conv[0]);
	le_put32(p + 60, s->conv[1]);
	p = buf + 76;
	le_put32(p, (uint32_t)op->type);
	le_putf(p + 4, op->lr);
	le_putf(p + 8, op->momentum);
	le_putf(p + 12, op->beta2);
	le_putf(p + 16, op->eps);
	le_putf(p + 20, op->weight_decay);
	le_put32(buf + 100, t->batch);
	le_put32(buf + 104, t->cursor);
	le_put64(buf + 108, t->data_seed);
	le_put64(buf + 116, t->epoch);
	le_put64(buf + 124, t->steps);
	le_put64(buf + 132, t->optim.t);
	le_put64(buf + 140, (uint64_t)n);
	le_put64(buf + 148, (uint64_t)extra_len);
	p = buf + CHECKPOINT_HEADER_BYTES;
	for (size_t v = 0; v < nv; v++)
		for (size_t i = 0; i < n; i++, p += 4)
			le_putf(p, vecs[v][i]);
	if (extra_len > 0)
		memcpy(p, extra, extra_len);
	p += extra_len;
	le_put32(p, crc(buf, len - 4));
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
	if (le_get32(buf + 8) != CHECKPOINT_VERSION)
		return LEARN_EVERSION;
	if (len < CHECKPOINT_HEADER_BYTES + 4)
		return LEARN_ETRUNC;

	memset(&s, 0, sizeof(s));
	p = buf + 12;
	if (le_get32(p) > MODEL_CNN)
		return LEARN_EBOUNDS;
	s.type = (enum model_type)le_get32(p);
	s.channels = le_get32(p + 4);
	s.height = le_get32(p + 8);
	s.width = le_get32(p + 12);
	s.classes = le_get32(p + 16);
	s.n_hidden = le_get32(p + 20);
	for (int i = 0; i < MODEL_MAX_HIDDEN; i++)
		s.hidden[i] = le_get32(p + 24 + 4 * i);
	s.conv[0] = le_get32(p + 56);
	s.conv[1] = le_get32(p + 60);
	p = buf + 76;
	memset(&op, 0, sizeof(op));
	if (le_get32(p) > OPTIM_ADAM)
		return LEARN_EBOUNDS;
	op.type = (enum optim_type)le_get32(p);
	op.lr = le_getf(p + 4);
	op.momentum = le_getf(p + 8);
	op.beta2 = le_getf(p + 12);
	op.eps = le_getf(p + 16);
	op.weight_decay = le_getf(p + 20);
	batch = le_get32(buf + 100);
	cursor = le_get32(buf + 104);
	n = le_get64(buf + 140);
	xlen = le_get64(buf + 148);

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
	if (le_get32(buf + len - 4) != crc(buf, len - 4))
		return LEARN_ECORRUPT;

	rc = train_alloc(&t, &s, 0, &op, batch, le_get64(buf + 108));
	if (rc != 0)
		goto out;
	t->cursor = cursor;
	t->epoch = le_get64(buf + 116);
	t->steps = le_get64(buf + 124);
	t->optim.t = le_get64(buf + 132);
	p = buf + CHECKPOINT_HEADER_BYTES;
	{
		float *vecs[3] = {t->model->params, t->optim.m, t->optim.v};
		for (size_t v = 0; v < nv; v++)
			for (size_t i = 0; i < n; i++, p += 4) {
				vecs[v][i] = le_getf(p);
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
