/*
 * clk: one place that turns clock readings into milliseconds, so that
 * every timeout and age in the daemon is counted the same way; and the one
 * reader of RFC 3339 times (credential expiries, `audit show --since`).
 */
#include <errno.h>

#include <secretsfs/clk.h>

static int64_t
ts_ms(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000 + ts->tv_nsec / 1000000;
}

int64_t
clk_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts_ms(&ts);
}

uint64_t
clk_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

int64_t
clk_real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts_ms(&ts);
}

int64_t
clk_since_ms(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - t0->tv_sec) * 1000 +
	    (now.tv_nsec - t0->tv_nsec) / 1000000;
}

struct timespec
clk_deadline(clockid_t clock, int64_t ms)
{
	struct timespec ts;

	if (ms < 0)
		ms = 0;
	clock_gettime(clock, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

struct timespec
clk_at_ms(int64_t mono_ms)
{
	struct timespec ts;

	if (mono_ms < 0)
		mono_ms = 0;
	ts.tv_sec = (time_t)(mono_ms / 1000);
	ts.tv_nsec = (long)(mono_ms % 1000) * 1000000L;
	return ts;
}

int
clk_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t ca;
	int r;

	if ((r = pthread_condattr_init(&ca)) != 0)
		return -r;
	if ((r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) == 0)
		r = pthread_cond_init(cond, &ca);
	pthread_condattr_destroy(&ca);
	return -r;
}

void
clk_sleep_ms(int64_t ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* n decimal digits at p, or -1. */
static int
digits(const char *p, int n)
{
	int	v = 0;

	for (; n > 0; n--, p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v;
}

/* The zone after the time at *pp, as seconds east of UTC. */
static int
zone(const char **pp, int *off)
{
	const char	*p = *pp;
	int		 oh, om, sign;

	if (*p == 'Z' || *p == 'z') {
		*off = 0;
		*pp = p + 1;
		return 0;
	}
	if (*p != '+' && *p != '-')
		return -EINVAL;
	sign = *p == '-' ? -1 : 1;
	if ((oh = digits(p + 1, 2)) < 0)
		return -EINVAL;
	p += 3;
	if (*p == ':')
		p++;
	if ((om = digits(p, 2)) < 0 || oh > 23 || om > 59)
		return -EINVAL;
	*off = sign * (oh * 3600 + om * 60);
	*pp = p + 2;
	return 0;
}

int
clk_parse_rfc3339(const char *s, unsigned flags, int64_t *us)
{
	struct tm	 tm = { 0 };
	const char	*p = s;
	int64_t		 frac = 0, scale = 100000;
	int		 y, mo, d, h = 0, mi = 0, sec = 0, off = 0;
	time_t		 t;

	if (s == NULL || (y = digits(p, 4)) < 0 || p[4] != '-' ||
	    (mo = digits(p + 5, 2)) < 0 || p[7] != '-' ||
	    (d = digits(p + 8, 2)) < 0)
		return -EINVAL;
	p += 10;
	if (*p == '\0' && !(flags & CLK_DATE_ALONE))
		return -EINVAL;
	if (*p != '\0') {
		if (*p != 'T' && *p != 't' && *p != ' ')
			return -EINVAL;
		p++;
		if ((h = digits(p, 2)) < 0 || p[2] != ':' ||
		    (mi = digits(p + 3, 2)) < 0 || p[5] != ':' ||
		    (sec = digits(p + 6, 2)) < 0)
			return -EINVAL;
		p += 8;
		if (*p == '.') {
			if (p[1] < '0' || p[1] > '9')
				return -EINVAL;
			for (p++; *p >= '0' && *p <= '9'; p++) {
				frac += (*p - '0') * scale;
				scale /= 10;
			}
		}
		if (zone(&p, &off) < 0 || *p != '\0')
			return -EINVAL;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 60)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -EINVAL;
	*us = ((int64_t)t - off) * 1000000 + frac;
	return 0;
}
