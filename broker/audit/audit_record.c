/*
 * The audit record and its MAC, shared by the writer (audit.c) and the
 * verifier (auditlog.c): field names, the keys, the line check, and the
 * fixed-field writer that builds a record byte for byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <jansson.h>

#include <secretsfs/audit.h>
#include <secretsfs/kubelet.h>
#include <secretsfs/secfile.h>
#include <secretsfs/secmem.h>

#include "audit_int.h"

#define MAC_PREFIX	",\"mac\":\""

enum ftype { FT_STR, FT_NUM, FT_OUTCOME };

static const struct {
	const char	*name;
	enum ftype	 type;
	size_t		 max;
} fields[AUDIT_F__MAX] = {
	[AUDIT_F_SECRET]	= { "secret",		FT_STR,	AUDIT_STR_MAX },
	[AUDIT_F_BACKEND]	= { "backend",		FT_STR,	AUDIT_STR_MAX },
	[AUDIT_F_REF]		= { "ref",		FT_STR,	AUDIT_STR_MAX },
	[AUDIT_F_VERSION]	= { "version",		FT_STR,	AUDIT_STR_MAX },
	[AUDIT_F_OLD_VERSION]	= { "old_version",	FT_STR,	AUDIT_STR_MAX },
	[AUDIT_F_NEW_VERSION]	= { "new_version",	FT_STR,	AUDIT_STR_MAX },
	[AUDIT_F_METHOD]	= { "method",		FT_STR,	AUDIT_STR_MAX },
	[AUDIT_F_ACTION]	= { "action",		FT_STR,	AUDIT_STR_MAX },
	[AUDIT_F_OUTCOME]	= { "outcome",		FT_OUTCOME, 0 },
	[AUDIT_F_ERRNO]		= { "errno",		FT_NUM,	0 },
	[AUDIT_F_STATUS]	= { "status",		FT_NUM,	0 },
	[AUDIT_F_RULE]		= { "rule",		FT_STR,	AUDIT_STR_MAX },
	[AUDIT_F_REASON]	= { "reason",		FT_STR,	AUDIT_REASON_MAX },
	[AUDIT_F_TTL]		= { "ttl",		FT_NUM,	0 },
	[AUDIT_F_AGE_MS]	= { "age_ms",		FT_NUM,	0 },
	[AUDIT_F_CONFIG]	= { "config",		FT_STR,	AUDIT_STR_MAX },
	[AUDIT_F_TARGET]	= { "target",		FT_STR,	AUDIT_STR_MAX },
	[AUDIT_F_COUNT]		= { "count",		FT_NUM,	0 },
	[AUDIT_F_NAMES_HASH]	= { "names_hash",	FT_STR,	AUDIT_STR_MAX },
};

static const char *const events[AUDIT_EV__MAX] = {
	[AUDIT_EV_ACCESS]	 = "access",
	[AUDIT_EV_LOOKUP_DENIED] = "lookup_denied",
	[AUDIT_EV_ROTATE]	 = "rotate",
	[AUDIT_EV_BACKEND_ERROR] = "backend_error",
	[AUDIT_EV_AUTH]		 = "auth",
	[AUDIT_EV_START]	 = "start",
	[AUDIT_EV_STOP]		 = "stop",
	[AUDIT_EV_RELOAD]	 = "reload",
	[AUDIT_EV_REPAIR]	 = "repair",
	[AUDIT_EV_STALE]	 = "stale",
	[AUDIT_EV_FETCHER]	 = "fetcher",
	[AUDIT_EV_DENIED_SUMMARY] = "denied_summary",
};

static const char *const outcomes[AUDIT_OUTCOME__MAX] = {
	[AUDIT_OUTCOME_ALLOW]	= "allow",
	[AUDIT_OUTCOME_DENY]	= "deny",
	[AUDIT_OUTCOME_ERROR]	= "error",
	[AUDIT_OUTCOME_OK]	= "ok",
};

bool
audit_field_is_outcome(enum audit_field f)
{
	return (unsigned)f < AUDIT_F__MAX && fields[f].type == FT_OUTCOME;
}

const char *
audit_field_name(enum audit_field f)
{
	if ((unsigned)f >= AUDIT_F__MAX)
		return NULL;
	return fields[f].name;
}

const char *
audit_event_name(enum audit_event_type ev)
{
	if ((unsigned)ev >= AUDIT_EV__MAX)
		return NULL;
	return events[ev];
}

const char *
audit_outcome_name(enum audit_outcome o)
{
	if ((unsigned)o >= AUDIT_OUTCOME__MAX)
		return NULL;
	return outcomes[o];
}

/* ------------------------------------------------------------------ */
/* Keys and MACs                                                      */

static void
hex(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static bool
is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Takes ownership of the secmem block `bytes`. */
static struct audit_key *
key_adopt(uint8_t *bytes, size_t len)
{
	struct audit_key	*k;
	EVP_MAC			*mac;
	uint8_t			 md[EVP_MAX_MD_SIZE];
	unsigned int		 mdlen;
	OSSL_PARAM		 params[2];

	if ((k = calloc(1, sizeof(*k))) == NULL) {
		secmem_free(bytes);
		return NULL;
	}
	k->bytes = bytes;
	k->len = len;
	if (EVP_Digest(bytes, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		goto fail;
	hex(k->id, md, AUDIT_KEY_ID_HEX / 2);
	OPENSSL_cleanse(md, sizeof(md));

	if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		goto fail;
	k->ctx = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac);
	if (k->ctx == NULL)
		goto fail;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(k->ctx, bytes, len, params) != 1)
		goto fail;
	return k;
fail:
	audit_key_free(k);
	return NULL;
}

struct audit_key *
audit_key_new(const void *bytes, size_t len)
{
	uint8_t	*b;

	if (len < AUDIT_KEY_MIN || len > AUDIT_KEY_MAX)
		return NULL;
	if ((b = secmem_alloc(len)) == NULL)
		return NULL;
	memcpy(b, bytes, len);
	return key_adopt(b, len);
}

int
audit_key_load(const char *path, struct audit_key **out, char *errbuf,
    size_t errlen)
{
	char	 why[256] = "";
	uint8_t	*b;
	size_t	 len;
	int	 r;

	*out = NULL;
	r = secfile_read_private(path, AUDIT_KEY_MAX + 2, &b, &len, why,
	    sizeof(why));
	if (r < 0) {
		size_t pl = strlen(path);
		const char *w = why;

		/* secfile's words may begin with the path: say it once. */
		if (strncmp(w, path, pl) == 0 && strncmp(w + pl, ": ", 2) == 0)
			w += pl + 2;
		snprintf(errbuf, errlen, "audit key file %s: %s", path,
		    w[0] != '\0' ? w : strerror(-r));
		return r;
	}
	/* `openssl rand -hex 32 > key` leaves a newline; it is not key. */
	while (len > 0 && (b[len - 1] == '\n' || b[len - 1] == '\r'))
		len--;
	if (len < AUDIT_KEY_MIN || len > AUDIT_KEY_MAX) {
		secmem_free(b);
		snprintf(errbuf, errlen, "audit key file %s: the key is %zu "
		    "bytes, it must be %d to %d (try `openssl rand -hex 32`)",
		    path, len, AUDIT_KEY_MIN, AUDIT_KEY_MAX);
		return -EINVAL;
	}
	if ((*out = key_adopt(b, len)) == NULL) {
		snprintf(errbuf, errlen, "audit key file %s: %s", path,
		    strerror(ENOMEM));
		return -ENOMEM;
	}
	return 0;
}

void
audit_key_free(struct audit_key *k)
{
	if (k == NULL)
		return;
	EVP_MAC_CTX_free(k->ctx);
	secmem_free(k->bytes);
	free(k);
}

const char *
audit_key_id(const struct audit_key *k)
{
	return k->id;
}

/* HMAC-SHA256 over a then b, as hex. */
static int
key_mac(const struct audit_key *k, const void *a, size_t alen, const void *b,
    size_t blen, char out[AUDIT_MAC_HEX + 1])
{
	EVP_MAC_CTX	*c;
	uint8_t		 md[32];
	size_t		 mdlen = 0;
	int		 ok;

	if ((c = EVP_MAC_CTX_dup(k->ctx)) == NULL)
		return -ENOMEM;
	ok = EVP_MAC_update(c, a, alen) == 1 &&
	    (blen == 0 || EVP_MAC_update(c, b, blen) == 1) &&
	    EVP_MAC_final(c, md, &mdlen, sizeof(md)) == 1 && mdlen == 32;
	EVP_MAC_CTX_free(c);
	if (!ok)
		return -ENOMEM;
	hex(out, md, sizeof(md));
	return 0;
}

static bool
get_hex_member(json_t *o, const char *name, char *out, size_t n)
{
	json_t	*v = json_object_get(o, name);

	if (!json_is_string(v) || json_string_length(v) != n ||
	    !is_hex(json_string_value(v), n))
		return false;
	memcpy(out, json_string_value(v), n + 1);
	return true;
}

int
audit_line_check(const struct audit_key *key, const char *line, size_t len,
    struct audit_line *out)
{
	const char	*suffix;
	char		 mac[AUDIT_MAC_HEX + 1];
	json_error_t	 jerr;
	json_t		*o, *seq;
	int		 r;

	memset(out, 0, sizeof(*out));
	out->status = AUDIT_LINE_MALFORMED;
	if (len < 2 + AUDIT_MAC_SUFFIX_LEN || line[0] != '{')
		return 0;
	suffix = line + len - AUDIT_MAC_SUFFIX_LEN;
	if (memcmp(suffix, MAC_PREFIX, 8) != 0 ||
	    !is_hex(suffix + 8, AUDIT_MAC_HEX) ||
	    memcmp(suffix + 8 + AUDIT_MAC_HEX, "\"}", 2) != 0)
		return 0;
	memcpy(out->mac, suffix + 8, AUDIT_MAC_HEX);
	out->mac[AUDIT_MAC_HEX] = '\0';

	/*
	 * Parsed before the MAC is known good only to tell "another key"
	 * from "edited"; nothing parsed is trusted until the MAC holds.
	 */
	o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL)
		return 0;
	if (!json_is_object(o)) {
		json_decref(o);
		return 0;
	}
	out->obj = o;
	seq = json_object_get(o, "seq");
	if (!json_is_integer(seq) || json_integer_value(seq) < 1 ||
	    !get_hex_member(o, "prev", out->prev, AUDIT_MAC_HEX) ||
	    !get_hex_member(o, "key_id", out->key_id, AUDIT_KEY_ID_HEX))
		return 0;
	out->seq = json_integer_value(seq);

	/* The canonical bytes: the line up to the mac member, then "}". */
	r = key_mac(key, line, len - AUDIT_MAC_SUFFIX_LEN, "}", 1, mac);
	if (r < 0)
		return r;
	if (CRYPTO_memcmp(mac, out->mac, AUDIT_MAC_HEX) == 0)
		out->status = AUDIT_LINE_OK;
	else if (strcmp(out->key_id, key->id) != 0)
		out->status = AUDIT_LINE_FOREIGN_KEY;
	else
		out->status = AUDIT_LINE_BAD_MAC;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Building a record                                                  */

/*
 * Records are written by a fixed-field writer, not built as jansson
 * objects: the members and their order are fixed (audit.h), and the hot
 * path (an access) must not allocate a tree per record through the locked
 * arena's allocator. The output is byte for byte what json_dumps(...,
 * JSON_COMPACT) gives for the same members: strings escaped as jansson does
 * (\" \\ \b \f \n \r \t, other control characters as \u00XX), everything
 * else as is, since strings are made valid UTF-8 first.
 */

/* Length of the valid UTF-8 sequence at p (RFC 3629), 0 when invalid. */
static size_t
utf8_len(const unsigned char *p)
{
	unsigned char	c = p[0], lo = 0x80, hi = 0xbf;
	size_t		n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;	/* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

static bool
sb_room(struct sbuf *b, size_t n)
{
	size_t	 cap;
	char	*p;

	if (b->oom)
		return false;
	if (b->cap - b->len >= n)
		return true;
	for (cap = b->cap ? b->cap : 512; cap - b->len < n; cap *= 2)
		;
	if (b->stack != NULL) {
		/* Leaving the caller's buffer: copy out of it. */
		if ((p = malloc(cap)) != NULL)
			memcpy(p, b->p, b->len);
	} else
		p = realloc(b->p, cap);
	if (p == NULL) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->stack = NULL;
	b->cap = cap;
	return true;
}

static void
sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (sb_room(b, n)) {
		memcpy(b->p + b->len, s, n);
		b->len += n;
	}
}

static void
sb_puts(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static void
sb_num(struct sbuf *b, long long v)
{
	char	buf[24];
	int	n;

	n = snprintf(buf, sizeof(buf), "%lld", v);
	sb_put(b, buf, (size_t)n);
}

/* ,"key": (no comma for the first member, which the caller writes) */
static void
sb_key(struct sbuf *b, const char *k)
{
	sb_put(b, ",\"", 2);
	sb_puts(b, k);
	sb_put(b, "\":", 2);
}

/*
 * A JSON string of at most max bytes of s: invalid UTF-8 becomes '?', and
 * the cut never splits a character (max counts the bytes before escaping).
 * NULL gives null; so does "" when empty_is_null (caller fields, where ""
 * means unknown).
 */
static void
sb_str(struct sbuf *b, const char *s, size_t max, bool empty_is_null)
{
	static const char	 digits[] = "0123456789ABCDEF";
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 o = 0, n;
	char			 esc[6];

	if (s == NULL || (empty_is_null && *s == '\0')) {
		sb_put(b, "null", 4);
		return;
	}
	if (max > AUDIT_STR_MAX)
		max = AUDIT_STR_MAX;
	/* The worst case: every byte a 6-byte escape. */
	if (!sb_room(b, 2 + 6 * max))
		return;
	b->p[b->len++] = '"';
	while (*p != '\0' && o < max) {
		if ((n = utf8_len(p)) == 0) {
			b->p[b->len++] = '?';
			o++;
			p++;
			continue;
		}
		if (o + n > max)
			break;
		o += n;
		if (n > 1) {
			memcpy(b->p + b->len, p, n);
			b->len += n;
			p += n;
			continue;
		}
		switch (*p) {
		case '"':	memcpy(esc, "\\\"", 2); n = 2; break;
		case '\\':	memcpy(esc, "\\\\", 2); n = 2; break;
		case '\b':	memcpy(esc, "\\b", 2); n = 2; break;
		case '\f':	memcpy(esc, "\\f", 2); n = 2; break;
		case '\n':	memcpy(esc, "\\n", 2); n = 2; break;
		case '\r':	memcpy(esc, "\\r", 2); n = 2; break;
		case '\t':	memcpy(esc, "\\t", 2); n = 2; break;
		default:
			if (*p >= 0x20) {
				esc[0] = (char)*p;
				n = 1;
				break;
			}
			memcpy(esc, "\\u00", 4);
			esc[4] = digits[*p >> 4];
			esc[5] = digits[*p & 0xf];
			n = 6;
			break;
		}
		memcpy(b->p + b->len, esc, n);
		b->len += n;
		p++;
	}
	b->p[b->len++] = '"';
}

static void
add_caller(struct sbuf *b, const struct caller *c)
{
	if (c == NULL) {
		sb_puts(b, ",\"pid\":null,\"uid\":null,\"gid\":null,"
		    "\"comm\":null,\"container\":null,\"cgroup\":null");
		return;
	}
	sb_key(b, "pid");
	sb_num(b, c->pid);
	sb_key(b, "uid");
	sb_num(b, c->uid);
	sb_key(b, "gid");
	sb_num(b, c->gid);
	sb_key(b, "comm");
	sb_str(b, c->comm, sizeof(c->comm), true);
	sb_key(b, "container");
	if (c->container_id[0] == '\0')
		sb_put(b, "null", 4);
	else {
		sb_put(b, "{\"id\":", 6);
		sb_str(b, c->container_id, AUDIT_STR_MAX, true);
		sb_key(b, "name");
		sb_str(b, c->container_name, AUDIT_STR_MAX, true);
		sb_key(b, "image");
		sb_str(b, c->image, AUDIT_STR_MAX, true);
		sb_key(b, "runtime");
		if ((unsigned)c->runtime < IDENTITY_RUNTIME_COUNT)
			sb_str(b, identity_runtime_name(c->runtime),
			    AUDIT_STR_MAX, false);
		else
			sb_put(b, "null", 4);
		sb_put(b, "}", 1);
	}
	/* Only with a kubelet configured: records elsewhere are unchanged. */
	if (c->k8s.state != IDENTITY_K8S_NONE) {
		sb_key(b, "k8s");
		sb_put(b, "{\"state\":", 9);
		sb_str(b, kubelet_state_name(c->k8s.state), AUDIT_STR_MAX,
		    false);
		sb_key(b, "namespace");
		sb_str(b, c->k8s.namespace, AUDIT_STR_MAX, true);
		sb_key(b, "pod");
		sb_str(b, c->k8s.pod, AUDIT_STR_MAX, true);
		sb_key(b, "service_account");
		sb_str(b, c->k8s.service_account, AUDIT_STR_MAX, true);
		sb_key(b, "container");
		sb_str(b, c->k8s.container, AUDIT_STR_MAX, true);
		sb_key(b, "pod_uid");
		sb_str(b, c->pod_uid, AUDIT_STR_MAX, true);
		sb_put(b, "}", 1);
	}
	sb_key(b, "cgroup");
	sb_str(b, c->cgroup, AUDIT_STR_MAX, true);
	/* Only when there is something to say: others keep their form. */
	if (c->refused[0] != '\0' || c->runtime == IDENTITY_RUNTIME_UNKNOWN) {
		sb_key(b, "identity");
		sb_str(b, c->refused[0] ? c->refused : "unknown runtime",
		    AUDIT_STR_MAX, false);
	}
	if (c->rootless) {
		sb_key(b, "owner_uid");
		sb_num(b, c->cgroup_owner);
	}
}

void
audit_fmt_time(char *buf, size_t len, const struct timespec *ts, bool compact)
{
	struct tm	tm;
	size_t		n;

	gmtime_r(&ts->tv_sec, &tm);
	n = strftime(buf, len, compact ? "%Y%m%dT%H%M%S" : "%Y-%m-%dT%H:%M:%S",
	    &tm);
	snprintf(buf + n, len - n, ".%06uZ",
	    (unsigned)(ts->tv_nsec / 1000) % 1000000u);
}

/*
 * The members that do not depend on the chain, from ,"event" through
 * ,"key_id": built before the audit lock is taken.
 */
int
audit_rec_body(const struct audit *a, const struct rec *rc, struct sbuf *b)
{
	const struct audit_kv	*kv;
	int			 f;

	sb_key(b, "event");
	sb_str(b, events[rc->ev], AUDIT_STR_MAX, false);
	for (f = 0; f < AUDIT_F__MAX; f++) {
		if ((kv = rc->slot[f]) == NULL)
			continue;
		sb_key(b, fields[f].name);
		switch (fields[f].type) {
		case FT_STR:
			sb_str(b, kv->str, fields[f].max, false);
			break;
		case FT_NUM:
			sb_num(b, kv->num);
			break;
		case FT_OUTCOME:
			sb_str(b, outcomes[kv->num], AUDIT_STR_MAX, false);
			break;
		}
	}
	if (rc->with_caller)
		add_caller(b, rc->who);
	sb_key(b, "host");
	sb_str(b, a->host, 255, false);
	sb_key(b, "key_id");
	sb_str(b, a->key->id, AUDIT_STR_MAX, false);
	return b->oom ? -ENOMEM : 0;
}

/*
 * The line of the record that follows the chain's current state, into
 * *line (its bytes replaced; "\n"-terminated), and its mac. Under the lock:
 * time, seq and prev are the chain's.
 */
int
audit_rec_line_locked(struct audit *a, const struct sbuf *body, struct sbuf *line,
    char mac[AUDIT_MAC_HEX + 1])
{
	struct timespec	 now;
	char		 tbuf[40];
	uint8_t		 md[32];
	size_t		 mdlen = 0;

	clock_gettime(CLOCK_REALTIME, &now);
	audit_fmt_time(tbuf, sizeof(tbuf), &now, false);
	line->len = 0;
	sb_put(line, "{\"time\":\"", 9);
	sb_puts(line, tbuf);
	sb_put(line, "\",\"seq\":", 8);
	sb_num(line, (long long)(a->seq + 1));
	sb_put(line, body->p, body->len);
	sb_put(line, ",\"prev\":\"", 9);
	sb_put(line, a->prev, AUDIT_MAC_HEX);
	/* Room for ",\"mac\":\"<hex>\"}\n" after the canonical "\"}". */
	sb_put(line, "\"}", 2);
	if (!sb_room(line, AUDIT_MAC_SUFFIX_LEN + 1))
		return -ENOMEM;

	/* The canonical bytes: the record without its mac member. */
	if (EVP_MAC_init(a->mac, NULL, 0, NULL) != 1 ||
	    EVP_MAC_update(a->mac, (const uint8_t *)line->p, line->len) != 1 ||
	    EVP_MAC_final(a->mac, md, &mdlen, sizeof(md)) != 1 || mdlen != 32)
		return -ENOMEM;
	hex(mac, md, sizeof(md));
	line->len--;		/* the "}" goes after the mac */
	memcpy(line->p + line->len, MAC_PREFIX, 8);
	memcpy(line->p + line->len + 8, mac, AUDIT_MAC_HEX);
	memcpy(line->p + line->len + 8 + AUDIT_MAC_HEX, "\"}\n", 3);
	line->len += AUDIT_MAC_SUFFIX_LEN + 1;
	return 0;
}
