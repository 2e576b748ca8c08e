/*
 * The HTTP options of a backend's config object ("tls", "http") and the
 * retry backoff they set.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <secretsfs/cfg.h>
#include <secretsfs/http.h>

#define DEFAULT_CONNECT_TIMEOUT_MS	5000
#define DEFAULT_TIMEOUT_MS		15000
#define DEFAULT_MAX_RETRIES		3
#define DEFAULT_RETRY_BASE_MS		100
#define DEFAULT_RETRY_MAX_MS		2000
#define DEFAULT_MAX_RESPONSE		(1u << 20)

#define MAX_RETRIES_LIMIT		10
#define MIN_RESPONSE_LIMIT		1024u
#define MAX_RESPONSE_LIMIT		(256u << 20)

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
