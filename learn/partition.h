/*
 * partition.h: splitting one dataset into N node shards, the way federated
 * learning experiments do, deterministically from a seed:
 *
 *   IID          rows shuffled and dealt out evenly;
 *   Dirichlet(a) per class, shard proportions drawn from Dir(a, ..., a)
 *                (Hsu et al. 2019): small a = strong label skew;
 *   classes(c)   each shard holds c classes (assigned round-robin over a
 *                shuffled class list, so every class is held when N*c >=
 *                classes), each class split evenly among its holders.
 *
 * The result is row indices per shard; dataset_subset() makes the shard.
 * Not here: writing files (the CLI does), anything about the network.
 */
#ifndef SOTTO_LEARN_PARTITION_H
#define SOTTO_LEARN_PARTITION_H

#include <stdint.h>
#include <stdio.h>

struct dataset;

#define PARTITION_MAX_SHARDS 4096

enum partition_kind {
	PARTITION_IID = 0,
	PARTITION_DIRICHLET = 1,
	PARTITION_CLASSES = 2,
};

struct partition {
	uint32_t n_shards;
	uint32_t *start; /* (n_shards + 1) shard s is idx[start[s] .. start[s+1]) */
	uint32_t *idx;   /* row indices, each row at most once */
};

/*
 * Splits ds into n_shards (1..PARTITION_MAX_SHARDS). alpha (> 0) is used
 * by Dirichlet, classes_per_shard (1..classes) by classes. Every row is
 * assigned except, for classes, rows of classes no shard holds. Returns 0,
 * -EINVAL for bad arguments, -ENOMEM; partition_fini() after.
 */
int partition_make(struct partition *out, const struct dataset *ds, enum partition_kind kind,
                   uint32_t n_shards, double alpha, uint32_t classes_per_shard, uint64_t seed)
        __attribute__((warn_unused_result));
void partition_fini(struct partition *p);

/* "iid", "dirichlet", "classes" -> kind; -1 if unknown. */
int partition_kind_parse(const char *s);

/*
 * Prints one line per shard: its row count and label histogram, e.g.
 * "shard 3: 1000 rows | 0:101 1:98 ...".
 */
void partition_print(FILE *f, const struct partition *p, const struct dataset *ds);

#endif
