/*
 * audit_int.h: what the files of the audit writer share (audit.c the API
 * and the chain, audit_record.c the record and its MAC, audit_file.c the
 * files and their copies). Not part of the interface: see audit.h.
 */
#ifndef SECRETSFS_AUDIT_INT_H
#define SECRETSFS_AUDIT_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>

#include <secretsfs/audit.h>

struct audit_key {
	uint8_t		*bytes;		/* secmem */
	size_t		 len;
	EVP_MAC_CTX	*ctx;		/* keyed once, duplicated per MAC */
	char		 id[AUDIT_KEY_ID_HEX + 1];
};

/* A growing line; after a failed allocation every append is a no-op. */
struct sbuf {
	char	*p;
	size_t	 len, cap;
	char	*stack;		/* p while it is still the caller's buffer */
	bool	 oom;
};

struct audit {
	pthread_mutex_t		 lock;
	pthread_cond_t		 cond;		/* wakes the flusher to stop */
	pthread_t		 flusher;
	bool			 flusher_running;
	bool			 stopping;

	struct audit_key	*key;
	char			*path;
	char			*host;
	char			*syslog_path;
	enum audit_on_failure	 on_failure;
	int64_t			 flush_ms;
	uint64_t		 max_size;
	bool			 to_syslog;
	bool			 to_stdout;

	int			 fd;
	int			 log_fd;	/* syslog socket or -1 */
	uint64_t		 size;
	bool			 dirty;		/* written since the last sync */
	bool			 torn;		/* a partial line is still at size */

	uint64_t		 seq;		/* of the last record written */
	char			 prev[AUDIT_MAC_HEX + 1];
	struct audit_stats	 st;

	EVP_MAC_CTX		*mac;		/* keyed; re-initialised per record */
	struct sbuf		 line;		/* the record being written */
	struct audit_limit	*limit;	/* denied records, or NULL */
};

/* Everything a record is built from, in the order it is written. */
struct rec {
	enum audit_event_type	 ev;
	bool			 with_caller;
	const struct caller	*who;		/* NULL: null caller fields */
	const struct audit_kv	*slot[AUDIT_F__MAX];
};

/* --- audit.c -------------------------------------------------------- */

/* Append one record to the chain, and its copies; -EIO when it failed. */
int audit_emit(struct audit *a, const struct rec *rc);

/* --- audit_limit.c -------------------------------------------------- */

struct audit_limit;

/* NULL (no limiter needed, or OOM) when burst and reserve are both 0. */
struct audit_limit *audit_limit_new(uint32_t burst, int64_t interval_ms,
    uint64_t reserve);
void audit_limit_free(struct audit_limit *l);

/*
 * A denied record of caller c about name is due: 1 to write it in full,
 * 0 when it is only counted for its caller's summary. Writes the
 * summaries that have come due meanwhile.
 */
int audit_limit_denied(struct audit *a, const struct caller *c,
    const char *name);

/* Write the summaries whose interval is over (all: every pending one). */
void audit_limit_sweep(struct audit *a, bool all);

/* --- audit_record.c ------------------------------------------------- */

bool audit_field_is_outcome(enum audit_field f);
/* "2026-12-07T10:00:00.000000Z", or compact "20261207T100000.000000Z". */
void audit_fmt_time(char *buf, size_t len, const struct timespec *ts,
    bool compact);
/* The members from ,"event" through ,"key_id", before the lock is taken. */
int audit_rec_body(const struct audit *a, const struct rec *rc,
    struct sbuf *b);
/* The whole line that follows the chain's state, and its mac. */
int audit_rec_line_locked(struct audit *a, const struct sbuf *body,
    struct sbuf *line, char mac[AUDIT_MAC_HEX + 1]);

/* --- audit_file.c --------------------------------------------------- */

int audit_file_open(const char *path, int *fdp, struct stat *sb);
void audit_file_sync_dir(const char *path);
int audit_file_tail(const struct audit_key *key, int fd, uint64_t size,
    struct audit_line *al, const char *name, char *errbuf, size_t errlen);
void audit_file_tail_siblings(struct audit *a);
int audit_file_switch_locked(struct audit *a);
void audit_file_rotate_locked(struct audit *a);
int audit_file_append_locked(struct audit *a, const char *line, size_t len);
int audit_file_syslog_connect(struct audit *a);
void audit_file_copies_locked(struct audit *a, const char *line, size_t len);

#endif
