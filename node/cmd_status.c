/*
 * cmd_status.c: `sotto status -c FILE` and `sotto reload -c FILE`: ask the
 * running node over its control socket and print the answer. `--metrics`
 * prints the Prometheus text instead of the status. Read only the config
 * (for the socket's path), never the private key.
 */
#include "config/config.h"
#include "node/cli.h"
#include "node/control.h"
#include "util/err.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Sends cmd to the control socket of the node that FILE configures and
 * prints the answer. An answer that starts with "error" is printed on
 * stderr and gives exit 1.
 */
static int control_ask(const char *who, const char *path, const char *cmd)
{
	struct config cfg;
	char *answer = NULL;
	int rc;

	rc = config_load(&cfg, path);
	if (rc != 0 && cfg.node.control_socket[0] == '\0') {
		config_errors_print(&cfg, stderr);
		config_fini(&cfg);
		return 2;
	}
	if (!cfg.has_node) {
		fprintf(stderr, "sotto %s: %s has no [Node] section\n", who, path);
		config_fini(&cfg);
		return 2;
	}
	rc = control_request(cfg.node.control_socket, cmd, 30.0, &answer);
	if (rc != 0) {
		fprintf(stderr, "sotto %s: no node answers on %s (%s)%s\n", who,
		        cfg.node.control_socket, err_str(rc),
		        rc == -ENOENT || rc == -ECONNREFUSED ? ": is `sotto run` running?" : "");
		config_fini(&cfg);
		return 1;
	}
	rc = strncmp(answer, "error", 5) == 0 ? 1 : 0;
	fputs(answer, rc == 0 ? stdout : stderr);
	free(answer);
	config_fini(&cfg);
	return rc;
}

int cmd_status(int argc, char **argv)
{
	const char *path = cli_config_arg(argc, argv);
	const char *cmd = "status";

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--metrics") == 0)
			cmd = "metrics";
	}
	if (path == NULL) {
		fprintf(stderr, "usage: sotto status -c FILE [--metrics]\n");
		return 2;
	}
	return control_ask("status", path, cmd);
}

/*
 * The node re-reads the config file it was started with (FILE only locates
 * its control socket); exit 0 if it applied it, 1 if it refused (the
 * answer says why, and nothing changed).
 */
int cmd_reload(int argc, char **argv)
{
	const char *path = cli_config_arg(argc, argv);

	if (path == NULL || argc != 3) {
		fprintf(stderr, "usage: sotto reload -c FILE\n");
		return 2;
	}
	return control_ask("reload", path, "reload");
}
