/*
 * Backend statistics, and the operator's requests: flush, refresh,
 * health, and the snapshot status and metrics are rendered from.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <secretsfs/broker.h>
#include <secretsfs/clk.h>
#include <secretsfs/log.h>
#include <secretsfs/secmem.h>

#include "broker_int.h"

const double broker_latency_bounds[BROKER_LATENCY_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};

/* ------------------------------------------------------------------ */
/* Backend statistics, by name.                                       */

/* Locked. */
struct backend_stat *
broker_bstat(struct broker *b, const char *name, const char *type)
{
	struct backend_stat *grown;
	size_t i;

	for (i = 0; i < b->nbstats; i++)
		if (strcmp(b->bstats[i].name, name) == 0)
			return &b->bstats[i];
	if (!(grown = realloc(b->bstats, (b->nbstats + 1) * sizeof(*grown))))
		return NULL;
	b->bstats = grown;
	memset(&grown[b->nbstats], 0, sizeof(*grown));
	snprintf(grown[b->nbstats].name, sizeof(grown->name), "%s", name);
	snprintf(grown[b->nbstats].type, sizeof(grown->type), "%s", type);
	grown[b->nbstats].reachable = -1;
	return &grown[b->nbstats++];
}

/*
 * One request to a backend, done: r is what the reader gets (0, -ENOENT
 * and -EACCES are answers; -EIO is a backend we could not use).
 */
void
broker_bstat_note(struct broker *b, const char *name, const char *type, int r,
    double secs, const char *why)
{
	struct backend_stat *s;
	size_t k;

	pthread_mutex_lock(&b->stat_lock);
	if ((s = broker_bstat(b, name, type))) {
		s->requests++;
		for (k = 0; k < BROKER_LATENCY_BUCKETS &&
		    secs > broker_latency_bounds[k]; k++)
			;
		s->buckets[k]++;
		s->sum += secs;
		if (r < 0) {
			s->errors++;
			snprintf(s->last_error, sizeof(s->last_error), "%s",
			    why && *why ? why : strerror(-r));
		}
		if (r == -EIO) {
			if (s->reachable != 0)
				s->fail_since = clk_mono_ms();
			s->reachable = 0;
		} else {
			s->reachable = 1;
			s->fail_since = 0;
		}
	}
	pthread_mutex_unlock(&b->stat_lock);
}

/* ------------------------------------------------------------------ */
/* Operations: flush, refresh, health, status.                        */

int
broker_flush(struct broker *b, const char *name)
{
	struct broker_view *v = broker_acquire(b);
	ssize_t i = -1;
	size_t k;

	if (name && (i = broker_view_lookup(v, name)) < 0) {
		broker_release(v);
		return -ENOENT;
	}
	cache_forget_tree(b->cache, name, false);
	/* Listings of prefix secrets are asked again too. */
	pthread_mutex_lock(&v->list_lock);
	for (k = 0; k < v->cfg->n_secrets; k++)
		if (!name || (ssize_t)k == i)
			v->listings[k].due = 0;
	pthread_mutex_unlock(&v->list_lock);
	log_info("flushed the cached value%s of %s", name ? "" : "s",
	    name ? name : "every secret");
	broker_release(v);
	return 0;
}

struct collect {
	char		**names;
	size_t		  n, cap;
	const char	 *prefix;
	size_t		  plen;
	int		  err;
};

static void
collect_children(void *arg, const struct cache_entry_info *e)
{
	struct collect *c = arg;
	char **grown;

	if (c->err || strncmp(e->name, c->prefix, c->plen) != 0 ||
	    e->name[c->plen] != '/' || e->state == REFRESH_EMPTY)
		return;
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 8;

		if (!(grown = realloc(c->names, cap * sizeof(*grown)))) {
			c->err = -ENOMEM;
			return;
		}
		c->names = grown;
		c->cap = cap;
	}
	if (!(c->names[c->n] = strdup(e->name)))
		c->err = -ENOMEM;
	else
		c->n++;
}

int
broker_refresh(struct broker *b, const char *name, char *version,
    size_t vlen)
{
	struct broker_view *v = broker_acquire(b);
	const struct config_secret *s;
	struct collect col = { .prefix = name, .plen = strlen(name) };
	char ver[BACKEND_VERSION_MAX];
	ssize_t i;
	size_t k;
	int r;

	if ((i = broker_view_lookup(v, name)) < 0) {
		broker_release(v);
		return -ENOENT;
	}
	s = &v->cfg->secrets[i];
	if (s->as == CONFIG_AS_PREFIX) {
		/* A folder, not a value: list it again, refetch its files. */
		pthread_mutex_lock(&v->list_lock);
		v->listings[i].due = 0;
		pthread_mutex_unlock(&v->list_lock);
		snprintf(version, vlen, "-");
		r = 0;
	} else
		r = cache_refresh_now(b->cache, s->name, s->refresh_ms,
		    broker_cache_flags(s), version, vlen);
	/*
	 * A directory's files are parts of its one answer, refreshed with
	 * it; a prefix's are answers of their own, refreshed one by one.
	 */
	if (r == 0 && s->as == CONFIG_AS_PREFIX) {
		cache_foreach(b->cache, collect_children, &col);
		for (k = 0; k < col.n; k++)
			if (cache_refresh_now(b->cache, col.names[k],
			    s->refresh_ms, broker_cache_flags(s), ver,
			    sizeof(ver)) < 0)
				r = r ? r : -EIO;
		broker_names_free(col.names, col.n);
		r = r ? r : col.err;
	}
	if (r == 0)
		log_info("refreshed %s on request: version %s", name,
		    version ? version : "");
	broker_release(v);
	return r;
}

int
broker_health(struct broker *b, char *why, size_t len)
{
	struct broker_view *v = broker_acquire(b);
	int64_t max_stale = v->cfg->max_stale_ms, now = clk_mono_ms();
	size_t i;
	int r = 0;

	broker_release(v);
	pthread_mutex_lock(&b->stat_lock);
	if (!b->mounted) {
		snprintf(why, len, "not mounted");
		r = -EIO;
	}
	for (i = 0; r == 0 && i < b->nbstats; i++) {
		const struct backend_stat *s = &b->bstats[i];

		if (s->reachable == 0 && now - s->fail_since > max_stale) {
			snprintf(why, len, "backend %s unreachable for %lld s "
			    "(cache.max_stale is %lld s): %s", s->name,
			    (long long)((now - s->fail_since) / 1000),
			    (long long)(max_stale / 1000), s->last_error);
			r = -EIO;
		}
	}
	/* Not failing long yet, but not once answered: not healthy either. */
	for (i = 0; r == 0 && i < b->nbstats; i++) {
		const struct backend_stat *s = &b->bstats[i];

		if (s->requests > 0 && s->errors == s->requests) {
			snprintf(why, len, "backend %s has never answered "
			    "(%llu request%s, all failed): %s", s->name,
			    (unsigned long long)s->requests,
			    s->requests == 1 ? "" : "s", s->last_error);
			r = 1;
		}
	}
	if (r == 0)
		snprintf(why, len, "mounted on %s", b->mountpoint);
	pthread_mutex_unlock(&b->stat_lock);
	return r;
}

/* Status: the cache's entries, copied out. */
struct entries {
	struct broker_secret_info	*v;
	size_t				 n, cap;
	int				 err;
};

static struct broker_secret_info *
entries_add(struct entries *es, const char *name)
{
	struct broker_secret_info *grown;

	if (es->n == es->cap) {
		size_t cap = es->cap ? 2 * es->cap : 16;

		if (!(grown = realloc(es->v, cap * sizeof(*grown)))) {
			es->err = -ENOMEM;
			return NULL;
		}
		es->v = grown;
		es->cap = cap;
	}
	memset(&es->v[es->n], 0, sizeof(es->v[0]));
	snprintf(es->v[es->n].name, sizeof(es->v[0].name), "%s", name);
	return &es->v[es->n++];
}

static void
collect_entry(void *arg, const struct cache_entry_info *e)
{
	struct entries *es = arg;
	struct broker_secret_info *si;

	if (!(si = entries_add(es, e->name)))
		return;
	si->cached = true;
	si->cache = *e;
	si->cache.name = NULL;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(((const struct broker_secret_info *)a)->name,
	    ((const struct broker_secret_info *)b)->name);
}

int
broker_snapshot(struct broker *b, bool with_secrets,
    struct broker_snapshot *out)
{
	struct broker_view *v = broker_acquire(b);
	struct entries es = { 0 };
	int64_t now = clk_mono_ms();
	size_t i, ncached;

	memset(out, 0, sizeof(*out));
	out->pid = getpid();
	snprintf(out->config_file, sizeof(out->config_file), "%s",
	    b->config_file);
	out->started = b->started;
	out->loaded = b->loaded;
	out->max_stale_ms = v->cfg->max_stale_ms;
	out->locked_bytes = secmem_locked_bytes();
	out->used_bytes = secmem_used_bytes();
	out->backing = secmem_backing();
	out->cache_max_bytes = broker_limits(v->cfg).max_bytes;
	cache_stats(b->cache, &out->cache);
	if ((out->audit_on = b->audit != NULL))
		audit_get_stats(b->audit, &out->audit);
	out->open_files = __atomic_load_n(&b->open_files, __ATOMIC_RELAXED);
	out->reads = __atomic_load_n(&b->reads, __ATOMIC_RELAXED);
	out->read_errors = __atomic_load_n(&b->read_errors, __ATOMIC_RELAXED);
	out->denials = __atomic_load_n(&b->denials, __ATOMIC_RELAXED);
	out->reloads = __atomic_load_n(&b->reloads, __ATOMIC_RELAXED);
	out->reload_errors = __atomic_load_n(&b->reload_errors,
	    __ATOMIC_RELAXED);
	out->signals_sent = __atomic_load_n(&b->signals_sent,
	    __ATOMIC_RELAXED);
	out->n_secrets_configured = v->cfg->n_secrets;

	pthread_mutex_lock(&b->stat_lock);
	out->mounted = b->mounted;
	snprintf(out->mountpoint, sizeof(out->mountpoint), "%s", b->mountpoint);
	if (b->nbstats &&
	    !(out->backends = calloc(b->nbstats, sizeof(*out->backends)))) {
		pthread_mutex_unlock(&b->stat_lock);
		goto oom;
	}
	for (i = 0; i < b->nbstats; i++) {
		const struct backend_stat *s = &b->bstats[i];
		struct broker_backend_info *bi = &out->backends[i];

		snprintf(bi->name, sizeof(bi->name), "%s", s->name);
		snprintf(bi->type, sizeof(bi->type), "%s", s->type);
		bi->requests = s->requests;
		bi->errors = s->errors;
		memcpy(bi->buckets, s->buckets, sizeof(bi->buckets));
		bi->latency_sum = s->sum;
		bi->reachable = s->reachable;
		bi->failing_ms = s->reachable == 0 ? now - s->fail_since : 0;
		memcpy(bi->last_error, s->last_error, sizeof(bi->last_error));
		bi->auth_known = s->auth_known;
		memcpy(bi->auth_method, s->auth_method, sizeof(bi->auth_method));
		memcpy(bi->auth_action, s->auth_action, sizeof(bi->auth_action));
		bi->auth_ok = s->auth_ok;
		bi->auth_ttl = s->auth_ttl;
		bi->auth_age_ms = s->auth_known ? now - s->auth_at : 0;
	}
	out->nbackends = b->nbstats;
	pthread_mutex_unlock(&b->stat_lock);

	if (with_secrets) {
		bool *listed;
		ssize_t j;

		cache_foreach(b->cache, collect_entry, &es);
		ncached = es.n;
		/* Configured secrets never read yet are listed too. */
		if (es.err || !(listed = calloc(v->cfg->n_secrets + 1,
		    sizeof(*listed))))
			goto oom;
		for (i = 0; i < ncached; i++)
			if ((j = broker_view_lookup(v, es.v[i].name)) >= 0)
				listed[j] = true;
		for (i = 0; i < v->cfg->n_secrets && !es.err; i++)
			if (!listed[i])
				entries_add(&es, v->cfg->secrets[i].name);
		free(listed);
		if (es.err)
			goto oom;
		for (i = 0; i < es.n; i++) {
			const struct config_secret *s;
			const char *child = NULL;

			if ((s = broker_secret_of(v, es.v[i].name, &child))) {
				es.v[i].configured = child == NULL;
				snprintf(es.v[i].backend,
				    sizeof(es.v[i].backend), "%s",
				    v->cfg->backends[s->backend].name);
				es.v[i].refresh_ms = s->refresh_ms;
				if (s->on_rotate)
					es.v[i].on_rotate =
					    config_signal_name(s->on_rotate);
			}
			broker_holders_fill(b, &es.v[i]);
		}
		/* Entries of secrets removed from the config are not shown. */
		for (i = 0; i < es.n; ) {
			if (!broker_secret_of(v, es.v[i].name, NULL)) {
				free(es.v[i].behind);
				es.v[i] = es.v[--es.n];
			} else
				i++;
		}
		qsort(es.v, es.n, sizeof(es.v[0]), by_name);
		out->secrets = es.v;
		out->nsecrets = es.n;
	}
	broker_release(v);
	return 0;
oom:
	for (i = 0; i < es.n; i++)
		free(es.v[i].behind);
	free(es.v);
	broker_release(v);
	broker_snapshot_free(out);
	return -ENOMEM;
}

void
broker_snapshot_free(struct broker_snapshot *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->nsecrets; i++)
		free(s->secrets[i].behind);
	free(s->secrets);
	free(s->backends);
	memset(s, 0, sizeof(*s));
}

