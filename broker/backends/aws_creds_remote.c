/*
 * The remote sources of the AWS credential chain (STS web identity, the
 * container endpoint, EC2 IMDSv2) and the answers they give.
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
#include <secretsfs/aws_xml.h>
#include <secretsfs/http.h>
#include <secretsfs/secmem.h>

#include "aws_creds_int.h"

/* --- STS answers ------------------------------------------------------------ */

static int
sts_error(const char *xml, size_t len, char *errbuf, size_t errlen)
{
	static const char *const code_p[] = { "ErrorResponse", "Error", "Code" };
	static const char *const msg_p[] = { "ErrorResponse", "Error", "Message" };
	static const char *const rid_p[] = { "ErrorResponse", "RequestId" };
	static const char *const eacces[] = { "InvalidIdentityToken",
	    "AccessDenied", "AccessDeniedException", "ExpiredToken",
	    "ExpiredTokenException", "IDPRejectedClaim",
	    "IDPRejectedClaimException", "InvalidIdentityTokenException", NULL };
	static const char *const eagain[] = { "Throttling",
	    "ThrottlingException", "IDPCommunicationError",
	    "IDPCommunicationErrorException", "RequestLimitExceeded", NULL };
	char *code, *msg, *rid, c[128], m[MSG_MAX + 1], ri[128];
	size_t cl = 0, ml = 0, rl = 0;
	int e = 0, r = -EIO;

	if (!(code = aws_xml_get(xml, len, code_p, 3, &cl, &e))) {
		snprintf(errbuf, errlen, "STS: malformed answer");
		return -EIO;
	}
	msg = aws_xml_get(xml, len, msg_p, 3, &ml, &e);
	rid = aws_xml_get(xml, len, rid_p, 2, &rl, &e);
	aws_creds_clean_copy(c, sizeof(c), code, cl);
	aws_creds_clean_copy(m, sizeof(m), msg ? msg : "", ml);
	aws_creds_clean_copy(ri, sizeof(ri), rid ? rid : "-", rid ? rl : 1);
	snprintf(errbuf, errlen, "STS %s (request id %s): %s", c, ri, m);
	for (size_t i = 0; eacces[i]; i++)
		if (strcmp(c, eacces[i]) == 0)
			r = -EACCES;
	for (size_t i = 0; eagain[i]; i++)
		if (strcmp(c, eagain[i]) == 0)
			r = -EAGAIN;
	secmem_free(code);
	secmem_free(msg);
	secmem_free(rid);
	return r;
}

int
aws_creds_parse_sts_xml(const char *xml, size_t len,
    struct aws_credentials *out, char *errbuf, size_t errlen)
{
	static const char *const root[] = { "AssumeRoleWithWebIdentityResponse",
	    "AssumeRoleWithWebIdentityResult", "Credentials", NULL };
	static const char *const fields[] = { "AccessKeyId", "SecretAccessKey",
	    "SessionToken", "Expiration" };
	const char *path[4] = { root[0], root[1], root[2], NULL };
	char *v[4] = { NULL };
	size_t vl[4] = { 0 };
	int e = 0, r;

	memset(out, 0, sizeof(*out));
	errbuf[0] = '\0';
	{
		static const char *const er[] = { "ErrorResponse", "Error" };
		const char *x;
		size_t xl;

		if (aws_xml_find(xml, len, er, 2, &x, &xl) != -ENOENT)
			return sts_error(xml, len, errbuf, errlen);
	}
	for (size_t i = 0; i < 4; i++) {
		path[3] = fields[i];
		if (!(v[i] = aws_xml_get(xml, len, path, 4, &vl[i], &e))) {
			snprintf(errbuf, errlen, "STS: %s %s in the answer",
			    e == -ENOENT ? "no" : "malformed", fields[i]);
			r = -EIO;
			goto out;
		}
	}
	r = aws_creds_set(out, v[0], vl[0], v[1], vl[1], v[2], vl[2], v[3],
	    "STS", errbuf, errlen);
	if (r == 0 && !out->session_token) {
		aws_credentials_clear(out);
		snprintf(errbuf, errlen, "STS: empty SessionToken");
		r = -EIO;
	}
out:
	for (size_t i = 0; i < 4; i++)
		secmem_free(v[i]);
	return r;
}

/* --- JSON credential documents --------------------------------------------- */

static const char *
jstr(json_t *o, const char *k, size_t *n)
{
	json_t *v = json_object_get(o, k);

	if (!json_is_string(v)) {
		*n = 0;
		return NULL;
	}
	*n = json_string_length(v);
	/* A NUL inside would truncate what we check; refuse it. */
	if (strlen(json_string_value(v)) != *n)
		return NULL;
	return json_string_value(v);
}

static int
parse_json_creds(const char *text, size_t len, bool imds,
    struct aws_credentials *out, char *errbuf, size_t errlen)
{
	const char *what = imds ? "IMDS" : "container credentials";
	const char *akid, *secret, *token, *exp, *code, *msg;
	size_t akl, sl, tl, el, cl, ml;
	json_error_t je;
	json_t *doc;
	int r;

	memset(out, 0, sizeof(*out));
	errbuf[0] = '\0';
	doc = json_loadb(text, len, 0, &je);
	if (!json_is_object(doc)) {
		/* je.text may quote the input: say only where it broke. */
		snprintf(errbuf, errlen, "%s: malformed JSON answer (line %d)",
		    what, je.line);
		json_decref(doc);
		return -EIO;
	}
	akid = jstr(doc, "AccessKeyId", &akl);
	secret = jstr(doc, "SecretAccessKey", &sl);
	token = jstr(doc, "Token", &tl);
	exp = jstr(doc, "Expiration", &el);
	if (!(code = jstr(doc, "Code", &cl)))
		code = jstr(doc, "code", &cl);
	if (!(msg = jstr(doc, "Message", &ml)))
		msg = jstr(doc, "message", &ml);
	if ((imds && (!code || strcmp(code, "Success") != 0)) ||
	    (!imds && !akid && code)) {
		char c[64], m[MSG_MAX + 1];

		aws_creds_clean_copy(c, sizeof(c), code ? code : "no Code",
		    code ? cl : 7);
		aws_creds_clean_copy(m, sizeof(m), msg ? msg : "", ml);
		snprintf(errbuf, errlen, "%s: %s: %s", what, c, m);
		json_decref(doc);
		return -EACCES;
	}
	if (!token || !exp) {
		snprintf(errbuf, errlen, "%s: no %s in the answer", what,
		    !token ? "Token" : "Expiration");
		json_decref(doc);
		return -EIO;
	}
	r = aws_creds_set(out, akid, akl, secret, sl, token, tl, exp, what,
	    errbuf, errlen);
	json_decref(doc);
	return r;
}

int
aws_creds_parse_container_json(const char *json, size_t len,
    struct aws_credentials *out, char *errbuf, size_t errlen)
{
	return parse_json_creds(json, len, false, out, errbuf, errlen);
}

int
aws_creds_parse_imds_json(const char *json, size_t len,
    struct aws_credentials *out, char *errbuf, size_t errlen)
{
	return parse_json_creds(json, len, true, out, errbuf, errlen);
}

/* --- URLs ------------------------------------------------------------------ */

/*
 * "scheme://authority/path?q" -> base "scheme://authority" and path
 * "/path?q" (or "/"). Only http and https. -EINVAL.
 */
int
aws_creds_split_url(const char *url, char **base, char **path, bool *tls)
{
	const char *a, *slash;

	*base = *path = NULL;
	if (strncmp(url, "https://", 8) == 0) {
		*tls = true;
		a = url + 8;
	} else if (strncmp(url, "http://", 7) == 0) {
		*tls = false;
		a = url + 7;
	} else
		return -EINVAL;
	slash = a + strcspn(a, "/?#");
	if (slash == a || *slash == '#' || strpbrk(url, " \t\r\n@"))
		return -EINVAL;
	if (!(*base = strndup(url, (size_t)(slash - url))) ||
	    !(*path = *slash == '/' ? strdup(slash) : malloc(strlen(slash) + 2))) {
		free(*base);
		*base = NULL;
		return -ENOMEM;
	}
	if (*slash != '/')
		sprintf(*path, "/%s", slash);
	return 0;
}

/* The host of base ("http://h:p" or "http://[v6]:p"), without the port. */
void
aws_creds_url_host(const char *base, char *host, size_t len)
{
	const char *a = strstr(base, "://"), *e;

	a = a ? a + 3 : base;
	if (*a == '[') {
		e = strchr(a, ']');
		e = e ? e + 1 : a + strlen(a);
	} else
		e = a + strcspn(a, ":");
	snprintf(host, len, "%.*s", (int)(e - a), a);
}

/* Where plain http to a container credential endpoint may go. */
bool
aws_creds_container_host_ok(const char *host)
{
	static const char *const ok[] = { "169.254.170.2", "169.254.170.23",
	    "[fd00:ec2::23]", "localhost", "[::1]", NULL };

	for (size_t i = 0; ok[i]; i++)
		if (strcasecmp(host, ok[i]) == 0)
			return true;
	/* 127.0.0.0/8 */
	if (strncmp(host, "127.", 4) == 0) {
		int dots = 0;

		for (const char *c = host; *c; c++) {
			if (*c == '.')
				dots++;
			else if (!isdigit((unsigned char)*c))
				return false;
		}
		return dots == 3;
	}
	return false;
}

int
aws_creds_make_client(struct aws_creds *p, const struct aws_creds_options *o,
    const char *base, bool tls, bool metadata_service, char *errbuf,
    size_t errlen)
{
	struct http_options h;

	if (o->http)
		h = *o->http;
	else
		http_options_default(&h);
	h.tls = tls;
	if (metadata_service) {
		/* IMDS and the ECS/EKS agents speak plain http on link-local. */
		h.metadata_http = true;
		/* A metadata service answers at once or not at all. */
		if (h.connect_timeout_ms > 2000)
			h.connect_timeout_ms = 2000;
		if (h.timeout_ms > 10000)
			h.timeout_ms = 10000;
	}
	return http_client_new(base, &h, &p->client, errbuf, errlen);
}

/* --- remote sources ----------------------------------------------------------- */

static bool
unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Append s form-urlencoded to buf (secmem, room checked by the caller). */
static size_t
urlenc(char *buf, size_t o, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		if (unreserved((unsigned char)*s))
			buf[o++] = *s;
		else {
			buf[o++] = '%';
			buf[o++] = hex[(unsigned char)*s >> 4];
			buf[o++] = hex[(unsigned char)*s & 15];
		}
	}
	return o;
}

static int
http_failure(int r, const char *what, const char *why, char *errbuf,
    size_t errlen)
{
	snprintf(errbuf, errlen, "%s: %s", what, why[0] ? why : strerror(-r));
	if (r == -ETIMEDOUT || r == -ECONNREFUSED)
		return r;
	return -EIO;
}

static int
fetch_web_identity(struct aws_creds *p, struct aws_credentials *out,
    char *errbuf, size_t errlen)
{
	static const struct http_header hdr[] = {
		{ "Content-Type", "application/x-www-form-urlencoded; charset=utf-8" },
		{ "Accept", "text/xml" },
	};
	struct http_request req = {
		.method = "POST", .path = "/", .headers = hdr,
		.nheaders = sizeof(hdr) / sizeof(hdr[0]), .retry = true,
	};
	struct http_response resp;
	char *token = NULL, *body = NULL, why[256] = "";
	size_t cap, o;
	int r, attempt;

	if ((r = aws_creds_read_token(p->token_file, &token, errbuf,
	    errlen)) < 0)
		return r;
	cap = 128 + 3 * (strlen(p->role_arn) + strlen(p->session_name) +
	    strlen(token));
	if (!(body = secmem_alloc(cap))) {
		secmem_free(token);
		snprintf(errbuf, errlen, "locked memory exhausted");
		return -ENOMEM;
	}
	o = (size_t)sprintf(body, "Action=AssumeRoleWithWebIdentity"
	    "&Version=2011-06-15&RoleArn=");
	o = urlenc(body, o, p->role_arn);
	memcpy(body + o, "&RoleSessionName=", 17);
	o = urlenc(body, o + 17, p->session_name);
	memcpy(body + o, "&WebIdentityToken=", 18);
	o = urlenc(body, o + 18, token);
	body[o] = '\0';
	secmem_free(token);
	req.body = (const uint8_t *)body;
	req.body_len = o;

	/* STS throttles with a 400: the http layer does not retry that. */
	for (attempt = 1;; attempt++) {
		memset(&resp, 0, sizeof(resp));
		if ((r = http_do(p->client, &req, &resp, why, sizeof(why))) < 0) {
			r = http_failure(r, "STS AssumeRoleWithWebIdentity",
			    why, errbuf, errlen);
			break;
		}
		if (!resp.body) {
			snprintf(errbuf, errlen, "STS AssumeRoleWithWebIdentity:"
			    " HTTP %ld with an empty body", resp.status);
			r = resp.status == 403 ? -EACCES : -EIO;
		} else if (resp.status == 200)
			r = aws_creds_parse_sts_xml((const char *)resp.body,
			    resp.body_len, out, errbuf, errlen);
		else {
			r = aws_creds_parse_sts_xml((const char *)resp.body,
			    resp.body_len, out, errbuf, errlen);
			if (r == 0) {
				/* credentials in an error answer: no */
				aws_credentials_clear(out);
				r = -EIO;
			}
			if (errbuf[0] == '\0' || strncmp(errbuf, "STS: ", 5) == 0)
				snprintf(errbuf, errlen, "STS "
				    "AssumeRoleWithWebIdentity: HTTP %ld",
				    resp.status);
		}
		http_response_clear(&resp);
		if (r != -EAGAIN || attempt >= 3)
			break;
		{
			struct http_options d;
			int64_t ms;

			http_options_default(&d);
			ms = http_backoff_ms(&d, attempt);
			struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
			nanosleep(&ts, NULL);
		}
	}
	if (r == -EAGAIN)
		r = -EIO;
	secmem_free(body);
	return r;
}

static int
fetch_container(struct aws_creds *p, struct aws_credentials *out,
    char *errbuf, size_t errlen)
{
	struct http_header hdr[2] = { { "Accept", "application/json" } };
	struct http_request req = {
		.method = "GET", .path = p->path, .headers = hdr, .nheaders = 1,
		.retry = true,
	};
	struct http_response resp;
	char *token = NULL, why[256] = "";
	int r;

	if (p->token_file) {
		if ((r = aws_creds_read_token(p->token_file, &token, errbuf,
		    errlen)) < 0)
			return r;
	} else if (p->auth_token && !(token = secmem_strdup(p->auth_token))) {
		snprintf(errbuf, errlen, "locked memory exhausted");
		return -ENOMEM;
	}
	if (token) {
		if (strpbrk(token, "\r\n")) {
			secmem_free(token);
			snprintf(errbuf, errlen, "container credentials: the "
			    "authorization token holds a line break");
			return -EINVAL;
		}
		hdr[1].name = "Authorization";
		hdr[1].value = token;
		req.nheaders = 2;
	}
	memset(&resp, 0, sizeof(resp));
	r = http_do(p->client, &req, &resp, why, sizeof(why));
	secmem_free(token);
	if (r < 0)
		return http_failure(r, "container credentials", why, errbuf,
		    errlen);
	if (resp.status == 200 && resp.body)
		r = aws_creds_parse_container_json((const char *)resp.body,
		    resp.body_len, out, errbuf, errlen);
	else {
		char m[MSG_MAX + 1] = "";

		if (resp.body) {
			struct aws_credentials junk;

			/* the agent's JSON error, if it is one */
			if (aws_creds_parse_container_json((const char *)resp.body,
			    resp.body_len, &junk, m, sizeof(m)) == 0)
				aws_credentials_clear(&junk);
		}
		{
			static const char pre[] = "container credentials: ";
			const char *why = strncmp(m, pre, sizeof(pre) - 1) == 0 ?
			    m + sizeof(pre) - 1 : m;

			snprintf(errbuf, errlen, "container credentials: HTTP "
			    "%ld%s%s", resp.status, why[0] ? ": " : "", why);
		}
		r = resp.status == 401 || resp.status == 403 ||
		    resp.status == 400 ? -EACCES : -EIO;
	}
	http_response_clear(&resp);
	return r;
}

static int
imds_token(struct aws_creds *p, char *errbuf, size_t errlen)
{
	static const struct http_header hdr[] = {
		{ "X-aws-ec2-metadata-token-ttl-seconds", "21600" },
	};
	struct http_request req = {
		.method = "PUT", .path = "/latest/api/token", .headers = hdr,
		.nheaders = 1, .retry = true,
	};
	struct http_response resp;
	char why[256] = "";
	const char *b, *e;
	time_t now = time(NULL);
	int r;

	if (p->imds_token && now < p->imds_token_exp)
		return 0;
	secmem_free(p->imds_token);
	p->imds_token = NULL;
	memset(&resp, 0, sizeof(resp));
	if ((r = http_do(p->client, &req, &resp, why, sizeof(why))) < 0)
		return http_failure(r, "IMDS token", why, errbuf, errlen);
	if (resp.status != 200 || !resp.body) {
		snprintf(errbuf, errlen, "IMDS token: HTTP %ld%s", resp.status,
		    resp.status == 403 ? " (IMDS is off or refuses this host)" :
		    resp.status == 400 ? " (IMDSv2 refused the request)" : "");
		http_response_clear(&resp);
		return resp.status == 403 ? -EACCES : -EIO;
	}
	b = (const char *)resp.body;
	e = b + resp.body_len;
	while (b < e && isspace((unsigned char)*b))
		b++;
	while (e > b && isspace((unsigned char)e[-1]))
		e--;
	if (b == e || !aws_creds_valid_secret(b, (size_t)(e - b), TOKEN_MAX)) {
		http_response_clear(&resp);
		snprintf(errbuf, errlen, "IMDS token: malformed answer");
		return -EIO;
	}
	p->imds_token = secmem_strndup(b, (size_t)(e - b));
	http_response_clear(&resp);
	if (!p->imds_token) {
		snprintf(errbuf, errlen, "locked memory exhausted");
		return -ENOMEM;
	}
	/* Renew well before the service forgets it. */
	p->imds_token_exp = now + IMDS_TOKEN_TTL - 600;
	return 0;
}

/* GET path from IMDS with the session token; resp on 0. */
static int
imds_get(struct aws_creds *p, const char *path, struct http_response *resp,
    char *errbuf, size_t errlen)
{
	struct http_header hdr[1] = { { "X-aws-ec2-metadata-token", NULL } };
	struct http_request req = {
		.method = "GET", .path = path, .headers = hdr, .nheaders = 1,
		.retry = true,
	};
	char why[256] = "";
	int r, attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		if ((r = imds_token(p, errbuf, errlen)) < 0)
			return r;
		hdr[0].value = p->imds_token;
		memset(resp, 0, sizeof(*resp));
		if ((r = http_do(p->client, &req, resp, why, sizeof(why))) < 0)
			return http_failure(r, "IMDS", why, errbuf, errlen);
		if (resp->status != 401)
			break;
		/* The token lapsed (or IMDS restarted): take a new one. */
		http_response_clear(resp);
		secmem_free(p->imds_token);
		p->imds_token = NULL;
	}
	if (resp->status == 200 && resp->body)
		return 0;
	snprintf(errbuf, errlen, "IMDS %s: HTTP %ld%s", path, resp->status,
	    resp->status == 404 ? " (no IAM role attached to this instance?)" :
	    "");
	r = resp->status == 401 || resp->status == 403 || resp->status == 404 ?
	    -EACCES : -EIO;
	http_response_clear(resp);
	return r;
}

static int
fetch_imds(struct aws_creds *p, struct aws_credentials *out, char *errbuf,
    size_t errlen)
{
	static const char base[] = "/latest/meta-data/iam/security-credentials/";
	struct http_response resp;
	char path[sizeof(base) + 256];
	size_t n;
	int r;

	if ((r = imds_get(p, base, &resp, errbuf, errlen)) < 0)
		return r;
	/* One role per instance profile: the first line. */
	n = strcspn((const char *)resp.body, "\r\n");
	while (n > 0 && isspace(resp.body[n - 1]))
		n--;
	if (n == 0 || n > 255 || memchr(resp.body, '/', n) ||
	    memchr(resp.body, '?', n) || memchr(resp.body, '#', n)) {
		http_response_clear(&resp);
		snprintf(errbuf, errlen, "IMDS: no usable IAM role name");
		return -EIO;
	}
	snprintf(path, sizeof(path), "%s%.*s", base, (int)n, resp.body);
	http_response_clear(&resp);
	for (size_t i = sizeof(base) - 1; path[i]; i++)
		if ((unsigned char)path[i] <= 0x20 || path[i] == 0x7f) {
			snprintf(errbuf, errlen, "IMDS: no usable IAM role name");
			return -EIO;
		}
	if ((r = imds_get(p, path, &resp, errbuf, errlen)) < 0)
		return r;
	r = aws_creds_parse_imds_json((const char *)resp.body, resp.body_len,
	    out, errbuf, errlen);
	http_response_clear(&resp);
	return r;
}

int
aws_creds_fetch_remote(struct aws_creds *p, struct aws_credentials *out,
    char *errbuf, size_t errlen)
{
	switch (p->src) {
	case SRC_WEB_IDENTITY:
		return fetch_web_identity(p, out, errbuf, errlen);
	case SRC_CONTAINER:
		return fetch_container(p, out, errbuf, errlen);
	case SRC_IMDS:
		return fetch_imds(p, out, errbuf, errlen);
	default:
		snprintf(errbuf, errlen, "static credentials cannot be refreshed");
		return -EACCES;
	}
}
