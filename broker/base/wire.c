/*
 * Framing for the socketpairs between secretsfs's processes.
 */
#include <errno.h>
#include <sys/time.h>
#include <poll.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <secretsfs/wire.h>

int
wire_send(int fd, uint32_t type, uint32_t id, const void *payload,
    size_t len, int passfd)
{
	struct wire_hdr h = { .type = type, .id = id, .len = (uint32_t)len };
	union {
		char		buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr	align;
	} cm;
	struct iovec iov[2];
	struct msghdr msg;
	size_t total = sizeof(h) + len, done = 0;
	ssize_t n;

	if (len > WIRE_MAX_PAYLOAD)
		return -EMSGSIZE;
	while (done < total) {
		size_t skip = done;
		int niov = 0;

		memset(&msg, 0, sizeof(msg));
		if (skip < sizeof(h)) {
			iov[niov].iov_base = (char *)&h + skip;
			iov[niov++].iov_len = sizeof(h) - skip;
			skip = 0;
		} else
			skip -= sizeof(h);
		if (len > skip) {
			iov[niov].iov_base = (char *)payload + skip;
			iov[niov++].iov_len = len - skip;
		}
		msg.msg_iov = iov;
		msg.msg_iovlen = niov;
		/* The descriptor goes with the first byte of the message. */
		if (done == 0 && passfd >= 0) {
			struct cmsghdr *c;

			memset(&cm, 0, sizeof(cm));
			msg.msg_control = cm.buf;
			msg.msg_controllen = sizeof(cm.buf);
			c = CMSG_FIRSTHDR(&msg);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &passfd, sizeof(int));
		}
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

static int
read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = read(fd, (char *)buf + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		done += (size_t)n;
	}
	return 0;
}

int
wire_recv_hdr(int fd, struct wire_hdr *h, int *passfd)
{
	union {
		char		buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr	align;
	} cm;
	struct iovec iov = { .iov_base = h, .iov_len = sizeof(*h) };
	struct msghdr msg;
	struct cmsghdr *c;
	ssize_t n;
	int r;

	*passfd = -1;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(passfd, CMSG_DATA(c), sizeof(int));
	if ((size_t)n < sizeof(*h) &&
	    (r = read_full(fd, (char *)h + n, sizeof(*h) - (size_t)n)) < 0)
		goto fail;
	if (h->len > WIRE_MAX_PAYLOAD) {
		r = -EPROTO;
		goto fail;
	}
	return 0;
fail:
	if (*passfd >= 0)
		close(*passfd);
	*passfd = -1;
	return r;
}

int
wire_recv_body(int fd, void *buf, size_t len)
{
	return read_full(fd, buf, len);
}

static void
put(struct wire_out *o, const void *p, size_t n)
{
	if (o->err || n > o->cap - o->len) {
		o->err = true;
		return;
	}
	if (n)
		memcpy(o->buf + o->len, p, n);
	o->len += n;
}

void
wire_put_u32(struct wire_out *o, uint32_t v)
{
	put(o, &v, sizeof(v));
}

void
wire_put_u64(struct wire_out *o, uint64_t v)
{
	put(o, &v, sizeof(v));
}

void
wire_put_str(struct wire_out *o, const char *s)
{
	/* Length UINT32_MAX marks NULL. */
	if (!s) {
		wire_put_u32(o, UINT32_MAX);
		return;
	}
	wire_put_bytes(o, s, strlen(s));
}

void
wire_put_bytes(struct wire_out *o, const void *p, size_t n)
{
	if (n >= UINT32_MAX) {
		o->err = true;
		return;
	}
	wire_put_u32(o, (uint32_t)n);
	put(o, p, n);
}

static const uint8_t *
take(struct wire_in *in, size_t n)
{
	const uint8_t *p;

	if (in->err || n > in->len - in->off) {
		in->err = true;
		return NULL;
	}
	p = in->buf + in->off;
	in->off += n;
	return p;
}

uint32_t
wire_get_u32(struct wire_in *in)
{
	const uint8_t *p = take(in, sizeof(uint32_t));
	uint32_t v = 0;

	if (p)
		memcpy(&v, p, sizeof(v));
	return v;
}

uint64_t
wire_get_u64(struct wire_in *in)
{
	const uint8_t *p = take(in, sizeof(uint64_t));
	uint64_t v = 0;

	if (p)
		memcpy(&v, p, sizeof(v));
	return v;
}

void
wire_get_str(struct wire_in *in, char *dst, size_t dstlen, bool *was_null)
{
	uint32_t n = wire_get_u32(in);
	const uint8_t *p;

	dst[0] = '\0';
	if (was_null)
		*was_null = false;
	if (in->err)
		return;
	if (n == UINT32_MAX) {
		if (was_null)
			*was_null = true;
		else
			in->err = true;
		return;
	}
	if (n >= dstlen || !(p = take(in, n)) || memchr(p, '\0', n)) {
		in->err = true;
		return;
	}
	memcpy(dst, p, n);
	dst[n] = '\0';
}

const uint8_t *
wire_get_bytes(struct wire_in *in, size_t *n)
{
	uint32_t len = wire_get_u32(in);
	const uint8_t *p;

	*n = 0;
	if (in->err || len == UINT32_MAX || !(p = take(in, len))) {
		in->err = true;
		return NULL;
	}
	*n = len;
	return p;
}

int
wire_accept(int lfd, int wake_fd, int io_timeout_s)
{
	struct timeval tv = { .tv_sec = io_timeout_s };
	struct pollfd pfd[2];
	int fd;

	for (;;) {
		pfd[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = wake_fd, .events = POLLIN };
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (pfd[1].revents)
			return -1;
		if (!(pfd[0].revents & POLLIN))
			continue;
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		return fd;
	}
}
