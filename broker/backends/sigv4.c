/*
 * AWS Signature Version 4, header flavour, after botocore's SigV4Auth and
 * the AWS signing test suites.
 *
 * The canonical request is never assembled in memory when signing: it is
 * streamed into SHA-256 through a small "sink" that can also append to a
 * buffer, so sigv4_canonical_request() and sigv4_sign() share one code
 * path and the signer needs no heap. Sorting works on index arrays of
 * bounded size on the stack.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <secretsfs/sigv4.h>

#define ALGORITHM	"AWS4-HMAC-SHA256"
#define TERMINATOR	"aws4_request"
#define STS_MAX		512	/* string to sign; bounded by the limits */

/* Message for the secret's fingerprint; never equal to a YYYYMMDD date. */
#define FP_MESSAGE	"secretsfs sigv4 signing-key cache"

/* Never signed: hop-by-hop, or rewritten by proxies and clients. */
static const char *const unsigned_headers[] = {
	"connection", "expect", "keep-alive", "proxy-authenticate",
	"proxy-authorization", "te", "trailer", "transfer-encoding",
	"upgrade", "user-agent", "x-amzn-trace-id",
};

struct sink {
	char		*buf;		/* buffer mode when md is NULL */
	size_t		 size;
	size_t		 len;		/* bytes emitted, even past size */
	EVP_MD_CTX	*md;
	int		 err;
};

struct hent {
	const char	*name;
	size_t		 nlen;
	const char	*value;
	size_t		 seq;		/* keeps duplicates in given order */
};

struct qent {
	const char	*name;
	size_t		 nlen;
	const char	*value;
	size_t		 vlen;
};

/* A request checked, filtered and sorted, ready to be emitted. */
struct prep {
	struct hent	h[SIGV4_MAX_HEADERS + 4];
	size_t		nh;
	struct qent	q[SIGV4_MAX_QUERY];
	size_t		nq;
	char		payload[SIGV4_HEX_SIZE];
	char		amz_date[SIGV4_AMZ_DATE_SIZE];
	char		date[9];
};

static const char hexdig[] = "0123456789abcdef";
static const char HEXDIG[] = "0123456789ABCDEF";

static unsigned char
lc(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static bool
is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

/* RFC 7230 tchar. */
static bool
is_tchar(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~",
	    c) != NULL);
}

static bool
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Like strchrnul(3), without needing _GNU_SOURCE. */
static const char *
seg_end(const char *s, char c)
{
	while (*s != '\0' && *s != c)
		s++;
	return s;
}

static void
put(struct sink *k, const void *p, size_t n)
{
	if (k->err != 0 && k->err != -ENOSPC)
		return;
	if (k->md != NULL) {
		if (EVP_DigestUpdate(k->md, p, n) != 1)
			k->err = -EIO;
	} else if (k->err == 0 && k->len + n < k->size)
		memcpy(k->buf + k->len, p, n);
	else
		k->err = -ENOSPC;
	k->len += n;
}

static void
putch(struct sink *k, char c)
{
	put(k, &c, 1);
}

static void
putstr(struct sink *k, const char *s)
{
	put(k, s, strlen(s));
}

static void
sink_finish(struct sink *k)
{
	if (k->md == NULL && k->err == 0)
		k->buf[k->len] = '\0';
}

static void
put_pct(struct sink *k, unsigned char c)
{
	char e[3] = { '%', HEXDIG[c >> 4], HEXDIG[c & 15] };

	put(k, e, 3);
}

static void
tohex(const uint8_t *b, size_t n, char *out)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hexdig[b[i] >> 4];
		out[2 * i + 1] = hexdig[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
sha256_hex(const void *p, size_t n, char out[SIGV4_HEX_SIZE])
{
	uint8_t		md[32];
	unsigned int	mdlen = 0;

	if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != sizeof(md))
		return -EIO;
	tohex(md, sizeof(md), out);
	return 0;
}

static int
hmac(const void *key, size_t klen, const void *msg, size_t mlen,
    uint8_t out[32])
{
	size_t	outlen = 0;

	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, klen, msg,
	    mlen, out, 32, &outlen) == NULL || outlen != 32)
		return -EIO;
	return 0;
}

static int
format_dates(time_t now, char amz[SIGV4_AMZ_DATE_SIZE], char date[9])
{
	struct tm	tm;

	if (gmtime_r(&now, &tm) == NULL)
		return -EINVAL;
	/* A five-digit year would not fit the fixed-width format. */
	if (strftime(amz, SIGV4_AMZ_DATE_SIZE, "%Y%m%dT%H%M%SZ", &tm) !=
	    SIGV4_AMZ_DATE_SIZE - 1)
		return -EINVAL;
	memcpy(date, amz, 8);
	date[8] = '\0';
	return 0;
}

/* Byte-wise compare of two names after ASCII lowercasing. */
static int
lc_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t	i;

	for (i = 0; i < alen && i < blen; i++) {
		unsigned char x = lc(a[i]), y = lc(b[i]);
		if (x != y)
			return x < y ? -1 : 1;
	}
	return alen < blen ? -1 : alen > blen;
}

static bool
name_is(const char *name, size_t nlen, const char *lower)
{
	return lc_cmp(name, nlen, lower, strlen(lower)) == 0;
}

static bool
valid_value(const char *v)
{
	for (; *v != '\0'; v++)
		if (is_ctl((unsigned char)*v) && *v != '\t')
			return false;
	return true;
}

static bool
valid_name(const char *s, size_t *lenp)
{
	size_t	n;

	for (n = 0; s[n] != '\0'; n++)
		if (!is_tchar((unsigned char)s[n]))
			return false;
	*lenp = n;
	return n > 0;
}

/*
 * Iterates over the canonical (percent-decoded, then re-encoded) form of
 * a query name or value one character at a time, so two of them can be
 * ordered without writing either down. Escapes were checked beforehand.
 */
struct enc_it {
	const unsigned char	*p;
	const unsigned char	*end;
	char			 pend[2];
	int			 npend;
};

static int
enc_next(struct enc_it *it)
{
	unsigned char	c;

	if (it->npend > 0)
		return (unsigned char)it->pend[2 - it->npend--];
	if (it->p >= it->end)
		return -1;
	c = *it->p++;
	if (c == '%') {
		c = hexval(it->p[0]) << 4 | hexval(it->p[1]);
		it->p += 2;
	}
	if (is_unreserved(c))
		return c;
	it->pend[0] = HEXDIG[c >> 4];
	it->pend[1] = HEXDIG[c & 15];
	it->npend = 2;
	return '%';
}

static int
enc_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	struct enc_it	x = { (const unsigned char *)a,
			    (const unsigned char *)a + alen, { 0, 0 }, 0 };
	struct enc_it	y = { (const unsigned char *)b,
			    (const unsigned char *)b + blen, { 0, 0 }, 0 };
	int		cx, cy;

	do {
		cx = enc_next(&x);
		cy = enc_next(&y);
		if (cx != cy)
			return cx < cy ? -1 : 1;
	} while (cx != -1);
	return 0;
}

static void
put_enc_query(struct sink *k, const char *s, size_t n)
{
	struct enc_it	it = { (const unsigned char *)s,
			    (const unsigned char *)s + n, { 0, 0 }, 0 };
	int		c;

	while ((c = enc_next(&it)) != -1)
		putch(k, (char)c);
}

static int
qent_cmp(const struct qent *a, const struct qent *b)
{
	int	r;

	if ((r = enc_cmp(a->name, a->nlen, b->name, b->nlen)) != 0)
		return r;
	return enc_cmp(a->value, a->vlen, b->value, b->vlen);
}

static int
check_escapes(const char *s, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (is_ctl((unsigned char)s[i]) || s[i] == '#')
			return -EINVAL;
		if (s[i] == '%') {
			if (i + 2 >= n || hexval(s[i + 1]) < 0 ||
			    hexval(s[i + 2]) < 0)
				return -EINVAL;
			i += 2;
		}
	}
	return 0;
}

static int
prep_query(struct prep *p, const char *query)
{
	const char	*seg, *end, *eq;
	size_t		 i, j;
	int		 r;

	p->nq = 0;
	if (query == NULL)
		return 0;
	for (seg = query; *seg != '\0'; seg = *end ? end + 1 : end) {
		end = seg_end(seg, '&');
		if (end == seg)
			continue;
		if (p->nq == SIGV4_MAX_QUERY)
			return -E2BIG;
		eq = memchr(seg, '=', end - seg);
		struct qent *q = &p->q[p->nq++];
		q->name = seg;
		q->nlen = (eq ? eq : end) - seg;
		q->value = eq ? eq + 1 : end;
		q->vlen = end - q->value;
		if ((r = check_escapes(q->name, q->nlen)) < 0 ||
		    (r = check_escapes(q->value, q->vlen)) < 0)
			return r;
	}
	/* Insertion sort: a handful of parameters at most. */
	for (i = 1; i < p->nq; i++) {
		struct qent t = p->q[i];
		for (j = i; j > 0 && qent_cmp(&p->q[j - 1], &t) > 0; j--)
			p->q[j] = p->q[j - 1];
		p->q[j] = t;
	}
	return 0;
}

static int
hent_cmp(const struct hent *a, const struct hent *b)
{
	int	r;

	if ((r = lc_cmp(a->name, a->nlen, b->name, b->nlen)) != 0)
		return r;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void
add_hent(struct prep *p, const char *name, const char *value)
{
	struct hent	*h = &p->h[p->nh];

	h->name = name;
	h->nlen = strlen(name);
	h->value = value;
	h->seq = p->nh++;
}

static bool
token_is_signed(const struct sigv4_request *req, const char *token)
{
	return token != NULL && *token != '\0' &&
	    !(req->flags & SIGV4_UNSIGNED_TOKEN);
}

static int
prep_request(struct prep *p, const struct sigv4_request *req, time_t now,
    const char *token)
{
	const struct sigv4_header	*in;
	bool				 have_host = false, skip;
	size_t				 i, j, n;
	int				 r;

	if (req == NULL || req->method == NULL || req->path == NULL ||
	    (req->nheaders > 0 && req->headers == NULL) ||
	    (req->body_len > 0 && req->body == NULL))
		return -EINVAL;
	if (!valid_name(req->method, &n))
		return -EINVAL;
	if (req->path[0] != '\0' && req->path[0] != '/')
		return -EINVAL;
	for (i = 0; req->path[i] != '\0'; i++)
		if (is_ctl((unsigned char)req->path[i]) || req->path[i] == '?')
			return -EINVAL;
	if (!(req->flags & SIGV4_NO_NORMALIZE) && i > SIGV4_PATH_MAX)
		return -ENAMETOOLONG;
	if (req->nheaders > SIGV4_MAX_HEADERS)
		return -E2BIG;
	if (token != NULL && !valid_value(token))
		return -EINVAL;
	if ((r = format_dates(now, p->amz_date, p->date)) < 0)
		return r;
	if ((r = sha256_hex(req->body_len ? req->body : "", req->body_len,
	    p->payload)) < 0)
		return r;
	if ((r = prep_query(p, req->query)) < 0)
		return r;

	p->nh = 0;
	for (i = 0; i < req->nheaders; i++) {
		in = &req->headers[i];
		if (in->name == NULL || in->value == NULL ||
		    !valid_name(in->name, &n) || !valid_value(in->value))
			return -EINVAL;
		skip = false;
		for (j = 0; j < sizeof(unsigned_headers) /
		    sizeof(unsigned_headers[0]); j++)
			if (name_is(in->name, n, unsigned_headers[j]))
				skip = true;
		/* Ours to set: the signer's values replace the caller's. */
		if (name_is(in->name, n, "authorization") ||
		    name_is(in->name, n, "x-amz-date") ||
		    (token != NULL && *token != '\0' &&
		    name_is(in->name, n, "x-amz-security-token")) ||
		    ((req->flags & SIGV4_SIGN_BODY) &&
		    name_is(in->name, n, "x-amz-content-sha256")))
			skip = true;
		if (skip)
			continue;
		if (name_is(in->name, n, "host"))
			have_host = true;
		add_hent(p, in->name, in->value);
	}
	if (!have_host) {
		if (req->host == NULL || *req->host == '\0' ||
		    !valid_value(req->host))
			return -EINVAL;
		add_hent(p, "host", req->host);
	}
	add_hent(p, "x-amz-date", p->amz_date);
	if (req->flags & SIGV4_SIGN_BODY)
		add_hent(p, "x-amz-content-sha256", p->payload);
	if (token_is_signed(req, token))
		add_hent(p, "x-amz-security-token", token);

	for (i = 1; i < p->nh; i++) {
		struct hent t = p->h[i];
		for (j = i; j > 0 && hent_cmp(&p->h[j - 1], &t) > 0; j--)
			p->h[j] = p->h[j - 1];
		p->h[j] = t;
	}
	return 0;
}

static void
put_lcname(struct sink *k, const char *name, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		putch(k, (char)lc(name[i]));
}

/* Trimmed, with every run of blanks collapsed into one space. */
static void
put_value(struct sink *k, const char *v)
{
	bool	blank = false, any = false;

	for (; *v != '\0'; v++) {
		if (*v == ' ' || *v == '\t') {
			blank = true;
			continue;
		}
		if (blank && any)
			putch(k, ' ');
		putch(k, *v);
		blank = false;
		any = true;
	}
}

static void
put_signed_headers(struct sink *k, const struct prep *p)
{
	size_t	i;

	for (i = 0; i < p->nh; i++) {
		if (i > 0 && lc_cmp(p->h[i - 1].name, p->h[i - 1].nlen,
		    p->h[i].name, p->h[i].nlen) == 0)
			continue;
		if (i > 0)
			putch(k, ';');
		put_lcname(k, p->h[i].name, p->h[i].nlen);
	}
}

static void
put_path(struct sink *k, const char *path, size_t n)
{
	size_t	i;

	if (n == 0) {
		putch(k, '/');
		return;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = path[i];
		if (is_unreserved(c) || c == '/')
			putch(k, (char)c);
		else
			put_pct(k, c);
	}
}

/*
 * RFC 3986 5.2.4 dot-segment removal, plus the removal of empty segments
 * that AWS services want: botocore's remove_dot_segments().
 */
static size_t
normalize_path(const char *in, char *out)
{
	const char	*seg, *end;
	size_t		 len = 0, n;

	for (seg = in; *seg != '\0'; seg = *end ? end + 1 : end) {
		end = seg_end(seg, '/');
		n = end - seg;
		if (n == 0 || (n == 1 && seg[0] == '.'))
			continue;
		if (n == 2 && seg[0] == '.' && seg[1] == '.') {
			while (len > 0 && out[--len] != '/')
				;
			continue;
		}
		out[len++] = '/';
		memcpy(out + len, seg, n);
		len += n;
	}
	if (len == 0)
		out[len++] = '/';
	else if (in[strlen(in) - 1] == '/')
		out[len++] = '/';
	out[len] = '\0';
	return len;
}

static void
put_creq(struct sink *k, const struct prep *p, const struct sigv4_request *req)
{
	char	np[SIGV4_PATH_MAX + 2];
	size_t	i, n;

	for (i = 0; req->method[i] != '\0'; i++) {
		unsigned char c = req->method[i];
		putch(k, (char)((c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c));
	}
	putch(k, '\n');

	if (req->flags & SIGV4_NO_NORMALIZE)
		put_path(k, req->path, strlen(req->path));
	else {
		n = normalize_path(req->path, np);
		put_path(k, np, n);
	}
	putch(k, '\n');

	for (i = 0; i < p->nq; i++) {
		if (i > 0)
			putch(k, '&');
		put_enc_query(k, p->q[i].name, p->q[i].nlen);
		putch(k, '=');
		put_enc_query(k, p->q[i].value, p->q[i].vlen);
	}
	putch(k, '\n');

	for (i = 0; i < p->nh; i++) {
		bool dup = i > 0 && lc_cmp(p->h[i - 1].name, p->h[i - 1].nlen,
		    p->h[i].name, p->h[i].nlen) == 0;
		if (dup)
			putch(k, ',');
		else {
			if (i > 0)
				putch(k, '\n');
			put_lcname(k, p->h[i].name, p->h[i].nlen);
			putch(k, ':');
		}
		put_value(k, p->h[i].value);
	}
	if (p->nh > 0)
		putch(k, '\n');
	putch(k, '\n');

	put_signed_headers(k, p);
	putch(k, '\n');
	putstr(k, p->payload);
}

static int
write_sts(const struct sigv4_signer *s, const char *amz_date,
    const char *date, const char *creq_hex, char *buf, size_t size)
{
	struct sink	k = { .buf = buf, .size = size };

	putstr(&k, ALGORITHM "\n");
	putstr(&k, amz_date);
	putch(&k, '\n');
	putstr(&k, date);
	putch(&k, '/');
	putstr(&k, s->region);
	putch(&k, '/');
	putstr(&k, s->service);
	putstr(&k, "/" TERMINATOR "\n");
	putstr(&k, creq_hex);
	sink_finish(&k);
	return k.err;
}

static bool
valid_scope_part(const char *s, size_t max)
{
	size_t	n;

	for (n = 0; s[n] != '\0'; n++)
		if (!is_unreserved((unsigned char)s[n]) || s[n] == '~')
			return false;
	return n > 0 && n <= max;
}

int
sigv4_signer_init(struct sigv4_signer *s, const char *region,
    const char *service)
{
	if (s == NULL || region == NULL || service == NULL ||
	    !valid_scope_part(region, SIGV4_REGION_MAX) ||
	    !valid_scope_part(service, SIGV4_SERVICE_MAX))
		return -EINVAL;
	explicit_bzero(s, sizeof(*s));
	strcpy(s->region, region);
	strcpy(s->service, service);
	return 0;
}

void
sigv4_signer_wipe(struct sigv4_signer *s)
{
	if (s != NULL)
		explicit_bzero(s, sizeof(*s));
}

static int
check_creds(const struct sigv4_credentials *c)
{
	size_t	i;

	if (c == NULL || c->access_key_id == NULL ||
	    c->secret_access_key == NULL)
		return -EINVAL;
	/* The key id lands in "Credential=<id>/<scope>, ...". */
	for (i = 0; c->access_key_id[i] != '\0'; i++) {
		unsigned char ch = c->access_key_id[i];
		if (ch <= ' ' || ch >= 0x7f || ch == '/' || ch == ',')
			return -EINVAL;
	}
	if (i == 0 || i > SIGV4_AKID_MAX)
		return -EINVAL;
	i = strnlen(c->secret_access_key, SIGV4_SECRET_MAX + 1);
	if (i == 0 || i > SIGV4_SECRET_MAX)
		return -EINVAL;
	if (c->session_token != NULL && !valid_value(c->session_token))
		return -EINVAL;
	return 0;
}

/*
 * Put the signing key for `date` in key[], from the cache when it was
 * derived for this day and these credentials.
 */
static int
signing_key(struct sigv4_signer *s, const struct sigv4_credentials *c,
    const char *date, uint8_t key[32])
{
	char	ksecret[4 + SIGV4_SECRET_MAX];
	uint8_t	fp[32], k1[32], k2[32];
	size_t	slen = strlen(c->secret_access_key);
	int	r;

	memcpy(ksecret, "AWS4", 4);
	memcpy(ksecret + 4, c->secret_access_key, slen);
	if ((r = hmac(ksecret, 4 + slen, FP_MESSAGE, strlen(FP_MESSAGE),
	    fp)) < 0)
		goto out;
	if (s->key_valid && strcmp(s->key_date, date) == 0 &&
	    strcmp(s->key_akid, c->access_key_id) == 0 &&
	    CRYPTO_memcmp(s->key_secret_fp, fp, sizeof(fp)) == 0) {
		memcpy(key, s->key, 32);
		goto out;
	}

	s->key_valid = 0;
	if ((r = hmac(ksecret, 4 + slen, date, 8, k1)) < 0 ||
	    (r = hmac(k1, 32, s->region, strlen(s->region), k2)) < 0 ||
	    (r = hmac(k2, 32, s->service, strlen(s->service), k1)) < 0 ||
	    (r = hmac(k1, 32, TERMINATOR, strlen(TERMINATOR), key)) < 0)
		goto out;
	memcpy(s->key, key, 32);
	memcpy(s->key_secret_fp, fp, sizeof(fp));
	strcpy(s->key_date, date);
	strcpy(s->key_akid, c->access_key_id);
	s->key_valid = 1;
	s->key_derivations++;
out:
	if (r < 0) {
		explicit_bzero(s->key, sizeof(s->key));
		explicit_bzero(key, 32);
	}
	explicit_bzero(ksecret, sizeof(ksecret));
	explicit_bzero(fp, sizeof(fp));
	explicit_bzero(k1, sizeof(k1));
	explicit_bzero(k2, sizeof(k2));
	return r;
}

int
sigv4_sign(struct sigv4_signer *s, const struct sigv4_credentials *creds,
    const struct sigv4_request *req, time_t now, struct sigv4_out *out)
{
	struct prep	p;
	struct sink	k = { 0 };
	const char	*token;
	char		creq_hex[SIGV4_HEX_SIZE], sts[STS_MAX];
	char		sig_hex[SIGV4_HEX_SIZE];
	uint8_t		md[32], key[32], sig[32];
	unsigned int	mdlen = 0;
	int		r;

	if (s == NULL || out == NULL || s->region[0] == '\0')
		return -EINVAL;
	if ((r = check_creds(creds)) < 0)
		return r;
	token = creds->session_token;
	if (token != NULL && *token == '\0')
		token = NULL;
	if ((r = prep_request(&p, req, now, token)) < 0)
		return r;

	if ((k.md = EVP_MD_CTX_new()) == NULL)
		return -ENOMEM;
	if (EVP_DigestInit_ex(k.md, EVP_sha256(), NULL) != 1)
		k.err = -EIO;
	put_creq(&k, &p, req);
	if (k.err == 0 && (EVP_DigestFinal_ex(k.md, md, &mdlen) != 1 ||
	    mdlen != sizeof(md)))
		k.err = -EIO;
	EVP_MD_CTX_free(k.md);
	if (k.err < 0)
		return k.err;
	tohex(md, sizeof(md), creq_hex);

	if ((r = write_sts(s, p.amz_date, p.date, creq_hex, sts,
	    sizeof(sts))) < 0)
		return r;
	if ((r = signing_key(s, creds, p.date, key)) < 0)
		return r;
	r = hmac(key, sizeof(key), sts, strlen(sts), sig);
	explicit_bzero(key, sizeof(key));
	if (r < 0)
		return r;
	tohex(sig, sizeof(sig), sig_hex);

	k = (struct sink){ .buf = out->authorization,
	    .size = sizeof(out->authorization) };
	putstr(&k, ALGORITHM " Credential=");
	putstr(&k, creds->access_key_id);
	putch(&k, '/');
	putstr(&k, p.date);
	putch(&k, '/');
	putstr(&k, s->region);
	putch(&k, '/');
	putstr(&k, s->service);
	putstr(&k, "/" TERMINATOR ", SignedHeaders=");
	put_signed_headers(&k, &p);
	putstr(&k, ", Signature=");
	putstr(&k, sig_hex);
	sink_finish(&k);
	if (k.err < 0)
		return k.err;

	memcpy(out->amz_date, p.amz_date, sizeof(out->amz_date));
	out->nhdr = 0;
	out->hdr[out->nhdr++] = (struct sigv4_header){ "X-Amz-Date",
	    out->amz_date };
	out->content_sha256[0] = '\0';
	if (req->flags & SIGV4_SIGN_BODY) {
		memcpy(out->content_sha256, p.payload, SIGV4_HEX_SIZE);
		out->hdr[out->nhdr++] = (struct sigv4_header){
		    "X-Amz-Content-SHA256", out->content_sha256 };
	}
	if (token != NULL)
		out->hdr[out->nhdr++] = (struct sigv4_header){
		    "X-Amz-Security-Token", token };
	out->hdr[out->nhdr++] = (struct sigv4_header){ "Authorization",
	    out->authorization };
	return 0;
}

int
sigv4_canonical_request(const struct sigv4_request *req, time_t now,
    const char *session_token, char *buf, size_t size, size_t *lenp)
{
	struct prep	p;
	struct sink	k = { .buf = buf, .size = size };
	int		r;

	if (buf == NULL && size > 0)
		return -EINVAL;
	if (session_token != NULL && *session_token == '\0')
		session_token = NULL;
	if ((r = prep_request(&p, req, now, session_token)) < 0)
		return r;
	put_creq(&k, &p, req);
	sink_finish(&k);
	if (lenp != NULL)
		*lenp = k.len;
	return k.err;
}

int
sigv4_string_to_sign(const struct sigv4_signer *s, time_t now,
    const char *creq, size_t creq_len, char *buf, size_t size)
{
	char	amz[SIGV4_AMZ_DATE_SIZE], date[9], hex[SIGV4_HEX_SIZE];
	int	r;

	if (s == NULL || creq == NULL || buf == NULL)
		return -EINVAL;
	if ((r = format_dates(now, amz, date)) < 0 ||
	    (r = sha256_hex(creq, creq_len, hex)) < 0)
		return r;
	return write_sts(s, amz, date, hex, buf, size);
}
