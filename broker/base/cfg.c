/*
 * cfg: the pieces every parser of a configuration section shares, so that
 * each section reports its errors the same way.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
