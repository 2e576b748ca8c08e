/*
 * HTTPS to the backends, with libcurl's easy interface.
 *
 * Each client keeps a small free list of easy handles. A handle keeps its
 * own connection alive between requests, so the free list is the
 * connection pool (libcurl does not support one connection cache shared
 * by concurrent threads). TLS sessions and DNS answers are shared between
 * the handles through a CURLSH.
 *
 * Client certificate rotation: before each request the certificate and
 * key files are stat'ed. When either changed, the client starts a new
 * share (so no TLS session made with the old certificate is resumed) and
 * retires every handle made before (so no connection that presented the
 * old certificate is reused). Handles in flight finish their request and
 * are freed on return; the old share goes with its last handle.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include <secretsfs/clk.h>
#include <secretsfs/cfg.h>
#include <secretsfs/http.h>
#include <secretsfs/secfile.h>
#include <secretsfs/secmem.h>

#ifndef SECRETSFS_VERSION
#define SECRETSFS_VERSION "unknown"
#endif

#define DEFAULT_CONNECT_TIMEOUT_MS	5000
#define DEFAULT_TIMEOUT_MS		15000
#define DEFAULT_MAX_RETRIES		3
#define DEFAULT_RETRY_BASE_MS		100
#define DEFAULT_RETRY_MAX_MS		2000
#define DEFAULT_MAX_RESPONSE		(1u << 20)

#define MAX_RETRIES_LIMIT		10
#define MIN_RESPONSE_LIMIT		1024u
#define MAX_RESPONSE_LIMIT		(256u << 20)

/* Idle handles (and so idle connections) kept per client. */
#define IDLE_MAX			8

/* --- options ------------------------------------------------------------ */

void
http_options_default(struct http_options *o)
{
	memset(o, 0, sizeof(*o));
	o->tls = true;
	o->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
	o->timeout_ms = DEFAULT_TIMEOUT_MS;
	o->max_retries = DEFAULT_MAX_RETRIES;
	o->retry_base_ms = DEFAULT_RETRY_BASE_MS;
	o->retry_max_ms = DEFAULT_RETRY_MAX_MS;
	o->max_response_bytes = DEFAULT_MAX_RESPONSE;
}

static int
parse_tls(const json_t *tls, const char *path, struct http_options *o,
    struct cfg_err *err)
{
	static const char *const keys[] = { "ca_file", "client_cert",
	    "client_key", "pinned_pubkey", NULL };
	char p[CFG_PATH_MAX];
	json_t *v;
	int r;

	if (json_is_false(tls)) {
		o->tls = false;
		return 0;
	}
	if (!json_is_object(tls))
		return cfg_err_set(err, path, "expected an object, or false "
		    "for plain http to a loopback address");
	if ((r = cfg_check_keys(tls, path, keys, err)) < 0 ||
	    (r = cfg_get_path(tls, path, "ca_file", 0, &o->ca_file, err)) < 0 ||
	    (r = cfg_get_path(tls, path, "client_cert", 0, &o->client_cert,
	    err)) < 0 ||
	    (r = cfg_get_path(tls, path, "client_key", 0, &o->client_key,
	    err)) < 0)
		return r;
	if ((v = json_object_get(tls, "pinned_pubkey"))) {
		const char *s = json_string_value(v);

		cfg_path_key(p, sizeof(p), path, "pinned_pubkey");
		if (!s || (strncmp(s, "sha256//", 8) != 0 && s[0] != '/') ||
		    strlen(s) != json_string_length(v))
			return cfg_err_set(err, p, "expected \"sha256//BASE64"
			    "[;sha256//BASE64...]\" or the absolute path of a "
			    "public key file");
		o->pinned_pubkey = s;
	}
	if (o->client_cert && !o->client_key) {
		cfg_path_key(p, sizeof(p), path, "client_key");
		return cfg_err_set(err, p, "missing: client_cert needs its "
		    "private key");
	}
	if (o->client_key && !o->client_cert) {
		cfg_path_key(p, sizeof(p), path, "client_cert");
		return cfg_err_set(err, p, "missing: client_key needs its "
		    "certificate");
	}
	return 0;
}

static int
parse_http(const json_t *h, const char *path, struct http_options *o,
    struct cfg_err *err)
{
	static const char *const keys[] = { "connect_timeout", "timeout",
	    "max_retries", "retry_base", "retry_max", "max_response_bytes",
	    NULL };
	long long retries = o->max_retries;
	char p[CFG_PATH_MAX];
	int r;

	if (!json_is_object(h))
		return cfg_err_set(err, path, "expected an object");
	if ((r = cfg_check_keys(h, path, keys, err)) < 0 ||
	    (r = cfg_get_duration(h, path, "connect_timeout", CFG_NONZERO,
	    &o->connect_timeout_ms, err)) < 0 ||
	    (r = cfg_get_duration(h, path, "timeout", CFG_NONZERO,
	    &o->timeout_ms, err)) < 0 ||
	    (r = cfg_get_duration(h, path, "retry_base", CFG_NONZERO,
	    &o->retry_base_ms, err)) < 0 ||
	    (r = cfg_get_duration(h, path, "retry_max", CFG_NONZERO,
	    &o->retry_max_ms, err)) < 0 ||
	    (r = cfg_get_int(h, path, "max_retries", 0, 0, MAX_RETRIES_LIMIT,
	    &retries, err)) < 0)
		return r;
	o->max_retries = (int)retries;
	if (json_object_get(h, "max_response_bytes")) {
		uint64_t n = 0;

		cfg_path_key(p, sizeof(p), path, "max_response_bytes");
		if ((r = cfg_get_size(h, path, "max_response_bytes", 0, &n,
		    err)) < 0)
			return r;
		if (n < MIN_RESPONSE_LIMIT || n > MAX_RESPONSE_LIMIT)
			return cfg_err_set(err, p, "must be between 1KiB and "
			    "256MiB");
		o->max_response_bytes = (size_t)n;
	}
	if (o->retry_max_ms < o->retry_base_ms) {
		cfg_path_key(p, sizeof(p), path, "retry_max");
		return cfg_err_set(err, p, "must not be less than "
		    "retry_base");
	}
	return 0;
}

int
http_options_from_json(const json_t *backend_obj, const char *path,
    struct http_options *o, struct cfg_err *err)
{
	char p[CFG_PATH_MAX];
	json_t *v;
	int r;

	http_options_default(o);
	if ((v = json_object_get(backend_obj, "tls"))) {
		cfg_path_key(p, sizeof(p), path, "tls");
		if ((r = parse_tls(v, p, o, err)) < 0)
			return r;
	}
	if ((v = json_object_get(backend_obj, "http"))) {
		cfg_path_key(p, sizeof(p), path, "http");
		if ((r = parse_http(v, p, o, err)) < 0)
			return r;
	}
	return 0;
}

/* --- backoff ------------------------------------------------------------ */

int64_t
http_backoff_ms(const struct http_options *o, int attempt)
{
	int64_t cap = o->retry_max_ms, up = o->retry_base_ms;

	if (attempt < 1)
		attempt = 1;
	/* base * 2^attempt without overflowing past the cap. */
	for (int i = 0; i < attempt && up < cap; i++)
		up *= 2;
	if (up > cap)
		up = cap;
	if (up <= 0)
		return 0;
	if (up >= (int64_t)UINT32_MAX)
		up = UINT32_MAX - 1;
	/* Full jitter: anywhere from 0 to the bound, both included. */
	return (int64_t)arc4random_uniform((uint32_t)up + 1);
}

/* --- the client --------------------------------------------------------- */

struct share {
	CURLSH		*sh;
	pthread_mutex_t	 mu[CURL_LOCK_DATA_LAST];
	int		 refs;		/* under the client's lock */
};

struct handle {
	CURL		*easy;
	struct share	*share;
	struct handle	*next;
	char		 err[CURL_ERROR_SIZE];
};

/* Enough of a file's identity to see it replaced or rewritten. */
struct stamp {
	dev_t		 dev;
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtime;
	struct timespec	 ctime;
	int		 err;
};

struct http_client {
	char		*base_url;
	char		*ca_file;
	char		*pinned;
	char		*cert;
	char		*key;
	struct http_options o;

	pthread_mutex_t	 mu;
	struct share	*share;		/* the current one */
	struct handle	*idle;
	size_t		 nidle;
	struct stamp	 cert_st, key_st;
};

static void
share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *arg)
{
	struct share *s = arg;

	(void)h;
	(void)access;
	pthread_mutex_lock(&s->mu[data]);
}

static void
share_unlock(CURL *h, curl_lock_data data, void *arg)
{
	struct share *s = arg;

	(void)h;
	pthread_mutex_unlock(&s->mu[data]);
}

static struct share *
share_new(void)
{
	struct share *s;

	if (!(s = calloc(1, sizeof(*s))))
		return NULL;
	if (!(s->sh = curl_share_init())) {
		free(s);
		return NULL;
	}
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&s->mu[i], NULL);
	curl_share_setopt(s->sh, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(s->sh, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(s->sh, CURLSHOPT_USERDATA, s);
	curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	s->refs = 1;
	return s;
}

static void
share_free(struct share *s)
{
	if (!s)
		return;
	curl_share_cleanup(s->sh);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&s->mu[i]);
	free(s);
}

/* Drop one reference; true when the caller must share_free() it. Locked. */
static bool
share_unref_locked(struct share *s)
{
	return --s->refs == 0;
}

static void
handle_free(struct handle *h)
{
	if (!h)
		return;
	curl_easy_cleanup(h->easy);
	free(h);
}

static void
stamp_take(const char *path, struct stamp *st)
{
	struct stat sb;

	memset(st, 0, sizeof(*st));
	if (!path)
		return;
	/* stat, not lstat: a rotation that swaps a symlink is a change. */
	if (stat(path, &sb) != 0) {
		st->err = errno;
		return;
	}
	st->dev = sb.st_dev;
	st->ino = sb.st_ino;
	st->size = sb.st_size;
	st->mtime = sb.st_mtim;
	st->ctime = sb.st_ctim;
}

static bool
stamp_same(const struct stamp *a, const struct stamp *b)
{
	return a->err == b->err && a->dev == b->dev && a->ino == b->ino &&
	    a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	    a->mtime.tv_nsec == b->mtime.tv_nsec &&
	    a->ctime.tv_sec == b->ctime.tv_sec &&
	    a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static int
check_key_file(const char *key, char *errbuf, size_t errlen)
{
	int fd, r;

	if ((fd = open(key, O_RDONLY | O_CLOEXEC)) < 0) {
		r = -errno;
		snprintf(errbuf, errlen, "client key %s: %s", key, strerror(-r));
		return r;
	}
	r = secfile_check_private(fd, key, errbuf, errlen);
	close(fd);
	return r;
}

static int
check_readable(const char *what, const char *path, char *errbuf,
    size_t errlen)
{
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		r = -errno;
		snprintf(errbuf, errlen, "%s %s: %s", what, path, strerror(-r));
		return r;
	}
	close(fd);
	return 0;
}

static bool
host_is_loopback(const char *host)
{
	char buf[INET6_ADDRSTRLEN + 2];
	struct in6_addr a6;
	struct in_addr a4;
	size_t n;

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	n = strlen(host);
	if (n < 3 || host[0] != '[' || host[n - 1] != ']' || n - 2 >= sizeof(buf))
		return false;
	memcpy(buf, host + 1, n - 2);
	buf[n - 2] = '\0';
	if (inet_pton(AF_INET6, buf, &a6) != 1)
		return false;
	if (IN6_IS_ADDR_LOOPBACK(&a6))
		return true;
	return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

static bool
host_is_metadata(const char *host)
{
	static const char *const hosts[] = { "169.254.169.254",
	    "169.254.170.2", "169.254.170.23", "[fd00:ec2::254]",
	    "[fd00:ec2::23]" };

	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
		if (strcasecmp(host, hosts[i]) == 0)
			return true;
	return false;
}

static int
check_url(const char *url, bool tls, bool metadata, char *errbuf,
    size_t errlen)
{
	char *scheme = NULL, *host = NULL, *user = NULL, *query = NULL;
	CURLU *u;
	int r = 0;

	if (!(u = curl_url()))
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(errbuf, errlen, "address \"%s\" is not a URL such as "
		    "https://vault.example:8200", url);
		r = -EINVAL;
		goto out;
	}
	/* Credentials in the address would end up in error messages. */
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK) {
		snprintf(errbuf, errlen, "address %s: no user, password or "
		    "query allowed", host);
		r = -EINVAL;
		goto out;
	}
	if (strcmp(scheme, "https") == 0) {
		if (!tls) {
			snprintf(errbuf, errlen, "address %s is https:// but "
			    "\"tls\" is false", url);
			r = -EINVAL;
		}
	} else if (strcmp(scheme, "http") == 0) {
		if (tls) {
			snprintf(errbuf, errlen, "address %s: plain http:// is "
			    "refused; use https://, or set \"tls\": false for a "
			    "loopback address", url);
			r = -EINVAL;
		} else if (!host_is_loopback(host) &&
		    !(metadata && host_is_metadata(host))) {
			snprintf(errbuf, errlen, "address %s: plain http:// is "
			    "only allowed to a loopback address (127.0.0.0/8, "
			    "::1, localhost)", url);
			r = -EINVAL;
		}
	} else {
		snprintf(errbuf, errlen, "address %s: scheme must be https",
		    url);
		r = -EINVAL;
	}
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_free(query);
	curl_url_cleanup(u);
	return r;
}

int
http_check_url(const char *url, bool tls, char *errbuf, size_t errlen)
{
	return check_url(url, tls, false, errbuf, errlen);
}

static char *
dup_or_null(const char *s, bool *oom)
{
	char *d;

	if (!s)
		return NULL;
	if (!(d = strdup(s)))
		*oom = true;
	return d;
}

int
http_client_new(const char *base_url, const struct http_options *o,
    struct http_client **out, char *errbuf, size_t errlen)
{
	struct http_client *c;
	bool oom = false;
	size_t n;
	int r;

	*out = NULL;
	if ((r = check_url(base_url, o->tls, o->metadata_http, errbuf,
	    errlen)) < 0)
		return r;
	if (o->tls) {
		if (!o->client_cert != !o->client_key) {
			snprintf(errbuf, errlen, "client_cert and client_key "
			    "go together");
			return -EINVAL;
		}
		if (o->ca_file && (r = check_readable("CA file", o->ca_file,
		    errbuf, errlen)) < 0)
			return r;
		if (o->client_cert && ((r = check_readable("client "
		    "certificate", o->client_cert, errbuf, errlen)) < 0 ||
		    (r = check_key_file(o->client_key, errbuf, errlen)) < 0))
			return r;
	}
	if (!(c = calloc(1, sizeof(*c))))
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	c->o = *o;
	c->base_url = dup_or_null(base_url, &oom);
	if (o->tls) {
		c->ca_file = dup_or_null(o->ca_file, &oom);
		c->pinned = dup_or_null(o->pinned_pubkey, &oom);
		c->cert = dup_or_null(o->client_cert, &oom);
		c->key = dup_or_null(o->client_key, &oom);
	}
	c->o.ca_file = c->ca_file;
	c->o.pinned_pubkey = c->pinned;
	c->o.client_cert = c->cert;
	c->o.client_key = c->key;
	if (oom || !(c->share = share_new())) {
		http_client_free(c);
		return -ENOMEM;
	}
	/* "https://vault:8200/" + "/v1/..." would make "//v1". */
	n = strlen(c->base_url);
	while (n > 0 && c->base_url[n - 1] == '/')
		c->base_url[--n] = '\0';
	stamp_take(c->cert, &c->cert_st);
	stamp_take(c->key, &c->key_st);
	*out = c;
	return 0;
}

void
http_client_free(struct http_client *c)
{
	struct handle *h, *next;

	if (!c)
		return;
	/* Idle handles all belong to the current share (see rotate_locked). */
	for (h = c->idle; h; h = next) {
		next = h->next;
		handle_free(h);
		c->share->refs--;
	}
	if (c->share && share_unref_locked(c->share))
		share_free(c->share);
	pthread_mutex_destroy(&c->mu);
	free(c->base_url);
	free(c->ca_file);
	free(c->pinned);
	free(c->cert);
	free(c->key);
	free(c);
}

/*
 * Start afresh when the client certificate or key changed on disk: a new
 * share (no resumption of sessions made with the old certificate) and no
 * reuse of handles whose connections presented it. Locked; the retired
 * handles are handed back for freeing outside the lock.
 */
static int
rotate_locked(struct http_client *c, struct handle **retired,
    struct share **old, char *errbuf, size_t errlen)
{
	struct stamp cst, kst;
	struct share *s;
	int r;

	*retired = NULL;
	*old = NULL;
	if (!c->cert)
		return 0;
	stamp_take(c->cert, &cst);
	stamp_take(c->key, &kst);
	if (stamp_same(&cst, &c->cert_st) && stamp_same(&kst, &c->key_st))
		return 0;
	/* The new key must be as private as the first one was. */
	if ((r = check_key_file(c->key, errbuf, errlen)) < 0)
		return r;
	if (!(s = share_new()))
		return -ENOMEM;
	if (share_unref_locked(c->share))
		*old = c->share;
	c->share = s;
	*retired = c->idle;
	c->idle = NULL;
	c->nidle = 0;
	c->cert_st = cst;
	c->key_st = kst;
	return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg);
static size_t on_header(char *p, size_t size, size_t n, void *arg);

static struct handle *
handle_new(struct http_client *c, struct share *s)
{
	struct handle *h;
	CURL *e;

	if (!(h = calloc(1, sizeof(*h))))
		return NULL;
	if (!(e = h->easy = curl_easy_init())) {
		free(h);
		return NULL;
	}
	h->share = s;
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_SHARE, s->sh);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->err);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, c->o.tls ? "https" : "http");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)c->o.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "secretsfs/" SECRETSFS_VERSION);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)c->o.max_response_bytes);
	if (c->o.tls) {
		curl_easy_setopt(e, CURLOPT_SSLVERSION,
		    (long)CURL_SSLVERSION_TLSv1_2);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
		if (c->ca_file)
			curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
		if (c->pinned)
			curl_easy_setopt(e, CURLOPT_PINNEDPUBLICKEY, c->pinned);
		if (c->cert) {
			curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
			curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert);
			curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
			curl_easy_setopt(e, CURLOPT_SSLKEY, c->key);
		}
	}
	return h;
}

static int
take_handle(struct http_client *c, struct handle **out, char *errbuf,
    size_t errlen)
{
	struct handle *h = NULL, *retired, *next;
	struct share *old, *s;
	int r;

	*out = NULL;
	pthread_mutex_lock(&c->mu);
	if ((r = rotate_locked(c, &retired, &old, errbuf, errlen)) < 0) {
		pthread_mutex_unlock(&c->mu);
		return r;
	}
	if ((h = c->idle)) {
		c->idle = h->next;
		c->nidle--;
	}
	s = c->share;
	if (!h)
		s->refs++;	/* for the handle made below */
	pthread_mutex_unlock(&c->mu);

	/* Retired handles hold a reference each to the old share. */
	for (; retired; retired = next) {
		struct share *hs = retired->share;
		bool last;

		next = retired->next;
		handle_free(retired);
		pthread_mutex_lock(&c->mu);
		last = share_unref_locked(hs);
		pthread_mutex_unlock(&c->mu);
		if (last)
			share_free(hs);
	}
	if (old)
		share_free(old);
	if (!h && !(h = handle_new(c, s))) {
		bool last;

		pthread_mutex_lock(&c->mu);
		last = share_unref_locked(s);
		pthread_mutex_unlock(&c->mu);
		if (last)
			share_free(s);
		return -ENOMEM;
	}
	h->next = NULL;
	*out = h;
	return 0;
}

/* Keep a handle (and its live connection) for the next request. */
static void
put_handle(struct http_client *c, struct handle *h, bool keep)
{
	struct share *s = h->share;
	bool last = false;

	pthread_mutex_lock(&c->mu);
	if (keep && s == c->share && c->nidle < IDLE_MAX) {
		h->next = c->idle;
		c->idle = h;
		c->nidle++;
		pthread_mutex_unlock(&c->mu);
		return;
	}
	pthread_mutex_unlock(&c->mu);
	handle_free(h);
	pthread_mutex_lock(&c->mu);
	last = share_unref_locked(s);
	pthread_mutex_unlock(&c->mu);
	if (last)
		share_free(s);
}

/* --- one transfer ------------------------------------------------------- */

struct sink {
	struct http_response	*resp;
	size_t			 cap;
	size_t			 max;
	bool			 toobig;
	bool			 nomem;
};

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	struct http_response *r = s->resp;
	size_t add = size * n, want;
	uint8_t *nb;

	if (add > s->max || r->body_len > s->max - add) {
		s->toobig = true;
		return 0;	/* aborts the transfer */
	}
	if (r->body_len + add + 1 > s->cap) {
		want = s->cap ? s->cap : 4096;
		while (want < r->body_len + add + 1)
			want *= 2;
		if (want > s->max + 1)
			want = s->max + 1;
		if (!(nb = secmem_realloc(r->body, want))) {
			s->nomem = true;
			return 0;
		}
		r->body = nb;
		s->cap = want;
	}
	memcpy(r->body + r->body_len, p, add);
	r->body_len += add;
	r->body[r->body_len] = '\0';
	return add;
}

/* Copy a header value, printable ASCII only, trimmed. */
static void
copy_value(char *dst, size_t dlen, const char *v, size_t vlen)
{
	size_t i, o = 0;

	while (vlen > 0 && isspace((unsigned char)*v)) {
		v++;
		vlen--;
	}
	while (vlen > 0 && isspace((unsigned char)v[vlen - 1]))
		vlen--;
	for (i = 0; i < vlen && o + 1 < dlen; i++)
		if (v[i] >= 0x20 && v[i] < 0x7f)
			dst[o++] = v[i];
	dst[o] = '\0';
}

static bool
header_is(const char *line, size_t len, const char *name, const char **val,
    size_t *vlen)
{
	size_t n = strlen(name);

	if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
		return false;
	*val = line + n + 1;
	*vlen = len - n - 1;
	return true;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	struct http_response *r = s->resp;
	size_t len = size * n, vlen;
	const char *v;
	char buf[64], *end;

	/* A new status line (after a 100 Continue): forget the last block. */
	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		r->request_id[0] = r->error_type[0] = r->location[0] = '\0';
		r->retry_after_ms = -1;
		return len;
	}
	if (header_is(p, len, "Retry-After", &v, &vlen)) {
		long long secs;

		copy_value(buf, sizeof(buf), v, vlen);
		secs = strtoll(buf, &end, 10);
		if (buf[0] && *end == '\0' && secs >= 0 && secs < 86400 * 365)
			r->retry_after_ms = secs * 1000;
		else {
			time_t t = curl_getdate(buf, NULL);
			time_t now = time(NULL);

			if (t > 0)
				r->retry_after_ms = t > now ?
				    (int64_t)(t - now) * 1000 : 0;
		}
	} else if (header_is(p, len, "x-amzn-RequestId", &v, &vlen) ||
	    header_is(p, len, "x-amz-request-id", &v, &vlen) ||
	    header_is(p, len, "X-Vault-Request-Id", &v, &vlen)) {
		copy_value(r->request_id, sizeof(r->request_id), v, vlen);
	} else if (header_is(p, len, "X-Amzn-Errortype", &v, &vlen)) {
		copy_value(r->error_type, sizeof(r->error_type), v, vlen);
	} else if (header_is(p, len, "Location", &v, &vlen)) {
		copy_value(r->location, sizeof(r->location), v, vlen);
	}
	return len;
}

static bool
alert_in(const char *msg)
{
	return strstr(msg, "alert") != NULL;
}

/*
 * No TLS version both sides accept: the server's "protocol version" alert
 * (it saw only 1.2 and 1.3 offered), or OpenSSL's own refusal of an older
 * version the server chose.
 */
static bool
version_mismatch(const char *msg)
{
	return strstr(msg, "alert protocol version") != NULL ||
	    strstr(msg, "unsupported protocol") != NULL;
}

/*
 * What an OpenSSL error says, without its codes: "OpenSSL SSL_read:
 * error:0A000415:SSL routines::sslv3 alert certificate expired, errno 0"
 * becomes "sslv3 alert certificate expired".
 */
static const char *
tls_detail(const char *msg, char *buf, size_t len)
{
	const char *p = strstr(msg, "::");
	char *e;

	snprintf(buf, len, "%s", p ? p + 2 : msg);
	if ((e = strstr(buf, ", errno ")))
		*e = '\0';
	return buf;
}

/* Whether the server's answer had begun: its headers were received. */
static bool
answered(const struct handle *h)
{
	long hsize = 0;

	return curl_easy_getinfo(h->easy, CURLINFO_HEADER_SIZE, &hsize) ==
	    CURLE_OK && hsize > 0;
}

static int
map_error(struct http_client *c, CURLcode rc, const struct handle *h,
    const struct sink *s, const char *method, const char *url,
    int64_t timeout_ms, char *errbuf, size_t errlen)
{
	const char *detail = h->err[0] ? h->err : curl_easy_strerror(rc);
	char tls[CURL_ERROR_SIZE];

	if (s->toobig || rc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(errbuf, errlen, "%s %s: answer larger than "
		    "max_response_bytes (%zu bytes)", method, url,
		    c->o.max_response_bytes);
		return -EFBIG;
	}
	if (s->nomem) {
		snprintf(errbuf, errlen, "%s %s: locked memory exhausted "
		    "while receiving the answer", method, url);
		return -ENOMEM;
	}
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(errbuf, errlen, "%s %s: timed out after %" PRId64
		    " ms", method, url, timeout_ms);
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		snprintf(errbuf, errlen, "%s %s: cannot connect: %s", method,
		    url, detail);
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
		snprintf(errbuf, errlen, "%s %s: cannot resolve the host name",
		    method, url);
		return -EHOSTUNREACH;
	case CURLE_PEER_FAILED_VERIFICATION:
		snprintf(errbuf, errlen, "%s %s: TLS: server certificate not "
		    "verified by %s (%s)", method, url,
		    c->ca_file ? c->ca_file : "the system CA store", detail);
		return -EPROTO;
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		snprintf(errbuf, errlen, "%s %s: TLS: the server's public key "
		    "does not match pinned_pubkey", method, url);
		return -EPROTO;
	case CURLE_SSL_CACERT_BADFILE:
		snprintf(errbuf, errlen, "%s %s: TLS: cannot use CA file %s "
		    "(%s)", method, url, c->ca_file ? c->ca_file : "(system)",
		    detail);
		return -EPROTO;
	case CURLE_SSL_CERTPROBLEM:
		snprintf(errbuf, errlen, "%s %s: TLS: cannot use the client "
		    "certificate %s with key %s (%s)", method, url,
		    c->cert ? c->cert : "-", c->key ? c->key : "-", detail);
		return -EPROTO;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		if (c->o.tls && version_mismatch(detail)) {
			snprintf(errbuf, errlen, "%s %s: TLS: the server offers no "
			    "TLS version we accept; TLS 1.2 is the least (%s)",
			    method, url, tls_detail(detail, tls, sizeof(tls)));
			return -EPROTO;
		}
		if (c->o.tls && alert_in(detail)) {
			/*
			 * With TLS 1.3 the server judges our certificate
			 * after the handshake, so its refusal comes back as
			 * an alert on the first read.
			 */
			snprintf(errbuf, errlen, "%s %s: TLS: the server refused "
			    "the connection (%s)%s%s", method, url,
			    tls_detail(detail, tls, sizeof(tls)), c->cert ? "; client "
			    "certificate " : "; no client certificate was "
			    "configured", c->cert ? c->cert : "");
			return -EPROTO;
		}
		if (answered(h)) {
			/*
			 * The server's headers came, then the connection
			 * broke: not the handshake, whatever TLS says.
			 */
			snprintf(errbuf, errlen, "%s %s: the connection broke "
			    "during the answer (%s)", method, url, detail);
			return -EIO;
		}
		if (c->o.tls && (strstr(detail, "errno 107") ||
		    strstr(detail, "reset by peer") ||
		    strstr(detail, "unexpected eof"))) {
			/*
			 * The server hung up before its alert reached us (a
			 * loaded machine, or a server that closes at once):
			 * the likely cause is the same, the alert is lost.
			 */
			/* The hint first: a long detail may be cut. */
			snprintf(errbuf, errlen, "%s %s: TLS: the server closed "
			    "the connection during the handshake%s%s (%s)",
			    method, url, c->cert ? "; client certificate " :
			    "; no client certificate was configured",
			    c->cert ? c->cert : "", detail);
			return -EPROTO;
		}
		if (rc == CURLE_SSL_CONNECT_ERROR) {
			snprintf(errbuf, errlen, "%s %s: TLS handshake failed: "
			    "%s", method, url, detail);
			return -EPROTO;
		}
		/* FALLTHROUGH */
	default:
		snprintf(errbuf, errlen, "%s %s: %s", method, url, detail);
		return -EIO;
	}
}

static bool
retryable_error(CURLcode rc, const struct handle *h, const struct sink *s)
{
	if (s->toobig || s->nomem)
		return false;
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	/* A key swapped a moment after its certificate: look again. */
	case CURLE_SSL_CERTPROBLEM:
		return true;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		/* A refusal of our certificate will not change by itself. */
		return !alert_in(h->err) && !version_mismatch(h->err);
	default:
		return false;
	}
}

static bool
retryable_status(long status)
{
	return status == 429 || (status >= 500 && status <= 599);
}

/* "Name: value" for curl, built in locked memory (the value may be a token). */
static int
add_header(struct curl_slist **list, const char *name, const char *value)
{
	struct curl_slist *l;
	size_t nl = strlen(name), vl = strlen(value);
	char *line;

	if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
		return -EINVAL;
	if (!(line = secmem_alloc(nl + vl + 3)))
		return -ENOMEM;
	memcpy(line, name, nl);
	memcpy(line + nl, ": ", 2);
	memcpy(line + nl + 2, value, vl + 1);
	/* curl copies it with the wiping heap allocator (http_global_init). */
	l = curl_slist_append(*list, line);
	secmem_free(line);
	if (!l)
		return -ENOMEM;
	*list = l;
	return 0;
}

static int
perform_once(struct http_client *c, const struct http_request *req,
    const char *url, struct http_response *resp, int64_t budget_ms,
    bool *retry, char *errbuf, size_t errlen)
{
	struct curl_slist *hdrs = NULL;
	struct sink s = { .resp = resp, .max = c->o.max_response_bytes };
	struct handle *h;
	CURLcode rc;
	CURL *e;
	size_t i;
	int r;

	*retry = false;
	if ((r = take_handle(c, &h, errbuf, errlen)) < 0)
		return r;
	e = h->easy;
	h->err[0] = '\0';
	for (i = 0; i < req->nheaders; i++)
		if ((r = add_header(&hdrs, req->headers[i].name,
		    req->headers[i].value)) < 0) {
			snprintf(errbuf, errlen, "%s %s: bad request header %s",
			    req->method, url, req->headers[i].name);
			goto out;
		}
	/* No "Expect: 100-continue" round trip for small bodies. */
	if ((r = add_header(&hdrs, "Expect", "")) < 0)
		goto out;

	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, &s);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)budget_ms);
	/* Reset what the handle's previous request may have set. */
	curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
	if (strcmp(req->method, "HEAD") == 0)
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	else if (strcmp(req->method, "GET") != 0) {
		if (req->body || strcmp(req->method, "POST") == 0) {
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
			    (curl_off_t)req->body_len);
			curl_easy_setopt(e, CURLOPT_POSTFIELDS,
			    req->body ? (const char *)req->body : "");
		}
		if (strcmp(req->method, "POST") != 0)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
	}

	rc = curl_easy_perform(e);
	if (rc != CURLE_OK) {
		r = map_error(c, rc, h, &s, req->method, url, c->o.timeout_ms,
		    errbuf, errlen);
		*retry = retryable_error(rc, h, &s);
		http_response_clear(resp);
		goto out;
	}
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->status);
	*retry = retryable_status(resp->status);
	r = 0;
out:
	/* The list may hold a token: curl frees it with the wiping allocator. */
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
	curl_slist_free_all(hdrs);
	put_handle(c, h, r == 0);
	return r;
}

int
http_do(struct http_client *c, const struct http_request *req,
    struct http_response *resp, char *errbuf, size_t errlen)
{
	int64_t deadline, now, delay;
	size_t ulen;
	char *url;
	bool retry;
	int attempt, r;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after_ms = -1;
	if (errlen)
		errbuf[0] = '\0';
	if (!req->path || req->path[0] != '/') {
		snprintf(errbuf, errlen, "request path must start with '/'");
		return -EINVAL;
	}
	ulen = strlen(c->base_url) + strlen(req->path) + 1;
	if (!(url = malloc(ulen)))
		return -ENOMEM;
	snprintf(url, ulen, "%s%s", c->base_url, req->path);

	deadline = clk_mono_ms() + c->o.timeout_ms;
	for (attempt = 0;; attempt++) {
		now = clk_mono_ms();
		memset(resp, 0, sizeof(*resp));
		resp->retry_after_ms = -1;
		r = perform_once(c, req, url, resp,
		    deadline > now ? deadline - now : 1, &retry, errbuf, errlen);
		if (r == 0 && errlen)
			errbuf[0] = '\0';
		if (!retry || !req->retry || attempt >= c->o.max_retries)
			break;
		delay = resp->retry_after_ms >= 0 ? resp->retry_after_ms :
		    http_backoff_ms(&c->o, attempt + 1);
		/* No time left to wait and try again: this answer stands. */
		if (clk_mono_ms() + delay >= deadline)
			break;
		if (r == 0)
			http_response_clear(resp);
		clk_sleep_ms(delay);
	}
	free(url);
	return r;
}

void
http_response_clear(struct http_response *resp)
{
	secmem_free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
}

/* --- process-wide -------------------------------------------------------- */

static void *
ossl_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return secmem_heap_malloc(n);
}

static void *
ossl_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return secmem_heap_realloc(p, n);
}

static void
ossl_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	secmem_heap_free(p);
}

int
http_global_init(void)
{
	/*
	 * OpenSSL's record buffers hold decrypted answers. Its allocator can
	 * only be replaced before its first allocation; when something came
	 * first it keeps its own, which is not an error.
	 */
	(void)CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free);
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, secmem_heap_malloc,
	    secmem_heap_free, secmem_heap_realloc, secmem_heap_strdup,
	    secmem_heap_calloc) != CURLE_OK)
		return -EIO;
	return 0;
}
