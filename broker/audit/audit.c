/*
 * audit: the writer of the tamper-evident audit trail: the chain, the
 * flusher and the API the daemon calls. See include/secretsfs/audit.h for
 * the record format, the MAC and the rotation rules.
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <secretsfs/audit.h>
#include <secretsfs/clk.h>
#include <secretsfs/secmem.h>

#include "audit_int.h"

int
audit_emit(struct audit *a, const struct rec *rc)
{
	char		 mac[AUDIT_MAC_HEX + 1];
	char		 stack[1024];
	struct sbuf	 body = { stack, 0, sizeof(stack), stack, false };
	int		 r;

	r = audit_rec_body(a, rc, &body);
	pthread_mutex_lock(&a->lock);
	if (r == 0)
		r = audit_rec_line_locked(a, &body, &a->line, mac);
	if (r == 0)
		r = audit_file_append_locked(a, a->line.p, a->line.len);
	if (r == 0) {
		a->seq++;
		memcpy(a->prev, mac, sizeof(a->prev));
		a->st.records++;
		a->dirty = true;
		if (a->flush_ms == 0) {
			if (fdatasync(a->fd) < 0) {
				/* The line is in the chain; only its sync failed. */
				a->st.failures++;
				a->st.last_error = errno;
				r = -EIO;
			} else
				a->dirty = false;
		}
		audit_file_copies_locked(a, a->line.p, a->line.len);
		/* No new, empty file on the way out. */
		if (a->max_size != 0 && a->size >= a->max_size &&
		    rc->ev != AUDIT_EV_STOP)
			audit_file_rotate_locked(a);
	} else {
		a->st.failures++;
		a->st.last_error = -r;
		r = -EIO;
	}
	/* A record grown past the usual size does not keep its buffer. */
	if (a->line.cap > 4 * sizeof(stack)) {
		free(a->line.p);
		memset(&a->line, 0, sizeof(a->line));
	}
	pthread_mutex_unlock(&a->lock);
	if (body.stack == NULL)
		free(body.p);
	return r;
}

/* ------------------------------------------------------------------ */
/* Flushing                                                           */

static void *
flusher(void *arg)
{
	struct audit	*a = arg;
	struct timespec	 dl;
	int		 fd;

	pthread_mutex_lock(&a->lock);
	while (!a->stopping) {
		dl = clk_deadline(CLOCK_MONOTONIC, a->flush_ms);
		while (!a->stopping &&
		    pthread_cond_timedwait(&a->cond, &a->lock, &dl) != ETIMEDOUT)
			;
		/* A caller gone quiet still gets its summary in time. */
		if (!a->stopping && a->limit) {
			pthread_mutex_unlock(&a->lock);
			audit_limit_sweep(a, false);
			pthread_mutex_lock(&a->lock);
		}
		if (a->stopping || !a->dirty)
			continue;
		/* Sync a dup, outside the lock: writers must not wait on disk. */
		fd = fcntl(a->fd, F_DUPFD_CLOEXEC, 0);
		a->dirty = false;
		pthread_mutex_unlock(&a->lock);
		if (fd >= 0) {
			(void)fdatasync(fd);
			close(fd);
		}
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

static int
start_flusher(struct audit *a)
{
	sigset_t	all, old;
	int		r;

	if ((r = clk_cond_init(&a->cond)) < 0)
		return r;
	/* Signals are the daemon's main thread's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&a->flusher, NULL, flusher, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		pthread_cond_destroy(&a->cond);
		return -r;
	}
	a->flusher_running = true;
	return 0;
}

int
audit_start(struct audit *a)
{
	if (!a || a->flush_ms == 0 || a->flusher_running)
		return 0;
	return start_flusher(a);
}

/* ------------------------------------------------------------------ */
/* The writer's API                                                   */

static void
self_caller(struct caller *c)
{
	memset(c, 0, sizeof(*c));
	c->pid = getpid();
	c->uid = geteuid();
	c->gid = getegid();
	(void)prctl(PR_GET_NAME, c->comm, 0, 0, 0);
	c->comm[sizeof(c->comm) - 1] = '\0';
	c->runtime = IDENTITY_RUNTIME_HOST;
}

static int
self_event(struct audit *a, enum audit_event_type ev)
{
	struct caller	self;
	struct rec	rc = { .ev = ev, .with_caller = true, .who = &self };

	self_caller(&self);
	return audit_emit(a, &rc);
}

static void
audit_free(struct audit *a)
{
	if (a->flusher_running) {
		pthread_mutex_lock(&a->lock);
		a->stopping = true;
		pthread_cond_signal(&a->cond);
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->flusher, NULL);
		pthread_cond_destroy(&a->cond);
	}
	if (a->fd >= 0) {
		(void)fdatasync(a->fd);
		close(a->fd);
	}
	if (a->log_fd >= 0)
		close(a->log_fd);
	pthread_mutex_destroy(&a->lock);
	audit_limit_free(a->limit);
	EVP_MAC_CTX_free(a->mac);
	free(a->line.p);
	audit_key_free(a->key);
	free(a->path);
	free(a->host);
	free(a->syslog_path);
	free(a);
}

int
audit_open(const struct audit_config *cfg, struct audit **out, char *errbuf,
    size_t errlen)
{
	struct audit	*a;
	struct stat	 sb;
	char		 host[256];
	int		 r;

	*out = NULL;
	if (cfg->file == NULL || cfg->key_file == NULL) {
		snprintf(errbuf, errlen, "audit: file and key_file are required");
		return -EINVAL;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL)
		goto oom;
	a->fd = a->log_fd = -1;
	pthread_mutex_init(&a->lock, NULL);
	a->on_failure = cfg->on_failure;
	a->flush_ms = cfg->flush_interval_ms;
	a->max_size = cfg->max_size;
	a->to_syslog = cfg->syslog;
	a->to_stdout = cfg->to_stdout;
	memcpy(a->prev, AUDIT_ZERO_MAC, sizeof(a->prev));
	if (cfg->host_name == NULL) {
		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
	} else
		snprintf(host, sizeof(host), "%s", cfg->host_name);
	if ((a->path = strdup(cfg->file)) == NULL ||
	    (a->host = strdup(host)) == NULL ||
	    (cfg->syslog_socket != NULL &&
	    (a->syslog_path = strdup(cfg->syslog_socket)) == NULL))
		goto oom;

	if ((r = audit_key_load(cfg->key_file, &a->key, errbuf, errlen)) < 0)
		goto fail;
	if ((cfg->denied_per_caller > 0 || cfg->reserve > 0) &&
	    (a->limit = audit_limit_new(cfg->denied_per_caller,
	    cfg->denied_interval_ms, cfg->reserve)) == NULL)
		goto oom;
	/* The writer's own copy, keyed once: a record only re-initialises it. */
	if ((a->mac = EVP_MAC_CTX_dup(a->key->ctx)) == NULL)
		goto oom;
	if ((r = audit_file_open(a->path, &a->fd, &sb)) < 0) {
		snprintf(errbuf, errlen, "audit file %s: %s", a->path,
		    r == -EINVAL ? "not a regular file" : strerror(-r));
		goto fail;
	}
	a->size = sb.st_size;
	if (sb.st_size > 0) {
		struct audit_line al;

		r = audit_file_tail(a->key, a->fd, sb.st_size, &al, a->path, errbuf,
		    errlen);
		if (r < 0)
			goto fail;
		a->seq = al.seq;
		memcpy(a->prev, al.mac, sizeof(a->prev));
	} else {
		audit_file_sync_dir(a->path);
		audit_file_tail_siblings(a);
	}

	if (a->to_syslog)
		(void)audit_file_syslog_connect(a);	/* retried at each record */
	if ((r = self_event(a, AUDIT_EV_START)) < 0) {
		snprintf(errbuf, errlen, "audit file %s: cannot write the "
		    "start record: %s", a->path, strerror(a->st.last_error));
		goto fail;
	}
	*out = a;
	return 0;
oom:
	snprintf(errbuf, errlen, "audit: %s", strerror(ENOMEM));
	r = -ENOMEM;
fail:
	if (a != NULL)
		audit_free(a);
	return r;
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	/* What was only counted is told before the trail ends. */
	audit_limit_sweep(a, true);
	(void)self_event(a, AUDIT_EV_STOP);
	audit_free(a);
}

bool
audit_allow_on_failure(const struct audit *a)
{
	return a->on_failure == AUDIT_ON_FAILURE_ALLOW;
}

static int
access_like(struct audit *a, enum audit_event_type ev,
    const struct audit_access *acc)
{
	struct audit_kv	kv[] = {
		AUDIT_STR(AUDIT_F_SECRET, acc->secret),
		AUDIT_STR(AUDIT_F_BACKEND, acc->backend),
		AUDIT_STR(AUDIT_F_REF, acc->ref),
		AUDIT_STR(AUDIT_F_VERSION, acc->version),
		AUDIT_NUM(AUDIT_F_OUTCOME, acc->outcome),
		AUDIT_NUM(AUDIT_F_ERRNO, acc->err),
		AUDIT_STR(AUDIT_F_RULE, acc->rule),
		AUDIT_STR(AUDIT_F_REASON, acc->reason),
	};
	struct rec	rc = { .ev = ev, .with_caller = true, .who = acc->caller };
	size_t		i;

	if ((unsigned)acc->outcome >= AUDIT_OUTCOME__MAX)
		return -EINVAL;
	/*
	 * A denial may be only counted (audit_limit.c); an allowed access or
	 * an error is always written in full, or fails.
	 */
	if (acc->outcome == AUDIT_OUTCOME_DENY) {
		if (audit_limit_denied(a, acc->caller, acc->secret) == 0)
			return 0;
	} else
		audit_limit_sweep(a, false);
	for (i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		if (kv[i].field != AUDIT_F_REASON || kv[i].str != NULL)
			rc.slot[kv[i].field] = &kv[i];
	return audit_emit(a, &rc);
}

int
audit_access(struct audit *a, const struct audit_access *acc)
{
	return access_like(a, AUDIT_EV_ACCESS, acc);
}

int
audit_lookup_denied(struct audit *a, const struct audit_access *acc)
{
	return access_like(a, AUDIT_EV_LOOKUP_DENIED, acc);
}

int
audit_event(struct audit *a, enum audit_event_type ev,
    const struct caller *who, const struct audit_kv *kv, size_t n)
{
	struct rec	rc = { .ev = ev, .with_caller = who != NULL, .who = who };
	size_t		i;

	if ((unsigned)ev >= AUDIT_EV__MAX || ev == AUDIT_EV_START ||
	    ev == AUDIT_EV_STOP)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if ((unsigned)kv[i].field >= AUDIT_F__MAX ||
		    rc.slot[kv[i].field] != NULL)
			return -EINVAL;
		if (audit_field_is_outcome(kv[i].field) &&
		    (kv[i].num < 0 || kv[i].num >= AUDIT_OUTCOME__MAX))
			return -EINVAL;
		rc.slot[kv[i].field] = &kv[i];
	}
	return audit_emit(a, &rc);
}

int
audit_rotate(struct audit *a, const struct audit_rotate *r)
{
	struct audit_kv kv[] = {
		AUDIT_STR(AUDIT_F_SECRET, r->secret),
		AUDIT_STR(AUDIT_F_BACKEND, r->backend),
		AUDIT_STR(AUDIT_F_REF, r->ref),
		AUDIT_STR(AUDIT_F_OLD_VERSION, r->old_version),
		AUDIT_STR(AUDIT_F_NEW_VERSION, r->new_version),
	};

	return audit_event(a, AUDIT_EV_ROTATE, NULL, kv,
	    sizeof(kv) / sizeof(kv[0]));
}

int
audit_backend_error(struct audit *a, const struct audit_backend_error *e)
{
	struct audit_kv kv[] = {
		AUDIT_STR(AUDIT_F_SECRET, e->secret),
		AUDIT_STR(AUDIT_F_BACKEND, e->backend),
		AUDIT_STR(AUDIT_F_REF, e->ref),
		AUDIT_NUM(AUDIT_F_OUTCOME, AUDIT_OUTCOME_ERROR),
		AUDIT_NUM(AUDIT_F_ERRNO, e->err),
		AUDIT_NUM(AUDIT_F_STATUS, e->status),
		AUDIT_STR(AUDIT_F_REASON, e->reason),
	};

	return audit_event(a, AUDIT_EV_BACKEND_ERROR, NULL, kv,
	    sizeof(kv) / sizeof(kv[0]));
}

int
audit_auth(struct audit *a, const struct audit_auth *au)
{
	struct audit_kv kv[] = {
		AUDIT_STR(AUDIT_F_BACKEND, au->backend),
		AUDIT_STR(AUDIT_F_METHOD, au->method),
		AUDIT_STR(AUDIT_F_ACTION, au->action),
		AUDIT_NUM(AUDIT_F_OUTCOME, au->outcome),
		AUDIT_NUM(AUDIT_F_ERRNO, au->err),
		AUDIT_NUM(AUDIT_F_TTL, au->ttl),
		AUDIT_STR(AUDIT_F_REASON, au->reason),
	};

	return audit_event(a, AUDIT_EV_AUTH, NULL, kv,
	    sizeof(kv) / sizeof(kv[0]));
}

int
audit_stale(struct audit *a, const struct audit_stale *s)
{
	struct audit_kv kv[] = {
		AUDIT_STR(AUDIT_F_SECRET, s->secret),
		AUDIT_STR(AUDIT_F_BACKEND, s->backend),
		AUDIT_STR(AUDIT_F_REF, s->ref),
		AUDIT_STR(AUDIT_F_VERSION, s->version),
		AUDIT_STR(AUDIT_F_ACTION, s->expired ? "expired" : "served"),
		AUDIT_NUM(AUDIT_F_AGE_MS, s->age_ms),
	};

	return audit_event(a, AUDIT_EV_STALE, NULL, kv,
	    sizeof(kv) / sizeof(kv[0]));
}

int
audit_reopen(struct audit *a)
{
	int	r;

	pthread_mutex_lock(&a->lock);
	r = audit_file_switch_locked(a);
	pthread_mutex_unlock(&a->lock);
	return r;
}

int
audit_flush(struct audit *a)
{
	int	r = 0;

	pthread_mutex_lock(&a->lock);
	if (fdatasync(a->fd) < 0)
		r = -errno;
	else
		a->dirty = false;
	pthread_mutex_unlock(&a->lock);
	return r;
}

void
audit_get_stats(struct audit *a, struct audit_stats *st)
{
	pthread_mutex_lock(&a->lock);
	*st = a->st;
	st->seq = a->seq;
	memcpy(st->mac, a->prev, sizeof(st->mac));
	st->file_size = a->size;
	pthread_mutex_unlock(&a->lock);
}
