/*
 * The JSON configuration: loaded once into an immutable struct, each
 * section parsed by config_parse.c, an error placed in the text by
 * cfg_locate(); and what a reload compares.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <secretsfs/audit.h>
#include <secretsfs/backend.h>
#include <secretsfs/cfg.h>
#include <secretsfs/config.h>
#include <secretsfs/kubelet.h>
#include <secretsfs/policy.h>
#include <secretsfs/secfile.h>

#include "config_int.h"

#define CONFIG_MAX_BYTES	(16u << 20)

static const struct {
	const char	*name;
	int		 sig;
} signals[] = {
	{ "SIGHUP", SIGHUP }, { "SIGINT", SIGINT }, { "SIGQUIT", SIGQUIT },
	{ "SIGUSR1", SIGUSR1 }, { "SIGUSR2", SIGUSR2 }, { "SIGTERM", SIGTERM },
	{ "SIGWINCH", SIGWINCH }, { "SIGALRM", SIGALRM },
};

int
config_signal_from_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (strcmp(name, signals[i].name) == 0 ||
		    strcmp(name, signals[i].name + 3) == 0)
			return signals[i].sig;
	return -EINVAL;
}

const char *
config_signal_name(int sig)
{
	size_t i;

	for (i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (signals[i].sig == sig)
			return signals[i].name;
	return "signal";
}

/* A document this large is followed by malloc_trim(). */
#define CONFIG_TRIM_BYTES	(64 * 1024)

static int
digest_cb(const char *buf, size_t len, void *arg)
{
	return EVP_DigestUpdate(arg, buf, len) == 1 ? 0 : -1;
}

/*
 * What a reload compares, so that the parsed document need not be kept:
 * with 10,000 secrets it is most of the configuration's memory. The
 * digest is of the canonical form (keys sorted, compact), so it is equal
 * exactly when json_equal() of the documents would be.
 */
static int
keep_for_reload(struct config *cfg, json_t *root)
{
	static const char *const restart[] = { "mount", "memory", "audit",
	    "runtime", "control", "privsep", "metrics" };
	EVP_MD_CTX *md;
	unsigned int n = 0;
	json_t *v;
	size_t i;
	int ok;

	if (!(md = EVP_MD_CTX_new()))
		return -ENOMEM;
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    json_dump_callback(root, digest_cb, md,
	    JSON_COMPACT | JSON_SORT_KEYS) == 0 &&
	    EVP_DigestFinal_ex(md, cfg->digest, &n) == 1 &&
	    n == sizeof(cfg->digest);
	EVP_MD_CTX_free(md);
	if (!ok)
		return -ENOMEM;
	if (!(cfg->restart = json_object()))
		return -ENOMEM;
	for (i = 0; i < sizeof(restart) / sizeof(restart[0]); i++)
		if ((v = json_object_get(root, restart[i])) &&
		    json_object_set(cfg->restart, restart[i], v) < 0)
			return -ENOMEM;
	return 0;
}

int
config_load_string(const char *text, const char *file, struct config **out,
    struct cfg_err *err)
{
	struct config *cfg;
	json_error_t je;
	json_t *root;
	int r;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	if (!(cfg = calloc(1, sizeof(*cfg))))
		return -ENOMEM;
	if (!(cfg->file = strdup(file))) {
		free(cfg);
		return -ENOMEM;
	}
	root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		cfg_err_set(err, "", "invalid JSON: %s", je.text);
		err->line = je.line;
		err->col = je.column;
		config_free(cfg);
		return -EINVAL;
	}
	if ((r = config_parse_root(cfg, root, err)) < 0) {
		if (r == -EINVAL)
			cfg_locate(text, strlen(text), err->path, &err->line,
			    &err->col);
		else
			cfg_err_set(err, "", "%s", strerror(-r));
		json_decref(root);
		config_free(cfg);
		return r;
	}
	r = keep_for_reload(cfg, root);
	/* Backends hold their own references to their options. */
	json_decref(root);
	/*
	 * The document's nodes were allocated between the strings kept from
	 * it; freed, they stay resident as holes. For a large document
	 * (10,000 secrets: about 600 bytes each) give those pages back.
	 */
	if (strlen(text) >= CONFIG_TRIM_BYTES)
		malloc_trim(0);
	if (r < 0) {
		cfg_err_set(err, "", "%s", strerror(-r));
		config_free(cfg);
		return r;
	}
	*out = cfg;
	return 0;
}

int
config_load(const char *file, struct config **out, struct cfg_err *err)
{
	const unsigned flags = SECFILE_PRIVATE | SECFILE_HEAP;
	char ebuf[256];
	uint8_t *text;
	size_t len;
	int r;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	r = secfile_read(file, flags, CONFIG_MAX_BYTES, &text, &len, NULL, ebuf,
	    sizeof(ebuf));
	if (r < 0) {
		/* ebuf starts with the file name; cfg_err_format adds it. */
		const char *why = strncmp(ebuf, file, strlen(file)) == 0 ?
		    ebuf + strlen(file) + 2 : ebuf;
		cfg_err_set(err, "", "%s: %s", r == -EPERM ? "refused" :
		    r == -EFBIG ? "too large" : "cannot open", why);
		return r;
	}
	r = config_load_string((char *)text, file, out, err);
	/* Static credentials may sit in the config. */
	secfile_free(text, len, flags);
	return r;
}

void
config_free(struct config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n_backends; i++) {
		free(cfg->backends[i].name);
		free(cfg->backends[i].type);
		free(cfg->backends[i].path);
		json_decref(cfg->backends[i].options);
	}
	free(cfg->backends);
	for (i = 0; i < cfg->n_secrets; i++) {
		free(cfg->secrets[i].name);
		if (cfg->secrets[i].ref != cfg->secrets[i].name)
			free(cfg->secrets[i].ref);
		free(cfg->secrets[i].field);
		free(cfg->secrets[i].version);
	}
	free(cfg->secrets);
	policy_free(cfg->policy);
	free(cfg->runtime_socket);
	kubelet_config_clear(cfg->kubelet);
	free(cfg->kubelet);
	free(cfg->control_socket);
	free(cfg->fetcher_user);
	audit_config_clear(cfg->audit);
	free(cfg->audit);
	config_metrics_free(cfg->metrics);
	json_decref(cfg->restart);
	free(cfg->mountpoint);
	free(cfg->file);
	free(cfg);
}

ssize_t
config_find_secret(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_secrets; i++)
		if (strcmp(cfg->secrets[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

ssize_t
config_find_backend(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_backends; i++)
		if (strcmp(cfg->backends[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}
