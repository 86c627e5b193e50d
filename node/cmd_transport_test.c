/*
 * cmd_transport_test.c: `sotto transport-test`, a hidden test-only command
 * (not in the usage list) that runs a node's real transport from its
 * config, for the loopback test (tests/cli/transport_loopback.sh).
 *
 *   sotto transport-test -c FILE [--send PEER --bytes N [--no-ack] [--delay S]]
 *                        [--expect-vectors N] [--expect-unknown N]
 *                        [--timeout S] [--linger S]
 *
 * Every node answers each MASKED vector from a pinned peer with a STATUS
 * whose seq is the first 8 bytes of the vector's BLAKE2b digest, and
 * checks the vector against the deterministic test pattern (the ChaCha20
 * keystream of an all-zero key). A sender waits for that acknowledgement.
 * Like the daemon, it first raises its descriptor limit (util_nofile_raise).
 * The last stdout line is "transport-test: key=value ...". Exit 0 when
 * every expectation was met, 1 on timeout, 2 on usage or config errors.
 * Not a benchmark and not a daemon: no training, no rounds.
 */
#include "config/config.h"
#include "crypto/identity.h"
#include "crypto/seal.h"
#include "node/cli.h"
#include "node/transport.h"
#include "protocol/msg.h"
#include "util/bytes.h"
#include "util/err.h"
#include "util/file.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <ev.h>
#include <inttypes.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tt {
	struct transport *t;
	struct ev_loop *loop;
	/* sender side */
	const uint8_t *send_to;
	bool need_ack;
	uint64_t want_ack;
	bool acked;
	/* receiver side */
	long expect_vectors, expect_unknown;
	long vectors, intact;
	size_t last_bytes;
	bool linger_done;
	/* the vector to send (--delay: S seconds after start) */
	uint64_t round_id;
	size_t bytes;
	bool send_failed;
};

/* The test pattern: n bytes of ChaCha20 keystream under an all-zero key. */
static uint8_t *pattern(size_t n)
{
	static const uint8_t key[crypto_stream_chacha20_KEYBYTES];
	static const uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];
	uint8_t *p = malloc(n > 0 ? n : 1);

	if (p != NULL)
		crypto_stream_chacha20(p, n, nonce, key);
	return p;
}

static uint64_t digest64(const uint8_t *p, size_t n)
{
	uint8_t h[32];

	crypto_generichash(h, sizeof(h), p, n, NULL, 0);
	return bytes_get_be64(h);
}

static void on_rx(void *arg, const struct transport_rx *rx)
{
	struct tt *tt = arg;
	const struct msg *m = rx->msg;

	if (m->type == MSG_MASKED) {
		const struct msg_bytes *v = &m->u.masked.vector;
		uint8_t *want = pattern(v->len);
		struct msg ack = {.type = MSG_STATUS, .round_id = m->round_id};
		int rc;
		tt->vectors++;
		tt->last_bytes = v->len;
		if (want != NULL && (v->len == 0 || memcmp(want, v->ptr, v->len) == 0))
			tt->intact++;
		free(want);
		ack.u.status.seq = digest64(v->ptr, v->len);
		rc = transport_send(tt->t, rx->sender, &ack);
		if (rc != 0)
			log_warnx("transport-test: cannot acknowledge: %s", err_str(rc));
		log_info("transport-test: %zu-byte vector from %s", v->len, rx->sender_name);
	} else if (m->type == MSG_STATUS && tt->send_to != NULL &&
	           memcmp(rx->sender, tt->send_to, SEAL_KEY_BYTES) == 0 && tt->need_ack &&
	           m->u.status.seq == tt->want_ack) {
		tt->acked = true;
	}
}

static bool tt_done(const struct tt *tt)
{
	struct transport_stats st;

	transport_stats_get(tt->t, &st);
	if (tt->need_ack && !tt->acked)
		return false;
	if (tt->vectors < tt->expect_vectors || tt->intact < tt->expect_vectors)
		return false;
	if ((long)st.seal.unknown_sender < tt->expect_unknown)
		return false;
	/* An acknowledgement still queued (the dial back to its sender has not
	 * connected yet) must go out before we stop: not done until then. */
	if (transport_pending(tt->t, NULL) > 0)
		return false;
	return tt->linger_done;
}

static void check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	if (tt_done(w->data))
		ev_break(loop, EVBREAK_ALL);
}

/* Sends the test vector to tt->send_to; false if it could not be queued. */
static bool tt_send(struct tt *tt)
{
	struct msg m = {.type = MSG_MASKED, .round_id = tt->round_id};
	uint8_t *v = pattern(tt->bytes);
	int rc;

	if (v == NULL)
		return false;
	m.u.masked.n_values = (uint32_t)(tt->bytes / 4);
	m.u.masked.weight = 1.0;
	m.u.masked.vector = (struct msg_bytes){v, tt->bytes};
	rc = transport_send(tt->t, tt->send_to, &m);
	free(v);
	if (rc != 0)
		log_errorx("transport-test: send: %s", err_str(rc));
	return rc == 0;
}

static void send_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tt *tt = w->data;
	(void)revents;
	if (!tt_send(tt)) {
		tt->send_failed = true;
		ev_break(loop, EVBREAK_ALL);
	}
}

static void linger_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tt *tt = w->data;
	(void)loop;
	(void)revents;
	tt->linger_done = true;
}

static void stop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static int usage(void)
{
	fprintf(stderr, "usage: sotto transport-test -c FILE [--send PEER --bytes N [--no-ack]]\n"
	                "       [--expect-vectors N] [--expect-unknown N] [--timeout S] "
	                "[--linger S] [--delay S]\n");
	return 2;
}

int cmd_transport_test(int argc, char **argv)
{
	struct config cfg;
	struct identity *id = NULL;
	struct seal_ctx *seal = NULL;
	struct tt tt = {0};
	struct transport_options topt = {0};
	struct transport_stats st;
	struct seal_options sopt = {0};
	const char *path = NULL, *send_name = NULL;
	char state_path[CONFIG_PATH_MAX + 32];
	int64_t bytes = 0, ev = 0, eu = 0;
	double timeout = 30, linger = 0, delay = 0;
	bool no_ack = false, cfg_loaded = false;
	ev_timer check_w, linger_w, stop_w, send_w;
	ev_signal sigint_w, sigterm_w;
	int rc, ret = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--no-ack") == 0) {
			no_ack = true;
			continue;
		}
		if (v == NULL)
			return usage();
		i++;
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
			path = v;
		else if (strcmp(a, "--send") == 0)
			send_name = v;
		else if (strcmp(a, "--bytes") == 0 &&
		         util_parse_i64(&bytes, v, 4, MSG_MAX_VECTOR_BYTES) == 0)
			continue;
		else if (strcmp(a, "--expect-vectors") == 0 && util_parse_i64(&ev, v, 0, 1000) == 0)
			continue;
		else if (strcmp(a, "--expect-unknown") == 0 &&
		         util_parse_i64(&eu, v, 0, 1000000) == 0)
			continue;
		else if (strcmp(a, "--timeout") == 0 &&
		         util_parse_double(&timeout, v, 0.1, 3600) == 0)
			continue;
		else if (strcmp(a, "--linger") == 0 && util_parse_double(&linger, v, 0, 3600) == 0)
			continue;
		else if (strcmp(a, "--delay") == 0 && util_parse_double(&delay, v, 0, 3600) == 0)
			continue;
		else
			return usage();
	}
	if (path == NULL || (send_name != NULL) != (bytes > 0))
		return usage();
	rc = node_config_load(&cfg, path, &id);
	cfg_loaded = true;
	if (rc != 0 || !cfg.has_node) {
		config_errors_print(&cfg, stderr);
		ret = 2;
		goto out;
	}
	log_set_node(cfg.node.name);
	if (file_mkdirs(cfg.node.data_dir) != 0) {
		log_errorx("transport-test: cannot create %s", cfg.node.data_dir);
		goto out;
	}
	snprintf(state_path, sizeof(state_path), "%s/replay.state", cfg.node.data_dir);
	sopt.state_path = state_path;
	rc = seal_ctx_alloc(&seal, id, &sopt);
	if (rc != 0) {
		log_errorx("transport-test: %s: %s", state_path, err_str(rc));
		goto out;
	}
	util_nofile_raise();
	tt.loop = EV_DEFAULT;
	tt.expect_vectors = (long)ev;
	tt.expect_unknown = (long)eu;
	topt.listen_url = cfg.node.listen;
	rc = transport_alloc(&tt.t, tt.loop, seal, &topt, on_rx, &tt);
	for (size_t i = 0; rc == 0 && i < cfg.n_peers; i++) {
		struct config_peer *p = &cfg.peers[i];
		rc = transport_peer_add(tt.t, p->public_key_bin, p->endpoint, p->name);
		if (send_name != NULL && strcmp(p->name, send_name) == 0)
			tt.send_to = p->public_key_bin;
	}
	if (rc == 0)
		rc = transport_start(tt.t);
	if (rc != 0) {
		log_errorx("transport-test: transport: %s", err_str(rc));
		goto out;
	}
	if (send_name != NULL && tt.send_to == NULL) {
		fprintf(stderr, "transport-test: no peer named '%s'\n", send_name);
		ret = 2;
		goto out;
	}
	ev_timer_init(&send_w, send_cb, delay, 0.0);
	send_w.data = &tt;
	if (tt.send_to != NULL) {
		uint8_t *v = pattern((size_t)bytes);
		if (v == NULL)
			goto out;
		randombytes_buf(&tt.round_id, sizeof(tt.round_id));
		tt.round_id |= 1;
		tt.bytes = (size_t)bytes;
		tt.need_ack = !no_ack;
		tt.want_ack = digest64(v, (size_t)bytes);
		free(v);
		if (delay > 0)
			ev_timer_start(tt.loop, &send_w);
		else if (!tt_send(&tt))
			goto out;
	}
	tt.linger_done = linger <= 0;
	ev_timer_init(&check_w, check_cb, 0.01, 0.01);
	check_w.data = &tt;
	ev_timer_init(&linger_w, linger_cb, linger, 0.0);
	linger_w.data = &tt;
	ev_timer_init(&stop_w, stop_cb, timeout, 0.0);
	ev_signal_init(&sigint_w, signal_cb, SIGINT);
	ev_signal_init(&sigterm_w, signal_cb, SIGTERM);
	ev_timer_start(tt.loop, &check_w);
	if (linger > 0)
		ev_timer_start(tt.loop, &linger_w);
	ev_timer_start(tt.loop, &stop_w);
	ev_signal_start(tt.loop, &sigint_w);
	ev_signal_start(tt.loop, &sigterm_w);
	ev_run(tt.loop, 0);
	ev_timer_stop(tt.loop, &check_w);
	ev_timer_stop(tt.loop, &linger_w);
	ev_timer_stop(tt.loop, &send_w);
	ev_timer_stop(tt.loop, &stop_w);
	ev_signal_stop(tt.loop, &sigint_w);
	ev_signal_stop(tt.loop, &sigterm_w);

	ret = !tt.send_failed && tt_done(&tt) ? 0 : 1;
	if (seal_state_save(seal) != 0)
		log_warnx("transport-test: could not save %s", state_path);
	transport_stats_get(tt.t, &st);
	printf("transport-test: done=%d vectors=%ld intact=%ld bytes=%zu acked=%d "
	       "frames_in=%" PRIu64 " frames_out=%" PRIu64 " unknown_sender=%" PRIu64
	       " forged=%" PRIu64 " replayed=%" PRIu64 " malformed=%" PRIu64
	       " conns_in_max=%" PRIu64 " conns_refused_per_address=%" PRIu64
	       " conns_refused_limit=%" PRIu64 " conns_auth_timeout=%" PRIu64
	       " conns_no_frame=%" PRIu64 "\n",
	       ret == 0, tt.vectors, tt.intact, tt.last_bytes, tt.acked, st.frames_in,
	       st.frames_out, st.seal.unknown_sender, st.seal.forged, st.seal.replayed,
	       st.seal.malformed, st.conns_in_max, st.conns_refused_per_address,
	       st.conns_refused_limit, st.conns_auth_timeout, st.conns_no_frame);
out:
	transport_free(tt.t);
	seal_ctx_free(seal);
	identity_free(id);
	if (cfg_loaded)
		config_fini(&cfg);
	return ret;
}
