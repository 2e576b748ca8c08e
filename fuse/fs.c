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

/*
 * A file inside a directory secret. Its inode is FIRST_INO + n_secrets +
 * its index here; entries are added on first lookup and kept, so inode
 * numbers stay stable for the life of the mount.
 */
struct kid {
	size_t	 parent;	/* secret index */
	char	*name;
};

struct fs {
	struct broker	*broker;
	time_t		 started;
	pthread_mutex_t	 lock;		/* kids */
	struct kid	*kids;
	size_t		 nkids, capkids;
};

/* What an inode is. */
struct node {
	ssize_t		 idx;		/* secret index; -1 for the root */
	const char	*child;		/* file of a directory secret, or NULL */
};

static struct fs *
fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static size_t
n_secrets(struct fs *fs)
{
	return broker_config(fs->broker)->n_secrets;
}

static const struct config_secret *
secret(struct fs *fs, size_t idx)
{
	return &broker_config(fs->broker)->secrets[idx];
}

static bool
is_dir_secret(struct fs *fs, size_t idx)
{
	return secret(fs, idx)->as != CONFIG_AS_FILE;
}

/* 0 and *n, or ENOENT for an inode we never handed out. */
static int
node_of(struct fs *fs, fuse_ino_t ino, struct node *n)
{
	size_t k;

	n->idx = -1;
	n->child = NULL;
	if (ino == ROOT_INO)
		return 0;
	if (ino < FIRST_INO)
		return ENOENT;
	if (ino - FIRST_INO < n_secrets(fs)) {
		n->idx = (ssize_t)(ino - FIRST_INO);
		return 0;
	}
	k = ino - FIRST_INO - n_secrets(fs);
	pthread_mutex_lock(&fs->lock);
	if (k < fs->nkids) {
		n->idx = (ssize_t)fs->kids[k].parent;
		n->child = fs->kids[k].name;
	}
	pthread_mutex_unlock(&fs->lock);
	return n->idx < 0 ? ENOENT : 0;
}

/* The inode of file `name` of directory secret idx; 0 on OOM. */
static fuse_ino_t
kid_ino(struct fs *fs, size_t idx, const char *name)
{
	fuse_ino_t ino = 0;
	struct kid *grown;
	size_t k;

	pthread_mutex_lock(&fs->lock);
	for (k = 0; k < fs->nkids; k++)
		if (fs->kids[k].parent == idx && strcmp(fs->kids[k].name, name) == 0)
			goto found;
	if (fs->nkids == fs->capkids) {
		size_t cap = fs->capkids ? 2 * fs->capkids : 64;

		if (!(grown = realloc(fs->kids, cap * sizeof(*grown))))
			goto out;
		fs->kids = grown;
		fs->capkids = cap;
	}
	if (!(fs->kids[k].name = strdup(name)))
		goto out;
	fs->kids[k].parent = idx;
	fs->nkids++;
found:
	ino = FIRST_INO + n_secrets(fs) + k;
out:
	pthread_mutex_unlock(&fs->lock);
	return ino;
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

/* A directory secret: its read bits, plus search where read is granted. */
static void
dir_attr(struct fs *fs, size_t idx, struct stat *st)
{
	const struct config_secret *s = secret(fs, idx);

	memset(st, 0, sizeof(*st));
	st->st_ino = idx + FIRST_INO;
	st->st_mode = S_IFDIR | s->mode | ((s->mode & 0444) >> 2);
	st->st_nlink = 2;
	st->st_uid = s->uid;
	st->st_gid = s->gid;
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec =
	    fs->started;
}

static void
file_attr(struct fs *fs, size_t idx, fuse_ino_t ino,
    const struct cache_snap *snap, struct stat *st)
{
	const struct config_secret *s = secret(fs, idx);

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
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
 * The access decision for a request on secret idx (the files of a
 * directory secret share its decision). A caller we cannot identify (its
 * process is gone) sees nothing. Returns true when allowed.
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

/*
 * The answer to a denied request, after recording it: the kernel may
 * reach a file without a LOOKUP (an O_PATH descriptor reopened through
 * /proc), so every refusal is audited where it happens.
 */
static int
refuse(struct fs *fs, const struct node *n, const struct caller *c,
    const struct policy_decision *d)
{
	if (broker_audit_lookup_denied(fs->broker, c, (size_t)n->idx, n->child,
	    d->rule_id) < 0)
		return EIO;
	return broker_deny_errno(fs->broker);
}

/* Pin the value behind a file node. */
static int
pin(struct fs *fs, const struct node *n, struct cache_snap **snap)
{
	if (n->child)
		return broker_get_child(fs->broker, (size_t)n->idx, n->child, snap);
	return broker_get(fs->broker, (size_t)n->idx, snap);
}

/* Attributes of any node other than the root; fetches a file's value. */
static int
stat_node(struct fs *fs, fuse_ino_t ino, const struct node *n,
    struct stat *st)
{
	struct cache_snap *snap;
	int r;

	if (!n->child && is_dir_secret(fs, (size_t)n->idx)) {
		dir_attr(fs, (size_t)n->idx, st);
		return 0;
	}
	if ((r = pin(fs, n, &snap)) < 0)
		return -r;
	file_attr(fs, (size_t)n->idx, ino, snap, st);
	cache_put(snap);
	return 0;
}

/* Is name one of directory secret idx's files? 0, or an errno. */
static int
has_child(struct fs *fs, size_t idx, const char *name)
{
	char **names;
	size_t n, i;
	int r;

	if ((r = broker_children(fs->broker, idx, &names, &n)) < 0)
		return -r;
	r = ENOENT;
	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			r = 0;
	broker_names_free(names, n);
	return r;
}

static void
op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct fuse_entry_param e;
	struct policy_decision d;
	struct node pn, n;
	struct caller c;
	ssize_t idx;
	int err;

	memset(&e, 0, sizeof(e));
	if ((err = node_of(fs, parent, &pn)) != 0 || pn.child ||
	    (pn.idx >= 0 && !is_dir_secret(fs, (size_t)pn.idx))) {
		fuse_reply_err(req, err ? err : ENOTDIR);
		return;
	}
	idx = pn.idx >= 0 ? pn.idx : broker_lookup(fs->broker, name);
	if (idx < 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	n.idx = idx;
	n.child = pn.idx >= 0 ? name : NULL;
	if (!decide(fs, req, (size_t)idx, &c, &d)) {
		/* Invisible: the same answer as a name that does not exist. */
		fuse_reply_err(req, refuse(fs, &n, &c, &d));
		return;
	}
	n.child = NULL;
	e.ino = idx + FIRST_INO;
	if (pn.idx >= 0) {
		if ((err = has_child(fs, (size_t)idx, name)) != 0) {
			fuse_reply_err(req, err);
			return;
		}
		if (!(e.ino = kid_ino(fs, (size_t)idx, name))) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		n.child = name;
	}
	if ((err = stat_node(fs, e.ino, &n, &e.attr)) != 0) {
		fuse_reply_err(req, err);
		return;
	}
	e.generation = 1;
	fuse_reply_entry(req, &e);
}

static void
op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct policy_decision d;
	struct caller c;
	struct stat st;
	struct node n;
	int err;

	if ((err = node_of(fs, ino, &n)) != 0) {
		fuse_reply_err(req, err);
		return;
	}
	if (n.idx < 0) {
		root_attr(fs, &st);
		fuse_reply_attr(req, &st, 0);
		return;
	}
	if (!decide(fs, req, (size_t)n.idx, &c, &d)) {
		fuse_reply_err(req, refuse(fs, &n, &c, &d));
		return;
	}
	/* An open file reports the version it reads, not a newer one. */
	if (fi && fi->fh)
		file_attr(fs, (size_t)n.idx, ino,
		    (struct cache_snap *)(uintptr_t)fi->fh, &st);
	else if ((err = stat_node(fs, ino, &n, &st)) != 0) {
		fuse_reply_err(req, err);
		return;
	}
	fuse_reply_attr(req, &st, 0);
}

static void
op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct node n;
	int err;

	if ((err = node_of(fs, ino, &n)) != 0) {
		fuse_reply_err(req, err);
		return;
	}
	if (n.idx >= 0 && (n.child || !is_dir_secret(fs, (size_t)n.idx))) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	fuse_reply_open(req, fi);
}

/* Add one entry; false when the buffer is full. */
static bool
add_entry(fuse_req_t req, char *buf, size_t size, size_t *used,
    const char *name, fuse_ino_t ino, mode_t type, off_t next)
{
	struct stat st;
	size_t n;

	memset(&st, 0, sizeof(st));
	st.st_ino = ino;
	st.st_mode = type;
	n = fuse_add_direntry(req, buf + *used, size - *used, name, &st, next);
	if (n > size - *used)
		return false;
	*used += n;
	return true;
}

static void
op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct policy_decision d;
	char *buf, **names = NULL;
	size_t used = 0, count, i;
	struct caller c;
	struct node n;
	bool known;
	off_t o;
	int err;

	(void)fi;
	if ((err = node_of(fs, ino, &n)) != 0) {
		fuse_reply_err(req, err);
		return;
	}
	if (n.idx >= 0 && (n.child || !is_dir_secret(fs, (size_t)n.idx))) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	/* One identity for the whole listing; denied names are left out. */
	if (n.idx < 0) {
		const struct fuse_ctx *ctx = fuse_req_ctx(req);

		known = broker_identify(fs->broker, ctx->pid, ctx->uid,
		    ctx->gid, &c) == 0;
		count = n_secrets(fs);
	} else {
		if (!decide(fs, req, (size_t)n.idx, &c, &d)) {
			fuse_reply_err(req, refuse(fs, &n, &c, &d));
			return;
		}
		if ((err = broker_children(fs->broker, (size_t)n.idx, &names,
		    &count)) < 0) {
			fuse_reply_err(req, -err);
			return;
		}
		known = true;
	}
	if (!(buf = malloc(size))) {
		broker_names_free(names, count);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Offsets: 0 ".", 1 "..", 2 + i entry i; an entry's next is o + 1. */
	for (o = off; o < (off_t)count + 2; o++) {
		if (o < 2) {
			if (!add_entry(req, buf, size, &used, o == 0 ? "." : "..",
			    ino, S_IFDIR, o + 1))
				break;
			continue;
		}
		i = (size_t)o - 2;
		if (n.idx < 0) {
			if (!known || !broker_allowed(fs->broker, &c, i, &d))
				continue;
			if (!add_entry(req, buf, size, &used, secret(fs, i)->name,
			    i + FIRST_INO, is_dir_secret(fs, i) ? S_IFDIR :
			    S_IFREG, o + 1))
				break;
		} else {
			fuse_ino_t k = kid_ino(fs, (size_t)n.idx, names[i]);

			if (k && !add_entry(req, buf, size, &used, names[i], k,
			    S_IFREG, o + 1))
				break;
		}
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
	broker_names_free(names, n.idx >= 0 ? count : 0);
}

static void
op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct policy_decision d;
	struct cache_snap *snap;
	struct caller c;
	struct node n;
	int r;

	if ((r = node_of(fs, ino, &n)) != 0) {
		fuse_reply_err(req, r);
		return;
	}
	if (n.idx < 0 || (!n.child && is_dir_secret(fs, (size_t)n.idx))) {
		fuse_reply_err(req, EISDIR);
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
	if (!decide(fs, req, (size_t)n.idx, &c, &d)) {
		r = broker_deny_errno(fs->broker);
		if (broker_audit_access(fs->broker, &c, (size_t)n.idx, n.child,
		    d.rule_id, AUDIT_OUTCOME_DENY, r, NULL) < 0)
			r = EIO;
		fuse_reply_err(req, r);
		return;
	}
	if ((r = pin(fs, &n, &snap)) < 0) {
		r = broker_audit_access(fs->broker, &c, (size_t)n.idx, n.child,
		    d.rule_id, AUDIT_OUTCOME_ERROR, -r, NULL) < 0 ? -EIO : r;
		fuse_reply_err(req, -r);
		return;
	}
	if (broker_audit_access(fs->broker, &c, (size_t)n.idx, n.child,
	    d.rule_id, AUDIT_OUTCOME_ALLOW, 0, snap->version) < 0) {
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
	sv.f_files = n_secrets(fs) + 1;
	sv.f_namemax = NAME_MAX;
	sv.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC;
	fuse_reply_statfs(req, &sv);
}

/* The version xattr exists on files, not on directories. */
static bool
is_file_node(struct fs *fs, fuse_ino_t ino, struct node *n)
{
	return node_of(fs, ino, n) == 0 && n->idx >= 0 &&
	    (n->child || !is_dir_secret(fs, (size_t)n->idx));
}

static void
op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = fs_of(req);
	struct policy_decision d;
	struct cache_snap *snap;
	struct caller c;
	struct node n;
	size_t len;
	int r;

	if (!is_file_node(fs, ino, &n) || strcmp(name, XATTR_VERSION) != 0) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (!decide(fs, req, (size_t)n.idx, &c, &d)) {
		fuse_reply_err(req, refuse(fs, &n, &c, &d));
		return;
	}
	if ((r = pin(fs, &n, &snap)) < 0) {
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
	struct node n;

	if (!is_file_node(fs, ino, &n)) {
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
	struct fs fs = { .broker = b, .started = time(NULL),
	    .lock = PTHREAD_MUTEX_INITIALIZER };
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
	for (size_t k = 0; k < fs.nkids; k++)
		free(fs.kids[k].name);
	free(fs.kids);
	return r;
}
