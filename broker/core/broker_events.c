/*
 * What happens to values and backends, into the log, the audit trail,
 * the filesystem and on_rotate; and the audit records of accesses and of
 * the daemon's life.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <secretsfs/audit.h>
#include <secretsfs/broker.h>
#include <secretsfs/clk.h>
#include <secretsfs/log.h>

#include "broker_int.h"

/* ------------------------------------------------------------------ */
/* Cache events: the log, the audit trail, the filesystem, on_rotate. */

void
broker_cache_event(void *arg, const struct cache_event *ev)
{
	struct broker *b = arg;
	struct broker_view *v = broker_acquire(b);
	const struct config_secret *s;
	const char *child = NULL, *backend = NULL;
	char name[NAME_CAP], ref[1024] = "";

	if ((s = broker_secret_of(v, ev->name, &child))) {
		broker_record_names(s, child, name, sizeof(name), ref,
		    sizeof(ref));
		backend = v->cfg->backends[s->backend].name;
	}
	switch (ev->type) {
	case CACHE_EV_ROTATING: {
		struct audit_rotate rot = {
			.secret = ev->name, .backend = backend,
			.ref = s ? ref : NULL,
			.old_version = ev->old_version,
			.new_version = ev->version,
		};

		log_info("secret %s: new version %s (was %s)", ev->name,
		    ev->version, ev->old_version);
		if (b->audit && audit_rotate(b->audit, &rot) < 0)
			log_warnx("audit: cannot record the rotation of %s",
			    ev->name);
		break;
	}
	case CACHE_EV_ROTATED:
		broker_holders_rotated(b, ev->name, ev->old_version);
		if (b->changed)
			b->changed(b->changed_arg, ev->name);
		if (s && s->on_rotate)
			broker_holders_signal(b, ev->name, ev->version,
			    s->on_rotate);
		break;
	case CACHE_EV_STALE:
	case CACHE_EV_EXPIRED: {
		bool expired = ev->type == CACHE_EV_EXPIRED;
		struct audit_stale st = {
			.secret = ev->name, .backend = backend,
			.ref = s ? ref : NULL, .version = ev->version,
			.expired = expired, .age_ms = ev->age_ms,
		};

		if (expired)
			broker_holders_expired(b, ev->name);
		if (expired)
			log_warnx("secret %s: no successful refresh for %lld s "
			    "past its refresh interval (cache.max_stale): version "
			    "%s dropped; reads fail with EIO until the backend "
			    "answers", ev->name, (long long)(v->cfg->max_stale_ms /
			    1000), ev->version);
		else
			log_warnx("secret %s: refresh failed; serving version %s "
			    "(fetched %lld s ago) while the backend is retried",
			    ev->name, ev->version, (long long)(ev->age_ms / 1000));
		if (b->audit && audit_stale(b->audit, &st) < 0)
			log_warnx("audit: cannot record the stale value of %s",
			    ev->name);
		break;
	}
	case CACHE_EV_RECOVERED:
		log_info("secret %s: the backend answers again; serving version "
		    "%s", ev->name, ev->version);
		break;
	case CACHE_EV_GONE:
		log_warnx("secret %s: the backend no longer has it; version %s "
		    "is served for %lld s more in case it is recreated",
		    ev->name, ev->version,
		    (long long)(v->cfg->delete_grace_ms / 1000));
		break;
	case CACHE_EV_REMOVED:
		log_warnx("secret %s: deleted in the backend: no longer served",
		    ev->name);
		if (b->changed)
			b->changed(b->changed_arg, ev->name);
		break;
	}
	broker_release(v);
}

/* Backends' logins and renewals, into the audit trail and status. */
void
broker_auth_event(void *arg, const char *backend, const char *method,
    const char *action, bool ok, int err, long long ttl, const char *reason)
{
	struct broker *b = arg;
	struct backend_stat *s;
	struct audit_auth au = {
		.backend = backend,
		.method = method,
		.action = action,
		.outcome = ok ? AUDIT_OUTCOME_OK : AUDIT_OUTCOME_ERROR,
		.err = err,
		.ttl = ttl,
		.reason = reason,
	};

	pthread_mutex_lock(&b->stat_lock);
	if ((s = broker_bstat(b, backend, ""))) {
		s->auth_known = true;
		s->auth_ok = ok;
		snprintf(s->auth_method, sizeof(s->auth_method), "%s",
		    method ? method : "");
		snprintf(s->auth_action, sizeof(s->auth_action), "%s",
		    action ? action : "");
		/* A failed renewal leaves the token granted before. */
		if (ok)
			s->auth_ttl = ttl;
		if (ok || !s->auth_at)
			s->auth_at = clk_mono_ms();
	}
	pthread_mutex_unlock(&b->stat_lock);
	if (b->audit && audit_auth(b->audit, &au) < 0)
		log_warnx("audit: cannot record a %s %s of backend %s", method,
		    action, backend);
}

/* ------------------------------------------------------------------ */
/* Audit records.                                                     */

static int
audit_result(struct broker *b, int r, const char *what)
{
	struct audit_stats st;

	if (r == 0)
		return 0;
	audit_get_stats(b->audit, &st);
	log_warnx("audit: cannot write the %s record: %s%s", what,
	    strerror(st.last_error ? st.last_error : -r),
	    audit_allow_on_failure(b->audit) ? " (allowed by on_failure)" :
	    "; refusing the access");
	return audit_allow_on_failure(b->audit) ? 0 : -EIO;
}

int
broker_audit_access(struct broker_view *v, const struct caller *c,
    size_t idx, const char *child, const char *rule,
    enum audit_outcome outcome, int err, const char *version)
{
	const struct config_secret *s = &v->cfg->secrets[idx];
	struct broker *b = v->b;
	char name[NAME_CAP], ref[1024];
	struct audit_access acc = {
		.secret = name,
		.backend = v->cfg->backends[s->backend].name,
		.ref = ref,
		.version = version,
		.rule = rule,
		.outcome = outcome,
		.err = err,
		.caller = c,
	};
	int r = 0;

	broker_record_names(s, child, name, sizeof(name), ref, sizeof(ref));
	if (b->audit)
		r = audit_result(b, audit_access(b->audit, &acc), "access");
	if (outcome == AUDIT_OUTCOME_DENY)
		broker_count(&b->denials);
	else if (outcome == AUDIT_OUTCOME_ERROR || r < 0)
		broker_count(&b->read_errors);
	else {
		broker_count(&b->reads);
		if (version)
			broker_holders_open(b, name, c, version);
	}
	return r;
}

int
broker_audit_refused(struct broker_view *v, const struct caller *c,
    size_t idx, const char *child, const char *rule, int err,
    const char *reason)
{
	const struct config_secret *s = &v->cfg->secrets[idx];
	struct broker *b = v->b;
	char name[NAME_CAP], ref[1024];
	struct audit_access acc = {
		.secret = name,
		.backend = v->cfg->backends[s->backend].name,
		.ref = ref,
		.rule = rule,
		.outcome = AUDIT_OUTCOME_DENY,
		.err = err,
		.caller = c,
		.reason = reason,
	};

	broker_count(&b->denials);
	if (!b->audit)
		return 0;
	broker_record_names(s, child, name, sizeof(name), ref, sizeof(ref));
	return audit_result(b, audit_access(b->audit, &acc), "access");
}

int
broker_audit_lookup_denied(struct broker_view *v, const struct caller *c,
    size_t idx, const char *child, const char *rule)
{
	const struct config_secret *s = &v->cfg->secrets[idx];
	struct broker *b = v->b;
	char name[NAME_CAP], ref[1024];
	struct audit_access acc = {
		.secret = name,
		.backend = v->cfg->backends[s->backend].name,
		.ref = ref,
		.rule = rule,
		.outcome = AUDIT_OUTCOME_DENY,
		.err = v->cfg->deny_errno,
		.caller = c,
		.reason = "not allowed",
	};

	broker_count(&b->denials);
	if (!b->audit)
		return 0;
	broker_record_names(s, child, name, sizeof(name), ref, sizeof(ref));
	return audit_result(b, audit_lookup_denied(b->audit, &acc),
	    "lookup_denied");
}

int
broker_audit_missing(struct broker_view *v, const struct caller *c,
    const char *name, const char *rule)
{
	struct broker *b = v->b;
	char buf[NAME_CAP];
	struct audit_access acc = {
		.secret = buf,
		.rule = rule,
		.outcome = AUDIT_OUTCOME_DENY,
		.err = ENOENT,
		.caller = c,
		.reason = "no such secret",
	};

	if (!b->audit)
		return 0;
	/* Bounded as broker_record_names() bounds a secret's name. */
	snprintf(buf, sizeof(buf), "%s", name);
	return audit_result(b, audit_lookup_denied(b->audit, &acc),
	    "lookup_denied");
}

void
broker_audit_reopen(struct broker *b)
{
	struct broker_view *v;
	int r;

	if (!b->audit)
		return;
	v = broker_acquire(b);
	if ((r = audit_reopen(b->audit)) < 0)
		log_warnx("audit: cannot reopen %s: %s", v->cfg->audit->file,
		    strerror(-r));
	else
		log_info("audit: reopened %s", v->cfg->audit->file);
	broker_release(v);
}

int
broker_audit_repair(struct broker *b, pid_t pid, uid_t uid, gid_t gid,
    const char *target, int err, const char *step)
{
	struct audit_kv kv[] = {
		AUDIT_STR(AUDIT_F_TARGET, target),
		AUDIT_NUM(AUDIT_F_OUTCOME, err ? AUDIT_OUTCOME_ERROR :
		    AUDIT_OUTCOME_OK),
		AUDIT_NUM(AUDIT_F_ERRNO, err),
		AUDIT_STR(AUDIT_F_REASON, step),
	};
	struct caller c;
	bool known;

	if (!b->audit)
		return 0;
	/* The container whose bind it was (it may be gone by now). */
	known = broker_identify(b, pid, uid, gid, &c) == 0;
	return audit_result(b, audit_event(b->audit, AUDIT_EV_REPAIR,
	    known ? &c : NULL, kv, sizeof(kv) / sizeof(kv[0])), "repair");
}

int
broker_audit_fetcher(struct broker *b, bool started, pid_t pid, int status,
    unsigned restart_ms)
{
	char why[AUDIT_REASON_MAX];
	struct audit_kv kv[] = {
		AUDIT_STR(AUDIT_F_ACTION, started ? "start" : "exit"),
		AUDIT_NUM(AUDIT_F_OUTCOME, started ? AUDIT_OUTCOME_OK :
		    AUDIT_OUTCOME_ERROR),
		AUDIT_STR(AUDIT_F_REASON, why),
	};

	if (!b->audit)
		return 0;
	if (started)
		snprintf(why, sizeof(why), "fetcher pid %d", (int)pid);
	else if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "fetcher pid %d killed by signal %d%s;"
		    " restart in %u ms", (int)pid, WTERMSIG(status),
		    WTERMSIG(status) == SIGSYS ? " (seccomp)" : "", restart_ms);
	else
		snprintf(why, sizeof(why), "fetcher pid %d exited with status "
		    "%d; restart in %u ms", (int)pid, WEXITSTATUS(status),
		    restart_ms);
	return audit_result(b, audit_event(b->audit, AUDIT_EV_FETCHER, NULL,
	    kv, sizeof(kv) / sizeof(kv[0])), "fetcher");
}

