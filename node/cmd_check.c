/*
 * cmd_check.c: `sotto check -c FILE`, and the node-level config checks
 * that need crypto (shared with `sotto run`).
 */
#include "config/config.h"
#include "crypto/identity.h"
#include "learn/dataset.h"
#include "learn/model.h"
#include "learn/optim.h"
#include "node/cli.h"
#include "node/privacy.h"
#include "node/standardize.h"
#include "util/err.h"

#include <errno.h>
#include <netdb.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
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

/* Host and port of a normalised tcp:// URL ("" host: the wildcard). 0, or -1 for ipc://. */
static int url_host_port(const char *url, char *host, size_t cap, char *port, size_t pcap)
{
	const char *hp, *colon;
	size_t hl;

	if (strncmp(url, "tcp://", 6) != 0)
		return -1;
	hp = url + 6;
	colon = strrchr(hp, ':');
	if (colon == NULL)
		return -1;
	hl = (size_t)(colon - hp);
	if (hp[0] == '[' && hl >= 2) { /* [v6] */
		hp++;
		hl -= 2;
	}
	snprintf(host, cap, "%.*s", (int)hl, hp);
	snprintf(port, pcap, "%s", colon + 1);
	return 0;
}

static bool host_wild(const char *h)
{
	return h[0] == '\0' || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0;
}

/*
 * Listen's host must be one of this host's addresses: bound here on an
 * ephemeral port (never Listen's own port, which a running node may hold).
 */
static void check_listen_local(struct config *cfg)
{
	char host[CONFIG_URL_MAX + 1], port[16];
	struct addrinfo hints, *res = NULL;
	bool local = false;
	int rc;

	if (url_host_port(cfg->node.listen, host, sizeof(host), port, sizeof(port)) != 0 ||
	    host_wild(host))
		return;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(host, "0", &hints, &res);
	if (rc != 0) {
		config_error_add(cfg, cfg->node.line_listen, cfg->node.listen,
		                 "cannot resolve Listen's host (%s)", gai_strerror(rc));
		return;
	}
	for (const struct addrinfo *a = res; a != NULL && !local; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		local = bind(fd, a->ai_addr, a->ai_addrlen) == 0 || errno != EADDRNOTAVAIL;
		close(fd);
	}
	freeaddrinfo(res);
	if (!local)
		config_error_add(cfg, cfg->node.line_listen, cfg->node.listen,
		                 "Listen's address is not one of this host's");
}

/* MetricsListen on Listen's port and address (or a wildcard covering it). */
static void check_metrics_listen(struct config *cfg)
{
	char h1[CONFIG_URL_MAX + 1], p1[16], h2[CONFIG_URL_MAX + 1], p2[16];

	if (cfg->node.metrics_listen[0] == '\0' ||
	    url_host_port(cfg->node.listen, h1, sizeof(h1), p1, sizeof(p1)) != 0 ||
	    url_host_port(cfg->node.metrics_listen, h2, sizeof(h2), p2, sizeof(p2)) != 0)
		return;
	if (strcmp(p1, p2) == 0 && (strcmp(h1, h2) == 0 || host_wild(h1) || host_wild(h2)))
		config_error_add(cfg, cfg->node.line_metrics_listen, cfg->node.metrics_listen,
		                 "MetricsListen is the same port as Listen");
}

int node_config_deep_check(struct config *cfg, struct dataset **train, struct dataset **test,
                           bool *std_pending)
{
	struct dataset *tr = NULL, *te = NULL;
	int rc;

	if (std_pending != NULL)
		*std_pending = false;
	if (cfg->has_node) {
		check_metrics_listen(cfg);
		check_listen_local(cfg);
	}
	if (cfg->training.dataset[0] != '\0') {
		rc = dataset_load(&tr, cfg->training.dataset);
		if (rc != 0)
			config_error_add(cfg, cfg->training.line_dataset, cfg->training.dataset,
			                 "Dataset does not load: %s", err_str(rc));
	}
	if (cfg->training.test_set[0] != '\0') {
		rc = dataset_load(&te, cfg->training.test_set);
		if (rc != 0)
			config_error_add(cfg, cfg->training.line_test_set, cfg->training.test_set,
			                 "TestSet does not load: %s", err_str(rc));
	}
	if (tr != NULL && cfg->training.standardize != CONFIG_STD_NONE) {
		char why[CONFIG_PATH_MAX * 2 + 256] = "";
		bool pending = false;
		if (standardize_datasets(cfg, tr, te, &pending, why, sizeof(why)) != 0) {
			config_error_add(cfg, 0,
			                 cfg->training.standardize == CONFIG_STD_FILE
			                         ? cfg->training.standardize_file
			                         : "Standardize",
			                 "%s", why);
			dataset_free(te); /* perhaps half scaled: no scaling check on it */
			te = NULL;
		}
		if (std_pending != NULL)
			*std_pending = pending;
	}
	if (tr != NULL) {
		struct model_spec spec;
		struct optim_params op;
		struct privacy plan;
		uint32_t batch = (uint32_t)cfg->training.batch_size;
		if (train_setup_from_config(&spec, &op, cfg, tr) != 0)
			config_error_add(cfg, cfg->training.line_dataset, cfg->training.dataset,
			                 "[Model] does not fit Dataset (%u features%s, %u classes)",
			                 tr->dims, tr->channels != 0 ? ", images" : ", not images",
			                 tr->classes);
		if (privacy_plan(&plan, cfg, tr->rows, batch,
		                 ((uint64_t)tr->rows + batch - 1) / batch) != 0) {
			/* its errors are in cfg */
		}
	}
	if (tr != NULL && te != NULL &&
	    (te->dims != tr->dims || te->channels != tr->channels || te->classes > tr->classes))
		config_error_add(cfg, cfg->training.line_test_set, cfg->training.test_set,
		                 "TestSet has %u features and %u classes, Dataset %u and %u: they "
		                 "must match",
		                 te->dims, te->classes, tr->dims, tr->classes);
	if (tr != NULL && te != NULL && te->dims == tr->dims &&
	    (tr->mean != NULL) != (te->mean != NULL))
		config_error_add(
		        cfg, cfg->training.line_test_set, cfg->training.test_set,
		        "TestSet is %sstandardised but Dataset is %s: import both the same way",
		        te->mean != NULL ? "" : "not ", tr->mean != NULL ? "" : "not");
	else if (tr != NULL && te != NULL && te->dims == tr->dims && !dataset_same_scaling(tr, te))
		config_error_add(
		        cfg, cfg->training.line_test_set, cfg->training.test_set,
		        "TestSet was standardised with other statistics than Dataset, so its "
		        "features mean something else: import it with `sotto data import-csv "
		        "TEST.csv OUT --stats %s`",
		        cfg->training.dataset);
	rc = cfg->n_errors > 0 || cfg->n_errors_dropped > 0 ? -EINVAL : 0;
	if (rc == 0 && train != NULL && test != NULL) {
		*train = tr;
		*test = te;
		return 0;
	}
	dataset_free(tr);
	dataset_free(te);
	return rc;
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
	if (rc == 0)
		rc = node_config_deep_check(&cfg, NULL, NULL, NULL);
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
