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

/*
 * The new token in place of the old. Returns the old one (the caller
 * revokes and frees it) unless Vault already called it dead.
 */
static char *
install_token(struct vault *v, struct vault_auth *a)
{
	int64_t now = clk_mono_ms();
	char *old;

	pthread_mutex_lock(&v->mu);
	old = v->token;
	/* A batch token cannot be revoked: it runs out on its own. */
	if (old && (v->dead_gen == v->gen || v->batch)) {
		secmem_free(old);
		old = NULL;
	}
	v->token = a->token;
	a->token = NULL;
	v->gen++;
	/* Vault just made it: no lookup-self needed to know it is live. */
	v->live_gen = v->gen;
	v->live_at = now;
	v->renewable = a->renewable && !a->batch;
	v->batch = a->batch;
	v->ttl_ms = v->login_ttl_ms = a->ttl_s * 1000;
	v->renew_at = v->ttl_ms ? now + vault_renew_in_ms(v->ttl_ms,
	    arc4random()) : 0;
	v->login_hold_ms = 0;
	v->login_next = v->login_retry_at = 0;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->mu);
	return old;
}

/*
 * A replaced token that may still be live is revoked, or each login would
 * leave one behind until its TTL runs out. Best effort: a failure only
 * costs a token that expires on its own.
 */
static void
revoke_old(struct vault *v, const char *old)
{
	static const uint8_t empty[] = "{}";
	struct http_response resp;
	char why[BACKEND_ERR_MAX] = "";
	int r;

	r = vault_http_auth(v, "POST", "/v1/auth/token/revoke-self", old, empty,
	    sizeof(empty) - 1, &resp, why, sizeof(why));
	if (r == 0) {
		if (resp.status != 204 && resp.status != 200) {
			vault_describe_status(&resp, "revoke-self", why,
			    sizeof(why));
			r = -EIO;
		}
		http_response_clear(&resp);
	}
	if (r < 0)
		log_debug("vault backend %s: the replaced token was not "
		    "revoked: %s", v->name, why);
}

/* A login's answer; 400/401/403 mean Vault refused these credentials. */
static int
judge_login(struct http_response *resp, struct vault_auth *a, char *errbuf,
    size_t errlen)
{
	size_t o;

	if (resp->status == 200)
		return vault_parse_auth(resp->body, resp->body_len, a, errbuf,
		    errlen);
	vault_describe_status(resp, NULL, errbuf, errlen);
	switch (vault_classify_refusal(resp->status, resp->body,
	    resp->body_len, true)) {
	case VAULT_REFUSAL_LOCKED_OUT:
		o = strlen(errbuf);
		snprintf(errbuf + o, errlen - o, " (a user lockout of the "
		    "role, or credentials this auth mount refuses)");
		return -EACCES;
	case VAULT_REFUSAL_CREDENTIALS:
		return -EACCES;
	default:
		return resp->status == 403 ? -EACCES : -EIO;
	}
}

/* The aws method's role and signed GetCallerIdentity (vault_aws.c). */
static int
aws_fields(struct vault *v, json_t *o, char *errbuf, size_t errlen)
{
	struct aws_credentials c = { 0 };
	char why[BACKEND_ERR_MAX] = "";
	int r;

	if ((r = aws_creds_get(v->aws_creds, &c, why, sizeof(why))) < 0) {
		snprintf(errbuf, errlen, "AWS credentials (%s): %s",
		    aws_creds_source(v->aws_creds), why);
		return r;
	}
	if (v->role)
		json_object_set_new(o, "role", json_string(v->role));
	r = vault_aws_login_fields(v->aws_signer, &c, v->aws_url,
	    v->aws_server_id, time(NULL), o, errbuf, errlen);
	aws_credentials_clear(&c);
	return r;
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
	case AUTH_JWT:
		/* Re-read at every login: the issuer rotates it. */
		if ((r = read_cred(v->jwt_file, false, &a, &alen, errbuf,
		    errlen)) < 0)
			break;
		json_object_set_new(o, "role", json_string(v->role));
		json_object_set_new(o, "jwt", json_stringn((char *)a, alen));
		break;
	case AUTH_AWS:
		r = aws_fields(v, o, errbuf, errlen);
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
	if ((r = vault_http_auth(v, "GET", "/v1/auth/token/lookup-self",
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
	char path[512], why[BACKEND_ERR_MAX] = "", *old;
	uint8_t *body = NULL;
	size_t blen = 0;
	int64_t hold;
	int r;

	if (v->method == AUTH_TOKEN)
		r = login_token_file(v, &a, why, sizeof(why));
	else if ((r = login_body(v, &body, &blen, why, sizeof(why))) == 0 &&
	    (r = vault_build_path(path, sizeof(path), "/v1/auth/",
	    v->auth_mount, "/login", NULL)) == 0) {
		r = vault_http_auth(v, "POST", path, NULL, body, blen, &resp,
		    why, sizeof(why));
		secmem_free(body);
		if (r == 0) {
			r = judge_login(&resp, &a, why, sizeof(why));
			http_response_clear(&resp);
		}
	} else
		secmem_free(body);

	pthread_mutex_lock(&v->mu);
	v->login_failed = r < 0;
	v->login_err = r;
	snprintf(v->login_why, sizeof(v->login_why), "%s", why);
	if (r < 0) {
		hold = v->login_hold_ms ? v->login_hold_ms * 2 :
		    LOGIN_HOLD_MIN_MS;
		if (hold > LOGIN_HOLD_MAX_MS)
			hold = LOGIN_HOLD_MAX_MS;
		v->login_hold_ms = hold;
		v->login_retry_at = clk_mono_ms() + hold / 2 +
		    (int64_t)arc4random_uniform((uint32_t)(hold / 2) + 1);
		/*
		 * Refused credentials are held back, whoever asks: readers
		 * cannot turn them into a user lockout. A sealed or
		 * unreachable Vault counts no failures: the next read may
		 * try at once.
		 */
		v->login_next = r == -EACCES ? v->login_retry_at : 0;
	}
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
	old = install_token(v, &a);
	vault_auth_clear(&a);
	if (old) {
		revoke_old(v, old);
		secmem_free(old);
	}
	return 0;
}

/*
 * Make sure there is a token newer than stale_gen (0: any token): log in
 * unless another thread did while we waited, or a login was refused so
 * recently that it is still held back: then its failure is the answer.
 */
static int
relogin(struct vault *v, uint64_t stale_gen, char *errbuf, size_t errlen)
{
	int r;

	pthread_mutex_lock(&v->login_mu);
	pthread_mutex_lock(&v->mu);
	if (v->token && v->gen != stale_gen) {
		pthread_mutex_unlock(&v->mu);
		pthread_mutex_unlock(&v->login_mu);
		return 0;
	}
	if (v->login_failed && clk_mono_ms() < v->login_next) {
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

/*
 * Vault refused the token of generation gen. "invalid token" says it is
 * dead; "permission denied" alone (older Vault, OpenBao; or a policy
 * without lookup-self) does not, so that token is replaced and revoked
 * all the same: a revoke-self too many costs a 403, a token too few
 * lives on until its TTL.
 */
static void
mark_refused(struct vault *v, uint64_t gen, const struct http_response *resp)
{
	bool dead = vault_classify_refusal(resp->status, resp->body,
	    resp->body_len, false) == VAULT_REFUSAL_DEAD_TOKEN;

	pthread_mutex_lock(&v->mu);
	if (dead)
		v->dead_gen = gen;
	else
		v->gone_gen = gen;
	pthread_mutex_unlock(&v->mu);
}

/*
 * Is tok (generation gen) live? 1 yes, 0 dead, -errno when Vault could
 * not say. One lookup-self per token per VAULT_TOKEN_CHECK_MS, and one at
 * a time: the others wait for its answer.
 */
static int
token_alive(struct vault *v, const char *tok, uint64_t gen, char *errbuf,
    size_t errlen)
{
	struct http_response resp;
	int r = -1;

	pthread_mutex_lock(&v->check_mu);
	pthread_mutex_lock(&v->mu);
	if (v->dead_gen == gen || v->gone_gen == gen)
		r = 0;
	else if (v->live_gen == gen &&
	    clk_mono_ms() - v->live_at < VAULT_TOKEN_CHECK_MS)
		r = 1;
	pthread_mutex_unlock(&v->mu);
	if (r >= 0) {
		pthread_mutex_unlock(&v->check_mu);
		return r;
	}
	if ((r = vault_http_auth(v, "GET", "/v1/auth/token/lookup-self", tok,
	    NULL, 0, &resp, errbuf, errlen)) == 0) {
		if (resp.status == 200)
			r = 1;
		else if (resp.status == 403) {
			mark_refused(v, gen, &resp);
			r = 0;
		} else {
			vault_describe_status(&resp, "lookup-self", errbuf,
			    errlen);
			r = -EIO;
		}
		http_response_clear(&resp);
	}
	if (r == 1) {
		pthread_mutex_lock(&v->mu);
		v->live_gen = gen;
		v->live_at = clk_mono_ms();
		pthread_mutex_unlock(&v->mu);
	}
	pthread_mutex_unlock(&v->check_mu);
	return r;
}

/* renew-self: 0 and the new lease in *ttl_s, or -errno. */
static int
renew(struct vault *v, const char *tok, uint64_t gen, int64_t *ttl_s,
    char *errbuf, size_t errlen)
{
	static const uint8_t empty[] = "{}";
	struct http_response resp;
	struct vault_auth a;
	int r;

	if ((r = vault_http_auth(v, "POST", "/v1/auth/token/renew-self", tok,
	    empty, sizeof(empty) - 1, &resp, errbuf, errlen)) < 0)
		return r;
	if (resp.status != 200) {
		vault_describe_status(&resp, "renew-self", errbuf, errlen);
		r = resp.status == 403 ? -EACCES : -EIO;
		if (r == -EACCES)
			mark_refused(v, gen, &resp);
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
	int64_t ttl_s = 0, retry, now;
	bool batch;
	int r;

	if (tok && renewable) {
		r = renew(v, tok, gen, &ttl_s, why, sizeof(why));
		/* A lease that cannot grow back has hit the token's max_ttl. */
		if (r == 0 && ttl_s * 1000 * 2 >= login_ttl_ms) {
			pthread_mutex_lock(&v->mu);
			if (v->gen == gen) {
				v->ttl_ms = ttl_s * 1000;
				v->renew_at = clk_mono_ms() +
				    vault_renew_in_ms(v->ttl_ms, arc4random());
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
	} else if (tok) {
		pthread_mutex_lock(&v->mu);
		batch = v->batch;
		pthread_mutex_unlock(&v->mu);
		log_info("vault backend %s: %s, logging in again", v->name,
		    batch ? "a batch token cannot be renewed" :
		    "token is not renewable");
	}
	if (relogin(v, gen, why, sizeof(why)) == 0)
		return;
	/* Again when the failed login's hold is over. */
	pthread_mutex_lock(&v->mu);
	now = clk_mono_ms();
	retry = v->login_retry_at > now ? v->login_retry_at - now :
	    LOGIN_HOLD_MIN_MS;
	if (v->gen == gen)
		v->renew_at = now + retry;
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
 * A request with the current token. A dead token (see vault.h) is
 * replaced, once, and the request retried. 0 with *resp, whose status may
 * still be 403: the token is live and may not do this; or -errno.
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
		if (r < 0 || resp->status != 403) {
			secmem_free(tok);
			return r;
		}
		/*
		 * "permission denied" alone, or a 403 we cannot read: a
		 * missing capability unless lookup-self says the token died.
		 * Never a login for a live token: that is what used up
		 * secret_ids and locked roles out.
		 */
		if (vault_classify_refusal(resp->status, resp->body,
		    resp->body_len, false) == VAULT_REFUSAL_DEAD_TOKEN)
			mark_refused(v, gen, resp);
		else if ((r = token_alive(v, tok, gen, errbuf, errlen)) != 0) {
			secmem_free(tok);
			if (r < 0)
				http_response_clear(resp);
			return r < 0 ? r : 0;
		}
		secmem_free(tok);
		if (tries > 0)
			return 0;	/* a fresh token refused too */
		http_response_clear(resp);
		if ((r = relogin(v, gen, errbuf, errlen)) < 0)
			return r;
	}
	snprintf(errbuf, errlen, "no usable token after logging in");
	return -EACCES;
}
