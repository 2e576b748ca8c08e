/*
 * The broker glues config, backends and cache. The name index is an
 * open-addressing table built once per config: lookups happen on every
 * path walk, so they must not scan a list of 10,000 names.
 *
 * A reload builds a whole new view (config, index, backends; a backend
 * whose definition did not change is shared with the old view, so its
 * token and connections survive) and swaps it in under view_lock. The old
 * view lives on until the last request that pinned it releases it.
 *
 * The broker also remembers, per secret, who opened which version
 * (struct track): status shows who has not reopened since a rotation, and
 * on_rotate signals them.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <secretsfs/clk.h>
#include <secretsfs/backend.h>
#include <secretsfs/broker.h>
#include <secretsfs/engine.h>
#include <secretsfs/log.h>
#include <secretsfs/sched.h>
#include <secretsfs/repair.h>
#include <secretsfs/secmem.h>

/* Identity lookups are cached per (pid, start time) this long. */
#define IDENTITY_CACHE_ENTRIES	4096
#define IDENTITY_CACHE_TTL_MS	5000
#define REFRESH_THREADS		4
#define TRACK_HOLDERS_MAX	1024	/* callers remembered per secret */
#define HOLDER_PIDS		8	/* openers remembered per caller */
#define NAME_CAP		(2 * NAME_MAX + 2)

const double broker_latency_bounds[BROKER_LATENCY_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};

/* The last listing of an "as": "prefix" secret. */
struct listing {
	char		**names;
	size_t		  n;
	int64_t		  due;		/* monotonic ms */
};

/* A backend instance, shared by the views whose config defines it alike. */
struct shared_backend {
	int		 refs;
	struct backend	*be;
	char		*type;
	json_t		*opts;		/* its config object, to compare */
};

struct broker_view {
	int			 refs;
	struct broker		*b;
	struct config		*cfg;
	struct shared_backend	**backends;	/* one per cfg->backends */
	ssize_t			*index;		/* slot -> secret index, -1 empty */
	size_t			 nslots;
	pthread_mutex_t		 list_lock;
	struct listing		*listings;	/* one per secret */
};

/* Per backend name, across reloads. */
struct backend_stat {
	char		name[128];
	char		type[16];
	uint64_t	requests, errors;
	uint64_t	buckets[BROKER_LATENCY_BUCKETS + 1];
	double		sum;
	int		reachable;	/* -1 unknown */
	int64_t		fail_since;	/* monotonic ms; 0 */
	char		last_error[BACKEND_ERR_MAX];
	bool		auth_known, auth_ok;
	char		auth_method[32], auth_action[16];
	long long	auth_ttl;
	int64_t		auth_at;	/* monotonic ms */
};

struct opener {
	pid_t		pid;
	uint64_t	start;
};

/*
 * One caller that opened a secret: a container, or a host process. There
 * is one per secret a process has read, so the strings that are long at
 * most and short in practice are allocated to fit.
 */
struct holder {
	bool		container;
	char		*container_id;		/* set exactly when container */
	char		*container_name;	/* NULL: unknown */
	enum identity_runtime runtime;
	pid_t		pid;
	uint64_t	start;
	char		comm[17];
	uid_t		uid;
	char		*version;	/* NULL only when out of memory */
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
	char		 name[];
};

struct broker {
	pthread_mutex_t		 view_lock;
	struct broker_view	*view;
	char			*config_file;
	struct cache		*cache;
	struct sched		*sched;
	struct identity_cache	*ids;
	struct engine		*engine;
	struct audit		*audit;
	struct timespec		 started, loaded;

	pthread_mutex_t		 stat_lock;	/* bstats, mounted */
	struct backend_stat	*bstats;
	size_t			 nbstats;
	char			 mountpoint[PATH_MAX];
	bool			 mounted;

	pthread_mutex_t		 track_lock;
	struct track		**tracks;	/* chained hash, grown at load 1 */
	size_t			 ntrack_slots;
	size_t			 ntracks;

	broker_changed_fn	 changed;
	void			*changed_arg;

	long			 open_files;	/* atomic */
	uint64_t		 reads, read_errors, denials;	/* atomic */
	uint64_t		 reloads, reload_errors, signals_sent;
};

static uint64_t
hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static void
count(uint64_t *n)
{
	__atomic_add_fetch(n, 1, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* Views.                                                             */

static int
build_index(struct broker_view *v)
{
	size_t i, slot;

	for (v->nslots = 16; v->nslots < 2 * v->cfg->n_secrets; v->nslots *= 2)
		;
	if (!(v->index = malloc(v->nslots * sizeof(*v->index))))
		return -ENOMEM;
	memset(v->index, 0xff, v->nslots * sizeof(*v->index));
	for (i = 0; i < v->cfg->n_secrets; i++) {
		slot = hash(v->cfg->secrets[i].name) & (v->nslots - 1);
		while (v->index[slot] >= 0)
			slot = (slot + 1) & (v->nslots - 1);
		v->index[slot] = (ssize_t)i;
	}
	return 0;
}

ssize_t
broker_view_lookup(const struct broker_view *v, const char *name)
{
	size_t slot = hash(name) & (v->nslots - 1);
	ssize_t i;

	while ((i = v->index[slot]) >= 0) {
		if (strcmp(v->cfg->secrets[i].name, name) == 0)
			return i;
		slot = (slot + 1) & (v->nslots - 1);
	}
	return -1;
}

static void
shared_release(struct shared_backend *sb)
{
	if (!sb || __atomic_sub_fetch(&sb->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	backend_close(sb->be);
	free(sb->type);
	json_decref(sb->opts);
	free(sb);
}

static void
view_free(struct broker_view *v)
{
	size_t i;

	if (!v)
		return;
	if (v->backends)
		for (i = 0; i < v->cfg->n_backends; i++)
			shared_release(v->backends[i]);
	free(v->backends);
	if (v->listings)
		for (i = 0; i < v->cfg->n_secrets; i++)
			broker_names_free(v->listings[i].names,
			    v->listings[i].n);
	free(v->listings);
	pthread_mutex_destroy(&v->list_lock);
	free(v->index);
	config_free(v->cfg);
	free(v);
}

/*
 * A view of cfg (taken over, also on failure). Backends defined exactly
 * as in old (same name, type and options) are shared with it; the others
 * are opened.
 */
static int
view_new(struct broker *b, struct config *cfg, struct broker_view *old,
    struct broker_view **out, char *errbuf, size_t errlen)
{
	struct broker_view *v;
	size_t i, j;
	int r;

	*out = NULL;
	if (!(v = calloc(1, sizeof(*v)))) {
		config_free(cfg);
		return -ENOMEM;
	}
	v->refs = 1;
	v->b = b;
	v->cfg = cfg;
	pthread_mutex_init(&v->list_lock, NULL);
	if (!(v->backends = calloc(cfg->n_backends + 1, sizeof(*v->backends))) ||
	    !(v->listings = calloc(cfg->n_secrets + 1, sizeof(*v->listings))) ||
	    (r = build_index(v)) < 0) {
		snprintf(errbuf, errlen, "%s", strerror(ENOMEM));
		view_free(v);
		return -ENOMEM;
	}
	for (i = 0; i < cfg->n_backends; i++) {
		const struct config_backend *cb = &cfg->backends[i];
		struct shared_backend *sb = NULL;
		char why[BACKEND_ERR_MAX] = "";

		for (j = 0; old && j < old->cfg->n_backends; j++)
			if (strcmp(old->cfg->backends[j].name, cb->name) == 0 &&
			    strcmp(old->backends[j]->type, cb->type) == 0 &&
			    json_equal(old->backends[j]->opts, cb->options)) {
				sb = old->backends[j];
				__atomic_add_fetch(&sb->refs, 1, __ATOMIC_ACQ_REL);
				break;
			}
		if (!sb) {
			if (!(sb = calloc(1, sizeof(*sb))) ||
			    !(sb->type = strdup(cb->type))) {
				free(sb);
				view_free(v);
				snprintf(errbuf, errlen, "%s", strerror(ENOMEM));
				return -ENOMEM;
			}
			sb->refs = 1;
			sb->opts = json_incref(cb->options);
			if ((r = backend_open(cb, &sb->be, why, sizeof(why))) < 0) {
				snprintf(errbuf, errlen, "backend %s: %s", cb->name,
				    why[0] ? why : strerror(-r));
				shared_release(sb);
				view_free(v);
				return r;
			}
		}
		v->backends[i] = sb;
	}
	*out = v;
	return 0;
}

struct broker_view *
broker_acquire(struct broker *b)
{
	struct broker_view *v;

	pthread_mutex_lock(&b->view_lock);
	v = b->view;
	__atomic_add_fetch(&v->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&b->view_lock);
	return v;
}

void
broker_release(struct broker_view *v)
{
	if (v && __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) == 0)
		view_free(v);
}

const struct config *
broker_view_config(const struct broker_view *v)
{
	return v->cfg;
}

const struct config *
broker_config(const struct broker *b)
{
	return b->view->cfg;
}

struct cache *
broker_cache(struct broker *b)
{
	return b->cache;
}

/* ------------------------------------------------------------------ */
/* Backend statistics, by name.                                       */

/* Locked. */
static struct backend_stat *
bstat(struct broker *b, const char *name, const char *type)
{
	struct backend_stat *grown;
	size_t i;

	for (i = 0; i < b->nbstats; i++)
		if (strcmp(b->bstats[i].name, name) == 0)
			return &b->bstats[i];
	if (!(grown = realloc(b->bstats, (b->nbstats + 1) * sizeof(*grown))))
		return NULL;
	b->bstats = grown;
	memset(&grown[b->nbstats], 0, sizeof(*grown));
	snprintf(grown[b->nbstats].name, sizeof(grown->name), "%s", name);
	snprintf(grown[b->nbstats].type, sizeof(grown->type), "%s", type);
	grown[b->nbstats].reachable = -1;
	return &grown[b->nbstats++];
}

/*
 * One request to a backend, done: r is what the reader gets (0, -ENOENT
 * and -EACCES are answers; -EIO is a backend we could not use).
 */
static void
bstat_note(struct broker *b, const char *name, const char *type, int r,
    double secs, const char *why)
{
	struct backend_stat *s;
	size_t k;

	pthread_mutex_lock(&b->stat_lock);
	if ((s = bstat(b, name, type))) {
		s->requests++;
		for (k = 0; k < BROKER_LATENCY_BUCKETS &&
		    secs > broker_latency_bounds[k]; k++)
			;
		s->buckets[k]++;
		s->sum += secs;
		if (r < 0) {
			s->errors++;
			snprintf(s->last_error, sizeof(s->last_error), "%s",
			    why && *why ? why : strerror(-r));
		}
		if (r == -EIO) {
			if (s->reachable != 0)
				s->fail_since = clk_mono_ms();
			s->reachable = 0;
		} else {
			s->reachable = 1;
			s->fail_since = 0;
		}
	}
	pthread_mutex_unlock(&b->stat_lock);
}

/* ------------------------------------------------------------------ */
/* Fetching.                                                          */

/* The name and reference a record gives a secret or a file of one. */
static void
record_names(const struct config_secret *s, const char *child, char *name,
    size_t nlen, char *ref, size_t rlen)
{
	if (!child) {
		snprintf(name, nlen, "%s", s->name);
		snprintf(ref, rlen, "%s", s->ref);
		return;
	}
	snprintf(name, nlen, "%s/%s", s->name, child);
	if (s->as == CONFIG_AS_PREFIX)
		snprintf(ref, rlen, "%s/%s", s->ref, child);
	else
		snprintf(ref, rlen, "%s#%s", s->ref, child);
}

/* The configured secret a cache name belongs to, in v; NULL if none. */
static const struct config_secret *
secret_of(const struct broker_view *v, const char *name, const char **child)
{
	const char *slash = strchr(name, '/');
	char top[NAME_MAX + 1];
	ssize_t i;

	if (slash && slash - name > NAME_MAX)
		return NULL;
	snprintf(top, sizeof(top), "%.*s", slash ? (int)(slash - name) :
	    (int)strlen(name), name);
	if ((i = broker_view_lookup(v, top)) < 0)
		return NULL;
	if (child)
		*child = slash ? slash + 1 : NULL;
	return &v->cfg->secrets[i];
}

/*
 * The cache's fetch callback: name -> config entry -> backend. A file of a
 * directory secret is cached as "secret/file": a key of the secret's JSON
 * value ("as": "directory") or the secret ref/file ("as": "prefix").
 */
static int
fetch(void *arg, const char *name, struct backend_value *out, char *errbuf,
    size_t errlen)
{
	struct broker *b = arg;
	struct broker_view *v = broker_acquire(b);
	const struct config_secret *s;
	const struct config_backend *cb;
	struct backend_request req;
	uint64_t t0;
	const char *child = NULL;
	char ref[1024];
	int r;

	if (!(s = secret_of(v, name, &child))) {
		snprintf(errbuf, errlen, "not in the configuration");
		broker_release(v);
		return -ESTALE;
	}
	cb = &v->cfg->backends[s->backend];
	req.ref = s->ref;
	req.field = s->field;
	req.version = s->version;
	if (child && s->as == CONFIG_AS_DIRECTORY)
		req.field = child;
	else if (child && s->as == CONFIG_AS_PREFIX) {
		snprintf(ref, sizeof(ref), "%s/%s", s->ref, child);
		req.ref = ref;
	} else if (s->as == CONFIG_AS_DIRECTORY)
		req.field = NULL;	/* the whole object, to list its keys */
	t0 = clk_mono_us();
	r = backend_fetch(v->backends[s->backend]->be, &req, out, errbuf,
	    errlen);
	if (r < 0) {
		log_warnx("secret %s: backend %s: %s", name, cb->name,
		    errbuf[0] ? errbuf : strerror(-r));
		if (b->audit) {
			struct audit_backend_error ae = {
				.backend = cb->name,
				.secret = name, .ref = req.ref, .err = -r,
				.reason = strerror(-r),
			};

			if (audit_backend_error(b->audit, &ae) < 0)
				log_warnx("audit: cannot record a backend error");
		}
		/* Readers see three outcomes; anything else is an I/O error. */
		if (r != -ENOENT && r != -EACCES)
			r = -EIO;
	}
	bstat_note(b, cb->name, cb->type, r,
	    (double)(clk_mono_us() - t0) / 1e6, errbuf);
	broker_release(v);
	return r;
}

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
			j = hash(t->name) & (n - 1);
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
		k = hash(name) & (b->ntrack_slots - 1);
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
	k = hash(name) & (b->ntrack_slots - 1);
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
	free(h->container_id);
	free(h->container_name);
	free(h->version);
	free(h->pids);
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
	free(t);
}

/* Forget name and its files ("name/..."). */
static void
track_remove(struct broker *b, const char *name)
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
static void
track_open(struct broker *b, const char *name, const struct caller *c,
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
	set_str(&h->version, version);
	clock_gettime(CLOCK_REALTIME, &h->last_open);
	for (i = 0; i < h->npids; i++)
		if (h->pids[i].pid == c->pid && h->pids[i].start == c->start_time)
			break;
	if (i == h->npids) {
		if (h->npids == HOLDER_PIDS) {
			memmove(&h->pids[0], &h->pids[1],
			    (HOLDER_PIDS - 1) * sizeof(h->pids[0]));
			h->npids--;
		} else if (h->npids == h->cap) {
			uint8_t cap = h->cap ? 2 * h->cap : 1;
			struct opener *p;

			/* Out of memory: this opener is not remembered. */
			if (!(p = realloc(h->pids, cap * sizeof(*p))))
				goto out;
			h->pids = p;
			h->cap = cap;
		}
		h->pids[h->npids++] = (struct opener){ c->pid, c->start_time };
	}
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
static void
signal_openers(struct broker *b, const char *name, const char *version,
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
		for (i = 0; i < t->n; i++) {
			if (strcmp(nz(t->h[i].version), version) == 0)
				continue;
			for (j = 0; j < t->h[i].npids && n < 64; j++)
				who[n++] = t->h[i].pids[j];
		}
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
					count(&b->signals_sent);
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

/* ------------------------------------------------------------------ */
/* Cache events: the log, the audit trail, the filesystem, on_rotate. */

static void
cache_event(void *arg, const struct cache_event *ev)
{
	struct broker *b = arg;
	struct broker_view *v = broker_acquire(b);
	const struct config_secret *s;
	const char *child = NULL, *backend = NULL;
	char name[NAME_CAP], ref[1024] = "";
	struct track *t;

	if ((s = secret_of(v, ev->name, &child))) {
		record_names(s, child, name, sizeof(name), ref, sizeof(ref));
		backend = v->cfg->backends[s->backend].name;
	}
	switch (ev->type) {
	case CACHE_EV_ROTATING: {
		struct audit_rotate rot = {
			.secret = ev->name, .backend = backend,
			.ref = s ? ref : NULL,
			.old_version = ev->old_version,
			.new_version = ev->version,
		};

		log_info("secret %s: new version %s (was %s)", ev->name,
		    ev->version, ev->old_version);
		if (b->audit && audit_rotate(b->audit, &rot) < 0)
			log_warnx("audit: cannot record the rotation of %s",
			    ev->name);
		break;
	}
	case CACHE_EV_ROTATED:
		pthread_mutex_lock(&b->track_lock);
		if ((t = track_find(b, ev->name, true))) {
			t->rotated = true;
			clock_gettime(CLOCK_REALTIME, &t->rotated_at);
			set_str(&t->previous, ev->old_version);
		}
		pthread_mutex_unlock(&b->track_lock);
		if (b->changed)
			b->changed(b->changed_arg, ev->name);
		if (s && s->on_rotate)
			signal_openers(b, ev->name, ev->version, s->on_rotate);
		break;
	case CACHE_EV_STALE:
	case CACHE_EV_EXPIRED: {
		bool expired = ev->type == CACHE_EV_EXPIRED;
		struct audit_stale st = {
			.secret = ev->name, .backend = backend,
			.ref = s ? ref : NULL, .version = ev->version,
			.expired = expired, .age_ms = ev->age_ms,
		};

		if (expired)
			log_warnx("secret %s: no successful refresh for %lld s "
			    "past its refresh interval (cache.max_stale): version "
			    "%s dropped; reads fail with EIO until the backend "
			    "answers", ev->name, (long long)(v->cfg->max_stale_ms /
			    1000), ev->version);
		else
			log_warnx("secret %s: refresh failed; serving version %s "
			    "(fetched %lld s ago) while the backend is retried",
			    ev->name, ev->version, (long long)(ev->age_ms / 1000));
		if (b->audit && audit_stale(b->audit, &st) < 0)
			log_warnx("audit: cannot record the stale value of %s",
			    ev->name);
		break;
	}
	case CACHE_EV_RECOVERED:
		log_info("secret %s: the backend answers again; serving version "
		    "%s", ev->name, ev->version);
		break;
	case CACHE_EV_GONE:
		log_warnx("secret %s: the backend no longer has it; version %s "
		    "is served for %lld s more in case it is recreated",
		    ev->name, ev->version,
		    (long long)(v->cfg->delete_grace_ms / 1000));
		break;
	case CACHE_EV_REMOVED:
		log_warnx("secret %s: deleted in the backend: no longer served",
		    ev->name);
		if (b->changed)
			b->changed(b->changed_arg, ev->name);
		break;
	}
	broker_release(v);
}

/* Backends' logins and renewals, into the audit trail and status. */
static void
audit_auth_event(void *arg, const char *backend, const char *method,
    const char *action, bool ok, int err, long long ttl, const char *reason)
{
	struct broker *b = arg;
	struct backend_stat *s;
	struct audit_auth au = {
		.backend = backend,
		.method = method,
		.action = action,
		.outcome = ok ? AUDIT_OUTCOME_OK : AUDIT_OUTCOME_ERROR,
		.err = err,
		.ttl = ttl,
		.reason = reason,
	};

	pthread_mutex_lock(&b->stat_lock);
	if ((s = bstat(b, backend, ""))) {
		s->auth_known = true;
		s->auth_ok = ok;
		snprintf(s->auth_method, sizeof(s->auth_method), "%s",
		    method ? method : "");
		snprintf(s->auth_action, sizeof(s->auth_action), "%s",
		    action ? action : "");
		/* A failed renewal leaves the token granted before. */
		if (ok)
			s->auth_ttl = ttl;
		if (ok || !s->auth_at)
			s->auth_at = clk_mono_ms();
	}
	pthread_mutex_unlock(&b->stat_lock);
	if (b->audit && audit_auth(b->audit, &au) < 0)
		log_warnx("audit: cannot record a %s %s of backend %s", method,
		    action, backend);
}

/* ------------------------------------------------------------------ */

static struct cache_limits
limits_of(const struct config *cfg)
{
	struct cache_limits lim = {
		.max_bytes = cfg->cache_max_bytes,
		.negative_ttl_ms = cfg->negative_ttl_ms,
		.max_stale_ms = cfg->max_stale_ms,
		.delete_grace_ms = cfg->delete_grace_ms,
	};
	size_t locked = secmem_locked_bytes();

	/* The arena was sized at start; a reload cannot grow it. */
	if (locked && lim.max_bytes > locked / 2)
		lim.max_bytes = locked / 2;
	return lim;
}

int
broker_new(struct config *cfg, struct broker **out, char *errbuf,
    size_t errlen)
{
	struct cache_limits lim = limits_of(cfg);
	struct broker *b;
	size_t i;
	int r;

	*out = NULL;
	if (!(b = calloc(1, sizeof(*b)))) {
		config_free(cfg);
		return -ENOMEM;
	}
	pthread_mutex_init(&b->view_lock, NULL);
	pthread_mutex_init(&b->stat_lock, NULL);
	pthread_mutex_init(&b->track_lock, NULL);
	clock_gettime(CLOCK_REALTIME, &b->started);
	b->loaded = b->started;
	/* fuse_daemonize() moves us to "/": reloads need the whole path. */
	if (!(b->config_file = realpath(cfg->file, NULL)) &&
	    !(b->config_file = strdup(cfg->file))) {
		config_free(cfg);
		broker_free(b);
		return -ENOMEM;
	}
	if (cfg->audit) {
		char why[512] = "";

		if ((r = audit_open(cfg->audit, &b->audit, why, sizeof(why))) < 0) {
			snprintf(errbuf, errlen, "audit: %s", why[0] ? why :
			    strerror(-r));
			config_free(cfg);
			goto fail;
		}
	} else
		log_warnx("no \"audit\" section in the config: accesses are not "
		    "audited");
	backend_set_auth_hook(audit_auth_event, b);
	if ((r = view_new(b, cfg, NULL, &b->view, errbuf, errlen)) < 0)
		goto fail;
	for (i = 0; i < cfg->n_backends; i++) {
		pthread_mutex_lock(&b->stat_lock);
		bstat(b, cfg->backends[i].name, cfg->backends[i].type);
		pthread_mutex_unlock(&b->stat_lock);
	}
	if (!(b->cache = cache_new(&lim, fetch, b)) ||
	    !(b->ids = identity_cache_new(IDENTITY_CACHE_ENTRIES,
	    IDENTITY_CACHE_TTL_MS))) {
		r = -ENOMEM;
		snprintf(errbuf, errlen, "%s", strerror(-r));
		goto fail;
	}
	cache_set_events(b->cache, cache_event, b);
	if (cfg->runtime_socket && !(b->engine = engine_new(cfg->runtime_socket))) {
		r = -ENOMEM;
		snprintf(errbuf, errlen, "runtime.socket: %s", strerror(-r));
		goto fail;
	}
	if (policy_rule_count(cfg->policy) == 0)
		log_warnx("no access rules in the config: every secret is denied "
		    "to every caller");
	*out = b;
	return 0;
fail:
	broker_free(b);
	return r;
}

int
broker_start(struct broker *b)
{
	int r;

	if (b->sched)
		return 0;
	if ((r = audit_start(b->audit)) < 0)
		return r;
	return sched_start(b->cache, REFRESH_THREADS, &b->sched);
}

void
broker_stop(struct broker *b)
{
	sched_stop(b->sched);
	b->sched = NULL;
}

void
broker_free(struct broker *b)
{
	size_t k;

	if (!b)
		return;
	broker_stop(b);
	backend_set_auth_hook(NULL, NULL);
	audit_close(b->audit);
	engine_free(b->engine);
	identity_cache_free(b->ids);
	/* The cache's fetches use the view: free the cache first. */
	cache_free(b->cache);
	broker_release(b->view);
	for (k = 0; k < b->ntrack_slots; k++)
		while (b->tracks[k]) {
			struct track *t = b->tracks[k];

			b->tracks[k] = t->next;
			track_free(t);
		}
	free(b->tracks);
	free(b->bstats);
	free(b->config_file);
	pthread_mutex_destroy(&b->view_lock);
	pthread_mutex_destroy(&b->stat_lock);
	pthread_mutex_destroy(&b->track_lock);
	free(b);
}

static unsigned
cache_flags(const struct config_secret *s)
{
	return s->on_rotate ? CACHE_WATCHED : 0;
}

int
broker_get(struct broker_view *v, size_t idx, struct cache_snap **out)
{
	const struct config_secret *s = &v->cfg->secrets[idx];

	return cache_get_ex(v->b->cache, s->name, s->refresh_ms, cache_flags(s),
	    out);
}

int
broker_get_child(struct broker_view *v, size_t idx, const char *child,
    struct cache_snap **out)
{
	const struct config_secret *s = &v->cfg->secrets[idx];
	char name[NAME_CAP];

	snprintf(name, sizeof(name), "%s/%s", s->name, child);
	return cache_get_ex(v->b->cache, name, s->refresh_ms, cache_flags(s),
	    out);
}

void
broker_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static bool
valid_child(const char *s, size_t len)
{
	if (len == 0 || len > NAME_MAX || (len == 1 && s[0] == '.') ||
	    (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '/' || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* Append a copy of name to *names when it is a valid file name. */
static int
add_name(char ***names, size_t *n, const char *name, size_t len)
{
	char **grown;

	if (!valid_child(name, len))
		return 0;
	if (!(grown = realloc(*names, (*n + 1) * sizeof(**names))))
		return -ENOMEM;
	*names = grown;
	if (!(grown[*n] = strndup(name, len)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

/* The keys of a directory secret's JSON object value. */
static int
object_keys(struct broker_view *v, size_t idx, char ***names, size_t *n)
{
	struct cache_snap *snap;
	const char *key;
	json_t *doc, *val;
	int r = 0;

	if ((r = broker_get(v, idx, &snap)) < 0)
		return r;
	/* Parsed in the arena: the values next to the keys are secret. */
	doc = json_loadb((const char *)snap->data, snap->len, 0, NULL);
	cache_put(snap);
	if (!json_is_object(doc)) {
		log_warnx("secret %s: \"as\": \"directory\" but the value is "
		    "not a JSON object", v->cfg->secrets[idx].name);
		json_decref(doc);
		return -EIO;
	}
	json_object_foreach(doc, key, val)
		if ((r = add_name(names, n, key, strlen(key))) < 0)
			break;
	json_decref(doc);
	return r;
}

/* The names a prefix secret's backend lists, cached for `refresh`. */
static int
prefix_names(struct broker_view *v, size_t idx, char ***names, size_t *n)
{
	const struct config_secret *s = &v->cfg->secrets[idx];
	const struct config_backend *cb = &v->cfg->backends[s->backend];
	struct listing *l = &v->listings[idx];
	char ebuf[BACKEND_ERR_MAX] = "", **got = NULL;
	size_t ngot = 0, i;
	uint64_t t0;
	int64_t now;
	int r = 0;

	now = clk_mono_ms();
	pthread_mutex_lock(&v->list_lock);
	if (!l->names || now >= l->due) {
		t0 = clk_mono_us();
		r = backend_list(v->backends[s->backend]->be, s->ref, &got,
		    &ngot, ebuf, sizeof(ebuf));
		bstat_note(v->b, cb->name, cb->type, r == 0 || r == -ENOENT ||
		    r == -EACCES ? r : -EIO, (double)(clk_mono_us() - t0) / 1e6,
		    ebuf);
		if (r == 0 || r == -ENOENT) {
			broker_names_free(l->names, l->n);
			l->names = NULL;
			l->n = 0;
			/* Sub-folders end in '/': only the secrets are files. */
			for (i = 0; i < ngot && r >= 0; i++)
				r = add_name(&l->names, &l->n, got[i],
				    strlen(got[i]));
			l->due = now + s->refresh_ms;
			r = r < 0 ? r : 0;
		} else {
			log_warnx("secret %s: cannot list %s: %s", s->name,
			    s->ref, ebuf[0] ? ebuf : strerror(-r));
			/* The last listing stays good while the backend is away. */
			if (l->names)
				r = 0;
			else if (r != -EACCES)
				r = -EIO;
		}
		broker_names_free(got, ngot);
	}
	for (i = 0; r == 0 && i < l->n; i++)
		r = add_name(names, n, l->names[i], strlen(l->names[i]));
	pthread_mutex_unlock(&v->list_lock);
	return r;
}

int
broker_children(struct broker_view *v, size_t idx, char ***names, size_t *n)
{
	int r;

	*names = NULL;
	*n = 0;
	switch (v->cfg->secrets[idx].as) {
	case CONFIG_AS_DIRECTORY:
		r = object_keys(v, idx, names, n);
		break;
	case CONFIG_AS_PREFIX:
		r = prefix_names(v, idx, names, n);
		break;
	default:
		return -ENOTDIR;
	}
	if (r < 0) {
		broker_names_free(*names, *n);
		*names = NULL;
		*n = 0;
	}
	return r;
}

int
broker_peek(struct broker_view *v, size_t idx, struct cache_snap **out)
{
	return cache_peek(v->b->cache, v->cfg->secrets[idx].name, out);
}

int
broker_identify(struct broker *b, pid_t pid, uid_t uid, gid_t gid,
    struct caller *out)
{
	int r;

	if ((r = identity_lookup(b->ids, pid, uid, gid, out)) < 0)
		return r;
	/* Unknown metadata only means name/image/label rules cannot match. */
	if (b->engine && out->container_id[0] &&
	    (r = engine_enrich(b->engine, out)) < 0)
		log_debug("runtime metadata for container %.12s: %s",
		    out->container_id, strerror(-r));
	return 0;
}

bool
broker_allowed(struct broker_view *v, const struct caller *c, size_t idx,
    struct policy_decision *d)
{
	policy_decide(v->cfg->policy, c, v->cfg->secrets[idx].name, d);
	return d->allowed;
}

int
broker_deny_errno(const struct broker_view *v)
{
	return v->cfg->deny_errno;
}

static int
audit_result(struct broker *b, int r, const char *what)
{
	struct audit_stats st;

	if (r == 0)
		return 0;
	audit_get_stats(b->audit, &st);
	log_warnx("audit: cannot write the %s record: %s%s", what,
	    strerror(st.last_error ? st.last_error : -r),
	    audit_allow_on_failure(b->audit) ? " (allowed by on_failure)" :
	    "; refusing the access");
	return audit_allow_on_failure(b->audit) ? 0 : -EIO;
}

int
broker_audit_access(struct broker_view *v, const struct caller *c,
    size_t idx, const char *child, const char *rule,
    enum audit_outcome outcome, int err, const char *version)
{
	const struct config_secret *s = &v->cfg->secrets[idx];
	struct broker *b = v->b;
	char name[NAME_CAP], ref[1024];
	struct audit_access acc = {
		.secret = name,
		.backend = v->cfg->backends[s->backend].name,
		.ref = ref,
		.version = version,
		.rule = rule,
		.outcome = outcome,
		.err = err,
		.caller = c,
	};
	int r = 0;

	record_names(s, child, name, sizeof(name), ref, sizeof(ref));
	if (b->audit)
		r = audit_result(b, audit_access(b->audit, &acc), "access");
	if (outcome == AUDIT_OUTCOME_DENY)
		count(&b->denials);
	else if (outcome == AUDIT_OUTCOME_ERROR || r < 0)
		count(&b->read_errors);
	else {
		count(&b->reads);
		if (version)
			track_open(b, name, c, version);
	}
	return r;
}

int
broker_audit_lookup_denied(struct broker_view *v, const struct caller *c,
    size_t idx, const char *child, const char *rule)
{
	const struct config_secret *s = &v->cfg->secrets[idx];
	struct broker *b = v->b;
	char name[NAME_CAP], ref[1024];
	struct audit_access acc = {
		.secret = name,
		.backend = v->cfg->backends[s->backend].name,
		.ref = ref,
		.rule = rule,
		.outcome = AUDIT_OUTCOME_DENY,
		.err = v->cfg->deny_errno,
		.caller = c,
	};

	count(&b->denials);
	if (!b->audit)
		return 0;
	record_names(s, child, name, sizeof(name), ref, sizeof(ref));
	return audit_result(b, audit_lookup_denied(b->audit, &acc),
	    "lookup_denied");
}

void
broker_audit_reopen(struct broker *b)
{
	struct broker_view *v;
	int r;

	if (!b->audit)
		return;
	v = broker_acquire(b);
	if ((r = audit_reopen(b->audit)) < 0)
		log_warnx("audit: cannot reopen %s: %s", v->cfg->audit->file,
		    strerror(-r));
	else
		log_info("audit: reopened %s", v->cfg->audit->file);
	broker_release(v);
}

/* ------------------------------------------------------------------ */
/* Reload.                                                            */

static bool
str_differs(const char *a, const char *b)
{
	if (!a || !b)
		return a != b;
	return strcmp(a, b) != 0;
}

/* What a reload cannot change: say so, keep running as before. */
static void
warn_restart(const struct config *old, const struct config *new)
{
	static const char *const keys[] = { "mount", "memory", "audit",
	    "runtime", "control", "privsep" };
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *a = json_object_get(old->restart, keys[i]);
		json_t *b = json_object_get(new->restart, keys[i]);

		if ((a || b) && (!a || !b || !json_equal(a, b)))
			log_warnx("reload: \"%s\" changed; it takes effect at the "
			    "next start", keys[i]);
	}
}

static int
audit_reload(struct broker *b, const char *file, int err, const char *reason,
    size_t nsecrets)
{
	struct audit_kv kv[] = {
		AUDIT_STR(AUDIT_F_CONFIG, file),
		AUDIT_NUM(AUDIT_F_OUTCOME, err ? AUDIT_OUTCOME_ERROR :
		    AUDIT_OUTCOME_OK),
		AUDIT_NUM(AUDIT_F_ERRNO, err),
		AUDIT_STR(AUDIT_F_REASON, reason),
		AUDIT_NUM(AUDIT_F_COUNT, (long long)nsecrets),
	};

	if (!b->audit)
		return 0;
	if (audit_event(b->audit, AUDIT_EV_RELOAD, NULL, kv,
	    sizeof(kv) / sizeof(kv[0])) < 0) {
		log_warnx("audit: cannot record the reload");
		return -EIO;
	}
	return 0;
}

/* Must cached values of old secret i be dropped for new secret j? */
static bool
secret_changed(const struct broker_view *ov, size_t i,
    const struct broker_view *nv, size_t j)
{
	const struct config_secret *a = &ov->cfg->secrets[i];
	const struct config_secret *b = &nv->cfg->secrets[j];

	return a->as != b->as || str_differs(a->ref, b->ref) ||
	    str_differs(a->field, b->field) ||
	    str_differs(a->version, b->version) ||
	    ov->backends[a->backend] != nv->backends[b->backend];
}

int
broker_reload(struct broker *b)
{
	struct broker_view *ov, *nv;
	struct cfg_err err;
	struct config *cfg;
	struct cache_limits lim;
	size_t i, added = 0, removed = 0, changed = 0;
	char msg[1024];
	ssize_t j;
	int r;

	log_info("reloading %s", b->config_file);
	if ((r = config_load(b->config_file, &cfg, &err)) < 0) {
		cfg_err_format(&err, b->config_file, msg, sizeof(msg));
		log_warnx("reload: %s; still running on the previous "
		    "configuration", msg);
		count(&b->reload_errors);
		audit_reload(b, b->config_file, -r, "invalid configuration", 0);
		return r;
	}
	ov = broker_acquire(b);
	/*
	 * A SIGHUP for logrotate leaves the config as it was: nothing to
	 * swap, nothing to record.
	 */
	if (memcmp(ov->cfg->digest, cfg->digest, sizeof(cfg->digest)) == 0) {
		log_info("reload: %s is unchanged", b->config_file);
		broker_release(ov);
		config_free(cfg);
		return 0;
	}
	warn_restart(ov->cfg, cfg);
	if ((r = view_new(b, cfg, ov, &nv, msg, sizeof(msg))) < 0) {
		log_warnx("reload: %s; still running on the previous "
		    "configuration", msg);
		broker_release(ov);
		count(&b->reload_errors);
		audit_reload(b, b->config_file, -r, "a backend cannot be opened",
		    0);
		return r;
	}
	pthread_mutex_lock(&b->view_lock);
	b->view = nv;
	pthread_mutex_unlock(&b->view_lock);
	clock_gettime(CLOCK_REALTIME, &b->loaded);

	/* Values of secrets that are gone or redefined must not be served. */
	for (i = 0; i < ov->cfg->n_secrets; i++) {
		const char *name = ov->cfg->secrets[i].name;

		if ((j = broker_view_lookup(nv, name)) < 0)
			removed++;
		else if (secret_changed(ov, i, nv, (size_t)j))
			changed++;
		else
			continue;
		cache_forget_tree(b->cache, name, true);
		track_remove(b, name);
	}
	for (i = 0; i < nv->cfg->n_secrets; i++)
		if (broker_view_lookup(ov, nv->cfg->secrets[i].name) < 0)
			added++;
	for (i = 0; i < nv->cfg->n_backends; i++) {
		pthread_mutex_lock(&b->stat_lock);
		bstat(b, nv->cfg->backends[i].name, nv->cfg->backends[i].type);
		pthread_mutex_unlock(&b->stat_lock);
	}
	lim = limits_of(nv->cfg);
	cache_set_limits(b->cache, &lim);
	/* Once for our acquire, once for the broker's own reference. */
	broker_release(ov);
	broker_release(ov);
	count(&b->reloads);
	log_info("reloaded %s: %zu secrets (%zu added, %zu removed, %zu "
	    "redefined)", b->config_file, nv->cfg->n_secrets, added, removed,
	    changed);
	if (policy_rule_count(nv->cfg->policy) == 0)
		log_warnx("no access rules in the config: every secret is denied "
		    "to every caller");
	audit_reload(b, b->config_file, 0, NULL, nv->cfg->n_secrets);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Hooks and operations.                                              */

void
broker_set_changed_hook(struct broker *b, broker_changed_fn fn, void *arg)
{
	b->changed = fn;
	b->changed_arg = arg;
}

void
broker_set_mounted(struct broker *b, const char *mountpoint)
{
	pthread_mutex_lock(&b->stat_lock);
	b->mounted = mountpoint != NULL;
	if (mountpoint)
		snprintf(b->mountpoint, sizeof(b->mountpoint), "%s", mountpoint);
	pthread_mutex_unlock(&b->stat_lock);
}

void
broker_note_open(struct broker *b, int delta)
{
	__atomic_add_fetch(&b->open_files, delta, __ATOMIC_RELAXED);
}

int
broker_flush(struct broker *b, const char *name)
{
	struct broker_view *v = broker_acquire(b);
	ssize_t i = -1;
	size_t k;

	if (name && (i = broker_view_lookup(v, name)) < 0) {
		broker_release(v);
		return -ENOENT;
	}
	cache_forget_tree(b->cache, name, false);
	/* Listings of prefix secrets are asked again too. */
	pthread_mutex_lock(&v->list_lock);
	for (k = 0; k < v->cfg->n_secrets; k++)
		if (!name || (ssize_t)k == i)
			v->listings[k].due = 0;
	pthread_mutex_unlock(&v->list_lock);
	log_info("flushed the cached value%s of %s", name ? "" : "s",
	    name ? name : "every secret");
	broker_release(v);
	return 0;
}

struct collect {
	char		**names;
	size_t		  n, cap;
	const char	 *prefix;
	size_t		  plen;
	int		  err;
};

static void
collect_children(void *arg, const struct cache_entry_info *e)
{
	struct collect *c = arg;
	char **grown;

	if (c->err || strncmp(e->name, c->prefix, c->plen) != 0 ||
	    e->name[c->plen] != '/' || e->state == REFRESH_EMPTY)
		return;
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 8;

		if (!(grown = realloc(c->names, cap * sizeof(*grown)))) {
			c->err = -ENOMEM;
			return;
		}
		c->names = grown;
		c->cap = cap;
	}
	if (!(c->names[c->n] = strdup(e->name)))
		c->err = -ENOMEM;
	else
		c->n++;
}

int
broker_refresh(struct broker *b, const char *name, char *version,
    size_t vlen)
{
	struct broker_view *v = broker_acquire(b);
	const struct config_secret *s;
	struct collect col = { .prefix = name, .plen = strlen(name) };
	char ver[BACKEND_VERSION_MAX];
	ssize_t i;
	size_t k;
	int r;

	if ((i = broker_view_lookup(v, name)) < 0) {
		broker_release(v);
		return -ENOENT;
	}
	s = &v->cfg->secrets[i];
	if (s->as == CONFIG_AS_PREFIX) {
		/* A folder, not a value: list it again, refetch its files. */
		pthread_mutex_lock(&v->list_lock);
		v->listings[i].due = 0;
		pthread_mutex_unlock(&v->list_lock);
		snprintf(version, vlen, "-");
		r = 0;
	} else
		r = cache_refresh_now(b->cache, s->name, s->refresh_ms,
		    cache_flags(s), version, vlen);
	if (r == 0 && s->as != CONFIG_AS_FILE) {
		/* The files already read are refreshed with it. */
		cache_foreach(b->cache, collect_children, &col);
		for (k = 0; k < col.n; k++)
			if (cache_refresh_now(b->cache, col.names[k],
			    s->refresh_ms, cache_flags(s), ver, sizeof(ver)) < 0)
				r = r ? r : -EIO;
		broker_names_free(col.names, col.n);
		r = r ? r : col.err;
	}
	if (r == 0)
		log_info("refreshed %s on request: version %s", name,
		    version ? version : "");
	broker_release(v);
	return r;
}

int
broker_health(struct broker *b, char *why, size_t len)
{
	struct broker_view *v = broker_acquire(b);
	int64_t max_stale = v->cfg->max_stale_ms, now = clk_mono_ms();
	size_t i;
	int r = 0;

	broker_release(v);
	pthread_mutex_lock(&b->stat_lock);
	if (!b->mounted) {
		snprintf(why, len, "not mounted");
		r = -EIO;
	}
	for (i = 0; r == 0 && i < b->nbstats; i++) {
		const struct backend_stat *s = &b->bstats[i];

		if (s->reachable == 0 && now - s->fail_since > max_stale) {
			snprintf(why, len, "backend %s unreachable for %lld s "
			    "(cache.max_stale is %lld s): %s", s->name,
			    (long long)((now - s->fail_since) / 1000),
			    (long long)(max_stale / 1000), s->last_error);
			r = -EIO;
		}
	}
	if (r == 0)
		snprintf(why, len, "mounted on %s", b->mountpoint);
	pthread_mutex_unlock(&b->stat_lock);
	return r;
}

/* Status: the cache's entries, copied out. */
struct entries {
	struct broker_secret_info	*v;
	size_t				 n, cap;
	int				 err;
};

static struct broker_secret_info *
entries_add(struct entries *es, const char *name)
{
	struct broker_secret_info *grown;

	if (es->n == es->cap) {
		size_t cap = es->cap ? 2 * es->cap : 16;

		if (!(grown = realloc(es->v, cap * sizeof(*grown)))) {
			es->err = -ENOMEM;
			return NULL;
		}
		es->v = grown;
		es->cap = cap;
	}
	memset(&es->v[es->n], 0, sizeof(es->v[0]));
	snprintf(es->v[es->n].name, sizeof(es->v[0].name), "%s", name);
	return &es->v[es->n++];
}

static void
collect_entry(void *arg, const struct cache_entry_info *e)
{
	struct entries *es = arg;
	struct broker_secret_info *si;

	if (!(si = entries_add(es, e->name)))
		return;
	si->cached = true;
	si->cache = *e;
	si->cache.name = NULL;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(((const struct broker_secret_info *)a)->name,
	    ((const struct broker_secret_info *)b)->name);
}

/* The callers of si that opened another version than the current one. */
static void
fill_holders(struct broker *b, struct broker_secret_info *si)
{
	struct track *t;
	size_t i, j;

	pthread_mutex_lock(&b->track_lock);
	if (!(t = track_find(b, si->name, false))) {
		pthread_mutex_unlock(&b->track_lock);
		return;
	}
	prune(t);
	si->holders = t->n;
	si->rotated = t->rotated;
	si->rotated_at = t->rotated_at;
	snprintf(si->previous, sizeof(si->previous), "%s", nz(t->previous));
	if (t->n && !(si->behind = calloc(t->n, sizeof(*si->behind)))) {
		pthread_mutex_unlock(&b->track_lock);
		return;
	}
	for (i = 0; i < t->n; i++) {
		const struct holder *h = &t->h[i];
		struct broker_holder_info *hi;

		if (!si->cache.version[0] ||
		    strcmp(nz(h->version), si->cache.version) == 0)
			continue;
		hi = &si->behind[si->nbehind++];
		hi->container = h->container;
		snprintf(hi->container_id, sizeof(hi->container_id), "%s",
		    nz(h->container_id));
		snprintf(hi->container_name, sizeof(hi->container_name), "%s",
		    nz(h->container_name));
		snprintf(hi->runtime, sizeof(hi->runtime), "%s",
		    identity_runtime_name(h->runtime));
		hi->pid = h->pid;
		memcpy(hi->comm, h->comm, sizeof(hi->comm));
		hi->uid = h->uid;
		snprintf(hi->version, sizeof(hi->version), "%s", nz(h->version));
		hi->last_open = h->last_open;
		for (j = 0; j < h->npids; j++)
			hi->pids[hi->npids++] = h->pids[j].pid;
	}
	pthread_mutex_unlock(&b->track_lock);
}

int
broker_snapshot(struct broker *b, bool with_secrets,
    struct broker_snapshot *out)
{
	struct broker_view *v = broker_acquire(b);
	struct entries es = { 0 };
	int64_t now = clk_mono_ms();
	size_t i, ncached;

	memset(out, 0, sizeof(*out));
	out->pid = getpid();
	snprintf(out->config_file, sizeof(out->config_file), "%s",
	    b->config_file);
	out->started = b->started;
	out->loaded = b->loaded;
	out->max_stale_ms = v->cfg->max_stale_ms;
	out->locked_bytes = secmem_locked_bytes();
	out->used_bytes = secmem_used_bytes();
	out->backing = secmem_backing();
	out->cache_max_bytes = limits_of(v->cfg).max_bytes;
	cache_stats(b->cache, &out->cache);
	if ((out->audit_on = b->audit != NULL))
		audit_get_stats(b->audit, &out->audit);
	out->open_files = __atomic_load_n(&b->open_files, __ATOMIC_RELAXED);
	out->reads = __atomic_load_n(&b->reads, __ATOMIC_RELAXED);
	out->read_errors = __atomic_load_n(&b->read_errors, __ATOMIC_RELAXED);
	out->denials = __atomic_load_n(&b->denials, __ATOMIC_RELAXED);
	out->reloads = __atomic_load_n(&b->reloads, __ATOMIC_RELAXED);
	out->reload_errors = __atomic_load_n(&b->reload_errors,
	    __ATOMIC_RELAXED);
	out->signals_sent = __atomic_load_n(&b->signals_sent,
	    __ATOMIC_RELAXED);
	out->n_secrets_configured = v->cfg->n_secrets;

	pthread_mutex_lock(&b->stat_lock);
	out->mounted = b->mounted;
	snprintf(out->mountpoint, sizeof(out->mountpoint), "%s", b->mountpoint);
	if (b->nbstats &&
	    !(out->backends = calloc(b->nbstats, sizeof(*out->backends)))) {
		pthread_mutex_unlock(&b->stat_lock);
		goto oom;
	}
	for (i = 0; i < b->nbstats; i++) {
		const struct backend_stat *s = &b->bstats[i];
		struct broker_backend_info *bi = &out->backends[i];

		snprintf(bi->name, sizeof(bi->name), "%s", s->name);
		snprintf(bi->type, sizeof(bi->type), "%s", s->type);
		bi->requests = s->requests;
		bi->errors = s->errors;
		memcpy(bi->buckets, s->buckets, sizeof(bi->buckets));
		bi->latency_sum = s->sum;
		bi->reachable = s->reachable;
		bi->failing_ms = s->reachable == 0 ? now - s->fail_since : 0;
		memcpy(bi->last_error, s->last_error, sizeof(bi->last_error));
		bi->auth_known = s->auth_known;
		memcpy(bi->auth_method, s->auth_method, sizeof(bi->auth_method));
		memcpy(bi->auth_action, s->auth_action, sizeof(bi->auth_action));
		bi->auth_ok = s->auth_ok;
		bi->auth_ttl = s->auth_ttl;
		bi->auth_age_ms = s->auth_known ? now - s->auth_at : 0;
	}
	out->nbackends = b->nbstats;
	pthread_mutex_unlock(&b->stat_lock);

	if (with_secrets) {
		bool *listed;
		ssize_t j;

		cache_foreach(b->cache, collect_entry, &es);
		ncached = es.n;
		/* Configured secrets never read yet are listed too. */
		if (es.err || !(listed = calloc(v->cfg->n_secrets + 1,
		    sizeof(*listed))))
			goto oom;
		for (i = 0; i < ncached; i++)
			if ((j = broker_view_lookup(v, es.v[i].name)) >= 0)
				listed[j] = true;
		for (i = 0; i < v->cfg->n_secrets && !es.err; i++)
			if (!listed[i])
				entries_add(&es, v->cfg->secrets[i].name);
		free(listed);
		if (es.err)
			goto oom;
		for (i = 0; i < es.n; i++) {
			const struct config_secret *s;
			const char *child = NULL;

			if ((s = secret_of(v, es.v[i].name, &child))) {
				es.v[i].configured = child == NULL;
				if (s->on_rotate)
					es.v[i].on_rotate =
					    config_signal_name(s->on_rotate);
			}
			fill_holders(b, &es.v[i]);
		}
		/* Entries of secrets removed from the config are not shown. */
		for (i = 0; i < es.n; ) {
			if (!secret_of(v, es.v[i].name, NULL)) {
				free(es.v[i].behind);
				es.v[i] = es.v[--es.n];
			} else
				i++;
		}
		qsort(es.v, es.n, sizeof(es.v[0]), by_name);
		out->secrets = es.v;
		out->nsecrets = es.n;
	}
	broker_release(v);
	return 0;
oom:
	for (i = 0; i < es.n; i++)
		free(es.v[i].behind);
	free(es.v);
	broker_release(v);
	broker_snapshot_free(out);
	return -ENOMEM;
}

void
broker_snapshot_free(struct broker_snapshot *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->nsecrets; i++)
		free(s->secrets[i].behind);
	free(s->secrets);
	free(s->backends);
	memset(s, 0, sizeof(*s));
}

int
broker_audit_repair(struct broker *b, const struct repair_result *res)
{
	struct audit_kv kv[] = {
		AUDIT_STR(AUDIT_F_TARGET, res->target),
		AUDIT_NUM(AUDIT_F_OUTCOME, res->err ? AUDIT_OUTCOME_ERROR :
		    AUDIT_OUTCOME_OK),
		AUDIT_NUM(AUDIT_F_ERRNO, res->err),
		AUDIT_STR(AUDIT_F_REASON, res->step),
	};
	struct caller c;
	bool known;

	if (!b->audit)
		return 0;
	/* The container whose bind it was (it may be gone by now). */
	known = broker_identify(b, res->pid, res->uid, res->gid, &c) == 0;
	return audit_result(b, audit_event(b->audit, AUDIT_EV_REPAIR,
	    known ? &c : NULL, kv, sizeof(kv) / sizeof(kv[0])), "repair");
}

int
broker_audit_fetcher(struct broker *b, bool started, pid_t pid, int status,
    unsigned restart_ms)
{
	char why[AUDIT_REASON_MAX];
	struct audit_kv kv[] = {
		AUDIT_STR(AUDIT_F_ACTION, started ? "start" : "exit"),
		AUDIT_NUM(AUDIT_F_OUTCOME, started ? AUDIT_OUTCOME_OK :
		    AUDIT_OUTCOME_ERROR),
		AUDIT_STR(AUDIT_F_REASON, why),
	};

	if (!b->audit)
		return 0;
	if (started)
		snprintf(why, sizeof(why), "fetcher pid %d", (int)pid);
	else if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "fetcher pid %d killed by signal %d%s;"
		    " restart in %u ms", (int)pid, WTERMSIG(status),
		    WTERMSIG(status) == SIGSYS ? " (seccomp)" : "", restart_ms);
	else
		snprintf(why, sizeof(why), "fetcher pid %d exited with status "
		    "%d; restart in %u ms", (int)pid, WEXITSTATUS(status),
		    restart_ms);
	return audit_result(b, audit_event(b->audit, AUDIT_EV_FETCHER, NULL,
	    kv, sizeof(kv) / sizeof(kv[0])), "fetcher");
}
