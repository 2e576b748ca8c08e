/*
 * fs_int.h: what the two halves of the FUSE adapter share: fs.c answers
 * the requests, fs_session.c keeps the inode table, sends invalidations
 * and runs the session. Runs in the FUSE process.
 */
#ifndef SECRETSFS_FS_INT_H
#define SECRETSFS_FS_INT_H

#define FUSE_USE_VERSION 314

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <fuse_lowlevel.h>

#include <secretsfs/fs.h>

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

static inline struct fs *
fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static inline const struct config_secret *
secret(struct broker_view *v, size_t idx)
{
	return &broker_view_config(v)->secrets[idx];
}

static inline size_t
n_secrets(struct broker_view *v)
{
	return broker_view_config(v)->n_secrets;
}

static inline bool
is_dir_secret(struct broker_view *v, size_t idx)
{
	return secret(v, idx)->as != CONFIG_AS_FILE;
}

/* fs.c */
extern const struct fuse_lowlevel_ops fs_ops;
/* Unpin an open file's snapshot and forget the handle. */
void fs_handle_free(struct fs *fs, struct handle *h);

/* fs_session.c: the inode table. */
/* The inode of (parent, name, dir), made when create; 0: none, or OOM. */
fuse_ino_t fs_ino_of(struct fs *fs, fuse_ino_t parent, const char *name,
    bool dir, bool create);
/* The inode of secret idx of view v; 0 on OOM. */
fuse_ino_t fs_secret_ino(struct fs *fs, struct broker_view *v, size_t idx);
/* What ino stands for in view v: 0, or ENOENT when v has no such node. */
int fs_node_of(struct fs *fs, struct broker_view *v, fuse_ino_t ino,
    struct node *n);

#endif
