/*
 * The Vault backend's configuration: its object in the config file, with
 * the VAULT_* environment variables as the Vault CLI reads them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <secretsfs/cfg.h>
#include <secretsfs/http.h>

#include "vault_int.h"

const char *const vault_method_names[6] = {
	[AUTH_CERT] = "cert",
	[AUTH_APPROLE] = "approle",
	[AUTH_KUBERNETES] = "kubernetes",
	[AUTH_TOKEN] = "token",
	[AUTH_AWS] = "aws",
	[AUTH_JWT] = "jwt",
};

#define METHOD_LIST	"cert, approle, kubernetes, token, aws or jwt"

#define NMETHODS	(sizeof(vault_method_names) / sizeof(vault_method_names[0]))

/* --- configuration ------------------------------------------------------- */

/* A path segment list fit for a URL: no empty, "." or ".." segments. */
bool
vault_safe_path(const char *s, bool trailing_slash_ok)
{
	const char *p = s;

	if (*s == '/')
		return false;
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
				return false;
		p += n;
		if (*p == '/') {
			p++;
			if (!*p)
				return trailing_slash_ok;
		}
	}
	return true;
}

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* A value that can travel as a header: no control characters. */
static bool
header_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static bool
region_ok(const char *s)
{
	if (!*s || strlen(s) > SIGV4_REGION_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		    *s == '-'))
			return false;
	return true;
}

static int
opt_url(const json_t *o, const char *path, const char *key,
    struct cfg_err *err)
{
	const char *s = NULL;
	char p[CFG_PATH_MAX];
	int r;

	if ((r = cfg_get_string(o, path, key, 0, &s, err)) < 0 || !s)
		return r;
	cfg_path_key(p, sizeof(p), path, key);
	if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)
		return cfg_err_set(err, p, "expected an http(s) URL");
	if (strpbrk(s, " \t\r\n@?#"))
		return cfg_err_set(err, p, "no blanks, user, query or "
		    "fragment allowed in the URL");
	return 0;
}

/*
 * The aws method: the role, Vault's server id header, the region to sign
 * for, and the AWS backend's credential chain options (aws_creds.h).
 */
static int
parse_aws(const json_t *auth, const char *path, struct vault_conf *vc,
    struct cfg_err *err)
{
	static const char *const ckeys[] = { "access_key_id",
	    "secret_access_key", "session_token", NULL };
	const char *s = NULL, *id = NULL, *secret = NULL, *tok = NULL;
	char p[CFG_PATH_MAX];
	const json_t *c;
	int r;

	vc->aws_opts = auth;
	vc->aws_region = "us-east-1";
	if ((r = cfg_get_string(auth, path, "role", 0, &vc->role, err)) < 0 ||
	    (r = cfg_get_string(auth, path, "header_value", 0,
	    &vc->aws_server_id, err)) < 0 ||
	    (r = cfg_get_string(auth, path, "region", 0, &vc->aws_region,
	    err)) < 0 ||
	    (r = cfg_get_string(auth, path, "profile", 0, &s, err)) < 0 ||
	    (r = cfg_get_path(auth, path, "credentials_file", 0, &s,
	    err)) < 0 ||
	    (r = cfg_get_path(auth, path, "config_file", 0, &s, err)) < 0 ||
	    (r = opt_url(auth, path, "sts_endpoint", err)) < 0 ||
	    (r = opt_url(auth, path, "imds_endpoint", err)) < 0)
		return r;
	if (!region_ok(vc->aws_region)) {
		cfg_path_key(p, sizeof(p), path, "region");
		return cfg_err_set(err, p, "expected a region name such as "
		    "\"us-east-1\"");
	}
	if (vc->aws_server_id && (!*vc->aws_server_id ||
	    !header_safe(vc->aws_server_id))) {
		cfg_path_key(p, sizeof(p), path, "header_value");
		return cfg_err_set(err, p, "expected a non-empty value without "
		    "control characters");
	}
	if ((c = json_object_get(auth, "credentials"))) {
		cfg_path_key(p, sizeof(p), path, "credentials");
		if (!json_is_object(c))
			return cfg_err_set(err, p, "expected an object");
		if ((r = cfg_check_keys(c, p, ckeys, err)) < 0 ||
		    (r = cfg_get_string(c, p, "access_key_id", 0, &id,
		    err)) < 0 ||
		    (r = cfg_get_string(c, p, "secret_access_key", 0, &secret,
		    err)) < 0 ||
		    (r = cfg_get_string(c, p, "session_token", 0, &tok,
		    err)) < 0)
			return r;
		if (!id || !secret)
			return cfg_err_set(err, p, "needs access_key_id and "
			    "secret_access_key");
	}
	return 0;
}

static int
parse_auth(const json_t *auth, const char *path, struct vault_conf *vc,
    struct cfg_err *err)
{
	static const char *const cert_keys[] = { "method", "mount", "name",
	    "namespace", NULL };
	static const char *const approle_keys[] = { "method", "mount",
	    "role_id_file", "secret_id_file", "namespace", NULL };
	static const char *const k8s_keys[] = { "method", "mount", "role",
	    "jwt_file", "namespace", NULL };
	static const char *const token_keys[] = { "method", "token_file",
	    "namespace", NULL };
	static const char *const aws_keys[] = { "method", "mount", "role",
	    "header_value", "region", "namespace", "credentials", "profile",
	    "credentials_file", "config_file", "sts_endpoint", "imds_endpoint",
	    NULL };
	static const char *const jwt_keys[] = { "method", "mount", "role",
	    "jwt_file", "namespace", NULL };
	const char *const *keys[] = { cert_keys, approle_keys, k8s_keys,
	    token_keys, aws_keys, jwt_keys };
	const char *method = NULL;
	const json_t *ans;
	char p[CFG_PATH_MAX];
	size_t i;
	int r;

	if (!json_is_object(auth))
		return cfg_err_set(err, path, "expected an object");
	if ((r = cfg_get_string(auth, path, "method", 0, &method, err)) < 0)
		return r;
	if (!method)
		return cfg_err_set(err, path, "missing required key "
		    "\"method\" (" METHOD_LIST ")");
	for (i = 0; i < NMETHODS; i++)
		if (strcmp(method, vault_method_names[i]) == 0)
			break;
	if (i == NMETHODS) {
		cfg_path_key(p, sizeof(p), path, "method");
		return cfg_err_set(err, p, "unknown auth method \"%s\" "
		    "(" METHOD_LIST ")", method);
	}
	vc->method = (enum auth_method)i;
	if ((r = cfg_check_keys(auth, path, keys[i], err)) < 0)
		return r;
	/*
	 * The auth method may live in a parent namespace of the secrets
	 * (a platform team's approle, a tenant's KV); "" is the root one.
	 */
	vc->auth_ns = vc->ns;
	ans = json_object_get(auth, "namespace");
	if (json_is_string(ans) && json_string_length(ans) == 0)
		vc->auth_ns = NULL;
	else if (ans) {
		if ((r = cfg_get_string(auth, path, "namespace", 0,
		    &vc->auth_ns, err)) < 0)
			return r;
		if (!header_safe(vc->auth_ns)) {
			cfg_path_key(p, sizeof(p), path, "namespace");
			return cfg_err_set(err, p, "the namespace holds a "
			    "control character");
		}
	}
	vc->auth_mount = vault_method_names[i];
	if (vc->method != AUTH_TOKEN &&
	    (r = cfg_get_string(auth, path, "mount", 0, &vc->auth_mount,
	    err)) < 0)
		return r;
	if (!vault_safe_path(vc->auth_mount, false)) {
		cfg_path_key(p, sizeof(p), path, "mount");
		return cfg_err_set(err, p, "expected a mount path such as "
		    "\"approle\" or \"team/approle\"");
	}
	switch (vc->method) {
	case AUTH_CERT:
		if ((r = cfg_get_string(auth, path, "name", 0, &vc->cert_name,
		    err)) < 0)
			return r;
		if (!vc->http.tls || !vc->http.client_cert) {
			cfg_path_key(p, sizeof(p), path, "method");
			return cfg_err_set(err, p, "cert auth needs a client "
			    "certificate: set tls.client_cert and "
			    "tls.client_key (or $VAULT_CLIENT_CERT and "
			    "$VAULT_CLIENT_KEY)");
		}
		break;
	case AUTH_APPROLE:
		if ((r = cfg_get_path(auth, path, "role_id_file", 0,
		    &vc->role_id_file, err)) < 0 ||
		    (r = cfg_get_path(auth, path, "secret_id_file", 0,
		    &vc->secret_id_file, err)) < 0)
			return r;
		if (!vc->role_id_file)
			return cfg_err_set(err, path, "missing required key "
			    "\"role_id_file\"");
		break;
	case AUTH_KUBERNETES:
		vc->jwt_file = DEFAULT_JWT_FILE;
		if ((r = cfg_get_string(auth, path, "role", 0, &vc->role,
		    err)) < 0 ||
		    (r = cfg_get_path(auth, path, "jwt_file", 0, &vc->jwt_file,
		    err)) < 0)
			return r;
		if (!vc->role)
			return cfg_err_set(err, path, "missing required key "
			    "\"role\"");
		break;
	case AUTH_AWS:
		if ((r = parse_aws(auth, path, vc, err)) < 0)
			return r;
		break;
	case AUTH_JWT:
		if ((r = cfg_get_string(auth, path, "role", 0, &vc->role,
		    err)) < 0 ||
		    (r = cfg_get_path(auth, path, "jwt_file", 0, &vc->jwt_file,
		    err)) < 0)
			return r;
		if (!vc->role)
			return cfg_err_set(err, path, "missing required key "
			    "\"role\"");
		if (!vc->jwt_file)
			return cfg_err_set(err, path, "missing required key "
			    "\"jwt_file\"");
		break;
	case AUTH_TOKEN:
		if ((r = cfg_get_path(auth, path, "token_file", 0,
		    &vc->token_file, err)) < 0)
			return r;
		if (!vc->token_file)
			return cfg_err_set(err, path, "missing required key "
			    "\"token_file\"");
		break;
	}
	return 0;
}

static int
env_path(const char *var, const char *path, const char **out,
    struct cfg_err *err)
{
	const char *v = env(var);

	if (!v)
		return 0;
	if (v[0] != '/')
		return cfg_err_set(err, path, "$%s must be an absolute path",
		    var);
	*out = v;
	return 0;
}

int
vault_conf_parse(const json_t *opts, const char *path, struct vault_conf *vc,
    struct cfg_err *err)
{
	static const char *const keys[] = { "type", "address", "addresses",
	    "namespace", "tls", "http", "kv", "auth", NULL };
	static const char *const kv_keys[] = { "mount", "version", NULL };
	const json_t *kv, *auth, *addrs, *a;
	char p[CFG_PATH_MAX], kp[CFG_PATH_MAX], why[256];
	size_t i;
	int r;

	memset(vc, 0, sizeof(*vc));
	if ((r = cfg_check_keys(opts, path, keys, err)) < 0)
		return r;
	vc->address = env("VAULT_ADDR");
	vc->ns = env("VAULT_NAMESPACE");
	if ((r = cfg_get_string(opts, path, "address", 0, &vc->address,
	    err)) < 0 ||
	    (r = cfg_get_string(opts, path, "namespace", 0, &vc->ns, err)) < 0)
		return r;
	/* Caught here, not as an EINVAL on every request. */
	if (vc->ns && !header_safe(vc->ns)) {
		cfg_path_key(p, sizeof(p), path, "namespace");
		return cfg_err_set(err, p, "%s holds a control character",
		    vc->ns == env("VAULT_NAMESPACE") ? "$VAULT_NAMESPACE" :
		    "the namespace");
	}
	if ((r = http_options_from_json(opts, path, &vc->http, err)) < 0)
		return r;
	/* An HA cluster: its nodes, tried in turn (vault.h). */
	if ((addrs = json_object_get(opts, "addresses"))) {
		cfg_path_key(p, sizeof(p), path, "addresses");
		if (json_object_get(opts, "address"))
			return cfg_err_set(err, p, "give \"address\" or "
			    "\"addresses\", not both");
		if (!json_is_array(addrs) || json_array_size(addrs) == 0 ||
		    json_array_size(addrs) > VAULT_ADDRS_MAX)
			return cfg_err_set(err, p, "expected a list of 1 to %d "
			    "URLs", VAULT_ADDRS_MAX);
		json_array_foreach(addrs, i, a) {
			if (!json_is_string(a))
				return cfg_err_set(err, p, "entry %zu is not a "
				    "URL", i);
			vc->addrs[i] = json_string_value(a);
		}
		vc->naddrs = json_array_size(addrs);
		vc->address = vc->addrs[0];
	} else if (vc->address) {
		vc->addrs[0] = vc->address;
		vc->naddrs = 1;
	}
	if (!vc->address)
		return cfg_err_set(err, path, "missing required key "
		    "\"address\" ($VAULT_ADDR is not set either)");
	if (vc->http.tls) {
		cfg_path_key(p, sizeof(p), path, "tls");
		if (!vc->http.ca_file &&
		    (r = env_path("VAULT_CACERT", p, &vc->http.ca_file, err)) < 0)
			return r;
		if (!vc->http.client_cert && (env("VAULT_CLIENT_CERT") ||
		    env("VAULT_CLIENT_KEY"))) {
			if (!env("VAULT_CLIENT_CERT") || !env("VAULT_CLIENT_KEY"))
				return cfg_err_set(err, p, "$VAULT_CLIENT_CERT "
				    "and $VAULT_CLIENT_KEY must be set together");
			if ((r = env_path("VAULT_CLIENT_CERT", p,
			    &vc->http.client_cert, err)) < 0 ||
			    (r = env_path("VAULT_CLIENT_KEY", p,
			    &vc->http.client_key, err)) < 0)
				return r;
		}
	}
	cfg_path_key(p, sizeof(p), path, addrs ? "addresses" : "address");
	for (i = 0; i < vc->naddrs; i++)
		if (http_check_url(vc->addrs[i], vc->http.tls, why,
		    sizeof(why)) < 0)
			return cfg_err_set(err, p, "%s", why);

	vc->kv_mount = "secret";
	vc->kv_version = 2;
	if ((kv = json_object_get(opts, "kv"))) {
		json_t *ver;

		cfg_path_key(p, sizeof(p), path, "kv");
		if (!json_is_object(kv))
			return cfg_err_set(err, p, "expected an object");
		if ((r = cfg_check_keys(kv, p, kv_keys, err)) < 0 ||
		    (r = cfg_get_string(kv, p, "mount", 0, &vc->kv_mount,
		    err)) < 0)
			return r;
		if ((ver = json_object_get(kv, "version"))) {
			cfg_path_key(kp, sizeof(kp), p, "version");
			/* "auto": asked of Vault, as its CLI does (0) */
			if (json_is_string(ver) &&
			    strcmp(json_string_value(ver), "auto") == 0)
				vc->kv_version = 0;
			else if (!json_is_integer(ver) ||
			    (json_integer_value(ver) != 1 &&
			    json_integer_value(ver) != 2))
				return cfg_err_set(err, kp, "expected 1 or 2, "
				    "or \"auto\"");
			else
				vc->kv_version = (int)json_integer_value(ver);
		}
		if (!vault_safe_path(vc->kv_mount, false)) {
			cfg_path_key(kp, sizeof(kp), p, "mount");
			return cfg_err_set(err, kp, "expected a mount path "
			    "such as \"secret\" or \"team/kv\"");
		}
	}
	cfg_path_key(p, sizeof(p), path, "auth");
	if (!(auth = json_object_get(opts, "auth")))
		return cfg_err_set(err, path, "missing required key "
		    "\"auth\"");
	return parse_auth(auth, p, vc, err);
}

int
vault_validate(const json_t *opts, const char *path, struct cfg_err *err)
{
	struct vault_conf vc;

	return vault_conf_parse(opts, path, &vc, err);
}
