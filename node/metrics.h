/*
 * metrics.h: the optional Prometheus endpoint, on NNG's HTTP server.
 *
 * The event loop publishes a fresh exposition text now and then; HTTP
 * requests (served on NNG's threads) get a copy of the latest one. GET
 * /metrics only. Off unless [Node] MetricsListen is set.
 */
#ifndef SOTTO_NODE_METRICS_H
#define SOTTO_NODE_METRICS_H

struct metrics;

/* url: "tcp://host:port" (as the config normalises it). 0 or -errno/NNG code. */
int metrics_start(struct metrics **out, const char *url) __attribute__((warn_unused_result));
/* Replaces the text served (copied). Thread-safe. */
void metrics_publish(struct metrics *m, const char *text);
/* Stops serving and frees. NULL-safe. */
void metrics_stop(struct metrics *m);

#endif
