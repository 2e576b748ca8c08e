/*
 * backend: the one interface behind which Vault, AWS Secrets Manager and
 * the development `file` backend sit.
 *
 * Plain requests in, plain results out, no pointers shared with the
 * caller beyond the result it receives: so the interface can later be
 * served across a socketpair from a separate fetcher process without its
 * callers changing.
 */
#ifndef SECRETSFS_BACKEND_H
#define SECRETSFS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include <secretsfs/cfg.h>

#define BACKEND_VERSION_MAX	128
#define BACKEND_ERR_MAX		256

struct backend_request {
	const char	*ref;		/* backend reference (path, ARN, file) */
	const char	*field;		/* JSON key to select, or NULL */
	const char	*version;	/* pinned version, or NULL */
};

/* What a fetch yields. data is a secmem block the receiver owns. */
struct backend_value {
	uint8_t		*data;
	size_t		 len;
	char		 version[BACKEND_VERSION_MAX];
	struct timespec	 changed;	/* when this version was made; 0 if unknown */
};

/* One entry of the config's "backends" object. */
struct config_backend {
	char	*name;
	char	*type;		/* "file", "vault", "aws" */
	char	*path;		/* key path of its object, for errors */
	json_t	*options;	/* its whole object; owned, for the constructor */
};

struct backend_ops {
	const char	*type;
	/* Check the backend's config object; path is its key path. */
	int	(*validate)(const json_t *opts, const char *path,
		    struct cfg_err *err);
	/* Make an instance; errbuf says why not (never a secret). */
	int	(*open)(const struct config_backend *cfg, void **impl,
		    char *errbuf, size_t errlen);
	/*
	 * Fetch one secret. 0, or -ENOENT (no such secret or version),
	 * -EACCES (the backend refused us), -EIO (anything else), with the
	 * backend's own words in errbuf. Never the value in errbuf.
	 */
	int	(*fetch)(void *impl, const struct backend_request *req,
		    struct backend_value *out, char *errbuf, size_t errlen);
	/*
	 * Optional (NULL when the backend cannot list). The names directly
	 * under prefix, as an array of *n malloc'd strings the caller frees;
	 * sub-folders end in '/'. 0, or -ENOENT (nothing there), -EACCES,
	 * -EIO.
	 */
	int	(*list)(void *impl, const char *prefix, char ***names,
		    size_t *n, char *errbuf, size_t errlen);
	void	(*close)(void *impl);
};

struct backend;

/* Validate a config object of the given type; -EINVAL with err filled. */
int backend_validate(const char *type, const json_t *opts, const char *path,
    struct cfg_err *err);

/* 0 and *out, or -errno with errbuf filled. */
int backend_open(const struct config_backend *cfg, struct backend **out,
    char *errbuf, size_t errlen);
int backend_fetch(struct backend *b, const struct backend_request *req,
    struct backend_value *out, char *errbuf, size_t errlen);
/* -ENOTSUP when the backend cannot list. */
int backend_list(struct backend *b, const char *prefix, char ***names,
    size_t *n, char *errbuf, size_t errlen);
const char *backend_name(const struct backend *b);
const char *backend_type(const struct backend *b);
/* NULL is fine. */
void backend_close(struct backend *b);

/* Wipe and free the value's bytes; the struct itself is the caller's. */
void backend_value_clear(struct backend_value *v);

/*
 * Replace v's bytes with those of one member of the JSON object they hold:
 * a string member is served as its raw text, anything else as compact
 * JSON. -ENOENT when the member is missing, -EINVAL when v is not a JSON
 * object. The old bytes are wiped either way on success.
 */
int backend_select_field(struct backend_value *v, const char *field,
    char *errbuf, size_t errlen);
/*
 * The same selection from bytes the caller keeps: 0 and *out (secmem,
 * NUL-terminated, *olen bytes before the NUL), or -ENOENT, -EINVAL,
 * -ENOMEM. The one copy of the rule: the cache serves `field` and a
 * directory's keys with it.
 */
int backend_select(const uint8_t *data, size_t dlen, const char *field,
    uint8_t **out, size_t *olen, char *errbuf, size_t errlen);

/*
 * Authentication events (a login, a token renewal, a failure of either)
 * that backends report for the audit trail. The broker registers one hook
 * per process before opening backends; backends call backend_report_auth
 * from any thread. err is 0 or a positive errno; reason is fixed text,
 * never a token or a response body.
 */
typedef void (*backend_auth_hook)(void *arg, const char *backend,
    const char *method, const char *action, bool ok, int err,
    long long ttl, const char *reason);
void backend_set_auth_hook(backend_auth_hook fn, void *arg);
void backend_report_auth(const char *backend, const char *method,
    const char *action, bool ok, int err, long long ttl, const char *reason);

/*
 * Route every later backend_open of this process through ops (the
 * fetcher's proxies): config checks stay local, the backend itself lives
 * in another process. NULL puts things back.
 */
void backend_set_remote(const struct backend_ops *ops);

/*
 * The backends' operations, each defined by its backend (backend_file.c,
 * vault.c, aws.c), so that the registry includes none of their headers.
 */
extern const struct backend_ops backend_file_ops;
extern const struct backend_ops backend_vault_ops;
extern const struct backend_ops backend_aws_ops;

#endif
