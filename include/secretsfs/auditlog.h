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
};

/* "edited", "removed", ..., "clean". */
const char *auditlog_bad_name(enum auditlog_bad kind);

struct auditlog_result {
	enum auditlog_bad	 kind;
	const char		*file;		/* the bad record's file (one of files[]) */
	unsigned long		 line;		/* its 1-based line number */
	uint64_t		 records;	/* records verified good */
	uint64_t		 first_seq;	/* of the chain given, 0 when empty */
	uint64_t		 last_seq;	/* last good record */
	char			 detail[256];
};

/*
 * Walk the chain through files[0..n-1] and stop at the first bad record.
 * files[] is reordered in place (by first seq). Writes a report to out
 * (may be NULL): either "OK: ..." or "<file>:<line>: <kind>: <detail>",
 * then the number of records verified. res may be NULL.
 *
 * The first record given is trusted to start the chain: when its seq is
 * not 1, the report notes that earlier records are in files not given.
 * Records cut from the end of the last file at a line boundary cannot be
 * detected by the chain; the report prints the last record's seq, event
 * and time so that it can be compared with the daemon's state.
 *
 * Returns 0 clean, 1 bad, -errno on I/O errors (-EINVAL for n < 1).
 */
int auditlog_verify(const struct audit_key *key, char **files, int n,
    FILE *out, struct auditlog_result *res);

/* The same with the key read from keyfile (audit_key_load rules). */
int auditlog_verify_files(const char *keyfile, char **files, int n, FILE *out);

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
 * (config_parse_duration) before now_us. Microseconds since the epoch.
 * Returns 0 or -EINVAL.
 */
int auditlog_parse_since(const char *s, int64_t now_us, int64_t *out_us);

#endif
