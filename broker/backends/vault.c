/*
 * The Vault backend: KV v1/v2 reads and lists over mutual TLS, with cert,
 * AppRole, Kubernetes or token-file auth (configuration: vault.h).
 *
 * The token is the only state shared by fetching threads. It lives in the
 * locked arena; a request takes its own copy under the lock and lets go
 * of the lock before any I/O. Logins are serialised by a second lock, so
 * that N threads that all meet an expired token cause one login, not N,
 * and lookup-self checks by a third.
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

#include "vault_int.h"

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
int
vault_dump_secmem(const json_t *obj, uint8_t **out, size_t *len)
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
	if ((r = vault_dump_secmem(d, &out->data, &out->len)) < 0) {
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
	if ((r = vault_dump_secmem(d, &out->data, &out->len)) < 0)
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
	a->batch = false;
}

int64_t
vault_renew_in_ms(int64_t ttl_ms, uint32_t rnd)
{
	int64_t in, spread;

	if (ttl_ms <= 0)
		return 0;
	/* 2/3 of what is left, less up to a tenth of it at random. */
	in = ttl_ms * 2 / 3;
	spread = in / 10;
	if (spread > 0)
		in -= (int64_t)(rnd % (uint64_t)(spread + 1));
	return in > MIN_RENEW_MS ? in : MIN_RENEW_MS;
}

int
vault_parse_auth(const uint8_t *body, size_t len, struct vault_auth *out,
    char *errbuf, size_t errlen)
{
	json_t *root, *auth, *tok, *ld, *tt;

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
	tt = json_object_get(auth, "token_type");
	out->batch = json_is_string(tt) &&
	    strcmp(json_string_value(tt), "batch") == 0;
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

/* Does any message of {"errors":[...]} contain word? */
static bool
errors_say(const json_t *errs, const char *word)
{
	const json_t *e;
	size_t i;

	json_array_foreach(errs, i, e)
		if (json_is_string(e) && strstr(json_string_value(e), word))
			return true;
	return false;
}

enum vault_refusal
vault_classify_refusal(long status, const uint8_t *body, size_t len,
    bool login)
{
	enum vault_refusal r = VAULT_REFUSAL_NONE;
	json_t *root, *errs;

	root = load(body, len);
	errs = json_object_get(root, "errors");
	if (!json_is_array(errs))
		errs = NULL;
	if (login) {
		/*
		 * request_handling.go handleLoginRequest: a locked alias is
		 * ErrPermissionDenied before the method runs; the methods
		 * refuse bad, expired or used-up credentials with a 400
		 * (approle: "invalid role or secret ID").
		 */
		if (status == 403 && errs && errors_say(errs,
		    "permission denied"))
			r = VAULT_REFUSAL_LOCKED_OUT;
		else if (status == 400 || status == 401)
			r = VAULT_REFUSAL_CREDENTIALS;
	} else if (status == 403 && errs) {
		if (errors_say(errs, "invalid token"))
			r = VAULT_REFUSAL_DEAD_TOKEN;
		else if (errors_say(errs, "permission denied"))
			r = VAULT_REFUSAL_DENIED;
	}
	json_decref(root);
	return r;
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

int
vault_build_path(char *buf, size_t len, const char *a, const char *b,
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
request(struct vault *v, const char *ns, const char *method,
    const char *path, const char *token, const uint8_t *body, size_t blen,
    struct http_response *resp, char *errbuf, size_t errlen)
{
	struct http_header h[4];
	struct http_request req;
	size_t n = 0;

	h[n++] = (struct http_header){ "X-Vault-Request", "true" };
	if (token)
		h[n++] = (struct http_header){ "X-Vault-Token", token };
	if (ns)
		h[n++] = (struct http_header){ "X-Vault-Namespace", ns };
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

int
vault_http(struct vault *v, const char *method, const char *path,
    const char *token, const uint8_t *body, size_t blen,
    struct http_response *resp, char *errbuf, size_t errlen)
{
	return request(v, v->ns, method, path, token, body, blen, resp,
	    errbuf, errlen);
}

int
vault_http_auth(struct vault *v, const char *method, const char *path,
    const char *token, const uint8_t *body, size_t blen,
    struct http_response *resp, char *errbuf, size_t errlen)
{
	return request(v, v->auth_ns, method, path, token, body, blen, resp,
	    errbuf, errlen);
}

/* "[what: ]Vault answered 503: Vault is sealed" */
void
vault_describe_status(const struct http_response *resp, const char *what,
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

/* --- the backend operations ---------------------------------------------- */

static int
vault_fetch(void *impl, const struct backend_request *req,
    struct backend_value *out, char *errbuf, size_t errlen)
{
	struct vault *v = impl;
	struct http_response resp;
	char path[2048], msg[VMSG_MAX], why[BACKEND_ERR_MAX];
	int r;

	if (!vault_safe_path(req->ref, false)) {
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
		r = vault_build_path(path, sizeof(path), "/v1/", v->kv_mount,
		    "/data/", req->ref);
	else
		r = vault_build_path(path, sizeof(path), "/v1/", v->kv_mount,
		    "/", req->ref);
	if (r < 0) {
		snprintf(errbuf, errlen, "reference too long");
		return -EINVAL;
	}
	if (req->version) {
		size_t o = strlen(path);

		snprintf(path + o, sizeof(path) - o, "?version=%s",
		    req->version);
	}
	if ((r = vault_authed(v, "GET", path, &resp, errbuf, errlen)) < 0)
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
		/* vault_authed() knows the token is live: a policy says no. */
		if (vault_parse_errors(resp.body, resp.body_len, msg,
		    sizeof(msg)) < 0 || !msg[0])
			snprintf(msg, sizeof(msg), "no reason given");
		snprintf(errbuf, errlen, "%s/%s: permission denied (the token "
		    "is valid; its policies do not allow this read); Vault "
		    "answered 403: %s", v->kv_mount, req->ref, msg);
		r = -EACCES;
		break;
	default:
		vault_describe_status(&resp, path, errbuf, errlen);
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
	if (*prefix && !vault_safe_path(prefix, true)) {
		snprintf(errbuf, errlen, "prefix \"%s\" is not a KV path",
		    prefix);
		return -EINVAL;
	}
	r = v->kv_version == 2 ?
	    vault_build_path(path, sizeof(path), "/v1/", v->kv_mount,
	    "/metadata/", prefix) :
	    vault_build_path(path, sizeof(path), "/v1/", v->kv_mount, "/",
	    prefix);
	/*
	 * GET ?list=true, as the Vault CLI's own fallback does: gateways and
	 * WAFs refuse the LIST method they do not know.
	 */
	if (r < 0 || strlen(path) + sizeof("?list=true") > sizeof(path)) {
		snprintf(errbuf, errlen, "prefix too long");
		return -EINVAL;
	}
	strcat(path, "?list=true");
	if ((r = vault_authed(v, "GET", path, &resp, errbuf, errlen)) < 0)
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
		vault_describe_status(&resp, path, errbuf, errlen);
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
	free(v->auth_ns);
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
	pthread_mutex_destroy(&v->check_mu);
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
	if ((r = vault_conf_parse(cfg->options, cfg->path, &vc, &err)) < 0) {
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
	v->auth_ns = xstrdup(vc.auth_ns, &oom);
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
	pthread_mutex_init(&v->check_mu, NULL);
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
