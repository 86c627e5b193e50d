/*
 * external.c: the trainer socket (external.h), on the node's libev loop.
 */
#define _GNU_SOURCE /* struct ucred */
#include "node/external.h"

#include "util/bytes.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <ev.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define EXT_MAX_OUT    8 /* frames queued to the trainer (one result at most) */
#define EXT_MAX_EVENTS 64
#define EXT_UNTRAINED  1e-6 /* relative L2: a push this close to the expected adds no step */

struct out_frame {
	uint8_t *buf;
	size_t len, off;
};

struct ext {
	struct ev_loop *loop;
	struct ext_ops ops;
	int lfd, fd;
	ev_io accept_io, rio, wio;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char node[64];

	/* reading one frame */
	uint8_t hdr[4];
	size_t hdr_got;
	uint8_t *body;
	size_t body_cap, body_len, body_got;
	struct tmsg_hello *hello; /* decode scratch */

	/* the layout, once a hello was accepted */
	bool has_layout;
	uint64_t n_params, hash;

	/* the attached trainer */
	bool said_hello;
	bool snap_valid, done;
	float *snap; /* its latest push */
	uint64_t snap_seq, steps;
	uint64_t steps_max;       /* the largest count handed out (ext_snapshot) */
	double epochs, last_push; /* last_push: util_now() */
	float *expect;            /* its parameters had it not trained since the last folded push */
	bool expect_valid;
	uint64_t seq_base;    /* results before it attached count as in its model */
	uint64_t stale_round; /* in flight at its attach: begun with the old trainer's push */

	/* results */
	uint64_t last_seq;
	float *pend; /* results not yet written, summed */
	bool pend_has;
	uint64_t pend_seq, pend_round, sent_seq;
	bool finished;    /* FINISH came: tell every trainer */
	bool finish_sent; /* to the one attached */

	struct out_frame out[EXT_MAX_OUT];
	size_t n_out;

	struct worker_event ev[EXT_MAX_EVENTS];
	size_t n_ev;
	uint64_t refused, attaches;
};

static void event_push(struct ext *x, const struct worker_event *e)
{
	if (x->n_ev == EXT_MAX_EVENTS) {
		/* Drop the oldest TRAINED (progress only) to make room. */
		size_t i;
		for (i = 0; i < x->n_ev && x->ev[i].type != WORKER_EV_TRAINED; i++)
			;
		if (i == x->n_ev)
			return;
		memmove(&x->ev[i], &x->ev[i + 1], (x->n_ev - i - 1) * sizeof(x->ev[0]));
		x->n_ev--;
	}
	x->ev[x->n_ev++] = *e;
	if (x->ops.wake != NULL)
		x->ops.wake(x->ops.arg);
}

static void client_close(struct ext *x, const char *why)
{
	if (x->fd < 0)
		return;
	ev_io_stop(x->loop, &x->rio);
	ev_io_stop(x->loop, &x->wio);
	close(x->fd);
	x->fd = -1;
	for (size_t i = 0; i < x->n_out; i++)
		free(x->out[i].buf);
	x->n_out = 0;
	x->hdr_got = x->body_got = x->body_len = 0;
	if (x->said_hello)
		log_warnx("trainer detached (%s): this node takes part in no round until a "
		          "trainer attaches again",
		          why);
	x->said_hello = false;
	x->snap_valid = false;
	x->expect_valid = false;
}

/* --- writing ------------------------------------------------------------------ */

static void flush(struct ext *x);

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ext *x = w->data;

	(void)loop;
	(void)revents;
	while (x->n_out > 0) {
		struct out_frame *f = &x->out[0];
		ssize_t n = send(x->fd, f->buf + f->off, f->len - f->off, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			client_close(x, "write failed");
			return;
		}
		f->off += (size_t)n;
		if (f->off < f->len)
			continue;
		free(f->buf);
		memmove(&x->out[0], &x->out[1], (x->n_out - 1) * sizeof(x->out[0]));
		x->n_out--;
	}
	ev_io_stop(x->loop, &x->wio);
	flush(x);
}

/* Queues a frame (taking buf); a trainer that lets EXT_MAX_OUT pile up is dropped. */
static void enqueue(struct ext *x, uint8_t *buf, size_t len)
{
	if (x->fd < 0) {
		free(buf);
		return;
	}
	if (x->n_out == EXT_MAX_OUT) {
		free(buf);
		client_close(x, "it does not read what the node sends");
		return;
	}
	x->out[x->n_out++] = (struct out_frame){.buf = buf, .len = len};
	ev_io_start(x->loop, &x->wio);
}

static void send_error(struct ext *x, const char *why)
{
	uint8_t *buf;
	size_t len;

	if (tmsg_encode_error(&buf, &len, why) == 0)
		enqueue(x, buf, len);
}

/* The summed results go out once nothing else is being written. */
static void flush(struct ext *x)
{
	uint8_t *buf;
	size_t len;

	if (x->fd < 0 || !x->said_hello || x->n_out > 0)
		return;
	if (x->pend_has) {
		if (tmsg_encode_result(&buf, &len, x->pend_seq, x->pend_round, x->pend,
		                       x->n_params) != 0) {
			log_warnx("trainer: out of memory for a result; trying again later");
			return;
		}
		x->sent_seq = x->pend_seq;
		x->pend_has = false;
		memset(x->pend, 0, x->n_params * sizeof(float));
		enqueue(x, buf, len);
		return;
	}
	if (x->finished && !x->finish_sent && tmsg_encode_finish(&buf, &len) == 0) {
		x->finish_sent = true;
		enqueue(x, buf, len);
	}
}

/* --- reading ------------------------------------------------------------------ */

static void on_hello(struct ext *x, const struct tmsg_hello *h)
{
	char why[256];
	uint64_t hash = tmsg_layout_hash(h), rounds = 0, known = UINT64_MAX;
	const float *last;
	uint8_t *buf;
	size_t len;

	if (!x->has_layout) {
		if (x->ops.on_layout(x->ops.arg, h, hash, why, sizeof(why)) != 0) {
			log_warnx("trainer refused: %s", why);
			send_error(x, why);
			x->refused++;
			return;
		}
		x->snap = malloc(h->n_params * sizeof(float));
		x->expect = malloc(h->n_params * sizeof(float));
		x->pend = calloc(h->n_params, sizeof(float));
		if (x->snap == NULL || x->expect == NULL || x->pend == NULL) {
			log_errorx("trainer: out of memory for %llu parameters",
			           (unsigned long long)h->n_params);
			abort(); /* the core was made for this layout; nothing sane is left */
		}
		x->has_layout = true;
		x->n_params = h->n_params;
		x->hash = hash;
	} else if (hash != x->hash || h->n_params != x->n_params) {
		snprintf(why, sizeof(why),
		         "parameter layout %016llx differs from this node's %016llx (the model of "
		         "a DataDir never changes: start a new DataDir for another model)",
		         (unsigned long long)hash, (unsigned long long)x->hash);
		log_warnx("trainer refused: %s", why);
		send_error(x, why);
		x->refused++;
		return;
	}
	x->said_hello = true;
	x->attaches++;
	x->seq_base = x->last_seq;
	x->pend_has = false; /* this trainer's model is the node's from now on */
	memset(x->pend, 0, x->n_params * sizeof(float));
	x->sent_seq = x->last_seq;
	x->snap_valid = false;
	x->done = x->finished;
	last = x->ops.last(x->ops.arg, &rounds, &known, &x->stale_round);
	/*
	 * Its first push is judged against the last result: equal, it is that
	 * result unchanged (known, steps as the core recorded them); anything
	 * else counts a step (fresh). A round in flight that took the previous
	 * trainer's push changes this if it applies (ext_apply).
	 */
	x->steps = known != UINT64_MAX ? known : 0;
	x->expect_valid = last != NULL && known != UINT64_MAX;
	if (x->expect_valid)
		memcpy(x->expect, last, x->n_params * sizeof(float));
	if (tmsg_encode_welcome(&buf, &len, x->n_params, x->hash, x->node, rounds, last) != 0) {
		client_close(x, "out of memory for the welcome");
		return;
	}
	x->finish_sent = false;
	enqueue(x, buf, len);
	flush(x); /* after the welcome: finish, if training is over */
	log_info("trainer attached: %zu tensors, %llu parameters, layout %016llx, %llu rows",
	         h->n_tensors, (unsigned long long)h->n_params, (unsigned long long)x->hash,
	         (unsigned long long)h->rows);
}

static double rel_l2(const float *a, const float *b, size_t n)
{
	double d = 0, s = 0;

	for (size_t i = 0; i < n; i++) {
		double e = (double)a[i] - (double)b[i];
		d += e * e;
		s += (double)b[i] * (double)b[i];
	}
	return sqrt(d) / (sqrt(s) + 1e-30);
}

static void on_params(struct ext *x, const struct tmsg_params *p)
{
	struct worker_event e;
	uint64_t seq = MAX(p->applied, x->seq_base);

	if (p->applied > x->sent_seq) {
		x->refused++;
		send_error(x, "params: applied names a result this node has not sent");
		return;
	}
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(x->snap, p->x, x->n_params * sizeof(float));
#else
	for (size_t i = 0; i < x->n_params; i++)
		x->snap[i] = bytes_get_le_float(p->x + 4 * i);
#endif
	if (seq == x->last_seq) {
		/* All results folded in: did it train since? */
		if (!x->expect_valid || rel_l2(x->snap, x->expect, x->n_params) > EXT_UNTRAINED)
			x->steps++;
		x->steps_max = MAX(x->steps_max, x->steps);
		memcpy(x->expect, x->snap, x->n_params * sizeof(float));
		x->expect_valid = true;
	}
	/*
	 * A push that has not folded every result in is no input the core can
	 * use (its seq differs); training in it shows at the next folded push.
	 */
	x->snap_seq = seq;
	x->snap_valid = true;
	x->done = x->finished || p->done; /* a push cannot undo FINISH */
	x->last_push = util_now();
	if (p->epochs != x->epochs) {
		x->epochs = p->epochs;
		memset(&e, 0, sizeof(e));
		e.type = WORKER_EV_TRAINED;
		e.epochs = p->epochs;
		event_push(x, &e);
	}
	if (p->has_eval) {
		memset(&e, 0, sizeof(e));
		e.type = WORKER_EV_EVALUATED;
		e.accuracy = p->accuracy;
		e.loss = p->loss;
		event_push(x, &e);
	}
}

static void on_frame(struct ext *x)
{
	struct tmsg_params p;
	char why[TMSG_MAX_TEXT];
	int rc;

	/* Before its hello, a trainer's frames are judged as a hello (1 MiB at most). */
	rc = tmsg_decode(x->body, x->body_len, x->said_hello ? x->n_params : 0,
	                 x->said_hello ? NULL : x->hello, &p, why, sizeof(why));
	if (rc == TMSG_HELLO) {
		on_hello(x, x->hello);
	} else if (rc == TMSG_PARAMS && !x->said_hello) {
		x->refused++;
		send_error(x, "params before an accepted hello");
	} else if (rc == TMSG_PARAMS) {
		on_params(x, &p);
	} else {
		x->refused++;
		log_warnx("trainer: refused a frame: %s (%s); nothing changed", why, err_str(rc));
		send_error(x, why);
	}
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ext *x = w->data;

	(void)loop;
	(void)revents;
	for (;;) {
		ssize_t n;

		if (x->hdr_got < 4) {
			n = recv(x->fd, x->hdr + x->hdr_got, 4 - x->hdr_got, 0);
		} else {
			n = recv(x->fd, x->body + x->body_got, x->body_len - x->body_got, 0);
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			client_close(x, n == 0 ? "it closed the socket" : strerror(errno));
			return;
		}
		if (x->hdr_got < 4) {
			size_t limit = x->has_layout && x->said_hello
			                       ? 4 * x->n_params + TMSG_FRAME_EXTRA
			                       : TMSG_MAX_HELLO;
			x->hdr_got += (size_t)n;
			if (x->hdr_got < 4)
				continue;
			x->body_len = bytes_get_be32(x->hdr);
			x->body_got = 0;
			if (x->body_len > limit || x->body_len == 0) {
				char why[96];
				snprintf(why, sizeof(why), "a frame of %zu bytes (at most %zu now)",
				         x->body_len, limit);
				log_warnx("trainer: %s: closing its connection", why);
				x->refused++;
				send_error(x, why);
				/* what was queued goes out best effort; the stream cannot resync */
				while (x->n_out > 0 && x->fd >= 0) {
					struct out_frame *f = &x->out[0];
					if (send(x->fd, f->buf + f->off, f->len - f->off,
					         MSG_NOSIGNAL | MSG_DONTWAIT) <= 0)
						break;
					free(f->buf);
					memmove(&x->out[0], &x->out[1],
					        (x->n_out - 1) * sizeof(x->out[0]));
					x->n_out--;
				}
				client_close(x, "oversized frame");
				return;
			}
			if (x->body_len > x->body_cap) {
				uint8_t *nb = realloc(x->body, x->body_len);
				if (nb == NULL) {
					client_close(x, "out of memory for its frame");
					return;
				}
				x->body = nb;
				x->body_cap = x->body_len;
			}
			continue;
		}
		x->body_got += (size_t)n;
		if (x->body_got < x->body_len)
			continue;
		x->hdr_got = 0;
		on_frame(x);
		if (x->fd < 0)
			return;
	}
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ext *x = w->data;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	int fd;

	(void)loop;
	(void)revents;
	fd = accept4(x->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0 || cred.uid != geteuid()) {
		log_warnx("trainer socket: a process of another user was refused");
		close(fd);
		return;
	}
	if (x->fd >= 0) {
		uint8_t *buf;
		size_t len;
		if (tmsg_encode_error(&buf, &len, "a trainer is attached to this node already") ==
		    0) {
			(void)send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			free(buf);
		}
		close(fd);
		x->refused++;
		return;
	}
	x->fd = fd;
	x->hdr_got = 0;
	ev_io_init(&x->rio, read_cb, fd, EV_READ);
	ev_io_init(&x->wio, write_cb, fd, EV_WRITE);
	x->rio.data = x->wio.data = x;
	ev_io_start(x->loop, &x->rio);
}

/* --- the rest ------------------------------------------------------------------ */

int ext_open(struct ext **out, struct ev_loop *loop, const char *path, const char *node,
             const struct ext_ops *ops)
{
	struct sockaddr_un sa;
	struct ext *x;
	int rc;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	{
		/* A socket that answers belongs to a running node; one that does not is stale. */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct stat sb;
		if (probe >= 0) {
			int c = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
			close(probe);
			if (c == 0)
				return -EADDRINUSE;
		}
		if (lstat(path, &sb) == 0 && !S_ISSOCK(sb.st_mode))
			return -EEXIST;
		unlink(path);
	}
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return -ENOMEM;
	x->hello = malloc(sizeof(*x->hello));
	if (x->hello == NULL) {
		free(x);
		return -ENOMEM;
	}
	x->loop = loop;
	x->ops = *ops;
	x->fd = -1;
	snprintf(x->node, sizeof(x->node), "%s", node);
	memcpy(x->path, sa.sun_path, sizeof(x->path));
	x->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (x->lfd < 0 || bind(x->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    chmod(path, 0600) != 0 || listen(x->lfd, 4) != 0) {
		rc = -errno;
		if (x->lfd >= 0)
			close(x->lfd);
		free(x->hello);
		free(x);
		return rc;
	}
	ev_io_init(&x->accept_io, accept_cb, x->lfd, EV_READ);
	x->accept_io.data = x;
	ev_io_start(loop, &x->accept_io);
	*out = x;
	return 0;
}

void ext_free(struct ext *x)
{
	if (x == NULL)
		return;
	client_close(x, "the node stops");
	ev_io_stop(x->loop, &x->accept_io);
	close(x->lfd);
	unlink(x->path);
	free(x->body);
	free(x->hello);
	free(x->snap);
	free(x->expect);
	free(x->pend);
	free(x);
}

bool ext_has_layout(const struct ext *x)
{
	return x->has_layout;
}

uint64_t ext_n_params(const struct ext *x)
{
	return x->n_params;
}

uint64_t ext_layout_hash(const struct ext *x)
{
	return x->hash;
}

uint64_t ext_snapshot(struct ext *x, float *out, uint64_t *steps)
{
	if (!x->said_hello || !x->snap_valid)
		return UINT64_MAX;
	memcpy(out, x->snap, x->n_params * sizeof(float));
	x->steps_max = MAX(x->steps_max, x->steps);
	if (steps != NULL)
		*steps = x->steps;
	return MAX(x->snap_seq, x->seq_base); /* a stale round's result counts as in it */
}

bool ext_training_done(const struct ext *x)
{
	return x->done;
}

void ext_apply(struct ext *x, uint64_t seq, uint64_t round_id, const float *avg,
               const float *snapshot, int ckpt_rc)
{
	struct worker_event e;
	bool stale = round_id != 0 && round_id == x->stale_round;

	if (stale) {
		/*
		 * Begun with the previous trainer's push: the delta is not this
		 * trainer's, and the last result is now one this trainer never had.
		 * Nothing it pushes may count as known against it: its count goes
		 * above every count handed out (the round's snapshot's among them).
		 */
		x->steps = x->steps_max + 1;
		x->expect_valid = false;
		log_info("round %016llx began with the previous trainer's parameters: its result "
		         "is not handed to the trainer that attached since",
		         (unsigned long long)round_id);
		x->seq_base = seq;
		x->stale_round = 0;
	} else {
		for (size_t i = 0; i < x->n_params; i++) {
			float d = avg[i] - snapshot[i];
			x->pend[i] += d;
			if (x->expect_valid)
				x->expect[i] += d;
		}
		x->pend_has = true;
		x->pend_seq = seq;
		x->pend_round = round_id;
	}
	x->last_seq = seq;
	memset(&e, 0, sizeof(e));
	e.type = WORKER_EV_APPLIED;
	e.rc = ckpt_rc;
	e.round_id = round_id;
	event_push(x, &e);
	if (stale)
		x->sent_seq = MAX(x->sent_seq, seq); /* its pushes may name it as folded */
	if (x->said_hello)
		flush(x);
	else
		x->seq_base = seq; /* the next trainer's model is the node's */
}

void ext_finish(struct ext *x)
{
	x->done = true;
	x->finished = true;
	flush(x);
}

size_t ext_events(struct ext *x, struct worker_event *ev, size_t cap)
{
	size_t n = MIN(cap, x->n_ev);

	memcpy(ev, x->ev, n * sizeof(*ev));
	memmove(x->ev, x->ev + n, (x->n_ev - n) * sizeof(*ev));
	x->n_ev -= n;
	return n;
}

void ext_state(const struct ext *x, char *buf, size_t len, uint64_t *refused, uint64_t *attaches)
{
	*refused = x->refused;
	*attaches = x->attaches;
	if (!x->said_hello)
		snprintf(buf, len, "no trainer attached to %s: declining rounds", x->path);
	else if (!x->snap_valid)
		snprintf(buf, len, "attached, no parameters pushed yet: declining rounds");
	else if (x->snap_seq != x->last_seq)
		snprintf(buf, len,
		         "attached, result %llu not folded in by the trainer yet (last push %.1fs "
		         "ago): declining rounds",
		         (unsigned long long)x->last_seq, util_now() - x->last_push);
	else
		snprintf(buf, len, "attached, last push %.1fs ago%s", util_now() - x->last_push,
		         x->done ? ", training over" : "");
}

/* --- DataDir/external.state ----------------------------------------------------- */

int ext_statefile_head(uint8_t **out, size_t *len, const struct tmsg_hello *h)
{
	uint8_t *frame;
	size_t fl;
	int rc = tmsg_encode_hello(&frame, &fl, h);

	if (rc != 0)
		return rc;
	/* The frame's 4-byte length becomes the magic and the body's length. */
	*out = realloc(frame, fl + 8);
	if (*out == NULL) {
		free(frame);
		return -ENOMEM;
	}
	memmove(*out + 12, *out + 4, fl - 4);
	memcpy(*out, EXT_STATE_MAGIC, 8);
	bytes_put_le32(*out + 8, (uint32_t)(fl - 4));
	*len = fl + 8;
	return 0;
}

int ext_statefile_decode(const uint8_t *buf, size_t len, struct tmsg_hello *h,
                         const uint8_t **extra, size_t *extra_len)
{
	size_t hl;

	if (len < 12 || memcmp(buf, EXT_STATE_MAGIC, 8) != 0)
		return -EINVAL;
	hl = bytes_get_le32(buf + 8);
	if (hl > len - 12 || hl > TMSG_MAX_HELLO)
		return -EINVAL;
	if (tmsg_decode(buf + 12, hl, 0, h, NULL, NULL, 0) != TMSG_HELLO)
		return -EINVAL;
	*extra = buf + 12 + hl;
	*extra_len = len - 12 - hl;
	return 0;
}
