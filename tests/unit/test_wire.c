/*
 * wire: framing and fields over a real socketpair, descriptors passed
 * along, large payloads, and every kind of malformed input.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <secretsfs/wire.h>

static int sp[2];

static int
setup(void **state)
{
	(void)state;
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp);
}

static int
teardown(void **state)
{
	(void)state;
	close(sp[0]);
	close(sp[1]);
	return 0;
}

static void
test_fields_round_trip(void **state)
{
	uint8_t buf[256], in[256];
	struct wire_out o = { buf, sizeof(buf), 0, false };
	struct wire_hdr h;
	struct wire_in r;
	char s[32];
	bool was_null;
	const uint8_t *p;
	size_t n;
	int fd;

	(void)state;
	wire_put_u32(&o, 7);
	wire_put_u64(&o, UINT64_C(0x1122334455667788));
	wire_put_str(&o, "ref/one");
	wire_put_str(&o, NULL);
	wire_put_bytes(&o, "a\0b", 3);
	assert_false(o.err);
	assert_int_equal(wire_send(sp[0], 3, 42, buf, o.len, -1), 0);

	assert_int_equal(wire_recv_hdr(sp[1], &h, &fd), 0);
	assert_int_equal(fd, -1);
	assert_int_equal(h.type, 3);
	assert_int_equal(h.id, 42);
	assert_int_equal(h.len, o.len);
	assert_int_equal(wire_recv_body(sp[1], in, h.len), 0);
	r = (struct wire_in){ in, h.len, 0, false };
	assert_int_equal(wire_get_u32(&r), 7);
	assert_true(wire_get_u64(&r) == UINT64_C(0x1122334455667788));
	wire_get_str(&r, s, sizeof(s), &was_null);
	assert_string_equal(s, "ref/one");
	assert_false(was_null);
	wire_get_str(&r, s, sizeof(s), &was_null);
	assert_true(was_null);
	p = wire_get_bytes(&r, &n);
	assert_non_null(p);
	assert_int_equal(n, 3);
	assert_memory_equal(p, "a\0b", 3);
	assert_false(r.err);
	/* Past the end: an error, never a read beyond the buffer. */
	assert_int_equal(wire_get_u32(&r), 0);
	assert_true(r.err);
}

static void
test_descriptor_rides_along(void **state)
{
	struct wire_hdr h;
	struct stat a, b;
	char body;
	int fd, got;

	(void)state;
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(wire_send(sp[0], 1, 0, "x", 1, fd), 0);
	assert_int_equal(wire_recv_hdr(sp[1], &h, &got), 0);
	assert_true(got >= 0 && got != fd);
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(fstat(got, &b), 0);
	assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	/* Received close-on-exec, so no child inherits it by accident. */
	assert_true(fcntl(got, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(h.len, 1);
	assert_int_equal(wire_recv_body(sp[1], &body, 1), 0);
	assert_int_equal(body, 'x');
	close(fd);
	close(got);
}

struct big {
	uint8_t	*p;
	size_t	 n;
	int	 r;
};

static void *
sender(void *arg)
{
	struct big *b = arg;

	b->r = wire_send(sp[0], 9, 1, b->p, b->n, -1);
	return NULL;
}

static void
test_large_payload_arrives_whole(void **state)
{
	struct big b = { .n = 4u << 20 };
	struct wire_hdr h;
	pthread_t t;
	uint8_t *in;
	size_t i;
	int fd;

	(void)state;
	b.p = malloc(b.n);
	in = malloc(b.n);
	assert_non_null(b.p);
	assert_non_null(in);
	for (i = 0; i < b.n; i++)
		b.p[i] = (uint8_t)(i * 131 + 7);
	/* Far beyond the socket buffer: the writer blocks until we read. */
	assert_int_equal(pthread_create(&t, NULL, sender, &b), 0);
	assert_int_equal(wire_recv_hdr(sp[1], &h, &fd), 0);
	assert_int_equal(h.len, b.n);
	assert_int_equal(wire_recv_body(sp[1], in, h.len), 0);
	pthread_join(t, NULL);
	assert_int_equal(b.r, 0);
	assert_memory_equal(in, b.p, b.n);
	free(b.p);
	free(in);
}

static void
test_hostile_lengths_and_strings(void **state)
{
	struct wire_hdr h = { .type = 1, .len = WIRE_MAX_PAYLOAD + 1 };
	uint8_t buf[64];
	struct wire_out o = { buf, sizeof(buf), 0, false };
	struct wire_in r;
	char s[8];
	size_t n;
	int fd;

	(void)state;
	/* A header claiming more than the cap is refused before any read. */
	assert_int_equal(write(sp[0], &h, sizeof(h)), (ssize_t)sizeof(h));
	assert_int_equal(wire_recv_hdr(sp[1], &h, &fd), -EPROTO);
	assert_int_equal(wire_send(sp[0], 1, 0, buf, WIRE_MAX_PAYLOAD + 1, -1),
	    -EMSGSIZE);

	/* A string longer than the room for it. */
	wire_put_str(&o, "0123456789");
	r = (struct wire_in){ buf, o.len, 0, false };
	wire_get_str(&r, s, sizeof(s), NULL);
	assert_true(r.err);
	assert_string_equal(s, "");

	/* An embedded NUL would cut a name short: refused. */
	o = (struct wire_out){ buf, sizeof(buf), 0, false };
	wire_put_bytes(&o, "ab\0cd", 5);
	r = (struct wire_in){ buf, o.len, 0, false };
	wire_get_str(&r, s, sizeof(s), NULL);
	assert_true(r.err);

	/* A NULL where the reader does not allow one. */
	o = (struct wire_out){ buf, sizeof(buf), 0, false };
	wire_put_str(&o, NULL);
	r = (struct wire_in){ buf, o.len, 0, false };
	wire_get_str(&r, s, sizeof(s), NULL);
	assert_true(r.err);

	/* A byte run whose length runs past the payload. */
	o = (struct wire_out){ buf, sizeof(buf), 0, false };
	wire_put_u32(&o, 1000);
	r = (struct wire_in){ buf, o.len, 0, false };
	assert_null(wire_get_bytes(&r, &n));
	assert_int_equal(n, 0);
	assert_true(r.err);

	/* A writer out of room says so and writes nothing past its buffer. */
	o = (struct wire_out){ buf, 6, 0, false };
	wire_put_str(&o, "abc");
	assert_true(o.err);
	assert_true(o.len <= 6);
}

static void
test_end_of_stream(void **state)
{
	struct wire_hdr h;
	uint8_t b[8];
	int fd;

	(void)state;
	/* Half a header, then the peer is gone. */
	assert_int_equal(write(sp[0], "abcd", 4), 4);
	shutdown(sp[0], SHUT_WR);
	assert_int_equal(wire_recv_hdr(sp[1], &h, &fd), -ECONNRESET);
	assert_int_equal(wire_recv_body(sp[1], b, sizeof(b)), -ECONNRESET);
	/* Writing to a closed peer: an error, not SIGPIPE. */
	close(sp[1]);
	sp[1] = open("/dev/null", O_RDONLY);
	assert_int_equal(wire_send(sp[0], 1, 0, "x", 1, -1), -EPIPE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fields_round_trip, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_descriptor_rides_along,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_payload_arrives_whole,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_lengths_and_strings,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_end_of_stream, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
