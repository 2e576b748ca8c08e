/*
 * wire: the framing of the small typed messages that secretsfs's
 * processes exchange over their socketpairs (the FUSE process, the
 * privileged parent and the fetcher).
 *
 * A message is a fixed header (type, request id, payload length) and a
 * payload of fields; a file descriptor may ride along (SCM_RIGHTS). The
 * sockets are SOCK_STREAM, so a payload may be large (a secret value);
 * readers never trust a length beyond WIRE_MAX_PAYLOAD.
 *
 * Payload buffers are the caller's: a payload that holds secret bytes is
 * built and received in locked memory the kernel can read (secmem_bounce)
 * and wiped by the caller after use.
 */
#ifndef SECRETSFS_WIRE_H
#define SECRETSFS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_MAX_PAYLOAD	(64u << 20)

struct wire_hdr {
	uint32_t	type;
	uint32_t	id;	/* request id; a reply carries its request's */
	uint32_t	len;	/* payload bytes that follow */
	uint32_t	pad;
};

/*
 * Send one message; passfd >= 0 rides along. 0, or -errno (-EPIPE when
 * the peer is gone). Safe against short writes; not thread-safe on one
 * fd: callers serialise senders.
 */
int wire_send(int fd, uint32_t type, uint32_t id, const void *payload,
    size_t len, int passfd);

/*
 * Read a header; a descriptor that rode along lands in *passfd (else -1)
 * with O_CLOEXEC. 0, -ECONNRESET at a clean end of stream, -EPROTO on a
 * length over WIRE_MAX_PAYLOAD, or -errno.
 */
int wire_recv_hdr(int fd, struct wire_hdr *h, int *passfd);

/* Read exactly len payload bytes into buf. 0 or -errno (-ECONNRESET). */
int wire_recv_body(int fd, void *buf, size_t len);

/*
 * The next connection on the listening socket lfd (SOCK_CLOEXEC), its
 * reads and writes bounded by io_timeout_s; -1 once wake_fd is readable
 * (the server is stopping) or poll fails for good. The one accept loop of
 * the control socket and the metrics listener.
 */
int wire_accept(int lfd, int wake_fd, int io_timeout_s);

/*
 * Field encoding inside a payload: little-endian on one host, so plain
 * native integers; strings and byte runs as a u32 length then the bytes.
 * A writer over a caller's buffer; overflow sets ->err and is reported
 * by the caller after the last put.
 */
struct wire_out {
	uint8_t		*buf;
	size_t		 cap;
	size_t		 len;
	bool		 err;
};

void wire_put_u32(struct wire_out *o, uint32_t v);
void wire_put_u64(struct wire_out *o, uint64_t v);
/* NULL is sent as a zero-length string with a flag: see wire_get_str. */
void wire_put_str(struct wire_out *o, const char *s);
void wire_put_bytes(struct wire_out *o, const void *p, size_t n);

struct wire_in {
	const uint8_t	*buf;
	size_t		 len;
	size_t		 off;
	bool		 err;
};

uint32_t wire_get_u32(struct wire_in *in);
uint64_t wire_get_u64(struct wire_in *in);
/*
 * A string copied into dst (NUL-terminated); *was_null says whether the
 * sender put NULL. Too long for dst, or embedded NUL: ->err.
 */
void wire_get_str(struct wire_in *in, char *dst, size_t dstlen,
    bool *was_null);
/* A byte run, pointed at in place (valid while the buffer is). */
const uint8_t *wire_get_bytes(struct wire_in *in, size_t *n);

#endif
