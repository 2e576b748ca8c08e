/*
 * auditlog: verify and show the audit trail written by audit.c.
 */
#ifndef _GNU_SOURCE
#endif

#include <sys/types.h>

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <secretsfs/audit.h>
#include <secretsfs/auditlog.h>
#include <secretsfs/cfg.h>
#include <secretsfs/clk.h>

static const char *const bad_names[] = {
	[AUDITLOG_CLEAN]	= "clean",
	[AUDITLOG_EDITED]	= "edited",
	[AUDITLOG_REMOVED]	= "removed",
	[AUDITLOG_INSERTED]	= "inserted",
	[AUDITLOG_REORDERED]	= "reordered",
	[AUDITLOG_TRUNCATED]	= "truncated",
	[AUDITLOG_FOREIGN_KEY]	= "foreign-key",
	[AUDITLOG_MALFORMED]	= "malformed",
	[AUDITLOG_RESTARTED]	= "restarted",
	[AUDITLOG_HEAD_REMOVED]	= "head-removed",
	[AUDITLOG_TAIL_REMOVED]	= "tail-removed",
	[AUDITLOG_MISMATCH]	= "mismatch",
};

const char *
auditlog_bad_name(enum auditlog_bad kind)
{
	if ((unsigned)kind >= sizeof(bad_names) / sizeof(bad_names[0]))
		return "unknown";
	return bad_names[kind];
}

/* ------------------------------------------------------------------ */
/* Ordering the files                                                 */

/* The seq of a file's first line; UINT64_MAX when there is none. */
static uint64_t
first_seq(const char *path)
{
	FILE		*fp;
	char		*line = NULL;
	size_t		 cap = 0;
	ssize_t		 n;
	json_t		*o, *v;
	uint64_t	 seq = UINT64_MAX;

	if ((fp = fopen(path, "re")) == NULL)
		return seq;
	if ((n = getline(&line, &cap, fp)) > 0 &&
	    (o = json_loadb(line, n, 0, NULL)) != NULL) {
		v = json_object_get(o, "seq");
		if (json_is_integer(v) && json_integer_value(v) > 0)
			seq = json_integer_value(v);
		json_decref(o);
	}
	free(line);
	fclose(fp);
	return seq;
}

/* Stable sort of files[] by first seq (insertion: n is small). */
static int
sort_files(char **files, int n)
{
	uint64_t	*seq;
	uint64_t	 ks;
	char		*kf;
	int		 i, j;

	if ((seq = calloc(n, sizeof(*seq))) == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		seq[i] = first_seq(files[i]);
	for (i = 1; i < n; i++) {
		ks = seq[i];
		kf = files[i];
		for (j = i; j > 0 && seq[j - 1] > ks; j--) {
			seq[j] = seq[j - 1];
			files[j] = files[j - 1];
		}
		seq[j] = ks;
		files[j] = kf;
	}
	free(seq);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Verify                                                             */

/*
 * Is there, from byte `off` of files[fi] (whose lines so far were
 * `lineno`) to the end of the chain, a good record with this seq?
 */
static int
find_later(const struct audit_key *key, char **files, int n, int fi,
    off_t off, unsigned long lineno, uint64_t seq, int *ffi,
    unsigned long *fline)
{
	struct audit_line	 al;
	FILE			*fp;
	char			*line = NULL;
	size_t			 cap = 0;
	ssize_t			 len;
	int			 found = 0, r;

	for (; fi < n && !found; fi++, off = 0, lineno = 0) {
		if ((fp = fopen(files[fi], "re")) == NULL)
			continue;
		if (fseeko(fp, off, SEEK_SET) < 0) {
			fclose(fp);
			continue;
		}
		while (!found && (len = getline(&line, &cap, fp)) > 0) {
			lineno++;
			if (line[len - 1] == '\n')
				len--;
			r = audit_line_check(key, line, len, &al);
			json_decref(al.obj);
			if (r == 0 && al.status == AUDIT_LINE_OK && al.seq == seq) {
				*ffi = fi;
				*fline = lineno;
				found = 1;
			}
		}
		fclose(fp);
	}
	free(line);
	return found;
}

static void
copy_str(char *dst, size_t len, json_t *o, const char *k)
{
	const char	*s = json_string_value(json_object_get(o, k));

	snprintf(dst, len, "%s", s != NULL ? s : "?");
}

/*
 * Is the first good record where the chain must start? Fills res when it
 * is not.
 */
static bool
head_ok(const struct auditlog_opts *opts, const struct audit_line *al,
    struct auditlog_result *res)
{
	uint64_t	start = opts->from != 0 ? opts->from : 1;

	if (al->seq > start) {
		res->kind = AUDITLOG_HEAD_REMOVED;
		snprintf(res->detail, sizeof(res->detail), "the chain starts "
		    "at seq %" PRIu64 ", not %" PRIu64 ": records %" PRIu64
		    "..%" PRIu64 " are missing before it", al->seq, start, start,
		    al->seq - 1);
	} else if (al->seq < start) {
		res->kind = AUDITLOG_MISMATCH;
		snprintf(res->detail, sizeof(res->detail), "the chain starts "
		    "at seq %" PRIu64 ", before seq %" PRIu64 " (--from)", al->seq,
		    start);
	} else if (start == 1 && strcmp(al->prev, AUDIT_ZERO_MAC) != 0) {
		res->kind = AUDITLOG_MISMATCH;
		snprintf(res->detail, sizeof(res->detail), "seq 1 does not "
		    "begin a chain: its prev is not all zero");
	} else
		return true;
	return false;
}

/*
 * A good record checked against the end the caller knows: the daemon's
 * last record, or the last seq (--to). Fills res when it does not fit.
 */
static bool
end_ok(const struct auditlog_opts *opts, const struct audit_line *al,
    bool *head_seen, struct auditlog_result *res)
{
	if (opts->head_seq != 0 && al->seq == opts->head_seq) {
		if (opts->head_mac != NULL &&
		    strcmp(al->mac, opts->head_mac) != 0) {
			res->kind = AUDITLOG_MISMATCH;
			snprintf(res->detail, sizeof(res->detail), "record seq %"
			    PRIu64 " is not the one the daemon wrote (another "
			    "mac): the trail was replaced, or is another chain",
			    al->seq);
			return false;
		}
		*head_seen = true;
	}
	if (opts->to != 0 && al->seq > opts->to) {
		res->kind = AUDITLOG_MISMATCH;
		snprintf(res->detail, sizeof(res->detail), "the chain goes on "
		    "past seq %" PRIu64 " (--to): seq %" PRIu64 " follows",
		    opts->to, al->seq);
		return false;
	}
	return true;
}

static void
report(FILE *out, const struct audit_key *key, int n,
    const struct auditlog_opts *opts, const struct auditlog_result *res,
    const char *last_event, const char *last_time)
{
	if (res->kind != AUDITLOG_CLEAN) {
		if (res->line > 0)
			fprintf(out, "%s:%lu: ", res->file, res->line);
		else
			fprintf(out, "%s: ", res->file);
		fprintf(out, "%s: %s\n", auditlog_bad_name(res->kind),
		    res->detail);
		fprintf(out, "%" PRIu64 " records verified before it",
		    res->records);
		if (res->records > 0)
			fprintf(out, " (seq %" PRIu64 "..%" PRIu64 ")",
			    res->first_seq, res->last_seq);
		fprintf(out, "\n");
		if (res->kind == AUDITLOG_HEAD_REMOVED && opts->from == 0 &&
		    res->line > 0)
			fprintf(out, "if retention deleted the files before it, "
			    "verify from where they end: --from SEQ\n");
		if (res->kind == AUDITLOG_TAIL_REMOVED && opts->head_seq != 0)
			fprintf(out, "(or the daemon's current file is not among "
			    "the files given)\n");
		return;
	}
	fprintf(out, "%s: %" PRIu64 " records verified in %d file%s, key_id "
	    "%s, seq %" PRIu64 "..%" PRIu64 "\n", res->end ==
	    AUDITLOG_END_UNCONFIRMED ? "UNCONFIRMED END" : "OK", res->records,
	    n, n == 1 ? "" : "s", audit_key_id(key), res->first_seq,
	    res->last_seq);
	fprintf(out, "last record: seq %" PRIu64 " \"%s\" at %s\n",
	    res->last_seq, last_event, last_time);
	switch (res->end) {
	case AUDITLOG_END_STOP:
		fprintf(out, "end: a \"stop\" record (the daemon stopped)\n");
		break;
	case AUDITLOG_END_TO:
		fprintf(out, "end: seq %" PRIu64 ", as --to says\n", opts->to);
		break;
	case AUDITLOG_END_HEAD:
		fprintf(out, "end: the running daemon's last record, seq %"
		    PRIu64 ", is in the files\n", opts->head_seq);
		break;
	case AUDITLOG_END_UNCONFIRMED:
		fprintf(out, "the chain is intact, but nothing confirms that it "
		    "ends here: its last record is not a \"stop\" record, and "
		    "records cut from the end of a chain do not show in it.\n"
		    "Confirm the end with -c CONFIG while the daemon runs (it "
		    "is asked for its last record), or with --to SEQ (the "
		    "last seq, from `secretsfs status` or a copy of the "
		    "trail kept elsewhere).\n");
		break;
	}
}

int
auditlog_verify(const struct audit_key *key, char **files, int n,
    const struct auditlog_opts *opts, FILE *out, struct auditlog_result *res)
{
	static const struct auditlog_opts none;
	struct auditlog_result	 lres;
	struct audit_line	 al = { .obj = NULL };
	FILE			*fp = NULL;
	char			*line = NULL, prev[AUDIT_MAC_HEX + 1];
	char			 last_event[32] = "", last_time[40] = "";
	const char		*last_file = NULL;
	size_t			 cap = 0;
	ssize_t			 len;
	off_t			 next_off;
	uint64_t		 expect = 0;
	bool			 started = false, has_nl, last_in_file;
	bool			 head_seen = false;
	int			 fi, c, r = 0, ffi = 0;
	unsigned long		 fline = 0, last_line = 0;

	if (res == NULL)
		res = &lres;
	if (opts == NULL)
		opts = &none;
	memset(res, 0, sizeof(*res));
	if (n < 1)
		return -EINVAL;
	if ((r = sort_files(files, n)) < 0)
		return r;

	for (fi = 0; fi < n && res->kind == AUDITLOG_CLEAN; fi++) {
		if ((fp = fopen(files[fi], "re")) == NULL) {
			r = -errno;
			if (out != NULL)
				fprintf(out, "%s: %s\n", files[fi], strerror(-r));
			goto done;
		}
		res->file = files[fi];
		res->line = 0;
		while ((len = getline(&line, &cap, fp)) > 0) {
			res->line++;
			has_nl = line[len - 1] == '\n';
			if (has_nl)
				len--;
			next_off = ftello(fp);
			if ((c = fgetc(fp)) == EOF)
				last_in_file = true;
			else {
				last_in_file = false;
				ungetc(c, fp);
			}
			if ((r = audit_line_check(key, line, len, &al)) < 0)
				goto done;

			if (!has_nl) {
				res->kind = AUDITLOG_TRUNCATED;
				snprintf(res->detail, sizeof(res->detail),
				    "the last line has no newline: the file was "
				    "cut during or after a write");
			} else if (al.status == AUDIT_LINE_MALFORMED) {
				res->kind = last_in_file ? AUDITLOG_TRUNCATED :
				    AUDITLOG_MALFORMED;
				snprintf(res->detail, sizeof(res->detail),
				    last_in_file ? "the last line is not a "
				    "complete record" : "not an audit record");
			} else if (al.status == AUDIT_LINE_FOREIGN_KEY) {
				res->kind = AUDITLOG_FOREIGN_KEY;
				snprintf(res->detail, sizeof(res->detail),
				    "record seq %" PRIu64 " was written under "
				    "another key (key_id %s, ours %s)", al.seq,
				    al.key_id, audit_key_id(key));
			} else if (al.status == AUDIT_LINE_BAD_MAC) {
				res->kind = AUDITLOG_EDITED;
				snprintf(res->detail, sizeof(res->detail),
				    "record seq %" PRIu64 " does not match its "
				    "mac: its content was changed", al.seq);
			} else if (!started) {
				if (head_ok(opts, &al, res))
					res->first_seq = al.seq;
			} else if (al.seq == expect && strcmp(al.prev, prev) == 0) {
				/* the chain goes on */
			} else if (al.seq == 1 && strcmp(al.prev, AUDIT_ZERO_MAC) == 0) {
				res->kind = AUDITLOG_RESTARTED;
				snprintf(res->detail, sizeof(res->detail),
				    "a new chain (seq 1) begins after seq %"
				    PRIu64 ": the writer was started on an empty "
				    "file, or the files are from two chains",
				    expect - 1);
			} else if (al.seq > expect) {
				if (find_later(key, files, n, fi, next_off,
				    res->line, expect, &ffi, &fline)) {
					res->kind = AUDITLOG_REORDERED;
					snprintf(res->detail, sizeof(res->detail),
					    "expected seq %" PRIu64 ", found seq %"
					    PRIu64 "; seq %" PRIu64 " comes later, "
					    "at %s:%lu", expect, al.seq, expect,
					    files[ffi], fline);
				} else {
					res->kind = AUDITLOG_REMOVED;
					snprintf(res->detail, sizeof(res->detail),
					    "expected seq %" PRIu64 ", found seq %"
					    PRIu64 ": records %" PRIu64 "..%" PRIu64
					    " are missing", expect, al.seq, expect,
					    al.seq - 1);
				}
			} else if (al.seq < expect) {
				res->kind = AUDITLOG_INSERTED;
				snprintf(res->detail, sizeof(res->detail),
				    "seq %" PRIu64 " repeats (expected %" PRIu64
				    "): a copy of an earlier record", al.seq,
				    expect);
			} else {
				res->kind = AUDITLOG_INSERTED;
				snprintf(res->detail, sizeof(res->detail),
				    "seq %" PRIu64 " does not continue the chain: "
				    "its prev is not the mac of the record "
				    "before (a record of another chain)", al.seq);
			}
			if (res->kind == AUDITLOG_CLEAN)
				end_ok(opts, &al, &head_seen, res);
			if (res->kind != AUDITLOG_CLEAN)
				break;

			started = true;
			res->records++;
			res->last_seq = al.seq;
			last_file = res->file;
			last_line = res->line;
			expect = al.seq + 1;
			memcpy(prev, al.mac, sizeof(prev));
			copy_str(last_event, sizeof(last_event), al.obj, "event");
			copy_str(last_time, sizeof(last_time), al.obj, "time");
			json_decref(al.obj);
			al.obj = NULL;
		}
		if (res->kind == AUDITLOG_CLEAN && ferror(fp)) {
			r = -EIO;
			if (out != NULL)
				fprintf(out, "%s: read error\n", files[fi]);
			goto done;
		}
		fclose(fp);
		fp = NULL;
	}

	/* Every record given is sound; now the ends the chain cannot show. */
	if (res->kind == AUDITLOG_CLEAN && res->records == 0) {
		res->kind = AUDITLOG_HEAD_REMOVED;
		res->file = files[0];
		res->line = 0;
		snprintf(res->detail, sizeof(res->detail), "no record at all: "
		    "the chain's first record, seq %" PRIu64 ", is missing",
		    opts->from != 0 ? opts->from : 1);
	} else if (res->kind == AUDITLOG_CLEAN && opts->head_seq != 0 &&
	    !head_seen) {
		res->kind = res->last_seq < opts->head_seq ?
		    AUDITLOG_TAIL_REMOVED : AUDITLOG_MISMATCH;
		res->file = last_file;
		res->line = last_line;
		if (res->kind == AUDITLOG_TAIL_REMOVED)
			snprintf(res->detail, sizeof(res->detail), "the chain "
			    "ends at seq %" PRIu64 ", but the daemon's last "
			    "record is seq %" PRIu64 ": records %" PRIu64 "..%"
			    PRIu64 " are missing from its end", res->last_seq,
			    opts->head_seq, res->last_seq + 1, opts->head_seq);
		else
			snprintf(res->detail, sizeof(res->detail), "the daemon's "
			    "last record, seq %" PRIu64 ", is not in the files "
			    "given", opts->head_seq);
	} else if (res->kind == AUDITLOG_CLEAN && opts->to != 0 &&
	    res->last_seq < opts->to) {
		res->kind = AUDITLOG_TAIL_REMOVED;
		res->file = last_file;
		res->line = last_line;
		snprintf(res->detail, sizeof(res->detail), "the chain ends at "
		    "seq %" PRIu64 ", not %" PRIu64 " (--to): records %" PRIu64
		    "..%" PRIu64 " are missing from its end", res->last_seq,
		    opts->to, res->last_seq + 1, opts->to);
	}

	if (res->kind != AUDITLOG_CLEAN)
		r = AUDITLOG_BAD;
	else {
		if (opts->head_seq != 0)
			res->end = AUDITLOG_END_HEAD;
		else if (opts->to != 0)
			res->end = AUDITLOG_END_TO;
		else if (strcmp(last_event, "stop") == 0)
			res->end = AUDITLOG_END_STOP;
		else
			res->end = AUDITLOG_END_UNCONFIRMED;
		r = res->end == AUDITLOG_END_UNCONFIRMED ?
		    AUDITLOG_UNCONFIRMED : AUDITLOG_OK;
		res->file = NULL;
		res->line = 0;
	}
	if (out != NULL)
		report(out, key, n, opts, res, last_event, last_time);
done:
	json_decref(al.obj);
	if (fp != NULL)
		fclose(fp);
	free(line);
	return r;
}

int
auditlog_verify_files(const char *keyfile, char **files, int n,
    const struct auditlog_opts *opts, FILE *out)
{
	struct audit_key	*key;
	char			 err[512];
	int			 r;

	if ((r = audit_key_load(keyfile, &key, err, sizeof(err))) < 0) {
		if (out != NULL)
			fprintf(out, "%s\n", err);
		return r;
	}
	r = auditlog_verify(key, files, n, opts, out, NULL);
	audit_key_free(key);
	return r;
}

/* ------------------------------------------------------------------ */
/* Time                                                               */

int
auditlog_parse_since(const char *s, int64_t now_us, int64_t *out_us)
{
	int64_t	ms;

	if (s == NULL || *s == '\0')
		return -EINVAL;
	if (strlen(s) >= 10 && s[4] == '-')
		return clk_parse_rfc3339(s, CLK_DATE_ALONE, out_us);
	if (cfg_parse_duration(s, &ms) < 0 || ms < 0)
		return -EINVAL;
	/* Further back than an int64_t of microseconds reaches: everything. */
	if (__builtin_mul_overflow(ms, 1000, &ms) ||
	    __builtin_sub_overflow(now_us, ms, out_us))
		*out_us = INT64_MIN;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Show                                                               */

static const char *
sget(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static bool
matches(json_t *o, const struct auditlog_filter *f, bool have_since,
    int64_t since)
{
	json_t		*ct;
	const char	*s;
	int64_t		 t;

	if (f == NULL)
		return true;
	if (f->secret != NULL &&
	    ((s = sget(o, "secret")) == NULL || fnmatch(f->secret, s, 0) != 0))
		return false;
	if (f->container != NULL) {
		const char *name, *id;

		ct = json_object_get(o, "container");
		name = sget(ct, "name");
		id = sget(ct, "id");
		if (!(name != NULL && fnmatch(f->container, name, 0) == 0) &&
		    !(id != NULL && *f->container != '\0' &&
		    strncmp(id, f->container, strlen(f->container)) == 0))
			return false;
	}
	if (have_since && ((s = sget(o, "time")) == NULL ||
	    clk_parse_rfc3339(s, CLK_DATE_ALONE, &t) < 0 || t < since))
		return false;
	return true;
}

/* A column value fit for a terminal: control characters become '?'. */
static const char *
col(char *buf, size_t len, const char *s)
{
	size_t	i;

	if (s == NULL || *s == '\0')
		return "-";
	snprintf(buf, len, "%s", s);
	for (i = 0; buf[i] != '\0'; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	return buf;
}

static const char *
col_int(char *buf, size_t len, json_t *v)
{
	if (!json_is_integer(v))
		return "-";
	snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	return buf;
}

static void
print_row(FILE *out, json_t *o)
{
	char		 b[9][600], ver[600], idshort[13];
	const char	*oldv, *newv, *cont;
	json_t		*ct = json_object_get(o, "container");

	oldv = sget(o, "old_version");
	newv = sget(o, "new_version");
	if (oldv != NULL || newv != NULL) {
		snprintf(ver, sizeof(ver), "%.290s->%.290s", oldv != NULL ? oldv : "-",
		    newv != NULL ? newv : "-");
		oldv = ver;
	} else
		oldv = sget(o, "version");
	if ((cont = sget(ct, "name")) == NULL || *cont == '\0') {
		cont = sget(ct, "id");
		if (cont != NULL) {
			snprintf(idshort, sizeof(idshort), "%s", cont);
			cont = idshort;
		}
	}
	fprintf(out, "%-27s  %-13s  %-7s  %-24s  %-8s  %7s  %6s  %-20s  %s\n",
	    col(b[0], sizeof(b[0]), sget(o, "time")),
	    col(b[1], sizeof(b[1]), sget(o, "event")),
	    col(b[2], sizeof(b[2]), sget(o, "outcome")),
	    col(b[3], sizeof(b[3]), sget(o, "secret")),
	    col(b[4], sizeof(b[4]), oldv),
	    col_int(b[5], sizeof(b[5]), json_object_get(o, "pid")),
	    col_int(b[6], sizeof(b[6]), json_object_get(o, "uid")),
	    col(b[7], sizeof(b[7]), cont),
	    col(b[8], sizeof(b[8]), sget(o, "rule")));
}

int
auditlog_show(char **files, int n, const struct auditlog_filter *f,
    bool json, FILE *out)
{
	struct timespec	 now;
	FILE		*fp;
	char		*line = NULL;
	size_t		 cap = 0;
	ssize_t		 len;
	json_t		*o;
	int64_t		 since = 0;
	bool		 have_since = false;
	unsigned long	 skipped = 0;
	int		 fi, r = 0;

	if (n < 1)
		return -EINVAL;
	if (f != NULL && f->since != NULL) {
		clock_gettime(CLOCK_REALTIME, &now);
		if (auditlog_parse_since(f->since,
		    (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000,
		    &since) < 0)
			return -EINVAL;
		have_since = true;
	}
	if ((r = sort_files(files, n)) < 0)
		return r;
	if (!json)
		fprintf(out, "%-27s  %-13s  %-7s  %-24s  %-8s  %7s  %6s  %-20s  "
		    "%s\n", "TIME", "EVENT", "OUTCOME", "SECRET", "VERSION",
		    "PID", "UID", "CONTAINER", "RULE");
	for (fi = 0; fi < n && r == 0; fi++) {
		if ((fp = fopen(files[fi], "re")) == NULL) {
			r = -errno;
			break;
		}
		while ((len = getline(&line, &cap, fp)) > 0) {
			if (line[len - 1] == '\n')
				len--;
			o = json_loadb(line, len, 0, NULL);
			if (!json_is_object(o)) {
				json_decref(o);
				skipped++;
				continue;
			}
			if (matches(o, f, have_since, since)) {
				if (json)
					fprintf(out, "%.*s\n", (int)len, line);
				else
					print_row(out, o);
			}
			json_decref(o);
		}
		if (ferror(fp))
			r = -EIO;
		fclose(fp);
	}
	if (!json && skipped > 0)
		fprintf(out, "(%lu lines that are not records were skipped)\n",
		    skipped);
	free(line);
	return r;
}
