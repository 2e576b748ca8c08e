/*
 * Runs in the FUSE process (the SANDBOX_FUSE allow-list): its side of the
 * fetcher's socketpair, the fetcher itself being fetch.c.
 *
 * A call registers itself, sends its request and waits for the reply
 * with its id; until the reader thread runs (start-up, one thread), the
 * caller reads the socket itself.
 *
 * Secret bytes cross the socket only from and into locked bounce buffers
 * (secmem_bounce), wiped at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <secretsfs/backend.h>
#include <secretsfs/clk.h>
#include <secretsfs/fetcher.h>
#include <secretsfs/log.h>
#include <secretsfs/secmem.h>
#include <secretsfs/wire.h>

#include "fetcher_int.h"

#define CALL_TIMEOUT_S	300		/* far beyond any backend's own timeouts */

/* Room for a request's fields besides a value or an options object. */
#define SMALL_PAYLOAD	(4 * (FIELD_MAX + 8))

struct remote {
	uint32_t	 id;
	char		*name;
	char		*type;
	char		*options;	/* JSON text; may hold keys: locked */
	size_t		 options_len;
	struct remote	*next;
};

struct call {
	uint32_t		 id;
	uint32_t		 want;	/* the reply type that answers it */
	bool			 done;
	int			 err;
	struct backend_value	*val;
	char			***names;
	size_t			*n;
	char			*errbuf;
	size_t			 errlen;
	struct call		*next;
};

static struct {
	pthread_mutex_t	 lock;		/* calls, remotes, fd, pid */
	pthread_cond_t	 cond;
	pthread_mutex_t	 send_lock;	/* one writer on fd at a time */
	int		 fd;
	pid_t		 pid;
	uint32_t	 next_id;
	uint32_t	 next_backend;
	struct call	*calls;
	struct remote	*remotes;
	bool		 threaded;
	pthread_t	 reader;
	int		 wake[2];
	int		 extra_fd;
	int		(*on_extra)(void *);
	void		*extra_arg;
} C = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.send_lock = PTHREAD_MUTEX_INITIALIZER,
	.fd = -1,
	.wake = { -1, -1 },
	.extra_fd = -1,
};

static struct call *
call_take(uint32_t id)
{
	struct call **cp, *c;

	for (cp = &C.calls; (c = *cp); cp = &c->next)
		if (c->id == id) {
			*cp = c->next;
			return c;
		}
	return NULL;
}

static void
call_finish(struct call *c, int err, const char *msg)
{
	c->err = err;
	if (err && c->errbuf && c->errlen)
		snprintf(c->errbuf, c->errlen, "%s", msg ? msg : strerror(-err));
	c->done = true;
}

/* The fetcher went away: every call in flight fails. Under C.lock. */
static void
fail_all(const char *why)
{
	struct call *c;

	while ((c = C.calls)) {
		C.calls = c->next;
		call_finish(c, -EIO, why);
	}
	pthread_cond_broadcast(&C.cond);
}

static void
got_value(struct call *c, struct wire_in *in)
{
	char version[BACKEND_VERSION_MAX];
	const uint8_t *p;
	uint64_t s, ns;
	size_t n;

	wire_get_str(in, version, sizeof(version), NULL);
	s = wire_get_u64(in);
	ns = wire_get_u64(in);
	p = wire_get_bytes(in, &n);
	if (in->err || !c->val) {
		call_finish(c, -EIO, "malformed answer from the fetcher");
		return;
	}
	memset(c->val, 0, sizeof(*c->val));
	/* One byte more: an empty value is still a block. */
	if (!(c->val->data = secmem_alloc(n + 1))) {
		call_finish(c, -ENOMEM, "locked memory exhausted");
		return;
	}
	memcpy(c->val->data, p, n);
	c->val->data[n] = '\0';
	c->val->len = n;
	snprintf(c->val->version, sizeof(c->val->version), "%s", version);
	c->val->changed.tv_sec = (time_t)s;
	c->val->changed.tv_nsec = (long)ns;
	call_finish(c, 0, NULL);
}

static void
got_names(struct call *c, struct wire_in *in)
{
	uint32_t n = wire_get_u32(in), i;
	char name[FIELD_MAX], **v;

	if (in->err || !c->names || n > in->len / 4 ||
	    !(v = calloc(n + 1, sizeof(*v)))) {
		call_finish(c, -EIO, "malformed answer from the fetcher");
		return;
	}
	for (i = 0; i < n; i++) {
		wire_get_str(in, name, sizeof(name), NULL);
		if (in->err || !(v[i] = strdup(name)))
			break;
	}
	if (i < n) {
		while (i > 0)
			free(v[--i]);
		free(v);
		call_finish(c, -EIO, "malformed answer from the fetcher");
		return;
	}
	*c->names = v;
	*c->n = n;
	call_finish(c, 0, NULL);
}

static void
got_auth(struct wire_in *in)
{
	char backend[512], method[512], action[512], reason[512];
	bool reason_null;
	uint32_t ok, err;
	uint64_t ttl;

	wire_get_str(in, backend, sizeof(backend), NULL);
	wire_get_str(in, method, sizeof(method), NULL);
	wire_get_str(in, action, sizeof(action), NULL);
	ok = wire_get_u32(in);
	err = wire_get_u32(in);
	ttl = wire_get_u64(in);
	wire_get_str(in, reason, sizeof(reason), &reason_null);
	if (in->err || err > 4095) {
		log_warnx("fetcher: malformed authentication event");
		return;
	}
	/* A positive errno, as the backend reported it. */
	backend_report_auth(backend, method, action, ok != 0, (int)err,
	    (long long)ttl, reason_null ? NULL : reason);
}

/*
 * Read one message from the fetcher and hand it to its call. 0, or -errno
 * when the socket broke (the caller then fails every call).
 */
static int
pump(int fd)
{
	struct wire_hdr h;
	struct wire_in in;
	struct call *c;
	uint8_t *buf;
	char msg[FIELD_MAX];
	int passfd, r;
	uint32_t e;

	if ((r = wire_recv_hdr(fd, &h, &passfd)) < 0)
		return r;
	if (passfd >= 0)
		close(passfd);
	if (!(buf = secmem_bounce(h.len + 1)))
		return -ENOMEM;
	if ((r = wire_recv_body(fd, buf, h.len)) < 0)
		return r;
	in = (struct wire_in){ buf, h.len, 0, false };
	if (h.type == FETCHER_AUTH) {
		got_auth(&in);
		explicit_bzero(buf, h.len);
		return 0;
	}
	pthread_mutex_lock(&C.lock);
	if (!(c = call_take(h.id))) {
		/* A reopening in a new fetcher (id 0), or a call given up. */
		if (h.type == FETCHER_ERR) {
			e = wire_get_u32(&in);
			wire_get_str(&in, msg, sizeof(msg), NULL);
			if (!in.err)
				log_warnx("fetcher: %s", msg);
			(void)e;
		}
	} else if (h.type != FETCHER_ERR && h.type != c->want) {
		/* An OK where a value is due would pass for a value. */
		call_finish(c, -EIO, "unexpected answer from the fetcher");
		pthread_cond_broadcast(&C.cond);
	} else {
		switch (h.type) {
		case FETCHER_OK:
			call_finish(c, 0, NULL);
			break;
		case FETCHER_ERR:
			e = wire_get_u32(&in);
			wire_get_str(&in, msg, sizeof(msg), NULL);
			if (in.err || e == 0 || e > 4095)
				call_finish(c, -EIO, "malformed answer from "
				    "the fetcher");
			else
				call_finish(c, -(int)e, msg);
			break;
		case FETCHER_VALUE:
			got_value(c, &in);
			break;
		case FETCHER_NAMES:
			got_names(c, &in);
			break;
		default:
			call_finish(c, -EIO, "unexpected answer from the "
			    "fetcher");
			break;
		}
		pthread_cond_broadcast(&C.cond);
	}
	pthread_mutex_unlock(&C.lock);
	explicit_bzero(buf, h.len);
	return 0;
}

/* The current fetcher is gone. Under C.lock. */
static void
lost(int err)
{
	if (C.fd < 0)
		return;
	log_warnx("fetcher process %d: connection lost (%s); cached secrets "
	    "are still served, fetches fail until it is restarted",
	    (int)C.pid, strerror(-err));
	pthread_mutex_lock(&C.send_lock);
	close(C.fd);
	C.fd = -1;
	pthread_mutex_unlock(&C.send_lock);
	C.pid = 0;
	fail_all("the fetcher process exited; a new one is being started");
}

/*
 * Send a request and wait for its reply. payload may hold keys: the
 * caller built it in its bounce buffer and wipes it.
 */
static int
call(uint32_t type, const void *payload, size_t len, struct call *c)
{
	struct timespec dl;
	int r = 0, fd;

	pthread_mutex_lock(&C.lock);
	c->id = ++C.next_id ? C.next_id : ++C.next_id;
	c->done = false;
	c->next = C.calls;
	C.calls = c;
	pthread_mutex_unlock(&C.lock);

	pthread_mutex_lock(&C.send_lock);
	fd = C.fd;
	if (fd < 0)
		r = -ENOTCONN;
	else
		r = wire_send(fd, type, c->id, payload, len, -1);
	pthread_mutex_unlock(&C.send_lock);

	pthread_mutex_lock(&C.lock);
	if (r < 0) {
		if (call_take(c->id))
			call_finish(c, -EIO, fd < 0 ? "the fetcher process is "
			    "being restarted" : "cannot write to the fetcher "
			    "process");
		goto out;
	}
	if (!C.threaded) {
		/* Start-up: one thread, so read for ourselves. */
		while (!c->done) {
			pthread_mutex_unlock(&C.lock);
			r = pump(fd);
			pthread_mutex_lock(&C.lock);
			if (r < 0)
				lost(r);
		}
		goto out;
	}
	dl = clk_deadline(CLOCK_REALTIME, CALL_TIMEOUT_S * 1000);
	while (!c->done)
		if (pthread_cond_timedwait(&C.cond, &C.lock, &dl) == ETIMEDOUT) {
			if (call_take(c->id))
				call_finish(c, -ETIMEDOUT, "the fetcher process "
				    "did not answer in time");
			break;
		}
out:
	r = c->err;
	pthread_mutex_unlock(&C.lock);
	return r;
}

static void *
reader(void *arg)
{
	struct pollfd p[3];
	int fd, r;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&C.lock);
		fd = C.fd;
		pthread_mutex_unlock(&C.lock);
		p[0] = (struct pollfd){ .fd = C.wake[0], .events = POLLIN };
		p[1] = (struct pollfd){ .fd = C.extra_fd, .events = POLLIN };
		p[2] = (struct pollfd){ .fd = fd, .events = POLLIN };
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			fatal("fetcher: poll");
		}
		if (p[0].revents) {
			char c = 'x';

			/* 'a': a new fetcher to watch; anything else: stop. */
			if (read(C.wake[0], &c, 1) == 1 && c == 'a')
				continue;
			break;
		}
		/* The helper gone, its socket would wake us forever. */
		if (p[1].revents && C.on_extra && C.on_extra(C.extra_arg) < 0)
			C.extra_fd = -1;
		if (fd >= 0 && p[2].revents) {
			r = pump(fd);
			/* A value came through this thread's buffers. */
			secmem_wipe_registers();
			if (r < 0) {
				pthread_mutex_lock(&C.lock);
				if (C.fd == fd)
					lost(r);
				pthread_mutex_unlock(&C.lock);
			}
		}
	}
	return NULL;
}

/* OPEN as a payload, built in this thread's locked bounce buffer. */
static int
open_payload(const struct remote *rm, struct wire_out *o)
{
	size_t cap = strlen(rm->name) + strlen(rm->type) + rm->options_len + 32;

	if (!(o->buf = secmem_bounce(cap)))
		return -ENOMEM;
	o->cap = cap;
	o->len = 0;
	o->err = false;
	wire_put_u32(o, rm->id);
	wire_put_str(o, rm->name);
	wire_put_str(o, rm->type);
	wire_put_bytes(o, rm->options, rm->options_len);
	return o->err ? -EMSGSIZE : 0;
}

static void
remote_free(struct remote *rm)
{
	if (!rm)
		return;
	free(rm->name);
	free(rm->type);
	secmem_free(rm->options);
	free(rm);
}

static int
proxy_open(const struct config_backend *cfg, void **impl, char *errbuf,
    size_t errlen)
{
	struct call c = { .want = FETCHER_OK, .errbuf = errbuf,
	    .errlen = errlen };
	struct remote *rm;
	struct wire_out o;
	size_t n;
	int r;

	if (!(rm = calloc(1, sizeof(*rm))) || !(rm->name = strdup(cfg->name)) ||
	    !(rm->type = strdup(cfg->type))) {
		remote_free(rm);
		return -ENOMEM;
	}
	n = json_dumpb(cfg->options, NULL, 0, JSON_COMPACT);
	if (!(rm->options = secmem_alloc(n + 1))) {
		remote_free(rm);
		return -ENOMEM;
	}
	rm->options_len = json_dumpb(cfg->options, rm->options, n,
	    JSON_COMPACT);
	pthread_mutex_lock(&C.lock);
	rm->id = ++C.next_backend;
	pthread_mutex_unlock(&C.lock);
	if ((r = open_payload(rm, &o)) < 0) {
		remote_free(rm);
		return r;
	}
	r = call(FETCHER_OPEN, o.buf, o.len, &c);
	explicit_bzero(o.buf, o.len);
	if (r < 0) {
		remote_free(rm);
		return r;
	}
	pthread_mutex_lock(&C.lock);
	rm->next = C.remotes;
	C.remotes = rm;
	pthread_mutex_unlock(&C.lock);
	*impl = rm;
	return 0;
}

static int
proxy_fetch(void *impl, const struct backend_request *req,
    struct backend_value *out, char *errbuf, size_t errlen)
{
	struct remote *rm = impl;
	struct call c = { .want = FETCHER_VALUE, .val = out, .errbuf = errbuf,
	    .errlen = errlen };
	uint8_t buf[SMALL_PAYLOAD];
	struct wire_out o = { buf, sizeof(buf), 0, false };

	wire_put_u32(&o, rm->id);
	wire_put_str(&o, req->ref);
	wire_put_str(&o, req->field);
	wire_put_str(&o, req->version);
	if (o.err) {
		snprintf(errbuf, errlen, "reference too long");
		return -EINVAL;
	}
	return call(FETCHER_FETCH, buf, o.len, &c);
}

static int
proxy_list(void *impl, const char *prefix, char ***names, size_t *n,
    char *errbuf, size_t errlen)
{
	struct remote *rm = impl;
	struct call c = { .want = FETCHER_NAMES, .names = names, .n = n,
	    .errbuf = errbuf, .errlen = errlen };
	uint8_t buf[SMALL_PAYLOAD];
	struct wire_out o = { buf, sizeof(buf), 0, false };

	wire_put_u32(&o, rm->id);
	wire_put_str(&o, prefix);
	if (o.err) {
		snprintf(errbuf, errlen, "prefix too long");
		return -EINVAL;
	}
	return call(FETCHER_LIST, buf, o.len, &c);
}

static void
proxy_close(void *impl)
{
	struct remote *rm = impl, **rp;
	uint32_t id;

	if (!rm)
		return;
	pthread_mutex_lock(&C.lock);
	for (rp = &C.remotes; *rp; rp = &(*rp)->next)
		if (*rp == rm) {
			*rp = rm->next;
			break;
		}
	pthread_mutex_unlock(&C.lock);
	/* No reply awaited: the fetcher closes it once its jobs are done. */
	id = rm->id;	/* the payload: one u32, as wire_put_u32 writes it */
	pthread_mutex_lock(&C.send_lock);
	if (C.fd >= 0)
		(void)wire_send(C.fd, FETCHER_CLOSE, 0, &id, sizeof(id), -1);
	pthread_mutex_unlock(&C.send_lock);
	remote_free(rm);
}

const struct backend_ops fetcher_backend_ops = {
	.type = "remote",
	/* No validate: config checks use the real type's (backend_validate). */
	.open = proxy_open,
	.fetch = proxy_fetch,
	.list = proxy_list,
	.close = proxy_close,
};

int
fetcher_client_init(int fd, pid_t pid)
{
	C.fd = fd;
	C.pid = pid;
	backend_set_remote(&fetcher_backend_ops);
	return 0;
}

int
fetcher_start_reader(int extra_fd, int (*on_extra)(void *), void *arg)
{
	int r;

	if (C.threaded)
		return 0;
	if (pipe2(C.wake, O_CLOEXEC) != 0)
		return -errno;
	C.extra_fd = extra_fd;
	C.on_extra = on_extra;
	C.extra_arg = arg;
	if ((r = pthread_create(&C.reader, NULL, reader, NULL)) != 0) {
		close(C.wake[0]);
		close(C.wake[1]);
		return -r;
	}
	pthread_mutex_lock(&C.lock);
	C.threaded = true;
	pthread_mutex_unlock(&C.lock);
	return 0;
}

void
fetcher_attach(int fd, pid_t pid)
{
	struct remote *rm;
	struct wire_out o;
	unsigned n = 0;

	pthread_mutex_lock(&C.lock);
	if (C.fd >= 0)
		lost(-ECONNRESET);
	/*
	 * Open every live backend in the new fetcher before anyone else can
	 * write to it, so requests that follow find them.
	 */
	pthread_mutex_lock(&C.send_lock);
	for (rm = C.remotes; rm; rm = rm->next) {
		if (open_payload(rm, &o) == 0 &&
		    wire_send(fd, FETCHER_OPEN, 0, o.buf, o.len, -1) == 0)
			n++;
		if (o.buf)
			explicit_bzero(o.buf, o.len);
	}
	C.fd = fd;
	C.pid = pid;
	pthread_mutex_unlock(&C.send_lock);
	pthread_mutex_unlock(&C.lock);
	/* The reader may be asleep on the old one. */
	if (C.threaded)
		(void)!write(C.wake[1], "a", 1);
	log_info("fetcher process %d started; %u backend%s reopened in it",
	    (int)pid, n, n == 1 ? "" : "s");
}

pid_t
fetcher_pid(void)
{
	pid_t pid;

	pthread_mutex_lock(&C.lock);
	pid = C.pid;
	pthread_mutex_unlock(&C.lock);
	return pid;
}

void
fetcher_stop_reader(void)
{
	if (!C.threaded)
		return;
	(void)!write(C.wake[1], "x", 1);
	pthread_join(C.reader, NULL);
	close(C.wake[0]);
	close(C.wake[1]);
	pthread_mutex_lock(&C.lock);
	C.threaded = false;
	pthread_mutex_unlock(&C.lock);
}

void
fetcher_client_shutdown(void)
{
	fetcher_stop_reader();
	pthread_mutex_lock(&C.lock);
	if (C.fd >= 0) {
		pthread_mutex_lock(&C.send_lock);
		close(C.fd);
		C.fd = -1;
		pthread_mutex_unlock(&C.send_lock);
	}
	fail_all("the daemon is stopping");
	pthread_mutex_unlock(&C.lock);
}
