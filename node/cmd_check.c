/*
 * cmd_check.c: `sotto check -c FILE`, and the node-level config checks
 * that need crypto (shared with `sotto run`).
 */
#include "config/config.h"
#include "crypto/identity.h"
#include "node/cli.h"
#include "util/err.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *cli_config_arg(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc)
			return argv[i + 1];
	}
	return NULL;
}

int node_config_load(struct config *cfg, const char *path, struct identity **id_out)
{
	struct identity *id = NULL;
	int rc;

	*id_out = NULL;
	rc = config_load(cfg, path);
	if (rc != 0 && cfg->n_errors == 0)
		return rc;
	for (size_t i = 0; i < cfg->n_peers; i++) {
		struct config_peer *p = &cfg->peers[i];
		if (p->public_key[0] != '\0' && !identity_public_valid(p->public_key_bin))
			config_error_add(cfg, p->line_public_key, p->public_key,
			                 "PublicKey is not a valid Ed25519 public key");
	}
	/* The key file's mode and readability were checked by config_load(). */
	if (cfg->has_node && cfg->node.private_key_file[0] != '\0' &&
	    access(cfg->node.private_key_file, R_OK) == 0) {
		int r = identity_load_file(&id, cfg->node.private_key_file);
		if (r == IDENTITY_EFORMAT)
			config_error_add(cfg, cfg->node.line_private_key_file,
			                 cfg->node.private_key_file,
			                 "PrivateKeyFile is not a sotto private key (one base64 "
			                 "line from `sotto keygen`)");
		else if (r != 0 && r != IDENTITY_EMODE) /* EMODE: already reported */
			config_error_add(cfg, cfg->node.line_private_key_file,
			                 cfg->node.private_key_file,
			                 "cannot read PrivateKeyFile (%s)", err_str(r));
	}
	if (id != NULL) {
		for (size_t i = 0; i < cfg->n_peers; i++) {
			struct config_peer *p = &cfg->peers[i];
			if (p->public_key[0] != '\0' &&
			    sodium_memcmp(p->public_key_bin, id->sign_pk, 32) == 0)
				config_error_add(cfg, p->line_public_key, p->public_key,
				                 "peer '%s' has this node's own public key",
				                 p->name);
		}
	}
	if (cfg->n_errors > 0 || cfg->n_errors_dropped > 0) {
		identity_free(id);
		return -EINVAL;
	}
	*id_out = id;
	return 0;
}

static void print_keys(void)
{
	const struct config_key_doc *docs;
	size_t n = config_key_docs(&docs);

	for (size_t i = 0; i < n; i++)
		printf("[%s] %-15s %-9s %s%s\n", docs[i].section, docs[i].key,
		       docs[i].def != NULL ? docs[i].def : "-", docs[i].range,
		       docs[i].required ? " (required)" : "");
}

int cmd_check(int argc, char **argv)
{
	struct config cfg;
	struct identity *id = NULL;
	const char *path;
	int rc;

	if (argc == 2 && strcmp(argv[1], "--keys") == 0) {
		print_keys();
		return 0;
	}
	path = cli_config_arg(argc, argv);
	if (path == NULL || argc != 3) {
		fprintf(stderr, "usage: sotto check -c FILE\n       sotto check --keys\n");
		return 2;
	}
	rc = node_config_load(&cfg, path, &id);
	if (rc == 0) {
		printf("configuration OK\n");
	} else {
		config_errors_print(&cfg, stderr);
		fprintf(stderr, "%s: %zu error%s\n", path, cfg.n_errors + cfg.n_errors_dropped,
		        cfg.n_errors + cfg.n_errors_dropped == 1 ? "" : "s");
	}
	identity_free(id);
	config_fini(&cfg);
	return rc == 0 ? 0 : 2;
}
