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
 * Incoming connections: NNG tells pipe_in_cb (on its threads) about every
 * pipe of the pull socket. The callback admits or refuses it against the
 * limits and records it in a table under in_lock; the receive path marks a
 * pipe authenticated when one of its frames passes seal_open; a timer on
 * the loop closes the pipes that did not in time. Outgoing connections
 * open with a hello (a PING, seq 0) so that the peer's timer never hits a
 * legitimate link; while a push socket has no connection, a sealed hello
 * waits inside NNG (hello_park), which also keeps libnng 1.5.2's push
 * socket from reusing a pipe it has freed (see there).
 *
 * Not here: retries of lost messages (rounds have deadlines instead),
 * peer discovery, the meaning of messages.
 */
#include "node/transport.h"

#include "node/status.h"
#include "protocol/msg.h"
#include "util/err.h"
#include "util/log.h"
#include "util/rng.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <limits.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

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

/* Incoming connections; docs/protocol.md ("Transport") explains each. */
#define DEFAULT_AUTH_TIMEOUT_MS 10000
#define DEFAULT_CONNS_PER_ADDR  8
#define DEFAULT_FD_RESERVE      32
#define FDS_PER_PEER            4 /* push socket's SENDFD (a pipe pair), its connection, a spare */
#define FDS_LISTEN              8 /* the pull socket's RECVFD and listener, NNG's poller */
#define CONNS_MEM_BUDGET        ((size_t)512 << 20) /* max_conns_in x max_frame */
#define CONNS_MAX               4096
#define CONNS_GONE_SLACK        64 /* closed pipes awaiting the loop, beyond the limit */
#define SWEEP_MAX_S             1.0
#define SWEEP_CLOSE_BATCH       64
#define HELLO_SPARES            2   /* sealed hellos ready for NNG's threads, per peer */
#define HELLO_STALE             256 /* seals after which a spare is sealed again */

/* Rate-limited log lines: one slot per reason. */
enum log_slot {
	/* 1..9: seal_open's SEAL_E* codes, -rc % 10 */
	LOG_DECODE = 10,
	LOG_WRONG_KEY,
	LOG_CONN_PER_ADDRESS, /* then one per enum in_reason, in its order */
	LOG_CONN_LIMIT,
	LOG_CONN_TIMEOUT,
	LOG_CONN_NO_FRAME,
	LOG_SLOTS,
};

struct frame {
	nng_msg *m;
	bool hello; /* the PING that opens a connection */
	struct frame *next;
};

/*
 * Where an incoming connection comes from, as the per-address limit sees it:
 * an IPv4 address, or an IPv6 /64 (one host commonly holds a whole /64).
 * Loopback, IPC and inproc are one address, "local": a process on this
 * machine can pick any 127.x source.
 */
enum addr_family { ADDR_LOCAL, ADDR_V4, ADDR_V6 };
struct addr_key {
	uint8_t family;   /* enum addr_family */
	uint8_t bytes[8]; /* ADDR_V4: 4 bytes; ADDR_V6: the first 8; ADDR_LOCAL: zero */
};

/* One pipe of the pull socket (an incoming connection). */
struct in_pipe {
	uint32_t id; /* nng_pipe_id */
	struct addr_key key;
	double added;                   /* util_now() at ADD_PRE */
	bool authed;                    /* a frame through it passed seal_open */
	uint8_t sender[SEAL_KEY_BYTES]; /* authed: the peer whose frame did */
	bool framed;                    /* a frame came through it (loop thread) */
	bool timed_out;                 /* closed by the sweep for not authenticating */
	bool gone; /* NNG removed it (REM_POST): no longer holds a descriptor */
};

enum in_reason { IN_PER_ADDRESS, IN_LIMIT, IN_TIMEOUT, IN_NO_FRAME, IN_REASONS };

struct peer {
	struct transport *t;
	uint8_t pk[SEAL_KEY_BYTES];
	char name[NAME_MAX_LEN + 1];
	char url[URL_MAX_LEN];
	nng_socket sock;
	bool open; /* sock and dialer exist */
	/* Written by NNG's threads (pipe_cb), read on the loop thread. */
	atomic_int pipes;   /* connections of the push socket now */
	atomic_bool lost;   /* the last connection went away: report it */
	atomic_uint gen;    /* connections that came up with no hello parked (ADD_PRE) */
	unsigned hello_gen; /* gen the last hello was queued for (loop thread) */
	uint64_t wrong_key; /* its frames sealed for a key not ours (loop thread) */
	bool hello_queued;  /* a hello waits at the head of the queue */
	/* The parked hello (hello_park): any thread, NNG's included. */
	nng_aio *hello_aio;                     /* its send, waiting in the push socket */
	atomic_bool hello_parked;               /* hello_aio is in use */
	atomic_size_t hello_len;                /* bytes of the parked hello */
	atomic_bool closing;                    /* transport_free: park nothing more */
	_Atomic(nng_msg *) spare[HELLO_SPARES]; /* sealed hellos to park; NULL: taken */
	uint64_t spare_at[HELLO_SPARES];        /* seal count when sealed (loop thread) */
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
	ev_async pipe_w; /* NNG's threads: a connection came up or went away */
	transport_lost_cb lost_cb;
	void *lost_arg;
	struct msg rx_msg; /* decoded message of the frame being delivered */
	struct transport_stats st;
	uint64_t n_sent; /* transport_send calls that queued a frame */
	/* Parked hellos NNG took (hello_aio_cb), for frames_out and bytes_out. */
	atomic_uint_fast64_t hello_frames, hello_bytes;
	double last_log[LOG_SLOTS]; /* rate limit of log lines, by enum log_slot */

	/*
	 * Incoming connections. The table and everything up to in_st are
	 * shared with NNG's threads (pipe_in_cb) and only touched under
	 * in_lock. Entries are kept compact (swap-remove); gone ones wait for
	 * the loop (pipe_ev, sweep) so that a frame it took from the pipe
	 * just before the pipe closed still counts.
	 */
	pthread_mutex_t in_lock;
	bool in_lock_ok;
	struct in_pipe *in;         /* [in_cap] */
	size_t n_in, in_cap;        /* entries, live and gone; capacity */
	size_t in_live;             /* entries not gone */
	size_t in_max;              /* the limit on live entries */
	size_t in_per_addr;         /* unauthenticated per address, before the peers there */
	struct addr_key *peer_keys; /* [n_peer_keys] where configured peers live */
	size_t n_peer_keys;
	bool in_closing;                     /* transport_free: removals are no longer counted */
	uint64_t in_st[IN_REASONS];          /* counters, by enum in_reason */
	struct addr_key in_last[IN_REASONS]; /* the address behind the last of each */
	/* Loop thread only. */
	double auth_timeout_s;
	size_t fd_reserve;
	ev_timer sweep_w;
	double last_sweep;
	uint64_t in_logged[IN_REASONS]; /* in_st at the last log line */

	bool fault_on;
	struct transport_fault fault;
	uint64_t fault_rng;
	struct delayed *delayed;
	size_t n_delayed;
	atomic_int closers; /* removed peers' sockets still closing (peer_close_main) */
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
	f->hello = false;
	f->next = NULL;
	if (p->tail != NULL)
		p->tail->next = f;
	else
		p->head = f;
	p->tail = f;
	p->q_frames++;
	p->q_bytes += nng_msg_len(m);
}

/* Puts the hello first in the queue; false (m freed) without memory. */
static bool queue_push_hello(struct peer *p, nng_msg *m)
{
	struct frame *f = malloc(sizeof(*f));

	if (f == NULL) {
		nng_msg_free(m);
		p->t->st.send_errors++;
		return false;
	}
	f->m = m;
	f->hello = true;
	f->next = p->head;
	p->head = f;
	if (p->tail == NULL)
		p->tail = f;
	p->q_frames++;
	p->q_bytes += nng_msg_len(m);
	return true;
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
	if (f->hello)
		p->hello_queued = false;
	m = f->m;
	free(f);
	p->q_frames--;
	p->q_bytes -= nng_msg_len(m);
	return m;
}

/*
 * Encodes and seals m for peer into a new nng_msg of frame bytes (body
 * bytes of message after the header; the caller computed both).
 */
static int frame_build(struct transport *t, const uint8_t *peer_pk, const struct msg *m,
                       size_t body, nng_msg **out)
{
	size_t frame = body + SEAL_OVERHEAD, len = 0;
	nng_msg *nm = NULL;
	uint8_t *buf;
	int rc;

	*out = NULL;
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
		if (m->type == MSG_SEEDS) /* the plaintext was never sealed over */
			sodium_memzero(buf, frame);
		nng_msg_free(nm);
		return rc;
	}
	*out = nm;
	return 0;
}

/*
 * The hello: a PING (seq 0, our monotonic clock in ms) that opens every
 * connection of a push socket, so the peer's pull socket sees an
 * authenticated frame within one trip even when the next frame is 50 MB
 * on a 100 kbit/s link (its sender would otherwise be closed for not
 * authenticating in time, and retry forever). It bypasses fault injection
 * and the queue limits (one at most).
 *
 * Normally the hello is parked in NNG before the connection exists
 * (hello_park), and NNG's push socket serves a waiting send before it
 * lists a new pipe as ready, so it is the connection's first frame by
 * NNG's own order. If none was parked (no spare was sealed yet, or the
 * parked one went into a dead pipe a moment before), the loop queues one
 * at the head of the queue instead (peer_flush).
 */
static nng_msg *hello_build(struct peer *p)
{
	struct transport *t = p->t;
	nng_msg *nm = NULL;
	struct msg m;
	size_t body;
	int rc;

	memset(&m, 0, sizeof(m));
	m.type = MSG_PING;
	m.u.ping.seq = 0;
	m.u.ping.time_ms = (uint64_t)(util_now() * 1000.0);
	body = msg_encoded_size(&m);
	rc = body == 0 ? MSG_EINVALID : frame_build(t, p->pk, &m, body, &nm);
	if (rc != 0) {
		t->st.send_errors++;
		log_warnx("transport: cannot seal the hello to %s: %s", p->name, err_str(rc));
		return NULL;
	}
	return nm;
}

/* Queues a hello first (the fallback when none was parked for a connection). */
static void peer_hello_queue(struct peer *p)
{
	nng_msg *nm;

	if (p->hello_queued)
		return;
	nm = hello_build(p);
	if (nm != NULL)
		p->hello_queued = queue_push_hello(p, nm);
}

/*
 * Loop thread: seals the spare hellos that NNG's threads took or that grew
 * stale. A hello must stay within the receiver's replay window
 * (REPLAY_WINDOW_BITS counters) of the frames sent after it was sealed.
 */
static void hello_spares_refill(struct peer *p)
{
	struct seal_stats ss;

	seal_stats_get(p->t->seal, &ss);
	for (size_t i = 0; i < HELLO_SPARES; i++) {
		nng_msg *m, *old;
		if (atomic_load(&p->spare[i]) != NULL && ss.sealed - p->spare_at[i] < HELLO_STALE)
			continue;
		m = hello_build(p);
		if (m == NULL)
			return;
		p->spare_at[i] = ss.sealed;
		old = atomic_exchange(&p->spare[i], m);
		if (old != NULL)
			nng_msg_free(old);
	}
}

/*
 * Parks a sealed hello in the push socket (nng_send_aio): it waits there
 * while the socket has no connection, and NNG hands it to the next one
 * before anything else. Any thread that holds no NNG lock (the loop,
 * pipe_cb at REM_POST).
 *
 * It also works around a defect of libnng 1.5.2's push0: a pipe that closes
 * while it starts (push0_pipe_start posts its receive before it marks the
 * pipe ready, and the receive fails at once when the peer hung up right
 * after the handshake, as a refusing pull socket does), or whose last send
 * completes just as it closes, is put back on the socket's ready list after
 * its close, then freed; the next send on the socket uses freed memory (a
 * crash, seen in the flood test). A send waiting in the socket is what such
 * a late "ready" serves instead of listing the pipe, and a send made while
 * the dead pipe is listed takes it off the list (the send fails inside NNG,
 * harmlessly). Both happen before NNG frees the pipe if a hello is parked
 * at REM_POST, which NNG calls before it frees the pipe.
 */
static void hello_park(struct peer *p)
{
	nng_msg *m = NULL;

	if (atomic_load(&p->closing) || atomic_exchange(&p->hello_parked, true))
		return;
	for (size_t i = 0; i < HELLO_SPARES && m == NULL; i++)
		m = atomic_exchange(&p->spare[i], NULL);
	if (m == NULL) {
		atomic_store(&p->hello_parked, false);
		return;
	}
	atomic_store(&p->hello_len, nng_msg_len(m));
	nng_aio_set_msg(p->hello_aio, m);
	nng_send_aio(p->sock, p->hello_aio);
}

/* Frees the spare hellos (the peer's socket is closed). */
static void hello_spares_free(struct peer *p)
{
	for (size_t i = 0; i < HELLO_SPARES; i++)
		nng_msg_free(atomic_exchange(&p->spare[i], NULL));
}

/*
 * NNG's threads: the parked hello went out (to a new connection, or into a
 * dead pipe) or the socket closed. Possibly called with NNG's socket lock
 * held (from a pipe's start): so nothing but atomics and ev_async here; the
 * loop parks the next one (pipe_ev).
 */
static void hello_aio_cb(void *arg)
{
	struct peer *p = arg;

	if (nng_aio_result(p->hello_aio) != 0) {
		nng_msg_free(nng_aio_get_msg(p->hello_aio));
	} else {
		atomic_fetch_add(&p->t->hello_frames, 1);
		atomic_fetch_add(&p->t->hello_bytes, atomic_load(&p->hello_len));
	}
	atomic_store(&p->hello_parked, false);
	ev_async_send(p->t->loop, &p->t->pipe_w);
}

/*
 * Hands queued frames to NNG until it would block; then waits for the
 * socket's SENDFD to become readable (NNG's "can send" signal).
 *
 * The fallback hello goes first on a new connection that found none
 * parked. pipe_cb bumps p->gen at ADD_PRE, which NNG runs before it starts
 * the pipe, and a push socket takes a message only from a started pipe
 * (push0 keeps no buffer of its own), so SENDFD cannot announce the new
 * pipe before p->gen shows it.
 * gen is read before every nng_sendmsg, so a new pipe can only slip in
 * between that read and the send itself. Then that one frame goes out
 * ahead of the hello (logged at debug); if the link is slow and the frame
 * large, the peer may close the connection for it, and the next one
 * starts with its hello.
 */
static void peer_flush(struct peer *p)
{
	struct transport *t = p->t;

	while (p->open) {
		unsigned gen = atomic_load(&p->gen);
		if (gen != p->hello_gen) {
			p->hello_gen = gen;
			peer_hello_queue(p);
		}
		if (p->head == NULL)
			break;
		nng_msg *m = p->head->m;
		bool hello = p->head->hello;
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
		if (!hello && atomic_load(&p->gen) != gen)
			log_debug("transport: a %zu-byte frame to %s may have gone out on a new "
			          "connection before its hello",
			          len, p->name);
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

/* Uniform in [0, 1): the top 53 bits of the next splitmix64 word of the seed. */
static double fault_uniform(struct transport *t)
{
	return (double)(rng_splitmix64(&t->fault_rng) >> 11) * 0x1.0p-53;
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
	size_t body, frame;
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
	rc = frame_build(t, peer_pk, m, body, &nm);
	if (rc != 0)
		return rc;
	if (fault_apply(t, p, nm))
		queue_push(p, nm);
	peer_flush(p);
	if (++t->n_sent % (HELLO_STALE / 4) == 0) {
		for (struct peer *q = t->peers; q != NULL; q = q->next) {
			if (q->open)
				hello_spares_refill(q);
		}
	}
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

/* One line per reason (enum log_slot) per LOG_INTERVAL_S; counters keep the rest. */
static bool log_allowed(struct transport *t, size_t slot)
{
	double now = util_now();

	slot %= ARRAY_LEN(t->last_log);
	if (t->last_log[slot] != 0 && now - t->last_log[slot] < LOG_INTERVAL_S)
		return false;
	t->last_log[slot] = now;
	return true;
}

static void pipe_in_mark(struct transport *t, uint32_t id, const uint8_t *sender);

/* The remote address of an incoming pipe, for log lines ("?" once it is gone). */
static void pipe_addr_format(char *buf, size_t len, nng_pipe pipe)
{
	char a[INET6_ADDRSTRLEN] = "?";
	nng_sockaddr sa;

	if (nng_pipe_get_addr(pipe, NNG_OPT_REMADDR, &sa) != 0) {
		snprintf(buf, len, "?");
		return;
	}
	switch (sa.s_family) {
	case NNG_AF_INET:
		(void)inet_ntop(AF_INET, &sa.s_in.sa_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, (unsigned)ntohs(sa.s_in.sa_port));
		break;
	case NNG_AF_INET6:
		(void)inet_ntop(AF_INET6, sa.s_in6.sa_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, (unsigned)ntohs(sa.s_in6.sa_port));
		break;
	default:
		snprintf(buf, len, "local");
		break;
	}
}

/*
 * A frame sealed for another recipient key: the sender pinned a wrong
 * PublicKey for this site (or a stale one, after a key rotation). Such a
 * frame is refused before any authentication, so its sender field is only
 * a claim: counted per claimed peer, and one warning per LOG_INTERVAL_S that
 * names it (or the address, for a sender not pinned here) and both keys,
 * worded as a claim.
 */
static void wrong_key(struct transport *t, const uint8_t *frame, size_t len, nng_pipe pipe)
{
	char theirs[45], ours[45], from[64];
	struct peer *p = peer_find(t, frame + 8);

	if (p != NULL)
		p->wrong_key++;
	if (!log_allowed(t, LOG_WRONG_KEY))
		return;
	sodium_bin2base64(theirs, sizeof(theirs), frame + 40, SEAL_KEY_BYTES,
	                  sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(ours, sizeof(ours), seal_self(t->seal), SEAL_KEY_BYTES,
	                  sodium_base64_VARIANT_ORIGINAL);
	pipe_addr_format(from, sizeof(from), pipe);
	if (p != NULL)
		log_warnx(
		        "transport: frames that claim to come from peer %s (via %s) are sealed for "
		        "key %s, not this node's %s: if they are its, its config pins a wrong "
		        "PublicKey for this site (unauthenticated; %zu bytes; %llu so far)",
		        p->name, from, theirs, ours, len, (unsigned long long)p->wrong_key);
	else
		log_warnx(
		        "transport: a sender this node does not pin (via %s) seals frames for key "
		        "%s, not this node's %s (%zu bytes)",
		        from, theirs, ours, len);
}

/*
 * A frame seal_open refused: counted, and one log line per reason per
 * LOG_INTERVAL_S. Unknown senders and versions are warnings (usually a
 * configuration to fix). Forged and replayed frames name a pinned sender:
 * someone tampers with or replays its traffic (or a frame came twice),
 * which an operator should see, at info. The rest at debug.
 */
static void frame_refused(struct transport *t, int rc, const uint8_t *frame, size_t len,
                          nng_pipe pipe)
{
	enum log_level level = LOG_LEVEL_DEBUG;
	char key[45] = "?", from[64];
	struct seal_stats ss;
	uint64_t so_far;

	t->st.dropped_seal++;
	if (rc == SEAL_EMISDIRECTED && len >= SEAL_HEADER_BYTES) {
		wrong_key(t, frame, len, pipe);
		return;
	}
	if (rc == SEAL_EUNKNOWN || rc == SEAL_EVERSION)
		level = LOG_LEVEL_WARN;
	else if (rc == SEAL_EFORGED || rc == SEAL_EREPLAYED || rc == SEAL_ETOOOLD)
		level = LOG_LEVEL_INFO;
	if (level < log_get_level() || !log_allowed(t, (size_t)(-rc) % 10))
		return;
	seal_stats_get(t->seal, &ss);
	so_far = rc == SEAL_EFORGED ? ss.forged : rc == SEAL_EREPLAYED ? ss.replayed : ss.too_old;
	/* The sender field is at a fixed place; only print it if it is there. */
	if (len >= SEAL_HEADER_BYTES)
		sodium_bin2base64(key, sizeof(key), frame + 8, SEAL_KEY_BYTES,
		                  sodium_base64_VARIANT_ORIGINAL);
	pipe_addr_format(from, sizeof(from), pipe);
	if (level == LOG_LEVEL_WARN)
		log_warnx("transport: dropped a frame from %s via %s: %s (%zu bytes)", key, from,
		          err_str(rc), len);
	else if (level == LOG_LEVEL_INFO)
		log_info("transport: dropped a frame from %s via %s: %s (%zu bytes; %llu so far)",
		         key, from, err_str(rc), len, (unsigned long long)so_far);
	else
		log_debug("transport: dropped a frame from %s via %s: %s (%zu bytes)", key, from,
		          err_str(rc), len);
}

static void frame_deliver(struct transport *t, nng_msg *nm)
{
	uint8_t *buf = nng_msg_body(nm);
	size_t len = nng_msg_len(nm);
	nng_pipe pipe = nng_msg_get_pipe(nm);
	struct seal_header hdr;
	struct transport_rx rx;
	struct peer *p;
	int rc;

	rc = seal_open(t->seal, &hdr, buf, len);
	/* Before the callback, which may take long: the sweep must see it. */
	pipe_in_mark(t, (uint32_t)nng_pipe_id(pipe), rc == 0 ? hdr.sender : NULL);
	if (rc != 0) {
		frame_refused(t, rc, buf, len, pipe);
		return;
	}
	p = peer_find(t, hdr.sender);
	rc = msg_decode(&t->rx_msg, buf + SEAL_HEADER_BYTES, len - SEAL_OVERHEAD);
	if (rc != 0) {
		t->st.dropped_decode++;
		if (rc == MSG_EVERSION)
			t->st.dropped_version++;
		if (log_allowed(t, LOG_DECODE))
			log_warnx("transport: dropped a message from %s: %s",
			          p != NULL ? p->name : "?", err_str(rc));
		goto out;
	}
	if ((int)t->rx_msg.type != hdr.type || t->rx_msg.round_id != hdr.round_id) {
		t->st.dropped_mismatch++;
		goto out;
	}
	t->st.frames_in++;
	t->st.bytes_in += len;
	rx.sender = hdr.sender;
	rx.sender_name = p != NULL ? p->name : "";
	rx.hdr = &hdr;
	rx.msg = &t->rx_msg;
	rx.frame_bytes = len;
	t->cb(t->arg, &rx);
out:
	if (hdr.type == MSG_SEEDS) { /* unmasking secrets: used or refused, now wiped */
		sodium_memzero(&t->rx_msg.u.seeds, sizeof(t->rx_msg.u.seeds));
		sodium_memzero(buf, len);
	}
}

/*
 * Receives and delivers waiting frames, bounded in frames and in bytes so
 * that sends and timers get their turn between large frames (RECVFD stays
 * readable, the loop comes straight back for the rest).
 */
static void recv_some(struct transport *t)
{
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

static void recv_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	recv_some(w->data);
}

/* --- incoming connections ---------------------------------------------------- */

static void addr_key_v4(struct addr_key *k, const uint8_t a[4])
{
	memset(k, 0, sizeof(*k));
	if (a[0] == 127)
		return; /* loopback: local */
	k->family = ADDR_V4;
	memcpy(k->bytes, a, 4);
}

static void addr_key_v6(struct addr_key *k, const uint8_t a[16])
{
	static const uint8_t loopback[16] = {[15] = 1};
	static const uint8_t v4_mapped[12] = {[10] = 0xff, [11] = 0xff};

	memset(k, 0, sizeof(*k));
	if (memcmp(a, loopback, 16) == 0)
		return;
	if (memcmp(a, v4_mapped, 12) == 0) {
		addr_key_v4(k, a + 12);
		return;
	}
	k->family = ADDR_V6;
	memcpy(k->bytes, a, 8);
}

static void addr_key_from_sockaddr(struct addr_key *k, const nng_sockaddr *sa)
{
	memset(k, 0, sizeof(*k));
	if (sa->s_family == NNG_AF_INET)
		addr_key_v4(k, (const uint8_t *)&sa->s_in.sa_addr); /* network order */
	else if (sa->s_family == NNG_AF_INET6)
		addr_key_v6(k, sa->s_in6.sa_addr);
	/* IPC, inproc, abstract, unknown: local */
}

/*
 * Where a peer's endpoint URL says it lives. false for a host name other
 * than localhost: names are not resolved here (that could block), so such a
 * peer gets no allowance of its own at its address.
 */
static bool addr_key_from_url(struct addr_key *k, const char *url)
{
	char host[URL_MAX_LEN];
	const char *h = strstr(url, "://"), *end;
	uint8_t a[16];

	memset(k, 0, sizeof(*k));
	if (strncmp(url, "ipc://", 6) == 0 || strncmp(url, "inproc://", 9) == 0 ||
	    strncmp(url, "abstract://", 11) == 0)
		return true;
	if (h == NULL)
		return false;
	h += 3;
	if (*h == '[') {
		h++;
		end = strchr(h, ']');
	} else {
		end = strrchr(h, ':');
	}
	if (end == NULL || end == h || (size_t)(end - h) >= sizeof(host))
		return false;
	memcpy(host, h, (size_t)(end - h));
	host[end - h] = '\0';
	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, a) == 1)
		addr_key_v4(k, a);
	else if (inet_pton(AF_INET6, host, a) == 1)
		addr_key_v6(k, a);
	else
		return false;
	return true;
}

static bool addr_key_eq(const struct addr_key *a, const struct addr_key *b)
{
	return a->family == b->family && memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

static void addr_key_format(char *buf, size_t len, const struct addr_key *k)
{
	char a[INET6_ADDRSTRLEN] = "?";
	uint8_t v6[16] = {0};

	switch (k->family) {
	case ADDR_V4:
		(void)inet_ntop(AF_INET, k->bytes, a, sizeof(a));
		snprintf(buf, len, "%s", a);
		break;
	case ADDR_V6:
		memcpy(v6, k->bytes, 8);
		(void)inet_ntop(AF_INET6, v6, a, sizeof(a));
		snprintf(buf, len, "%s/64", a);
		break;
	default:
		snprintf(buf, len, "local (loopback or IPC)");
		break;
	}
}

/* Under in_lock: how many unauthenticated pipes address k may hold. */
static size_t in_allowance(const struct transport *t, const struct addr_key *k)
{
	size_t n = t->in_per_addr;

	for (size_t i = 0; i < t->n_peer_keys; i++) {
		if (addr_key_eq(&t->peer_keys[i], k))
			n += 2; /* its connection, and a redial overlapping it */
	}
	return n;
}

/* Under in_lock: drops entry i, counting a pipe that never sent a frame. */
static void in_reclaim(struct transport *t, size_t i)
{
	struct in_pipe *e = &t->in[i];

	if (!e->framed && !e->timed_out && !t->in_closing) {
		t->in_st[IN_NO_FRAME]++;
		t->in_last[IN_NO_FRAME] = e->key;
	}
	t->in[i] = t->in[--t->n_in];
}

/* Under in_lock: drops every entry NNG has removed. */
static void in_reclaim_gone(struct transport *t)
{
	for (size_t i = 0; i < t->n_in;) {
		if (t->in[i].gone)
			in_reclaim(t, i); /* moves the last entry to i */
		else
			i++;
	}
}

/*
 * NNG calls this on its own threads for every pipe of the pull socket.
 * ADD_PRE: admit it (record it) or refuse it (nng_pipe_close here keeps NNG
 * from starting it). REM_POST: it is gone; the loop counts it (pipe_ev).
 * Only in_lock, NNG's pipe calls and ev_async_send here, as in pipe_cb.
 */
static void pipe_in_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct transport *t = arg;
	uint32_t id = (uint32_t)nng_pipe_id(pipe);
	bool refuse = false, wake = false;

	if (ev == NNG_PIPE_EV_ADD_PRE) {
		nng_sockaddr sa;
		struct addr_key k;
		size_t pending = 0;
		int reason = -1;
		if (nng_pipe_get_addr(pipe, NNG_OPT_REMADDR, &sa) != 0)
			sa.s_family = NNG_AF_UNSPEC;
		addr_key_from_sockaddr(&k, &sa);
		pthread_mutex_lock(&t->in_lock);
		for (size_t i = 0; i < t->n_in; i++) {
			const struct in_pipe *e = &t->in[i];
			if (!e->gone && !e->authed && addr_key_eq(&e->key, &k))
				pending++;
		}
		if (t->in_live >= t->in_max)
			reason = IN_LIMIT;
		else if (pending >= in_allowance(t, &k))
			reason = IN_PER_ADDRESS;
		if (reason < 0 && t->n_in == t->in_cap) {
			/* Closed pipes the loop has not reclaimed yet fill the slack:
			 * take the first (its count may miss a frame in flight). */
			for (size_t i = 0; i < t->n_in; i++) {
				if (t->in[i].gone) {
					in_reclaim(t, i);
					break;
				}
			}
		}
		if (reason < 0 && t->n_in < t->in_cap) {
			struct in_pipe *e = &t->in[t->n_in++];
			memset(e, 0, sizeof(*e));
			e->id = id;
			e->key = k;
			e->added = util_now();
			t->in_live++;
		} else {
			if (reason < 0)
				reason = IN_LIMIT; /* cannot happen: live < max < cap */
			t->in_st[reason]++;
			t->in_last[reason] = k;
			refuse = true;
		}
		pthread_mutex_unlock(&t->in_lock);
		if (refuse)
			nng_pipe_close(pipe);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		/* Also sent for the pipes refused above: they are not in the table. */
		pthread_mutex_lock(&t->in_lock);
		for (size_t i = 0; i < t->n_in; i++) {
			struct in_pipe *e = &t->in[i];
			if (e->id == id && !e->gone) {
				e->gone = true;
				t->in_live--;
				wake = !t->in_closing;
				break;
			}
		}
		pthread_mutex_unlock(&t->in_lock);
		if (wake)
			ev_async_send(t->loop, &t->pipe_w);
	}
}

/*
 * Loop thread: a frame came through pipe id; sender: the peer it
 * authenticated as, NULL if it did not pass seal_open.
 */
static void pipe_in_mark(struct transport *t, uint32_t id, const uint8_t *sender)
{
	pthread_mutex_lock(&t->in_lock);
	for (size_t i = 0; i < t->n_in; i++) {
		struct in_pipe *e = &t->in[i];
		if (e->id == id) {
			e->framed = true;
			if (sender != NULL) {
				e->authed = true;
				memcpy(e->sender, sender, SEAL_KEY_BYTES);
			}
			break;
		}
	}
	pthread_mutex_unlock(&t->in_lock);
}

/* Loop thread: one line per reason per LOG_INTERVAL_S about refused connections. */
static void in_log(struct transport *t)
{
	static const char *const why[IN_REASONS] = {
	        [IN_PER_ADDRESS] = "too many unauthenticated connections from that address",
	        [IN_LIMIT] = "the limit on incoming connections is reached",
	        [IN_TIMEOUT] = "no authenticated frame in time",
	        [IN_NO_FRAME] = ("it closed before sending a frame (a length over the maximum, "
	                         "another protocol, or a probe)"),
	};
	uint64_t n[IN_REASONS];
	struct addr_key last[IN_REASONS];
	size_t live, max;
	char addr[64];

	pthread_mutex_lock(&t->in_lock);
	memcpy(n, t->in_st, sizeof(n));
	memcpy(last, t->in_last, sizeof(last));
	live = t->in_live;
	max = t->in_max;
	pthread_mutex_unlock(&t->in_lock);
	for (int r = 0; r < IN_REASONS; r++) {
		if (n[r] == t->in_logged[r] ||
		    !log_allowed(t, (size_t)LOG_CONN_PER_ADDRESS + (size_t)r))
			continue;
		addr_key_format(addr, sizeof(addr), &last[r]);
		if (r == IN_PER_ADDRESS || r == IN_LIMIT)
			log_warnx("transport: refused a connection from %s: %s (%zu of %zu open; "
			          "%llu refused for this so far)",
			          addr, why[r], live, max, (unsigned long long)n[r]);
		else if (r == IN_TIMEOUT)
			log_info("transport: closed a connection from %s: %s (%.1f s; %llu so far)",
			         addr, why[r], t->auth_timeout_s, (unsigned long long)n[r]);
		else
			log_info("transport: a connection from %s ended: %s (%llu so far)", addr,
			         why[r], (unsigned long long)n[r]);
		t->in_logged[r] = n[r];
	}
}

/* Whether two socket addresses are the same IPv4 or IPv6 address and port. */
static bool sockaddr_same(const nng_sockaddr *a, const struct sockaddr_storage *b)
{
	if (a->s_family == NNG_AF_INET && b->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)b;
		return a->s_in.sa_port == in->sin_port && a->s_in.sa_addr == in->sin_addr.s_addr;
	}
	if (a->s_family == NNG_AF_INET6 && b->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)b;
		return a->s_in6.sa_port == in6->sin6_port &&
		       memcmp(a->s_in6.sa_addr, &in6->sin6_addr, 16) == 0;
	}
	return false;
}

/*
 * Ends incoming pipes the sweep timed out (loop thread, no lock held).
 *
 * Not with nng_pipe_close when it can be helped: libnng 1.5.2's TCP and IPC
 * transports re-arm a partial read from the read's callback without
 * checking for a close, so a pipe closed from outside while a read on it
 * completes never finishes that read, and NNG's single reaper thread waits
 * for it forever (no pipe of any socket is freed again, nng_close hangs).
 * A stranger that trickles bytes hits that window on most closes (seen in
 * a test). So for TCP the connection's own socket, found by its two
 * addresses among this process's descriptors, is shut down: NNG's read
 * then sees the end of the stream and NNG closes the pipe itself, from the
 * read path, which is safe. The two addresses are unique among live TCP
 * sockets, so no other connection can be hit. IPC and inproc pipes (local
 * peers only) are closed with nng_pipe_close.
 */
static void pipes_in_end(const uint32_t *ids, size_t n)
{
	struct {
		nng_sockaddr loc, rem;
		bool tcp, done;
	} v[SWEEP_CLOSE_BATCH];
	size_t n_tcp = 0;
	DIR *d;

	for (size_t i = 0; i < n; i++) {
		nng_pipe pipe = NNG_PIPE_INITIALIZER;
		pipe.id = ids[i];
		v[i].done = false;
		v[i].tcp = nng_pipe_get_addr(pipe, NNG_OPT_LOCADDR, &v[i].loc) == 0 &&
		           nng_pipe_get_addr(pipe, NNG_OPT_REMADDR, &v[i].rem) == 0 &&
		           (v[i].rem.s_family == NNG_AF_INET || v[i].rem.s_family == NNG_AF_INET6);
		n_tcp += v[i].tcp;
	}
	d = n_tcp > 0 ? opendir("/proc/self/fd") : NULL;
	for (struct dirent *e = d != NULL ? readdir(d) : NULL; e != NULL && n_tcp > 0;
	     e = readdir(d)) {
		struct sockaddr_storage loc, rem;
		socklen_t ll = sizeof(loc), rl = sizeof(rem);
		int64_t fd;
		struct stat sb;
		if (util_parse_i64(&fd, e->d_name, 0, INT_MAX) != 0 || fd == dirfd(d) ||
		    fstat((int)fd, &sb) != 0 || !S_ISSOCK(sb.st_mode) ||
		    getsockname((int)fd, (struct sockaddr *)&loc, &ll) != 0 ||
		    getpeername((int)fd, (struct sockaddr *)&rem, &rl) != 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			if (v[i].tcp && !v[i].done && sockaddr_same(&v[i].loc, &loc) &&
			    sockaddr_same(&v[i].rem, &rem)) {
				(void)shutdown((int)fd, SHUT_RDWR);
				v[i].done = true;
				n_tcp--;
				break;
			}
		}
	}
	if (d != NULL)
		closedir(d);
	for (size_t i = 0; i < n; i++) {
		nng_pipe pipe = NNG_PIPE_INITIALIZER;
		/* TCP not found: gone already, or no /proc (then close, and risk it). */
		if (v[i].done)
			continue;
		pipe.id = ids[i];
		(void)nng_pipe_close(pipe); /* NNG_ENOENT: it went away meanwhile */
	}
}

/*
 * Loop thread, every auth_timeout/4 (at most SWEEP_MAX_S): reclaims gone
 * pipes and closes those that delivered no authenticated frame within
 * auth_timeout. Frames waiting in NNG are taken first, so a hello that
 * already arrived counts. If the loop itself was held up (this tick is
 * late), nothing is closed this time: the frames that arrived meanwhile
 * get their turn first.
 */
static void sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct transport *t = w->data;
	double now = util_now();
	bool late = t->last_sweep > 0 && now - t->last_sweep > 2 * w->repeat + 0.5;
	uint32_t ids[SWEEP_CLOSE_BATCH];
	size_t n;

	(void)loop;
	(void)revents;
	t->last_sweep = now;
	for (struct peer *p = t->peers; p != NULL; p = p->next) {
		if (p->open)
			hello_spares_refill(p);
	}
	recv_some(t);
	do {
		n = 0;
		pthread_mutex_lock(&t->in_lock);
		in_reclaim_gone(t);
		for (size_t i = 0; !late && i < t->n_in && n < ARRAY_LEN(ids); i++) {
			struct in_pipe *e = &t->in[i];
			if (e->authed || e->timed_out || now - e->added < t->auth_timeout_s)
				continue;
			e->timed_out = true;
			t->in_st[IN_TIMEOUT]++;
			t->in_last[IN_TIMEOUT] = e->key;
			ids[n++] = e->id;
		}
		pthread_mutex_unlock(&t->in_lock);
		/* Outside the lock: NNG may call pipe_in_cb for them (REM_POST). */
		pipes_in_end(ids, n);
	} while (n == ARRAY_LEN(ids));
	in_log(t);
}

/* Descriptors this process has open now, or -1 if /proc cannot tell. */
static long fds_open_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n - 1; /* the directory's own */
}

/*
 * The limit on incoming connections (transport_options.max_conns_in), at
 * start, before the transport opens anything: what the descriptors allow
 * after those open now, fd_reserve, FDS_LISTEN and FDS_PER_PEER per peer;
 * within that, CONNS_MEM_BUDGET / max_frame (each connection can hold a
 * frame being received), but never fewer than every peer reconnecting at
 * once plus conns_per_addr. Never more than CONNS_MAX.
 */
static size_t in_max_derive(struct transport *t, size_t wanted, size_t n_peers)
{
	struct rlimit rl = {0};
	long nofile = LONG_MAX, open_now = fds_open_count(), room;
	size_t legit = 2 * n_peers + t->in_per_addr, cap;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)LONG_MAX)
		nofile = (long)rl.rlim_cur;
	if (open_now < 0)
		open_now = 64;
	room = nofile - open_now - (long)t->fd_reserve - FDS_LISTEN -
	       (long)(FDS_PER_PEER * n_peers);
	if (wanted != 0) {
		cap = MIN(wanted, (size_t)CONNS_MAX);
	} else {
		cap = MAX(CONNS_MEM_BUDGET / t->max_frame, legit);
		cap = MIN(cap, (size_t)CONNS_MAX);
	}
	if (room < (long)cap) {
		cap = room < 1 ? 1 : (size_t)room;
		if (cap < legit)
			log_warnx("transport: the descriptor limit (%ld, %ld open, %zu reserved) "
			          "leaves room for %zu incoming connections, fewer than %zu peers "
			          "need; raise it (LimitNOFILE= under systemd)",
			          nofile, open_now, t->fd_reserve, cap, n_peers);
	}
	log_info("transport: up to %zu incoming connections (descriptor limit %ld, %ld open, "
	         "%zu reserved); each must authenticate within %.1f s",
	         cap, nofile, open_now, t->fd_reserve, t->auth_timeout_s);
	return cap;
}

/* --- set-up ----------------------------------------------------------------- */

static void pipe_ev(struct ev_loop *loop, ev_async *w, int revents);

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
	t->auth_timeout_s =
	        (opt->auth_timeout_ms > 0 ? opt->auth_timeout_ms : DEFAULT_AUTH_TIMEOUT_MS) /
	        1000.0;
	t->in_max = opt->max_conns_in; /* 0: derived at start */
	t->in_per_addr = opt->conns_per_addr ? opt->conns_per_addr : DEFAULT_CONNS_PER_ADDR;
	t->fd_reserve = opt->fd_reserve ? opt->fd_reserve : DEFAULT_FD_RESERVE;
	if (pthread_mutex_init(&t->in_lock, NULL) != 0) {
		free(t);
		return -ENOMEM;
	}
	t->in_lock_ok = true;
	ev_async_init(&t->pipe_w, pipe_ev);
	t->pipe_w.data = t;
	ev_async_start(t->loop, &t->pipe_w);
	*out = t;
	return 0;
}

/*
 * NNG calls this on its own threads when a connection of a peer's push
 * socket comes or goes. Only atomics and ev_async_send (thread-safe) here;
 * pipe_ev sends the hello and reports losses on the loop thread.
 */
static void pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct peer *p = arg;

	(void)pipe;
	/* Counted from ADD_PRE: NNG 1.5 sends REM_POST for every pipe that saw
	 * ADD_PRE, also one refused before ADD_POST (a peer speaking the wrong
	 * protocol), so the count cannot drift below zero. A parked hello
	 * goes first on this pipe by NNG's own order; without one, gen moves
	 * here, before NNG starts the pipe, and the loop queues one (see
	 * peer_flush). */
	if (ev == NNG_PIPE_EV_ADD_PRE) {
		atomic_fetch_add(&p->pipes, 1);
		if (!atomic_load(&p->hello_parked)) {
			atomic_fetch_add(&p->gen, 1);
			ev_async_send(p->t->loop, &p->t->pipe_w);
		}
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		/* Before NNG frees the pipe: see hello_park. */
		hello_park(p);
		if (atomic_fetch_sub(&p->pipes, 1) <= 1)
			atomic_store(&p->lost, true);
		ev_async_send(p->t->loop, &p->t->pipe_w);
	}
}

/*
 * Loop thread: connections came up (hello) or went away (lost, reclaim),
 * or a parked hello went out (seal spares, park the next one while the
 * peer has no connection).
 */
static void pipe_ev(struct ev_loop *loop, ev_async *w, int revents)
{
	struct transport *t = w->data;

	(void)loop;
	(void)revents;
	for (struct peer *p = t->peers; p != NULL; p = p->next) {
		if (!p->open)
			continue;
		hello_spares_refill(p);
		if (atomic_load(&p->pipes) == 0)
			hello_park(p);
		if (atomic_load(&p->gen) != p->hello_gen)
			peer_flush(p);
	}
	for (struct peer *p = t->peers; p != NULL; p = p->next) {
		if (!atomic_exchange(&p->lost, false) || atomic_load(&p->pipes) > 0)
			continue;
		log_debug("transport: connection to %s lost", p->name);
		t->st.peers_lost++;
		if (t->lost_cb != NULL)
			t->lost_cb(t->lost_arg, p->pk, p->name);
	}
	pthread_mutex_lock(&t->in_lock);
	in_reclaim_gone(t);
	pthread_mutex_unlock(&t->in_lock);
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

	rv = nng_aio_alloc(&p->hello_aio, hello_aio_cb, p);
	if (rv != 0)
		return nng_errno(rv);
	rv = nng_push0_open(&p->sock);
	if (rv != 0) {
		nng_aio_free(p->hello_aio);
		p->hello_aio = NULL;
		return nng_errno(rv);
	}
	rv = nng_socket_set_ms(p->sock, NNG_OPT_RECONNMINT, t->reconnect_min_ms);
	if (rv == 0)
		rv = nng_socket_set_ms(p->sock, NNG_OPT_RECONNMAXT, t->reconnect_max_ms);
	if (rv == 0)
		rv = nng_pipe_notify(p->sock, NNG_PIPE_EV_ADD_PRE, pipe_cb, p);
	if (rv == 0)
		rv = nng_pipe_notify(p->sock, NNG_PIPE_EV_REM_POST, pipe_cb, p);
	if (rv == 0)
		rv = nng_dialer_create(&d, p->sock, p->url);
	if (rv == 0) {
		/* The first connection's hello, waiting before there is one. */
		hello_spares_refill(p);
		hello_park(p);
	}
	/* NONBLOCK: a peer that is down now is dialed again with backoff. */
	if (rv == 0)
		rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
	if (rv == 0)
		rv = nng_socket_get_int(p->sock, NNG_OPT_SENDFD, &fd);
	if (rv != 0) {
		atomic_store(&p->closing, true);
		nng_close(p->sock);
		nng_aio_free(p->hello_aio); /* after its callback, which freed the hello */
		p->hello_aio = NULL;
		hello_spares_free(p);
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
	struct addr_key k;
	bool located, pinned;
	struct peer *p;
	int rc;

	if (url == NULL || strlen(url) >= URL_MAX_LEN)
		return -EINVAL;
	if (peer_find(t, pk) != NULL)
		return -EEXIST;
	located = addr_key_from_url(&k, url);
	if (located) {
		/* Room for its address in the allowances, filled in once it is added. */
		struct addr_key *keys;
		pthread_mutex_lock(&t->in_lock);
		keys = realloc(t->peer_keys, (t->n_peer_keys + 1) * sizeof(*keys));
		if (keys != NULL)
			t->peer_keys = keys;
		pthread_mutex_unlock(&t->in_lock);
		if (keys == NULL)
			return -ENOMEM;
	}
	pinned = !seal_peer_known(t->seal, pk);
	if (pinned) {
		rc = seal_peer_add(t->seal, pk);
		if (rc != 0)
			return rc;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		rc = -ENOMEM;
		goto unpin;
	}
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
			goto unpin;
		}
	}
	p->next = t->peers;
	t->peers = p;
	if (located) {
		/* Its address may hold two more unauthenticated connections. */
		pthread_mutex_lock(&t->in_lock);
		t->peer_keys[t->n_peer_keys++] = k;
		pthread_mutex_unlock(&t->in_lock);
	}
	return 0;
unpin:
	/* A peer that could not be added is not left pinned: its frames stay refused. */
	if (pinned)
		(void)seal_peer_remove(t->seal, pk);
	return rc;
}

/*
 * Closes a removed peer's push socket and frees it, off the loop thread:
 * libnng 1.5.2's nng_close() can wait a long time, or for ever, while
 * pipes come and go around it (see node/daemon.c, close_watchdog), and a
 * reload must not stop the loop. NNG's callbacks for this socket touch only
 * p and t's async watcher; transport_free waits for every closer.
 */
static void *peer_close_main(void *arg)
{
	struct peer *p = arg;
	struct transport *t = p->t;

	nng_close(p->sock); /* finishes the parked hello (ECLOSED) */
	nng_aio_free(p->hello_aio);
	hello_spares_free(p);
	free(p);
	atomic_fetch_sub(&t->closers, 1);
	return NULL;
}

int transport_peer_remove(struct transport *t, const uint8_t pk[SEAL_KEY_BYTES])
{
	struct peer **pp, *p = NULL;
	struct addr_key k;
	size_t n_in = 0, dropped = 0;
	nng_msg *m;
	int rc;

	for (pp = &t->peers; *pp != NULL; pp = &(*pp)->next) {
		if (memcmp((*pp)->pk, pk, SEAL_KEY_BYTES) == 0) {
			p = *pp;
			break;
		}
	}
	if (p == NULL)
		return -ENOENT;
	/* First the key: from now on its frames are refused as from a stranger. */
	rc = seal_peer_remove(t->seal, pk);
	if (rc != 0 && rc != -ENOENT)
		return rc;
	*pp = p->next;
	for (struct delayed *d = t->delayed, *next; d != NULL; d = next) {
		next = d->next;
		if (d->p == p) {
			ev_timer_stop(t->loop, &d->w);
			delayed_unlink(t, d);
			nng_msg_free(d->m);
			free(d);
		}
	}
	for (m = queue_pop(p); m != NULL; m = queue_pop(p)) {
		nng_msg_free(m);
		dropped++;
	}
	pthread_mutex_lock(&t->in_lock);
	if (addr_key_from_url(&k, p->url)) {
		/* Its address no longer holds a peer's allowance. */
		for (size_t i = 0; i < t->n_peer_keys; i++) {
			if (addr_key_eq(&t->peer_keys[i], &k)) {
				t->peer_keys[i] = t->peer_keys[--t->n_peer_keys];
				break;
			}
		}
	}
	/*
	 * Its incoming connections (those its frames authenticated) become
	 * strangers' again: nothing they carry opens any more, and the sweep
	 * closes them once auth_timeout passes without an authenticated frame,
	 * the way it closes any stranger's (not here at once: a pipe closed from
	 * outside while a read completes can hang libnng 1.5.2, see
	 * pipes_in_end).
	 */
	for (size_t i = 0; i < t->n_in; i++) {
		struct in_pipe *e = &t->in[i];
		if (!e->gone && e->authed && memcmp(e->sender, pk, SEAL_KEY_BYTES) == 0) {
			e->authed = false;
			e->added = util_now();
			n_in++;
		}
	}
	pthread_mutex_unlock(&t->in_lock);
	log_info("transport: peer %s (%s) removed: %zu queued frames dropped; its %zu incoming "
	         "connections close within %.0f s",
	         p->name, p->url, dropped, n_in, t->auth_timeout_s);
	if (p->open) {
		pthread_t th;
		pthread_attr_t attr;
		bool spawned = false;

		ev_io_stop(t->loop, &p->send_w);
		atomic_store(&p->closing, true);
		atomic_fetch_add(&t->closers, 1);
		if (pthread_attr_init(&attr) == 0) {
			(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
			spawned = pthread_create(&th, &attr, peer_close_main, p) == 0;
			pthread_attr_destroy(&attr);
		}
		if (!spawned)
			(void)peer_close_main(p); /* here, then */
		return 0;
	}
	hello_spares_free(p);
	free(p);
	return 0;
}

int transport_peer_set_name(struct transport *t, const uint8_t pk[SEAL_KEY_BYTES], const char *name)
{
	struct peer *p = peer_find(t, pk);

	if (p == NULL)
		return -ENOENT;
	snprintf(p->name, sizeof(p->name), "%s", name);
	return 0;
}

int transport_start(struct transport *t)
{
	size_t n_peers = 0;
	int fd = -1, rv;

	if (t->started)
		return -EALREADY;
	for (struct peer *p = t->peers; p != NULL; p = p->next)
		n_peers++;
	/* Before anything opens: what is open now is not the transport's. */
	t->in_max = in_max_derive(t, t->in_max, n_peers);
	t->in_cap = t->in_max + CONNS_GONE_SLACK;
	t->in = calloc(t->in_cap, sizeof(*t->in));
	if (t->in == NULL)
		return -ENOMEM;
	rv = nng_pull0_open(&t->pull);
	if (rv != 0)
		return nng_errno(rv);
	t->pull_open = true;
	/* Before listening, so every accepted pipe inherits the limit. */
	rv = nng_socket_set_size(t->pull, NNG_OPT_RECVMAXSZ, t->max_frame);
	if (rv == 0)
		rv = nng_pipe_notify(t->pull, NNG_PIPE_EV_ADD_PRE, pipe_in_cb, t);
	if (rv == 0)
		rv = nng_pipe_notify(t->pull, NNG_PIPE_EV_REM_POST, pipe_in_cb, t);
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
	ev_timer_init(&t->sweep_w, sweep_cb, 0.0,
	              MIN(MAX(t->auth_timeout_s / 4, 0.01), SWEEP_MAX_S));
	t->sweep_w.data = t;
	ev_timer_again(t->loop, &t->sweep_w);
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
	struct transport *mt = (struct transport *)t; /* the lock only */

	*out = t->st;
	out->frames_out += atomic_load(&mt->hello_frames);
	out->bytes_out += atomic_load(&mt->hello_bytes);
	pthread_mutex_lock(&mt->in_lock);
	out->conns_in = t->in_live;
	out->conns_in_max = t->in_max;
	out->conns_refused_per_address = t->in_st[IN_PER_ADDRESS];
	out->conns_refused_limit = t->in_st[IN_LIMIT];
	out->conns_auth_timeout = t->in_st[IN_TIMEOUT];
	out->conns_no_frame = t->in_st[IN_NO_FRAME];
	pthread_mutex_unlock(&mt->in_lock);
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
	s->rejected[REJECT_MALFORMED] =
	        st.seal.malformed + (st.dropped_decode - st.dropped_version) + st.dropped_mismatch;
	s->rejected[REJECT_VERSION] = st.seal.bad_version + st.dropped_version;
	s->rejected[REJECT_WRONG_KEY] = st.seal.misdirected;
	for (size_t i = 0; i < s->n_peers; i++) {
		for (const struct peer *p = t->peers; p != NULL; p = p->next) {
			if (strcmp(s->peers[i].name, p->name) == 0)
				s->peers[i].wrong_key = p->wrong_key;
		}
	}
	/* st.seal.oversized cannot move here: see struct transport_stats. */
	s->conns_in = st.conns_in;
	s->conns_in_max = st.conns_in_max;
	s->conns_refused[CONN_REFUSED_PER_ADDRESS] = st.conns_refused_per_address;
	s->conns_refused[CONN_REFUSED_LIMIT] = st.conns_refused_limit;
	s->conns_refused[CONN_REFUSED_AUTH_TIMEOUT] = st.conns_auth_timeout;
	s->conns_no_frame = st.conns_no_frame;
}

void transport_free(struct transport *t)
{
	if (t == NULL)
		return;
	if (t->pull_open) {
		pthread_mutex_lock(&t->in_lock);
		t->in_closing = true; /* closing them ourselves is no refusal */
		pthread_mutex_unlock(&t->in_lock);
		ev_io_stop(t->loop, &t->recv_w);
		ev_timer_stop(t->loop, &t->sweep_w);
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
			atomic_store(&p->closing, true);
			nng_close(p->sock); /* finishes the parked hello (ECLOSED) */
			nng_aio_free(p->hello_aio);
		}
		for (m = queue_pop(p); m != NULL; m = queue_pop(p))
			nng_msg_free(m);
		hello_spares_free(p);
		free(p);
	}
	/* Removed peers' sockets closing in the background (bounded by the close watchdog). */
	while (atomic_load(&t->closers) > 0) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	/* Every socket is closed: no pipe_cb or pipe_in_cb can run any more. */
	ev_async_stop(t->loop, &t->pipe_w);
	if (t->in_lock_ok)
		pthread_mutex_destroy(&t->in_lock);
	free(t->in);
	free(t->peer_keys);
	free(t);
}
