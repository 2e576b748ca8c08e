/*
 * Key, token and config files: refused when anyone but the owner may read
 * or write them, read straight into the locked arena.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <secretsfs/secfile.h>
#include <secretsfs/secmem.h>

int
secfile_check_private(int fd, const char *path, char *errbuf, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) != 0) {
		int e = errno;
		snprintf(errbuf, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(errbuf, errlen, "%s: not a regular file", path);
		return -EINVAL;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(errbuf, errlen, "%s: owned by uid %u; must be owned by "
		    "root or uid %u", path, (unsigned)st.st_uid,
		    (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(errbuf, errlen, "%s: mode %04o lets group or other "
		    "access it; run `chmod 600 %s`", path,
		    (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	return 0;
}

int
secfile_read(const char *path, unsigned flags, size_t max_bytes,
    uint8_t **out, size_t *len, mode_t *mode, char *errbuf, size_t errlen)
{
	int oflags = O_RDONLY | O_CLOEXEC;
	struct stat st;
	uint8_t *buf;
	size_t have = 0;
	ssize_t n;
	int fd, r;

	*out = NULL;
	*len = 0;
	if (flags & SECFILE_NOFOLLOW)
		oflags |= O_NOFOLLOW;
	if ((fd = open(path, oflags)) < 0) {
		r = -errno;
		snprintf(errbuf, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	if ((flags & SECFILE_PRIVATE) &&
	    (r = secfile_check_private(fd, path, errbuf, errlen)) < 0)
		goto out;
	if (fstat(fd, &st) != 0) {
		r = -errno;
		snprintf(errbuf, errlen, "%s: %s", path, strerror(-r));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(errbuf, errlen, "%s: not a regular file", path);
		r = -EINVAL;
		goto out;
	}
	if ((size_t)st.st_size > max_bytes) {
		snprintf(errbuf, errlen, "%s: larger than %zu bytes", path,
		    max_bytes);
		r = -EFBIG;
		goto out;
	}
	buf = (flags & SECFILE_HEAP) ? malloc((size_t)st.st_size + 1) :
	    secmem_alloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		snprintf(errbuf, errlen, "%s: %s", path, (flags & SECFILE_HEAP) ?
		    "out of memory" : "locked memory exhausted");
		r = -ENOMEM;
		goto out;
	}
	/* The size may change under us; read what fits and no more. */
	while (have < (size_t)st.st_size &&
	    (n = read(fd, buf + have, (size_t)st.st_size - have)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			snprintf(errbuf, errlen, "%s: %s", path, strerror(-r));
			secfile_free(buf, have, flags);
			goto out;
		}
		have += (size_t)n;
	}
	buf[have] = '\0';
	if (mode)
		*mode = st.st_mode;
	*out = buf;
	*len = have;
	r = 0;
out:
	close(fd);
	return r;
}

void
secfile_free(uint8_t *buf, size_t len, unsigned flags)
{
	if (buf == NULL)
		return;
	if (flags & SECFILE_HEAP) {
		explicit_bzero(buf, len + 1);
		free(buf);
	} else {
		secmem_free(buf);
	}
}

int
secfile_read_private(const char *path, size_t max_bytes, uint8_t **out,
    size_t *len, char *errbuf, size_t errlen)
{
	return secfile_read(path, SECFILE_PRIVATE | SECFILE_NOFOLLOW,
	    max_bytes, out, len, NULL, errbuf, errlen);
}
