/*
 * libFuzzer harness for the AWS credential answers: IMDSv2 and container
 * (ECS/EKS) JSON, the STS AssumeRoleWithWebIdentity XML (its small XML
 * reader: entities, CDATA, comments, namespaces), the shared config and
 * credentials files, and the expiration time format.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <secretsfs/aws_creds.h>
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

/* What a good set looks like; a failed one is all zero. */
static void
check_creds(int r, const struct aws_credentials *c, const char *err,
    size_t errlen)
{
	size_t n;

	if (r != 0) {
		if (c->secret_access_key != NULL || c->session_token != NULL ||
		    c->access_key_id[0] != '\0')
			abort();
		fuzz_check_msg(err, errlen);
		return;
	}
	n = strnlen(c->access_key_id, sizeof(c->access_key_id));
	if (n == 0 || n == sizeof(c->access_key_id))
		abort();
	if (c->secret_access_key == NULL ||
	    !secmem_owns(c->secret_access_key) ||
	    c->secret_access_key[0] == '\0')
		abort();
	if (c->session_token != NULL && (!secmem_owns(c->session_token) ||
	    c->session_token[0] == '\0'))
		abort();
}

/*
 * The document's SecretAccessKey, when it has one long enough to spot,
 * must not be quoted by an error message, unless the fields an error may
 * quote (Code, Message) hold it too.
 */
static void
check_no_secret(const uint8_t *data, size_t size, const char *err)
{
	static const char *const quoted[] = { "Code", "code", "Message",
	    "message" };
	json_t *doc = json_loadb((const char *)data, size, 0, NULL);
	const char *secret = json_string_value(json_object_get(doc,
	    "SecretAccessKey"));
	size_t i;

	if (secret == NULL || strlen(secret) < 8)
		goto out;
	for (i = 0; i < sizeof(quoted) / sizeof(quoted[0]); i++) {
		const char *q = json_string_value(json_object_get(doc,
		    quoted[i]));

		if (q != NULL && strstr(q, secret) != NULL)
			goto out;
	}
	if (strstr(err, secret) != NULL)
		abort();
out:
	json_decref(doc);
}

static void
check_ini(const char *text, size_t len, const char *profile, bool config_file)
{
	struct aws_credentials c;
	char err[256], *value;
	bool found, found2;
	int r;

	err[0] = '\0';
	r = aws_creds_parse_ini(text, len, profile, config_file, &c, &found,
	    err, sizeof(err));
	if (r != 0 && r != -ENOENT && r != -EINVAL && r != -ENOMEM)
		abort();
	if (r == -ENOENT)
		err[0] = '\0';	/* absent: no message promised */
	check_creds(r, &c, err, sizeof(err));
	if (r == 0 && !found)
		abort();
	aws_credentials_clear(&c);

	r = aws_creds_ini_get(text, len, profile, config_file, "region",
	    &value, &found2);
	if (r == 0) {
		if (!found2 || value == NULL || !secmem_owns(value) ||
		    value[0] == '\0')
			abort();
		secmem_free(value);
	} else if (value != NULL || (r != -ENOENT && r != -ENOMEM))
		abort();
	if (found2 != found)
		abort();	/* the profile is there or not, whatever the key */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct aws_credentials c;
	char err[512], *s;
	time_t t;
	int r;

	FUZZ_ARENA_BEGIN();

	err[0] = '\0';
	r = aws_creds_parse_imds_json(text, size, &c, err, sizeof(err));
	check_creds(r, &c, err, sizeof(err));
	check_no_secret(data, size, err);
	aws_credentials_clear(&c);

	err[0] = '\0';
	r = aws_creds_parse_container_json(text, size, &c, err, sizeof(err));
	check_creds(r, &c, err, sizeof(err));
	check_no_secret(data, size, err);
	aws_credentials_clear(&c);

	err[0] = '\0';
	r = aws_creds_parse_sts_xml(text, size, &c, err, sizeof(err));
	if (r != 0 && r != -EACCES && r != -EAGAIN && r != -EIO &&
	    r != -ENOMEM)
		abort();
	check_creds(r, &c, err, sizeof(err));
	if (r == 0 && c.session_token == NULL)
		abort();	/* STS always hands out a session token */
	aws_credentials_clear(&c);

	check_ini(text, size, "default", false);
	check_ini(text, size, "default", true);
	check_ini(text, size, "payments-broker", true);

	if (size < 64) {
		s = fuzz_strndup(data, size);
		(void)aws_creds_parse_time(s, &t);
		free(s);
	}

	FUZZ_ARENA_END();
	return 0;
}
