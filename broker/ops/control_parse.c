/*
 * Runs in the FUSE process (the control socket's connection threads) and
 * in the CLI: the request parser, which trusts nothing, and where the
 * socket lives.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <secretsfs/control.h>

static bool
is_word(const char *buf, size_t len, const char *w)
{
	return len == strlen(w) && memcmp(buf, w, len) == 0;
}

int
control_parse(const char *buf, size_t len, struct control_cmd *out)
{
	const char *sp, *arg = NULL;
	size_t vlen, alen = 0, i;

	memset(out, 0, sizeof(*out));
	if (len > CONTROL_LINE_MAX - 1)
		return -E2BIG;
	for (i = 0; i < len; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			return -EINVAL;
	sp = memchr(buf, ' ', len);
	vlen = sp ? (size_t)(sp - buf) : len;
	if (sp) {
		arg = sp + 1;
		alen = len - vlen - 1;
		/* Exactly one separator, and something after it. */
		if (alen == 0 || arg[0] == ' ')
			return -EINVAL;
	}
	if (is_word(buf, vlen, "status")) {
		out->verb = CONTROL_STATUS;
		if (arg && !is_word(arg, alen, "json"))
			return -EINVAL;
		out->json = arg != NULL;
		return 0;
	}
	if (is_word(buf, vlen, "metrics") || is_word(buf, vlen, "health")) {
		out->verb = buf[0] == 'm' ? CONTROL_METRICS : CONTROL_HEALTH;
		return arg ? -EINVAL : 0;
	}
	if (is_word(buf, vlen, "flush"))
		out->verb = CONTROL_FLUSH;
	else if (is_word(buf, vlen, "refresh"))
		out->verb = CONTROL_REFRESH;
	else
		return -EINVAL;
	if (!arg)
		return out->verb == CONTROL_FLUSH ? 0 : -EINVAL;
	/* A secret name as the config allows it: a file name. */
	if (alen > CONTROL_NAME_MAX)
		return -ENAMETOOLONG;
	if (memchr(arg, '/', alen) || is_word(arg, alen, ".") ||
	    is_word(arg, alen, ".."))
		return -EINVAL;
	memcpy(out->name, arg, alen);
	out->name[alen] = '\0';
	out->has_name = true;
	return 0;
}

int
control_socket_path(const char *configured, const char *mountpoint,
    char *buf, size_t len)
{
	size_t n, max = sizeof(((struct sockaddr_un *)0)->sun_path);
	int w;

	if (configured)
		w = snprintf(buf, len, "%s", configured);
	else if (mountpoint && mountpoint[0] == '/' && mountpoint[1]) {
		n = strlen(mountpoint);
		while (n > 1 && mountpoint[n - 1] == '/')
			n--;
		w = snprintf(buf, len, "%.*s.sock", (int)n, mountpoint);
	} else
		w = snprintf(buf, len, "%s", CONTROL_DEFAULT_SOCKET);
	if (w < 0 || (size_t)w >= len || (size_t)w >= max)
		return -ENAMETOOLONG;
	return 0;
}
