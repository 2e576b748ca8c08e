/*
 * What the files of the control module share: the server (control.c) and
 * the CLI client (control_cli.c) both write whole buffers to a socket.
 */
#ifndef SECRETSFS_CONTROL_INT_H
#define SECRETSFS_CONTROL_INT_H

#include <stddef.h>

/* Write all of buf to fd; a peer that went away is not an error here. */
void control_write_all(int fd, const char *buf, size_t len);

#endif
