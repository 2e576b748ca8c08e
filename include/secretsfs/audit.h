/*
 * audit: the tamper-evident audit trail (PCI DSS requirement 10).
 *
 * One JSON object per line (JSON Lines), one line per event, appended with
 * a single write(2) before the event is allowed to have an effect. Each
 * record carries a sequence number and the MAC of the record before it,
 * so that an edit, a deletion, an insertion or a reordering is detected by
 * auditlog_verify_files() (see auditlog.h).
 *
 * The API takes names, references, versions, numbers and the caller's
 * identity; there is no field that could carry a secret value, a token or
 * a key, and no free-form blob: every field is named by enum audit_field
 * and every string is cut to AUDIT_STR_MAX bytes.
 *
 * Record format
 * -------------
 * Compact JSON (no whitespace), keys in this fixed order; a key that does
 * not apply to the event is absent:
 *
 *   time      "2026-11-22T13:17:14.123456Z" (RFC 3339, UTC, microseconds)
 *   seq       1, 2, 3, ... across every file of the chain
 *   event     "access" | "lookup_denied" | "rotate" | "backend_error" |
 *             "auth" | "start" | "stop" | "reload" | "repair" | "stale" |
 *             "fetcher" | "denied_summary"
 *   <event fields, in enum audit_field order>
 *   pid, uid, gid, comm, container, k8s, cgroup
 *             when the record is about a process (accesses, lookups, and
 *             start/stop where it is the daemon itself). container is
 *             {"id","name","image","runtime"} or null outside a container.
 *             k8s is present only with runtime.kubelet and a caller in a
 *             pod: {"state","namespace","pod","service_account",
 *             "container","pod_uid"}, state "known", "unlisted" (the
 *             kubelet does not list the pod: denied) or "unreachable"
 *             (never seen, kubelet down: denied), names null unless known.
 *   host      the host name
 *   key_id    first 8 bytes of SHA-256(key), 16 hex digits
 *   prev      the mac of the previous record; 64 "0" for seq 1
 *   mac       see below; always the last member
 *
 * A NULL string is written as null, an unknown caller string ("") as null.
 * Strings are valid UTF-8: invalid bytes are replaced by '?'.
 *
 * The MAC
 * -------
 * mac is 64 lowercase hex digits, and the last member, so every line ends
 * with exactly the AUDIT_MAC_SUFFIX_LEN (74) bytes  ,"mac":"<64 hex>"}
 * followed by "\n". The canonical bytes of a record are the line without
 * that suffix and without the "\n", followed by one "}": exactly the
 * compact JSON of the record with the mac member removed, as written.
 *
 *     mac = hex(HMAC-SHA256(key, canonical bytes))
 *
 * The verifier never re-serialises JSON; it checks the bytes on disk. It
 * parses lines with duplicate keys refused, and trusts nothing parsed
 * (seq, prev) until the MAC holds.
 *
 * The key
 * -------
 * The key file must be private (secfile rules: regular, owned by root or
 * us, no group/other access). The key is the file's bytes with trailing
 * "\n" and "\r" removed, taken as they are (not hex-decoded): at least
 * AUDIT_KEY_MIN bytes. `openssl rand -hex 32 > key` makes a good one.
 * It lives in locked memory (secmem).
 *
 * Durability
 * ----------
 * Every record is written with write(2) before audit_access() returns 0,
 * so a crash of the daemon loses nothing. The file is fdatasync'd by a
 * background thread at most every flush_interval (0: after every record)
 * and on close, so a crash of the machine loses at most the records of
 * the last flush_interval.
 *
 * Rotation
 * --------
 * After `mv` of the file (logrotate), audit_reopen() opens a new file at
 * the configured path; the chain continues (seq and prev), no record is
 * written for it. With max_size, the file is renamed to
 * "<file>.<UTC time>" (e.g. audit.log.20261122T131714.123456Z, which sorts
 * by time) once it reaches max_size, and a new one is started, again
 * continuing the chain. A deleted file (st_nlink 0) is a write failure
 * until audit_reopen().
 *
 * The file is opened O_APPEND|O_CREAT|O_NOFOLLOW, mode 0600 when created:
 * the path must not be a symbolic link.
 *
 * At audit_open() the last line of an existing file is read and its MAC
 * checked, and the chain continues from it. A file that ends with a
 * partial or unverifiable record, or one written under another key, is
 * refused with -EBADMSG rather than forking the chain: move it away.
 * When the file is missing or empty, the chain continues from the newest
 * verifiable "<file>.*" next to it (a rotated file), else starts at seq 1.
 */
#ifndef SECRETSFS_AUDIT_H
#define SECRETSFS_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <secretsfs/cfg.h>
#include <secretsfs/identity.h>

#define AUDIT_KEY_MIN		32	/* bytes */
#define AUDIT_KEY_MAX		4096
#define AUDIT_MAC_HEX		64
/* The prev of the first record of a chain (seq 1). */
#define AUDIT_ZERO_MAC		"0000000000000000000000000000000000000000000000000000000000000000"
#define AUDIT_KEY_ID_HEX	16
#define AUDIT_STR_MAX		512	/* bytes of any string field */
#define AUDIT_REASON_MAX	128	/* bytes of AUDIT_F_REASON */
#define AUDIT_LINE_MAX		65536	/* no record is longer */
/* ,"mac":"<64 hex>"} */
#define AUDIT_MAC_SUFFIX_LEN	(8 + AUDIT_MAC_HEX + 2)

/* ------------------------------------------------------------------ */
/* Configuration: the "audit" object of the config file.              */

enum audit_on_failure {
	AUDIT_ON_FAILURE_DENY = 0,	/* refuse the access (default) */
	AUDIT_ON_FAILURE_ALLOW,		/* serve it unaudited, count it */
};

/*
 * JSON keys (all others are errors):
 *   file            required, absolute path of the log file
 *   key_file        required, absolute path of the HMAC key file
 *   on_failure      "deny" (default) | "allow"
 *   flush_interval  duration, default "1s"; "0" syncs after every record
 *   max_size        size ("100MiB") or bytes; default 0: no size rotation;
 *                   at least 4KiB when set
 *   syslog          bool, default false: also send each record to
 *                   /dev/log (RFC 5424, facility authpriv, MSG = the line)
 *   stdout          bool, default false: also write each line to stdout
 *                   (written under the record lock: a stdout that blocks
 *                   stalls accesses; meant for journald/containers)
 *   host_name       string, default gethostname(2) at audit_open()
 *   denied_per_caller  integer 0..1000000, default 100: denied records
 *                   (lookup_denied, and access with outcome deny) written
 *                   in full per caller and denied_interval; the rest are
 *                   counted into one "denied_summary" record per caller
 *                   and interval (outcome deny, reason, count, names_hash:
 *                   FNV-1a 64 of the names counted, each with its NUL, in
 *                   order). 0: no limit. A caller is its container id, the
 *                   uid of a host process, or uid and cgroup of any other.
 *   denied_interval duration 1s..1h, default "10s"
 *   reserve         size, default 0: below this much free space on the
 *                   audit file's file system, denied records are only
 *                   counted (allowed accesses, errors and summaries are
 *                   still written), so that denials cannot fill it
 */
struct audit_config {
	char			*file;
	char			*key_file;
	enum audit_on_failure	 on_failure;
	int64_t			 flush_interval_ms;
	uint64_t		 max_size;	/* 0: none */
	bool			 syslog;
	bool			 to_stdout;
	char			*host_name;	/* NULL: gethostname(2) */
	uint32_t		 denied_per_caller;	/* 0: no limit */
	int64_t			 denied_interval_ms;
	uint64_t		 reserve;	/* bytes; 0: none */
	/* Not from JSON: the syslog socket; NULL means /dev/log. */
	char			*syslog_socket;
};

/* Defaults for every member; the strings are NULL. */
void audit_config_init(struct audit_config *cfg);

/*
 * Parse the "audit" object `obj`; `path` is its key path for errors
 * ("audit"). On success *out owns copies of every string (free them with
 * audit_config_clear). On error returns -EINVAL with err filled (path and
 * msg) and *out cleared.
 */
int audit_config_from_json(const json_t *obj, const char *path,
    struct audit_config *out, struct cfg_err *err);

/* Free the strings of cfg and reset it to defaults. NULL is fine. */
void audit_config_clear(struct audit_config *cfg);

/* ------------------------------------------------------------------ */
/* Keys and lines (shared by the writer and the reader, auditlog.c).  */

struct audit_key;

/*
 * Read the key file with secfile_read_private() into locked memory.
 * Returns 0 and *out (free with audit_key_free), or -errno with a message
 * in errbuf: -EPERM (file not private), -EINVAL (shorter than
 * AUDIT_KEY_MIN), -EFBIG, -ENOENT...
 */
int audit_key_load(const char *path, struct audit_key **out, char *errbuf,
    size_t errlen);

/* A key from bytes (copied into locked memory); NULL on OOM or bad length. */
struct audit_key *audit_key_new(const void *bytes, size_t len);

/* Wipe and free. NULL is fine. */
void audit_key_free(struct audit_key *key);

/* The key's id, 16 hex digits; valid as long as key. */
const char *audit_key_id(const struct audit_key *key);

enum audit_line_status {
	AUDIT_LINE_OK = 0,	/* the MAC holds under our key */
	AUDIT_LINE_MALFORMED,	/* not an audit record at all */
	AUDIT_LINE_BAD_MAC,	/* our key_id, but the MAC fails: edited */
	AUDIT_LINE_FOREIGN_KEY,	/* another key_id, MAC fails: another key */
};

struct audit_line {
	enum audit_line_status	 status;
	uint64_t		 seq;		/* 0 when unknown */
	char			 prev[AUDIT_MAC_HEX + 1];
	char			 mac[AUDIT_MAC_HEX + 1];
	char			 key_id[AUDIT_KEY_ID_HEX + 1];
	json_t			*obj;	/* the parsed record, or NULL */
};

/*
 * Check one line (without its "\n") against key. Fills *out; when
 * out->obj is not NULL the caller owns it (json_decref). seq/prev/key_id
 * are filled whenever the line parses, even if its MAC fails. Returns
 * 0 (see out->status), or -ENOMEM.
 */
int audit_line_check(const struct audit_key *key, const char *line,
    size_t len, struct audit_line *out);

/* ------------------------------------------------------------------ */
/* Records.                                                           */

enum audit_event_type {
	AUDIT_EV_ACCESS = 0,	/* use audit_access() */
	AUDIT_EV_LOOKUP_DENIED,	/* use audit_lookup_denied() */
	AUDIT_EV_ROTATE,
	AUDIT_EV_BACKEND_ERROR,
	AUDIT_EV_AUTH,
	AUDIT_EV_START,		/* written by audit_open() only */
	AUDIT_EV_STOP,		/* written by audit_close() only */
	AUDIT_EV_RELOAD,
	AUDIT_EV_REPAIR,
	AUDIT_EV_STALE,
	AUDIT_EV_FETCHER,	/* the fetcher process exited or started */
	AUDIT_EV_DENIED_SUMMARY,	/* denied records only counted */
	AUDIT_EV__MAX
};

enum audit_outcome {
	AUDIT_OUTCOME_ALLOW = 0,	/* "allow" */
	AUDIT_OUTCOME_DENY,		/* "deny" */
	AUDIT_OUTCOME_ERROR,		/* "error" */
	AUDIT_OUTCOME_OK,		/* "ok": auth, reload, repair */
	AUDIT_OUTCOME__MAX
};

/*
 * The fields an event may carry, in the order they are written. The type
 * of each is fixed: S string (NULL → null), N integer, O an
 * enum audit_outcome written as its name.
 */
enum audit_field {
	AUDIT_F_SECRET = 0,	/* S secret name */
	AUDIT_F_BACKEND,	/* S backend name from the config */
	AUDIT_F_REF,		/* S path or ARN at the backend, never a value */
	AUDIT_F_VERSION,	/* S version served / seen */
	AUDIT_F_OLD_VERSION,	/* S rotate: version before */
	AUDIT_F_NEW_VERSION,	/* S rotate: version after */
	AUDIT_F_METHOD,		/* S auth method: "cert", "approle", ... */
	AUDIT_F_ACTION,		/* S auth: "login"|"renew"; stale: "served"|"expired" */
	AUDIT_F_OUTCOME,	/* O */
	AUDIT_F_ERRNO,		/* N 0 or a positive errno */
	AUDIT_F_STATUS,		/* N HTTP status, 0 when none */
	AUDIT_F_RULE,		/* S rule id */
	AUDIT_F_REASON,		/* S fixed text from our code, <= AUDIT_REASON_MAX;
				   never text from a backend answer */
	AUDIT_F_TTL,		/* N seconds */
	AUDIT_F_AGE_MS,		/* N stale: age of the value */
	AUDIT_F_CONFIG,		/* S reload: config file path */
	AUDIT_F_TARGET,		/* S repair: mount point */
	AUDIT_F_COUNT,		/* N repair: mounts repaired, etc. */
	AUDIT_F_NAMES_HASH,	/* S denied_summary: "fnv1a64:<16 hex>" */
	AUDIT_F__MAX
};

/* Record key of each field, e.g. "old_version". NULL when out of range. */
const char *audit_field_name(enum audit_field f);
/* "access", ..., NULL when out of range. */
const char *audit_event_name(enum audit_event_type ev);
const char *audit_outcome_name(enum audit_outcome o);

struct audit_kv {
	enum audit_field	 field;
	const char		*str;	/* S fields */
	long long		 num;	/* N and O fields */
};
#define AUDIT_STR(f, s)	((struct audit_kv){ .field = (f), .str = (s) })
#define AUDIT_NUM(f, n)	((struct audit_kv){ .field = (f), .num = (n) })

struct audit;

/*
 * Open the trail: load the key, open (create, 0600) the file, learn the
 * chain's last seq and mac from its tail (see above), start the flush
 * thread and write a "start" record. cfg is copied. Returns 0 and *out,
 * or -errno with a message in errbuf: -EBADMSG for a file whose tail
 * cannot be continued, -EIO when the start record cannot be written.
 */
int audit_open(const struct audit_config *cfg, struct audit **out,
    char *errbuf, size_t errlen);

/* Write a "stop" record, sync, close and free. NULL is fine. */
void audit_close(struct audit *a);

/*
 * One access to a secret: every open(2), allowed or denied. All pointers
 * are borrowed for the call only; any may be NULL (written as null).
 * caller NULL writes null caller fields.
 */
struct audit_access {
	const char		*secret;
	const char		*backend;
	const char		*ref;
	const char		*version;	/* NULL when nothing was served */
	const char		*rule;		/* NULL: default deny */
	enum audit_outcome	 outcome;	/* allow | deny | error */
	int			 err;		/* 0 or the errno the reader got */
	const struct caller	*caller;
	/*
	 * NULL, or why a rule's allow was refused all the same ("mode": the
	 * file's mode/uid/gid): then the record also has a "reason" field.
	 */
	const char		*reason;
};

/*
 * Append the record (fields: secret backend ref version outcome errno
 * rule pid uid gid comm container cgroup, all always present; reason
 * too when set) and return 0 once the whole line is in the file. On any
 * failure returns -EIO (or -EINVAL for a bad outcome), leaves the file as it was (a partial line
 * is truncated away) and does not advance the chain. (With
 * flush_interval 0 a failed fdatasync also gives -EIO; that record stays
 * in the chain.) The caller then refuses the access with EIO unless
 * audit_allow_on_failure() says otherwise; audit_get_stats() has the
 * errno for its one log line. Thread-safe; the file's seq order is the order of the calls'
 * writes.
 */
int audit_access(struct audit *a, const struct audit_access *acc);

/*
 * The same fields, as event "lookup_denied" (a name the caller may not see,
 * or one that does not exist), and "reason" after "rule" when acc->reason
 * is set.
 */
int audit_lookup_denied(struct audit *a, const struct audit_access *acc);

/* A new version seen for a secret. */
struct audit_rotate {
	const char	*secret, *backend, *ref;
	const char	*old_version, *new_version;
};
int audit_rotate(struct audit *a, const struct audit_rotate *r);

/* A backend request that failed. reason: fixed text, never a response body. */
struct audit_backend_error {
	const char	*backend, *secret, *ref;
	int		 err;		/* positive errno */
	int		 status;	/* HTTP status, 0 when none */
	const char	*reason;
};
int audit_backend_error(struct audit *a, const struct audit_backend_error *e);

/* A backend login or token renewal, successful (ok) or not (error). */
struct audit_auth {
	const char		*backend;
	const char		*method;	/* Vault: "cert", "approle", "kubernetes";
						   AWS: "web-identity", "container",
						   "imds" */
	const char		*action;	/* "login" | "renew" */
	enum audit_outcome	 outcome;	/* ok | error */
	int			 err;
	long long		 ttl;		/* seconds granted, 0 when none */
	const char		*reason;
};
int audit_auth(struct audit *a, const struct audit_auth *au);

/* A stale value served after a backend error, or one that expired. */
struct audit_stale {
	const char	*secret, *backend, *ref, *version;
	bool		 expired;	/* action "expired" rather than "served" */
	long long	 age_ms;
};
int audit_stale(struct audit *a, const struct audit_stale *s);

/*
 * Any other event (reload, repair; also rotate, auth, ...): the fields are
 * written in enum audit_field order whatever the order of kv. who may be
 * NULL. Returns -EINVAL for start/stop, an unknown event or field, or a
 * field given twice; otherwise as audit_access().
 */
int audit_event(struct audit *a, enum audit_event_type ev,
    const struct caller *who, const struct audit_kv *kv, size_t n);

/* on_failure: when true, a failed record does not refuse the access. */
bool audit_allow_on_failure(const struct audit *a);

/*
 * SIGHUP: open the configured path again. If the file was moved, records
 * go to a new file there, continuing the chain. If the path now holds a
 * non-empty file that does not end with our last record, it is refused
 * (-EBADMSG) and the current file kept. Returns 0 or -errno.
 */
int audit_reopen(struct audit *a);

/* Sync now (also done by the flush thread and at close). 0 or -errno. */
int audit_flush(struct audit *a);

/*
 * Start the thread that fdatasyncs the file every flush_interval. Not in
 * audit_open: the daemon opens the trail before it daemonizes, and a
 * fork keeps no thread. Until then (or with flush_interval 0) records
 * are synced by audit_flush and at close. 0 or -errno; again is a no-op.
 */
int audit_start(struct audit *a);

struct audit_stats {
	uint64_t	records;	/* written since open */
	uint64_t	failures;	/* records that could not be written */
	uint64_t	seq;		/* last seq written (0: none yet) */
	char		mac[AUDIT_MAC_HEX + 1];	/* its mac: the chain's head,
					   which `audit verify -c` asks for */
	uint64_t	file_size;	/* bytes in the current file */
	uint64_t	rotations;	/* size rotations done */
	uint64_t	rotate_errors;	/* size rotations that failed */
	uint64_t	output_errors;	/* syslog/stdout copies lost */
	int		last_error;	/* positive errno of the last failure */
};
void audit_get_stats(struct audit *a, struct audit_stats *st);

#endif
