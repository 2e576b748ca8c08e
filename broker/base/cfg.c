/*
 * cfg: the pieces every parser of a configuration section shares, so that
 * each section names its keys and reports its errors the same way.
 *
 * jansson parses; it does not remember where a value stood in the text,
 * so errors are placed by walking the original text along the key path
 * of the bad value (cfg_locate()).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <secretsfs/cfg.h>

int
cfg_err_set(struct cfg_err *err, const char *path, const char *fmt, ...)
{
	va_list ap;

	snprintf(err->path, sizeof(err->path), "%s", path ? path : "");
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	err->line = err->col = 0;
	return -EINVAL;
}

void
cfg_err_format(const struct cfg_err *err, const char *file, char *buf,
    size_t len)
{
	if (err->line > 0 && err->path[0])
		snprintf(buf, len, "%s:%d:%d: %s: %s", file, err->line,
		    err->col, err->path, err->msg);
	else if (err->line > 0)
		snprintf(buf, len, "%s:%d:%d: %s", file, err->line, err->col,
		    err->msg);
	else if (err->path[0])
		snprintf(buf, len, "%s: %s: %s", file, err->path, err->msg);
	else
		snprintf(buf, len, "%s: %s", file, err->msg);
}

/* --- durations and sizes ---------------------------------------------- */

int
cfg_parse_duration(const char *s, int64_t *ms)
{
	static const struct { const char *u; int64_t ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
		{ "d", 86400000 }, { "", 1000 },
	};
	char *end;
	double v;
	size_t i;

	if (!s || !*s || isspace((unsigned char)*s) || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end, units[i].u) == 0) {
			if (v * units[i].ms > (double)INT64_MAX / 2)
				return -ERANGE;
			*ms = (int64_t)(v * units[i].ms);
			return 0;
		}
	return -EINVAL;
}

int
cfg_parse_size(const char *s, uint64_t *bytes)
{
	static const struct { const char *u; uint64_t mul; } units[] = {
		{ "", 1 }, { "B", 1 },
		{ "KiB", 1ull << 10 }, { "MiB", 1ull << 20 }, { "GiB", 1ull << 30 },
		{ "KB", 1000 }, { "MB", 1000000 }, { "GB", 1000000000 },
	};
	char *end;
	unsigned long long v;
	size_t i;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end, units[i].u) == 0) {
			if (v > UINT64_MAX / units[i].mul)
				return -ERANGE;
			*bytes = v * units[i].mul;
			return 0;
		}
	return -EINVAL;
}

/* --- building key paths ------------------------------------------------ */

static bool
key_is_plain(const char *k)
{
	if (*k == '\0')
		return false;
	for (; *k; k++)
		if (!isalnum((unsigned char)*k) && *k != '_' && *k != '-')
			return false;
	return true;
}

/* A path too long for the buffer ends in "..." rather than silently. */
static void
path_mark_cut(char *buf, size_t len, int n)
{
	if ((n < 0 || (size_t)n >= len) && len >= 4)
		memcpy(buf + len - 4, "...", 4);
}

void
cfg_path_key(char *buf, size_t len, const char *parent, const char *key)
{
	const char *dot = parent && *parent ? "." : "";
	size_t n;
	int r;

	if (len == 0)
		return;
	if (!parent)
		parent = "";
	if (key_is_plain(key)) {
		path_mark_cut(buf, len, snprintf(buf, len, "%s%s%s", parent,
		    dot, key));
		return;
	}
	r = snprintf(buf, len, "%s%s\"", parent, dot);
	if (r < 0 || (size_t)r >= len) {
		path_mark_cut(buf, len, r);
		return;
	}
	n = (size_t)r;
	for (; *key; key++) {
		if (n + 2 + (*key == '"' || *key == '\\') >= len) {
			buf[n] = '\0';
			path_mark_cut(buf, len, -1);
			return;
		}
		if (*key == '"' || *key == '\\')
			buf[n++] = '\\';
		buf[n++] = *key;
	}
	buf[n++] = '"';
	buf[n] = '\0';
}

void
cfg_path_index(char *buf, size_t len, const char *parent, size_t i)
{
	if (len == 0)
		return;
	path_mark_cut(buf, len, snprintf(buf, len, "%s[%zu]",
	    parent ? parent : "", i));
}

/* --- did you mean ------------------------------------------------------ */

/*
 * Optimal string alignment distance (Levenshtein with adjacent swaps,
 * "moed" for "mode" is one edit), capped: words longer than CFG_NEAR_MAX
 * are never near anything.
 */
#define CFG_NEAR_MAX	64

static size_t
osa_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[CFG_NEAR_MAX + 1][CFG_NEAR_MAX + 1];

	if (la > CFG_NEAR_MAX || lb > CFG_NEAR_MAX)
		return SIZE_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t v = d[i - 1][j] + 1;

			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	return d[la][lb];
}

const char *
cfg_nearest(const char *word, const char *const *cands, size_t n)
{
	size_t best = SIZE_MAX, d, max;
	const char *found = NULL;

	/* One edit in a short word, up to three in a long one. */
	max = strlen(word) / 3 + 1;
	if (max > 3)
		max = 3;
	for (size_t i = 0; i < n && cands[i]; i++) {
		if (strcmp(word, cands[i]) == 0)
			continue;
		if ((d = osa_distance(word, cands[i])) <= max && d < best) {
			best = d;
			found = cands[i];
		}
	}
	return found;
}

/* --- typed getters ----------------------------------------------------- */

int
cfg_check_keys(const json_t *obj, const char *path,
    const char *const *allowed, struct cfg_err *err)
{
	char p[CFG_PATH_MAX];
	const char *k, *near;
	json_t *v;

	json_object_foreach((json_t *)obj, k, v) {
		const char *const *a;

		for (a = allowed; *a && strcmp(*a, k) != 0; a++)
			;
		if (!*a) {
			cfg_path_key(p, sizeof(p), path, k);
			if ((near = cfg_nearest(k, allowed, SIZE_MAX)))
				return cfg_err_set(err, p, "unknown key "
				    "(did you mean \"%s\"?)", near);
			return cfg_err_set(err, p, "unknown key");
		}
	}
	return 0;
}

/*
 * The member, or NULL when it is missing (0, or -EINVAL when it was
 * required). p receives the member's path.
 */
static int
member(const json_t *obj, const char *path, const char *key, unsigned flags,
    char *p, size_t plen, json_t **v, struct cfg_err *err)
{
	cfg_path_key(p, plen, path, key);
	*v = json_object_get(obj, key);
	if (*v && (!(flags & CFG_NULL) || !json_is_null(*v)))
		return 0;
	*v = NULL;
	if (flags & CFG_REQUIRED)
		return cfg_err_set(err, path && *path ? path : p,
		    "missing required key \"%s\"", key);
	return 0;
}

int
cfg_get_object(const json_t *obj, const char *path, const char *key,
    unsigned flags, json_t **out, struct cfg_err *err)
{
	char p[CFG_PATH_MAX];
	json_t *v;
	int r;

	*out = NULL;
	if ((r = member(obj, path, key, flags, p, sizeof(p), &v, err)) < 0 ||
	    !v)
		return r;
	if (!json_is_object(v))
		return cfg_err_set(err, p, "expected an object");
	*out = v;
	return 0;
}

int
cfg_get_string(const json_t *obj, const char *path, const char *key,
    unsigned flags, const char **out, struct cfg_err *err)
{
	char p[CFG_PATH_MAX];
	json_t *v;
	int r;

	if ((r = member(obj, path, key, flags, p, sizeof(p), &v, err)) < 0 ||
	    !v)
		return r;
	if (!json_is_string(v) || json_string_length(v) == 0)
		return cfg_err_set(err, p, "expected a non-empty string");
	if (strlen(json_string_value(v)) != json_string_length(v))
		return cfg_err_set(err, p, "string holds a NUL byte");
	*out = json_string_value(v);
	return 0;
}

int
cfg_get_path(const json_t *obj, const char *path, const char *key,
    unsigned flags, const char **out, struct cfg_err *err)
{
	char p[CFG_PATH_MAX];
	json_t *v;
	int r;

	if ((r = member(obj, path, key, flags, p, sizeof(p), &v, err)) < 0 ||
	    !v)
		return r;
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return cfg_err_set(err, p, "expected a file path");
	if (json_string_value(v)[0] != '/')
		return cfg_err_set(err, p, "expected an absolute path");
	*out = json_string_value(v);
	return 0;
}

int
cfg_get_bool(const json_t *obj, const char *path, const char *key,
    unsigned flags, bool *out, struct cfg_err *err)
{
	char p[CFG_PATH_MAX];
	json_t *v;
	int r;

	if ((r = member(obj, path, key, flags, p, sizeof(p), &v, err)) < 0 ||
	    !v)
		return r;
	if (!json_is_boolean(v))
		return cfg_err_set(err, p, "expected true or false");
	*out = json_is_true(v);
	return 0;
}

int
cfg_get_int(const json_t *obj, const char *path, const char *key,
    unsigned flags, long long min, long long max, long long *out,
    struct cfg_err *err)
{
	char p[CFG_PATH_MAX];
	json_t *v;
	int r;

	if ((r = member(obj, path, key, flags, p, sizeof(p), &v, err)) < 0 ||
	    !v)
		return r;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max)
		return cfg_err_set(err, p, "expected an integer from %lld "
		    "to %lld", min, max);
	*out = json_integer_value(v);
	return 0;
}

int
cfg_get_duration(const json_t *obj, const char *path, const char *key,
    unsigned flags, int64_t *ms, struct cfg_err *err)
{
	char p[CFG_PATH_MAX];
	int64_t v_ms;
	json_t *v;
	int r;

	if ((r = member(obj, path, key, flags, p, sizeof(p), &v, err)) < 0 ||
	    !v)
		return r;
	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) < INT64_MAX / 2000)
		v_ms = json_integer_value(v) * 1000;
	else if (!json_is_string(v) ||
	    cfg_parse_duration(json_string_value(v), &v_ms) < 0)
		return cfg_err_set(err, p, "expected a duration such as "
		    "\"500ms\", \"30s\", \"5m\" or \"1h\"");
	if ((flags & CFG_NONZERO) && v_ms <= 0)
		return cfg_err_set(err, p, "must be more than 0");
	*ms = v_ms;
	return 0;
}

int
cfg_get_size(const json_t *obj, const char *path, const char *key,
    unsigned flags, uint64_t *bytes, struct cfg_err *err)
{
	char p[CFG_PATH_MAX];
	json_t *v;
	int r;

	if ((r = member(obj, path, key, flags, p, sizeof(p), &v, err)) < 0 ||
	    !v)
		return r;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*bytes = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v) ||
	    cfg_parse_size(json_string_value(v), bytes) < 0)
		return cfg_err_set(err, p, "expected a size such as "
		    "\"4096\", \"64KiB\" or \"16MiB\"");
	return 0;
}

int
cfg_get_mode(const json_t *obj, const char *path, const char *key,
    unsigned flags, mode_t *mode, struct cfg_err *err)
{
	char p[CFG_PATH_MAX], *end;
	const char *s;
	json_t *v;
	long m;
	int r;

	if ((r = member(obj, path, key, flags, p, sizeof(p), &v, err)) < 0 ||
	    !v)
		return r;
	if (!json_is_string(v))
		return cfg_err_set(err, p, "expected an octal string such "
		    "as \"0440\"");
	s = json_string_value(v);
	errno = 0;
	m = strtol(s, &end, 8);
	if (!*s || *end || errno || m < 0 || m > 07777)
		return cfg_err_set(err, p, "expected an octal string such "
		    "as \"0440\"");
	*mode = (mode_t)m;
	return 0;
}

/* --- placing a key path in the text ------------------------------------ */

struct cursor {
	const char	*s;
	size_t		 i, n;
};

static void
skip_ws(struct cursor *c)
{
	while (c->i < c->n && isspace((unsigned char)c->s[c->i]))
		c->i++;
}

/* Past a string whose opening quote is at c->i; its raw bytes in *b,*e. */
static int
skip_string(struct cursor *c, size_t *b, size_t *e)
{
	if (c->i >= c->n || c->s[c->i] != '"')
		return -1;
	*b = ++c->i;
	while (c->i < c->n && c->s[c->i] != '"') {
		if (c->s[c->i] == '\\')
			c->i++;
		c->i++;
	}
	if (c->i >= c->n)
		return -1;
	*e = c->i++;
	return 0;
}

static int
skip_value(struct cursor *c)
{
	size_t b, e;
	int depth = 0;

	skip_ws(c);
	do {
		if (c->i >= c->n)
			return -1;
		switch (c->s[c->i]) {
		case '"':
			if (skip_string(c, &b, &e) < 0)
				return -1;
			continue;
		case '{': case '[':
			depth++;
			break;
		case '}': case ']':
			if (depth == 0)
				return 0;	/* end of the enclosing container */
			depth--;
			break;
		case ',':
			if (depth == 0)
				return 0;
			break;
		default:
			if (depth == 0 && isspace((unsigned char)c->s[c->i]))
				return 0;
		}
		c->i++;
	} while (depth > 0 || (c->i < c->n && !strchr(",}] \t\r\n", c->s[c->i])));
	return 0;
}

static int
hex4(const char *s, size_t n, unsigned *v)
{
	*v = 0;
	if (n < 4)
		return -1;
	for (int k = 0; k < 4; k++) {
		int c = s[k];

		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

/*
 * The raw bytes of a JSON string decoded, so that a key written with
 * escapes ("a\u002eb") is still the key "a.b". -1 when it does not fit.
 */
static ssize_t
json_unescape(const char *s, size_t n, char *out, size_t len)
{
	size_t i = 0, k = 0;
	unsigned u, lo;

	while (i < n) {
		if (k + 4 >= len)
			return -1;
		if (s[i] != '\\') {
			out[k++] = s[i++];
			continue;
		}
		if (++i >= n)
			return -1;
		switch (s[i++]) {
		case 'b': out[k++] = '\b'; break;
		case 'f': out[k++] = '\f'; break;
		case 'n': out[k++] = '\n'; break;
		case 'r': out[k++] = '\r'; break;
		case 't': out[k++] = '\t'; break;
		case 'u':
			if (hex4(s + i, n - i, &u) < 0)
				return -1;
			i += 4;
			if (u >= 0xd800 && u < 0xdc00 && i + 6 <= n &&
			    s[i] == '\\' && s[i + 1] == 'u' &&
			    hex4(s + i + 2, n - i - 2, &lo) == 0 &&
			    lo >= 0xdc00 && lo < 0xe000) {
				u = 0x10000 + ((u - 0xd800) << 10) +
				    (lo - 0xdc00);
				i += 6;
			}
			if (u < 0x80)
				out[k++] = (char)u;
			else if (u < 0x800) {
				out[k++] = (char)(0xc0 | (u >> 6));
				out[k++] = (char)(0x80 | (u & 0x3f));
			} else if (u < 0x10000) {
				out[k++] = (char)(0xe0 | (u >> 12));
				out[k++] = (char)(0x80 | ((u >> 6) & 0x3f));
				out[k++] = (char)(0x80 | (u & 0x3f));
			} else {
				out[k++] = (char)(0xf0 | (u >> 18));
				out[k++] = (char)(0x80 | ((u >> 12) & 0x3f));
				out[k++] = (char)(0x80 | ((u >> 6) & 0x3f));
				out[k++] = (char)(0x80 | (u & 0x3f));
			}
			break;
		default:	/* \" \\ \/ */
			out[k++] = s[i - 1];
		}
	}
	return (ssize_t)k;
}

/*
 * Next segment of a key path: a key (bare, or quoted with \" and \\
 * escapes, as cfg_path_key writes it) or [index].
 */
static int
next_segment(const char **p, char *key, size_t keylen, size_t *klen,
    long *index)
{
	const char *s = *p;
	size_t k = 0;

	if (*s == '.')
		s++;
	*index = -1;
	if (*s == '[') {
		*index = strtol(s + 1, (char **)&s, 10);
		if (*s != ']' || *index < 0)
			return -1;
		*p = s + 1;
		return 0;
	}
	if (*s == '"') {
		for (s++; *s && *s != '"'; s++) {
			if (*s == '\\' && s[1])
				s++;
			if (k + 1 < keylen)
				key[k++] = *s;
		}
		if (*s != '"')
			return -1;
		s++;
	} else {
		for (; *s && *s != '.' && *s != '['; s++)
			if (k + 1 < keylen)
				key[k++] = *s;
		if (k == 0)
			return -1;
	}
	key[k] = '\0';
	*klen = k;
	*p = s;
	return 0;
}

static void
pos_of(const char *text, size_t off, int *line, int *col)
{
	size_t i;

	*line = 1;
	*col = 1;
	for (i = 0; i < off; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else
			(*col)++;
	}
}

void
cfg_locate(const char *text, size_t len, const char *path, int *line,
    int *col)
{
	struct cursor c = { text, 0, len };
	char key[CFG_PATH_MAX], have[CFG_PATH_MAX];
	size_t found, kb, ke, klen = 0;
	ssize_t hl;
	long index;

	skip_ws(&c);
	found = c.i;
	while (*path && next_segment(&path, key, sizeof(key), &klen,
	    &index) == 0) {
		skip_ws(&c);
		if (index >= 0) {
			if (c.i >= c.n || text[c.i] != '[')
				break;
			c.i++;
			for (long n = 0; n < index; n++) {
				if (skip_value(&c) < 0 ||
				    (skip_ws(&c), c.i >= c.n) ||
				    text[c.i] != ',')
					goto done;
				c.i++;
			}
			skip_ws(&c);
			found = c.i;
			continue;
		}
		if (c.i >= c.n || text[c.i] != '{')
			break;
		c.i++;
		for (;;) {
			skip_ws(&c);
			if (skip_string(&c, &kb, &ke) < 0)
				goto done;
			skip_ws(&c);
			if (c.i >= c.n || text[c.i] != ':')
				goto done;
			c.i++;
			hl = json_unescape(text + kb, ke - kb, have,
			    sizeof(have));
			if (hl >= 0 && (size_t)hl == klen &&
			    memcmp(have, key, klen) == 0) {
				found = kb - 1;
				break;
			}
			if (skip_value(&c) < 0 || (skip_ws(&c), c.i >= c.n) ||
			    text[c.i] != ',')
				goto done;
			c.i++;
		}
	}
done:
	pos_of(text, found, line, col);
}
