/*
 * broker: the core the filesystem talks to. It owns the config, the open
 * backends and the cache, and turns a secret name into a pinned value.
 */
#ifndef SECRETSFS_BROKER_H
#define SECRETSFS_BROKER_H

#include <stddef.h>
#include <sys/types.h>

#include <secretsfs/audit.h>
#include <secretsfs/cache.h>
#include <secretsfs/config.h>
#include <secretsfs/identity.h>
#include <secretsfs/policy.h>

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

/*
 * The files of secret idx when it is a directory ("as": "directory": the
 * keys of its JSON value; "as": "prefix": the secrets the backend lists
 * under its ref, refreshed every `refresh`). Names that are not valid
 * file names are left out. *names is a malloc'd array of malloc'd
 * strings (broker_names_free). 0, or -ENOTDIR, -ENOENT, -EACCES, -EIO.
 */
int broker_children(struct broker *b, size_t idx, char ***names, size_t *n);
void broker_names_free(char **names, size_t n);

/* Pin the value of file `child` of directory secret idx. As broker_get. */
int broker_get_child(struct broker *b, size_t idx, const char *child,
    struct cache_snap **out);

/* The cached value of idx without fetching; -ENOENT when none. */
int broker_peek(struct broker *b, size_t idx, struct cache_snap **out);

struct cache *broker_cache(struct broker *b);

/*
 * Who is asking: the FUSE request's pid/uid/gid resolved to a caller
 * (cgroup, container, and the Engine API's name/image/labels when a
 * runtime socket is configured). -ESRCH when the process is gone; the
 * caller then gets nothing.
 */
int broker_identify(struct broker *b, pid_t pid, uid_t uid, gid_t gid,
    struct caller *out);

/* May c see secret idx? Fills d (rule id included). */
bool broker_allowed(struct broker *b, const struct caller *c, size_t idx,
    struct policy_decision *d);

/* The errno a denied name answers: ENOENT, or EACCES when configured. */
int broker_deny_errno(const struct broker *b);

/*
 * Audit records (child: a file of a directory secret, else NULL). Each
 * returns 0 when the record is on disk (or auditing
 * is off), or -EIO when it could not be written and the config says to
 * fail closed: the request must then be refused with EIO. A failure is
 * logged here.
 */
int broker_audit_access(struct broker *b, const struct caller *c, size_t idx,
    const char *child, const char *rule, enum audit_outcome outcome, int err,
    const char *version);
int broker_audit_lookup_denied(struct broker *b, const struct caller *c,
    size_t idx, const char *child, const char *rule);

/* SIGHUP: reopen the audit file (logrotate moved it). */
void broker_audit_reopen(struct broker *b);

#endif
