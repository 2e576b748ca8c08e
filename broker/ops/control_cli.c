/*
 * Runs in the CLI (secretsfs status, metrics, health, flush, refresh and
 * audit verify -c): the control socket's client.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include <secretsfs/config.h>
#include <secretsfs/control.h>

#include "control_int.h"

#define CLIENT_TIMEOUT_S	120	/* a refresh may wait on a slow backend */
#define ANSWER_MAX		(64u << 20)

static const char *const verbs[] = { "status", "metrics", "health", "flush",
	"refresh" };

bool
control_is_command(const char *verb)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(verb, verbs[i]) == 0)
			return true;
	return false;
}

static void
cli_usage(const char *verb)
{
	fprintf(stderr, "usage: secretsfs %s [-c CONFIG | -s SOCKET]%s\n", verb,
	    strcmp(verb, "status") == 0 ? " [--json]" :
	    strcmp(verb, "flush") == 0 ? " [NAME]" :
	    strcmp(verb, "refresh") == 0 ? " NAME" : "");
}

/* Send line, read the whole answer into *buf (NUL-terminated). */
static int
request(const char *path, const char *line, char **buf, size_t *len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = CLIENT_TIMEOUT_S };
	size_t cap = 4096;
	char *grown;
	ssize_t n;
	int fd, r;

	*buf = NULL;
	*len = 0;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		r = -errno;
		close(fd);
		return r;
	}
	control_write_all(fd, line, strlen(line));
	shutdown(fd, SHUT_WR);
	if (!(*buf = malloc(cap))) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		if (*len + 1 >= cap) {
			if (cap >= ANSWER_MAX ||
			    !(grown = realloc(*buf, cap * 2))) {
				r = -EFBIG;
				goto fail;
			}
			*buf = grown;
			cap *= 2;
		}
		n = recv(fd, *buf + *len, cap - *len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto fail;
		}
		if (n == 0)
			break;
		*len += (size_t)n;
	}
	(*buf)[*len] = '\0';
	close(fd);
	return 0;
fail:
	free(*buf);
	*buf = NULL;
	close(fd);
	return r;
}

int
control_audit_head(const char *path, uint64_t *seq, char *mac, size_t maclen,
    char *why, size_t whylen)
{
	json_t *doc, *au, *jseq, *jmac;
	const char *m;
	char *ans;
	size_t len;
	int r;

	if ((r = request(path, "status json\n", &ans, &len)) < 0) {
		snprintf(why, whylen, "cannot reach the daemon on %s: %s", path,
		    strerror(-r));
		return r;
	}
	doc = strncmp(ans, "ok\n", 3) == 0 ?
	    json_loadb(ans + 3, len - 3, 0, NULL) : NULL;
	free(ans);
	if (!doc) {
		snprintf(why, whylen, "the daemon on %s gave no status", path);
		return -EPROTO;
	}
	au = json_object_get(doc, "audit");
	jseq = json_object_get(au, "seq");
	jmac = json_object_get(au, "mac");
	m = json_string_value(jmac);
	r = 0;
	if (json_is_null(au)) {
		snprintf(why, whylen, "the daemon on %s keeps no audit trail",
		    path);
		r = -ENODATA;
	} else if (!json_is_integer(jseq) || json_integer_value(jseq) < 1 ||
	    !m || strlen(m) != 64 || strspn(m, "0123456789abcdef") != 64 ||
	    maclen < 65) {
		snprintf(why, whylen, "the daemon on %s gave no audit head "
		    "(an older secretsfs?)", path);
		r = -EPROTO;
	} else {
		*seq = (uint64_t)json_integer_value(jseq);
		snprintf(mac, maclen, "%s", m);
	}
	json_decref(doc);
	return r;
}

int
control_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "socket",	required_argument,	NULL, 's' },
		{ "json",	no_argument,		NULL, 'j' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *verb = argv[0], *file = NULL, *sock = NULL, *name = NULL;
	char path[256], line[CONTROL_LINE_MAX + 1], *ans, *nl;
	struct control_cmd cmd;
	struct cfg_err err;
	struct config *cfg;
	bool json = false;
	size_t len;
	int ch, r;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:s:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			cli_usage(verb);
			return 0;
		default:
			cli_usage(verb);
			return 2;
		}
	}
	if (optind < argc)
		name = argv[optind++];
	if ((file && sock) || optind != argc ||
	    (json && strcmp(verb, "status") != 0)) {
		cli_usage(verb);
		return 2;
	}
	snprintf(line, sizeof(line), "%s%s%s", verb, name ? " " : json ?
	    " json" : "", name ? name : "");
	if (control_parse(line, strlen(line), &cmd) < 0) {
		cli_usage(verb);
		return 2;
	}
	if (sock)
		snprintf(path, sizeof(path), "%s", sock);
	else if (file) {
		if (config_load(file, &cfg, &err) < 0) {
			char msg[1024];

			cfg_err_format(&err, file, msg, sizeof(msg));
			fprintf(stderr, "secretsfs: %s\n", msg);
			return 1;
		}
		r = control_socket_path(cfg->control_socket, cfg->mountpoint,
		    path, sizeof(path));
		config_free(cfg);
		if (r < 0) {
			fprintf(stderr, "secretsfs: control socket path too long\n");
			return 1;
		}
	} else
		snprintf(path, sizeof(path), "%s", CONTROL_DEFAULT_SOCKET);
	strcat(line, "\n");
	if ((r = request(path, line, &ans, &len)) < 0) {
		fprintf(stderr, "secretsfs: %s: cannot reach the daemon on %s: "
		    "%s\n", verb, path, strerror(-r));
		return 1;
	}
	if (strncmp(ans, "ok\n", 3) == 0) {
		/* Degraded: up, but a backend has never answered. */
		r = strcmp(verb, "health") == 0 &&
		    strncmp(ans + 3, "degraded: ", 10) == 0 ? 2 : 0;
		fwrite(ans + 3, 1, len - 3, stdout);
		free(ans);
		return r;
	}
	if ((nl = strchr(ans, '\n')))
		*nl = '\0';
	fprintf(stderr, "secretsfs: %s: %s\n", verb,
	    strncmp(ans, "error ", 6) == 0 ? ans + 6 : "malformed answer");
	free(ans);
	return 1;
}
