/*
 * sigv4: AWS Signature Version 4 (AWS4-HMAC-SHA256) for request headers.
 *
 * A leaf module: OpenSSL for SHA-256 and HMAC, no heap of its own, no
 * logging. Every function returns 0 or -errno:
 *   -EINVAL	malformed input (bad method, header name, control byte in a
 *		value, bad percent escape in the query, bad credentials, ...)
 *   -E2BIG	more than SIGV4_MAX_HEADERS headers or SIGV4_MAX_QUERY
 *		query parameters
 *   -ENAMETOOLONG  path longer than SIGV4_PATH_MAX (normalised requests)
 *   -ENOSPC	an output buffer is too small
 *   -EIO	OpenSSL failed
 *
 * The secret access key is only ever read from the caller's string: it is
 * copied to stack buffers that are wiped before return, and otherwise kept
 * nowhere. What the signer keeps between calls is the derived signing key
 * (valid for one UTC day, one region and one service) and a fingerprint
 * that tells whether the secret changed; both are wiped by
 * sigv4_signer_wipe().
 */
#ifndef SECRETSFS_SIGV4_H
#define SECRETSFS_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SIGV4_REGION_MAX	63	/* longest region / service name */
#define SIGV4_SERVICE_MAX	63
#define SIGV4_AKID_MAX		128	/* longest access key id */
#define SIGV4_SECRET_MAX	128	/* longest secret access key */
#define SIGV4_MAX_HEADERS	64	/* request headers, before filtering */
#define SIGV4_MAX_QUERY		64	/* query parameters */
#define SIGV4_PATH_MAX		4096	/* path length, when normalising */

#define SIGV4_AMZ_DATE_SIZE	17	/* "20150830T123600Z" + NUL */
#define SIGV4_HEX_SIZE		65	/* hex SHA-256 + NUL */
#define SIGV4_AUTHZ_SIZE	2048	/* Authorization value + NUL */
#define SIGV4_OUT_MAX		4	/* headers sigv4_sign() may add */

/* Request flags. The default (0) is what Secrets Manager wants. */
#define SIGV4_NO_NORMALIZE	0x1	/* S3 style: sign the path as given,
					   without RFC 3986 dot-segment and
					   double-slash removal */
#define SIGV4_SIGN_BODY		0x2	/* add and sign x-amz-content-sha256 */
#define SIGV4_UNSIGNED_TOKEN	0x4	/* add X-Amz-Security-Token after
					   signing, for the few services that
					   want it unsigned */

struct sigv4_header {
	const char	*name;
	const char	*value;
};

/*
 * A request as it will be sent. Nothing here is retained after a call.
 *
 * path: the request path as it goes on the wire, "" meaning "/". Every
 *   byte but A-Z a-z 0-9 - . _ ~ and '/' is percent-encoded for signing, so
 *   a '%' already in the path is encoded again: the double encoding every
 *   service except S3 expects. Must start with '/' and hold no '?'.
 * query: the raw query without '?', or NULL. Names and values are
 *   percent-decoded then re-encoded, so "a%20b" and "a b" sign alike; '+'
 *   is a plus sign, not a space (send spaces as %20). Parameters are
 *   sorted by name, then value; "a" signs as "a=". A bad escape or a
 *   control byte or '#' gives -EINVAL.
 * headers: sent as given, except that the signer replaces any
 *   Authorization and X-Amz-Date (and X-Amz-Security-Token when a session
 *   token is given, X-Amz-Content-SHA256 with SIGV4_SIGN_BODY): the caller
 *   must drop those from what it sends and send sigv4_sign()'s instead.
 *   Hop-by-hop headers and User-Agent are never signed. Values are signed
 *   trimmed, with runs of blanks collapsed; duplicates are joined with ','
 *   in the order given.
 * host: the Host header value to sign when headers hold no Host; it must
 *   be exactly what the HTTP client will send ("name" or "name:port").
 */
struct sigv4_request {
	const char			*method;
	const char			*path;
	const char			*query;
	const struct sigv4_header	*headers;
	size_t				 nheaders;
	const char			*host;
	const void			*body;
	size_t				 body_len;
	unsigned int			 flags;
};

/*
 * Borrowed for the length of one call; never copied beyond it except the
 * access key id (which is not secret). session_token may be NULL or "".
 */
struct sigv4_credentials {
	const char	*access_key_id;
	const char	*secret_access_key;
	const char	*session_token;
};

/*
 * Signer state. The caller allocates it (in locked memory: it holds a
 * signing key) and keeps it as long as it signs for one region and
 * service. A plain struct with no pointers: it may live anywhere and be
 * wiped with explicit_bzero. Not thread-safe: one signer per thread, or a
 * lock around sigv4_sign(). Fields are private except key_derivations,
 * which counts signing-key derivations for metrics and tests.
 */
struct sigv4_signer {
	char		region[SIGV4_REGION_MAX + 1];
	char		service[SIGV4_SERVICE_MAX + 1];
	/* cached signing key and what it was derived for */
	int		key_valid;
	char		key_date[9];			/* YYYYMMDD */
	char		key_akid[SIGV4_AKID_MAX + 1];
	uint8_t		key_secret_fp[32];
	uint8_t		key[32];
	unsigned long	key_derivations;
};

/*
 * What sigv4_sign() yields: hdr[0 .. nhdr-1] are the headers to add to the
 * request, in order X-Amz-Date, [X-Amz-Content-SHA256], [X-Amz-Security-
 * Token], Authorization. Their values point into this struct (so do not
 * copy it by value while using hdr) and, for the token, at the caller's
 * credentials->session_token, which must outlive the use of hdr.
 */
struct sigv4_out {
	struct sigv4_header	hdr[SIGV4_OUT_MAX];
	size_t			nhdr;
	char			amz_date[SIGV4_AMZ_DATE_SIZE];
	char			content_sha256[SIGV4_HEX_SIZE];
	char			authorization[SIGV4_AUTHZ_SIZE];
};

/*
 * Prepare a caller-allocated signer for one region and service (e.g.
 * "us-east-1", "secretsmanager"). Both are copied. -EINVAL when either is
 * empty, too long or holds anything but A-Z a-z 0-9 . _ -.
 */
int sigv4_signer_init(struct sigv4_signer *s, const char *region,
    const char *service);

/* Wipe the whole signer, cached key included. NULL is fine. */
void sigv4_signer_wipe(struct sigv4_signer *s);

/*
 * Sign req as of time `now` with creds and fill *out. Uses the cached
 * signing key when it was derived for the same UTC day, access key id and
 * secret; otherwise derives and caches a new one. *out is undefined on
 * error. Nothing of creds is kept but the access key id and a one-way
 * fingerprint of the secret.
 */
int sigv4_sign(struct sigv4_signer *s, const struct sigv4_credentials *creds,
    const struct sigv4_request *req, time_t now, struct sigv4_out *out);

/*
 * The canonical request that sigv4_sign() hashes, written NUL-terminated
 * into buf (for tests and for debugging a signature mismatch; it holds the
 * session token, not the secret). session_token is signed unless NULL, ""
 * or req->flags has SIGV4_UNSIGNED_TOKEN. *lenp, when not NULL, gets the
 * length; on -ENOSPC it gets the length that was needed.
 */
int sigv4_canonical_request(const struct sigv4_request *req, time_t now,
    const char *session_token, char *buf, size_t size, size_t *lenp);

/*
 * The string to sign for canonical request creq (creq_len bytes) under the
 * signer's region and service at `now`, NUL-terminated into buf.
 */
int sigv4_string_to_sign(const struct sigv4_signer *s, time_t now,
    const char *creq, size_t creq_len, char *buf, size_t size);

#endif
