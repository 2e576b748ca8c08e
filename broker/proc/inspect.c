/*
 * explain's second opinions. The rules say who may; the file's mode and
 * the caller's mount namespace also have a say, and an operator checking
 * a rollout must hear both, since either makes a read fail with the
 * rules' blessing.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include <secretsfs/config.h>
#include <secretsfs/identity.h>
#include <secretsfs/inspect.h>
#include <secretsfs/log.h>
#include <secretsfs/perm.h>
#include <secretsfs/policy.h>
#include <secretsfs/repair.h>

#define FUSE_SUPER_MAGIC	0x65735546

static void
user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);

	if (pw)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "%u", (unsigned)uid);
}

static void
group_name(gid_t gid, char *buf, size_t len)
{
	struct group *gr = getgrgid(gid);

	if (gr)
		snprintf(buf, len, "%s", gr->gr_name);
	else
		snprintf(buf, len, "%u", (unsigned)gid);
}

/* "mode 0440 root:1500, caller 10001:10001[ groups 20,30]" */
static void
mode_reason(const struct config_secret *s, const struct perm_cred *cr,
    char *buf, size_t len)
{
	char owner[64], group[64];
	size_t used;
	int n;

	user_name(s->uid, owner, sizeof(owner));
	group_name(s->gid, group, sizeof(group));
	n = snprintf(buf, len, "mode %04o %s:%s, caller %u:%u",
	    (unsigned)s->mode, owner, group, (unsigned)cr->uid,
	    (unsigned)cr->gid);
	if (n < 0 || (size_t)n >= len || cr->n_groups == 0)
		return;
	used = (size_t)n;
	for (size_t i = 0; i < cr->n_groups && used < len; i++) {
		n = snprintf(buf + used, len - used, "%s%u",
		    i == 0 ? " groups " : ",", (unsigned)cr->groups[i]);
		if (n < 0)
			return;
		used += (size_t)n;
	}
}

void
inspect_table(FILE *out, const struct config *cfg, const struct caller *c,
    pid_t pid)
{
	struct policy_decision d;
	struct perm_cred cr;
	char why[256];

	perm_cred_read(pid, c->uid, c->gid, &cr);
	fprintf(out, "\n%-32s %-6s %s\n", "SECRET", "ACCESS", "RULE");
	for (size_t i = 0; i < cfg->n_secrets; i++) {
		const struct config_secret *s = &cfg->secrets[i];

		policy_decide(cfg->policy, c, s->name, &d);
		if (d.allowed && perm_check(&cr, pid, s->mode, s->uid, s->gid,
		    PERM_READ, NULL) < 0) {
			mode_reason(s, &cr, why, sizeof(why));
			fprintf(out, "%-32s %-6s %s  allow by rule %s, but "
			    "EACCES: %s\n", s->name, "EACCES", d.rule_id,
			    d.rule_id, why);
			continue;
		}
		fprintf(out, "%-32s %-6s %s\n", s->name,
		    d.allowed ? "allow" : "deny", d.rule_id);
	}
}

int
inspect_mount_view(FILE *out, pid_t pid, const char *mountpoint)
{
	char path[64], line[3 * PATH_MAX], real[PATH_MAX];
	char live_at[PATH_MAX] = "", dead_at[PATH_MAX] = "";
	struct repair_mountinfo *mi;
	struct statfs sfs;
	struct stat live;
	FILE *f;

	if (stat(mountpoint, &live) != 0 || statfs(mountpoint, &sfs) != 0 ||
	    sfs.f_type != FUSE_SUPER_MAGIC) {
		log_warnx("%s is not mounted: no secretsfs serves it now, so "
		    "no process sees its secrets", mountpoint);
		return -ENOENT;
	}
	if (!realpath(mountpoint, real))
		snprintf(real, sizeof(real), "%s", mountpoint);
	snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)pid);
	if (!(f = fopen(path, "re"))) {
		log_warn("process %d: cannot read its mounts", (int)pid);
		return -ENOENT;
	}
	if (!(mi = malloc(sizeof(*mi)))) {
		fclose(f);
		return -ENOMEM;
	}
	while (fgets(line, sizeof(line), f)) {
		if (repair_parse_mountinfo(line, mi) < 0 ||
		    !repair_is_secretsfs(mi) ||
		    repair_owner(mi->source, real) == REPAIR_OWNER_OTHER)
			continue;
		if (makedev(mi->major, mi->minor) == live.st_dev) {
			if (!live_at[0])
				snprintf(live_at, sizeof(live_at), "%s",
				    mi->target);
		} else if (!dead_at[0])
			snprintf(dead_at, sizeof(dead_at), "%s", mi->target);
	}
	fclose(f);
	free(mi);
	if (live_at[0]) {
		fprintf(out, "  mount %s: a live bind of %s\n", live_at,
		    mountpoint);
		return 0;
	}
	if (dead_at[0])
		log_warnx("process %d: %s is a dead bind of an earlier "
		    "secretsfs mount, not of the one serving %s; `secretsfs "
		    "repair` gives it the live one", (int)pid, dead_at,
		    mountpoint);
	else
		log_warnx("process %d sees no bind of %s: its container "
		    "started before the broker mounted, or its bind lacks "
		    "rslave; bind the mount's directory with :ro,rslave and "
		    "start the broker first", (int)pid, mountpoint);
	return -ENOENT;
}
