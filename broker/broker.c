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
#include <secretsfs/log.h>

struct broker {
	struct config	*cfg;
	struct backend	**backends;
	struct cache	*cache;
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
	    !(b->cache = cache_new(&lim, fetch, b))) {
		r = r < 0 ? r : -ENOMEM;
		snprintf(errbuf, errlen, "%s", strerror(-r));
		goto fail;
	}
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
