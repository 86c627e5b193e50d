/*
 * status.h: what a running node reports about itself.
 *
 * The daemon keeps one struct node_status up to date from its event loop;
 * the control socket (`sotto status`) and the Prometheus endpoint format a
 * snapshot of it. Nothing secret ever goes in here.
 */
#ifndef SOTTO_NODE_STATUS_H
#define SOTTO_NODE_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATUS_NAME_MAX 33

enum status_reject {
	REJECT_UNKNOWN_SENDER,
	REJECT_BAD_TAG,   /* authentication failed: tampered or wrong key */
	REJECT_REPLAY,    /* replayed, reordered beyond the window, or too old */
	REJECT_MALFORMED, /* bad frame or message */
	REJECT_VERSION,   /* unknown protocol version */
	REJECT_WRONG_KEY, /* sealed for another key: the sender pinned a wrong one for us */
	REJECT_COUNT,
};

/*
 * Incoming connections the node closed. Frames over the size limit never
 * get here as messages: NNG closes their connection on the length prefix
 * (counted in conns_no_frame with every other connection that ends before
 * its first frame).
 */
enum status_conn_refused {
	CONN_REFUSED_PER_ADDRESS,  /* at connect: its address holds enough unauthenticated ones */
	CONN_REFUSED_LIMIT,        /* at connect: the limit on incoming connections is reached */
	CONN_REFUSED_AUTH_TIMEOUT, /* no authenticated frame in time */
	CONN_REFUSED_COUNT,
};

struct status_peer {
	char name[STATUS_NAME_MAX];
	double last_seen;   /* unix time of the last authenticated message, 0: never */
	uint64_t rounds;    /* completed rounds shared with this peer */
	bool connected;     /* our push socket to it is connected now */
	double rtt_ms;      /* measured round trip of small messages; 0: not yet */
	double rate_Bps;    /* measured bytes/s of vectors in rounds; 0: not yet */
	uint64_t wrong_key; /* its frames sealed for a key that is not ours */
};

struct node_status {
	char name[STATUS_NAME_MAX];
	const char *state;       /* "idle", "initiator", "member", "stopping" */
	const char *round_phase; /* phase of the current round, or "-" */
	uint64_t round_id;       /* current round, 0: none */
	double started;          /* unix time the daemon started */

	uint64_t rounds_completed;
	uint64_t rounds_aborted;
	uint64_t rounds_initiated;
	uint64_t rounds_scatter;  /* of those, on the scatter path (since this process started) */
	uint64_t rounds_unformed; /* aborted before the group was fixed (too few accepted, or
	                           * too few fresh inputs): no vector moved (since started) */
	uint64_t invites_declined;
	uint64_t declined_layout; /* invitations whose external layout differs from ours */
	/* [Model] Type = external: the trainer's state (node/external.h), "" otherwise */
	char trainer[192];
	uint64_t trainer_refused, trainer_attaches;
	uint64_t restarts; /* times this node resumed from a checkpoint */

	uint64_t bytes_in, bytes_out;
	uint64_t msgs_in, msgs_out;
	uint64_t rejected[REJECT_COUNT]; /* refused: never acted on */
	uint64_t msgs_stale;             /* authentic, but for a round that is over: ignored */
	uint64_t msgs_round_sealed;      /* received under a round's ephemeral keys */
	uint64_t conns_in, conns_in_max; /* incoming connections open now; their limit */
	uint64_t conns_refused[CONN_REFUSED_COUNT];
	uint64_t conns_no_frame; /* ended before their first frame */

	uint64_t model_nonfinite; /* NaN/Inf parameters in the model (must be 0) */
	double epochs_trained;
	bool training_done; /* Epochs reached, or training ended early: averaging only */
	/*
	 * "training", "averaging" (training over, the group not yet agreed) or
	 * "done" (training over, and the last rounds' results moved this node's
	 * model by less than GOSSIP_CONSENSUS_SPREAD: see docs/operations.md).
	 */
	const char *phase;
	double epochs_target; /* [Training] Epochs */
	/*
	 * How far the last rounds' results were from what this node put in:
	 * max over the last rounds of |avg - input| / |input| (L2); < 0: none yet.
	 */
	double spread;
	double weight; /* push-sum weight */
	/* [Privacy] (node/privacy.h): DP-SGD on, epsilon charged, budget (0: none) */
	bool privacy_on;
	double epsilon_spent, epsilon_budget, delta, noise_multiplier;
	uint64_t privacy_steps; /* steps charged to the ledger */
	double accuracy, loss;
	uint64_t evals;
	int64_t eval_round; /* rounds_completed at the last evaluation */

	struct status_peer *peers;
	size_t n_peers;
};

/*
 * Formats "key value" lines (one per field, peers as "peer NAME seen T ago
 * rounds N connected yes|no link RkB/s|- rtt Tms|-") into a new malloc'd string. NULL on
 * allocation failure.
 */
char *status_format_text(const struct node_status *s, double now);
/* Prometheus text exposition format 0.0.4. NULL on allocation failure. */
char *status_format_prometheus(const struct node_status *s, double now);

const char *status_reject_name(enum status_reject r);
const char *status_conn_refused_name(enum status_conn_refused r);

#endif
