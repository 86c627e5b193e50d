/*
 * config.c: INI -> struct config, with every error and its line.
 *
 * libinih parses; we feed it through our own line reader so that we know
 * the line number of every key (the Debian build of inih does not pass it),
 * see section headers as they come (so that each [Peer] starts a new peer,
 * even an empty one) and report syntax errors that inih would only count.
 * Keys are described once, in the table below, which also drives defaults
 * and `sotto check --keys`; docs/sotto.conf.md is tested against it.
 */
#include "config/config.h"

#include "util/err.h"
#include "util/file.h"
#include "util/log.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_FILE_MAX (1u << 20) /* a config file over 1 MiB is refused */

enum section {
	SEC_NONE = -1, /* before the first header */
	SEC_SKIP = -2, /* inside a section already reported as bad */
	SEC_NODE = 0,
	SEC_MODEL,
	SEC_TRAINING,
	SEC_GOSSIP,
	SEC_PRIVACY,
	SEC_PEER,
	SEC_COUNT,
};

static const char *const section_names[SEC_COUNT] = {"Node",   "Model",   "Training",
                                                     "Gossip", "Privacy", "Peer"};

enum key_type {
	K_NAME,     /* [A-Za-z0-9._-]{1,32} */
	K_PATH,     /* resolved against the config file's directory */
	K_LISTEN,   /* NNG URL we listen on; host may be a wildcard */
	K_ENDPOINT, /* NNG URL we dial */
	K_INT,
	K_U64,
	K_DOUBLE,
	K_ENUM,
	K_INTLIST,
	K_PUBKEY,
	K_CIRCLES,     /* comma-separated names, into config.circles and config_peer.circles */
	K_STANDARDIZE, /* none, local, federated, or a path into training.standardize_file */
};

static const char *const model_names[] = {"logreg", "mlp", "cnn", "external", NULL};
static const char *const optimizer_names[] = {"sgd", "adam", NULL};
static const char *const codec_names[] = {"fixed", "float32", "modular", NULL};
static const char *const schedule_names[] = {"constant", "cosine", "step", NULL};
static const char *const momentum_rule_names[] = {"keep", "reset", "quasi-global", NULL};
static const char *const yesno_names[] = {"no", "yes", NULL};
static const char *const when_done_names[] = {"average", "stop", NULL};
static const char *const data_path_names[] = {"star", "scatter", "auto", NULL};
static const char *const loglevel_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const standardize_names[] = {"none", "local", "federated", NULL};

struct key_spec {
	enum section section;
	const char *key;
	enum key_type type;
	size_t offset; /* into struct config, or struct config_peer for SEC_PEER */
	size_t size;   /* bytes of the destination for strings */
	double min, max;
	const char *const *names; /* K_ENUM */
	const char *def;          /* default, parsed like a value; NULL: none */
	bool required;
	const char *range; /* for docs and messages */
	const char *help;
	ptrdiff_t line_offset; /* where to store the key's line, or -1 */
};

#define CFG(member)  offsetof(struct config, member), sizeof(((struct config *)0)->member)
#define PEER(member) offsetof(struct config_peer, member), sizeof(((struct config_peer *)0)->member)
#define NOLINE       (-1)

static const struct key_spec key_specs[] = {
        {SEC_NODE, "Name", K_NAME, CFG(node.name), 0, 0, NULL, NULL, true, "1-32 of [A-Za-z0-9._-]",
         "This site's name, shown in logs and to peers.", NOLINE},
        {SEC_NODE, "PrivateKeyFile", K_PATH, CFG(node.private_key_file), 0, 0, NULL, NULL, true,
         "file of mode 0600", "Identity key written by `sotto keygen`.",
         offsetof(struct config, node.line_private_key_file)},
        {SEC_NODE, "Listen", K_LISTEN, CFG(node.listen), 0, 0, NULL, NULL, true,
         "host:port, tcp://host:port or ipc:///path", "Where peers reach this node.",
         offsetof(struct config, node.line_listen)},
        {SEC_NODE, "DataDir", K_PATH, CFG(node.data_dir), 0, 0, NULL, NULL, true, "directory",
         "Checkpoints, replay counters and round state (created 0700).", NOLINE},
        {SEC_NODE, "ControlSocket", K_PATH, CFG(node.control_socket), 0, 0, NULL, NULL, false,
         "path", "Unix socket for `sotto status`. Default: DataDir/control.sock.", NOLINE},
        {SEC_NODE, "MetricsListen", K_LISTEN, CFG(node.metrics_listen), 0, 0, NULL, NULL, false,
         "host:port or tcp://host:port", "Prometheus /metrics endpoint. Default: off.",
         offsetof(struct config, node.line_metrics_listen)},
        {SEC_NODE, "LogLevel", K_ENUM, CFG(node.log_level), 0, 0, loglevel_names, "info", false,
         "debug, info, warn, error", "Least severe log level printed.", NOLINE},

        {SEC_MODEL, "Type", K_ENUM, CFG(model.type), 0, 0, model_names, "mlp", false,
         "logreg, mlp, cnn, external",
         "Model architecture; external: a local process trains it over DataDir/trainer.sock.",
         NOLINE},
        {SEC_MODEL, "Hidden", K_INTLIST, CFG(model.hidden), 1, 65536, NULL, "128", false,
         "1-8 sizes in 1..65536", "MLP hidden layer widths, comma separated (mlp only).", NOLINE},
        {SEC_MODEL, "Seed", K_U64, CFG(model.seed), 0, 0, NULL, "1", false, "0..2^64-1",
         "Initialisation seed; every site of a cluster must use the same one.", NOLINE},

        {SEC_TRAINING, "Dataset", K_PATH, CFG(training.dataset), 0, 0, NULL, NULL, true,
         "readable dataset file", "This site's training data.",
         offsetof(struct config, training.line_dataset)},
        {SEC_TRAINING, "TestSet", K_PATH, CFG(training.test_set), 0, 0, NULL, NULL, false,
         "readable dataset file", "Evaluation data. Default: none (no accuracy figures).",
         offsetof(struct config, training.line_test_set)},
        {SEC_TRAINING, "Optimizer", K_ENUM, CFG(training.optimizer), 0, 0, optimizer_names, "sgd",
         false, "sgd, adam", "Local optimizer.", NOLINE},
        {SEC_TRAINING, "LearningRate", K_DOUBLE, CFG(training.learning_rate), 1e-7, 10, NULL,
         "0.05", false, "1e-7..10", "Step size.", NOLINE},
        {SEC_TRAINING, "Momentum", K_DOUBLE, CFG(training.momentum), 0, 0.999, NULL, "0.9", false,
         "0..0.999", "SGD momentum (Adam: beta1).", NOLINE},
        {SEC_TRAINING, "WeightDecay", K_DOUBLE, CFG(training.weight_decay), 0, 1, NULL, "0", false,
         "0..1", "L2 weight decay.", NOLINE},
        {SEC_TRAINING, "BatchSize", K_INT, CFG(training.batch_size), 1, 65536, NULL, "32", false,
         "1..65536", "Mini-batch size.", NOLINE},
        {SEC_TRAINING, "Epochs", K_INT, CFG(training.epochs), 1, 100000, NULL, "20", false,
         "1..100000",
         "Epochs of local training: `sotto train` runs this many; `sotto run` stops training "
         "after this many in total and keeps averaging.",
         NOLINE},
        {SEC_TRAINING, "Schedule", K_ENUM, CFG(training.schedule), 0, 0, schedule_names, "constant",
         false, "constant, cosine, step",
         "Learning rate over Epochs: warm-up, then cosine or step decay down to "
         "LearningRateFloor.",
         NOLINE},
        {SEC_TRAINING, "Warmup", K_DOUBLE, CFG(training.warmup), 0, 100000, NULL, "0", false,
         "0..100000, less than Epochs", "Epochs of linear warm-up from a tenth of LearningRate.",
         NOLINE},
        {SEC_TRAINING, "LearningRateFloor", K_DOUBLE, CFG(training.lr_floor), 1e-4, 1, NULL, "0.01",
         false, "1e-4..1", "Fraction of LearningRate a decay ends at, at Epochs.", NOLINE},
        {SEC_TRAINING, "MomentumRule", K_ENUM, CFG(training.momentum_rule), 0, 0,
         momentum_rule_names, "keep", false, "keep, reset, quasi-global",
         "What SGD momentum does when a gossip average is applied.", NOLINE},
        {SEC_TRAINING, "DriftCorrection", K_DOUBLE, CFG(training.drift_correction), 0, 1, NULL, "0",
         false, "0..1",
         "Non-IID drift correction from the jumps of applied averages (no extra bytes): the "
         "gain of its running estimate; 0 turns it off.",
         NOLINE},
        {SEC_TRAINING, "Standardize", K_STANDARDIZE, CFG(training.standardize_file), 0, 0,
         standardize_names, "none", false, "none, local, federated, or a statistics file",
         "How features are scaled when the node loads its data: as the dataset holds them, "
         "with this site's own statistics, with every site's pooled statistics agreed "
         "through secure rounds before training, or with a file's.",
         NOLINE},
        {SEC_TRAINING, "LocalEpochs", K_DOUBLE, CFG(training.local_epochs), 0.01, 100, NULL, "1",
         false, "0.01..100", "Epochs of local training per Interval (the training clock).", NOLINE},
        {SEC_TRAINING, "Threads", K_INT, CFG(training.threads), 1, 64, NULL, "1", false, "1..64",
         "BLAS threads for training.", NOLINE},
        {SEC_TRAINING, "Seed", K_U64, CFG(training.seed), 0, 0, NULL, "1", false, "0..2^64-1",
         "Seed of this site's data order.", NOLINE},

        {SEC_GOSSIP, "GroupSize", K_INT, CFG(gossip.group_size), 3, 32, NULL, "4", false, "3..32",
         "Members per secure round, initiator included (k >= 3: see docs/security.md).",
         offsetof(struct config, gossip.line_group_size)},
        {SEC_GOSSIP, "Threshold", K_INT, CFG(gossip.threshold), 0, 32, NULL, "0", false,
         "0 or max(3, ceil((GroupSize+2)/2))..GroupSize",
         "Survivors needed to finish a round (t of k). 0: the smallest safe value.", NOLINE},
        {SEC_GOSSIP, "Interval", K_DOUBLE, CFG(gossip.interval), 0.1, 86400, NULL, "10", false,
         "0.1..86400 seconds", "Mean time between rounds this node starts (jittered).", NOLINE},
        {SEC_GOSSIP, "RoundTimeout", K_DOUBLE, CFG(gossip.round_timeout), 0.5, 3600, NULL, "30",
         false, "0.5..3600 seconds", "Deadline of each phase of a round.", NOLINE},
        {SEC_GOSSIP, "Codec", K_ENUM, CFG(gossip.codec), 0, 0, codec_names, "modular", false,
         "fixed, float32, modular", "Update encoding on the wire (docs/codec.md).", NOLINE},
        {SEC_GOSSIP, "Bits", K_INT, CFG(gossip.bits), 2, 32, NULL, "8", false, "2..32",
         "Bits per value of the fixed-point codec (and of modular warm-up rounds).", NOLINE},
        {SEC_GOSSIP, "Width", K_INT, CFG(gossip.width), 1, 16, NULL, "6", false, "1..16",
         "Modular codec: ring width, the bits per value on the wire.", NOLINE},
        {SEC_GOSSIP, "Keep", K_DOUBLE, CFG(gossip.keep), 0.001, 1, NULL, "1", false, "0.001..1",
         "Fraction of the large layers averaged per round (a public random subset).", NOLINE},
        {SEC_GOSSIP, "WarmupRounds", K_INT, CFG(gossip.warmup_rounds), 0, 1000000, NULL, "4", false,
         "0..10^6", "Modular codec: rounds in the fixed-point codec first.", NOLINE},
        {SEC_GOSSIP, "ErrorFeedback", K_ENUM, CFG(gossip.error_feedback), 0, 0, yesno_names, "no",
         false, "no, yes", "Add the last round's rounding residual to the next input.", NOLINE},
        {SEC_GOSSIP, "Rank", K_INT, CFG(gossip.rank), 0, 64, NULL, "0", false, "0..64",
         "Low-rank averaging: large layers go as rank-Rank projections on a basis the group "
         "finds in each chain of five rounds (docs/codec.md); 0: off.",
         NOLINE},
        {SEC_GOSSIP, "DataPath", K_ENUM, CFG(gossip.data_path), 0, 0, data_path_names, "auto",
         false, "star, scatter, auto",
         "How a round's vectors travel: all through the initiator (star), in parts summed "
         "by every member (scatter: reduce-scatter, then all-gather), or scatter when a "
         "member's measured link takes 100 ms or more per vector (auto).",
         NOLINE},
        {SEC_GOSSIP, "WhenDone", K_ENUM, CFG(gossip.when_done), 0, 0, when_done_names, "average",
         false, "average, stop",
         "Once training is over and the group agrees (status phase done): keep taking part "
         "in rounds, or stop (checkpoint written, exit 0).",
         NOLINE},
        {SEC_GOSSIP, "Rounds", K_INT, CFG(gossip.rounds), 0, 100000000, NULL, "0", false, "0..10^8",
         "Stop after this many completed rounds; 0: run until stopped.", NOLINE},
        {SEC_GOSSIP, "EvalEvery", K_INT, CFG(gossip.eval_every), 1, 100000, NULL, "5", false,
         "1..100000", "Evaluate on TestSet every this many rounds.", NOLINE},

        {SEC_PRIVACY, "Epsilon", K_DOUBLE, CFG(privacy.epsilon), 0, 100, NULL, "0", false, "0..100",
         "Differential privacy budget of this site's records over all its training "
         "(docs/privacy.md). Training stops once it is spent; averaging goes on. 0: no budget.",
         offsetof(struct config, privacy.line_epsilon)},
        {SEC_PRIVACY, "Delta", K_DOUBLE, CFG(privacy.delta), 1e-12, 0.1, NULL, "1e-5", false,
         "1e-12..0.1, below 1/rows", "The delta of (epsilon, delta).",
         offsetof(struct config, privacy.line_delta)},
        {SEC_PRIVACY, "ClipNorm", K_DOUBLE, CFG(privacy.clip_norm), 1e-6, 1e6, NULL, "1", false,
         "1e-6..10^6", "DP-SGD: each record's gradient is clipped to this L2 norm.", NOLINE},
        {SEC_PRIVACY, "NoiseMultiplier", K_DOUBLE, CFG(privacy.noise_multiplier), 0, 1000, NULL,
         "0", false, "0..1000",
         "DP-SGD noise, in units of ClipNorm. 0 with an Epsilon: the least noise that keeps "
         "Epochs of training within it. Either one turns DP-SGD on.",
         offsetof(struct config, privacy.line_noise_multiplier)},

        {SEC_PEER, "Name", K_NAME, PEER(name), 0, 0, NULL, NULL, true, "1-32 of [A-Za-z0-9._-]",
         "The peer's name (unique).", offsetof(struct config_peer, line_name)},
        {SEC_PEER, "PublicKey", K_PUBKEY, PEER(public_key), 0, 0, NULL, NULL, true,
         "base64 key from `sotto pubkey`", "Pins the peer: only this key can talk as it.",
         offsetof(struct config_peer, line_public_key)},
        {SEC_PEER, "Endpoint", K_ENDPOINT, PEER(endpoint), 0, 0, NULL, NULL, true,
         "host:port, tcp://host:port or ipc:///path", "Where the peer listens.",
         offsetof(struct config_peer, line_endpoint)},
        {SEC_PEER, "Circles", K_CIRCLES, PEER(circles), 0, 0, NULL, NULL, false,
         "comma-separated names, each 1-32 of [A-Za-z0-9._-]",
         "Circles this peer shares with the node: sites that all know each other. With "
         "circles, a round's members come from one circle. Default: none (every peer may be "
         "grouped with every other).",
         offsetof(struct config_peer, line_circles)},
};

#define N_SPECS ARRAY_LEN(key_specs)

struct parse_state {
	struct config *cfg;
	const char *text; /* whole file, NUL-terminated */
	size_t pos, len;
	int line;
	enum section cur;
	int section_line[SEC_COUNT]; /* first header line of each section */
	int seen[N_SPECS];           /* line a global key was set on, 0: not yet */
	size_t peers_cap;
	bool stopped;
};

/* --- errors ------------------------------------------------------------ */

static void sanitize(char *dst, size_t cap, const char *src)
{
	size_t i = 0;

	for (; src != NULL && *src != '\0' && i + 1 < cap; src++) {
		unsigned char c = (unsigned char)*src;
		dst[i++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (src != NULL && *src != '\0' && i >= 4) /* truncated: say so */
		memcpy(dst + i - 3, "...", 3);
	dst[i] = '\0';
}

void config_error_add(struct config *cfg, int line, const char *value, const char *fmt, ...)
{
	struct config_error *e;
	va_list ap;

	if (cfg->n_errors >= CONFIG_MAX_ERRORS) {
		cfg->n_errors_dropped++;
		return;
	}
	if (cfg->errors == NULL) {
		cfg->errors = calloc(CONFIG_MAX_ERRORS, sizeof(*cfg->errors));
		if (cfg->errors == NULL) {
			cfg->n_errors_dropped++;
			return;
		}
	}
	e = &cfg->errors[cfg->n_errors++];
	e->line = line;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	if (value != NULL)
		sanitize(e->value, sizeof(e->value), value);
	else
		e->value[0] = '\0';
}

void config_errors_print(const struct config *cfg, FILE *f)
{
	for (size_t i = 0; i < cfg->n_errors; i++) {
		const struct config_error *e = &cfg->errors[i];
		fprintf(f, "%s:%d: %s: '%s'\n", cfg->path, e->line, e->msg, e->value);
	}
	if (cfg->n_errors_dropped > 0)
		fprintf(f, "%s: %zu more errors not shown\n", cfg->path, cfg->n_errors_dropped);
}

/* --- value parsers ----------------------------------------------------- */

static bool name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONFIG_NAME_MAX)
		return false;
	for (; *s != '\0'; s++) {
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
			return false;
	}
	return true;
}

static int resolve_path(char *dst, size_t cap, const char *dir, const char *v)
{
	int n;

	if (v[0] == '/' || strcmp(dir, ".") == 0)
		n = snprintf(dst, cap, "%s", v);
	else
		n = snprintf(dst, cap, "%s/%s", dir, v);
	return (n < 0 || (size_t)n >= cap) ? -ENAMETOOLONG : 0;
}

/*
 * Accepts tcp://host:port, ipc:///path, or the shorthand host:port, and
 * writes the NNG URL. A listen address may use a wildcard host ("*",
 * "0.0.0.0", "[::]" or empty); an endpoint we dial may not.
 */
static int parse_url(char *dst, size_t cap, const char *v, bool listen, const char **why)
{
	const char *hostport = v, *colon;
	char host[CONFIG_URL_MAX + 1];
	int64_t port;
	size_t hlen;
	int n;

	if (strncmp(v, "ipc://", 6) == 0) {
		if (v[6] != '/' || strlen(v) <= 7) {
			*why = "ipc:// needs an absolute path";
			return -EINVAL;
		}
		n = snprintf(dst, cap, "%s", v);
		if (n < 0 || (size_t)n >= cap) {
			*why = "address too long";
			return -EINVAL;
		}
		return 0;
	}
	if (strncmp(v, "tcp://", 6) == 0)
		hostport = v + 6;
	else if (strstr(v, "://") != NULL) {
		*why = "unsupported scheme (use tcp:// or ipc://)";
		return -EINVAL;
	}
	colon = strrchr(hostport, ':');
	if (colon == NULL) {
		*why = "missing :port";
		return -EINVAL;
	}
	hlen = (size_t)(colon - hostport);
	if (hlen >= sizeof(host)) {
		*why = "host too long";
		return -EINVAL;
	}
	memcpy(host, hostport, hlen);
	host[hlen] = '\0';
	if (util_parse_i64(&port, colon + 1, 1, 65535) != 0) {
		*why = "port must be 1..65535";
		return -EINVAL;
	}
	if (host[0] == '[') {
		if (hlen < 3 || host[hlen - 1] != ']') {
			*why = "IPv6 address needs [brackets]";
			return -EINVAL;
		}
	} else if (strchr(host, ':') != NULL) {
		*why = "IPv6 address needs [brackets]";
		return -EINVAL;
	}
	for (const char *p = host; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && strchr(".-:[]*_", *p) == NULL) {
			*why = "bad character in host";
			return -EINVAL;
		}
	}
	if (!listen && (hlen == 0 || strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0 ||
	                strcmp(host, "[::]") == 0)) {
		*why = "endpoint needs a host to connect to, not a wildcard";
		return -EINVAL;
	}
	if (strcmp(host, "*") == 0)
		host[0] = '\0';
	n = snprintf(dst, cap, "tcp://%s:%d", host, (int)port);
	if (n < 0 || (size_t)n >= cap) {
		*why = "address too long";
		return -EINVAL;
	}
	return 0;
}

static int parse_intlist(int *dst, int *count, const char *v, int min, int max)
{
	char buf[256];
	char *save = NULL, *tok;
	int n = 0;

	if (strlen(v) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, v, strlen(v) + 1);
	for (tok = strtok_r(buf, ", \t", &save); tok != NULL; tok = strtok_r(NULL, ", \t", &save)) {
		int64_t x;
		if (n >= CONFIG_MAX_HIDDEN || util_parse_i64(&x, tok, min, max) != 0)
			return -EINVAL;
		dst[n++] = (int)x;
	}
	if (n == 0)
		return -EINVAL;
	*count = n;
	return 0;
}

static int decode_pubkey(uint8_t out[32], const char *v)
{
	size_t bin_len = 0;
	const char *end = NULL;

	if (strlen(v) != 44)
		return -EINVAL;
	if (sodium_base642bin(out, 32, v, 44, NULL, &bin_len, &end,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    bin_len != 32 || end != v + 44)
		return -EINVAL;
	return 0;
}

/* "a, b,c" -> the peer's circle bits; new names join the node's table. */
static int parse_circles(struct config *cfg, uint32_t *bits, const char *v, const char **why)
{
	char name[CONFIG_NAME_MAX + 1];

	*bits = 0;
	for (const char *q = v;;) {
		size_t n = strcspn(q, ", \t"), c;

		if (n > 0) {
			if (n > CONFIG_NAME_MAX) {
				*why = "has a circle name longer than 32 characters";
				return -EINVAL;
			}
			memcpy(name, q, n);
			name[n] = '\0';
			if (!name_valid(name)) {
				*why = "must be comma-separated names of A-Z a-z 0-9 . _ -";
				return -EINVAL;
			}
			for (c = 0; c < cfg->n_circles && strcmp(cfg->circles[c], name) != 0; c++)
				;
			if (c == cfg->n_circles) {
				if (c == CONFIG_MAX_CIRCLES) {
					*why = "names more than 32 distinct circles in this file";
					return -EINVAL;
				}
				snprintf(cfg->circles[c], sizeof(cfg->circles[c]), "%s", name);
				cfg->n_circles++;
			}
			*bits |= 1u << c;
		}
		q += n;
		if (*q == '\0')
			break;
		q++;
	}
	if (*bits == 0) {
		*why = "must name at least one circle";
		return -EINVAL;
	}
	return 0;
}

/*
 * Sets one key from its text. base is struct config or struct config_peer.
 * On a bad value records an error (when line > 0) and returns -EINVAL.
 */
static int spec_set(struct config *cfg, const struct key_spec *s, void *base, const char *v,
                    int line)
{
	char *dst = (char *)base + s->offset;
	const char *why = NULL;
	int64_t i;
	double d;
	int rc = 0;

	switch (s->type) {
	case K_NAME:
		if (!name_valid(v)) {
			why = "must be 1-32 characters of A-Z a-z 0-9 . _ -";
			rc = -EINVAL;
			break;
		}
		snprintf(dst, s->size, "%s", v);
		break;
	case K_PATH:
		if (v[0] == '\0') {
			why = "empty path";
			rc = -EINVAL;
			break;
		}
		if (resolve_path(dst, s->size, cfg->dir, v) != 0) {
			why = "path too long";
			rc = -EINVAL;
		}
		break;
	case K_LISTEN:
	case K_ENDPOINT:
		rc = parse_url(dst, s->size, v, s->type == K_LISTEN, &why);
		break;
	case K_INT:
		rc = util_parse_i64(&i, v, (int64_t)s->min, (int64_t)s->max);
		if (rc == 0)
			*(int *)(void *)dst = (int)i;
		else
			why = "must be an integer in";
		break;
	case K_U64: {
		char *end = NULL;
		unsigned long long u;
		errno = 0;
		u = strtoull(v, &end, 10);
		if (v[0] == '\0' || v[0] == '-' || *end != '\0' || errno != 0) {
			why = "must be an unsigned 64-bit integer";
			rc = -EINVAL;
			break;
		}
		*(uint64_t *)(void *)dst = (uint64_t)u;
		break;
	}
	case K_DOUBLE:
		rc = util_parse_double(&d, v, s->min, s->max);
		if (rc == 0)
			*(double *)(void *)dst = d;
		else
			why = "must be a number in";
		break;
	case K_ENUM:
		rc = -EINVAL;
		for (int k = 0; s->names[k] != NULL; k++) {
			if (strcasecmp(v, s->names[k]) == 0) {
				*(int *)(void *)dst = k;
				rc = 0;
				break;
			}
		}
		if (rc != 0)
			why = "must be one of";
		break;
	case K_INTLIST:
		rc = parse_intlist((int *)(void *)dst, &cfg->model.n_hidden, v, (int)s->min,
		                   (int)s->max);
		if (rc != 0)
			why = "must be a comma-separated list of";
		break;
	case K_CIRCLES:
		rc = parse_circles(cfg, (uint32_t *)(void *)dst, v, &why);
		break;
	case K_STANDARDIZE: {
		bool named = false;
		dst[0] = '\0';
		for (int k = 0; s->names[k] != NULL && !named; k++)
			if (strcasecmp(v, s->names[k]) == 0) {
				cfg->training.standardize = (enum config_standardize)k;
				named = true;
			}
		if (named)
			break;
		cfg->training.standardize = CONFIG_STD_FILE;
		if (v[0] == '\0') {
			why = "empty path";
			rc = -EINVAL;
		} else if (resolve_path(dst, s->size, cfg->dir, v) != 0) {
			why = "path too long";
			rc = -EINVAL;
		}
		break;
	}
	case K_PUBKEY:
		rc = decode_pubkey(((struct config_peer *)base)->public_key_bin, v);
		if (rc != 0) {
			why = "must be a 44-character base64 key from `sotto pubkey`";
			break;
		}
		snprintf(dst, s->size, "%s", v);
		break;
	}
	if (rc != 0 && line > 0) {
		/* Messages that end in "in"/"of" get the documented range. */
		size_t wl = strlen(why);
		if (wl > 3 &&
		    (strcmp(why + wl - 3, " in") == 0 || strcmp(why + wl - 3, " of") == 0))
			config_error_add(cfg, line, v, "[%s] %s %s %s", section_names[s->section],
			                 s->key, why, s->range);
		else
			config_error_add(cfg, line, v, "[%s] %s %s", section_names[s->section],
			                 s->key, why);
	}
	return rc != 0 ? -EINVAL : 0;
}

static const struct key_spec *spec_find(enum section sec, const char *key)
{
	for (size_t i = 0; i < N_SPECS; i++) {
		if (key_specs[i].section == sec && strcasecmp(key_specs[i].key, key) == 0)
			return &key_specs[i];
	}
	return NULL;
}

/* --- the line reader and the inih handler ------------------------------- */

static void reader_section(struct parse_state *st, char *p)
{
	struct config *cfg = st->cfg;
	char *close = strchr(p, ']');
	char *rest;
	int sec = -1;

	if (close == NULL) {
		config_error_add(cfg, st->line, p, "section header is missing ']'");
		st->cur = SEC_SKIP;
		return;
	}
	*close = '\0';
	rest = close + 1;
	while (*rest == ' ' || *rest == '\t' || *rest == '\r' || *rest == '\n')
		rest++;
	if (*rest != '\0' && *rest != ';' && *rest != '#')
		config_error_add(cfg, st->line, rest, "unexpected text after section header");
	for (int i = 0; i < SEC_COUNT; i++) {
		if (strcasecmp(p + 1, section_names[i]) == 0)
			sec = i;
	}
	if (sec < 0) {
		config_error_add(
		        cfg, st->line, p + 1,
		        "unknown section (expected Node, Model, Training, Gossip or Peer)");
		st->cur = SEC_SKIP;
		return;
	}
	if (sec == SEC_PEER) {
		struct config_peer *peer;
		if (cfg->n_peers >= CONFIG_MAX_PEERS) {
			config_error_add(cfg, st->line, "[Peer]", "too many peers (at most %d)",
			                 CONFIG_MAX_PEERS);
			st->cur = SEC_SKIP;
			return;
		}
		if (cfg->n_peers == st->peers_cap) {
			size_t cap = st->peers_cap ? st->peers_cap * 2 : 8;
			void *np = realloc(cfg->peers, cap * sizeof(*cfg->peers));
			if (np == NULL) {
				config_error_add(cfg, st->line, NULL, "out of memory");
				st->cur = SEC_SKIP;
				return;
			}
			cfg->peers = np;
			st->peers_cap = cap;
		}
		peer = &cfg->peers[cfg->n_peers++];
		memset(peer, 0, sizeof(*peer));
		peer->line = st->line;
	} else if (st->section_line[sec] != 0) {
		config_error_add(cfg, st->line, p + 1, "duplicate section (first at line %d)",
		                 st->section_line[sec]);
		st->cur = SEC_SKIP;
		return;
	}
	if (st->section_line[sec] == 0)
		st->section_line[sec] = st->line;
	st->cur = (enum section)sec;
}

/*
 * Hands inih one line at a time, counting lines and lexing just enough to
 * track sections and report lines inih would reject. A line we report is
 * passed on empty, so inih neither double-reports nor mis-parses it.
 */
static char *config_reader(char *str, int num, void *stream)
{
	struct parse_state *st = stream;
	const char *start, *nl;
	size_t n;
	char *p;

	if (st->stopped || st->pos >= st->len)
		return NULL;
	start = st->text + st->pos;
	nl = memchr(start, '\n', st->len - st->pos);
	n = nl != NULL ? (size_t)(nl - start) + 1 : st->len - st->pos;
	st->pos += n;
	st->line++;
	str[0] = '\0';
	if (st->line > CONFIG_MAX_LINES) {
		config_error_add(st->cfg, st->line, NULL, "file too long (at most %d lines)",
		                 CONFIG_MAX_LINES);
		st->stopped = true;
		return NULL;
	}
	if (memchr(start, '\0', n) != NULL) {
		config_error_add(st->cfg, st->line, NULL, "NUL byte in line");
		return str;
	}
	if (n + 2 > (size_t)num) {
		config_error_add(st->cfg, st->line, start, "line too long (at most %d characters)",
		                 num - 3);
		return str;
	}
	if (st->line == 1 && n >= 3 && memcmp(start, "\xEF\xBB\xBF", 3) == 0) { /* UTF-8 BOM */
		start += 3;
		n -= 3;
	}
	/* Leading whitespace is dropped: no multi-line values in sotto configs. */
	while (n > 0 && (*start == ' ' || *start == '\t')) {
		start++;
		n--;
	}
	memcpy(str, start, n);
	str[n] = '\0';
	p = str;
	if (*p == '\0' || *p == '\r' || *p == '\n' || *p == ';' || *p == '#')
		return str;
	if (*p == '[') {
		char copy[512];
		snprintf(copy, sizeof(copy), "%s", p);
		copy[strcspn(copy, "\r\n")] = '\0';
		reader_section(st, copy);
		str[0] = '\0'; /* we did the section; inih's view is irrelevant */
		return str;
	}
	if (strchr(p, '=') == NULL && strchr(p, ':') == NULL) {
		p[strcspn(p, "\r\n")] = '\0';
		config_error_add(st->cfg, st->line, p, "expected 'Key = Value'");
		str[0] = '\0';
	}
	return str;
}

static int config_handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;
	struct config *cfg = st->cfg;
	const struct key_spec *s;
	void *base = cfg;
	int *seen;

	(void)section; /* we track sections ourselves, see config_reader() */
	if (st->cur == SEC_SKIP)
		return 1;
	if (st->cur == SEC_NONE) {
		config_error_add(cfg, st->line, name, "key outside of any section");
		return 1;
	}
	s = spec_find(st->cur, name);
	if (s == NULL) {
		config_error_add(cfg, st->line, name, "unknown key in [%s]",
		                 section_names[st->cur]);
		return 1;
	}
	if (st->cur == SEC_PEER) {
		struct config_peer *peer = &cfg->peers[cfg->n_peers - 1];
		base = peer;
		seen = (int *)(void *)((char *)peer + s->line_offset);
	} else {
		seen = &st->seen[s - key_specs];
	}
	if (*seen != 0) {
		config_error_add(cfg, st->line, name, "duplicate key (first at line %d)", *seen);
		return 1;
	}
	*seen = st->line;
	if (s->line_offset >= 0 && st->cur != SEC_PEER)
		*(int *)(void *)((char *)cfg + s->line_offset) = st->line;
	if (value[0] == '\0' && s->required) {
		config_error_add(cfg, st->line, name, "[%s] %s needs a value",
		                 section_names[st->cur], s->key);
		return 1;
	}
	if (value[0] == '\0') /* optional key left empty: keep the default */
		return 1;
	(void)spec_set(cfg, s, base, value, st->line);
	return 1;
}

/* --- checks across fields ------------------------------------------------ */

/* stat() and access() never block, even on a FIFO; opening one would. */
static void check_readable(struct config *cfg, int line, const char *what, const char *path)
{
	struct stat sb;

	if (stat(path, &sb) != 0 || access(path, R_OK) != 0)
		config_error_add(cfg, line, path, "cannot read %s (%s)", what, strerror(errno));
	else if (!S_ISREG(sb.st_mode))
		config_error_add(cfg, line, path,
		                 "%s is not a regular file (a FIFO, device or "
		                 "directory is refused)",
		                 what);
}

static int key_line(const struct parse_state *st, enum section sec, const char *key)
{
	const struct key_spec *s = spec_find(sec, key);
	return s != NULL ? st->seen[s - key_specs] : 0;
}

static void config_finish(struct parse_state *st)
{
	struct config *cfg = st->cfg;
	int last = st->line > 0 ? st->line : 1;

	cfg->has_node = st->section_line[SEC_NODE] != 0;
	cfg->node.line = st->section_line[SEC_NODE];

	/* Required keys of the single sections. */
	for (size_t i = 0; i < N_SPECS; i++) {
		const struct key_spec *s = &key_specs[i];
		int at;
		if (!s->required || s->section == SEC_PEER || st->seen[i] != 0)
			continue;
		if (s->section == SEC_NODE && !cfg->has_node)
			continue;
		/* The trainer process holds the data of an external model. */
		if (s->section == SEC_TRAINING && strcmp(s->key, "Dataset") == 0 &&
		    cfg->model.type == CONFIG_MODEL_EXTERNAL)
			continue;
		at = st->section_line[s->section];
		config_error_add(cfg, at != 0 ? at : last,
		                 at != 0 ? section_names[s->section] : NULL,
		                 "missing required key %s in [%s]%s", s->key,
		                 section_names[s->section], at != 0 ? "" : " (section absent)");
	}

	if (cfg->has_node) {
		if (cfg->node.control_socket[0] == '\0' && cfg->node.data_dir[0] != '\0' &&
		    snprintf(cfg->node.control_socket, sizeof(cfg->node.control_socket),
		             "%s/control.sock",
		             cfg->node.data_dir) >= (int)sizeof(cfg->node.control_socket))
			config_error_add(cfg, cfg->node.line, cfg->node.data_dir,
			                 "DataDir too long for the control socket path");
		if (cfg->node.private_key_file[0] != '\0' && !cfg->virtual_paths) {
			struct stat sb;
			int line = cfg->node.line_private_key_file;
			if (stat(cfg->node.private_key_file, &sb) != 0 ||
			    access(cfg->node.private_key_file, R_OK) != 0)
				config_error_add(cfg, line, cfg->node.private_key_file,
				                 "cannot read PrivateKeyFile (%s; create it with "
				                 "`sotto keygen FILE`)",
				                 strerror(errno));
			else if (!S_ISREG(sb.st_mode))
				config_error_add(cfg, line, cfg->node.private_key_file,
				                 "PrivateKeyFile is not a regular file");
			else if ((sb.st_mode & 077) != 0)
				config_error_add(cfg, line, cfg->node.private_key_file,
				                 "PrivateKeyFile is accessible by group or others "
				                 "(mode %03o; chmod 600 it)",
				                 (unsigned)(sb.st_mode & 0777));
		}
	}

	if (cfg->training.dataset[0] != '\0' && !cfg->virtual_paths)
		check_readable(cfg, key_line(st, SEC_TRAINING, "Dataset"), "Dataset",
		               cfg->training.dataset);
	if (cfg->training.test_set[0] != '\0' && !cfg->virtual_paths)
		check_readable(cfg, key_line(st, SEC_TRAINING, "TestSet"), "TestSet",
		               cfg->training.test_set);

	if (cfg->training.standardize == CONFIG_STD_FILE && !cfg->virtual_paths)
		check_readable(cfg, key_line(st, SEC_TRAINING, "Standardize"), "Standardize",
		               cfg->training.standardize_file);

	if (cfg->training.warmup >= cfg->training.epochs && cfg->training.warmup > 0) {
		char v[32];
		snprintf(v, sizeof(v), "%g", cfg->training.warmup);
		config_error_add(cfg, key_line(st, SEC_TRAINING, "Warmup"), v,
		                 "[Training] Warmup must be less than Epochs (%d)",
		                 cfg->training.epochs);
	}

	if (cfg->training.drift_correction > 0 && cfg->training.optimizer != CONFIG_OPT_SGD) {
		char v[32];
		snprintf(v, sizeof(v), "%g", cfg->training.drift_correction);
		config_error_add(cfg, key_line(st, SEC_TRAINING, "DriftCorrection"), v,
		                 "[Training] DriftCorrection needs Optimizer = sgd (Adam's steps "
		                 "are not a multiple of the gradient)");
	}

	if (cfg->model.type == CONFIG_MODEL_EXTERNAL) {
		/* What an external trainer does itself, or what needs the data here. */
		static const struct {
			int section;
			const char *key;
		} local[] = {
		        {SEC_TRAINING, "Dataset"},        {SEC_TRAINING, "TestSet"},
		        {SEC_TRAINING, "Standardize"},    {SEC_PRIVACY, "Epsilon"},
		        {SEC_PRIVACY, "NoiseMultiplier"}, {SEC_GOSSIP, "Rank"},
		};
		for (size_t i = 0; i < ARRAY_LEN(local); i++)
			if (key_line(st, local[i].section, local[i].key) != 0)
				config_error_add(
				        cfg, key_line(st, local[i].section, local[i].key),
				        local[i].key,
				        "[%s] %s does not apply to [Model] Type = external "
				        "(the trainer process holds the data and trains; "
				        "see docs/external.md)",
				        section_names[local[i].section], local[i].key);
	}

	if (key_line(st, SEC_MODEL, "Hidden") != 0 && cfg->model.type != CONFIG_MODEL_MLP)
		config_error_add(cfg, key_line(st, SEC_MODEL, "Hidden"),
		                 config_model_type_name(cfg->model.type),
		                 "[Model] Hidden applies only to Type = mlp");

	{
		int k = cfg->gossip.group_size;
		int t = cfg->gossip.threshold;
		int line = key_line(st, SEC_GOSSIP, "Threshold");
		/*
		 * t >= max(3, ceil((k + 2) / 2)): a strict majority with one to
		 * spare, so an initiator that shows members different alive sets
		 * still cannot collect t shares of both secrets of one member
		 * (docs/security.md, "Threshold").
		 */
		int tmin = MAX(3, (k + 3) / 2);
		char v[16];
		if (t == 0) {
			cfg->gossip.threshold = tmin;
		} else if (t < tmin || t > k) {
			snprintf(v, sizeof(v), "%d", t);
			config_error_add(cfg, line, v,
			                 "[Gossip] Threshold must be in %d..%d for GroupSize %d "
			                 "(see docs/security.md)",
			                 tmin, k, k);
		}
		if (cfg->has_node && (size_t)(k - 1) > cfg->n_peers) {
			int at = cfg->gossip.line_group_size != 0 ? cfg->gossip.line_group_size
			                                          : cfg->node.line;
			snprintf(v, sizeof(v), "%d", k);
			config_error_add(cfg, at, v,
			                 "[Gossip] GroupSize %d needs at least %d peers, the file "
			                 "lists %zu",
			                 k, k - 1, cfg->n_peers);
		}
	}

	for (size_t i = 0; i < cfg->n_peers; i++) {
		struct config_peer *p = &cfg->peers[i];
		if (!cfg->has_node && i == 0)
			config_error_add(cfg, p->line, "[Peer]",
			                 "[Peer] sections need a [Node] section");
		if (p->line_name == 0)
			config_error_add(cfg, p->line, "[Peer]",
			                 "missing required key Name in [Peer]");
		if (p->line_public_key == 0)
			config_error_add(cfg, p->line, "[Peer]",
			                 "missing required key PublicKey in [Peer]");
		if (p->line_endpoint == 0)
			config_error_add(cfg, p->line, "[Peer]",
			                 "missing required key Endpoint in [Peer]");
		if (p->name[0] != '\0' && strcmp(p->name, cfg->node.name) == 0)
			config_error_add(cfg, p->line_name, p->name,
			                 "peer has the same name as this node");
		for (size_t j = 0; j < i; j++) {
			const struct config_peer *q = &cfg->peers[j];
			if (p->name[0] != '\0' && strcmp(p->name, q->name) == 0)
				config_error_add(cfg, p->line_name, p->name,
				                 "duplicate peer name (first at line %d)",
				                 q->line_name);
			if (p->public_key[0] != '\0' &&
			    sodium_memcmp(p->public_key_bin, q->public_key_bin, 32) == 0 &&
			    q->public_key[0] != '\0')
				config_error_add(cfg, p->line_public_key, p->public_key,
				                 "duplicate peer PublicKey (first at line %d)",
				                 q->line_public_key);
			if (p->endpoint[0] != '\0' && strcmp(p->endpoint, q->endpoint) == 0)
				config_error_add(cfg, p->line_endpoint, p->endpoint,
				                 "duplicate peer Endpoint (first at line %d)",
				                 q->line_endpoint);
		}
	}
}

/* --- entry points ---------------------------------------------------------- */

static void config_defaults(struct config *cfg)
{
	for (size_t i = 0; i < N_SPECS; i++) {
		const struct key_spec *s = &key_specs[i];
		if (s->def != NULL && s->section != SEC_PEER) {
			int rc = spec_set(cfg, s, cfg, s->def, 0);
			SOTTO_ASSERT(rc == 0);
		}
	}
}

static int config_parse(struct config *cfg, const char *text, size_t len)
{
	struct parse_state st;

	memset(&st, 0, sizeof(st));
	st.cfg = cfg;
	st.text = text;
	st.len = len;
	st.cur = SEC_NONE;
	if (sodium_init() < 0) {
		config_error_add(cfg, 0, NULL, "libsodium failed to initialise");
		return -ENOMEM;
	}
	config_defaults(cfg);
	/* inih's own errors are the lines we blanked; we reported them already. */
	(void)ini_parse_stream(config_reader, &st, config_handler, &st);
	config_finish(&st);
	return cfg->n_errors > 0 || cfg->n_errors_dropped > 0 ? -EINVAL : 0;
}

static void config_init_paths(struct config *cfg, const char *path)
{
	const char *slash;
	size_t n;

	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	slash = strrchr(path, '/');
	if (slash == NULL) {
		snprintf(cfg->dir, sizeof(cfg->dir), ".");
		return;
	}
	n = (size_t)(slash - path);
	if (n == 0)
		n = 1; /* "/x.conf": the root */
	if (n >= sizeof(cfg->dir))
		n = sizeof(cfg->dir) - 1;
	memcpy(cfg->dir, path, n);
	cfg->dir[n] = '\0';
}

int config_load(struct config *out, const char *path)
{
	uint8_t *text = NULL;
	size_t len = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	config_init_paths(out, path);
	rc = file_read_all(path, CONFIG_FILE_MAX, &text, &len);
	if (rc != 0) {
		config_error_add(out, 0, path, "cannot read configuration (%s)",
		                 rc == -EFBIG ? "larger than 1 MiB" : err_str(rc));
		return rc;
	}
	rc = config_parse(out, (const char *)text, len);
	free(text);
	return rc;
}

int config_load_string(struct config *out, const char *name, const char *text)
{
	memset(out, 0, sizeof(*out));
	config_init_paths(out, name);
	snprintf(out->dir, sizeof(out->dir), ".");
	return config_parse(out, text, strlen(text));
}

int config_load_virtual(struct config *out, const char *name, const char *text)
{
	memset(out, 0, sizeof(*out));
	out->virtual_paths = true;
	config_init_paths(out, name);
	snprintf(out->dir, sizeof(out->dir), ".");
	return config_parse(out, text, strlen(text));
}

void config_fini(struct config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->peers);
	free(cfg->errors);
	cfg->peers = NULL;
	cfg->errors = NULL;
	cfg->n_peers = 0;
	cfg->n_errors = 0;
}

const char *config_model_type_name(enum config_model_type t)
{
	return (size_t)t < ARRAY_LEN(model_names) - 1 ? model_names[t] : "?";
}

/*
 * Keys a running node takes from a reloaded config (`sotto reload`); every
 * other key outside [Peer] must stay as it is. The peers and their circles
 * are compared by the node itself.
 */
static const struct {
	enum section section;
	const char *key;
} live_keys[] = {
        {SEC_NODE, "LogLevel"},   {SEC_NODE, "PrivateKeyFile"}, /* the node compares the key */
        {SEC_GOSSIP, "Interval"}, {SEC_GOSSIP, "RoundTimeout"},
        {SEC_GOSSIP, "Rounds"},   {SEC_GOSSIP, "EvalEvery"},
};

static bool key_live(const struct key_spec *s)
{
	for (size_t i = 0; i < ARRAY_LEN(live_keys); i++) {
		if (live_keys[i].section == s->section && strcmp(live_keys[i].key, s->key) == 0)
			return true;
	}
	return false;
}

static bool key_same(const struct key_spec *s, const struct config *a, const struct config *b)
{
	const char *pa = (const char *)a + s->offset, *pb = (const char *)b + s->offset;

	switch (s->type) {
	case K_NAME:
	case K_PATH:
	case K_LISTEN:
	case K_ENDPOINT:
	case K_PUBKEY:
		return strncmp(pa, pb, s->size) == 0;
	case K_STANDARDIZE:
		return a->training.standardize == b->training.standardize &&
		       strncmp(pa, pb, s->size) == 0;
	case K_INTLIST:
		return a->model.n_hidden == b->model.n_hidden &&
		       memcmp(pa, pb, (size_t)a->model.n_hidden * sizeof(int)) == 0;
	default:
		return memcmp(pa, pb, s->size) == 0;
	}
}

size_t config_reload_diff(const struct config *running, const struct config *next, char *buf,
                          size_t cap)
{
	size_t n = 0, used = 0;

	if (cap > 0)
		buf[0] = '\0';
	if (running->has_node != next->has_node) {
		if (cap > 0)
			used = (size_t)snprintf(buf, cap, "[Node]");
		n++;
	}
	for (size_t i = 0; i < N_SPECS; i++) {
		const struct key_spec *s = &key_specs[i];
		int w;
		if (s->section == SEC_PEER || key_live(s) || key_same(s, running, next))
			continue;
		n++;
		if (used >= cap)
			continue;
		w = snprintf(buf + used, cap - used, "%s[%s] %s", used > 0 ? ", " : "",
		             section_names[s->section], s->key);
		used = w < 0 ? cap : MIN(cap, used + (size_t)w);
	}
	return n;
}

bool config_key_reloads(const char *section, const char *key)
{
	for (size_t i = 0; i < ARRAY_LEN(live_keys); i++) {
		if (strcmp(section_names[live_keys[i].section], section) == 0 &&
		    strcmp(live_keys[i].key, key) == 0)
			return true;
	}
	return strcmp(section, "Peer") == 0;
}

size_t config_key_docs(const struct config_key_doc **out)
{
	static struct config_key_doc docs[N_SPECS];

	for (size_t i = 0; i < N_SPECS; i++) {
		docs[i].section = section_names[key_specs[i].section];
		docs[i].key = key_specs[i].key;
		docs[i].def = key_specs[i].def;
		docs[i].range = key_specs[i].range;
		docs[i].help = key_specs[i].help;
		docs[i].required = key_specs[i].required;
	}
	*out = docs;
	return N_SPECS;
}
