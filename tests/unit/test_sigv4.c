/*
 * Unit tests for sigv4.
 *
 * The official AWS vectors are read straight from their files at test
 * time: the directory is argv[1], else $SIGV4_VECTORS, else
 * ../shared/reference/sigv4-vectors (relative to the repository root).
 * Cases are discovered by listing the directories, every one becomes its
 * own cmocka test, and a count test fails when a suite has fewer cases
 * than it should (so a missing or moved folder cannot pass).
 *
 * Suites:
 *   botocore/tests/unit/auth/aws4_testsuite/	<case>.req -> .creq .sts .authz
 *	(recursively: normalize-path/ and post-sts-token/ included)
 *   current/tests/aws-signing-test-suite/v4/	context.json + request.txt ->
 *	header-canonical-request.txt, header-string-to-sign.txt,
 *	header-signature.txt (and the added headers against
 *	header-signed-request.txt)
 *   derived-secretsmanager/			same layout as botocore
 */
#ifndef _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include <secretsfs/sigv4.h>

#define DEFAULT_VECTORS	"../shared/reference/sigv4-vectors"

#define BOTOCORE_DIR	"botocore/tests/unit/auth/aws4_testsuite"
#define CURRENT_DIR	"current/tests/aws-signing-test-suite/v4"
#define DERIVED_DIR	"derived-secretsmanager"

/* Floors: what the collection holds today (see its README, "Counts"). */
#define BOTOCORE_MIN	34
#define CURRENT_MIN	38
#define DERIVED_MIN	2

/* Fixed inputs of the classic/botocore suite (its README and test_sigv4.py). */
#define AKID		"AKIDEXAMPLE"
#define SECRET		"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define REGION		"us-east-1"
#define T_20150830	1440938160	/* 2015-08-30T12:36:00Z */

/*
 * The session token of a classic case when the .req does not carry it as
 * X-Amz-Security-Token: a fixed input stated in the collection's README
 * (botocore's own runner instead scrapes it from the expected .creq).
 */
static const struct {
	const char	*name;
	const char	*token;
} fixed_tokens[] = {
	{ "get-vanilla-with-session-token",
	  "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267" },
};

/*
 * Cases we cannot pass, each with why. Empty: every case passes. A case
 * listed here still runs and is counted, and its test fails if it starts
 * passing, so the list cannot go stale.
 */
static const struct {
	const char	*name;		/* "<suite>/<case>" */
	const char	*reason;
} known_failures[] = {
	{ NULL, NULL },
};

enum suite { S_BOTOCORE, S_CURRENT, S_DERIVED, S_COUNT };

static const char *const suite_names[S_COUNT] = {
	"botocore", "current-v4", "derived-secretsmanager",
};

struct vcase {
	enum suite	 suite;
	char		*dir;		/* the case's folder */
	char		*name;		/* relative to the suite, e.g. "a/b" */
	char		*test_name;	/* "<suite>/<name>" */
};

static const char	*vectors;
static struct vcase	*cases;
static size_t		 ncases, cases_cap;
static size_t		 found[S_COUNT];
static bool		 root_missing;

/* ---- small helpers ---- */

static char *
xasprintf(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

/* The whole file, NUL-terminated; NULL when it cannot be read. */
static char *
read_file(const char *path, size_t *lenp)
{
	FILE	*f;
	char	*buf;
	long	 n;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		return NULL;
	}
	if ((buf = malloc(n + 1)) == NULL)
		abort();
	if (fread(buf, 1, n, f) != (size_t)n) {
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	if (lenp != NULL)
		*lenp = n;
	return buf;
}

/* An expected-output file; a trailing newline is not part of the value. */
static char *
read_expected(const char *dir, const char *base, const char *suffix)
{
	char	*path = xasprintf("%s/%s%s", dir, base, suffix);
	char	*s = read_file(path, NULL);
	size_t	 n;

	if (s == NULL)
		fail_msg("cannot read %s", path);
	free(path);
	n = strlen(s);
	if (n > 0 && s[n - 1] == '\n')
		s[--n] = '\0';
	if (n > 0 && s[n - 1] == '\r')
		s[--n] = '\0';
	return s;
}

static bool
is_dir(const char *path)
{
	struct stat	st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool
is_file(const char *path)
{
	struct stat	st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int
strpcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the subdirectories of dir. */
static char **
list_subdirs(const char *dir, size_t *np)
{
	DIR		*d;
	struct dirent	*e;
	char		**v = NULL, *p;
	size_t		 n = 0;

	*np = 0;
	if ((d = opendir(dir)) == NULL)
		return NULL;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		p = xasprintf("%s/%s", dir, e->d_name);
		if (is_dir(p)) {
			if ((v = realloc(v, (n + 1) * sizeof(*v))) == NULL)
				abort();
			v[n++] = strdup(e->d_name);
		}
		free(p);
	}
	closedir(d);
	if (n > 1)
		qsort(v, n, sizeof(*v), strpcmp);
	*np = n;
	return v;
}

static void
add_case(enum suite s, const char *dir, const char *name)
{
	struct vcase	*c;

	if (ncases == cases_cap) {
		cases_cap = cases_cap ? 2 * cases_cap : 64;
		if ((cases = realloc(cases, cases_cap * sizeof(*cases))) ==
		    NULL)
			abort();
	}
	c = &cases[ncases++];
	c->suite = s;
	c->dir = strdup(dir);
	c->name = strdup(name);
	c->test_name = xasprintf("%s/%s", suite_names[s], name);
	found[s]++;
}

/* A folder is a case when it holds <its own name>.req; look below too. */
static void
walk_classic(enum suite s, const char *dir, const char *rel)
{
	char	**sub, *p, *r, *req;
	size_t	 n, i;
	const char *base;

	base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
	if (rel[0] != '\0') {
		req = xasprintf("%s/%s.req", dir, base);
		if (is_file(req))
			add_case(s, dir, rel);
		free(req);
	}
	sub = list_subdirs(dir, &n);
	for (i = 0; i < n; i++) {
		p = xasprintf("%s/%s", dir, sub[i]);
		r = rel[0] ? xasprintf("%s/%s", rel, sub[i]) : strdup(sub[i]);
		walk_classic(s, p, r);
		free(p);
		free(r);
		free(sub[i]);
	}
	free(sub);
}

static void
walk_current(const char *dir)
{
	char	**sub, *p, *ctx;
	size_t	 n, i;

	sub = list_subdirs(dir, &n);
	for (i = 0; i < n; i++) {
		p = xasprintf("%s/%s", dir, sub[i]);
		ctx = xasprintf("%s/context.json", p);
		if (is_file(ctx))
			add_case(S_CURRENT, p, sub[i]);
		free(ctx);
		free(p);
		free(sub[i]);
	}
	free(sub);
}

static void
discover(void)
{
	char	*p;

	if (!is_dir(vectors)) {
		root_missing = true;
		return;
	}
	p = xasprintf("%s/" BOTOCORE_DIR, vectors);
	walk_classic(S_BOTOCORE, p, "");
	free(p);
	p = xasprintf("%s/" CURRENT_DIR, vectors);
	walk_current(p);
	free(p);
	p = xasprintf("%s/" DERIVED_DIR, vectors);
	walk_classic(S_DERIVED, p, "");
	free(p);
}

/* ---- raw HTTP request files (.req, request.txt) ---- */

#define RAW_MAX_HEADERS	(SIGV4_MAX_HEADERS + 8)

struct rawreq {
	char			*method;
	char			*path;
	char			*query;		/* NULL when no '?' */
	struct sigv4_header	 h[RAW_MAX_HEADERS];
	char			*hbuf[RAW_MAX_HEADERS][2];	/* owned */
	size_t			 nh;
	const char		*body;
	size_t			 body_len;
	char			*file;
};

static void
rawreq_free(struct rawreq *r)
{
	size_t	i;

	for (i = 0; i < r->nh; i++) {
		free(r->hbuf[i][0]);
		free(r->hbuf[i][1]);
	}
	free(r->method);
	free(r->path);
	free(r->query);
	free(r->file);
}

/*
 * Parse a raw request as the suites write it: LF (or CRLF) line ends, a
 * request line whose target may hold spaces (get-space), header lines
 * "Name:value", obs-fold continuation lines starting with a blank
 * (get-header-value-multiline; unfolded into one value with a space, as
 * RFC 7230 3.2.4 allows a recipient to), then an optional blank line and
 * a body that runs to the end of the file with no newline of its own
 * (post-x-www-form-urlencoded*: "Param1=value1", 13 bytes).
 */
static int
rawreq_parse(const char *path, struct rawreq *r)
{
	char	*p, *eol, *line, *sp, *http, *q, *colon;
	size_t	 len, n;

	memset(r, 0, sizeof(*r));
	if ((r->file = read_file(path, &len)) == NULL)
		return -1;
	p = r->file;

	/* Request line. */
	eol = strchr(p, '\n');
	line = eol ? strndup(p, eol - p) : strdup(p);
	n = strlen(line);
	if (n > 0 && line[n - 1] == '\r')
		line[--n] = '\0';
	sp = strchr(line, ' ');
	http = NULL;
	for (q = line; (q = strstr(q, " HTTP/")) != NULL; q++)
		http = q;
	if (sp == NULL || http == NULL || http <= sp) {
		free(line);
		return -1;
	}
	r->method = strndup(line, sp - line);
	*http = '\0';
	if ((q = strchr(sp + 1, '?')) != NULL) {
		r->path = strndup(sp + 1, q - (sp + 1));
		r->query = strdup(q + 1);
	} else
		r->path = strdup(sp + 1);
	free(line);
	p = eol ? eol + 1 : p + strlen(p);

	/* Header lines, until a blank line or the end of the file. */
	while (*p != '\0') {
		eol = strchr(p, '\n');
		n = eol ? (size_t)(eol - p) : strlen(p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n == 0) {
			p = eol ? eol + 1 : p + strlen(p);
			r->body = p;
			r->body_len = len - (p - r->file);
			break;
		}
		line = strndup(p, n);
		if (line[0] == ' ' || line[0] == '\t') {
			char *v;

			if (r->nh == 0) {
				free(line);
				return -1;
			}
			v = xasprintf("%s %s", r->hbuf[r->nh - 1][1], line);
			free(r->hbuf[r->nh - 1][1]);
			r->hbuf[r->nh - 1][1] = v;
			r->h[r->nh - 1].value = v;
			free(line);
		} else {
			if ((colon = strchr(line, ':')) == NULL ||
			    r->nh == RAW_MAX_HEADERS) {
				free(line);
				return -1;
			}
			r->hbuf[r->nh][0] = strndup(line, colon - line);
			r->hbuf[r->nh][1] = strdup(colon + 1);
			r->h[r->nh].name = r->hbuf[r->nh][0];
			r->h[r->nh].value = r->hbuf[r->nh][1];
			r->nh++;
			free(line);
		}
		p = eol ? eol + 1 : p + n;
	}
	return 0;
}

static const char *
rawreq_header(const struct rawreq *r, const char *name)
{
	size_t	i;

	for (i = 0; i < r->nh; i++)
		if (strcasecmp(r->h[i].name, name) == 0)
			return r->h[i].value;
	return NULL;
}

/* ---- checking one case ---- */

struct inputs {
	struct sigv4_credentials	creds;
	const char			*region;
	const char			*service;
	time_t				 now;
	unsigned int			 flags;
};

struct results {
	char		*creq;
	char		*sts;
	struct sigv4_out out;
};

static void
results_free(struct results *res)
{
	free(res->creq);
	free(res->sts);
}

/* Run the three exported steps; fail_msg on any error code. */
static void
compute(const struct rawreq *raw, const struct inputs *in,
    struct results *res)
{
	struct sigv4_request	req = {
		.method = raw->method, .path = raw->path, .query = raw->query,
		.headers = raw->h, .nheaders = raw->nh, .body = raw->body,
		.body_len = raw->body_len, .flags = in->flags,
	};
	struct sigv4_signer	s;
	size_t			need = 0, len = 0;
	int			rc;

	memset(res, 0, sizeof(*res));
	rc = sigv4_canonical_request(&req, in->now, in->creds.session_token,
	    NULL, 0, &need);
	assert_int_equal(rc, -ENOSPC);
	res->creq = malloc(need + 1);
	assert_non_null(res->creq);
	rc = sigv4_canonical_request(&req, in->now, in->creds.session_token,
	    res->creq, need + 1, &len);
	assert_int_equal(rc, 0);
	assert_int_equal(len, need);

	assert_int_equal(sigv4_signer_init(&s, in->region, in->service), 0);
	res->sts = malloc(1024);
	assert_non_null(res->sts);
	rc = sigv4_string_to_sign(&s, in->now, res->creq, len, res->sts,
	    1024);
	assert_int_equal(rc, 0);

	rc = sigv4_sign(&s, &in->creds, &req, in->now, &res->out);
	assert_int_equal(rc, 0);
	sigv4_signer_wipe(&s);
}

static const char *
find_out(const struct sigv4_out *o, const char *name)
{
	size_t	i;

	for (i = 0; i < o->nhdr; i++)
		if (strcasecmp(o->hdr[i].name, name) == 0)
			return o->hdr[i].value;
	return NULL;
}

/* Every mismatch is reported; returns how many there were. */
static int
cmp_text(const char *what, const char *got, const char *want)
{
	if (strcmp(got, want) == 0)
		return 0;
	print_error("%s differs\n--- expected\n%s\n--- got\n%s\n---\n",
	    what, want, got);
	return 1;
}

static int
check_out_headers(const struct results *res, const struct inputs *in,
    const char *amz_date)
{
	const char	*v;
	int		 bad = 0;
	size_t		 want = 2;

	bad += cmp_text("X-Amz-Date", res->out.amz_date, amz_date);
	v = find_out(&res->out, "X-Amz-Security-Token");
	if (in->creds.session_token != NULL) {
		want++;
		if (v == NULL || strcmp(v, in->creds.session_token) != 0) {
			print_error("X-Amz-Security-Token not added\n");
			bad++;
		}
	} else if (v != NULL) {
		print_error("X-Amz-Security-Token added without a token\n");
		bad++;
	}
	if (in->flags & SIGV4_SIGN_BODY)
		want++;
	if (res->out.nhdr != want) {
		print_error("%zu headers added, expected %zu\n",
		    res->out.nhdr, want);
		bad++;
	}
	if (strcmp(res->out.hdr[res->out.nhdr - 1].name, "Authorization")) {
		print_error("Authorization is not the last header added\n");
		bad++;
	}
	return bad;
}

static int
run_classic(const struct vcase *c)
{
	struct rawreq	 raw;
	struct inputs	 in = { .creds = { AKID, SECRET, NULL },
			    .region = REGION, .now = T_20150830 };
	struct results	 res;
	const char	*base;
	char		*path, *creq, *sts, *authz;
	size_t		 i;
	int		 bad = 0;

	base = strrchr(c->dir, '/') + 1;
	in.service = c->suite == S_DERIVED ? "secretsmanager" : "service";
	path = xasprintf("%s/%s.req", c->dir, base);
	if (rawreq_parse(path, &raw) < 0)
		fail_msg("cannot parse %s", path);
	free(path);

	/*
	 * A token carried in the raw request is the credential's: pass it as
	 * such (the signer then replaces the header with its own, signed).
	 */
	in.creds.session_token = rawreq_header(&raw, "X-Amz-Security-Token");
	for (i = 0; i < sizeof(fixed_tokens) / sizeof(fixed_tokens[0]); i++)
		if (strcmp(c->name, fixed_tokens[i].name) == 0)
			in.creds.session_token = fixed_tokens[i].token;

	compute(&raw, &in, &res);
	creq = read_expected(c->dir, base, ".creq");
	sts = read_expected(c->dir, base, ".sts");
	authz = read_expected(c->dir, base, ".authz");
	bad += cmp_text("canonical request", res.creq, creq);
	bad += cmp_text("string to sign", res.sts, sts);
	bad += cmp_text("Authorization", res.out.authorization, authz);
	bad += check_out_headers(&res, &in, "20150830T123600Z");
	free(creq);
	free(sts);
	free(authz);
	results_free(&res);
	rawreq_free(&raw);
	return bad;
}

static bool
json_flag(json_t *ctx, const char *key, bool dflt)
{
	json_t	*v = json_object_get(ctx, key);

	if (v == NULL || json_is_null(v))
		return dflt;
	if (!json_is_boolean(v))
		fail_msg("context.json: %s is not a boolean", key);
	return json_is_true(v);
}

static const char *
json_str(json_t *obj, const char *key, bool required)
{
	json_t	*v = json_object_get(obj, key);

	if (v == NULL && !required)
		return NULL;
	if (!json_is_string(v))
		fail_msg("context.json: %s missing or not a string", key);
	return json_string_value(v);
}

/*
 * Every header we add must be in header-signed-request.txt with the same
 * value, and every header there that the request did not have must be
 * one we add.
 */
static int
check_signed_request(const struct vcase *c, const struct rawreq *raw,
    const struct results *res)
{
	struct rawreq	 sreq;
	char		*path;
	const char	*v;
	size_t		 i;
	int		 bad = 0;

	path = xasprintf("%s/header-signed-request.txt", c->dir);
	if (rawreq_parse(path, &sreq) < 0)
		fail_msg("cannot parse %s", path);
	free(path);
	for (i = 0; i < res->out.nhdr; i++) {
		v = rawreq_header(&sreq, res->out.hdr[i].name);
		if (v == NULL || strcmp(v, res->out.hdr[i].value) != 0) {
			print_error("signed request: %s missing or differs\n",
			    res->out.hdr[i].name);
			bad++;
		}
	}
	for (i = 0; i < sreq.nh; i++)
		if (rawreq_header(raw, sreq.h[i].name) == NULL &&
		    find_out(&res->out, sreq.h[i].name) == NULL) {
			print_error("signed request: %s not added by us\n",
			    sreq.h[i].name);
			bad++;
		}
	rawreq_free(&sreq);
	return bad;
}

static int
run_current(const struct vcase *c)
{
	struct rawreq	 raw;
	struct inputs	 in = { 0 };
	struct results	 res;
	json_error_t	 jerr;
	json_t		*ctx, *cr;
	struct tm	 tm = { 0 };
	const char	*ts, *sig;
	char		*path, *creq, *sts, *want_sig;
	int		 bad = 0;

	path = xasprintf("%s/context.json", c->dir);
	if ((ctx = json_load_file(path, 0, &jerr)) == NULL)
		fail_msg("%s:%d: %s", path, jerr.line, jerr.text);
	free(path);
	if ((cr = json_object_get(ctx, "credentials")) == NULL)
		fail_msg("context.json: no credentials");
	in.creds.access_key_id = json_str(cr, "access_key_id", true);
	in.creds.secret_access_key = json_str(cr, "secret_access_key", true);
	in.creds.session_token = json_str(cr, "token", false);
	in.region = json_str(ctx, "region", true);
	in.service = json_str(ctx, "service", true);
	ts = json_str(ctx, "timestamp", true);
	if (strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm) == NULL)
		fail_msg("context.json: bad timestamp %s", ts);
	in.now = timegm(&tm);
	if (!json_flag(ctx, "normalize", true))
		in.flags |= SIGV4_NO_NORMALIZE;
	if (json_flag(ctx, "sign_body", false))
		in.flags |= SIGV4_SIGN_BODY;
	if (json_flag(ctx, "omit_session_token", false))
		in.flags |= SIGV4_UNSIGNED_TOKEN;

	path = xasprintf("%s/request.txt", c->dir);
	if (rawreq_parse(path, &raw) < 0)
		fail_msg("cannot parse %s", path);
	free(path);

	compute(&raw, &in, &res);
	creq = read_expected(c->dir, "header-canonical-request", ".txt");
	sts = read_expected(c->dir, "header-string-to-sign", ".txt");
	want_sig = read_expected(c->dir, "header-signature", ".txt");
	bad += cmp_text("canonical request", res.creq, creq);
	bad += cmp_text("string to sign", res.sts, sts);
	sig = strstr(res.out.authorization, ", Signature=");
	bad += cmp_text("signature", sig ? sig + 12 : "", want_sig);
	bad += check_out_headers(&res, &in, res.out.amz_date);
	bad += check_signed_request(c, &raw, &res);
	free(creq);
	free(sts);
	free(want_sig);
	results_free(&res);
	rawreq_free(&raw);
	json_decref(ctx);
	return bad;
}

static void
test_vector(void **state)
{
	const struct vcase	*c = *state;
	const char		*reason = NULL;
	size_t			 i;
	int			 bad;

	for (i = 0; known_failures[i].name != NULL; i++)
		if (strcmp(known_failures[i].name, c->test_name) == 0)
			reason = known_failures[i].reason;
	bad = c->suite == S_CURRENT ? run_current(c) : run_classic(c);
	if (reason != NULL) {
		print_message("known failure (%s): %s\n", c->test_name,
		    reason);
		if (bad == 0)
			fail_msg("%s passes now: drop it from known_failures",
			    c->test_name);
		return;
	}
	assert_int_equal(bad, 0);
}

static void
test_vector_counts(void **state)
{
	(void)state;
	if (root_missing)
		fail_msg("vector directory %s not found (pass it as argv[1] "
		    "or SIGV4_VECTORS)", vectors);
	print_message("vectors in %s: botocore %zu, current v4 %zu, "
	    "derived %zu\n", vectors, found[S_BOTOCORE], found[S_CURRENT],
	    found[S_DERIVED]);
	assert_true(found[S_BOTOCORE] >= BOTOCORE_MIN);
	assert_true(found[S_CURRENT] >= CURRENT_MIN);
	assert_true(found[S_DERIVED] >= DERIVED_MIN);
	assert_int_equal(ncases, found[S_BOTOCORE] + found[S_CURRENT] +
	    found[S_DERIVED]);
}

/* ---- the signer itself ---- */

static const struct sigv4_header sm_headers[] = {
	{ "Content-Type", "application/x-amz-json-1.1" },
	{ "X-Amz-Target", "secretsmanager.GetSecretValue" },
};
static const char sm_body[] = "{\"SecretId\": \"MyTestDatabaseSecret\"}";
#define SM_TOKEN "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4H" \
	"IZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/" \
	"qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ" \
	"0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0i" \
	"PPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJab" \
	"IQwj2ICCR/oLxBA=="

static struct sigv4_request
sm_request(void)
{
	return (struct sigv4_request){
		.method = "POST", .path = "/", .headers = sm_headers,
		.nheaders = 2, .host = "secretsmanager.us-east-1.amazonaws.com",
		.body = sm_body, .body_len = strlen(sm_body),
	};
}

static void
sign_ok(struct sigv4_signer *s, const struct sigv4_credentials *cr,
    const struct sigv4_request *req, time_t now, struct sigv4_out *out)
{
	assert_int_equal(sigv4_sign(s, cr, req, now, out), 0);
}

/*
 * The worked example of backend-api.md B4, built the way the AWS backend
 * will build it: no Host header, the host given separately.
 */
static void
test_secretsmanager_example(void **state)
{
	struct sigv4_signer		s;
	struct sigv4_credentials	cr = { AKID, SECRET, NULL };
	struct sigv4_request		req = sm_request();
	struct sigv4_out		out;

	(void)state;
	assert_int_equal(sigv4_signer_init(&s, REGION, "secretsmanager"), 0);
	sign_ok(&s, &cr, &req, T_20150830, &out);
	assert_string_equal(out.authorization, "AWS4-HMAC-SHA256 "
	    "Credential=AKIDEXAMPLE/20150830/us-east-1/secretsmanager/"
	    "aws4_request, SignedHeaders=content-type;host;x-amz-date;"
	    "x-amz-target, Signature=f3aff68bc0f53e0501b2692ed185ab4e78df2c5"
	    "62d7eff6384dc0fb657eb4eca");
	assert_int_equal(out.nhdr, 2);
	assert_string_equal(out.hdr[0].name, "X-Amz-Date");
	assert_string_equal(out.hdr[0].value, "20150830T123600Z");
	assert_string_equal(out.hdr[1].name, "Authorization");

	cr.session_token = SM_TOKEN;
	sign_ok(&s, &cr, &req, T_20150830, &out);
	assert_non_null(strstr(out.authorization, "SignedHeaders=content-type;"
	    "host;x-amz-date;x-amz-security-token;x-amz-target, Signature="
	    "d9f18bfb0daeccd4bd0bfdd9a180bf01"
	    "34430364223e72355e1ca9819450e37e"));
	assert_int_equal(out.nhdr, 3);
	assert_string_equal(out.hdr[1].name, "X-Amz-Security-Token");
	assert_ptr_equal(out.hdr[1].value, cr.session_token);
	sigv4_signer_wipe(&s);
}

static void
test_cache_reuse(void **state)
{
	struct sigv4_signer		s, fresh;
	struct sigv4_credentials	cr = { AKID, SECRET, NULL };
	struct sigv4_request		req = sm_request();
	struct sigv4_out		a, b, c;

	(void)state;
	assert_int_equal(sigv4_signer_init(&s, REGION, "secretsmanager"), 0);
	assert_int_equal(s.key_derivations, 0);
	sign_ok(&s, &cr, &req, T_20150830, &a);
	assert_int_equal(s.key_derivations, 1);
	sign_ok(&s, &cr, &req, T_20150830, &b);
	assert_int_equal(s.key_derivations, 1);	/* cached */
	assert_string_equal(a.authorization, b.authorization);

	assert_int_equal(sigv4_signer_init(&fresh, REGION, "secretsmanager"),
	    0);
	sign_ok(&fresh, &cr, &req, T_20150830, &c);
	assert_int_equal(fresh.key_derivations, 1);
	assert_string_equal(a.authorization, c.authorization);

	/* Later the same day: same key, a new signature. */
	sign_ok(&s, &cr, &req, T_20150830 + 3600, &b);
	assert_int_equal(s.key_derivations, 1);
	assert_string_not_equal(a.authorization, b.authorization);
	sigv4_signer_wipe(&s);
	sigv4_signer_wipe(&fresh);
}

static void
test_cache_rederived_on_new_day(void **state)
{
	struct sigv4_signer		s, fresh;
	struct sigv4_credentials	cr = { AKID, SECRET, NULL };
	struct sigv4_request		req = sm_request();
	struct sigv4_out		a, b, c;
	uint8_t				day1_key[32];

	(void)state;
	assert_int_equal(sigv4_signer_init(&s, REGION, "secretsmanager"), 0);
	sign_ok(&s, &cr, &req, T_20150830, &a);
	assert_string_equal(s.key_date, "20150830");
	memcpy(day1_key, s.key, sizeof(day1_key));

	/* 11:24 later: 2015-08-31T00:00:00Z, the next UTC day. */
	sign_ok(&s, &cr, &req, T_20150830 + 11 * 3600 + 24 * 60, &b);
	assert_int_equal(s.key_derivations, 2);
	assert_string_equal(s.key_date, "20150831");
	assert_memory_not_equal(s.key, day1_key, sizeof(day1_key));
	assert_non_null(strstr(b.authorization, "/20150831/us-east-1/"));

	assert_int_equal(sigv4_signer_init(&fresh, REGION, "secretsmanager"),
	    0);
	sign_ok(&fresh, &cr, &req, T_20150830 + 11 * 3600 + 24 * 60, &c);
	assert_string_equal(b.authorization, c.authorization);
	assert_memory_equal(s.key, fresh.key, sizeof(s.key));

	/* Back to the first day: derived again, same signature as before. */
	sign_ok(&s, &cr, &req, T_20150830, &b);
	assert_int_equal(s.key_derivations, 3);
	assert_string_equal(a.authorization, b.authorization);
	sigv4_signer_wipe(&s);
	sigv4_signer_wipe(&fresh);
}

/* A new secret under the same key id must not reuse the cached key. */
static void
test_cache_rederived_on_new_secret(void **state)
{
	struct sigv4_signer		s, fresh;
	struct sigv4_credentials	cr = { AKID, SECRET, NULL };
	struct sigv4_credentials	cr2 = { AKID, "another-secret", NULL };
	struct sigv4_request		req = sm_request();
	struct sigv4_out		a, b, c;

	(void)state;
	assert_int_equal(sigv4_signer_init(&s, REGION, "secretsmanager"), 0);
	sign_ok(&s, &cr, &req, T_20150830, &a);
	sign_ok(&s, &cr2, &req, T_20150830, &b);
	assert_int_equal(s.key_derivations, 2);
	assert_string_not_equal(a.authorization, b.authorization);
	assert_int_equal(sigv4_signer_init(&fresh, REGION, "secretsmanager"),
	    0);
	sign_ok(&fresh, &cr2, &req, T_20150830, &c);
	assert_string_equal(b.authorization, c.authorization);

	/* And a new key id with the same secret. */
	cr2 = (struct sigv4_credentials){ "AKIDOTHER", SECRET, NULL };
	sign_ok(&s, &cr2, &req, T_20150830, &b);
	assert_int_equal(s.key_derivations, 3);
	sigv4_signer_wipe(&s);
	sigv4_signer_wipe(&fresh);
}

static void
test_wipe(void **state)
{
	struct sigv4_signer		s, zero;
	struct sigv4_credentials	cr = { AKID, SECRET, NULL };
	struct sigv4_request		req = sm_request();
	struct sigv4_out		out;

	(void)state;
	memset(&out, 0, sizeof(out));
	assert_int_equal(sigv4_signer_init(&s, REGION, "secretsmanager"), 0);
	sign_ok(&s, &cr, &req, T_20150830, &out);
	/* The secret itself is nowhere in the signer or the output. */
	assert_null(memmem(&s, sizeof(s), SECRET, strlen(SECRET)));
	assert_null(memmem(&out, sizeof(out), SECRET, strlen(SECRET)));
	assert_int_equal(s.key_valid, 1);
	sigv4_signer_wipe(&s);
	memset(&zero, 0, sizeof(zero));
	assert_memory_equal(&s, &zero, sizeof(s));
	sigv4_signer_wipe(NULL);
}

static void
creq_of(const struct sigv4_request *req, const char *token, char *buf,
    size_t size)
{
	assert_int_equal(sigv4_canonical_request(req, T_20150830, token, buf,
	    size, NULL), 0);
}

static void
test_unsigned_and_replaced_headers(void **state)
{
	static const struct sigv4_header noisy[] = {
		{ "Host", "example.amazonaws.com" },
		{ "User-Agent", "secretsfs/1" },
		{ "Connection", "keep-alive" },
		{ "Expect", "100-continue" },
		{ "Keep-Alive", "timeout=5" },
		{ "Proxy-Authenticate", "x" },
		{ "Proxy-Authorization", "x" },
		{ "TE", "trailers" },
		{ "Trailer", "x" },
		{ "Transfer-Encoding", "chunked" },
		{ "Upgrade", "h2c" },
		{ "X-Amzn-Trace-Id", "Root=1-0-0" },
		{ "Authorization", "stale" },
		{ "X-Amz-Date", "19990101T000000Z" },
		{ "X-Amz-Security-Token", "stale-token" },
	};
	struct sigv4_request	req = {
		.method = "GET", .path = "/", .headers = noisy,
		.nheaders = sizeof(noisy) / sizeof(noisy[0]),
	};
	struct sigv4_request	plain = {
		.method = "GET", .path = "/", .host = "example.amazonaws.com",
	};
	char			a[1024], b[1024];

	(void)state;
	creq_of(&req, "tok", a, sizeof(a));
	creq_of(&plain, "tok", b, sizeof(b));
	assert_string_equal(a, b);
	assert_non_null(strstr(a, "\nhost;x-amz-date;x-amz-security-token\n"));
	assert_non_null(strstr(a, "x-amz-security-token:tok\n"));
	assert_null(strstr(a, "stale"));
	assert_null(strstr(a, "1999"));

	/* Without a token, a caller's token header is just a header. */
	creq_of(&req, NULL, a, sizeof(a));
	assert_non_null(strstr(a, "x-amz-security-token:stale-token\n"));

	/* Unsigned token: emitted, not signed. */
	plain.flags = SIGV4_UNSIGNED_TOKEN;
	creq_of(&plain, "tok", a, sizeof(a));
	assert_null(strstr(a, "x-amz-security-token"));
}

static void
test_sign_body_and_order(void **state)
{
	struct sigv4_signer		s;
	struct sigv4_credentials	cr = { AKID, SECRET, "tok" };
	struct sigv4_request		req = sm_request();
	struct sigv4_out		out;
	char				buf[1024];

	(void)state;
	req.flags = SIGV4_SIGN_BODY;
	assert_int_equal(sigv4_signer_init(&s, REGION, "secretsmanager"), 0);
	sign_ok(&s, &cr, &req, T_20150830, &out);
	assert_int_equal(out.nhdr, 4);
	assert_string_equal(out.hdr[0].name, "X-Amz-Date");
	assert_string_equal(out.hdr[1].name, "X-Amz-Content-SHA256");
	assert_string_equal(out.hdr[1].value, "280408a17b3c866c880e88518feff"
	    "9a8bf11cfd7a9d991b724016629481aacef");
	assert_string_equal(out.hdr[2].name, "X-Amz-Security-Token");
	assert_string_equal(out.hdr[3].name, "Authorization");
	assert_non_null(strstr(out.authorization, "SignedHeaders=content-type;"
	    "host;x-amz-content-sha256;x-amz-date;x-amz-security-token;"
	    "x-amz-target, "));
	creq_of(&req, "tok", buf, sizeof(buf));
	assert_non_null(strstr(buf, "\nx-amz-content-sha256:280408a17b3c"));
	sigv4_signer_wipe(&s);
}

static void
test_paths_and_query(void **state)
{
	static const struct {
		const char	*path;
		unsigned int	 flags;
		const char	*want;
	} paths[] = {
		{ "", 0, "/" },
		{ "", SIGV4_NO_NORMALIZE, "/" },
		{ "/a/b/../../../c", 0, "/c" },
		{ "/a/./b/", 0, "/a/b/" },
		{ "/a/../b", SIGV4_NO_NORMALIZE, "/a/../b" },
		{ "/a%2Fb", 0, "/a%252Fb" },	/* double encoding */
		{ "/x y+z", 0, "/x%20y%2Bz" },
	};
	static const struct {
		const char	*query;
		const char	*want;
	} queries[] = {
		{ "", "" },
		{ "b=2&a=1", "a=1&b=2" },
		{ "a&&b=", "a=&b=" },
		{ "a=x y&a=%41", "a=A&a=x%20y" },
		{ "k=%e1%88%b4&k-=1", "k=%E1%88%B4&k-=1" },
		{ "a=1+2", "a=1%2B2" },
	};
	struct sigv4_request	req = { .method = "get", .host = "h" };
	char			buf[512], want[512];
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		req.path = paths[i].path;
		req.flags = paths[i].flags;
		creq_of(&req, NULL, buf, sizeof(buf));
		snprintf(want, sizeof(want), "GET\n%s\n\n", paths[i].want);
		assert_memory_equal(buf, want, strlen(want));
	}
	req.path = "/";
	req.flags = 0;
	for (i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		req.query = queries[i].query;
		creq_of(&req, NULL, buf, sizeof(buf));
		snprintf(want, sizeof(want), "GET\n/\n%s\nhost:h\n",
		    queries[i].want);
		assert_memory_equal(buf, want, strlen(want));
	}
}

static void
test_errors(void **state)
{
	struct sigv4_signer		s;
	struct sigv4_credentials	cr = { AKID, SECRET, NULL };
	struct sigv4_header		h[SIGV4_MAX_HEADERS + 1];
	struct sigv4_request		req = { .method = "GET", .path = "/",
					    .host = "h" };
	struct sigv4_out		out;
	char				buf[512];
	size_t				i, need;

	(void)state;
#define CREQ(r) sigv4_canonical_request(r, T_20150830, NULL, buf, \
	sizeof(buf), NULL)
	assert_int_equal(CREQ(&req), 0);

	req.path = "a";
	assert_int_equal(CREQ(&req), -EINVAL);
	req.path = "/a?b=1";
	assert_int_equal(CREQ(&req), -EINVAL);
	req.path = "/a\nb";
	assert_int_equal(CREQ(&req), -EINVAL);
	req.path = "/";
	req.query = "a=%zz";
	assert_int_equal(CREQ(&req), -EINVAL);
	req.query = "a=%4";
	assert_int_equal(CREQ(&req), -EINVAL);
	req.query = NULL;
	req.method = "GE T";
	assert_int_equal(CREQ(&req), -EINVAL);
	req.method = "GET";
	req.host = NULL;
	assert_int_equal(CREQ(&req), -EINVAL);	/* no host at all */
	req.host = "h";
	h[0] = (struct sigv4_header){ "X-A", "v\r\nX-Injected: 1" };
	req.headers = h;
	req.nheaders = 1;
	assert_int_equal(CREQ(&req), -EINVAL);
	h[0] = (struct sigv4_header){ "X A", "v" };
	assert_int_equal(CREQ(&req), -EINVAL);
	h[0] = (struct sigv4_header){ "", "v" };
	assert_int_equal(CREQ(&req), -EINVAL);
	for (i = 0; i < SIGV4_MAX_HEADERS + 1; i++)
		h[i] = (struct sigv4_header){ "X-A", "twenty-bytes-value.." };
	req.nheaders = SIGV4_MAX_HEADERS + 1;
	assert_int_equal(CREQ(&req), -E2BIG);
	req.nheaders = SIGV4_MAX_HEADERS;
	assert_int_equal(sigv4_canonical_request(&req, T_20150830, NULL, buf,
	    sizeof(buf), &need), -ENOSPC);
	assert_true(need > sizeof(buf));
	req.nheaders = 0;
	req.body_len = 3;
	assert_int_equal(CREQ(&req), -EINVAL);	/* length without a body */
	req.body_len = 0;
	assert_int_equal(sigv4_canonical_request(&req, T_20150830, NULL, buf,
	    5, &need), -ENOSPC);
	assert_int_equal(sigv4_canonical_request(&req, T_20150830, NULL, buf,
	    need, NULL), -ENOSPC);	/* no room for the NUL */
	assert_int_equal(sigv4_canonical_request(&req, T_20150830, NULL, buf,
	    need + 1, NULL), 0);
	assert_int_equal(strlen(buf), need);
#undef CREQ

	assert_int_equal(sigv4_signer_init(&s, "", "svc"), -EINVAL);
	assert_int_equal(sigv4_signer_init(&s, "us/east", "svc"), -EINVAL);
	assert_int_equal(sigv4_signer_init(&s, REGION, "a b"), -EINVAL);
	assert_int_equal(sigv4_signer_init(&s, REGION, "service"), 0);
	cr.access_key_id = "AKID/X";
	assert_int_equal(sigv4_sign(&s, &cr, &req, T_20150830, &out),
	    -EINVAL);
	cr.access_key_id = "";
	assert_int_equal(sigv4_sign(&s, &cr, &req, T_20150830, &out),
	    -EINVAL);
	cr.access_key_id = AKID;
	cr.secret_access_key = "";
	assert_int_equal(sigv4_sign(&s, &cr, &req, T_20150830, &out),
	    -EINVAL);
	cr.secret_access_key = SECRET;
	cr.session_token = "tok\n";
	assert_int_equal(sigv4_sign(&s, &cr, &req, T_20150830, &out),
	    -EINVAL);
	cr.session_token = NULL;
	assert_int_equal(sigv4_sign(&s, &cr, &req, T_20150830, &out), 0);
	assert_int_equal(sigv4_string_to_sign(&s, T_20150830, "x", 1, buf,
	    20), -ENOSPC);
	sigv4_signer_wipe(&s);
}

int
main(int argc, char **argv)
{
	struct CMUnitTest	 fixed[] = {
		cmocka_unit_test(test_vector_counts),
		cmocka_unit_test(test_secretsmanager_example),
		cmocka_unit_test(test_cache_reuse),
		cmocka_unit_test(test_cache_rederived_on_new_day),
		cmocka_unit_test(test_cache_rederived_on_new_secret),
		cmocka_unit_test(test_wipe),
		cmocka_unit_test(test_unsigned_and_replaced_headers),
		cmocka_unit_test(test_sign_body_and_order),
		cmocka_unit_test(test_paths_and_query),
		cmocka_unit_test(test_errors),
	};
	struct CMUnitTest	*tests;
	size_t			 nfixed = sizeof(fixed) / sizeof(fixed[0]);
	size_t			 i;
	int			 rc;

	if (argc > 1)
		vectors = argv[1];
	else if ((vectors = getenv("SIGV4_VECTORS")) == NULL ||
	    *vectors == '\0')
		vectors = DEFAULT_VECTORS;
	discover();

	if ((tests = calloc(nfixed + ncases, sizeof(*tests))) == NULL)
		abort();
	memcpy(tests, fixed, sizeof(fixed));
	for (i = 0; i < ncases; i++) {
		tests[nfixed + i] = (struct CMUnitTest){
			.name = cases[i].test_name,
			.test_func = test_vector,
			.initial_state = &cases[i],
		};
	}
	rc = _cmocka_run_group_tests("sigv4", tests, nfixed + ncases, NULL,
	    NULL);
	for (i = 0; i < ncases; i++) {
		free(cases[i].dir);
		free(cases[i].name);
		free(cases[i].test_name);
	}
	free(cases);
	free(tests);
	return rc;
}
