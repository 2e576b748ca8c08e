/*
 * libFuzzer harness for the Secrets Manager answer parsers: GetSecretValue
 * (SecretString, and SecretBinary through the base64 decoder), error
 * bodies and headers, and ListSecrets pages. The base64 decoder also reads
 * the raw input, and what it decodes must encode back to as many bytes.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <secretsfs/aws.h>
#include <secretsfs/backend.h>
#include <secretsfs/secmem.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_secmem_init();
	return 0;
}

static void
check_error(long status, const char *body, size_t len, const char *hdr,
    const char *rid)
{
	char type[128], err[512];
	int r;

	r = aws_parse_error(status, body, len, hdr, rid, type, sizeof(type),
	    err, sizeof(err));
	if (r != -ENOENT && r != -EACCES && r != AWS_ERR_EXPIRED &&
	    r != AWS_ERR_RETRY && r != -EIO)
		abort();
	if (status >= 500 && r == -EIO)
		abort();	/* a 5xx is always worth a retry */
	fuzz_check_msg(type, sizeof(type));
	fuzz_check_msg(err, sizeof(err));
	/* The sanitised type: no namespace, no URL suffix, trimmed. */
	if (type[0] == '\0' || strpbrk(type, ":#") != NULL ||
	    type[0] == ' ' || type[strlen(type) - 1] == ' ')
		abort();
}

static void
check_base64(const char *in, size_t len)
{
	uint8_t *out, *again;
	size_t outlen, pad = 0;
	int r, n;

	r = aws_base64_decode(in, len, &out, &outlen);
	if (r != 0) {
		if ((r != -EINVAL && r != -ENOMEM) || out != NULL ||
		    outlen != 0)
			abort();
		return;
	}
	while (pad < len && in[len - 1 - pad] == '=')
		pad++;
	if (!secmem_owns(out) || outlen != len / 4 * 3 - pad ||
	    out[outlen] != '\0')
		abort();
	/* Encoded again it has the input's length, and decodes alike. */
	if (outlen > 0) {
		char *enc = malloc(len + 1);
		size_t l2;

		if (enc == NULL)
			abort();
		n = EVP_EncodeBlock((unsigned char *)enc, out, (int)outlen);
		if (n < 0 || (size_t)n != len)
			abort();
		if (aws_base64_decode(enc, (size_t)n, &again, &l2) != 0 ||
		    l2 != outlen || memcmp(again, out, outlen) != 0)
			abort();
		secmem_free(again);
		free(enc);
	}
	secmem_free(out);
}

static void
check_list(const char *body, size_t len, const char *prefix)
{
	char **names = NULL, next[256];
	size_t n = 0, i, j, l;
	int r;

	r = aws_parse_list(body, len, prefix, &names, &n, next, sizeof(next));
	if (r != 0 && r != -EIO && r != -ENOMEM && r != -ENAMETOOLONG)
		abort();
	if (strnlen(next, sizeof(next)) == sizeof(next))
		abort();
	for (i = 0; i < n; i++) {
		/* One level: a name, or a folder that ends in its only '/'. */
		l = strlen(names[i]);
		if (l == 0 || (memchr(names[i], '/', l) != NULL &&
		    strchr(names[i], '/') != names[i] + l - 1))
			abort();
		for (j = 0; j < i; j++)
			if (strcmp(names[i], names[j]) == 0)
				abort();	/* deduplicated */
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	struct backend_value v;
	char err[256], *s;
	int r;

	FUZZ_ARENA_BEGIN();

	err[0] = '\0';
	r = aws_parse_secret_value(body, size, &v, err, sizeof(err));
	if (r == 0) {
		if (!secmem_owns(v.data) || v.data[v.len] != '\0')
			abort();
		fuzz_check_msg(v.version, sizeof(v.version));
		if (v.changed.tv_nsec < 0 || v.changed.tv_nsec > 999999999)
			abort();
		backend_value_clear(&v);
	} else {
		if ((r != -EIO && r != -ENOMEM) || v.data != NULL)
			abort();
		fuzz_check_msg(err, sizeof(err));
	}

	check_error(400, body, size, NULL, "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111");
	check_list(body, size, "");
	check_list(body, size, "MyTestDatabaseSecret");

	/* The input as header text: the error type and the request id. */
	s = fuzz_strndup(data, size);
	check_error(503, NULL, 0, s, s);
	check_error(400, "{}", 2, s, NULL);
	check_list(body, size, s);
	check_base64(body, size);
	free(s);

	FUZZ_ARENA_END();
	return 0;
}
