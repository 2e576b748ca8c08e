/*
 * The AWS shared config and credentials files: the INI reader, and the
 * profile source of the credential chain that reads them.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <secretsfs/aws_creds.h>
#include <secretsfs/secmem.h>

#include "aws_creds_int.h"

/* --- shared config and credentials files ------------------------------------ */

static void
trim(const char **s, const char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t' || **s == '\r'))
		(*s)++;
	while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t' ||
	    (*e)[-1] == '\r'))
		(*e)--;
}

/* Is the section header [b, e) (brackets excluded) the wanted profile? */
static bool
section_is(const char *b, const char *e, const char *profile, bool config_file)
{
	size_t pl = strlen(profile);

	trim(&b, &e);
	if (config_file) {
		if ((size_t)(e - b) == 7 && memcmp(b, "default", 7) == 0)
			return strcmp(profile, "default") == 0;
		if (e - b < 8 || memcmp(b, "profile", 7) != 0 ||
		    (b[7] != ' ' && b[7] != '\t'))
			return false;
		b += 7;
		trim(&b, &e);
	}
	return (size_t)(e - b) == pl && memcmp(b, profile, pl) == 0;
}

int
aws_creds_ini_get(const char *text, size_t len, const char *profile,
    bool config_file, const char *key, char **value, bool *found_profile)
{
	const char *p = text, *end = text + len;
	bool in = false;

	*value = NULL;
	*found_profile = false;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *b = p, *e = eol ? eol : end, *eq;

		p = eol ? eol + 1 : end;
		/* An indented line continues the property above it. */
		if (b < e && (*b == ' ' || *b == '\t')) {
			trim(&b, &e);
			if (b == e || *b == '#' || *b == ';')
				continue;
			if (*b != '[')
				continue;
		}
		trim(&b, &e);
		if (b == e || *b == '#' || *b == ';')
			continue;
		if (*b == '[') {
			const char *close = memchr(b, ']', (size_t)(e - b));

			in = close && section_is(b + 1, close, profile,
			    config_file);
			if (in)
				*found_profile = true;
			continue;
		}
		if (!in || !(eq = memchr(b, '=', (size_t)(e - b))))
			continue;
		{
			const char *kb = b, *ke = eq, *vb = eq + 1, *ve = e;

			trim(&kb, &ke);
			if ((size_t)(ke - kb) != strlen(key) ||
			    strncasecmp(kb, key, (size_t)(ke - kb)) != 0)
				continue;
			/* A comment after a value needs whitespace before it. */
			for (const char *c = vb + 1; c < ve; c++)
				if ((*c == '#' || *c == ';') &&
				    (c[-1] == ' ' || c[-1] == '\t')) {
					ve = c;
					break;
				}
			trim(&vb, &ve);
			/* A NUL would cut the value short: no value at all. */
			if (vb == ve || memchr(vb, '\0', (size_t)(ve - vb)))
				continue;
			if (!(*value = secmem_strndup(vb, (size_t)(ve - vb))))
				return -ENOMEM;
			return 0;
		}
	}
	return -ENOENT;
}

int
aws_creds_parse_ini(const char *text, size_t len, const char *profile,
    bool config_file, struct aws_credentials *out, bool *found_profile,
    char *errbuf, size_t errlen)
{
	char *akid = NULL, *secret = NULL, *token = NULL;
	bool f;
	int r;

	memset(out, 0, sizeof(*out));
	errbuf[0] = '\0';
	if ((r = aws_creds_ini_get(text, len, profile, config_file,
	    "aws_access_key_id", &akid, found_profile)) == -ENOMEM ||
	    (r = aws_creds_ini_get(text, len, profile, config_file,
	    "aws_secret_access_key", &secret, &f)) == -ENOMEM)
		goto out;
	if ((r = aws_creds_ini_get(text, len, profile, config_file,
	    "aws_session_token", &token, &f)) == -ENOENT)
		r = aws_creds_ini_get(text, len, profile, config_file,
		    "aws_security_token", &token, &f);
	if (r == -ENOMEM)
		goto out;
	if (!akid && !secret) {
		r = -ENOENT;
		goto out;
	}
	if (!akid || !secret) {
		snprintf(errbuf, errlen, "profile %s has %s but no %s", profile,
		    akid ? "aws_access_key_id" : "aws_secret_access_key",
		    akid ? "aws_secret_access_key" : "aws_access_key_id");
		r = -EINVAL;
		goto out;
	}
	r = aws_creds_set(out, akid, strlen(akid), secret, strlen(secret),
	    token, token ? strlen(token) : 0, NULL, "profile", errbuf, errlen);
	if (r == -EIO)
		r = -EINVAL;
out:
	secmem_free(akid);
	secmem_free(secret);
	secmem_free(token);
	return r;
}

/* The configured path, else the variable's, else ~/rel. */
static int
home_path(const char *configured, const char *env, const char *rel,
    char *buf, size_t len)
{
	const char *v = configured ? configured : aws_creds_env(env);
	const char *home = aws_creds_env("HOME");
	struct passwd pw, *pp = NULL;
	char pwbuf[1024];

	if (v) {
		snprintf(buf, len, "%s", v);
		return 0;
	}
	if (!home) {
		getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &pp);
		if (!pp)
			return -ENOENT;
		home = pp->pw_dir;
	}
	snprintf(buf, len, "%s/%s", home, rel);
	return 0;
}

/*
 * A file the backend config names must be there: its absence is a mistake
 * to report, not a source to skip as a missing ~/.aws file is.
 */
static int
named_file_missing(const char *key, const char *path, char *errbuf,
    size_t errlen)
{
	snprintf(errbuf, errlen, "%s %s: %s", key, path, strerror(ENOENT));
	return -EINVAL;
}

/*
 * The shared files. 0 with p->cur set, -ENOENT when neither file has keys
 * for the profile (*exists says whether either has the profile), or
 * another -errno with errbuf set.
 */
int
aws_creds_from_profile(struct aws_creds *p, const struct aws_creds_options *o,
    const char *profile, bool *exists, char *errbuf, size_t errlen)
{
	char path[4096], *text;
	size_t len;
	mode_t mode = 0;
	bool found;
	int r;

	*exists = false;
	if (home_path(o->credentials_file, "AWS_SHARED_CREDENTIALS_FILE",
	    ".aws/credentials", path, sizeof(path)) == 0) {
		r = aws_creds_read_file(path, CRED_FILE_MAX, true, &text, &len,
		    NULL, errbuf, errlen);
		if (r == -ENOENT && o->credentials_file)
			return named_file_missing("credentials_file", path,
			    errbuf, errlen);
		if (r < 0 && r != -ENOENT)
			return r;
		if (r == 0) {
			r = aws_creds_parse_ini(text, len, profile, false,
			    &p->cur, &found, errbuf, errlen);
			secmem_free(text);
			*exists |= found;
			if (r == 0) {
				snprintf(p->source_name, sizeof(p->source_name),
				    "profile %s", profile);
				return 0;
			}
			if (r != -ENOENT) {
				char why[256];

				snprintf(why, sizeof(why), "%s", errbuf);
				snprintf(errbuf, errlen, "%s: %s", path, why);
				return r;
			}
		}
	}
	if (home_path(o->config_file, "AWS_CONFIG_FILE", ".aws/config", path,
	    sizeof(path)) == 0) {
		r = aws_creds_read_file(path, CRED_FILE_MAX, false, &text, &len,
		    &mode, errbuf, errlen);
		if (r == -ENOENT && o->config_file)
			return named_file_missing("config_file", path, errbuf,
			    errlen);
		if (r < 0 && r != -ENOENT)
			return r;
		if (r == 0) {
			r = aws_creds_parse_ini(text, len, profile, true,
			    &p->cur, &found, errbuf, errlen);
			secmem_free(text);
			*exists |= found;
			if (r == 0 && (mode & (S_IRWXG | S_IRWXO))) {
				aws_credentials_clear(&p->cur);
				snprintf(errbuf, errlen, "%s: holds a secret "
				    "access key but its mode %04o lets group or "
				    "other read it; run `chmod 600 %s`", path,
				    (unsigned)(mode & 07777), path);
				return -EPERM;
			}
			if (r == 0) {
				snprintf(p->source_name, sizeof(p->source_name),
				    "profile %s", profile);
				return 0;
			}
			if (r != -ENOENT) {
				char why[256];

				snprintf(why, sizeof(why), "%s", errbuf);
				snprintf(errbuf, errlen, "%s: %s", path, why);
				return r;
			}
		}
	}
	return -ENOENT;
}

int
aws_creds_profile_region(const char *profile, const char *config_file,
    char *buf, size_t len)
{
	char path[4096], why[256], *text, *v = NULL;
	size_t n;
	bool found;
	int r;

	if (!profile)
		profile = aws_creds_env("AWS_PROFILE");
	if (!profile)
		profile = aws_creds_env("AWS_DEFAULT_PROFILE");
	if (!profile)
		profile = "default";
	if (home_path(config_file, "AWS_CONFIG_FILE", ".aws/config", path,
	    sizeof(path)) < 0 ||
	    aws_creds_read_file(path, CRED_FILE_MAX, false, &text, &n, NULL,
	    why, sizeof(why)) < 0)
		return -ENOENT;
	r = aws_creds_ini_get(text, n, profile, true, "region", &v, &found);
	secmem_free(text);
	if (r < 0)
		return r;
	r = strlen(v) < len ? 0 : -ENAMETOOLONG;
	if (r == 0)
		memcpy(buf, v, strlen(v) + 1);
	secmem_free(v);
	return r;
}
