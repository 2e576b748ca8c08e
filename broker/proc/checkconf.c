/*
 * check-config beyond the document. A config that parses may still fail
 * at `mount` (an audit key that is missing or readable by others, a
 * client key the fetcher's user cannot open, a mountpoint that holds
 * files) or start and never work (a rule matching on a container's name
 * with no engine to ask, an allow naming a secret that is not there).
 * Each is found here, with the words mount would use, so that a
 * pre-rollout check is as strict as the rollout.
 */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <secretsfs/audit.h>
#include <secretsfs/backend.h>
#include <secretsfs/cfg.h>
#include <secretsfs/checkconf.h>
#include <secretsfs/config.h>
#include <secretsfs/control.h>
#include <secretsfs/policy.h>
#include <secretsfs/sandbox.h>
#include <secretsfs/secmem.h>

#define FUSE_SUPER_MAGIC	0x65735546

struct out {
	FILE			*f;
	const char		*file;
	struct checkconf_result	*res;
};

static void __attribute__((format(printf, 4, 5)))
say(struct out *o, bool error, const char *path, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(o->f, "%s: %s%s: %s\n", o->file, error ? "" : "warning: ",
	    path, msg);
	if (error)
		o->res->errors++;
	else
		o->res->warnings++;
}

/* --- the mountpoint ---------------------------------------------------- */

int
checkconf_mountpoint_empty(const char *mp, const char *real, char *why,
    size_t len)
{
	struct dirent *de;
	DIR *dir;
	int r = 0;

	if (!(dir = opendir(real))) {
		snprintf(why, len, "mountpoint %s: %s", mp, strerror(errno));
		return -errno;
	}
	while ((de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		/* (A longer path is cut short, as every message here.) */
		if (snprintf(why, len, "mountpoint %s is not empty (it holds "
		    "\"%.64s\"): the mount would hide what is there; empty it "
		    "or set mount.path to an empty directory", mp,
		    de->d_name) < 0)
			why[0] = '\0';
		r = -ENOTEMPTY;
		break;
	}
	closedir(dir);
	return r;
}

/*
 * As the helper would find it: missing is fine (it makes it), a dead or
 * a live secretsfs mount is its own business (cleared, or "already
 * served"), anything else must be an empty directory.
 */
static void
check_mountpoint(struct out *o, const char *mp)
{
	char why[PATH_MAX + 256], real[PATH_MAX];
	struct statfs sfs;
	struct stat st;

	if (stat(mp, &st) != 0) {
		if (errno != ENOENT && errno != ENOTCONN)
			say(o, true, "mount.path", "mountpoint %s: %s", mp,
			    strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		say(o, true, "mount.path", "mountpoint %s is not a directory",
		    mp);
		return;
	}
	if (statfs(mp, &sfs) == 0 && sfs.f_type == FUSE_SUPER_MAGIC)
		return;
	if (!realpath(mp, real))
		snprintf(real, sizeof(real), "%s", mp);
	if (checkconf_mountpoint_empty(mp, real, why, sizeof(why)) < 0)
		say(o, true, "mount.path", "%s", why);
}

/* Mount serves without a control socket it cannot make: a warning. */
static void
check_control(struct out *o, const struct config *cfg)
{
	char sock[256], dir[256], *slash;
	struct stat st;

	if (control_socket_path(cfg->control_socket, cfg->mountpoint, sock,
	    sizeof(sock)) < 0) {
		say(o, false, "control.socket", "path too long; status, "
		    "metrics and health would not be available");
		return;
	}
	snprintf(dir, sizeof(dir), "%s", sock);
	if ((slash = strrchr(dir, '/')) && slash != dir)
		*slash = '\0';
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		say(o, false, "control.socket", "%s: its directory does not "
		    "exist; create it or fix control.socket; status, metrics "
		    "and health would not be available", sock);
}

/* --- the audit trail (the FUSE process's, as root) ---------------------- */

static void
check_audit(struct out *o, const struct audit_config *a)
{
	struct audit_key *key;
	char why[PATH_MAX + 256], dir[PATH_MAX], *slash;
	struct stat st;

	if (a->key_file) {
		if (audit_key_load(a->key_file, &key, why, sizeof(why)) < 0)
			say(o, true, "audit.key_file", "%s", why);
		else
			audit_key_free(key);
	}
	if (!a->file)
		return;
	snprintf(dir, sizeof(dir), "%s", a->file);
	if ((slash = strrchr(dir, '/')) && slash != dir)
		*slash = '\0';
	if (stat(dir, &st) != 0)
		say(o, true, "audit.file", "audit file %s: directory %s: %s",
		    a->file, dir, strerror(errno));
	else if (stat(a->file, &st) == 0 && !S_ISREG(st.st_mode))
		say(o, true, "audit.file", "audit file %s: not a regular file",
		    a->file);
}

/* --- the backends, as the fetcher's user ------------------------------- */

/*
 * Open each backend as the fetcher would: in a process that has become
 * privsep.user with no supplementary groups and no capabilities. What it
 * reads at open (client keys and certificates, credential files, a file
 * backend's directory) it must be able to read. Lines "PATH\tMESSAGE"
 * come back through a pipe.
 */
static void __attribute__((noreturn))
backends_child(const struct config *cfg, uid_t uid, gid_t gid, bool drop,
    int fd)
{
	char why[BACKEND_ERR_MAX + PATH_MAX], line[sizeof(why) + 256];
	struct backend *b;
	int r, n;

	if (drop && (r = sandbox_drop_user(uid, gid, 0)) < 0) {
		n = snprintf(line, sizeof(line), "privsep.user\tcannot become "
		    "uid %u: %s\n", (unsigned)uid, strerror(-r));
		if (write(fd, line, n) < 0)
			_exit(1);
		_exit(1);
	}
	for (size_t i = 0; i < cfg->n_backends; i++) {
		if (backend_open(&cfg->backends[i], &b, why, sizeof(why)) < 0) {
			n = snprintf(line, sizeof(line), "%s\t%s\n",
			    cfg->backends[i].path, why);
			if (n > 0 && (size_t)n >= sizeof(line))
				n = sizeof(line) - 1;
			if (n > 0 && write(fd, line, n) < 0)
				_exit(1);
			continue;
		}
		backend_close(b);
	}
	_exit(0);
}

static void
check_backends(struct out *o, const struct config *cfg)
{
	char why[512], buf[8192], *line, *tab, *save;
	bool root = geteuid() == 0;
	size_t len = 0;
	uid_t uid = 0;
	gid_t gid = 0;
	int p[2], status;
	ssize_t n;
	pid_t pid;

	if (sandbox_lookup_user(cfg->fetcher_user, &uid, &gid, why,
	    sizeof(why)) < 0) {
		say(o, true, "privsep.user", "%s", why);
		return;
	}
	if (!root)
		say(o, false, "privsep.user", "not run as root: the fetcher's "
		    "files are checked as uid %u, not as %s (uid %u)",
		    (unsigned)geteuid(), cfg->fetcher_user, (unsigned)uid);
	if (pipe(p) != 0) {
		say(o, true, "backends", "pipe: %s", strerror(errno));
		return;
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		say(o, true, "backends", "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		close(p[0]);
		backends_child(cfg, uid, gid, root, p[1]);
	}
	close(p[1]);
	while (len < sizeof(buf) - 1 &&
	    (n = read(p[0], buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		len += n;
	}
	buf[len] = '\0';
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	for (line = strtok_r(buf, "\n", &save); line;
	    line = strtok_r(NULL, "\n", &save)) {
		if (!(tab = strchr(line, '\t')))
			continue;
		*tab = '\0';
		say(o, true, line, "%s (as privsep.user %s, uid %u)", tab + 1,
		    cfg->fetcher_user, (unsigned)uid);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		say(o, true, "backends", "the check of the backends as %s "
		    "did not finish", cfg->fetcher_user);
}

/* --- rules that can never match ---------------------------------------- */

static bool
names_a_secret(const struct config *cfg, const char *glob)
{
	for (size_t i = 0; i < cfg->n_secrets; i++)
		if (fnmatch(glob, cfg->secrets[i].name, FNM_PATHNAME) == 0)
			return true;
	return false;
}

static void
check_rules(struct out *o, const struct config *cfg)
{
	const char *const *allow, *near, **names;
	char path[CFG_PATH_MAX];
	size_t n;

	if (!(names = calloc(cfg->n_secrets + 1, sizeof(*names))))
		return;
	for (size_t i = 0; i < cfg->n_secrets; i++)
		names[i] = cfg->secrets[i].name;
	for (size_t i = 0; i < policy_rule_count(cfg->policy); i++) {
		const char *id = policy_rule_id(cfg->policy, i);

		cfg_path_index(path, sizeof(path), "rules", i);
		if (policy_rule_needs_engine(cfg->policy, i) &&
		    !cfg->runtime_socket)
			say(o, false, path, "rule \"%s\" matches on "
			    "container_name, image or label, which only the "
			    "runtime's Engine API knows: without "
			    "runtime.socket it can never match", id);
		allow = policy_rule_names(cfg->policy, i, false, &n);
		for (size_t j = 0; j < n; j++) {
			if (names_a_secret(cfg, allow[j]))
				continue;
			near = cfg_nearest(allow[j], names, cfg->n_secrets);
			if (near)
				say(o, false, path, "rule \"%s\": allow \"%s\" "
				    "names no configured secret (did you mean "
				    "\"%s\"?)", id, allow[j], near);
			else
				say(o, false, path, "rule \"%s\": allow \"%s\" "
				    "names no configured secret", id, allow[j]);
		}
	}
	free(names);
}

/* A runtime socket that is not there: name rules would never match. */
static void
check_runtime(struct out *o, const struct config *cfg)
{
	struct stat st;

	if (!cfg->runtime_socket)
		return;
	if (stat(cfg->runtime_socket, &st) != 0)
		say(o, false, "runtime.socket", "%s: %s; container name, image "
		    "and labels would be unknown", cfg->runtime_socket,
		    strerror(errno));
	else if (!S_ISSOCK(st.st_mode))
		say(o, false, "runtime.socket", "%s is not a socket",
		    cfg->runtime_socket);
}

void
checkconf_run(const struct config *cfg, FILE *f, struct checkconf_result *res)
{
	struct out o = { f, cfg->file, res };
	char why[256];

	res->errors = res->warnings = 0;
	/* The audit key, as in the daemon, is read into locked memory. */
	if (secmem_init(1u << 20, why, sizeof(why)) < 0)
		say(&o, true, "memory", "%s", why);
	check_mountpoint(&o, cfg->mountpoint);
	check_control(&o, cfg);
	if (cfg->audit)
		check_audit(&o, cfg->audit);
	check_backends(&o, cfg);
	check_rules(&o, cfg);
	check_runtime(&o, cfg);
}
