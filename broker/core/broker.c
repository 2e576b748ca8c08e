/*
 * The broker glues config, backends and cache. The name index is an
 * open-addressing table built once per config: lookups happen on every
 * path walk, so they must not scan a list of 10,000 names.
 *
 * A reload builds a whole new view (config, index, backends; a backend
 * whose definition did not change is shared with the old view, so its
 * token and connections survive) and swaps it in under view_lock. The old
 * view lives on until the last request that pinned it releases it.
 *
 * broker_open() is the whole open() of the filesystem, so that the
 * adapter only translates its answer: what the pipeline decides and
 * records is testable without a mount.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <secretsfs/clk.h>
#include <secretsfs/backend.h>
#include <secretsfs/broker.h>
#include <secretsfs/engine.h>
#include <secretsfs/kubelet.h>
#include <secretsfs/log.h>
#include <secretsfs/perm.h>
#include <secretsfs/sched.h>
#include <secretsfs/secmem.h>

#include "broker_int.h"

/* Identity lookups are cached per (pid, start time) this long. */
#define IDENTITY_CACHE_ENTRIES	4096
#define IDENTITY_CACHE_TTL_MS	5000
#define REFRESH_THREADS		4

/* ------------------------------------------------------------------ */
/* Views.                                                             */

static int
build_index(struct broker_view *v)
{
	size_t i, slot;

	for (v->nslots = 16; v->nslots < 2 * v->cfg->n_secrets; v->nslots *= 2)
		;
	if (!(v->index = malloc(v->nslots * sizeof(*v->index))))
		return -ENOMEM;
	memset(v->index, 0xff, v->nslots * sizeof(*v->index));
	for (i = 0; i < v->cfg->n_secrets; i++) {
		slot = broker_hash(v->cfg->secrets[i].name) & (v->nslots - 1);
		while (v->index[slot] >= 0)
			slot = (slot + 1) & (v->nslots - 1);
		v->index[slot] = (ssize_t)i;
	}
	return 0;
}

ssize_t
broker_view_lookup(const struct broker_view *v, const char *name)
{
	size_t slot = broker_hash(name) & (v->nslots - 1);
	ssize_t i;

	while ((i = v->index[slot]) >= 0) {
		if (strcmp(v->cfg->secrets[i].name, name) == 0)
			return i;
		slot = (slot + 1) & (v->nslots - 1);
	}
	return -1;
}

static void
shared_release(struct shared_backend *sb)
{
	if (!sb || __atomic_sub_fetch(&sb->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	backend_close(sb->be);
	free(sb->type);
	json_decref(sb->opts);
	free(sb);
}

static void
view_free(struct broker_view *v)
{
	size_t i;

	if (!v)
		return;
	if (v->backends)
		for (i = 0; i < v->cfg->n_backends; i++)
			shared_release(v->backends[i]);
	free(v->backends);
	if (v->listings)
		for (i = 0; i < v->cfg->n_secrets; i++)
			broker_names_free(v->listings[i].names,
			    v->listings[i].n);
	free(v->listings);
	pthread_mutex_destroy(&v->list_lock);
	free(v->index);
	config_free(v->cfg);
	free(v);
}

/*
 * A view of cfg (taken over, also on failure). Backends defined exactly
 * as in old (same name, type and options) are shared with it; the others
 * are opened.
 */
int
broker_view_new(struct broker *b, struct config *cfg, struct broker_view *old,
    struct broker_view **out, char *errbuf, size_t errlen)
{
	struct broker_view *v;
	size_t i, j;
	int r;

	*out = NULL;
	if (!(v = calloc(1, sizeof(*v)))) {
		config_free(cfg);
		return -ENOMEM;
	}
	v->refs = 1;
	v->b = b;
	v->cfg = cfg;
	pthread_mutex_init(&v->list_lock, NULL);
	if (!(v->backends = calloc(cfg->n_backends + 1, sizeof(*v->backends))) ||
	    !(v->listings = calloc(cfg->n_secrets + 1, sizeof(*v->listings))) ||
	    (r = build_index(v)) < 0) {
		snprintf(errbuf, errlen, "%s", strerror(ENOMEM));
		view_free(v);
		return -ENOMEM;
	}
	for (i = 0; i < cfg->n_backends; i++) {
		const struct config_backend *cb = &cfg->backends[i];
		struct shared_backend *sb = NULL;
		char why[BACKEND_ERR_MAX] = "";

		for (j = 0; old && j < old->cfg->n_backends; j++)
			if (strcmp(old->cfg->backends[j].name, cb->name) == 0 &&
			    strcmp(old->backends[j]->type, cb->type) == 0 &&
			    json_equal(old->backends[j]->opts, cb->options)) {
				sb = old->backends[j];
				__atomic_add_fetch(&sb->refs, 1, __ATOMIC_ACQ_REL);
				break;
			}
		if (!sb) {
			if (!(sb = calloc(1, sizeof(*sb))) ||
			    !(sb->type = strdup(cb->type))) {
				free(sb);
				view_free(v);
				snprintf(errbuf, errlen, "%s", strerror(ENOMEM));
				return -ENOMEM;
			}
			sb->refs = 1;
			sb->opts = json_incref(cb->options);
			if ((r = backend_open(cb, &sb->be, why, sizeof(why))) < 0) {
				snprintf(errbuf, errlen, "backend %s: %s", cb->name,
				    why[0] ? why : strerror(-r));
				shared_release(sb);
				view_free(v);
				return r;
			}
		}
		v->backends[i] = sb;
	}
	*out = v;
	return 0;
}

struct broker_view *
broker_acquire(struct broker *b)
{
	struct broker_view *v;

	pthread_mutex_lock(&b->view_lock);
	v = b->view;
	__atomic_add_fetch(&v->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&b->view_lock);
	return v;
}

void
broker_release(struct broker_view *v)
{
	if (v && __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) == 0)
		view_free(v);
}

const struct config *
broker_view_config(const struct broker_view *v)
{
	return v->cfg;
}

const struct config *
broker_config(const struct broker *b)
{
	return b->view->cfg;
}

struct cache *
broker_cache(struct broker *b)
{
	return b->cache;
}

/* ------------------------------------------------------------------ */
/* Fetching.                                                          */

/* The name and reference a record gives a secret or a file of one. */
void
broker_record_names(const struct config_secret *s, const char *child,
    char *name, size_t nlen, char *ref, size_t rlen)
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

/* The configured secret a cache name belongs to, in v; NULL if none. */
const struct config_secret *
broker_secret_of(const struct broker_view *v, const char *name,
    const char **child)
{
	const char *slash = strchr(name, '/');
	char top[NAME_MAX + 1];
	ssize_t i;

	if (slash && slash - name > NAME_MAX)
		return NULL;
	snprintf(top, sizeof(top), "%.*s", slash ? (int)(slash - name) :
	    (int)strlen(name), name);
	if ((i = broker_view_lookup(v, top)) < 0)
		return NULL;
	if (child)
		*child = slash ? slash + 1 : NULL;
	return &v->cfg->secrets[i];
}

/*
 * The backend request of a cache name, and the field the cache selects
 * from its answer (NULL: the whole value). A file of a directory secret
 * is cached as "secret/file": a key of the secret's JSON value ("as":
 * "directory", the same request as the secret's) or the secret ref/file
 * ("as": "prefix", a request of its own).
 */
static void
request_of(const struct config_secret *s, const char *child,
    struct backend_request *req, char *ref, size_t rlen)
{
	req->ref = s->ref;
	req->field = s->field;
	req->version = s->version;
	if (child && s->as == CONFIG_AS_DIRECTORY)
		req->field = child;
	else if (child && s->as == CONFIG_AS_PREFIX) {
		snprintf(ref, rlen, "%s/%s", s->ref, child);
		req->ref = ref;
	} else if (s->as == CONFIG_AS_DIRECTORY)
		req->field = NULL;	/* the whole object, to list its keys */
}

/*
 * The cache's source of a name: one backend answer per backend,
 * reference and version, so that a directory's keys and every field of
 * one reference are fetched, refreshed and rotated together.
 */
static int
resolve(void *arg, const char *name, char *key, size_t klen, char *field,
    size_t flen, bool *has_field)
{
	struct broker *b = arg;
	struct broker_view *v = broker_acquire(b);
	const struct config_secret *s;
	struct backend_request req;
	const char *child = NULL, *bname;
	char ref[1024];
	int n, r = 0;

	if (!(s = broker_secret_of(v, name, &child))) {
		broker_release(v);
		return -ESTALE;
	}
	request_of(s, child, &req, ref, sizeof(ref));
	bname = v->cfg->backends[s->backend].name;
	/* Newlines separate the parts: none may hold one. */
	if (strchr(bname, '\n') || (req.version && strchr(req.version, '\n')))
		r = -ESTALE;
	else if ((n = snprintf(key, klen, "%s\n%s%s\n%s", bname,
	    req.version ? "@" : "", req.version ? req.version : "",
	    req.ref)) < 0 || (size_t)n >= klen)
		r = -ENAMETOOLONG;
	*has_field = req.field != NULL;
	if (req.field && snprintf(field, flen, "%s", req.field) >= (int)flen)
		r = -ENAMETOOLONG;
	broker_release(v);
	return r;
}

/* The cache could not select a field from a value: said once per value. */
static void
select_failed(void *arg, const char *name, int err, const char *why)
{
	struct broker *b = arg;
	struct broker_view *v = broker_acquire(b);
	const struct config_secret *s;
	const char *child = NULL, *backend = "?";
	char rname[NAME_CAP], ref[1024] = "";

	if ((s = broker_secret_of(v, name, &child))) {
		backend = v->cfg->backends[s->backend].name;
		broker_record_names(s, child, rname, sizeof(rname), ref,
		    sizeof(ref));
	}
	log_warnx("secret %s: backend %s: %s", name, backend,
	    why[0] ? why : strerror(-err));
	broker_holders_fetched(b, name, why[0] ? why : strerror(-err));
	if (b->audit) {
		struct audit_backend_error ae = {
			.backend = backend, .secret = name,
			.ref = s ? ref : NULL, .err = -err,
			.reason = strerror(-err),
		};

		if (audit_backend_error(b->audit, &ae) < 0)
			log_warnx("audit: cannot record a backend error");
	}
	broker_release(v);
}

/* name's field is there again: its last error goes (status). */
static void
selected(void *arg, const char *name)
{
	broker_holders_fetched(arg, name, NULL);
}

/*
 * The cache's fetch callback: name -> config entry -> backend, for the
 * whole answer of the name's source (the cache selects the field).
 */
static int
fetch(void *arg, const char *name, struct backend_value *out, char *errbuf,
    size_t errlen)
{
	struct broker *b = arg;
	struct broker_view *v = broker_acquire(b);
	const struct config_secret *s;
	const struct config_backend *cb;
	struct backend_request req;
	uint64_t t0;
	const char *child = NULL;
	char ref[1024];
	int r;

	if (!(s = broker_secret_of(v, name, &child))) {
		snprintf(errbuf, errlen, "not in the configuration");
		broker_release(v);
		return -ESTALE;
	}
	cb = &v->cfg->backends[s->backend];
	request_of(s, child, &req, ref, sizeof(ref));
	req.field = NULL;
	t0 = clk_mono_us();
	r = backend_fetch(v->backends[s->backend]->be, &req, out, errbuf,
	    errlen);
	if (r < 0) {
		log_warnx("secret %s: backend %s: %s", name, cb->name,
		    errbuf[0] ? errbuf : strerror(-r));
		if (b->audit) {
			struct audit_backend_error ae = {
				.backend = cb->name,
				.secret = name, .ref = req.ref, .err = -r,
				.reason = strerror(-r),
			};

			if (audit_backend_error(b->audit, &ae) < 0)
				log_warnx("audit: cannot record a backend error");
		}
		broker_holders_fetched(b, name, errbuf[0] ? errbuf :
		    strerror(-r));
		/* Readers see three outcomes; anything else is an I/O error. */
		if (r != -ENOENT && r != -EACCES)
			r = -EIO;
	} else
		broker_holders_fetched(b, name, NULL);
	broker_bstat_note(b, cb->name, cb->type, r,
	    (double)(clk_mono_us() - t0) / 1e6, errbuf);
	broker_release(v);
	return r;
}

/* ------------------------------------------------------------------ */
/* Lifecycle and reads.                                               */

struct cache_limits
broker_limits(const struct config *cfg)
{
	struct cache_limits lim = {
		.max_bytes = cfg->cache_max_bytes,
		.negative_ttl_ms = cfg->negative_ttl_ms,
		.max_stale_ms = cfg->max_stale_ms,
		.delete_grace_ms = cfg->delete_grace_ms,
	};
	size_t locked = secmem_locked_bytes();

	/* The arena was sized at start; a reload cannot grow it. */
	if (locked && lim.max_bytes > locked / 2)
		lim.max_bytes = locked / 2;
	return lim;
}

int
broker_new(struct config *cfg, struct broker **out, char *errbuf,
    size_t errlen)
{
	struct cache_limits lim = broker_limits(cfg);
	struct broker *b;
	char kwhy[256] = "";
	size_t i;
	int r;

	*out = NULL;
	if (!(b = calloc(1, sizeof(*b)))) {
		config_free(cfg);
		return -ENOMEM;
	}
	pthread_mutex_init(&b->view_lock, NULL);
	pthread_mutex_init(&b->stat_lock, NULL);
	pthread_mutex_init(&b->track_lock, NULL);
	clock_gettime(CLOCK_REALTIME, &b->started);
	b->loaded = b->started;
	/* fuse_daemonize() moves us to "/": reloads need the whole path. */
	if (!(b->config_file = realpath(cfg->file, NULL)) &&
	    !(b->config_file = strdup(cfg->file))) {
		config_free(cfg);
		broker_free(b);
		return -ENOMEM;
	}
	if (cfg->audit) {
		char why[512] = "";

		if ((r = audit_open(cfg->audit, &b->audit, why, sizeof(why))) < 0) {
			snprintf(errbuf, errlen, "audit: %s", why[0] ? why :
			    strerror(-r));
			config_free(cfg);
			goto fail;
		}
	} else
		log_warnx("no \"audit\" section in the config: accesses are not "
		    "audited");
	backend_set_auth_hook(broker_auth_event, b);
	if ((r = broker_view_new(b, cfg, NULL, &b->view, errbuf, errlen)) < 0)
		goto fail;
	for (i = 0; i < cfg->n_backends; i++) {
		pthread_mutex_lock(&b->stat_lock);
		broker_bstat(b, cfg->backends[i].name, cfg->backends[i].type);
		pthread_mutex_unlock(&b->stat_lock);
	}
	if (!(b->cache = cache_new(&lim, fetch, b)) ||
	    !(b->ids = identity_cache_new(IDENTITY_CACHE_ENTRIES,
	    IDENTITY_CACHE_TTL_MS))) {
		r = -ENOMEM;
		snprintf(errbuf, errlen, "%s", strerror(-r));
		goto fail;
	}
	cache_set_events(b->cache, broker_cache_event, b);
	/* runtime is read at start only: a reload does not change it. */
	identity_cache_set_trust(b->ids, &(struct identity_trust){
	    .rootless = cfg->runtime_rootless });
	cache_set_source(b->cache, &(const struct cache_source){
	    .resolve = resolve, .select_failed = select_failed,
	    .selected = selected }, b);
	if (cfg->runtime_socket && !(b->engine = engine_new(cfg->runtime_socket))) {
		r = -ENOMEM;
		snprintf(errbuf, errlen, "runtime.socket: %s", strerror(-r));
		goto fail;
	}
	if (cfg->kubelet && (r = kubelet_new(cfg->kubelet, &b->kubelet, kwhy,
	    sizeof(kwhy))) < 0) {
		snprintf(errbuf, errlen, "runtime.kubelet: %s", kwhy);
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

int
broker_start(struct broker *b)
{
	int r;

	if (b->sched)
		return 0;
	if ((r = audit_start(b->audit)) < 0)
		return r;
	return sched_start(b->cache, REFRESH_THREADS, &b->sched);
}

void
broker_stop(struct broker *b)
{
	sched_stop(b->sched);
	b->sched = NULL;
}

void
broker_free(struct broker *b)
{
	if (!b)
		return;
	broker_stop(b);
	backend_set_auth_hook(NULL, NULL);
	audit_close(b->audit);
	engine_free(b->engine);
	kubelet_free(b->kubelet);
	identity_cache_free(b->ids);
	/* The cache's fetches use the view: free the cache first. */
	cache_free(b->cache);
	broker_release(b->view);
	broker_holders_free(b);
	free(b->bstats);
	free(b->config_file);
	pthread_mutex_destroy(&b->view_lock);
	pthread_mutex_destroy(&b->stat_lock);
	pthread_mutex_destroy(&b->track_lock);
	free(b);
}

unsigned
broker_cache_flags(const struct config_secret *s)
{
	return s->on_rotate ? CACHE_WATCHED : 0;
}

int
broker_get(struct broker_view *v, size_t idx, struct cache_snap **out)
{
	const struct config_secret *s = &v->cfg->secrets[idx];

	return cache_get_ex(v->b->cache, s->name, s->refresh_ms,
	    broker_cache_flags(s), out);
}

int
broker_get_child(struct broker_view *v, size_t idx, const char *child,
    struct cache_snap **out)
{
	const struct config_secret *s = &v->cfg->secrets[idx];
	char name[NAME_CAP];

	snprintf(name, sizeof(name), "%s/%s", s->name, child);
	return cache_get_ex(v->b->cache, name, s->refresh_ms,
	    broker_cache_flags(s), out);
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
object_keys(struct broker_view *v, size_t idx, char ***names, size_t *n)
{
	struct cache_snap *snap;
	const char *key;
	json_t *doc, *val;
	int r = 0;

	if ((r = broker_get(v, idx, &snap)) < 0)
		return r;
	/* Parsed in the arena: the values next to the keys are secret. */
	doc = json_loadb((const char *)snap->data, snap->len, 0, NULL);
	cache_put(snap);
	if (!json_is_object(doc)) {
		log_warnx("secret %s: \"as\": \"directory\" but the value is "
		    "not a JSON object", v->cfg->secrets[idx].name);
		json_decref(doc);
		return -EIO;
	}
	json_object_foreach(doc, key, val)
		if ((r = add_name(names, n, key, strlen(key))) < 0)
			break;
	json_decref(doc);
	return r;
}

/* The names a prefix secret's backend lists, cached for `refresh`. */
static int
prefix_names(struct broker_view *v, size_t idx, char ***names, size_t *n)
{
	const struct config_secret *s = &v->cfg->secrets[idx];
	const struct config_backend *cb = &v->cfg->backends[s->backend];
	struct listing *l = &v->listings[idx];
	char ebuf[BACKEND_ERR_MAX] = "", **got = NULL;
	size_t ngot = 0, i;
	uint64_t t0;
	int64_t now;
	int r = 0;

	now = clk_mono_ms();
	pthread_mutex_lock(&v->list_lock);
	if (!l->names || now >= l->due) {
		t0 = clk_mono_us();
		r = backend_list(v->backends[s->backend]->be, s->ref, &got,
		    &ngot, ebuf, sizeof(ebuf));
		broker_bstat_note(v->b, cb->name, cb->type, r == 0 ||
		    r == -ENOENT || r == -EACCES ? r : -EIO,
		    (double)(clk_mono_us() - t0) / 1e6, ebuf);
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
	pthread_mutex_unlock(&v->list_lock);
	return r;
}

int
broker_children(struct broker_view *v, size_t idx, char ***names, size_t *n)
{
	int r;

	*names = NULL;
	*n = 0;
	switch (v->cfg->secrets[idx].as) {
	case CONFIG_AS_DIRECTORY:
		r = object_keys(v, idx, names, n);
		break;
	case CONFIG_AS_PREFIX:
		r = prefix_names(v, idx, names, n);
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
broker_peek(struct broker_view *v, size_t idx, struct cache_snap **out)
{
	return cache_peek(v->b->cache, v->cfg->secrets[idx].name, out);
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
	/* The kubelet's answer decides; an unknown pod is denied (policy). */
	if (b->kubelet)
		kubelet_enrich(b->kubelet, out);
	/*
	 * The engine's State.Pid must agree; a stale one is asked again. The
	 * answer holds for this process (the identity cache's entry) until
	 * the entry expires; without a State.Pid it is asked again next time.
	 */
	if (!b->engine || out->engine_checked || out->container_id[0] == '\0')
		return 0;
	if ((r = identity_verify_engine(NULL, out, false)) == -ESTALE) {
		engine_forget(b->engine, out->container_id);
		engine_enrich(b->engine, out);
		r = identity_verify_engine(NULL, out, true);
	}
	if (r == 0 && (out->container_pid > 0 || out->refused[0] != '\0')) {
		out->engine_checked = true;
		(void)identity_cache_note(b->ids, out);
	}
	return r;
}

bool
broker_allowed(struct broker_view *v, const struct caller *c, size_t idx,
    struct policy_decision *d)
{
	policy_decide(v->cfg->policy, c, v->cfg->secrets[idx].name, d);
	return d->allowed;
}

int
broker_deny_errno(const struct broker_view *v)
{
	return v->cfg->deny_errno;
}


/* ------------------------------------------------------------------ */
/* The open pipeline.                                                 */

bool
broker_decide(struct broker_view *v, pid_t pid, uid_t uid, gid_t gid,
    size_t idx, struct caller *c, struct policy_decision *d)
{
	if (broker_identify(v->b, pid, uid, gid, c) < 0) {
		memset(c, 0, sizeof(*c));
		c->pid = pid;
		c->uid = uid;
		c->gid = gid;
		d->allowed = false;
		d->rule_id = POLICY_DEFAULT_DENY_ID;
		return false;
	}
	return broker_allowed(v, c, idx, d);
}

bool
broker_decide_missing(struct broker_view *v, pid_t pid, uid_t uid, gid_t gid,
    const char *name, struct caller *c, struct policy_decision *d)
{
	if (broker_identify(v->b, pid, uid, gid, c) < 0) {
		memset(c, 0, sizeof(*c));
		c->pid = pid;
		c->uid = uid;
		c->gid = gid;
	}
	policy_decide(v->cfg->policy, c, name, d);
	if (d->allowed) {
		d->allowed = false;
		d->rule_id = POLICY_DEFAULT_DENY_ID;
		d->rule_index = -1;
	}
	return false;
}

int
broker_open(struct broker_view *v, const struct broker_open_req *req,
    struct cache_snap **out)
{
	const struct config_secret *s = &v->cfg->secrets[req->idx];
	struct policy_decision d;
	struct cache_snap *snap;
	struct caller c;
	int r;

	*out = NULL;
	if (!req->child && s->as != CONFIG_AS_FILE)
		return -EISDIR;
	if ((req->flags & O_ACCMODE) != O_RDONLY ||
	    (req->flags & (O_TRUNC | O_APPEND | O_CREAT)))
		return -EROFS;
	/*
	 * Every open is decided and recorded before the reply: the record is
	 * written first, so a reader never holds a value the trail lacks.
	 */
	if (!broker_decide(v, req->pid, req->uid, req->gid, req->idx, &c,
	    &d)) {
		r = broker_deny_errno(v);
		if (broker_audit_access(v, &c, req->idx, req->child, d.rule_id,
		    AUDIT_OUTCOME_DENY, r, NULL) < 0)
			return -EIO;
		return -r;
	}
	/*
	 * The file's mode, as the kernel's default_permissions applied it,
	 * but here, where the refusal is recorded: an allow by the rules
	 * still needs the mode's read bit for this caller.
	 */
	if (perm_allows(req->pid, req->uid, req->gid, s->mode, s->uid, s->gid,
	    PERM_READ) < 0) {
		if (broker_audit_refused(v, &c, req->idx, req->child, d.rule_id,
		    EACCES, "mode") < 0)
			return -EIO;
		return -EACCES;
	}
	if (req->child)
		r = broker_get_child(v, req->idx, req->child, &snap);
	else
		r = broker_get(v, req->idx, &snap);
	if (r < 0) {
		if (broker_audit_access(v, &c, req->idx, req->child, d.rule_id,
		    AUDIT_OUTCOME_ERROR, -r, NULL) < 0)
			return -EIO;
		return r;
	}
	if (broker_audit_access(v, &c, req->idx, req->child, d.rule_id,
	    AUDIT_OUTCOME_ALLOW, 0, snap->version) < 0) {
		cache_put(snap);
		return -EIO;
	}
	*out = snap;
	return 0;
}

/* ------------------------------------------------------------------ */
/* What the filesystem tells the broker.                              */

void
broker_set_changed_hook(struct broker *b, broker_changed_fn fn, void *arg)
{
	b->changed = fn;
	b->changed_arg = arg;
}

void
broker_set_mounted(struct broker *b, const char *mountpoint)
{
	pthread_mutex_lock(&b->stat_lock);
	b->mounted = mountpoint != NULL;
	if (mountpoint)
		snprintf(b->mountpoint, sizeof(b->mountpoint), "%s", mountpoint);
	pthread_mutex_unlock(&b->stat_lock);
}

void
broker_note_open(struct broker *b, int delta)
{
	__atomic_add_fetch(&b->open_files, delta, __ATOMIC_RELAXED);
}

