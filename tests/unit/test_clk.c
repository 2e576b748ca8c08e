/*
 * clk: the RFC 3339 reader every caller shares (credential expiries from
 * AWS, `audit show --since`), and the monotonic helpers' arithmetic.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include <secretsfs/clk.h>

/* 2026-12-07T10:00:00Z */
#define T0	INT64_C(1796637600)

static void
test_rfc3339_accepts(void **state)
{
	int64_t us;

	(void)state;
	assert_int_equal(clk_parse_rfc3339("2026-12-07T10:00:00Z", 0, &us), 0);
	assert_int_equal(us, T0 * 1000000);
	assert_int_equal(clk_parse_rfc3339("2026-12-07t10:00:00.25z", 0, &us),
	    0);
	assert_int_equal(us, T0 * 1000000 + 250000);
	/* Digits past the microsecond are cut, not rounded. */
	assert_int_equal(clk_parse_rfc3339("2026-12-07 10:00:00.1234569Z", 0,
	    &us), 0);
	assert_int_equal(us, T0 * 1000000 + 123456);
	/* Zones east and west, with and without the colon (AWS sends both). */
	assert_int_equal(clk_parse_rfc3339("2026-12-07T11:30:00+01:30", 0,
	    &us), 0);
	assert_int_equal(us, T0 * 1000000);
	assert_int_equal(clk_parse_rfc3339("2026-12-07T05:00:00-0500", 0, &us),
	    0);
	assert_int_equal(us, T0 * 1000000);
	assert_int_equal(clk_parse_rfc3339("2026-12-07", CLK_DATE_ALONE, &us),
	    0);
	assert_int_equal(us, (T0 - 10 * 3600) * 1000000);
}

static void
test_rfc3339_refuses(void **state)
{
	static const char *const bad[] = {
		"", "2026-12-07", "2026-12-07T10:00:00", "2026-12-07T10:00Z",
		"2026-13-07T10:00:00Z", "2026-12-32T10:00:00Z",
		"2026-12-07T24:00:00Z", "2026-12-07T10:60:00Z",
		"2026-12-07T10:00:00.Z", "2026-12-07T10:00:00+24:00",
		"2026-12-07T10:00:00+01:60", "2026-12-07T10:00:00Zjunk",
		"2026-12-07T10:00:00+1", "26-12-07T10:00:00Z",
		"2026/12/07T10:00:00Z", " 2026-12-07T10:00:00Z",
	};
	int64_t us = 42;
	size_t i;

	(void)state;
	assert_int_equal(clk_parse_rfc3339(NULL, 0, &us), -EINVAL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (clk_parse_rfc3339(bad[i], 0, &us) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_int_equal(clk_parse_rfc3339("2026-12-07x", CLK_DATE_ALONE, &us),
	    -EINVAL);
	assert_int_equal(us, 42);	/* untouched on error */
}

static void
test_mono(void **state)
{
	struct timespec now, dl;
	int64_t a, b;

	(void)state;
	a = clk_mono_ms();
	clk_sleep_ms(20);
	b = clk_mono_ms();
	assert_true(b - a >= 20);
	clock_gettime(CLOCK_MONOTONIC, &now);
	dl = clk_deadline(CLOCK_MONOTONIC, -5);	/* negative counts as 0 */
	assert_true(dl.tv_sec > now.tv_sec || (dl.tv_sec == now.tv_sec &&
	    dl.tv_nsec >= now.tv_nsec));
	dl = clk_at_ms(1500);
	assert_int_equal(dl.tv_sec, 1);
	assert_int_equal(dl.tv_nsec, 500000000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc3339_accepts),
		cmocka_unit_test(test_rfc3339_refuses),
		cmocka_unit_test(test_mono),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
