/*
 * soakread: the readers of one made-up container for the soak test.
 *
 *	soakread PROCS SECONDS THREADS PAUSE_MS DENIED PATH...
 *
 * Writes its pid to PROCS (a cgroup's cgroup.procs: the whole process
 * moves into the container), checks once that DENIED cannot be opened,
 * then runs THREADS readers for SECONDS. Each reader opens PATH... in
 * turn, reads the file to EOF, closes it, checks the value and sleeps
 * PAUSE_MS. A value is "v<N>:<payload>:<fnv1a-64 of v<N>:<payload> in
 * hex>"; anything else is torn. One JSON object goes to stdout:
 * opens (successful opens), open_errors, read_errors, torn, first_errno,
 * denied_errno, max_version per path.
 *
 * No value is ever printed: a torn value is only counted.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE	65536
#define MAX_PATHS	64

static char	**paths;
static int	  npaths;
static int	  pause_ms;
static double	  deadline;

static atomic_ulong	opens, open_errors, read_errors, torn;
static atomic_int	first_errno;
static atomic_long	max_version[MAX_PATHS];

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t
fnv1a(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (n--) {
		h ^= (unsigned char)*p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* The version of a well-formed value, or -1. */
static long
check(const char *buf, size_t n)
{
	const char *colon;
	char *end, want[17];
	long v;

	if (n < 4 || buf[0] != 'v' || n >= BUF_SIZE)
		return -1;
	v = strtol(buf + 1, &end, 10);
	if (end == buf + 1 || *end != ':' || v < 0)
		return -1;
	if (n < 17 || buf[n - 17] != ':')
		return -1;
	colon = buf + n - 17;
	snprintf(want, sizeof(want), "%016" PRIx64, fnv1a(buf, colon - buf));
	if (memcmp(colon + 1, want, 16) != 0)
		return -1;
	return v;
}

static void
note_errno(int e)
{
	int zero = 0;

	atomic_compare_exchange_strong(&first_errno, &zero, e);
}

static void *
reader(void *arg)
{
	char *buf = malloc(BUF_SIZE);
	int i = (int)(intptr_t)arg % npaths;
	struct timespec pause = { pause_ms / 1000, (pause_ms % 1000) * 1000000L };

	if (!buf)
		abort();
	while (now() < deadline) {
		size_t got = 0;
		ssize_t r;
		long v, seen;
		int fd;

		if ((fd = open(paths[i], O_RDONLY)) < 0) {
			atomic_fetch_add(&open_errors, 1);
			note_errno(errno);
			goto next;
		}
		atomic_fetch_add(&opens, 1);
		while ((r = read(fd, buf + got, BUF_SIZE - got)) > 0 &&
		    got + (size_t)r < BUF_SIZE)
			got += (size_t)r;
		close(fd);
		if (r < 0) {
			atomic_fetch_add(&read_errors, 1);
			note_errno(errno);
			goto next;
		}
		if ((v = check(buf, got)) < 0) {
			atomic_fetch_add(&torn, 1);
			goto next;
		}
		seen = atomic_load(&max_version[i]);
		while (v > seen &&
		    !atomic_compare_exchange_weak(&max_version[i], &seen, v))
			;
next:
		i = (i + 1) % npaths;
		if (pause_ms > 0)
			nanosleep(&pause, NULL);
	}
	explicit_bzero(buf, BUF_SIZE);
	free(buf);
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t *t;
	int fd, nthreads, denied_errno = 0, i;
	FILE *f;

	if (argc < 7 || argc - 6 > MAX_PATHS) {
		fprintf(stderr, "usage: soakread PROCS SECONDS THREADS PAUSE_MS "
		    "DENIED PATH...\n");
		return 2;
	}
	if (!(f = fopen(argv[1], "w")) || fprintf(f, "%d\n", getpid()) < 0 ||
	    fclose(f) != 0) {
		perror(argv[1]);
		return 1;
	}
	nthreads = atoi(argv[3]);
	pause_ms = atoi(argv[4]);
	paths = argv + 6;
	npaths = argc - 6;
	if ((fd = open(argv[5], O_RDONLY)) >= 0)
		close(fd);
	else
		denied_errno = errno;
	/* Start together, after the cgroup move and the denied probe. */
	printf("ready\n");
	fflush(stdout);
	deadline = now() + atof(argv[2]);
	if (!(t = calloc(nthreads, sizeof(*t))))
		return 1;
	for (i = 0; i < nthreads; i++)
		if (pthread_create(&t[i], NULL, reader, (void *)(intptr_t)i) != 0)
			return 1;
	for (i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	printf("{\"opens\":%lu,\"open_errors\":%lu,\"read_errors\":%lu,"
	    "\"torn\":%lu,\"first_errno\":%d,\"denied_errno\":%d,"
	    "\"max_version\":[", atomic_load(&opens),
	    atomic_load(&open_errors), atomic_load(&read_errors),
	    atomic_load(&torn), atomic_load(&first_errno), denied_errno);
	for (i = 0; i < npaths; i++)
		printf("%s%ld", i ? "," : "", atomic_load(&max_version[i]));
	printf("]}\n");
	return 0;
}
