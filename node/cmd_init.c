/*
 * cmd_init.c: `sotto init`, the multi-site set-up.
 *
 *     sotto init -o DIR [-t TEMPLATE] [--listen-any]
 *                [--degree D [--overlay-seed S]] NAME=HOST:PORT ...
 *
 * (NAME=ipc:///path also works, for clusters on one machine.)
 *
 * writes DIR/NAME/NAME.key (mode 0600) and DIR/NAME/NAME.conf for every
 * site, each config listing every other site as a [Peer], or with --degree
 * about D of them: the other members of its two circles (node/circles.h),
 * each [Peer] tagged with the circles it shares, so that a round is drawn
 * inside one circle and its members all know each other. DIR/NAME/ is what gets copied to that
 * site, next to the identical sotto binary. The template supplies the [Model], [Training] and
 * [Gossip] sections shared by all sites; "{site}" in it becomes each site's
 * name (e.g. for per-site dataset paths). Everything is checked before
 * anything is written: the arguments, the template as each site's config
 * will hold it, and that a group of GroupSize fits in every circle.
 * Not a deployment tool: it never copies anything anywhere.
 */
#include "config/config.h"
#include "crypto/identity.h"
#include "node/circles.h"
#include "node/cli.h"
#include "util/err.h"
#include "util/file.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INIT_MAX_SITES     1024
#define INIT_TEMPLATE_MAX  (64 * 1024)
#define INIT_GROUP_DEFAULT 4 /* [Gossip] GroupSize when the config does not set it */

struct init_args {
	const char *dir, *tpl_path;
	bool listen_any, has_degree;
	bool pubkeys;         /* NAME=HOST:PORT=PUBKEY: each site made its own key */
	int64_t degree;       /* 0: every site lists every other */
	int64_t overlay_seed; /* -1: drawn at random */
};

struct site {
	const char *name;
	char endpoint[160]; /* host:port as given */
	char port[8];
	char pub[IDENTITY_B64_BYTES];
};

static bool site_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return false;
	}
	return true;
}

/*
 * "NAME=HOST:PORT" (or, with --pubkeys, "NAME=HOST:PORT=PUBKEY") -> site;
 * the config checker validates HOST:PORT fully.
 */
static int site_parse(struct site *s, char *arg, bool pubkeys)
{
	char *eq = strchr(arg, '='), *colon;

	if (eq == NULL || !site_name_ok(arg, (size_t)(eq - arg))) {
		fprintf(stderr,
		        "sotto init: '%s' is not NAME=HOST:PORT (NAME: 1-32 of "
		        "A-Z a-z 0-9 . _ -)\n",
		        arg);
		return -EINVAL;
	}
	*eq = '\0';
	s->name = arg;
	if (pubkeys) {
		/* The key is the rest (base64 may end in '='); the endpoint has none. */
		char *k = strchr(eq + 1, '=');
		uint8_t pk[IDENTITY_PUBLIC_BYTES];
		if (k == NULL || identity_public_decode(pk, k + 1) != 0 ||
		    !identity_public_valid(pk) || strlen(k + 1) >= sizeof(s->pub)) {
			fprintf(stderr,
			        "sotto init: site %s: with --pubkeys, give NAME=HOST:PORT=PUBKEY, "
			        "PUBKEY from `sotto pubkey` at that site\n",
			        arg);
			return -EINVAL;
		}
		*k = '\0';
		snprintf(s->pub, sizeof(s->pub), "%s", k + 1);
	}
	if (strncmp(eq + 1, "ipc://", 6) == 0 && strlen(eq + 1) < sizeof(s->endpoint)) {
		snprintf(s->endpoint, sizeof(s->endpoint), "%s", eq + 1); /* a local socket */
		return 0;
	}
	colon = strrchr(eq + 1, ':');
	if (colon == NULL || strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof(s->port) ||
	    strlen(eq + 1) >= sizeof(s->endpoint)) {
		fprintf(stderr, "sotto init: site %s: '%s' is not HOST:PORT\n", arg, eq + 1);
		return -EINVAL;
	}
	{
		/* The other sites connect to it: `sotto check` refuses a wildcard there. */
		const char *h = strncmp(eq + 1, "tcp://", 6) == 0 ? eq + 7 : eq + 1;
		size_t hl = colon > h ? (size_t)(colon - h) : 0;
		if (colon < h) {
			fprintf(stderr, "sotto init: site %s: '%s' is not HOST:PORT\n", arg,
			        eq + 1);
			return -EINVAL;
		}
		if (hl == 0 || (hl == 1 && h[0] == '*') ||
		    (hl == 7 && strncmp(h, "0.0.0.0", 7) == 0) ||
		    (hl == 4 && strncmp(h, "[::]", 4) == 0)) {
			fprintf(stderr,
			        "sotto init: site %s: '%s': endpoint needs a host to connect to, "
			        "not a "
			        "wildcard (the other sites connect to it; --listen-any makes every "
			        "site listen on all addresses)\n",
			        arg, eq + 1);
			return -EINVAL;
		}
	}
	snprintf(s->endpoint, sizeof(s->endpoint), "%s", eq + 1);
	snprintf(s->port, sizeof(s->port), "%s", colon + 1);
	return 0;
}

/* Writes the template with {site} replaced by name. */
static void put_template(FILE *f, const char *tpl, const char *name)
{
	for (const char *p = tpl; *p != '\0';) {
		if (strncmp(p, "{site}", 6) == 0) {
			fputs(name, f);
			p += 6;
		} else {
			fputc(*p++, f);
		}
	}
}

static bool has_section(const char *tpl, const char *sec)
{
	size_t n = strlen(sec);

	for (const char *p = tpl; p != NULL && *p != '\0'; p = strchr(p, '\n')) {
		while (*p == '\n' || *p == ' ' || *p == '\t')
			p++;
		if (*p == '[' && strncasecmp(p + 1, sec, n) == 0 && p[n + 1] == ']')
			return true;
	}
	return false;
}

/* Whether the template's model is trained by its own process (Type = external): no Dataset. */
static bool tpl_external(const char *tpl)
{
	for (const char *p = tpl; p != NULL && *p != '\0'; p = strchr(p, '\n')) {
		const char *e;
		while (*p == '\n' || *p == ' ' || *p == '\t')
			p++;
		e = strchr(p, '\n');
		if (strncasecmp(p, "Type", 4) == 0 &&
		    strcspn(p, "=") < (size_t)(e ? e - p : 1 << 20)) {
			const char *v = strchr(p, '=') + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			if (strncasecmp(v, "external", 8) == 0)
				return true;
		}
	}
	return false;
}

/*
 * What every site's config shares: the template, then what it lacks of
 * [Model], [Training] and [Gossip]. group > 0: the GroupSize written when
 * the template has no [Gossip] (sites with at most 4 peers put all of them
 * in every round; the default 4 needs 3).
 */
static void put_shared(FILE *f, const char *tpl, const char *name, uint64_t seed, int group)
{
	if (tpl != NULL) {
		put_template(f, tpl, name);
		fputc('\n', f);
	}
	if (tpl == NULL || !has_section(tpl, "Model"))
		fprintf(f, "[Model]\nType = mlp\nSeed = %llu ; identical on every site\n\n",
		        (unsigned long long)seed);
	if ((tpl == NULL || !has_section(tpl, "Training")) && !tpl_external(tpl))
		fprintf(f, "[Training]\nDataset = train.sdat ; this site's data\n\n");
	if ((tpl == NULL || !has_section(tpl, "Gossip")) && group > 0)
		fprintf(f, "[Gossip]\nGroupSize = %d\n\n", group);
}

static int write_config(const struct init_args *a, const struct site *sites, size_t n, size_t me,
                        const struct circles *c, uint32_t *peer, const char *tpl, uint64_t seed,
                        int group)
{
	uint32_t np = circles_peers(c, (uint32_t)me, peer);
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s.conf", a->dir, sites[me].name, sites[me].name);
	f = fopen(path, "wx");
	if (f == NULL)
		return -errno;
	fprintf(f, "# %s: written by `sotto init` for a cluster of %zu sites.\n", sites[me].name,
	        n);
	if (a->degree != 0)
		fprintf(f,
		        "# Peers: %u of the %zu others, the sites of its circles c%u and c%u "
		        "(--degree %lld --overlay-seed %lld).\n",
		        np, n - 1, c->of[me * CIRCLES_PER_SITE], c->of[me * CIRCLES_PER_SITE + 1],
		        (long long)a->degree, (long long)a->overlay_seed);
	fprintf(f, "# Copy this directory to the site; check with: sotto check -c %s.conf\n\n",
	        sites[me].name);
	fprintf(f, "[Node]\nName = %s\nPrivateKeyFile = %s.key\n", sites[me].name, sites[me].name);
	if (a->listen_any && sites[me].port[0] != '\0')
		fprintf(f, "Listen = *:%s\n", sites[me].port);
	else
		fprintf(f, "Listen = %s\n", sites[me].endpoint);
	fprintf(f, "DataDir = state\n\n");
	put_shared(f, tpl, sites[me].name, seed, group);
	for (uint32_t k = 0; k < np; k++) {
		const struct site *s = &sites[peer[k]];
		uint32_t bits = circles_shared(c, (uint32_t)me, peer[k]);
		const char *sep = "Circles = ";

		fprintf(f, "[Peer]\nName = %s\nPublicKey = %s\nEndpoint = %s\n", s->name, s->pub,
		        s->endpoint);
		for (uint32_t j = 0; j < CIRCLES_PER_SITE; j++) {
			if (bits & (1u << j)) {
				fprintf(f, "%sc%u", sep, c->of[me * CIRCLES_PER_SITE + j]);
				sep = ",";
			}
		}
		fprintf(f, "%s\n", bits != 0 ? "\n" : "");
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		int e = errno;
		fclose(f);
		return -e;
	}
	return fclose(f) == 0 ? 0 : -errno;
}

static void group_too_big(const struct init_args *a, int k, size_t n, uint32_t peers)
{
	if (a->degree != 0)
		fprintf(stderr,
		        "sotto init: GroupSize %d needs circles of %d sites, but with --degree "
		        "%lld "
		        "the smallest circle holds %u: use --degree %d or more, or a smaller "
		        "GroupSize\n",
		        k, k, (long long)a->degree, peers + 1, 2 * (k - 1));
	else
		fprintf(stderr,
		        "sotto init: GroupSize %d needs %d peers per site, but %zu sites list only "
		        "%u each: use more sites or a smaller GroupSize\n",
		        k, k - 1, n, peers);
}

/*
 * Before anything is written: the shared part of each site's config must
 * parse on its own (the template's errors, with its line numbers), and its
 * GroupSize k must fit the peers every site lists (k - 1 <= peers), which
 * `sotto check` would otherwise refuse on every site.
 */
static int check_shared(const struct init_args *a, const struct site *sites, size_t n,
                        const char *tpl, uint64_t seed, uint32_t peers, int group)
{
	for (size_t i = 0; i < n; i++) {
		struct config cfg;
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		int r;

		if (f == NULL) {
			fprintf(stderr, "sotto init: %s\n", strerror(errno));
			return -ENOMEM;
		}
		put_shared(f, tpl, sites[i].name, seed, group);
		if (fclose(f) != 0) {
			fprintf(stderr, "sotto init: %s\n", strerror(errno));
			free(text);
			return -ENOMEM;
		}
		r = config_load_virtual(&cfg, a->tpl_path != NULL ? a->tpl_path : "defaults", text);
		if (r != 0) {
			fprintf(stderr, "sotto init: the template gives site %s these errors:\n",
			        sites[i].name);
			config_errors_print(&cfg, stderr);
		} else if ((uint32_t)(cfg.gossip.group_size - 1) > peers) {
			group_too_big(a, cfg.gossip.group_size, n, peers);
			r = -EINVAL;
		}
		config_fini(&cfg);
		free(text);
		if (r != 0)
			return r;
	}
	return 0;
}

static void init_usage(void)
{
	fprintf(stderr,
	        "usage: sotto init -o DIR [-t TEMPLATE] [--listen-any]\n"
	        "                  [--degree D [--overlay-seed S]] NAME=HOST:PORT ...\n"
	        "       sotto init --pubkeys -o DIR [...] NAME=HOST:PORT=PUBKEY ...\n"
	        "  Writes DIR/NAME/NAME.key and DIR/NAME/NAME.conf for each site (at least 3).\n"
	        "  --pubkeys: each site made its own key (`sotto keygen NAME.key`) and sent\n"
	        "  `sotto pubkey`: init writes the configs only, no private key.\n"
	        "  TEMPLATE: [Model]/[Training]/[Gossip] sections shared by all sites;\n"
	        "  {site} in it is replaced by each site's name.\n"
	        "  --listen-any: listen on all addresses (*:PORT) instead of HOST:PORT.\n"
	        "  --degree D: each site lists D random peers (a connected random D-regular\n"
	        "  overlay; D >= 2), not every other site. --overlay-seed S (0..2^63-1)\n"
	        "  makes the same overlay again; by default it is drawn at random.\n");
}

/* "--degree D" and "--overlay-seed S": numbers here, checked against n later. */
static int parse_number(int64_t *out, const char *opt, const char *s)
{
	if (util_parse_i64(out, s, 0, INT64_MAX) != 0) {
		fprintf(stderr, "sotto init: %s wants a number in 0..2^63-1, not '%s'\n", opt, s);
		return -EINVAL;
	}
	return 0;
}

static int parse_site(struct site *sites, size_t n, char *arg, bool pubkeys)
{
	if (n >= INIT_MAX_SITES) {
		fprintf(stderr, "sotto init: at most %d sites\n", INIT_MAX_SITES);
		return -EINVAL;
	}
	if (site_parse(&sites[n], arg, pubkeys) != 0)
		return -EINVAL;
	for (size_t j = 0; j < n; j++) {
		if (strcmp(sites[j].name, sites[n].name) == 0 ||
		    strcmp(sites[j].endpoint, sites[n].endpoint) == 0 ||
		    (pubkeys && strcmp(sites[j].pub, sites[n].pub) == 0)) {
			fprintf(stderr, "sotto init: site %s repeats a name, endpoint or key\n",
			        sites[n].name);
			return -EINVAL;
		}
	}
	return 0;
}

static int parse_args(struct init_args *a, struct site *sites, size_t *n, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) /* a flag that changes how sites read */
		a->pubkeys = a->pubkeys || strcmp(argv[i], "--pubkeys") == 0;
	for (int i = 1; i < argc; i++) {
		int r = 0;

		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			a->dir = argv[++i];
		} else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
			a->tpl_path = argv[++i];
		} else if (strcmp(argv[i], "--listen-any") == 0) {
			a->listen_any = true;
		} else if (strcmp(argv[i], "--pubkeys") == 0) {
			continue; /* read above */
		} else if (strcmp(argv[i], "--degree") == 0 && i + 1 < argc) {
			r = parse_number(&a->degree, "--degree", argv[++i]);
			a->has_degree = true;
		} else if (strcmp(argv[i], "--overlay-seed") == 0 && i + 1 < argc) {
			r = parse_number(&a->overlay_seed, "--overlay-seed", argv[++i]);
		} else if (argv[i][0] == '-') {
			init_usage();
			return -EINVAL;
		} else {
			r = parse_site(sites, *n, argv[i], a->pubkeys);
			*n += r == 0;
		}
		if (r != 0)
			return r;
	}
	if (a->dir == NULL || *n == 0) {
		init_usage();
		return -EINVAL;
	}
	return 0;
}

/*
 * The degree against the number of sites. Below 4 is refused: a round has
 * k >= 3 members drawn from one circle, and a site is in two circles of
 * D / 2 + 1. n - 1 or more is every site (a note says so; degree becomes 0).
 */
static int check_degree(struct init_args *a, size_t n)
{
	if (!a->has_degree) {
		if (a->overlay_seed >= 0) {
			fprintf(stderr, "sotto init: --overlay-seed needs --degree\n");
			return -EINVAL;
		}
		return 0;
	}
	if (a->degree < 4 && (uint64_t)a->degree < n - 1) {
		fprintf(stderr,
		        "sotto init: --degree %lld: each site needs at least 4 peers (two "
		        "circles of 3: a secure round has k >= 3 members from one circle) "
		        "or every site; leave --degree out to list every site\n",
		        (long long)a->degree);
		return -EINVAL;
	}
	if (a->degree < 2) {
		fprintf(stderr,
		        "sotto init: --degree %lld: each site needs at least 2 peers (a "
		        "secure round has k >= 3 members); leave --degree out to list every "
		        "site\n",
		        (long long)a->degree);
		return -EINVAL;
	}
	if ((uint64_t)a->degree >= n - 1) {
		fprintf(stderr,
		        "sotto init: note: --degree %lld with %zu sites: every site "
		        "lists every other site\n",
		        (long long)a->degree, n);
		a->degree = 0;
	}
	return 0;
}

struct circles_summary {
	uint32_t min_peers, max_peers, min_size, max_size;
	uint64_t links;
};

static void summarize(struct circles_summary *sum, const struct circles *c, uint32_t *peer)
{
	memset(sum, 0, sizeof(*sum));
	sum->min_peers = sum->min_size = UINT32_MAX;
	for (uint32_t i = 0; i < c->n; i++) {
		uint32_t np = circles_peers(c, i, peer);
		sum->min_peers = MIN(sum->min_peers, np);
		sum->max_peers = MAX(sum->max_peers, np);
		sum->links += np;
	}
	sum->links /= 2;
	for (uint32_t k = 0; k < c->n_circles; k++) {
		sum->min_size = MIN(sum->min_size, c->start[k + 1] - c->start[k]);
		sum->max_size = MAX(sum->max_size, c->start[k + 1] - c->start[k]);
	}
	if (c->n_circles == 0) /* everyone: one circle of all */
		sum->min_size = sum->max_size = c->n;
}

/* The circles' summary (circles_make made them connected), for partial views. */
static void print_circles(const struct init_args *a, const struct circles_summary *sum,
                          const struct circles *c, size_t n)
{
	printf("overlay: %u circles of %u", c->n_circles, sum->min_size);
	if (sum->max_size != sum->min_size)
		printf("-%u", sum->max_size);
	printf(" sites, each site in %d; each lists %u", CIRCLES_PER_SITE, sum->min_peers);
	if (sum->max_peers != sum->min_peers)
		printf("-%u", sum->max_peers);
	printf(" of the %zu others, %llu links, connected; again with --degree %lld "
	       "--overlay-seed %lld\n",
	       n - 1, (unsigned long long)sum->links, (long long)a->degree,
	       (long long)a->overlay_seed);
}

/*
 * DIR/NAME/ and NAME.key for every site; every config needs every public
 * key. With --pubkeys (keys: false) the directories only: each site made
 * its own key, and only public keys came here.
 */
static int write_keys(const char *dir, struct site *sites, size_t n, bool keys)
{
	int r = file_mkdirs(dir);

	if (r != 0) {
		fprintf(stderr, "sotto init: cannot create %s: %s\n", dir, err_str(r));
		return r;
	}
	for (size_t i = 0; i < n; i++) {
		char path[1024];
		struct identity *id;

		snprintf(path, sizeof(path), "%s/%s", dir, sites[i].name);
		if (mkdir(path, 0700) != 0) {
			r = -errno;
			fprintf(stderr, "sotto init: cannot create %s: %s\n", path,
			        r == -EEXIST ? "it exists (init never overwrites a site)"
			                     : err_str(r));
			return r;
		}
		if (!keys)
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s.key", dir, sites[i].name, sites[i].name);
		id = identity_generate();
		if (id == NULL) {
			fprintf(stderr, "sotto init: cannot initialise libsodium\n");
			return -ENOMEM;
		}
		r = keys_write_new(path, id);
		identity_public_encode(sites[i].pub, id->sign_pk);
		identity_free(id);
		if (r != 0) {
			fprintf(stderr, "sotto init: cannot write %s: %s\n", path, err_str(r));
			return r;
		}
	}
	return 0;
}

static uint64_t random_seed(void)
{
	uint64_t seed;

	randombytes_buf(&seed, sizeof(seed));
	return seed >> 1; /* readable, and any value in 0..2^63 is fine */
}

int cmd_init(int argc, char **argv)
{
	struct init_args a = {.overlay_seed = -1};
	struct circles_summary sum;
	struct circles c = {0};
	uint32_t *peer = NULL;
	struct site *sites = NULL;
	uint8_t *tpl = NULL;
	size_t tpl_len = 0, n = 0;
	uint64_t seed;
	int rc = 2, r, group;

	sites = calloc(INIT_MAX_SITES, sizeof(*sites));
	if (sites == NULL)
		return 1;
	if (parse_args(&a, sites, &n, argc, argv) != 0)
		goto out;
	if (n < 3) {
		fprintf(stderr, "sotto init: need at least 3 sites: a secure round has k >= 3 "
		                "members (k = 2 would reveal each update to the other member)\n");
		goto out;
	}
	if (check_degree(&a, n) != 0)
		goto out;
	if (a.tpl_path != NULL) {
		r = file_read_all(a.tpl_path, INIT_TEMPLATE_MAX, &tpl, &tpl_len);
		if (r != 0) {
			fprintf(stderr, "sotto init: cannot read template %s: %s\n", a.tpl_path,
			        r == -EFBIG ? "larger than 64 KiB" : err_str(r));
			goto out;
		}
		if (has_section((char *)tpl, "Node") || has_section((char *)tpl, "Peer")) {
			fprintf(stderr, "sotto init: the template may not contain [Node] or "
			                "[Peer]; init writes those\n");
			goto out;
		}
	}
	if (a.degree != 0 && a.overlay_seed < 0)
		a.overlay_seed = (int64_t)random_seed();
	peer = calloc(n, sizeof(*peer));
	r = peer == NULL
	            ? -ENOMEM
	            : circles_make(&c, (uint32_t)n, (uint32_t)a.degree, (uint64_t)a.overlay_seed);
	if (r != 0) {
		fprintf(stderr,
		        "sotto init: cannot make circles of degree %lld for %zu sites: %s\n",
		        (long long)a.degree, n, err_str(r));
		rc = 1;
		goto out;
	}
	summarize(&sum, &c, peer);
	/* A round is drawn inside one circle: GroupSize fits the smallest one. */
	group = sum.min_size - 1 < INIT_GROUP_DEFAULT ? (int)sum.min_size : 0;
	seed = random_seed();
	if (check_shared(&a, sites, n, (const char *)tpl, seed, sum.min_size - 1, group) != 0)
		goto out;
	rc = 1;
	if (write_keys(a.dir, sites, n, !a.pubkeys) != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		r = write_config(&a, sites, n, i, &c, peer, (const char *)tpl, seed, group);
		if (r != 0) {
			fprintf(stderr, "sotto init: cannot write the config of %s: %s\n",
			        sites[i].name, err_str(r));
			goto out;
		}
		printf("%s/%s/%s.conf  %s  %s\n", a.dir, sites[i].name, sites[i].name,
		       sites[i].endpoint, sites[i].pub);
	}
	if (a.degree != 0)
		print_circles(&a, &sum, &c, n);
	if (a.pubkeys)
		printf("wrote %zu configs (no private keys: each site keeps its own); copy "
		       "%s/NAME/NAME.conf to site NAME, next to the NAME.key it made with `sotto "
		       "keygen`, and run there\n"
		       "  sotto check -c NAME.conf && sotto run -c NAME.conf\n",
		       n, a.dir);
	else
		printf("wrote %zu sites; copy each %s/NAME/ directory to its site and run\n"
		       "  sotto check -c NAME.conf && sotto run -c NAME.conf\n",
		       n, a.dir);
	rc = 0;
out:
	circles_free(&c);
	free(peer);
	free(tpl);
	free(sites);
	return rc;
}
