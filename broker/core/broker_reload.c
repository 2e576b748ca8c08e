/*
 * A reload reads the config file again and swaps in a view of it; the
 * values of secrets removed or redefined are forgotten. On any error the
 * running view stays.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <secretsfs/audit.h>
#include <secretsfs/broker.h>
#include <secretsfs/cfg.h>
#include <secretsfs/config.h>
#include <secretsfs/log.h>

#include "broker_int.h"

/* ------------------------------------------------------------------ */
/* Reload.                                                            */

static bool
str_differs(const char *a, const char *b)
{
	if (!a || !b)
		return a != b;
	return strcmp(a, b) != 0;
}

/* What a reload cannot change: say so, keep running as before. */
static void
warn_restart(const struct config *old, const struct config *new)
{
	static const char *const keys[] = { "mount", "memory", "audit",
	    "runtime", "control", "privsep", "metrics" };
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *a = json_object_get(old->restart, keys[i]);
		json_t *b = json_object_get(new->restart, keys[i]);

		if ((a || b) && (!a || !b || !json_equal(a, b)))
			log_warnx("reload: \"%s\" changed; it takes effect at the "
			    "next start", keys[i]);
	}
}

static int
audit_reload(struct broker *b, const char *file, int err, const char *reason,
    size_t nsecrets)
{
	struct audit_kv kv[] = {
		AUDIT_STR(AUDIT_F_CONFIG, file),
		AUDIT_NUM(AUDIT_F_OUTCOME, err ? AUDIT_OUTCOME_ERROR :
		    AUDIT_OUTCOME_OK),
		AUDIT_NUM(AUDIT_F_ERRNO, err),
		AUDIT_STR(AUDIT_F_REASON, reason),
		AUDIT_NUM(AUDIT_F_COUNT, (long long)nsecrets),
	};

	if (!b->audit)
		return 0;
	if (audit_event(b->audit, AUDIT_EV_RELOAD, NULL, kv,
	    sizeof(kv) / sizeof(kv[0])) < 0) {
		log_warnx("audit: cannot record the reload");
		return -EIO;
	}
	return 0;
}

/* Must cached values of old secret i be dropped for new secret j? */
static bool
secret_changed(const struct broker_view *ov, size_t i,
    const struct broker_view *nv, size_t j)
{
	const struct config_secret *a = &ov->cfg->secrets[i];
	const struct config_secret *b = &nv->cfg->secrets[j];

	return a->as != b->as || str_differs(a->ref, b->ref) ||
	    str_differs(a->field, b->field) ||
	    str_differs(a->version, b->version) ||
	    ov->backends[a->backend] != nv->backends[b->backend];
}

int
broker_reload(struct broker *b)
{
	struct broker_view *ov, *nv;
	struct cfg_err err;
	struct config *cfg;
	struct cache_limits lim;
	size_t i, added = 0, removed = 0, changed = 0;
	char msg[1024];
	ssize_t j;
	int r;

	log_info("reloading %s", b->config_file);
	if ((r = config_load(b->config_file, &cfg, &err)) < 0) {
		cfg_err_format(&err, b->config_file, msg, sizeof(msg));
		log_warnx("reload: %s; still running on the previous "
		    "configuration", msg);
		broker_count(&b->reload_errors);
		audit_reload(b, b->config_file, -r, "invalid configuration", 0);
		return r;
	}
	ov = broker_acquire(b);
	/*
	 * A SIGHUP for logrotate leaves the config as it was: nothing to
	 * swap, nothing to record.
	 */
	if (memcmp(ov->cfg->digest, cfg->digest, sizeof(cfg->digest)) == 0) {
		log_info("reload: %s is unchanged", b->config_file);
		broker_release(ov);
		config_free(cfg);
		return 0;
	}
	warn_restart(ov->cfg, cfg);
	if ((r = broker_view_new(b, cfg, ov, &nv, msg, sizeof(msg))) < 0) {
		log_warnx("reload: %s; still running on the previous "
		    "configuration", msg);
		broker_release(ov);
		broker_count(&b->reload_errors);
		audit_reload(b, b->config_file, -r, "a backend cannot be opened",
		    0);
		return r;
	}
	pthread_mutex_lock(&b->view_lock);
	b->view = nv;
	pthread_mutex_unlock(&b->view_lock);
	clock_gettime(CLOCK_REALTIME, &b->loaded);

	/* Values of secrets that are gone or redefined must not be served. */
	for (i = 0; i < ov->cfg->n_secrets; i++) {
		const char *name = ov->cfg->secrets[i].name;

		if ((j = broker_view_lookup(nv, name)) < 0)
			removed++;
		else if (secret_changed(ov, i, nv, (size_t)j))
			changed++;
		else
			continue;
		cache_forget_tree(b->cache, name, true);
		broker_holders_remove(b, name);
	}
	for (i = 0; i < nv->cfg->n_secrets; i++)
		if (broker_view_lookup(ov, nv->cfg->secrets[i].name) < 0)
			added++;
	for (i = 0; i < nv->cfg->n_backends; i++) {
		pthread_mutex_lock(&b->stat_lock);
		broker_bstat(b, nv->cfg->backends[i].name,
		    nv->cfg->backends[i].type);
		pthread_mutex_unlock(&b->stat_lock);
	}
	lim = broker_limits(nv->cfg);
	cache_set_limits(b->cache, &lim);
	/* Once for our acquire, once for the broker's own reference. */
	broker_release(ov);
	broker_release(ov);
	broker_count(&b->reloads);
	log_info("reloaded %s: %zu secrets (%zu added, %zu removed, %zu "
	    "redefined)", b->config_file, nv->cfg->n_secrets, added, removed,
	    changed);
	if (policy_rule_count(nv->cfg->policy) == 0)
		log_warnx("no access rules in the config: every secret is denied "
		    "to every caller");
	audit_reload(b, b->config_file, 0, NULL, nv->cfg->n_secrets);
	return 0;
}
