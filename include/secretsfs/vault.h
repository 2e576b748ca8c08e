/*
 * vault: the HashiCorp Vault backend (type "vault"), KV version 1 and 2.
 *
 * Configuration: one object under "backends", every key optional unless
 * said otherwise; unknown keys are errors.
 *
 *   {
 *     "type": "vault",
 *     "address": "https://vault.example:8200",
 *         Vault's URL. Default: $VAULT_ADDR; one of the two is required.
 *         https:// always; http:// only with "tls": false and a loopback
 *         host (127.0.0.0/8, ::1, localhost).
 *     "addresses": ["https://vault-0:8200", "https://vault-1:8200"],
 *         Vault HA, instead of "address": 1 to 8 nodes. The one that
 *         answered last goes first; a 503 or a node that does not answer
 *         moves to the next; a 429 is retried on its node after
 *         Retry-After; a 307/308 is followed once, only to one of these.
 *     "namespace": "team-a/",
 *         Vault Enterprise namespace, sent as X-Vault-Namespace.
 *         Default: $VAULT_NAMESPACE, else none.
 *     "tls": {
 *         "ca_file": "/etc/secretsfs/vault-ca.pem",
 *             PEM bundle that signs Vault's certificate. Default:
 *             $VAULT_CACERT, else the system's CA store.
 *         "client_cert": "/etc/secretsfs/client.crt",
 *         "client_key": "/etc/secretsfs/client.key",
 *             Our certificate for mutual TLS (and for cert auth).
 *             Default: $VAULT_CLIENT_CERT / $VAULT_CLIENT_KEY. The key
 *             must be mode 0600 or stricter, owned by root or by us.
 *             Both files are watched: replacing them (rename, as
 *             cert-manager and Vault Agent do) takes effect on the next
 *             request, without a restart.
 *         "pinned_pubkey": "sha256//BASE64[;sha256//...]"
 *             Also require this server public key (curl syntax).
 *     },
 *       or "tls": false: plain http://, loopback addresses only (tests,
 *       a local Vault Agent). The $VAULT_* TLS defaults then do not apply.
 *       File paths must be absolute.
 *     "http": {
 *         "connect_timeout": "5s", "timeout": "15s" (whole request,
 *         retries included), "max_retries": 3 (0-10), "retry_base":
 *         "100ms", "retry_max": "2s", "max_response_bytes": "1MiB"
 *     },
 *       Retries (exponential backoff, full jitter, Retry-After honoured)
 *       on connection errors, 429 and 5xx.
 *     "kv": { "mount": "secret", "version": 2 },
 *         The KV secrets engine: its mount path and version (1 or 2, or
 *         "auto": asked of Vault once, before the first read, with
 *         GET sys/internal/ui/mounts/<mount> as the Vault CLI does; the
 *         token needs a capability under the mount, else -EACCES).
 *     "auth": { "method": ..., ... }          (required)
 *         {"method": "cert", "mount": "cert", "name": "role"}
 *             TLS certificate auth with tls.client_cert; "name" is the
 *             optional cert role. Needs tls.client_cert.
 *         {"method": "approle", "mount": "approle",
 *          "role_id_file": "/etc/secretsfs/role-id",
 *          "secret_id_file": "/etc/secretsfs/secret-id"}
 *             role_id_file required; secret_id_file optional (roles
 *             with bind_secret_id=false). Both files private (0600).
 *         {"method": "kubernetes", "mount": "kubernetes", "role": "r",
 *          "jwt_file": "/var/run/secrets/kubernetes.io/serviceaccount/token"}
 *             role required; jwt_file defaults to the path shown. A
 *             service-account token file is 0644 in every pod, so this
 *             one file is NOT refused for being group/other-readable
 *             (it is a short-lived, audience-bound credential that the
 *             kubelet writes); its content is never logged.
 *         {"method": "token", "token_file": "/etc/secretsfs/vault-token"}
 *             A token made elsewhere (e.g. by Vault Agent); the file must
 *             be private. Read again whenever the token stops working.
 *         "mount" defaults to the method's name. Every method also takes
 *         "namespace": the namespace of the auth mount when it is not the
 *         secrets' (a parent's approle, a child's KV; "" is the root
 *         namespace). Logins and the token's lookup-, renew- and
 *         revoke-self go there; KV requests go to "namespace" above.
 *   }
 *
 * Secrets: a secret's "ref" is the path inside the KV mount ("app/db");
 * "version" pins a KV v2 version number; "field" selects one key of the
 * secret's data. Without "field" the file holds the secret's whole data
 * map as compact JSON.
 *
 * Versions: KV v2 reports data.metadata.version ("3") and created_time as
 * the change time. KV v1 keeps no versions: the version is the empty
 * string and the change time is unknown (0), and a pinned version is
 * refused (-ENOENT).
 *
 * Tokens: held in locked memory only, sent as X-Vault-Token, never logged
 * or written anywhere. A background thread (started on first use, so that
 * a fork after open does not lose it) renews the token with renew-self at
 * 2/3 of what is left of its lease, jittered (vault_renew_in_ms); a token
 * that is not renewable (a batch token) is replaced by a login at that
 * point instead, with no renew-self; when renewal fails, is refused, or
 * the lease can no longer grow (max_ttl), it logs in again, and the token it replaces is
 * revoked (revoke-self) unless Vault called it dead ("invalid token": a
 * bare "permission denied" is no proof) or it is a batch token (which
 * Vault cannot revoke).
 *
 * A 403 is not a dead token. Vault since 2024 answers a revoked, expired
 * or unknown token with "invalid token" beside "permission denied": then
 * we log in again, once, and retry. "permission denied" alone is a
 * missing capability, or on older Vault and OpenBao a dead token as well:
 * one auth/token/lookup-self settles it, at most once per token per
 * VAULT_TOKEN_CHECK_MS (a token we just logged in with needs none); a live
 * token makes the read -EACCES and no login happens. Logins run one at a
 * time per backend; one whose credentials Vault refused (400, 401, 403:
 * wrong, expired, used up or locked out) is remembered, and not tried
 * again, for 1 s doubling up to 30 s with each failure in a row (each hold
 * drawn between half and all of that), so readers never make more logins
 * than that schedule, whatever they ask. A login that failed otherwise
 * (sealed, unreachable) may be tried again by the next read; the renewer
 * backs off on the same schedule. Logins and renewals, and their
 * failures, go to the audit trail through backend_report_auth() (method,
 * action "login"/"renew", ttl, and a fixed reason: never Vault's words).
 */
#ifndef SECRETSFS_VAULT_H
#define SECRETSFS_VAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include <secretsfs/backend.h>

/*
 * The pure parsers, for the backend and its tests. body need not be
 * NUL-terminated. Messages in errbuf never quote the body.
 */

/*
 * A KV v2 read answer (200, or the 404 envelope of a deleted or destroyed
 * version). 0 with out->data (secmem, owned by the caller, compact JSON of
 * data.data), out->version and out->changed; -ENOENT when the version is
 * deleted or destroyed (errbuf says which); -EIO when the body is not a
 * KV v2 answer.
 */
int vault_parse_kv2(const uint8_t *body, size_t len, struct backend_value *out,
    char *errbuf, size_t errlen);

/* A KV v1 read answer: 0 with out->data (data as compact JSON), version
 * "" and changed 0; -EIO when malformed. */
int vault_parse_kv1(const uint8_t *body, size_t len, struct backend_value *out,
    char *errbuf, size_t errlen);

/* What a login or renew-self yields. token is secmem; free with
 * vault_auth_clear(). */
struct vault_auth {
	char	*token;
	int64_t	 ttl_s;		/* auth.lease_duration; 0 = no expiry */
	bool	 renewable;
	bool	 batch;		/* auth.token_type "batch": neither renewed
				   nor revoked, replaced by a login */
};

/* auth.client_token, lease_duration, renewable. 0, or -EIO. */
int vault_parse_auth(const uint8_t *body, size_t len, struct vault_auth *out,
    char *errbuf, size_t errlen);
/* Wipe and free the token. NULL members are fine. */
void vault_auth_clear(struct vault_auth *a);

/*
 * When to renew a lease of ttl_ms: 2/3 of it less up to a tenth of that
 * (rnd picks how much), so that many brokers started together do not
 * renew together; at least 250 ms, 0 for a lease that does not expire.
 */
int64_t vault_renew_in_ms(int64_t ttl_ms, uint32_t rnd);

/*
 * A sys/internal/ui/mounts/<path> answer: the KV version of the mount
 * holding the path (1 for a KV mount without options.version, or "kv"
 * of type "generic") and its path ("secret/") into mount. 0, -ENOTSUP
 * for a mount that is not KV, -EIO for no such answer.
 */
int vault_parse_ui_mount(const uint8_t *body, size_t len, int *version,
    char *mount, size_t mountlen);

/* lookup-self: data.ttl and data.renewable (the token is not copied). */
int vault_parse_lookup(const uint8_t *body, size_t len, int64_t *ttl_s,
    bool *renewable, char *errbuf, size_t errlen);

/*
 * An error body {"errors":[...]}: the number of messages (0 for the empty
 * list that means "nothing here"), the first one in msg (control
 * characters replaced, truncated), or -EIO when body is no such object.
 */
int vault_parse_errors(const uint8_t *body, size_t len, char *msg,
    size_t msglen);

/*
 * A LIST answer {"data":{"keys":[...]}}: *names is a malloc'd array of *n
 * malloc'd strings (the caller frees both), folders end in '/'. 0, or
 * -EIO.
 */
int vault_parse_list(const uint8_t *body, size_t len, char ***names,
    size_t *n, char *errbuf, size_t errlen);

/*
 * What a refusal from Vault means (vault_classify_refusal). Vault renders
 * several errors as one go-multierror text ("2 errors occurred:\n\t* ..."),
 * so each message of "errors" is searched, not compared.
 */
enum vault_refusal {
	VAULT_REFUSAL_NONE,		/* not a refusal we know */
	VAULT_REFUSAL_DEAD_TOKEN,	/* 403 "invalid token": log in again */
	VAULT_REFUSAL_DENIED,		/* 403 "permission denied" alone: a
					   missing capability, or (older Vault,
					   OpenBao) maybe a dead token */
	VAULT_REFUSAL_LOCKED_OUT,	/* a login 403: the alias is locked */
	VAULT_REFUSAL_CREDENTIALS,	/* a login 400: wrong, expired or
					   used-up credentials */
};

#define VAULT_TOKEN_CHECK_MS	10000

/* status and body of an answer to a request (login false) or a login. */
enum vault_refusal vault_classify_refusal(long status, const uint8_t *body,
    size_t len, bool login);

/* RFC 3339 with optional fraction (to the nanosecond) and offset. 0 or
 * -EINVAL. */
int vault_parse_time(const char *s, struct timespec *ts);

/* --- aws auth (vault_aws.c), exported for unit tests ---------------------- */

struct sigv4_signer;
struct aws_credentials;

/*
 * Vault's default iam_request_url for region: the global STS endpoint
 * https://sts.amazonaws.com/ for us-east-1, else the regional one.
 */
void vault_aws_sts_url(const char *region, char *buf, size_t len);

/*
 * Set the four iam_* fields of an aws login body in o: a POST of
 * Action=GetCallerIdentity&Version=2011-06-15 to url (http(s)://host/),
 * signed with s (service "sts") and c as of now, with the
 * X-Vault-AWS-IAM-Server-ID header signed too when server_id is not NULL;
 * url, body and the headers (a JSON map of name to [values]) base64, as
 * Vault wants them. 0, -EINVAL (bad url), -ENOMEM, or sigv4_sign()'s
 * error, with errbuf saying why (never a secret).
 */
int vault_aws_login_fields(struct sigv4_signer *s,
    const struct aws_credentials *c, const char *url, const char *server_id,
    time_t now, json_t *o, char *errbuf, size_t errlen);

#endif
