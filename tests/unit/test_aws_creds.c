/*
 * Unit tests for aws_creds: the credential documents each source yields
 * (STS XML, container and IMDS JSON, the shared INI files), expiry times
 * and the refresh margin, and how the chain picks its source.
 *
 * The AWS example payloads are read at test time from the directory in
 * argv[1], else $AWS_EXAMPLES, else ../shared/reference/api-examples/aws.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <secretsfs/aws_creds.h>
#include <secretsfs/backend.h>
#include <secretsfs/secmem.h>

static const char *examples = "../shared/reference/api-examples/aws";
static char tmpdir[PATH_MAX];

/* --- helpers ------------------------------------------------------------- */

static char *
slurp(const char *name, size_t *len)
{
	char path[PATH_MAX];
	struct stat st;
	char *buf;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", examples, name);
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open example %s", path);
	assert_int_equal(fstat(fileno(f), &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	*len = fread(buf, 1, (size_t)st.st_size, f);
	assert_int_equal(*len, (size_t)st.st_size);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static time_t
utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
	    .tm_hour = h, .tm_min = mi, .tm_sec = s };

	return timegm(&tm);
}

static char *
write_file(const char *name, const char *text, mode_t mode)
{
	static char path[PATH_MAX + 256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static const char *const chain_env[] = {
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
	"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
	"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
	"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	"AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	NULL,
};

/* A clean slate: no variable of the chain, and files that do not exist. */
static int
clean_env(void **state)
{
	char p[PATH_MAX + 32];

	(void)state;
	for (size_t i = 0; chain_env[i]; i++)
		unsetenv(chain_env[i]);
	snprintf(p, sizeof(p), "%s/none-credentials", tmpdir);
	setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
	snprintf(p, sizeof(p), "%s/none-config", tmpdir);
	setenv("AWS_CONFIG_FILE", p, 1);
	return 0;
}

/* --- time and refresh ----------------------------------------------------- */

static void
test_parse_time(void **state)
{
	time_t t;

	(void)state;
	assert_int_equal(aws_creds_parse_time("2014-10-24T23:00:23Z", &t), 0);
	assert_int_equal(t, utc(2014, 10, 24, 23, 0, 23));
	assert_int_equal(aws_creds_parse_time("2014-10-24T23:00:23.123Z", &t), 0);
	assert_int_equal(t, utc(2014, 10, 24, 23, 0, 23));
	assert_int_equal(aws_creds_parse_time("2014-10-25T01:00:23+02:00", &t), 0);
	assert_int_equal(t, utc(2014, 10, 24, 23, 0, 23));
	assert_int_equal(aws_creds_parse_time("2014-10-24T20:30:23-0230", &t), 0);
	assert_int_equal(t, utc(2014, 10, 24, 23, 0, 23));

	assert_int_equal(aws_creds_parse_time("EXPIRATION_DATE", &t), -EINVAL);
	assert_int_equal(aws_creds_parse_time("2014-10-24T23:00:23", &t), -EINVAL);
	assert_int_equal(aws_creds_parse_time("2014-10-24", &t), -EINVAL);
	assert_int_equal(aws_creds_parse_time("2014-13-24T23:00:23Z", &t), -EINVAL);
	assert_int_equal(aws_creds_parse_time("2014-10-24T25:00:23Z", &t), -EINVAL);
	assert_int_equal(aws_creds_parse_time("2014-10-24T23:00:23Zjunk", &t),
	    -EINVAL);
	assert_int_equal(aws_creds_parse_time("2014-10-24T23:00:23.Z", &t),
	    -EINVAL);
	assert_int_equal(aws_creds_parse_time("", &t), -EINVAL);
}

static void
test_refresh_margin(void **state)
{
	(void)state;
	/* six hours: five minutes ahead */
	assert_int_equal(aws_creds_refresh_at(1000, 1000 + 21600),
	    1000 + 21600 - 300);
	/* fifteen minutes: capped at five minutes too */
	assert_int_equal(aws_creds_refresh_at(1000, 1900), 1600);
	/* the fake's 5-second credentials: a third of the lifetime */
	assert_int_equal(aws_creds_refresh_at(1000, 1005), 1003);
	assert_int_equal(aws_creds_refresh_at(1000, 1006), 1004);
	assert_int_equal(aws_creds_refresh_at(1000, 1001), 1000);
	/* already lapsed: due now */
	assert_int_equal(aws_creds_refresh_at(1000, 1000), 1000);
	assert_int_equal(aws_creds_refresh_at(1000, 900), 1000);
}

/* --- STS ------------------------------------------------------------------ */

static void
test_sts_example(void **state)
{
	struct aws_credentials c;
	char err[256];
	size_t len;
	char *xml = slurp("sts-AssumeRoleWithWebIdentity.response.xml", &len);

	(void)state;
	assert_int_equal(aws_creds_parse_sts_xml(xml, len, &c, err,
	    sizeof(err)), 0);
	assert_string_equal(c.access_key_id, "ASgeIAIOSFODNN7EXAMPLE");
	assert_string_equal(c.secret_access_key,
	    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
	assert_string_equal(c.session_token,
	    "AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE");
	assert_int_equal(c.expiration, utc(2014, 10, 24, 23, 0, 23));
	/* the secret parts are in locked memory */
	assert_true(secmem_owns(c.secret_access_key));
	assert_true(secmem_owns(c.session_token));
	aws_credentials_clear(&c);
	assert_null(c.secret_access_key);
	assert_string_equal(c.access_key_id, "");
	free(xml);
}

#define STS_OK(creds) \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
	"<AssumeRoleWithWebIdentityResponse " \
	"xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">" \
	"<AssumeRoleWithWebIdentityResult><Credentials>" creds \
	"</Credentials></AssumeRoleWithWebIdentityResult>" \
	"</AssumeRoleWithWebIdentityResponse>"

static void
test_sts_xml_forms(void **state)
{
	/* entities, a character reference, CDATA, comments, a prefix */
	static const char ok[] = STS_OK(
	    "<!-- a comment with <Credentials> in it -->"
	    "<AccessKeyId>ASIA<!-- split -->EXAMPLE</AccessKeyId>"
	    "<SecretAccessKey><![CDATA[se/cr+et]]></SecretAccessKey>"
	    "<SessionToken>a&amp;b&#x3D;c&#61;&lt;&gt;</SessionToken>"
	    "<Expiration>\n  2030-01-01T00:00:00Z\n</Expiration>");
	static const char prefixed[] =
	    "<sts:AssumeRoleWithWebIdentityResponse xmlns:sts=\"x\">"
	    "<sts:AssumeRoleWithWebIdentityResult a='>/'>"
	    "<sts:Credentials><sts:AccessKeyId>AK</sts:AccessKeyId>"
	    "<sts:SecretAccessKey>sk</sts:SecretAccessKey>"
	    "<sts:SessionToken>tok</sts:SessionToken>"
	    "<sts:Expiration>2030-01-01T00:00:00Z</sts:Expiration>"
	    "</sts:Credentials></sts:AssumeRoleWithWebIdentityResult>"
	    "</sts:AssumeRoleWithWebIdentityResponse>";
	struct aws_credentials c;
	char err[256];

	(void)state;
	assert_int_equal(aws_creds_parse_sts_xml(ok, strlen(ok), &c, err,
	    sizeof(err)), 0);
	assert_string_equal(c.access_key_id, "ASIAEXAMPLE");
	assert_string_equal(c.secret_access_key, "se/cr+et");
	assert_string_equal(c.session_token, "a&b=c=<>");
	assert_int_equal(c.expiration, utc(2030, 1, 1, 0, 0, 0));
	aws_credentials_clear(&c);

	assert_int_equal(aws_creds_parse_sts_xml(prefixed, strlen(prefixed),
	    &c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key_id, "AK");
	assert_string_equal(c.session_token, "tok");
	aws_credentials_clear(&c);
}

static void
test_sts_xml_malformed(void **state)
{
	static const char *const bad[] = {
		/* a field missing */
		STS_OK("<AccessKeyId>AK</AccessKeyId>"
		    "<SecretAccessKey>sk</SecretAccessKey>"
		    "<Expiration>2030-01-01T00:00:00Z</Expiration>"),
		/* mismatched end tag */
		STS_OK("<AccessKeyId>AK</SecretAccessKey>"),
		/* unknown entity */
		STS_OK("<AccessKeyId>AK</AccessKeyId>"
		    "<SecretAccessKey>s&bogus;k</SecretAccessKey>"
		    "<SessionToken>t</SessionToken>"
		    "<Expiration>2030-01-01T00:00:00Z</Expiration>"),
		/* a DOCTYPE: no entity games */
		"<!DOCTYPE x [<!ENTITY a \"b\">]>" STS_OK(""),
		/* truncated */
		"<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
		"<Credentials><AccessKeyId>AK",
		/* a child element where text is expected */
		STS_OK("<AccessKeyId><b>AK</b></AccessKeyId>"),
		/* bad expiration */
		STS_OK("<AccessKeyId>AK</AccessKeyId>"
		    "<SecretAccessKey>sk</SecretAccessKey>"
		    "<SessionToken>t</SessionToken>"
		    "<Expiration>soon</Expiration>"),
		/* a control byte in the key */
		STS_OK("<AccessKeyId>AK</AccessKeyId>"
		    "<SecretAccessKey>s&#10;k</SecretAccessKey>"
		    "<SessionToken>t</SessionToken>"
		    "<Expiration>2030-01-01T00:00:00Z</Expiration>"),
		"",
		"not xml at all",
	};
	struct aws_credentials c;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (aws_creds_parse_sts_xml(bad[i], strlen(bad[i]), &c, err,
		    sizeof(err)) != -EIO)
			fail_msg("case %zu parsed", i);
		assert_null(c.secret_access_key);
		assert_true(err[0] != '\0');
		/* the key itself is never quoted */
		assert_null(strstr(err, "sk"));
	}
}

static void
test_sts_error(void **state)
{
	static const char invalid[] =
	    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
	    "  <Error>\n    <Type>Sender</Type>\n"
	    "    <Code>InvalidIdentityToken</Code>\n"
	    "    <Message>Couldn't retrieve verification key from your identity"
	    " provider, &amp; more</Message>\n  </Error>\n"
	    "  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>\n"
	    "</ErrorResponse>\n";
	static const char throttled[] =
	    "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
	    "<Message>Rate exceeded</Message></Error>"
	    "<RequestId>r1</RequestId></ErrorResponse>";
	static const char other[] =
	    "<ErrorResponse><Error><Type>Receiver</Type>"
	    "<Code>InternalFailure</Code></Error></ErrorResponse>";
	struct aws_credentials c;
	char err[256];

	(void)state;
	assert_int_equal(aws_creds_parse_sts_xml(invalid, strlen(invalid), &c,
	    err, sizeof(err)), -EACCES);
	assert_string_equal(err, "STS InvalidIdentityToken (request id "
	    "c6104cbe-af31-11e0-8154-cbc7ccf896c7): Couldn't retrieve "
	    "verification key from your identity provider, & more");
	assert_null(c.secret_access_key);

	assert_int_equal(aws_creds_parse_sts_xml(throttled, strlen(throttled),
	    &c, err, sizeof(err)), -EAGAIN);
	assert_string_equal(err, "STS Throttling (request id r1): Rate exceeded");

	assert_int_equal(aws_creds_parse_sts_xml(other, strlen(other), &c, err,
	    sizeof(err)), -EIO);
	assert_string_equal(err, "STS InternalFailure (request id -): ");
}

/* --- container and IMDS ---------------------------------------------------- */

static void
test_container_json(void **state)
{
	struct aws_credentials c;
	char err[256], *doc, *p;
	size_t len;
	char *tmpl = slurp("ecs-task-role-credentials.response.template.json",
	    &len);

	(void)state;
	/* The template as published: its placeholder is no time. */
	assert_int_equal(aws_creds_parse_container_json(tmpl, len, &c, err,
	    sizeof(err)), -EIO);
	assert_non_null(strstr(err, "expiration"));
	assert_null(strstr(err, "SECRET_ACCESS_KEY"));

	/* Filled in as ECS does. */
	doc = malloc(len + 64);
	assert_non_null(doc);
	p = strstr(tmpl, "EXPIRATION_DATE");
	assert_non_null(p);
	snprintf(doc, len + 64, "%.*s2030-06-01T12:00:00Z%s", (int)(p - tmpl),
	    tmpl, p + strlen("EXPIRATION_DATE"));
	assert_int_equal(aws_creds_parse_container_json(doc, strlen(doc), &c,
	    err, sizeof(err)), 0);
	assert_string_equal(c.access_key_id, "ACCESS_KEY_ID");
	assert_string_equal(c.secret_access_key, "SECRET_ACCESS_KEY");
	assert_string_equal(c.session_token, "SECURITY_TOKEN_STRING");
	assert_int_equal(c.expiration, utc(2030, 6, 1, 12, 0, 0));
	assert_true(secmem_owns(c.secret_access_key));
	aws_credentials_clear(&c);
	free(doc);
	free(tmpl);
}

static void
test_container_json_errors(void **state)
{
	static const char denied[] =
	    "{\"code\":\"AccessDenied\",\"message\":\"Authorization token is "
	    "invalid\"}";
	static const char no_token[] =
	    "{\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"sk\","
	    "\"Expiration\":\"2030-06-01T12:00:00Z\"}";
	static const char nul[] =
	    "{\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"s\\u0000k\","
	    "\"Token\":\"t\",\"Expiration\":\"2030-06-01T12:00:00Z\"}";
	struct aws_credentials c;
	char err[256];

	(void)state;
	assert_int_equal(aws_creds_parse_container_json(denied, strlen(denied),
	    &c, err, sizeof(err)), -EACCES);
	assert_string_equal(err, "container credentials: AccessDenied: "
	    "Authorization token is invalid");
	assert_int_equal(aws_creds_parse_container_json(no_token,
	    strlen(no_token), &c, err, sizeof(err)), -EIO);
	assert_int_equal(aws_creds_parse_container_json(nul, strlen(nul), &c,
	    err, sizeof(err)), -EIO);
	assert_int_equal(aws_creds_parse_container_json("{\"AccessKeyId\": ",
	    16, &c, err, sizeof(err)), -EIO);
	assert_null(c.secret_access_key);
}

static void
test_imds_json(void **state)
{
	static const char failed[] =
	    "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"EC2 cannot "
	    "assume the role\",\"LastUpdated\":\"2012-04-26T16:39:16Z\"}";
	static const char no_exp[] =
	    "{\"Code\":\"Success\",\"AccessKeyId\":\"AK\","
	    "\"SecretAccessKey\":\"sk\",\"Token\":\"t\"}";
	struct aws_credentials c;
	char err[256];
	size_t len;
	char *doc = slurp("imds-iam-security-credentials-role.response.json",
	    &len);

	(void)state;
	assert_int_equal(aws_creds_parse_imds_json(doc, len, &c, err,
	    sizeof(err)), 0);
	assert_string_equal(c.access_key_id, "ASIAIOSFODNN7EXAMPLE");
	assert_string_equal(c.secret_access_key,
	    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
	assert_string_equal(c.session_token, "token");
	assert_int_equal(c.expiration, utc(2017, 5, 17, 15, 9, 54));
	aws_credentials_clear(&c);
	free(doc);

	assert_int_equal(aws_creds_parse_imds_json(failed, strlen(failed), &c,
	    err, sizeof(err)), -EACCES);
	assert_string_equal(err, "IMDS: AssumeRoleUnauthorizedAccess: EC2 "
	    "cannot assume the role");
	assert_int_equal(aws_creds_parse_imds_json(no_exp, strlen(no_exp), &c,
	    err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "Expiration"));
	assert_null(c.secret_access_key);
}

/* --- INI ------------------------------------------------------------------- */

static const char credentials_ini[] =
    "# a comment\n"
    "; another\n"
    "[default]\n"
    "aws_access_key_id=AKDEFAULT\n"
    "aws_secret_access_key = def/secret+key\n"
    "\n"
    "  [ work ]  ; a comment after the header\n"
    "AWS_Access_Key_ID   =   AKWORK   \r\n"
    "aws_secret_access_key = work#secret ; comment after whitespace\n"
    "aws_session_token = tok;en\n"
    "[profile work]\n"
    "aws_access_key_id = AKWRONG\n"
    "aws_secret_access_key = wrong\n"
    "[half]\n"
    "aws_access_key_id = AKHALF\n"
    "[nested]\n"
    "s3 =\n"
    "  aws_access_key_id = AKSUB\n"
    "region = eu-west-1\n";

static const char config_ini[] =
    "[default]\n"
    "region = us-west-2\n"
    "[profile dev]\n"
    "region=eu-central-1\n"
    "aws_access_key_id = AKDEV\n"
    "aws_secret_access_key = devsecret\n"
    "[prod]\n"
    "aws_access_key_id = AKNOTAPROFILE\n"
    "aws_secret_access_key = x\n"
    "[profile\tspaced   ]\n"
    "region = ap-south-1\n"
    "[profilex]\n"
    "region = nope\n";

static void
test_ini_credentials_file(void **state)
{
	struct aws_credentials c;
	char err[256], *v;
	bool found;

	(void)state;
	assert_int_equal(aws_creds_parse_ini(credentials_ini,
	    strlen(credentials_ini), "default", false, &c, &found, err,
	    sizeof(err)), 0);
	assert_true(found);
	assert_string_equal(c.access_key_id, "AKDEFAULT");
	assert_string_equal(c.secret_access_key, "def/secret+key");
	assert_null(c.session_token);
	assert_int_equal(c.expiration, 0);
	aws_credentials_clear(&c);

	/* whitespace, key case, comments: '#' and ';' need a blank before */
	assert_int_equal(aws_creds_parse_ini(credentials_ini,
	    strlen(credentials_ini), "work", false, &c, &found, err,
	    sizeof(err)), 0);
	assert_string_equal(c.access_key_id, "AKWORK");
	assert_string_equal(c.secret_access_key, "work#secret");
	assert_string_equal(c.session_token, "tok;en");
	aws_credentials_clear(&c);

	/* "[profile work]" means nothing in a credentials file */
	assert_int_equal(aws_creds_parse_ini(credentials_ini,
	    strlen(credentials_ini), "profile work", false, &c, &found, err,
	    sizeof(err)), 0);
	assert_string_equal(c.access_key_id, "AKWRONG");
	aws_credentials_clear(&c);

	assert_int_equal(aws_creds_parse_ini(credentials_ini,
	    strlen(credentials_ini), "half", false, &c, &found, err,
	    sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "aws_secret_access_key"));
	assert_null(c.secret_access_key);

	assert_int_equal(aws_creds_parse_ini(credentials_ini,
	    strlen(credentials_ini), "missing", false, &c, &found, err,
	    sizeof(err)), -ENOENT);
	assert_false(found);

	/* an indented line belongs to the property above: not a key */
	assert_int_equal(aws_creds_parse_ini(credentials_ini,
	    strlen(credentials_ini), "nested", false, &c, &found, err,
	    sizeof(err)), -ENOENT);
	assert_true(found);
	assert_int_equal(aws_creds_ini_get(credentials_ini,
	    strlen(credentials_ini), "nested", false, "region", &v, &found), 0);
	assert_string_equal(v, "eu-west-1");
	assert_true(secmem_owns(v));
	secmem_free(v);
}

static void
test_ini_config_file(void **state)
{
	struct aws_credentials c;
	char err[256], *v;
	bool found;

	(void)state;
	assert_int_equal(aws_creds_ini_get(config_ini, strlen(config_ini),
	    "default", true, "region", &v, &found), 0);
	assert_string_equal(v, "us-west-2");
	secmem_free(v);
	assert_int_equal(aws_creds_ini_get(config_ini, strlen(config_ini),
	    "dev", true, "region", &v, &found), 0);
	assert_string_equal(v, "eu-central-1");
	secmem_free(v);
	assert_int_equal(aws_creds_ini_get(config_ini, strlen(config_ini),
	    "spaced", true, "region", &v, &found), 0);
	assert_string_equal(v, "ap-south-1");
	secmem_free(v);
	/* "[profilex]" is not "[profile x]" */
	assert_int_equal(aws_creds_ini_get(config_ini, strlen(config_ini),
	    "x", true, "region", &v, &found), -ENOENT);
	assert_false(found);
	assert_null(v);

	assert_int_equal(aws_creds_parse_ini(config_ini, strlen(config_ini),
	    "dev", true, &c, &found, err, sizeof(err)), 0);
	assert_string_equal(c.access_key_id, "AKDEV");
	assert_string_equal(c.secret_access_key, "devsecret");
	aws_credentials_clear(&c);
	/* in the config file a bare [prod] is not a profile */
	assert_int_equal(aws_creds_parse_ini(config_ini, strlen(config_ini),
	    "prod", true, &c, &found, err, sizeof(err)), -ENOENT);
	assert_false(found);
	/* default has a region but no keys */
	assert_int_equal(aws_creds_parse_ini(config_ini, strlen(config_ini),
	    "default", true, &c, &found, err, sizeof(err)), -ENOENT);
	assert_true(found);
	/* and the same [prod] is one in a credentials file */
	assert_int_equal(aws_creds_parse_ini(config_ini, strlen(config_ini),
	    "prod", false, &c, &found, err, sizeof(err)), 0);
	assert_string_equal(c.access_key_id, "AKNOTAPROFILE");
	aws_credentials_clear(&c);
}

/* --- choosing the source ---------------------------------------------------- */

static void
test_chain_static_config(void **state)
{
	json_t *cfg = json_pack("{s:s,s:s,s:s}", "access_key_id", "AKCONFIG",
	    "secret_access_key", "cfgsecret", "session_token", "cfgtoken");
	struct aws_creds_options o = { .credentials = cfg, .region = "us-east-1" };
	struct aws_credentials c;
	struct aws_creds *p;
	char err[256];

	(void)state;
	/* the config wins over the environment */
	setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), 0);
	assert_string_equal(aws_creds_source(p), "config");
	assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key_id, "AKCONFIG");
	assert_string_equal(c.secret_access_key, "cfgsecret");
	assert_string_equal(c.session_token, "cfgtoken");
	assert_true(secmem_owns(c.secret_access_key));
	/* static credentials cannot be renewed */
	assert_false(aws_creds_invalidate(p, "AKCONFIG"));
	aws_credentials_clear(&c);
	assert_int_equal(aws_creds_fetches(p), 0);
	aws_creds_free(p);
	json_decref(cfg);

	cfg = json_pack("{s:s}", "access_key_id", "AKCONFIG");
	o.credentials = cfg;
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), -EINVAL);
	assert_null(p);
	json_decref(cfg);
	cfg = json_pack("{s:s,s:s}", "access_key_id", "AK CONFIG",
	    "secret_access_key", "x");
	o.credentials = cfg;
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), -EINVAL);
	json_decref(cfg);
}

static void
test_chain_env(void **state)
{
	struct aws_creds_options o = { .region = "us-east-1" };
	struct aws_credentials c;
	struct aws_creds *p;
	char err[256];

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	setenv("AWS_SESSION_TOKEN", "envtoken", 1);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), 0);
	assert_string_equal(aws_creds_source(p), "environment");
	assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key_id, "AKENV");
	assert_string_equal(c.secret_access_key, "envsecret");
	assert_string_equal(c.session_token, "envtoken");
	aws_credentials_clear(&c);
	aws_creds_free(p);

	/* only half of a pair: not this source */
	unsetenv("AWS_SECRET_ACCESS_KEY");
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "no AWS credentials"));
}

static void
test_chain_profile(void **state)
{
	struct aws_creds_options o = { .region = "us-east-1" };
	struct aws_credentials c;
	struct aws_creds *p;
	char err[512], region[64];

	(void)state;
	setenv("AWS_SHARED_CREDENTIALS_FILE", write_file("credentials",
	    credentials_ini, 0600), 1);
	setenv("AWS_CONFIG_FILE", write_file("config", config_ini, 0600), 1);

	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), 0);
	assert_string_equal(aws_creds_source(p), "profile default");
	assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key_id, "AKDEFAULT");
	aws_credentials_clear(&c);
	aws_creds_free(p);

	/* AWS_PROFILE, then the config's "profile" over it */
	setenv("AWS_PROFILE", "work", 1);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), 0);
	assert_string_equal(aws_creds_source(p), "profile work");
	assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key_id, "AKWORK");
	aws_credentials_clear(&c);
	aws_creds_free(p);
	o.profile = "dev";	/* only in the config file */
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), 0);
	assert_string_equal(aws_creds_source(p), "profile dev");
	assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key_id, "AKDEV");
	aws_credentials_clear(&c);
	aws_creds_free(p);
	assert_int_equal(aws_creds_profile_region("dev", NULL, region,
	    sizeof(region)), 0);
	assert_string_equal(region, "eu-central-1");
	assert_int_equal(aws_creds_profile_region(NULL, NULL, region,
	    sizeof(region)), -ENOENT);	/* AWS_PROFILE=work has none */

	/* a profile named explicitly must exist */
	o.profile = "nosuch";
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "\"nosuch\""));
	o.profile = NULL;
	unsetenv("AWS_PROFILE");

	/* a credentials file that group or other can read is refused */
	write_file("credentials", credentials_ini, 0644);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "credentials"));
	assert_null(strstr(err, "def/secret+key"));
	write_file("credentials", "[other]\n", 0600);

	/* a readable config file is fine, unless it holds a key */
	write_file("config", config_ini, 0644);
	assert_int_equal(aws_creds_profile_region("default", NULL, region,
	    sizeof(region)), 0);
	assert_string_equal(region, "us-west-2");
	o.profile = "dev";
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "chmod 600"));
	o.profile = NULL;
}

static void
test_chain_named_files(void **state)
{
	struct aws_creds_options o = { .region = "us-east-1" };
	struct aws_credentials c;
	struct aws_creds *p;
	char err[512], region[64], cred[PATH_MAX + 256], conf[PATH_MAX + 256];

	(void)state;
	/* files the backend config names, not the variables' */
	snprintf(cred, sizeof(cred), "%s", write_file("named-credentials",
	    credentials_ini, 0600));
	snprintf(conf, sizeof(conf), "%s", write_file("named-config",
	    config_ini, 0600));
	setenv("AWS_SHARED_CREDENTIALS_FILE", write_file("credentials",
	    "[work]\naws_access_key_id = AKVARIABLE\n"
	    "aws_secret_access_key = v\n", 0600), 1);
	o.credentials_file = cred;
	o.config_file = conf;
	o.profile = "work";
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), 0);
	assert_string_equal(aws_creds_source(p), "profile work");
	assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key_id, "AKWORK");
	aws_credentials_clear(&c);
	aws_creds_free(p);
	/* a profile only the named config file has */
	o.profile = "dev";
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), 0);
	assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key_id, "AKDEV");
	aws_credentials_clear(&c);
	aws_creds_free(p);
	assert_int_equal(aws_creds_profile_region("dev", conf, region,
	    sizeof(region)), 0);
	assert_string_equal(region, "eu-central-1");
	/* the named file gets the same scrutiny as the variable's */
	write_file("named-credentials", credentials_ini, 0640);
	o.profile = "work";
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), -EPERM);

	/* a named file that is not there is an error, and says which */
	snprintf(cred, sizeof(cred), "%s/no-such-credentials", tmpdir);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "credentials_file"));
	assert_non_null(strstr(err, "no-such-credentials"));
	o.credentials_file = NULL;
	snprintf(conf, sizeof(conf), "%s/no-such-config", tmpdir);
	o.profile = "dev";
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "config_file"));
	/* while a variable's file that is not there is just not a source */
	o.config_file = NULL;
	o.profile = NULL;
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "no AWS credentials"));
}

static void
test_chain_container(void **state)
{
	struct aws_creds_options o = { .region = "us-east-1" };
	struct aws_credentials c;
	struct aws_creds *p;
	char err[512];
	int r;

	(void)state;
	/* plain http to anything but the allowed hosts is refused */
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI",
	    "http://198.51.100.7/creds", 1);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "198.51.100.7"));
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "ftp://127.0.0.1/x", 1);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), -EINVAL);

	/* loopback is allowed; nothing listens on port 1 */
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI",
	    "http://127.0.0.1:1/v2/credentials/x", 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok-not-in-errors", 1);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), 0);
	assert_string_equal(aws_creds_source(p), "container");
	r = aws_creds_get(p, &c, err, sizeof(err));
	assert_true(r == -ECONNREFUSED || r == -EIO || r == -ETIMEDOUT);
	assert_null(c.secret_access_key);
	assert_non_null(strstr(err, "container credentials"));
	assert_null(strstr(err, "tok-not-in-errors"));
	assert_int_equal(aws_creds_fetches(p), 0);
	/* right after a failure the next reader hears the same at once */
	{
		char again[512];

		assert_int_equal(aws_creds_get(p, &c, again, sizeof(again)), r);
		assert_string_equal(again, err);
	}
	aws_creds_free(p);

	/* a line break in the token would split the request */
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "a\r\nX-Evil: 1", 1);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), -EINVAL);

	/*
	 * A relative URI is a path on the ECS agent's address. What it is
	 * resolved against, and that the token goes with it, is proven where
	 * that address can exist: tests/system/test_aws.py runs the daemon in
	 * a network namespace of its own that has 169.254.170.2.
	 */
	unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "v2/credentials/x", 1);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "RELATIVE_URI must start with '/'"));
	/* over a FULL_URI that would be refused: the relative one is taken */
	setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/x", 1);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://198.51.100.7/", 1);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), 0);
	assert_string_equal(aws_creds_source(p), "container");
	aws_creds_free(p);
	unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");

	/* the environment comes first */
	setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), 0);
	assert_string_equal(aws_creds_source(p), "environment");
	aws_creds_free(p);
}

static void
test_chain_web_identity_and_imds(void **state)
{
	struct aws_creds_options o = { .region = "us-east-1",
	    .sts_endpoint = "http://127.0.0.1:1" };
	struct aws_credentials c;
	struct aws_creds *p;
	char err[512];
	int r;

	(void)state;
	/* the token file alone is not enough */
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", write_file("token",
	    "header.payload.signature\n", 0600), 1);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), 0);
	assert_string_equal(aws_creds_source(p), "imds");
	r = aws_creds_get(p, &c, err, sizeof(err));
	assert_true(r == -ECONNREFUSED || r == -EIO || r == -ETIMEDOUT);
	assert_non_null(strstr(err, "IMDS"));
	aws_creds_free(p);

	setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), 0);
	assert_string_equal(aws_creds_source(p), "web identity");
	r = aws_creds_get(p, &c, err, sizeof(err));
	assert_true(r == -ECONNREFUSED || r == -EIO || r == -ETIMEDOUT);
	assert_non_null(strstr(err, "STS"));
	assert_null(strstr(err, "payload"));
	aws_creds_free(p);

	/* a token file that is gone is an error of the fetch, said plainly */
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token", 1);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), 0);
	assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/token"));
	aws_creds_free(p);

	/* disabled IMDS and nothing else: no source */
	unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
	setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), -ENOENT);
	/* a bad IMDS endpoint */
	unsetenv("AWS_EC2_METADATA_DISABLED");
	o.imds_endpoint = "169.254.169.254";
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), -EINVAL);
}

/* What backend_report_auth was told, as the audit trail would be. */
static struct {
	int		 n;
	char		 backend[32], method[32], action[16], reason[64];
	bool		 ok;
	int		 err;
	long long	 ttl;
} seen;

static void
auth_hook(void *arg, const char *backend, const char *method,
    const char *action, bool ok, int err, long long ttl, const char *reason)
{
	(void)arg;
	seen.n++;
	snprintf(seen.backend, sizeof(seen.backend), "%s", backend);
	snprintf(seen.method, sizeof(seen.method), "%s", method);
	snprintf(seen.action, sizeof(seen.action), "%s", action);
	snprintf(seen.reason, sizeof(seen.reason), "%s", reason ? reason : "");
	seen.ok = ok;
	seen.err = err;
	seen.ttl = ttl;
}

static void
test_failed_fetches_are_reported(void **state)
{
	struct aws_creds_options o = { .backend = "sm", .region = "us-east-1",
	    .imds_endpoint = "http://127.0.0.1:1",
	    .sts_endpoint = "http://127.0.0.1:1" };
	struct aws_credentials c;
	struct aws_creds *p;
	char err[512];

	(void)state;
	memset(&seen, 0, sizeof(seen));
	backend_set_auth_hook(auth_hook, NULL);
	/* IMDS that does not answer: one failed login, with a fixed reason. */
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), 0);
	assert_int_equal(seen.n, 0);
	assert_true(aws_creds_get(p, &c, err, sizeof(err)) < 0);
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.backend, "sm");
	assert_string_equal(seen.method, "imds");
	assert_string_equal(seen.action, "login");
	assert_false(seen.ok);
	assert_true(seen.err > 0);
	assert_int_equal(seen.ttl, 0);
	assert_true(seen.reason[0] != '\0');
	/* Asked again at once: the failure is shared, not fetched again. */
	assert_true(aws_creds_get(p, &c, err, sizeof(err)) < 0);
	assert_int_equal(seen.n, 1);
	aws_creds_free(p);

	/* A web identity token file that is gone. */
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token", 1);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), 0);
	assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), -ENOENT);
	assert_int_equal(seen.n, 2);
	assert_string_equal(seen.method, "web-identity");
	assert_string_equal(seen.reason, "token file missing");
	assert_int_equal(seen.err, ENOENT);
	aws_creds_free(p);

	/* Static credentials are not fetched: nothing to report. */
	unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
	setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	    1);
	assert_int_equal(aws_creds_new(&o, &p, err, sizeof(err)), 0);
	assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), 0);
	aws_credentials_clear(&c);
	assert_int_equal(seen.n, 2);
	aws_creds_free(p);
	backend_set_auth_hook(NULL, NULL);
}

static int
setup(void **state)
{
	char err[256];

	(void)state;
	if (secmem_init(4u << 20, err, sizeof(err)) < 0)
		return -1;
	secmem_install_json_allocator();
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_aws_creds.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_refresh_margin),
		cmocka_unit_test(test_sts_example),
		cmocka_unit_test(test_sts_xml_forms),
		cmocka_unit_test(test_sts_xml_malformed),
		cmocka_unit_test(test_sts_error),
		cmocka_unit_test(test_container_json),
		cmocka_unit_test(test_container_json_errors),
		cmocka_unit_test(test_imds_json),
		cmocka_unit_test(test_ini_credentials_file),
		cmocka_unit_test(test_ini_config_file),
		cmocka_unit_test_setup(test_chain_static_config, clean_env),
		cmocka_unit_test_setup(test_chain_env, clean_env),
		cmocka_unit_test_setup(test_chain_profile, clean_env),
		cmocka_unit_test_setup(test_chain_named_files, clean_env),
		cmocka_unit_test_setup(test_chain_container, clean_env),
		cmocka_unit_test_setup(test_chain_web_identity_and_imds,
		    clean_env),
		cmocka_unit_test_setup(test_failed_fetches_are_reported,
		    clean_env),
	};

	if (argc > 1)
		examples = argv[1];
	else if (getenv("AWS_EXAMPLES"))
		examples = getenv("AWS_EXAMPLES");
	return cmocka_run_group_tests(tests, setup, teardown);
}
