/*
 * secmem: the locked arena that holds every secret byte.
 *
 * One arena per process, mapped with memfd_secret(2) when the kernel has it,
 * else mmap + mlock; MADV_DONTDUMP, MADV_WIPEONFORK (or MADV_DONTFORK for
 * the shared secretmem mapping), PROT_NONE guard pages on both sides, and a
 * canary in front of every block. Freed blocks are wiped with explicit_bzero
 * before they can be reused. Thread-safe.
 */
#ifndef SECRETSFS_SECMEM_H
#define SECRETSFS_SECMEM_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Map and lock an arena of at least `bytes`. Returns 0, or -errno with a
 * message in errbuf that names RLIMIT_MEMLOCK and how to raise it when the
 * lock failed. Must be called once, before any other secmem_ function.
 */
int secmem_init(size_t bytes, char *errbuf, size_t errlen);

/*
 * In a child after fork(): the parent's arena is not inherited (it is
 * mapped MADV_DONTFORK or MADV_WIPEONFORK), so forget it without touching
 * it and map a fresh one, as secmem_init does.
 */
int secmem_init_child(size_t bytes, char *errbuf, size_t errlen);

/* Unmap the arena after wiping all of it. Only at exit. */
void secmem_shutdown(void);

/* Blocks are 16-byte aligned. NULL when the arena is full or n == 0. */
void *secmem_alloc(size_t n);
void *secmem_calloc(size_t nmemb, size_t size);
/* Like realloc(3); the old block is wiped. */
void *secmem_realloc(void *p, size_t n);
/* Copy of s (which need not be in the arena), or NULL. */
char *secmem_strdup(const char *s);
char *secmem_strndup(const char *s, size_t n);
/* Wipe and release. NULL is fine. A corrupted canary is fatal. */
void secmem_free(void *p);

/* True when p points into the arena. */
bool secmem_owns(const void *p);

/* Accounting for status, metrics and tests. */
size_t secmem_locked_bytes(void);	/* the whole arena, locked */
size_t secmem_used_bytes(void);	/* bytes in live blocks, headers included */
const char *secmem_backing(void);	/* "memfd_secret" or "mlock" */
/* The usable range, for the guard-page test. */
void secmem_arena_range(void **start, size_t *len);

/*
 * memfd_secret pages are invisible to the kernel, so a syscall cannot read
 * them (write(2) to /dev/fuse fails with EFAULT). secmem_bounce() returns
 * this thread's bounce buffer of at least n bytes: anonymous, mlock'd and
 * kept out of core dumps. The caller copies the bytes in, makes the
 * syscall, and wipes with explicit_bzero at once. NULL on failure. With
 * the mlock backing no bounce is needed: secmem_kernel_readable() says so.
 */
void *secmem_bounce(size_t n);
bool secmem_kernel_readable(void);

/*
 * Clear the calling thread's vector registers (xmm/ymm, and zmm0-31 where
 * AVX-512 is enabled). memcpy, the parsers and TLS leave the last bytes
 * they moved there, and a core dump or a debugger reads them from the
 * thread's saved state; each thread that handles values calls this when it
 * is done with one. A no-op on other architectures.
 */
void secmem_wipe_registers(void);

/*
 * Process hardening that goes with locked memory: PR_SET_DUMPABLE 0 and
 * RLIMIT_CORE 0. Returns 0 or -errno.
 */
int secmem_harden_process(void);

/*
 * Point jansson's allocator at the arena, so parsed JSON that holds a
 * secret is locked and wiped when freed.
 */
void secmem_install_json_allocator(void);

/*
 * A wiping allocator on the ordinary heap (size header, explicit_bzero on
 * free) for libraries that allocate a lot and may briefly hold plaintext
 * (libcurl buffers, OpenSSL). Same contracts as malloc(3) and friends.
 */
void *secmem_heap_malloc(size_t n);
void *secmem_heap_calloc(size_t nmemb, size_t size);
void *secmem_heap_realloc(void *p, size_t n);
char *secmem_heap_strdup(const char *s);
void secmem_heap_free(void *p);

#endif
