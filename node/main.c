/*
 * main.c: the sotto command. A table of subcommands, as in wg(8): each
 * entry names the function and the one-line help that usage() prints.
 * Only main() exits; subcommands return the exit status.
 */
#include "node/cli.h"
#include "version.h" /* generated: SOTTO_VERSION from project() in CMakeLists.txt */

#include <stdio.h>
#include <string.h>

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

static const struct command commands[] = {
        {"keygen", cmd_keygen, "Write a new private key to FILE (mode 0600) or stdout"},
        {"pubkey", cmd_pubkey, "Read a private key on stdin, print its public key"},
        {"check", cmd_check, "Check a configuration file: sotto check -c FILE"},
        {"run", cmd_run, "Run the node daemon: sotto run -c FILE"},
        {"status", cmd_status, "Ask the running node what it is doing: sotto status -c FILE"},
        {"init", cmd_init,
         "Write a key and a config per site: sotto init -o DIR NAME=HOST:PORT..."},
        {"train", cmd_train, "Train locally, no network: sotto train -c FILE"},
        {"data", cmd_data, "Dataset tools: sotto data import-mnist|import-csv|split|info ..."},
        {"transport-test", cmd_transport_test, NULL}, /* test-only, hidden */
};

static void usage(FILE *f)
{
	fprintf(f, "usage: sotto COMMAND [ARGS]\n\n"
	           "sotto: secure peer-to-peer gossip learning.\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].help != NULL) /* NULL: hidden, test-only */
			fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nsotto help, sotto --version\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("sotto %s\n", SOTTO_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "sotto: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
