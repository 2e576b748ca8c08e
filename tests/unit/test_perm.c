/*
 * perm: the kernel's acl_permission_check and generic_permission, as the
 * daemon applies them to a caller (no /proc needed: the creds are made
 * here, pid 0 meaning the initial user namespace).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <secretsfs/perm.h>

static struct perm_cred
cred(uid_t uid, gid_t gid, const gid_t *groups, size_t n, uint64_t caps)
{
	struct perm_cred cr;

	memset(&cr, 0, sizeof(cr));
	cr.uid = uid;
	cr.gid = gid;
	for (size_t i = 0; i < n; i++)
		cr.groups[i] = groups[i];
	cr.n_groups = n;
	cr.cap_eff = caps;
	return cr;
}

/* One class decides: owner, else group (primary or not), else other. */
static void
test_classes(void **state)
{
	static const gid_t g1500[] = { 1500 };
	struct perm_cred cr;

	(void)state;
	cr = cred(10001, 10001, NULL, 0, 0);
	assert_int_equal(perm_check(&cr, 0, 0440, 0, 1500, PERM_READ, NULL),
	    -EACCES);
	assert_int_equal(perm_check(&cr, 0, 0444, 0, 1500, PERM_READ, NULL),
	    0);
	cr = cred(10002, 10002, g1500, 1, 0);
	assert_int_equal(perm_check(&cr, 0, 0440, 0, 1500, PERM_READ, NULL),
	    0);
	cr = cred(10002, 1500, NULL, 0, 0);
	assert_int_equal(perm_check(&cr, 0, 0440, 0, 1500, PERM_READ, NULL),
	    0);
	/* The owner gets the owner's bits, even when other's would allow. */
	cr = cred(1000, 1000, NULL, 0, 0);
	assert_int_equal(perm_check(&cr, 0, 0044, 1000, 1000, PERM_READ,
	    NULL), -EACCES);
	/* A group member gets the group's bits, even when other's allow. */
	cr = cred(5, 1500, NULL, 0, 0);
	assert_int_equal(perm_check(&cr, 0, 0404, 0, 1500, PERM_READ, NULL),
	    -EACCES);
	/* Search on a directory (0550 from 0440). */
	cr = cred(10001, 10001, NULL, 0, 0);
	assert_int_equal(perm_check(&cr, 0, 0550, 0, 1500, PERM_EXEC, NULL),
	    -EACCES);
	assert_int_equal(perm_check(&cr, 0, 0555, 0, 0, PERM_EXEC |
	    PERM_READ, NULL), 0);
}

/* CAP_DAC_OVERRIDE (bit 1) or CAP_DAC_READ_SEARCH (bit 2) read anything. */
static void
test_capabilities(void **state)
{
	struct perm_cred cr;
	bool by_cap;

	(void)state;
	cr = cred(0, 0, NULL, 0, 0);
	assert_int_equal(perm_check(&cr, 0, 0400, 1000, 1000, PERM_READ,
	    &by_cap), -EACCES);
	assert_false(by_cap);
	cr = cred(0, 0, NULL, 0, 1ULL << 1);
	assert_int_equal(perm_check(&cr, 0, 0400, 1000, 1000, PERM_READ,
	    &by_cap), 0);
	assert_true(by_cap);
	cr = cred(0, 0, NULL, 0, 1ULL << 2);
	assert_int_equal(perm_check(&cr, 0, 0000, 1000, 1000, PERM_READ |
	    PERM_EXEC, NULL), 0);
	/* Never a write. */
	assert_int_equal(perm_check(&cr, 0, 0444, 1000, 1000, PERM_WRITE,
	    NULL), -EACCES);
	/* Another capability is no help. */
	cr = cred(0, 0, NULL, 0, 1ULL << 21);
	assert_int_equal(perm_check(&cr, 0, 0400, 1000, 1000, PERM_READ,
	    NULL), -EACCES);
}

/* This process reads its own creds: its groups and its maps. */
static void
test_proc(void **state)
{
	struct perm_cred cr;

	(void)state;
	assert_int_equal(perm_cred_read(getpid(), getuid(), getgid(), &cr), 0);
	assert_true(cr.have_proc);
	assert_int_equal(perm_cred_read(-1, 7, 8, &cr), 0);
	assert_false(cr.have_proc);
	assert_int_equal(cr.uid, 7);
	assert_int_equal(cr.gid, 8);
	assert_int_equal(cr.n_groups, 0);
	assert_int_equal(cr.cap_eff, 0);
}

static void
test_fast_path(void **state)
{
	(void)state;
	assert_false(perm_needs_cred(0444, 0, 10001, PERM_READ));
	assert_false(perm_needs_cred(0400, 1000, 1000, PERM_READ));
	assert_true(perm_needs_cred(0400, 1000, 1001, PERM_READ));
	assert_true(perm_needs_cred(0440, 0, 10001, PERM_READ));
	assert_true(perm_needs_cred(0404, 0, 10001, PERM_READ));
	assert_true(perm_needs_cred(0044, 1000, 1000, PERM_READ));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classes),
		cmocka_unit_test(test_capabilities),
		cmocka_unit_test(test_proc),
		cmocka_unit_test(test_fast_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
