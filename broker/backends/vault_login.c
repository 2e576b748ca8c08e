/*
 * Vault login and the token: the credentials each auth method reads, the
 * login itself, renewal ahead of expiry by a thread of its own, and
 * logging in again when Vault refuses the token.
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
	vault_describe_status(resp, NULL, errbuf, errlen);
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
	if (r == 0 && (r = vault_dump_secmem(o, body, blen)) < 0)
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
		vault_describe_status(&resp, what, errbuf, errlen);
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
	const char *mname = vault_method_names[v->method];
	struct http_response resp;
	struct vault_auth a = { 0 };
	char path[512], why[BACKEND_ERR_MAX] = "";
	uint8_t *body = NULL;
	size_t blen = 0;
	int r;

	if (v->method == AUTH_TOKEN)
		r = login_token_file(v, &a, why, sizeof(why));
	else if ((r = login_body(v, &body, &blen, why, sizeof(why))) == 0 &&
	    (r = vault_build_path(path, sizeof(path), "/v1/auth/",
	    v->auth_mount, "/login", NULL)) == 0) {
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
		    vault_method_names[v->method], v->login_why);
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
		vault_describe_status(&resp, "renew-self", errbuf, errlen);
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
			backend_report_auth(v->name,
			    vault_method_names[v->method], "renew", true, 0,
			    ttl_s, NULL);
			return;
		}
		if (r < 0)
			backend_report_auth(v->name,
			    vault_method_names[v->method], "renew", false, -r,
			    0, auth_reason(r));
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
		secmem_wipe_registers();
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
int
vault_authed(struct vault *v, const char *method, const char *path,
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
