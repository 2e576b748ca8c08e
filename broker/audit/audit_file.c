/*
 * The audit writer's files: opening and checking the log, continuing the
 * chain from its tail or a rotated sibling, rotation, appending, and the
 * best-effort syslog and stdout copies.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <secretsfs/audit.h>

#include "audit_int.h"

#define SYSLOG_PATH	"/dev/log"
#define SYSLOG_PRI	(10 * 8 + 6)	/* authpriv.info */
#define MAX_SIBLINGS	4096

/* ------------------------------------------------------------------ */
/* Files                                                              */

/*
 * O_RDWR rather than O_WRONLY so that the tail check reads the very inode
 * we append to; O_NONBLOCK so that a FIFO planted at the path cannot hang
 * us before the S_ISREG check (regular files ignore it).
 */
int
audit_file_open(const char *path, int *fdp, struct stat *sb)
{
	int	fd;

	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, sb) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	if (!S_ISREG(sb->st_mode)) {
		close(fd);
		return -EINVAL;
	}
	*fdp = fd;
	return 0;
}

/* Make a new directory entry (created or renamed file) durable. */
void
audit_file_sync_dir(const char *path)
{
	char	 dir[PATH_MAX], *slash;
	int	 fd;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL)
		return;
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/*
 * The last line of the file on fd (size bytes), without its "\n", in a
 * malloc'd *line. -EBADMSG when the file does not end with "\n" or the
 * line is longer than AUDIT_LINE_MAX.
 */
static int
read_last_line(int fd, uint64_t size, char **line, size_t *len)
{
	size_t	 n = size > AUDIT_LINE_MAX + 1 ? AUDIT_LINE_MAX + 1 : size;
	size_t	 got = 0;
	ssize_t	 r;
	char	*buf, *nl;

	if ((buf = malloc(n + 1)) == NULL)
		return -ENOMEM;
	while (got < n) {
		r = pread(fd, buf + got, n - got, size - n + got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(buf);
			return r < 0 ? -errno : -EBADMSG;
		}
		got += r;
	}
	if (n == 0 || buf[n - 1] != '\n') {
		free(buf);
		return -EBADMSG;
	}
	nl = memrchr(buf, '\n', n - 1);
	if (nl == NULL && n < size) {
		free(buf);
		return -EBADMSG;
	}
	*len = n - 1 - (nl != NULL ? (size_t)(nl + 1 - buf) : 0);
	memmove(buf, nl != NULL ? nl + 1 : buf, *len);
	buf[*len] = '\0';
	*line = buf;
	return 0;
}

/* The last record of a non-empty file, checked under key. */
int
audit_file_tail(const struct audit_key *key, int fd, uint64_t size,
    struct audit_line *al, const char *name, char *errbuf, size_t errlen)
{
	char	*line = NULL;
	size_t	 len = 0;
	int	 r;

	if ((r = read_last_line(fd, size, &line, &len)) < 0) {
		if (r == -EBADMSG)
			snprintf(errbuf, errlen, "audit file %s ends with a "
			    "partial record (a crash during a write, or the "
			    "file was cut); move it away to start a new file",
			    name);
		else
			snprintf(errbuf, errlen, "audit file %s: %s", name,
			    strerror(-r));
		return r;
	}
	r = audit_line_check(key, line, len, al);
	free(line);
	json_decref(al->obj);
	al->obj = NULL;
	if (r < 0) {
		snprintf(errbuf, errlen, "audit file %s: %s", name,
		    strerror(-r));
		return r;
	}
	switch (al->status) {
	case AUDIT_LINE_OK:
		return 0;
	case AUDIT_LINE_MALFORMED:
		snprintf(errbuf, errlen, "the last line of audit file %s is "
		    "not an audit record; move it away to start a new file",
		    name);
		break;
	case AUDIT_LINE_FOREIGN_KEY:
		snprintf(errbuf, errlen, "the last record of audit file %s "
		    "was written under another key (key_id %s, ours %s); "
		    "move it away to start a new file", name, al->key_id,
		    key->id);
		break;
	case AUDIT_LINE_BAD_MAC:
		snprintf(errbuf, errlen, "the last record of audit file %s "
		    "fails its MAC (edited?); run `secretsfs audit verify` "
		    "and move it away to start a new file", name);
		break;
	}
	return -EBADMSG;
}

/*
 * The file at our path is new or empty: continue the chain from the
 * newest rotated sibling "<file>.*" whose last record verifies (so that a
 * rotation done while we were stopped does not start a new chain). Others
 * (compressed, foreign, cut) are ignored: they are not ours to continue.
 */
void
audit_file_tail_siblings(struct audit *a)
{
	char			 dir[PATH_MAX], full[PATH_MAX], junk[256];
	const char		*base;
	char			*slash;
	size_t			 blen;
	DIR			*d;
	struct dirent		*de;
	struct stat		 sb;
	struct audit_line	 al;
	int			 fd, seen = 0;

	snprintf(dir, sizeof(dir), "%s", a->path);
	if ((slash = strrchr(dir, '/')) == NULL)
		return;
	base = a->path + (slash - dir) + 1;
	blen = strlen(base);
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL && seen++ < MAX_SIBLINGS) {
		if (strncmp(de->d_name, base, blen) != 0 ||
		    de->d_name[blen] != '.' || de->d_name[blen + 1] == '\0')
			continue;
		if (snprintf(full, sizeof(full), "%s/%s", dir, de->d_name) >=
		    (int)sizeof(full))
			continue;
		fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0)
			continue;
		if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    sb.st_size > 0 &&
		    audit_file_tail(a->key, fd, sb.st_size, &al, full, junk,
		    sizeof(junk)) == 0 && al.seq > a->seq) {
			a->seq = al.seq;
			memcpy(a->prev, al.mac, sizeof(a->prev));
		}
		close(fd);
	}
	closedir(d);
}

/*
 * Point a->fd at the file now at a->path, continuing the chain: the same
 * inode is kept as is; a new file must be empty or end with our last
 * record. The old fd is synced and closed.
 */
int
audit_file_switch_locked(struct audit *a)
{
	struct stat		 cur, sb;
	struct audit_line	 al;
	char			 junk[256];
	int			 fd = -1, r;

	if ((r = audit_file_open(a->path, &fd, &sb)) < 0)
		return r;
	if (fstat(a->fd, &cur) == 0 && cur.st_dev == sb.st_dev &&
	    cur.st_ino == sb.st_ino) {
		close(fd);
		return 0;
	}
	if (sb.st_size > 0) {
		r = audit_file_tail(a->key, fd, sb.st_size, &al, a->path, junk,
		    sizeof(junk));
		if (r == 0 && (al.seq != a->seq || strcmp(al.mac, a->prev) != 0))
			r = -EBADMSG;
		if (r < 0) {
			close(fd);
			return r;
		}
	}
	(void)fdatasync(a->fd);
	close(a->fd);
	audit_file_sync_dir(a->path);
	a->fd = fd;
	a->size = sb.st_size;
	a->torn = false;
	a->dirty = false;
	return 0;
}

/* Size rotation: "<file>.<UTC time>", then a new file at the path. */
void
audit_file_rotate_locked(struct audit *a)
{
	struct stat	cur, sb;
	struct timespec	now;
	char		ts[40], name[PATH_MAX];

	if (fstat(a->fd, &cur) < 0)
		goto fail;
	/* If the path is no longer our file, someone moved it already. */
	if (stat(a->path, &sb) == 0 && sb.st_dev == cur.st_dev &&
	    sb.st_ino == cur.st_ino) {
		clock_gettime(CLOCK_REALTIME, &now);
		audit_fmt_time(ts, sizeof(ts), &now, true);
		if (snprintf(name, sizeof(name), "%s.%s", a->path, ts) >=
		    (int)sizeof(name))
			goto fail;
		if (renameat2(AT_FDCWD, a->path, AT_FDCWD, name,
		    RENAME_NOREPLACE) < 0) {
			/* Filesystems without RENAME_NOREPLACE. */
			if ((errno != EINVAL && errno != ENOSYS) ||
			    access(name, F_OK) == 0 || errno != ENOENT ||
			    rename(a->path, name) < 0)
				goto fail;
		}
	}
	/* On failure we keep appending to the renamed file and retry later. */
	if (audit_file_switch_locked(a) < 0)
		goto fail;
	a->st.rotations++;
	return;
fail:
	a->st.rotate_errors++;
}

/*
 * Append one whole line or nothing. A partial write is cut back off; if
 * even that fails, every later append first retries the cut, so no record
 * ever follows a torn one.
 */
int
audit_file_append_locked(struct audit *a, const char *line, size_t len)
{
	struct stat	sb;
	size_t		off = 0;
	ssize_t		w;
	int		r;

	if (a->torn) {
		if (ftruncate(a->fd, a->size) < 0)
			return -errno;
		a->torn = false;
	}
	if (fstat(a->fd, &sb) < 0)
		return -errno;
	/* Deleted: records written now would be lost. mv is fine. */
	if (sb.st_nlink == 0)
		return -ENOENT;
	while (off < len) {
		w = write(a->fd, line + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			r = w < 0 ? -errno : -EIO;
			if (off > 0 && ftruncate(a->fd, sb.st_size) < 0)
				a->torn = true;
			a->size = sb.st_size;
			return r;
		}
		off += w;
	}
	a->size = sb.st_size + len;
	return 0;
}

int
audit_file_syslog_connect(struct audit *a)
{
	struct sockaddr_un	sun = { .sun_family = AF_UNIX };
	const char		*p = a->syslog_path != NULL ?
				    a->syslog_path : SYSLOG_PATH;

	if (a->log_fd >= 0)
		close(a->log_fd);
	a->log_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (a->log_fd < 0)
		return -errno;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", p);
	if (connect(a->log_fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int r = -errno;
		close(a->log_fd);
		a->log_fd = -1;
		return r;
	}
	return 0;
}

/* Best effort copies: the file is the record of truth. */
void
audit_file_copies_locked(struct audit *a, const char *line, size_t len)
{
	char	*msg;
	int	 n, tries;

	if (a->to_stdout && write(STDOUT_FILENO, line, len) != (ssize_t)len)
		a->st.output_errors++;
	if (!a->to_syslog)
		return;
	/* <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG */
	n = asprintf(&msg, "<%d>1 %.27s %s secretsfs %ld audit - %.*s",
	    SYSLOG_PRI, line + 9, a->host, (long)getpid(), (int)len - 1, line);
	if (n < 0) {
		a->st.output_errors++;
		return;
	}
	for (tries = 0; tries < 2; tries++) {
		if (a->log_fd < 0 && audit_file_syslog_connect(a) < 0)
			continue;
		if (send(a->log_fd, msg, n, MSG_DONTWAIT | MSG_NOSIGNAL) == n)
			break;
		close(a->log_fd);
		a->log_fd = -1;
	}
	if (tries == 2)
		a->st.output_errors++;
	free(msg);
}
