/*
 * repair: parsing /proc/<pid>/mountinfo lines as the kernel writes them
 * (optional fields, octal escapes), the fsname that names a mount's
 * owner, and the guards of repair_run() that need no mount.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <secretsfs/repair.h>

static struct repair_mountinfo mi;

/* Straight from a Debian 12 host: an ordinary mount. */
static void
test_host_line(void **state)
{
	(void)state;
	assert_int_equal(repair_parse_mountinfo("29 1 254:1 / / rw,relatime "
	    "shared:1 - ext4 /dev/vda1 rw,errors=remount-ro\n", &mi), 0);
	assert_int_equal(mi.mnt_id, 29);
	assert_int_equal(mi.parent_id, 1);
	assert_int_equal(mi.major, 254);
	assert_int_equal(mi.minor, 1);
	assert_string_equal(mi.root, "/");
	assert_string_equal(mi.target, "/");
	assert_string_equal(mi.options, "rw,relatime");
	assert_string_equal(mi.fstype, "ext4");
	assert_string_equal(mi.source, "/dev/vda1");
	assert_false(repair_is_secretsfs(&mi));
}

/* The bind of the host mount inside a Podman container, as it shows there. */
static void
test_container_bind(void **state)
{
	(void)state;
	assert_int_equal(repair_parse_mountinfo("1284 1260 0:61 / /run/secrets "
	    "ro,nosuid,nodev,noexec,relatime - fuse.secretsfs secretsfs "
	    "ro,user_id=0,group_id=0,default_permissions,allow_other", &mi), 0);
	assert_int_equal(mi.mnt_id, 1284);
	assert_int_equal(mi.parent_id, 1260);
	assert_int_equal(mi.major, 0);
	assert_int_equal(mi.minor, 61);
	assert_string_equal(mi.root, "/");
	assert_string_equal(mi.target, "/run/secrets");
	assert_string_equal(mi.fstype, "fuse.secretsfs");
	assert_string_equal(mi.source, "secretsfs");
	assert_true(repair_is_secretsfs(&mi));
	assert_int_equal(repair_owner(mi.source, "/run/secretsfs"),
	    REPAIR_OWNER_UNNAMED);
}

/* A bind of one directory secret: root is not "/". */
static void
test_subdirectory_bind(void **state)
{
	(void)state;
	assert_int_equal(repair_parse_mountinfo("1290 1260 0:61 /db "
	    "/run/secrets/db ro,nosuid,nodev,noexec,relatime master:310 - "
	    "fuse.secretsfs secretsfs:/run/secretsfs ro,user_id=0\n", &mi), 0);
	assert_string_equal(mi.root, "/db");
	assert_string_equal(mi.target, "/run/secrets/db");
	assert_int_equal(repair_owner(mi.source, "/run/secretsfs"),
	    REPAIR_OWNER_OURS);
}

/* Spaces, tabs, newlines and backslashes come octal-escaped. */
static void
test_escapes(void **state)
{
	(void)state;
	assert_int_equal(repair_parse_mountinfo("611 28 0:62 / "
	    "/tmp/my\\040secrets/mnt\\011x ro,nosuid,nodev,noexec,relatime "
	    "shared:310 - fuse.secretsfs "
	    "secretsfs:/tmp/my\\040secrets/mnt\\011x ro,user_id=0\n", &mi), 0);
	assert_string_equal(mi.target, "/tmp/my secrets/mnt\tx");
	assert_string_equal(mi.source, "secretsfs:/tmp/my secrets/mnt\tx");
	assert_int_equal(repair_owner(mi.source, "/tmp/my secrets/mnt\tx"),
	    REPAIR_OWNER_OURS);
	assert_int_equal(repair_owner(mi.source, "/tmp/my secrets/mnt"),
	    REPAIR_OWNER_OTHER);

	assert_int_equal(repair_parse_mountinfo("612 28 0:63 /a\\134b "
	    "/srv/new\\012line rw - fuse.secretsfs secretsfs rw", &mi), 0);
	assert_string_equal(mi.root, "/a\\b");
	assert_string_equal(mi.target, "/srv/new\nline");
}

/* Any number of optional fields, or none, before the separator. */
static void
test_optional_fields(void **state)
{
	(void)state;
	assert_int_equal(repair_parse_mountinfo("40 29 0:50 / /run/secretsfs "
	    "ro,nosuid shared:12 master:3 propagate_from:2 unbindable - "
	    "fuse.secretsfs secretsfs ro", &mi), 0);
	assert_string_equal(mi.target, "/run/secretsfs");
	assert_string_equal(mi.fstype, "fuse.secretsfs");
	assert_int_equal(repair_parse_mountinfo("40 29 0:50 / /run/secretsfs "
	    "ro - fuse.secretsfs secretsfs ro", &mi), 0);
	assert_string_equal(mi.source, "secretsfs");
	/* A source the kernel shows as "none", and no super options. */
	assert_int_equal(repair_parse_mountinfo("41 29 0:51 / /x rw - tmpfs "
	    "none", &mi), 0);
	assert_string_equal(mi.source, "none");
}

static void
test_other_fuse(void **state)
{
	(void)state;
	assert_int_equal(repair_parse_mountinfo("50 29 0:70 / /mnt/ssh rw "
	    "- fuse.sshfs me@host:/srv rw,user_id=0", &mi), 0);
	assert_false(repair_is_secretsfs(&mi));
	assert_int_equal(repair_parse_mountinfo("51 29 0:71 / /mnt/f rw "
	    "- fuse secretsfs rw", &mi), 0);
	assert_false(repair_is_secretsfs(&mi));
	/* A subtype that only starts the same. */
	assert_int_equal(repair_parse_mountinfo("52 29 0:72 / /mnt/g rw "
	    "- fuse.secretsfs2 secretsfs rw", &mi), 0);
	assert_false(repair_is_secretsfs(&mi));
}

static void
test_malformed(void **state)
{
	static const char *bad[] = {
		"",
		"\n",
		"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root rw",
		"36 35 98:0 /mnt1 /mnt2 rw -",
		"36 35 98:0 /mnt1 /mnt2 rw - ext3",
		"36 35 98:0 /mnt1",
		"x 35 98:0 / /mnt rw - ext3 /dev/root rw",
		"36 35x 98:0 / /mnt rw - ext3 /dev/root rw",
		"36 35 98-0 / /mnt rw - ext3 /dev/root rw",
		"36 35 98:0x / /mnt rw - ext3 /dev/root rw",
		"36 35 98:0 / /mnt\\04 rw - ext3 /dev/root rw",
		"36 35 98:0 / /mnt\\0 rw - ext3 /dev/root rw",
		"36 35 98:0 / /mnt\\ rw - ext3 /dev/root rw",
		"36 35 98:0 / /mnt\\09x rw - ext3 /dev/root rw",
		"36 35 98:0 / /mnt\\000 rw - ext3 /dev/root rw",
		"36 35 98:0 / /mnt\\400 rw - ext3 /dev/root rw",
		"36 35 98:0 / mnt rw - ext3 /dev/root rw",
		"36 35 98:0 x /mnt rw - ext3 /dev/root rw",
		"36  35 98:0 / /mnt rw - ext3 /dev/root rw",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = repair_parse_mountinfo(bad[i], &mi);

		if (r != -EINVAL)
			fail_msg("line %zu \"%s\": %d, not -EINVAL", i, bad[i], r);
	}
}

static void
test_too_long(void **state)
{
	size_t n = PATH_MAX + 16;
	char *line = malloc(n + 128), *p;

	(void)state;
	assert_non_null(line);
	p = line + sprintf(line, "60 29 0:80 / /");
	memset(p, 'a', n);
	p += n;
	sprintf(p, " rw - fuse.secretsfs secretsfs rw");
	assert_int_equal(repair_parse_mountinfo(line, &mi), -ENAMETOOLONG);
	/* Escapes count once decoded: PATH_MAX/4 "\040" fit. */
	p = line + sprintf(line, "60 29 0:80 / /");
	for (int i = 0; i < PATH_MAX / 8; i++)
		p += sprintf(p, "\\040");
	sprintf(p, " rw - fuse.secretsfs secretsfs rw");
	assert_int_equal(repair_parse_mountinfo(line, &mi), 0);
	assert_int_equal(strlen(mi.target), 1 + PATH_MAX / 8);
	assert_int_equal(mi.target[1], ' ');
	free(line);
}

static void
test_fsname(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(repair_fsname("/run/secretsfs", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "secretsfs:/run/secretsfs");
	assert_int_equal(repair_owner(buf, "/run/secretsfs"), REPAIR_OWNER_OURS);
	assert_int_equal(repair_fsname("run/secretsfs", buf, sizeof(buf)),
	    -EINVAL);
	assert_int_equal(repair_fsname("/run/a,b", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(repair_fsname("/run/a\\b", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(repair_fsname("/run/secretsfs", buf, 20),
	    -ENAMETOOLONG);
}

static void
test_owner(void **state)
{
	(void)state;
	assert_int_equal(repair_owner("secretsfs", "/run/secretsfs"),
	    REPAIR_OWNER_UNNAMED);
	assert_int_equal(repair_owner("secretsfs:/run/secretsfs",
	    "/run/secretsfs"), REPAIR_OWNER_OURS);
	/* Another daemon's, even one whose path starts like ours. */
	assert_int_equal(repair_owner("secretsfs:/run/secretsfs-b",
	    "/run/secretsfs"), REPAIR_OWNER_OTHER);
	assert_int_equal(repair_owner("secretsfs:/run",
	    "/run/secretsfs"), REPAIR_OWNER_OTHER);
	assert_int_equal(repair_owner("secretsfs:", "/run/secretsfs"),
	    REPAIR_OWNER_OTHER);
	assert_int_equal(repair_owner("secretsfsx", "/run/secretsfs"),
	    REPAIR_OWNER_OTHER);
	assert_int_equal(repair_owner("/dev/fuse", "/run/secretsfs"),
	    REPAIR_OWNER_OTHER);
}

/* Without a live mount there is nothing to repair with: -ENOTCONN. */
static void
test_run_needs_a_live_mount(void **state)
{
	char dir[] = "/tmp/test_repair.XXXXXX";
	struct repair_stats st;
	struct repair *rp;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_non_null(rp = repair_new(dir));
	assert_int_equal(repair_add_pid(rp, getpid()), 0);
	assert_int_equal(repair_add_pid(rp, 0), -EINVAL);
	/* Past pid_max: no such process. */
	assert_int_equal(repair_add_pid(rp, 0x7ffffff0), -ESRCH);
	memset(&st, 0xff, sizeof(st));
	assert_int_equal(repair_run(rp, NULL, NULL, &st), -ENOTCONN);
	assert_int_equal(st.found, 0);
	assert_int_equal(st.repaired, 0);
	repair_free(rp);
	repair_free(NULL);
	assert_int_equal(rmdir(dir), 0);
	/* A mountpoint whose directory does not exist cannot be resolved. */
	assert_null(repair_new("/nonexistent-dir-for-test/mnt"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_line),
		cmocka_unit_test(test_container_bind),
		cmocka_unit_test(test_subdirectory_bind),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_optional_fields),
		cmocka_unit_test(test_other_fuse),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_fsname),
		cmocka_unit_test(test_owner),
		cmocka_unit_test(test_run_needs_a_live_mount),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
