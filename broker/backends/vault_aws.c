/*
 * Vault's aws auth method, IAM type: a GetCallerIdentity request signed
 * with the broker's AWS credentials and handed to Vault, which replays it
 * to STS to learn who signed it (builtin/credential/aws, pathLoginUpdateIam).
 * Vault checks its X-Vault-AWS-IAM-Server-ID header, when configured, so
 * that a request signed for one Vault cannot log in to another.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include <secretsfs/aws_creds.h>
#include <secretsfs/secmem.h>
#include <secretsfs/sigv4.h>
#include <secretsfs/vault.h>

#include "vault_int.h"

#define STS_BODY	"Action=GetCallerIdentity&Version=2011-06-15"
#define STS_CTYPE	"application/x-www-form-urlencoded; charset=utf-8"
#define SERVER_ID_HDR	"X-Vault-AWS-IAM-Server-ID"

/* --- the signed request -------------------------------------------------- */

/* Standard base64 of len bytes, as a new JSON string. */
static json_t *
b64_string(const void *in, size_t len)
{
	size_t olen = 4 * ((len + 2) / 3) + 1;
	unsigned char *out;
	json_t *s;

	if (!(out = malloc(olen)))
		return NULL;
	EVP_EncodeBlock(out, in, (int)len);
	s = json_string((char *)out);
	explicit_bzero(out, olen);	/* the headers hold a session token */
	free(out);
	return s;
}

static int
add_header(json_t *hdrs, const char *name, const char *value)
{
	json_t *l;

	/* Go's http.Header: every name maps to a list of values. */
	if (!(l = json_array()) || json_array_append_new(l,
	    json_string(value)) < 0 || json_object_set_new(hdrs, name, l) < 0)
		return -ENOMEM;
	return 0;
}

/* "https://sts.amazonaws.com/" -> "sts.amazonaws.com"; path must be "/". */
static int
url_host(const char *url, char *host, size_t len)
{
	const char *h, *e;

	if (strncmp(url, "https://", 8) == 0)
		h = url + 8;
	else if (strncmp(url, "http://", 7) == 0)
		h = url + 7;
	else
		return -EINVAL;
	e = h + strcspn(h, "/?#");
	if (e == h || strcmp(e, "/") != 0 || (size_t)(e - h) >= len)
		return -EINVAL;
	memcpy(host, h, e - h);
	host[e - h] = '\0';
	return 0;
}

void
vault_aws_sts_url(const char *region, char *buf, size_t len)
{
	/* Vault's default iam_request_url is the global endpoint. */
	if (strcmp(region, "us-east-1") == 0)
		snprintf(buf, len, "https://sts.amazonaws.com/");
	else
		snprintf(buf, len, "https://sts.%s.amazonaws.com%s/", region,
		    strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
}

int
vault_aws_login_fields(struct sigv4_signer *s,
    const struct aws_credentials *c, const char *url, const char *server_id,
    time_t now, json_t *o, char *errbuf, size_t errlen)
{
	struct sigv4_credentials sc = {
		.access_key_id = c->access_key_id,
		.secret_access_key = c->secret_access_key,
		.session_token = c->session_token,
	};
	struct sigv4_header in[3];
	struct sigv4_request req = { 0 };
	struct sigv4_out *out;
	char host[256];
	uint8_t *hjson = NULL;
	size_t n = 0, i, hlen = 0;
	json_t *hdrs = NULL;
	int r;

	if (errlen)
		errbuf[0] = '\0';
	if (url_host(url, host, sizeof(host)) < 0) {
		snprintf(errbuf, errlen, "STS URL \"%.200s\" is not "
		    "http(s)://host/", url);
		return -EINVAL;
	}
	/* The signature is a credential for 15 minutes: locked memory. */
	if (!(out = secmem_alloc(sizeof(*out)))) {
		snprintf(errbuf, errlen, "locked memory exhausted");
		return -ENOMEM;
	}
	in[n++] = (struct sigv4_header){ "Content-Type", STS_CTYPE };
	if (server_id)
		in[n++] = (struct sigv4_header){ SERVER_ID_HDR, server_id };
	req.method = "POST";
	req.path = "/";
	req.headers = in;
	req.nheaders = n;
	req.host = host;
	req.body = STS_BODY;
	req.body_len = strlen(STS_BODY);
	if ((r = sigv4_sign(s, &sc, &req, now, out)) < 0) {
		snprintf(errbuf, errlen, "cannot sign the GetCallerIdentity "
		    "request: %s", strerror(-r));
		goto done;
	}
	r = -ENOMEM;
	if (!(hdrs = json_object()))
		goto done;
	for (i = 0; i < n; i++)
		if (add_header(hdrs, in[i].name, in[i].value) < 0)
			goto done;
	for (i = 0; i < out->nhdr; i++)
		if (add_header(hdrs, out->hdr[i].name, out->hdr[i].value) < 0)
			goto done;
	/* jansson allocates from the arena: dump it there, not with malloc */
	if (vault_dump_secmem(hdrs, &hjson, &hlen) < 0)
		goto done;
	if (json_object_set_new(o, "iam_http_request_method",
	    json_string("POST")) < 0 ||
	    json_object_set_new(o, "iam_request_url",
	    b64_string(url, strlen(url))) < 0 ||
	    json_object_set_new(o, "iam_request_body",
	    b64_string(STS_BODY, strlen(STS_BODY))) < 0 ||
	    json_object_set_new(o, "iam_request_headers",
	    b64_string(hjson, hlen)) < 0)
		goto done;
	r = 0;
done:
	if (r == -ENOMEM && !errbuf[0])
		snprintf(errbuf, errlen, "out of memory");
	secmem_free(hjson);
	json_decref(hdrs);
	secmem_free(out);
	return r;
}
