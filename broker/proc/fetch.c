/*
 * Runs in the fetcher process (the SANDBOX_FETCHER allow-list, as
 * privsep.user): the only process that talks to the backends. Its client
 * side, in the FUSE process, is fetcher.c.
 *
 * One thread reads requests in order: OPEN and CLOSE are done at once (so
 * a FETCH that follows an OPEN finds its backend), FETCH and LIST go to a
 * small pool of workers, since one slow backend must not hold up another.
 * Replies are written under one lock, whole.
 *
 * Secret bytes cross the socket only from and into locked bounce buffers
 * (secmem_bounce), wiped at once.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include <jansson.h>

#include <secretsfs/backend.h>
#include <secretsfs/fetcher.h>
#include <secretsfs/log.h>
#include <secretsfs/sandbox.h>
#include <secretsfs/secmem.h>
#include <secretsfs/wire.h>

#include "fetcher_int.h"

#define MAX_WORKERS	32

struct slot {
	uint32_t	 id;
	struct backend	*be;
	unsigned	 refs;		/* jobs using it, plus 1 while open */
};

struct job {
	uint32_t	 type;
	uint32_t	 id;
	uint32_t	 backend;
	char		 a[FIELD_MAX];	/* ref, or prefix */
	char		 b[FIELD_MAX];	/* field */
	char		 c[FIELD_MAX];	/* version */
	bool		 b_null, c_null;
	struct job	*next;
};

static struct {
	int		 fd;
	pthread_mutex_t	 send_lock;
	pthread_mutex_t	 lock;		/* slots and the queue */
	pthread_cond_t	 cond;
	struct slot	*slots;
	size_t		 nslots;
	struct job	*head, *tail;
	unsigned	 workers, idle;
} S = {
	.fd = -1,
	.send_lock = PTHREAD_MUTEX_INITIALIZER,
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

static void
srv_send(uint32_t type, uint32_t id, const void *p, size_t len)
{
	int r;

	pthread_mutex_lock(&S.send_lock);
	r = wire_send(S.fd, type, id, p, len, -1);
	pthread_mutex_unlock(&S.send_lock);
	/* The FUSE process is gone: nothing left to serve. */
	if (r < 0)
		_exit(0);
}

static void
srv_err(uint32_t id, int err, const char *msg)
{
	uint8_t buf[FIELD_MAX + 16];
	struct wire_out o = { buf, sizeof(buf), 0, false };
	char m[FIELD_MAX];

	snprintf(m, sizeof(m), "%s", msg ? msg : "");
	wire_put_u32(&o, (uint32_t)(err < 0 ? -err : err));
	wire_put_str(&o, m);
	srv_send(FETCHER_ERR, id, buf, o.len);
}

/* Backends report logins and renewals; the FUSE process audits them. */
static void
srv_auth(void *arg, const char *backend, const char *method,
    const char *action, bool ok, int err, long long ttl, const char *reason)
{
	uint8_t buf[4 * 512 + 64];
	struct wire_out o = { buf, sizeof(buf), 0, false };
	char s[4][512];

	(void)arg;
	snprintf(s[0], sizeof(s[0]), "%s", backend ? backend : "");
	snprintf(s[1], sizeof(s[1]), "%s", method ? method : "");
	snprintf(s[2], sizeof(s[2]), "%s", action ? action : "");
	snprintf(s[3], sizeof(s[3]), "%s", reason ? reason : "");
	wire_put_str(&o, s[0]);
	wire_put_str(&o, s[1]);
	wire_put_str(&o, s[2]);
	wire_put_u32(&o, ok);
	wire_put_u32(&o, (uint32_t)(err < 0 ? -err : err));
	wire_put_u64(&o, (uint64_t)ttl);
	wire_put_str(&o, reason ? s[3] : NULL);
	srv_send(FETCHER_AUTH, 0, buf, o.len);
}

static struct slot *
slot_find(uint32_t id)
{
	for (size_t i = 0; i < S.nslots; i++)
		if (S.slots[i].be && S.slots[i].id == id)
			return &S.slots[i];
	return NULL;
}

/* Take a reference on backend id, or NULL. */
static struct backend *
slot_get(uint32_t id)
{
	struct backend *be = NULL;
	struct slot *s;

	pthread_mutex_lock(&S.lock);
	if ((s = slot_find(id))) {
		s->refs++;
		be = s->be;
	}
	pthread_mutex_unlock(&S.lock);
	return be;
}

static void
slot_put(uint32_t id)
{
	struct backend *be = NULL;
	struct slot *s;

	pthread_mutex_lock(&S.lock);
	if ((s = slot_find(id)) && --s->refs == 0) {
		be = s->be;
		s->be = NULL;
	}
	pthread_mutex_unlock(&S.lock);
	backend_close(be);
}

static void
do_open(uint32_t id, struct wire_in *in)
{
	struct config_backend cb = { 0 };
	char name[FIELD_MAX], type[64], why[BACKEND_ERR_MAX] = "";
	uint32_t bid = wire_get_u32(in);
	struct backend *be = NULL;
	struct slot *s;
	const uint8_t *js;
	json_error_t je;
	size_t n;
	int r;

	wire_get_str(in, name, sizeof(name), NULL);
	wire_get_str(in, type, sizeof(type), NULL);
	js = wire_get_bytes(in, &n);
	if (in->err) {
		srv_err(id, EPROTO, "malformed OPEN request");
		return;
	}
	/* jansson allocates from the arena: the options may hold keys. */
	if (!(cb.options = json_loadb((const char *)js, n, 0, &je))) {
		srv_err(id, EINVAL, "the backend's options are not JSON");
		return;
	}
	cb.name = name;
	cb.type = type;
	cb.path = name;
	r = backend_open(&cb, &be, why, sizeof(why));
	json_decref(cb.options);
	if (r < 0) {
		srv_err(id, r, why[0] ? why : strerror(-r));
		return;
	}
	pthread_mutex_lock(&S.lock);
	for (s = S.slots; s < S.slots + S.nslots && s->be; s++)
		;
	if (s == S.slots + S.nslots) {
		struct slot *ns = realloc(S.slots, (S.nslots * 2 + 4) *
		    sizeof(*ns));

		if (!ns) {
			pthread_mutex_unlock(&S.lock);
			backend_close(be);
			srv_err(id, ENOMEM, "out of memory");
			return;
		}
		memset(ns + S.nslots, 0, (S.nslots + 4) * sizeof(*ns));
		S.slots = ns;
		s = S.slots + S.nslots;
		S.nslots = S.nslots * 2 + 4;
	}
	s->id = bid;
	s->be = be;
	s->refs = 1;
	pthread_mutex_unlock(&S.lock);
	srv_send(FETCHER_OK, id, NULL, 0);
}

static void
do_close(uint32_t id, struct wire_in *in)
{
	uint32_t bid = wire_get_u32(in);

	if (!in->err)
		slot_put(bid);
	if (id)
		srv_send(FETCHER_OK, id, NULL, 0);
}

static void
do_fetch(struct job *j, struct backend *be)
{
	struct backend_request req = {
		.ref = j->a,
		.field = j->b_null ? NULL : j->b,
		.version = j->c_null ? NULL : j->c,
	};
	struct backend_value v;
	char why[BACKEND_ERR_MAX];
	struct wire_out o;
	size_t cap;
	int r;

	if ((r = backend_fetch(be, &req, &v, why, sizeof(why))) < 0) {
		srv_err(j->id, r, why[0] ? why : strerror(-r));
		return;
	}
	cap = v.len + BACKEND_VERSION_MAX + 64;
	if (!(o.buf = secmem_bounce(cap))) {
		backend_value_clear(&v);
		srv_err(j->id, ENOMEM, "cannot lock a buffer for the answer");
		return;
	}
	o.cap = cap;
	o.len = 0;
	o.err = false;
	wire_put_str(&o, v.version);
	wire_put_u64(&o, (uint64_t)v.changed.tv_sec);
	wire_put_u64(&o, (uint64_t)v.changed.tv_nsec);
	wire_put_bytes(&o, v.data, v.len);
	backend_value_clear(&v);
	if (o.err)
		srv_err(j->id, EIO, "answer too large to pass on");
	else
		srv_send(FETCHER_VALUE, j->id, o.buf, o.len);
	explicit_bzero(o.buf, o.len);
}

static void
do_list(struct job *j, struct backend *be)
{
	char why[BACKEND_ERR_MAX], **names = NULL;
	struct wire_out o = { 0 };
	size_t n = 0, i, cap = 16;
	int r;

	if ((r = backend_list(be, j->a, &names, &n, why, sizeof(why))) < 0) {
		srv_err(j->id, r, why[0] ? why : strerror(-r));
		return;
	}
	for (i = 0; i < n; i++)
		cap += strlen(names[i]) + 4;
	if ((o.buf = malloc(cap))) {
		o.cap = cap;
		wire_put_u32(&o, (uint32_t)n);
		for (i = 0; i < n; i++)
			wire_put_str(&o, names[i]);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (!o.buf || o.err)
		srv_err(j->id, ENOMEM, "out of memory");
	else
		srv_send(FETCHER_NAMES, j->id, o.buf, o.len);
	free(o.buf);
}

static void *
worker(void *arg)
{
	struct backend *be;
	struct job *j;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&S.lock);
		S.idle++;
		while (!S.head)
			pthread_cond_wait(&S.cond, &S.lock);
		S.idle--;
		j = S.head;
		if (!(S.head = j->next))
			S.tail = NULL;
		pthread_mutex_unlock(&S.lock);
		if (!(be = slot_get(j->backend)))
			srv_err(j->id, EIO, "no such backend in the fetcher");
		else {
			if (j->type == FETCHER_FETCH)
				do_fetch(j, be);
			else
				do_list(j, be);
			slot_put(j->backend);
		}
		free(j);
		/* TLS, the HTTP body, the parser: each left bytes behind. */
		secmem_wipe_registers();
	}
	return NULL;
}

static void
enqueue(uint32_t type, uint32_t id, struct wire_in *in)
{
	struct job *j;
	pthread_t t;

	if (!(j = calloc(1, sizeof(*j)))) {
		srv_err(id, ENOMEM, "out of memory");
		return;
	}
	j->type = type;
	j->id = id;
	j->backend = wire_get_u32(in);
	wire_get_str(in, j->a, sizeof(j->a), NULL);
	if (type == FETCHER_FETCH) {
		wire_get_str(in, j->b, sizeof(j->b), &j->b_null);
		wire_get_str(in, j->c, sizeof(j->c), &j->c_null);
	}
	if (in->err) {
		free(j);
		srv_err(id, EPROTO, "malformed request");
		return;
	}
	pthread_mutex_lock(&S.lock);
	if (S.tail)
		S.tail->next = j;
	else
		S.head = j;
	S.tail = j;
	if (S.idle == 0 && S.workers < MAX_WORKERS &&
	    pthread_create(&t, NULL, worker, NULL) == 0) {
		pthread_detach(t);
		S.workers++;
	}
	pthread_cond_signal(&S.cond);
	pthread_mutex_unlock(&S.lock);
}

void
fetcher_serve(int fd)
{
	struct wire_hdr h;
	struct wire_in in;
	uint8_t *buf;
	int passfd, r;

	S.fd = fd;
	/* Here the backends are the real ones, whatever a parent routed. */
	backend_set_remote(NULL);
	backend_set_auth_hook(srv_auth, NULL);
	for (;;) {
		if ((r = wire_recv_hdr(fd, &h, &passfd)) < 0)
			break;
		if (passfd >= 0)
			close(passfd);
		/* Options may hold static keys: read them into locked memory. */
		if (!(buf = secmem_bounce(h.len + 1)))
			fatalx("fetcher: cannot lock a %" PRIu32 "-byte buffer",
			    h.len);
		if ((r = wire_recv_body(fd, buf, h.len)) < 0)
			break;
		in = (struct wire_in){ buf, h.len, 0, false };
		switch (h.type) {
		case FETCHER_OPEN:
			do_open(h.id, &in);
			break;
		case FETCHER_CLOSE:
			do_close(h.id, &in);
			break;
		case FETCHER_FETCH:
		case FETCHER_LIST:
			enqueue(h.type, h.id, &in);
			break;
		default:
			srv_err(h.id, EPROTO, "unknown request");
			break;
		}
		explicit_bzero(buf, h.len);
		secmem_wipe_registers();	/* options may hold static keys */
	}
	/* The FUSE process closed its end: it stopped, or it died. */
	_exit(0);
}

#ifdef SECRETSFS_TEST_HOOKS
/*
 * Test builds: SIGUSR2 makes the fetcher call unshare(2), which its
 * allow-list forbids, so a test can watch the kernel kill it alone.
 */
static void
trap(int sig)
{
	(void)sig;
	syscall(SYS_unshare, 0);
}
#endif

/* In the new fetcher: lock, give up root, sandbox, serve. */
void
fetcher_main(int fd, uid_t uid, gid_t gid, size_t locked_bytes)
{
	char why[512];
	sigset_t set;
	int r;

	log_procinit("fetch");
	prctl(PR_SET_NAME, "secretsfs-fetch", 0, 0, 0);
	if ((r = secmem_init_child(locked_bytes, why, sizeof(why))) < 0)
		fatalx("fetcher: %s", why);
	/*
	 * CAP_IPC_LOCK stays: each thread locks its bounce buffer later, and
	 * the arena alone may exceed RLIMIT_MEMLOCK.
	 */
	if ((r = sandbox_drop_user(uid, gid, 1ULL << CAP_IPC_LOCK)) < 0) {
		errno = -r;
		fatal("fetcher: cannot drop to uid %u", (unsigned)uid);
	}
#ifdef SECRETSFS_TEST_HOOKS
	signal(SIGUSR2, trap);
#endif
	/*
	 * SIGTERM, SIGINT and SIGHUP stay blocked, as in every process of
	 * the daemon: the fetcher ends when its socket does.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if ((r = sandbox_seccomp(SANDBOX_FETCHER, why, sizeof(why))) < 0)
		fatalx("fetcher: %s", why);
	fetcher_serve(fd);
}
