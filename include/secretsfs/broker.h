/*
 * broker: the core the filesystem talks to. It owns the config, the open
 * backends and the cache, and turns a secret name into a pinned value.
 */
#ifndef SECRETSFS_BROKER_H
#define SECRETSFS_BROKER_H

#include <stddef.h>
#include <sys/types.h>

#include <secretsfs/cache.h>
#include <secretsfs/config.h>

struct broker;

/*
 * Open every backend of cfg and make the cache. Takes ownership of cfg
 * (also on failure). 0 and *out, or -errno with errbuf saying why.
 */
int broker_new(struct config *cfg, struct broker **out, char *errbuf,
    size_t errlen);
void broker_free(struct broker *b);

const struct config *broker_config(const struct broker *b);

/* Index of the secret called name, or -1. O(1). */
ssize_t broker_lookup(const struct broker *b, const char *name);

/*
 * Pin the value of secret idx (fetching it when absent or due). The
 * backend's reason for a failure is logged here, once, with the name.
 * 0 and *out (release with cache_put), or -ENOENT/-EACCES/-EIO.
 */
int broker_get(struct broker *b, size_t idx, struct cache_snap **out);

/* The cached value of idx without fetching; -ENOENT when none. */
int broker_peek(struct broker *b, size_t idx, struct cache_snap **out);

struct cache *broker_cache(struct broker *b);

#endif
