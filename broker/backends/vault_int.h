/*
 * vault_int.h: what the files of the Vault backend share (the client and
 * its operations in vault.c, the parsers in vault_parse.c, the
 * configuration in vault_conf.c, login and the token in vault_login.c, the
 * aws method's signed request in vault_aws.c).
 * Not an interface.
 */
#ifndef SECRETSFS_VAULT_INT_H
#define SECRETSFS_VAULT_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <secretsfs/aws_creds.h>
#include <secretsfs/backend.h>
#include <secretsfs/cfg.h>
#include <secretsfs/http.h>
#include <secretsfs/sigv4.h>
#include <secretsfs/vault.h>

#define CRED_MAX		(64u << 10)	/* role/secret id, JWT, token */
#define DEFAULT_JWT_FILE	"/var/run/secrets/kubernetes.io/serviceaccount/token"
#define MIN_RENEW_MS		250
#define LOGIN_HOLD_MIN_MS	1000
#define LOGIN_HOLD_MAX_MS	30000
#define VMSG_MAX		160
#define VAULT_ADDRS_MAX		8

enum auth_method { AUTH_CERT, AUTH_APPROLE, AUTH_KUBERNETES, AUTH_TOKEN,
    AUTH_AWS, AUTH_JWT };

/* "cert", "approle", ..., by enum auth_method (vault_conf.c). */
extern const char *const vault_method_names[6];

/* The parsed config object; strings point into it or into the env. */
struct vault_conf {
	const char		*address;	/* addrs[0] */
	const char		*addrs[VAULT_ADDRS_MAX];
	size_t			 naddrs;
	const char		*ns;
	const char		*auth_ns;	/* NULL: the root namespace */
	struct http_options	 http;
	const char		*kv_mount;
	int			 kv_version;
	enum auth_method	 method;
	const char		*auth_mount;
	const char		*cert_name;
	const char		*role_id_file;
	const char		*secret_id_file;
	const char		*role;
	const char		*jwt_file;
	const char		*token_file;
	/* aws: the auth object also holds the credential chain's options */
	const json_t		*aws_opts;
	const char		*aws_region;
	const char		*aws_server_id;
};

struct vault {
	char			*name;
	char			*ns;
	char			*auth_ns;	/* logins, the token's -self */
	char			*kv_mount;
	int			 kv_version;	/* 0: "auto", ask (under mu) */
	enum auth_method	 method;
	char			*auth_mount;
	char			*cert_name;
	char			*role_id_file;
	char			*secret_id_file;
	char			*role;
	char			*jwt_file;
	char			*token_file;
	/* aws: used under login_mu only */
	struct aws_creds	*aws_creds;
	struct sigv4_signer	*aws_signer;	/* secmem */
	char			*aws_server_id;
	char			 aws_url[128];
	/* One client per configured address (its own connections). */
	struct http_client	*http[VAULT_ADDRS_MAX];
	char			*addrs[VAULT_ADDRS_MAX];
	size_t			 naddrs;
	size_t			 cur;		/* under mu: the one that answered
						   last, tried first */

	pthread_mutex_t		 mu;		/* everything below */
	pthread_cond_t		 cond;		/* wakes the renewer */
	char			*token;		/* secmem; NULL before login */
	uint64_t		 gen;		/* bumps at every login */
	bool			 renewable;
	bool			 batch;		/* not renewed, not revoked */
	int64_t			 ttl_ms;	/* 0: never expires */
	int64_t			 login_ttl_ms;
	int64_t			 renew_at;	/* monotonic ms; 0: not due */
	uint64_t		 dead_gen;	/* Vault called it dead */
	uint64_t		 gone_gen;	/* refused its -self: replaced,
						   and revoked in case it lives */
	uint64_t		 live_gen;	/* ... and this one live, */
	int64_t			 live_at;	/* at this monotonic ms */
	int64_t			 login_hold_ms;	/* the last failure's hold */
	int64_t			 login_retry_at; /* the renewer's next login */
	int64_t			 login_next;	/* no login before (mono ms) */
	bool			 login_failed;	/* the last login */
	int			 login_err;
	char			 login_why[BACKEND_ERR_MAX];
	bool			 thread_started;
	bool			 stop;
	pthread_t		 thread;

	pthread_mutex_t		 login_mu;	/* one login at a time */
	pthread_mutex_t		 check_mu;	/* one lookup-self at a time */
};

/* --- vault_parse.c -------------------------------------------------------- */

/* obj as compact JSON, into the arena. */
int vault_dump_secmem(const json_t *obj, uint8_t **out, size_t *len);
/* The first of a 404's warnings, cleaned, into msg ("" for none). */
void vault_first_warning(const uint8_t *body, size_t len, char *msg,
    size_t msglen);

/* --- vault.c -------------------------------------------------------------- */

/*
 * The parts that are not NULL, one after the other, each percent-encoded
 * but for unreserved characters and '/'; -errno when buf is too small.
 */
int vault_build_path(char *buf, size_t len, const char *a, const char *b,
    const char *c, const char *d);
/*
 * One request to Vault with the headers every request carries. token may
 * be NULL (logins). Retries as the http options say.
 */
int vault_http(struct vault *v, const char *method, const char *path,
    const char *token, const uint8_t *body, size_t blen,
    struct http_response *resp, char *errbuf, size_t errlen);
/* The same in the auth namespace: logins and auth/token/...-self. */
int vault_http_auth(struct vault *v, const char *method, const char *path,
    const char *token, const uint8_t *body, size_t blen,
    struct http_response *resp, char *errbuf, size_t errlen);
/* "[what: ]Vault answered 503: Vault is sealed" */
void vault_describe_status(const struct http_response *resp,
    const char *what, char *errbuf, size_t errlen);

/* --- vault_conf.c --------------------------------------------------------- */

/* A path segment list fit for a URL: no empty, "." or ".." segments. */
bool vault_safe_path(const char *s, bool trailing_slash_ok);
/* The backend's config object, environment included; -EINVAL with err. */
int vault_conf_parse(const json_t *opts, const char *path,
    struct vault_conf *vc, struct cfg_err *err);
int vault_validate(const json_t *opts, const char *path,
    struct cfg_err *err);

/* --- vault_login.c -------------------------------------------------------- */

/*
 * A request with the current token. A dead token (see vault.h) is
 * replaced, once, and the request retried. 0 with *resp, whose status may
 * still be 403 (*denied then true: the token is live, the capability is
 * missing), or -errno.
 */
int vault_authed(struct vault *v, const char *method, const char *path,
    struct http_response *resp, char *errbuf, size_t errlen);

#endif
