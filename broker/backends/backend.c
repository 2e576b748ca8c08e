/*
 * The backend registry and what all backends share: field selection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <secretsfs/backend.h>
#include <secretsfs/secmem.h>

struct backend {
	char				*name;
	const char			*type;	/* of the config, even when remote */
	const struct backend_ops	*ops;
	void				*impl;
};

static const struct backend_ops *const backend_types[] = {
	&backend_file_ops,
	&backend_vault_ops,
	&backend_aws_ops,
};

static const struct backend_ops *remote_ops;
static backend_auth_hook auth_hook;
static void *auth_hook_arg;

void
backend_set_remote(const struct backend_ops *ops)
{
	remote_ops = ops;
}

void
backend_set_auth_hook(backend_auth_hook fn, void *arg)
{
	auth_hook = fn;
	auth_hook_arg = arg;
}

void
backend_report_auth(const char *backend, const char *method,
    const char *action, bool ok, int err, long long ttl, const char *reason)
{
	if (auth_hook)
		auth_hook(auth_hook_arg, backend, method, action, ok, err, ttl,
		    reason);
}

static const struct backend_ops *
find_ops(const char *type)
{
	for (size_t i = 0; i < sizeof(backend_types) / sizeof(backend_types[0]); i++)
		if (strcmp(backend_types[i]->type, type) == 0)
			return backend_types[i];
	return NULL;
}

int
backend_validate(const char *type, const json_t *opts, const char *path,
    struct cfg_err *err)
{
	const struct backend_ops *ops = find_ops(type);
	char p[CFG_PATH_MAX];

	if (!ops) {
		cfg_path_key(p, sizeof(p), path, "type");
		return cfg_err_set(err, p, "unknown backend type \"%s\"",
		    type);
	}
	return ops->validate(opts, path, err);
}

int
backend_open(const struct config_backend *cfg, struct backend **out,
    char *errbuf, size_t errlen)
{
	const struct backend_ops *ops = find_ops(cfg->type);
	struct backend *b;
	int r;

	*out = NULL;
	if (!ops) {
		snprintf(errbuf, errlen, "unknown backend type \"%s\"", cfg->type);
		return -EINVAL;
	}
	if (!(b = calloc(1, sizeof(*b))) || !(b->name = strdup(cfg->name))) {
		free(b);
		return -ENOMEM;
	}
	b->type = ops->type;
	b->ops = remote_ops ? remote_ops : ops;
	if ((r = b->ops->open(cfg, &b->impl, errbuf, errlen)) < 0) {
		free(b->name);
		free(b);
		return r;
	}
	*out = b;
	return 0;
}

int
backend_fetch(struct backend *b, const struct backend_request *req,
    struct backend_value *out, char *errbuf, size_t errlen)
{
	int r;

	memset(out, 0, sizeof(*out));
	errbuf[0] = '\0';
	r = b->ops->fetch(b->impl, req, out, errbuf, errlen);
	/* A remote backend selected the field where it parsed the answer. */
	if (r == 0 && req->field && b->ops != remote_ops &&
	    (r = backend_select_field(out, req->field, errbuf, errlen)) < 0)
		backend_value_clear(out);
	return r;
}

int
backend_list(struct backend *b, const char *prefix, char ***names, size_t *n,
    char *errbuf, size_t errlen)
{
	*names = NULL;
	*n = 0;
	errbuf[0] = '\0';
	if (!b->ops->list) {
		snprintf(errbuf, errlen, "backend type %s cannot list",
		    b->type);
		return -ENOTSUP;
	}
	return b->ops->list(b->impl, prefix, names, n, errbuf, errlen);
}

const char *
backend_name(const struct backend *b)
{
	return b->name;
}

const char *
backend_type(const struct backend *b)
{
	return b->type;
}

void
backend_close(struct backend *b)
{
	if (!b)
		return;
	b->ops->close(b->impl);
	free(b->name);
	free(b);
}

void
backend_value_clear(struct backend_value *v)
{
	secmem_free(v->data);
	v->data = NULL;
	v->len = 0;
}

int
backend_select(const uint8_t *data, size_t dlen, const char *field,
    uint8_t **out, size_t *olen, char *errbuf, size_t errlen)
{
	json_t *doc, *m;
	json_error_t je;
	uint8_t *sel;
	size_t len;

	*out = NULL;
	*olen = 0;
	/* jansson allocates from the arena, so the parse tree is locked too. */
	doc = json_loadb((const char *)data, dlen, 0, &je);
	if (!json_is_object(doc)) {
		/* je.text may quote the input; say only where it broke. */
		snprintf(errbuf, errlen, "field \"%s\" selected but the value "
		    "is not a JSON object", field);
		json_decref(doc);
		return -EINVAL;
	}
	if (!(m = json_object_get(doc, field))) {
		snprintf(errbuf, errlen, "the value has no field \"%s\"", field);
		json_decref(doc);
		return -ENOENT;
	}
	if (json_is_string(m)) {
		len = json_string_length(m);
		if ((sel = secmem_alloc(len + 1))) {
			memcpy(sel, json_string_value(m), len);
			sel[len] = '\0';
		}
	} else {
		len = json_dumpb(m, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
		if ((sel = secmem_alloc(len + 1)))
			json_dumpb(m, (char *)sel, len, JSON_COMPACT |
			    JSON_ENCODE_ANY);
	}
	json_decref(doc);
	if (!sel) {
		snprintf(errbuf, errlen, "locked memory exhausted");
		return -ENOMEM;
	}
	*out = sel;
	*olen = len;
	return 0;
}

int
backend_select_field(struct backend_value *v, const char *field,
    char *errbuf, size_t errlen)
{
	uint8_t *sel;
	size_t len;
	int r;

	if ((r = backend_select(v->data, v->len, field, &sel, &len, errbuf,
	    errlen)) < 0)
		return r;
	backend_value_clear(v);
	v->data = sel;
	v->len = len;
	return 0;
}
