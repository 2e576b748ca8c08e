/*
 * Runs in the FUSE process (the SANDBOX_FUSE allow-list).
 *
 * The session's side of the adapter: the inode table (numbers handed out
 * once per (parent, name, kind), kept for the life of the mount), the
 * thread that sends the kernel invalidations when a value changes, and the
 * session's life as the daemon drives it (daemon.h).
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
#include <secretsfs/secmem.h>

#include "fs_int.h"


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
fuse_ino_t
fs_ino_of(struct fs *fs, fuse_ino_t parent, const char *name, bool dir,
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
fuse_ino_t
fs_secret_ino(struct fs *fs, struct broker_view *v, size_t idx)
{
	return fs_ino_of(fs, ROOT_INO, secret(v, idx)->name,
	    is_dir_secret(v, idx), true);
}

/*
 * 0 and *n, or ENOENT for an inode we never handed out or whose secret
 * the current config no longer has (as the same kind of node).
 */
int
fs_node_of(struct fs *fs, struct broker_view *v, fuse_ino_t ino, struct node *n)
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
		if (!(dir = fs_ino_of(fs, ROOT_INO, top, true, false)))
			return;
		ino = fs_ino_of(fs, dir, slash + 1, false, false);
	} else
		ino = fs_ino_of(fs, ROOT_INO, name, false, false);
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
		fs_handle_free(fs, fs->handles);
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
		ok = fs_ino_of(fs, ROOT_INO, cfg->secrets[i].name,
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
