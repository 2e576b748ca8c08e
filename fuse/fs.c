/*
 * Runs in the FUSE process (the SANDBOX_FUSE allow-list).
 *
 * The filesystem: a flat, read-only directory of secrets.
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
#define FUSE_USE_VERSION 314

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

#include <fuse_lowlevel.h>

#include <secretsfs/fs.h>
#include <secretsfs/log.h>
#include <secretsfs/secmem.h>

#define ROOT_INO	FUSE_ROOT_ID
#define FIRST_INO	2
#define XATTR_VERSION	"user.secretsfs.version"
#define INVAL_QUEUE	256

/* What an inode number stands for; numbers are never reused. */
struct inode {
	fuse_ino_t	 parent;	/* ROOT_INO for a secret */
	char		*name;		/* never freed before the fs */
	bool		 dir;
};

/*
 * An open file: the snapshot it reads. Kept on a list so that the ones
 * still open when the session ends (the kernel sends no RELEASE after
 * that) are unpinned too.
 */
struct handle {
	struct cache_snap	*snap;
	struct handle		*prev, *next;
};

struct fs {
	struct broker		*broker;
	struct fuse_session	*se;
	time_t			 started;

	pthread_mutex_t		 lock;		/* the inode table */
	pthread_mutex_t		 hlock;		/* handles */
	struct handle		*handles;
	struct inode		*inodes;	/* inode FIRST_INO + i */
	size_t			 ninodes, capinodes;
	size_t			*slots;		/* hash: index + 1, 0 empty */
	size_t			 nslots;

	pthread_mutex_t		 qlock;		/* invalidations to send */
	pthread_cond_t		 qcond;
	fuse_ino_t		 queue[INVAL_QUEUE];
	size_t			 nqueue;
	bool			 qstop;
	pthread_t		 qthread;
	bool			 qrunning;

	struct fuse_args	 args;
	struct fuse_loop_config	*lc;
	bool			 signals;	/* libfuse's handlers set */
};

/* What an inode is, in the view of one request. */
struct node {
	ssize_t		 idx;		/* secret index; -1 for the root */
	const char	*child;		/* file of a directory secret, or NULL */
};

static struct fs *
fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static const struct config_secret *
secret(struct broker_view *v, size_t idx)
{
	return &broker_view_config(v)->secrets[idx];
}

static size_t
n_secrets(struct broker_view *v)
{
	return broker_view_config(v)->n_secrets;
}

static bool
is_dir_secret(struct broker_view *v, size_t idx)
{
	return secret(v, idx)->as != CONFIG_AS_FILE;
}

/* ---- the inode table ---------------------------------------------- */

static size_t
ino_hash(fuse_ino_t parent, const char *name, bool dir)
{
	uint64_t h = 1469598103934665603ULL ^ parent ^ ((uint64_t)dir << 63);

	while (*name)
		h = (h ^ (unsigned char)*name++) * 1099511628211ULL;
	return (size_t)h;
}

/* Locked. */
static int
rehash(struct fs *fs, size_t nslots)
{
	size_t *slots, i, k;

	if (!(slots = calloc(nslots, sizeof(*slots))))
		return -ENOMEM;
	for (i = 0; i < fs->ninodes; i++) {
		const struct inode *in = &fs->inodes[i];

		k = ino_hash(in->parent, in->name, in->dir) & (nslots - 1);
		while (slots[k])
			k = (k + 1) & (nslots - 1);
		slots[k] = i + 1;
	}
	free(fs->slots);
	fs->slots = slots;
	fs->nslots = nslots;
	return 0;
}

/*
 * The inode of (parent, name, dir); a new one when create is set and
 * there is none. 0 when there is none (or on OOM).
 */
static fuse_ino_t
ino_of(struct fs *fs, fuse_ino_t parent, const char *name, bool dir,
    bool create)
{
	struct inode *grown;
	fuse_ino_t ino = 0;
	size_t k, i;

	pthread_mutex_lock(&fs->lock);
	if (fs->nslots) {
		k = ino_hash(parent, name, dir) & (fs->nslots - 1);
		for (; (i = fs->slots[k]) != 0; k = (k + 1) & (fs->nslots - 1)) {
			const struct inode *in = &fs->inodes[i - 1];

			if (in->parent == parent && in->dir == dir &&
			    strcmp(in->name, name) == 0) {
				ino = FIRST_INO + i - 1;
				goto out;
			}
		}
	}
	if (!create)
		goto out;
	if (fs->ninodes == fs->capinodes) {
		size_t cap = fs->capinodes ? 2 * fs->capinodes : 64;

		if (!(grown = realloc(fs->inodes, cap * sizeof(*grown))))
			goto out;
		fs->inodes = grown;
		fs->capinodes = cap;
	}
	if (2 * (fs->ninodes + 1) > fs->nslots &&
	    rehash(fs, fs->nslots ? 2 * fs->nslots : 128) < 0)
		goto out;
	if (!(fs->inodes[fs->ninodes].name = strdup(name)))
		goto out;
	fs->inodes[fs->ninodes].parent = parent;
	fs->inodes[fs->ninodes].dir = dir;
	k = ino_hash(parent, name, dir) & (fs->nslots - 1);
	while (fs->slots[k])
		k = (k + 1) & (fs->nslots - 1);
	fs->slots[k] = ++fs->ninodes;
	ino = FIRST_INO + fs->ninodes - 1;
out:
	pthread_mutex_unlock(&fs->lock);
	return ino;
}

/* Copy of inode ino's entry; false for a number we never handed out. */
static bool
inode_get(struct fs *fs, fuse_ino_t ino, struct inode *out)
{
	bool ok = false;

	pthread_mutex_lock(&fs->lock);
	if (ino >= FIRST_INO && ino - FIRST_INO < fs->ninodes) {
		*out = fs->inodes[ino - FIRST_INO];
		ok = true;
	}
	pthread_mutex_unlock(&fs->lock);
	return ok;
}

/* The inode of secret idx of v. */
static fuse_ino_t
secret_ino(struct fs *fs, struct broker_view *v, size_t idx)
{
	return ino_of(fs, ROOT_INO, secret(v, idx)->name, is_dir_secret(v, idx),
	    true);
}

/*
 * 0 and *n, or ENOENT for an inode we never handed out or whose secret
 * the current config no longer has (as the same kind of node).
 */
static int
node_of(struct fs *fs, struct broker_view *v, fuse_ino_t ino, struct node *n)
{
	struct inode in, pin;
	ssize_t idx;

	n->idx = -1;
	n->child = NULL;
	if (ino == ROOT_INO)
		return 0;
	if (!inode_get(fs, ino, &in))
		return ENOENT;
	if (in.parent == ROOT_INO) {
		if ((idx = broker_view_lookup(v, in.name)) < 0 ||
		    is_dir_secret(v, (size_t)idx) != in.dir)
			return ENOENT;
		n->idx = idx;
		return 0;
	}
	if (!inode_get(fs, in.parent, &pin) ||
	    (idx = broker_view_lookup(v, pin.name)) < 0 ||
	    !is_dir_secret(v, (size_t)idx))
		return ENOENT;
	n->idx = idx;
	n->child = in.name;
	return 0;
}

/* ---- invalidations -------------------------------------------------- */

/*
 * A new version of name (a secret, or "secret/file") is in the cache:
 * have the kernel drop what it holds of the inode. Queued, because the
 * notification must not be sent from inside a request on that inode.
 */
static void
on_changed(void *arg, const char *name)
{
	struct fs *fs = arg;
	const char *slash = strchr(name, '/');
	char top[NAME_MAX + 1];
	fuse_ino_t ino, dir;
	size_t i;

	if (slash) {
		if (slash - name > NAME_MAX)
			return;
		snprintf(top, sizeof(top), "%.*s", (int)(slash - name), name);
		if (!(dir = ino_of(fs, ROOT_INO, top, true, false)))
			return;
		ino = ino_of(fs, dir, slash + 1, false, false);
	} else
		ino = ino_of(fs, ROOT_INO, name, false, false);
	if (!ino)
		return;		/* the kernel never saw it */
	pthread_mutex_lock(&fs->qlock);
	for (i = 0; i < fs->nqueue && fs->queue[i] != ino; i++)
		;
	/* A full queue only loses a hint: attribute timeouts are zero. */
	if (i == fs->nqueue && fs->nqueue < INVAL_QUEUE) {
		fs->queue[fs->nqueue++] = ino;
		pthread_cond_signal(&fs->qcond);
	}
	pthread_mutex_unlock(&fs->qlock);
}

static void *
inval_thread(void *arg)
{
	struct fs *fs = arg;
	fuse_ino_t ino;
	int r;

	pthread_mutex_lock(&fs->qlock);
	for (;;) {
		while (!fs->qstop && fs->nqueue == 0)
			pthread_cond_wait(&fs->qcond, &fs->qlock);
		if (fs->qstop)
			break;
		ino = fs->queue[--fs->nqueue];
		pthread_mutex_unlock(&fs->qlock);
		r = fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
		if (r < 0 && r != -ENOENT)
			log_debug("invalidating inode %lu: %s",
			    (unsigned long)ino, strerror(-r));
		pthread_mutex_lock(&fs->qlock);
	}
	pthread_mutex_unlock(&fs->qlock);
	return NULL;
}

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

	if ((err = node_of(fs, v, parent, &pn)) != 0)
		return err;
	if (pn.child || (pn.idx >= 0 && !is_dir_secret(v, (size_t)pn.idx)))
		return ENOTDIR;
	idx = pn.idx >= 0 ? pn.idx : broker_view_lookup(v, name);
	if (idx < 0)
		return ENOENT;
	n.idx = idx;
	n.child = pn.idx >= 0 ? name : NULL;
	if (!decide(v, req, (size_t)idx, &c, &d))
		/* Invisible: the same answer as a name that does not exist. */
		return refuse(v, &n, &c, &d);
	if (pn.idx >= 0) {
		if ((err = has_child(v, (size_t)idx, name)) != 0)
			return err;
		if (!(e->ino = ino_of(fs, parent, name, false, true)))
			return ENOMEM;
	} else if (!(e->ino = secret_ino(fs, v, (size_t)idx)))
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

	if ((err = node_of(fs, v, ino, &n)) != 0)
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

	if ((err = node_of(fs, v, ino, &n)) != 0)
		fuse_reply_err(req, err);
	else if (n.idx >= 0 && (n.child || !is_dir_secret(v, (size_t)n.idx)))
		fuse_reply_err(req, ENOTDIR);
	else
		fuse_reply_open(req, fi);
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

	if ((err = node_of(fs, v, ino, &n)) != 0) {
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
			if ((k = secret_ino(fs, v, i)) &&
			    !add_entry(req, buf, size, &used, secret(v, i)->name,
			    k, is_dir_secret(v, i) ? S_IFDIR : S_IFREG, o + 1))
				break;
		} else {
			fuse_ino_t k = ino_of(fs, ino, names[i], false, true);

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
static void
handle_free(struct fs *fs, struct handle *h)
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

	if ((r = node_of(fs, v, ino, &n)) != 0) {
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
		handle_free(fs, h);
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
}

static void
op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	handle_free(fs_of(req), (struct handle *)(uintptr_t)fi->fh);
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
	sv.f_files = n_secrets(v) + 1;
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
	return node_of(fs, v, ino, n) == 0 && n->idx >= 0 &&
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

static int
start_inval_thread(struct fs *fs)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&fs->qthread, NULL, inval_thread, fs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return -r;
	fs->qrunning = true;
	broker_set_changed_hook(fs->broker, on_changed, fs);
	return 0;
}

static void
stop_inval_thread(struct fs *fs)
{
	if (!fs->qrunning)
		return;
	broker_set_changed_hook(fs->broker, NULL, NULL);
	pthread_mutex_lock(&fs->qlock);
	fs->qstop = true;
	pthread_cond_broadcast(&fs->qcond);
	pthread_mutex_unlock(&fs->qlock);
	pthread_join(fs->qthread, NULL);
	fs->qrunning = false;
}

/* ---- the session, as the daemon drives it (daemon.h) ---------------- */

static void
fs_close(void *arg)
{
	struct fs *fs = arg;
	size_t i;

	if (!fs)
		return;
	if (fs->signals)
		fuse_remove_signal_handlers(fs->se);
	fuse_loop_cfg_destroy(fs->lc);
	if (fs->se)
		fuse_session_destroy(fs->se);
	fuse_opt_free_args(&fs->args);
	for (i = 0; i < fs->ninodes; i++)
		free(fs->inodes[i].name);
	free(fs->inodes);
	free(fs->slots);
	/* Files still open when the session ended get no RELEASE. */
	while (fs->handles)
		handle_free(fs, fs->handles);
	free(fs);
}

static void *
fs_open(struct broker *b, bool debug)
{
	struct broker_view *v;
	const struct config *cfg;
	struct fs *fs;
	size_t i;
	bool ok = true;

	if (!(fs = malloc(sizeof(*fs))))
		return NULL;
	*fs = (struct fs){ .broker = b, .started = time(NULL),
	    .lock = PTHREAD_MUTEX_INITIALIZER,
	    .hlock = PTHREAD_MUTEX_INITIALIZER,
	    .qlock = PTHREAD_MUTEX_INITIALIZER,
	    .qcond = PTHREAD_COND_INITIALIZER,
	    .args = FUSE_ARGS_INIT(0, NULL) };
	/* Secret i of the first config is inode i + 2, as it always was. */
	v = broker_acquire(b);
	cfg = broker_view_config(v);
	for (i = 0; ok && i < cfg->n_secrets; i++)
		ok = ino_of(fs, ROOT_INO, cfg->secrets[i].name,
		    cfg->secrets[i].as != CONFIG_AS_FILE, true) != 0;
	broker_release(v);
	if (!ok)
		goto fail;
	/* Mount options live in the helper's mount(2); these are libfuse's. */
	if (fuse_opt_add_arg(&fs->args, "secretsfs") != 0 ||
	    (debug && fuse_opt_add_arg(&fs->args, "-odebug") != 0))
		goto fail;
	if (!(fs->se = fuse_session_new(&fs->args, &fs_ops, sizeof(fs_ops),
	    fs))) {
		log_warnx("cannot create the FUSE session");
		goto fail;
	}
	if (fuse_set_signal_handlers(fs->se) != 0)
		goto fail;
	fs->signals = true;
	if (!(fs->lc = fuse_loop_cfg_create()))
		goto fail;
	fuse_loop_cfg_set_clone_fd(fs->lc, 0);
	fuse_loop_cfg_set_max_threads(fs->lc, 64);
	return fs;
fail:
	fs_close(fs);
	return NULL;
}

static int
fs_attach(void *arg, int fusefd, const char *mp)
{
	struct fs *fs = arg;
	char devfd[32];

	snprintf(devfd, sizeof(devfd), "/dev/fd/%d", fusefd);
	if (fuse_session_mount(fs->se, devfd) != 0) {
		log_warnx("cannot serve %s", mp);
		close(fusefd);
		return -EIO;
	}
	/*
	 * The daemon forked before anything was locked or any helper existed
	 * (fuse_daemonize's fork would leave the arena behind: it is
	 * MADV_WIPEONFORK/DONTFORK): here only the move to "/" is left.
	 */
	if (fuse_daemonize(1) != 0)
		return -EIO;
	return 0;
}

static int
fs_loop(void *arg)
{
	struct fs *fs = arg;
	int r;

	r = fuse_session_loop_mt(fs->se, fs->lc);
	return r < 0 ? r : 0;
}

static void
fs_end(void *arg)
{
	struct fs *fs = arg;

	fuse_session_exit(fs->se);
}

static bool
fs_ended(void *arg)
{
	struct fs *fs = arg;

	return fuse_session_exited(fs->se);
}

static int
fs_start(void *arg)
{
	return start_inval_thread(arg);
}

static void
fs_stop(void *arg)
{
	stop_inval_thread(arg);
}

const struct daemon_frontend fs_frontend = {
	.open	= fs_open,
	.attach	= fs_attach,
	.start	= fs_start,
	.stop	= fs_stop,
	.loop	= fs_loop,
	.end	= fs_end,
	.ended	= fs_ended,
	.close	= fs_close,
};
