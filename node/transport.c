/*
 * transport.c: NNG pull mailbox + one push socket per peer, on libev.
 *
 * Send path: msg_encode writes the body at its final place inside a fresh
 * nng_msg (after SEAL_HEADER_BYTES of room), seal_frame encrypts it in
 * place, the nng_msg joins the peer's FIFO, and the FIFO drains with
 * non-blocking nng_sendmsg while the push socket accepts (its SENDFD is
 * watched only while frames wait). Receive path: on RECVFD, up to
 * recv_batch frames per wake-up are opened in place (seal_open), decoded
 * (msg_decode, borrowing from the frame) and handed to the callback.
 * Nothing here blocks; NNG's own threads move the bytes.
 *
 * Not here: retries of lost messages (rounds have deadlines instead),
 * peer discovery, the meaning of messages.
 */
#include "node/transport.h"

#include "node/status.h"
#include "protocol/msg.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <ev.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_RECONNECT_MIN_MS 100
#define DEFAULT_RECONNECT_MAX_MS 5000
#define DEFAULT_QUEUE_FRAMES     256
#define DEFAULT_QUEUE_BYTES      ((size_t)256 << 20)
#define DEFAULT_RECV_BATCH       16
#define RECV_BUDGET_BYTES        ((size_t)1 << 20) /* per wake-up; one large frame still passes */
#define MAX_DELAYED              256
#define NAME_MAX_LEN             32
#define URL_MAX_LEN              256
#define LOG_INTERVAL_S           10.0 /* one warning per reason per interval */

struct frame {
	nng_msg *m;
	struct frame *next;
};

struct peer {
	struct transport *t;
	uint8_t pk[SEAL_KEY_BYTES];
	char name[NAME_MAX_LEN + 1];
	char url[URL_MAX_LEN];
	nng_socket sock;
	bool open; /* sock and dialer exist */
	/* Written by NNG's threads (pipe_cb), read on the loop thread. */
	atomic_int pipes; /* connections of the push socket now */
	atomic_bool lost; /* the last connection went away: report it */
	ev_io send_w;
	struct frame *head, *tail;
	size_t q_frames, q_bytes;
	struct peer *next;
};

struct delayed {
	ev_timer w;
	struct peer *p;
	nng_msg *m;
	struct delayed *prev, *next;
};

struct transport {
	struct ev_loop *loop;
	struct seal_ctx *seal;
	transport_recv_cb cb;
	void *arg;
	char listen_url[URL_MAX_LEN];
	size_t max_frame;
	int reconnect_min_ms, reconnect_max_ms;
	size_t queue_max_frames, queue_max_bytes;
	unsigned recv_batch;
	bool started;
	nng_socket pull;
	bool pull_open;
	ev_io recv_w;
	struct peer *peers;
	ev_async lost_w; /* NNG's threads: a peer lost its connection */
	transport_lost_cb lost_cb;
	void *lost_arg;
	struct msg rx_msg; /* decoded message of the frame being delivered */
	struct transport_stats st;
	double last_log[16]; /* rate limit of drop warnings, by reason */

	bool fault_on;
	struct transport_fault fault;
	uint64_t fault_rng;
	struct delayed *delayed;
	size_t n_delayed;
};

/* NNG's error numbers as negative errno values, for our callers. */
static int nng_errno(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case NNG_ENOMEM:
		return -ENOMEM;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
		return -EINVAL;
	case NNG_EADDRINUSE:
		return -EADDRINUSE;
	case NNG_EAGAIN:
		return -EAGAIN;
	case NNG_ECLOSED:
		return -EBADF;
	case NNG_ENOTSUP:
		return -ENOTSUP;
	case NNG_EPERM:
		return -EPERM;
	case NNG_EMSGSIZE:
		return -EMSGSIZE;
	default:
		if (rv & NNG_ESYSERR)
			return -(rv & ~NNG_ESYSERR);
		return -EIO;
	}
}

static struct peer *peer_find(const struct transport *t, const uint8_t *pk)
{
	for (struct peer *p = t->peers; p != NULL; p = p->next) {
		if (memcmp(p->pk, pk, SEAL_KEY_BYTES) == 0)
			return p;
	}
	return NULL;
}

/* --- sending ---------------------------------------------------------------- */

static void send_cb(struct ev_loop *loop, ev_io *w, int revents);

static void queue_push(struct peer *p, nng_msg *m)
{
	struct frame *f = malloc(sizeof(*f));

	if (f == NULL) {
		nng_msg_free(m);
		p->t->st.send_errors++;
		return;
	}
	f->m = m;
	f->next = NULL;
	if (p->tail != NULL)
		p->tail->next = f;
	else
		p->head = f;
	p->tail = f;
	p->q_frames++;
	p->q_bytes += nng_msg_len(m);
}

static nng_msg *queue_pop(struct peer *p)
{
	struct frame *f = p->head;
	nng_msg *m;

	if (f == NULL)
		return NULL;
	p->head = f->next;
	if (p->head == NULL)
		p->tail = NULL;
	m = f->m;
	free(f);
	p->q_frames--;
	p->q_bytes -= nng_msg_len(m);
	return m;
}

/*
 * Hands queued frames to NNG until it would block; then waits for the
 * socket's SENDFD to become readable (NNG's "can send" signal).
 */
static void peer_flush(struct peer *p)
{
	struct transport *t = p->t;

	while (p->open && p->head != NULL) {
		nng_msg *m = p->head->m;
		size_t len = nng_msg_len(m);
		int rv = nng_sendmsg(p->sock, m, NNG_FLAG_NONBLOCK);
		if (rv == NNG_EAGAIN)
			break;
		(void)queue_pop(p);
		if (rv != 0) {
			/* NNG keeps the message only on success. */
			nng_msg_free(m);
			t->st.send_errors++;
			log_warnx("transport: send to %s failed: %s", p->name, nng_strerror(rv));
			continue;
		}
		t->st.frames_out++;
		t->st.bytes_out += len;
	}
	if (p->head != NULL && p->open)
		ev_io_start(t->loop, &p->send_w);
	else
		ev_io_stop(t->loop, &p->send_w);
}

static void send_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	peer_flush(w->data);
}

/* --- fault injection ---------------------------------------------------------- */

static double fault_uniform(struct transport *t)
{
	uint64_t z = (t->fault_rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return (double)(z >> 11) * 0x1.0p-53;
}

static void delayed_unlink(struct transport *t, struct delayed *d)
{
	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		t->delayed = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	t->n_delayed--;
}

static void delayed_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct delayed *d = w->data;
	struct peer *p = d->p;
	(void)loop;
	(void)revents;
	delayed_unlink(p->t, d);
	queue_push(p, d->m);
	free(d);
	peer_flush(p);
}

/*
 * Applies the fault plan to one sealed frame. Returns true if the caller
 * should still queue m; false if it was dropped or taken for delay.
 */
static bool fault_apply(struct transport *t, struct peer *p, nng_msg *m)
{
	double u;

	if (!t->fault_on || t->fault.budget == 0)
		return true;
	u = fault_uniform(t);
	if (u < t->fault.drop) {
		t->fault.budget--;
		t->st.fault_dropped++;
		nng_msg_free(m);
		return false;
	}
	u -= t->fault.drop;
	if (u < t->fault.dup) {
		nng_msg *copy;
		if (nng_msg_dup(&copy, m) == 0) {
			t->fault.budget--;
			t->st.fault_duplicated++;
			queue_push(p, copy);
		}
		return true;
	}
	u -= t->fault.dup;
	if (u < t->fault.delay && t->n_delayed < MAX_DELAYED) {
		struct delayed *d = calloc(1, sizeof(*d));
		if (d == NULL)
			return true;
		t->fault.budget--;
		t->st.fault_delayed++;
		d->p = p;
		d->m = m;
		d->next = t->delayed;
		if (t->delayed != NULL)
			t->delayed->prev = d;
		t->delayed = d;
		t->n_delayed++;
		ev_timer_init(&d->w, delayed_cb, fault_uniform(t) * t->fault.delay_max_s, 0.0);
		d->w.data = d;
		ev_timer_start(t->loop, &d->w);
		return false;
	}
	return true;
}

int transport_set_fault(struct transport *t, const struct transport_fault *f)
{
	if (f == NULL) {
		t->fault_on = false;
		return 0;
	}
	if (!(f->drop >= 0 && f->dup >= 0 && f->delay >= 0 && f->drop + f->dup + f->delay <= 1) ||
	    !(f->delay_max_s >= 0 && f->delay_max_s <= 3600))
		return -EINVAL;
	t->fault = *f;
	t->fault_rng = f->seed;
	t->fault_on = true;
	return 0;
}

int transport_send(struct transport *t, const uint8_t peer_pk[SEAL_KEY_BYTES], const struct msg *m)
{
	struct peer *p = peer_find(t, peer_pk);
	nng_msg *nm = NULL;
	size_t body, frame, len = 0;
	uint8_t *buf;
	int rc;

	if (p == NULL)
		return SEAL_EUNKNOWN;
	rc = msg_validate(m);
	if (rc != 0)
		return rc;
	body = msg_encoded_size(m);
	if (body == 0)
		return MSG_EINVALID;
	if (body > t->max_frame - SEAL_OVERHEAD)
		return -EMSGSIZE;
	frame = body + SEAL_OVERHEAD;
	if (p->q_frames >= t->queue_max_frames || frame > t->queue_max_bytes - p->q_bytes) {
		t->st.queue_full++;
		return -ENOBUFS;
	}
	rc = nng_errno(nng_msg_alloc(&nm, frame));
	if (rc != 0)
		return rc;
	buf = nng_msg_body(nm);
	rc = msg_encode(buf + SEAL_HEADER_BYTES, body, &len, m);
	if (rc == 0 && len != body)
		rc = -EIO;
	if (rc == 0)
		rc = seal_frame(t->seal, buf, frame, peer_pk, (uint8_t)m->type, m->round_id);
	if (rc != 0) {
		nng_msg_free(nm);
		return rc;
	}
	if (fault_apply(t, p, nm))
		queue_push(p, nm);
	peer_flush(p);
	return 0;
}

size_t transport_pending(const struct transport *t, const uint8_t *peer_pk)
{
	size_t n = 0;

	for (const struct peer *p = t->peers; p != NULL; p = p->next) {
		if (peer_pk == NULL || memcmp(p->pk, peer_pk, SEAL_KEY_BYTES) == 0)
			n += p->q_frames;
	}
	return n + (peer_pk == NULL ? t->n_delayed : 0);
}

/* --- receiving -------------------------------------------------------------- */

/* One warning per reason per LOG_INTERVAL_S; the counters keep the rest. */
static bool log_allowed(struct transport *t, size_t reason)
{
	double now = util_now();

	reason %= ARRAY_LEN(t->last_log);
	if (t->last_log[reason] != 0 && now - t->last_log[reason] < LOG_INTERVAL_S)
		return false;
	t->last_log[reason] = now;
	return true;
}

static void frame_refused(struct transport *t, int rc, const uint8_t *frame, size_t len)
{
	char key[45] = "?";

	t->st.dropped_seal++;
	if (!log_allowed(t, (size_t)(-rc) % 16))
		return;
	/* The sender field is at a fixed place; only print it if it is there. */
	if (len >= SEAL_HEADER_BYTES)
		sodium_bin2base64(key, sizeof(key), frame + 8, SEAL_KEY_BYTES,
		                  sodium_base64_VARIANT_ORIGINAL);
	if (rc == SEAL_EUNKNOWN || rc == SEAL_EVERSION)
		log_warnx("transport: dropped a frame from %s: %s (%zu bytes)", key,
		          seal_strerror(rc), len);
	else
		log_debug("transport: dropped a frame from %s: %s (%zu bytes)", key,
		          seal_strerror(rc), len);
}

static void frame_deliver(struct transport *t, nng_msg *nm)
{
	uint8_t *buf = nng_msg_body(nm);
	size_t len = nng_msg_len(nm);
	struct seal_header hdr;
	struct transport_rx rx;
	struct peer *p;
	int rc;

	rc = seal_open(t->seal, &hdr, buf, len);
	if (rc != 0) {
		frame_refused(t, rc, buf, len);
		return;
	}
	p = peer_find(t, hdr.sender);
	rc = msg_decode(&t->rx_msg, buf + SEAL_HEADER_BYTES, len - SEAL_OVERHEAD);
	if (rc != 0) {
		t->st.dropped_decode++;
		if (rc == MSG_EVERSION)
			t->st.dropped_version++;
		if (log_allowed(t, 15))
			log_warnx("transport: dropped a message from %s: %s",
			          p != NULL ? p->name : "?", msg_strerror(rc));
		return;
	}
	if ((int)t->rx_msg.type != hdr.type || t->rx_msg.round_id != hdr.round_id) {
		t->st.dropped_mismatch++;
		return;
	}
	t->st.frames_in++;
	t->st.bytes_in += len;
	rx.sender = hdr.sender;
	rx.sender_name = p != NULL ? p->name : "";
	rx.hdr = &hdr;
	rx.msg = &t->rx_msg;
	rx.frame_bytes = len;
	t->cb(t->arg, &rx);
}

static void recv_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct transport *t = w->data;
	(void)loop;
	(void)revents;

	/*
	 * Bounded per wake-up, in frames and in bytes, so that sends and
	 * timers get their turn between large frames (RECVFD stays readable,
	 * the loop comes straight back for the rest).
	 */
	size_t bytes = 0;
	for (unsigned i = 0; i < t->recv_batch && bytes < RECV_BUDGET_BYTES; i++) {
		nng_msg *nm = NULL;
		int rv = nng_recvmsg(t->pull, &nm, NNG_FLAG_NONBLOCK);
		if (rv == NNG_EAGAIN)
			break;
		if (rv != 0) {
			log_warnx("transport: receive failed: %s", nng_strerror(rv));
			break;
		}
		bytes += nng_msg_len(nm);
		frame_deliver(t, nm);
		nng_msg_free(nm);
	}
}

/* --- set-up ----------------------------------------------------------------- */

static void lost_ev(struct ev_loop *loop, ev_async *w, int revents);

int transport_alloc(struct transport **out, struct ev_loop *loop, struct seal_ctx *seal,
                    const struct transport_options *opt, transport_recv_cb cb, void *arg)
{
	struct transport *t;

	*out = NULL;
	if (opt == NULL || opt->listen_url == NULL || cb == NULL ||
	    strlen(opt->listen_url) >= URL_MAX_LEN)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	t->loop = loop;
	t->seal = seal;
	t->cb = cb;
	t->arg = arg;
	snprintf(t->listen_url, sizeof(t->listen_url), "%s", opt->listen_url);
	t->max_frame = opt->max_frame != 0 ? opt->max_frame : seal_max_frame(seal);
	if (t->max_frame > seal_max_frame(seal) || t->max_frame < SEAL_OVERHEAD) {
		free(t);
		return -EINVAL;
	}
	t->reconnect_min_ms =
	        opt->reconnect_min_ms > 0 ? opt->reconnect_min_ms : DEFAULT_RECONNECT_MIN_MS;
	t->reconnect_max_ms =
	        opt->reconnect_max_ms > 0 ? opt->reconnect_max_ms : DEFAULT_RECONNECT_MAX_MS;
	t->queue_max_frames = opt->queue_max_frames ? opt->queue_max_frames : DEFAULT_QUEUE_FRAMES;
	t->queue_max_bytes = opt->queue_max_bytes ? opt->queue_max_bytes : DEFAULT_QUEUE_BYTES;
	t->recv_batch = opt->recv_batch ? opt->recv_batch : DEFAULT_RECV_BATCH;
	ev_async_init(&t->lost_w, lost_ev);
	t->lost_w.data = t;
	ev_async_start(t->loop, &t->lost_w);
	*out = t;
	return 0;
}

/*
 * NNG calls this on its own threads when a connection of a peer's push
 * socket comes or goes. Only atomics and ev_async_send (thread-safe) here;
 * lost_ev reports on the loop thread.
 */
static void pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct peer *p = arg;

	(void)pipe;
	/* Counted from ADD_PRE: NNG 1.5 sends REM_POST for every pipe that saw
	 * ADD_PRE, also one refused before ADD_POST (a peer speaking the wrong
	 * protocol), so the count cannot drift below zero. */
	if (ev == NNG_PIPE_EV_ADD_PRE) {
		atomic_fetch_add(&p->pipes, 1);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		if (atomic_fetch_sub(&p->pipes, 1) <= 1) {
			atomic_store(&p->lost, true);
			ev_async_send(p->t->loop, &p->t->lost_w);
		}
	}
}

static void lost_ev(struct ev_loop *loop, ev_async *w, int revents)
{
	struct transport *t = w->data;

	(void)loop;
	(void)revents;
	for (struct peer *p = t->peers; p != NULL; p = p->next) {
		if (!atomic_exchange(&p->lost, false) || atomic_load(&p->pipes) > 0)
			continue;
		log_debug("transport: connection to %s lost", p->name);
		t->st.peers_lost++;
		if (t->lost_cb != NULL)
			t->lost_cb(t->lost_arg, p->pk, p->name);
	}
}

void transport_set_lost_cb(struct transport *t, transport_lost_cb cb, void *arg)
{
	t->lost_cb = cb;
	t->lost_arg = arg;
}

bool transport_peer_connected(const struct transport *t, const uint8_t pk[SEAL_KEY_BYTES])
{
	struct peer *p = peer_find(t, pk);

	return p != NULL && atomic_load(&p->pipes) > 0;
}

/* Opens the peer's push socket and starts its dialer in the background. */
static int peer_open(struct transport *t, struct peer *p)
{
	nng_dialer d;
	int fd = -1, rv;

	rv = nng_push0_open(&p->sock);
	if (rv != 0)
		return nng_errno(rv);
	rv = nng_socket_set_ms(p->sock, NNG_OPT_RECONNMINT, t->reconnect_min_ms);
	if (rv == 0)
		rv = nng_socket_set_ms(p->sock, NNG_OPT_RECONNMAXT, t->reconnect_max_ms);
	if (rv == 0)
		rv = nng_pipe_notify(p->sock, NNG_PIPE_EV_ADD_PRE, pipe_cb, p);
	if (rv == 0)
		rv = nng_pipe_notify(p->sock, NNG_PIPE_EV_REM_POST, pipe_cb, p);
	if (rv == 0)
		rv = nng_dialer_create(&d, p->sock, p->url);
	/* NONBLOCK: a peer that is down now is dialed again with backoff. */
	if (rv == 0)
		rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
	if (rv == 0)
		rv = nng_socket_get_int(p->sock, NNG_OPT_SENDFD, &fd);
	if (rv != 0) {
		nng_close(p->sock);
		log_warnx("transport: cannot dial %s at %s: %s", p->name, p->url, nng_strerror(rv));
		return nng_errno(rv);
	}
	ev_io_init(&p->send_w, send_cb, fd, EV_READ);
	p->send_w.data = p;
	p->open = true;
	peer_flush(p);
	return 0;
}

int transport_peer_add(struct transport *t, const uint8_t pk[SEAL_KEY_BYTES], const char *url,
                       const char *name)
{
	struct peer *p;
	int rc;

	if (url == NULL || strlen(url) >= URL_MAX_LEN)
		return -EINVAL;
	if (peer_find(t, pk) != NULL)
		return -EEXIST;
	if (!seal_peer_known(t->seal, pk)) {
		rc = seal_peer_add(t->seal, pk);
		if (rc != 0)
			return rc;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->t = t;
	memcpy(p->pk, pk, SEAL_KEY_BYTES);
	snprintf(p->url, sizeof(p->url), "%s", url);
	if (name != NULL)
		snprintf(p->name, sizeof(p->name), "%s", name);
	else
		sodium_bin2hex(p->name, sizeof(p->name), pk, 8);
	if (t->started) {
		rc = peer_open(t, p);
		if (rc != 0) {
			free(p);
			return rc;
		}
	}
	p->next = t->peers;
	t->peers = p;
	return 0;
}

int transport_start(struct transport *t)
{
	int fd = -1, rv;

	if (t->started)
		return -EALREADY;
	rv = nng_pull0_open(&t->pull);
	if (rv != 0)
		return nng_errno(rv);
	t->pull_open = true;
	/* Before listening, so every accepted pipe inherits the limit. */
	rv = nng_socket_set_size(t->pull, NNG_OPT_RECVMAXSZ, t->max_frame);
	if (rv == 0)
		rv = nng_listen(t->pull, t->listen_url, NULL, 0);
	if (rv == 0)
		rv = nng_socket_get_int(t->pull, NNG_OPT_RECVFD, &fd);
	if (rv != 0) {
		log_errorx("transport: cannot listen on %s: %s", t->listen_url, nng_strerror(rv));
		nng_close(t->pull);
		t->pull_open = false;
		return nng_errno(rv);
	}
	ev_io_init(&t->recv_w, recv_cb, fd, EV_READ);
	t->recv_w.data = t;
	ev_io_start(t->loop, &t->recv_w);
	t->started = true;
	for (struct peer *p = t->peers; p != NULL; p = p->next) {
		int rc = peer_open(t, p);
		if (rc != 0)
			return rc;
	}
	return 0;
}

void transport_stats_get(const struct transport *t, struct transport_stats *out)
{
	*out = t->st;
	seal_stats_get(t->seal, &out->seal);
}

void transport_status_fill(const struct transport *t, struct node_status *s)
{
	struct transport_stats st;

	transport_stats_get(t, &st);
	s->bytes_in = st.bytes_in;
	s->bytes_out = st.bytes_out;
	s->msgs_in = st.frames_in;
	s->msgs_out = st.frames_out;
	s->rejected[REJECT_UNKNOWN_SENDER] = st.seal.unknown_sender;
	s->rejected[REJECT_BAD_TAG] = st.seal.forged + st.seal.no_round_key;
	s->rejected[REJECT_REPLAY] = st.seal.replayed + st.seal.too_old;
	s->rejected[REJECT_MALFORMED] = st.seal.malformed + st.seal.misdirected +
	                                (st.dropped_decode - st.dropped_version) +
	                                st.dropped_mismatch;
	s->rejected[REJECT_VERSION] = st.seal.bad_version + st.dropped_version;
	s->rejected[REJECT_OVERSIZE] = st.seal.oversized;
}

void transport_free(struct transport *t)
{
	if (t == NULL)
		return;
	if (t->pull_open) {
		ev_io_stop(t->loop, &t->recv_w);
		nng_close(t->pull);
	}
	while (t->delayed != NULL) {
		struct delayed *d = t->delayed;
		ev_timer_stop(t->loop, &d->w);
		delayed_unlink(t, d);
		nng_msg_free(d->m);
		free(d);
	}
	while (t->peers != NULL) {
		struct peer *p = t->peers;
		nng_msg *m;
		t->peers = p->next;
		if (p->open) {
			ev_io_stop(t->loop, &p->send_w);
			nng_close(p->sock);
		}
		for (m = queue_pop(p); m != NULL; m = queue_pop(p))
			nng_msg_free(m);
		free(p);
	}
	/* Every socket is closed: no pipe_cb can run any more. */
	ev_async_stop(t->loop, &t->lost_w);
	free(t);
}
