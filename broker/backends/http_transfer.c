/*
 * One HTTP transfer: the request made, the answer collected into the
 * arena within its limit, libcurl's errors put into words, and the
 * retries the options allow.
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

#include "http_int.h"

/* --- one transfer ------------------------------------------------------- */

struct sink {
	struct http_response	*resp;
	size_t			 cap;
	size_t			 max;
	bool			 toobig;
	bool			 nomem;
};

size_t
http_on_body(char *p, size_t size, size_t n, void *arg)
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

size_t
http_on_header(char *p, size_t size, size_t n, void *arg)
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
	long oserr = 0;

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
		/* No socket file: the engine is not running at all. */
		if (c->unix_socket && curl_easy_getinfo(h->easy,
		    CURLINFO_OS_ERRNO, &oserr) == CURLE_OK && oserr == ENOENT)
			return -ENOENT;
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
	/* With HTTP/2 a refusal after the handshake breaks the session. */
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
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
	if ((r = http_take_handle(c, &h, errbuf, errlen)) < 0)
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
	http_put_handle(c, h, r == 0);
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
