/*
 * A small XML reader, enough for awsQuery answers: elements, attributes,
 * comments, processing instructions, CDATA, the five named entities and
 * character references. A DOCTYPE is refused outright (no entity
 * definitions, no expansion).
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <secretsfs/aws_xml.h>
#include <secretsfs/secmem.h>

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
int
aws_xml_find(const char *xml, size_t len, const char *const *path, size_t plen,
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
char *
aws_xml_get(const char *xml, size_t len, const char *const *path, size_t plen,
    size_t *outlen, int *err)
{
	const char *v;
	size_t vl;
	char *s;
	int r;

	if ((r = aws_xml_find(xml, len, path, plen, &v, &vl)) < 0) {
		*err = r;
		return NULL;
	}
	if (!(s = xml_text(v, vl, outlen)))
		*err = -EIO;
	return s;
}
