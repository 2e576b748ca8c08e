/*
 * auditlog: reading the audit trail written by audit.c, for
 * `secretsfs audit verify` and `secretsfs audit show`.
 *
 * Both take the files of one chain, current and rotated, in any order:
 * they are read in the order of their first record's seq (files that are
 * empty or whose first line is not a record go last). So
 * `secretsfs audit verify /var/log/secretsfs/audit.log*` works although
 * the shell puts the current file first.
 */
#ifndef SECRETSFS_AUDITLOG_H
#define SECRETSFS_AUDITLOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <secretsfs/audit.h>

enum auditlog_bad {
	AUDITLOG_CLEAN = 0,
	AUDITLOG_EDITED,	/* our key_id but the MAC fails */
	AUDITLOG_REMOVED,	/* seq jumps forward and the missing seq never comes */
	AUDITLOG_INSERTED,	/* seq repeats, or a valid record of another chain */
	AUDITLOG_REORDERED,	/* seq jumps forward and the missing seq comes later */
	AUDITLOG_TRUNCATED,	/* a file's last line is partial (no "\n" or not a record) */
	AUDITLOG_FOREIGN_KEY,	/* written under another key (key_id differs) */
	AUDITLOG_MALFORMED,	/* a line in the middle that is not a record */
	AUDITLOG_RESTARTED,	/* a new chain (seq 1) begins after records */
	AUDITLOG_HEAD_REMOVED,	/* the chain does not start where it must */
	AUDITLOG_TAIL_REMOVED,	/* it ends before the seq known to be last */
	AUDITLOG_MISMATCH,	/* not the records asserted: another mac at the
				   daemon's head, records past --to, a start
				   before --from */
};

/* "edited", "removed", ..., "clean". */
const char *auditlog_bad_name(enum auditlog_bad kind);

/* How the end of a clean chain was confirmed. */
enum auditlog_end {
	AUDITLOG_END_UNCONFIRMED = 0,	/* nothing says where it should end */
	AUDITLOG_END_STOP,	/* the last record is a "stop" record */
	AUDITLOG_END_TO,	/* the last seq is opts->to */
	AUDITLOG_END_HEAD,	/* the daemon's last record is in the files */
};

/* What auditlog_verify returns, and `secretsfs audit verify` exits with. */
#define AUDITLOG_OK		0	/* clean, from its start to a confirmed end */
#define AUDITLOG_BAD		1	/* tampering (or a mismatch) found */
#define AUDITLOG_UNCONFIRMED	3	/* clean, but its end is not confirmed */

/*
 * What the caller knows of the chain's two ends. A hash chain shows an
 * edit, a removal, an insertion or a swap between its first and last
 * records given, but not records cut from either end: those ends must
 * come from elsewhere.
 */
struct auditlog_opts {
	uint64_t	 from;		/* the first seq; 0: the genesis record,
					   seq 1 with the all-zero prev */
	uint64_t	 to;		/* the last seq; 0: not asserted */
	uint64_t	 head_seq;	/* the running daemon's last record, */
	const char	*head_mac;	/* which must be in the files; 0: unknown */
};

struct auditlog_result {
	enum auditlog_bad	 kind;
	enum auditlog_end	 end;		/* when kind is AUDITLOG_CLEAN */
	const char		*file;		/* the bad record's file (one of files[]) */
	unsigned long		 line;		/* its 1-based line number; 0: none */
	uint64_t		 records;	/* records verified good */
	uint64_t		 first_seq;	/* of the chain given, 0 when empty */
	uint64_t		 last_seq;	/* last good record */
	char			 detail[256];
};

/*
 * Walk the chain through files[0..n-1] and stop at the first bad record.
 * files[] is reordered in place (by first seq). Writes a report to out
 * (may be NULL): "OK: ...", "UNCONFIRMED END: ..." or
 * "<file>:<line>: <kind>: <detail>", then the number of records verified.
 * res may be NULL; opts NULL is all zero.
 *
 * The head: the first record must be seq 1 with the all-zero prev, or
 * opts->from when that is set (the older files were deleted by
 * retention); otherwise AUDITLOG_HEAD_REMOVED (or AUDITLOG_MISMATCH for a
 * chain that starts before opts->from).
 *
 * The tail: with opts->head_seq, the record of that seq must be in the
 * files with that mac (AUDITLOG_TAIL_REMOVED when the chain stops short,
 * AUDITLOG_MISMATCH for another mac); records after it are fine (the
 * daemon went on writing). With opts->to, the last seq must be exactly
 * that. Otherwise a chain whose last record is a "stop" record is
 * complete, and any other is AUDITLOG_UNCONFIRMED: records cut from its
 * end at a line boundary would not show.
 *
 * Returns AUDITLOG_OK, AUDITLOG_BAD, AUDITLOG_UNCONFIRMED, or -errno on
 * I/O errors (-EINVAL for n < 1).
 */
int auditlog_verify(const struct audit_key *key, char **files, int n,
    const struct auditlog_opts *opts, FILE *out,
    struct auditlog_result *res);

/* The same with the key read from keyfile (audit_key_load rules). */
int auditlog_verify_files(const char *keyfile, char **files, int n,
    const struct auditlog_opts *opts, FILE *out);

struct auditlog_filter {
	const char	*secret;	/* glob on "secret"; NULL: any */
	const char	*container;	/* container name (glob) or id prefix */
	const char	*since;		/* RFC 3339 time, or a duration ("1h")
					   meaning that long before now */
};

/*
 * Print the records of files[] that match f (NULL: all), in seq order:
 * as a table (time, event, outcome, secret, version, pid, uid, container,
 * rule) or, with json, as the original lines. No MAC check: that is
 * auditlog_verify's job. Returns 0, -EINVAL for a bad filter, or -errno.
 */
int auditlog_show(char **files, int n, const struct auditlog_filter *f,
    bool json, FILE *out);

/*
 * Parse "since": RFC 3339 ("2026-11-22T13:17:14Z", fractions, "+02:00",
 * or a bare date "2026-11-22" meaning midnight UTC) or a duration
 * (cfg_parse_duration) before now_us. Microseconds since the epoch.
 * Returns 0 or -EINVAL.
 */
int auditlog_parse_since(const char *s, int64_t now_us, int64_t *out_us);

#endif
