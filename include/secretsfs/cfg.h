/*
 * cfg: what every parser of a configuration section shares: one error
 * type with the key path and its place in the file, the key-path rule,
 * the unknown-key check, the typed getters, and the parsers of durations
 * and sizes.
 */
#ifndef SECRETSFS_CFG_H
#define SECRETSFS_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>
#include <jansson.h>

/*
 * Where and why a configuration is wrong. `path` names the key, e.g.
 * `secrets.db_password.mode`, `rules[2].match.label`; a key that holds
 * anything but [A-Za-z0-9_-] is written in double quotes, with '"' and
 * '\' escaped by a backslash: `secrets."tls.crt".mode`. Sub-parsers
 * (policy, audit, backends) fill path and msg; config fills line and col
 * from the file's text (cfg_locate).
 */
struct cfg_err {
	char	path[256];
	char	msg[256];
	int	line;	/* 1-based; 0 when unknown */
	int	col;
};

/* Room for any key path; a longer one is cut and ends in "...". */
#define CFG_PATH_MAX	256

/* Fill err (printf-style message). Always returns -EINVAL. */
int cfg_err_set(struct cfg_err *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "FILE:LINE:COL: PATH: MSG" into buf. */
void cfg_err_format(const struct cfg_err *err, const char *file,
    char *buf, size_t len);

/* "250ms", "30s", "5m", "1h", "2d", or a bare number of seconds. */
int cfg_parse_duration(const char *s, int64_t *ms);
/* "4096", "64KiB", "16MiB", "1GiB" (also KB/MB/GB as powers of 1000). */
int cfg_parse_size(const char *s, uint64_t *bytes);

/*
 * Key paths. cfg_path_key: parent.key, the key quoted when it must be
 * (just key when parent is empty or NULL). cfg_path_index: parent[i].
 * buf may not be parent.
 */
void cfg_path_key(char *buf, size_t len, const char *parent, const char *key);
void cfg_path_index(char *buf, size_t len, const char *parent, size_t i);

/*
 * The candidate nearest to word (a typo of it: a few edits, adjacent
 * swaps counted as one), or NULL when none is near. cands holds n
 * strings, or ends at a NULL (n SIZE_MAX). For "did you mean".
 */
const char *cfg_nearest(const char *word, const char *const *cands,
    size_t n);

/*
 * Every key of obj must be in allowed (NULL-terminated); otherwise
 * "unknown key" at the key's own path, with `(did you mean "KEY"?)` when
 * one of allowed is near. 0 or -EINVAL.
 */
int cfg_check_keys(const json_t *obj, const char *path,
    const char *const *allowed, struct cfg_err *err);

/*
 * Typed getters: the member key of obj at path. A missing key leaves
 * *out as it is and returns 0, or, with CFG_REQUIRED, fails with
 * `missing required key "KEY"` at path (at the key's path when path is
 * the root). With CFG_NULL a JSON null counts as missing. A wrong value
 * fails with the key's path and what was expected. 0 or -EINVAL.
 */
#define CFG_REQUIRED	0x01	/* missing is an error */
#define CFG_NULL	0x02	/* null is as missing */
#define CFG_NONZERO	0x04	/* durations: 0 is refused */

/* *out is NULL when the object is missing. */
int cfg_get_object(const json_t *obj, const char *path, const char *key,
    unsigned flags, json_t **out, struct cfg_err *err);
/* A non-empty string without NUL bytes. */
int cfg_get_string(const json_t *obj, const char *path, const char *key,
    unsigned flags, const char **out, struct cfg_err *err);
/* A non-empty string without NUL bytes that is an absolute path. */
int cfg_get_path(const json_t *obj, const char *path, const char *key,
    unsigned flags, const char **out, struct cfg_err *err);
int cfg_get_bool(const json_t *obj, const char *path, const char *key,
    unsigned flags, bool *out, struct cfg_err *err);
/* An integer from min to max. */
int cfg_get_int(const json_t *obj, const char *path, const char *key,
    unsigned flags, long long min, long long max, long long *out,
    struct cfg_err *err);
/* A string for cfg_parse_duration, or a number of seconds. */
int cfg_get_duration(const json_t *obj, const char *path, const char *key,
    unsigned flags, int64_t *ms, struct cfg_err *err);
/* A string for cfg_parse_size, or a number of bytes. */
int cfg_get_size(const json_t *obj, const char *path, const char *key,
    unsigned flags, uint64_t *bytes, struct cfg_err *err);
/* An octal string such as "0640", at most 07777. */
int cfg_get_mode(const json_t *obj, const char *path, const char *key,
    unsigned flags, mode_t *mode, struct cfg_err *err);

/*
 * Where does path point in the JSON text? The line and column of the
 * deepest member's key (or element, for an index) the path leads to, as
 * far as it can be followed; 1:1 for the root.
 */
void cfg_locate(const char *text, size_t len, const char *path, int *line,
    int *col);

#endif
