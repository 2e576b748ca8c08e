/*
 * minfuse: the floor any FUSE broker can reach on this machine.
 *
 * A read-only filesystem that serves one constant buffer under every name
 * of its root, built on the same libfuse low-level API and with the same
 * choices as secretsfs (fuse/fs.c) wherever they change what the kernel
 * sends us: entry and attribute timeouts of zero (so every open() costs a
 * LOOKUP), direct_io and no keep_cache (so every read() costs a READ), the
 * multi-threaded loop with up to 64 workers and no cloned fds, and the
 * same mount options. It does nothing else: no identity, no policy, no
 * audit, no cache, no locked memory.
 *
 *	minfuse [-d] [-r SEC] [-a SEC] -f FILE MOUNTPOINT
 *
 * FILE's bytes (read once at start) are the buffer. Runs in the foreground
 * and prints "serving" once mounted; SIGTERM or SIGINT unmounts.
 *
 * -r and -a measure what cutting round trips would buy: -r lets the kernel
 * cache the root's attributes for SEC seconds (no GETATTR of the root on
 * each path walk), -a the file's attributes given with LOOKUP (no GETATTR of
 * the file before OPEN). Entry timeouts stay zero either way, so every open
 * still sends LOOKUP, OPEN and READ.
 */
#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#define FILE_INO	2

struct minfs {
	char	*buf;
	size_t	 len;
	time_t	 started;
	double	 root_attr_timeout;
	double	 file_attr_timeout;
};

static struct minfs *
mfs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void
file_attr(const struct minfs *m, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = FILE_INO;
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_size = (off_t)m->len;
	st->st_blksize = 4096;
	st->st_blocks = (m->len + 511) / 512;
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec =
	    m->started;
}

static void
root_attr(const struct minfs *m, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = FUSE_ROOT_ID;
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec =
	    m->started;
}

static void
op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	(void)name;
	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = FILE_INO;
	e.generation = 1;
	file_attr(mfs(req), &e.attr);
	/* The entry timeout stays zero, as in secretsfs. */
	e.attr_timeout = mfs(req)->file_attr_timeout;
	fuse_reply_entry(req, &e);
}

static void
op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct minfs *m = mfs(req);
	struct stat st;

	(void)fi;
	if (ino == FUSE_ROOT_ID) {
		root_attr(m, &st);
		fuse_reply_attr(req, &st, m->root_attr_timeout);
	} else {
		file_attr(m, &st);
		fuse_reply_attr(req, &st, m->file_attr_timeout);
	}
}

static void
op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FILE_INO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fuse_reply_open(req, fi);
}

static void
op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	const struct minfs *m = mfs(req);

	(void)ino; (void)fi;
	if (off < 0 || (size_t)off >= m->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > m->len - (size_t)off)
		size = m->len - (size_t)off;
	fuse_reply_buf(req, m->buf + off, size);
}

static void
op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino; (void)fi;
	fuse_reply_err(req, 0);
}

static void
op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct stat st;
	char buf[512];
	size_t used = 0, n;
	static const char *const names[] = { ".", "..", "secret" };

	(void)fi;
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (size > sizeof(buf))
		size = sizeof(buf);
	for (; off < 3; off++) {
		memset(&st, 0, sizeof(st));
		st.st_ino = off == 2 ? FILE_INO : FUSE_ROOT_ID;
		st.st_mode = off == 2 ? S_IFREG : S_IFDIR;
		n = fuse_add_direntry(req, buf + used, size - used, names[off],
		    &st, off + 1);
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
}

static const struct fuse_lowlevel_ops ops = {
	.lookup		= op_lookup,
	.getattr	= op_getattr,
	.open		= op_open,
	.read		= op_read,
	.release	= op_release,
	.readdir	= op_readdir,
};

static int
load(const char *path, struct minfs *m)
{
	struct stat st;
	ssize_t r;
	size_t off = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0)
		return -errno;
	m->len = (size_t)st.st_size;
	if (!(m->buf = malloc(m->len ? m->len : 1))) {
		close(fd);
		return -ENOMEM;
	}
	while (off < m->len) {
		if ((r = read(fd, m->buf + off, m->len - off)) <= 0) {
			close(fd);
			return r < 0 ? -errno : -EIO;
		}
		off += (size_t)r;
	}
	close(fd);
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: minfuse [-d] [-r SEC] [-a SEC] -f FILE MOUNTPOINT\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *lc;
	struct fuse_session *se;
	struct minfs m = { .started = time(NULL) };
	const char *file = NULL;
	int ch, debug = 0, r;

	while ((ch = getopt(argc, argv, "da:f:r:")) != -1) {
		switch (ch) {
		case 'a':
			m.file_attr_timeout = atof(optarg);
			break;
		case 'r':
			m.root_attr_timeout = atof(optarg);
			break;
		case 'd':
			debug = 1;
			break;
		case 'f':
			file = optarg;
			break;
		default:
			usage();
		}
	}
	if (!file || optind != argc - 1)
		usage();
	if ((r = load(file, &m)) < 0) {
		fprintf(stderr, "minfuse: %s: %s\n", file, strerror(-r));
		return 1;
	}
	if (fuse_opt_add_arg(&args, "minfuse") != 0 ||
	    fuse_opt_add_arg(&args, "-oro,nosuid,nodev,noexec,"
	    "default_permissions,allow_other,fsname=minfuse,subtype=minfuse")
	    != 0 || (debug && fuse_opt_add_arg(&args, "-odebug") != 0))
		return 1;
	if (!(se = fuse_session_new(&args, &ops, sizeof(ops), &m)))
		return 1;
	if (fuse_set_signal_handlers(se) != 0 ||
	    fuse_session_mount(se, argv[optind]) != 0) {
		fuse_session_destroy(se);
		return 1;
	}
	fprintf(stderr, "minfuse: serving %zu bytes on %s\n", m.len,
	    argv[optind]);
	if (!(lc = fuse_loop_cfg_create()))
		return 1;
	fuse_loop_cfg_set_clone_fd(lc, 0);
	fuse_loop_cfg_set_max_threads(lc, 64);
	r = fuse_session_loop_mt(se, lc);
	fuse_loop_cfg_destroy(lc);
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	free(m.buf);
	return r < 0 ? 1 : 0;
}
