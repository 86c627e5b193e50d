/*
 * metrics.c: GET /metrics on NNG's HTTP server.
 */
#include "node/metrics.h"

#include "util/log.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct metrics {
	nng_http_server *server;
	nng_http_handler *handler;
	pthread_mutex_t lock;
	char *text;
};

/* NNG's handler callback gets no user pointer in 1.5; one endpoint per process. */
static struct metrics *metrics_current;

static void metrics_handle_cb(nng_aio *aio)
{
	struct metrics *m = metrics_current;
	nng_http_res *res = NULL;
	int rv;

	rv = nng_http_res_alloc(&res);
	if (rv != 0) {
		nng_aio_finish(aio, rv);
		return;
	}
	pthread_mutex_lock(&m->lock);
	if (m->text != NULL)
		rv = nng_http_res_copy_data(res, m->text, strlen(m->text));
	pthread_mutex_unlock(&m->lock);
	if (rv == 0)
		rv = nng_http_res_set_header(res, "Content-Type", "text/plain; version=0.0.4");
	if (rv != 0) {
		nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

int metrics_start(struct metrics **out, const char *url)
{
	char http[160];
	nng_url *u = NULL;
	struct metrics *m;
	int rv;

	if (metrics_current != NULL)
		return -EBUSY;
	if (strncmp(url, "tcp://", 6) != 0 ||
	    snprintf(http, sizeof(http), "http://%s", url + 6) >= (int)sizeof(http))
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	metrics_current = m;
	if ((rv = nng_url_parse(&u, http)) != 0 ||
	    (rv = nng_http_server_hold(&m->server, u)) != 0 ||
	    (rv = nng_http_handler_alloc(&m->handler, "/metrics", metrics_handle_cb)) != 0 ||
	    (rv = nng_http_handler_set_method(m->handler, "GET")) != 0 ||
	    (rv = nng_http_server_add_handler(m->server, m->handler)) != 0) {
		log_warnx("metrics: cannot serve %s: %s", http, nng_strerror(rv));
		goto fail;
	}
	m->handler = NULL; /* the server owns it now */
	rv = nng_http_server_start(m->server);
	if (rv != 0) {
		log_warnx("metrics: cannot listen on %s: %s", http, nng_strerror(rv));
		goto fail;
	}
	nng_url_free(u);
	log_info("metrics: serving %s/metrics", http);
	*out = m;
	return 0;
fail:
	if (m->handler != NULL)
		nng_http_handler_free(m->handler);
	if (m->server != NULL)
		nng_http_server_release(m->server);
	if (u != NULL)
		nng_url_free(u);
	metrics_current = NULL;
	pthread_mutex_destroy(&m->lock);
	free(m);
	return -EADDRNOTAVAIL;
}

void metrics_publish(struct metrics *m, const char *text)
{
	char *copy;

	if (m == NULL || text == NULL)
		return;
	copy = strdup(text);
	if (copy == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	free(m->text);
	m->text = copy;
	pthread_mutex_unlock(&m->lock);
}

void metrics_stop(struct metrics *m)
{
	if (m == NULL)
		return;
	nng_http_server_stop(m->server);
	nng_http_server_release(m->server);
	metrics_current = NULL;
	pthread_mutex_destroy(&m->lock);
	free(m->text);
	free(m);
}
