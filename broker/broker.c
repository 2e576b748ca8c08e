/*
 * The broker glues config, backends and cache. The name index is an
 * open-addressing table built once from the config: lookups happen on
 * every path walk, so they must not scan a list of 10,000 names.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secretsfs/backend.h>
#include <secretsfs/broker.h>
#include <secretsfs/engine.h>
#include <secretsfs/log.h>

/* Identity lookups are cached per (pid, start time) this long. */
#define IDENTITY_CACHE_ENTRIES	4096
#define IDENTITY_CACHE_TTL_MS	5000

struct broker {
	struct config		*cfg;
	struct backend		**backends;
	struct cache		*cache;
	struct identity_cache	*ids;
	struct engine		*engine;
	struct audit		*audit;
	ssize_t		*index;		/* slot -> secret index, -1 empty */
	size_t		 nslots;
};

static uint64_t
hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static int
build_index(struct broker *b)
{
	size_t i, slot;

	for (b->nslots = 16; b->nslots < 2 * b->cfg->n_secrets; b->nslots *= 2)
		;
	if (!(b->index = malloc(b->nslots * sizeof(*b->index))))
		return -ENOMEM;
	memset(b->index, 0xff, b->nslots * sizeof(*b->index));
	for (i = 0; i < b->cfg->n_secrets; i++) {
		slot = hash(b->cfg->secrets[i].name) & (b->nslots - 1);
		while (b->index[slot] >= 0)
			slot = (slot + 1) & (b->nslots - 1);
		b->index[slot] = (ssize_t)i;
	}
	return 0;
}

ssize_t
broker_lookup(const struct broker *b, const char *name)
{
	size_t slot = hash(name) & (b->nslots - 1);
	ssize_t i;

	while ((i = b->index[slot]) >= 0) {
		if (strcmp(b->cfg->secrets[i].name, name) == 0)
			return i;
		slot = (slot + 1) & (b->nslots - 1);
	}
	return -1;
}

/* The cache's fetch callback: name -> config entry -> backend. */
static int
fetch(void *arg, const char *name, struct backend_value *out, char *errbuf,
    size_t errlen)
{
	struct broker *b = arg;
	const struct config_secret *s;
	struct backend_request req;
	ssize_t i;
	int r;

	if ((i = broker_lookup(b, name)) < 0) {
		snprintf(errbuf, errlen, "not in the configuration");
		return -ENOENT;
	}
	s = &b->cfg->secrets[i];
	req.ref = s->ref;
	req.field = s->field;
	req.version = s->version;
	r = backend_fetch(b->backends[s->backend], &req, out, errbuf, errlen);
	if (r < 0) {
		log_warnx("secret %s: backend %s: %s", name,
		    b->cfg->backends[s->backend].name,
		    errbuf[0] ? errbuf : strerror(-r));
		if (b->audit) {
			struct audit_backend_error ae = {
				.backend = b->cfg->backends[s->backend].name,
				.secret = name, .ref = s->ref, .err = -r,
				.reason = strerror(-r),
			};

			if (audit_backend_error(b->audit, &ae) < 0)
				log_warnx("audit: cannot record a backend error");
		}
		/* Readers see three outcomes; anything else is an I/O error. */
		if (r != -ENOENT && r != -EACCES)
			r = -EIO;
	}
	return r;
}

int
broker_new(struct config *cfg, struct broker **out, char *errbuf,
    size_t errlen)
{
	struct cache_limits lim = {
		.max_bytes = cfg->cache_max_bytes,
		.negative_ttl_ms = cfg->negative_ttl_ms,
		.max_stale_ms = 3600 * 1000,
	};
	struct broker *b;
	size_t i;
	int r;

	*out = NULL;
	if (!(b = calloc(1, sizeof(*b)))) {
		config_free(cfg);
		return -ENOMEM;
	}
	b->cfg = cfg;
	if (!(b->backends = calloc(cfg->n_backends, sizeof(*b->backends)))) {
		r = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < cfg->n_backends; i++) {
		char why[BACKEND_ERR_MAX] = "";

		if ((r = backend_open(&cfg->backends[i], &b->backends[i], why,
		    sizeof(why))) < 0) {
			snprintf(errbuf, errlen, "backend %s: %s",
			    cfg->backends[i].name, why[0] ? why : strerror(-r));
			goto fail;
		}
	}
	if ((r = build_index(b)) < 0 ||
	    !(b->cache = cache_new(&lim, fetch, b)) ||
	    !(b->ids = identity_cache_new(IDENTITY_CACHE_ENTRIES,
	    IDENTITY_CACHE_TTL_MS))) {
		r = r < 0 ? r : -ENOMEM;
		snprintf(errbuf, errlen, "%s", strerror(-r));
		goto fail;
	}
	if (cfg->runtime_socket && !(b->engine = engine_new(cfg->runtime_socket))) {
		r = -ENOMEM;
		snprintf(errbuf, errlen, "runtime.socket: %s", strerror(-r));
		goto fail;
	}
	if (cfg->audit) {
		char why[512] = "";

		if ((r = audit_open(cfg->audit, &b->audit, why, sizeof(why))) < 0) {
			snprintf(errbuf, errlen, "audit: %s", why[0] ? why :
			    strerror(-r));
			goto fail;
		}
	} else
		log_warnx("no \"audit\" section in the config: accesses are not "
		    "audited");
	if (policy_rule_count(cfg->policy) == 0)
		log_warnx("no access rules in the config: every secret is denied "
		    "to every caller");
	*out = b;
	return 0;
fail:
	broker_free(b);
	return r;
}

void
broker_free(struct broker *b)
{
	size_t i;

	if (!b)
		return;
	audit_close(b->audit);
	engine_free(b->engine);
	identity_cache_free(b->ids);
	cache_free(b->cache);
	if (b->backends)
		for (i = 0; i < b->cfg->n_backends; i++)
			backend_close(b->backends[i]);
	free(b->backends);
	free(b->index);
	config_free(b->cfg);
	free(b);
}

const struct config *
broker_config(const struct broker *b)
{
	return b->cfg;
}

struct cache *
broker_cache(struct broker *b)
{
	return b->cache;
}

int
broker_get(struct broker *b, size_t idx, struct cache_snap **out)
{
	const struct config_secret *s = &b->cfg->secrets[idx];

	return cache_get(b->cache, s->name, s->refresh_ms, out);
}

int
broker_peek(struct broker *b, size_t idx, struct cache_snap **out)
{
	return cache_peek(b->cache, b->cfg->secrets[idx].name, out);
}

int
broker_identify(struct broker *b, pid_t pid, uid_t uid, gid_t gid,
    struct caller *out)
{
	int r;

	if ((r = identity_lookup(b->ids, pid, uid, gid, out)) < 0)
		return r;
	/* Unknown metadata only means name/image/label rules cannot match. */
	if (b->engine && out->container_id[0] &&
	    (r = engine_enrich(b->engine, out)) < 0)
		log_debug("runtime metadata for container %.12s: %s",
		    out->container_id, strerror(-r));
	return 0;
}

bool
broker_allowed(struct broker *b, const struct caller *c, size_t idx,
    struct policy_decision *d)
{
	policy_decide(b->cfg->policy, c, b->cfg->secrets[idx].name, d);
	return d->allowed;
}

int
broker_deny_errno(const struct broker *b)
{
	return b->cfg->deny_errno;
}

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
broker_audit_access(struct broker *b, const struct caller *c, size_t idx,
    const char *rule, enum audit_outcome outcome, int err, const char *version)
{
	const struct config_secret *s = &b->cfg->secrets[idx];
	struct audit_access acc = {
		.secret = s->name,
		.backend = b->cfg->backends[s->backend].name,
		.ref = s->ref,
		.version = version,
		.rule = rule,
		.outcome = outcome,
		.err = err,
		.caller = c,
	};

	if (!b->audit)
		return 0;
	return audit_result(b, audit_access(b->audit, &acc), "access");
}

int
broker_audit_lookup_denied(struct broker *b, const struct caller *c,
    size_t idx, const char *rule)
{
	const struct config_secret *s = &b->cfg->secrets[idx];
	struct audit_access acc = {
		.secret = s->name,
		.backend = b->cfg->backends[s->backend].name,
		.ref = s->ref,
		.rule = rule,
		.outcome = AUDIT_OUTCOME_DENY,
		.err = b->cfg->deny_errno,
		.caller = c,
	};

	if (!b->audit)
		return 0;
	return audit_result(b, audit_lookup_denied(b->audit, &acc),
	    "lookup_denied");
}

void
broker_audit_reopen(struct broker *b)
{
	int r;

	if (!b->audit)
		return;
	if ((r = audit_reopen(b->audit)) < 0)
		log_warnx("audit: cannot reopen %s: %s", b->cfg->audit->file,
		    strerror(-r));
	else
		log_info("audit: reopened %s", b->cfg->audit->file);
}
