/*
 * libFuzzer harness for the control socket's request parser. Beyond not
 * crashing: a request that parses names only what the grammar allows
 * (a known verb; a name without '/', control bytes, "." or "..") and
 * parses again the same way from its canonical form.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secretsfs/control.h>

static const char *const verbs[] = {
	[CONTROL_STATUS] = "status", [CONTROL_METRICS] = "metrics",
	[CONTROL_HEALTH] = "health", [CONTROL_FLUSH] = "flush",
	[CONTROL_REFRESH] = "refresh",
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct control_cmd a, b;
	char line[CONTROL_LINE_MAX + 64];
	int n;

	if (control_parse((const char *)data, size, &a) != 0)
		return 0;
	if ((unsigned)a.verb >= sizeof(verbs) / sizeof(verbs[0]))
		abort();
	if (a.has_name) {
		size_t len = strnlen(a.name, sizeof(a.name));

		if (len == 0 || len > CONTROL_NAME_MAX || strchr(a.name, '/') ||
		    strcmp(a.name, ".") == 0 || strcmp(a.name, "..") == 0)
			abort();
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)a.name[i] < 0x20 || a.name[i] == 0x7f)
				abort();
		if (a.verb != CONTROL_FLUSH && a.verb != CONTROL_REFRESH)
			abort();
	} else if (a.verb == CONTROL_REFRESH)
		abort();	/* refresh always names a secret */
	/* The canonical request of what was parsed means the same. */
	n = snprintf(line, sizeof(line), "%s%s%s%s", verbs[a.verb],
	    a.json ? " json" : "", a.has_name ? " " : "",
	    a.has_name ? a.name : "");
	if (n < 0 || (size_t)n >= sizeof(line))
		abort();
	if (control_parse(line, (size_t)n, &b) != 0 || b.verb != a.verb ||
	    b.json != a.json || b.has_name != a.has_name ||
	    (a.has_name && strcmp(a.name, b.name) != 0))
		abort();
	return 0;
}
