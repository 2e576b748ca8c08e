/*
 * sched: the threads that fetch cached secrets ahead of their expiry, so
 * that steady readers never wait on the network. What is due and when is
 * refresh.h's decision; the threads only drive cache_refresh_step().
 */
#ifndef SECRETSFS_SCHED_H
#define SECRETSFS_SCHED_H

struct cache;
struct sched;

/*
 * Start nthreads threads that keep c's entries fresh (cache_refresh_step)
 * and register them as c's waker. The threads block every signal. 0 and
 * *out, or -errno.
 */
int sched_start(struct cache *c, unsigned nthreads, struct sched **out);

/* Make the threads look at the cache again now. Thread-safe; NULL is fine. */
void sched_kick(struct sched *s);

/*
 * Stop and join the threads (a fetch in flight is finished first, bounded
 * by the backend's timeouts), unregister the waker, free. NULL is fine.
 */
void sched_stop(struct sched *s);

#endif
