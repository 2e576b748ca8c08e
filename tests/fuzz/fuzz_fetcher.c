/*
 * libFuzzer harness for the FUSE process's side of the fetcher's
 * socketpair: what a compromised or broken fetcher may send back. The
 * input is the byte stream from the fetcher; its frames' request ids are
 * set to the id of the call in flight, so that fuzzed frames reach it.
 *
 * Beyond not crashing or hanging: a call ends with 0 or -errno, a value
 * is in locked memory and NUL-terminated after its length, a version is a
 * string, a listing is as long as it says, and once the value and the
 * listing are freed the locked arena is back where it was.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include <secretsfs/backend.h>
#include <secretsfs/fetcher.h>
#include <secretsfs/log.h>
#include <secretsfs/secmem.h>
#include <secretsfs/wire.h>

/* The harness plays the fetcher: it speaks the private protocol. */
#include "../../broker/proc/fetcher_int.h"

static struct backend *be;
static uint32_t next_id;	/* the client numbers its calls from 1 */

static void
init(void)
{
	struct config_backend cb = { .name = "dev", .type = "file",
	    .path = "backends.dev" };
	struct wire_hdr ok = { .type = FETCHER_OK, .id = 1 };
	char why[256];
	int sp[2];

	log_init("fuzz_fetcher", false, true);
	if (secmem_init(8u << 20, why, sizeof(why)) < 0)
		abort();
	secmem_install_json_allocator();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
		abort();
	fetcher_client_init(sp[0], 1);
	/* The OPEN below is call 1: its answer is waiting already. */
	if (write(sp[1], &ok, sizeof(ok)) != (ssize_t)sizeof(ok))
		abort();
	cb.options = json_pack("{ss}", "dir", "/");
	if (backend_open(&cb, &be, why, sizeof(why)) != 0)
		abort();
	json_decref(cb.options);
	next_id = 2;
	/* Its end of the first socket is no longer needed. */
	close(sp[1]);
}

/* Give every whole frame of the stream the id of the call in flight. */
static void
retarget(uint8_t *p, size_t n, uint32_t id)
{
	struct wire_hdr h;
	size_t off = 0;

	while (n - off >= sizeof(h)) {
		memcpy(&h, p + off, sizeof(h));
		if (h.id != 0)
			h.id = id;
		memcpy(p + off, &h, sizeof(h));
		if (h.len > n - off - sizeof(h))
			break;
		off += sizeof(h) + h.len;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct backend_request req = { .ref = "a" };
	struct backend_value v;
	char why[BACKEND_ERR_MAX], **names = NULL;
	size_t used, n = 0, i;
	uint8_t *copy;
	int sp[2], r;
	bool list;

	if (!be)
		init();
	if (size < 1)
		return 0;
	list = data[0] & 1;
	if (data[0] & 2)
		req.field = "k";
	data++;
	size--;
	if (!(copy = malloc(size + 1)))
		abort();
	memcpy(copy, data, size);
	retarget(copy, size, next_id++);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
		abort();
	/* A new "fetcher": its end is ours to write, then it hangs up. */
	fetcher_attach(sp[0], 1);
	if (size && write(sp[1], copy, size) != (ssize_t)size)
		abort();
	shutdown(sp[1], SHUT_WR);
	free(copy);
	used = secmem_used_bytes();

	if (list) {
		r = backend_list(be, "p", &names, &n, why, sizeof(why));
		if (r > 0 || (r < 0 && r < -4095))
			abort();
		if (r == 0) {
			if (!names)
				abort();
			for (i = 0; i < n; i++)
				if (!names[i])
					abort();
			if (names[n])
				abort();
		}
		for (i = 0; i < n; i++)
			free(names[i]);
		free(names);
	} else {
		memset(&v, 0, sizeof(v));
		r = backend_fetch(be, &req, &v, why, sizeof(why));
		if (r > 0 || (r < 0 && r < -4095))
			abort();
		if (r == 0) {
			if (!v.data || !secmem_owns(v.data) ||
			    v.data[v.len] != '\0' ||
			    !memchr(v.version, '\0', sizeof(v.version)))
				abort();
			backend_value_clear(&v);
		}
	}
	if (r < 0 && !memchr(why, '\0', sizeof(why)))
		abort();
	if (secmem_used_bytes() != used)
		abort();
	close(sp[1]);
	return 0;
}
