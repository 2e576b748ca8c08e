/*
 * cfg: what every parser of a configuration section shares: one error
 * type with the key path and its place in the file, and the parsers of
 * durations and sizes.
 */
#ifndef SECRETSFS_CFG_H
#define SECRETSFS_CFG_H

#include <stddef.h>
#include <stdint.h>

/*
 * Where and why a configuration is wrong. `path` names the key, e.g.
 * `secrets.db_password.mode`, `rules[2].match.label`; a key that holds
 * anything but [A-Za-z0-9_-] is written in double quotes:
 * `secrets."tls.crt".mode`. Sub-parsers (policy, audit, backends) fill path
 * and msg; config fills line and col from the file's text.
 */
struct cfg_err {
	char	path[256];
	char	msg[256];
	int	line;	/* 1-based; 0 when unknown */
	int	col;
};

/* Fill err (printf-style message). Always returns -EINVAL. */
int cfg_err_set(struct cfg_err *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "250ms", "30s", "5m", "1h", "2d", or a bare number of seconds. */
int cfg_parse_duration(const char *s, int64_t *ms);
/* "4096", "64KiB", "16MiB", "1GiB" (also KB/MB/GB as powers of 1000). */
int cfg_parse_size(const char *s, uint64_t *bytes);

/* "FILE:LINE:COL: PATH: MSG" into buf. */
void cfg_err_format(const struct cfg_err *err, const char *file,
    char *buf, size_t len);

#endif
