/*
 * control.c: Unix control socket, served from the libev loop.
 *
 * Each connection reads one line (at most 127 bytes, within 2 s), gets the
 * answer from the callback, writes it without blocking, and closes. At most
 * CONTROL_MAX_CLIENTS connections at once; more are accepted and closed.
 */
#include "node/control.h"

#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CONTROL_MAX_CLIENTS 16
#define CONTROL_LINE_MAX    128
#define CONTROL_ANSWER_MAX  (1u << 20)

struct control_client {
	struct control *ctl;
	int fd;
	ev_io io;
	ev_timer timeout;
	char line[CONTROL_LINE_MAX];
	size_t line_len;
	char *answer;
	size_t answer_len, sent;
	bool in_use;
};

struct control {
	struct ev_loop *loop;
	int fd;
	ev_io accept_io;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	control_cb cb;
	void *arg;
	struct control_client clients[CONTROL_MAX_CLIENTS];
};

static void client_close(struct control_client *c)
{
	ev_io_stop(c->ctl->loop, &c->io);
	ev_timer_stop(c->ctl->loop, &c->timeout);
	close(c->fd);
	free(c->answer);
	c->answer = NULL;
	c->in_use = false;
}

static void client_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct control_client *c = w->data;
	(void)loop;
	(void)revents;
	client_close(c);
}

static void client_write(struct control_client *c)
{
	while (c->sent < c->answer_len) {
		ssize_t w = send(c->fd, c->answer + c->sent, c->answer_len - c->sent, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* wait for EV_WRITE */
		if (w < 0) {
			client_close(c);
			return;
		}
		c->sent += (size_t)w;
	}
	client_close(c);
}

static void client_answer(struct control_client *c)
{
	char *nl = memchr(c->line, '\n', c->line_len);

	*nl = '\0';
	if (nl > c->line && nl[-1] == '\r')
		nl[-1] = '\0';
	c->answer = c->ctl->cb(c->ctl->arg, c->line);
	if (c->answer == NULL) {
		const char unknown[] = "error unknown command\n";
		c->answer = malloc(sizeof(unknown));
		if (c->answer == NULL) {
			client_close(c);
			return;
		}
		memcpy(c->answer, unknown, sizeof(unknown));
	}
	c->answer_len = strnlen(c->answer, CONTROL_ANSWER_MAX);
	ev_io_stop(c->ctl->loop, &c->io);
	ev_io_set(&c->io, c->fd, EV_WRITE);
	ev_io_start(c->ctl->loop, &c->io);
	client_write(c);
}

static void client_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct control_client *c = w->data;
	(void)loop;

	if (revents & EV_WRITE) {
		client_write(c);
		return;
	}
	for (;;) {
		ssize_t r =
		        recv(c->fd, c->line + c->line_len, sizeof(c->line) - 1 - c->line_len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0) {
			client_close(c);
			return;
		}
		c->line_len += (size_t)r;
		if (memchr(c->line, '\n', c->line_len) != NULL) {
			client_answer(c);
			return;
		}
		if (c->line_len >= sizeof(c->line) - 1) {
			client_close(c); /* no command is that long */
			return;
		}
	}
}

static void control_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct control *ctl = w->data;
	struct control_client *c = NULL;
	int fd;

	(void)revents;
	fd = accept(ctl->fd, NULL, NULL);
	if (fd < 0)
		return;
	if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
		close(fd);
		return;
	}
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		if (!ctl->clients[i].in_use) {
			c = &ctl->clients[i];
			break;
		}
	}
	if (c == NULL) {
		close(fd);
		return;
	}
	memset(c, 0, sizeof(*c));
	c->ctl = ctl;
	c->fd = fd;
	c->in_use = true;
	ev_io_init(&c->io, client_io_cb, fd, EV_READ);
	c->io.data = c;
	ev_timer_init(&c->timeout, client_timeout_cb, 2.0, 0.0);
	c->timeout.data = c;
	ev_io_start(loop, &c->io);
	ev_timer_start(loop, &c->timeout);
}

static int sockaddr_for(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, strlen(path) + 1);
	return 0;
}

int control_start(struct control **out, struct ev_loop *loop, const char *path, control_cb cb,
                  void *arg)
{
	struct sockaddr_un sa;
	struct control *ctl;
	int rc;

	rc = sockaddr_for(&sa, path);
	if (rc != 0)
		return rc;
	/* A socket that answers belongs to a running node; one that does not is stale. */
	{
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0) {
			int c = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
			close(probe);
			if (c == 0)
				return -EADDRINUSE;
		}
		unlink(path);
	}
	ctl = calloc(1, sizeof(*ctl));
	if (ctl == NULL)
		return -ENOMEM;
	ctl->loop = loop;
	ctl->cb = cb;
	ctl->arg = arg;
	memcpy(ctl->path, sa.sun_path, sizeof(ctl->path));
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0) {
		rc = -errno;
		goto fail;
	}
	if (bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || chmod(path, 0600) != 0 ||
	    listen(ctl->fd, 8) != 0) {
		rc = -errno;
		goto fail;
	}
	ev_io_init(&ctl->accept_io, control_accept_cb, ctl->fd, EV_READ);
	ctl->accept_io.data = ctl;
	ev_io_start(loop, &ctl->accept_io);
	*out = ctl;
	return 0;
fail:
	if (ctl->fd >= 0)
		close(ctl->fd);
	free(ctl);
	return rc;
}

void control_stop(struct control *ctl)
{
	if (ctl == NULL)
		return;
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		if (ctl->clients[i].in_use)
			client_close(&ctl->clients[i]);
	}
	ev_io_stop(ctl->loop, &ctl->accept_io);
	close(ctl->fd);
	unlink(ctl->path);
	free(ctl);
}

static int wait_fd(int fd, short events, double deadline)
{
	struct pollfd p = {.fd = fd, .events = events};
	for (;;) {
		double left = deadline - util_now();
		int r;
		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)(left * 1000) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r > 0)
			return 0;
	}
}

int control_request(const char *path, const char *cmd, double timeout_s, char **out)
{
	struct sockaddr_un sa;
	double deadline = util_now() + timeout_s;
	char line[CONTROL_LINE_MAX];
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd, rc, n;

	rc = sockaddr_for(&sa, path);
	if (rc != 0)
		return rc;
	n = snprintf(line, sizeof(line), "%s\n", cmd);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -EINVAL;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
		rc = -errno;
		goto out;
	}
	for (;;) {
		ssize_t r;
		if (len + 4096 + 1 > cap) {
			char *nb;
			if (cap >= CONTROL_ANSWER_MAX) {
				rc = -EFBIG;
				goto out;
			}
			cap = cap ? cap * 2 : 8192;
			nb = realloc(buf, cap);
			if (nb == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		rc = wait_fd(fd, POLLIN, deadline);
		if (rc != 0)
			goto out;
		r = recv(fd, buf + len, cap - len - 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	*out = buf;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}
