/*
 * clk: the clocks, in the units the rest of the code counts in.
 *
 * Intervals, timeouts and cache ages use the monotonic clock, so that a
 * step of the wall clock (NTP, an operator's date) neither expires a cache
 * nor stretches a timeout. The wall clock is only for what a person or a
 * remote server reads: audit timestamps, status, signed requests.
 */
#ifndef SECRETSFS_CLK_H
#define SECRETSFS_CLK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Monotonic time in milliseconds / microseconds, from an arbitrary origin. */
int64_t clk_mono_ms(void);
uint64_t clk_mono_us(void);

/* Wall-clock time in milliseconds since the epoch. */
int64_t clk_real_ms(void);

/* Milliseconds elapsed since t0, a CLOCK_MONOTONIC reading. */
int64_t clk_since_ms(const struct timespec *t0);

/*
 * The absolute time ms milliseconds from now on clock (for
 * pthread_cond_timedwait; a negative ms counts as 0).
 */
struct timespec clk_deadline(clockid_t clock, int64_t ms);

/* A monotonic millisecond reading as a timespec on CLOCK_MONOTONIC. */
struct timespec clk_at_ms(int64_t mono_ms);

/*
 * Initialise a condition variable whose timed waits run on the monotonic
 * clock (deadlines from clk_deadline(CLOCK_MONOTONIC, ...) or clk_at_ms).
 * Returns 0 or -errno.
 */
int clk_cond_init(pthread_cond_t *cond);

/* Sleep ms milliseconds, resuming after signals. */
void clk_sleep_ms(int64_t ms);

/* clk_parse_rfc3339: a date alone ("2026-12-07") means its midnight UTC. */
#define CLK_DATE_ALONE	0x01

/*
 * An RFC 3339 time ("2026-12-07T10:00:00.5Z", "...+01:00", also "+0100",
 * 't' or ' ' for 'T', 'z' for 'Z') as microseconds since the epoch, the
 * fraction cut at microseconds. 0, or -EINVAL for anything else.
 */
int clk_parse_rfc3339(const char *s, unsigned flags, int64_t *us);

#endif
