/*
 * cache: pinned snapshots survive replacement, concurrent misses make one
 * fetch, the byte cap holds, errors are remembered as they should be.
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
#include <unistd.h>

#include <cmocka.h>

#include <secretsfs/cache.h>
#include <secretsfs/secmem.h>

/* A scripted backend: value and version per call, with a delay. */
struct fake {
	int		 fetches;
	int		 result;	/* 0 or -errno */
	size_t		 len;		/* value length; filled with `fill` */
	char		 fill;
	int		 delay_ms;
	char		 version[32];
};

static int
fake_fetch(void *arg, const char *name, struct backend_value *out,
    char *errbuf, size_t errlen)
{
	struct fake *f = arg;

	(void)name;
	__atomic_add_fetch(&f->fetches, 1, __ATOMIC_SEQ_CST);
	if (f->delay_ms)
		usleep(f->delay_ms * 1000);
	if (f->result) {
		snprintf(errbuf, errlen, "scripted failure");
		return f->result;
	}
	memset(out, 0, sizeof(*out));
	out->data = secmem_alloc(f->len + 1);
	assert_non_null(out->data);
	memset(out->data, f->fill, f->len);
	out->len = f->len;
	snprintf(out->version, sizeof(out->version), "%s", f->version);
	return 0;
}

static struct cache *
make(struct fake *f, uint64_t cap)
{
	struct cache_limits lim = { .max_bytes = cap, .negative_ttl_ms = 60000,
	    .max_stale_ms = 60000 };

	return cache_new(&lim, fake_fetch, f);
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
test_hit_after_miss(void **state)
{
	struct fake f = { .len = 8, .fill = 'a', .version = "1" };
	struct cache *c = make(&f, 1024);
	struct cache_snap *s1, *s2;

	(void)state;
	assert_int_equal(cache_get(c, "x", 60000, &s1), 0);
	assert_int_equal(cache_get(c, "x", 60000, &s2), 0);
	assert_ptr_equal(s1, s2);
	assert_int_equal(f.fetches, 1);
	assert_memory_equal(s1->data, "aaaaaaaa", 8);
	cache_put(s1);
	cache_put(s2);
	cache_free(c);
}

static void
test_snapshot_survives_replacement(void **state)
{
	struct fake f = { .len = 8, .fill = 'o', .version = "1" };
	struct cache *c = make(&f, 1024);
	struct cache_snap *old, *new;

	(void)state;
	/* A ttl of 0: due for a refresh at once. */
	assert_int_equal(cache_get(c, "x", 0, &old), 0);
	/* A rotation: the next fetch brings version 2 with other bytes. */
	f.fill = 'n';
	strcpy(f.version, "2");
	assert_int_equal(cache_get(c, "x", 0, &new), 0);
	assert_ptr_not_equal(old, new);
	assert_string_equal(new->version, "2");
	assert_memory_equal(new->data, "nnnnnnnn", 8);
	assert_int_equal(new->generation, old->generation + 1);
	/* The reader of the old snapshot still sees all of it, unchanged. */
	assert_string_equal(old->version, "1");
	assert_memory_equal(old->data, "oooooooo", 8);
	cache_put(old);
	cache_put(new);
	cache_free(c);
}

struct racer {
	struct cache		*c;
	pthread_barrier_t	*go;
	int			 r;
	struct cache_snap	*s;
};

static void *
race(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->go);
	r->r = cache_get(r->c, "hot", 60000, &r->s);
	return NULL;
}

static void
test_singleflight_16_threads(void **state)
{
	struct fake f = { .len = 16, .fill = 'z', .version = "7",
	    .delay_ms = 200 };
	struct cache *c = make(&f, 1024);
	struct racer r[16];
	pthread_t t[16];
	pthread_barrier_t go;
	int i;

	(void)state;
	pthread_barrier_init(&go, NULL, 16);
	for (i = 0; i < 16; i++) {
		r[i] = (struct racer){ .c = c, .go = &go };
		assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
	}
	for (i = 0; i < 16; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(f.fetches, 1);
	for (i = 0; i < 16; i++) {
		assert_int_equal(r[i].r, 0);
		assert_ptr_equal(r[i].s, r[0].s);
		assert_memory_equal(r[i].s->data, "zzzzzzzzzzzzzzzz", 16);
		cache_put(r[i].s);
	}
	pthread_barrier_destroy(&go);
	cache_free(c);
}

static void
test_singleflight_shares_errors(void **state)
{
	struct fake f = { .result = -EACCES, .delay_ms = 200 };
	struct cache *c = make(&f, 1024);
	struct racer r[8];
	pthread_t t[8];
	pthread_barrier_t go;
	int i;

	(void)state;
	pthread_barrier_init(&go, NULL, 8);
	for (i = 0; i < 8; i++) {
		r[i] = (struct racer){ .c = c, .go = &go };
		pthread_create(&t[i], NULL, race, &r[i]);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].r, -EACCES);
		assert_null(r[i].s);
	}
	assert_int_equal(f.fetches, 1);
	pthread_barrier_destroy(&go);
	cache_free(c);
}

static void
test_byte_cap(void **state)
{
	struct fake f = { .len = 40, .fill = 'c', .version = "1" };
	struct cache *c = make(&f, 100);
	struct cache_stats st;
	struct cache_snap *s;

	(void)state;
	assert_int_equal(cache_get(c, "a", 60000, &s), 0);
	cache_put(s);
	assert_int_equal(cache_get(c, "b", 60000, &s), 0);
	cache_put(s);
	cache_stats(c, &st);
	assert_int_equal(st.bytes, 80);
	/* A third value does not fit: the least recently used one goes. */
	assert_int_equal(cache_get(c, "c", 60000, &s), 0);
	cache_put(s);
	cache_stats(c, &st);
	assert_int_equal(st.bytes, 80);
	assert_int_equal(st.entries, 2);
	assert_int_equal(cache_peek(c, "a", &s), -ENOENT);
	assert_int_equal(cache_peek(c, "c", &s), 0);
	cache_put(s);
	/* A value larger than the whole cap is refused. */
	f.len = 101;
	assert_int_equal(cache_get(c, "huge", 60000, &s), -EFBIG);
	cache_stats(c, &st);
	assert_true(st.bytes <= 100);
	cache_free(c);
}

static void
test_negative_entries(void **state)
{
	struct fake f = { .result = -ENOENT };
	struct cache *c = make(&f, 100);
	struct cache_snap *s;

	(void)state;
	assert_int_equal(cache_get(c, "gone", 60000, &s), -ENOENT);
	assert_int_equal(cache_get(c, "gone", 60000, &s), -ENOENT);
	assert_int_equal(f.fetches, 1);
	cache_forget(c, "gone");
	assert_int_equal(cache_get(c, "gone", 60000, &s), -ENOENT);
	assert_int_equal(f.fetches, 2);
	cache_free(c);
}

/* A backend's refusal is remembered like "no such secret", as itself. */
static void
test_refusals_are_remembered(void **state)
{
	struct fake f = { .result = -EACCES };
	struct cache *c = make(&f, 100);
	struct cache_snap *s;

	(void)state;
	assert_int_equal(cache_get(c, "denied", 60000, &s), -EACCES);
	assert_int_equal(cache_get(c, "denied", 60000, &s), -EACCES);
	assert_int_equal(f.fetches, 1);
	cache_forget(c, "denied");
	f.result = -ENOENT;
	assert_int_equal(cache_get(c, "denied", 60000, &s), -ENOENT);
	assert_int_equal(cache_get(c, "denied", 60000, &s), -ENOENT);
	assert_int_equal(f.fetches, 2);
	cache_free(c);
}

static void
test_stale_value_served_when_refresh_fails(void **state)
{
	struct fake f = { .len = 4, .fill = 's', .version = "1" };
	struct cache *c = make(&f, 100);
	struct cache_stats st;
	struct cache_snap *s;

	(void)state;
	assert_int_equal(cache_get(c, "x", 0, &s), 0);
	cache_put(s);
	f.result = -EIO;
	assert_int_equal(cache_get(c, "x", 0, &s), 0);
	assert_memory_equal(s->data, "ssss", 4);
	cache_put(s);
	cache_stats(c, &st);
	assert_int_equal(st.stale_served, 1);
	/* A secret deleted in the backend is no longer served. */
	f.result = -ENOENT;
	cache_forget(c, NULL);
	assert_int_equal(cache_get(c, "x", 0, &s), -ENOENT);
	cache_free(c);
}

struct seen {
	int	rotated;
	char	old[64], new[64];
};

static void
on_event(void *arg, const struct cache_event *ev)
{
	struct seen *s = arg;

	if (ev->type != CACHE_EV_ROTATED)
		return;
	s->rotated++;
	snprintf(s->old, sizeof(s->old), "%s", ev->old_version ? ev->old_version : "");
	snprintf(s->new, sizeof(s->new), "%s", ev->version ? ev->version : "");
}

/*
 * The version last seen outlives the value (a dropped value, then a fetch
 * of another version is a rotation), but not a forget with its history.
 */
static void
test_version_outlives_the_value(void **state)
{
	struct fake f = { .len = 8, .fill = 'v', .version = "v1-a-long-version-string" };
	struct cache *c = make(&f, 1024);
	struct cache_snap *s;
	struct seen seen = { 0 };

	(void)state;
	cache_set_events(c, on_event, &seen);
	assert_int_equal(cache_get(c, "x", 60000, &s), 0);
	assert_string_equal(s->version, "v1-a-long-version-string");
	cache_put(s);
	/* Dropped without its history: the value goes, the version stays. */
	cache_forget(c, "x");
	strcpy(f.version, "v2");
	assert_int_equal(cache_get(c, "x", 60000, &s), 0);
	assert_string_equal(s->version, "v2");
	cache_put(s);
	assert_int_equal(seen.rotated, 1);
	assert_string_equal(seen.old, "v1-a-long-version-string");
	assert_string_equal(seen.new, "v2");
	/* The same version again after a drop: no rotation. */
	cache_forget(c, "x");
	assert_int_equal(cache_get(c, "x", 60000, &s), 0);
	cache_put(s);
	assert_int_equal(seen.rotated, 1);
	/* Forgotten with its history: a new version is no rotation. */
	cache_forget_tree(c, "x", true);
	strcpy(f.version, "v3");
	assert_int_equal(cache_get(c, "x", 60000, &s), 0);
	cache_put(s);
	assert_int_equal(seen.rotated, 1);
	cache_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_after_miss),
		cmocka_unit_test(test_snapshot_survives_replacement),
		cmocka_unit_test(test_singleflight_16_threads),
		cmocka_unit_test(test_singleflight_shares_errors),
		cmocka_unit_test(test_byte_cap),
		cmocka_unit_test(test_negative_entries),
		cmocka_unit_test(test_refusals_are_remembered),
		cmocka_unit_test(test_stale_value_served_when_refresh_fails),
		cmocka_unit_test(test_version_outlives_the_value),
	};

	return cmocka_run_group_tests_name("cache", tests, setup, NULL);
}
