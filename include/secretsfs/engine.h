/*
 * engine: optional container metadata (name, image, labels) from a
 * Docker-compatible Engine API on a Unix socket. Docker serves it on
 * /run/docker.sock, Podman on /run/podman/podman.sock (`podman system
 * service`); both answer GET /containers/<id>/json.
 *
 * The metadata only ever narrows what a rule can match: when the engine is
 * down or does not know a container, the fields stay empty and a rule that
 * matches on them does not match (deny by default).
 *
 * An inspect body holds the container's environment, which is where the
 * secrets this daemon replaces used to live: the body is received into
 * locked memory, wiped when freed, and nothing of it but name, image and
 * labels is kept or reported.
 *
 * The requests go through the HTTP module (http.h) over the socket, so
 * http_global_init() must have run (by the daemon, once, before any thread
 * starts).
 */
#ifndef SECRETSFS_ENGINE_H
#define SECRETSFS_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include <secretsfs/identity.h>

#define ENGINE_DEFAULT_CACHE_MAX	1024
#define ENGINE_DEFAULT_TTL_MS		30000	/* names and labels rarely change */
#define ENGINE_DEFAULT_NEG_TTL_MS	2000	/* unknown container, engine down */
#define ENGINE_DEFAULT_TIMEOUT_MS	1000
#define ENGINE_BODY_MAX			(1024 * 1024)

struct engine;

/*
 * socket_path: a filesystem path, or "unix://<path>". Copied. Nothing is
 * connected until the first engine_enrich(). Returns NULL on OOM or (errno
 * EINVAL) an empty path.
 */
struct engine *engine_new(const char *socket_path);
/* Accepts NULL. */
void engine_free(struct engine *e);

/*
 * Tuning; call before the engine is shared. max_entries bounds the cache
 * (least recently used evicted first; 0 disables it); ttl_ms is how long a
 * success is kept, neg_ttl_ms a failure (so that a dead engine costs one
 * timeout per container per neg_ttl_ms, not one per open()).
 */
void engine_set_cache(struct engine *e, size_t max_entries, int64_t ttl_ms,
    int64_t neg_ttl_ms);
/*
 * Whole-request timeout (connect included), milliseconds; like the cache
 * tuning, before the engine is shared.
 */
void engine_set_timeout(struct engine *e, long timeout_ms);

/*
 * Fill c->container_name, c->image, c->labels, c->n_labels,
 * c->labels_truncated and c->container_pid (State.Pid) for c->container_id. Thread-safe: the HTTP client
 * gives each request its own handle and the cache has its own lock.
 * Returns 0 (also, doing nothing, for a caller with no container id);
 * -ENOENT when the engine does not know the container (404); -ECONNREFUSED
 * or -ENOENT (no socket) when it is not running; -ETIMEDOUT; -EMSGSIZE for a
 * body above ENGINE_BODY_MAX; -EPROTO for an unexpected status or body;
 * -ENOMEM. On error the engine fields are left empty. A cached failure
 * returns the same error again until neg_ttl_ms has passed.
 */
int engine_enrich(struct engine *e, struct caller *c);

/* Drop what is cached for container id (a State.Pid found stale). */
void engine_forget(struct engine *e, const char *id);

/*
 * Parse an inspect body (`GET /containers/<id>/json`, Docker's or Podman's
 * compat answer, or Podman's /libpod/ one) into c's engine fields:
 *   container_name  "Name" without its leading '/'
 *   image           "Config.Image", else "ImageName" (Podman's libpod API)
 *   labels          "Config.Labels" (null or absent: none)
 * A string that does not fit its field is dropped, never truncated (a
 * cut-off value could match a glob the whole does not). expected_id, when
 * not NULL, must equal the body's "Id". Returns 0, or -EPROTO (bad JSON,
 * wrong shape, wrong Id), leaving the engine fields empty.
 */
int engine_parse_inspect(const char *body, size_t len, const char *expected_id,
    struct caller *c);

/*
 * The host pid of the main process of the running container called name
 * (its "State.Pid"), for `secretsfs explain --container`. 0, or -EINVAL
 * (not a container name), -ENOENT, -ESRCH (not running), -EPROTO, or a
 * connection error as engine_enrich.
 */
int engine_container_pid(struct engine *e, const char *name, pid_t *pid);

struct engine_stats {
	uint64_t	hits;
	uint64_t	misses;		/* each one asked the engine */
	uint64_t	errors;		/* requests that failed */
	size_t		entries;
};
void engine_stats(struct engine *e, struct engine_stats *st);

#endif
