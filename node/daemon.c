/*
 * daemon.c: `sotto run -c FILE`, the shell around the node's core.
 *
 * The node's decisions (peers, rounds, the checkpoint's contents, when to
 * train and evaluate) live in node/gossip.c, without I/O. This file gives
 * them a world: one libev loop on the main thread owns the NNG transport,
 * the control socket, the /metrics endpoint and the timers; training,
 * evaluation and checkpoint writes run on the worker thread
 * (node/worker.h), so the loop never blocks on them. Every event goes into
 * the core; run_actions() carries out what it says, in order; the core's
 * next timer is re-armed (the beforesleep of redis's ae.c, written once).
 *
 * Crash safety: the model, the push-sum weight and the counters live in one
 * checkpoint file written by the worker with write-temp + fsync + rename,
 * right after a result is applied and at shutdown. kill -9 at any instant
 * leaves the old or the new checkpoint; a restart resumes from it.
 */
#include "config/config.h"
#include "crypto/identity.h"
#include "crypto/seal.h"
#include "learn/checkpoint.h"
#include "learn/dataset.h"
#include "learn/featstats.h"
#include "learn/learn.h"
#include "learn/model.h"
#include "learn/train.h"
#include "node/cli.h"
#include "node/control.h"
#include "node/external.h"
#include "node/gossip.h"
#include "node/metrics.h"
#include "node/privacy.h"
#include "node/standardize.h"
#include "node/stats_phase.h"
#include "node/status.h"
#include "node/testhooks.h"
#include "node/transport.h"
#include "node/worker.h"
#include "protocol/msg.h"
#include "secagg/round.h"
#include "util/err.h"
#include "util/file.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

struct node {
	struct config cfg;
	struct identity *id;
	struct ev_loop *loop;
	struct seal_ctx *seal;
	struct transport *tp;
	struct control *ctl;
	struct metrics *metrics;
	struct worker *worker;
	/*
	 * [Model] Type = external: the trainer socket (node/external.h), and
	 * the model (a layout only) its first hello declared.
	 */
	struct ext *ext;
	struct model *ext_model;
	uint8_t *ext_head; /* DataDir/external.state up to the extra (ext_statefile_head) */
	size_t ext_head_len;
	struct gossip *core;
	struct dataset *train_ds, *test_ds;
	bool std_pending; /* Standardize = federated: statistics not agreed yet (stats phase) */
	/*
	 * The statistics phase (node/stats_phase.h): while sp is set, the core
	 * averages feature statistics and there is no worker yet.
	 */
	struct stats_phase *sp;
	bool stats_over;        /* the phase is over: switch to training after this event */
	uint64_t stats_started; /* ms */
	uint64_t stats_last;    /* ms: the last result applied */
	ev_timer stats_timer;
	struct privacy priv; /* [Privacy]: the plan and the budget (the worker's lock guards it) */
	char ckpt_path[CONFIG_PATH_MAX + 32];
	int lock_fd;
	bool stopping;
	int exit_code;

	ev_timer core_timer, status_timer;
	ev_signal sigterm, sigint, sighup;
	ev_async wake;

	/*
	 * Peers a reload removed, re-keyed or moved: still pinned until they
	 * are in no round and what was queued for them went out (see
	 * deferred_flush, run from deferred_timer). A reload asked for
	 * meanwhile waits for them (reload_waiting).
	 */
	struct deferred {
		uint8_t pk[32];
		bool readd; /* moved: pinned again at its new endpoint */
		char endpoint[CONFIG_URL_MAX + 1];
		char name[CONFIG_NAME_MAX + 1];
		uint64_t out_since; /* ms: seen in no round since; 0: in one */
	} deferred[CONFIG_MAX_PEERS];
	size_t n_deferred;
	ev_timer deferred_timer;
	bool reload_waiting;
};

static uint64_t mono_ms(void)
{
	return (uint64_t)(util_now() * 1000.0);
}

static double unix_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* --- what the core asks ------------------------------------------------------ */

static uint64_t ops_snapshot(void *arg, float *x, uint64_t *steps)
{
	struct node *n = arg;
	if (n->sp != NULL)
		return stats_phase_snapshot(n->sp, x, steps);
	if (n->ext != NULL)
		return ext_snapshot(n->ext, x, steps);
	return worker_snapshot(n->worker, x, steps);
}

static bool ops_training_done(void *arg)
{
	struct node *n = arg;
	if (n->ext != NULL)
		return ext_training_done(n->ext);
	return n->sp != NULL || (n->worker != NULL && worker_finished(n->worker));
}

static bool ops_peer_connected(void *arg, const uint8_t pk[32])
{
	struct node *n = arg;
	return n->tp != NULL && transport_peer_connected(n->tp, pk);
}

static uint64_t ops_wall_ms(void *arg)
{
	(void)arg;
	return (uint64_t)(unix_now() * 1000.0);
}

static void ops_record_input(void *arg, uint64_t rid, uint32_t attempt,
                             const struct codec_params *cp, const uint32_t *ring)
{
	(void)arg;
	testhooks_record_input(rid, attempt, cp, ring);
}

static void ops_record_applied(void *arg, uint64_t rid, uint32_t attempt,
                               const struct codec_params *cp, const uint32_t *ring,
                               const uint8_t (*members)[32], size_t nm)
{
	(void)arg;
	testhooks_record_applied(rid, attempt, cp, ring, members, nm);
}

static void ops_record_outcome(void *arg, uint64_t rid, uint32_t attempt, const char *what)
{
	(void)arg;
	testhooks_record_outcome(rid, attempt, what);
}

/* --- what the core says ------------------------------------------------------- */

static void send_to(struct node *n, const uint8_t pk[32], const struct msg *m)
{
	int rc = transport_send(n->tp, pk, m);

	if (rc != 0)
		log_debug("send %s: %s", msg_type_name(m->type), err_str(rc));
}

static int node_reload(struct node *n, char *out, size_t cap);
static void reload_log(bool ok, const char *answer);

/*
 * Unpins the peers a reload let go, each once it is in no round (a member
 * of the round in flight stays in it until it ends: all or nothing), what
 * was queued for it has gone out (its COMMIT, say) and a second has passed
 * since, for the socket to write it; at most 10 s after its last round. A
 * moved peer is pinned again at its new endpoint, and gossip may then use
 * it. Runs from deferred_timer (never inside a transport callback, which
 * may be walking the transport's peers). When the last one is gone, a
 * reload that was asked for meanwhile runs.
 */
static void deferred_flush(struct node *n)
{
	uint64_t now = mono_ms();
	size_t kept = 0;

	if (n->core == NULL)
		return;
	for (size_t i = 0; i < n->n_deferred; i++) {
		struct deferred *d = &n->deferred[i];
		if (gossip_in_round(n->core, d->pk)) {
			d->out_since = 0;
			n->deferred[kept++] = *d;
			continue;
		}
		if (d->out_since == 0)
			d->out_since = now;
		if (now - d->out_since < 1000 ||
		    (transport_pending(n->tp, d->pk) > 0 && now - d->out_since < 10000)) {
			n->deferred[kept++] = *d;
			continue;
		}
		(void)transport_peer_remove(n->tp, d->pk);
		if (d->readd) {
			int rc = transport_peer_add(n->tp, d->pk, d->endpoint, d->name);
			if (rc != 0)
				log_errorx("reload: peer %s at %s: %s", d->name, d->endpoint,
				           err_str(rc));
			else
				gossip_peer_release(n->core, d->pk);
			log_info("reload: peer %s now reached at %s", d->name, d->endpoint);
		} else {
			log_info("reload: peer %s let go (unpinned)", d->name);
		}
	}
	n->n_deferred = kept;
	if (kept == 0) {
		ev_timer_stop(n->loop, &n->deferred_timer);
		if (n->reload_waiting) {
			char out[2048];
			n->reload_waiting = false;
			log_info("running the reload that waited for peers to be let go");
			reload_log(node_reload(n, out, sizeof(out)) == 0, out);
		}
	}
}

static void deferred_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	deferred_flush(w->data);
}

static void stats_apply(struct node *n, const struct gossip_act *a);
static void stats_finish(struct node *n);
static int ext_state_save(struct node *n, const uint8_t *extra, size_t len);

/*
 * Carries out the core's actions of its last call, in order, then re-arms
 * the core's timer. Called after every call into the core.
 */
static void run_actions(struct node *n)
{
	const struct gossip_act *acts;
	size_t na;
	uint64_t next;

	acts = gossip_actions(n->core, &na);
	for (size_t i = 0; i < na; i++) {
		const struct gossip_act *a = &acts[i];
		struct seal_eph mine;

		switch (a->type) {
		case GOSSIP_SEND:
			send_to(n, a->peer, &a->msg);
			break;
		case GOSSIP_APPLY: {
			uint64_t seq;
			if (n->sp != NULL) {
				stats_apply(n, a);
				break;
			}
			if (n->ext != NULL) {
				/* The result is on disk before the trainer hears of it. */
				int rc = ext_state_save(n, a->extra, a->extra_len);
				ext_apply(n->ext, a->seq, a->round_id, a->avg, a->snapshot, rc);
				free(a->avg);
				free(a->snapshot);
				break;
			}
			seq = worker_apply(n->worker, a->round_id, a->avg, a->snapshot, a->extra,
			                   a->extra_len, a->evaluate);
			if (seq != a->seq)
				log_errorx("the worker could not take a result (out of memory)");
			break;
		}
		case GOSSIP_GRANT:
			if (n->worker != NULL)
				worker_grant(n->worker, a->steps, a->cap);
			break;
		case GOSSIP_EVALUATE:
			if (n->test_ds != NULL && n->worker != NULL)
				worker_evaluate(n->worker);
			break;
		case GOSSIP_FINISH:
			if (n->worker != NULL)
				worker_finish(n->worker);
			if (n->ext != NULL)
				ext_finish(n->ext);
			break;
		case GOSSIP_KEYS_SET:
			mine = a->mine;
			if (seal_round_set(n->seal, a->peer, a->round_id, &mine, a->peer_eph) != 0)
				log_warnx("cannot install a round key");
			sodium_memzero(&mine, sizeof(mine));
			break;
		case GOSSIP_KEYS_CLEAR:
			seal_round_clear(n->seal, a->round_id);
			break;
		case GOSSIP_STOP:
			if (n->sp != NULL)
				break; /* Rounds = N counts training rounds, not these */
			n->stopping = true;
			ev_break(n->loop, EVBREAK_ALL);
			break;
		case GOSSIP_PHASE:
			testhook(a->phase);
			break;
		}
	}
	if (n->sp != NULL && n->stats_over && !n->stopping) {
		stats_finish(n); /* runs the training core's first actions */
		return;
	}
	next = gossip_next_timer(n->core);
	ev_timer_stop(n->loop, &n->core_timer);
	if (next != UINT64_MAX) {
		uint64_t now = mono_ms();
		ev_timer_set(&n->core_timer, next > now ? (double)(next - now) / 1000.0 : 0.0, 0.0);
		ev_timer_start(n->loop, &n->core_timer);
	}
}

/* --- events ------------------------------------------------------------------- */

static void on_message_cb(void *arg, const struct transport_rx *rx)
{
	struct node *n = arg;

	if (n->core == NULL) /* between the statistics phase and training, on a failure */
		return;
	gossip_on_msg(n->core, mono_ms(), rx->sender, rx->msg,
	              (rx->hdr->flags & SEAL_FLAG_ROUND) != 0);
	run_actions(n);
}

static void on_peer_lost_cb(void *arg, const uint8_t *pk, const char *name)
{
	struct node *n = arg;

	(void)name;
	if (n->core == NULL)
		return;
	gossip_on_link_lost(n->core, mono_ms(), pk);
	run_actions(n);
}

static void core_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct node *n = w->data;

	(void)loop;
	(void)revents;
	if (n->core == NULL)
		return;
	gossip_on_timer(n->core, mono_ms());
	run_actions(n);
}

static void worker_events_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct node *n = w->data;
	struct worker_event ev[64];
	size_t got;

	(void)loop;
	(void)revents;
	while ((got = n->ext != NULL      ? ext_events(n->ext, ev, ARRAY_LEN(ev))
	              : n->worker != NULL ? worker_events(n->worker, ev, ARRAY_LEN(ev))
	                                  : 0) > 0) {
		for (size_t i = 0; i < got; i++) {
			enum gossip_worker_event t;

			switch (ev[i].type) {
			case WORKER_EV_TRAINED:
				t = GOSSIP_WORKER_TRAINED;
				break;
			case WORKER_EV_APPLIED:
				t = GOSSIP_WORKER_APPLIED;
				break;
			case WORKER_EV_EVALUATED:
				t = GOSSIP_WORKER_EVALUATED;
				break;
			case WORKER_EV_FAILED:
				t = GOSSIP_WORKER_FAILED;
				break;
			default:
				continue;
			}
			if (n->core == NULL)
				continue;
			gossip_on_worker(n->core, mono_ms(), t, ev[i].rc, ev[i].round_id,
			                 ev[i].epochs, ev[i].accuracy, ev[i].loss);
			run_actions(n);
		}
	}
}

static void wake_cb(void *arg)
{
	struct node *n = arg;
	ev_async_send(n->loop, &n->wake);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct node *n = w->data;

	(void)revents;
	log_info("signal %d: stopping at a safe point", w->signum);
	sd_notify(0, "STOPPING=1");
	n->stopping = true;
	ev_break(loop, EVBREAK_ALL);
}

/* --- reload ------------------------------------------------------------------- */

/* Whether cfg pins p's key (and, with endpoint, at the same Endpoint). */
static bool cfg_has_peer(const struct config *cfg, const struct config_peer *p, bool endpoint)
{
	for (size_t i = 0; i < cfg->n_peers; i++) {
		const struct config_peer *c = &cfg->peers[i];
		if (sodium_memcmp(c->public_key_bin, p->public_key_bin, 32) == 0)
			return !endpoint || strcmp(c->endpoint, p->endpoint) == 0;
	}
	return false;
}

/*
 * Re-reads the config file the node was started with and applies what may
 * change while it runs: the peers (added, removed, re-keyed, moved,
 * renamed) and the live keys of config_key_reloads(). Anything else that
 * differs, a new config with errors, or another private key: nothing
 * changes and the answer says why. Writes a one-paragraph answer, starting
 * with "error" on refusal. Returns 0 if applied.
 */
static int node_reload(struct node *n, char *out, size_t cap)
{
	struct config next, old;
	struct identity *id = NULL;
	struct gossip_reload_stats rs;
	char diff[512];
	size_t failed = 0;
	int rc;

	if (n->core == NULL) {
		snprintf(out, cap, "error: the node is stopping");
		return -1;
	}

	if (n->n_deferred > 0) {
		/* Applied once those peers are let go: the transport matches n->cfg then. */
		n->reload_waiting = true;
		snprintf(out, cap,
		         "reload queued: the last reload still lets go of %zu peers (after the "
		         "round they are in); this one runs then, and its outcome is logged\n",
		         n->n_deferred);
		return 0;
	}
	rc = node_config_load(&next, n->cfg.path, &id);
	if (rc != 0) {
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		if (f != NULL) {
			config_errors_print(&next, f);
			fclose(f);
		}
		snprintf(out, cap, "error: %s has errors; the running config stays in force:\n%s",
		         n->cfg.path, text != NULL ? text : "");
		free(text);
		config_fini(&next);
		return 1;
	}
	if (!next.has_node || sodium_memcmp(id->sign_pk, n->id->sign_pk, 32) != 0) {
		snprintf(out, cap,
		         "error: %s: %s; nothing changed (a node's own key or [Node] section "
		         "changes only with a restart)\n",
		         n->cfg.path,
		         !next.has_node ? "no [Node] section" : "PrivateKeyFile holds another key");
		identity_free(id);
		config_fini(&next);
		return 1;
	}
	identity_free(id);
	if (config_reload_diff(&n->cfg, &next, diff, sizeof(diff)) > 0) {
		snprintf(out, cap,
		         "error: %s: %s cannot change while the node runs; nothing changed "
		         "(restart the node to apply them)\n",
		         n->cfg.path, diff);
		config_fini(&next);
		return 1;
	}
	if (gossip_reload(n->core, mono_ms(), &next, &rs) != 0) {
		snprintf(out, cap, "error: out of memory; nothing changed\n");
		config_fini(&next);
		return 1;
	}
	run_actions(n);
	for (size_t i = 0; i < n->cfg.n_peers; i++) {
		const struct config_peer *p = &n->cfg.peers[i];
		if (cfg_has_peer(&next, p, true))
			continue;
		if (n->n_deferred < ARRAY_LEN(n->deferred)) {
			/* Pinned until it is in no round and its frames went out. */
			struct deferred *d = &n->deferred[n->n_deferred++];
			memset(d, 0, sizeof(*d));
			memcpy(d->pk, p->public_key_bin, 32);
			snprintf(d->name, sizeof(d->name), "%s", p->name);
			for (size_t j = 0; j < next.n_peers; j++) {
				if (sodium_memcmp(next.peers[j].public_key_bin, d->pk, 32) == 0) {
					d->readd = true; /* moved */
					snprintf(d->endpoint, sizeof(d->endpoint), "%s",
					         next.peers[j].endpoint);
					snprintf(d->name, sizeof(d->name), "%s",
					         next.peers[j].name);
				}
			}
			continue;
		}
		(void)transport_peer_remove(n->tp, p->public_key_bin);
	}
	for (size_t i = 0; i < next.n_peers; i++) {
		const struct config_peer *p = &next.peers[i];
		bool waits = false;
		for (size_t j = 0; j < n->n_deferred; j++)
			waits = waits ||
			        sodium_memcmp(n->deferred[j].pk, p->public_key_bin, 32) == 0;
		if (waits)
			continue; /* moved, pinned again when its round ends */
		if (cfg_has_peer(&n->cfg, p, true) &&
		    transport_peer_set_name(n->tp, p->public_key_bin, p->name) == 0)
			continue; /* kept (and renamed if it was) */
		rc = transport_peer_add(n->tp, p->public_key_bin, p->endpoint, p->name);
		if (rc != 0) {
			log_errorx("reload: peer %s: %s", p->name, err_str(rc));
			failed++;
		}
	}
	old = n->cfg;
	n->cfg = next;
	config_fini(&old);
	log_set_level((enum log_level)n->cfg.node.log_level);
	if (n->n_deferred > 0) {
		ev_timer_again(n->loop, &n->deferred_timer);
		deferred_flush(n); /* not inside a transport callback: a signal or the socket */
	}
	snprintf(out, cap,
	         "%sreloaded %s: %zu peers (%zu added, %zu removed, %zu moved, %zu renamed); "
	         "%zu removed a member of the round in flight (it stays in it until it ends)%s\n",
	         failed > 0 ? "error: " : "", n->cfg.path, n->cfg.n_peers, rs.added, rs.removed,
	         rs.moved, rs.renamed, rs.round_members,
	         failed > 0 ? "; some peers could not be added (see the log)" : "");
	return failed > 0 ? 1 : 0;
}

/* A reload's answer as one log line: its lines joined by "; ". */
static void reload_log(bool ok, const char *answer)
{
	char line[2048];
	size_t o = 0;

	for (const char *p = answer; *p != '\0' && o + 3 < sizeof(line); p++) {
		if (*p != '\n') {
			line[o++] = *p;
		} else if (p[1] != '\0') {
			line[o++] = ';';
			line[o++] = ' ';
		}
	}
	line[o] = '\0';
	if (ok)
		log_info("%s", line);
	else
		log_warnx("%s", line);
}

/* SIGHUP (`systemctl reload`, `kill -HUP`): reload, and say how it went. */
static void sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct node *n = w->data;
	char out[2048];

	(void)loop;
	(void)revents;
	log_info("SIGHUP: reloading %s", n->cfg.path);
	reload_log(node_reload(n, out, sizeof(out)) == 0, out);
}

/* --- status ------------------------------------------------------------------- */

static void status_refresh(struct node *n, struct node_status *st)
{
	gossip_status(n->core, st);
	transport_status_fill(n->tp, st);
	if (n->ext != NULL)
		ext_state(n->ext, st->trainer, sizeof(st->trainer), &st->trainer_refused,
		          &st->trainer_attaches);
	if (n->worker != NULL &&
	    worker_privacy(n->worker, &st->epsilon_spent, &st->privacy_steps)) {
		st->privacy_on = true;
		st->epsilon_budget = n->priv.epsilon;
		st->delta = n->priv.delta;
		st->noise_multiplier = n->priv.sigma;
	}
}

static void status_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct node *n = w->data;
	struct node_status st;
	char *text;

	(void)loop;
	(void)revents;
	if (n->core == NULL)
		return;
	if (n->metrics != NULL) {
		status_refresh(n, &st);
		text = status_format_prometheus(&st, unix_now());
		metrics_publish(n->metrics, text);
		free(text);
	}
	/* Also keep the replay reservation fresh on disk now and then. */
	if (seal_state_save(n->seal) != 0)
		log_warnx("cannot save the replay state");
}

static char *control_answer_cb(void *arg, const char *cmd)
{
	struct node *n = arg;
	struct node_status st;

	if (n->core == NULL && n->ext != NULL) {
		/* [Model] Type = external, before the first trainer declared its layout. */
		size_t cap = 256 + sizeof(n->cfg.node.name) + sizeof(n->cfg.node.data_dir);
		char *out = malloc(cap);
		if (out != NULL && strcmp(cmd, "status") == 0)
			snprintf(out, cap,
			         "node %s\nstate waiting\ntrainer no trainer has attached to "
			         "%s/trainer.sock yet: the node joins rounds once one declares its "
			         "layout\n",
			         n->cfg.node.name, n->cfg.node.data_dir);
		else if (out != NULL)
			snprintf(out, cap,
			         "the node is waiting for its trainer; nothing to %s yet\n", cmd);
		return out;
	}
	if (strcmp(cmd, "reload") == 0) {
		char *out = malloc(4096);
		if (out == NULL)
			return NULL;
		log_info("reload requested on the control socket");
		reload_log(node_reload(n, out, 4096) == 0, out);
		return out;
	}
	if (n->core == NULL)
		return NULL;
	status_refresh(n, &st);
	{
		/* A scan of the published parameters: cheap, and it proves no NaN got in. */
		size_t np = n->worker != NULL ? worker_n_params(n->worker) : 0;
		float *x = np > 0 ? malloc(np * sizeof(float)) : NULL;
		if (x != NULL) {
			(void)worker_snapshot(n->worker, x, NULL);
			st.model_nonfinite = 0;
			for (size_t i = 0; i < np; i++)
				st.model_nonfinite += !isfinite(x[i]);
			free(x);
		}
	}
	if (strcmp(cmd, "status") == 0)
		return status_format_text(&st, unix_now());
	if (strcmp(cmd, "metrics") == 0)
		return status_format_prometheus(&st, unix_now());
	return NULL;
}

/* --- start and stop ----------------------------------------------------------- */

/*
 * The model: from the checkpoint if there is one (its extra goes to the
 * core, which checks it is this node's), else a new one. *extra is malloc'd
 * (NULL for a new model).
 */
static int load_model(struct node *n, struct train **t, uint8_t **extra, size_t *extra_len)
{
	struct model_spec spec;
	struct optim_params op;
	struct train_schedule sched;
	int rc;

	*extra = NULL;
	*extra_len = 0;
	rc = train_setup_from_config(&spec, &op, &n->cfg, n->train_ds);
	if (rc != 0) {
		log_errorx("model: %s", err_str(rc));
		return rc;
	}
	rc = train_schedule_from_config(&sched, &n->cfg, (double)n->cfg.training.epochs);
	if (rc != 0) {
		log_errorx("schedule: %s", err_str(rc));
		return rc;
	}
	rc = checkpoint_load(n->ckpt_path, t, extra, extra_len);
	if (rc == 0) {
		struct model_spec *have = &(*t)->model->spec;
		if (have->type != spec.type ||
		    model_spec_n_params(have) != model_spec_n_params(&spec) || *extra == NULL) {
			log_errorx("%s is for another model or node; move it away to start over",
			           n->ckpt_path);
			rc = LEARN_EMISMATCH;
		} else if ((rc = train_set_schedule(*t, &sched)) == LEARN_EBOUNDS) {
			log_errorx("%s holds an optimizer that [Training] does not allow with "
			           "it (DriftCorrection needs sgd); move it away to start over",
			           n->ckpt_path);
		} else if (rc != 0) {
			log_errorx("%s: %s", n->ckpt_path, err_str(rc)); /* out of memory */
		}
		if (rc != 0) {
			train_free(*t);
			*t = NULL;
			free(*extra);
			*extra = NULL;
		}
		return rc;
	}
	if (rc != -ENOENT) {
		log_errorx("%s: %s (the file is kept; move it away to start over)", n->ckpt_path,
		           err_str(rc));
		return rc;
	}
	rc = train_alloc(t, &spec, n->cfg.model.seed, &op, (uint32_t)n->cfg.training.batch_size,
	                 n->cfg.training.seed);
	if (rc == 0)
		rc = train_set_schedule(*t, &sched);
	if (rc != 0) {
		log_errorx("model: %s", err_str(rc));
		return rc;
	}
	log_info("new model: %s, %zu parameters", model_type_name(spec.type),
	         model_spec_n_params(&spec));
	return 0;
}

/*
 * [Privacy]: the plan (checked at start-up like `check` does), the ledger
 * in DataDir, and DP-SGD in the trainer. 0, or an error already logged.
 */
static int privacy_start(struct node *n, struct train *t)
{
	struct privacy *p = &n->priv;
	char path[CONFIG_PATH_MAX + 32];
	uint64_t spe = train_steps_per_epoch(t, n->train_ds);
	struct train_dp dp = {0};
	int rc;

	rc = privacy_plan(p, &n->cfg, n->train_ds->rows, t->batch, spe);
	if (rc != 0) {
		for (size_t i = 0; i < n->cfg.n_errors; i++)
			log_errorx("%s", n->cfg.errors[i].msg);
		return rc;
	}
	if (!p->on)
		return 0;
	snprintf(path, sizeof(path), "%s/privacy.ledger", n->cfg.node.data_dir);
	rc = privacy_open_ledger(p, path);
	if (rc != 0)
		return rc;
	dp.clip = p->clip;
	dp.sigma = p->sigma;
	dp.random = privacy_random;
	rc = train_set_dp(t, &dp);
	if (rc != 0) {
		log_errorx("privacy: %s", err_str(rc));
		return rc;
	}
	log_info("privacy: DP-SGD, NoiseMultiplier %.4g, ClipNorm %g, sampling rate %.4g; "
	         "Epochs %d spend epsilon %.3g at delta %g%s; spent so far %.3g (%llu steps)",
	         p->sigma, p->clip, p->q, n->cfg.training.epochs, p->planned_epsilon, p->delta,
	         p->epsilon > 0 ? "" : " (no budget set)", privacy_spent(p),
	         (unsigned long long)p->ledger.steps);
	if (p->epsilon > 0 && privacy_spent(p) >= p->epsilon)
		log_info("privacy budget already spent (epsilon %.3g of %g): this node only "
		         "averages",
		         privacy_spent(p), p->epsilon);
	return 0;
}

static void core_ops(struct node *n, struct gossip_ops *ops)
{
	memset(ops, 0, sizeof(*ops));
	ops->snapshot = ops_snapshot;
	ops->training_done = ops_training_done;
	ops->peer_connected = ops_peer_connected;
	ops->wall_ms = ops_wall_ms;
	ops->arg = n;
	if (testhooks_verify()) {
		ops->record_input = ops_record_input;
		ops->record_applied = ops_record_applied;
		ops->record_outcome = ops_record_outcome;
	}
}

static int core_open(struct node *n, struct train *t, const uint8_t *extra, size_t extra_len)
{
	struct gossip_ops ops;
	int rc;

	core_ops(n, &ops);
	rc = gossip_alloc(&n->core, &n->cfg, n->id, t->model, &ops, extra, extra_len,
	                  n->train_ds->rows, train_steps_per_epoch(t, n->train_ds));
	if (rc == -EINVAL) {
		log_errorx("%s is for another model or node; move it away to start over",
		           n->ckpt_path);
		return 1;
	}
	if (rc != 0)
		return 1;
	gossip_set_silent(n->core, testhooks_silent_after_accept());
	if (extra != NULL) {
		struct node_status st;
		gossip_status(n->core, &st);
		log_info("resumed from %s: %llu rounds, %.2f epochs, weight %.3f", n->ckpt_path,
		         (unsigned long long)st.rounds_completed, st.epochs_trained, st.weight);
	}
	return 0;
}

/*
 * The model, the privacy plan, the training core and the worker: at start,
 * or once the statistics phase is over. 0, or 1 after logging why.
 */
static int model_open(struct node *n)
{
	struct train *t = NULL;
	uint8_t *extra = NULL;
	size_t extra_len = 0;
	int rc;

	if (load_model(n, &t, &extra, &extra_len) != 0)
		return 1;
	if (privacy_start(n, t) != 0) {
		train_free(t);
		free(extra);
		return 1;
	}
	rc = core_open(n, t, extra, extra_len);
	free(extra);
	if (rc != 0) {
		train_free(t);
		return rc;
	}
	rc = worker_start(&n->worker, t, n->train_ds, n->test_ds, n->ckpt_path,
	                  n->cfg.training.threads,
	                  (uint64_t)n->cfg.training.epochs * train_steps_per_epoch(t, n->train_ds),
	                  wake_cb, n);
	if (rc != 0) {
		gossip_free(n->core); /* it borrows the model about to be freed */
		n->core = NULL;
		train_free(t);
		log_errorx("cannot start the training thread: %s", err_str(rc));
		return 1;
	}
	if (n->priv.on)
		worker_set_privacy(n->worker, &n->priv);
	return 0;
}

/* --- [Model] Type = external ------------------------------------------------------ */

static void ext_state_path(const struct node *n, char *out, size_t len)
{
	snprintf(out, len, "%s/" EXT_STATE_FILE, n->cfg.node.data_dir);
}

/* The layout and the core's extra, to DataDir/external.state. 0 or -errno. */
static int ext_state_save(struct node *n, const uint8_t *extra, size_t len)
{
	char path[CONFIG_PATH_MAX + 32];
	const void *parts[2] = {n->ext_head, extra};
	size_t lens[2] = {n->ext_head_len, len};
	int rc;

	ext_state_path(n, path, sizeof(path));
	if (n->ext_head == NULL || extra == NULL)
		return -EINVAL;
	rc = file_write_atomic_parts(path, parts, lens, 2, 0600);
	if (rc != 0)
		log_warnx("cannot write %s: %s (a restart would lose what this node averaged "
		          "since the last write)",
		          path, err_str(rc));
	return rc;
}

/*
 * The first trainer's hello: the model is its layout, and the core starts
 * from DataDir/external.state if that holds the same layout. 0, or -1 with
 * why (the trainer is refused; the node goes on waiting).
 */
static int ext_on_layout(void *arg, const struct tmsg_hello *h, uint64_t hash, char *why, size_t wl)
{
	struct node *n = arg;
	char path[CONFIG_PATH_MAX + 32];
	struct tmsg_hello *saved = malloc(sizeof(*saved));
	struct model *m = calloc(1, sizeof(*m));
	struct gossip_ops ops;
	uint8_t *file = NULL;
	const uint8_t *extra = NULL;
	size_t flen = 0, elen = 0;
	int rc;

	if (saved == NULL || m == NULL ||
	    ext_statefile_head(&n->ext_head, &n->ext_head_len, h) != 0) {
		snprintf(why, wl, "the node is out of memory");
		goto fail;
	}
	ext_state_path(n, path, sizeof(path));
	rc = file_read_all(path, 12 + TMSG_MAX_HELLO + 4 * h->n_params + (64u << 10), &file, &flen);
	if (rc == 0) {
		if (ext_statefile_decode(file, flen, saved, &extra, &elen) != 0) {
			snprintf(why, wl, "%s is damaged: move it away to start this node over",
			         path);
			goto fail;
		}
		if (tmsg_layout_hash(saved) != hash) {
			snprintf(why, wl,
			         "this node's DataDir holds the rounds of layout %016llx and the "
			         "trainer declares %016llx: attach that model, or give this one a "
			         "new DataDir",
			         (unsigned long long)tmsg_layout_hash(saved),
			         (unsigned long long)hash);
			goto fail;
		}
	} else if (rc != -ENOENT) {
		snprintf(why, wl, "%s: %s (the file is kept; move it away to start over)", path,
		         err_str(rc));
		goto fail;
	}
	m->spec.type = MODEL_EXTERNAL;
	m->spec.layout = hash;
	m->n_params = (size_t)h->n_params;
	for (size_t i = 0, off = 0; i < h->n_tensors; i++) {
		const struct tmsg_tensor *t = &h->tensors[i];
		struct model_segment *s = &m->segs[m->n_segs++];
		size_t nl = MIN(strlen(t->name), sizeof(s->name) - 1);
		memcpy(s->name, t->name, nl); /* a label, cut short; the hash has all of it */
		s->name[nl] = '\0';
		s->offset = off;
		s->length = (size_t)t->numel;
		s->ndim = t->ndim == 0 ? 1 : MIN(t->ndim, 4u);
		for (uint32_t d = 0; d < 4; d++)
			s->shape[d] = d < t->ndim ? t->shape[d] : (t->ndim == 0 && d == 0);
		for (uint32_t d = 4; d < t->ndim; d++)
			s->shape[3] *= t->shape[d]; /* more than 4 dimensions: folded in the last */
		off += (size_t)t->numel;
	}
	core_ops(n, &ops);
	rc = gossip_alloc(&n->core, &n->cfg, n->id, m, &ops, extra, elen, h->rows, 1);
	if (rc != 0) {
		snprintf(why, wl, "%s",
		         rc == -EINVAL ? "DataDir/" EXT_STATE_FILE " does not belong to this node: "
		                         "move it away to start over"
		                       : "the node is out of memory");
		n->core = NULL;
		goto fail;
	}
	gossip_set_silent(n->core, testhooks_silent_after_accept());
	free(saved);
	n->ext_model = m;
	if (extra != NULL) {
		struct node_status st;
		gossip_status(n->core, &st);
		log_info("resumed from %s: %llu rounds, weight %.3f", path,
		         (unsigned long long)st.rounds_completed, st.weight);
	}
	free(file);
	return 0;
fail:
	log_errorx("trainer refused: %s", why);
	free(n->ext_head);
	n->ext_head = NULL;
	free(file);
	free(saved);
	free(m);
	return -1;
}

static const float *ext_last(void *arg, uint64_t *rounds, uint64_t *known_steps,
                             uint64_t *round_in_flight)
{
	struct node *n = arg;

	*rounds = gossip_rounds_completed(n->core);
	*known_steps = gossip_known_steps(n->core);
	*round_in_flight = gossip_round_id(n->core);
	return gossip_last_result(n->core);
}

static int control_open(struct node *n)
{
	int rc = control_start(&n->ctl, n->loop, n->cfg.node.control_socket, control_answer_cb, n);

	if (rc != 0)
		log_errorx("control socket %s: %s", n->cfg.node.control_socket,
		           rc == -EADDRINUSE ? "a node is already running there" : err_str(rc));
	return rc;
}

/*
 * [Model] Type = external: listens on DataDir/trainer.sock and runs the
 * loop until a trainer's hello gives the model (or the node is told to
 * stop). 0, or 1 after logging why.
 */
static int ext_wait(struct node *n)
{
	char path[CONFIG_PATH_MAX + 32];
	struct ext_ops ops = {
	        .on_layout = ext_on_layout, .last = ext_last, .wake = wake_cb, .arg = n};
	int rc;

	snprintf(path, sizeof(path), "%s/trainer.sock", n->cfg.node.data_dir);
	rc = ext_open(&n->ext, n->loop, path, n->cfg.node.name, &ops);
	if (rc != 0) {
		log_errorx("trainer socket %s: %s", path,
		           rc == -EADDRINUSE ? "a node is already running there" : err_str(rc));
		return 1;
	}
	if (control_open(n) != 0) /* `sotto status` says it waits */
		return 1;
	log_info("[Model] Type = external: waiting for a trainer on %s", path);
	while (n->core == NULL && !n->stopping)
		ev_run(n->loop, EVRUN_ONCE);
	return 0;
}

/* --- the statistics phase (Standardize = federated) ---------------------------- */

static void stats_partial_path(const struct node *n, char *out, size_t len)
{
	snprintf(out, len, "%s/standardize.partial", n->cfg.node.data_dir);
}

static void stats_fail(struct node *n)
{
	n->exit_code = 1;
	n->stopping = true;
	ev_break(n->loop, EVBREAK_ALL);
}

/*
 * Rounds over this site's feature moments, before the model exists. A
 * restart in the middle resumes from DataDir/standardize.partial (the core's
 * counters, push-sum weight, whether its rows are in and last result, written after
 * every result), so it does not add its rows again from the start. 0, or 1
 * after logging why.
 */
static int stats_open(struct node *n)
{
	struct gossip_ops ops;
	char path[CONFIG_PATH_MAX + 32];
	uint8_t *extra = NULL;
	size_t len = 0;
	int rc;

	rc = stats_phase_alloc(&n->sp, n->train_ds);
	if (rc != 0) {
		log_errorx("feature statistics of Dataset %s: %s", n->cfg.training.dataset,
		           err_str(rc));
		return 1;
	}
	core_ops(n, &ops);
	stats_partial_path(n, path, sizeof(path));
	rc = file_read_all(path, 4096 + 4 * stats_phase_model(n->sp)->n_params, &extra, &len);
	if (rc != 0 && rc != -ENOENT)
		log_warnx("%s: %s: the statistics phase starts over", path, err_str(rc));
	rc = gossip_alloc(&n->core, &n->cfg, n->id, stats_phase_model(n->sp), &ops, extra, len,
	                  n->train_ds->rows, 1);
	if (rc == 0 && gossip_last_result(n->core) != NULL &&
	    !stats_phase_resume(n->sp, gossip_last_result(n->core))) {
		gossip_free(n->core);
		n->core = NULL;
		rc = -EINVAL;
	}
	if (rc == -EINVAL && extra != NULL) {
		log_warnx("%s is not a usable statistics phase of these features: it starts over",
		          path);
		rc = gossip_alloc(&n->core, &n->cfg, n->id, stats_phase_model(n->sp), &ops, NULL, 0,
		                  n->train_ds->rows, 1);
	}
	free(extra);
	if (rc != 0) {
		log_errorx("statistics phase: %s", err_str(rc));
		return 1;
	}
	n->stats_started = n->stats_last = mono_ms();
	log_info("Standardize = federated: agreeing the statistics of %u features with the "
	         "peers through secure rounds before training%s",
	         n->train_ds->dims,
	         gossip_last_result(n->core) != NULL ? " (resumed after a restart)" : "");
	return 0;
}

/* A statistics round's result: the estimate moves, and DataDir keeps it. */
static void stats_apply(struct node *n, const struct gossip_act *a)
{
	char path[CONFIG_PATH_MAX + 32];
	double move = stats_phase_apply(n->sp, a->avg, a->snapshot, a->seq);

	free(a->avg);
	free(a->snapshot);
	n->stats_last = mono_ms();
	stats_partial_path(n, path, sizeof(path));
	if (a->extra_len == 0 || file_write_atomic(path, a->extra, a->extra_len, 0600) != 0)
		log_warnx("cannot write %s: a restart would start the statistics phase over", path);
	log_info("feature statistics: result %llu moved them by %.2g deviations (calm %u of %d)",
	         (unsigned long long)stats_phase_applied(n->sp), move, stats_phase_calm(n->sp),
	         STATS_CALM_ROUNDS);
	/* Not before this site's rows are in (or it gave up adding them). */
	if (stats_phase_calm(n->sp) >= STATS_CALM_ROUNDS && gossip_stats_added(n->core))
		n->stats_over = true;
}

/*
 * The phase is over: the statistics go to DataDir/standardize.stats, the
 * datasets are standardised with them, and the node becomes a training
 * node on the same transport.
 */
static void stats_finish(struct node *n)
{
	char path[CONFIG_PATH_MAX + 32], why[CONFIG_PATH_MAX * 2 + 256], comment[256];
	const struct gossip_act *acts;
	struct featstats fs;
	struct node_status st;
	size_t na;
	int rc;

	n->stats_over = false;
	gossip_status(n->core, &st);
	rc = stats_phase_result(n->sp, &fs);
	if (rc != 0) {
		log_errorx("the agreed feature statistics are unusable: %s", err_str(rc));
		stats_fail(n);
		return;
	}
	fs.rows = 0;
	standardize_agreed_path(&n->cfg, path, sizeof(path));
	snprintf(comment, sizeof(comment),
	         "feature statistics of every site's rows, agreed through secure rounds\n"
	         "([Training] Standardize = federated) by %s after %llu rounds",
	         n->cfg.node.name, (unsigned long long)st.rounds_completed);
	rc = featstats_save(&fs, path, comment);
	if (rc != 0) {
		log_errorx("cannot write %s: %s", path, err_str(rc));
		featstats_free(&fs);
		stats_fail(n);
		return;
	}
	stats_partial_path(n, why, sizeof(why));
	(void)unlink(why);

	/* Leave the phase: a round in flight is aborted for its members. */
	gossip_stop(n->core, mono_ms());
	acts = gossip_actions(n->core, &na);
	for (size_t i = 0; i < na; i++)
		if (acts[i].type == GOSSIP_SEND)
			send_to(n, acts[i].peer, &acts[i].msg);
	seal_round_clear(n->seal, 0);
	gossip_free(n->core);
	n->core = NULL;
	stats_phase_free(n->sp);
	n->sp = NULL;
	ev_timer_stop(n->loop, &n->stats_timer);
	ev_timer_stop(n->loop, &n->core_timer);

	rc = standardize_apply(&fs, n->train_ds, n->test_ds, why, sizeof(why));
	featstats_free(&fs);
	if (rc != 0) {
		log_errorx("%s", why);
		stats_fail(n);
		return;
	}
	log_info("feature statistics agreed after %llu rounds and written to %s; Dataset%s "
	         "standardised with them: training starts",
	         (unsigned long long)st.rounds_completed, path,
	         n->test_ds != NULL ? " and TestSet" : "");
	if (model_open(n) != 0) {
		stats_fail(n);
		return;
	}
	gossip_start(n->core, mono_ms());
	run_actions(n);
}

/*
 * Once a second: a node whose peers have moved on to training (one invited
 * it into a training round, or no round for idle_ms) takes its estimate once
 * it has averaged at least once; one that never averaged gives up with a
 * way out.
 */
static void stats_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct node *n = w->data;
	uint64_t now = mono_ms();
	double iv = n->cfg.gossip.interval, rt = n->cfg.gossip.round_timeout;
	uint64_t idle_ms = (uint64_t)(1000.0 * MAX(20.0, 3.0 * (iv + rt)));
	uint64_t limit_ms = (uint64_t)(1000.0 * MAX(300.0, 100.0 * iv));
	const char *why = NULL;
	char idle[96];
	bool have;

	(void)loop;
	(void)revents;
	if (n->sp == NULL || n->stopping)
		return;
	have = gossip_last_result(n->core) != NULL;
	snprintf(idle, sizeof(idle),
	         "no statistics round for %.0fs (the peers have moved on to training?)",
	         (double)(now - n->stats_last) / 1000.0);
	/*
	 * The peers gone to training: a calm result in hand and one of them
	 * invited this node into a training round; or any result in hand and
	 * no round for idle_ms. Waiting cannot improve the estimate then (they
	 * decline every statistics round), and the limit below would take it
	 * anyway. A calm result first shows the estimate agrees with a group
	 * that has converged: a peer that settles early does not cut short a
	 * node whose only result is its first group's.
	 */
	if (have && stats_phase_calm(n->sp) >= 1 && gossip_stats_peer_trains(n->core))
		why = "a peer has moved on to training";
	else if (have && now - n->stats_last > idle_ms)
		why = idle;
	if (why != NULL) {
		if (stats_phase_calm(n->sp) >= 1)
			log_info("%s: taking the estimate", why);
		else
			log_warnx("%s: taking the estimate of the last result, which no calm "
			          "result confirmed",
			          why);
	} else if (now - n->stats_started > limit_ms) {
		if (!have) {
			log_errorx(
			        "no peer averaged feature statistics with this node in %.0fs. If "
			        "the other sites are training already, copy their DataDir/"
			        "standardize.stats here (it is the same at every site) or set "
			        "[Training] Standardize to a copy of it",
			        (double)limit_ms / 1000.0);
			stats_fail(n);
			return;
		}
		log_warnx("the statistics phase took %.0fs without settling: taking the estimate "
		          "of %llu results",
		          (double)limit_ms / 1000.0,
		          (unsigned long long)stats_phase_applied(n->sp));
	} else {
		return;
	}
	stats_finish(n);
}

static int node_open(struct node *n, const char *config_path)
{
	struct transport_options topt;
	struct seal_options sopt;
	char path[CONFIG_PATH_MAX + 32];
	size_t frame_params = 0;
	int rc;

	rc = node_config_load(&n->cfg, config_path, &n->id);
	if (rc == 0)
		/* what `sotto check` says, the same way; it loads the datasets for us */
		rc = node_config_deep_check(&n->cfg, &n->train_ds, &n->test_ds, &n->std_pending);
	if (rc != 0) {
		config_errors_print(&n->cfg, stderr);
		return 2;
	}
	if (!n->cfg.has_node) {
		fprintf(stderr,
		        "sotto run: %s has no [Node] section (for local training use "
		        "`sotto train`)\n",
		        config_path);
		return 2;
	}
	log_set_node(n->cfg.node.name);
	log_set_level((enum log_level)n->cfg.node.log_level);
	testhooks_log();
	if (file_mkdirs(n->cfg.node.data_dir) != 0) {
		log_error("cannot create DataDir %s", n->cfg.node.data_dir);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/lock", n->cfg.node.data_dir);
	n->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (n->lock_fd < 0 || flock(n->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		log_errorx("another sotto run uses %s (or it cannot be locked)",
		           n->cfg.node.data_dir);
		return 1;
	}
	snprintf(n->ckpt_path, sizeof(n->ckpt_path), "%s/checkpoint", n->cfg.node.data_dir);
	{
		/* Leftovers of writes a kill -9 interrupted: never read, just removed. */
		int removed = file_cleanup_tmp(n->cfg.node.data_dir);
		snprintf(path, sizeof(path), "%s/verify", n->cfg.node.data_dir);
		removed += file_cleanup_tmp(path);
		if (removed > 0)
			log_info("removed %d temporary files of interrupted writes", removed);
	}

	if (!n->std_pending && n->cfg.training.standardize == CONFIG_STD_FEDERATED) {
		/* Agreed already: a phase a kill cut short after that is over. */
		stats_partial_path(n, path, sizeof(path));
		(void)unlink(path);
	}
	if (n->cfg.model.type == CONFIG_MODEL_EXTERNAL)
		rc = ext_wait(n);
	else if (n->std_pending)
		rc = stats_open(n);
	else
		rc = model_open(n);
	if (rc != 0 || n->core == NULL) /* NULL: told to stop while waiting for a trainer */
		return rc;
	{
		/* The largest vector either phase averages. */
		struct model_spec spec;
		struct optim_params op;
		if (train_setup_from_config(&spec, &op, &n->cfg, n->train_ds) == 0)
			frame_params = model_spec_n_params(&spec);
		if (n->sp != NULL)
			frame_params = MAX(frame_params, stats_phase_model(n->sp)->n_params);
		if (n->ext_model != NULL)
			frame_params = n->ext_model->n_params;
	}

	memset(&sopt, 0, sizeof(sopt));
	snprintf(path, sizeof(path), "%s/replay.state", n->cfg.node.data_dir);
	sopt.state_path = path;
	/*
	 * The largest frame this model can need: a vector of 32-bit ring
	 * values plus room for the rest. Anything larger is refused before it
	 * is buffered, so a stranger who reaches Listen cannot make NNG hold
	 * more than this per connection.
	 */
	sopt.max_frame = MAX((size_t)1 << 20, 4 * frame_params + ((size_t)64 << 10));
	rc = seal_ctx_alloc(&n->seal, n->id, &sopt);
	if (rc != 0) {
		log_errorx("replay state %s: %s", path, err_str(rc));
		return 1;
	}
	util_nofile_raise(); /* before the transport budgets descriptors */
	memset(&topt, 0, sizeof(topt));
	topt.listen_url = n->cfg.node.listen;
	rc = transport_alloc(&n->tp, n->loop, n->seal, &topt, on_message_cb, n);
	if (rc != 0) {
		log_errorx("transport: %s", err_str(rc));
		return 1;
	}
	transport_set_lost_cb(n->tp, on_peer_lost_cb, n);
	{
		struct transport_fault f;
		if (testhooks_fault(&f) && transport_set_fault(n->tp, &f) != 0) {
			log_errorx("SOTTO_TEST_FAULT: refused by the transport");
			return 1;
		}
	}
	if (testhooks_verify() &&
	    testhooks_verify_start(n->cfg.node.data_dir, n->id->sign_pk) != 0) {
		log_error("verify: cannot create %s/verify", n->cfg.node.data_dir);
		return 1;
	}
	for (size_t i = 0; i < n->cfg.n_peers; i++) {
		rc = transport_peer_add(n->tp, n->cfg.peers[i].public_key_bin,
		                        n->cfg.peers[i].endpoint, n->cfg.peers[i].name);
		if (rc != 0) {
			log_errorx("peer %s: %s", n->cfg.peers[i].name, err_str(rc));
			return 1;
		}
	}
	rc = transport_start(n->tp);
	if (rc != 0) {
		log_errorx("cannot listen on %s: %s", n->cfg.node.listen, err_str(rc));
		return 1;
	}
	if (n->ctl == NULL && control_open(n) != 0)
		return 1;
	if (n->cfg.node.metrics_listen[0] != '\0' &&
	    metrics_start(&n->metrics, n->cfg.node.metrics_listen) != 0)
		return 1;
	return 0;
}

/*
 * libnng 1.5.2 (Debian bookworm) can deadlock inside nng_close() while peers
 * connect and disconnect around it (the chaos test caught it: the main
 * thread waits for the socket's pipes, the reaper waits too; cf.
 * nanomsg/nng#1813, fixed in later releases). By then the node has written
 * its checkpoint and replay state, so a watchdog ends the process if closing
 * the sockets takes longer than CLOSE_WATCHDOG_S, instead of hanging until
 * someone sends SIGKILL.
 */
#define CLOSE_WATCHDOG_S 10

struct close_watchdog {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool done, started;
	int exit_code;
};

static void *close_watchdog_main(void *arg)
{
	struct close_watchdog *wd = arg;
	struct timespec until;
	bool done;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += CLOSE_WATCHDOG_S;
	pthread_mutex_lock(&wd->lock);
	while (!wd->done && pthread_cond_timedwait(&wd->cond, &wd->lock, &until) == 0)
		;
	done = wd->done;
	pthread_mutex_unlock(&wd->lock);
	if (!done) {
		log_warnx("the network library did not close its sockets within %d s; "
		          "state is saved, exiting anyway",
		          CLOSE_WATCHDOG_S);
		_exit(wd->exit_code);
	}
	return NULL;
}

static void close_watchdog_start(struct close_watchdog *wd, int exit_code)
{
	pthread_condattr_t ca;

	memset(wd, 0, sizeof(*wd));
	pthread_mutex_init(&wd->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* immune to clock steps */
	pthread_cond_init(&wd->cond, &ca);
	pthread_condattr_destroy(&ca);
	wd->exit_code = exit_code;
	wd->started = pthread_create(&wd->thread, NULL, close_watchdog_main, wd) == 0;
}

static void close_watchdog_stop(struct close_watchdog *wd)
{
	pthread_mutex_lock(&wd->lock);
	wd->done = true;
	pthread_cond_signal(&wd->cond);
	pthread_mutex_unlock(&wd->lock);
	if (wd->started)
		pthread_join(wd->thread, NULL);
	pthread_cond_destroy(&wd->cond);
	pthread_mutex_destroy(&wd->lock);
}

static void node_close(struct node *n)
{
	struct close_watchdog wd;

	if (n->core != NULL && n->tp != NULL) {
		/* Tell the members of a round in flight; nobody applies anything from it. */
		gossip_stop(n->core, mono_ms());
		run_actions(n);
		/* Give NNG a moment to hand the ABORTs to the sockets. */
		for (int i = 0; i < 20 && transport_pending(n->tp, NULL) > 0; i++)
			ev_run(n->loop, EVRUN_ONCE | EVRUN_NOWAIT);
	}
	if (n->worker != NULL) {
		struct node_status st;
		size_t len = 0;
		const uint8_t *extra = NULL;

		memset(&st, 0, sizeof(st));
		if (n->core != NULL) {
			extra = gossip_checkpoint_extra(n->core, &len);
			gossip_status(n->core, &st);
		}
		if (worker_stop(n->worker, extra, len) == 0 && n->core != NULL)
			log_info("checkpoint written: %llu rounds, %.2f epochs",
			         (unsigned long long)st.rounds_completed, st.epochs_trained);
		n->worker = NULL;
	}
	if (n->ext != NULL && n->core != NULL) {
		size_t len = 0;
		const uint8_t *extra = gossip_checkpoint_extra(n->core, &len);
		if (ext_state_save(n, extra, len) == 0)
			log_info("state written: %llu rounds",
			         (unsigned long long)gossip_rounds_completed(n->core));
	}
	ext_free(n->ext);
	n->ext = NULL;
	/* Everything that must survive is on disk before NNG is touched. */
	if (n->seal != NULL)
		seal_round_clear(n->seal, 0);
	if (n->seal != NULL && seal_state_save(n->seal) != 0)
		log_warnx("cannot save the replay state");
	control_stop(n->ctl);
	close_watchdog_start(&wd, n->exit_code);
	testhook_close_hang();
	metrics_stop(n->metrics);
	transport_free(n->tp);
	close_watchdog_stop(&wd);
	gossip_free(n->core);
	free(n->ext_model); /* after the core, which borrowed it */
	free(n->ext_head);
	stats_phase_free(n->sp);
	seal_ctx_free(n->seal);
	dataset_free(n->train_ds);
	dataset_free(n->test_ds);
	identity_free(n->id);
	config_fini(&n->cfg);
	if (n->lock_fd >= 0)
		close(n->lock_fd);
}

int cmd_run(int argc, char **argv)
{
	const char *path = cli_config_arg(argc, argv);
	struct node *n;
	int rc;

	if (path == NULL || argc != 3) {
		fprintf(stderr, "usage: sotto run -c FILE\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	if (testhooks_init() != 0)
		return 2;
	/*
	 * A reload (SIGHUP: `sotto reload`'s signal form, systemd's ExecReload)
	 * that comes while the node starts would end it, SIGHUP's default, until
	 * the loop's handler is in place: until then it is ignored (the node is
	 * reading its config anyway). The chaos harness caught a node killed so.
	 */
	signal(SIGHUP, SIG_IGN);
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return 1;
	n->lock_fd = -1;
	n->loop = ev_default_loop(EVFLAG_AUTO);
	ev_async_init(&n->wake, worker_events_cb);
	n->wake.data = n;
	ev_async_start(n->loop, &n->wake);
	ev_init(&n->core_timer, core_timer_cb);
	n->core_timer.data = n;
	ev_init(&n->deferred_timer, deferred_timer_cb);
	n->deferred_timer.repeat = 0.25;
	n->deferred_timer.data = n;
	/* Before node_open: an external node waits there for its trainer. */
	ev_signal_init(&n->sigterm, signal_cb, SIGTERM);
	ev_signal_init(&n->sigint, signal_cb, SIGINT);
	n->sigterm.data = n->sigint.data = n;
	ev_signal_start(n->loop, &n->sigterm);
	ev_signal_start(n->loop, &n->sigint);
	rc = node_open(n, path);
	if (rc != 0 || n->core == NULL) {
		node_close(n);
		free(n);
		return rc;
	}
	ev_signal_init(&n->sighup, sighup_cb, SIGHUP);
	n->sighup.data = n;
	ev_signal_start(n->loop, &n->sighup);
	signal(SIGPIPE, SIG_IGN);
	ev_timer_init(&n->status_timer, status_timer_cb, 1.0, 1.0);
	n->status_timer.data = n;
	ev_timer_start(n->loop, &n->status_timer);

	log_info("listening on %s with %zu peers, groups of %d (t = %d), interval %.1fs",
	         n->cfg.node.listen, n->cfg.n_peers, n->cfg.gossip.group_size,
	         MAX(n->cfg.gossip.threshold,
	             round_min_threshold((uint8_t)n->cfg.gossip.group_size)),
	         n->cfg.gossip.interval);
	if (n->sp != NULL) {
		ev_timer_init(&n->stats_timer, stats_timer_cb, 1.0, 1.0);
		n->stats_timer.data = n;
		ev_timer_start(n->loop, &n->stats_timer);
	}
	gossip_start(n->core, mono_ms());
	run_actions(n);
	sd_notify(0, "READY=1"); /* systemd Type=notify; nothing without NOTIFY_SOCKET */
	ev_run(n->loop, 0);

	rc = n->exit_code;
	node_close(n);
	free(n);
	return rc;
}
