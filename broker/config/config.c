/*
 * The JSON configuration. jansson parses; it does not remember where a
 * value stood in the text, so errors are placed by walking the original
 * text along the key path of the bad value (locate()).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <secretsfs/audit.h>
#include <secretsfs/backend.h>
#include <secretsfs/config.h>
#include <secretsfs/policy.h>
#include <secretsfs/secfile.h>

#define CONFIG_MAX_BYTES	(16u << 20)

#define DEFAULT_MOUNTPOINT	"/run/secretsfs"
#define DEFAULT_LOCKED		(32u << 20)
#define DEFAULT_CACHE_MAX	(8u << 20)
#define DEFAULT_NEG_TTL_MS	5000
#define DEFAULT_REFRESH_MS	60000
#define DEFAULT_MODE		0400
#define DEFAULT_MAX_STALE_MS	(3600 * 1000)
#define DEFAULT_DELETE_GRACE_MS	30000

static const struct {
	const char	*name;
	int		 sig;
} signals[] = {
	{ "SIGHUP", SIGHUP }, { "SIGINT", SIGINT }, { "SIGQUIT", SIGQUIT },
	{ "SIGUSR1", SIGUSR1 }, { "SIGUSR2", SIGUSR2 }, { "SIGTERM", SIGTERM },
	{ "SIGWINCH", SIGWINCH }, { "SIGALRM", SIGALRM },
};

int
config_signal_from_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (strcmp(name, signals[i].name) == 0 ||
		    strcmp(name, signals[i].name + 3) == 0)
			return signals[i].sig;
	return -EINVAL;
}

const char *
config_signal_name(int sig)
{
	size_t i;

	for (i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (signals[i].sig == sig)
			return signals[i].name;
	return "signal";
}

/* --- placing a key path in the text ------------------------------------ */

struct cursor {
	const char	*s;
	size_t		 i, n;
};

static void
skip_ws(struct cursor *c)
{
	while (c->i < c->n && isspace((unsigned char)c->s[c->i]))
		c->i++;
}

/* Past a string whose opening quote is at c->i; its raw bytes in *b,*e. */
static int
skip_string(struct cursor *c, size_t *b, size_t *e)
{
	if (c->i >= c->n || c->s[c->i] != '"')
		return -1;
	*b = ++c->i;
	while (c->i < c->n && c->s[c->i] != '"') {
		if (c->s[c->i] == '\\')
			c->i++;
		c->i++;
	}
	if (c->i >= c->n)
		return -1;
	*e = c->i++;
	return 0;
}

static int
skip_value(struct cursor *c)
{
	size_t b, e;
	int depth = 0;

	skip_ws(c);
	do {
		if (c->i >= c->n)
			return -1;
		switch (c->s[c->i]) {
		case '"':
			if (skip_string(c, &b, &e) < 0)
				return -1;
			continue;
		case '{': case '[':
			depth++;
			break;
		case '}': case ']':
			if (depth == 0)
				return 0;	/* end of the enclosing container */
			depth--;
			break;
		case ',':
			if (depth == 0)
				return 0;
			break;
		default:
			if (depth == 0 && isspace((unsigned char)c->s[c->i]))
				return 0;
		}
		c->i++;
	} while (depth > 0 || (c->i < c->n && !strchr(",}] \t\r\n", c->s[c->i])));
	return 0;
}

/* Next segment of a key path: a key (quoted or bare) or [index]. */
static int
next_segment(const char **p, char *key, size_t keylen, long *index)
{
	const char *s = *p;
	size_t k = 0;

	if (*s == '.')
		s++;
	*index = -1;
	if (*s == '[') {
		*index = strtol(s + 1, (char **)&s, 10);
		if (*s != ']')
			return -1;
		*p = s + 1;
		return 0;
	}
	if (*s == '"') {
		for (s++; *s && *s != '"'; s++)
			if (k + 1 < keylen)
				key[k++] = *s;
		if (*s == '"')
			s++;
	} else {
		for (; *s && *s != '.' && *s != '['; s++)
			if (k + 1 < keylen)
				key[k++] = *s;
	}
	key[k] = '\0';
	*p = s;
	return k ? 0 : -1;
}

static void
pos_of(const char *text, size_t off, int *line, int *col)
{
	size_t i;

	*line = 1;
	*col = 1;
	for (i = 0; i < off; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else
			(*col)++;
	}
}

/*
 * Where does `path` point in `text`? The key of the deepest member found
 * (or the element, for an index); as deep as the path can be followed.
 */
static void
locate(const char *text, size_t len, const char *path, int *line, int *col)
{
	struct cursor c = { text, 0, len };
	size_t found, kb, ke;
	char key[256];
	long index;

	skip_ws(&c);
	found = c.i;
	while (*path && next_segment(&path, key, sizeof(key), &index) == 0) {
		skip_ws(&c);
		if (index >= 0) {
			if (c.i >= c.n || text[c.i] != '[')
				break;
			c.i++;
			for (long n = 0; n < index; n++) {
				if (skip_value(&c) < 0 || c.i >= c.n || text[c.i] != ',')
					goto done;
				c.i++;
			}
			skip_ws(&c);
			found = c.i;
			continue;
		}
		if (c.i >= c.n || text[c.i] != '{')
			break;
		c.i++;
		for (;;) {
			skip_ws(&c);
			if (skip_string(&c, &kb, &ke) < 0)
				goto done;
			skip_ws(&c);
			if (c.i >= c.n || text[c.i] != ':')
				goto done;
			c.i++;
			if (ke - kb == strlen(key) &&
			    memcmp(text + kb, key, ke - kb) == 0) {
				found = kb - 1;
				break;
			}
			if (skip_value(&c) < 0 || c.i >= c.n || text[c.i] != ',')
				goto done;
			c.i++;
		}
	}
done:
	pos_of(text, found, line, col);
}

/* --- building key paths ------------------------------------------------ */

static void
path_key(char *out, size_t len, const char *parent, const char *key)
{
	bool bare = *key != '\0';

	for (const char *p = key; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
			bare = false;
	snprintf(out, len, bare ? "%s%s%s" : "%s%s\"%s\"", parent,
	    *parent ? "." : "", key);
}

/* --- typed getters ----------------------------------------------------- */

static int
check_keys(const json_t *obj, const char *path, const char *const *allowed,
    struct cfg_err *err)
{
	const char *k;
	json_t *v;
	char p[256];

	json_object_foreach((json_t *)obj, k, v) {
		const char *const *a;

		for (a = allowed; *a; a++)
			if (strcmp(*a, k) == 0)
				break;
		if (!*a) {
			path_key(p, sizeof(p), path, k);
			return cfg_err_set(err, p, "unknown key");
		}
	}
	return 0;
}

static int
get_object(const json_t *parent, const char *path, const char *key,
    bool required, json_t **out, struct cfg_err *err)
{
	json_t *v = json_object_get(parent, key);
	char p[256];

	path_key(p, sizeof(p), path, key);
	*out = NULL;
	if (!v) {
		if (required)
			return cfg_err_set(err, *path ? path : p,
			    "missing required key \"%s\"", key);
		return 0;
	}
	if (!json_is_object(v))
		return cfg_err_set(err, p, "expected an object");
	*out = v;
	return 0;
}

static int
get_string(const json_t *parent, const char *path, const char *key,
    bool required, const char **out, struct cfg_err *err)
{
	json_t *v = json_object_get(parent, key);
	char p[256];

	path_key(p, sizeof(p), path, key);
	if (!v || json_is_null(v)) {
		if (required)
			return cfg_err_set(err, *path ? path : p,
			    "missing required key \"%s\"", key);
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) == 0)
		return cfg_err_set(err, p, "expected a non-empty string");
	if (strlen(json_string_value(v)) != json_string_length(v))
		return cfg_err_set(err, p, "string holds a NUL byte");
	*out = json_string_value(v);
	return 0;
}

static int
get_bool(const json_t *parent, const char *path, const char *key, bool *out,
    struct cfg_err *err)
{
	json_t *v = json_object_get(parent, key);
	char p[256];

	if (!v)
		return 0;
	path_key(p, sizeof(p), path, key);
	if (!json_is_boolean(v))
		return cfg_err_set(err, p, "expected true or false");
	*out = json_is_true(v);
	return 0;
}

static int
get_duration(const json_t *parent, const char *path, const char *key,
    int64_t *ms, struct cfg_err *err)
{
	json_t *v = json_object_get(parent, key);
	char p[256];

	if (!v)
		return 0;
	path_key(p, sizeof(p), path, key);
	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) < INT64_MAX / 2000) {
		*ms = json_integer_value(v) * 1000;
		return 0;
	}
	if (!json_is_string(v) ||
	    cfg_parse_duration(json_string_value(v), ms) < 0)
		return cfg_err_set(err, p, "expected a duration such as "
		    "\"500ms\", \"30s\", \"5m\" or \"1h\"");
	return 0;
}

static int
get_size(const json_t *parent, const char *path, const char *key,
    uint64_t *bytes, struct cfg_err *err)
{
	json_t *v = json_object_get(parent, key);
	char p[256];

	if (!v)
		return 0;
	path_key(p, sizeof(p), path, key);
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*bytes = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v) ||
	    cfg_parse_size(json_string_value(v), bytes) < 0)
		return cfg_err_set(err, p, "expected a size such as "
		    "\"4096\", \"64KiB\" or \"16MiB\"");
	return 0;
}

static int
get_mode(const json_t *parent, const char *path, const char *key,
    mode_t *mode, struct cfg_err *err)
{
	json_t *v = json_object_get(parent, key);
	const char *s;
	char p[256], *end;
	long m;

	if (!v)
		return 0;
	path_key(p, sizeof(p), path, key);
	if (!json_is_string(v))
		return cfg_err_set(err, p, "expected an octal string such "
		    "as \"0440\"");
	s = json_string_value(v);
	m = strtol(s, &end, 8);
	if (!*s || *end || m < 0)
		return cfg_err_set(err, p, "expected an octal string such "
		    "as \"0440\"");
	/* A secret file is never writable, executable or special. */
	if (m & ~0444L)
		return cfg_err_set(err, p, "mode %s grants more than read "
		    "permission; use a subset of 0444", s);
	*mode = (mode_t)m;
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
	path_key(p, sizeof(p), path, key);
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

	if ((r = get_object(parent, path, "on_rotate", false, &o, err)) < 0 ||
	    !o)
		return r;
	path_key(p, sizeof(p), path, "on_rotate");
	if ((r = check_keys(o, p, keys, err)) < 0 ||
	    (r = get_string(o, p, "signal", true, &name, err)) < 0)
		return r;
	path_key(sp, sizeof(sp), p, "signal");
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
	if ((r = get_object(root, "", "defaults", false, &o, err)) < 0 || !o)
		return r;
	if ((r = check_keys(o, "defaults", keys, err)) < 0 ||
	    (r = get_mode(o, "defaults", "mode", &d->mode, err)) < 0 ||
	    (r = get_id(o, "defaults", "uid", false, &d->uid, err)) < 0 ||
	    (r = get_id(o, "defaults", "gid", true, &d->gid, err)) < 0 ||
	    (r = get_duration(o, "defaults", "refresh", &d->refresh_ms, err)) < 0 ||
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
	if ((r = get_object(root, "", "mount", false, &o, err)) < 0)
		return r;
	if (o) {
		if ((r = check_keys(o, "mount", keys, err)) < 0 ||
		    (r = get_string(o, "mount", "path", false, &path, err)) < 0 ||
		    (r = get_bool(o, "mount", "allow_other", &cfg->allow_other,
		    err)) < 0)
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
	if ((r = get_object(root, "", "memory", false, &o, err)) < 0)
		return r;
	if (o && ((r = check_keys(o, "memory", mkeys, err)) < 0 ||
	    (r = get_size(o, "memory", "locked_bytes", &cfg->locked_bytes,
	    err)) < 0))
		return r;
	if ((r = get_object(root, "", "cache", false, &o, err)) < 0)
		return r;
	if (o && ((r = check_keys(o, "cache", ckeys, err)) < 0 ||
	    (r = get_size(o, "cache", "max_bytes", &cfg->cache_max_bytes,
	    err)) < 0 ||
	    (r = get_duration(o, "cache", "negative_ttl", &cfg->negative_ttl_ms,
	    err)) < 0 ||
	    (r = get_duration(o, "cache", "max_stale", &cfg->max_stale_ms,
	    err)) < 0 ||
	    (r = get_duration(o, "cache", "delete_grace", &cfg->delete_grace_ms,
	    err)) < 0))
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

	if ((r = get_object(root, "", "backends", true, &o, err)) < 0)
		return r;
	if (json_object_size(o) == 0)
		return cfg_err_set(err, "backends", "no backend is defined");
	if (!(cfg->backends = calloc(json_object_size(o), sizeof(*cfg->backends))))
		return -ENOMEM;
	json_object_foreach(o, name, b) {
		struct config_backend *cb = &cfg->backends[i];

		path_key(p, sizeof(p), "backends", name);
		if (!json_is_object(b))
			return cfg_err_set(err, p, "expected an object");
		if ((r = get_string(b, p, "type", true, &type, err)) < 0)
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
	path_key(kp, sizeof(kp), p, "as");
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
		path_key(kp, sizeof(kp), p, "field");
		return cfg_err_set(err, kp, "not with \"as\": \"directory\" "
		    "(each key is already a file)");
	}
	if (*out == CONFIG_AS_PREFIX && version) {
		path_key(kp, sizeof(kp), p, "version");
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

	if ((r = get_object(root, "", "secrets", true, &o, err)) < 0)
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

		path_key(p, sizeof(p), "secrets", name);
		if (!valid_name(name))
			return cfg_err_set(err, p, "not a valid file name "
			    "(no '/', no control characters, not . or ..)");
		if (!json_is_object(s))
			return cfg_err_set(err, p, "expected an object");
		cs->mode = d->mode;
		cs->refresh_ms = d->refresh_ms;
		cs->on_rotate = d->on_rotate;
		if ((r = check_keys(s, p, keys, err)) < 0 ||
		    (r = get_string(s, p, "backend", true, &backend, err)) < 0 ||
		    (r = get_string(s, p, "ref", false, &ref, err)) < 0 ||
		    (r = get_string(s, p, "field", false, &field, err)) < 0 ||
		    (r = get_string(s, p, "version", false, &version, err)) < 0 ||
		    (r = get_mode(s, p, "mode", &cs->mode, err)) < 0 ||
		    (r = get_id(s, p, "uid", false, &uid, err)) < 0 ||
		    (r = get_id(s, p, "gid", true, &gid, err)) < 0 ||
		    (r = get_duration(s, p, "refresh", &cs->refresh_ms, err)) < 0 ||
		    (r = get_string(s, p, "as", false, &as, err)) < 0 ||
		    (r = get_on_rotate(s, p, &cs->on_rotate, err)) < 0)
			return r;
		if ((r = parse_as(s, p, as, field, version, &cs->as, err)) < 0)
			return r;
		if ((bi = config_find_backend(cfg, backend)) < 0) {
			char bp[256];

			path_key(bp, sizeof(bp), p, "backend");
			return cfg_err_set(err, bp, "no backend named \"%s\" "
			    "in \"backends\"", backend);
		}
		if (cs->refresh_ms < 1000) {
			char rp[256];

			path_key(rp, sizeof(rp), p, "refresh");
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
	static const char *const rkeys[] = { "socket", NULL };
	const char *denied = "enoent", *socket = NULL;
	json_t *o;
	int r;

	if ((r = policy_from_json(json_object_get(root, "rules"), "rules",
	    &cfg->policy, err)) < 0)
		return r;
	if ((r = get_object(root, "", "access", false, &o, err)) < 0)
		return r;
	if (o && ((r = check_keys(o, "access", akeys, err)) < 0 ||
	    (r = get_string(o, "access", "denied", false, &denied, err)) < 0))
		return r;
	if (strcmp(denied, "enoent") == 0)
		cfg->deny_errno = ENOENT;
	else if (strcmp(denied, "eacces") == 0)
		cfg->deny_errno = EACCES;
	else
		return cfg_err_set(err, "access.denied", "expected \"enoent\" "
		    "(denied names are invisible) or \"eacces\" (for debugging)");

	if ((r = get_object(root, "", "runtime", false, &o, err)) < 0)
		return r;
	if (o && ((r = check_keys(o, "runtime", rkeys, err)) < 0 ||
	    (r = get_string(o, "runtime", "socket", true, &socket, err)) < 0))
		return r;
	if (socket && !(cfg->runtime_socket = strdup(socket)))
		return -ENOMEM;

	if ((r = get_object(root, "", "audit", false, &o, err)) < 0 || !o)
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

	if ((r = get_object(root, "", "control", false, &o, err)) < 0 || !o)
		return r;
	if ((r = check_keys(o, "control", keys, err)) < 0 ||
	    (r = get_string(o, "control", "socket", false, &path, err)) < 0)
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

	if ((r = get_object(root, "", "privsep", false, &o, err)) < 0)
		return r;
	if (o && ((r = check_keys(o, "privsep", keys, err)) < 0 ||
	    (r = get_string(o, "privsep", "user", false, &user, err)) < 0))
		return r;
	if (!user)
		user = CONFIG_DEFAULT_FETCHER_USER;
	if (!user[0] || strlen(user) > 32)
		return cfg_err_set(err, "privsep.user",
		    "expected a user name of 1 to 32 characters");
	cfg->fetcher_user = strdup(user);
	return cfg->fetcher_user ? 0 : -ENOMEM;
}

static int
parse_root(struct config *cfg, const json_t *root, struct cfg_err *err)
{
	static const char *const keys[] = { "mount", "memory", "cache",
	    "defaults", "backends", "secrets", "rules", "access", "runtime",
	    "audit", "control", "privsep", NULL };
	struct defaults d;
	int r;

	if (!json_is_object(root))
		return cfg_err_set(err, "", "the document must be a JSON "
		    "object");
	if ((r = check_keys(root, "", keys, err)) < 0 ||
	    (r = parse_mount(root, cfg, err)) < 0 ||
	    (r = parse_limits(root, cfg, err)) < 0 ||
	    (r = parse_defaults(root, &d, err)) < 0 ||
	    (r = parse_backends(root, cfg, err)) < 0 ||
	    (r = parse_secrets(root, cfg, &d, err)) < 0 ||
	    (r = parse_access(root, cfg, err)) < 0 ||
	    (r = parse_control(root, cfg, err)) < 0 ||
	    (r = parse_privsep(root, cfg, err)) < 0)
		return r;
	return 0;
}

/* A document this large is followed by malloc_trim(). */
#define CONFIG_TRIM_BYTES	(64 * 1024)

static int
digest_cb(const char *buf, size_t len, void *arg)
{
	return EVP_DigestUpdate(arg, buf, len) == 1 ? 0 : -1;
}

/*
 * What a reload compares, so that the parsed document need not be kept:
 * with 10,000 secrets it is most of the configuration's memory. The
 * digest is of the canonical form (keys sorted, compact), so it is equal
 * exactly when json_equal() of the documents would be.
 */
static int
keep_for_reload(struct config *cfg, json_t *root)
{
	static const char *const restart[] = { "mount", "memory", "audit",
	    "runtime", "control", "privsep" };
	EVP_MD_CTX *md;
	unsigned int n = 0;
	json_t *v;
	size_t i;
	int ok;

	if (!(md = EVP_MD_CTX_new()))
		return -ENOMEM;
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    json_dump_callback(root, digest_cb, md,
	    JSON_COMPACT | JSON_SORT_KEYS) == 0 &&
	    EVP_DigestFinal_ex(md, cfg->digest, &n) == 1 &&
	    n == sizeof(cfg->digest);
	EVP_MD_CTX_free(md);
	if (!ok)
		return -ENOMEM;
	if (!(cfg->restart = json_object()))
		return -ENOMEM;
	for (i = 0; i < sizeof(restart) / sizeof(restart[0]); i++)
		if ((v = json_object_get(root, restart[i])) &&
		    json_object_set(cfg->restart, restart[i], v) < 0)
			return -ENOMEM;
	return 0;
}

int
config_load_string(const char *text, const char *file, struct config **out,
    struct cfg_err *err)
{
	struct config *cfg;
	json_error_t je;
	json_t *root;
	int r;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	if (!(cfg = calloc(1, sizeof(*cfg))))
		return -ENOMEM;
	if (!(cfg->file = strdup(file))) {
		free(cfg);
		return -ENOMEM;
	}
	root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		cfg_err_set(err, "", "invalid JSON: %s", je.text);
		err->line = je.line;
		err->col = je.column;
		config_free(cfg);
		return -EINVAL;
	}
	if ((r = parse_root(cfg, root, err)) < 0) {
		if (r == -EINVAL)
			locate(text, strlen(text), err->path, &err->line,
			    &err->col);
		else
			cfg_err_set(err, "", "%s", strerror(-r));
		json_decref(root);
		config_free(cfg);
		return r;
	}
	r = keep_for_reload(cfg, root);
	/* Backends hold their own references to their options. */
	json_decref(root);
	/*
	 * The document's nodes were allocated between the strings kept from
	 * it; freed, they stay resident as holes. For a large document
	 * (10,000 secrets: about 600 bytes each) give those pages back.
	 */
	if (strlen(text) >= CONFIG_TRIM_BYTES)
		malloc_trim(0);
	if (r < 0) {
		cfg_err_set(err, "", "%s", strerror(-r));
		config_free(cfg);
		return r;
	}
	*out = cfg;
	return 0;
}

int
config_load(const char *file, struct config **out, struct cfg_err *err)
{
	const unsigned flags = SECFILE_PRIVATE | SECFILE_HEAP;
	char ebuf[256];
	uint8_t *text;
	size_t len;
	int r;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	r = secfile_read(file, flags, CONFIG_MAX_BYTES, &text, &len, NULL, ebuf,
	    sizeof(ebuf));
	if (r < 0) {
		/* ebuf starts with the file name; cfg_err_format adds it. */
		const char *why = strncmp(ebuf, file, strlen(file)) == 0 ?
		    ebuf + strlen(file) + 2 : ebuf;
		cfg_err_set(err, "", "%s: %s", r == -EPERM ? "refused" :
		    r == -EFBIG ? "too large" : "cannot open", why);
		return r;
	}
	r = config_load_string((char *)text, file, out, err);
	/* Static credentials may sit in the config. */
	secfile_free(text, len, flags);
	return r;
}

void
config_free(struct config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n_backends; i++) {
		free(cfg->backends[i].name);
		free(cfg->backends[i].type);
		free(cfg->backends[i].path);
		json_decref(cfg->backends[i].options);
	}
	free(cfg->backends);
	for (i = 0; i < cfg->n_secrets; i++) {
		free(cfg->secrets[i].name);
		if (cfg->secrets[i].ref != cfg->secrets[i].name)
			free(cfg->secrets[i].ref);
		free(cfg->secrets[i].field);
		free(cfg->secrets[i].version);
	}
	free(cfg->secrets);
	policy_free(cfg->policy);
	free(cfg->runtime_socket);
	free(cfg->control_socket);
	free(cfg->fetcher_user);
	audit_config_clear(cfg->audit);
	free(cfg->audit);
	json_decref(cfg->restart);
	free(cfg->mountpoint);
	free(cfg->file);
	free(cfg);
}

ssize_t
config_find_secret(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_secrets; i++)
		if (strcmp(cfg->secrets[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

ssize_t
config_find_backend(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_backends; i++)
		if (strcmp(cfg->backends[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}
