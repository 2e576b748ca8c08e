/*
 * http: HTTPS requests to a backend, with libcurl; and plain HTTP over a
 * Unix socket to the container engine, the one other HTTP peer we have.
 *
 * One client per backend: a pool of easy handles sharing connections and
 * TLS sessions (CURLSH), so hot refreshes reuse a warm connection. The
 * server is always verified (CA file, optional pinned public key), TLS 1.2
 * at least; plain http:// only to a loopback address and only when the
 * config says "tls": false. Response bodies are written straight into the
 * locked arena and capped.
 */
#ifndef SECRETSFS_HTTP_H
#define SECRETSFS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <secretsfs/cfg.h>

struct http_options {
	/* TLS. Paths are copied by http_client_new. */
	const char	*ca_file;	/* NULL: the system's CA store */
	const char	*pinned_pubkey;	/* "sha256//BASE64[;sha256//…]" or NULL */
	const char	*client_cert;	/* PEM, NULL for none */
	const char	*client_key;	/* PEM; refused if group/other can read it */
	bool		 tls;		/* false: plain http, loopback only */
	/* Limits. */
	int64_t		 connect_timeout_ms;	/* default 5s */
	int64_t		 timeout_ms;		/* whole request; default 15s */
	int		 max_retries;		/* default 3 */
	int64_t		 retry_base_ms;		/* default 100ms */
	int64_t		 retry_max_ms;		/* cap of one backoff; default 2s */
	size_t		 max_response_bytes;	/* default 1MiB */
	/*
	 * Also allow plain http:// (with tls false) to the cloud metadata
	 * addresses: 169.254.169.254 and fd00:ec2::254 (EC2 IMDS),
	 * 169.254.170.2 (ECS), 169.254.170.23 and fd00:ec2::23 (EKS Pod
	 * Identity). Only for the AWS credential providers; never set from
	 * the config. Default false.
	 */
	bool		 metadata_http;
	/*
	 * Plain http:// to localhost over this Unix socket instead of TCP: a
	 * container engine's API (engine.c). Needs tls false; never set from
	 * the config. Copied by http_client_new. Default NULL.
	 */
	const char	*unix_socket;
};

/* Defaults for every field above. */
void http_options_default(struct http_options *o);

/*
 * The "tls" and "http" members of a backend's config object (same key
 * names as the fields above; durations and sizes as in config).
 * Paths in *o point into obj and live as long as it does.
 *
 * *o starts from http_options_default(). "tls" is an object {ca_file,
 * client_cert, client_key, pinned_pubkey} (absolute paths; cert and key
 * together; pinned_pubkey "sha256//..." or an absolute path) or the literal
 * false (plain http, loopback only). "http" is {connect_timeout, timeout,
 * max_retries (0-10), retry_base, retry_max (>= retry_base),
 * max_response_bytes (1KiB-256MiB)}. Unknown keys are errors; -EINVAL with
 * err->path naming the key, e.g. "backends.vault.tls.client_key".
 */
int http_options_from_json(const json_t *backend_obj, const char *path,
    struct http_options *o, struct cfg_err *err);

/*
 * The rules http_client_new applies to base_url, alone, for config
 * checks: an http:// or https:// URL without user, password or query;
 * https:// unless tls is false; http:// only to a loopback host
 * (127.0.0.0/8, ::1, localhost) and only when tls is false. 0, or -EINVAL
 * with errbuf saying why.
 */
int http_check_url(const char *url, bool tls, char *errbuf, size_t errlen);

struct http_client;

/*
 * A client for base_url ("https://vault:8200"). Checks the options (the
 * client key's mode, http:// on loopback only). 0 and *out, or -errno with
 * errbuf saying why. The client re-reads the client certificate and key
 * when their files change, without a restart.
 */
int http_client_new(const char *base_url, const struct http_options *o,
    struct http_client **out, char *errbuf, size_t errlen);
void http_client_free(struct http_client *c);

struct http_header {
	const char	*name;
	const char	*value;	/* may be a token: the caller keeps it in secmem */
};

struct http_request {
	const char			*method;	/* GET POST PUT LIST DELETE */
	const char			*path;		/* appended to base_url, with query */
	const struct http_header	*headers;
	size_t				 nheaders;
	const uint8_t			*body;
	size_t				 body_len;
	bool				 retry;	/* retry 429, 5xx and connection errors */
};

struct http_response {
	long	 status;
	uint8_t	*body;		/* secmem, NUL-terminated; NULL when empty */
	size_t	 body_len;
	char	 request_id[128];	/* x-amzn-RequestId or X-Vault-Request-Id, if any */
	char	 error_type[128];	/* X-Amzn-Errortype, if any */
	char	 location[256];		/* Location of a 3xx (never followed), if any */
	int64_t	 retry_after_ms;	/* Retry-After, or -1 */
};

/*
 * Perform req, retrying as it allows with exponential backoff and full
 * jitter, bounded by max_retries and timeout_ms. Returns 0 with *resp
 * filled for any HTTP status (the caller judges it), or -errno when no
 * answer came: -ETIMEDOUT, -ECONNREFUSED, -EPROTO (TLS: peer not
 * verified, handshake failed), -EFBIG (body over the cap), -EIO; errbuf
 * says why, naming the URL but never a header value or body. Thread-safe.
 * Also: -ENOENT (no socket at unix_socket), -EHOSTUNREACH (name not resolved), -EPERM (the client key was
 * replaced by one group/other can read), -EINVAL (a header value holding
 * CR or LF), -ENOMEM (locked memory exhausted).
 *
 * Before each request the client certificate and key files are stat'ed;
 * when they changed, pooled connections and TLS sessions made with the old
 * certificate are dropped. 429 and 5xx are retried only when req->retry;
 * the last answer is returned when retries or time run out.
 */
int http_do(struct http_client *c, const struct http_request *req,
    struct http_response *resp, char *errbuf, size_t errlen);

/* Wipe and free the body. */
void http_response_clear(struct http_response *resp);

/* Backoff before attempt n (1-based): full jitter over base * 2^n, capped. */
int64_t http_backoff_ms(const struct http_options *o, int attempt);

/*
 * Once per process, before any thread: curl_global_init_mem with the
 * wiping heap allocator, so libcurl's buffers are wiped when freed.
 */
int http_global_init(void);

#endif
