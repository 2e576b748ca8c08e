/*
 * Who opened which version of each secret (struct track, per cache name),
 * process by process: status shows every process still running that has
 * not reopened since a rotation, and on_rotate signals them. The track
 * also keeps what status says of the last fetch (its error, an expiry).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <secretsfs/broker.h>
#include <secretsfs/config.h>
#include <secretsfs/identity.h>
#include <secretsfs/log.h>

#include "broker_int.h"

#define TRACK_HOLDERS_MAX	1024	/* callers remembered per secret */
#define HOLDER_PIDS		32	/* openers remembered per caller */

/*
 * One process that opened a secret, with the version it opened last: a
 * container's processes each hold their own, so that one process's read
 * of a new version never hides another's that still holds the old one.
 */
struct opener {
	pid_t		pid;
	uint64_t	start;
	char		comm[17];
	uid_t		uid;
	char		*version;	/* NULL only when out of memory */
	struct timespec	last_open;
};

/*
 * One caller that opened a secret: a container (its processes are its
 * openers), or a host process (itself its one opener). There is one per
 * secret a process has read, so the strings that are long at most and
 * short in practice are allocated to fit.
 */
struct holder {
	bool		container;
	char		*container_id;		/* set exactly when container */
	char		*container_name;	/* NULL: unknown */
	/* The pod as the kubelet listed it (runtime.kubelet); NULL: none. */
	char		*k8s_namespace, *k8s_pod, *k8s_sa, *k8s_container;
	enum identity_runtime runtime;
	pid_t		pid;
	uint64_t	start;
	char		comm[17];
	uid_t		uid;
	char		*version;	/* the last opener's; NULL on OOM */
	struct timespec	last_open;
	struct opener	*pids;		/* a host process: just itself */
	uint8_t		npids, cap;	/* at most HOLDER_PIDS */
};

struct track {
	struct track	*next;
	struct holder	*h;
	size_t		 n, cap;
	bool		 rotated;
	struct timespec	 rotated_at;
	char		*previous;	/* NULL: none */
	bool		 expired;	/* dropped past max_stale since */
	char		*last_error;	/* the last failed fetch's words */
	char		 name[];
};

/* ------------------------------------------------------------------ */
/* Who opened what.                                                   */

/* Locked. Double the table (256 slots at first); on failure keep it. */
static void
tracks_grow(struct broker *b)
{
	size_t n = b->ntrack_slots ? b->ntrack_slots * 2 : 256, k, j;
	struct track **nt, *t;

	if (!(nt = calloc(n, sizeof(*nt))))
		return;
	for (k = 0; k < b->ntrack_slots; k++)
		while ((t = b->tracks[k])) {
			b->tracks[k] = t->next;
			j = broker_hash(t->name) & (n - 1);
			t->next = nt[j];
			nt[j] = t;
		}
	free(b->tracks);
	b->tracks = nt;
	b->ntrack_slots = n;
}

/* Locked. */
static struct track *
track_find(struct broker *b, const char *name, bool create)
{
	struct track *t;
	size_t k;

	if (b->ntrack_slots) {
		k = broker_hash(name) & (b->ntrack_slots - 1);
		for (t = b->tracks[k]; t; t = t->next)
			if (strcmp(t->name, name) == 0)
				return t;
	}
	if (!create)
		return NULL;
	/* A fixed table made every open walk a chain of n/256 names. */
	if (b->ntracks >= b->ntrack_slots)
		tracks_grow(b);
	if (!b->ntrack_slots ||
	    !(t = calloc(1, sizeof(*t) + strlen(name) + 1)))
		return NULL;
	memcpy(t->name, name, strlen(name) + 1);
	k = broker_hash(name) & (b->ntrack_slots - 1);
	t->next = b->tracks[k];
	b->tracks[k] = t;
	b->ntracks++;
	return t;
}

static const char *
nz(const char *s)
{
	return s ? s : "";
}

/* Replace *dst by a copy of src (NULL or "" for none); on OOM it is NULL. */
static void
set_str(char **dst, const char *src)
{
	if (src && *src && *dst && strcmp(*dst, src) == 0)
		return;
	free(*dst);
	*dst = src && *src ? strdup(src) : NULL;
}

static void
holder_clear(struct holder *h)
{
	for (size_t i = 0; i < h->npids; i++)
		free(h->pids[i].version);
	free(h->container_id);
	free(h->container_name);
	free(h->k8s_namespace);
	free(h->k8s_pod);
	free(h->k8s_sa);
	free(h->k8s_container);
	free(h->version);
	free(h->pids);
}

/* Drop opener j of h, keeping the order (oldest first). Locked. */
static void
opener_drop(struct holder *h, size_t j)
{
	free(h->pids[j].version);
	memmove(&h->pids[j], &h->pids[j + 1],
	    (h->npids - j - 1) * sizeof(h->pids[0]));
	h->npids--;
}

/* Drop holder i, moving the last one into its place. Locked. */
static void
holder_drop(struct track *t, size_t i)
{
	holder_clear(&t->h[i]);
	t->h[i] = t->h[--t->n];
}

static void
track_free(struct track *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		holder_clear(&t->h[i]);
	free(t->h);
	free(t->previous);
	free(t->last_error);
	free(t);
}

/* Forget name and its files ("name/..."). */
void
broker_holders_remove(struct broker *b, const char *name)
{
	size_t k, n = strlen(name);
	struct track **pp, *t;

	pthread_mutex_lock(&b->track_lock);
	for (k = 0; k < b->ntrack_slots; k++)
		for (pp = &b->tracks[k]; (t = *pp); ) {
			if (strcmp(t->name, name) == 0 ||
			    (strncmp(t->name, name, n) == 0 && t->name[n] == '/')) {
				*pp = t->next;
				track_free(t);
				b->ntracks--;
			} else
				pp = &t->next;
		}
	pthread_mutex_unlock(&b->track_lock);
}

/* Is pid still the process that started at `start`? */
static bool
alive(pid_t pid, uint64_t start)
{
	char path[64], buf[1024], comm[17];
	uint64_t st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return identity_parse_stat(buf, &st, comm) == 0 && st == start;
}

/* Drop the openers that exited, then the holders left with none. Locked. */
static void
prune(struct track *t)
{
	size_t i, j, k;

	for (i = 0; i < t->n; ) {
		struct holder *h = &t->h[i];

		for (j = k = 0; j < h->npids; j++)
			if (alive(h->pids[j].pid, h->pids[j].start))
				h->pids[k++] = h->pids[j];
			else
				free(h->pids[j].version);
		h->npids = k;
		if (k == 0)
			holder_drop(t, i);
		else
			i++;
	}
}

static bool
same_caller(const struct holder *h, const struct caller *c)
{
	if (c->container_id[0])
		return h->container &&
		    strcmp(h->container_id, c->container_id) == 0;
	return !h->container && h->pid == c->pid && h->start == c->start_time;
}

/* An allowed open of version `version` of name by c. */
void
broker_holders_open(struct broker *b, const char *name, const struct caller *c,
    const char *version)
{
	struct holder *h = NULL, *grown;
	struct track *t;
	size_t i, oldest;

	pthread_mutex_lock(&b->track_lock);
	if (!(t = track_find(b, name, true)))
		goto out;
	for (i = 0; i < t->n && !h; i++)
		if (same_caller(&t->h[i], c))
			h = &t->h[i];
	if (!h && t->n == TRACK_HOLDERS_MAX)
		prune(t);
	if (!h && t->n == TRACK_HOLDERS_MAX) {
		/* Still full: the caller that opened longest ago makes room. */
		for (i = oldest = 0; i < t->n; i++)
			if (t->h[i].last_open.tv_sec <
			    t->h[oldest].last_open.tv_sec)
				oldest = i;
		holder_drop(t, oldest);
	}
	if (!h) {
		if (t->n == t->cap) {
			/* Most secrets are read by one caller. */
			size_t cap = t->cap ? 2 * t->cap : 1;

			if (!(grown = realloc(t->h, cap * sizeof(*grown))))
				goto out;
			t->h = grown;
			t->cap = cap;
		}
		h = &t->h[t->n];
		memset(h, 0, sizeof(*h));
		h->container = c->container_id[0] != '\0';
		if (h->container && !(h->container_id = strdup(c->container_id)))
			goto out;
		h->runtime = c->runtime;
		t->n++;
	}
	h->pid = c->pid;
	h->start = c->start_time;
	h->uid = c->uid;
	memcpy(h->comm, c->comm, sizeof(h->comm));
	if (c->container_name[0])
		set_str(&h->container_name, c->container_name);
	if (c->k8s.state == IDENTITY_K8S_KNOWN) {
		set_str(&h->k8s_namespace, c->k8s.namespace);
		set_str(&h->k8s_pod, c->k8s.pod);
		set_str(&h->k8s_sa, c->k8s.service_account);
		set_str(&h->k8s_container, c->k8s.container);
	}
	set_str(&h->version, version);
	clock_gettime(CLOCK_REALTIME, &h->last_open);
	for (i = 0; i < h->npids; i++)
		if (h->pids[i].pid == c->pid && h->pids[i].start == c->start_time)
			break;
	if (i == h->npids) {
		/*
		 * Full: the openers that exited go first, so that a burst of
		 * short readers never pushes out a long-lived holder; else the
		 * one that opened longest ago.
		 */
		if (h->npids == HOLDER_PIDS) {
			for (size_t j = 0; j < h->npids; ) {
				if (!alive(h->pids[j].pid, h->pids[j].start))
					opener_drop(h, j);
				else
					j++;
			}
		}
		if (h->npids == HOLDER_PIDS)
			opener_drop(h, 0);
		if (h->npids == h->cap) {
			uint8_t cap = h->cap ? 2 * h->cap : 1;
			struct opener *p;

			/* Out of memory: this opener is not remembered. */
			if (!(p = realloc(h->pids, cap * sizeof(*p))))
				goto out;
			h->pids = p;
			h->cap = cap;
		}
		i = h->npids++;
		memset(&h->pids[i], 0, sizeof(h->pids[i]));
		h->pids[i].pid = c->pid;
		h->pids[i].start = c->start_time;
	} else if (i + 1 < h->npids) {
		/* The most recent opener last: eviction takes the oldest. */
		struct opener o = h->pids[i];

		memmove(&h->pids[i], &h->pids[i + 1],
		    (h->npids - i - 1) * sizeof(o));
		h->pids[h->npids - 1] = o;
		i = h->npids - 1;
	}
	h->pids[i].uid = c->uid;
	memcpy(h->pids[i].comm, c->comm, sizeof(h->pids[i].comm));
	set_str(&h->pids[i].version, version);
	h->pids[i].last_open = h->last_open;
out:
	pthread_mutex_unlock(&b->track_lock);
}

static int
pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int
pidfd_signal(int fd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}

/*
 * on_rotate: signal every process still running that opened an older
 * version of name. The pidfd pins the process; its start time, read after
 * the pidfd was opened, proves it is the one that opened the secret and
 * not a newcomer that reused the pid.
 */
void
broker_holders_signal(struct broker *b, const char *name, const char *version,
    int sig)
{
	struct opener who[64];
	char st_comm[17];
	size_t n = 0, i, j;
	struct track *t;
	uint64_t st;
	char path[64], buf[1024];
	ssize_t len;
	int fd, pfd;

	pthread_mutex_lock(&b->track_lock);
	if ((t = track_find(b, name, false)))
		for (i = 0; i < t->n; i++)
			for (j = 0; j < t->h[i].npids && n < 64; j++)
				if (strcmp(nz(t->h[i].pids[j].version),
				    version) != 0)
					who[n++] = t->h[i].pids[j];
	pthread_mutex_unlock(&b->track_lock);
	for (i = 0; i < n; i++) {
		if ((pfd = pidfd_open_(who[i].pid)) < 0)
			continue;	/* gone */
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)who[i].pid);
		len = -1;
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
			len = read(fd, buf, sizeof(buf) - 1);
			close(fd);
		}
		if (len > 0) {
			buf[len] = '\0';
			if (identity_parse_stat(buf, &st, st_comm) == 0 &&
			    st == who[i].start) {
				if (pidfd_signal(pfd, sig) == 0) {
					broker_count(&b->signals_sent);
					log_info("secret %s: sent %s to pid %d (%s) "
					    "to load version %s", name,
					    config_signal_name(sig),
					    (int)who[i].pid, st_comm, version);
				} else
					log_warn("secret %s: cannot signal pid %d",
					    name, (int)who[i].pid);
			}
		}
		close(pfd);
	}
}

void
broker_holders_rotated(struct broker *b, const char *name,
    const char *old_version)
{
	struct track *t;

	pthread_mutex_lock(&b->track_lock);
	if ((t = track_find(b, name, true))) {
		t->rotated = true;
		clock_gettime(CLOCK_REALTIME, &t->rotated_at);
		set_str(&t->previous, old_version);
	}
	pthread_mutex_unlock(&b->track_lock);
}

/*
 * For status: the processes still running that opened another version
 * than the current one, one entry each (a container's are named with
 * their container), the rotation, and the last fetch error.
 */
void
broker_holders_fill(struct broker *b, struct broker_secret_info *si)
{
	struct track *t;
	size_t i, j, total = 0;

	pthread_mutex_lock(&b->track_lock);
	if (!(t = track_find(b, si->name, false))) {
		pthread_mutex_unlock(&b->track_lock);
		return;
	}
	prune(t);
	si->holders = t->n;
	si->rotated = t->rotated;
	si->rotated_at = t->rotated_at;
	si->expired = t->expired;
	snprintf(si->previous, sizeof(si->previous), "%s", nz(t->previous));
	snprintf(si->last_error, sizeof(si->last_error), "%s",
	    nz(t->last_error));
	for (i = 0; i < t->n; i++)
		total += t->h[i].npids;
	if (total && !(si->behind = calloc(total, sizeof(*si->behind)))) {
		pthread_mutex_unlock(&b->track_lock);
		return;
	}
	for (i = 0; i < t->n; i++) {
		const struct holder *h = &t->h[i];

		for (j = 0; j < h->npids; j++) {
			const struct opener *o = &h->pids[j];
			struct broker_holder_info *hi;

			if (!si->cache.version[0] ||
			    strcmp(nz(o->version), si->cache.version) == 0)
				continue;
			hi = &si->behind[si->nbehind++];
			hi->container = h->container;
			snprintf(hi->container_id, sizeof(hi->container_id),
			    "%s", nz(h->container_id));
			snprintf(hi->container_name, sizeof(hi->container_name),
			    "%s", nz(h->container_name));
			snprintf(hi->runtime, sizeof(hi->runtime), "%s",
			    identity_runtime_name(h->runtime));
			snprintf(hi->k8s_namespace, sizeof(hi->k8s_namespace),
			    "%s", nz(h->k8s_namespace));
			snprintf(hi->k8s_pod, sizeof(hi->k8s_pod), "%s",
			    nz(h->k8s_pod));
			snprintf(hi->k8s_service_account,
			    sizeof(hi->k8s_service_account), "%s", nz(h->k8s_sa));
			snprintf(hi->k8s_container, sizeof(hi->k8s_container),
			    "%s", nz(h->k8s_container));
			hi->pid = o->pid;
			memcpy(hi->comm, o->comm, sizeof(hi->comm));
			hi->uid = o->uid;
			snprintf(hi->version, sizeof(hi->version), "%s",
			    nz(o->version));
			hi->last_open = o->last_open;
			hi->pids[hi->npids++] = o->pid;
		}
	}
	pthread_mutex_unlock(&b->track_lock);
}

/* A fetch of name failed (why) or worked (why NULL): for status. */
void
broker_holders_fetched(struct broker *b, const char *name, const char *why)
{
	struct track *t;

	pthread_mutex_lock(&b->track_lock);
	if ((t = track_find(b, name, why != NULL))) {
		if (why)
			set_str(&t->last_error, why);
		else {
			set_str(&t->last_error, NULL);
			t->expired = false;
		}
	}
	pthread_mutex_unlock(&b->track_lock);
}

/* name's value was dropped past cache.max_stale. */
void
broker_holders_expired(struct broker *b, const char *name)
{
	struct track *t;

	pthread_mutex_lock(&b->track_lock);
	if ((t = track_find(b, name, true)))
		t->expired = true;
	pthread_mutex_unlock(&b->track_lock);
}

void
broker_holders_free(struct broker *b)
{
	size_t k;

	for (k = 0; k < b->ntrack_slots; k++)
		while (b->tracks[k]) {
			struct track *t = b->tracks[k];

			b->tracks[k] = t->next;
			track_free(t);
		}
	free(b->tracks);
	b->tracks = NULL;
	b->ntrack_slots = b->ntracks = 0;
}
