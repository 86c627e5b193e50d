/*
 * main.c: the sotto command. A table of subcommands, as in wg(8): each
 * entry names the function, the one-line help that usage() prints and the
 * command's own usage, which `sotto COMMAND --help` and `sotto help
 * COMMAND` print. The man page sotto(8) is tested against this table
 * (tests/cli/man_pages.sh). Only main() exits; subcommands return the exit
 * status.
 */
#include "node/cli.h"
#include "version.h" /* generated: SOTTO_VERSION from project() in CMakeLists.txt */

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;  /* one line; NULL: hidden, test-only */
	const char *usage; /* the command's usage, for --help */
};

static const struct command commands[] = {
        {"keygen", cmd_keygen, "Write a new private key to FILE (mode 0600) or stdout",
         "usage: sotto keygen [FILE]\n"
         "  Writes a new private key to FILE (created, mode 0600, never overwritten)\n"
         "  or to stdout. Give `sotto pubkey < FILE` to the other sites.\n"},
        {"pubkey", cmd_pubkey, "Read a private key on stdin, print its public key",
         "usage: sotto pubkey < private.key\n"},
        {"check", cmd_check, "Check a configuration file: sotto check -c FILE",
         "usage: sotto check -c FILE\n"
         "       sotto check --keys\n"
         "  Checks FILE as `sotto run` would, short of binding its ports: keys,\n"
         "  files, datasets. Prints `configuration OK`, or every error with its line\n"
         "  and exits 2. --keys lists every configuration key with its default.\n"},
        {"run", cmd_run, "Run the node daemon: sotto run -c FILE",
         "usage: sotto run -c FILE\n"
         "  Runs the node in the foreground. SIGTERM/SIGINT stop it at a safe point\n"
         "  (checkpoint written); SIGHUP reloads the config (see sotto reload).\n"},
        {"status", cmd_status, "Ask the running node what it is doing: sotto status -c FILE",
         "usage: sotto status -c FILE [--metrics]\n"
         "  Asks the node running FILE over its control socket.\n"},
        {"reload", cmd_reload, "Make the running node re-read its config: sotto reload -c FILE",
         "usage: sotto reload -c FILE\n"
         "  Asks the node running FILE to re-read it (as SIGHUP does). Peers added,\n"
         "  removed, re-keyed or moved take effect at once; so do LogLevel, Interval,\n"
         "  RoundTimeout, Rounds and EvalEvery. A config with errors, another\n"
         "  private key, or any other setting changed is refused and nothing changes.\n"
         "  Exit 0 applied, 1 refused or no node, 2 usage.\n"},
        {"init", cmd_init, "Write configs for a cluster: sotto init -o DIR NAME=HOST:PORT...",
         "usage: sotto init -o DIR [-t TEMPLATE] [--listen-any]\n"
         "                  [--degree D [--overlay-seed S]] NAME=HOST:PORT ...\n"
         "       sotto init --pubkeys -o DIR [...] NAME=HOST:PORT=PUBKEY ...\n"
         "  Writes DIR/NAME/NAME.key and DIR/NAME/NAME.conf for each site (a demo on\n"
         "  one machine: every private key is made here). With --pubkeys, for real\n"
         "  sites: each made its own key (`sotto keygen`) and sent only `sotto pubkey`;\n"
         "  init writes the configs and no key.\n"},
        {"train", cmd_train, "Train locally, no network: sotto train -c FILE",
         "usage: sotto train -c FILE [--epochs N] [--save CKPT] [--resume CKPT] "
         "[--confusion]\n"
         "  Trains [Model] on [Training] Dataset locally and prints a line per epoch.\n"},
        {"export", cmd_export,
         "Write the node's model for numpy/PyTorch: sotto export -c FILE -o OUT.npz",
         "usage: sotto export -c FILE -o OUT.npz\n"
         "  Writes the model of the node's checkpoint (DataDir/checkpoint) as named\n"
         "  float32 tensors in a NumPy .npz (numpy.load reads it), and OUT.json: the\n"
         "  model, how inputs are scaled, the epoch and rounds it came from.\n"},
        {"predict", cmd_predict, "Label rows with the node's model: sotto predict -c FILE IN OUT",
         "usage: sotto predict -c FILE IN OUT [--header] [--label COL]\n"
         "  IN: a CSV of feature columns (--label COL: that column is the true label)\n"
         "  or a sotto dataset file. OUT: a CSV of the label and class probabilities\n"
         "  per row. With true labels the accuracy is printed.\n"},
        {"data", cmd_data, "Dataset tools: sotto data import-mnist|import-csv|split|info ...",
         "usage: sotto data import-mnist|import-csv|split|info ...\n"
         "  Dataset files are written mode 0600 (patient data). `sotto data`\n"
         "  alone lists the tools; each prints its usage when run without arguments.\n"},
        {"transport-test", cmd_transport_test, NULL, NULL}, /* test-only, hidden */
};

static void usage(FILE *f)
{
	fprintf(f, "usage: sotto COMMAND [ARGS]\n\n"
	           "sotto: secure peer-to-peer gossip learning.\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].help != NULL) /* NULL: hidden, test-only */
			fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nsotto help [COMMAND], sotto COMMAND --help, sotto --version\n"
	           "exit status: 0 success, 1 runtime failure, 2 usage or configuration "
	           "error\n");
}

static const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	}
	return NULL;
}

static bool is_help(const char *s)
{
	return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0;
}

int main(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "help") == 0 || is_help(argv[1])) {
		if (argc == 2) {
			usage(stdout);
			return 0;
		}
		c = command_find(argv[2]);
		if (c == NULL || c->usage == NULL || argc > 3) {
			fprintf(stderr, "sotto help: no command '%s'\n\n", argv[2]);
			usage(stderr);
			return 2;
		}
		fputs(c->usage, stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("sotto %s\n", SOTTO_VERSION);
		return 0;
	}
	c = command_find(argv[1]);
	if (c == NULL) {
		fprintf(stderr, "sotto: unknown command '%s'\n\n", argv[1]);
		usage(stderr);
		return 2;
	}
	if (argc == 3 && is_help(argv[2]) && c->usage != NULL) {
		fputs(c->usage, stdout);
		return 0;
	}
	return c->fn(argc - 1, argv + 1);
}
