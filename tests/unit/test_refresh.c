/*
 * refresh: the scheduler's timing decisions on a made-up clock (when a
 * value is refreshed ahead of expiry, when an idle one is left to expire,
 * how long a stale or deleted one is served, the backoff of retries), then
 * the scheduler threads driving a real cache with a scripted backend.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <secretsfs/cache.h>
#include <secretsfs/refresh.h>
#include <secretsfs/sched.h>
#include <secretsfs/secmem.h>

static const struct refresh_policy pol = {
	.max_stale_ms = 3000,
	.delete_grace_ms = 2000,
};

/* A value fetched at t=10000 with a 1 s interval, refresh-ahead at 10850. */
static struct refresh_entry
fresh(void)
{
	return (struct refresh_entry){
		.state = REFRESH_FRESH,
		.fetched = 10000,
		.ttl = 1000,
		.ahead = 10850,
		.last_access = 10000,
	};
}

static void
test_ahead_is_10_to_25_percent_before_expiry(void **state)
{
	uint32_t r;
	int64_t a, lo = INT64_MAX, hi = 0;

	(void)state;
	for (r = 0; r < 5000; r += 7) {
		a = refresh_ahead(1000, 60000, r);
		assert_true(a >= 1000 + 45000);		/* 25 % early at most */
		assert_true(a <= 1000 + 54000);		/* 10 % early at least */
		lo = a < lo ? a : lo;
		hi = a > hi ? a : hi;
	}
	/* Jitter spreads secrets fetched together. */
	assert_true(hi - lo > 5000);
	assert_int_equal(refresh_ahead(1000, 60000, 42),
	    refresh_ahead(1000, 60000, 42));
	assert_int_equal(refresh_ahead(500, 0, 9), 500);
	a = refresh_ahead(0, 1000, 999);
	assert_true(a >= 750 && a <= 900);
}

static void
test_backoff_doubles_with_equal_jitter_and_a_cap(void **state)
{
	uint32_t r;
	unsigned f;

	(void)state;
	for (r = 0; r < 3000; r += 13) {
		/* First retry: 500 ms, jittered to [250, 500]. */
		assert_in_range(refresh_backoff(1, 60000, r), 250, 500);
		assert_in_range(refresh_backoff(2, 60000, r), 500, 1000);
		assert_in_range(refresh_backoff(3, 60000, r), 1000, 2000);
		/* Capped at 30 s whatever the interval and the count. */
		assert_in_range(refresh_backoff(40, 3600000, r), 15000, 30000);
		/* A 1 s interval retries at least every second. */
		for (f = 1; f < 10; f++)
			assert_in_range(refresh_backoff(f, 1000, r), 250, 1000);
		/* Never below the 1 s floor of the cap for tiny intervals. */
		assert_in_range(refresh_backoff(5, 10, r), 500, 1000);
	}
	assert_in_range(refresh_backoff(0, 60000, 7), 250, 500);
}

static void
test_fresh_value_waits_for_its_ahead_point(void **state)
{
	struct refresh_entry e = fresh();
	int64_t next;

	(void)state;
	assert_int_equal(refresh_decide(&e, &pol, 10100, &next), REFRESH_NONE);
	assert_int_equal(next, 10850);
	assert_int_equal(refresh_read_decide(&e, &pol, 10999), REFRESH_READ_HIT);
	assert_int_equal(refresh_read_decide(&e, &pol, 11000), REFRESH_READ_FETCH);
}

static void
test_idle_value_is_left_to_expire(void **state)
{
	struct refresh_entry e = fresh();
	int64_t next;

	(void)state;
	/* Read only right after its fetch (the fetching open itself). */
	e.last_access = 10020;
	assert_false(refresh_is_hot(&e));
	assert_int_equal(refresh_decide(&e, &pol, 10900, &next), REFRESH_NONE);
	assert_int_equal(next, INT64_MAX);
	assert_int_equal(refresh_decide(&e, &pol, 20000, &next), REFRESH_NONE);
}

static void
test_hot_or_watched_value_is_refreshed_ahead(void **state)
{
	struct refresh_entry e = fresh();
	int64_t next;

	(void)state;
	e.last_access = 10500;		/* read in the second half */
	assert_true(refresh_is_hot(&e));
	assert_int_equal(refresh_decide(&e, &pol, 10849, &next), REFRESH_NONE);
	assert_int_equal(refresh_decide(&e, &pol, 10850, &next), REFRESH_FETCH);
	/* Not twice: a fetch in flight is left alone. */
	e.fetching = true;
	assert_int_equal(refresh_decide(&e, &pol, 10900, &next), REFRESH_NONE);
	assert_int_equal(next, INT64_MAX);

	e = fresh();
	e.watched = true;
	assert_int_equal(refresh_decide(&e, &pol, 10850, &next), REFRESH_FETCH);
}

static void
test_stale_value_retried_then_expired(void **state)
{
	struct refresh_entry e = fresh();
	int64_t next;

	(void)state;
	e.state = REFRESH_STALE;
	e.retry_at = 11200;
	/* Still within its interval: a plain hit. */
	assert_int_equal(refresh_read_decide(&e, &pol, 10900), REFRESH_READ_HIT);
	/* Past it, served stale without waiting on the backend. */
	assert_int_equal(refresh_read_decide(&e, &pol, 12000),
	    REFRESH_READ_STALE);
	assert_int_equal(refresh_decide(&e, &pol, 11100, &next), REFRESH_NONE);
	assert_int_equal(next, 11200);
	assert_int_equal(refresh_decide(&e, &pol, 11200, &next), REFRESH_FETCH);
	/* expiry (11000) + max_stale (3000) */
	assert_int_equal(refresh_serve_limit(&e, &pol), 14000);
	e.retry_at = 20000;
	assert_int_equal(refresh_decide(&e, &pol, 13000, &next), REFRESH_NONE);
	assert_int_equal(next, 14000);
	assert_int_equal(refresh_read_decide(&e, &pol, 13999),
	    REFRESH_READ_STALE);
	assert_int_equal(refresh_read_decide(&e, &pol, 14000),
	    REFRESH_READ_EXPIRE);
	assert_int_equal(refresh_decide(&e, &pol, 14000, &next), REFRESH_EXPIRE);
}

static void
test_deleted_value_served_for_the_grace(void **state)
{
	struct refresh_entry e = fresh();
	int64_t next;

	(void)state;
	e.state = REFRESH_GONE;
	e.gone_since = 10900;
	e.retry_at = 11500;
	assert_int_equal(refresh_serve_limit(&e, &pol), 12900);
	assert_int_equal(refresh_read_decide(&e, &pol, 12000),
	    REFRESH_READ_STALE);
	assert_int_equal(refresh_decide(&e, &pol, 11600, &next), REFRESH_FETCH);
	e.retry_at = 13500;
	assert_int_equal(refresh_decide(&e, &pol, 12000, &next), REFRESH_NONE);
	assert_int_equal(next, 12900);
	assert_int_equal(refresh_decide(&e, &pol, 12900, &next), REFRESH_REMOVE);
	assert_int_equal(refresh_read_decide(&e, &pol, 12900),
	    REFRESH_READ_EXPIRE);
	/* max_stale bounds a deletion grace longer than it. */
	struct refresh_policy longgrace = { .max_stale_ms = 500,
	    .delete_grace_ms = 60000 };
	assert_int_equal(refresh_serve_limit(&e, &longgrace), 11500);
}

static void
test_empty_entry_is_fetched_by_reads_only(void **state)
{
	struct refresh_entry e = { .state = REFRESH_EMPTY };
	int64_t next;

	(void)state;
	assert_int_equal(refresh_decide(&e, &pol, 5000, &next), REFRESH_NONE);
	assert_int_equal(next, INT64_MAX);
	assert_int_equal(refresh_read_decide(&e, &pol, 5000), REFRESH_READ_FETCH);
}

/* ---- the threads, on a real cache ----------------------------------- */

struct backend {
	pthread_mutex_t	lock;
	int		fetches;
	int		result;
	char		fill;
	char		version[16];
	int		delay_ms;
};

static int
scripted(void *arg, const char *name, struct backend_value *out,
    char *errbuf, size_t errlen)
{
	struct backend *b = arg;
	int r;

	(void)name;
	if (b->delay_ms)
		usleep(b->delay_ms * 1000);
	pthread_mutex_lock(&b->lock);
	b->fetches++;
	if ((r = b->result) == 0) {
		memset(out, 0, sizeof(*out));
		out->data = secmem_alloc(8);
		assert_non_null(out->data);
		memset(out->data, b->fill, 8);
		out->len = 8;
		snprintf(out->version, sizeof(out->version), "%s", b->version);
	} else
		snprintf(errbuf, errlen, "scripted failure");
	pthread_mutex_unlock(&b->lock);
	return r;
}

static int
fetches(struct backend *b)
{
	int n;

	pthread_mutex_lock(&b->lock);
	n = b->fetches;
	pthread_mutex_unlock(&b->lock);
	return n;
}

struct seen {
	pthread_mutex_t	lock;
	char		log[32][48];
	int		n;
};

static void
on_event(void *arg, const struct cache_event *ev)
{
	static const char *const names[] = { "rotating", "rotated", "stale",
	    "expired", "recovered", "gone", "removed" };
	struct seen *s = arg;

	pthread_mutex_lock(&s->lock);
	if (s->n < 32)
		snprintf(s->log[s->n++], sizeof(s->log[0]), "%s %s %s",
		    names[ev->type], ev->old_version ? ev->old_version : "-",
		    ev->version);
	pthread_mutex_unlock(&s->lock);
}

static bool
saw(struct seen *s, const char *what)
{
	bool found = false;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->n; i++)
		found |= strcmp(s->log[i], what) == 0;
	pthread_mutex_unlock(&s->lock);
	return found;
}

static int
index_of(struct seen *s, const char *what)
{
	int at = -1;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->n && at < 0; i++)
		if (strcmp(s->log[i], what) == 0)
			at = i;
	pthread_mutex_unlock(&s->lock);
	return at;
}

static int64_t
ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct cache *
make(struct backend *b, struct seen *s, int64_t max_stale, int64_t grace)
{
	struct cache_limits lim = { .max_bytes = 4096, .negative_ttl_ms = 100,
	    .max_stale_ms = max_stale, .delete_grace_ms = grace };
	struct cache *c = cache_new(&lim, scripted, b);

	assert_non_null(c);
	cache_set_events(c, on_event, s);
	return c;
}

static int
setup(void **state)
{
	char why[256];
	void *start;
	size_t len;

	(void)state;
	secmem_arena_range(&start, &len);
	if (!start && secmem_init(4u << 20, why, sizeof(why)) != 0)
		return -1;
	return 0;
}

static void
test_hot_reader_never_waits_and_sees_the_rotation(void **state)
{
	struct backend b = { .lock = PTHREAD_MUTEX_INITIALIZER, .fill = 'a',
	    .version = "1", .delay_ms = 20 };
	struct seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct cache *c = make(&b, &s, 3000, 0);
	struct cache_snap *snap;
	struct cache_stats st;
	struct sched *r;
	int64_t t0, deadline;
	bool rotated = false;

	(void)state;
	assert_int_equal(sched_start(c, 2, &r), 0);
	assert_int_equal(cache_get(c, "x", 400, &snap), 0);
	cache_put(snap);
	pthread_mutex_lock(&b.lock);
	b.fill = 'b';
	strcpy(b.version, "2");
	pthread_mutex_unlock(&b.lock);
	/* Read every 20 ms for 1.2 s: three intervals. */
	t0 = ms();
	deadline = t0 + 1200;
	while (ms() < deadline) {
		assert_int_equal(cache_get(c, "x", 400, &snap), 0);
		if (snap->data[0] == 'b') {
			assert_string_equal(snap->version, "2");
			if (!rotated)
				/* within the interval (and its refresh) */
				assert_true(ms() - t0 < 400 + 100);
			rotated = true;
		}
		cache_put(snap);
		usleep(20000);
	}
	assert_true(rotated);
	cache_stats(c, &st);
	/* Only the first read waited on the backend. */
	assert_int_equal(st.misses, 1);
	assert_true(st.refreshes >= 2);
	assert_true(saw(&s, "rotating 1 2"));
	assert_true(saw(&s, "rotated 1 2"));
	assert_true(index_of(&s, "rotating 1 2") < index_of(&s, "rotated 1 2"));
	sched_stop(r);
	cache_free(c);
}

static void
test_idle_value_is_not_refreshed(void **state)
{
	struct backend b = { .lock = PTHREAD_MUTEX_INITIALIZER, .fill = 'a',
	    .version = "1" };
	struct seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct cache *c = make(&b, &s, 3000, 0);
	struct cache_snap *snap;
	struct sched *r;

	(void)state;
	assert_int_equal(sched_start(c, 1, &r), 0);
	assert_int_equal(cache_get(c, "x", 200, &snap), 0);
	cache_put(snap);
	usleep(600000);
	assert_int_equal(fetches(&b), 1);
	/* The next read fetches, and waits for it. */
	assert_int_equal(cache_get(c, "x", 200, &snap), 0);
	cache_put(snap);
	assert_int_equal(fetches(&b), 2);
	sched_stop(r);
	cache_free(c);
}

static void
test_watched_value_is_refreshed_without_readers(void **state)
{
	struct backend b = { .lock = PTHREAD_MUTEX_INITIALIZER, .fill = 'a',
	    .version = "1" };
	struct seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct cache *c = make(&b, &s, 3000, 0);
	struct cache_snap *snap;
	struct sched *r;

	(void)state;
	assert_int_equal(sched_start(c, 1, &r), 0);
	assert_int_equal(cache_get_ex(c, "x", 200, CACHE_WATCHED, &snap), 0);
	cache_put(snap);
	pthread_mutex_lock(&b.lock);
	strcpy(b.version, "2");
	pthread_mutex_unlock(&b.lock);
	usleep(500000);
	assert_true(fetches(&b) >= 2);
	assert_true(saw(&s, "rotated 1 2"));
	sched_stop(r);
	cache_free(c);
}

static void
test_outage_stale_then_expired_then_recovered(void **state)
{
	struct backend b = { .lock = PTHREAD_MUTEX_INITIALIZER, .fill = 'a',
	    .version = "1" };
	struct seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct cache *c = make(&b, &s, 1000, 0);
	struct cache_snap *snap;
	struct cache_stats st;
	struct sched *r;
	int64_t t0, failed_at = 0, n;

	(void)state;
	assert_int_equal(sched_start(c, 1, &r), 0);
	assert_int_equal(cache_get(c, "x", 300, &snap), 0);
	cache_put(snap);
	t0 = ms();
	pthread_mutex_lock(&b.lock);
	b.result = -EIO;
	pthread_mutex_unlock(&b.lock);
	/* Readers keep getting the old value until expiry + max_stale. */
	while (ms() - t0 < 2500) {
		int64_t t = ms();
		int e = cache_get(c, "x", 300, &snap);

		if (e == 0) {
			assert_int_equal(snap->data[0], 'a');
			cache_put(snap);
			assert_int_equal(failed_at, 0);
		} else {
			assert_int_equal(e, -EIO);
			if (!failed_at)
				failed_at = t - t0;
			/* A fetch to a dead backend is the only wait. */
			assert_true(ms() - t < 100);
		}
		usleep(20000);
	}
	/* expiry 300 + max_stale 1000 */
	assert_in_range(failed_at, 1200, 1500);
	assert_true(saw(&s, "stale - 1"));
	assert_true(saw(&s, "expired - 1"));
	cache_stats(c, &st);
	assert_true(st.stale_served > 10);
	assert_int_equal(st.expired, 1);
	/* Retries are spaced by the backoff, not a busy loop. */
	n = fetches(&b);
	assert_true(n < 2500 / 20);
	pthread_mutex_lock(&b.lock);
	b.result = 0;
	pthread_mutex_unlock(&b.lock);
	assert_int_equal(cache_get(c, "x", 300, &snap), 0);
	cache_put(snap);
	sched_stop(r);
	cache_free(c);
}

static void
test_delete_and_recreate_within_the_grace(void **state)
{
	struct backend b = { .lock = PTHREAD_MUTEX_INITIALIZER, .fill = 'a',
	    .version = "1" };
	struct seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct cache *c = make(&b, &s, 60000, 800);
	struct cache_snap *snap;
	struct sched *r;

	(void)state;
	assert_int_equal(sched_start(c, 1, &r), 0);
	assert_int_equal(cache_get(c, "x", 100, &snap), 0);
	cache_put(snap);
	pthread_mutex_lock(&b.lock);
	b.result = -ENOENT;
	pthread_mutex_unlock(&b.lock);
	usleep(150000);
	/* Deleted: the old value is still served. */
	assert_int_equal(cache_get(c, "x", 100, &snap), 0);
	assert_int_equal(snap->data[0], 'a');
	cache_put(snap);
	assert_true(saw(&s, "gone - 1"));
	/* Recreated with a new version within the grace: no ENOENT at all. */
	pthread_mutex_lock(&b.lock);
	b.result = 0;
	b.fill = 'n';
	strcpy(b.version, "2");
	pthread_mutex_unlock(&b.lock);
	usleep(1000000);
	assert_int_equal(cache_get(c, "x", 100, &snap), 0);
	assert_int_equal(snap->data[0], 'n');
	cache_put(snap);
	assert_true(saw(&s, "rotated 1 2"));
	assert_false(saw(&s, "removed - 1"));
	/* Deleted for good: gone after the grace. */
	pthread_mutex_lock(&b.lock);
	b.result = -ENOENT;
	pthread_mutex_unlock(&b.lock);
	usleep(150000);
	assert_int_equal(cache_get(c, "x", 100, &snap), 0);
	assert_int_equal(snap->data[0], 'n');
	cache_put(snap);
	usleep(1300000);
	assert_int_equal(cache_get(c, "x", 100, &snap), -ENOENT);
	assert_true(saw(&s, "removed - 2"));
	sched_stop(r);
	cache_free(c);
}

static void
test_forget_keeps_history_unless_asked(void **state)
{
	struct backend b = { .lock = PTHREAD_MUTEX_INITIALIZER, .fill = 'a',
	    .version = "1" };
	struct seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct cache *c = make(&b, &s, 60000, 0);
	struct cache_snap *snap;
	char v[32];

	(void)state;
	assert_int_equal(cache_get(c, "d/k", 60000, &snap), 0);
	cache_put(snap);
	/* A flush: the same version again is no rotation. */
	cache_forget_tree(c, "d", false);
	assert_int_equal(cache_peek(c, "d/k", &snap), -ENOENT);
	assert_int_equal(cache_refresh_now(c, "d/k", 60000, 0, v, sizeof(v)), 0);
	assert_string_equal(v, "1");
	assert_int_equal(fetches(&b), 2);
	strcpy(b.version, "2");
	cache_forget_tree(c, "d", false);
	assert_int_equal(cache_get(c, "d/k", 60000, &snap), 0);
	cache_put(snap);
	assert_true(saw(&s, "rotated 1 2"));
	/* Removed from the config: no history, so no rotation next time. */
	cache_forget_tree(c, "d", true);
	strcpy(b.version, "3");
	assert_int_equal(cache_get(c, "d/k", 60000, &snap), 0);
	cache_put(snap);
	assert_false(saw(&s, "rotated 2 3"));
	cache_free(c);
}

static void
test_slow_failure_is_shared_fast_one_is_not(void **state)
{
	struct backend b = { .lock = PTHREAD_MUTEX_INITIALIZER, .fill = 'a',
	    .version = "1", .result = -EIO };
	struct seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct cache *c = make(&b, &s, 3000, 0);
	struct cache_snap *snap;
	int64_t t;

	(void)state;
	/* Fast failures: every read asks again (a sealed Vault may unseal). */
	assert_int_equal(cache_get(c, "x", 1000, &snap), -EIO);
	assert_int_equal(cache_get(c, "x", 1000, &snap), -EIO);
	assert_int_equal(fetches(&b), 2);
	/* A backend that hangs for a timeout: the next reads fail at once. */
	b.delay_ms = 1050;
	assert_int_equal(cache_get(c, "y", 1000, &snap), -EIO);
	b.delay_ms = 0;
	t = ms();
	assert_int_equal(cache_get(c, "y", 1000, &snap), -EIO);
	assert_int_equal(cache_get(c, "y", 1000, &snap), -EIO);
	assert_true(ms() - t < 100);
	assert_int_equal(fetches(&b), 3);
	/* ... for as long as the failure took, then it is asked again. */
	usleep(1100000);
	pthread_mutex_lock(&b.lock);
	b.result = 0;
	pthread_mutex_unlock(&b.lock);
	assert_int_equal(cache_get(c, "y", 1000, &snap), 0);
	cache_put(snap);
	assert_int_equal(fetches(&b), 4);
	cache_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ahead_is_10_to_25_percent_before_expiry),
		cmocka_unit_test(test_backoff_doubles_with_equal_jitter_and_a_cap),
		cmocka_unit_test(test_fresh_value_waits_for_its_ahead_point),
		cmocka_unit_test(test_idle_value_is_left_to_expire),
		cmocka_unit_test(test_hot_or_watched_value_is_refreshed_ahead),
		cmocka_unit_test(test_stale_value_retried_then_expired),
		cmocka_unit_test(test_deleted_value_served_for_the_grace),
		cmocka_unit_test(test_empty_entry_is_fetched_by_reads_only),
		cmocka_unit_test(test_hot_reader_never_waits_and_sees_the_rotation),
		cmocka_unit_test(test_idle_value_is_not_refreshed),
		cmocka_unit_test(test_watched_value_is_refreshed_without_readers),
		cmocka_unit_test(test_outage_stale_then_expired_then_recovered),
		cmocka_unit_test(test_delete_and_recreate_within_the_grace),
		cmocka_unit_test(test_forget_keeps_history_unless_asked),
		cmocka_unit_test(test_slow_failure_is_shared_fast_one_is_not),
	};

	return cmocka_run_group_tests_name("refresh", tests, setup, NULL);
}
