/*
 * Runs in the FUSE process: the control socket's server (one accept
 * thread, one short-lived thread per connection) and the answer to each
 * request. Nothing here ever sees a secret value.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <secretsfs/control.h>
#include <secretsfs/log.h>
#include <secretsfs/wire.h>

#include "control_int.h"

#define CONN_MAX		8	/* connections served at once */
#define IO_TIMEOUT_S		5	/* for a request line and an answer */

int
control_execute(struct broker *b, const struct control_cmd *cmd, FILE *out,
    char *why, size_t whylen)
{
	struct broker_snapshot snap;
	char version[BACKEND_VERSION_MAX];
	int r;

	switch (cmd->verb) {
	case CONTROL_STATUS:
	case CONTROL_METRICS:
		/* Metrics show each configured secret too (never a caller). */
		if ((r = broker_snapshot(b, true, &snap)) < 0) {
			snprintf(why, whylen, "%s", strerror(-r));
			return r;
		}
		if (cmd->verb == CONTROL_STATUS)
			control_render_status(&snap, cmd->json, out);
		else
			control_render_metrics(&snap, out);
		broker_snapshot_free(&snap);
		return 0;
	case CONTROL_HEALTH:
		if ((r = broker_health(b, why, whylen)) < 0)
			return r;
		/* The CLI exits 2 on this word (control_cli.c). */
		fprintf(out, "%s: %s\n", r > 0 ? "degraded" : "healthy", why);
		return 0;
	case CONTROL_FLUSH:
		if ((r = broker_flush(b, cmd->has_name ? cmd->name : NULL)) < 0) {
			snprintf(why, whylen, "no secret \"%s\" in the "
			    "configuration", cmd->name);
			return r;
		}
		fprintf(out, "flushed %s\n", cmd->has_name ? cmd->name :
		    "every secret");
		return 0;
	case CONTROL_REFRESH: {
		struct broker_view *v = broker_acquire(b);
		bool known = broker_view_lookup(v, cmd->name) >= 0;

		broker_release(v);
		if (!known) {
			snprintf(why, whylen, "no secret \"%s\" in the "
			    "configuration", cmd->name);
			return -ENOENT;
		}
		if ((r = broker_refresh(b, cmd->name, version,
		    sizeof(version))) < 0) {
			snprintf(why, whylen, "%s: %s", cmd->name, strerror(-r));
			return r;
		}
		fprintf(out, "refreshed %s: version %s\n", cmd->name, version);
		return 0;
	}
	}
	snprintf(why, whylen, "unknown command");
	return -EINVAL;
}

/* ------------------------------------------------------------------ */
/* The server.                                                        */

struct control {
	struct broker	*b;
	char		 path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int		 fd;
	int		 wake[2];
	dev_t		 dev;
	ino_t		 ino;
	pthread_t	 thread;
	pthread_mutex_t	 lock;
	pthread_cond_t	 idle;
	int		 active;
};

struct conn {
	struct control	*c;
	int		 fd;
};

void
control_write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		if ((n = send(fd, buf, len, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void
answer_error(int fd, const char *msg)
{
	char buf[512];
	int n;

	n = snprintf(buf, sizeof(buf), "error %s\n", msg);
	if (n > 0)
		control_write_all(fd, buf, (size_t)n < sizeof(buf) ? (size_t)n :
		    sizeof(buf) - 1);
}

static void
serve(struct control *c, int fd)
{
	struct control_cmd cmd;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	char line[CONTROL_LINE_MAX], why[512] = "", *body = NULL;
	size_t have = 0, blen = 0;
	FILE *out;
	ssize_t n;
	int r;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		log_warnx("control: refused a connection from uid %d pid %d",
		    clen == sizeof(cred) ? (int)cred.uid : -1,
		    clen == sizeof(cred) ? (int)cred.pid : -1);
		answer_error(fd, "permission denied: root only");
		return;
	}
	/* One line; a client that sends no newline ends it by closing. */
	while (have < sizeof(line)) {
		n = recv(fd, line + have, sizeof(line) - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		if (memchr(line + have - n, '\n', (size_t)n))
			break;
	}
	if (have && memchr(line, '\n', have))
		have = (size_t)((char *)memchr(line, '\n', have) - line);
	else if (have == sizeof(line)) {
		answer_error(fd, "request too long");
		return;
	}
	if ((r = control_parse(line, have, &cmd)) < 0) {
		answer_error(fd, r == -ENAMETOOLONG ? "name too long" :
		    r == -E2BIG ? "request too long" : "unknown request; "
		    "expected status [json], metrics, health, flush [NAME] or "
		    "refresh NAME");
		return;
	}
	if (!(out = open_memstream(&body, &blen))) {
		answer_error(fd, strerror(errno));
		return;
	}
	fputs("ok\n", out);
	r = control_execute(c->b, &cmd, out, why, sizeof(why));
	fclose(out);
	if (r < 0)
		answer_error(fd, why);
	else
		control_write_all(fd, body, blen);
	free(body);
}

static void *
conn_thread(void *arg)
{
	struct conn *cn = arg;
	struct control *c = cn->c;

	serve(c, cn->fd);
	close(cn->fd);
	free(cn);
	pthread_mutex_lock(&c->lock);
	if (--c->active == 0)
		pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void *
accept_thread(void *arg)
{
	struct control *c = arg;
	struct conn *cn;
	pthread_attr_t attr;
	pthread_t t;
	int fd;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	while ((fd = wire_accept(c->fd, c->wake[0], IO_TIMEOUT_S)) >= 0) {
		pthread_mutex_lock(&c->lock);
		if (c->active >= CONN_MAX || !(cn = malloc(sizeof(*cn)))) {
			pthread_mutex_unlock(&c->lock);
			answer_error(fd, "busy; try again");
			close(fd);
			continue;
		}
		cn->c = c;
		cn->fd = fd;
		c->active++;
		pthread_mutex_unlock(&c->lock);
		if (pthread_create(&t, &attr, conn_thread, cn) != 0) {
			answer_error(fd, "cannot start a thread");
			close(fd);
			free(cn);
			pthread_mutex_lock(&c->lock);
			c->active--;
			pthread_mutex_unlock(&c->lock);
		}
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

/* Is a daemon answering on path? */
static bool
answers(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return false;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return r == 0;
}

int
control_open(const char *path, struct broker *b, struct control **out,
    char *errbuf, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct control *c;
	struct stat st;
	sigset_t all, old;
	int r;

	*out = NULL;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(errbuf, errlen, "%s: path too long for a socket", path);
		return -ENAMETOOLONG;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(errbuf, errlen, "%s exists and is not a socket; "
			    "not replacing it", path);
			return -EEXIST;
		}
		if (answers(path)) {
			snprintf(errbuf, errlen, "another daemon answers on %s",
			    path);
			return -EADDRINUSE;
		}
		/* Left by a daemon that died. */
		unlink(path);
	}
	if (!(c = calloc(1, sizeof(*c))))
		return -ENOMEM;
	c->b = b;
	c->fd = c->wake[0] = c->wake[1] = -1;
	snprintf(c->path, sizeof(c->path), "%s", path);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->idle, NULL);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		r = -errno;
		if (r == -ENOENT || r == -ENOTDIR)
			snprintf(errbuf, errlen, "%s: its directory does not "
			    "exist (%s); create it or fix control.socket", path,
			    strerror(-r));
		else
			snprintf(errbuf, errlen, "%s: %s", path, strerror(-r));
		goto fail;
	}
	/*
	 * 0600 at once; a client that connected in the moment before is
	 * still checked with SO_PEERCRED.
	 */
	if (chmod(path, 0600) != 0 || listen(c->fd, 16) != 0 ||
	    stat(path, &st) != 0 || pipe2(c->wake, O_CLOEXEC) != 0) {
		r = -errno;
		snprintf(errbuf, errlen, "%s: %s", path, strerror(-r));
		unlink(path);
		goto fail;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(&c->thread, NULL, accept_thread, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		snprintf(errbuf, errlen, "cannot start a thread: %s",
		    strerror(-r));
		unlink(path);
		goto fail;
	}
	*out = c;
	return 0;
fail:
	if (c->fd >= 0)
		close(c->fd);
	if (c->wake[0] >= 0) {
		close(c->wake[0]);
		close(c->wake[1]);
	}
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->idle);
	free(c);
	return r;
}

void
control_close(struct control *c)
{
	struct stat st;

	if (!c)
		return;
	(void)!write(c->wake[1], "x", 1);
	pthread_join(c->thread, NULL);
	pthread_mutex_lock(&c->lock);
	while (c->active > 0)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_mutex_unlock(&c->lock);
	/* Only our own socket: a successor may already have replaced it. */
	if (stat(c->path, &st) == 0 && st.st_dev == c->dev &&
	    st.st_ino == c->ino)
		unlink(c->path);
	close(c->fd);
	close(c->wake[0]);
	close(c->wake[1]);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->idle);
	free(c);
}
