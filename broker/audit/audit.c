/*
 * audit: the tamper-evident audit trail. See include/secretsfs/audit.h for
 * the record format, the MAC and the rotation rules.
 */
#ifndef _GNU_SOURCE
#endif

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <secretsfs/clk.h>
#include <secretsfs/audit.h>
#include <secretsfs/secfile.h>
#include <secretsfs/secmem.h>

#define ZERO_MAC	"0000000000000000000000000000000000000000000000000000000000000000"
#define MAC_PREFIX	",\"mac\":\""
#define SYSLOG_PATH	"/dev/log"
#define SYSLOG_PRI	(10 * 8 + 6)	/* authpriv.info */
#define MAX_SIBLINGS	4096

struct audit_key {
	uint8_t		*bytes;		/* secmem */
	size_t		 len;
	EVP_MAC_CTX	*ctx;		/* keyed once, duplicated per MAC */
	char		 id[AUDIT_KEY_ID_HEX + 1];
};

/* A growing line; after a failed allocation every append is a no-op. */
struct sbuf {
	char	*p;
	size_t	 len, cap;
	char	*stack;		/* p while it is still the caller's buffer */
	bool	 oom;
};

struct audit {
	pthread_mutex_t		 lock;
	pthread_cond_t		 cond;		/* wakes the flusher to stop */
	pthread_t		 flusher;
	bool			 flusher_running;
	bool			 stopping;

	struct audit_key	*key;
	char			*path;
	char			*host;
	char			*syslog_path;
	enum audit_on_failure	 on_failure;
	int64_t			 flush_ms;
	uint64_t		 max_size;
	bool			 to_syslog;
	bool			 to_stdout;

	int			 fd;
	int			 log_fd;	/* syslog socket or -1 */
	uint64_t		 size;
	bool			 dirty;		/* written since the last sync */
	bool			 torn;		/* a partial line is still at size */

	uint64_t		 seq;		/* of the last record written */
	char			 prev[AUDIT_MAC_HEX + 1];
	struct audit_stats	 st;

	EVP_MAC_CTX		*mac;		/* keyed; re-initialised per record */
	struct sbuf		 line;		/* the record being written */
};

/* Everything a record is built from, in the order it is written. */
struct rec {
	enum audit_event_type	 ev;
	bool			 with_caller;
	const struct caller	*who;		/* NULL: null caller fields */
	const struct audit_kv	*slot[AUDIT_F__MAX];
};

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
};

static const char *const outcomes[AUDIT_OUTCOME__MAX] = {
	[AUDIT_OUTCOME_ALLOW]	= "allow",
	[AUDIT_OUTCOME_DENY]	= "deny",
	[AUDIT_OUTCOME_ERROR]	= "error",
	[AUDIT_OUTCOME_OK]	= "ok",
};

static const char *const runtimes[] = {
	[IDENTITY_RUNTIME_HOST]		= "host",
	[IDENTITY_RUNTIME_DOCKER]	= "docker",
	[IDENTITY_RUNTIME_PODMAN]	= "podman",
	[IDENTITY_RUNTIME_CONTAINERD]	= "containerd",
	[IDENTITY_RUNTIME_CRIO]		= "cri-o",
	[IDENTITY_RUNTIME_KUBEPODS]	= "kubepods",
	[IDENTITY_RUNTIME_SYSTEMD]	= "systemd",
};

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
/* Configuration                                                      */

void
audit_config_init(struct audit_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->on_failure = AUDIT_ON_FAILURE_DENY;
	cfg->flush_interval_ms = 1000;
}

void
audit_config_clear(struct audit_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->file);
	free(cfg->key_file);
	free(cfg->host_name);
	free(cfg->syslog_socket);
	audit_config_init(cfg);
}

/* "audit.file", or audit."odd.key" for keys config.h says to quote. */
static void
keypath(char *buf, size_t len, const char *path, const char *key)
{
	const char	*p;
	bool		 plain = *key != '\0';

	for (p = key; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			plain = false;
	snprintf(buf, len, plain ? "%s%s%s" : "%s%s\"%s\"",
	    path != NULL ? path : "",
	    path != NULL && *path != '\0' ? "." : "", key);
}

static int
conf_abs_path(const json_t *v, const char *kp, char **out,
    struct cfg_err *err)
{
	const char	*s;

	if (!json_is_string(v))
		return cfg_err_set(err, kp, "must be a string");
	s = json_string_value(v);
	if (s[0] != '/')
		return cfg_err_set(err, kp, "must be an absolute path");
	/* Room for the ".<UTC time>" of a rotated file. */
	if (strlen(s) > PATH_MAX - 64)
		return cfg_err_set(err, kp, "path too long");
	if ((*out = strdup(s)) == NULL)
		return cfg_err_set(err, kp, "out of memory");
	return 0;
}

int
audit_config_from_json(const json_t *obj, const char *path,
    struct audit_config *out, struct cfg_err *err)
{
	char		 kp[256];
	const char	*k, *s;
	json_t		*v;
	void		*it;
	int		 r = 0;

	audit_config_init(out);
	if (!json_is_object(obj))
		return cfg_err_set(err, path, "must be an object");

	for (it = json_object_iter((json_t *)obj); it != NULL && r == 0;
	    it = json_object_iter_next((json_t *)obj, it)) {
		k = json_object_iter_key(it);
		v = json_object_iter_value(it);
		keypath(kp, sizeof(kp), path, k);

		if (strcmp(k, "file") == 0)
			r = conf_abs_path(v, kp, &out->file, err);
		else if (strcmp(k, "key_file") == 0)
			r = conf_abs_path(v, kp, &out->key_file, err);
		else if (strcmp(k, "on_failure") == 0) {
			s = json_string_value(v);
			if (s != NULL && strcmp(s, "deny") == 0)
				out->on_failure = AUDIT_ON_FAILURE_DENY;
			else if (s != NULL && strcmp(s, "allow") == 0)
				out->on_failure = AUDIT_ON_FAILURE_ALLOW;
			else
				r = cfg_err_set(err, kp,
				    "must be \"deny\" or \"allow\"");
		} else if (strcmp(k, "flush_interval") == 0) {
			int64_t ms = 0;

			if (json_is_integer(v) && json_integer_value(v) >= 0 &&
			    json_integer_value(v) <= 3600)
				ms = json_integer_value(v) * 1000;
			else if (!json_is_string(v) ||
			    cfg_parse_duration(json_string_value(v), &ms) < 0)
				r = cfg_err_set(err, kp, "must be a duration "
				    "such as \"1s\" or \"250ms\"");
			if (r == 0 && (ms < 0 || ms > 3600 * 1000))
				r = cfg_err_set(err, kp,
				    "must be between 0 and 1h");
			if (r == 0)
				out->flush_interval_ms = ms;
		} else if (strcmp(k, "max_size") == 0) {
			uint64_t sz = 0;

			if (json_is_integer(v) && json_integer_value(v) >= 0)
				sz = json_integer_value(v);
			else if (!json_is_string(v) ||
			    cfg_parse_size(json_string_value(v), &sz) < 0) {
				r = cfg_err_set(err, kp, "must be a size "
				    "such as \"100MiB\"");
				continue;
			}
			if (sz != 0 && sz < 4096)
				r = cfg_err_set(err, kp,
				    "must be at least 4KiB (or 0: no limit)");
			else
				out->max_size = sz;
		} else if (strcmp(k, "syslog") == 0) {
			if (!json_is_boolean(v))
				r = cfg_err_set(err, kp, "must be true or false");
			else
				out->syslog = json_is_true(v);
		} else if (strcmp(k, "stdout") == 0) {
			if (!json_is_boolean(v))
				r = cfg_err_set(err, kp, "must be true or false");
			else
				out->to_stdout = json_is_true(v);
		} else if (strcmp(k, "host_name") == 0) {
			size_t i, n;

			s = json_string_value(v);
			n = s != NULL ? strlen(s) : 0;
			if (n == 0 || n > 255) {
				r = cfg_err_set(err, kp,
				    "must be a string of 1 to 255 bytes");
				continue;
			}
			for (i = 0; i < n; i++)
				if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
					break;
			if (i < n)
				r = cfg_err_set(err, kp,
				    "must not hold spaces or control characters");
			else if ((out->host_name = strdup(s)) == NULL)
				r = cfg_err_set(err, kp, "out of memory");
		} else
			r = cfg_err_set(err, kp, "unknown key");
	}
	if (r == 0 && out->file == NULL) {
		keypath(kp, sizeof(kp), path, "file");
		r = cfg_err_set(err, kp, "is required");
	}
	if (r == 0 && out->key_file == NULL) {
		keypath(kp, sizeof(kp), path, "key_file");
		r = cfg_err_set(err, kp, "is required");
	}
	if (r != 0)
		audit_config_clear(out);
	return r;
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
		snprintf(errbuf, errlen, "audit key file %s: %s", path,
		    why[0] != '\0' ? why : strerror(-r));
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
		if ((unsigned)c->runtime < sizeof(runtimes) / sizeof(runtimes[0]))
			sb_str(b, runtimes[c->runtime], AUDIT_STR_MAX, false);
		else
			sb_put(b, "null", 4);
		sb_put(b, "}", 1);
	}
	sb_key(b, "cgroup");
	sb_str(b, c->cgroup, AUDIT_STR_MAX, true);
}

static void
fmt_time(char *buf, size_t len, const struct timespec *ts, bool compact)
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
static int
build_body(const struct audit *a, const struct rec *rc, struct sbuf *b)
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
static int
build_line_locked(struct audit *a, const struct sbuf *body, struct sbuf *line,
    char mac[AUDIT_MAC_HEX + 1])
{
	struct timespec	 now;
	char		 tbuf[40];
	uint8_t		 md[32];
	size_t		 mdlen = 0;

	clock_gettime(CLOCK_REALTIME, &now);
	fmt_time(tbuf, sizeof(tbuf), &now, false);
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

/* ------------------------------------------------------------------ */
/* Files                                                              */

/*
 * O_RDWR rather than O_WRONLY so that the tail check reads the very inode
 * we append to; O_NONBLOCK so that a FIFO planted at the path cannot hang
 * us before the S_ISREG check (regular files ignore it).
 */
static int
open_log(const char *path, int *fdp, struct stat *sb)
{
	int	fd;

	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, sb) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	if (!S_ISREG(sb->st_mode)) {
		close(fd);
		return -EINVAL;
	}
	*fdp = fd;
	return 0;
}

/* Make a new directory entry (created or renamed file) durable. */
static void
sync_dir(const char *path)
{
	char	 dir[PATH_MAX], *slash;
	int	 fd;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL)
		return;
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/*
 * The last line of the file on fd (size bytes), without its "\n", in a
 * malloc'd *line. -EBADMSG when the file does not end with "\n" or the
 * line is longer than AUDIT_LINE_MAX.
 */
static int
read_last_line(int fd, uint64_t size, char **line, size_t *len)
{
	size_t	 n = size > AUDIT_LINE_MAX + 1 ? AUDIT_LINE_MAX + 1 : size;
	size_t	 got = 0;
	ssize_t	 r;
	char	*buf, *nl;

	if ((buf = malloc(n + 1)) == NULL)
		return -ENOMEM;
	while (got < n) {
		r = pread(fd, buf + got, n - got, size - n + got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(buf);
			return r < 0 ? -errno : -EBADMSG;
		}
		got += r;
	}
	if (n == 0 || buf[n - 1] != '\n') {
		free(buf);
		return -EBADMSG;
	}
	nl = memrchr(buf, '\n', n - 1);
	if (nl == NULL && n < size) {
		free(buf);
		return -EBADMSG;
	}
	*len = n - 1 - (nl != NULL ? (size_t)(nl + 1 - buf) : 0);
	memmove(buf, nl != NULL ? nl + 1 : buf, *len);
	buf[*len] = '\0';
	*line = buf;
	return 0;
}

/* The last record of a non-empty file, checked under key. */
static int
file_tail(const struct audit_key *key, int fd, uint64_t size,
    struct audit_line *al, const char *name, char *errbuf, size_t errlen)
{
	char	*line = NULL;
	size_t	 len = 0;
	int	 r;

	if ((r = read_last_line(fd, size, &line, &len)) < 0) {
		if (r == -EBADMSG)
			snprintf(errbuf, errlen, "audit file %s ends with a "
			    "partial record (a crash during a write, or the "
			    "file was cut); move it away to start a new file",
			    name);
		else
			snprintf(errbuf, errlen, "audit file %s: %s", name,
			    strerror(-r));
		return r;
	}
	r = audit_line_check(key, line, len, al);
	free(line);
	json_decref(al->obj);
	al->obj = NULL;
	if (r < 0) {
		snprintf(errbuf, errlen, "audit file %s: %s", name,
		    strerror(-r));
		return r;
	}
	switch (al->status) {
	case AUDIT_LINE_OK:
		return 0;
	case AUDIT_LINE_MALFORMED:
		snprintf(errbuf, errlen, "the last line of audit file %s is "
		    "not an audit record; move it away to start a new file",
		    name);
		break;
	case AUDIT_LINE_FOREIGN_KEY:
		snprintf(errbuf, errlen, "the last record of audit file %s "
		    "was written under another key (key_id %s, ours %s); "
		    "move it away to start a new file", name, al->key_id,
		    key->id);
		break;
	case AUDIT_LINE_BAD_MAC:
		snprintf(errbuf, errlen, "the last record of audit file %s "
		    "fails its MAC (edited?); run `secretsfs audit verify` "
		    "and move it away to start a new file", name);
		break;
	}
	return -EBADMSG;
}

/*
 * The file at our path is new or empty: continue the chain from the
 * newest rotated sibling "<file>.*" whose last record verifies (so that a
 * rotation done while we were stopped does not start a new chain). Others
 * (compressed, foreign, cut) are ignored: they are not ours to continue.
 */
static void
tail_from_siblings(struct audit *a)
{
	char			 dir[PATH_MAX], full[PATH_MAX], junk[256];
	const char		*base;
	char			*slash;
	size_t			 blen;
	DIR			*d;
	struct dirent		*de;
	struct stat		 sb;
	struct audit_line	 al;
	int			 fd, seen = 0;

	snprintf(dir, sizeof(dir), "%s", a->path);
	if ((slash = strrchr(dir, '/')) == NULL)
		return;
	base = a->path + (slash - dir) + 1;
	blen = strlen(base);
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL && seen++ < MAX_SIBLINGS) {
		if (strncmp(de->d_name, base, blen) != 0 ||
		    de->d_name[blen] != '.' || de->d_name[blen + 1] == '\0')
			continue;
		if (snprintf(full, sizeof(full), "%s/%s", dir, de->d_name) >=
		    (int)sizeof(full))
			continue;
		fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0)
			continue;
		if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    sb.st_size > 0 &&
		    file_tail(a->key, fd, sb.st_size, &al, full, junk,
		    sizeof(junk)) == 0 && al.seq > a->seq) {
			a->seq = al.seq;
			memcpy(a->prev, al.mac, sizeof(a->prev));
		}
		close(fd);
	}
	closedir(d);
}

/*
 * Point a->fd at the file now at a->path, continuing the chain: the same
 * inode is kept as is; a new file must be empty or end with our last
 * record. The old fd is synced and closed.
 */
static int
switch_file_locked(struct audit *a)
{
	struct stat		 cur, sb;
	struct audit_line	 al;
	char			 junk[256];
	int			 fd = -1, r;

	if ((r = open_log(a->path, &fd, &sb)) < 0)
		return r;
	if (fstat(a->fd, &cur) == 0 && cur.st_dev == sb.st_dev &&
	    cur.st_ino == sb.st_ino) {
		close(fd);
		return 0;
	}
	if (sb.st_size > 0) {
		r = file_tail(a->key, fd, sb.st_size, &al, a->path, junk,
		    sizeof(junk));
		if (r == 0 && (al.seq != a->seq || strcmp(al.mac, a->prev) != 0))
			r = -EBADMSG;
		if (r < 0) {
			close(fd);
			return r;
		}
	}
	(void)fdatasync(a->fd);
	close(a->fd);
	sync_dir(a->path);
	a->fd = fd;
	a->size = sb.st_size;
	a->torn = false;
	a->dirty = false;
	return 0;
}

/* Size rotation: "<file>.<UTC time>", then a new file at the path. */
static void
rotate_locked(struct audit *a)
{
	struct stat	cur, sb;
	struct timespec	now;
	char		ts[40], name[PATH_MAX];

	if (fstat(a->fd, &cur) < 0)
		goto fail;
	/* If the path is no longer our file, someone moved it already. */
	if (stat(a->path, &sb) == 0 && sb.st_dev == cur.st_dev &&
	    sb.st_ino == cur.st_ino) {
		clock_gettime(CLOCK_REALTIME, &now);
		fmt_time(ts, sizeof(ts), &now, true);
		if (snprintf(name, sizeof(name), "%s.%s", a->path, ts) >=
		    (int)sizeof(name))
			goto fail;
		if (renameat2(AT_FDCWD, a->path, AT_FDCWD, name,
		    RENAME_NOREPLACE) < 0) {
			/* Filesystems without RENAME_NOREPLACE. */
			if ((errno != EINVAL && errno != ENOSYS) ||
			    access(name, F_OK) == 0 || errno != ENOENT ||
			    rename(a->path, name) < 0)
				goto fail;
		}
	}
	/* On failure we keep appending to the renamed file and retry later. */
	if (switch_file_locked(a) < 0)
		goto fail;
	a->st.rotations++;
	return;
fail:
	a->st.rotate_errors++;
}

/*
 * Append one whole line or nothing. A partial write is cut back off; if
 * even that fails, every later append first retries the cut, so no record
 * ever follows a torn one.
 */
static int
append_locked(struct audit *a, const char *line, size_t len)
{
	struct stat	sb;
	size_t		off = 0;
	ssize_t		w;
	int		r;

	if (a->torn) {
		if (ftruncate(a->fd, a->size) < 0)
			return -errno;
		a->torn = false;
	}
	if (fstat(a->fd, &sb) < 0)
		return -errno;
	/* Deleted: records written now would be lost. mv is fine. */
	if (sb.st_nlink == 0)
		return -ENOENT;
	while (off < len) {
		w = write(a->fd, line + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			r = w < 0 ? -errno : -EIO;
			if (off > 0 && ftruncate(a->fd, sb.st_size) < 0)
				a->torn = true;
			a->size = sb.st_size;
			return r;
		}
		off += w;
	}
	a->size = sb.st_size + len;
	return 0;
}

static int
syslog_connect(struct audit *a)
{
	struct sockaddr_un	sun = { .sun_family = AF_UNIX };
	const char		*p = a->syslog_path != NULL ?
				    a->syslog_path : SYSLOG_PATH;

	if (a->log_fd >= 0)
		close(a->log_fd);
	a->log_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (a->log_fd < 0)
		return -errno;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", p);
	if (connect(a->log_fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int r = -errno;
		close(a->log_fd);
		a->log_fd = -1;
		return r;
	}
	return 0;
}

/* Best effort copies: the file is the record of truth. */
static void
copies_locked(struct audit *a, const char *line, size_t len)
{
	char	*msg;
	int	 n, tries;

	if (a->to_stdout && write(STDOUT_FILENO, line, len) != (ssize_t)len)
		a->st.output_errors++;
	if (!a->to_syslog)
		return;
	/* <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG */
	n = asprintf(&msg, "<%d>1 %.27s %s secretsfs %ld audit - %.*s",
	    SYSLOG_PRI, line + 9, a->host, (long)getpid(), (int)len - 1, line);
	if (n < 0) {
		a->st.output_errors++;
		return;
	}
	for (tries = 0; tries < 2; tries++) {
		if (a->log_fd < 0 && syslog_connect(a) < 0)
			continue;
		if (send(a->log_fd, msg, n, MSG_DONTWAIT | MSG_NOSIGNAL) == n)
			break;
		close(a->log_fd);
		a->log_fd = -1;
	}
	if (tries == 2)
		a->st.output_errors++;
	free(msg);
}

static int
emit(struct audit *a, const struct rec *rc)
{
	char		 mac[AUDIT_MAC_HEX + 1];
	char		 stack[1024];
	struct sbuf	 body = { stack, 0, sizeof(stack), stack, false };
	int		 r;

	r = build_body(a, rc, &body);
	pthread_mutex_lock(&a->lock);
	if (r == 0)
		r = build_line_locked(a, &body, &a->line, mac);
	if (r == 0)
		r = append_locked(a, a->line.p, a->line.len);
	if (r == 0) {
		a->seq++;
		memcpy(a->prev, mac, sizeof(a->prev));
		a->st.records++;
		a->dirty = true;
		if (a->flush_ms == 0) {
			if (fdatasync(a->fd) < 0) {
				/* The line is in the chain; only its sync failed. */
				a->st.failures++;
				a->st.last_error = errno;
				r = -EIO;
			} else
				a->dirty = false;
		}
		copies_locked(a, a->line.p, a->line.len);
		/* No new, empty file on the way out. */
		if (a->max_size != 0 && a->size >= a->max_size &&
		    rc->ev != AUDIT_EV_STOP)
			rotate_locked(a);
	} else {
		a->st.failures++;
		a->st.last_error = -r;
		r = -EIO;
	}
	/* A record grown past the usual size does not keep its buffer. */
	if (a->line.cap > 4 * sizeof(stack)) {
		free(a->line.p);
		memset(&a->line, 0, sizeof(a->line));
	}
	pthread_mutex_unlock(&a->lock);
	if (body.stack == NULL)
		free(body.p);
	return r;
}

/* ------------------------------------------------------------------ */
/* Flushing                                                           */

static void *
flusher(void *arg)
{
	struct audit	*a = arg;
	struct timespec	 dl;
	int		 fd;

	pthread_mutex_lock(&a->lock);
	while (!a->stopping) {
		dl = clk_deadline(CLOCK_MONOTONIC, a->flush_ms);
		while (!a->stopping &&
		    pthread_cond_timedwait(&a->cond, &a->lock, &dl) != ETIMEDOUT)
			;
		if (a->stopping || !a->dirty)
			continue;
		/* Sync a dup, outside the lock: writers must not wait on disk. */
		fd = fcntl(a->fd, F_DUPFD_CLOEXEC, 0);
		a->dirty = false;
		pthread_mutex_unlock(&a->lock);
		if (fd >= 0) {
			(void)fdatasync(fd);
			close(fd);
		}
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

static int
start_flusher(struct audit *a)
{
	sigset_t	all, old;
	int		r;

	if ((r = clk_cond_init(&a->cond)) < 0)
		return r;
	/* Signals are the daemon's main thread's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&a->flusher, NULL, flusher, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		pthread_cond_destroy(&a->cond);
		return -r;
	}
	a->flusher_running = true;
	return 0;
}

int
audit_start(struct audit *a)
{
	if (!a || a->flush_ms == 0 || a->flusher_running)
		return 0;
	return start_flusher(a);
}

/* ------------------------------------------------------------------ */
/* The writer's API                                                   */

static void
self_caller(struct caller *c)
{
	memset(c, 0, sizeof(*c));
	c->pid = getpid();
	c->uid = geteuid();
	c->gid = getegid();
	(void)prctl(PR_GET_NAME, c->comm, 0, 0, 0);
	c->comm[sizeof(c->comm) - 1] = '\0';
	c->runtime = IDENTITY_RUNTIME_HOST;
}

static int
self_event(struct audit *a, enum audit_event_type ev)
{
	struct caller	self;
	struct rec	rc = { .ev = ev, .with_caller = true, .who = &self };

	self_caller(&self);
	return emit(a, &rc);
}

static void
audit_free(struct audit *a)
{
	if (a->flusher_running) {
		pthread_mutex_lock(&a->lock);
		a->stopping = true;
		pthread_cond_signal(&a->cond);
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->flusher, NULL);
		pthread_cond_destroy(&a->cond);
	}
	if (a->fd >= 0) {
		(void)fdatasync(a->fd);
		close(a->fd);
	}
	if (a->log_fd >= 0)
		close(a->log_fd);
	pthread_mutex_destroy(&a->lock);
	EVP_MAC_CTX_free(a->mac);
	free(a->line.p);
	audit_key_free(a->key);
	free(a->path);
	free(a->host);
	free(a->syslog_path);
	free(a);
}

int
audit_open(const struct audit_config *cfg, struct audit **out, char *errbuf,
    size_t errlen)
{
	struct audit	*a;
	struct stat	 sb;
	char		 host[256];
	int		 r;

	*out = NULL;
	if (cfg->file == NULL || cfg->key_file == NULL) {
		snprintf(errbuf, errlen, "audit: file and key_file are required");
		return -EINVAL;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL)
		goto oom;
	a->fd = a->log_fd = -1;
	pthread_mutex_init(&a->lock, NULL);
	a->on_failure = cfg->on_failure;
	a->flush_ms = cfg->flush_interval_ms;
	a->max_size = cfg->max_size;
	a->to_syslog = cfg->syslog;
	a->to_stdout = cfg->to_stdout;
	memcpy(a->prev, ZERO_MAC, sizeof(a->prev));
	if (cfg->host_name == NULL) {
		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
	} else
		snprintf(host, sizeof(host), "%s", cfg->host_name);
	if ((a->path = strdup(cfg->file)) == NULL ||
	    (a->host = strdup(host)) == NULL ||
	    (cfg->syslog_socket != NULL &&
	    (a->syslog_path = strdup(cfg->syslog_socket)) == NULL))
		goto oom;

	if ((r = audit_key_load(cfg->key_file, &a->key, errbuf, errlen)) < 0)
		goto fail;
	/* The writer's own copy, keyed once: a record only re-initialises it. */
	if ((a->mac = EVP_MAC_CTX_dup(a->key->ctx)) == NULL)
		goto oom;
	if ((r = open_log(a->path, &a->fd, &sb)) < 0) {
		snprintf(errbuf, errlen, "audit file %s: %s", a->path,
		    r == -EINVAL ? "not a regular file" : strerror(-r));
		goto fail;
	}
	a->size = sb.st_size;
	if (sb.st_size > 0) {
		struct audit_line al;

		r = file_tail(a->key, a->fd, sb.st_size, &al, a->path, errbuf,
		    errlen);
		if (r < 0)
			goto fail;
		a->seq = al.seq;
		memcpy(a->prev, al.mac, sizeof(a->prev));
	} else {
		sync_dir(a->path);
		tail_from_siblings(a);
	}

	if (a->to_syslog)
		(void)syslog_connect(a);	/* retried at each record */
	if ((r = self_event(a, AUDIT_EV_START)) < 0) {
		snprintf(errbuf, errlen, "audit file %s: cannot write the "
		    "start record: %s", a->path, strerror(a->st.last_error));
		goto fail;
	}
	*out = a;
	return 0;
oom:
	snprintf(errbuf, errlen, "audit: %s", strerror(ENOMEM));
	r = -ENOMEM;
fail:
	if (a != NULL)
		audit_free(a);
	return r;
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	(void)self_event(a, AUDIT_EV_STOP);
	audit_free(a);
}

bool
audit_allow_on_failure(const struct audit *a)
{
	return a->on_failure == AUDIT_ON_FAILURE_ALLOW;
}

static int
access_like(struct audit *a, enum audit_event_type ev,
    const struct audit_access *acc)
{
	struct audit_kv	kv[] = {
		AUDIT_STR(AUDIT_F_SECRET, acc->secret),
		AUDIT_STR(AUDIT_F_BACKEND, acc->backend),
		AUDIT_STR(AUDIT_F_REF, acc->ref),
		AUDIT_STR(AUDIT_F_VERSION, acc->version),
		AUDIT_NUM(AUDIT_F_OUTCOME, acc->outcome),
		AUDIT_NUM(AUDIT_F_ERRNO, acc->err),
		AUDIT_STR(AUDIT_F_RULE, acc->rule),
	};
	struct rec	rc = { .ev = ev, .with_caller = true, .who = acc->caller };
	size_t		i;

	if ((unsigned)acc->outcome >= AUDIT_OUTCOME__MAX)
		return -EINVAL;
	for (i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		rc.slot[kv[i].field] = &kv[i];
	return emit(a, &rc);
}

int
audit_access(struct audit *a, const struct audit_access *acc)
{
	return access_like(a, AUDIT_EV_ACCESS, acc);
}

int
audit_lookup_denied(struct audit *a, const struct audit_access *acc)
{
	return access_like(a, AUDIT_EV_LOOKUP_DENIED, acc);
}

int
audit_event(struct audit *a, enum audit_event_type ev,
    const struct caller *who, const struct audit_kv *kv, size_t n)
{
	struct rec	rc = { .ev = ev, .with_caller = who != NULL, .who = who };
	size_t		i;

	if ((unsigned)ev >= AUDIT_EV__MAX || ev == AUDIT_EV_START ||
	    ev == AUDIT_EV_STOP)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if ((unsigned)kv[i].field >= AUDIT_F__MAX ||
		    rc.slot[kv[i].field] != NULL)
			return -EINVAL;
		if (fields[kv[i].field].type == FT_OUTCOME &&
		    (kv[i].num < 0 || kv[i].num >= AUDIT_OUTCOME__MAX))
			return -EINVAL;
		rc.slot[kv[i].field] = &kv[i];
	}
	return emit(a, &rc);
}

int
audit_rotate(struct audit *a, const struct audit_rotate *r)
{
	struct audit_kv kv[] = {
		AUDIT_STR(AUDIT_F_SECRET, r->secret),
		AUDIT_STR(AUDIT_F_BACKEND, r->backend),
		AUDIT_STR(AUDIT_F_REF, r->ref),
		AUDIT_STR(AUDIT_F_OLD_VERSION, r->old_version),
		AUDIT_STR(AUDIT_F_NEW_VERSION, r->new_version),
	};

	return audit_event(a, AUDIT_EV_ROTATE, NULL, kv,
	    sizeof(kv) / sizeof(kv[0]));
}

int
audit_backend_error(struct audit *a, const struct audit_backend_error *e)
{
	struct audit_kv kv[] = {
		AUDIT_STR(AUDIT_F_SECRET, e->secret),
		AUDIT_STR(AUDIT_F_BACKEND, e->backend),
		AUDIT_STR(AUDIT_F_REF, e->ref),
		AUDIT_NUM(AUDIT_F_OUTCOME, AUDIT_OUTCOME_ERROR),
		AUDIT_NUM(AUDIT_F_ERRNO, e->err),
		AUDIT_NUM(AUDIT_F_STATUS, e->status),
		AUDIT_STR(AUDIT_F_REASON, e->reason),
	};

	return audit_event(a, AUDIT_EV_BACKEND_ERROR, NULL, kv,
	    sizeof(kv) / sizeof(kv[0]));
}

int
audit_auth(struct audit *a, const struct audit_auth *au)
{
	struct audit_kv kv[] = {
		AUDIT_STR(AUDIT_F_BACKEND, au->backend),
		AUDIT_STR(AUDIT_F_METHOD, au->method),
		AUDIT_STR(AUDIT_F_ACTION, au->action),
		AUDIT_NUM(AUDIT_F_OUTCOME, au->outcome),
		AUDIT_NUM(AUDIT_F_ERRNO, au->err),
		AUDIT_NUM(AUDIT_F_TTL, au->ttl),
		AUDIT_STR(AUDIT_F_REASON, au->reason),
	};

	return audit_event(a, AUDIT_EV_AUTH, NULL, kv,
	    sizeof(kv) / sizeof(kv[0]));
}

int
audit_stale(struct audit *a, const struct audit_stale *s)
{
	struct audit_kv kv[] = {
		AUDIT_STR(AUDIT_F_SECRET, s->secret),
		AUDIT_STR(AUDIT_F_BACKEND, s->backend),
		AUDIT_STR(AUDIT_F_REF, s->ref),
		AUDIT_STR(AUDIT_F_VERSION, s->version),
		AUDIT_STR(AUDIT_F_ACTION, s->expired ? "expired" : "served"),
		AUDIT_NUM(AUDIT_F_AGE_MS, s->age_ms),
	};

	return audit_event(a, AUDIT_EV_STALE, NULL, kv,
	    sizeof(kv) / sizeof(kv[0]));
}

int
audit_reopen(struct audit *a)
{
	int	r;

	pthread_mutex_lock(&a->lock);
	r = switch_file_locked(a);
	pthread_mutex_unlock(&a->lock);
	return r;
}

int
audit_flush(struct audit *a)
{
	int	r = 0;

	pthread_mutex_lock(&a->lock);
	if (fdatasync(a->fd) < 0)
		r = -errno;
	else
		a->dirty = false;
	pthread_mutex_unlock(&a->lock);
	return r;
}

void
audit_get_stats(struct audit *a, struct audit_stats *st)
{
	pthread_mutex_lock(&a->lock);
	*st = a->st;
	st->seq = a->seq;
	memcpy(st->mac, a->prev, sizeof(st->mac));
	st->file_size = a->size;
	pthread_mutex_unlock(&a->lock);
}
