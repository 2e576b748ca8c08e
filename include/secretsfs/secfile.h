/*
 * secfile: reading files that hold keys, tokens and configuration.
 *
 * Such a file must be a regular file, owned by root or by the effective
 * user, and neither readable nor writable by group or other. Anything else
 * is refused before a byte is read.
 */
#ifndef SECRETSFS_SECFILE_H
#define SECRETSFS_SECFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Check the file open on fd. Returns 0, -EPERM when group/other may read
 * or write it or it has the wrong owner (why in errbuf), -EINVAL when it is
 * not a regular file, or -errno from fstat.
 */
int secfile_check_private(int fd, const char *path, char *errbuf, size_t errlen);

/* How secfile_read opens and keeps a file. */
enum {
	/* Refuse it unless secfile_check_private passes. */
	SECFILE_PRIVATE = 1u << 0,
	/* Refuse a symbolic link as the last component. */
	SECFILE_NOFOLLOW = 1u << 1,
	/*
	 * Read into the heap, not the locked arena, for files too large for
	 * it (the config); secfile_free still wipes the bytes.
	 */
	SECFILE_HEAP = 1u << 2,
};

/*
 * The one whole-file reader. Reads the regular file at path into the locked
 * arena (or the heap with SECFILE_HEAP): on success *out holds *len bytes
 * plus a NUL, released with secfile_free(*out, *len, flags). When mode is
 * not NULL it receives the file's st_mode, so a caller that reads any file
 * can still refuse one that turns out to hold a key. Errors, with the path
 * first in errbuf: -errno from open or read, -EINVAL for a non-regular
 * file, -EPERM (SECFILE_PRIVATE), -EFBIG over max_bytes, -ENOMEM.
 */
int secfile_read(const char *path, unsigned flags, size_t max_bytes,
    uint8_t **out, size_t *len, mode_t *mode, char *errbuf, size_t errlen);

/* Wipe and release what secfile_read returned with the same flags. */
void secfile_free(uint8_t *buf, size_t len, unsigned flags);

/*
 * A key or token file: secfile_read with SECFILE_PRIVATE|SECFILE_NOFOLLOW,
 * released with secmem_free.
 */
int secfile_read_private(const char *path, size_t max_bytes, uint8_t **out,
    size_t *len, char *errbuf, size_t errlen);

#endif
