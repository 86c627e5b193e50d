/*
 * cmd_status.c: `sotto status -c FILE`: asks the running node over its
 * control socket and prints the answer. `--metrics` prints the Prometheus
 * text instead. Reads only the config, never the private key.
 */
#include "config/config.h"
#include "node/cli.h"
#include "node/control.h"
#include "util/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_status(int argc, char **argv)
{
	struct config cfg;
	const char *path = cli_config_arg(argc, argv);
	const char *cmd = "status";
	char *answer = NULL;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--metrics") == 0)
			cmd = "metrics";
	}
	if (path == NULL) {
		fprintf(stderr, "usage: sotto status -c FILE [--metrics]\n");
		return 2;
	}
	rc = config_load(&cfg, path);
	if (rc != 0 && cfg.node.control_socket[0] == '\0') {
		config_errors_print(&cfg, stderr);
		config_fini(&cfg);
		return 2;
	}
	if (!cfg.has_node) {
		fprintf(stderr, "sotto status: %s has no [Node] section\n", path);
		config_fini(&cfg);
		return 2;
	}
	rc = control_request(cfg.node.control_socket, cmd, 5.0, &answer);
	if (rc != 0) {
		fprintf(stderr, "sotto status: no node answers on %s (%s)%s\n",
		        cfg.node.control_socket, err_str(rc),
		        rc == -ENOENT || rc == -ECONNREFUSED ? ": is `sotto run` running?" : "");
		config_fini(&cfg);
		return 1;
	}
	fputs(answer, stdout);
	free(answer);
	config_fini(&cfg);
	return 0;
}
