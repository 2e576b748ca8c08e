/*
 * The AWS Secrets Manager backend: awsJson1_1 over HTTPS, SigV4-signed.
 *
 * Retries are ours, not the http layer's: every attempt is signed anew
 * (X-Amz-Date moves on, and the credentials may have been refreshed), and
 * Secrets Manager throttles with a 400 that only the error body tells
 * apart from a refusal.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include <secretsfs/clk.h>
#include <secretsfs/aws.h>
#include <secretsfs/aws_creds.h>
#include <secretsfs/backend.h>
#include <secretsfs/http.h>
#include <secretsfs/secmem.h>
#include <secretsfs/sigv4.h>

#define SERVICE		"secretsmanager"
#define JSON_CT		"application/x-amz-json-1.1"
#define MSG_MAX		300	/* a service message, in errbuf */
#define LIST_PAGES_MAX	100	/* ListSecrets pages, 100 names each */
#define STAGE_PREFIX	"stage:"

struct aws_backend {
	char			 region[SIGV4_REGION_MAX + 1];
	char			*base;		/* scheme://authority */
	char			*path;		/* "/" or the endpoint's path */
	char			*host;		/* Host header, as signed */
	char			*version_stage;	/* default stage, or NULL */
	json_t			*opts;		/* hopt's strings point into it */
	struct http_options	 hopt;
	struct http_client	*http;
	struct aws_creds	*creds;
	pthread_mutex_t		 sign_lock;
	struct sigv4_signer	*signer;	/* secmem: it holds a signing key */
};

/* --- parsers ------------------------------------------------------------- */

static void
clean_copy(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t i, j = 0;

	if (dstlen == 0)
		return;
	for (i = 0; i < srclen && src[i] && j + 1 < dstlen && j < MSG_MAX; i++)
		dst[j++] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[j] = '\0';
}

void
aws_error_type_sanitize(const char *in, char *out, size_t outlen)
{
	size_t n = strcspn(in, ":");
	const char *b = in, *h;

	for (h = in; h < in + n; h++)
		if (*h == '#')
			b = h + 1;
	clean_copy(out, outlen, b, (size_t)(in + n - b));
	/* Trim: a header value may carry blanks. */
	n = strlen(out);
	while (n > 0 && out[n - 1] == ' ')
		out[--n] = '\0';
	b = out;
	while (*b == ' ')
		b++;
	memmove(out, b, strlen(b) + 1);
}

int
aws_base64_decode(const char *in, size_t len, uint8_t **out, size_t *outlen)
{
	size_t pad = 0, i;
	uint8_t *buf;
	int n;

	*out = NULL;
	*outlen = 0;
	if (len % 4 != 0 || len > (size_t)INT32_MAX)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '=') {
			/* padding only at the very end, at most two */
			if (i < len - 2 || (i == len - 2 && in[len - 1] != '='))
				return -EINVAL;
			pad++;
		} else if (!isalnum(c) && c != '+' && c != '/')
			return -EINVAL;
	}
	if (!(buf = secmem_alloc(len / 4 * 3 + 1)))
		return -ENOMEM;
	if (len > 0 && (n = EVP_DecodeBlock(buf, (const unsigned char *)in,
	    (int)len)) < 0) {
		secmem_free(buf);
		return -EINVAL;
	}
	/* EVP_DecodeBlock counts the bytes the padding stands for. */
	*outlen = len / 4 * 3 - pad;
	buf[*outlen] = '\0';
	*out = buf;
	return 0;
}

int
aws_parse_secret_value(const char *body, size_t len,
    struct backend_value *out, char *errbuf, size_t errlen)
{
	json_t *doc, *ss, *sb, *vid, *cd;
	json_error_t je;
	int r = 0;

	memset(out, 0, sizeof(*out));
	doc = json_loadb(body, len, 0, &je);
	if (!json_is_object(doc)) {
		snprintf(errbuf, errlen, "AWS GetSecretValue: malformed JSON "
		    "answer (line %d)", je.line);
		json_decref(doc);
		return -EIO;
	}
	ss = json_object_get(doc, "SecretString");
	sb = json_object_get(doc, "SecretBinary");
	vid = json_object_get(doc, "VersionId");
	cd = json_object_get(doc, "CreatedDate");
	if (json_is_string(ss)) {
		size_t n = json_string_length(ss);

		if (!(out->data = secmem_alloc(n + 1))) {
			r = -ENOMEM;
			goto nomem;
		}
		memcpy(out->data, json_string_value(ss), n);
		out->data[n] = '\0';
		out->len = n;
	} else if (json_is_string(sb)) {
		r = aws_base64_decode(json_string_value(sb),
		    json_string_length(sb), &out->data, &out->len);
		if (r == -ENOMEM)
			goto nomem;
		if (r < 0) {
			snprintf(errbuf, errlen, "AWS GetSecretValue: "
			    "SecretBinary is not valid base64");
			r = -EIO;
			goto out;
		}
	} else {
		snprintf(errbuf, errlen, "AWS GetSecretValue: the answer has "
		    "neither SecretString nor SecretBinary");
		r = -EIO;
		goto out;
	}
	if (json_is_string(vid) && json_string_length(vid) > 0) {
		if (json_string_length(vid) >= sizeof(out->version)) {
			snprintf(errbuf, errlen, "AWS GetSecretValue: VersionId "
			    "longer than %zu bytes", sizeof(out->version) - 1);
			r = -EIO;
			goto out;
		}
		clean_copy(out->version, sizeof(out->version),
		    json_string_value(vid), json_string_length(vid));
	}
	/* Epoch seconds as a number; some answers quote it as a string. */
	if (json_is_number(cd) || json_is_string(cd)) {
		double t = json_is_number(cd) ? json_number_value(cd) :
		    strtod(json_string_value(cd), NULL);

		if (t > 0 && t < 1e11) {
			out->changed.tv_sec = (time_t)t;
			out->changed.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
		}
	}
	json_decref(doc);
	return 0;
nomem:
	snprintf(errbuf, errlen, "locked memory exhausted");
out:
	backend_value_clear(out);
	json_decref(doc);
	return r;
}

static bool
in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

int
aws_parse_error(long status, const char *body, size_t len,
    const char *hdr_type, const char *request_id, char *type,
    size_t typelen, char *errbuf, size_t errlen)
{
	static const char *const not_found[] = { "ResourceNotFoundException",
	    NULL };
	static const char *const denied[] = { "AccessDeniedException",
	    "AccessDenied", "InvalidSignatureException",
	    "SignatureDoesNotMatch", "UnrecognizedClientException",
	    "IncompleteSignature", "IncompleteSignatureException",
	    "MissingAuthenticationToken",
	    "MissingAuthenticationTokenException", "InvalidClientTokenId",
	    "NotAuthorized", NULL };
	static const char *const expired[] = { "ExpiredTokenException",
	    "ExpiredToken", NULL };
	/* botocore's retries/standard.py throttling and transient codes */
	static const char *const retry[] = { "Throttling",
	    "ThrottlingException", "ThrottledException",
	    "RequestThrottledException", "TooManyRequestsException",
	    "ProvisionedThroughputExceededException",
	    "TransactionInProgressException", "RequestLimitExceeded",
	    "BandwidthLimitExceeded", "LimitExceededException",
	    "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
	    "EC2ThrottledException", "RequestTimeout",
	    "RequestTimeoutException", "InternalServiceError",
	    "InternalFailure", "ServiceUnavailable", NULL };
	json_t *doc = NULL, *t = NULL, *m = NULL;
	char raw[256] = "", msg[MSG_MAX + 1] = "", rid[128];

	if (body && len > 0)
		doc = json_loadb(body, len, 0, NULL);
	if (json_is_object(doc)) {
		if (!json_is_string(t = json_object_get(doc, "__type")) &&
		    !json_is_string(t = json_object_get(doc, "code")))
			t = json_object_get(doc, "Code");
		if (!json_is_string(m = json_object_get(doc, "message")))
			m = json_object_get(doc, "Message");
	}
	if (json_is_string(t))
		clean_copy(raw, sizeof(raw), json_string_value(t),
		    json_string_length(t));
	else if (hdr_type && *hdr_type)
		clean_copy(raw, sizeof(raw), hdr_type, strlen(hdr_type));
	aws_error_type_sanitize(raw, type, typelen);
	if (type[0] == '\0')
		snprintf(type, typelen, "HTTP %ld", status);
	if (json_is_string(m))
		clean_copy(msg, sizeof(msg), json_string_value(m),
		    json_string_length(m));
	json_decref(doc);
	clean_copy(rid, sizeof(rid), request_id && *request_id ? request_id :
	    "-", 127);
	snprintf(errbuf, errlen, "AWS %s (request id %s): %s", type, rid,
	    msg[0] ? msg : "no message");

	if (in_list(type, not_found))
		return -ENOENT;
	if (in_list(type, denied))
		return -EACCES;
	if (in_list(type, expired))
		return AWS_ERR_EXPIRED;
	if (in_list(type, retry) || status == 429 || status >= 500)
		return AWS_ERR_RETRY;
	return -EIO;
}

static int
add_name(char ***names, size_t *n, const char *s, size_t len)
{
	char **nn;

	for (size_t i = 0; i < *n; i++)
		if (strlen((*names)[i]) == len && memcmp((*names)[i], s, len) == 0)
			return 0;
	if (!(nn = realloc(*names, (*n + 1) * sizeof(*nn))))
		return -ENOMEM;
	*names = nn;
	if (!(nn[*n] = strndup(s, len)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

int
aws_parse_list(const char *body, size_t len, const char *prefix,
    char ***names, size_t *n, char *next, size_t nextlen)
{
	size_t pl = strlen(prefix), i;
	json_t *doc, *list, *e, *tok;
	int r = 0;

	next[0] = '\0';
	doc = json_loadb(body, len, 0, NULL);
	if (!json_is_object(doc) ||
	    !json_is_array(list = json_object_get(doc, "SecretList"))) {
		json_decref(doc);
		return -EIO;
	}
	json_array_foreach(list, i, e) {
		const char *name = json_string_value(json_object_get(e, "Name"));
		const char *rest;
		size_t k;

		/* The service's name filter is a prefix match, loosely. */
		if (!name || strncmp(name, prefix, pl) != 0 || !name[pl])
			continue;
		rest = name + pl;
		k = strcspn(rest, "/");
		if ((r = add_name(names, n, rest, rest[k] == '/' ? k + 1 :
		    k)) < 0)
			break;
	}
	if (r == 0 && json_is_string(tok = json_object_get(doc, "NextToken"))) {
		if (json_string_length(tok) >= nextlen)
			r = -ENAMETOOLONG;
		else
			memcpy(next, json_string_value(tok),
			    json_string_length(tok) + 1);
	}
	json_decref(doc);
	return r;
}

/* --- config -------------------------------------------------------------- */

static bool
valid_region(const char *s)
{
	if (!*s || strlen(s) > SIGV4_REGION_MAX)
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) &&
		    *s != '-')
			return false;
	return true;
}

static int
opt_url(const json_t *o, const char *path, const char *key,
    struct cfg_err *err)
{
	const char *s = NULL;
	char p[CFG_PATH_MAX];
	int r;

	if ((r = cfg_get_string(o, path, key, 0, &s, err)) < 0 || !s)
		return r;
	cfg_path_key(p, sizeof(p), path, key);
	if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)
		return cfg_err_set(err, p, "expected an https:// URL");
	if (strpbrk(s, " \t\r\n@?#"))
		return cfg_err_set(err, p, "no blanks, user, query or "
		    "fragment allowed in the URL");
	return 0;
}

static int
aws_validate(const json_t *opts, const char *path, struct cfg_err *err)
{
	static const char *const keys[] = { "type", "region", "endpoint",
	    "tls", "http", "credentials", "profile", "credentials_file",
	    "config_file", "sts_endpoint", "imds_endpoint", "version_stage",
	    NULL };
	static const char *const ckeys[] = { "access_key_id",
	    "secret_access_key", "session_token", NULL };
	struct http_options h;
	const char *s = NULL, *stage = NULL;
	char p[CFG_PATH_MAX];
	json_t *c;
	int r;

	if ((r = cfg_check_keys(opts, path, keys, err)) < 0 ||
	    (r = cfg_get_string(opts, path, "region", 0, &s, err)) < 0)
		return r;
	if (s && !valid_region(s)) {
		cfg_path_key(p, sizeof(p), path, "region");
		return cfg_err_set(err, p, "expected a region name such as "
		    "\"us-east-1\"");
	}
	/* Files absolute: the fetcher's working directory is nobody's business. */
	if ((r = opt_url(opts, path, "endpoint", err)) < 0 ||
	    (r = opt_url(opts, path, "sts_endpoint", err)) < 0 ||
	    (r = opt_url(opts, path, "imds_endpoint", err)) < 0 ||
	    (r = cfg_get_string(opts, path, "profile", 0, &s, err)) < 0 ||
	    (r = cfg_get_path(opts, path, "credentials_file", 0, &s,
	    err)) < 0 ||
	    (r = cfg_get_path(opts, path, "config_file", 0, &s, err)) < 0 ||
	    (r = cfg_get_string(opts, path, "version_stage", 0, &stage,
	    err)) < 0)
		return r;
	if (stage && strlen(stage) > 256) {
		cfg_path_key(p, sizeof(p), path, "version_stage");
		return cfg_err_set(err, p, "longer than 256 characters");
	}
	if ((c = json_object_get(opts, "credentials"))) {
		const char *id = NULL, *secret = NULL;

		cfg_path_key(p, sizeof(p), path, "credentials");
		if (!json_is_object(c))
			return cfg_err_set(err, p, "expected an object with "
			    "access_key_id and secret_access_key");
		if ((r = cfg_check_keys(c, p, ckeys, err)) < 0 ||
		    (r = cfg_get_string(c, p, "access_key_id", 0, &id,
		    err)) < 0)
			return r;
		if (!id)
			return cfg_err_set(err, p, "missing required key "
			    "\"access_key_id\"");
		if ((r = cfg_get_string(c, p, "secret_access_key", 0, &secret,
		    err)) < 0)
			return r;
		if (!secret)
			return cfg_err_set(err, p, "missing required key "
			    "\"secret_access_key\"");
		if ((r = cfg_get_string(c, p, "session_token", 0, &s,
		    err)) < 0)
			return r;
	}
	return http_options_from_json(opts, path, &h, err);
}

/*
 * "https://host:443/p" -> base "https://host:443", path "/p", host "host"
 * (curl leaves the default port out of Host, and so must the signature).
 */
static int
split_endpoint(const char *url, struct aws_backend *ab)
{
	const char *a, *e;
	bool tls = strncmp(url, "https://", 8) == 0;
	size_t hl;

	if (!tls && strncmp(url, "http://", 7) != 0)
		return -EINVAL;
	a = url + (tls ? 8 : 7);
	e = a + strcspn(a, "/");
	if (e == a)
		return -EINVAL;
	if (!(ab->base = strndup(url, (size_t)(e - url))) ||
	    !(ab->path = strdup(*e ? e : "/")))
		return -ENOMEM;
	hl = (size_t)(e - a);
	if (tls && hl > 4 && memcmp(e - 4, ":443", 4) == 0 && a[0] != '[')
		hl -= 4;
	else if (!tls && hl > 3 && memcmp(e - 3, ":80", 3) == 0 && a[0] != '[')
		hl -= 3;
	if (!(ab->host = strndup(a, hl)))
		return -ENOMEM;
	for (char *c = ab->host; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return 0;
}

static const char *
env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

int
aws_region(const char *configured, const char *profile,
    const char *config_file, char *buf, size_t len, char *errbuf,
    size_t errlen)
{
	const char *region = configured, *from = "region";

	if (!region && (region = env_nonempty("AWS_REGION")))
		from = "AWS_REGION";
	if (!region && (region = env_nonempty("AWS_DEFAULT_REGION")))
		from = "AWS_DEFAULT_REGION";
	if (!region && aws_creds_profile_region(profile, config_file, buf,
	    len) == 0) {
		region = buf;
		from = "the profile's region";
	}
	if (!region) {
		snprintf(errbuf, errlen, "no region: set \"region\" in the "
		    "backend, AWS_REGION, AWS_DEFAULT_REGION or the profile's "
		    "region in the shared config file");
		return -EINVAL;
	}
	if (!valid_region(region)) {
		snprintf(errbuf, errlen, "%s \"%.64s\" is not a region name",
		    from, region);
		return -EINVAL;
	}
	if (strlen(region) >= len) {
		snprintf(errbuf, errlen, "region name too long");
		return -EINVAL;
	}
	memmove(buf, region, strlen(region) + 1);
	return 0;
}

static void
aws_close(void *impl)
{
	struct aws_backend *ab = impl;

	if (!ab)
		return;
	aws_creds_free(ab->creds);
	http_client_free(ab->http);
	if (ab->signer) {
		sigv4_signer_wipe(ab->signer);
		secmem_free(ab->signer);
	}
	pthread_mutex_destroy(&ab->sign_lock);
	free(ab->base);
	free(ab->path);
	free(ab->host);
	free(ab->version_stage);
	json_decref(ab->opts);
	free(ab);
}

static int
aws_open(const struct config_backend *cfg, void **impl, char *errbuf,
    size_t errlen)
{
	const json_t *o = cfg->options;
	const char *region, *endpoint, *stage, *profile, *config_file;
	struct aws_creds_options co;
	struct aws_backend *ab;
	struct cfg_err cerr;
	char url[512], why[BACKEND_ERR_MAX];
	int r;

	*impl = NULL;
	if (!(ab = calloc(1, sizeof(*ab))))
		return -ENOMEM;
	pthread_mutex_init(&ab->sign_lock, NULL);
	ab->opts = json_incref((json_t *)o);
	region = json_string_value(json_object_get(o, "region"));
	endpoint = json_string_value(json_object_get(o, "endpoint"));
	stage = json_string_value(json_object_get(o, "version_stage"));
	profile = json_string_value(json_object_get(o, "profile"));
	config_file = json_string_value(json_object_get(o, "config_file"));
	if ((r = aws_region(region, profile, config_file, ab->region,
	    sizeof(ab->region), errbuf, errlen)) < 0)
		goto fail;
	if (!endpoint) {
		snprintf(url, sizeof(url), "https://secretsmanager.%s.%s",
		    ab->region, strncmp(ab->region, "cn-", 3) == 0 ?
		    "amazonaws.com.cn" : "amazonaws.com");
		endpoint = url;
	}
	if ((r = split_endpoint(endpoint, ab)) < 0) {
		snprintf(errbuf, errlen, "endpoint \"%.200s\" is not an http(s) "
		    "URL", endpoint);
		goto fail;
	}
	if (stage && !(ab->version_stage = strdup(stage))) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = http_options_from_json(o, cfg->path, &ab->hopt, &cerr)) < 0) {
		snprintf(errbuf, errlen, "%s: %s", cerr.path, cerr.msg);
		goto fail;
	}
	if ((r = http_client_new(ab->base, &ab->hopt, &ab->http, errbuf,
	    errlen)) < 0)
		goto fail;
	if (!(ab->signer = secmem_alloc(sizeof(*ab->signer)))) {
		snprintf(errbuf, errlen, "locked memory exhausted");
		r = -ENOMEM;
		goto fail;
	}
	if ((r = sigv4_signer_init(ab->signer, ab->region, SERVICE)) < 0) {
		snprintf(errbuf, errlen, "region \"%s\" cannot be signed for",
		    ab->region);
		goto fail;
	}
	memset(&co, 0, sizeof(co));
	co.backend = cfg->name;
	co.credentials = json_object_get(o, "credentials");
	co.profile = profile;
	co.credentials_file = json_string_value(json_object_get(o,
	    "credentials_file"));
	co.config_file = config_file;
	co.region = ab->region;
	co.sts_endpoint = json_string_value(json_object_get(o, "sts_endpoint"));
	if (!co.sts_endpoint && strncmp(ab->region, "cn-", 3) == 0) {
		snprintf(url, sizeof(url), "https://sts.%s.amazonaws.com.cn",
		    ab->region);
		co.sts_endpoint = url;
	}
	co.imds_endpoint = json_string_value(json_object_get(o,
	    "imds_endpoint"));
	co.http = &ab->hopt;
	if ((r = aws_creds_new(&co, &ab->creds, why, sizeof(why))) < 0) {
		snprintf(errbuf, errlen, "AWS credentials: %s", why);
		goto fail;
	}
	*impl = ab;
	return 0;
fail:
	if (r == -ENOMEM && errbuf[0] == '\0')
		snprintf(errbuf, errlen, "out of memory");
	aws_close(ab);
	return r;
}

/* --- requests ------------------------------------------------------------ */

/*
 * Compact JSON in a malloc'd string (json_dumps would allocate with
 * jansson's allocator, which is the arena's). No secret goes in a body.
 */
static char *
dump(const json_t *doc)
{
	size_t n;
	char *s;

	if (!doc || (n = json_dumpb(doc, NULL, 0, JSON_COMPACT)) == 0 ||
	    !(s = malloc(n + 1)))
		return NULL;
	json_dumpb(doc, s, n, JSON_COMPACT);
	s[n] = '\0';
	return s;
}

/*
 * One Secrets Manager operation, signed and retried. 0 with *resp holding
 * a 200 answer (the caller clears it), or -errno with errbuf set.
 */
static int
aws_call(struct aws_backend *ab, const char *op, const char *body,
    struct http_response *resp, char *errbuf, size_t errlen)
{
	char target[64], type[128], why[BACKEND_ERR_MAX];
	struct sigv4_header sh[3];
	struct http_header hh[3 + SIGV4_OUT_MAX];
	struct sigv4_request sreq;
	struct http_request req;
	struct sigv4_out *sout;
	bool renewed = false;
	size_t blen = strlen(body), i;
	int attempt, r;

	snprintf(target, sizeof(target), "secretsmanager.%s", op);
	sh[0] = (struct sigv4_header){ "Content-Type", JSON_CT };
	sh[1] = (struct sigv4_header){ "Host", ab->host };
	sh[2] = (struct sigv4_header){ "X-Amz-Target", target };
	memset(&sreq, 0, sizeof(sreq));
	sreq.method = "POST";
	sreq.path = ab->path;
	sreq.headers = sh;
	sreq.nheaders = 3;
	sreq.host = ab->host;
	sreq.body = body;
	sreq.body_len = blen;
	/* The signature is not a secret, but it is good for 15 minutes. */
	if (!(sout = secmem_alloc(sizeof(*sout)))) {
		snprintf(errbuf, errlen, "locked memory exhausted");
		return -ENOMEM;
	}

	for (attempt = 1;; attempt++) {
		char akid[SIGV4_AKID_MAX + 1];
		struct aws_credentials cr;
		struct sigv4_credentials sc;
		int64_t delay;

		if ((r = aws_creds_get(ab->creds, &cr, why, sizeof(why))) < 0) {
			snprintf(errbuf, errlen, "AWS credentials (%s): %s",
			    aws_creds_source(ab->creds), why);
			r = r == -EACCES ? -EACCES : -EIO;
			break;
		}
		memcpy(akid, cr.access_key_id, sizeof(akid));
		sc.access_key_id = cr.access_key_id;
		sc.secret_access_key = cr.secret_access_key;
		sc.session_token = cr.session_token;
		pthread_mutex_lock(&ab->sign_lock);
		r = sigv4_sign(ab->signer, &sc, &sreq, time(NULL), sout);
		pthread_mutex_unlock(&ab->sign_lock);
		if (r < 0) {
			aws_credentials_clear(&cr);
			snprintf(errbuf, errlen, "AWS %s: cannot sign the request "
			    "(%s)", op, strerror(-r));
			r = -EIO;
			break;
		}
		for (i = 0; i < 3; i++)
			hh[i] = (struct http_header){ sh[i].name, sh[i].value };
		for (i = 0; i < sout->nhdr; i++)
			hh[3 + i] = (struct http_header){ sout->hdr[i].name,
			    sout->hdr[i].value };
		memset(&req, 0, sizeof(req));
		req.method = "POST";
		req.path = ab->path;
		req.headers = hh;
		req.nheaders = 3 + sout->nhdr;
		req.body = (const uint8_t *)body;
		req.body_len = blen;
		req.retry = false;
		r = http_do(ab->http, &req, resp, why, sizeof(why));
		aws_credentials_clear(&cr);
		explicit_bzero(sout, sizeof(*sout));
		if (r < 0) {
			snprintf(errbuf, errlen, "AWS %s: %s", op, why);
			/* No answer at all: worth another try, bar TLS trouble. */
			if ((r == -ETIMEDOUT || r == -ECONNREFUSED || r == -EIO ||
			    r == -EHOSTUNREACH) && attempt <= ab->hopt.max_retries) {
				clk_sleep_ms(http_backoff_ms(&ab->hopt, attempt));
				continue;
			}
			r = -EIO;
			break;
		}
		if (resp->status == 200)
			break;
		r = aws_parse_error(resp->status, (const char *)resp->body,
		    resp->body_len, resp->error_type, resp->request_id, type,
		    sizeof(type), errbuf, errlen);
		delay = resp->retry_after_ms;
		http_response_clear(resp);
		if (r == AWS_ERR_EXPIRED) {
			/* Fetch new credentials once, then try again at once. */
			if (!renewed && aws_creds_invalidate(ab->creds, akid)) {
				renewed = true;
				attempt--;
				continue;
			}
			r = -EACCES;
			break;
		}
		if (r == AWS_ERR_RETRY) {
			if (attempt <= ab->hopt.max_retries) {
				if (delay < 0 || delay > ab->hopt.retry_max_ms)
					delay = http_backoff_ms(&ab->hopt,
					    attempt);
				clk_sleep_ms(delay);
				continue;
			}
			r = -EIO;
		}
		break;
	}
	secmem_free(sout);
	return r;
}

static int
aws_fetch(void *impl, const struct backend_request *req,
    struct backend_value *out, char *errbuf, size_t errlen)
{
	struct aws_backend *ab = impl;
	struct http_response resp;
	json_t *doc;
	char *body;
	int r;

	if (!req->ref || !*req->ref || strlen(req->ref) > 2048) {
		snprintf(errbuf, errlen, "AWS: a SecretId is 1 to 2048 "
		    "characters");
		return -EINVAL;
	}
	if (!(doc = json_pack("{s:s}", "SecretId", req->ref)))
		return -ENOMEM;
	if (req->version && strncmp(req->version, STAGE_PREFIX,
	    strlen(STAGE_PREFIX)) == 0)
		r = json_object_set_new(doc, "VersionStage",
		    json_string(req->version + strlen(STAGE_PREFIX)));
	else if (req->version)
		r = json_object_set_new(doc, "VersionId",
		    json_string(req->version));
	else if (ab->version_stage)
		r = json_object_set_new(doc, "VersionStage",
		    json_string(ab->version_stage));
	else
		r = 0;
	body = r == 0 ? dump(doc) : NULL;
	json_decref(doc);
	if (!body)
		return -ENOMEM;
	r = aws_call(ab, "GetSecretValue", body, &resp, errbuf, errlen);
	free(body);
	if (r < 0)
		return r;
	r = aws_parse_secret_value((const char *)resp.body, resp.body_len, out,
	    errbuf, errlen);
	http_response_clear(&resp);
	return r;
}

static int
aws_list(void *impl, const char *prefix, char ***names, size_t *n,
    char *errbuf, size_t errlen)
{
	struct aws_backend *ab = impl;
	struct http_response resp;
	char next[4200] = "", *body;
	json_t *doc;
	int page, r = 0;

	*names = NULL;
	*n = 0;
	for (page = 0; page < LIST_PAGES_MAX; page++) {
		doc = json_pack("{s:i}", "MaxResults", 100);
		if (doc && *prefix)
			json_object_set_new(doc, "Filters", json_pack(
			    "[{s:s,s:[s]}]", "Key", "name", "Values", prefix));
		if (doc && next[0])
			json_object_set_new(doc, "NextToken", json_string(next));
		body = dump(doc);
		json_decref(doc);
		if (!body) {
			r = -ENOMEM;
			break;
		}
		r = aws_call(ab, "ListSecrets", body, &resp, errbuf, errlen);
		free(body);
		if (r < 0)
			break;
		r = aws_parse_list((const char *)resp.body, resp.body_len,
		    prefix, names, n, next, sizeof(next));
		http_response_clear(&resp);
		if (r < 0) {
			snprintf(errbuf, errlen, "AWS ListSecrets: %s",
			    r == -ENOMEM ? "out of memory" : "malformed answer");
			break;
		}
		if (!next[0])
			break;
	}
	if (r == 0 && *n == 0) {
		snprintf(errbuf, errlen, "AWS ListSecrets: no secret under "
		    "\"%s\"", prefix);
		r = -ENOENT;
	}
	if (r < 0) {
		for (size_t i = 0; i < *n; i++)
			free((*names)[i]);
		free(*names);
		*names = NULL;
		*n = 0;
	}
	return r;
}

const struct backend_ops backend_aws_ops = {
	.type = "aws",
	.validate = aws_validate,
	.open = aws_open,
	.fetch = aws_fetch,
	.list = aws_list,
	.close = aws_close,
};
