/*
 * Runs in the privileged helper (naming the mount it makes, finding dead
 * binds) and in the `secretsfs repair` CLI.
 *
 * repair: reading /proc/<pid>/mountinfo lines, and telling our mounts
 * (and whose they are) from the others. Pure functions, fuzzed and unit
 * tested on their own.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secretsfs/repair.h>

static int
decode(char *dst, size_t dstlen, const char *src, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		char c = src[i];

		if (c == '\\') {
			unsigned v = 0;

			if (len - i < 4)
				return -EINVAL;
			for (int k = 1; k <= 3; k++) {
				if (src[i + k] < '0' || src[i + k] > '7')
					return -EINVAL;
				v = v * 8 + (unsigned)(src[i + k] - '0');
			}
			if (v == 0 || v > 0xff)
				return -EINVAL;
			c = (char)v;
			i += 3;
		}
		if (o + 1 >= dstlen)
			return -ENAMETOOLONG;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return 0;
}

/* The next space-separated field of *p, or NULL at the end of the line. */
static const char *
next_field(const char **p, size_t *len)
{
	const char *s = *p, *e;

	if (*s == '\0' || *s == '\n')
		return NULL;
	for (e = s; *e != '\0' && *e != ' ' && *e != '\n'; e++)
		;
	*len = (size_t)(e - s);
	*p = *e == ' ' ? e + 1 : e;
	return s;
}

int
repair_parse_mountinfo(const char *line, struct repair_mountinfo *out)
{
	const char *p = line, *f[6], *s;
	size_t len[6], l;
	char num[32];
	int r;

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < 6; i++)
		if (!(f[i] = next_field(&p, &len[i])) || len[i] == 0)
			return -EINVAL;
	for (int i = 0; i < 3; i++) {
		if (len[i] >= sizeof(num))
			return -EINVAL;
		memcpy(num, f[i], len[i]);
		num[len[i]] = '\0';
		if (i == 0 && sscanf(num, "%d%n", &out->mnt_id, &r) != 1)
			return -EINVAL;
		if (i == 1 && sscanf(num, "%d%n", &out->parent_id, &r) != 1)
			return -EINVAL;
		if (i == 2 && sscanf(num, "%u:%u%n", &out->major, &out->minor,
		    &r) != 2)
			return -EINVAL;
		if ((size_t)r != len[i])
			return -EINVAL;
	}
	if ((r = decode(out->root, sizeof(out->root), f[3], len[3])) < 0 ||
	    (r = decode(out->target, sizeof(out->target), f[4], len[4])) < 0 ||
	    (r = decode(out->options, sizeof(out->options), f[5], len[5])) < 0)
		return r;
	/* Optional fields, up to the separator. */
	for (;;) {
		if (!(s = next_field(&p, &l)))
			return -EINVAL;
		if (l == 1 && *s == '-')
			break;
	}
	if (!(s = next_field(&p, &l)) ||
	    (r = decode(out->fstype, sizeof(out->fstype), s, l)) < 0)
		return s ? r : -EINVAL;
	if (!(s = next_field(&p, &l)) ||
	    (r = decode(out->source, sizeof(out->source), s, l)) < 0)
		return s ? r : -EINVAL;
	/* Super options follow; nothing here needs them. */
	if (out->root[0] != '/' || out->target[0] != '/')
		return -EINVAL;
	return 0;
}

bool
repair_is_secretsfs(const struct repair_mountinfo *mi)
{
	return strcmp(mi->fstype, REPAIR_FSTYPE) == 0;
}

int
repair_fsname(const char *mountpoint, char *buf, size_t len)
{
	int n;

	if (mountpoint[0] != '/' || strpbrk(mountpoint, ",\\"))
		return -EINVAL;
	n = snprintf(buf, len, "%s:%s", REPAIR_FSNAME, mountpoint);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

enum repair_owner
repair_owner(const char *source, const char *mountpoint)
{
	size_t n = strlen(REPAIR_FSNAME);

	if (strcmp(source, REPAIR_FSNAME) == 0)
		return REPAIR_OWNER_UNNAMED;
	if (strncmp(source, REPAIR_FSNAME, n) == 0 && source[n] == ':' &&
	    strcmp(source + n + 1, mountpoint) == 0)
		return REPAIR_OWNER_OURS;
	return REPAIR_OWNER_OTHER;
}
