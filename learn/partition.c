/*
 * partition.c: IID, Dirichlet and c-classes-per-shard splits. All draws
 * come from one rng stream seeded by the caller, so the same (data, kind,
 * parameters, seed) gives the same shards on every machine.
 */
#include "learn/partition.h"

#include "learn/dataset.h"
#include "util/rng.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int partition_kind_parse(const char *s)
{
	if (strcmp(s, "iid") == 0)
		return PARTITION_IID;
	if (strcmp(s, "dirichlet") == 0)
		return PARTITION_DIRICHLET;
	if (strcmp(s, "classes") == 0)
		return PARTITION_CLASSES;
	return -1;
}

void partition_fini(struct partition *p)
{
	if (p == NULL)
		return;
	free(p->start);
	free(p->idx);
	p->start = NULL;
	p->idx = NULL;
}

/* Rows of each class, each list shuffled: by_class[c] = rows[cstart[c] .. cstart[c+1]). */
static int class_lists(const struct dataset *ds, struct rng *r, uint32_t **rows_out,
                       uint32_t **cstart_out)
{
	const uint32_t C = ds->classes;
	uint32_t *rows = malloc(((size_t)ds->rows + 1) * sizeof(*rows));
	uint32_t *cstart = calloc((size_t)C + 1, sizeof(*cstart));
	uint32_t *fill = calloc((size_t)C, sizeof(*fill));

	if (rows == NULL || cstart == NULL || fill == NULL) {
		free(rows);
		free(cstart);
		free(fill);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < ds->rows; i++)
		cstart[ds->labels[i] + 1]++;
	for (uint32_t c = 0; c < C; c++)
		cstart[c + 1] += cstart[c];
	for (uint32_t i = 0; i < ds->rows; i++) {
		uint32_t c = ds->labels[i];
		rows[cstart[c] + fill[c]++] = i;
	}
	for (uint32_t c = 0; c < C; c++)
		rng_shuffle_u32(r, rows + cstart[c], cstart[c + 1] - cstart[c]);
	free(fill);
	*rows_out = rows;
	*cstart_out = cstart;
	return 0;
}

/*
 * Builds p->start/p->idx from (shard of each assigned row): counting sort,
 * keeping the order rows were assigned in.
 */
static int gather(struct partition *p, const uint32_t *shard_of, const uint32_t *order, uint32_t n)
{
	uint32_t *fill;

	p->start = calloc((size_t)p->n_shards + 1, sizeof(*p->start));
	p->idx = malloc(((size_t)n + 1) * sizeof(*p->idx));
	fill = calloc(p->n_shards, sizeof(*fill));
	if (p->start == NULL || p->idx == NULL || fill == NULL) {
		free(fill);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++)
		p->start[shard_of[i] + 1]++;
	for (uint32_t s = 0; s < p->n_shards; s++)
		p->start[s + 1] += p->start[s];
	for (uint32_t i = 0; i < n; i++) {
		uint32_t s = shard_of[i];
		p->idx[p->start[s] + fill[s]++] = order[i];
	}
	free(fill);
	return 0;
}

int partition_make(struct partition *out, const struct dataset *ds, enum partition_kind kind,
                   uint32_t n_shards, double alpha, uint32_t classes_per_shard, uint64_t seed)
{
	const uint32_t C = ds->classes, N = n_shards;
	uint32_t *order = NULL, *shard_of = NULL, *rows = NULL, *cstart = NULL, *cls = NULL;
	double *prop = NULL;
	uint32_t n = 0;
	struct rng r;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (N < 1 || N > PARTITION_MAX_SHARDS)
		return -EINVAL;
	if (kind == PARTITION_DIRICHLET && !(alpha > 0 && isfinite(alpha)))
		return -EINVAL;
	if (kind == PARTITION_CLASSES && (classes_per_shard < 1 || classes_per_shard > C))
		return -EINVAL;
	if (kind != PARTITION_IID && kind != PARTITION_DIRICHLET && kind != PARTITION_CLASSES)
		return -EINVAL;
	out->n_shards = N;
	rng_seed(&r, seed);
	order = malloc(((size_t)ds->rows + 1) * sizeof(*order));
	shard_of = malloc(((size_t)ds->rows + 1) * sizeof(*shard_of));
	if (order == NULL || shard_of == NULL) {
		rc = -ENOMEM;
		goto out;
	}

	if (kind == PARTITION_IID) {
		for (uint32_t i = 0; i < ds->rows; i++)
			order[i] = i;
		rng_shuffle_u32(&r, order, ds->rows);
		for (uint32_t i = 0; i < ds->rows; i++)
			shard_of[i] = (uint32_t)((uint64_t)i * N / ds->rows);
		n = ds->rows;
	} else {
		rc = class_lists(ds, &r, &rows, &cstart);
		if (rc != 0)
			goto out;
		prop = malloc((size_t)N * sizeof(*prop));
		cls = malloc((size_t)C * sizeof(*cls));
		if (prop == NULL || cls == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		/* classes: shard s holds classes cls[(s*k + j) % C], j < k */
		for (uint32_t c = 0; c < C; c++)
			cls[c] = c;
		if (kind == PARTITION_CLASSES)
			rng_shuffle_u32(&r, cls, C);
		/*
		 * Dirichlet may leave a shard empty; redraw (a bounded number of
		 * times) until every shard has a row, as common FL code does.
		 */
		for (int attempt = 0; attempt < 100; attempt++) {
			bool empty = false;
			n = 0;
			for (uint32_t ci = 0; ci < C; ci++) {
				uint32_t c = cls[ci];
				uint32_t len = cstart[c + 1] - cstart[c], prev = 0;
				double sum = 0.0, cum = 0.0;
				for (uint32_t s = 0; s < N; s++) {
					if (kind == PARTITION_DIRICHLET) {
						prop[s] = rng_gamma(&r, alpha);
					} else {
						prop[s] = 0.0;
						for (uint32_t j = 0; j < classes_per_shard; j++) {
							if (((uint64_t)s * classes_per_shard + j) %
							            C ==
							    ci)
								prop[s] = 1.0;
						}
					}
					sum += prop[s];
				}
				if (!(sum > 0.0) && kind == PARTITION_CLASSES)
					continue; /* no shard holds this class: left out */
				if (!(sum > 0.0)) {
					/* all gammas underflowed: one shard takes the class */
					prop[rng_below(&r, N)] = 1.0;
					sum = 1.0;
				}
				for (uint32_t s = 0; s < N; s++) {
					uint32_t end;
					cum += prop[s];
					end = s + 1 == N ? len
					                 : (uint32_t)MIN(
					                           floor(len * (cum / sum) + 0.5),
					                           (double)len);
					if (end < prev)
						end = prev;
					for (uint32_t i = prev; i < end; i++) {
						order[n] = rows[cstart[c] + i];
						shard_of[n] = s;
						n++;
					}
					prev = end;
				}
			}
			if (kind != PARTITION_DIRICHLET || ds->rows < N)
				break;
			memset(prop, 0, (size_t)N * sizeof(*prop));
			for (uint32_t i = 0; i < n; i++)
				prop[shard_of[i]] = 1.0;
			for (uint32_t s = 0; s < N; s++)
				empty = empty || prop[s] == 0.0;
			if (!empty)
				break;
		}
	}
	rc = gather(out, shard_of, order, n);
out:
	free(order);
	free(shard_of);
	free(rows);
	free(cstart);
	free(prop);
	free(cls);
	if (rc != 0)
		partition_fini(out);
	return rc;
}

void partition_print(FILE *f, const struct partition *p, const struct dataset *ds)
{
	uint32_t *h = calloc(ds->classes, sizeof(*h));

	if (h == NULL)
		return;
	for (uint32_t s = 0; s < p->n_shards; s++) {
		memset(h, 0, ds->classes * sizeof(*h));
		for (uint32_t i = p->start[s]; i < p->start[s + 1]; i++)
			h[ds->labels[p->idx[i]]]++;
		fprintf(f, "shard %u: %u rows |", s, p->start[s + 1] - p->start[s]);
		for (uint32_t c = 0; c < ds->classes; c++)
			fprintf(f, " %u:%u", c, h[c]);
		fprintf(f, "\n");
	}
	free(h);
}
