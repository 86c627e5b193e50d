/*
 * cmd_init.c: `sotto init`, the multi-site set-up.
 *
 *     sotto init -o DIR [-t TEMPLATE] [--listen-any] NAME=HOST:PORT ...
 *
 * (NAME=ipc:///path also works, for clusters on one machine.)
 *
 * writes DIR/NAME/NAME.key (mode 0600) and DIR/NAME/NAME.conf for every
 * site, each config listing every other site as a [Peer]. DIR/NAME/ is what
 * gets copied to that site, next to the identical sotto binary. The
 * template supplies the [Model], [Training] and [Gossip] sections shared by
 * all sites; "{site}" in it becomes each site's name (e.g. for per-site
 * dataset paths). Not a deployment tool: it never copies anything anywhere.
 */
#include "crypto/identity.h"
#include "node/cli.h"
#include "util/err.h"
#include "util/file.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INIT_MAX_SITES 1024
#define INIT_TEMPLATE_MAX (64 * 1024)

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

/* "NAME=HOST:PORT" -> site; the config checker validates HOST:PORT fully. */
static int site_parse(struct site *s, char *arg)
{
	char *eq = strchr(arg, '='), *colon;

	if (eq == NULL || !site_name_ok(arg, (size_t)(eq - arg))) {
		fprintf(stderr, "sotto init: '%s' is not NAME=HOST:PORT (NAME: 1-32 of "
				"A-Z a-z 0-9 . _ -)\n",
			arg);
		return -EINVAL;
	}
	*eq = '\0';
	s->name = arg;
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

static int write_config(const char *dir, const struct site *sites, size_t n, size_t me,
			const char *tpl, bool listen_any, uint64_t seed)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s.conf", dir, sites[me].name, sites[me].name);
	f = fopen(path, "wx");
	if (f == NULL)
		return -errno;
	fprintf(f, "# %s: written by `sotto init` for a cluster of %zu sites.\n", sites[me].name,
		n);
	fprintf(f, "# Copy this directory to the site; check with: sotto check -c %s.conf\n\n",
		sites[me].name);
	fprintf(f, "[Node]\nName = %s\nPrivateKeyFile = %s.key\n", sites[me].name, sites[me].name);
	if (listen_any && sites[me].port[0] != '\0')
		fprintf(f, "Listen = *:%s\n", sites[me].port);
	else
		fprintf(f, "Listen = %s\n", sites[me].endpoint);
	fprintf(f, "DataDir = state\n\n");
	if (tpl != NULL) {
		put_template(f, tpl, sites[me].name);
		fputc('\n', f);
	}
	if (tpl == NULL || !has_section(tpl, "Model"))
		fprintf(f, "[Model]\nType = mlp\nSeed = %llu ; identical on every site\n\n",
			(unsigned long long)seed);
	if (tpl == NULL || !has_section(tpl, "Training"))
		fprintf(f, "[Training]\nDataset = train.sdat ; this site's data\n\n");
	if ((tpl == NULL || !has_section(tpl, "Gossip")) && n < 5)
		fprintf(f, "[Gossip]\nGroupSize = %zu\n\n", n);
	for (size_t i = 0; i < n; i++) {
		if (i == me)
			continue;
		fprintf(f, "[Peer]\nName = %s\nPublicKey = %s\nEndpoint = %s\n\n", sites[i].name,
			sites[i].pub, sites[i].endpoint);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		int e = errno;
		fclose(f);
		return -e;
	}
	return fclose(f) == 0 ? 0 : -errno;
}

static void init_usage(void)
{
	fprintf(stderr,
		"usage: sotto init -o DIR [-t TEMPLATE] [--listen-any] NAME=HOST:PORT ...\n"
		"  Writes DIR/NAME/NAME.key and DIR/NAME/NAME.conf for each site (at least 3).\n"
		"  TEMPLATE: [Model]/[Training]/[Gossip] sections shared by all sites;\n"
		"  {site} in it is replaced by each site's name.\n"
		"  --listen-any: listen on all addresses (*:PORT) instead of HOST:PORT.\n");
}

int cmd_init(int argc, char **argv)
{
	const char *dir = NULL, *tpl_path = NULL;
	uint8_t *tpl = NULL;
	size_t tpl_len = 0, n = 0;
	struct site *sites = NULL;
	bool listen_any = false;
	uint64_t seed;
	int rc = 2;

	sites = calloc(INIT_MAX_SITES, sizeof(*sites));
	if (sites == NULL)
		return 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			dir = argv[++i];
		} else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
			tpl_path = argv[++i];
		} else if (strcmp(argv[i], "--listen-any") == 0) {
			listen_any = true;
		} else if (argv[i][0] == '-') {
			init_usage();
			goto out;
		} else {
			if (n >= INIT_MAX_SITES) {
				fprintf(stderr, "sotto init: at most %d sites\n", INIT_MAX_SITES);
				goto out;
			}
			if (site_parse(&sites[n], argv[i]) != 0)
				goto out;
			for (size_t j = 0; j < n; j++) {
				if (strcmp(sites[j].name, sites[n].name) == 0 ||
				    strcmp(sites[j].endpoint, sites[n].endpoint) == 0) {
					fprintf(stderr, "sotto init: site %s repeats a name or "
							"endpoint\n",
						sites[n].name);
					goto out;
				}
			}
			n++;
		}
	}
	if (dir == NULL || n == 0) {
		init_usage();
		goto out;
	}
	if (n < 3) {
		fprintf(stderr, "sotto init: need at least 3 sites: a secure round has k >= 3 "
				"members (k = 2 would reveal each update to the other member)\n");
		goto out;
	}
	if (tpl_path != NULL) {
		int r = file_read_all(tpl_path, INIT_TEMPLATE_MAX, &tpl, &tpl_len);
		if (r != 0) {
			fprintf(stderr, "sotto init: cannot read template %s: %s\n", tpl_path,
			        r == -EFBIG ? "larger than 64 KiB" : err_str(r));
			goto out;
		}
		if (has_section((char *)tpl, "Node") || has_section((char *)tpl, "Peer")) {
			fprintf(stderr, "sotto init: the template may not contain [Node] or "
					"[Peer]; init writes those\n");
			goto out;
		}
	}
	rc = 1;
	if (file_mkdirs(dir) != 0) {
		fprintf(stderr, "sotto init: cannot create %s: %s\n", dir, strerror(errno));
		goto out;
	}
	/* Keys first: every config needs every other site's public key. */
	for (size_t i = 0; i < n; i++) {
		char path[1024];
		struct identity *id;
		int r;

		snprintf(path, sizeof(path), "%s/%s", dir, sites[i].name);
		if (mkdir(path, 0700) != 0) {
			fprintf(stderr, "sotto init: cannot create %s: %s\n", path,
				errno == EEXIST ? "it exists (init never overwrites a site)"
						: strerror(errno));
			goto out;
		}
		snprintf(path, sizeof(path), "%s/%s/%s.key", dir, sites[i].name, sites[i].name);
		id = identity_generate();
		if (id == NULL) {
			fprintf(stderr, "sotto init: cannot initialise libsodium\n");
			goto out;
		}
		r = keys_write_new(path, id);
		identity_public_encode(sites[i].pub, id->sign_pk);
		identity_free(id);
		if (r != 0) {
			fprintf(stderr, "sotto init: cannot write %s: %s\n", path, err_str(r));
			goto out;
		}
	}
	randombytes_buf(&seed, sizeof(seed));
	seed >>= 1; /* readable, and any value in 0..2^63 is fine */
	for (size_t i = 0; i < n; i++) {
		int r = write_config(dir, sites, n, i, (const char *)tpl, listen_any, seed);
		if (r != 0) {
			fprintf(stderr, "sotto init: cannot write the config of %s: %s\n",
			        sites[i].name, err_str(r));
			goto out;
		}
		printf("%s/%s/%s.conf  %s  %s\n", dir, sites[i].name, sites[i].name,
		       sites[i].endpoint, sites[i].pub);
	}
	printf("wrote %zu sites; copy each %s/NAME/ directory to its site and run\n"
	       "  sotto check -c NAME.conf && sotto run -c NAME.conf\n",
	       n, dir);
	rc = 0;
out:
	free(tpl);
	free(sites);
	return rc;
}
