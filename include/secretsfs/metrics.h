/*
 * metrics: the opt-in scrape endpoint and the node_exporter textfile
 * (metrics.c), both serving exactly what `secretsfs metrics` prints.
 *
 * The listener answers GET (and HEAD) /metrics with the Prometheus text
 * and /healthz with the health check (200, or 503 and why), and nothing
 * else: 404 for another path, 405 for another method, 400 for what is not
 * HTTP/1.x. It runs in the FUSE process on a thread of its own, one
 * connection at a time, and renders from the broker's snapshot of names,
 * versions and counters, as the control socket does: it never sees a
 * secret value. The FUSE process's seccomp filter lets it create Unix
 * sockets alone, so metrics_open binds the listening socket before the
 * filter is installed and the thread only accepts on it afterwards.
 *
 * The textfile is written every interval to a temporary file beside it
 * and renamed over it, so node_exporter never reads half of one; a last
 * write at close says secretsfs_up 0.
 */
#ifndef SECRETSFS_METRICS_H
#define SECRETSFS_METRICS_H

#include <stddef.h>

#include <secretsfs/broker.h>
#include <secretsfs/config.h>

/* What a request asks for, when metrics_http_route answers 200. */
enum metrics_route {
	METRICS_ROUTE_METRICS = 0,
	METRICS_ROUTE_HEALTHZ,
};

/* A request's head, the blank line included. */
#define METRICS_HEAD_MAX	4096

/*
 * The request head in buf (len bytes, not NUL-terminated; its request
 * line first): 200 with *route and *head (a HEAD request), or the status
 * to answer: 400, 404, 405. Pure: no allocation, no global state.
 */
int metrics_http_route(const char *buf, size_t len, enum metrics_route *route,
    bool *head);

struct metrics;

/*
 * Bind the listener of mc->listen (with its TLS: the key file must be
 * private) and start its thread; start the textfile's thread. 0 and *out,
 * or -errno with errbuf saying why.
 */
int metrics_open(const struct config_metrics *mc, struct broker *b,
    struct metrics **out, char *errbuf, size_t errlen);
/* Stop both, write the textfile a last time, unlink a Unix socket. NULL ok. */
void metrics_close(struct metrics *m);

#endif
