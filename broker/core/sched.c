/*
 * The scheduler threads only ask the cache for one due entry at a time
 * (cache_refresh_step, which asks refresh.h's decisions) and sleep until
 * the next one is due or the cache wakes them (a new value, a read of a
 * value near its expiry).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <secretsfs/clk.h>
#include <secretsfs/cache.h>
#include <secretsfs/sched.h>
#include <secretsfs/secmem.h>

struct sched {
	struct cache	*cache;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;	/* CLOCK_MONOTONIC */
	uint64_t	 kicks;
	bool		 stop;
	pthread_t	*threads;
	unsigned	 nthreads;
};

static void *
worker(void *arg)
{
	struct sched *s = arg;
	struct timespec until;
	uint64_t seen;
	int64_t next, now;
	int did;

	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		seen = s->kicks;
		pthread_mutex_unlock(&s->lock);
		now = clk_mono_ms();
		did = cache_refresh_step(s->cache, now, &next);
		secmem_wipe_registers();	/* a refresh copies values */
		pthread_mutex_lock(&s->lock);
		if (did || s->kicks != seen || s->stop)
			continue;
		/* Look again at least once a minute, whatever happens. */
		if (next > now + 60000)
			next = now + 60000;
		until = clk_at_ms(next);
		pthread_cond_timedwait(&s->cond, &s->lock, &until);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

void
sched_kick(struct sched *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->kicks++;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void
waker(void *arg)
{
	sched_kick(arg);
}

int
sched_start(struct cache *c, unsigned nthreads, struct sched **out)
{
	sigset_t all, old;
	struct sched *s;
	unsigned i;
	int e;

	*out = NULL;
	if (nthreads == 0)
		nthreads = 1;
	if (!(s = calloc(1, sizeof(*s))) ||
	    !(s->threads = calloc(nthreads, sizeof(*s->threads)))) {
		free(s);
		return -ENOMEM;
	}
	s->cache = c;
	pthread_mutex_init(&s->lock, NULL);
	/* glibc's pthread_cond_init cannot fail: nothing to undo. */
	(void)clk_cond_init(&s->cond);
	/* Signals are the FUSE loop's and the SIGHUP thread's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < nthreads; i++) {
		if ((e = pthread_create(&s->threads[i], NULL, worker, s)) != 0)
			break;
		s->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (s->nthreads == 0) {
		sched_stop(s);
		return -e;
	}
	cache_set_waker(c, waker, s);
	*out = s;
	return 0;
}

void
sched_stop(struct sched *s)
{
	unsigned i;

	if (!s)
		return;
	cache_set_waker(s->cache, NULL, NULL);
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	for (i = 0; i < s->nthreads; i++)
		pthread_join(s->threads[i], NULL);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s->threads);
	free(s);
}
