/*
 * The broker glues config, backends and cache. The name index is an
 * open-addressing table built once from the config: lookups happen on
 * every path walk, so they must not scan a list of 10,000 names.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include <secretsfs/backend.h>
#include <secretsfs/broker.h>
#include <secretsfs/engine.h>
#include <secretsfs/log.h>

/* Identity lookups are cached per (pid, start time) this long. */
#define IDENTITY_CACHE_ENTRIES	4096
#define IDENTITY_CACHE_TTL_MS	5000

/* The last listing of an "as": "prefix" secret. */
struct listing {
	char		**names;
	size_t		  n;
	int64_t		  due;		/* monotonic ms */
};

struct broker {
	struct config		*cfg;
	pthread_mutex_t		 list_lock;
	struct listing		*listings;	/* one per secret */
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

/*
 * A fetch that brings a version other than the cached one is a rotation:
 * log and audit it with both versions.
 */
static void
note_version(struct broker *b, const struct config_secret *s,
    const char *name, const char *ref, const char *version)
{
	struct audit_rotate rot;
	struct cache_snap *old;

	if (cache_peek(b->cache, name, &old) < 0)
		return;		/* a first fetch, not a rotation */
	if (strcmp(old->version, version) != 0) {
		log_info("secret %s: new version %s (was %s)", name, version,
		    old->version);
		rot = (struct audit_rotate){
			.secret = name,
			.backend = b->cfg->backends[s->backend].name,
			.ref = ref,
			.old_version = old->version,
			.new_version = version,
		};
		if (b->audit && audit_rotate(b->audit, &rot) < 0)
			log_warnx("audit: cannot record the rotation of %s", name);
	}
	cache_put(old);
}

/*
 * The cache's fetch callback: name -> config entry -> backend. A file of a
 * directory secret is cached as "secret/file": a key of the secret's JSON
 * value ("as": "directory") or the secret ref/file ("as": "prefix").
 */
static int
fetch(void *arg, const char *name, struct backend_value *out, char *errbuf,
    size_t errlen)
{
	struct broker *b = arg;
	const struct config_secret *s;
	struct backend_request req;
	const char *slash = strchr(name, '/');
	char top[NAME_MAX + 1], ref[1024];
	ssize_t i;
	int r;

	snprintf(top, sizeof(top), "%.*s", slash ? (int)(slash - name) :
	    (int)strlen(name), name);
	if ((i = broker_lookup(b, top)) < 0) {
		snprintf(errbuf, errlen, "not in the configuration");
		return -ENOENT;
	}
	s = &b->cfg->secrets[i];
	req.ref = s->ref;
	req.field = s->field;
	req.version = s->version;
	if (slash && s->as == CONFIG_AS_DIRECTORY)
		req.field = slash + 1;
	else if (slash && s->as == CONFIG_AS_PREFIX) {
		snprintf(ref, sizeof(ref), "%s/%s", s->ref, slash + 1);
		req.ref = ref;
	} else if (s->as == CONFIG_AS_DIRECTORY)
		req.field = NULL;	/* the whole object, to list its keys */
	r = backend_fetch(b->backends[s->backend], &req, out, errbuf, errlen);
	if (r == 0)
		note_version(b, s, name, req.ref, out->version);
	if (r < 0) {
		log_warnx("secret %s: backend %s: %s", name,
		    b->cfg->backends[s->backend].name,
		    errbuf[0] ? errbuf : strerror(-r));
		if (b->audit) {
			struct audit_backend_error ae = {
				.backend = b->cfg->backends[s->backend].name,
				.secret = name, .ref = req.ref, .err = -r,
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

/* Backends' logins and renewals, into the audit trail. */
static void
audit_auth_event(void *arg, const char *backend, const char *method,
    const char *action, bool ok, int err, long long ttl, const char *reason)
{
	struct broker *b = arg;
	struct audit_auth au = {
		.backend = backend,
		.method = method,
		.action = action,
		.outcome = ok ? AUDIT_OUTCOME_OK : AUDIT_OUTCOME_ERROR,
		.err = err,
		.ttl = ttl,
		.reason = reason,
	};

	if (b->audit && audit_auth(b->audit, &au) < 0)
		log_warnx("audit: cannot record a %s %s of backend %s", method,
		    action, backend);
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
	pthread_mutex_init(&b->list_lock, NULL);
	if (!(b->backends = calloc(cfg->n_backends, sizeof(*b->backends))) ||
	    !(b->listings = calloc(cfg->n_secrets + 1, sizeof(*b->listings)))) {
		r = -ENOMEM;
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
	backend_set_auth_hook(audit_auth_event, b);
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
	backend_set_auth_hook(NULL, NULL);
	audit_close(b->audit);
	engine_free(b->engine);
	identity_cache_free(b->ids);
	cache_free(b->cache);
	if (b->backends)
		for (i = 0; i < b->cfg->n_backends; i++)
			backend_close(b->backends[i]);
	free(b->backends);
	if (b->listings)
		for (i = 0; i < b->cfg->n_secrets; i++)
			broker_names_free(b->listings[i].names, b->listings[i].n);
	free(b->listings);
	pthread_mutex_destroy(&b->list_lock);
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
broker_get_child(struct broker *b, size_t idx, const char *child,
    struct cache_snap **out)
{
	const struct config_secret *s = &b->cfg->secrets[idx];
	char name[2 * NAME_MAX + 2];

	snprintf(name, sizeof(name), "%s/%s", s->name, child);
	return cache_get(b->cache, name, s->refresh_ms, out);
}

void
broker_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static bool
valid_child(const char *s, size_t len)
{
	if (len == 0 || len > NAME_MAX || (len == 1 && s[0] == '.') ||
	    (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '/' || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* Append a copy of name to *names when it is a valid file name. */
static int
add_name(char ***names, size_t *n, const char *name, size_t len)
{
	char **grown;

	if (!valid_child(name, len))
		return 0;
	if (!(grown = realloc(*names, (*n + 1) * sizeof(**names))))
		return -ENOMEM;
	*names = grown;
	if (!(grown[*n] = strndup(name, len)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

/* The keys of a directory secret's JSON object value. */
static int
object_keys(struct broker *b, size_t idx, char ***names, size_t *n)
{
	struct cache_snap *snap;
	const char *key;
	json_t *doc, *v;
	int r = 0;

	if ((r = broker_get(b, idx, &snap)) < 0)
		return r;
	/* Parsed in the arena: the values next to the keys are secret. */
	doc = json_loadb((const char *)snap->data, snap->len, 0, NULL);
	cache_put(snap);
	if (!json_is_object(doc)) {
		log_warnx("secret %s: \"as\": \"directory\" but the value is "
		    "not a JSON object", b->cfg->secrets[idx].name);
		json_decref(doc);
		return -EIO;
	}
	json_object_foreach(doc, key, v)
		if ((r = add_name(names, n, key, strlen(key))) < 0)
			break;
	json_decref(doc);
	return r;
}

/* The names a prefix secret's backend lists, cached for `refresh`. */
static int
prefix_names(struct broker *b, size_t idx, char ***names, size_t *n)
{
	const struct config_secret *s = &b->cfg->secrets[idx];
	struct listing *l = &b->listings[idx];
	char ebuf[BACKEND_ERR_MAX], **got = NULL;
	size_t ngot = 0, i;
	struct timespec ts;
	int64_t now;
	int r = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	pthread_mutex_lock(&b->list_lock);
	if (!l->names || now >= l->due) {
		r = backend_list(b->backends[s->backend], s->ref, &got, &ngot,
		    ebuf, sizeof(ebuf));
		if (r == 0 || r == -ENOENT) {
			broker_names_free(l->names, l->n);
			l->names = NULL;
			l->n = 0;
			/* Sub-folders end in '/': only the secrets are files. */
			for (i = 0; i < ngot && r >= 0; i++)
				r = add_name(&l->names, &l->n, got[i],
				    strlen(got[i]));
			l->due = now + s->refresh_ms;
			r = r < 0 ? r : 0;
		} else {
			log_warnx("secret %s: cannot list %s: %s", s->name,
			    s->ref, ebuf[0] ? ebuf : strerror(-r));
			/* The last listing stays good while the backend is away. */
			if (l->names)
				r = 0;
			else if (r != -EACCES)
				r = -EIO;
		}
		broker_names_free(got, ngot);
	}
	for (i = 0; r == 0 && i < l->n; i++)
		r = add_name(names, n, l->names[i], strlen(l->names[i]));
	pthread_mutex_unlock(&b->list_lock);
	return r;
}

int
broker_children(struct broker *b, size_t idx, char ***names, size_t *n)
{
	int r;

	*names = NULL;
	*n = 0;
	switch (b->cfg->secrets[idx].as) {
	case CONFIG_AS_DIRECTORY:
		r = object_keys(b, idx, names, n);
		break;
	case CONFIG_AS_PREFIX:
		r = prefix_names(b, idx, names, n);
		break;
	default:
		return -ENOTDIR;
	}
	if (r < 0) {
		broker_names_free(*names, *n);
		*names = NULL;
		*n = 0;
	}
	return r;
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

/* The name and reference a record gives a secret or a file of one. */
static void
record_names(const struct config_secret *s, const char *child, char *name,
    size_t nlen, char *ref, size_t rlen)
{
	if (!child) {
		snprintf(name, nlen, "%s", s->name);
		snprintf(ref, rlen, "%s", s->ref);
		return;
	}
	snprintf(name, nlen, "%s/%s", s->name, child);
	if (s->as == CONFIG_AS_PREFIX)
		snprintf(ref, rlen, "%s/%s", s->ref, child);
	else
		snprintf(ref, rlen, "%s#%s", s->ref, child);
}

int
broker_audit_access(struct broker *b, const struct caller *c, size_t idx,
    const char *child, const char *rule, enum audit_outcome outcome, int err,
    const char *version)
{
	const struct config_secret *s = &b->cfg->secrets[idx];
	char name[2 * NAME_MAX + 2], ref[1024];
	struct audit_access acc = {
		.secret = name,
		.backend = b->cfg->backends[s->backend].name,
		.ref = ref,
		.version = version,
		.rule = rule,
		.outcome = outcome,
		.err = err,
		.caller = c,
	};

	if (!b->audit)
		return 0;
	record_names(s, child, name, sizeof(name), ref, sizeof(ref));
	return audit_result(b, audit_access(b->audit, &acc), "access");
}

int
broker_audit_lookup_denied(struct broker *b, const struct caller *c,
    size_t idx, const char *child, const char *rule)
{
	const struct config_secret *s = &b->cfg->secrets[idx];
	char name[2 * NAME_MAX + 2], ref[1024];
	struct audit_access acc = {
		.secret = name,
		.backend = b->cfg->backends[s->backend].name,
		.ref = ref,
		.rule = rule,
		.outcome = AUDIT_OUTCOME_DENY,
		.err = b->cfg->deny_errno,
		.caller = c,
	};

	if (!b->audit)
		return 0;
	record_names(s, child, name, sizeof(name), ref, sizeof(ref));
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
