/*
 * sandbox: each role's seccomp filter, installed in a child process that
 * then tries what its role may and may not do. Forbidden calls must kill
 * the child with SIGSYS; refused address families must fail cleanly.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include <secretsfs/sandbox.h>

/* Run fn in a child under the role's filter; its wait status. */
static int
in_sandbox(enum sandbox_role role, int (*fn)(void))
{
	char why[256];
	int status;
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (sandbox_seccomp(role, why, sizeof(why)) < 0)
			_exit(100);
		_exit(fn());
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void *
thread_main(void *arg)
{
	return arg;
}

/* What both roles need: threads (clone3 refused, glibc falls back to clone), fork. */
static int
threads_and_fork(void)
{
	static int token;
	pthread_t t;
	void *ret = NULL;
	pid_t pid;

	if (pthread_create(&t, NULL, thread_main, &token) != 0 ||
	    pthread_join(t, &ret) != 0 || ret != &token)
		return 1;
	/* (No wait4: neither role waits for children; init reaps it.) */
	if ((pid = fork()) < 0)
		return 2;
	if (pid == 0)
		_exit(0);
	return 0;
}

static int
fuse_sockets(void)
{
	int fd;

	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
		return 1;
	close(fd);
	/* No network from the FUSE process. */
	if (socket(AF_INET, SOCK_STREAM, 0) != -1 || errno != EAFNOSUPPORT)
		return 2;
	if (socket(AF_INET6, SOCK_DGRAM, 0) != -1 || errno != EAFNOSUPPORT)
		return 3;
	return 0;
}

static int
fetcher_sockets(void)
{
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return 1;
	close(fd);
	if ((fd = socket(AF_INET6, SOCK_STREAM, 0)) < 0)
		return 2;
	close(fd);
	if (socket(AF_PACKET, SOCK_RAW, 0) != -1 || errno != EAFNOSUPPORT)
		return 3;
	return 0;
}

/* The FUSE process asking the kubelet: TCP too, still no raw packets. */
static int
fuse_kubelet_sockets(void)
{
	int fd;

	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
		return 1;
	close(fd);
	if (fetcher_sockets() != 0)
		return 2;
	return 0;
}

static int
new_user_namespace_by_clone(void)
{
	/* Never returns: the filter kills us first. */
	syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	return 0;
}

static int
new_user_namespace_by_unshare(void)
{
	unshare(CLONE_NEWUSER);
	return 0;
}

static int
mount_something(void)
{
	syscall(SYS_mount, "none", "/", "tmpfs", 0, NULL);
	return 0;
}

static int
trace_someone(void)
{
	syscall(SYS_ptrace, 0, 0, 0, 0);
	return 0;
}

static void
assert_killed(int status)
{
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSYS);
}

static void
assert_ok(int status)
{
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_roles_allow_their_work(void **state)
{
	(void)state;
	assert_ok(in_sandbox(SANDBOX_FUSE, threads_and_fork));
	assert_ok(in_sandbox(SANDBOX_FETCHER, threads_and_fork));
	assert_ok(in_sandbox(SANDBOX_FUSE, fuse_sockets));
	assert_ok(in_sandbox(SANDBOX_FETCHER, fetcher_sockets));
	assert_ok(in_sandbox(SANDBOX_FUSE_KUBELET, threads_and_fork));
	assert_ok(in_sandbox(SANDBOX_FUSE_KUBELET, fuse_kubelet_sockets));
}

static void
test_forbidden_calls_kill(void **state)
{
	enum sandbox_role roles[] = { SANDBOX_FUSE, SANDBOX_FETCHER,
	    SANDBOX_FUSE_KUBELET };

	(void)state;
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		assert_killed(in_sandbox(roles[i], new_user_namespace_by_clone));
		assert_killed(in_sandbox(roles[i],
		    new_user_namespace_by_unshare));
		assert_killed(in_sandbox(roles[i], mount_something));
	}
#if !defined(__SANITIZE_ADDRESS__)
	/* Sanitizer builds allow ptrace: their leak check stops the world. */
	assert_killed(in_sandbox(SANDBOX_FETCHER, trace_someone));
#else
	(void)trace_someone;
#endif
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roles_allow_their_work),
		cmocka_unit_test(test_forbidden_calls_kill),
	};

	/*
	 * valgrind makes system calls of its own inside the sandboxed child,
	 * which the filters rightly refuse; the normal and sanitizer runs of
	 * the unit suite cover this file.
	 */
	if (RUNNING_ON_VALGRIND) {
		fprintf(stderr, "test_sandbox: skipped under valgrind\n");
		return 77;	/* meson's "skipped" */
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
