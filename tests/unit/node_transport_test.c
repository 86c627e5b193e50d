/*
 * node_transport_test.c: the NNG transport in one process, several
 * transports on one libev loop over ipc:// sockets. A 10 MB vector arrives
 * intact and the loop stays responsive meanwhile; a reply comes back; an
 * unpinned sender and raw garbage are dropped and counted; order holds;
 * frames queue while a peer is down and flow once it listens; frames over
 * the receiver's limit never arrive (and the link recovers); a full queue
 * refuses; injected drops, duplicates and delays behave.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "crypto/identity.h"
#include "crypto/seal.h"
#include "node/transport.h"
#include "protocol/msg.h"
#include "util/log.h"

#include <errno.h>
#include <ev.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct node {
	struct identity *id;
	struct seal_ctx *seal;
	struct transport *t;
	char url[128];
	/* what arrived */
	int n_rx;
	int types[8];
	uint64_t last_seq, seq_errors;
	size_t vec_len;
	uint8_t vec_hash[32];
	bool reply_status; /* answer a MASKED with a STATUS */
};

static char dir[] = "/tmp/sotto-tt-XXXXXX";
static int gen; /* one ipc name per node, so a failed test cannot block the next */
static struct ev_loop *loop;
static int ticks; /* loop wake-ups of a 1 ms timer while waiting */

static void on_rx(void *arg, const struct transport_rx *rx)
{
	struct node *n = arg;
	const struct msg *m = rx->msg;

	if (n->n_rx < 8)
		n->types[n->n_rx] = m->type;
	n->n_rx++;
	if (m->type == MSG_PING) {
		if (m->u.ping.seq != n->last_seq + 1)
			n->seq_errors++;
		n->last_seq = m->u.ping.seq;
	}
	if (m->type == MSG_MASKED) {
		n->vec_len = m->u.masked.vector.len;
		crypto_generichash(n->vec_hash, 32, m->u.masked.vector.ptr, m->u.masked.vector.len,
		                   NULL, 0);
		if (n->reply_status) {
			struct msg s = {.type = MSG_STATUS, .round_id = m->round_id};
			s.u.status.seq = 77;
			assert_int_equal(transport_send(n->t, rx->sender, &s), 0);
		}
	}
}

static void node_init(struct node *n, const char *name, const struct transport_options *extra)
{
	struct transport_options o = {.reconnect_min_ms = 20, .reconnect_max_ms = 200};
	memset(n, 0, sizeof(*n));
	if (extra != NULL)
		o = *extra;
	n->id = identity_generate();
	assert_non_null(n->id);
	assert_int_equal(seal_ctx_alloc(&n->seal, n->id, NULL), 0);
	snprintf(n->url, sizeof(n->url), "ipc://%s/%s%d.ipc", dir, name, ++gen);
	o.listen_url = n->url;
	assert_int_equal(transport_alloc(&n->t, loop, n->seal, &o, on_rx, n), 0);
}

static void node_fini(struct node *n)
{
	transport_free(n->t);
	seal_ctx_free(n->seal);
	identity_free(n->id);
}

static void link_nodes(struct node *from, struct node *to)
{
	assert_int_equal(transport_peer_add(from->t, to->id->sign_pk, to->url, "peer"), 0);
}

static bool (*wait_cond)(void);
static void tick_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ticks++;
	if (wait_cond())
		ev_break(l, EVBREAK_ALL);
}

static void timeout_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(l, EVBREAK_ALL);
}

/* Runs the loop until cond() holds or timeout_s passes; returns cond(). */
static bool run_until(bool (*cond)(void), double timeout_s)
{
	ev_timer tick, to;
	wait_cond = cond;
	ev_timer_init(&tick, tick_cb, 0.001, 0.001);
	ev_timer_init(&to, timeout_cb, timeout_s, 0.0);
	ev_timer_start(loop, &tick);
	ev_timer_start(loop, &to);
	if (!cond())
		ev_run(loop, 0);
	ev_timer_stop(loop, &tick);
	ev_timer_stop(loop, &to);
	return cond();
}

static struct node A, B, C;
static int want_rx;
static bool cond_b_rx(void)
{
	return B.n_rx >= want_rx;
}
static bool cond_a_rx(void)
{
	return A.n_rx >= want_rx;
}
static bool cond_a_drained(void)
{
	return transport_pending(A.t, NULL) == 0;
}
static bool cond_b_dropped6(void)
{
	struct transport_stats st;
	transport_stats_get(B.t, &st);
	return st.dropped_seal >= 6;
}
static bool cond_b_replayed5(void)
{
	struct transport_stats st;
	transport_stats_get(B.t, &st);
	return st.seal.replayed >= 5;
}
static bool cond_never(void)
{
	return false;
}

static int lost_a;
static uint8_t lost_pk[32];
static void on_lost(void *arg, const uint8_t *peer, const char *name)
{
	(void)arg;
	(void)name;
	lost_a++;
	memcpy(lost_pk, peer, 32);
}
static uint8_t pk_of_b[32]; /* B's key as A knows it, across B's restart */
static bool cond_a_connected(void)
{
	return transport_peer_connected(A.t, pk_of_b);
}
static bool cond_a_lost(void)
{
	return lost_a > 0;
}

static void ping(struct node *from, struct node *to, uint64_t seq, int want_rc)
{
	struct msg m = {.type = MSG_PING};
	m.u.ping.seq = seq;
	assert_int_equal(transport_send(from->t, to->id->sign_pk, &m), want_rc);
}

static int setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	loop = ev_loop_new(EVFLAG_AUTO);
	return loop == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char path[256];
	(void)state;
	ev_loop_destroy(loop);
	for (int g = 1; g <= gen; g++) {
		for (const char *n = "abc"; *n != '\0'; n++) {
			snprintf(path, sizeof(path), "%s/%c%d.ipc", dir, *n, g);
			unlink(path);
		}
	}
	rmdir(dir);
	return 0;
}

static void test_vector_and_reply(void **state)
{
	const size_t n = 10u * 1000 * 1000;
	struct transport_stats st;
	struct msg m = {.type = MSG_MASKED, .round_id = 0xabcdef};
	uint8_t *v, h[32];
	(void)state;
	node_init(&A, "a", NULL);
	node_init(&B, "b", NULL);
	link_nodes(&A, &B);
	link_nodes(&B, &A);
	B.reply_status = true;
	assert_int_equal(transport_start(A.t), 0);
	assert_int_equal(transport_start(B.t), 0);
	v = malloc(n);
	assert_non_null(v);
	randombytes_buf(v, n);
	crypto_generichash(h, 32, v, n, NULL, 0);
	m.u.masked.index = 1;
	m.u.masked.n_values = (uint32_t)(n / 4);
	m.u.masked.weight = 2.0;
	m.u.masked.vector = (struct msg_bytes){v, n};
	ticks = 0;
	assert_int_equal(transport_send(A.t, B.id->sign_pk, &m), 0);
	free(v); /* the transport copied it */
	want_rx = 1;
	assert_true(run_until(cond_b_rx, 20));
	assert_int_equal(B.types[0], MSG_MASKED);
	assert_int_equal(B.vec_len, n);
	assert_memory_equal(B.vec_hash, h, 32);
	assert_true(run_until(cond_a_rx, 10));
	assert_int_equal(A.types[0], MSG_STATUS);
	/* The loop kept turning while 10 MB moved (no timing asserted). */
	assert_true(ticks > 0);
	transport_stats_get(B.t, &st);
	assert_true(st.frames_in == 1 && st.bytes_in > n && st.frames_out == 1);
	assert_true(st.seal.opened == 1 && st.dropped_seal == 0);
	assert_int_equal(transport_pending(A.t, NULL), 0);
	node_fini(&A);
	node_fini(&B);
}

static void test_unknown_sender_and_garbage(void **state)
{
	struct transport_stats st;
	nng_socket raw;
	nng_dialer d;
	uint8_t junk[300];
	(void)state;
	node_init(&B, "b", NULL);
	node_init(&C, "c", NULL);
	link_nodes(&C, &B); /* C knows B; B does not know C */
	assert_int_equal(transport_start(B.t), 0);
	assert_int_equal(transport_start(C.t), 0);
	for (uint64_t i = 1; i <= 3; i++)
		ping(&C, &B, i, 0);
	/* Raw frames: garbage, a short one, and a header of version 9. */
	assert_int_equal(nng_push0_open(&raw), 0);
	assert_int_equal(nng_dialer_create(&d, raw, B.url), 0);
	assert_int_equal(nng_dialer_start(d, 0), 0);
	memset(junk, 0xab, sizeof(junk));
	assert_int_equal(nng_send(raw, junk, sizeof(junk), 0), 0);
	assert_int_equal(nng_send(raw, junk, 10, 0), 0);
	memcpy(junk, "STO\x09", 4);
	assert_int_equal(nng_send(raw, junk, sizeof(junk), 0), 0);
	assert_true(run_until(cond_b_dropped6, 10));
	run_until(cond_never, 0.1);
	transport_stats_get(B.t, &st);
	assert_int_equal(B.n_rx, 0);
	assert_true(st.seal.unknown_sender == 3);
	assert_true(st.seal.malformed == 2 && st.seal.bad_version == 1);
	assert_true(st.dropped_seal == 6 && st.frames_in == 0);
	nng_close(raw);
	node_fini(&B);
	node_fini(&C);
}

/* Frames sent before the peer listens wait in the queue, in order. */
static void test_order_and_late_peer(void **state)
{
	(void)state;
	node_init(&A, "a", NULL);
	node_init(&B, "b", NULL);
	link_nodes(&A, &B);
	link_nodes(&B, &A);
	assert_int_equal(transport_start(A.t), 0);
	for (uint64_t i = 1; i <= 200; i++)
		ping(&A, &B, i, 0);
	run_until(cond_never, 0.1);
	assert_true(transport_pending(A.t, B.id->sign_pk) > 0);
	assert_int_equal(transport_start(B.t), 0);
	want_rx = 200;
	assert_true(run_until(cond_b_rx, 10));
	assert_int_equal(B.seq_errors, 0);
	assert_true(B.last_seq == 200);
	assert_int_equal(transport_pending(A.t, NULL), 0);
	node_fini(&A);
	node_fini(&B);
}

/*
 * A's connection to B comes up (transport_peer_connected) and, when B's
 * process goes away, A hears of it on its loop (the lost callback) while
 * NNG keeps redialing; when B is back, A is connected again.
 */
static void test_peer_lost_and_back(void **state)
{
	struct transport_options o = {.reconnect_min_ms = 20, .reconnect_max_ms = 200};

	(void)state;
	lost_a = 0;
	node_init(&A, "a", NULL);
	node_init(&B, "b", NULL);
	memcpy(pk_of_b, B.id->sign_pk, 32);
	transport_set_lost_cb(A.t, on_lost, NULL);
	link_nodes(&A, &B);
	assert_false(transport_peer_connected(A.t, pk_of_b));
	assert_int_equal(transport_start(A.t), 0);
	assert_int_equal(transport_start(B.t), 0);
	assert_true(run_until(cond_a_connected, 10));
	assert_int_equal(lost_a, 0);
	/* B's process goes away: A is told once, on its loop */
	transport_free(B.t);
	assert_true(run_until(cond_a_lost, 10));
	run_until(cond_never, 0.1);
	assert_int_equal(lost_a, 1);
	assert_memory_equal(lost_pk, pk_of_b, 32);
	assert_false(transport_peer_connected(A.t, pk_of_b));
	/* B is back at the same address: A's dialer finds it again */
	o.listen_url = B.url;
	assert_int_equal(transport_alloc(&B.t, loop, B.seal, &o, on_rx, &B), 0);
	assert_int_equal(transport_start(B.t), 0);
	assert_true(run_until(cond_a_connected, 10));
	assert_int_equal(lost_a, 1);
	node_fini(&A);
	node_fini(&B);
}

/* B refuses frames above its limit (NNG drops the pipe); the link recovers. */
static void test_oversized_and_queue_full(void **state)
{
	struct transport_options small = {
	        .max_frame = 64 * 1024, .reconnect_min_ms = 20, .reconnect_max_ms = 100};
	struct transport_options tiny_queue = {
	        .queue_max_frames = 3, .reconnect_min_ms = 20, .reconnect_max_ms = 100};
	struct msg m = {.type = MSG_RESULT, .round_id = 5};
	uint8_t *v = calloc(1, 100 * 1000), b_pk[32];
	(void)state;
	assert_non_null(v);
	node_init(&A, "a", &tiny_queue);
	node_init(&B, "b", &small);
	link_nodes(&A, &B);
	link_nodes(&B, &A);
	assert_int_equal(transport_start(A.t), 0);
	assert_int_equal(transport_start(B.t), 0);
	m.u.result.n_counted = 3;
	m.u.result.counted[1] = 1;
	m.u.result.counted[2] = 2;
	m.u.result.n_values = 100 * 1000;
	m.u.result.sum = (struct msg_bytes){v, 100 * 1000};
	assert_int_equal(transport_send(A.t, B.id->sign_pk, &m), 0);
	run_until(cond_never, 0.3);
	assert_int_equal(B.n_rx, 0);
	/*
	 * The link recovers. NNG loses a message handed to a pipe that breaks,
	 * and A may not have seen the break yet: ping until one gets through.
	 */
	want_rx = 1;
	for (uint64_t i = 1; i <= 100 && B.n_rx == 0; i++) {
		struct msg p = {.type = MSG_PING};
		int rc;
		p.u.ping.seq = i;
		rc = transport_send(A.t, B.id->sign_pk, &p);
		assert_true(rc == 0 || rc == -ENOBUFS); /* A's queue holds 3 */
		run_until(cond_b_rx, 0.1);
	}
	assert_true(B.n_rx >= 1);
	assert_int_equal(B.types[0], MSG_PING);
	assert_true(run_until(cond_a_drained, 5));
	/* B cannot seal a frame that large itself. */
	assert_int_equal(transport_send(B.t, A.id->sign_pk, &m), -EMSGSIZE);
	/* With B gone, A's queue of 3 fills up. */
	memcpy(b_pk, B.id->sign_pk, sizeof(b_pk));
	node_fini(&B);
	run_until(cond_never, 0.2);
	{
		/* Until A notices the broken pipe a ping may still leave; then 3 queue. */
		struct transport_stats st;
		int rc = 0;
		for (uint64_t i = 200; i < 220 && rc == 0; i++) {
			struct msg p = {.type = MSG_PING};
			p.u.ping.seq = i;
			rc = transport_send(A.t, b_pk, &p);
		}
		assert_int_equal(rc, -ENOBUFS);
		assert_int_equal(transport_pending(A.t, b_pk), 3);
		transport_stats_get(A.t, &st);
		assert_true(st.queue_full == 1);
	}
	free(v);
	node_fini(&A);
}

static void test_fault_injection(void **state)
{
	struct transport_fault dup = {.dup = 1.0, .seed = 1, .budget = 5};
	struct transport_fault drop = {.drop = 1.0, .seed = 2, .budget = 3};
	struct transport_fault delay = {.delay = 1.0, .delay_max_s = 0.05, .seed = 3, .budget = 10};
	struct transport_fault bad = {.drop = 0.8, .dup = 0.8};
	struct transport_stats sa, sb;
	(void)state;
	node_init(&A, "a", NULL);
	node_init(&B, "b", NULL);
	link_nodes(&A, &B);
	link_nodes(&B, &A);
	assert_int_equal(transport_start(A.t), 0);
	assert_int_equal(transport_start(B.t), 0);
	assert_int_equal(transport_set_fault(A.t, &bad), -EINVAL);
	/* Duplicates: B delivers each once and refuses each copy as a replay. */
	assert_int_equal(transport_set_fault(A.t, &dup), 0);
	for (uint64_t i = 1; i <= 5; i++)
		ping(&A, &B, i, 0);
	want_rx = 5;
	assert_true(run_until(cond_b_rx, 5));
	assert_true(run_until(cond_b_replayed5, 5));
	transport_stats_get(B.t, &sb);
	assert_int_equal(B.n_rx, 5);
	assert_true(sb.seal.replayed == 5);
	/* Drops: three frames vanish, the budget then runs out. */
	assert_int_equal(transport_set_fault(A.t, &drop), 0);
	for (uint64_t i = 6; i <= 10; i++)
		ping(&A, &B, i, 0);
	want_rx = 7;
	assert_true(run_until(cond_b_rx, 5));
	run_until(cond_never, 0.1);
	assert_int_equal(B.n_rx, 7);
	/* Delays: everything arrives, possibly reordered (the window allows it). */
	assert_int_equal(transport_set_fault(A.t, &delay), 0);
	for (uint64_t i = 11; i <= 20; i++)
		ping(&A, &B, i, 0);
	want_rx = 17;
	assert_true(run_until(cond_b_rx, 5));
	assert_int_equal(transport_set_fault(A.t, NULL), 0);
	transport_stats_get(A.t, &sa);
	assert_true(sa.fault_duplicated == 5 && sa.fault_dropped == 3 && sa.fault_delayed == 10);
	node_fini(&A);
	node_fini(&B);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_vector_and_reply),
	        cmocka_unit_test(test_unknown_sender_and_garbage),
	        cmocka_unit_test(test_order_and_late_peer),
	        cmocka_unit_test(test_peer_lost_and_back),
	        cmocka_unit_test(test_oversized_and_queue_full),
	        cmocka_unit_test(test_fault_injection),
	};
	log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, setup, teardown);
}
