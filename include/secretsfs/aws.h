/*
 * aws: the AWS Secrets Manager backend (type "aws").
 *
 * Config object (keys under backends.NAME):
 *   "type": "aws"
 *   "region"        default $AWS_REGION, then $AWS_DEFAULT_REGION, then the
 *                   profile's "region" in the shared config file
 *   "endpoint"      default https://secretsmanager.<region>.amazonaws.com
 *                   (.amazonaws.com.cn for cn-* regions); set it for VPC
 *                   or FIPS endpoints, proxies and tests. A path in it is
 *                   kept and signed.
 *   "tls", "http"   as parsed by http_options_from_json(): CA file, pinned
 *                   key, client certificate (mTLS egress proxies),
 *                   timeouts, retries, response cap. The same trust is used
 *                   for an https STS or container credential endpoint.
 *   "credentials"   optional static keys: {"access_key_id",
 *                   "secret_access_key", "session_token"}
 *   "profile"       profile of the shared files (see aws_creds.h)
 *   "credentials_file", "config_file"
 *                   absolute paths of the shared files; default
 *                   $AWS_SHARED_CREDENTIALS_FILE and $AWS_CONFIG_FILE, then
 *                   ~/.aws/credentials and ~/.aws/config. The fetcher reads
 *                   them as privsep.user, whose home is no place for them.
 *   "sts_endpoint"  for web identity; default https://sts.<region>.amazonaws.com
 *   "imds_endpoint" for EC2 instance credentials; default
 *                   $AWS_EC2_METADATA_SERVICE_ENDPOINT, else
 *                   http://169.254.169.254
 *   "version_stage" the staging label read when a secret pins nothing;
 *                   default none sent, which the service reads as AWSCURRENT
 *
 * A secret's "ref" is the secret's name or ARN. Its "version" pins either
 * a VersionId ("version": "EXAMPLE1-90ab-cdef-fedc-ba987SECRET1") or, with
 * the prefix "stage:", a staging label ("version": "stage:AWSPENDING").
 * "field" selects a member of a JSON SecretString (backend.c does that).
 *
 * What a fetch yields: SecretString as is, or SecretBinary base64-decoded;
 * VersionId as the version; CreatedDate as the change time. Failures put
 * "AWS <ErrorType> (request id <id>): <message>" in errbuf:
 *   ResourceNotFoundException                     -ENOENT
 *   AccessDeniedException, InvalidSignatureException, SignatureDoesNotMatch,
 *   UnrecognizedClientException, IncompleteSignature(Exception),
 *   MissingAuthenticationToken(Exception), InvalidClientTokenId
 *                                                 -EACCES
 *   ExpiredTokenException                         new credentials, once,
 *                                                 then -EACCES
 *   throttling codes, transient codes, HTTP 5xx   retried with backoff
 *                                                 (http.max_retries), then -EIO
 *   DecryptionFailure and anything else           -EIO
 * The list operation (ListSecrets with a name filter) is supported.
 */
#ifndef SECRETSFS_AWS_H
#define SECRETSFS_AWS_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <secretsfs/backend.h>

/* How the caller should treat an error answer (aws_parse_error). */
#define AWS_ERR_RETRY	(-EAGAIN)	/* throttled or transient: back off */
#define AWS_ERR_EXPIRED	(-ESTALE)	/* the session token expired */

/*
 * The region a backend signs for: configured (the backend's "region"),
 * else $AWS_REGION, else $AWS_DEFAULT_REGION, else the "region" of the
 * profile in config_file (as aws_creds_profile_region() finds them, when
 * NULL). 0 with the name in
 * buf, or -EINVAL when there is none or it is not a region name, with
 * errbuf saying which source gave what.
 */
int aws_region(const char *configured, const char *profile,
    const char *config_file, char *buf, size_t len, char *errbuf,
    size_t errlen);

/* --- parsers, exported for unit tests ------------------------------------- */

/*
 * A GetSecretValue answer into *out (data in secmem, owned by the caller:
 * backend_value_clear). 0, or -EIO with errbuf saying what was wrong
 * (never quoting the document).
 */
int aws_parse_secret_value(const char *body, size_t len,
    struct backend_value *out, char *errbuf, size_t errlen);

/*
 * An error answer: the sanitised error type into type (from the body's
 * "__type" or "code", else the X-Amzn-Errortype header hdr_type, else
 * "HTTP <status>") and "AWS <type> (request id <id>): <message>" into
 * errbuf. Returns -ENOENT, -EACCES, AWS_ERR_EXPIRED, AWS_ERR_RETRY or
 * -EIO as in the table above.
 */
int aws_parse_error(long status, const char *body, size_t len,
    const char *hdr_type, const char *request_id, char *type,
    size_t typelen, char *errbuf, size_t errlen);

/*
 * "aws.protocoltests#FooError:http://internal..." -> "FooError": the text
 * before the first ':', then after the last '#'.
 */
void aws_error_type_sanitize(const char *in, char *out, size_t outlen);

/*
 * Standard base64 (with '=' padding; no whitespace) into a secmem block
 * of *outlen bytes plus a NUL. 0, -EINVAL (not base64), -ENOMEM.
 */
int aws_base64_decode(const char *in, size_t len, uint8_t **out,
    size_t *outlen);

/*
 * A ListSecrets page: the names directly under prefix, appended to
 * the names array (deduplicated; sub-folders end in '/'), and the NextToken
 * into next (empty when none). 0, -EIO, -ENOMEM, -ENAMETOOLONG (token).
 */
int aws_parse_list(const char *body, size_t len, const char *prefix,
    char ***names, size_t *n, char *next, size_t nextlen);

#endif
