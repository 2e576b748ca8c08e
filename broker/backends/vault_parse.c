/*
 * The Vault backend's parsers: Vault's answers (KV v1 and v2 reads, logins,
 * token lookups, error bodies and refusals, lists, mounts) into values,
 * pure functions of the body, for the client in vault.c and the tests.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <secretsfs/backend.h>
#include <secretsfs/secmem.h>
#include <secretsfs/vault.h>

#include "vault_int.h"

/* --- parsers ------------------------------------------------------------- */

/* Vault's words, fit for a log line: no control characters, bounded. */
static void
clean_copy(char *dst, size_t dlen, const char *s)
{
	size_t o = 0;
	bool space = false;

	if (!dlen)
		return;
	for (; *s && o + 1 < dlen; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch == 0x7f || ch == ' ') {
			space = o > 0;
			continue;
		}
		if (space && o + 2 < dlen)
			dst[o++] = ' ';
		space = false;
		dst[o++] = (char)ch;
	}
	dst[o] = '\0';
}

static json_t *
load(const uint8_t *body, size_t len)
{
	json_error_t je;

	if (!body || !len)
		return NULL;
	/* je.text may quote the body: it is never shown. */
	return json_loadb((const char *)body, len, 0, &je);
}

/* obj as compact JSON, into the arena. */
int
vault_dump_secmem(const json_t *obj, uint8_t **out, size_t *len)
{
	size_t n = json_dumpb(obj, NULL, 0, JSON_COMPACT);
	uint8_t *buf;

	*out = NULL;
	*len = 0;
	if (n == 0)
		return -ENOMEM;
	if (!(buf = secmem_alloc(n + 1)))
		return -ENOMEM;
	if (json_dumpb(obj, (char *)buf, n, JSON_COMPACT) != n) {
		secmem_free(buf);
		return -EIO;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

int
vault_parse_time(const char *s, struct timespec *ts)
{
	struct tm tm;
	const char *p;
	long ns = 0, off = 0;
	int digits = 0;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	ts->tv_sec = 0;
	ts->tv_nsec = 0;
	if (!s || !isdigit((unsigned char)*s) ||
	    !(p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)))
		return -EINVAL;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		for (; isdigit((unsigned char)*p); p++)
			if (digits < 9) {
				ns = ns * 10 + (*p - '0');
				digits++;
			}
		for (; digits < 9; digits++)
			ns *= 10;
	}
	if (*p == 'Z' || *p == 'z')
		p++;
	else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
	    isdigit((unsigned char)p[2]) && p[3] == ':' &&
	    isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5])) {
		off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 +
		    ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		if (*p == '-')
			off = -off;
		p += 6;
	} else
		return -EINVAL;
	if (*p)
		return -EINVAL;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -EINVAL;
	ts->tv_sec = t - off;
	ts->tv_nsec = ns;
	return 0;
}

int
vault_parse_kv2(const uint8_t *body, size_t len, struct backend_value *out,
    char *errbuf, size_t errlen)
{
	json_t *root, *data, *meta, *d, *ver, *del, *cr;
	const char *deleted = "";
	json_int_t version = 0;
	int r;

	memset(out, 0, sizeof(*out));
	root = load(body, len);
	data = json_object_get(root, "data");
	meta = json_object_get(data, "metadata");
	if (!json_is_object(data) || !json_is_object(meta)) {
		snprintf(errbuf, errlen, "not a KV v2 answer (no "
		    "data.metadata)");
		json_decref(root);
		return -EIO;
	}
	if (json_is_integer(ver = json_object_get(meta, "version")))
		version = json_integer_value(ver);
	if (json_is_string(del = json_object_get(meta, "deletion_time")))
		deleted = json_string_value(del);
	d = json_object_get(data, "data");
	if (json_is_true(json_object_get(meta, "destroyed"))) {
		snprintf(errbuf, errlen, "version %" JSON_INTEGER_FORMAT
		    " is destroyed", version);
		json_decref(root);
		return -ENOENT;
	}
	/* A deletion_time in the future is a scheduled deletion: still here. */
	if (!d || json_is_null(d)) {
		if (*deleted) {
			char when[64];

			clean_copy(when, sizeof(when), deleted);
			snprintf(errbuf, errlen, "version %" JSON_INTEGER_FORMAT
			    " was deleted at %s", version, when);
			r = -ENOENT;
		} else {
			snprintf(errbuf, errlen, "version %" JSON_INTEGER_FORMAT
			    " has no data", version);
			r = -EIO;
		}
		json_decref(root);
		return r;
	}
	if (!json_is_object(d)) {
		snprintf(errbuf, errlen, "not a KV v2 answer (data.data is not "
		    "an object)");
		json_decref(root);
		return -EIO;
	}
	if ((r = vault_dump_secmem(d, &out->data, &out->len)) < 0) {
		snprintf(errbuf, errlen, "locked memory exhausted");
		json_decref(root);
		return r;
	}
	snprintf(out->version, sizeof(out->version), "%" JSON_INTEGER_FORMAT,
	    version);
	if (json_is_string(cr = json_object_get(meta, "created_time")))
		(void)vault_parse_time(json_string_value(cr), &out->changed);
	json_decref(root);
	return 0;
}

int
vault_parse_kv1(const uint8_t *body, size_t len, struct backend_value *out,
    char *errbuf, size_t errlen)
{
	json_t *root, *d;
	int r;

	memset(out, 0, sizeof(*out));
	root = load(body, len);
	if (!json_is_object(d = json_object_get(root, "data"))) {
		snprintf(errbuf, errlen, "not a KV v1 answer (no data object)");
		json_decref(root);
		return -EIO;
	}
	if ((r = vault_dump_secmem(d, &out->data, &out->len)) < 0)
		snprintf(errbuf, errlen, "locked memory exhausted");
	json_decref(root);
	return r;
}

void
vault_auth_clear(struct vault_auth *a)
{
	secmem_free(a->token);
	a->token = NULL;
	a->ttl_s = 0;
	a->renewable = false;
	a->batch = false;
}

int64_t
vault_renew_in_ms(int64_t ttl_ms, uint32_t rnd)
{
	int64_t in, spread;

	if (ttl_ms <= 0)
		return 0;
	/* 2/3 of what is left, less up to a tenth of it at random. */
	in = ttl_ms * 2 / 3;
	spread = in / 10;
	if (spread > 0)
		in -= (int64_t)(rnd % (uint64_t)(spread + 1));
	return in > MIN_RENEW_MS ? in : MIN_RENEW_MS;
}

int
vault_parse_auth(const uint8_t *body, size_t len, struct vault_auth *out,
    char *errbuf, size_t errlen)
{
	json_t *root, *auth, *tok, *ld, *tt;

	memset(out, 0, sizeof(*out));
	root = load(body, len);
	auth = json_object_get(root, "auth");
	tok = json_object_get(auth, "client_token");
	if (!json_is_object(auth) || !json_is_string(tok) ||
	    json_string_length(tok) == 0 ||
	    strlen(json_string_value(tok)) != json_string_length(tok)) {
		snprintf(errbuf, errlen, "no auth.client_token in the answer");
		json_decref(root);
		return -EIO;
	}
	ld = json_object_get(auth, "lease_duration");
	if (ld && (!json_is_integer(ld) || json_integer_value(ld) < 0)) {
		snprintf(errbuf, errlen, "auth.lease_duration is not a "
		    "number of seconds");
		json_decref(root);
		return -EIO;
	}
	if (!(out->token = secmem_strdup(json_string_value(tok)))) {
		snprintf(errbuf, errlen, "locked memory exhausted");
		json_decref(root);
		return -ENOMEM;
	}
	out->ttl_s = ld ? json_integer_value(ld) : 0;
	out->renewable = json_is_true(json_object_get(auth, "renewable"));
	tt = json_object_get(auth, "token_type");
	out->batch = json_is_string(tt) &&
	    strcmp(json_string_value(tt), "batch") == 0;
	json_decref(root);
	return 0;
}

int
vault_parse_lookup(const uint8_t *body, size_t len, int64_t *ttl_s,
    bool *renewable, char *errbuf, size_t errlen)
{
	json_t *root, *data, *ttl;

	*ttl_s = 0;
	*renewable = false;
	root = load(body, len);
	data = json_object_get(root, "data");
	ttl = json_object_get(data, "ttl");
	if (!json_is_object(data) || !json_is_integer(ttl) ||
	    json_integer_value(ttl) < 0) {
		snprintf(errbuf, errlen, "not a token lookup answer (no "
		    "data.ttl)");
		json_decref(root);
		return -EIO;
	}
	*ttl_s = json_integer_value(ttl);
	*renewable = json_is_true(json_object_get(data, "renewable"));
	json_decref(root);
	return 0;
}

int
vault_parse_errors(const uint8_t *body, size_t len, char *msg, size_t msglen)
{
	json_t *root, *errs, *first;
	int n;

	if (msglen)
		msg[0] = '\0';
	root = load(body, len);
	if (!json_is_array(errs = json_object_get(root, "errors"))) {
		json_decref(root);
		return -EIO;
	}
	n = (int)json_array_size(errs);
	if (n > 0 && json_is_string(first = json_array_get(errs, 0)))
		clean_copy(msg, msglen, json_string_value(first));
	json_decref(root);
	return n;
}

/* Does any message of {"errors":[...]} contain word? */
static bool
errors_say(const json_t *errs, const char *word)
{
	const json_t *e;
	size_t i;

	json_array_foreach(errs, i, e)
		if (json_is_string(e) && strstr(json_string_value(e), word))
			return true;
	return false;
}

enum vault_refusal
vault_classify_refusal(long status, const uint8_t *body, size_t len,
    bool login)
{
	enum vault_refusal r = VAULT_REFUSAL_NONE;
	json_t *root, *errs;

	root = load(body, len);
	errs = json_object_get(root, "errors");
	if (!json_is_array(errs))
		errs = NULL;
	if (login) {
		/*
		 * request_handling.go handleLoginRequest: a locked alias is
		 * ErrPermissionDenied before the method runs; the methods
		 * refuse bad, expired or used-up credentials with a 400
		 * (approle: "invalid role or secret ID").
		 */
		if (status == 403 && errs && errors_say(errs,
		    "permission denied"))
			r = VAULT_REFUSAL_LOCKED_OUT;
		else if (status == 400 || status == 401)
			r = VAULT_REFUSAL_CREDENTIALS;
	} else if (status == 403 && errs) {
		if (errors_say(errs, "invalid token"))
			r = VAULT_REFUSAL_DEAD_TOKEN;
		else if (errors_say(errs, "permission denied"))
			r = VAULT_REFUSAL_DENIED;
	}
	json_decref(root);
	return r;
}

int
vault_parse_ui_mount(const uint8_t *body, size_t len, int *version,
    char *mount, size_t mountlen)
{
	json_t *root, *data, *type, *path, *ver;
	const char *t, *vs;
	int r = 0;

	*version = 0;
	if (mountlen)
		mount[0] = '\0';
	root = load(body, len);
	data = json_object_get(root, "data");
	type = json_object_get(data, "type");
	path = json_object_get(data, "path");
	if (!json_is_string(type) || !json_is_string(path)) {
		json_decref(root);
		return -EIO;
	}
	t = json_string_value(type);
	clean_copy(mount, mountlen, json_string_value(path));
	/* The options of a KV mount: {"version": "2"}, or none for v1. */
	ver = json_object_get(json_object_get(data, "options"), "version");
	vs = json_is_string(ver) ? json_string_value(ver) : "1";
	if (strcmp(t, "kv") != 0 && strcmp(t, "generic") != 0)
		r = -ENOTSUP;
	else if (strcmp(vs, "2") == 0)
		*version = 2;
	else if (strcmp(vs, "1") == 0 || !*vs)
		*version = 1;
	else
		r = -ENOTSUP;
	json_decref(root);
	return r;
}

int
vault_parse_list(const uint8_t *body, size_t len, char ***names, size_t *n,
    char *errbuf, size_t errlen)
{
	json_t *root, *keys, *k;
	char **out;
	size_t i;

	*names = NULL;
	*n = 0;
	root = load(body, len);
	keys = json_object_get(json_object_get(root, "data"), "keys");
	if (!json_is_array(keys)) {
		snprintf(errbuf, errlen, "not a LIST answer (no data.keys)");
		json_decref(root);
		return -EIO;
	}
	if (!(out = calloc(json_array_size(keys) + 1, sizeof(*out)))) {
		json_decref(root);
		return -ENOMEM;
	}
	json_array_foreach(keys, i, k) {
		if (!json_is_string(k) || json_string_length(k) == 0 ||
		    strlen(json_string_value(k)) != json_string_length(k)) {
			snprintf(errbuf, errlen, "data.keys[%zu] is not a name",
			    i);
			goto fail;
		}
		if (!(out[i] = strdup(json_string_value(k)))) {
			snprintf(errbuf, errlen, "out of memory");
			goto fail;
		}
	}
	*n = json_array_size(keys);
	*names = out;
	json_decref(root);
	return 0;
fail:
	for (i = 0; out[i]; i++)
		free(out[i]);
	free(out);
	json_decref(root);
	return -EIO;
}

/* The first of a 404's warnings (a v1 path on a v2 mount says so). */
void
vault_first_warning(const uint8_t *body, size_t len, char *msg, size_t msglen)
{
	json_t *root = load(body, len), *w;

	msg[0] = '\0';
	w = json_array_get(json_object_get(root, "warnings"), 0);
	if (json_is_string(w))
		clean_copy(msg, msglen, json_string_value(w));
	json_decref(root);
}

