/*
 * main.c: `sotto-sim`, the simulator's command line (docs/simulation.md).
 *
 *   sotto-sim run  [options]   one simulated cluster; bench/cluster.sh's
 *                              figures (progress.dat, summary.txt)
 *   sotto-sim vopr [options]   fault exploration: many seeds, each a random
 *                              cluster under random kills, restarts,
 *                              partitions, message faults and silent
 *                              members, every invariant checked; a failing
 *                              seed prints the command that replays it
 *
 * Not here: the simulation itself (sim.c).
 */
#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sim/rand.h"
#include "sim/sim.h"
#include "util/log.h"
#include "util/rng.h"
#include "util/util.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: sotto-sim run [options]\n"
	        "       sotto-sim vopr [--seeds N] [--first S] [--seconds S] [options]\n"
	        "\n"
	        "cluster (defaults: bench/cluster.sh's 16-node MNIST run, 125 s):\n"
	        "  -n, --nodes N          nodes (16)\n"
	        "  -s, --seconds S        virtual seconds (125)\n"
	        "      --seed S           the run's seed (1): same seed, same run\n"
	        "  -g, --gossip 'K = V;..' extra [Gossip] keys (as bench/cluster.sh -g)\n"
	        "  -e, --epochs E         [Training] Epochs (20)\n"
	        "      --schedule bench|config  bench/cluster.sh's schedule (Interval 1, "
	        "RoundTimeout\n"
	        "                         5, EvalEvery 2, LocalEpochs 0.25) or the config "
	        "defaults\n"
	        "                         (Interval 10, RoundTimeout 30, EvalEvery 5, LocalEpochs "
	        "1)\n"
	        "      --training 'K = V;..' [Training] keys instead of the bench's\n"
	        "      --model 'K = V;..' [Model] keys instead of MLP 784-128-10\n"
	        "      --privacy 'K = V;..' [Privacy] keys (DP-SGD; noise from the seed)\n"
	        "      --data mnist|synth|TRAIN,TEST  the bundled MNIST split, the synthetic\n"
	        "                         task, or two dataset files (`sotto data`): TRAIN split\n"
	        "                         Dirichlet(alpha) over the sites, every site tested on "
	        "TEST\n"
	        "      --rows R --dims D  synthetic: rows per node (500), dimensions (64)\n"
	        "      --alpha A          Dirichlet concentration of the split (0.5)\n"
	        "      --degree D         about D peers per site: two circles of D/2+1, as\n"
	        "                         `sotto init --degree` (0: everyone; at least 4)\n"
	        "      --root DIR         repository root, for data/ (.)\n"
	        "network:\n"
	        "  -r, --rate R           every node's up and down rate: 3mbit, 100kbit, ...\n"
	        "      --latency MS       one-way latency per link (0)\n"
	        "      --slow N:R         the first N nodes get rate R instead\n"
	        "      --loss P --dup P --delay P --delay-max S   message faults\n"
	        "machine:\n"
	        "      --cores C          processors shared by all nodes (2; 0: one per thread)\n"
	        "      --cpu-scale F      multiply every modelled cost (1)\n"
	        "      --eval-rows N      evaluate on the first N test rows (all)\n"
	        "faults:\n"
	        "      --kill-rate K      kills per node per virtual minute (0)\n"
	        "      --restart-after S  mean downtime of a killed node (5)\n"
	        "      --partition-rate P partitions per virtual minute (0), --partition-s S\n"
	        "      --silent F         fraction of nodes that go silent after ACCEPT\n"
	        "output:\n"
	        "  -t, --target A         mean accuracy target (0.93); -x: stop there\n"
	        "  -o, --out DIR          write DIR/progress.dat and DIR/summary.txt\n"
	        "  -q, --quiet            no progress lines; -v: the nodes' info log\n"
	        "      --no-verify        do not record inputs nor check applied rounds (faster)\n"
	        "checking the checker:\n"
	        "      --break sum|differ|abort|nan  corrupt one record or model on purpose:\n"
	        "                         the run must then report a violation and exit 3\n");
}

static double parse_rate(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (strcmp(end, "gbit") == 0)
		return v * 1e9;
	if (strcmp(end, "mbit") == 0)
		return v * 1e6;
	if (strcmp(end, "kbit") == 0)
		return v * 1e3;
	if (strcmp(end, "bit") == 0 || *end == '\0')
		return v;
	return -1;
}

/* "K = V;K = V" -> "K = V\nK = V\n" (malloc'd) */
static char *keys_to_lines(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(n + 2);

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		out[i] = s[i] == ';' ? '\n' : s[i];
	out[n] = '\n';
	out[n + 1] = '\0';
	return out;
}

static const struct option longopts[];

static const char *optname(int ch)
{
	static char b[3] = "-?";

	for (const struct option *o = longopts; o->name != NULL; o++) {
		if (o->val == ch)
			return o->name;
	}
	b[1] = (char)ch;
	return b;
}

/* A number in [lo, hi] or a clear error and exit 2. */
static double darg(int ch, const char *s, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0' || errno != 0 || !(v >= lo && v <= hi)) {
		fprintf(stderr, "sotto-sim: --%s: '%s' is not a number in [%g, %g]\n", optname(ch),
		        s, lo, hi);
		exit(2);
	}
	return v;
}

static uint64_t uarg(int ch, const char *s, uint64_t lo, uint64_t hi)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (end == s || *end != '\0' || errno != 0 || s[0] == '-' || v < lo || v > hi) {
		fprintf(stderr, "sotto-sim: --%s: '%s' is not a whole number in [%llu, %llu]\n",
		        optname(ch), s, (unsigned long long)lo, (unsigned long long)hi);
		exit(2);
	}
	return v;
}

static const struct option longopts[] = {
        {"nodes", required_argument, NULL, 'n'},
        {"seconds", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, 1},
        {"gossip", required_argument, NULL, 'g'},
        {"epochs", required_argument, NULL, 'e'},
        {"training", required_argument, NULL, 2},
        {"model", required_argument, NULL, 3},
        {"privacy", required_argument, NULL, 40},
        {"data", required_argument, NULL, 4},
        {"rows", required_argument, NULL, 5},
        {"dims", required_argument, NULL, 6},
        {"alpha", required_argument, NULL, 7},
        {"degree", required_argument, NULL, 8},
        {"root", required_argument, NULL, 9},
        {"rate", required_argument, NULL, 'r'},
        {"latency", required_argument, NULL, 10},
        {"slow", required_argument, NULL, 11},
        {"loss", required_argument, NULL, 12},
        {"dup", required_argument, NULL, 13},
        {"delay", required_argument, NULL, 14},
        {"delay-max", required_argument, NULL, 15},
        {"cores", required_argument, NULL, 16},
        {"cpu-scale", required_argument, NULL, 17},
        {"eval-rows", required_argument, NULL, 18},
        {"kill-rate", required_argument, NULL, 19},
        {"restart-after", required_argument, NULL, 20},
        {"partition-rate", required_argument, NULL, 21},
        {"partition-s", required_argument, NULL, 22},
        {"silent", required_argument, NULL, 23},
        {"target", required_argument, NULL, 't'},
        {"out", required_argument, NULL, 'o'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"seeds", required_argument, NULL, 24},
        {"first", required_argument, NULL, 25},
        {"break", required_argument, NULL, 26},
        {"schedule", required_argument, NULL, 27},
        {"no-verify", no_argument, NULL, 28},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
};

struct cli {
	struct sim_opts o;
	const char *out;
	bool quiet;
	int epochs;
	const char *training, *model, *privacy;
	uint64_t seeds, first;
	bool seconds_set;
	const char *break_arg;
	char *owned[4];
};

static int parse(struct cli *c, int argc, char **argv)
{
	int ch;

	while ((ch = getopt_long(argc, argv, "n:s:g:e:r:t:o:qvxh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			c->o.nodes = (uint32_t)uarg(ch, optarg, 3, SIM_MAX_NODES);
			break;
		case 's':
			c->o.seconds = darg(ch, optarg, 0.001, 1e7);
			c->seconds_set = true;
			break;
		case 1:
			c->o.seed = uarg(ch, optarg, 0, UINT64_MAX);
			break;
		case 'g':
			c->o.gossip_keys = optarg;
			break;
		case 'e':
			c->epochs = (int)uarg(ch, optarg, 1, 100000);
			break;
		case 2:
			c->training = optarg;
			break;
		case 3:
			c->model = optarg;
			break;
		case 40:
			c->privacy = optarg;
			break;
		case 4:
			if (strcmp(optarg, "synth") == 0)
				c->o.data = SIM_DATA_SYNTH;
			else if (strcmp(optarg, "mnist") == 0)
				c->o.data = SIM_DATA_MNIST;
			else if (strchr(optarg, ',') != NULL && strchr(optarg, ',')[1] != '\0' &&
			         optarg[0] != ',') {
				char *comma = strchr(optarg, ',');
				*comma = '\0'; /* optarg is argv's: ours to cut */
				c->o.data = SIM_DATA_FILES;
				c->o.train_path = optarg;
				c->o.test_path = comma + 1;
			} else
				return -1;
			break;
		case 5:
			c->o.synth_rows = (uint32_t)uarg(ch, optarg, 1, 1000000);
			break;
		case 6:
			c->o.synth_dims = (uint32_t)uarg(ch, optarg, 1, 100000);
			break;
		case 7:
			c->o.alpha = darg(ch, optarg, 1e-6, 1e6);
			break;
		case 8:
			c->o.degree = (uint32_t)uarg(ch, optarg, 0, SIM_MAX_NODES);
			if (c->o.degree > 0 && c->o.degree < 4) {
				fprintf(stderr,
				        "sotto-sim: --degree: at least 4 (two circles of 3), "
				        "or 0 for everyone\n");
				exit(2);
			}
			break;
		case 9:
			c->o.root = optarg;
			break;
		case 'r':
			c->o.link.rate_bps = parse_rate(optarg);
			if (c->o.link.rate_bps <= 0) {
				fprintf(stderr,
				        "sotto-sim: --rate: '%s' is not a rate (3mbit, 100kbit, "
				        "...)\n",
				        optarg);
				exit(2);
			}
			break;
		case 10:
			c->o.link.latency_s = darg(ch, optarg, 0, 1e6) / 1000.0;
			break;
		case 11: {
			char *colon = strchr(optarg, ':');
			if (colon == NULL)
				return -1;
			c->o.slow_nodes =
			        (uint32_t)strtoul(optarg, NULL, 10); /* digits up to ':' */
			c->o.slow_link.rate_bps = parse_rate(colon + 1);
			if (c->o.slow_link.rate_bps < 0)
				return -1;
			break;
		}
		case 12:
			c->o.fault.loss = darg(ch, optarg, 0, 1);
			break;
		case 13:
			c->o.fault.dup = darg(ch, optarg, 0, 1);
			break;
		case 14:
			c->o.fault.delay = darg(ch, optarg, 0, 1);
			break;
		case 15:
			c->o.fault.delay_max_s = darg(ch, optarg, 0, 3600);
			break;
		case 16:
			c->o.cores = (uint32_t)uarg(ch, optarg, 0, 1024);
			break;
		case 17:
			c->o.cpu_scale = darg(ch, optarg, 0, 1e6);
			break;
		case 18:
			c->o.eval_rows = (uint32_t)uarg(ch, optarg, 0, UINT32_MAX);
			break;
		case 19:
			c->o.kill_rate = darg(ch, optarg, 0, 1000);
			break;
		case 20:
			c->o.restart_after_s = darg(ch, optarg, 0, 1e6);
			break;
		case 21:
			c->o.partition_rate = darg(ch, optarg, 0, 1000);
			break;
		case 22:
			c->o.partition_s = darg(ch, optarg, 0, 1e6);
			break;
		case 23:
			c->o.silent_frac = darg(ch, optarg, 0, 1);
			break;
		case 't':
			c->o.target = darg(ch, optarg, 0, 2);
			break;
		case 'o':
			c->out = optarg;
			break;
		case 'q':
			c->quiet = true;
			break;
		case 'v':
			c->o.log_level =
			        c->o.log_level == LOG_LEVEL_INFO ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
			break;
		case 'x':
			c->o.stop_at_target = true;
			break;
		case 24:
			c->seeds = uarg(ch, optarg, 1, UINT64_MAX);
			break;
		case 25:
			c->first = uarg(ch, optarg, 0, UINT64_MAX);
			break;
		case 26:
			c->break_arg = optarg;
			if (strcmp(optarg, "sum") == 0)
				c->o.breakage = SIM_BREAK_SUM;
			else if (strcmp(optarg, "differ") == 0)
				c->o.breakage = SIM_BREAK_DIFFER;
			else if (strcmp(optarg, "abort") == 0)
				c->o.breakage = SIM_BREAK_ABORT;
			else if (strcmp(optarg, "nan") == 0)
				c->o.breakage = SIM_BREAK_NAN;
			else
				return -1;
			break;
		case 28:
			c->o.verify = false;
			break;
		case 27:
			if (strcmp(optarg, "bench") == 0)
				c->o.config_schedule = false;
			else if (strcmp(optarg, "config") == 0)
				c->o.config_schedule = true;
			else
				return -1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	return optind == argc ? 0 : -1;
}

/* [Training] keys: the bench's, or the user's, with -e's Epochs. */
static int training_keys(struct cli *c)
{
	char buf[1024];
	const char *base = c->training != NULL ? c->training
	                   : c->o.config_schedule
	                           ? "LearningRate = 0.05;Momentum = 0.9"
	                           : "LearningRate = 0.05;Momentum = 0.9;BatchSize = 32;"
	                             "LocalEpochs = 0.25";

	snprintf(buf, sizeof(buf), "%s;Epochs = %d", base, c->epochs > 0 ? c->epochs : 20);
	c->owned[0] = keys_to_lines(buf);
	c->o.training_keys = c->owned[0];
	if (c->model != NULL) {
		c->owned[1] = keys_to_lines(c->model);
		c->o.model_keys = c->owned[1];
	}
	if (c->privacy != NULL) {
		c->owned[2] = keys_to_lines(c->privacy);
		c->o.privacy_keys = c->owned[2];
		if (c->owned[2] == NULL)
			return -1;
	}
	return c->owned[0] != NULL ? 0 : -1;
}

static int cmd_run(struct cli *c)
{
	struct sim_result r;
	FILE *prog = NULL, *sum = stdout;
	char path[4096];
	int rc;

	if (c->out != NULL) {
		if (mkdir(c->out, 0755) != 0 && errno != EEXIST) {
			perror(c->out);
			return 1;
		}
		snprintf(path, sizeof(path), "%s/progress.dat", c->out);
		prog = fopen(path, "w");
		snprintf(path, sizeof(path), "%s/summary.txt", c->out);
		sum = fopen(path, "w");
		if (prog == NULL || sum == NULL) {
			perror(path);
			return 1;
		}
	}
	c->o.progress = prog;
	c->o.log = c->quiet ? NULL : stderr;
	rc = sim_run(&c->o, &r);
	if (prog != NULL)
		fclose(prog);
	if (rc != 0) {
		fprintf(stderr, "sotto-sim: the simulation could not start\n");
		return 1;
	}
	sim_result_print(sum, &c->o, &r);
	if (sum != stdout) {
		fclose(sum);
		if (!c->quiet)
			sim_result_print(stdout, &c->o, &r);
	}
	return r.verify.violations > 0 ? 3 : 0;
}

/*
 * Fault exploration (VOPR): seed s draws a small cluster and a storm of
 * faults from itself, runs it and checks every invariant. The first
 * failing seed is printed with the command that replays it exactly.
 */
static int cmd_vopr(struct cli *c)
{
	uint64_t n = c->seeds ? c->seeds : 20, failed = 0, rounds = 0, apps = 0, kills = 0;
	double wall = 0;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t seed = c->first + i;
		struct sim_opts o = c->o;
		struct sim_result r;
		char gossip[256];
		struct rng g;
		uint32_t k;
		int rc;

		rng_seed3(&g, seed, 0x0, 0x7);
		o.seed = seed;
		o.nodes = 4 + rng_below(&g, 5);
		/* k <= n - 1: with k = n every busy or dead node blocks every round */
		k = 3 + rng_below(&g, MIN(o.nodes - 3, 4));
		snprintf(gossip, sizeof(gossip),
		         "GroupSize = %u;Interval = 0.5;RoundTimeout = %.1f;EvalEvery = 50%s", k,
		         0.5 + 2.0 * rng_uniform(&g),
		         rng_below(&g, 3) == 0 ? ";Codec = fixed;Bits = 8" : "");
		o.gossip_keys = gossip;
		o.data = SIM_DATA_SYNTH;
		o.model_keys = "Type = mlp\nHidden = 16\nSeed = 1\n";
		o.synth_dims = 16;
		o.synth_rows = 100;
		o.synth_test_rows = 200;
		if (!c->seconds_set)
			o.seconds = 60;
		o.kill_rate = 1.0 + 4.0 * rng_uniform(&g);
		o.restart_after_s = 1.0 + 4.0 * rng_uniform(&g);
		o.partition_rate = rng_below(&g, 2) ? 2.0 * rng_uniform(&g) : 0;
		o.partition_s = 2.0 + 8.0 * rng_uniform(&g);
		/* one silent member, when the others can still form a group */
		o.silent_frac = rng_below(&g, 4) == 0 && o.nodes - 1 >= k ? 1.0 / o.nodes : 0;
		o.fault.loss = 0.01 * rng_uniform(&g);
		o.fault.dup = 0.02 * rng_uniform(&g);
		o.fault.delay = 0.05 * rng_uniform(&g);
		o.fault.delay_max_s = 1.0;
		o.link.latency_s = 0.001 + 0.02 * rng_uniform(&g);
		/*
		 * Low-rank chains ([Gossip] Rank) in one seed of three: 300
		 * features make the first layer (16 x 300) large enough for them.
		 * Drawn last, so the other seeds' draws stay as they were.
		 */
		if (rng_below(&g, 3) == 0) {
			size_t len = strlen(gossip);
			snprintf(gossip + len, sizeof(gossip) - len, ";Rank = 2");
			o.synth_dims = 300;
		}
		o.target = 2; /* never: run the whole time */
		o.progress = NULL;
		o.log = NULL;
		if (o.log_level > LOG_LEVEL_INFO)
			o.log_level = LOG_LEVEL_ERROR; /* the nodes' warnings only with -v */
		o.verify = true;
		rc = sim_run(&o, &r);
		wall += r.wall_s;
		if (rc != 0) {
			fprintf(stderr, "vopr: seed %llu could not start\n",
			        (unsigned long long)seed);
			return 1;
		}
		rounds += r.verify.rounds_applied;
		apps += r.verify.applications;
		kills += r.kills;
		if (r.verify.violations > 0 || r.verify.rounds_applied == 0) {
			failed++;
			printf("vopr: seed %llu FAILED: %s\n  replay: sotto-sim vopr --seeds 1 "
			       "--first "
			       "%llu -s %g%s%s%s%s -v\n",
			       (unsigned long long)seed,
			       r.verify.violations > 0 ? r.verify.first
			                               : "no round was ever applied",
			       (unsigned long long)seed, o.seconds, c->o.root[0] ? " --root " : "",
			       c->o.root, c->break_arg != NULL ? " --break " : "",
			       c->break_arg != NULL ? c->break_arg : "");
		} else if (!c->quiet) {
			printf("vopr: seed %llu ok: %u nodes, k %u, %llu kills, %llu partitions, "
			       "%llu "
			       "rounds verified\n",
			       (unsigned long long)seed, o.nodes, k, (unsigned long long)r.kills,
			       (unsigned long long)r.partitions,
			       (unsigned long long)r.verify.rounds_applied);
		}
	}
	printf("vopr: %llu seeds from %llu, %llu failed; %llu rounds and %llu applications "
	       "verified exactly, %llu kills; %.1f s of wall time\n",
	       (unsigned long long)n, (unsigned long long)c->first, (unsigned long long)failed,
	       (unsigned long long)rounds, (unsigned long long)apps, (unsigned long long)kills,
	       wall);
	return failed > 0 ? 3 : 0;
}

int main(int argc, char **argv)
{
	struct cli c;
	int rc;

	if (argc < 2 || (strcmp(argv[1], "run") != 0 && strcmp(argv[1], "vopr") != 0)) {
		usage(argc < 2 ? stderr : (strcmp(argv[1], "-h") == 0 ? stdout : stderr));
		return argc >= 2 && strcmp(argv[1], "-h") == 0 ? 0 : 2;
	}
	/* Deterministic randomness, before anything initialises libsodium. */
	if (sim_rand_install() != 0 || sodium_init() < 0) {
		fprintf(stderr, "sotto-sim: cannot initialise libsodium\n");
		return 1;
	}
	memset(&c, 0, sizeof(c));
	sim_opts_default(&c.o);
	if (parse(&c, argc - 1, argv + 1) != 0) {
		usage(stderr);
		return 2;
	}
	if (training_keys(&c) != 0)
		return 1;
	rc = strcmp(argv[1], "run") == 0 ? cmd_run(&c) : cmd_vopr(&c);
	for (size_t i = 0; i < ARRAY_LEN(c.owned); i++)
		free(c.owned[i]);
	return rc;
}
