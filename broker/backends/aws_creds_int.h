/*
 * aws_creds_int.h: what the files of the credential chain share (the
 * chain itself in aws_creds.c, the shared files in aws_ini.c, the remote
 * sources and their answers in aws_creds_remote.c). Not an interface.
 */
#ifndef SECRETSFS_AWS_CREDS_INT_H
#define SECRETSFS_AWS_CREDS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <secretsfs/aws_creds.h>
#include <secretsfs/http.h>

#define CRED_FILE_MAX		(256u << 10)	/* shared credentials/config */
#define TOKEN_FILE_MAX		(64u << 10)	/* web identity, container */
#define TOKEN_MAX		(16u << 10)	/* a session token */
#define REFRESH_MARGIN_MAX	300		/* seconds before expiry */
#define RETRY_AFTER_FAILURE	2		/* seconds between failed refreshes */
#define IMDS_TOKEN_TTL		21600
#define IMDS_DEFAULT		"http://169.254.169.254"
#define ECS_HOST		"http://169.254.170.2"
#define MSG_MAX			200		/* a service's message, in errbuf */

enum source {
	SRC_STATIC,		/* config, environment or profile: never refreshed */
	SRC_WEB_IDENTITY,
	SRC_CONTAINER,
	SRC_IMDS,
};

struct aws_creds {
	enum source		 src;
	char			 source_name[128];
	char			*backend;	/* for the audit trail, or NULL */

	pthread_mutex_t		 lock;		/* cur, have, obtained, ... */
	pthread_mutex_t		 refresh;	/* one fetch at a time */
	struct aws_credentials	 cur;
	bool			 have;
	time_t			 refresh_at;
	time_t			 retry_after;	/* no refresh before, after a failure */
	int			 last_r;	/* and why it failed */
	char			 last_err[256];
	unsigned long		 fetches;

	/* remote sources */
	struct http_client	*client;
	char			*path;		/* container: the request path */
	char			*role_arn;	/* web identity */
	char			*session_name;
	char			*token_file;	/* web identity or container */
	char			*auth_token;	/* container, secmem */
	char			*imds_token;	/* secmem */
	time_t			 imds_token_exp;
};

/* --- aws_creds.c ---------------------------------------------------------- */

/* A service's words for errbuf: printable ASCII only, bounded. */
void aws_creds_clean_copy(char *dst, size_t dstlen, const char *src,
    size_t srclen);
/* The variable's value, or NULL when it is unset or empty. */
const char *aws_creds_env(const char *name);
/* Secret keys and tokens go into header values: no control bytes. */
bool aws_creds_valid_secret(const char *s, size_t n, size_t max);
/*
 * Fill out from the parts a source yields (pointers and lengths into the
 * parsed document). Checks every part; exp may be NULL for keys that do
 * not expire.
 */
int aws_creds_set(struct aws_credentials *out, const char *akid,
    size_t akid_len, const char *secret, size_t secret_len,
    const char *token, size_t token_len, const char *exp, const char *what,
    char *errbuf, size_t errlen);
/*
 * Read a file into the arena. private_only: refuse it when group/other
 * may read it. Otherwise *mode says what it is, so the caller can refuse
 * it only when it turns out to hold a key.
 */
int aws_creds_read_file(const char *path, size_t max, bool private_only,
    char **out, size_t *len, mode_t *mode, char *errbuf, size_t errlen);
/* A token file: whitespace around the token is not part of it. */
int aws_creds_read_token(const char *path, char **out, char *errbuf,
    size_t errlen);

/* --- aws_ini.c ------------------------------------------------------------ */

/*
 * The shared files. 0 with p->cur set, -ENOENT when neither file has keys
 * for the profile (*exists says whether either has the profile), or
 * another -errno with errbuf set.
 */
int aws_creds_from_profile(struct aws_creds *p,
    const struct aws_creds_options *o, const char *profile, bool *exists,
    char *errbuf, size_t errlen);

/* --- aws_creds_remote.c --------------------------------------------------- */

/*
 * "scheme://authority/path?q" -> base "scheme://authority" and path
 * "/path?q" (or "/"). Only http and https. -EINVAL.
 */
int aws_creds_split_url(const char *url, char **base, char **path,
    bool *tls);
/* The host of base ("http://h:p" or "http://[v6]:p"), without the port. */
void aws_creds_url_host(const char *base, char *host, size_t len);
/* Where plain http to a container credential endpoint may go. */
bool aws_creds_container_host_ok(const char *host);
int aws_creds_make_client(struct aws_creds *p,
    const struct aws_creds_options *o, const char *base, bool tls,
    bool metadata_service, char *errbuf, size_t errlen);
/* Fetch from p's remote source into out. */
int aws_creds_fetch_remote(struct aws_creds *p, struct aws_credentials *out,
    char *errbuf, size_t errlen);

#endif
