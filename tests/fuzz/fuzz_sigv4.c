/*
 * libFuzzer harness for SigV4: a request parsed from the input is
 * canonicalised and signed, and the two must agree. The signer streams
 * the canonical request into SHA-256 while sigv4_canonical_request()
 * writes it out; the Signature of sigv4_sign() is recomputed here from
 * the written one, so any difference between the two paths shows.
 *
 * Input: one byte of flags (SIGV4_NO_NORMALIZE 0x1, SIGV4_SIGN_BODY 0x2,
 * SIGV4_UNSIGNED_TOKEN 0x4; 0x8 signs with a session token), then a raw
 * request as the AWS test suites write them (the .req files): request
 * line, "Name:value" headers (a line starting with a blank continues the
 * one above), a blank line, the body.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/hmac.h>

#include <secretsfs/sigv4.h>

#include "fuzz.h"

#define NOW		1440938160	/* 20150830T123600Z, as the suites */
#define AKID		"AKIDEXAMPLE"
#define SECRET		"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TOKEN		"6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"
#define RAW_HEADERS	(SIGV4_MAX_HEADERS + 8)
#define CREQ_MAX	(256 * 1024)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char creq[CREQ_MAX];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_secmem_init();
	return 0;
}

struct raw {
	char			*method, *path, *query;
	struct sigv4_header	 h[RAW_HEADERS];
	char			*own[RAW_HEADERS];	/* joined values */
	size_t			 nh;
	const char		*body;
	size_t			 body_len;
};

static void
raw_free(struct raw *r)
{
	for (size_t i = 0; i < r->nh; i++)
		free(r->own[i]);
}

/* Split the request in place (text is NUL-terminated at end). 0 or -1. */
static int
raw_parse(char *text, char *end, struct raw *r)
{
	char *p = text, *eol, *sp, *http, *q, *colon, *v;

	memset(r, 0, sizeof(*r));
	if ((eol = strchr(p, '\n')) != NULL) {
		*eol = '\0';
		if (eol > p && eol[-1] == '\r')
			eol[-1] = '\0';
	}
	if ((sp = strchr(p, ' ')) == NULL)
		return -1;
	http = NULL;
	for (q = sp; (q = strstr(q, " HTTP/")) != NULL; q++)
		http = q;
	if (http == NULL || http <= sp)
		return -1;
	*sp = '\0';
	*http = '\0';
	r->method = p;
	r->path = sp + 1;
	if ((q = strchr(r->path, '?')) != NULL) {
		*q = '\0';
		r->query = q + 1;
	}
	p = eol ? eol + 1 : end;

	while (p < end) {
		size_t n;

		eol = memchr(p, '\n', (size_t)(end - p));
		n = eol ? (size_t)(eol - p) : (size_t)(end - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n == 0) {
			p = eol ? eol + 1 : end;
			r->body = p;
			r->body_len = (size_t)(end - p);
			break;
		}
		p[n] = '\0';
		if (p[0] == ' ' || p[0] == '\t') {
			/* obs-fold: unfolded into one value with a space. */
			if (r->nh == 0 || asprintf(&v, "%s %s",
			    r->h[r->nh - 1].value, p) < 0)
				return -1;
			free(r->own[r->nh - 1]);
			r->own[r->nh - 1] = v;
			r->h[r->nh - 1].value = v;
		} else {
			if ((colon = strchr(p, ':')) == NULL ||
			    r->nh == RAW_HEADERS)
				return -1;
			*colon = '\0';
			r->h[r->nh].name = p;
			r->h[r->nh].value = colon + 1;
			r->nh++;
		}
		p = eol ? eol + 1 : end;
	}
	return 0;
}

static void
hmac(const void *key, size_t klen, const char *msg, size_t mlen,
    uint8_t out[32])
{
	unsigned int n = 32;

	if (HMAC(EVP_sha256(), key, (int)klen, (const uint8_t *)msg, mlen,
	    out, &n) == NULL || n != 32)
		abort();
}

/* The signature of string-to-sign sts, the long way round. */
static void
signature(const char *sts, char hex[65])
{
	uint8_t k[32], k2[32];
	int i;

	hmac("AWS4" SECRET, strlen("AWS4" SECRET), "20150830", 8, k);
	hmac(k, 32, "us-east-1", 9, k2);
	hmac(k2, 32, "service", 7, k);
	hmac(k, 32, "aws4_request", 12, k2);
	hmac(k2, 32, sts, strlen(sts), k);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", k[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sigv4_signer s;
	struct sigv4_out out, out2;
	struct sigv4_credentials cr = { AKID, SECRET, NULL };
	struct sigv4_request req;
	struct raw raw;
	char *text, sts[1024], sig[65], *last, *prev;
	const char *token, *sh, *got;
	size_t len, len2, shl;
	int r, r2;

	if (size < 1)
		return 0;
	if (sigv4_signer_init(&s, "us-east-1", "service") != 0)
		abort();
	text = fuzz_strndup(data + 1, size - 1);
	if (raw_parse(text, text + size - 1, &raw) < 0)
		goto out;
	token = (data[0] & 0x8) ? TOKEN : NULL;
	cr.session_token = token;
	req = (struct sigv4_request){
		.method = raw.method, .path = raw.path, .query = raw.query,
		.headers = raw.h, .nheaders = raw.nh,
		.host = "example.amazonaws.com",
		.body = raw.body, .body_len = raw.body_len,
		.flags = data[0] & 0x7,
	};

	r = sigv4_canonical_request(&req, NOW, token, creq, sizeof(creq), &len);
	r2 = sigv4_sign(&s, &cr, &req, NOW, &out);
	if (r != 0) {
		/* The same checks run before either writes anything. */
		if (r != -ENOSPC && r2 != r)
			abort();
		goto out;
	}
	if (strlen(creq) != len)
		abort();
	/* Exactly len + 1 bytes are needed, and the length is reported. */
	if (sigv4_canonical_request(&req, NOW, token, creq, len, &len2) !=
	    -ENOSPC || len2 != len)
		abort();
	if (sigv4_canonical_request(&req, NOW, token, NULL, 0, &len2) !=
	    -ENOSPC || len2 != len)
		abort();
	if (sigv4_canonical_request(&req, NOW, token, creq, len + 1, &len2) !=
	    0 || len2 != len || strlen(creq) != len)
		abort();
	if (r2 != 0) {
		if (r2 != -ENOSPC)
			abort();	/* only the Authorization may overflow */
		goto out;
	}

	/* The signed headers of the Authorization are the creq's. */
	if ((last = strrchr(creq, '\n')) == NULL ||
	    (prev = memrchr(creq, '\n', (size_t)(last - creq))) == NULL ||
	    (sh = strstr(out.authorization, "SignedHeaders=")) == NULL)
		abort();
	sh += strlen("SignedHeaders=");
	shl = strcspn(sh, ",");
	if ((size_t)(last - prev - 1) != shl || memcmp(prev + 1, sh, shl) != 0)
		abort();

	/* Its Signature is that of the creq written out. */
	if (sigv4_string_to_sign(&s, NOW, creq, len, sts, sizeof(sts)) != 0)
		abort();
	signature(sts, sig);
	if ((got = strstr(out.authorization, "Signature=")) == NULL ||
	    strcmp(got + strlen("Signature="), sig) != 0)
		abort();

	/* The cached signing key signs alike. */
	if (sigv4_sign(&s, &cr, &req, NOW, &out2) != 0 ||
	    strcmp(out.authorization, out2.authorization) != 0 ||
	    s.key_derivations != 1)
		abort();
	if (out.nhdr < 2 || out.nhdr > SIGV4_OUT_MAX ||
	    strcmp(out.hdr[out.nhdr - 1].name, "Authorization") != 0)
		abort();
out:
	raw_free(&raw);
	sigv4_signer_wipe(&s);
	free(text);
	return 0;
}
