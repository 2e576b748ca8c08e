/*
 * The sections of the JSON configuration, each parsed with the toolkit of
 * cfg.h, or by its own layer's parser (rules, audit, backends).
 */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <secretsfs/audit.h>
#include <secretsfs/backend.h>
#include <secretsfs/cfg.h>
#include <secretsfs/config.h>
#include <secretsfs/kubelet.h>
#include <secretsfs/policy.h>

#include "config_int.h"

#define DEFAULT_MOUNTPOINT	"/run/secretsfs"
#define DEFAULT_LOCKED		(32u << 20)
#define DEFAULT_CACHE_MAX	(8u << 20)
#define DEFAULT_NEG_TTL_MS	5000
#define DEFAULT_REFRESH_MS	60000
#define DEFAULT_MODE		0400
#define DEFAULT_MAX_STALE_MS	(3600 * 1000)
#define DEFAULT_DELETE_GRACE_MS	30000

/* --- typed getters ----------------------------------------------------- */

/* A secret file is never writable, executable or special. */
static int
get_mode(const json_t *parent, const char *path, const char *key,
    mode_t *mode, struct cfg_err *err)
{
	char p[CFG_PATH_MAX];
	mode_t m = *mode;
	int r;

	if ((r = cfg_get_mode(parent, path, key, 0, &m, err)) < 0)
		return r;
	if (m & ~0444) {
		cfg_path_key(p, sizeof(p), path, key);
		return cfg_err_set(err, p, "mode %s grants more than read "
		    "permission; use a subset of 0444",
		    json_string_value(json_object_get(parent, key)));
	}
	*mode = m;
	return 0;
}

static int
get_id(const json_t *parent, const char *path, const char *key, bool group,
    unsigned *id, struct cfg_err *err)
{
	json_t *v = json_object_get(parent, key);
	char p[256], buf[4096];

	if (!v)
		return 0;
	cfg_path_key(p, sizeof(p), path, key);
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0 ||
		    json_integer_value(v) >= (json_int_t)UINT32_MAX)
			return cfg_err_set(err, p, "out of range");
		*id = (unsigned)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return cfg_err_set(err, p, "expected a number or a %s name",
		    group ? "group" : "user");
	if (group) {
		struct group g, *gp = NULL;

		getgrnam_r(json_string_value(v), &g, buf, sizeof(buf), &gp);
		if (!gp)
			return cfg_err_set(err, p, "no such group \"%s\"",
			    json_string_value(v));
		*id = gp->gr_gid;
	} else {
		struct passwd pw, *pp = NULL;

		getpwnam_r(json_string_value(v), &pw, buf, sizeof(buf), &pp);
		if (!pp)
			return cfg_err_set(err, p, "no such user \"%s\"",
			    json_string_value(v));
		*id = pp->pw_uid;
	}
	return 0;
}

/* --- sections ---------------------------------------------------------- */

struct defaults {
	mode_t	 mode;
	unsigned uid, gid;
	int64_t	 refresh_ms;
	int	 on_rotate;
};

/*
 * "on_rotate": {"signal": "SIGHUP"}: what to tell the processes that
 * opened a secret when a new version of it arrives.
 */
static int
get_on_rotate(const json_t *parent, const char *path, int *sig,
    struct cfg_err *err)
{
	static const char *const keys[] = { "signal", NULL };
	const char *name = NULL;
	json_t *o;
	char p[256], sp[300];
	int r;

	if ((r = cfg_get_object(parent, path, "on_rotate", 0, &o, err)) < 0 ||
	    !o)
		return r;
	cfg_path_key(p, sizeof(p), path, "on_rotate");
	if ((r = cfg_check_keys(o, p, keys, err)) < 0 ||
	    (r = cfg_get_string(o, p, "signal", CFG_NULL | CFG_REQUIRED,
	    &name, err)) < 0)
		return r;
	cfg_path_key(sp, sizeof(sp), p, "signal");
	if ((r = config_signal_from_name(name)) < 0)
		return cfg_err_set(err, sp, "expected one of SIGHUP, SIGINT, "
		    "SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM, SIGWINCH, SIGALRM");
	*sig = r;
	return 0;
}

static int
parse_defaults(const json_t *root, struct defaults *d, struct cfg_err *err)
{
	static const char *const keys[] = { "mode", "uid", "gid", "refresh",
	    "on_rotate", NULL };
	json_t *o;
	int r;

	d->mode = DEFAULT_MODE;
	d->uid = d->gid = 0;
	d->refresh_ms = DEFAULT_REFRESH_MS;
	d->on_rotate = 0;
	if ((r = cfg_get_object(root, "", "defaults", 0, &o, err)) < 0 || !o)
		return r;
	if ((r = cfg_check_keys(o, "defaults", keys, err)) < 0 ||
	    (r = get_mode(o, "defaults", "mode", &d->mode, err)) < 0 ||
	    (r = get_id(o, "defaults", "uid", false, &d->uid, err)) < 0 ||
	    (r = get_id(o, "defaults", "gid", true, &d->gid, err)) < 0 ||
	    (r = cfg_get_duration(o, "defaults", "refresh", 0, &d->refresh_ms,
	    err)) < 0 ||
	    (r = get_on_rotate(o, "defaults", &d->on_rotate, err)) < 0)
		return r;
	return 0;
}

static int
parse_mount(const json_t *root, struct config *cfg, struct cfg_err *err)
{
	static const char *const keys[] = { "path", "allow_other", NULL };
	const char *path = DEFAULT_MOUNTPOINT;
	json_t *o;
	int r;

	cfg->allow_other = true;
	if ((r = cfg_get_object(root, "", "mount", 0, &o, err)) < 0)
		return r;
	if (o) {
		if ((r = cfg_check_keys(o, "mount", keys, err)) < 0 ||
		    (r = cfg_get_string(o, "mount", "path", CFG_NULL, &path,
		    err)) < 0 ||
		    (r = cfg_get_bool(o, "mount", "allow_other", 0,
		    &cfg->allow_other, err)) < 0)
			return r;
		if (path[0] != '/')
			return cfg_err_set(err, "mount.path",
			    "expected an absolute path");
	}
	cfg->mountpoint = strdup(path);
	return cfg->mountpoint ? 0 : -ENOMEM;
}

static int
parse_limits(const json_t *root, struct config *cfg, struct cfg_err *err)
{
	static const char *const mkeys[] = { "locked_bytes", NULL };
	static const char *const ckeys[] = { "max_bytes", "negative_ttl",
	    "max_stale", "delete_grace", NULL };
	json_t *o;
	int r;

	cfg->locked_bytes = DEFAULT_LOCKED;
	cfg->cache_max_bytes = DEFAULT_CACHE_MAX;
	cfg->negative_ttl_ms = DEFAULT_NEG_TTL_MS;
	cfg->max_stale_ms = DEFAULT_MAX_STALE_MS;
	cfg->delete_grace_ms = DEFAULT_DELETE_GRACE_MS;
	if ((r = cfg_get_object(root, "", "memory", 0, &o, err)) < 0)
		return r;
	if (o && ((r = cfg_check_keys(o, "memory", mkeys, err)) < 0 ||
	    (r = cfg_get_size(o, "memory", "locked_bytes", 0,
	    &cfg->locked_bytes, err)) < 0))
		return r;
	if ((r = cfg_get_object(root, "", "cache", 0, &o, err)) < 0)
		return r;
	if (o && ((r = cfg_check_keys(o, "cache", ckeys, err)) < 0 ||
	    (r = cfg_get_size(o, "cache", "max_bytes", 0,
	    &cfg->cache_max_bytes, err)) < 0 ||
	    (r = cfg_get_duration(o, "cache", "negative_ttl", 0,
	    &cfg->negative_ttl_ms, err)) < 0 ||
	    (r = cfg_get_duration(o, "cache", "max_stale", 0,
	    &cfg->max_stale_ms, err)) < 0 ||
	    (r = cfg_get_duration(o, "cache", "delete_grace", 0,
	    &cfg->delete_grace_ms, err)) < 0))
		return r;
	if (cfg->locked_bytes < (1u << 20))
		return cfg_err_set(err, "memory.locked_bytes",
		    "must be at least 1MiB");
	/*
	 * Parsed backend answers and pinned old versions live in the arena
	 * beside the cache, so the cache may fill only half of it.
	 */
	if (cfg->cache_max_bytes == 0 ||
	    cfg->cache_max_bytes > cfg->locked_bytes / 2)
		return cfg_err_set(err, "cache.max_bytes", "must be between "
		    "1 and half of memory.locked_bytes (%" PRIu64 ")",
		    cfg->locked_bytes / 2);
	return 0;
}

static int
parse_backends(const json_t *root, struct config *cfg, struct cfg_err *err)
{
	const char *name, *type = NULL;
	json_t *o, *b;
	char p[256];
	size_t i = 0;
	int r;

	if ((r = cfg_get_object(root, "", "backends", CFG_REQUIRED, &o,
	    err)) < 0)
		return r;
	if (json_object_size(o) == 0)
		return cfg_err_set(err, "backends", "no backend is defined");
	if (!(cfg->backends = calloc(json_object_size(o), sizeof(*cfg->backends))))
		return -ENOMEM;
	json_object_foreach(o, name, b) {
		struct config_backend *cb = &cfg->backends[i];

		cfg_path_key(p, sizeof(p), "backends", name);
		if (!json_is_object(b))
			return cfg_err_set(err, p, "expected an object");
		if ((r = cfg_get_string(b, p, "type", CFG_NULL | CFG_REQUIRED,
		    &type, err)) < 0)
			return r;
		if ((r = backend_validate(type, b, p, err)) < 0)
			return r;
		cb->name = strdup(name);
		cb->type = strdup(type);
		cb->path = strdup(p);
		cb->options = json_incref(b);
		cfg->n_backends = ++i;
		if (!cb->name || !cb->type || !cb->path)
			return -ENOMEM;
	}
	return 0;
}

static bool
valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NAME_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (; *s; s++)
		if (*s == '/' || (unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int
parse_as(const json_t *s, const char *p, const char *as, const char *field,
    const char *version, enum config_as *out, struct cfg_err *err)
{
	char kp[300];

	(void)s;
	cfg_path_key(kp, sizeof(kp), p, "as");
	if (strcmp(as, "file") == 0)
		*out = CONFIG_AS_FILE;
	else if (strcmp(as, "directory") == 0)
		*out = CONFIG_AS_DIRECTORY;
	else if (strcmp(as, "prefix") == 0)
		*out = CONFIG_AS_PREFIX;
	else
		return cfg_err_set(err, kp, "expected \"file\", \"directory\" "
		    "or \"prefix\"");
	/* A directory's files are the keys: one field makes no sense. */
	if (*out == CONFIG_AS_DIRECTORY && field) {
		cfg_path_key(kp, sizeof(kp), p, "field");
		return cfg_err_set(err, kp, "not with \"as\": \"directory\" "
		    "(each key is already a file)");
	}
	if (*out == CONFIG_AS_PREFIX && version) {
		cfg_path_key(kp, sizeof(kp), p, "version");
		return cfg_err_set(err, kp, "not with \"as\": \"prefix\" "
		    "(it names many secrets)");
	}
	return 0;
}

static int
parse_secrets(const json_t *root, struct config *cfg,
    const struct defaults *d, struct cfg_err *err)
{
	static const char *const keys[] = { "backend", "ref", "field",
	    "version", "mode", "uid", "gid", "refresh", "as", "on_rotate", NULL };
	const char *name;
	json_t *o, *s;
	char p[256];
	size_t i = 0;
	int r;

	if ((r = cfg_get_object(root, "", "secrets", CFG_REQUIRED, &o,
	    err)) < 0)
		return r;
	if (!(cfg->secrets = calloc(json_object_size(o) + 1,
	    sizeof(*cfg->secrets))))
		return -ENOMEM;
	json_object_foreach(o, name, s) {
		struct config_secret *cs = &cfg->secrets[i];
		const char *backend = NULL, *ref = NULL, *field = NULL;
		const char *version = NULL, *as = "file";
		unsigned uid = d->uid, gid = d->gid;
		ssize_t bi;

		cfg_path_key(p, sizeof(p), "secrets", name);
		if (!valid_name(name))
			return cfg_err_set(err, p, "not a valid file name "
			    "(no '/', no control characters, not . or ..)");
		if (!json_is_object(s))
			return cfg_err_set(err, p, "expected an object");
		cs->mode = d->mode;
		cs->refresh_ms = d->refresh_ms;
		cs->on_rotate = d->on_rotate;
		if ((r = cfg_check_keys(s, p, keys, err)) < 0 ||
		    (r = cfg_get_string(s, p, "backend", CFG_NULL | CFG_REQUIRED,
		    &backend, err)) < 0 ||
		    (r = cfg_get_string(s, p, "ref", CFG_NULL, &ref, err)) < 0 ||
		    (r = cfg_get_string(s, p, "field", CFG_NULL, &field,
		    err)) < 0 ||
		    (r = cfg_get_string(s, p, "version", CFG_NULL, &version,
		    err)) < 0 ||
		    (r = get_mode(s, p, "mode", &cs->mode, err)) < 0 ||
		    (r = get_id(s, p, "uid", false, &uid, err)) < 0 ||
		    (r = get_id(s, p, "gid", true, &gid, err)) < 0 ||
		    (r = cfg_get_duration(s, p, "refresh", 0, &cs->refresh_ms,
		    err)) < 0 ||
		    (r = cfg_get_string(s, p, "as", CFG_NULL, &as, err)) < 0 ||
		    (r = get_on_rotate(s, p, &cs->on_rotate, err)) < 0)
			return r;
		if ((r = parse_as(s, p, as, field, version, &cs->as, err)) < 0)
			return r;
		if ((bi = config_find_backend(cfg, backend)) < 0) {
			char bp[256];

			cfg_path_key(bp, sizeof(bp), p, "backend");
			return cfg_err_set(err, bp, "no backend named \"%s\" "
			    "in \"backends\"", backend);
		}
		if (cs->refresh_ms < 1000) {
			char rp[256];

			cfg_path_key(rp, sizeof(rp), p, "refresh");
			return cfg_err_set(err, rp, "must be at least 1s");
		}
		cs->backend = (size_t)bi;
		cs->uid = uid;
		cs->gid = gid;
		cs->name = strdup(name);
		/* The reference defaults to the file name. */
		/* Most secrets are named as their reference: share it. */
		cs->ref = ref && strcmp(ref, name) != 0 ? strdup(ref) : cs->name;
		cs->field = field ? strdup(field) : NULL;
		cs->version = version ? strdup(version) : NULL;
		cfg->n_secrets = ++i;
		if (!cs->name || !cs->ref || (field && !cs->field) ||
		    (version && !cs->version))
			return -ENOMEM;
	}
	return 0;
}

static int
parse_access(const json_t *root, struct config *cfg, struct cfg_err *err)
{
	static const char *const akeys[] = { "denied", NULL };
	static const char *const rkeys[] = { "socket", "kubelet", "rootless",
	    NULL };
	const char *denied = "enoent", *socket = NULL;
	char kpath[CFG_PATH_MAX];
	json_t *o, *ko = NULL;
	ssize_t ri;
	int r;

	if ((r = policy_from_json(json_object_get(root, "rules"), "rules",
	    &cfg->policy, err)) < 0)
		return r;
	if ((r = cfg_get_object(root, "", "access", 0, &o, err)) < 0)
		return r;
	if (o && ((r = cfg_check_keys(o, "access", akeys, err)) < 0 ||
	    (r = cfg_get_string(o, "access", "denied", CFG_NULL, &denied,
	    err)) < 0))
		return r;
	if (strcmp(denied, "enoent") == 0)
		cfg->deny_errno = ENOENT;
	else if (strcmp(denied, "eacces") == 0)
		cfg->deny_errno = EACCES;
	else
		return cfg_err_set(err, "access.denied", "expected \"enoent\" "
		    "(denied names are invisible) or \"eacces\" (for debugging)");

	if ((r = cfg_get_object(root, "", "runtime", 0, &o, err)) < 0)
		return r;
	/* Any key alone is a runtime section: neither the kubelet nor
	 * rootless needs an engine. */
	if (o && ((r = cfg_check_keys(o, "runtime", rkeys, err)) < 0 ||
	    (r = cfg_get_object(o, "runtime", "kubelet", CFG_NULL, &ko,
	    err)) < 0 ||
	    (r = cfg_get_bool(o, "runtime", "rootless", 0,
	    &cfg->runtime_rootless, err)) < 0 ||
	    (r = cfg_get_string(o, "runtime", "socket", CFG_NULL |
	    (ko || json_object_get(o, "rootless") ? 0 : CFG_REQUIRED),
	    &socket, err)) < 0))
		return r;
	if (socket && !(cfg->runtime_socket = strdup(socket)))
		return -ENOMEM;
	if (ko) {
		if (!(cfg->kubelet = calloc(1, sizeof(*cfg->kubelet))))
			return -ENOMEM;
		if ((r = kubelet_config_from_json(ko, "runtime.kubelet",
		    cfg->kubelet, err)) < 0)
			return r;
	}
	/* A k8s matcher with no kubelet to ask could never hold. */
	if (!cfg->kubelet && (ri = policy_first_k8s_rule(cfg->policy)) >= 0) {
		char mpath[CFG_PATH_MAX];

		cfg_path_index(kpath, sizeof(kpath), "rules", (size_t)ri);
		cfg_path_key(mpath, sizeof(mpath), kpath, "match");
		cfg_path_key(kpath, sizeof(kpath), mpath, "k8s");
		return cfg_err_set(err, kpath, "needs a Kubernetes identity "
		    "source: \"runtime\": {\"kubelet\": {...}}");
	}

	if ((r = cfg_get_object(root, "", "audit", 0, &o, err)) < 0 || !o)
		return r;
	if (!(cfg->audit = calloc(1, sizeof(*cfg->audit))))
		return -ENOMEM;
	audit_config_init(cfg->audit);
	return audit_config_from_json(o, "audit", cfg->audit, err);
}

/* "control": {"socket": PATH}: the operator's socket (control.h). */
static int
parse_control(const json_t *root, struct config *cfg, struct cfg_err *err)
{
	static const char *const keys[] = { "socket", NULL };
	const char *path = NULL;
	size_t mlen;
	json_t *o;
	int r;

	if ((r = cfg_get_object(root, "", "control", 0, &o, err)) < 0 || !o)
		return r;
	if ((r = cfg_check_keys(o, "control", keys, err)) < 0 ||
	    (r = cfg_get_string(o, "control", "socket", CFG_NULL, &path,
	    err)) < 0)
		return r;
	if (!path)
		return 0;
	if (path[0] != '/')
		return cfg_err_set(err, "control.socket",
		    "expected an absolute path");
	/* sun_path holds 108 bytes with its NUL. */
	if (strlen(path) > 107)
		return cfg_err_set(err, "control.socket",
		    "longer than a Unix socket path may be (107 bytes)");
	/* Inside the mount it would be served by ourselves, read-only. */
	mlen = strlen(cfg->mountpoint);
	while (mlen > 1 && cfg->mountpoint[mlen - 1] == '/')
		mlen--;
	if (strncmp(path, cfg->mountpoint, mlen) == 0 &&
	    (path[mlen] == '/' || path[mlen] == '\0' || mlen == 1))
		return cfg_err_set(err, "control.socket",
		    "must not be inside the mount (%s)", cfg->mountpoint);
	cfg->control_socket = strdup(path);
	return cfg->control_socket ? 0 : -ENOMEM;
}

/* "privsep": {"user": NAME}: who the fetcher runs as (privsep.h). */
static int
parse_privsep(const json_t *root, struct config *cfg, struct cfg_err *err)
{
	static const char *const keys[] = { "user", NULL };
	const char *user = NULL;
	json_t *o;
	int r;

	if ((r = cfg_get_object(root, "", "privsep", 0, &o, err)) < 0)
		return r;
	if (o && ((r = cfg_check_keys(o, "privsep", keys, err)) < 0 ||
	    (r = cfg_get_string(o, "privsep", "user", CFG_NULL, &user,
	    err)) < 0))
		return r;
	if (!user)
		user = CONFIG_DEFAULT_FETCHER_USER;
	if (!user[0] || strlen(user) > 32)
		return cfg_err_set(err, "privsep.user",
		    "expected a user name of 1 to 32 characters");
	cfg->fetcher_user = strdup(user);
	return cfg->fetcher_user ? 0 : -ENOMEM;
}

int
config_parse_root(struct config *cfg, const json_t *root, struct cfg_err *err)
{
	static const char *const keys[] = { "mount", "memory", "cache",
	    "defaults", "backends", "secrets", "rules", "access", "runtime",
	    "audit", "control", "privsep", "metrics", NULL };
	struct defaults d;
	int r;

	if (!json_is_object(root))
		return cfg_err_set(err, "", "the document must be a JSON "
		    "object");
	if ((r = cfg_check_keys(root, "", keys, err)) < 0 ||
	    (r = parse_mount(root, cfg, err)) < 0 ||
	    (r = parse_limits(root, cfg, err)) < 0 ||
	    (r = parse_defaults(root, &d, err)) < 0 ||
	    (r = parse_backends(root, cfg, err)) < 0 ||
	    (r = parse_secrets(root, cfg, &d, err)) < 0 ||
	    (r = parse_access(root, cfg, err)) < 0 ||
	    (r = parse_control(root, cfg, err)) < 0 ||
	    (r = parse_privsep(root, cfg, err)) < 0 ||
	    (r = config_parse_metrics(root, cfg, err)) < 0)
		return r;
	return 0;
}
