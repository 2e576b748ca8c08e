/*
 * The locked arena, after libsodium's sodium_malloc: one mapping with
 * PROT_NONE guard pages on both sides, locked in RAM and kept out of core
 * dumps, carved into blocks by a small first-fit allocator with boundary
 * tags. Every block starts with a canary tied to its address, so a stray
 * free or an overrun into the next header is caught at free time.
 *
 * memfd_secret(2) is preferred: its pages are not even in the kernel's
 * direct map. When the kernel lacks it we fall back to anonymous memory
 * with mlock(2).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <jansson.h>

#include <secretsfs/secmem.h>

#define ALIGN		16
#define MIN_BLOCK	64	/* header + the smallest payload */

/*
 * The free-list links live in the header, not in the payload, so a freed
 * payload stays all zeroes until it is handed out again.
 */
struct blk {
	uint64_t	 canary;
	uint64_t	 size;		/* whole block, header included */
	uint64_t	 prev_size;	/* physical predecessor; 0 for the first */
	uint64_t	 used;
	struct blk	*next;		/* free list, when free */
	struct blk	*prev;
};

static struct {
	pthread_mutex_t	 lock;
	uint8_t		*map;		/* guard + usable + guard */
	size_t		 map_len;
	uint8_t		*base;		/* usable range */
	size_t		 len;
	size_t		 used;
	uint64_t	 canary;
	struct blk	*free;
	const char	*backing;
	int		 memfd;
} A = { .lock = PTHREAD_MUTEX_INITIALIZER, .memfd = -1 };

static size_t
round_up(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

static uint64_t
canary_of(const struct blk *b)
{
	return A.canary ^ (uint64_t)(uintptr_t)b;
}

static void
freelist_insert(struct blk *f)
{
	f->prev = NULL;
	f->next = A.free;
	if (A.free)
		A.free->prev = f;
	A.free = f;
}

static void
freelist_remove(struct blk *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else
		A.free = f->next;
	if (f->next)
		f->next->prev = f->prev;
}

static struct blk *
next_of(struct blk *b)
{
	uint8_t *n = (uint8_t *)b + b->size;

	return n < A.base + A.len ? (struct blk *)n : NULL;
}

static void
set_block(struct blk *b, size_t size, size_t prev_size, int used)
{
	b->canary = canary_of(b);
	b->size = size;
	b->prev_size = prev_size;
	b->used = used;
}

/* Broken heap metadata means memory corruption next to secrets: stop now. */
static void __attribute__((noreturn))
corrupt(const char *what, const void *p)
{
	fprintf(stderr, "secretsfs: secmem: %s at %p; aborting\n", what, p);
	abort();
}

static int
memlock_error(int e, size_t usable, char *errbuf, size_t errlen)
{
	struct rlimit rl;

	getrlimit(RLIMIT_MEMLOCK, &rl);
	snprintf(errbuf, errlen,
	    "cannot lock %zu bytes of memory for secrets (%s); "
	    "RLIMIT_MEMLOCK is %llu bytes: raise it with `ulimit -l` (KiB), "
	    "LimitMEMLOCK= in the systemd unit or --ulimit memlock= for a "
	    "container, or lower memory.locked_bytes in the config",
	    usable, strerror(e), (unsigned long long)rl.rlim_cur);
	return -e;
}

static int
map_arena(size_t usable, char *errbuf, size_t errlen)
{
	long page = sysconf(_SC_PAGESIZE);
	uint8_t *map, *mid;
	int fd, e;

	A.map_len = usable + 2 * page;
	map = mmap(NULL, A.map_len, PROT_NONE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED)
		return -errno;
	mid = map + page;

	if ((fd = syscall(SYS_memfd_secret, O_CLOEXEC)) >= 0) {
		/* secretmem charges RLIMIT_MEMLOCK at mmap time (EAGAIN). */
		if (ftruncate(fd, usable) == 0 &&
		    mmap(mid, usable, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_FIXED, fd, 0) != MAP_FAILED) {
			A.backing = "memfd_secret";
			A.memfd = fd;
			/* A shared mapping cannot wipe on fork; keep it from children. */
			madvise(mid, usable, MADV_DONTFORK);
			goto mapped;
		}
		e = errno;
		close(fd);
		if (e == EAGAIN || e == ENOMEM || e == EPERM) {
			munmap(map, A.map_len);
			return memlock_error(e, usable, errbuf, errlen);
		}
	}
	if (mmap(mid, usable, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
		e = errno;
		munmap(map, A.map_len);
		return -e;
	}
	if (mlock(mid, usable) != 0) {
		e = errno;
		munmap(map, A.map_len);
		return memlock_error(e, usable, errbuf, errlen);
	}
	A.backing = "mlock";
	madvise(mid, usable, MADV_WIPEONFORK);
mapped:
	madvise(mid, usable, MADV_DONTDUMP);
	/* Fault every page in now rather than at the first secret. */
	memset(mid, 0, usable);
	A.map = map;
	A.base = mid;
	A.len = usable;
	return 0;
}

int
secmem_init(size_t bytes, char *errbuf, size_t errlen)
{
	long page = sysconf(_SC_PAGESIZE);
	struct blk *b;
	int r;

	if (errlen)
		errbuf[0] = '\0';
	if (A.base)
		return -EALREADY;
	if (bytes < (size_t)page)
		bytes = page;
	r = map_arena(round_up(bytes, page), errbuf, errlen);
	if (r < 0) {
		if (errlen && errbuf[0] == '\0')
			snprintf(errbuf, errlen, "cannot map the locked arena: %s",
			    strerror(-r));
		return r;
	}
	if (getrandom(&A.canary, sizeof(A.canary), 0) != sizeof(A.canary))
		A.canary = (uint64_t)(uintptr_t)A.base * 0x9e3779b97f4a7c15ULL;
	b = (struct blk *)A.base;
	set_block(b, A.len, 0, 0);
	freelist_insert(b);
	return 0;
}

int
secmem_init_child(size_t bytes, char *errbuf, size_t errlen)
{
	/* Another thread may have held the lock at fork time. */
	pthread_mutex_init(&A.lock, NULL);
	if (A.map)
		munmap(A.map, A.map_len);
	if (A.memfd >= 0)
		close(A.memfd);
	A.map = A.base = NULL;
	A.free = NULL;
	A.len = A.used = 0;
	A.memfd = -1;
	A.backing = NULL;
	return secmem_init(bytes, errbuf, errlen);
}

void
secmem_shutdown(void)
{
	if (!A.base)
		return;
	pthread_mutex_lock(&A.lock);
	explicit_bzero(A.base, A.len);
	munmap(A.map, A.map_len);
	if (A.memfd >= 0)
		close(A.memfd);
	A.map = A.base = NULL;
	A.free = NULL;
	A.len = A.used = 0;
	A.memfd = -1;
	pthread_mutex_unlock(&A.lock);
}

void *
secmem_alloc(size_t n)
{
	struct blk *f;
	size_t need;

	if (n == 0 || n > SIZE_MAX / 2 || !A.base)
		return NULL;
	need = round_up(n + sizeof(struct blk), ALIGN);
	if (need < MIN_BLOCK)
		need = MIN_BLOCK;

	pthread_mutex_lock(&A.lock);
	for (f = A.free; f; f = f->next)
		if (f->size >= need)
			break;
	if (!f) {
		pthread_mutex_unlock(&A.lock);
		return NULL;
	}
	freelist_remove(f);
	struct blk *b = f;
	if (b->size - need >= MIN_BLOCK) {
		struct blk *rest = (struct blk *)((uint8_t *)b + need);
		struct blk *after;

		set_block(rest, b->size - need, need, 0);
		if ((after = next_of(rest)))
			after->prev_size = rest->size;
		freelist_insert(rest);
		b->size = need;
	}
	b->used = 1;
	b->canary = canary_of(b);
	A.used += b->size;
	pthread_mutex_unlock(&A.lock);
	return b + 1;
}

void *
secmem_calloc(size_t nmemb, size_t size)
{
	void *p;

	if (size && nmemb > SIZE_MAX / size)
		return NULL;
	/* The arena hands out wiped blocks, but be explicit. */
	if ((p = secmem_alloc(nmemb * size)))
		memset(p, 0, nmemb * size);
	return p;
}

bool
secmem_owns(const void *p)
{
	const uint8_t *q = p;

	return A.base && q >= A.base && q < A.base + A.len;
}

static struct blk *
block_of(void *p)
{
	struct blk *b = (struct blk *)p - 1;

	if (!secmem_owns(b) || ((uintptr_t)p % ALIGN) != 0)
		corrupt("free of a pointer outside the arena", p);
	if (b->canary != canary_of(b) || b->used != 1)
		corrupt("corrupted block header or double free", p);
	return b;
}

void
secmem_free(void *p)
{
	struct blk *b, *n, *prev;

	if (!p)
		return;
	pthread_mutex_lock(&A.lock);
	b = block_of(p);
	A.used -= b->size;
	explicit_bzero(b + 1, b->size - sizeof(*b));
	b->used = 0;

	if ((n = next_of(b)) && !n->used) {
		freelist_remove(n);
		b->size += n->size;
		explicit_bzero(n, sizeof(struct blk));
	}
	if (b->prev_size) {
		prev = (struct blk *)((uint8_t *)b - b->prev_size);
		if (!prev->used) {
			freelist_remove(prev);
			prev->size += b->size;
			explicit_bzero(b, sizeof(struct blk));
			b = prev;
		}
	}
	if ((n = next_of(b)))
		n->prev_size = b->size;
	b->canary = canary_of(b);
	freelist_insert(b);
	pthread_mutex_unlock(&A.lock);
}

void *
secmem_realloc(void *p, size_t n)
{
	size_t have;
	void *q;

	if (!p)
		return secmem_alloc(n);
	if (n == 0) {
		secmem_free(p);
		return NULL;
	}
	pthread_mutex_lock(&A.lock);
	have = block_of(p)->size - sizeof(struct blk);
	pthread_mutex_unlock(&A.lock);
	if (n <= have)
		return p;
	if (!(q = secmem_alloc(n)))
		return NULL;
	memcpy(q, p, have);
	secmem_free(p);
	return q;
}

char *
secmem_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *d;

	if (!(d = secmem_alloc(len + 1)))
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

char *
secmem_strdup(const char *s)
{
	return secmem_strndup(s, SIZE_MAX);
}

size_t
secmem_locked_bytes(void)
{
	return A.len;
}

size_t
secmem_used_bytes(void)
{
	size_t u;

	pthread_mutex_lock(&A.lock);
	u = A.used;
	pthread_mutex_unlock(&A.lock);
	return u;
}

const char *
secmem_backing(void)
{
	return A.backing ? A.backing : "none";
}

void
secmem_arena_range(void **start, size_t *len)
{
	*start = A.base;
	*len = A.len;
}

static pthread_key_t bounce_key;
static pthread_once_t bounce_once = PTHREAD_ONCE_INIT;

struct bounce {
	void	*p;
	size_t	 len;
};

static void
bounce_release(void *arg)
{
	struct bounce *b = arg;

	explicit_bzero(b->p, b->len);
	munmap(b->p, b->len);
	free(b);
}

static void
bounce_key_init(void)
{
	pthread_key_create(&bounce_key, bounce_release);
}

bool
secmem_kernel_readable(void)
{
	return A.memfd < 0;
}

void *
secmem_bounce(size_t n)
{
	long page = sysconf(_SC_PAGESIZE);
	struct bounce *b;
	void *p;

	pthread_once(&bounce_once, bounce_key_init);
	b = pthread_getspecific(bounce_key);
	if (b && b->len >= n)
		return b->p;
	n = round_up(n ? n : 1, page);
	p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (mlock(p, n) != 0) {
		munmap(p, n);
		return NULL;
	}
	madvise(p, n, MADV_DONTDUMP);
	madvise(p, n, MADV_WIPEONFORK);
	if (!b && !(b = calloc(1, sizeof(*b)))) {
		munmap(p, n);
		return NULL;
	}
	if (b->p) {
		explicit_bzero(b->p, b->len);
		munmap(b->p, b->len);
	}
	b->p = p;
	b->len = n;
	pthread_setspecific(bounce_key, b);
	return p;
}

int
secmem_harden_process(void)
{
	struct rlimit rl = { 0, 0 };

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return -errno;
	if (setrlimit(RLIMIT_CORE, &rl) != 0)
		return -errno;
	return 0;
}

/*
 * The ordinary-heap wiping allocator keeps the block size in front of the
 * block, so free() knows how much to wipe.
 */
struct hhdr {
	size_t	size;
	size_t	pad;	/* keeps the payload 16-byte aligned */
};

void *
secmem_heap_malloc(size_t n)
{
	struct hhdr *h;

	if (n > SIZE_MAX - sizeof(*h))
		return NULL;
	if (!(h = malloc(sizeof(*h) + n)))
		return NULL;
	h->size = n;
	return h + 1;
}

void *
secmem_heap_calloc(size_t nmemb, size_t size)
{
	void *p;

	if (size && nmemb > SIZE_MAX / size)
		return NULL;
	if ((p = secmem_heap_malloc(nmemb * size)))
		memset(p, 0, nmemb * size);
	return p;
}

void
secmem_heap_free(void *p)
{
	struct hhdr *h;

	if (!p)
		return;
	h = (struct hhdr *)p - 1;
	explicit_bzero(p, h->size);
	free(h);
}

void *
secmem_heap_realloc(void *p, size_t n)
{
	struct hhdr *h;
	void *q;

	if (!p)
		return secmem_heap_malloc(n);
	if (n == 0) {
		secmem_heap_free(p);
		return NULL;
	}
	h = (struct hhdr *)p - 1;
	if (!(q = secmem_heap_malloc(n)))
		return NULL;
	memcpy(q, p, h->size < n ? h->size : n);
	secmem_heap_free(p);
	return q;
}

char *
secmem_heap_strdup(const char *s)
{
	size_t len = strlen(s);
	char *d;

	if ((d = secmem_heap_malloc(len + 1)))
		memcpy(d, s, len + 1);
	return d;
}

/*
 * jansson parses backend answers that hold secrets, so its allocations go
 * to the arena once there is one. Before that (the config is parsed before
 * the arena is sized) they go to the wiping heap; free() tells the two
 * apart by address.
 */
static void *
json_alloc(size_t n)
{
	return A.base ? secmem_alloc(n) : secmem_heap_malloc(n);
}

static void
json_release(void *p)
{
	if (secmem_owns(p))
		secmem_free(p);
	else
		secmem_heap_free(p);
}

void
secmem_install_json_allocator(void)
{
	json_set_alloc_funcs(json_alloc, json_release);
}

/* --- registers ------------------------------------------------------------ */

#if defined(__x86_64__)
/* All 32 zmm registers; vzeroall clears zmm0-15 whole in 64-bit mode. */
__attribute__((target("avx512f"))) static void
wipe_avx512(void)
{
	__asm__ volatile(
	    "vzeroall\n\t"
	    "vpxord %%zmm16, %%zmm16, %%zmm16\n\t"
	    "vpxord %%zmm17, %%zmm17, %%zmm17\n\t"
	    "vpxord %%zmm18, %%zmm18, %%zmm18\n\t"
	    "vpxord %%zmm19, %%zmm19, %%zmm19\n\t"
	    "vpxord %%zmm20, %%zmm20, %%zmm20\n\t"
	    "vpxord %%zmm21, %%zmm21, %%zmm21\n\t"
	    "vpxord %%zmm22, %%zmm22, %%zmm22\n\t"
	    "vpxord %%zmm23, %%zmm23, %%zmm23\n\t"
	    "vpxord %%zmm24, %%zmm24, %%zmm24\n\t"
	    "vpxord %%zmm25, %%zmm25, %%zmm25\n\t"
	    "vpxord %%zmm26, %%zmm26, %%zmm26\n\t"
	    "vpxord %%zmm27, %%zmm27, %%zmm27\n\t"
	    "vpxord %%zmm28, %%zmm28, %%zmm28\n\t"
	    "vpxord %%zmm29, %%zmm29, %%zmm29\n\t"
	    "vpxord %%zmm30, %%zmm30, %%zmm30\n\t"
	    "vpxord %%zmm31, %%zmm31, %%zmm31\n\t"
	    ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
	    "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",
	    "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20",
	    "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27",
	    "xmm28", "xmm29", "xmm30", "xmm31");
}

__attribute__((target("avx"))) static void
wipe_avx(void)
{
	__asm__ volatile("vzeroall" ::: "xmm0", "xmm1", "xmm2", "xmm3",
	    "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
	    "xmm12", "xmm13", "xmm14", "xmm15");
}

static void
wipe_sse(void)
{
	__asm__ volatile(
	    "pxor %%xmm0, %%xmm0\n\t"   "pxor %%xmm1, %%xmm1\n\t"
	    "pxor %%xmm2, %%xmm2\n\t"   "pxor %%xmm3, %%xmm3\n\t"
	    "pxor %%xmm4, %%xmm4\n\t"   "pxor %%xmm5, %%xmm5\n\t"
	    "pxor %%xmm6, %%xmm6\n\t"   "pxor %%xmm7, %%xmm7\n\t"
	    "pxor %%xmm8, %%xmm8\n\t"   "pxor %%xmm9, %%xmm9\n\t"
	    "pxor %%xmm10, %%xmm10\n\t" "pxor %%xmm11, %%xmm11\n\t"
	    "pxor %%xmm12, %%xmm12\n\t" "pxor %%xmm13, %%xmm13\n\t"
	    "pxor %%xmm14, %%xmm14\n\t" "pxor %%xmm15, %%xmm15\n\t"
	    ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
	    "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",
	    "xmm14", "xmm15");
}
#endif

void
secmem_wipe_registers(void)
{
#if defined(__x86_64__)
	/* What the CPU and the kernel enable (libgcc reads XCR0 too). */
	if (__builtin_cpu_supports("avx512f"))
		wipe_avx512();
	else if (__builtin_cpu_supports("avx"))
		wipe_avx();
	else
		wipe_sse();
#endif
}
