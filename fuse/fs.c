/*
 * The filesystem: a flat, read-only directory of secrets.
 *
 * Inode 1 is the root; secret i of the config is inode i + 2. Entry and
 * attribute timeouts are zero: the dentry cache is shared by every
 * container bound to the mount, so a name one caller may see must not be
 * answered from the kernel's cache to another. Files are opened with
 * direct_io, so the page cache never holds a secret and every open()
 * reaches us.
 *
 * As in libfuse's passthrough_ll.c, helpers return an errno and each
 * request handler replies exactly once.
 */
#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include <secretsfs/fs.h>
#include <secretsfs/log.h>
#include <secretsfs/secmem.h>

#define ROOT_INO	FUSE_ROOT_ID
#define FIRST_INO	2
#define XATTR_VERSION	"user.secretsfs.version"

struct fs {
	struct broker	*broker;
	time_t		 started;
};

static struct fs *
fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* The secret index of ino, or -1 for the root and unknown inodes. */
static ssize_t
secret_of(struct fs *fs, fuse_ino_t ino)
{
	if (ino < FIRST_INO ||
	    ino - FIRST_INO >= broker_config(fs->broker)->n_secrets)
		return -1;
	return (ssize_t)(ino - FIRST_INO);
}

static void
root_attr(struct fs *fs, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ROOT_INO;
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec =
	    fs->started;
}

static void
secret_attr(struct fs *fs, size_t idx, const struct cache_snap *snap,
    struct stat *st)
{
	const struct config_secret *s = &broker_config(fs->broker)->secrets[idx];

	memset(st, 0, sizeof(*st));
	st->st_ino = idx + FIRST_INO;
	st->st_mode = S_IFREG | s->mode;
	st->st_nlink = 1;
	st->st_uid = s->uid;
	st->st_gid = s->gid;
	st->st_size = (off_t)snap->len;
	st->st_blksize = 4096;
	st->st_blocks = (snap->len + 511) / 512;
	st->st_mtim = st->st_ctim = snap->changed;
	st->st_atim = snap->fetched;
}

/*
 * The access decision for a request on secret idx. A caller we cannot
 * identify (its process is gone) sees nothing. Returns true when allowed.
 */
static bool
decide(struct fs *fs, fuse_req_t req, size_t idx, struct caller *c,
    struct policy_decision *d)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	if (broker_identify(fs->broker, ctx->pid, ctx->uid, ctx->gid, c) < 0) {
		memset(c, 0, sizeof(*c));
		c->pid = ctx->pid;
		c->uid = ctx->uid;
		c->gid = ctx->gid;
		d->allowed = false;
		d->rule_id = POLICY_DEFAULT_DENY_ID;
		return false;
	}
	return broker_allowed(fs->broker, c, idx, d);
}

/* Attributes of a secret; fetching it when it is not cached. */
static int
stat_secret(struct fs *fs, size_t idx, struct stat *st)
{
	struct cache_snap *snap;
	int r;

	if ((r = broker_get(fs->broker, idx, &snap)) < 0)
		return -r;
	secret_attr(fs, idx, snap, st);
	cache_put(snap);
	return 0;
}

static void
op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct fuse_entry_param e;
	struct policy_decision d;
	struct caller c;
	ssize_t idx;
	int err;

	memset(&e, 0, sizeof(e));
	if (parent != ROOT_INO || (idx = broker_lookup(fs->broker, name)) < 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!decide(fs, req, (size_t)idx, &c, &d)) {
		/* Invisible: the same answer as a name that does not exist. */
		err = broker_audit_lookup_denied(fs->broker, &c, (size_t)idx,
		    d.rule_id) < 0 ? EIO : broker_deny_errno(fs->broker);
		fuse_reply_err(req, err);
		return;
	}
	if ((err = stat_secret(fs, (size_t)idx, &e.attr)) != 0) {
		fuse_reply_err(req, err);
		return;
	}
	e.ino = e.attr.st_ino;
	e.generation = 1;
	fuse_reply_entry(req, &e);
}

static void
op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct policy_decision d;
	struct cache_snap *snap;
	struct caller c;
	struct stat st;
	ssize_t idx;
	int err;

	if (ino == ROOT_INO) {
		root_attr(fs, &st);
		fuse_reply_attr(req, &st, 0);
		return;
	}
	if ((idx = secret_of(fs, ino)) < 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!decide(fs, req, (size_t)idx, &c, &d)) {
		fuse_reply_err(req, broker_deny_errno(fs->broker));
		return;
	}
	/* An open file reports the version it reads, not a newer one. */
	if (fi && fi->fh) {
		snap = (struct cache_snap *)(uintptr_t)fi->fh;
		secret_attr(fs, (size_t)idx, snap, &st);
	} else if ((err = stat_secret(fs, (size_t)idx, &st)) != 0) {
		fuse_reply_err(req, err);
		return;
	}
	fuse_reply_attr(req, &st, 0);
}

static void
op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != ROOT_INO) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	fuse_reply_open(req, fi);
}

static void
op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	const struct config *cfg = broker_config(fs->broker);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct policy_decision d;
	size_t used = 0, n;
	struct caller c;
	bool known;
	struct stat st;
	char *buf;
	off_t i;

	(void)fi;
	if (ino != ROOT_INO) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	/* One identity for the whole listing; denied names are left out. */
	known = broker_identify(fs->broker, ctx->pid, ctx->uid, ctx->gid,
	    &c) == 0;
	if (!(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Offsets: 0 ".", 1 "..", 2 + i secret i. Entry i's next offset is i + 1. */
	memset(&st, 0, sizeof(st));
	for (i = off; i < (off_t)cfg->n_secrets + 2; i++) {
		const char *name;

		if (i < 2) {
			name = i == 0 ? "." : "..";
			st.st_ino = ROOT_INO;
			st.st_mode = S_IFDIR;
		} else {
			if (!known || !broker_allowed(fs->broker, &c,
			    (size_t)i - 2, &d))
				continue;
			name = cfg->secrets[i - 2].name;
			st.st_ino = (fuse_ino_t)i - 2 + FIRST_INO;
			st.st_mode = S_IFREG;
		}
		n = fuse_add_direntry(req, buf + used, size - used, name, &st,
		    i + 1);
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void
op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct policy_decision d;
	struct cache_snap *snap;
	struct caller c;
	ssize_t idx;
	int r;

	if ((idx = secret_of(fs, ino)) < 0) {
		fuse_reply_err(req, ino == ROOT_INO ? EISDIR : ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY ||
	    (fi->flags & (O_TRUNC | O_APPEND | O_CREAT))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	/*
	 * Every open is decided and recorded before the reply: the record is
	 * written first, so a reader never holds a value the trail lacks.
	 */
	if (!decide(fs, req, (size_t)idx, &c, &d)) {
		r = broker_deny_errno(fs->broker);
		if (broker_audit_access(fs->broker, &c, (size_t)idx, d.rule_id,
		    AUDIT_OUTCOME_DENY, r, NULL) < 0)
			r = EIO;
		fuse_reply_err(req, r);
		return;
	}
	if ((r = broker_get(fs->broker, (size_t)idx, &snap)) < 0) {
		r = broker_audit_access(fs->broker, &c, (size_t)idx, d.rule_id,
		    AUDIT_OUTCOME_ERROR, -r, NULL) < 0 ? -EIO : r;
		fuse_reply_err(req, -r);
		return;
	}
	if (broker_audit_access(fs->broker, &c, (size_t)idx, d.rule_id,
	    AUDIT_OUTCOME_ALLOW, 0, snap->version) < 0) {
		cache_put(snap);
		fuse_reply_err(req, EIO);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)snap;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi) != 0)
		/* The opener is gone (interrupted): no release will come. */
		cache_put(snap);
}

/*
 * Reply with secret bytes. memfd_secret pages cannot be read by the
 * kernel, so they travel through this thread's locked bounce buffer,
 * wiped as soon as the reply is written.
 */
static void
reply_secret(fuse_req_t req, const uint8_t *data, size_t size)
{
	void *bounce;

	if (secmem_kernel_readable()) {
		fuse_reply_buf(req, (const char *)data, size);
		return;
	}
	if (!(bounce = secmem_bounce(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memcpy(bounce, data, size);
	fuse_reply_buf(req, bounce, size);
	explicit_bzero(bounce, size);
}

static void
op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	const struct cache_snap *snap = (void *)(uintptr_t)fi->fh;

	(void)ino;
	if (off < 0 || (uint64_t)off >= snap->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > snap->len - (size_t)off)
		size = snap->len - (size_t)off;
	reply_secret(req, snap->data + off, size);
}

static void
op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	cache_put((struct cache_snap *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void
op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = sv.f_frsize = 4096;
	sv.f_files = broker_config(fs->broker)->n_secrets + 1;
	sv.f_namemax = NAME_MAX;
	sv.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC;
	fuse_reply_statfs(req, &sv);
}

static void
op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = fs_of(req);
	struct policy_decision d;
	struct cache_snap *snap;
	struct caller c;
	ssize_t idx;
	size_t len;
	int r;

	if ((idx = secret_of(fs, ino)) < 0 || strcmp(name, XATTR_VERSION) != 0) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (!decide(fs, req, (size_t)idx, &c, &d)) {
		fuse_reply_err(req, broker_deny_errno(fs->broker));
		return;
	}
	if ((r = broker_get(fs->broker, (size_t)idx, &snap)) < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	len = strlen(snap->version);
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, snap->version, len);
	cache_put(snap);
}

static void
op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = fs_of(req);
	const size_t len = sizeof(XATTR_VERSION);	/* with its NUL */

	if (secret_of(fs, ino) < 0) {
		if (size == 0)
			fuse_reply_xattr(req, 0);
		else
			fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, XATTR_VERSION, len);
}

/*
 * Everything that would change the tree. The mount is read-only, so the
 * kernel answers most of these itself; these handlers keep the answer the
 * same if one ever gets through.
 */
static void
erofs(fuse_req_t req)
{
	fuse_reply_err(req, EROFS);
}

static void
op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
    off_t off, struct fuse_file_info *fi)
{
	(void)ino; (void)buf; (void)size; (void)off; (void)fi;
	erofs(req);
}

static void
op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    struct fuse_file_info *fi)
{
	(void)parent; (void)name; (void)mode; (void)fi;
	erofs(req);
}

static void
op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    dev_t rdev)
{
	(void)parent; (void)name; (void)mode; (void)rdev;
	erofs(req);
}

static void
op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)parent; (void)name; (void)mode;
	erofs(req);
}

static void
op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent; (void)name;
	erofs(req);
}

static void
op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
    fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	(void)parent; (void)name; (void)newparent; (void)newname; (void)flags;
	erofs(req);
}

static void
op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
    const char *newname)
{
	(void)ino; (void)newparent; (void)newname;
	erofs(req);
}

static void
op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
    const char *name)
{
	(void)link; (void)parent; (void)name;
	erofs(req);
}

static void
op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
    struct fuse_file_info *fi)
{
	(void)ino; (void)attr; (void)to_set; (void)fi;
	erofs(req);
}

static void
op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
    const char *value, size_t size, int flags)
{
	(void)ino; (void)name; (void)value; (void)size; (void)flags;
	erofs(req);
}

static void
op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino; (void)name;
	erofs(req);
}

static const struct fuse_lowlevel_ops fs_ops = {
	.lookup		= op_lookup,
	.getattr	= op_getattr,
	.opendir	= op_opendir,
	.readdir	= op_readdir,
	.open		= op_open,
	.read		= op_read,
	.release	= op_release,
	.statfs		= op_statfs,
	.getxattr	= op_getxattr,
	.listxattr	= op_listxattr,
	.write		= op_write,
	.create		= op_create,
	.mknod		= op_mknod,
	.mkdir		= op_mkdir,
	.unlink		= op_unlink,
	.rmdir		= op_unlink,
	.rename		= op_rename,
	.link		= op_link,
	.symlink	= op_symlink,
	.setattr	= op_setattr,
	.setxattr	= op_setxattr,
	.removexattr	= op_removexattr,
};

/*
 * A daemon killed with its mount in place leaves a mountpoint that
 * answers ENOTCONN. Detach it so we can mount afresh. A live mount is
 * another daemon's: leave it and refuse.
 */
static int
clear_stale_mount(const char *mp)
{
	struct stat st;

	if (stat(mp, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			log_warnx("mountpoint %s is not a directory", mp);
			return -ENOTDIR;
		}
		return 0;
	}
	if (errno == ENOENT) {
		if (mkdir(mp, 0755) != 0 && errno != EEXIST) {
			log_warn("mkdir %s", mp);
			return -errno;
		}
		return 0;
	}
	if (errno != ENOTCONN) {
		log_warn("mountpoint %s", mp);
		return -errno;
	}
	if (umount2(mp, MNT_DETACH) != 0) {
		log_warn("found a stale mount at %s (its daemon died) but "
		    "could not detach it", mp);
		return -errno;
	}
	log_info("cleared a stale mount at %s left by a daemon that died",
	    mp);
	return 0;
}

static int
already_mounted(const char *mp)
{
	char line[4096], path[PATH_MAX], real[PATH_MAX];
	FILE *f;
	int found = 0;

	if (!realpath(mp, real) || !(f = fopen("/proc/self/mountinfo", "re")))
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		/* id parent major:minor root mountpoint ... - fstype ... */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", path) == 1 &&
		    strcmp(path, real) == 0 && strstr(line, " - fuse.secretsfs "))
			found = 1;
	}
	fclose(f);
	return found;
}

/*
 * SIGHUP reopens the audit file (logrotate). Every thread blocks it and
 * this one waits for it, so no handler runs in the middle of a request.
 */
static void *
hup_thread(void *arg)
{
	struct broker *b = arg;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	for (;;)
		if (sigwait(&set, &sig) == 0 && sig == SIGHUP)
			broker_audit_reopen(b);
	return NULL;
}

static int
start_hup_thread(struct broker *b)
{
	pthread_t t;
	sigset_t set;
	int r;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	if ((r = pthread_sigmask(SIG_BLOCK, &set, NULL)) != 0)
		return -r;
	if ((r = pthread_create(&t, NULL, hup_thread, b)) != 0)
		return -r;
	pthread_detach(t);
	return 0;
}

int
fs_run(struct broker *b, const struct fs_options *opt)
{
	struct fs fs = { .broker = b, .started = time(NULL) };
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *lc = NULL;
	struct fuse_session *se = NULL;
	char mopts[256];
	int r = -EIO;

	if ((r = clear_stale_mount(opt->mountpoint)) < 0)
		return r;
	if (already_mounted(opt->mountpoint)) {
		log_warnx("%s is already served by a running secretsfs",
		    opt->mountpoint);
		return -EBUSY;
	}
	snprintf(mopts, sizeof(mopts), "-oro,nosuid,nodev,noexec,"
	    "default_permissions,fsname=secretsfs,subtype=secretsfs%s",
	    opt->allow_other ? ",allow_other" : "");
	if (fuse_opt_add_arg(&args, "secretsfs") != 0 ||
	    fuse_opt_add_arg(&args, mopts) != 0 ||
	    (opt->debug && fuse_opt_add_arg(&args, "-odebug") != 0)) {
		r = -ENOMEM;
		goto out;
	}
	if (!(se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), &fs))) {
		log_warnx("cannot create the FUSE session");
		goto out;
	}
	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	if (fuse_session_mount(se, opt->mountpoint) != 0) {
		log_warnx("cannot mount on %s", opt->mountpoint);
		goto out_signals;
	}
	log_info("serving %zu secrets on %s", broker_config(b)->n_secrets,
	    opt->mountpoint);
	if (fuse_daemonize(opt->foreground) != 0)
		goto out_unmount;
	/* A file size limit must fail the audit write (EFBIG), not kill us. */
	signal(SIGXFSZ, SIG_IGN);
	/* After daemonizing: threads do not survive its fork. */
	if ((r = start_hup_thread(b)) < 0) {
		log_warnx("cannot start the SIGHUP thread: %s", strerror(-r));
		goto out_unmount;
	}
	if (!(lc = fuse_loop_cfg_create())) {
		r = -ENOMEM;
		goto out_unmount;
	}
	fuse_loop_cfg_set_clone_fd(lc, 0);
	fuse_loop_cfg_set_max_threads(lc, 64);
	r = fuse_session_loop_mt(se, lc);
	r = r < 0 ? r : 0;
	log_info("unmounting %s", opt->mountpoint);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out:
	fuse_loop_cfg_destroy(lc);
	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	return r;
}
