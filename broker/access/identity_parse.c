/*
 * identity: the pure half, on text the kernel wrote: which runtime and
 * container a cgroup path names, and the fields of /proc/<pid>/stat. No
 * I/O here, so the fuzzers and unit tests drive it directly.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secretsfs/identity.h>

#include "identity_int.h"

static const char *const runtime_names[IDENTITY_RUNTIME_COUNT] = {
	[IDENTITY_RUNTIME_HOST] = "host",
	[IDENTITY_RUNTIME_DOCKER] = "docker",
	[IDENTITY_RUNTIME_PODMAN] = "podman",
	[IDENTITY_RUNTIME_CONTAINERD] = "containerd",
	[IDENTITY_RUNTIME_CRIO] = "cri-o",
	[IDENTITY_RUNTIME_KUBEPODS] = "kubepods",
	[IDENTITY_RUNTIME_SYSTEMD] = "systemd",
	[IDENTITY_RUNTIME_UNKNOWN] = "unknown",
};

const char *
identity_runtime_name(enum identity_runtime rt)
{
	if ((unsigned)rt >= IDENTITY_RUNTIME_COUNT)
		return "unknown";
	return runtime_names[rt];
}

int
identity_runtime_from_name(const char *name, enum identity_runtime *rt)
{
	size_t i;

	if (name == NULL)
		return -EINVAL;
	for (i = 0; i < IDENTITY_RUNTIME_COUNT; i++) {
		if (strcmp(name, runtime_names[i]) == 0) {
			*rt = (enum identity_runtime)i;
			return 0;
		}
	}
	return -EINVAL;
}

bool
identity_is_host(const struct caller *c)
{
	return c->runtime == IDENTITY_RUNTIME_HOST ||
	    c->runtime == IDENTITY_RUNTIME_SYSTEMD;
}

/* ---- cgroup path classification ---------------------------------------- */

enum cls_rank {
	RANK_HOST = 0,
	RANK_SERVICE,
	RANK_POD,
	RANK_CONTAINER,
};

struct cls {
	enum cls_rank		 rank;
	enum identity_runtime	 rt;
	char			 id[IDENTITY_ID_MAX];
	char			 pod[64];
	char			 unit[IDENTITY_NAME_MAX];
	size_t			 anchor;	/* end of the container */
	size_t			 user_at;	/* 1 + start of user@ */
};

/* A component of a path: not NUL-terminated. */
struct comp {
	const char	*p;
	size_t		 n;
};

static bool
comp_eq(struct comp c, const char *s)
{
	return strlen(s) == c.n && memcmp(c.p, s, c.n) == 0;
}

static bool
comp_prefix(struct comp c, const char *s)
{
	size_t n = strlen(s);

	return c.n >= n && memcmp(c.p, s, n) == 0;
}

static bool
comp_suffix(struct comp c, const char *s)
{
	size_t n = strlen(s);

	return c.n >= n && memcmp(c.p + c.n - n, s, n) == 0;
}

static bool
comp_contains(struct comp c, const char *s)
{
	size_t n = strlen(s), i;

	for (i = 0; i + n <= c.n; i++)
		if (memcmp(c.p + i, s, n) == 0)
			return true;
	return false;
}

/* Exactly 64 lowercase hex digits: what every runtime uses for an id. */
static bool
is_hex64(const char *p, size_t n)
{
	size_t i;

	if (n != IDENTITY_ID_MAX - 1)
		return false;
	for (i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return true;
}

/* "<prefix><64hex><suffix>" with suffix possibly optional. */
static bool
match_id(struct comp c, const char *prefix, const char *suffix,
    bool suffix_optional, char id[IDENTITY_ID_MAX])
{
	size_t pn = strlen(prefix), sn = strlen(suffix);
	const char *p;

	if (!comp_prefix(c, prefix))
		return false;
	p = c.p + pn;
	if (c.n == pn + 64 && suffix_optional)
		;
	else if (c.n == pn + 64 + sn && comp_suffix(c, suffix))
		;
	else
		return false;
	if (!is_hex64(p, 64))
		return false;
	memcpy(id, p, 64);
	id[64] = '\0';
	return true;
}

/*
 * A pod uid as the kubelet writes it: a UUID, or a 32-hex hash for a
 * static pod; systemd slices spell '-' as '_'.
 */
static bool
pod_uid_set(const char *p, size_t n, char out[64])
{
	size_t i;

	if (n == 0 || n >= 64)
		return false;
	for (i = 0; i < n; i++) {
		char ch = p[i];

		if (ch == '_' || ch == '-')
			out[i] = '-';
		else if (isxdigit((unsigned char)ch))
			out[i] = (char)tolower((unsigned char)ch);
		else
			return false;
	}
	out[n] = '\0';
	return true;
}

/* "kubepods-burstable-pod<uid>.slice", "kubelet-kubepods-pod<uid>.slice". */
static bool
match_pod_slice(struct comp c, char out[64])
{
	const char *p, *end;

	if (!comp_suffix(c, ".slice") || !comp_contains(c, "kubepods"))
		return false;
	end = c.p + c.n - strlen(".slice");
	/* The uid is hex and '_': its own text cannot hold "-pod". */
	for (p = end - 4; p >= c.p; p--)
		if (memcmp(p, "-pod", 4) == 0)
			break;
	if (p < c.p)
		return false;
	p += 4;
	return pod_uid_set(p, (size_t)(end - p), out);
}

/*
 * "kubepods-besteffort-pod<uid>.slice:cri-containerd:<64hex>": containerd
 * driving the systemd cgroup driver on a cgroupfs hierarchy.
 */
static bool
match_colon_form(struct comp c, struct cls *out)
{
	static const struct {
		const char		*tag;
		enum identity_runtime	 rt;
	} tags[] = {
		{ ":cri-containerd:", IDENTITY_RUNTIME_CONTAINERD },
		{ ":crio:", IDENTITY_RUNTIME_CRIO },
		{ ":docker:", IDENTITY_RUNTIME_DOCKER },
	};
	size_t i, tn;
	struct comp slice;
	char pod[64];

	if (c.n < 64)
		return false;
	for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		tn = strlen(tags[i].tag);
		if (c.n < tn + 64 + 1 || !is_hex64(c.p + c.n - 64, 64) ||
		    memcmp(c.p + c.n - 64 - tn, tags[i].tag, tn) != 0)
			continue;
		slice.p = c.p;
		slice.n = c.n - 64 - tn;
		if (out->pod[0] == '\0' && match_pod_slice(slice, pod))
			memcpy(out->pod, pod, sizeof(pod));
		memcpy(out->id, c.p + c.n - 64, 64);
		out->id[64] = '\0';
		out->rt = tags[i].rt;
		return true;
	}
	return false;
}

/*
 * Classify one cgroup path. The walk goes from the root down and stops at
 * the first container component: a container may own the subtree below
 * it, so anything deeper is its own naming and proves nothing.
 */
static void
classify_path(const char *path, size_t len, struct cls *out)
{
	const char *p = path, *end = path + len, *slash;
	struct comp c, prev = { "", 0 };
	bool in_kubepods = false;

	memset(out, 0, sizeof(*out));
	out->rt = IDENTITY_RUNTIME_HOST;

	while (p < end) {
		slash = memchr(p, '/', (size_t)(end - p));
		c.p = p;
		c.n = slash ? (size_t)(slash - p) : (size_t)(end - p);
		p = slash ? slash + 1 : end;
		if (c.n == 0)
			continue;

		/*
		 * A systemd user manager delegates its subtree to an
		 * unprivileged user, who can name cgroups anything (including
		 * another container's id): nothing below it is trusted.
		 */
		if (comp_prefix(c, "user@") && comp_suffix(c, ".service")) {
			if (out->unit[0] == '\0' && out->pod[0] == '\0' &&
			    c.n < sizeof(out->unit)) {
				memcpy(out->unit, c.p, c.n);
				out->unit[c.n] = '\0';
			}
			out->user_at = (size_t)(c.p - path) + 1;
			break;
		}
		/* Where a container component ends, should one match here. */
		out->anchor = (size_t)(c.p - path) + c.n;

		if (match_id(c, "docker-", ".scope", false, out->id)) {
			out->rt = IDENTITY_RUNTIME_DOCKER;
			break;
		}
		if (comp_eq(prev, "docker") && is_hex64(c.p, c.n)) {
			memcpy(out->id, c.p, 64);
			out->id[64] = '\0';
			out->rt = IDENTITY_RUNTIME_DOCKER;
			break;
		}
		/* libpod-conmon-<id> fails the hex test: conmon is not the container. */
		if (match_id(c, "libpod-", ".scope", true, out->id) ||
		    match_id(c, "libpod-payload-", "", true, out->id)) {
			out->rt = IDENTITY_RUNTIME_PODMAN;
			break;
		}
		if (match_id(c, "cri-containerd-", ".scope", false, out->id)) {
			out->rt = IDENTITY_RUNTIME_CONTAINERD;
			break;
		}
		if (match_id(c, "crio-", ".scope", false, out->id)) {
			out->rt = IDENTITY_RUNTIME_CRIO;
			break;
		}
		if (match_colon_form(c, out))
			break;
		if (out->pod[0] != '\0' && is_hex64(c.p, c.n)) {
			memcpy(out->id, c.p, 64);
			out->id[64] = '\0';
			out->rt = IDENTITY_RUNTIME_KUBEPODS;
			break;
		}

		if (comp_contains(c, "kubepods")) {
			in_kubepods = true;
			if (out->pod[0] == '\0')
				match_pod_slice(c, out->pod);
		} else if (in_kubepods && out->pod[0] == '\0' &&
		    comp_prefix(c, "pod")) {
			pod_uid_set(c.p + 3, c.n - 3, out->pod);
		} else if (out->unit[0] == '\0' && out->pod[0] == '\0' &&
		    c.n > strlen(".service") && comp_suffix(c, ".service") &&
		    c.n < sizeof(out->unit)) {
			memcpy(out->unit, c.p, c.n);
			out->unit[c.n] = '\0';
		}
		prev = c;
	}

	if (out->id[0] == '\0' && out->pod[0] == '\0')
		out->anchor = 0;
	if (out->id[0] != '\0') {
		out->rank = RANK_CONTAINER;
		out->unit[0] = '\0';
	} else if (out->pod[0] != '\0') {
		out->rank = RANK_POD;
		out->rt = IDENTITY_RUNTIME_KUBEPODS;
		out->unit[0] = '\0';
	} else if (out->unit[0] != '\0') {
		out->rank = RANK_SERVICE;
		out->rt = IDENTITY_RUNTIME_SYSTEMD;
	} else {
		out->rank = RANK_HOST;
		out->rt = IDENTITY_RUNTIME_HOST;
	}
}

/* Does a comma-separated controller list hold this name? */
static bool
has_controller(const char *list, size_t n, const char *name)
{
	size_t len = strlen(name);
	const char *p = list, *end = list + n, *comma;

	while (p < end) {
		comma = memchr(p, ',', (size_t)(end - p));
		if (!comma)
			comma = end;
		if ((size_t)(comma - p) == len && memcmp(p, name, len) == 0)
			return true;
		p = comma + 1;
	}
	return false;
}

int
identity_parse_cgroup(const char *text, struct caller *c)
{
	const char *line, *nl, *c1, *c2, *path;
	const char *best_path = NULL, *best_hier = NULL;
	size_t best_len = 0, best_hlen = 0, plen;
	int best_prio = -1, prio;
	struct cls cur, best;
	bool digits;

	memset(&best, 0, sizeof(best));
	for (line = text; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		c1 = memchr(line, ':', nl ? (size_t)(nl - line) : strlen(line));
		if (!c1 || c1 == line)
			continue;
		digits = true;
		for (path = line; path < c1; path++)
			if (*path < '0' || *path > '9')
				digits = false;
		if (!digits)
			continue;
		c2 = memchr(c1 + 1, ':', nl ? (size_t)(nl - c1 - 1) :
		    strlen(c1 + 1));
		if (!c2)
			continue;
		path = c2 + 1;
		plen = nl ? (size_t)(nl - path) : strlen(path);
		if (plen == 0 || path[0] != '/')
			continue;

		if (c1 - line == 1 && line[0] == '0' && c2 == c1 + 1)
			prio = 3;	/* the v2 line */
		else if (has_controller(c1 + 1, (size_t)(c2 - c1 - 1),
		    "name=systemd"))
			prio = 2;
		else
			prio = 1;

		classify_path(path, plen, &cur);
		if (best_path == NULL || cur.rank > best.rank ||
		    (cur.rank == best.rank && prio > best_prio)) {
			best = cur;
			best_prio = prio;
			best_path = path;
			best_len = plen;
			best_hier = c1 + 1;
			best_hlen = (size_t)(c2 - c1 - 1);
		}
	}
	if (best_path == NULL)
		return -EINVAL;

	/* Never a cut-off path: a glob could match what the whole does not. */
	if (best_len < sizeof(c->cgroup)) {
		memcpy(c->cgroup, best_path, best_len);
		c->cgroup[best_len] = '\0';
	} else
		c->cgroup[0] = '\0';
	c->runtime = best.rt;
	memcpy(c->container_id, best.id, sizeof(c->container_id));
	memcpy(c->pod_uid, best.pod, sizeof(c->pod_uid));
	memcpy(c->unit, best.unit, sizeof(c->unit));
	/* A cut-off path or hierarchy can only be refused by the checks. */
	if (best_hlen < sizeof(c->cgroup_hier)) {
		memcpy(c->cgroup_hier, best_hier, best_hlen);
		c->cgroup_hier[best_hlen] = '\0';
	} else
		c->cgroup_hier[0] = '\0';
	c->cgroup_anchor = c->cgroup[0] ? (uint16_t)best.anchor : 0;
	c->cgroup_user_at = c->cgroup[0] ? (uint16_t)best.user_at : 0;
	return 0;
}

int
identity_parse_delegated(const char *path, struct caller *c)
{
	struct cls sub;
	size_t off, skip;

	if (c->cgroup_user_at == 0)
		return -ENOENT;
	off = (size_t)c->cgroup_user_at - 1;
	/* Past the user@ component itself. */
	skip = strcspn(path + off, "/");
	off += skip;
	classify_path(path + off, strlen(path + off), &sub);
	if (sub.rank < RANK_POD)
		return -ENOENT;
	c->runtime = sub.rt;
	memcpy(c->container_id, sub.id, sizeof(c->container_id));
	memcpy(c->pod_uid, sub.pod, sizeof(c->pod_uid));
	c->unit[0] = '\0';
	c->cgroup_anchor = (uint16_t)(off + sub.anchor);
	return 0;
}

int
identity_parse_nspid(const char *status, pid_t *last)
{
	const char *p;
	long v;
	char *end;
	int n = 0;

	for (p = status; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, "NSpid:", 6) == 0)
			break;
	if (p == NULL)
		return 0;
	p += 6;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p < '0' || *p > '9')
			break;
		errno = 0;
		v = strtol(p, &end, 10);
		if (errno || v <= 0)
			return 0;
		if (last)
			*last = (pid_t)v;
		n++;
		p = end;
	}
	return (*p == '\n' || *p == '\0') ? n : 0;
}

long
identity_parse_first_mount(const char *mountinfo)
{
	long v;
	char *end;

	if (*mountinfo < '0' || *mountinfo > '9')
		return -1;
	errno = 0;
	v = strtol(mountinfo, &end, 10);
	if (errno || *end != ' ')
		return -1;
	return v;
}

bool
identity_host_cgroup(const char *path)
{
	static const char *const roots[] = {
		"init.scope", "system.slice", "user.slice",
	};
	size_t i, n;

	if (path[0] != '/')
		return false;
	if (path[1] == '\0')
		return true;
	for (i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		n = strlen(roots[i]);
		if (strncmp(path + 1, roots[i], n) == 0 &&
		    (path[1 + n] == '\0' || path[1 + n] == '/'))
			return true;
	}
	return false;
}

int
identity_parse_stat(const char *text, uint64_t *start_time, char comm[17])
{
	const char *open, *close, *p;
	unsigned long long v;
	size_t n;
	char *end;
	int field;

	open = strchr(text, '(');
	close = strrchr(text, ')');
	if (!open || !close || close < open)
		return -EINVAL;
	n = (size_t)(close - open - 1);
	if (n > 16)
		n = 16;
	memcpy(comm, open + 1, n);
	comm[n] = '\0';

	/* After ')' come field 3 (state) onwards, one space apart. */
	p = close + 1;
	for (field = 3; field < 22; field++) {
		while (*p == ' ')
			p++;
		while (*p && *p != ' ')
			p++;
		if (*p == '\0')
			return -EINVAL;
	}
	while (*p == ' ')
		p++;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno || (*end != ' ' && *end != '\n' && *end != '\0'))
		return -EINVAL;
	*start_time = v;
	return 0;
}
