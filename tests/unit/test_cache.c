/*
 * cache: pinned snapshots survive replacement, concurrent misses make one
 * fetch, the byte cap holds, errors are remembered as they should be.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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

/*
 * Names that are parts of one answer: "d" (the whole value), "d/<key>"
 * and "f:<key>" all come from source "d"; "other/<key>" from its own.
 */
struct json_fake {
	int	fetches;
	int	version;	/* 0: the answer has none */
	char	user[16], pass[16];
	char	last_name[64];
	int	select_failed;
	int	rotating, rotated;
	char	rotated_names[256];
};

static int
json_fetch(void *arg, const char *name, struct backend_value *out,
    char *errbuf, size_t errlen)
{
	struct json_fake *f = arg;
	char buf[128];
	int n;

	(void)errbuf;
	(void)errlen;
	f->fetches++;
	snprintf(f->last_name, sizeof(f->last_name), "%s", name);
	n = snprintf(buf, sizeof(buf), "{\"user\":\"%s\",\"pass\":\"%s\","
	    "\"n\":{\"k\":1}}", f->user, f->pass);
	memset(out, 0, sizeof(*out));
	out->data = secmem_alloc((size_t)n + 1);
	assert_non_null(out->data);
	memcpy(out->data, buf, (size_t)n + 1);
	out->len = (size_t)n;
	if (f->version)
		snprintf(out->version, sizeof(out->version), "%d", f->version);
	return 0;
}

static int
json_resolve(void *arg, const char *name, char *key, size_t klen,
    char *field, size_t flen, bool *has_field)
{
	const char *sl = strchr(name, '/');

	(void)arg;
	if (strcmp(name, "gone") == 0)
		return -ESTALE;
	*has_field = false;
	if (strncmp(name, "f:", 2) == 0) {
		snprintf(key, klen, "d");
		snprintf(field, flen, "%s", name + 2);
		*has_field = true;
	} else if (sl) {
		snprintf(key, klen, "%.*s", (int)(sl - name), name);
		snprintf(field, flen, "%s", sl + 1);
		*has_field = true;
	} else
		snprintf(key, klen, "%s", name);
	return 0;
}

static void
json_select_failed(void *arg, const char *name, int err, const char *why)
{
	struct json_fake *f = arg;

	(void)name;
	(void)why;
	assert_int_equal(err, -ENOENT);
	f->select_failed++;
}

static void
json_event(void *arg, const struct cache_event *ev)
{
	struct json_fake *f = arg;
	size_t o = strlen(f->rotated_names);

	if (ev->type == CACHE_EV_ROTATING)
		f->rotating++;
	if (ev->type != CACHE_EV_ROTATED)
		return;
	f->rotated++;
	snprintf(f->rotated_names + o, sizeof(f->rotated_names) - o, "%s%s",
	    o ? "," : "", ev->name);
}

static struct cache *
make_json(struct json_fake *f)
{
	struct cache_limits lim = { .max_bytes = 4096, .negative_ttl_ms = 60000,
	    .max_stale_ms = 60000 };
	struct cache_source src = { .resolve = json_resolve,
	    .select_failed = json_select_failed };
	struct cache *c = cache_new(&lim, json_fetch, f);

	assert_non_null(c);
	cache_set_source(c, &src, f);
	cache_set_events(c, json_event, f);
	return c;
}

static void
assert_snap(struct cache_snap *s, const char *data, const char *version)
{
	assert_int_equal(s->len, strlen(data));
	assert_memory_equal(s->data, data, s->len);
	assert_string_equal(s->version, version);
}

/* A directory's keys and the fields of its ref: one fetch, one version. */
static void
test_names_of_one_source_share_one_fetch(void **state)
{
	struct json_fake f = { .version = 1, .user = "u1", .pass = "p1" };
	struct cache *c = make_json(&f);
	struct cache_snap *s[6], *old_user, *old_whole;
	struct cache_stats st;
	int i;

	(void)state;
	assert_int_equal(cache_get(c, "d", 60000, &s[0]), 0);
	assert_int_equal(cache_get(c, "d/user", 60000, &s[1]), 0);
	assert_int_equal(cache_get(c, "d/pass", 60000, &s[2]), 0);
	assert_int_equal(cache_get(c, "d/n", 60000, &s[3]), 0);
	assert_int_equal(cache_get(c, "f:user", 60000, &s[4]), 0);
	assert_int_equal(cache_get(c, "f:pass", 60000, &s[5]), 0);
	assert_int_equal(f.fetches, 1);
	assert_snap(s[1], "u1", "1");
	assert_snap(s[2], "p1", "1");
	assert_snap(s[3], "{\"k\":1}", "1");
	assert_snap(s[4], "u1", "1");
	assert_snap(s[5], "p1", "1");
	assert_string_equal(s[0]->version, "1");
	old_user = s[1];
	old_whole = s[0];
	for (i = 2; i < 6; i++)
		cache_put(s[i]);
	cache_stats(c, &st);
	assert_int_equal(st.entries, 6);

	/* A missing key is -ENOENT for that name alone, said once. */
	assert_int_equal(cache_get(c, "d/none", 60000, &s[2]), -ENOENT);
	assert_int_equal(cache_get(c, "d/none", 60000, &s[2]), -ENOENT);
	assert_int_equal(f.select_failed, 1);
	assert_int_equal(f.fetches, 1);

	/* One refresh: every name moves to the new version at once. */
	f.version = 2;
	strcpy(f.user, "u2");
	strcpy(f.pass, "p2");
	assert_int_equal(cache_refresh_now(c, "f:pass", 60000, 0, NULL, 0), 0);
	assert_int_equal(f.fetches, 2);
	assert_int_equal(f.rotated, f.rotating);
	/* Each name that served version 1 is told, once ("d/none" never did). */
	assert_int_equal(f.rotated, 6);
	assert_null(strstr(f.rotated_names, "d/none"));
	assert_non_null(strstr(f.rotated_names, "d/user"));
	assert_non_null(strstr(f.rotated_names, "f:pass"));
	assert_int_equal(cache_get(c, "d/user", 60000, &s[1]), 0);
	assert_int_equal(cache_get(c, "f:pass", 60000, &s[5]), 0);
	assert_snap(s[1], "u2", "2");
	assert_snap(s[5], "p2", "2");
	assert_int_equal(f.fetches, 2);
	cache_stats(c, &st);
	assert_int_equal(st.rotations, 1);

	/* What was pinned before the rotation is intact. */
	assert_snap(old_user, "u1", "1");
	assert_non_null(strstr((const char *)old_whole->data, "\"p1\""));
	cache_put(old_user);
	cache_put(old_whole);
	cache_put(s[1]);
	cache_put(s[5]);

	/* A name no longer configured is not served. */
	assert_int_equal(cache_get(c, "gone", 60000, &s[0]), -ENOENT);
	/* Another ref is another source: its own fetch. */
	assert_int_equal(cache_get(c, "other/user", 60000, &s[0]), 0);
	assert_int_equal(f.fetches, 3);
	cache_put(s[0]);
	cache_free(c);
}

/* Concurrent readers of different names of one source: still one fetch. */
struct name_reader {
	struct cache		*c;
	pthread_barrier_t	*go;
	const char		*name;
	int			 r;
};

static void *
read_name(void *arg)
{
	struct name_reader *a = arg;
	struct cache_snap *s;

	pthread_barrier_wait(a->go);
	if ((a->r = cache_get(a->c, a->name, 60000, &s)) == 0)
		cache_put(s);
	return NULL;
}

static int
slow_json_fetch(void *arg, const char *name, struct backend_value *out,
    char *errbuf, size_t errlen)
{
	usleep(50 * 1000);
	return json_fetch(arg, name, out, errbuf, errlen);
}

static void
test_names_singleflight(void **state)
{
	static const char *const names[] = { "d", "d/user", "d/pass",
	    "f:user", "f:pass", "d/n" };
	struct json_fake f = { .version = 7, .user = "a", .pass = "b" };
	struct cache_limits lim = { .max_bytes = 4096, .max_stale_ms = 60000 };
	struct cache_source src = { .resolve = json_resolve };
	struct cache *c = cache_new(&lim, slow_json_fetch, &f);
	struct name_reader r[6];
	pthread_barrier_t go;
	pthread_t t[6];
	int i;

	(void)state;
	cache_set_source(c, &src, NULL);
	pthread_barrier_init(&go, NULL, 6);
	for (i = 0; i < 6; i++) {
		r[i] = (struct name_reader){ c, &go, names[i], -1 };
		pthread_create(&t[i], NULL, read_name, &r[i]);
	}
	for (i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].r, 0);
	}
	assert_int_equal(f.fetches, 1);
	pthread_barrier_destroy(&go);
	cache_free(c);
}

/*
 * An answer without a version (KV v1, say) gets a keyed digest: 16 hex
 * digits, the same for the same bytes, another for others, and no plain
 * hash of the value (another cache, another key).
 */
static void
test_versionless_answer_gets_a_digest(void **state)
{
	struct json_fake f = { .version = 0, .user = "u", .pass = "p" };
	struct cache *c = make_json(&f), *c2 = make_json(&f);
	struct cache_snap *s, *s2;
	struct timespec changed;
	char v1[64];
	size_t i;

	(void)state;
	assert_int_equal(cache_get(c, "f:user", 60000, &s), 0);
	assert_int_equal(strlen(s->version), 16);
	for (i = 0; i < 16; i++)
		assert_non_null(strchr("0123456789abcdef", s->version[i]));
	snprintf(v1, sizeof(v1), "%s", s->version);
	changed = s->changed;
	cache_put(s);
	/* The same bytes again: the same version (and time), no rotation. */
	usleep(2000);
	assert_int_equal(cache_refresh_now(c, "f:user", 60000, 0, NULL, 0), 0);
	assert_int_equal(f.rotated, 0);
	assert_int_equal(cache_get(c, "f:user", 60000, &s), 0);
	assert_string_equal(s->version, v1);
	assert_true(s->changed.tv_sec == changed.tv_sec &&
	    s->changed.tv_nsec == changed.tv_nsec);
	assert_true(s->fetched.tv_sec != changed.tv_sec ||
	    s->fetched.tv_nsec != changed.tv_nsec);
	cache_put(s);
	/* A rewrite: a new version and a rotation of each name. */
	strcpy(f.pass, "p-new");
	assert_int_equal(cache_refresh_now(c, "f:user", 60000, 0, NULL, 0), 0);
	assert_int_equal(f.rotated, 1);
	assert_int_equal(cache_get(c, "f:user", 60000, &s), 0);
	assert_int_equal(strlen(s->version), 16);
	assert_string_not_equal(s->version, v1);
	/* Another daemon's key: another digest of the same bytes. */
	assert_int_equal(cache_get(c2, "f:user", 60000, &s2), 0);
	assert_string_not_equal(s->version, s2->version);
	cache_put(s);
	cache_put(s2);
	cache_free(c);
	cache_free(c2);
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
		cmocka_unit_test(test_names_of_one_source_share_one_fetch),
		cmocka_unit_test(test_names_singleflight),
		cmocka_unit_test(test_versionless_answer_gets_a_digest),
	};

	return cmocka_run_group_tests_name("cache", tests, setup, NULL);
}
