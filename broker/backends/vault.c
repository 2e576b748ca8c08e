/*
 * The Vault backend: KV v1/v2 reads and lists over mutual TLS, with cert,
 * AppRole, Kubernetes or token-file auth (configuration: vault.h).
 *
 * The token is the only state shared by fetching threads. It lives in the
 * locked arena; a request takes its own copy under the lock and lets go
 * of the lock before any I/O. Logins are serialised by a second lock, so
 * that N threads that all meet an expired token cause one login, not N.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <secretsfs/clk.h>
#include <secretsfs/backend.h>
#include <secretsfs/http.h>
#include <secretsfs/log.h>
#include <secretsfs/secfile.h>
#include <secretsfs/secmem.h>
#include <secretsfs/vault.h>

#define CRED_MAX		(64u << 10)	/* role/secret id, JWT, token */
#define DEFAULT_JWT_FILE	"/var/run/secrets/kubernetes.io/serviceaccount/token"
#define MIN_RENEW_MS		250
#define LOGIN_RETRY_MIN_MS	1000
#define LOGIN_RETRY_MAX_MS	30000
#define VMSG_MAX		160

enum auth_method { AUTH_CERT, AUTH_APPROLE, AUTH_KUBERNETES, AUTH_TOKEN };

static const char *const method_names[] = {
	[AUTH_CERT] = "cert",
	[AUTH_APPROLE] = "approle",
	[AUTH_KUBERNETES] = "kubernetes",
	[AUTH_TOKEN] = "token",
};

/* The parsed config object; strings point into it or into the env. */
struct vault_conf {
	const char		*address;
	const char		*ns;
	struct http_options	 http;
	const char		*kv_mount;
	int			 kv_version;
	enum auth_method	 method;
	const char		*auth_mount;
	const char		*cert_name;
	const char		*role_id_file;
	const char		*secret_id_file;
	const char		*role;
	const char		*jwt_file;
	const char		*token_file;
};

struct vault {
	char			*name;
	char			*ns;
	char			*kv_mount;
	int			 kv_version;
	enum auth_method	 method;
	char			*auth_mount;
	char			*cert_name;
	char			*role_id_file;
	char			*secret_id_file;
	char			*role;
	char			*jwt_file;
	char			*token_file;
	struct http_client	*http;

	pthread_mutex_t		 mu;		/* everything below */
	pthread_cond_t		 cond;		/* wakes the renewer */
	char			*token;		/* secmem; NULL before login */
	uint64_t		 gen;		/* bumps at every login */
	bool			 renewable;
	int64_t			 ttl_ms;	/* 0: never expires */
	int64_t			 login_ttl_ms;
	int64_t			 renew_at;	/* monotonic ms; 0: not due */
	int64_t			 login_retry_ms;
	uint64_t		 login_attempts;
	bool			 login_failed;
	int			 login_err;
	char			 login_why[BACKEND_ERR_MAX];
	bool			 thread_started;
	bool			 stop;
	pthread_t		 thread;

	pthread_mutex_t		 login_mu;	/* one login at a time */
};

/* --- parsers ------------------------------------------------------------- */

/* Vault's words, fit for a log line: no control characters, bounded. */
static void
clean_copy(char *dst, size_t dlen, const char *s)
{
	size_t o = 0;
	bool space = false;

	if (!dlen)
		return;
	for (; *s && o + 1 < dlen; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch == 0x7f || ch == ' ') {
			space = o > 0;
			continue;
		}
		if (space && o + 2 < dlen)
			dst[o++] = ' ';
		space = false;
		dst[o++] = (char)ch;
	}
	dst[o] = '\0';
}

static json_t *
load(const uint8_t *body, size_t len)
{
	json_error_t je;

	if (!body || !len)
		return NULL;
	/* je.text may quote the body: it is never shown. */
	return json_loadb((const char *)body, len, 0, &je);
}

/* obj as compact JSON, into the arena. */
static int
dump_secmem(const json_t *obj, uint8_t **out, size_t *len)
{
	size_t n = json_dumpb(obj, NULL, 0, JSON_COMPACT);
	uint8_t *buf;

	*out = NULL;
	*len = 0;
	if (n == 0)
		return -ENOMEM;
	if (!(buf = secmem_alloc(n + 1)))
		return -ENOMEM;
	if (json_dumpb(obj, (char *)buf, n, JSON_COMPACT) != n) {
		secmem_free(buf);
		return -EIO;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

int
vault_parse_time(const char *s, struct timespec *ts)
{
	struct tm tm;
	const char *p;
	long ns = 0, off = 0;
	int digits = 0;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	ts->tv_sec = 0;
	ts->tv_nsec = 0;
	if (!s || !isdigit((unsigned char)*s) ||
	    !(p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)))
		return -EINVAL;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		for (; isdigit((unsigned char)*p); p++)
			if (digits < 9) {
				ns = ns * 10 + (*p - '0');
				digits++;
			}
		for (; digits < 9; digits++)
			ns *= 10;
	}
	if (*p == 'Z' || *p == 'z')
		p++;
	else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
	    isdigit((unsigned char)p[2]) && p[3] == ':' &&
	    isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5])) {
		off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 +
		    ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		if (*p == '-')
			off = -off;
		p += 6;
	} else
		return -EINVAL;
	if (*p)
		return -EINVAL;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -EINVAL;
	ts->tv_sec = t - off;
	ts->tv_nsec = ns;
	return 0;
}

int
vault_parse_kv2(const uint8_t *body, size_t len, struct backend_value *out,
    char *errbuf, size_t errlen)
{
	json_t *root, *data, *meta, *d, *ver, *del, *cr;
	const char *deleted = "";
	json_int_t version = 0;
	int r;

	memset(out, 0, sizeof(*out));
	root = load(body, len);
	data = json_object_get(root, "data");
	meta = json_object_get(data, "metadata");
	if (!json_is_object(data) || !json_is_object(meta)) {
		snprintf(errbuf, errlen, "not a KV v2 answer (no "
		    "data.metadata)");
		json_decref(root);
		return -EIO;
	}
	if (json_is_integer(ver = json_object_get(meta, "version")))
		version = json_integer_value(ver);
	if (json_is_string(del = json_object_get(meta, "deletion_time")))
		deleted = json_string_value(del);
	d = json_object_get(data, "data");
	if (json_is_true(json_object_get(meta, "destroyed"))) {
		snprintf(errbuf, errlen, "version %" JSON_INTEGER_FORMAT
		    " is destroyed", version);
		json_decref(root);
		return -ENOENT;
	}
	/* A deletion_time in the future is a scheduled deletion: still here. */
	if (!d || json_is_null(d)) {
		if (*deleted) {
			char when[64];

			clean_copy(when, sizeof(when), deleted);
			snprintf(errbuf, errlen, "version %" JSON_INTEGER_FORMAT
			    " was deleted at %s", version, when);
			r = -ENOENT;
		} else {
			snprintf(errbuf, errlen, "version %" JSON_INTEGER_FORMAT
			    " has no data", version);
			r = -EIO;
		}
		json_decref(root);
		return r;
	}
	if (!json_is_object(d)) {
		snprintf(errbuf, errlen, "not a KV v2 answer (data.data is not "
		    "an object)");
		json_decref(root);
		return -EIO;
	}
	if ((r = dump_secmem(d, &out->data, &out->len)) < 0) {
		snprintf(errbuf, errlen, "locked memory exhausted");
		json_decref(root);
		return r;
	}
	snprintf(out->version, sizeof(out->version), "%" JSON_INTEGER_FORMAT,
	    version);
	if (json_is_string(cr = json_object_get(meta, "created_time")))
		(void)vault_parse_time(json_string_value(cr), &out->changed);
	json_decref(root);
	return 0;
}

int
vault_parse_kv1(const uint8_t *body, size_t len, struct backend_value *out,
    char *errbuf, size_t errlen)
{
	json_t *root, *d;
	int r;

	memset(out, 0, sizeof(*out));
	root = load(body, len);
	if (!json_is_object(d = json_object_get(root, "data"))) {
		snprintf(errbuf, errlen, "not a KV v1 answer (no data object)");
		json_decref(root);
		return -EIO;
	}
	if ((r = dump_secmem(d, &out->data, &out->len)) < 0)
		snprintf(errbuf, errlen, "locked memory exhausted");
	json_decref(root);
	return r;
}

void
vault_auth_clear(struct vault_auth *a)
{
	secmem_free(a->token);
	a->token = NULL;
	a->ttl_s = 0;
	a->renewable = false;
}

int
vault_parse_auth(const uint8_t *body, size_t len, struct vault_auth *out,
    char *errbuf, size_t errlen)
{
	json_t *root, *auth, *tok, *ld;

	memset(out, 0, sizeof(*out));
	root = load(body, len);
	auth = json_object_get(root, "auth");
	tok = json_object_get(auth, "client_token");
	if (!json_is_object(auth) || !json_is_string(tok) ||
	    json_string_length(tok) == 0 ||
	    strlen(json_string_value(tok)) != json_string_length(tok)) {
		snprintf(errbuf, errlen, "no auth.client_token in the answer");
		json_decref(root);
		return -EIO;
	}
	ld = json_object_get(auth, "lease_duration");
	if (ld && (!json_is_integer(ld) || json_integer_value(ld) < 0)) {
		snprintf(errbuf, errlen, "auth.lease_duration is not a "
		    "number of seconds");
		json_decref(root);
		return -EIO;
	}
	if (!(out->token = secmem_strdup(json_string_value(tok)))) {
		snprintf(errbuf, errlen, "locked memory exhausted");
		json_decref(root);
		return -ENOMEM;
	}
	out->ttl_s = ld ? json_integer_value(ld) : 0;
	out->renewable = json_is_true(json_object_get(auth, "renewable"));
	json_decref(root);
	return 0;
}

int
vault_parse_lookup(const uint8_t *body, size_t len, int64_t *ttl_s,
    bool *renewable, char *errbuf, size_t errlen)
{
	json_t *root, *data, *ttl;

	*ttl_s = 0;
	*renewable = false;
	root = load(body, len);
	data = json_object_get(root, "data");
	ttl = json_object_get(data, "ttl");
	if (!json_is_object(data) || !json_is_integer(ttl) ||
	    json_integer_value(ttl) < 0) {
		snprintf(errbuf, errlen, "not a token lookup answer (no "
		    "data.ttl)");
		json_decref(root);
		return -EIO;
	}
	*ttl_s = json_integer_value(ttl);
	*renewable = json_is_true(json_object_get(data, "renewable"));
	json_decref(root);
	return 0;
}

int
vault_parse_errors(const uint8_t *body, size_t len, char *msg, size_t msglen)
{
	json_t *root, *errs, *first;
	int n;

	if (msglen)
		msg[0] = '\0';
	root = load(body, len);
	if (!json_is_array(errs = json_object_get(root, "errors"))) {
		json_decref(root);
		return -EIO;
	}
	n = (int)json_array_size(errs);
	if (n > 0 && json_is_string(first = json_array_get(errs, 0)))
		clean_copy(msg, msglen, json_string_value(first));
	json_decref(root);
	return n;
}

int
vault_parse_list(const uint8_t *body, size_t len, char ***names, size_t *n,
    char *errbuf, size_t errlen)
{
	json_t *root, *keys, *k;
	char **out;
	size_t i;

	*names = NULL;
	*n = 0;
	root = load(body, len);
	keys = json_object_get(json_object_get(root, "data"), "keys");
	if (!json_is_array(keys)) {
		snprintf(errbuf, errlen, "not a LIST answer (no data.keys)");
		json_decref(root);
		return -EIO;
	}
	if (!(out = calloc(json_array_size(keys) + 1, sizeof(*out)))) {
		json_decref(root);
		return -ENOMEM;
	}
	json_array_foreach(keys, i, k) {
		if (!json_is_string(k) || json_string_length(k) == 0 ||
		    strlen(json_string_value(k)) != json_string_length(k)) {
			snprintf(errbuf, errlen, "data.keys[%zu] is not a name",
			    i);
			goto fail;
		}
		if (!(out[i] = strdup(json_string_value(k)))) {
			snprintf(errbuf, errlen, "out of memory");
			goto fail;
		}
	}
	*n = json_array_size(keys);
	*names = out;
	json_decref(root);
	return 0;
fail:
	for (i = 0; out[i]; i++)
		free(out[i]);
	free(out);
	json_decref(root);
	return -EIO;
}

/* The first of a 404's warnings (a v1 path on a v2 mount says so). */
static void
first_warning(const uint8_t *body, size_t len, char *msg, size_t msglen)
{
	json_t *root = load(body, len), *w;

	msg[0] = '\0';
	w = json_array_get(json_object_get(root, "warnings"), 0);
	if (json_is_string(w))
		clean_copy(msg, msglen, json_string_value(w));
	json_decref(root);
}

/* --- configuration ------------------------------------------------------- */

/* A path segment list fit for a URL: no empty, "." or ".." segments. */
static bool
safe_vault_path(const char *s, bool trailing_slash_ok)
{
	const char *p = s;

	if (*s == '/')
		return false;
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
				return false;
		p += n;
		if (*p == '/') {
			p++;
			if (!*p)
				return trailing_slash_ok;
		}
	}
	return true;
}

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* A value that can travel as a header: no control characters. */
static bool
header_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int
parse_auth(const json_t *auth, const char *path, struct vault_conf *vc,
    struct cfg_err *err)
{
	static const char *const cert_keys[] = { "method", "mount", "name",
	    NULL };
	static const char *const approle_keys[] = { "method", "mount",
	    "role_id_file", "secret_id_file", NULL };
	static const char *const k8s_keys[] = { "method", "mount", "role",
	    "jwt_file", NULL };
	static const char *const token_keys[] = { "method", "token_file",
	    NULL };
	const char *const *keys[] = { cert_keys, approle_keys, k8s_keys,
	    token_keys };
	const char *method = NULL;
	char p[CFG_PATH_MAX];
	size_t i;
	int r;

	if (!json_is_object(auth))
		return cfg_err_set(err, path, "expected an object");
	if ((r = cfg_get_string(auth, path, "method", 0, &method, err)) < 0)
		return r;
	if (!method)
		return cfg_err_set(err, path, "missing required key "
		    "\"method\" (cert, approle, kubernetes or token)");
	for (i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
		if (strcmp(method, method_names[i]) == 0)
			break;
	if (i == sizeof(method_names) / sizeof(method_names[0])) {
		cfg_path_key(p, sizeof(p), path, "method");
		return cfg_err_set(err, p, "unknown auth method \"%s\" "
		    "(cert, approle, kubernetes or token)", method);
	}
	vc->method = (enum auth_method)i;
	if ((r = cfg_check_keys(auth, path, keys[i], err)) < 0)
		return r;
	vc->auth_mount = method_names[i];
	if (vc->method != AUTH_TOKEN &&
	    (r = cfg_get_string(auth, path, "mount", 0, &vc->auth_mount,
	    err)) < 0)
		return r;
	if (!safe_vault_path(vc->auth_mount, false)) {
		cfg_path_key(p, sizeof(p), path, "mount");
		return cfg_err_set(err, p, "expected a mount path such as "
		    "\"approle\" or \"team/approle\"");
	}
	switch (vc->method) {
	case AUTH_CERT:
		if ((r = cfg_get_string(auth, path, "name", 0, &vc->cert_name,
		    err)) < 0)
			return r;
		if (!vc->http.tls || !vc->http.client_cert) {
			cfg_path_key(p, sizeof(p), path, "method");
			return cfg_err_set(err, p, "cert auth needs a client "
			    "certificate: set tls.client_cert and "
			    "tls.client_key (or $VAULT_CLIENT_CERT and "
			    "$VAULT_CLIENT_KEY)");
		}
		break;
	case AUTH_APPROLE:
		if ((r = cfg_get_path(auth, path, "role_id_file", 0,
		    &vc->role_id_file, err)) < 0 ||
		    (r = cfg_get_path(auth, path, "secret_id_file", 0,
		    &vc->secret_id_file, err)) < 0)
			return r;
		if (!vc->role_id_file)
			return cfg_err_set(err, path, "missing required key "
			    "\"role_id_file\"");
		break;
	case AUTH_KUBERNETES:
		vc->jwt_file = DEFAULT_JWT_FILE;
		if ((r = cfg_get_string(auth, path, "role", 0, &vc->role, err)) < 0 ||
		    (r = cfg_get_path(auth, path, "jwt_file", 0, &vc->jwt_file,
		    err)) < 0)
			return r;
		if (!vc->role)
			return cfg_err_set(err, path, "missing required key "
			    "\"role\"");
		break;
	case AUTH_TOKEN:
		if ((r = cfg_get_path(auth, path, "token_file", 0, &vc->token_file,
		    err)) < 0)
			return r;
		if (!vc->token_file)
			return cfg_err_set(err, path, "missing required key "
			    "\"token_file\"");
		break;
	}
	return 0;
}

static int
env_path(const char *var, const char *path, const char **out,
    struct cfg_err *err)
{
	const char *v = env(var);

	if (!v)
		return 0;
	if (v[0] != '/')
		return cfg_err_set(err, path, "$%s must be an absolute path",
		    var);
	*out = v;
	return 0;
}

static int
parse_conf(const json_t *opts, const char *path, struct vault_conf *vc,
    struct cfg_err *err)
{
	static const char *const keys[] = { "type", "address", "namespace",
	    "tls", "http", "kv", "auth", NULL };
	static const char *const kv_keys[] = { "mount", "version", NULL };
	const json_t *kv, *auth;
	char p[CFG_PATH_MAX], kp[CFG_PATH_MAX], why[256];
	int r;

	memset(vc, 0, sizeof(*vc));
	if ((r = cfg_check_keys(opts, path, keys, err)) < 0)
		return r;
	vc->address = env("VAULT_ADDR");
	vc->ns = env("VAULT_NAMESPACE");
	if ((r = cfg_get_string(opts, path, "address", 0, &vc->address,
	    err)) < 0 ||
	    (r = cfg_get_string(opts, path, "namespace", 0, &vc->ns, err)) < 0)
		return r;
	/* Caught here, not as an EINVAL on every request. */
	if (vc->ns && !header_safe(vc->ns)) {
		cfg_path_key(p, sizeof(p), path, "namespace");
		return cfg_err_set(err, p, "%s holds a control character",
		    vc->ns == env("VAULT_NAMESPACE") ? "$VAULT_NAMESPACE" :
		    "the namespace");
	}
	if ((r = http_options_from_json(opts, path, &vc->http, err)) < 0)
		return r;
	if (!vc->address)
		return cfg_err_set(err, path, "missing required key "
		    "\"address\" ($VAULT_ADDR is not set either)");
	if (vc->http.tls) {
		cfg_path_key(p, sizeof(p), path, "tls");
		if (!vc->http.ca_file &&
		    (r = env_path("VAULT_CACERT", p, &vc->http.ca_file, err)) < 0)
			return r;
		if (!vc->http.client_cert && (env("VAULT_CLIENT_CERT") ||
		    env("VAULT_CLIENT_KEY"))) {
			if (!env("VAULT_CLIENT_CERT") || !env("VAULT_CLIENT_KEY"))
				return cfg_err_set(err, p, "$VAULT_CLIENT_CERT "
				    "and $VAULT_CLIENT_KEY must be set together");
			if ((r = env_path("VAULT_CLIENT_CERT", p,
			    &vc->http.client_cert, err)) < 0 ||
			    (r = env_path("VAULT_CLIENT_KEY", p,
			    &vc->http.client_key, err)) < 0)
				return r;
		}
	}
	cfg_path_key(p, sizeof(p), path, "address");
	if (http_check_url(vc->address, vc->http.tls, why, sizeof(why)) < 0)
		return cfg_err_set(err, p, "%s", why);

	vc->kv_mount = "secret";
	vc->kv_version = 2;
	if ((kv = json_object_get(opts, "kv"))) {
		json_t *ver;

		cfg_path_key(p, sizeof(p), path, "kv");
		if (!json_is_object(kv))
			return cfg_err_set(err, p, "expected an object");
		if ((r = cfg_check_keys(kv, p, kv_keys, err)) < 0 ||
		    (r = cfg_get_string(kv, p, "mount", 0, &vc->kv_mount,
		    err)) < 0)
			return r;
		if ((ver = json_object_get(kv, "version"))) {
			cfg_path_key(kp, sizeof(kp), p, "version");
			if (!json_is_integer(ver) ||
			    (json_integer_value(ver) != 1 &&
			    json_integer_value(ver) != 2))
				return cfg_err_set(err, kp, "expected 1 or 2");
			vc->kv_version = (int)json_integer_value(ver);
		}
		if (!safe_vault_path(vc->kv_mount, false)) {
			cfg_path_key(kp, sizeof(kp), p, "mount");
			return cfg_err_set(err, kp, "expected a mount path "
			    "such as \"secret\" or \"team/kv\"");
		}
	}
	cfg_path_key(p, sizeof(p), path, "auth");
	if (!(auth = json_object_get(opts, "auth")))
		return cfg_err_set(err, path, "missing required key "
		    "\"auth\"");
	return parse_auth(auth, p, vc, err);
}

static int
vault_validate(const json_t *opts, const char *path, struct cfg_err *err)
{
	struct vault_conf vc;

	return parse_conf(opts, path, &vc, err);
}

/* --- HTTP ---------------------------------------------------------------- */

/* Percent-encode all but unreserved characters and '/'. */
static int
append_escaped(char *buf, size_t len, size_t *o, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (isalnum(ch) || strchr("-._~/", ch)) {
			if (*o + 1 >= len)
				return -ENAMETOOLONG;
			buf[(*o)++] = (char)ch;
		} else {
			if (*o + 3 >= len)
				return -ENAMETOOLONG;
			buf[(*o)++] = '%';
			buf[(*o)++] = hex[ch >> 4];
			buf[(*o)++] = hex[ch & 15];
		}
	}
	buf[*o] = '\0';
	return 0;
}

static int
build_path(char *buf, size_t len, const char *a, const char *b,
    const char *c, const char *d)
{
	const char *parts[] = { a, b, c, d };
	size_t o = 0;
	int r;

	buf[0] = '\0';
	for (size_t i = 0; i < 4; i++)
		if (parts[i] && (r = append_escaped(buf, len, &o, parts[i])) < 0)
			return r;
	return 0;
}

/*
 * One request to Vault with the headers every request carries. token may
 * be NULL (logins). Retries as the http options say.
 */
static int
vault_http(struct vault *v, const char *method, const char *path,
    const char *token, const uint8_t *body, size_t blen,
    struct http_response *resp, char *errbuf, size_t errlen)
{
	struct http_header h[4];
	struct http_request req;
	size_t n = 0;

	h[n++] = (struct http_header){ "X-Vault-Request", "true" };
	if (token)
		h[n++] = (struct http_header){ "X-Vault-Token", token };
	if (v->ns)
		h[n++] = (struct http_header){ "X-Vault-Namespace", v->ns };
	if (body)
		h[n++] = (struct http_header){ "Content-Type",
		    "application/json" };
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = path;
	req.headers = h;
	req.nheaders = n;
	req.body = body;
	req.body_len = blen;
	req.retry = true;
	return http_do(v->http, &req, resp, errbuf, errlen);
}

/* "[what: ]Vault answered 503: Vault is sealed" */
static void
describe_status(const struct http_response *resp, const char *what,
    char *errbuf, size_t errlen)
{
	char msg[VMSG_MAX];

	if (resp->status >= 300 && resp->status < 400 && resp->location[0]) {
		const char *l = resp->location, *host = strstr(l, "://");
		int n = host ? (int)(host + 3 - l) +
		    (int)strcspn(host + 3, "/?#") : (int)strlen(l);

		/*
		 * A standby without request forwarding points at the active
		 * node. Following would hand the token to an address the
		 * config does not name.
		 */
		snprintf(errbuf, errlen, "%.80s%sVault answered %ld, a redirect "
		    "to %.*s (a standby node names its active node so); "
		    "redirects are not followed", what ? what : "",
		    what ? ": " : "", resp->status, n > 80 ? 80 : n, l);
		return;
	}
	if (vault_parse_errors(resp->body, resp->body_len, msg,
	    sizeof(msg)) < 0)
		msg[0] = '\0';
	/* Vault's own words, cut to leave room for the rest of the line. */
	snprintf(errbuf, errlen, "%.80s%sVault answered %ld%s%.140s",
	    what ? what : "", what ? ": " : "", resp->status,
	    msg[0] ? ": " : "", msg);
}

/* --- credentials --------------------------------------------------------- */

static void
trim(uint8_t *buf, size_t *len)
{
	while (*len > 0 && isspace(buf[*len - 1]))
		buf[--*len] = '\0';
}

static int
read_cred(const char *path, bool private, uint8_t **out, size_t *len,
    char *errbuf, size_t errlen)
{
	int r;

	/* A service-account token may have any mode: the kubelet makes it
	 * 0644, and it is a symbolic link into the projected volume. */
	r = private ? secfile_read_private(path, CRED_MAX, out, len, errbuf,
	    errlen) : secfile_read(path, 0, CRED_MAX, out, len, NULL, errbuf,
	    errlen);
	if (r < 0)
		return r;
	trim(*out, len);
	if (*len == 0 || strlen((char *)*out) != *len) {
		snprintf(errbuf, errlen, "%s: empty, or not text", path);
		secmem_free(*out);
		*out = NULL;
		return -EINVAL;
	}
	return 0;
}

/* --- login and the token ------------------------------------------------- */

/* Fixed words for the audit trail: never Vault's text, a token or a body. */
static const char *
auth_reason(int r)
{
	switch (r) {
	case -EACCES:
		return "credentials refused";
	case -EPROTO:
		return "TLS failure";
	case -ETIMEDOUT:
		return "timed out";
	case -ECONNREFUSED:
		return "connection refused";
	case -EHOSTUNREACH:
		return "host not found";
	case -EPERM:
		return "credential file not private";
	case -ENOENT:
		return "credential file missing";
	case -EFBIG:
		return "answer too large";
	case -ENOMEM:
		return "out of memory";
	default:
		return "Vault error";
	}
}

static void
install_token(struct vault *v, struct vault_auth *a)
{
	int64_t now = clk_mono_ms(), in;

	pthread_mutex_lock(&v->mu);
	secmem_free(v->token);
	v->token = a->token;
	a->token = NULL;
	v->gen++;
	v->renewable = a->renewable;
	v->ttl_ms = v->login_ttl_ms = a->ttl_s * 1000;
	in = v->ttl_ms * 2 / 3;
	v->renew_at = v->ttl_ms ? now + (in > MIN_RENEW_MS ? in : MIN_RENEW_MS) :
	    0;
	v->login_retry_ms = 0;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->mu);
}

/* A login's answer; 400/401/403 mean Vault refused these credentials. */
static int
judge_login(struct http_response *resp, struct vault_auth *a, char *errbuf,
    size_t errlen)
{
	if (resp->status == 200)
		return vault_parse_auth(resp->body, resp->body_len, a, errbuf,
		    errlen);
	describe_status(resp, NULL, errbuf, errlen);
	return resp->status == 400 || resp->status == 401 ||
	    resp->status == 403 ? -EACCES : -EIO;
}

static int
login_body(struct vault *v, uint8_t **body, size_t *blen, char *errbuf,
    size_t errlen)
{
	uint8_t *a = NULL, *b = NULL;
	size_t alen, bl;
	json_t *o;
	int r = 0;

	*body = NULL;
	*blen = 0;
	if (!(o = json_object()))
		return -ENOMEM;
	switch (v->method) {
	case AUTH_CERT:
		if (v->cert_name)
			json_object_set_new(o, "name",
			    json_string(v->cert_name));
		break;
	case AUTH_APPROLE:
		if ((r = read_cred(v->role_id_file, true, &a, &alen, errbuf,
		    errlen)) < 0)
			break;
		if (v->secret_id_file && (r = read_cred(v->secret_id_file,
		    true, &b, &bl, errbuf, errlen)) < 0)
			break;
		json_object_set_new(o, "role_id",
		    json_stringn((char *)a, alen));
		if (b)
			json_object_set_new(o, "secret_id",
			    json_stringn((char *)b, bl));
		break;
	case AUTH_KUBERNETES:
		if ((r = read_cred(v->jwt_file, false, &a, &alen, errbuf,
		    errlen)) < 0)
			break;
		json_object_set_new(o, "role", json_string(v->role));
		json_object_set_new(o, "jwt", json_stringn((char *)a, alen));
		break;
	case AUTH_TOKEN:
		break;
	}
	secmem_free(a);
	secmem_free(b);
	if (r == 0 && (r = dump_secmem(o, body, blen)) < 0)
		snprintf(errbuf, errlen, "locked memory exhausted");
	json_decref(o);
	return r;
}

/* The token method: the file's token, checked with lookup-self. */
static int
login_token_file(struct vault *v, struct vault_auth *a, char *errbuf,
    size_t errlen)
{
	struct http_response resp;
	char what[300];
	uint8_t *tok;
	size_t len;
	int r;

	if ((r = read_cred(v->token_file, true, &tok, &len, errbuf,
	    errlen)) < 0)
		return r;
	if ((r = vault_http(v, "GET", "/v1/auth/token/lookup-self",
	    (char *)tok, NULL, 0, &resp, errbuf, errlen)) < 0) {
		secmem_free(tok);
		return r;
	}
	snprintf(what, sizeof(what), "token from %s", v->token_file);
	if (resp.status == 200)
		r = vault_parse_lookup(resp.body, resp.body_len, &a->ttl_s,
		    &a->renewable, errbuf, errlen);
	else if (resp.status == 403) {
		snprintf(errbuf, errlen, "token from %s was refused (expired "
		    "or revoked)", v->token_file);
		r = -EACCES;
	} else {
		describe_status(&resp, what, errbuf, errlen);
		r = -EIO;
	}
	http_response_clear(&resp);
	if (r < 0) {
		secmem_free(tok);
		return r;
	}
	a->token = (char *)tok;
	return 0;
}

/* Log in once. Called with login_mu held; no other lock. */
static int
login(struct vault *v, char *errbuf, size_t errlen)
{
	const char *mname = method_names[v->method];
	struct http_response resp;
	struct vault_auth a = { 0 };
	char path[512], why[BACKEND_ERR_MAX] = "";
	uint8_t *body = NULL;
	size_t blen = 0;
	int r;

	if (v->method == AUTH_TOKEN)
		r = login_token_file(v, &a, why, sizeof(why));
	else if ((r = login_body(v, &body, &blen, why, sizeof(why))) == 0 &&
	    (r = build_path(path, sizeof(path), "/v1/auth/", v->auth_mount,
	    "/login", NULL)) == 0) {
		r = vault_http(v, "POST", path, NULL, body, blen, &resp, why,
		    sizeof(why));
		secmem_free(body);
		if (r == 0) {
			r = judge_login(&resp, &a, why, sizeof(why));
			http_response_clear(&resp);
		}
	} else
		secmem_free(body);

	pthread_mutex_lock(&v->mu);
	v->login_attempts++;
	v->login_failed = r < 0;
	v->login_err = r;
	snprintf(v->login_why, sizeof(v->login_why), "%s", why);
	pthread_mutex_unlock(&v->mu);
	/* The caller logs a failure, once; the audit trail gets it here. */
	if (r < 0) {
		backend_report_auth(v->name, mname, "login", false, -r, 0,
		    auth_reason(r));
		snprintf(errbuf, errlen, "login with %s auth failed: %s", mname,
		    why[0] ? why : strerror(-r));
		return r;
	}
	if (a.ttl_s)
		log_info("vault backend %s: logged in with %s auth, token ttl "
		    "%" PRId64 "s%s", v->name, mname, a.ttl_s,
		    a.renewable ? "" : " (not renewable)");
	else
		log_info("vault backend %s: logged in with %s auth, token does "
		    "not expire", v->name, mname);
	backend_report_auth(v->name, mname, "login", true, 0, a.ttl_s, NULL);
	install_token(v, &a);
	vault_auth_clear(&a);
	return 0;
}

/*
 * Make sure there is a token newer than stale_gen (0: any token): log in
 * unless another thread did while we waited. Threads that queued behind a
 * login that failed share its failure instead of each trying again.
 */
static int
relogin(struct vault *v, uint64_t stale_gen, char *errbuf, size_t errlen)
{
	uint64_t seen;
	int r;

	pthread_mutex_lock(&v->mu);
	seen = v->login_attempts;
	pthread_mutex_unlock(&v->mu);

	pthread_mutex_lock(&v->login_mu);
	pthread_mutex_lock(&v->mu);
	if (v->token && v->gen != stale_gen) {
		pthread_mutex_unlock(&v->mu);
		pthread_mutex_unlock(&v->login_mu);
		return 0;
	}
	if (v->login_attempts != seen && v->login_failed) {
		r = v->login_err;
		snprintf(errbuf, errlen, "login with %s auth failed: %s",
		    method_names[v->method], v->login_why);
		pthread_mutex_unlock(&v->mu);
		pthread_mutex_unlock(&v->login_mu);
		return r;
	}
	pthread_mutex_unlock(&v->mu);
	r = login(v, errbuf, errlen);
	pthread_mutex_unlock(&v->login_mu);
	return r;
}

/* renew-self: 0 and the new lease in *ttl_s, or -errno. */
static int
renew(struct vault *v, const char *tok, int64_t *ttl_s, char *errbuf,
    size_t errlen)
{
	static const uint8_t empty[] = "{}";
	struct http_response resp;
	struct vault_auth a;
	int r;

	if ((r = vault_http(v, "POST", "/v1/auth/token/renew-self", tok,
	    empty, sizeof(empty) - 1, &resp, errbuf, errlen)) < 0)
		return r;
	if (resp.status != 200) {
		describe_status(&resp, "renew-self", errbuf, errlen);
		r = resp.status == 403 ? -EACCES : -EIO;
	} else if ((r = vault_parse_auth(resp.body, resp.body_len, &a, errbuf,
	    errlen)) == 0) {
		*ttl_s = a.ttl_s;
		vault_auth_clear(&a);
	}
	http_response_clear(&resp);
	return r;
}

static void
renew_or_login(struct vault *v, const char *tok, uint64_t gen,
    bool renewable, int64_t login_ttl_ms)
{
	char why[BACKEND_ERR_MAX] = "";
	int64_t ttl_s = 0, in, retry;
	int r;

	if (tok && renewable) {
		r = renew(v, tok, &ttl_s, why, sizeof(why));
		/* A lease that cannot grow back has hit the token's max_ttl. */
		if (r == 0 && ttl_s * 1000 * 2 >= login_ttl_ms) {
			pthread_mutex_lock(&v->mu);
			if (v->gen == gen) {
				v->ttl_ms = ttl_s * 1000;
				in = v->ttl_ms * 2 / 3;
				v->renew_at = clk_mono_ms() +
				    (in > MIN_RENEW_MS ? in : MIN_RENEW_MS);
			}
			pthread_mutex_unlock(&v->mu);
			log_debug("vault backend %s: token renewed, ttl %" PRId64
			    "s", v->name, ttl_s);
			backend_report_auth(v->name, method_names[v->method],
			    "renew", true, 0, ttl_s, NULL);
			return;
		}
		if (r < 0)
			backend_report_auth(v->name, method_names[v->method],
			    "renew", false, -r, 0, auth_reason(r));
		if (r == 0)
			log_info("vault backend %s: token lease down to %" PRId64
			    "s (max_ttl reached), logging in again", v->name,
			    ttl_s);
		else
			log_warnx("vault backend %s: renewal failed: %s; "
			    "logging in again", v->name, why);
	} else if (tok)
		log_info("vault backend %s: token is not renewable, logging "
		    "in again", v->name);
	if (relogin(v, gen, why, sizeof(why)) == 0)
		return;
	/* Try again later, backing off; requests meanwhile try on their own. */
	pthread_mutex_lock(&v->mu);
	retry = v->login_retry_ms ? v->login_retry_ms * 2 : LOGIN_RETRY_MIN_MS;
	if (retry > LOGIN_RETRY_MAX_MS)
		retry = LOGIN_RETRY_MAX_MS;
	v->login_retry_ms = retry;
	if (v->gen == gen)
		v->renew_at = clk_mono_ms() + retry;
	pthread_mutex_unlock(&v->mu);
	log_warnx("vault backend %s: %s; trying again in %" PRId64 " ms",
	    v->name, why, retry);
}

static void *
renewer(void *arg)
{
	struct vault *v = arg;
	struct timespec ts;
	sigset_t all;
	char *tok;
	uint64_t gen;
	bool renewable;
	int64_t login_ttl, now;

	/* Signals are for the FUSE loop's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&v->mu);
	while (!v->stop) {
		now = clk_mono_ms();
		if (v->renew_at == 0) {
			pthread_cond_wait(&v->cond, &v->mu);
			continue;
		}
		if (now < v->renew_at) {
			ts = clk_at_ms(v->renew_at);
			pthread_cond_timedwait(&v->cond, &v->mu, &ts);
			continue;
		}
		v->renew_at = 0;
		tok = v->token ? secmem_strdup(v->token) : NULL;
		gen = v->gen;
		renewable = v->renewable;
		login_ttl = v->login_ttl_ms;
		pthread_mutex_unlock(&v->mu);
		renew_or_login(v, tok, gen, renewable, login_ttl);
		secmem_free(tok);
		pthread_mutex_lock(&v->mu);
	}
	pthread_mutex_unlock(&v->mu);
	return NULL;
}

/*
 * The renewer starts with the first request, not in open(): the daemon
 * forks into the background after the backends are open, and a thread
 * does not survive fork.
 */
static void
start_renewer(struct vault *v)
{
	pthread_mutex_lock(&v->mu);
	if (!v->thread_started && !v->stop) {
		if (pthread_create(&v->thread, NULL, renewer, v) == 0) {
			v->thread_started = true;
			pthread_setname_np(v->thread, "vault-renew");
		} else
			log_warnx("vault backend %s: cannot start the token "
			    "renewal thread; tokens will be renewed by logging "
			    "in again on 403", v->name);
	}
	pthread_mutex_unlock(&v->mu);
}

/*
 * A request with the current token; on 403 log in again once and retry.
 * 0 with *resp for any other status, or -errno.
 */
static int
authed(struct vault *v, const char *method, const char *path,
    struct http_response *resp, char *errbuf, size_t errlen)
{
	uint64_t gen = 0;
	char *tok;
	int r, tries;

	start_renewer(v);
	for (tries = 0; tries < 3; tries++) {
		pthread_mutex_lock(&v->mu);
		tok = v->token ? secmem_strdup(v->token) : NULL;
		gen = v->gen;
		pthread_mutex_unlock(&v->mu);
		if (!tok) {
			if ((r = relogin(v, 0, errbuf, errlen)) < 0)
				return r;
			continue;
		}
		r = vault_http(v, method, path, tok, NULL, 0, resp, errbuf,
		    errlen);
		secmem_free(tok);
		if (r < 0 || resp->status != 403 || tries > 0)
			return r;
		/* Expired or revoked under us: a fresh token, then once more. */
		http_response_clear(resp);
		if ((r = relogin(v, gen, errbuf, errlen)) < 0)
			return r;
	}
	snprintf(errbuf, errlen, "no usable token after logging in");
	return -EACCES;
}

/* --- the backend operations ---------------------------------------------- */

static int
vault_fetch(void *impl, const struct backend_request *req,
    struct backend_value *out, char *errbuf, size_t errlen)
{
	struct vault *v = impl;
	struct http_response resp;
	char path[2048], msg[VMSG_MAX], why[BACKEND_ERR_MAX];
	int r;

	if (!safe_vault_path(req->ref, false)) {
		snprintf(errbuf, errlen, "reference \"%s\" is not a KV path",
		    req->ref);
		return -EINVAL;
	}
	if (req->version) {
		size_t n = strspn(req->version, "0123456789");

		if (v->kv_version == 1) {
			snprintf(errbuf, errlen, "KV v1 keeps no versions; "
			    "remove \"version\"");
			return -ENOENT;
		}
		if (n == 0 || n > 18 || req->version[n]) {
			snprintf(errbuf, errlen, "version \"%s\" is not a KV v2 "
			    "version number", req->version);
			return -EINVAL;
		}
	}
	if (v->kv_version == 2)
		r = build_path(path, sizeof(path), "/v1/", v->kv_mount,
		    "/data/", req->ref);
	else
		r = build_path(path, sizeof(path), "/v1/", v->kv_mount, "/",
		    req->ref);
	if (r < 0) {
		snprintf(errbuf, errlen, "reference too long");
		return -EINVAL;
	}
	if (req->version) {
		size_t o = strlen(path);

		snprintf(path + o, sizeof(path) - o, "?version=%s",
		    req->version);
	}
	if ((r = authed(v, "GET", path, &resp, errbuf, errlen)) < 0)
		return r == -EACCES ? r : -EIO;

	switch (resp.status) {
	case 200:
		r = v->kv_version == 2 ?
		    vault_parse_kv2(resp.body, resp.body_len, out, why,
		    sizeof(why)) :
		    vault_parse_kv1(resp.body, resp.body_len, out, why,
		    sizeof(why));
		if (r < 0)
			snprintf(errbuf, errlen, "%s/%s: %s", v->kv_mount,
			    req->ref, why);
		break;
	case 404:
		/* A deleted version still answers with its metadata. */
		if (v->kv_version == 2 && vault_parse_kv2(resp.body,
		    resp.body_len, out, why, sizeof(why)) == -ENOENT) {
			snprintf(errbuf, errlen, "%s/%s: %s", v->kv_mount,
			    req->ref, why);
		} else {
			backend_value_clear(out);
			first_warning(resp.body, resp.body_len, msg,
			    sizeof(msg));
			snprintf(errbuf, errlen, "%s/%s: no such secret%s%s%s",
			    v->kv_mount, req->ref, req->version ? " version" :
			    "", msg[0] ? "; Vault says: " : "", msg);
		}
		r = -ENOENT;
		break;
	case 403:
		/* authed() already logged in again: this token may not read it. */
		if (vault_parse_errors(resp.body, resp.body_len, msg,
		    sizeof(msg)) < 0 || !msg[0])
			snprintf(msg, sizeof(msg), "no reason given");
		snprintf(errbuf, errlen, "%s/%s: permission denied after "
		    "logging in again; Vault answered 403: %s", v->kv_mount,
		    req->ref, msg);
		r = -EACCES;
		break;
	default:
		describe_status(&resp, path, errbuf, errlen);
		r = -EIO;
	}
	http_response_clear(&resp);
	if (r < 0)
		backend_value_clear(out);
	return r == -ENOENT || r == -EACCES || r == 0 ? r : -EIO;
}

static int
vault_list(void *impl, const char *prefix, char ***names, size_t *n,
    char *errbuf, size_t errlen)
{
	struct vault *v = impl;
	struct http_response resp;
	char path[2048], why[BACKEND_ERR_MAX];
	int r;

	*names = NULL;
	*n = 0;
	if (!prefix)
		prefix = "";
	if (*prefix && !safe_vault_path(prefix, true)) {
		snprintf(errbuf, errlen, "prefix \"%s\" is not a KV path",
		    prefix);
		return -EINVAL;
	}
	r = v->kv_version == 2 ?
	    build_path(path, sizeof(path), "/v1/", v->kv_mount, "/metadata/",
	    prefix) :
	    build_path(path, sizeof(path), "/v1/", v->kv_mount, "/", prefix);
	if (r < 0) {
		snprintf(errbuf, errlen, "prefix too long");
		return -EINVAL;
	}
	if ((r = authed(v, "LIST", path, &resp, errbuf, errlen)) < 0)
		return r == -EACCES ? r : -EIO;
	switch (resp.status) {
	case 200:
		if ((r = vault_parse_list(resp.body, resp.body_len, names, n,
		    why, sizeof(why))) < 0) {
			snprintf(errbuf, errlen, "%s/%s: %s", v->kv_mount,
			    prefix, why);
			r = -EIO;
		}
		break;
	case 404:
		snprintf(errbuf, errlen, "%s/%s: nothing there", v->kv_mount,
		    prefix);
		r = -ENOENT;
		break;
	case 403:
		snprintf(errbuf, errlen, "%s/%s: permission denied to list",
		    v->kv_mount, prefix);
		r = -EACCES;
		break;
	default:
		describe_status(&resp, path, errbuf, errlen);
		r = -EIO;
	}
	http_response_clear(&resp);
	return r;
}

static void
vault_free(struct vault *v)
{
	if (!v)
		return;
	http_client_free(v->http);
	secmem_free(v->token);
	free(v->name);
	free(v->ns);
	free(v->kv_mount);
	free(v->auth_mount);
	free(v->cert_name);
	free(v->role_id_file);
	free(v->secret_id_file);
	free(v->role);
	free(v->jwt_file);
	free(v->token_file);
	free(v);
}

static void
vault_close(void *impl)
{
	struct vault *v = impl;

	if (!v)
		return;
	pthread_mutex_lock(&v->mu);
	v->stop = true;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->mu);
	if (v->thread_started)
		pthread_join(v->thread, NULL);
	pthread_cond_destroy(&v->cond);
	pthread_mutex_destroy(&v->mu);
	pthread_mutex_destroy(&v->login_mu);
	vault_free(v);
}

/* A credential file that exists must already be private at start. */
static int
check_private_if_there(const char *path, char *errbuf, size_t errlen)
{
	int fd, r;

	if (!path)
		return 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;	/* may appear later; a login says so then */
	r = secfile_check_private(fd, path, errbuf, errlen);
	close(fd);
	return r;
}

static char *
xstrdup(const char *s, bool *oom)
{
	char *d;

	if (!s)
		return NULL;
	if (!(d = strdup(s)))
		*oom = true;
	return d;
}

static int
vault_open(const struct config_backend *cfg, void **impl, char *errbuf,
    size_t errlen)
{
	struct vault_conf vc;
	struct cfg_err err;
	struct vault *v;
	bool oom = false;
	int r;

	*impl = NULL;
	if ((r = parse_conf(cfg->options, cfg->path, &vc, &err)) < 0) {
		snprintf(errbuf, errlen, "%s: %s", err.path, err.msg);
		return r;
	}
	if ((r = check_private_if_there(vc.role_id_file, errbuf, errlen)) < 0 ||
	    (r = check_private_if_there(vc.secret_id_file, errbuf, errlen)) < 0 ||
	    (r = check_private_if_there(vc.token_file, errbuf, errlen)) < 0)
		return r;
	if (!(v = calloc(1, sizeof(*v))))
		return -ENOMEM;
	v->name = xstrdup(cfg->name, &oom);
	v->ns = xstrdup(vc.ns, &oom);
	v->kv_mount = xstrdup(vc.kv_mount, &oom);
	v->kv_version = vc.kv_version;
	v->method = vc.method;
	v->auth_mount = xstrdup(vc.auth_mount, &oom);
	v->cert_name = xstrdup(vc.cert_name, &oom);
	v->role_id_file = xstrdup(vc.role_id_file, &oom);
	v->secret_id_file = xstrdup(vc.secret_id_file, &oom);
	v->role = xstrdup(vc.role, &oom);
	v->jwt_file = xstrdup(vc.jwt_file, &oom);
	v->token_file = xstrdup(vc.token_file, &oom);
	if (oom) {
		vault_free(v);
		return -ENOMEM;
	}
	if ((r = http_client_new(vc.address, &vc.http, &v->http, errbuf,
	    errlen)) < 0) {
		vault_free(v);
		return r;
	}
	pthread_mutex_init(&v->mu, NULL);
	pthread_mutex_init(&v->login_mu, NULL);
	/* glibc's pthread_cond_init cannot fail: nothing to undo. */
	(void)clk_cond_init(&v->cond);
	*impl = v;
	return 0;
}

const struct backend_ops backend_vault_ops = {
	.type = "vault",
	.validate = vault_validate,
	.open = vault_open,
	.fetch = vault_fetch,
	.list = vault_list,
	.close = vault_close,
};
