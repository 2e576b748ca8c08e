/*
 * secmem: wiping, accounting, the guard pages and the canaries. Death
 * tests run in a forked child that maps an arena of its own: the parent's
 * arena is not inherited across fork by design.
 */
#include <errno.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <jansson.h>

#include <secretsfs/secmem.h>

#define ARENA	(1u << 20)

static void
ensure_init(void)
{
	char why[512];
	void *start;
	size_t len;

	secmem_arena_range(&start, &len);
	if (start)
		return;
	assert_int_equal(secmem_init(ARENA, why, sizeof(why)), 0);
}

/* Run fn in a child; return its wait status. */
static int
in_child(void (*fn)(int wfd), char *msg, size_t msglen)
{
	int p[2], status;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		/* Keep the expected crash out of the test output and off disk. */
		struct rlimit rl = { 0, 0 };
		setrlimit(RLIMIT_CORE, &rl);
		/* cmocka traps these; the child must die of them. */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGABRT, SIG_DFL);
		fn(p[1]);
		_exit(0);
	}
	close(p[1]);
	n = read(p[0], msg, msglen - 1);
	msg[n > 0 ? n : 0] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void
child_small_memlock(int wfd)
{
	struct rlimit rl = { 64 * 1024, 64 * 1024 };
	char why[512] = "";
	int r;

	/* Without CAP_IPC_LOCK the limit applies: become nobody. */
	if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0 || setgroups(0, NULL) != 0 ||
	    setgid(65534) != 0 || setuid(65534) != 0)
		_exit(3);
	r = secmem_init(16u << 20, why, sizeof(why));
	dprintf(wfd, "%d %s", r, why);
}

static void
test_memlock_too_small_names_the_limit(void **state)
{
	char msg[1024];
	int status;

	(void)state;
	status = in_child(child_small_memlock, msg, sizeof(msg));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(atoi(msg) < 0);
	assert_non_null(strstr(msg, "RLIMIT_MEMLOCK"));
	assert_non_null(strstr(msg, "ulimit -l"));
}

static void
child_touch_past_end(int wfd)
{
	char why[512];
	uint8_t *p;
	size_t len;

	if (secmem_init(ARENA, why, sizeof(why)) != 0)
		_exit(3);
	secmem_arena_range((void **)&p, &len);
	p[len - 1] = 1;		/* the last usable byte is fine */
	dprintf(wfd, "inside ok");
	p[len] = 1;		/* the guard page is not */
	_exit(0);
}

static void
child_touch_before_start(int wfd)
{
	char why[512];
	uint8_t *p;
	size_t len;

	if (secmem_init(ARENA, why, sizeof(why)) != 0)
		_exit(3);
	secmem_arena_range((void **)&p, &len);
	p[0] = 1;
	dprintf(wfd, "inside ok");
	p[-1] = 1;
	_exit(0);
}

static void
test_guard_pages_are_fatal(void **state)
{
	char msg[64];
	int status;

	(void)state;
	status = in_child(child_touch_past_end, msg, sizeof(msg));
	assert_string_equal(msg, "inside ok");
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSEGV);

	status = in_child(child_touch_before_start, msg, sizeof(msg));
	assert_string_equal(msg, "inside ok");
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSEGV);
}

static void
child_overrun_then_free(int wfd)
{
	char why[512];
	uint8_t *a, *b;

	if (secmem_init(ARENA, why, sizeof(why)) != 0)
		_exit(3);
	a = secmem_alloc(32);
	b = secmem_alloc(32);
	/* Write past a's end into b's header. */
	memset(a, 0x41, 64);
	dprintf(wfd, "overrun done");
	secmem_free(b);
	_exit(0);
}

static void
test_corrupted_canary_aborts(void **state)
{
	char msg[64];
	int status;

	(void)state;
	status = in_child(child_overrun_then_free, msg, sizeof(msg));
	assert_string_equal(msg, "overrun done");
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void
test_free_wipes(void **state)
{
	uint8_t *p;
	size_t i;

	(void)state;
	ensure_init();
	p = secmem_alloc(100);
	assert_non_null(p);
	assert_true(secmem_owns(p));
	memset(p, 0xA5, 100);
	secmem_free(p);
	/* The arena stays mapped: the freed bytes must read as zero. */
	for (i = 0; i < 100; i++)
		assert_int_equal(p[i], 0);
}

static void
test_realloc_keeps_content_and_wipes_old(void **state)
{
	uint8_t *p, *q;

	(void)state;
	ensure_init();
	p = secmem_alloc(16);
	/* Pin the block after p so realloc must move. */
	void *fence = secmem_alloc(16);
	memcpy(p, "0123456789abcdef", 16);
	q = secmem_realloc(p, 4096);
	assert_non_null(q);
	assert_ptr_not_equal(p, q);
	assert_memory_equal(q, "0123456789abcdef", 16);
	for (int i = 0; i < 16; i++)
		assert_int_equal(p[i], 0);
	secmem_free(q);
	secmem_free(fence);
}

static void
test_accounting(void **state)
{
	size_t before, during;
	void *p;

	(void)state;
	ensure_init();
	assert_true(secmem_locked_bytes() >= ARENA);
	assert_true(strcmp(secmem_backing(), "memfd_secret") == 0 ||
	    strcmp(secmem_backing(), "mlock") == 0);
	before = secmem_used_bytes();
	p = secmem_alloc(1000);
	during = secmem_used_bytes();
	assert_true(during >= before + 1000);
	secmem_free(p);
	assert_int_equal(secmem_used_bytes(), before);
}

static void
test_exhaustion_and_coalescing(void **state)
{
	void *blocks[64];
	size_t i, n = 0;
	void *big;

	(void)state;
	ensure_init();
	/* Fill the arena in 16 KiB blocks until it says no. */
	while (n < 64 && (blocks[n] = secmem_alloc(16 * 1024)))
		n++;
	assert_true(n > 32);
	assert_null(secmem_alloc(ARENA));
	/* Free every other block, then the rest: the free space must merge. */
	for (i = 0; i < n; i += 2)
		secmem_free(blocks[i]);
	assert_null(secmem_alloc(40 * 1024));
	for (i = 1; i < n; i += 2)
		secmem_free(blocks[i]);
	big = secmem_alloc(ARENA / 2);
	assert_non_null(big);
	secmem_free(big);
}

static void
test_json_allocator_uses_arena(void **state)
{
	json_t *j;
	size_t before;

	(void)state;
	ensure_init();
	secmem_install_json_allocator();
	before = secmem_used_bytes();
	j = json_pack("{s:s}", "password", "not-a-real-secret");
	assert_non_null(j);
	assert_true(secmem_used_bytes() > before);
	json_decref(j);
	assert_int_equal(secmem_used_bytes(), before);
}

static void
test_bounce_buffer_is_reused(void **state)
{
	void *a, *b;

	(void)state;
	ensure_init();
	a = secmem_bounce(100);
	assert_non_null(a);
	b = secmem_bounce(200);
	assert_ptr_equal(a, b);		/* a page serves both */
	memset(b, 1, 200);
	explicit_bzero(b, 200);
}

static void
child_fresh_arena(int wfd)
{
	char why[512];
	char *p;

	/* The parent's arena is gone here; the child maps its own. */
	if (secmem_init_child(ARENA, why, sizeof(why)) != 0)
		_exit(3);
	p = secmem_strdup("child");
	dprintf(wfd, "%s %d", p ? p : "null", secmem_owns(p));
	secmem_free(p);
}

static void
test_child_after_fork_maps_its_own_arena(void **state)
{
	char msg[64];
	int status;

	(void)state;
	ensure_init();
	status = in_child(child_fresh_arena, msg, sizeof(msg));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_string_equal(msg, "child 1");
}

static void
test_harden_process(void **state)
{
	struct rlimit rl;

	(void)state;
	assert_int_equal(secmem_harden_process(), 0);
	assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
	assert_int_equal(rl.rlim_cur, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		/* These fork before the parent maps its own arena. */
		cmocka_unit_test(test_memlock_too_small_names_the_limit),
		cmocka_unit_test(test_guard_pages_are_fatal),
		cmocka_unit_test(test_corrupted_canary_aborts),
		cmocka_unit_test(test_free_wipes),
		cmocka_unit_test(test_realloc_keeps_content_and_wipes_old),
		cmocka_unit_test(test_accounting),
		cmocka_unit_test(test_exhaustion_and_coalescing),
		cmocka_unit_test(test_json_allocator_uses_arena),
		cmocka_unit_test(test_bounce_buffer_is_reused),
		cmocka_unit_test(test_child_after_fork_maps_its_own_arena),
		cmocka_unit_test(test_harden_process),
	};

	return cmocka_run_group_tests_name("secmem", tests, NULL, NULL);
}
