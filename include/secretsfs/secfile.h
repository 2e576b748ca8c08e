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

/*
 * Check the file open on fd. Returns 0, -EPERM when group/other may read
 * or write it or it has the wrong owner (why in errbuf), -EINVAL when it is
 * not a regular file, or -errno from fstat.
 */
int secfile_check_private(int fd, const char *path, char *errbuf, size_t errlen);

/*
 * Read a whole private file into the locked arena. On success *out is a
 * secmem block of *len bytes plus a NUL (the caller frees it with
 * secmem_free). Files over max_bytes give -EFBIG.
 */
int secfile_read_private(const char *path, size_t max_bytes, uint8_t **out,
    size_t *len, char *errbuf, size_t errlen);

#endif
