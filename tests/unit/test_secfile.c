/*
 * secfile: the one whole-file reader, on real files in a temporary
 * directory: private and any-mode reads, the refusals each flag adds,
 * size limits, and the heap variant.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <secretsfs/secfile.h>
#include <secretsfs/secmem.h>

static char dir[] = "/tmp/test_secfile.XXXXXX";
static char why[256];

static void
put(const char *name, const char *text, mode_t mode, char *path, size_t len)
{
	int fd;

	snprintf(path, len, "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static int
setup(void **state)
{
	(void)state;
	if (secmem_init(1u << 20, why, sizeof(why)) != 0)
		return -1;
	return mkdtemp(dir) ? 0 : -1;
}

static void
test_private_read(void **state)
{
	char p[512];
	uint8_t *b;
	size_t n;

	(void)state;
	put("key", "k3y\n", 0600, p, sizeof(p));
	assert_int_equal(secfile_read_private(p, 64, &b, &n, why, sizeof(why)),
	    0);
	assert_int_equal(n, 4);
	assert_memory_equal(b, "k3y\n", 5);	/* NUL-terminated */
	assert_true(secmem_owns(b));
	secmem_free(b);
}

static void
test_private_refuses_group_readable(void **state)
{
	char p[512];
	uint8_t *b = (uint8_t *)"x";
	size_t n = 7;

	(void)state;
	put("open", "k3y", 0640, p, sizeof(p));
	assert_int_equal(secfile_read_private(p, 64, &b, &n, why, sizeof(why)),
	    -EPERM);
	assert_null(b);
	assert_int_equal(n, 0);
	assert_non_null(strstr(why, "chmod 600"));
	assert_null(strstr(why, "k3y"));
}

static void
test_any_mode_reports_mode(void **state)
{
	char p[512];
	mode_t mode = 0;
	uint8_t *b;
	size_t n;

	(void)state;
	put("token", "tok", 0644, p, sizeof(p));
	assert_int_equal(secfile_read(p, 0, 64, &b, &n, &mode, why,
	    sizeof(why)), 0);
	assert_int_equal(mode & 07777, 0644);
	assert_int_equal(n, 3);
	secfile_free(b, n, 0);
}

static void
test_nofollow(void **state)
{
	char p[512], l[512];
	uint8_t *b;
	size_t n;

	(void)state;
	put("target", "t", 0600, p, sizeof(p));
	snprintf(l, sizeof(l), "%s/link", dir);
	unlink(l);
	assert_int_equal(symlink(p, l), 0);
	/* A projected service-account token is a link: followed by default. */
	assert_int_equal(secfile_read(l, 0, 64, &b, &n, NULL, why,
	    sizeof(why)), 0);
	secfile_free(b, n, 0);
	assert_int_equal(secfile_read(l, SECFILE_NOFOLLOW, 64, &b, &n, NULL,
	    why, sizeof(why)), -ELOOP);
}

static void
test_limits_and_kinds(void **state)
{
	char p[512];
	uint8_t *b;
	size_t n;

	(void)state;
	put("big", "0123456789", 0600, p, sizeof(p));
	assert_int_equal(secfile_read(p, 0, 9, &b, &n, NULL, why, sizeof(why)),
	    -EFBIG);
	assert_int_equal(secfile_read(p, 0, 10, &b, &n, NULL, why,
	    sizeof(why)), 0);
	secfile_free(b, n, 0);
	assert_int_equal(secfile_read(dir, 0, 10, &b, &n, NULL, why,
	    sizeof(why)), -EINVAL);
	snprintf(p, sizeof(p), "%s/missing", dir);
	assert_int_equal(secfile_read(p, 0, 10, &b, &n, NULL, why,
	    sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, p));
}

static void
test_heap(void **state)
{
	const unsigned f = SECFILE_PRIVATE | SECFILE_HEAP;
	char p[512];
	uint8_t *b;
	size_t n;

	(void)state;
	put("conf", "{}", 0600, p, sizeof(p));
	assert_int_equal(secfile_read(p, f, 64, &b, &n, NULL, why,
	    sizeof(why)), 0);
	assert_false(secmem_owns(b));
	assert_string_equal((char *)b, "{}");
	secfile_free(b, n, f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_private_read),
		cmocka_unit_test(test_private_refuses_group_readable),
		cmocka_unit_test(test_any_mode_reports_mode),
		cmocka_unit_test(test_nofollow),
		cmocka_unit_test(test_limits_and_kinds),
		cmocka_unit_test(test_heap),
	};
	int r = cmocka_run_group_tests(tests, setup, NULL);
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		r = 1;
	return r;
}
