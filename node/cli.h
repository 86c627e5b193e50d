/*
 * cli.h: the subcommands of the sotto binary. Each takes the arguments
 * after its own name (argv[0] is the subcommand) and returns the process
 * exit status: 0 success, 1 runtime failure, 2 usage or configuration error.
 */
#ifndef SOTTO_NODE_CLI_H
#define SOTTO_NODE_CLI_H

#include <stdbool.h>

struct config;
struct identity;

int cmd_keygen(int argc, char **argv);
int cmd_pubkey(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_reload(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_transport_test(int argc, char **argv); /* hidden, test-only */

struct model_spec;
struct optim_params;
struct train_schedule;
struct dataset;
/* [Model]/[Training] of cfg as learn/ settings for data ds (cmd_train.c). 0 or LEARN_EBOUNDS. */
/*
 * What `sotto run` checks at start-up beyond the file, short of binding its
 * ports (`sotto check` runs it): the datasets load and fit the model, the
 * test set matches the training set, MetricsListen is not Listen, and
 * Listen's address is one of this host's. Adds config errors; 0 or -EINVAL.
 * On 0, train and test (if not NULL) take the loaded datasets (test: NULL
 * without a TestSet) for the caller to dataset_free(); else they are freed.
 * The datasets come scaled as [Training] Standardize says; with federated
 * statistics not agreed yet they stay raw and *std_pending (may be NULL) is
 * set.
 */
int node_config_deep_check(struct config *cfg, struct dataset **train, struct dataset **test,
                           bool *std_pending);
int train_setup_from_config(struct model_spec *spec, struct optim_params *op,
                            const struct config *cfg, const struct dataset *ds)
        __attribute__((warn_unused_result));
/* The schedule keys of [Training] over a budget of epochs (cmd_train.c). 0 or LEARN_EBOUNDS. */
int train_schedule_from_config(struct train_schedule *s, const struct config *cfg, double epochs)
        __attribute__((warn_unused_result));

/* Creates path (O_EXCL, mode 0600) holding id's private key line. 0 or -errno. */
int keys_write_new(const char *path, const struct identity *id) __attribute__((warn_unused_result));

/*
 * Loads a config for a command that acts as a node: config_load() plus the
 * checks that need crypto (the private key decodes; it is not also listed
 * as a peer; peer keys are valid points). On success *id holds the identity
 * (identity_free() it). Errors are in cfg->errors either way.
 */
int node_config_load(struct config *cfg, const char *path, struct identity **id)
        __attribute__((warn_unused_result));

/* Shared option parsing: finds "-c FILE" / "--config FILE"; NULL if absent. */
const char *cli_config_arg(int argc, char **argv);

#endif
