/*
 * The AWS credential chain: choose a source once, from what the config,
 * the environment and the files say, then hand out copies of the current
 * credentials, fetching temporary ones again before they lapse.
 *
 * Two locks: `lock` guards the current credentials and is only ever held
 * for a copy; `refresh` serialises fetches, which take network time, so
 * that N threads that find the credentials due make one request, not N.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <secretsfs/aws_creds.h>
#include <secretsfs/clk.h>
#include <secretsfs/backend.h>
#include <secretsfs/http.h>
#include <secretsfs/secfile.h>
#include <secretsfs/secmem.h>

#include "aws_creds_int.h"

/* --- small helpers ------------------------------------------------------- */

void
aws_credentials_clear(struct aws_credentials *c)
{
	if (!c)
		return;
	secmem_free(c->secret_access_key);
	secmem_free(c->session_token);
	/* Field by field: fortify takes &c->... for the first member alone. */
	explicit_bzero(c->access_key_id, sizeof(c->access_key_id));
	c->secret_access_key = NULL;
	c->session_token = NULL;
	c->expiration = 0;
}

int
aws_credentials_copy(struct aws_credentials *dst,
    const struct aws_credentials *src)
{
	memset(dst, 0, sizeof(*dst));
	memcpy(dst->access_key_id, src->access_key_id,
	    sizeof(dst->access_key_id));
	dst->expiration = src->expiration;
	if (!(dst->secret_access_key = secmem_strdup(src->secret_access_key)) ||
	    (src->session_token &&
	    !(dst->session_token = secmem_strdup(src->session_token)))) {
		aws_credentials_clear(dst);
		return -ENOMEM;
	}
	return 0;
}

/* A service's words for errbuf: printable ASCII only, bounded. */
void
aws_creds_clean_copy(char *dst, size_t dstlen, const char *src,
    size_t srclen)
{
	size_t i, j = 0;

	if (dstlen == 0)
		return;
	for (i = 0; i < srclen && src[i] && j + 1 < dstlen && j < MSG_MAX; i++)
		dst[j++] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[j] = '\0';
}

static bool
env_true(const char *name)
{
	const char *v = getenv(name);

	return v && strcasecmp(v, "true") == 0;
}

const char *
aws_creds_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* Access key ids are A-Z 0-9 in practice; allow what SigV4 can carry. */
static bool
valid_akid(const char *s, size_t n)
{
	if (n == 0 || n > SIGV4_AKID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

/* Secret keys and tokens go into header values: no control bytes. */
bool
aws_creds_valid_secret(const char *s, size_t n, size_t max)
{
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/*
 * Fill out from the parts a source yields (pointers and lengths into the
 * parsed document). Checks every part; exp may be NULL for keys that do
 * not expire.
 */
int
aws_creds_set(struct aws_credentials *out, const char *akid,
    size_t akid_len, const char *secret, size_t secret_len,
    const char *token, size_t token_len, const char *exp, const char *what,
    char *errbuf, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!akid || !valid_akid(akid, akid_len)) {
		snprintf(errbuf, errlen, "%s: missing or malformed access key id",
		    what);
		return -EIO;
	}
	if (!secret ||
	    !aws_creds_valid_secret(secret, secret_len, SIGV4_SECRET_MAX)) {
		snprintf(errbuf, errlen, "%s: missing or malformed secret "
		    "access key", what);
		return -EIO;
	}
	if (token && token_len &&
	    !aws_creds_valid_secret(token, token_len, TOKEN_MAX)) {
		snprintf(errbuf, errlen, "%s: malformed session token", what);
		return -EIO;
	}
	if (exp && aws_creds_parse_time(exp, &out->expiration) < 0) {
		snprintf(errbuf, errlen, "%s: malformed expiration time", what);
		return -EIO;
	}
	memcpy(out->access_key_id, akid, akid_len);
	out->access_key_id[akid_len] = '\0';
	if (!(out->secret_access_key = secmem_strndup(secret, secret_len)) ||
	    (token && token_len &&
	    !(out->session_token = secmem_strndup(token, token_len)))) {
		aws_credentials_clear(out);
		snprintf(errbuf, errlen, "locked memory exhausted");
		return -ENOMEM;
	}
	return 0;
}

/*
 * Read a file into the arena. private_only: refuse it when group/other
 * may read it. Otherwise *mode says what it is, so the caller can refuse
 * it only when it turns out to hold a key.
 */
int
aws_creds_read_file(const char *path, size_t max, bool private_only,
    char **out, size_t *len, mode_t *mode, char *errbuf, size_t errlen)
{
	if (private_only)
		return secfile_read_private(path, max, (uint8_t **)out, len,
		    errbuf, errlen);
	return secfile_read(path, 0, max, (uint8_t **)out, len, mode, errbuf,
	    errlen);
}

/* A token file: whitespace around the token is not part of it. */
int
aws_creds_read_token(const char *path, char **out, char *errbuf,
    size_t errlen)
{
	char *buf, *b, *e;
	size_t len;
	int r;

	if ((r = aws_creds_read_file(path, TOKEN_FILE_MAX, false, &buf, &len,
	    NULL, errbuf, errlen)) < 0)
		return r;
	b = buf;
	e = buf + len;
	while (b < e && isspace((unsigned char)*b))
		b++;
	while (e > b && isspace((unsigned char)e[-1]))
		e--;
	if (b == e) {
		secmem_free(buf);
		snprintf(errbuf, errlen, "%s: empty token", path);
		return -EINVAL;
	}
	*out = secmem_strndup(b, (size_t)(e - b));
	secmem_free(buf);
	if (!*out) {
		snprintf(errbuf, errlen, "locked memory exhausted");
		return -ENOMEM;
	}
	return 0;
}

/* --- time ------------------------------------------------------------------ */

int
aws_creds_parse_time(const char *s, time_t *out)
{
	int64_t us;

	if (clk_parse_rfc3339(s, 0, &us) < 0)
		return -EINVAL;
	*out = (time_t)(us / 1000000);
	return 0;
}

time_t
aws_creds_refresh_at(time_t obtained, time_t expiration)
{
	time_t life = expiration - obtained, margin;

	if (life <= 0)
		return obtained;
	/* a third, rounded up: 5-second test credentials get 2 s */
	margin = (life + 2) / 3;
	if (margin > REFRESH_MARGIN_MAX)
		margin = REFRESH_MARGIN_MAX;
	return expiration - margin;
}

/* --- the provider ------------------------------------------------------------ */

static int
from_static_json(struct aws_creds *p, const json_t *c, char *errbuf,
    size_t errlen)
{
	const char *akid = json_string_value(json_object_get(c,
	    "access_key_id"));
	const char *secret = json_string_value(json_object_get(c,
	    "secret_access_key"));
	const char *token = json_string_value(json_object_get(c,
	    "session_token"));
	int r;

	if (!akid || !secret) {
		snprintf(errbuf, errlen, "credentials: access_key_id and "
		    "secret_access_key are both required");
		return -EINVAL;
	}
	r = aws_creds_set(&p->cur, akid, strlen(akid), secret, strlen(secret),
	    token, token ? strlen(token) : 0, NULL, "credentials", errbuf,
	    errlen);
	snprintf(p->source_name, sizeof(p->source_name), "config");
	return r == -EIO ? -EINVAL : r;
}

static int
from_env(struct aws_creds *p, char *errbuf, size_t errlen)
{
	const char *akid = aws_creds_env("AWS_ACCESS_KEY_ID");
	const char *secret = aws_creds_env("AWS_SECRET_ACCESS_KEY");
	const char *token = aws_creds_env("AWS_SESSION_TOKEN");
	int r;

	if (!token)
		token = aws_creds_env("AWS_SECURITY_TOKEN");
	if (!akid || !secret)
		return -ENOENT;
	r = aws_creds_set(&p->cur, akid, strlen(akid), secret, strlen(secret),
	    token, token ? strlen(token) : 0, NULL, "environment", errbuf,
	    errlen);
	snprintf(p->source_name, sizeof(p->source_name), "environment");
	return r == -EIO ? -EINVAL : r;
}

static int
setup_web_identity(struct aws_creds *p, const struct aws_creds_options *o,
    char *errbuf, size_t errlen)
{
	const char *file = aws_creds_env("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *role = aws_creds_env("AWS_ROLE_ARN");
	const char *session = aws_creds_env("AWS_ROLE_SESSION_NAME");
	char url[512], *base = NULL, *path = NULL, name[64];
	bool tls;
	int r;

	if (!file || !role)
		return -ENOENT;
	if (o->sts_endpoint)
		snprintf(url, sizeof(url), "%s", o->sts_endpoint);
	else if (o->region)
		snprintf(url, sizeof(url), "https://sts.%s.amazonaws.com",
		    o->region);
	else
		snprintf(url, sizeof(url), "https://sts.amazonaws.com");
	if ((r = aws_creds_split_url(url, &base, &path, &tls)) < 0) {
		snprintf(errbuf, errlen, "sts_endpoint \"%s\" is not an http(s) "
		    "URL", url);
		return r == -ENOMEM ? r : -EINVAL;
	}
	free(path);
	if (!session) {
		snprintf(name, sizeof(name), "secretsfs-%lld",
		    (long long)time(NULL));
		session = name;
	}
	p->src = SRC_WEB_IDENTITY;
	snprintf(p->source_name, sizeof(p->source_name), "web identity");
	if (!(p->token_file = strdup(file)) || !(p->role_arn = strdup(role)) ||
	    !(p->session_name = strdup(session))) {
		free(base);
		return -ENOMEM;
	}
	r = aws_creds_make_client(p, o, base, tls, false, errbuf, errlen);
	free(base);
	return r;
}

static int
setup_container(struct aws_creds *p, const struct aws_creds_options *o,
    char *errbuf, size_t errlen)
{
	const char *rel =
	    aws_creds_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = aws_creds_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tfile =
	    aws_creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok = aws_creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	char *url, *base = NULL, host[256];
	bool tls;
	int r;

	if (!rel && !full)
		return -ENOENT;
	if (rel) {
		if (rel[0] != '/') {
			snprintf(errbuf, errlen, "AWS_CONTAINER_CREDENTIALS_"
			    "RELATIVE_URI must start with '/'");
			return -EINVAL;
		}
		if (asprintf(&url, "%s%s", ECS_HOST, rel) < 0)
			return -ENOMEM;
	} else if (!(url = strdup(full)))
		return -ENOMEM;
	r = aws_creds_split_url(url, &base, &p->path, &tls);
	free(url);
	if (r < 0) {
		snprintf(errbuf, errlen, "AWS_CONTAINER_CREDENTIALS_%s_URI is "
		    "not an http(s) URL", rel ? "RELATIVE" : "FULL");
		return r == -ENOMEM ? r : -EINVAL;
	}
	aws_creds_url_host(base, host, sizeof(host));
	if (!tls && !aws_creds_container_host_ok(host)) {
		snprintf(errbuf, errlen, "AWS_CONTAINER_CREDENTIALS_FULL_URI: "
		    "plain http only to loopback, 169.254.170.2, "
		    "169.254.170.23 or fd00:ec2::23, not %s", host);
		free(base);
		return -EINVAL;
	}
	p->src = SRC_CONTAINER;
	snprintf(p->source_name, sizeof(p->source_name), "container");
	if ((tfile && !(p->token_file = strdup(tfile))) ||
	    (!tfile && tok && !(p->auth_token = secmem_strdup(tok)))) {
		free(base);
		return -ENOMEM;
	}
	if (p->auth_token && strpbrk(p->auth_token, "\r\n")) {
		free(base);
		snprintf(errbuf, errlen, "AWS_CONTAINER_AUTHORIZATION_TOKEN "
		    "holds a line break");
		return -EINVAL;
	}
	r = aws_creds_make_client(p, o, base, tls, true, errbuf, errlen);
	free(base);
	return r;
}

static int
setup_imds(struct aws_creds *p, const struct aws_creds_options *o,
    char *errbuf, size_t errlen)
{
	const char *ep = o->imds_endpoint;
	char *base = NULL, *path = NULL;
	bool tls;
	int r;

	if (!ep)
		ep = aws_creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	if (!ep)
		ep = IMDS_DEFAULT;
	if ((r = aws_creds_split_url(ep, &base, &path, &tls)) < 0) {
		snprintf(errbuf, errlen, "IMDS endpoint \"%s\" is not an "
		    "http(s) URL", ep);
		return r == -ENOMEM ? r : -EINVAL;
	}
	free(path);
	p->src = SRC_IMDS;
	snprintf(p->source_name, sizeof(p->source_name), "imds");
	r = aws_creds_make_client(p, o, base, tls, true, errbuf, errlen);
	free(base);
	return r;
}

int
aws_creds_new(const struct aws_creds_options *o, struct aws_creds **out,
    char *errbuf, size_t errlen)
{
	const char *profile = o->profile;
	bool explicit_profile, exists;
	struct aws_creds *p;
	int r;

	*out = NULL;
	errbuf[0] = '\0';
	if (!(p = calloc(1, sizeof(*p))))
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->refresh, NULL);
	p->src = SRC_STATIC;
	if (o->backend && !(p->backend = strdup(o->backend))) {
		r = -ENOMEM;
		goto done;
	}

	if (o->credentials) {
		r = from_static_json(p, o->credentials, errbuf, errlen);
		goto done;
	}
	if ((r = from_env(p, errbuf, errlen)) != -ENOENT)
		goto done;
	if (!profile)
		profile = aws_creds_env("AWS_PROFILE");
	if (!profile)
		profile = aws_creds_env("AWS_DEFAULT_PROFILE");
	explicit_profile = profile != NULL;
	if (!profile)
		profile = "default";
	if ((r = aws_creds_from_profile(p, o, profile, &exists, errbuf,
	    errlen)) != -ENOENT)
		goto done;
	if (explicit_profile && !exists) {
		snprintf(errbuf, errlen, "AWS profile \"%s\" is in neither the "
		    "shared credentials file nor the config file", profile);
		r = -ENOENT;
		goto done;
	}
	if ((r = setup_web_identity(p, o, errbuf, errlen)) != -ENOENT)
		goto remote;
	if ((r = setup_container(p, o, errbuf, errlen)) != -ENOENT)
		goto remote;
	if (env_true("AWS_EC2_METADATA_DISABLED")) {
		snprintf(errbuf, errlen, "no AWS credentials: none in the config, "
		    "the environment or profile \"%s\"; no web identity or "
		    "container credentials; and IMDS is disabled", profile);
		r = -ENOENT;
		goto done;
	}
	r = setup_imds(p, o, errbuf, errlen);
remote:
	if (r == 0)
		r = 1;	/* fetched on first use */
done:
	if (r < 0) {
		if (r == -ENOMEM && errbuf[0] == '\0')
			snprintf(errbuf, errlen, "out of memory");
		aws_creds_free(p);
		return r;
	}
	p->have = r == 0;
	*out = p;
	return 0;
}

void
aws_creds_free(struct aws_creds *p)
{
	if (!p)
		return;
	http_client_free(p->client);
	aws_credentials_clear(&p->cur);
	free(p->path);
	free(p->role_arn);
	free(p->session_name);
	free(p->token_file);
	secmem_free(p->auth_token);
	secmem_free(p->imds_token);
	free(p->backend);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->refresh);
	free(p);
}

const char *
aws_creds_source(const struct aws_creds *p)
{
	return p->source_name;
}

unsigned long
aws_creds_fetches(const struct aws_creds *p)
{
	unsigned long n;

	pthread_mutex_lock((pthread_mutex_t *)&p->lock);
	n = p->fetches;
	pthread_mutex_unlock((pthread_mutex_t *)&p->lock);
	return n;
}

/* With lock held: are the current credentials usable, and not yet due? */
static bool
fresh(const struct aws_creds *p, time_t now)
{
	return p->have && (p->cur.expiration == 0 || now < p->refresh_at);
}

static bool
usable(const struct aws_creds *p, time_t now)
{
	return p->have && (p->cur.expiration == 0 || now < p->cur.expiration);
}

/* Fixed words for the audit trail: never a service's text or a token. */
static const char *
auth_reason(int r)
{
	switch (r) {
	case -EACCES:
		return "credentials refused";
	case -EAGAIN:
		return "throttled";
	case -EPROTO:
		return "TLS failure";
	case -ETIMEDOUT:
		return "timed out";
	case -ECONNREFUSED:
		return "connection refused";
	case -EHOSTUNREACH:
		return "host not found";
	case -EPERM:
		return "token file not private";
	case -ENOENT:
		return "token file missing";
	case -EFBIG:
		return "answer too large";
	case -ENOMEM:
		return "out of memory";
	default:
		return "credential service error";
	}
}

/* The audit trail's name for a remote source: its auth "method". */
static const char *
method_name(const struct aws_creds *p)
{
	switch (p->src) {
	case SRC_WEB_IDENTITY:
		return "web-identity";
	case SRC_CONTAINER:
		return "container";
	case SRC_IMDS:
		return "imds";
	default:
		return "static";
	}
}

/* With refresh held, lock not held. */
static int
do_refresh(struct aws_creds *p, struct aws_credentials *out, char *errbuf,
    size_t errlen)
{
	struct aws_credentials next;
	const char *action;
	long long ttl = 0;
	time_t now;
	int r, fr;

	r = fr = aws_creds_fetch_remote(p, &next, errbuf, errlen);
	/* After the answer: a slow fetch must not stretch the reported ttl. */
	now = time(NULL);
	pthread_mutex_lock(&p->lock);
	/* The first credentials are a login; any after them, a renewal. */
	action = p->fetches == 0 ? "login" : "renew";
	if (r == 0 && next.expiration > now)
		ttl = (long long)(next.expiration - now);
	if (r == 0) {
		aws_credentials_clear(&p->cur);
		p->cur = next;
		p->have = true;
		p->fetches++;
		p->refresh_at = next.expiration ?
		    aws_creds_refresh_at(now, next.expiration) : 0;
		p->retry_after = 0;
		p->last_r = 0;
	} else {
		p->retry_after = time(NULL) + RETRY_AFTER_FAILURE;
		p->last_r = r;
		snprintf(p->last_err, sizeof(p->last_err), "%s", errbuf);
		/* The old ones may still do until they lapse. */
		if (usable(p, time(NULL)))
			r = 0;
	}
	if (r == 0 && (r = aws_credentials_copy(out, &p->cur)) < 0)
		snprintf(errbuf, errlen, "locked memory exhausted");
	pthread_mutex_unlock(&p->lock);
	/*
	 * Outside the lock: in the fetcher the record crosses a socket, and
	 * readers with good credentials must not wait on it. A failed
	 * refresh is reported even while the old credentials still serve.
	 */
	if (p->backend)
		backend_report_auth(p->backend, method_name(p), action, fr == 0,
		    -fr, ttl, fr == 0 ? NULL : auth_reason(fr));
	return r;
}

int
aws_creds_get(struct aws_creds *p, struct aws_credentials *out, char *errbuf,
    size_t errlen)
{
	time_t now = time(NULL);
	int r;

	memset(out, 0, sizeof(*out));
	errbuf[0] = '\0';
	pthread_mutex_lock(&p->lock);
	if (fresh(p, now) || (p->src == SRC_STATIC && p->have)) {
		r = aws_credentials_copy(out, &p->cur);
		pthread_mutex_unlock(&p->lock);
		if (r < 0)
			snprintf(errbuf, errlen, "locked memory exhausted");
		return r;
	}
	if (p->src == SRC_STATIC) {
		pthread_mutex_unlock(&p->lock);
		snprintf(errbuf, errlen, "the %s credentials were dropped and "
		    "cannot be fetched again", p->source_name);
		return -EACCES;
	}
	if (usable(p, now)) {
		/* Due but still good: one thread refreshes, the rest go on. */
		if (now < p->retry_after ||
		    pthread_mutex_trylock(&p->refresh) != 0) {
			r = aws_credentials_copy(out, &p->cur);
			pthread_mutex_unlock(&p->lock);
			if (r < 0)
				snprintf(errbuf, errlen, "locked memory exhausted");
			return r;
		}
		pthread_mutex_unlock(&p->lock);
	} else {
		pthread_mutex_unlock(&p->lock);
		pthread_mutex_lock(&p->refresh);
		/* Someone may have fetched while we waited. */
		pthread_mutex_lock(&p->lock);
		now = time(NULL);
		if (!usable(p, now) && now < p->retry_after && p->last_r < 0) {
			/*
			 * It failed a moment ago: say so again rather than
			 * have every waiting reader wait out its own timeout.
			 */
			r = p->last_r;
			snprintf(errbuf, errlen, "%s", p->last_err);
			pthread_mutex_unlock(&p->lock);
			pthread_mutex_unlock(&p->refresh);
			return r;
		}
		if (fresh(p, now)) {
			r = aws_credentials_copy(out, &p->cur);
			pthread_mutex_unlock(&p->lock);
			pthread_mutex_unlock(&p->refresh);
			if (r < 0)
				snprintf(errbuf, errlen, "locked memory exhausted");
			return r;
		}
		pthread_mutex_unlock(&p->lock);
	}
	r = do_refresh(p, out, errbuf, errlen);
	pthread_mutex_unlock(&p->refresh);
	return r;
}

bool
aws_creds_invalidate(struct aws_creds *p, const char *access_key_id)
{
	bool r = true;

	pthread_mutex_lock(&p->lock);
	if (p->src == SRC_STATIC)
		r = false;
	else if (p->have &&
	    strcmp(p->cur.access_key_id, access_key_id) == 0) {
		aws_credentials_clear(&p->cur);
		p->have = false;
		p->retry_after = 0;
		p->last_r = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return r;
}
