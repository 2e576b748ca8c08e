/*
 * The names of the cache: which source each one serves, and the part of
 * the source's value it serves. A selection is made from one snapshot of
 * the source, so every name of a source serves the same version; it is
 * kept until the source gets another value, and a reader pins its own
 * reference, so an open file keeps the bytes it opened.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secretsfs/backend.h>
#include <secretsfs/cache.h>
#include <secretsfs/clk.h>
#include <secretsfs/secmem.h>

#include "cache_int.h"

static void
grow_names(struct cache *c)
{
	size_t n = c->nnames * 2, i;
	struct member **b, *m, *next;

	if (!(b = calloc(n, sizeof(*b))))
		return;		/* longer chains, still correct */
	for (i = 0; i < c->nnames; i++)
		for (m = c->names[i]; m; m = next) {
			next = m->next;
			m->next = b[cache_hash(m->name) & (n - 1)];
			b[cache_hash(m->name) & (n - 1)] = m;
		}
	free(c->names);
	c->names = b;
	c->nnames = n;
}

struct member *
cache_member_find(struct cache *c, const char *name, bool create)
{
	size_t b = cache_hash(name) & (c->nnames - 1), len = strlen(name);
	struct member *m;

	for (m = c->names[b]; m; m = m->next)
		if (strcmp(m->name, name) == 0)
			return m;
	if (!create || len >= CACHE_NAME_CAP)
		return NULL;
	if (!(m = calloc(1, sizeof(*m) + len + 1)))
		return NULL;
	memcpy(m->name, name, len + 1);
	m->next = c->names[b];
	c->names[b] = m;
	if (++c->nmembers > c->nnames)
		grow_names(c);
	return m;
}

void
cache_member_set_version(struct member *m, const char *v)
{
	if (v && *v == '\0')
		v = NULL;
	if (v && m->last_version && strcmp(v, m->last_version) == 0)
		return;
	free(m->last_version);
	/* Out of memory the history is lost, as after a forget. */
	m->last_version = v ? strdup(v) : NULL;
}

/* Locked: the kept selection of m goes. */
static void
drop_selection(struct cache *c, struct member *m)
{
	if (m->snap) {
		c->st.bytes -= m->snap->len;
		cache_put(m->snap);
		m->snap = NULL;
	}
	m->serial = 0;
	m->sel_err = 0;
}

void
cache_members_drop(struct cache *c, struct entry *e)
{
	struct member *m;

	for (m = e->members; m; m = m->sibling)
		drop_selection(c, m);
}

int
cache_member_bind(struct cache *c, struct member *m)
{
	char key[CACHE_KEY_CAP], field[CACHE_KEY_CAP];
	bool has_field = false;
	struct entry *e;
	char *f = NULL;
	int r;

	if (m->src)
		return 0;
	if (!c->source.resolve) {
		snprintf(key, sizeof(key), "%s", m->name);
	} else {
		/* The resolver reads the config: not under the cache's lock. */
		pthread_mutex_unlock(&c->lock);
		key[0] = field[0] = '\0';
		r = c->source.resolve(c->source_arg, m->name, key, sizeof(key),
		    field, sizeof(field), &has_field);
		pthread_mutex_lock(&c->lock);
		if (r < 0)
			return r;
		if (m->src)
			return 0;	/* another thread bound it meanwhile */
	}
	if ((has_field && !(f = strdup(field))) ||
	    !(e = cache_entry_find(c, key, true))) {
		free(f);
		return -ENOMEM;
	}
	m->field = f;
	m->src = e;
	m->serial = 0;
	m->sel_err = 0;
	m->announced = false;
	m->sibling = e->members;
	e->members = m;
	return 0;
}

/* Locked: m leaves its source; its next read resolves it again. */
static void
unbind(struct cache *c, struct member *m)
{
	struct member **pp;

	drop_selection(c, m);
	if (m->src) {
		for (pp = &m->src->members; *pp; pp = &(*pp)->sibling)
			if (*pp == m) {
				*pp = m->sibling;
				break;
			}
	}
	m->src = NULL;
	m->sibling = NULL;
	free(m->field);
	m->field = NULL;
}

/* A snapshot of part of src: its version, times and generation. */
static struct cache_snap *
part_of(const struct cache_snap *src, uint8_t *data, size_t len)
{
	size_t vlen = strlen(src->version);
	struct cache_snap *s;

	if (!(s = calloc(1, sizeof(*s) + vlen + 1)))
		return NULL;
	s->data = data;
	s->len = len;
	s->changed = src->changed;
	s->fetched = src->fetched;
	s->generation = src->generation;
	s->refs = 1;
	memcpy(s->version, src->version, vlen + 1);
	return s;
}

int
cache_member_serve(struct cache *c, struct member *m, struct cache_snap **out)
{
	struct entry *e = m->src;
	struct cache_snap *src, *s = NULL;
	char why[BACKEND_ERR_MAX] = "", *field;
	bool failed_before;
	uint64_t serial;
	uint8_t *data;
	size_t len;
	int r;

	*out = NULL;
	if (!e || !e->snap)
		return -ENOENT;
	/* A name that served nothing yet has no version to rotate from. */
	if (!m->field || (m->serial == e->installs && m->snap))
		if (!m->last_version)
			cache_member_set_version(m, e->snap->version);
	if (!m->field) {
		cache_pin(e->snap);
		*out = e->snap;
		return 0;
	}
	if (m->serial == e->installs) {
		if (m->snap) {
			cache_pin(m->snap);
			*out = m->snap;
			return 0;
		}
		if (m->sel_err)
			return m->sel_err;
	}
	/* Parsing the value may take a while: not under the lock. */
	if (!(field = strdup(m->field)))
		return -ENOMEM;
	src = e->snap;
	cache_pin(src);
	serial = e->installs;
	failed_before = m->sel_err != 0;
	pthread_mutex_unlock(&c->lock);
	r = backend_select(src->data, src->len, field, &data, &len, why,
	    sizeof(why));
	if (r == 0 && !(s = part_of(src, data, len))) {
		secmem_free(data);
		r = -ENOMEM;
	}
	if (r < 0 && c->source.select_failed)
		c->source.select_failed(c->source_arg, m->name, r, why);
	else if (r == 0 && failed_before && c->source.selected)
		c->source.selected(c->source_arg, m->name);
	cache_put(src);
	free(field);
	pthread_mutex_lock(&c->lock);
	/* A missing field is an answer; anything else, an unusable value. */
	if (r < 0)
		r = r == -ENOENT ? r : -EIO;
	if (m->src == e && e->installs == serial) {
		drop_selection(c, m);
		m->serial = serial;
		m->sel_err = r;
		/* Kept when it fits; served either way. */
		if (r == 0 && !m->last_version)
			cache_member_set_version(m, e->snap->version);
		if (r == 0 && cache_make_room(c, e, s->len) == 0) {
			cache_pin(s);
			m->snap = s;
			c->st.bytes += s->len;
		}
	}
	*out = s;
	return r;
}

int
cache_get(struct cache *c, const char *name, int64_t ttl_ms,
    struct cache_snap **out)
{
	return cache_get_ex(c, name, ttl_ms, 0, out);
}

int
cache_peek(struct cache *c, const char *name, struct cache_snap **out)
{
	struct member *m;
	int r = -ENOENT;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	if ((m = cache_member_find(c, name, false)) && m->src && m->src->snap)
		r = cache_member_serve(c, m, out);
	pthread_mutex_unlock(&c->lock);
	return r == 0 ? 0 : -ENOENT;
}

/* Locked. The source's value goes too: the next read fetches. */
static void
forget(struct cache *c, struct member *m, bool history)
{
	drop_selection(c, m);
	if (m->src)
		cache_entry_forget(c, m->src, history);
	if (history) {
		unbind(c, m);
		cache_member_set_version(m, NULL);
	}
}

static bool
in_tree(const char *name, const char *top, size_t n, bool tree)
{
	if (!top || strcmp(name, top) == 0)
		return true;
	return tree && strncmp(name, top, n) == 0 && name[n] == '/';
}

static void
forget_names(struct cache *c, const char *name, bool tree, bool history)
{
	size_t i, n = name ? strlen(name) : 0;
	struct member *m;
	struct entry *e;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->nnames; i++)
		for (m = c->names[i]; m; m = m->next)
			if (in_tree(m->name, name, n, tree))
				forget(c, m, history);
	/* Without a source layer a name is its source, named or not. */
	for (i = 0; !c->source.resolve && i < c->nbuckets; i++)
		for (e = c->buckets[i]; e; e = e->next)
			if (in_tree(e->name, name, n, tree))
				cache_entry_forget(c, e, history);
	for (i = 0; !name && i < c->nbuckets; i++)
		for (e = c->buckets[i]; e; e = e->next)
			cache_entry_forget(c, e, history);
	pthread_mutex_unlock(&c->lock);
}

void
cache_forget(struct cache *c, const char *name)
{
	forget_names(c, name, false, false);
}

void
cache_forget_tree(struct cache *c, const char *name, bool history)
{
	forget_names(c, name, true, history);
}

void
cache_stats(struct cache *c, struct cache_stats *st)
{
	struct member *m;
	size_t i;

	pthread_mutex_lock(&c->lock);
	*st = c->st;
	st->entries = st->stale = 0;
	for (i = 0; i < c->nnames; i++)
		for (m = c->names[i]; m; m = m->next) {
			if (!m->src || !m->src->snap)
				continue;
			st->entries++;
			st->stale += m->src->rt.state == REFRESH_STALE ||
			    m->src->rt.state == REFRESH_GONE;
		}
	pthread_mutex_unlock(&c->lock);
}

void
cache_foreach(struct cache *c,
    void (*fn)(void *arg, const struct cache_entry_info *e), void *arg)
{
	struct cache_entry_info info;
	struct refresh_policy pol;
	struct member *m;
	struct entry *e;
	int64_t now = clk_mono_ms(), next;
	size_t i;

	pthread_mutex_lock(&c->lock);
	pol = (struct refresh_policy){
		.max_stale_ms = c->lim.max_stale_ms,
		.delete_grace_ms = c->lim.delete_grace_ms,
	};
	for (i = 0; i < c->nnames; i++)
		for (m = c->names[i]; m; m = m->next) {
			e = m->src;
			memset(&info, 0, sizeof(info));
			info.name = m->name;
			info.state = e && e->snap ? e->rt.state : REFRESH_EMPTY;
			info.fetching = e && e->rt.fetching;
			snprintf(info.version, sizeof(info.version), "%s",
			    e && e->snap ? e->snap->version : m->last_version ?
			    m->last_version : e && e->last_version ?
			    e->last_version : "");
			info.failures = e ? e->failures : 0;
			info.last_err = e ? e->last_err : 0;
			/* A value without the field: this name has none. */
			if (e && e->snap && m->field && m->serial == e->installs &&
			    m->sel_err) {
				info.state = REFRESH_EMPTY;
				info.last_err = m->sel_err;
			}
			info.age_ms = info.next_ms = -1;
			if (e && e->snap) {
				info.len = m->field ? m->snap &&
				    m->serial == e->installs ? m->snap->len : 0 :
				    e->snap->len;
				info.changed = e->snap->changed;
				info.fetched = e->snap->fetched;
				info.age_ms = now - e->rt.fetched;
				if (e->rt.state != REFRESH_FRESH &&
				    now > e->rt.fetched + e->rt.ttl)
					info.stale_ms = now - e->rt.fetched -
					    e->rt.ttl;
				if (refresh_decide(&e->rt, &pol, now, &next) !=
				    REFRESH_NONE)
					info.next_ms = 0;
				else if (next != INT64_MAX)
					info.next_ms = next - now;
				else if (e->rt.state == REFRESH_FRESH)
					/* idle: fetched again at its next read */
					info.next_ms = -1;
			}
			fn(arg, &info);
		}
	pthread_mutex_unlock(&c->lock);
}
