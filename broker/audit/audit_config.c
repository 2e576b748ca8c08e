/*
 * The "audit" section of the configuration.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <secretsfs/audit.h>
#include <secretsfs/cfg.h>

/* ------------------------------------------------------------------ */
/* Configuration                                                      */

void
audit_config_init(struct audit_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->on_failure = AUDIT_ON_FAILURE_DENY;
	cfg->flush_interval_ms = 1000;
	cfg->denied_per_caller = 100;
	cfg->denied_interval_ms = 10000;
}

void
audit_config_clear(struct audit_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->file);
	free(cfg->key_file);
	free(cfg->host_name);
	free(cfg->syslog_socket);
	audit_config_init(cfg);
}

static int
conf_abs_path(const json_t *v, const char *kp, char **out,
    struct cfg_err *err)
{
	const char	*s;

	if (!json_is_string(v))
		return cfg_err_set(err, kp, "must be a string");
	s = json_string_value(v);
	if (s[0] != '/')
		return cfg_err_set(err, kp, "must be an absolute path");
	/* Room for the ".<UTC time>" of a rotated file. */
	if (strlen(s) > PATH_MAX - 64)
		return cfg_err_set(err, kp, "path too long");
	if ((*out = strdup(s)) == NULL)
		return cfg_err_set(err, kp, "out of memory");
	return 0;
}

int
audit_config_from_json(const json_t *obj, const char *path,
    struct audit_config *out, struct cfg_err *err)
{
	char		 kp[256];
	const char	*k, *s;
	json_t		*v;
	void		*it;
	int		 r = 0;

	audit_config_init(out);
	if (!json_is_object(obj))
		return cfg_err_set(err, path, "must be an object");

	for (it = json_object_iter((json_t *)obj); it != NULL && r == 0;
	    it = json_object_iter_next((json_t *)obj, it)) {
		k = json_object_iter_key(it);
		v = json_object_iter_value(it);
		cfg_path_key(kp, sizeof(kp), path, k);

		if (strcmp(k, "file") == 0)
			r = conf_abs_path(v, kp, &out->file, err);
		else if (strcmp(k, "key_file") == 0)
			r = conf_abs_path(v, kp, &out->key_file, err);
		else if (strcmp(k, "on_failure") == 0) {
			s = json_string_value(v);
			if (s != NULL && strcmp(s, "deny") == 0)
				out->on_failure = AUDIT_ON_FAILURE_DENY;
			else if (s != NULL && strcmp(s, "allow") == 0)
				out->on_failure = AUDIT_ON_FAILURE_ALLOW;
			else
				r = cfg_err_set(err, kp,
				    "must be \"deny\" or \"allow\"");
		} else if (strcmp(k, "flush_interval") == 0) {
			int64_t ms = 0;

			if (json_is_integer(v) && json_integer_value(v) >= 0 &&
			    json_integer_value(v) <= 3600)
				ms = json_integer_value(v) * 1000;
			else if (!json_is_string(v) ||
			    cfg_parse_duration(json_string_value(v), &ms) < 0)
				r = cfg_err_set(err, kp, "must be a duration "
				    "such as \"1s\" or \"250ms\"");
			if (r == 0 && (ms < 0 || ms > 3600 * 1000))
				r = cfg_err_set(err, kp,
				    "must be between 0 and 1h");
			if (r == 0)
				out->flush_interval_ms = ms;
		} else if (strcmp(k, "max_size") == 0) {
			uint64_t sz = 0;

			if (json_is_integer(v) && json_integer_value(v) >= 0)
				sz = json_integer_value(v);
			else if (!json_is_string(v) ||
			    cfg_parse_size(json_string_value(v), &sz) < 0) {
				r = cfg_err_set(err, kp, "must be a size "
				    "such as \"100MiB\"");
				continue;
			}
			if (sz != 0 && sz < 4096)
				r = cfg_err_set(err, kp,
				    "must be at least 4KiB (or 0: no limit)");
			else
				out->max_size = sz;
		} else if (strcmp(k, "denied_per_caller") == 0) {
			long long n = 0;

			r = cfg_get_int(obj, path, k, 0, 0, 1000000, &n, err);
			if (r == 0)
				out->denied_per_caller = (uint32_t)n;
		} else if (strcmp(k, "denied_interval") == 0) {
			int64_t ms = 0;

			r = cfg_get_duration(obj, path, k, 0, &ms, err);
			if (r == 0 && (ms < 1000 || ms > 3600 * 1000))
				r = cfg_err_set(err, kp,
				    "must be between 1s and 1h");
			if (r == 0)
				out->denied_interval_ms = ms;
		} else if (strcmp(k, "reserve") == 0)
			r = cfg_get_size(obj, path, k, 0, &out->reserve, err);
		else if (strcmp(k, "syslog") == 0) {
			if (!json_is_boolean(v))
				r = cfg_err_set(err, kp, "must be true or false");
			else
				out->syslog = json_is_true(v);
		} else if (strcmp(k, "stdout") == 0) {
			if (!json_is_boolean(v))
				r = cfg_err_set(err, kp, "must be true or false");
			else
				out->to_stdout = json_is_true(v);
		} else if (strcmp(k, "host_name") == 0) {
			size_t i, n;

			s = json_string_value(v);
			n = s != NULL ? strlen(s) : 0;
			if (n == 0 || n > 255) {
				r = cfg_err_set(err, kp,
				    "must be a string of 1 to 255 bytes");
				continue;
			}
			for (i = 0; i < n; i++)
				if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
					break;
			if (i < n)
				r = cfg_err_set(err, kp,
				    "must not hold spaces or control characters");
			else if ((out->host_name = strdup(s)) == NULL)
				r = cfg_err_set(err, kp, "out of memory");
		} else
			r = cfg_err_set(err, kp, "unknown key");
	}
	if (r == 0 && out->file == NULL) {
		cfg_path_key(kp, sizeof(kp), path, "file");
		r = cfg_err_set(err, kp, "is required");
	}
	if (r == 0 && out->key_file == NULL) {
		cfg_path_key(kp, sizeof(kp), path, "key_file");
		r = cfg_err_set(err, kp, "is required");
	}
	if (r != 0)
		audit_config_clear(out);
	return r;
}
