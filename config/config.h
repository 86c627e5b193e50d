/*
 * config.h: a site's configuration, parsed and validated.
 *
 * The file is INI in the spirit of WireGuard: one [Node] section, [Model],
 * [Training], [Gossip], and one [Peer] per peer. libinih does the parsing;
 * this module adds line numbers, types, defaults, ranges and the checks
 * that span fields, and collects EVERY error with its line instead of
 * stopping at the first. docs/sotto.conf.md documents each key.
 *
 * Not here: anything that needs crypto (decoding the private key, checking
 * that it is not also listed as a peer). node/ does that with crypto/ and
 * adds its findings with config_error_add(), so they print the same way.
 */
#ifndef SOTTO_CONFIG_CONFIG_H
#define SOTTO_CONFIG_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_NAME_MAX    32     /* node and peer names: [A-Za-z0-9._-] */
#define CONFIG_URL_MAX     128    /* tcp://host:port or ipc:///path */
#define CONFIG_PATH_MAX    1024   /* resolved file paths */
#define CONFIG_KEY_B64_MAX 64     /* base64 public key text */
#define CONFIG_MAX_PEERS   1024   /* bound on [Peer] sections */
#define CONFIG_MAX_CIRCLES 32     /* bound on distinct [Peer] Circles names */
#define CONFIG_MAX_HIDDEN  8      /* bound on MLP hidden layers */
#define CONFIG_MAX_ERRORS  200    /* errors kept; the rest are counted */
#define CONFIG_MAX_LINES   100000 /* a config longer than this is refused */

/* EXTERNAL: a local process trains the model (node/external.h); no Dataset here. */
enum config_model_type {
	CONFIG_MODEL_LOGREG,
	CONFIG_MODEL_MLP,
	CONFIG_MODEL_CNN,
	CONFIG_MODEL_EXTERNAL
};
enum config_optimizer { CONFIG_OPT_SGD, CONFIG_OPT_ADAM };
enum config_schedule { CONFIG_SCHED_CONSTANT, CONFIG_SCHED_COSINE, CONFIG_SCHED_STEP };
enum config_momentum_rule { CONFIG_MOM_KEEP, CONFIG_MOM_RESET, CONFIG_MOM_QUASI_GLOBAL };
enum config_codec { CONFIG_CODEC_FIXED, CONFIG_CODEC_FLOAT32, CONFIG_CODEC_MODULAR };
/* [Gossip] DataPath: star and scatter are the wire's MSG_PATH_* values. */
enum config_data_path { CONFIG_PATH_STAR, CONFIG_PATH_SCATTER, CONFIG_PATH_AUTO };
/* [Training] Standardize: how features are scaled when the node loads its data. */
enum config_standardize {
	CONFIG_STD_NONE,      /* as the dataset file holds them */
	CONFIG_STD_LOCAL,     /* this site's own mean and deviation */
	CONFIG_STD_FEDERATED, /* every site's pooled statistics, agreed through secure rounds */
	CONFIG_STD_FILE,      /* training.standardize_file's */
};

struct config_peer {
	char name[CONFIG_NAME_MAX + 1];
	char public_key[CONFIG_KEY_B64_MAX + 1]; /* base64, checked syntactically */
	uint8_t public_key_bin[32];
	char endpoint[CONFIG_URL_MAX + 1]; /* normalised NNG URL */
	uint32_t circles; /* bit c: the peer is in the node's circle c (config.circles) */
	int line;         /* line of the [Peer] header */
	int line_name, line_public_key, line_endpoint, line_circles;
};

struct config_error {
	int line; /* 0 when the error concerns the whole file */
	char msg[160];
	char value[96]; /* offending text, sanitised for the terminal */
};

struct config {
	char path[CONFIG_PATH_MAX]; /* the file as given */
	char dir[CONFIG_PATH_MAX];  /* relative paths inside resolve from here */

	bool has_node;      /* false: a local-training-only config */
	bool virtual_paths; /* config_load_virtual: paths not checked on disk */
	struct {
		char name[CONFIG_NAME_MAX + 1];
		char private_key_file[CONFIG_PATH_MAX];
		char listen[CONFIG_URL_MAX + 1];
		char data_dir[CONFIG_PATH_MAX];
		char control_socket[CONFIG_PATH_MAX];    /* default: DataDir/control.sock */
		char metrics_listen[CONFIG_URL_MAX + 1]; /* empty: no /metrics */
		int log_level;                           /* enum log_level */
		int line, line_private_key_file, line_listen, line_metrics_listen;
	} node;

	struct {
		enum config_model_type type;
		int hidden[CONFIG_MAX_HIDDEN];
		int n_hidden;
		uint64_t seed;
	} model;

	struct {
		char dataset[CONFIG_PATH_MAX];
		char test_set[CONFIG_PATH_MAX]; /* empty: no evaluation */
		enum config_optimizer optimizer;
		double learning_rate;
		double momentum;
		double weight_decay;
		int batch_size;
		int epochs;                    /* `sotto train`: epochs to run */
		enum config_schedule schedule; /* learning rate over Epochs */
		double warmup;                 /* epochs of warm-up, < epochs */
		double lr_floor;               /* factor at Epochs (cosine, step) */
		double drift_correction;       /* gain of the drift estimate; 0: off */
		enum config_momentum_rule momentum_rule;
		double local_epochs; /* gossip: epochs of local training per round */
		int threads;         /* BLAS threads of the training worker */
		uint64_t seed;       /* data order; model init uses [Model] Seed */
		enum config_standardize standardize;
		char standardize_file[CONFIG_PATH_MAX]; /* CONFIG_STD_FILE: the statistics */
		int line_dataset, line_test_set;
	} training;

	struct {
		int group_size; /* k: members per round, initiator included */
		int threshold;  /* t: shares needed to recover; 0 = majority */
		double interval;
		double round_timeout;
		enum config_codec codec;
		int bits;
		int width;          /* modular: ring width (wire bits per value) */
		double keep;        /* fraction of large layers averaged per round */
		int warmup_rounds;  /* modular: exact rounds before going modular */
		int error_feedback; /* 1: send model + last rounding residual */
		int rank;           /* low-rank averaging of large layers: rank; 0: off */
		int data_path;      /* enum config_data_path */
		int when_done;      /* 0: keep averaging, 1: stop once phase done */
		int rounds;         /* 0: run until stopped */
		int eval_every;
		int line_group_size;
	} gossip;

	struct {
		double epsilon; /* 0: no budget */
		double delta;
		double clip_norm;
		double noise_multiplier; /* 0: derived from epsilon (or DP off) */
		int line_epsilon, line_noise_multiplier, line_delta;
	} privacy;

	struct config_peer *peers;
	size_t n_peers;
	/*
	 * Circles (partial views, `sotto init --degree`): groups of sites that
	 * all know each other. When any [Peer] names circles, a round's members
	 * are drawn from one circle, so every member knows every other.
	 */
	char circles[CONFIG_MAX_CIRCLES][CONFIG_NAME_MAX + 1];
	size_t n_circles;

	struct config_error *errors;
	size_t n_errors;
	size_t n_errors_dropped;
};

/*
 * Parses and validates path into *out (caller's storage, config_fini()
 * after, success or not). Returns 0 if the file is valid; -EINVAL if it has
 * errors (all of them in out->errors); another -errno if it could not be
 * read at all (also recorded as an error with line 0).
 */
int config_load(struct config *out, const char *path) __attribute__((warn_unused_result));
/* Same from a string (fuzzing and tests); name is used in messages. */
int config_load_string(struct config *out, const char *name, const char *text)
        __attribute__((warn_unused_result));
/*
 * Same from a string, without looking at the file system: the Dataset,
 * TestSet and PrivateKeyFile paths are not checked (the simulator's sites
 * live in memory).
 */
int config_load_virtual(struct config *out, const char *name, const char *text)
        __attribute__((warn_unused_result));
void config_fini(struct config *cfg);

/* Records an error; value may be NULL. Used by node/ for identity checks. */
void config_error_add(struct config *cfg, int line, const char *value, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* Prints every error as "FILE:LINE: message: 'value'" to f. */
void config_errors_print(const struct config *cfg, FILE *f);

/* Documentation of the keys, for `sotto check --keys` and the docs test. */
struct config_key_doc {
	const char *section, *key, *def, *range, *help;
	bool required;
};
size_t config_key_docs(const struct config_key_doc **out);

/*
 * What a reload may not change: the keys outside [Peer] that differ between
 * the running config and the next one, other than those a node takes live
 * (config_key_reloads). Writes "[Section] Key, ..." into buf (truncated to
 * cap) and returns how many differ; 0: the next config can be applied.
 */
size_t config_reload_diff(const struct config *running, const struct config *next, char *buf,
                          size_t cap);
/* Whether a running node applies this key on reload ([Peer] keys all do). */
bool config_key_reloads(const char *section, const char *key);

const char *config_model_type_name(enum config_model_type t);

#endif
