/*
 * sim.h: a deterministic simulator of many sotto nodes in one process.
 *
 * Every simulated node is the real node core (node/gossip.h) with the real
 * round (secagg/round.h), codec, cryptography and training (learn/); what
 * is simulated is the world around them, in virtual time:
 *
 *   network  per node an uplink and a downlink of a given rate (FIFO, as
 *            `tc tbf` shapes each namespace in bench/cluster.sh), a
 *            latency, and per message faults: loss, duplication, delay
 *            (reordering), partitions; frames carry the sealing overhead
 *            and, on the wire, TCP/IP headers per 1448-byte segment
 *   CPU      each node's event loop and training worker are sequential
 *            servers; their work (a modelled cost per message, step,
 *            apply, evaluation) shares `cores` processors (0: one each)
 *   worker   node/trainer.c paces training exactly as the daemon's worker
 *            does; applies, evaluations and checkpoints (kept in memory)
 *            take their modelled time
 *   faults   kills at a time or at a protocol phase (the chaos harness's
 *            kill points), restarts from the last checkpoint, partitions,
 *            silent members, message faults
 *
 * randombytes is made deterministic (sim/rand.h), every tie in the event
 * queue is broken by insertion order, and costs are modelled, never
 * measured: a seed gives the same run bit for bit, on any machine. See
 * docs/simulation.md.
 *
 * Not here: sockets, threads, files (the daemon's shell, node/daemon.c).
 */
#ifndef SOTTO_SIM_SIM_H
#define SOTTO_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SIM_MAX_NODES 20000

/* One direction of a node's access link. */
struct sim_link {
	double rate_bps;  /* 0: unlimited */
	double latency_s; /* one way, added once per message */
	double loss;      /* probability a message is lost */
	double dup;       /* probability it arrives twice */
	double delay;     /* probability it is held back by up to delay_max_s */
	double delay_max_s;
};

enum sim_data {
	SIM_DATA_MNIST, /* the bundled 8,000 / 2,000 images, split Dirichlet(alpha) */
	SIM_DATA_SYNTH, /* docs/simulation.md: Gaussian clusters, rows per node */
	SIM_DATA_FILES, /* train_path, split Dirichlet(alpha), and test_path */
};

/* What the run's verification found (the chaos harness's invariants). */
/* What --break corrupts, once per run, so a test can see the checker catch it. */
enum sim_break {
	SIM_BREAK_NONE,
	SIM_BREAK_SUM,    /* one recorded input word: the applied ring is not its sum */
	SIM_BREAK_DIFFER, /* one node's applied ring: two nodes applied different sums */
	SIM_BREAK_ABORT,  /* one applied round is recorded as aborted by its initiator */
	SIM_BREAK_NAN,    /* one node's published model gets a NaN */
};

struct sim_verify {
	uint64_t rounds_applied;  /* distinct rounds some node applied */
	uint64_t applications;    /* node applications checked */
	uint64_t violations;      /* anything below that failed */
	uint64_t sum_mismatch;    /* an applied ring != the sum of its counted inputs */
	uint64_t applied_aborted; /* applied although its initiator aborted it */
	uint64_t result_differs;  /* two nodes applied different rings for one round */
	uint64_t stuck;           /* a node in one round for longer than the protocol allows */
	uint64_t nonfinite;       /* NaN/Inf in a published model */
	uint64_t no_progress;     /* windows without any completed round */
	char first[256];          /* the first violation, described */
};

struct sim_opts {
	uint32_t nodes;
	uint64_t seed;
	double seconds;   /* virtual seconds to run */
	const char *root; /* repository root (for data/); "." by default */
	enum sim_data data;
	double alpha;        /* Dirichlet concentration of the split */
	uint64_t split_seed; /* 7: bench/cluster.sh's */
	uint32_t synth_dims, synth_classes, synth_rows, synth_test_rows;
	const char *train_path, *test_path; /* SIM_DATA_FILES: dataset files (sotto data) */
	/* the per-site config, as cluster-init.sh writes it; NULL: its defaults */
	const char *model_keys;    /* [Model] body, e.g. "Type = mlp\nHidden = 128\nSeed = 42\n" */
	const char *training_keys; /* [Training] keys besides Dataset/TestSet */
	const char *gossip_keys;   /* [Gossip] keys; "Key = Value;Key = Value" also accepted */
	const char *privacy_keys;  /* [Privacy] body; NULL: none (DP-SGD off) */
	uint32_t degree;      /* peers per site: 0 = everyone, else a random D-regular overlay */
	struct sim_link link; /* every node's uplink and downlink */
	uint32_t slow_nodes;  /* the first slow_nodes nodes get slow_link instead */
	struct sim_link slow_link;
	uint32_t cores;       /* shared processors; 0: every thread has its own */
	double cpu_scale;     /* multiplies every modelled cost (1: this machine) */
	uint32_t eval_rows;   /* evaluate on the first eval_rows test rows (0: all) */
	double probe_every_s; /* progress lines (2 s, as bench/cluster.sh polls) */
	double target;        /* mean accuracy target (0.93) */
	FILE *progress;       /* progress.dat lines (NULL: none) */
	FILE *log;            /* human progress (NULL: quiet) */
	int log_level;        /* nodes' log level (util/log.h), default warn */
	bool verify;          /* record inputs and check every applied round */
	/* fault exploration (VOPR): 0 disables each */
	double kill_rate;       /* kills per node per virtual minute (at random phases/times) */
	double restart_after_s; /* mean downtime of a killed node */
	double partition_rate;  /* partitions per virtual minute */
	double partition_s;     /* mean duration of a partition */
	double silent_frac;     /* fraction of nodes that join rounds then go silent */
	struct sim_link fault;  /* extra message faults on every link */
	bool stop_at_target;
	bool config_schedule;    /* the config's own [Gossip] defaults, not the bench's */
	enum sim_break breakage; /* the checker's own test: corrupt one thing on purpose */
};

struct sim_result {
	double target_time, target_bytes, target_rounds, target_epochs; /* -1: not reached */
	double final_time, final_mean, final_min, final_max, final_bytes, final_rounds;
	double final_epochs, final_aborted;
	double epsilon_max; /* [Privacy]: the most epsilon any node spent (-1: DP-SGD off) */
	double rounds_min, rounds_max; /* completed rounds per node at the end */
	double bytes_min, bytes_max;   /* bytes sent per node at the end */
	double link_busy;              /* mean fraction of time uplinks were sending */
	double scatter_share;          /* of the rounds started, on the scatter path (DataPath) */
	double final_unformed;         /* per node: aborted before the group was fixed */
	/* from when on the spread (max - min accuracy) stayed under 0.5 points (-1: never) */
	double agree_time, agree_rounds, agree_mean;
	uint64_t events, messages, kills, restarts, partitions;
	double wall_s, cpu_virtual_s;
	size_t rss_kb;
	struct sim_verify verify;
};

/* Defaults: 16 nodes, MNIST, bench/cluster.sh's schedule, 125 s, verify on. */
void sim_opts_default(struct sim_opts *o);
/*
 * Runs one simulation. Returns 0, or -errno if it could not be set up
 * (data missing, a config the parser refuses: the reason goes to stderr).
 * Invariant violations are not an error: they are in res->verify.
 */
int sim_run(const struct sim_opts *o, struct sim_result *res) __attribute__((warn_unused_result));
/* Prints res as bench/cluster.sh's summary.txt ("key value" lines). */
void sim_result_print(FILE *f, const struct sim_opts *o, const struct sim_result *res);

#endif
