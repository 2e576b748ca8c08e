/*
 * config: the JSON configuration, parsed once into an immutable struct.
 */
#ifndef SECRETSFS_CONFIG_H
#define SECRETSFS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>
#include <sys/types.h>
#include <jansson.h>

#include <secretsfs/backend.h>
#include <secretsfs/cfg.h>

struct audit_config;
struct kubelet_config;
struct policy;

/* Who the fetcher process runs as when privsep.user is not set. */
#define CONFIG_DEFAULT_FETCHER_USER	"secretsfs"

/* How one config entry appears in the mount. */
enum config_as {
	CONFIG_AS_FILE = 0,	/* one file: the value (or its field) */
	CONFIG_AS_DIRECTORY,	/* a directory, one file per key of the JSON value */
	CONFIG_AS_PREFIX,	/* a directory, one file per secret listed under ref */
};

struct config_secret {
	char	*name;		/* file name in the mount */
	enum config_as as;
	size_t	 backend;	/* index into config.backends */
	char	*ref;		/* backend reference: file name, KV path, ARN;
			   may be the very string of name */
	char	*field;		/* JSON key to serve, or NULL for the whole value */
	char	*version;	/* pinned version, or NULL for the current one */
	mode_t	 mode;
	uid_t	 uid;
	gid_t	 gid;
	int64_t	 refresh_ms;
	int	 on_rotate;	/* signal for the openers of a new version; 0: none */
};

/*
 * "metrics": the opt-in listener for /metrics and /healthz, and the
 * textfile for node_exporter (README, Operations; conf/README.md).
 */
struct config_metrics {
	char	*listen;	/* "IP:PORT", "[IP6]:PORT", "unix:PATH"; NULL */
	char	*cert_file;	/* tls: all three NULL for plain HTTP */
	char	*key_file;
	char	*client_ca_file;	/* NULL: any client (loopback only) */
	char	*textfile;	/* a .prom file node_exporter reads; NULL */
	int64_t	 interval_ms;	/* between two writes of it */
};

#define CONFIG_METRICS_INTERVAL_MS	15000

/*
 * A "listen" value as a socket address: "127.0.0.1:9464", "[::1]:9464"
 * or "unix:/run/secretsfs-metrics.sock" (absolute, at most 107 bytes).
 * 0, with *loopback true for a Unix socket or a loopback address, or
 * -EINVAL with why.
 */
int config_metrics_addr(const char *s, struct sockaddr_storage *ss,
    socklen_t *len, bool *loopback, char *why, size_t whylen);

struct config {
	char			*file;
	char			*mountpoint;
	bool			 allow_other;
	uint64_t		 locked_bytes;
	uint64_t		 cache_max_bytes;
	int64_t			 negative_ttl_ms;
	int64_t			 max_stale_ms;	/* serve a stale value this long */
	int64_t			 delete_grace_ms;	/* serve a deleted one this long */
	char			*control_socket;	/* NULL: the default (control.h) */
	char			*fetcher_user;		/* privsep.user */
	struct config_backend	*backends;
	size_t			 n_backends;
	struct config_secret	*secrets;
	size_t			 n_secrets;
	struct policy		*policy;	/* "rules"; empty: deny all */
	int			 deny_errno;	/* ENOENT, or EACCES to debug */
	char			*runtime_socket;	/* Engine API, or NULL */
	struct kubelet_config	*kubelet;	/* runtime.kubelet, or NULL */
	bool			 runtime_rootless;	/* runtime.rootless */
	struct audit_config	*audit;		/* NULL: auditing off */
	struct config_metrics	*metrics;	/* NULL: no listener, no file */
	/*
	 * Not the parsed document, which is freed after parsing: what a reload
	 * compares. restart holds the sections a reload cannot change (mount,
	 * memory, audit, runtime, control; owned); digest is the SHA-256 of the
	 * whole document with keys sorted, equal exactly when the documents are.
	 */
	json_t			*restart;
	uint8_t			 digest[32];
};

/*
 * Load and validate a config file. The file must be private to its owner
 * (root or the effective user). On error returns -errno (-EINVAL for a bad
 * document, with err filled, path and line/col included) and *out is NULL.
 * The caller owns *out and releases it with config_free().
 */
int config_load(const char *file, struct config **out, struct cfg_err *err);

/* The same from a string, for tests; file is only used in messages. */
int config_load_string(const char *text, const char *file, struct config **out,
    struct cfg_err *err);

void config_free(struct config *cfg);

/* index of the secret or backend called name, or -1 */
ssize_t config_find_secret(const struct config *cfg, const char *name);
ssize_t config_find_backend(const struct config *cfg, const char *name);

/*
 * The signals an on_rotate action may send, by name ("SIGHUP" or "HUP"):
 * SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM, SIGWINCH, SIGALRM.
 * config_signal_from_name: the number, or -EINVAL. config_signal_name:
 * "SIGHUP", ..., or "signal" for another number. Static storage.
 */
int config_signal_from_name(const char *name);
const char *config_signal_name(int sig);

#endif
