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
#include <openssl/ssl.h>
#include <openssl/crypto.h>

#include <secretsfs/clk.h>
#include <secretsfs/cfg.h>
#include <secretsfs/http.h>
#include <secretsfs/secfile.h>
#include <secretsfs/secmem.h>

#include "http_int.h"

#ifndef SECRETSFS_VERSION
#define SECRETSFS_VERSION "unknown"
#endif

/* Idle handles (and so idle connections) kept per client. */
#define IDLE_MAX			8

/* --- the client --------------------------------------------------------- */

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
	if (o->unix_socket && o->tls) {
		snprintf(errbuf, errlen, "%s: a Unix socket speaks plain HTTP",
		    o->unix_socket);
		return -EINVAL;
	}
	if (!(c = calloc(1, sizeof(*c))))
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	c->o = *o;
	c->base_url = dup_or_null(base_url, &oom);
	c->unix_socket = dup_or_null(o->unix_socket, &oom);
	c->o.unix_socket = c->unix_socket;
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
	free(c->unix_socket);
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

/*
 * OpenSSL decrypts a record in place: without SSL_MODE_RELEASE_BUFFERS its
 * read buffer keeps the last answer's plaintext for as long as the pooled
 * connection lives. Released buffers go back through the wiping allocator
 * (http_global_init).
 */
static CURLcode
ssl_ctx_setup(CURL *curl, void *ctx, void *arg)
{
	(void)curl;
	(void)arg;
	SSL_CTX_set_mode((SSL_CTX *)ctx, SSL_MODE_RELEASE_BUFFERS);
	return CURLE_OK;
}

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
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_on_body);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_on_header);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, c->o.tls ? "https" : "http");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)c->o.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "secretsfs/" SECRETSFS_VERSION);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)c->o.max_response_bytes);
	if (c->unix_socket) {
		curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, c->unix_socket);
		/* The socket is the peer: no proxy from the environment. */
		curl_easy_setopt(e, CURLOPT_PROXY, "");
	}
	if (c->o.tls) {
		curl_easy_setopt(e, CURLOPT_SSLVERSION,
		    (long)CURL_SSLVERSION_TLSv1_2);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
		curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_setup);
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

int
http_take_handle(struct http_client *c, struct handle **out, char *errbuf,
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
void
http_put_handle(struct http_client *c, struct handle *h, bool keep)
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
