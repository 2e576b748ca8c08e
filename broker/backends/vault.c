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

/* The configured address a redirect's Location names, or -1. */
static int
listed(const struct vault *v, const char *loc)
{
	for (size_t i = 0; i < v->naddrs; i++) {
		size_t n = strlen(v->addrs[i]);

		/* The whole origin: "https://a:8200" is not "https://a:82". */
		if (strncmp(loc, v->addrs[i], n) == 0 &&
		    (loc[n] == '/' || loc[n] == '?' || loc[n] == '\0'))
			return (int)i;
	}
	return -1;
}

/* A node that did not answer: another may. */
static bool
node_down(int r)
{
	return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EHOSTUNREACH ||
	    r == -EPROTO || r == -EIO;
}

/*
 * One request to Vault with the headers every request carries. token may
 * be NULL (logins). Retries as the http options say. With several
 * addresses, the one that answered last goes first; a 503 (sealed, or a
 * standby that knows no leader) or a node that does not answer moves on
 * to the next at once, and the last one tried retries as the options say.
 * A 429 is retried on its node (Retry-After). A 307 or 308 to one of the
 * addresses is followed once, with the same client certificate; to any
 * other address never, so the token goes nowhere the config does not name.
 */
static int
request(struct vault *v, const char *ns, const char *method,
    const char *path, const char *token, const uint8_t *body, size_t blen,
    struct http_response *resp, char *errbuf, size_t errlen)
{
	struct http_header h[4];
	struct http_request req;
	size_t n = 0, k, i, start;
	int r, j;

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

	pthread_mutex_lock(&v->mu);
	start = v->cur;
	pthread_mutex_unlock(&v->mu);
	for (k = 0, r = -EIO; k < v->naddrs; k++) {
		i = (start + k) % v->naddrs;
		req.retry = k + 1 == v->naddrs;
		r = http_do(v->http[i], &req, resp, errbuf, errlen);
		if (r == 0 && resp->status == 429 && !req.retry) {
			http_response_clear(resp);
			req.retry = true;
			r = http_do(v->http[i], &req, resp, errbuf, errlen);
		}
		if (r == 0 && (resp->status == 307 || resp->status == 308) &&
		    (j = listed(v, resp->location)) >= 0 && (size_t)j != i) {
			log_debug("vault backend %s: %s redirects to %s, one "
			    "of our addresses", v->name, v->addrs[i],
			    v->addrs[j]);
			http_response_clear(resp);
			i = (size_t)j;
			req.retry = true;
			r = http_do(v->http[i], &req, resp, errbuf, errlen);
		}
		if (k + 1 < v->naddrs && ((r < 0 && node_down(r)) ||
		    (r == 0 && resp->status == 503))) {
			log_debug("vault backend %s: %s: %s; trying the next "
			    "address", v->name, v->addrs[i], r < 0 ? errbuf :
			    "503");
			if (r == 0)
				http_response_clear(resp);
			continue;
		}
		if (r == 0) {
			pthread_mutex_lock(&v->mu);
			v->cur = i;
			pthread_mutex_unlock(&v->mu);
		}
		break;
	}
	return r;
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

/*
 * The KV version: configured, or asked of Vault (kv.version "auto") and
 * remembered once it is known. 1 or 2, or -errno with errbuf.
 */
static int
kv_version(struct vault *v, char *errbuf, size_t errlen)
{
	struct http_response resp;
	char path[2048], want[1024], mount[1024];
	int r, ver;

	pthread_mutex_lock(&v->mu);
	ver = v->kv_version;
	pthread_mutex_unlock(&v->mu);
	if (ver)
		return ver;
	if (vault_build_path(path, sizeof(path), "/v1/sys/internal/ui/mounts/",
	    v->kv_mount, NULL, NULL) < 0) {
		snprintf(errbuf, errlen, "kv.mount too long");
		return -EINVAL;
	}
	if ((r = vault_authed(v, "GET", path, &resp, errbuf, errlen)) < 0)
		return r == -EACCES ? r : -EIO;
	if (resp.status == 200) {
		r = vault_parse_ui_mount(resp.body, resp.body_len, &ver, mount,
		    sizeof(mount));
		snprintf(want, sizeof(want), "%s/", v->kv_mount);
		if (r == -ENOTSUP) {
			snprintf(errbuf, errlen, "kv.version \"auto\": %.200s "
			    "is not a KV mount", mount);
			r = -EIO;
		} else if (r < 0) {
			snprintf(errbuf, errlen, "kv.version \"auto\": not a "
			    "sys/internal/ui/mounts answer");
		} else if (strcmp(mount, want) != 0) {
			/* A KV path inside a mount would be misread. */
			snprintf(errbuf, errlen, "kv.version \"auto\": %.200s "
			    "is inside the mount %.200s; set kv.mount to that",
			    v->kv_mount, mount);
			r = -EIO;
		}
	} else {
		vault_describe_status(&resp, "kv.version \"auto\"", errbuf,
		    errlen);
		r = resp.status == 403 ? -EACCES : -EIO;
	}
	http_response_clear(&resp);
	if (r < 0)
		return r;
	pthread_mutex_lock(&v->mu);
	v->kv_version = ver;
	pthread_mutex_unlock(&v->mu);
	log_info("vault backend %s: %s is a KV version %d mount", v->name,
	    v->kv_mount, ver);
	return ver;
}

static int
vault_fetch(void *impl, const struct backend_request *req,
    struct backend_value *out, char *errbuf, size_t errlen)
{
	struct vault *v = impl;
	struct http_response resp;
	char path[2048], msg[VMSG_MAX], why[BACKEND_ERR_MAX];
	int r, kv;

	if (!vault_safe_path(req->ref, false)) {
		snprintf(errbuf, errlen, "reference \"%s\" is not a KV path",
		    req->ref);
		return -EINVAL;
	}
	if ((kv = kv_version(v, errbuf, errlen)) < 0)
		return kv;
	if (req->version) {
		size_t n = strspn(req->version, "0123456789");

		if (kv == 1) {
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
	if (kv == 2)
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
		r = kv == 2 ?
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
		if (kv == 2 && vault_parse_kv2(resp.body,
		    resp.body_len, out, why, sizeof(why)) == -ENOENT) {
			snprintf(errbuf, errlen, "%s/%s: %s", v->kv_mount,
			    req->ref, why);
		} else {
			backend_value_clear(out);
			vault_first_warning(resp.body, resp.body_len, msg,
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
	int r, kv;

	*names = NULL;
	*n = 0;
	if (!prefix)
		prefix = "";
	if (*prefix && !vault_safe_path(prefix, true)) {
		snprintf(errbuf, errlen, "prefix \"%s\" is not a KV path",
		    prefix);
		return -EINVAL;
	}
	if ((kv = kv_version(v, errbuf, errlen)) < 0)
		return kv;
	r = kv == 2 ?
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
	for (size_t i = 0; i < v->naddrs; i++) {
		http_client_free(v->http[i]);
		free(v->addrs[i]);
	}
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
	aws_creds_free(v->aws_creds);
	if (v->aws_signer) {
		sigv4_signer_wipe(v->aws_signer);
		secmem_free(v->aws_signer);
	}
	free(v->aws_server_id);
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

/* The aws method's signer and AWS credential chain (aws_creds.h). */
static int
open_aws(struct vault *v, const struct config_backend *cfg,
    const struct vault_conf *vc, char *errbuf, size_t errlen)
{
	const json_t *o = vc->aws_opts;
	struct aws_creds_options co;
	char why[BACKEND_ERR_MAX] = "";
	int r;

	vault_aws_sts_url(vc->aws_region, v->aws_url, sizeof(v->aws_url));
	if (!(v->aws_signer = secmem_alloc(sizeof(*v->aws_signer)))) {
		snprintf(errbuf, errlen, "locked memory exhausted");
		return -ENOMEM;
	}
	if ((r = sigv4_signer_init(v->aws_signer, vc->aws_region, "sts")) < 0) {
		snprintf(errbuf, errlen, "region \"%s\" cannot be signed for",
		    vc->aws_region);
		return r;
	}
	memset(&co, 0, sizeof(co));
	co.backend = cfg->name;
	co.credentials = json_object_get(o, "credentials");
	co.profile = json_string_value(json_object_get(o, "profile"));
	co.credentials_file = json_string_value(json_object_get(o,
	    "credentials_file"));
	co.config_file = json_string_value(json_object_get(o, "config_file"));
	co.region = vc->aws_region;
	co.sts_endpoint = json_string_value(json_object_get(o, "sts_endpoint"));
	co.imds_endpoint = json_string_value(json_object_get(o,
	    "imds_endpoint"));
	/* Not Vault's options: its CA and client certificate are not AWS's. */
	co.http = NULL;
	if ((r = aws_creds_new(&co, &v->aws_creds, why, sizeof(why))) < 0) {
		snprintf(errbuf, errlen, "AWS credentials: %s", why);
		return r;
	}
	return 0;
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
	v->aws_server_id = xstrdup(vc.aws_server_id, &oom);
	if (oom) {
		vault_free(v);
		return -ENOMEM;
	}
	if (v->method == AUTH_AWS && (r = open_aws(v, cfg, &vc, errbuf,
	    errlen)) < 0) {
		vault_free(v);
		return r;
	}
	for (size_t i = 0; i < vc.naddrs; i++) {
		size_t n = strlen(vc.addrs[i]);

		/* Compared with a redirect's Location: no trailing '/'. */
		while (n > 0 && vc.addrs[i][n - 1] == '/')
			n--;
		if (!(v->addrs[i] = strndup(vc.addrs[i], n))) {
			vault_free(v);
			return -ENOMEM;
		}
		v->naddrs = i + 1;
		if ((r = http_client_new(vc.addrs[i], &vc.http, &v->http[i],
		    errbuf, errlen)) < 0) {
			vault_free(v);
			return r;
		}
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
