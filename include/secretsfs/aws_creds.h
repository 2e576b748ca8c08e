/*
 * aws_creds: where the AWS backend's credentials come from, and keeping
 * temporary ones fresh.
 *
 * The chain, in the order the AWS SDKs use, first match wins; the source
 * is chosen when the provider is made (from the config, the environment
 * and the files, without any network), the credentials themselves are
 * fetched on first use:
 *
 *   1. "credentials" in the backend config: access_key_id,
 *      secret_access_key [, session_token]
 *   2. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY [+ AWS_SESSION_TOKEN]
 *   3. the shared files, profile from config "profile", else AWS_PROFILE,
 *      else AWS_DEFAULT_PROFILE, else "default": config
 *      "credentials_file", else AWS_SHARED_CREDENTIALS_FILE, else
 *      ~/.aws/credentials (sections [name]), then config "config_file",
 *      else AWS_CONFIG_FILE, else ~/.aws/config (sections [profile name]
 *      and [default]); keys aws_access_key_id, aws_secret_access_key,
 *      aws_session_token. A file that holds a key and that group or other
 *      may read is refused. A profile named explicitly that neither file
 *      has is an error, and so is a file the config names that is not
 *      there (a missing ~/.aws file or variable's file is skipped).
 *   4. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *      [+ AWS_ROLE_SESSION_NAME] -> STS AssumeRoleWithWebIdentity
 *      (unsigned POST) at config "sts_endpoint", else
 *      https://sts.<region>.amazonaws.com. The token file is re-read at
 *      every refresh (Kubernetes rotates it).
 *   5. container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on
 *      http://169.254.170.2) or AWS_CONTAINER_CREDENTIALS_FULL_URI (https,
 *      or http to loopback, 169.254.170.2, 169.254.170.23, [fd00:ec2::23]),
 *      with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (re-read every time) or
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN as the Authorization header.
 *   6. EC2 IMDSv2 at config "imds_endpoint", else
 *      AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254;
 *      skipped when AWS_EC2_METADATA_DISABLED=true. No IMDSv1 fallback.
 *
 * Temporary credentials are refreshed ahead of their expiry, by
 * min(5 minutes, a third of their lifetime), so even 5-second test
 * credentials are replaced before they lapse. Every secret byte (secret
 * key, session token, web identity and container tokens) lives in secmem
 * and never reaches an error message. Thread-safe.
 */
#ifndef SECRETSFS_AWS_CREDS_H
#define SECRETSFS_AWS_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include <secretsfs/http.h>
#include <secretsfs/sigv4.h>

/* One set of credentials. The strings it points to are the holder's. */
struct aws_credentials {
	char	 access_key_id[SIGV4_AKID_MAX + 1];	/* not secret */
	char	*secret_access_key;	/* secmem */
	char	*session_token;		/* secmem, or NULL */
	time_t	 expiration;		/* UTC; 0 when they do not expire */
};

/* Wipe and free the secret parts and zero *c. NULL is fine. */
void aws_credentials_clear(struct aws_credentials *c);

/* Deep copy into secmem; 0 or -ENOMEM (dst is then cleared). */
int aws_credentials_copy(struct aws_credentials *dst,
    const struct aws_credentials *src);

/* What the provider needs from the backend config. Borrowed by _new. */
struct aws_creds_options {
	/*
	 * The backend's name. When set, every fetch of temporary credentials
	 * (web identity, container, IMDS), successful or not, is reported
	 * with backend_report_auth() for the audit trail: method
	 * "web-identity", "container" or "imds"; action "login" for the
	 * first credentials, "renew" for each later set; the seconds they
	 * are good for; on failure a fixed reason. Never a key or a token.
	 */
	const char	*backend;
	const json_t	*credentials;	/* "credentials" object, or NULL */
	const char	*profile;	/* "profile", or NULL */
	const char	*credentials_file; /* NULL: env, else ~/.aws/credentials */
	const char	*config_file;	/* NULL: env, else ~/.aws/config */
	const char	*region;	/* for the default STS endpoint */
	const char	*sts_endpoint;	/* NULL: https://sts.<region>.amazonaws.com */
	const char	*imds_endpoint;	/* NULL: env, else http://169.254.169.254 */
	/*
	 * Trust and limits for the credential endpoints (CA file, client
	 * certificate, timeouts); tls is set per endpoint from its scheme.
	 * NULL: http_options_default().
	 */
	const struct http_options *http;
};

struct aws_creds;

/*
 * Choose the source (see the chain above) and make the provider. No
 * network I/O. 0 and *out, or -errno with errbuf saying why (-ENOENT: no
 * source at all; -EPERM: a credentials file group/other can read;
 * -EINVAL: a malformed variable, file or config key). The caller frees
 * *out with aws_creds_free().
 */
int aws_creds_new(const struct aws_creds_options *o, struct aws_creds **out,
    char *errbuf, size_t errlen);
void aws_creds_free(struct aws_creds *p);

/*
 * Credentials to sign with now: a private copy in secmem (release it with
 * aws_credentials_clear). Fetches or refreshes when due; one thread
 * fetches while the others wait, or go on with the old credentials while
 * those are still valid. 0, or -EACCES (the credential service refused
 * us), -EIO/-ETIMEDOUT/-ECONNREFUSED (it could not be reached or made no
 * sense), with errbuf saying why (never a secret).
 */
int aws_creds_get(struct aws_creds *p, struct aws_credentials *out,
    char *errbuf, size_t errlen);

/*
 * The server said the credentials with this access key id expired: drop
 * them so the next aws_creds_get() fetches new ones. Static credentials
 * cannot be refreshed: returns false for those (and for a key id that is
 * no longer current, after another thread refreshed: true).
 */
bool aws_creds_invalidate(struct aws_creds *p, const char *access_key_id);

/* "config", "environment", "profile NAME", "web identity", "container",
 * "imds". */
const char *aws_creds_source(const struct aws_creds *p);

/* How many times credentials were fetched from a remote source. */
unsigned long aws_creds_fetches(const struct aws_creds *p);

/*
 * The "region" of the profile in the shared config file (profile as in
 * the chain: the argument, else AWS_PROFILE, AWS_DEFAULT_PROFILE,
 * "default"; the file config_file, else AWS_CONFIG_FILE, else
 * ~/.aws/config), for a backend configured with no region. 0 and buf
 * filled, or -ENOENT.
 */
int aws_creds_profile_region(const char *profile, const char *config_file,
    char *buf, size_t len);

/* --- parsers, exported for unit tests ------------------------------------ */

/*
 * The STS answer to AssumeRoleWithWebIdentity (awsQuery XML). On success
 * 0 with *out filled (secmem). An <ErrorResponse> gives -EACCES for
 * InvalidIdentityToken, AccessDenied, ExpiredToken(Exception),
 * IDPRejectedClaim; -EAGAIN for Throttling and IDPCommunicationError;
 * -EIO for anything else; errbuf then holds "STS <Code> (request id
 * <id>): <Message>". Malformed XML: -EIO.
 */
int aws_creds_parse_sts_xml(const char *xml, size_t len,
    struct aws_credentials *out, char *errbuf, size_t errlen);

/*
 * ECS/EKS container credentials JSON: AccessKeyId, SecretAccessKey, Token,
 * Expiration (ISO 8601). An object with "code"/"message" (or Code/Message)
 * and no keys is an error: -EACCES. Malformed: -EIO.
 */
int aws_creds_parse_container_json(const char *json, size_t len,
    struct aws_credentials *out, char *errbuf, size_t errlen);

/*
 * IMDS iam/security-credentials/<role> JSON. "Code" must be "Success";
 * AccessKeyId, SecretAccessKey, Token, Expiration are required.
 */
int aws_creds_parse_imds_json(const char *json, size_t len,
    struct aws_credentials *out, char *errbuf, size_t errlen);

/*
 * The value of key in the given profile of a shared config (config_file
 * true: sections "[profile NAME]", and "[default]" or "[profile default]")
 * or credentials file (config_file false: "[NAME]"). Keys are compared
 * without regard to case; whitespace around names and values is trimmed;
 * whole-line comments start with '#' or ';', and a '#' or ';' preceded by
 * whitespace starts a comment after a value. *value is a secmem string the
 * caller frees with secmem_free. 0, -ENOENT (no such key; *found_profile
 * says whether the profile exists), -ENOMEM.
 */
int aws_creds_ini_get(const char *text, size_t len, const char *profile,
    bool config_file, const char *key, char **value, bool *found_profile);

/*
 * The static credentials of a profile (aws_access_key_id,
 * aws_secret_access_key, optional aws_session_token). 0 and *out,
 * -ENOENT when the profile is absent (*found_profile false) or has no
 * keys, -EINVAL when it has only one of the two keys (errbuf says which).
 */
int aws_creds_parse_ini(const char *text, size_t len, const char *profile,
    bool config_file, struct aws_credentials *out, bool *found_profile,
    char *errbuf, size_t errlen);

/* "2014-10-24T23:00:23Z", optional fraction, "Z" or "+hh:mm". -EINVAL. */
int aws_creds_parse_time(const char *s, time_t *out);

/*
 * When to refresh credentials obtained at `obtained` that expire at
 * `expiration`: expiration - min(300 s, lifetime / 3 rounded up).
 */
time_t aws_creds_refresh_at(time_t obtained, time_t expiration);

#endif
