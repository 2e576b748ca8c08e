/*
 * The kernel's permission check on a file of the mount (fs/namei.c:
 * acl_permission_check and generic_permission, without ACLs), done by
 * the daemon so that a refusal is decided where it can be recorded.
 * Kept to what a read-only filesystem of files and directories needs:
 * read, and search on a directory.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secretsfs/perm.h>

#define CAP_DAC_OVERRIDE_BIT	(1ULL << 1)
#define CAP_DAC_READ_SEARCH_BIT	(1ULL << 2)

static void
parse_groups(const char *s, struct perm_cred *cr)
{
	char *end;
	unsigned long v;

	while (cr->n_groups < PERM_GROUPS_MAX) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s < '0' || *s > '9')
			return;
		v = strtoul(s, &end, 10);
		if (end == s)
			return;
		cr->groups[cr->n_groups++] = (gid_t)v;
		s = end;
	}
}

int
perm_cred_read(pid_t pid, uid_t uid, gid_t gid, struct perm_cred *out)
{
	char path[64], line[4096];
	FILE *f;

	memset(out, 0, sizeof(*out));
	out->uid = uid;
	out->gid = gid;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (pid <= 0 || !(f = fopen(path, "re")))
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Groups:", 7) == 0)
			parse_groups(line + 7, out);
		else if (strncmp(line, "CapEff:", 7) == 0)
			out->cap_eff = strtoull(line + 7, NULL, 16);
	}
	fclose(f);
	out->have_proc = true;
	return 0;
}

static size_t
read_map(pid_t pid, const char *which, struct perm_extent *ext)
{
	char path[64], line[128];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, which);
	if (!(f = fopen(path, "re")))
		return 0;
	while (n < PERM_EXTENTS_MAX && fgets(line, sizeof(line), f))
		if (sscanf(line, "%" SCNu32 " %" SCNu32 " %" SCNu32,
		    &ext[n].inside, &ext[n].outside, &ext[n].count) == 3)
			n++;
	fclose(f);
	return n;
}

static bool
mapped(const struct perm_extent *ext, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (id >= ext[i].outside &&
		    (uint64_t)id - ext[i].outside < ext[i].count)
			return true;
	return false;
}

static bool
in_group(const struct perm_cred *cr, gid_t g)
{
	if (cr->gid == g)
		return true;
	for (size_t i = 0; i < cr->n_groups; i++)
		if (cr->groups[i] == g)
			return true;
	return false;
}

bool
perm_needs_cred(mode_t mode, uid_t owner, uid_t uid, int want)
{
	unsigned w = (unsigned)want & 7;

	if (uid == owner)
		return (((mode >> 6) & w) != w);
	/* Group and other agree and allow: no group can change it. */
	return !(((mode >> 3) & w) == w && (mode & w) == w);
}

int
perm_check(struct perm_cred *cr, pid_t pid, mode_t mode, uid_t owner,
    gid_t group, int want, bool *by_cap)
{
	unsigned w = (unsigned)want & 7, bits;
	uint64_t caps;

	if (by_cap)
		*by_cap = false;
	/* One class decides: the owner's bits, else the group's, else other. */
	if (cr->uid == owner)
		bits = (mode >> 6) & 7;
	else if (in_group(cr, group))
		bits = (mode >> 3) & 7;
	else
		bits = mode & 7;
	if ((bits & w) == w)
		return 0;
	/* Read and search: either capability (generic_permission). */
	caps = CAP_DAC_OVERRIDE_BIT | CAP_DAC_READ_SEARCH_BIT;
	if ((w & PERM_WRITE) || !(cr->cap_eff & caps))
		return -EACCES;
	if (pid > 0 && !cr->maps_read) {
		cr->n_uid_map = read_map(pid, "uid_map", cr->uid_map);
		cr->n_gid_map = read_map(pid, "gid_map", cr->gid_map);
		cr->maps_read = true;
	}
	if (pid > 0 && (!mapped(cr->uid_map, cr->n_uid_map, owner) ||
	    !mapped(cr->gid_map, cr->n_gid_map, group)))
		return -EACCES;
	if (by_cap)
		*by_cap = true;
	return 0;
}

int
perm_allows(pid_t pid, uid_t uid, gid_t gid, mode_t mode, uid_t owner,
    gid_t group, int want)
{
	struct perm_cred cr;

	if (!perm_needs_cred(mode, owner, uid, want))
		return 0;
	/* Other's bits may refuse yet the group's allow: read the groups. */
	perm_cred_read(pid, uid, gid, &cr);
	return perm_check(&cr, pid, mode, owner, group, want, NULL);
}
