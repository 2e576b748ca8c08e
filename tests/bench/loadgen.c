/*
 * loadgen: timed secret reads, one latency sample per operation.
 *
 *	loadgen file [OPTIONS] PATH...	open + read + close of each PATH in turn
 *	loadgen http [OPTIONS] URL	GET over one keep-alive libcurl handle
 *					per thread
 *
 * Every reader (thread) times each operation with clock_gettime
 * (CLOCK_MONOTONIC) into an array allocated before the start, so the
 * measurement loop neither allocates nor prints. All readers start
 * together on a barrier after their warm-up; the run lasts -n operations
 * per reader or -d seconds. One JSON object goes to stdout: ops, errors,
 * seconds, ops_per_s, mean/p50/p90/p99/p999/max in microseconds, and the
 * readers' own CPU time per operation (reader_cpu_us, from getrusage).
 *
 * Options:
 *	-t N		readers per process (1)
 *	-P N		processes (1); each joins cgroup DIR[i % k] of -C first
 *	-C DIR,DIR..	cgroup2 directories to spread the processes over
 *	-n N		operations per reader (count mode)
 *	-d SEC		run for SEC seconds instead (duration mode)
 *	-w N		warm-up operations per reader, not recorded (0)
 *	-e N		expected bytes per operation; anything else is an error
 *	-o		each path once: readers share one cursor over PATH...
 *	-G		process i reads only PATH number i % (number of PATHs):
 *			one secret per container
 *			(cold reads); the run ends when the paths run out
 *	-L FILE		read the paths from FILE, one per line
 *	-b N		read buffer size (65536): one read(2) per operation
 *	--cacert F --cert F --key F	TLS for http
 *	--header-file F	one HTTP header line read from F (keeps tokens out
 *			of argv)
 *
 * A file operation is open(O_RDONLY), one read(2) into the buffer, close:
 * what a program does that knows its secret is small. The cursor of a
 * reader over PATH... starts at a different place for each reader.
 */
#include <curl/curl.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum mode { MODE_FILE, MODE_HTTP };

/* Shared by every reader of every process: lives in a MAP_SHARED mapping. */
struct shared {
	pthread_barrier_t	 start;
	atomic_ulong		 cursor;	/* -o: next path */
	atomic_int		 stop;
	atomic_int		 errors;
	char			 first_error[256];
	atomic_int		 have_error;
};

struct slot {
	uint64_t		 n;		/* samples recorded */
	uint64_t		 errors;
	int			 capped;	/* ran out of sample room */
	struct timespec		 end;
};

static struct {
	enum mode	 mode;
	int		 threads, procs;
	char		**cgroups;
	int		 ncgroups;
	uint64_t	 count;
	double		 duration;
	uint64_t	 warmup;
	long		 expect;
	bool		 once;
	bool		 per_proc;
	int		 proc;		/* this process's index */
	size_t		 bufsize;
	char		**paths;
	size_t		 npaths;
	const char	*url, *cacert, *cert, *key;
	char		*header;
	uint64_t	 cap;		/* samples per reader */
} O = { .threads = 1, .procs = 1, .expect = -1, .bufsize = 65536 };

static struct shared *S;
static struct slot *slots;		/* one per reader */
static uint64_t *samples;		/* cap per reader */

static void __attribute__((noreturn))
die(const char *fmt, const char *arg)
{
	fprintf(stderr, "loadgen: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t
ns_of(const struct timespec *t)
{
	return (uint64_t)t->tv_sec * 1000000000ull + (uint64_t)t->tv_nsec;
}

static void
note_error(const char *what, const char *detail)
{
	int expect = 0;

	atomic_fetch_add(&S->errors, 1);
	if (atomic_compare_exchange_strong(&S->have_error, &expect, 1))
		snprintf(S->first_error, sizeof(S->first_error), "%s: %s",
		    what, detail);
}

/* ---- one operation ------------------------------------------------------ */

struct reader {
	int		 id;		/* global reader index */
	char		*buf;
	size_t		 next;		/* own cursor over paths */
	CURL		*curl;
	struct curl_slist *hdrs;
	size_t		 got;
};

static const char *
next_path(struct reader *r)
{
	unsigned long i;

	if (O.once) {
		i = atomic_fetch_add(&S->cursor, 1);
		return i < O.npaths ? O.paths[i] : NULL;
	}
	if (O.per_proc)
		return O.paths[(size_t)O.proc % O.npaths];
	i = r->next++;
	if (r->next == O.npaths)
		r->next = 0;
	return O.paths[i];
}

/* 1 done, 0 error (counted), -1 no more work. */
static int
op_file(struct reader *r)
{
	const char *p = next_path(r);
	char num[32];
	ssize_t n;
	int fd;

	if (!p)
		return -1;
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0) {
		note_error(p, strerror(errno));
		return 0;
	}
	n = read(fd, r->buf, O.bufsize);
	close(fd);
	if (n < 0) {
		note_error(p, strerror(errno));
		return 0;
	}
	if (O.expect >= 0 && n != O.expect) {
		snprintf(num, sizeof(num), "read %zd bytes", n);
		note_error(p, num);
		return 0;
	}
	return 1;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct reader *r = arg;
	size_t n = size * nmemb;

	(void)data;
	/* Counted, not kept: a body may be a secret. */
	r->got += n;
	return n;
}

static int
http_setup(struct reader *r)
{
	if (!(r->curl = curl_easy_init()))
		return -1;
	curl_easy_setopt(r->curl, CURLOPT_URL, O.url);
	curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->curl, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(r->curl, CURLOPT_TIMEOUT, 30L);
	if (O.cacert)
		curl_easy_setopt(r->curl, CURLOPT_CAINFO, O.cacert);
	if (O.cert)
		curl_easy_setopt(r->curl, CURLOPT_SSLCERT, O.cert);
	if (O.key)
		curl_easy_setopt(r->curl, CURLOPT_SSLKEY, O.key);
	if (O.header) {
		if (!(r->hdrs = curl_slist_append(NULL, O.header)))
			return -1;
		curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->hdrs);
	}
	return 0;
}

static int
op_http(struct reader *r)
{
	char detail[64];
	long status = 0;
	CURLcode rc;

	r->got = 0;
	if ((rc = curl_easy_perform(r->curl)) != CURLE_OK) {
		note_error("GET", curl_easy_strerror(rc));
		return 0;
	}
	curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200 || (O.expect >= 0 && r->got != (size_t)O.expect)) {
		snprintf(detail, sizeof(detail), "status %ld, %zu bytes", status,
		    r->got);
		note_error("GET", detail);
		return 0;
	}
	return 1;
}

static int
op(struct reader *r)
{
	return O.mode == MODE_FILE ? op_file(r) : op_http(r);
}

/* ---- readers ------------------------------------------------------------ */

static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	struct slot *sl = &slots[r->id];
	uint64_t *lat = samples + (uint64_t)r->id * O.cap;
	struct timespec a, b;
	uint64_t i;
	int k;

	r->next = O.npaths ? ((size_t)r->id * 7919u) % O.npaths : 0;
	if (!(r->buf = malloc(O.bufsize)))
		die("%s", "out of memory");
	if (O.mode == MODE_HTTP && http_setup(r) < 0)
		die("%s", "cannot set up libcurl");
	for (i = 0; i < O.warmup; i++)
		if (op(r) < 0)
			break;
	pthread_barrier_wait(&S->start);
	for (i = 0; i < O.cap; i++) {
		if (O.duration > 0 && atomic_load_explicit(&S->stop,
		    memory_order_relaxed))
			break;
		clock_gettime(CLOCK_MONOTONIC, &a);
		k = op(r);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (k < 0)
			break;
		if (k == 0) {
			sl->errors++;
			continue;
		}
		lat[sl->n++] = ns_of(&b) - ns_of(&a);
	}
	clock_gettime(CLOCK_MONOTONIC, &sl->end);
	sl->capped = O.duration > 0 && i == O.cap;
	if (r->curl) {
		curl_easy_cleanup(r->curl);
		curl_slist_free_all(r->hdrs);
	}
	free(r->buf);
	return NULL;
}

static void
join_cgroup(int proc)
{
	char path[4096], pid[32];
	int fd, n;

	if (O.ncgroups == 0)
		return;
	snprintf(path, sizeof(path), "%s/cgroup.procs",
	    O.cgroups[proc % O.ncgroups]);
	n = snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0 ||
	    write(fd, pid, (size_t)n) != n)
		die("cannot join cgroup %s", path);
	close(fd);
}

/* One process's readers; returns when they are done. */
static void
run_process(int proc)
{
	pthread_t *tids;
	struct reader *rs;
	int t;

	O.proc = proc;
	join_cgroup(proc);
	if (!(tids = calloc((size_t)O.threads, sizeof(*tids))) ||
	    !(rs = calloc((size_t)O.threads, sizeof(*rs))))
		die("%s", "out of memory");
	for (t = 0; t < O.threads; t++) {
		rs[t].id = proc * O.threads + t;
		if (pthread_create(&tids[t], NULL, reader_main, &rs[t]) != 0)
			die("%s", "cannot start a reader thread");
	}
	for (t = 0; t < O.threads; t++)
		pthread_join(tids[t], NULL);
	free(tids);
	free(rs);
}

/* ---- the report --------------------------------------------------------- */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct(const uint64_t *v, uint64_t n, double p)
{
	/* Nearest rank. */
	uint64_t k;

	if (n == 0)
		return 0;
	k = (uint64_t)(p * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1000.0;
}

static void
report(const struct timespec *t0, double cpu_s)
{
	uint64_t readers = (uint64_t)O.procs * (uint64_t)O.threads, total = 0,
	    errors = 0, i, r, end = ns_of(t0), sum = 0;
	int capped = 0;
	uint64_t *all;
	double secs;

	for (r = 0; r < readers; r++) {
		total += slots[r].n;
		errors += slots[r].errors;
		capped |= slots[r].capped;
		if (ns_of(&slots[r].end) > end)
			end = ns_of(&slots[r].end);
	}
	if (!(all = malloc((total ? total : 1) * sizeof(*all))))
		die("%s", "out of memory");
	for (i = 0, r = 0; r < readers; r++) {
		memcpy(all + i, samples + r * O.cap, slots[r].n * sizeof(*all));
		i += slots[r].n;
	}
	qsort(all, total, sizeof(*all), cmp_u64);
	for (i = 0; i < total; i++)
		sum += all[i];
	secs = (double)(end - ns_of(t0)) / 1e9;
	printf("{\"ops\": %llu, \"errors\": %llu, \"readers\": %llu, "
	    "\"seconds\": %.6f, \"ops_per_s\": %.1f, \"mean_us\": %.3f, "
	    "\"p50_us\": %.3f, \"p90_us\": %.3f, \"p99_us\": %.3f, "
	    "\"p999_us\": %.3f, \"max_us\": %.3f, \"capped\": %s, "
	    "\"reader_cpu_us\": %.3f, \"first_error\": ",
	    (unsigned long long)total, (unsigned long long)errors,
	    (unsigned long long)readers, secs,
	    secs > 0 ? (double)total / secs : 0.0,
	    total ? (double)sum / (double)total / 1000.0 : 0.0,
	    pct(all, total, 0.50), pct(all, total, 0.90),
	    pct(all, total, 0.99), pct(all, total, 0.999),
	    total ? (double)all[total - 1] / 1000.0 : 0.0,
	    capped ? "true" : "false",
	    /* Warm-up operations used CPU too. */
	    cpu_s * 1e6 / (double)(total + errors + readers * O.warmup + 1));
	if (atomic_load(&S->have_error)) {
		putchar('"');
		for (const char *p = S->first_error; *p; p++)
			if (*p == '"' || *p == '\\')
				printf("\\%c", *p);
			else if ((unsigned char)*p >= 0x20)
				putchar(*p);
		putchar('"');
	} else
		printf("null");
	printf("}\n");
	free(all);
}

/* ---- setup -------------------------------------------------------------- */

static void
add_path(const char *p)
{
	char **grown;

	if (!(grown = realloc(O.paths, (O.npaths + 1) * sizeof(*grown))) ||
	    !(grown[O.npaths] = strdup(p)))
		die("%s", "out of memory");
	O.paths = grown;
	O.npaths++;
}

static void
read_list(const char *file)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	if (!(f = fopen(file, "re")))
		die("cannot open %s", file);
	while ((n = getline(&line, &cap, f)) > 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n > 0)
			add_path(line);
	}
	free(line);
	fclose(f);
}

static char *
read_header(const char *file)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	if (!(f = fopen(file, "re")))
		die("cannot open %s", file);
	if ((n = getline(&line, &cap, f)) <= 0)
		die("empty header file %s", file);
	fclose(f);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return line;
}

static void
split_cgroups(char *list)
{
	char *tok, *save = NULL;

	for (tok = strtok_r(list, ",", &save); tok;
	    tok = strtok_r(NULL, ",", &save)) {
		O.cgroups = realloc(O.cgroups, (size_t)(O.ncgroups + 1) *
		    sizeof(*O.cgroups));
		if (!O.cgroups)
			die("%s", "out of memory");
		O.cgroups[O.ncgroups++] = tok;
	}
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen file [-t N] [-P N] [-C DIR,..] [-n N | -d SEC] "
	    "[-w N] [-e BYTES] [-o | -G] [-b N] [-L FILE] PATH...\n"
	    "       loadgen http [-t N] [-P N] [-n N | -d SEC] [-w N] [-e BYTES] "
	    "[--cacert F] [--cert F] [--key F] [--header-file F] URL\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cacert", required_argument, NULL, 1 },
		{ "cert", required_argument, NULL, 2 },
		{ "key", required_argument, NULL, 3 },
		{ "header-file", required_argument, NULL, 4 },
		{ NULL, 0, NULL, 0 }
	};
	pthread_barrierattr_t ba;
	struct timespec t0, nap;
	uint64_t readers;
	size_t shsz;
	int ch, p, status, failed = 0;
	pid_t *kids;
	struct rusage ru;

	if (argc < 2)
		usage();
	if (strcmp(argv[1], "file") == 0)
		O.mode = MODE_FILE;
	else if (strcmp(argv[1], "http") == 0)
		O.mode = MODE_HTTP;
	else
		usage();
	argv++;
	argc--;
	while ((ch = getopt_long(argc, argv, "t:P:C:n:d:w:e:oGb:L:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 't': O.threads = atoi(optarg); break;
		case 'P': O.procs = atoi(optarg); break;
		case 'C': split_cgroups(optarg); break;
		case 'n': O.count = strtoull(optarg, NULL, 10); break;
		case 'd': O.duration = atof(optarg); break;
		case 'w': O.warmup = strtoull(optarg, NULL, 10); break;
		case 'e': O.expect = atol(optarg); break;
		case 'o': O.once = true; break;
		case 'G': O.per_proc = true; break;
		case 'b': O.bufsize = strtoull(optarg, NULL, 10); break;
		case 'L': read_list(optarg); break;
		case 1: O.cacert = optarg; break;
		case 2: O.cert = optarg; break;
		case 3: O.key = optarg; break;
		case 4: O.header = read_header(optarg); break;
		default: usage();
		}
	}
	if (O.mode == MODE_FILE)
		for (; optind < argc; optind++)
			add_path(argv[optind]);
	else if (optind == argc - 1)
		O.url = argv[optind];
	else
		usage();
	if (O.threads < 1 || O.procs < 1 || O.bufsize < 1 ||
	    (O.mode == MODE_FILE && O.npaths == 0) ||
	    (O.count == 0 && O.duration <= 0 && !O.once))
		usage();

	readers = (uint64_t)O.threads * (uint64_t)O.procs;
	/*
	 * Samples per reader: the count, the paths (-o), or for a timed run
	 * room for 0.5 µs operations without end, within 256 MiB in all.
	 */
	if (O.once)
		O.cap = O.npaths;
	else if (O.count)
		O.cap = O.count;
	else {
		O.cap = (uint64_t)(O.duration * 2000000.0) + 1000;
		if (O.cap * readers > (256u << 20) / sizeof(uint64_t))
			O.cap = (256u << 20) / sizeof(uint64_t) / readers;
	}
	shsz = sizeof(*S) + readers * sizeof(*slots) +
	    readers * O.cap * sizeof(*samples);
	S = mmap(NULL, shsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS |
	    MAP_NORESERVE, -1, 0);
	if (S == MAP_FAILED)
		die("%s", "cannot map the sample arrays");
	slots = (struct slot *)(S + 1);
	samples = (uint64_t *)(slots + readers);
	/* Touch every sample page now, not in the timed loop. */
	memset(samples, 0, readers * O.cap * sizeof(*samples));

	pthread_barrierattr_init(&ba);
	pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
	pthread_barrier_init(&S->start, &ba, (unsigned)readers + 1);
	if (O.mode == MODE_HTTP)
		curl_global_init(CURL_GLOBAL_DEFAULT);

	if (!(kids = calloc((size_t)O.procs, sizeof(*kids))))
		die("%s", "out of memory");
	fflush(NULL);
	for (p = 0; p < O.procs; p++) {
		if ((kids[p] = fork()) < 0)
			die("%s", "fork failed");
		if (kids[p] == 0) {
			run_process(p);
			_exit(0);
		}
	}
	pthread_barrier_wait(&S->start);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (O.duration > 0) {
		nap.tv_sec = (time_t)O.duration;
		nap.tv_nsec = (long)((O.duration - (double)nap.tv_sec) * 1e9);
		while (nanosleep(&nap, &nap) != 0 && errno == EINTR)
			;
		atomic_store(&S->stop, 1);
	}
	for (p = 0; p < O.procs; p++)
		if (waitpid(kids[p], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			failed = 1;
	if (failed)
		die("%s", "a reader process failed");
	/* The readers are all children: their user + system time. */
	getrusage(RUSAGE_CHILDREN, &ru);
	report(&t0, (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
	return atomic_load(&S->errors) ? 3 : 0;
}
