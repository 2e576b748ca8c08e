/*
 * engine: container name, image and labels from a Docker-compatible Engine
 * API over its Unix socket, cached per container id.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <secretsfs/clk.h>
#include <secretsfs/engine.h>
#include <secretsfs/http.h>
#include <secretsfs/lru.h>

/* What the engine said about one container: the caller's engine fields. */
struct meta {
	char			 name[IDENTITY_NAME_MAX];
	char			 image[IDENTITY_NAME_MAX];
	size_t			 n_labels;
	struct identity_label	 labels[IDENTITY_LABELS_MAX];
	bool			 truncated;
	pid_t			 pid;	/* State.Pid, or 0 */
};

struct eng_entry {
	struct eng_entry	*hnext;
	struct lru_node		 lru;
	char			 id[IDENTITY_ID_MAX];
	int64_t			 expires_ms;
	int			 err;		/* 0, or the cached failure */
	struct meta		 m;
};

#define ENGINE_BUCKETS	256	/* ids are random hex: no need to resize */

struct engine {
	char			*socket_path;
	struct http_client	*http;		/* over socket_path */
	pthread_mutex_t		 lock;
	size_t			 max;
	int64_t			 ttl_ms, neg_ttl_ms;
	struct eng_entry	*buckets[ENGINE_BUCKETS];
	struct lru		 lru;
	size_t			 count;
	uint64_t		 hits, misses, errors;
};

static bool
is_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[64] == '\0';
}

static size_t
bucket_of(const char *id)
{
	uint32_t h = 2166136261u;

	while (*id)
		h = (h ^ (unsigned char)*id++) * 16777619u;
	return h % ENGINE_BUCKETS;
}

/* ---- parsing ------------------------------------------------------------ */

/* Copy only if the whole string fits: a prefix is not the value. */
static bool
copy_whole(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		return false;
	memcpy(dst, src, n + 1);
	return true;
}

static void
meta_to_caller(const struct meta *m, struct caller *c)
{
	memcpy(c->container_name, m->name, sizeof(c->container_name));
	memcpy(c->image, m->image, sizeof(c->image));
	memcpy(c->labels, m->labels, sizeof(c->labels));
	c->n_labels = m->n_labels;
	c->labels_truncated = m->truncated;
	c->container_pid = m->pid;
}

static void
caller_clear_engine(struct caller *c)
{
	c->container_name[0] = '\0';
	c->image[0] = '\0';
	memset(c->labels, 0, sizeof(c->labels));
	c->n_labels = 0;
	c->labels_truncated = false;
	c->container_pid = 0;
}

static int
parse_meta(const char *body, size_t len, const char *expected_id,
    struct meta *m)
{
	json_t *root, *v, *config, *labels, *lv;
	const char *s, *key;
	struct identity_label *l;
	int r = -EPROTO;

	memset(m, 0, sizeof(*m));
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (root == NULL || !json_is_object(root))
		goto out;
	if (expected_id) {
		v = json_object_get(root, "Id");
		if (!json_is_string(v) || strcmp(json_string_value(v),
		    expected_id) != 0)
			goto out;
	}

	v = json_object_get(root, "Name");
	if (json_is_string(v)) {
		s = json_string_value(v);
		if (*s == '/')
			s++;
		copy_whole(m->name, sizeof(m->name), s);
	}

	v = json_object_get(json_object_get(root, "State"), "Pid");
	if (json_is_integer(v) && json_integer_value(v) > 0 &&
	    json_integer_value(v) <= INT32_MAX)
		m->pid = (pid_t)json_integer_value(v);

	config = json_object_get(root, "Config");
	if (config != NULL && !json_is_object(config) && !json_is_null(config))
		goto out;
	v = json_object_get(config, "Image");
	if (json_is_string(v) && *json_string_value(v) != '\0')
		copy_whole(m->image, sizeof(m->image), json_string_value(v));
	if (m->image[0] == '\0') {
		v = json_object_get(root, "ImageName");
		if (json_is_string(v))
			copy_whole(m->image, sizeof(m->image),
			    json_string_value(v));
	}

	labels = json_object_get(config, "Labels");
	if (labels != NULL && !json_is_object(labels) && !json_is_null(labels))
		goto out;
	if (json_is_object(labels)) {
		json_object_foreach(labels, key, lv) {
			if (!json_is_string(lv) || *key == '\0' ||
			    m->n_labels == IDENTITY_LABELS_MAX) {
				m->truncated = true;
				continue;
			}
			l = &m->labels[m->n_labels];
			if (!copy_whole(l->key, sizeof(l->key), key) ||
			    !copy_whole(l->value, sizeof(l->value),
			    json_string_value(lv))) {
				memset(l, 0, sizeof(*l));
				m->truncated = true;
				continue;
			}
			m->n_labels++;
		}
	}
	r = 0;
out:
	json_decref(root);
	if (r < 0)
		memset(m, 0, sizeof(*m));
	return r;
}

int
engine_parse_inspect(const char *body, size_t len, const char *expected_id,
    struct caller *c)
{
	struct meta m;
	int r;

	caller_clear_engine(c);
	if ((r = parse_meta(body, len, expected_id, &m)) < 0)
		return r;
	meta_to_caller(&m, c);
	return 0;
}

/* ---- the request -------------------------------------------------------- */

/*
 * GET path from the engine, through the one HTTP module over the engine's
 * Unix socket: *resp holds the answer (its body in locked memory, as it
 * carries the container's environment) for any status.
 */
static int
engine_get(struct engine *e, const char *path, struct http_response *resp)
{
	const struct http_request req = { .method = "GET", .path = path };
	char why[256];
	int r;

	memset(resp, 0, sizeof(*resp));
	r = http_do(e->http, &req, resp, why, sizeof(why));
	return r == -EFBIG ? -EMSGSIZE : r;
}

static const char *
body_of(const struct http_response *resp)
{
	return resp->body ? (const char *)resp->body : "";
}

static int
fetch(struct engine *e, const char *id, struct meta *m)
{
	struct http_response resp;
	char path[128];
	int r;

	/* The id goes into a URL: only the exact shape identity produces. */
	if (!is_hex64(id))
		return -EINVAL;
	snprintf(path, sizeof(path), "/containers/%s/json", id);
	if ((r = engine_get(e, path, &resp)) == 0) {
		if (resp.status == 200)
			r = parse_meta(body_of(&resp), resp.body_len, id, m);
		else if (resp.status == 404)
			r = -ENOENT;
		else
			r = -EPROTO;
	}
	http_response_clear(&resp);
	return r;
}

int
engine_container_pid(struct engine *e, const char *name, pid_t *pid)
{
	struct http_response resp;
	json_t *root, *v;
	char path[512];
	int r;

	*pid = 0;
	/* Names are [a-zA-Z0-9][a-zA-Z0-9_.-]* in Docker and Podman. */
	if (!*name || strlen(name) > 255 ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_.-") != strlen(name))
		return -EINVAL;
	snprintf(path, sizeof(path), "/containers/%s/json", name);
	if ((r = engine_get(e, path, &resp)) == 0) {
		if (resp.status == 404)
			r = -ENOENT;
		else if (resp.status != 200)
			r = -EPROTO;
		else if (!(root = json_loadb(body_of(&resp), resp.body_len, 0,
		    NULL)))
			r = -EPROTO;
		else {
			v = json_object_get(json_object_get(root, "State"), "Pid");
			if (json_is_integer(v) && json_integer_value(v) > 0)
				*pid = (pid_t)json_integer_value(v);
			else
				r = -ESRCH;	/* not running */
			json_decref(root);
		}
	}
	http_response_clear(&resp);
	return r;
}

/* ---- the engine and its cache ------------------------------------------- */

/*
 * The HTTP client for the engine: plain HTTP over its socket, no retries
 * (a failure is cached for neg_ttl instead), timeout_ms for the whole
 * request.
 */
static struct http_client *
client_new(const char *socket_path, long timeout_ms)
{
	struct http_options o;
	struct http_client *c;
	char why[256];

	http_options_default(&o);
	o.tls = false;
	o.unix_socket = socket_path;
	o.connect_timeout_ms = timeout_ms;
	o.timeout_ms = timeout_ms;
	o.max_retries = 0;
	o.max_response_bytes = ENGINE_BODY_MAX;
	if (http_client_new("http://localhost", &o, &c, why, sizeof(why)) < 0)
		return NULL;
	return c;
}

struct engine *
engine_new(const char *socket_path)
{
	struct engine *e;

	if (socket_path && strncmp(socket_path, "unix://", 7) == 0)
		socket_path += 7;
	if (socket_path == NULL || *socket_path == '\0') {
		errno = EINVAL;
		return NULL;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	if ((e->socket_path = strdup(socket_path)) == NULL ||
	    (e->http = client_new(socket_path,
	    ENGINE_DEFAULT_TIMEOUT_MS)) == NULL ||
	    pthread_mutex_init(&e->lock, NULL) != 0) {
		http_client_free(e->http);
		free(e->socket_path);
		free(e);
		errno = ENOMEM;
		return NULL;
	}
	e->max = ENGINE_DEFAULT_CACHE_MAX;
	e->ttl_ms = ENGINE_DEFAULT_TTL_MS;
	e->neg_ttl_ms = ENGINE_DEFAULT_NEG_TTL_MS;
	return e;
}

static struct eng_entry *
find_locked(struct engine *e, const char *id)
{
	struct eng_entry *x;

	for (x = e->buckets[bucket_of(id)]; x; x = x->hnext)
		if (strcmp(x->id, id) == 0)
			return x;
	return NULL;
}

static void
remove_locked(struct engine *e, struct eng_entry *x)
{
	struct eng_entry **pp;

	for (pp = &e->buckets[bucket_of(x->id)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == x) {
			*pp = x->hnext;
			break;
		}
	}
	lru_unlink(&e->lru, &x->lru);
	e->count--;
}

void
engine_forget(struct engine *e, const char *id)
{
	struct eng_entry *x;

	pthread_mutex_lock(&e->lock);
	if ((x = find_locked(e, id)) != NULL) {
		remove_locked(e, x);
		free(x);
	}
	pthread_mutex_unlock(&e->lock);
}

void
engine_free(struct engine *e)
{
	struct eng_entry *x;

	if (e == NULL)
		return;
	while ((x = LRU_ENTRY(e->lru.head, struct eng_entry, lru)) != NULL) {
		remove_locked(e, x);
		free(x);
	}
	pthread_mutex_destroy(&e->lock);
	http_client_free(e->http);
	free(e->socket_path);
	free(e);
}

void
engine_set_cache(struct engine *e, size_t max_entries, int64_t ttl_ms,
    int64_t neg_ttl_ms)
{
	struct eng_entry *x;

	pthread_mutex_lock(&e->lock);
	e->max = max_entries;
	e->ttl_ms = ttl_ms;
	e->neg_ttl_ms = neg_ttl_ms;
	while (e->count > e->max) {
		x = LRU_ENTRY(lru_oldest(&e->lru), struct eng_entry, lru);
		if (x == NULL)
			break;
		remove_locked(e, x);
		free(x);
	}
	pthread_mutex_unlock(&e->lock);
}

void
engine_set_timeout(struct engine *e, long timeout_ms)
{
	struct http_client *c;

	c = client_new(e->socket_path, timeout_ms > 0 ? timeout_ms :
	    ENGINE_DEFAULT_TIMEOUT_MS);
	/* Out of memory: keep the client we have, and its timeout. */
	if (c != NULL) {
		http_client_free(e->http);
		e->http = c;
	}
}

void
engine_stats(struct engine *e, struct engine_stats *st)
{
	pthread_mutex_lock(&e->lock);
	st->hits = e->hits;
	st->misses = e->misses;
	st->errors = e->errors;
	st->entries = e->count;
	pthread_mutex_unlock(&e->lock);
}

static void
cache_put(struct engine *e, const char *id, int err, const struct meta *m,
    struct eng_entry *fresh_in)
{
	struct eng_entry *x, *fresh = fresh_in;
	int64_t ttl;

	pthread_mutex_lock(&e->lock);
	ttl = err == 0 ? e->ttl_ms : e->neg_ttl_ms;
	if (ttl <= 0 || e->max == 0) {
		pthread_mutex_unlock(&e->lock);
		free(fresh);
		return;
	}
	if ((x = find_locked(e, id)) != NULL) {
		lru_unlink(&e->lru, &x->lru);
	} else if (fresh) {
		while (e->count >= e->max && lru_oldest(&e->lru)) {
			struct eng_entry *old = LRU_ENTRY(lru_oldest(&e->lru),
			    struct eng_entry, lru);

			remove_locked(e, old);
			free(old);
		}
		x = fresh;
		fresh = NULL;
		memcpy(x->id, id, IDENTITY_ID_MAX);
		x->hnext = e->buckets[bucket_of(id)];
		e->buckets[bucket_of(id)] = x;
		e->count++;
	}
	if (x) {
		x->err = err;
		x->m = *m;
		x->expires_ms = clk_mono_ms() + ttl;
		lru_push(&e->lru, &x->lru);
	}
	pthread_mutex_unlock(&e->lock);
	free(fresh);
}

int
engine_enrich(struct engine *e, struct caller *c)
{
	struct eng_entry *x;
	struct meta m;
	int r;

	caller_clear_engine(c);
	if (c->container_id[0] == '\0')
		return 0;

	pthread_mutex_lock(&e->lock);
	x = find_locked(e, c->container_id);
	if (x && clk_mono_ms() < x->expires_ms) {
		r = x->err;
		if (r == 0)
			meta_to_caller(&x->m, c);
		lru_unlink(&e->lru, &x->lru);
		lru_push(&e->lru, &x->lru);
		e->hits++;
		pthread_mutex_unlock(&e->lock);
		return r;
	}
	e->misses++;
	pthread_mutex_unlock(&e->lock);

	/*
	 * Concurrent misses on one id may each ask the engine; a container's
	 * first open()s are few, and a singleflight would make every waiter
	 * share one timeout anyway.
	 */
	r = fetch(e, c->container_id, &m);
	if (r < 0) {
		memset(&m, 0, sizeof(m));
		pthread_mutex_lock(&e->lock);
		e->errors++;
		pthread_mutex_unlock(&e->lock);
	}
	if (r != -EINVAL && r != -ENOMEM)
		cache_put(e, c->container_id, r, &m, malloc(sizeof(*x)));
	if (r == 0)
		meta_to_caller(&m, c);
	return r;
}
