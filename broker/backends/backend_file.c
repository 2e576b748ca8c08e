/*
 * The `file` backend: secrets from a directory of files, for development
 * and the quickstart. The directory must be private to its owner; values
 * are read straight into the arena.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <secretsfs/backend.h>
#include <secretsfs/secmem.h>

#define FILE_VALUE_MAX	(1u << 20)

struct file_backend {
	int	 dirfd;
	char	*dir;
};

static int
file_validate(const json_t *opts, const char *path, struct cfg_err *err)
{
	static const char *const keys[] = { "type", "dir", NULL };
	json_t *dir = json_object_get(opts, "dir");
	char p[CFG_PATH_MAX];
	int r;

	if ((r = cfg_check_keys(opts, path, keys, err)) < 0)
		return r;
	if (!dir)
		return cfg_err_set(err, path, "missing required key \"dir\"");
	cfg_path_key(p, sizeof(p), path, "dir");
	if (!json_is_string(dir) || json_string_value(dir)[0] != '/')
		return cfg_err_set(err, p, "expected an absolute path");
	return 0;
}

static int
file_open(const struct config_backend *cfg, void **impl, char *errbuf,
    size_t errlen)
{
	const char *dir = json_string_value(json_object_get(cfg->options, "dir"));
	struct file_backend *fb;
	struct stat st;
	int fd, r;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		r = -errno;
		snprintf(errbuf, errlen, "%s: %s", dir, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) != 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(errbuf, errlen, "%s: mode %04o lets group or other "
		    "into the secrets directory; run `chmod 700 %s`", dir,
		    (unsigned)(st.st_mode & 07777), dir);
		close(fd);
		return -EPERM;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(errbuf, errlen, "%s: owned by uid %u, not by root",
		    dir, (unsigned)st.st_uid);
		close(fd);
		return -EPERM;
	}
	if (!(fb = calloc(1, sizeof(*fb))) || !(fb->dir = strdup(dir))) {
		free(fb);
		close(fd);
		return -ENOMEM;
	}
	fb->dirfd = fd;
	*impl = fb;
	return 0;
}

/* A reference names a file below the directory, never above it. */
static bool
safe_ref(const char *ref)
{
	const char *p = ref;

	if (*ref == '/' || *ref == '\0')
		return false;
	while (*p) {
		size_t n = strcspn(p, "/");

		if ((n == 2 && strncmp(p, "..", 2) == 0) ||
		    (n == 1 && *p == '.') || n == 0)
			return false;
		p += n;
		if (*p == '/')
			p++;
	}
	return true;
}

static int
file_fetch(void *impl, const struct backend_request *req,
    struct backend_value *out, char *errbuf, size_t errlen)
{
	struct file_backend *fb = impl;
	struct stat st;
	size_t have = 0;
	ssize_t n;
	int fd, r;

	if (!safe_ref(req->ref)) {
		snprintf(errbuf, errlen, "reference \"%s\" leaves %s", req->ref,
		    fb->dir);
		return -EINVAL;
	}
	if (req->version) {
		snprintf(errbuf, errlen, "the file backend keeps no versions");
		return -ENOENT;
	}
	fd = openat(fb->dirfd, req->ref, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		snprintf(errbuf, errlen, "%s/%s: %s", fb->dir, req->ref,
		    strerror(-r));
		return r == -ENOENT ? -ENOENT : r == -EACCES ? -EACCES : -EIO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(errbuf, errlen, "%s/%s: not a regular file", fb->dir,
		    req->ref);
		close(fd);
		return -EIO;
	}
	if ((size_t)st.st_size > FILE_VALUE_MAX) {
		snprintf(errbuf, errlen, "%s/%s: larger than %u bytes", fb->dir,
		    req->ref, FILE_VALUE_MAX);
		close(fd);
		return -EIO;
	}
	/* One byte more than expected tells us the file grew under us. */
	if (!(out->data = secmem_alloc((size_t)st.st_size + 2))) {
		close(fd);
		snprintf(errbuf, errlen, "locked memory exhausted");
		return -ENOMEM;
	}
	while (have < (size_t)st.st_size + 1 &&
	    (n = read(fd, out->data + have, (size_t)st.st_size + 1 - have))) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			snprintf(errbuf, errlen, "%s/%s: %s", fb->dir, req->ref,
			    strerror(-r));
			close(fd);
			backend_value_clear(out);
			return -EIO;
		}
		have += (size_t)n;
	}
	close(fd);
	if (have != (size_t)st.st_size) {
		snprintf(errbuf, errlen, "%s/%s: changed while being read",
		    fb->dir, req->ref);
		backend_value_clear(out);
		return -EAGAIN;
	}
	out->data[have] = '\0';
	out->len = have;
	out->changed = st.st_mtim;
	/* The mtime, not a digest: a hash of a password would be a hint. */
	snprintf(out->version, sizeof(out->version), "%lld.%09ld",
	    (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	return 0;
}

/* The entries of a sub-directory: files as they are, folders with '/'. */
static int
file_list(void *impl, const char *prefix, char ***names, size_t *n,
    char *errbuf, size_t errlen)
{
	struct file_backend *fb = impl;
	struct dirent *de;
	char **grown;
	DIR *d;
	int fd, r = 0;

	if (!safe_ref(prefix)) {
		snprintf(errbuf, errlen, "prefix \"%s\" leaves %s", prefix,
		    fb->dir);
		return -EINVAL;
	}
	fd = openat(fb->dirfd, prefix, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW);
	if (fd < 0 || !(d = fdopendir(fd))) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		snprintf(errbuf, errlen, "%s/%s: %s", fb->dir, prefix,
		    strerror(-r));
		return r == -ENOENT ? -ENOENT : -EIO;
	}
	while ((de = readdir(d))) {
		bool folder = de->d_type == DT_DIR;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    (de->d_type != DT_REG && !folder))
			continue;
		if (!(grown = realloc(*names, (*n + 1) * sizeof(*grown)))) {
			r = -ENOMEM;
			break;
		}
		*names = grown;
		if (asprintf(&grown[*n], "%s%s", de->d_name, folder ? "/" : "") < 0) {
			r = -ENOMEM;
			break;
		}
		(*n)++;
	}
	closedir(d);
	return r;
}

static void
file_close(void *impl)
{
	struct file_backend *fb = impl;

	if (!fb)
		return;
	close(fb->dirfd);
	free(fb->dir);
	free(fb);
}

const struct backend_ops backend_file_ops = {
	.type = "file",
	.validate = file_validate,
	.open = file_open,
	.fetch = file_fetch,
	.list = file_list,
	.close = file_close,
};
