/*
 * Runs in the FUSE process (the SANDBOX_FUSE allow-list).
 *
 * The filesystem: a flat, read-only directory of secrets; this file
 * answers its requests (fs_session.c keeps the inode table and runs the
 * session).
 *
 * Inode 1 is the root. Every other inode number is handed out once per
 * (parent, name, kind) and kept for the life of the mount, so a secret
 * keeps its number across config reloads (secret i of the first config is
 * inode i + 2); a name the current config no longer has answers ENOENT.
 * Entry and attribute timeouts are zero: the dentry cache is shared by
 * every container bound to the mount, so a name one caller may see must
 * not be answered from the kernel's cache to another. Files are opened
 * with direct_io, so the page cache never holds a secret and every
 * open() reaches us.
 *
 * Each request pins one view of the config (broker_acquire) and releases
 * it after its reply, so a reload never frees what a request is using.
 *
 * As in libfuse's passthrough_ll.c, helpers return an errno and each
 * request handler replies exactly once.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <secretsfs/fs.h>
#include <secretsfs/log.h>
#include <secretsfs/perm.h>
#include <secretsfs/secmem.h>

#include "fs_int.h"

/* ---- attributes and decisions ------------------------------------- */

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
dir_attr(struct fs *fs, struct broker_view *v, size_t idx, fuse_ino_t ino,
    struct stat *st)
{
	const struct config_secret *s = secret(v, idx);

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | s->mode | ((s->mode & 0444) >> 2);
	st->st_nlink = 2;
	st->st_uid = s->uid;
	st->st_gid = s->gid;
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec =
	    fs->started;
}

/* mtime and ctime are the version's: a rotation moves both. */
static void
file_attr(struct broker_view *v, size_t idx, fuse_ino_t ino,
    const struct cache_snap *snap, struct stat *st)
{
	const struct config_secret *s = secret(v, idx);

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

/* The access decision for a request on secret idx (broker_decide). */
static bool
decide(struct broker_view *v, fuse_req_t req, size_t idx,
    struct caller *c, struct policy_decision *d)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	return broker_decide(v, ctx->pid, ctx->uid, ctx->gid, idx, c, d);
}

/*
 * The answer to a denied request, after recording it: the kernel may
 * reach a file without a LOOKUP (an O_PATH descriptor reopened through
 * /proc), so every refusal is audited where it happens.
 */
static int
refuse(struct broker_view *v, const struct node *n, const struct caller *c,
    const struct policy_decision *d)
{
	if (broker_audit_lookup_denied(v, c, (size_t)n->idx, n->child,
	    d->rule_id) < 0)
		return EIO;
	return broker_deny_errno(v);
}

/*
 * The mode check the kernel made with default_permissions, for requests
 * other than open (broker_open has its own, audited): search to look up
 * in a directory secret, read to list it or read the version xattr, and
 * access(2). The root is 0555 root:root, open to every caller.
 */
static int
mode_refuses(struct fs *fs, struct broker_view *v, fuse_req_t req,
    const struct node *n, int want)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct stat st;

	if (n->idx < 0)
		root_attr(fs, &st);
	else if (!n->child && is_dir_secret(v, (size_t)n->idx))
		dir_attr(fs, v, (size_t)n->idx, 0, &st);
	else {
		st.st_mode = secret(v, (size_t)n->idx)->mode;
		st.st_uid = secret(v, (size_t)n->idx)->uid;
		st.st_gid = secret(v, (size_t)n->idx)->gid;
	}
	return perm_allows(ctx->pid, ctx->uid, ctx->gid, st.st_mode & 07777,
	    st.st_uid, st.st_gid, want) < 0 ? EACCES : 0;
}

/*
 * A name that is no secret takes the path of one the caller may not see:
 * identified, decided, recorded as lookup_denied (reason "no such
 * secret"), ENOENT. Otherwise the denial's record, written before the
 * reply, would make a hidden name measurably slower than a missing one.
 * Under access.denied "eacces" (for debugging) a denial answers EACCES,
 * which tells the two apart anyway: a missing name is then not recorded.
 */
static int
refuse_missing(struct broker_view *v, fuse_req_t req, const char *name)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct policy_decision d;
	struct caller c;

	if (broker_deny_errno(v) != ENOENT)
		return ENOENT;
	broker_decide_missing(v, ctx->pid, ctx->uid, ctx->gid, name, &c, &d);
	if (broker_audit_missing(v, &c, name, d.rule_id) < 0)
		return EIO;
	return ENOENT;
}

/* Pin the value behind a file node. */
static int
pin(struct broker_view *v, const struct node *n, struct cache_snap **snap)
{
	if (n->child)
		return broker_get_child(v, (size_t)n->idx, n->child, snap);
	return broker_get(v, (size_t)n->idx, snap);
}

/* Attributes of any node other than the root; fetches a file's value. */
static int
stat_node(struct fs *fs, struct broker_view *v, fuse_ino_t ino,
    const struct node *n, struct stat *st)
{
	struct cache_snap *snap;
	int r;

	if (!n->child && is_dir_secret(v, (size_t)n->idx)) {
		dir_attr(fs, v, (size_t)n->idx, ino, st);
		return 0;
	}
	if ((r = pin(v, n, &snap)) < 0)
		return -r;
	file_attr(v, (size_t)n->idx, ino, snap, st);
	cache_put(snap);
	return 0;
}

/* Is name one of directory secret idx's files? 0, or an errno. */
static int
has_child(struct broker_view *v, size_t idx, const char *name)
{
	char **names;
	size_t n, i;
	int r;

	if ((r = broker_children(v, idx, &names, &n)) < 0)
		return -r;
	r = ENOENT;
	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			r = 0;
	broker_names_free(names, n);
	return r;
}

/* ---- requests ------------------------------------------------------- */

static int
do_lookup(struct fs *fs, struct broker_view *v, fuse_req_t req,
    fuse_ino_t parent, const char *name, struct fuse_entry_param *e)
{
	struct policy_decision d;
	struct node pn, n;
	struct caller c;
	ssize_t idx;
	int err;

	if ((err = fs_node_of(fs, v, parent, &pn)) != 0)
		return err;
	if (pn.child || (pn.idx >= 0 && !is_dir_secret(v, (size_t)pn.idx)))
		return ENOTDIR;
	idx = pn.idx >= 0 ? pn.idx : broker_view_lookup(v, name);
	if (idx < 0)
		return refuse_missing(v, req, name);
	n.idx = idx;
	n.child = pn.idx >= 0 ? name : NULL;
	if (!decide(v, req, (size_t)idx, &c, &d))
		/* Invisible: the same answer as a name that does not exist. */
		return refuse(v, &n, &c, &d);
	if (pn.idx >= 0) {
		/* The kernel asks no more: search on the directory is ours. */
		if ((err = mode_refuses(fs, v, req, &pn, PERM_EXEC)) != 0)
			return err;
		if ((err = has_child(v, (size_t)idx, name)) != 0)
			return err;
		if (!(e->ino = fs_ino_of(fs, parent, name, false, true)))
			return ENOMEM;
	} else if (!(e->ino = fs_secret_ino(fs, v, (size_t)idx)))
		return ENOMEM;
	if ((err = stat_node(fs, v, e->ino, &n, &e->attr)) != 0)
		return err;
	e->generation = 1;
	return 0;
}

static void
op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct broker_view *v = broker_acquire(fs->broker);
	struct fuse_entry_param e;
	int err;

	memset(&e, 0, sizeof(e));
	if ((err = do_lookup(fs, v, req, parent, name, &e)) != 0)
		fuse_reply_err(req, err);
	else
		fuse_reply_entry(req, &e);
	broker_release(v);
}

static int
do_getattr(struct fs *fs, struct broker_view *v, fuse_req_t req,
    fuse_ino_t ino, struct fuse_file_info *fi, struct stat *st)
{
	struct policy_decision d;
	struct caller c;
	struct node n;
	int err;

	if ((err = fs_node_of(fs, v, ino, &n)) != 0)
		return err;
	if (n.idx < 0) {
		root_attr(fs, st);
		return 0;
	}
	if (!decide(v, req, (size_t)n.idx, &c, &d))
		return refuse(v, &n, &c, &d);
	/* An open file reports the version it reads, not a newer one. */
	if (fi && fi->fh) {
		file_attr(v, (size_t)n.idx, ino,
		    ((struct handle *)(uintptr_t)fi->fh)->snap, st);
		return 0;
	}
	return stat_node(fs, v, ino, &n, st);
}

static void
op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct broker_view *v = broker_acquire(fs->broker);
	struct stat st;
	int err;

	if ((err = do_getattr(fs, v, req, ino, fi, &st)) != 0)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, 0);
	broker_release(v);
}

static void
op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct broker_view *v = broker_acquire(fs->broker);
	struct node n;
	int err;

	if ((err = fs_node_of(fs, v, ino, &n)) != 0)
		fuse_reply_err(req, err);
	else if (n.idx >= 0 && (n.child || !is_dir_secret(v, (size_t)n.idx)))
		fuse_reply_err(req, ENOTDIR);
	else if ((err = mode_refuses(fs, v, req, &n, PERM_READ)) != 0)
		fuse_reply_err(req, err);
	else
		fuse_reply_open(req, fi);
	broker_release(v);
}

/*
 * access(2), faccessat(2) and chdir(2): without default_permissions the
 * kernel asks here. The rules first (a name the caller may not see is
 * refused as in getattr), then the mode. W_OK never arrives: the mount
 * is read-only and the kernel answers EROFS itself.
 */
static void
op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct fs *fs = fs_of(req);
	struct broker_view *v = broker_acquire(fs->broker);
	struct policy_decision d;
	struct caller c;
	struct node n;
	int err, want = 0;

	if (mask & R_OK)
		want |= PERM_READ;
	if (mask & W_OK)
		want |= PERM_WRITE;
	if (mask & X_OK)
		want |= PERM_EXEC;
	if ((err = fs_node_of(fs, v, ino, &n)) == 0 && n.idx >= 0 &&
	    !decide(v, req, (size_t)n.idx, &c, &d))
		err = refuse(v, &n, &c, &d);
	if (err == 0 && want)
		err = mode_refuses(fs, v, req, &n, want);
	fuse_reply_err(req, err);
	broker_release(v);
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
do_readdir(struct fs *fs, struct broker_view *v, fuse_req_t req,
    fuse_ino_t ino, size_t size, off_t off)
{
	struct policy_decision d;
	char *buf, **names = NULL;
	size_t used = 0, count, i;
	struct caller c;
	struct node n;
	bool known;
	off_t o;
	int err;

	if ((err = fs_node_of(fs, v, ino, &n)) != 0) {
		fuse_reply_err(req, err);
		return;
	}
	if (n.idx >= 0 && (n.child || !is_dir_secret(v, (size_t)n.idx))) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	/* One identity for the whole listing; denied names are left out. */
	if (n.idx < 0) {
		const struct fuse_ctx *ctx = fuse_req_ctx(req);

		known = broker_identify(fs->broker, ctx->pid, ctx->uid,
		    ctx->gid, &c) == 0;
		count = n_secrets(v);
	} else {
		if (!decide(v, req, (size_t)n.idx, &c, &d)) {
			fuse_reply_err(req, refuse(v, &n, &c, &d));
			return;
		}
		if ((err = broker_children(v, (size_t)n.idx, &names,
		    &count)) < 0) {
			fuse_reply_err(req, -err);
			return;
		}
		known = true;
	}
	if (!(buf = malloc(size))) {
		broker_names_free(names, n.idx >= 0 ? count : 0);
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
			fuse_ino_t k;

			if (!known || !broker_allowed(v, &c, i, &d))
				continue;
			if ((k = fs_secret_ino(fs, v, i)) &&
			    !add_entry(req, buf, size, &used, secret(v, i)->name,
			    k, is_dir_secret(v, i) ? S_IFDIR : S_IFREG, o + 1))
				break;
		} else {
			fuse_ino_t k = fs_ino_of(fs, ino, names[i], false, true);

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
op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct broker_view *v = broker_acquire(fs->broker);

	(void)fi;
	do_readdir(fs, v, req, ino, size, off);
	broker_release(v);
}

static struct handle *
handle_new(struct fs *fs, struct cache_snap *snap)
{
	struct handle *h;

	if (!(h = calloc(1, sizeof(*h))))
		return NULL;
	h->snap = snap;
	pthread_mutex_lock(&fs->hlock);
	h->next = fs->handles;
	if (h->next)
		h->next->prev = h;
	fs->handles = h;
	pthread_mutex_unlock(&fs->hlock);
	return h;
}

/* Unpin the snapshot and forget the handle. */
void
fs_handle_free(struct fs *fs, struct handle *h)
{
	pthread_mutex_lock(&fs->hlock);
	if (h->prev)
		h->prev->next = h->next;
	else
		fs->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&fs->hlock);
	cache_put(h->snap);
	free(h);
}

/* broker_open() decides, records and pins; this is its answer. */
static void
do_open(struct fs *fs, struct broker_view *v, fuse_req_t req, fuse_ino_t ino,
    struct fuse_file_info *fi)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct broker_open_req br;
	struct cache_snap *snap;
	struct handle *h;
	struct node n;
	int r;

	if ((r = fs_node_of(fs, v, ino, &n)) != 0) {
		fuse_reply_err(req, r);
		return;
	}
	if (n.idx < 0) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	br = (struct broker_open_req){
		.pid = ctx->pid, .uid = ctx->uid, .gid = ctx->gid,
		.idx = (size_t)n.idx, .child = n.child, .flags = fi->flags,
	};
	if ((r = broker_open(v, &br, &snap)) < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (!(h = handle_new(fs, snap))) {
		cache_put(snap);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi) != 0)
		/* The opener is gone (interrupted): no release will come. */
		fs_handle_free(fs, h);
	else
		broker_note_open(fs->broker, 1);
}

static void
op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct broker_view *v = broker_acquire(fs->broker);

	do_open(fs, v, req, ino, fi);
	broker_release(v);
	/* An open may have fetched, parsed and cached a value. */
	secmem_wipe_registers();
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
	const struct cache_snap *snap =
	    ((struct handle *)(uintptr_t)fi->fh)->snap;

	(void)ino;
	if (off < 0 || (uint64_t)off >= snap->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > snap->len - (size_t)off)
		size = snap->len - (size_t)off;
	reply_secret(req, snap->data + off, size);
	secmem_wipe_registers();	/* the bounce's memcpy */
}

static void
op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fs_handle_free(fs_of(req), (struct handle *)(uintptr_t)fi->fh);
	broker_note_open(fs_of(req)->broker, -1);
	fuse_reply_err(req, 0);
}

static void
op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	struct broker_view *v = broker_acquire(fs->broker);
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = sv.f_frsize = 4096;
	/* Zero, for every caller: a count would tell how many are hidden. */
	sv.f_files = 0;
	sv.f_namemax = NAME_MAX;
	sv.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC;
	broker_release(v);
	fuse_reply_statfs(req, &sv);
}

/* The version xattr exists on files, not on directories. */
static bool
is_file_node(struct fs *fs, struct broker_view *v, fuse_ino_t ino,
    struct node *n)
{
	return fs_node_of(fs, v, ino, n) == 0 && n->idx >= 0 &&
	    (n->child || !is_dir_secret(v, (size_t)n->idx));
}

static void
do_getxattr(struct fs *fs, struct broker_view *v, fuse_req_t req,
    fuse_ino_t ino, const char *name, size_t size)
{
	struct policy_decision d;
	struct cache_snap *snap;
	struct caller c;
	struct node n;
	size_t len;
	int r;

	if (!is_file_node(fs, v, ino, &n) || strcmp(name, XATTR_VERSION) != 0) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (!decide(v, req, (size_t)n.idx, &c, &d)) {
		fuse_reply_err(req, refuse(v, &n, &c, &d));
		return;
	}
	/* user.* xattrs need read permission (xattr_permission). */
	if ((r = mode_refuses(fs, v, req, &n, PERM_READ)) != 0) {
		fuse_reply_err(req, r);
		return;
	}
	if ((r = pin(v, &n, &snap)) < 0) {
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
op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = fs_of(req);
	struct broker_view *v = broker_acquire(fs->broker);

	do_getxattr(fs, v, req, ino, name, size);
	broker_release(v);
}

static void
op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = fs_of(req);
	struct broker_view *v = broker_acquire(fs->broker);
	const size_t len = sizeof(XATTR_VERSION);	/* with its NUL */
	struct node n;
	bool file = is_file_node(fs, v, ino, &n);

	broker_release(v);
	if (!file) {
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

const struct fuse_lowlevel_ops fs_ops = {
	.lookup		= op_lookup,
	.getattr	= op_getattr,
	.opendir	= op_opendir,
	.access		= op_access,
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
