/*
 * control: the operator's Unix socket, and the CLI that talks to it
 * (control_parse.c, control_render.c, control.c: the server;
 * control_cli.c).
 *
 * The socket is created mode 0600 and every connection is checked with
 * SO_PEERCRED: only root (or the daemon's own user) is served. The
 * protocol is one request line, one answer, then the daemon closes:
 *
 *   request  = VERB [" " ARG] "\n"            at most CONTROL_LINE_MAX bytes
 *   VERB     = "status" ["json"] | "metrics" | "health"
 *            | "flush" [NAME] | "refresh" NAME
 *   answer   = "ok\n" BODY | "error " MESSAGE "\n"
 *
 * status: the daemon, the backends (reachable, auth, token TTL), each
 * secret's version, age and staleness, and who has not reopened it since
 * it changed; as text, or as JSON with "json". metrics: the Prometheus
 * text exposition format (version 0.0.4). health: "ok" when mounted and
 * every backend is reachable or failing for less than cache.max_stale.
 * flush: forget cached values (one secret, or all). refresh: fetch one
 * secret now.
 *
 * The socket lives outside the mount: "control.socket" in the config, by
 * default the mountpoint with ".sock" appended (/run/secretsfs.sock for
 * the default mount).
 */
#ifndef SECRETSFS_CONTROL_H
#define SECRETSFS_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <secretsfs/broker.h>

#define CONTROL_DEFAULT_SOCKET	"/run/secretsfs.sock"
#define CONTROL_LINE_MAX	1024	/* a request line, "\n" included */
#define CONTROL_NAME_MAX	255	/* a secret name (NAME_MAX) */

enum control_verb {
	CONTROL_STATUS = 0,
	CONTROL_METRICS,
	CONTROL_HEALTH,
	CONTROL_FLUSH,
	CONTROL_REFRESH,
};

struct control_cmd {
	enum control_verb	verb;
	bool			json;		/* status json */
	bool			has_name;	/* flush NAME, refresh NAME */
	char			name[CONTROL_NAME_MAX + 1];
};

/*
 * Parse one request line: buf holds len bytes, without the "\n" (it need
 * not be NUL-terminated and may hold anything). A pure function: no
 * allocation, no global state; the fuzzer's target. 0 and *out filled,
 * or -EINVAL (not a request: unknown verb, missing or extra argument,
 * a byte below 0x20 or 0x7f anywhere, a name with '/' or "." / ".."),
 * -ENAMETOOLONG (a name longer than CONTROL_NAME_MAX), -E2BIG (longer
 * than CONTROL_LINE_MAX - 1).
 */
int control_parse(const char *buf, size_t len, struct control_cmd *out);

/*
 * The socket path: configured when not NULL, else mountpoint (trailing
 * slashes dropped) + ".sock", else CONTROL_DEFAULT_SOCKET. -ENAMETOOLONG
 * when it does not fit a sockaddr_un (or len).
 */
int control_socket_path(const char *configured, const char *mountpoint,
    char *buf, size_t len);

/*
 * Answer cmd into out (the body, after the "ok" line). 0, or -errno with
 * a one-line reason in why.
 */
int control_execute(struct broker *b, const struct control_cmd *cmd,
    FILE *out, char *why, size_t whylen);

/* The renderers control_execute uses, on a snapshot. */
void control_render_metrics(const struct broker_snapshot *s, FILE *out);
void control_render_status(const struct broker_snapshot *s, bool json,
    FILE *out);

struct control;

/*
 * Listen on path and serve b from a thread of its own (a thread per
 * connection, at most a few at once). A stale socket left by a dead
 * daemon is replaced; a path that a live daemon answers on, or that is
 * not a socket, is refused (-EADDRINUSE, -EEXIST). 0 and *out, or -errno
 * with errbuf saying why.
 */
int control_open(const char *path, struct broker *b, struct control **out,
    char *errbuf, size_t errlen);
/* Stop listening, wait for the connections in progress, unlink. NULL ok. */
void control_close(struct control *c);

/*
 * Ask the daemon on path for the head of its audit chain (the seq and mac
 * of its last record, from "status json"), for `audit verify -c`. 0 and
 * *seq, mac (64 hex digits and a NUL: maclen >= 65); or -ECONNREFUSED,
 * -ENOENT, -EACCES... (from connect: no daemon there, or not ours to
 * ask), -ENODATA when it keeps no trail, -EPROTO for an answer without a
 * head; why says which.
 */
int control_audit_head(const char *path, uint64_t *seq, char *mac,
    size_t maclen, char *why, size_t whylen);

/* The CLI: argv[0] is one of the verbs. Returns the exit status. */
bool control_is_command(const char *verb);
int control_main(int argc, char **argv);

#endif
