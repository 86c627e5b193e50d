/*
 * node_external_test.c: the trainer socket (node/external.h) on a real
 * libev loop and Unix socket, with this test as the trainer. What it pins
 * down is what the core trusts: the seq a snapshot includes, and the step
 * count that decides whether an input is "known" (docs/security.md,
 * "External trainers"), in both directions, at attach and after results;
 * a round begun before an attach; FINISH against later pushes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "node/external.h"
#include "protocol/trainer_msg.h"
#include "util/bytes.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define NP 6

struct fixture {
	struct ev_loop *loop;
	struct ext *x;
	char dir[64], path[96];
	int fd;
	/* what the fake core answers */
	float last[NP];
	bool have_last;
	uint64_t known, round_in_flight;
};

static int on_layout(void *arg, const struct tmsg_hello *h, uint64_t hash, char *why, size_t len)
{
	(void)arg;
	(void)hash;
	(void)why;
	(void)len;
	return h->n_params == NP ? 0 : -1;
}

static const float *last_cb(void *arg, uint64_t *rounds, uint64_t *known, uint64_t *rif)
{
	struct fixture *f = arg;
	*rounds = 3;
	*known = f->known;
	*rif = f->round_in_flight;
	return f->have_last ? f->last : NULL;
}

static void spin(struct fixture *f)
{
	for (int i = 0; i < 20; i++)
		ev_run(f->loop, EVRUN_NOWAIT);
}

static void send_frame(struct fixture *f, uint8_t *buf, size_t len)
{
	assert_int_equal(send(f->fd, buf, len, 0), (ssize_t)len);
	free(buf);
	spin(f);
}

/* Reads one frame from the node (blocking briefly); returns its t string's first char. */
static char recv_frame(struct fixture *f)
{
	uint8_t hdr[4], *b;
	size_t n;
	char t;

	spin(f);
	assert_int_equal(recv(f->fd, hdr, 4, MSG_WAITALL), 4);
	n = bytes_get_be32(hdr);
	b = malloc(n);
	assert_int_equal(recv(f->fd, b, n, MSG_WAITALL), (ssize_t)n);
	/* {"t": "<type>", ...}: fixmap, fixstr "t", fixstr type */
	t = (char)b[4];
	free(b);
	return t;
}

static bool readable(struct fixture *f)
{
	uint8_t c;
	spin(f);
	return recv(f->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

static void push(struct fixture *f, const float *x, uint64_t applied, bool done)
{
	struct tmsg_params p = {0};
	uint8_t *buf;
	size_t len;

	p.applied = applied;
	p.done = done;
	p.x = (const uint8_t *)x;
	p.x_len = NP * sizeof(float);
	assert_int_equal(tmsg_encode_params(&buf, &len, &p), 0);
	send_frame(f, buf, len);
}

static void attach(struct fixture *f)
{
	struct tmsg_hello *h = calloc(1, sizeof(*h));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint8_t *buf;
	size_t len;

	f->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
	assert_int_equal(connect(f->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	spin(f);
	h->version = TMSG_VERSION;
	h->n_tensors = 1;
	snprintf(h->tensors[0].name, sizeof(h->tensors[0].name), "w");
	h->tensors[0].ndim = 1;
	h->tensors[0].shape[0] = NP;
	h->rows = 10;
	assert_int_equal(tmsg_encode_hello(&buf, &len, h), 0);
	free(h);
	send_frame(f, buf, len);
	assert_int_equal(recv_frame(f), 'w'); /* welcome */
}

static void detach(struct fixture *f)
{
	close(f->fd);
	spin(f);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct ext_ops ops = {.on_layout = on_layout, .last = last_cb, .arg = f};

	snprintf(f->dir, sizeof(f->dir), "/tmp/sotto-ext-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/trainer.sock", f->dir);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	f->known = UINT64_MAX;
	assert_int_equal(ext_open(&f->x, f->loop, f->path, "t", &ops), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	close(f->fd);
	ext_free(f->x);
	ev_loop_destroy(f->loop);
	rmdir(f->dir);
	free(f);
	return 0;
}

static uint64_t snap(struct fixture *f, uint64_t *steps)
{
	float out[NP];
	return ext_snapshot(f->x, out, steps);
}

/* Pushes, results and the step count of one trainer. */
static void test_steps_follow_training(void **state)
{
	struct fixture *f = *state;
	float x[NP] = {1, 2, 3, 4, 5, 6}, avg[NP] = {2, 2, 2, 2, 2, 2}, s[NP];
	uint64_t steps, s0;

	attach(f);
	assert_true(snap(f, &steps) == UINT64_MAX); /* nothing pushed yet */
	push(f, x, 0, false);
	assert_int_equal(snap(f, &s0), 0);
	push(f, x, 0, false); /* the same values again: no training */
	assert_int_equal(snap(f, &steps), 0);
	assert_int_equal(steps, s0);
	x[0] += 0.5f; /* trained */
	push(f, x, 0, false);
	assert_int_equal(snap(f, &steps), 0);
	assert_int_equal(steps, s0 + 1);
	/* A result: the trainer gets avg - snapshot and adds it. */
	memcpy(s, x, sizeof(s));
	ext_apply(f->x, 1, 0xabc, avg, s, 0);
	assert_int_equal(recv_frame(f), 'r');
	assert_int_equal(snap(f, &steps), 0); /* its push predates the result */
	push(f, x, 0, false);                 /* not folded yet: not usable */
	assert_int_equal(snap(f, NULL), 0);
	for (int i = 0; i < NP; i++)
		x[i] += avg[i] - s[i];
	push(f, x, 1, false); /* folded, no training since: the result unchanged */
	assert_int_equal(snap(f, &steps), 1);
	assert_int_equal(steps, s0 + 1);
	x[3] -= 0.25f;
	push(f, x, 1, false);
	assert_int_equal(snap(f, &steps), 1);
	assert_int_equal(steps, s0 + 2);
	/* applied naming a result never sent: refused, nothing changes */
	push(f, x, 7, false);
	assert_int_equal(recv_frame(f), 'e');
	assert_int_equal(snap(f, &steps), 1);
	assert_int_equal(steps, s0 + 2);
}

/* A trainer that attaches starts from the core's known steps and last result. */
static void test_attach_known_both_ways(void **state)
{
	struct fixture *f = *state;
	float x[NP];
	uint64_t steps;

	for (int i = 0; i < NP; i++)
		f->last[i] = (float)i * 0.5f;
	f->have_last = true;
	f->known = 41;
	attach(f);
	push(f, f->last, 0, false); /* resumed from the group's model, unchanged */
	assert_int_equal(snap(f, &steps), 0);
	assert_int_equal(steps, 41); /* known */
	detach(f);
	assert_true(snap(f, NULL) == UINT64_MAX); /* no trainer: the core declines */
	attach(f);
	memcpy(x, f->last, sizeof(x));
	x[2] += 1.0f; /* its own parameters */
	push(f, x, 0, false);
	assert_int_equal(snap(f, &steps), 0);
	assert_int_equal(steps, 42); /* fresh */
	/* With no known steps recorded, nothing is ever known. */
	detach(f);
	f->known = UINT64_MAX;
	attach(f);
	push(f, f->last, 0, false);
	assert_int_equal(snap(f, &steps), 0);
	assert_true(steps != UINT64_MAX);
}

/*
 * A round begun with the previous trainer's push: its delta is not the new
 * trainer's, and once it applies nothing the new trainer pushes is known;
 * while it has not (or if it aborts), the group's model pushed unchanged is.
 */
static void test_round_begun_before_attach(void **state)
{
	struct fixture *f = *state;
	float avg[NP] = {3, 3, 3, 3, 3, 3};
	uint64_t steps, s_old;

	for (int i = 0; i < NP; i++)
		f->last[i] = 1.0f;
	f->have_last = true;
	f->known = 41;
	attach(f);
	push(f, f->last, 0, false);
	assert_int_equal(snap(f, &s_old), 0); /* round 0x77 takes this: 41, known */
	assert_int_equal(s_old, 41);
	detach(f);
	f->round_in_flight = 0x77;
	attach(f); /* attaches while round 0x77 runs */
	push(f, f->last, 0, false);
	assert_int_equal(snap(f, &steps), 0);
	assert_int_equal(steps, 41); /* still the last result, unchanged: known */
	ext_apply(f->x, 1, 0x77, avg, f->last, 0);
	assert_false(readable(f));            /* no result for this trainer */
	assert_int_equal(snap(f, &steps), 1); /* its model counts as the node's */
	assert_true(steps > s_old);           /* and is never known as 0x77's result */
	push(f, f->last, 0, false);
	assert_int_equal(snap(f, &steps), 1);
	assert_true(steps > s_old);
	ext_apply(f->x, 2, 0x78, avg, f->last, 0); /* a later round is its own */
	assert_int_equal(recv_frame(f), 'r');
}

/* FINISH holds whatever later pushes say, and for a trainer attaching after. */
static void test_finish_holds(void **state)
{
	struct fixture *f = *state;
	float x[NP] = {0};

	attach(f);
	push(f, x, 0, false);
	assert_false(ext_training_done(f->x));
	ext_finish(f->x);
	assert_int_equal(recv_frame(f), 'f');
	push(f, x, 0, false);
	assert_true(ext_training_done(f->x));
	detach(f);
	attach(f);
	assert_int_equal(recv_frame(f), 'f'); /* told again */
	push(f, x, 0, false);
	assert_true(ext_training_done(f->x));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_steps_follow_training, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_attach_known_both_ways, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_round_begun_before_attach, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_finish_holds, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
