/*
 * What every harness shares: the locked arena the parsers allocate from,
 * and the checks that hold for any input.
 *
 * The arena is not instrumented by ASan (it is our own allocator), so a
 * block a parser forgets to free never shows up as a leak: each harness
 * compares secmem_used_bytes() before and after an input instead.
 */
#ifndef SECRETSFS_FUZZ_H
#define SECRETSFS_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secretsfs/secmem.h>

#define FUZZ_ARENA	(8u << 20)

/* Called by each harness's LLVMFuzzerInitialize. */
static inline void
fuzz_secmem_init(void)
{
	char err[256];

	if (secmem_init(FUZZ_ARENA, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz: %s\n", err);
		abort();
	}
	secmem_install_json_allocator();
}

/* The input as a NUL-terminated heap string (NULs inside stay). */
static inline char *
fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* A message for a log line: NUL-terminated inside its buffer, no control
 * bytes. */
static inline void
fuzz_check_msg(const char *msg, size_t size)
{
	size_t n = strnlen(msg, size);

	if (n == size)
		abort();	/* not terminated */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
			abort();
}

/* Every block the input made in the arena was given back. */
#define FUZZ_ARENA_BEGIN()	size_t fuzz_used_ = secmem_used_bytes()
#define FUZZ_ARENA_END()	do {					\
	if (secmem_used_bytes() != fuzz_used_) {			\
		fprintf(stderr, "fuzz: %zu bytes left in the arena\n",	\
		    secmem_used_bytes() - fuzz_used_);			\
		abort();						\
	}								\
} while (0)

#endif
