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
#include <secretsfs/backend.h>
#include <secretsfs/http.h>
#include <secretsfs/secfile.h>
#include <secretsfs/secmem.h>

#define CRED_FILE_MAX		(256u << 10)	/* shared credentials/config */
#define TOKEN_FILE_MAX		(64u << 10)	/* web identity, container */
#define TOKEN_MAX		(16u << 10)	/* a session token */
#define REFRESH_MARGIN_MAX	300		/* seconds before expiry */
#define RETRY_AFTER_FAILURE	2		/* seconds between failed refreshes */
#define IMDS_TOKEN_TTL		21600
#define IMDS_DEFAULT		"http://169.254.169.254"
#define ECS_HOST		"http://169.254.170.2"
#define MSG_MAX			200		/* a service's message, in errbuf */

enum source {
	SRC_STATIC,		/* config, environment or profile: never refreshed */
	SRC_WEB_IDENTITY,
	SRC_CONTAINER,
	SRC_IMDS,
};

struct aws_creds {
	enum source		 src;
	char			 source_name[128];
	char			*backend;	/* for the audit trail, or NULL */

	pthread_mutex_t		 lock;		/* cur, have, obtained, ... */
	pthread_mutex_t		 refresh;	/* one fetch at a time */
	struct aws_credentials	 cur;
	bool			 have;
	time_t			 refresh_at;
	time_t			 retry_after;	/* no refresh before, after a failure */
	int			 last_r;	/* and why it failed */
	char			 last_err[256];
	unsigned long		 fetches;

	/* remote sources */
	struct http_client	*client;
	char			*path;		/* container: the request path */
	char			*role_arn;	/* web identity */
	char			*session_name;
	char			*token_file;	/* web identity or container */
	char			*auth_token;	/* container, secmem */
	char			*imds_token;	/* secmem */
	time_t			 imds_token_exp;
};

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

static bool
env_true(const char *name)
{
	const char *v = getenv(name);

	return v && strcasecmp(v, "true") == 0;
}

static const char *
env_nonempty(const char *name)
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
static bool
valid_secret(const char *s, size_t n, size_t max)
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
static int
creds_set(struct aws_credentials *out, const char *akid, size_t akid_len,
    const char *secret, size_t secret_len, const char *token, size_t token_len,
    const char *exp, const char *what, char *errbuf, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!akid || !valid_akid(akid, akid_len)) {
		snprintf(errbuf, errlen, "%s: missing or malformed access key id",
		    what);
		return -EIO;
	}
	if (!secret || !valid_secret(secret, secret_len, SIGV4_SECRET_MAX)) {
		snprintf(errbuf, errlen, "%s: missing or malformed secret "
		    "access key", what);
		return -EIO;
	}
	if (token && token_len && !valid_secret(token, token_len, TOKEN_MAX)) {
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

/* --- time ------------------------------------------------------------------ */

static int
digits(const char **p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (!isdigit((unsigned char)**p))
			return -1;
		*v = *v * 10 + (**p - '0');
	}
	return 0;
}

int
aws_creds_parse_time(const char *s, time_t *out)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	struct tm tm;
	time_t t;

	if (!s || digits(&s, 4, &y) < 0 || *s++ != '-' ||
	    digits(&s, 2, &mo) < 0 || *s++ != '-' || digits(&s, 2, &d) < 0 ||
	    (*s != 'T' && *s != 't' && *s != ' ') || !*s++ ||
	    digits(&s, 2, &h) < 0 || *s++ != ':' || digits(&s, 2, &mi) < 0 ||
	    *s++ != ':' || digits(&s, 2, &sec) < 0)
		return -EINVAL;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		while (isdigit((unsigned char)*s))
			s++;
	}
	if (*s == 'Z' || *s == 'z')
		s++;
	else if (*s == '+' || *s == '-') {
		sign = *s++ == '+' ? 1 : -1;
		if (digits(&s, 2, &oh) < 0 || (*s == ':' && !*++s) ||
		    digits(&s, 2, &om) < 0)
			return -EINVAL;
	} else
		return -EINVAL;
	if (*s || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 60 || oh > 23 || om > 59)
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -EINVAL;
	*out = t - sign * (oh * 3600 + om * 60);
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

/* --- a small XML reader ----------------------------------------------------
 *
 * Enough for awsQuery answers: elements, attributes, comments, processing
 * instructions, CDATA, the five named entities and character references.
 * A DOCTYPE is refused outright (no entity definitions, no expansion).
 */

#define XML_DEPTH	16

struct xml_name {
	const char	*s;
	size_t		 n;
};

static bool
xml_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.' ||
	    c == ':' || (unsigned char)c >= 0x80;
}

static const char *
xml_skip_to(const char *p, const char *end, const char *what)
{
	size_t n = strlen(what);

	for (; p + n <= end; p++)
		if (memcmp(p, what, n) == 0)
			return p + n;
	return NULL;
}

/*
 * Find the element at path (local names, root first) and return its raw
 * content. 0, -ENOENT (not there), -EIO (malformed, or the element has
 * child elements).
 */
static int
xml_find(const char *xml, size_t len, const char *const *path, size_t plen,
    const char **val, size_t *vlen)
{
	const char *p = xml, *end = xml + len, *content = NULL;
	struct xml_name stack[XML_DEPTH];
	size_t depth = 0, matched = 0;

	while (p < end) {
		if (*p != '<') {
			p++;
			continue;
		}
		if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
			if (!(p = xml_skip_to(p + 4, end, "-->")))
				return -EIO;
			continue;
		}
		if (end - p >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
			if (!(p = xml_skip_to(p + 9, end, "]]>")))
				return -EIO;
			continue;
		}
		if (end - p >= 2 && p[1] == '?') {
			if (!(p = xml_skip_to(p + 2, end, "?>")))
				return -EIO;
			continue;
		}
		if (end - p >= 2 && p[1] == '!')
			return -EIO;	/* DOCTYPE and friends */
		if (end - p >= 2 && p[1] == '/') {
			const char *tag = p, *n = p + 2, *ln;

			while (n < end && xml_name_char(*n))
				n++;
			if (depth == 0)
				return -EIO;
			ln = memchr(p + 2, ':', (size_t)(n - p - 2));
			ln = ln ? ln + 1 : p + 2;
			depth--;
			if ((size_t)(n - ln) != stack[depth].n ||
			    memcmp(ln, stack[depth].s, stack[depth].n) != 0)
				return -EIO;
			while (n < end && isspace((unsigned char)*n))
				n++;
			if (n >= end || *n != '>')
				return -EIO;
			p = n + 1;
			if (content && depth + 1 == plen) {
				*val = content;
				*vlen = (size_t)(tag - content);
				return 0;
			}
			if (matched > depth)
				matched = depth;
			continue;
		}
		/* A start tag. */
		{
			const char *n = p + 1, *name, *ln;
			bool empty = false;
			char q = 0;

			name = n;
			while (n < end && xml_name_char(*n))
				n++;
			if (n == name)
				return -EIO;
			ln = memchr(name, ':', (size_t)(n - name));
			ln = ln ? ln + 1 : name;
			/* Attributes: quoted values may hold '>' and '/'. */
			for (; n < end; n++) {
				if (q) {
					if (*n == q)
						q = 0;
				} else if (*n == '"' || *n == '\'')
					q = *n;
				else if (*n == '>')
					break;
			}
			if (n >= end)
				return -EIO;
			empty = n[-1] == '/';
			if (content)
				return -EIO;	/* wanted a leaf */
			if (depth >= XML_DEPTH)
				return -EIO;
			stack[depth].s = ln;
			stack[depth].n = (size_t)(n - ln);
			/* the name ends where the attributes or "/" begin */
			for (size_t k = 0; k < stack[depth].n; k++)
				if (!xml_name_char(ln[k])) {
					stack[depth].n = k;
					break;
				}
			if (matched == depth && depth < plen &&
			    strlen(path[depth]) == stack[depth].n &&
			    memcmp(path[depth], ln, stack[depth].n) == 0)
				matched = depth + 1;
			p = n + 1;
			if (empty) {
				if (matched == depth + 1 && depth + 1 == plen) {
					*val = p;
					*vlen = 0;
					return 0;
				}
				if (matched > depth)
					matched = depth;
				continue;
			}
			depth++;
			if (matched == depth && depth == plen)
				content = p;
		}
	}
	return depth == 0 ? -ENOENT : -EIO;
}

static void
utf8_put(char *out, size_t *o, unsigned long cp)
{
	if (cp < 0x80)
		out[(*o)++] = (char)cp;
	else if (cp < 0x800) {
		out[(*o)++] = (char)(0xc0 | (cp >> 6));
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		out[(*o)++] = (char)(0xe0 | (cp >> 12));
		out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		out[(*o)++] = (char)(0xf0 | (cp >> 18));
		out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	}
}

/*
 * Decode raw element content into a NUL-terminated secmem string, with
 * surrounding whitespace trimmed. NULL on a bad entity or OOM.
 */
static char *
xml_text(const char *s, size_t n, size_t *outlen)
{
	static const struct { const char *e; char c; } ents[] = {
		{ "lt;", '<' }, { "gt;", '>' }, { "amp;", '&' },
		{ "quot;", '"' }, { "apos;", '\'' },
	};
	size_t i = 0, o = 0;
	char *out;

	/* Decoding never grows the text (CDATA markup and entities shrink). */
	if (!(out = secmem_alloc(n + 1)))
		return NULL;
	while (i < n) {
		if (n - i >= 9 && memcmp(s + i, "<![CDATA[", 9) == 0) {
			const char *e = xml_skip_to(s + i + 9, s + n, "]]>");

			if (!e)
				goto bad;
			memcpy(out + o, s + i + 9, (size_t)(e - 3 - (s + i + 9)));
			o += (size_t)(e - 3 - (s + i + 9));
			i = (size_t)(e - s);
		} else if (n - i >= 4 && memcmp(s + i, "<!--", 4) == 0) {
			const char *e = xml_skip_to(s + i + 4, s + n, "-->");

			if (!e)
				goto bad;
			i = (size_t)(e - s);
		} else if (s[i] == '&') {
			size_t k;

			if (i + 1 < n && s[i + 1] == '#') {
				unsigned long cp;
				char *e, num[16];
				size_t m = 0;

				for (k = i + 2; k < n && s[k] != ';' && m < 15; k++)
					num[m++] = s[k];
				num[m] = '\0';
				if (k >= n || s[k] != ';' || m == 0)
					goto bad;
				cp = (num[0] == 'x' || num[0] == 'X') ?
				    strtoul(num + 1, &e, 16) : strtoul(num, &e, 10);
				if (*e || e == num || (num[0] == 'x' && m == 1) ||
				    cp == 0 || cp > 0x10ffff ||
				    (cp >= 0xd800 && cp <= 0xdfff) ||
				    k + 1 - i < 4)
					goto bad;
				utf8_put(out, &o, cp);
				i = k + 1;
				continue;
			}
			for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
				size_t el = strlen(ents[k].e);

				if (n - i - 1 >= el &&
				    memcmp(s + i + 1, ents[k].e, el) == 0) {
					out[o++] = ents[k].c;
					i += 1 + el;
					break;
				}
			}
			if (k == sizeof(ents) / sizeof(ents[0]))
				goto bad;
		} else if (s[i] == '<')
			goto bad;
		else
			out[o++] = s[i++];
	}
	while (o > 0 && isspace((unsigned char)out[o - 1]))
		o--;
	i = 0;
	while (i < o && isspace((unsigned char)out[i]))
		i++;
	memmove(out, out + i, o - i);
	o -= i;
	out[o] = '\0';
	*outlen = o;
	return out;
bad:
	secmem_free(out);
	return NULL;
}

/* The decoded text at path, or NULL (absent, malformed or OOM). */
static char *
xml_get(const char *xml, size_t len, const char *const *path, size_t plen,
    size_t *outlen, int *err)
{
	const char *v;
	size_t vl;
	char *s;
	int r;

	if ((r = xml_find(xml, len, path, plen, &v, &vl)) < 0) {
		*err = r;
		return NULL;
	}
	if (!(s = xml_text(v, vl, outlen)))
		*err = -EIO;
	return s;
}

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

	if (!(code = xml_get(xml, len, code_p, 3, &cl, &e))) {
		snprintf(errbuf, errlen, "STS: malformed answer");
		return -EIO;
	}
	msg = xml_get(xml, len, msg_p, 3, &ml, &e);
	rid = xml_get(xml, len, rid_p, 2, &rl, &e);
	clean_copy(c, sizeof(c), code, cl);
	clean_copy(m, sizeof(m), msg ? msg : "", ml);
	clean_copy(ri, sizeof(ri), rid ? rid : "-", rid ? rl : 1);
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

		if (xml_find(xml, len, er, 2, &x, &xl) != -ENOENT)
			return sts_error(xml, len, errbuf, errlen);
	}
	for (size_t i = 0; i < 4; i++) {
		path[3] = fields[i];
		if (!(v[i] = xml_get(xml, len, path, 4, &vl[i], &e))) {
			snprintf(errbuf, errlen, "STS: %s %s in the answer",
			    e == -ENOENT ? "no" : "malformed", fields[i]);
			r = -EIO;
			goto out;
		}
	}
	r = creds_set(out, v[0], vl[0], v[1], vl[1], v[2], vl[2], v[3], "STS",
	    errbuf, errlen);
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

		clean_copy(c, sizeof(c), code ? code : "no Code", code ? cl : 7);
		clean_copy(m, sizeof(m), msg ? msg : "", ml);
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
	r = creds_set(out, akid, akl, secret, sl, token, tl, exp, what, errbuf,
	    errlen);
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

/* --- shared config and credentials files ------------------------------------ */

static void
trim(const char **s, const char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t' || **s == '\r'))
		(*s)++;
	while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t' ||
	    (*e)[-1] == '\r'))
		(*e)--;
}

/* Is the section header [b, e) (brackets excluded) the wanted profile? */
static bool
section_is(const char *b, const char *e, const char *profile, bool config_file)
{
	size_t pl = strlen(profile);

	trim(&b, &e);
	if (config_file) {
		if ((size_t)(e - b) == 7 && memcmp(b, "default", 7) == 0)
			return strcmp(profile, "default") == 0;
		if (e - b < 8 || memcmp(b, "profile", 7) != 0 ||
		    (b[7] != ' ' && b[7] != '\t'))
			return false;
		b += 7;
		trim(&b, &e);
	}
	return (size_t)(e - b) == pl && memcmp(b, profile, pl) == 0;
}

int
aws_creds_ini_get(const char *text, size_t len, const char *profile,
    bool config_file, const char *key, char **value, bool *found_profile)
{
	const char *p = text, *end = text + len;
	bool in = false;

	*value = NULL;
	*found_profile = false;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *b = p, *e = eol ? eol : end, *eq;

		p = eol ? eol + 1 : end;
		/* An indented line continues the property above it. */
		if (b < e && (*b == ' ' || *b == '\t')) {
			trim(&b, &e);
			if (b == e || *b == '#' || *b == ';')
				continue;
			if (*b != '[')
				continue;
		}
		trim(&b, &e);
		if (b == e || *b == '#' || *b == ';')
			continue;
		if (*b == '[') {
			const char *close = memchr(b, ']', (size_t)(e - b));

			in = close && section_is(b + 1, close, profile,
			    config_file);
			if (in)
				*found_profile = true;
			continue;
		}
		if (!in || !(eq = memchr(b, '=', (size_t)(e - b))))
			continue;
		{
			const char *kb = b, *ke = eq, *vb = eq + 1, *ve = e;

			trim(&kb, &ke);
			if ((size_t)(ke - kb) != strlen(key) ||
			    strncasecmp(kb, key, (size_t)(ke - kb)) != 0)
				continue;
			/* A comment after a value needs whitespace before it. */
			for (const char *c = vb + 1; c < ve; c++)
				if ((*c == '#' || *c == ';') &&
				    (c[-1] == ' ' || c[-1] == '\t')) {
					ve = c;
					break;
				}
			trim(&vb, &ve);
			/* A NUL would cut the value short: no value at all. */
			if (vb == ve || memchr(vb, '\0', (size_t)(ve - vb)))
				continue;
			if (!(*value = secmem_strndup(vb, (size_t)(ve - vb))))
				return -ENOMEM;
			return 0;
		}
	}
	return -ENOENT;
}

int
aws_creds_parse_ini(const char *text, size_t len, const char *profile,
    bool config_file, struct aws_credentials *out, bool *found_profile,
    char *errbuf, size_t errlen)
{
	char *akid = NULL, *secret = NULL, *token = NULL;
	bool f;
	int r;

	memset(out, 0, sizeof(*out));
	errbuf[0] = '\0';
	if ((r = aws_creds_ini_get(text, len, profile, config_file,
	    "aws_access_key_id", &akid, found_profile)) == -ENOMEM ||
	    (r = aws_creds_ini_get(text, len, profile, config_file,
	    "aws_secret_access_key", &secret, &f)) == -ENOMEM)
		goto out;
	if ((r = aws_creds_ini_get(text, len, profile, config_file,
	    "aws_session_token", &token, &f)) == -ENOENT)
		r = aws_creds_ini_get(text, len, profile, config_file,
		    "aws_security_token", &token, &f);
	if (r == -ENOMEM)
		goto out;
	if (!akid && !secret) {
		r = -ENOENT;
		goto out;
	}
	if (!akid || !secret) {
		snprintf(errbuf, errlen, "profile %s has %s but no %s", profile,
		    akid ? "aws_access_key_id" : "aws_secret_access_key",
		    akid ? "aws_secret_access_key" : "aws_access_key_id");
		r = -EINVAL;
		goto out;
	}
	r = creds_set(out, akid, strlen(akid), secret, strlen(secret), token,
	    token ? strlen(token) : 0, NULL, "profile", errbuf, errlen);
	if (r == -EIO)
		r = -EINVAL;
out:
	secmem_free(akid);
	secmem_free(secret);
	secmem_free(token);
	return r;
}

/*
 * Read a file into the arena. private_only: refuse it when group/other
 * may read it. Otherwise *mode says what it is, so the caller can refuse
 * it only when it turns out to hold a key.
 */
static int
read_file(const char *path, size_t max, bool private_only, char **out,
    size_t *len, mode_t *mode, char *errbuf, size_t errlen)
{
	if (private_only)
		return secfile_read_private(path, max, (uint8_t **)out, len,
		    errbuf, errlen);
	return secfile_read(path, 0, max, (uint8_t **)out, len, mode, errbuf,
	    errlen);
}

/* A token file: whitespace around the token is not part of it. */
static int
read_token_file(const char *path, char **out, char *errbuf, size_t errlen)
{
	char *buf, *b, *e;
	size_t len;
	int r;

	if ((r = read_file(path, TOKEN_FILE_MAX, false, &buf, &len, NULL,
	    errbuf, errlen)) < 0)
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

/* The configured path, else the variable's, else ~/rel. */
static int
home_path(const char *configured, const char *env, const char *rel,
    char *buf, size_t len)
{
	const char *v = configured ? configured : env_nonempty(env);
	const char *home = env_nonempty("HOME");
	struct passwd pw, *pp = NULL;
	char pwbuf[1024];

	if (v) {
		snprintf(buf, len, "%s", v);
		return 0;
	}
	if (!home) {
		getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &pp);
		if (!pp)
			return -ENOENT;
		home = pp->pw_dir;
	}
	snprintf(buf, len, "%s/%s", home, rel);
	return 0;
}

/*
 * A file the backend config names must be there: its absence is a mistake
 * to report, not a source to skip as a missing ~/.aws file is.
 */
static int
named_file_missing(const char *key, const char *path, char *errbuf,
    size_t errlen)
{
	snprintf(errbuf, errlen, "%s %s: %s", key, path, strerror(ENOENT));
	return -EINVAL;
}

/*
 * The shared files. 0 with p->cur set, -ENOENT when neither file has keys
 * for the profile (*exists says whether either has the profile), or
 * another -errno with errbuf set.
 */
static int
from_profile(struct aws_creds *p, const struct aws_creds_options *o,
    const char *profile, bool *exists, char *errbuf, size_t errlen)
{
	char path[4096], *text;
	size_t len;
	mode_t mode = 0;
	bool found;
	int r;

	*exists = false;
	if (home_path(o->credentials_file, "AWS_SHARED_CREDENTIALS_FILE",
	    ".aws/credentials", path, sizeof(path)) == 0) {
		r = read_file(path, CRED_FILE_MAX, true, &text, &len, NULL,
		    errbuf, errlen);
		if (r == -ENOENT && o->credentials_file)
			return named_file_missing("credentials_file", path,
			    errbuf, errlen);
		if (r < 0 && r != -ENOENT)
			return r;
		if (r == 0) {
			r = aws_creds_parse_ini(text, len, profile, false,
			    &p->cur, &found, errbuf, errlen);
			secmem_free(text);
			*exists |= found;
			if (r == 0) {
				snprintf(p->source_name, sizeof(p->source_name),
				    "profile %s", profile);
				return 0;
			}
			if (r != -ENOENT) {
				char why[256];

				snprintf(why, sizeof(why), "%s", errbuf);
				snprintf(errbuf, errlen, "%s: %s", path, why);
				return r;
			}
		}
	}
	if (home_path(o->config_file, "AWS_CONFIG_FILE", ".aws/config", path,
	    sizeof(path)) == 0) {
		r = read_file(path, CRED_FILE_MAX, false, &text, &len, &mode,
		    errbuf, errlen);
		if (r == -ENOENT && o->config_file)
			return named_file_missing("config_file", path, errbuf,
			    errlen);
		if (r < 0 && r != -ENOENT)
			return r;
		if (r == 0) {
			r = aws_creds_parse_ini(text, len, profile, true,
			    &p->cur, &found, errbuf, errlen);
			secmem_free(text);
			*exists |= found;
			if (r == 0 && (mode & (S_IRWXG | S_IRWXO))) {
				aws_credentials_clear(&p->cur);
				snprintf(errbuf, errlen, "%s: holds a secret "
				    "access key but its mode %04o lets group or "
				    "other read it; run `chmod 600 %s`", path,
				    (unsigned)(mode & 07777), path);
				return -EPERM;
			}
			if (r == 0) {
				snprintf(p->source_name, sizeof(p->source_name),
				    "profile %s", profile);
				return 0;
			}
			if (r != -ENOENT) {
				char why[256];

				snprintf(why, sizeof(why), "%s", errbuf);
				snprintf(errbuf, errlen, "%s: %s", path, why);
				return r;
			}
		}
	}
	return -ENOENT;
}

int
aws_creds_profile_region(const char *profile, const char *config_file,
    char *buf, size_t len)
{
	char path[4096], why[256], *text, *v = NULL;
	size_t n;
	bool found;
	int r;

	if (!profile)
		profile = env_nonempty("AWS_PROFILE");
	if (!profile)
		profile = env_nonempty("AWS_DEFAULT_PROFILE");
	if (!profile)
		profile = "default";
	if (home_path(config_file, "AWS_CONFIG_FILE", ".aws/config", path,
	    sizeof(path)) < 0 ||
	    read_file(path, CRED_FILE_MAX, false, &text, &n, NULL, why,
	    sizeof(why)) < 0)
		return -ENOENT;
	r = aws_creds_ini_get(text, n, profile, true, "region", &v, &found);
	secmem_free(text);
	if (r < 0)
		return r;
	r = strlen(v) < len ? 0 : -ENAMETOOLONG;
	if (r == 0)
		memcpy(buf, v, strlen(v) + 1);
	secmem_free(v);
	return r;
}

/* --- URLs ------------------------------------------------------------------ */

/*
 * "scheme://authority/path?q" -> base "scheme://authority" and path
 * "/path?q" (or "/"). Only http and https. -EINVAL.
 */
static int
split_url(const char *url, char **base, char **path, bool *tls)
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
static void
url_host(const char *base, char *host, size_t len)
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
static bool
container_host_ok(const char *host)
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

static int
make_client(struct aws_creds *p, const struct aws_creds_options *o,
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

	if ((r = read_token_file(p->token_file, &token, errbuf, errlen)) < 0)
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
		if ((r = read_token_file(p->token_file, &token, errbuf,
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
	if (b == e || !valid_secret(b, (size_t)(e - b), TOKEN_MAX)) {
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

static int
fetch_remote(struct aws_creds *p, struct aws_credentials *out, char *errbuf,
    size_t errlen)
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
	r = creds_set(&p->cur, akid, strlen(akid), secret, strlen(secret),
	    token, token ? strlen(token) : 0, NULL, "credentials", errbuf,
	    errlen);
	snprintf(p->source_name, sizeof(p->source_name), "config");
	return r == -EIO ? -EINVAL : r;
}

static int
from_env(struct aws_creds *p, char *errbuf, size_t errlen)
{
	const char *akid = env_nonempty("AWS_ACCESS_KEY_ID");
	const char *secret = env_nonempty("AWS_SECRET_ACCESS_KEY");
	const char *token = env_nonempty("AWS_SESSION_TOKEN");
	int r;

	if (!token)
		token = env_nonempty("AWS_SECURITY_TOKEN");
	if (!akid || !secret)
		return -ENOENT;
	r = creds_set(&p->cur, akid, strlen(akid), secret, strlen(secret),
	    token, token ? strlen(token) : 0, NULL, "environment", errbuf,
	    errlen);
	snprintf(p->source_name, sizeof(p->source_name), "environment");
	return r == -EIO ? -EINVAL : r;
}

static int
setup_web_identity(struct aws_creds *p, const struct aws_creds_options *o,
    char *errbuf, size_t errlen)
{
	const char *file = env_nonempty("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *role = env_nonempty("AWS_ROLE_ARN");
	const char *session = env_nonempty("AWS_ROLE_SESSION_NAME");
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
	if ((r = split_url(url, &base, &path, &tls)) < 0) {
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
	r = make_client(p, o, base, tls, false, errbuf, errlen);
	free(base);
	return r;
}

static int
setup_container(struct aws_creds *p, const struct aws_creds_options *o,
    char *errbuf, size_t errlen)
{
	const char *rel = env_nonempty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env_nonempty("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tfile = env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok = env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN");
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
	r = split_url(url, &base, &p->path, &tls);
	free(url);
	if (r < 0) {
		snprintf(errbuf, errlen, "AWS_CONTAINER_CREDENTIALS_%s_URI is "
		    "not an http(s) URL", rel ? "RELATIVE" : "FULL");
		return r == -ENOMEM ? r : -EINVAL;
	}
	url_host(base, host, sizeof(host));
	if (!tls && !container_host_ok(host)) {
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
	r = make_client(p, o, base, tls, true, errbuf, errlen);
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
		ep = env_nonempty("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	if (!ep)
		ep = IMDS_DEFAULT;
	if ((r = split_url(ep, &base, &path, &tls)) < 0) {
		snprintf(errbuf, errlen, "IMDS endpoint \"%s\" is not an "
		    "http(s) URL", ep);
		return r == -ENOMEM ? r : -EINVAL;
	}
	free(path);
	p->src = SRC_IMDS;
	snprintf(p->source_name, sizeof(p->source_name), "imds");
	r = make_client(p, o, base, tls, true, errbuf, errlen);
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
		profile = env_nonempty("AWS_PROFILE");
	if (!profile)
		profile = env_nonempty("AWS_DEFAULT_PROFILE");
	explicit_profile = profile != NULL;
	if (!profile)
		profile = "default";
	if ((r = from_profile(p, o, profile, &exists, errbuf, errlen)) !=
	    -ENOENT)
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

	r = fr = fetch_remote(p, &next, errbuf, errlen);
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
