/*
 * status.c: text and Prometheus renderings of struct node_status, built in
 * a util/sbuf.h buffer; no locking here (callers pass a snapshot).
 */
#include "node/status.h"

#include "util/sbuf.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reject_names[REJECT_COUNT] = {
        "unknown_sender", "bad_tag", "replay", "malformed", "version", "wrong_key",
};

static const char *const conn_refused_names[CONN_REFUSED_COUNT] = {
        "per_address",
        "limit",
        "auth_timeout",
};

const char *status_reject_name(enum status_reject r)
{
	return (unsigned)r < REJECT_COUNT ? reject_names[r] : "?";
}

const char *status_conn_refused_name(enum status_conn_refused r)
{
	return (unsigned)r < CONN_REFUSED_COUNT ? conn_refused_names[r] : "?";
}

char *status_format_text(const struct node_status *s, double now)
{
	struct sbuf b;
	uint64_t rej = 0;

	if (!sb_init(&b))
		return NULL;
	for (int i = 0; i < REJECT_COUNT; i++)
		rej += s->rejected[i];
	sb_printf(&b, "node %s\nstate %s\nuptime %.1f\n", s->name, s->state,
	          s->started > 0 ? now - s->started : 0.0);
	sb_printf(&b, "round %016llx\nround_phase %s\n", (unsigned long long)s->round_id,
	          s->round_phase != NULL ? s->round_phase : "-");
	sb_printf(&b, "rounds_completed %llu\nrounds_aborted %llu\nrounds_initiated %llu\n",
	          (unsigned long long)s->rounds_completed, (unsigned long long)s->rounds_aborted,
	          (unsigned long long)s->rounds_initiated);
	sb_printf(&b, "rounds_scatter %llu\nrounds_unformed %llu\n",
	          (unsigned long long)s->rounds_scatter, (unsigned long long)s->rounds_unformed);
	sb_printf(&b, "invites_declined %llu\nrestarts %llu\n",
	          (unsigned long long)s->invites_declined, (unsigned long long)s->restarts);
	if (s->trainer[0] != '\0')
		sb_printf(&b,
		          "trainer %s\ntrainer_attaches %llu\ntrainer_frames_refused %llu\n"
		          "declined_layout %llu\n",
		          s->trainer, (unsigned long long)s->trainer_attaches,
		          (unsigned long long)s->trainer_refused,
		          (unsigned long long)s->declined_layout);
	sb_printf(&b, "bytes_in %llu\nbytes_out %llu\nmsgs_in %llu\nmsgs_out %llu\n",
	          (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
	          (unsigned long long)s->msgs_in, (unsigned long long)s->msgs_out);
	sb_printf(&b, "rejected %llu\n", (unsigned long long)rej);
	for (int i = 0; i < REJECT_COUNT; i++)
		sb_printf(&b, "rejected_%s %llu\n", reject_names[i],
		          (unsigned long long)s->rejected[i]);
	sb_printf(&b, "msgs_stale %llu\nmsgs_round_sealed %llu\n",
	          (unsigned long long)s->msgs_stale, (unsigned long long)s->msgs_round_sealed);
	sb_printf(&b, "conns_in %llu\nconns_in_max %llu\n", (unsigned long long)s->conns_in,
	          (unsigned long long)s->conns_in_max);
	for (int i = 0; i < CONN_REFUSED_COUNT; i++)
		sb_printf(&b, "conns_refused_%s %llu\n", conn_refused_names[i],
		          (unsigned long long)s->conns_refused[i]);
	sb_printf(&b, "conns_no_frame %llu\n", (unsigned long long)s->conns_no_frame);
	sb_printf(&b, "model_nonfinite %llu\n", (unsigned long long)s->model_nonfinite);
	sb_printf(&b, "epochs_trained %.3f\nweight %.6g\n", s->epochs_trained, s->weight);
	sb_printf(&b, "training_done %d\n", s->training_done ? 1 : 0);
	sb_printf(&b, "phase %s\nepochs_target %.0f\n", s->phase != NULL ? s->phase : "-",
	          s->epochs_target);
	if (s->spread >= 0)
		sb_printf(&b, "spread %.3g\n", s->spread);
	else
		sb_printf(&b, "spread -\n");
	if (s->privacy_on)
		sb_printf(&b,
		          "epsilon_spent %.4g\nepsilon_budget %g\ndelta %g\nnoise_multiplier %.4g\n"
		          "privacy_steps %llu\n",
		          s->epsilon_spent, s->epsilon_budget, s->delta, s->noise_multiplier,
		          (unsigned long long)s->privacy_steps);
	else
		sb_printf(&b, "epsilon_spent -\n");
	if (s->evals > 0)
		sb_printf(&b, "accuracy %.4f\nloss %.4f\n", s->accuracy, s->loss);
	else
		sb_printf(&b, "accuracy -\nloss -\n");
	sb_printf(&b, "evals %llu\n", (unsigned long long)s->evals);
	for (size_t i = 0; i < s->n_peers; i++) {
		const struct status_peer *p = &s->peers[i];
		if (p->last_seen > 0)
			sb_printf(&b, "peer %s seen %.1fs ago rounds %llu connected %s", p->name,
			          now - p->last_seen, (unsigned long long)p->rounds,
			          p->connected ? "yes" : "no");
		else
			sb_printf(&b, "peer %s seen never rounds %llu connected %s", p->name,
			          (unsigned long long)p->rounds, p->connected ? "yes" : "no");
		/* The link as rounds measured it (kB/s of vectors, round trip). */
		if (p->rate_Bps > 0)
			sb_printf(&b, " link %.1fkB/s", p->rate_Bps / 1000.0);
		else
			sb_printf(&b, " link -");
		if (p->rtt_ms > 0)
			sb_printf(&b, " rtt %.1fms", p->rtt_ms);
		else
			sb_printf(&b, " rtt -");
		/* It pinned a wrong key for this node: none of its frames open. */
		if (p->wrong_key > 0)
			sb_printf(&b, " wrong_key %llu", (unsigned long long)p->wrong_key);
		sb_printf(&b, "\n");
	}
	return sb_finish(&b);
}

char *status_format_prometheus(const struct node_status *s, double now)
{
	struct sbuf b;
	const char *n = s->name;

	if (!sb_init(&b))
		return NULL;
#define COUNTER(metric, help, value)                                                               \
	sb_printf(&b,                                                                              \
	          "# HELP sotto_" metric " " help "\n# TYPE sotto_" metric                         \
	          " counter\nsotto_" metric "{node=\"%s\"} %llu\n",                                \
	          n, (unsigned long long)(value))
#define GAUGE(metric, help, fmt, value)                                                            \
	sb_printf(&b,                                                                              \
	          "# HELP sotto_" metric " " help "\n# TYPE sotto_" metric " gauge\nsotto_" metric \
	          "{node=\"%s\"} " fmt "\n",                                                       \
	          n, (value))
	COUNTER("rounds_completed_total", "Secure rounds whose result this node applied.",
	        s->rounds_completed);
	COUNTER("rounds_aborted_total", "Rounds this node took part in that aborted.",
	        s->rounds_aborted);
	COUNTER("rounds_initiated_total", "Rounds this node started.", s->rounds_initiated);
	COUNTER("rounds_scatter_total",
	        "Rounds this node started on the scatter data path (since it started).",
	        s->rounds_scatter);
	COUNTER("rounds_unformed_total",
	        "Aborted rounds that ended before their group was fixed, no vector sent (since "
	        "it started).",
	        s->rounds_unformed);
	COUNTER("invites_declined_total", "Invitations declined while busy.", s->invites_declined);
	if (s->trainer[0] != '\0') {
		COUNTER("declined_layout_total",
		        "Invitations declined: the external trainer's layout differs.",
		        s->declined_layout);
		COUNTER("trainer_frames_refused_total",
		        "Frames on the trainer socket refused (nothing changed).",
		        s->trainer_refused);
		COUNTER("trainer_attaches_total", "Trainers that attached.", s->trainer_attaches);
	}
	COUNTER("bytes_in_total", "Bytes received from peers.", s->bytes_in);
	COUNTER("bytes_out_total", "Bytes sent to peers.", s->bytes_out);
	sb_printf(&b, "# HELP sotto_rejected_total Messages dropped, by reason.\n"
	              "# TYPE sotto_rejected_total counter\n");
	for (int i = 0; i < REJECT_COUNT; i++)
		sb_printf(&b, "sotto_rejected_total{node=\"%s\",reason=\"%s\"} %llu\n", n,
		          reject_names[i], (unsigned long long)s->rejected[i]);
	COUNTER("messages_stale_total", "Authentic messages of rounds already over, ignored.",
	        s->msgs_stale);
	sb_printf(&b, "# HELP sotto_connections_refused_total Incoming connections refused or "
	              "closed by this node, by reason.\n"
	              "# TYPE sotto_connections_refused_total counter\n");
	for (int i = 0; i < CONN_REFUSED_COUNT; i++)
		sb_printf(&b, "sotto_connections_refused_total{node=\"%s\",reason=\"%s\"} %llu\n",
		          n, conn_refused_names[i], (unsigned long long)s->conns_refused[i]);
	COUNTER("connections_no_frame_total",
	        "Incoming connections that ended before their first frame (by the remote, or by "
	        "NNG: a length over the maximum, another protocol).",
	        s->conns_no_frame);
	GAUGE("connections_in", "Incoming connections open now.", "%llu",
	      (unsigned long long)s->conns_in);
	GAUGE("connections_in_max", "The limit on incoming connections.", "%llu",
	      (unsigned long long)s->conns_in_max);
	GAUGE("accuracy", "Test accuracy at the last evaluation (NaN before).", "%.6f",
	      s->evals > 0 ? s->accuracy : 0.0 / 0.0);
	GAUGE("loss", "Test loss at the last evaluation (NaN before).", "%.6f",
	      s->evals > 0 ? s->loss : 0.0 / 0.0);
	GAUGE("epochs_trained", "Local training epochs since start.", "%.3f", s->epochs_trained);
	GAUGE("training_done", "1 once local training is over (the node only averages).", "%d",
	      s->training_done ? 1 : 0);
	GAUGE("epochs_target", "[Training] Epochs: local training stops there.", "%.0f",
	      s->epochs_target);
	GAUGE("spread",
	      "Largest relative L2 distance of the last rounds' results from this node's input "
	      "(NaN before).",
	      "%.6g", s->spread >= 0 ? s->spread : 0.0 / 0.0);
	GAUGE("epsilon_spent",
	      "Differential privacy: epsilon charged to this site's records so far (NaN: DP-SGD "
	      "off).",
	      "%.6g", s->privacy_on ? s->epsilon_spent : 0.0 / 0.0);
	GAUGE("epsilon_budget", "[Privacy] Epsilon (0: none; NaN: DP-SGD off).", "%.6g",
	      s->privacy_on ? s->epsilon_budget : 0.0 / 0.0);
	GAUGE("done", "1 once training is over and the group agrees (phase done).", "%d",
	      s->phase != NULL && strcmp(s->phase, "done") == 0 ? 1 : 0);
	GAUGE("weight", "Push-sum weight.", "%.6g", s->weight);
	GAUGE("uptime_seconds", "Seconds since the daemon started.", "%.1f",
	      s->started > 0 ? now - s->started : 0.0);
	/* One gauge per peer, under one HELP/TYPE header. */
#define PEER_GAUGE(metric, help, fmt, expr)                                                        \
	do {                                                                                       \
		if (s->n_peers > 0)                                                                \
			sb_printf(&b, "# HELP sotto_peer_" metric " " help "\n"                    \
			              "# TYPE sotto_peer_" metric " gauge\n");                     \
		for (size_t i = 0; i < s->n_peers; i++) {                                          \
			const struct status_peer *p = &s->peers[i];                                \
			sb_printf(&b, "sotto_peer_" metric "{node=\"%s\",peer=\"%s\"} " fmt "\n",  \
			          n, p->name, expr);                                               \
		}                                                                                  \
	} while (0)
	PEER_GAUGE("connected", "Whether the link to the peer is up.", "%d", p->connected ? 1 : 0);
	PEER_GAUGE(
	        "link_bytes_per_second",
	        "Measured rate of vectors exchanged with the peer in rounds (0: not measured yet).",
	        "%.0f", p->rate_Bps);
	PEER_GAUGE("rtt_seconds",
	           "Measured round-trip time of small messages to the peer (0: not measured yet).",
	           "%.4f", p->rtt_ms / 1000.0);
#undef PEER_GAUGE
#undef COUNTER
#undef GAUGE
	return sb_finish(&b);
}
