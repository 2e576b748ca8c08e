/*
 * fetcher: a real fetcher process (forked, serving the file backend)
 * behind the proxies: values, field selection, listing, errors, its death
 * and its replacement, and concurrent calls through the reader thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <jansson.h>

#include <secretsfs/backend.h>
#include <secretsfs/fetcher.h>
#include <secretsfs/secmem.h>

#define ARENA	(4u << 20)

static char dir[] = "/tmp/test_fetcher.XXXXXX";

static void
put(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
}

/* A fetcher process on a new socketpair; returns our end. */
static int
spawn(pid_t *pid)
{
	char why[256];
	int sp[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sp), 0);
	*pid = fork();
	assert_true(*pid >= 0);
	if (*pid == 0) {
		close(sp[0]);
		if (secmem_init_child(ARENA, why, sizeof(why)) < 0)
			_exit(3);
		fetcher_serve(sp[1]);
	}
	close(sp[1]);
	return sp[0];
}

static int
fetch(struct backend *be, const char *ref, const char *field, char *out,
    size_t outlen, char *why, size_t whylen)
{
	struct backend_request req = { .ref = ref, .field = field };
	struct backend_value v;
	int r;

	if ((r = backend_fetch(be, &req, &v, why, whylen)) < 0)
		return r;
	snprintf(out, outlen, "%.*s", (int)v.len, (const char *)v.data);
	/* What the broker relies on: the value is in locked memory. */
	assert_true(secmem_owns(v.data));
	assert_true(v.version[0] != '\0');
	backend_value_clear(&v);
	return 0;
}

struct worker {
	struct backend	*be;
	int		 bad;
};

static void *
hammer(void *arg)
{
	struct worker *w = arg;
	char out[64], why[256];

	for (int i = 0; i < 200; i++)
		if (fetch(w->be, (i & 1) ? "a" : "j", (i & 1) ? NULL : "k",
		    out, sizeof(out), why, sizeof(why)) != 0 ||
		    strcmp(out, (i & 1) ? "alpha" : "v") != 0)
			w->bad++;
	return NULL;
}

static void
test_fetcher_end_to_end(void **state)
{
	struct config_backend cb = { .name = "dev", .type = "file",
	    .path = "backends.dev" };
	struct worker w[8];
	pthread_t t[8];
	struct backend *be = NULL;
	char out[256], why[256], **names = NULL;
	size_t n = 0, i;
	bool sawa = false, sawj = false;
	pid_t pid, pid2;
	int fd, status;

	(void)state;
	put("a", "alpha");
	put("j", "{\"k\":\"v\",\"n\":1}");
	snprintf(out, sizeof(out), "%s/sub", dir);
	assert_int_equal(mkdir(out, 0700), 0);
	put("sub/x", "1");
	put("sub/y", "2");
	fd = spawn(&pid);
	assert_int_equal(fetcher_client_init(fd, pid), 0);
	assert_int_equal(fetcher_pid(), pid);

	cb.options = json_pack("{ss}", "dir", dir);
	assert_int_equal(backend_open(&cb, &be, why, sizeof(why)), 0);
	/* Audit records name the real type, not the proxy. */
	assert_string_equal(backend_type(be), "file");
	assert_string_equal(backend_name(be), "dev");

	assert_int_equal(fetch(be, "a", NULL, out, sizeof(out), why,
	    sizeof(why)), 0);
	assert_string_equal(out, "alpha");
	/* The field is selected once, in the fetcher. */
	assert_int_equal(fetch(be, "j", "k", out, sizeof(out), why,
	    sizeof(why)), 0);
	assert_string_equal(out, "v");
	assert_int_equal(fetch(be, "j", "n", out, sizeof(out), why,
	    sizeof(why)), 0);
	assert_string_equal(out, "1");
	/* The backend's errno and its words come back. */
	why[0] = '\0';
	assert_int_equal(fetch(be, "missing", NULL, out, sizeof(out), why,
	    sizeof(why)), -ENOENT);
	assert_true(why[0] != '\0');
	assert_int_equal(fetch(be, "j", "nope", out, sizeof(out), why,
	    sizeof(why)), -ENOENT);

	assert_int_equal(backend_list(be, "sub", &names, &n, why, sizeof(why)),
	    0);
	assert_int_equal(n, 2);
	for (i = 0; i < n; i++) {
		sawa |= strcmp(names[i], "x") == 0;
		sawj |= strcmp(names[i], "y") == 0;
		free(names[i]);
	}
	free(names);
	assert_true(sawa && sawj);

	/* A backend the fetcher cannot open fails to open here too. */
	{
		struct config_backend bad = cb;
		struct backend *nb = NULL;

		bad.options = json_pack("{ss}", "dir", "/nonexistent/dir");
		why[0] = '\0';
		assert_true(backend_open(&bad, &nb, why, sizeof(why)) < 0);
		assert_null(nb);
		assert_true(why[0] != '\0');
		json_decref(bad.options);
	}

	/* The reader thread takes over; eight threads at once. */
	assert_int_equal(fetcher_start_reader(-1, NULL, NULL), 0);
	for (i = 0; i < 8; i++) {
		w[i] = (struct worker){ be, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].bad, 0);
	}

	/* The fetcher dies: calls fail, they do not hang. */
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	for (i = 0; i < 100 && fetcher_pid() != 0; i++)
		usleep(10000);
	assert_int_equal(fetcher_pid(), 0);
	why[0] = '\0';
	assert_int_equal(fetch(be, "a", NULL, out, sizeof(out), why,
	    sizeof(why)), -EIO);
	assert_non_null(strstr(why, "fetcher"));

	/* A new one: the open backend is opened in it again, same handle. */
	fd = spawn(&pid2);
	fetcher_attach(fd, pid2);
	assert_int_equal(fetcher_pid(), pid2);
	assert_int_equal(fetch(be, "a", NULL, out, sizeof(out), why,
	    sizeof(why)), 0);
	assert_string_equal(out, "alpha");

	backend_close(be);
	fetcher_client_shutdown();
	/*
	 * Its socket closed, the fetcher exits by itself, not by a signal.
	 * (Not its status: under valgrind that is valgrind's, which counts
	 * the reader thread's buffer a fork left behind as lost.)
	 */
	assert_int_equal(waitpid(pid2, &status, 0), pid2);
	assert_true(WIFEXITED(status));
	json_decref(cb.options);
	backend_set_remote(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fetcher_end_to_end),
	};
	char why[256];
	char path[300];
	int r;

	if (secmem_init(ARENA, why, sizeof(why)) < 0) {
		fprintf(stderr, "%s\n", why);
		return 1;
	}
	secmem_install_json_allocator();
	if (!mkdtemp(dir))
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(path, sizeof(path), "%s/a", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/j", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/sub/x", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/sub/y", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/sub", dir);
	rmdir(path);
	rmdir(dir);
	secmem_shutdown();
	return r;
}
