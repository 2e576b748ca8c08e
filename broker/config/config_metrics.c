/*
 * The "metrics" section: where the listener for /metrics and /healthz
 * listens, with what TLS, and the textfile for node_exporter.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <secretsfs/cfg.h>
#include <secretsfs/config.h>

#include "config_int.h"

int
config_metrics_addr(const char *s, struct sockaddr_storage *ss,
    socklen_t *len, bool *loopback, char *why, size_t whylen)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	unsigned long port;
	bool bracket;
	char *end;
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (strncmp(s, "unix:", 5) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;

		s += 5;
		if (s[0] != '/') {
			snprintf(why, whylen, "expected unix: and an absolute "
			    "path");
			return -EINVAL;
		}
		if (strlen(s) >= sizeof(sun->sun_path)) {
			snprintf(why, whylen, "longer than a Unix socket path "
			    "may be (%zu bytes)", sizeof(sun->sun_path) - 1);
			return -EINVAL;
		}
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, s, strlen(s) + 1);
		*len = sizeof(*sun);
		*loopback = true;
		return 0;
	}
	/* An IP literal: the FUSE process resolves no names. */
	if (!(colon = strrchr(s, ':')) || colon == s)
		goto bad;
	n = (size_t)(colon - s);
	if ((bracket = s[0] == '[')) {
		if (n < 3 || s[n - 1] != ']')
			goto bad;
		s++;
		n -= 2;
	}
	if (n >= sizeof(host))
		goto bad;
	memcpy(host, s, n);
	host[n] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port == 0 || port > 65535 ||
	    colon[1] < '0' || colon[1] > '9')
		goto bad;
	if (bracket || strchr(host, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		if (!bracket ||
		    inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			goto bad;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
		*loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			goto bad;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*len = sizeof(*in);
		*loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	return 0;
bad:
	snprintf(why, whylen, "expected \"IPv4:PORT\", \"[IPv6]:PORT\" or "
	    "\"unix:/PATH\"");
	return -EINVAL;
}

/* Inside the mount a path would be served by ourselves, read-only. */
static bool
in_mount(const struct config *cfg, const char *path)
{
	size_t mlen = strlen(cfg->mountpoint);

	while (mlen > 1 && cfg->mountpoint[mlen - 1] == '/')
		mlen--;
	return strncmp(path, cfg->mountpoint, mlen) == 0 &&
	    (path[mlen] == '/' || path[mlen] == '\0' || mlen == 1);
}

static int
dup_or_null(char **out, const char *s)
{
	if (!s)
		return 0;
	return (*out = strdup(s)) ? 0 : -ENOMEM;
}

static int
parse_tls(const json_t *o, struct config_metrics *m, struct cfg_err *err)
{
	static const char *const keys[] = { "cert_file", "key_file",
	    "client_ca_file", NULL };
	const char *cert = NULL, *key = NULL, *ca = NULL;
	json_t *t;
	int r;

	if ((r = cfg_get_object(o, "metrics", "tls", 0, &t, err)) < 0 || !t)
		return r;
	if ((r = cfg_check_keys(t, "metrics.tls", keys, err)) < 0 ||
	    (r = cfg_get_path(t, "metrics.tls", "cert_file", CFG_REQUIRED,
	    &cert, err)) < 0 ||
	    (r = cfg_get_path(t, "metrics.tls", "key_file", CFG_REQUIRED,
	    &key, err)) < 0 ||
	    (r = cfg_get_path(t, "metrics.tls", "client_ca_file", CFG_NULL,
	    &ca, err)) < 0)
		return r;
	if ((r = dup_or_null(&m->cert_file, cert)) < 0 ||
	    (r = dup_or_null(&m->key_file, key)) < 0 ||
	    (r = dup_or_null(&m->client_ca_file, ca)) < 0)
		return r;
	return 0;
}

int
config_parse_metrics(const json_t *root, struct config *cfg,
    struct cfg_err *err)
{
	static const char *const keys[] = { "listen", "tls", "textfile",
	    "interval", NULL };
	const char *listen = NULL, *textfile = NULL;
	struct config_metrics *m;
	struct sockaddr_storage ss;
	socklen_t sl;
	bool loopback = false;
	char why[128];
	size_t n;
	json_t *o;
	int r;

	if ((r = cfg_get_object(root, "", "metrics", 0, &o, err)) < 0 || !o)
		return r;
	if (!(m = cfg->metrics = calloc(1, sizeof(*m))))
		return -ENOMEM;
	m->interval_ms = CONFIG_METRICS_INTERVAL_MS;
	if ((r = cfg_check_keys(o, "metrics", keys, err)) < 0 ||
	    (r = cfg_get_string(o, "metrics", "listen", CFG_NULL, &listen,
	    err)) < 0 ||
	    (r = cfg_get_path(o, "metrics", "textfile", CFG_NULL, &textfile,
	    err)) < 0 ||
	    (r = cfg_get_duration(o, "metrics", "interval", CFG_NONZERO,
	    &m->interval_ms, err)) < 0 ||
	    (r = parse_tls(o, m, err)) < 0)
		return r;
	if (listen && config_metrics_addr(listen, &ss, &sl, &loopback, why,
	    sizeof(why)) < 0)
		return cfg_err_set(err, "metrics.listen", "%s", why);
	if (listen && ss.ss_family == AF_UNIX && in_mount(cfg, listen + 5))
		return cfg_err_set(err, "metrics.listen", "must not be inside "
		    "the mount (%s)", cfg->mountpoint);
	if (m->cert_file && (!listen || ss.ss_family == AF_UNIX))
		return cfg_err_set(err, "metrics.tls", "only with a TCP "
		    "address in \"listen\"");
	/* Names, versions and holders are for the node's monitoring alone. */
	if (listen && !loopback && !m->client_ca_file)
		return cfg_err_set(err, "metrics.listen", "%s is not a "
		    "loopback address: serve it with \"tls\" and a "
		    "\"client_ca_file\"", listen);
	if (textfile) {
		n = strlen(textfile);
		if (n < 6 || strcmp(textfile + n - 5, ".prom") != 0 ||
		    textfile[n - 6] == '/')
			return cfg_err_set(err, "metrics.textfile",
			    "expected a file name ending in .prom "
			    "(node_exporter reads only those)");
		if (in_mount(cfg, textfile))
			return cfg_err_set(err, "metrics.textfile",
			    "must not be inside the mount (%s)",
			    cfg->mountpoint);
	}
	if (json_object_get(o, "interval") && !textfile)
		return cfg_err_set(err, "metrics.interval", "only with "
		    "\"textfile\"");
	if (m->interval_ms < 1000)
		return cfg_err_set(err, "metrics.interval", "must be at least "
		    "1s");
	if (!listen && !textfile)
		return cfg_err_set(err, "metrics", "expected \"listen\", "
		    "\"textfile\" or both");
	if ((r = dup_or_null(&m->listen, listen)) < 0 ||
	    (r = dup_or_null(&m->textfile, textfile)) < 0)
		return r;
	return 0;
}

void
config_metrics_free(struct config_metrics *m)
{
	if (!m)
		return;
	free(m->listen);
	free(m->cert_file);
	free(m->key_file);
	free(m->client_ca_file);
	free(m->textfile);
	free(m);
}
